//! Delegated administration: partner relationships, their delegates, one-time codes and
//! delegated sessions. Every operation runs in one transaction (the caller's write), with
//! its audit entries on both sides and its mails in the outbox.
//!
//! Who sees whom: each side's audit log names the other side by its account only
//! (`partner:<name>`, `customer:<name>`), and a customer of an undisclosed relationship sees
//! its delegates by pseudonym ([`pseudonym`]), never as people.

use chrono::{Duration, NaiveDateTime};
use serde::Serialize;

use crate::domain::accounts::normalize_email;
use crate::domain::authz::{check_grant, stored_role_permissions, PermissionSet};
use crate::domain::delegation::{
    check_code, check_expiry, delegate_permissions, effective, pseudonym, resend_wait, session_end, warnings_due,
    widens, CodeCheck, CodeFacts, Effective, Side, Status, Timing, CODE_DIGITS, CODE_TTL_MINUTES, REQUEST_TTL_DAYS,
    SESSION_HOURS,
};
use crate::domain::field::Field;
use crate::domain::users::{effective_permissions, UserStatus};
use crate::error::{AppError, AppResult};
use crate::provisioning::{audit, Actor, DelegatedBy, Env};
use crate::secrets::{constant_time_eq, hash_secret, new_id, new_numeric_code, new_secret};
use crate::store::models::{AccountRow, DelegateCodeRow, DelegateRow, NewMail, RelationshipRow, TokenRow, WarningRow};
use crate::store::{self, DbConn};

/// The manual source of a delegate (added by a partner admin or by accepting an invitation).
pub const MANUAL: &str = "manual";
/// Codes one delegate may ask for per relationship and hour.
const CODES_PER_HOUR: i64 = 10;

/// A relationship as either side sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RelationshipView {
    pub id: String,
    /// The caller's side: `partner` or `customer`.
    pub side: String,
    pub name: String,
    /// `invited`, `pending`, `active`, `declined`, `expired` or `terminated` (as of now).
    pub status: String,
    /// `partner` (a request) or `customer` (an invitation).
    pub initiated_by: String,
    pub partner_account_id: String,
    pub partner_name: String,
    pub customer_account_id: String,
    pub customer_name: String,
    /// The partner's point of contact.
    pub contact: Option<ContactView>,
    pub permissions: Vec<String>,
    /// A wider set the partner asked for, awaiting the customer's approval.
    pub pending_permissions: Option<Vec<String>>,
    #[serde(serialize_with = "crate::clock::rfc3339::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<NaiveDateTime>,
    pub auto_extend: bool,
    pub allow_delegates: bool,
    pub undisclosed: bool,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::clock::rfc3339::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub activated_at: Option<NaiveDateTime>,
    #[serde(serialize_with = "crate::clock::rfc3339::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<NaiveDateTime>,
    /// `partner`, `customer` or `expiry`.
    pub ended_by: Option<String>,
    /// When group sync last applied a change or reconcile to it.
    #[serde(serialize_with = "crate::clock::rfc3339::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_synced_at: Option<NaiveDateTime>,
    /// Age of the oldest membership change of a bound group not yet applied (0: in step).
    pub sync_lag_ms: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ContactView {
    pub user_id: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
}

/// A delegate of a relationship. On the customer side of an undisclosed relationship,
/// `user_id` is the delegate's stable pseudonym and `email` is absent.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DelegateView {
    pub user_id: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// `invited` or `active`.
    pub status: String,
    /// `manual`, `group:<id>`, …
    pub sources: Vec<String>,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub added_at: NaiveDateTime,
    #[serde(serialize_with = "crate::clock::rfc3339::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub accepted_at: Option<NaiveDateTime>,
    /// Live delegated sessions (tokens) of this delegate in the customer account.
    pub sessions: Vec<SessionRef>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionRef {
    pub id: String,
    #[serde(serialize_with = "crate::clock::rfc3339::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<NaiveDateTime>,
}

/// One of the caller's delegations (or a customer's invitation addressed to them).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DelegationView {
    pub relationship_id: String,
    /// `delegate` (added to a relationship) or `relationship_invitation` (a customer invited
    /// the caller to start one).
    pub kind: String,
    /// The caller's standing: `invited` or `active`.
    pub status: String,
    pub relationship_status: String,
    pub relationship_name: String,
    pub partner_account_id: String,
    pub customer_account_id: String,
    pub customer_name: String,
    /// What the caller may do in the customer once inside.
    pub permissions: Vec<String>,
    #[serde(serialize_with = "crate::clock::rfc3339::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<NaiveDateTime>,
}

/// A delegated session: the token acts in `account_id` until `expires_at`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DelegatedSession {
    /// Shown once; only its hash is stored.
    pub token: String,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: NaiveDateTime,
    pub account_id: String,
    pub relationship_id: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CodeSent {
    pub sent_to: String,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: NaiveDateTime,
}

/// What one sweep wrote down.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    pub expired: usize,
    pub extended: usize,
    pub warnings: usize,
}

/// A partner's request.
#[derive(Debug, Clone)]
pub struct RequestInput {
    /// The customer account, by id or vanity name.
    pub customer: String,
    pub name: String,
    pub expires_at: Option<NaiveDateTime>,
    pub auto_extend: bool,
    pub allow_delegates: bool,
    pub undisclosed: bool,
    pub permissions: Vec<String>,
}

/// A customer's invitation of a partner user.
#[derive(Debug, Clone)]
pub struct InviteInput {
    pub partner_email: String,
    pub name: Option<String>,
    pub expires_at: Option<NaiveDateTime>,
    pub auto_extend: bool,
    pub allow_delegates: bool,
    pub undisclosed: bool,
    pub permissions: Vec<String>,
}

/// A partner's change of a relationship.
#[derive(Debug, Clone, Default)]
pub struct UpdateInput {
    pub name: Option<String>,
    pub expires_at: Field<NaiveDateTime>,
    pub auto_extend: Option<bool>,
    pub allow_delegates: Option<bool>,
    pub permissions: Option<Vec<String>>,
}

/// What a delegated token may do right now, resolved per request.
#[derive(Debug, Clone)]
pub struct DelegatedAccess {
    pub permissions: PermissionSet,
    pub label: String,
    pub stamp: DelegatedBy,
    /// The relationship's end in force now.
    pub ends_at: Option<NaiveDateTime>,
}

fn timing(r: &RelationshipRow) -> Timing {
    Timing {
        status: Status::parse(&r.status).unwrap_or(Status::Terminated),
        created_at: r.created_at,
        expires_at: r.expires_at,
        auto_extend: r.auto_extend,
    }
}

fn state(r: &RelationshipRow, now: NaiveDateTime) -> Effective {
    effective(timing(r), now)
}

/// Stores a changed relationship, refusing it when a concurrent change came first.
fn save(conn: &mut DbConn, r: &mut RelationshipRow) -> AppResult<()> {
    r.version += 1;
    if store::delegation::update(conn, r)? {
        Ok(())
    } else {
        Err(AppError::conflict("concurrent_update", "the relationship changed meanwhile; read it again and retry"))
    }
}

fn permission_set(names: &[String]) -> AppResult<PermissionSet> {
    let set = PermissionSet::parse_names(names).map_err(|n| {
        AppError::bad_request("unknown_permission", format!("{n:?} is not a permission of the catalogue"))
    })?;
    if set.is_empty() {
        return Err(AppError::bad_request("no_permissions", "a relationship needs at least one permission"));
    }
    Ok(set)
}

fn names_json(set: PermissionSet) -> String {
    serde_json::to_string(&set.names()).unwrap_or_else(|_| "[]".into())
}

fn sources_of(d: &DelegateRow) -> Vec<String> {
    serde_json::from_str(&d.sources).unwrap_or_default()
}

fn expiry_checked(expires_at: Option<NaiveDateTime>, now: NaiveDateTime) -> AppResult<()> {
    check_expiry(expires_at, now).map_err(|e| AppError::bad_request("invalid_expiry", e.to_string()))
}

fn clean_name(name: &str) -> AppResult<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 200 || n.chars().any(char::is_control) {
        return Err(AppError::bad_request("invalid_name", "name must be 1–200 printable characters"));
    }
    Ok(n.to_owned())
}

fn account(conn: &mut DbConn, id: &str) -> AppResult<AccountRow> {
    store::accounts::find(conn, id)?.ok_or(AppError::not_found("account"))
}

/// The caller's side of a relationship; another account's relationship is not found.
fn side_of(r: &RelationshipRow, caller: &str) -> AppResult<Side> {
    if r.partner_account_id == caller {
        Ok(Side::Partner)
    } else if r.customer_account_id == caller {
        Ok(Side::Customer)
    } else {
        Err(AppError::not_found("relationship"))
    }
}

fn visible(conn: &mut DbConn, caller: &str, id: &str) -> AppResult<(RelationshipRow, Side)> {
    let r = store::delegation::find(conn, id)?.ok_or(AppError::not_found("relationship"))?;
    let side = side_of(&r, caller)?;
    Ok((r, side))
}

fn view(conn: &mut DbConn, r: &RelationshipRow, side: Side, now: NaiveDateTime) -> AppResult<RelationshipView> {
    let eff = state(r, now);
    let partner = account(conn, &r.partner_account_id)?;
    let customer = account(conn, &r.customer_account_id)?;
    let contact = match &r.contact_user_id {
        Some(u) => store::users::find_any(conn, u)?.map(|u| ContactView {
            user_id: u.id,
            email: u.email,
            display_name: u.display_name,
        }),
        None => None,
    };
    let bound: Vec<String> = store::sync::bindings_of(conn, &r.id)?.into_iter().map(|b| b.group_id).collect();
    let sync_lag_ms = if bound.is_empty() {
        0
    } else {
        store::sync::oldest_pending_of(conn, &bound)?.map_or(0, |t| (now - t).num_milliseconds().max(0))
    };
    Ok(RelationshipView {
        last_synced_at: r.last_synced_at,
        sync_lag_ms,
        id: r.id.clone(),
        side: side.as_str().into(),
        name: r.name.clone(),
        status: eff.status.as_str().into(),
        initiated_by: r.initiated_by.clone(),
        partner_account_id: partner.id,
        partner_name: partner.name,
        customer_account_id: customer.id,
        customer_name: customer.name,
        contact,
        permissions: stored_role_permissions(&r.permissions).names(),
        pending_permissions: r.pending_permissions.as_deref().map(|p| stored_role_permissions(p).names()),
        expires_at: eff.expires_at,
        auto_extend: r.auto_extend,
        allow_delegates: r.allow_delegates,
        undisclosed: r.undisclosed,
        created_at: r.created_at,
        activated_at: r.activated_at,
        ended_at: r.ended_at.or_else(|| (eff.status == Status::Expired).then(|| ended_instant(r)).flatten()),
        ended_by: r.ended_by.clone().or_else(|| (eff.status == Status::Expired).then(|| "expiry".into())),
    })
}

/// When a relationship that has run out ended.
fn ended_instant(r: &RelationshipRow) -> Option<NaiveDateTime> {
    match Status::parse(&r.status) {
        Some(Status::Pending | Status::Invited) => Some(r.created_at + Duration::days(REQUEST_TTL_DAYS)),
        _ => r.expires_at,
    }
}

/// The actor as the other side's audit log shows it: the account, never the person.
fn seen_from_other_side(actor: &Actor, side: Side, account_name: &str) -> Actor {
    let mut a = actor.clone();
    a.label = match side {
        Side::Partner => format!("partner:{account_name}"),
        Side::Customer => format!("customer:{account_name}"),
    };
    a.user_id = None;
    a
}

/// Records one event in both accounts' logs. `actor_side` is the side the actor acts from
/// (`None` for the system, e.g. expiry).
#[allow(clippy::too_many_arguments)]
fn audit_both(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    actor_side: Option<Side>,
    r: &RelationshipRow,
    action: &str,
    partner_detail: serde_json::Value,
    customer_detail: serde_json::Value,
) -> AppResult<()> {
    let (partner_name, customer_name) =
        (account(conn, &r.partner_account_id)?.name, account(conn, &r.customer_account_id)?.name);
    let (as_partner, as_customer) = match actor_side {
        Some(Side::Partner) => (actor.clone(), seen_from_other_side(actor, Side::Partner, &partner_name)),
        Some(Side::Customer) => (seen_from_other_side(actor, Side::Customer, &customer_name), actor.clone()),
        None => (actor.clone(), actor.clone()),
    };
    let with_rel = |mut v: serde_json::Value| {
        if let Some(m) = v.as_object_mut() {
            m.insert("relationship".into(), serde_json::Value::String(r.id.clone()));
        }
        v
    };
    let (pd, cd) = (with_rel(partner_detail), with_rel(customer_detail));
    audit::record(conn, env, &r.partner_account_id, &as_partner, actor.via, action, Some(&r.id), pd)?;
    audit::record(conn, env, &r.customer_account_id, &as_customer, actor.via, action, Some(&r.id), cd)?;
    Ok(())
}

fn mail(conn: &mut DbConn, env: &Env, account: &str, to: &str, subject: String, body: String) -> AppResult<()> {
    store::audit::queue_mail(
        conn,
        &NewMail { account_id: Some(account.to_owned()), recipient: to.to_owned(), subject, body, created_at: env.now },
    )?;
    Ok(())
}

/// An API route named in a mail: a relative `/api/v1/…` path on purpose. Mail clients turn
/// absolute URLs into links, and a link to a POST route only answers 405; the links a mail
/// carries are pages (`<public-url>/delegations/{id}/accept`, `…/verify`). `env` stays so
/// call sites read alike.
fn api(_env: &Env, path: &str) -> String {
    format!("/api/v1{path}")
}

/// The customer's people who answer requests: the owner and every active admin holding
/// `external_accounts:edit`.
fn customer_approvers(conn: &mut DbConn, customer: &str) -> AppResult<Vec<String>> {
    let need = crate::domain::authz::Permission::edit(crate::domain::authz::Area::ExternalAccounts);
    let mut out = Vec::new();
    for u in store::users::admins_of(conn, customer)? {
        let custom = match &u.custom_role_id {
            Some(r) => store::roles::find(conn, customer, r)?.map(|r| stored_role_permissions(&r.permissions)),
            None => None,
        };
        if effective_permissions(u.role, custom).contains(need) {
            out.extend(u.email);
        }
    }
    Ok(out)
}

/// The partner's point of contact (the owner when none is recorded).
fn partner_contact_email(conn: &mut DbConn, r: &RelationshipRow) -> AppResult<Option<String>> {
    let contact = match &r.contact_user_id {
        Some(u) => store::users::find_any(conn, u)?,
        None => None,
    };
    let contact = match contact {
        Some(c) => Some(c),
        None => store::users::owner(conn, &r.partner_account_id)?,
    };
    Ok(contact.and_then(|c| c.email))
}

fn mail_customer(conn: &mut DbConn, env: &Env, r: &RelationshipRow, subject: &str, body: &str) -> AppResult<()> {
    for to in customer_approvers(conn, &r.customer_account_id)? {
        mail(conn, env, &r.customer_account_id, &to, subject.to_owned(), body.to_owned())?;
    }
    Ok(())
}

fn mail_partner(conn: &mut DbConn, env: &Env, r: &RelationshipRow, subject: &str, body: &str) -> AppResult<()> {
    if let Some(to) = partner_contact_email(conn, r)? {
        mail(conn, env, &r.partner_account_id, &to, subject.to_owned(), body.to_owned())?;
    }
    Ok(())
}

/// What a relationship is agreed on besides its permissions.
struct Terms {
    expires_at: Option<NaiveDateTime>,
    auto_extend: bool,
    allow_delegates: bool,
    undisclosed: bool,
}

/// A new relationship between `ends` (partner, customer): `pending` when the partner asks,
/// `invited` when the customer invites.
fn new_row(
    env: &Env,
    by: Side,
    ends: (&str, &str),
    name: String,
    contact: Option<String>,
    perms: PermissionSet,
    t: Terms,
) -> RelationshipRow {
    RelationshipRow {
        id: new_id(),
        partner_account_id: ends.0.to_owned(),
        customer_account_id: ends.1.to_owned(),
        name,
        status: match by {
            Side::Partner => Status::Pending,
            Side::Customer => Status::Invited,
        }
        .as_str()
        .into(),
        initiated_by: by.as_str().into(),
        contact_user_id: contact,
        permissions: names_json(perms),
        pending_permissions: None,
        expires_at: t.expires_at,
        auto_extend: t.auto_extend,
        allow_delegates: t.allow_delegates,
        undisclosed: t.undisclosed,
        created_at: env.now,
        activated_at: None,
        ended_at: None,
        ended_by: None,
        updated_at: env.now,
        version: 0,
        last_synced_at: None,
    }
}

/// A partner user (of `partner`) asks `input.customer` for access.
pub fn request(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    partner: &str,
    input: RequestInput,
) -> AppResult<RelationshipView> {
    let partner_row = account(conn, partner)?;
    let customer = store::accounts::find_by_id_or_vanity(conn, input.customer.trim())?
        .ok_or(AppError::not_found("customer account"))?;
    if customer.id == partner {
        return Err(AppError::bad_request("self_relationship", "an account cannot be its own partner"));
    }
    let perms = permission_set(&input.permissions)?;
    expiry_checked(input.expires_at, env.now)?;
    let contact = match &actor.user_id {
        Some(u) => Some(u.clone()),
        None => store::users::owner(conn, partner)?.map(|o| o.id),
    };
    let terms = Terms {
        expires_at: input.expires_at,
        auto_extend: input.auto_extend,
        allow_delegates: input.allow_delegates,
        undisclosed: input.undisclosed,
    };
    let row = new_row(env, Side::Partner, (partner, &customer.id), clean_name(&input.name)?, contact, perms, terms);
    store::delegation::insert(conn, &row)?;
    let detail = serde_json::json!({ "permissions": perms.names(), "expires_at": input.expires_at });
    audit_both(conn, env, actor, Some(Side::Partner), &row, "relationship.requested", detail.clone(), detail)?;
    let body = format!(
        "{} asks for delegated access to {} ({}).\n\nPermissions: {}\nExpires: {}\n\nApprove: POST {}\nDecline: POST {}\n\
         Unanswered, the request expires in {REQUEST_TTL_DAYS} days.\n",
        partner_row.name,
        customer.name,
        row.name,
        perms.names().join(", "),
        input.expires_at.map_or("never".into(), |t| crate::clock::rfc3339::format(&t)),
        api(env, &format!("/relationships/{}/approve", row.id)),
        api(env, &format!("/relationships/{}/decline", row.id)),
    );
    mail_customer(conn, env, &row, &format!("{} requests access to {}", partner_row.name, customer.name), &body)?;
    view(conn, &row, Side::Partner, env.now)
}

/// A customer admin invites a partner user (of another account) to administer it.
pub fn invite(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    customer: &str,
    input: InviteInput,
) -> AppResult<RelationshipView> {
    let customer_row = account(conn, customer)?;
    let email = normalize_email(&input.partner_email)?;
    let partner_user = store::users::find_by_email(conn, &email)?.filter(|u| u.status == UserStatus::Active).ok_or(
        AppError::NotFoundBecause {
            code: "partner_user_not_found",
            message: format!("no active user {email} on this platform: the partner must have an account here"),
        },
    )?;
    if partner_user.account_id == customer {
        return Err(AppError::bad_request("self_relationship", "that user belongs to this account"));
    }
    let perms = permission_set(&input.permissions)?;
    check_grant(actor.holds, perms)?;
    expiry_checked(input.expires_at, env.now)?;
    let partner_row = account(conn, &partner_user.account_id)?;
    let name = clean_name(input.name.as_deref().unwrap_or(&format!("{} for {}", partner_row.name, customer_row.name)))?;
    let terms = Terms {
        expires_at: input.expires_at,
        auto_extend: input.auto_extend,
        allow_delegates: input.allow_delegates,
        undisclosed: input.undisclosed,
    };
    let row =
        new_row(env, Side::Customer, (&partner_row.id, customer), name, Some(partner_user.id.clone()), perms, terms);
    store::delegation::insert(conn, &row)?;
    let detail = serde_json::json!({ "permissions": perms.names(), "partner_user": partner_user.id });
    audit_both(conn, env, actor, Some(Side::Customer), &row, "relationship.invited", detail.clone(), detail)?;
    let body = format!(
        "{} invites you to administer its account as a partner.\n\nPermissions: {}\n\n\
         Open the invitation (signed in through your organisation's single sign-on):\n{}/delegations/{}/accept\n\n\
         (API: POST {}; your pending invitations: GET {})\n",
        customer_row.name,
        perms.names().join(", "),
        env.public_url.trim_end_matches('/'),
        row.id,
        api(env, &format!("/relationships/{}/accept", row.id)),
        api(env, "/delegations"),
    );
    mail(conn, env, &partner_row.id, &email, format!("{} invites you as its partner", customer_row.name), body)?;
    view(conn, &row, Side::Customer, env.now)
}

/// The account's relationships, on one side or both.
pub fn list(conn: &mut DbConn, env: &Env, caller: &str, side: Option<Side>) -> AppResult<Vec<RelationshipView>> {
    let (p, c) = match side {
        Some(Side::Partner) => (true, false),
        Some(Side::Customer) => (false, true),
        None => (true, true),
    };
    let rows = store::delegation::list_for_account(conn, caller, p, c)?;
    rows.iter().map(|r| view(conn, r, side_of(r, caller)?, env.now)).collect()
}

pub fn get(conn: &mut DbConn, env: &Env, caller: &str, id: &str) -> AppResult<RelationshipView> {
    let (r, side) = visible(conn, caller, id)?;
    view(conn, &r, side, env.now)
}

fn require_side(side: Side, want: Side, what: &str) -> AppResult<()> {
    if side == want {
        Ok(())
    } else {
        let code = match want {
            Side::Partner => "partner_only",
            Side::Customer => "customer_only",
        };
        Err(AppError::denied(code, format!("only the {} side may {what}", want.as_str())))
    }
}

fn ended(eff: &Effective) -> AppError {
    AppError::conflict("relationship_ended", format!("the relationship is {}", eff.status.as_str()))
}

/// The partner changes name, expiry, auto-extension, delegates or permissions. A wider
/// permission set waits for the customer's approval; a narrower one applies at once.
pub fn update(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    caller: &str,
    id: &str,
    input: UpdateInput,
) -> AppResult<RelationshipView> {
    let (mut r, side) = visible(conn, caller, id)?;
    require_side(side, Side::Partner, "change a relationship")?;
    let eff = state(&r, env.now);
    if eff.status.is_ended() {
        return Err(ended(&eff));
    }
    let mut changes = serde_json::Map::new();
    if let Some(n) = input.name {
        r.name = clean_name(&n)?;
        changes.insert("name".into(), r.name.clone().into());
    }
    if !input.expires_at.is_keep() {
        let e = input.expires_at.apply(None);
        expiry_checked(e, env.now)?;
        r.expires_at = e;
        changes.insert("expires_at".into(), serde_json::to_value(e.map(|t| crate::clock::rfc3339::format(&t)))?);
    } else if eff.extensions > 0 {
        r.expires_at = eff.expires_at;
    }
    if let Some(a) = input.auto_extend {
        r.auto_extend = a;
        changes.insert("auto_extend".into(), a.into());
    }
    if let Some(a) = input.allow_delegates {
        r.allow_delegates = a;
        changes.insert("allow_delegates".into(), a.into());
    }
    let mut widened = None;
    if let Some(names) = input.permissions {
        let requested = permission_set(&names)?;
        let current = stored_role_permissions(&r.permissions);
        if eff.status == Status::Active && widens(current, requested) {
            r.pending_permissions = Some(names_json(requested));
            changes.insert("pending_permissions".into(), requested.names().into());
            widened = Some(requested);
        } else {
            r.permissions = names_json(requested);
            r.pending_permissions = None;
            changes.insert("permissions".into(), requested.names().into());
        }
    }
    r.updated_at = env.now;
    save(conn, &mut r)?;
    let detail = serde_json::Value::Object(changes);
    audit_both(conn, env, actor, Some(Side::Partner), &r, "relationship.updated", detail.clone(), detail)?;
    if let Some(w) = widened {
        let partner = account(conn, &r.partner_account_id)?.name;
        let body = format!(
            "{partner} asks for wider access in relationship {} ({}).\n\nRequested permissions: {}\n\
             The current permissions stay in force until you approve.\n\nApprove: POST {}\nDecline: POST {}\n",
            r.name,
            r.id,
            w.names().join(", "),
            api(env, &format!("/relationships/{}/approve", r.id)),
            api(env, &format!("/relationships/{}/decline", r.id)),
        );
        mail_customer(conn, env, &r, &format!("{partner} asks for wider access"), &body)?;
    }
    view(conn, &r, side, env.now)
}

/// The customer approves a request, or a pending wider permission set.
pub fn approve(conn: &mut DbConn, env: &Env, actor: &Actor, caller: &str, id: &str) -> AppResult<RelationshipView> {
    let (mut r, side) = visible(conn, caller, id)?;
    require_side(side, Side::Customer, "approve")?;
    let eff = state(&r, env.now);
    let action = match (eff.status, &r.pending_permissions) {
        (Status::Pending, _) => {
            check_grant(actor.holds, stored_role_permissions(&r.permissions))?;
            r.status = Status::Active.as_str().into();
            r.activated_at = Some(env.now);
            "relationship.approved"
        }
        (Status::Active, Some(pending)) => {
            let wider = stored_role_permissions(pending);
            check_grant(actor.holds, wider)?;
            r.permissions = names_json(wider);
            r.pending_permissions = None;
            "relationship.permissions_approved"
        }
        (s, _) if s.is_ended() => return Err(ended(&eff)),
        _ => return Err(AppError::conflict("nothing_to_approve", "the relationship has no request awaiting approval")),
    };
    r.updated_at = env.now;
    save(conn, &mut r)?;
    let detail = serde_json::json!({ "permissions": stored_role_permissions(&r.permissions).names() });
    audit_both(conn, env, actor, Some(Side::Customer), &r, action, detail.clone(), detail)?;
    let customer = account(conn, &r.customer_account_id)?.name;
    let body = format!(
        "{customer} approved {} ({}).\n\nPermissions: {}\nAdd delegates: POST {}\n",
        r.name,
        r.id,
        stored_role_permissions(&r.permissions).names().join(", "),
        api(env, &format!("/relationships/{}/delegates", r.id)),
    );
    mail_partner(conn, env, &r, &format!("{customer} approved your request"), &body)?;
    view(conn, &r, side, env.now)
}

/// The customer declines a request (or a pending wider permission set, which then lapses
/// while the relationship stays as it was).
pub fn decline(conn: &mut DbConn, env: &Env, actor: &Actor, caller: &str, id: &str) -> AppResult<RelationshipView> {
    let (mut r, side) = visible(conn, caller, id)?;
    require_side(side, Side::Customer, "decline")?;
    let eff = state(&r, env.now);
    let action = match (eff.status, &r.pending_permissions) {
        (Status::Pending, _) => {
            r.status = Status::Declined.as_str().into();
            r.ended_at = Some(env.now);
            r.ended_by = Some(Side::Customer.as_str().into());
            "relationship.declined"
        }
        (Status::Active, Some(_)) => {
            r.pending_permissions = None;
            "relationship.permissions_declined"
        }
        (s, _) if s.is_ended() => return Err(ended(&eff)),
        _ => {
            return Err(AppError::conflict("nothing_to_decline", "the relationship has no request awaiting an answer"))
        }
    };
    r.updated_at = env.now;
    save(conn, &mut r)?;
    audit_both(conn, env, actor, Some(Side::Customer), &r, action, serde_json::json!({}), serde_json::json!({}))?;
    let customer = account(conn, &r.customer_account_id)?.name;
    mail_partner(
        conn,
        env,
        &r,
        &format!("{customer} declined your request"),
        &format!("{customer} declined {} ({}).\n", r.name, r.id),
    )?;
    view(conn, &r, side, env.now)
}

/// Either side ends a relationship; every delegated session of it ends with it. Returns
/// the hashes of the revoked tokens (for the caches).
pub fn terminate(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    caller: &str,
    id: &str,
) -> AppResult<(RelationshipView, Vec<String>)> {
    let (mut r, side) = visible(conn, caller, id)?;
    let eff = state(&r, env.now);
    if eff.status.is_ended() {
        return Err(ended(&eff));
    }
    r.status = Status::Terminated.as_str().into();
    r.ended_at = Some(env.now);
    r.ended_by = Some(side.as_str().into());
    r.updated_at = env.now;
    save(conn, &mut r)?;
    let hashes = store::delegation::revoke_sessions(conn, &r.id, None, env.now)?;
    let detail = serde_json::json!({ "by": side.as_str(), "sessions_ended": hashes.len() });
    audit_both(conn, env, actor, Some(side), &r, "relationship.terminated", detail.clone(), detail)?;
    let (partner, customer) = (account(conn, &r.partner_account_id)?.name, account(conn, &r.customer_account_id)?.name);
    let body = format!("Relationship {} ({}) between {partner} and {customer} has been terminated.\n", r.name, r.id);
    match side {
        Side::Partner => mail_customer(conn, env, &r, &format!("{partner} ended its access to {customer}"), &body)?,
        Side::Customer => mail_partner(conn, env, &r, &format!("{customer} ended your access"), &body)?,
    }
    Ok((view(conn, &r, side, env.now)?, hashes))
}

fn me(actor: &Actor) -> AppResult<String> {
    actor.user_id.clone().ok_or_else(|| AppError::forbidden("this needs a person's own credential (a user token)"))
}

/// The invited partner user accepts a customer's invitation: the relationship becomes
/// active and they its first, active delegate.
pub fn accept_invitation(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    caller: &str,
    id: &str,
) -> AppResult<RelationshipView> {
    let user = me(actor)?;
    let (mut r, side) = visible(conn, caller, id)?;
    if side != Side::Partner || r.contact_user_id.as_deref() != Some(user.as_str()) {
        return Err(AppError::not_found("relationship"));
    }
    let eff = state(&r, env.now);
    if eff.status != Status::Invited {
        if eff.status.is_ended() {
            return Err(ended(&eff));
        }
        return Err(AppError::conflict("not_invited", "this relationship is not an open invitation"));
    }
    r.status = Status::Active.as_str().into();
    r.activated_at = Some(env.now);
    r.updated_at = env.now;
    save(conn, &mut r)?;
    store::delegation::insert_delegate(
        conn,
        &DelegateRow {
            relationship_id: r.id.clone(),
            user_id: user.clone(),
            status: "active".into(),
            sources: serde_json::json!([MANUAL]).to_string(),
            added_at: env.now,
            accepted_at: Some(env.now),
        },
    )?;
    let customer_detail = serde_json::json!({ "delegate": delegate_shown(&r, &user) });
    audit_both(
        conn,
        env,
        actor,
        Some(Side::Partner),
        &r,
        "relationship.accepted",
        serde_json::json!({ "delegate": user }),
        customer_detail,
    )?;
    let partner = account(conn, &r.partner_account_id)?.name;
    mail_customer(
        conn,
        env,
        &r,
        &format!("{partner} accepted your invitation"),
        &format!("{partner} accepted relationship {} ({}); it is active.\n", r.name, r.id),
    )?;
    view(conn, &r, side, env.now)
}

/// How the customer sees a delegate of `r`.
fn delegate_shown(r: &RelationshipRow, user_id: &str) -> String {
    if r.undisclosed {
        pseudonym(&r.id, user_id)
    } else {
        user_id.to_owned()
    }
}

/// A partner admin adds a partner user as a delegate (an invitation they accept). Returns
/// the view and whether it was new.
pub fn add_delegate(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    caller: &str,
    id: &str,
    email: &str,
) -> AppResult<(DelegateView, bool)> {
    let (r, side) = visible(conn, caller, id)?;
    require_side(side, Side::Partner, "add delegates")?;
    let eff = state(&r, env.now);
    if eff.status != Status::Active {
        if eff.status.is_ended() {
            return Err(ended(&eff));
        }
        return Err(AppError::conflict("relationship_not_active", "delegates are added once the customer approved"));
    }
    if !r.allow_delegates {
        return Err(AppError::conflict("delegates_not_allowed", "this relationship does not allow delegates"));
    }
    let email = normalize_email(email)?;
    let user = store::users::find_by_email(conn, &email)?
        .filter(|u| u.account_id == r.partner_account_id)
        .ok_or(AppError::not_found("user"))?;
    if user.status != UserStatus::Active {
        return Err(AppError::conflict("user_not_active", "only active users of the partner account can be delegates"));
    }
    let created = match store::delegation::delegate(conn, &r.id, &user.id)? {
        Some(mut d) => {
            let mut sources = sources_of(&d);
            if sources.iter().any(|s| s == MANUAL) {
                false
            } else {
                sources.push(MANUAL.into());
                d.sources = serde_json::to_string(&sources)?;
                store::delegation::update_delegate(conn, &d)?;
                true
            }
        }
        None => {
            store::delegation::insert_delegate(
                conn,
                &DelegateRow {
                    relationship_id: r.id.clone(),
                    user_id: user.id.clone(),
                    status: "invited".into(),
                    sources: serde_json::json!([MANUAL]).to_string(),
                    added_at: env.now,
                    accepted_at: None,
                },
            )?;
            true
        }
    };
    if created {
        audit_both(
            conn,
            env,
            actor,
            Some(Side::Partner),
            &r,
            "delegate.added",
            serde_json::json!({ "delegate": user.id, "email": email }),
            serde_json::json!({ "delegate": delegate_shown(&r, &user.id) }),
        )?;
        let customer = account(conn, &r.customer_account_id)?.name;
        let body = format!(
            "You are a delegate of relationship {} in {customer}.\n\n\
             Open the invitation (signed in through your organisation's single sign-on):\n{}/delegations/{}/accept\n\n\
             (API: POST {}, or all your invitations at once: POST {})\n",
            r.name,
            env.public_url.trim_end_matches('/'),
            r.id,
            api(env, &format!("/delegations/{}/accept", r.id)),
            api(env, "/delegations/accept_all"),
        );
        mail(conn, env, &r.partner_account_id, &email, format!("You can now administer {customer}"), body)?;
    }
    let d = store::delegation::delegate(conn, &r.id, &user.id)?.ok_or(AppError::not_found("delegate"))?;
    Ok((delegate_view(conn, &r, Side::Partner, &d, env.now)?, created))
}

fn delegate_view(
    conn: &mut DbConn,
    r: &RelationshipRow,
    side: Side,
    d: &DelegateRow,
    now: NaiveDateTime,
) -> AppResult<DelegateView> {
    let sessions = store::delegation::live_sessions(conn, &r.id, now)?
        .into_iter()
        .filter(|(u, _, _)| u.as_deref() == Some(d.user_id.as_str()))
        .map(|(_, id, expires_at)| SessionRef { id, expires_at })
        .collect();
    let hidden = side == Side::Customer && r.undisclosed;
    let (user_id, email, display_name) = if hidden {
        let partner = account(conn, &r.partner_account_id)?.name;
        (pseudonym(&r.id, &d.user_id), None, Some(format!("{partner} delegate")))
    } else {
        let u = store::users::find_any(conn, &d.user_id)?;
        (d.user_id.clone(), u.as_ref().and_then(|u| u.email.clone()), u.and_then(|u| u.display_name))
    };
    Ok(DelegateView {
        user_id,
        email,
        display_name,
        status: d.status.clone(),
        sources: sources_of(d),
        added_at: d.added_at,
        accepted_at: d.accepted_at,
        sessions,
    })
}

pub fn list_delegates(conn: &mut DbConn, env: &Env, caller: &str, id: &str) -> AppResult<Vec<DelegateView>> {
    let (r, side) = visible(conn, caller, id)?;
    let rows = store::delegation::delegates_of(conn, &r.id)?;
    rows.iter().map(|d| delegate_view(conn, &r, side, d, env.now)).collect()
}

/// Removes a delegate's manual source (by user id, or by pseudonym on the customer side);
/// with no source left the delegate goes and their sessions end. Returns revoked hashes.
pub fn remove_delegate(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    caller: &str,
    id: &str,
    who: &str,
) -> AppResult<Vec<String>> {
    let (r, side) = visible(conn, caller, id)?;
    let rows = store::delegation::delegates_of(conn, &r.id)?;
    let found = rows.into_iter().find(|d| match side {
        Side::Partner => d.user_id == who,
        Side::Customer => delegate_shown(&r, &d.user_id) == who,
    });
    let mut d = found.ok_or(AppError::not_found("delegate"))?;
    let mut sources = sources_of(&d);
    sources.retain(|s| s != MANUAL);
    let hashes = if sources.is_empty() {
        store::delegation::delete_delegate(conn, &r.id, &d.user_id)?;
        store::delegation::revoke_sessions(conn, &r.id, Some(&d.user_id), env.now)?
    } else {
        d.sources = serde_json::to_string(&sources)?;
        store::delegation::update_delegate(conn, &d)?;
        Vec::new()
    };
    audit_both(
        conn,
        env,
        actor,
        Some(side),
        &r,
        "delegate.removed",
        serde_json::json!({ "delegate": d.user_id, "remaining_sources": sources }),
        serde_json::json!({ "delegate": delegate_shown(&r, &d.user_id), "remaining_sources": sources }),
    )?;
    Ok(hashes)
}

/// The caller's delegations and the customers' invitations addressed to them.
pub fn my_delegations(conn: &mut DbConn, env: &Env, actor: &Actor) -> AppResult<Vec<DelegationView>> {
    let user = me(actor)?;
    let mut out = Vec::new();
    for r in store::delegation::invitations_of_contact(conn, &user)? {
        out.push(delegation_view(conn, &r, "relationship_invitation", "invited", env.now)?);
    }
    for (d, r) in store::delegation::delegations_of_user(conn, &user)? {
        out.push(delegation_view(conn, &r, "delegate", &d.status, env.now)?);
    }
    Ok(out)
}

fn delegation_view(
    conn: &mut DbConn,
    r: &RelationshipRow,
    kind: &str,
    status: &str,
    now: NaiveDateTime,
) -> AppResult<DelegationView> {
    let eff = state(r, now);
    Ok(DelegationView {
        relationship_id: r.id.clone(),
        kind: kind.into(),
        status: status.into(),
        relationship_status: eff.status.as_str().into(),
        relationship_name: r.name.clone(),
        partner_account_id: r.partner_account_id.clone(),
        customer_account_id: r.customer_account_id.clone(),
        customer_name: account(conn, &r.customer_account_id)?.name,
        permissions: delegate_permissions(stored_role_permissions(&r.permissions)).names(),
        expires_at: eff.expires_at,
    })
}

fn accept_one(conn: &mut DbConn, env: &Env, actor: &Actor, r: &RelationshipRow, mut d: DelegateRow) -> AppResult<()> {
    d.status = "active".into();
    d.accepted_at = Some(env.now);
    store::delegation::update_delegate(conn, &d)?;
    audit_both(
        conn,
        env,
        actor,
        Some(Side::Partner),
        r,
        "delegate.accepted",
        serde_json::json!({ "delegate": d.user_id }),
        serde_json::json!({ "delegate": delegate_shown(r, &d.user_id) }),
    )
}

/// The caller accepts one delegate invitation (or the customer's invitation of them).
pub fn accept_delegation(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    caller: &str,
    id: &str,
) -> AppResult<DelegationView> {
    let user = me(actor)?;
    let r = store::delegation::find(conn, id)?.ok_or(AppError::not_found("delegation"))?;
    if r.partner_account_id != caller {
        return Err(AppError::not_found("delegation"));
    }
    if r.status == Status::Invited.as_str() && r.contact_user_id.as_deref() == Some(user.as_str()) {
        accept_invitation(conn, env, actor, caller, id)?;
        let d = store::delegation::delegate(conn, id, &user)?.ok_or(AppError::not_found("delegation"))?;
        return delegation_view(conn, &r, "delegate", &d.status, env.now);
    }
    let d = store::delegation::delegate(conn, id, &user)?.ok_or(AppError::not_found("delegation"))?;
    let eff = state(&r, env.now);
    if eff.status != Status::Active {
        return Err(ended(&eff));
    }
    if d.status != "active" {
        accept_one(conn, env, actor, &r, d)?;
    }
    delegation_view(conn, &r, "delegate", "active", env.now)
}

/// Accepts every open delegate invitation of the caller in active relationships (and the
/// customers' invitations addressed to them).
pub fn accept_all(conn: &mut DbConn, env: &Env, actor: &Actor, caller: &str) -> AppResult<Vec<DelegationView>> {
    let user = me(actor)?;
    let mut accepted = Vec::new();
    for r in store::delegation::invitations_of_contact(conn, &user)? {
        if r.partner_account_id == caller && state(&r, env.now).status == Status::Invited {
            accept_invitation(conn, env, actor, caller, &r.id)?;
            accepted.push(delegation_view(conn, &r, "delegate", "active", env.now)?);
        }
    }
    for (d, r) in store::delegation::delegations_of_user(conn, &user)? {
        if d.status != "active" && r.partner_account_id == caller && state(&r, env.now).status == Status::Active {
            accept_one(conn, env, actor, &r, d)?;
            accepted.push(delegation_view(conn, &r, "delegate", "active", env.now)?);
        }
    }
    Ok(accepted)
}

/// An active delegate of an active relationship (of the caller's account).
fn active_delegate(
    conn: &mut DbConn,
    now: NaiveDateTime,
    caller: &str,
    user: &str,
    id: &str,
) -> AppResult<(RelationshipRow, Effective)> {
    let r = store::delegation::find(conn, id)?.ok_or(AppError::not_found("delegation"))?;
    if r.partner_account_id != caller {
        return Err(AppError::not_found("delegation"));
    }
    let d = store::delegation::delegate(conn, id, user)?.ok_or(AppError::not_found("delegation"))?;
    let eff = state(&r, now);
    if eff.status != Status::Active {
        return Err(ended(&eff));
    }
    if d.status != "active" {
        return Err(AppError::conflict("invitation_not_accepted", "accept the delegation first"));
    }
    Ok((r, eff))
}

fn masked(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => format!("{}***@{domain}", local.chars().next().unwrap_or('*')),
        None => "***".into(),
    }
}

/// Mails the delegate a one-time code for entering the customer account.
pub fn send_code(conn: &mut DbConn, env: &Env, actor: &Actor, caller: &str, id: &str) -> AppResult<CodeSent> {
    let user = me(actor)?;
    let (r, _) = active_delegate(conn, env.now, caller, &user, id)?;
    if let Some(last) = store::delegation::latest_code(conn, id, &user)? {
        let wait = resend_wait(last.created_at, env.now);
        if wait > 0 {
            return Err(AppError::RateLimited { retry_after_secs: wait });
        }
    }
    if store::delegation::codes_since(conn, id, &user, env.now - Duration::hours(1))? >= CODES_PER_HOUR {
        return Err(AppError::RateLimited { retry_after_secs: 600 });
    }
    let email = store::users::find_any(conn, &user)?
        .and_then(|u| u.email)
        .ok_or_else(|| AppError::conflict("no_email", "your user has no e-mail address to send the code to"))?;
    let code = new_numeric_code(CODE_DIGITS);
    let code_id = new_id();
    let expires_at = env.now + Duration::minutes(CODE_TTL_MINUTES);
    store::delegation::insert_code(
        conn,
        &DelegateCodeRow {
            id: code_id.clone(),
            relationship_id: id.to_owned(),
            user_id: user.clone(),
            code_hash: hash_secret(&format!("{code_id}:{code}")),
            created_at: env.now,
            expires_at,
            failed_attempts: 0,
            used_at: None,
        },
    )?;
    let customer = account(conn, &r.customer_account_id)?.name;
    mail(
        conn,
        env,
        &r.partner_account_id,
        &email,
        format!("Your code to enter {customer}: {code}"),
        format!(
            "Your one-time code to act in {customer} is {code}.\nIt is valid for {CODE_TTL_MINUTES} minutes and once.\n\n\
             Enter it on the page you asked for it:\n{}/delegations/{id}/verify\n\n\
             (API: POST {} with {{\"code\": \"{code}\"}})\nIf you did not ask for it, tell your administrator.\n",
            env.public_url.trim_end_matches('/'),
            api(env, &format!("/delegations/{id}/session")),
        ),
    )?;
    audit::record(conn, env, caller, actor, actor.via, "delegate.code_sent", Some(id), serde_json::json!({}))?;
    Ok(CodeSent { sent_to: masked(&email), expires_at })
}

/// Exchanges a one-time code for a delegated token. The outer result fails the
/// transaction; the inner error is the answer after a commit (a wrong try is counted).
pub fn open_session(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    caller: &str,
    id: &str,
    code: &str,
) -> AppResult<Result<DelegatedSession, AppError>> {
    let user = me(actor)?;
    let (r, eff) = active_delegate(conn, env.now, caller, &user, id)?;
    let invalid = || AppError::denied("code_invalid", "the code is wrong; check the mail or ask for a new code");
    let Some(row) = store::delegation::latest_code(conn, id, &user)? else {
        return Ok(Err(AppError::denied("code_invalid", "no code was sent: ask for one first")));
    };
    let given = code.trim();
    let matches = given.len() == CODE_DIGITS
        && constant_time_eq(hash_secret(&format!("{}:{given}", row.id)).as_bytes(), row.code_hash.as_bytes());
    let facts = CodeFacts {
        created_at: row.created_at,
        expires_at: row.expires_at,
        failed_attempts: row.failed_attempts,
        used: row.used_at.is_some(),
        matches,
    };
    match check_code(facts, env.now) {
        CodeCheck::Wrong => {
            store::delegation::count_wrong_try(conn, &row.id)?;
            return Ok(Err(invalid()));
        }
        CodeCheck::Expired => {
            return Ok(Err(AppError::denied("code_expired", "the code was used or has expired; ask for a new one")))
        }
        CodeCheck::Locked { retry_after_secs } => return Ok(Err(AppError::RateLimited { retry_after_secs })),
        CodeCheck::Accepted => {}
    }
    if !store::delegation::use_code(conn, &row.id, env.now)? {
        return Ok(Err(AppError::denied("code_expired", "the code was used already")));
    }
    let token = new_secret("pvd_");
    let token_id = new_id();
    store::tokens::insert(
        conn,
        &TokenRow {
            id: token_id.clone(),
            account_id: Some(r.customer_account_id.clone()),
            user_id: Some(user.clone()),
            scope: "delegated".into(),
            token_hash: hash_secret(&token),
            label: Some(format!("delegated session ({})", r.name.chars().take(150).collect::<String>())),
            created_at: env.now,
            revoked_at: None,
            granted_from: Some(r.partner_account_id.clone()),
            expires_at: Some(env.now + Duration::hours(SESSION_HOURS)),
            last_used_at: None,
            relationship_id: Some(r.id.clone()),
        },
    )?;
    audit_both(
        conn,
        env,
        actor,
        Some(Side::Partner),
        &r,
        "delegation.session_started",
        serde_json::json!({ "delegate": user, "session": token_id }),
        serde_json::json!({ "delegate": delegate_shown(&r, &user), "session": token_id }),
    )?;
    Ok(Ok(DelegatedSession {
        token,
        expires_at: session_end(env.now, eff.expires_at),
        account_id: r.customer_account_id,
        relationship_id: r.id,
    }))
}

/// What a delegated token may do now: its relationship active, its delegate still one,
/// and the partner user active. Anything else ends the delegation at this request.
pub fn delegated_access(
    conn: &mut DbConn,
    principal: &crate::service::auth::Principal,
    now: NaiveDateTime,
) -> AppResult<DelegatedAccess> {
    let rid = principal.relationship_id.as_deref().unwrap_or_default();
    let user = principal.user_id.as_deref().unwrap_or_default();
    let r = store::delegation::find(conn, rid)?
        .ok_or_else(|| AppError::DelegationEnded("the relationship no longer exists".into()))?;
    let eff = state(&r, now);
    if eff.status != Status::Active {
        return Err(AppError::DelegationEnded(format!("the relationship is {}", eff.status.as_str())));
    }
    let d = store::delegation::delegate(conn, rid, user)?
        .filter(|d| d.status == "active")
        .ok_or_else(|| AppError::DelegationEnded("you are no longer a delegate of this relationship".into()))?;
    let person = store::users::find_any(conn, &d.user_id)?
        .filter(|u| u.status == UserStatus::Active && u.account_id == r.partner_account_id)
        .ok_or_else(|| AppError::DelegationEnded("your user in the partner account is not active".into()))?;
    let partner = account(conn, &r.partner_account_id)?.name;
    let shown = delegate_shown(&r, &person.id);
    let label = if r.undisclosed {
        format!("{partner} delegate ({shown})")
    } else {
        format!("delegate:{} ({partner})", person.email.as_deref().unwrap_or(&person.id))
    };
    let bindings = crate::service::sync::binding_permissions(conn, &r.id)?;
    let holds =
        crate::domain::sync::delegate_holds(&sources_of(&d), stored_role_permissions(&r.permissions), &bindings);
    Ok(DelegatedAccess {
        permissions: holds,
        label,
        stamp: DelegatedBy {
            relationship_id: r.id.clone(),
            partner_account_id: r.partner_account_id.clone(),
            partner,
            delegate: shown,
            permission: None,
        },
        ends_at: eff.expires_at,
    })
}

/// Writes down what time has made true: requests past 90 days and relationships past
/// their end expire (sessions revoked, both sides told), auto-extending ones move their
/// end, and expiry warnings go out once each. Safe to run in several processes at once.
pub fn sweep(conn: &mut DbConn, env: &Env) -> AppResult<(SweepReport, Vec<String>)> {
    let mut report = SweepReport::default();
    let mut revoked = Vec::new();
    let system = Actor::system("expiry");
    let candidates = store::delegation::sweep_candidates(
        conn,
        env.now - Duration::days(REQUEST_TTL_DAYS),
        env.now + Duration::days(i64::from(crate::domain::delegation::WARNING_DAYS[0])),
        1000,
    )?;
    for mut r in candidates {
        let eff = state(&r, env.now);
        let stored = Status::parse(&r.status).unwrap_or(Status::Terminated);
        if eff.status == Status::Expired && stored != Status::Expired {
            r.ended_at = ended_instant(&r);
            r.status = Status::Expired.as_str().into();
            r.ended_by = Some("expiry".into());
            r.updated_at = env.now;
            save(conn, &mut r)?;
            revoked.extend(store::delegation::revoke_sessions(conn, &r.id, None, env.now)?);
            audit_both(
                conn,
                env,
                &system,
                None,
                &r,
                "relationship.expired",
                serde_json::json!({}),
                serde_json::json!({}),
            )?;
            let body =
                format!("Relationship {} ({}) has expired; its delegates no longer have access.\n", r.name, r.id);
            mail_partner(conn, env, &r, "A relationship has expired", &body)?;
            mail_customer(conn, env, &r, "A partner relationship has expired", &body)?;
            report.expired += 1;
            continue;
        }
        if eff.status != Status::Active {
            continue;
        }
        if eff.extensions > 0 {
            r.expires_at = eff.expires_at;
            r.updated_at = env.now;
            save(conn, &mut r)?;
            let detail = serde_json::json!({ "expires_at": eff.expires_at.map(|t| crate::clock::rfc3339::format(&t)) });
            audit_both(conn, env, &system, None, &r, "relationship.extended", detail.clone(), detail)?;
            report.extended += 1;
            continue;
        }
        let Some(end) = r.expires_at.filter(|_| !r.auto_extend) else { continue };
        let recorded = store::delegation::warnings_recorded(conn, &r.id, end)?;
        let (to_mail, to_record) = warnings_due(end, env.now, &recorded);
        let mut mail_it = false;
        for days in to_record {
            let fresh = store::delegation::record_warning(
                conn,
                &WarningRow { relationship_id: r.id.clone(), expires_at: end, days_before: days, sent_at: env.now },
            )?;
            mail_it |= fresh && Some(days) == to_mail;
        }
        if let (true, Some(days)) = (mail_it, to_mail) {
            let body = format!(
                "Relationship {} ({}) expires on {} (in {days} day{}).\nThe partner can extend it: PATCH {}\n",
                r.name,
                r.id,
                crate::clock::rfc3339::format(&end),
                if days == 1 { "" } else { "s" },
                api(env, &format!("/relationships/{}", r.id)),
            );
            let subject = format!("A relationship expires in {days} day{}", if days == 1 { "" } else { "s" });
            mail_partner(conn, env, &r, &subject, &body)?;
            mail_customer(conn, env, &r, &subject, &body)?;
            audit_both(
                conn,
                env,
                &system,
                None,
                &r,
                "relationship.expiry_warning",
                serde_json::json!({ "days_before": days }),
                serde_json::json!({ "days_before": days }),
            )?;
            report.warnings += 1;
        }
    }
    Ok((report, revoked))
}

//! User administration shared by the admin API and the CLI. Every change goes through the
//! provisioning pipeline; this module only builds the changes and the views.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::batch::{BatchReport, ImportStopped};
use crate::clock::to_utc;
use crate::domain::catalog::{AddOn, UserTier};
use crate::domain::users::{
    invitation_expired, read_user_csv, write_user_csv, BaseRole, RowError, UserCsvRow, UserStatus,
};
use crate::error::{AppError, AppResult};
use crate::provisioning::{
    self, Actor, Env, ExplicitFields, Field, IdentityChange, Operation, ProvisioningIssue, Shortage, Source,
};
use crate::store::models::{UserPhoneRow, UserRow};
use crate::store::{self, Db, DbConn};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PhoneView {
    pub site_id: Option<String>,
    pub extension: Option<i64>,
    pub long_extension: Option<String>,
    pub number: Option<String>,
    pub calling_plan: Option<String>,
    pub calling_plan_bundled: bool,
    pub roles: Vec<String>,
    pub outbound_caller_id: Option<String>,
    pub sms_enabled: Option<bool>,
    pub status: Option<String>,
    pub package: Option<String>,
}

impl From<&UserPhoneRow> for PhoneView {
    fn from(p: &UserPhoneRow) -> PhoneView {
        PhoneView {
            site_id: p.site_id.clone(),
            extension: p.extension,
            long_extension: p.long_extension.clone(),
            number: p.phone_number.clone(),
            calling_plan: p.calling_plan.clone(),
            calling_plan_bundled: p.calling_plan_bundled,
            roles: p.phone_roles.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            outbound_caller_id: p.outbound_caller_id.clone(),
            sms_enabled: p.sms_enabled,
            status: p.phone_status.clone(),
            package: p.phone_package.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub account_id: String,
    pub email: Option<String>,
    pub user_name: String,
    pub external_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub department: Option<String>,
    pub job_title: Option<String>,
    /// `basic`, `pro`, `business`, `business_plus` or `enterprise`.
    #[serde(rename = "type")]
    pub user_type: String,
    /// `owner`, `admin` or `member`.
    #[schema(value_type = String)]
    pub role: BaseRole,
    pub custom_role_id: Option<String>,
    /// `pending` (invited), `active` or `inactive` (deactivated).
    #[schema(value_type = String)]
    pub status: UserStatus,
    pub addons: Vec<String>,
    pub seats: Vec<String>,
    pub phone: Option<PhoneView>,
    pub provisioning_issues: Vec<ProvisioningIssue>,
    pub last_source: String,
    pub version: i64,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: NaiveDateTime,
    #[serde(serialize_with = "crate::clock::rfc3339::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_login_at: Option<NaiveDateTime>,
}

pub fn view(u: &UserRow, phone: Option<&UserPhoneRow>) -> UserView {
    UserView {
        id: u.id.clone(),
        account_id: u.account_id.clone(),
        email: u.email.clone(),
        user_name: u.user_name.clone(),
        external_id: u.external_id.clone(),
        first_name: u.given_name.clone(),
        last_name: u.family_name.clone(),
        display_name: u.display_name.clone(),
        department: u.department.clone(),
        job_title: u.job_title.clone(),
        user_type: u.user_type.clone(),
        role: u.role,
        custom_role_id: u.custom_role_id.clone(),
        status: u.status,
        addons: u.addons.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        seats: u.seats.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        phone: phone.map(PhoneView::from),
        provisioning_issues: serde_json::from_str(&u.provisioning_issues).unwrap_or_default(),
        last_source: u.last_source.clone(),
        version: u.version,
        created_at: u.created_at,
        updated_at: u.updated_at,
        last_login_at: u.last_login_at,
    }
}

pub fn get(conn: &mut DbConn, account: &str, id: &str) -> AppResult<UserView> {
    let u = store::users::find(conn, account, id)?.ok_or(AppError::not_found("user"))?;
    let p = store::users::phone(conn, &u.id)?;
    Ok(view(&u, p.as_ref()))
}

pub fn list(
    conn: &mut DbConn,
    account: &str,
    filter: &store::users::UserListFilter,
    limit: i64,
    offset: i64,
) -> AppResult<(Vec<UserView>, i64)> {
    let (rows, total) = store::users::list(conn, account, filter, limit, offset)?;
    let ids: Vec<String> = rows.iter().map(|u| u.id.clone()).collect();
    let phones: HashMap<String, UserPhoneRow> =
        store::users::phones_of(conn, &ids)?.into_iter().map(|p| (p.user_id.clone(), p)).collect();
    Ok((rows.iter().map(|u| view(u, phones.get(&u.id))).collect(), total))
}

/// Body of "add a user" / "update a user".
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub department: Option<String>,
    pub job_title: Option<String>,
    /// `basic`, `pro`, `business`, `business_plus` or `enterprise`.
    #[serde(rename = "type")]
    pub user_type: Option<String>,
    /// `admin` or `member` (only the owner grants or removes admin).
    pub role: Option<String>,
    /// A custom role by name; empty string removes it.
    pub custom_role: Option<String>,
    pub addons: Option<Vec<String>>,
    /// `active` or `inactive`.
    pub status: Option<String>,
    /// Groups to add the user to, by name.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Phone profile changes (phone must be enabled on the account).
    pub phone: Option<PhoneInput>,
}

/// Phone fields of a user. Absent: unchanged; empty string: cleared.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneInput {
    /// Site by id, code or name (default: the main site).
    pub site: Option<String>,
    /// `0` takes the next free extension of the site; a real one applies only if free (one
    /// longer than the site's extensions is reported as a provisioning issue, not applied).
    #[schema(minimum = 0, maximum = 4294967295_u64, format = Int64)]
    pub extension: Option<u32>,
    /// A complete number from the account's pool, any common notation.
    pub number: Option<String>,
    /// `regional_metered`, `regional_unlimited`, `global_select` or a numeric plan code.
    pub calling_plan: Option<String>,
    /// Phone roles, e.g. `phone_super_admin`, `phone_site_admin:<site>`, `call_queue_admin`.
    pub roles: Option<Vec<String>>,
    pub outbound_caller_id: Option<String>,
    pub sms_enabled: Option<bool>,
    /// Remove the extension (and leave phone if no calling plan remains).
    #[serde(default)]
    pub clear_extension: bool,
}

fn phone_fields(p: &PhoneInput) -> AppResult<crate::provisioning::PhoneFields> {
    let calling_plan = match p.calling_plan.as_deref().map(str::trim) {
        None => Field::Keep,
        Some("") => Field::Clear,
        Some(c) => Field::Set(
            c.parse::<crate::domain::catalog::CallingPlan>()
                .map_err(|e| AppError::bad_request("invalid_calling_plan", e.to_string()))?,
        ),
    };
    Ok(crate::provisioning::PhoneFields {
        site: text(&p.site),
        extension: match (p.extension, p.clear_extension) {
            (_, true) => Field::Clear,
            (Some(e), false) => Field::Set(e),
            (None, false) => Field::Keep,
        },
        number: text(&p.number),
        calling_plan,
        roles: p.roles.as_ref().map(|r| r.iter().cloned().collect()),
        outbound_caller_id: text(&p.outbound_caller_id),
        sms_enabled: match p.sms_enabled {
            Some(b) => Field::Set(b),
            None => Field::Keep,
        },
        ..Default::default()
    })
}

fn text(v: &Option<String>) -> Field<String> {
    match v.as_deref().map(str::trim) {
        None => Field::Keep,
        Some("") => Field::Clear,
        Some(s) => Field::Set(s.to_owned()),
    }
}

pub fn explicit_from_input(input: &UserInput) -> AppResult<ExplicitFields> {
    let user_type = input
        .user_type
        .as_deref()
        .map(|t| t.parse::<UserTier>().map_err(|e| AppError::bad_request("invalid_type", e.to_string())))
        .transpose()?;
    let role = match input.role.as_deref() {
        None => None,
        Some(r) => Some(BaseRole::parse(r).ok_or_else(|| {
            AppError::bad_request("invalid_role", format!("unknown role {r:?}: use admin or member"))
        })?),
    };
    let addons = input
        .addons
        .as_ref()
        .map(|list| {
            list.iter()
                .map(|a| a.parse::<AddOn>().map_err(|e| AppError::bad_request("invalid_addon", e.to_string())))
                .collect::<AppResult<BTreeSet<AddOn>>>()
        })
        .transpose()?;
    let status = match input.status.as_deref() {
        None => None,
        Some("active") => Some(crate::domain::users::UserStatus::Active),
        Some("inactive") => Some(crate::domain::users::UserStatus::Inactive),
        Some(s) => {
            return Err(AppError::bad_request(
                "invalid_status",
                format!("unknown status {s:?}: use active or inactive"),
            ))
        }
    };
    for (name, v) in [
        ("first_name", &input.first_name),
        ("last_name", &input.last_name),
        ("display_name", &input.display_name),
        ("department", &input.department),
        ("job_title", &input.job_title),
    ] {
        if v.as_ref().is_some_and(|s| s.chars().count() > 256) {
            return Err(AppError::bad_request("invalid_value", format!("{name} is longer than 256 characters")));
        }
    }
    Ok(ExplicitFields {
        email: text(&input.email),
        given_name: text(&input.first_name),
        family_name: text(&input.last_name),
        display_name: text(&input.display_name),
        department: text(&input.department),
        job_title: text(&input.job_title),
        user_type,
        role,
        custom_role: text(&input.custom_role),
        addons,
        status,
        add_to_groups: input.groups.clone(),
        phone: match &input.phone {
            Some(p) => phone_fields(p)?,
            None => Default::default(),
        },
        ..ExplicitFields::default()
    })
}

/// "Add user": a pending invitation, licensed within the account's seats (409 otherwise).
pub fn create_change(account: &str, actor: &Actor, source: Source, input: &UserInput) -> AppResult<IdentityChange> {
    if input.email.as_deref().map(str::trim).unwrap_or("").is_empty() {
        return Err(AppError::bad_request("missing_email", "email is required"));
    }
    let mut change = IdentityChange::new(account, source, actor.clone(), Operation::Create);
    change.explicit = explicit_from_input(input)?;
    change.shortage = Shortage::Refuse;
    change.invite = true;
    Ok(change)
}

pub fn update_change(
    account: &str,
    actor: &Actor,
    user_id: &str,
    input: &UserInput,
    expected_version: Option<i64>,
) -> AppResult<IdentityChange> {
    let mut change = IdentityChange::new(
        account,
        actor.via,
        actor.clone(),
        Operation::Update { user_id: user_id.to_owned(), expected_version },
    );
    change.explicit = explicit_from_input(input)?;
    change.shortage = Shortage::Refuse;
    Ok(change)
}

pub fn delete_change(account: &str, actor: &Actor, source: Source, user_id: &str) -> IdentityChange {
    IdentityChange::new(account, source, actor.clone(), Operation::Delete { user_id: user_id.to_owned() })
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct BulkReport {
    pub changed: Vec<String>,
    /// Users left as they were, with the reason (e.g. no seat left).
    pub skipped: Vec<BulkSkip>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BulkSkip {
    pub user_id: String,
    pub reason: String,
}

/// Changes every user of type `from` to `to`, as long as seats last: the users that do not
/// fit are reported, the others changed (each in its own savepoint).
pub fn bulk_change_type(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    account: &str,
    from: UserTier,
    to: UserTier,
) -> AppResult<BulkReport> {
    let mut report = BulkReport::default();
    for uid in store::users::ids_of_type(conn, account, from.as_str())? {
        let mut change = IdentityChange::new(
            account,
            actor.via,
            actor.clone(),
            Operation::Update { user_id: uid.clone(), expected_version: None },
        );
        change.explicit.user_type = Some(to);
        change.shortage = Shortage::Refuse;
        let result = diesel::Connection::transaction(conn, |c| provisioning::run(c, env, change));
        match result {
            Ok(_) => report.changed.push(uid),
            Err(e) => report.skipped.push(BulkSkip { user_id: uid, reason: e.public_message() }),
        }
    }
    Ok(report)
}

/// Removes every user of one type (never the owner).
pub fn bulk_remove_type(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    account: &str,
    tier: UserTier,
) -> AppResult<BulkReport> {
    let mut report = BulkReport::default();
    for uid in store::users::ids_of_type(conn, account, tier.as_str())? {
        let change = delete_change(account, actor, actor.via, &uid);
        match diesel::Connection::transaction(conn, |c| provisioning::run(c, env, change)) {
            Ok(_) => report.changed.push(uid),
            Err(e) => report.skipped.push(BulkSkip { user_id: uid, reason: e.public_message() }),
        }
    }
    Ok(report)
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub failed: Vec<RowError>,
    pub issues: Vec<RowIssue>,
    /// Present when the import stopped before the end of the file (see [`ImportStopped`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<ImportStopped>,
}

impl BatchReport for ImportReport {
    fn absorb(&mut self, part: Self) {
        self.created += part.created;
        self.updated += part.updated;
        self.unchanged += part.unchanged;
        self.failed.extend(part.failed);
        self.issues.extend(part.issues);
    }

    fn stopped_mut(&mut self) -> &mut Option<ImportStopped> {
        &mut self.stopped
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RowIssue {
    pub line: u64,
    pub email: String,
    pub issues: Vec<ProvisioningIssue>,
}

fn csv_row_change(account: &str, actor: &Actor, row: &UserCsvRow) -> IdentityChange {
    let mut change = IdentityChange::new(account, Source::Csv, actor.clone(), Operation::Upsert);
    let opt = |v: &Option<String>| match v {
        Some(s) => Field::Set(s.clone()),
        None => Field::Keep,
    };
    change.explicit.email = Field::Set(row.email.clone());
    change.explicit.given_name = opt(&row.first_name);
    change.explicit.family_name = opt(&row.last_name);
    change.explicit.department = opt(&row.department);
    // The "user group" cell holds one group or several separated by `;` (as export writes).
    let groups: Vec<String> = row
        .group
        .iter()
        .flat_map(|g| g.split(';'))
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect();
    change.explicit.add_to_groups = groups.clone();
    change.attributes = [
        ("email".to_owned(), vec![row.email.clone()]),
        ("department".to_owned(), row.department.iter().cloned().collect()),
        ("group".to_owned(), groups),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    change.apply_mapping = true;
    change.invite = true;
    change.shortage = Shortage::Report;
    change
}

/// Applies one batch of CSV rows in one transaction, each row in its own savepoint. The
/// rows share one batch scope: the users they name are read in one query, and their audit
/// entries, invitations and mails are written together at the end.
fn import_batch(
    conn: &mut DbConn,
    env: &Env,
    account: &str,
    actor: &Actor,
    rows: &[UserCsvRow],
    report: &mut ImportReport,
) -> AppResult<()> {
    let scope = std::sync::Arc::new(crate::provisioning::batch_scope::BatchScope::default());
    let env = env.for_batch(scope.clone());
    let keys: Vec<Option<String>> =
        rows.iter().map(|r| crate::domain::accounts::normalize_email(&r.email).ok()).collect();
    scope.prefetch_users(conn, &keys.iter().flatten().map(String::as_str).collect::<Vec<_>>())?;
    for (row, key) in rows.iter().zip(&keys) {
        let mut change = csv_row_change(account, actor, row);
        change.prefetched_user = key.as_deref().and_then(|k| scope.user(k));
        let mark = scope.mark();
        match diesel::Connection::transaction(conn, |c| provisioning::run(c, &env, change)) {
            Ok(applied) => {
                if let Some(k) = key {
                    scope.remember_user(k, applied.user);
                }
                let o = applied.outcome;
                if o.created {
                    report.created += 1;
                } else if o.changes.is_empty() {
                    report.unchanged += 1;
                } else {
                    report.updated += 1;
                }
                if !o.issues.is_empty() {
                    report.issues.push(RowIssue { line: row.line, email: row.email.clone(), issues: o.issues });
                }
            }
            Err(e) => {
                scope.rollback_to(mark);
                report.failed.push(RowError { line: row.line, column: None, message: e.public_message() })
            }
        }
    }
    scope.flush(conn)
}

/// Streams a user CSV into the account: bad rows are reported with their line numbers,
/// good rows are applied in batches. `progress` is called after each batch with the number
/// of rows read so far.
pub fn import_csv<R: Read>(
    db: &Db,
    env_at: impl Fn() -> Env,
    actor: &Actor,
    account: &str,
    input: R,
    mut progress: impl FnMut(u64),
) -> AppResult<ImportReport> {
    let mut report = ImportReport::default();
    report.rows = super::batch::apply_in_batches(
        db,
        read_user_csv(input),
        &mut report,
        |report, e| report.failed.push(e),
        |c, report, rows| import_batch(c, &env_at(), account, actor, rows, report),
        |row| row.line,
        &mut progress,
    );
    report.failed.sort_by_key(|e| e.line);
    Ok(report)
}

/// Writes all users of the account as CSV (`email,first name,last name,department,user group`;
/// a user in several groups has them all in the last cell, separated by `; `, which import
/// reads back).
pub fn export_csv(conn: &mut DbConn, account: &str) -> AppResult<Vec<u8>> {
    let mut out = Vec::new();
    let mut rows = Vec::new();
    let mut offset = 0;
    loop {
        let (page, _) = store::users::list(conn, account, &Default::default(), 1000, offset)?;
        if page.is_empty() {
            break;
        }
        offset += page.len() as i64;
        for u in page {
            let group =
                store::groups::groups_of_user(conn, &u.id)?.into_iter().map(|(_, n)| n).collect::<Vec<_>>().join("; ");
            rows.push([
                u.email.clone().unwrap_or_else(|| u.user_name.clone()),
                u.given_name.clone().unwrap_or_default(),
                u.family_name.clone().unwrap_or_default(),
                u.department.clone().unwrap_or_default(),
                group,
            ]);
        }
    }
    write_user_csv(&mut out, rows).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(out)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InvitationView {
    pub user_id: String,
    pub email: Option<String>,
    pub sent_count: i32,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub sent_at: NaiveDateTime,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: NaiveDateTime,
    pub expired: bool,
}

pub fn invitations(
    conn: &mut DbConn,
    env: &Env,
    account: &str,
    limit: i64,
    offset: i64,
) -> AppResult<Vec<InvitationView>> {
    Ok(store::users::pending_invitations(conn, account, limit, offset)?
        .into_iter()
        .map(|(inv, u)| InvitationView {
            user_id: u.id,
            email: u.email,
            sent_count: inv.sent_count,
            sent_at: inv.created_at,
            expires_at: inv.expires_at,
            expired: invitation_expired(to_utc(inv.expires_at), to_utc(env.now)),
        })
        .collect())
}

/// Removes pending users whose invitation expired (they drop off the pending list and give
/// their seats back). Returns how many.
pub fn purge_expired_invitations(conn: &mut DbConn, env: &Env) -> AppResult<usize> {
    let mut n = 0;
    for inv in store::users::expired_invitations(conn, env.now, 500)? {
        let Some(user) = store::users::find_any(conn, &inv.user_id)? else { continue };
        if user.status != UserStatus::Pending {
            store::users::delete_invitation(conn, &inv.id)?;
            continue;
        }
        let change = delete_change(&inv.account_id, &Actor::system("system:invitation-expiry"), Source::Api, &user.id);
        provisioning::run(conn, env, change)?;
        n += 1;
    }
    Ok(n)
}

/// The invitation a token names, if it can still be accepted: unknown, used or replaced →
/// 404 `invitation_not_found`; expired → 410 `invitation_expired`.
fn live_invitation(conn: &mut DbConn, env: &Env, token: &str) -> AppResult<store::models::InvitationRow> {
    let inv = store::users::invitation_by_hash(conn, &crate::secrets::hash_secret(token))?.ok_or_else(|| {
        AppError::NotFoundBecause {
            code: "invitation_not_found",
            message: "this invitation is not valid: it was already accepted (then just sign in), or withdrawn, or replaced by a newer one".into(),
        }
    })?;
    if invitation_expired(to_utc(inv.expires_at), to_utc(env.now)) {
        return Err(AppError::Gone {
            code: "invitation_expired",
            message: "the invitation has expired; ask an administrator to send it again".into(),
        });
    }
    Ok(inv)
}

/// What an invitation link shows before it is accepted: which account invites whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationPreview {
    pub account_name: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub expires_at: NaiveDateTime,
}

/// Reads an invitation without accepting it (the same refusals as [`accept_invitation`]).
pub fn invitation_preview(conn: &mut DbConn, env: &Env, token: &str) -> AppResult<InvitationPreview> {
    let inv = live_invitation(conn, env, token)?;
    let user = store::users::find(conn, &inv.account_id, &inv.user_id)?.ok_or(AppError::not_found("invitation"))?;
    let account = store::accounts::find(conn, &inv.account_id)?.ok_or(AppError::not_found("invitation"))?;
    Ok(InvitationPreview {
        account_name: account.name,
        email: user.email,
        display_name: user.display_name,
        expires_at: inv.expires_at,
    })
}

/// Accepts an invitation (its link or `POST /api/v1/invitations/accept`): the pending user
/// becomes active, through the pipeline, with a version check. Expired invitations are
/// refused (410); a user deactivated meanwhile is not reactivated by it (409).
pub fn accept_invitation(conn: &mut DbConn, env: &Env, token: &str) -> AppResult<UserRow> {
    let inv = live_invitation(conn, env, token)?;
    let user = store::users::find(conn, &inv.account_id, &inv.user_id)?.ok_or(AppError::not_found("invitation"))?;
    let actor = Actor::system(format!("user:{}", user.id));
    let op = Operation::Update { user_id: user.id.clone(), expected_version: Some(user.version) };
    let mut change = IdentityChange::new(inv.account_id.clone(), Source::Api, actor.clone(), op);
    change.shortage = Shortage::Refuse;
    change.explicit.status = Some(UserStatus::Active);
    change.explicit.accepts_invitation = true;
    let applied = provisioning::run(conn, env, change)?;
    let user = applied.user.ok_or(AppError::not_found("user"))?;
    provisioning::audit::record(
        conn,
        env,
        &inv.account_id,
        &actor,
        actor.via,
        "invitation.accepted",
        Some(&user.id),
        serde_json::json!({}),
    )?;
    Ok(user)
}

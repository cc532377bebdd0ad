//! The provisioning pipeline: IdentityChange → desired state → reconcile with the stored
//! user → one transaction of writes and audit entries → Outcome.
//!
//! Every adapter (admin API, CSV, SCIM, SAML) calls [`run`] inside a write transaction
//! (the group-commit writer or `write_tx`); nothing else writes users or their
//! entitlements. On error the caller's transaction (or savepoint) rolls everything back.

use chrono::NaiveDateTime;
use diesel::result::Error as DieselError;

use std::collections::BTreeSet;

use super::change::*;
use super::entitlements;
use crate::domain::accounts::normalize_email;
use crate::domain::authz::{check_grant, stored_role_permissions, GrantError, Standing};
use crate::domain::catalog::{AddOn, UserTier};
use crate::domain::mapping::{DesiredState, MappingConfig, MultiDesired, Target};
use crate::domain::phone::ExtensionRequest;
use crate::domain::users::{check_role_change, BaseRole, UserStatus};
use crate::error::{AppError, AppResult};
use crate::store::models::{AccountRow, UserRow};
use crate::store::{self, DbConn};

/// What the pipeline needs from its surroundings.
#[derive(Clone)]
pub struct Env {
    pub now: NaiveDateTime,
    /// Base URL for links in mails (invitations).
    pub public_url: String,
    /// Compiled mapping rules, shared across changes.
    pub mappings: std::sync::Arc<super::mapping::MappingCache>,
    /// The import batch this change runs in, if any: shared reads and the rows written
    /// together at the end of the batch (see `batch_scope`).
    pub batch: Option<std::sync::Arc<super::batch_scope::BatchScope>>,
}

impl Env {
    /// An environment with its own (empty) rule cache: the CLI and tests.
    pub fn standalone(now: NaiveDateTime, public_url: impl Into<String>) -> Env {
        Env { now, public_url: public_url.into(), mappings: Default::default(), batch: None }
    }

    /// The same environment for the rows of one import batch.
    pub fn for_batch(&self, scope: std::sync::Arc<super::batch_scope::BatchScope>) -> Env {
        Env { batch: Some(scope), ..self.clone() }
    }

    /// The account row (shared within an import batch).
    pub fn account(&self, conn: &mut DbConn, id: &str) -> AppResult<Option<AccountRow>> {
        match &self.batch {
            Some(scope) => scope.account(conn, id),
            None => Ok(store::accounts::find(conn, id)?),
        }
    }
}

/// The user after the change (None when deleted), its phone profile, and what happened.
pub struct Applied {
    pub outcome: Outcome,
    pub user: Option<UserRow>,
    pub phone: Option<crate::store::models::UserPhoneRow>,
}

pub fn run(conn: &mut DbConn, env: &Env, change: IdentityChange) -> AppResult<Applied> {
    // What the rules read, kept so they can run again when only the groups change.
    let read_by_rules = (change.apply_mapping
        && !change.attributes.is_empty()
        && !matches!(change.operation, Operation::Delete { .. }))
    .then(|| serde_json::to_string(&change.attributes))
    .transpose()
    .map_err(|e| AppError::Internal(e.to_string()))?;
    let applied = run_change(conn, env, change)?;
    if let (Some(json), Some(user)) = (read_by_rules, applied.user.as_ref()) {
        store::users::put_attributes(conn, &user.id, &json, env.now)?;
    }
    Ok(applied)
}

fn run_change(conn: &mut DbConn, env: &Env, change: IdentityChange) -> AppResult<Applied> {
    crate::fault::touched("user");
    let account = env.account(conn, &change.account_id)?.ok_or(AppError::not_found("account"))?;
    match change.operation.clone() {
        Operation::Delete { user_id } => delete_user(conn, env, &account, &change, &user_id),
        // Uniqueness of e-mail and user name is left to the constraints (one statement
        // less per create); `unique_conflict` turns a violation into the same 409.
        Operation::Create => upsert_user(conn, env, &account, change, None),
        Operation::Upsert => {
            let email = explicit_email(&change)?;
            let existing = match (&email, change.prefetched_user.clone()) {
                (_, Some(known)) => known,
                (Some(e), None) => store::users::find_by_email(conn, e)?,
                (None, None) => None,
            };
            if let Some(u) = &existing {
                if u.account_id != account.id && !is_descendant(conn, &u.account_id, &account.id)? {
                    return Err(AppError::taken(
                        "email_taken",
                        format!("{} is registered in another account", u.email.clone().unwrap_or_default()),
                    ));
                }
            }
            if let Some(u) = existing.as_ref().filter(|_| !change.prefetched_user_locked) {
                // Lock order, everywhere: the user row, then seat pools (a delete or a type
                // change racing this one waits instead of deadlocking).
                store::scim::lock_user(conn, &u.account_id, &u.id)?;
            }
            upsert_user(conn, env, &account, change, existing)
        }
        Operation::Update { user_id, .. } => {
            store::scim::lock_user(conn, &account.id, &user_id)?;
            let existing = find_target(conn, &account, &change, &user_id)?;
            upsert_user(conn, env, &account, change, Some(existing))
        }
    }
}

/// The user a change names by id: in the account, or — for the account's own identity
/// provider — placed by it into one of its sub accounts.
fn find_target(conn: &mut DbConn, account: &AccountRow, change: &IdentityChange, user_id: &str) -> AppResult<UserRow> {
    let found = if matches!(change.source, Source::Scim | Source::Saml) {
        store::users::find_for_idp(conn, &account.id, user_id)?
    } else {
        store::users::find(conn, &account.id, user_id)?
    };
    found.ok_or(AppError::not_found("user"))
}

fn explicit_email(change: &IdentityChange) -> AppResult<Option<String>> {
    match &change.explicit.email {
        Field::Set(e) => Ok(Some(normalize_email(e)?)),
        _ => Ok(None),
    }
}

fn is_descendant(conn: &mut DbConn, account: &str, ancestor: &str) -> Result<bool, DieselError> {
    Ok(store::accounts::ancestors(conn, account)?.iter().any(|a| a == ancestor))
}

/// Records a change of an optional text field.
fn set_opt(changes: &mut Vec<FieldChange>, name: &str, slot: &mut Option<String>, field: Field<String>) {
    let new = field.apply(slot.clone());
    if new != *slot {
        changes.push(FieldChange::new(name, slot.clone(), new.clone()));
        *slot = new;
    }
}

fn set_text<T: PartialEq + std::fmt::Display>(changes: &mut Vec<FieldChange>, name: &str, slot: &mut T, new: T) {
    if new != *slot {
        changes.push(FieldChange::new(name, Some(slot.to_string()), Some(new.to_string())));
        *slot = new;
    }
}

fn fresh_user(account: &AccountRow, env: &Env, source: Source) -> UserRow {
    UserRow {
        id: crate::secrets::new_id(),
        account_id: account.id.clone(),
        email: None,
        user_name: String::new(),
        user_name_lower: String::new(),
        external_id: None,
        display_name: None,
        display_name_lower: None,
        given_name: None,
        family_name: None,
        department: None,
        job_title: None,
        user_type: UserTier::Basic.as_str().to_owned(),
        role: BaseRole::Member,
        custom_role_id: None,
        status: UserStatus::Active,
        addons: String::new(),
        seats: String::new(),
        scim: "{}".to_owned(),
        provisioning_issues: "[]".to_owned(),
        last_source: source.as_str().to_owned(),
        version: 1,
        created_at: env.now,
        updated_at: env.now,
        last_login_at: None,
        placed_by: None,
    }
}

fn upsert_user(
    conn: &mut DbConn,
    env: &Env,
    account: &AccountRow,
    mut change: IdentityChange,
    existing: Option<UserRow>,
) -> AppResult<Applied> {
    let created = existing.is_none();
    // What the optimistic write and the account move need from the stored row.
    let before = existing.as_ref().map(|u| (u.version, u.account_id.clone()));
    let mut changes: Vec<FieldChange> = Vec::new();
    let mut issues: Vec<ProvisioningIssue> = Vec::new();
    let mut ex = std::mem::take(&mut change.explicit);

    // 1. Mapping rules → desired state, merged under the explicit fields.
    let mut placement: Option<AccountRow> = None;
    let mut mapped_groups: Option<(BTreeSet<String>, BTreeSet<String>)> = None;
    // What the adapter itself stated: rules were authorized when they were stored (by the
    // storer's rights), so what they derive is not a grant by whoever triggers them; what
    // the caller states is checked against the caller.
    let (stated_role, stated_custom_role) = (ex.role, ex.custom_role.clone());
    let privileged = existing.as_ref().map(|u| u.role).filter(|r| *r != BaseRole::Member);
    if change.apply_mapping {
        if let Some(rules) = env.mappings.get(conn, &account.id)? {
            let desired = rules.evaluate(&change.attributes);
            issues.extend(desired.issues.iter().cloned());
            if let Some(sub) = &desired.placement {
                match resolve_placement(conn, account, &sub.0)? {
                    Some(target) => placement = Some(target),
                    None => issues.push(ProvisioningIssue::on(
                        IssueCode::PlacementTargetNotFound,
                        "sub_account",
                        format!("the placement rule names {:?}, which is not a sub account of this account", sub.0),
                    )),
                }
            }
            let current_addons = existing.as_ref().map(|u| entitlements::parse_addons(&u.addons)).unwrap_or_default();
            mapped_groups = merge_desired(&mut ex, &current_addons, desired, placement.is_some(), rules.config());
        }
        // Rules never move the owner or an Admin into a sub account, and never change the
        // owner's role: the account would lose its owner (or the sub gain a second).
        if let Some(role) = privileged {
            let mut kept = Vec::new();
            if placement.take().is_some() {
                kept.push("placement");
            }
            if role == BaseRole::Owner && (ex.role != stated_role || ex.custom_role != stated_custom_role) {
                ex.role = stated_role;
                ex.custom_role = stated_custom_role.clone();
                kept.push("role");
            }
            if !kept.is_empty() {
                issues.push(ProvisioningIssue::on(
                    IssueCode::PrivilegedUserKept,
                    &kept.join(","),
                    format!("mapping rules do not change the {} ({} kept)", role.as_str(), kept.join(", ")),
                ));
            }
        }
    }
    // A user placed in a sub account earlier stays there when they come back through the
    // master (no automatic move back: that would strip licenses on a rule edit).
    let moving = change.move_to.take();
    let home = match (&existing, &placement) {
        _ if moving.is_some() => moving.clone().ok_or(AppError::not_found("account"))?,
        (_, Some(target)) => target.clone(),
        (Some(u), None) if u.account_id != account.id => {
            env.account(conn, &u.account_id)?.ok_or(AppError::not_found("account"))?
        }
        _ => account.clone(),
    };
    let placed = placement.is_some() || home.id != account.id;
    if placed {
        // Placement through a master: only the meeting license and meeting add-ons apply.
        ex.phone = PhoneFields::default();
        ex.add_to_groups.clear();
        ex.role = None;
        ex.custom_role = Field::Keep;
        mapped_groups = None;
    }

    let mut user = existing.unwrap_or_else(|| fresh_user(&home, env, change.source));

    // 2. Identity and profile.
    apply_identity(conn, &home, &mut user, created, &ex, &mut changes)?;
    if created || moving.is_some() || changes.iter().any(|c| c.field == "email") {
        check_domain_routing(conn, env, &home, user.email.as_deref())?;
    }

    // 3. Role.
    if let Some(role) = ex.role {
        let from = user.role;
        if created && role == BaseRole::Owner {
            // The owner is the account's first user, created with the account; never later.
            if store::users::owner(conn, &home.id)?.is_some() {
                return Err(AppError::conflict("owner_role", "an account has exactly one owner"));
            }
        } else if stated_role == Some(role) {
            check_role_change(change.actor.standing, from, role)?;
        } else {
            check_role_change(Standing::System, from, role)?;
        }
        set_text(&mut changes, "role", &mut user.role, role);
    }
    match &ex.custom_role {
        Field::Keep => {}
        Field::Clear => set_opt(&mut changes, "custom_role", &mut user.custom_role_id, Field::Clear),
        // A custom role by its id (as responses show it) or its name.
        Field::Set(name) => match match store::roles::find(conn, &home.id, name.trim())? {
            Some(r) => Some(r),
            None => store::roles::find_by_name(conn, &home.id, name)?,
        } {
            Some(r) => {
                if stated_custom_role == ex.custom_role && user.custom_role_id.as_deref() != Some(r.id.as_str()) {
                    // Assigning a role is granting its contents.
                    check_grant(change.actor.holds, stored_role_permissions(&r.permissions))?;
                }
                set_opt(&mut changes, "custom_role", &mut user.custom_role_id, Field::Set(r.id))
            }
            None if change.shortage == Shortage::Refuse => {
                return Err(AppError::bad_request(
                    "unknown_role",
                    format!("no custom role with the id or name {name:?}"),
                ))
            }
            None => issues.push(ProvisioningIssue::on(
                IssueCode::RoleNotFound,
                "role",
                format!("no custom role with the id or name {name:?}"),
            )),
        },
    }

    // 4. Status.
    let mut invitation_accepted = false;
    if let Some(s) = ex.status {
        let current = user.status;
        let next = match (current, s) {
            // A pending invitation stays pending until the person accepts it: the
            // invitation link, or signing in through the account's IdP (`accepts_invitation`). An IdP
            // merely saying "active" is not acceptance. Deactivation still applies.
            (UserStatus::Pending, UserStatus::Active) if !ex.accepts_invitation => UserStatus::Pending,
            // Accepting an invitation never reactivates a deactivated user.
            (UserStatus::Inactive, UserStatus::Active) if ex.accepts_invitation => {
                return Err(AppError::conflict(
                    "user_inactive",
                    "the user is deactivated; an administrator must reactivate them",
                ));
            }
            (UserStatus::Pending, UserStatus::Active) => {
                invitation_accepted = true;
                UserStatus::Active
            }
            (_, s) => s,
        };
        if next != current {
            protect_privileged(&change.actor, user.role, "status")?;
        }
        set_text(&mut changes, "status", &mut user.status, next);
    }
    if invitation_accepted {
        // Kept invitations first: this reads them back.
        if let Some(scope) = &env.batch {
            scope.flush(conn)?;
        }
        if let Some(inv) = store::users::invitation_for_user(conn, &user.id)? {
            store::users::delete_invitation(conn, &inv.id)?;
        }
    }
    if created && change.invite {
        user.status = UserStatus::Pending;
    }

    // 5. Moving into a sub account: the old account's seats, phone and groups go.
    if !created && user.account_id != home.id {
        entitlements::release_all(conn, &user)?;
        user.seats.clear();
        store::phone::release_numbers_of(conn, &user.id)?;
        store::users::delete_phone(conn, &user.id)?;
        super::groups::remove_from_all(conn, env, &user.account_id, &user.id, change.source)?;
        // Custom roles belong to their account.
        user.custom_role_id = None;
        changes.push(FieldChange::new("account", Some(user.account_id.clone()), Some(home.id.clone())));
        user.account_id = home.id.clone();
    }
    if placement.is_some() && home.id != account.id {
        // The master's IdP placed this user: its SCIM token keeps reaching them.
        user.placed_by = Some(account.id.clone());
    }

    // 6. Seats: user type, add-ons and the calling plan, with phone licensing rules.
    let phone_row = if created || placed && before.as_ref().is_some_and(|(_, account)| *account != home.id) {
        None
    } else {
        store::users::phone(conn, &user.id)?
    };
    let seat_outcome = entitlements::settle(
        conn,
        &home,
        &mut user,
        phone_row.as_ref(),
        &ex,
        change.shortage,
        &mut changes,
        &mut issues,
    )?;

    if let Some(doc) = &ex.scim {
        let text = doc.to_string();
        if text != user.scim {
            user.scim = text;
            if !changes.iter().any(|c| c.field == "scim") {
                changes.push(FieldChange::new("scim", None, None));
            }
        }
    }
    if ex.login {
        user.last_login_at = Some(env.now);
    }

    // 7. The user row. A new user is inserted now (the phone and group rows refer to it);
    //    an existing one is written once at the end.
    let mut invitation_token = None;
    let mut inserted_issues = String::new();
    if created {
        user.provisioning_issues = issues_json(&issues)?;
        inserted_issues = user.provisioning_issues.clone();
        store::users::insert(conn, &user).map_err(|e| unique_conflict(e, "user"))?;
        if change.invite {
            if let Some(email) = user.email.clone() {
                invitation_token = Some(super::invitations::create(conn, env, &home, &user, &email)?);
            }
        }
    }
    write_email_index(conn, &home, &user, created, &ex, &changes)?;

    // 8. Phone.
    let wants_phone = home.phone_enabled
        && (phone_row.is_some()
            || super::phone::touches_phone(&ex.phone)
            || seat_outcome.plan.calling_plan.is_some()
            || seat_outcome.needs_extension);
    if super::phone::touches_phone(&ex.phone) && !home.phone_enabled {
        issues.push(ProvisioningIssue::on(
            IssueCode::PhoneNotEnabled,
            "phone",
            "phone is not enabled on this account; the phone fields were ignored",
        ));
    }
    let mut phone_after = phone_row.clone();
    if wants_phone {
        phone_after = super::phone::apply(
            conn,
            super::phone::PhoneTask {
                account: &home,
                user_id: &user.id,
                current: phone_row,
                fields: &ex.phone,
                plan: &seat_outcome.plan,
                needs_extension: seat_outcome.needs_extension,
                now: env.now,
                batch: env.batch.as_deref(),
            },
            &mut changes,
            &mut issues,
        )?;
    }

    // 9. Groups: asked for explicitly, and those the mapping rules manage.
    for g in &ex.add_to_groups {
        super::groups::add_member_by_name(conn, env, &home, &user.id, g, change.source, &mut changes, &mut issues)?;
    }
    if let Some((desired, managed)) = &mapped_groups {
        super::groups::reconcile_mapped(
            conn,
            env,
            &home,
            &user.id,
            desired,
            managed,
            change.source,
            &mut changes,
            &mut issues,
        )?;
    }

    // 10. Issues, version, and the final write of an existing user.
    let issues_text = issues_json(&issues)?;
    let issues_changed = if created { issues_text != inserted_issues } else { issues_text != user.provisioning_issues };
    user.provisioning_issues = issues_text;
    let dirty = !changes.is_empty() || issues_changed || ex.login;
    if dirty && !created {
        user.last_source = change.source.as_str().to_owned();
        if !changes.is_empty() || issues_changed {
            user.updated_at = env.now;
            user.version += 1;
        }
        let expected = match &change.operation {
            Operation::Update { expected_version: Some(v), .. } => Some(*v),
            _ => before.as_ref().map(|(version, _)| *version),
        };
        let only_login = changes.is_empty() && !issues_changed;
        if only_login && expected.is_none_or(|v| v == user.version) {
            // Nothing but the sign-in: two columns, no version bump, no other column
            // overwritten (so no update of another request can be lost).
            store::users::record_login(conn, &user.id, env.now, &user.last_source)?;
        } else if !store::users::update(conn, &user, expected)? {
            return Err(AppError::PreconditionFailed(
                "the user was changed by another request; fetch it again and retry".into(),
            ));
        }
    } else if created && issues_changed {
        store::users::set_issues(conn, &user.id, &user.provisioning_issues)?;
    }

    if created || !changes.is_empty() {
        let action = if created { "user.created" } else { "user.updated" };
        audit(conn, env, &home.id, &change, action, &user.id, &changes, &issues)?;
    }
    let outcome = Outcome {
        user_id: user.id.clone(),
        account_id: home.id.clone(),
        created,
        deleted: false,
        changes,
        issues,
        version: user.version,
        invitation_token,
    };
    Ok(Applied { outcome, user: Some(user), phone: phone_after })
}

fn issues_json(issues: &[ProvisioningIssue]) -> AppResult<String> {
    serde_json::to_string(issues).map_err(|e| AppError::Internal(e.to_string()))
}

/// E-mail, user name, external id and the profile fields.
fn apply_identity(
    conn: &mut DbConn,
    home: &AccountRow,
    user: &mut UserRow,
    created: bool,
    ex: &ExplicitFields,
    changes: &mut Vec<FieldChange>,
) -> AppResult<()> {
    if let Field::Set(e) = &ex.email {
        let e = normalize_email(e)?;
        if user.email.as_deref() != Some(e.as_str()) {
            if !created && store::accounts::email_registered(conn, &e)? {
                return Err(AppError::taken("email_taken", format!("{e} is already registered")));
            }
            changes.push(FieldChange::new("email", user.email.clone(), Some(e.clone())));
            user.email = Some(e);
        }
    } else if let Field::Clear = ex.email {
        set_opt(changes, "email", &mut user.email, Field::Clear);
    }
    let user_name = ex.user_name.clone().or_else(|| if created { user.email.clone() } else { None });
    if let Some(n) = user_name {
        let n = n.trim().to_owned();
        if n.is_empty() || n.chars().count() > 256 {
            return Err(AppError::bad_request("invalid_user_name", "userName must be 1 to 256 characters"));
        }
        crate::domain::users::check_user_name(&n).map_err(|m| AppError::bad_request("invalid_user_name", m))?;
        let lower = crate::domain::users::fold_user_name(&n);
        if !created
            && lower != user.user_name_lower
            && store::users::find_by_user_name(conn, &home.id, &lower)?.is_some_and(|o| o.id != user.id)
        {
            return Err(AppError::taken("user_name_taken", format!("userName {n:?} is already in use")));
        }
        set_text(changes, "user_name", &mut user.user_name, n);
        user.user_name_lower = lower;
    }
    if user.user_name.is_empty() {
        return Err(AppError::bad_request("missing_identity", "a new user needs an e-mail address or a user name"));
    }
    set_opt(changes, "external_id", &mut user.external_id, ex.external_id.clone());
    set_opt(changes, "display_name", &mut user.display_name, ex.display_name.clone());
    user.display_name_lower = user.display_name.as_ref().map(|d| d.to_lowercase());
    set_opt(changes, "given_name", &mut user.given_name, ex.given_name.clone());
    set_opt(changes, "family_name", &mut user.family_name, ex.family_name.clone());
    set_opt(changes, "department", &mut user.department, ex.department.clone());
    set_opt(changes, "job_title", &mut user.job_title, ex.job_title.clone());
    Ok(())
}

/// A user whose e-mail domain is associated with an account belongs there: another account
/// (outside this account's tree) cannot take them in.
fn check_domain_routing(conn: &mut DbConn, env: &Env, home: &AccountRow, email: Option<&str>) -> AppResult<()> {
    let Some(domain) = email.and_then(crate::domain::accounts::email_domain) else { return Ok(()) };
    let owner = match &env.batch {
        Some(scope) => scope.domain_owner(conn, domain)?,
        None => store::accounts::domain_owner(conn, domain)?,
    };
    let Some(owner) = owner else { return Ok(()) };
    if owner == home.id || is_descendant(conn, &home.id, &owner)? || is_descendant(conn, &owner, &home.id)? {
        return Ok(());
    }
    Err(AppError::conflict(
        "domain_associated",
        format!("{domain} is associated with another account; its users belong there"),
    ))
}

/// Keeps `user_emails` (every address the user carries) in step.
fn write_email_index(
    conn: &mut DbConn,
    home: &AccountRow,
    user: &UserRow,
    created: bool,
    ex: &ExplicitFields,
    changes: &[FieldChange],
) -> AppResult<()> {
    let list: Vec<String> = match &ex.emails {
        Some(list) => {
            let mut list: Vec<String> =
                list.iter().map(|e| e.trim().to_lowercase()).filter(|e| !e.is_empty()).collect();
            list.extend(user.email.iter().cloned());
            list.sort();
            list.dedup();
            if !created {
                let mut current = store::users::emails_of(conn, &user.id)?;
                current.sort();
                if current == list {
                    return Ok(());
                }
            }
            list
        }
        None if created || changes.iter().any(|c| c.field == "email" || c.field == "account") => {
            user.email.iter().cloned().collect()
        }
        None => return Ok(()),
    };
    if !created {
        store::users::delete_emails(conn, &user.id)?;
    }
    store::users::insert_emails(conn, &user.id, &home.id, &list)?;
    Ok(())
}

/// A sub account of `master` (direct, or below a pseudo-master) by id or name.
pub fn resolve_placement(conn: &mut DbConn, master: &AccountRow, key: &str) -> AppResult<Option<AccountRow>> {
    let mut frontier = vec![master.id.clone()];
    for _ in 0..2 {
        let mut next = Vec::new();
        for parent in &frontier {
            for sub in store::accounts::list_subs(conn, parent)? {
                if sub.id == key || sub.name.eq_ignore_ascii_case(key.trim()) {
                    return Ok(Some(sub));
                }
                next.push(sub.id);
            }
        }
        frontier = next;
    }
    Ok(None)
}

/// Merges what the rules want into the explicit fields (explicit values win). Returns the
/// groups the rules want and the groups they manage (named by any group rule), or None.
fn merge_desired(
    ex: &mut ExplicitFields,
    current_addons: &BTreeSet<AddOn>,
    desired: DesiredState,
    placed: bool,
    config: &MappingConfig,
) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    if ex.user_type.is_none() {
        ex.user_type = match desired.user_type {
            Field::Set(t) => Some(t),
            Field::Clear => Some(UserTier::Basic),
            Field::Keep => None,
        };
    }
    if ex.addons.is_none() {
        if let MultiDesired::Set(set) = desired.addons {
            // Rules manage the add-ons they name (all of them, with a direct mapping): the
            // user keeps the others, given by hand.
            let direct = config.direct.iter().any(|d| d.target == Target::Addon);
            let managed: BTreeSet<AddOn> = config
                .rules
                .iter()
                .filter(|r| r.target == Target::Addon)
                .filter_map(|r| r.value.trim().parse::<AddOn>().ok())
                .collect();
            let kept = current_addons.iter().copied().filter(|a| !direct && !managed.contains(a));
            let next: BTreeSet<AddOn> = kept.chain(set).collect();
            ex.addons = Some(if placed { next.into_iter().filter(|a| a.is_meeting_addon()).collect() } else { next });
        }
    }
    if placed {
        return None;
    }
    fn fill<T>(slot: &mut Field<T>, derived: Field<T>) {
        if slot.is_keep() {
            *slot = derived;
        }
    }
    let text = fill::<String>;
    text(&mut ex.department, desired.department);
    text(&mut ex.job_title, desired.job_title);
    if ex.role.is_none() && ex.custom_role.is_keep() {
        match desired.role {
            Field::Set(r) => match BaseRole::parse(&r) {
                Some(BaseRole::Owner) => {}
                Some(base) => ex.role = Some(base),
                None => ex.custom_role = Field::Set(r),
            },
            Field::Clear => ex.custom_role = Field::Clear,
            Field::Keep => {}
        }
    }
    text(&mut ex.phone.site, desired.phone_site);
    let extension = desired.phone_extension.map(|e| match e {
        ExtensionRequest::NextFree => 0,
        ExtensionRequest::Exact(n) => n,
    });
    fill(&mut ex.phone.extension, extension);
    text(&mut ex.phone.number, desired.phone_number);
    fill(&mut ex.phone.calling_plan, desired.calling_plan);
    if ex.phone.roles.is_none() {
        if let MultiDesired::Set(roles) = desired.phone_roles {
            ex.phone.roles = Some(roles.iter().map(|r| r.to_string()).collect());
        }
    }
    match desired.groups {
        MultiDesired::Set(groups) => {
            let managed: BTreeSet<String> = config
                .rules
                .iter()
                .filter(|r| r.target == Target::Group)
                .map(|r| r.value.trim().to_lowercase())
                .collect();
            Some((groups, managed))
        }
        MultiDesired::Keep => None,
    }
}

/// Deactivating or removing the owner is the owner's own act (or the operator's); an
/// Admin is deactivated or removed by the owner, the master or the account's IdP (a leaver
/// is deprovisioned by the directory), never by another Admin.
fn protect_privileged(actor: &Actor, target: BaseRole, what: &str) -> AppResult<()> {
    match target {
        BaseRole::Owner if !actor.standing.changes_owner() => Err(GrantError::OnlyOwnerChangesOwner.into()),
        BaseRole::Admin if !actor.standing.manages_admins() && actor.standing != Standing::IdentityProvider => {
            Err(AppError::denied("owner_only", format!("only the account owner can change an Admin's {what}")))
        }
        _ => Ok(()),
    }
}

fn delete_user(
    conn: &mut DbConn,
    env: &Env,
    account: &AccountRow,
    change: &IdentityChange,
    user_id: &str,
) -> AppResult<Applied> {
    // Lock first, then read: the seats released below are the ones the user holds at
    // commit, never a copy a concurrent type change is about to replace.
    store::scim::lock_user(conn, &account.id, user_id)?;
    let user = find_target(conn, account, change, user_id)?;
    if user.role == BaseRole::Owner {
        return Err(AppError::conflict("owner_role", "the account owner cannot be removed"));
    }
    protect_privileged(&change.actor, user.role, "removal")?;
    // What the removal gives back goes into the audit entry: seats, extension, number.
    let phone = store::users::phone(conn, &user.id)?;
    entitlements::release_all(conn, &user)?;
    super::groups::remove_from_all(conn, env, &user.account_id, &user.id, change.source)?;
    store::users::delete(conn, &user.id)?;
    let mut changes = vec![FieldChange::new("user", user.email.clone().or(Some(user.user_name.clone())), None)];
    if !user.seats.is_empty() {
        changes.push(FieldChange::new("seats", Some(user.seats.clone()), None));
    }
    if let Some(p) = &phone {
        if let Some(ext) = p.long_extension.clone().or(p.extension.map(|e| e.to_string())) {
            changes.push(FieldChange::new("extension", Some(ext), None));
        }
        if let Some(n) = &p.phone_number {
            changes.push(FieldChange::new("phone_number", Some(n.clone()), None));
        }
    }
    audit(conn, env, &user.account_id, change, "user.deleted", &user.id, &changes, &[])?;
    let outcome = Outcome {
        user_id: user.id.clone(),
        account_id: user.account_id.clone(),
        created: false,
        deleted: true,
        changes,
        issues: Vec::new(),
        version: user.version,
        invitation_token: None,
    };
    Ok(Applied { outcome, user: None, phone: None })
}

fn unique_conflict(e: DieselError, what: &str) -> AppError {
    if store::is_unique_violation(&e) {
        // The constraint's name (PostgreSQL) or column list (SQLite) says which value is
        // taken; it picks the code and never reaches the message.
        let detail = store::violation_detail(&e);
        let (code, message) = if detail.contains("email") {
            ("email_taken", format!("a {what} with this e-mail address already exists"))
        } else if detail.contains("user_name") {
            ("user_name_taken", format!("a {what} with this userName already exists"))
        } else {
            ("already_exists", format!("the {what} already exists"))
        };
        AppError::taken(code, message)
    } else {
        e.into()
    }
}

#[allow(clippy::too_many_arguments)]
fn audit(
    conn: &mut DbConn,
    env: &Env,
    account: &str,
    change: &IdentityChange,
    action: &str,
    target: &str,
    changes: &[FieldChange],
    issues: &[ProvisioningIssue],
) -> AppResult<()> {
    let detail = serde_json::json!({ "changes": changes, "issues": issues });
    super::audit::record(conn, env, account, &change.actor, change.source, action, Some(target), detail)
}

/// Hands the account to another of its users: an explicit act of the owner (or the
/// platform). The new owner must be an active user of the account; the former owner
/// becomes an Admin. Both rows are written with their version checked, in the caller's
/// transaction, and audited: the one place the owner role moves.
pub fn transfer_ownership(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    source: Source,
    account: &str,
    to_user: &str,
) -> AppResult<(UserRow, UserRow)> {
    if !actor.standing.changes_owner() {
        return Err(GrantError::OnlyOwnerChangesOwner.into());
    }
    let mut owner = store::users::owner(conn, account)?.ok_or(AppError::not_found("account owner"))?;
    store::scim::lock_user(conn, account, &owner.id)?;
    store::scim::lock_user(conn, account, to_user)?;
    let mut next = store::users::find(conn, account, to_user)?.ok_or(AppError::not_found("user"))?;
    if next.id == owner.id {
        return Err(AppError::conflict("already_owner", "this user already owns the account"));
    }
    if next.status != UserStatus::Active {
        return Err(AppError::conflict(
            "user_not_active",
            "the new owner must be an active user (not pending or deactivated)",
        ));
    }
    for (row, role) in [(&mut owner, BaseRole::Admin), (&mut next, BaseRole::Owner)] {
        let expected = row.version;
        row.role = role;
        row.version += 1;
        row.updated_at = env.now;
        if !store::users::update(conn, row, Some(expected))? {
            return Err(AppError::conflict("concurrent_update", "the user changed meanwhile; retry"));
        }
    }
    super::audit::record(
        conn,
        env,
        account,
        actor,
        source,
        "account.owner_transferred",
        Some(&next.id),
        serde_json::json!({ "from": owner.id, "to": next.id }),
    )?;
    Ok((owner, next))
}

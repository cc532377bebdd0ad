//! Mapping rules: one JSON document per account (the format is documented in the README
//! and in `domain::mapping`), validated and compiled before it is stored.

use crate::domain::authz::{check_grant, stored_role_permissions, Area, Permission, PermissionSet};
use crate::domain::mapping::{CompiledMapping, MappingConfig, MappingReach, Target};
use crate::error::{AppError, AppResult};
use crate::provisioning::audit;
use crate::provisioning::{Actor, Env, Source};
use crate::store::{self, DbConn};

/// Largest rules document accepted.
pub const MAX_RULES_BYTES: usize = 512 * 1024;

/// The account's rules (an empty document when none were set) and their version.
pub fn get(conn: &mut DbConn, account: &str) -> AppResult<(serde_json::Value, i64)> {
    match store::mapping::get(conn, account)? {
        Some((text, version)) => {
            Ok((serde_json::from_str(&text).map_err(|e| AppError::Internal(e.to_string()))?, version))
        }
        None => Ok((serde_json::to_value(MappingConfig::default()).map_err(|e| AppError::Internal(e.to_string()))?, 0)),
    }
}

/// Rules are authorized when they are stored, by the storer's rights (applying them later
/// at a SCIM push or SAML login is not a grant by the IdP): whatever any part of the
/// document can give, the storer must be able to give directly.
fn authorize_rules(conn: &mut DbConn, actor: &Actor, account: &str, reach: &MappingReach) -> AppResult<()> {
    if reach.touches_admin() && !actor.standing.manages_admins() {
        return Err(AppError::denied(
            "owner_only",
            "only the account owner can store rules that set the role admin or member, clear roles, or copy the role from an attribute",
        ));
    }
    for name in reach.custom_roles() {
        let role = store::roles::find_by_name(conn, account, name)?.ok_or_else(|| {
            AppError::bad_request("unknown_role", format!("the rules name the role {name:?}, which does not exist"))
        })?;
        check_grant(actor.holds, stored_role_permissions(&role.permissions))?;
    }
    let needs = |t: Target| match t {
        Target::SubAccount => Some(Permission::edit(Area::SubAccounts)),
        Target::Group => Some(Permission::edit(Area::Groups)),
        Target::PhoneSite | Target::PhoneExtension | Target::PhoneNumber | Target::CallingPlan | Target::PhoneRole => {
            Some(Permission::edit(Area::PhoneUsers))
        }
        Target::UserType | Target::Addon | Target::Role => Some(Permission::edit(Area::Users)),
        Target::Department | Target::JobTitle | Target::Location | Target::CostCenter => None,
    };
    let granted: PermissionSet = reach.targets.iter().filter_map(|t| needs(*t)).collect();
    check_grant(actor.holds, granted)?;
    Ok(())
}

/// Validates, compiles, authorizes and stores a rules document.
pub fn set(conn: &mut DbConn, env: &Env, actor: &Actor, source: Source, account: &str, text: &str) -> AppResult<i64> {
    if text.len() > MAX_RULES_BYTES {
        return Err(AppError::PayloadTooLarge { limit: MAX_RULES_BYTES });
    }
    let compiled =
        CompiledMapping::from_json(text).map_err(|e| AppError::bad_request("invalid_rules", e.to_string()))?;
    authorize_rules(conn, actor, account, &compiled.config().reach())?;
    check_named_targets(conn, account, &compiled.config().named_targets())?;
    let canonical = serde_json::to_string(compiled.config()).map_err(|e| AppError::Internal(e.to_string()))?;
    let version = store::mapping::put(conn, account, &canonical, env.now, actor.from_account.as_deref())?;
    env.mappings.remember(account, version, Some(std::sync::Arc::new(compiled.clone())));
    audit::record(
        conn,
        env,
        account,
        actor,
        source,
        "mapping.updated",
        None,
        serde_json::json!({ "version": version, "rules": compiled.config().rules.len() }),
    )?;
    Ok(version)
}

/// Refuses a document naming a group, phone site or sub account the account does not have:
/// stored anyway, it would only turn into a provisioning issue on every user it matches.
fn check_named_targets(
    conn: &mut DbConn,
    account: &str,
    named: &crate::domain::mapping::NamedTargets,
) -> AppResult<()> {
    let mut missing = Vec::new();
    for g in &named.groups {
        if store::groups::find_by_name(conn, account, g)?.is_none() {
            missing.push(format!("group {g:?}"));
        }
    }
    if !named.sites.is_empty() {
        let phone = store::accounts::find(conn, account)?.is_some_and(|a| a.phone_enabled);
        for s in &named.sites {
            if !phone {
                missing.push(format!("phone site {s:?} (phone is not enabled on this account)"));
            } else if store::phone::find_site(conn, account, s)?.is_none() {
                missing.push(format!("phone site {s:?}"));
            }
        }
    }
    if !named.sub_accounts.is_empty() {
        let row = store::accounts::find(conn, account)?.ok_or(AppError::not_found("account"))?;
        for sub in &named.sub_accounts {
            if crate::provisioning::resolve_placement(conn, &row, sub)?.is_none() {
                missing.push(format!("sub account {sub:?}"));
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(AppError::bad_request(
        "unknown_target",
        format!(
            "the rules name {} that this account does not have; create {} first, or correct the name",
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" }
        ),
    ))
}

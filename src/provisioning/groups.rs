//! Group membership changes: the only writer of `group_members` and of the membership-event
//! outbox. Each change writes its event in the same transaction, for the group-sync engine.

use super::change::{FieldChange, IssueCode, ProvisioningIssue, Source};
use super::pipeline::Env;
use crate::error::AppResult;
use crate::store::models::AccountRow;
use crate::store::{self, DbConn};

/// Adds a member; `false` if it already was one.
pub fn add_member(
    conn: &mut DbConn,
    env: &Env,
    account: &str,
    group: &str,
    user: &str,
    source: Source,
) -> AppResult<bool> {
    if store::groups::is_member(conn, group, user)? {
        return Ok(false);
    }
    store::groups::add_member(conn, group, user, env.now)?;
    store::groups::record_event(conn, account, group, user, "added", source.as_str(), env.now)?;
    crate::fault::touched("membership");
    Ok(true)
}

/// Removes a member; `false` if it was not one.
pub fn remove_member(
    conn: &mut DbConn,
    env: &Env,
    account: &str,
    group: &str,
    user: &str,
    source: Source,
) -> AppResult<bool> {
    if !store::groups::remove_member(conn, group, user)? {
        return Ok(false);
    }
    store::groups::record_event(conn, account, group, user, "removed", source.as_str(), env.now)?;
    crate::fault::touched("membership");
    Ok(true)
}

/// Stores the `display` an identity provider sent with a member; `true` if it changed.
pub fn set_member_display(conn: &mut DbConn, group: &str, user: &str, display: Option<&str>) -> AppResult<bool> {
    if store::scim::member_display(conn, group, user)?.as_deref() == display {
        return Ok(false);
    }
    store::scim::set_member_display(conn, group, user, display)?;
    Ok(true)
}

#[allow(clippy::too_many_arguments)]
pub fn add_member_by_name(
    conn: &mut DbConn,
    env: &Env,
    account: &AccountRow,
    user: &str,
    name: &str,
    source: Source,
    changes: &mut Vec<FieldChange>,
    issues: &mut Vec<ProvisioningIssue>,
) -> AppResult<()> {
    match store::groups::find_by_name(conn, &account.id, name)? {
        Some(g) => {
            if add_member(conn, env, &account.id, &g.id, user, source)? {
                changes.push(FieldChange::new("groups", None, Some(g.display_name)));
            }
        }
        None => issues.push(ProvisioningIssue::on(
            IssueCode::GroupNotFound,
            "groups",
            format!("no group named {name:?} in this account"),
        )),
    }
    Ok(())
}

/// Removes a user from every group (deletion), with an event per membership.
pub fn remove_from_all(conn: &mut DbConn, env: &Env, account: &str, user: &str, source: Source) -> AppResult<()> {
    for (group, _) in store::groups::groups_of_user(conn, user)? {
        remove_member(conn, env, account, &group, user, source)?;
    }
    Ok(())
}

/// Makes the user's memberships of the groups the mapping rules manage match what the rules
/// want: joins the wanted ones, leaves the managed ones not wanted. Groups added by hand
/// (not named by any rule) are left alone.
#[allow(clippy::too_many_arguments)]
pub fn reconcile_mapped(
    conn: &mut DbConn,
    env: &Env,
    account: &AccountRow,
    user: &str,
    desired: &std::collections::BTreeSet<String>,
    managed: &std::collections::BTreeSet<String>,
    source: Source,
    changes: &mut Vec<FieldChange>,
    issues: &mut Vec<ProvisioningIssue>,
) -> AppResult<()> {
    let wanted: std::collections::BTreeSet<String> = desired.iter().map(|g| g.trim().to_lowercase()).collect();
    for name in desired {
        add_member_by_name(conn, env, account, user, name, source, changes, issues)?;
    }
    for (group_id, name) in store::groups::groups_of_user(conn, user)? {
        let lower = name.to_lowercase();
        if managed.contains(&lower)
            && !wanted.contains(&lower)
            && remove_member(conn, env, &account.id, &group_id, user, source)?
        {
            changes.push(FieldChange::new("groups", Some(name), None));
        }
    }
    Ok(())
}

//! Account groups through the admin API. Membership changes go through
//! `provisioning::groups`, which writes the membership-event outbox.

use serde::{Deserialize, Serialize};

use super::accounts::audit;
use crate::error::{AppError, AppResult};
use crate::provisioning::{self, Actor, Env, Source};
use crate::store::models::GroupRow;
use crate::store::{self, DbConn};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GroupView {
    pub id: String,
    pub name: String,
    pub external_id: Option<String>,
    pub members: Vec<MemberView>,
    pub version: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub user_name: String,
}

pub fn view(conn: &mut DbConn, g: GroupRow) -> AppResult<GroupView> {
    let members = store::groups::members(conn, &g.id)?
        .into_iter()
        .map(|(user_id, user_name)| MemberView { user_id, user_name })
        .collect();
    Ok(GroupView { id: g.id, name: g.display_name, external_id: g.external_id, members, version: g.version })
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    pub name: String,
}

fn check_name(name: &str) -> AppResult<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 256 {
        return Err(AppError::bad_request("invalid_name", "a group name is 1 to 256 characters"));
    }
    Ok(n.to_owned())
}

pub fn create(conn: &mut DbConn, env: &Env, actor: &Actor, account: &str, name: &str) -> AppResult<GroupView> {
    let name = check_name(name)?;
    let row = GroupRow {
        id: crate::secrets::new_id(),
        account_id: account.to_owned(),
        display_name_lower: name.to_lowercase(),
        display_name: name,
        external_id: None,
        scim: "{}".into(),
        version: 1,
        created_at: env.now,
        updated_at: env.now,
    };
    store::groups::insert(conn, &row)
        .map_err(AppError::on_unique("group_exists", format!("a group named {:?} exists", row.display_name)))?;
    audit(
        conn,
        env,
        account,
        actor,
        Source::Api,
        "group.created",
        Some(&row.id),
        serde_json::json!({ "name": row.display_name }),
    )?;
    view(conn, row)
}

pub fn rename(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    account: &str,
    id: &str,
    name: &str,
) -> AppResult<GroupView> {
    let mut row = store::groups::find(conn, account, id)?.ok_or(AppError::not_found("group"))?;
    let name = check_name(name)?;
    row.display_name_lower = name.to_lowercase();
    row.display_name = name;
    row.version += 1;
    row.updated_at = env.now;
    store::groups::update(conn, &row, None)
        .map_err(AppError::on_unique("group_exists", "a group with that name exists"))?;
    audit(
        conn,
        env,
        account,
        actor,
        Source::Api,
        "group.renamed",
        Some(&row.id),
        serde_json::json!({ "name": row.display_name }),
    )?;
    view(conn, row)
}

/// Deletes a group; every membership ends with a `removed` event first.
pub fn delete(conn: &mut DbConn, env: &Env, actor: &Actor, source: Source, account: &str, id: &str) -> AppResult<()> {
    let row = store::groups::find(conn, account, id)?.ok_or(AppError::not_found("group"))?;
    for uid in store::groups::member_ids(conn, &row.id)? {
        provisioning::groups::remove_member(conn, env, account, &row.id, &uid, source)?;
    }
    store::groups::delete(conn, &row.id)?;
    audit(
        conn,
        env,
        account,
        actor,
        source,
        "group.deleted",
        Some(&row.id),
        serde_json::json!({ "name": row.display_name }),
    )
}

/// Adds or removes members (users of the same account only).
pub fn change_members(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    account: &str,
    id: &str,
    add: &[String],
    remove: &[String],
) -> AppResult<GroupView> {
    let mut row = store::groups::find(conn, account, id)?.ok_or(AppError::not_found("group"))?;
    let mut changed = false;
    for uid in add {
        store::users::find(conn, account, uid)?.ok_or(AppError::not_found("user"))?;
        changed |= provisioning::groups::add_member(conn, env, account, &row.id, uid, Source::Api)?;
    }
    for uid in remove {
        changed |= provisioning::groups::remove_member(conn, env, account, &row.id, uid, Source::Api)?;
    }
    if changed {
        row.version += 1;
        row.updated_at = env.now;
        store::groups::update(conn, &row, None)?;
        audit(
            conn,
            env,
            account,
            actor,
            Source::Api,
            "group.members_changed",
            Some(&row.id),
            serde_json::json!({ "added": add, "removed": remove }),
        )?;
    }
    view(conn, row)
}

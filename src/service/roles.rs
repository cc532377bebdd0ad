//! Custom roles: a name and a permission set.

use serde::{Deserialize, Serialize};

use crate::domain::authz::{check_grant, Permission, PermissionSet};
use crate::error::{AppError, AppResult};
use crate::provisioning::audit;
use crate::provisioning::{Actor, Env};
use crate::store::models::RoleRow;
use crate::store::{self, DbConn};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RoleView {
    pub id: String,
    pub name: String,
    pub permissions: Vec<String>,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::NaiveDateTime,
}

impl From<RoleRow> for RoleView {
    fn from(r: RoleRow) -> RoleView {
        RoleView {
            id: r.id,
            name: r.name,
            permissions: crate::service::auth::stored_role_permissions(&r.permissions).names(),
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    pub name: String,
    /// Catalogue permissions (`GET /api/v1/permissions`), e.g. `users:view`,
    /// `sub_accounts:edit`; the names of earlier releases (`users:read`, `phone:manage`, …)
    /// are accepted as aliases. The role holds `view` wherever it holds `edit`.
    pub permissions: Vec<String>,
}

fn validate(actor: &Actor, input: &RoleInput) -> AppResult<(String, String)> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::bad_request("invalid_name", "a role name is 1 to 100 characters"));
    }
    if crate::domain::users::BaseRole::parse(name).is_some() {
        return Err(AppError::bad_request("invalid_name", "owner, admin and member are built-in roles"));
    }
    let perms = PermissionSet::parse_names(&input.permissions).map_err(|unknown| {
        let all: Vec<_> = Permission::catalogue().map(Permission::name).collect();
        AppError::bad_request(
            "invalid_permission",
            format!("unknown permission {unknown:?}; known: {}", all.join(", ")),
        )
    })?;
    // Nobody creates a role holding more than they hold themselves.
    check_grant(actor.holds, perms)?;
    let text = serde_json::to_string(&perms.names()).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok((name.to_owned(), text))
}

pub fn create(conn: &mut DbConn, env: &Env, actor: &Actor, account: &str, input: &RoleInput) -> AppResult<RoleView> {
    let (name, perms) = validate(actor, input)?;
    let row = RoleRow {
        id: crate::secrets::new_id(),
        account_id: account.to_owned(),
        name_lower: name.to_lowercase(),
        name,
        permissions: perms,
        created_at: env.now,
        updated_at: env.now,
    };
    store::roles::insert(conn, &row)
        .map_err(AppError::on_unique("role_exists", format!("a role named {:?} exists", input.name.trim())))?;
    audit::record(
        conn,
        env,
        account,
        actor,
        actor.via,
        "role.created",
        Some(&row.id),
        serde_json::json!({ "name": row.name, "permissions": input.permissions }),
    )?;
    Ok(row.into())
}

pub fn update(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    account: &str,
    id: &str,
    input: &RoleInput,
) -> AppResult<RoleView> {
    let mut row = store::roles::find(conn, account, id)?.ok_or(AppError::not_found("role"))?;
    let (name, perms) = validate(actor, input)?;
    row.name_lower = name.to_lowercase();
    row.name = name;
    row.permissions = perms;
    row.updated_at = env.now;
    store::roles::update(conn, &row)?;
    audit::record(
        conn,
        env,
        account,
        actor,
        actor.via,
        "role.updated",
        Some(&row.id),
        serde_json::json!({ "name": row.name, "permissions": input.permissions }),
    )?;
    Ok(row.into())
}

pub fn delete(conn: &mut DbConn, env: &Env, actor: &Actor, account: &str, id: &str) -> AppResult<()> {
    if store::roles::holders(conn, id)? > 0 {
        return Err(AppError::conflict("role_in_use", "users still hold this role; assign them another first"));
    }
    if !store::roles::delete(conn, account, id)? {
        return Err(AppError::not_found("role"));
    }
    audit::record(conn, env, account, actor, actor.via, "role.deleted", Some(id), serde_json::json!({}))
}

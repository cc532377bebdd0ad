//! Custom roles: a name and a permission set.

use serde::{Deserialize, Serialize};

use crate::domain::users::Permission;
use crate::error::{AppError, AppResult};
use crate::provisioning::audit;
use crate::provisioning::{Actor, Env, Source};
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
            permissions: serde_json::from_str(&r.permissions).unwrap_or_default(),
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    pub name: String,
    /// Permission names, e.g. `users:read`, `sub_accounts:manage`.
    pub permissions: Vec<String>,
}

fn validate(input: &RoleInput) -> AppResult<(String, String)> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::bad_request("invalid_name", "a role name is 1 to 100 characters"));
    }
    if crate::domain::users::BaseRole::parse(name).is_some() {
        return Err(AppError::bad_request("invalid_name", "owner, admin and member are built-in roles"));
    }
    let mut perms = Vec::new();
    for p in &input.permissions {
        let parsed = Permission::parse(p).ok_or_else(|| {
            let all: Vec<_> = Permission::ALL.iter().map(|p| p.as_str()).collect();
            AppError::bad_request("invalid_permission", format!("unknown permission {p:?}; known: {}", all.join(", ")))
        })?;
        if !perms.contains(&parsed.as_str()) {
            perms.push(parsed.as_str());
        }
    }
    perms.sort();
    let text = serde_json::to_string(&perms).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok((name.to_owned(), text))
}

pub fn create(conn: &mut DbConn, env: &Env, actor: &Actor, account: &str, input: &RoleInput) -> AppResult<RoleView> {
    let (name, perms) = validate(input)?;
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
        Source::Api,
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
    let (name, perms) = validate(input)?;
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
        Source::Api,
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
    audit::record(conn, env, account, actor, Source::Api, "role.deleted", Some(id), serde_json::json!({}))
}

//! Issuing and revoking API tokens.

use serde::Serialize;

use crate::domain::accounts::normalize_email;
use crate::domain::authz::{check_grant, stored_role_permissions, GrantError, Standing};
use crate::domain::users::{effective_permissions, BaseRole};
use crate::error::{AppError, AppResult};
use crate::provisioning::audit;
use crate::provisioning::{Actor, Env, Source};
use crate::secrets::{hash_secret, new_secret};
use crate::store::models::TokenRow;
use crate::store::{self, DbConn};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    pub id: String,
    /// Shown once; only its hash is stored.
    pub token: String,
    pub scope: String,
    pub account_id: Option<String>,
    pub user_id: Option<String>,
    #[serde(serialize_with = "crate::clock::rfc3339::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<chrono::NaiveDateTime>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: String,
    pub scope: String,
    pub user_id: Option<String>,
    pub label: Option<String>,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::NaiveDateTime,
    #[serde(serialize_with = "crate::clock::rfc3339::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<chrono::NaiveDateTime>,
    #[serde(serialize_with = "crate::clock::rfc3339::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<chrono::NaiveDateTime>,
    #[serde(serialize_with = "crate::clock::rfc3339::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<chrono::NaiveDateTime>,
}

impl From<TokenRow> for TokenView {
    fn from(t: TokenRow) -> TokenView {
        TokenView {
            id: t.id,
            scope: t.scope,
            user_id: t.user_id,
            label: t.label,
            created_at: t.created_at,
            revoked_at: t.revoked_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// Issues an `admin` or `scim` token for an account. An admin token always names the user
/// it acts as (by e-mail; default: the caller, or the owner for the CLI and the operator),
/// who must be the owner, an admin or hold a custom role. Nobody mints a token that holds
/// more than they do: the token's user's permissions (an SCIM token's: users and groups)
/// must be within the caller's, and only the owner's side mints a token acting as the owner.
pub fn create(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    source: Source,
    account: &str,
    scope: &str,
    user_email: Option<&str>,
    label: Option<String>,
    expires_at: Option<chrono::NaiveDateTime>,
) -> AppResult<IssuedToken> {
    store::accounts::find(conn, account)?.ok_or(AppError::not_found("account"))?;
    if expires_at.is_some_and(|t| t <= env.now) {
        return Err(AppError::bad_request("invalid_expiry", "expires_at must be in the future"));
    }
    let user_id = match scope {
        "scim" => {
            check_grant(actor.holds, Actor::identity_provider("scim").holds)?;
            None
        }
        "admin" => {
            let user = match (user_email, &actor.user_id) {
                (Some(e), _) => {
                    let e = normalize_email(e)?;
                    store::users::find_by_email(conn, &e)?
                        .filter(|u| u.account_id == account)
                        .ok_or(AppError::not_found("user"))?
                }
                (None, Some(me)) => store::users::find(conn, account, me)?.ok_or(AppError::not_found("user"))?,
                (None, None) => store::users::owner(conn, account)?.ok_or(AppError::not_found("account owner"))?,
            };
            if user.role == BaseRole::Member && user.custom_role_id.is_none() {
                return Err(AppError::bad_request(
                    "not_an_admin",
                    "admin tokens act as the owner, an admin or a user with a custom role",
                ));
            }
            if user.role == BaseRole::Owner
                && !actor.standing.changes_owner()
                && actor.user_id.as_deref() != Some(&user.id)
            {
                return Err(GrantError::OnlyOwnerChangesOwner.into());
            }
            let custom = match &user.custom_role_id {
                Some(r) => store::roles::find(conn, account, r)?.map(|r| stored_role_permissions(&r.permissions)),
                None => None,
            };
            check_grant(actor.holds, effective_permissions(user.role, custom))?;
            Some(user.id)
        }
        "user" => {
            // A personal credential: exactly the user's own rights, members included. A
            // person makes one for themselves; only the CLI and the operator make one for
            // someone else.
            let user = match (user_email, &actor.user_id) {
                (Some(e), _) => {
                    let e = normalize_email(e)?;
                    store::users::find_by_email(conn, &e)?
                        .filter(|u| u.account_id == account)
                        .ok_or(AppError::not_found("user"))?
                }
                (None, Some(me)) => store::users::find(conn, account, me)?.ok_or(AppError::not_found("user"))?,
                (None, None) => {
                    return Err(AppError::bad_request("user_required", "a user token names its user (--user EMAIL)"))
                }
            };
            let for_self = actor.user_id.as_deref() == Some(user.id.as_str());
            if !for_self && !matches!(actor.standing, Standing::System | Standing::Operator) {
                return Err(AppError::denied("self_only", "a user token is made by its own user"));
            }
            if user.status != crate::domain::users::UserStatus::Active {
                return Err(AppError::conflict("user_not_active", "the user is not active"));
            }
            Some(user.id)
        }
        other => {
            return Err(AppError::bad_request(
                "invalid_scope",
                format!("unknown scope {other:?}: use admin, scim or user"),
            ))
        }
    };
    let token = new_secret("pvs_");
    let row = TokenRow {
        id: crate::secrets::new_id(),
        account_id: Some(account.to_owned()),
        user_id: user_id.clone(),
        scope: scope.to_owned(),
        token_hash: hash_secret(&token),
        label: label.map(|l| l.chars().take(200).collect()),
        created_at: env.now,
        revoked_at: None,
        granted_from: actor.from_account.clone(),
        expires_at,
        last_used_at: None,
        relationship_id: None,
    };
    store::tokens::insert(conn, &row)?;
    audit::record(
        conn,
        env,
        account,
        actor,
        source,
        "token.created",
        Some(&row.id),
        serde_json::json!({ "scope": scope, "user": user_id }),
    )?;
    Ok(IssuedToken {
        id: row.id,
        token,
        scope: scope.to_owned(),
        account_id: Some(account.to_owned()),
        user_id,
        expires_at,
    })
}

/// Creates the platform operator token if there is none: the given one (from
/// `PROVISOR_BOOTSTRAP_TOKEN`) or a new random one. Returns the token when created.
pub fn ensure_operator(conn: &mut DbConn, env: &Env, given: Option<&str>) -> AppResult<Option<String>> {
    if store::tokens::any_operator(conn)? {
        return Ok(None);
    }
    let token = match given {
        Some(t) if t.len() >= 32 => t.to_owned(),
        Some(_) => {
            return Err(AppError::bad_request("weak_token", "PROVISOR_BOOTSTRAP_TOKEN must be at least 32 characters"))
        }
        None => new_secret("pvs_"),
    };
    insert_operator(conn, env, &token, "bootstrap")?;
    Ok(Some(token))
}

/// Stores a platform operator token; returns its id.
fn insert_operator(conn: &mut DbConn, env: &Env, token: &str, label: &str) -> AppResult<String> {
    let id = crate::secrets::new_id();
    store::tokens::insert(
        conn,
        &TokenRow {
            id: id.clone(),
            account_id: None,
            user_id: None,
            scope: "operator".into(),
            token_hash: hash_secret(token),
            label: Some(label.to_owned()),
            created_at: env.now,
            revoked_at: None,
            granted_from: None,
            expires_at: None,
            last_used_at: None,
            relationship_id: None,
        },
    )?;
    Ok(id)
}

/// Issues another platform operator token (recovery when the first one is lost: only whoever
/// can run the CLI against the database can do it), audited as `operator_token.created`.
/// Returns the token (shown once) and its id.
pub fn create_operator(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    label: Option<String>,
) -> AppResult<(String, String)> {
    let token = new_secret("pvs_");
    let id = insert_operator(conn, env, &token, label.as_deref().unwrap_or("operator (cli)"))?;
    crate::provisioning::audit::record_platform(
        conn,
        env,
        actor,
        crate::provisioning::Source::Cli,
        "operator_token.created",
        Some(&id),
        serde_json::json!({ "token_id": id }),
    )?;
    Ok((token, id))
}

/// Revokes a token of the account; returns its hash (to clear caches).
pub fn revoke(conn: &mut DbConn, env: &Env, actor: &Actor, account: &str, id: &str) -> AppResult<String> {
    let hash = store::tokens::revoke(conn, account, id, env.now)?.ok_or(AppError::not_found("token"))?;
    audit::record(conn, env, account, actor, actor.via, "token.revoked", Some(id), serde_json::json!({}))?;
    Ok(hash)
}

//! Who is calling: bearer tokens resolved to a [`Principal`], and the account context an
//! admin request acts in ([`AccountCtx`]). Plain data and plain functions: the HTTP edge
//! only reads the `Authorization` header and hands the token here.
//!
//! Tokens are looked up by their SHA-256; verified tokens are cached in memory for a short
//! time so the hot paths (SCIM pushes) skip the database. Revocation through this process
//! clears the cache entry at once; other processes notice within [`TOKEN_CACHE_TTL`].

use std::time::Duration;

use super::Services;
use crate::cache::TtlCache;
use crate::domain::authz::{Area, Permission, PermissionSet, Standing};
use crate::domain::users::{effective_permissions, BaseRole, UserStatus};
use crate::error::{AppError, AppResult};
use crate::provisioning::Actor;
use crate::secrets::hash_secret;
use crate::store::{self, DbConn};

/// How long a verified token is reused. Revocation through this process clears it at once;
/// other processes notice within this window (losing a right takes effect within 1 s
/// everywhere). It costs one indexed token read per token per second.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(1);
/// How long a resolved account context (acting user's role and permissions) is reused.
/// Changes made through this process clear it at once; other processes see role changes,
/// deactivations and disassociations within this window.
pub const CONTEXT_CACHE_TTL: Duration = Duration::from_secs(1);
const CACHE_MAX: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Operator,
    Admin,
    Scim,
    /// A person's own credential (a `user` token, or an SSO session cookie): exactly what
    /// the user's role grants in their own account, members included.
    User,
    /// A partner's delegate inside one customer account, under one relationship.
    Delegated,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "operator" => Some(Scope::Operator),
            "admin" => Some(Scope::Admin),
            "scim" => Some(Scope::Scim),
            "user" => Some(Scope::User),
            "delegated" => Some(Scope::Delegated),
            _ => None,
        }
    }
}

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: String,
    pub token_hash: String,
    pub scope: Scope,
    /// None for the platform operator.
    pub account_id: Option<String>,
    /// The user an admin token acts as.
    pub user_id: Option<String>,
    pub expires_at: Option<chrono::NaiveDateTime>,
    /// For a delegated token: its relationship.
    pub relationship_id: Option<String>,
}

/// Verified tokens by their clear value (never stored anywhere but this process' memory).
pub struct TokenCache(TtlCache<String, Principal>);

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache(TtlCache::new(TOKEN_CACHE_TTL, CACHE_MAX))
    }
}

impl TokenCache {
    /// Forgets a token by its stored hash (after revocation).
    pub fn forget_hash(&self, hash: &str) {
        self.0.retain(|_, p| p.token_hash != hash);
    }
}

/// A bearer token and the account id of the mirror path, if any.
pub type ContextKey = (String, Option<String>);

/// Resolved [`AccountCtx`]s by (token, mirror target).
pub struct ContextCache(TtlCache<ContextKey, AccountCtx>);

impl Default for ContextCache {
    fn default() -> Self {
        ContextCache(TtlCache::new(CONTEXT_CACHE_TTL, CACHE_MAX))
    }
}

impl ContextCache {
    /// Forgets everything: called after any change of roles, permissions, users or tokens.
    pub fn clear(&self) {
        self.0.clear();
    }
}

fn lookup(conn: &mut DbConn, hash: &str, now: chrono::NaiveDateTime) -> AppResult<(Principal, bool)> {
    let Some(row) = store::tokens::find_active_by_hash(conn, hash, now)? else {
        // A delegated session revoked with its relationship or delegate says so.
        let ended =
            store::tokens::find_by_hash(conn, hash)?.is_some_and(|t| t.scope == "delegated" && t.revoked_at.is_some());
        return Err(if ended {
            AppError::DelegationEnded("the delegation has ended (relationship terminated or delegate removed)".into())
        } else {
            AppError::Unauthorized("unknown, revoked or expired token".into())
        });
    };
    let stale_use = row.last_used_at.is_none_or(|t| now - t > chrono::Duration::seconds(60));
    let scope = Scope::parse(&row.scope).ok_or_else(|| AppError::Internal(format!("token scope {:?}", row.scope)))?;
    let principal = Principal {
        token_id: row.id,
        token_hash: row.token_hash,
        scope,
        account_id: row.account_id,
        user_id: row.user_id,
        expires_at: row.expires_at,
        relationship_id: row.relationship_id,
    };
    Ok((principal, stale_use))
}

/// Resolves a bearer token (cache first).
pub async fn authenticate(svc: &Services, token: &str) -> AppResult<Principal> {
    let now = svc.clock.now_naive();
    if let Some(p) = svc.tokens.0.get(token) {
        if p.expires_at.is_none_or(|t| t > now) {
            return Ok(p);
        }
        return Err(AppError::Unauthorized("unknown, revoked or expired token".into()));
    }
    let hash = hash_secret(token);
    let (p, stale_use) = svc.db.read(move |c| lookup(c, &hash, now)).await?;
    if stale_use {
        // Recorded through the writer, off the request's path; a lost update only delays
        // `last_used_at` by a minute.
        let (db, id) = (svc.db.clone(), p.token_id.clone());
        tokio::spawn(async move {
            let _ = db.write(move |c| store::tokens::touch(c, &id, now).map_err(AppError::from)).await;
        });
    }
    svc.tokens.0.put(token.to_owned(), p.clone());
    Ok(p)
}

/// The account an admin request acts on, who acts, and with which permissions. On the
/// master mirror (`/api/v1/accounts/{accountId}/…`) the account comes from the path and
/// the caller must be the operator or an admin of an ancestor master whose role has
/// `sub_accounts:manage`; they then act with the sub account owner's rights.
#[derive(Debug, Clone)]
pub struct AccountCtx {
    pub account_id: String,
    pub principal: Principal,
    pub actor: Actor,
    pub permissions: PermissionSet,
    pub via_mirror: bool,
    /// The context is refused from this instant on (the token's or the session's end, or
    /// a delegated relationship's end, whichever comes first).
    pub valid_until: Option<chrono::NaiveDateTime>,
}

impl AccountCtx {
    pub fn require(&self, p: Permission) -> AppResult<()> {
        if self.permissions.contains(p) {
            Ok(())
        } else {
            Err(AppError::missing_permission(p))
        }
    }

    pub fn is_operator(&self) -> bool {
        self.principal.scope == Scope::Operator
    }

    pub fn require_operator(&self) -> AppResult<()> {
        if self.is_operator() {
            Ok(())
        } else {
            Err(AppError::forbidden("only the platform operator may do this"))
        }
    }
}

/// The context of an admin request made with `token`, on the mirror of `mirror_target`
/// when given (cached for [`CONTEXT_CACHE_TTL`]).
pub async fn account_context(svc: &Services, token: &str, mirror_target: Option<String>) -> AppResult<AccountCtx> {
    let key = (token.to_owned(), mirror_target.clone());
    let now = svc.clock.now_naive();
    if let Some(ctx) = svc.contexts.0.get(&key) {
        if ctx.valid_until.is_none_or(|t| t > now) {
            return Ok(ctx);
        }
        // Past its end: resolved again below, so the answer says why (token expired,
        // delegation ended).
    }
    let principal = authenticate(svc, token).await?;
    let ctx = svc.db.read(move |c| resolve_ctx(c, principal, mirror_target, now)).await?;
    svc.contexts.0.put(key, ctx.clone());
    Ok(ctx)
}

/// The context of a request authenticated by an SSO session cookie: the signed-in user's
/// own rights (scope `user`), cached like a token's.
pub async fn session_context(svc: &Services, cookie: &str, mirror_target: Option<String>) -> AppResult<AccountCtx> {
    let key = (format!("session\u{1f}{cookie}"), mirror_target.clone());
    let now = svc.clock.now_naive();
    if let Some(ctx) = svc.contexts.0.get(&key) {
        if ctx.valid_until.is_none_or(|t| t > now) {
            return Ok(ctx);
        }
    }
    let hash = hash_secret(cookie);
    let ctx = svc
        .db
        .read(move |c| {
            let s = store::saml::session(c, &hash, now)?
                .ok_or_else(|| AppError::Unauthorized("unknown or expired session; sign in again".into()))?;
            let principal = Principal {
                token_id: "session".into(),
                token_hash: hash,
                scope: Scope::User,
                account_id: Some(s.account_id),
                user_id: Some(s.user_id),
                expires_at: Some(s.expires_at),
                relationship_id: None,
            };
            resolve_ctx(c, principal, mirror_target, now)
        })
        .await?;
    svc.contexts.0.put(key, ctx.clone());
    Ok(ctx)
}

fn resolve_ctx(
    conn: &mut DbConn,
    principal: Principal,
    mirror_target: Option<String>,
    now: chrono::NaiveDateTime,
) -> AppResult<AccountCtx> {
    let valid_until = principal.expires_at;
    match (principal.scope, mirror_target) {
        (Scope::Scim, _) => Err(AppError::forbidden("this token is for SCIM provisioning only; use an admin token")),
        (Scope::Operator, None) => Err(AppError::bad_request(
            "account_required",
            "the operator token has no account: use /api/v1/accounts/{accountId}/…",
        )),
        (Scope::Operator, Some(target)) => {
            store::accounts::find(conn, &target)?.ok_or(AppError::not_found("account"))?;
            Ok(AccountCtx {
                account_id: target,
                actor: Actor::operator(format!("operator:{}", principal.token_id)),
                principal,
                permissions: PermissionSet::all(),
                via_mirror: true,
                valid_until,
            })
        }
        (Scope::Delegated, target) => {
            let customer = principal
                .account_id
                .clone()
                .ok_or_else(|| AppError::Internal("delegated token without account".into()))?;
            // A delegated token acts in its customer only: any other account (a sub
            // account included) looks like a missing one.
            if target.as_ref().is_some_and(|t| *t != customer) {
                return Err(AppError::not_found("account"));
            }
            let access = super::delegation::delegated_access(conn, &principal, now)?;
            let holds = access.permissions;
            let mut actor = Actor::person(access.label.clone(), None, Standing::Delegate, holds);
            actor.delegated = Some(Box::new(access.stamp));
            Ok(AccountCtx {
                account_id: customer,
                actor,
                permissions: holds,
                via_mirror: false,
                valid_until: match (valid_until, access.ends_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                },
                principal,
            })
        }
        (Scope::Admin | Scope::User, target) => {
            let own =
                principal.account_id.clone().ok_or_else(|| AppError::Internal("admin token without account".into()))?;
            let (role, custom) = acting_role(conn, &principal)?;
            let own_perms = effective_permissions(role, custom);
            let label = match &principal.user_id {
                Some(u) => format!("user:{u}"),
                None => format!("token:{}", principal.token_id),
            };
            let standing = match role {
                BaseRole::Owner => Standing::Owner,
                BaseRole::Admin => Standing::Admin,
                BaseRole::Member => Standing::Member,
            };
            match target {
                Some(t) if t != own => {
                    // Another tenant's account looks exactly like a missing one.
                    let ancestors = store::accounts::ancestors(conn, &t)?;
                    if !ancestors.contains(&own) {
                        return Err(AppError::not_found("account"));
                    }
                    let manage = Permission::edit(Area::SubAccounts);
                    if !own_perms.contains(manage) {
                        return Err(AppError::missing_permission(manage));
                    }
                    Ok(AccountCtx {
                        account_id: t,
                        actor: Actor::master_admin(format!("{label}@{own}"), &own),
                        principal,
                        permissions: PermissionSet::all(),
                        via_mirror: true,
                        valid_until,
                    })
                }
                _ => Ok(AccountCtx {
                    account_id: own,
                    actor: Actor::person(label, principal.user_id.clone(), standing, own_perms),
                    principal,
                    permissions: own_perms,
                    via_mirror: false,
                    valid_until,
                }),
            }
        }
    }
}

pub use crate::domain::authz::stored_role_permissions;

/// The acting user's base role and custom-role permissions. A token without a user (made
/// before tokens always named one) acts as the account owner.
fn acting_role(conn: &mut DbConn, p: &Principal) -> AppResult<(BaseRole, Option<PermissionSet>)> {
    let Some(uid) = &p.user_id else { return Ok((BaseRole::Owner, None)) };
    let account = p.account_id.as_deref().unwrap_or_default();
    let user = store::users::find(conn, account, uid)?
        .ok_or_else(|| AppError::Unauthorized("the token's user no longer exists".into()))?;
    if user.status == UserStatus::Inactive {
        return Err(AppError::Unauthorized("the token's user is deactivated".into()));
    }
    let custom = match &user.custom_role_id {
        Some(r) => store::roles::find(conn, account, r)?.map(|r| stored_role_permissions(&r.permissions)),
        None => None,
    };
    Ok((user.role, custom))
}

/// The platform operator, for platform-wide routes (creating top-level accounts).
#[derive(Debug, Clone)]
pub struct OperatorCtx {
    pub principal: Principal,
    pub actor: Actor,
}

pub async fn operator_context(svc: &Services, token: &str) -> AppResult<OperatorCtx> {
    let principal = authenticate(svc, token).await?;
    if principal.scope != Scope::Operator {
        return Err(AppError::forbidden("only the platform operator may do this"));
    }
    let actor = Actor::operator(format!("operator:{}", principal.token_id));
    Ok(OperatorCtx { principal, actor })
}

/// A SCIM client: a `scim` token of one account. Costs no database read once cached.
#[derive(Debug, Clone)]
pub struct ScimCtx {
    pub account_id: String,
    pub principal: Principal,
    pub actor: Actor,
}

pub async fn scim_context(svc: &Services, token: &str) -> AppResult<ScimCtx> {
    let principal = authenticate(svc, token).await?;
    if principal.scope != Scope::Scim {
        return Err(AppError::forbidden("this endpoint needs a SCIM token (provisor token create --scope scim)"));
    }
    let account_id =
        principal.account_id.clone().ok_or_else(|| AppError::Internal("SCIM token without account".into()))?;
    let actor = Actor::identity_provider(format!("scim:{}", principal.token_id));
    Ok(ScimCtx { account_id, principal, actor })
}

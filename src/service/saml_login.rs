//! SAML sign-in, between the validator and the pipeline: SP-initiated requests, the
//! one-transaction completion of a verified login (replay cache, request consumed, JIT
//! provisioning through the pipeline, session) and the session itself.
//!
//! Everything a second server process must see is in the database: outstanding
//! requests, used assertion IDs and sessions.

use chrono::{Duration, NaiveDateTime};
use serde::Serialize;

use super::sso::{LoadedSso, SpUrls};
use crate::domain::accounts::normalize_email;
use crate::domain::users::UserStatus;
use crate::error::AppError;
use crate::provisioning::audit;
use crate::provisioning::{self, Actor, Env, Outcome, Source};
use crate::saml::adapter::{login_change, LoginMappingError};
use crate::saml::{build_redirect, AuthnRequestParams, SamlRefusal, VerifiedLogin};
use crate::secrets::{hash_secret, new_secret};
use crate::service::users::UserView;
use crate::store::{self, DbConn, StoreError};

/// How long an AuthnRequest we sent may be answered.
pub const REQUEST_TTL_MINUTES: i64 = 10;
/// Session lifetime (shorter when the IdP's SessionNotOnOrAfter says so).
pub const SESSION_TTL_HOURS: i64 = 8;
/// The session cookie.
pub const SESSION_COOKIE: &str = "provisor_session";

/// Why a login did not complete. Each has a stable code, which goes to the audit log.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Refused(#[from] SamlRefusal),
    #[error("this assertion was already used (replay)")]
    Replayed,
    #[error("the response answers a login request that is unknown, expired or already answered")]
    RequestUnknown,
    #[error("single sign-on is not configured for this account")]
    NotConfigured,
    #[error("{0}")]
    NoEmail(#[from] LoginMappingError),
    #[error("no user with this e-mail address exists and just-in-time provisioning is off")]
    JitDisabled,
    #[error("the user is deactivated")]
    UserInactive,
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<StoreError> for LoginError {
    fn from(e: StoreError) -> Self {
        LoginError::App(e.into())
    }
}

impl From<diesel::result::Error> for LoginError {
    fn from(e: diesel::result::Error) -> Self {
        LoginError::App(e.into())
    }
}

impl LoginError {
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::Refused(r) => r.code(),
            LoginError::Replayed => "replayed",
            LoginError::RequestUnknown => "in_response_to_unknown",
            LoginError::NotConfigured => "sso_not_configured",
            LoginError::NoEmail(_) => "no_email",
            LoginError::JitDisabled => "jit_disabled",
            LoginError::UserInactive => "user_inactive",
            LoginError::App(e) => e.code(),
        }
    }

    /// Whether the refusal belongs in the account's audit log (a server fault does not).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, LoginError::App(AppError::Internal(_) | AppError::Unavailable(_)))
    }
}

/// Starts an SP-initiated login: stores the request (and where to go afterwards) and
/// returns the IdP URL to redirect the browser to. The target travels in our database,
/// keyed by the request ID, not through the IdP: RelayState is not sent.
pub fn start_login(
    conn: &mut DbConn,
    env: &Env,
    account: &str,
    sso: &LoadedSso,
    urls: &SpUrls,
    target: Option<&str>,
) -> Result<String, LoginError> {
    let sso_url = sso.row.sso_url.as_deref().ok_or_else(|| {
        AppError::conflict(
            "sso_url_missing",
            "the SSO configuration has no IdP SSO URL; set sso_url or import metadata",
        )
    })?;
    let params = AuthnRequestParams {
        sp_entity_id: &urls.entity_id,
        acs_url: &urls.acs_url,
        idp_sso_url: sso_url,
        name_id_format: None,
        force_authn: false,
        relay_state: None,
    };
    let now = env.now.and_utc();
    let request = build_redirect(&params, now).map_err(|e| AppError::conflict("sso_url_invalid", e.to_string()))?;
    store::saml::insert_request(
        conn,
        &request.request_id,
        account,
        target,
        env.now,
        env.now + Duration::minutes(REQUEST_TTL_MINUTES),
    )?;
    Ok(request.redirect_url)
}

/// A completed login.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LoginSuccess {
    pub user: UserView,
    pub outcome: Outcome,
    /// The session cookie value (only its hash is stored).
    #[serde(skip)]
    pub session_token: String,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub session_expires_at: NaiveDateTime,
    /// Where an SP-initiated login asked to go (from our stored request).
    #[serde(skip)]
    pub stored_target: Option<String>,
}

/// Completes a verified login in one transaction: the assertion ID goes into the replay
/// cache, the answered request is consumed, the user is created (JIT) or updated through
/// the pipeline, and a session starts. Any failure rolls all of it back.
pub fn complete_login(
    conn: &mut DbConn,
    env: &Env,
    account: &str,
    sso: &LoadedSso,
    login: &VerifiedLogin,
) -> Result<LoginSuccess, LoginError> {
    store::saml::record_assertion(conn, &login.assertion_id, account, login.assertion_expires_at.naive_utc()).map_err(
        |e| {
            if store::is_unique_violation(&e) {
                LoginError::Replayed
            } else {
                e.into()
            }
        },
    )?;
    let stored_target = match &login.in_response_to {
        Some(id) => store::saml::consume_request(conn, id, account, env.now)?.ok_or(LoginError::RequestUnknown)?,
        None => None,
    };

    let mut change = login_change(account, login)?;
    let email = match &change.explicit.email {
        provisioning::Field::Set(e) => {
            normalize_email(e).map_err(|e| AppError::bad_request("invalid_email", e.to_string()))?
        }
        _ => return Err(LoginError::NoEmail(LoginMappingError::NoEmail)),
    };
    // Locked as it is read: the pipeline's user lock, one round trip less.
    let existing = store::users::find_by_email_locked(conn, &email)?;
    if let Some(u) = &existing {
        // Another tenant's user: say only that the address is taken, never their state.
        if u.account_id != account && !store::accounts::ancestors(conn, &u.account_id)?.iter().any(|a| a == account) {
            return Err(AppError::taken("email_taken", format!("{email} is registered in another account")).into());
        }
    }
    match existing.as_ref().map(|u| u.status) {
        None if !sso.row.jit_enabled => return Err(LoginError::JitDisabled),
        Some(UserStatus::Inactive) => return Err(LoginError::UserInactive),
        // Signing in through the account's IdP accepts a pending invitation (the pipeline
        // does it for a `login` change).
        Some(UserStatus::Pending) => change.explicit.status = Some(UserStatus::Active),
        _ => {}
    }
    change.prefetched_user = Some(existing);
    change.prefetched_user_locked = true;
    let applied = provisioning::run(conn, env, change)?;
    let user = applied.user.ok_or_else(|| AppError::Internal("the login pipeline returned no user".into()))?;
    if user.status != UserStatus::Active {
        return Err(LoginError::UserInactive);
    }

    let session_token = new_secret("pvc_");
    let mut expires_at = env.now + Duration::hours(SESSION_TTL_HOURS);
    if let Some(cap) = login.session_not_on_or_after {
        expires_at = expires_at.min(cap.naive_utc());
    }
    store::saml::insert_session(
        conn,
        &store::saml::SessionRow {
            id_hash: hash_secret(&session_token),
            user_id: user.id.clone(),
            account_id: user.account_id.clone(),
            created_at: env.now,
            expires_at,
        },
    )?;
    audit::record(
        conn,
        env,
        account,
        &Actor::identity_provider(format!("saml:{}", login.issuer)),
        Source::Saml,
        "saml.login",
        Some(&user.id),
        serde_json::json!({
            "assertion_id": login.assertion_id,
            "name_id": login.name_id.value,
            "sp_initiated": login.in_response_to.is_some(),
            "created": applied.outcome.created,
            "home_account": user.account_id,
        }),
    )?;
    Ok(LoginSuccess {
        user: super::users::view(&user, applied.phone.as_ref()),
        outcome: applied.outcome,
        session_token,
        session_expires_at: expires_at,
        stored_target,
    })
}

/// Writes the audit entry of a refused login (its own transaction: the login's rolled back).
pub fn audit_refusal(
    conn: &mut DbConn,
    env: &Env,
    account: &str,
    code: &str,
    message: &str,
    issuer: Option<&str>,
) -> Result<(), AppError> {
    audit::record(
        conn,
        env,
        account,
        &Actor::identity_provider(format!("saml:{}", issuer.unwrap_or("unknown-idp"))),
        Source::Saml,
        "saml.login_refused",
        None,
        serde_json::json!({ "reason": code, "message": crate::saml::refusal::sanitize(message) }),
    )
}

/// What `GET /saml/session` shows: who is signed in and what they are entitled to.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub user: UserView,
    pub groups: Vec<String>,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: NaiveDateTime,
}

/// The live session behind a cookie value, if any.
pub fn session(conn: &mut DbConn, token: &str, now: NaiveDateTime) -> Result<Option<SessionView>, AppError> {
    let Some(s) = store::saml::session(conn, &hash_secret(token), now)? else { return Ok(None) };
    let Some(user) = store::users::find_any(conn, &s.user_id)? else { return Ok(None) };
    if user.status != UserStatus::Active {
        return Ok(None);
    }
    let phone = store::users::phone(conn, &user.id)?;
    let groups = store::groups::groups_of_user(conn, &user.id)?.into_iter().map(|(_, name)| name).collect();
    Ok(Some(SessionView { user: super::users::view(&user, phone.as_ref()), groups, expires_at: s.expires_at }))
}

pub fn end_session(conn: &mut DbConn, token: &str) -> Result<bool, AppError> {
    Ok(store::saml::delete_session(conn, &hash_secret(token))?)
}

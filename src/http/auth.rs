//! Bearer-token extractors: read the `Authorization` header, hand the token to
//! `service::auth`, and record the account on the request span.

use std::future::Future;
use std::pin::Pin;

use crate::http::routes::Need;
use actix_web::{dev::Payload, web, FromRequest, HttpMessage, HttpRequest};

use super::AppState;
use crate::error::{AppError, AppResult};
use crate::service::auth;
pub use crate::service::auth::{AccountCtx, OperatorCtx, Principal, ScimCtx, Scope};

/// The bearer token of a request.
pub fn bearer(req: &HttpRequest) -> AppResult<String> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| AppError::Unauthorized("missing Authorization: Bearer <token> header".into()))?;
    let value = header.to_str().map_err(|_| AppError::Unauthorized("malformed Authorization header".into()))?;
    let (scheme, token) =
        value.trim().split_once(' ').ok_or_else(|| AppError::Unauthorized("expected a Bearer token".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() || token.len() > 512 {
        return Err(AppError::Unauthorized("expected a Bearer token".into()));
    }
    Ok(token.trim().to_owned())
}

fn record_account(req: &HttpRequest, account: &str) {
    if let Some(span) = req.extensions().get::<tracing_actix_web::RootSpan>() {
        span.record("account", account);
    }
}

fn app_state(req: &HttpRequest) -> AppResult<web::Data<AppState>> {
    req.app_data::<web::Data<AppState>>().cloned().ok_or_else(|| AppError::Internal("no app state".into()))
}

/// The one place a route's requirement is checked: the route table's entry for this
/// method and pattern. A route missing from the tables is refused, never let through.
/// A delegate is held to the relationship's scope: anything else is
/// `outside_delegated_scope`, and the permission used is stamped on the actor for the audit.
fn check_route_need(req: &HttpRequest, ctx: &mut AccountCtx) -> AppResult<()> {
    let pattern = req.match_pattern().unwrap_or_default();
    let relative = pattern
        .strip_prefix("/api/v1/accounts/{account_id}")
        .or_else(|| pattern.strip_prefix("/api/v1"))
        .unwrap_or(&pattern);
    let need = crate::http::routes::account_route_need(req.method().as_str(), relative);
    if let Some(stamp) = ctx.actor.delegated.as_mut() {
        return match need {
            Some(Need::Perm(p)) if ctx.permissions.contains(p) => {
                stamp.permission = Some(p.name());
                Ok(())
            }
            Some(Need::Public) => Ok(()),
            Some(Need::Perm(p) | Need::SelfServiceOr(p)) => Err(AppError::denied(
                "outside_delegated_scope",
                format!("this needs {p}, which the relationship does not delegate"),
            )),
            _ => Err(AppError::denied(
                "outside_delegated_scope",
                format!("{} {pattern} is not open to delegates", req.method()),
            )),
        };
    }
    match need {
        Some(Need::Perm(p)) => ctx.require(p),
        Some(Need::Operator) => ctx.require_operator(),
        Some(Need::Public) => Ok(()),
        Some(Need::OwnSelf) if ctx.actor.user_id.is_some() => Ok(()),
        Some(Need::OwnSelf) => {
            Err(AppError::forbidden("this route is for a person's own token (one that names a user)"))
        }
        Some(Need::SelfServiceOr(_)) if ctx.actor.user_id.is_some() => Ok(()),
        Some(Need::SelfServiceOr(p)) => ctx.require(p),
        None => {
            Err(AppError::denied("route_undeclared", format!("{} {pattern} declares no requirement", req.method())))
        }
    }
}

/// The SSO session cookie, when the request carries no bearer token.
fn session_cookie(req: &HttpRequest) -> Option<String> {
    if req.headers().contains_key(actix_web::http::header::AUTHORIZATION) {
        return None;
    }
    req.cookie(crate::service::saml_login::SESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// A cookie-authenticated change must come from our own pages: the cookie is
/// `SameSite=Lax` (no cross-site POST carries it), and an `Origin` naming another site is
/// refused as well.
fn check_same_origin(req: &HttpRequest, public_url: &str) -> AppResult<()> {
    if matches!(*req.method(), actix_web::http::Method::GET | actix_web::http::Method::HEAD) {
        return Ok(());
    }
    let Some(origin) = req.headers().get(actix_web::http::header::ORIGIN) else { return Ok(()) };
    let origin = origin.to_str().unwrap_or_default().trim_end_matches('/');
    let ours = public_url.trim_end_matches('/');
    let host_origin = req.connection_info().scheme().to_owned() + "://" + req.connection_info().host();
    if origin == ours || origin == host_origin {
        Ok(())
    } else {
        Err(AppError::denied("cross_origin", "a session cookie is accepted only from this server's own pages"))
    }
}

impl FromRequest for AccountCtx {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = app_state(&req)?;
            let target = req.match_info().get("account_id").map(str::to_owned);
            let mut ctx = match session_cookie(&req) {
                Some(cookie) => {
                    check_same_origin(&req, &state.public_url)?;
                    auth::session_context(&state, &cookie, target).await?
                }
                None => {
                    let token = bearer(&req)?;
                    auth::account_context(&state, &token, target).await?
                }
            };
            record_account(&req, &ctx.account_id);
            check_route_need(&req, &mut ctx)?;
            Ok(ctx)
        })
    }
}

impl FromRequest for OperatorCtx {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = app_state(&req)?;
            let token = bearer(&req)?;
            Ok(auth::operator_context(&state, &token).await?)
        })
    }
}

/// The SCIM client of a request (SCIM routes call this themselves, so that a refusal is
/// answered in the SCIM error format).
pub async fn scim_ctx(state: &AppState, req: &HttpRequest) -> AppResult<ScimCtx> {
    let token = bearer(req)?;
    let ctx = auth::scim_context(state, &token).await?;
    record_account(req, &ctx.account_id);
    Ok(ctx)
}

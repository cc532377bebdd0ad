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
fn check_route_need(req: &HttpRequest, ctx: &AccountCtx) -> AppResult<()> {
    let pattern = req.match_pattern().unwrap_or_default();
    let relative = pattern
        .strip_prefix("/api/v1/accounts/{account_id}")
        .or_else(|| pattern.strip_prefix("/api/v1"))
        .unwrap_or(&pattern);
    match crate::http::routes::account_route_need(req.method().as_str(), relative) {
        Some(Need::Perm(p)) => ctx.require(p),
        Some(Need::Operator) => ctx.require_operator(),
        Some(Need::Public) => Ok(()),
        Some(Need::OwnSelf) if ctx.actor.user_id.is_some() => Ok(()),
        Some(Need::OwnSelf) => {
            Err(AppError::forbidden("this route is for a person's own token (one that names a user)"))
        }
        None => {
            Err(AppError::denied("route_undeclared", format!("{} {pattern} declares no requirement", req.method())))
        }
    }
}

impl FromRequest for AccountCtx {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = app_state(&req)?;
            let token = bearer(&req)?;
            let target = req.match_info().get("account_id").map(str::to_owned);
            let ctx = auth::account_context(&state, &token, target).await?;
            record_account(&req, &ctx.account_id);
            check_route_need(&req, &ctx)?;
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

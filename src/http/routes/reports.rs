//! Reports across the account and its sub accounts: JSON, or CSV with `format=csv` or
//! `Accept: text/csv`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::error::{AppError, AppResult};
use crate::http::auth::AccountCtx;
use crate::http::AppState;
use crate::service::reports::{self, ActiveUsersReport, Kind, LicensesReport, PhoneReport};

route_table! {
    GET "/reports/licenses" => licenses, view Reports;
    GET "/reports/active_users" => active_users, view Reports;
    GET "/reports/phone" => phone, view Reports;
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// Comma-separated account ids of the caller's tree (default: the account and every sub
    /// account, three tiers deep). An id outside the tree is a 404.
    pub accounts: Option<String>,
    /// RFC 3339 date or instant (active users; default: 30 days before `to`).
    pub from: Option<String>,
    /// RFC 3339 date or instant, exclusive (active users; default: now).
    pub to: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
    /// Active users: list them per account (default false).
    pub list: Option<bool>,
}

async fn answer(
    state: &AppState,
    ctx: AccountCtx,
    req: &HttpRequest,
    q: ReportQuery,
    kind: Kind,
) -> AppResult<HttpResponse> {
    let csv = match q.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(other) => {
            return Err(AppError::bad_request("invalid_format", format!("format {other:?}: use json or csv")))
        }
        None => req
            .headers()
            .get(actix_web::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/csv")),
    };
    let selected: Option<Vec<String>> =
        q.accounts.as_deref().map(|s| s.split(',').map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect());
    let period = reports::period(q.from.as_deref(), q.to.as_deref(), state.clock.now_naive())?;
    let list = q.list.unwrap_or(false);
    let report =
        state.db.read(move |c| reports::run(c, kind, &ctx.account_id, selected.as_deref(), period, list)).await?;
    if csv {
        Ok(HttpResponse::Ok().content_type("text/csv; charset=utf-8").body(reports::to_csv(&report)?))
    } else {
        Ok(HttpResponse::Ok().json(report))
    }
}

/// Licenses per account and product (available, used, delegated out, remaining) with totals.
#[utoipa::path(get, path = "/api/v1/reports/licenses", tag = "reports", params(ReportQuery),
    responses((status = 200, body = LicensesReport), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn licenses(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    req: HttpRequest,
    q: web::Query<ReportQuery>,
) -> AppResult<HttpResponse> {
    answer(&state, ctx, &req, q.into_inner(), Kind::Licenses).await
}

/// Users with an SSO login or a SCIM/API change in `[from, to)`, per account and tier.
#[utoipa::path(get, path = "/api/v1/reports/active_users", tag = "reports", params(ReportQuery),
    responses((status = 200, body = ActiveUsersReport), (status = 400, body = crate::http::error::ErrorBody), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn active_users(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    req: HttpRequest,
    q: web::Query<ReportQuery>,
) -> AppResult<HttpResponse> {
    answer(&state, ctx, &req, q.into_inner(), Kind::ActiveUsers).await
}

/// Phone numbers in the pool, assigned and free; users per site; calling plans in use.
#[utoipa::path(get, path = "/api/v1/reports/phone", tag = "reports", params(ReportQuery),
    responses((status = 200, body = PhoneReport), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn phone(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    req: HttpRequest,
    q: web::Query<ReportQuery>,
) -> AppResult<HttpResponse> {
    answer(&state, ctx, &req, q.into_inner(), Kind::Phone).await
}

//! License summary, purchased counts (operator) and delegation to sub accounts.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::domain::catalog::{Product, UnknownName};
use crate::error::{AppError, AppResult};
use crate::http::auth::AccountCtx;
use crate::http::AppState;
use crate::provisioning::Source;
use crate::service::licenses::{self, LicenseSummary};

route_table! {
    GET "/licenses" => summary, view Licenses;
    PUT "/licenses/{product}" => purchase, operator;
    PUT "/sub_accounts/{sub_id}/licenses/{product}" => delegate, edit SubAccounts;
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Quantity {
    pub quantity: i64,
}

fn product(s: &str) -> AppResult<Product> {
    s.parse().map_err(|e: UnknownName| AppError::bad_request("invalid_product", e.to_string()))
}

/// License summary: per product, purchased (or delegated to this account), used here,
/// delegated to each sub account, remaining.
#[utoipa::path(get, path = "/api/v1/licenses", tag = "licenses", responses((status = 200, body = LicenseSummary)))]
pub async fn summary(state: web::Data<AppState>, ctx: AccountCtx) -> AppResult<HttpResponse> {
    let s = state.db.read(move |c| licenses::summary(c, &ctx.account_id)).await?;
    Ok(HttpResponse::Ok().json(s))
}

/// Set the purchased count of a product (platform operator, through the mirror).
#[utoipa::path(put, path = "/api/v1/licenses/{product}", tag = "licenses", request_body = Quantity,
    responses((status = 200, body = LicenseSummary), (status = 403, body = crate::http::error::ErrorBody), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn purchase(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
    body: web::Json<Quantity>,
) -> AppResult<HttpResponse> {
    let product = product(&super::Params::get(&path.product, "product")?)?;
    let q = body.quantity;
    let env = state.env();
    let s = state
        .db
        .write(move |c| {
            licenses::purchase(c, &env, &ctx.actor, Source::Api, &ctx.account_id, product, q)?;
            licenses::summary(c, &ctx.account_id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(s))
}

/// Set how many licenses of a product this master delegates to a sub account.
#[utoipa::path(put, path = "/api/v1/sub_accounts/{sub_id}/licenses/{product}", tag = "licenses", request_body = Quantity,
    responses((status = 200, body = LicenseSummary), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn delegate(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
    body: web::Json<Quantity>,
) -> AppResult<HttpResponse> {
    let (sub, product_name) =
        (super::Params::get(&path.sub_id, "sub_id")?, super::Params::get(&path.product, "product")?);
    let product = product(&product_name)?;
    let q = body.quantity;
    let env = state.env();
    let s = state
        .db
        .write(move |c| {
            licenses::delegate(c, &env, &ctx.actor, &ctx.account_id, &sub, product, q)?;
            licenses::summary(c, &ctx.account_id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(s))
}

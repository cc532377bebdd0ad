//! Mapping rules.

use actix_web::{web, HttpResponse};

use crate::error::{AppError, AppResult};
use crate::http::auth::AccountCtx;
use crate::http::AppState;
use crate::provisioning::Source;
use crate::service::mapping;

route_table! {
    GET "/mapping" => get, view Mapping;
    PUT "/mapping" => put, edit Mapping;
}

/// The account's mapping rules (the document format is in the README).
#[utoipa::path(get, path = "/api/v1/mapping", tag = "mapping", responses((status = 200, body = MappingView)))]
pub async fn get(state: web::Data<AppState>, ctx: AccountCtx) -> AppResult<HttpResponse> {
    let (rules, version) = state.db.read(move |c| mapping::get(c, &ctx.account_id)).await?;
    Ok(HttpResponse::Ok().json(MappingView { version, rules }))
}

/// The stored mapping document and its version (0: none stored yet).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MappingView {
    pub version: i64,
    #[schema(value_type = crate::domain::mapping::MappingConfig)]
    pub rules: serde_json::Value,
}

/// The version a stored document got.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MappingVersion {
    pub version: i64,
}

/// Replace the account's mapping rules (validated and compiled first; a bad rule names
/// itself in the error).
#[utoipa::path(put, path = "/api/v1/mapping", tag = "mapping", request_body(content = crate::domain::mapping::MappingConfig, content_type = "application/json"),
    responses((status = 200, description = "stored", body = MappingVersion), (status = 400, body = crate::http::error::ErrorBody)))]
pub async fn put(state: web::Data<AppState>, ctx: AccountCtx, body: web::Bytes) -> AppResult<HttpResponse> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| AppError::bad_request("invalid_json", "the body is not UTF-8"))?
        .to_owned();
    let env = state.env();
    let version =
        state.db.write(move |c| mapping::set(c, &env, &ctx.actor, Source::Api, &ctx.account_id, &text)).await?;
    Ok(HttpResponse::Ok().json(MappingVersion { version }))
}

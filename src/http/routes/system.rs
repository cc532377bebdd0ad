//! Health, readiness, the OpenAPI document and the JSON 404.

use actix_web::{web, HttpResponse};

use crate::error::AppError;
use crate::http::AppState;

route_table! {
    GET "/healthz" => healthz, public;
    GET "/readyz" => readyz, public;
    GET "/api/v1/openapi.json" => openapi, public;
    GET "/api/v1/permissions" => permissions, public;
    GET "/metrics" => crate::http::metrics::scrape, public;
}

/// The permission catalogue and the built-in roles (names custom roles are made of).
#[utoipa::path(get, path = "/api/v1/permissions", tag = "system", responses((status = 200, description = "{\"permissions\": [{name, area, level, description, implies}], \"built_in_roles\": {owner, admin, member}}")))]
pub async fn permissions() -> HttpResponse {
    use crate::domain::authz::{Level, Permission, PermissionSet};
    let entries: Vec<_> = Permission::catalogue()
        .map(|p| {
            let implies: Vec<String> =
                if p.level == Level::Edit { vec![Permission::view(p.area).name()] } else { Vec::new() };
            serde_json::json!({
                "name": p.name(),
                "area": p.area.as_str(),
                "level": p.level.as_str(),
                "description": format!("{} {}", if p.level == Level::Edit { "change" } else { "see" }, p.area.describe()),
                "implies": implies,
            })
        })
        .collect();
    HttpResponse::Ok().json(serde_json::json!({
        "permissions": entries,
        "built_in_roles": {
            "owner": PermissionSet::all().names(),
            "admin": PermissionSet::admin().names(),
            "member": PermissionSet::EMPTY.names(),
        },
    }))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, description = "alive")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "system", responses((status = 200, description = "ready"), (status = 503, description = "database unreachable")))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let backend = state.db.backend().name();
    state
        .db
        .read(|c| {
            use diesel::connection::SimpleConnection;
            c.batch_execute("SELECT 1").map_err(|e| AppError::Unavailable(e.to_string()))
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready", "database": backend })))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system", responses((status = 200, description = "the OpenAPI 3 document")))]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(crate::http::openapi::document())
}

pub async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, AppError> {
    // A known path asked with a method it does not have is a 405 that says which it has.
    let methods = super::methods_for(req.path());
    if !methods.is_empty() && !methods.contains(&req.method().as_str()) {
        let allow = methods.join(", ");
        return Ok(HttpResponse::MethodNotAllowed()
            .insert_header((actix_web::http::header::ALLOW, allow.clone()))
            .json(crate::http::error::ErrorBody::new(
                "method_not_allowed",
                format!("{} is not allowed on {}; use {allow}", req.method(), req.path()),
            )));
    }
    Err(AppError::not_found("route"))
}

//! Health, readiness, the OpenAPI document and the JSON 404.

use actix_web::{web, HttpResponse};

use crate::error::AppError;
use crate::http::AppState;

route_table! {
    GET "/healthz" => healthz, public;
    GET "/readyz" => readyz, public;
    GET "/api/v1/openapi.json" => openapi, public;
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

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(crate::http::openapi::document())
}

pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::not_found("route"))
}

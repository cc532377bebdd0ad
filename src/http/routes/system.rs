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
#[utoipa::path(get, path = "/api/v1/permissions", tag = "system", responses((status = 200, body = PermissionCatalogue)))]
pub async fn permissions() -> HttpResponse {
    use crate::domain::authz::{Level, Permission, PermissionSet};
    let permissions = Permission::catalogue()
        .map(|p| {
            let implies: Vec<String> =
                if p.level == Level::Edit { vec![Permission::view(p.area).name()] } else { Vec::new() };
            PermissionEntry {
                name: p.name(),
                area: p.area.as_str().to_owned(),
                level: p.level.as_str().to_owned(),
                description: format!("{} {}", if p.level == Level::Edit { "change" } else { "see" }, p.area.describe()),
                implies,
            }
        })
        .collect();
    HttpResponse::Ok().json(PermissionCatalogue {
        permissions,
        built_in_roles: BuiltInRoles {
            owner: PermissionSet::all().names(),
            admin: PermissionSet::admin().names(),
            member: PermissionSet::EMPTY.names(),
        },
    })
}

/// The permission catalogue.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PermissionCatalogue {
    pub permissions: Vec<PermissionEntry>,
    pub built_in_roles: BuiltInRoles,
}

/// One permission, `area:level`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PermissionEntry {
    pub name: String,
    pub area: String,
    /// `view` or `edit`.
    pub level: String,
    pub description: String,
    /// Permissions this one includes (`edit` includes `view`).
    pub implies: Vec<String>,
}

/// What each built-in role holds.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct BuiltInRoles {
    pub owner: Vec<String>,
    pub admin: Vec<String>,
    pub member: Vec<String>,
}

/// Liveness.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Alive {
    /// Always `ok`.
    pub status: String,
}

/// The readiness report.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: String,
    pub database: DatabaseCheck,
    pub workers: Vec<crate::health::PartReport>,
    /// The failing parts: `database` or a worker's name.
    pub failing: Vec<String>,
}

/// Whether the database answered.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct DatabaseCheck {
    /// `sqlite` or `postgres`.
    pub backend: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, description = "alive", body = Alive)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Alive { status: "ok".to_owned() })
}

/// Ready to serve: the database answers and every background worker of this process
/// (group-commit writer, WAL checkpointer, group sync and its reconcile, relationship sweep,
/// maintenance, mail sender) is alive and not stuck on one piece of work longer than
/// `--ready-stall-seconds`. Otherwise 503 with the failing parts named. `/healthz` is
/// liveness only.
#[utoipa::path(get, path = "/readyz", tag = "system", responses(
    (status = 200, description = "ready", body = Readiness),
    (status = 503, description = "not ready: status `unavailable`, the failing parts named", body = Readiness)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let backend = state.db.backend().name();
    let db = state
        .db
        .read(|c| {
            use diesel::connection::SimpleConnection;
            c.batch_execute("SELECT 1").map_err(|e| AppError::Unavailable(e.to_string()))
        })
        .await;
    let workers = state.db.health.report(state.config.ready_stall);
    let mut failing: Vec<String> = Vec::new();
    let database = match &db {
        Ok(()) => DatabaseCheck { backend: backend.to_owned(), ok: true, error: None },
        Err(e) => {
            failing.push("database".to_owned());
            DatabaseCheck { backend: backend.to_owned(), ok: false, error: Some(e.public_message()) }
        }
    };
    failing.extend(workers.iter().filter(|w| w.state.is_failing()).map(|w| w.part.clone()));
    let ready = failing.is_empty();
    let body = Readiness { status: if ready { "ready" } else { "unavailable" }.to_owned(), database, workers, failing };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().insert_header(("Retry-After", "5")).json(body)
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system", responses((status = 200, description = "the OpenAPI 3 document", body = Object)))]
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

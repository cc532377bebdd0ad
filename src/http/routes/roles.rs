//! Custom roles.

use actix_web::{web, HttpResponse};

use crate::error::{AppError, AppResult};
use crate::http::auth::AccountCtx;
use crate::http::AppState;
use crate::service::roles::{self, RoleInput, RoleView};
use crate::store;

route_table! {
    GET "/roles" => list, view Roles;
    POST "/roles" => create, edit Roles;
    PUT "/roles/{role_id}" => update, edit Roles;
    DELETE "/roles/{role_id}" => delete, edit Roles;
}

list_body! {
    /// `{"roles": […]}`
    RoleList { roles: RoleView }
}

/// Custom roles of the account.
#[utoipa::path(get, path = "/api/v1/roles", tag = "roles", responses((status = 200, body = RoleList)))]
pub async fn list(state: web::Data<AppState>, ctx: AccountCtx) -> AppResult<HttpResponse> {
    let rows = state.db.read(move |c| store::roles::list(c, &ctx.account_id).map_err(AppError::from)).await?;
    let views: Vec<RoleView> = rows.into_iter().map(RoleView::from).collect();
    Ok(HttpResponse::Ok().json(RoleList { roles: views }))
}

/// Create a custom role.
#[utoipa::path(post, path = "/api/v1/roles", tag = "roles", request_body = RoleInput, responses((status = 201, body = RoleView), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    body: web::Json<RoleInput>,
) -> AppResult<HttpResponse> {
    let env = state.env();
    let input = body.into_inner();
    let v = state.db.write(move |c| roles::create(c, &env, &ctx.actor, &ctx.account_id, &input)).await?;
    Ok(HttpResponse::Created().json(v))
}

/// Replace a custom role's name and permissions.
#[utoipa::path(put, path = "/api/v1/roles/{role_id}", tag = "roles", request_body = RoleInput, responses((status = 200, body = RoleView)))]
pub async fn update(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
    body: web::Json<RoleInput>,
) -> AppResult<HttpResponse> {
    let env = state.env();
    let (id, input) = (super::Params::get(&path.role_id, "role_id")?, body.into_inner());
    let v = state.db.write(move |c| roles::update(c, &env, &ctx.actor, &ctx.account_id, &id, &input)).await?;
    state.authorization_changed();
    Ok(HttpResponse::Ok().json(v))
}

/// Delete a custom role nobody holds.
#[utoipa::path(delete, path = "/api/v1/roles/{role_id}", tag = "roles", responses((status = 204, description = "deleted"), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let env = state.env();
    let id = super::Params::get(&path.role_id, "role_id")?;
    state.db.write(move |c| roles::delete(c, &env, &ctx.actor, &ctx.account_id, &id)).await?;
    state.authorization_changed();
    Ok(HttpResponse::NoContent().finish())
}

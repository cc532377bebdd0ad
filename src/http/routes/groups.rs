//! Account groups and their members.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{Page, Params};
use crate::error::{AppError, AppResult};
use crate::http::auth::AccountCtx;
use crate::http::AppState;
use crate::provisioning::Source;
use crate::service::groups::{self, By, GroupFields, GroupInput, GroupView, MemberEdit, MemberStep, NewMember};
use crate::store;

route_table! {
    GET "/groups" => list, view Groups;
    POST "/groups" => create, edit Groups;
    GET "/groups/{group_id}" => get, view Groups;
    PATCH "/groups/{group_id}" => rename, edit Groups;
    DELETE "/groups/{group_id}" => delete, edit Groups;
    POST "/groups/{group_id}/members" => members, edit Groups;
}

list_body! {
    /// `{"groups": […]}`
    GroupList { groups: GroupView }
}

/// Groups of the account.
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", params(Page), responses((status = 200, body = GroupList)))]
pub async fn list(state: web::Data<AppState>, ctx: AccountCtx, page: web::Query<Page>) -> AppResult<HttpResponse> {
    let page = page.into_inner();
    let v = state
        .db
        .read(move |c| {
            let rows = store::groups::list(c, &ctx.account_id, page.limit(), page.offset())?;
            rows.into_iter().map(|g| groups::view(c, g)).collect::<AppResult<Vec<_>>>()
        })
        .await?;
    Ok(HttpResponse::Ok().json(GroupList { groups: v }))
}

/// Create a group.
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", request_body = GroupInput, responses((status = 201, body = GroupView)))]
pub async fn create(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    body: web::Json<GroupInput>,
) -> AppResult<HttpResponse> {
    let env = state.env();
    let name = body.into_inner().name;
    let v = state
        .db
        .write(move |c| {
            let row = groups::create(c, &env, by(&ctx), &ctx.account_id, GroupFields::named(name), &[])?;
            groups::view(c, row)
        })
        .await?;
    Ok(HttpResponse::Created().json(v))
}

/// One group with its members.
#[utoipa::path(get, path = "/api/v1/groups/{group_id}", tag = "groups", responses((status = 200, body = GroupView)))]
pub async fn get(state: web::Data<AppState>, ctx: AccountCtx, path: web::Path<Params>) -> AppResult<HttpResponse> {
    let id = Params::get(&path.group_id, "group_id")?;
    let v = state
        .db
        .read(move |c| {
            let g = store::groups::find(c, &ctx.account_id, &id)?.ok_or(AppError::not_found("group"))?;
            groups::view(c, g)
        })
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

/// Rename a group.
#[utoipa::path(patch, path = "/api/v1/groups/{group_id}", tag = "groups", request_body = GroupInput, responses((status = 200, body = GroupView)))]
pub async fn rename(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<Params>,
    body: web::Json<GroupInput>,
) -> AppResult<HttpResponse> {
    let id = Params::get(&path.group_id, "group_id")?;
    let env = state.env();
    let name = body.into_inner().name;
    let v = state
        .db
        .write(move |c| {
            let row = groups::find_locked(c, &ctx.account_id, &id)?.ok_or(AppError::not_found("group"))?;
            let fields = GroupFields { name, external_id: row.external_id.clone(), scim: None };
            let (row, _) = groups::update(c, &env, by(&ctx), row, Some(fields), MemberEdit::Keep, None)?;
            groups::view(c, row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

/// Delete a group (each membership ends with a membership event).
#[utoipa::path(delete, path = "/api/v1/groups/{group_id}", tag = "groups", responses((status = 204, description = "deleted")))]
pub async fn delete(state: web::Data<AppState>, ctx: AccountCtx, path: web::Path<Params>) -> AppResult<HttpResponse> {
    let id = Params::get(&path.group_id, "group_id")?;
    let env = state.env();
    state
        .db
        .write(move |c| {
            let row = groups::find_locked(c, &ctx.account_id, &id)?.ok_or(AppError::not_found("group"))?;
            groups::delete(c, &env, by(&ctx), &row)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberChange {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// Add and remove members by user id.
#[utoipa::path(post, path = "/api/v1/groups/{group_id}/members", tag = "groups", request_body = MemberChange, responses((status = 200, body = GroupView)))]
pub async fn members(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<Params>,
    body: web::Json<MemberChange>,
) -> AppResult<HttpResponse> {
    let id = Params::get(&path.group_id, "group_id")?;
    let b = body.into_inner();
    if b.add.len() + b.remove.len() > 10_000 {
        return Err(AppError::bad_request("too_many", "at most 10000 member changes per request"));
    }
    let env = state.env();
    let v = state
        .db
        .write(move |c| {
            let row = groups::find_locked(c, &ctx.account_id, &id)?.ok_or(AppError::not_found("group"))?;
            let steps = [MemberStep::Add(b.add.into_iter().map(NewMember::id).collect()), MemberStep::Remove(b.remove)];
            let (row, _) = groups::update(c, &env, by(&ctx), row, None, MemberEdit::Steps(&steps), None)?;
            groups::view(c, row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

fn by(ctx: &AccountCtx) -> By<'_> {
    By { actor: &ctx.actor, source: Source::Api }
}

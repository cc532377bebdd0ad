//! Group sync: groups bound to a relationship, the sync status, held removals, reconcile.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::error::AppResult;
use crate::http::auth::AccountCtx;
use crate::http::AppState;
use crate::service::sync::{self, BindingView, HoldView, ReconcileReport, SyncStatus};

route_table! {
    POST "/relationships/{relationship_id}/groups" => bind, edit ExternalAccounts;
    GET "/relationships/{relationship_id}/groups" => bindings, view ExternalAccounts;
    DELETE "/relationships/{relationship_id}/groups/{binding_id}" => unbind, edit ExternalAccounts;
    GET "/sync/status" => status, view ExternalAccounts;
    GET "/sync/held" => held, view ExternalAccounts;
    POST "/sync/held/{hold_id}/confirm" => confirm, edit ExternalAccounts;
    POST "/sync/held/{hold_id}/discard" => discard, edit ExternalAccounts;
    POST "/sync/reconcile" => reconcile, edit ExternalAccounts;
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindGroup {
    /// A group of the partner account.
    pub group_id: String,
    /// Within the relationship's (default: all of them).
    pub permissions: Option<Vec<String>>,
    /// Members become active delegates at once (default false: each gets an invitation).
    #[serde(default)]
    pub auto_accept: bool,
}

/// Bind a partner group to a relationship (partner side): its members become delegates
/// and stay in step with its membership.
#[utoipa::path(post, path = "/api/v1/relationships/{relationship_id}/groups", tag = "sync", request_body = BindGroup,
    responses((status = 201, body = BindingView), (status = 400, body = crate::http::error::ErrorBody), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn bind(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
    body: web::Json<BindGroup>,
) -> AppResult<HttpResponse> {
    let id = super::Params::get(&path.relationship_id, "relationship_id")?;
    let b = body.into_inner();
    let env = state.env();
    let v = state
        .db
        .write(move |c| {
            sync::bind(c, &env, &ctx.actor, &ctx.account_id, &id, &b.group_id, b.permissions, b.auto_accept)
        })
        .await?;
    state.authorization_changed();
    Ok(HttpResponse::Created().json(v))
}

list_body! {
    /// `{"groups": […]}`: the bindings
    BindingList { groups: BindingView }
}

/// The groups bound to a relationship.
#[utoipa::path(get, path = "/api/v1/relationships/{relationship_id}/groups", tag = "sync",
    responses((status = 200, body = BindingList)))]
pub async fn bindings(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let id = super::Params::get(&path.relationship_id, "relationship_id")?;
    let v = state.db.read(move |c| sync::bindings(c, &ctx.account_id, &id)).await?;
    Ok(HttpResponse::Ok().json(BindingList { groups: v }))
}

/// Unbind a group: its source goes from every delegate; those left with none lose access.
#[utoipa::path(delete, path = "/api/v1/relationships/{relationship_id}/groups/{binding_id}", tag = "sync",
    responses((status = 204, description = "unbound"), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn unbind(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let id = super::Params::get(&path.relationship_id, "relationship_id")?;
    let binding = super::Params::get(&path.binding_id, "binding_id")?;
    let env = state.env();
    let revoked = state.db.write(move |c| sync::unbind(c, &env, &ctx.actor, &ctx.account_id, &id, &binding)).await?;
    forget(&state, &revoked);
    Ok(HttpResponse::NoContent().finish())
}

fn forget(state: &AppState, revoked: &[String]) {
    for h in revoked {
        state.tokens.forget_hash(h);
    }
    state.authorization_changed();
}

/// Events not yet applied (of this account's groups), the oldest one's age, held removals.
#[utoipa::path(get, path = "/api/v1/sync/status", tag = "sync", responses((status = 200, body = SyncStatus)))]
pub async fn status(state: web::Data<AppState>, ctx: AccountCtx) -> AppResult<HttpResponse> {
    let env = state.env();
    let v = state.db.read(move |c| sync::status(c, &env, Some(&ctx.account_id))).await?;
    Ok(HttpResponse::Ok().json(v))
}

list_body! {
    /// `{"held": […]}`
    HoldList { held: HoldView }
}

/// Removals held for confirmation (newest first), of the account's relationships.
#[utoipa::path(get, path = "/api/v1/sync/held", tag = "sync",
    responses((status = 200, body = HoldList)))]
pub async fn held(state: web::Data<AppState>, ctx: AccountCtx) -> AppResult<HttpResponse> {
    let v = state.db.read(move |c| sync::holds(c, Some(&ctx.account_id))).await?;
    Ok(HttpResponse::Ok().json(HoldList { held: v }))
}

async fn decide(state: &AppState, ctx: AccountCtx, id: String, confirm: bool) -> AppResult<HoldView> {
    let env = state.env();
    let (v, revoked) =
        state.db.write(move |c| sync::decide(c, &env, &ctx.actor, Some(&ctx.account_id), &id, confirm)).await?;
    forget(state, &revoked);
    Ok(v)
}

/// Apply a held removal (partner side).
#[utoipa::path(post, path = "/api/v1/sync/held/{hold_id}/confirm", tag = "sync",
    responses((status = 200, body = HoldView), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn confirm(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let id = super::Params::get(&path.hold_id, "hold_id")?;
    Ok(HttpResponse::Ok().json(decide(&state, ctx, id, true).await?))
}

/// Drop a held removal: the delegates keep their access (a later reconcile finds the drift
/// again and holds it again unless the group changed back).
#[utoipa::path(post, path = "/api/v1/sync/held/{hold_id}/discard", tag = "sync",
    responses((status = 200, body = HoldView), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn discard(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let id = super::Params::get(&path.hold_id, "hold_id")?;
    Ok(HttpResponse::Ok().json(decide(&state, ctx, id, false).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReconcileQuery {
    /// Report the drift without repairing it (default false).
    pub dry_run: Option<bool>,
}

/// Recompute every binding of the account's relationships from the current memberships,
/// report the drift and (unless a dry run) repair it.
#[utoipa::path(post, path = "/api/v1/sync/reconcile", tag = "sync", params(ReconcileQuery),
    responses((status = 200, body = ReconcileReport)))]
pub async fn reconcile(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    q: web::Query<ReconcileQuery>,
) -> AppResult<HttpResponse> {
    let dry_run = q.dry_run.unwrap_or(false);
    let threshold = state.config.sync_threshold;
    let account = ctx.account_id.clone();
    let relationships = state.db.read(move |c| sync::relationships_to_reconcile(c, Some(&account))).await?;
    let mut report = ReconcileReport { dry_run, ..Default::default() };
    for r in relationships {
        let env = state.env();
        let part = state.db.write(move |c| sync::reconcile_relationship(c, &env, threshold, &r, dry_run)).await?;
        report.bindings += part.bindings;
        report.missing += part.missing;
        report.extra += part.extra;
        report.dangling_sources += part.dangling_sources;
        report.repaired += part.repaired;
        report.held += part.held;
        report.drift.extend(part.drift);
        report.revoked.extend(part.revoked);
    }
    crate::http::metrics::drift(report.missing + report.extra, if dry_run { 0 } else { report.repaired });
    forget(&state, &report.revoked);
    Ok(HttpResponse::Ok().json(report))
}

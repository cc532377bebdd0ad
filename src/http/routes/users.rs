//! Users: add (invite), list, get, update, remove, invitations, bulk type changes, CSV.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{Page, Params};
use crate::domain::catalog::{UnknownName, UserTier};
use crate::error::{AppError, AppResult};
use crate::http::auth::AccountCtx;
use crate::http::AppState;
use crate::provisioning::{self, invitations, Source};
use crate::service::users::{self as admin_users, BulkReport, ImportReport, InvitationView, UserInput, UserView};
use crate::store;

/// Largest CSV accepted over HTTP (the CLI streams files of any size).
pub const CSV_LIMIT: usize = 64 * 1024 * 1024;

route_table! {
    GET "/users" => list, view Users;
    POST "/users" => create, edit Users;
    POST "/users/import" => import_csv, edit Users;
    GET "/users/export" => export_csv, view Users;
    POST "/users/bulk/change_type" => bulk_change_type, edit Users;
    POST "/users/bulk/remove" => bulk_remove, edit Users;
    POST "/users/move" => move_users, edit SubAccounts;
    GET "/users/{user_id}" => get, view Users;
    PATCH "/users/{user_id}" => update, edit Users;
    DELETE "/users/{user_id}" => delete, edit Users;
    POST "/users/{user_id}/erasure" => erase, edit Users;
    POST "/users/{user_id}/invitation/resend" => resend, edit Users;
    GET "/invitations" => list_invitations, view Users;
    GET "/users/{user_id}/sessions" => sessions, view Users;
    DELETE "/users/{user_id}/sessions" => end_sessions, edit Users;
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    /// `pending`, `active` or `inactive`.
    pub status: Option<String>,
    /// A user type.
    #[serde(rename = "type")]
    pub user_type: Option<String>,
    /// E-mail addresses starting with this.
    pub email: Option<String>,
}

/// A page of users, with the total that match.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// Users of the account.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(ListQuery), responses((status = 200, body = UserList)))]
pub async fn list(state: web::Data<AppState>, ctx: AccountCtx, q: web::Query<ListQuery>) -> AppResult<HttpResponse> {
    let q = q.into_inner();
    let page = Page { limit: q.limit, offset: q.offset };
    let filter = store::users::UserListFilter {
        status: q.status,
        user_type: q.user_type,
        email_prefix: q.email.map(|e| e.to_lowercase()),
    };
    let (users, total) =
        state.db.read(move |c| admin_users::list(c, &ctx.account_id, &filter, page.limit(), page.offset())).await?;
    Ok(HttpResponse::Ok().json(UserList { users, total, limit: page.limit(), offset: page.offset() }))
}

/// Add a user: a pending invitation (mailed through the outbox), licensed within the
/// account's seats — 409 `no_seat_left` when none is left.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = UserInput,
    responses((status = 201, body = UserView), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    body: web::Json<UserInput>,
) -> AppResult<HttpResponse> {
    let change = admin_users::create_change(&ctx.account_id, &ctx.actor, Source::Api, &body)?;
    let env = state.env();
    let view = state
        .db
        .write(move |c| {
            let applied = provisioning::run(c, &env, change)?;
            applied_view(applied)
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

fn applied_view(applied: provisioning::Applied) -> AppResult<UserView> {
    let user = applied.user.ok_or(AppError::not_found("user"))?;
    Ok(admin_users::view(&user, applied.phone.as_ref()))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{user_id}", tag = "users", responses((status = 200, body = UserView), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let id = super::Params::get(&path.user_id, "user_id")?;
    let view = state.db.read(move |c| admin_users::get(c, &ctx.account_id, &id)).await?;
    Ok(HttpResponse::Ok().insert_header(("ETag", format!("W/\"{}\"", view.version))).json(view))
}

fn if_match(req: &HttpRequest) -> AppResult<Option<i64>> {
    match req.headers().get("If-Match") {
        None => Ok(None),
        Some(v) => {
            let s = v.to_str().unwrap_or("").trim();
            if s == "*" {
                return Ok(None);
            }
            let n = s.trim_start_matches("W/").trim_matches('"');
            n.parse::<i64>()
                .map(Some)
                .map_err(|_| AppError::PreconditionFailed(format!("If-Match {s:?} is not an ETag of this API")))
        }
    }
}

/// Update a user (type within seats, role — only the owner grants or removes Admin —,
/// profile, status). `If-Match` with the ETag guards against lost updates.
#[utoipa::path(patch, path = "/api/v1/users/{user_id}", tag = "users", request_body = UserInput,
    responses((status = 200, body = UserView), (status = 403, body = crate::http::error::ErrorBody), (status = 409, body = crate::http::error::ErrorBody), (status = 412, body = crate::http::error::ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    req: HttpRequest,
    path: web::Path<super::Params>,
    body: web::Json<UserInput>,
) -> AppResult<HttpResponse> {
    let id = super::Params::get(&path.user_id, "user_id")?;
    let change = admin_users::update_change(&ctx.account_id, &ctx.actor, &id, &body, if_match(&req)?)?;
    let env = state.env();
    let view = state
        .db
        .write(move |c| {
            let applied = provisioning::run(c, &env, change)?;
            applied_view(applied)
        })
        .await?;
    // A role, custom role or status may have changed: this process forgets resolved rights.
    state.authorization_changed();
    Ok(HttpResponse::Ok().insert_header(("ETag", format!("W/\"{}\"", view.version))).json(view))
}

/// Remove a user: its seats, number, extension and memberships are released.
#[utoipa::path(delete, path = "/api/v1/users/{user_id}", tag = "users", responses((status = 204, description = "removed"), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let change = admin_users::delete_change(
        &ctx.account_id,
        &ctx.actor,
        Source::Api,
        &super::Params::get(&path.user_id, "user_id")?,
    );
    let env = state.env();
    state.db.write(move |c| provisioning::run(c, &env, change)).await?;
    state.authorization_changed();
    Ok(HttpResponse::NoContent().finish())
}

/// Erase a user's personal data on request: the user is removed as by `DELETE`, mail to
/// them is deleted, and the audit log keeps the pseudonym `erased:<user id>` instead of
/// their e-mail, names and ids. One transaction; the owner cannot be erased.
#[utoipa::path(post, path = "/api/v1/users/{user_id}/erasure", tag = "users", responses((status = 200, body = crate::service::erasure::ErasureReport), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn erase(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let user = super::Params::get(&path.user_id, "user_id")?;
    let env = state.env();
    let report = state
        .db
        .write(move |c| crate::service::erasure::erase_user(c, &env, &ctx.actor, &ctx.account_id, &user))
        .await?;
    state.authorization_changed();
    Ok(HttpResponse::Ok().json(report))
}

/// Send a pending user's invitation again (new token, new 30-day window).
#[utoipa::path(post, path = "/api/v1/users/{user_id}/invitation/resend", tag = "users", responses((status = 200, body = InvitationView), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn resend(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let id = super::Params::get(&path.user_id, "user_id")?;
    let env = state.env();
    let view = state
        .db
        .write(move |c| {
            let account = store::accounts::find(c, &ctx.account_id)?.ok_or(AppError::not_found("account"))?;
            invitations::resend(c, &env, &account, &id, &ctx.actor)?;
            let all = admin_users::invitations(c, &env, &ctx.account_id, 1000, 0)?;
            all.into_iter().find(|i| i.user_id == id).ok_or(AppError::not_found("invitation"))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

list_body! {
    /// `{"invitations": […]}`
    InvitationList { invitations: InvitationView }
}

/// Pending invitations, with whether each has expired.
#[utoipa::path(get, path = "/api/v1/invitations", tag = "users", params(Page), responses((status = 200, body = InvitationList)))]
pub async fn list_invitations(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    page: web::Query<Page>,
) -> AppResult<HttpResponse> {
    let page = page.into_inner();
    let env = state.env();
    let list =
        state.db.read(move |c| admin_users::invitations(c, &env, &ctx.account_id, page.limit(), page.offset())).await?;
    Ok(HttpResponse::Ok().json(InvitationList { invitations: list }))
}

fn tier(s: &str) -> AppResult<UserTier> {
    s.parse().map_err(|e: UnknownName| AppError::bad_request("invalid_type", e.to_string()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeType {
    pub from: String,
    pub to: String,
}

/// Change every user of one type to another, as far as seats allow (the rest are listed).
#[utoipa::path(post, path = "/api/v1/users/bulk/change_type", tag = "users", request_body = ChangeType, responses((status = 200, body = BulkReport)))]
pub async fn bulk_change_type(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    body: web::Json<ChangeType>,
) -> AppResult<HttpResponse> {
    let (from, to) = (tier(&body.from)?, tier(&body.to)?);
    let env = state.env();
    let r =
        state.db.write(move |c| admin_users::bulk_change_type(c, &env, &ctx.actor, &ctx.account_id, from, to)).await?;
    Ok(HttpResponse::Ok().json(r))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveType {
    #[serde(rename = "type")]
    pub user_type: String,
}

/// Remove every user of one type (never the owner).
#[utoipa::path(post, path = "/api/v1/users/bulk/remove", tag = "users", request_body = RemoveType, responses((status = 200, body = BulkReport)))]
pub async fn bulk_remove(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    body: web::Json<RemoveType>,
) -> AppResult<HttpResponse> {
    let t = tier(&body.user_type)?;
    let env = state.env();
    let r = state.db.write(move |c| admin_users::bulk_remove_type(c, &env, &ctx.actor, &ctx.account_id, t)).await?;
    state.authorization_changed();
    Ok(HttpResponse::Ok().json(r))
}

/// Import users from CSV (`email,first name,last name,department,user group`; header
/// optional). Bad rows are reported with line numbers; good rows are applied. An empty body
/// (400 `empty_body`) or a header that cannot be used (400 `invalid_csv_header`: no `email`
/// column, a column twice) is refused whole.
#[utoipa::path(post, path = "/api/v1/users/import", tag = "users", request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportReport), (status = 413, body = crate::http::error::ErrorBody), (status = 503, body = ImportReport, description = "the import stopped part-way (the database went away): the report counts what was applied and `stopped` says from which line to run it again")))]
pub async fn import_csv(state: web::Data<AppState>, ctx: AccountCtx, body: web::Payload) -> AppResult<HttpResponse> {
    let bytes = body
        .to_bytes_limited(CSV_LIMIT)
        .await
        .map_err(|_| AppError::PayloadTooLarge { limit: CSV_LIMIT })?
        .map_err(|e| AppError::bad_request("invalid_body", format!("cannot read the body: {e}")))?;
    super::require_csv(&bytes)?;
    if let Some(e) = crate::domain::users::user_csv_header_error(&bytes) {
        return Err(AppError::bad_request("invalid_csv_header", e.to_string()));
    }
    let st = state.clone();
    let report = actix_web::rt::task::spawn_blocking(move || {
        admin_users::import_csv(&st.db, || st.env(), &ctx.actor, &ctx.account_id, &bytes[..], |_| {})
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))??;
    Ok(super::import_response(report.stopped.is_some(), &report))
}

/// Export users as CSV.
#[utoipa::path(get, path = "/api/v1/users/export", tag = "users", responses((status = 200, content_type = "text/csv", body = String)))]
pub async fn export_csv(state: web::Data<AppState>, ctx: AccountCtx) -> AppResult<HttpResponse> {
    let bytes = state.db.read(move |c| admin_users::export_csv(c, &ctx.account_id)).await?;
    Ok(HttpResponse::Ok().content_type("text/csv; charset=utf-8").body(bytes))
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// The session's stored hash (the cookie's value is never stored).
    pub id: String,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::NaiveDateTime,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: chrono::NaiveDateTime,
}

list_body! {
    /// `{"sessions": […]}`
    SessionList { sessions: SessionView }
}

/// A user's live SSO sessions.
#[utoipa::path(get, path = "/api/v1/users/{user_id}/sessions", tag = "users", responses((status = 200, body = SessionList), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn sessions(state: web::Data<AppState>, ctx: AccountCtx, path: web::Path<Params>) -> AppResult<HttpResponse> {
    let id = Params::get(&path.user_id, "user_id")?;
    let now = state.env().now;
    let rows = state
        .db
        .read(move |c| {
            store::users::find(c, &ctx.account_id, &id)?.ok_or(AppError::not_found("user"))?;
            Ok::<_, AppError>(store::saml::sessions_of(c, &ctx.account_id, &id, now)?)
        })
        .await?;
    let views: Vec<SessionView> = rows
        .into_iter()
        .map(|s| SessionView { id: s.id_hash, created_at: s.created_at, expires_at: s.expires_at })
        .collect();
    Ok(HttpResponse::Ok().json(SessionList { sessions: views }))
}

/// End every SSO session of a user (they sign in again through the IdP).
#[utoipa::path(delete, path = "/api/v1/users/{user_id}/sessions", tag = "users", responses((status = 200, body = EndedSessions), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn end_sessions(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<Params>,
) -> AppResult<HttpResponse> {
    let id = Params::get(&path.user_id, "user_id")?;
    let env = state.env();
    let ended = state
        .db
        .write(move |c| {
            store::users::find(c, &ctx.account_id, &id)?.ok_or(AppError::not_found("user"))?;
            let n = store::saml::delete_sessions_of(c, &ctx.account_id, &id)?;
            crate::provisioning::audit::record(
                c,
                &env,
                &ctx.account_id,
                &ctx.actor,
                crate::provisioning::Source::Api,
                "user.sessions_ended",
                Some(&id),
                serde_json::json!({ "ended": n }),
            )?;
            Ok::<_, AppError>(n)
        })
        .await?;
    Ok(HttpResponse::Ok().json(EndedSessions { ended }))
}

/// How many sessions were ended.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EndedSessions {
    pub ended: usize,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveUsers {
    /// Users by e-mail (at most 10,000), each moved from the account it is in now.
    pub emails: Vec<String>,
    /// An account of the caller's tree.
    pub to_account: String,
    /// Report what would happen, change nothing (default false).
    #[serde(default)]
    pub dry_run: bool,
}

list_body! {
    /// `{"results": […]}`: one per e-mail, in order
    MoveResults { results: crate::service::moves::MoveResult }
}

/// Move users between the accounts of the caller's tree, row by row (each move one
/// transaction; owners, Admins and pending users are refused; a target without the seats
/// refuses the row).
#[utoipa::path(post, path = "/api/v1/users/move", tag = "users", request_body = MoveUsers,
    responses((status = 200, body = MoveResults),
              (status = 400, body = crate::http::error::ErrorBody), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn move_users(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    body: web::Json<MoveUsers>,
) -> AppResult<HttpResponse> {
    use crate::service::moves;
    let b = body.into_inner();
    if b.emails.len() > 10_000 {
        return Err(AppError::bad_request("too_many", "at most 10,000 e-mails per request; use the CLI for more"));
    }
    let account = ctx.account_id.clone();
    let tree = state.db.read(move |c| moves::tree(c, &account)).await?;
    moves::check_target(&tree, &b.to_account)?;
    let env = state.env();
    let results = if b.dry_run {
        let (actor, target, emails) = (ctx.actor.clone(), b.to_account.clone(), b.emails.clone());
        state
            .db
            .write(move |c| {
                store::in_rolled_back_savepoint(c, |c| moves::dry_run_all(c, &env, &actor, &tree, &target, &emails))
            })
            .await?
    } else {
        let mut out = Vec::with_capacity(b.emails.len());
        for email in b.emails {
            let (env, actor, tree, target) = (state.env(), ctx.actor.clone(), tree.clone(), b.to_account.clone());
            let (r, revoked) =
                state.db.write(move |c| moves::move_one(c, &env, &actor, &tree, &target, &email, false)).await?;
            for h in &revoked {
                state.tokens.forget_hash(h);
            }
            out.push(r);
        }
        let _ = env;
        state.authorization_changed();
        out
    };
    Ok(HttpResponse::Ok().json(MoveResults { results }))
}

//! Partner relationships (both sides), their delegates, and the delegate's own routes
//! (`/delegations`: invitations, one-time codes, delegated sessions).

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::domain::delegation::Side;
use crate::domain::field::Field;
use crate::error::{AppError, AppResult};
use crate::http::auth::AccountCtx;
use crate::http::AppState;
use crate::service::delegation::{
    self, CodeSent, DelegateView, DelegatedSession, DelegationView, InviteInput, RelationshipView, RequestInput,
    UpdateInput,
};

route_table! {
    POST "/relationships" => create, edit ExternalAccounts;
    GET "/relationships" => list, view ExternalAccounts;
    POST "/relationships/invitations" => invite, edit ExternalAccounts;
    GET "/relationships/{relationship_id}" => get, view ExternalAccounts;
    PATCH "/relationships/{relationship_id}" => update, edit ExternalAccounts;
    DELETE "/relationships/{relationship_id}" => delete, edit ExternalAccounts;
    POST "/relationships/{relationship_id}/approve" => approve, edit ExternalAccounts;
    POST "/relationships/{relationship_id}/decline" => decline, edit ExternalAccounts;
    POST "/relationships/{relationship_id}/terminate" => terminate, edit ExternalAccounts;
    POST "/relationships/{relationship_id}/accept" => accept, own_self;
    POST "/relationships/{relationship_id}/delegates" => add_delegate, edit ExternalAccounts;
    GET "/relationships/{relationship_id}/delegates" => list_delegates, view ExternalAccounts;
    DELETE "/relationships/{relationship_id}/delegates/{user_id}" => remove_delegate, edit ExternalAccounts;
    GET "/delegations" => delegations, own_self;
    POST "/delegations/accept_all" => accept_all, own_self;
    POST "/delegations/{relationship_id}/accept" => accept_delegation, own_self;
    POST "/delegations/{relationship_id}/code" => send_code, own_self;
    POST "/delegations/{relationship_id}/session" => open_session, own_self;
}

fn instant(t: Option<chrono::DateTime<chrono::Utc>>) -> Option<chrono::NaiveDateTime> {
    t.map(|t| t.naive_utc())
}

fn rid(path: &super::Params) -> AppResult<String> {
    super::Params::get(&path.relationship_id, "relationship_id")
}

/// A partner's request for access to a customer account.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRelationship {
    /// The customer account, by id or vanity name.
    pub customer: String,
    pub name: String,
    /// RFC 3339 instant, at most 2 years ahead; absent or null: no end.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Extend by 180 days each time the end is reached, until terminated.
    #[serde(default)]
    pub auto_extend: bool,
    #[serde(default)]
    pub allow_delegates: bool,
    /// The customer sees the partner and its contact, not the individual delegates.
    #[serde(default)]
    pub undisclosed: bool,
    /// Catalogue permissions (`users:view`, `phone_users:edit`, …).
    pub permissions: Vec<String>,
}

/// Request access to a customer account (partner side).
#[utoipa::path(post, path = "/api/v1/relationships", tag = "relationships", request_body = CreateRelationship,
    responses((status = 201, body = RelationshipView), (status = 400, body = crate::http::error::ErrorBody), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    body: web::Json<CreateRelationship>,
) -> AppResult<HttpResponse> {
    let b = body.into_inner();
    let env = state.env();
    let input = RequestInput {
        customer: b.customer,
        name: b.name,
        expires_at: instant(b.expires_at),
        auto_extend: b.auto_extend,
        allow_delegates: b.allow_delegates,
        undisclosed: b.undisclosed,
        permissions: b.permissions,
    };
    let v = state.db.write(move |c| delegation::request(c, &env, &ctx.actor, &ctx.account_id, input)).await?;
    Ok(HttpResponse::Created().json(v))
}

/// A customer's invitation of a partner user.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRelationship {
    /// A user of the partner account; they accept and become its first delegate.
    pub partner_email: String,
    pub permissions: Vec<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub name: Option<String>,
    #[serde(default)]
    pub auto_extend: bool,
    /// May the partner add more delegates (default false: only the invited user).
    #[serde(default)]
    pub allow_delegates: bool,
    #[serde(default)]
    pub undisclosed: bool,
}

/// Invite a partner user to administer this account (customer side).
#[utoipa::path(post, path = "/api/v1/relationships/invitations", tag = "relationships", request_body = InviteRelationship,
    responses((status = 201, body = RelationshipView), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn invite(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    body: web::Json<InviteRelationship>,
) -> AppResult<HttpResponse> {
    let b = body.into_inner();
    let env = state.env();
    let input = InviteInput {
        partner_email: b.partner_email,
        name: b.name,
        expires_at: instant(b.expires_at),
        auto_extend: b.auto_extend,
        allow_delegates: b.allow_delegates,
        undisclosed: b.undisclosed,
        permissions: b.permissions,
    };
    let v = state.db.write(move |c| delegation::invite(c, &env, &ctx.actor, &ctx.account_id, input)).await?;
    Ok(HttpResponse::Created().json(v))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SideQuery {
    /// `partner` or `customer`; absent: both.
    pub side: Option<String>,
}

list_body! {
    /// `{"relationships": […]}`
    RelationshipList { relationships: RelationshipView }
}

/// The account's relationships (every one of the account's, whoever created it).
#[utoipa::path(get, path = "/api/v1/relationships", tag = "relationships", params(SideQuery),
    responses((status = 200, body = RelationshipList)))]
pub async fn list(state: web::Data<AppState>, ctx: AccountCtx, q: web::Query<SideQuery>) -> AppResult<HttpResponse> {
    let side = match q.side.as_deref() {
        None | Some("") => None,
        Some(s) => {
            Some(Side::parse(s).ok_or_else(|| AppError::bad_request("invalid_side", "side is partner or customer"))?)
        }
    };
    let env = state.env();
    let v = state.db.read(move |c| delegation::list(c, &env, &ctx.account_id, side)).await?;
    Ok(HttpResponse::Ok().json(RelationshipList { relationships: v }))
}

/// One relationship.
#[utoipa::path(get, path = "/api/v1/relationships/{relationship_id}", tag = "relationships",
    responses((status = 200, body = RelationshipView), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let id = rid(&path)?;
    let env = state.env();
    let v = state.db.read(move |c| delegation::get(c, &env, &ctx.account_id, &id)).await?;
    Ok(HttpResponse::Ok().json(v))
}

/// A partner's change: `name`, `expires_at` (null: no end), `auto_extend`,
/// `allow_delegates`, `permissions` (wider → `pending_permissions` until approved).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRelationship {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Option<chrono::DateTime<chrono::Utc>>>,
    pub auto_extend: Option<bool>,
    pub allow_delegates: Option<bool>,
    pub permissions: Option<Vec<String>>,
}

/// Tells a `null` apart from an absent field.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Change a relationship (partner side).
#[utoipa::path(patch, path = "/api/v1/relationships/{relationship_id}", tag = "relationships", request_body = UpdateRelationship,
    responses((status = 200, body = RelationshipView), (status = 403, body = crate::http::error::ErrorBody), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
    body: web::Json<UpdateRelationship>,
) -> AppResult<HttpResponse> {
    let id = rid(&path)?;
    let b = body.into_inner();
    let input = UpdateInput {
        name: b.name,
        expires_at: match b.expires_at {
            None => Field::Keep,
            Some(t) => Field::from_option(instant(t)),
        },
        auto_extend: b.auto_extend,
        allow_delegates: b.allow_delegates,
        permissions: b.permissions,
    };
    let env = state.env();
    let v = state.db.write(move |c| delegation::update(c, &env, &ctx.actor, &ctx.account_id, &id, input)).await?;
    state.authorization_changed();
    Ok(HttpResponse::Ok().json(v))
}

/// Approve a request or a pending wider permission set (customer side).
#[utoipa::path(post, path = "/api/v1/relationships/{relationship_id}/approve", tag = "relationships",
    responses((status = 200, body = RelationshipView), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn approve(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let id = rid(&path)?;
    let env = state.env();
    let v = state.db.write(move |c| delegation::approve(c, &env, &ctx.actor, &ctx.account_id, &id)).await?;
    state.authorization_changed();
    Ok(HttpResponse::Ok().json(v))
}

/// Decline a request or a pending wider permission set (customer side).
#[utoipa::path(post, path = "/api/v1/relationships/{relationship_id}/decline", tag = "relationships",
    responses((status = 200, body = RelationshipView), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn decline(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let id = rid(&path)?;
    let env = state.env();
    let v = state.db.write(move |c| delegation::decline(c, &env, &ctx.actor, &ctx.account_id, &id)).await?;
    Ok(HttpResponse::Ok().json(v))
}

async fn end(state: &AppState, ctx: AccountCtx, id: String) -> AppResult<RelationshipView> {
    let env = state.env();
    let (v, hashes) = state.db.write(move |c| delegation::terminate(c, &env, &ctx.actor, &ctx.account_id, &id)).await?;
    for h in &hashes {
        state.tokens.forget_hash(h);
    }
    state.authorization_changed();
    Ok(v)
}

/// End a relationship (either side); its delegated sessions end with it.
#[utoipa::path(post, path = "/api/v1/relationships/{relationship_id}/terminate", tag = "relationships",
    responses((status = 200, body = RelationshipView), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn terminate(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let v = end(&state, ctx, rid(&path)?).await?;
    Ok(HttpResponse::Ok().json(v))
}

/// The same as `…/terminate` (the customer's "delete").
#[utoipa::path(delete, path = "/api/v1/relationships/{relationship_id}", tag = "relationships",
    responses((status = 200, body = RelationshipView), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let v = end(&state, ctx, rid(&path)?).await?;
    Ok(HttpResponse::Ok().json(v))
}

/// The invited partner user accepts a customer's invitation (and becomes its first delegate).
#[utoipa::path(post, path = "/api/v1/relationships/{relationship_id}/accept", tag = "relationships",
    responses((status = 200, body = RelationshipView), (status = 404, body = crate::http::error::ErrorBody), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn accept(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let id = rid(&path)?;
    let env = state.env();
    let v = state.db.write(move |c| delegation::accept_invitation(c, &env, &ctx.actor, &ctx.account_id, &id)).await?;
    state.authorization_changed();
    Ok(HttpResponse::Ok().json(v))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDelegate {
    /// A user of the partner account.
    pub email: String,
}

/// Add a delegate (partner side; they get an invitation to accept).
#[utoipa::path(post, path = "/api/v1/relationships/{relationship_id}/delegates", tag = "relationships", request_body = AddDelegate,
    responses((status = 201, body = DelegateView), (status = 200, body = DelegateView, description = "already a delegate"), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn add_delegate(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
    body: web::Json<AddDelegate>,
) -> AppResult<HttpResponse> {
    let id = rid(&path)?;
    let email = body.into_inner().email;
    let env = state.env();
    let (v, created) =
        state.db.write(move |c| delegation::add_delegate(c, &env, &ctx.actor, &ctx.account_id, &id, &email)).await?;
    Ok(if created { HttpResponse::Created().json(v) } else { HttpResponse::Ok().json(v) })
}

list_body! {
    /// `{"delegates": […]}`
    DelegateList { delegates: DelegateView }
}

/// The delegates (the customer of an undisclosed relationship sees pseudonyms).
#[utoipa::path(get, path = "/api/v1/relationships/{relationship_id}/delegates", tag = "relationships",
    responses((status = 200, body = DelegateList)))]
pub async fn list_delegates(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let id = rid(&path)?;
    let env = state.env();
    let v = state.db.read(move |c| delegation::list_delegates(c, &env, &ctx.account_id, &id)).await?;
    Ok(HttpResponse::Ok().json(DelegateList { delegates: v }))
}

/// Remove a delegate (by user id; the customer may use the pseudonym). Access ends at the
/// delegate's next request.
#[utoipa::path(delete, path = "/api/v1/relationships/{relationship_id}/delegates/{user_id}", tag = "relationships",
    responses((status = 204, description = "removed"), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn remove_delegate(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let id = rid(&path)?;
    let who = super::Params::get(&path.user_id, "user_id")?;
    let env = state.env();
    let hashes =
        state.db.write(move |c| delegation::remove_delegate(c, &env, &ctx.actor, &ctx.account_id, &id, &who)).await?;
    for h in &hashes {
        state.tokens.forget_hash(h);
    }
    state.authorization_changed();
    Ok(HttpResponse::NoContent().finish())
}

list_body! {
    /// `{"delegations": […]}`
    DelegationList { delegations: DelegationView }
}

/// The caller's delegations and the customers' invitations addressed to them.
#[utoipa::path(get, path = "/api/v1/delegations", tag = "delegations",
    responses((status = 200, body = DelegationList)))]
pub async fn delegations(state: web::Data<AppState>, ctx: AccountCtx) -> AppResult<HttpResponse> {
    let env = state.env();
    let v = state.db.read(move |c| delegation::my_delegations(c, &env, &ctx.actor)).await?;
    Ok(HttpResponse::Ok().json(DelegationList { delegations: v }))
}

/// Accept one delegation (or a customer's invitation of the caller).
#[utoipa::path(post, path = "/api/v1/delegations/{relationship_id}/accept", tag = "delegations",
    responses((status = 200, body = DelegationView), (status = 404, body = crate::http::error::ErrorBody), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn accept_delegation(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let id = rid(&path)?;
    let env = state.env();
    let v = state.db.write(move |c| delegation::accept_delegation(c, &env, &ctx.actor, &ctx.account_id, &id)).await?;
    state.authorization_changed();
    Ok(HttpResponse::Ok().json(v))
}

list_body! {
    /// `{"accepted": […]}`: the delegations accepted
    AcceptedList { accepted: DelegationView }
}

/// Accept every open delegation at once.
#[utoipa::path(post, path = "/api/v1/delegations/accept_all", tag = "delegations",
    responses((status = 200, body = AcceptedList)))]
pub async fn accept_all(state: web::Data<AppState>, ctx: AccountCtx) -> AppResult<HttpResponse> {
    let env = state.env();
    let v = state.db.write(move |c| delegation::accept_all(c, &env, &ctx.actor, &ctx.account_id)).await?;
    state.authorization_changed();
    Ok(HttpResponse::Ok().json(AcceptedList { accepted: v }))
}

/// Mail the caller a one-time code for entering the customer account (at most one a
/// minute: 429 with `Retry-After`).
#[utoipa::path(post, path = "/api/v1/delegations/{relationship_id}/code", tag = "delegations",
    responses((status = 201, body = CodeSent), (status = 409, body = crate::http::error::ErrorBody), (status = 429, body = crate::http::error::ErrorBody)))]
pub async fn send_code(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let id = rid(&path)?;
    let env = state.env();
    let v = state.db.write(move |c| delegation::send_code(c, &env, &ctx.actor, &ctx.account_id, &id)).await?;
    Ok(HttpResponse::Created().json(v))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenSession {
    /// The one-time code from the mail.
    pub code: String,
}

/// Exchange the one-time code for a delegated token (wrong: 403 `code_invalid`; used or
/// expired: 403 `code_expired`; locked after 5 wrong tries: 429 `rate_limited`).
#[utoipa::path(post, path = "/api/v1/delegations/{relationship_id}/session", tag = "delegations", request_body = OpenSession,
    responses((status = 201, body = DelegatedSession), (status = 403, body = crate::http::error::ErrorBody), (status = 429, body = crate::http::error::ErrorBody)))]
pub async fn open_session(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
    body: web::Json<OpenSession>,
) -> AppResult<HttpResponse> {
    let id = rid(&path)?;
    let code = body.into_inner().code;
    let env = state.env();
    let v =
        state.db.write(move |c| delegation::open_session(c, &env, &ctx.actor, &ctx.account_id, &id, &code)).await??;
    Ok(HttpResponse::Created().json(v))
}

//! Platform routes for the operator: top-level accounts. Also the public invitation
//! acceptance (the invitation token is the credential).

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::Page;
use crate::error::{AppError, AppResult};
use crate::http::auth::OperatorCtx;
use crate::http::AppState;
use crate::provisioning::Source;
use crate::service::accounts::{self, AccountView, NewAccount};

route_table! {
    POST "/api/v1/accounts" => create_account, operator;
    GET "/api/v1/accounts" => list_accounts, operator;
    GET "/api/v1/accounts/{account_id}" => get_account, operator;
    POST "/api/v1/invitations/accept" => accept_invitation, public;
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    pub name: String,
    pub owner_email: String,
    pub owner_first_name: Option<String>,
    pub owner_last_name: Option<String>,
    /// `standard` (default) or `master`.
    pub kind: Option<String>,
    #[serde(default)]
    pub bulk_licensing: bool,
    pub vanity_name: Option<String>,
}

/// Create a top-level account (operator only).
#[utoipa::path(post, path = "/api/v1/accounts", tag = "platform", request_body = CreateAccount,
    responses((status = 201, body = AccountView), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn create_account(
    state: web::Data<AppState>,
    op: OperatorCtx,
    body: web::Json<CreateAccount>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let new = NewAccount {
        name: body.name,
        owner_email: body.owner_email,
        owner_first_name: body.owner_first_name,
        owner_last_name: body.owner_last_name,
        is_master: crate::service::accounts::parse_kind(body.kind.as_deref())?,
        bulk_licensing: body.bulk_licensing,
        parent_id: None,
        billing: None,
        vanity_name: body.vanity_name,
    };
    let env = state.env();
    let view = state
        .db
        .write(move |c| {
            let (row, _) = accounts::create(c, &env, &op.actor, Source::Api, new)?;
            accounts::view(c, &row)
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

list_body! {
    /// `{"accounts": […]}`
    AccountList { accounts: AccountView }
}

/// List top-level accounts (operator only).
#[utoipa::path(get, path = "/api/v1/accounts", tag = "platform", params(Page), responses((status = 200, body = AccountList)))]
pub async fn list_accounts(
    state: web::Data<AppState>,
    _op: OperatorCtx,
    page: web::Query<Page>,
) -> AppResult<HttpResponse> {
    let page = page.into_inner();
    let views = state
        .db
        .read(move |c| {
            let rows = crate::store::accounts::list_top_level(c, page.limit(), page.offset())?;
            rows.iter().map(|r| accounts::view(c, r)).collect::<AppResult<Vec<_>>>()
        })
        .await?;
    Ok(HttpResponse::Ok().json(AccountList { accounts: views }))
}

/// Any account by id (operator only).
#[utoipa::path(get, path = "/api/v1/accounts/{account_id}", tag = "platform", responses((status = 200, body = AccountView), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn get_account(
    state: web::Data<AppState>,
    _op: OperatorCtx,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let view = state
        .db
        .read(move |c| {
            let row = crate::store::accounts::find(c, &id)?.ok_or(AppError::not_found("account"))?;
            accounts::view(c, &row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AcceptInvitation {
    pub token: String,
}

/// Accept an invitation (no bearer token: the invitation token is the credential).
#[utoipa::path(post, path = "/api/v1/invitations/accept", tag = "users", request_body = AcceptInvitation,
    responses((status = 200, body = crate::service::users::UserView), (status = 404, body = crate::http::error::ErrorBody), (status = 410, body = crate::http::error::ErrorBody)))]
pub async fn accept_invitation(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    body: web::Json<AcceptInvitation>,
) -> AppResult<HttpResponse> {
    // Guessing invitation tokens is hopeless (256 bits), but each try costs a lookup.
    state.limiter.check(&req, "invitation_accept", "")?;
    let token = body.into_inner().token;
    if token.len() > 200 {
        return Err(AppError::not_found("invitation"));
    }
    let env = state.env();
    let view = state
        .db
        .write(move |c| {
            let user = crate::service::users::accept_invitation(c, &env, &token)?;
            Ok::<_, AppError>(crate::service::users::view(&user, None))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

//! API tokens of the account.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::error::{AppError, AppResult};
use crate::http::auth::AccountCtx;
use crate::http::AppState;
use crate::provisioning::Source;
use crate::service::tokens::{self, IssuedToken, TokenView};
use crate::store;

route_table! {
    GET "/tokens" => list, view Tokens;
    POST "/tokens" => create, self_or edit Tokens;
    DELETE "/tokens/{token_id}" => revoke, edit Tokens;
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// `admin`, `scim` or `user` (a personal token acting with exactly the caller's own
    /// rights; anyone may make one for themselves, members included).
    pub scope: String,
    /// Admin tokens act as this user (an owner, admin or user with a custom role, holding no
    /// more than the caller); default: the caller.
    pub user_email: Option<String>,
    pub label: Option<String>,
    /// RFC 3339 instant after which the token is refused (default: never).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Issue a token (shown once).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateToken, responses((status = 201, body = IssuedToken)))]
pub async fn create(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    body: web::Json<CreateToken>,
) -> AppResult<HttpResponse> {
    let b = body.into_inner();
    if b.scope != "user" {
        ctx.require(crate::domain::authz::Permission::edit(crate::domain::authz::Area::Tokens))?;
    }
    let env = state.env();
    let t = state
        .db
        .write(move |c| {
            tokens::create(
                c,
                &env,
                &ctx.actor,
                Source::Api,
                &ctx.account_id,
                &b.scope,
                b.user_email.as_deref(),
                b.label,
                b.expires_at.map(|t| t.naive_utc()),
            )
        })
        .await?;
    Ok(HttpResponse::Created().json(t))
}

list_body! {
    /// `{"tokens": […]}`
    TokenList { tokens: TokenView }
}

/// The account's tokens (never their values).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", responses((status = 200, body = TokenList)))]
pub async fn list(state: web::Data<AppState>, ctx: AccountCtx) -> AppResult<HttpResponse> {
    let rows = state.db.read(move |c| store::tokens::list(c, &ctx.account_id).map_err(AppError::from)).await?;
    let views: Vec<TokenView> = rows.into_iter().map(TokenView::from).collect();
    Ok(HttpResponse::Ok().json(TokenList { tokens: views }))
}

/// Revoke a token.
#[utoipa::path(delete, path = "/api/v1/tokens/{token_id}", tag = "tokens", responses((status = 204, description = "revoked")))]
pub async fn revoke(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let id = super::Params::get(&path.token_id, "token_id")?;
    let env = state.env();
    let hash = state.db.write(move |c| tokens::revoke(c, &env, &ctx.actor, &ctx.account_id, &id)).await?;
    state.tokens.forget_hash(&hash);
    state.authorization_changed();
    Ok(HttpResponse::NoContent().finish())
}

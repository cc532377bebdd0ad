//! The caller's own credentials (`self`): who they are, what they hold, their tokens.

use actix_web::{web, HttpResponse};

use crate::error::{AppError, AppResult};
use crate::http::auth::AccountCtx;
use crate::http::AppState;
use crate::service::tokens::{self, TokenView};
use crate::store;

route_table! {
    GET "/me" => me, own_self;
    GET "/me/tokens" => my_tokens, own_self;
    DELETE "/me/tokens/{token_id}" => revoke_my_token, own_self;
}

fn my_id(ctx: &AccountCtx) -> AppResult<String> {
    ctx.actor.user_id.clone().ok_or_else(|| AppError::forbidden("this token names no user"))
}

/// Who the token acts as, its standing and the permissions it holds.
#[utoipa::path(get, path = "/api/v1/me", tag = "me", responses((status = 200, body = MeView)))]
pub async fn me(ctx: AccountCtx) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(MeView {
        user_id: my_id(&ctx)?,
        account_id: ctx.account_id.clone(),
        standing: ctx.actor.standing,
        permissions: ctx.permissions.names(),
    }))
}

/// The caller: the user a token acts as, in which account, with what standing and rights.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MeView {
    pub user_id: String,
    pub account_id: String,
    /// `owner`, `admin`, `member` or `delegate`, …
    #[schema(value_type = String)]
    pub standing: crate::domain::authz::Standing,
    pub permissions: Vec<String>,
}

list_body! {
    /// `{"tokens": […]}`
    MyTokenList { tokens: TokenView }
}

/// The tokens acting as the caller (never their values).
#[utoipa::path(get, path = "/api/v1/me/tokens", tag = "me", responses((status = 200, body = MyTokenList)))]
pub async fn my_tokens(state: web::Data<AppState>, ctx: AccountCtx) -> AppResult<HttpResponse> {
    let me = my_id(&ctx)?;
    let rows =
        state.db.read(move |c| store::tokens::list_of_user(c, &ctx.account_id, &me).map_err(AppError::from)).await?;
    let views: Vec<TokenView> = rows.into_iter().map(TokenView::from).collect();
    Ok(HttpResponse::Ok().json(MyTokenList { tokens: views }))
}

/// Revoke one of the caller's own tokens (a token of someone else is not found).
#[utoipa::path(delete, path = "/api/v1/me/tokens/{token_id}", tag = "me", responses((status = 204, description = "revoked"), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn revoke_my_token(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let id = super::Params::get(&path.token_id, "token_id")?;
    let me = my_id(&ctx)?;
    let env = state.env();
    let hash = state
        .db
        .write(move |c| {
            let mine = store::tokens::list_of_user(c, &ctx.account_id, &me)?.iter().any(|t| t.id == id);
            if !mine {
                return Err(AppError::not_found("token"));
            }
            tokens::revoke(c, &env, &ctx.actor, &ctx.account_id, &id)
        })
        .await?;
    state.tokens.forget_hash(&hash);
    state.authorization_changed();
    Ok(HttpResponse::NoContent().finish())
}

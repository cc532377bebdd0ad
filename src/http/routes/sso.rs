//! SAML SSO configuration of the account (the public SAML endpoints are in `routes::saml`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::Params;
use crate::error::{AppError, AppResult};
use crate::http::auth::AccountCtx;
use crate::http::AppState;
use crate::provisioning::Source;
use crate::service::sso::{self, SsoInput};

route_table! {
    GET "/sso" => get, view Sso;
    PUT "/sso" => put, edit Sso;
    DELETE "/sso" => delete, edit Sso;
    POST "/sso/certificates" => add_certificate, edit Sso;
    DELETE "/sso/certificates/{certificate_id}" => remove_certificate, edit Sso;
}

fn is_xml(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("xml"))
}

fn utf8(body: &[u8]) -> AppResult<String> {
    std::str::from_utf8(body)
        .map(str::to_owned)
        .map_err(|_| AppError::bad_request("invalid_body", "the body is not UTF-8"))
}

/// The account's SSO configuration, with the SP values to give the IdP (entity ID, ACS
/// URL, metadata URL).
#[utoipa::path(get, path = "/api/v1/sso", tag = "sso",
    responses((status = 200, body = crate::service::sso::SsoView), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn get(state: web::Data<AppState>, ctx: AccountCtx) -> AppResult<HttpResponse> {
    let public_url = state.config.public_url.clone();
    let view = state.db.read(move |c| sso::get(c, &public_url, &ctx.account_id)).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Create or change the SSO configuration. JSON (`SsoInput`), or the IdP's metadata XML
/// itself with `Content-Type: application/samlmetadata+xml` (or any `…xml`). A
/// configuration needs at least one signing certificate.
#[utoipa::path(put, path = "/api/v1/sso", tag = "sso", request_body = crate::service::sso::SsoInput,
    responses((status = 200, body = crate::service::sso::SsoView), (status = 400, body = crate::http::error::ErrorBody)))]
pub async fn put(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let text = utf8(&body)?;
    let input = if is_xml(&req) {
        SsoInput { idp_metadata: Some(text), ..SsoInput::default() }
    } else {
        serde_json::from_str::<SsoInput>(&text)
            .map_err(|e| AppError::bad_request("invalid_json", format!("invalid JSON body: {e}")))?
    };
    let env = state.env();
    let view = state.db.write(move |c| sso::set(c, &env, &ctx.actor, Source::Api, &ctx.account_id, &input)).await?;
    state.sso.clear();
    Ok(HttpResponse::Ok().json(view))
}

/// Remove the SSO configuration (SAML logins to the account stop).
#[utoipa::path(delete, path = "/api/v1/sso", tag = "sso", responses((status = 204, description = "removed")))]
pub async fn delete(state: web::Data<AppState>, ctx: AccountCtx) -> AppResult<HttpResponse> {
    let env = state.env();
    state.db.write(move |c| sso::delete(c, &env, &ctx.actor, Source::Api, &ctx.account_id)).await?;
    state.sso.clear();
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateInput {
    /// One PEM certificate.
    pub pem: String,
}

/// Trust one more IdP signing certificate (rollover: both are accepted until the old one
/// is removed). JSON `{"pem": …}` or the PEM itself as the body.
#[utoipa::path(post, path = "/api/v1/sso/certificates", tag = "sso", request_body = CertificateInput,
    responses((status = 201, body = crate::service::sso::CertificateView), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn add_certificate(state: web::Data<AppState>, ctx: AccountCtx, body: web::Bytes) -> AppResult<HttpResponse> {
    let text = utf8(&body)?;
    let pem = if text.trim_start().starts_with('{') {
        serde_json::from_str::<CertificateInput>(&text)
            .map_err(|e| AppError::bad_request("invalid_json", format!("invalid JSON body: {e}")))?
            .pem
    } else {
        text
    };
    let env = state.env();
    let view =
        state.db.write(move |c| sso::add_certificate(c, &env, &ctx.actor, Source::Api, &ctx.account_id, &pem)).await?;
    state.sso.clear();
    Ok(HttpResponse::Created().json(view))
}

/// Stop trusting a certificate (by id or SHA-256 fingerprint). The last one cannot be
/// removed (409).
#[utoipa::path(delete, path = "/api/v1/sso/certificates/{certificate_id}", tag = "sso",
    params(("certificate_id" = String, Path, description = "id or SHA-256 fingerprint")),
    responses((status = 204, description = "removed"), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn remove_certificate(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<Params>,
) -> AppResult<HttpResponse> {
    let id = Params::get(&path.certificate_id, "certificate_id")?;
    let env = state.env();
    state.db.write(move |c| sso::remove_certificate(c, &env, &ctx.actor, Source::Api, &ctx.account_id, &id)).await?;
    state.sso.clear();
    Ok(HttpResponse::NoContent().finish())
}

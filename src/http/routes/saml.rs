//! The public SAML 2.0 endpoints (no bearer token: the browser and the IdP call them).
//!
//! `{account}` is the account id or its vanity name. Every URL we compare against
//! (ACS URL, Destination, Recipient, SP entity ID) derives from the configured public URL
//! and that path segment, never from the request's Host header.
//!
//! - `GET  /saml/{account}/metadata` — our SP metadata.
//! - `GET  /saml/{account}/login?target=/path` — SP-initiated login (HTTP-Redirect binding).
//! - `POST /saml/{account}/acs` — the Assertion Consumer Service (HTTP-POST binding).
//! - `GET  /saml/session` — who is signed in, with their entitlements (JSON).
//! - `POST /saml/logout` — ends the session.
//!
//! Refusals answer with an HTML page, or our JSON error shape when the client asks for
//! JSON (`Accept: application/json`), and leave an audit entry with the reason.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::error::AppError;
use crate::http::error::{login_message, login_status, ErrorBody};
use crate::http::AppState;
use crate::saml::{validate_response, AcsInput, OutstandingRequest, SpMetadata};
use crate::service::saml_login::{self, LoginError, SESSION_COOKIE};
use crate::service::sso::{LoadedSso, SpUrls};
use crate::store::models::AccountRow;

/// Largest ACS form body: a 256 KiB response, base64 and then form-encoded.
pub const ACS_BODY_LIMIT: usize = 1024 * 1024;

route_table! {
    GET "/saml/session" => session, public;
    POST "/saml/logout" => logout, public;
    GET "/saml/{account}/metadata" => metadata, public;
    GET "/saml/{account}/login" => login, public;
    POST "/saml/{account}/acs" => acs, public;
}

fn wants_json(req: &HttpRequest) -> bool {
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    accept.contains("application/json") && !accept.contains("text/html")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// The error answer: JSON (the admin API's error shape) when asked for, else a small
/// HTML page. Server faults keep their details in the log.
fn error_response(req: &HttpRequest, status: StatusCode, code: &str, message: &str) -> HttpResponse {
    let mut resp = HttpResponse::build(status);
    resp.insert_header((header::CACHE_CONTROL, "no-store"));
    if wants_json(req) {
        return resp.json(ErrorBody::new(code, message));
    }
    resp.content_type("text/html; charset=utf-8").body(format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Sign-in failed</title></head><body>\
         <h1>Sign-in failed</h1><p>{}</p><p>Reason code: <code>{}</code>. Try signing in again from your \
         identity provider; if it keeps failing, give your administrator this code and the time.</p></body></html>",
        html_escape(message),
        html_escape(code)
    ))
}

fn login_error_response(req: &HttpRequest, e: &LoginError) -> HttpResponse {
    let mut resp = error_response(req, login_status(e), e.code(), &login_message(e));
    if let LoginError::App(AppError::RateLimited { retry_after_secs }) = e {
        if let Ok(v) = header::HeaderValue::from_str(&retry_after_secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

fn app_error_response(req: &HttpRequest, e: AppError) -> HttpResponse {
    login_error_response(req, &LoginError::App(e))
}

struct Sso {
    account: AccountRow,
    sso: LoadedSso,
    urls: SpUrls,
}

/// Resolves `{account}` and its SSO configuration (cached for a moment, see
/// [`sso::SsoCache`]).
async fn load(state: &web::Data<AppState>, key: String) -> Result<Sso, LoginError> {
    if key.is_empty() || key.len() > 200 {
        return Err(AppError::not_found("account").into());
    }
    let found = match state.sso.fresh(&key) {
        Some(found) => found,
        None => {
            let st = state.clone();
            let k = key.clone();
            state.db.read(move |c| st.sso.load(c, &k)).await?
        }
    };
    let found = found.ok_or(LoginError::NotConfigured)?;
    let urls = SpUrls::new(&state.config.public_url, &key, &found.account.id, found.sso.row.sp_entity_id.as_deref());
    Ok(Sso { account: found.account.clone(), sso: found.sso.clone(), urls })
}

/// Our SP metadata for the account (entity ID and ACS URL), for the IdP administrator.
#[utoipa::path(get, path = "/saml/{account}/metadata", tag = "saml", params(("account" = String, Path, description = "account id or vanity name")), responses((status = 200, content_type = "application/samlmetadata+xml", body = String), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn metadata(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let key = path.into_inner();
    let public_url = state.config.public_url.clone();
    let lookup_key = key.clone();
    let found = state
        .db
        .read(move |c| -> Result<_, AppError> {
            let account =
                crate::store::accounts::find_by_id_or_vanity(c, &lookup_key)?.ok_or(AppError::not_found("account"))?;
            let row = crate::store::saml::config(c, &account.id)?;
            Ok((account, row))
        })
        .await;
    match found {
        Ok((account, row)) => {
            // Without a configuration the metadata still tells the IdP admin what to enter.
            let urls =
                SpUrls::new(&public_url, &key, &account.id, row.as_ref().and_then(|r| r.sp_entity_id.as_deref()));
            let xml = SpMetadata::new(urls.entity_id, urls.acs_url)
                .with_name_id_format(crate::saml::xml::name_id_format::EMAIL)
                .to_xml();
            HttpResponse::Ok().content_type("application/samlmetadata+xml").body(xml)
        }
        Err(e) => app_error_response(&req, e),
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    /// Where to go after the login: a local path or a configured absolute prefix.
    pub target: Option<String>,
    #[serde(rename = "RelayState")]
    pub relay_state: Option<String>,
}

/// SP-initiated login: redirects the browser to the IdP with an AuthnRequest.
#[utoipa::path(get, path = "/saml/{account}/login", tag = "saml", params(("account" = String, Path, description = "account id or vanity name")), responses((status = 302, description = "to the IdP with an AuthnRequest (HTTP-Redirect binding)"), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn login(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    // Each login writes a request row: bounded per account and client.
    if let Err(e) = state.limiter.check(&req, "saml_login", path.as_str()) {
        return app_error_response(&req, e);
    }
    let query = match web::Query::<LoginQuery>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => {
            return error_response(
                &req,
                StatusCode::BAD_REQUEST,
                "invalid_query",
                &format!("invalid query string: {e}"),
            )
        }
    };
    let loaded = match load(&state, path.into_inner()).await {
        Ok(l) => l,
        Err(e) => return login_error_response(&req, &e),
    };
    let target = match query.target.or(query.relay_state) {
        None => None,
        Some(t) => {
            match crate::saml::redirect::safe_target(&t, &state.config.public_url, &loaded.sso.allowed_redirects) {
                Some(safe) => Some(safe),
                None => {
                    return error_response(
                        &req,
                        StatusCode::BAD_REQUEST,
                        "redirect_not_allowed",
                        "the target must be a local path or an address the SSO configuration allows",
                    )
                }
            }
        }
    };
    let env = state.env();
    let result = state
        .db
        .write(move |c| {
            saml_login::start_login(c, &env, &loaded.account.id, &loaded.sso, &loaded.urls, target.as_deref())
        })
        .await;
    match result {
        Ok(url) => HttpResponse::Found()
            .insert_header((header::LOCATION, url))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Err(e) => login_error_response(&req, &e),
    }
}

/// Reads the form body up to [`ACS_BODY_LIMIT`].
async fn read_form(payload: web::Payload) -> Result<Vec<(String, String)>, LoginError> {
    let body = payload
        .to_bytes_limited(ACS_BODY_LIMIT)
        .await
        .map_err(|_| AppError::PayloadTooLarge { limit: ACS_BODY_LIMIT })?
        .map_err(|e| AppError::bad_request("invalid_body", format!("cannot read the request body: {e}")))?;
    Ok(url::form_urlencoded::parse(&body).into_owned().collect())
}

/// A completed login, answered as JSON when the client asks for it (`Accept:
/// application/json`) instead of the redirect.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SignedIn {
    #[serde(flatten)]
    pub success: crate::service::saml_login::LoginSuccess,
    /// Where the browser would have been sent.
    pub redirect_to: String,
}

/// The Assertion Consumer Service: validates the posted response, provisions the user
/// through the pipeline, starts a session and redirects.
#[utoipa::path(post, path = "/saml/{account}/acs", tag = "saml", params(("account" = String, Path, description = "account id or vanity name")), request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "SAMLResponse and RelayState"), responses((status = 303, description = "signed in: to the target"), (status = 200, description = "signed in (JSON when asked)", body = SignedIn), (status = 400, body = crate::http::error::ErrorBody), (status = 403, body = crate::http::error::ErrorBody)))]
pub async fn acs(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let key = path.into_inner();
    // Every post is verified and, when refused, audited: bounded per account and client.
    if let Err(e) = state.limiter.check(&req, "saml_acs", &key) {
        return app_error_response(&req, e);
    }
    let form = match read_form(payload).await {
        Ok(f) => f,
        Err(e) => return login_error_response(&req, &e),
    };
    let value = |name: &str| -> Result<Option<String>, LoginError> {
        let mut found = form.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone());
        let first = found.next();
        if found.next().is_some() {
            return Err(AppError::bad_request("invalid_form", format!("{name} is given more than once")).into());
        }
        Ok(first)
    };
    let (saml_response, relay_state) = match (value("SAMLResponse"), value("RelayState")) {
        (Ok(Some(r)), Ok(rs)) => (r, rs),
        (Ok(None), _) => {
            return login_error_response(
                &req,
                &AppError::bad_request("invalid_form", "the form has no SAMLResponse field").into(),
            )
        }
        (Err(e), _) | (_, Err(e)) => return login_error_response(&req, &e),
    };
    let loaded = match load(&state, key).await {
        Ok(l) => l,
        Err(e) => return login_error_response(&req, &e),
    };
    let account_id = loaded.account.id.clone();

    match sign_in(&state, &loaded, saml_response, relay_state).await {
        Ok((success, target)) => {
            let mut cookie = Cookie::build(SESSION_COOKIE, success.session_token.clone())
                .path("/")
                .http_only(true)
                .secure(state.config.secure_cookies)
                .same_site(SameSite::Lax)
                .finish();
            let ttl = (success.session_expires_at - state.clock.now_naive()).num_seconds().max(0);
            cookie.set_max_age(actix_web::cookie::time::Duration::seconds(ttl));
            if wants_json(&req) {
                let body = SignedIn { success, redirect_to: target };
                HttpResponse::Ok().cookie(cookie).insert_header((header::CACHE_CONTROL, "no-store")).json(body)
            } else {
                HttpResponse::SeeOther()
                    .cookie(cookie)
                    .insert_header((header::LOCATION, target))
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .finish()
            }
        }
        Err((e, issuer)) => {
            if e.is_refusal() {
                tracing::warn!(account = %account_id, reason = e.code(), "SAML login refused");
                let env = state.env();
                let (code, message) = (e.code(), e.to_string());
                let written = state
                    .db
                    .write(move |c| saml_login::audit_refusal(c, &env, &account_id, code, &message, issuer.as_deref()))
                    .await;
                if let Err(w) = written {
                    tracing::error!(error = %w, "could not write the audit entry of a refused SAML login");
                }
            }
            login_error_response(&req, &e)
        }
    }
}

/// Validation on a blocking thread (libxmlsec1 is synchronous and CPU-bound), then the
/// one-transaction completion. On failure, also the Issuer the refusal is attributed to.
async fn sign_in(
    state: &AppState,
    loaded: &Sso,
    saml_response: String,
    relay_state: Option<String>,
) -> Result<(saml_login::LoginSuccess, String), (LoginError, Option<String>)> {
    let cfg = loaded.sso.validation_config(&loaded.urls);
    let now = state.clock.now();
    let verified = web::block(move || {
        let input = AcsInput {
            saml_response: &saml_response,
            relay_state: relay_state.as_deref(),
            // Any InResponseTo passes here; the transaction below consumes it from the
            // database (unknown, expired, foreign or used twice → refused, rolled back).
            outstanding_request: OutstandingRequest::Lookup(&|_| true),
        };
        validate_response(&input, &cfg, now)
    })
    .await
    .map_err(|e| (LoginError::App(AppError::Internal(format!("validation task failed: {e}"))), None))?
    .map_err(|r| (LoginError::Refused(r), None))?;

    let issuer = verified.issuer.clone();
    let posted_relay = verified.relay_state.clone();
    let login = std::sync::Arc::new(verified);
    let mut attempt = 0;
    let success = loop {
        attempt += 1;
        let (env, account, sso, login) = (state.env(), loaded.account.id.clone(), loaded.sso.clone(), login.clone());
        let result = state.db.write(move |c| saml_login::complete_login(c, &env, &account, &sso, &login)).await;
        match result {
            // Two first logins of one new user at once (PostgreSQL runs writers in
            // parallel): the loser's insert hits the e-mail constraint. Its transaction,
            // replay entry included, rolled back; once more, it finds the user and updates.
            Err(LoginError::App(AppError::Taken { code: "email_taken" | "user_name_taken", .. })) if attempt == 1 => {
                continue
            }
            other => break other.map_err(|e| (e, Some(issuer)))?,
        }
    };
    // SP-initiated: the target we stored. IdP-initiated: the posted RelayState, if safe.
    let target = success
        .stored_target
        .clone()
        .or_else(|| {
            posted_relay.and_then(|r| {
                crate::saml::redirect::safe_target(&r, &state.config.public_url, &loaded.sso.allowed_redirects)
            })
        })
        .unwrap_or_else(|| "/saml/session".to_owned());
    Ok((success, target))
}

fn session_cookie(req: &HttpRequest) -> Option<String> {
    req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()).filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Who is signed in: the user, their entitlements (type, add-ons, phone, groups) and when
/// the session ends. 401 without a live session.
#[utoipa::path(get, path = "/saml/session", tag = "saml", responses((status = 200, description = "the signed-in user and their entitlements", body = crate::service::saml_login::SessionView), (status = 401, body = crate::http::error::ErrorBody)))]
pub async fn session(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let unauthorized = || {
        HttpResponse::Unauthorized()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(ErrorBody::new("no_session", "not signed in"))
    };
    let Some(token) = session_cookie(&req) else { return unauthorized() };
    let now = state.clock.now_naive();
    match state.db.read(move |c| saml_login::session(c, &token, now)).await {
        Ok(Some(view)) => HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(view),
        Ok(None) => unauthorized(),
        Err(e) => app_error_response(&req, e),
    }
}

/// Ends the session and clears the cookie.
#[utoipa::path(post, path = "/saml/logout", tag = "saml", responses((status = 204, description = "signed out")))]
pub async fn logout(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if let Some(token) = session_cookie(&req) {
        if let Err(e) = state.db.write(move |c| saml_login::end_session(c, &token)).await {
            return app_error_response(&req, e);
        }
    }
    let mut gone = Cookie::build(SESSION_COOKIE, "").path("/").http_only(true).finish();
    gone.make_removal();
    HttpResponse::NoContent().cookie(gone).finish()
}

//! Server-rendered HTML pages: the ones the links in mails open. No script and no front-end
//! framework, only pages and form posts.
//!
//! - `GET /invitations/accept?token=…` — a user invitation (the invitation token is the
//!   credential): which account invites whom, and an Accept form; `POST /invitations/accept`
//!   accepts it.
//! - `GET /delegations/{relationship_id}/accept` — a partner user's delegate invitation (or a
//!   customer's invitation of them), for the person signed in through their organisation's
//!   SSO (the `provisor_session` cookie): the customer and the permissions, with forms to
//!   accept this one (`POST …/accept`) or all (`POST /delegations/accept_all`).
//! - `GET /delegations/{relationship_id}/verify` — "verify to continue": `POST …/verify/code`
//!   mails a one-time code, `POST …/verify` exchanges it for a delegated token, shown once.
//!
//! Every interpolated value goes through [`esc`]. Every POST is form-encoded and passes
//! [`checked_form`]: an `Origin` (or `Sec-Fetch-Site`) naming another site is refused, and
//! the double-submit token must match — the `provisor_csrf` cookie (HttpOnly,
//! SameSite=Strict) against the hidden `csrf` field, compared in constant time. A refusal is
//! a 403 page and changes nothing. Errors are pages with the status the JSON API gives the
//! same error (`http::error::status_of`), `Retry-After` included; never a 500 for bad input.
//! These routes are documented in the OpenAPI document under the tag `pages` (`text/html`),
//! like every other root route.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};

use crate::error::AppError;
use crate::http::auth::AccountCtx;
use crate::http::error::status_of;
use crate::http::AppState;
use crate::secrets::{constant_time_eq, new_secret};
use crate::service::delegation::{self, DelegationView};
use crate::service::saml_login::SESSION_COOKIE;

/// The double-submit cookie.
pub const CSRF_COOKIE: &str = "provisor_csrf";
/// The hidden form field that must equal the cookie.
pub const CSRF_FIELD: &str = "csrf";
const CSRF_PREFIX: &str = "pvf_";
/// Largest form body (a token, a code and the CSRF field fit many times over).
const FORM_LIMIT: usize = 16 * 1024;
/// Longest path parameter or posted token looked up at all.
const MAX_ID: usize = 200;

const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;\
line-height:1.5;color:#222}h1{font-size:1.5rem}dt{font-weight:600}dd{margin:0 0 .5rem 0}\
form{margin:1rem 0}button{font-size:1rem;padding:.4rem 1rem}input{font-size:1rem;padding:.3rem}\
.notice{padding:.5rem 1rem;border-left:4px solid #888;background:#f4f4f4}\
.error{border-color:#b00}code{overflow-wrap:anywhere}.reason{color:#666;font-size:.9rem}";

route_table! {
    GET "/invitations/accept" => invitation_page, public;
    POST "/invitations/accept" => invitation_accept, public;
    POST "/delegations/accept_all" => delegation_accept_all, public;
    GET "/delegations/{relationship_id}/accept" => delegation_page, public;
    POST "/delegations/{relationship_id}/accept" => delegation_accept, public;
    GET "/delegations/{relationship_id}/verify" => verify_page, public;
    POST "/delegations/{relationship_id}/verify" => verify_open_session, public;
    POST "/delegations/{relationship_id}/verify/code" => verify_send_code, public;
}

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn instant(t: &chrono::NaiveDateTime) -> String {
    crate::clock::rfc3339::format(t)
}

/// One page: status, title and body (HTML whose values the caller escaped).
struct Page {
    status: StatusCode,
    title: String,
    body: String,
    retry_after: Option<u64>,
    /// Boxed: a cookie is large, and every refusal is a `Page` in an `Err`.
    cookie: Option<Box<Cookie<'static>>>,
}

impl Page {
    fn new(status: StatusCode, title: &str, body: String) -> Page {
        Page { status, title: title.to_owned(), body, retry_after: None, cookie: None }
    }

    fn with_cookie(mut self, cookie: Option<Cookie<'static>>) -> Page {
        self.cookie = cookie.map(Box::new);
        self
    }

    fn render(self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status);
        resp.content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
            .insert_header((header::X_FRAME_OPTIONS, "DENY"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            // Not `no-referrer`: that would make browsers post `Origin: null` from our forms.
            .insert_header((header::REFERRER_POLICY, "same-origin"));
        if let Some(secs) = self.retry_after {
            resp.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if let Some(c) = self.cookie {
            resp.cookie(*c);
        }
        resp.body(format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title} · provisor</title><style>{STYLE}</style></head>\
             <body><main><h1>{title}</h1>{body}</main></body></html>",
            title = esc(&self.title),
            body = self.body,
        ))
    }
}

/// Both arms are pages: the happy one and the refusal.
type PageResult = Result<Page, Page>;

fn respond(result: PageResult) -> HttpResponse {
    match result {
        Ok(p) | Err(p) => p.render(),
    }
}

fn title_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "This link or form is incomplete",
        401 => "Sign in first",
        403 => "Not allowed",
        404 => "Not found",
        409 => "Not possible now",
        410 => "This link has expired",
        413 => "Too large",
        415 => "Not a form",
        429 => "Too many tries",
        _ => "Something went wrong",
    }
}

/// The page of an application error: its status, message and reason code.
fn error_page(e: &AppError) -> Page {
    if let AppError::Internal(detail) = e {
        tracing::error!(error = %detail, "internal error");
    }
    let status = status_of(e);
    let mut page = Page::new(status, title_of(status), notice_html(e, true));
    if let AppError::RateLimited { retry_after_secs } = e {
        page.retry_after = Some(*retry_after_secs);
    }
    page
}

fn notice_html(e: &AppError, error: bool) -> String {
    format!(
        "<p class=\"notice{}\" id=\"notice\">{}.</p><p class=\"reason\">Reason code: <code>{}</code></p>",
        if error { " error" } else { "" },
        esc(capitalised(&e.public_message()).trim_end_matches('.')),
        esc(e.code()),
    )
}

/// The server's path prefix (the public URL's path), for links and form actions.
fn local(state: &AppState, path: &str) -> String {
    let prefix = url::Url::parse(&state.config.public_url).map(|u| u.path().trim_end_matches('/').to_owned());
    format!("{}{path}", prefix.unwrap_or_default())
}

/// A query value, percent-encoded.
fn urlencoded(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A path segment, percent-encoded (ids are UUIDs and pass unchanged).
fn segment(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

// ---------------------------------------------------------------------------------------
// CSRF: a random double-submit token and the origin of posts.

fn well_formed_csrf(v: &str) -> bool {
    v.len() == CSRF_PREFIX.len() + 43
        && v.starts_with(CSRF_PREFIX)
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The CSRF token for a page's forms: the browser's own, or a new one with its cookie.
fn csrf_token(state: &AppState, req: &HttpRequest) -> (String, Option<Cookie<'static>>) {
    if let Some(c) = req.cookie(CSRF_COOKIE).filter(|c| well_formed_csrf(c.value())) {
        return (c.value().to_owned(), None);
    }
    let token = new_secret(CSRF_PREFIX);
    let cookie = Cookie::build(CSRF_COOKIE, token.clone())
        .path("/")
        .http_only(true)
        .secure(state.config.secure_cookies)
        .same_site(SameSite::Strict)
        .finish();
    (token, Some(cookie))
}

fn csrf_input(token: &str) -> String {
    format!("<input type=\"hidden\" name=\"{CSRF_FIELD}\" value=\"{}\">", esc(token))
}

/// A POST form with the CSRF field and a submit button.
fn post_form(action: &str, csrf: &str, fields: &str, button: &str, id: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\" id=\"{}\">{}{fields}<button type=\"submit\">{}</button></form>",
        esc(action),
        esc(id),
        csrf_input(csrf),
        esc(button),
    )
}

/// Does the browser say this post comes from another site? (`Origin` other than ours, an
/// opaque `null` origin, or `Sec-Fetch-Site: cross-site`.) Without either header the
/// double-submit token decides alone.
fn foreign_origin(req: &HttpRequest, public_url: &str) -> bool {
    let fetch_site = req.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site.is_some_and(|s| s.eq_ignore_ascii_case("cross-site")) {
        return true;
    }
    let Some(origin) = req.headers().get(header::ORIGIN) else { return false };
    let Ok(origin) = origin.to_str() else { return true };
    let origin = origin.trim().trim_end_matches('/');
    let ours = url::Url::parse(public_url).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    let info = req.connection_info();
    let by_host = format!("{}://{}", info.scheme(), info.host());
    !(origin.eq_ignore_ascii_case(&ours) || origin.eq_ignore_ascii_case(&by_host))
}

fn csrf_refused() -> Page {
    Page::new(
        StatusCode::FORBIDDEN,
        "Not allowed",
        "<p class=\"notice error\" id=\"notice\">This form was not sent from this site's own page (or the page \
         is too old). Nothing was changed. Open the link again and use the form on that page.</p>\
         <p class=\"reason\">Reason code: <code>csrf_failed</code></p>"
            .into(),
    )
}

/// A posted form that passed the checks of every POST: our origin, form-encoded, at most
/// [`FORM_LIMIT`], each field once, and the CSRF field equal to the cookie.
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

async fn checked_form(state: &AppState, req: &HttpRequest, payload: web::Payload) -> Result<Form, Page> {
    if foreign_origin(req, &state.config.public_url) {
        return Err(csrf_refused());
    }
    if !req.content_type().eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(Page::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            title_of(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            "<p class=\"notice error\" id=\"notice\">Expected a form (application/x-www-form-urlencoded). \
             Nothing was changed.</p>"
                .into(),
        ));
    }
    let body = payload
        .to_bytes_limited(FORM_LIMIT)
        .await
        .map_err(|_| error_page(&AppError::PayloadTooLarge { limit: FORM_LIMIT }))?
        .map_err(|e| error_page(&AppError::bad_request("invalid_body", format!("cannot read the form: {e}"))))?;
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    for (i, (k, _)) in fields.iter().enumerate() {
        if fields.iter().skip(i + 1).any(|(other, _)| other == k) {
            return Err(error_page(&AppError::bad_request("invalid_form", format!("{k} is given more than once"))));
        }
    }
    let form = Form(fields);
    let cookie = req.cookie(CSRF_COOKIE).map(|c| c.value().to_owned()).unwrap_or_default();
    let field = form.get(CSRF_FIELD).unwrap_or_default();
    if !well_formed_csrf(&cookie) || !constant_time_eq(cookie.as_bytes(), field.as_bytes()) {
        return Err(csrf_refused());
    }
    Ok(form)
}

// ---------------------------------------------------------------------------------------
// The signed-in person (SSO session cookie).

fn session_cookie(req: &HttpRequest) -> Option<String> {
    req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()).filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The 401 page: sign in through the organisation's SSO, with the partner account's
/// SP-initiated login that returns to `back` when the relationship names one with SSO.
async fn sign_in_page(state: &AppState, relationship_id: Option<&str>, back: &str) -> Page {
    let login = match relationship_id {
        Some(id) => {
            let id = id.to_owned();
            let found = state
                .db
                .read(move |c| -> Result<Option<String>, AppError> {
                    let Some(r) = crate::store::delegation::find(c, &id)? else { return Ok(None) };
                    let sso = crate::store::saml::config(c, &r.partner_account_id)?;
                    Ok(sso.map(|_| r.partner_account_id))
                })
                .await;
            found.ok().flatten()
        }
        None => None,
    };
    let link = match login {
        Some(partner) => format!(
            "<p><a id=\"sign-in\" href=\"{}\">Sign in through your organisation's single sign-on</a>; you come \
             back to this page afterwards.</p>",
            esc(&local(state, &format!("/saml/{}/login?target={}", segment(&partner), urlencoded(back))))
        ),
        None => "<p>Sign in through your organisation's single sign-on (your identity provider's portal), then \
                 open the link from the mail again.</p>"
            .to_owned(),
    };
    Page::new(
        StatusCode::UNAUTHORIZED,
        "Sign in first",
        format!(
            "<p class=\"notice error\" id=\"notice\">This page is for a person of the partner organisation, \
             signed in through its single sign-on. You are not signed in (or your session has ended).</p>{link}"
        ),
    )
}

/// The signed-in person's context (scope `user`), or the sign-in page.
async fn signed_in(
    state: &AppState,
    req: &HttpRequest,
    relationship_id: Option<&str>,
    back: &str,
) -> Result<AccountCtx, Page> {
    let Some(cookie) = session_cookie(req) else { return Err(sign_in_page(state, relationship_id, back).await) };
    match crate::service::auth::session_context(&state.services, &cookie, None).await {
        Ok(ctx) => Ok(ctx),
        Err(AppError::Unauthorized(_)) => Err(sign_in_page(state, relationship_id, back).await),
        Err(e) => Err(error_page(&e)),
    }
}

/// The caller's delegation under `id`, how many invitations they have open, and their
/// e-mail (for "signed in as").
struct Mine {
    found: Option<DelegationView>,
    open: usize,
    email: String,
}

async fn mine(state: &AppState, ctx: &AccountCtx, id: &str) -> Result<Mine, Page> {
    let (env, actor, id) = (state.env(), ctx.actor.clone(), id.to_owned());
    let user = ctx.actor.user_id.clone().unwrap_or_default();
    let (all, email) = state
        .db
        .read(move |c| {
            let all = delegation::my_delegations(c, &env, &actor)?;
            let email = crate::store::users::find_any(c, &user)?.and_then(|u| u.email).unwrap_or(user);
            Ok::<_, AppError>((all, email))
        })
        .await
        .map_err(|e| error_page(&e))?;
    let open = all.iter().filter(|d| is_open(d)).count();
    let found = all.into_iter().find(|d| d.relationship_id == id);
    Ok(Mine { found, open, email })
}

/// An invitation `accept_all` would accept now.
fn is_open(d: &DelegationView) -> bool {
    match d.kind.as_str() {
        "relationship_invitation" => d.relationship_status == "invited",
        _ => d.status == "invited" && d.relationship_status == "active",
    }
}

fn relationship_param(path: &str) -> Result<String, Page> {
    if path.is_empty() || path.len() > MAX_ID {
        return Err(error_page(&AppError::not_found("delegation")));
    }
    Ok(path.to_owned())
}

fn not_yours(email: &str) -> Page {
    Page::new(
        StatusCode::NOT_FOUND,
        title_of(StatusCode::NOT_FOUND),
        format!(
            "<p class=\"notice error\" id=\"notice\">There is no delegation for you under this link. You are signed \
             in as <strong>{}</strong>; if the mail was sent to another address, sign in as that person.</p>\
             <p class=\"reason\">Reason code: <code>not_found</code></p>",
            esc(email)
        ),
    )
}

fn permissions_html(d: &DelegationView) -> String {
    let items: String = d.permissions.iter().map(|p| format!("<li><code>{}</code></li>", esc(p))).collect();
    format!(
        "<dl><dt>Customer</dt><dd id=\"customer\">{}</dd><dt>Relationship</dt><dd>{}</dd>\
         <dt>What you may do there</dt><dd><ul id=\"permissions\">{items}</ul></dd><dt>Ends</dt><dd>{}</dd></dl>",
        esc(&d.customer_name),
        esc(&d.relationship_name),
        d.expires_at.as_ref().map_or_else(|| "no end date".to_owned(), |t| esc(&instant(t))),
    )
}

fn ended_page(d: &DelegationView) -> Page {
    error_page(&AppError::conflict("relationship_ended", format!("the relationship is {}", d.relationship_status)))
}

// ---------------------------------------------------------------------------------------
// User invitations.

fn invitation_token(raw: Option<&str>) -> Result<String, Page> {
    match raw.map(str::trim) {
        None | Some("") => Err(error_page(&AppError::bad_request(
            "invalid_link",
            "this link has no invitation token; open the link from the mail again, in full",
        ))),
        // Guessing is hopeless (256 bits); a long value is not even looked up.
        Some(t) if t.len() > MAX_ID => Err(error_page(&AppError::NotFoundBecause {
            code: "invitation_not_found",
            message: "this invitation is not valid".into(),
        })),
        Some(t) => Ok(t.to_owned()),
    }
}

/// The invitation page: which account invites whom, and an Accept form.
#[utoipa::path(get, path = "/invitations/accept", tag = "pages",
    params(("token" = String, Query, description = "the invitation token from the mail")),
    responses((status = 200, content_type = "text/html", body = String, description = "who invites whom, with an Accept form"),
        (status = 404, content_type = "text/html", body = String, description = "unknown, used or replaced invitation"),
        (status = 410, content_type = "text/html", body = String, description = "expired invitation")))]
pub async fn invitation_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    respond(show_invitation(&state, &req).await)
}

async fn show_invitation(state: &AppState, req: &HttpRequest) -> PageResult {
    state.limiter.check(req, "invitation_accept", "").map_err(|e| error_page(&e))?;
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect();
    let token = invitation_token(query.iter().find(|(k, _)| k == "token").map(|(_, v)| v.as_str()))?;
    let (env, t) = (state.env(), token.clone());
    let preview = state
        .db
        .read(move |c| crate::service::users::invitation_preview(c, &env, &t))
        .await
        .map_err(|e| error_page(&e))?;
    let whom = match (&preview.display_name, &preview.email) {
        (Some(name), Some(email)) => format!("{} ({})", esc(name), esc(email)),
        (None, Some(email)) => esc(email),
        (Some(name), None) => esc(name),
        (None, None) => "you".into(),
    };
    let (csrf, cookie) = csrf_token(state, req);
    let form = post_form(
        &local(state, "/invitations/accept"),
        &csrf,
        &format!("<input type=\"hidden\" name=\"token\" value=\"{}\">", esc(&token)),
        "Accept the invitation",
        "accept",
    );
    let body = format!(
        "<p><strong id=\"account\">{}</strong> invites <strong id=\"invitee\">{whom}</strong> to join its \
         account.</p><p>The invitation is valid until {}.</p>{form}",
        esc(&preview.account_name),
        esc(&instant(&preview.expires_at)),
    );
    Ok(Page::new(StatusCode::OK, "You are invited", body).with_cookie(cookie))
}

/// Accept the invitation (form post: `token` and the CSRF field).
#[utoipa::path(post, path = "/invitations/accept", tag = "pages",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "token and csrf"),
    responses((status = 200, content_type = "text/html", body = String, description = "accepted"),
        (status = 403, content_type = "text/html", body = String, description = "CSRF check failed; nothing changed"),
        (status = 404, content_type = "text/html", body = String), (status = 410, content_type = "text/html", body = String)))]
pub async fn invitation_accept(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    respond(accept_invitation(&state, &req, payload).await)
}

async fn accept_invitation(state: &AppState, req: &HttpRequest, payload: web::Payload) -> PageResult {
    state.limiter.check(req, "invitation_accept", "").map_err(|e| error_page(&e))?;
    let form = checked_form(state, req, payload).await?;
    let token = invitation_token(form.get("token"))?;
    let env = state.env();
    let (user, account) = state
        .db
        .write(move |c| {
            let user = crate::service::users::accept_invitation(c, &env, &token)?;
            let account = crate::store::accounts::find(c, &user.account_id)?.map(|a| a.name).unwrap_or_default();
            Ok::<_, AppError>((user, account))
        })
        .await
        .map_err(|e| error_page(&e))?;
    let who = user.display_name.or(user.email).map(|w| format!(", {}", esc(&w))).unwrap_or_default();
    Ok(Page::new(
        StatusCode::OK,
        "Invitation accepted",
        format!(
            "<p class=\"notice\" id=\"notice\">Welcome{who}: you are now a member of <strong>{}</strong>.</p>\
             <p>Sign in through your organisation's single sign-on to continue.</p>",
            esc(&account)
        ),
    ))
}

// ---------------------------------------------------------------------------------------
// Delegate invitations.

/// A delegate invitation (or a customer's invitation of the signed-in partner user).
#[utoipa::path(get, path = "/delegations/{relationship_id}/accept", tag = "pages",
    responses((status = 200, content_type = "text/html", body = String, description = "the invitation, with Accept forms"),
        (status = 401, content_type = "text/html", body = String, description = "not signed in: a link to the partner's SSO login"),
        (status = 404, content_type = "text/html", body = String), (status = 409, content_type = "text/html", body = String)))]
pub async fn delegation_page(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    respond(show_delegation(&state, &req, &path.into_inner()).await)
}

async fn show_delegation(state: &AppState, req: &HttpRequest, id: &str) -> PageResult {
    let id = relationship_param(id)?;
    let back = format!("/delegations/{}/accept", segment(&id));
    let ctx = signed_in(state, req, Some(&id), &local(state, &back)).await?;
    let mine = mine(state, &ctx, &id).await?;
    let Some(d) = mine.found else { return Err(not_yours(&mine.email)) };
    if !matches!(d.relationship_status.as_str(), "active" | "invited") {
        return Err(ended_page(&d));
    }
    let (csrf, cookie) = csrf_token(state, req);
    let verify = local(state, &format!("/delegations/{}/verify", segment(&id)));
    let signed = format!("<p class=\"reason\">Signed in as {}.</p>", esc(&mine.email));
    let accept_all = || {
        post_form(
            &local(state, "/delegations/accept_all"),
            &csrf,
            &format!("<input type=\"hidden\" name=\"from\" value=\"{}\">", esc(&id)),
            &format!("Accept all my open invitations ({})", mine.open),
            "accept-all",
        )
    };
    if !is_open(&d) {
        let rest = if mine.open > 0 { accept_all() } else { String::new() };
        let body = format!(
            "<p class=\"notice\" id=\"notice\">You have accepted this delegation already.</p>{}\
             <p><a id=\"verify\" href=\"{}\">Continue to {}</a></p>{rest}{signed}",
            permissions_html(&d),
            esc(&verify),
            esc(&d.customer_name),
        );
        return Ok(Page::new(StatusCode::OK, "Delegation", body).with_cookie(cookie));
    }
    let intro = if d.kind == "relationship_invitation" {
        format!(
            "<p><strong>{}</strong> invites you to administer its account as its partner.</p>",
            esc(&d.customer_name)
        )
    } else {
        format!(
            "<p>You are invited to administer <strong>{}</strong> as a delegate of your organisation's \
             relationship <strong>{}</strong>.</p>",
            esc(&d.customer_name),
            esc(&d.relationship_name)
        )
    };
    let one = post_form(&local(state, &back), &csrf, "", "Accept this invitation", "accept");
    let body = format!("{intro}{}{one}{}{signed}", permissions_html(&d), accept_all());
    Ok(Page::new(StatusCode::OK, "Delegate invitation", body).with_cookie(cookie))
}

/// Accept this delegation (form post with the CSRF field).
#[utoipa::path(post, path = "/delegations/{relationship_id}/accept", tag = "pages",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "csrf"),
    responses((status = 200, content_type = "text/html", body = String, description = "accepted"),
        (status = 401, content_type = "text/html", body = String), (status = 403, content_type = "text/html", body = String),
        (status = 404, content_type = "text/html", body = String), (status = 409, content_type = "text/html", body = String)))]
pub async fn delegation_accept(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    respond(accept_delegation(&state, &req, &path.into_inner(), payload).await)
}

async fn accept_delegation(state: &AppState, req: &HttpRequest, id: &str, payload: web::Payload) -> PageResult {
    let id = relationship_param(id)?;
    checked_form(state, req, payload).await?;
    let ctx = signed_in(state, req, Some(&id), &local(state, &format!("/delegations/{}/accept", segment(&id)))).await?;
    let (env, rid) = (state.env(), id.clone());
    let v = state
        .db
        .write(move |c| delegation::accept_delegation(c, &env, &ctx.actor, &ctx.account_id, &rid))
        .await
        .map_err(|e| error_page(&e))?;
    state.authorization_changed();
    let verify = local(state, &format!("/delegations/{}/verify", segment(&v.relationship_id)));
    Ok(Page::new(
        StatusCode::OK,
        "Invitation accepted",
        format!(
            "<p class=\"notice\" id=\"notice\">You are now a delegate in <strong>{}</strong> ({}).</p>\
             <p><a id=\"verify\" href=\"{}\">Continue to {}</a>: you confirm with a one-time code each time.</p>",
            esc(&v.customer_name),
            esc(&v.relationship_name),
            esc(&verify),
            esc(&v.customer_name),
        ),
    ))
}

/// Accept every open invitation (form post with the CSRF field; `from` names the page it
/// was sent from).
#[utoipa::path(post, path = "/delegations/accept_all", tag = "pages",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "csrf, from"),
    responses((status = 200, content_type = "text/html", body = String, description = "what was accepted"),
        (status = 401, content_type = "text/html", body = String), (status = 403, content_type = "text/html", body = String)))]
pub async fn delegation_accept_all(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    respond(accept_all(&state, &req, payload).await)
}

async fn accept_all(state: &AppState, req: &HttpRequest, payload: web::Payload) -> PageResult {
    let form = checked_form(state, req, payload).await?;
    let from = form.get("from").filter(|f| !f.is_empty() && f.len() <= MAX_ID).map(str::to_owned);
    let back = from.as_ref().map(|f| local(state, &format!("/delegations/{}/accept", segment(f)))).unwrap_or_default();
    let ctx = signed_in(state, req, from.as_deref(), &back).await?;
    let env = state.env();
    let accepted = state
        .db
        .write(move |c| delegation::accept_all(c, &env, &ctx.actor, &ctx.account_id))
        .await
        .map_err(|e| error_page(&e))?;
    state.authorization_changed();
    if accepted.is_empty() {
        return Ok(Page::new(
            StatusCode::OK,
            "Nothing to accept",
            "<p class=\"notice\" id=\"notice\">You have no open invitations left.</p>".into(),
        ));
    }
    let items: String = accepted
        .iter()
        .map(|v| {
            format!(
                "<li><strong>{}</strong> ({}) — <a href=\"{}\">continue</a></li>",
                esc(&v.customer_name),
                esc(&v.relationship_name),
                esc(&local(state, &format!("/delegations/{}/verify", segment(&v.relationship_id)))),
            )
        })
        .collect();
    Ok(Page::new(
        StatusCode::OK,
        "Invitations accepted",
        format!(
            "<p class=\"notice\" id=\"notice\">You accepted {} invitation{}:</p><ul id=\"accepted\">{items}</ul>",
            accepted.len(),
            if accepted.len() == 1 { "" } else { "s" }
        ),
    ))
}

// ---------------------------------------------------------------------------------------
// Verify to continue: one-time code → delegated token.

/// What the verify page says above its forms.
struct Notice {
    status: StatusCode,
    html: String,
    retry_after: Option<u64>,
}

impl Notice {
    fn of(e: &AppError) -> Notice {
        let retry_after = match e {
            AppError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        Notice { status: status_of(e), html: notice_html(e, true), retry_after }
    }
}

/// The delegation of the signed-in person under `id`, if they may ask for codes now.
async fn verifiable(state: &AppState, req: &HttpRequest, id: &str) -> Result<(AccountCtx, DelegationView), Page> {
    let back = local(state, &format!("/delegations/{}/verify", segment(id)));
    let ctx = signed_in(state, req, Some(id), &back).await?;
    let mine = mine(state, &ctx, id).await?;
    let Some(d) = mine.found else { return Err(not_yours(&mine.email)) };
    if d.relationship_status != "active" && d.relationship_status != "invited" {
        return Err(ended_page(&d));
    }
    if is_open(&d) || d.status != "active" {
        let mut page =
            error_page(&AppError::conflict("invitation_not_accepted", "accept the delegation first, then verify"));
        page.body.push_str(&format!(
            "<p><a id=\"accept\" href=\"{}\">Open the invitation</a></p>",
            esc(&local(state, &format!("/delegations/{}/accept", segment(id))))
        ));
        return Err(page);
    }
    Ok((ctx, d))
}

fn verify_view(state: &AppState, req: &HttpRequest, id: &str, d: &DelegationView, notice: Option<Notice>) -> Page {
    let (csrf, cookie) = csrf_token(state, req);
    let base = format!("/delegations/{}/verify", segment(id));
    let send = post_form(&local(state, &format!("{base}/code")), &csrf, "", "Mail me a code", "send-code");
    let enter = post_form(
        &local(state, &base),
        &csrf,
        "<p><label for=\"code\">Code from the mail</label><br>\
         <input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required></p>",
        "Continue",
        "enter-code",
    );
    let (status, retry_after, html) = match notice {
        Some(n) => (n.status, n.retry_after, n.html),
        None => (StatusCode::OK, None, String::new()),
    };
    let body = format!(
        "<p>To act in <strong id=\"customer\">{}</strong> ({}) you confirm with a one-time code mailed to you. \
         It is valid for {} minutes, once.</p>{html}{send}{enter}",
        esc(&d.customer_name),
        esc(&d.relationship_name),
        crate::domain::delegation::CODE_TTL_MINUTES,
    );
    let mut page = Page::new(status, "Verify to continue", body).with_cookie(cookie);
    page.retry_after = retry_after;
    page
}

/// "Verify to continue": a button that mails a one-time code and a form to enter it.
#[utoipa::path(get, path = "/delegations/{relationship_id}/verify", tag = "pages",
    responses((status = 200, content_type = "text/html", body = String, description = "the code forms"),
        (status = 401, content_type = "text/html", body = String), (status = 404, content_type = "text/html", body = String),
        (status = 409, content_type = "text/html", body = String)))]
pub async fn verify_page(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    respond(show_verify(&state, &req, &path.into_inner()).await)
}

async fn show_verify(state: &AppState, req: &HttpRequest, id: &str) -> PageResult {
    let id = relationship_param(id)?;
    let (_, d) = verifiable(state, req, &id).await?;
    Ok(verify_view(state, req, &id, &d, None))
}

/// Mail a one-time code (form post with the CSRF field); at most one a minute (429 with
/// `Retry-After`).
#[utoipa::path(post, path = "/delegations/{relationship_id}/verify/code", tag = "pages",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "csrf"),
    responses((status = 200, content_type = "text/html", body = String, description = "code mailed"),
        (status = 403, content_type = "text/html", body = String), (status = 429, content_type = "text/html", body = String)))]
pub async fn verify_send_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    respond(send_code(&state, &req, &path.into_inner(), payload).await)
}

async fn send_code(state: &AppState, req: &HttpRequest, id: &str, payload: web::Payload) -> PageResult {
    let id = relationship_param(id)?;
    checked_form(state, req, payload).await?;
    let (ctx, d) = verifiable(state, req, &id).await?;
    let (env, rid) = (state.env(), id.clone());
    let sent = state.db.write(move |c| delegation::send_code(c, &env, &ctx.actor, &ctx.account_id, &rid)).await;
    let notice = match sent {
        Ok(sent) => Notice {
            status: StatusCode::OK,
            html: format!(
                "<p class=\"notice\" id=\"notice\">We mailed a code to {}. It is valid until {}.</p>",
                esc(&sent.sent_to),
                esc(&instant(&sent.expires_at))
            ),
            retry_after: None,
        },
        Err(e @ (AppError::RateLimited { .. } | AppError::Conflict { .. })) => Notice::of(&e),
        Err(e) => return Err(error_page(&e)),
    };
    Ok(verify_view(state, req, &id, &d, Some(notice)))
}

/// Exchange the code for a delegated token, shown once (`Cache-Control: no-store`). Wrong
/// code 403 `code_invalid`, used or expired 403 `code_expired`, locked 429 with
/// `Retry-After`.
#[utoipa::path(post, path = "/delegations/{relationship_id}/verify", tag = "pages",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "code and csrf"),
    responses((status = 200, content_type = "text/html", body = String, description = "the delegated token, its expiry and the customer account"),
        (status = 403, content_type = "text/html", body = String), (status = 429, content_type = "text/html", body = String)))]
pub async fn verify_open_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    respond(open_session(&state, &req, &path.into_inner(), payload).await)
}

async fn open_session(state: &AppState, req: &HttpRequest, id: &str, payload: web::Payload) -> PageResult {
    let id = relationship_param(id)?;
    let form = checked_form(state, req, payload).await?;
    let code = form.get("code").unwrap_or_default().chars().take(64).collect::<String>();
    let (ctx, d) = verifiable(state, req, &id).await?;
    let (env, rid) = (state.env(), id.clone());
    let opened = state
        .db
        .write(move |c| delegation::open_session(c, &env, &ctx.actor, &ctx.account_id, &rid, &code))
        .await
        .map_err(|e| error_page(&e))?;
    let session = match opened {
        Ok(s) => s,
        // The wrong try is counted (committed); the page says why and offers the forms again.
        Err(e) => return Ok(verify_view(state, req, &id, &d, Some(Notice::of(&e)))),
    };
    Ok(Page::new(
        StatusCode::OK,
        "You can continue",
        format!(
            "<p class=\"notice\" id=\"notice\">You may act in <strong>{}</strong> until \
             <strong id=\"expires-at\">{}</strong>.</p>\
             <p>Your delegated token, shown this once (copy it now; it is not stored in readable form):</p>\
             <p><code id=\"delegated-token\">{}</code></p>\
             <dl><dt>Customer account</dt><dd><code id=\"account-id\">{}</code></dd></dl>\
             <p>Use it as a bearer token (<code>Authorization: Bearer …</code>) for the admin API, for example \
             <code>GET /api/v1/users</code>.</p>",
            esc(&d.customer_name),
            esc(&instant(&session.expires_at)),
            esc(&session.token),
            esc(&session.account_id),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_both_quotes() {
        assert_eq!(
            esc("<script>alert(\"x\" + 'y') & more</script>"),
            "&lt;script&gt;alert(&quot;x&quot; + &#39;y&#39;) &amp; more&lt;/script&gt;"
        );
        assert_eq!(esc("plain"), "plain");
    }

    #[test]
    fn csrf_tokens_have_one_shape() {
        let t = new_secret(CSRF_PREFIX);
        assert!(well_formed_csrf(&t), "{t}");
        assert!(!well_formed_csrf(""));
        assert!(!well_formed_csrf("pvf_short"));
        assert!(!well_formed_csrf(&t.replace('_', "=")));
    }

    #[test]
    fn capitalised_keeps_the_rest() {
        assert_eq!(capitalised("the code is wrong"), "The code is wrong");
        assert_eq!(capitalised(""), "");
    }
}

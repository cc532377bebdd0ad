//! The SCIM HTTP edge under `/scim/v2`: routing, authentication, bodies, headers
//! (`ETag`, `If-Match`, `If-None-Match`, `Location`) and errors in the SCIM error schema.
//!
//! Bodies are read as raw bytes with a size limit and parsed here, so malformed JSON, wrong
//! types, oversized bodies, unknown routes and wrong methods all answer in the SCIM error
//! format (RFC 7644 §3.12) — never the admin API's shape and never a 500.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use super::discovery::{self, MAX_PAYLOAD};
use super::query::ListParams;
use super::resource::{etag, Projection};
use super::service::{self, etag_list_matches, Ctx, Done, Failure, IfMatch, Kind};
use crate::http::auth::ScimCtx;
use crate::http::AppState;

/// The SCIM media type (RFC 7644 §8.1).
pub const SCIM_JSON: &str = "application/scim+json";

impl ResponseError for Failure {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        resp.content_type(SCIM_JSON);
        if self.status == 401 {
            resp.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        resp.body(self.to_json().to_string())
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    let only = |path: &str| web::resource(path.to_owned()).default_service(web::to(method_not_allowed));
    cfg.service(only("/ServiceProviderConfig").route(web::get().to(service_provider_config)))
        .service(only("/Schemas").route(web::get().to(schemas)))
        .service(only("/Schemas/{id}").route(web::get().to(schema)))
        .service(only("/ResourceTypes").route(web::get().to(resource_types)))
        .service(only("/ResourceTypes/{id}").route(web::get().to(resource_type)))
        .service(only("/Users").route(web::get().to(list_users)).route(web::post().to(create_user)))
        .service(only("/Users/.search").route(web::post().to(search_users)))
        .service(
            only("/Users/{id}")
                .route(web::get().to(get_user))
                .route(web::put().to(replace_user))
                .route(web::patch().to(patch_user))
                .route(web::delete().to(delete_user)),
        )
        .service(only("/Groups").route(web::get().to(list_groups)).route(web::post().to(create_group)))
        .service(only("/Groups/.search").route(web::post().to(search_groups)))
        .service(
            only("/Groups/{id}")
                .route(web::get().to(get_group))
                .route(web::put().to(replace_group))
                .route(web::patch().to(patch_group))
                .route(web::delete().to(delete_group)),
        )
        .service(only("/Bulk").route(web::post().to(bulk)))
        .service(only("/.search").route(web::post().to(search_all)))
        .default_service(web::to(not_found));
}

type Reply = Result<HttpResponse, Failure>;

/// The SCIM service root as clients see it.
pub fn base_url(state: &AppState) -> String {
    format!("{}/scim/v2", state.config.public_url)
}

async fn authenticate(state: &AppState, req: &HttpRequest) -> Result<Ctx, Failure> {
    let scim = ScimCtx::from_req(state, req).await?;
    Ok(Ctx { account: scim.account_id, actor: scim.actor, base: base_url(state) })
}

fn respond(done: Done) -> HttpResponse {
    let mut resp = HttpResponse::build(StatusCode::from_u16(done.status).unwrap_or(StatusCode::OK));
    if let Some(v) = done.version {
        resp.insert_header((header::ETAG, etag(v)));
    }
    if let Some(l) = done.location.filter(|l| !l.is_empty()) {
        resp.insert_header((header::LOCATION, l));
    }
    match done.body {
        Some(body) => resp.content_type(SCIM_JSON).body(body.to_string()),
        None => resp.finish(),
    }
}

fn json(value: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok().content_type(SCIM_JSON).body(value.to_string())
}

/// The `{id}` of the path. NUL (`%00`) is no id of ours: the lookup answers 404 without
/// handing it to the database.
fn id(req: &HttpRequest) -> String {
    req.match_info().get("id").unwrap_or_default().replace('\0', "\u{fffd}")
}

fn header_text(req: &HttpRequest, name: header::HeaderName) -> Option<String> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn if_match(req: &HttpRequest) -> IfMatch {
    IfMatch(header_text(req, header::IF_MATCH))
}

fn projection(req: &HttpRequest) -> Result<Projection, Failure> {
    let mut attributes = None;
    let mut excluded = None;
    for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        if k.eq_ignore_ascii_case("attributes") {
            attributes = Some(v.into_owned());
        } else if k.eq_ignore_ascii_case("excludedAttributes") {
            excluded = Some(v.into_owned());
        }
    }
    Ok(Projection::parse(attributes.as_deref(), excluded.as_deref())?)
}

/// The request body: JSON (`application/scim+json`, `application/json` or unlabelled),
/// at most [`MAX_PAYLOAD`] bytes.
async fn body(req: &HttpRequest, payload: web::Payload) -> Result<web::Bytes, Failure> {
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let essence = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if essence != SCIM_JSON && essence != "application/json" && !essence.is_empty() {
            return Err(Failure::new(
                415,
                None,
                format!("send the body as {SCIM_JSON} or application/json, not {essence:?}"),
            ));
        }
    }
    let too_large = || Failure::new(413, None, format!("the request body is larger than {MAX_PAYLOAD} bytes"));
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_PAYLOAD) {
        return Err(too_large());
    }
    payload
        .to_bytes_limited(MAX_PAYLOAD)
        .await
        .map_err(|_| too_large())?
        .map_err(|e| Failure::new(400, Some("invalidSyntax"), format!("cannot read the request body: {e}")))
}

async fn not_found(req: HttpRequest) -> Reply {
    Err(Failure::new(404, None, format!("no SCIM endpoint at {}", req.path())))
}

async fn method_not_allowed(req: HttpRequest) -> Reply {
    Err(Failure::new(405, None, format!("{} is not supported on {}", req.method(), req.path())))
}

// -- discovery: public (it describes the server, not any tenant's data) ------------------

async fn service_provider_config(state: web::Data<AppState>) -> HttpResponse {
    json(discovery::service_provider_config(&base_url(&state)))
}

async fn schemas(state: web::Data<AppState>) -> HttpResponse {
    json(discovery::schemas(&base_url(&state)))
}

async fn schema(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let id = id(&req);
    discovery::schema(&base_url(&state), &id)
        .map(json)
        .ok_or_else(|| Failure::new(404, None, format!("no schema {id}")))
}

async fn resource_types(state: web::Data<AppState>) -> HttpResponse {
    json(discovery::resource_types(&base_url(&state)))
}

async fn resource_type(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let id = id(&req);
    discovery::resource_type(&base_url(&state), &id)
        .map(json)
        .ok_or_else(|| Failure::new(404, None, format!("no resource type {id}")))
}

// -- resources ---------------------------------------------------------------------------

async fn list(state: web::Data<AppState>, req: HttpRequest, kind: Kind) -> Reply {
    let ctx = authenticate(&state, &req).await?;
    let params = ListParams::from_query(req.query_string())?;
    Ok(respond(service::list(&state, &ctx, kind, params).await?))
}

async fn search(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload, kind: Option<Kind>) -> Reply {
    let ctx = authenticate(&state, &req).await?;
    let bytes = body(&req, payload).await?;
    let params = ListParams::from_search(&service::parse_json(&bytes)?)?;
    let done = match kind {
        Some(kind) => service::list(&state, &ctx, kind, params).await?,
        None => service::search_all(&state, &ctx, params).await?,
    };
    Ok(respond(done))
}

/// A GET of one resource, answering 304 when `If-None-Match` names its current version.
fn conditional(req: &HttpRequest, done: Done) -> HttpResponse {
    let unchanged = match (header_text(req, header::IF_NONE_MATCH), done.version) {
        (Some(h), Some(v)) => etag_list_matches(&h, v),
        _ => false,
    };
    if unchanged {
        let mut resp = HttpResponse::NotModified();
        if let Some(v) = done.version {
            if let Ok(value) = HeaderValue::from_str(&etag(v)) {
                resp.insert_header((header::ETAG, value));
            }
        }
        return resp.finish();
    }
    respond(done)
}

async fn list_users(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    list(state, req, Kind::Users).await
}

async fn list_groups(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    list(state, req, Kind::Groups).await
}

async fn search_users(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Reply {
    search(state, req, payload, Some(Kind::Users)).await
}

async fn search_groups(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Reply {
    search(state, req, payload, Some(Kind::Groups)).await
}

async fn search_all(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Reply {
    search(state, req, payload, None).await
}

async fn get_user(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let ctx = authenticate(&state, &req).await?;
    let done = service::get_user(&state, &ctx, id(&req), projection(&req)?).await?;
    Ok(conditional(&req, done))
}

async fn get_group(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let ctx = authenticate(&state, &req).await?;
    let done = service::get_group(&state, &ctx, id(&req), projection(&req)?).await?;
    Ok(conditional(&req, done))
}

async fn create_user(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Reply {
    let ctx = authenticate(&state, &req).await?;
    let bytes = body(&req, payload).await?;
    Ok(respond(service::create_user(&state, &ctx, &bytes, projection(&req)?).await?))
}

async fn create_group(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Reply {
    let ctx = authenticate(&state, &req).await?;
    let bytes = body(&req, payload).await?;
    Ok(respond(service::create_group(&state, &ctx, &bytes, projection(&req)?).await?))
}

async fn replace_user(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Reply {
    let ctx = authenticate(&state, &req).await?;
    let bytes = body(&req, payload).await?;
    Ok(respond(service::replace_user(&state, &ctx, id(&req), &bytes, if_match(&req), projection(&req)?).await?))
}

async fn replace_group(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Reply {
    let ctx = authenticate(&state, &req).await?;
    let bytes = body(&req, payload).await?;
    Ok(respond(service::replace_group(&state, &ctx, id(&req), &bytes, if_match(&req), projection(&req)?).await?))
}

async fn patch_user(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Reply {
    let ctx = authenticate(&state, &req).await?;
    let bytes = body(&req, payload).await?;
    Ok(respond(service::patch_user(&state, &ctx, id(&req), &bytes, if_match(&req), projection(&req)?).await?))
}

async fn patch_group(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Reply {
    let ctx = authenticate(&state, &req).await?;
    let bytes = body(&req, payload).await?;
    Ok(respond(service::patch_group(&state, &ctx, id(&req), &bytes, if_match(&req), projection(&req)?).await?))
}

async fn delete_user(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let ctx = authenticate(&state, &req).await?;
    Ok(respond(service::delete_user(&state, &ctx, id(&req), if_match(&req)).await?))
}

async fn delete_group(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let ctx = authenticate(&state, &req).await?;
    Ok(respond(service::delete_group(&state, &ctx, id(&req), if_match(&req)).await?))
}

async fn bulk(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Reply {
    let ctx = authenticate(&state, &req).await?;
    let bytes = body(&req, payload).await?;
    let request = service::parse_json(&bytes)?;
    Ok(respond(super::bulk::run(&state, &ctx, &request).await?))
}

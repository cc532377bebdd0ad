//! The SCIM HTTP edge under `/scim/v2`: routing, authentication, bodies, headers
//! (`ETag`, `If-Match`, `If-None-Match`, `Location`) and errors in the SCIM error schema.
//! The operations themselves are `service::scim`.
//!
//! Bodies are read as raw bytes with a size limit and parsed here, so malformed JSON, wrong
//! types, oversized bodies, unknown routes and wrong methods all answer in the SCIM error
//! format (RFC 7644 §3.12) — never the admin API's shape and never a 500.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::json;

use super::error::{scim_error_body, scim_failure_body};
use super::AppState;
use crate::scim::discovery::{self, MAX_PAYLOAD};
use crate::scim::query::ListParams;
use crate::service::scim::bulk::{self, BulkResult, BULK_RESPONSE_URN};
use crate::service::scim::resource::{etag, Projection};
use crate::service::scim::{self as service, etag_list_matches, Ctx, Done, IfMatch, Kind, ScimFailure, Status};

/// The SCIM media type (RFC 7644 §8.1).
pub const SCIM_JSON: &str = "application/scim+json";

/// A SCIM request that failed: in an operation, or already at the HTTP level.
#[derive(Debug, thiserror::Error)]
pub enum ScimReply {
    #[error(transparent)]
    Failed(#[from] ScimFailure),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    NoEndpoint(String),
    #[error("the request body is larger than {MAX_PAYLOAD} bytes")]
    BodyTooLarge,
}

impl ResponseError for ScimReply {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, body) = self.parts();
        let mut resp = HttpResponse::build(status);
        resp.content_type(SCIM_JSON);
        if status == StatusCode::UNAUTHORIZED {
            resp.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        crate::http::error::retry_after_if_unavailable(&mut resp, status);
        resp.body(body.to_string())
    }
}

impl ScimReply {
    fn parts(&self) -> (StatusCode, serde_json::Value) {
        let status = match self {
            ScimReply::Failed(f) => return scim_failure_body(f),
            ScimReply::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ScimReply::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ScimReply::NoEndpoint(_) => StatusCode::NOT_FOUND,
            ScimReply::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        };
        (status, scim_error_body(status, None, &self.to_string()))
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

type Reply = Result<HttpResponse, ScimReply>;

/// The SCIM service root as clients see it.
pub fn base_url(state: &AppState) -> String {
    format!("{}/scim/v2", state.config.public_url)
}

async fn authenticate(state: &AppState, req: &HttpRequest) -> Result<Ctx, ScimFailure> {
    let scim = super::auth::scim_ctx(state, req).await?;
    Ok(Ctx { account: scim.account_id, actor: scim.actor, base: base_url(state) })
}

fn status(s: Status) -> StatusCode {
    match s {
        Status::Ok => StatusCode::OK,
        Status::Created => StatusCode::CREATED,
        Status::NoContent => StatusCode::NO_CONTENT,
    }
}

fn respond(done: Done) -> HttpResponse {
    let mut resp = HttpResponse::build(status(done.status));
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

fn projection(req: &HttpRequest) -> Result<Projection, ScimFailure> {
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
async fn body(req: &HttpRequest, payload: web::Payload) -> Result<web::Bytes, ScimReply> {
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let essence = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if essence != SCIM_JSON && essence != "application/json" && !essence.is_empty() {
            return Err(ScimReply::UnsupportedMediaType(format!(
                "send the body as {SCIM_JSON} or application/json, not {essence:?}"
            )));
        }
    }
    let too_large = || ScimReply::BodyTooLarge;
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_PAYLOAD) {
        return Err(too_large());
    }
    // Read through actix's body reader, which undoes `Content-Encoding: gzip` (some IdP
    // gateways compress) and counts the limit on the decoded bytes.
    let mut inner = payload.into_inner();
    let bytes = <web::Bytes as actix_web::FromRequest>::from_request(req, &mut inner).await.map_err(|e| {
        if e.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ScimFailure::from(crate::scim::ScimError::InvalidSyntax(format!("cannot read the request body: {e}")))
                .into()
        }
    })?;
    if bytes.len() > MAX_PAYLOAD {
        return Err(too_large());
    }
    Ok(bytes)
}

async fn not_found(req: HttpRequest) -> Reply {
    Err(ScimReply::NoEndpoint(format!("no SCIM endpoint at {}", req.path())))
}

async fn method_not_allowed(req: HttpRequest) -> Reply {
    Err(ScimReply::MethodNotAllowed(format!("{} is not supported on {}", req.method(), req.path())))
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
    discovery::schema(&base_url(&state), &id).map(json).ok_or_else(|| ScimReply::NoEndpoint(format!("no schema {id}")))
}

async fn resource_types(state: web::Data<AppState>) -> HttpResponse {
    json(discovery::resource_types(&base_url(&state)))
}

async fn resource_type(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    let id = id(&req);
    discovery::resource_type(&base_url(&state), &id)
        .map(json)
        .ok_or_else(|| ScimReply::NoEndpoint(format!("no resource type {id}")))
}

// -- resources ---------------------------------------------------------------------------

async fn list(state: web::Data<AppState>, req: HttpRequest, kind: Kind) -> Reply {
    let ctx = authenticate(&state, &req).await?;
    let params = ListParams::from_query(req.query_string()).map_err(ScimFailure::from)?;
    Ok(respond(service::list(&state, &ctx, kind, params).await?))
}

async fn search(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload, kind: Option<Kind>) -> Reply {
    let ctx = authenticate(&state, &req).await?;
    let bytes = body(&req, payload).await?;
    let params = ListParams::from_search(&service::parse_json(&bytes)?).map_err(ScimFailure::from)?;
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
    let results = bulk::run(&state, &ctx, &request).await?;
    let operations: Vec<serde_json::Value> = results.iter().map(bulk_entry).collect();
    Ok(HttpResponse::Ok()
        .content_type(SCIM_JSON)
        .body(json!({ "schemas": [BULK_RESPONSE_URN], "Operations": operations }).to_string()))
}

/// One operation of a BulkResponse (RFC 7644 §3.7.3).
fn bulk_entry(r: &BulkResult) -> serde_json::Value {
    let mut entry = serde_json::Map::new();
    entry.insert("method".into(), json!(r.method));
    if let Some(b) = &r.bulk_id {
        entry.insert("bulkId".into(), json!(b));
    }
    match &r.outcome {
        Ok(s) => {
            entry.insert("status".into(), json!(status(*s).as_u16().to_string()));
            if let Some(l) = &r.location {
                entry.insert("location".into(), json!(l));
            }
            if let Some(v) = r.version {
                entry.insert("version".into(), json!(etag(v)));
            }
        }
        Err(f) => {
            let (status, body) = scim_failure_body(f);
            entry.insert("status".into(), json!(status.as_u16().to_string()));
            entry.insert("response".into(), body);
        }
    }
    serde_json::Value::Object(entry)
}

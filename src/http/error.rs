//! The one place where errors become HTTP statuses and bodies:
//!
//! - the admin API (and everything JSON that is not SCIM): `{"error": {"code", "message"}}`
//!   with the status of [`status_of`];
//! - SCIM: the RFC 7644 §3.12 error body with the status and `scimType` of [`scim_status`];
//! - SAML sign-in refusals: [`login_status`], rendered as a page or JSON by the SAML routes.
//!
//! Each mapping matches on the error's variant, never on its code or text.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::AppError;
use crate::saml::SamlRefusal;
use crate::scim::error::{ScimError, ERROR_URN};
use crate::service::saml_login::LoginError;
use crate::service::scim::ScimFailure;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `no_seat_left`, `email_taken`, `not_found`.
    pub code: String,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: &str, message: impl Into<String>) -> ErrorBody {
        ErrorBody { error: ErrorDetail { code: code.to_owned(), message: message.into() } }
    }
}

/// The status of an application error.
pub fn status_of(e: &AppError) -> StatusCode {
    match e {
        AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
        AppError::Unauthorized(_) | AppError::DelegationEnded(_) => StatusCode::UNAUTHORIZED,
        AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
        AppError::NotFound { .. } | AppError::NotFoundBecause { .. } => StatusCode::NOT_FOUND,
        AppError::Conflict { .. } | AppError::Taken { .. } => StatusCode::CONFLICT,
        AppError::Gone { .. } => StatusCode::GONE,
        AppError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
        AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        AppError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
        AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
    }
}

/// `Retry-After` (seconds) of every 503: the database is away (a restart, a failover) and
/// comes back on its own; clients and load balancers retry after this long.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

/// Adds `Retry-After` to a 503 answer.
pub fn retry_after_if_unavailable(resp: &mut actix_web::HttpResponseBuilder, status: StatusCode) {
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.insert_header(("Retry-After", UNAVAILABLE_RETRY_AFTER_SECS.to_string()));
    }
}

/// Logs what a client must not see (the details of a server fault).
fn log_internal(e: &AppError) {
    if let AppError::Internal(detail) = e {
        tracing::error!(error = %detail, "internal error");
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        status_of(self)
    }

    fn error_response(&self) -> HttpResponse {
        log_internal(self);
        let mut resp = HttpResponse::build(self.status_code());
        if matches!(self, AppError::Unauthorized(_) | AppError::DelegationEnded(_)) {
            resp.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let AppError::RateLimited { retry_after_secs } = self {
            resp.insert_header(("Retry-After", retry_after_secs.to_string()));
        }
        retry_after_if_unavailable(&mut resp, self.status_code());
        resp.json(ErrorBody::new(self.code(), self.public_message()))
    }
}

/// Status and `scimType` of a protocol error (RFC 7644 §3.12).
fn scim_error_status(e: &ScimError) -> StatusCode {
    match e {
        ScimError::Uniqueness(_) => StatusCode::CONFLICT,
        ScimError::Sensitive(_) => StatusCode::FORBIDDEN,
        ScimError::InvalidFilter(_)
        | ScimError::TooMany(_)
        | ScimError::Mutability(_)
        | ScimError::InvalidSyntax(_)
        | ScimError::InvalidPath(_)
        | ScimError::NoTarget(_)
        | ScimError::InvalidValue(_)
        | ScimError::InvalidVers(_) => StatusCode::BAD_REQUEST,
    }
}

/// Status and `scimType` of a failed SCIM operation.
pub fn scim_status(f: &ScimFailure) -> (StatusCode, Option<&'static str>) {
    match f {
        ScimFailure::Scim(e) => (scim_error_status(e), Some(e.scim_type())),
        ScimFailure::NotFound { .. } | ScimFailure::NoResourceType(_) => (StatusCode::NOT_FOUND, None),
        ScimFailure::VersionMismatch(_) => (StatusCode::PRECONDITION_FAILED, None),
        ScimFailure::TooManyOperations(_) => (StatusCode::PAYLOAD_TOO_LARGE, None),
        ScimFailure::UnresolvedReference(_) => (StatusCode::CONFLICT, None),
        ScimFailure::App(e) => match e {
            AppError::BadRequest { .. } => (StatusCode::BAD_REQUEST, Some("invalidValue")),
            AppError::Taken { .. } => (StatusCode::CONFLICT, Some("uniqueness")),
            // An expired invitation is gone for the admin API; for SCIM the resource is not there.
            AppError::Gone { .. } => (StatusCode::NOT_FOUND, None),
            other => (status_of(other), None),
        },
    }
}

/// The SCIM error body (RFC 7644 §3.12).
pub fn scim_error_body(status: StatusCode, scim_type: Option<&str>, detail: &str) -> Value {
    let mut v = json!({ "schemas": [ERROR_URN], "status": status.as_u16().to_string(), "detail": detail });
    if let (Some(t), Some(m)) = (scim_type, v.as_object_mut()) {
        m.insert("scimType".into(), json!(t));
    }
    v
}

/// Status and body of a failed SCIM operation (the body of a Bulk operation's `response`
/// too).
pub fn scim_failure_body(f: &ScimFailure) -> (StatusCode, Value) {
    if let ScimFailure::App(e) = f {
        log_internal(e);
    }
    let (status, scim_type) = scim_status(f);
    (status, scim_error_body(status, scim_type, &f.to_string()))
}

/// The status of a refused SAML sign-in: 400 for a post that is not even a SAML response,
/// 403 for an authentication that is refused, 404 without a configuration, 503 for a
/// configuration that cannot work; storage errors keep their status.
pub fn login_status(e: &LoginError) -> StatusCode {
    match e {
        LoginError::Refused(
            SamlRefusal::TooLarge { .. }
            | SamlRefusal::BadEncoding(_)
            | SamlRefusal::Malformed(_)
            | SamlRefusal::XmlDtdRefused,
        ) => StatusCode::BAD_REQUEST,
        LoginError::Refused(r) if r.is_configuration_error() => StatusCode::SERVICE_UNAVAILABLE,
        LoginError::Refused(_)
        | LoginError::Replayed
        | LoginError::RequestUnknown
        | LoginError::NoEmail(_)
        | LoginError::JitDisabled
        | LoginError::UserInactive => StatusCode::FORBIDDEN,
        LoginError::NotConfigured => StatusCode::NOT_FOUND,
        LoginError::App(e) => status_of(e),
    }
}

/// The message of a refused sign-in a client may see.
pub fn login_message(e: &LoginError) -> String {
    match e {
        LoginError::App(app) => {
            log_internal(app);
            app.public_message()
        }
        other => other.to_string(),
    }
}

/// JSON body errors (bad syntax, wrong types, too large) as our error shape, never a 500.
pub fn json_error_handler(err: actix_web::error::JsonPayloadError, _req: &actix_web::HttpRequest) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let app = match &err {
        J::OverflowKnownLength { limit, .. } => AppError::PayloadTooLarge { limit: *limit },
        J::Overflow { limit } => AppError::PayloadTooLarge { limit: *limit },
        J::ContentType => AppError::bad_request("invalid_content_type", "expected Content-Type: application/json"),
        J::Deserialize(e) => AppError::bad_request("invalid_json", format!("invalid JSON body: {e}")),
        other => AppError::bad_request("invalid_body", format!("cannot read the request body: {other}")),
    };
    app.into()
}

pub fn query_error_handler(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    AppError::bad_request("invalid_query", format!("invalid query string: {err}")).into()
}

pub fn path_error_handler(err: actix_web::error::PathError, _req: &actix_web::HttpRequest) -> actix_web::Error {
    AppError::bad_request("invalid_path", format!("invalid path: {err}")).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scim(f: ScimFailure) -> (u16, Option<&'static str>) {
        let (s, t) = scim_status(&f);
        (s.as_u16(), t)
    }

    #[test]
    fn scim_types_match_the_rfc_statuses() {
        let cases = [
            (ScimError::InvalidFilter(String::new()), "invalidFilter", 400),
            (ScimError::TooMany(String::new()), "tooMany", 400),
            (ScimError::Uniqueness(String::new()), "uniqueness", 409),
            (ScimError::Mutability(String::new()), "mutability", 400),
            (ScimError::InvalidSyntax(String::new()), "invalidSyntax", 400),
            (ScimError::InvalidPath(String::new()), "invalidPath", 400),
            (ScimError::NoTarget(String::new()), "noTarget", 400),
            (ScimError::InvalidValue(String::new()), "invalidValue", 400),
            (ScimError::InvalidVers(String::new()), "invalidVers", 400),
            (ScimError::Sensitive(String::new()), "sensitive", 403),
        ];
        for (err, ty, status) in cases {
            assert_eq!(err.scim_type(), ty);
            assert_eq!(scim(ScimFailure::Scim(err)), (status, Some(ty)));
        }
    }

    #[test]
    fn scim_error_body_has_the_rfc_shape() {
        let (status, body) = scim_failure_body(&ScimError::NoTarget("no member matched".into()).into());
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            json!({
                "schemas": [ERROR_URN],
                "status": "400",
                "scimType": "noTarget",
                "detail": "no member matched",
            })
        );
    }

    #[test]
    fn app_errors_become_scim_errors() {
        assert_eq!(scim(AppError::taken("user_name_taken", "taken").into()), (409, Some("uniqueness")));
        assert_eq!(scim(AppError::conflict("owner_role", "no").into()), (409, None));
        assert_eq!(scim(AppError::bad_request("invalid_email", "bad").into()), (400, Some("invalidValue")));
        let (_, body) = scim_failure_body(&AppError::not_found("user").into());
        assert_eq!(body, json!({"schemas": [ERROR_URN], "status": "404", "detail": "user not found"}));
        let (status, body) = scim_failure_body(&AppError::Internal("secret".into()).into());
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("secret"));
    }

    #[test]
    fn operation_failures_have_their_statuses() {
        assert_eq!(scim(ScimFailure::VersionMismatch(String::new())), (412, None));
        assert_eq!(scim(ScimFailure::TooManyOperations(String::new())), (413, None));
        assert_eq!(scim(ScimFailure::UnresolvedReference(String::new())), (409, None));
        assert_eq!(scim(ScimFailure::NotFound { what: "User", id: "x".into() }), (404, None));
        assert_eq!(status_of(&AppError::taken("email_taken", "x")), StatusCode::CONFLICT);
        assert_eq!(status_of(&AppError::Unavailable("x".into())), StatusCode::SERVICE_UNAVAILABLE);
    }
}

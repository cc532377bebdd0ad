//! The one place where errors become HTTP responses for the admin API:
//! `{"error": {"code": "...", "message": "..."}}` with the status of [`AppError::status`].

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::error::AppError;

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

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::Internal(detail) = self {
            tracing::error!(error = %detail, "internal error");
        }
        let body = ErrorBody { error: ErrorDetail { code: self.code().to_owned(), message: self.public_message() } };
        let mut resp = HttpResponse::build(self.status_code());
        if matches!(self, AppError::Unauthorized(_)) {
            resp.insert_header(("WWW-Authenticate", "Bearer"));
        }
        resp.json(body)
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

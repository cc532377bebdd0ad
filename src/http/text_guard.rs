//! One text rule for every backend: no NUL character reaches storage through the admin API
//! (PostgreSQL cannot store one; SQLite would). Checked once, at the edge, for the URL (path
//! and query, `%00`) and JSON bodies (`\u0000`), before any handler runs; the answer is the
//! admin API's 400 `invalid_text`. SCIM checks its bodies and filters itself (its errors are
//! SCIM errors); CSV rows are checked by their readers.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::HttpMessage;

use crate::error::AppError;

fn invalid(where_: &str) -> AppError {
    AppError::bad_request("invalid_text", format!("the {where_} contains a NUL character, which no field may hold"))
}

/// `%00` anywhere in a URL (path or query).
pub fn url_has_nul(uri: &str) -> bool {
    uri.as_bytes().windows(3).any(|w| w == b"%00")
}

/// A `\u0000` escape in JSON text (a backslash that is itself escaped does not count).
pub fn json_has_nul(body: &[u8]) -> bool {
    let mut backslashes = 0usize;
    for (i, b) in body.iter().enumerate() {
        if *b == b'\\' {
            backslashes += 1;
            continue;
        }
        if *b == b'u' && backslashes % 2 == 1 && body.get(i + 1..i + 5).is_some_and(|h| h == b"0000") {
            return true;
        }
        backslashes = 0;
    }
    false
}

pub async fn refuse_nul(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.path().starts_with("/api/") {
        if url_has_nul(&req.uri().to_string()) {
            return Err(invalid("request URL").into());
        }
        let json = req.content_type().ends_with("json");
        if json {
            let body: Bytes = req.extract::<Bytes>().await.map_err(|e| {
                if e.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::PayloadTooLarge { limit: super::JSON_LIMIT }
                } else {
                    AppError::bad_request("invalid_body", format!("cannot read the request body: {e}"))
                }
            })?;
            if json_has_nul(&body) {
                return Err(invalid("request body").into());
            }
            req.set_payload(actix_web::dev::Payload::from(body));
        }
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nul_escapes_but_not_escaped_backslashes() {
        assert!(json_has_nul(br#"{"name": "a\u0000b"}"#));
        assert!(!json_has_nul(br#"{"name": "a\\u0000b"}"#), "an escaped backslash then u0000 is text");
        assert!(json_has_nul(br#"{"name": "a\\\u0000"}"#));
        assert!(!json_has_nul(br#"{"name": "\u00e9"}"#));
        assert!(url_has_nul("/api/v1/users?email=%00"));
        assert!(!url_has_nul("/api/v1/users?email=a%40b"));
    }
}

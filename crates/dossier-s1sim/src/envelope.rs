//! Response envelopes and headers as the real tenant sends them.
//!
//! Errors: `{"errors":[{"code":<HTTP×10⁴+sub>,"detail":<string|null>,"title":<string>}]}`
//! (samples `issue_error_*.json`). Every response carries `Content-Type: application/json`,
//! an `X-RQID` request id, `Server: nginx` and `Cache-Control: no-store`, like the Swimlane
//! captures.

use std::io::Write;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::json;

/// Returns a response with the tenant's usual headers.
pub(crate) fn with_headers(status: StatusCode, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::SERVER, HeaderValue::from_static("nginx"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000; includeSubDomains"),
    );
    if let Ok(rqid) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-rqid", rqid);
    }
    response
}

/// Returns a JSON response, gzipped when `gzip` (the client accepts it and the tenant is
/// configured to).
pub(crate) fn json_bytes(status: StatusCode, body: Vec<u8>, gzip: bool) -> Response {
    if gzip {
        let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 6), Compression::fast());
        if encoder.write_all(&body).is_ok() {
            if let Ok(compressed) = encoder.finish() {
                let mut response = with_headers(status, Body::from(compressed));
                response
                    .headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                return response;
            }
        }
    }
    with_headers(status, Body::from(body))
}

/// Returns a JSON response for a `serde_json::Value`.
pub(crate) fn json_value(status: StatusCode, value: &serde_json::Value, gzip: bool) -> Response {
    json_bytes(status, value.to_string().into_bytes(), gzip)
}

/// Returns the body of an errors envelope.
pub(crate) fn error_body(code: u32, title: &str, detail: Option<&str>) -> Vec<u8> {
    json!({"errors": [{"code": code, "detail": detail, "title": title}]})
        .to_string()
        .into_bytes()
}

/// Returns an errors-envelope response.
pub(crate) fn error_response(
    status: StatusCode,
    code: u32,
    title: &str,
    detail: Option<&str>,
) -> Response {
    with_headers(status, Body::from(error_body(code, title, detail)))
}

/// 401 `4010010` "Authentication Failed" with a null detail (bad, expired or revoked token).
pub(crate) fn unauthorized() -> Response {
    error_response(
        StatusCode::UNAUTHORIZED,
        4_010_010,
        "Authentication Failed",
        None,
    )
}

/// 403 `4030010` "Insufficient permissions".
pub(crate) fn forbidden() -> Response {
    error_response(
        StatusCode::FORBIDDEN,
        4_030_010,
        "Insufficient permissions",
        Some("User does not have required permissions"),
    )
}

/// 400 `4000010` "Validation Error" naming the field and the reason.
pub(crate) fn validation(detail: &str) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        4_000_010,
        "Validation Error",
        Some(detail),
    )
}

/// 404 `4040010`.
pub(crate) fn not_found(detail: &str) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        4_040_010,
        "Resource not found",
        Some(detail),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_match_the_real_samples() {
        let body = error_body(4_010_010, "Authentication Failed", None);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"errors":[{"code":4010010,"detail":null,"title":"Authentication Failed"}]}"#
        );
    }
}

//! The Falcon API's response envelope (PRODUCERS.md §2.6) and its real error bodies (the
//! samples in the source crate's `tests/samples/`, PRODUCERS.md §2.8).

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

/// `meta` of an answer; `extra` adds `pagination` or `writes`.
pub(crate) fn meta(powered_by: &str, extra: Value) -> Value {
    let mut meta = json!({
        "query_time": 0.017_724_698,
        "powered_by": powered_by,
        "trace_id": "a21557a2-abd0-4363-9293-727c38084b3b",
    });
    if let (Some(m), Value::Object(more)) = (meta.as_object_mut(), extra) {
        m.extend(more);
    }
    meta
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    text_response(status, body.to_string())
}

/// A JSON answer already written as text.
pub(crate) fn text_response(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An error answer: `{"meta","errors":[{"code","message"}]}`.
pub(crate) fn error(status: StatusCode, powered_by: &str, message: &str) -> Response {
    let body = json!({
        "meta": meta(powered_by, json!({})),
        "errors": [{"code": status.as_u16(), "message": message}],
    });
    json_response(status, &body)
}

/// 403 from `/oauth2/token` for an unknown client or a wrong secret (kibana#235139).
pub(crate) fn token_client_auth_failed() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "csam",
        "Failed to issue access token - Client authentication failed (e.g., unknown client, \
         no client authentication included, or unsupported authentication method)",
    )
}

/// 400 from `/oauth2/token` for a request it cannot read (`ansible_collection_falcon#173`).
pub(crate) fn token_failed_to_generate(client_id: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "csam",
        &format!("Failed to generate access token for clientID={client_id}."),
    )
}

/// 401 for a missing, expired or revoked bearer token (falconpy#130), with the per-IP limit
/// of such requests.
pub(crate) fn invalid_bearer_token() -> Response {
    let mut r = error(
        StatusCode::UNAUTHORIZED,
        "crowdstrike-api-gateway",
        "access denied, invalid bearer token",
    );
    r.headers_mut()
        .insert("x-ratelimit-limit", HeaderValue::from(15u32));
    r.headers_mut()
        .insert("x-ratelimit-remaining", HeaderValue::from(14u32));
    r
}

/// 403 for a valid token without the scope (`ansible_collection_falcon#154`).
pub(crate) fn authorization_failed() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "crowdstrike-api-gateway",
        "access denied, authorization failed",
    )
}

/// 400 for `offset + limit > 10000` (rusty-falcon#126).
pub(crate) fn offset_limit(offset: u64, limit: u64) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "detectsapi",
        &format!(
            "offset {offset} and limit {limit} are invalid; offset + limit must be less than or \
             equal to 10000"
        ),
    )
}

//! Entra ID's client-credentials grant and Graph's bearer check, with their error bodies
//! (PRODUCERS.md §1.2, §1.8; the samples `entra_token_error_*.json` and
//! `graph_error_403_missing_roles.json`).

use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::config::AppSpec;

/// A token the emulator issued.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub roles: Vec<String>,
    pub expires_at: DateTime<Utc>,
}

/// Entra's error body: `{"error","error_description","error_codes",…}`, the description
/// ending in trace and correlation ids as the samples show.
pub(crate) fn entra_error(status: StatusCode, error: &str, code: u64, text: &str) -> Response {
    let now = Utc::now();
    let stamp = now.format("%Y-%m-%d %H:%M:%SZ").to_string();
    let (trace, correlation) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {text}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {stamp}"
        ),
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace.to_string(),
        "correlation_id": correlation.to_string(),
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (status, Json(body)).into_response()
}

/// Graph's error body: `{"error":{"code","message","innerError":{…}}}`.
pub(crate) fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = json!({"error": {
        "code": code,
        "message": message,
        "innerError": {
            "date": Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
            "request-id": request_id,
            "client-request-id": request_id,
        },
    }});
    (status, Json(body)).into_response()
}

/// 401 as Graph sends it, with the `WWW-Authenticate` challenge.
pub(crate) fn unauthenticated(message: &str) -> Response {
    let mut r = graph_error(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        message,
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"\", error=\"invalid_token\""),
    );
    r
}

/// 403 "Missing application roles", naming the roles the call needs and those the token has
/// (the sample's wording).
pub(crate) fn missing_roles(required: &[&str], held: &[String]) -> Response {
    graph_error(
        StatusCode::FORBIDDEN,
        "Forbidden",
        &format!(
            "Missing application roles. API required roles: {}, application roles: {}.",
            required.join(","),
            held.join(",")
        ),
    )
}

/// The outcome of a token request.
pub(crate) enum Grant {
    Issued { roles: Vec<String> },
    Refused(Response),
}

/// Checks a client-credentials request for `tenant` against the known apps.
pub(crate) fn grant(
    tenant_id: &str,
    path_tenant: &str,
    form: &[(String, String)],
    apps: &[AppSpec],
) -> Grant {
    let field = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let refuse =
        |status, error, code, text: &str| Grant::Refused(entra_error(status, error, code, text));
    if !path_tenant.eq_ignore_ascii_case(tenant_id) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90_002,
            &format!("Tenant '{path_tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
        );
    }
    if field("grant_type") != Some("client_credentials") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70_003,
            "The app requested an unsupported grant type.",
        );
    }
    let client_id = field("client_id").unwrap_or_default();
    let Some(app) = apps
        .iter()
        .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_016,
            &format!("Application with identifier '{client_id}' was not found in the directory '{tenant_id}'. This can happen if the application has not been installed by the administrator of the tenant."),
        );
    };
    let Some(secret) = field("client_secret").filter(|s| !s.is_empty()) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7_000_218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    };
    if secret != app.secret {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7_000_215,
            &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.", app.client_id),
        );
    }
    if app.secret_expired {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7_000_222,
            "The provided client secret keys are expired. Visit the Azure Portal to create new keys for your app, or consider using certificate credentials for added security: https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials",
        );
    }
    if !field("scope").is_some_and(|s| s.ends_with("/.default")) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1_002_012,
            "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
        );
    }
    Grant::Issued {
        roles: app.roles.clone(),
    }
}

/// The success body of the token endpoint.
pub(crate) fn token_body(token: &str, lifetime: Duration) -> Value {
    json!({
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
        "ext_expires_in": lifetime.as_secs(),
        "access_token": token,
    })
}

/// The bearer token of a request.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

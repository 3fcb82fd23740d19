//! The HTTP API: Entra's token endpoint and Graph's `alerts_v2`.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{json, Map, Value};

use crate::auth::{
    bearer, grant, graph_error, missing_roles, token_body, unauthenticated, Grant, Issued,
};
use crate::catalog::EVOLVED_SOURCES;
use crate::config::{READ_ROLE, WRITE_ROLE};
use crate::faults::Fault;
use crate::odata::ListQuery;
use crate::store::Stored;
use crate::tenant::{read, Tenant, Write};
use crate::ticks;

const ALERTS: &str = "/v1.0/security/alerts_v2";

/// Returns the router over `tenant`.
pub(crate) fn router(tenant: Tenant) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route(ALERTS, get(list))
        .route(&format!("{ALERTS}/{{id}}"), get(one).patch(update))
        .fallback(|| async {
            graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Resource not found for the segment.",
            )
        })
        .with_state(tenant)
}

async fn token(
    State(tenant): State<Tenant>,
    Path(path_tenant): Path<String>,
    body: Bytes,
) -> Response {
    tenant.count_token_request();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    match grant(tenant.tenant_id(), &path_tenant, &form, &tenant.apps()) {
        Grant::Refused(response) => response,
        Grant::Issued { roles } => {
            let token = tenant.issue(roles);
            Json(token_body(&token, tenant.inner.token_lifetime)).into_response()
        }
    }
}

/// Checks the bearer token and the roles a call needs.
#[expect(
    clippy::result_large_err,
    reason = "the error is the answer itself, on the cold path"
)]
fn authorize(tenant: &Tenant, headers: &HeaderMap, needs: &[&str]) -> Result<Issued, Response> {
    let Some(token) = bearer(headers).filter(|t| !t.is_empty()) else {
        return Err(unauthenticated("Access token is empty."));
    };
    let Some(issued) = tenant.issued(token) else {
        return Err(unauthenticated(
            "Access token validation failure. Invalid audience.",
        ));
    };
    if issued.expires_at <= Utc::now() {
        return Err(unauthenticated(
            "Lifetime validation failed, the token is expired.",
        ));
    }
    if !issued.roles.iter().any(|r| needs.contains(&r.as_str())) {
        let required: Vec<&str> = needs.to_vec();
        return Err(missing_roles(&required, &issued.roles));
    }
    if !tenant.throttle() {
        let mut r = graph_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests. Please retry after the time specified in Retry-After.",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return Err(r);
    }
    Ok(issued)
}

/// Whether newer enum members may be sent as they are (§1.3).
fn wants_unknown_members(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',').any(|p| {
                p.trim()
                    .eq_ignore_ascii_case("include-unknown-enum-members")
            })
        })
}

/// An alert as this request sees it, as JSON text.
fn shown(alert: &Stored, unknown_members: bool) -> std::sync::Arc<str> {
    let source = alert.field("detectionSource").unwrap_or_default();
    if unknown_members || !EVOLVED_SOURCES.contains(&source) {
        return std::sync::Arc::clone(&alert.text);
    }
    let mut value = alert.value.clone();
    value["detectionSource"] = json!("unknownFutureValue");
    value.to_string().into()
}

async fn list(
    State(tenant): State<Tenant>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    tenant.count_list_request();
    let fault = tenant.pop_fault();
    if let Some(response) = fault.as_ref().and_then(Fault::replacement) {
        return response;
    }
    if let Some(Fault::Slow(delay)) = &fault {
        tokio::time::sleep(*delay).await;
    }
    if let Err(response) = authorize(&tenant, &headers, &[READ_ROLE, WRITE_ROLE]) {
        return response;
    }
    let pairs = match query {
        Ok(Query(pairs)) => pairs,
        Err(e) => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string()),
    };
    let q = match ListQuery::parse(&pairs) {
        Ok(q) => q,
        Err(message) => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", &message),
    };
    let unknown_members = wants_unknown_members(&headers);
    let body = {
        let store = read(&tenant.inner.store);
        let listing = q.run(&store);
        let mut body = Map::new();
        body.insert(
            "@odata.context".into(),
            json!("https://graph.microsoft.com/v1.0/$metadata#security/alerts_v2"),
        );
        if let Some(total) = listing.total {
            body.insert("@odata.count".into(), json!(total));
        }
        if listing.more {
            body.insert(
                "@odata.nextLink".into(),
                json!(next_link(&headers, &pairs, &q)),
            );
        }
        // The envelope without its list, then the alerts' own text spliced in.
        body.insert("value".into(), Value::Array(Vec::new()));
        let envelope = serde_json::to_string(&Value::Object(body)).unwrap_or_default();
        let texts: Vec<std::sync::Arc<str>> = listing
            .items
            .iter()
            .map(|a| shown(a, unknown_members))
            .collect();
        dossier_simkit::splice_list(&envelope, "\"value\":[]", &texts).into_bytes()
    };
    let body = tenant.inner.rewrites.apply(body);
    let body = match &fault {
        Some(f) => f.alter(body),
        None => body,
    };
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The next page's URL: the same query, `$skip` replaced by a `$skiptoken`.
fn next_link(headers: &HeaderMap, pairs: &[(String, String)], q: &ListQuery) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("graph.microsoft.com");
    // Graph writes the option names as they are (`$skiptoken=`), values encoded.
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let token = q.next_token();
    let query: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k != "$skip" && k != "$skiptoken")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([("$skiptoken", token.as_str())])
        .map(|(k, v)| format!("{}={}", encode(k).replace("%24", "$"), encode(v)))
        .collect();
    format!("https://{host}{ALERTS}?{}", query.join("&"))
}

async fn one(State(tenant): State<Tenant>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(response) = authorize(&tenant, &headers, &[READ_ROLE, WRITE_ROLE]) {
        return response;
    }
    let store = read(&tenant.inner.store);
    match store.by_id.get(&id) {
        Some(alert) => (
            [(header::CONTENT_TYPE, "application/json")],
            shown(alert, wants_unknown_members(&headers)).to_string(),
        )
            .into_response(),
        None => not_found(&id),
    }
}

fn not_found(id: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("Alert '{id}' was not found."),
    )
}

/// The values Graph accepts for each updatable field (§1.3).
const UPDATABLE: &[(&str, &[&str])] = &[
    ("status", &["new", "inProgress", "resolved"]),
    (
        "classification",
        &[
            "unknown",
            "falsePositive",
            "truePositive",
            "informationalExpectedActivity",
        ],
    ),
    (
        "determination",
        &[
            "unknown",
            "apt",
            "malware",
            "securityPersonnel",
            "securityTesting",
            "unwantedSoftware",
            "other",
            "multiStagedAttack",
            "compromisedUser",
            "phishing",
            "maliciousUserActivity",
            "clean",
            "insufficientData",
            "confirmedUserActivity",
            "lineOfBusinessApplication",
        ],
    ),
];

/// Checks an update body; the error is Graph's 400 message.
fn check_update(body: &Bytes) -> Result<Map<String, Value>, String> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err("The request body is not a JSON object.".into());
    };
    for (key, value) in &fields {
        if key == "assignedTo" {
            if !(value.is_string() || value.is_null()) {
                return Err("Invalid value for property 'assignedTo'.".into());
            }
            continue;
        }
        let Some((_, allowed)) = UPDATABLE.iter().find(|(k, _)| k == key) else {
            return Err(format!(
                "Property '{key}' does not exist or cannot be updated."
            ));
        };
        if !value.as_str().is_some_and(|v| allowed.contains(&v)) {
            return Err(format!("Invalid value for property '{key}'."));
        }
    }
    Ok(fields)
}

async fn update(
    State(tenant): State<Tenant>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(response) = authorize(&tenant, &headers, &[WRITE_ROLE]) {
        return response;
    }
    let fields = match check_update(&body) {
        Ok(f) => f,
        Err(message) => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", &message),
    };
    let Some(mut alert) = tenant.alert(&id) else {
        return not_found(&id);
    };
    let now = ticks::format_ticks(Utc::now());
    for (key, value) in &fields {
        alert[key] = value.clone();
    }
    if fields.get("status").and_then(Value::as_str) == Some("resolved") {
        alert["resolvedDateTime"] = json!(now);
    }
    alert["lastUpdateDateTime"] = json!(now);
    if tenant.put_alert(&alert).is_err() {
        return graph_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "update failed",
        );
    }
    tenant.record_write(Write {
        id,
        body: Value::Object(fields),
    });
    Json(alert).into_response()
}

//! The HTTP API under `/web/api/v2.1`.

#![allow(
    clippy::result_large_err,
    reason = "handlers return responses; rejections are the cold path"
)]

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use serde_json::{json, Value};

use crate::auth::{bearer_token, check, Caller};
use crate::cursor;
use crate::envelope::{self, error_body, json_bytes, json_value};
use crate::faults::{Fault, Plan};
use crate::page;
use crate::query::{SortKey, ThreatQuery};
use crate::tenant::{read, Tenant};
use crate::time::{format_micros, micros};
use crate::{timeline, writes};

/// Returns the API router over `tenant`.
pub(crate) fn router(tenant: Tenant) -> Router {
    let api = Router::new()
        .route("/threats", get(list_threats))
        .route("/threats/analyst-verdict", post(writes::analyst_verdict))
        .route("/threats/incident", post(writes::incident))
        .route("/threats/mitigate/{action}", post(writes::mitigate))
        .route("/threats/add-to-blacklist", post(writes::add_to_blacklist))
        .route("/threats/notes", post(writes::add_notes))
        .route("/agents/actions/{action}", post(writes::agents_action))
        .route("/threats/{id}/timeline", get(timeline::timeline))
        .route("/threats/{id}/notes", get(timeline::notes))
        .route("/system/status", get(system_status))
        .route("/system/info", get(system_info))
        .route("/users/api-token-details", post(token_details));
    Router::new()
        .nest("/web/api/v2.1", api)
        .fallback(|| async { envelope::not_found("The requested resource does not exist") })
        .with_state(tenant)
}

pub(crate) fn wants_gzip(tenant: &Tenant, headers: &HeaderMap) -> bool {
    tenant.inner.gzip
        && headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")))
}

/// Authenticates the caller from the `Authorization` header.
pub(crate) fn authenticate(tenant: &Tenant, headers: &HeaderMap) -> Result<Caller, Response> {
    let token = bearer_token(headers).ok_or_else(envelope::unauthorized)?;
    check(&read(&tenant.inner.tokens), token, Utc::now()).map_err(|_| envelope::unauthorized())
}

/// The real answer of `GET /threats`, before faults.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    retry_after: Option<u64>,
}

impl Answer {
    fn error(status: StatusCode, code: u32, title: &str, detail: Option<&str>) -> Self {
        Self {
            status,
            body: error_body(code, title, detail),
            retry_after: None,
        }
    }

    fn validation(detail: &str) -> Self {
        Self::error(
            StatusCode::BAD_REQUEST,
            4_000_010,
            "Validation Error",
            Some(detail),
        )
    }
}

async fn list_threats(
    State(tenant): State<Tenant>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    tenant.count_request();
    let fault = match Fault::plan(tenant.pop_fault()) {
        Plan::Replace(response) => return response,
        Plan::Alter(fault) => Some(fault),
        Plan::Normal => None,
    };
    if let Some(Fault::Slow(delay)) = &fault {
        tokio::time::sleep(*delay).await;
    }
    let mut answer = match query {
        Ok(Query(pairs)) => threats_answer(&tenant, &headers, &pairs),
        Err(rejection) => Answer::validation(&format!("query: {rejection}")),
    };
    answer.body = tenant.inner.rewrites.apply(answer.body);
    match fault {
        Some(fault) if !matches!(fault, Fault::Slow(_)) => fault.alter(answer.status, answer.body),
        _ => {
            let mut response =
                json_bytes(answer.status, answer.body, wants_gzip(&tenant, &headers));
            if let Some(secs) = answer.retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
    }
}

fn threats_answer(tenant: &Tenant, headers: &HeaderMap, pairs: &[(String, String)]) -> Answer {
    let unauthorized = || {
        Answer::error(
            StatusCode::UNAUTHORIZED,
            4_010_010,
            "Authentication Failed",
            None,
        )
    };
    let forbidden = || {
        Answer::error(
            StatusCode::FORBIDDEN,
            4_030_010,
            "Insufficient permissions",
            Some("User does not have required permissions"),
        )
    };
    let Some(token) = bearer_token(headers) else {
        return unauthorized();
    };
    let Ok(caller) = check(&read(&tenant.inner.tokens), token, Utc::now()) else {
        return unauthorized();
    };
    if !caller.can_view_threats {
        return forbidden();
    }
    if let Err(secs) = tenant.throttle(&caller.token) {
        let mut answer = Answer::error(
            StatusCode::TOO_MANY_REQUESTS,
            4_290_010,
            "Too Many Requests",
            None,
        );
        answer.retry_after = Some(secs);
        return answer;
    }
    let q = match ThreatQuery::parse(pairs) {
        Ok(q) => q,
        Err(detail) => return Answer::validation(&detail),
    };
    // Asking for sites outside the token's scope is a permission error (pitfall 15).
    if let (Some(asked), Some(allowed)) = (&q.site_ids, &caller.sites) {
        if !asked.is_subset(allowed) {
            return forbidden();
        }
    }
    let scope = caller.sites.as_ref();
    let time_sort = matches!(q.sort, SortKey::CreatedAt | SortKey::UpdatedAt);
    let after = match &q.cursor {
        Some(c) => match cursor::decode(c, &q.fingerprint, &q.sort_name, time_sort) {
            Ok(p) => Some(p),
            Err(detail) => return Answer::validation(&detail),
        },
        None => None,
    };
    let store = read(&tenant.inner.store);
    let total = (!q.skip_count).then(|| {
        let mut key = q.fingerprint.clone();
        if let Some(sites) = scope {
            let mut sites: Vec<&String> = sites.iter().collect();
            sites.sort();
            for s in sites {
                key.push('|');
                key.push_str(s);
            }
        }
        tenant.cached_count(key, store.version, || page::count(&store, &q, scope))
    });
    let body = if q.count_only {
        page::body(&[], None, total)
    } else {
        let page = page::run(&store, &q, after.as_ref(), scope);
        tenant.count_served(page.items.len());
        let next = page
            .next
            .map(|p| cursor::encode(&q.fingerprint, &q.sort_name, &p));
        page::body(&page.items, next.as_deref(), total)
    };
    Answer {
        status: StatusCode::OK,
        body,
        retry_after: None,
    }
}

async fn system_status(State(tenant): State<Tenant>, headers: HeaderMap) -> Response {
    json_value(
        StatusCode::OK,
        &json!({"data": {"health": "ok"}}),
        wants_gzip(&tenant, &headers),
    )
}

async fn system_info(State(tenant): State<Tenant>, headers: HeaderMap) -> Response {
    if let Err(response) = authenticate(&tenant, &headers) {
        return response;
    }
    let info = json!({"data": {
        "build": "112", "latestAgentVersion": "24.2.2.20", "patch": "2",
        "release": "Z SP2", "version": "Z",
    }});
    json_value(StatusCode::OK, &info, wants_gzip(&tenant, &headers))
}

pub(crate) fn parse_body(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body)
        .map_err(|e| envelope::validation(&format!("body: Invalid JSON: {e}")))
}

async fn token_details(State(tenant): State<Tenant>, headers: HeaderMap, body: Bytes) -> Response {
    tenant.arrived(crate::tenant::TOKEN_DETAILS);
    if let Err(response) = authenticate(&tenant, &headers) {
        return response;
    }
    let body = match parse_body(&body) {
        Ok(v) => v,
        Err(response) => return response,
    };
    // The Go SDK names the field `token`.
    let data = &body["data"];
    let Some(token) = data["apiToken"].as_str().or_else(|| data["token"].as_str()) else {
        return envelope::validation("data.apiToken: Missing data for required field.");
    };
    let Ok(details) = check(&read(&tenant.inner.tokens), token, Utc::now()) else {
        return envelope::unauthorized();
    };
    let expires = details.expires_at.map(|t| format_micros(micros(t)));
    let created = format_micros(micros(details.created_at));
    let reply = json!({"data": {"createdAt": created, "expiresAt": expires}});
    json_value(StatusCode::OK, &reply, wants_gzip(&tenant, &headers))
}

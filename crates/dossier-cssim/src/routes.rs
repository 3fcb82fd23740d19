//! The HTTP API: `POST /oauth2/token`, `GET /alerts/queries/alerts/v2`,
//! `POST /alerts/entities/alerts/v2`, `PATCH /alerts/entities/alerts/v3`, and the retired
//! `/detects/*` (404).

#![allow(
    clippy::result_large_err,
    reason = "handlers return responses; rejections are the cold path"
)]

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{any, get, patch, post};
use axum::Router;
use chrono::Utc;
use rand::Rng;
use serde_json::{json, Value};

use crate::config::ClientSpec;
use crate::envelope::{self, error, json_response, meta};
use crate::faults::Fault;
use crate::fql::Filter;
use crate::tenant::{lock, Tenant};

/// The query endpoints' ceiling, `offset + limit` (PRODUCERS.md §2.1).
const WINDOW: u64 = 10_000;
/// The most composite ids one entities or update call takes (§2.1, [I16]).
const MAX_IDS: usize = 1000;
/// The real per-CID limit, sent in `X-Ratelimit-Limit` when no limit is configured (§2.5).
const REAL_LIMIT: u32 = 6000;

/// Returns the API router over `tenant`.
pub(crate) fn router(tenant: Tenant) -> Router {
    Router::new()
        .route("/oauth2/token", post(token))
        .route("/alerts/queries/alerts/v2", get(query_alerts))
        .route("/alerts/entities/alerts/v2", post(get_alerts))
        .route("/alerts/entities/alerts/v3", patch(update_alerts))
        .route("/detects/{*rest}", any(retired))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "crowdstrike-api-gateway",
                "Not Found",
            )
        })
        .with_state(tenant)
}

async fn retired() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "crowdstrike-api-gateway",
        "This endpoint has been decommissioned",
    )
}

async fn token(State(tenant): State<Tenant>, body: Bytes) -> Response {
    tenant.inner.token_requests.fetch_add(1, Ordering::SeqCst);
    let form: HashMap<String, String> = url_form(&body);
    let client_id = form
        .get("client_id")
        .map(String::as_str)
        .unwrap_or_default();
    let Some(secret) = form.get("client_secret").filter(|_| !client_id.is_empty()) else {
        return envelope::token_failed_to_generate(client_id);
    };
    let spec = lock(&tenant.inner.clients).get(client_id).cloned();
    let Some(spec) = spec.filter(|s| s.client_secret == *secret) else {
        return envelope::token_client_auth_failed();
    };
    if let Some(member) = form.get("member_cid") {
        if !spec
            .member_cids
            .iter()
            .any(|m| m.eq_ignore_ascii_case(member))
        {
            return envelope::token_failed_to_generate(client_id);
        }
    }
    let n = tenant.inner.token_counter.fetch_add(1, Ordering::SeqCst);
    let token = format!("cssim.{n:x}.{:032x}", rand::thread_rng().gen::<u128>());
    let ttl = tenant.inner.token_ttl_secs;
    let expires = Utc::now() + chrono::Duration::seconds(i64::try_from(ttl).unwrap_or(i64::MAX));
    lock(&tenant.inner.tokens).insert(token.clone(), (spec.client_id.clone(), expires));
    let body = json!({"access_token": token, "token_type": "bearer", "expires_in": ttl});
    let mut response = json_response(StatusCode::CREATED, &body);
    if let Ok(region) = HeaderValue::from_str(&tenant.inner.region) {
        response.headers_mut().insert("x-cs-region", region);
    }
    response
}

/// Reads an `application/x-www-form-urlencoded` body.
fn url_form(body: &[u8]) -> HashMap<String, String> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'%', Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// What an alert endpoint does before its own work: the queued fault, the bearer token, the
/// scope and the rate limit. `Ok` carries the caller and the rate-limit headers to send.
async fn gate(
    tenant: &Tenant,
    headers: &HeaderMap,
    write: bool,
) -> Result<(ClientSpec, (u32, u32)), Response> {
    match tenant.pop_fault() {
        Some(Fault::Slow(d)) => tokio::time::sleep(d).await,
        Some(fault) => return Err(fault_response(fault)),
        None => {}
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned())
        .ok_or_else(envelope::invalid_bearer_token)?;
    let client_id = match lock(&tenant.inner.tokens).get(&token) {
        Some((client, expires)) if *expires > Utc::now() => client.clone(),
        _ => return Err(envelope::invalid_bearer_token()),
    };
    let spec = lock(&tenant.inner.clients)
        .get(&client_id)
        .cloned()
        .ok_or_else(envelope::invalid_bearer_token)?;
    if !(spec.alerts_read && (!write || spec.alerts_write)) {
        return Err(envelope::authorization_failed());
    }
    let budget = rate(tenant)?;
    Ok((spec, budget))
}

/// Counts a request against the configured per-minute limit: `(limit, remaining)`, or a 429.
fn rate(tenant: &Tenant) -> Result<(u32, u32), Response> {
    let Some(limit) = tenant.inner.rate_limit else {
        return Ok((REAL_LIMIT, REAL_LIMIT - 1));
    };
    let now = Utc::now().timestamp();
    let minute = now - now.rem_euclid(60);
    let mut state = lock(&tenant.inner.minute);
    if state.0 != minute {
        *state = (minute, 0);
    }
    if state.1 >= limit {
        return Err(rate_limited(limit, minute + 60));
    }
    state.1 += 1;
    Ok((limit, limit - state.1))
}

fn rate_limited(limit: u32, retry_at: i64) -> Response {
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        "crowdstrike-api-gateway",
        "API rate limit exceeded.",
    );
    let h = r.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(0u32));
    h.insert("x-ratelimit-retryafter", HeaderValue::from(retry_at));
    r
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::RateLimited { retry_after_secs } => rate_limited(
            REAL_LIMIT,
            Utc::now().timestamp() + i64::try_from(retry_after_secs).unwrap_or(i64::MAX / 2),
        ),
        Fault::ServerError => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "crowdstrike-api-gateway",
            "Internal Server Error",
        ),
        Fault::Unauthorized => envelope::invalid_bearer_token(),
        Fault::Forbidden => envelope::authorization_failed(),
        Fault::Garbage => {
            let mut r = Response::new(axum::body::Body::from(
                "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            ));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            r
        }
        Fault::Slow(_) => error(StatusCode::OK, "crowdstrike-api-gateway", "slow"),
    }
}

fn with_budget(mut r: Response, (limit, remaining): (u32, u32)) -> Response {
    let h = r.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    if remaining == 0 {
        let now = Utc::now().timestamp();
        h.insert(
            "x-ratelimit-retryafter",
            HeaderValue::from(now - now.rem_euclid(60) + 60),
        );
    }
    r
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "detectsapi", message)
}

async fn query_alerts(
    State(tenant): State<Tenant>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    tenant.inner.query_requests.fetch_add(1, Ordering::SeqCst);
    let budget = match gate(&tenant, &headers, false).await {
        Ok((_, budget)) => budget,
        Err(r) => return r,
    };
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let number = |name: &str, default: u64| -> Result<u64, Response> {
        param(name).map_or(Ok(default), |v| {
            v.trim()
                .parse()
                .map_err(|_| bad_request(&format!("{name}: {v:?} is not a number")))
        })
    };
    let (limit, offset) = match (number("limit", 100), number("offset", 0)) {
        (Ok(l), Ok(o)) => (l, o),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if limit == 0 || offset + limit > WINDOW {
        return envelope::offset_limit(offset, limit);
    }
    if !matches!(
        param("sort"),
        None | Some("updated_timestamp|asc" | "updated_timestamp.asc")
    ) {
        return bad_request("Invalid sort: only updated_timestamp|asc is emulated");
    }
    let filter = match Filter::parse(param("filter").unwrap_or_default()) {
        Ok(f) => f,
        Err(message) => return bad_request(&message),
    };
    let (total, ids) = matching(&tenant, &filter, offset, limit);
    let body = json!({
        "meta": meta("detectsapi", json!({
            "pagination": {"offset": offset, "limit": limit, "total": total},
        })),
        "resources": ids,
        "errors": [],
    });
    with_budget(json_response(StatusCode::OK, &body), budget)
}

/// The total of matching alerts and the ids of `offset..offset + limit`, in update order.
fn matching(tenant: &Tenant, filter: &Filter, offset: u64, limit: u64) -> (u64, Vec<String>) {
    let mut store = lock(&tenant.inner.store);
    let from = filter
        .lower_bound()
        .map(crate::generate::nanos_text)
        .unwrap_or_default();
    let filter = filter.prepared();
    if let Some(product) = filter.only_product() {
        let lists = store.by_product();
        let list = lists
            .get(&Some(product.to_owned()))
            .map_or(&[][..], Vec::as_slice);
        let span = filter.span(list, |(time, _)| time.as_str());
        let total = span.len() as u64;
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        let take = usize::try_from(limit).unwrap_or(usize::MAX);
        let ids = list[span]
            .iter()
            .skip(skip)
            .take(take)
            .map(|(_, id)| id.clone())
            .collect();
        return (total, ids);
    }
    let mut total = 0u64;
    let mut ids = Vec::new();
    for ((updated, id), product) in store.order.range((from, String::new())..) {
        if !filter.matches(product.as_deref(), updated) {
            continue;
        }
        if total >= offset && total < offset + limit {
            ids.push(id.clone());
        }
        total += 1;
    }
    (total, ids)
}

/// Reads `composite_ids` from a JSON body: at most [`MAX_IDS`] (413 beyond, [I16]).
fn composite_ids(body: &Value) -> Result<Vec<String>, Response> {
    let Some(list) = body["composite_ids"].as_array() else {
        return Err(bad_request("composite_ids: a list of ids is required"));
    };
    if list.len() > MAX_IDS {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "detectsapi",
            &format!(
                "at most {MAX_IDS} composite_ids a request; got {}",
                list.len()
            ),
        ));
    }
    Ok(list
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect())
}

async fn get_alerts(State(tenant): State<Tenant>, headers: HeaderMap, body: Bytes) -> Response {
    tenant
        .inner
        .entities_requests
        .fetch_add(1, Ordering::SeqCst);
    let budget = match gate(&tenant, &headers, false).await {
        Ok((_, budget)) => budget,
        Err(r) => return r,
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("body: invalid JSON");
    };
    let ids = match composite_ids(&body) {
        Ok(ids) => ids,
        Err(r) => return r,
    };
    let resources: Vec<std::sync::Arc<str>> = {
        let store = lock(&tenant.inner.store);
        ids.iter()
            .filter_map(|id| {
                store
                    .by_id
                    .get(id)
                    .map(|(_, _, t)| std::sync::Arc::clone(t))
            })
            .collect()
    };
    // The envelope, with the alerts' own text spliced into its empty `resources`.
    let envelope = json!({"meta": meta("detectsapi", json!({})), "resources": [], "errors": []});
    let envelope = envelope.to_string();
    let body = dossier_simkit::splice_list(&envelope, "\"resources\":[]", &resources);
    let body =
        String::from_utf8(tenant.inner.rewrites.apply(body.into_bytes())).unwrap_or_default();
    with_budget(crate::envelope::text_response(StatusCode::OK, body), budget)
}

/// The actions `PATCH …/v3` takes, and the values `update_status` does (§2.1).
const ACTIONS: &[&str] = &[
    "update_status",
    "add_tag",
    "remove_tag",
    "append_comment",
    "show_in_ui",
];
const STATUSES: &[&str] = &["new", "in_progress", "reopened", "closed"];

async fn update_alerts(State(tenant): State<Tenant>, headers: HeaderMap, body: Bytes) -> Response {
    let budget = match gate(&tenant, &headers, true).await {
        Ok((_, budget)) => budget,
        Err(r) => return r,
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("body: invalid JSON");
    };
    let ids = match composite_ids(&body) {
        Ok(ids) => ids,
        Err(r) => return r,
    };
    let mut actions = Vec::new();
    for p in body["action_parameters"].as_array().into_iter().flatten() {
        let (Some(name), Some(value)) = (p["name"].as_str(), p["value"].as_str()) else {
            return bad_request("action_parameters: each needs a string name and value");
        };
        if !ACTIONS.contains(&name) {
            return bad_request(&format!("action_parameters: unknown action {name:?}"));
        }
        if name == "update_status" && !STATUSES.contains(&value) {
            return bad_request(&format!("update_status: invalid value {value:?}"));
        }
        actions.push((name.to_owned(), value.to_owned()));
    }
    if actions.is_empty() {
        return bad_request("action_parameters: at least one action is required");
    }
    tenant.record_write(body);
    let affected = tenant.edit_for_write(&ids, &actions);
    let body = json!({
        "meta": meta("detectsapi", json!({"writes": {"resources_affected": affected}})),
        "resources": ids,
        "errors": [],
    });
    with_budget(json_response(StatusCode::OK, &body), budget)
}

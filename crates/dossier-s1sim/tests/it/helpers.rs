use std::path::PathBuf;

use chrono::{DateTime, Utc};
use dossier_s1sim::{start, RunningSim, SimConfig, Tenant};
use reqwest::{Certificate, Client, StatusCode};
use serde_json::Value;

pub const TOKEN: &str = "test-token-0123456789";

pub fn ts(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// A client that trusts only the emulator's CA (and the usual roots); verification stays on.
pub fn client(sim: &RunningSim) -> Client {
    Client::builder()
        .add_root_certificate(Certificate::from_pem(sim.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

/// Starts an emulator for `tenant` on a free port.
pub async fn spawn_tenant(tenant: Tenant) -> (RunningSim, Client) {
    let sim = start(tenant, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let client = client(&sim);
    (sim, client)
}

/// Starts an emulator with `n` history threats over 2025-01-01..2025-04-01.
pub async fn spawn_with(n: usize, config: SimConfig) -> (RunningSim, Client) {
    let tenant = Tenant::new(&config);
    tenant.generate_history(n, ts("2025-01-01T00:00:00Z"), ts("2025-04-01T00:00:00Z"));
    spawn_tenant(tenant).await
}

pub async fn spawn(n: usize) -> (RunningSim, Client) {
    spawn_with(n, SimConfig::new(7, 60, TOKEN)).await
}

pub fn url(sim: &RunningSim, path: &str) -> String {
    format!("{}/web/api/v2.1{path}", sim.base_url)
}

/// `GET /threats` with the test token.
pub async fn get_threats(
    client: &Client,
    sim: &RunningSim,
    query: &[(&str, &str)],
) -> (StatusCode, Value) {
    let response = client
        .get(url(sim, "/threats"))
        .header("Authorization", format!("ApiToken {TOKEN}"))
        .query(query)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    let value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body:.300}"));
    (status, value)
}

/// Follows `nextCursor` until null; returns every page.
pub async fn walk(client: &Client, sim: &RunningSim, query: &[(&str, &str)]) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q: Vec<(&str, &str)> = query.to_vec();
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let (status, page) = get_threats(client, sim, &q).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        cursor = page["pagination"]["nextCursor"].as_str().map(str::to_owned);
        pages.push(page);
        if cursor.is_none() {
            return pages;
        }
        assert!(pages.len() < 10_000, "runaway paging");
    }
}

/// The ids of the threats of all pages, in order.
pub fn ids_of(pages: &[Value]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p["data"].as_array().unwrap().iter())
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

pub fn sample_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/sentinelone")
        .join(name)
}

pub fn sample(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(sample_path(name)).unwrap()).unwrap()
}

/// Numeric order of decimal ids without parsing them to integers.
pub fn id_order(a: &str, b: &str) -> std::cmp::Ordering {
    (a.len(), a).cmp(&(b.len(), b))
}

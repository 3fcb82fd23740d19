//! Throughput of the page path. The assertion is generous so the test holds in debug builds;
//! run `cargo test -p dossier-s1sim --release -- --ignored --nocapture` for the bench-size
//! figure.

use std::time::Instant;

use dossier_s1sim::{SimConfig, Tenant};

use crate::helpers::{spawn_tenant, ts, url, TOKEN};

/// Returns (generation s, fetch s per 1000-threat page excluding the client's JSON parsing,
/// average threat bytes).
async fn page_timings(threats: usize, agents: usize, pages: usize) -> (f64, f64, usize) {
    let tenant = Tenant::new(&SimConfig::new(1, agents, TOKEN));
    let started = Instant::now();
    tenant.generate_history(
        threats,
        ts("2025-01-01T00:00:00Z"),
        ts("2025-04-01T00:00:00Z"),
    );
    let generation = started.elapsed().as_secs_f64();
    let (sim, client) = spawn_tenant(tenant).await;
    let mut cursor: Option<String> = None;
    let mut served = 0;
    let mut bytes = 0;
    let mut fetching = 0.0;
    for _ in 0..pages {
        let mut query = vec![
            ("limit", "1000".to_owned()),
            ("sortBy", "updatedAt".to_owned()),
            ("sortOrder", "asc".to_owned()),
            ("updatedAt__gte", "2024-12-01T00:00:00.000000Z".to_owned()),
        ];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let started = Instant::now();
        let body = client
            .get(url(&sim, "/threats"))
            .header("Authorization", format!("ApiToken {TOKEN}"))
            .query(&query)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        fetching += started.elapsed().as_secs_f64();
        bytes += body.len();
        let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
        served += page["data"].as_array().unwrap().len();
        cursor = page["pagination"]["nextCursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    let per_page = fetching / (served as f64 / 1000.0);
    sim.shutdown().await;
    (generation, per_page, bytes / served.max(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1000_threat_page_is_served_quickly() {
    let (_, per_page, _) = page_timings(5_000, 500, 5).await;
    // Debug builds included: the release figure is far lower.
    assert!(per_page < 1.0, "{per_page:.3} s per page of 1000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
async fn bench_100k_threats_over_5000_agents() {
    let (generation, per_page, avg) = page_timings(100_000, 5_000, 100).await;
    println!(
        "generate_100k_s={generation:.2} page_1000_ms={:.2} pages_per_s={:.1} avg_threat_bytes={avg}",
        per_page * 1000.0,
        1.0 / per_page
    );
}

//! Alert → story latency: new threats at a steady rate, each timed from its creation in the
//! tenant to the moment the API shows it in its story (its `incident_created` event, committed
//! in the same transaction as the story).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::{fresh_nodes, percentile, stop_nodes, BenchOptions, Db};
use crate::demo::provision;
use crate::emulated::{Emulated, Plan, Shared};

pub struct LatencyResult {
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// How many threats `seconds` at `rate` per second make: at least one.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a rounded product of two positive options, at least 1: a count of threats"
)]
fn threats_to_make(seconds: u64, rate: f64) -> usize {
    (seconds as f64 * rate).round().max(1.0) as usize
}

pub async fn run(o: &BenchOptions) -> anyhow::Result<LatencyResult> {
    run_on(o, &Db::Sqlite, 1).await
}

/// The latency benchmark with `node_count` servers on `db`: the connector runs on whichever
/// node leases it, and the API read is the first node's, so a story committed by another node
/// is timed as an analyst on the first would see it.
pub async fn run_on(o: &BenchOptions, db: &Db, node_count: usize) -> anyhow::Result<LatencyResult> {
    let now = Utc::now();
    let plan = Plan {
        seed: 77,
        devices: 200,
        records: 1000,
        from: now - chrono::Duration::days(10),
        to: now - chrono::Duration::minutes(1),
        shared: Shared::default(),
    };
    let sim = std::sync::Arc::new(Emulated::start(&o.producer, &plan).await?);
    let history = sim.count() as u64;
    let nodes = fresh_nodes(db, &[sim.ca_pem().to_owned()], node_count).await?;
    let Some(bench) = nodes.first() else {
        anyhow::bail!("no benchmark server started");
    };
    let connector = [(sim.vendor(), sim.connector())];
    let p = provision(&bench.state, "Latency", &connector, false).await?;
    let connector_id = p.connector_ids.first().cloned().unwrap_or_default();
    let base = format!("http://{}", bench.running.addr);
    let http = reqwest::Client::new();

    // Wait for the history to be in, so only live threats are timed.
    let started = Instant::now();
    loop {
        let c = bench.state.store.get_connector(None, &connector_id).await?;
        if c.threats >= history {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            anyhow::bail!("latency: the history did not arrive within 2 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let total = threats_to_make(o.latency_seconds, o.latency_rate);
    eprintln!("latency: {total} threats at {}/s", o.latency_rate);
    let gen_tenant = std::sync::Arc::clone(&sim);
    let rate = o.latency_rate.max(0.1);
    let generator = tokio::spawn(async move {
        let mut created = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        // Only the records the connector reads are timed: a tenant's other products' alerts
        // are left out by its filter, and never become stories.
        while created.len() < total {
            tick.tick().await;
            let id = gen_tenant.live(Utc::now());
            if gen_tenant.is_endpoint(&id) {
                created.insert(id, Instant::now());
            }
        }
        created
    });

    let mut seen: HashMap<String, Instant> = HashMap::new();
    let mut created: Option<HashMap<String, Instant>> = None;
    let mut generator = Some(generator);
    let deadline_after_gen = Duration::from_secs(15);
    let mut gen_done_at: Option<Instant> = None;
    loop {
        let resp: serde_json::Value = http
            .get(format!(
                "{base}/api/v1/events?type=incident_created&limit=1000"
            ))
            .bearer_auth(&p.api_key)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let at = Instant::now();
        for e in resp["items"].as_array().map_or(&[][..], Vec::as_slice) {
            if let Some(id) = e["incident_id"].as_str() {
                seen.entry(id.to_owned()).or_insert(at);
            }
        }
        if let Some(g) = generator.as_ref() {
            if g.is_finished() {
                if let Some(g) = generator.take() {
                    created = Some(g.await?);
                    gen_done_at = Some(Instant::now());
                }
            }
        }
        if let Some(c) = &created {
            let all = c.keys().all(|id| seen.contains_key(id));
            if all || gen_done_at.is_some_and(|t| t.elapsed() > deadline_after_gen) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let created = created.unwrap_or_default();
    let mut ms: Vec<f64> = Vec::new();
    let mut missing = 0usize;
    for (id, c) in &created {
        match seen.get(id) {
            Some(s) => ms.push(s.saturating_duration_since(*c).as_secs_f64() * 1000.0),
            None => missing += 1,
        }
    }
    stop_nodes(nodes).await;
    if let Ok(sim) = std::sync::Arc::try_unwrap(sim) {
        sim.shutdown().await;
    }
    if missing > 0 {
        anyhow::bail!(
            "latency: {missing} of {} threats never showed in the API",
            created.len()
        );
    }
    ms.sort_by(f64::total_cmp);
    Ok(LatencyResult {
        samples: ms.len(),
        p50_ms: percentile(&ms, 50.0),
        p99_ms: percentile(&ms, 99.0),
    })
}

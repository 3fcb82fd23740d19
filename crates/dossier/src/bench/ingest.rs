//! Ingest: emulated tenants over HTTPS on loopback → stories committed in SQLite (or, for
//! the scale-out comparison, in PostgreSQL by one or several nodes).

use std::time::{Duration, Instant};

use chrono::{DurationRound, Utc};
use indicatif::{ProgressBar, ProgressStyle};

use super::{fresh_nodes, stop_nodes, BenchOptions, Db};
use crate::demo::provision;
use crate::emulated::{Emulated, Plan, Shared};

pub struct IngestResult {
    pub threats: u64,
    pub seconds: f64,
    pub stories: u64,
    /// CPU seconds the whole process (Dossier and the emulated tenants) spent during the run,
    /// when the platform tells: steadier than wall time on a shared machine.
    pub cpu_seconds: Option<f64>,
    /// The same threats as list pages, for the floor.
    pub pages: Vec<Vec<u8>>,
    /// Threats per second from the moment the connectors were spread evenly over the nodes to
    /// the end (`None` if they never were, or were only at the very end).
    pub spread_per_s: Option<f64>,
    /// Seconds from the start until the connectors were spread evenly over the nodes.
    pub spread_after: Option<f64>,
}

pub async fn run(o: &BenchOptions) -> anyhow::Result<IngestResult> {
    run_on(o, &Db::Sqlite, 1).await
}

/// The ingest benchmark with `node_count` servers on `db` (more than one only on PostgreSQL,
/// where they share the connectors through leases). The clock starts when the connectors are
/// saved, after every node has started and said it is alive, so each takes its share at its
/// first round.
pub async fn run_on(o: &BenchOptions, db: &Db, node_count: usize) -> anyhow::Result<IngestResult> {
    // Every run reads the same records: an emulator's data must not move with the clock (a
    // Defender incident groups a device's alerts of one day), so history ends at midnight.
    let now = Utc::now()
        .duration_trunc(chrono::Duration::days(1))
        .unwrap_or_else(|_| Utc::now());
    let mut sims = Vec::new();
    let mut total = 0u64;
    eprintln!(
        "ingest: generating {} threats over {} devices in {} tenants",
        o.threats, o.agents, o.tenants
    );
    for k in 0..o.tenants {
        let agents = (o.agents / o.tenants).max(1);
        let n = o.threats / o.tenants + usize::from(k < o.threats % o.tenants);
        let plan = Plan {
            seed: 1000 + k as u64,
            devices: agents,
            records: n,
            from: now - chrono::Duration::days(80),
            to: now - chrono::Duration::minutes(5),
            shared: Shared::default(),
        };
        let sim = Emulated::start(&o.producer, &plan).await?;
        total += sim.count() as u64;
        sims.push(sim);
    }
    let pages = floor_pages(&sims);
    let cas: Vec<String> = sims.iter().map(|s| s.ca_pem().to_owned()).collect();
    let nodes = fresh_nodes(db, &cas, node_count).await?;
    let Some(bench) = nodes.first() else {
        anyhow::bail!("no benchmark server started");
    };
    if node_count > 1 {
        // Every node's first lease round says it is alive; one that had not yet would leave
        // the first node taking every connector.
        tokio::time::sleep(super::BENCH_LEASE_RENEW_EVERY * 2).await;
    }

    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("ingest: {bar:40} {pos}/{len} threats ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let cpu_at_start = super::process_cpu_seconds();
    for (k, sim) in sims.iter().enumerate() {
        provision_connector(&bench.state, k, sim).await?;
    }
    let deadline = started + Duration::from_secs(1800);
    let mut spread: Option<(Instant, u64)> = None;
    let done = loop {
        let connectors = bench.state.store.list_connectors(None).await?;
        let got: u64 = connectors.iter().map(|c| c.threats).sum();
        bar.set_position(got);
        if got >= total {
            break got;
        }
        if spread.is_none() && evenly_spread(&nodes, o.tenants) {
            spread = Some((Instant::now(), got));
        }
        if let Some(c) = connectors.iter().find(|c| c.status == "error") {
            tracing::warn!(connector = %c.name, reason = ?c.status_detail, "a bench connector reports an error");
        }
        if Instant::now() > deadline {
            anyhow::bail!("ingest did not finish within 30 minutes ({got}/{total})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ended = Instant::now();
    let seconds = ended.duration_since(started).as_secs_f64();
    let spread_per_s = spread.and_then(|(at, got)| {
        let s = ended.duration_since(at).as_secs_f64();
        (s > 0.5).then(|| (done - got) as f64 / s)
    });
    let spread_after = spread.map(|(at, _)| at.duration_since(started).as_secs_f64());
    let cpu_seconds = cpu_at_start
        .zip(super::process_cpu_seconds())
        .map(|(a, b)| b - a);
    bar.finish_and_clear();
    let story_count = count_stories(bench).await?;
    let sum = |f: &dyn Fn(&dossier_server::metrics::Metrics) -> f64| -> f64 {
        nodes.iter().map(|n| f(&n.state.metrics)).sum()
    };
    eprintln!(
        "ingest: time in fetch {:.2}s, map {:.2}s, commit {:.2}s (summed over connectors)",
        sum(&|m| m.fetch_seconds.get()),
        sum(&|m| m.map_seconds.get()),
        sum(&|m| m.commit_seconds.get())
    );
    stop_nodes(nodes).await;
    for sim in sims {
        sim.shutdown().await;
    }
    Ok(IngestResult {
        threats: done,
        seconds,
        stories: story_count,
        cpu_seconds,
        pages,
        spread_per_s,
        spread_after,
    })
}

/// Whether every connector is held by a node, and no node holds more than one more than
/// another: the nodes share the work as they will for the rest of the run.
fn evenly_spread(nodes: &[super::Bench], connectors: usize) -> bool {
    let held: Vec<i64> = nodes
        .iter()
        .map(|n| n.state.metrics.connectors_held.get())
        .collect();
    let (min, max) = (
        held.iter().copied().min().unwrap_or(0),
        held.iter().copied().max().unwrap_or(0),
    );
    usize::try_from(held.iter().sum::<i64>()).is_ok_and(|sum| sum == connectors) && max - min <= 1
}

/// Each emulated tenant is one customer account with its own connector, as at an MSSP.
async fn provision_connector(
    state: &dossier_server::AppState,
    k: usize,
    sim: &Emulated,
) -> anyhow::Result<()> {
    let connector = [(sim.vendor(), sim.connector())];
    provision(state, &format!("Bench tenant {k}"), &connector, false).await?;
    Ok(())
}

async fn count_stories(bench: &super::Bench) -> anyhow::Result<u64> {
    let mut n = 0u64;
    let mut cursor = None;
    loop {
        let page = bench
            .state
            .store
            .list_stories(&dossier_store::StoryQuery {
                limit: 1000,
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await?;
        n += page.items.len() as u64;
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(n),
        }
    }
}

/// The tenants' records as pages of 1000 (`{"data":[{"id","updated","record"}…]}`), the bytes
/// the floor parses.
fn floor_pages(tenants: &[Emulated]) -> Vec<Vec<u8>> {
    let mut pages = Vec::new();
    for t in tenants {
        let records = t.records();
        for chunk in records.chunks(1000) {
            let items: Vec<serde_json::Value> = chunk
                .iter()
                .map(|(id, updated, record)| {
                    serde_json::json!({ "id": id, "updated": updated, "record": record })
                })
                .collect();
            pages.push(
                serde_json::json!({ "data": items })
                    .to_string()
                    .into_bytes(),
            );
        }
    }
    pages
}

//! Ingest: emulated tenants over HTTPS on loopback → stories committed in SQLite.

use std::time::{Duration, Instant};

use chrono::Utc;
use dossier_s1sim::{SimConfig, Tenant};
use indicatif::{ProgressBar, ProgressStyle};

use super::{fresh_server, BenchOptions};
use crate::demo::provision;

pub struct IngestResult {
    pub threats: u64,
    pub seconds: f64,
    pub stories: u64,
    /// CPU seconds the whole process (Dossier and the emulated tenants) spent during the run,
    /// when the platform tells: steadier than wall time on a shared machine.
    pub cpu_seconds: Option<f64>,
    /// The same threats as list pages, for the floor.
    pub pages: Vec<Vec<u8>>,
}

pub async fn run(o: &BenchOptions) -> anyhow::Result<IngestResult> {
    let now = Utc::now();
    let mut sims = Vec::new();
    let mut total = 0u64;
    eprintln!(
        "ingest: generating {} threats over {} devices in {} tenants",
        o.threats, o.agents, o.tenants
    );
    for k in 0..o.tenants {
        let token = format!("bench-token-{k}");
        let agents = (o.agents / o.tenants).max(1);
        let n = o.threats / o.tenants + usize::from(k < o.threats % o.tenants);
        let tenant = Tenant::new(&SimConfig::new(1000 + k as u64, agents, &token));
        tenant.generate_history(
            n,
            now - chrono::Duration::days(80),
            now - chrono::Duration::minutes(5),
        );
        total += tenant.threat_count() as u64;
        let sim = dossier_s1sim::start(tenant.clone(), "127.0.0.1:0".parse()?).await?;
        sims.push((sim, tenant, token));
    }
    let pages = floor_pages(&sims.iter().map(|(_, t, _)| t.clone()).collect::<Vec<_>>());
    let cas: Vec<String> = sims.iter().map(|(s, _, _)| s.ca_pem.clone()).collect();
    let bench = fresh_server(&cas).await?;

    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("ingest: {bar:40} {pos}/{len} threats ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let cpu_at_start = super::process_cpu_seconds();
    for (k, (sim, _, token)) in sims.iter().enumerate() {
        provision_connector(&bench.state, k, &sim.base_url, token).await?;
    }
    let deadline = started + Duration::from_secs(1800);
    let done = loop {
        let connectors = bench.state.store.list_connectors(None).await?;
        let got: u64 = connectors.iter().map(|c| c.threats).sum();
        bar.set_position(got);
        if got >= total {
            break got;
        }
        if let Some(c) = connectors.iter().find(|c| c.status == "error") {
            tracing::warn!(connector = %c.name, reason = ?c.status_detail, "a bench connector reports an error");
        }
        if Instant::now() > deadline {
            anyhow::bail!("ingest did not finish within 30 minutes ({got}/{total})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = cpu_at_start
        .zip(super::process_cpu_seconds())
        .map(|(a, b)| b - a);
    bar.finish_and_clear();
    let story_count = count_stories(&bench).await?;
    let m = &bench.state.metrics;
    eprintln!(
        "ingest: time in fetch {:.2}s, map {:.2}s, commit {:.2}s (summed over connectors)",
        m.fetch_seconds.get(),
        m.map_seconds.get(),
        m.commit_seconds.get()
    );
    bench.running.stop().await;
    for (sim, _, _) in sims {
        sim.shutdown().await;
    }
    Ok(IngestResult {
        threats: done,
        seconds,
        stories: story_count,
        cpu_seconds,
        pages,
    })
}

/// Each emulated tenant is one customer account with its own connector, as at an MSSP.
async fn provision_connector(
    state: &dossier_server::AppState,
    k: usize,
    url: &str,
    token: &str,
) -> anyhow::Result<()> {
    provision(state, &format!("Bench tenant {k}"), url, token, false).await?;
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

/// The tenants' threats as list pages of 1000, the bytes the floor parses.
fn floor_pages(tenants: &[Tenant]) -> Vec<Vec<u8>> {
    let mut pages = Vec::new();
    for t in tenants {
        let ids = t.all_ids();
        for chunk in ids.chunks(1000) {
            let items: Vec<String> = chunk
                .iter()
                .filter_map(|id| t.threat(id))
                .map(|v| v.to_string())
                .collect();
            let body = format!(
                "{{\"data\":[{}],\"pagination\":{{\"nextCursor\":null,\"totalItems\":{}}}}}",
                items.join(","),
                ids.len()
            );
            pages.push(body.into_bytes());
        }
    }
    pages
}

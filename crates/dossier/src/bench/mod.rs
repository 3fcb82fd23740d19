//! `dossier bench`: ingest throughput against a floor, alert-to-story latency, and story list
//! time at a million stories. Prints one `name=value` line per figure on stdout; progress goes
//! to stderr.

mod floor;
mod ingest;
mod latency;
mod list;

use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct BenchOptions {
    /// Threats in the emulated tenants for the ingest benchmark.
    #[arg(long, default_value_t = 100_000)]
    pub threats: usize,
    /// Devices across the emulated tenants.
    #[arg(long, default_value_t = 5_000)]
    pub agents: usize,
    /// Stories for the list benchmark.
    #[arg(long, default_value_t = 1_000_000)]
    pub stories: u64,
    /// Emulated tenants (one connector and one API token each: a token may make at most
    /// 10 requests a second, so one connector reads at most 10,000 threats a second).
    #[arg(long, default_value_t = 4)]
    pub tenants: usize,
    /// Seconds of steady new threats for the latency benchmark.
    #[arg(long, default_value_t = 20)]
    pub latency_seconds: u64,
    /// New threats per second during the latency benchmark.
    #[arg(long, default_value_t = 10.0)]
    pub latency_rate: f64,
    /// Skip benchmarks: any of ingest, latency, list.
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<String>,
}

pub async fn run(o: BenchOptions) -> anyhow::Result<()> {
    if o.threats == 0 || o.agents == 0 || o.tenants == 0 {
        anyhow::bail!("--threats, --agents and --tenants must be at least 1");
    }
    println!(
        "machine_cores={}",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    if !o.skip.iter().any(|s| s == "ingest") {
        let ingest = ingest::run(&o).await?;
        let floor = floor::run(&ingest.pages).await?;
        println!("ingest_threats={}", ingest.threats);
        println!("ingest_seconds={:.2}", ingest.seconds);
        println!(
            "ingest_threats_per_s={:.0}",
            ingest.threats as f64 / ingest.seconds
        );
        println!("ingest_stories={}", ingest.stories);
        println!("floor_threats_per_s={floor:.0}");
        println!(
            "ingest_vs_floor={:.2}",
            ingest.threats as f64 / ingest.seconds / floor
        );
    }
    if !o.skip.iter().any(|s| s == "latency") {
        let l = latency::run(&o).await?;
        println!("latency_samples={}", l.samples);
        println!("latency_p50_ms={:.0}", l.p50_ms);
        println!("latency_p99_ms={:.0}", l.p99_ms);
    }
    if !o.skip.iter().any(|s| s == "list") {
        let l = list::run(&o).await?;
        println!("list_stories={}", o.stories);
        println!("list_queries={}", l.queries);
        println!("list_p50_ms={:.1}", l.p50_ms);
        println!("list_p95_ms={:.1}", l.p95_ms);
        println!("list_page_queries={}", l.page_queries);
        println!("list_page_p50_ms={:.1}", l.page_p50_ms);
        println!("list_page_p95_ms={:.1}", l.page_p95_ms);
        println!("list_page_worst_view={:?}", l.page_worst.0);
        println!("list_page_worst_p95_ms={:.1}", l.page_worst.1);
    }
    Ok(())
}

/// The `p`-th percentile (0–100) of the samples, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A fresh server on a temporary database, for one benchmark.
pub struct Bench {
    pub state: dossier_server::AppState,
    pub running: dossier_server::Running,
    pub store: dossier_store::sqlite::SqliteStore,
    /// Holds the temporary database until the benchmark ends.
    pub _dir: tempfile::TempDir,
}

pub async fn fresh_server(ca_pems: &[String]) -> anyhow::Result<Bench> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.db");
    let store = dossier_store::sqlite::SqliteStore::open(db.to_str().unwrap_or_default())?;
    let secrets = dossier_server::SecretBox::load_or_create(&dir.path().join("key"))?;
    let config = dossier_server::ServerConfig {
        allow_private_tenants: true,
        tenant_ca_pem: Some(ca_pems.join("\n").into_bytes()),
        ..dossier_server::ServerConfig::default()
    };
    let state = dossier_server::AppState::new(std::sync::Arc::new(store.clone()), secrets, config);
    let running = dossier_server::start(state.clone(), "127.0.0.1:0".parse()?).await?;
    Ok(Bench {
        state,
        running,
        store,
        _dir: dir,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!((super::percentile(&v, 95.0) - 95.0).abs() < f64::EPSILON);
        assert!((super::percentile(&v, 50.0) - 50.0).abs() < f64::EPSILON);
        assert!((super::percentile(&[3.0], 99.0) - 3.0).abs() < f64::EPSILON);
    }
}

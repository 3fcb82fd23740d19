//! `dossier bench`: ingest throughput against a floor, alert-to-story latency, and story list
//! time at a million stories. Prints one `name=value` line per figure on stdout; progress goes
//! to stderr.

mod floor;
mod ingest;
mod latency;
mod list;
mod scale;

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
    /// Ingest runs, each followed by its floor. With more than one, each run's figures go to
    /// stderr and the ingest figures printed are the medians: on a shared or throttled machine
    /// one run can be off by a tenth either way.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub ingest_runs: u32,
    /// Skip benchmarks: any of ingest, latency, list.
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<String>,
    /// The producer whose emulated tenants the ingest and latency benchmarks read: sentinelone,
    /// defender or crowdstrike.
    #[arg(long, default_value = "sentinelone", value_parser = clap::builder::PossibleValuesParser::new(crate::emulated::KINDS))]
    pub producer: String,
    /// Runs the same input three ways instead, side by side: one node on SQLite, one node on
    /// the PostgreSQL database at this URL, and three nodes sharing it. Each run gets a fresh
    /// schema in that database. Give several `--tenants`: nodes share connectors, not threats.
    #[arg(long, value_name = "POSTGRES_URL")]
    pub scale_out: Option<String>,
    /// With `--scale-out`: keep the schemas the runs made, to look at them afterwards.
    #[arg(long)]
    pub keep_schemas: bool,
}

pub async fn run(o: BenchOptions) -> anyhow::Result<()> {
    if o.threats == 0 || o.agents == 0 || o.tenants == 0 {
        anyhow::bail!("--threats, --agents and --tenants must be at least 1");
    }
    println!(
        "machine_cores={}",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    println!("producer={}", o.producer);
    if let Some(url) = &o.scale_out {
        return scale::run(&o, url).await;
    }
    if !o.skip.iter().any(|s| s == "ingest") {
        let mut runs = Vec::new();
        for k in 1..=o.ingest_runs {
            let ingest = ingest::run(&o).await?;
            let floor = floor::run(&ingest.pages).await?;
            let run = IngestRun {
                threats: ingest.threats,
                seconds: ingest.seconds,
                stories: ingest.stories,
                floor,
                cpu_seconds: ingest.cpu_seconds,
            };
            if o.ingest_runs > 1 {
                eprintln!(
                    "ingest run {k}/{}: {:.0} threats/s, floor {floor:.0}, ratio {:.2}, {} CPU-s",
                    o.ingest_runs,
                    run.per_s(),
                    run.per_s() / floor,
                    run.cpu_seconds
                        .map_or_else(|| "unknown".to_owned(), |c| format!("{c:.2}"))
                );
            }
            runs.push(run);
        }
        if runs.iter().any(|r| r.stories != runs[0].stories) {
            // The same threats must always make the same stories.
            let counts: Vec<u64> = runs.iter().map(|r| r.stories).collect();
            anyhow::bail!("ingest runs made different numbers of stories: {counts:?}");
        }
        let median_of = |f: &dyn Fn(&IngestRun) -> f64| median(runs.iter().map(f).collect());
        println!("ingest_runs={}", runs.len());
        println!("ingest_threats={}", runs[0].threats);
        println!("ingest_seconds={:.2}", median_of(&|r| r.seconds));
        println!("ingest_threats_per_s={:.0}", median_of(&IngestRun::per_s));
        println!("ingest_stories={}", runs[0].stories);
        println!("floor_threats_per_s={:.0}", median_of(&|r| r.floor));
        println!("ingest_vs_floor={:.2}", median_of(&|r| r.per_s() / r.floor));
        if runs.iter().all(|r| r.cpu_seconds.is_some()) {
            let cpu = median_of(&|r| r.cpu_seconds.unwrap_or(f64::NAN));
            println!("ingest_cpu_seconds={cpu:.2}");
        }
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
        if let Some(p) = &l.pages {
            println!("list_page_queries={}", p.queries);
            println!("list_page_p50_ms={:.1}", p.p50_ms);
            println!("list_page_p95_ms={:.1}", p.p95_ms);
            println!("list_page_worst_view={:?}", p.worst.0);
            println!("list_page_worst_p95_ms={:.1}", p.worst.1);
        }
    }
    Ok(())
}

/// One ingest run and the floor measured right after it.
struct IngestRun {
    threats: u64,
    seconds: f64,
    stories: u64,
    floor: f64,
    cpu_seconds: Option<f64>,
}

impl IngestRun {
    fn per_s(&self) -> f64 {
        self.threats as f64 / self.seconds
    }
}

/// The median of the values: the middle one, or the mean of the two middle ones.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => f64::midpoint(v[n / 2 - 1], v[n / 2]),
    }
}

/// CPU seconds this process has used (user and system, all threads), read from
/// `/proc/self/stat`; `None` where there is no such file.
pub fn process_cpu_seconds() -> Option<f64> {
    cpu_seconds_of_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// `utime` and `stime` of a `/proc/PID/stat` line, in seconds. They are fields 14 and 15,
/// counted in clock ticks of 1/100 s (`USER_HZ`, fixed on Linux); the fields are counted
/// after the command name, which is in parentheses and may itself hold spaces.
fn cpu_seconds_of_stat(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// The `p`-th percentile (0–100) of the samples, nearest rank.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a share of the sample count, rounded up: a rank, clamped to the samples next"
)]
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The database a benchmark's servers run on.
#[derive(Clone, Debug)]
pub enum Db {
    /// A fresh SQLite file for each server: what the default benchmark measures.
    Sqlite,
    /// A PostgreSQL database every server of the benchmark shares (the URL names a fresh
    /// schema), each server a node of its own.
    Postgres(String),
}

/// A benchmark server's store, with what only the benchmarks use (the synthetic stories),
/// which is not part of the `Store` trait.
#[derive(Clone)]
pub enum BenchStore {
    Sqlite(dossier_store_sqlite::SqliteStore),
    Postgres(dossier_store_postgres::PostgresStore),
}

impl BenchStore {
    /// Inserts `n` synthetic stories (the same ones whichever the store) into the account.
    pub async fn seed_synthetic_stories(
        &self,
        account_id: &str,
        n: u64,
        now: chrono::DateTime<chrono::Utc>,
        producers: &[dossier_domain::Producer],
    ) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(s) => {
                s.seed_synthetic_stories(account_id, n, now, producers)
                    .await?;
            }
            Self::Postgres(s) => {
                s.seed_synthetic_stories(account_id, n, now, producers)
                    .await?;
            }
        }
        Ok(())
    }
}

/// A fresh server on a temporary database, for one benchmark.
pub struct Bench {
    pub state: dossier_server::AppState,
    pub running: dossier_server::Running,
    pub store: BenchStore,
    /// Holds the temporary database (and the key file) until the benchmark ends.
    pub dir: tempfile::TempDir,
}

/// Leases short enough that connectors spread over the nodes within a second or two of a
/// benchmark's start, rather than the five seconds a production round takes.
const BENCH_LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(4);
const BENCH_LEASE_RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// `count` servers on the database: on SQLite, each has a fresh database of its own (use one);
/// on PostgreSQL they are nodes sharing the database, each with its own connection pool and
/// node name, and the key file of the first (a connector's token saved through one node is
/// read by whichever runs it).
pub async fn fresh_nodes(db: &Db, ca_pems: &[String], count: usize) -> anyhow::Result<Vec<Bench>> {
    let mut nodes: Vec<Bench> = Vec::with_capacity(count);
    for k in 0..count {
        let dir = tempfile::tempdir()?;
        let key = dir.path().join("key");
        if let Some(first) = nodes.first() {
            std::fs::copy(first.dir.path().join("key"), &key)?;
        }
        let defaults = dossier_server::ServerConfig::default();
        let (store, shared): (BenchStore, std::sync::Arc<dyn dossier_store::Store>) = match db {
            Db::Sqlite => {
                let db = dir.path().join("bench.db");
                let store = dossier_store_sqlite::SqliteStore::open(
                    db.to_str().unwrap_or_default(),
                    crate::options::remap(),
                )?;
                (
                    BenchStore::Sqlite(store.clone()),
                    std::sync::Arc::new(store),
                )
            }
            Db::Postgres(url) => {
                let store = open_postgres(url).await?;
                (
                    BenchStore::Postgres(store.clone()),
                    std::sync::Arc::new(store),
                )
            }
        };
        let secrets = dossier_server::SecretBox::load_or_create(&key)?;
        let config = match db {
            Db::Sqlite => dossier_server::ServerConfig {
                allow_private_tenants: true,
                tenant_ca_pem: Some(ca_pems.join("\n").into_bytes()),
                ..defaults
            },
            Db::Postgres(_) => dossier_server::ServerConfig {
                allow_private_tenants: true,
                tenant_ca_pem: Some(ca_pems.join("\n").into_bytes()),
                node_id: format!("bench-node-{k}"),
                lease_ttl: BENCH_LEASE_TTL,
                lease_renew_every: BENCH_LEASE_RENEW_EVERY,
                ..defaults
            },
        };
        let state =
            dossier_server::AppState::new(shared, crate::options::sources(), secrets, config);
        let running = dossier_server::start(state.clone(), "127.0.0.1:0".parse()?).await?;
        nodes.push(Bench {
            state,
            running,
            store,
            dir,
        });
    }
    Ok(nodes)
}

/// Opens the PostgreSQL store as `dossier serve` does, with its default settings: its blocking
/// client runs a runtime of its own, which may not start on a thread of the async runtime.
async fn open_postgres(url: &str) -> anyhow::Result<dossier_store_postgres::PostgresStore> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        crate::options::open_postgres(&url, dossier_store_postgres::Settings::default())
    })
    .await?
}

/// Stops every node together, so that none takes over the connectors of one that stopped
/// first; their temporary files go once all have stopped.
pub async fn stop_nodes(nodes: Vec<Bench>) {
    let mut dirs = Vec::with_capacity(nodes.len());
    let mut stops = Vec::with_capacity(nodes.len());
    for n in nodes {
        dirs.push(n.dir);
        stops.push(tokio::spawn(n.running.stop()));
    }
    for s in stops {
        let _ = s.await;
    }
    drop(dirs);
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_time_is_read_after_the_command_name_even_with_spaces_in_it() {
        let stat = "4242 (tokio rt) worker) S 1 4242 4242 0 -1 4194560 1500 0 0 0 \
                    1234 567 0 0 20 0 9 0 100 1000000 2000 18446744073709551615";
        assert_eq!(super::cpu_seconds_of_stat(stat), Some(18.01));
        assert_eq!(super::cpu_seconds_of_stat("4242 (x) S 1"), None);
        assert_eq!(super::cpu_seconds_of_stat("no parenthesis"), None);
        if cfg!(target_os = "linux") {
            assert!(super::process_cpu_seconds().is_some_and(|s| s >= 0.0));
        }
    }

    #[test]
    fn a_median_is_the_middle_value_or_the_mean_of_the_middle_two() {
        assert!((super::median(vec![3.0, 1.0, 2.0]) - 2.0).abs() < f64::EPSILON);
        assert!((super::median(vec![4.0, 1.0, 3.0, 2.0]) - 2.5).abs() < f64::EPSILON);
        assert!((super::median(vec![7.0]) - 7.0).abs() < f64::EPSILON);
        assert!(super::median(Vec::new()).is_nan());
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!((super::percentile(&v, 95.0) - 95.0).abs() < f64::EPSILON);
        assert!((super::percentile(&v, 50.0) - 50.0).abs() < f64::EPSILON);
        assert!((super::percentile(&[3.0], 99.0) - 3.0).abs() < f64::EPSILON);
    }
}

//! Flags shared by the commands, each with its `DOSSIER_*` environment variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args};
use dossier_domain::correlate::Policy;
use dossier_server::{SecretBox, ServerConfig};
use dossier_source::{PollPolicy, Sources};
use dossier_store::Store;
use dossier_store_sqlite::SqliteStore;

#[derive(Args, Debug, Clone)]
pub struct DbOption {
    /// Database URL: `sqlite://PATH` (embedded, the default) or `postgres://…`.
    #[arg(long, env = "DOSSIER_DB", default_value = "sqlite://dossier.db")]
    pub db: String,
    /// PostgreSQL only: the most connections this process keeps to the database for requests
    /// and commits (a node's lease rounds use one more of their own).
    #[arg(long, env = "DOSSIER_DB_POOL_SIZE", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_pool_size: u32,
    /// PostgreSQL only: seconds one statement may run before the database cancels it.
    #[arg(long, env = "DOSSIER_DB_STATEMENT_TIMEOUT", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub db_statement_timeout: u64,
}

#[derive(Args, Debug, Clone)]
pub struct ServeOptions {
    #[command(flatten)]
    pub db: DbOption,
    /// Address to serve the web UI and API on.
    #[arg(long, env = "DOSSIER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Extra CA roots (PEM) to trust for tenants, e.g. behind a TLS-inspecting proxy.
    #[arg(long, env = "DOSSIER_TENANT_CA_FILE")]
    pub tenant_ca_file: Option<PathBuf>,
    /// Permit tenant URLs that resolve to loopback or private addresses.
    #[arg(long, env = "DOSSIER_ALLOW_PRIVATE_TENANTS", action = ArgAction::SetTrue,
          value_parser = BoolishValueParser::new())]
    pub allow_private_tenants: bool,
    /// Key file for encrypting connector tokens at rest; created (0600) if absent. Default:
    /// `dossier-secret.key` beside the SQLite database, or in the working directory.
    #[arg(long, env = "DOSSIER_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Always mark web session cookies Secure (Dossier served over TLS through a proxy that
    /// does not send X-Forwarded-Proto).
    #[arg(long, env = "DOSSIER_SECURE_COOKIES", action = ArgAction::SetTrue,
          value_parser = BoolishValueParser::new())]
    pub secure_cookies: bool,
    /// During a backfill, threats read before one commit (several pages written together
    /// cost far less than page by page); a second after the last commit, what was read
    /// commits anyway. A crash re-reads at most this many.
    #[arg(long, env = "DOSSIER_INGEST_BATCH", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub ingest_batch: u32,
    /// Threats that all connectors' backfill batches together may hold read but not yet
    /// committed. A connector that finds it spent commits what it has; 0 makes every page
    /// commit alone.
    #[arg(long, env = "DOSSIER_INGEST_BUDGET", default_value_t = 40_000,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub ingest_budget: u32,
    /// How far back, in days, a new connector's first sync reads its tenant's threats.
    #[arg(long, env = "DOSSIER_BACKFILL_DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub backfill_days: u32,
    /// How much older than a story's first incident, in days, an incident with the same device
    /// and file may be and still join it; later ones start a linked story. A new value applies
    /// to a device and file's stories the next time one of its threats arrives.
    #[arg(long, env = "DOSSIER_CORRELATION_WINDOW_DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub correlation_window_days: u32,
    /// The most incidents one story holds; more continue in a linked story.
    #[arg(long, env = "DOSSIER_STORY_CAP", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub story_cap: u32,
    /// Proxies (addresses or CIDR blocks, repeated or comma-separated) whose
    /// `X-Forwarded-For` names the client; nobody else's is read.
    #[arg(long = "trusted-proxy", env = "DOSSIER_TRUSTED_PROXY", value_delimiter = ',',
          value_parser = dossier_server::client_addr::parse_trusted_proxy)]
    pub trusted_proxies: Vec<dossier_server::client_addr::IpNet>,
    /// Seconds a request head may take to arrive, from the connection opening or from the
    /// first byte of a later request on a kept-alive connection.
    #[arg(long, env = "DOSSIER_HEADER_READ_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_read_timeout: u64,
    /// Seconds a kept-alive connection may wait for its next request, and a request's body
    /// may take to arrive.
    #[arg(long, env = "DOSSIER_IDLE_TIMEOUT", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout: u64,
    /// The most connections held at once; past it, the one that has waited longest without a
    /// request is closed to make room. Keep it under the process's open-file limit.
    #[arg(long, env = "DOSSIER_MAX_CONNECTIONS", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// Seconds a tenant's page may take to come (retries included) before its connector
    /// shows as slow: still `connected`, with "slow: pages take 12 s" and how far behind it is.
    #[arg(long, env = "DOSSIER_SLOW_PAGE_AFTER", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub slow_page_after: u64,
    /// Seconds a connector's backlog (how far the walk under way is behind the clock) may
    /// keep growing before the connector shows as slow.
    #[arg(long, env = "DOSSIER_SLOW_BACKLOG_AFTER", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub slow_backlog_after: u64,
    /// Nodes sharing a PostgreSQL database: seconds a node's connector leases last without
    /// renewal. A node that dies hands its connectors to the others within this and one
    /// `--lease-renew-every`.
    #[arg(long, env = "DOSSIER_LEASE_TTL", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub lease_ttl: u64,
    /// Nodes sharing a PostgreSQL database: seconds between a node's lease rounds (renewing
    /// its leases, taking its share of the connectors). At most half of `--lease-ttl`.
    #[arg(long, env = "DOSSIER_LEASE_RENEW_EVERY", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=1800))]
    pub lease_renew_every: u64,
    /// This node's name among the nodes sharing a database (what its leases name as owner).
    /// Default: the host name and the listen address, so that a node started again takes its
    /// own leases back at once. Give each node a name of its own where they share one.
    #[arg(long, env = "DOSSIER_NODE_ID")]
    pub node_id: Option<String>,
}

/// Opens the store the URL names.
pub fn open_store(db: &DbOption) -> anyhow::Result<Arc<dyn Store>> {
    let url = db.db.as_str();
    if is_postgres(url) {
        let settings = dossier_store_postgres::Settings {
            pool_size: db.db_pool_size as usize,
            statement_timeout: std::time::Duration::from_secs(db.db_statement_timeout),
            ..dossier_store_postgres::Settings::default()
        };
        let store = open_postgres(url, settings)
            .with_context(|| format!("--db: cannot open {}", redact_url(url)))?;
        return Ok(Arc::new(store));
    }
    if !url.starts_with("sqlite:") && url.contains("://") {
        bail!(
            "--db: unknown database URL {:?}; use sqlite://PATH or postgres://…",
            redact_url(url)
        );
    }
    let store =
        SqliteStore::open(url, remap()).with_context(|| format!("--db: cannot open {url}"))?;
    Ok(Arc::new(store))
}

/// Opens the PostgreSQL store at `url`. Its blocking client runs a runtime of its own, which
/// may not start on a thread of the async runtime: the store is opened on a thread of its own.
pub fn open_postgres(
    url: &str,
    settings: dossier_store_postgres::Settings,
) -> anyhow::Result<dossier_store_postgres::PostgresStore> {
    let owned = url.to_owned();
    let opened = std::thread::spawn(move || {
        dossier_store_postgres::PostgresStore::open(&owned, remap(), &settings)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("opening the database panicked"))?;
    Ok(opened?)
}

/// A node name given with `--node-id`: short, printable, no spaces.
fn check_node_id(id: &str) -> anyhow::Result<String> {
    let id = id.trim();
    if id.is_empty()
        || id.len() > 100
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
    {
        bail!("--node-id: 1 to 100 letters, digits, '-', '_', '.' or ':'");
    }
    Ok(id.to_owned())
}

/// Whether a `--db` URL names a PostgreSQL database.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A database URL as it may be shown: its password, if it has one, replaced.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// The sources this build has: the binary is the one place that names every source.
pub fn sources() -> Sources {
    Sources::new(vec![
        Arc::new(dossier_sentinelone::SentinelOne),
        Arc::new(dossier_defender::Defender),
        Arc::new(dossier_crowdstrike::CrowdStrike),
    ])
}

/// Each producer's mapping of a stored incident's raw JSON, for the store.
pub fn remap() -> dossier_store::Remap {
    Arc::new(sources().remap())
}

/// The file an SQLite URL names; `None` for another database (PostgreSQL), which has none.
fn sqlite_path(url: &str) -> Option<&Path> {
    if is_postgres(url) {
        return None;
    }
    let p = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    (!p.is_empty()).then(|| Path::new(p))
}

impl ServeOptions {
    pub fn secret_key_path(&self) -> PathBuf {
        if let Some(p) = &self.secret_key_file {
            return p.clone();
        }
        let dir = sqlite_path(&self.db.db)
            .and_then(Path::parent)
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        dir.join("dossier-secret.key")
    }

    pub fn server_config(&self) -> anyhow::Result<ServerConfig> {
        if self.lease_renew_every * 2 > self.lease_ttl {
            bail!(
                "--lease-renew-every ({} s) must be at most half of --lease-ttl ({} s): a lease must be renewed well before it expires",
                self.lease_renew_every,
                self.lease_ttl
            );
        }
        let tenant_ca_pem = match &self.tenant_ca_file {
            Some(p) => {
                let pem = std::fs::read(p)
                    .with_context(|| format!("--tenant-ca-file: cannot read {}", p.display()))?;
                // Refused now, not by every connector once it polls.
                dossier_sentinelone::extra_roots(&pem).map_err(|e| {
                    anyhow::anyhow!("--tenant-ca-file: {} is not usable: {e}", p.display())
                })?;
                Some(pem)
            }
            None => None,
        };
        let defaults = ServerConfig::default();
        Ok(ServerConfig {
            allow_private_tenants: self.allow_private_tenants,
            tenant_ca_pem,
            secure_cookies: self.secure_cookies,
            ingest_batch: self.ingest_batch as usize,
            ingest_budget: self.ingest_budget as usize,
            poll_policy: PollPolicy {
                backfill: chrono::Duration::days(self.backfill_days.into()),
                ..defaults.poll_policy.clone()
            },
            correlation: Policy {
                window: chrono::Duration::days(self.correlation_window_days.into()),
                cap: self.story_cap as usize,
                ..defaults.correlation
            },
            connections: dossier_server::ConnectionLimits {
                header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout),
                idle_timeout: std::time::Duration::from_secs(self.idle_timeout),
                max_connections: self.max_connections as usize,
            },
            trusted_proxies: self.trusted_proxies.clone(),
            slow_page_after: std::time::Duration::from_secs(self.slow_page_after),
            slow_backlog_after: std::time::Duration::from_secs(self.slow_backlog_after),
            lease_ttl: std::time::Duration::from_secs(self.lease_ttl),
            lease_renew_every: std::time::Duration::from_secs(self.lease_renew_every),
            node_id: match &self.node_id {
                Some(id) => check_node_id(id)?,
                None => dossier_server::node_id(self.listen),
            },
            ..defaults
        })
    }

    pub fn secrets(&self) -> anyhow::Result<SecretBox> {
        let path = self.secret_key_path();
        SecretBox::load_or_create(&path).map_err(|e| anyhow::anyhow!("--secret-key-file: {e}"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use clap::Parser;

    use super::ServeOptions;

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        options: ServeOptions,
    }

    fn config(args: &[&str]) -> Result<dossier_server::ServerConfig, String> {
        let serve = Serve::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        serve.options.server_config().map_err(|e| e.to_string())
    }

    #[test]
    fn the_backfill_and_correlation_flags_reach_the_server() {
        let c = config(&[]).unwrap();
        assert_eq!(
            (c.poll_policy.backfill, c.correlation),
            (
                chrono::Duration::days(90),
                dossier_domain::correlate::Policy::default()
            )
        );
        let c = config(&[
            "--backfill-days",
            "7",
            "--correlation-window-days",
            "30",
            "--story-cap",
            "50",
        ])
        .unwrap();
        assert_eq!(c.poll_policy.backfill, chrono::Duration::days(7));
        assert_eq!(c.correlation.window, chrono::Duration::days(30));
        assert_eq!(c.correlation.cap, 50);
        assert_eq!(c.correlation.reopen_after, chrono::Duration::hours(12));
        for bad in [
            "--backfill-days=0",
            "--correlation-window-days=0",
            "--correlation-window-days=5000",
            "--story-cap=0",
        ] {
            let flag = bad.split('=').next().unwrap_or_default();
            let err = config(&[bad]).unwrap_err();
            assert!(err.contains(flag), "{bad}: {err}");
        }
    }

    #[test]
    fn the_connection_and_proxy_flags_reach_the_server() {
        let c = config(&[]).unwrap();
        assert_eq!(c.connections, dossier_server::ConnectionLimits::default());
        assert!(c.trusted_proxies.is_empty());
        let c = config(&[
            "--header-read-timeout",
            "3",
            "--idle-timeout",
            "20",
            "--max-connections",
            "40",
            "--trusted-proxy",
            "10.0.0.0/8,::1",
            "--trusted-proxy",
            "192.0.2.7",
        ])
        .unwrap();
        assert_eq!(
            c.connections,
            dossier_server::ConnectionLimits {
                header_read_timeout: std::time::Duration::from_secs(3),
                idle_timeout: std::time::Duration::from_secs(20),
                max_connections: 40,
            }
        );
        let proxies: Vec<String> = c.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(proxies, ["10.0.0.0/8", "::1/128", "192.0.2.7/32"]);
        for (bad, flag) in [
            ("--max-connections=0", "--max-connections"),
            ("--header-read-timeout=0", "--header-read-timeout"),
            ("--idle-timeout=lots", "--idle-timeout"),
            ("--trusted-proxy=proxy.local", "--trusted-proxy"),
        ] {
            let err = config(&[bad]).unwrap_err();
            assert!(err.contains(flag), "{bad}: {err}");
        }
    }

    #[test]
    fn the_slow_tenant_flags_reach_the_server() {
        let c = config(&[]).unwrap();
        let defaults = dossier_server::ServerConfig::default();
        assert_eq!(
            (c.slow_page_after, c.slow_backlog_after),
            (defaults.slow_page_after, defaults.slow_backlog_after)
        );
        assert_eq!(c.slow_page_after, std::time::Duration::from_secs(10));
        assert_eq!(c.slow_backlog_after, std::time::Duration::from_secs(300));
        let c = config(&["--slow-page-after", "3", "--slow-backlog-after", "60"]).unwrap();
        assert_eq!(c.slow_page_after, std::time::Duration::from_secs(3));
        assert_eq!(c.slow_backlog_after, std::time::Duration::from_secs(60));
        for (bad, flag) in [
            ("--slow-page-after=0", "--slow-page-after"),
            ("--slow-page-after=soon", "--slow-page-after"),
            ("--slow-backlog-after=0", "--slow-backlog-after"),
            ("--slow-backlog-after=86401", "--slow-backlog-after"),
        ] {
            let err = config(&[bad]).unwrap_err();
            assert!(err.contains(flag), "{bad}: {err}");
        }
    }

    #[test]
    fn the_ingest_flags_reach_the_server_and_refuse_what_is_out_of_range() {
        let c = config(&[]).unwrap();
        assert_eq!((c.ingest_batch, c.ingest_budget), (10_000, 40_000));
        let c = config(&["--ingest-batch", "300", "--ingest-budget", "0"]).unwrap();
        assert_eq!((c.ingest_batch, c.ingest_budget), (300, 0));
        for (bad, flag) in [
            ("--ingest-batch=0", "--ingest-batch"),
            ("--ingest-batch=100001", "--ingest-batch"),
            ("--ingest-budget=-1", "--ingest-budget"),
            ("--ingest-budget=1000001", "--ingest-budget"),
            ("--ingest-budget=lots", "--ingest-budget"),
        ] {
            let err = config(&[bad]).unwrap_err();
            assert!(err.contains(flag), "{bad}: {err}");
        }
    }
}

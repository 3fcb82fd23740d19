//! `dossier sim`: the SentinelOne tenant emulator on its own, for trying a connector by hand.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::Utc;
use clap::Args;
use dossier_s1sim::{Fault, SimConfig, Tenant};

#[derive(Args, Debug)]
pub struct SimOptions {
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// The API token the tenant accepts.
    #[arg(long, env = "DOSSIER_SIM_TOKEN")]
    pub token: String,
    #[arg(long, default_value_t = 1000)]
    pub threats: usize,
    #[arg(long, default_value_t = 100)]
    pub agents: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write the emulator's CA certificate (PEM), for `--tenant-ca-file`.
    #[arg(long, default_value = "dossier-sim-ca.pem")]
    pub ca_out: PathBuf,
    /// Faults the first `GET /threats` requests meet, one each, before the tenant answers
    /// normally, e.g. `429:2,500*20,slow:70` (429, 429:SECS, 500, slow:SECS, trickle, truncated,
    /// garbage, oversized:BYTES, 401, 403, drift, empty; NAME*N repeats one).
    #[arg(long, default_value = "")]
    pub faults: String,
    /// Faults the first writes (verdicts, mitigations, disconnect and connect, blocklist) meet,
    /// one each, in the same syntax as `--faults`: a response action that fails or times out.
    #[arg(long, default_value = "")]
    pub write_faults: String,
}

pub async fn run(o: SimOptions) -> anyhow::Result<()> {
    if o.token.trim().is_empty() {
        anyhow::bail!("--token: must not be empty");
    }
    let faults = Fault::parse_list(&o.faults).map_err(|e| anyhow::anyhow!("--faults: {e}"))?;
    let write_faults =
        Fault::parse_list(&o.write_faults).map_err(|e| anyhow::anyhow!("--write-faults: {e}"))?;
    let tenant = Tenant::new(&SimConfig::new(o.seed, o.agents.max(1), &o.token));
    let now = Utc::now();
    tenant.generate_history(o.threats, now - chrono::Duration::days(30), now);
    let queued = faults.len();
    tenant.push_faults(faults);
    let queued_writes = write_faults.len();
    tenant.push_write_faults(write_faults);
    let sim = dossier_s1sim::start(tenant, o.listen).await?;
    sim.write_ca_pem(&o.ca_out)?;
    println!("Emulated SentinelOne tenant at {}", sim.base_url);
    println!("CA certificate written to {}", o.ca_out.display());
    if queued > 0 {
        println!("The first {queued} requests for threats meet the faults given");
    }
    if queued_writes > 0 {
        println!("The first {queued_writes} writes meet the write faults given");
    }
    crate::serve::wait_for_signal().await;
    sim.shutdown().await;
    Ok(())
}

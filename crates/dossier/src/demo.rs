//! `dossier demo`: the server, an emulated tenant of every producer this build has (SentinelOne,
//! Microsoft Defender for Endpoint, CrowdStrike Falcon) with realistic threats, one file seen and
//! one device named under two EDRs, and a connector to each, so a newcomer sees live stories at
//! once.

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use clap::Args;
use dossier_domain::access::{Licence, Role};
use dossier_server::auth::new_api_key;
use dossier_server::AppState;
use dossier_store::{ApiKeyRecord, NewConnector};
use rand::Rng;
use secrecy::SecretString;

use crate::admin::uuid_like;
use crate::emulated::{Connector, Emulated, Plan, Shared, KINDS};
use crate::options::{open_store, ServeOptions};

#[derive(Args, Debug)]
pub struct DemoOptions {
    #[command(flatten)]
    pub serve: ServeOptions,
    /// Threats each emulated tenant starts with, spread over the last 30 days.
    #[arg(long, default_value_t = 3000)]
    pub threats: usize,
    /// Devices in each emulated tenant.
    #[arg(long, default_value_t = 300)]
    pub agents: usize,
    /// Seconds between new live threats.
    #[arg(long, default_value_t = 3.0)]
    pub every: f64,
    /// Keep the demo database in the working directory instead of a temporary one.
    #[arg(long)]
    pub keep: bool,
}

/// An account with an admin key and a connector to each emulated tenant.
pub struct Provisioned {
    pub account_id: String,
    pub api_key: String,
    /// In the order of the connectors given.
    pub connector_ids: Vec<String>,
    /// Web sign-ins: (username, password, what the user may do).
    pub logins: Vec<(String, String, &'static str)>,
}

/// Creates an account, an admin key and the connectors directly in the store, and with
/// `web_logins` an admin and a read-only web sign-in (the benchmarks leave these out: a
/// password hash costs a core for a moment, and would be timed with the ingest).
pub async fn provision(
    state: &AppState,
    name: &str,
    connectors: &[(&str, Connector)],
    web_logins: bool,
) -> anyhow::Result<Provisioned> {
    let account = state.store.create_account(name, Licence::Xops).await?;
    let (api_key, hash) = new_api_key();
    state
        .store
        .insert_api_key(&ApiKeyRecord {
            id: uuid_like(&hash),
            account_id: Some(account.id.clone()),
            key_hash: hash,
            roles: vec![Role::Admin],
            created_at: Utc::now(),
            name: None,
        })
        .await?;
    let mut connector_ids = Vec::new();
    for (vendor, c) in connectors {
        let connector = state
            .store
            .create_connector(&NewConnector {
                account_id: account.id.clone(),
                kind: c.kind.into(),
                name: format!("{name} {vendor}"),
                description: Some("emulated tenant".into()),
                tenant_url: c.tenant_url.clone(),
                config: c.config.clone(),
                token_enc: state.secrets.seal(&SecretString::from(c.secret.clone())),
                track_errors: true,
                write_back: false,
                // The emulated SentinelOne tenant carries out response actions, so that they can
                // be tried from a story; the other producers' sources take none yet.
                response: c.kind == "sentinelone",
                now: Utc::now(),
            })
            .await?;
        connector_ids.push(connector.id);
    }
    state.workers.notify_changed();
    let mut logins = Vec::new();
    for (name, roles, what) in [
        ("admin", vec![Role::Admin], "admin"),
        (
            "viewer",
            vec![Role::StoriesViewer, Role::IntegrationsViewer],
            "read-only",
        ),
    ]
    .into_iter()
    .filter(|_| web_logins)
    {
        // A kept database may hold these names from an earlier run already.
        let name_in_use = state.store.find_user(name).await.is_ok();
        let username = if name_in_use {
            format!("{name}-{}", &account.id[..6])
        } else {
            name.to_owned()
        };
        let password = dossier_server::passwords::generate();
        let record = tokio::task::spawn_blocking({
            let (username, password, account) =
                (username.clone(), password.clone(), account.id.clone());
            move || dossier_server::passwords::new_user(&username, &password, roles, Some(account))
        })
        .await?
        .map_err(|m| anyhow::anyhow!(m))?;
        state.store.create_user(&record).await?;
        logins.push((username, password, what));
    }
    Ok(Provisioned {
        account_id: account.id,
        api_key,
        connector_ids,
        logins,
    })
}

pub async fn run(mut o: DemoOptions) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    if !o.keep && o.serve.db.db == "sqlite://dossier.db" {
        o.serve.db.db = format!("sqlite://{}", dir.path().join("dossier-demo.db").display());
        if o.serve.secret_key_file.is_none() {
            o.serve.secret_key_file = Some(dir.path().join("dossier-secret.key"));
        }
    }
    let now = Utc::now();
    let plan = Plan {
        seed: 7,
        devices: o.agents.max(1),
        records: o.threats,
        from: now - chrono::Duration::days(30),
        to: now,
        shared: Shared::demo(),
    };
    let mut tenants = Vec::new();
    for kind in KINDS {
        tenants.push(Emulated::start(kind, &plan).await?);
    }
    let store = open_store(&o.serve.db)?;
    let mut config = o.serve.server_config()?;
    // The emulated tenant lives on loopback with its own CA: the demo, and only the demo,
    // allows that.
    config.allow_private_tenants = true;
    let cas: Vec<&str> = tenants.iter().map(Emulated::ca_pem).collect();
    config.tenant_ca_pem = Some(cas.join("\n").into_bytes());
    let secrets = o.serve.secrets()?;
    dossier_server::secrets::check_shared_key(store.as_ref(), &secrets)
        .await
        .map_err(|e| anyhow::anyhow!("--secret-key-file: {e}"))?;
    let state = AppState::new(store, crate::options::sources(), secrets, config);
    let running = dossier_server::start(state.clone(), o.serve.listen)
        .await
        .map_err(|e| anyhow::anyhow!("--listen: cannot listen on {}: {e}", o.serve.listen))?;
    let connectors: Vec<(&str, Connector)> = tenants
        .iter()
        .map(|t| (t.vendor(), t.connector()))
        .collect();
    let p = provision(&state, "Demo", &connectors, true).await?;

    let base = format!("http://{}", running.addr);
    println!("Dossier demo is running.");
    println!();
    println!("  Web UI:   {base}/");
    for (user, password, what) in &p.logins {
        println!("  Sign in:  {user} / {password}   ({what})");
    }
    println!("  API:      {base}/api/v1/stories");
    println!("  API key:  {}", p.api_key);
    for t in &tenants {
        println!(
            "  Tenant:   {} (emulated {}, {} threats, {} devices)",
            t.base_url(),
            t.vendor(),
            t.count(),
            o.agents
        );
    }
    println!("  Account:  {}", p.account_id);
    println!("  Database: {}", crate::options::redact_url(&o.serve.db.db));
    println!();
    println!(
        "  curl -s -H 'Authorization: Bearer {}' '{base}/api/v1/stories?limit=5'",
        p.api_key
    );
    println!();
    println!(
        "New threats arrive every {:.1} s. Press Ctrl-C to stop.",
        o.every
    );

    let progress = tokio::spawn(show_backfill(state.clone(), p.connector_ids.clone()));
    let tenants = std::sync::Arc::new(tenants);
    let live = tokio::spawn(live_threats(std::sync::Arc::clone(&tenants), o.every));
    crate::serve::wait_for_signal().await;
    live.abort();
    progress.abort();
    running.stop().await;
    // The live task held the other handle; it is aborted, so this one is the last.
    let _ = live.await;
    if let Ok(tenants) = std::sync::Arc::try_unwrap(tenants) {
        for t in tenants {
            t.shutdown().await;
        }
    }
    Ok(())
}

/// Shows the connectors' first sync (the backfill) as a progress bar on stderr, with its ETA,
/// until every one is done: the bar follows the slowest.
pub async fn show_backfill(state: AppState, connector_ids: Vec<String>) {
    let bar = indicatif::ProgressBar::new(1000);
    bar.set_style(
        indicatif::ProgressStyle::with_template("backfill {bar:40} {percent}% {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut slowest: Option<dossier_source::BackfillProgress> = None;
        let mut started = 0;
        let mut threats = 0;
        for id in &connector_ids {
            let Ok(c) = state.store.get_connector(None, id).await else {
                continue;
            };
            threats += c.threats;
            let Some(cp) = c.checkpoint.as_deref() else {
                continue;
            };
            let Ok(cp) = serde_json::from_str::<dossier_source::Checkpoint>(cp) else {
                continue;
            };
            started += 1;
            if let Some(p) = cp.backfill_progress(Utc::now()) {
                if slowest.as_ref().is_none_or(|s| p.fraction < s.fraction) {
                    slowest = Some(p);
                }
            }
        }
        if started < connector_ids.len() {
            continue;
        }
        let Some(p) = slowest else {
            bar.finish_with_message(format!("done: {threats} threats"));
            return;
        };
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a fraction in [0, 1] as per mille"
        )]
        let per_mille = (p.fraction * 1000.0) as u64;
        bar.set_position(per_mille);
        if let Some(eta) = p.eta {
            bar.set_message(format!(
                "{threats} threats, about {} s left",
                eta.num_seconds()
            ));
        }
    }
}

/// Adds a new threat every `every` seconds to one of the tenants in turn, and now and then
/// updates an older one (a mitigation or a verdict), as busy tenants do.
async fn live_threats(tenants: std::sync::Arc<Vec<Emulated>>, every: f64) {
    let period = Duration::from_secs_f64(every.clamp(0.05, 3600.0));
    let mut tick = tokio::time::interval(period);
    for turn in 0usize.. {
        tick.tick().await;
        let tenant = &tenants[turn % tenants.len()];
        let id = tenant.live(Utc::now());
        tracing::debug!(threat_id = %id, vendor = tenant.vendor(), "emulated tenant: new threat");
        if rand::thread_rng().gen_bool(0.3) {
            tenant.update_one(Utc::now());
        }
    }
}

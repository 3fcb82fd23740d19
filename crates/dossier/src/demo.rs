//! `dossier demo`: the server, an emulated SentinelOne tenant with realistic threats, and a
//! connector pointing at it, so a newcomer sees live stories at once.

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use clap::Args;
use dossier_domain::access::{Licence, Role};
use dossier_s1sim::{SimConfig, Tenant};
use dossier_server::auth::new_api_key;
use dossier_server::AppState;
use dossier_store::{ApiKeyRecord, NewConnector};
use rand::Rng;
use secrecy::SecretString;

use crate::admin::uuid_like;
use crate::options::{open_store, ServeOptions};

#[derive(Args, Debug)]
pub struct DemoOptions {
    #[command(flatten)]
    pub serve: ServeOptions,
    /// Threats the emulated tenant starts with, spread over the last 30 days.
    #[arg(long, default_value_t = 3000)]
    pub threats: usize,
    /// Devices in the emulated tenant.
    #[arg(long, default_value_t = 300)]
    pub agents: usize,
    /// Seconds between new live threats.
    #[arg(long, default_value_t = 3.0)]
    pub every: f64,
    /// Keep the demo database in the working directory instead of a temporary one.
    #[arg(long)]
    pub keep: bool,
}

/// An account with an admin key and a connector to an emulated tenant.
pub struct Provisioned {
    pub account_id: String,
    pub api_key: String,
    pub connector_id: String,
    /// Web sign-ins: (username, password, what the user may do).
    pub logins: Vec<(String, String, &'static str)>,
}

/// Creates an account, an admin key and a connector to `tenant_url` directly in the store,
/// and with `web_logins` an admin and a read-only web sign-in (the benchmarks leave these out:
/// a password hash costs a core for a moment, and would be timed with the ingest).
pub async fn provision(
    state: &AppState,
    name: &str,
    tenant_url: &str,
    token: &str,
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
        })
        .await?;
    let connector = state
        .store
        .create_connector(&NewConnector {
            account_id: account.id.clone(),
            kind: "sentinelone".into(),
            name: format!("{name} SentinelOne"),
            description: Some("emulated tenant".into()),
            tenant_url: tenant_url.to_owned(),
            config: "{}".into(),
            token_enc: state.secrets.seal(&SecretString::from(token.to_owned())),
            track_errors: true,
            write_back: false,
            now: Utc::now(),
        })
        .await?;
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
        connector_id: connector.id,
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
    let token = "demo-token-for-the-emulated-tenant";
    let tenant = Tenant::new(&SimConfig::new(7, o.agents.max(1), token));
    let now = Utc::now();
    tenant.generate_history(o.threats, now - chrono::Duration::days(30), now);
    let sim = dossier_s1sim::start(tenant.clone(), "127.0.0.1:0".parse()?).await?;

    let store = open_store(&o.serve.db.db)?;
    let mut config = o.serve.server_config()?;
    // The emulated tenant lives on loopback with its own CA: the demo, and only the demo,
    // allows that.
    config.allow_private_tenants = true;
    config.tenant_ca_pem = Some(sim.ca_pem.clone().into_bytes());
    let state = AppState::new(store, crate::options::sources(), o.serve.secrets()?, config);
    let running = dossier_server::start(state.clone(), o.serve.listen)
        .await
        .map_err(|e| anyhow::anyhow!("--listen: cannot listen on {}: {e}", o.serve.listen))?;
    let p = provision(&state, "Demo", &sim.base_url, token, true).await?;

    let base = format!("http://{}", running.addr);
    println!("Dossier demo is running.");
    println!();
    println!("  Web UI:   {base}/");
    for (user, password, what) in &p.logins {
        println!("  Sign in:  {user} / {password}   ({what})");
    }
    println!("  API:      {base}/api/v1/stories");
    println!("  API key:  {}", p.api_key);
    println!(
        "  Tenant:   {} (emulated SentinelOne, {} threats, {} devices)",
        sim.base_url, o.threats, o.agents
    );
    println!("  Account:  {}", p.account_id);
    println!("  Database: {}", o.serve.db.db);
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

    let progress = tokio::spawn(show_backfill(state.clone(), p.connector_id.clone()));
    let live = tokio::spawn(live_threats(tenant, o.every));
    crate::serve::wait_for_signal().await;
    live.abort();
    progress.abort();
    running.stop().await;
    sim.shutdown().await;
    Ok(())
}

/// Shows the connector's first sync (the backfill) as a progress bar on stderr, with its ETA,
/// until it is done.
pub async fn show_backfill(state: AppState, connector_id: String) {
    let bar = indicatif::ProgressBar::new(1000);
    bar.set_style(
        indicatif::ProgressStyle::with_template("backfill {bar:40} {percent}% {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Ok(c) = state.store.get_connector(None, &connector_id).await else {
            continue;
        };
        let Some(cp) = c.checkpoint.as_deref() else {
            continue;
        };
        let Ok(cp) = serde_json::from_str::<dossier_source::Checkpoint>(cp) else {
            continue;
        };
        if let Some(p) = cp.backfill_progress(Utc::now()) {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a fraction in [0, 1] as per mille"
            )]
            let per_mille = (p.fraction * 1000.0) as u64;
            bar.set_position(per_mille);
            if let Some(eta) = p.eta {
                bar.set_message(format!(
                    "{} threats, about {} s left",
                    c.threats,
                    eta.num_seconds()
                ));
            }
        } else {
            bar.finish_with_message(format!("done: {} threats", c.threats));
            return;
        }
    }
}

/// Adds a new threat every `every` seconds, and now and then updates an older one (a
/// mitigation or a verdict), as a busy tenant does.
async fn live_threats(tenant: Tenant, every: f64) {
    let period = Duration::from_secs_f64(every.clamp(0.05, 3600.0));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let id = tenant.generate_live(Utc::now());
        tracing::debug!(threat_id = %id, "emulated tenant: new threat");
        if rand::thread_rng().gen_bool(0.3) {
            let ids = tenant.all_ids();
            if !ids.is_empty() {
                let pick = rand::thread_rng().gen_range(0..ids.len());
                tenant.update_threat(&ids[pick], Utc::now());
            }
        }
    }
}

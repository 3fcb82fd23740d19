//! `dossier serve`.

use dossier_server::AppState;

use crate::options::{open_store, ServeOptions};

pub async fn run(o: ServeOptions) -> anyhow::Result<()> {
    let store = open_store(&o.db)?;
    let secrets = o.secrets()?;
    dossier_server::secrets::check_shared_key(store.as_ref(), &secrets)
        .await
        .map_err(|e| anyhow::anyhow!("--secret-key-file: {e}"))?;
    let state = AppState::new(
        store,
        crate::options::sources(),
        secrets,
        o.server_config()?,
    );
    let running = dossier_server::start(state, o.listen)
        .await
        .map_err(|e| anyhow::anyhow!("--listen: cannot listen on {}: {e}", o.listen))?;
    tracing::info!(addr = %running.addr, "dossier is serving");
    eprintln!("Dossier is serving on http://{}", running.addr);
    wait_for_signal().await;
    eprintln!("stopping");
    running.stop().await;
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

//! The manager: which connectors this node runs (all of them, or those it holds the lease
//! of), a worker for each, started, restarted on a change and stopped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::run_connector;
use crate::AppState;

/// A handle to wake the manager when connectors change.
#[derive(Clone, Default)]
pub struct Workers {
    changed: Arc<Notify>,
}

impl Workers {
    /// Tells the manager to look at the connectors again now.
    pub fn notify_changed(&self) {
        self.changed.notify_one();
    }
}

/// Which connectors this node may run.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Leased {
    /// No lease round has answered yet.
    Unknown,
    /// All of them: the store does not share its connectors between nodes.
    All,
    /// Those whose leases it holds (none when its leases cannot be renewed).
    Held(Vec<String>),
}

/// Runs this node's lease rounds, every `lease_renew_every`, in a task of its own: a round
/// never waits for the manager's other work (listing connectors, starting workers), and the
/// store gives rounds a connection of their own, so a node busy ingesting still renews its
/// leases in time. The manager hears of each change of what the node holds.
fn spawn_leases(
    state: AppState,
    mut shutdown: watch::Receiver<bool>,
) -> (watch::Receiver<Leased>, JoinHandle<()>) {
    let (tx, rx) = watch::channel(Leased::Unknown);
    let handle = tokio::spawn(async move {
        loop {
            let now = match state
                .store
                .lease_connectors(&state.config.node_id, state.config.lease_ttl)
                .await
            {
                Ok(None) => Leased::All,
                Ok(Some(held)) => Leased::Held(held),
                Err(e) => {
                    // Leases that cannot be renewed expire, and other nodes take them: this
                    // node stops its workers rather than poll tenants it may no longer own
                    // (what they would commit is fenced anyway).
                    tracing::error!(error = %e, "cannot renew connector leases; this node's workers stop");
                    Leased::Held(Vec::new())
                }
            };
            let all = now == Leased::All;
            tx.send_if_modified(|was| {
                let changed = *was != now;
                *was = now;
                changed
            });
            if all {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(state.config.lease_renew_every) => {}
                _ = shutdown.changed() => return,
            }
        }
    });
    (rx, handle)
}

/// Runs the manager until `shutdown` turns true.
pub fn spawn_manager(state: AppState, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut running: HashMap<String, (i64, JoinHandle<()>)> = HashMap::new();
        let (mut leases, lease_task) = spawn_leases(state.clone(), shutdown.clone());
        tokio::select! {
            r = leases.wait_for(|l| *l != Leased::Unknown) => {
                if r.is_err() {
                    tracing::error!("the lease task ended before its first round");
                }
            }
            _ = shutdown.changed() => {}
        }
        let leasing = *leases.borrow() != Leased::All;
        while !*shutdown.borrow() {
            // Which connectors this node runs: all of them, or (nodes sharing a database) those
            // it holds the lease of. The list is read after the round that took a lease, so it
            // carries the generation the lease was taken under.
            let held_now = leases.borrow_and_update().clone();
            match state.store.list_connectors(None).await {
                Ok(mut connectors) => {
                    if let Leased::Held(held) = &held_now {
                        connectors.retain(|c| held.contains(&c.id));
                    }
                    let ids: Vec<String> = connectors.iter().map(|c| c.id.clone()).collect();
                    running.retain(|id, (_, h)| {
                        let keep = ids.contains(id) && !h.is_finished();
                        if !keep {
                            h.abort();
                        }
                        keep
                    });
                    for c in connectors {
                        let replaced = running
                            .get(&c.id)
                            .is_some_and(|(generation, _)| *generation != c.generation);
                        if replaced {
                            if let Some((_, h)) = running.remove(&c.id) {
                                h.abort();
                            }
                        }
                        if !running.contains_key(&c.id) {
                            let generation = c.generation;
                            let id = c.id.clone();
                            let h = tokio::spawn(run_connector(state.clone(), c, shutdown.clone()));
                            running.insert(id, (generation, h));
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot list connectors"),
            }
            state
                .metrics
                .connectors_held
                .set(i64::try_from(running.len()).unwrap_or(i64::MAX));
            let every = if leasing {
                state
                    .config
                    .manager_every
                    .min(state.config.lease_renew_every)
            } else {
                state.config.manager_every
            };
            tokio::select! {
                () = state.workers.changed.notified() => {}
                () = tokio::time::sleep(every) => {}
                r = leases.changed(), if leasing => {
                    if r.is_err() {
                        if !*shutdown.borrow() {
                            // It ended without a shutdown: nothing renews the leases.
                            tracing::error!("the lease task ended; this node's workers stop");
                            for (_, (_, h)) in running.drain() {
                                h.abort();
                            }
                        }
                        break;
                    }
                }
                _ = shutdown.changed() => break,
            }
        }
        // Workers see the same signal and stop at their next wait, writing what is pending
        // (idle polls); one still busy with the tenant after the grace is cut off, which
        // loses nothing that was not committed anyway.
        let deadline = tokio::time::Instant::now() + WORKER_STOP_GRACE;
        for (_, (_, mut h)) in running {
            if tokio::time::timeout_at(deadline, &mut h).await.is_err() {
                h.abort();
            }
        }
        // Then the leases go, once no round can take them again, so that other nodes take
        // the connectors at once.
        let _ = lease_task.await;
        if leasing {
            if let Err(e) = state.store.release_leases(&state.config.node_id).await {
                tracing::warn!(error = %e, "cannot give up this node's leases; they expire");
            }
        }
    })
}

/// How long a stopping server waits for its connector workers to finish by themselves.
const WORKER_STOP_GRACE: Duration = Duration::from_secs(2);

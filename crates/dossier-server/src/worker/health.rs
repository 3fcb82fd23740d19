//! A connector's health as its worker records it: its status and reason, retries shown while
//! a call is still being retried, its events, and what the credentials' expiry makes of it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use dossier_domain::event::EventType;
use dossier_domain::expiry::{Expiry, EXPIRED_REASON};
use dossier_source::{Connection, Failure, FailureKind, Retrying};
use dossier_store::{ConnectorRecord, HealthUpdate, NewEvent, StoreError};
use tokio::sync::watch;

use super::pace::Pace;
use crate::metrics::Metrics;
use crate::AppState;

/// The health that workers could not write (the database refused the write: a full disk),
/// by connector: shown over the stored status until that connector's health is written again
/// or a page of it commits. Kept for the generation it was recorded at, so a connector saved
/// since shows what its save wrote.
#[derive(Default)]
pub struct Unrecorded(Mutex<HashMap<String, UnrecordedHealth>>);

#[derive(Clone)]
struct UnrecordedHealth {
    generation: i64,
    status: String,
    detail: Option<String>,
}

impl Unrecorded {
    /// Keeps the status `update` sets, which could not be written.
    fn keep(&self, rec: &ConnectorRecord, update: &HealthUpdate) {
        let Some(status) = &update.status else {
            return;
        };
        let Ok(mut kept) = self.0.lock() else {
            return;
        };
        let before = kept.get(&rec.id).filter(|k| k.generation == rec.generation);
        let detail = match &update.status_detail {
            Some(d) => d.clone(),
            None => before.and_then(|k| k.detail.clone()),
        };
        kept.insert(
            rec.id.clone(),
            UnrecordedHealth {
                generation: rec.generation,
                status: status.clone(),
                detail,
            },
        );
    }

    /// Forgets what was kept for the connector: what is stored is current again.
    pub(super) fn forget(&self, connector_id: &str) {
        if let Ok(mut kept) = self.0.lock() {
            kept.remove(connector_id);
        }
    }

    /// Shows on `rec` the status its worker could not write, if any: what the connector API
    /// and pages read, over the stored one.
    pub fn over(&self, rec: &mut ConnectorRecord) {
        let Ok(kept) = self.0.lock() else {
            return;
        };
        if let Some(k) = kept.get(&rec.id).filter(|k| k.generation == rec.generation) {
            rec.status.clone_from(&k.status);
            rec.status_detail.clone_from(&k.detail);
        }
    }
}

pub(super) struct Health<'a> {
    pub(super) state: &'a AppState,
    pub(super) rec: &'a ConnectorRecord,
    pub(super) status: String,
    /// The retry the client last told of (see [`Health::watch`]).
    pub(super) retries: watch::Receiver<Option<Retrying>>,
    /// Whether the last watched call showed a retry.
    pub(super) retry_shown: bool,
    /// The connector was saved again or deleted since this worker started: what it records is
    /// refused, it records no more events, and it stops at its next turn.
    pub(super) lost: std::sync::atomic::AtomicBool,
    /// Tries that timed out and were retried, told by the client as they happen and counted
    /// in the connector's errors when the call ends, whatever its outcome.
    pub(super) timeouts: Arc<AtomicU64>,
    /// How the tenant's pages keep pace, and the slow reason last shown (`None` when it keeps
    /// up).
    pub(super) pace: Pace,
    pub(super) slow: Option<String>,
}

impl Health<'_> {
    /// Awaits a client call. Once the client has been retrying it for `retry_shown_after`, each
    /// retry shows on the connector: in error, with the failure and that a retry is under way.
    /// The call's own outcome settles the status afterwards, as it would have anyway.
    pub(super) async fn watch<T>(&mut self, call: impl std::future::Future<Output = T>) -> T {
        self.retry_shown = false;
        self.retries.borrow_and_update();
        tokio::pin!(call);
        loop {
            tokio::select! {
                out = &mut call => {
                    self.count_timeouts().await;
                    return out;
                }
                Ok(()) = self.retries.changed() => {
                    let Some(r) = self.retries.borrow_and_update().clone() else { continue };
                    if r.failing_for >= self.state.config.retry_shown_after {
                        let reason =
                            format!("{}; retry {} of {} under way", r.reason, r.retry, r.of);
                        self.error(reason, false).await;
                        self.retry_shown = true;
                    }
                }
            }
        }
    }

    /// Counts the tries that timed out during the call just ended in the connector's error
    /// figures (a retry may have succeeded: the tenant was slow all the same).
    async fn count_timeouts(&self) {
        let n = self.timeouts.swap(0, Ordering::Relaxed);
        if n == 0 {
            return;
        }
        let labels = Metrics::connector(&self.rec.id);
        self.state.metrics.errors.get_or_create(&labels).inc_by(n);
        let update = HealthUpdate {
            errors_inc: n,
            ..HealthUpdate::default()
        };
        self.record(&update, "error count").await;
    }

    /// Writes `update` to the connector; a failure is logged (`what` could not be recorded)
    /// and the worker goes on. Only while the connector is at the generation this worker was
    /// started for: a worker being replaced does not overwrite what the save, or its
    /// successor, recorded.
    pub(super) async fn record(&self, update: &HealthUpdate, what: &str) {
        let update = HealthUpdate {
            generation: Some(self.rec.generation),
            ..update.clone()
        };
        match self
            .state
            .store
            .set_connector_health(&self.rec.id, &update)
            .await
        {
            // What is stored says the connector's status again.
            Ok(()) if update.status.is_some() => self.state.unrecorded.forget(&self.rec.id),
            Ok(()) => {}
            Err(StoreError::LeaseLost) => {
                tracing::debug!(connector_id = %self.rec.id, "{what} not recorded: the connector changed");
                self.lost.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!(connector_id = %self.rec.id, error = %e, "cannot record {what}");
                // Shown from memory until it can be written.
                self.state.unrecorded.keep(self.rec, &update);
            }
        }
    }

    /// Records the connector connected again, with the rest of `update`; `detail` is what it
    /// says while connected (records that could not be read), if anything.
    pub(super) async fn connected(&mut self, update: HealthUpdate, detail: Option<String>) {
        let update = HealthUpdate {
            status: Some("connected".into()),
            status_detail: Some(detail),
            ..update
        };
        self.record(&update, "connector health").await;
        self.status = "connected".into();
    }

    /// Records the connector waiting for a permission to be granted (`pending`, with what to
    /// grant and where); no error event, since nothing failed that Dossier could mend.
    pub(super) async fn awaiting_consent(&mut self, reason: &str) {
        tracing::info!(connector_id = %self.rec.id, reason, "connector awaits consent");
        let update = HealthUpdate {
            status: Some("pending".into()),
            status_detail: Some(Some(reason.to_owned())),
            ..HealthUpdate::default()
        };
        self.record(&update, "connector health").await;
        self.status = "pending".into();
    }

    pub(super) async fn remember_expiry(&self, e: Expiry) {
        let update = HealthUpdate {
            expiry_warned: Some(e.code()),
            ..HealthUpdate::default()
        };
        self.record(&update, "expiry warning").await;
    }

    pub(super) async fn warn(&self, message: &str, expires_at: chrono::DateTime<Utc>) {
        tracing::warn!(connector_id = %self.rec.id, %expires_at, "{message}");
        if self.rec.track_errors {
            let data = serde_json::json!({ "token_expires_at": expires_at });
            let text = format!("connector {}: {message}", self.rec.name);
            self.event(EventType::ConnectorWarning, text, data).await;
        }
    }

    /// Records a connector event (the caller decides whether the connector tracks them).
    pub(super) async fn event(
        &self,
        event_type: EventType,
        message: String,
        data: serde_json::Value,
    ) {
        if self.lost.load(Ordering::Relaxed) {
            return;
        }
        let event = NewEvent {
            account_id: self.rec.account_id.clone(),
            event_type,
            at: Utc::now(),
            connector_id: Some(self.rec.id.clone()),
            story_id: None,
            incident_id: None,
            message,
            data,
        };
        if let Err(e) = self.state.store.insert_event(&event).await {
            tracing::error!(connector_id = %self.rec.id, error = %e, "cannot record connector event");
        }
    }

    pub(super) async fn error(&mut self, reason: String, counts_as_poll_error: bool) {
        let labels = Metrics::connector(&self.rec.id);
        if counts_as_poll_error {
            self.state.metrics.errors.get_or_create(&labels).inc();
        }
        tracing::warn!(connector_id = %self.rec.id, reason = %reason, "connector error");
        let update = HealthUpdate {
            status: Some("error".into()),
            status_detail: Some(Some(reason.clone())),
            errors_inc: u64::from(counts_as_poll_error),
            ..HealthUpdate::default()
        };
        self.record(&update, "connector health").await;
        if self.status != "error" && self.rec.track_errors {
            let text = format!("connector {} is in error: {reason}", self.rec.name);
            let data = serde_json::json!({ "reason": reason });
            self.event(EventType::ConnectorError, text, data).await;
        }
        self.status = "error".into();
    }
}

/// Reads the credentials' expiry from the tenant; `None` when the tenant cannot tell (some
/// service-user tokens cannot be introspected).
pub(super) async fn token_expiry(
    conn: &dyn Connection,
    rec: &ConnectorRecord,
) -> Option<chrono::DateTime<Utc>> {
    match conn.credential_expiry().await {
        Ok(at) => at,
        Err(e) => {
            tracing::debug!(connector_id = %rec.id, error = %e, "token expiry unknown");
            None
        }
    }
}

/// Gives the 30- and 7-day warnings once each (an event when the connector tracks errors),
/// and turns the connector to `error` once the token has expired. Returns whether it has.
pub(super) async fn check_expiry(
    health: &mut Health<'_>,
    warned: &mut Expiry,
    expires: Option<chrono::DateTime<Utc>>,
) -> bool {
    let now = Utc::now();
    let state = Expiry::of(expires, now);
    if state == Expiry::Expired {
        if *warned != Expiry::Expired || health.status != "error" {
            health.error(EXPIRED_REASON.to_owned(), false).await;
            *warned = Expiry::Expired;
            health.remember_expiry(Expiry::Expired).await;
        }
        return true;
    }
    if state > *warned {
        if let (Some(at), Some(message)) = (expires, expires.and_then(|at| state.warning(at))) {
            health.warn(&message, at).await;
        }
        *warned = state;
        health.remember_expiry(state).await;
    }
    false
}

/// What the connector shows for a failed request, in an operator's words: a 401 for a token
/// known (`expires`) to have expired by `now` says that the token expired, whether it came on
/// the first page or on any poll after; every other failure says what the tenant answered.
pub(super) fn failure_reason(
    e: &Failure,
    expires: Option<chrono::DateTime<Utc>>,
    now: chrono::DateTime<Utc>,
) -> String {
    if e.kind == FailureKind::CredentialsRejected && Expiry::of(expires, now) == Expiry::Expired {
        EXPIRED_REASON.to_owned()
    } else {
        e.reason.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector(generation: i64) -> ConnectorRecord {
        ConnectorRecord {
            id: "c1".into(),
            account_id: "a1".into(),
            kind: "sentinelone".into(),
            name: "Tenant".into(),
            description: None,
            tenant_url: "https://tenant.example".into(),
            token_enc: Vec::new(),
            status: "connected".into(),
            status_detail: None,
            last_success_at: None,
            token_expires_at: None,
            track_errors: false,
            write_back: false,
            response: false,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            checkpoint: None,
            polls: 0,
            errors: 0,
            threats: 0,
            generation,
            expiry_warned: 0,
            config: "{}".into(),
        }
    }

    /// A status that could not be written shows over the stored one, for the generation it was
    /// recorded at, until it is forgotten; an update that sets no status keeps none.
    #[test]
    fn health_that_could_not_be_written_shows_over_the_stored() {
        let kept = Unrecorded::default();
        let rec = connector(3);
        kept.keep(
            &rec,
            &HealthUpdate {
                errors_inc: 1,
                ..HealthUpdate::default()
            },
        );
        let mut shown = rec.clone();
        kept.over(&mut shown);
        assert_eq!(shown.status, "connected", "no status to keep");

        kept.keep(
            &rec,
            &HealthUpdate {
                status: Some("error".into()),
                status_detail: Some(Some("the database could not be written: disk full".into())),
                ..HealthUpdate::default()
            },
        );
        // A later status without a reason keeps the reason kept.
        kept.keep(
            &rec,
            &HealthUpdate {
                status: Some("error".into()),
                ..HealthUpdate::default()
            },
        );
        let mut shown = rec.clone();
        kept.over(&mut shown);
        assert_eq!(shown.status, "error");
        assert_eq!(
            shown.status_detail.as_deref(),
            Some("the database could not be written: disk full")
        );

        let mut saved_since = connector(4);
        kept.over(&mut saved_since);
        assert_eq!(saved_since.status, "connected", "another generation's");

        kept.forget(&rec.id);
        let mut shown = rec.clone();
        kept.over(&mut shown);
        assert_eq!(shown.status, "connected");
    }
}

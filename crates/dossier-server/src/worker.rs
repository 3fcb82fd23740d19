//! Connector workers: one task per connector polls its tenant and commits each page with its
//! checkpoint. A manager starts, restarts (on a configuration change) and stops them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use dossier_domain::event::EventType;
use dossier_domain::expiry::{Expiry, EXPIRED_REASON};
use dossier_domain::Incident;
use dossier_source::{
    credible_updated_at, Checkpoint, Connection, Environment, Failure, FailureKind, Page,
    PollPolicy, RetryObserver, Retrying, Settings, Source, Window,
};
use dossier_store::{ConnectorRecord, HealthUpdate, IngestPage, NewEvent, StoreError};
use rand::Rng;
use tokio::sync::{watch, Notify, OwnedSemaphorePermit};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::recent::Recent;
use crate::AppState;

/// The longest `Retry-After` the worker waits out.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

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

/// Runs the manager until `shutdown` turns true.
pub fn spawn_manager(state: AppState, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut running: HashMap<String, (i64, JoinHandle<()>)> = HashMap::new();
        loop {
            match state.store.list_connectors(None).await {
                Ok(connectors) => {
                    let ids: Vec<String> = connectors.iter().map(|c| c.id.clone()).collect();
                    running.retain(|id, (_, h)| {
                        let keep = ids.contains(id) && !h.is_finished();
                        if !keep {
                            h.abort();
                        }
                        keep
                    });
                    for c in connectors {
                        let stale = running.get(&c.id).is_some_and(|(g, _)| *g != c.generation);
                        if stale {
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
            tokio::select! {
                () = state.workers.changed.notified() => {}
                () = tokio::time::sleep(state.config.manager_every) => {}
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
    })
}

/// How long a stopping server waits for its connector workers to finish by themselves.
const WORKER_STOP_GRACE: Duration = Duration::from_secs(2);

/// Exponential backoff with full jitter.
struct Backoff {
    attempt: u32,
    base: Duration,
    cap: Duration,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let ms = u64::try_from(ceiling.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms))
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// What the status says after a 401 or 403: the worker asks the tenant nothing more until the
/// connector is saved again (a new token, or the same once its user has the permission), which
/// restarts it.
const PAUSED: &str = "polling is paused until the connector is saved again";

/// One page commit counted in [`AppState::commits_in_flight`] while it lasts (also when the
/// commit future is dropped part way).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Waits, asking the tenant nothing, until the server stops; the manager replaces the worker
/// sooner when the connector is saved.
async fn park(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

async fn sleep_or_stop(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => false,
        _ = shutdown.changed() => true,
    }
}

/// The source of a connector's kind; a kind this build does not know is an error to show.
pub(crate) fn source_of(
    state: &AppState,
    rec: &ConnectorRecord,
) -> Result<Arc<dyn Source>, String> {
    state.sources.by_kind(&rec.kind).cloned().ok_or_else(|| {
        format!(
            "this build of Dossier has no {:?} connector (it knows: {})",
            rec.kind,
            state.sources.kinds()
        )
    })
}

/// Connects a connector to its tenant with the deployment's settings.
pub(crate) fn connect(
    state: &AppState,
    source: &dyn Source,
    rec: &ConnectorRecord,
    on_retry: Option<RetryObserver>,
) -> Result<Arc<dyn Connection>, String> {
    let secret = state
        .secrets
        .open(&rec.token_enc)
        .map_err(|e| e.to_string())?;
    let tenant_url = url::Url::parse(&rec.tenant_url).map_err(|e| format!("tenant URL: {e}"))?;
    let env = Environment {
        extra_roots_pem: state.config.tenant_ca_pem.clone(),
        request_timeout: state.config.request_timeout,
        retry_base: state.config.retry_base,
        retry_cap: state.config.retry_cap,
        max_body_bytes: state.config.max_body_bytes,
        refuse_internal_addresses: !state.config.allow_private_tenants,
    };
    source
        .connect(Settings { tenant_url, secret }, &env, on_retry)
        .map_err(|f| f.reason)
}

struct Health<'a> {
    state: &'a AppState,
    rec: &'a ConnectorRecord,
    status: String,
    /// The retry the client last told of (see [`Health::watch`]).
    retries: watch::Receiver<Option<Retrying>>,
    /// Whether the last watched call showed a retry.
    retry_shown: bool,
    /// The connector was saved again or deleted since this worker started: what it records is
    /// refused, it records no more events, and it stops at its next turn.
    lost: std::sync::atomic::AtomicBool,
}

impl Health<'_> {
    /// Awaits a client call. Once the client has been retrying it for `retry_shown_after`, each
    /// retry shows on the connector: in error, with the failure and that a retry is under way.
    /// The call's own outcome settles the status afterwards, as it would have anyway.
    async fn watch<T>(&mut self, call: impl std::future::Future<Output = T>) -> T {
        self.retry_shown = false;
        self.retries.borrow_and_update();
        tokio::pin!(call);
        loop {
            tokio::select! {
                out = &mut call => return out,
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

    /// Writes `update` to the connector; a failure is logged (`what` could not be recorded)
    /// and the worker goes on. Only while the connector is at the generation this worker was
    /// started for: a worker being replaced does not overwrite what the save, or its
    /// successor, recorded.
    async fn record(&self, update: &HealthUpdate, what: &str) {
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
            Ok(()) => {}
            Err(StoreError::LeaseLost) => {
                tracing::debug!(connector_id = %self.rec.id, "{what} not recorded: the connector changed");
                self.lost.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!(connector_id = %self.rec.id, error = %e, "cannot record {what}");
            }
        }
    }

    /// Records the connector connected again, without a reason, with the rest of `update`.
    async fn connected(&mut self, update: HealthUpdate) {
        let update = HealthUpdate {
            status: Some("connected".into()),
            status_detail: Some(None),
            ..update
        };
        self.record(&update, "connector health").await;
        self.status = "connected".into();
    }

    async fn remember_expiry(&self, e: Expiry) {
        let update = HealthUpdate {
            expiry_warned: Some(e.code()),
            ..HealthUpdate::default()
        };
        self.record(&update, "expiry warning").await;
    }

    async fn warn(&self, message: &str, expires_at: chrono::DateTime<Utc>) {
        tracing::warn!(connector_id = %self.rec.id, %expires_at, "{message}");
        if self.rec.track_errors {
            let data = serde_json::json!({ "token_expires_at": expires_at });
            let text = format!("connector {}: {message}", self.rec.name);
            self.event(EventType::ConnectorWarning, text, data).await;
        }
    }

    /// Records a connector event (the caller decides whether the connector tracks them).
    async fn event(&self, event_type: EventType, message: String, data: serde_json::Value) {
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

    async fn error(&mut self, reason: String, counts_as_poll_error: bool) {
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
async fn token_expiry(
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
async fn check_expiry(
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
fn failure_reason(
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

async fn timed_fetch(
    state: &AppState,
    health: &mut Health<'_>,
    conn: &dyn Connection,
    window: &Window,
) -> Result<Page, Failure> {
    let started = std::time::Instant::now();
    let fetched = health.watch(conn.fetch(window)).await;
    state
        .metrics
        .fetch_seconds
        .inc_by(started.elapsed().as_secs_f64());
    fetched
}

/// A 400 in the middle of a walk means the tenant no longer honours the cursor: the walk starts
/// again from the same bound instead of asking with that cursor again.
fn restart_walk_if_cursor_rejected(e: &Failure, checkpoint: &mut Checkpoint, connector_id: &str) {
    if e.kind == FailureKind::Rejected && checkpoint.walk_in_progress() {
        tracing::warn!(connector_id = %connector_id, "cursor rejected; restarting the walk");
        *checkpoint = checkpoint.restart_walk();
    }
}

/// Forgets what was read since the last commit, and its share of the budget: the walk goes
/// back to the last committed checkpoint and reads it again from there.
fn rewind(
    batch: &mut Vec<Incident>,
    held: &mut Vec<OwnedSemaphorePermit>,
    checkpoint: &mut Checkpoint,
    durable: &Checkpoint,
) {
    batch.clear();
    held.clear();
    *checkpoint = durable.clone();
}

async fn run_connector(state: AppState, rec: ConnectorRecord, mut shutdown: watch::Receiver<bool>) {
    let (told, retries) = watch::channel(None);
    let mut health = Health {
        state: &state,
        rec: &rec,
        status: rec.status.clone(),
        retries,
        retry_shown: false,
        lost: std::sync::atomic::AtomicBool::new(false),
    };
    let mut backoff = Backoff {
        attempt: 0,
        base: state.config.retry_base,
        cap: state.config.retry_cap,
    };
    let on_retry: RetryObserver = Arc::new(move |r: &Retrying| {
        told.send_replace(Some(r.clone()));
    });
    let source = match source_of(&state, &rec) {
        Ok(s) => s,
        Err(reason) => {
            health.error(reason, false).await;
            return;
        }
    };
    let client = match connect(&state, source.as_ref(), &rec, Some(on_retry)) {
        Ok(c) => c,
        Err(reason) => {
            health.error(reason, false).await;
            return;
        }
    };
    let client = client.as_ref();
    let labels = Metrics::connector(&rec.id);
    let policy = state.config.poll_policy.clone();

    // The checkpoint of the last committed page, and where the walk has read to: during a
    // backfill several pages are read before one commit, and a failure goes back to the former.
    let mut durable: Checkpoint = rec
        .checkpoint
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_else(|| Checkpoint::initial(Utc::now(), &policy));
    let mut checkpoint = durable.clone();

    // When the token expires, as far as this worker knows: what was stored until the tenant
    // is asked again.
    let mut expires = rec.token_expires_at;
    // The first page verifies URL, TLS, token and permission as every poll meets them; only
    // then is the token's expiry asked, so the first stories do not wait a turn at the token's
    // throttle for it.
    let first_page = loop {
        match timed_fetch(&state, &mut health, client, &checkpoint.window(&policy)).await {
            Ok(page) => break page,
            Err(e) => {
                let reason = failure_reason(&e, expires, Utc::now());
                if e.needs_operator() {
                    health.error(format!("{reason}; {PAUSED}"), true).await;
                    if !health.lost.load(Ordering::Relaxed) {
                        park(&mut shutdown).await;
                    }
                    return;
                }
                // A walk resumed after a restart may carry a cursor the tenant no longer honours.
                restart_walk_if_cursor_rejected(&e, &mut checkpoint, &rec.id);
                health.error(reason, true).await;
                if health.lost.load(Ordering::Relaxed)
                    || sleep_or_stop(backoff.next(), &mut shutdown).await
                {
                    return;
                }
            }
        }
    };
    expires = token_expiry(client, &rec).await;
    let mut token_checked = std::time::Instant::now();
    let update = HealthUpdate {
        token_expires_at: Some(expires),
        ..HealthUpdate::default()
    };
    health.connected(update).await;
    backoff.reset();
    let mut warned = Expiry::from_code(rec.expiry_warned);
    // Threats read but not committed yet: always part of one walk, and always re-readable from
    // `durable`.
    let mut batch: Vec<Incident> = Vec::new();
    // The batch's share of the budget all connectors' batches draw on; given back at commit.
    let mut held: Vec<OwnedSemaphorePermit> = Vec::new();
    // None until the first commit: the first page commits alone, so stories show at once.
    let mut last_commit: Option<std::time::Instant> = None;

    // Threats committed recently enough to be read again: not committed twice.
    let mut recent = Recent::default();
    // The next page of a walk, fetched while the previous page was being committed (or, at
    // the start, the page that verified the connector).
    let mut prefetched: Option<Result<Page, Failure>> = Some(Ok(first_page));
    // Polls that read nothing and were not written yet (see `idle_commit_every`), and when
    // the last of them was answered.
    let mut unwritten_polls: u64 = 0;
    let mut last_poll_at = Utc::now();
    loop {
        if *shutdown.borrow() {
            break;
        }
        if health.lost.load(Ordering::Relaxed) {
            tracing::info!(connector_id = %rec.id, "connector changed: its old worker stops");
            return;
        }
        // The expiry is read again daily (a token can be extended); between reads the clock
        // alone says when a warning is due.
        if token_checked.elapsed() > Duration::from_secs(24 * 3600) {
            expires = token_expiry(client, &rec).await;
            token_checked = std::time::Instant::now();
            let update = HealthUpdate {
                token_expires_at: Some(expires),
                ..HealthUpdate::default()
            };
            health.record(&update, "token expiry").await;
        }
        if check_expiry(&mut health, &mut warned, expires).await {
            // Nothing to poll with: a new token (PATCH) restarts this worker.
            rewind(&mut batch, &mut held, &mut checkpoint, &durable);
            if sleep_or_stop(state.config.retry_cap, &mut shutdown).await {
                return;
            }
            continue;
        }
        let fetched = match prefetched.take() {
            Some(f) => f,
            // A stop does not wait for a slow tenant: the poll is simply not made.
            None => {
                let window = checkpoint.window(&policy);
                tokio::select! {
                    f = timed_fetch(&state, &mut health, client, &window) => f,
                    _ = shutdown.wait_for(|stop| *stop) => break,
                }
            }
        };
        let mut page = match fetched {
            Ok(p) => p,
            Err(e) => {
                rewind(&mut batch, &mut held, &mut checkpoint, &durable);
                restart_walk_if_cursor_rejected(&e, &mut checkpoint, &rec.id);
                // The token may have expired while this request was on its way.
                let reason = failure_reason(&e, expires, Utc::now());
                if e.needs_operator() {
                    // Not retried (SENTINELONE.md §6.7): a revoked token or a missing
                    // permission stays so until someone changes it.
                    health.error(format!("{reason}; {PAUSED}"), true).await;
                    if !health.lost.load(Ordering::Relaxed) {
                        park(&mut shutdown).await;
                    }
                    return;
                }
                health.error(reason, true).await;
                let wait = match &e {
                    // Honoured, up to an hour: a bogus value must not stop the connector.
                    Failure {
                        kind:
                            FailureKind::RateLimited {
                                retry_after: Some(d),
                            },
                        ..
                    } => (*d).min(MAX_RETRY_AFTER),
                    _ => backoff.next(),
                };
                if sleep_or_stop(wait, &mut shutdown).await {
                    return;
                }
                continue;
            }
        };
        let map_started = std::time::Instant::now();
        let before = batch.len();
        batch.reserve(page.records.len());
        // A far-future timestamp (seen in STAR alerts) must not push the checkpoint past every
        // threat to come.
        let read_at = Utc::now();
        let mut page_max = None;
        for raw in std::mem::take(&mut page.records) {
            match source.map(raw) {
                Ok(i) => {
                    page_max = page_max.max(credible_updated_at(i.updated_at, read_at));
                    // Read again (the overlap, a sweep, a far-future threat): not new.
                    if !recent.knows(&i) {
                        batch.push(i);
                    }
                }
                Err(e) => {
                    state.metrics.unmappable.get_or_create(&labels).inc();
                    tracing::warn!(connector_id = %rec.id, error = %e, "threat skipped: it cannot be read");
                }
            }
        }
        state
            .metrics
            .map_seconds
            .inc_by(map_started.elapsed().as_secs_f64());
        let next =
            checkpoint.after_page(page_max, page.next_cursor.as_deref(), &policy, Utc::now());
        // A backfill reads on while another commit holds the writer and the batch is small and
        // young: one commit of several pages writes each touched index page once instead of
        // once per page, and the age bound keeps stories coming (and the work a crash loses
        // small) on a slow tenant or machine. A writer with nothing to do takes the batch as
        // it is: waiting for more would leave it idle. Outside a walk (new threats as they
        // come) every page commits at once.
        if next.walk_in_progress()
            && batch.len() < state.config.ingest_batch
            && state.commits_in_flight.load(Ordering::Relaxed) > 0
            && last_commit.is_some_and(|t| t.elapsed() < state.config.ingest_batch_wait)
        {
            let page_len = u32::try_from(batch.len() - before).unwrap_or(u32::MAX);
            if let Ok(p) = Arc::clone(&state.ingest_budget).try_acquire_many_owned(page_len) {
                held.push(p);
                checkpoint = next;
                continue;
            }
            // Other connectors hold the budget: this batch commits as it is.
        }
        // An idle poll (nothing read, no walk going on, nothing waiting) is not written while
        // the connector shows connected and the last commit is recent: losing its checkpoint
        // costs only reading the same empty window again. The page that ends a walk (or the
        // backfill) is always written, even empty: the stored checkpoint must not stay
        // mid-walk.
        if batch.is_empty()
            && !next.walk_in_progress()
            && !durable.walk_in_progress()
            && durable.backfill_started.is_none()
            && health.status == "connected"
            && last_commit.is_some_and(|t| t.elapsed() < state.config.idle_commit_every)
        {
            unwritten_polls += 1;
            last_poll_at = Utc::now();
            checkpoint = next;
            backoff.reset();
            state.metrics.polls.get_or_create(&labels).inc();
            if sleep_or_stop(state.config.poll_interval, &mut shutdown).await {
                break;
            }
            continue;
        }
        let now = Utc::now();
        let received = batch.len() as u64;
        let created: Vec<chrono::DateTime<Utc>> = batch.iter().map(|i| i.created_at).collect();
        let newest = batch.iter().map(|i| i.updated_at).max();
        let horizon = now - recent_horizon(&policy);
        let versions = Recent::worth_keeping(&batch, horizon);
        let incidents = std::mem::take(&mut batch);
        let Some(ingest) = ingest_page(&state, &rec, &next, incidents, now, unwritten_polls + 1)
        else {
            return;
        };
        let commit_started = std::time::Instant::now();
        let commit = async {
            let _in_flight = InFlight::enter(&state.commits_in_flight);
            let committed = state.store.commit_page(ingest).await;
            let elapsed = commit_started.elapsed().as_secs_f64();
            state.metrics.commit_seconds.inc_by(elapsed);
            committed
        };
        // While a walk goes on, the next page is fetched as this one commits: its query depends
        // on this page's cursor, not on the commit. It is used only if the commit succeeds.
        let (committed, next_page) = if next.walk_in_progress() {
            let next_window = next.window(&policy);
            let fetch = timed_fetch(&state, &mut health, client, &next_window);
            let (c, n) = tokio::join!(commit, fetch);
            (c, Some(n))
        } else {
            (commit.await, None)
        };
        // The batch is out of memory once the store has answered, either way.
        held.clear();
        match committed {
            Ok(outcome) => {
                recent.committed(versions, horizon);
                unwritten_polls = 0;
                last_commit = Some(std::time::Instant::now());
                durable = next.clone();
                checkpoint = next;
                prefetched = next_page;
                backoff.reset();
                // A prefetch that showed a retry may have done so before or after this commit
                // recorded the connector connected: its outcome settles the status. A failure
                // is recorded when it is handled; a success is recorded here.
                match (&prefetched, health.retry_shown) {
                    (Some(Err(_)), true) => {}
                    (Some(Ok(_)), true) => health.connected(HealthUpdate::default()).await,
                    _ => health.status = "connected".into(),
                }
                state.metrics.polls.get_or_create(&labels).inc();
                state
                    .metrics
                    .threats
                    .get_or_create(&labels)
                    .inc_by(received);
                state.metrics.incidents_new.inc_by(outcome.incidents_new);
                state
                    .metrics
                    .incidents_updated
                    .inc_by(outcome.incidents_updated);
                state
                    .metrics
                    .stories_created
                    .inc_by(outcome.stories_created);
                if outcome.incidents_new > 0 {
                    let committed = Utc::now();
                    for c in created {
                        let secs = (committed - c).num_milliseconds() as f64 / 1000.0;
                        if (0.0..3600.0).contains(&secs) {
                            state.metrics.story_latency.observe(secs);
                        }
                    }
                }
                if let Some(n) = newest {
                    state
                        .metrics
                        .lag_seconds
                        .get_or_create(&labels)
                        .set((now - n).num_seconds());
                }
            }
            Err(StoreError::LeaseLost) => {
                // The connector was saved again or deleted while this page was on its way:
                // nothing of it was written, and the worker of the new generation (if any)
                // reads on from the stored checkpoint.
                tracing::info!(connector_id = %rec.id, "connector changed: its old worker stops");
                return;
            }
            Err(e) => {
                // Nothing was committed: the pages will be read again.
                rewind(&mut batch, &mut held, &mut checkpoint, &durable);
                tracing::error!(connector_id = %rec.id, error = %e, "cannot commit a page of threats");
                if sleep_or_stop(backoff.next(), &mut shutdown).await {
                    return;
                }
                continue;
            }
        }
        if !checkpoint.walk_in_progress()
            && sleep_or_stop(state.config.poll_interval, &mut shutdown).await
        {
            break;
        }
    }
    // Stopping: idle polls not written yet are written now, so that after a restart the
    // connector shows every poll it made and when it last succeeded. A batch read mid-walk is
    // not: it is read again from the stored checkpoint.
    if unwritten_polls > 0 && batch.is_empty() && health.status == "connected" {
        write_idle_polls(&state, &rec, &checkpoint, unwritten_polls, last_poll_at).await;
    }
}

/// How long before now a threat's `updatedAt` may be and a walk still read it again (a sweep
/// reaches furthest), with room for the tenant's clock being ahead of ours or behind.
fn recent_horizon(policy: &PollPolicy) -> chrono::Duration {
    policy.sweep_overlap.abs().max(policy.overlap.abs()) + chrono::Duration::minutes(10)
}

/// The page that commits `incidents` with `checkpoint`, counting `polls` polls, as of `now`;
/// `None` (logged) when the checkpoint cannot be encoded.
fn ingest_page(
    state: &AppState,
    rec: &ConnectorRecord,
    checkpoint: &Checkpoint,
    incidents: Vec<Incident>,
    now: chrono::DateTime<Utc>,
    polls: u64,
) -> Option<IngestPage> {
    let checkpoint = serde_json::to_string(checkpoint)
        .inspect_err(|e| {
            tracing::error!(connector_id = %rec.id, error = %e, "cannot encode checkpoint");
        })
        .ok()?;
    Some(IngestPage {
        account_id: rec.account_id.clone(),
        connector_id: rec.id.clone(),
        incidents,
        checkpoint,
        now,
        policy: state.config.correlation,
        polls,
        generation: rec.generation,
    })
}

/// Commits the checkpoint of polls that read nothing, counting them, as of `at`.
async fn write_idle_polls(
    state: &AppState,
    rec: &ConnectorRecord,
    checkpoint: &Checkpoint,
    polls: u64,
    at: chrono::DateTime<Utc>,
) {
    let Some(page) = ingest_page(state, rec, checkpoint, Vec::new(), at, polls) else {
        return;
    };
    match state.store.commit_page(page).await {
        Ok(_) => tracing::debug!(connector_id = %rec.id, polls, "idle polls written on stopping"),
        Err(StoreError::LeaseLost) => {
            tracing::debug!(connector_id = %rec.id, "idle polls not written: the connector changed");
        }
        Err(e) => {
            tracing::warn!(connector_id = %rec.id, error = %e, "idle polls not written on stopping");
        }
    }
}

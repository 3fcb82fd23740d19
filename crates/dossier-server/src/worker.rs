//! Connector workers: one task per connector polls its tenant and commits each page with its
//! checkpoint. A manager starts, restarts (on a configuration change) and stops them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use dossier_domain::event::EventType;
use dossier_domain::expiry::{Expiry, EXPIRED_REASON};
use dossier_domain::Incident;
use dossier_source::{
    credible_updated_at, Checkpoint, Connection, Environment, Failure, FailureKind, Page,
    PollPolicy, RetryObserver, Retrying, Settings, Source, Unreadable, Window,
};
use dossier_store::{ConnectorRecord, HealthUpdate, IngestPage, NewEvent, StoreError};
use rand::Rng;
use tokio::sync::{watch, OwnedSemaphorePermit};

use crate::metrics::Metrics;
use crate::recent::Recent;
use crate::AppState;

mod health;
mod manager;
mod pace;

pub use health::Unrecorded;
use health::{check_expiry, failure_reason, token_expiry, Health};
pub use manager::{spawn_manager, Workers};

/// The longest `Retry-After` the worker waits out.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

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
    let config = serde_json::from_str(&rec.config)
        .map_err(|e| format!("the connector's stored settings do not read: {e}"))?;
    let env = Environment {
        extra_roots_pem: state.config.tenant_ca_pem.clone(),
        request_timeout: state.config.request_timeout,
        retry_base: state.config.retry_base,
        retry_cap: state.config.retry_cap,
        max_body_bytes: state.config.max_body_bytes,
        refuse_internal_addresses: !state.config.allow_private_tenants,
    };
    source
        .connect(
            Settings {
                tenant_url,
                config,
                secret,
            },
            &env,
            on_retry,
        )
        .map_err(|f| f.reason)
}

async fn timed_fetch(
    state: &AppState,
    health: &mut Health<'_>,
    conn: &dyn Connection,
    window: &Window,
) -> Result<Page, Failure> {
    let started = std::time::Instant::now();
    let fetched = health.watch(conn.fetch(window)).await;
    let took = started.elapsed();
    state.metrics.fetch_seconds.inc_by(took.as_secs_f64());
    if fetched.is_ok() {
        health.pace.page(took);
    }
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
    reported: &mut Vec<NewEvent>,
    checkpoint: &mut Checkpoint,
    durable: &Checkpoint,
) {
    batch.clear();
    held.clear();
    // What the batch found unreadable is found again when it is read again: the checkpoint
    // that remembered it goes back too.
    reported.clear();
    *checkpoint = durable.clone();
}

/// What the loop does after a step.
enum Flow {
    /// Go on with the next turn at once.
    Next,
    /// Go on after the poll interval, unless a walk is under way.
    Wait,
    /// Stop, writing idle polls not written yet.
    Stop,
    /// Stop at once: the connector changed or cannot poll.
    Quit,
}

/// One connector's worker while it runs: where its walk is, what it read and not yet
/// committed, and how its tenant has been answering.
struct Poller<'a> {
    state: &'a AppState,
    rec: &'a ConnectorRecord,
    source: &'a dyn Source,
    conn: &'a dyn Connection,
    health: Health<'a>,
    backoff: Backoff,
    policy: PollPolicy,
    labels: crate::metrics::ConnectorLabels,
    /// The checkpoint of the last committed page, and where the walk has read to: during a
    /// backfill several pages are read before one commit, and a failure goes back to the
    /// former.
    durable: Checkpoint,
    checkpoint: Checkpoint,
    /// When the token expires, as far as this worker knows: what was stored until the tenant
    /// is asked again.
    expires: Option<chrono::DateTime<Utc>>,
    token_checked: std::time::Instant,
    warned: Expiry,
    /// Threats read but not committed yet: always part of one walk, and always re-readable
    /// from `durable`.
    batch: Vec<Incident>,
    /// The batch's share of the budget all connectors' batches draw on; given back at commit.
    held: Vec<OwnedSemaphorePermit>,
    /// Events for the records of the batch that could not be read, committed with it (the
    /// checkpoint that remembers them goes in the same transaction).
    reported: Vec<NewEvent>,
    /// None until the first commit: the first page commits alone, so stories show at once.
    last_commit: Option<std::time::Instant>,
    /// Threats committed recently enough to be read again: not committed twice.
    recent: Recent,
    /// The next page of a walk, fetched while the previous page was being committed (or, at
    /// the start, the page that verified the connector).
    prefetched: Option<Result<Page, Failure>>,
    /// Polls that read nothing and were not written yet (see `idle_commit_every`), and when
    /// the last of them was answered.
    unwritten_polls: u64,
    last_poll_at: chrono::DateTime<Utc>,
}

async fn run_connector(state: AppState, rec: ConnectorRecord, mut shutdown: watch::Receiver<bool>) {
    let (told, retries) = watch::channel(None);
    let timeouts = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut health = Health {
        state: &state,
        rec: &rec,
        status: rec.status.clone(),
        retries,
        retry_shown: false,
        lost: std::sync::atomic::AtomicBool::new(false),
        timeouts: Arc::clone(&timeouts),
        pace: pace::Pace::new(
            state.config.slow_page_after,
            state.config.slow_backlog_after,
        ),
        slow: None,
    };
    let on_retry: RetryObserver = Arc::new(move |r: &Retrying| {
        if r.timed_out {
            timeouts.fetch_add(1, Ordering::Relaxed);
        }
        told.send_replace(Some(r.clone()));
    });
    let connected = state
        .sources
        .of_kind(&rec.kind)
        .and_then(|s| Ok((connect(&state, s.as_ref(), &rec, Some(on_retry))?, s)));
    let (conn, source) = match connected {
        Ok(c) => c,
        Err(reason) => {
            health.error(reason, false).await;
            return;
        }
    };
    let policy = state.config.poll_policy.clone();
    let durable: Checkpoint = rec
        .checkpoint
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_else(|| Checkpoint::initial(Utc::now(), &policy));
    let mut p = Poller {
        state: &state,
        rec: &rec,
        source: source.as_ref(),
        conn: conn.as_ref(),
        health,
        backoff: Backoff {
            attempt: 0,
            base: state.config.retry_base,
            cap: state.config.retry_cap,
        },
        policy,
        labels: Metrics::connector(&rec.id),
        checkpoint: durable.clone(),
        durable,
        expires: rec.token_expires_at,
        token_checked: std::time::Instant::now(),
        warned: Expiry::from_code(rec.expiry_warned),
        batch: Vec::new(),
        held: Vec::new(),
        reported: Vec::new(),
        last_commit: None,
        recent: Recent::default(),
        prefetched: None,
        unwritten_polls: 0,
        last_poll_at: Utc::now(),
    };
    let Some(first_page) = p.verify(&mut shutdown).await else {
        return;
    };
    p.prefetched = Some(Ok(first_page));
    loop {
        if *shutdown.borrow() {
            break;
        }
        if p.health.lost.load(Ordering::Relaxed) {
            tracing::info!(connector_id = %rec.id, "connector changed: its old worker stops");
            return;
        }
        let flow = p.turn(&mut shutdown).await;
        let wait = match flow {
            Flow::Next => false,
            Flow::Wait => !p.checkpoint.walk_in_progress(),
            Flow::Stop => break,
            Flow::Quit => return,
        };
        if wait && sleep_or_stop(state.config.poll_interval, &mut shutdown).await {
            break;
        }
    }
    // Stopping: idle polls not written yet are written now, so that after a restart the
    // connector shows every poll it made and when it last succeeded. A batch read mid-walk is
    // not: it is read again from the stored checkpoint.
    if p.unwritten_polls > 0 && p.batch.is_empty() && p.health.status == "connected" {
        write_idle_polls(
            &state,
            &rec,
            &p.checkpoint,
            p.unwritten_polls,
            p.last_poll_at,
        )
        .await;
    }
}

impl Poller<'_> {
    /// Reads the first page, which also verifies URL, TLS, token and permission as every poll
    /// meets them; only then is the token's expiry asked, so the first stories do not wait a
    /// turn at the token's throttle for it. `None` when the worker stops instead.
    async fn verify(&mut self, shutdown: &mut watch::Receiver<bool>) -> Option<Page> {
        let first_page = loop {
            let window = self.checkpoint.window(&self.policy);
            match timed_fetch(self.state, &mut self.health, self.conn, &window).await {
                Ok(page) => break page,
                Err(e) => {
                    let reason = self.reason(&e);
                    if e.kind == FailureKind::ConsentPending {
                        // Granted in the vendor's console, not here: asked again every while.
                        self.health.awaiting_consent(&reason).await;
                        if self.health.lost.load(Ordering::Relaxed)
                            || sleep_or_stop(self.state.config.retry_cap, shutdown).await
                        {
                            return None;
                        }
                        continue;
                    }
                    if e.needs_operator() {
                        self.pause(&reason, shutdown).await;
                        return None;
                    }
                    if self.smaller_pages(&e, window.limit).await {
                        continue;
                    }
                    // A walk resumed after a restart may carry a cursor the tenant no longer
                    // honours.
                    restart_walk_if_cursor_rejected(&e, &mut self.checkpoint, &self.rec.id);
                    self.health.error(reason, true).await;
                    if self.health.lost.load(Ordering::Relaxed)
                        || sleep_or_stop(self.backoff.next(), shutdown).await
                    {
                        return None;
                    }
                }
            }
        };
        self.expires = token_expiry(self.conn, self.rec).await;
        self.token_checked = std::time::Instant::now();
        let update = HealthUpdate {
            token_expires_at: Some(self.expires),
            ..HealthUpdate::default()
        };
        self.pace(&self.checkpoint.clone()).await;
        let detail = self.detail(&self.checkpoint);
        self.health.connected(update, detail).await;
        self.backoff.reset();
        Some(first_page)
    }

    /// Puts the connector in error with a reason only an operator can mend, and waits for the
    /// server to stop (the manager replaces the worker sooner when the connector is saved).
    async fn pause(&mut self, reason: &str, shutdown: &mut watch::Receiver<bool>) {
        // A token known to have expired reads as the expiry check words it (PRODUCT.md: "token
        // expired — create a new service-user token"), whichever of the two noticed first: the
        // same cause gives the same reason, and that one already says what to do.
        let detail = if reason == EXPIRED_REASON {
            reason.to_owned()
        } else {
            format!("{reason}; {PAUSED}")
        };
        self.health.error(detail, true).await;
        if !self.health.lost.load(Ordering::Relaxed) {
            park(shutdown).await;
        }
    }

    /// One turn of the loop: the expiry, a page read (or taken from the prefetch), and what
    /// becomes of it.
    async fn turn(&mut self, shutdown: &mut watch::Receiver<bool>) -> Flow {
        if self.expired().await {
            // Nothing to poll with: a new token (PATCH) restarts this worker.
            rewind(
                &mut self.batch,
                &mut self.held,
                &mut self.reported,
                &mut self.checkpoint,
                &self.durable,
            );
            if sleep_or_stop(self.state.config.retry_cap, shutdown).await {
                return Flow::Quit;
            }
            return Flow::Next;
        }
        let fetched = if let Some(f) = self.prefetched.take() {
            f
        } else {
            // A stop does not wait for a slow tenant: the poll is simply not made.
            let window = self.checkpoint.window(&self.policy);
            tokio::select! {
                f = timed_fetch(self.state, &mut self.health, self.conn, &window) => f,
                _ = shutdown.wait_for(|stop| *stop) => return Flow::Stop,
            }
        };
        match fetched {
            Ok(page) => self.read(page, shutdown).await,
            Err(e) => self.failed(&e, shutdown).await,
        }
    }

    /// Reads the token's expiry again daily (a token can be extended; between reads the clock
    /// alone says when a warning is due), gives the warnings, and returns whether the token
    /// has expired.
    async fn expired(&mut self) -> bool {
        if self.token_checked.elapsed() > Duration::from_secs(24 * 3600) {
            self.expires = token_expiry(self.conn, self.rec).await;
            self.token_checked = std::time::Instant::now();
            let update = HealthUpdate {
                token_expires_at: Some(self.expires),
                ..HealthUpdate::default()
            };
            self.health.record(&update, "token expiry").await;
        }
        check_expiry(&mut self.health, &mut self.warned, self.expires).await
    }

    /// A read that failed: the walk goes back to the last commit, and the worker pauses (a
    /// refused token or permission) or waits its turn to try again.
    async fn failed(&mut self, e: &Failure, shutdown: &mut watch::Receiver<bool>) -> Flow {
        // The page size asked for when it failed: going back to the last commit does not
        // make pages larger again.
        let asked = self.checkpoint.window(&self.policy).limit;
        rewind(
            &mut self.batch,
            &mut self.held,
            &mut self.reported,
            &mut self.checkpoint,
            &self.durable,
        );
        restart_walk_if_cursor_rejected(e, &mut self.checkpoint, &self.rec.id);
        if self.smaller_pages(e, asked).await {
            return Flow::Next;
        }
        // The token may have expired while this request was on its way.
        let reason = self.reason(e);
        if e.kind == FailureKind::ConsentPending {
            self.health.awaiting_consent(&reason).await;
            if sleep_or_stop(self.state.config.retry_cap, shutdown).await {
                return Flow::Quit;
            }
            return Flow::Next;
        }
        if e.needs_operator() {
            // Not retried (SENTINELONE.md §6.7): a revoked token or a missing permission stays
            // so until someone changes it.
            self.pause(&reason, shutdown).await;
            return Flow::Quit;
        }
        self.health.error(reason, true).await;
        let wait = match e.kind {
            // Honoured, up to an hour: a bogus value must not stop the connector.
            FailureKind::RateLimited {
                retry_after: Some(d),
            } => d.min(MAX_RETRY_AFTER),
            _ => self.backoff.next(),
        };
        if sleep_or_stop(wait, shutdown).await {
            return Flow::Quit;
        }
        Flow::Next
    }

    /// What the connector shows for a failed request; a response over the size cap at one
    /// record per page that the source could not read past (it did not outline one record
    /// with an id) says that the record alone is over the cap, which only a larger cap mends.
    fn reason(&self, e: &Failure) -> String {
        let reason = failure_reason(e, self.expires, Utc::now());
        if e.kind == FailureKind::TooLarge && self.checkpoint.window(&self.policy).limit == 1 {
            let record_name = self.source.labels().record_name;
            format!("{reason}: a single {record_name} is larger than that, and the connector cannot read past it")
        } else {
            reason
        }
    }

    /// Over the size cap: the same place is asked again at once with half the records per
    /// page (of `asked`), down to one, so that large records never wedge the connector.
    /// Returns whether it will be; not for another failure, or a page of one record.
    async fn smaller_pages(&mut self, e: &Failure, asked: u32) -> bool {
        if e.kind != FailureKind::TooLarge {
            return false;
        }
        self.checkpoint.page_limit = Some(asked);
        let Some(smaller) = self.checkpoint.smaller_pages(&self.policy) else {
            return false;
        };
        let limit = smaller.window(&self.policy).limit;
        tracing::warn!(connector_id = %self.rec.id, limit, "response over the size cap: asking for smaller pages");
        // A failed request all the same: it counts in the connector's error figures, and its
        // status stays as it was.
        self.state.metrics.errors.get_or_create(&self.labels).inc();
        let counted = HealthUpdate {
            errors_inc: 1,
            ..HealthUpdate::default()
        };
        self.health.record(&counted, "error count").await;
        self.checkpoint = smaller;
        true
    }

    /// A record that could not be read: counted, and reported once per version (its event
    /// is committed with the batch and the checkpoint that remembers it), so that nothing is
    /// dropped in silence; a later version is mapped again when the walk reads it.
    fn unreadable(&mut self, u: &Unreadable) {
        self.state
            .metrics
            .unmappable
            .get_or_create(&self.labels)
            .inc();
        if !self.checkpoint.note_unreadable(&u.key) {
            tracing::debug!(connector_id = %self.rec.id, record_id = %u.key.id, "unreadable record read again");
            return;
        }
        let record_name = self.source.labels().record_name;
        tracing::warn!(connector_id = %self.rec.id, record_id = %u.key.id, reason = %u.reason, "record cannot be read: reported as an event");
        self.reported.push(NewEvent {
            account_id: self.rec.account_id.clone(),
            event_type: EventType::IncidentUnreadable,
            at: Utc::now(),
            connector_id: Some(self.rec.id.clone()),
            story_id: None,
            incident_id: u.has_id.then(|| u.key.id.clone()),
            message: format!(
                "{} {record_name} from connector {} could not be read: {}",
                if record_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                },
                self.rec.name,
                u.reason
            ),
            data: serde_json::json!({
                "record_id": u.has_id.then_some(&u.key.id),
                "updated": (!u.key.updated.is_empty()).then_some(&u.key.updated),
                "reason": u.reason,
            }),
        });
    }

    /// What the status says while connected: that records of `checkpoint` could not be
    /// read, that the tenant is slow, or both.
    fn detail(&self, checkpoint: &Checkpoint) -> Option<String> {
        let unreadable = checkpoint.unreadable_reason(self.source.labels().record_name);
        match (unreadable, self.health.slow.clone()) {
            (Some(u), Some(s)) => Some(format!("{u}; {s}")),
            (u, s) => u.or(s),
        }
    }

    /// Takes the walk's backlog after a page (`next` is the checkpoint after it) into the
    /// pace, and returns whether the slow reason changed since it was shown. A connector that
    /// turns slow is logged, and recorded as an event when it tracks errors.
    async fn pace(&mut self, next: &Checkpoint) -> bool {
        let now = std::time::Instant::now();
        let behind = if next.walk_in_progress() {
            next.high_water.map(|h| Utc::now() - h)
        } else {
            None
        };
        self.health.pace.backlog(behind, now);
        let reason = self.health.pace.reason(now);
        if reason == self.health.slow {
            return false;
        }
        match (&reason, &self.health.slow) {
            (Some(r), None) => {
                tracing::warn!(connector_id = %self.rec.id, reason = %r, "connector is slow");
                if self.rec.track_errors {
                    let text = format!("connector {} is {r}", self.rec.name);
                    let data = serde_json::json!({ "reason": r });
                    self.health
                        .event(EventType::ConnectorWarning, text, data)
                        .await;
                }
            }
            (None, Some(_)) => {
                tracing::info!(connector_id = %self.rec.id, "connector keeps up with its tenant again");
            }
            _ => {}
        }
        self.health.slow = reason;
        true
    }

    /// Maps a page's records into the batch, leaving out those committed already, and returns
    /// the page's highest credible update time.
    fn map_page(&mut self, page: &mut Page) -> Option<chrono::DateTime<Utc>> {
        let map_started = std::time::Instant::now();
        self.batch.reserve(page.records.len());
        // A far-future timestamp (seen in STAR alerts) must not push the checkpoint past every
        // threat to come.
        let read_at = Utc::now();
        let mut page_max = None;
        for raw in std::mem::take(&mut page.records) {
            match self.source.map(raw) {
                Ok(i) => {
                    // Read at last: no longer counted among the unreadable.
                    self.checkpoint.note_read(&i.external_id);
                    page_max = page_max.max(credible_updated_at(i.updated_at, read_at));
                    // Read again (the overlap, a sweep, a far-future threat): not new.
                    if !self.recent.knows(&i) {
                        self.batch.push(i);
                    }
                }
                Err(e) => {
                    let u = Unreadable::of(e.record.get(), &self.source.identity(), e.reason);
                    self.unreadable(&u);
                }
            }
        }
        // Records the source could not give at all (one alone over the size cap): reported
        // like those that do not map, and read past, their update time moving the walk on as
        // theirs would have.
        for u in std::mem::take(&mut page.unreadable) {
            let updated = dossier_domain::time::parse_lenient(&u.key.updated);
            page_max = page_max.max(updated.and_then(|t| credible_updated_at(t, read_at)));
            self.unreadable(&u);
        }
        self.state
            .metrics
            .map_seconds
            .inc_by(map_started.elapsed().as_secs_f64());
        page_max
    }

    /// A page read: its threats join the batch, which is held for more pages, passed over as
    /// an idle poll, or committed.
    async fn read(&mut self, mut page: Page, shutdown: &mut watch::Receiver<bool>) -> Flow {
        let before = self.batch.len();
        let page_max = self.map_page(&mut page);
        let mut next = self.checkpoint.after_page(
            page_max,
            page.next_cursor.as_deref(),
            &self.policy,
            Utc::now(),
        );
        // A page read whole at a reduced size: the next asks for twice as many.
        next.larger_pages(&self.policy);
        let pace_changed = self.pace(&next).await;
        if self.hold(&next, before) {
            self.checkpoint = next;
            return Flow::Next;
        }
        if self.idle(&next) {
            if pace_changed {
                // Not written with a commit: shown now.
                let detail = self.detail(&next);
                self.health.connected(HealthUpdate::default(), detail).await;
            }
            self.unwritten_polls += 1;
            self.last_poll_at = Utc::now();
            self.checkpoint = next;
            self.backoff.reset();
            self.state.metrics.polls.get_or_create(&self.labels).inc();
            if sleep_or_stop(self.state.config.poll_interval, shutdown).await {
                return Flow::Stop;
            }
            return Flow::Next;
        }
        self.commit(next, shutdown).await
    }

    /// Whether the batch waits for more pages, holding its share of the budget. A backfill
    /// reads on while another commit holds the writer and the batch is small and young: one
    /// commit of several pages writes each touched index page once instead of once per page,
    /// and the age bound keeps stories coming (and the work a crash loses small) on a slow
    /// tenant or machine. A writer with nothing to do takes the batch as it is: waiting for
    /// more would leave it idle. Outside a walk (new threats as they come) every page commits
    /// at once.
    fn hold(&mut self, next: &Checkpoint, before: usize) -> bool {
        let config = &self.state.config;
        if !(next.walk_in_progress()
            && self.batch.len() < config.ingest_batch
            && self.state.commits_in_flight.load(Ordering::Relaxed) > 0
            && self
                .last_commit
                .is_some_and(|t| t.elapsed() < config.ingest_batch_wait))
        {
            return false;
        }
        let page_len = u32::try_from(self.batch.len() - before).unwrap_or(u32::MAX);
        match Arc::clone(&self.state.ingest_budget).try_acquire_many_owned(page_len) {
            Ok(permit) => {
                self.held.push(permit);
                true
            }
            // Other connectors hold the budget: this batch commits as it is.
            Err(_) => false,
        }
    }

    /// Whether this poll is idle and not written now: nothing read, no walk going on, nothing
    /// waiting, the connector connected and the last commit recent. Losing its checkpoint
    /// costs only reading the same empty window again. The page that ends a walk (or the
    /// backfill) is always written, even empty: the stored checkpoint must not stay mid-walk.
    fn idle(&self, next: &Checkpoint) -> bool {
        self.batch.is_empty()
            && self.reported.is_empty()
            && next.unreadable == self.durable.unreadable
            && !next.walk_in_progress()
            && !self.durable.walk_in_progress()
            && self.durable.backfill_started.is_none()
            && self.health.status == "connected"
            && self
                .last_commit
                .is_some_and(|t| t.elapsed() < self.state.config.idle_commit_every)
    }

    /// Commits the batch with the checkpoint `next`; while a walk goes on, the next page is
    /// fetched as this one commits (its window depends on this page's cursor, not on the
    /// commit), and used only if the commit succeeds.
    async fn commit(&mut self, next: Checkpoint, shutdown: &mut watch::Receiver<bool>) -> Flow {
        let state = self.state;
        let now = Utc::now();
        let received = self.batch.len() as u64;
        let created: Vec<chrono::DateTime<Utc>> = self.batch.iter().map(|i| i.created_at).collect();
        let newest = self.batch.iter().map(|i| i.updated_at).max();
        let horizon = now - recent_horizon(&self.policy);
        let versions = Recent::worth_keeping(&self.batch, horizon);
        let incidents = std::mem::take(&mut self.batch);
        let polls = self.unwritten_polls + 1;
        let Some(mut ingest) = ingest_page(state, self.rec, &next, incidents, now, polls) else {
            return Flow::Quit;
        };
        ingest.events = std::mem::take(&mut self.reported);
        ingest.status_detail = self.detail(&next);
        if !ingest.incidents.is_empty() {
            ingest.shared_with = shared_with(state, self.rec).await;
        }
        let commit_started = std::time::Instant::now();
        let commit = async {
            let _in_flight = InFlight::enter(&state.commits_in_flight);
            let committed = state.store.commit_page(ingest).await;
            let elapsed = commit_started.elapsed().as_secs_f64();
            state.metrics.commit_seconds.inc_by(elapsed);
            committed
        };
        let (committed, next_page) = if next.walk_in_progress() {
            let next_window = next.window(&self.policy);
            let fetch = timed_fetch(state, &mut self.health, self.conn, &next_window);
            let (c, n) = tokio::join!(commit, fetch);
            (c, Some(n))
        } else {
            (commit.await, None)
        };
        // The batch is out of memory once the store has answered, either way.
        self.held.clear();
        match committed {
            Ok(outcome) => {
                // The commit wrote the connector `connected`: nothing kept in memory is newer.
                state.unrecorded.forget(&self.rec.id);
                self.recent.committed(versions, horizon);
                self.unwritten_polls = 0;
                self.last_commit = Some(std::time::Instant::now());
                self.durable = next.clone();
                self.checkpoint = next;
                self.prefetched = next_page;
                self.backoff.reset();
                // A prefetch that showed a retry may have done so before or after this commit
                // recorded the connector connected: its outcome settles the status. A failure
                // is recorded when it is handled; a success is recorded here.
                match (&self.prefetched, self.health.retry_shown) {
                    (Some(Err(_)), true) => {}
                    (Some(Ok(_)), true) => {
                        let detail = self.detail(&self.durable);
                        self.health.connected(HealthUpdate::default(), detail).await;
                    }
                    _ => self.health.status = "connected".into(),
                }
                self.count(&outcome, received, &created, newest, now);
                Flow::Wait
            }
            Err(StoreError::LeaseLost) => {
                // The connector was saved again or deleted while this page was on its way:
                // nothing of it was written, and the worker of the new generation (if any)
                // reads on from the stored checkpoint.
                tracing::info!(connector_id = %self.rec.id, "connector changed: its old worker stops");
                Flow::Quit
            }
            Err(e) => {
                // Nothing was committed, the checkpoint included: the pages will be read again.
                rewind(
                    &mut self.batch,
                    &mut self.held,
                    &mut self.reported,
                    &mut self.checkpoint,
                    &self.durable,
                );
                tracing::error!(connector_id = %self.rec.id, error = %e, "cannot commit a page of threats");
                // A database that cannot be written (a full disk) says so in its own words;
                // any other failure is an internal one, whose details stay in the log.
                let reason = match e {
                    StoreError::Unavailable(reason) => reason,
                    _ => "the threats read could not be stored: an internal error (see the server's log)".to_owned(),
                };
                self.health.error(reason, true).await;
                if sleep_or_stop(self.backoff.next(), shutdown).await {
                    return Flow::Quit;
                }
                Flow::Next
            }
        }
    }

    /// Counts a committed page in the metrics: the poll, its threats, what the store made of
    /// them, how long new threats took to become stories, and the connector's lag.
    fn count(
        &self,
        outcome: &dossier_store::IngestOutcome,
        received: u64,
        created: &[chrono::DateTime<Utc>],
        newest: Option<chrono::DateTime<Utc>>,
        now: chrono::DateTime<Utc>,
    ) {
        let m = &self.state.metrics;
        m.polls.get_or_create(&self.labels).inc();
        m.threats.get_or_create(&self.labels).inc_by(received);
        m.incidents_new.inc_by(outcome.incidents_new);
        m.incidents_updated.inc_by(outcome.incidents_updated);
        m.stories_created.inc_by(outcome.stories_created);
        if outcome.incidents_new > 0 {
            let committed = Utc::now();
            for c in created {
                let secs = (committed - *c).num_milliseconds() as f64 / 1000.0;
                if (0.0..3600.0).contains(&secs) {
                    m.story_latency.observe(secs);
                }
            }
        }
        if let Some(n) = newest {
            m.lag_seconds
                .get_or_create(&self.labels)
                .set((now - n).num_seconds());
        }
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
        events: Vec::new(),
        status_detail: None,
        shared_with: Vec::new(),
    })
}

/// The account's other connectors that reach this connector's tenant, read at each commit so
/// that one added since the worker started counts at once. When they cannot be read, none
/// count: the commit then keeps what it read, as it would with no second connector.
async fn shared_with(state: &AppState, rec: &ConnectorRecord) -> Vec<String> {
    match state.store.list_connectors(Some(&rec.account_id)).await {
        Ok(all) => crate::overlap::overlapping(&state.sources, &all, rec)
            .into_iter()
            .map(|c| c.id.clone())
            .collect(),
        Err(e) => {
            tracing::warn!(connector_id = %rec.id, error = %e, "cannot read the account's connectors");
            Vec::new()
        }
    }
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

//! The emulated tenant's shared state and its Rust API (used by tests, the demo and the
//! benchmark while the HTTPS server reads the same state).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::Value;

use crate::auth::Issued;
use crate::config::{AppSpec, SimConfig};
use crate::error::SimError;
use crate::faults::Fault;
use crate::generate::{advance, Generator};
use crate::store::{Store, Stored};
use crate::ticks::ticks;

/// One `PATCH /v1.0/security/alerts_v2/{id}` the tenant accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub id: String,
    pub body: Value,
}

/// Shared, cheaply clonable handle on the emulated tenant's state.
#[derive(Clone)]
pub struct Tenant {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// Text served in place of other text (see [`dossier_simkit::Rewrites`]).
    pub rewrites: dossier_simkit::Rewrites,
    pub tenant_id: String,
    pub token_lifetime: Duration,
    rate_limit: Option<u32>,
    pub store: RwLock<Store>,
    generator: Mutex<Generator>,
    apps: RwLock<Vec<AppSpec>>,
    tokens: RwLock<HashMap<String, Issued>>,
    faults: Mutex<VecDeque<Fault>>,
    down: AtomicBool,
    token_requests: AtomicU64,
    list_requests: AtomicU64,
    writes: Mutex<Vec<Write>>,
    /// Requests in the current second, for the rate limit.
    window: Mutex<(Option<Instant>, u32)>,
    live_calls: AtomicU64,
}

pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn lock<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("tenant_id", &self.inner.tenant_id)
            .field("alerts", &self.alert_count())
            .finish_non_exhaustive()
    }
}

impl Tenant {
    /// Returns a tenant with `config.devices` devices, no alerts, and `config.apps`.
    pub fn new(config: &SimConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                rewrites: dossier_simkit::Rewrites::default(),
                tenant_id: config.tenant_id.clone(),
                token_lifetime: config.token_lifetime,
                rate_limit: config.rate_limit,
                store: RwLock::new(Store::default()),
                generator: Mutex::new(Generator::new(config)),
                apps: RwLock::new(config.apps.clone()),
                tokens: RwLock::new(HashMap::new()),
                faults: Mutex::new(VecDeque::new()),
                down: AtomicBool::new(false),
                token_requests: AtomicU64::new(0),
                list_requests: AtomicU64::new(0),
                writes: Mutex::new(Vec::new()),
                window: Mutex::new((None, 0)),
                live_calls: AtomicU64::new(0),
            }),
        }
    }

    /// Returns the Directory (tenant) ID.
    pub fn tenant_id(&self) -> &str {
        &self.inner.tenant_id
    }

    /// Generates `n` alerts deterministically from the seed, created evenly spread between
    /// `from` and `to`; about a third are later moved on (in progress, resolved) no later than
    /// `to`. Returns their ids, oldest first.
    pub fn generate_history(
        &self,
        n: usize,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<String> {
        let (from, to) = (ticks(from), ticks(to).max(ticks(from)));
        let span = to - from;
        let mut generator = lock(&self.inner.generator);
        let mut alerts = Vec::with_capacity(n);
        for i in 0..n {
            let step = span / i64::try_from(n.max(1)).unwrap_or(i64::MAX);
            let jitter = if step > 1 {
                generator.rng().gen_range(0..step)
            } else {
                0
            };
            let created = from + step * i64::try_from(i).unwrap_or(0) + jitter;
            let mut alert = generator.alert(created);
            let mut at = created;
            while generator.rng().gen_bool(0.35) {
                let left = to - at;
                if left <= 1 {
                    break;
                }
                at += generator
                    .rng()
                    .gen_range(1..=left.min(3 * 86_400 * 10_000_000));
                if !advance(&mut alert, at, generator.rng()) {
                    break;
                }
            }
            alerts.push(alert);
        }
        drop(generator);
        let mut store = write(&self.inner.store);
        let mut ids = Vec::with_capacity(n);
        for alert in alerts {
            if let Ok((id, stored)) = Stored::new(alert) {
                ids.push(id.clone());
                store.put(id, stored);
            }
        }
        ids
    }

    /// Generates one new alert created at `now`, and every fourth call also moves an older
    /// unresolved alert on (its `lastUpdateDateTime` becomes `now`). Returns the new alert's id.
    pub fn generate_live(&self, now: DateTime<Utc>) -> String {
        let at = ticks(now);
        let alert = lock(&self.inner.generator).alert(at);
        let Ok((id, stored)) = Stored::new(alert) else {
            return String::new();
        };
        write(&self.inner.store).put(id.clone(), stored);
        if self.inner.live_calls.fetch_add(1, Ordering::SeqCst) % 4 == 3 {
            let open: Vec<String> = read(&self.inner.store)
                .by_id
                .iter()
                .filter(|(other, a)| **other != id && a.field("status") != Some("resolved"))
                .map(|(other, _)| other.clone())
                .take(64)
                .collect();
            if !open.is_empty() {
                let mut sorted = open;
                sorted.sort();
                let pick = lock(&self.inner.generator).rng().gen_range(0..sorted.len());
                self.update_alert(&sorted[pick], now);
            }
        }
        id
    }

    /// Moves an alert one step on (`new → inProgress → resolved`) at `now`; false for an
    /// unknown or already resolved alert.
    pub fn update_alert(&self, id: &str, now: DateTime<Utc>) -> bool {
        let Some(mut alert) = self.alert(id) else {
            return false;
        };
        if !advance(&mut alert, ticks(now), lock(&self.inner.generator).rng()) {
            return false;
        }
        self.put_alert(&alert).is_ok()
    }

    /// Inserts or replaces an alert as given; it needs an `id`, `createdDateTime` and
    /// `lastUpdateDateTime`.
    pub fn put_alert(&self, alert: &Value) -> Result<String, SimError> {
        let (id, stored) = Stored::new(alert.clone()).map_err(SimError::InvalidAlert)?;
        write(&self.inner.store).put(id.clone(), stored);
        Ok(id)
    }

    /// Returns a stored alert.
    pub fn alert(&self, id: &str) -> Option<Value> {
        read(&self.inner.store)
            .by_id
            .get(id)
            .map(|a| a.value.clone())
    }

    /// Returns the number of stored alerts, of every service source.
    pub fn alert_count(&self) -> usize {
        read(&self.inner.store).by_id.len()
    }

    /// Returns the ids of the stored alerts of Defender for Endpoint, sorted.
    pub fn endpoint_alert_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = read(&self.inner.store)
            .by_id
            .iter()
            .filter(|(_, a)| a.field("serviceSource") == Some("microsoftDefenderForEndpoint"))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Serves `to` wherever a list page holds `from`, until [`Self::stop_rewriting`]: what a
    /// real tenant's text may hold that a JSON value cannot (a lone surrogate escape).
    pub fn rewrite_served(&self, from: &str, to: &str) {
        self.inner.rewrites.set(from, to);
    }

    /// Serves `from` as it is again.
    pub fn stop_rewriting(&self, from: &str) {
        self.inner.rewrites.remove(from);
    }

    /// Queues faults: the next list requests get them, in order, one each.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.inner.faults).extend(faults);
    }

    /// While true, every connection is closed without an answer.
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    /// Adds or replaces an app registration (tests expire secrets or revoke permissions).
    /// Tokens already issued keep the roles they were issued with, as Entra's do.
    pub fn set_app(&self, app: AppSpec) {
        let mut apps = write(&self.inner.apps);
        apps.retain(|a| !a.client_id.eq_ignore_ascii_case(&app.client_id));
        apps.push(app);
    }

    /// Forgets every issued token: Graph answers 401 to them from now on.
    pub fn revoke_tokens(&self) {
        write(&self.inner.tokens).clear();
    }

    /// Returns the number of token requests received (whatever their outcome).
    pub fn token_requests(&self) -> u64 {
        self.inner.token_requests.load(Ordering::SeqCst)
    }

    /// Returns the number of alert list requests received (whatever their outcome).
    pub fn list_requests(&self) -> u64 {
        self.inner.list_requests.load(Ordering::SeqCst)
    }

    /// Returns the updates received, oldest first.
    pub fn writes(&self) -> Vec<Write> {
        lock(&self.inner.writes).clone()
    }

    pub(crate) fn is_down(&self) -> bool {
        self.inner.down.load(Ordering::SeqCst)
    }

    pub(crate) fn apps(&self) -> Vec<AppSpec> {
        read(&self.inner.apps).clone()
    }

    pub(crate) fn count_token_request(&self) {
        self.inner.token_requests.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn count_list_request(&self) {
        self.inner.list_requests.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn issue(&self, roles: Vec<String>) -> String {
        let token = format!("mdesim.{}", uuid::Uuid::new_v4().simple());
        let lifetime = chrono::Duration::from_std(self.inner.token_lifetime).unwrap_or_default();
        let issued = Issued {
            roles,
            expires_at: Utc::now() + lifetime,
        };
        write(&self.inner.tokens).insert(token.clone(), issued);
        token
    }

    pub(crate) fn issued(&self, token: &str) -> Option<Issued> {
        read(&self.inner.tokens).get(token).cloned()
    }

    pub(crate) fn pop_fault(&self) -> Option<Fault> {
        lock(&self.inner.faults).pop_front()
    }

    pub(crate) fn record_write(&self, write: Write) {
        lock(&self.inner.writes).push(write);
    }

    /// Takes one request of the second's budget; `false` when it is spent.
    pub(crate) fn throttle(&self) -> bool {
        let Some(limit) = self.inner.rate_limit else {
            return true;
        };
        let now = Instant::now();
        let mut window = lock(&self.inner.window);
        match window.0 {
            Some(start) if now.duration_since(start) < Duration::from_secs(1) => {
                window.1 += 1;
            }
            _ => *window = (Some(now), 1),
        }
        window.1 <= limit
    }
}

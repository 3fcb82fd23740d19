//! The emulated tenant's shared state and its Rust API (used by tests, the demo and the
//! benchmark while the HTTPS server reads the same state).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde_json::{json, Value};

use crate::config::{ClientSpec, SimConfig};
use crate::error::SimError;
use crate::faults::Fault;
use crate::generate::{nanos_text, Generator};

/// Shared, cheaply clonable handle on the emulated tenant's state.
#[derive(Clone)]
pub struct Tenant {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// Text served in place of other text (see [`dossier_simkit::Rewrites`]).
    pub rewrites: dossier_simkit::Rewrites,
    pub region: String,
    pub token_ttl_secs: u64,
    pub rate_limit: Option<u32>,
    pub store: Mutex<Store>,
    generator: Mutex<Generator>,
    pub clients: Mutex<HashMap<String, ClientSpec>>,
    /// Issued tokens: token → (client id, expiry).
    pub tokens: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
    faults: Mutex<VecDeque<Fault>>,
    down: AtomicBool,
    pub token_requests: AtomicU64,
    pub query_requests: AtomicU64,
    pub entities_requests: AtomicU64,
    writes: Mutex<Vec<Value>>,
    /// (minute start, requests in it) for the configured rate limit.
    pub minute: Mutex<(i64, u32)>,
    pub token_counter: AtomicU64,
}

/// The alerts, by composite id and in `updated_timestamp` order.
#[derive(Default)]
pub(crate) struct Store {
    /// Composite id → (`updated_timestamp` as ordered, the alert, the alert as served). The
    /// served text is kept so that entities answers splice it in rather than clone and
    /// serialise every alert again.
    pub by_id: HashMap<String, (String, Value, std::sync::Arc<str>)>,
    /// (`updated_timestamp` as sent, composite id) → the alert's `product`: RFC 3339 with nine
    /// fractional digits in UTC sorts as text in time order, and a query reads what it filters
    /// on here, without a lookup or a parse per alert.
    pub order: BTreeMap<(String, String), Option<String>>,
    /// `order` split by product into sorted lists, built when a query needs it and dropped on
    /// every change: a query for one product then finds its page and its total by bisection,
    /// as the real API answers in no time whatever the offset.
    by_product: Option<ByProduct>,
}

/// Each product's (time, id) keys, in update order.
pub(crate) type ByProduct = HashMap<Option<String>, Vec<(String, String)>>;

impl Store {
    fn put(&mut self, id: String, alert: Value) {
        // The key is the time in one format, so that text order is time order whatever the
        // precision the alert was written with.
        let updated = alert["updated_timestamp"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| nanos_text(t.with_timezone(&Utc)))
            .unwrap_or_default();
        if let Some((old, _, _)) = self.by_id.get(&id) {
            self.order.remove(&(old.clone(), id.clone()));
        }
        let product = alert["product"].as_str().map(str::to_owned);
        self.by_product = None;
        self.order.insert((updated.clone(), id.clone()), product);
        let text = alert.to_string().into();
        self.by_id.insert(id, (updated, alert, text));
    }
}

impl Store {
    /// The (time, id) lists of each product, in update order.
    pub(crate) fn by_product(&mut self) -> &ByProduct {
        let order = &self.order;
        self.by_product.get_or_insert_with(|| {
            let mut lists = ByProduct::new();
            for (key, product) in order {
                lists.entry(product.clone()).or_default().push(key.clone());
            }
            lists
        })
    }
}

pub(crate) fn lock<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("alerts", &self.alert_count())
            .finish_non_exhaustive()
    }
}

impl Tenant {
    /// Returns a tenant with `config.hosts` hosts, no alerts, and `config.clients`.
    pub fn new(config: &SimConfig) -> Self {
        let clients = config
            .clients
            .iter()
            .map(|c| (c.client_id.clone(), c.clone()))
            .collect();
        Self {
            inner: Arc::new(Inner {
                rewrites: dossier_simkit::Rewrites::default(),
                region: config.region.clone(),
                token_ttl_secs: config.token_ttl_secs,
                rate_limit: config.rate_limit_per_minute,
                store: Mutex::new(Store::default()),
                generator: Mutex::new(Generator::new(config)),
                clients: Mutex::new(clients),
                tokens: Mutex::new(HashMap::new()),
                faults: Mutex::new(VecDeque::new()),
                down: AtomicBool::new(false),
                token_requests: AtomicU64::new(0),
                query_requests: AtomicU64::new(0),
                entities_requests: AtomicU64::new(0),
                writes: Mutex::new(Vec::new()),
                minute: Mutex::new((0, 0)),
                token_counter: AtomicU64::new(config.seed),
            }),
        }
    }

    /// Generates `n` alerts deterministically from the seed, created between `from` and `to`
    /// in order; about a third get a later update (triage, or a bump of `updated_timestamp`
    /// alone, PRODUCERS.md §2.7) no later than `to`. Returns their composite ids, oldest first.
    pub fn generate_history(
        &self,
        n: usize,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<String> {
        let span = (to - from).num_nanoseconds().unwrap_or(i64::MAX).max(1);
        let mut generator = lock(&self.inner.generator);
        let mut store = lock(&self.inner.store);
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let step = span / i64::try_from(n.max(1)).unwrap_or(i64::MAX);
            let jitter = generator.rng().gen_range(0..step.max(1));
            let at = from + Duration::nanoseconds(step * i64::try_from(i).unwrap_or(0) + jitter);
            let mut alert = generator.alert(at);
            if generator.rng().gen_bool(0.33) {
                let later_ns = generator
                    .rng()
                    .gen_range(0..(to - at).num_nanoseconds().unwrap_or(0).max(1));
                let later = at + Duration::nanoseconds(later_ns);
                let change = generator.rng().gen_range(0..4u8);
                lifecycle(&mut alert, change, later);
            }
            let id = alert["composite_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            store.put(id.clone(), alert);
            ids.push(id);
        }
        ids
    }

    /// Generates one new alert created at `now`. Returns its composite id.
    pub fn generate_live(&self, now: DateTime<Utc>) -> String {
        let alert = lock(&self.inner.generator).alert(now);
        let id = alert["composite_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        lock(&self.inner.store).put(id.clone(), alert);
        id
    }

    /// Applies a realistic later change to an alert (in progress, closed with a verdict tag,
    /// or reopened), with `updated_timestamp = now`. Returns false for an unknown id.
    pub fn update_alert(&self, id: &str, now: DateTime<Utc>) -> bool {
        let change = lock(&self.inner.generator).rng().gen_range(1..4u8);
        self.edit(id, |alert| lifecycle(alert, change, now))
    }

    /// Bumps an alert's `updated_timestamp` (and `crawled_timestamp`, and the device's
    /// `last_seen`) with no other change, as CrowdStrike does in the background
    /// (PRODUCERS.md §2.7). Returns false for an unknown id.
    pub fn touch_alert(&self, id: &str, now: DateTime<Utc>) -> bool {
        self.edit(id, |alert| lifecycle(alert, 0, now))
    }

    fn edit(&self, id: &str, change: impl FnOnce(&mut Value)) -> bool {
        let mut store = lock(&self.inner.store);
        let Some((_, alert, _)) = store.by_id.get(id) else {
            return false;
        };
        let mut alert = alert.clone();
        change(&mut alert);
        store.put(id.to_owned(), alert);
        true
    }

    /// Inserts or replaces an alert as-is (a sample, say); its key is `composite_id`, and it
    /// must have an `updated_timestamp`.
    pub fn put_alert(&self, alert: Value) -> Result<String, SimError> {
        let id = alert["composite_id"]
            .as_str()
            .ok_or_else(|| SimError::InvalidAlert("composite_id is missing".into()))?
            .to_owned();
        if !alert["updated_timestamp"].is_string() {
            return Err(SimError::InvalidAlert(
                "updated_timestamp is missing".into(),
            ));
        }
        lock(&self.inner.store).put(id.clone(), alert);
        Ok(id)
    }

    /// Returns a stored alert.
    pub fn alert(&self, id: &str) -> Option<Value> {
        lock(&self.inner.store)
            .by_id
            .get(id)
            .map(|(_, a, _)| a.clone())
    }

    /// Returns every composite id in `updated_timestamp` order.
    pub fn ids_by_update(&self) -> Vec<String> {
        lock(&self.inner.store)
            .order
            .keys()
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// Returns the number of stored alerts, of every product.
    pub fn alert_count(&self) -> usize {
        lock(&self.inner.store).by_id.len()
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

    /// Queues faults: the next requests to the `/alerts/*` endpoints get them, in order, one
    /// each.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.inner.faults).extend(faults);
    }

    pub(crate) fn pop_fault(&self) -> Option<Fault> {
        lock(&self.inner.faults).pop_front()
    }

    /// While true, every connection is closed without a response.
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    pub(crate) fn is_down(&self) -> bool {
        self.inner.down.load(Ordering::SeqCst)
    }

    /// Adds or replaces an API client (tests remove scopes or change secrets).
    pub fn set_client(&self, spec: ClientSpec) {
        lock(&self.inner.clients).insert(spec.client_id.clone(), spec);
    }

    /// Revokes every issued token: the next API call gets a 401.
    pub fn revoke_tokens(&self) {
        lock(&self.inner.tokens).clear();
    }

    /// Returns the number of `POST /oauth2/token` requests received.
    pub fn token_requests(&self) -> u64 {
        self.inner.token_requests.load(Ordering::SeqCst)
    }

    /// Returns the number of `GET /alerts/queries/alerts/v2` requests received.
    pub fn query_requests(&self) -> u64 {
        self.inner.query_requests.load(Ordering::SeqCst)
    }

    /// Returns the number of `POST /alerts/entities/alerts/v2` requests received.
    pub fn entities_requests(&self) -> u64 {
        self.inner.entities_requests.load(Ordering::SeqCst)
    }

    /// Returns the bodies `PATCH /alerts/entities/alerts/v3` accepted, oldest first.
    pub fn writes(&self) -> Vec<Value> {
        lock(&self.inner.writes).clone()
    }

    pub(crate) fn record_write(&self, body: Value) {
        let mut writes = lock(&self.inner.writes);
        if writes.len() < 10_000 {
            writes.push(body);
        }
    }
}

/// A change to an alert at `at`: 0 bumps the update time alone; 1 puts it in progress; 2
/// closes it with a `true_positive` or `false_positive` tag; 3 reopens it.
fn lifecycle(alert: &mut Value, change: u8, at: DateTime<Utc>) {
    let stamp = nanos_text(at);
    alert["updated_timestamp"] = json!(stamp);
    alert["crawled_timestamp"] = json!(stamp);
    if let Some(device) = alert.get_mut("device").and_then(Value::as_object_mut) {
        device.insert(
            "last_seen".into(),
            json!(at.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        );
    }
    match change {
        1 => alert["status"] = json!("in_progress"),
        2 => {
            alert["status"] = json!("closed");
            let tag = if at.timestamp_subsec_nanos() % 3 == 0 {
                "false_positive"
            } else {
                "true_positive"
            };
            add_tag(alert, tag);
        }
        3 => alert["status"] = json!("reopened"),
        _ => {}
    }
}

pub(crate) fn add_tag(alert: &mut Value, tag: &str) {
    if !alert["tags"].is_array() {
        alert["tags"] = json!([]);
    }
    if let Some(tags) = alert["tags"].as_array_mut() {
        if !tags.iter().any(|t| t == tag) {
            tags.push(json!(tag));
        }
    }
}

/// Applies a write-back's actions to an alert at `at`.
pub(crate) fn apply_actions(alert: &mut Value, actions: &[(String, String)], at: DateTime<Utc>) {
    for (name, value) in actions {
        match name.as_str() {
            "update_status" => alert["status"] = json!(value),
            "add_tag" => add_tag(alert, value),
            "remove_tag" => {
                if let Some(tags) = alert["tags"].as_array_mut() {
                    tags.retain(|t| t != value.as_str());
                }
            }
            "append_comment" => alert["comment"] = json!(value),
            _ => {}
        }
    }
    alert["updated_timestamp"] = json!(nanos_text(at));
}

impl Tenant {
    pub(crate) fn edit_for_write(&self, ids: &[String], actions: &[(String, String)]) -> usize {
        let now = Utc::now();
        let mut store = lock(&self.inner.store);
        let mut affected = 0;
        for id in ids {
            let Some((_, alert, _)) = store.by_id.get(id) else {
                continue;
            };
            let mut alert = alert.clone();
            apply_actions(&mut alert, actions, now);
            store.put(id.clone(), alert);
            affected += 1;
        }
        affected
    }
}

//! The emulated tenant's shared state and its Rust API (used by tests, the demo and the
//! benchmark while the HTTPS server reads the same state).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::auth::{Bucket, TokenState};
use crate::config::{SimConfig, TokenSpec};
use crate::error::SimError;
use crate::faults::Fault;
use crate::generate::Generator;
use crate::ids::{id_key, snowflake};
use crate::lifecycle::{apply_to_threat, Status};
use crate::store::{Entry, Facets, Store};
use crate::time::micros;

/// Shared, cheaply clonable handle on the emulated tenant's state.
#[derive(Clone)]
pub struct Tenant {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// Text served in place of other text (see [`dossier_simkit::Rewrites`]).
    pub rewrites: dossier_simkit::Rewrites,
    pub gzip: bool,
    pub rate_limit: Option<u32>,
    pub store: RwLock<Store>,
    generator: Mutex<Generator>,
    pub tokens: RwLock<HashMap<String, TokenState>>,
    faults: Mutex<VecDeque<Fault>>,
    /// Faults for the write endpoints (`POST /threats/…`, `/agents/actions/…`), apart from
    /// those of `GET /threats` so that a poll never takes a fault meant for an action.
    write_faults: Mutex<VecDeque<Fault>>,
    /// The blocklist (`black_hash` restrictions) that `add-to-blacklist` added to.
    blocklist: Mutex<Vec<Value>>,
    /// The notes on threats (`POST /threats/notes`), by threat id, oldest first.
    notes: Mutex<HashMap<String, Vec<Value>>>,
    down: AtomicBool,
    requests: AtomicU64,
    served: AtomicU64,
    /// Pages of `GET /threats` answered with no threats.
    empty_pages: AtomicU64,
    /// The first [`ARRIVALS_KEPT`] requests to `/threats` and `/users/api-token-details`, by
    /// endpoint, in the order they arrived.
    arrivals: Mutex<Vec<&'static str>>,
    writes: Mutex<Vec<Value>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    /// `(query key, store version, count)` of the last `totalItems` computed: the pages of one
    /// walk share it.
    count_cache: Mutex<Option<(String, u64, usize)>>,
}

/// How many requests [`Tenant::arrivals`] keeps: a long-running emulator must not grow it.
pub const ARRIVALS_KEPT: usize = 10_000;
/// `GET /threats` in [`Tenant::arrivals`].
pub const THREATS: &str = "threats";
/// `POST /users/api-token-details` in [`Tenant::arrivals`].
pub const TOKEN_DETAILS: &str = "users/api-token-details";

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
            .field("threats", &self.threat_count())
            .finish_non_exhaustive()
    }
}

impl Tenant {
    /// Returns a tenant with `config.agents` agents, no threats, and `config.tokens`.
    pub fn new(config: &SimConfig) -> Self {
        let now = Utc::now();
        let tokens = config
            .tokens
            .iter()
            .map(|spec| {
                (
                    spec.token.clone(),
                    TokenState {
                        spec: spec.clone(),
                        created_at: now,
                    },
                )
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                rewrites: dossier_simkit::Rewrites::default(),
                gzip: config.gzip,
                rate_limit: config.rate_limit,
                store: RwLock::new(Store::default()),
                generator: Mutex::new(Generator::new(config.seed, config.agents)),
                tokens: RwLock::new(tokens),
                faults: Mutex::new(VecDeque::new()),
                write_faults: Mutex::new(VecDeque::new()),
                blocklist: Mutex::new(Vec::new()),
                notes: Mutex::new(HashMap::new()),
                down: AtomicBool::new(false),
                requests: AtomicU64::new(0),
                served: AtomicU64::new(0),
                empty_pages: AtomicU64::new(0),
                arrivals: Mutex::new(Vec::new()),
                writes: Mutex::new(Vec::new()),
                buckets: Mutex::new(HashMap::new()),
                count_cache: Mutex::new(None),
            }),
        }
    }

    /// Generates `n` threats deterministically from the seed, created between `from` and `to`,
    /// with realistic reuse and later updates (no later than `to`). Returns their ids, oldest
    /// first.
    pub fn generate_history(
        &self,
        n: usize,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<String> {
        // The store stays readable (and writable) while the threats are generated.
        let taken = |id| read(&self.inner.store).entries.contains_key(&id);
        let rendered = lock(&self.inner.generator).history(n, micros(from), micros(to), &taken);
        let ids = rendered.iter().map(|r| r.id.clone()).collect();
        let mut store = write(&self.inner.store);
        for r in rendered {
            store.put(
                r.key,
                Entry {
                    id: r.id.into(),
                    text: r.text.into(),
                    facets: r.facets,
                },
            );
        }
        ids
    }

    /// Generates one new threat created "now" (`createdAt = updatedAt = now`). Returns its id.
    pub fn generate_live(&self, now: DateTime<Utc>) -> String {
        let taken = |id| read(&self.inner.store).entries.contains_key(&id);
        let r = lock(&self.inner.generator).live(micros(now), &taken);
        let id = r.id.clone();
        write(&self.inner.store).put(
            r.key,
            Entry {
                id: r.id.into(),
                text: r.text.into(),
                facets: r.facets,
            },
        );
        id
    }

    /// Applies a realistic later update (mitigation, analyst verdict or incident status change)
    /// to an existing threat, with `updatedAt = now`. Returns false for an unknown id.
    pub fn update_threat(&self, id: &str, now: DateTime<Utc>) -> bool {
        let Some(mut threat) = read(&self.inner.store).value(id) else {
            return false;
        };
        let change = Status::from_threat(&threat).next_change(lock(&self.inner.generator).rng());
        let at = micros(now);
        apply_to_threat(&mut threat, change, at, snowflake(at, 1));
        write(&self.inner.store).replace(id, &threat)
    }

    /// Inserts or replaces a threat object as-is; its id is read from `id` (a decimal string,
    /// or an integer). `threatInfo.createdAt` must be a timestamp.
    pub fn put_threat(&self, threat: &Value) -> Result<String, SimError> {
        let id = match &threat["id"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(SimError::InvalidThreat("id is missing".to_owned())),
        };
        let key = id_key(&id)
            .ok_or_else(|| SimError::InvalidThreat(format!("id {id:?} is not a decimal id")))?;
        let facets = Facets::from_threat(threat).map_err(SimError::InvalidThreat)?;
        let entry = Entry {
            id: id.clone().into(),
            text: threat.to_string().into(),
            facets,
        };
        write(&self.inner.store).put(key, entry);
        Ok(id)
    }

    /// Returns the number of stored threats.
    pub fn threat_count(&self) -> usize {
        read(&self.inner.store).entries.len()
    }

    /// Returns a stored threat.
    pub fn threat(&self, id: &str) -> Option<Value> {
        read(&self.inner.store).value(id)
    }

    /// Deletes a threat, as an administrator may in the console: the tenant no longer lists
    /// it, and its notes and timeline answer 404. Returns whether it was there.
    pub fn delete_threat(&self, id: &str) -> bool {
        let Some(key) = id_key(id) else {
            return false;
        };
        lock(&self.inner.notes).remove(id);
        write(&self.inner.store).remove(key)
    }

    /// Returns every threat id, in numeric order.
    pub fn all_ids(&self) -> Vec<String> {
        read(&self.inner.store)
            .entries
            .values()
            .map(|e| e.id.to_string())
            .collect()
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

    /// Queues faults: the next requests to `GET /threats` get them, in order, one each.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.inner.faults).extend(faults);
    }

    /// Queues faults for the write endpoints: the next writes get them, in order, one each.
    pub fn push_write_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.inner.write_faults).extend(faults);
    }

    /// The blocklist entries added so far (`{"value","type":"black_hash","osType","scope",…}`).
    pub fn blocklist(&self) -> Vec<Value> {
        lock(&self.inner.blocklist).clone()
    }

    /// While true, every request fails: new connections are closed at once and requests on
    /// open connections get the connection closed without a response. False restores service.
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    /// Adds or replaces a token (tests revoke, expire or re-scope tokens).
    pub fn set_token(&self, spec: TokenSpec) {
        let state = TokenState {
            spec: spec.clone(),
            created_at: Utc::now(),
        };
        write(&self.inner.tokens).insert(spec.token, state);
        lock(&self.inner.buckets).clear();
    }

    /// Returns the number of `GET /threats` requests received (whatever their outcome).
    pub fn request_count(&self) -> u64 {
        self.inner.requests.load(Ordering::SeqCst)
    }

    /// Returns the number of threat objects `GET /threats` has answered with, over all pages
    /// (a threat read twice counts twice).
    pub fn threats_served(&self) -> u64 {
        self.inner.served.load(Ordering::SeqCst)
    }

    /// Returns the number of pages `GET /threats` has answered with no threats (before any
    /// fault alters the answer): each is a poll that found nothing, which tests wait for
    /// rather than for time to pass.
    pub fn empty_pages(&self) -> u64 {
        self.inner.empty_pages.load(Ordering::SeqCst)
    }

    /// Returns the bodies received on the write endpoints, oldest first.
    pub fn writes(&self) -> Vec<Value> {
        lock(&self.inner.writes).clone()
    }

    pub(crate) fn is_down(&self) -> bool {
        self.inner.down.load(Ordering::SeqCst)
    }

    pub(crate) fn count_request(&self) {
        self.inner.requests.fetch_add(1, Ordering::SeqCst);
        self.arrived(THREATS);
    }

    /// Notes a request to `endpoint` in [`Tenant::arrivals`].
    pub(crate) fn arrived(&self, endpoint: &'static str) {
        let mut arrivals = lock(&self.inner.arrivals);
        if arrivals.len() < ARRIVALS_KEPT {
            arrivals.push(endpoint);
        }
    }

    /// Returns the endpoints of the first requests to `/threats` ([`THREATS`]) and
    /// `/users/api-token-details` ([`TOKEN_DETAILS`]), in the order they arrived (tests check
    /// what a client asks first).
    pub fn arrivals(&self) -> Vec<&'static str> {
        lock(&self.inner.arrivals).clone()
    }

    pub(crate) fn count_served(&self, threats: usize) {
        self.inner
            .served
            .fetch_add(threats as u64, Ordering::SeqCst);
        if threats == 0 {
            self.inner.empty_pages.fetch_add(1, Ordering::SeqCst);
        }
    }

    pub(crate) fn pop_fault(&self) -> Option<Fault> {
        lock(&self.inner.faults).pop_front()
    }

    pub(crate) fn pop_write_fault(&self) -> Option<Fault> {
        lock(&self.inner.write_faults).pop_front()
    }

    /// Adds a note to a threat, as an analyst in the console would; `false` when there is no
    /// such threat.
    pub fn add_note(&self, threat_id: &str, author: &str, text: &str) -> bool {
        if self.threat(threat_id).is_none() {
            return false;
        }
        let at = Utc::now().timestamp_micros();
        let created = crate::time::format_micros(at);
        let mut notes = lock(&self.inner.notes);
        let list = notes.entry(threat_id.to_owned()).or_default();
        let seq = u32::try_from(list.len()).unwrap_or(u32::MAX);
        list.push(serde_json::json!({
            "createdAt": created, "creator": author,
            "creatorId": crate::ids::snowflake(at, 7).to_string(), "edited": false,
            "id": crate::ids::snowflake(at, seq).to_string(), "text": text, "updatedAt": created,
        }));
        true
    }

    /// A threat's notes, oldest first.
    pub(crate) fn notes(&self, threat_id: &str) -> Vec<Value> {
        lock(&self.inner.notes)
            .get(threat_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Adds a hash to the blocklist at a scope, once: adding it again changes nothing.
    pub(crate) fn block_hash(&self, entry: Value) {
        let mut list = lock(&self.inner.blocklist);
        let same = |e: &Value| e["value"] == entry["value"] && e["scope"] == entry["scope"];
        if !list.iter().any(same) {
            list.push(entry);
        }
    }

    /// The ids of the threats visible in `sites` whose agent is one of `agents` (by agent id
    /// or agent UUID).
    pub(crate) fn threats_of_agents(
        &self,
        agents: &[String],
        sites: Option<&std::collections::HashSet<String>>,
    ) -> Vec<String> {
        let store = read(&self.inner.store);
        store
            .entries
            .values()
            .filter(|e| sites.is_none_or(|s| s.contains(&e.facets.site_id)))
            .filter(|e| {
                agents.iter().any(|a| {
                    *a == e.facets.agent_id
                        || (!a.is_empty() && e.text.contains(&format!("\"agentUuid\":\"{a}\"")))
                })
            })
            .map(|e| e.id.to_string())
            .collect()
    }

    pub(crate) fn record_write(&self, body: Value) {
        lock(&self.inner.writes).push(body);
    }

    /// Takes one request from the token's bucket; `Err(seconds)` when rate limited.
    pub(crate) fn throttle(&self, token: &str) -> Result<(), u64> {
        let Some(rate) = self.inner.rate_limit else {
            return Ok(());
        };
        let now = Instant::now();
        let mut buckets = lock(&self.inner.buckets);
        buckets
            .entry(token.to_owned())
            .or_insert_with(|| Bucket::full(rate, now))
            .take(rate, now)
    }

    /// Returns the cached count for `key` at `version`, computing it when stale.
    pub(crate) fn cached_count(
        &self,
        key: String,
        version: u64,
        compute: impl FnOnce() -> usize,
    ) -> usize {
        let mut cache = lock(&self.inner.count_cache);
        if let Some((k, v, n)) = cache.as_ref() {
            if *k == key && *v == version {
                return *n;
            }
        }
        let n = compute();
        *cache = Some((key, version, n));
        n
    }

    /// Edits the threats `ids` visible in `sites` with `edit` and bumps their `updatedAt` to
    /// `now`; returns how many were changed.
    pub(crate) fn edit_threats(
        &self,
        ids: &[String],
        sites: Option<&std::collections::HashSet<String>>,
        now: DateTime<Utc>,
        edit: impl Fn(&mut Value, i64),
    ) -> usize {
        let at = micros(now);
        let mut store = write(&self.inner.store);
        let mut affected = 0;
        for id in ids {
            let Some(entry) = store.get(id) else { continue };
            if sites.is_some_and(|s| !s.contains(&entry.facets.site_id)) {
                continue;
            }
            let Ok(mut threat) = serde_json::from_str::<Value>(&entry.text) else {
                continue;
            };
            edit(&mut threat, at);
            crate::lifecycle::set_updated_at(&mut threat, at);
            if store.replace(id, &threat) {
                affected += 1;
            }
        }
        affected
    }
}

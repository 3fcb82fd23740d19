//! The `PostgreSQL` store: many `dossier serve` nodes over one database.
//!
//! Each module is the twin of the SQLite store's module of the same name, over the same tables
//! and columns (see `migrations/postgres/0001_init.sql`): the story rules come from the domain,
//! and what differs is the SQL and how writers are kept apart. `SQLite` has one writer; here
//! every write transaction that changes an account's stories first takes that account's lock
//! ([`lock_account`], a transaction-scoped advisory lock), so commits of one account are
//! serialised across every node, and accounts commit side by side.
//!
//! The blocking `postgres` client (tokio-postgres underneath) rather than an async driver: the
//! modules keep the SQLite store's synchronous transactions as they are, driven from
//! `spawn_blocking` the same way, each on a connection of the store's pool.

mod admin;
mod events;
mod files;
mod ingest;
mod leases;
mod refresh;
mod stories;
mod synthetic;
mod triage;
mod users;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::{Client, GenericClient, NoTls};

use dossier_store::{Remap, Result, StoreError, RETRY};

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/postgres/0001_init.sql"),
    include_str!("../migrations/postgres/0002_leases.sql"),
    include_str!("../migrations/postgres/0003_sign_in_failures.sql"),
    include_str!("../migrations/postgres/0004_key_check.sql"),
];

/// The advisory lock the migrations run under, so that two nodes starting at once never
/// migrate together. Any constant no other lock of this database uses.
const MIGRATION_LOCK: i64 = 0x646f_7373_6965_7201;

/// How many times a write the database could not order against another (a serialization
/// failure, a deadlock) is run again before its caller is told.
const WRITE_ATTEMPTS: u32 = 5;

/// What a `PostgreSQL` store is opened with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The most connections this node keeps to the database for reads and writes; lease
    /// rounds have one more of their own.
    pub pool_size: usize,
    /// The longest one statement may run before the database cancels it.
    pub statement_timeout: Duration,
    /// The longest a connection may take to be made.
    pub connect_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            pool_size: 8,
            statement_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// The `PostgreSQL` store. Cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: postgres::Config,
    /// The pool: each slot a connection once one was made, made again when it broke.
    pool: Vec<Mutex<Option<Client>>>,
    /// One permit per connection of the pool, handed out in the order they were asked for, so
    /// that a read of the web interface waits its turn behind a busy node's commits rather
    /// than for as long as they keep winning a slot's lock.
    permits: Arc<tokio::sync::Semaphore>,
    next: AtomicUsize,
    /// A connection for lease rounds alone, made when first needed: a round never waits for
    /// the pool, which a busy node's commits may hold for longer than a lease lasts.
    lease: Mutex<Option<Client>>,
    /// Each producer's mapping of a stored incident's raw JSON.
    remap: Remap,
    /// The newest event sequence number this process saw committed, told to long-polling
    /// readers.
    event_commits: tokio::sync::watch::Sender<u64>,
}

/// Writes run again, in this process, because the database could not order them against a
/// concurrent one: counted wherever a write is run again (the store's `write`, a bulk change's
/// per-story attempts).
static RETRIES: AtomicU64 = AtomicU64::new(0);

/// Counts a write run again (see [`RETRIES`]).
pub(crate) fn retried() {
    RETRIES.fetch_add(1, Ordering::Relaxed);
}

impl Inner {
    /// A connection of the pool: a free one if there is one, else the next in turn. One that
    /// broke (the database restarted, the network dropped) is made again.
    fn conn(&self) -> Result<PooledClient<'_>> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.pool.len();
        let mut slot = None;
        for k in 0..n {
            match self.pool[(start + k) % n].try_lock() {
                Ok(guard) => {
                    slot = Some(guard);
                    break;
                }
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Poisoned(_)) => return Err(poisoned()),
            }
        }
        let guard = match slot {
            Some(g) => g,
            None => self.pool[start % n].lock().map_err(|_| poisoned())?,
        };
        self.connected(guard)
    }

    /// The connection kept for lease rounds.
    fn lease_conn(&self) -> Result<PooledClient<'_>> {
        self.connected(self.lease.lock().map_err(|_| poisoned())?)
    }

    /// A slot with a live connection in it: one that broke (the database restarted, the
    /// network dropped) or was never made is made now.
    fn connected<'a>(&self, mut guard: MutexGuard<'a, Option<Client>>) -> Result<PooledClient<'a>> {
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(self.config.connect(NoTls)?);
        }
        Ok(PooledClient(guard))
    }

    /// Tells event waiters when events committed since they last heard. A failure to read only
    /// delays them to their next timed look.
    fn announce_events(&self, conn: &mut Client) {
        match events::newest(conn) {
            Ok(n) => {
                self.event_commits.send_if_modified(|seen| {
                    let newer = n > *seen;
                    if newer {
                        *seen = n;
                    }
                    newer
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the newest event position"),
        }
    }
}

impl Drop for Inner {
    /// Closes the pool's connections on a thread of their own: closing one blocks on its own
    /// runtime, which a thread of the async runtime (where the last handle is often dropped)
    /// may not do.
    fn drop(&mut self) {
        let clients: Vec<Client> = self
            .pool
            .iter_mut()
            .chain(std::iter::once(&mut self.lease))
            .filter_map(|slot| slot.get_mut().ok().and_then(Option::take))
            .collect();
        if !clients.is_empty() {
            let _ = std::thread::Builder::new()
                .name("postgres-close".into())
                .spawn(move || drop(clients));
        }
    }
}

/// A connection taken from the pool, given back when dropped.
struct PooledClient<'a>(MutexGuard<'a, Option<Client>>);

impl std::ops::Deref for PooledClient<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        // `Inner::conn` fills the slot before it hands it out.
        self.0
            .as_ref()
            .unwrap_or_else(|| unreachable!("an empty pool slot was handed out"))
    }
}

impl std::ops::DerefMut for PooledClient<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.0
            .as_mut()
            .unwrap_or_else(|| unreachable!("an empty pool slot was handed out"))
    }
}

impl PostgresStore {
    /// Connects to the database named by a `postgres://` URL and brings its schema up to date,
    /// under a lock, so that nodes starting together never migrate at once. `remap` maps a
    /// stored incident's raw JSON again with its producer's mapping when the incident is read.
    ///
    /// # Errors
    /// Fails when the URL is not one, the database cannot be reached, or its schema is newer
    /// than this binary knows.
    pub fn open(url: &str, remap: Remap, settings: &Settings) -> Result<Self> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("not a PostgreSQL URL: {e}")))?;
        config.connect_timeout(settings.connect_timeout);
        let timeout_ms = settings.statement_timeout.as_millis();
        let options = match config.get_options() {
            Some(o) => format!("{o} -c statement_timeout={timeout_ms}"),
            None => format!("-c statement_timeout={timeout_ms}"),
        };
        config.options(&options);
        config.application_name("dossier");
        let mut first = config.connect(NoTls)?;
        migrate(&mut first)?;
        let newest_event = events::newest(&mut first)?;
        let pool_size = settings.pool_size.max(1);
        let mut pool = Vec::with_capacity(pool_size);
        pool.push(Mutex::new(Some(first)));
        pool.extend((1..pool_size).map(|_| Mutex::new(None)));
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                pool,
                permits: Arc::new(tokio::sync::Semaphore::new(pool_size)),
                next: AtomicUsize::new(0),
                lease: Mutex::new(None),
                remap,
                event_commits: tokio::sync::watch::Sender::new(newest_event),
            }),
        })
    }

    /// Writes run again, in this process, because the database could not order them against
    /// a concurrent one (serialization failures and deadlocks).
    pub fn write_retries(&self) -> u64 {
        RETRIES.load(Ordering::Relaxed)
    }

    /// Runs `f`, a write, on a connection of the pool, off the async runtime. A write the
    /// database could not order against a concurrent one is run again from the start, a few
    /// times, so `f` must begin its own transaction and may run more than once.
    pub(crate) async fn write<T, F>(&self, mut f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Client) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let permit = self.permit().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = inner.conn()?;
            let done = attempts(&mut conn, &mut f);
            inner.announce_events(&mut conn);
            done
        })
        .await
        .map_err(|e| StoreError::Database(format!("store task failed: {e}")))?
    }

    /// A turn at a connection of the pool, waited for in order.
    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Database("the connection pool was closed".into()))
    }

    /// Runs `f`, a write of a lease round, on the connection kept for them (see
    /// [`PostgresStore::write`]).
    async fn lease_write<T, F>(&self, mut f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Client) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || attempts(&mut *inner.lease_conn()?, &mut f))
            .await
            .map_err(|e| StoreError::Database(format!("store task failed: {e}")))?
    }

    /// Runs `f`, a read, on a connection of the pool, off the async runtime.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Client) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let permit = self.permit().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(&mut *inner.conn()?)
        })
        .await
        .map_err(|e| StoreError::Database(format!("store task failed: {e}")))?
    }
}

/// Runs `f`, a write that begins its own transaction, again from the start when the database
/// could not order it against a concurrent one, a few times.
fn attempts<T>(conn: &mut Client, f: &mut impl FnMut(&mut Client) -> Result<T>) -> Result<T> {
    let mut attempt = 1;
    loop {
        match f(conn) {
            Err(StoreError::Conflict(why)) if why == RETRY && attempt < WRITE_ATTEMPTS => {
                retried();
                attempt += 1;
                std::thread::sleep(Duration::from_millis(5 << attempt));
            }
            done => return done,
        }
    }
}

/// Takes the lock of one account's stories until the transaction ends: every write that
/// changes an account's stories, incidents or timeline takes it first, on whichever node it
/// runs, so that two commits of one account never correlate against each other's half.
pub(crate) fn lock_account(tx: &mut impl GenericClient, account_id: &str) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
        &[&account_id],
    )?;
    Ok(())
}

fn migrate(conn: &mut Client) -> Result<()> {
    conn.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let done = migrate_locked(conn);
    // A lock left behind is released when the connection closes anyway.
    let unlocked = conn.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    done?;
    unlocked?;
    Ok(())
}

fn migrate_locked(conn: &mut Client) -> Result<()> {
    // Made the first time only (an existing table would draw a notice into the log each start).
    let fresh: bool = conn
        .query_one("SELECT to_regclass('dossier_schema') IS NULL", &[])?
        .get(0);
    if fresh {
        conn.batch_execute(
            "CREATE TABLE dossier_schema (version BIGINT NOT NULL);
             INSERT INTO dossier_schema (version) VALUES (0);",
        )?;
    }
    let version: i64 = conn
        .query_one("SELECT version FROM dossier_schema", &[])?
        .get(0);
    let version = usize::try_from(version).unwrap_or(0);
    if version > MIGRATIONS.len() {
        return Err(StoreError::Database(format!(
            "the database schema (version {version}) is newer than this binary knows ({})",
            MIGRATIONS.len()
        )));
    }
    if version == MIGRATIONS.len() {
        return Ok(());
    }
    // One transaction for every step: a crash before the commit leaves the database as it was.
    let mut tx = conn.transaction()?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.batch_execute(sql)?;
        tracing::info!(version = i + 1, "database schema migrated");
    }
    let latest = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    tx.execute("UPDATE dossier_schema SET version = $1", &[&latest])?;
    tx.commit()?;
    Ok(())
}

pub(crate) fn us(t: DateTime<Utc>) -> i64 {
    dossier_domain::time::to_micros(t)
}

pub(crate) fn ts(us: i64) -> DateTime<Utc> {
    dossier_domain::time::from_micros(us)
}

pub(crate) fn opt_ts(us: Option<i64>) -> Option<DateTime<Utc>> {
    us.map(ts)
}

/// `''` stored for "none" reads back as `None`.
pub(crate) fn nonempty(s: String) -> Option<String> {
    if s.is_empty() {
        None
    } else {
        Some(s)
    }
}

fn poisoned() -> StoreError {
    StoreError::Database("a database connection was poisoned by an earlier panic".into())
}

/// A new id for an account, a connector, a user or a comment: 13 characters of lowercase
/// base32, as the SQLite store makes them (see its `new_id`).
pub(crate) fn new_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut rng = rand::thread_rng();
    (0..13)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

#[async_trait::async_trait]
impl dossier_store::Store for PostgresStore {
    async fn create_account(
        &self,
        name: &str,
        licence: dossier_domain::access::Licence,
    ) -> Result<dossier_store::Account> {
        let name = name.to_owned();
        self.write(move |c| admin::create_account(c, &name, licence, Utc::now()))
            .await
    }

    async fn get_account(&self, id: &str) -> Result<dossier_store::Account> {
        let id = id.to_owned();
        self.read(move |c| admin::get_account(c, &id)).await
    }

    async fn list_accounts(&self) -> Result<Vec<dossier_store::Account>> {
        self.read(admin::list_accounts).await
    }

    async fn insert_api_key(&self, key: &dossier_store::ApiKeyRecord) -> Result<()> {
        let key = key.clone();
        self.write(move |c| admin::insert_api_key(c, &key)).await
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<dossier_store::ApiKeyRecord> {
        let h = key_hash.to_owned();
        self.read(move |c| admin::find_api_key(c, &h)).await
    }

    async fn list_api_keys(
        &self,
        account_id: Option<&str>,
    ) -> Result<Vec<dossier_store::ApiKeyRecord>> {
        let a = account_id.map(str::to_owned);
        self.read(move |c| admin::list_api_keys(c, a.as_deref()))
            .await
    }

    async fn delete_api_key(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.write(move |c| admin::delete_api_key(c, &id)).await
    }

    async fn create_connector(
        &self,
        new: &dossier_store::NewConnector,
    ) -> Result<dossier_store::ConnectorRecord> {
        let new = new.clone();
        self.write(move |c| admin::create_connector(c, &new)).await
    }

    async fn list_connectors(
        &self,
        account_id: Option<&str>,
    ) -> Result<Vec<dossier_store::ConnectorRecord>> {
        let a = account_id.map(str::to_owned);
        self.read(move |c| admin::list_connectors(c, a.as_deref()))
            .await
    }

    async fn get_connector(
        &self,
        account_id: Option<&str>,
        id: &str,
    ) -> Result<dossier_store::ConnectorRecord> {
        let (a, id) = (account_id.map(str::to_owned), id.to_owned());
        self.read(move |c| admin::get_connector(c, a.as_deref(), &id))
            .await
    }

    async fn update_connector(
        &self,
        account_id: Option<&str>,
        id: &str,
        u: &dossier_store::ConnectorUpdate,
    ) -> Result<dossier_store::ConnectorRecord> {
        let (a, id, u) = (account_id.map(str::to_owned), id.to_owned(), u.clone());
        self.write(move |c| admin::update_connector(c, a.as_deref(), &id, &u))
            .await
    }

    async fn delete_connector(&self, account_id: Option<&str>, id: &str) -> Result<()> {
        let (a, id) = (account_id.map(str::to_owned), id.to_owned());
        self.write(move |c| admin::delete_connector(c, a.as_deref(), &id))
            .await
    }

    async fn set_connector_health(&self, id: &str, h: &dossier_store::HealthUpdate) -> Result<()> {
        let (id, h) = (id.to_owned(), h.clone());
        self.write(move |c| admin::set_connector_health(c, &id, &h))
            .await
    }

    async fn commit_page(
        &self,
        page: dossier_store::IngestPage,
    ) -> Result<dossier_store::IngestOutcome> {
        let remap = Arc::clone(&self.inner.remap);
        let mut page = page;
        let mut prepared = None;
        self.write(move |c| {
            let prepared = match &mut prepared {
                Some(p) => p,
                None => prepared.insert(ingest::prepare(&mut page)?),
            };
            ingest::commit(c, &remap, &page, prepared)
        })
        .await
    }

    async fn list_stories(
        &self,
        q: &dossier_store::StoryQuery,
    ) -> Result<dossier_store::StoryPage> {
        let q = q.clone();
        self.read(move |c| stories::list(c, &q)).await
    }

    async fn get_story(
        &self,
        account_id: Option<&str>,
        id: &str,
    ) -> Result<dossier_store::StoryDetail> {
        let (a, id) = (account_id.map(str::to_owned), id.to_owned());
        let remap = Arc::clone(&self.inner.remap);
        self.read(move |c| stories::get(c, &remap, a.as_deref(), &id))
            .await
    }

    async fn story_incidents(
        &self,
        account_id: Option<&str>,
        story_id: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<dossier_store::IncidentPage> {
        let (a, id) = (account_id.map(str::to_owned), story_id.to_owned());
        let cursor = cursor.map(str::to_owned);
        let remap = Arc::clone(&self.inner.remap);
        self.read(move |c| {
            stories::incidents(c, &remap, a.as_deref(), &id, cursor.as_deref(), limit)
        })
        .await
    }

    async fn story_incident(
        &self,
        account_id: Option<&str>,
        story_id: &str,
        incident_id: &str,
    ) -> Result<dossier_store::IncidentView> {
        let (a, id, incident) = (
            account_id.map(str::to_owned),
            story_id.to_owned(),
            incident_id.to_owned(),
        );
        let remap = Arc::clone(&self.inner.remap);
        self.read(move |c| stories::incident(c, &remap, a.as_deref(), &id, &incident))
            .await
    }

    async fn update_story(
        &self,
        account_id: Option<&str>,
        id: &str,
        u: &dossier_store::StoryUpdate,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<dossier_store::StoryDetail> {
        let (a, id, u, actor) = (
            account_id.map(str::to_owned),
            id.to_owned(),
            u.clone(),
            actor.to_owned(),
        );
        let a2 = a.clone();
        let id2 = id.clone();
        self.write(move |c| triage::update(c, a.as_deref(), &id, &u, &actor, now))
            .await?;
        let remap = Arc::clone(&self.inner.remap);
        self.read(move |c| stories::get(c, &remap, a2.as_deref(), &id2))
            .await
    }

    async fn update_stories(
        &self,
        account_id: Option<&str>,
        ids: &[String],
        u: &dossier_store::StoryUpdate,
        comment: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, dossier_store::BulkOutcome)>> {
        let (a, ids, u, comment, actor) = (
            account_id.map(str::to_owned),
            ids.to_vec(),
            u.clone(),
            comment.map(str::to_owned),
            actor.to_owned(),
        );
        self.write(move |c| {
            triage::update_many(c, a.as_deref(), &ids, &u, comment.as_deref(), &actor, now)
        })
        .await
    }

    async fn add_comment(
        &self,
        account_id: Option<&str>,
        story_id: &str,
        author: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<dossier_store::Comment> {
        let (a, id, author, text) = (
            account_id.map(str::to_owned),
            story_id.to_owned(),
            author.to_owned(),
            text.to_owned(),
        );
        self.write(move |c| triage::add_comment(c, a.as_deref(), &id, &author, &text, now))
            .await
    }

    async fn record_on_story(
        &self,
        story_id: &str,
        kind: &str,
        actor: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (id, kind, actor, text) = (
            story_id.to_owned(),
            kind.to_owned(),
            actor.to_owned(),
            text.to_owned(),
        );
        self.write(move |c| triage::record_on_story(c, &id, now, &actor, &kind, &text))
            .await
    }

    async fn count_stories(&self, q: &dossier_store::StoryQuery, cap: u64) -> Result<u64> {
        let q = q.clone();
        self.read(move |c| stories::count(c, &q, cap)).await
    }

    async fn group_stories(
        &self,
        q: &dossier_store::StoryQuery,
        by: dossier_store::StoryGroup,
        limit: u32,
    ) -> Result<Vec<dossier_store::GroupCount>> {
        let q = q.clone();
        self.read(move |c| stories::group_counts(c, &q, by, limit))
            .await
    }

    async fn delete_comment(
        &self,
        account_id: Option<&str>,
        story_id: &str,
        comment_id: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (a, s, c, actor) = (
            account_id.map(str::to_owned),
            story_id.to_owned(),
            comment_id.to_owned(),
            actor.to_owned(),
        );
        self.write(move |conn| triage::delete_comment(conn, a.as_deref(), &s, &c, &actor, now))
            .await
    }

    async fn create_user(
        &self,
        u: &dossier_store::UserRecord,
    ) -> Result<dossier_store::UserRecord> {
        let u = u.clone();
        self.write(move |c| users::create_user(c, &u)).await
    }

    async fn find_user(&self, username: &str) -> Result<dossier_store::UserRecord> {
        let n = username.to_owned();
        self.read(move |c| users::find_user(c, &n)).await
    }

    async fn list_users(&self, account_id: Option<&str>) -> Result<Vec<dossier_store::UserRecord>> {
        let a = account_id.map(str::to_owned);
        self.read(move |c| users::list_users(c, a.as_deref())).await
    }

    async fn user_setting(&self, user_id: &str, name: &str) -> Result<Option<String>> {
        let (user_id, name) = (user_id.to_owned(), name.to_owned());
        self.read(move |c| users::setting(c, &user_id, &name)).await
    }

    async fn set_user_setting(&self, user_id: &str, name: &str, value: Option<&str>) -> Result<()> {
        let (user_id, name) = (user_id.to_owned(), name.to_owned());
        let value = value.map(str::to_owned);
        self.write(move |c| users::set_setting(c, &user_id, &name, value.as_deref()))
            .await
    }

    async fn delete_user(&self, account_id: Option<&str>, id: &str) -> Result<()> {
        let (a, id) = (account_id.map(str::to_owned), id.to_owned());
        self.write(move |c| users::delete_user(c, a.as_deref(), &id))
            .await
    }

    async fn create_session(&self, s: &dossier_store::SessionRecord) -> Result<()> {
        let s = s.clone();
        self.write(move |c| users::create_session(c, &s)).await
    }

    async fn find_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(dossier_store::SessionRecord, dossier_store::UserRecord)> {
        let h = id_hash.to_owned();
        self.read(move |c| users::find_session(c, &h, now)).await
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        let h = id_hash.to_owned();
        self.write(move |c| users::delete_session(c, &h)).await
    }

    async fn list_audit(
        &self,
        q: &dossier_store::AuditQuery,
    ) -> Result<Vec<dossier_store::AuditEntry>> {
        let q = q.clone();
        self.read(move |c| users::list_audit(c, &q)).await
    }

    async fn audit(
        &self,
        account_id: &str,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (a, actor, action, target, detail) = (
            account_id.to_owned(),
            actor.to_owned(),
            action.to_owned(),
            target.to_owned(),
            detail.to_owned(),
        );
        self.write(move |c| users::audit(c, &a, now, &actor, &action, &target, &detail))
            .await
    }

    async fn list_events(&self, q: &dossier_store::EventQuery) -> Result<dossier_store::EventPage> {
        let q = q.clone();
        self.read(move |c| events::list(c, &q)).await
    }

    async fn insert_event(&self, e: &dossier_store::NewEvent) -> Result<()> {
        let e = e.clone();
        self.write(move |c| events::insert(c, &e)).await
    }

    fn event_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.event_commits.subscribe()
    }

    async fn lease_connectors(
        &self,
        node: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<Vec<String>>> {
        let node = node.to_owned();
        self.lease_write(move |c| leases::round(c, &node, ttl))
            .await
            .map(Some)
    }

    fn write_retries(&self) -> u64 {
        PostgresStore::write_retries(self)
    }

    fn shares_sign_in_failures(&self) -> bool {
        true
    }

    async fn key_check(&self) -> Result<Option<Vec<u8>>> {
        self.read(|c| {
            Ok(c.query_opt("SELECT sealed FROM key_check", &[])?
                .map(|r| r.get(0)))
        })
        .await
    }

    async fn set_key_check(&self, sealed: &[u8]) -> Result<Vec<u8>> {
        let sealed = sealed.to_vec();
        self.write(move |c| {
            c.execute(
                "INSERT INTO key_check (sealed) VALUES ($1) ON CONFLICT (one) DO NOTHING",
                &[&sealed],
            )?;
            Ok(c.query_one("SELECT sealed FROM key_check", &[])?.get(0))
        })
        .await
    }

    async fn sign_in_failures(&self, keys: &[String], since: DateTime<Utc>) -> Result<Vec<u64>> {
        let keys = keys.to_vec();
        self.read(move |c| users::sign_in_failures(c, &keys, since))
            .await
    }

    async fn add_sign_in_failure(
        &self,
        keys: &[String],
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<()> {
        let keys = keys.to_vec();
        self.write(move |c| users::add_sign_in_failure(c, &keys, at, forget_before))
            .await
    }

    async fn clear_sign_in_failures(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        self.write(move |c| users::clear_sign_in_failures(c, &key))
            .await
    }

    async fn release_leases(&self, node: &str) -> Result<()> {
        let node = node.to_owned();
        self.lease_write(move |c| leases::release(c, &node)).await
    }

    async fn ping(&self) -> Result<()> {
        // A database that cannot take writes (a standby, a full disk) says so on the next
        // write; here, whether it answers and is not read-only.
        self.read(|c| {
            let read_only: String = c.query_one("SHOW transaction_read_only", &[])?.get(0);
            if read_only == "on" {
                return Err(StoreError::Unavailable(
                    "the database could not be written: it is read-only (a standby?)".into(),
                ));
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::{PostgresStore, Settings, RETRIES};
    use dossier_store::{StoreError, RETRY};

    /// A fresh schema on the test server, run on a thread of its own (the blocking client
    /// starts a runtime); `None`, said loudly, where no server answers.
    fn schema() -> Option<String> {
        let base = std::env::var("DOSSIER_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        std::thread::spawn(move || {
            let mut c = match postgres::Client::connect(&base, postgres::NoTls) {
                Ok(c) => c,
                Err(e) => {
                    println!(
                        "SKIPPED: the PostgreSQL store's retry test: no server at {base} ({e})"
                    );
                    return None;
                }
            };
            let name = format!("t_retry_{:08x}", rand::random::<u32>());
            c.batch_execute(&format!("CREATE SCHEMA {name}")).unwrap();
            let sep = if base.contains('?') { '&' } else { '?' };
            Some(format!("{base}{sep}options=-c%20search_path%3D{name}"))
        })
        .join()
        .unwrap()
    }

    #[test]
    fn a_write_the_database_could_not_order_is_run_again_and_counted() {
        let Some(url) = schema() else { return };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = {
            let url = url.clone();
            std::thread::spawn(move || {
                PostgresStore::open(&url, Arc::new(|_, _| None), &Settings::default())
            })
            .join()
            .unwrap()
            .unwrap()
        };

        // A real serialization failure reads as the conflict that is run again.
        let failure = std::thread::spawn(move || {
            let mut a = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let mut b = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            a.batch_execute("CREATE TABLE tally (n BIGINT); INSERT INTO tally VALUES (0)")
                .unwrap();
            let mut tx = a
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .start()
                .unwrap();
            tx.query_one("SELECT n FROM tally", &[]).unwrap();
            b.execute("UPDATE tally SET n = n + 1", &[]).unwrap();
            StoreError::from(tx.execute("UPDATE tally SET n = n + 1", &[]).unwrap_err())
        })
        .join()
        .unwrap();
        assert!(
            matches!(&failure, StoreError::Conflict(why) if why == RETRY),
            "{failure:?}"
        );

        // Such a write is run again, and counted.
        let before = RETRIES.load(Ordering::Relaxed);
        let attempts = Arc::new(AtomicU32::new(0));
        let tries = Arc::clone(&attempts);
        rt.block_on(store.write(move |_| {
            if tries.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(StoreError::Conflict(RETRY.into()))
            } else {
                Ok(())
            }
        }))
        .unwrap();
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        assert!(RETRIES.load(Ordering::Relaxed) > before);

        // One that keeps failing reaches its caller after a few attempts.
        let attempts = Arc::new(AtomicU32::new(0));
        let tries = Arc::clone(&attempts);
        let last = rt.block_on(store.write(move |_| -> dossier_store::Result<()> {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::Conflict(RETRY.into()))
        }));
        assert!(matches!(last, Err(StoreError::Conflict(_))));
        assert_eq!(attempts.load(Ordering::SeqCst), super::WRITE_ATTEMPTS);
    }
}

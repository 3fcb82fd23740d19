//! The embedded SQLite store: one writer connection and a few readers over one WAL database.
//!
//! rusqlite rather than sqlx here: ingest writes several statements per threat, and a
//! synchronous connection with cached prepared statements, driven from `spawn_blocking`,
//! costs a few microseconds per statement where an async driver's per-query hop costs tens.

mod admin;
pub mod body;
mod events;
mod files;
mod ingest;
mod refresh;
mod stories;
mod synthetic;
mod triage;
mod users;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};

use dossier_store::{Remap, Result, StoreError};

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_users.sql"),
    include_str!("../migrations/sqlite/0003_story_lookups.sql"),
    include_str!("../migrations/sqlite/0004_outbreak_tier_in_hash_index.sql"),
    include_str!("../migrations/sqlite/0005_account_epochs.sql"),
    include_str!("../migrations/sqlite/0006_incident_producer.sql"),
    include_str!("../migrations/sqlite/0007_connector_config.sql"),
    include_str!("../migrations/sqlite/0008_file_identities.sql"),
    include_str!("../migrations/sqlite/0009_story_owner.sql"),
    include_str!("../migrations/sqlite/0010_api_key_names.sql"),
    include_str!("../migrations/sqlite/0011_user_settings.sql"),
    include_str!("../migrations/sqlite/0012_groups_in_the_update_index.sql"),
    include_str!("../migrations/sqlite/0013_incident_mitigation.sql"),
    include_str!("../migrations/sqlite/0014_connector_response.sql"),
];
const READERS: usize = 4;
/// The page size of a new database. An index entry that ingest adds lands on a random page of
/// its index, and each page a commit touched goes to the WAL once as a frame of its own, so
/// fewer, larger pages mean fewer frames and shallower trees for the same bytes. 32 KiB pages
/// ingested ~4% faster than 16 KiB over 11 alternating runs of the benchmark; 64 KiB ~7%
/// faster, but a text search over a million stories took 32 ms instead of 2–4. A database
/// keeps the page size it was created with (WAL cannot change it).
pub(crate) const PAGE_SIZE: u32 = 32 * 1024;

/// The embedded SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Connection>,
    /// The WAL file beside the database.
    wal: std::path::PathBuf,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// Each producer's mapping of a stored incident's raw JSON.
    remap: Remap,
    /// The newest event sequence number committed, told to long-polling readers.
    event_commits: tokio::sync::watch::Sender<u64>,
    /// Why the database refuses writes, since a write failed so (a full disk, a read-only
    /// file); cleared by the next write that changes something (see [`Inner::wrote`]).
    unwritable: Mutex<Option<String>>,
}

impl Inner {
    /// Keeps what a write on the writer connection `conn` tells of the database: that it
    /// refuses writes, and why, or (a write that changed rows and succeeded, so committed)
    /// that it takes them again. `changes_before` is `conn.total_changes()` before the write:
    /// a write that changed nothing wrote nothing, and proves nothing.
    fn wrote<T>(&self, conn: &Connection, changes_before: u64, done: &Result<T>) {
        let Ok(mut unwritable) = self.unwritable.lock() else {
            return;
        };
        match done {
            Err(StoreError::Unavailable(reason)) => {
                if unwritable.as_deref() != Some(reason) {
                    tracing::error!(%reason, "the database refuses writes");
                }
                *unwritable = Some(reason.clone());
            }
            Ok(_) if unwritable.is_some() && conn.total_changes() > changes_before => {
                tracing::info!("the database takes writes again");
                *unwritable = None;
            }
            _ => {}
        }
    }

    /// Whether the database takes writes: while a write has failed and none succeeded since,
    /// a write that changes nothing anyone reads (the schema version, set to what it is) is
    /// tried, so that the database is seen taking writes again even when nothing else writes.
    fn writable(&self) -> Result<()> {
        if self.unwritable.lock().map_err(|_| poisoned())?.is_none() {
            return Ok(());
        }
        let conn = self.writer.lock().map_err(|_| poisoned())?;
        let changes = conn.total_changes();
        let probe = rewrite_version(&conn).map_err(StoreError::from);
        if probe.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        match &probe {
            Ok(()) => {
                tracing::info!("the database takes writes again");
                *self.unwritable.lock().map_err(|_| poisoned())? = None;
            }
            Err(_) => self.wrote(&conn, changes, &probe),
        }
        probe
    }

    /// Tells event waiters when the write just done on `conn` committed events. A failure to
    /// read only delays them to their next timed look.
    fn announce_events(&self, conn: &Connection) {
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

    /// A reader connection: a free one if there is one (a batch being planned on one must not
    /// hold up a page of the Workbench), else the next in turn.
    fn reader(&self) -> Result<MutexGuard<'_, Connection>> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let n = self.readers.len();
        for k in 0..n {
            match self.readers[(start + k) % n].try_lock() {
                Ok(conn) => return Ok(conn),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Poisoned(_)) => return Err(poisoned()),
            }
        }
        self.readers[start % n].lock().map_err(|_| poisoned())
    }

    /// Commits a page. Serialising, the reads and correlation happen before the writer lock,
    /// so they overlap other connectors' commits. `before_lock` runs just before the lock is
    /// taken (tests commit a racing page there).
    fn commit_page(
        &self,
        page: &mut dossier_store::IngestPage,
        before_lock: impl FnOnce(),
    ) -> Result<dossier_store::IngestOutcome> {
        let mut prepared = ingest::prepare(page)?;
        // Records another connector of the tenant holds are left out before the plan is read,
        // and again under the lock, where no other commit can come in between: one that was
        // taken then was read after the plan, which is read again.
        let mut held = if page.shared_with.is_empty() {
            0
        } else {
            ingest::drop_held(&*self.reader()?, page, &mut prepared)?
        };
        // A failure here only costs speed: the batch is then read under the lock.
        let mut ahead = self
            .plan_ahead(page, &prepared)
            .inspect_err(
                |e| tracing::warn!(error = %e, "reading a batch ahead of its commit failed"),
            )
            .ok();
        before_lock();
        let mut conn = self.writer.lock().map_err(|_| poisoned())?;
        let late = ingest::drop_held(&conn, page, &mut prepared)?;
        if late > 0 {
            held += late;
            ahead = None;
        }
        let changes = conn.total_changes();
        let committed = ingest::commit_page(&mut conn, &self.remap, page, &prepared, ahead).map(
            |(mut outcome, spent)| {
                outcome.incidents_held_elsewhere = held;
                (outcome, spent)
            },
        );
        self.wrote(&conn, changes, &committed);
        self.announce_events(&conn);
        restart_wal_if_large(&conn, &self.wal, WAL_RESTART_BYTES);
        // What the commit worked with is freed once the lock is released.
        drop(conn);
        committed.map(|(outcome, _spent)| outcome)
    }

    /// Works out a page's plan on a reader, before the writer lock: the reads and the
    /// correlation then overlap other connectors' commits. Returns the account's epoch the
    /// plan was read at, read in the same snapshot as the plan.
    fn plan_ahead(
        &self,
        page: &dossier_store::IngestPage,
        prepared: &[ingest::Prepared],
    ) -> Result<(i64, ingest::PagePlan)> {
        let conn = self.reader()?;
        let tx = conn.unchecked_transaction()?;
        let epoch = ingest::account_epoch(&tx, &page.account_id)?;
        let plan = ingest::plan_page(&tx, &self.remap, page, prepared)?;
        tx.finish()?;
        Ok((epoch, plan))
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database named by a `sqlite://PATH` URL or a plain path,
    /// and brings its schema up to date. `remap` maps a stored incident's raw JSON again with
    /// its producer's mapping when the incident is read.
    ///
    /// # Errors
    /// Fails when the file cannot be opened or the schema cannot be migrated.
    pub fn open(url: &str, remap: Remap) -> Result<Self> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() || path.contains(":memory:") {
            return Err(StoreError::Invalid(
                "an in-memory SQLite database cannot be shared by the server's connections; give a file path".into(),
            ));
        }
        let path = Path::new(path);
        // Before any connection opens: see `owner_only` on why nothing here may open a file
        // SQLite holds.
        owner_only(path)?;
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            owner_only_if_there(Path::new(&side))?;
        }
        let mut writer = open_conn(path, true)?;
        migrate(&mut writer, &remap)?;
        // The writer never checkpoints: a checkpoint copies the WAL into the database file, and
        // doing that inside a commit stalls ingest. A thread of its own checkpoints instead
        // (passively: it never blocks the writer).
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = open_conn(path, false)?;
        let readers = (0..READERS)
            .map(|_| open_conn(path, false).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let newest_event = events::newest(&writer)?;
        let inner = Arc::new(Inner {
            event_commits: tokio::sync::watch::Sender::new(newest_event),
            writer: Mutex::new(writer),
            wal: wal.into(),
            readers,
            next_reader: AtomicUsize::new(0),
            remap,
            unwritable: Mutex::new(None),
        });
        spawn_checkpointer(checkpointer, Arc::downgrade(&inner));
        Ok(Self { inner })
    }

    /// Runs `f` on the writer connection, off the async runtime.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().map_err(|_| poisoned())?;
            let changes = conn.total_changes();
            let done = f(&mut conn);
            inner.wrote(&conn, changes, &done);
            inner.announce_events(&conn);
            done
        })
        .await
        .map_err(|e| StoreError::Database(format!("store task failed: {e}")))?
    }

    /// Runs `f` on one of the reader connections, off the async runtime.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&*inner.reader()?))
            .await
            .map_err(|e| StoreError::Database(format!("store task failed: {e}")))?
    }
}

/// Checkpoints the WAL every 200 ms until the store is dropped. Passive checkpoints never block
/// the writer; they copy the bulk of the WAL into the database while ingest goes on.
fn spawn_checkpointer(conn: Connection, store: std::sync::Weak<Inner>) {
    let spawned = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            // A checkpoint that fails (a full disk) fails every time until it is mended: said
            // once, and again when it works, not five times a second.
            let mut failing = false;
            while store.strong_count() > 0 {
                std::thread::sleep(std::time::Duration::from_millis(200));
                match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    Err(e) if !failing => {
                        tracing::warn!(error = %e, "wal checkpoint failed");
                        failing = true;
                    }
                    Ok(()) if failing => {
                        tracing::info!("wal checkpoint works again");
                        failing = false;
                    }
                    _ => {}
                }
            }
            // A last full checkpoint leaves a compact database behind.
            let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the checkpoint thread; the WAL will grow");
    }
}

/// Writes the schema version as it is: a write that changes nothing anyone reads. The version
/// is read in the write transaction itself: another process may have migrated the database
/// since this one opened it, and must not see it set back.
fn rewrite_version(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    conn.execute_batch(&format!("PRAGMA user_version = {version}; COMMIT"))
}

/// Under a steady stream of commits a passive checkpoint never reaches the end of the WAL, so
/// the WAL would only grow (and every read would search a larger WAL index). Past 1 GiB the
/// writer itself, between two transactions, finishes the checkpoint and starts the WAL over.
/// Most frames are already copied by then, but the last commit's are not, and copying them
/// holds the writer 80-200 ms: at 256 MiB that was twice in a 100,000-threat backfill, 5% of
/// the writer's time.
const WAL_RESTART_BYTES: u64 = 1024 * 1024 * 1024;

/// Restarts the WAL when its file is over `limit` bytes (see [`WAL_RESTART_BYTES`]).
fn restart_wal_if_large(conn: &Connection, wal: &Path, limit: u64) {
    if std::fs::metadata(wal).is_ok_and(|m| m.len() > limit) {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "wal restart failed");
        }
    }
}

fn poisoned() -> StoreError {
    StoreError::Database("a database connection was poisoned by an earlier panic".into())
}

/// Creates the database file readable and writable by its owner only (0600), whatever the
/// umask, before SQLite opens it: it holds the tenants' threats, user password hashes and
/// sealed connector secrets. A file that exists is brought to 0600 if it is looser, by its path
/// alone.
///
/// A file that exists is never opened here: closing any descriptor of a file drops every
/// POSIX lock this process holds on it, SQLite's included. Had a connection of this process
/// had the database or its `-shm` open, another process would then find no one holding the
/// shared memory and start it afresh under this process's mapping (a SIGBUS, or a corrupt
/// WAL index).
fn owner_only(path: &Path) -> Result<()> {
    if path.exists() {
        return owner_only_if_there(path);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| cannot_restrict(path, &e))?;
    }
    owner_only_if_there(path)
}

/// Brings a file that exists (the database, its `-wal`, its `-shm`, which SQLite creates with
/// the database's mode) to owner-only, by path: nothing is opened.
fn owner_only_if_there(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match std::fs::metadata(path) {
            Ok(m) => m.permissions().mode(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(cannot_restrict(path, &e)),
        };
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))
                .map_err(|e| cannot_restrict(path, &e))?;
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
    }
    Ok(())
}

fn cannot_restrict(path: &Path, e: &std::io::Error) -> StoreError {
    StoreError::Database(format!("cannot make {} owner-only: {e}", path.display()))
}

/// What the writer keeps of the database in memory: a large page cache, and the file mapped,
/// since ingest reads index pages at random all over it.
const WRITER_CACHE_KIB: i64 = 256 * 1024;
const WRITER_MMAP_BYTES: i64 = 1024 * 1024 * 1024;
/// What each reader keeps: a small page cache, and nothing mapped. A mapped page counts in the
/// process's resident memory once for each connection that touched it, so readers sharing
/// large reads (eight exports of 100,000 events at once, about 110 MB) showed the table once
/// per reader: 640 MiB resident. Unmapped, each reader holds at most its cache; the file's
/// pages stay in the kernel's cache, so a page read again costs a copy, not a disk read.
const READER_CACHE_KIB: i64 = 8 * 1024;

fn open_conn(path: &Path, writer: bool) -> Result<Connection> {
    let flags = if writer {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Database(format!("cannot open {}: {e}", path.display())))?;
    // WAL with synchronous=NORMAL survives a killed process (what the crash test does); it
    // trades only the last transactions before a power loss for write speed.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous=NORMAL;
         PRAGMA busy_timeout=10000;
         PRAGMA foreign_keys=ON;
         PRAGMA temp_store=MEMORY;
         PRAGMA journal_size_limit=67108864;",
    )?;
    let (cache_kib, mmap_bytes) = if writer {
        (WRITER_CACHE_KIB, WRITER_MMAP_BYTES)
    } else {
        (READER_CACHE_KIB, 0)
    };
    // A negative cache size is in KiB.
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    conn.pragma_update(None, "mmap_size", mmap_bytes)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// The schema version from which stories are filed under their file's identity: a database
/// migrated to it learns the file links of the incidents it already holds.
const FILE_IDENTITIES: usize = 8;
/// The schema version from which each incident row says whether its threat is not mitigated: a
/// database migrated to it reads that from the threats it already holds, and scores again the
/// stories it changes.
const INCIDENT_MITIGATION: usize = 13;

fn migrate(conn: &mut Connection, remap: &Remap) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
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
    // One transaction for every step: the backfills below read the schema as the last step
    // leaves it (a story's aggregates read columns a later step adds), so they run once it is
    // all there, and a crash before the commit leaves the database as it was.
    let tx = conn.transaction()?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.execute_batch(sql)?;
        tracing::info!(version = i + 1, "database schema migrated");
    }
    let crossed = |step: usize| version < step;
    if crossed(INCIDENT_MITIGATION) {
        refresh::backfill_unmitigated(&tx, remap)?;
    }
    if crossed(FILE_IDENTITIES) {
        files::backfill(&tx, remap)?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len())?;
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

/// A new id for an account, a connector, a user or a comment: 13 characters of lowercase
/// base32 (65 random bits, letters that cannot be misread left out).
///
/// Account and connector ids are repeated in every index entry of stories, incidents and events,
/// so their length is a good part of what ingest writes: 13 characters instead of a 32-character
/// UUID make the bench's 100,000-threat database 9% smaller (443 → 405 MB). At 65 bits two ids
/// of a deployment do not meet in practice, and the primary keys would refuse it if they did.
/// Ids made before (UUIDs) stay valid: an id is any string.
pub(crate) fn new_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut rng = rand::thread_rng();
    (0..ID_LEN)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

const ID_LEN: usize = 13;

#[async_trait::async_trait]
impl dossier_store::Store for SqliteStore {
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
        mut page: dossier_store::IngestPage,
    ) -> Result<dossier_store::IngestOutcome> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.commit_page(&mut page, || {}))
            .await
            .map_err(|e| StoreError::Database(format!("store task failed: {e}")))?
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
        self.write(move |c| {
            let story = stories::get_story_row(c, None, &id)?;
            triage::record(c, &story, now, &actor, &kind, &text)
        })
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

    async fn ping(&self) -> Result<()> {
        self.read(|c| {
            Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(|_| ())?)
        })
        .await?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.writable())
            .await
            .map_err(|e| StoreError::Database(format!("store task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::{TimeZone, Utc};
    use dossier_domain::access::Licence;
    use dossier_domain::correlate::Policy;
    use dossier_domain::{Device, FileInfo, Incident};

    use super::SqliteStore;
    use dossier_store::{IngestPage, NewConnector, Remap, Store};

    /// SentinelOne's mapping, the one every test incident here is stored with.
    fn s1() -> Remap {
        std::sync::Arc::new(|p, raw| {
            (p == dossier_sentinelone::producer())
                .then(|| dossier_sentinelone::remap_stored(raw))
                .flatten()
        })
    }

    /// A database that refuses writes (here made read-only under the writer) says so in an
    /// operator's words on every write and on `ping`, reads go on, and `ping` sees it take
    /// writes again once it does, with nothing else writing.
    #[tokio::test]
    async fn a_database_that_refuses_writes_says_why_until_it_takes_them_again() {
        use dossier_store::StoreError;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("t.db").to_str().unwrap(), s1()).unwrap();
        store.ping().await.unwrap();
        let read_only = |on: bool| {
            let conn = store.inner.writer.lock().unwrap();
            conn.pragma_update(None, "query_only", on).unwrap();
        };
        read_only(true);
        let refused = |e: StoreError| match e {
            StoreError::Unavailable(m) => m,
            other => panic!("{other:?}"),
        };
        let why = refused(store.create_account("a", Licence::Xops).await.unwrap_err());
        assert_eq!(
            why,
            "the database could not be written: its file is read-only"
        );
        assert_eq!(refused(store.ping().await.unwrap_err()), why);
        assert!(
            store.list_accounts().await.unwrap().is_empty(),
            "reads go on"
        );
        // Meanwhile a newer binary migrated the database: the probe must not set it back.
        let other = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        other.pragma_update(None, "user_version", 99).unwrap();
        read_only(false);
        store.ping().await.unwrap();
        let version: i64 = other
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 99);
        store.create_account("a", Licence::Xops).await.unwrap();
    }

    /// What the disk or the file did is told apart from every other failure, in words an
    /// operator can act on.
    #[test]
    fn failures_of_the_disk_say_what_to_mend() {
        use dossier_store::StoreError;
        let of = |code: std::ffi::c_int| {
            StoreError::from(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            ))
        };
        let said = |code| match of(code) {
            StoreError::Unavailable(m) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            said(rusqlite::ffi::SQLITE_FULL),
            "the database could not be written: disk full"
        );
        assert!(said(rusqlite::ffi::SQLITE_IOERR_SHMSIZE).contains("disk full"));
        assert!(said(rusqlite::ffi::SQLITE_IOERR_WRITE).starts_with("the database could not"));
        assert!(said(rusqlite::ffi::SQLITE_READONLY_DBMOVED).contains("read-only"));
        assert!(matches!(
            of(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE),
            StoreError::Database(_)
        ));
    }

    /// A WAL past the limit is started over, so that the next commits reuse its file from the
    /// start instead of growing it; one under the limit is left to grow.
    #[test]
    fn a_wal_past_its_limit_is_started_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = super::open_conn(&path, true).unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
        let wal = dir.path().join("t.db-wal");
        let wal_len = || std::fs::metadata(&wal).unwrap().len();
        let write = |n: usize| {
            for _ in 0..n {
                conn.execute("INSERT INTO t VALUES (zeroblob(4000))", [])
                    .unwrap();
            }
        };
        write(50);
        let first = wal_len();
        assert!(first > 100_000, "the WAL grew: {first} bytes");

        super::restart_wal_if_large(&conn, &wal, first * 10);
        write(50);
        let grown = wal_len();
        assert!(
            grown > first,
            "under the limit the WAL keeps growing: {first} then {grown}"
        );

        super::restart_wal_if_large(&conn, &wal, first);
        write(50);
        assert_eq!(
            wal_len(),
            grown,
            "past the limit the next commits write the WAL from its start"
        );
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 150);
    }

    /// Ingest looks for stale outbreak tiers on every page, for every file the page touched; a
    /// wide outbreak has hundreds of stories. The tier must be compared in the index entry, not
    /// in the row, or each check reads every story of the file from the table.
    #[test]
    fn stale_outbreak_tiers_are_found_from_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let _store = SqliteStore::open(dir.path().join("t.db").to_str().unwrap(), s1()).unwrap();
        let conn = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        let root = |name: &str| -> i64 {
            conn.query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .unwrap()
        };
        let (index_root, tier) = (root("stories_hash"), 3);
        let tier_in_index: i64 = conn
            .query_row(
                "SELECT seqno FROM pragma_index_info('stories_hash') WHERE name = 'outbreak_tier'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tier_in_index, tier);
        let mut st = conn
            .prepare(&format!("EXPLAIN {}", super::refresh::STALE_TIER))
            .unwrap();
        let ops: Vec<(String, i64, i64)> = st
            .query_map(rusqlite::params!["a", "h", 2], |r| {
                Ok((r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let cursor = ops
            .iter()
            .find(|(op, _, p2)| op == "OpenRead" && *p2 == index_root)
            .map(|(_, p1, _)| *p1)
            .expect("the query reads stories_hash");
        assert!(
            ops.iter()
                .any(|(op, p1, p2)| op == "Column" && *p1 == cursor && *p2 == tier),
            "the tier is read from the index entry: {ops:?}"
        );
    }

    #[test]
    fn a_new_database_has_large_pages_and_an_old_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let page_size = |path: &std::path::Path| -> u32 {
            rusqlite::Connection::open(path)
                .unwrap()
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .unwrap()
        };
        let new = dir.path().join("new.db");
        drop(SqliteStore::open(new.to_str().unwrap(), s1()).unwrap());
        assert_eq!(page_size(&new), super::PAGE_SIZE);

        let old = dir.path().join("old.db");
        {
            let c = rusqlite::Connection::open(&old).unwrap();
            c.execute_batch("PRAGMA page_size=16384; PRAGMA journal_mode=WAL; CREATE TABLE t (x);")
                .unwrap();
        }
        drop(SqliteStore::open(old.to_str().unwrap(), s1()).unwrap());
        assert_eq!(page_size(&old), 16384);
    }

    #[test]
    fn new_ids_are_short_distinct_and_plain() {
        let ids: std::collections::HashSet<String> = (0..20_000).map(|_| super::new_id()).collect();
        assert_eq!(
            ids.len(),
            20_000,
            "65 random bits never repeat in 20,000 draws"
        );
        for id in &ids {
            assert_eq!(id.len(), super::ID_LEN, "{id}");
            assert!(
                id.bytes().all(
                    |b| b.is_ascii_digit() || (b.is_ascii_lowercase() && !b"ilou".contains(&b))
                ),
                "{id} is lowercase base32"
            );
        }
        // Every symbol is drawn: a skewed or truncated alphabet would show here.
        let used: std::collections::HashSet<u8> = ids.iter().flat_map(|i| i.bytes()).collect();
        assert_eq!(used.len(), 32);
    }

    fn incident(id: &str, day: i64) -> Incident {
        let at = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap() + chrono::Duration::days(day);
        Incident {
            producer: dossier_sentinelone::producer(),
            external_id: id.into(),
            created_at: at,
            updated_at: at,
            device: Device {
                agent_uuid: Some("agent-1".into()),
                name: Some("host-1".into()),
                ..Device::default()
            },
            file: FileInfo {
                sha1: Some(format!("{:040x}", 7)),
                ..FileInfo::default()
            },
            threat_name: Some("evil.exe".into()),
            classification: None,
            confidence_level: Some("malicious".into()),
            mitigation_status: None,
            analyst_verdict: None,
            confidence: dossier_domain::vocabulary::Confidence::Malicious,
            mitigation: dossier_domain::vocabulary::Mitigation::Unknown,
            producer_verdict: dossier_domain::vocabulary::ProducerVerdict::Undefined,
            severity: None,
            incident_status: None,
            engines: Vec::new(),
            storyline: None,
            initiated_by: None,
            is_fileless: false,
            mitre: Vec::new(),
            mitigation_actions: Vec::new(),
            console_url: None,
            context: dossier_domain::context::Context::default(),
            raw: format!("{{\"id\":\"{id}\"}}"),
        }
    }

    /// Two connectors of one account whose threats share a device and a file.
    async fn two_connectors() -> (tempfile::TempDir, SqliteStore, [IngestPage; 2]) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("t.db").to_str().unwrap(), s1()).unwrap();
        let account = store.create_account("Acme", Licence::Xops).await.unwrap();
        let mut pages = Vec::new();
        for (n, id) in ["a", "b"].into_iter().enumerate() {
            let connector = store
                .create_connector(&NewConnector {
                    account_id: account.id.clone(),
                    kind: "sentinelone".into(),
                    name: format!("s1-{id}"),
                    description: None,
                    tenant_url: "https://example.sentinelone.net".into(),
                    config: "{}".into(),
                    token_enc: vec![1],
                    track_errors: false,
                    write_back: false,
                    response: false,
                    now: Utc::now(),
                })
                .await
                .unwrap();
            pages.push(IngestPage {
                account_id: account.id.clone(),
                connector_id: connector.id,
                incidents: vec![incident(id, i64::try_from(n).unwrap())],
                checkpoint: "{}".into(),
                now: Utc::now(),
                policy: Policy::default(),
                polls: 1,
                generation: connector.generation,
                events: Vec::new(),
                status_detail: None,
                shared_with: Vec::new(),
            });
        }
        (dir, store, pages.try_into().ok().unwrap())
    }

    fn stories(store: &SqliteStore) -> Vec<(String, String)> {
        let conn = store.inner.writer.lock().unwrap();
        let mut st = conn
            .prepare("SELECT external_id, story_id FROM incidents ORDER BY external_id")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// A plan read before another commit of the same account changed its incidents is not
    /// used: the page is correlated again under the lock, and both threats land in one story,
    /// as they do when the pages commit one after the other.
    #[tokio::test]
    async fn a_plan_read_before_a_racing_commit_is_worked_out_again() {
        let (_d1, sequential, [a, b]) = two_connectors().await;
        sequential.commit_page(a).await.unwrap();
        sequential.commit_page(b).await.unwrap();
        let expected = stories(&sequential);
        assert_eq!(expected.len(), 2);
        assert_eq!(
            expected[0].1, expected[1].1,
            "one device and file: one story"
        );

        let (_d2, raced, [mut a, mut b]) = two_connectors().await;
        let inner = &raced.inner;
        // b's plan is read while a is not yet stored; a commits before b takes the lock.
        inner
            .commit_page(&mut b, || {
                inner.commit_page(&mut a, || {}).unwrap();
            })
            .unwrap();
        let got = stories(&raced);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, got[1].1, "the racing commit was seen: {got:?}");
    }

    /// The same race, with the racing commit made by another process's store on the same
    /// database (a second node, or `dossier` run twice): whether a plan is still current is
    /// state in the database, not in the process that read it.
    #[tokio::test]
    async fn a_plan_read_before_another_process_commits_is_worked_out_again() {
        let (dir, raced, [mut a, mut b]) = two_connectors().await;
        let other = SqliteStore::open(dir.path().join("t.db").to_str().unwrap(), s1()).unwrap();
        raced
            .inner
            .commit_page(&mut b, || {
                other.inner.commit_page(&mut a, || {}).unwrap();
            })
            .unwrap();
        let got = stories(&raced);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].1, got[1].1,
            "the other process's commit was seen: {got:?}"
        );
    }
}

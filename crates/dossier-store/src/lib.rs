//! Storage of Dossier. [`Store`] is what the server and the connector workers need; each
//! backend is a crate of its own (`dossier-store-sqlite`, the embedded default), chosen from the
//! `--db` URL at startup. No backend depends on a source: a stored incident keeps what the
//! story rules look it up by, its producer and its raw JSON, and a [`Remap`] given by the
//! binary maps that JSON again with its source's own mapping when an incident is read.

pub mod cursor;
pub mod model;

#[cfg(feature = "conformance")]
pub mod conformance;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use model::*;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The caller may not do this to this record (someone else's comment, say).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A connector worker lost its lease, and its write was refused: the connector was saved
    /// again (its worker is replaced) or deleted since the worker started, or, when nodes share
    /// a database, another node owns it now.
    #[error("lease lost: the connector changed since this worker started")]
    LeaseLost,
    /// The database cannot take the call now: it could not be written (a full disk, a
    /// read-only file) or read (an I/O error). The message says which, in words an operator
    /// can act on; the same call may succeed once that is mended, and nothing of a write that
    /// failed so was kept.
    #[error("{0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
}

#[cfg(feature = "rusqlite")]
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
            rusqlite::Error::SqliteFailure(f, detail) => match unavailable(f) {
                Some(reason) => StoreError::Unavailable(reason.to_owned()),
                None => StoreError::Database(rusqlite::Error::SqliteFailure(f, detail).to_string()),
            },
            other => StoreError::Database(other.to_string()),
        }
    }
}

/// What an SQLite failure that the database's file or disk caused says to an operator; `None`
/// for every other failure (a constraint, a bug, a corrupt file).
#[cfg(feature = "rusqlite")]
fn unavailable(f: rusqlite::ffi::Error) -> Option<&'static str> {
    use rusqlite::ErrorCode;
    Some(match f.code {
        ErrorCode::DiskFull => "the database could not be written: disk full",
        ErrorCode::ReadOnly => "the database could not be written: its file is read-only",
        // SQLite grows the shared-memory index beside the WAL by writing to it; on a full disk
        // that write fails with an I/O error of its own.
        ErrorCode::SystemIoFailure if f.extended_code == rusqlite::ffi::SQLITE_IOERR_SHMSIZE => {
            "the database could not be written: its index file could not grow (is the disk full?)"
        }
        ErrorCode::SystemIoFailure => {
            "the database could not be read or written: an I/O error (is the disk full or failing?)"
        }
        ErrorCode::CannotOpen => {
            "the database could not be written: a file beside it could not be opened (was the directory made read-only?)"
        }
        _ => return None,
    })
}

#[cfg(feature = "postgres")]
impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        use postgres::error::SqlState;
        let Some(db) = e.as_db_error() else {
            // No answer from the server: the connection broke, or was never made.
            let io = std::error::Error::source(&e)
                .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some());
            return if e.is_closed() || io {
                StoreError::Unavailable(format!("the database cannot be reached: {e}"))
            } else if e.to_string() == "query returned an unexpected number of rows" {
                // `query_one` found no row.
                StoreError::NotFound
            } else {
                StoreError::Database(e.to_string())
            };
        };
        if *db.code() == SqlState::T_R_SERIALIZATION_FAILURE
            || *db.code() == SqlState::T_R_DEADLOCK_DETECTED
        {
            return StoreError::Conflict(RETRY.into());
        }
        let code = db.code();
        if *code == SqlState::DISK_FULL || *code == SqlState::OUT_OF_MEMORY {
            StoreError::Unavailable(format!(
                "the database could not be written: {}",
                db.message()
            ))
        } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
            StoreError::Unavailable(
                "the database could not be written: it is read-only (a standby?)".into(),
            )
        } else if *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::TOO_MANY_CONNECTIONS
        {
            StoreError::Unavailable(format!(
                "the database cannot take calls now: {}",
                db.message()
            ))
        } else if *code == SqlState::QUERY_CANCELED {
            StoreError::Unavailable(format!(
                "the database did not answer in time (statement timeout): {}",
                db.message()
            ))
        } else {
            StoreError::Database(format!("{} ({})", db.message(), code.code()))
        }
    }
}

/// What a write that the database could not order against a concurrent one (a serialization
/// failure, a deadlock) fails with: the backend runs it again, and only a write that still
/// fails after its retries reaches the caller, as this conflict.
pub const RETRY: &str =
    "the database could not order this write against a concurrent one; try again";

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Maps an incident's raw JSON, as its producer sent it, back to the incident its source's
/// mapping made of it at ingest: the same mapping, so the same incident (its `raw` left empty).
/// `None` when the JSON no longer maps.
pub type Remap = std::sync::Arc<
    dyn Fn(dossier_domain::Producer, &str) -> Option<dossier_domain::Incident> + Send + Sync,
>;

/// Everything Dossier keeps. Every read and write of account data names the account, so that
/// no query can cross accounts by mistake.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // Accounts and keys.
    async fn create_account(
        &self,
        name: &str,
        licence: dossier_domain::access::Licence,
    ) -> Result<Account>;
    async fn get_account(&self, id: &str) -> Result<Account>;
    async fn list_accounts(&self) -> Result<Vec<Account>>;
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<()>;
    async fn find_api_key(&self, key_hash: &str) -> Result<ApiKeyRecord>;
    /// The API keys of one account, or of every account (operator keys included), oldest first.
    async fn list_api_keys(&self, account_id: Option<&str>) -> Result<Vec<ApiKeyRecord>>;
    /// Deletes an API key: it stops authenticating at once. `NotFound` for an unknown id.
    async fn delete_api_key(&self, id: &str) -> Result<()>;

    // Connectors.
    async fn create_connector(&self, c: &NewConnector) -> Result<ConnectorRecord>;
    async fn list_connectors(&self, account_id: Option<&str>) -> Result<Vec<ConnectorRecord>>;
    async fn get_connector(&self, account_id: Option<&str>, id: &str) -> Result<ConnectorRecord>;
    async fn update_connector(
        &self,
        account_id: Option<&str>,
        id: &str,
        u: &ConnectorUpdate,
    ) -> Result<ConnectorRecord>;
    async fn delete_connector(&self, account_id: Option<&str>, id: &str) -> Result<()>;
    async fn set_connector_health(&self, id: &str, h: &HealthUpdate) -> Result<()>;

    /// Commits what one page of threats taught: incidents, story changes, events and the new
    /// checkpoint, in one transaction.
    async fn commit_page(&self, page: IngestPage) -> Result<IngestOutcome>;

    // Stories.
    async fn list_stories(&self, q: &StoryQuery) -> Result<StoryPage>;
    async fn get_story(&self, account_id: Option<&str>, id: &str) -> Result<StoryDetail>;
    /// Returns a page of at most `limit` of a story's incidents in story order (created, then
    /// connector, then the vendor's id), after `cursor` (a page's `next_cursor`; none starts
    /// from the first). Not found when the story is not in `account_id`; invalid when the
    /// cursor is not one of this story's.
    async fn story_incidents(
        &self,
        account_id: Option<&str>,
        story_id: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<IncidentPage>;
    /// Returns one incident of a story by the producer's id for it (the first in story order
    /// when two connectors hold the same id). Not found when the story is not in `account_id`
    /// or holds no such incident.
    async fn story_incident(
        &self,
        account_id: Option<&str>,
        story_id: &str,
        incident_id: &str,
    ) -> Result<IncidentView>;
    async fn update_story(
        &self,
        account_id: Option<&str>,
        id: &str,
        u: &StoryUpdate,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<StoryDetail>;
    async fn add_comment(
        &self,
        account_id: Option<&str>,
        story_id: &str,
        author: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<Comment>;
    /// Applies one change, and a comment if there is one, to each story: each story all or
    /// nothing on its own. Says, per id in the order given, what became of it.
    async fn update_stories(
        &self,
        account_id: Option<&str>,
        ids: &[String],
        u: &StoryUpdate,
        comment: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, BulkOutcome)>>;
    /// Records something that happened to a story (in its timeline and the audit log).
    async fn record_on_story(
        &self,
        story_id: &str,
        kind: &str,
        actor: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Counts the stories a list request matches (its cursor aside), stopping at `cap`: a list
    /// says "10,000+" rather than count a million rows on every page.
    async fn count_stories(&self, q: &StoryQuery, cap: u64) -> Result<u64>;
    /// Counts the stories a list request matches per value of a field (the list's group-by).
    async fn group_stories(
        &self,
        q: &StoryQuery,
        by: StoryGroup,
        limit: u32,
    ) -> Result<Vec<GroupCount>>;
    /// Deletes a comment; only its author may.
    async fn delete_comment(
        &self,
        account_id: Option<&str>,
        story_id: &str,
        comment_id: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    // Web users and sessions.
    async fn create_user(&self, u: &UserRecord) -> Result<UserRecord>;
    /// Finds a user by name (case-insensitive).
    async fn find_user(&self, username: &str) -> Result<UserRecord>;
    async fn list_users(&self, account_id: Option<&str>) -> Result<Vec<UserRecord>>;
    async fn delete_user(&self, account_id: Option<&str>, id: &str) -> Result<()>;
    /// One of a user's own settings (the story list's columns, say), if they chose it.
    async fn user_setting(&self, user_id: &str, name: &str) -> Result<Option<String>>;
    /// Keeps a user's setting; `None` forgets it. An unknown user is `NotFound`.
    async fn set_user_setting(&self, user_id: &str, name: &str, value: Option<&str>) -> Result<()>;
    async fn create_session(&self, s: &SessionRecord) -> Result<()>;
    /// A live (unexpired) session and its user.
    async fn find_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(SessionRecord, UserRecord)>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;

    // The audit log.
    /// The lines a query matches, newest first.
    async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>>;
    /// Writes an audit line that does not belong to a story (users, connectors).
    async fn audit(
        &self,
        account_id: &str,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    // Events.
    /// Lists events newest first, or in commit order from a position ([`EventOrder::Asc`]).
    /// In commit order a position is opaque to callers; an event that commits after a page
    /// was read is never placed before that page's `next_cursor`.
    async fn list_events(&self, q: &EventQuery) -> Result<EventPage>;
    async fn insert_event(&self, e: &NewEvent) -> Result<()>;
    /// A signal told after this store, in this process, commits events. Its value only says
    /// "something changed"; a waiter reads the events again through [`Store::list_events`].
    /// Commits by another process (another node) do not reach it, so waiters also read again
    /// on a timer.
    fn event_commits(&self) -> tokio::sync::watch::Receiver<u64>;

    /// Returns whether the database answers and, once a write has failed because the
    /// database could not be written ([`StoreError::Unavailable`]), whether it takes writes
    /// again.
    async fn ping(&self) -> Result<()>;

    // Nodes sharing one database.
    /// One round of this node's leases: says the node is alive for `ttl`, renews the leases
    /// it holds, gives up those past its fair share of the connectors (their count over the
    /// live nodes') and takes free or expired ones up to it. Returns the connectors this node
    /// may run until its next round (taking one bumps its generation, the fence its pages are
    /// committed under), or `None` from a store that one process has alone, where every
    /// connector is this node's. Rounds must come well within `ttl`.
    async fn lease_connectors(
        &self,
        node: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<Vec<String>>> {
        let _ = (node, ttl);
        Ok(None)
    }

    /// A value sealed with the secret key of the nodes that share this database, kept by the
    /// first of them (`None` until then, and always from a store that one process has alone):
    /// a node started with another key finds it cannot open it, and stops before it writes a
    /// connector token no other node can read.
    async fn key_check(&self) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }

    /// Keeps `sealed` as the key check unless one is kept already; returns the one kept.
    async fn set_key_check(&self, sealed: &[u8]) -> Result<Vec<u8>> {
        Ok(sealed.to_vec())
    }

    /// Whether sign-in failures are counted in the database, for every node together
    /// ([`Store::sign_in_failures`]); otherwise the server counts them in memory.
    fn shares_sign_in_failures(&self) -> bool {
        false
    }

    /// How many failed sign-ins each key (an opaque digest of a user name, an address or
    /// both) has had since `since`, in the order given.
    async fn sign_in_failures(&self, keys: &[String], since: DateTime<Utc>) -> Result<Vec<u64>> {
        let _ = since;
        Ok(vec![0; keys.len()])
    }

    /// Counts one failed sign-in under each key, at `at`; failures older than `forget_before`
    /// may go.
    async fn add_sign_in_failure(
        &self,
        keys: &[String],
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<()> {
        let _ = (keys, at, forget_before);
        Ok(())
    }

    /// Forgets a key's failures (a sign-in that succeeded).
    async fn clear_sign_in_failures(&self, key: &str) -> Result<()> {
        let _ = key;
        Ok(())
    }

    /// Writes run again, since the store opened, because the database could not order them
    /// against a concurrent one (serialization failures, deadlocks); 0 where that cannot
    /// happen (one writer).
    fn write_retries(&self) -> u64 {
        0
    }

    /// Gives up this node's leases and says it is gone (a node stopping): the others take its
    /// connectors at their next round rather than wait for the leases to expire.
    async fn release_leases(&self, node: &str) -> Result<()> {
        let _ = node;
        Ok(())
    }
}

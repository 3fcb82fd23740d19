//! Storage of Dossier. [`Store`] is what the server and the connector workers need; the
//! embedded SQLite implementation is the default, chosen from the `--db` URL at startup.

pub mod model;
pub mod sqlite;

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
    /// A connector lost its lease: another node owns it now, and this write was refused.
    #[error("lease lost")]
    LeaseLost,
    #[error("database error: {0}")]
    Database(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
            other => StoreError::Database(other.to_string()),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

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
    /// Records something that happened to a story (in its timeline and the audit log).
    async fn record_on_story(
        &self,
        story_id: &str,
        kind: &str,
        actor: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    // Events.
    async fn list_events(&self, q: &EventQuery) -> Result<EventPage>;
    async fn insert_event(&self, e: &NewEvent) -> Result<()>;

    /// Returns whether the database answers.
    async fn ping(&self) -> Result<()>;
}

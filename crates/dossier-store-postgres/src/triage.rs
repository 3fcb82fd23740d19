//! Triage (not yet ported).
use chrono::{DateTime, Utc};
use dossier_store::{BulkOutcome, Comment, Result, StoreError, StoryUpdate};
use postgres::Client;
fn np<T>() -> Result<T> {
    Err(StoreError::Database("not ported".into()))
}
pub(crate) fn update(
    _c: &mut Client,
    _a: Option<&str>,
    _id: &str,
    _u: &StoryUpdate,
    _actor: &str,
    _now: DateTime<Utc>,
) -> Result<()> {
    np()
}
pub(crate) fn update_many(
    _c: &mut Client,
    _a: Option<&str>,
    _ids: &[String],
    _u: &StoryUpdate,
    _comment: Option<&str>,
    _actor: &str,
    _now: DateTime<Utc>,
) -> Result<Vec<(String, BulkOutcome)>> {
    np()
}
pub(crate) fn add_comment(
    _c: &mut Client,
    _a: Option<&str>,
    _id: &str,
    _author: &str,
    _text: &str,
    _now: DateTime<Utc>,
) -> Result<Comment> {
    np()
}
pub(crate) fn record_on_story(
    _c: &mut Client,
    _id: &str,
    _now: DateTime<Utc>,
    _actor: &str,
    _kind: &str,
    _text: &str,
) -> Result<()> {
    np()
}
pub(crate) fn delete_comment(
    _c: &mut Client,
    _a: Option<&str>,
    _s: &str,
    _cid: &str,
    _actor: &str,
    _now: DateTime<Utc>,
) -> Result<()> {
    np()
}

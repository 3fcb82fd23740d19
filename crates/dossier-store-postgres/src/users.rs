//! Users, sessions and the audit log (not yet ported).
use chrono::{DateTime, Utc};
use dossier_store::{AuditEntry, AuditQuery, Result, SessionRecord, StoreError, UserRecord};
use postgres::Client;
fn np<T>() -> Result<T> {
    Err(StoreError::Database("not ported".into()))
}
pub(crate) fn create_user(_c: &mut Client, _u: &UserRecord) -> Result<UserRecord> {
    np()
}
pub(crate) fn find_user(_c: &mut Client, _n: &str) -> Result<UserRecord> {
    np()
}
pub(crate) fn list_users(_c: &mut Client, _a: Option<&str>) -> Result<Vec<UserRecord>> {
    np()
}
pub(crate) fn setting(_c: &mut Client, _u: &str, _n: &str) -> Result<Option<String>> {
    np()
}
pub(crate) fn set_setting(_c: &mut Client, _u: &str, _n: &str, _v: Option<&str>) -> Result<()> {
    np()
}
pub(crate) fn delete_user(_c: &mut Client, _a: Option<&str>, _id: &str) -> Result<()> {
    np()
}
pub(crate) fn create_session(_c: &mut Client, _s: &SessionRecord) -> Result<()> {
    np()
}
pub(crate) fn find_session(
    _c: &mut Client,
    _h: &str,
    _now: DateTime<Utc>,
) -> Result<(SessionRecord, UserRecord)> {
    np()
}
pub(crate) fn delete_session(_c: &mut Client, _h: &str) -> Result<()> {
    np()
}
pub(crate) fn list_audit(_c: &mut Client, _q: &AuditQuery) -> Result<Vec<AuditEntry>> {
    np()
}
pub(crate) fn audit(
    _c: &mut Client,
    _a: &str,
    _now: DateTime<Utc>,
    _actor: &str,
    _action: &str,
    _target: &str,
    _detail: &str,
) -> Result<()> {
    np()
}

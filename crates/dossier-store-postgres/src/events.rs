//! Events (not yet ported).
use dossier_store::{EventPage, EventQuery, NewEvent, Result, StoreError};
use postgres::Client;
pub(crate) fn newest(_c: &mut Client) -> Result<u64> {
    Ok(0)
}
pub(crate) fn list(_c: &mut Client, _q: &EventQuery) -> Result<EventPage> {
    Err(StoreError::Database("not ported".into()))
}
pub(crate) fn insert(_c: &mut Client, _e: &NewEvent) -> Result<()> {
    Err(StoreError::Database("not ported".into()))
}

//! Ingest (not yet ported).
use dossier_store::{IngestOutcome, IngestPage, Remap, Result, StoreError};
use postgres::Client;
pub(crate) struct Prepared;
pub(crate) fn prepare(_page: &mut IngestPage) -> Result<Vec<Prepared>> {
    Ok(Vec::new())
}
pub(crate) fn commit(
    _c: &mut Client,
    _remap: &Remap,
    _page: &IngestPage,
    _prepared: &mut Vec<Prepared>,
) -> Result<IngestOutcome> {
    Err(StoreError::Database("not ported".into()))
}

//! Story reads (not yet ported).
use dossier_store::{
    GroupCount, IncidentPage, IncidentView, Remap, Result, StoreError, StoryDetail, StoryGroup,
    StoryPage, StoryQuery,
};
use postgres::Client;
fn np<T>() -> Result<T> {
    Err(StoreError::Database("not ported".into()))
}
pub(crate) fn list(_c: &mut Client, _q: &StoryQuery) -> Result<StoryPage> {
    np()
}
pub(crate) fn get(_c: &mut Client, _r: &Remap, _a: Option<&str>, _id: &str) -> Result<StoryDetail> {
    np()
}
pub(crate) fn incidents(
    _c: &mut Client,
    _r: &Remap,
    _a: Option<&str>,
    _id: &str,
    _cur: Option<&str>,
    _l: u32,
) -> Result<IncidentPage> {
    np()
}
pub(crate) fn incident(
    _c: &mut Client,
    _r: &Remap,
    _a: Option<&str>,
    _id: &str,
    _i: &str,
) -> Result<IncidentView> {
    np()
}
pub(crate) fn count(_c: &mut Client, _q: &StoryQuery, _cap: u64) -> Result<u64> {
    np()
}
pub(crate) fn group_counts(
    _c: &mut Client,
    _q: &StoryQuery,
    _by: StoryGroup,
    _l: u32,
) -> Result<Vec<GroupCount>> {
    np()
}

//! Accounts, API keys and connectors (not yet ported).
use chrono::{DateTime, Utc};
use dossier_domain::access::Licence;
use postgres::Client;
use dossier_store::{Account, ApiKeyRecord, ConnectorRecord, ConnectorUpdate, HealthUpdate, NewConnector, Result, StoreError};
fn np<T>() -> Result<T> { Err(StoreError::Database("not ported".into())) }
pub(crate) fn create_account(_c: &mut Client, _n: &str, _l: Licence, _now: DateTime<Utc>) -> Result<Account> { np() }
pub(crate) fn get_account(_c: &mut Client, _id: &str) -> Result<Account> { np() }
pub(crate) fn list_accounts(_c: &mut Client) -> Result<Vec<Account>> { np() }
pub(crate) fn insert_api_key(_c: &mut Client, _k: &ApiKeyRecord) -> Result<()> { np() }
pub(crate) fn find_api_key(_c: &mut Client, _h: &str) -> Result<ApiKeyRecord> { np() }
pub(crate) fn list_api_keys(_c: &mut Client, _a: Option<&str>) -> Result<Vec<ApiKeyRecord>> { np() }
pub(crate) fn delete_api_key(_c: &mut Client, _id: &str) -> Result<()> { np() }
pub(crate) fn create_connector(_c: &mut Client, _n: &NewConnector) -> Result<ConnectorRecord> { np() }
pub(crate) fn list_connectors(_c: &mut Client, _a: Option<&str>) -> Result<Vec<ConnectorRecord>> { np() }
pub(crate) fn get_connector(_c: &mut Client, _a: Option<&str>, _id: &str) -> Result<ConnectorRecord> { np() }
pub(crate) fn update_connector(_c: &mut Client, _a: Option<&str>, _id: &str, _u: &ConnectorUpdate) -> Result<ConnectorRecord> { np() }
pub(crate) fn delete_connector(_c: &mut Client, _a: Option<&str>, _id: &str) -> Result<()> { np() }
pub(crate) fn set_connector_health(_c: &mut Client, _id: &str, _h: &HealthUpdate) -> Result<()> { np() }

//! Connectors of one account that reach the same tenant (the tenant added twice, or two
//! tokens whose scopes overlap): each record is kept once, by the connector that read it first
//! (the worker passes the others to every commit, `IngestPage::shared_with`), and the
//! Connectors page says which connectors overlap. Which tenant a connector reaches is its
//! source's rule ([`dossier_source::Source::tenant_key`]).

use dossier_source::{Config, Sources};
use dossier_store::ConnectorRecord;

/// The tenant a connector reaches, as its kind names tenants; `None` when it cannot tell.
fn tenant(sources: &Sources, c: &ConnectorRecord) -> Option<(String, String)> {
    let source = sources.by_kind(&c.kind)?;
    let config: Config = serde_json::from_str(&c.config).unwrap_or_default();
    let key = source.tenant_key(&c.tenant_url, &config)?;
    Some((c.kind.clone(), key))
}

/// The connectors among `all` (one account's) other than `rec` that reach its tenant.
#[must_use]
pub fn overlapping<'a>(
    sources: &Sources,
    all: &'a [ConnectorRecord],
    rec: &ConnectorRecord,
) -> Vec<&'a ConnectorRecord> {
    let Some(mine) = tenant(sources, rec) else {
        return Vec::new();
    };
    all.iter()
        .filter(|c| c.id != rec.id && c.account_id == rec.account_id)
        .filter(|c| tenant(sources, c).as_ref() == Some(&mine))
        .collect()
}

//! A story incident's own notes and timeline in its producer's console, read on demand
//! ([`dossier_source::Connection::vendor_notes`]) and kept a while, for the story page and
//! `GET /api/v1/stories/{id}/incidents/{incident_id}/vendor`.
//!
//! Who may: whoever may read the story. The tenant is asked at most once per
//! [`CACHE_FOR`] for one record: an answer (notes, or "the tenant no longer holds it") is kept
//! that long, a failure is not kept, so asking again tries again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dossier_source::VendorNotes;

use crate::api::stories::readable_scope;
use crate::auth::{licensed_account, Principal};
use crate::error::{ApiError, ApiResult};
use crate::worker::connect;
use crate::AppState;

/// How long a tenant's answer is kept.
pub const CACHE_FOR: Duration = Duration::from_secs(300);

/// The longest a read waits for the tenant, retries included.
pub const READ_WITHIN: Duration = Duration::from_secs(20);

/// The most records whose answers are kept; the oldest answer makes room.
pub const CACHE_ENTRIES: usize = 1000;

/// What was read of one record.
#[derive(Debug, Clone)]
pub struct Read {
    pub notes: VendorNotes,
    /// When the tenant was asked.
    pub fetched_at: DateTime<Utc>,
    /// The producer's name, for the page: `SentinelOne`.
    pub vendor: &'static str,
    /// What the producer calls a record: `threat`.
    pub record: &'static str,
}

/// Answers kept, by (connector, record).
#[derive(Default)]
pub struct Cache {
    entries: Mutex<HashMap<(String, String), Kept>>,
}

#[derive(Clone)]
struct Kept {
    at: Instant,
    /// `None`: the tenant no longer holds the record.
    answer: Option<Arc<Read>>,
}

impl Cache {
    fn get(&self, key: &(String, String)) -> Option<Kept> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|k| k.at.elapsed() < CACHE_FOR)
            .cloned()
    }

    fn put(&self, key: (String, String), kept: Kept) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CACHE_ENTRIES && !entries.contains_key(&key) {
            entries.retain(|_, k| k.at.elapsed() < CACHE_FOR);
            if entries.len() >= CACHE_ENTRIES {
                if let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, k)| k.at)
                    .map(|(k, _)| k.clone())
                {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(key, kept);
    }
}

/// Reads an incident's notes and timeline in its producer's console, from the cache when it
/// was read in the last [`CACHE_FOR`].
///
/// # Errors
/// Not found (no such story in the caller's accounts, no such incident in it, a producer whose
/// notes Dossier does not read, a record the tenant no longer holds), a conflict when the
/// incident's connector was deleted, and a bad gateway when the tenant cannot be read.
pub async fn read(
    state: &AppState,
    p: &Principal,
    story_id: &str,
    incident_id: &str,
) -> ApiResult<Arc<Read>> {
    let scope = readable_scope(state, p, None).await?;
    let incident = state
        .store
        .story_incident(scope.as_deref(), story_id, incident_id)
        .await
        .map_err(|e| ApiError::from_store(e, "incident of this story"))?;
    let rec = state
        .store
        .get_connector(None, &incident.connector_id)
        .await
        .map_err(|e| match e {
            dossier_store::StoreError::NotFound => ApiError::Conflict(
                "the incident's connector was deleted: its tenant can no longer be read".into(),
            ),
            other => ApiError::from_store(other, "connector"),
        })?;
    if scope.is_none() {
        // An operator reading across accounts: the story's own account must be licensed.
        licensed_account(state, &rec.account_id).await?;
    }
    let source = state
        .sources
        .of_kind(&rec.kind)
        .map_err(|e| ApiError::Conflict(format!("the incident's connector: {e}")))?;
    let vendor = source.labels().vendor;
    if !source.reads_vendor_notes() {
        return Err(ApiError::Missing(format!(
            "{vendor}'s own notes and timeline are not read by Dossier; open the incident in the console"
        )));
    }
    let key = (rec.id.clone(), incident.id.clone());
    let kept = if let Some(kept) = state.vendor_cache.get(&key) {
        kept
    } else {
        let kept = ask(state, source.as_ref(), &rec, &incident.id).await?;
        state.vendor_cache.put(key, kept.clone());
        kept
    };
    kept.answer.ok_or_else(|| {
        ApiError::Missing(format!(
            "{vendor} no longer holds this {} (it answered 404): it was deleted in the console",
            source.labels().record_name
        ))
    })
}

/// Asks the tenant, within a deadline.
async fn ask(
    state: &AppState,
    source: &dyn dossier_source::Source,
    rec: &dossier_store::ConnectorRecord,
    record_id: &str,
) -> ApiResult<Kept> {
    let labels = source.labels();
    let vendor = labels.vendor;
    let conn = connect(state, source, rec, None)
        .map_err(|reason| ApiError::BadGateway(format!("{vendor} cannot be reached: {reason}")))?;
    // Someone waits for the page: the tenant's own timeouts and retries are not waited out.
    let deadline =
        (state.config.request_timeout.saturating_mul(2) + state.config.retry_cap).min(READ_WITHIN);
    let answer = tokio::time::timeout(deadline, conn.vendor_notes(record_id))
        .await
        .map_err(|_| {
            ApiError::BadGateway(format!(
                "{vendor} did not answer within {} s",
                deadline.as_secs()
            ))
        })?
        .map_err(|f| ApiError::BadGateway(format!("{vendor} could not be read: {}", f.reason)))?;
    Ok(Kept {
        at: Instant::now(),
        answer: answer.map(|notes| {
            Arc::new(Read {
                notes,
                fetched_at: Utc::now(),
                vendor,
                record: labels.record_name,
            })
        }),
    })
}

//! Write-back, opt-in per connector: when an analyst closes a story with a verdict, the verdict
//! goes to the story's records in the producer's console, in the producer's own terms (its
//! source's [`dossier_source::Connection::write_back`]). It runs after the analyst's change is
//! saved, and its outcome, good or bad, is recorded on the story.

use std::collections::BTreeMap;

use chrono::Utc;
use dossier_domain::story::Verdict;
use dossier_store::StoryDetail;

use crate::metrics::Metrics;
use crate::worker::connect;
use crate::AppState;

const ACTOR: &str = "dossier";

/// Sends the verdict of a closed story to the tenants of its incidents, in the background.
pub fn spawn(state: AppState, story: StoryDetail, verdict: Verdict) {
    tokio::spawn(async move {
        let mut by_connector: BTreeMap<String, Vec<String>> = BTreeMap::new();
        // Every incident of the story, not only the first page its detail carries.
        let mut add = |incidents: &[dossier_store::IncidentView]| {
            for i in incidents {
                by_connector
                    .entry(i.connector_id.clone())
                    .or_default()
                    .push(i.id.clone());
            }
        };
        add(&story.incidents);
        let mut cursor = story.incidents_next_cursor.clone();
        while let Some(c) = cursor {
            match state
                .store
                .story_incidents(
                    Some(&story.story.account_id),
                    &story.story.id,
                    Some(&c),
                    1000,
                )
                .await
            {
                Ok(page) => {
                    add(&page.items);
                    cursor = page.next_cursor;
                }
                Err(e) => {
                    tracing::warn!(story = %story.story.id, error = %e, "the incidents of a closed story could not all be read for write-back");
                    cursor = None;
                }
            }
        }
        for (connector_id, ids) in by_connector {
            let Ok(rec) = state
                .store
                .get_connector(Some(&story.story.account_id), &connector_id)
                .await
            else {
                continue; // deleted since: nothing to write to
            };
            if !rec.write_back {
                state
                    .metrics
                    .write_backs
                    .get_or_create(&Metrics::write_back("off"))
                    .inc();
                continue;
            }
            let source = state.sources.of_kind(&rec.kind);
            let (vendor, record) = source.as_ref().map_or(("the producer", "record"), |s| {
                (s.labels().vendor, s.labels().record_name)
            });
            let outcome = match source.and_then(|s| connect(&state, s.as_ref(), &rec, None)) {
                Err(reason) => Err(reason),
                Ok(conn) => conn.write_back(&ids, verdict).await.map_err(|f| f.reason),
            };
            let outcome_label = if outcome.is_ok() { "sent" } else { "failed" };
            state
                .metrics
                .write_backs
                .get_or_create(&Metrics::write_back(outcome_label))
                .inc();
            let (kind, text) = match outcome {
                Ok(sent) => (
                    "write_back",
                    format!(
                        "{sent} sent to {vendor} ({}) for {} {record}(s)",
                        rec.name,
                        ids.len()
                    ),
                ),
                Err(reason) => {
                    tracing::warn!(story_id = %story.story.id, connector_id = %rec.id, %reason, "write-back failed");
                    (
                        "write_back_failed",
                        format!(
                            "could not update {vendor} ({}): {reason}; the story keeps its verdict",
                            rec.name
                        ),
                    )
                }
            };
            if let Err(e) = state
                .store
                .record_on_story(&story.story.id, kind, ACTOR, &text, Utc::now())
                .await
            {
                tracing::error!(story_id = %story.story.id, error = %e, "cannot record write-back outcome");
            }
        }
    });
}

//! Write-back, opt-in per connector: when an analyst closes a story with a verdict, the verdict
//! and the resolved status go to the story's SentinelOne threats. It runs after the analyst's
//! change is saved, and its outcome, good or bad, is recorded on the story.

use std::collections::BTreeMap;

use chrono::Utc;
use dossier_domain::story::Verdict;
use dossier_store::StoryDetail;

use crate::metrics::Metrics;
use crate::worker::build_client;
use crate::AppState;

const ACTOR: &str = "dossier";

/// SentinelOne's analyst verdict for Dossier's (SentinelOne has `true_positive`,
/// `false_positive`, `suspicious` and `undefined`; an informational story is not a threat).
#[must_use]
pub fn s1_verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Malicious => "true_positive",
        Verdict::Suspicious => "suspicious",
        Verdict::Benign | Verdict::Informational => "false_positive",
    }
}

/// Sends the verdict of a closed story to the tenants of its incidents, in the background.
pub fn spawn(state: AppState, story: StoryDetail, verdict: Verdict) {
    tokio::spawn(async move {
        let mut by_connector: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for i in &story.incidents {
            by_connector
                .entry(i.connector_id.clone())
                .or_default()
                .push(i.id.clone());
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
            let outcome = match build_client(&state, &rec, None) {
                Err(reason) => Err(reason),
                Ok(client) => {
                    let verdict_sent = client.set_analyst_verdict(&ids, s1_verdict(verdict)).await;
                    match verdict_sent {
                        Err(e) => Err(e.human_reason()),
                        Ok(_) => client
                            .set_incident_status(&ids, "resolved")
                            .await
                            .map_err(|e| e.human_reason()),
                    }
                }
            };
            let outcome_label = if outcome.is_ok() { "sent" } else { "failed" };
            state
                .metrics
                .write_backs
                .get_or_create(&Metrics::write_back(outcome_label))
                .inc();
            let (kind, text) = match outcome {
                Ok(_) => (
                    "write_back",
                    format!(
                        "verdict {} and status resolved sent to SentinelOne ({}) for {} threat(s)",
                        s1_verdict(verdict),
                        rec.name,
                        ids.len()
                    ),
                ),
                Err(reason) => {
                    tracing::warn!(story_id = %story.story.id, connector_id = %rec.id, %reason, "write-back failed");
                    (
                        "write_back_failed",
                        format!("could not update SentinelOne ({}): {reason}; the story keeps its verdict", rec.name),
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

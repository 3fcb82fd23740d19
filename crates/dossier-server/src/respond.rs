//! Response actions from a story, opt-in per connector: kill, quarantine, remediate, roll back,
//! disconnect or reconnect the device, blocklist the file's hash, mark the threats true or false
//! positive, in the producer's console (its source's [`dossier_source::Connection::respond`]).
//!
//! Who may: the Stories editor role on an `xops` account (as for any change to a story), and
//! only through connectors whose `response` switch is on. The tenant's answer for each threat
//! is returned, written on the story's timeline and in the audit log with the actor. Actions
//! are what the console does again harmlessly: repeating one changes nothing more.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::Utc;
use dossier_source::{Outcome, ResponseAction, ResponseScope, Target};
use dossier_store::{ConnectorRecord, IncidentView, StoryDetail};

use crate::api::stories::story_to_act_on;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::worker::connect;
use crate::AppState;

/// The most threats one action is sent for: each is one call to the tenant.
pub const MAX_TARGETS: usize = 500;

/// What an action on a story would touch, before it is taken.
pub(crate) struct Plan {
    pub story: StoryDetail,
    /// The story's threats by connector, in the story's order.
    pub groups: Vec<(ConnectorRecord, Vec<Target>)>,
    /// Threats of connectors that do not allow response actions (or are gone).
    pub refused: Vec<(String, String)>,
    pub threats: usize,
    pub devices: usize,
}

impl Plan {
    /// What the action will touch, in words: `3 threats on 1 device`.
    pub fn touches(&self) -> String {
        let (t, d) = (self.threats, self.devices);
        format!(
            "{t} threat{} on {d} device{}",
            if t == 1 { "" } else { "s" },
            if d == 1 { "" } else { "s" }
        )
    }
}

/// One threat's answer.
pub(crate) struct Answer {
    pub incident_id: String,
    pub ok: bool,
    pub detail: String,
}

/// Checks that `p` may act on the story and that a connector of it allows response actions,
/// and reads what an action would touch.
///
/// # Errors
/// Forbidden (role, licence), not found, or a conflict naming the connector whose `response`
/// switch is off.
pub(crate) async fn plan(state: &AppState, p: &Principal, id: &str) -> ApiResult<Plan> {
    let story = story_to_act_on(state, p, id).await?;
    let incidents = all_incidents(state, &story).await?;
    let mut by_connector: BTreeMap<String, Vec<Target>> = BTreeMap::new();
    let mut devices = BTreeSet::new();
    for i in &incidents {
        let device = i.normalised.as_ref().map(|n| &n.device);
        if let Some(key) = device.and_then(|d| d.agent_uuid.clone().or(d.agent_id.clone())) {
            devices.insert(key);
        }
        by_connector
            .entry(i.connector_id.clone())
            .or_default()
            .push(Target {
                record_id: i.id.clone(),
                device_id: device.and_then(|d| d.agent_id.clone()),
            });
    }
    let mut groups = Vec::new();
    let mut refused = Vec::new();
    let mut off = Vec::new();
    for (connector_id, targets) in by_connector {
        match state
            .store
            .get_connector(Some(&story.story.account_id), &connector_id)
            .await
        {
            Ok(rec) if rec.response => groups.push((rec, targets)),
            Ok(rec) => {
                let why = format!(
                    "the connector {} does not allow response actions (its \"response\" switch is off)",
                    rec.name
                );
                off.push(rec.name.clone());
                refused.extend(targets.into_iter().map(|t| (t.record_id, why.clone())));
            }
            Err(dossier_store::StoreError::NotFound) => refused.extend(
                targets
                    .into_iter()
                    .map(|t| (t.record_id, "its connector was deleted".to_owned())),
            ),
            Err(e) => return Err(ApiError::from_store(e, "connector")),
        }
    }
    if groups.is_empty() {
        let which = if off.is_empty() {
            "the story's connectors are gone".to_owned()
        } else {
            format!(
                "response actions are off for the connector {}: an editor turns on its \"response\" switch first",
                off.join(", ")
            )
        };
        return Err(ApiError::Conflict(which));
    }
    let threats = incidents.len();
    if threats > MAX_TARGETS {
        return Err(ApiError::Conflict(format!(
            "the story holds more than {MAX_TARGETS} threats, the most an action is sent for: act from the console"
        )));
    }
    Ok(Plan {
        story,
        groups,
        refused,
        threats,
        devices: devices.len(),
    })
}

/// Every incident of the story, not only the first page its detail carries.
async fn all_incidents(state: &AppState, story: &StoryDetail) -> ApiResult<Vec<IncidentView>> {
    let mut all = story.incidents.clone();
    let mut cursor = story.incidents_next_cursor.clone();
    while let Some(c) = cursor {
        let page = state
            .store
            .story_incidents(
                Some(&story.story.account_id),
                &story.story.id,
                Some(&c),
                1000,
            )
            .await
            .map_err(|e| ApiError::from_store(e, "story"))?;
        all.extend(page.items);
        cursor = page.next_cursor;
        if all.len() > MAX_TARGETS {
            break;
        }
    }
    Ok(all)
}

/// How long one connector's share of an action may take, its retries included.
fn deadline(state: &AppState) -> Duration {
    state.config.request_timeout.saturating_mul(3) + state.config.retry_cap
}

/// Takes the action and records it; returns each threat's answer, in the story's order.
///
/// # Errors
/// Only when the story's record cannot be written; a tenant's refusal is an answer.
pub(crate) async fn perform(
    state: &AppState,
    p: &Principal,
    plan: Plan,
    action: ResponseAction,
    scope: ResponseScope,
) -> ApiResult<Vec<Answer>> {
    let story = &plan.story.story;
    let mut answers = Vec::with_capacity(plan.threats);
    for (rec, targets) in &plan.groups {
        let source = state.sources.of_kind(&rec.kind);
        let vendor = source
            .as_ref()
            .map_or("the producer", |s| s.labels().vendor);
        let outcomes: Vec<Outcome> =
            match source.and_then(|s| connect(state, s.as_ref(), rec, None)) {
                Err(reason) => failed(targets, &format!("cannot reach the tenant: {reason}")),
                Ok(conn) => in_time(state, conn.as_ref(), action, scope, targets).await,
            };
        let done = outcomes.iter().filter(|o| o.ok).count();
        let first_failure = outcomes.iter().find(|o| !o.ok).map(|o| o.detail.clone());
        let scope_words = if action == ResponseAction::Blocklist {
            format!(" at {} scope", scope.as_str())
        } else {
            String::new()
        };
        let mut text = format!(
            "{}{scope_words}: {vendor} ({}) acted on {done} of {} threat(s)",
            action.as_str(),
            rec.name,
            targets.len()
        );
        if let Some(why) = &first_failure {
            text.push_str("; failed: ");
            text.push_str(why);
        }
        let kind = if first_failure.is_none() {
            "response"
        } else {
            "response_failed"
        };
        tracing::info!(story_id = %story.id, connector_id = %rec.id, action = action.as_str(), done, of = targets.len(), "response action");
        // The story's timeline, and the audit log with it (one write records both).
        if let Err(e) = state
            .store
            .record_on_story(&story.id, kind, &p.actor, &text, Utc::now())
            .await
        {
            tracing::error!(story_id = %story.id, error = %e, "cannot record a response action on its story");
        }
        answers.extend(outcomes.into_iter().map(|o| Answer {
            incident_id: o.record_id,
            ok: o.ok,
            detail: o.detail,
        }));
    }
    answers.extend(plan.refused.into_iter().map(|(id, why)| Answer {
        incident_id: id,
        ok: false,
        detail: why,
    }));
    Ok(answers)
}

/// How many threats are sent to a source at a time: what was answered before the deadline is
/// kept, and after it the rest are not tried.
const BATCH: usize = 25;

/// Sends the action a batch at a time within one deadline for the connector's share.
async fn in_time(
    state: &AppState,
    conn: &dyn dossier_source::Connection,
    action: ResponseAction,
    scope: ResponseScope,
    targets: &[Target],
) -> Vec<Outcome> {
    let limit = deadline(state);
    let started = std::time::Instant::now();
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(targets.len());
    let mut stopped: Option<String> = None;
    for batch in targets.chunks(BATCH) {
        if let Some(why) = &stopped {
            outcomes.extend(failed(batch, &format!("not tried: {why}")));
            continue;
        }
        let left = limit.saturating_sub(started.elapsed());
        let answered = match tokio::time::timeout(left, conn.respond(action, scope, batch)).await {
            Ok(Ok(answered)) => answered,
            Ok(Err(f)) => failed(batch, &f.reason),
            Err(_) => {
                let why = format!(
                    "the tenant did not answer within {}s; the action may still be carried out",
                    limit.as_secs()
                );
                stopped = Some(why.clone());
                failed(batch, &why)
            }
        };
        outcomes.extend(answered);
    }
    outcomes
}

fn failed(targets: &[Target], reason: &str) -> Vec<Outcome> {
    targets
        .iter()
        .map(|t| Outcome {
            record_id: t.record_id.clone(),
            ok: false,
            detail: reason.to_owned(),
        })
        .collect()
}

//! `POST /api/v1/stories/{id}/actions`: a response action on a story's threats, in their
//! producer's console (see [`crate::respond`]).

use axum::extract::{Path, State};
use axum::Json;
use dossier_source::{ResponseAction, ResponseScope};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::AppState;

/// The response actions, as the API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionName {
    Kill,
    Quarantine,
    Remediate,
    Rollback,
    Disconnect,
    Reconnect,
    Blocklist,
    MarkTruePositive,
    MarkFalsePositive,
}

impl From<ActionName> for ResponseAction {
    fn from(a: ActionName) -> Self {
        match a {
            ActionName::Kill => ResponseAction::Kill,
            ActionName::Quarantine => ResponseAction::Quarantine,
            ActionName::Remediate => ResponseAction::Remediate,
            ActionName::Rollback => ResponseAction::Rollback,
            ActionName::Disconnect => ResponseAction::Disconnect,
            ActionName::Reconnect => ResponseAction::Reconnect,
            ActionName::Blocklist => ResponseAction::Blocklist,
            ActionName::MarkTruePositive => ResponseAction::MarkTruePositive,
            ActionName::MarkFalsePositive => ResponseAction::MarkFalsePositive,
        }
    }
}

/// Where a blocklist entry applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionScope {
    Account,
    Site,
}

impl From<ActionScope> for ResponseScope {
    fn from(s: ActionScope) -> Self {
        match s {
            ActionScope::Account => ResponseScope::Account,
            ActionScope::Site => ResponseScope::Site,
        }
    }
}

/// A response action on every threat of the story.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    pub action: ActionName,
    /// For `blocklist`: where the hash is blocked; default `site`. Other actions ignore it.
    pub scope: Option<ActionScope>,
}

/// The tenant's answer for one threat.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionResult {
    /// The producer's id for the threat.
    pub incident_id: String,
    pub ok: bool,
    /// What the tenant said: `affected 1`, or why the action failed (the tenant's reason).
    pub detail: String,
}

/// What an action did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionResults {
    pub action: ActionName,
    pub results: Vec<ActionResult>,
}

/// Take a response action on the story's threats in their producer's console: kill,
/// quarantine, remediate, rollback, disconnect or reconnect the device, blocklist the file's
/// hash (at `account` or `site` scope), mark the threats true or false positive. Stories editor
/// on an `xops` account; the story's connector must allow response actions (`"response": true`).
/// Each threat gets the tenant's answer; the action is recorded on the story's timeline and in
/// the audit log. Repeating an action is harmless.
#[utoipa::path(post, path = "/api/v1/stories/{id}/actions", request_body = ActionRequest,
    params(("id" = String, Path, description = "The story's id.")),
    responses((status = 200, body = ActionResults, description = "each threat's answer from its tenant (`ok` false with the tenant's reason when it refused or did not answer)"),
        (status = 400, body = super::schema::ErrorBody, description = "the body is not an action (an unknown action or scope, an unknown field)"), (status = 401, body = super::schema::ErrorBody, description = "no valid API key"), (status = 403, body = super::schema::ErrorBody, description = "the key's role, account or licence does not allow it (Stories editor on an `xops` account)"), (status = 404, body = super::schema::ErrorBody, description = "no such story in the key's account"), (status = 409, body = super::schema::ErrorBody, description = "the story's connector does not allow response actions (its `response` switch is off), or the story holds more threats than one action is sent for (500)"), (status = 413, body = super::schema::ErrorBody, description = "the body is over 1 MiB")))]
pub async fn act(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ActionRequest>,
) -> ApiResult<Json<ActionResults>> {
    let plan = crate::respond::plan(&state, &p, &id).await?;
    let scope = body.scope.map(ResponseScope::from).unwrap_or_default();
    let answers = crate::respond::perform(&state, &p, plan, body.action.into(), scope).await?;
    Ok(Json(ActionResults {
        action: body.action,
        results: answers
            .into_iter()
            .map(|a| ActionResult {
                incident_id: a.incident_id,
                ok: a.ok,
                detail: a.detail,
            })
            .collect(),
    }))
}

//! `POST /api/v1/stories/bulk`: one change (and a comment) to many stories of one account,
//! chosen by id or by the list's filter. Each story takes all of it or none of it; the answer
//! counts the stories changed and says why each other one was not.

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use dossier_domain::story::Status;
use dossier_store::{BulkOutcome, StoryQuery};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::stories::{list_stories, ListParams, PatchStory};
use crate::auth::{licensed_account, may_act, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::AppState;

/// The most stories one bulk change reaches, by id or by filter.
pub const MAX_BULK: usize = 10_000;

/// The most characters a comment holds, as on a single story.
const MAX_BULK_COMMENT: usize = 500;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// The stories, by id (1 to 10,000); or `filter`.
    #[schema(min_items = 1, max_items = 10_000)]
    pub ids: Option<Vec<String>>,
    /// The list's parameters (as `GET /api/v1/stories` takes them, each a string, a number or
    /// a list of strings): every story they select, at most 10,000.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Map<String, serde_json::Value>>,
    /// What to set on each story.
    pub set: Option<PatchStory>,
    /// A comment to add to each story, at most 500 characters.
    #[schema(max_length = 500)]
    pub comment: Option<String>,
    /// Operators only: the account whose stories change.
    pub account_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkFailure {
    pub id: String,
    pub error: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResult {
    /// Stories that changed (or took the comment).
    pub changed: usize,
    /// Stories that already were as asked.
    pub unchanged: usize,
    /// Stories that took nothing of the change, each with the reason.
    pub failed: Vec<BulkFailure>,
}

/// Change many stories of one account at once (Stories editor; not on `mdr` accounts).
#[utoipa::path(post, path = "/api/v1/stories/bulk", request_body = BulkRequest,
    responses((status = 200, body = BulkResult, description = "what changed, and why each other story did not"),
        (status = 400, body = super::schema::ErrorBody, description = "neither or both of `ids` and `filter`, nothing to change, a filter that selects more than 10,000 stories or holds cursor, limit or sort, or a value the list refuses; the message names the field"), (status = 401, body = super::schema::ErrorBody, description = "no valid API key"), (status = 403, body = super::schema::ErrorBody, description = "the key's role, account or licence does not allow it"), (status = 404, body = super::schema::ErrorBody, description = "an operator named no account that exists"), (status = 413, body = super::schema::ErrorBody, description = "the body is over 1 MiB")))]
pub async fn bulk(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(body): ApiJson<BulkRequest>,
) -> ApiResult<Json<BulkResult>> {
    let account_id = acting_account(&state, &p, body.account_id.as_deref()).await?;
    let change = match &body.set {
        Some(set) => set.change(&p)?,
        None => dossier_store::StoryUpdate::default(),
    };
    let comment = body
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if comment.is_some_and(|c| c.chars().count() > MAX_BULK_COMMENT) {
        return Err(ApiError::BadRequest(format!(
            "comment: at most {MAX_BULK_COMMENT} characters"
        )));
    }
    if change.is_empty() && comment.is_none() {
        return Err(ApiError::BadRequest(
            "nothing to change: send set (status, verdict, severity, assignee, close_reason) or a comment".into(),
        ));
    }
    let ids = match (body.ids, body.filter) {
        (Some(ids), None) => {
            if ids.is_empty() {
                return Err(ApiError::BadRequest("ids: name at least one story".into()));
            }
            if ids.len() > MAX_BULK {
                return Err(ApiError::BadRequest(format!(
                    "ids: at most {MAX_BULK} stories at once"
                )));
            }
            let mut unique = ids;
            unique.sort();
            unique.dedup();
            unique
        }
        (None, Some(filter)) => {
            let params: ListParams = crate::extract::parse_query(&filter_query(&filter)?)?;
            if params.cursor.is_some() || params.limit.is_some() || params.sort.is_some() {
                return Err(ApiError::BadRequest(
                    "filter: cursor, limit and sort choose a page, not stories; leave them out"
                        .into(),
                ));
            }
            let q = params.to_query_for(&p, Some(account_id.clone()))?;
            matching(&state, q).await?
        }
        _ => {
            return Err(ApiError::BadRequest(
                "ids or filter: name the stories by one of the two".into(),
            ))
        }
    };
    Ok(Json(
        apply(&state, &p, &account_id, &ids, &change, comment).await?,
    ))
}

/// The one account whose stories the caller may change in bulk.
pub(crate) async fn acting_account(
    state: &AppState,
    p: &Principal,
    requested: Option<&str>,
) -> ApiResult<String> {
    p.require(p.perms.edit_stories, "stories-editor")?;
    let Some(account_id) = p.scope(requested)? else {
        return Err(ApiError::BadRequest(
            "account_id: a bulk change acts on the stories of one account; name it".into(),
        ));
    };
    let account = licensed_account(state, &account_id).await?;
    may_act(p, &account)?;
    Ok(account_id)
}

/// Applies one change and a comment to each story of `ids` (of `account_id`, which
/// [`acting_account`] let the caller act on), and sends closed verdicts back to the tenants.
pub(crate) async fn apply(
    state: &AppState,
    p: &Principal,
    account_id: &str,
    ids: &[String],
    change: &dossier_store::StoryUpdate,
    comment: Option<&str>,
) -> ApiResult<BulkResult> {
    let outcomes = state
        .store
        .update_stories(Some(account_id), ids, change, comment, &p.actor, Utc::now())
        .await
        .map_err(|e| ApiError::from_store(e, "story"))?;
    let mut result = BulkResult {
        changed: 0,
        unchanged: 0,
        failed: Vec::new(),
    };
    let closing = change.status == Some(Status::Closed) || change.verdict.is_some();
    for (id, outcome) in outcomes {
        match outcome {
            BulkOutcome::Changed => {
                result.changed += 1;
                if closing {
                    writeback_if_closed(state, account_id, &id).await;
                }
            }
            BulkOutcome::Unchanged => result.unchanged += 1,
            BulkOutcome::Failed(error) => result.failed.push(BulkFailure { id, error }),
        }
    }
    Ok(result)
}

/// A filter object as a query string: a list becomes repeated parameters, a number its text.
fn filter_query(filter: &serde_json::Map<String, serde_json::Value>) -> ApiResult<String> {
    use serde_json::Value;
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in filter {
        let values: Vec<String> = match v {
            Value::String(s) => vec![s.clone()],
            Value::Number(n) => vec![n.to_string()],
            Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(ApiError::BadRequest(format!(
                        "filter.{k}: a list holds strings"
                    ))),
                })
                .collect::<ApiResult<_>>()?,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "filter.{k}: a string, a number or a list of strings"
                )))
            }
        };
        for v in values {
            out.append_pair(k, &v);
        }
    }
    Ok(out.finish())
}

/// The ids of every story a query selects, refused past [`MAX_BULK`].
pub(crate) async fn matching(state: &AppState, mut q: StoryQuery) -> ApiResult<Vec<String>> {
    q.limit = 1000;
    let mut ids = Vec::new();
    loop {
        let page = list_stories(state, &q).await?;
        ids.extend(page.items.into_iter().map(|s| s.id));
        if ids.len() > MAX_BULK {
            return Err(ApiError::BadRequest(format!(
                "filter: it selects more than {MAX_BULK} stories; narrow it"
            )));
        }
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return Ok(ids),
        }
    }
}

/// Sends a story's verdict back to the tenants that take it, once it is closed with one.
async fn writeback_if_closed(state: &AppState, account_id: &str, id: &str) {
    match state.store.get_story(Some(account_id), id).await {
        Ok(story) => {
            if let (Status::Closed, Some(verdict)) = (story.story.status, story.story.verdict) {
                crate::writeback::spawn(state.clone(), story, verdict);
            }
        }
        Err(e) => {
            tracing::warn!(story = %id, error = %e, "a story changed in bulk could not be read back for write-back");
        }
    }
}

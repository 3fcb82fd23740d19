//! `/api/v1/stories`: reading needs the Stories viewer role and an `xops` or `mdr` licence;
//! acting needs the Stories editor role on an `xops` account.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use dossier_domain::story::{Severity, Status, Verdict};
use dossier_store::{Comment, StoryDetail, StoryPage, StoryQuery, StorySortField, StoryUpdate};

use super::json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{licensed_account, may_act, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery};
use crate::AppState;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// A producer (`sentinelone`, `defender`, `crowdstrike`); any other finds no story.
    pub producer: Option<String>,
    /// An engine type (`endpoint`); any other finds no story.
    pub engine_type: Option<String>,
    /// Statuses, repeated (`status=open&status=reopened`) or comma-separated in one value
    /// (`status=open,reopened`); an unknown one is a 400.
    pub status: Option<String>,
    /// Verdicts, repeated or comma-separated; an unknown one is a 400.
    pub verdict: Option<String>,
    /// Severities, repeated or comma-separated; an unknown one is a 400.
    pub severity: Option<String>,
    #[param(minimum = 1, maximum = 10)]
    pub criticality_min: Option<u8>,
    #[param(minimum = 1, maximum = 10)]
    pub criticality_max: Option<u8>,
    /// Agent UUID or device name.
    pub device: Option<String>,
    /// sha1, sha256 or md5.
    pub hash: Option<String>,
    /// Exact indication (threat name).
    pub indication: Option<String>,
    /// `me` (the signed-in user; a 400 from an API key, which is nobody), `none`
    /// (unassigned) or a user name.
    pub assignee: Option<String>,
    /// A vendor's threat or alert id: the story that holds it.
    pub incident_id: Option<String>,
    /// Free text; also finds a story by its id or a vendor's threat or alert id.
    pub q: Option<String>,
    /// RFC 3339; the earliest `updated_at`. After `to` is a 400.
    pub from: Option<String>,
    /// RFC 3339; the latest `updated_at`.
    pub to: Option<String>,
    /// A field name, `-` in front for descending; default `-updated_at`.
    pub sort: Option<String>,
    /// Stories per page; default 50.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the page before, with the same filters and sort; any other
    /// value is a 400.
    pub cursor: Option<String>,
    /// Operators only: the account to list.
    pub account_id: Option<String>,
}

impl crate::extract::QueryParams for ListParams {
    const LISTS: &'static [&'static str] = &["status", "verdict", "severity"];
}

fn list_of<T>(field: &str, raw: Option<&str>, parse: fn(&str) -> Option<T>) -> ApiResult<Vec<T>> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            parse(s).ok_or_else(|| ApiError::BadRequest(format!("{field}: unknown value {s:?}")))
        })
        .collect()
}

/// A time range's optional bounds.
pub(crate) type Range = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// A list's `from` and `to`, each optional, refused when `from` is after `to`.
pub(crate) fn parse_range(from: Option<&str>, to: Option<&str>) -> ApiResult<Range> {
    let from = parse_time("from", from)?;
    let to = parse_time("to", to)?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(ApiError::BadRequest("from: is after to".into()));
        }
    }
    Ok((from, to))
}

pub(crate) fn parse_time(field: &str, raw: Option<&str>) -> ApiResult<Option<DateTime<Utc>>> {
    raw.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::BadRequest(format!(
                        "{field}: not an RFC 3339 time, e.g. 2026-11-27T10:00:00Z"
                    ))
                })
        })
        .transpose()
}

pub(crate) fn parse_limit(limit: Option<u32>) -> ApiResult<u32> {
    match limit {
        None => Ok(50),
        Some(l @ 1..=1000) => Ok(l),
        Some(_) => Err(ApiError::BadRequest("limit: between 1 and 1000".into())),
    }
}

impl ListParams {
    /// The store's query for these parameters, in the scope checked for `p`.
    pub(crate) fn to_query_for(
        &self,
        p: &Principal,
        account_id: Option<String>,
    ) -> ApiResult<StoryQuery> {
        let mut q = self.to_query(account_id)?;
        q.assignee = p.assignee_filter(self.assignee.as_deref())?;
        q.incident_id = self
            .incident_id
            .as_deref()
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(str::to_owned);
        Ok(q)
    }

    pub(crate) fn to_query(&self, account_id: Option<String>) -> ApiResult<StoryQuery> {
        let (sort, descending) = match self
            .sort
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => (StorySortField::UpdatedAt, true),
            Some(s) => StorySortField::parse_sort(s).ok_or_else(|| {
                let names: Vec<&str> = StorySortField::ALL.iter().map(|(n, _)| *n).collect();
                ApiError::BadRequest(format!(
                    "sort: unknown field {s:?}; one of {}",
                    names.join(", ")
                ))
            })?,
        };
        let (from, to) = parse_range(self.from.as_deref(), self.to.as_deref())?;
        if self.q.as_deref().is_some_and(|q| q.contains('\0')) {
            // No text holds a NUL, and SQLite and most tools cut a string at one.
            return Err(ApiError::BadRequest("q: must not contain NUL".into()));
        }
        for (field, v) in [
            ("criticality_min", self.criticality_min),
            ("criticality_max", self.criticality_max),
        ] {
            if v.is_some_and(|v| !(1..=10).contains(&v)) {
                return Err(ApiError::BadRequest(format!("{field}: between 1 and 10")));
            }
        }
        Ok(StoryQuery {
            // An operator listing every account sees only the accounts licensed for stories.
            licensed_only: account_id.is_none(),
            account_id,
            producer: self.producer.clone().filter(|s| !s.is_empty()),
            engine_type: self.engine_type.clone().filter(|s| !s.is_empty()),
            status: list_of("status", self.status.as_deref(), Status::parse)?,
            verdict: list_of("verdict", self.verdict.as_deref(), Verdict::parse)?,
            severity: list_of("severity", self.severity.as_deref(), Severity::parse)?,
            criticality_min: self.criticality_min,
            criticality_max: self.criticality_max,
            device: self.device.clone(),
            hash: self.hash.clone(),
            indication: self.indication.clone(),
            assignee: None,
            incident_id: None,
            q: self.q.clone(),
            from,
            to,
            created_after: None,
            sort,
            descending,
            limit: parse_limit(self.limit)?,
            cursor: self.cursor.clone().filter(|c| !c.is_empty()),
        })
    }
}

/// Resolves the account a stories request reads, checking role and licence.
pub(crate) async fn readable_scope(
    state: &AppState,
    p: &Principal,
    requested: Option<&str>,
) -> ApiResult<Option<String>> {
    p.require(p.perms.view_stories, "stories-viewer")?;
    let scope = p.scope(requested)?;
    // With no scope, an operator reads across accounts: allowed, the provider reads all its
    // customers.
    if let Some(a) = &scope {
        licensed_account(state, a).await?;
    }
    Ok(scope)
}

/// List stories, newest update first by default, with filters and a keyset cursor.
#[utoipa::path(get, path = "/api/v1/stories", params(ListParams),
    responses((status = 200, body = json::StoryPage, description = "a page of stories"),
        (status = 400, body = super::schema::ErrorBody, description = "an unknown or repeated parameter, an unknown value, `from` after `to`, `assignee=me` from an API key or a cursor this list did not make; the message names the parameter"), (status = 401, body = super::schema::ErrorBody, description = "no valid API key"), (status = 403, body = super::schema::ErrorBody, description = "the key's role, account or licence does not allow it"), (status = 404, body = super::schema::ErrorBody, description = "an operator named no account that exists")))]
pub async fn list(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<json::StoryPage>> {
    let scope = readable_scope(&state, &p, params.account_id.as_deref()).await?;
    let q = params.to_query_for(&p, scope)?;
    Ok(Json(list_stories(&state, &q).await?.into()))
}

/// Lists stories for a query whose scope was checked, timing it for `/metrics`.
pub(crate) async fn list_stories(state: &AppState, q: &StoryQuery) -> ApiResult<StoryPage> {
    let started = std::time::Instant::now();
    let page = state
        .store
        .list_stories(q)
        .await
        .map_err(|e| ApiError::from_store(e, "story"))?;
    state.metrics.observe_list(started.elapsed());
    Ok(page)
}

/// A story with the first page of its incidents (raw JSON included), its timeline, comments and
/// related stories.
#[utoipa::path(get, path = "/api/v1/stories/{id}", params(("id" = String, Path, description = "The story's id.")),
    responses((status = 200, body = json::StoryDetail, description = "the story with everything behind it"),
        (status = 401, body = super::schema::ErrorBody, description = "no valid API key"), (status = 403, body = super::schema::ErrorBody, description = "the key's role, account or licence does not allow it"), (status = 404, body = super::schema::ErrorBody, description = "no such story in the key's account")))]
pub async fn get(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<json::StoryDetail>> {
    Ok(Json(get_story(&state, &p, &id).await?.into()))
}

/// The query of a page of a story's incidents.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IncidentParams {
    /// The `next_cursor` of the previous page, or the story's `incidents_next_cursor`; none
    /// starts from the first incident. A cursor of another story is refused.
    pub cursor: Option<String>,
    /// Incidents per page; default 50.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

impl crate::extract::QueryParams for IncidentParams {}

/// A page of a story's incidents (raw JSON included), oldest first, with a cursor to the next.
#[utoipa::path(get, path = "/api/v1/stories/{id}/incidents",
    params(("id" = String, Path, description = "The story's id"), IncidentParams),
    responses((status = 200, body = json::IncidentPage, description = "a page of the story's incidents, oldest first"),
        (status = 400, body = super::schema::ErrorBody, description = "a parameter is unknown, repeated or out of bounds, or the cursor is not this story's; the message names the parameter"),
        (status = 401, body = super::schema::ErrorBody, description = "no valid API key"), (status = 403, body = super::schema::ErrorBody, description = "the key's role, account or licence does not allow it"), (status = 404, body = super::schema::ErrorBody, description = "no such story in the key's account")))]
pub async fn incidents(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<IncidentParams>,
) -> ApiResult<Json<json::IncidentPage>> {
    let limit = parse_limit(q.limit)?;
    let scope = readable_scope(&state, &p, None).await?;
    let page = state
        .store
        .story_incidents(scope.as_deref(), &id, q.cursor.as_deref(), limit)
        .await
        .map_err(|e| ApiError::from_store(e, "story"))?;
    if scope.is_none() {
        // An operator reading across accounts: the story's own account must be licensed.
        licensed_account(&state, &page.account_id).await?;
    }
    Ok(Json(page.into()))
}

/// Reads one story, checking role, account and licence.
pub(crate) async fn get_story(state: &AppState, p: &Principal, id: &str) -> ApiResult<StoryDetail> {
    let scope = readable_scope(state, p, None).await?;
    let story = state
        .store
        .get_story(scope.as_deref(), id)
        .await
        .map_err(|e| ApiError::from_store(e, "story"))?;
    if scope.is_none() {
        // An operator reading across accounts: the story's own account must be licensed.
        licensed_account(state, &story.story.account_id).await?;
    }
    Ok(story)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchStory {
    #[schema(value_type = Option<String>)]
    pub status: Option<Status>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub verdict: Option<Option<Verdict>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub severity: Option<Option<Severity>>,
    /// A user name of the account, `me`, or `null` to unassign.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub assignee: Option<Option<String>>,
    /// Why the story is closed (with `"status": "closed"`, or on a closed story); at most 500
    /// characters.
    #[schema(max_length = 500)]
    pub close_reason: Option<String>,
}

impl PatchStory {
    /// The store's change, with `me` resolved to the caller.
    pub(crate) fn change(&self, p: &Principal) -> ApiResult<StoryUpdate> {
        // Refused whatever the story, before any story is read: a bulk change that names no
        // story that exists must not take it.
        if self.close_reason.as_deref().is_some_and(|r| {
            r.trim().chars().count() > dossier_domain::story::MAX_CLOSE_REASON_CHARS
        }) {
            return Err(ApiError::BadRequest(format!(
                "close_reason: at most {} characters",
                dossier_domain::story::MAX_CLOSE_REASON_CHARS
            )));
        }
        let assignee = match &self.assignee {
            None => None,
            Some(None) => Some(None),
            Some(Some(name)) => Some(Some(p.assignee("assignee", name)?)),
        };
        Ok(StoryUpdate {
            status: self.status,
            verdict: self.verdict,
            severity: self.severity,
            assignee,
            close_reason: self.close_reason.clone(),
        })
    }
}

#[expect(
    clippy::option_option,
    reason = "a PATCH field is absent (keep), null (clear) or a value (set): three states"
)]
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Reads a story that `p` may act on: one it reads, in a licensed account it may change.
///
/// # Errors
/// Not found, or forbidden (role, licence, an `mdr` account).
pub(crate) async fn story_to_act_on(
    state: &AppState,
    p: &Principal,
    id: &str,
) -> ApiResult<StoryDetail> {
    let scope = readable_scope(state, p, None).await?;
    let story = state
        .store
        .get_story(scope.as_deref(), id)
        .await
        .map_err(|e| ApiError::from_store(e, "story"))?;
    let account = licensed_account(state, &story.story.account_id).await?;
    may_act(p, &account)?;
    Ok(story)
}

async fn actionable(state: &AppState, p: &Principal, id: &str) -> ApiResult<Option<String>> {
    Ok(Some(story_to_act_on(state, p, id).await?.story.account_id))
}

/// Set a story's status, verdict or severity (Stories editor; not on `mdr` accounts).
#[utoipa::path(patch, path = "/api/v1/stories/{id}", request_body = PatchStory,
    params(("id" = String, Path, description = "The story's id.")),
    responses((status = 200, body = json::StoryDetail, description = "the story as changed"),
        (status = 400, body = super::schema::ErrorBody, description = "nothing to change, or a triage rule refuses it (closing needs a verdict; a severity needs the verdict malicious; a close reason needs a closed story; the assignee is no user of the account, or `me` from an API key); the message names the field"), (status = 401, body = super::schema::ErrorBody, description = "no valid API key"), (status = 403, body = super::schema::ErrorBody, description = "the key's role, account or licence does not allow it"), (status = 404, body = super::schema::ErrorBody, description = "no such story in the key's account"), (status = 413, body = super::schema::ErrorBody, description = "the body is over 1 MiB")))]
pub async fn patch(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PatchStory>,
) -> ApiResult<Json<json::StoryDetail>> {
    Ok(Json(patch_story(&state, &p, &id, body).await?.into()))
}

/// Applies an analyst's change, for the API and the web UI alike.
pub(crate) async fn patch_story(
    state: &AppState,
    p: &Principal,
    id: &str,
    body: PatchStory,
) -> ApiResult<StoryDetail> {
    let account = actionable(state, p, id).await?;
    let u = body.change(p)?;
    if u.is_empty() {
        return Err(ApiError::BadRequest(
            "nothing to change: send status, verdict, severity, assignee or close_reason".into(),
        ));
    }
    let story = state
        .store
        .update_story(account.as_deref(), id, &u, &p.actor, Utc::now())
        .await
        .map_err(|e| ApiError::from_store(e, "story"))?;
    // Closing with a verdict (or setting the verdict of a closed story) goes back to the
    // tenants whose connectors write back; the change above is saved whatever happens there.
    let closing = body.status == Some(Status::Closed) || body.verdict.is_some();
    if let (Status::Closed, Some(verdict), true) =
        (story.story.status, story.story.verdict, closing)
    {
        crate::writeback::spawn(state.clone(), story.clone(), verdict);
    }
    Ok(story)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    /// At most 500 characters, and something to read: text of only spaces, zero-width or
    /// control characters is refused.
    #[schema(min_length = 1, max_length = 500)]
    pub text: String,
}

/// Comment on a story (Stories editor; not on `mdr` accounts).
#[utoipa::path(post, path = "/api/v1/stories/{id}/comments", request_body = NewComment,
    params(("id" = String, Path, description = "The story's id.")),
    responses((status = 201, body = json::Comment, description = "the comment"),
        (status = 400, body = super::schema::ErrorBody, description = "the text is blank (only spaces, zero-width or control characters) or over 500 characters"), (status = 401, body = super::schema::ErrorBody, description = "no valid API key"), (status = 403, body = super::schema::ErrorBody, description = "the key's role, account or licence does not allow it"), (status = 404, body = super::schema::ErrorBody, description = "no such story in the key's account"), (status = 409, body = super::schema::ErrorBody, description = "the story holds the most comments it may (200)"), (status = 413, body = super::schema::ErrorBody, description = "the body is over 1 MiB")))]
pub async fn comment(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewComment>,
) -> ApiResult<(StatusCode, Json<json::Comment>)> {
    let c = add_comment(&state, &p, &id, &body.text).await?;
    Ok((StatusCode::CREATED, Json(c.into())))
}

/// Adds a comment, for the API and the web UI alike.
pub(crate) async fn add_comment(
    state: &AppState,
    p: &Principal,
    id: &str,
    text: &str,
) -> ApiResult<Comment> {
    let account = actionable(state, p, id).await?;
    if !dossier_domain::display::has_visible(text) {
        return Err(ApiError::BadRequest(
            "text: a comment needs something to read; this one is only blank, zero-width or control characters".into(),
        ));
    }
    state
        .store
        .add_comment(account.as_deref(), id, &p.actor, text, Utc::now())
        .await
        .map_err(|e| ApiError::from_store(e, "story"))
}

/// Delete your own comment (Stories editor; not on `mdr` accounts). Comments are never edited.
#[utoipa::path(delete, path = "/api/v1/stories/{id}/comments/{comment_id}",
    params(("id" = String, Path, description = "The story's id."),
        ("comment_id" = String, Path, description = "The comment's id.")),
    responses((status = 204, description = "deleted"),
        (status = 401, body = super::schema::ErrorBody, description = "no valid API key"), (status = 403, body = super::schema::ErrorBody, description = "the key's role, account or licence does not allow it, or the comment is someone else's"), (status = 404, body = super::schema::ErrorBody, description = "no such story or comment in the key's account")))]
pub async fn delete_comment(
    State(state): State<AppState>,
    p: Principal,
    Path((id, comment_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    remove_comment(&state, &p, &id, &comment_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a comment (only its author may), for the API and the web UI alike.
pub(crate) async fn remove_comment(
    state: &AppState,
    p: &Principal,
    id: &str,
    comment_id: &str,
) -> ApiResult<()> {
    let account = actionable(state, p, id).await?;
    state
        .store
        .delete_comment(account.as_deref(), id, comment_id, &p.actor, Utc::now())
        .await
        .map_err(|e| ApiError::from_store(e, "comment"))
}

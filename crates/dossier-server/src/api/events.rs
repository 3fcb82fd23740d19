//! `/api/v1/events`: events exist without a licence; any role of the account reads them.

use axum::extract::State;
use axum::Json;
use dossier_domain::event::EventType;
use dossier_store::EventQuery;
use serde::Deserialize;
use utoipa::IntoParams;

use super::stories::{parse_limit, parse_range};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    /// Event types, comma-separated or repeated.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub connector_id: Option<String>,
    pub story_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Events per page; default 50.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Operators only: the account to list.
    pub account_id: Option<String>,
}

impl crate::extract::QueryParams for EventParams {
    const LISTS: &'static [&'static str] = &["type"];
}

/// List events, newest first, with filters and a cursor.
#[utoipa::path(get, path = "/api/v1/events", params(EventParams),
    responses((status = 200, body = super::json::EventPage, description = "a page of events"),
        (status = 400, body = super::schema::ErrorBody, description = "an unknown or repeated parameter, an unknown event type, `from` after `to` or a cursor this list did not make; the message names the parameter"), (status = 401, body = super::schema::ErrorBody, description = "no valid API key"), (status = 403, body = super::schema::ErrorBody, description = "the key's role, account or licence does not allow it")))]
pub async fn list(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<EventParams>,
) -> ApiResult<Json<super::json::EventPage>> {
    if p.roles.is_empty() {
        return Err(ApiError::Forbidden("this key has no role".into()));
    }
    let scope = p.scope(q.account_id.as_deref())?;
    let types = match q.event_type.as_deref() {
        None => Vec::new(),
        Some(raw) => raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                EventType::parse(s)
                    .ok_or_else(|| ApiError::BadRequest(format!("type: unknown event type {s:?}")))
            })
            .collect::<Result<_, _>>()?,
    };
    let (from, to) = parse_range(q.from.as_deref(), q.to.as_deref())?;
    let query = EventQuery {
        account_id: scope,
        types,
        connector_id: q.connector_id.filter(|s| !s.is_empty()),
        story_id: q.story_id.filter(|s| !s.is_empty()),
        from,
        to,
        limit: parse_limit(q.limit)?,
        cursor: q.cursor.filter(|s| !s.is_empty()),
    };
    let page = state
        .store
        .list_events(&query)
        .await
        .map_err(|e| ApiError::from_store(e, "event"))?;
    Ok(Json(page.into()))
}

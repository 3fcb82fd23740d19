//! `/api/v1/events`: events exist without a licence; any role of the account reads them.

use axum::extract::State;
use axum::Json;
use dossier_domain::event::EventType;
use dossier_store::{EventOrder, EventQuery};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

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
    /// `order=desc` only: the `next_cursor` of the previous page, to page back from.
    pub cursor: Option<String>,
    /// `desc` (the default): newest first, paged back by `cursor`. `asc`: in commit order
    /// from `after`, a tail that never skips an event that committed late.
    #[param(inline)]
    pub order: Option<Order>,
    /// `order=asc` only: the `next_cursor` of the previous ascending page (opaque; an empty
    /// page gives it back); none starts from the first event.
    pub after: Option<String>,
    /// `order=asc` only: seconds to wait for an event when none is there yet (long poll);
    /// the answer comes as soon as one commits, or with no items once they are up.
    #[param(minimum = 0, maximum = 30)]
    pub wait: Option<u32>,
    /// Operators only: the account to list.
    pub account_id: Option<String>,
}

/// The order of the event list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    Asc,
    #[default]
    Desc,
}

impl crate::extract::QueryParams for EventParams {
    const LISTS: &'static [&'static str] = &["type"];
}

/// List events, newest first with a cursor, or in commit order from a position (a tail that
/// may long-poll), with filters.
#[utoipa::path(get, path = "/api/v1/events", params(EventParams),
    responses((status = 200, body = super::json::EventPage, description = "a page of events"),
        (status = 400, body = super::schema::ErrorBody, description = "an unknown or repeated parameter, an unknown event type, `from` after `to`, a cursor this list did not make, `wait` over 30, or `wait`, `after` or `cursor` with the other order; the message names the parameter"), (status = 401, body = super::schema::ErrorBody, description = "no valid API key"), (status = 403, body = super::schema::ErrorBody, description = "the key's role, account or licence does not allow it"),
        (status = 503, body = super::schema::ErrorBody, description = "too many requests wait for events already; ask again without `wait`, or later")))]
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
    let order = q.order.unwrap_or_default();
    let wait = match q.wait {
        Some(w) if w > crate::tail::MAX_WAIT_SECS => {
            return Err(ApiError::BadRequest(format!(
                "wait: at most {} seconds, not {w}",
                crate::tail::MAX_WAIT_SECS
            )))
        }
        Some(w) if w > 0 && order != Order::Asc => {
            return Err(ApiError::BadRequest(
                "wait: only a tail waits; add order=asc".into(),
            ))
        }
        w => std::time::Duration::from_secs(u64::from(w.unwrap_or(0))),
    };
    let query = EventQuery {
        account_id: scope,
        types,
        connector_id: q.connector_id.filter(|s| !s.is_empty()),
        story_id: q.story_id.filter(|s| !s.is_empty()),
        from,
        to,
        limit: parse_limit(q.limit)?,
        cursor: q.cursor.filter(|s| !s.is_empty()),
        order: match order {
            Order::Asc => EventOrder::Asc,
            Order::Desc => EventOrder::Desc,
        },
        after: q.after.filter(|s| !s.is_empty()),
    };
    let page = state
        .event_waiters
        .page(state.store.as_ref(), &query, wait)
        .await?;
    Ok(Json(page.into()))
}

//! `GET /api/v1/stories/{id}/incidents/{incident_id}/vendor`: an incident's own notes and
//! timeline in its producer's console, read on demand (see [`crate::vendor`]).

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::AppState;

/// A note on the incident in the producer's console.
#[derive(Debug, Serialize, ToSchema)]
pub struct VendorNoteView {
    pub text: String,
    /// Who wrote it, as the console names them.
    pub author: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
}

/// An entry of the incident's timeline in the producer's console.
#[derive(Debug, Serialize, ToSchema)]
pub struct VendorActivityView {
    pub text: String,
    pub created_at: Option<DateTime<Utc>>,
}

/// The incident's notes and timeline in its producer's console, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct VendorView {
    pub notes: Vec<VendorNoteView>,
    pub timeline: Vec<VendorActivityView>,
    /// The producer holds more than was read (the latest 100 of each are kept).
    pub truncated: bool,
    /// When the producer was asked: answers are kept five minutes.
    pub fetched_at: DateTime<Utc>,
}

/// The incident's own notes and timeline in its producer's console (SentinelOne's
/// `/threats/{id}/notes` and `/threats/{id}/timeline`), fetched on demand and kept five
/// minutes. Any role that reads the story.
#[utoipa::path(get, path = "/api/v1/stories/{id}/incidents/{incident_id}/vendor",
    params(("id" = String, Path, description = "The story's id."), ("incident_id" = String, Path, description = "The producer's id for one of the story's incidents.")),
    responses((status = 200, body = VendorView, description = "the incident's notes and timeline in its producer's console"),
        (status = 401, body = super::schema::ErrorBody, description = "no valid API key"), (status = 403, body = super::schema::ErrorBody, description = "the key's role, account or licence does not allow it"),
        (status = 404, body = super::schema::ErrorBody, description = "no such story in the key's account, no such incident in the story, a producer whose notes Dossier does not read, or a record the tenant no longer holds (it answered 404)"),
        (status = 409, body = super::schema::ErrorBody, description = "the incident's connector was deleted"),
        (status = 502, body = super::schema::ErrorBody, description = "the producer's tenant could not be read; the message says why")))]
pub async fn get(
    State(state): State<AppState>,
    p: Principal,
    Path((id, incident_id)): Path<(String, String)>,
) -> ApiResult<Json<VendorView>> {
    let read = crate::vendor::read(&state, &p, &id, &incident_id).await?;
    Ok(Json(VendorView {
        notes: read
            .notes
            .notes
            .iter()
            .map(|n| VendorNoteView {
                text: n.text.clone(),
                author: n.author.clone(),
                created_at: n.created_at,
            })
            .collect(),
        timeline: read
            .notes
            .timeline
            .iter()
            .map(|a| VendorActivityView {
                text: a.text.clone(),
                created_at: a.created_at,
            })
            .collect(),
        truncated: read.notes.truncated,
        fetched_at: read.fetched_at,
    }))
}

//! The HTTP API v1 and the operational endpoints.

pub mod actions;
pub mod bulk;
pub mod connectors;
pub mod events;
pub mod json;
pub mod schema;
pub mod stories;
pub mod vendor;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Dossier API", version = "1", description = "EDR incidents correlated into stories."),
    paths(
        connectors::create, connectors::list, connectors::get, connectors::patch, connectors::delete,
        stories::list, stories::get, stories::incidents, stories::patch, stories::comment, stories::delete_comment,
        actions::act,
        vendor::get,
        bulk::bulk,
        events::list,
        healthz, readyz, metrics,
    ),
    components(schemas(
        connectors::ConnectorView, connectors::Health, connectors::BackfillView, connectors::CreateConnector, connectors::PatchConnector,
        stories::PatchStory, stories::NewComment,
        actions::ActionRequest, actions::ActionResults, actions::ActionResult, actions::ActionName, actions::ActionScope,
        vendor::VendorView, vendor::VendorNoteView, vendor::VendorActivityView,
        bulk::BulkRequest, bulk::BulkResult, bulk::BulkFailure,
        json::Story, json::StoryPage, json::StoryDetail, json::DeviceView,
        json::FileView, json::IncidentView, json::IncidentPage, json::TimelineEntry, json::Comment,
        json::RelatedStory, json::NextStepView, json::EntitiesView, json::EntitySources,
        json::DeviceEntityView, json::UserEntityView, json::FileEntityView, json::ProcessEntityView,
        json::StorylineEntityView, json::IndicatorEntityView, json::Event, json::EventPage, schema::ErrorBody, Status,
    )),
    modifiers(&BearerAuth),
    security(("api_key" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/connectors",
            get(connectors::list).post(connectors::create),
        )
        .route(
            "/api/v1/connectors/{id}",
            get(connectors::get)
                .patch(connectors::patch)
                .delete(connectors::delete),
        )
        .route("/api/v1/stories", get(stories::list))
        .route("/api/v1/stories/bulk", axum::routing::post(bulk::bulk))
        .route(
            "/api/v1/stories/{id}",
            get(stories::get).patch(stories::patch),
        )
        .route("/api/v1/stories/{id}/incidents", get(stories::incidents))
        .route(
            "/api/v1/stories/{id}/incidents/{incident_id}/vendor",
            get(vendor::get),
        )
        .route(
            "/api/v1/stories/{id}/actions",
            axum::routing::post(actions::act),
        )
        .route(
            "/api/v1/stories/{id}/comments",
            axum::routing::post(stories::comment),
        )
        .route(
            "/api/v1/stories/{id}/comments/{comment_id}",
            axum::routing::delete(stories::delete_comment),
        )
        .route("/api/v1/events", get(events::list))
        // A known route with another method: the API's error shape, not an empty 405.
        .method_not_allowed_fallback(|| async { crate::error::ApiError::MethodNotAllowed })
        .route("/api/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn openapi(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(schema::document(&state.sources))
}

/// What `/healthz` and `/readyz` answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Status {
    /// `ok`, `ready` or `database unavailable`.
    status: String,
    /// Why the database is unavailable, in an operator's words ("the database could not be
    /// written: disk full"); only with `database unavailable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", security(), responses((status = 200, body = Status, description = "alive")))]
async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: the database answers, and takes writes (once a write failed, until one works).
#[utoipa::path(get, path = "/readyz", security(),
    responses((status = 200, body = Status, description = "ready"),
        (status = 503, body = Status, description = "the database does not answer, or does not take writes (a full disk, a read-only file): `reason` says which")))]
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database unavailable");
            // The store's own words when it says why; anything else may carry internals.
            let reason = match e {
                dossier_store::StoreError::Unavailable(reason) => reason,
                _ => "the database does not answer (see the server's log)".to_owned(),
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "database unavailable", "reason": reason })),
            )
        }
    }
}

/// Prometheus metrics (OpenMetrics text). They count every account's connectors and stories,
/// so only an operator key, which spans accounts, or a `metrics` key, which reads nothing else,
/// may read them.
#[utoipa::path(get, path = "/metrics",
    responses((status = 200, description = "metrics", content_type = "application/openmetrics-text"),
        (status = 401, body = schema::ErrorBody, description = "no valid API key"),
        (status = 403, body = schema::ErrorBody, description = "the key is neither an operator's nor a metrics key")))]
async fn metrics(
    State(state): State<AppState>,
    p: crate::auth::Principal,
) -> crate::error::ApiResult<impl IntoResponse> {
    p.require(p.perms.read_metrics, "operator or metrics")?;
    state.metrics.store_retries(state.store.write_retries());
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    ))
}

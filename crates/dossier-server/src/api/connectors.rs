//! `/api/v1/connectors`: only an Integrations editor adds, changes or deletes a connector; the
//! token is write-only.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use std::sync::Arc;

use dossier_source::{Config, Configured, Source, Stored};
use dossier_store::{ConnectorRecord, ConnectorUpdate, NewConnector};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery};
use crate::tenant_url;
use crate::AppState;

const MAX_NAME: usize = 100;
const MAX_DESCRIPTION: usize = 500;

/// A connector as the API shows it. It never carries the token.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorView {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub description: Option<String>,
    pub tenant_url: String,
    /// `pending`, `connected` or `error`.
    pub status: String,
    pub status_detail: Option<String>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub track_errors: bool,
    pub created_at: DateTime<Utc>,
    pub account_id: String,
    pub write_back: bool,
    /// Allows response actions from a story (`POST /api/v1/stories/{id}/actions`).
    pub response: bool,
    pub health: Health,
    /// While the first sync (the backfill) is under way: how far it has come; `null` after.
    pub backfill: Option<BackfillView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackfillView {
    /// 0 to 100.
    pub percent: f64,
    /// At the pace so far; `null` before the first threats arrive.
    pub eta_seconds: Option<i64>,
}

fn backfill_of(checkpoint: Option<&str>) -> Option<BackfillView> {
    let cp: dossier_source::Checkpoint = serde_json::from_str(checkpoint?).ok()?;
    let p = cp.backfill_progress(Utc::now())?;
    Some(BackfillView {
        percent: (p.fraction * 1000.0).round() / 10.0,
        eta_seconds: p.eta.map(|d| d.num_seconds()),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub polls: u64,
    pub errors: u64,
    pub threats: u64,
    /// Seconds since the last successful poll: how stale the connector's stories may be.
    pub lag_seconds: Option<i64>,
}

impl From<ConnectorRecord> for ConnectorView {
    fn from(c: ConnectorRecord) -> Self {
        let backfill = match c.checkpoint.as_deref() {
            // Never polled yet: the whole backfill is ahead.
            None => Some(BackfillView {
                percent: 0.0,
                eta_seconds: None,
            }),
            Some(cp) => backfill_of(Some(cp)),
        };
        Self {
            backfill,
            id: c.id,
            kind: c.kind,
            name: c.name,
            description: c.description,
            tenant_url: c.tenant_url,
            status: c.status,
            status_detail: c.status_detail,
            last_success_at: c.last_success_at,
            token_expires_at: c.token_expires_at,
            track_errors: c.track_errors,
            created_at: c.created_at,
            account_id: c.account_id,
            write_back: c.write_back,
            response: c.response,
            health: Health {
                polls: c.polls,
                errors: c.errors,
                threats: c.threats,
                lag_seconds: c
                    .last_success_at
                    .map(|t| (Utc::now() - t).num_seconds().max(0)),
            },
        }
    }
}

/// A new connector: the fields every kind has, and the kind's own (`tenant_url` and
/// `api_token` for `sentinelone`; `tenant_id`, `client_id`, `client_secret`, `graph_url`,
/// `login_url` for `defender`; `cloud`, `base_url`, `client_id`, `client_secret`, `member_cid`
/// for `crowdstrike`), which the kind's source reads and checks, refusing any it does not have.
#[derive(Deserialize, ToSchema)]
pub struct CreateConnector {
    /// The connector kind: one of the sources this build knows (`sentinelone`, `defender`,
    /// `crowdstrike`).
    pub kind: String,
    pub name: String,
    pub description: Option<String>,
    pub track_errors: Option<bool>,
    pub write_back: Option<bool>,
    /// Allows response actions from a story; off unless given.
    pub response: Option<bool>,
    /// For operators: the account to create the connector in.
    pub account_id: Option<String>,
    /// The kind's own fields.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub fields: Config,
}

impl std::fmt::Debug for CreateConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateConnector")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("fields", &"<hidden>")
            .finish_non_exhaustive()
    }
}

/// A change to a connector: what every kind has, and the kind's own fields to change (a field
/// left out keeps its value).
#[derive(Deserialize, ToSchema)]
pub struct PatchConnector {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    pub track_errors: Option<bool>,
    pub write_back: Option<bool>,
    pub response: Option<bool>,
    /// The kind's own fields to change.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub fields: Config,
}

impl std::fmt::Debug for PatchConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatchConnector")
            .field("name", &self.name)
            .field("fields", &"<hidden>")
            .finish_non_exhaustive()
    }
}

#[expect(
    clippy::option_option,
    reason = "a PATCH field is absent (keep), null (clear) or a value (set): three states"
)]
fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AccountParam {
    /// Operators only: the account whose connectors to list (another account's key is a 403).
    pub account_id: Option<String>,
}

impl crate::extract::QueryParams for AccountParam {}

fn check_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::BadRequest("name: is required".into()));
    }
    if name.chars().count() > MAX_NAME {
        return Err(ApiError::BadRequest(format!(
            "name: at most {MAX_NAME} characters"
        )));
    }
    Ok(name.to_owned())
}

fn check_description(d: Option<String>) -> ApiResult<Option<String>> {
    let d = d.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty());
    if d.as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
    {
        return Err(ApiError::BadRequest(format!(
            "description: at most {MAX_DESCRIPTION} characters"
        )));
    }
    Ok(d)
}

/// Checks every address a connector's secret is sent to against the address guard.
async fn check_hosts(state: &AppState, c: &Configured) -> ApiResult<()> {
    for url in &c.secret_urls {
        tenant_url::check_host(url, state.config.allow_private_tenants).await?;
    }
    Ok(())
}

/// The stored form of a base URL: its origin without the final slash.
fn stored_url(url: &url::Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

/// The source of a connector kind, or a clear error naming the kinds there are.
pub(crate) fn source_of_kind(state: &AppState, kind: &str) -> ApiResult<Arc<dyn Source>> {
    state
        .sources
        .of_kind(kind)
        .map_err(|why| ApiError::BadRequest(format!("kind: {why}")))
}

/// Create a connector (Integrations editor).
#[utoipa::path(post, path = "/api/v1/connectors", request_body = CreateConnector,
    responses((status = 201, body = ConnectorView, description = "the connector, `pending` until its first check"),
        (status = 400, body = super::schema::ErrorBody, description = "the request is malformed or breaks a rule; the message names the field"), (status = 401, body = super::schema::ErrorBody, description = "no valid API key"), (status = 403, body = super::schema::ErrorBody, description = "the key's role, account or licence does not allow it"), (status = 413, body = super::schema::ErrorBody, description = "the body is over 1 MiB")))]
pub async fn create(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(body): ApiJson<CreateConnector>,
) -> ApiResult<(StatusCode, Json<ConnectorView>)> {
    let rec = create_connector(&state, &p, body).await?;
    Ok((StatusCode::CREATED, Json(rec.into())))
}

/// Creates a connector for the API and the web UI alike.
pub(crate) async fn create_connector(
    state: &AppState,
    p: &Principal,
    body: CreateConnector,
) -> ApiResult<ConnectorRecord> {
    p.require(p.perms.edit_integrations, "integrations-editor")?;
    let account_id = p
        .scope(body.account_id.as_deref())?
        .ok_or_else(|| ApiError::BadRequest("account_id: an operator names the account".into()))?;
    let source = source_of_kind(state, &body.kind)?;
    let name = check_name(&body.name)?;
    let description = check_description(body.description)?;
    let configured = source
        .configure(&body.fields, None)
        .map_err(ApiError::BadRequest)?;
    let Some(secret) = &configured.secret else {
        return Err(ApiError::BadRequest(format!(
            "{}: is required",
            secret_field_name(source.as_ref())
        )));
    };
    check_hosts(state, &configured).await?;
    let rec = state
        .store
        .create_connector(&NewConnector {
            account_id,
            kind: body.kind,
            name,
            description,
            tenant_url: stored_url(&configured.tenant_url),
            config: stored_config_of(&configured.config),
            token_enc: state.secrets.seal(secret),
            track_errors: body.track_errors.unwrap_or(false),
            write_back: body.write_back.unwrap_or(false),
            response: body.response.unwrap_or(false),
            now: Utc::now(),
        })
        .await
        .map_err(|e| ApiError::from_store(e, "account"))?;
    tracing::info!(connector_id = %rec.id, account_id = %rec.account_id, "connector created");
    audit(
        state,
        p,
        &rec,
        "connector_created",
        format!("created connector {:?} for {}", rec.name, rec.tenant_url),
    )
    .await;
    state.workers.notify_changed();
    Ok(rec)
}

/// Writes an audit line for a change to a connector. The change itself is saved already, so a
/// failure here is logged rather than undoing it.
async fn audit(
    state: &AppState,
    p: &Principal,
    rec: &ConnectorRecord,
    action: &str,
    detail: String,
) {
    if let Err(e) = state
        .store
        .audit(
            &rec.account_id,
            &p.actor,
            action,
            &rec.id,
            &detail,
            Utc::now(),
        )
        .await
    {
        tracing::error!(error = %e, connector_id = %rec.id, "cannot write the audit log");
    }
}

/// List connectors (Integrations viewer).
#[utoipa::path(get, path = "/api/v1/connectors", params(AccountParam),
    responses((status = 200, body = [ConnectorView], description = "the account's connectors"),
        (status = 400, body = super::schema::ErrorBody, description = "an unknown or repeated query parameter"), (status = 401, body = super::schema::ErrorBody, description = "no valid API key"), (status = 403, body = super::schema::ErrorBody, description = "the key's role, account or licence does not allow it")))]
pub async fn list(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<AccountParam>,
) -> ApiResult<Json<Vec<ConnectorView>>> {
    p.require(p.perms.view_integrations, "integrations-viewer")?;
    let scope = p.scope(q.account_id.as_deref())?;
    let items = read_all(&state, scope.as_deref()).await?;
    Ok(Json(items.into_iter().map(Into::into).collect()))
}

/// The connectors of an account (of every account for `None`) as they stand: what is stored,
/// with the health their workers could not write (a full disk) shown over it.
pub(crate) async fn read_all(
    state: &AppState,
    account_id: Option<&str>,
) -> ApiResult<Vec<ConnectorRecord>> {
    let mut items = state
        .store
        .list_connectors(account_id)
        .await
        .map_err(|e| ApiError::from_store(e, "connector"))?;
    for c in &mut items {
        state.unrecorded.over(c);
    }
    Ok(items)
}

/// One connector as it stands (see [`read_all`]).
pub(crate) async fn read_one(
    state: &AppState,
    account_id: Option<&str>,
    id: &str,
) -> ApiResult<ConnectorRecord> {
    let mut rec = state
        .store
        .get_connector(account_id, id)
        .await
        .map_err(|e| ApiError::from_store(e, "connector"))?;
    state.unrecorded.over(&mut rec);
    Ok(rec)
}

/// Get a connector (Integrations viewer).
#[utoipa::path(get, path = "/api/v1/connectors/{id}", params(("id" = String, Path, description = "The connector's id.")),
    responses((status = 200, body = ConnectorView, description = "the connector"),
        (status = 401, body = super::schema::ErrorBody, description = "no valid API key"), (status = 403, body = super::schema::ErrorBody, description = "the key's role, account or licence does not allow it"), (status = 404, body = super::schema::ErrorBody, description = "no such connector in the key's account")))]
pub async fn get(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ConnectorView>> {
    p.require(p.perms.view_integrations, "integrations-viewer")?;
    let scope = p.scope(None)?;
    let rec = read_one(&state, scope.as_deref(), &id).await?;
    Ok(Json(rec.into()))
}

/// Change a connector (Integrations editor). A new token or URL sends it back to `pending`.
/// A new token keeps the checkpoint, so nothing is ingested twice or skipped; a new URL needs a
/// new token and starts the poll over, since it is another tenant.
#[utoipa::path(patch, path = "/api/v1/connectors/{id}", request_body = PatchConnector,
    params(("id" = String, Path, description = "The connector's id.")),
    responses((status = 200, body = ConnectorView, description = "the connector as changed"),
        (status = 400, body = super::schema::ErrorBody, description = "the request is malformed or breaks a rule; the message names the field"), (status = 401, body = super::schema::ErrorBody, description = "no valid API key"), (status = 403, body = super::schema::ErrorBody, description = "the key's role, account or licence does not allow it"), (status = 404, body = super::schema::ErrorBody, description = "no such connector in the key's account"), (status = 413, body = super::schema::ErrorBody, description = "the body is over 1 MiB")))]
pub async fn patch(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PatchConnector>,
) -> ApiResult<Json<ConnectorView>> {
    let rec = patch_connector(&state, &p, &id, body).await?;
    Ok(Json(rec.into()))
}

/// Changes a connector for the API and the web UI alike.
pub(crate) async fn patch_connector(
    state: &AppState,
    p: &Principal,
    id: &str,
    body: PatchConnector,
) -> ApiResult<ConnectorRecord> {
    p.require(p.perms.edit_integrations, "integrations-editor")?;
    let scope = p.scope(None)?;
    let mut u = ConnectorUpdate {
        now: Some(Utc::now()),
        ..ConnectorUpdate::default()
    };
    if let Some(n) = &body.name {
        u.name = Some(check_name(n)?);
    }
    if let Some(d) = body.description {
        u.description = Some(check_description(d)?);
    }
    let current = state
        .store
        .get_connector(scope.as_deref(), id)
        .await
        .map_err(|e| ApiError::from_store(e, "connector"))?;
    if !body.fields.is_empty() {
        configure_change(state, &current, &body.fields, &mut u).await?;
    }
    u.track_errors = body.track_errors;
    u.write_back = body.write_back;
    u.response = body.response;
    let rec = state
        .store
        .update_connector(scope.as_deref(), id, &u)
        .await
        .map_err(|e| ApiError::from_store(e, "connector"))?;
    let mut changed = Vec::new();
    for (what, yes) in [
        ("name", u.name.is_some()),
        ("description", u.description.is_some()),
        ("tenant URL", u.tenant_url.is_some()),
        ("settings", u.config.is_some()),
        ("secret", u.token_enc.is_some()),
        ("track errors", u.track_errors.is_some()),
        ("write-back", u.write_back.is_some()),
        ("response actions", u.response.is_some()),
    ] {
        if yes {
            changed.push(what);
        }
    }
    audit(
        state,
        p,
        &rec,
        "connector_changed",
        format!("changed {}", changed.join(", ")),
    )
    .await;
    state.workers.notify_changed();
    Ok(rec)
}

/// The name of a kind's secret field (`api_token`, `client_secret`).
fn secret_field_name(source: &dyn Source) -> &'static str {
    source
        .fields()
        .iter()
        .find(|f| f.secret)
        .map_or("secret", |f| f.name)
}

/// Reads a change to a connector's own fields into `u`. A change to any address the secret is
/// sent to needs the secret again (the stored one is only ever sent where it was saved for),
/// starts the poll over (it may be another tenant) and sends the connector back to `pending`,
/// as a new secret does.
async fn configure_change(
    state: &AppState,
    current: &ConnectorRecord,
    fields: &Config,
    u: &mut ConnectorUpdate,
) -> ApiResult<()> {
    let source = source_of_kind(state, &current.kind)?;
    let stored_config: Config = serde_json::from_str(&current.config).unwrap_or_default();
    let stored = Stored {
        tenant_url: &current.tenant_url,
        config: &stored_config,
    };
    let before = source
        .configure(&Config::new(), Some(stored))
        .map_err(ApiError::BadRequest)?;
    let after = source
        .configure(fields, Some(stored))
        .map_err(ApiError::BadRequest)?;
    let moved = after.secret_urls != before.secret_urls;
    if moved {
        if after.secret.is_none() {
            let secret = secret_field_name(source.as_ref());
            return Err(ApiError::BadRequest(format!(
                "{secret}: required when an address changes (the stored secret is only sent to \
                 the tenant it was saved for)"
            )));
        }
        check_hosts(state, &after).await?;
        // Another tenant's history starts from the beginning.
        u.reset_checkpoint = true;
    }
    let url = stored_url(&after.tenant_url);
    if url != current.tenant_url {
        u.tenant_url = Some(url);
    }
    if after.config != stored_config {
        u.config = Some(stored_config_of(&after.config));
    }
    if let Some(secret) = &after.secret {
        u.token_enc = Some(state.secrets.seal(secret));
    }
    if moved || after.secret.is_some() || u.config.is_some() {
        u.status = Some(("pending".into(), None));
    }
    Ok(())
}

/// The kind's own fields as stored, a JSON object.
fn stored_config_of(config: &Config) -> String {
    serde_json::Value::Object(config.clone()).to_string()
}

/// Delete a connector (Integrations editor). Its incidents and stories stay as evidence.
#[utoipa::path(delete, path = "/api/v1/connectors/{id}", params(("id" = String, Path, description = "The connector's id.")),
    responses((status = 204, description = "deleted"),
        (status = 401, body = super::schema::ErrorBody, description = "no valid API key"), (status = 403, body = super::schema::ErrorBody, description = "the key's role, account or licence does not allow it"), (status = 404, body = super::schema::ErrorBody, description = "no such connector in the key's account")))]
pub async fn delete(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    delete_connector(&state, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a connector for the API and the web UI alike.
pub(crate) async fn delete_connector(state: &AppState, p: &Principal, id: &str) -> ApiResult<()> {
    p.require(p.perms.edit_integrations, "integrations-editor")?;
    let scope = p.scope(None)?;
    let rec = state
        .store
        .get_connector(scope.as_deref(), id)
        .await
        .map_err(|e| ApiError::from_store(e, "connector"))?;
    state
        .store
        .delete_connector(scope.as_deref(), id)
        .await
        .map_err(|e| ApiError::from_store(e, "connector"))?;
    audit(
        state,
        p,
        &rec,
        "connector_deleted",
        format!("deleted connector {:?}", rec.name),
    )
    .await;
    state.workers.notify_changed();
    Ok(())
}

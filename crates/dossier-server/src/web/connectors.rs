//! The Connectors page: status with its reason, last success, token expiry with a badge, the
//! backfill's progress, and the forms to add, change and delete (Integrations editors). The
//! token field is write-only: it is never filled in or shown again.

use axum::body::Bytes;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use dossier_domain::expiry::Expiry;
use dossier_source::{Config, Field, Labels, Source};
use dossier_store::{Account, ConnectorRecord};
use maud::{html, Markup};

use super::layout::{self, Nav};
use super::{FormData, WebResult, WebUser};
use crate::api::connectors::{
    create_connector, delete_connector, patch_connector, source_of_kind, ConnectorView,
    CreateConnector, PatchConnector,
};
use crate::error::ApiError;
use crate::AppState;

fn expiry_badge(c: &ConnectorView) -> Markup {
    match Expiry::of(c.token_expires_at, Utc::now()) {
        Expiry::Fine => html! {},
        Expiry::Within30Days => html! { " " span.badge.expiry-warn { "expires within 30 days" } },
        Expiry::Within7Days => html! { " " span.badge.expiry-bad { "expires within 7 days" } },
        Expiry::Expired => html! { " " span.badge.expiry-bad { "expired" } },
    }
}

fn eta(secs: i64) -> String {
    layout::duration(chrono::Duration::seconds(secs))
}

pub async fn list(State(state): State<AppState>, user: WebUser) -> WebResult<Response> {
    let p = &user.principal;
    p.require(p.perms.view_integrations, "integrations-viewer")?;
    let records = crate::api::connectors::read_all(&state, p.account_id.as_deref()).await?;
    // Per connector, the names of the others of its account that reach the same tenant.
    let overlaps: Vec<Vec<String>> = records
        .iter()
        .map(|c| {
            crate::overlap::overlapping(&state.sources, &records, c)
                .into_iter()
                .map(|o| o.name.clone())
                .collect()
        })
        .collect();
    let items: Vec<ConnectorView> = records.into_iter().map(Into::into).collect();
    let editor = p.perms.edit_integrations;
    let vendors: Vec<&str> = state.sources.iter().map(|s| s.labels().vendor).collect();
    let body = html! {
        h1 { "Connectors" }
        @if editor {
            p { @for s in state.sources.iter() {
                a.button href={ "/connectors/new?kind=" (s.kind()) } { "Add a " (s.labels().vendor) " connector" } " "
            } }
        }
        @if items.is_empty() {
            div.empty role="status" {
                p { strong { "No connectors yet." } " A connector brings a tenant's threats into Dossier, from " (vendors.join(" or ")) "." }
                @if !editor { p { "Ask an Integrations editor to add one." } }
            }
        } @else {
            table.connectors {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Tenant" } th scope="col" { "Status" }
                    th scope="col" { "Reason" } th scope="col" { "Last success" } th scope="col" { "Token expiry" }
                    th scope="col" { "Backfill" } th.num scope="col" { "Polls" } th.num scope="col" { "Errors" }
                    th.num scope="col" { "Threats" } th scope="col" { "Track errors" }
                    @if editor { th scope="col" { "Actions" } }
                } }
                tbody {
                    @for (c, overlap) in items.iter().zip(&overlaps) {
                        tr {
                            td { (layout::tenant(&c.name)) @if let Some(d) = &c.description { br; span.hint { (layout::tenant(d)) } }
                                @if !overlap.is_empty() {
                                    br;
                                    span.hint.overlap {
                                        "Reaches the same tenant as " (layout::tenant(&overlap.join(", ")))
                                        ": each threat is kept once, by the connector that read it first."
                                    }
                                }
                            }
                            td.mono { (c.tenant_url) }
                            td { (layout::status_badge(&c.status)) }
                            td { (layout::opt(c.status_detail.as_deref())) }
                            td { (layout::opt_time(c.last_success_at))
                                 @if let Some(l) = c.health.lag_seconds { br; span.hint { (eta(l)) " ago" } } }
                            td { (layout::opt_time(c.token_expires_at)) (expiry_badge(c)) }
                            td { @match &c.backfill {
                                Some(b) => {
                                    progress max="100" value=(b.percent) aria-label="Backfill progress" { (b.percent) "%" }
                                    " " (b.percent) "%"
                                    @if let Some(s) = b.eta_seconds { br; span.hint { "about " (eta(s)) " left" } }
                                },
                                None => span.hint { "done" },
                            } }
                            td.num { (c.health.polls) }
                            td.num { (c.health.errors) }
                            td.num { (c.health.threats) }
                            td { (if c.track_errors { "yes" } else { "no" }) }
                            @if editor {
                                td {
                                    a href={ "/connectors/" (c.id) } { "Edit" } " "
                                    form.inline method="post" action={ "/connectors/" (c.id) "/delete" } {
                                        input type="hidden" name="_csrf" value=(user.csrf);
                                        button.danger type="submit" aria-label={ "Delete " (c.name) } { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page("Connectors", &user, Nav::Connectors, body).into_response())
}

/// The values a connector form shows again after an error (never a secret).
#[derive(Default)]
struct Values {
    kind: String,
    name: String,
    description: String,
    /// The kind's own fields that are not secret, by name.
    fields: std::collections::BTreeMap<String, String>,
    track_errors: bool,
    write_back: bool,
    response: bool,
    account_id: String,
}

/// What a form is for: a new connector or a saved one, of the source's kind.
struct FormFor<'a> {
    action: &'a str,
    editing: bool,
    labels: Labels,
    fields: &'static [Field],
}

fn form(
    user: &WebUser,
    to: &FormFor<'_>,
    v: &Values,
    accounts: &[Account],
    error: Option<&str>,
) -> Markup {
    let (editing, l) = (to.editing, to.labels);
    html! {
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form.form-narrow method="post" action=(to.action) autocomplete="off" {
            input type="hidden" name="_csrf" value=(user.csrf);
            input type="hidden" name="kind" value=(v.kind);
            @if !accounts.is_empty() {
                label for="account_id" { "Account" }
                select #account_id name="account_id" required {
                    @for a in accounts {
                        option value=(a.id) selected[a.id == v.account_id] { (a.name) " (" (a.licence.as_str()) ")" }
                    }
                }
            }
            label for="name" { "Name" }
            input #name type="text" name="name" value=(v.name) maxlength="100" required;
            label for="description" { "Description " span.hint { "(optional)" } }
            input #description type="text" name="description" value=(v.description) maxlength="500";
            @for field in to.fields { (kind_field(field, v, editing)) }
            label.check { input type="checkbox" name="track_errors" value="1" checked[v.track_errors]; "Track errors by creating an event" }
            br;
            label.check { input type="checkbox" name="write_back" value="1" checked[v.write_back]; "Write verdicts back to " (l.vendor) " when a story is closed" }
            br;
            label.check { input type="checkbox" name="response" value="1" checked[v.response]; "Allow response actions from a story (kill, quarantine, disconnect, blocklist, …)" }
            br;
            span.hint { "The token's user then needs a role that may act in " (l.vendor) ", not only read. " (l.vendor) " offers no way to check that without acting: if it may not, each action says so, naming what it was refused." }
            p {
                button type="submit" { (if editing { "Save changes" } else { "Add connector" }) }
                " " a href="/connectors" { "Cancel" }
            }
        }
    }
}

/// One of the kind's own fields, with its help text. A secret is never filled in; editing, it
/// may be left empty to keep the saved one.
fn kind_field(field: &Field, v: &Values, editing: bool) -> Markup {
    let help = format!("help-{}", field.name);
    let optional = !field.required || (editing && field.secret);
    html! {
        label for=(field.name) {
            (field.label)
            @if field.secret {
                " " span.hint { @if editing { "(leave empty to keep the saved one; a new address needs it again)" } @else { "(never shown again)" } }
            } @else if !field.required { " " span.hint { "(optional)" } }
        }
        @if field.secret {
            input id=(field.name) type="password" name=(field.name) value="" autocomplete="new-password"
                aria-describedby=(help) required[!optional];
        } @else if !field.choices.is_empty() {
            select id=(field.name) name=(field.name) aria-describedby=(help) {
                @if !field.required { option value="" { "—" } }
                @for c in field.choices {
                    option value=(c) selected[v.fields.get(field.name).is_some_and(|x| x == c)] { (c) }
                }
            }
        } @else {
            input id=(field.name) type="text" name=(field.name)
                value=(v.fields.get(field.name).map_or("", String::as_str))
                placeholder=(field.example) aria-describedby=(help) required[!optional];
        }
        p.hint id=(help) { (field.help) }
    }
}

/// The kind's own fields of a submitted form, as the API takes them: every field the form
/// filled in (an empty secret is left out, to keep the saved one).
fn fields_of(f: &FormData, fields: &[Field], editing: bool) -> Config {
    let mut out = Config::new();
    for field in fields {
        let value = f.text(field.name);
        if value.trim().is_empty() && (field.secret && editing || !field.required) {
            if editing && !field.secret {
                // Emptied on purpose: the kind falls back to its default.
                out.insert(field.name.to_owned(), serde_json::Value::Null);
            }
            continue;
        }
        out.insert(
            field.name.to_owned(),
            serde_json::Value::String(value.to_owned()),
        );
    }
    out
}

async fn accounts_for(state: &AppState, user: &WebUser) -> WebResult<Vec<Account>> {
    if user.principal.account_id.is_some() {
        return Ok(Vec::new());
    }
    Ok(state
        .store
        .list_accounts()
        .await
        .map_err(|e| ApiError::from_store(e, "account"))?)
}

/// The source a form is for: the kind it names, else the first this build knows.
fn source_for(state: &AppState, kind: &str) -> WebResult<Arc<dyn Source>> {
    let first = state
        .sources
        .iter()
        .next()
        .map(|s| s.kind())
        .unwrap_or_default();
    Ok(source_of_kind(
        state,
        if kind.is_empty() { first } else { kind },
    )?)
}

/// The page to add a connector of a source.
fn new_page(
    user: &WebUser,
    source: &dyn Source,
    v: &Values,
    accounts: &[Account],
    error: Option<&str>,
) -> Markup {
    let to = FormFor {
        action: "/connectors",
        editing: false,
        labels: source.labels(),
        fields: source.fields(),
    };
    let body = html! {
        h1 { "Add a " (to.labels.vendor) " connector" }
        (form(user, &to, v, accounts, error))
    };
    layout::page("Add a connector", user, Nav::Connectors, body)
}

#[derive(serde::Deserialize)]
pub struct KindParam {
    #[serde(default)]
    kind: String,
}

pub async fn new_form(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<KindParam>,
) -> WebResult<Response> {
    let p = &user.principal;
    p.require(p.perms.edit_integrations, "integrations-editor")?;
    let source = source_for(&state, &q.kind)?;
    let accounts = accounts_for(&state, &user).await?;
    let v = Values {
        kind: source.kind().to_owned(),
        track_errors: true,
        ..Values::default()
    };
    Ok(new_page(&user, source.as_ref(), &v, &accounts, None).into_response())
}

fn values_of(f: &FormData, fields: &[Field]) -> Values {
    Values {
        kind: f.text("kind").to_owned(),
        name: f.text("name").to_owned(),
        description: f.text("description").to_owned(),
        fields: fields
            .iter()
            .filter(|field| !field.secret)
            .map(|field| (field.name.to_owned(), f.text(field.name).to_owned()))
            .collect(),
        track_errors: f.checked("track_errors"),
        write_back: f.checked("write_back"),
        response: f.checked("response"),
        account_id: f.text("account_id").to_owned(),
    }
}

pub async fn create(
    State(state): State<AppState>,
    user: WebUser,
    body: Bytes,
) -> WebResult<Response> {
    let f = FormData::parse(&body);
    user.check_csrf(f.get("_csrf"))?;
    let source = source_for(&state, f.text("kind"))?;
    let mut v = values_of(&f, source.fields());
    source.kind().clone_into(&mut v.kind);
    let req = CreateConnector {
        kind: v.kind.clone(),
        name: v.name.clone(),
        description: Some(v.description.clone()),
        fields: fields_of(&f, source.fields(), false),
        track_errors: Some(v.track_errors),
        write_back: Some(v.write_back),
        response: Some(v.response),
        account_id: Some(v.account_id.clone()).filter(|a| !a.is_empty()),
    };
    match create_connector(&state, &user.principal, req).await {
        Ok(_) => Ok(Redirect::to("/connectors").into_response()),
        Err(ApiError::BadRequest(m) | ApiError::Conflict(m)) => {
            let accounts = accounts_for(&state, &user).await?;
            let page = new_page(&user, source.as_ref(), &v, &accounts, Some(&m));
            Ok((StatusCode::BAD_REQUEST, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn load(state: &AppState, user: &WebUser, id: &str) -> WebResult<ConnectorRecord> {
    let p = &user.principal;
    p.require(p.perms.edit_integrations, "integrations-editor")?;
    Ok(crate::api::connectors::read_one(state, p.account_id.as_deref(), id).await?)
}

fn edit_page(
    state: &AppState,
    user: &WebUser,
    c: &ConnectorRecord,
    v: &Values,
    error: Option<&str>,
) -> WebResult<Markup> {
    let source = source_for(state, &c.kind)?;
    let action = format!("/connectors/{}", c.id);
    let to = FormFor {
        action: &action,
        editing: true,
        labels: source.labels(),
        fields: source.fields(),
    };
    let body = html! {
        h1 { "Edit connector " (layout::tenant(&c.name)) }
        p { "Status: " (layout::status_badge(&c.status)) " " (layout::opt(c.status_detail.as_deref())) }
        (form(user, &to, v, &[], error))
    };
    Ok(layout::page("Edit connector", user, Nav::Connectors, body))
}

pub async fn edit_form(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let c = load(&state, &user, &id).await?;
    let v = Values {
        kind: c.kind.clone(),
        name: c.name.clone(),
        description: c.description.clone().unwrap_or_default(),
        fields: stored_fields(source_for(&state, &c.kind)?.as_ref(), &c),
        track_errors: c.track_errors,
        write_back: c.write_back,
        response: c.response,
        account_id: c.account_id.clone(),
    };
    Ok(edit_page(&state, &user, &c, &v, None)?.into_response())
}

pub async fn update(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    body: Bytes,
) -> WebResult<Response> {
    let f = FormData::parse(&body);
    user.check_csrf(f.get("_csrf"))?;
    let c = load(&state, &user, &id).await?;
    let source = source_for(&state, &c.kind)?;
    let v = values_of(&f, source.fields());
    let req = PatchConnector {
        name: (v.name != c.name).then(|| v.name.clone()),
        description: (Some(v.description.trim()) != c.description.as_deref().or(Some("")))
            .then(|| Some(v.description.clone())),
        fields: fields_of(&f, source.fields(), true),
        track_errors: (v.track_errors != c.track_errors).then_some(v.track_errors),
        write_back: (v.write_back != c.write_back).then_some(v.write_back),
        response: (v.response != c.response).then_some(v.response),
    };
    match patch_connector(&state, &user.principal, &id, req).await {
        Ok(_) => Ok(Redirect::to("/connectors").into_response()),
        Err(ApiError::BadRequest(m) | ApiError::Conflict(m)) => {
            let page = edit_page(&state, &user, &c, &v, Some(&m))?;
            Ok((StatusCode::BAD_REQUEST, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// A saved connector's fields that are not secret, as its form shows them: the base URL in the
/// kind's field for it, and the kind's stored settings.
fn stored_fields(
    source: &dyn Source,
    c: &ConnectorRecord,
) -> std::collections::BTreeMap<String, String> {
    let config: Config = serde_json::from_str(&c.config).unwrap_or_default();
    let mut out: std::collections::BTreeMap<String, String> = config
        .into_iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
        .collect();
    out.entry(source.base_url_field().to_owned())
        .or_insert_with(|| c.tenant_url.clone());
    out
}

pub async fn delete(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    body: Bytes,
) -> WebResult<Response> {
    let f = FormData::parse(&body);
    user.check_csrf(f.get("_csrf"))?;
    delete_connector(&state, &user.principal, &id).await?;
    Ok(Redirect::to("/connectors").into_response())
}

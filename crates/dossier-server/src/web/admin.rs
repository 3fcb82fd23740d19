//! Users and the audit log: for an account's admins, and for operators across accounts.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use dossier_domain::access::Role;
use dossier_store::UserRecord;
use maud::{html, Markup};

use super::layout::{self, Nav};
use super::{pairs, FormData, WebResult, WebUser};
use crate::error::ApiError;
use crate::{passwords, AppState};

fn require_admin(user: &WebUser) -> WebResult<()> {
    if user.is_admin() {
        Ok(())
    } else {
        Err(ApiError::Forbidden("this needs the admin role".into()).into())
    }
}

async fn users_page(
    state: &AppState,
    user: &WebUser,
    error: Option<&str>,
    status: StatusCode,
) -> WebResult<Response> {
    let scope = user.principal.account_id.clone();
    let users = state
        .store
        .list_users(scope.as_deref())
        .await
        .map_err(|e| ApiError::from_store(e, "user"))?;
    let accounts = if scope.is_none() {
        state
            .store
            .list_accounts()
            .await
            .map_err(|e| ApiError::from_store(e, "account"))?
    } else {
        Vec::new()
    };
    // An account admin grants the roles of the account; only an operator makes operators.
    let grantable: Vec<Role> = Role::ALL
        .iter()
        .copied()
        .filter(|r| (*r != Role::Operator || scope.is_none()) && *r != Role::Metrics)
        .collect();
    let body: Markup = html! {
        h1 { "Users" }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        table.users {
            thead { tr { th scope="col" { "Username" } th scope="col" { "Roles" } th scope="col" { "Account" } th scope="col" { "Created" } th scope="col" { "Actions" } } }
            tbody {
                @for u in &users {
                    tr {
                        td { (layout::tenant(&u.username)) }
                        td { (u.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")) }
                        td.mono { (layout::opt(u.account_id.as_deref())) }
                        td { (layout::time(u.created_at)) }
                        td {
                            @if u.username != user.username {
                                form.inline method="post" action={ "/users/" (u.id) "/delete" } {
                                    input type="hidden" name="_csrf" value=(user.csrf);
                                    button.danger type="submit" aria-label={ "Delete user " (u.username) } { "Delete" }
                                }
                            } @else { span.hint { "you" } }
                        }
                    }
                }
            }
        }
        h2 { "Add a user" }
        form.form-narrow method="post" action="/users" autocomplete="off" {
            input type="hidden" name="_csrf" value=(user.csrf);
            @if !accounts.is_empty() {
                label for="account_id" { "Account " span.hint { "(none for an operator)" } }
                select #account_id name="account_id" {
                    option value="" { "— none (operator) —" }
                    @for a in &accounts { option value=(a.id) { (a.name) } }
                }
            }
            label for="new_username" { "Username" }
            input #new_username type="text" name="username" maxlength="64" required;
            label for="new_password" { "Password " span.hint { "(at least 12 characters)" } }
            input #new_password type="password" name="password" autocomplete="new-password" minlength="12" required;
            fieldset {
                legend { "Roles" }
                @for r in &grantable {
                    label.check { input type="checkbox" name="role" value=(r.as_str()); (r.as_str()) }
                }
            }
            p { button type="submit" { "Add user" } }
        }
    };
    Ok((status, layout::page("Users", user, Nav::Users, body)).into_response())
}

/// Writes an audit line for a user change. An operator (no account) is audited under the
/// empty account id, which only operators read. The change is saved already, so a failure here
/// is logged rather than undoing it.
async fn record(
    state: &AppState,
    account_id: Option<&str>,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) {
    if let Err(e) = state
        .store
        .audit(
            account_id.unwrap_or_default(),
            actor,
            action,
            target,
            detail,
            Utc::now(),
        )
        .await
    {
        tracing::error!(error = %e, "cannot write the audit log");
    }
}

pub async fn users(State(state): State<AppState>, user: WebUser) -> WebResult<Response> {
    require_admin(&user)?;
    users_page(&state, &user, None, StatusCode::OK).await
}

pub async fn create_user(
    State(state): State<AppState>,
    user: WebUser,
    body: Bytes,
) -> WebResult<Response> {
    require_admin(&user)?;
    let form = FormData::parse(&body);
    user.check_csrf(form.get("_csrf"))?;
    let roles: Vec<Role> = form.all("role").filter_map(Role::parse).collect();
    let account_id = match &user.principal.account_id {
        Some(own) => Some(own.clone()),
        None => Some(form.text("account_id").to_owned()).filter(|a| !a.is_empty()),
    };
    let password = form.text("password").to_owned();
    let checked = passwords::check_username(form.text("username")).and_then(|username| {
        passwords::check_password(&password)?;
        if roles.is_empty() {
            return Err("roles: choose at least one".into());
        }
        if roles.contains(&Role::Operator)
            && (user.principal.account_id.is_some() || account_id.is_some())
        {
            return Err(
                "roles: only an operator makes operators, and an operator has no account".into(),
            );
        }
        if !roles.contains(&Role::Operator) && account_id.is_none() {
            return Err("account: a user who is not an operator belongs to an account".into());
        }
        Ok(username)
    });
    let username = match checked {
        Ok(u) => u,
        Err(m) => return users_page(&state, &user, Some(&m), StatusCode::BAD_REQUEST).await,
    };
    let hash = match tokio::task::spawn_blocking(move || passwords::hash(&password)).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return Err(ApiError::Internal(e).into()),
        Err(e) => return Err(ApiError::Internal(e.to_string()).into()),
    };
    let rec = UserRecord {
        id: String::new(),
        account_id: account_id.clone(),
        username,
        password_hash: hash,
        roles,
        created_at: Utc::now(),
    };
    match state.store.create_user(&rec).await {
        Ok(created) => {
            let roles: Vec<&str> = created.roles.iter().map(|r| r.as_str()).collect();
            record(
                &state,
                created.account_id.as_deref(),
                &user.principal.actor,
                "user_created",
                &created.username,
                &format!("roles {}", roles.join(", ")),
            )
            .await;
            Ok(Redirect::to("/users").into_response())
        }
        Err(dossier_store::StoreError::Conflict(m) | dossier_store::StoreError::Invalid(m)) => {
            users_page(&state, &user, Some(&m), StatusCode::BAD_REQUEST).await
        }
        Err(e) => Err(ApiError::from_store(e, "user").into()),
    }
}

pub async fn delete_user(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    body: Bytes,
) -> WebResult<Response> {
    require_admin(&user)?;
    let form = FormData::parse(&body);
    user.check_csrf(form.get("_csrf"))?;
    let scope = user.principal.account_id.clone();
    let target = state
        .store
        .list_users(scope.as_deref())
        .await
        .map_err(|e| ApiError::from_store(e, "user"))?
        .into_iter()
        .find(|u| u.id == id)
        .ok_or(ApiError::NotFound("user"))?;
    if target.username == user.username {
        return Err(ApiError::BadRequest("you cannot delete yourself".into()).into());
    }
    state
        .store
        .delete_user(scope.as_deref(), &id)
        .await
        .map_err(|e| ApiError::from_store(e, "user"))?;
    record(
        &state,
        target.account_id.as_deref(),
        &user.principal.actor,
        "user_deleted",
        &target.username,
        "",
    )
    .await;
    Ok(Redirect::to("/users").into_response())
}

/// The audit page's filters, as its URL carries them.
#[derive(Debug, Clone, Default)]
struct AuditFilters {
    actor: String,
    action: String,
    story: String,
    before: Option<i64>,
}

impl AuditFilters {
    fn parse(raw: &str) -> Result<Self, ApiError> {
        let mut f = Self::default();
        for (k, v) in pairs(raw) {
            let v = v.trim().to_owned();
            if v.chars().count() > 200 {
                return Err(ApiError::BadRequest(format!("{k}: at most 200 characters")));
            }
            match k.as_str() {
                "actor" => f.actor = v,
                "action" => f.action = v,
                "story" => f.story = v,
                "before" if !v.is_empty() => {
                    f.before = Some(v.parse::<i64>().map_err(|_| {
                        ApiError::BadRequest("before: not a position in the log".into())
                    })?);
                }
                _ => {}
            }
        }
        Ok(f)
    }

    fn is_filtered(&self) -> bool {
        !(self.actor.is_empty() && self.action.is_empty() && self.story.is_empty())
    }

    /// The filters as a query string (without `before` unless `paged`).
    fn query_string(&self, paged: bool) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("story", &self.story),
        ] {
            if !v.is_empty() {
                out.append_pair(k, v);
            }
        }
        if let (true, Some(b)) = (paged, self.before) {
            out.append_pair("before", &b.to_string());
        }
        out.finish()
    }

    /// This page, narrowed to one story.
    fn with_story(&self, story: &str) -> String {
        let f = Self {
            story: story.to_owned(),
            before: None,
            ..self.clone()
        };
        format!("/audit?{}", f.query_string(false))
    }
}

/// Words for the actions of the log a filter may pick (others are typed).
const AUDIT_ACTIONS: &[&str] = &[
    "signed_in",
    "sign_in_refused",
    "signed_out",
    "status_changed",
    "close_reason_changed",
    "verdict_changed",
    "severity_changed",
    "assignee_changed",
    "comment_added",
    "comment_deleted",
    "response",
    "response_failed",
    "connector_created",
    "connector_changed",
    "connector_deleted",
    "user_created",
    "user_deleted",
];

pub async fn audit(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
) -> WebResult<Response> {
    require_admin(&user)?;
    let f = AuditFilters::parse(raw.as_deref().unwrap_or_default())?;
    let text = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
    // The reader's own account bounds every filter: an admin never reads past it.
    let entries = state
        .store
        .list_audit(&dossier_store::AuditQuery {
            account_id: user.principal.account_id.clone(),
            actor: text(&f.actor),
            action: text(&f.action),
            story_id: text(&f.story),
            before: f.before,
            limit: 100,
        })
        .await
        .map_err(|e| ApiError::from_store(e, "audit log"))?;
    let qs = f.query_string(false);
    let body = html! {
        h1 { "Audit log" }
        p.hint { "Who did what, and when: sign-ins, story changes, comments, connectors and users." }
        form.filters method="get" action="/audit" aria-label="Filter the audit log" {
            div { label for="actor" { "Who" } input #actor type="text" name="actor" value=(f.actor) maxlength="200"; }
            div {
                label for="action" { "Action" }
                input #action type="text" name="action" value=(f.action) list="audit-actions" maxlength="200";
                datalist #audit-actions {
                    @for a in AUDIT_ACTIONS { option value=(a) { (a.replace('_', " ")) } }
                }
            }
            div { label for="story" { "Story ID" } input #story type="text" name="story" value=(f.story) maxlength="200"; }
            div.actions {
                button type="submit" { "Apply filters" }
                a href="/audit" { "Reset" }
            }
        }
        @if entries.is_empty() {
            div.empty role="status" {
                @if f.is_filtered() {
                    p { strong { "No entries match these filters." } " " a href="/audit" { "Show the whole log" } "." }
                } @else if f.before.is_some() {
                    p { "Nothing older." }
                } @else {
                    p { "Nothing recorded yet. Sign-ins, story changes, comments and changes to connectors and users appear here." }
                }
            }
        } @else {
            table.audit {
                thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Action" } th scope="col" { "Target" } th scope="col" { "Detail" } } }
                tbody {
                    @for e in &entries {
                        tr {
                            td { (layout::time(e.at)) }
                            td { (layout::tenant(&e.actor)) }
                            td { (e.action.replace('_', " ")) }
                            td.mono {
                                @if let Some(story) = &e.story_id {
                                    a href={ "/stories/" (story) } { (story) }
                                    " "
                                    a.filter href=(f.with_story(story)) { "only this story" }
                                } @else { (layout::tenant(&e.target)) }
                            }
                            td { (layout::tenant(&e.detail)) }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                @if f.before.is_some() { a href={ "/audit" @if !qs.is_empty() { "?" (qs) } } { "« Newest" } }
                @if entries.len() == 100 {
                    @if let Some(last) = entries.last() {
                        a rel="next" href={ "/audit?" (AuditFilters { before: Some(last.seq), ..f.clone() }.query_string(true)) } { "Older »" }
                    }
                }
            }
        }
    };
    Ok(layout::page("Audit log", &user, Nav::Audit, body).into_response())
}

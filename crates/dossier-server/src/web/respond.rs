//! Response actions from the story page: the "Respond" section's buttons lead to a
//! confirmation that says what the action will touch, which performs it and shows the tenant's
//! answer for each threat (see [`crate::respond`]).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dossier_source::{ResponseAction, ResponseScope};
use maud::{html, Markup};

use super::layout::{self, Nav};
use super::{FormData, WebError, WebResult, WebUser};
use crate::error::ApiError;
use crate::respond::{perform, plan, Plan};
use crate::AppState;

/// The "Respond" section of the story page, for a user who may act on a story whose connector
/// allows response actions: one button per action, each leading to its confirmation.
pub(super) fn section(story_id: &str) -> Markup {
    html! {
        section #respond aria-labelledby="respond-title" {
            h2 #respond-title { "Respond" }
            p.hint { "Acts on every threat of the story in its producer's console. Each action asks for confirmation first, saying what it will touch." }
            form.inline method="get" action={ "/stories/" (story_id) "/respond" } {
                @for a in ResponseAction::ALL {
                    button.secondary type="submit" name="action" value=(a.as_str()) id={ "action-" (a.as_str()) } { (a.label()) }
                    " "
                }
            }
        }
    }
}

fn parse_action(form: Option<&str>) -> Result<ResponseAction, WebError> {
    form.and_then(ResponseAction::parse).ok_or_else(|| {
        WebError::Api(ApiError::BadRequest(
            "action: not a response action (kill, quarantine, remediate, rollback, disconnect, reconnect, blocklist, mark_true_positive, mark_false_positive)".into(),
        ))
    })
}

fn back(story_id: &str) -> Markup {
    html! { p { a href={ "/stories/" (story_id) "#respond" } { "« Back to the story" } } }
}

/// What the action will touch, and the form that performs it.
pub async fn confirm(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> WebResult<Response> {
    let pairs = super::pairs(raw.as_deref().unwrap_or_default());
    let asked = pairs
        .iter()
        .find(|(k, _)| k == "action")
        .map(|(_, v)| v.as_str());
    let action = parse_action(asked)?;
    let plan = match plan(&state, &user.principal, &id).await {
        Ok(plan) => plan,
        Err(ApiError::Conflict(why)) => return Ok(refused(&user, &id, action, &why)),
        Err(e) => return Err(e.into()),
    };
    let body = html! {
        (back(&id))
        section aria-labelledby="confirm-title" {
            h1 #confirm-title { (action.label()) "?" }
            p.notice #touches {
                "This will " (action.verb()) " for " strong { (plan.touches()) } ", in "
                (connectors_named(&plan)) "."
            }
            @if !plan.refused.is_empty() {
                p.notice { (plan.refused.len()) " threat(s) will not be touched: " (plan.refused[0].1) "." }
            }
            form method="post" action={ "/stories/" (id) "/respond" } {
                input type="hidden" name="_csrf" value=(user.csrf);
                input type="hidden" name="action" value=(action.as_str());
                @if action == ResponseAction::Blocklist {
                    label for="scope" { "Blocklist at" }
                    select #scope name="scope" {
                        option value="site" selected { "the site of each device" }
                        option value="account" { "the whole account" }
                    }
                }
                p {
                    button #confirm type="submit" { "Confirm: " (action.label()) }
                    " " a href={ "/stories/" (id) "#respond" } { "Cancel" }
                }
            }
        }
    };
    Ok(layout::page(action.label(), &user, Nav::Stories, body).into_response())
}

fn connectors_named(plan: &Plan) -> String {
    plan.groups
        .iter()
        .map(|(c, _)| c.name.clone())
        .collect::<Vec<_>>()
        .join(", ")
}

fn refused(user: &WebUser, id: &str, action: ResponseAction, why: &str) -> Response {
    let body = html! {
        (back(id))
        h1 { (action.label()) }
        p.error role="alert" { (why) }
    };
    (
        StatusCode::CONFLICT,
        layout::page(action.label(), user, Nav::Stories, body),
    )
        .into_response()
}

/// Performs the confirmed action and shows each threat's answer.
pub async fn perform_form(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    body: Bytes,
) -> WebResult<Response> {
    let form = FormData::parse(&body);
    user.check_csrf(form.get("_csrf"))?;
    let action = parse_action(form.get("action"))?;
    let scope = match form.get("scope") {
        Some("account") => ResponseScope::Account,
        _ => ResponseScope::Site,
    };
    let plan = match plan(&state, &user.principal, &id).await {
        Ok(plan) => plan,
        Err(ApiError::Conflict(why)) => return Ok(refused(&user, &id, action, &why)),
        Err(e) => return Err(e.into()),
    };
    let touches = plan.touches();
    let answers = perform(&state, &user.principal, plan, action, scope).await?;
    let done = answers.iter().filter(|a| a.ok).count();
    let body = html! {
        (back(&id))
        section aria-labelledby="result-title" {
            h1 #result-title { (action.label()) }
            @if done == answers.len() {
                p.ok role="status" { "Done for " (touches) ". The story's timeline and the audit log record it." }
            } @else {
                p.error role="alert" { "Done for " (done) " of " (answers.len()) " threat(s); the tenant's reasons are below. The story's timeline and the audit log record it." }
            }
            table.results {
                thead { tr { th { "Threat" } th { "Result" } th { "The tenant's answer" } } }
                tbody {
                    @for a in &answers {
                        tr {
                            td { code { (layout::tenant(&a.incident_id)) } }
                            td { @if a.ok { "done" } @else { "failed" } }
                            td { (layout::tenant(&a.detail)) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(action.label(), &user, Nav::Stories, body).into_response())
}

//! Changing many stories from the list: the chosen stories (or every story the filters
//! select), one change, a confirmation that states the count, then the outcome. The change is
//! the API's bulk change ([`crate::api::bulk`]), under the same checks.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dossier_domain::story::{Severity, Status, Verdict};
use maud::{html, Markup};

use super::layout::{self, Nav};
use super::stories::{count_text, query_for, ListState};
use super::story::parse_choice;
use super::{FormData, WebResult, WebUser};
use crate::api::bulk::{acting_account, apply, matching, BulkResult};
use crate::api::stories::PatchStory;
use crate::error::ApiError;
use crate::AppState;

/// The change a bulk form asks for, as the API takes it.
struct Asked {
    patch: PatchStory,
    comment: Option<String>,
}

impl Asked {
    fn parse(form: &FormData) -> WebResult<Self> {
        let assignee = match form.text("assignee").trim() {
            "" => None,
            "-" => Some(None),
            name => Some(Some(name.to_owned())),
        };
        let text = |k: &str| Some(form.text(k).trim().to_owned()).filter(|t| !t.is_empty());
        Ok(Asked {
            patch: PatchStory {
                status: parse_choice("status", form.get("status"), Status::parse)?,
                verdict: parse_choice("verdict", form.get("verdict"), Verdict::parse)?.map(Some),
                severity: parse_choice("severity", form.get("severity"), Severity::parse)?
                    .map(Some),
                assignee,
                close_reason: text("close_reason"),
            },
            comment: text("comment"),
        })
    }

    fn is_empty(&self) -> bool {
        let p = &self.patch;
        p.status.is_none()
            && p.verdict.is_none()
            && p.severity.is_none()
            && p.assignee.is_none()
            && p.close_reason.is_none()
            && self.comment.is_none()
    }

    /// The form's fields again, for the confirmation to send.
    fn hidden(&self) -> Markup {
        let p = &self.patch;
        let field = |name: &str, v: Option<&str>| {
            html! { @if let Some(v) = v { input type="hidden" name=(name) value=(v); } }
        };
        let assignee = match &p.assignee {
            None => None,
            Some(None) => Some("-"),
            Some(Some(n)) => Some(n.as_str()),
        };
        html! {
            (field("status", p.status.map(Status::as_str)))
            (field("verdict", p.verdict.flatten().map(Verdict::as_str)))
            (field("severity", p.severity.flatten().map(Severity::as_str)))
            (field("assignee", assignee))
            (field("close_reason", p.close_reason.as_deref()))
            (field("comment", self.comment.as_deref()))
        }
    }

    /// What will change, in words.
    fn described(&self) -> Markup {
        let p = &self.patch;
        html! {
            dl.facts {
                @if let Some(s) = p.status { dt { "Status" } dd { (s.label()) } }
                @if let Some(Some(v)) = p.verdict { dt { "Verdict" } dd { (v.label()) } }
                @if let Some(Some(v)) = p.severity { dt { "Severity" } dd { (v.label()) } }
                @match &p.assignee {
                    Some(None) => { dt { "Owner" } dd { "Nobody" } }
                    Some(Some(n)) => { dt { "Owner" } dd { (layout::tenant(n)) } }
                    None => {}
                }
                @if let Some(r) = &p.close_reason { dt { "Close reason" } dd { (layout::tenant(r)) } }
                @if let Some(c) = &self.comment { dt { "Comment" } dd { (layout::tenant(c)) } }
            }
        }
    }
}

/// `POST /stories/bulk`: without `confirm`, shows what would change and how many stories;
/// with it, makes the change and shows the outcome.
pub async fn review(
    State(state): State<AppState>,
    user: WebUser,
    body: Bytes,
) -> WebResult<Response> {
    let form = FormData::parse(&body);
    user.check_csrf(form.get("_csrf"))?;
    let view_url = form.text("view");
    let view = ListState::parse(
        view_url
            .strip_prefix("/stories")
            .unwrap_or_default()
            .trim_start_matches('?'),
    );
    let back = view.url();
    let requested = Some(view.account.as_str()).filter(|a| !a.is_empty());
    let account_id = acting_account(&state, &user.principal, requested).await?;
    let asked = Asked::parse(&form)?;
    if asked.is_empty() {
        return Ok(refused(
            &user,
            &back,
            "Nothing to change: choose a status, a verdict, a severity or an owner, or write a comment.",
        ));
    }
    let change = asked.patch.change(&user.principal)?;
    let all = form.checked("all");
    let ids: Vec<String> = if all {
        let q = query_for(&view, &user, Some(account_id.clone())).map_err(ApiError::BadRequest)?;
        matching(&state, q).await?
    } else {
        let mut ids: Vec<String> = form
            .all("id")
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .collect();
        ids.sort();
        ids.dedup();
        if ids.len() > crate::api::bulk::MAX_BULK {
            return Err(ApiError::BadRequest(format!(
                "id: at most {} stories at once",
                crate::api::bulk::MAX_BULK
            ))
            .into());
        }
        ids
    };
    if ids.is_empty() {
        let why = if all {
            "No story matches these filters any more; nothing was changed."
        } else {
            "Choose at least one story with its box on the list, or all stories matching the filters."
        };
        return Ok(refused(&user, &back, why));
    }
    // With "all matching", the count confirmed must still be the count: stories that came in
    // since, or left the filter, get a new confirmation rather than a change nobody saw.
    let expected = form.text("expect");
    let moved = all && !expected.is_empty() && expected != ids.len().to_string();
    if !form.checked("confirm") || moved {
        let body = confirmation(
            &user,
            view_url,
            &back,
            &asked,
            &ids,
            all,
            moved.then_some(expected),
        );
        return Ok(layout::page("Change stories", &user, Nav::Stories, body).into_response());
    }
    let result = apply(
        &state,
        &user.principal,
        &account_id,
        &ids,
        &change,
        asked.comment.as_deref(),
    )
    .await?;
    Ok(layout::page(
        "Stories changed",
        &user,
        Nav::Stories,
        outcome(&back, &result),
    )
    .into_response())
}

fn refused(user: &WebUser, back: &str, why: &str) -> Response {
    let body = html! {
        h1 { "Change stories" }
        p.error role="alert" { (why) }
        p { a href=(back) { "Back to the list" } }
    };
    (
        StatusCode::BAD_REQUEST,
        layout::page("Change stories", user, Nav::Stories, body),
    )
        .into_response()
}

fn confirmation(
    user: &WebUser,
    view_url: &str,
    back: &str,
    asked: &Asked,
    ids: &[String],
    all: bool,
    was: Option<&str>,
) -> Markup {
    let n = ids.len() as u64;
    html! {
        h1 { "Change " (count_text(n)) "?" }
        @if let Some(was) = was {
            p.notice role="status" { "The filters now select " (count_text(n)) " (" (was) " when you reviewed the change). Review it again." }
        }
        p { "Each of the " (count_text(n)) " takes this change, or none of it if it cannot (a closed story needs a verdict, say). Each story's timeline and the audit log record it." }
        (asked.described())
        @if !all && ids.len() <= 20 {
            p.hint { "Stories: "
                @for (i, id) in ids.iter().enumerate() {
                    @if i > 0 { ", " }
                    a.mono href={ "/stories/" (id) } { (id) }
                }
            }
        }
        form method="post" action="/stories/bulk" {
            input type="hidden" name="_csrf" value=(user.csrf);
            input type="hidden" name="view" value=(view_url);
            input type="hidden" name="confirm" value="1";
            @if all {
                input type="hidden" name="all" value="1";
                input type="hidden" name="expect" value=(n);
            } @else {
                @for id in ids { input type="hidden" name="id" value=(id); }
            }
            (asked.hidden())
            div.actions {
                button type="submit" { "Change " (count_text(n)) }
                " "
                a href=(back) { "Cancel" }
            }
        }
    }
}

fn outcome(back: &str, r: &BulkResult) -> Markup {
    html! {
        h1 { "Stories changed" }
        p.ok role="status" {
            "Changed " (count_text(r.changed as u64)) "."
            @if r.unchanged > 0 { " " (count_text(r.unchanged as u64)) " already were as asked." }
        }
        @if !r.failed.is_empty() {
            p.error role="alert" { (count_text(r.failed.len() as u64)) " took none of the change:" }
            ul {
                @for f in &r.failed {
                    li { a.mono href={ "/stories/" (f.id) } { (f.id) } ": " (f.error) }
                }
            }
        }
        p { a href=(back) { "Back to the list" } }
    }
}

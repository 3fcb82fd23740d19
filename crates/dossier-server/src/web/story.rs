//! The story page: everything an analyst needs to decide, and the actions to record it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use dossier_domain::entities::{Sources, StoryEntities};
use dossier_domain::next_steps::NextStep;
use dossier_domain::story::{Severity, Status, Verdict};
use dossier_domain::Incident;
use dossier_source::Source;
use dossier_store::StoryDetail;
use maud::{html, Markup, PreEscaped};

use super::layout::{self, Nav};
use super::vendor::VendorPanel;
use super::{FormData, WebError, WebResult, WebUser};
use crate::api::stories::{add_comment, get_story, patch_story, remove_comment, PatchStory};
use crate::auth::{licensed_account, may_act};
use crate::error::ApiError;
use crate::AppState;

async fn can_act(state: &AppState, user: &WebUser, d: &StoryDetail) -> Result<(), String> {
    let account = licensed_account(state, &d.story.account_id)
        .await
        .map_err(|e| e.to_string())?;
    may_act(&user.principal, &account).map_err(|e| e.to_string())
}

/// What the page says above the story after a form: why it was refused, or that it was saved.
enum Said {
    Refused(String),
    Saved(&'static str),
}

pub async fn page(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> WebResult<Response> {
    let pairs = super::pairs(raw.as_deref().unwrap_or_default());
    // The incidents after this cursor, instead of the first page ("next incidents").
    let after = pairs
        .iter()
        .find(|(k, _)| k == "incidents")
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty());
    // One incident's notes and timeline in its producer's console, beside Dossier's timeline.
    let vendor = pairs
        .iter()
        .find(|(k, _)| k == "vendor")
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty());
    // After a form, the redirect says what happened (the address only carries known words).
    let saved = pairs
        .into_iter()
        .find(|(k, _)| k == "saved")
        .and_then(|(_, v)| match v.as_str() {
            "triage" => Some("Saved. The timeline and the audit log record the change."),
            "comment" => Some("Comment added."),
            "none" => Some("Nothing to save: the story already is as the form says."),
            _ => None,
        })
        .map(Said::Saved);
    let shown = Show {
        after: after.as_deref(),
        vendor: vendor.as_deref(),
    };
    render_page(&state, &user, &id, saved, StatusCode::OK, shown).await
}

async fn render(
    state: &AppState,
    user: &WebUser,
    id: &str,
    said: Option<Said>,
    status: StatusCode,
) -> WebResult<Response> {
    render_page(state, user, id, said, status, Show::default()).await
}

/// What the address asks the page to show besides the story.
#[derive(Default, Clone, Copy)]
struct Show<'a> {
    /// The incidents after this cursor, instead of the first page.
    after: Option<&'a str>,
    /// The producer's own notes and timeline of this incident.
    vendor: Option<&'a str>,
}

/// Which incidents the page shows: the detail's first page, or the page after a cursor.
struct Shown {
    incidents: Vec<dossier_store::IncidentView>,
    next_cursor: Option<String>,
    /// Not the first page: the page links back to it.
    later: bool,
}

async fn render_page(
    state: &AppState,
    user: &WebUser,
    id: &str,
    said: Option<Said>,
    status: StatusCode,
    show: Show<'_>,
) -> WebResult<Response> {
    let after = show.after;
    let mut d = get_story(state, &user.principal, id).await?;
    if d.story.id != id {
        // Correlation replaced this story id; its successor holds the evidence.
        return Ok(Redirect::to(&format!("/stories/{}", d.story.id)).into_response());
    }
    let shown = match after {
        None => Shown {
            incidents: std::mem::take(&mut d.incidents),
            next_cursor: d.incidents_next_cursor.clone(),
            later: false,
        },
        Some(cursor) => {
            // The story was read in its own account above: the page is read in that account.
            let page = state
                .store
                .story_incidents(
                    Some(&d.story.account_id),
                    &d.story.id,
                    Some(cursor),
                    dossier_store::STORY_INCIDENTS_FIRST_PAGE,
                )
                .await
                .map_err(|e| ApiError::from_store(e, "story"))?;
            Shown {
                incidents: page.items,
                next_cursor: page.next_cursor,
                later: true,
            }
        }
    };
    let act = can_act(state, user, &d).await;
    // Per connector, its console link for a record and what the link says, from its source.
    let connectors: HashMap<String, Console> = state
        .store
        .list_connectors(Some(&d.story.account_id))
        .await
        .map_err(|e| ApiError::from_store(e, "connector"))?
        .into_iter()
        .filter_map(|c| {
            let source = state.sources.by_kind(&c.kind)?.clone();
            Some((
                c.id,
                Console {
                    source,
                    tenant_url: c.tenant_url,
                    response: c.response,
                },
            ))
        })
        .collect();
    // Who may own the story: the users of its account.
    let owners: Vec<String> = if act.is_ok() {
        state
            .store
            .list_users(Some(&d.story.account_id))
            .await
            .map_err(|e| ApiError::from_store(e, "user"))?
            .into_iter()
            .map(|u| u.username)
            .collect()
    } else {
        Vec::new()
    };
    let vendor = match show.vendor {
        None => None,
        Some(incident_id) => {
            Some(VendorPanel::read(state, &user.principal, &d.story.id, incident_id).await)
        }
    };
    let kin = kin(&d);
    let body = story_body(
        user,
        &d,
        &shown,
        &act,
        said.as_ref(),
        &connectors,
        &owners,
        &kin,
        vendor.as_ref(),
    );
    let title = d.story.indication.clone().unwrap_or_else(|| "Story".into());
    Ok((status, layout::page(&title, user, Nav::Stories, body)).into_response())
}

/// Where a connector's records open in its producer's console.
struct Console {
    source: Arc<dyn Source>,
    tenant_url: String,
    /// Allows response actions.
    response: bool,
}

#[expect(
    clippy::too_many_arguments,
    reason = "the page's parts, each read once; a struct would only name them again"
)]
fn story_body(
    user: &WebUser,
    d: &StoryDetail,
    shown: &Shown,
    act: &Result<(), String>,
    said: Option<&Said>,
    connectors: &HashMap<String, Console>,
    owners: &[String],
    kin: &Kin,
    vendor: Option<&VendorPanel>,
) -> Markup {
    html! {
        (story_head(d, said))
        (next_steps_section(&d.next_steps))
        (fact_panels(d))
        section aria-labelledby="act-title" {
            h2 #act-title { "Triage" }
            @match act {
                Ok(()) => (actions(user, d, owners)),
                Err(why) => p.notice { "You can read this story but not act on it: " (why) },
            }
        }
        @if act.is_ok() && shown.incidents.iter().any(|i| connectors.get(&i.connector_id).is_some_and(|c| c.response)) {
            (super::respond::section(&d.story.id))
        }
        (entities_section(&d.entities))
        (evidence_section(d, connectors))
        (incidents_section(d, shown, connectors))
        (mitre_section(d))
        (timeline_section(d, vendor))
        (comments_section(user, d, act.is_ok()))
        (related_section(d, kin))
        (raw_section(shown))
    }
}

/// The story's name, summary and criticality, and the error of the last action if any.
fn story_head(d: &StoryDetail, said: Option<&Said>) -> Markup {
    let s = &d.story;
    html! {
        p { a href="/stories" { "« Stories" } }
        section.story-head aria-labelledby="story-title" {
            h1 #story-title { (layout::tenant(s.indication.as_deref().unwrap_or("Unnamed threat"))) }
            p.summary { (d.summary) }
            p {
                strong { "Criticality " } (layout::criticality(s.criticality)) " of 10 "
                (layout::status_badge(s.status.as_str()))
            }
            ul.reasons aria-label="Why this criticality" {
                @for r in &d.criticality_detail.reasons { li { (r) } }
            }
        }
        @match said {
            Some(Said::Refused(e)) => p.error role="alert" { (e) },
            Some(Said::Saved(m)) => p.ok role="status" { (m) },
            None => {}
        }
    }
}

/// What to do now, each step with its reason; a step a response action carries out links to
/// that action's button in the page's response section (`#action-<name>`).
fn next_steps_section(steps: &[NextStep]) -> Markup {
    if steps.is_empty() {
        return html! {};
    }
    html! {
        section.next-steps aria-labelledby="next-steps-title" {
            h2 #next-steps-title { "Recommended next steps" }
            ol {
                @for step in steps {
                    li {
                        @match step.action {
                            Some(a) => a href={ "#action-" (a.as_str()) } data-action=(a.as_str()) { (step.text) },
                            None => span { (step.text) },
                        }
                        " " span.reason { "— " (step.reason) }
                    }
                }
            }
        }
    }
}

/// The account an incident's process ran as, where the producer names it without the process.
fn process_user(n: &Incident) -> Option<&str> {
    n.context
        .users
        .iter()
        .find(|u| u.role == dossier_domain::context::UserRole::Process)
        .map(|u| u.name.as_str())
}

/// "from 3 incidents", with the vendor ids the entity comes from on hover (the first 20; an
/// ellipsis says there are more).
fn sources(s: &Sources) -> Markup {
    let ids = s.incident_ids.join(", ");
    let more = s.incident_count as usize > s.incident_ids.len();
    let noun = if s.incident_count == 1 {
        "incident"
    } else {
        "incidents"
    };
    html! {
        span.from title=(if more { format!("{ids}, …") } else { ids }) {
            "from " (s.incident_count) " " (noun)
        }
    }
}

/// Everything the story's incidents name: the device, users, files, processes, storylines of
/// fileless incidents and indicators, each with the incidents it comes from.
fn entities_section(e: &StoryEntities) -> Markup {
    html! {
        section.entities aria-labelledby="entities-title" {
            h2 #entities-title { "Entities" }
            @if let Some(d) = &e.device {
                h3 { "Device" }
                ul { li {
                    (layout::opt(d.name.as_deref()))
                    @if let Some(os) = &d.os { " · " (os) }
                    @if let Some(n) = &d.network_status { " · network " strong.network { (n) } }
                    @if !d.ips.is_empty() { " · " span.mono { (d.ips.join(", ")) } }
                    " " (sources(&d.sources))
                } }
            }
            @if !e.users.is_empty() {
                h3 { "Users" }
                ul { @for u in &e.users { li {
                    span.mono { (u.name) } " ("
                    (u.roles.iter().map(|r| r.label()).collect::<Vec<_>>().join(", ")) ") "
                    (sources(&u.sources))
                } } }
            }
            @if !e.files.is_empty() {
                h3 { "Files" }
                ul { @for f in &e.files { li {
                    (layout::opt(f.name.as_deref()))
                    @if let Some(p) = &f.path { " " span.mono { (p) } }
                    @if let Some(s) = &f.signer { " · signed by " (s) }
                    @for (label, h) in [("SHA-1", &f.sha1), ("SHA-256", &f.sha256), ("MD5", &f.md5)] {
                        @if let Some(h) = h { br; span.hint { (label) " " } span.mono { (h) } }
                    }
                    br; (sources(&f.sources))
                } } }
            }
            @if !e.processes.is_empty() {
                h3 { "Processes" }
                ul { @for p in &e.processes { li {
                    (layout::opt(p.name.as_deref()))
                    @if let Some(parent) = &p.parent { " · parent " (parent) }
                    @if let Some(u) = &p.user { " · as " span.mono { (u) } }
                    @if let Some(c) = &p.command_line { br; code.cmdline { (c) } }
                    br; (sources(&p.sources))
                } } }
            }
            @if !e.storylines.is_empty() {
                h3 { "Storylines" }
                ul { @for s in &e.storylines { li {
                    span.mono { (s.id) } " " (sources(&s.sources))
                } } }
            }
            @if !e.indicators.is_empty() {
                h3 { "Indicators" }
                ul { @for i in &e.indicators { li {
                    @if let Some(c) = &i.category { strong { (c) } ": " }
                    (layout::opt(i.description.as_deref()))
                    @if !i.techniques.is_empty() { " · " span.mono { (i.techniques.join(", ")) } }
                    " " (sources(&i.sources))
                } } }
            }
        }
    }
}

/// The summary, device and file facts; device and file details are the latest incident's.
fn fact_panels(d: &StoryDetail) -> Markup {
    let s = &d.story;
    // The store reads the latest incident wherever it is among the story's pages.
    let latest = d.latest.as_ref().and_then(|i| i.normalised.as_ref());
    let device = latest.map(|n| &n.device);
    let file = latest.map(|n| &n.file);
    html! {
        div.panels {
            section aria-labelledby="summary-title" {
                h2 #summary-title { "Summary" }
                dl.facts {
                    dt { "Story ID" } dd.mono { (s.id) }
                    dt { "Indication" } dd { (layout::opt(s.indication.as_deref())) }
                    dt { "Status" } dd { (s.status.label()) }
                    dt { "Verdict" } dd { (layout::opt_word(s.verdict.map(Verdict::label))) }
                    dt { "Severity" } dd { (layout::opt_word(s.severity.map(Severity::label))) }
                    dt { "Producer" } dd { (s.vendor) " (" (s.producer) ")" }
                    dt { "Incidents" } dd { (s.incident_count) }
                    dt { "Duration" } dd { (layout::duration(s.last_signal_at - s.first_signal_at)) }
                    dt { "First signal" } dd { (layout::time(s.first_signal_at)) }
                    dt { "Last signal" } dd { (layout::time(s.last_signal_at)) }
                    dt { "Created" } dd { (layout::time(s.created_at)) }
                    dt { "Updated" } dd { (layout::time(s.updated_at)) }
                    // The latest incident's: the summary and the reasons speak for them all.
                    dt { "Latest mitigation" } dd { @match s.mitigation_status.as_deref().filter(|m| !m.is_empty()) {
                        Some(m) => span title=(m) { (dossier_domain::display::humanize(m)) },
                        None => span.none { "—" },
                    } }
                }
            }
            section aria-labelledby="device-title" {
                h2 #device-title { "Device" }
                dl.facts {
                    dt { "Name" } dd { (layout::opt(s.device.name.as_deref())) }
                    dt { "Device ID" } dd.mono { (layout::opt(s.device.agent_uuid.as_deref())) }
                    dt { "OS" } dd { (layout::opt(device.and_then(|d| d.os_name.as_deref().or(d.os_type.as_deref())))) }
                    dt { "IPs" } dd { (layout::opt(device.map(|d| d.ips.join(", ")).as_deref())) }
                    dt { "Site" } dd { (layout::opt(device.and_then(|d| d.site.as_deref()))) }
                    dt { "Group" } dd { (layout::opt(device.and_then(|d| d.group.as_deref()))) }
                    @if let Some(network) = device.and_then(|d| d.network_status.as_deref()) {
                        dt { "Network" } dd #network-status { (layout::tenant(network)) }
                    }
                }
            }
            @if let Some(n) = latest.filter(|n| n.is_fileless) {
                // A fileless threat has no file: SentinelOne names the threat where the file
                // would be. Its storyline and the process it ran in stand for it.
                section aria-labelledby="file-title" {
                    h2 #file-title { "Storyline and process" }
                    dl.facts {
                        dt { "Storyline" } dd.mono { (layout::opt(n.storyline.as_deref())) }
                        dt { "Process" } dd { (layout::opt(n.context.processes.first().and_then(|p| p.name.as_deref()))) }
                        dt { "Command line" } dd.mono { (layout::opt(n.context.processes.first().and_then(|p| p.command_line.as_deref()))) }
                        dt { "User" } dd { (layout::opt(n.context.processes.first().and_then(|p| p.user.as_deref()).or_else(|| process_user(n)))) }
                    }
                }
            } @else {
            section aria-labelledby="file-title" {
                h2 #file-title { "File" }
                dl.facts {
                    dt { "Name" } dd { (layout::opt(s.file.name.as_deref())) }
                    dt { "Path" } dd.mono { (layout::opt(s.file.path.as_deref())) }
                    dt { "SHA-1" } dd.mono { (layout::opt(s.file.sha1.as_deref())) }
                    dt { "SHA-256" } dd.mono { (layout::opt(s.file.sha256.as_deref())) }
                    dt { "MD5" } dd.mono { (layout::opt(s.file.md5.as_deref())) }
                    dt { "Signer" } dd { (layout::opt(file.and_then(|f| f.signer.as_deref()))) }
                    // A fileless threat reports size 0: that is no file, not an empty one.
                    dt { "Size" } dd { (layout::opt(file.and_then(|f| f.size).filter(|n| *n > 0).map(|n| format!("{n} bytes")).as_deref())) }
                }
            }
            }
        }
    }
}

/// What the latest incident's producer alone says of it (a process tree, an alert's other
/// entities, the vendor's own tactic ids), as its source reads it; nothing when it says nothing
/// more than the panels.
fn evidence_section(d: &StoryDetail, connectors: &HashMap<String, Console>) -> Markup {
    let Some((latest, console)) = d
        .latest
        .as_ref()
        .and_then(|i| Some((i, connectors.get(&i.connector_id)?)))
    else {
        return html! {};
    };
    // Read as ingest read it: a lone surrogate escape does not hide the evidence.
    let evidence = console
        .source
        .evidence(&dossier_source::mapping::lossy_surrogates(latest.raw.get()));
    if evidence.is_empty() {
        return html! {};
    }
    html! {
        section aria-labelledby="evidence-title" {
            h2 #evidence-title { "Evidence from " (console.source.labels().vendor) " " span.hint { "(latest " (console.source.labels().record_name) ", " (latest.id) ")" } }
            dl.facts {
                @for e in &evidence {
                    dt { (e.label) } dd.mono { (e.value) }
                }
            }
        }
    }
}

/// Each incident of the page in a row, with a link to it in its tenant's console while the
/// connector is there, and links to the next page and back to the first.
fn incidents_section(
    d: &StoryDetail,
    shown: &Shown,
    connectors: &HashMap<String, Console>,
) -> Markup {
    // A story is one producer's: its records are threats, or alerts, as its source calls them.
    let record = shown
        .incidents
        .iter()
        .find_map(|i| connectors.get(&i.connector_id))
        .map_or("record", |c| c.source.labels().record_name);
    let mut record_title = record.to_owned();
    if let Some(first) = record_title.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    html! {
        section aria-labelledby="incidents-title" {
            h2 #incidents-title { "Incidents (" (d.story.incident_count) ")" }
            @if shown.later || shown.next_cursor.is_some() {
                p.hint { "Showing " (shown.incidents.len()) " of " (d.story.incident_count) " incidents, oldest first, " (dossier_store::STORY_INCIDENTS_FIRST_PAGE) " a page." }
            }
            table.incidents {
                thead { tr {
                    th scope="col" { (record_title) " ID" } th scope="col" { "Created" } th scope="col" { "Classification" }
                    th scope="col" { "Confidence / severity" } th scope="col" { "Mitigation" } th scope="col" { "Analyst verdict" }
                    th scope="col" { "Engines" } th scope="col" { "Console" }
                } }
                tbody {
                    @for i in &shown.incidents {
                        tr {
                            td.mono { (i.id) }
                            td { (layout::time(i.created_at)) }
                            td { (layout::opt(i.classification.as_deref())) }
                            td { (layout::opt(i.normalised.as_ref().and_then(Incident::judgement_text).or_else(|| i.confidence_level.clone()).as_deref())) }
                            td { (layout::opt(i.mitigation_status.as_deref())) }
                            td { (layout::opt(i.analyst_verdict.as_deref())) }
                            td { (layout::opt(Some(i.engines.join(", ")).as_deref())) }
                            td { @match connectors.get(&i.connector_id) {
                                Some(c) => {
                                    @match console_link(i, c) {
                                        Some(link) => a href=(link) rel="noopener noreferrer" target="_blank" { "Open in " (c.source.labels().vendor) },
                                        None => span.none { "no console link" },
                                    }
                                    @if c.source.reads_vendor_notes() {
                                        br;
                                        a.vendor-notes href={ "/stories/" (d.story.id) "?vendor=" (urlencode(&i.id)) "#vendor-title" } { "Notes and timeline" }
                                    }
                                },
                                None => span.none { "connector deleted" },
                            } }
                        }
                    }
                }
            }
            @if shown.later || shown.next_cursor.is_some() {
                nav.pager aria-label="Incident pages" {
                    @if shown.later {
                        a href={ "/stories/" (d.story.id) "#incidents-title" } { "« First incidents" } " "
                    }
                    @if let Some(c) = &shown.next_cursor {
                        a rel="next" href={ "/stories/" (d.story.id) "?incidents=" (urlencode(c)) "#incidents-title" } { "Next incidents »" }
                    }
                }
            }
        }
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The link to an incident in its producer's console: the one the record carries, else the one
/// its source builds. Only an `https://` link is shown: the record's text comes from the tenant.
fn console_link(i: &dossier_store::IncidentView, c: &Console) -> Option<String> {
    i.normalised
        .as_ref()
        .and_then(|n| n.console_url.clone())
        .or_else(|| c.source.console_link(&c.tenant_url, &i.id))
        .filter(|link| link.starts_with("https://"))
}

/// The MITRE ATT&CK techniques the incidents name, each once (the store gathers them from
/// every incident, not only the page shown).
fn mitre_section(d: &StoryDetail) -> Markup {
    let mitre = &d.mitre;
    html! {
        section aria-labelledby="mitre-title" {
            h2 #mitre-title { "MITRE ATT&CK" }
            @if mitre.is_empty() {
                p.none { "No techniques were named by this story's indicators." }
            } @else {
                ul {
                    @for t in mitre {
                        li {
                            @match t.attack_url() {
                                Some(href) => a href=(href) rel="noopener noreferrer" target="_blank" { (t.id) },
                                None => (t.id),
                            }
                            @if let Some(n) = &t.name { " " (n) }
                            @if let Some(tactic) = &t.tactic { " " span.hint { "(" (tactic) ")" } }
                        }
                    }
                }
            }
        }
    }
}

/// A line of the page's timeline: one entry, or a run of incidents added one after another.
#[derive(Debug, PartialEq, Eq)]
enum Line<'a> {
    One(&'a dossier_store::TimelineEntry),
    Added {
        count: usize,
        first: chrono::DateTime<chrono::Utc>,
        last: chrono::DateTime<chrono::Utc>,
    },
}

/// Runs of consecutive `incident_added` entries at least this long fold into one line.
const FOLD_RUN: usize = 3;

/// Folds each run of [`FOLD_RUN`] or more consecutive `incident_added` entries into one line,
/// so that a story of a thousand incidents shows its status changes, comments and reopenings
/// among a few lines rather than after a thousand. Shorter runs stay as they are.
fn fold(entries: &[dossier_store::TimelineEntry]) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut rest = entries;
    while let Some(e) = rest.first() {
        let run = rest
            .iter()
            .take_while(|e| e.kind == "incident_added")
            .count();
        if run >= FOLD_RUN {
            out.push(Line::Added {
                count: run,
                first: e.at,
                last: rest[run - 1].at,
            });
            rest = &rest[run..];
        } else {
            out.push(Line::One(e));
            rest = &rest[1..];
        }
    }
    out
}

/// What happened to the story, oldest first, with runs of added incidents folded; beside it,
/// an incident's own notes and timeline in its producer's console when the page asks for them.
fn timeline_section(d: &StoryDetail, vendor: Option<&VendorPanel>) -> Markup {
    html! {
        @match vendor {
            None => (dossier_timeline(d)),
            Some(v) => div.side-by-side {
                (dossier_timeline(d))
                (v.render(&d.story.id))
            },
        }
    }
}

/// Dossier's own timeline of the story.
fn dossier_timeline(d: &StoryDetail) -> Markup {
    html! {
        section aria-labelledby="timeline-title" {
            h2 #timeline-title { "Timeline" }
            table.timeline {
                thead { tr { th scope="col" { "When" } th scope="col" { "What" } th scope="col" { "Who" } th scope="col" { "Detail" } } }
                tbody {
                    @for line in fold(&d.timeline) {
                        @match line {
                            Line::One(e) => tr {
                                td { (layout::time(e.at)) }
                                td { (e.kind.replace('_', " ")) }
                                td { (layout::opt(e.actor.as_deref())) }
                                td { (layout::tenant(&e.text)) }
                            },
                            Line::Added { count, first, last } => tr.folded {
                                td { (layout::time(first)) }
                                td { "incidents added" }
                                td { (layout::opt(None)) }
                                td { (count) " incidents added between " (layout::time(first)) " and " (layout::time(last)) " " a href="#incidents-title" { "(see the incidents)" } }
                            },
                        }
                    }
                }
            }
        }
    }
}

/// The comments, and the forms to add one and delete one's own when the user may act.
fn comments_section(user: &WebUser, d: &StoryDetail, may_act: bool) -> Markup {
    html! {
        section #comments aria-labelledby="comments-title" {
            h2 #comments-title { "Comments (" (d.comments.len()) ")" }
            @if d.comments.is_empty() { p.none { "No comments yet." } }
            ul.comments {
                @for c in &d.comments {
                    li {
                        strong { (layout::tenant(&c.author)) } " · " (layout::time(c.created_at))
                        p { (layout::tenant(&c.text)) }
                        @if may_act && c.author == user.principal.actor {
                            form.inline method="post" action={ "/stories/" (d.story.id) "/comments/" (c.id) "/delete" } {
                                input type="hidden" name="_csrf" value=(user.csrf);
                                button.secondary type="submit" { "Delete my comment" }
                            }
                        }
                    }
                }
            }
            @if may_act {
                form method="post" action={ "/stories/" (d.story.id) "/comments" } {
                    input type="hidden" name="_csrf" value=(user.csrf);
                    label for="comment" { "Add a comment " span.hint { "(at most 500 characters; comments cannot be edited)" } }
                    textarea #comment name="text" maxlength="500" rows="3" required {}
                    button type="submit" { "Comment" }
                }
            }
        }
    }
}

/// Where the Workbench lists every story of the story's file and of its device (the last 90
/// days, the list's widest range). No count: counting a device's stories over 90 days would
/// cost every view of a story more than the rest of the page.
struct Kin {
    file: Option<String>,
    device: Option<String>,
}

fn kin(d: &StoryDetail) -> Kin {
    let s = &d.story;
    let view = |f: &dyn Fn(&mut super::stories::ListState)| {
        let mut v = super::stories::ListState {
            range: "90d".into(),
            ..Default::default()
        };
        f(&mut v);
        v.url()
    };
    Kin {
        file: s
            .file
            .sha1
            .as_deref()
            .or(s.file.sha256.as_deref())
            .map(|h| view(&|v| h.clone_into(&mut v.hash))),
        device: s
            .device
            .agent_uuid
            .as_deref()
            .map(|a| view(&|v| a.clone_into(&mut v.device))),
    }
}

/// Every story of the same file and of the same device (up to the store's bound, with a link
/// to all of them in the Workbench), and the other relations.
fn related_section(d: &StoryDetail, kin: &Kin) -> Markup {
    let of = |relations: &[&str]| -> Vec<&dossier_store::RelatedStory> {
        d.related
            .iter()
            .filter(|r| relations.contains(&r.relation.as_str()))
            .collect()
    };
    let same_file = of(&["same_hash", "same_sha256"]);
    let same_device = of(&["same_device", "same_device_name"]);
    let windows = of(&["previous_window", "next_window"]);
    let group = |title: &str,
                 rows: &[&dossier_store::RelatedStory],
                 all: Option<&String>,
                 noun: &str| {
        html! {
            h3 { (title) }
            @if rows.is_empty() {
                p.none { "No other story of this " (noun) "." }
            } @else {
                (related_table(rows))
                @if let Some(url) = all {
                    p { a href=(url) { "View all stories of this " (noun) " in the Workbench" } span.hint { " (last 90 days)" } }
                }
            }
        }
    };
    html! {
        section aria-labelledby="related-title" {
            h2 #related-title { "Related stories" }
            (group("Same file", &same_file, kin.file.as_ref(), "file"))
            (group("Same device", &same_device, kin.device.as_ref(), "device"))
            @if !windows.is_empty() {
                h3 { "Earlier and later windows" }
                (related_table(&windows))
            }
        }
    }
}

fn related_table(rows: &[&dossier_store::RelatedStory]) -> Markup {
    html! {
        table.related {
            thead { tr {
                th scope="col" { "Story" } th scope="col" { "Device" } th.num scope="col" { "Criticality" }
                th scope="col" { "Status" } th scope="col" { "Verdict" } th scope="col" { "Relation" } th scope="col" { "Updated" }
            } }
            tbody {
                @for r in rows {
                    tr {
                        td { a href={ "/stories/" (r.id) } { (layout::tenant(r.indication.as_deref().unwrap_or("Unnamed threat"))) } }
                        td { (layout::opt(r.device_name.as_deref())) }
                        td.num { (layout::criticality(r.criticality)) }
                        td { (layout::status_badge(r.status.as_str())) }
                        td { (layout::opt_word(r.verdict.map(Verdict::label))) }
                        td { (relation_label(&r.relation)) }
                        td { (layout::time(r.updated_at)) }
                    }
                }
            }
        }
    }
}

fn relation_label(relation: &str) -> &'static str {
    match relation {
        "same_hash" => "Same file",
        "same_sha256" => "Same SHA-256",
        "same_device" => "Same device",
        "same_device_name" => "Same device name, another EDR",
        "previous_window" => "Earlier window",
        "next_window" => "Later window",
        _ => "Related",
    }
}

/// The threat of each incident of the page shown, as the source sent it: one page's worth, so
/// the page of a large story does not grow with it.
fn raw_section(shown: &Shown) -> Markup {
    html! {
        section aria-labelledby="raw-title" {
            h2 #raw-title { "Raw threat JSON" }
            @if shown.later || shown.next_cursor.is_some() {
                p.hint { "Of the incidents shown above." }
            }
            @for i in &shown.incidents {
                details {
                    summary { "Threat " (i.id) }
                    pre.raw { (text_content(&pretty(i.raw.get()))) }
                }
            }
        }
    }
}

/// Text for an element's content, escaped as content needs (`&`, `<`, `>`), not as an
/// attribute does: JSON is mostly quotes, and `&quot;` for each made the raw JSON of a page of
/// incidents weigh half as much again.
fn text_content(text: &str) -> PreEscaped<String> {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    PreEscaped(out)
}

fn pretty(raw: &str) -> String {
    serde_json::from_str::<serde_json::Value>(raw)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| raw.to_owned())
}

fn actions(user: &WebUser, d: &StoryDetail, owners: &[String]) -> Markup {
    let s = &d.story;
    let owner = s.assignee.as_deref();
    html! {
        form.actions-form method="post" action={ "/stories/" (s.id) } {
            input type="hidden" name="_csrf" value=(user.csrf);
            div {
                label for="status" { "Status" }
                select #status name="status" {
                    @for v in Status::ALL {
                        option value=(v.as_str()) selected[s.status == *v] { (v.label()) }
                    }
                }
            }
            div {
                label for="verdict" { "Verdict" }
                select #verdict name="verdict" {
                    option value="" selected[s.verdict.is_none()] { "none" }
                    @for v in Verdict::ALL {
                        option value=(v.as_str()) selected[s.verdict == Some(*v)] { (v.label()) }
                    }
                }
            }
            div {
                label for="severity" { "Severity " span.hint { "(malicious only)" } }
                select #severity name="severity" {
                    option value="" selected[s.severity.is_none()] { "none" }
                    @for v in Severity::ALL {
                        option value=(v.as_str()) selected[s.severity == Some(*v)] { (v.label()) }
                    }
                }
            }
            div {
                label for="assignee" { "Owner" }
                select #assignee name="assignee" {
                    option value="" selected[owner.is_none()] { "nobody" }
                    @if let Some(o) = owner.filter(|o| !owners.iter().any(|u| u.eq_ignore_ascii_case(o))) {
                        option value=(o) selected { (o) }
                    }
                    @for u in owners {
                        option value=(u) selected[owner.is_some_and(|o| o.eq_ignore_ascii_case(u))] { (u) }
                    }
                }
            }
            div {
                label for="close_reason" { "Close reason " span.hint { "(when closed)" } }
                input #close_reason name="close_reason" type="text" maxlength="500"
                    value=(d.close_reason.as_deref().unwrap_or_default());
            }
            div { button type="submit" { "Save" } }
        }
    }
}

pub(super) fn parse_choice<T>(
    field: &str,
    v: Option<&str>,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>, WebError> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => parse(v).map(Some).ok_or_else(|| {
            WebError::Api(ApiError::BadRequest(format!(
                "{field}: unknown value {v:?}"
            )))
        }),
    }
}

/// Saves the triage form: only what changed is sent, so the timeline records exactly that.
pub async fn act(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    body: Bytes,
) -> WebResult<Response> {
    let form = FormData::parse(&body);
    user.check_csrf(form.get("_csrf"))?;
    let detail = get_story(&state, &user.principal, &id).await?;
    // Refused before anything else, even a form that changes nothing.
    can_act(&state, &user, &detail)
        .await
        .map_err(|m| WebError::Api(ApiError::Forbidden(m)))?;
    let current = detail.story;
    // A field the form leaves out keeps its value; an empty one clears it.
    let status = parse_choice("status", form.get("status"), Status::parse)?;
    let verdict = match form.get("verdict") {
        None => current.verdict,
        v => parse_choice("verdict", v, Verdict::parse)?,
    };
    let mut severity = match form.get("severity") {
        None => current.severity,
        v => parse_choice("severity", v, Severity::parse)?,
    };
    if verdict != Some(Verdict::Malicious) && severity == current.severity {
        // The severity select still shows the old value; it goes with the malicious verdict.
        severity = None;
    }
    let assignee = match form.get("assignee").map(str::trim) {
        None => None,
        Some("") => current.assignee.is_some().then_some(None),
        Some(name) => (current.assignee.as_deref() != Some(name)).then(|| Some(name.to_owned())),
    };
    let close_reason = form
        .get("close_reason")
        .map(str::trim)
        .filter(|r| !r.is_empty() && Some(*r) != detail.close_reason.as_deref())
        .map(str::to_owned);
    let patch = PatchStory {
        status: status.filter(|s| *s != current.status),
        verdict: (verdict != current.verdict).then_some(verdict),
        severity: (severity != current.severity).then_some(severity),
        assignee,
        close_reason,
    };
    if patch.status.is_none()
        && patch.verdict.is_none()
        && patch.severity.is_none()
        && patch.assignee.is_none()
        && patch.close_reason.is_none()
    {
        return Ok(Redirect::to(&format!("/stories/{id}?saved=none")).into_response());
    }
    let saved = patch_story(&state, &user.principal, &id, patch).await;
    answer(&state, &user, &id, saved, "?saved=triage").await
}

/// After a form: back to the story (at `anchor`) when it was saved, or the story page again
/// with the reason when the input was refused.
async fn answer<T>(
    state: &AppState,
    user: &WebUser,
    id: &str,
    saved: Result<T, ApiError>,
    anchor: &str,
) -> WebResult<Response> {
    match saved {
        Ok(_) => Ok(Redirect::to(&format!("/stories/{id}{anchor}")).into_response()),
        Err(ApiError::BadRequest(m) | ApiError::Conflict(m)) => {
            render(
                state,
                user,
                id,
                Some(Said::Refused(m)),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn comment(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    body: Bytes,
) -> WebResult<Response> {
    let form = FormData::parse(&body);
    user.check_csrf(form.get("_csrf"))?;
    let text = form.get("text").unwrap_or_default();
    let saved = add_comment(&state, &user.principal, &id, text).await;
    answer(&state, &user, &id, saved, "?saved=comment#comments").await
}

pub async fn delete_comment(
    State(state): State<AppState>,
    user: WebUser,
    Path((id, comment_id)): Path<(String, String)>,
    body: Bytes,
) -> WebResult<Response> {
    let form = FormData::parse(&body);
    user.check_csrf(form.get("_csrf"))?;
    remove_comment(&state, &user.principal, &id, &comment_id).await?;
    Ok(Redirect::to(&format!("/stories/{id}#comments")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use dossier_store::TimelineEntry;

    fn entry(minute: u32, kind: &str) -> TimelineEntry {
        TimelineEntry {
            at: Utc
                .with_ymd_and_hms(2026, 11, 1, 9, minute, 0)
                .single()
                .unwrap_or_default(),
            kind: kind.into(),
            actor: None,
            text: format!("{kind} at {minute}"),
        }
    }

    #[test]
    fn next_steps_link_to_the_response_buttons_by_action_name() {
        use dossier_domain::next_steps::{NextStep, ResponseAction};
        let steps = [
            NextStep {
                text: "Disconnect the device".into(),
                reason: "not mitigated on a <server>".into(),
                action: Some(ResponseAction::Disconnect),
            },
            NextStep {
                text: "Close the story with a verdict".into(),
                reason: "every incident is mitigated".into(),
                action: None,
            },
        ];
        let html = next_steps_section(&steps).into_string();
        assert!(html.contains("Recommended next steps"), "{html}");
        assert!(html.contains("href=\"#action-disconnect\""), "{html}");
        assert!(html.contains("not mitigated on a &lt;server&gt;"), "{html}");
        assert_eq!(
            html.matches("href=").count(),
            1,
            "a step with no action links nowhere"
        );
        assert!(next_steps_section(&[]).into_string().is_empty());
    }

    #[test]
    fn entities_say_which_incidents_they_come_from() {
        use dossier_domain::context::{ProcessInfo, UserRef, UserRole};
        let mut i = incident_for_entities("1001");
        i.context.users = vec![UserRef {
            name: "CORP\\<ana>".into(),
            role: UserRole::LoggedIn,
        }];
        i.context.processes = vec![ProcessInfo {
            name: Some("powershell.exe".into()),
            command_line: Some("powershell -enc AAA".into()),
            parent: Some("winword.exe".into()),
            ..ProcessInfo::default()
        }];
        let mut j = i.clone();
        j.external_id = "1002".into();
        let html = entities_section(&dossier_domain::entities::of(&[i, j])).into_string();
        for part in [
            "Entities",
            "Device",
            "network <strong class=\"network\">disconnected</strong>",
            "CORP\\&lt;ana&gt;",
            "logged-in user",
            "powershell -enc AAA",
            "parent winword.exe",
            "from 2 incidents",
            "title=\"1001, 1002\"",
            "Storylines",
        ] {
            assert!(html.contains(part), "{part} missing from {html}");
        }
        assert!(
            !html.contains("Files"),
            "a fileless story lists no file: {html}"
        );
    }

    #[expect(clippy::unwrap_used, reason = "a test's own literal")]
    fn incident_for_entities(id: &str) -> dossier_domain::Incident {
        static SPEC: dossier_domain::ProducerSpec = dossier_domain::ProducerSpec {
            name: "webtest",
            vendor: "Web Test",
            engine_type: "endpoint",
            judged: dossier_domain::Judged::ByConfidence,
        };
        let _ = dossier_domain::Producer::new(&SPEC);
        let mut i: dossier_domain::Incident = serde_json::from_value(serde_json::json!({
            "producer": "webtest", "external_id": id,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "device": {"agent_uuid": "ag", "agent_uuid_raw": "ag", "agent_id": null,
                "name": "HOST", "os_type": null, "os_name": null, "machine_type": null,
                "ips": ["10.0.0.1"], "site": null, "group": null, "domain": null,
                "network_status": "disconnected"},
            "file": {"sha1": null, "sha256": null, "md5": null, "name": "Threat name",
                "path": null, "size": null, "signer": null, "verification": null},
            "threat_name": "Threat name", "classification": null, "confidence_level": null,
            "mitigation_status": null, "analyst_verdict": null, "incident_status": null,
            "engines": [], "storyline": "SL1", "initiated_by": null, "is_fileless": true,
            "mitre": [], "mitigation_actions": [], "raw": ""
        }))
        .unwrap();
        i.is_fileless = true;
        i
    }

    #[test]
    fn raw_json_cannot_leave_its_element() {
        let raw = r#"{"a":"</pre><script>alert(1)</script>","b":"x & y"}"#;
        let out = text_content(raw).0;
        assert_eq!(
            out,
            r#"{"a":"&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;","b":"x &amp; y"}"#
        );
    }

    #[test]
    fn runs_of_added_incidents_fold_and_actions_between_them_stay() {
        let mut entries: Vec<TimelineEntry> = (0..37).map(|m| entry(m, "incident_added")).collect();
        entries.push(entry(40, "status_changed"));
        entries.push(entry(41, "incident_added"));
        entries.push(entry(42, "incident_added"));
        entries.push(entry(43, "comment_added"));
        entries.extend((44..50).map(|m| entry(m, "incident_added")));
        let lines = fold(&entries);
        assert_eq!(lines.len(), 6, "{lines:?}");
        assert_eq!(
            lines[0],
            Line::Added {
                count: 37,
                first: entries[0].at,
                last: entries[36].at
            }
        );
        assert_eq!(
            lines[1],
            Line::One(&entries[37]),
            "the status change stays in sight"
        );
        // A run shorter than the fold stays as it is.
        assert_eq!(lines[2], Line::One(&entries[38]));
        assert_eq!(lines[3], Line::One(&entries[39]));
        assert_eq!(lines[4], Line::One(&entries[40]));
        assert!(matches!(lines[5], Line::Added { count: 6, .. }));
        assert!(fold(&[]).is_empty());
    }
}

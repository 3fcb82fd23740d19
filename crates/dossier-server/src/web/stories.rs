//! The Workbench list: every filter, the sort, the grouping and the page position live in the
//! URL, so a view can be bookmarked and shared.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use dossier_domain::story::{Severity, Status, Verdict};
use dossier_source::Sources;
use dossier_store::{GroupCount, Story, StoryGroup, StoryQuery, StorySortField};
use maud::{html, Markup};

use super::layout::{self, Nav};
use super::{pairs, urlencode, WebResult, WebUser};
use crate::api::stories::{list_stories, readable_scope};
use crate::error::ApiError;
use crate::AppState;

/// The time-range presets; the default is the last 2 days, and no range spans more than 90.
const RANGES: &[(&str, &str, i64)] = &[
    ("1h", "Last hour", 1),
    ("24h", "Last 24 hours", 24),
    ("2d", "Last 2 days", 48),
    ("7d", "Last 7 days", 7 * 24),
    ("30d", "Last 30 days", 30 * 24),
    ("90d", "Last 90 days", 90 * 24),
];
const DEFAULT_RANGE: &str = "2d";
const MAX_RANGE_DAYS: i64 = 90;
const PAGE_SIZE: u32 = 50;

/// The columns of the list: heading, sort field.
const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("Indication", "indication"),
    ("Criticality", "criticality"),
    ("Source", "source"),
    ("Producer", "producer"),
    ("Status", "status"),
    ("Verdict", "verdict"),
    ("Severity", "severity"),
    ("Incidents", "incident_count"),
    ("First signal", "first_signal_at"),
    ("Created", "created_at"),
    ("Updated", "updated_at"),
    ("Vendor", "vendor"),
    ("File hash", "file_hash"),
    ("Mitigation", "mitigation"),
];

/// Everything the list shows, as the URL carries it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListState {
    pub range: String,
    pub from: String,
    pub to: String,
    pub producer: String,
    pub status: Vec<String>,
    pub verdict: Vec<String>,
    pub severity: Vec<String>,
    pub cmin: String,
    pub cmax: String,
    pub device: String,
    pub hash: String,
    pub indication: String,
    /// `me`, `none` or a user name.
    pub assignee: String,
    pub q: String,
    pub endpoint: bool,
    pub group: String,
    pub sort: String,
    pub cursor: String,
    pub account: String,
}

impl ListState {
    pub fn parse(raw: &str) -> Self {
        let mut s = ListState::default();
        for (k, v) in pairs(raw) {
            let v = v.trim().to_owned();
            match k.as_str() {
                "range" => s.range = v,
                "from" => s.from = v,
                "to" => s.to = v,
                "producer" => s.producer = v,
                "status" if !v.is_empty() => s.status.push(v),
                "verdict" if !v.is_empty() => s.verdict.push(v),
                "severity" if !v.is_empty() => s.severity.push(v),
                "cmin" => s.cmin = v,
                "cmax" => s.cmax = v,
                "device" => s.device = v,
                "hash" => s.hash = v,
                "indication" => s.indication = v,
                "assignee" => s.assignee = v,
                "q" => s.q = v,
                "endpoint" => s.endpoint = v == "1" || v == "on",
                "group" => s.group = v,
                "sort" => s.sort = v,
                "cursor" => s.cursor = v,
                "account" => s.account = v,
                _ => {}
            }
        }
        s
    }

    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut one = |k: &'static str, v: &str| {
            if !v.is_empty() {
                out.push((k, v.to_owned()));
            }
        };
        one("range", &self.range);
        one("from", &self.from);
        one("to", &self.to);
        one("producer", &self.producer);
        one("cmin", &self.cmin);
        one("cmax", &self.cmax);
        one("device", &self.device);
        one("hash", &self.hash);
        one("indication", &self.indication);
        one("assignee", &self.assignee);
        one("q", &self.q);
        one("endpoint", if self.endpoint { "1" } else { "" });
        one("group", &self.group);
        one("sort", &self.sort);
        one("account", &self.account);
        one("cursor", &self.cursor);
        for v in &self.status {
            out.push(("status", v.clone()));
        }
        for v in &self.verdict {
            out.push(("verdict", v.clone()));
        }
        for v in &self.severity {
            out.push(("severity", v.clone()));
        }
        out
    }

    pub fn url(&self) -> String {
        let q: Vec<String> = self
            .pairs()
            .into_iter()
            .map(|(k, v)| format!("{k}={}", urlencode(&v)))
            .collect();
        if q.is_empty() {
            "/stories".into()
        } else {
            format!("/stories?{}", q.join("&"))
        }
    }

    /// The URL of this view changed by `f`, back on its first page.
    pub fn with(&self, f: impl FnOnce(&mut ListState)) -> String {
        let mut s = self.clone();
        s.cursor.clear();
        f(&mut s);
        s.url()
    }

    fn range(&self) -> &str {
        if self.range.is_empty() {
            DEFAULT_RANGE
        } else {
            &self.range
        }
    }

    /// The store query this view asks for, or what is wrong with it.
    pub fn to_query(
        &self,
        account_id: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<StoryQuery, String> {
        let (from, to) = if self.range() == "custom" {
            let from = parse_local("from", &self.from)?
                .ok_or("from: a custom time range needs a start")?;
            let to = parse_local("to", &self.to)?.unwrap_or(now);
            if from > to {
                return Err("from: is after to".into());
            }
            if to - from > Duration::days(MAX_RANGE_DAYS) {
                return Err(format!(
                    "time range: at most {MAX_RANGE_DAYS} days; narrow it down"
                ));
            }
            (from, Some(to))
        } else {
            let hours = RANGES
                .iter()
                .find(|(k, _, _)| *k == self.range())
                .map(|(_, _, h)| *h)
                .ok_or_else(|| format!("range: unknown time range {:?}", self.range))?;
            (now - Duration::hours(hours), None)
        };
        let parse_list = |field: &str, values: &[String], ok: &dyn Fn(&str) -> bool| {
            for v in values {
                if !ok(v) {
                    return Err(format!("{field}: unknown value {v:?}"));
                }
            }
            Ok(())
        };
        parse_list("status", &self.status, &|v| Status::parse(v).is_some())?;
        parse_list("verdict", &self.verdict, &|v| Verdict::parse(v).is_some())?;
        parse_list("severity", &self.severity, &|v| {
            Severity::parse(v).is_some()
        })?;
        let crit = |field: &str, v: &str| -> Result<Option<u8>, String> {
            if v.is_empty() {
                return Ok(None);
            }
            match v.parse::<u8>() {
                Ok(n @ 1..=10) => Ok(Some(n)),
                _ => Err(format!("{field}: a criticality from 1 to 10")),
            }
        };
        if self.q.contains('\0') {
            // As the API: no text holds a NUL, and SQLite and most tools cut a string at one.
            return Err("q: must not contain NUL".into());
        }
        let criticality_min = crit("criticality from", &self.cmin)?;
        let criticality_max = crit("criticality to", &self.cmax)?;
        if let (Some(a), Some(b)) = (criticality_min, criticality_max) {
            if a > b {
                return Err("criticality: the lower bound is above the upper one".into());
            }
        }
        if !self.group.is_empty() && StoryGroup::parse(&self.group).is_none() {
            let names: Vec<&str> = StoryGroup::ALL.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "group: unknown grouping {:?}; one of {}",
                self.group,
                names.join(", ")
            ));
        }
        let (sort, descending) = if self.sort.is_empty() {
            (StorySortField::UpdatedAt, true)
        } else {
            StorySortField::parse_sort(&self.sort)
                .ok_or_else(|| format!("sort: unknown column {:?}", self.sort))?
        };
        let text = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
        Ok(StoryQuery {
            licensed_only: account_id.is_none(),
            account_id,
            producer: text(&self.producer),
            engine_type: self.endpoint.then(|| "endpoint".to_owned()),
            status: self
                .status
                .iter()
                .filter_map(|s| Status::parse(s))
                .collect(),
            verdict: self
                .verdict
                .iter()
                .filter_map(|s| Verdict::parse(s))
                .collect(),
            severity: self
                .severity
                .iter()
                .filter_map(|s| Severity::parse(s))
                .collect(),
            criticality_min,
            criticality_max,
            device: text(&self.device),
            hash: text(&self.hash),
            indication: text(&self.indication),
            assignee: None,
            incident_id: None,
            q: text(&self.q),
            from: Some(from),
            to,
            sort,
            descending,
            limit: PAGE_SIZE,
            cursor: text(&self.cursor),
        })
    }

    fn has_filters(&self) -> bool {
        // Sort, grouping, account and page position show the stories differently; they do not
        // narrow them.
        let bare = ListState {
            sort: self.sort.clone(),
            group: self.group.clone(),
            account: self.account.clone(),
            cursor: self.cursor.clone(),
            ..ListState::default()
        };
        *self != bare
    }
}

/// A `datetime-local` value (or RFC 3339), read as UTC.
pub(crate) fn parse_local(field: &str, v: &str) -> Result<Option<DateTime<Utc>>, String> {
    if v.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    for f in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, f) {
            return Ok(Some(t.and_utc()));
        }
    }
    Err(format!("{field}: not a time, e.g. 2026-11-27T10:00"))
}

pub async fn page(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
) -> WebResult<Response> {
    let view = ListState::parse(raw.as_deref().unwrap_or_default());
    let requested = Some(view.account.as_str()).filter(|a| !a.is_empty());
    let scope = match readable_scope(&state, &user.principal, requested).await {
        Ok(s) => s,
        Err(ApiError::Forbidden(m)) => {
            let body = html! {
                h1 { "Stories" }
                p.notice role="status" { (m) }
                p { a href="/events" { "Open the events" } }
            };
            return Ok((
                axum::http::StatusCode::FORBIDDEN,
                layout::page("Stories", &user, Nav::Stories, body),
            )
                .into_response());
        }
        Err(e) => return Err(e.into()),
    };
    let query = view.to_query(scope.clone(), Utc::now()).and_then(|mut q| {
        q.assignee = user
            .principal
            .assignee_filter(Some(&view.assignee))
            .map_err(|e| e.to_string())?;
        Ok(q)
    });
    let (result, groups, error) = match query {
        Err(msg) => (None, None, Some(msg)),
        Ok(q) => match list_stories(&state, &q).await {
            Ok(page) => {
                let groups = match StoryGroup::parse(&view.group) {
                    Some(by) => {
                        let mut gq = q.clone();
                        gq.cursor = None;
                        Some((
                            by,
                            state
                                .store
                                .group_stories(&gq, by, 50)
                                .await
                                .map_err(|e| ApiError::from_store(e, "story"))?,
                        ))
                    }
                    None => None,
                };
                (Some(page), groups, None)
            }
            Err(ApiError::BadRequest(m)) => (None, None, Some(m)),
            Err(e) => return Err(e.into()),
        },
    };
    // The empty state says whether any connector exists; a page with stories need not ask.
    let no_connectors = match &result {
        Some(page) if page.items.is_empty() => state
            .store
            .list_connectors(scope.as_deref())
            .await
            .map_err(|e| ApiError::from_store(e, "connector"))?
            .is_empty(),
        _ => false,
    };
    let body = html! {
        h1 { "Stories" }
        (filters(&view, &state.sources))
        (quick(&view))
        @if let Some(e) = &error {
            p.error role="alert" { (e) }
        }
        @if let Some((by, groups)) = &groups {
            (group_table(&view, *by, groups))
        }
        @if let Some(page) = &result {
            @if page.items.is_empty() {
                div.empty role="status" {
                    @if no_connectors {
                        p { strong { "No stories yet." } " Stories appear as soon as a connector brings in threats." }
                        @if user.principal.perms.edit_integrations {
                            p { a.button href="/connectors/new" { "Add a connector" } }
                        }
                    } @else if view.has_filters() {
                        p { strong { "No stories match these filters." } }
                        p { a href=(ListState { sort: view.sort.clone(), account: view.account.clone(), ..ListState::default() }.url()) { "Clear the filters" } " or widen the time range." }
                    } @else {
                        p { strong { "No stories in the last 2 days." } }
                        p { a href=(view.with(|s| s.range = "90d".into())) { "Show the last 90 days" } }
                    }
                }
            } @else {
                (table(&view, &page.items))
                nav.pager aria-label="Pages" {
                    @if !view.cursor.is_empty() {
                        a href=(view.with(|_| {})) { "« First page" }
                    }
                    @if let Some(next) = &page.next_cursor {
                        a rel="next" href=({ let mut s = view.clone(); s.cursor.clone_from(next); s.url() }) { "Next page »" }
                    }
                    span.hint { (page.items.len()) " stories on this page" }
                }
            }
        }
    };
    // A search holding a NUL is refused as the API refuses it; other filters that cannot be
    // read are said on the page, which still opens.
    let status = if view.q.contains('\0') {
        axum::http::StatusCode::BAD_REQUEST
    } else {
        axum::http::StatusCode::OK
    };
    Ok((status, layout::page("Stories", &user, Nav::Stories, body)).into_response())
}

fn checked(values: &[String], v: &str) -> bool {
    values.iter().any(|x| x == v)
}

fn filters(view: &ListState, sources: &Sources) -> Markup {
    let range = view.range();
    // The finer filters fold away unless one of them is in use.
    let more_open = range == "custom"
        || !view.cmin.is_empty()
        || !view.cmax.is_empty()
        || !view.status.is_empty()
        || !view.verdict.is_empty()
        || !view.severity.is_empty()
        || !view.producer.is_empty()
        || !view.indication.is_empty();
    html! {
        form.filters method="get" action="/stories" role="search" aria-label="Filter stories" {
            div {
                label for="range" { "Time range " span.hint { "(last update)" } }
                select #range name="range" {
                    @for (k, label, _) in RANGES {
                        option value=(k) selected[range == *k] { (label) }
                    }
                    option value="custom" selected[range == "custom"] { "Custom (under more filters)" }
                }
            }
            div {
                label for="q" { "Search " span.hint { "(press /)" } }
                input #q type="search" name="q" value=(view.q) placeholder="threat, device, file, hash, id";
            }
            div {
                label for="device" { "Device" }
                input #device type="text" name="device" value=(view.device) placeholder="name or device id";
            }
            div {
                label for="hash" { "File hash" }
                input #hash type="text" name="hash" value=(view.hash) placeholder="SHA-1, SHA-256 or MD5";
            }
            div {
                label for="assignee" { "Owner" }
                input #assignee type="text" name="assignee" value=(view.assignee) placeholder="me, none or a user name";
            }
            div {
                label for="group" { "Group by" }
                select #group name="group" {
                    option value="" selected[view.group.is_empty()] { "No grouping" }
                    @for (k, _) in StoryGroup::ALL {
                        option value=(k) selected[view.group == *k] { (k) }
                    }
                }
            }
            div {
                span.label-like { "Engine" }
                label.check { input type="checkbox" name="endpoint" value="1" checked[view.endpoint]; "Endpoint stories only" }
            }
            details.more open[more_open] {
                summary { "More filters" }
                div.more-grid {
                    div {
                        label for="from" { "From " span.hint { "(UTC, custom range)" } }
                        input #from type="datetime-local" name="from" value=(view.from);
                    }
                    div {
                        label for="to" { "To " span.hint { "(UTC, custom range)" } }
                        input #to type="datetime-local" name="to" value=(view.to);
                    }
                    div {
                        label for="producer" { "Producer" }
                        select #producer name="producer" {
                            option value="" selected[view.producer.is_empty()] { "All producers" }
                            @for s in sources.iter() {
                                @let producer = s.producer().as_str();
                                option value=(producer) selected[view.producer == producer] { (s.labels().vendor) }
                            }
                        }
                    }
                    div {
                        label for="cmin" { "Criticality from" }
                        input #cmin type="number" min="1" max="10" name="cmin" value=(view.cmin);
                    }
                    div {
                        label for="cmax" { "Criticality to" }
                        input #cmax type="number" min="1" max="10" name="cmax" value=(view.cmax);
                    }
                    @if !view.indication.is_empty() {
                        div {
                            label for="indication" { "Indication" }
                            input #indication type="text" name="indication" value=(view.indication);
                        }
                    }
                    fieldset {
                        legend { "Status" }
                        @for s in Status::ALL {
                            label.check { input type="checkbox" name="status" value=(s.as_str()) checked[checked(&view.status, s.as_str())]; (s.as_str().replace('_', " ")) }
                        }
                    }
                    fieldset {
                        legend { "Verdict" }
                        @for v in Verdict::ALL {
                            label.check { input type="checkbox" name="verdict" value=(v.as_str()) checked[checked(&view.verdict, v.as_str())]; (v.as_str()) }
                        }
                    }
                    fieldset {
                        legend { "Severity" }
                        @for v in Severity::ALL {
                            label.check { input type="checkbox" name="severity" value=(v.as_str()) checked[checked(&view.severity, v.as_str())]; (v.as_str()) }
                        }
                    }
                }
            }
            @if !view.sort.is_empty() {
                input type="hidden" name="sort" value=(view.sort);
            }
            @if !view.account.is_empty() {
                input type="hidden" name="account" value=(view.account);
            }
            div.actions {
                button type="submit" { "Apply filters" }
                a href="/stories" { "Reset" }
            }
        }
    }
}

fn quick(view: &ListState) -> Markup {
    let endpoint = view.with(|s| s.endpoint = !s.endpoint);
    html! {
        div.quick {
            span.hint { "Quick filters:" }
            a.badge href=(endpoint) aria-pressed=(if view.endpoint { "true" } else { "false" }) {
                @if view.endpoint { "✓ " } "Endpoint"
            }
            a.badge href=(view.with(|s| { s.assignee = if s.assignee == "me" { String::new() } else { "me".into() }; }))
                aria-pressed=(if view.assignee == "me" { "true" } else { "false" }) {
                @if view.assignee == "me" { "✓ " } "Mine"
            }
            a.badge href=(view.with(|s| { s.status = vec!["open".into(), "reopened".into()]; })) { "Open" }
            a.badge href=(view.with(|s| { s.cmin = "7".into(); })) { "Criticality 7+" }
            a.badge href=(view.with(|s| { s.verdict = vec!["malicious".into()]; })) { "Malicious" }
        }
    }
}

fn group_table(view: &ListState, by: StoryGroup, groups: &[GroupCount]) -> Markup {
    html! {
        section.groups aria-labelledby="groups-title" {
            h2 #groups-title { "Grouped by " (by.name()) }
            @if groups.is_empty() {
                p.none { "No groups: no stories match." }
            } @else {
                table {
                    thead { tr { th scope="col" { (by.name()) } th.num scope="col" { "Stories" } } }
                    tbody {
                        @for g in groups {
                            tr {
                                td {
                                    @let to = view.with(|s| {
                                        s.group.clear();
                                        match by {
                                            StoryGroup::Source => s.device.clone_from(&g.value),
                                            StoryGroup::Indication => s.indication.clone_from(&g.value),
                                            StoryGroup::Status => s.status = vec![g.value.clone()],
                                            StoryGroup::Producer => s.producer.clone_from(&g.value),
                                        }
                                    });
                                    @if g.value.is_empty() { span.none { "(none)" } } @else { a href=(to) { (g.value) } }
                                }
                                td.num { (g.count) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn table(view: &ListState, items: &[Story]) -> Markup {
    let (current, desc) = StorySortField::parse_sort(if view.sort.is_empty() {
        "-updated_at"
    } else {
        &view.sort
    })
    .unwrap_or((StorySortField::UpdatedAt, true));
    html! {
        table.stories {
            caption.hint { "Stories, sorted by " (current.name().replace('_', " ")) (if desc { " (descending)" } else { " (ascending)" }) "; times in UTC" }
            thead {
                tr {
                    @for (label, field) in COLUMNS {
                        @let here = current.name() == *field;
                        @let next = if here && desc { (*field).to_owned() } else { format!("-{field}") };
                        th scope="col" aria-sort=(if here { if desc { "descending" } else { "ascending" } } else { "none" }) {
                            a href=(view.with(|s| s.sort = next)) {
                                (label)
                                @if here { (if desc { " ▼" } else { " ▲" }) }
                            }
                        }
                    }
                }
            }
            tbody {
                @for s in items {
                    tr {
                        td.id.mono { a href={ "/stories/" (s.id) } title=(s.id) { (s.id) } }
                        td { (layout::opt(s.indication.as_deref())) }
                        td.num { (layout::criticality(s.criticality)) }
                        td { (layout::opt(s.device.name.as_deref())) }
                        td { (s.producer) }
                        td { (layout::status_badge(s.status.as_str())) }
                        td { (layout::opt_word(s.verdict.map(Verdict::as_str))) }
                        td { (layout::opt_word(s.severity.map(Severity::as_str))) }
                        td.num { (s.incident_count) }
                        td.when { (layout::short_time(s.first_signal_at)) }
                        td.when { (layout::short_time(s.created_at)) }
                        td.when { (layout::short_time(s.updated_at)) }
                        td { (s.vendor) }
                        td.hash { @match s.file.sha1.as_deref().or(s.file.sha256.as_deref()) {
                            Some(h) => span title=(h) { (h) },
                            None => span.none { "—" },
                        } }
                        td { (layout::opt(s.mitigation_status.as_deref())) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_url_round_trips_every_field() {
        let s = ListState {
            range: "custom".into(),
            from: "2026-11-01T00:00".into(),
            to: "2026-11-02T00:00".into(),
            producer: "sentinelone".into(),
            status: vec!["open".into(), "closed".into()],
            verdict: vec!["malicious".into()],
            severity: vec!["high".into()],
            cmin: "3".into(),
            cmax: "9".into(),
            device: "WIN 01".into(),
            hash: "ab".into(),
            indication: "Emotet & co".into(),
            assignee: "ana".into(),
            q: "a=b&c".into(),
            endpoint: true,
            group: "status".into(),
            sort: "-criticality".into(),
            cursor: "xyz".into(),
            account: "acc".into(),
        };
        let url = s.url();
        let parsed = ListState::parse(url.trim_start_matches("/stories?"));
        assert_eq!(parsed, s);
    }

    #[test]
    fn the_default_range_is_two_days_and_ranges_stop_at_ninety() {
        let now = Utc::now();
        let q = ListState::default().to_query(None, now).unwrap();
        assert_eq!(q.from, Some(now - Duration::days(2)));
        let wide = ListState {
            range: "custom".into(),
            from: "2026-01-01T00:00".into(),
            to: "2026-06-01T00:00".into(),
            ..ListState::default()
        };
        assert!(wide.to_query(None, now).unwrap_err().contains("90 days"));
        let bad = ListState {
            cmin: "11".into(),
            ..ListState::default()
        };
        assert!(bad.to_query(None, now).is_err());
    }
}

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
use super::{pairs, urlencode, FormData, WebResult, WebUser};
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

/// A column of the list.
#[derive(Debug, PartialEq, Eq)]
pub struct Column {
    /// Its name in a user's column choice.
    pub key: &'static str,
    pub heading: &'static str,
    /// The sort field its heading sorts by, if any.
    pub sort: Option<&'static str>,
    /// Shown unless the user chose otherwise. The default set fits a 1,440 px screen.
    pub default: bool,
}

const fn col(
    key: &'static str,
    heading: &'static str,
    sort: Option<&'static str>,
    default: bool,
) -> Column {
    Column {
        key,
        heading,
        sort,
        default,
    }
}

/// Every column, in the order the list shows them. The dates shown by default are the
/// threat's own (first and last signal); when Dossier learnt of a story is there to add.
pub const COLUMNS: &[Column] = &[
    col("id", "ID", Some("id"), true),
    col("indication", "Indication", Some("indication"), true),
    col("criticality", "Criticality", Some("criticality"), true),
    col("source", "Source", Some("source"), true),
    col("producer", "Producer", Some("producer"), true),
    col("status", "Status", Some("status"), true),
    col("verdict", "Verdict", Some("verdict"), true),
    col("severity", "Severity", Some("severity"), true),
    col("owner", "Owner", None, true),
    col("incidents", "Incidents", Some("incident_count"), true),
    col(
        "first_signal",
        "First signal",
        Some("first_signal_at"),
        true,
    ),
    col("last_signal", "Last signal", Some("last_signal_at"), true),
    col("created", "Created", Some("created_at"), false),
    col("updated", "Updated", Some("updated_at"), false),
    col("vendor", "Vendor", Some("vendor"), false),
    col("file_hash", "File hash", Some("file_hash"), false),
    col("mitigation", "Mitigation", Some("mitigation"), false),
];

/// The name of the user setting that keeps their columns.
pub const COLUMNS_SETTING: &str = "story_list_columns";

/// The columns a user's setting names (comma-separated keys), in the list's order; the
/// default set when they chose none, or none that still exists.
pub fn chosen_columns(setting: Option<&str>) -> Vec<&'static Column> {
    let chosen: Vec<&str> = setting
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .collect();
    let picked: Vec<&'static Column> = COLUMNS.iter().filter(|c| chosen.contains(&c.key)).collect();
    if picked.is_empty() {
        COLUMNS.iter().filter(|c| c.default).collect()
    } else {
        picked
    }
}

/// A total shown as counted: exact up to this, then "10,000+".
pub const COUNT_CAP: u64 = 10_000;

/// "1 story", "9,876 stories", "10,000+ stories".
pub fn count_text(n: u64) -> String {
    let digits = |n: u64| {
        let s = n.to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    match n {
        1 => "1 story".into(),
        n if n > COUNT_CAP => format!("{}+ stories", digits(COUNT_CAP)),
        n => format!("{} stories", digits(n)),
    }
}

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
            created_after: None,
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

/// What the list page shows besides its filters: the page of stories, the total, the groups.
struct Listing {
    page: dossier_store::StoryPage,
    /// Known when one page holds every match; else the page asks `/stories/count` for it, so
    /// that counting (which a text search makes read every story of the range) never holds the
    /// list back.
    total: Option<u64>,
    groups: Option<(StoryGroup, Vec<GroupCount>)>,
}

/// The store query of a view for this user, with the owner filter resolved (`me`).
pub(crate) fn query_for(
    view: &ListState,
    user: &WebUser,
    scope: Option<String>,
) -> Result<StoryQuery, String> {
    let mut q = view.to_query(scope, Utc::now())?;
    q.assignee = user
        .principal
        .assignee_filter(Some(&view.assignee))
        .map_err(|e| e.to_string())?;
    Ok(q)
}

async fn listing(state: &AppState, q: &StoryQuery, group: &str) -> Result<Listing, ApiError> {
    let page = list_stories(state, q).await?;
    let mut whole = q.clone();
    whole.cursor = None;
    // One page holds every match: its length is the count.
    let total = (page.next_cursor.is_none() && page.prev_cursor.is_none())
        .then_some(page.items.len() as u64);
    let groups = match StoryGroup::parse(group) {
        Some(by) => Some((
            by,
            state
                .store
                .group_stories(&whole, by, 50)
                .await
                .map_err(|e| ApiError::from_store(e, "story"))?,
        )),
        None => None,
    };
    Ok(Listing {
        page,
        total,
        groups,
    })
}

pub async fn page(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
) -> WebResult<Response> {
    let raw = raw.unwrap_or_default();
    let view = ListState::parse(&raw);
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
    let started = Utc::now();
    let (listing, error) = match query_for(&view, &user, scope.clone()) {
        Err(msg) => (None, Some(msg)),
        Ok(q) => match listing(&state, &q, &view.group).await {
            Ok(l) => (Some(l), None),
            Err(ApiError::BadRequest(m)) => (None, Some(m)),
            Err(e) => return Err(e.into()),
        },
    };
    // The empty state says whether any connector exists; a page with stories need not ask.
    let no_connectors = match &listing {
        Some(l) if l.page.items.is_empty() => state
            .store
            .list_connectors(scope.as_deref())
            .await
            .map_err(|e| ApiError::from_store(e, "connector"))?
            .is_empty(),
        _ => false,
    };
    let columns = chosen_columns(
        state
            .store
            .user_setting(&user.user_id, COLUMNS_SETTING)
            .await
            .map_err(|e| ApiError::from_store(e, "user"))?
            .as_deref(),
    );
    // Selecting stories is for those who may change them; the change itself checks again.
    let owners = if user.principal.perms.edit_stories {
        let users = state
            .store
            .list_users(scope.as_deref())
            .await
            .map_err(|e| ApiError::from_store(e, "user"))?;
        Some(users.into_iter().map(|u| u.username).collect::<Vec<_>>())
    } else {
        None
    };
    let body = html! {
        div.list-head {
            h1 { "Stories" }
            @if let Some(l) = &listing {
                @match l.total {
                    Some(n) => span.total role="status" { (matches_text(n)) },
                    None => span.total role="status" data-count=(format!("/stories/count?{}", view_query(&view))) {
                        a href=(format!("/stories/count?{}", view_query(&view))) { "Count the matches" }
                    },
                }
            }
            (column_chooser(&user, &columns, &view))
        }
        (filters(&view, &state.sources))
        (quick(&view))
        @if let Some(e) = &error {
            p.error role="alert" { (e) }
        }
        // Filled in by the script when stories come in while the list is open.
        div #new-stories hidden data-count=({ format!("/stories/count?{}&since={}", view_query(&view), urlencode(&started.to_rfc3339())) }) {}
        @if let Some(l) = &listing {
            @if let Some((by, groups)) = &l.groups {
                (group_list(&view, *by, groups, &state.sources))
            }
            @if l.page.items.is_empty() {
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
                @match &owners {
                    Some(owners) => {
                        form #bulk method="post" action="/stories/bulk" {
                            input type="hidden" name="_csrf" value=(user.csrf);
                            input type="hidden" name="view" value=(view.with(|_| {}));
                            (bulk_bar(l, owners))
                            (table(&view, &l.page.items, &columns, true, &state.sources))
                        }
                    }
                    None => (table(&view, &l.page.items, &columns, false, &state.sources)),
                }
                (pager(&view, &l.page))
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

fn pager(view: &ListState, page: &dossier_store::StoryPage) -> Markup {
    let at = |cursor: &str| {
        let mut s = view.clone();
        cursor.clone_into(&mut s.cursor);
        s.url()
    };
    html! {
        nav.pager aria-label="Pages" {
            @if !view.cursor.is_empty() {
                a href=(view.with(|_| {})) { "« First" }
            }
            @match &page.prev_cursor {
                Some(prev) => a rel="prev" href=(at(prev)) { "‹ Previous" },
                None => span.none { "‹ Previous" },
            }
            @match &page.next_cursor {
                Some(next) => a rel="next" href=(at(next)) { "Next ›" },
                None => span.none { "Next ›" },
            }
            span.hint { (page.items.len()) " on this page" }
        }
    }
}

/// What to do with the chosen stories: the count chosen (kept by the script), "all N
/// matching", and the change. The server shows the change and its count before making it.
fn bulk_bar(l: &Listing, owners: &[String]) -> Markup {
    html! {
        fieldset.bulkbar aria-label="Change the chosen stories" {
            legend { "Change stories" }
            span #bulk-count.hint aria-live="polite" { "Choose stories with the boxes (shift-click for a range)" }
            @if l.total.is_none() {
                label.check {
                    input #bulk-all type="checkbox" name="all" value="1";
                    "All stories matching the filters " span.hint { "(the next step counts them)" }
                }
            }
            label.inline for="bulk-status" { "Status" }
            select #bulk-status name="status" {
                option value="" { "(keep)" }
                @for s in Status::ALL { option value=(s.as_str()) { (s.label()) } }
            }
            label.inline for="bulk-verdict" { "Verdict" }
            select #bulk-verdict name="verdict" {
                option value="" { "(keep)" }
                @for v in Verdict::ALL { option value=(v.as_str()) { (v.label()) } }
            }
            label.inline for="bulk-severity" { "Severity" }
            select #bulk-severity name="severity" {
                option value="" { "(keep)" }
                @for v in Severity::ALL { option value=(v.as_str()) { (v.label()) } }
            }
            label.inline for="bulk-assignee" { "Owner" }
            select #bulk-assignee name="assignee" {
                option value="" { "(keep)" }
                option value="-" { "Nobody" }
                @for o in owners { option value=(o) { (o) } }
            }
            label.inline for="bulk-close-reason" { "Close reason" }
            input #bulk-close-reason type="text" name="close_reason" maxlength="500" placeholder="optional, when closing";
            label.inline for="bulk-comment" { "Comment" }
            input #bulk-comment type="text" name="comment" maxlength="500" placeholder="optional";
            button type="submit" { "Review the change…" }
        }
    }
}

/// The list's columns, chosen per user; the choice is kept with the user.
fn column_chooser(user: &WebUser, shown: &[&'static Column], view: &ListState) -> Markup {
    html! {
        details.columns {
            summary { "Columns" }
            form method="post" action="/stories/columns" {
                input type="hidden" name="_csrf" value=(user.csrf);
                input type="hidden" name="back" value=(view.url());
                @for c in COLUMNS {
                    label.check { input type="checkbox" name="col" value=(c.key) checked[shown.contains(&c)]; (c.heading) }
                }
                div.actions {
                    button type="submit" { "Keep these columns" }
                    button.secondary type="submit" name="reset" value="1" { "Default columns" }
                }
            }
        }
    }
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
                    @for (k, g) in StoryGroup::ALL {
                        option value=(k) selected[view.group == *k] { (g.label()) }
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
                            label.check { input type="checkbox" name="status" value=(s.as_str()) checked[checked(&view.status, s.as_str())]; (s.label()) }
                        }
                    }
                    fieldset {
                        legend { "Verdict" }
                        @for v in Verdict::ALL {
                            label.check { input type="checkbox" name="verdict" value=(v.as_str()) checked[checked(&view.verdict, v.as_str())]; (v.label()) }
                        }
                    }
                    fieldset {
                        legend { "Severity" }
                        @for v in Severity::ALL {
                            label.check { input type="checkbox" name="severity" value=(v.as_str()) checked[checked(&view.severity, v.as_str())]; (v.label()) }
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

/// Quick filters add to the filters in use, and a second click takes them off again.
fn quick(view: &ListState) -> Markup {
    let toggle_values = |values: &[String], these: &[&str]| -> Vec<String> {
        if these.iter().all(|t| values.iter().any(|v| v == t)) {
            values
                .iter()
                .filter(|v| !these.contains(&v.as_str()))
                .cloned()
                .collect()
        } else {
            let mut out = values.to_vec();
            for t in these {
                if !out.iter().any(|v| v == t) {
                    out.push((*t).to_owned());
                }
            }
            out
        }
    };
    let open = ["open", "reopened"];
    let open_on = open.iter().all(|t| view.status.iter().any(|v| v == t));
    let malicious_on = view.verdict.iter().any(|v| v == "malicious");
    let crit_on = view.cmin == "7";
    let mine_on = view.assignee == "me";
    let item = |on: bool, href: String, text: &str| {
        html! {
            a.badge.quick-filter href=(href) aria-pressed=(if on { "true" } else { "false" }) {
                @if on { "✓ " } (text)
            }
        }
    };
    html! {
        div.quick {
            span.hint { "Quick filters (they add to the filters above):" }
            (item(view.endpoint, view.with(|s| s.endpoint = !s.endpoint), "Endpoint"))
            (item(mine_on, view.with(|s| { s.assignee = if mine_on { String::new() } else { "me".into() }; }), "Mine"))
            (item(open_on, view.with(|s| { s.status = toggle_values(&s.status, &open); }), "Open"))
            (item(crit_on, view.with(|s| { s.cmin = if crit_on { String::new() } else { "7".into() }; }), "Criticality 7+"))
            (item(malicious_on, view.with(|s| { s.verdict = toggle_values(&s.verdict, &["malicious"]); }), "Malicious"))
        }
    }
}

/// The view narrowed to one group's stories, without the grouping.
fn group_view(view: &ListState, by: StoryGroup, value: &str) -> ListState {
    let mut s = view.clone();
    s.cursor.clear();
    s.group.clear();
    match by {
        StoryGroup::Source | StoryGroup::Device => value.clone_into(&mut s.device),
        StoryGroup::File => value.clone_into(&mut s.hash),
        StoryGroup::Indication => value.clone_into(&mut s.indication),
        StoryGroup::Status => s.status = vec![value.to_owned()],
        StoryGroup::Producer => value.clone_into(&mut s.producer),
    }
    s
}

/// What people read for a group's value.
fn group_name(by: StoryGroup, g: &GroupCount, sources: &Sources) -> Markup {
    let short = |h: &str| h.chars().take(12).collect::<String>();
    match by {
        StoryGroup::File => html! {
            @if g.label.is_empty() { span.none { "(unnamed file)" } } @else { (layout::tenant(&g.label)) }
            " " span.mono.hint title=(g.value) { (short(&g.value)) "…" }
        },
        StoryGroup::Device => html! {
            @if g.label.is_empty() { span.none { "(unnamed device)" } } @else { (layout::tenant(&g.label)) }
            " " span.mono.hint title=(g.value) { (short(&g.value)) "…" }
        },
        StoryGroup::Status => {
            let label =
                Status::parse(&g.value).map_or_else(|| g.value.clone(), |s| s.label().to_owned());
            html! { (label) }
        }
        StoryGroup::Producer => html! {
            (producer_label(sources, &g.value))
        },
        StoryGroup::Source | StoryGroup::Indication => html! { (layout::tenant(&g.label)) },
    }
}

fn producer_label<'a>(sources: &Sources, producer: &'a str) -> &'a str {
    dossier_domain::Producer::parse(producer)
        .and_then(|p| sources.by_producer(p))
        .map_or(producer, |s| s.labels().vendor)
}

/// The groups, largest first: each with its count, highest criticality and split by severity
/// and status; each expands in place (the script loads its stories) and opens as a list.
fn group_list(
    view: &ListState,
    by: StoryGroup,
    groups: &[GroupCount],
    sources: &Sources,
) -> Markup {
    html! {
        section.groups aria-labelledby="groups-title" {
            h2 #groups-title { "Grouped by " (by.label().to_lowercase()) span.hint { " (the 50 largest groups)" } }
            @if groups.is_empty() {
                p.none { "No groups: no stories match." }
            } @else {
                table.group-table {
                    thead { tr {
                        th scope="col" { (by.label()) }
                        th.num scope="col" { "Stories" }
                        th.num scope="col" { "Highest" }
                        th scope="col" { "By severity" }
                        th scope="col" { "By status" }
                        th scope="col" { span.hint { "Actions" } }
                    } }
                    @for (i, g) in groups.iter().enumerate() {
                        @let list = group_view(view, by, &g.value);
                        tbody.group {
                            tr {
                                td {
                                    @if g.value.is_empty() { span.none { "(none)" } } @else { (group_name(by, g, sources)) }
                                }
                                td.num { (g.count) }
                                td.num { (layout::criticality(g.max_criticality)) }
                                td { @for (sev, n) in &g.by_severity {
                                    span class={ "badge sev-" (sev.map_or("none", Severity::as_str)) } { (sev.map_or("No severity", Severity::label)) " " (n) } " "
                                } }
                                td { @for (st, n) in &g.by_status {
                                    span class={ "badge status-" (st.as_str()) } { (st.label()) " " (n) } " "
                                } }
                                td.group-actions {
                                    @if !g.value.is_empty() {
                                        button.link.expand type="button" aria-expanded="false" aria-controls={ "group-" (i) }
                                            data-src={ "/stories/rows?" (list.url().trim_start_matches("/stories").trim_start_matches('?')) } { "Expand" }
                                        " · "
                                        a href=(list.url()) { "Open as a list" }
                                    }
                                }
                            }
                            tr.group-rows #{ "group-" (i) } hidden { td colspan="6" {} }
                        }
                    }
                }
            }
        }
    }
}

/// The rows of a list view alone (the first page), for a group expanded in place.
pub async fn rows(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
) -> WebResult<Response> {
    let view = ListState::parse(raw.as_deref().unwrap_or_default());
    let requested = Some(view.account.as_str()).filter(|a| !a.is_empty());
    let scope = readable_scope(&state, &user.principal, requested).await?;
    let q = query_for(&view, &user, scope).map_err(ApiError::BadRequest)?;
    let l = listing(&state, &q, "").await?;
    let columns = chosen_columns(
        state
            .store
            .user_setting(&user.user_id, COLUMNS_SETTING)
            .await
            .map_err(|e| ApiError::from_store(e, "user"))?
            .as_deref(),
    );
    let body = html! {
        (table(&view, &l.page.items, &columns, false, &state.sources))
        p.hint {
            @if let Some(n) = l.total { (count_text(n)) " in this group. " }
            a href=(view.url()) { "Open as a list" }
        }
    };
    Ok((
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body.into_string(),
    )
        .into_response())
}

/// The query string of a view, first page, without `/stories?`.
fn view_query(view: &ListState) -> String {
    view.with(|_| {})
        .trim_start_matches("/stories")
        .trim_start_matches('?')
        .to_owned()
}

/// "1 story matches", "3 stories match", "10,000+ stories match".
pub fn matches_text(n: u64) -> String {
    format!(
        "{} {}",
        count_text(n),
        if n == 1 { "matches" } else { "match" }
    )
}

/// `GET /stories/count?<view>[&since=T]`: how many stories a view holds (exact up to 10,000),
/// or, with `since`, how many of them were created since then (the new-stories notice).
pub async fn count(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
) -> WebResult<Response> {
    let raw = raw.unwrap_or_default();
    let since = match pairs(&raw).into_iter().find(|(k, _)| k == "since") {
        None => None,
        Some((_, v)) => Some(
            DateTime::parse_from_rfc3339(&v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::BadRequest("since: an RFC 3339 time".into()))?,
        ),
    };
    let view = ListState::parse(&raw);
    let requested = Some(view.account.as_str()).filter(|a| !a.is_empty());
    let scope = readable_scope(&state, &user.principal, requested).await?;
    let mut q = query_for(&view, &user, scope).map_err(ApiError::BadRequest)?;
    q.cursor = None;
    if let Some(since) = since {
        q.created_after = Some(since);
        if q.from.is_none_or(|from| from < since) {
            // A story created since was updated since: the update-time index narrows the search.
            q.from = Some(since);
        }
    }
    let n = state
        .store
        .count_stories(&q, COUNT_CAP + 1)
        .await
        .map_err(|e| ApiError::from_store(e, "story"))?;
    let text = if since.is_some() {
        count_text(n)
    } else {
        matches_text(n)
    };
    Ok(axum::Json(serde_json::json!({ "count": n, "text": text })).into_response())
}

/// Keeps the columns a user chose for their list (or forgets them: the default set).
pub async fn keep_columns(
    State(state): State<AppState>,
    user: WebUser,
    body: axum::body::Bytes,
) -> WebResult<Response> {
    let form = FormData::parse(&body);
    user.check_csrf(form.get("_csrf"))?;
    let value = if form.checked("reset") {
        None
    } else {
        let mut keys = Vec::new();
        for k in form.all("col") {
            let c = COLUMNS
                .iter()
                .find(|c| c.key == k)
                .ok_or_else(|| ApiError::BadRequest(format!("col: there is no column {k:?}")))?;
            keys.push(c.key);
        }
        if keys.is_empty() {
            return Err(ApiError::BadRequest(
                "col: choose at least one column, or go back to the default columns".into(),
            )
            .into());
        }
        Some(keys.join(","))
    };
    state
        .store
        .set_user_setting(&user.user_id, COLUMNS_SETTING, value.as_deref())
        .await
        .map_err(|e| ApiError::from_store(e, "user"))?;
    // Back to the list the form was on, and only to a list.
    let back = form.text("back");
    let back = if back.starts_with("/stories") && !back.starts_with("//") {
        back
    } else {
        "/stories"
    };
    Ok(axum::response::Redirect::to(back).into_response())
}

fn table(
    view: &ListState,
    items: &[Story],
    columns: &[&'static Column],
    selectable: bool,
    sources: &Sources,
) -> Markup {
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
                    @if selectable {
                        th.pick scope="col" {
                            input #pick-page type="checkbox" aria-label="Choose every story on this page";
                        }
                    }
                    @for c in columns {
                        @match c.sort {
                            Some(field) => {
                                @let here = current.name() == field;
                                @let next = if here && desc { field.to_owned() } else { format!("-{field}") };
                                th class={ "col-" (c.key) } scope="col" aria-sort=(if here { if desc { "descending" } else { "ascending" } } else { "none" }) {
                                    a href=(view.with(|s| s.sort = next)) {
                                        (c.heading)
                                        @if here { (if desc { " ▼" } else { " ▲" }) }
                                    }
                                }
                            }
                            None => th class={ "col-" (c.key) } scope="col" { (c.heading) },
                        }
                    }
                }
            }
            tbody {
                @for s in items {
                    tr {
                        @if selectable {
                            td.pick { input type="checkbox" name="id" value=(s.id) aria-label={ "Choose story " (s.id) }; }
                        }
                        @for c in columns { (cell(c, s, sources)) }
                    }
                }
            }
        }
    }
}

fn cell(c: &Column, s: &Story, sources: &Sources) -> Markup {
    let class = format!("col-{}", c.key);
    match c.key {
        "id" => {
            html! { td.id.mono class=(class) { a href={ "/stories/" (s.id) } title=(s.id) { (s.id) } } }
        }
        "indication" => {
            html! { td class=(class) { a.plain href={ "/stories/" (s.id) } { (layout::opt(s.indication.as_deref())) } } }
        }
        "criticality" => html! { td.num class=(class) { (layout::criticality(s.criticality)) } },
        "source" => html! { td class=(class) { (layout::opt(s.device.name.as_deref())) } },
        "producer" => html! { td class=(class) { (producer_label(sources, &s.producer)) } },
        "status" => html! { td class=(class) { (layout::status_badge(s.status.as_str())) } },
        "verdict" => {
            html! { td class=(class) { (layout::opt_word(s.verdict.map(Verdict::label))) } }
        }
        "severity" => {
            html! { td class=(class) { (layout::opt_word(s.severity.map(Severity::label))) } }
        }
        "owner" => html! { td class=(class) { (layout::opt(s.assignee.as_deref())) } },
        "incidents" => html! { td.num class=(class) { (s.incident_count) } },
        "first_signal" => {
            html! { td.when class=(class) { (layout::short_time(s.first_signal_at)) } }
        }
        "last_signal" => html! { td.when class=(class) { (layout::short_time(s.last_signal_at)) } },
        "created" => html! { td.when class=(class) { (layout::short_time(s.created_at)) } },
        "updated" => html! { td.when class=(class) { (layout::short_time(s.updated_at)) } },
        "vendor" => html! { td class=(class) { (s.vendor) } },
        "file_hash" => {
            html! { td.hash class=(class) { @match s.file.sha1.as_deref().or(s.file.sha256.as_deref()) {
                Some(h) => span title=(h) { (h) },
                None => span.none { "—" },
            } } }
        }
        "mitigation" => {
            html! { td class=(class) { @match s.mitigation_status.as_deref().filter(|m| !m.is_empty()) {
                Some(m) => span title=(m) { (dossier_domain::display::humanize(m)) },
                None => span.none { "—" },
            } } }
        }
        _ => html! { td {} },
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

//! The Events page, with the same filters as the API, and its CSV export.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use dossier_domain::event::EventType;
use dossier_store::{Event, EventPage, EventQuery, Store};
use futures_util::StreamExt;
use maud::html;

use super::layout::{self, Nav};
use super::{pairs, urlencode, WebResult, WebUser};
use crate::error::ApiError;
use crate::AppState;

/// Rows in one CSV export; a larger export is paged with the time filters.
const CSV_MAX_ROWS: usize = 100_000;

#[derive(Debug, Default, Clone)]
struct Filters {
    types: Vec<String>,
    connector_id: String,
    story_id: String,
    from: String,
    to: String,
    cursor: String,
}

impl Filters {
    fn parse(raw: &str) -> Self {
        let mut f = Filters::default();
        for (k, v) in pairs(raw) {
            let v = v.trim().to_owned();
            match k.as_str() {
                "type" if !v.is_empty() => f.types.push(v),
                "connector_id" => f.connector_id = v,
                "story_id" => f.story_id = v,
                "from" => f.from = v,
                "to" => f.to = v,
                "cursor" => f.cursor = v,
                _ => {}
            }
        }
        f
    }

    fn query_string(&self, with_cursor: bool) -> String {
        let mut q: Vec<String> = self
            .types
            .iter()
            .map(|t| format!("type={}", urlencode(t)))
            .collect();
        for (k, v) in [
            ("connector_id", &self.connector_id),
            ("story_id", &self.story_id),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.is_empty() {
                q.push(format!("{k}={}", urlencode(v)));
            }
        }
        if with_cursor && !self.cursor.is_empty() {
            q.push(format!("cursor={}", urlencode(&self.cursor)));
        }
        q.join("&")
    }

    fn to_query(&self, account_id: Option<String>, limit: u32) -> Result<EventQuery, String> {
        let types = self
            .types
            .iter()
            .map(|t| EventType::parse(t).ok_or_else(|| format!("type: unknown event type {t:?}")))
            .collect::<Result<_, _>>()?;
        let time = super::stories::parse_local;
        let text = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
        Ok(EventQuery {
            account_id,
            types,
            connector_id: text(&self.connector_id),
            story_id: text(&self.story_id),
            from: time("from", &self.from)?,
            to: time("to", &self.to)?,
            limit,
            cursor: text(&self.cursor),
            ..EventQuery::default()
        })
    }
}

fn require_role(user: &WebUser) -> WebResult<()> {
    if user.principal.roles.is_empty() {
        return Err(ApiError::Forbidden("this user has no role".into()).into());
    }
    Ok(())
}

pub async fn page(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
) -> WebResult<Response> {
    require_role(&user)?;
    let f = Filters::parse(raw.as_deref().unwrap_or_default());
    let scope = user.principal.account_id.clone();
    let (page, error) = match f.to_query(scope.clone(), 100) {
        Err(m) => (None, Some(m)),
        Ok(q) => match state.store.list_events(&q).await {
            Ok(p) => (Some(p), None),
            Err(dossier_store::StoreError::Invalid(m)) => (None, Some(m)),
            Err(e) => return Err(ApiError::from_store(e, "event").into()),
        },
    };
    let connectors = state
        .store
        .list_connectors(scope.as_deref())
        .await
        .map_err(|e| ApiError::from_store(e, "connector"))?;
    let qs = f.query_string(false);
    let body = html! {
        h1 { "Events" }
        form.filters method="get" action="/events" aria-label="Filter events" {
            fieldset {
                legend { "Type" }
                @for t in EventType::ALL {
                    label.check { input type="checkbox" name="type" value=(t.as_str()) checked[f.types.iter().any(|x| x == t.as_str())]; (t.as_str().replace('_', " ")) }
                }
            }
            div {
                label for="connector_id" { "Connector" }
                select #connector_id name="connector_id" {
                    option value="" { "All connectors" }
                    @for c in &connectors {
                        option value=(c.id) selected[c.id == f.connector_id] { (c.name) }
                    }
                }
            }
            div { label for="story_id" { "Story ID" } input #story_id type="text" name="story_id" value=(f.story_id); }
            div { label for="from" { "From " span.hint { "(UTC)" } } input #from type="datetime-local" name="from" value=(f.from); }
            div { label for="to" { "To " span.hint { "(UTC)" } } input #to type="datetime-local" name="to" value=(f.to); }
            div.actions {
                button type="submit" { "Apply filters" }
                a href="/events" { "Reset" }
                a.button.secondary href={ "/events.csv" @if !qs.is_empty() { "?" (qs) } } download { "Export CSV" }
            }
        }
        @if let Some(e) = &error { p.error role="alert" { (e) } }
        @if let Some(p) = &page {
            @if p.items.is_empty() {
                div.empty role="status" {
                    p { strong { "No events match." } " Events appear for every new or updated threat and story, and for connector errors when a connector tracks them." }
                }
            } @else {
                table.events {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Type" } th scope="col" { "Message" } th scope="col" { "Story" } th scope="col" { "Threat" } } }
                    tbody {
                        @for e in &p.items {
                            tr {
                                td { (layout::time(e.at)) }
                                td { (e.event_type.as_str().replace('_', " ")) }
                                td { (layout::tenant(&e.message)) }
                                td { @match &e.story_id { Some(s) => a.mono href={ "/stories/" (s) } { (s) }, None => span.none { "—" } } }
                                td.mono { (layout::opt(e.incident_id.as_deref())) }
                            }
                        }
                    }
                }
                nav.pager aria-label="Pages" {
                    @if !f.cursor.is_empty() { a href={ "/events" @if !qs.is_empty() { "?" (qs) } } { "« Newest" } }
                    @if let Some(next) = &p.next_cursor {
                        a rel="next" href={ "/events?" (Filters { cursor: next.clone(), ..f.clone() }.query_string(true)) } { "Older »" }
                    }
                }
            }
        }
    };
    Ok(layout::page("Events", &user, Nav::Events, body).into_response())
}

/// A CSV field, quoted, with formula-starting text defused for spreadsheets.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn csv_row(e: &Event) -> String {
    [
        e.id.as_str(),
        &e.at.to_rfc3339(),
        e.event_type.as_str(),
        &e.account_id,
        e.connector_id.as_deref().unwrap_or_default(),
        e.story_id.as_deref().unwrap_or_default(),
        e.incident_id.as_deref().unwrap_or_default(),
        &e.message,
    ]
    .iter()
    .map(|f| csv_field(f))
    .collect::<Vec<_>>()
    .join(",")
        + "\r\n"
}

/// The CSV export, streamed: the store is read a page of events at a time as the client
/// takes the rows, so the server holds one page whatever the export's size (eight exports of
/// 100,000 rows at once must not take the server's memory).
pub async fn csv(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
) -> WebResult<Response> {
    require_role(&user)?;
    let f = Filters::parse(raw.as_deref().unwrap_or_default());
    let q = f
        .to_query(user.principal.account_id.clone(), CSV_PAGE)
        .map_err(ApiError::BadRequest)?;
    // The first page is read before answering: a store that fails at once gives an error
    // page, not a download cut short.
    let first = state
        .store
        .list_events(&q)
        .await
        .map_err(|e| ApiError::from_store(e, "event"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"dossier-events.csv\"",
            ),
        ],
        Body::from_stream(csv_rows(state.store.clone(), q, first)),
    )
        .into_response())
}

/// Events read from the store per page of a CSV export.
const CSV_PAGE: u32 = 1000;

/// Where a streamed export is: the query of its next page, the page read but not yet sent,
/// and how many rows it has sent.
struct Export {
    store: Arc<dyn Store>,
    q: EventQuery,
    read: Option<EventPage>,
    rows: usize,
    done: bool,
}

/// The CSV's header, then its rows a page at a time, up to [`CSV_MAX_ROWS`]. A store error
/// part way ends the body with an error, so the client sees the download fail rather than
/// take a short file for the whole.
fn csv_rows(
    store: Arc<dyn Store>,
    q: EventQuery,
    first: EventPage,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let header =
        Bytes::from_static(b"id,at,type,account_id,connector_id,story_id,incident_id,message\r\n");
    let export = Export {
        store,
        q,
        read: Some(first),
        rows: 0,
        done: false,
    };
    let rows = futures_util::stream::unfold(export, |mut x| async move {
        if x.done {
            return None;
        }
        let page = match x.read.take() {
            Some(page) => page,
            None => match x.store.list_events(&x.q).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "events export cut short: the store failed");
                    x.done = true;
                    return Some((Err(std::io::Error::other(e.to_string())), x));
                }
            },
        };
        let mut out = String::with_capacity(page.items.len() * 160);
        for e in &page.items {
            out.push_str(&csv_row(e));
        }
        x.rows += page.items.len();
        match page.next_cursor {
            Some(c) if x.rows < CSV_MAX_ROWS => x.q.cursor = Some(c),
            _ => x.done = true,
        }
        Some((Ok(Bytes::from(out)), x))
    });
    futures_util::stream::once(async move { Ok(header) }).chain(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("a \"b\", c"), "\"a \"\"b\"\", c\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "\"'=HYPERLINK(1)\"");
        assert_eq!(csv_field("plain"), "\"plain\"");
    }
}

//! An incident's own notes and timeline in its producer's console, as a panel beside the
//! story page's timeline (read through [`crate::vendor`]).

use std::sync::Arc;

use maud::{html, Markup};

use super::layout;
use crate::auth::Principal;
use crate::AppState;

/// An incident's notes and timeline in its producer's console, or why they cannot be shown.
pub(super) struct VendorPanel {
    incident_id: String,
    read: Result<Arc<crate::vendor::Read>, String>,
}

impl VendorPanel {
    /// Reads them for the page; an error is kept to be shown in the panel.
    pub(super) async fn read(
        state: &AppState,
        p: &Principal,
        story_id: &str,
        incident_id: &str,
    ) -> Self {
        Self {
            incident_id: incident_id.to_owned(),
            read: crate::vendor::read(state, p, story_id, incident_id)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// The panel, beside the story's timeline.
    pub(super) fn render(&self, story_id: &str) -> Markup {
        html! {
            section #vendor aria-labelledby="vendor-title" {
                @match &self.read {
                    Err(why) => {
                        h2 #vendor-title { "In the console: " span.mono { (self.incident_id) } }
                        p.notice.error role="alert" { (why) }
                    },
                    Ok(read) => {
                        h2 #vendor-title { "In " (read.vendor) ": " span.mono { (self.incident_id) } }
                        p.hint {
                            "Read from " (read.vendor) " " (layout::time(read.fetched_at)) "; kept five minutes."
                            @if read.notes.truncated { " The console holds more than the latest 100 entries shown." }
                        }
                        h3 { "Notes (" (read.notes.notes.len()) ")" }
                        @if read.notes.notes.is_empty() {
                            p.empty { "No notes on this " (read.record) " in the console." }
                        } @else {
                            ul.vendor-notes {
                                @for n in &read.notes.notes {
                                    li {
                                        (layout::tenant(&n.text))
                                        span.hint { " — " (layout::opt(n.author.as_deref())) ", " @match n.created_at { Some(at) => (layout::time(at)), None => "no date" } }
                                    }
                                }
                            }
                        }
                        h3 { "Timeline (" (read.notes.timeline.len()) ")" }
                        @if read.notes.timeline.is_empty() {
                            p.empty { "The console lists no activity for it." }
                        } @else {
                            table.timeline.vendor-timeline {
                                thead { tr { th scope="col" { "When" } th scope="col" { "What" } } }
                                tbody {
                                    @for a in &read.notes.timeline {
                                        tr {
                                            td { @match a.created_at { Some(at) => (layout::time(at)), None => "no date" } }
                                            td { (layout::tenant(&a.text)) }
                                        }
                                    }
                                }
                            }
                        }
                    },
                }
                p { a href={ "/stories/" (story_id) "#timeline-title" } { "Hide the console's notes and timeline" } }
            }
        }
    }
}

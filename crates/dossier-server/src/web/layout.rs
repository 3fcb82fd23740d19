//! The page frame, the stylesheet and the few helpers every page uses.

use axum::http::header;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};

use super::WebUser;

/// The sections of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Stories,
    Connectors,
    Events,
    Users,
    Audit,
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Dossier" }
            link rel="stylesheet" href="/static/app.css";
            script src="/static/app.js" defer {}
        }
    }
}

/// A page without navigation (sign-in, errors before a session).
#[expect(
    clippy::needless_pass_by_value,
    reason = "every caller hands over the body it has just built and has no use for it after"
)]
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                main #main { (body) }
            }
        }
    }
}

/// A page of the signed-in UI.
#[expect(
    clippy::needless_pass_by_value,
    reason = "every caller hands over the body it has just built and has no use for it after"
)]
pub fn page(title: &str, user: &WebUser, nav: Nav, body: Markup) -> Markup {
    let link = |to: &str, label: &str, me: Nav| {
        html! {
            li { a href=(to) aria-current=[(me == nav).then_some("page")] { (label) } }
        }
    };
    let roles: Vec<&str> = user.principal.roles.iter().map(|r| r.as_str()).collect();
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/stories" { "Dossier" }
                    nav aria-label="Main" {
                        ul {
                            (link("/stories", "Stories", Nav::Stories))
                            (link("/connectors", "Connectors", Nav::Connectors))
                            (link("/events", "Events", Nav::Events))
                            @if user.is_admin() {
                                (link("/users", "Users", Nav::Users))
                                (link("/audit", "Audit log", Nav::Audit))
                            }
                        }
                    }
                    div.who {
                        span { (user.username) " · " (roles.join(", ")) }
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="_csrf" value=(user.csrf);
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

pub fn error_page(title: &str, message: &str) -> Markup {
    bare(
        title,
        html! {
            h1 { (title) }
            p.error role="alert" { (message) }
            p { a href="/stories" { "Back to the stories" } }
        },
    )
}

/// A timestamp for people, with the exact value for machines.
pub fn time(t: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(t.to_rfc3339()) { (t.format("%Y-%m-%d %H:%M UTC")) }
    }
}

/// A timestamp for a table cell: minutes, UTC said once in the caption.
pub fn short_time(t: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(t.to_rfc3339()) title=(t.to_rfc3339()) { (t.format("%Y-%m-%d %H:%M")) }
    }
}

pub fn opt_time(t: Option<DateTime<Utc>>) -> Markup {
    if let Some(t) = t {
        time(t)
    } else {
        html! { span.none { "—" } }
    }
}

/// Text that came from a tenant or a user, isolated (`<bdi>`) so that right-to-left letters in
/// it cannot reorder the page's own words around it. Its bidi and C0 controls are made
/// visible or dropped for every HTML page in one place ([`super::shown_as_is`]).
pub fn tenant(s: &str) -> Markup {
    html! { bdi { (s) } }
}

pub fn opt(s: Option<&str>) -> Markup {
    if let Some(s) = s.filter(|s| !s.is_empty()) {
        tenant(s)
    } else {
        html! { span.none { "—" } }
    }
}

/// One of Dossier's own words (a verdict, a severity), or a dash when there is none: not
/// tenant text, so not isolated.
pub fn opt_word(s: Option<&str>) -> Markup {
    if let Some(s) = s.filter(|s| !s.is_empty()) {
        html! { (s) }
    } else {
        html! { span.none { "—" } }
    }
}

/// "3 days 4 hours", "12 minutes", "under a minute".
pub fn duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds().max(0);
    let (days, hours, mins) = (secs / 86_400, (secs % 86_400) / 3600, (secs % 3600) / 60);
    let unit = |n: i64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    if days > 0 {
        format!("{} {}", unit(days, "day"), unit(hours, "hour"))
    } else if hours > 0 {
        format!("{} {}", unit(hours, "hour"), unit(mins, "minute"))
    } else if mins > 0 {
        unit(mins, "minute")
    } else {
        "under a minute".into()
    }
}

/// A criticality score with a colour class: 1–3 low, 4–6 medium, 7–8 high, 9–10 critical.
pub fn criticality(score: u8) -> Markup {
    let class = match score {
        0..=3 => "crit low",
        4..=6 => "crit medium",
        7..=8 => "crit high",
        _ => "crit critical",
    };
    html! { span class=(class) title="criticality, 1 to 10" { (score) } }
}

/// A story's or a connector's status, in words, coloured by its stable name.
pub fn status_badge(status: &str) -> Markup {
    let label = dossier_domain::story::Status::parse(status).map_or_else(
        || dossier_domain::display::humanize(status).into_owned(),
        |s| s.label().to_owned(),
    );
    html! { span class={ "badge status-" (status) } { (label) } }
}

pub async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("static/app.css"),
    )
}

pub async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("static/app.js"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_say_them() {
        assert_eq!(duration(chrono::Duration::seconds(5)), "under a minute");
        assert_eq!(duration(chrono::Duration::minutes(1)), "1 minute");
        assert_eq!(
            duration(chrono::Duration::minutes(135)),
            "2 hours 15 minutes"
        );
        assert_eq!(duration(chrono::Duration::hours(49)), "2 days 1 hour");
    }
}

//! The web UI: server-rendered HTML over the same checks as the API. Every page works without
//! JavaScript (a small script only adds keyboard shortcuts); tables are semantic HTML; every
//! state-changing form carries the session's CSRF token and is refused from another origin.

mod admin;
mod bulk;
mod connectors;
mod events;
mod layout;
mod respond;
mod session;
mod stories;
mod story;
mod vendor;

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiError;
use crate::AppState;

pub use session::{LoginLimiter, WebUser, COOKIE};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/stories") }))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/stories", get(stories::page))
        .route("/stories/rows", get(stories::rows))
        .route("/stories/count", get(stories::count))
        .route("/stories/bulk", post(bulk::review))
        .route("/stories/columns", post(stories::keep_columns))
        .route("/stories/{id}", get(story::page).post(story::act))
        .route("/stories/{id}/comments", post(story::comment))
        .route(
            "/stories/{id}/respond",
            get(respond::confirm).post(respond::perform_form),
        )
        .route(
            "/stories/{id}/comments/{comment_id}/delete",
            post(story::delete_comment),
        )
        .route(
            "/connectors",
            get(connectors::list).post(connectors::create),
        )
        .route("/connectors/new", get(connectors::new_form))
        .route(
            "/connectors/{id}",
            get(connectors::edit_form).post(connectors::update),
        )
        .route("/connectors/{id}/delete", post(connectors::delete))
        .route("/events", get(events::page))
        .route("/events.csv", get(events::csv))
        .route("/users", get(admin::users).post(admin::create_user))
        .route("/users/{id}/delete", post(admin::delete_user))
        .route("/audit", get(admin::audit))
        .route("/static/app.css", get(layout::css))
        .route("/static/app.js", get(layout::js))
        .layer(axum::middleware::from_fn(guard))
}

/// The display rule ([`dossier_domain::display::for_display`]) applied once to every HTML
/// page the server sends, whichever handler wrote it and whatever tenant or user text it
/// holds: bidi controls are shown as `⟨U+202E⟩` and C0 controls dropped. Dossier's own
/// markup has neither, so only the text that came in is changed, and no render can forget.
pub async fn shown_as_is(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if !html {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return WebError::Api(ApiError::Internal(e.to_string())).into_response(),
    };
    let text = String::from_utf8_lossy(&bytes);
    match dossier_domain::display::for_display(&text) {
        std::borrow::Cow::Borrowed(_) => Response::from_parts(parts, axum::body::Body::from(bytes)),
        std::borrow::Cow::Owned(shown) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, axum::body::Body::from(shown))
        }
    }
}

/// Refuses state-changing requests from other sites (before any session is looked at, so the
/// sign-in form is covered too), and sets the headers every page carries.
async fn guard(req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD && !same_origin(&req) {
        return WebError::Api(ApiError::Forbidden(
            "this form was sent from another site; open Dossier and try again".into(),
        ))
        .into_response();
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// A request is same-origin when the browser says so (`Sec-Fetch-Site`), or its `Origin`
/// names the host it was sent to. Clients that send neither (curl, old browsers) are let
/// through: the CSRF token still guards every form behind a session.
fn same_origin(req: &Request) -> bool {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return false;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    // Behind a reverse proxy the browser's host is in X-Forwarded-Host (a cross-site form
    // cannot set that header), and Host may name the proxy's upstream instead.
    let hosts: Vec<&str> = [header::HOST.as_str(), "x-forwarded-host"]
        .iter()
        .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .collect();
    url::Url::parse(origin).is_ok_and(|u| {
        let authority = match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => return false,
        };
        hosts.iter().any(|h| authority.eq_ignore_ascii_case(h))
    })
}

/// What a page can fail with.
#[derive(Debug)]
pub enum WebError {
    /// No session: sign in, then come back to `next`.
    SignIn {
        next: String,
    },
    Api(ApiError),
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        WebError::Api(e)
    }
}

pub type WebResult<T> = Result<T, WebError>;

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::SignIn { next } => {
                let to = format!("/login?next={}", urlencode(&next));
                Redirect::to(&to).into_response()
            }
            WebError::Api(e) => {
                let (status, title) = match &e {
                    ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "That did not work"),
                    ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "Please sign in"),
                    ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "Not allowed"),
                    ApiError::NotFound(_) | ApiError::Missing(_) => {
                        (StatusCode::NOT_FOUND, "Not found")
                    }
                    ApiError::BadGateway(_) => {
                        (StatusCode::BAD_GATEWAY, "The tenant did not answer")
                    }
                    ApiError::Conflict(_) => (StatusCode::CONFLICT, "That did not work"),
                    ApiError::MethodNotAllowed => {
                        (StatusCode::METHOD_NOT_ALLOWED, "That did not work")
                    }
                    ApiError::PayloadTooLarge(_) => {
                        (StatusCode::PAYLOAD_TOO_LARGE, "That did not work")
                    }
                    ApiError::Unavailable(_) => {
                        (StatusCode::SERVICE_UNAVAILABLE, "Not possible right now")
                    }
                    ApiError::Internal(detail) => {
                        tracing::error!(error = %detail, "page failed");
                        (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong")
                    }
                };
                (status, layout::error_page(title, &e.to_string())).into_response()
            }
        }
    }
}

/// Percent-encodes a query value.
pub(crate) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The fields of a form body, repeated keys kept (checkbox groups).
pub(crate) struct FormData(Vec<(String, String)>);

impl FormData {
    pub(crate) fn parse(body: &[u8]) -> Self {
        FormData(url::form_urlencoded::parse(body).into_owned().collect())
    }

    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    /// The field's value, empty when absent.
    pub(crate) fn text(&self, k: &str) -> &str {
        self.get(k).unwrap_or_default()
    }

    pub(crate) fn checked(&self, k: &str) -> bool {
        matches!(self.text(k), "1" | "on" | "true")
    }

    pub(crate) fn all<'a>(&'a self, k: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a query string into its pairs, keeping repeated keys.
pub(crate) fn pairs(raw: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn post(headers: &[(&str, &str)]) -> Request {
        let mut b = Request::builder().method("POST").uri("/stories/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn forms_from_this_site_pass_and_from_others_do_not() {
        assert!(same_origin(&post(&[
            ("host", "dossier.example"),
            ("origin", "https://dossier.example")
        ])));
        assert!(!same_origin(&post(&[
            ("host", "dossier.example"),
            ("origin", "https://evil.example")
        ])));
        // Behind a proxy that sends its upstream as Host.
        assert!(same_origin(&post(&[
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "dossier.example"),
            ("origin", "https://dossier.example"),
        ])));
        assert!(!same_origin(&post(&[
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "dossier.example"),
            ("origin", "https://evil.example"),
        ])));
        assert!(!same_origin(&post(&[
            ("host", "dossier.example"),
            ("sec-fetch-site", "cross-site")
        ])));
        // No Origin at all (curl): the CSRF token decides.
        assert!(same_origin(&post(&[("host", "dossier.example")])));
    }
}

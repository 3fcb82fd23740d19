//! Helpers for the web UI tests: users made straight in the store, and a browser-like session
//! over plain HTTP that keeps its cookie and the CSRF token of the pages it fetched.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dossier_domain::access::Role;
use reqwest::header::{HeaderMap, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::{json, Value};

use crate::{App, TOKEN};

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "dossier_session";

static NEXT_USER: AtomicUsize = AtomicUsize::new(1);

/// A client that does not follow redirects, so that every 303 and its `Location` are seen.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The `dossier_session` cookie a response sets: the whole `Set-Cookie` line.
pub fn session_set_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{SESSION_COOKIE}=")))
        .map(str::to_owned)
}

/// The value of a `Set-Cookie` line (`name=value; attributes` → `value`).
pub fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default()
}

/// The attributes of a `Set-Cookie` line, trimmed (`["Path=/", "HttpOnly", …]`).
pub fn cookie_attributes(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect()
}

/// The CSRF token a page carries in its forms.
pub fn csrf_of(html: &str) -> Option<String> {
    const MARK: &str = "name=\"_csrf\" value=\"";
    let start = html.find(MARK)? + MARK.len();
    let len = html[start..].find('"')?;
    Some(html[start..start + len].to_owned())
}

/// The text between the first `start` and the next `end` after it.
pub fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

/// The rows (`<tr>…</tr>`) of the first table whose opening tag contains `table_mark`.
pub fn table_rows(html: &str, table_mark: &str) -> Vec<String> {
    let Some(at) = html.find(table_mark) else {
        return Vec::new();
    };
    let rest = &html[at..];
    let table = &rest[..rest.find("</table>").unwrap_or(rest.len())];
    let body = table.split_once("<tbody>").map_or(table, |(_, b)| b);
    body.split("<tr>")
        .skip(1)
        .map(|r| r.split("</tr>").next().unwrap_or_default().to_owned())
        .collect()
}

/// How the CSRF token of a form is sent.
#[derive(Debug, Clone, Copy)]
pub enum Csrf<'a> {
    /// The session's own token, as the page gave it.
    Session,
    /// No `_csrf` field at all.
    Missing,
    /// This value instead.
    Value(&'a str),
}

/// Extra request headers: (name, value).
pub type Headers<'a> = &'a [(&'a str, &'a str)];

/// What a form post returned: status, body and the `Location` of a redirect.
pub type Posted = (u16, String, Option<String>);

impl App {
    /// Makes a web user straight in the store: (username, password).
    pub async fn user(&self, account: Option<&str>, roles: &[Role]) -> (String, String) {
        let n = NEXT_USER.fetch_add(1, Ordering::Relaxed);
        let first = roles.first().map_or("nobody", |r| r.as_str());
        let username = format!("{first}-{n}");
        let password = format!("correct-horse-{n}-battery");
        let record = dossier_server::passwords::new_user(
            &username,
            &password,
            roles.to_vec(),
            account.map(str::to_owned),
        )
        .unwrap();
        self.state.store.create_user(&record).await.unwrap();
        (username, password)
    }

    /// Makes a user and signs it in.
    pub async fn signed_in(&self, account: Option<&str>, roles: &[Role]) -> WebSession {
        let (username, password) = self.user(account, roles).await;
        WebSession::sign_in(self, &username, &password).await
    }

    /// Sends the sign-in form as a browser would, with extra headers; the raw response.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        next: Option<&str>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = vec![("username", username), ("password", password)];
        if let Some(n) = next {
            form.push(("next", n));
        }
        let mut req = no_redirects()
            .post(format!("{}/login", self.base))
            .form(&form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// A connector of the key's account to the tenant at `url`.
    pub async fn create_connector_to(&self, key: &str, url: &str) -> Value {
        let (status, body) = self
            .call(
                "POST",
                "/api/v1/connectors",
                Some(key),
                Some(json!({
                    "kind": "sentinelone",
                    "name": "Tenant",
                    "tenant_url": url,
                    "api_token": TOKEN,
                    "track_errors": true,
                })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Waits until the connector has brought in `threats` threats and finished its backfill.
    pub async fn until_backfilled(&self, key: &str, connector_id: &str, threats: u64) {
        let path = format!("/api/v1/connectors/{connector_id}");
        self.until(60, || async {
            let (_, c) = self.call("GET", &path, Some(key), None).await;
            c["status"] == "connected"
                && c["health"]["threats"].as_u64() == Some(threats)
                && c["backfill"].is_null()
        })
        .await;
    }

    /// Every item of a paged API list (`items` and `next_cursor`), following the cursor.
    pub async fn all_items(&self, key: &str, path_and_query: &str) -> Vec<Value> {
        let sep = if path_and_query.contains('?') {
            '&'
        } else {
            '?'
        };
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let c = cursor.as_ref().map_or(String::new(), |c| {
                format!(
                    "&cursor={}",
                    url::form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>()
                )
            });
            let (status, page) = self
                .call(
                    "GET",
                    &format!("{path_and_query}{sep}limit=1000{c}"),
                    Some(key),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{path_and_query}: {page}");
            out.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) if !next.is_empty() => cursor = Some(next.to_owned()),
                _ => break,
            }
        }
        out
    }

    /// A story as the API shows it.
    pub async fn story(&self, key: &str, id: &str) -> Value {
        let (status, s) = self
            .call("GET", &format!("/api/v1/stories/{id}"), Some(key), None)
            .await;
        assert_eq!(status, 200, "{s}");
        s
    }
}

/// A signed-in browser: its cookie, and the CSRF token of the last page that carried one.
pub struct WebSession {
    pub base: String,
    pub http: reqwest::Client,
    pub username: String,
    /// The session cookie's value.
    pub cookie: String,
    csrf: Option<String>,
}

impl WebSession {
    /// Signs in through the form; panics unless it succeeds with a session cookie.
    pub async fn sign_in(app: &App, username: &str, password: &str) -> Self {
        let resp = app.login(username, password, None, &[]).await;
        let status = resp.status().as_u16();
        let set = session_set_cookie(resp.headers());
        assert_eq!(status, 303, "sign-in of {username}");
        let set = set.expect("a session cookie");
        WebSession {
            base: app.base.clone(),
            http: no_redirects(),
            username: username.to_owned(),
            cookie: cookie_value(&set),
            csrf: None,
        }
    }

    /// A session that sends this cookie value (a stale or forged one, say).
    pub fn with_cookie(app: &App, cookie: &str) -> Self {
        WebSession {
            base: app.base.clone(),
            http: no_redirects(),
            username: String::new(),
            cookie: cookie.to_owned(),
            csrf: None,
        }
    }

    fn cookie_header(&self) -> String {
        format!("{SESSION_COOKIE}={}", self.cookie)
    }

    /// GET with the cookie; the raw response (headers included).
    pub async fn get_response(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap()
    }

    /// GET with the cookie: (status, body). Keeps the page's CSRF token.
    pub async fn get(&mut self, path: &str) -> (u16, String) {
        let (status, body, _) = self.get_with_location(path).await;
        (status, body)
    }

    /// GET with the cookie: (status, body, Location).
    pub async fn get_with_location(&mut self, path: &str) -> Posted {
        let resp = self.get_response(path).await;
        let status = resp.status().as_u16();
        let location = location(resp.headers());
        let body = resp.text().await.unwrap();
        if let Some(t) = csrf_of(&body) {
            self.csrf = Some(t);
        }
        (status, body, location)
    }

    /// The session's CSRF token, from the last page fetched (or from /events, which every
    /// role may open).
    pub async fn csrf(&mut self) -> String {
        if let Some(t) = &self.csrf {
            return t.clone();
        }
        let (status, body) = self.get("/events").await;
        assert_eq!(status, 200, "/events: {body}");
        self.csrf.clone().expect("a CSRF token on /events")
    }

    /// POST a form with the session's CSRF token: (status, body, Location).
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Posted {
        self.post_form_with(path, fields, Csrf::Session, &[]).await
    }

    /// POST a form with the token sent as `csrf` says, and extra headers.
    pub async fn post_form_with(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        csrf: Csrf<'_>,
        headers: &[(&str, &str)],
    ) -> Posted {
        let token = match csrf {
            Csrf::Session => Some(self.csrf().await),
            Csrf::Missing => None,
            Csrf::Value(v) => Some(v.to_owned()),
        };
        let mut form: Vec<(&str, &str)> = Vec::new();
        if let Some(t) = &token {
            form.push(("_csrf", t));
        }
        form.extend_from_slice(fields);
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .form(&form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let location = location(resp.headers());
        let body = resp.text().await.unwrap();
        (status, body, location)
    }
}

/// The `Location` of a response.
pub fn location(headers: &HeaderMap) -> Option<String> {
    headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The `Content-Type` of a response.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

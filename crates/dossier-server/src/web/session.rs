//! Sign-in, sessions and CSRF. A session cookie is 256 random bits, HttpOnly, SameSite=Lax,
//! and Secure when the request came over TLS; the database keeps only its SHA-256. Each
//! session has its own CSRF token that every state-changing form must send back.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use dossier_domain::access::Permissions;
use dossier_store::{SessionRecord, StoreError};
use maud::html;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::layout;
use super::{WebError, WebResult};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::{passwords, AppState};

pub const COOKIE: &str = "dossier_session";
const SESSION_HOURS: i64 = 12;

/// Failed sign-ins allowed in the window: for one user name from one address, for one user
/// name from anywhere (slow guessing spread over many addresses), and from one address on
/// names that exist (a spray over real names). The first is low; the others are high, so that
/// nobody can lock a user out by failing on purpose from elsewhere.
///
/// Failures on names that do not exist count for that name (per address and overall), as any
/// name's do, but not for the address: otherwise a flood of made-up names from an address
/// shared by many people (a NAT, an office proxy) would lock every real user behind it out.
/// Every limit is looked at before the password is checked and applies to any name alike, so
/// the answer to a sign-in does not depend on whether its name exists (see docs/security.md
/// for what the address count can still tell over many attempts).
const MAX_FAILURES_PER_USER_AND_ADDRESS: usize = 5;
const MAX_FAILURES_PER_USER: usize = 50;
const MAX_FAILURES_PER_ADDRESS: usize = 100;
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A signed-in user, with what the API would know of an API key: the same checks apply.
#[derive(Clone)]
pub struct WebUser {
    pub principal: Principal,
    /// The user's id, for what they keep of their own (their list's columns).
    pub user_id: String,
    pub username: String,
    pub csrf: String,
    session_hash: String,
}

impl std::fmt::Debug for WebUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebUser")
            .field("username", &self.username)
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

impl WebUser {
    /// Checks the CSRF token a form sent.
    ///
    /// # Errors
    /// Forbidden when it is missing or not this session's.
    pub fn check_csrf(&self, sent: Option<&str>) -> WebResult<()> {
        let sent = sent.unwrap_or_default().as_bytes();
        let want = self.csrf.as_bytes();
        let same = sent.len() == want.len()
            && sent.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if same {
            Ok(())
        } else {
            Err(WebError::Api(ApiError::Forbidden(
                "this form has expired; reload the page and try again".into(),
            )))
        }
    }

    /// Whether this user manages users and reads the audit log.
    #[must_use]
    pub fn is_admin(&self) -> bool {
        self.principal
            .roles
            .iter()
            .any(|r| matches!(r, dossier_domain::access::Role::Admin))
            || self.principal.perms.all_accounts
    }
}

fn hash_cookie(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// The path of the page a request came from, when it came from this site.
fn referring_page(headers: &HeaderMap) -> Option<String> {
    let referer = url::Url::parse(headers.get(header::REFERER)?.to_str().ok()?).ok()?;
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let authority = match referer.port() {
        Some(p) => format!("{}:{p}", referer.host_str()?),
        None => referer.host_str()?.to_owned(),
    };
    if !authority.eq_ignore_ascii_case(host) {
        return None;
    }
    Some(match referer.query() {
        Some(q) => format!("{}?{q}", referer.path()),
        None => referer.path().to_owned(),
    })
}

/// Whether the browser reached us over TLS (Dossier itself speaks plain HTTP behind a
/// TLS-terminating proxy, which says so in `X-Forwarded-Proto`).
fn over_tls(state: &AppState, headers: &HeaderMap) -> bool {
    state.config.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn set_cookie(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("dossier_session=; Max-Age=0"))
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // After signing in, come back here; a form sent after the session ended comes back to
        // the page it was sent from (its address only takes POSTs).
        let next = if parts.method == axum::http::Method::GET {
            parts
                .uri
                .path_and_query()
                .map_or("/stories".to_owned(), |p| p.as_str().to_owned())
        } else {
            referring_page(&parts.headers).unwrap_or_else(|| "/stories".to_owned())
        };
        let sign_in = || WebError::SignIn { next: next.clone() };
        let value = cookie_value(&parts.headers).ok_or_else(sign_in)?;
        let id_hash = hash_cookie(&value);
        let (session, user) = match state.store.find_session(&id_hash, Utc::now()).await {
            Ok(found) => found,
            Err(StoreError::NotFound) => return Err(sign_in()),
            Err(e) => return Err(WebError::Api(ApiError::from_store(e, "session"))),
        };
        let perms = Permissions::of(&user.roles);
        Ok(WebUser {
            principal: Principal {
                actor: user.username.clone(),
                user: Some(user.username.clone()),
                account_id: if perms.all_accounts {
                    None
                } else {
                    user.account_id
                },
                roles: user.roles,
                perms,
            },
            user_id: user.id,
            username: user.username,
            csrf: session.csrf,
            session_hash: session.id_hash,
        })
    }
}

/// Counts failed sign-ins per user name and per client address in a sliding window, and
/// bounds how many passwords are checked at once.
#[derive(Debug)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// One permit per password check under way. Each argon2 check takes ~19 MiB and a core
    /// for tens of milliseconds; failures on made-up names are not limited per address (see
    /// the limits' comment), so a flood of them must queue here rather than take every core
    /// and gigabytes of memory from the rest of the server.
    verifying: tokio::sync::Semaphore,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self::new(cores.clamp(1, 8))
    }
}

impl LoginLimiter {
    /// A limiter that checks at most `concurrent_checks` passwords at once.
    #[must_use]
    pub fn new(concurrent_checks: usize) -> Self {
        Self {
            failures: Mutex::default(),
            verifying: tokio::sync::Semaphore::new(concurrent_checks.max(1)),
        }
    }

    /// The permits of password checks (one per check under way).
    #[must_use]
    pub fn password_checks(&self) -> &tokio::sync::Semaphore {
        &self.verifying
    }

    fn recent(&self, key: &str, now: Instant) -> usize {
        let Ok(mut map) = self.failures.lock() else {
            return 0;
        };
        let Some(q) = map.get_mut(key) else {
            return 0;
        };
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) > FAILURE_WINDOW)
        {
            q.pop_front();
        }
        q.len()
    }

    fn keys(user: &str, addr: &str) -> [(String, usize); 3] {
        // A name longer than any valid one is cut, so keys stay small.
        let user: String = user.chars().take(passwords::MAX_USERNAME + 1).collect();
        [
            (
                format!("ua:{user}|{addr}"),
                MAX_FAILURES_PER_USER_AND_ADDRESS,
            ),
            (format!("u:{user}"), MAX_FAILURES_PER_USER),
            (format!("a:{addr}"), MAX_FAILURES_PER_ADDRESS),
        ]
    }

    /// What the database keeps of a key (when failures are counted there): a digest, never
    /// the name as typed, which may be a password typed in the wrong field.
    fn digest(key: &str) -> String {
        hex::encode(Sha256::digest(key.as_bytes()))
    }

    /// Whether a sign-in for this user from this address may be tried now. Where nodes share
    /// a database, their failures are counted together; if the database cannot count them,
    /// this node's own count still holds.
    async fn allowed(&self, store: &dyn dossier_store::Store, user: &str, addr: &str) -> bool {
        let keys = Self::keys(user, addr);
        if store.shares_sign_in_failures() {
            let digests: Vec<String> = keys.iter().map(|(k, _)| Self::digest(k)).collect();
            let since = Utc::now() - window();
            match store.sign_in_failures(&digests, since).await {
                Ok(counts) => {
                    return counts
                        .iter()
                        .zip(&keys)
                        .all(|(n, (_, max))| usize::try_from(*n).unwrap_or(usize::MAX) < *max);
                }
                Err(e) => tracing::warn!(error = %e, "cannot read shared sign-in failures"),
            }
        }
        let now = Instant::now();
        keys.iter().all(|(k, max)| self.recent(k, now) < *max)
    }

    /// Counts a failure; `known` says whether the name exists (see the limits' comment).
    async fn failed(&self, store: &dyn dossier_store::Store, user: &str, addr: &str, known: bool) {
        let [pair, name, address] = Self::keys(user, addr);
        let counted = if known {
            vec![pair, name, address]
        } else {
            vec![pair, name]
        };
        if store.shares_sign_in_failures() {
            let digests: Vec<String> = counted.iter().map(|(k, _)| Self::digest(k)).collect();
            let now = Utc::now();
            match store
                .add_sign_in_failure(&digests, now, now - window())
                .await
            {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot count a sign-in failure for every node");
                }
            }
        }
        let now = Instant::now();
        if let Ok(mut map) = self.failures.lock() {
            if map.len() > 100_000 {
                // Bounded memory under a spray of names: old entries go first.
                map.retain(|_, q| {
                    q.back()
                        .is_some_and(|t| now.duration_since(*t) < FAILURE_WINDOW)
                });
            }
            for (k, _) in counted {
                map.entry(k).or_default().push_back(now);
            }
        }
    }

    async fn succeeded(&self, store: &dyn dossier_store::Store, user: &str, addr: &str) {
        let [(pair, _), _, _] = Self::keys(user, addr);
        if store.shares_sign_in_failures() {
            if let Err(e) = store.clear_sign_in_failures(&Self::digest(&pair)).await {
                tracing::warn!(error = %e, "cannot clear shared sign-in failures");
            }
        }
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&pair);
        }
    }
}

/// The sliding window of sign-in failures, as a span of the database's timestamps.
fn window() -> chrono::Duration {
    chrono::Duration::from_std(FAILURE_WINDOW).unwrap_or(chrono::Duration::minutes(15))
}

/// The client's address: the connection's peer, or the address a trusted proxy names
/// ([`crate::client_addr::client_ip`]); empty when unknown, as in tests that drive the router
/// directly.
pub struct ClientAddr(String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(String::new, |c| {
                    crate::client_addr::client_ip(
                        c.0.ip(),
                        &parts.headers,
                        &state.config.trusted_proxies,
                    )
                    .to_string()
                }),
        ))
    }
}

#[derive(Debug, Deserialize)]
pub struct NextParam {
    next: Option<String>,
}

/// Only a path on this site may follow a sign-in (no open redirect).
/// Only printable ASCII: anything else cannot be a `Location` header as it is. Browsers drop
/// tabs and newlines from URLs and read `\\` as `/`, so `/\t/evil.example`
/// would leave the site: any of them, or whitespace, refuses the path.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.chars().all(|c| c.is_ascii_graphic() && c != '\\') =>
        {
            n.to_owned()
        }
        _ => "/stories".to_owned(),
    }
}

fn login_form(next: &str, username: &str, error: Option<&str>) -> maud::Markup {
    layout::bare(
        "Sign in",
        html! {
            section.signin aria-labelledby="signin-title" {
                h1 #signin-title { "Sign in to Dossier" }
                @if let Some(e) = error {
                    p.error role="alert" { (e) }
                }
                form method="post" action="/login" {
                    input type="hidden" name="next" value=(next);
                    label for="username" { "Username" }
                    input #username type="text" name="username" value=(username) autocomplete="username" required autofocus;
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// Writes a sign-in, refusal or sign-out to the audit log of the user's account (an operator's,
/// or a name no user has, under the empty account, which only operators read). Never the
/// password; and for a name no user has, not the name either: it may be a password typed in
/// the wrong box. The sign-in itself stands whether or not this is written.
async fn audit_session(
    state: &AppState,
    user: Option<(Option<&str>, &str)>,
    action: &str,
    addr: &str,
    detail: &str,
) {
    let (account, actor) = user.map_or(("", "unknown user"), |(account, name)| {
        (account.unwrap_or_default(), name)
    });
    let mut detail = detail.to_owned();
    if !addr.is_empty() {
        if !detail.is_empty() {
            detail.push_str(", ");
        }
        detail.push_str("from ");
        detail.push_str(addr);
    }
    if let Err(e) = state
        .store
        .audit(account, actor, action, actor, &detail, Utc::now())
        .await
    {
        tracing::error!(error = %e, action, "cannot write the audit log");
    }
}

pub async fn login_page(Query(q): Query<NextParam>) -> Response {
    login_form(&safe_next(q.next.as_deref()), "", None).into_response()
}

struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientAddr(addr): ClientAddr,
    body: axum::body::Bytes,
) -> Response {
    let fields = super::FormData::parse(&body);
    let form = LoginForm {
        username: fields.text("username").to_owned(),
        password: fields.text("password").to_owned(),
        next: fields.get("next").map(str::to_owned),
    };
    let next = safe_next(form.next.as_deref());
    let username = form.username.trim().to_lowercase();
    if !state
        .login_limiter
        .allowed(state.store.as_ref(), &username, &addr)
        .await
    {
        tracing::warn!(client = %addr, "sign-in refused: too many failed attempts");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            login_form(
                &next,
                &form.username,
                Some("Too many failed sign-ins. Wait 15 minutes and try again."),
            ),
        )
            .into_response();
    }
    let user = match state.store.find_user(&username).await {
        Ok(u) => Some(u),
        Err(StoreError::NotFound) => None,
        Err(e) => return WebError::Api(ApiError::from_store(e, "user")).into_response(),
    };
    let stored = user.as_ref().map_or_else(
        || passwords::decoy_hash().to_owned(),
        |u| u.password_hash.clone(),
    );
    let password = form.password;
    let ok = match state.login_limiter.verifying.acquire().await {
        Ok(_permit) => tokio::task::spawn_blocking(move || passwords::verify(&password, &stored))
            .await
            .unwrap_or(false),
        Err(_) => false,
    };
    let known = user.is_some();
    let user = match (ok, user) {
        (true, Some(user)) => user,
        (_, user) => {
            state
                .login_limiter
                .failed(state.store.as_ref(), &username, &addr, known)
                .await;
            tracing::info!(client = %addr, "sign-in failed");
            let why = if known {
                "wrong password"
            } else {
                "no such user"
            };
            let who = user
                .as_ref()
                .map(|u| (u.account_id.as_deref(), u.username.as_str()));
            audit_session(&state, who, "sign_in_refused", &addr, why).await;
            return (
                StatusCode::UNAUTHORIZED,
                login_form(&next, &form.username, Some("Wrong username or password.")),
            )
                .into_response();
        }
    };
    state
        .login_limiter
        .succeeded(state.store.as_ref(), &username, &addr)
        .await;
    let value = random_token();
    let now = Utc::now();
    let session = SessionRecord {
        id_hash: hash_cookie(&value),
        user_id: user.id.clone(),
        csrf: random_token(),
        created_at: now,
        expires_at: now + chrono::Duration::hours(SESSION_HOURS),
    };
    if let Err(e) = state.store.create_session(&session).await {
        return WebError::Api(ApiError::from_store(e, "session")).into_response();
    }
    tracing::info!(user = %user.username, "signed in");
    let who = (user.account_id.as_deref(), user.username.as_str());
    audit_session(&state, Some(who), "signed_in", &addr, "").await;
    let mut res = Redirect::to(&next).into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&value, SESSION_HOURS * 3600, over_tls(&state, &headers)),
    );
    res
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientAddr(addr): ClientAddr,
    user: WebUser,
    body: axum::body::Bytes,
) -> WebResult<Response> {
    user.check_csrf(super::FormData::parse(&body).get("_csrf"))?;
    state
        .store
        .delete_session(&user.session_hash)
        .await
        .map_err(|e| ApiError::from_store(e, "session"))?;
    let who = (user.principal.account_id.as_deref(), user.username.as_str());
    audit_session(&state, Some(who), "signed_out", &addr, "").await;
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie("", 0, over_tls(&state, &headers)),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_paths_on_this_site_follow_a_sign_in() {
        assert_eq!(
            safe_next(Some("/stories?status=open")),
            "/stories?status=open"
        );
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "https://evil.example",
            "evil",
            "/\u{e9}",
        ] {
            assert_eq!(safe_next(Some(bad)), "/stories", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/stories");
    }
}

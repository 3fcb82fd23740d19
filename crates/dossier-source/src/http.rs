//! What every source's HTTP client shares, whatever its vendor: the `reqwest` client a
//! deployment allows (rustls, extra trust roots, no redirects, internal addresses refused at
//! connect time), the retry budgets and their backoff, a body read under a size cap, and the
//! words of a transport error or of a vendor shown to operators.
//!
//! What an answer means (which status is a bad secret, which body is an error envelope, which
//! rate-limit header to honour) stays in each source's crate.

use std::error::Error as _;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rand::Rng;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::HeaderValue;
use reqwest::Response;
use tokio::time::Instant;
use url::{Host, Url};

use crate::outline::{Outline, Scanner};
use crate::{RetryObserver, Retrying};

/// Resolves with the system resolver and keeps only the addresses the address guard
/// ([`dossier_domain::net`]) allows: a DNS resolver that drops the others at every connection,
/// so that a host validated when the connector was saved cannot later be re-pointed (DNS
/// rebinding) at the metadata service or the LAN. With `allow_private` (a deployment that
/// allows private tenants) only link-local and metadata addresses are dropped.
#[derive(Debug, Default, Clone, Copy)]
pub struct PublicOnly {
    pub allow_private: bool,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| !dossier_domain::net::is_refused(a.ip(), allow_private))
                .collect();
            if allowed.is_empty() {
                let shown = all
                    .first()
                    .map_or_else(|| "nothing".to_owned(), |a| a.ip().to_string());
                let hint = if allow_private {
                    "link-local and metadata addresses are refused even with \
                     --allow-private-tenants"
                } else {
                    "start the server with --allow-private-tenants to permit this"
                };
                return Err(
                    format!("{host} resolves to an internal address ({shown}); {hint}").into(),
                );
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The internal address a URL's host is written as, if it is one. An address literal never
/// goes through a resolver, so [`PublicOnly`] never sees it: clients check it when built.
pub fn internal_literal(url: &Url) -> Option<IpAddr> {
    refused_literal(url, false)
}

/// The address a URL's host is written as, if the guard refuses it: with `allow_private`
/// only a link-local or metadata address is refused.
pub fn refused_literal(url: &Url, allow_private: bool) -> Option<IpAddr> {
    let ip: IpAddr = match url.host()? {
        Host::Ipv4(ip) => ip.into(),
        Host::Ipv6(ip) => ip.into(),
        Host::Domain(_) => return None,
    };
    dossier_domain::net::is_refused(ip, allow_private).then_some(ip)
}

/// The certificates of a PEM bundle of extra trust roots.
///
/// # Errors
/// A message when the bundle cannot be read or holds no certificate: checked when the server
/// starts, so that a wrong file is refused at once rather than failing every connector.
pub fn extra_roots(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, String> {
    let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no certificate in PEM".into());
    }
    Ok(certs)
}

/// How a source's `reqwest` client is built.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions<'a> {
    pub connect_timeout: Duration,
    /// Whole-request timeout, body included.
    pub request_timeout: Duration,
    pub user_agent: &'a str,
    /// Resolve through [`PublicOnly`] refusing every internal address, not only link-local and
    /// metadata ones. Address literals are the caller's to check
    /// ([`internal_literal`]), with its own words for the URL.
    pub refuse_internal_addresses: bool,
    /// Extra trust roots (every certificate in the PEM text), added to the built-in roots.
    pub extra_roots_pem: Option<&'a [u8]>,
}

/// Builds the client every source uses: rustls only, gzip, no redirects (an API that does not
/// redirect means a wrong URL by one, and following it could carry a secret or a token
/// somewhere unexpected), the extra trust roots, and [`PublicOnly`].
///
/// # Errors
/// A message for unusable PEM (`extra trust roots: …`) or a client that cannot be built.
pub fn build_client(options: &ClientOptions<'_>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(options.connect_timeout)
        .timeout(options.request_timeout)
        .user_agent(options.user_agent)
        .gzip(true)
        .redirect(reqwest::redirect::Policy::none());
    // Link-local and metadata addresses are dropped even when private tenants are allowed.
    builder = builder.dns_resolver(Arc::new(PublicOnly {
        allow_private: !options.refuse_internal_addresses,
    }));
    if let Some(pem) = options.extra_roots_pem {
        for cert in extra_roots(pem).map_err(|e| format!("extra trust roots: {e}"))? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| e.without_url().to_string())
}

/// Exponential backoff bounds, with full jitter.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The ceiling of the `n`-th retry's delay (0-based): `min(cap, base * 2^n)`.
    pub fn ceiling(self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The `n`-th retry's delay: uniform in `0..=ceiling(n)` ("full jitter", so that many
    /// pollers throttled together do not retry together).
    pub fn delay(self, n: u32) -> Duration {
        let ceiling = self.ceiling(n);
        if ceiling.is_zero() {
            return ceiling;
        }
        rand::thread_rng().gen_range(Duration::ZERO..=ceiling)
    }
}

/// The retry budgets of one call: one for answers worth asking again (429, 5xx), one for
/// transport failures (timeouts, dropped connections), and the time since the first try.
#[derive(Debug)]
pub struct Retries {
    backoff: Backoff,
    http: (u32, u32),
    transport: (u32, u32),
    first_try: Instant,
}

/// The next retry of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// How long to wait before it.
    pub delay: Duration,
    /// Which retry this is (1 for the first), of at most `of` for this kind of failure.
    pub retry: u32,
    pub of: u32,
    /// How long the call has been going on, its first try included.
    pub failing_for: Duration,
}

impl Retries {
    /// Budgets of `max_retries` retries of 429/5xx and `max_transport_retries` of transport
    /// failures, starting now.
    pub fn new(backoff: Backoff, max_retries: u32, max_transport_retries: u32) -> Self {
        Retries {
            backoff,
            http: (0, max_retries),
            transport: (0, max_transport_retries),
            first_try: Instant::now(),
        }
    }

    /// The retry after a failure (a `transport` one or not) the server asked to wait `after`
    /// for, if any; `None` when its budget is spent, or when `after` is longer than the
    /// backoff cap: a long wait is the caller's to schedule, not the client's to sleep through.
    pub fn next(&mut self, transport: bool, after: Option<Duration>) -> Option<Retry> {
        let (used, of) = if transport {
            (&mut self.transport.0, self.transport.1)
        } else {
            (&mut self.http.0, self.http.1)
        };
        if *used >= of {
            return None;
        }
        let delay = match after {
            Some(d) if d > self.backoff.cap => return None,
            Some(d) => d,
            None => self.backoff.delay(*used),
        };
        *used += 1;
        Some(Retry {
            delay,
            retry: *used,
            of,
            failing_for: self.first_try.elapsed(),
        })
    }
}

/// A try that failed with a client's own error `E`, and that the client is about to make again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRetrying<E> {
    /// Why the try failed.
    pub error: E,
    /// Which retry this is (1 for the first), of at most `of` for this kind of failure.
    pub retry: u32,
    pub of: u32,
    /// How long the client waits before it.
    pub delay: Duration,
    /// How long the call has been going on: since it began, its first try included.
    pub failing_for: Duration,
}

impl<E> ClientRetrying<E> {
    /// The retry of a call that failed with `error`.
    pub fn new(error: E, retry: &Retry) -> Self {
        ClientRetrying {
            error,
            retry: retry.retry,
            of: retry.of,
            delay: retry.delay,
            failing_for: retry.failing_for,
        }
    }
}

/// Called with each [`ClientRetrying`]; it runs inside the call, so it must return at once.
pub type ClientRetryObserver<E> = Arc<dyn Fn(&ClientRetrying<E>) + Send + Sync>;

/// A client's observer that tells the worker's `told` of each retry, the error in an
/// operator's words (`reason`) and whether it was a timeout (`timed_out`).
pub fn tell_worker<E: 'static>(
    told: RetryObserver,
    reason: fn(&E) -> String,
    timed_out: fn(&E) -> bool,
) -> ClientRetryObserver<E> {
    Arc::new(move |r: &ClientRetrying<E>| {
        told(&Retrying {
            reason: reason(&r.error),
            retry: r.retry,
            of: r.of,
            failing_for: r.failing_for,
            timed_out: timed_out(&r.error),
        });
    })
}

/// An access token, as the `Authorization` value it is sent in, and when to renew it.
#[derive(Debug, Clone)]
pub struct Token {
    /// `Bearer …`, marked sensitive.
    pub header: HeaderValue,
    pub renew_at: Instant,
}

/// The access token a client keeps between calls, shared by its clones: fetched when there
/// is none or it is due for renewal, and forgotten when the API refuses it.
#[derive(Debug, Default)]
pub struct TokenCache {
    slot: tokio::sync::Mutex<Option<Token>>,
}

impl TokenCache {
    /// The kept token's `Authorization` value, or the one `fetch` gets (and is kept) when
    /// there is none or it is due. Concurrent callers wait for the one fetch.
    ///
    /// # Errors
    /// `fetch`'s.
    pub async fn get_or_fetch<E>(
        &self,
        fetch: impl Future<Output = Result<Token, E>>,
    ) -> Result<HeaderValue, E> {
        let mut slot = self.slot.lock().await;
        if let Some(token) = slot.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(token.header.clone());
        }
        let token = fetch.await?;
        let header = token.header.clone();
        *slot = Some(token);
        Ok(header)
    }

    /// Drops the kept token if it is still `refused` (another call may have renewed it).
    pub async fn forget(&self, refused: &HeaderValue) {
        let mut slot = self.slot.lock().await;
        if slot.as_ref().is_some_and(|t| t.header == *refused) {
            *slot = None;
        }
    }
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// It is (or says it is) larger than the limit; `outline` holds its short values, from a
    /// scan of the rest as it streamed past ([`Outline`]), for a source to name the record
    /// of a page of one and go past it.
    TooLarge { limit: u64, outline: Box<Outline> },
    /// The connection failed while it came.
    Transport(reqwest::Error),
}

/// How far past the limit a body is scanned for its outline, at least: a larger one leaves
/// its outline incomplete.
const SCAN_AT_LEAST: u64 = 64 << 20;

/// Reads the body chunk by chunk (decompressed), giving up keeping it as soon as it passes
/// `limit`: the rest is only scanned for its outline (up to four times the limit, and only
/// while it holds one record: a page of more stops at its second), then dropped.
///
/// # Errors
/// [`BodyError::TooLarge`] past `limit`; [`BodyError::Transport`] when the body stops coming.
pub async fn read_body(resp: Response, limit: u64) -> Result<Vec<u8>, BodyError> {
    let scan_max = limit.saturating_mul(4).max(SCAN_AT_LEAST);
    let declared = resp.content_length();
    // Sized once for a page of a thousand records (megabytes), rather than regrown and copied
    // as it arrives; a declared size is only trusted that far before the bytes come.
    let capacity = declared.unwrap_or(0).min(limit).min(16 << 20);
    let mut body = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    let mut stream = resp.bytes_stream();
    let mut scanner: Option<Scanner> = None;
    if declared.is_some_and(|n| n > limit) {
        if declared.is_some_and(|n| n > scan_max) {
            return Err(too_large(limit, Scanner::default()));
        }
        scanner = Some(Scanner::default());
    }
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BodyError::Transport)?;
        if let Some(s) = scanner.as_mut() {
            s.feed(&chunk);
            // A page of many records names none of them: asked for again with fewer, at
            // once, rather than read to its end.
            if s.bytes() > scan_max || s.many() {
                break;
            }
            continue;
        }
        if u64::try_from(body.len() + chunk.len()).unwrap_or(u64::MAX) > limit {
            let mut s = Scanner::default();
            s.feed(&body);
            s.feed(&chunk);
            body = Vec::new();
            if s.many() {
                return Err(too_large(limit, s));
            }
            scanner = Some(s);
            continue;
        }
        body.extend_from_slice(&chunk);
    }
    match scanner {
        Some(s) => Err(too_large(limit, s)),
        None => Ok(body),
    }
}

fn too_large(limit: u64, scanned: Scanner) -> BodyError {
    BodyError::TooLarge {
        limit,
        outline: Box::new(scanned.finish()),
    }
}

/// The error and its sources, joined; repeated messages (hyper wraps a lot) dropped.
pub fn error_chain(err: &reqwest::Error) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Tells whether `message` contains any of `needles` (lowercase), in any letter case.
pub fn mentions(message: &str, needles: &[&str]) -> bool {
    let m = message.to_ascii_lowercase();
    needles.iter().any(|needle| m.contains(needle))
}

/// A vendor's own words (an error's title, detail or message) as shown to operators: on one
/// line, without control characters, and cut to `max_chars` (an ellipsis marking the cut).
pub fn tenant_text(s: &str, max_chars: usize) -> String {
    let mut out: String = s
        .split_whitespace()
        .flat_map(|w| std::iter::once(' ').chain(w.chars().filter(|c| !c.is_control())))
        .skip(1)
        .take(max_chars + 1)
        .collect();
    if out.chars().count() > max_chars {
        out = out.chars().take(max_chars.saturating_sub(1)).collect();
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let b = Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        };
        let c: Vec<u64> = (0..8).map(|n| b.ceiling(n).as_secs()).collect();
        assert_eq!(c, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.ceiling(200), Duration::from_secs(60));
        for n in 0..10 {
            assert!(b.delay(n) <= b.ceiling(n));
        }
    }

    #[test]
    fn each_budget_is_spent_on_its_own_and_long_waits_are_returned() {
        let b = Backoff {
            base: Duration::ZERO,
            cap: Duration::from_secs(60),
        };
        let mut r = Retries::new(b, 2, 1);
        let first = r.next(false, Some(Duration::from_secs(3))).unwrap();
        assert_eq!(
            (first.retry, first.of, first.delay),
            (1, 2, Duration::from_secs(3))
        );
        assert_eq!(r.next(true, None).map(|t| (t.retry, t.of)), Some((1, 1)));
        assert_eq!(r.next(true, None), None, "the transport budget is spent");
        assert_eq!(r.next(false, Some(Duration::from_secs(61))), None);
        assert_eq!(r.next(false, None).map(|t| t.retry), Some(2));
        assert_eq!(r.next(false, None), None);
    }

    #[test]
    fn internal_literals_are_found_and_names_are_not() {
        let ip = |u: &str| internal_literal(&Url::parse(u).unwrap());
        assert_eq!(
            ip("https://169.254.169.254"),
            "169.254.169.254".parse().ok()
        );
        assert_eq!(ip("https://[::1]:8443"), "::1".parse().ok());
        assert_eq!(ip("https://8.8.8.8"), None);
        assert_eq!(ip("https://localhost"), None);
        let lab = |u: &str| refused_literal(&Url::parse(u).unwrap(), true);
        assert_eq!(lab("https://127.0.0.1:8443"), None);
        assert_eq!(lab("https://[fd00:ec2::254]"), "fd00:ec2::254".parse().ok());
    }

    /// The resolver each connection goes through (no connection is made): what a rebound
    /// name resolves to is judged like a saved address, metadata whatever the switch says.
    #[tokio::test]
    async fn the_resolver_drops_what_the_guard_refuses() {
        let resolve = |host: &'static str, allow_private: bool| async move {
            let name: Name = host.parse().unwrap();
            PublicOnly { allow_private }
                .resolve(name)
                .await
                .map(|a| a.map(|a| a.ip()).collect::<Vec<_>>())
                .map_err(|e| e.to_string())
        };
        let err = resolve("127.0.0.1", false).await.unwrap_err();
        assert!(err.contains("--allow-private-tenants"), "{err}");
        assert_eq!(
            resolve("127.0.0.1", true).await.unwrap(),
            vec!["127.0.0.1".parse::<IpAddr>().unwrap()]
        );
        for host in ["169.254.169.254", "198.18.0.1", "100.64.0.1"] {
            assert!(resolve(host, false).await.is_err(), "{host}");
        }
        let err = resolve("169.254.169.254", true).await.unwrap_err();
        assert!(err.contains("even with --allow-private-tenants"), "{err}");
        assert!(resolve("::ffff:169.254.169.254", true).await.is_err());
    }

    /// A response of `body`, its size known beforehand (`declared`) or streamed in chunks of
    /// 1,000 bytes without one.
    fn response(body: &str, declared: bool) -> Response {
        if declared {
            return Response::from(::http::Response::new(body.to_owned()));
        }
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body
            .as_bytes()
            .chunks(1000)
            .map(|c| Ok(c.to_vec()))
            .collect();
        let streamed = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
        Response::from(::http::Response::new(streamed))
    }

    /// A body over the limit is not kept, but scanned for its outline when it holds one
    /// record, and given up at its second record otherwise.
    #[tokio::test]
    async fn a_body_over_the_limit_is_outlined_not_kept() {
        let pad = "x".repeat(10_000);
        let one = format!(
            r#"{{"data":[{{"id":"7","pad":"{pad}","t":{{"u":"2025-01-01T00:00:00Z"}}}}],"pagination":{{"nextCursor":"n"}}}}"#
        );
        let many = format!(r#"{{"data":[{{"id":"7","pad":"{pad}"}},{{"id":"8"}}],"z":"end"}}"#);
        for declared in [true, false] {
            assert_eq!(
                response(&one, declared).content_length().is_some(),
                declared
            );
            let Err(BodyError::TooLarge { limit, outline }) =
                read_body(response(&one, declared), 1024).await
            else {
                panic!("over the limit");
            };
            assert_eq!(limit, 1024);
            assert!(outline.complete);
            assert_eq!(outline.get("/data/0/id"), Some("7"));
            assert_eq!(outline.get("/data/0/t/u"), Some("2025-01-01T00:00:00Z"));
            assert_eq!(outline.get("/pagination/nextCursor"), Some("n"));
            let Err(BodyError::TooLarge { outline, .. }) =
                read_body(response(&many, declared), 1024).await
            else {
                panic!("over the limit");
            };
            assert!(!outline.complete, "given up at the second record");
            assert_eq!(outline.get("/z"), None);
        }
        let small = read_body(response(r#"{"data":[]}"#, true), 1024).await;
        assert_eq!(small.ok().as_deref(), Some(&br#"{"data":[]}"#[..]));
    }

    #[test]
    fn vendor_text_is_one_bounded_line() {
        assert_eq!(tenant_text("a\r\n b\u{7}c", 10), "a bc");
        let cut = tenant_text(&"x ".repeat(500), 200);
        assert_eq!(cut.chars().count(), 200);
        assert!(cut.ends_with('…'));
        assert_eq!(tenant_text("exactly", 7), "exactly");
    }

    #[test]
    fn bad_pem_is_refused() {
        assert!(extra_roots(b"not pem").is_err());
        let options = ClientOptions {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            user_agent: "dossier/test",
            refuse_internal_addresses: true,
            extra_roots_pem: Some(b"not pem"),
        };
        let e = build_client(&options).unwrap_err();
        assert!(e.starts_with("extra trust roots: "), "{e}");
    }
}

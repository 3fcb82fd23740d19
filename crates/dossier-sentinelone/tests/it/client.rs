//! How the client fails: what is retried and what is not, limits, timeouts, TLS, and that no
//! error carries the token.

use std::io::Write;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::Response;
use dossier_sentinelone::{Client, ClientError, ThreatQuery};

use crate::server::{json, serve, Server, EMPTY_PAGE, ERR_401, ERR_403, ERR_429, ERR_500, TOKEN};

pub fn assert_no_token(err: &ClientError) {
    let text = format!("{err} | {err:?} | {}", err.human_reason());
    assert!(!text.contains(TOKEN), "token leaked: {text}");
}

async fn page(server: &Server) -> Result<dossier_sentinelone::Page, ClientError> {
    server.client().threats_page(&ThreatQuery::default()).await
}

/// A tenant that takes 30 s to answer, and a client config that waits 300 ms for it.
async fn never_answering() -> (Server, dossier_sentinelone::ClientConfig) {
    let server = serve(|_, _| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        json(200, EMPTY_PAGE)
    })
    .await;
    let mut cfg = server.config();
    cfg.request_timeout = Duration::from_millis(300);
    (server, cfg)
}

/// The first page, read by a client with `cfg`.
async fn page_with(
    cfg: dossier_sentinelone::ClientConfig,
) -> Result<dossier_sentinelone::Page, ClientError> {
    Client::new(cfg)
        .unwrap()
        .threats_page(&ThreatQuery::default())
        .await
}

#[tokio::test]
async fn unauthorized_is_not_retried() {
    let server = serve(|_, _| async { json(401, ERR_401) }).await;
    let err = page(&server).await.unwrap_err();
    assert_eq!(
        err,
        ClientError::Unauthorized {
            code: Some(4_010_010),
            title: Some("Authentication Failed".into())
        }
    );
    assert_eq!(server.hits(), 1);
    assert_eq!(err.kind(), "bad_token");
    assert!(err.is_token_rejected());
    assert_no_token(&err);
}

#[tokio::test]
async fn forbidden_is_not_retried() {
    let server = serve(|_, _| async { json(403, ERR_403) }).await;
    let err = page(&server).await.unwrap_err();
    assert_eq!(
        err,
        ClientError::Forbidden {
            code: Some(4_030_010),
            title: Some("Insufficient permissions".into())
        }
    );
    assert_eq!(err.kind(), "insufficient_permissions");
    assert_eq!(server.hits(), 1);
    assert_no_token(&err);
}

#[tokio::test]
async fn rate_limit_with_retry_after_is_honoured() {
    let server = serve(|n, _| async move {
        if n == 0 {
            let mut r = json(429, ERR_429);
            r.headers_mut().insert("retry-after", "1".parse().unwrap());
            r
        } else {
            json(200, EMPTY_PAGE)
        }
    })
    .await;
    let mut cfg = server.config();
    cfg.backoff_cap = Duration::from_secs(5);
    let started = Instant::now();
    page_with(cfg).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn rate_limit_without_retry_after_backs_off_then_gives_up() {
    let server = serve(|n, _| async move {
        if n < 2 {
            json(429, ERR_429)
        } else {
            json(200, EMPTY_PAGE)
        }
    })
    .await;
    page(&server).await.unwrap();
    assert_eq!(server.hits(), 3);

    let server = serve(|_, _| async { json(429, ERR_429) }).await;
    let err = page(&server).await.unwrap_err();
    assert_eq!(err, ClientError::RateLimited { retry_after: None });
    assert_eq!(server.hits(), 4, "one try and max_retries = 3 retries");
    assert_eq!(err.kind(), "rate_limited");
}

#[tokio::test]
async fn a_long_retry_after_is_returned_not_slept() {
    let server = serve(|_, _| async {
        let mut r = json(429, ERR_429);
        r.headers_mut()
            .insert("retry-after", "120".parse().unwrap());
        r
    })
    .await;
    let err = page(&server).await.unwrap_err();
    assert_eq!(
        err,
        ClientError::RateLimited {
            retry_after: Some(Duration::from_secs(120))
        }
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn server_errors_are_retried() {
    let server = serve(|n, _| async move {
        if n == 0 {
            json(500, ERR_500)
        } else {
            json(200, EMPTY_PAGE)
        }
    })
    .await;
    page(&server).await.unwrap();
    assert_eq!(server.hits(), 2);

    let server = serve(|_, _| async { json(503, ERR_500) }).await;
    let err = page(&server).await.unwrap_err();
    assert_eq!(
        err,
        ClientError::Server {
            status: 503,
            code: Some(5_000_010)
        }
    );
    assert_eq!(err.kind(), "tenant_error");
    assert_eq!(server.hits(), 4);
}

/// Each retry is told to the observer before the client waits for it, with why, which retry
/// of how many, and how long the call has been failing; a call that succeeds at once tells
/// nothing, and neither does the last failure, which is returned instead.
#[tokio::test]
async fn every_retry_is_told_before_it_is_made() {
    use std::sync::{Arc, Mutex};
    let observed = |cfg: &mut dossier_sentinelone::ClientConfig| {
        let seen: Arc<Mutex<Vec<dossier_sentinelone::Retrying>>> = Arc::default();
        let sink = Arc::clone(&seen);
        cfg.on_retry = Some(Arc::new(move |r: &dossier_sentinelone::Retrying| {
            sink.lock().unwrap().push(r.clone());
        }));
        seen
    };

    let server = serve(|n, _| async move {
        match n {
            0 => json(503, ERR_500),
            1 => {
                let mut r = json(429, ERR_429);
                r.headers_mut().insert("retry-after", "0".parse().unwrap());
                r
            }
            _ => json(200, EMPTY_PAGE),
        }
    })
    .await;
    let mut cfg = server.config();
    let seen = observed(&mut cfg);
    page_with(cfg).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        (&seen[0].error, seen[0].retry, seen[0].of),
        (
            &ClientError::Server {
                status: 503,
                code: Some(5_000_010)
            },
            1,
            3
        )
    );
    assert_eq!(
        (&seen[1].error, seen[1].retry, seen[1].delay),
        (
            &ClientError::RateLimited {
                retry_after: Some(Duration::ZERO)
            },
            2,
            Duration::ZERO
        )
    );
    assert!(seen[1].failing_for >= seen[0].failing_for + seen[0].delay);

    // Timeouts count against the transport budget: one retry told, then the error returned.
    let (_server, mut cfg) = never_answering().await;
    let seen = observed(&mut cfg);
    let err = page_with(cfg).await.unwrap_err();
    assert_eq!(err, ClientError::Timeout);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (&seen[0].error, seen[0].retry, seen[0].of),
        (&ClientError::Timeout, 1, 1)
    );
    assert!(seen[0].failing_for >= Duration::from_millis(300));

    // A call that succeeds at once tells nothing.
    let server = serve(|_, _| async { json(200, EMPTY_PAGE) }).await;
    let mut cfg = server.config();
    let seen = observed(&mut cfg);
    page_with(cfg).await.unwrap();
    assert!(seen.lock().unwrap().is_empty());
}

/// A page cut short on its way (valid HTTP, JSON that stops before its end) is asked for
/// again within the transport budget, like a dropped connection; garbage is not.
#[tokio::test]
async fn a_page_cut_off_is_asked_for_again() {
    let whole = r#"{"data":[{"id":"1"}],"pagination":{"nextCursor":null,"totalItems":1}}"#;
    let cut = &whole[..whole.len() / 2];
    let server = serve(move |n, _| async move {
        if n == 0 {
            json(200, cut)
        } else {
            json(200, whole)
        }
    })
    .await;
    let p = page(&server).await.unwrap();
    assert_eq!(p.threats.len(), 1);
    assert_eq!(server.hits(), 2);

    // Cut off every time: a bounded number of tries, then a bad response that says why.
    let server = serve(move |_, _| async move { json(200, cut) }).await;
    let err = page(&server).await.unwrap_err();
    assert_eq!(err.kind(), "bad_response");
    assert!(err.to_string().contains("cut off"), "{err}");
    assert!(
        err.human_reason().contains("retrying later"),
        "{}",
        err.human_reason()
    );
    let budget = server.config().max_transport_retries as usize;
    assert_eq!(server.hits(), budget + 1);

    // Not JSON at all is a wrong answer, not a transient one: no second try.
    let server = serve(|_, _| async { json(200, "<html>login</html>") }).await;
    assert_eq!(page(&server).await.unwrap_err().kind(), "bad_response");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn other_client_errors_are_rejections() {
    let body = r#"{"errors":[{"code":4000010,"detail":null,"title":"Validation Error"}]}"#;
    let server = serve(move |_, _| async move { json(400, body) }).await;
    let err = page(&server).await.unwrap_err();
    assert_eq!(
        err,
        ClientError::Rejected {
            status: 400,
            code: Some(4_000_010),
            title: Some("Validation Error".into())
        }
    );
    assert_eq!(server.hits(), 1);

    // The detail says what was wrong, and is kept; a tenant's words are cut to one short line.
    let sample =
        include_str!("../../../../testdata/sentinelone/issue_error_400_invalid_identifier.json");
    let server = serve(move |_, _| async move { json(400, sample) }).await;
    let err = page(&server).await.unwrap_err();
    assert!(
        err.human_reason().contains(
            "Invalid Identifier: Account ID 768962829865462837 in url didn't match data url"
        ),
        "{}",
        err.human_reason()
    );
    let long = format!(
        r#"{{"errors":[{{"code":4000010,"title":"Bad\nrequest","detail":"{}"}}]}}"#,
        "x".repeat(20_000)
    );
    let server = serve(move |_, _| {
        let long = long.clone();
        async move { json(400, &long) }
    })
    .await;
    let ClientError::Rejected {
        title: Some(title), ..
    } = page(&server).await.unwrap_err()
    else {
        panic!("a rejection with its title");
    };
    assert!(title.starts_with("Bad request: xxx"), "{title}");
    assert_eq!(title.chars().count(), 200, "{title}");
    assert!(title.ends_with('…'));
}

/// (A truncated body is asked for again first: see `a_page_cut_off_is_asked_for_again`.)
#[tokio::test]
async fn garbage_bodies_are_bad_responses() {
    for body in ["<html>login</html>", r#"{"data":5}"#, ""] {
        let server = serve(move |_, _| async move { json(200, body) }).await;
        let err = page(&server).await.unwrap_err();
        assert!(
            matches!(err, ClientError::BadResponse(_)),
            "{body}: {err:?}"
        );
        assert_eq!(err.kind(), "bad_response");
        assert_eq!(server.hits(), 1, "{body}");
    }
}

/// A page never holds more threats than its `limit` asked for: one that does is not the API's,
/// and is refused before a single threat of it is mapped.
#[tokio::test]
async fn a_page_holding_more_threats_than_asked_for_is_refused() {
    let threats: Vec<String> = (0..6).map(|i| format!(r#"{{"id":"{i}"}}"#)).collect();
    let body = format!(r#"{{"data":[{}],"pagination":{{}}}}"#, threats.join(","));
    let server = serve(move |_, _| {
        let body = body.clone();
        async move { json(200, &body) }
    })
    .await;
    let client = server.client();
    for (limit, held) in [(6, true), (5, false), (0, false)] {
        let q = ThreatQuery {
            limit,
            ..ThreatQuery::default()
        };
        match client.threats_page(&q).await {
            Ok(page) => assert!(held, "limit {limit}: {} threats", page.threats.len()),
            Err(e) => {
                assert!(!held, "limit {limit}: {e:?}");
                assert!(e.to_string().contains("held 6"), "limit {limit}: {e}");
                assert_eq!(e.kind(), "bad_response");
            }
        }
    }
}

/// A tenant that answers a cursor with that same cursor and more threats would keep a walk
/// going forever, at the token's full rate; one whose cursor is too long to send back could
/// not go on either. An empty page that hands its cursor back is the walk's end.
#[tokio::test]
async fn a_cursor_that_would_never_end_the_walk_is_refused() {
    let long = "c".repeat(dossier_sentinelone::client::MAX_CURSOR_LEN + 1);
    let server = serve(move |_, seen| {
        let long = long.clone();
        async move {
            let (data, next) = if seen.query.contains("cursor=long") {
                (r#"{"id":"1"}"#, long)
            } else if seen.query.contains("cursor=empty") {
                ("", " empty ".to_owned())
            } else {
                (r#"{"id":"1"}"#, "same".to_owned())
            };
            json(
                200,
                &format!(r#"{{"data":[{data}],"pagination":{{"nextCursor":"{next}"}}}}"#),
            )
        }
    })
    .await;
    let client = server.client();
    let at = |cursor: Option<&str>| ThreatQuery {
        cursor: cursor.map(Into::into),
        ..ThreatQuery::default()
    };
    let first = client.threats_page(&at(None)).await.unwrap();
    assert_eq!(first.next_cursor.as_deref(), Some("same"));
    let other = client.threats_page(&at(Some("other"))).await.unwrap();
    assert_eq!(other.next_cursor.as_deref(), Some("same"));
    let err = client.threats_page(&at(Some("same"))).await.unwrap_err();
    assert!(err.to_string().contains("never end"), "{err}");
    let err = client.threats_page(&at(Some("long"))).await.unwrap_err();
    assert!(err.to_string().contains("characters"), "{err}");
    assert_eq!(err.kind(), "bad_response");
    // An empty page that hands its cursor back (spaces aside) ends the walk.
    let last = client.threats_page(&at(Some("empty"))).await.unwrap();
    assert_eq!((last.threats.len(), last.next_cursor), (0, None));
}

#[tokio::test]
async fn oversize_bodies_are_refused() {
    let big = format!(r#"{{"data":[],"pad":"{}"}}"#, "x".repeat(10_000));
    let server = serve(move |_, _| {
        let big = big.clone();
        async move { json(200, &big) }
    })
    .await;
    let mut cfg = server.config();
    cfg.max_body_bytes = 1024;
    let err = page_with(cfg).await.unwrap_err();
    assert!(
        matches!(err, ClientError::TooLarge { limit: 1024, .. }),
        "{err:?}"
    );

    // Chunked, without Content-Length: the stream is cut off as it passes the limit.
    let server = serve(|_, _| async {
        let chunks = (0..100).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1000]));
        Response::new(Body::from_stream(futures_util::stream::iter(chunks)))
    })
    .await;
    let mut cfg = server.config();
    cfg.max_body_bytes = 4096;
    let err = page_with(cfg).await.unwrap_err();
    assert!(
        matches!(err, ClientError::TooLarge { limit: 4096, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn gzip_bodies_are_decoded() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(br#"{"data":[{"id":"1"}],"pagination":{"nextCursor":"abc","totalItems":2}}"#)
        .unwrap();
    let bytes = gz.finish().unwrap();
    let server = serve(move |_, _| {
        let bytes = bytes.clone();
        async move {
            Response::builder()
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(Body::from(bytes))
                .unwrap()
        }
    })
    .await;
    let page = page(&server).await.unwrap();
    assert_eq!(page.threats.len(), 1);
    assert_eq!(page.next_cursor.as_deref(), Some("abc"));
    let accept = server.requests()[0].headers["accept-encoding"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(accept.contains("gzip"), "{accept}");
}

#[tokio::test]
async fn slow_answers_time_out_after_bounded_retries() {
    let (server, cfg) = never_answering().await;
    let err = page_with(cfg).await.unwrap_err();
    assert_eq!(err, ClientError::Timeout);
    assert_eq!(
        server.hits(),
        2,
        "one try and max_transport_retries = 1 retry"
    );
}

#[tokio::test]
async fn refused_connections_are_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let cfg = crate::server::fast_config(url::Url::parse(&format!("http://{addr}")).unwrap());
    let err = Client::new(cfg).unwrap().verify().await.unwrap_err();
    assert!(matches!(err, ClientError::Unreachable(_)), "{err:?}");
    assert!(
        err.human_reason().starts_with("tenant unreachable: "),
        "{}",
        err.human_reason()
    );
    assert_no_token(&err);
}

#[tokio::test]
async fn tls_to_a_plain_http_port_is_a_tls_failure() {
    let server = serve(|_, _| async { json(200, EMPTY_PAGE) }).await;
    let cfg =
        crate::server::fast_config(url::Url::parse(&format!("https://{}", server.addr)).unwrap());
    let err = Client::new(cfg).unwrap().verify().await.unwrap_err();
    assert!(matches!(err, ClientError::Tls(_)), "{err:?}");
    assert_eq!(err.kind(), "tls");
}

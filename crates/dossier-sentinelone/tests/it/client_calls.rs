//! The requests the client sends and the answers it reads: query, token details, status
//! writes, system status, shared rate limit, and the token kept out of logs and errors.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dossier_domain::time::parse_lenient;
use dossier_sentinelone::{Client, ClientError, SortBy, SortOrder, ThreatQuery};

use crate::client::assert_no_token;
use crate::server::{json, serve, EMPTY_PAGE, ERR_401, ERR_500, TOKEN};

#[tokio::test]
async fn threats_requests_carry_the_token_and_the_query() {
    let server = serve(|_, _| async { json(200, EMPTY_PAGE) }).await;
    let q = ThreatQuery {
        limit: 5000,
        cursor: Some("YWdlbnRfaWQ6NTgwMjkzODE=".into()),
        updated_at_gte: parse_lenient("2025-01-01T00:00:00+01:00"),
        sort_by: Some(SortBy::UpdatedAt),
        sort_order: Some(SortOrder::Asc),
        site_ids: vec!["11".into(), "22".into()],
        ..ThreatQuery::default()
    };
    let page = server.client().threats_page(&q).await.unwrap();
    assert!(page.threats.is_empty());
    let seen = &server.requests()[0];
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("GET", "/web/api/v2.1/threats")
    );
    assert_eq!(
        seen.headers["authorization"],
        format!("ApiToken {TOKEN}").as_str()
    );
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(seen.query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("limit"), Some("1000"));
    assert_eq!(get("updatedAt__gte"), Some("2024-12-31T23:00:00.000000Z"));
    assert_eq!(get("sortBy"), Some("updatedAt"));
    assert_eq!(get("sortOrder"), Some("asc"));
    assert_eq!(get("siteIds"), Some("11,22"));
    assert_eq!(get("cursor"), Some("YWdlbnRfaWQ6NTgwMjkzODE="));
}

#[tokio::test]
async fn token_details_are_read_and_failures_are_distinguishable() {
    let server = serve(|_, _| async {
        json(200, r#"{"data":{"createdAt":"2025-01-01T00:00:00Z","expiresAt":"2025-07-01T00:00:00.000000Z"}}"#)
    })
    .await;
    let d = server.client().token_details().await.unwrap();
    assert_eq!(d.created_at, parse_lenient("2025-01-01T00:00:00Z"));
    assert_eq!(d.expires_at, parse_lenient("2025-07-01T00:00:00Z"));
    let seen = &server.requests()[0];
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/web/api/v2.1/users/api-token-details")
    );
    let body: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(body, serde_json::json!({"data": {"apiToken": TOKEN}}));

    let server = serve(|_, _| async {
        json(
            400,
            r#"{"errors":[{"code":4000010,"title":"Validation Error"}]}"#,
        )
    })
    .await;
    let err = server.client().token_details().await.unwrap_err();
    assert_eq!(
        err,
        ClientError::IntrospectionUnavailable {
            status: 400,
            code: Some(4_000_010)
        }
    );
    assert!(!err.is_token_rejected());

    let server = serve(|_, _| async { json(401, ERR_401) }).await;
    assert!(server
        .client()
        .token_details()
        .await
        .unwrap_err()
        .is_token_rejected());
}

#[tokio::test]
async fn status_writes_send_the_filter_and_read_affected() {
    let server = serve(|_, _| async { json(200, r#"{"data":{"affected":2}}"#) }).await;
    let ids = vec!["1".to_owned(), "55555555555555555555".to_owned()];
    let client = server.client();
    assert_eq!(
        client
            .set_analyst_verdict(&ids, "true_positive")
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        client.set_incident_status(&ids, "resolved").await.unwrap(),
        2
    );
    let seen = server.requests();
    assert_eq!(seen[0].path, "/web/api/v2.1/threats/analyst-verdict");
    assert_eq!(seen[1].path, "/web/api/v2.1/threats/incident");
    let b0: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    let b1: serde_json::Value = serde_json::from_str(&seen[1].body).unwrap();
    assert_eq!(
        b0,
        serde_json::json!({"filter": {"ids": ids}, "data": {"analystVerdict": "true_positive"}})
    );
    assert_eq!(
        b1,
        serde_json::json!({"filter": {"ids": ids}, "data": {"incidentStatus": "resolved"}})
    );
}

/// The response actions' requests, as the public integrations send them (see
/// docs/sentinelone-actions.md): the path, `filter.ids`, and `data` only where the endpoint
/// takes it.
#[tokio::test]
async fn response_actions_send_their_endpoint_and_body() {
    let server = serve(|_, _| async { json(200, r#"{"data":{"affected":1}}"#) }).await;
    let ids = vec!["1234567890123456789".to_owned()];
    let client = server.client();
    for action in ["kill", "quarantine", "remediate", "rollback-remediation"] {
        assert_eq!(client.mitigate(&ids, action).await.unwrap(), 1);
    }
    assert!(client.mitigate(&ids, "explode").await.is_err());
    assert_eq!(client.agents_network(&ids, "disconnect").await.unwrap(), 1);
    assert_eq!(client.agents_network(&ids, "connect").await.unwrap(), 1);
    assert_eq!(client.add_to_blocklist(&ids, "account").await.unwrap(), 1);
    let seen = server.requests();
    let paths: Vec<&str> = seen.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/web/api/v2.1/threats/mitigate/kill",
            "/web/api/v2.1/threats/mitigate/quarantine",
            "/web/api/v2.1/threats/mitigate/remediate",
            "/web/api/v2.1/threats/mitigate/rollback-remediation",
            "/web/api/v2.1/agents/actions/disconnect",
            "/web/api/v2.1/agents/actions/connect",
            "/web/api/v2.1/threats/add-to-blacklist",
        ]
    );
    let body = |i: usize| serde_json::from_str::<serde_json::Value>(&seen[i].body).unwrap();
    for i in 0..6 {
        assert_eq!(body(i), serde_json::json!({"filter": {"ids": ids}}), "{i}");
    }
    assert_eq!(
        body(6),
        serde_json::json!({"filter": {"ids": ids}, "data": {"targetScope": "account"}})
    );
}

#[tokio::test]
async fn system_status_is_read_without_the_token() {
    let server = serve(|_, _| async { json(200, r#"{"data":{"health":"ok"}}"#) }).await;
    let status = server.client().system_status().await.unwrap();
    assert_eq!(status.health.as_deref(), Some("ok"));
    let seen = &server.requests()[0];
    assert_eq!(seen.path, "/web/api/v2.1/system/status");
    assert!(seen.headers.get("authorization").is_none());
}

#[tokio::test]
async fn clones_share_the_rate_limit() {
    let server = serve(|_, _| async { json(200, EMPTY_PAGE) }).await;
    let mut cfg = server.config();
    cfg.max_requests_per_sec = 20.0;
    let a = Client::new(cfg).unwrap();
    let b = a.clone();
    let started = Instant::now();
    let q = ThreatQuery::default();
    let (ra, rb) = tokio::join!(
        async {
            for _ in 0..5 {
                a.threats_page(&q).await.unwrap();
            }
        },
        async {
            for _ in 0..5 {
                b.threats_page(&q).await.unwrap();
            }
        }
    );
    let ((), ()) = (ra, rb);
    // Ten requests at 20/s: the last may leave no earlier than 9 × 50 ms after the first.
    assert!(
        started.elapsed() >= Duration::from_millis(440),
        "{:?}",
        started.elapsed()
    );
}

/// A writer the tracing subscriber logs into.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_token_never_reaches_logs_errors_or_debug() {
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = serve(|n, _| async move {
        match n {
            0 => json(500, ERR_500),
            1 => json(200, EMPTY_PAGE),
            _ => json(401, ERR_401),
        }
    })
    .await;
    let client = server.client();
    client.verify().await.unwrap();
    let err = client.verify().await.unwrap_err();
    let _ = client.token_details().await;

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("sentinelone request"), "{text}");
    assert!(text.contains("bad_token"), "{text}");
    assert!(!text.contains(TOKEN), "token in logs: {text}");
    assert_no_token(&err);
    let debug = format!("{client:?} {:?}", server.config());
    assert!(!debug.contains(TOKEN), "{debug}");
}

//! The real error bodies of `tests/samples/` (PRODUCERS.md §2.8), served as the API serves
//! them, become the Failure kind and the reason an operator reads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use dossier_crowdstrike::{AlertQuery, Client, ClientConfig, Cursor};
use dossier_simkit::Https;
use dossier_source::FailureKind;
use secrecy::SecretString;
use url::Url;

use crate::samples::read;

/// What the stub answers on the token and query routes.
#[derive(Clone)]
struct Answers {
    token: (StatusCode, String),
    query: (StatusCode, String),
    tokens_issued: Arc<AtomicU64>,
}

async fn stub(answers: Answers) -> Https {
    let token = {
        let a = answers.clone();
        move || {
            let a = a.clone();
            async move {
                a.tokens_issued.fetch_add(1, Ordering::SeqCst);
                (a.token.0, a.token.1.clone())
            }
        }
    };
    let query = {
        let a = answers.clone();
        move || {
            let a = a.clone();
            async move { (a.query.0, a.query.1.clone()) }
        }
    };
    let router = Router::new()
        .route("/oauth2/token", post(token))
        .route("/alerts/queries/alerts/v2", get(query));
    dossier_simkit::serve_https(
        router,
        "127.0.0.1:0".parse().unwrap(),
        "stub CA",
        Arc::new(|| false),
    )
    .await
    .unwrap()
}

const TOKEN_OK: &str = r#"{"access_token":"tok","token_type":"bearer","expires_in":1799}"#;

fn client(https: &Https) -> Client {
    let mut cfg = ClientConfig::new(
        Url::parse(&https.base_url).unwrap(),
        "client-id",
        SecretString::from("s3cr3t-value"),
    );
    cfg.extra_roots_pem = Some(https.ca_pem.clone().into_bytes());
    cfg.backoff_base = Duration::from_millis(1);
    cfg.backoff_cap = Duration::from_millis(20);
    Client::new(cfg).unwrap()
}

fn first_page() -> AlertQuery {
    AlertQuery {
        at: Cursor {
            bound: None,
            inclusive: true,
            offset: 0,
        },
        limit: 100,
    }
}

/// Serves one sample on one route and returns the failure and the number of tokens asked for.
async fn failure_of(
    token: (StatusCode, &str),
    query: (StatusCode, &str),
) -> (dossier_source::Failure, u64) {
    let answers = Answers {
        token: (token.0, token.1.to_owned()),
        query: (query.0, query.1.to_owned()),
        tokens_issued: Arc::default(),
    };
    let https = stub(answers.clone()).await;
    let e = client(&https).alerts_page(&first_page()).await.unwrap_err();
    let f = e.failure();
    assert!(
        !format!("{e} {e:?} {}", f.reason).contains("s3cr3t"),
        "no secret in errors"
    );
    (f, answers.tokens_issued.load(Ordering::SeqCst))
}

#[tokio::test]
async fn a_bad_client_id_or_secret_is_credentials_rejected() {
    let body = read("issue_error_403_token_client_auth_failed.json");
    let (f, _) = failure_of((StatusCode::FORBIDDEN, &body), (StatusCode::OK, "{}")).await;
    assert_eq!(f.kind, FailureKind::CredentialsRejected);
    assert!(f.reason.starts_with("client id or secret rejected (HTTP 403: Failed to issue access token - Client authentication failed"), "{}", f.reason);
    let body = read("issue_error_400_token_failed_to_generate.json");
    let (f, _) = failure_of((StatusCode::BAD_REQUEST, &body), (StatusCode::OK, "{}")).await;
    assert_eq!(f.kind, FailureKind::CredentialsRejected);
    assert!(
        f.reason
            .contains("Failed to generate access token for clientID=cid."),
        "{}",
        f.reason
    );
}

#[tokio::test]
async fn an_invalid_bearer_token_is_renewed_once_then_credentials_rejected() {
    let body = read("issue_error_401_invalid_bearer_token.json");
    let (f, tokens) = failure_of(
        (StatusCode::CREATED, TOKEN_OK),
        (StatusCode::UNAUTHORIZED, &body),
    )
    .await;
    assert_eq!(f.kind, FailureKind::CredentialsRejected);
    assert!(
        f.reason
            .contains("HTTP 401: access denied, invalid bearer token"),
        "{}",
        f.reason
    );
    assert_eq!(tokens, 2, "one renewal, then the refusal stands");
}

#[tokio::test]
async fn authorization_failed_names_the_scope_and_the_allowlist() {
    let body = read("issue_error_403_authorization_failed.json");
    let (f, _) = failure_of(
        (StatusCode::CREATED, TOKEN_OK),
        (StatusCode::FORBIDDEN, &body),
    )
    .await;
    assert_eq!(f.kind, FailureKind::PermissionDenied);
    assert!(f.reason.starts_with("the API client lacks the Alerts: Read scope, or the IP allowlist blocks this server (HTTP 403: access denied, authorization failed)"), "{}", f.reason);
}

#[tokio::test]
async fn offset_plus_limit_past_ten_thousand_is_rejected() {
    let body = read("issue_error_400_offset_limit_10000.json");
    let (f, _) = failure_of(
        (StatusCode::CREATED, TOKEN_OK),
        (StatusCode::BAD_REQUEST, &body),
    )
    .await;
    assert_eq!(f.kind, FailureKind::Rejected);
    assert!(
        f.reason
            .contains("offset + limit must be less than or equal to 10000"),
        "{}",
        f.reason
    );
}

#[tokio::test]
async fn a_retired_endpoint_says_so() {
    for status in [StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED] {
        let (f, _) = failure_of(
            (StatusCode::CREATED, TOKEN_OK),
            (
                status,
                r#"{"errors":[{"code":404,"message":"decommissioned"}]}"#,
            ),
        )
        .await;
        assert_eq!(f.kind, FailureKind::Other);
        assert!(
            f.reason.starts_with(&format!(
                "endpoint retired by the vendor (HTTP {} on /alerts/queries/alerts/v2)",
                status.as_u16()
            )),
            "{}",
            f.reason
        );
    }
}

//! Regression tests, named after what broke.

use std::time::Duration;

use dossier_domain::access::{Licence, Role};
use dossier_domain::expiry::EXPIRED_REASON;
use dossier_s1sim::{Fault, TokenSpec};
use serde_json::json;

use crate::{spawn_app, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_tenant_url_never_receives_the_stored_token() {
    let app = spawn_app(5).await;
    let (admin, path) = app.admin_with_connector().await;
    app.until(30, || async {
        let (_, c) = app.call("GET", &path, Some(&admin), None).await;
        c["health"]["threats"].as_u64() == Some(5)
    })
    .await;

    // Only the URL: refused, and the other tenant hears nothing.
    let (status, e) = app
        .call(
            "PATCH",
            &path,
            Some(&admin),
            Some(json!({"tenant_url": app.other_sim.base_url})),
        )
        .await;
    assert_eq!(status, 400, "{e}");
    assert!(
        e["message"].as_str().unwrap().starts_with("api_token"),
        "{e}"
    );
    // The connector goes on polling its own tenant, and only it.
    app.until_polls(&path, 3).await;
    assert_eq!(app.other_tenant.request_count(), 0);
    // The same URL again needs no token.
    let (status, _) = app
        .call(
            "PATCH",
            &path,
            Some(&admin),
            Some(json!({"tenant_url": app.sim.base_url})),
        )
        .await;
    assert_eq!(status, 200);

    // URL and token together: the new tenant's whole history arrives, though it is older than
    // the old tenant's newest threat.
    let (status, e) = app
        .call(
            "PATCH",
            &path,
            Some(&admin),
            Some(json!({"tenant_url": app.other_sim.base_url, "api_token": TOKEN})),
        )
        .await;
    assert_eq!(status, 200, "{e}");
    app.until(30, || async {
        let created = app.incident_events(&admin, "incident_created", 1000).await;
        created.len() == 5 + 7
    })
    .await;
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_read_stories_of_licensed_accounts_only() {
    let app = spawn_app(10).await;
    let unlicensed = app.account(Licence::None).await;
    let admin = app.key(Some(&unlicensed), &[Role::Admin]).await;
    let operator = app.key(None, &[Role::Operator]).await;
    app.create_connector(&admin).await;
    app.until(30, || async {
        let (_, e) = app
            .call(
                "GET",
                "/api/v1/events?type=story_created&limit=1",
                Some(&admin),
                None,
            )
            .await;
        !e["items"].as_array().unwrap().is_empty()
    })
    .await;
    let (_, e) = app
        .call(
            "GET",
            "/api/v1/events?type=story_created&limit=1",
            Some(&admin),
            None,
        )
        .await;
    let sid = e["items"][0]["story_id"].as_str().unwrap().to_owned();
    let (status, p) = app
        .call("GET", "/api/v1/stories", Some(&operator), None)
        .await;
    assert_eq!(status, 200);
    assert!(p["items"].as_array().unwrap().is_empty(), "{p}");
    let (status, _) = app
        .call(
            "GET",
            &format!("/api/v1/stories/{sid}"),
            Some(&operator),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .call(
            "GET",
            &format!("/api/v1/stories?account_id={unlicensed}"),
            Some(&operator),
            None,
        )
        .await;
    assert_eq!(status, 403);
    app.running.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_the_api_error_shape() {
    let app = spawn_app(1).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    for (method, path, body, status) in [
        ("GET", "/api/v1/stories?limit=abc", None, 400),
        ("GET", "/api/v1/events?limit=-1", None, 400),
        (
            "PATCH",
            "/api/v1/stories/x",
            Some(json!({"status": "bogus"})),
            400,
        ),
        (
            "POST",
            "/api/v1/connectors",
            Some(json!({"kind": "sentinelone", "name": "x"})),
            400,
        ),
        (
            "POST",
            "/api/v1/connectors",
            Some(
                json!({"kind": "sentinelone", "name": "x", "tenant_url": "https://a.example", "api_token": "t", "extra": 1}),
            ),
            400,
        ),
        ("GET", "/api/v1/nothing-here", None, 404),
    ] {
        let (got, e) = app.call(method, path, Some(&admin), body).await;
        assert_eq!(got, status, "{method} {path}: {e}");
        assert!(
            e["error"].is_string() && e["message"].is_string(),
            "{method} {path}: {e}"
        );
    }
    app.running.stop().await;
}

/// A mistyped filter (`asignee=`) was ignored in silence and the list selected every story;
/// and the Workbench's own quick filter (`status=a&status=b`) was refused by the API.
#[tokio::test]
async fn unknown_query_parameters_are_refused_and_lists_may_repeat() {
    let app = spawn_app(1).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    for path in [
        "/api/v1/stories?asignee=me",
        "/api/v1/events?typ=story_created",
        "/api/v1/connectors?acount_id=x",
    ] {
        let (got, e) = app.call("GET", path, Some(&admin), None).await;
        assert_eq!(got, 400, "{path}: {e}");
        let name = path.split(['?', '=']).nth(1).unwrap();
        assert!(e["message"].as_str().unwrap().contains(name), "{path}: {e}");
    }
    let (got, e) = app
        .call("GET", "/api/v1/stories?limit=1&limit=2", Some(&admin), None)
        .await;
    assert_eq!(got, 400, "{e}");
    assert!(e["message"].as_str().unwrap().starts_with("limit"), "{e}");
    for path in [
        "/api/v1/stories?status=open&status=reopened",
        "/api/v1/stories?status=open,reopened",
        "/api/v1/events?type=story_created&type=story_updated",
    ] {
        let (got, e) = app.call("GET", path, Some(&admin), None).await;
        assert_eq!(got, 200, "{path}: {e}");
    }
    // Repeated and comma-separated values are one filter: a bad value in either is named.
    let (got, e) = app
        .call(
            "GET",
            "/api/v1/stories?status=open&status=bogus",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(got, 400, "{e}");
    assert!(e["message"].as_str().unwrap().contains("bogus"), "{e}");
    app.running.stop().await;
}

/// A 401 for a token known to have expired read "token expired" when it came on the first
/// page, but "the API token was rejected" when it came on a later poll whose request was on
/// its way as the token expired: the same cause now gives the same reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_401_reads_expired_after_the_first_page_too() {
    // The slow poll below must not time out before the tenant answers it.
    let app = crate::spawn_app_with(3, |c| c.request_timeout = Duration::from_secs(30)).await;
    let expires_at = chrono::Utc::now() + chrono::Duration::seconds(5);
    app.tenant.set_token(TokenSpec {
        expires_at: Some(expires_at),
        ..TokenSpec::new(TOKEN)
    });
    let (admin, path) = app.admin_with_connector().await;
    // The worker is past its first page and knows when the token expires.
    app.until(30, || async {
        let (_, c) = app.call("GET", &path, Some(&admin), None).await;
        c["token_expires_at"].is_string() && c["health"]["threats"].as_u64() == Some(3)
    })
    .await;
    // Its next poll is asked before the token expires, and answered (401) after.
    let left = (expires_at - chrono::Utc::now())
        .to_std()
        .expect("the token has not expired yet");
    app.tenant
        .push_faults([Fault::Slow(left + Duration::from_millis(500))]);
    app.until_status(&admin, &path, "error").await;
    let (_, c) = app.call("GET", &path, Some(&admin), None).await;
    let detail = c["status_detail"].as_str().unwrap();
    assert!(
        detail.starts_with(EXPIRED_REASON),
        "a 401 after the expiry: {detail}"
    );
    app.running.stop().await;
}

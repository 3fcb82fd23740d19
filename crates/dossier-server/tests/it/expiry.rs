//! Token expiry: warnings 30 and 7 days ahead, once each, and an honest error at expiry.

use chrono::{Duration, Utc};
use dossier_domain::access::{Licence, Role};
use dossier_s1sim::{TokenSpec, THREATS, TOKEN_DETAILS};
use serde_json::json;

use crate::{spawn_app, TOKEN};

/// How many times the tenant was asked a token's details.
fn token_details_asked(arrivals: &[&str]) -> usize {
    arrivals.iter().filter(|a| **a == TOKEN_DETAILS).count()
}

fn token_expiring_in(d: Duration) -> TokenSpec {
    TokenSpec {
        expires_at: Some(Utc::now() + d),
        ..TokenSpec::new(TOKEN)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_expiring_within_30_days_warns_once() {
    let app = spawn_app(3).await;
    app.tenant.set_token(token_expiring_in(Duration::days(20)));
    let (admin, path) = app.admin_with_connector().await;
    app.until(30, || async {
        let (_, e) = app
            .call(
                "GET",
                "/api/v1/events?type=connector_warning",
                Some(&admin),
                None,
            )
            .await;
        e["items"].as_array().unwrap().len() == 1
    })
    .await;
    let (_, e) = app
        .call(
            "GET",
            "/api/v1/events?type=connector_warning",
            Some(&admin),
            None,
        )
        .await;
    assert!(
        e["items"][0]["message"]
            .as_str()
            .unwrap()
            .contains("30 days"),
        "{e}"
    );
    let (_, c) = app.call("GET", &path, Some(&admin), None).await;
    assert_eq!(c["status"], "connected", "a warning is not an error");
    assert!(c["token_expires_at"].is_string());

    // A restart of the worker (a configuration change) does not warn again.
    let asked = token_details_asked(&app.tenant.arrivals());
    let (status, _) = app
        .call(
            "PATCH",
            &path,
            Some(&admin),
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(status, 200);
    // The new worker asks the token's expiry, then checks it before each poll it makes.
    app.until(30, || async {
        let arrivals = app.tenant.arrivals();
        let asked_again = arrivals
            .iter()
            .rposition(|a| *a == TOKEN_DETAILS)
            .filter(|_| token_details_asked(&arrivals) > asked);
        asked_again.is_some_and(|at| arrivals[at..].iter().filter(|a| **a == THREATS).count() >= 2)
    })
    .await;
    let (_, e) = app
        .call(
            "GET",
            "/api/v1/events?type=connector_warning",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(e["items"].as_array().unwrap().len(), 1, "{e}");
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_token_warns_at_7_days_then_turns_the_connector_to_error() {
    let app = spawn_app(3).await;
    app.tenant
        .set_token(token_expiring_in(Duration::seconds(3)));
    let (admin, path) = app.admin_with_connector().await;
    app.until(30, || async {
        let (_, c) = app.call("GET", &path, Some(&admin), None).await;
        c["status"] == "error"
    })
    .await;
    let (_, c) = app.call("GET", &path, Some(&admin), None).await;
    assert_eq!(
        c["status_detail"],
        "token expired — create a new service-user token"
    );
    let (_, w) = app
        .call(
            "GET",
            "/api/v1/events?type=connector_warning",
            Some(&admin),
            None,
        )
        .await;
    let warnings: Vec<&str> = w["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("7 days"));
    let errors = app.events(&admin, "connector_error", 50).await;
    assert_eq!(errors.len(), 1, "{errors:?}");

    // A new token heals it, keeping the checkpoint: nothing twice.
    app.tenant.set_token(token_expiring_in(Duration::days(365)));
    let (status, _) = app
        .call(
            "PATCH",
            &path,
            Some(&admin),
            Some(json!({"api_token": TOKEN})),
        )
        .await;
    assert_eq!(status, 200);
    app.tenant.generate_live(Utc::now());
    app.until_read(&admin, &path, 4, 30).await;
    let (_, e) = app
        .call(
            "GET",
            "/api/v1/events?type=incident_created&limit=100",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(e["items"].as_array().unwrap().len(), 4);
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_track_errors_only_the_status_changes() {
    let app = spawn_app(2).await;
    app.tenant.set_token(token_expiring_in(Duration::days(5)));
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    let (status, c) = app
        .call(
            "POST",
            "/api/v1/connectors",
            Some(&admin),
            Some(json!({"kind": "sentinelone", "name": "quiet", "tenant_url": app.sim.base_url, "api_token": TOKEN})),
        )
        .await;
    assert_eq!(status, 201);
    let path = format!("/api/v1/connectors/{}", c["id"].as_str().unwrap());
    app.until(30, || async {
        let (_, c) = app.call("GET", &path, Some(&admin), None).await;
        c["token_expires_at"].is_string() && c["health"]["threats"].as_u64() == Some(2)
    })
    .await;
    // The worker checks the expiry before each poll.
    app.until_polls(&path, 2).await;
    let (_, e) = app
        .call(
            "GET",
            "/api/v1/events?type=connector_warning,connector_error",
            Some(&admin),
            None,
        )
        .await;
    assert!(e["items"].as_array().unwrap().is_empty(), "{e}");
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connectors_page_shows_the_expiry_badge_and_the_backfill() {
    let app = spawn_app(3).await;
    app.tenant.set_token(token_expiring_in(Duration::days(5)));
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    let c = app.create_connector(&admin).await;
    let path = format!("/api/v1/connectors/{}", c["id"].as_str().unwrap());
    app.until(30, || async {
        let (_, c) = app.call("GET", &path, Some(&admin), None).await;
        c["token_expires_at"].is_string() && c["backfill"].is_null()
    })
    .await;
    // A second connector that never reaches its tenant: its backfill has not started.
    let stuck = app.create_connector_to(&admin, "https://127.0.0.1:9").await;
    let mut web = app.signed_in(Some(&account), &[Role::Admin]).await;
    let (status, html) = web.get("/connectors").await;
    assert_eq!(status, 200);
    let rows = crate::web_client::table_rows(&html, "connectors");
    let synced = rows
        .iter()
        .find(|r| r.contains(c["id"].as_str().unwrap()))
        .expect("the first connector's row");
    assert!(synced.contains("expires within 7 days"), "{synced}");
    assert!(synced.contains("done"), "the backfill is over: {synced}");
    let pending = rows
        .iter()
        .find(|r| r.contains(stuck["id"].as_str().unwrap()))
        .expect("the second connector's row");
    assert!(pending.contains("<progress"), "{pending}");
    assert!(pending.contains("0%"), "{pending}");
    assert!(!pending.contains("expires within"), "{pending}");
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_reads_its_first_page_before_it_asks_the_token_expiry() {
    // The token allows one request every 100 ms: the first page is the worker's first
    // request, and the expiry comes after it, so the first stories do not wait for it.
    let app = spawn_app(3).await;
    let (admin, path) = app.admin_with_connector().await;
    app.until_read(&admin, &path, 3, 30).await;
    let arrivals = app.tenant.arrivals();
    assert_eq!(
        arrivals.first().copied(),
        Some(dossier_s1sim::THREATS),
        "the first page comes first: {arrivals:?}"
    );
    assert!(
        arrivals.contains(&dossier_s1sim::TOKEN_DETAILS),
        "the worker asked the token expiry: {arrivals:?}"
    );
    app.running.stop().await;
}

//! A slow tenant is not simply "connected" (issue 27): pages slower than `slow_page_after` show
//! the connector slow, with the figure, and an event when it tracks errors; the reason clears
//! when the tenant is fast again. A timeout counts in the error figures even when its retry
//! succeeds.

use std::time::Duration;

use dossier_s1sim::Fault;
use serde_json::Value;

use crate::{spawn_app_with, App};

async fn connector(app: &App, key: &str, path: &str) -> Value {
    app.call("GET", path, Some(key), None).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_tenant_reads_slow_while_connected_and_clears_when_fast_again() {
    let app = spawn_app_with(12, |c| {
        c.slow_page_after = Duration::from_secs(1);
        c.request_timeout = Duration::from_secs(10);
    })
    .await;
    let (admin, path) = app.admin_with_connector().await;
    app.until(30, || async {
        let c = connector(&app, &admin, &path).await;
        c["health"]["threats"].as_u64() == Some(12) && c["status"] == "connected"
    })
    .await;
    assert!(connector(&app, &admin, &path).await["status_detail"].is_null());
    assert!(app.events(&admin, "connector_warning", 10).await.is_empty());

    // Four pages of 1.5 s: slow, and connected all along.
    app.tenant
        .push_faults((0..4).map(|_| Fault::Slow(Duration::from_millis(1500))));
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    app.until(30, || async {
        let c = connector(&app, &admin, &path).await;
        seen.lock()
            .unwrap()
            .insert(c["status"].as_str().unwrap_or_default().to_owned());
        c["status_detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("slow: pages take 1."))
    })
    .await;
    let c = connector(&app, &admin, &path).await;
    assert_eq!(c["status"], "connected", "{c}");
    let warned = app.events(&admin, "connector_warning", 10).await;
    assert_eq!(warned.len(), 1, "one event as it turned slow: {warned:?}");
    let message = warned[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("is slow: pages take 1."), "{message}");

    // Fast again: the reason clears, with no second event.
    app.until(30, || async {
        let c = connector(&app, &admin, &path).await;
        seen.lock()
            .unwrap()
            .insert(c["status"].as_str().unwrap_or_default().to_owned());
        c["status_detail"].is_null()
    })
    .await;
    assert_eq!(
        seen.into_inner().unwrap().into_iter().collect::<Vec<_>>(),
        ["connected"],
        "never anything but connected"
    );
    assert_eq!(app.events(&admin, "connector_warning", 10).await.len(), 1);

    // New threats are read at once again.
    let id = app.tenant.generate_live(chrono::Utc::now());
    app.until_ingested(&admin, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_counts_as_an_error_even_when_its_retry_succeeds() {
    let app = spawn_app_with(5, |c| {
        c.request_timeout = Duration::from_millis(700);
    })
    .await;
    let (admin, path) = app.admin_with_connector().await;
    app.until(30, || async {
        let c = connector(&app, &admin, &path).await;
        c["health"]["threats"].as_u64() == Some(5) && c["status"] == "connected"
    })
    .await;
    let before = connector(&app, &admin, &path).await["health"]["errors"]
        .as_u64()
        .unwrap_or_default();

    // One try that does not answer in time; its retry does.
    app.tenant
        .push_faults([Fault::Slow(Duration::from_millis(1500))]);
    let id = app.tenant.generate_live(chrono::Utc::now());
    app.until_ingested(&admin, &id).await;
    app.until(30, || async {
        let c = connector(&app, &admin, &path).await;
        c["health"]["errors"].as_u64() == Some(before + 1) && c["status"] == "connected"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_that_keeps_growing_reads_slow_until_the_walk_ends() {
    let app = spawn_app_with(0, |c| {
        c.slow_page_after = Duration::from_secs(60);
        c.slow_backlog_after = Duration::from_secs(1);
        c.poll_policy.page_size = 2;
        c.request_timeout = Duration::from_secs(10);
    })
    .await;
    // Forty threats within 40 ms an hour ago, two a page at 150 ms a page: each page moves
    // the walk on by a millisecond while the clock moves on by far more.
    let at = chrono::Utc::now() - chrono::Duration::hours(1);
    app.tenant
        .generate_history(40, at, at + chrono::Duration::milliseconds(40));
    app.tenant
        .push_faults((0..20).map(|_| Fault::Slow(Duration::from_millis(150))));
    let (admin, path) = app.admin_with_connector().await;
    app.until(30, || async {
        let c = connector(&app, &admin, &path).await;
        c["status"] == "connected"
            && c["status_detail"].as_str().is_some_and(|d| {
                d.starts_with("slow: ") && d.ends_with("min behind and falling further behind")
            })
    })
    .await;
    app.until(30, || async {
        let c = connector(&app, &admin, &path).await;
        c["health"]["threats"].as_u64() == Some(40) && c["status_detail"].is_null()
    })
    .await;
    let warned = app.events(&admin, "connector_warning", 10).await;
    assert_eq!(warned.len(), 1, "{warned:?}");
}

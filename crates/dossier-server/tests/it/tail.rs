//! `GET /api/v1/events?order=asc&after=…&wait=N`: a tail a SIEM can follow.

use std::time::{Duration, Instant};

use chrono::Utc;
use dossier_domain::access::{Licence, Role};
use dossier_domain::event::EventType;
use dossier_store::NewEvent;
use serde_json::Value;

use crate::{spawn_app, spawn_app_with, App};

async fn add(app: &App, account: &str, kind: EventType, minutes_ago: i64, message: &str) {
    app.state
        .store
        .insert_event(&NewEvent {
            account_id: account.to_owned(),
            event_type: kind,
            at: Utc::now() - chrono::Duration::minutes(minutes_ago),
            connector_id: None,
            story_id: None,
            incident_id: None,
            message: message.to_owned(),
            data: serde_json::json!({}),
        })
        .await
        .unwrap();
}

fn messages(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect()
}

/// Sends a request in the background, as a SIEM's long poll would.
fn poll(app: &App, key: &str, path: &str) -> tokio::task::JoinHandle<(u16, Value, Duration)> {
    let (http, url, key) = (
        app.http.clone(),
        format!("{}{path}", app.base),
        key.to_owned(),
    );
    tokio::spawn(async move {
        let started = Instant::now();
        let resp = http.get(url).bearer_auth(key).send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.unwrap();
        (status, body, started.elapsed())
    })
}

async fn until_waiting(app: &App, n: usize) {
    let waiters = std::sync::Arc::clone(&app.state.event_waiters);
    app.until(10, || {
        let waiters = std::sync::Arc::clone(&waiters);
        async move { waiters.waiting() == n }
    })
    .await;
}

/// Ascending, events come in the order they committed (not by their time), only the key's
/// account's, and the newest-first list is as it was.
#[tokio::test]
async fn a_tail_reads_in_commit_order_and_the_default_stays_newest_first() {
    let app = spawn_app(0).await;
    let account = app.account(Licence::None).await;
    let other = app.account(Licence::Xops).await;
    let key = app.key(Some(&account), &[Role::StoriesViewer]).await;
    for (message, minutes_ago) in [("first", 5), ("second", 60), ("third", 1)] {
        add(
            &app,
            &account,
            EventType::StoryUpdated,
            minutes_ago,
            message,
        )
        .await;
        add(&app, &other, EventType::StoryUpdated, minutes_ago, "theirs").await;
    }
    let (status, page) = app
        .call("GET", "/api/v1/events?order=asc&limit=2", Some(&key), None)
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(messages(&page), ["first", "second"]);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest) = app
        .call(
            "GET",
            &format!("/api/v1/events?order=asc&after={cursor}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(messages(&rest), ["third"]);
    let (_, newest_first) = app.call("GET", "/api/v1/events", Some(&key), None).await;
    assert_eq!(messages(&newest_first), ["third", "second", "first"]);
    let (_, errors_only) = app
        .call(
            "GET",
            "/api/v1/events?order=asc&type=connector_error",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(messages(&errors_only), Vec::<&str>::new());
    assert_eq!(errors_only["next_cursor"], "0", "a tail from the start");
}

/// A long poll answers as soon as an event commits, with that event: the commit wakes it,
/// not its timer (set here far beyond the wait).
#[tokio::test]
async fn a_wait_answers_when_an_event_commits() {
    let app = spawn_app_with(0, |c| c.event_recheck = Duration::from_secs(600)).await;
    let account = app.account(Licence::None).await;
    let key = app.key(Some(&account), &[Role::IntegrationsViewer]).await;
    add(&app, &account, EventType::StoryUpdated, 0, "before").await;
    let (_, page) = app
        .call("GET", "/api/v1/events?order=asc", Some(&key), None)
        .await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let waiting = poll(
        &app,
        &key,
        &format!("/api/v1/events?order=asc&after={cursor}&wait=30"),
    );
    until_waiting(&app, 1).await;
    add(&app, &account, EventType::ConnectorError, 90, "arrived").await;
    let (status, page, took) = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the wait answers once an event commits, not after 30 s")
        .unwrap();
    assert_eq!(status, 200, "{page}");
    assert_eq!(messages(&page), ["arrived"]);
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(app.state.event_waiters.waiting(), 0);
}

/// Nothing arriving: an empty page after about the wait, with the cursor it was given.
#[tokio::test]
async fn a_wait_with_nothing_arriving_gives_the_cursor_back() {
    let app = spawn_app(0).await;
    let account = app.account(Licence::None).await;
    let other = app.account(Licence::None).await;
    let key = app.key(Some(&account), &[Role::StoriesViewer]).await;
    add(&app, &account, EventType::StoryUpdated, 0, "seen").await;
    let (_, page) = app
        .call("GET", "/api/v1/events?order=asc", Some(&key), None)
        .await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let waiting = poll(
        &app,
        &key,
        &format!("/api/v1/events?order=asc&after={cursor}&wait=1&type=story_updated"),
    );
    until_waiting(&app, 1).await;
    // Neither another account's event nor one of another type ends the wait.
    add(&app, &other, EventType::StoryUpdated, 0, "theirs").await;
    add(&app, &account, EventType::ConnectorError, 0, "filtered out").await;
    let (status, page, took) = waiting.await.unwrap();
    assert_eq!(status, 200, "{page}");
    assert_eq!(messages(&page), Vec::<&str>::new());
    assert_eq!(page["next_cursor"].as_str(), Some(cursor.as_str()));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

/// Bad tail parameters are refused by name.
#[tokio::test]
async fn bad_tail_parameters_are_refused_by_name() {
    let app = spawn_app(0).await;
    let account = app.account(Licence::None).await;
    let key = app.key(Some(&account), &[Role::StoriesViewer]).await;
    for (query, name) in [
        ("order=asc&wait=31", "wait"),
        ("order=asc&wait=-1", "wait"),
        ("wait=5", "wait"),
        ("order=sideways", "order"),
        ("after=3", "after"),
        ("order=asc&after=somewhere", "after"),
        ("order=asc&cursor=3", "cursor"),
    ] {
        let (status, body) = app
            .call("GET", &format!("/api/v1/events?{query}"), Some(&key), None)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(name), "{query}: {message}");
    }
    let (status, body) = app
        .call("GET", "/api/v1/events?order=asc&wait=31", Some(&key), None)
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("at most 30"),
        "{body}"
    );
    let (status, _) = app
        .call("GET", "/api/v1/events?order=asc&wait=30", None, None)
        .await;
    assert_eq!(status, 401, "a wait needs a key like any list");
}

/// Waiters are bounded, and stopping the server ends their waits at once.
#[tokio::test]
async fn waiters_are_bounded_and_do_not_hold_up_a_stop() {
    let app = spawn_app_with(0, |c| c.connections.max_connections = 4).await;
    let account = app.account(Licence::None).await;
    let key = app.key(Some(&account), &[Role::StoriesViewer]).await;
    let first = poll(&app, &key, "/api/v1/events?order=asc&wait=30");
    until_waiting(&app, 1).await;
    let (status, body) = app
        .call("GET", "/api/v1/events?order=asc&wait=30", Some(&key), None)
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"].as_str().unwrap().starts_with("wait:"),
        "{body}"
    );
    let (status, _) = app
        .call("GET", "/api/v1/events?order=asc", Some(&key), None)
        .await;
    assert_eq!(status, 200, "a tail that does not wait is not held back");

    let App { running, .. } = app;
    let stopped = tokio::time::timeout(Duration::from_secs(5), running.stop()).await;
    assert!(stopped.is_ok(), "a waiter held the server's stop up");
    let (status, page, took) = first.await.unwrap();
    assert_eq!(status, 200, "{page}");
    assert_eq!(messages(&page), Vec::<&str>::new());
    assert!(took < Duration::from_secs(10), "{took:?}");
}

/// The `OpenAPI` document declares the tail's parameters exactly: `order` is `asc` or `desc`,
/// `wait` is 0 to 30, `after` is a string.
#[tokio::test]
async fn the_openapi_document_declares_the_tail_parameters() {
    let app = spawn_app(0).await;
    let (_, doc) = app.call("GET", "/api/openapi.json", None, None).await;
    let params = doc["paths"]["/api/v1/events"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let param = |name: &str| {
        params
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {params:?}"))
            .clone()
    };
    let order = param("order");
    let variants: Vec<&str> = order["schema"]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{order}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(variants, ["asc", "desc"], "{order}");
    let wait = param("wait");
    assert_eq!(wait["schema"]["minimum"], 0, "{wait}");
    assert_eq!(wait["schema"]["maximum"], 30, "{wait}");
    assert_eq!(param("after")["schema"]["type"], "string");
    for p in ["order", "after", "wait"] {
        assert_ne!(param(p)["required"], true, "{p}");
    }
}

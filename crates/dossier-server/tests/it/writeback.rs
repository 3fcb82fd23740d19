//! Write-back: closing a story with a verdict updates its SentinelOne threats when the
//! connector writes back; a failure shows on the story and the analyst's change stays.

use dossier_domain::access::{Licence, Role};
use dossier_server::metrics::Metrics;
use serde_json::json;

use crate::{spawn_app, App, TOKEN};

async fn connector(app: &App, admin: &str, write_back: bool) -> String {
    let (status, c) = app
        .call(
            "POST",
            "/api/v1/connectors",
            Some(admin),
            Some(
                json!({"kind": "sentinelone", "name": "wb", "tenant_url": app.sim.base_url,
                        "api_token": TOKEN, "write_back": write_back}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["write_back"], write_back);
    c["id"].as_str().unwrap().to_owned()
}

async fn first_story(app: &App, admin: &str) -> serde_json::Value {
    app.until(30, || async {
        let (_, p) = app
            .call("GET", "/api/v1/stories?limit=1", Some(admin), None)
            .await;
        !p["items"].as_array().unwrap().is_empty()
    })
    .await;
    let (_, p) = app
        .call("GET", "/api/v1/stories?limit=1", Some(admin), None)
        .await;
    let id = p["items"][0]["id"].as_str().unwrap().to_owned();
    app.call("GET", &format!("/api/v1/stories/{id}"), Some(admin), None)
        .await
        .1
}

fn timeline_kinds(story: &serde_json::Value) -> Vec<String> {
    story["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_with_a_verdict_updates_the_threats_in_sentinelone() {
    let app = spawn_app(10).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    connector(&app, &admin, true).await;
    let story = first_story(&app, &admin).await;
    let sid = story["id"].as_str().unwrap().to_owned();
    let threat_ids: Vec<String> = story["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();

    let (status, _) = app
        .call(
            "PATCH",
            &format!("/api/v1/stories/{sid}"),
            Some(&admin),
            Some(json!({"status": "closed", "verdict": "malicious"})),
        )
        .await;
    assert_eq!(status, 200);
    app.until(15, || async { app.tenant.writes().len() >= 2 })
        .await;
    let writes = app.tenant.writes();
    let verdict = writes
        .iter()
        .find(|w| w["data"]["analystVerdict"].is_string())
        .expect("verdict write");
    assert_eq!(verdict["data"]["analystVerdict"], "true_positive");
    let ids: Vec<&str> = verdict["filter"]["ids"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(
        ids,
        threat_ids.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let status_write = writes
        .iter()
        .find(|w| w["data"]["incidentStatus"].is_string())
        .expect("status write");
    assert_eq!(status_write["data"]["incidentStatus"], "resolved");
    app.until(15, || async {
        let (_, d) = app
            .call("GET", &format!("/api/v1/stories/{sid}"), Some(&admin), None)
            .await;
        timeline_kinds(&d).iter().any(|k| k == "write_back")
    })
    .await;
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_back_shows_on_the_story_and_keeps_the_change() {
    let app = spawn_app(10).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    connector(&app, &admin, true).await;
    let story = first_story(&app, &admin).await;
    let sid = story["id"].as_str().unwrap().to_owned();
    app.tenant.set_down(true);
    let (status, d) = app
        .call(
            "PATCH",
            &format!("/api/v1/stories/{sid}"),
            Some(&admin),
            Some(json!({"status": "closed", "verdict": "benign"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (d["status"].as_str(), d["verdict"].as_str()),
        (Some("closed"), Some("benign"))
    );
    app.until(30, || async {
        let (_, d) = app
            .call("GET", &format!("/api/v1/stories/{sid}"), Some(&admin), None)
            .await;
        timeline_kinds(&d).iter().any(|k| k == "write_back_failed")
    })
    .await;
    let (_, d) = app
        .call("GET", &format!("/api/v1/stories/{sid}"), Some(&admin), None)
        .await;
    assert_eq!(
        (d["status"].as_str(), d["verdict"].as_str()),
        (Some("closed"), Some("benign"))
    );
    app.tenant.set_down(false);
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_write_back_nothing_is_sent() {
    let app = spawn_app(10).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    connector(&app, &admin, false).await;
    let story = first_story(&app, &admin).await;
    let sid = story["id"].as_str().unwrap();
    let off = || {
        app.state
            .metrics
            .write_backs
            .get_or_create(&Metrics::write_back("off"))
            .get()
    };
    let (status, _) = app
        .call(
            "PATCH",
            &format!("/api/v1/stories/{sid}"),
            Some(&admin),
            Some(json!({"status": "closed", "verdict": "malicious"})),
        )
        .await;
    assert_eq!(status, 200);
    // The write-back has looked at the story's connector, and sent nothing.
    app.until(15, || async { off() == 1 }).await;
    assert!(app.tenant.writes().is_empty());
    app.running.stop().await;
}

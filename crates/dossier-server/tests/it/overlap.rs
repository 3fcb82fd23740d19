//! Two connectors of one account that reach the same SentinelOne tenant (the tenant added
//! twice) keep each threat once: the stories list every threat in exactly one incident, a new
//! threat too, and the Connectors page says that the two overlap.

use chrono::Utc;
use dossier_domain::access::{Licence, Role};
use serde_json::json;

use crate::{spawn_app, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_tenant_added_twice_keeps_each_threat_once() {
    let app = spawn_app(60).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    let mut ids = Vec::new();
    for (name, url) in [
        ("First", app.sim.base_url.clone()),
        // The same tenant, its address typed another way.
        (
            "Second",
            format!(
                "{}/",
                app.sim
                    .base_url
                    .to_uppercase()
                    .replace("HTTPS://", "https://")
            ),
        ),
    ] {
        let (status, c) = app
            .call(
                "POST",
                "/api/v1/connectors",
                Some(&admin),
                Some(json!({"kind": "sentinelone", "name": name, "tenant_url": url, "api_token": TOKEN})),
            )
            .await;
        assert_eq!(status, 201, "{c}");
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    let threats = app.tenant.threat_count();
    let both_done = || async {
        let mut done = true;
        for id in &ids {
            let (_, c) = app
                .call(
                    "GET",
                    &format!("/api/v1/connectors/{id}"),
                    Some(&admin),
                    None,
                )
                .await;
            done &= c["status"] == "connected" && c["backfill"].is_null();
        }
        done && app.incident_ids(&admin).await.len() >= threats
    };
    app.until(60, both_done).await;

    let once = |list: Vec<String>| {
        let mut sorted = list.clone();
        sorted.sort();
        sorted.dedup();
        (list.len(), sorted.len())
    };
    let (created, distinct) = once(app.incident_ids(&admin).await);
    assert_eq!(
        (created, distinct),
        (threats, threats),
        "each threat is one incident"
    );
    let total: u64 = app.story_sizes(&admin).await.iter().sum();
    assert_eq!(total, threats as u64, "the stories hold each threat once");

    // A threat that arrives later is kept once too, whichever connector reads it first.
    let paths: Vec<String> = ids
        .iter()
        .map(|id| format!("/api/v1/connectors/{id}"))
        .collect();
    let before: Vec<u64> = paths.iter().map(|p| app.polls(p)).collect();
    let new = app.tenant.generate_live(Utc::now());
    app.until_ingested(&admin, &new).await;
    // Both connectors have polled past it.
    app.until(30, || async {
        paths
            .iter()
            .zip(&before)
            .all(|(p, b)| app.polls(p) >= b + 2)
    })
    .await;
    let created = app.incident_ids(&admin).await;
    assert_eq!(created.iter().filter(|i| **i == new).count(), 1, "{new}");
    let total: u64 = app.story_sizes(&admin).await.iter().sum();
    assert_eq!(total, threats as u64 + 1);

    // The Connectors page says which connectors overlap.
    let mut web = app
        .signed_in(Some(&account), &[Role::IntegrationsViewer])
        .await;
    let (status, page) = web.get("/connectors").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Reaches the same tenant as <bdi>Second</bdi>")
            || page.contains("Reaches the same tenant as Second"),
        "{page}"
    );
    assert!(page.contains("each threat is kept once"), "{page}");
    app.running.stop().await;
}

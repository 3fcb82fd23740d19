//! An incident's own notes and timeline in SentinelOne, read on demand from the emulated
//! tenant: shown as the console has them, kept five minutes, a deleted threat a plain 404, an
//! unreachable tenant a 502 that says so, and on the story page beside Dossier's timeline.

use dossier_domain::access::{Licence, Role};
use serde_json::{json, Value};

use crate::respond::{act, connector, first_story};
use crate::{spawn_app, App};

async fn vendor(app: &App, key: &str, sid: &str, iid: &str) -> (u16, Value) {
    app.call(
        "GET",
        &format!("/api/v1/stories/{sid}/incidents/{iid}/vendor"),
        Some(key),
        None,
    )
    .await
}

/// Every (story, threat) pair the key sees, stories in list order.
async fn pairs(app: &App, key: &str) -> Vec<(String, String)> {
    let (_, page) = app
        .call("GET", "/api/v1/stories?limit=100", Some(key), None)
        .await;
    let mut out = Vec::new();
    for s in page["items"].as_array().unwrap() {
        let sid = s["id"].as_str().unwrap();
        let (_, d) = app
            .call("GET", &format!("/api/v1/stories/{sid}"), Some(key), None)
            .await;
        for i in d["incidents"].as_array().unwrap() {
            out.push((sid.to_owned(), i["id"].as_str().unwrap().to_owned()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_and_timeline_are_read_on_demand_kept_and_their_errors_said() {
    let app = spawn_app(10).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    connector(&app, &admin, true).await;
    let s = first_story(&app, &admin).await;
    app.until(30, || async { pairs(&app, &admin).await.len() >= 4 })
        .await;
    let all = pairs(&app, &admin).await;
    let (sid, tid) = (
        s["id"].as_str().unwrap(),
        s["incidents"][0]["id"].as_str().unwrap(),
    );

    // A note an analyst wrote in the console, and the threat's timeline, oldest first.
    assert!(app
        .tenant
        .add_note(tid, "Dana Analyst", "Asked the user: they did not run it"));
    let (status, v) = vendor(&app, &admin, sid, tid).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["notes"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["notes"][0]["text"], "Asked the user: they did not run it");
    assert_eq!(v["notes"][0]["author"], "Dana Analyst");
    assert!(v["notes"][0]["created_at"].is_string());
    let first = v["timeline"][0]["text"].as_str().unwrap();
    assert!(first.starts_with("Threat with confidence level"), "{v}");
    assert_eq!(v["truncated"], false);
    assert!(v["fetched_at"].is_string());

    // Kept: a second note is not seen until the answer is five minutes old.
    assert!(app.tenant.add_note(tid, "Dana Analyst", "Second note"));
    let (_, again) = vendor(&app, &admin, sid, tid).await;
    assert_eq!(again["notes"].as_array().unwrap().len(), 1, "{again}");
    assert_eq!(again["fetched_at"], v["fetched_at"]);

    // A response action shows on the console's timeline of a threat not read before.
    let (acted_story, acted_threat) = all
        .iter()
        .find(|(_, t)| t != tid)
        .cloned()
        .expect("a second threat");
    let (status, r) = act(&app, &admin, &acted_story, json!({"action": "quarantine"})).await;
    assert_eq!(status, 200, "{r}");
    let (status, v) = vendor(&app, &admin, &acted_story, &acted_threat).await;
    assert_eq!(status, 200, "{v}");
    assert!(
        v["timeline"].as_array().unwrap().iter().any(|a| a["text"]
            .as_str()
            .unwrap()
            .contains("issued a quarantine command")),
        "{v}"
    );

    // A threat deleted in the console: a 404 that says so.
    let (gone_story, gone_threat) = all
        .iter()
        .find(|(s, t)| t != tid && *t != acted_threat && *s != acted_story)
        .cloned()
        .expect("a third threat");
    assert!(app.tenant.delete_threat(&gone_threat));
    let (status, e) = vendor(&app, &admin, &gone_story, &gone_threat).await;
    assert_eq!(status, 404, "{e}");
    assert_eq!(e["error"], "not_found");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("SentinelOne no longer holds this threat"),
        "{e}"
    );

    // No such incident in the story, and a story of another account: 404.
    let (status, _) = vendor(&app, &admin, sid, "424242").await;
    assert_eq!(status, 404);
    let other_account = app.account(Licence::Xops).await;
    let stranger = app.key(Some(&other_account), &[Role::Admin]).await;
    let (status, _) = vendor(&app, &stranger, sid, tid).await;
    assert_eq!(status, 404);

    // The tenant down: a 502 that names the producer, not an internal error; an answer
    // read before is still served.
    let (fresh_story, fresh_threat) = all
        .iter()
        .find(|(_, t)| t != tid && *t != acted_threat && *t != gone_threat)
        .cloned()
        .expect("a fourth threat");
    app.tenant.set_down(true);
    let (status, e) = vendor(&app, &admin, &fresh_story, &fresh_threat).await;
    assert_eq!(status, 502, "{e}");
    assert_eq!(e["error"], "bad_gateway");
    assert!(
        e["message"].as_str().unwrap().starts_with("SentinelOne"),
        "{e}"
    );
    let (status, _) = vendor(&app, &admin, sid, tid).await;
    assert_eq!(status, 200);
    app.tenant.set_down(false);

    // The story page: a link on each threat, and the console's notes beside the timeline.
    let mut web = app.signed_in(Some(&account), &[Role::StoriesViewer]).await;
    let (status, page) = web.get(&format!("/stories/{sid}")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!(
            "href=\"/stories/{sid}?vendor={tid}#vendor-title\""
        )),
        "{page}"
    );
    assert!(!page.contains("id=\"vendor\""));
    let (status, page) = web.get(&format!("/stories/{sid}?vendor={tid}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("class=\"side-by-side\""), "{page}");
    assert!(page.contains("In SentinelOne"), "{page}");
    assert!(
        page.contains("Asked the user: they did not run it"),
        "{page}"
    );
    let (status, page) = web
        .get(&format!("/stories/{gone_story}?vendor={gone_threat}"))
        .await;
    assert_eq!(status, 200, "the story still shows when the console cannot");
    assert!(
        page.contains("SentinelOne no longer holds this threat"),
        "{page}"
    );
    app.running.stop().await;
}

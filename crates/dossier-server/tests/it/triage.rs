//! Owners, close reasons and bulk changes, through the API.

use chrono::Utc;
use dossier_domain::access::{Licence, Role};
use dossier_store::UserRecord;
use serde_json::{json, Value};

use crate::spawn_app;

/// The ids of the stories a list request selects.
async fn ids(app: &crate::App, key: &str, query: &str) -> Vec<String> {
    let (status, page) = app
        .call(
            "GET",
            &format!("/api/v1/stories?limit=1000&{query}"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{query}: {page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stories_are_owned_closed_with_a_reason_and_changed_in_bulk() {
    let app = spawn_app(8).await;
    let (admin, path) = app.admin_with_connector().await;
    app.until_read(&admin, &path, 8, 30).await;
    let all = ids(&app, &admin, "").await;
    assert!(all.len() >= 2, "{all:?}");
    let (_, first) = app
        .call(
            "GET",
            &format!("/api/v1/stories/{}", all[0]),
            Some(&admin),
            None,
        )
        .await;
    let account = first["account_id"].as_str().unwrap().to_owned();
    app.state
        .store
        .create_user(&UserRecord {
            id: "u-ana".into(),
            account_id: Some(account.clone()),
            username: "ana".into(),
            password_hash: "$argon2id$not-used".into(),
            roles: vec![Role::StoriesEditor],
            created_at: Utc::now(),
        })
        .await
        .unwrap();

    // An owner by name; `me` needs a signed-in user, and a stranger is refused.
    let story = |id: &str| format!("/api/v1/stories/{id}");
    let (status, s) = app
        .call(
            "PATCH",
            &story(&all[0]),
            Some(&admin),
            Some(json!({"assignee": "ANA"})),
        )
        .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["assignee"], "ana");
    for (body, field) in [
        (json!({"assignee": "me"}), "assignee"),
        (json!({"assignee": "nobody-here"}), "assignee"),
        (json!({"status": "closed"}), "verdict"),
        (json!({"close_reason": "done"}), "close_reason"),
    ] {
        let (status, e) = app
            .call("PATCH", &story(&all[1]), Some(&admin), Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {e}");
        assert!(
            e["message"].as_str().unwrap().starts_with(field),
            "{body}: {e}"
        );
    }
    assert_eq!(
        ids(&app, &admin, "assignee=ana").await,
        vec![all[0].clone()]
    );
    assert_eq!(
        ids(&app, &admin, "assignee=none").await.len(),
        all.len() - 1
    );
    let (status, e) = app
        .call("GET", "/api/v1/stories?assignee=me", Some(&admin), None)
        .await;
    assert_eq!(status, 400, "{e}");

    // Closing with a verdict and a reason; the reason reads back, and the timeline says it.
    let (status, s) = app
        .call(
            "PATCH",
            &story(&all[0]),
            Some(&admin),
            Some(json!({"status": "closed", "verdict": "benign", "close_reason": "lab machine"})),
        )
        .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["close_reason"], "lab machine");
    let said = |s: &Value, text: &str| {
        s["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["text"].as_str().is_some_and(|t| t.contains(text)))
    };
    assert!(said(&s, "to closed: lab machine"), "{}", s["timeline"]);
    assert!(said(&s, "assigned to ana"), "{}", s["timeline"]);

    // In bulk, by filter: every open story takes the verdict, the status and the comment.
    let open = ids(&app, &admin, "status=open&status=reopened").await;
    let (status, r) = app
        .call(
            "POST",
            "/api/v1/stories/bulk",
            Some(&admin),
            Some(json!({
                "filter": {"status": ["open", "reopened"]},
                "set": {"status": "closed", "verdict": "malicious", "severity": "high", "assignee": "ana"},
                "comment": "outbreak contained"
            })),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["changed"].as_u64(), Some(open.len() as u64), "{r}");
    assert!(ids(&app, &admin, "status=open").await.is_empty());
    assert_eq!(ids(&app, &admin, "assignee=ana").await.len(), all.len());
    let (_, s) = app.call("GET", &story(&open[0]), Some(&admin), None).await;
    assert_eq!(s["comments"][0]["text"], "outbreak contained", "{s}");

    // By id, with a story that cannot take the change: it says why, the others change.
    let (status, r) = app
        .call(
            "POST",
            "/api/v1/stories/bulk",
            Some(&admin),
            Some(json!({"ids": [all[0], "no-such-story"], "set": {"status": "monitoring"}})),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["changed"], 1, "{r}");
    assert_eq!(r["failed"][0]["id"], "no-such-story", "{r}");

    bulk_refusals(&app, &admin, &account, &all[0]).await;

    // A vendor's threat id finds its story.
    let (_, s) = app.call("GET", &story(&all[1]), Some(&admin), None).await;
    let threat = s["incidents"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        ids(&app, &admin, &format!("incident_id={threat}")).await,
        vec![all[1].clone()]
    );
    assert!(ids(&app, &admin, &format!("q={threat}"))
        .await
        .contains(&all[1]));
    app.running.stop().await;
}

/// What a bulk change refuses: a mistyped filter, an empty change, a filter that chooses a
/// page, no ids; a viewer, and an mdr account's own editor.
async fn bulk_refusals(app: &crate::App, admin: &str, account: &str, story_id: &str) {
    // A mistyped filter, an empty change and a filter that chooses a page are refused.
    for body in [
        json!({"filter": {"stauts": "open"}, "set": {"status": "open"}}),
        json!({"filter": {}, "set": {}}),
        json!({"filter": {"limit": 5}, "set": {"status": "open"}}),
        json!({"ids": [], "set": {"status": "open"}}),
    ] {
        let (status, e) = app
            .call(
                "POST",
                "/api/v1/stories/bulk",
                Some(admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 400, "{body}: {e}");
    }

    // A viewer may not, nor may an mdr account's own editor.
    let viewer = app.key(Some(account), &[Role::StoriesViewer]).await;
    let (status, _) = app
        .call(
            "POST",
            "/api/v1/stories/bulk",
            Some(&viewer),
            Some(json!({"ids": [story_id], "set": {"status": "open"}})),
        )
        .await;
    assert_eq!(status, 403);
    let mdr = app.account(Licence::Mdr).await;
    let mdr_editor = app.key(Some(&mdr), &[Role::StoriesEditor]).await;
    let (status, _) = app
        .call(
            "POST",
            "/api/v1/stories/bulk",
            Some(&mdr_editor),
            Some(json!({"ids": [story_id], "set": {"status": "open"}})),
        )
        .await;
    assert_eq!(status, 403);
}

/// A key made with `api-key create --name` acts under its name in the story's timeline and on
/// its comments, with its id beside it; a key without a name keeps the actor it had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_key_shows_its_name_as_the_actor() {
    let app = spawn_app(2).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    let path = app.connector_path(&admin).await;
    app.until_read(&admin, &path, 2, 30).await;
    let named = app
        .named_key(
            Some(&account),
            &[Role::StoriesEditor],
            Some("SOAR playbook"),
        )
        .await;
    let all = ids(&app, &admin, "").await;
    let story = format!("/api/v1/stories/{}", all[0]);
    let actors = |s: &Value, kind: &str| -> Vec<String> {
        s["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["kind"] == kind)
            .map(|t| t["actor"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let (status, s) = app
        .call(
            "PATCH",
            &story,
            Some(&named),
            Some(json!({"status": "monitoring"})),
        )
        .await;
    assert_eq!(status, 200, "{s}");
    let by_name = actors(&s, "status_changed");
    assert_eq!(by_name.len(), 1, "{s}");
    assert!(
        by_name[0].starts_with("SOAR playbook (api-key:") && by_name[0].ends_with(')'),
        "{by_name:?}"
    );
    let (status, c) = app
        .call(
            "POST",
            &format!("{story}/comments"),
            Some(&named),
            Some(json!({"text": "contained by the playbook"})),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["author"], by_name[0].as_str());

    let (status, s) = app
        .call(
            "PATCH",
            &story,
            Some(&admin),
            Some(json!({"status": "pending_analysis"})),
        )
        .await;
    assert_eq!(status, 200, "{s}");
    let unnamed = actors(&s, "status_changed")
        .into_iter()
        .find(|a| !a.starts_with("SOAR"))
        .unwrap();
    assert!(
        unnamed.starts_with("api-key:") && unnamed.len() == "api-key:".len() + 8,
        "{unnamed}"
    );
    app.running.stop().await;
}

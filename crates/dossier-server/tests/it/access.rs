//! Roles × endpoints × own and foreign account: every combination allowed or denied as
//! PRODUCT.md says, and no cross-account read or write.

use dossier_domain::access::{Licence, Permissions, Role};
use serde_json::{json, Value};

use crate::{spawn_app, App};

/// Which permission an endpoint needs.
#[derive(Clone, Copy, PartialEq)]
enum Need {
    ViewInt,
    EditInt,
    ViewStories,
    EditStories,
    AnyRole,
}

impl Need {
    fn granted_by(self, p: Permissions) -> bool {
        match self {
            Need::ViewInt => p.view_integrations,
            Need::EditInt => p.edit_integrations,
            Need::ViewStories => p.view_stories,
            Need::EditStories => p.edit_stories,
            Need::AnyRole => true,
        }
    }
}

/// (method, path, body, which permission it needs) for each endpoint, on connector `c` and
/// story `s`.
fn endpoints(c: &str, s: &str) -> Vec<(&'static str, String, Option<Value>, Need)> {
    vec![
        ("GET", "/api/v1/connectors".to_owned(), None, Need::ViewInt),
        (
            "GET",
            format!("/api/v1/connectors/{c}"),
            None,
            Need::ViewInt,
        ),
        (
            "PATCH",
            format!("/api/v1/connectors/{c}"),
            Some(json!({"name": "renamed"})),
            Need::EditInt,
        ),
        ("GET", "/api/v1/stories".to_owned(), None, Need::ViewStories),
        (
            "GET",
            format!("/api/v1/stories/{s}"),
            None,
            Need::ViewStories,
        ),
        (
            "PATCH",
            format!("/api/v1/stories/{s}"),
            Some(json!({"status": "monitoring"})),
            Need::EditStories,
        ),
        (
            "POST",
            format!("/api/v1/stories/{s}/comments"),
            Some(json!({"text": "hi"})),
            Need::EditStories,
        ),
        ("GET", "/api/v1/events".to_owned(), None, Need::AnyRole),
    ]
}

/// No key, a wrong key, a wrong scheme: each is 401.
async fn no_credentials_is_unauthenticated(app: &App) {
    for auth in [None, Some("Bearer nope"), Some("Basic abc")] {
        let mut req = app.http.get(format!("{}/api/v1/stories", app.base));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "unauthenticated");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_accounts_are_enforced_on_every_endpoint() {
    let app = spawn_app(30).await;
    let own = app.account(Licence::Xops).await;
    let foreign = app.account(Licence::Xops).await;
    let own_admin = app.key(Some(&own), &[Role::Admin]).await;
    let foreign_admin = app.key(Some(&foreign), &[Role::Admin]).await;
    let connector = app.create_connector(&own_admin).await;
    let cid = connector["id"].as_str().unwrap().to_owned();
    let foreign_connector = app.create_connector(&foreign_admin).await;
    let foreign_connector_id = foreign_connector["id"].as_str().unwrap().to_owned();
    app.until(30, || async {
        let (_, p) = app
            .call("GET", "/api/v1/stories?limit=1", Some(&own_admin), None)
            .await;
        let (_, q) = app
            .call("GET", "/api/v1/stories?limit=1", Some(&foreign_admin), None)
            .await;
        !p["items"].as_array().unwrap().is_empty() && !q["items"].as_array().unwrap().is_empty()
    })
    .await;
    let (_, p) = app
        .call("GET", "/api/v1/stories?limit=1", Some(&own_admin), None)
        .await;
    let sid = p["items"][0]["id"].as_str().unwrap().to_owned();
    let (_, p) = app
        .call("GET", "/api/v1/stories?limit=1", Some(&foreign_admin), None)
        .await;
    let foreign_story_id = p["items"][0]["id"].as_str().unwrap().to_owned();

    let roles = [
        Role::Admin,
        Role::StoriesEditor,
        Role::StoriesViewer,
        Role::IntegrationsEditor,
        Role::IntegrationsViewer,
    ];
    let mut checked = 0;
    let mut cross_account_leaks = 0;
    for role in roles {
        let key = app.key(Some(&own), &[role]).await;
        let p = Permissions::of(&[role]);
        for (method, path, body, need) in endpoints(&cid, &sid) {
            let allowed = need.granted_by(p);
            let (status, resp) = app.call(method, &path, Some(&key), body.clone()).await;
            if allowed {
                assert!(
                    (200..300).contains(&status),
                    "{role:?} {method} {path}: {status} {resp}"
                );
            } else {
                assert_eq!(status, 403, "{role:?} {method} {path}: {resp}");
            }
            checked += 1;
        }
        // The foreign account's resources: never readable, never writable.
        for (method, path, body, _) in endpoints(&foreign_connector_id, &foreign_story_id) {
            let (status, resp) = app.call(method, &path, Some(&key), body).await;
            let list = path == "/api/v1/connectors"
                || path == "/api/v1/stories"
                || path == "/api/v1/events";
            if list {
                if status == 200 {
                    let text = resp.to_string();
                    if text.contains(&foreign_connector_id)
                        || text.contains(&foreign_story_id)
                        || text.contains(&foreign)
                    {
                        cross_account_leaks += 1;
                    }
                }
            } else if status != 404 && status != 403 {
                cross_account_leaks += 1;
            }
            checked += 1;
        }
        // Naming the foreign account explicitly is refused.
        let (status, _) = app
            .call(
                "GET",
                &format!("/api/v1/events?account_id={foreign}"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(status, 403);
    }
    assert_eq!(cross_account_leaks, 0, "cross-account reads or writes");
    assert!(checked >= 80);

    no_credentials_is_unauthenticated(&app).await;
    // The foreign connector was not renamed by anyone in this account.
    let (_, c) = app
        .call(
            "GET",
            &format!("/api/v1/connectors/{foreign_connector_id}"),
            Some(&foreign_admin),
            None,
        )
        .await;
    assert_eq!(c["name"], "Tenant");
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn licences_gate_stories_but_not_events() {
    let app = spawn_app(10).await;
    let none = app.account(Licence::None).await;
    let mdr = app.account(Licence::Mdr).await;
    let none_admin = app.key(Some(&none), &[Role::Admin]).await;
    let mdr_admin = app.key(Some(&mdr), &[Role::Admin]).await;
    app.create_connector(&none_admin).await;
    app.create_connector(&mdr_admin).await;
    app.until(30, || async {
        let (_, e) = app
            .call(
                "GET",
                "/api/v1/events?type=incident_created&limit=1",
                Some(&none_admin),
                None,
            )
            .await;
        let (_, s) = app
            .call("GET", "/api/v1/stories?limit=1", Some(&mdr_admin), None)
            .await;
        !e["items"].as_array().unwrap().is_empty() && !s["items"].as_array().unwrap().is_empty()
    })
    .await;
    let (status, e) = app
        .call("GET", "/api/v1/stories", Some(&none_admin), None)
        .await;
    assert_eq!(status, 403, "{e}");
    assert!(e["message"].as_str().unwrap().contains("licence"));

    let (_, s) = app
        .call("GET", "/api/v1/stories?limit=1", Some(&mdr_admin), None)
        .await;
    let sid = s["items"][0]["id"].as_str().unwrap();
    let (status, _) = app
        .call(
            "GET",
            &format!("/api/v1/stories/{sid}"),
            Some(&mdr_admin),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, e) = app
        .call(
            "PATCH",
            &format!("/api/v1/stories/{sid}"),
            Some(&mdr_admin),
            Some(json!({"status": "closed"})),
        )
        .await;
    assert_eq!(status, 403, "{e}");
    assert!(e["message"].as_str().unwrap().contains("mdr"));
    // The provider's operator acts on the mdr account's stories.
    let operator = app.key(None, &[Role::Operator]).await;
    let (status, e) = app
        .call(
            "PATCH",
            &format!("/api/v1/stories/{sid}"),
            Some(&operator),
            Some(json!({"status": "closed", "verdict": "benign"})),
        )
        .await;
    assert_eq!(status, 200, "{e}");
    app.running.stop().await;
}

/// A revoked key stops working at once, and listing keys is scoped to the account asked for.
#[tokio::test]
async fn a_revoked_key_is_refused_at_once() {
    let app = spawn_app(1).await;
    let own = app.account(Licence::Xops).await;
    let other = app.account(Licence::Xops).await;
    let keep = app.key(Some(&own), &[Role::StoriesViewer]).await;
    let revoke = app.key(Some(&own), &[Role::Admin]).await;
    let _theirs = app.key(Some(&other), &[Role::Admin]).await;
    let (status, _) = app
        .call("GET", "/api/v1/stories", Some(&revoke), None)
        .await;
    assert_eq!(status, 200);
    let store = &app.state.store;
    let mine = store.list_api_keys(Some(&own)).await.unwrap();
    assert_eq!(mine.len(), 2, "only the account's keys");
    assert!(mine
        .iter()
        .all(|k| k.account_id.as_deref() == Some(own.as_str())));
    assert_eq!(store.list_api_keys(None).await.unwrap().len(), 3);
    let hash = dossier_server::auth::hash_api_key(&revoke);
    let id = mine.iter().find(|k| k.key_hash == hash).unwrap().id.clone();
    store.delete_api_key(&id).await.unwrap();
    let (status, e) = app
        .call("GET", "/api/v1/stories", Some(&revoke), None)
        .await;
    assert_eq!(status, 401, "{e}");
    let (status, _) = app.call("GET", "/api/v1/stories", Some(&keep), None).await;
    assert_eq!(status, 200, "the account's other key still works");
    assert!(matches!(
        store.delete_api_key(&id).await,
        Err(dossier_store::StoreError::NotFound)
    ));
    app.running.stop().await;
}

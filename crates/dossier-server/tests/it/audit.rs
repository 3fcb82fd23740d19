//! The audit log: sign-ins and sign-outs are in it, and its page filters by who, what and
//! which story, within the reader's account.

use dossier_domain::access::{Licence, Role};
use dossier_store::AuditQuery;

use crate::web_access::{first_story, tenancy};
use crate::web_client::{table_rows, Csrf};
use crate::{spawn_app, App};

async fn lines(app: &App, account: Option<&str>) -> Vec<dossier_store::AuditEntry> {
    app.state
        .store
        .list_audit(&AuditQuery {
            account_id: account.map(str::to_owned),
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

/// Signing in, failing to and signing out are written to the user's account's log, with the
/// name and address but never the password typed; a name no user has is not written either
/// (it may be a password typed in the wrong box), and only operators read that line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_refusals_and_sign_outs_are_audited_without_any_password() {
    let app = spawn_app(0).await;
    let account = app.account(Licence::Xops).await;
    let (name, password) = app.user(Some(&account), &[Role::StoriesViewer]).await;
    let wrong = "wrong-horse-staple-9";
    let typo_name = "correct-horse-typed-as-name";
    assert_eq!(app.login(&name, wrong, None, &[]).await.status(), 401);
    assert_eq!(app.login(typo_name, wrong, None, &[]).await.status(), 401);
    let mut web = crate::web_client::WebSession::sign_in(&app, &name, &password).await;
    let (status, _, _) = web.post_form_with("/logout", &[], Csrf::Session, &[]).await;
    assert_eq!(status, 303);

    let mine = lines(&app, Some(&account)).await;
    let got: Vec<_> = mine
        .iter()
        .map(|l| (l.actor.as_str(), l.action.as_str(), l.target.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (name.as_str(), "signed_out", name.as_str()),
            (name.as_str(), "signed_in", name.as_str()),
            (name.as_str(), "sign_in_refused", name.as_str()),
        ],
        "newest first"
    );
    assert!(mine[2].detail.contains("wrong password"), "{:?}", mine[2]);
    assert!(mine[1].detail.contains("127.0.0.1"), "{:?}", mine[1]);

    let everything = lines(&app, None).await;
    let unknown: Vec<_> = everything
        .iter()
        .filter(|l| l.action == "sign_in_refused" && l.account_id.is_empty())
        .collect();
    assert_eq!(unknown.len(), 1, "{everything:?}");
    assert_eq!(unknown[0].actor, "unknown user");
    for l in &everything {
        let text = format!("{} {} {} {}", l.actor, l.action, l.target, l.detail);
        for secret in [wrong, password.as_str(), typo_name] {
            assert!(!text.contains(secret), "{secret:?} in the audit log: {l:?}");
        }
    }
    app.running.stop().await;
}

/// The page filters by actor, action and story from its URL, links a line about a story to
/// it, says so when nothing matches, and never shows another account's lines, even to a
/// filter naming what is in them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_page_filters_by_who_what_and_story_within_the_account() {
    let app = spawn_app(3).await;
    let t = tenancy(&app, Licence::Xops).await;
    app.until_backfilled(&t.key, &t.connector, 3).await;
    let story = first_story(&app, &t.key).await;
    let (status, body) = app
        .call(
            "POST",
            &format!("/api/v1/stories/{story}/comments"),
            Some(&t.key),
            Some(serde_json::json!({"text": "looked at it"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut admin = app.signed_in(Some(&t.account), &[Role::Admin]).await;
    let foreign = app.account(Licence::Xops).await;
    let mut stranger = app.signed_in(Some(&foreign), &[Role::Admin]).await;
    // A line of the other account that names this story and this admin.
    app.state
        .store
        .audit(
            &foreign,
            &admin.username,
            "comment_added",
            &story,
            "planted",
            chrono::Utc::now(),
        )
        .await
        .unwrap();

    let (status, page) = admin.get(&format!("/audit?story={story}")).await;
    assert_eq!(status, 200);
    let rows = table_rows(&page, "class=\"audit\"");
    assert!(!rows.is_empty(), "{page}");
    for r in &rows {
        assert!(r.contains(&format!("href=\"/stories/{story}\"")), "{r}");
    }
    assert!(!page.contains("planted"));
    assert!(
        page.contains(&format!("value=\"{story}\"")),
        "the filter stays in the form"
    );

    let (_, page) = admin.get("/audit?action=signed_in").await;
    let rows = table_rows(&page, "class=\"audit\"");
    assert!(rows.iter().any(|r| r.contains(&admin.username)), "{page}");
    assert!(
        !page.contains(&stranger.username),
        "another account's sign-in"
    );
    assert!(rows.iter().all(|r| r.contains("signed in")));

    let (_, page) = admin
        .get(&format!(
            "/audit?actor={}&action=comment_added",
            admin.username
        ))
        .await;
    assert!(table_rows(&page, "class=\"audit\"").is_empty(), "{page}");
    assert!(page.contains("No entries match these filters."), "{page}");

    let (_, page) = admin.get("/audit?action=comment_added").await;
    let rows = table_rows(&page, "class=\"audit\"");
    assert_eq!(rows.len(), 1, "{page}");
    assert!(rows[0].contains(&format!("href=\"/stories/{story}\"")));

    // The other account's admin filters by this story: nothing, not even the planted line
    // as a story's (it is a line of theirs, about no story of theirs).
    let (_, page) = stranger.get(&format!("/audit?story={story}")).await;
    assert!(table_rows(&page, "class=\"audit\"").is_empty(), "{page}");
    assert!(page.contains("No entries match these filters."));
    let (_, page) = stranger.get("/audit?action=comment_added").await;
    assert!(
        !page.contains(&format!("href=\"/stories/{story}\"")),
        "{page}"
    );

    let (status, _) = admin
        .get(&format!("/audit?actor={}", "x".repeat(201)))
        .await;
    assert_eq!(status, 400);
    let mut viewer = app
        .signed_in(Some(&t.account), &[Role::StoriesViewer])
        .await;
    assert_eq!(viewer.get("/audit?action=signed_in").await.0, 403);
    app.running.stop().await;
}

//! What a person sees is what is there (issue 27, item 8): bidi controls in tenant or user
//! text are shown as markers and isolated, C0 controls dropped, a comment with nothing to
//! read refused, and `q` with a NUL refused.

use dossier_domain::access::{Licence, Role};
use serde_json::json;

use crate::spawn_app;
use crate::web_access::tenancy;

/// A comment that reads `invoice.exe.pdf` to someone who does not see the RLO.
const SPOOFED: &str = "invoice\u{202E}fdp.exe";
const SHOWN: &str = "<bdi>invoice\u{27E8}U+202E\u{27E9}fdp.exe</bdi>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bidi_controls_are_shown_and_isolated_and_c0_controls_dropped_on_every_page() {
    let app = spawn_app(3).await;
    let own = tenancy(&app, Licence::Xops).await;
    app.until_backfilled(&own.key, &own.connector, 3).await;
    let sid = crate::web_access::first_story(&app, &own.key).await;
    let path = format!("/api/v1/stories/{sid}/comments");
    let (status, c) = app
        .call(
            "POST",
            &path,
            Some(&own.key),
            Some(json!({ "text": SPOOFED })),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    // The API gives the text as it is: the display rule is for people.
    assert_eq!(c["text"], SPOOFED);
    let conn = format!("/api/v1/connectors/{}", own.connector);
    let (status, b) = app
        .call(
            "PATCH",
            &conn,
            Some(&own.key),
            Some(json!({ "name": "Prod\u{2067}\u{7}\u{1b}[2Jlab\u{2069}", "description": "a\u{200F}b" })),
        )
        .await;
    assert_eq!(status, 200, "{b}");

    let mut web = app.signed_in(Some(&own.account), &[Role::Admin]).await;
    let (status, story) = web.get(&format!("/stories/{sid}")).await;
    assert_eq!(status, 200);
    assert!(story.contains(SHOWN), "the comment shows its RLO, isolated");
    let (status, connectors) = web.get("/connectors").await;
    assert_eq!(status, 200);
    assert!(
        connectors.contains("<bdi>Prod\u{27E8}U+2067\u{27E9}[2Jlab\u{27E8}U+2069\u{27E9}</bdi>"),
        "the name's controls are shown or dropped"
    );
    assert!(connectors.contains("<bdi>a\u{27E8}U+200F\u{27E9}b</bdi>"));
    let (_, events) = web.get("/events").await;
    let (_, audit) = web.get("/audit").await;
    for page in [&story, &connectors, &events, &audit] {
        assert!(
            !page
                .chars()
                .any(|c| dossier_domain::display::is_bidi_control(c)
                    || (c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r'))),
            "no page sends a bidi or C0 control"
        );
    }
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_of_invisible_characters_only_is_refused_by_the_api_and_the_form() {
    let app = spawn_app(3).await;
    let own = tenancy(&app, Licence::Xops).await;
    app.until_backfilled(&own.key, &own.connector, 3).await;
    let sid = crate::web_access::first_story(&app, &own.key).await;
    let path = format!("/api/v1/stories/{sid}/comments");
    for text in [
        " \u{200B}\u{200C}\u{200D}\u{FEFF} ",
        "\u{202E}\u{2066}\u{200E}",
        "\u{0}\u{1}\u{7}",
        "\u{3164}\u{00A0}\t",
    ] {
        let (status, b) = app
            .call("POST", &path, Some(&own.key), Some(json!({ "text": text })))
            .await;
        assert_eq!(status, 400, "{text:?}: {b}");
        assert_eq!(b["error"], "bad_request");
        assert!(b["message"].as_str().unwrap().starts_with("text: "), "{b}");
    }
    let mut web = app
        .signed_in(Some(&own.account), &[Role::StoriesEditor])
        .await;
    let (status, body, _) = web
        .post_form(
            &format!("/stories/{sid}/comments"),
            &[("text", "\u{200B}\u{2060}")],
        )
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("a comment needs something to read"), "{body}");
    let story = app.story(&own.key, &sid).await;
    assert!(story["comments"].as_array().unwrap().is_empty());
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_holding_a_nul_is_a_bad_request() {
    let app = spawn_app(0).await;
    let account = app.account(Licence::Xops).await;
    let key = app.key(Some(&account), &[Role::Admin]).await;
    let (status, b) = app
        .call("GET", "/api/v1/stories?q=a%00b", Some(&key), None)
        .await;
    assert_eq!(status, 400, "{b}");
    assert_eq!(b["error"], "bad_request");
    assert!(b["message"].as_str().unwrap().starts_with("q: "), "{b}");
    let mut web = app.signed_in(Some(&account), &[Role::StoriesViewer]).await;
    let (status, _) = web.get("/stories?q=%00").await;
    assert_eq!(status, 400);
    let (status, _) = web.get("/stories?q=fine").await;
    assert_eq!(status, 200);
    app.running.stop().await;
}

//! The analyst's forms, the story list's URL and the events export, through the web UI.

use std::collections::BTreeSet;

use chrono::{SecondsFormat, Utc};
use dossier_domain::access::{Licence, Role};
use serde_json::Value;

use crate::web_access::{first_story, status_of, tenancy, Tenancy, THREATS};
use crate::web_client::{between, content_type, table_rows, WebSession};
use crate::{spawn_app, App};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_analyst_workflow_through_the_forms() {
    let app = spawn_app(10).await;
    let own = tenancy(&app, Licence::Xops).await;
    app.until_backfilled(&own.key, &own.connector, 10).await;
    let stories = app.all_items(&own.key, "/api/v1/stories").await;
    assert!(stories.len() >= 2, "two stories to work on");
    let sid = stories[0]["id"].as_str().unwrap().to_owned();
    let sid2 = stories[1]["id"].as_str().unwrap().to_owned();
    let mut web = app
        .signed_in(Some(&own.account), &[Role::StoriesEditor])
        .await;
    let me = web.username.clone();

    triage_through_the_form(&app, &mut web, &own, &sid).await;
    audit_names_the_user(&app, &own, &sid, &me).await;
    severity_needs_a_malicious_verdict(&app, &mut web, &own, &sid, &sid2).await;
    let full = comments_are_bounded_and_escaped(&app, &mut web, &own, &sid).await;
    only_the_author_deletes_a_comment(&app, &mut web, &own, &sid, &full).await;
    owner_and_close_reason_through_the_form(&app, &mut web, &own, &sid, &sid2).await;
    app.running.stop().await;
}

/// The form sets the owner (offered from the account's users) and closes with a reason; a
/// close without a verdict is refused on the page with the reason.
async fn owner_and_close_reason_through_the_form(
    app: &App,
    web: &mut WebSession,
    own: &Tenancy,
    sid: &str,
    sid2: &str,
) {
    let me = web.username.clone();
    let path = format!("/stories/{sid}");
    let (_, page) = web.get(&path).await;
    assert!(
        page.contains(&format!("<option value=\"{me}\">")),
        "the user is offered as owner: {page}"
    );
    let (status, body, _) = web
        .post_form(
            &path,
            &[
                ("status", "closed"),
                ("verdict", "malicious"),
                ("severity", "high"),
                ("assignee", &me),
                ("close_reason", "contained on the host"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let s = app.story(&own.key, sid).await;
    assert_eq!(s["assignee"].as_str(), Some(me.as_str()), "{s}");
    assert_eq!(s["status"], "closed");
    assert_eq!(s["close_reason"], "contained on the host");
    let (_, page) = web.get(&path).await;
    assert!(
        page.contains(&format!("<option value=\"{me}\" selected>")),
        "{page}"
    );

    let (status, body, _) = web
        .post_form(
            &format!("/stories/{sid2}"),
            &[("status", "closed"), ("verdict", ""), ("severity", "")],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("closing a story needs a verdict"), "{body}");

    // The list's "Mine" filter shows the user's stories only; "none" the others.
    let (status, mine) = web.get("/stories?assignee=me").await;
    assert_eq!(status, 200);
    assert!(mine.contains(&format!("href=\"/stories/{sid}\"")), "{mine}");
    assert!(
        !mine.contains(&format!("href=\"/stories/{sid2}\"")),
        "{mine}"
    );
    assert!(
        mine.contains("aria-pressed=\"true\""),
        "the Mine filter shows as on"
    );
    let (_, nobodys) = web.get("/stories?assignee=none").await;
    assert!(!nobodys.contains(&format!("href=\"/stories/{sid}\"")));
    assert!(
        nobodys.contains(&format!("href=\"/stories/{sid2}\"")),
        "{nobodys}"
    );
}

/// The page offers the triage form and the comment form; each change the form saves is
/// on the timeline once, by the user, and saving it again changes nothing.
async fn triage_through_the_form(app: &App, web: &mut WebSession, own: &Tenancy, sid: &str) {
    let me = web.username.clone();
    let path = format!("/stories/{sid}");
    let (status, page) = web.get(&path).await;
    assert_eq!(status, 200);
    assert!(page.contains("class=\"actions-form\""));
    assert!(page.contains(&format!("action=\"/stories/{sid}/comments\"")));

    let (status, body, to) = web
        .post_form(
            &path,
            &[
                ("status", "pending_analysis"),
                ("verdict", ""),
                ("severity", ""),
            ],
        )
        .await;
    assert_eq!(
        (status, to.as_deref()),
        (303, Some(format!("{path}?saved=triage").as_str())),
        "{body}"
    );
    let (status, body, to) = web
        .post_form(
            &path,
            &[
                ("status", "pending_analysis"),
                ("verdict", "malicious"),
                ("severity", "high"),
            ],
        )
        .await;
    assert_eq!(
        (status, to.as_deref()),
        (303, Some(format!("{path}?saved=triage").as_str())),
        "{body}"
    );
    let s = app.story(&own.key, sid).await;
    assert_eq!(
        (
            s["status"].as_str(),
            s["verdict"].as_str(),
            s["severity"].as_str()
        ),
        (Some("pending_analysis"), Some("malicious"), Some("high"))
    );

    let (status, page) = web.get(&path).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<dt>Status</dt><dd>Pending analysis</dd>"),
        "{page}"
    );
    assert!(page.contains("<dt>Verdict</dt><dd>Malicious</dd>"));
    assert!(page.contains("<dt>Severity</dt><dd>High</dd>"));
    let timeline = table_rows(&page, "<table class=\"timeline\">");
    for kind in ["status changed", "verdict changed", "severity changed"] {
        let row = timeline
            .iter()
            .find(|r| r.contains(&format!("<td>{kind}</td>")))
            .unwrap_or_else(|| panic!("{kind} in the timeline: {timeline:#?}"));
        assert!(
            row.contains(&format!("<td><bdi>{me}</bdi></td>")),
            "{kind} by {me}: {row}"
        );
    }
    // Each change was recorded once: saving the form again changes nothing.
    let count = |rows: &[String], kind: &str| {
        rows.iter()
            .filter(|r| r.contains(&format!("<td>{kind}</td>")))
            .count()
    };
    let (status, _, _) = web
        .post_form(
            &path,
            &[
                ("status", "pending_analysis"),
                ("verdict", "malicious"),
                ("severity", "high"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (_, page) = web.get(&path).await;
    let again = table_rows(&page, "<table class=\"timeline\">");
    for kind in ["status changed", "verdict changed", "severity changed"] {
        assert_eq!(count(&again, kind), 1, "{kind}");
    }
}

/// The audit log names the user for each change.
async fn audit_names_the_user(app: &App, own: &Tenancy, sid: &str, me: &str) {
    let mut admin = app.signed_in(Some(&own.account), &[Role::Admin]).await;
    let (status, audit) = admin.get("/audit").await;
    assert_eq!(status, 200);
    let rows = table_rows(&audit, "<table class=\"audit\">");
    for action in ["status changed", "verdict changed", "severity changed"] {
        assert!(
            rows.iter()
                .any(|r| r.contains(&format!("<td><bdi>{me}</bdi></td>"))
                    && r.contains(&format!("<td>{action}</td>"))
                    && r.contains(sid)),
            "{action} by {me} in the audit log: {rows:#?}"
        );
    }
}

/// A severity needs the verdict malicious, and a verdict away from malicious drops it.
async fn severity_needs_a_malicious_verdict(
    app: &App,
    web: &mut WebSession,
    own: &Tenancy,
    sid: &str,
    sid2: &str,
) {
    let path = format!("/stories/{sid}");
    let path2 = format!("/stories/{sid2}");
    let status2 = status_of(&app.story(&own.key, sid2).await);
    let (status, body, _) = web
        .post_form(
            &path2,
            &[
                ("status", &status2),
                ("verdict", "benign"),
                ("severity", "high"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let alert = between(&body, "role=\"alert\">", "<").unwrap();
    assert!(alert.contains("severity"), "{alert}");
    let s2 = app.story(&own.key, sid2).await;
    assert!(s2["verdict"].is_null() && s2["severity"].is_null(), "{s2}");
    // Changing the verdict away from malicious drops the severity the select still shows.
    let (status, _, _) = web
        .post_form(
            &path,
            &[
                ("status", "pending_analysis"),
                ("verdict", "benign"),
                ("severity", "high"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let s = app.story(&own.key, sid).await;
    assert_eq!(s["verdict"], "benign");
    assert!(s["severity"].is_null(), "{s}");
}

/// Comments: at most 500 characters, escaped on the page. Returns the 500-character one.
async fn comments_are_bounded_and_escaped(
    app: &App,
    web: &mut WebSession,
    own: &Tenancy,
    sid: &str,
) -> String {
    let path = format!("/stories/{sid}");
    let long = "x".repeat(501);
    let (status, body, _) = web
        .post_form(&format!("{path}/comments"), &[("text", &long)])
        .await;
    assert_eq!(status, 400);
    assert!(between(&body, "role=\"alert\">", "<")
        .unwrap()
        .contains("500"));
    let full = "y".repeat(500);
    let (status, _, to) = web
        .post_form(&format!("{path}/comments"), &[("text", &full)])
        .await;
    assert_eq!(
        (status, to),
        (303, Some(format!("{path}?saved=comment#comments")))
    );
    let html = "<b>not bold</b> & more";
    let (status, _, _) = web
        .post_form(&format!("{path}/comments"), &[("text", html)])
        .await;
    assert_eq!(status, 303);
    let (_, page) = web.get(&path).await;
    assert!(page.contains(&full));
    assert!(page.contains("&lt;b&gt;not bold&lt;/b&gt; &amp; more"));
    assert!(!page.contains(html));
    let s = app.story(&own.key, sid).await;
    let comments = s["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 2, "the long one was not saved");
    full
}

/// Only the author deletes a comment; the story's other comments (`kept`) stay.
async fn only_the_author_deletes_a_comment(
    app: &App,
    web: &mut WebSession,
    own: &Tenancy,
    sid: &str,
    kept: &str,
) {
    let me = web.username.clone();
    let path = format!("/stories/{sid}");
    let secret = format!("delete me, {me}");
    let (status, _, _) = web
        .post_form(&format!("{path}/comments"), &[("text", &secret)])
        .await;
    assert_eq!(status, 303);
    let s = app.story(&own.key, sid).await;
    let cid = s["comments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["text"] == secret.as_str())
        .map(|c| {
            assert_eq!(c["author"], me.as_str());
            c["id"].as_str().unwrap().to_owned()
        })
        .unwrap();
    let mut colleague = app
        .signed_in(Some(&own.account), &[Role::StoriesEditor])
        .await;
    let (_, page) = colleague.get(&path).await;
    assert!(page.contains(&secret));
    assert!(
        !page.contains(&format!("/comments/{cid}/delete")),
        "no delete button for someone else's comment"
    );
    let (status, _, _) = colleague
        .post_form(&format!("{path}/comments/{cid}/delete"), &[])
        .await;
    assert_eq!(status, 403);
    assert!(app.story(&own.key, sid).await.to_string().contains(&secret));
    let (_, page) = web.get(&path).await;
    assert!(page.contains(&format!("action=\"/stories/{sid}/comments/{cid}/delete\"")));
    let (status, _, to) = web
        .post_form(&format!("{path}/comments/{cid}/delete"), &[])
        .await;
    assert_eq!((status, to), (303, Some(format!("{path}#comments"))));
    let (_, page) = web.get(&path).await;
    assert!(
        !page.contains(&secret),
        "the deleted comment's text is gone"
    );
    assert!(page.contains(kept), "the other comments stay");
    let s = app.story(&own.key, sid).await;
    assert!(!s["comments"].to_string().contains(&secret));
    assert!(s["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "comment_deleted" && e["actor"] == me.as_str()));
}

/// The sum of the counts of the group table.
fn group_total(html: &str) -> (Vec<String>, u64) {
    let section = between(html, "<section class=\"groups\"", "</section>").unwrap_or_default();
    // One tbody per group: its row, then the row it expands into.
    let rows: Vec<String> = section
        .split("<tbody class=\"group\">")
        .skip(1)
        .map(|g| g.split("</tr>").next().unwrap_or_default().to_owned())
        .collect();
    let total = rows
        .iter()
        .map(|r| {
            between(r, "<td class=\"num\">", "</td>")
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    (rows, total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_story_list_keeps_its_view_in_the_url() {
    let app = spawn_app(usize::try_from(THREATS).unwrap()).await;
    let own = tenancy(&app, Licence::Xops).await;
    app.until_backfilled(&own.key, &own.connector, THREATS)
        .await;
    let mut web = app
        .signed_in(Some(&own.account), &[Role::StoriesViewer])
        .await;
    // One story moves out of "open", so that the filter has something to leave out.
    let sid = first_story(&app, &own.key).await;
    let op = app.key(None, &[Role::Operator]).await;
    let (status, _) = app
        .call(
            "PATCH",
            &format!("/api/v1/stories/{sid}"),
            Some(&op),
            Some(serde_json::json!({"status": "monitoring"})),
        )
        .await;
    assert_eq!(status, 200);

    let from = (Utc::now() - chrono::Duration::days(2)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let api_open = app
        .all_items(
            &own.key,
            &format!("/api/v1/stories?status=open&from={from}"),
        )
        .await;
    let api_all = app
        .all_items(&own.key, &format!("/api/v1/stories?from={from}"))
        .await;
    assert!(!api_open.is_empty());
    assert!(api_open.len() < api_all.len(), "the filter leaves one out");
    assert!(api_all.len() <= 50, "one page of the list");

    let (status, page) = web
        .get("/stories?status=open&sort=-criticality&group=status")
        .await;
    assert_eq!(status, 200);
    let (groups, total) = group_total(&page);
    assert_eq!(groups.len(), 1, "only the open group: {groups:#?}");
    assert!(groups[0].starts_with("<tr><td>Open</td>"), "{groups:#?}");
    assert_eq!(
        total,
        api_open.len() as u64,
        "group counts sum to the API's"
    );
    // The table lists the same stories, by criticality, highest first.
    let rows = table_rows(&page, "<table class=\"stories\">");
    assert_eq!(rows.len(), api_open.len());
    let listed: BTreeSet<String> = rows
        .iter()
        .map(|r| between(r, "href=\"/stories/", "\"").unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = api_open
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, expected);
    assert!(!listed.contains(&sid));
    let crit: Vec<u8> = rows
        .iter()
        .map(|r| {
            between(r, "title=\"criticality, 1 to 10\">", "<")
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(crit.windows(2).all(|w| w[0] >= w[1]), "{crit:?}");
    // The view survives in its links and its form.
    assert!(page.contains("name=\"sort\" value=\"-criticality\""));
    assert!(page.contains("name=\"status\" value=\"open\" checked"));
    assert!(page.contains("<option value=\"status\" selected>"));
    assert!(page.contains("aria-sort=\"descending\""));
    let sort_link = between(&page, "scope=\"col\" aria-sort=\"none\"><a href=\"", "\"").unwrap();
    assert!(sort_link.contains("status=open"), "{sort_link}");
    assert!(sort_link.contains("group=status"), "{sort_link}");

    // Without the status filter, the groups add up to every story of the range.
    let (_, page) = web.get("/stories?group=status").await;
    let (groups, total) = group_total(&page);
    assert!(groups.len() >= 2, "{groups:#?}");
    assert_eq!(total, api_all.len() as u64);

    // A bad criticality: said on the page, which still opens.
    let (status, page) = web.get("/stories?cmin=11").await;
    assert_eq!(status, 200);
    let alert = between(&page, "<p class=\"error\" role=\"alert\">", "<").unwrap();
    assert!(alert.contains("criticality"), "{alert}");
    assert!(
        page.contains("name=\"cmin\" value=\"11\""),
        "the bad value is kept"
    );

    // Nothing matches: the empty state says so.
    let (status, page) = web.get("/stories?q=nothing-matches-this").await;
    assert_eq!(status, 200);
    assert!(page.contains("No stories match"), "{page}");
    assert!(table_rows(&page, "<table class=\"stories\">").is_empty());
    app.running.stop().await;
}

/// The ids of the rows of an events CSV, after checking the header.
fn csv_ids(csv: &str) -> Vec<String> {
    let mut lines = csv.split("\r\n");
    assert_eq!(
        lines.next(),
        Some("id,at,type,account_id,connector_id,story_id,incident_id,message")
    );
    lines
        .filter(|l| !l.is_empty())
        .map(|l| between(l, "\"", "\"").unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_events_export_is_the_accounts_events() {
    let app = spawn_app(usize::try_from(THREATS).unwrap()).await;
    let own = tenancy(&app, Licence::Xops).await;
    let foreign = app.account(Licence::Xops).await;
    let foreign_key = app.key(Some(&foreign), &[Role::Admin]).await;
    let fcid = app
        .create_connector_to(&foreign_key, &app.other_sim.base_url)
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.until_backfilled(&own.key, &own.connector, THREATS)
        .await;
    app.until_backfilled(&foreign_key, &fcid, 7).await;
    let web = app
        .signed_in(Some(&own.account), &[Role::IntegrationsViewer])
        .await;

    // Events only arrive with threats: once the backfill is over the set is still, but read
    // it until two reads agree anyway.
    let mut api: Vec<Value> = Vec::new();
    let mut csv = String::new();
    let mut agreed = false;
    for _ in 0..20 {
        let first = app.all_items(&own.key, "/api/v1/events").await;
        let resp = web.get_response("/events.csv").await;
        assert_eq!(resp.status().as_u16(), 200);
        assert!(content_type(resp.headers()).starts_with("text/csv"));
        assert!(resp
            .headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("attachment")));
        csv = resp.text().await.unwrap();
        api = app.all_items(&own.key, "/api/v1/events").await;
        if first.len() == api.len() && csv_ids(&csv).len() == api.len() {
            agreed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(agreed, "the CSV and the API never agreed");
    let ids = csv_ids(&csv);
    println!("events CSV: {} rows, API: {} events", ids.len(), api.len());
    assert!(
        u64::try_from(ids.len()).unwrap() >= THREATS,
        "at least one event per threat"
    );
    let csv_set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(csv_set.len(), ids.len(), "no row twice");
    let api_set: BTreeSet<String> = api
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(csv_set, api_set);
    // Every row is of this account, in the API's order (newest first).
    let api_order: Vec<String> = api
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, api_order);
    for line in csv.split("\r\n").skip(1).filter(|l| !l.is_empty()) {
        assert!(line.contains(&format!("\"{}\"", own.account)), "{line}");
    }

    // Nothing of the foreign account.
    let foreign_events = app.all_items(&foreign_key, "/api/v1/events").await;
    assert!(!foreign_events.is_empty());
    assert!(!csv.contains(&foreign));
    assert!(!csv.contains(&fcid));
    for e in &foreign_events {
        assert!(!csv_set.contains(e["id"].as_str().unwrap()));
    }
    // Filters apply to the export as to the page.
    let resp = web.get_response("/events.csv?type=incident_created").await;
    let filtered = csv_ids(&resp.text().await.unwrap());
    let api_filtered = app
        .all_items(&own.key, "/api/v1/events?type=incident_created")
        .await;
    assert_eq!(filtered.len(), api_filtered.len());
    assert!(filtered.len() < ids.len());
    app.running.stop().await;
}

/// A reader who sends the triage form unchanged has not acted, but is still not allowed to:
/// the form must be refused like any other change, not answered with a success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_an_unchanged_triage_form_from_a_reader_is_refused() {
    let app = spawn_app(5).await;
    let own = tenancy(&app, Licence::Xops).await;
    app.until_backfilled(&own.key, &own.connector, 5).await;
    let sid = first_story(&app, &own.key).await;
    let current = status_of(&app.story(&own.key, &sid).await);
    let mut reader = app
        .signed_in(Some(&own.account), &[Role::StoriesViewer])
        .await;
    let (status, _, to) = reader
        .post_form(
            &format!("/stories/{sid}"),
            &[("status", &current), ("verdict", ""), ("severity", "")],
        )
        .await;
    assert_eq!(
        status, 403,
        "a stories-viewer's triage form was answered {status} (Location {to:?})"
    );
    app.running.stop().await;
}

/// An account without a connector is told where stories come from, and an admin is offered
/// the form to add one; a reader is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_an_empty_account_points_to_connectors() {
    let app = spawn_app(1).await;
    let account = app.account(Licence::Xops).await;
    let mut admin = app.signed_in(Some(&account), &[Role::Admin]).await;
    let (status, html) = admin.get("/stories").await;
    assert_eq!(status, 200);
    assert!(html.contains("No stories yet."), "{html}");
    assert!(html.contains("href=\"/connectors/new\""), "{html}");
    let mut reader = app.signed_in(Some(&account), &[Role::StoriesViewer]).await;
    let (status, html) = reader.get("/stories").await;
    assert_eq!(status, 200);
    assert!(html.contains("No stories yet."), "{html}");
    assert!(!html.contains("href=\"/connectors/new\""), "{html}");
    app.running.stop().await;
}

//! Response actions from a story: each reaches the emulated SentinelOne tenant and the next
//! poll shows its effect; who may not act is refused, and a tenant's refusal or silence is each
//! threat's answer, with the story left as it was.

use std::time::Duration;

use dossier_domain::access::{Licence, Role};
use dossier_s1sim::Fault;
use dossier_store::AuditQuery;
use serde_json::{json, Value};

use crate::{spawn_app, spawn_app_with, App, TOKEN};

pub(crate) async fn connector(app: &App, key: &str, response: bool) -> String {
    let (status, c) = app
        .call(
            "POST",
            "/api/v1/connectors",
            Some(key),
            Some(
                json!({"kind": "sentinelone", "name": "s1", "tenant_url": app.sim.base_url,
                        "api_token": TOKEN, "response": response}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["response"], response);
    c["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn first_story(app: &App, key: &str) -> Value {
    app.until(30, || async {
        let (_, p) = app
            .call("GET", "/api/v1/stories?limit=1", Some(key), None)
            .await;
        p["items"].as_array().is_some_and(|i| !i.is_empty())
    })
    .await;
    let (_, p) = app
        .call("GET", "/api/v1/stories?limit=1", Some(key), None)
        .await;
    let id = p["items"][0]["id"].as_str().unwrap().to_owned();
    story(app, key, &id).await
}

async fn story(app: &App, key: &str, id: &str) -> Value {
    app.call("GET", &format!("/api/v1/stories/{id}"), Some(key), None)
        .await
        .1
}

pub(crate) async fn act(app: &App, key: &str, sid: &str, body: Value) -> (u16, Value) {
    app.call(
        "POST",
        &format!("/api/v1/stories/{sid}/actions"),
        Some(key),
        Some(body),
    )
    .await
}

fn ids(story: &Value) -> Vec<String> {
    story["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

fn kinds(story: &Value) -> Vec<String> {
    story["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str().map(str::to_owned))
        .collect()
}

/// Sends `action` and checks that every threat of the story was acted on.
async fn all_done(app: &App, key: &str, sid: &str, threats: &[String], body: Value) {
    let (status, r) = act(app, key, sid, body.clone()).await;
    assert_eq!(status, 200, "{body}: {r}");
    assert_eq!(r["action"], body["action"]);
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), threats.len(), "{r}");
    for res in results {
        assert_eq!(res["ok"], true, "{body}: {r}");
        assert!(res["detail"].as_str().unwrap().contains("affected"), "{r}");
        assert!(threats.contains(&res["incident_id"].as_str().unwrap().to_owned()));
    }
}

/// Waits until the story's incidents, as the connector last read them, satisfy `f`.
async fn until_polled(app: &App, key: &str, sid: &str, f: impl Fn(&Value) -> bool) {
    let mut last = Value::Null;
    for _ in 0..300 {
        last = story(app, key, sid).await;
        if last["incidents"].as_array().unwrap().iter().all(&f) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen: Vec<_> = last["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            json!([
                i["mitigation_status"],
                i["analyst_verdict"],
                i["raw"]["mitigationStatus"][0]["action"],
                i["raw"]["agentRealtimeInfo"]["agentNetworkStatus"]
            ])
        })
        .collect();
    panic!("the polls never showed it: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_reaches_the_tenant_and_the_next_poll_shows_it() {
    let app = spawn_app(10).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    connector(&app, &admin, true).await;
    let s = first_story(&app, &admin).await;
    let sid = s["id"].as_str().unwrap().to_owned();
    let threats = ids(&s);
    assert!(!threats.is_empty());

    for (action, recorded) in [
        ("kill", "kill"),
        ("quarantine", "quarantine"),
        ("remediate", "remediate"),
        ("rollback", "rollback"),
    ] {
        all_done(&app, &admin, &sid, &threats, json!({"action": action})).await;
        for t in &threats {
            let threat = app.tenant.threat(t).unwrap();
            assert_eq!(threat["mitigationStatus"][0]["action"], recorded, "{t}");
            assert_eq!(threat["threatInfo"]["mitigationStatus"], "mitigated");
        }
        until_polled(&app, &admin, &sid, |i| {
            i["mitigation_status"] == "mitigated"
                && i["raw"]["mitigationStatus"][0]["action"] == recorded
        })
        .await;
    }

    all_done(
        &app,
        &admin,
        &sid,
        &threats,
        json!({"action": "disconnect"}),
    )
    .await;
    for t in &threats {
        let threat = app.tenant.threat(t).unwrap();
        assert_eq!(
            threat["agentRealtimeInfo"]["agentNetworkStatus"], "disconnected",
            "{}",
            threat["agentRealtimeInfo"]
        );
    }
    until_polled(&app, &admin, &sid, |i| {
        i["raw"]["agentRealtimeInfo"]["agentNetworkStatus"] == "disconnected"
    })
    .await;
    all_done(&app, &admin, &sid, &threats, json!({"action": "reconnect"})).await;
    until_polled(&app, &admin, &sid, |i| {
        i["raw"]["agentRealtimeInfo"]["agentNetworkStatus"] == "connected"
    })
    .await;

    all_done(
        &app,
        &admin,
        &sid,
        &threats,
        json!({"action": "blocklist", "scope": "account"}),
    )
    .await;
    let blocked = app.tenant.blocklist();
    assert!(!blocked.is_empty());
    assert!(blocked.iter().all(|e| e["scope"]["accountIds"].is_array()));
    // Repeating is harmless: the same hash at the same scope is not added twice.
    all_done(
        &app,
        &admin,
        &sid,
        &threats,
        json!({"action": "blocklist", "scope": "account"}),
    )
    .await;
    assert_eq!(app.tenant.blocklist().len(), blocked.len());
    let writes = app.tenant.writes();
    assert!(writes
        .iter()
        .any(|w| w["data"]["targetScope"] == "account" && w["filter"]["ids"].is_array()));

    all_done(
        &app,
        &admin,
        &sid,
        &threats,
        json!({"action": "mark_true_positive"}),
    )
    .await;
    until_polled(&app, &admin, &sid, |i| {
        i["analyst_verdict"] == "true_positive"
    })
    .await;
    all_done(
        &app,
        &admin,
        &sid,
        &threats,
        json!({"action": "mark_false_positive"}),
    )
    .await;
    until_polled(&app, &admin, &sid, |i| {
        i["analyst_verdict"] == "false_positive"
    })
    .await;

    // The timeline and the audit log say what was done, and by whom.
    let s = story(&app, &admin, &sid).await;
    let responses = kinds(&s).iter().filter(|k| *k == "response").count();
    assert_eq!(responses, 10, "{:?}", kinds(&s));
    let audit = app
        .state
        .store
        .list_audit(&AuditQuery {
            account_id: Some(account.clone()),
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let acted: Vec<_> = audit.iter().filter(|l| l.action == "response").collect();
    assert_eq!(acted.len(), 10);
    assert!(acted.iter().all(|l| l.target == sid && !l.actor.is_empty()));
    assert!(acted.iter().any(|l| l.detail.starts_with("disconnect")));
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_not_respond_is_refused_and_nothing_is_sent() {
    let app = spawn_app(10).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    let viewer = app.key(Some(&account), &[Role::StoriesViewer]).await;
    let cid = connector(&app, &admin, false).await;
    let s = first_story(&app, &admin).await;
    let sid = s["id"].as_str().unwrap().to_owned();

    // The connector's switch is off: a conflict that says so.
    let (status, e) = act(&app, &admin, &sid, json!({"action": "kill"})).await;
    assert_eq!(status, 409, "{e}");
    assert!(e.to_string().contains("\\\"response\\\" switch"), "{e}");
    // A viewer may read the story, not act on it.
    let (status, _) = act(&app, &viewer, &sid, json!({"action": "kill"})).await;
    assert_eq!(status, 403);
    // Bodies are strict.
    let (status, _) = act(&app, &admin, &sid, json!({"action": "explode"})).await;
    assert_eq!(status, 400);
    let (status, _) = act(&app, &admin, &sid, json!({"action": "kill", "extra": 1})).await;
    assert_eq!(status, 400);
    let (status, _) = act(
        &app,
        &admin,
        &sid,
        json!({"action": "blocklist", "scope": "galaxy"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(app.tenant.writes().is_empty());

    // Turned on, the admin may act.
    let (status, _) = app
        .call(
            "PATCH",
            &format!("/api/v1/connectors/{cid}"),
            Some(&admin),
            Some(json!({"response": true})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, r) = act(&app, &admin, &sid, json!({"action": "kill"})).await;
    assert_eq!(status, 200, "{r}");
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mdr_account_reads_its_stories_but_cannot_respond() {
    let app = spawn_app(10).await;
    let account = app.account(Licence::Mdr).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    connector(&app, &admin, true).await;
    let s = first_story(&app, &admin).await;
    let sid = s["id"].as_str().unwrap().to_owned();
    let (status, e) = act(&app, &admin, &sid, json!({"action": "disconnect"})).await;
    assert_eq!(status, 403, "{e}");
    assert!(e.to_string().contains("mdr"), "{e}");
    assert!(app.tenant.writes().is_empty());
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_refusal_is_each_threats_answer_and_the_story_stays() {
    let app = spawn_app(10).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    connector(&app, &admin, true).await;
    let s = first_story(&app, &admin).await;
    let sid = s["id"].as_str().unwrap().to_owned();
    let threats = ids(&s);
    let before: Vec<Value> = threats
        .iter()
        .map(|t| app.tenant.threat(t).unwrap())
        .collect();
    app.tenant.push_write_faults([Fault::Forbidden]);
    let (status, r) = act(&app, &admin, &sid, json!({"action": "quarantine"})).await;
    assert_eq!(status, 200, "{r}");
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), threats.len());
    assert!(results.iter().all(|x| x["ok"] == false), "{r}");
    let detail = results[0]["detail"].as_str().unwrap();
    assert!(detail.contains("403"), "the tenant's reason: {r}");
    assert!(
        detail.contains("may read threats but not quarantine the threat's file")
            && detail.contains("role that may take response actions"),
        "the missing permission is named: {r}"
    );
    for (t, was) in threats.iter().zip(&before) {
        assert_eq!(
            &app.tenant.threat(t).unwrap(),
            was,
            "the tenant changed nothing"
        );
    }
    let after = story(&app, &admin, &sid).await;
    assert_eq!(after["status"], s["status"]);
    assert_eq!(after["verdict"], s["verdict"]);
    assert!(kinds(&after).iter().any(|k| k == "response_failed"));
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_that_does_not_answer_in_time_is_a_failure_not_a_hang() {
    let app = spawn_app_with(10, |c| {
        c.request_timeout = Duration::from_millis(300);
    })
    .await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    connector(&app, &admin, true).await;
    let s = first_story(&app, &admin).await;
    let sid = s["id"].as_str().unwrap().to_owned();
    app.tenant
        .push_write_faults(std::iter::repeat_n(Fault::Slow(Duration::from_secs(2)), 30));
    let started = std::time::Instant::now();
    let (status, r) = act(&app, &admin, &sid, json!({"action": "disconnect"})).await;
    assert_eq!(status, 200, "{r}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let results = r["results"].as_array().unwrap();
    assert!(results.iter().all(|x| x["ok"] == false), "{r}");
    let detail = results[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("time") || detail.contains("answer"),
        "{detail}"
    );
    let after = story(&app, &admin, &sid).await;
    assert!(kinds(&after).iter().any(|k| k == "response_failed"));
    app.running.stop().await;
}

/// The story page offers the actions to an editor when the connector allows them; each button
/// leads to a confirmation saying what it will touch, which performs the action and shows the
/// tenant's answer; the device then reads disconnected on the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_story_page_confirms_then_responds_and_shows_the_answer() {
    let app = spawn_app(10).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    let cid = connector(&app, &admin, false).await;
    let s = first_story(&app, &admin).await;
    let sid = s["id"].as_str().unwrap().to_owned();
    let threats = ids(&s);
    let mut web = app.signed_in(Some(&account), &[Role::StoriesEditor]).await;
    let path = format!("/stories/{sid}");

    // The switch off: no Respond section.
    let (status, page) = web.get(&path).await;
    assert_eq!(status, 200);
    assert!(!page.contains("id=\"respond\""));
    app.call(
        "PATCH",
        &format!("/api/v1/connectors/{cid}"),
        Some(&admin),
        Some(json!({"response": true})),
    )
    .await;
    let (_, page) = web.get(&path).await;
    assert!(page.contains("id=\"respond\""), "{page}");
    for name in [
        "kill",
        "quarantine",
        "disconnect",
        "blocklist",
        "mark_false_positive",
    ] {
        assert!(page.contains(&format!("id=\"action-{name}\"")), "{name}");
    }

    let (status, confirm) = web
        .get(&format!("/stories/{sid}/respond?action=disconnect"))
        .await;
    assert_eq!(status, 200, "{confirm}");
    let touches = format!(
        "{} threat{} on 1 device",
        threats.len(),
        if threats.len() == 1 { "" } else { "s" }
    );
    assert!(confirm.contains(&touches), "{touches}: {confirm}");
    assert!(
        app.tenant.writes().is_empty(),
        "nothing is sent before confirming"
    );

    let (status, done, _) = web
        .post_form(
            &format!("/stories/{sid}/respond"),
            &[("action", "disconnect")],
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("affected 1"), "{done}");
    for t in &threats {
        assert!(done.contains(t.as_str()));
    }
    let mut shown = false;
    for _ in 0..300 {
        let (_, page) = web.get(&path).await;
        if page.contains("id=\"network-status\"><bdi>disconnected</bdi>") {
            shown = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(shown, "the device reads disconnected on the story page");

    // A viewer sees no Respond section, and is refused if they try.
    let mut viewer = app.signed_in(Some(&account), &[Role::StoriesViewer]).await;
    let (_, page) = viewer.get(&path).await;
    assert!(!page.contains("id=\"respond\""));
    let (status, _) = viewer
        .get(&format!("/stories/{sid}/respond?action=kill"))
        .await;
    assert_eq!(status, 403);
    app.running.stop().await;
}

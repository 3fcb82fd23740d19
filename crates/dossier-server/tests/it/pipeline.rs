use dossier_domain::access::{Licence, Role};
use serde_json::json;
use std::time::Duration;

use crate::{spawn_app, App, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threats_become_stories_through_the_api() {
    let app = spawn_app(300).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    let connector = app.create_connector(&admin).await;
    assert_eq!(connector["status"], "pending");
    assert_eq!(
        connector["backfill"]["percent"], 0.0,
        "the whole backfill is ahead"
    );
    assert_eq!(
        connector["tenant_url"],
        app.sim.base_url.trim_end_matches('/')
    );
    assert!(connector.get("api_token").is_none());
    let id = connector["id"].as_str().unwrap().to_owned();

    let path = format!("/api/v1/connectors/{id}");
    app.until_read(&admin, &path, 300, 30).await;
    let (_, c) = app.call("GET", &path, Some(&admin), None).await;
    assert!(c["token_expires_at"].is_string(), "{c}");
    assert!(c["backfill"].is_null(), "the backfill is over: {c}");
    assert!(
        c["health"]["lag_seconds"]
            .as_i64()
            .is_some_and(|l| (0..30).contains(&l)),
        "{c}"
    );
    assert!(c["last_success_at"].is_string());

    every_threat_is_in_exactly_one_story(&app, &admin, 300).await;

    // A live threat reaches its story.
    let new_id = app.tenant.generate_live(chrono::Utc::now());
    app.until_ingested(&admin, &new_id).await;

    // Events filter by type and connector, and page with a cursor.
    let (status, e) = app
        .call(
            "GET",
            &format!("/api/v1/events?type=story_created&connector_id={id}&limit=3"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(e["items"].as_array().unwrap().len(), 3);
    assert!(e["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["type"] == "story_created"));
    let next = e["next_cursor"].as_str().unwrap();
    let (_, e2) = app
        .call(
            "GET",
            &format!("/api/v1/events?type=story_created&limit=3&cursor={next}"),
            Some(&admin),
            None,
        )
        .await;
    assert_ne!(e2["items"][0]["id"], e["items"][0]["id"]);

    // The token never leaves the server: not in the API, not in the database file.
    let (_, all) = app
        .call("GET", "/api/v1/connectors", Some(&admin), None)
        .await;
    assert!(!all.to_string().contains(TOKEN));
    let db = std::fs::read(app.dir.path().join("it.db")).unwrap();
    assert!(!db.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()));
    // Nor in the logs at debug level (of every test in this binary, all using the token).
    let logs = crate::logs();
    assert!(
        logs.len() > 10_000,
        "debug logs were captured ({} bytes)",
        logs.len()
    );
    assert!(!logs.contains(TOKEN), "the token is in the logs");

    // The metrics count every account: an operator's key reads them, no other.
    let (status, _) = app.call("GET", "/metrics", None, None).await;
    assert_eq!(status, 401);
    let (status, e) = app.call("GET", "/metrics", Some(&admin), None).await;
    assert_eq!((status, &e["error"]), (403, &json!("forbidden")), "{e}");
    let operator = app.key(None, &[Role::Operator]).await;
    let (status, m) = app.call("GET", "/metrics", Some(&operator), None).await;
    assert_eq!(status, 200);
    let m = m.as_str().unwrap().to_owned();
    assert!(m.contains("dossier_connector_polls_total"), "{m}");
    assert!(m.contains("dossier_story_latency_seconds"));
    // Every metric the README names exists.
    let readme = include_str!("../../../../README.md");
    let m_text = m.as_str();
    let named: std::collections::BTreeSet<&str> = readme
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("dossier_") && w.ends_with(|c: char| c.is_ascii_lowercase()))
        .filter(|w| w.contains("_total") || w.contains("_seconds"))
        .collect();
    assert!(named.len() >= 10, "{named:?}");
    for name in named {
        // A counter's family is typed under its name without `_total` (its samples carry it),
        // and a family with no labelled sample yet shows only its type.
        let family = format!("# TYPE {} ", name.trim_end_matches("_total"));
        assert!(
            m_text.contains(&family),
            "the README names {name}, which /metrics lacks"
        );
    }
    // A metrics key, as a Prometheus scrape uses, reads them and no account's data.
    let scrape = app.key(None, &[Role::Metrics]).await;
    let (status, m) = app.call("GET", "/metrics", Some(&scrape), None).await;
    assert_eq!(status, 200, "{m}");
    assert!(m
        .as_str()
        .unwrap()
        .contains("dossier_connector_polls_total"));
    for path in [
        "/api/v1/stories",
        "/api/v1/connectors",
        "/api/v1/events",
        "/api/v1/events?account_id=x",
    ] {
        let (status, e) = app.call("GET", path, Some(&scrape), None).await;
        assert_eq!(status, 403, "{path}: {e}");
    }
    app.running.stop().await;
}

/// A story its analyst judged benign is marked a false positive in the producer, and nothing
/// stops or blocks its threat; a closed story needs nothing more done.
async fn next_steps_follow_the_verdict_and_the_status(
    app: &App,
    admin: &str,
    path: &str,
    d: &serde_json::Value,
) {
    let admin = Some(admin);
    assert_next_steps(d);
    let (status, e) = app
        .call(
            "PATCH",
            path,
            admin,
            Some(json!({"verdict": "benign", "severity": null})),
        )
        .await;
    assert_eq!(status, 200, "{e}");
    let (_, benign) = app.call("GET", path, admin, None).await;
    let actions: Vec<&str> = benign["next_steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["action"].as_str())
        .collect();
    assert_eq!(actions, ["mark_false_positive"], "{}", benign["next_steps"]);
    let (status, e) = app
        .call(
            "PATCH",
            path,
            admin,
            Some(json!({"verdict": "malicious", "severity": "high"})),
        )
        .await;
    assert_eq!(status, 200, "{e}");

    // A closed story needs nothing more done.
    let (status, closed) = app
        .call("PATCH", path, admin, Some(json!({"status": "closed"})))
        .await;
    assert_eq!(status, 200, "{closed}");
    let (_, d) = app.call("GET", path, admin, None).await;
    assert_eq!(
        d["next_steps"],
        json!([]),
        "a closed story recommends nothing"
    );
    let (status, _) = app
        .call(
            "PATCH",
            path,
            admin,
            Some(json!({"status": "pending_analysis"})),
        )
        .await;
    assert_eq!(status, 200);
}

/// Checks a story detail's next steps: at least one for a story not closed, each with its text,
/// its reason and a response action by its API name or `null`.
fn assert_next_steps(d: &serde_json::Value) {
    const ACTIONS: [&str; 9] = [
        "kill",
        "quarantine",
        "remediate",
        "rollback",
        "disconnect",
        "reconnect",
        "blocklist",
        "mark_true_positive",
        "mark_false_positive",
    ];
    let steps = d["next_steps"].as_array().expect("next_steps is an array");
    assert_eq!(steps.is_empty(), d["status"] == "closed", "{steps:?}");
    for s in steps {
        assert!(!s["text"].as_str().unwrap().is_empty(), "{s}");
        assert!(!s["reason"].as_str().unwrap().is_empty(), "{s}");
        assert!(
            s["action"].is_null() || ACTIONS.contains(&s["action"].as_str().unwrap()),
            "{s}"
        );
    }
}

/// Checks a story detail's entities against its incidents: the device comes from every one,
/// a story whose incidents are all fileless shows storylines and no file, and a story with a
/// file hash shows that file with it.
fn assert_entities(d: &serde_json::Value, incidents: &[serde_json::Value]) {
    let e = &d["entities"];
    assert_eq!(
        e["device"]["incident_count"], d["incident_count"],
        "the device comes from every incident: {e}"
    );
    let ids = e["device"]["incident_ids"].as_array().unwrap();
    assert!(!ids.is_empty() && ids.len() <= 20, "{e}");
    assert_eq!(ids[0], incidents[0]["id"], "ids in story order");
    let fileless = incidents
        .iter()
        .all(|i| i["raw"]["threatInfo"]["isFileless"] == true);
    if fileless {
        assert_eq!(
            e["files"],
            serde_json::json!([]),
            "a fileless story shows no file: {e}"
        );
    } else if let Some(sha1) = d["file"]["sha1"].as_str() {
        assert!(
            e["files"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["sha1"] == sha1),
            "{e}"
        );
    }
    for kind in ["users", "files", "processes", "storylines", "indicators"] {
        for entity in e[kind].as_array().unwrap() {
            assert!(entity["incident_count"].as_u64().unwrap() >= 1, "{entity}");
        }
    }
}

/// Walks the story list page by page: every threat is in exactly one story, and recurring
/// threats share one, so there are fewer stories than threats.
async fn every_threat_is_in_exactly_one_story(app: &App, admin: &str, threats: usize) {
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    let mut stories = 0;
    loop {
        let q = cursor
            .as_ref()
            .map_or(String::new(), |c| format!("&cursor={c}"));
        let (status, page) = app
            .call(
                "GET",
                &format!("/api/v1/stories?limit=40{q}"),
                Some(admin),
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        for s in page["items"].as_array().unwrap() {
            stories += 1;
            let (_, d) = app
                .call(
                    "GET",
                    &format!("/api/v1/stories/{}", s["id"].as_str().unwrap()),
                    Some(admin),
                    None,
                )
                .await;
            // The detail carries the first page; the rest page by its cursor.
            let mut incidents = d["incidents"].as_array().unwrap().clone();
            if let Some(c) = d["incidents_next_cursor"].as_str() {
                let (status, rest) = app
                    .call(
                        "GET",
                        &format!(
                            "/api/v1/stories/{}/incidents?limit=1000&cursor={c}",
                            s["id"].as_str().unwrap()
                        ),
                        Some(admin),
                        None,
                    )
                    .await;
                assert_eq!(status, 200, "{rest}");
                assert!(rest["next_cursor"].is_null());
                incidents.extend(rest["items"].as_array().unwrap().iter().cloned());
            }
            assert_eq!(
                incidents.len() as u64,
                s["incident_count"].as_u64().unwrap()
            );
            for i in &incidents {
                assert!(i["id"].is_string(), "threat ids are strings");
                assert!(i["raw"]["threatInfo"].is_object(), "raw JSON kept");
                // The evidence reads back as the tenant sent it (it is stored compressed).
                let id = i["id"].as_str().unwrap();
                assert_eq!(
                    Some(&i["raw"]),
                    app.tenant.threat(id).as_ref(),
                    "raw JSON of {id} differs from the tenant's"
                );
                assert!(
                    seen.insert(i["id"].as_str().unwrap().to_owned()),
                    "an incident in two stories"
                );
            }
            assert!(!d["summary"].as_str().unwrap().is_empty());
            assert_next_steps(&d);
            assert_entities(&d, &incidents);
            assert!(!d["timeline"].as_array().unwrap().is_empty());
            assert!((1..=10).contains(&d["criticality"].as_u64().unwrap()));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), threats);
    assert!(
        stories < threats,
        "correlation groups recurring threats ({stories} stories)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysts_act_on_stories() {
    let app = spawn_app(50).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    app.create_connector(&admin).await;
    app.until(30, || async {
        let (_, p) = app
            .call("GET", "/api/v1/stories?limit=1", Some(&admin), None)
            .await;
        !p["items"].as_array().unwrap().is_empty()
    })
    .await;
    let (_, p) = app
        .call("GET", "/api/v1/stories?limit=1", Some(&admin), None)
        .await;
    let sid = p["items"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/stories/{sid}");

    let (status, d) = app
        .call(
            "PATCH",
            &path,
            Some(&admin),
            Some(json!({"status": "pending_analysis", "verdict": "malicious", "severity": "high"})),
        )
        .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(
        (
            d["status"].as_str(),
            d["verdict"].as_str(),
            d["severity"].as_str()
        ),
        (Some("pending_analysis"), Some("malicious"), Some("high"))
    );
    let (status, e) = app
        .call(
            "PATCH",
            &path,
            Some(&admin),
            Some(json!({"verdict": "benign", "severity": "low"})),
        )
        .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"], "bad_request");
    assert!(e["message"].as_str().unwrap().contains("severity"));
    let (status, _) = app
        .call(
            "PATCH",
            &path,
            Some(&admin),
            Some(json!({"status": "bogus"})),
        )
        .await;
    assert!(status == 400 || status == 422);

    let (status, c) = app
        .call(
            "POST",
            &format!("{path}/comments"),
            Some(&admin),
            Some(json!({"text": "escalated to IR"})),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    let (status, _) = app
        .call(
            "POST",
            &format!("{path}/comments"),
            Some(&admin),
            Some(json!({"text": "x".repeat(501)})),
        )
        .await;
    assert_eq!(status, 400);
    let (_, d) = app.call("GET", &path, Some(&admin), None).await;
    let kinds: Vec<&str> = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    for k in [
        "incident_added",
        "status_changed",
        "verdict_changed",
        "severity_changed",
        "comment_added",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    assert_eq!(d["comments"][0]["text"], "escalated to IR");
    assert_eq!(
        d["comments"][0]["created_at"], c["created_at"],
        "a comment reads the same when posted and when read back"
    );

    next_steps_follow_the_verdict_and_the_status(&app, &admin, &path, &d).await;

    // Filters and sort reach the list.
    let (_, filtered) = app
        .call(
            "GET",
            "/api/v1/stories?status=pending_analysis&verdict=malicious",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
    let (status, e) = app
        .call("GET", "/api/v1/stories?sort=-nonsense", Some(&admin), None)
        .await;
    assert_eq!((status, e["error"].as_str()), (400, Some("bad_request")));
    let (status, _) = app
        .call("GET", "/api/v1/stories?limit=5000", Some(&admin), None)
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .call("GET", "/api/v1/stories?from=yesterday", Some(&admin), None)
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .call("GET", "/api/v1/stories?cursor=garbage", Some(&admin), None)
        .await;
    assert_eq!(status, 400);
    app.running.stop().await;
}

/// A connector of a kind this build has no source for is refused with the kinds it has, by the
/// API and by the connector form alike; nothing is created.
#[tokio::test]
async fn a_connector_of_an_unknown_kind_is_refused_naming_the_known_kinds() {
    let app = spawn_app(1).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    let body = json!({"kind": "carbonblack", "name": "x", "tenant_url": app.sim.base_url, "api_token": crate::TOKEN});
    let (status, e) = app
        .call("POST", "/api/v1/connectors", Some(&admin), Some(body))
        .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("bad_request")),
        "{e}"
    );
    assert_eq!(
        e["message"],
        "kind: unknown connector kind \"carbonblack\"; known: sentinelone, defender, crowdstrike"
    );
    let (_, list) = app
        .call("GET", "/api/v1/connectors", Some(&admin), None)
        .await;
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
    let mut web = app.signed_in(Some(&account), &[Role::Admin]).await;
    let (status, html) = web.get("/connectors/new?kind=carbonblack").await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("known: sentinelone"), "{html}");
    let (status, html) = web.get("/connectors/new").await;
    assert_eq!(status, 200);
    assert!(html.contains("Add a SentinelOne connector"), "{html}");
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_puts_the_connector_in_error_with_an_event() {
    let app = spawn_app(5).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    let (status, c) = app
        .call(
            "POST",
            "/api/v1/connectors",
            Some(&admin),
            Some(json!({"kind": "sentinelone", "name": "Bad", "tenant_url": app.sim.base_url, "api_token": "wrong-token-xyz", "track_errors": true})),
        )
        .await;
    assert_eq!(status, 201);
    let path = format!("/api/v1/connectors/{}", c["id"].as_str().unwrap());
    app.until(20, || async {
        let (_, c) = app.call("GET", &path, Some(&admin), None).await;
        c["status"] == "error"
    })
    .await;
    let (_, c) = app.call("GET", &path, Some(&admin), None).await;
    let detail = c["status_detail"].as_str().unwrap();
    assert!(detail.contains("401"), "{detail}");
    assert!(!c.to_string().contains("wrong-token-xyz"));
    assert!(
        !crate::logs().contains("wrong-token-xyz"),
        "a rejected token is not logged either"
    );
    let errors = app.events(&admin, "connector_error", 50).await;
    assert_eq!(
        errors.len(),
        1,
        "one event per transition into error: {errors:?}"
    );

    // Replacing the token heals it.
    let (status, _) = app
        .call(
            "PATCH",
            &path,
            Some(&admin),
            Some(json!({"api_token": TOKEN})),
        )
        .await;
    assert_eq!(status, 200);
    app.until(20, || async {
        let (_, c) = app.call("GET", &path, Some(&admin), None).await;
        c["status"] == "connected"
    })
    .await;
    app.running.stop().await;
}

/// Every error under `/api/` has the contract's `{"error","message"}` shape, also those no
/// handler makes: a method a route does not take, and a body over the limit.
#[tokio::test]
async fn errors_no_handler_makes_keep_the_api_error_shape() {
    let app = spawn_app(1).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    for (method, path) in [
        ("DELETE", "/api/v1/stories/x"),
        ("POST", "/api/v1/stories"),
        ("PUT", "/api/v1/connectors/x"),
        ("GET", "/api/v1/stories/x/comments"),
    ] {
        for key in [Some(admin.as_str()), None] {
            let (status, e) = app.call(method, path, key, None).await;
            assert_eq!(status, 405, "{method} {path}: {e}");
            assert_eq!(e["error"], "method_not_allowed", "{method} {path}: {e}");
        }
    }
    let big = json!({ "text": "x".repeat(1024 * 1024) });
    let (status, e) = app
        .call(
            "POST",
            "/api/v1/stories/x/comments",
            Some(&admin),
            Some(big),
        )
        .await;
    assert_eq!(status, 413, "{e}");
    assert_eq!(e["error"], "payload_too_large", "{e}");
    // Events refuse a reversed time range as stories do.
    let (status, e) = app
        .call(
            "GET",
            "/api/v1/events?from=2026-11-29T00:00:00Z&to=2026-11-28T00:00:00Z",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 400, "{e}");
    assert!(e["message"].as_str().unwrap().contains("from"), "{e}");
    for cursor in ["-5", "0", "x"] {
        let (status, e) = app
            .call(
                "GET",
                &format!("/api/v1/events?cursor={cursor}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(status, 400, "cursor {cursor}: {e}");
    }
    // A 401 names the scheme to use (RFC 6750).
    let res = app
        .http
        .get(format!("{}/api/v1/stories", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    app.running.stop().await;
}

#[tokio::test]
async fn connector_input_is_validated_with_the_field_named() {
    let app = spawn_app(1).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    let base = json!({"kind": "sentinelone", "name": "x", "tenant_url": app.sim.base_url, "api_token": "t"});
    for (field, value, needle) in [
        ("tenant_url", json!("http://example.com"), "tenant_url"),
        (
            "tenant_url",
            json!("https://user:pw@example.com"),
            "tenant_url",
        ),
        (
            "tenant_url",
            json!("https://example.com/?q=1"),
            "tenant_url",
        ),
        ("name", json!(""), "name"),
        ("name", json!("n".repeat(101)), "name"),
        ("api_token", json!("  "), "api_token"),
        ("api_token", json!(42), "api_token: must be a string"),
        ("kind", json!("no-such-kind"), "kind"),
        // Another kind's field is refused by name, never ignored.
        (
            "client_secret",
            json!("s"),
            "client_secret: not a field of a sentinelone connector",
        ),
    ] {
        let mut b = base.clone();
        b[field] = value;
        let (status, e) = app
            .call("POST", "/api/v1/connectors", Some(&admin), Some(b))
            .await;
        assert_eq!(status, 400, "{field}: {e}");
        assert!(e["message"].as_str().unwrap().contains(needle), "{e}");
    }
    let (_, doc) = app.call("GET", "/api/openapi.json", None, None).await;
    assert!(doc["paths"]["/api/v1/stories"].is_object());
    assert!(doc["paths"]["/api/v1/connectors/{id}"]["patch"].is_object());
    // The lists' filters are optional query parameters, as a generated client must see them.
    for list in ["/api/v1/stories", "/api/v1/events"] {
        let params = doc["paths"][list]["get"]["parameters"].as_array().unwrap();
        assert!(params.len() >= 7, "{list}: {params:?}");
        for p in params {
            assert_eq!(p["in"], "query", "{list}: {p}");
            assert_ne!(p["required"], true, "{list}: {p}");
        }
        let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
        assert_eq!(limit["schema"]["minimum"], 1, "{list}: {limit}");
        assert_eq!(limit["schema"]["maximum"], 1000, "{list}: {limit}");
    }
    // Every operation that takes a key says how a missing key and a missing role answer.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if ["/healthz", "/readyz"].contains(&path.as_str()) {
                continue;
            }
            for status in ["401", "403"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {path} does not document {status}"
                );
            }
        }
    }
    for op in ["/healthz", "/readyz", "/metrics"] {
        assert!(doc["paths"][op]["get"].is_object(), "{op} is in the spec");
    }
    let (status, _) = app.call("GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
    let (status, _) = app.call("GET", "/readyz", None, None).await;
    assert_eq!(status, 200);
    app.running.stop().await;
}

/// A threat stamped in 2185 is in every poll's window: it neither lifts the checkpoint past the
/// threats to come nor makes every poll a commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_future_timestamp_does_not_stall_the_poll() {
    let app = crate::spawn_app_with(20, |c| {
        c.poll_policy.overlap = chrono::Duration::seconds(1);
        c.poll_interval = Duration::from_millis(200);
    })
    .await;
    // A STAR-style threat updated in 2185 (SENTINELONE.md §6.9).
    let mut odd = app.tenant.threat(&app.tenant.all_ids()[0]).unwrap();
    odd["id"] = json!("9999999999999999999");
    odd["threatInfo"]["threatId"] = json!("9999999999999999999");
    odd["threatInfo"]["updatedAt"] = json!("2185-01-01T00:00:00.000000Z");
    app.tenant.put_threat(&odd).unwrap();
    let (admin, path) = app.admin_with_connector().await;
    app.until(30, || async {
        let (_, c) = app.call("GET", &path, Some(&admin), None).await;
        c["health"]["threats"].as_u64() == Some(21)
    })
    .await;
    // Read again on every poll, it is not committed again: the polls are idle once the newest
    // threat before it has been re-read for the overlap's length (until then, each poll
    // commits what it re-read in the overlap).
    app.until(30, || async {
        app.checkpoint(&path)
            .await
            .is_some_and(|c| c.since_exclusive)
    })
    .await;
    let last_success = || async {
        let (_, c) = app.call("GET", &path, Some(&admin), None).await;
        c["last_success_at"].as_str().unwrap().to_owned()
    };
    let before = last_success().await;
    let requests = app.tenant.request_count();
    app.until_polls(&path, 5).await;
    let polls = app.tenant.request_count() - requests;
    assert_eq!(
        last_success().await,
        before,
        "{polls} polls that read only the far-future threat were written"
    );
    // Threats created after it still arrive.
    let later = app.tenant.generate_live(chrono::Utc::now());
    app.until_ingested(&admin, &later).await;
    app.running.stop().await;
}

/// A threat indexed late, with an `updatedAt` before where the polls now start (past the
/// overlap), is found by the next sweep; sweeps that find nothing new commit nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_threat_indexed_minutes_late_is_found_by_a_sweep() {
    let app = crate::spawn_app_with(20, |c| {
        c.poll_policy.overlap = chrono::Duration::seconds(1);
        c.poll_policy.sweep_every = chrono::Duration::seconds(2);
        c.poll_policy.sweep_overlap = chrono::Duration::seconds(120);
        c.poll_interval = Duration::from_millis(200);
    })
    .await;
    let (admin, path) = app.admin_with_connector().await;
    app.until_read(&admin, &path, 20, 30).await;
    let newest = chrono::Utc::now();
    let live = app.tenant.generate_live(newest);
    app.until_ingested(&admin, &live).await;
    // Polls now start within the overlap before the newest threat, far after the late one
    // below: only a sweep reaches back to it.
    app.until_polls(&path, 2).await;

    let mut late = app.tenant.threat(&live).unwrap();
    late["id"] = json!("7777777777777777777");
    late["threatInfo"]["threatId"] = json!("7777777777777777777");
    late["threatInfo"]["updatedAt"] = json!(dossier_domain::time::format_micros(
        newest - chrono::Duration::seconds(30)
    ));
    app.tenant.put_threat(&late).unwrap();
    app.until_ingested(&admin, "7777777777777777777").await;

    // Later sweeps read the same threats again and add nothing.
    let events = app.events(&admin, "incident_created", 1000).await.len();
    let served = app.tenant.threats_served();
    app.until(30, || async { app.tenant.threats_served() > served })
        .await;
    // The worker is done with the sweep's pages once it has made two more polls.
    app.until_polls(&path, 2).await;
    assert_eq!(
        app.events(&admin, "incident_created", 1000).await.len(),
        events
    );
    let (got, want) = (app.incident_ids(&admin).await, app.tenant.threat_count());
    let unique: std::collections::BTreeSet<&String> = got.iter().collect();
    assert_eq!((got.len(), unique.len()), (want, want));
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_tenant_is_not_read_again_once_its_last_change_has_settled() {
    let overlap = chrono::Duration::seconds(8);
    let app = crate::spawn_app_with(60, |c| c.poll_policy.overlap = overlap).await;
    let (admin, path) = app.admin_with_connector().await;
    app.until_read(&admin, &path, 60, 30).await;

    // A bulk change: 40 threats resolved at once share one updatedAt (SENTINELONE.md §6.3).
    let bulk_at = chrono::Utc::now();
    let ids = app.tenant.all_ids();
    for id in &ids[..40] {
        assert!(app.tenant.update_threat(id, bulk_at));
    }
    app.until(30, || async {
        app.incident_events(&admin, "incident_updated", 1000)
            .await
            .len()
            >= 40
    })
    .await;
    // Within the overlap, a threat indexed late (older than the bulk change) is still found.
    let mut late = app.tenant.threat(&ids[50]).unwrap();
    late["id"] = json!("8888888888888888888");
    late["threatInfo"]["threatId"] = json!("8888888888888888888");
    late["threatInfo"]["updatedAt"] = json!(dossier_domain::time::format_micros(
        bulk_at - chrono::Duration::seconds(1)
    ));
    app.tenant.put_threat(&late).unwrap();
    app.until_ingested(&admin, "8888888888888888888").await;

    // Once the bulk change has been re-read for the overlap's length, polls skip it: one
    // finds nothing, and so do the ones after it.
    app.until_a_poll_reads_nothing().await;
    let (requests, served) = (app.tenant.request_count(), app.tenant.threats_served());
    app.until_polls(&path, 5).await;
    let polls = app.tenant.request_count() - requests;
    assert_eq!(
        app.tenant.threats_served() - served,
        0,
        "{polls} polls of a quiet tenant read threats again"
    );
    // New threats still arrive, and nothing was ingested twice.
    let new = app.tenant.generate_live(chrono::Utc::now());
    app.until_ingested(&admin, &new).await;
    let (got, want) = (app.incident_ids(&admin).await, app.tenant.threat_count());
    let unique: std::collections::BTreeSet<&String> = got.iter().collect();
    assert_eq!((got.len(), unique.len()), (want, want));
    let updated = app.incident_events(&admin, "incident_updated", 1000).await;
    assert_eq!(updated.len(), 40, "each bulk update once: {updated:?}");
    app.running.stop().await;
}

/// An idle connector keeps polling but does not write the database on every poll: a poll
/// that read nothing is written with the next one that reads something, or once
/// `idle_commit_every` has passed, and the poll count still counts every poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_polls_are_counted_but_not_each_written() {
    let app = crate::spawn_app_with(20, |c| {
        c.poll_policy.overlap = chrono::Duration::seconds(1);
        c.poll_interval = Duration::from_millis(200);
        c.idle_commit_every = Duration::from_secs(3);
    })
    .await;
    let (admin, path) = app.admin_with_connector().await;
    app.until_read(&admin, &path, 20, 30).await;
    // Past the overlap, polls read nothing.
    app.until_a_poll_reads_nothing().await;

    let health = || async {
        let (_, c) = app.call("GET", &path, Some(&admin), None).await;
        (
            c["health"]["polls"].as_u64().unwrap(),
            c["last_success_at"].as_str().unwrap().to_owned(),
        )
    };
    let (polls_before, _) = health().await;
    let requests_before = app.tenant.request_count();
    let started = std::time::Instant::now();
    // What was written, read between every two polls, over 20 idle polls.
    let mut written = std::collections::BTreeSet::new();
    let target = app.polls(&path) + 20;
    while app.polls(&path) < target {
        written.insert(health().await.1);
        let seen = app.polls(&path);
        app.until(30, || async { app.polls(&path) > seen }).await;
    }
    written.insert(health().await.1);
    let requests = app.tenant.request_count() - requests_before;
    // The polls last at least 20 intervals; a write every `idle_commit_every` of them at most
    // (and the one already there) is allowed, each poll written is not.
    let allowed = started.elapsed().as_secs() / 3 + 2;
    assert!(
        (written.len() as u64) <= allowed && (written.len() as u64) < requests,
        "{requests} idle polls were written {} times, in {:?}: {written:?}",
        written.len(),
        started.elapsed()
    );
    // Every poll is counted once written: at either end, at most one interval's polls are
    // pending.
    let (polls_after, _) = health().await;
    let pending_at_most = 3_000 / 200 + 1;
    let counted = polls_after - polls_before;
    assert!(
        counted + pending_at_most >= requests && counted <= requests + pending_at_most,
        "{requests} polls, {counted} counted"
    );

    // A poll that reads something is written at once.
    let new = app.tenant.generate_live(chrono::Utc::now());
    app.until_ingested(&admin, &new).await;
    app.running.stop().await;
}

/// A server that stops writes the idle polls it had not written yet: after a restart the
/// connector shows every poll it made, and its last success is its last poll, not the last
/// poll that read something.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_writes_the_idle_polls_not_written_yet() {
    let app = crate::spawn_app_with(20, |c| {
        c.poll_policy.overlap = chrono::Duration::seconds(1);
        c.poll_interval = Duration::from_millis(200);
        // Nothing idle is written while the server runs.
        c.idle_commit_every = Duration::from_secs(600);
    })
    .await;
    let (admin, path) = app.admin_with_connector().await;
    app.until_read(&admin, &path, 20, 30).await;
    // Past the overlap, polls read nothing.
    app.until_a_poll_reads_nothing().await;
    let (_, c) = app.call("GET", &path, Some(&admin), None).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let store = &app.state.store;
    let before = store.get_connector(None, &id).await.unwrap();
    let requests_before = app.tenant.request_count();
    app.until_polls(&path, 5).await;
    let idle = store.get_connector(None, &id).await.unwrap();
    assert_eq!(
        (idle.polls, idle.last_success_at),
        (before.polls, before.last_success_at),
        "idle polls are not written while the server runs"
    );

    app.running.stop().await;
    let idle_requests = app.tenant.request_count() - requests_before;
    assert!(
        idle_requests >= 5,
        "the connector kept polling: {idle_requests} polls"
    );
    // Every request the tenant saw is one poll, counted once; a poll under way when the stop
    // came is not made, nor counted.
    let requests = app.tenant.request_count();
    let after = store.get_connector(None, &id).await.unwrap();
    assert!(
        after.polls + 1 >= requests && after.polls <= requests,
        "{requests} polls in all, {} counted ({} before the stop)",
        after.polls,
        before.polls
    );
    assert!(
        after.last_success_at > before.last_success_at,
        "the last success moves to the last poll: {:?} then {:?}",
        before.last_success_at,
        after.last_success_at
    );
    assert_eq!(after.status, "connected");
    assert_eq!(after.threats, 20, "nothing read twice or lost");
}

/// A walk whose last page is empty (real tenants send one) is written at once, though the page
/// read nothing: the stored checkpoint must not stay mid-walk, or the backfill would show
/// under way, and a restart would take up the finished walk again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_last_page_ends_the_walk_in_the_database_at_once() {
    let app = crate::spawn_app_with(30, |c| {
        c.poll_policy.page_size = 10;
        c.ingest_batch = 1;
        // No poll after the walk comes soon enough to hide a checkpoint left mid-walk.
        c.poll_interval = Duration::from_secs(60);
        c.idle_commit_every = Duration::from_secs(60);
    })
    .await;
    // The check, two pages of the backfill, then an empty last page.
    let pass = dossier_s1sim::Fault::Slow(Duration::ZERO);
    app.tenant.push_faults([
        pass.clone(),
        pass.clone(),
        pass,
        dossier_s1sim::Fault::EmptyLastPage,
    ]);
    let (admin, path) = app.admin_with_connector().await;
    app.until(10, || async {
        let (_, c) = app.call("GET", &path, Some(&admin), None).await;
        c["health"]["threats"].as_u64() >= Some(20) && c["backfill"].is_null()
    })
    .await;
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_walk_resumed_with_a_cursor_the_tenant_no_longer_honours_starts_again() {
    let app = spawn_app(30).await;
    let (admin, path) = app.admin_with_connector().await;
    app.until_read(&admin, &path, 30, 30).await;
    let (_, c) = app.call("GET", &path, Some(&admin), None).await;
    let (account, id) = (
        c["account_id"].as_str().unwrap().to_owned(),
        c["id"].as_str().unwrap().to_owned(),
    );
    app.running.stop().await;

    // As if the server had stopped mid-walk, and the tenant forgot its cursors meanwhile.
    let store = &app.state.store;
    let rec = store.get_connector(None, &id).await.unwrap();
    let mut checkpoint: dossier_source::Checkpoint =
        serde_json::from_str(rec.checkpoint.as_deref().unwrap()).unwrap();
    checkpoint.cursor = Some("bm8tc3VjaC1jdXJzb3I".into());
    store
        .commit_page(dossier_store::IngestPage {
            account_id: account,
            connector_id: id.clone(),
            incidents: Vec::new(),
            checkpoint: serde_json::to_string(&checkpoint).unwrap(),
            now: chrono::Utc::now(),
            policy: app.state.config.correlation,
            polls: 1,
            generation: rec.generation,
            events: Vec::new(),
            status_detail: None,
            shared_with: Vec::new(),
        })
        .await
        .unwrap();
    let now = chrono::Utc::now();
    app.tenant
        .generate_history(5, now - chrono::Duration::minutes(1), now);

    let running = dossier_server::start(app.state.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rec = store.get_connector(None, &id).await.unwrap();
        if rec.threats == 35 && rec.status == "connected" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the walk did not start again: {} threats, {} ({:?})",
            rec.threats,
            rec.status,
            rec.status_detail
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
}

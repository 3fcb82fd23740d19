//! An oversized page never wedges a connector (issue 27), for every source: a page over the
//! size cap is asked for again with half the records, down to one, and every record under the
//! cap is read, once.

use dossier_domain::access::{Licence, Role};
use serde_json::{json, Value};

use crate::{spawn_app_with, App};

const CLIENT: &str = "5b1d2a4c-8e3f-4a6b-9c7d-0e1f2a3b4c5d";
const SECRET: &str = "it~oversized-client-secret-value";
/// The server's cap on a response in these tests.
const CAP: u64 = 4 * 1024 * 1024;
/// What a large record carries: 1.5 MiB, so three of them are a page over the cap.
const MARK: &str = "LARGE-RECORD-PADDING";

fn padding() -> String {
    "x".repeat(3 * 512 * 1024)
}

/// A server with the cap, trusting the emulator that served `ca_pem`, and an admin key.
async fn app(ca_pem: Option<String>) -> (App, String) {
    let app = spawn_app_with(0, move |c| {
        c.max_body_bytes = CAP;
        if let Some(ca) = ca_pem {
            let mut pem = c.tenant_ca_pem.take().unwrap_or_default();
            pem.extend_from_slice(b"\n");
            pem.extend_from_slice(ca.as_bytes());
            c.tenant_ca_pem = Some(pem);
        }
    })
    .await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    (app, admin)
}

/// The records the key's account has ingested, by their `incident_created` events.
async fn created(app: &App, key: &str) -> Vec<String> {
    app.incident_events(key, "incident_created", 1000).await
}

/// Waits until the account holds `want` records, each once, with the connector connected.
async fn every_record_once(app: &App, key: &str, path: &str, want: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let c = app.call("GET", path, Some(key), None).await.1;
        let n = created(app, key).await.len();
        if n >= want && c["status"] == "connected" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{n} of {want} records read: {c}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let ids = created(app, key).await;
    let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(
        (ids.len(), distinct.len()),
        (want, want),
        "every record once"
    );
    let c = app.call("GET", path, Some(key), None).await.1;
    assert!(
        c["health"]["errors"].as_u64() > Some(0),
        "the pages over the cap were counted: {c}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinelone_pages_over_the_cap_are_read_in_smaller_pages() {
    let (app, admin) = app(None).await;
    let now = chrono::Utc::now();
    app.tenant.generate_history(
        30,
        now - chrono::Duration::days(2),
        now - chrono::Duration::hours(1),
    );
    // Five large threats among the others.
    app.tenant.rewrite_served(MARK, &padding());
    let ids = app.tenant.all_ids();
    for id in ids.iter().skip(10).take(5) {
        let mut t = app.tenant.threat(id).unwrap();
        t["threatInfo"]["largeField"] = json!(MARK);
        app.tenant.put_threat(&t).unwrap();
    }
    let path = app.connector_path(&admin).await;
    every_record_once(&app, &admin, &path, app.tenant.threat_count()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defender_pages_over_the_cap_are_read_in_smaller_pages() {
    let mut config = dossier_mdesim::SimConfig::new(5, 20);
    config.apps = vec![dossier_mdesim::AppSpec::new(
        CLIENT,
        SECRET,
        &[dossier_mdesim::READ_ROLE],
    )];
    let tenant = dossier_mdesim::Tenant::new(&config);
    let now = chrono::Utc::now();
    tenant.generate_history(
        40,
        now - chrono::Duration::days(2),
        now - chrono::Duration::hours(1),
    );
    tenant.rewrite_served(MARK, &padding());
    let endpoint = tenant.endpoint_alert_ids();
    for id in endpoint.iter().skip(5).take(5) {
        let mut a: Value = tenant.alert(id).unwrap();
        a["largeField"] = json!(MARK);
        tenant.put_alert(&a).unwrap();
    }
    let sim = dossier_mdesim::start(tenant.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (app, admin) = app(Some(sim.ca_pem.clone())).await;
    let (status, c) = app
        .call(
            "POST",
            "/api/v1/connectors",
            Some(&admin),
            Some(json!({
                "kind": "defender", "name": "MDE", "tenant_id": tenant.tenant_id(),
                "client_id": CLIENT, "client_secret": SECRET,
                "graph_url": sim.base_url, "login_url": sim.base_url,
            })),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    let path = format!("/api/v1/connectors/{}", c["id"].as_str().unwrap());
    every_record_once(&app, &admin, &path, endpoint.len()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crowdstrike_pages_over_the_cap_are_read_in_smaller_pages() {
    let config = dossier_cssim::SimConfig::new(5, 20, CLIENT, SECRET);
    let tenant = dossier_cssim::Tenant::new(&config);
    let now = chrono::Utc::now();
    tenant.generate_history(
        30,
        now - chrono::Duration::days(2),
        now - chrono::Duration::hours(1),
    );
    tenant.rewrite_served(MARK, &padding());
    for id in tenant.ids_by_update().iter().skip(10).take(5) {
        let mut a = tenant.alert(id).unwrap();
        a["largeField"] = json!(MARK);
        tenant.put_alert(a).unwrap();
    }
    let sim = dossier_cssim::start(tenant.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (app, admin) = app(Some(sim.ca_pem.clone())).await;
    let (status, c) = app
        .call(
            "POST",
            "/api/v1/connectors",
            Some(&admin),
            Some(json!({
                "kind": "crowdstrike", "name": "Falcon", "base_url": sim.base_url,
                "client_id": CLIENT, "client_secret": SECRET,
            })),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    let path = format!("/api/v1/connectors/{}", c["id"].as_str().unwrap());
    every_record_once(&app, &admin, &path, tenant.alert_count()).await;
}

/// The stamp of a record's update now, as every producer writes it.
fn stamp_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The record in the middle of `ids` by the update time `stamp` reads: records come after it.
fn middle(ids: &[String], stamp: impl Fn(&str) -> String) -> String {
    let mut by_update: Vec<(String, String)> =
        ids.iter().map(|id| (stamp(id), id.clone())).collect();
    by_update.sort();
    by_update[by_update.len() / 2].1.clone()
}

/// Waits until every record but `huge` is read, once, with `huge` reported as unreadable and
/// the connector connected saying so; then, once `mend` has made the record small (a later
/// version), until it is read too and the connector says nothing more.
async fn read_past_and_mended(
    app: &App,
    key: &str,
    path: &str,
    all: usize,
    huge: &str,
    record_name: &str,
    mend: impl FnOnce(),
) {
    let reason = format!("1 {record_name} could not be read; see events");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let c = app.call("GET", path, Some(key), None).await.1;
        let n = created(app, key).await.len();
        let reported = app.events(key, "incident_unreadable", 10).await;
        if n >= all - 1 && c["status"] == "connected" && c["status_detail"] == reason.as_str() {
            assert_eq!(reported.len(), 1, "{reported:?}");
            assert_eq!(reported[0]["incident_id"], huge, "{reported:?}");
            let message = reported[0]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("larger than the size cap on its own"),
                "{message}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{n} of {} records read: {c} {reported:?}",
            all - 1
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let ids = created(app, key).await;
    assert!(
        !ids.iter().any(|id| id == huge),
        "the huge record is not read"
    );
    let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(
        (ids.len(), distinct.len()),
        (all - 1, all - 1),
        "every other once"
    );

    mend();
    app.until(60, || async {
        let c = app.call("GET", path, Some(key), None).await.1;
        created(app, key).await.iter().any(|id| id == huge)
            && c["status"] == "connected"
            && c["status_detail"].is_null()
    })
    .await;
    let ids = created(app, key).await;
    let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!((ids.len(), distinct.len()), (all, all), "every record once");
    assert_eq!(
        app.events(key, "incident_unreadable", 10).await.len(),
        1,
        "reported once"
    );
}

/// A single threat over the cap is skipped with an event, as an unreadable one is, and every
/// threat after it is read; a later version that fits is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinelone_a_single_threat_over_the_cap_is_reported_and_read_past() {
    let (app, admin) = app(None).await;
    let now = chrono::Utc::now();
    app.tenant.generate_history(
        20,
        now - chrono::Duration::days(2),
        now - chrono::Duration::hours(1),
    );
    let tenant = &app.tenant;
    let huge = middle(&tenant.all_ids(), |id| {
        tenant.threat(id).unwrap()["threatInfo"]["updatedAt"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    let mut t = tenant.threat(&huge).unwrap();
    t["threatInfo"]["largeField"] = json!(MARK);
    tenant.put_threat(&t).unwrap();
    tenant.rewrite_served(MARK, &"x".repeat(5 * 1024 * 1024));
    let path = app.connector_path(&admin).await;
    let all = tenant.threat_count();
    read_past_and_mended(&app, &admin, &path, all, &huge, "threat", || {
        t["threatInfo"]["largeField"] = json!("small");
        t["threatInfo"]["updatedAt"] = json!(stamp_now());
        tenant.put_threat(&t).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defender_a_single_alert_over_the_cap_is_reported_and_read_past() {
    let mut config = dossier_mdesim::SimConfig::new(5, 20);
    config.apps = vec![dossier_mdesim::AppSpec::new(
        CLIENT,
        SECRET,
        &[dossier_mdesim::READ_ROLE],
    )];
    let tenant = dossier_mdesim::Tenant::new(&config);
    let now = chrono::Utc::now();
    tenant.generate_history(
        30,
        now - chrono::Duration::days(2),
        now - chrono::Duration::hours(1),
    );
    let endpoint = tenant.endpoint_alert_ids();
    let huge = middle(&endpoint, |id| {
        tenant.alert(id).unwrap()["lastUpdateDateTime"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    let mut a: Value = tenant.alert(&huge).unwrap();
    a["largeField"] = json!(MARK);
    tenant.put_alert(&a).unwrap();
    tenant.rewrite_served(MARK, &"x".repeat(5 * 1024 * 1024));
    let sim = dossier_mdesim::start(tenant.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (app, admin) = app(Some(sim.ca_pem.clone())).await;
    let (status, c) = app
        .call(
            "POST",
            "/api/v1/connectors",
            Some(&admin),
            Some(json!({
                "kind": "defender", "name": "MDE", "tenant_id": tenant.tenant_id(),
                "client_id": CLIENT, "client_secret": SECRET,
                "graph_url": sim.base_url, "login_url": sim.base_url,
            })),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    let path = format!("/api/v1/connectors/{}", c["id"].as_str().unwrap());
    read_past_and_mended(&app, &admin, &path, endpoint.len(), &huge, "alert", || {
        a["largeField"] = json!("small");
        a["lastUpdateDateTime"] = json!(stamp_now());
        tenant.put_alert(&a).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crowdstrike_a_single_alert_over_the_cap_is_reported_and_read_past() {
    let config = dossier_cssim::SimConfig::new(5, 20, CLIENT, SECRET);
    let tenant = dossier_cssim::Tenant::new(&config);
    let now = chrono::Utc::now();
    tenant.generate_history(
        20,
        now - chrono::Duration::days(2),
        now - chrono::Duration::hours(1),
    );
    // Endpoint alerts only: the source asks for no other product's.
    let ids: Vec<String> = tenant
        .ids_by_update()
        .into_iter()
        .filter(|id| tenant.alert(id).unwrap()["product"] == "epp")
        .collect();
    let huge = ids[ids.len() / 2].clone();
    let mut a = tenant.alert(&huge).unwrap();
    a["largeField"] = json!(MARK);
    tenant.put_alert(a.clone()).unwrap();
    tenant.rewrite_served(MARK, &"x".repeat(5 * 1024 * 1024));
    let sim = dossier_cssim::start(tenant.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (app, admin) = app(Some(sim.ca_pem.clone())).await;
    let (status, c) = app
        .call(
            "POST",
            "/api/v1/connectors",
            Some(&admin),
            Some(json!({
                "kind": "crowdstrike", "name": "Falcon", "base_url": sim.base_url,
                "client_id": CLIENT, "client_secret": SECRET,
            })),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    let path = format!("/api/v1/connectors/{}", c["id"].as_str().unwrap());
    read_past_and_mended(&app, &admin, &path, ids.len(), &huge, "alert", || {
        a["largeField"] = json!("small");
        a["updated_timestamp"] = json!(stamp_now());
        tenant.put_alert(a).unwrap();
    })
    .await;
}

/// A single threat over the cap that cannot be named (its id is null) cannot be read past:
/// the connector says so, in error, having read every threat before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_threat_over_the_cap_without_an_id_is_shown_on_the_connector() {
    let (app, admin) = app(None).await;
    let now = chrono::Utc::now();
    app.tenant.generate_history(
        10,
        now - chrono::Duration::days(2),
        now - chrono::Duration::hours(2),
    );
    let before = app.tenant.threat_count();
    let mut t = app.tenant.threat(&app.tenant.all_ids()[0]).unwrap();
    t["id"] = json!("1900000000000000009");
    t["threatInfo"]["threatId"] = json!("1900000000000000009");
    let later =
        (now - chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    t["threatInfo"]["createdAt"] = json!(later);
    t["threatInfo"]["updatedAt"] = json!(later);
    t["threatInfo"]["largeField"] = json!(MARK);
    app.tenant.put_threat(&t).unwrap();
    app.tenant
        .rewrite_served(MARK, &"x".repeat(5 * 1024 * 1024));
    app.tenant.rewrite_served("\"1900000000000000009\"", "null");
    let path = app.connector_path(&admin).await;
    app.until(60, || async {
        let c = app.call("GET", &path, Some(&admin), None).await.1;
        c["status"] == "error"
            && c["status_detail"]
                .as_str()
                .is_some_and(|d| d.contains("a single threat is larger than that"))
    })
    .await;
    app.until(30, || async { created(&app, &admin).await.len() == before })
        .await;
}

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

/// A single threat over the cap cannot be read in a smaller page: the connector says so (it is
/// not skipped in silence), having read every threat before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_threat_over_the_cap_is_shown_on_the_connector() {
    let (app, admin) = app(None).await;
    let now = chrono::Utc::now();
    app.tenant.generate_history(
        10,
        now - chrono::Duration::days(2),
        now - chrono::Duration::hours(2),
    );
    let before = app.tenant.threat_count();
    let huge = app.tenant.all_ids()[0].clone();
    let mut t = app.tenant.threat(&huge).unwrap();
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

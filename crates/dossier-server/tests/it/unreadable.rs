//! No threat is dropped in silence (issue 27), for every source: a lone surrogate escape in a
//! mapped field is read lossily and the threat ingested; a record that still cannot be read
//! (an id with surrounding whitespace) becomes one event per version, shows in the connector's
//! status, and is read again when it next changes.

use dossier_domain::access::{Licence, Role};
use serde_json::{json, Value};

use crate::{spawn_app, spawn_app_with, App};

const CLIENT: &str = "5b1d2a4c-8e3f-4a6b-9c7d-0e1f2a3b4c5d";
const SECRET: &str = "it~unreadable-client-secret-value";

/// The story the record `id` was added to, as the API shows it (with its incidents).
async fn story_of(app: &App, key: &str, id: &str) -> Option<Value> {
    let created = app.events(key, "incident_created", 1000).await;
    let story = created.iter().find(|e| e["incident_id"] == id)?["story_id"]
        .as_str()?
        .to_owned();
    let (status, s) = app
        .call("GET", &format!("/api/v1/stories/{story}"), Some(key), None)
        .await;
    assert_eq!(status, 200, "{s}");
    Some(s)
}

async fn connector(app: &App, key: &str, path: &str) -> Value {
    app.call("GET", path, Some(key), None).await.1
}

/// The `incident_unreadable` events of the record `id`.
async fn reports(app: &App, key: &str, id: &str) -> Vec<Value> {
    app.events(key, "incident_unreadable", 100)
        .await
        .into_iter()
        .filter(|e| e["incident_id"] == id)
        .collect()
}

/// What every source must do with a record whose id the tenant padded (`padded`, as served):
/// one event per version, the status saying so, no event for a version read again, an event
/// for the next version (`bump` changes the record), and the status clear once it reads
/// (`mend` serves the id as it should be, and changes the record).
async fn a_padded_id_is_reported_once_per_version(
    app: &App,
    key: &str,
    path: &str,
    padded: &str,
    record_name: &str,
    bump: impl Fn(),
    mend: impl Fn(),
) {
    let reason = format!("1 {record_name} could not be read; see events");
    app.until(30, || async {
        reports(app, key, padded).await.len() == 1
            && connector(app, key, path).await["status_detail"] == reason.as_str()
    })
    .await;
    let c = connector(app, key, path).await;
    assert_eq!(c["status"], "connected", "{c}");
    let first = reports(app, key, padded).await;
    assert!(
        first[0]["message"]
            .as_str()
            .unwrap()
            .contains("surrounding whitespace"),
        "{first:?}"
    );

    // Read again by every poll's overlap and sweep: not reported again.
    app.until_polls(path, 5).await;
    assert_eq!(reports(app, key, padded).await.len(), 1);

    // The record changes and is still unreadable: tried, and reported again.
    bump();
    app.until(30, || async { reports(app, key, padded).await.len() == 2 })
        .await;
    let versions: Vec<Value> = reports(app, key, padded)
        .await
        .iter()
        .map(|e| e["data"]["updated"].clone())
        .collect();
    assert_ne!(versions[0], versions[1], "two versions: {versions:?}");

    // The tenant mends the id: the record is read and the status clears.
    mend();
    app.until(30, || async {
        connector(app, key, path).await["status_detail"].is_null()
    })
    .await;
    assert_eq!(reports(app, key, padded).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinelone_threats_with_lone_surrogates_are_ingested_and_bad_ids_reported() {
    let app = spawn_app(20).await;
    let (admin, path) = app.admin_with_connector().await;
    app.until_read(&admin, &path, 20, 30).await;

    // Two new threats, made from a stored one, each served as a hostile tenant would from
    // its first read.
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let template = app.tenant.threat(&app.tenant.all_ids()[0]).unwrap();
    let made = |id: &str| {
        let mut t = template.clone();
        t["id"] = json!(id);
        t["threatInfo"]["threatId"] = json!(id);
        t["threatInfo"]["createdAt"] = json!(now);
        t["threatInfo"]["updatedAt"] = json!(now);
        t
    };
    let (hostile, bad) = (
        "1900000000000000001".to_owned(),
        "1900000000000000002".to_owned(),
    );
    let mut t = made(&hostile);
    t["threatInfo"]["threatName"] = json!("HOSTILE-NAME");
    t["threatInfo"]["filePath"] = json!("C:\\HOSTILE-PATH.exe");
    t["agentRealtimeInfo"]["agentComputerName"] = json!("HOSTILE-HOST");
    // A file of its own, so that its story is this threat's alone and shows it.
    t["threatInfo"]["sha1"] = json!("e1".repeat(20));
    t["threatInfo"]["sha256"] = Value::Null;
    t["threatInfo"]["md5"] = Value::Null;
    app.tenant.rewrite_served("HOSTILE-NAME", r"evil\ud800");
    app.tenant.rewrite_served("HOSTILE-PATH", r"x\udc00");
    app.tenant.rewrite_served("HOSTILE-HOST", r"host\ud800");
    let (plain, padded) = (format!(r#""id":"{bad}""#), format!(r#""id":" {bad}""#));
    app.tenant.rewrite_served(&plain, &padded);
    app.tenant.put_threat(&t).unwrap();
    app.tenant.put_threat(&made(&bad)).unwrap();

    app.until(30, || async {
        story_of(&app, &admin, &hostile).await.is_some()
    })
    .await;
    let s = story_of(&app, &admin, &hostile).await.unwrap();
    assert_eq!(s["indication"], "evil\u{FFFD}", "{s}");
    assert_eq!(s["device"]["name"], "host\u{FFFD}", "{s}");
    assert_eq!(s["file"]["path"], "C:\\x\u{FFFD}.exe", "{s}");
    // The API's raw JSON reads in every parser; the stored text is as the tenant sent it.
    let shown = s["incidents"].as_array().unwrap();
    assert!(shown[0]["raw"].to_string().contains("evil\u{FFFD}"), "{s}");
    let raw: String = app
        .state
        .store
        .get_story(None, s["id"].as_str().unwrap())
        .await
        .unwrap()
        .incidents
        .iter()
        .map(|i| i.raw.get().to_owned())
        .collect();
    assert!(raw.contains(r"evil\ud800"), "{raw}");

    let tenant = app.tenant.clone();
    let id = bad.clone();
    let bump = move || assert!(tenant.update_threat(&id, chrono::Utc::now()));
    let tenant = app.tenant.clone();
    let id = bad.clone();
    let mend = move || {
        tenant.stop_rewriting(&plain);
        assert!(tenant.update_threat(&id, chrono::Utc::now()));
    };
    let shown = format!(" {bad}");
    a_padded_id_is_reported_once_per_version(&app, &admin, &path, &shown, "threat", bump, mend)
        .await;
    app.until_ingested(&admin, &bad).await;
}

/// A server whose tenants include the emulator that served `ca_pem`, and an admin key.
async fn app_trusting(ca_pem: String) -> (App, String) {
    let app = spawn_app_with(0, move |c| {
        let mut pem = c.tenant_ca_pem.take().unwrap_or_default();
        pem.extend_from_slice(b"\n");
        pem.extend_from_slice(ca_pem.as_bytes());
        c.tenant_ca_pem = Some(pem);
    })
    .await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    (app, admin)
}

async fn create(app: &App, key: &str, body: Value) -> String {
    let (status, c) = app
        .call("POST", "/api/v1/connectors", Some(key), Some(body))
        .await;
    assert_eq!(status, 201, "{c}");
    format!("/api/v1/connectors/{}", c["id"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defender_alerts_with_lone_surrogates_are_ingested_and_bad_ids_reported() {
    let mut config = dossier_mdesim::SimConfig::new(5, 20);
    config.apps = vec![dossier_mdesim::AppSpec::new(
        CLIENT,
        SECRET,
        &[dossier_mdesim::READ_ROLE],
    )];
    let tenant = dossier_mdesim::Tenant::new(&config);
    let sim = dossier_mdesim::start(tenant.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (app, admin) = app_trusting(sim.ca_pem.clone()).await;
    // Two endpoint alerts (the only ones polled): one hostile, one with a padded id.
    let endpoint = |tenant: &dossier_mdesim::Tenant| loop {
        let id = tenant.generate_live(chrono::Utc::now());
        if tenant.endpoint_alert_ids().contains(&id) {
            return id;
        }
    };
    let hostile = endpoint(&tenant);
    let mut a = tenant.alert(&hostile).unwrap();
    a["threatDisplayName"] = json!("HOSTILE-TITLE");
    tenant.put_alert(&a).unwrap();
    tenant.rewrite_served("HOSTILE-TITLE", r"evil\ud800");
    let bad = endpoint(&tenant);
    let (plain, padded) = (format!(r#""id":"{bad}""#), format!(r#""id":"{bad} ""#));
    tenant.rewrite_served(&plain, &padded);

    let path = create(
        &app,
        &admin,
        json!({
            "kind": "defender", "name": "MDE", "tenant_id": tenant.tenant_id(),
            "client_id": CLIENT, "client_secret": SECRET,
            "graph_url": sim.base_url, "login_url": sim.base_url,
        }),
    )
    .await;
    app.until(30, || async {
        story_of(&app, &admin, &hostile).await.is_some()
    })
    .await;
    let s = story_of(&app, &admin, &hostile).await.unwrap();
    assert_eq!(s["indication"], "evil\u{FFFD}", "{s}");

    let t = tenant.clone();
    let id = bad.clone();
    let bump = move || assert!(t.update_alert(&id, chrono::Utc::now()));
    let t = tenant.clone();
    let id = bad.clone();
    let mend = move || {
        t.stop_rewriting(&plain);
        assert!(t.update_alert(&id, chrono::Utc::now()));
    };
    let shown = format!("{bad} ");
    a_padded_id_is_reported_once_per_version(&app, &admin, &path, &shown, "alert", bump, mend)
        .await;
    app.until(30, || async {
        story_of(&app, &admin, &bad).await.is_some()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crowdstrike_alerts_with_lone_surrogates_are_ingested_and_bad_ids_reported() {
    let config = dossier_cssim::SimConfig::new(5, 20, CLIENT, SECRET);
    let tenant = dossier_cssim::Tenant::new(&config);
    let sim = dossier_cssim::start(tenant.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (app, admin) = app_trusting(sim.ca_pem.clone()).await;
    let hostile = tenant.generate_live(chrono::Utc::now());
    let mut a = tenant.alert(&hostile).unwrap();
    a["display_name"] = json!("HOSTILE-NAME");
    tenant.put_alert(a).unwrap();
    tenant.rewrite_served("HOSTILE-NAME", r"evil\ud800");
    let bad = tenant.generate_live(chrono::Utc::now());
    let (plain, padded) = (
        format!(r#""composite_id":"{bad}""#),
        format!(r#""composite_id":"\t{bad}""#),
    );
    tenant.rewrite_served(&plain, &padded);

    let path = create(
        &app,
        &admin,
        json!({
            "kind": "crowdstrike", "name": "Falcon", "base_url": sim.base_url,
            "client_id": CLIENT, "client_secret": SECRET,
        }),
    )
    .await;
    app.until(30, || async {
        story_of(&app, &admin, &hostile).await.is_some()
    })
    .await;
    let s = story_of(&app, &admin, &hostile).await.unwrap();
    assert_eq!(s["indication"], "evil\u{FFFD}", "{s}");

    let t = tenant.clone();
    let id = bad.clone();
    let bump = move || assert!(t.update_alert(&id, chrono::Utc::now()));
    let t = tenant.clone();
    let id = bad.clone();
    let mend = move || {
        t.stop_rewriting(&plain);
        assert!(t.update_alert(&id, chrono::Utc::now()));
    };
    let shown = format!("\t{bad}");
    a_padded_id_is_reported_once_per_version(&app, &admin, &path, &shown, "alert", bump, mend)
        .await;
    app.until(30, || async {
        story_of(&app, &admin, &bad).await.is_some()
    })
    .await;
}

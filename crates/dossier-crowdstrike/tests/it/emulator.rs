//! The client and the source against the emulated tenant: backfill over pages, incremental
//! polling, errors, rate limits and write-back.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use dossier_crowdstrike::CrowdStrike;
use dossier_cssim::{start, ClientSpec, Fault, RunningSim, SimConfig, Tenant};
use dossier_domain::story::Verdict;
use dossier_domain::vocabulary::ProducerVerdict;
use dossier_source::{
    Connection, Environment, FailureKind, RetryObserver, Settings, Source, Window,
};
use secrecy::SecretString;
use serde_json::{json, Value};
use url::Url;

const ID: &str = "client-id";
const SECRET: &str = "client-secret";

async fn sim(config: SimConfig) -> RunningSim {
    start(Tenant::new(&config), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn env(sim: &RunningSim) -> Environment {
    Environment {
        extra_roots_pem: Some(sim.ca_pem.clone().into_bytes()),
        request_timeout: Duration::from_secs(20),
        retry_base: Duration::from_millis(5),
        retry_cap: Duration::from_secs(5),
        max_body_bytes: 64 << 20,
        refuse_internal_addresses: false,
    }
}

fn connect_with(
    sim: &RunningSim,
    config: &Value,
    secret: &str,
    on_retry: Option<RetryObserver>,
) -> Arc<dyn Connection> {
    let settings = Settings {
        tenant_url: Url::parse(&sim.base_url).unwrap(),
        config: config.as_object().unwrap().clone(),
        secret: SecretString::from(secret.to_owned()),
    };
    CrowdStrike.connect(settings, &env(sim), on_retry).unwrap()
}

fn connect(sim: &RunningSim) -> Arc<dyn Connection> {
    connect_with(sim, &json!({ "client_id": ID }), SECRET, None)
}

fn window(gte: Option<DateTime<Utc>>, gt: Option<DateTime<Utc>>, limit: u32) -> Window {
    Window {
        updated_gte: gte,
        updated_gt: gt,
        cursor: None,
        limit,
    }
}

/// Follows a walk to its end: every record, and the number of pages.
async fn walk(conn: &dyn Connection, mut w: Window) -> (Vec<Value>, usize) {
    let mut records = Vec::new();
    let mut pages = 0;
    loop {
        let page = conn.fetch(&w).await.unwrap();
        pages += 1;
        records.extend(
            page.records
                .iter()
                .map(|r| serde_json::from_str::<Value>(r.get()).unwrap()),
        );
        match page.next_cursor {
            Some(c) => w.cursor = Some(c),
            None => return (records, pages),
        }
        assert!(pages < 1000, "the walk must end");
    }
}

fn updated(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v["updated_timestamp"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn epp_ids(tenant: &Tenant) -> HashSet<String> {
    tenant
        .ids_by_update()
        .into_iter()
        .filter(|id| tenant.alert(id).unwrap()["product"] == "epp")
        .collect()
}

#[tokio::test]
async fn a_backfill_reads_every_endpoint_alert_over_pages_in_update_order() {
    let sim = sim(SimConfig::new(7, 40, ID, SECRET)).await;
    let now = Utc::now();
    sim.tenant
        .generate_history(2_300, now - chrono::Duration::days(90), now);
    let conn = connect(&sim);
    let (records, pages) = walk(
        &*conn,
        window(Some(now - chrono::Duration::days(91)), None, 500),
    )
    .await;
    assert!(pages >= 5, "{pages} pages");
    let got: HashSet<String> = records
        .iter()
        .map(|r| r["composite_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        got.len(),
        records.len(),
        "no duplicates within one walk without ties"
    );
    assert_eq!(
        got,
        epp_ids(&sim.tenant),
        "every endpoint alert, and no identity alert"
    );
    assert!(
        records.windows(2).all(|w| updated(&w[0]) <= updated(&w[1])),
        "ascending update time"
    );
    for r in &records {
        CrowdStrike
            .map(serde_json::value::RawValue::from_string(r.to_string()).unwrap())
            .unwrap();
    }
    assert_eq!(
        sim.tenant.token_requests(),
        1,
        "one token serves the whole walk"
    );
}

#[tokio::test]
async fn a_walk_deeper_than_ten_thousand_moves_its_bound_without_skipping() {
    let sim = sim(SimConfig::new(8, 5, ID, SECRET)).await;
    let start_at = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let mut all = HashSet::new();
    for i in 0..10_700u32 {
        // Ties: groups of three alerts share one update time.
        let at = start_at + chrono::Duration::milliseconds(i64::from(i / 3));
        let id = format!("cid:ind:aid:{i}");
        let stamp = at.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string();
        sim.tenant
            .put_alert(json!({"composite_id": id, "product": "epp", "created_timestamp": stamp, "updated_timestamp": stamp}))
            .unwrap();
        all.insert(id);
    }
    let conn = connect(&sim);
    let (records, pages) = walk(&*conn, window(None, None, 1000)).await;
    let got: HashSet<String> = records
        .iter()
        .map(|r| r["composite_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, all, "nothing skipped");
    assert!((11..=13).contains(&pages), "{pages} pages");
    assert!(
        records.len() - all.len() <= 3,
        "only the boundary's ties are read again"
    );
}

#[tokio::test]
async fn incremental_polls_read_new_and_changed_alerts_only() {
    let sim = sim(SimConfig::new(9, 10, ID, SECRET)).await;
    let now = Utc::now() - chrono::Duration::minutes(10);
    sim.tenant
        .generate_history(300, now - chrono::Duration::days(1), now);
    let conn = connect(&sim);
    let (records, _) = walk(
        &*conn,
        window(Some(now - chrono::Duration::days(2)), None, 1000),
    )
    .await;
    let high = records.iter().map(updated).max().unwrap();
    let (none, _) = walk(&*conn, window(None, Some(high), 1000)).await;
    assert!(none.is_empty());
    // A new endpoint alert, and a change to an old one.
    let mut fresh = sim.tenant.generate_live(Utc::now());
    while sim.tenant.alert(&fresh).unwrap()["product"] != "epp" {
        fresh = sim.tenant.generate_live(Utc::now());
    }
    let old = records[0]["composite_id"].as_str().unwrap().to_owned();
    assert!(sim.tenant.update_alert(&old, Utc::now()));
    let (next, _) = walk(&*conn, window(None, Some(high), 1000)).await;
    let ids: HashSet<&str> = next
        .iter()
        .map(|r| r["composite_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, HashSet::from([fresh.as_str(), old.as_str()]));
}

#[tokio::test]
async fn a_churned_alert_maps_to_the_incident_it_was() {
    let sim = sim(SimConfig::new(10, 10, ID, SECRET)).await;
    let now = Utc::now() - chrono::Duration::minutes(1);
    let mut id = sim.tenant.generate_live(now);
    while sim.tenant.alert(&id).unwrap()["product"] != "epp" {
        id = sim.tenant.generate_live(now);
    }
    let before =
        dossier_crowdstrike::remap_stored(&sim.tenant.alert(&id).unwrap().to_string()).unwrap();
    assert!(sim.tenant.touch_alert(&id, Utc::now()));
    let mut after =
        dossier_crowdstrike::remap_stored(&sim.tenant.alert(&id).unwrap().to_string()).unwrap();
    assert!(after.updated_at > before.updated_at);
    after.updated_at = before.updated_at;
    assert_eq!(after, before);
}

#[tokio::test]
async fn credential_and_scope_errors_reach_the_worker_as_what_they_are() {
    let sim = sim(SimConfig::new(11, 3, ID, SECRET)).await;
    sim.tenant.generate_live(Utc::now());
    let w = window(None, None, 10);

    let wrong = connect_with(&sim, &json!({ "client_id": ID }), "wrong-secret", None);
    let f = wrong.fetch(&w).await.unwrap_err();
    assert_eq!(f.kind, FailureKind::CredentialsRejected);
    assert!(
        f.reason
            .contains("Failed to issue access token - Client authentication failed"),
        "{}",
        f.reason
    );
    assert!(!f.reason.contains("wrong-secret"));

    let conn = connect(&sim);
    conn.fetch(&w).await.unwrap();
    // A revoked token is renewed once, silently.
    sim.tenant.revoke_tokens();
    conn.fetch(&w).await.unwrap();
    assert_eq!(sim.tenant.token_requests(), 3);
    // Refused twice: the credentials no longer work.
    sim.tenant
        .push_faults([Fault::Unauthorized, Fault::Unauthorized]);
    assert_eq!(
        conn.fetch(&w).await.unwrap_err().kind,
        FailureKind::CredentialsRejected
    );

    let mut no_read = ClientSpec::new(ID, SECRET);
    no_read.alerts_read = false;
    sim.tenant.set_client(no_read);
    let f = conn.fetch(&w).await.unwrap_err();
    assert_eq!(f.kind, FailureKind::PermissionDenied);
    assert!(f.reason.contains("Alerts: Read"), "{}", f.reason);
    assert!(conn.credential_expiry().await.unwrap().is_none());
}

#[tokio::test]
async fn a_token_of_another_cloud_is_refused_with_the_cloud_to_choose() {
    let mut config = SimConfig::new(12, 3, ID, SECRET);
    config.region = "eu-1".into();
    let sim = sim(config).await;
    let conn = connect_with(
        &sim,
        &json!({ "client_id": ID, "cloud": "us-1" }),
        SECRET,
        None,
    );
    let f = conn.fetch(&window(None, None, 10)).await.unwrap_err();
    assert_eq!(f.kind, FailureKind::CredentialsRejected);
    assert_eq!(
        f.reason,
        "this API client belongs to the eu-1 cloud; choose cloud eu-1"
    );
    // No cloud to check against (an explicit base URL): the token is used.
    connect(&sim).fetch(&window(None, None, 10)).await.unwrap();
}

#[tokio::test]
async fn a_429_waits_for_the_rate_limit_header_then_succeeds() {
    let sim = sim(SimConfig::new(13, 3, ID, SECRET)).await;
    let told: Arc<Mutex<Vec<String>>> = Arc::default();
    let observer: RetryObserver = {
        let told = Arc::clone(&told);
        Arc::new(move |r| {
            told.lock()
                .unwrap()
                .push(format!("{} {}/{}", r.reason, r.retry, r.of));
        })
    };
    let conn = connect_with(&sim, &json!({ "client_id": ID }), SECRET, Some(observer));
    sim.tenant.push_faults([Fault::RateLimited {
        retry_after_secs: 1,
    }]);
    let before = sim.tenant.query_requests();
    conn.fetch(&window(None, None, 10)).await.unwrap();
    assert_eq!(sim.tenant.query_requests() - before, 2);
    let told = told.lock().unwrap().clone();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].starts_with("CrowdStrike is rate limiting requests — retrying in"),
        "{told:?}"
    );
    // A wait longer than the client sits out is the worker's to schedule.
    sim.tenant.push_faults([Fault::RateLimited {
        retry_after_secs: 120,
    }]);
    let f = conn.fetch(&window(None, None, 10)).await.unwrap_err();
    match f.kind {
        FailureKind::RateLimited {
            retry_after: Some(d),
        } => assert!(d > Duration::from_secs(100), "{d:?}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn server_errors_are_retried_and_garbage_is_a_bad_response() {
    let sim = sim(SimConfig::new(14, 3, ID, SECRET)).await;
    let conn = connect(&sim);
    sim.tenant
        .push_faults([Fault::ServerError, Fault::ServerError]);
    conn.fetch(&window(None, None, 10)).await.unwrap();
    sim.tenant.push_faults([Fault::Garbage]);
    let f = conn.fetch(&window(None, None, 10)).await.unwrap_err();
    assert_eq!(f.kind, FailureKind::Other);
    assert!(f.reason.contains("not the Falcon API's"), "{}", f.reason);
}

#[tokio::test]
async fn write_back_closes_the_alerts_with_the_verdict_tag() {
    let sim = sim(SimConfig::new(15, 5, ID, SECRET)).await;
    let ids: Vec<String> = (0..3)
        .map(|_| sim.tenant.generate_live(Utc::now()))
        .collect();
    let conn = connect(&sim);
    let said = conn.write_back(&ids, Verdict::Malicious).await.unwrap();
    assert_eq!(said, "tag true_positive and status closed");
    let writes = sim.tenant.writes();
    assert_eq!(
        writes,
        vec![json!({"composite_ids": ids, "action_parameters": [
            {"name": "update_status", "value": "closed"},
            {"name": "add_tag", "value": "true_positive"},
        ]})]
    );
    for id in &ids {
        let alert = sim.tenant.alert(id).unwrap();
        assert_eq!(alert["status"], "closed");
        if alert["product"] == "epp" {
            let i = dossier_crowdstrike::remap_stored(&alert.to_string()).unwrap();
            assert_eq!(i.producer_verdict, ProducerVerdict::TruePositive);
        }
    }
    assert_eq!(
        conn.write_back(&ids, Verdict::Suspicious).await.unwrap(),
        "status closed"
    );
    // Without Alerts: Write, the reason says which scope.
    let mut read_only = ClientSpec::new(ID, SECRET);
    read_only.alerts_write = false;
    sim.tenant.set_client(read_only);
    let f = conn.write_back(&ids, Verdict::Benign).await.unwrap_err();
    assert_eq!(f.kind, FailureKind::PermissionDenied);
    assert!(f.reason.contains("Alerts: Write"), "{}", f.reason);
}

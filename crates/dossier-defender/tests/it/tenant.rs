//! The client against the emulated tenant over HTTPS: backfill, incremental polling, ties,
//! error bodies, throttling, token renewal and write-back.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dossier_defender::Defender;
use dossier_domain::story::Verdict;
use dossier_mdesim::{start, AppSpec, Fault, RunningSim, SimConfig, Tenant, READ_ROLE};
use dossier_source::{
    Checkpoint, Config, Connection, Environment, FailureKind, PollPolicy, Settings, Source,
};
use secrecy::SecretString;
use serde_json::{json, Value};

const READER: &str = "11111111-2222-4333-8444-555555555555";
const NO_ROLES: &str = "99999999-2222-4333-8444-555555555555";

fn config(devices: usize) -> SimConfig {
    let mut config = SimConfig::new(11, devices);
    config
        .apps
        .push(AppSpec::new(READER, "reader-secret", &[READ_ROLE]));
    config
        .apps
        .push(AppSpec::new(NO_ROLES, "no-roles-secret", &[]));
    config
}

async fn sim(config: &SimConfig) -> RunningSim {
    start(Tenant::new(config), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn env(sim: &RunningSim) -> Environment {
    Environment {
        extra_roots_pem: Some(sim.ca_pem.clone().into_bytes()),
        request_timeout: Duration::from_secs(20),
        retry_base: Duration::from_millis(10),
        retry_cap: Duration::from_secs(3),
        max_body_bytes: 64 << 20,
        refuse_internal_addresses: false,
    }
}

fn connect_as(sim: &RunningSim, client_id: &str, secret: &str) -> Arc<dyn Connection> {
    let mut config = Config::new();
    config.insert("tenant_id".into(), json!(sim.tenant.tenant_id()));
    config.insert("client_id".into(), json!(client_id));
    config.insert("login_url".into(), json!(sim.base_url));
    let settings = Settings {
        tenant_url: url::Url::parse(&sim.base_url).unwrap(),
        config,
        secret: SecretString::from(secret.to_owned()),
    };
    Defender.connect(settings, &env(sim), None).unwrap()
}

fn connect(sim: &RunningSim) -> Arc<dyn Connection> {
    connect_as(sim, AppSpec::DEMO_CLIENT_ID, AppSpec::demo_secret())
}

fn policy(page_size: u32) -> PollPolicy {
    PollPolicy {
        page_size,
        ..PollPolicy::default()
    }
}

/// Walks from `checkpoint` until the walk ends, as the worker does; returns the ids read and
/// the pages it took.
async fn walk(
    conn: &dyn Connection,
    checkpoint: &mut Checkpoint,
    policy: &PollPolicy,
) -> (BTreeSet<String>, usize) {
    let mut ids = BTreeSet::new();
    for pages in 1..=50 {
        let page = conn.fetch(&checkpoint.window(policy)).await.unwrap();
        let mut high: Option<DateTime<Utc>> = None;
        for record in page.records {
            let incident = Defender.map(record).unwrap();
            high = high.max(Some(incident.updated_at));
            ids.insert(incident.external_id);
        }
        *checkpoint = checkpoint.after_page(high, page.next_cursor.as_deref(), policy, Utc::now());
        if checkpoint.cursor.is_none() {
            return (ids, pages);
        }
    }
    panic!("the walk did not end in 50 pages");
}

#[tokio::test]
async fn a_backfill_reads_every_endpoint_alert_over_several_pages() {
    let sim = sim(&config(60)).await;
    let now = Utc::now();
    sim.tenant
        .generate_history(2_500, now - chrono::Duration::days(30), now);
    let conn = connect(&sim);
    let policy = policy(1000);
    let mut checkpoint = Checkpoint::initial(now, &policy);
    let (ids, pages) = walk(conn.as_ref(), &mut checkpoint, &policy).await;
    let expected: BTreeSet<String> = sim.tenant.endpoint_alert_ids().into_iter().collect();
    assert!(
        expected.len() < 2_500,
        "other services' alerts are left out"
    );
    assert_eq!(ids, expected);
    assert!(pages >= 3, "{pages} pages");
    assert_eq!(sim.tenant.token_requests(), 1, "the token is kept");
}

#[tokio::test]
async fn polling_goes_on_with_new_alerts_and_updates() {
    let sim = sim(&config(20)).await;
    let now = Utc::now();
    sim.tenant.generate_history(
        300,
        now - chrono::Duration::days(2),
        now - chrono::Duration::hours(1),
    );
    let conn = connect(&sim);
    let policy = policy(100);
    let mut checkpoint = Checkpoint::initial(now, &policy);
    walk(conn.as_ref(), &mut checkpoint, &policy).await;
    let old = sim.tenant.endpoint_alert_ids();
    let later = Utc::now();
    let fresh: Vec<String> = (0..8)
        .map(|_| sim.tenant.generate_live(later))
        .filter(|id| sim.tenant.endpoint_alert_ids().contains(id))
        .collect();
    let open = old
        .iter()
        .find(|id| {
            sim.tenant
                .alert(id)
                .is_some_and(|a| a["status"] != "resolved")
        })
        .unwrap()
        .clone();
    assert!(sim.tenant.update_alert(&open, later));
    let (ids, _) = walk(conn.as_ref(), &mut checkpoint, &policy).await;
    for id in fresh.iter().chain([&open]) {
        assert!(ids.contains(id), "{id} was not read again");
    }
    assert!(
        ids.len() < 40,
        "only the overlap and the news are read: {}",
        ids.len()
    );
}

/// PRODUCERS.md §1.4: a full page whose alerts share one instant cannot move a time bound;
/// the walk follows the next link, neither looping nor skipping.
#[tokio::test]
async fn alerts_sharing_one_instant_are_neither_skipped_nor_read_forever() {
    let sim = sim(&config(5)).await;
    let now = Utc::now();
    let template = {
        let ids = sim
            .tenant
            .generate_history(1, now - chrono::Duration::hours(2), now);
        sim.tenant.alert(&ids[0]).unwrap()
    };
    let instant = "2026-01-01T00:00:00.1234567Z";
    let mut alert = template.clone();
    alert["serviceSource"] = json!("microsoftDefenderForEndpoint");
    alert["createdDateTime"] = json!(instant);
    alert["lastUpdateDateTime"] = json!(instant);
    for i in 0..1_500 {
        alert["id"] = json!(format!("da-tie-{i:05}"));
        sim.tenant.put_alert(&alert).unwrap();
    }
    alert["lastUpdateDateTime"] = json!("2026-01-01T00:00:00.1234568Z");
    alert["id"] = json!("da-after-the-tie");
    sim.tenant.put_alert(&alert).unwrap();
    let conn = connect(&sim);
    let policy = policy(1000);
    let start = dossier_domain::time::parse_lenient("2025-12-31T00:00:00Z").unwrap();
    let mut checkpoint = Checkpoint::initial(start + chrono::Duration::days(90), &policy);
    checkpoint.since = start;
    let (ids, pages) = walk(conn.as_ref(), &mut checkpoint, &policy).await;
    let expected: BTreeSet<String> = sim.tenant.endpoint_alert_ids().into_iter().collect();
    assert_eq!(ids, expected);
    assert!(ids.contains("da-after-the-tie"));
    assert!(pages <= 4, "{pages} pages");
}

#[tokio::test]
async fn credential_errors_say_what_to_do() {
    let mut config = config(5);
    config.apps.push(AppSpec {
        secret_expired: true,
        ..AppSpec::new("22222222-2222-4333-8444-555555555555", "old", &[READ_ROLE])
    });
    let sim = sim(&config).await;
    let window = Checkpoint::initial(Utc::now(), &policy(10)).window(&policy(10));
    let cases = [
        (
            AppSpec::DEMO_CLIENT_ID,
            "the Secret ID",
            FailureKind::CredentialsRejected,
            "paste the secret's Value, not its Secret ID",
        ),
        (
            "22222222-2222-4333-8444-555555555555",
            "old",
            FailureKind::CredentialsRejected,
            "client secret expired (AADSTS7000222)",
        ),
        (
            "33333333-2222-4333-8444-555555555555",
            "x",
            FailureKind::CredentialsRejected,
            "AADSTS700016",
        ),
        (
            NO_ROLES,
            "no-roles-secret",
            FailureKind::ConsentPending,
            "grant the application permission SecurityAlert.Read.All",
        ),
    ];
    for (client, secret, kind, says) in cases {
        let e = connect_as(&sim, client, secret)
            .fetch(&window)
            .await
            .unwrap_err();
        assert_eq!(e.kind, kind, "{client}: {}", e.reason);
        assert!(e.reason.contains(says), "{client}: {}", e.reason);
        assert!(!e.reason.contains(secret), "{client}: the secret is echoed");
    }
}

#[tokio::test]
async fn throttling_waits_for_retry_after_and_a_long_one_is_the_workers() {
    let sim = sim(&config(5)).await;
    let conn = connect(&sim);
    let window = Checkpoint::initial(Utc::now(), &policy(10)).window(&policy(10));
    sim.tenant
        .push_faults(Fault::parse_list("429:1,500").unwrap());
    let started = Instant::now();
    conn.fetch(&window).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    assert_eq!(sim.tenant.list_requests(), 3);
    sim.tenant.push_faults([Fault::RateLimited {
        retry_after_secs: Some(30),
    }]);
    let e = conn.fetch(&window).await.unwrap_err();
    assert_eq!(
        e.kind,
        FailureKind::RateLimited {
            retry_after: Some(Duration::from_secs(30))
        }
    );
}

#[tokio::test]
async fn a_refused_token_is_renewed_once_then_fails() {
    let sim = sim(&config(5)).await;
    let conn = connect(&sim);
    let window = Checkpoint::initial(Utc::now(), &policy(10)).window(&policy(10));
    conn.fetch(&window).await.unwrap();
    sim.tenant.revoke_tokens();
    conn.fetch(&window).await.unwrap();
    assert_eq!(sim.tenant.token_requests(), 2);
    sim.tenant.push_faults(Fault::parse_list("401*2").unwrap());
    let e = conn.fetch(&window).await.unwrap_err();
    assert_eq!(e.kind, FailureKind::CredentialsRejected);
    assert!(
        e.reason.contains("refused a fresh access token"),
        "{}",
        e.reason
    );
    assert_eq!(sim.tenant.token_requests(), 3);
}

#[tokio::test]
async fn write_back_resolves_the_alerts_in_the_tenant() {
    let sim = sim(&config(5)).await;
    let now = Utc::now();
    let ids = sim
        .tenant
        .generate_history(3, now - chrono::Duration::hours(3), now);
    let said = connect(&sim)
        .write_back(&ids[..2], Verdict::Malicious)
        .await
        .unwrap();
    assert_eq!(
        said,
        "classification truePositive, determination other and status resolved"
    );
    let writes = sim.tenant.writes();
    assert_eq!(writes.len(), 2);
    assert_eq!(writes[0].id, ids[0]);
    for id in &ids[..2] {
        let alert: Value = sim.tenant.alert(id).unwrap();
        assert_eq!(alert["status"], "resolved");
        assert_eq!(alert["classification"], "truePositive");
    }
    let e = connect_as(&sim, READER, "reader-secret")
        .write_back(&ids[2..], Verdict::Benign)
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::ConsentPending);
    assert!(
        e.reason.contains("SecurityAlert.ReadWrite.All"),
        "{}",
        e.reason
    );
    assert_eq!(sim.tenant.writes().len(), 2);
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_failure() {
    let sim = sim(&config(5)).await;
    let mut config = Config::new();
    config.insert("tenant_id".into(), json!(sim.tenant.tenant_id()));
    config.insert("client_id".into(), json!(AppSpec::DEMO_CLIENT_ID));
    config.insert("login_url".into(), json!(sim.base_url));
    let settings = Settings {
        tenant_url: url::Url::parse(&sim.base_url).unwrap(),
        config,
        secret: SecretString::from(AppSpec::demo_secret().to_owned()),
    };
    let mut env = env(&sim);
    env.extra_roots_pem = None;
    let conn = Defender.connect(settings, &env, None).unwrap();
    let window = Checkpoint::initial(Utc::now(), &policy(10)).window(&policy(10));
    let e = conn.fetch(&window).await.unwrap_err();
    assert_eq!(e.kind, FailureKind::Other);
    assert!(e.reason.starts_with("TLS failure"), "{}", e.reason);
}

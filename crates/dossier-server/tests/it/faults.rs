//! A tenant misbehaving in every way seen in the wild: the process keeps running, the status
//! tells the truth, and after recovery every threat is present exactly once.

use std::time::Duration;

use dossier_domain::access::{Licence, Role};
use dossier_s1sim::Fault;

use crate::{spawn_app, App};

async fn status(app: &App, key: &str, path: &str) -> serde_json::Value {
    app.call("GET", path, Some(key), None).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_is_survived_and_nothing_is_lost_or_doubled() {
    let app = spawn_app(120).await;
    let (admin, path) = app.admin_with_connector().await;
    app.until(30, || async {
        status(&app, &admin, &path).await["health"]["threats"].as_u64() == Some(120)
    })
    .await;

    let faults = [
        Fault::RateLimited {
            retry_after_secs: Some(1),
        },
        Fault::RateLimited {
            retry_after_secs: None,
        },
        Fault::RateLimited {
            retry_after_secs: None,
        },
        Fault::ServerError,
        Fault::ServerError,
        Fault::Truncated,
        Fault::Garbage,
        Fault::Oversized {
            bytes: 6 * 1024 * 1024,
        },
        Fault::SchemaDrift,
        Fault::Slow(Duration::from_secs(3)),
        Fault::Trickle,
        Fault::ServerError,
    ];
    let total_faults = faults.len();
    let before = app.tenant.request_count();
    app.tenant.push_faults(faults);
    // The tenant keeps working meanwhile: new threats and updates of old ones.
    let ids = app.tenant.all_ids();
    for i in 0..40 {
        app.tenant.generate_live(chrono::Utc::now());
        app.tenant.update_threat(&ids[i * 3], chrono::Utc::now());
    }
    // Every fault is served, and the process still answers.
    app.until(60, || async {
        app.tenant.request_count() > before + total_faults as u64
    })
    .await;
    let (s, _) = app.call("GET", "/healthz", None, None).await;
    assert_eq!(s, 200);

    // After the faults: connected again, with every threat once.
    let want = app.tenant.threat_count();
    app.until(60, || async {
        let c = status(&app, &admin, &path).await;
        c["status"] == "connected" && app.incident_ids(&admin).await.len() == want
    })
    .await;
    let got = app.incident_ids(&admin).await;
    let unique: std::collections::BTreeSet<&String> = got.iter().collect();
    assert_eq!(
        (got.len(), unique.len()),
        (want, want),
        "every threat exactly once"
    );
    let c = status(&app, &admin, &path).await;
    assert!(
        c["health"]["errors"].as_u64().unwrap() > 0,
        "errors were counted: {c}"
    );
    assert!(
        !app.events(&admin, "connector_error", 50).await.is_empty(),
        "errors were recorded as events (track_errors)"
    );
    // Every update made during the faults reached its incident.
    let updated: std::collections::BTreeSet<String> = app
        .incident_events(&admin, "incident_updated", 1000)
        .await
        .into_iter()
        .collect();
    for id in ids.iter().step_by(3).take(40) {
        assert!(updated.contains(id), "the update of {id} was not ingested");
    }
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_turns_the_connector_to_error_and_recovery_heals_it() {
    let app = spawn_app(30).await;
    let (admin, path) = app.admin_with_connector().await;
    app.until_status(&admin, &path, "connected").await;

    app.tenant.set_down(true);
    for _ in 0..10 {
        app.tenant.generate_live(chrono::Utc::now());
    }
    app.until_status(&admin, &path, "error").await;
    let detail = status(&app, &admin, &path).await["status_detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.contains("unreachable") || detail.contains("answer"),
        "{detail}"
    );

    app.tenant.set_down(false);
    app.until_read(&admin, &path, 40, 30).await;
    assert_eq!(app.incident_ids(&admin).await.len(), 40);
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_not_retried_until_the_connector_is_saved_again() {
    let app = spawn_app(5).await;
    let (admin, path) = app.admin_with_connector().await;
    let witness = app.witness(&admin).await;
    app.until_status(&admin, &path, "connected").await;
    for (fault, needle) in [(Fault::Forbidden, "403"), (Fault::Unauthorized, "401")] {
        app.tenant.push_faults([fault]);
        app.until_status(&admin, &path, "error").await;
        let c = status(&app, &admin, &path).await;
        let detail = c["status_detail"].as_str().unwrap();
        assert!(detail.contains(needle), "{detail}");
        assert!(
            detail.contains("paused until the connector is saved"),
            "{detail}"
        );
        // The tenant is asked nothing more (SENTINELONE.md §6.7), though it would now answer:
        // not while the witness makes ten polls, at least nine poll intervals (900 ms), where
        // a retry would come within `retry_cap` (200 ms).
        let asked = app.tenant.request_count();
        app.until_polls(&witness, 10).await;
        assert_eq!(app.tenant.request_count(), asked, "a refusal was retried");
        assert_eq!(status(&app, &admin, &path).await["status"], "error");
        // Saving the connector (here with no change but one setting) tries again.
        let (s, _) = app
            .call(
                "PATCH",
                &path,
                Some(&admin),
                Some(serde_json::json!({"track_errors": true})),
            )
            .await;
        assert_eq!(s, 200);
        app.until_status(&admin, &path, "connected").await;
    }
    // Threats that arrived meanwhile are read once the connector runs again.
    let new = app.tenant.generate_live(chrono::Utc::now());
    app.until_ingested(&admin, &new).await;
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_a_tls_failure() {
    let app = spawn_app(1).await;
    // A tenant whose CA the server was not told to trust.
    let stranger = dossier_s1sim::Tenant::new(&dossier_s1sim::SimConfig::new(3, 2, crate::TOKEN));
    let sim = dossier_s1sim::start(stranger, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    let (s, c) = app
        .call(
            "POST",
            "/api/v1/connectors",
            Some(&admin),
            Some(serde_json::json!({"kind": "sentinelone", "name": "x", "tenant_url": sim.base_url, "api_token": crate::TOKEN})),
        )
        .await;
    assert_eq!(s, 201);
    let path = format!("/api/v1/connectors/{}", c["id"].as_str().unwrap());
    app.until_status(&admin, &path, "error").await;
    let detail = status(&app, &admin, &path).await["status_detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.starts_with("TLS failure"), "{detail}");
    app.running.stop().await;
}

/// A tenant that keeps failing shows on the connector while the client is still retrying,
/// from the first check on: the connector does not stay `pending` (or `connected`) without a
/// reason until every retry is spent. The outage is one `connector_error` event, and the first
/// good answer makes the connector connected again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_tenant_shows_while_the_client_is_still_retrying() {
    let app = crate::spawn_app_with(5, |c| {
        // Room for the tenant's Retry-After, which the client then waits out itself.
        c.retry_cap = Duration::from_secs(5);
        c.retry_shown_after = Duration::ZERO;
    })
    .await;
    // The first check meets three rate limits of 2 s each: over 6 s within one call.
    app.tenant.push_faults(vec![
        Fault::RateLimited {
            retry_after_secs: Some(2)
        };
        3
    ]);
    let (admin, path) = app.admin_with_connector().await;
    app.until(5, || async {
        let c = status(&app, &admin, &path).await;
        c["status"] == "error"
            && c["status_detail"].as_str().is_some_and(|d| {
                d.contains("rate limiting") && d.contains("; retry 1 of 5 under way")
            })
    })
    .await;
    assert!(
        app.tenant.request_count() <= 2,
        "shown while the first check was still being retried"
    );
    app.until(15, || async {
        let c = status(&app, &admin, &path).await;
        c["status"] == "connected"
            && c["status_detail"].is_null()
            && c["health"]["threats"].as_u64() == Some(5)
    })
    .await;
    let c = status(&app, &admin, &path).await;
    assert_eq!(c["health"]["errors"], 0, "retried, not failed: {c}");
    let errors = app.events(&admin, "connector_error", 50).await;
    assert_eq!(errors.len(), 1, "one event for the outage: {errors:?}");
    app.running.stop().await;
}

/// A worker whose connector was saved again behind its back (the manager not told, and not
/// looking again for ten minutes) stops at its next write: what the save recorded stands, and
/// the tenant hears no more from the old worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_connector_changed_under_it_stops_by_itself() {
    let app = crate::spawn_app_with(20, |c| {
        c.manager_every = Duration::from_secs(600);
        c.retry_base = Duration::from_millis(50);
        c.retry_cap = Duration::from_millis(100);
    })
    .await;
    app.tenant.push_faults(vec![Fault::Garbage; 100_000]);
    let (admin, path) = app.admin_with_connector().await;
    // Made now: a connector made later would have the manager replace the changed worker.
    let witness = app.witness(&admin).await;
    app.until_status(&admin, &path, "error").await;
    let id = status(&app, &admin, &path).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let store = &app.state.store;
    store
        .update_connector(
            None,
            &id,
            &dossier_store::ConnectorUpdate {
                name: Some("renamed".into()),
                status: Some(("pending".into(), None)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // The old worker, retrying within `retry_cap` (100 ms), meets the change while the
    // witness makes five polls (at least 400 ms); from then on it asks nothing, not while the
    // witness makes ten more.
    app.until_polls(&witness, 5).await;
    let requests = app.tenant.request_count();
    app.until_polls(&witness, 10).await;
    assert_eq!(
        app.tenant.request_count(),
        requests,
        "the old worker went on asking the tenant"
    );
    let c = store.get_connector(None, &id).await.unwrap();
    assert_eq!((c.status.as_str(), c.status_detail), ("pending", None));
    app.running.stop().await;
}

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{get_threats, spawn, ts, url, TOKEN};

async fn post(
    client: &reqwest::Client,
    sim: &dossier_s1sim::RunningSim,
    path: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let response = client
        .post(url(sim, path))
        .header("Authorization", format!("ApiToken {TOKEN}"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn analyst_verdict_and_incident_status_are_applied_and_recorded() {
    let (sim, client) = spawn(10).await;
    let ids = sim.tenant.all_ids();
    let before = Utc::now();
    let body = json!({"filter": {"ids": [ids[0], ids[1], "999"]}, "data": {"analystVerdict": "true_positive"}});
    let (status, reply) = post(&client, &sim, "/threats/analyst-verdict", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply, json!({"data": {"affected": 2}}));
    let t = sim.tenant.threat(&ids[0]).unwrap();
    assert_eq!(t["threatInfo"]["analystVerdict"], "true_positive");
    assert_eq!(
        t["threatInfo"]["analystVerdictDescription"],
        "True positive"
    );
    assert!(
        ts(t["threatInfo"]["updatedAt"].as_str().unwrap())
            >= before - chrono::Duration::milliseconds(1)
    );

    let body2 = json!({"filter": {"ids": [ids[2]]}, "data": {"incidentStatus": "resolved"}});
    let (status, reply) = post(&client, &sim, "/threats/incident", &body2).await;
    assert_eq!(
        (status, reply),
        (StatusCode::OK, json!({"data": {"affected": 1}}))
    );
    assert_eq!(
        sim.tenant.threat(&ids[2]).unwrap()["threatInfo"]["incidentStatusDescription"],
        "Resolved"
    );
    assert_eq!(sim.tenant.writes(), [body, body2.clone()]);

    // An updatedAt poller sees the changed threats again.
    let since = before.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let (_, page) = get_threats(
        &client,
        &sim,
        &[("updatedAt__gte", &since), ("sortBy", "updatedAt")],
    )
    .await;
    assert_eq!(page["pagination"]["totalItems"], 3);

    let (status, reply) = post(
        &client,
        &sim,
        "/threats/incident",
        &json!({"filter": {"ids": [ids[2]]}, "data": {"incidentStatus": "done"}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reply["errors"][0]["code"], 4_000_010);
    let (status, _) = post(
        &client,
        &sim,
        "/threats/incident",
        &json!({"data": {"incidentStatus": "resolved"}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        sim.tenant.writes().len(),
        2,
        "rejected writes are not recorded"
    );
    let response = client
        .post(url(&sim, "/threats/incident"))
        .json(&body2)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn mitigation_actions_are_recorded() {
    let (sim, client) = spawn(3).await;
    let id = sim.tenant.all_ids()[0].clone();
    let (status, reply) = post(
        &client,
        &sim,
        "/threats/mitigate/quarantine",
        &json!({"filter": {"ids": [id]}}),
    )
    .await;
    assert_eq!(
        (status, reply),
        (StatusCode::OK, json!({"data": {"affected": 1}}))
    );
    let t = sim.tenant.threat(&id).unwrap();
    assert_eq!(t["mitigationStatus"][0]["action"], "quarantine");
    assert_eq!(t["threatInfo"]["mitigationStatus"], "mitigated");
    let (status, _) = post(
        &client,
        &sim,
        "/threats/mitigate/explode",
        &json!({"filter": {"ids": [id]}}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn update_threat_changes_state_and_bumps_updated_at() {
    let (sim, _) = spawn(20).await;
    let now = ts("2026-06-01T10:00:00Z");
    for id in sim.tenant.all_ids() {
        let before = sim.tenant.threat(&id).unwrap();
        assert!(sim.tenant.update_threat(&id, now));
        let after = sim.tenant.threat(&id).unwrap();
        assert_eq!(
            after["threatInfo"]["updatedAt"],
            "2026-06-01T10:00:00.000000Z"
        );
        assert_eq!(
            after["threatInfo"]["createdAt"],
            before["threatInfo"]["createdAt"]
        );
        let status = |t: &Value| {
            let i = &t["threatInfo"];
            (
                i["analystVerdict"].clone(),
                i["incidentStatus"].clone(),
                i["mitigationStatus"].clone(),
            )
        };
        assert_ne!(status(&before), status(&after), "{id}");
    }
    assert!(!sim.tenant.update_threat("12345", now));
}

#[tokio::test]
async fn disconnect_and_connect_show_on_the_agents_threats() {
    let (sim, client) = spawn(10).await;
    let id = sim.tenant.all_ids()[0].clone();
    let agent = sim.tenant.threat(&id).unwrap()["agentRealtimeInfo"]["agentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let of_agent: Vec<String> = sim
        .tenant
        .all_ids()
        .into_iter()
        .filter(|t| sim.tenant.threat(t).unwrap()["agentRealtimeInfo"]["agentId"] == agent.as_str())
        .collect();
    let body = json!({"filter": {"ids": [agent]}});
    let (status, reply) = post(&client, &sim, "/agents/actions/disconnect", &body).await;
    assert_eq!(
        (status, reply),
        (StatusCode::OK, json!({"data": {"affected": 1}}))
    );
    for t in &of_agent {
        assert_eq!(
            sim.tenant.threat(t).unwrap()["agentRealtimeInfo"]["agentNetworkStatus"],
            "disconnected"
        );
    }
    let (status, _) = post(&client, &sim, "/agents/actions/connect", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sim.tenant.threat(&id).unwrap()["agentRealtimeInfo"]["agentNetworkStatus"],
        "connected"
    );
    // By UUID too; no agent named is a validation error.
    let uuid = sim.tenant.threat(&id).unwrap()["agentRealtimeInfo"]["agentUuid"].clone();
    let (_, reply) = post(
        &client,
        &sim,
        "/agents/actions/disconnect",
        &json!({"filter": {"uuids": [uuid]}}),
    )
    .await;
    assert_eq!(reply, json!({"data": {"affected": 1}}));
    let (status, _) = post(
        &client,
        &sim,
        "/agents/actions/disconnect",
        &json!({"filter": {}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_blocklist_takes_each_hash_once_per_scope() {
    let (sim, client) = spawn(3).await;
    let id = sim.tenant.all_ids()[0].clone();
    let body = json!({"filter": {"ids": [id]}, "data": {"targetScope": "site"}});
    for _ in 0..2 {
        let (status, reply) = post(&client, &sim, "/threats/add-to-blacklist", &body).await;
        assert_eq!(
            (status, reply),
            (StatusCode::OK, json!({"data": {"affected": 1}}))
        );
    }
    let list = sim.tenant.blocklist();
    assert_eq!(list.len(), 1, "{list:?}");
    let sha1 = sim.tenant.threat(&id).unwrap()["threatInfo"]["sha1"]
        .as_str()
        .unwrap()
        .to_ascii_lowercase();
    assert_eq!(list[0]["value"], sha1);
    assert_eq!(list[0]["type"], "black_hash");
    assert!(list[0]["scope"]["siteIds"].is_array());
    let account = json!({"filter": {"ids": [id]}, "data": {"targetScope": "account"}});
    post(&client, &sim, "/threats/add-to-blacklist", &account).await;
    assert_eq!(sim.tenant.blocklist().len(), 2);
    let (status, _) = post(
        &client,
        &sim,
        "/threats/add-to-blacklist",
        &json!({"filter": {"ids": [id]}, "data": {"targetScope": "galaxy"}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn writes_take_their_own_faults_and_polls_do_not() {
    let (sim, client) = spawn(3).await;
    let id = sim.tenant.all_ids()[0].clone();
    let before = sim.tenant.threat(&id).unwrap();
    sim.tenant.push_write_faults([
        dossier_s1sim::Fault::Forbidden,
        dossier_s1sim::Fault::ServerError,
    ]);
    let (_, page) = get_threats(&client, &sim, &[]).await;
    assert!(page["data"].is_array(), "a poll takes no write fault");
    let body = json!({"filter": {"ids": [id]}});
    let (status, _) = post(&client, &sim, "/threats/mitigate/kill", &body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post(&client, &sim, "/threats/mitigate/kill", &body).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        sim.tenant.threat(&id).unwrap(),
        before,
        "a refused write changes nothing"
    );
    let (status, _) = post(&client, &sim, "/threats/mitigate/kill", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sim.tenant.threat(&id).unwrap()["mitigationStatus"][0]["action"],
        "kill"
    );
}

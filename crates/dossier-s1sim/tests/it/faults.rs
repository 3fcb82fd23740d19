use std::io::Read;
use std::time::{Duration, Instant};

use dossier_s1sim::{Fault, SimConfig};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{get_threats, sample, spawn, spawn_with, url, TOKEN};

async fn raw_threats(
    client: &reqwest::Client,
    sim: &dossier_s1sim::RunningSim,
    query: &[(&str, &str)],
) -> reqwest::Response {
    client
        .get(url(sim, "/threats"))
        .header("Authorization", format!("ApiToken {TOKEN}"))
        .query(query)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn rate_limited_and_server_errors() {
    let (sim, client) = spawn(30).await;
    sim.tenant.push_faults([
        Fault::RateLimited {
            retry_after_secs: Some(7),
        },
        Fault::RateLimited {
            retry_after_secs: None,
        },
        Fault::ServerError,
    ]);
    let response = raw_threats(&client, &sim, &[]).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "7");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], 4_290_010);

    let response = raw_threats(&client, &sim, &[]).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("retry-after").is_none());

    let response = raw_threats(&client, &sim, &[]).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        sample("issue_error_500_internal_server_error.json")
    );

    // The queue is empty again; every request was counted.
    let (status, _) = get_threats(&client, &sim, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sim.tenant.request_count(), 4);
}

#[tokio::test]
async fn unauthorized_and_forbidden_whatever_the_token() {
    let (sim, client) = spawn(3).await;
    sim.tenant
        .push_faults([Fault::Unauthorized, Fault::Forbidden]);
    let (status, body) = get_threats(&client, &sim, &[]).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            sample("issue_error_401_authentication_failed.json")
        )
    );
    let (status, body) = get_threats(&client, &sim, &[]).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::FORBIDDEN,
            sample("issue_error_403_insufficient_permissions.json")
        )
    );
}

#[tokio::test]
async fn slow_and_trickle_still_deliver_the_page() {
    let (sim, client) = spawn(40).await;
    let (_, normal) = get_threats(&client, &sim, &[("limit", "40")]).await;
    sim.tenant
        .push_faults([Fault::Slow(Duration::from_millis(400)), Fault::Trickle]);
    let started = Instant::now();
    let (status, slow) = get_threats(&client, &sim, &[("limit", "40")]).await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!((status, &slow), (StatusCode::OK, &normal));

    let started = Instant::now();
    let mut response = raw_threats(&client, &sim, &[("limit", "40")]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut chunks = 0;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        chunks += 1;
        body.extend_from_slice(&chunk);
    }
    assert!(chunks >= 10, "{chunks} chunks");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), normal);
}

#[tokio::test]
async fn truncated_garbage_and_oversized_bodies() {
    let (sim, client) = spawn(20).await;
    let normal = raw_threats(&client, &sim, &[("limit", "20")])
        .await
        .text()
        .await
        .unwrap();
    sim.tenant.push_faults([
        Fault::Truncated,
        Fault::Garbage,
        Fault::Oversized { bytes: 3_000_000 },
    ]);

    let response = raw_threats(&client, &sim, &[("limit", "20")]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let truncated = response.text().await.unwrap();
    assert!(truncated.len() < normal.len() && normal.starts_with(&truncated));
    assert!(serde_json::from_str::<Value>(&truncated).is_err());

    let response = raw_threats(&client, &sim, &[("limit", "20")]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let garbage = response.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&garbage).is_err());

    let response = raw_threats(&client, &sim, &[("limit", "20")]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.content_length().is_none(),
        "streamed without a length"
    );
    let big = response.bytes().await.unwrap();
    assert!(big.len() >= 3_000_000, "{}", big.len());
    let value: Value = serde_json::from_slice(&big).unwrap();
    assert_eq!(value["data"].as_array().unwrap().len(), 20);
}

#[tokio::test]
async fn schema_drift_keeps_a_valid_envelope() {
    let (sim, client) = spawn(12).await;
    let (_, normal) = get_threats(&client, &sim, &[("limit", "12")]).await;
    sim.tenant.push_faults([Fault::SchemaDrift]);
    let (status, drifted) = get_threats(&client, &sim, &[("limit", "12")]).await;
    assert_eq!(status, StatusCode::OK);
    let data = drifted["data"].as_array().unwrap();
    assert_eq!(data.len(), 12);
    assert_eq!(drifted["pagination"], normal["pagination"]);
    for (d, n) in data.iter().zip(normal["data"].as_array().unwrap()) {
        assert_eq!(d["id"], n["id"]);
        assert_eq!(d["threatInfo"]["updatedAt"], n["threatInfo"]["updatedAt"]);
        assert_ne!(d, n);
    }
    assert!(data.iter().any(|t| t.get("whiteningOptions").is_none()));
    assert!(data.iter().any(|t| t["threatInfo"]["fileSize"].is_string()));
    assert!(data.iter().any(|t| t["agentDetectionInfo"].is_null()));
    // Stored threats are untouched.
    assert_eq!(
        sim.tenant
            .threat(normal["data"][0]["id"].as_str().unwrap())
            .unwrap(),
        normal["data"][0]
    );
}

#[tokio::test]
async fn down_tenant_drops_connections_until_restored() {
    let (sim, client) = spawn(5).await;
    let (status, _) = get_threats(&client, &sim, &[]).await;
    assert_eq!(status, StatusCode::OK);
    sim.tenant.set_down(true);
    for path in ["/threats", "/system/status"] {
        let result = client
            .get(url(&sim, path))
            .header("Authorization", format!("ApiToken {TOKEN}"))
            .send()
            .await;
        assert!(result.is_err(), "{path} answered while down");
    }
    sim.tenant.set_down(false);
    let (status, _) = get_threats(&client, &sim, &[]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn gzip_when_configured_and_accepted() {
    let mut config = SimConfig::new(2, 10, TOKEN);
    config.gzip = true;
    let (sim, _) = spawn_with(30, config).await;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(sim.ca_pem.as_bytes()).unwrap())
        .no_gzip()
        .build()
        .unwrap();
    let request = |gzip: bool| {
        let mut r = client
            .get(url(&sim, "/threats"))
            .header("Authorization", format!("ApiToken {TOKEN}"));
        if gzip {
            r = r.header("Accept-Encoding", "gzip, deflate");
        }
        r.send()
    };
    let plain = request(false).await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain: Value = plain.json().await.unwrap();
    let zipped = request(true).await.unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let bytes = zipped.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), plain);
}

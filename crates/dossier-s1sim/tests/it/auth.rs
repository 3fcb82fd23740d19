use chrono::{Duration, Utc};
use dossier_s1sim::{SimConfig, Tenant, TokenSpec};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{get_threats, sample, spawn, spawn_tenant, ts, url, TOKEN};

async fn threats_with_auth(
    client: &reqwest::Client,
    sim: &dossier_s1sim::RunningSim,
    auth: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = client.get(url(sim, "/threats"));
    if let Some(auth) = auth {
        request = request.header("Authorization", auth);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn bad_tokens_get_the_real_401_envelope() {
    let (sim, client) = spawn(5).await;
    let expected = sample("issue_error_401_authentication_failed.json");
    let bearer = format!("Bearer {TOKEN}");
    for auth in [
        None,
        Some("ApiToken nope"),
        Some(bearer.as_str()),
        Some("ApiToken"),
    ] {
        let (status, body) = threats_with_auth(&client, &sim, auth).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(body, expected, "{auth:?}");
    }
    // Expired, then revoked-by-expiry tokens.
    let mut expired = TokenSpec::new("old-token");
    expired.expires_at = Some(Utc::now() - Duration::seconds(1));
    sim.tenant.set_token(expired);
    let (status, _) = threats_with_auth(&client, &sim, Some("ApiToken old-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let mut revoked = TokenSpec::new(TOKEN);
    revoked.expires_at = Some(Utc::now() - Duration::days(1));
    sim.tenant.set_token(revoked);
    let (status, body) = threats_with_auth(&client, &sim, Some(&format!("ApiToken {TOKEN}"))).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, expected));
}

#[tokio::test]
async fn scheme_is_case_insensitive() {
    let (sim, client) = spawn(5).await;
    for scheme in ["ApiToken", "APIToken", "apitoken", "APITOKEN"] {
        let (status, body) =
            threats_with_auth(&client, &sim, Some(&format!("{scheme} {TOKEN}"))).await;
        assert_eq!(status, StatusCode::OK, "{scheme}");
        assert_eq!(body["pagination"]["totalItems"], 5);
    }
}

#[tokio::test]
async fn token_without_threat_permission_gets_the_real_403_envelope() {
    let (sim, client) = spawn(5).await;
    let mut viewer = TokenSpec::new("no-threats");
    viewer.can_view_threats = false;
    sim.tenant.set_token(viewer);
    let (status, body) = threats_with_auth(&client, &sim, Some("ApiToken no-threats")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        sample("issue_error_403_insufficient_permissions.json")
    );
}

#[tokio::test]
async fn site_scoped_tokens_see_only_their_sites() {
    // Tenants have 1–3 sites: take the first seed that gives several.
    let sites_of = |tenant: &Tenant| {
        let mut sites: Vec<String> = tenant
            .all_ids()
            .iter()
            .map(|id| {
                tenant.threat(id).unwrap()["agentRealtimeInfo"]["siteId"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        sites.sort();
        sites.dedup();
        sites
    };
    let (tenant, sites) = (1..50)
        .map(|seed| {
            let tenant = Tenant::new(&SimConfig::new(seed, 120, TOKEN));
            tenant.generate_history(400, ts("2025-01-01T00:00:00Z"), ts("2025-04-01T00:00:00Z"));
            let sites = sites_of(&tenant);
            (tenant, sites)
        })
        .find(|(_, sites)| sites.len() >= 2)
        .unwrap();
    let (sim, client) = spawn_tenant(tenant).await;
    let mut scoped = TokenSpec::new("scoped");
    scoped.site_ids = Some(vec![sites[0].clone()]);
    sim.tenant.set_token(scoped);
    let response = client
        .get(url(&sim, "/threats"))
        .header("Authorization", "ApiToken scoped")
        .query(&[("limit", "1000")])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let data = body["data"].as_array().unwrap();
    assert!(!data.is_empty());
    assert!(data
        .iter()
        .all(|t| t["agentRealtimeInfo"]["siteId"] == sites[0].as_str()));
    assert_eq!(body["pagination"]["totalItems"], data.len());
    // Asking for a site outside the scope is refused.
    let response = client
        .get(url(&sim, "/threats"))
        .header("Authorization", "ApiToken scoped")
        .query(&[("siteIds", sites[1].as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // The full-scope token sees more.
    let (_, all) = get_threats(&client, &sim, &[("limit", "1")]).await;
    assert!(all["pagination"]["totalItems"].as_u64().unwrap() > data.len() as u64);
}

#[tokio::test]
async fn rate_limit_allows_the_burst_then_answers_429() {
    let mut config = SimConfig::new(1, 5, TOKEN);
    config.rate_limit = Some(2);
    let tenant = Tenant::new(&config);
    tenant.generate_history(3, ts("2025-01-01T00:00:00Z"), ts("2025-01-02T00:00:00Z"));
    let (sim, client) = spawn_tenant(tenant).await;
    for i in 0..10 {
        let (status, _) = get_threats(&client, &sim, &[]).await;
        assert_eq!(status, StatusCode::OK, "request {i} is within the burst");
    }
    let response = client
        .get(url(&sim, "/threats"))
        .header("Authorization", format!("ApiToken {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], 4_290_010);
    // Other endpoints are not throttled.
    let status = client
        .get(url(&sim, "/system/status"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn token_details_report_expiry() {
    let (sim, client) = spawn(0).await;
    let expires = ts("2030-05-01T12:00:00Z");
    let mut spec = TokenSpec::new("svc-user");
    spec.expires_at = Some(expires);
    sim.tenant.set_token(spec);
    let details = |body: Value, auth: Option<&'static str>| {
        let mut request = client
            .post(url(&sim, "/users/api-token-details"))
            .json(&body);
        request = request.header(
            "Authorization",
            auth.map_or(format!("ApiToken {TOKEN}"), str::to_owned),
        );
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = details(json!({"data": {"apiToken": "svc-user"}}), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["expiresAt"], "2030-05-01T12:00:00.000000Z");
    assert!(ts(body["data"]["createdAt"].as_str().unwrap()) <= Utc::now());
    // The Go SDK's field name works too.
    let (status, body) = details(
        json!({"data": {"token": "svc-user"}}),
        Some("ApiToken svc-user"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["expiresAt"], "2030-05-01T12:00:00.000000Z");
    let (status, body) = details(json!({"data": {"apiToken": "unknown"}}), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["errors"][0]["code"], 4_010_010);
    let (status, _) = details(
        json!({"data": {"apiToken": "svc-user"}}),
        Some("ApiToken wrong"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = details(json!({"data": {}}), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["code"], 4_000_010);
}

#[tokio::test]
async fn system_info_needs_a_token() {
    let (sim, client) = spawn(0).await;
    let response = client.get(url(&sim, "/system/info")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = client
        .get(url(&sim, "/system/info"))
        .header("Authorization", format!("ApiToken {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    for key in ["release", "version", "build", "patch", "latestAgentVersion"] {
        assert!(body["data"][key].is_string(), "{key}");
    }
}

//! The emulator's endpoints as a plain HTTP client sees them.

use chrono::Utc;
use dossier_mdesim::{start, AppSpec, RunningSim, SimConfig, Tenant, READ_ROLE};
use reqwest::StatusCode;
use serde_json::Value;

const DOCS_SAMPLE: &str =
    include_str!("../../../dossier-defender/tests/samples/graph_alerts_v2_list_docs.json");

async fn sim(config: &SimConfig) -> (RunningSim, reqwest::Client) {
    let sim = start(Tenant::new(config), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(sim.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    (sim, http)
}

async fn token_as(
    sim: &RunningSim,
    http: &reqwest::Client,
    client: &str,
    secret: &str,
) -> (StatusCode, Value) {
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        sim.base_url,
        sim.tenant.tenant_id()
    );
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client),
        ("client_secret", secret),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let r = http.post(url).form(&form).send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn token(sim: &RunningSim, http: &reqwest::Client) -> String {
    let (status, body) = token_as(sim, http, AppSpec::DEMO_CLIENT_ID, AppSpec::demo_secret()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn list(
    sim: &RunningSim,
    http: &reqwest::Client,
    token: &str,
    query: &str,
) -> (StatusCode, Value) {
    let r = http
        .get(format!("{}/v1.0/security/alerts_v2{query}", sim.base_url))
        .bearer_auth(token)
        .header("Prefer", "include-unknown-enum-members")
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test]
async fn the_token_endpoint_answers_as_entra_does() {
    let mut config = SimConfig::new(1, 3);
    config.apps.push(AppSpec {
        secret_expired: true,
        ..AppSpec::new("22222222-0000-0000-0000-000000000000", "old", &[READ_ROLE])
    });
    let (sim, http) = sim(&config).await;
    let (status, body) =
        token_as(&sim, &http, AppSpec::DEMO_CLIENT_ID, AppSpec::demo_secret()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    for (client, secret, status, code) in [
        (
            AppSpec::DEMO_CLIENT_ID,
            "wrong",
            StatusCode::UNAUTHORIZED,
            7_000_215,
        ),
        (
            "22222222-0000-0000-0000-000000000000",
            "old",
            StatusCode::UNAUTHORIZED,
            7_000_222,
        ),
        (
            "33333333-0000-0000-0000-000000000000",
            "x",
            StatusCode::BAD_REQUEST,
            700_016,
        ),
    ] {
        let (got, body) = token_as(&sim, &http, client, secret).await;
        assert_eq!(got, status, "{body}");
        assert_eq!(body["error_codes"][0], code, "{body}");
        assert!(body["error_description"]
            .as_str()
            .unwrap()
            .starts_with(&format!("AADSTS{code}: ")));
    }
    let r = http
        .post(format!("{}/not-the-tenant/oauth2/v2.0/token", sim.base_url))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error_codes"][0], 90_002);
    assert_eq!(sim.tenant.token_requests(), 5);
}

#[tokio::test]
async fn alerts_have_the_shape_of_the_docs_sample() {
    let (sim, http) = sim(&SimConfig::new(2, 10)).await;
    let now = Utc::now();
    sim.tenant
        .generate_history(200, now - chrono::Duration::days(1), now);
    let token = token(&sim, &http).await;
    let (status, page) = list(&sim, &http, &token, "?$top=200").await;
    assert_eq!(status, StatusCode::OK);
    let docs: Value = serde_json::from_str(DOCS_SAMPLE).unwrap();
    let sample = &docs["value"][0];
    let alerts = page["value"].as_array().unwrap();
    assert_eq!(alerts.len(), 200);
    let endpoint: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["serviceSource"] == "microsoftDefenderForEndpoint")
        .collect();
    for alert in &endpoint {
        for key in keys(sample) {
            assert!(alert.get(&key).is_some(), "{key} missing from {alert}");
        }
        let evidence = alert["evidence"].as_array().unwrap();
        for kind in ["deviceEvidence", "processEvidence"] {
            let Some(sample_e) = sample["evidence"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["@odata.type"].as_str().unwrap().ends_with(kind))
            else {
                continue;
            };
            if let Some(ours) = evidence
                .iter()
                .find(|e| e["@odata.type"].as_str().unwrap().ends_with(kind))
            {
                for key in keys(sample_e) {
                    assert!(ours.get(&key).is_some(), "{kind}.{key} missing");
                }
            }
        }
        let created = alert["createdDateTime"].as_str().unwrap();
        assert_eq!(
            created.len(),
            "2021-04-27T12:19:27.7211305Z".len(),
            "{created}"
        );
        let url = alert["alertWebUrl"].as_str().unwrap();
        assert!(
            url.starts_with("https://security.microsoft.com/alerts/da") && url.contains("?tid="),
            "{url}"
        );
    }
    assert!(
        endpoint.len() > 150 && endpoint.len() < 200,
        "{}",
        endpoint.len()
    );
}

#[tokio::test]
async fn queries_filter_order_and_page_as_graph_does() {
    let (sim, http) = sim(&SimConfig::new(3, 10)).await;
    let now = Utc::now();
    sim.tenant
        .generate_history(120, now - chrono::Duration::days(1), now);
    let token = token(&sim, &http).await;
    let filter = "serviceSource eq 'microsoftDefenderForEndpoint'";
    let q = format!("?$filter={filter}&$orderby=lastUpdateDateTime asc&$top=50&$count=true");
    let (_, first) = list(&sim, &http, &token, &q).await;
    let total = first["@odata.count"].as_u64().unwrap();
    assert_eq!(
        usize::try_from(total).unwrap(),
        sim.tenant.endpoint_alert_ids().len()
    );
    let mut seen: Vec<String> = Vec::new();
    let mut page = first;
    loop {
        let items = page["value"].as_array().unwrap();
        let stamps: Vec<&str> = items
            .iter()
            .map(|a| a["lastUpdateDateTime"].as_str().unwrap())
            .collect();
        assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "ascending");
        seen.extend(items.iter().map(|a| a["id"].as_str().unwrap().to_owned()));
        let Some(next) = page["@odata.nextLink"].as_str() else {
            break;
        };
        assert!(next.contains("$skiptoken="), "{next}");
        let r = http.get(next).bearer_auth(&token).send().await.unwrap();
        page = r.json().await.unwrap();
    }
    seen.sort();
    assert_eq!(seen, sim.tenant.endpoint_alert_ids());
    // A bound keeps only later updates, at full precision.
    let mid = sim.tenant.alert(&seen[0]).unwrap()["lastUpdateDateTime"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, after) = list(
        &sim,
        &http,
        &token,
        &format!("?$filter={filter} and lastUpdateDateTime gt {mid}"),
    )
    .await;
    assert!(after["value"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["lastUpdateDateTime"].as_str().unwrap() > mid.as_str()));
    for bad in [
        "?$top=1001",
        "?$skip=501",
        "?$filter=title eq 'x'",
        "?$orderby=title",
    ] {
        let (status, body) = list(&sim, &http, &token, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["error"]["code"], "BadRequest", "{bad}");
        assert!(body["error"]["innerError"]["request-id"].is_string());
    }
}

#[tokio::test]
async fn permissions_and_throttling_answer_as_graph_does() {
    let mut config = SimConfig::new(4, 3);
    config.apps.push(AppSpec::new(
        "44444444-0000-0000-0000-000000000000",
        "r",
        &[READ_ROLE],
    ));
    config.rate_limit = Some(2);
    let (sim, http) = sim(&config).await;
    let now = Utc::now();
    let ids = sim
        .tenant
        .generate_history(3, now - chrono::Duration::hours(1), now);
    let (_, body) = token_as(&sim, &http, "44444444-0000-0000-0000-000000000000", "r").await;
    let reader = body["access_token"].as_str().unwrap().to_owned();
    let r = http
        .patch(format!(
            "{}/v1.0/security/alerts_v2/{}",
            sim.base_url, ids[0]
        ))
        .bearer_auth(&reader)
        .json(&serde_json::json!({"status": "resolved"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Missing application roles. API required roles: SecurityAlert.ReadWrite.All"
        ),
        "{message}"
    );
    let (status, _) = list(&sim, &http, "not-a-token", "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Two requests a second pass; the third is throttled, with Retry-After.
    let mut throttled = None;
    for _ in 0..3 {
        let r = http
            .get(format!("{}/v1.0/security/alerts_v2", sim.base_url))
            .bearer_auth(&reader)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
        }
    }
    assert_eq!(throttled.as_deref(), Some("1"));
    assert!(sim.tenant.writes().is_empty());
}

#[tokio::test]
async fn newer_detection_sources_need_the_prefer_header() {
    let (sim, http) = sim(&SimConfig::new(5, 3)).await;
    let token = token(&sim, &http).await;
    let docs: Value = serde_json::from_str(DOCS_SAMPLE).unwrap();
    let mut alert = docs["value"][0].clone();
    alert["detectionSource"] = Value::from("microsoftDefenderForServers");
    sim.tenant.put_alert(&alert).unwrap();
    let url = format!(
        "{}/v1.0/security/alerts_v2/{}",
        sim.base_url,
        alert["id"].as_str().unwrap()
    );
    let plain: Value = http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(plain["detectionSource"], "unknownFutureValue");
    let preferred: Value = http
        .get(&url)
        .bearer_auth(&token)
        .header("Prefer", "include-unknown-enum-members")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(preferred["detectionSource"], "microsoftDefenderForServers");
}

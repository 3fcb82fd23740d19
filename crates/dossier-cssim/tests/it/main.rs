//! Integration tests of dossier-cssim over HTTPS, one binary (STYLE.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use dossier_cssim::{start, Fault, RunningSim, SimConfig, Tenant};
use serde_json::{json, Value};

async fn running(config: &SimConfig) -> (RunningSim, reqwest::Client) {
    let sim = start(Tenant::new(config), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(sim.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    (sim, http)
}

async fn token(sim: &RunningSim, http: &reqwest::Client, secret: &str) -> reqwest::Response {
    http.post(format!("{}/oauth2/token", sim.base_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("client_id=id&client_secret={secret}"))
        .send()
        .await
        .unwrap()
}

async fn bearer(sim: &RunningSim, http: &reqwest::Client) -> String {
    let body: Value = token(sim, http, "secret").await.json().await.unwrap();
    format!("Bearer {}", body["access_token"].as_str().unwrap())
}

#[test]
fn the_generator_is_deterministic_and_mixes_products_and_shared_files() {
    let mut config = SimConfig::new(3, 30, "id", "secret");
    config.shared_files = vec![("A".repeat(64), "shared.exe".into())];
    config.shared_hosts = vec!["SHARED-HOST".into()];
    let from = Utc::now() - Duration::days(30);
    let to = Utc::now();
    let a = Tenant::new(&config);
    let b = Tenant::new(&config);
    let ids = a.generate_history(2000, from, to);
    assert_eq!(
        ids,
        b.generate_history(2000, from, to),
        "same seed, same alerts"
    );
    let alerts: Vec<Value> = ids.iter().map(|id| a.alert(id).unwrap()).collect();
    let share =
        |f: &dyn Fn(&Value) -> bool| alerts.iter().filter(|a| f(a)).count() * 100 / alerts.len();
    let idp = share(&|a| a["product"] == "idp");
    assert!((4..=13).contains(&idp), "{idp}% idp");
    let shared_file = share(&|a| a["sha256"] == "a".repeat(64));
    assert!((2..=9).contains(&shared_file), "{shared_file}% shared file");
    let shared_host = share(&|a| a["device"]["hostname"] == "SHARED-HOST");
    assert!((2..=9).contains(&shared_host), "{shared_host}% shared host");
    let fileless = share(&|a| a["product"] == "epp" && a["sha256"] == "");
    assert!((1..=9).contains(&fileless), "{fileless}% fileless");
    let churned = alerts
        .iter()
        .filter(|a| a["updated_timestamp"] != a["created_timestamp"])
        .count();
    assert!(churned > 400, "{churned} alerts updated later");
    for a in &alerts {
        assert!(
            a["updated_timestamp"].as_str().unwrap().len() == 30,
            "nine fractional digits"
        );
        assert!(a["composite_id"]
            .as_str()
            .unwrap()
            .starts_with(&config_cid(&config)));
    }
}

fn config_cid(c: &SimConfig) -> String {
    c.cid.clone()
}

#[tokio::test]
async fn tokens_are_issued_with_the_region_and_bad_clients_get_the_real_bodies() {
    let mut config = SimConfig::new(1, 3, "id", "secret");
    config.region = "us-2".into();
    let (sim, http) = running(&config).await;
    let ok = token(&sim, &http, "secret").await;
    assert_eq!(ok.status(), 201);
    assert_eq!(ok.headers()["x-cs-region"], "us-2");
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["expires_in"], 1799);
    let bad = token(&sim, &http, "nope").await;
    assert_eq!(bad.status(), 403);
    let body: Value = bad.json().await.unwrap();
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("Failed to issue access token - Client authentication failed"));
    let missing = http
        .post(format!("{}/oauth2/token", sim.base_url))
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    assert_eq!(sim.tenant.token_requests(), 3);
}

#[tokio::test]
async fn the_query_pages_by_offset_under_the_ten_thousand_ceiling() {
    let (sim, http) = running(&SimConfig::new(2, 10, "id", "secret")).await;
    let now = Utc::now();
    sim.tenant
        .generate_history(300, now - Duration::days(1), now);
    let auth = bearer(&sim, &http).await;
    let get = |query: String| {
        let http = http.clone();
        let auth = auth.clone();
        let url = format!("{}/alerts/queries/alerts/v2?{query}", sim.base_url);
        async move {
            http.get(url)
                .header("authorization", auth)
                .send()
                .await
                .unwrap()
        }
    };
    let r =
        get("filter=product%3A%27epp%27&sort=updated_timestamp%7Casc&limit=100&offset=0".into())
            .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-ratelimit-remaining"));
    let body: Value = r.json().await.unwrap();
    let total = body["meta"]["pagination"]["total"].as_u64().unwrap();
    assert!(total > 240 && total < 300, "{total} endpoint alerts of 300");
    assert_eq!(body["resources"].as_array().unwrap().len(), 100);
    let r = get("limit=100&offset=9950".into()).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["message"],
        "offset 9950 and limit 100 are invalid; offset + limit must be less than or equal to 10000"
    );
    assert_eq!(get("filter=status%3A%27new%27".into()).await.status(), 400);
    assert_eq!(
        get("sort=created_timestamp%7Cdesc".into()).await.status(),
        400
    );
}

#[tokio::test]
async fn entities_take_at_most_a_thousand_ids_and_updates_are_kept() {
    let (sim, http) = running(&SimConfig::new(4, 3, "id", "secret")).await;
    let id = sim.tenant.generate_live(Utc::now());
    let auth = bearer(&sim, &http).await;
    let post = |body: Value| {
        http.post(format!("{}/alerts/entities/alerts/v2", sim.base_url))
            .header("authorization", auth.clone())
            .json(&body)
            .send()
    };
    let r: Value = post(json!({"composite_ids": [id]}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["resources"][0]["composite_id"], id.as_str());
    let many: Vec<String> = (0..1001).map(|i| i.to_string()).collect();
    assert_eq!(
        post(json!({"composite_ids": many})).await.unwrap().status(),
        413
    );
    let patch = json!({"composite_ids": [id], "action_parameters": [{"name": "update_status", "value": "closed"}, {"name": "add_tag", "value": "false_positive"}]});
    let r = http
        .patch(format!("{}/alerts/entities/alerts/v3", sim.base_url))
        .header("authorization", auth.clone())
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sim.tenant.writes(), vec![patch]);
    let alert = sim.tenant.alert(&id).unwrap();
    assert_eq!(
        (alert["status"].clone(), alert["tags"].clone()),
        (json!("closed"), json!(["false_positive"]))
    );
    let bad = json!({"composite_ids": [id], "action_parameters": [{"name": "update_status", "value": "resolved"}]});
    let r = http
        .patch(format!("{}/alerts/entities/alerts/v3", sim.base_url))
        .header("authorization", auth)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn faults_bearer_tokens_and_retired_paths_answer_as_the_api_does() {
    let (sim, http) = running(&SimConfig::new(5, 3, "id", "secret")).await;
    let url = format!("{}/alerts/queries/alerts/v2", sim.base_url);
    let r = http
        .get(&url)
        .header("authorization", "Bearer nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["message"],
        "access denied, invalid bearer token"
    );
    let auth = bearer(&sim, &http).await;
    sim.tenant
        .push_faults(Fault::parse_list("429:30,403").unwrap());
    let r = http
        .get(&url)
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let at: i64 = r.headers()["x-ratelimit-retryafter"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((at - Utc::now().timestamp() - 30).abs() <= 2);
    let r = http
        .get(&url)
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        http.get(&url)
            .header("authorization", &auth)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = http
        .get(format!("{}/detects/queries/detects/v1", sim.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_configured_rate_limit_answers_429_with_the_retry_instant() {
    let mut config = SimConfig::new(6, 3, "id", "secret");
    config.rate_limit_per_minute = Some(2);
    let (sim, http) = running(&config).await;
    let auth = bearer(&sim, &http).await;
    let url = format!("{}/alerts/queries/alerts/v2", sim.base_url);
    let first = http
        .get(&url)
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(first.headers()["x-ratelimit-remaining"], "1");
    // Two a minute: a 429 comes within the next four requests even if the minute turns over
    // once meanwhile.
    let mut refused = None;
    for _ in 0..4 {
        let r = http
            .get(&url)
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("a 429");
    assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
    let at: i64 = refused.headers()["x-ratelimit-retryafter"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(at > Utc::now().timestamp() - 1 && at <= Utc::now().timestamp() + 60);
}

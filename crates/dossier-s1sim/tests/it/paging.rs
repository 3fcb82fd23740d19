use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    get_threats, id_order, ids_of, sample, spawn, spawn_tenant, ts, url, walk, TOKEN,
};

fn assert_unique_and_complete(ids: &[String], expected: &HashSet<String>) {
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an id came twice");
    let got: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(&got, expected);
}

#[tokio::test]
async fn paging_2500_threats_returns_each_once() {
    let (sim, client) = spawn(2500).await;
    let pages = walk(&client, &sim, &[("limit", "1000")]).await;
    assert_eq!(pages.len(), 3);
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p["data"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [1000, 1000, 500]);
    assert!(pages.iter().all(|p| p["pagination"]["totalItems"] == 2500));
    assert!(pages[2]["pagination"]["nextCursor"].is_null());
    let ids = ids_of(&pages);
    let expected: HashSet<String> = sim.tenant.all_ids().into_iter().collect();
    assert_unique_and_complete(&ids, &expected);
    // Default order: id ascending, numerically.
    assert!(ids.windows(2).all(|w| id_order(&w[0], &w[1]).is_lt()));
}

#[tokio::test]
async fn every_sort_walks_every_threat_once() {
    let (sim, client) = spawn(700).await;
    let expected: HashSet<String> = sim.tenant.all_ids().into_iter().collect();
    for sort in [
        "id",
        "createdAt",
        "updatedAt",
        "mitigationStatus",
        "siteId",
        "fileDisplayName",
    ] {
        for order in ["asc", "desc"] {
            let pages = walk(
                &client,
                &sim,
                &[("limit", "97"), ("sortBy", sort), ("sortOrder", order)],
            )
            .await;
            assert_unique_and_complete(&ids_of(&pages), &expected);
        }
    }
}

#[tokio::test]
async fn updated_since_sorted_ascending() {
    let (sim, client) = spawn(1500).await;
    let since = "2025-02-15T00:00:00.000000Z";
    let query = [
        ("limit", "200"),
        ("sortBy", "updatedAt"),
        ("sortOrder", "asc"),
        ("updatedAt__gte", since),
    ];
    let pages = walk(&client, &sim, &query).await;
    let threats: Vec<&Value> = pages
        .iter()
        .flat_map(|p| p["data"].as_array().unwrap())
        .collect();
    let keys: Vec<(String, String)> = threats
        .iter()
        .map(|t| {
            (
                t["threatInfo"]["updatedAt"].as_str().unwrap().to_owned(),
                t["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(keys.iter().all(|(u, _)| u.as_str() >= since));
    assert!(keys
        .windows(2)
        .all(|w| w[0].0 < w[1].0 || (w[0].0 == w[1].0 && id_order(&w[0].1, &w[1].1).is_lt())));
    // Exactly the tenant's threats updated since then.
    let expected: HashSet<String> = sim
        .tenant
        .all_ids()
        .into_iter()
        .filter(|id| {
            sim.tenant.threat(id).unwrap()["threatInfo"]["updatedAt"]
                .as_str()
                .unwrap()
                >= since
        })
        .collect();
    assert!(
        expected.len() > 300 && expected.len() < 1500,
        "{}",
        expected.len()
    );
    assert_unique_and_complete(&ids_of(&pages), &expected);
    assert_eq!(pages[0]["pagination"]["totalItems"], expected.len());
}

#[tokio::test]
async fn equal_updated_at_across_page_boundaries() {
    let (sim, client) = spawn(50).await;
    // 25 threats share one updatedAt; ids whose string order differs from their numeric order,
    // and one beyond u64.
    let template = sample("sekoia_threat.json");
    let mut ids: Vec<String> = (0..23).map(|i| (9 + i * 45).to_string()).collect();
    ids.push("55555555555555555555".to_owned());
    ids.push("18446744073709551616".to_owned());
    let stamp = "2030-01-01T00:00:00.000001Z";
    for id in &ids {
        let mut t = template.clone();
        t["id"] = json!(id);
        t["threatInfo"]["threatId"] = json!(id);
        t["threatInfo"]["updatedAt"] = json!(stamp);
        assert_eq!(sim.tenant.put_threat(&t).unwrap(), *id);
    }
    for order in ["asc", "desc"] {
        let query = [
            ("limit", "10"),
            ("sortBy", "updatedAt"),
            ("sortOrder", order),
            ("updatedAt__gte", stamp),
        ];
        let pages = walk(&client, &sim, &query).await;
        assert_eq!(pages.len(), 3);
        let got = ids_of(&pages);
        let mut expected = ids.clone();
        expected.sort_by(|a, b| id_order(a, b));
        if order == "desc" {
            expected.reverse();
        }
        assert_eq!(got, expected, "{order}");
    }
    // `__gt` on the shared stamp excludes them all.
    let (_, page) = get_threats(
        &client,
        &sim,
        &[("updatedAt__gt", stamp), ("sortBy", "updatedAt")],
    )
    .await;
    assert_eq!(page["pagination"]["totalItems"], 0);
    assert_eq!(page["data"], json!([]));
    assert!(page["pagination"]["nextCursor"].is_null());
}

#[tokio::test]
async fn cursor_is_bound_to_filters_and_sort() {
    let (sim, client) = spawn(100).await;
    let base = [
        ("limit", "10"),
        ("sortBy", "updatedAt"),
        ("updatedAt__gte", "2025-01-01T00:00:00Z"),
    ];
    let (_, first) = get_threats(&client, &sim, &base).await;
    let cursor = first["pagination"]["nextCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    // Same filters, another limit: fine.
    let (status, _) = get_threats(
        &client,
        &sim,
        &[base[1], base[2], ("limit", "25"), ("cursor", &cursor)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let changed: &[&[(&str, &str)]] = &[
        &[base[0], base[1], ("updatedAt__gte", "2025-01-02T00:00:00Z")],
        &[base[0], ("sortBy", "createdAt"), base[2]],
        &[base[0], base[1], base[2], ("sortOrder", "desc")],
        &[base[0], base[1], base[2], ("siteIds", "1")],
        &[base[0], base[1]],
    ];
    for query in changed {
        let mut q = query.to_vec();
        q.push(("cursor", &cursor));
        let (status, body) = get_threats(&client, &sim, &q).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query:?}");
        assert_eq!(body["errors"][0]["code"], 4_000_010);
    }
}

#[tokio::test]
async fn filters_skip_and_counts() {
    let (sim, client) = spawn(600).await;
    let all: Vec<Value> = sim
        .tenant
        .all_ids()
        .iter()
        .map(|id| sim.tenant.threat(id).unwrap())
        .collect();
    let agent = all[0]["agentRealtimeInfo"]["agentId"].as_str().unwrap();
    let by_agent = all
        .iter()
        .filter(|t| t["agentRealtimeInfo"]["agentId"] == agent)
        .count();
    let (_, page) = get_threats(&client, &sim, &[("agentIds", agent), ("limit", "1000")]).await;
    assert_eq!(page["data"].as_array().unwrap().len(), by_agent);
    assert_eq!(page["pagination"]["totalItems"], by_agent);

    let sha1 = all
        .iter()
        .find_map(|t| t["threatInfo"]["sha1"].as_str().filter(|s| !s.is_empty()))
        .unwrap();
    let by_hash = all
        .iter()
        .filter(|t| t["threatInfo"]["sha1"] == sha1)
        .count();
    let (_, page) = get_threats(
        &client,
        &sim,
        &[("contentHashes", &sha1.to_uppercase()), ("limit", "1000")],
    )
    .await;
    assert_eq!(page["pagination"]["totalItems"], by_hash);

    let two = format!(
        "{},{}",
        all[3]["id"].as_str().unwrap(),
        all[5]["id"].as_str().unwrap()
    );
    let (_, page) = get_threats(&client, &sim, &[("ids", &two)]).await;
    assert_eq!(
        ids_of(&[page]),
        [
            all[3]["id"].as_str().unwrap(),
            all[5]["id"].as_str().unwrap()
        ]
    );

    let (_, page) = get_threats(&client, &sim, &[("skip", "5"), ("limit", "3")]).await;
    let expected: Vec<&str> = all[5..8]
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids_of(&[page]), expected);

    let (_, page) = get_threats(&client, &sim, &[("countOnly", "true")]).await;
    assert_eq!(page["data"], json!([]));
    assert_eq!(page["pagination"]["totalItems"], 600);
    let (_, page) = get_threats(&client, &sim, &[("skipCount", "true"), ("limit", "2")]).await;
    assert!(page["pagination"]["totalItems"].is_null());
    assert_eq!(page["data"].as_array().unwrap().len(), 2);

    let resolved = all
        .iter()
        .filter(|t| t["threatInfo"]["incidentStatus"] == "resolved")
        .count();
    let (_, page) = get_threats(
        &client,
        &sim,
        &[("resolved", "true"), ("countOnly", "true")],
    )
    .await;
    assert_eq!(page["pagination"]["totalItems"], resolved);
    let (_, page) = get_threats(
        &client,
        &sim,
        &[("incidentStatusesNin", "resolved"), ("countOnly", "true")],
    )
    .await;
    assert_eq!(page["pagination"]["totalItems"], 600 - resolved);

    let window = [
        ("createdAt__gte", "2025-02-01T00:00:00Z"),
        ("createdAt__lt", "2025-03-01T00:00:00Z"),
    ];
    let in_window = all
        .iter()
        .filter(|t| {
            let c = ts(t["threatInfo"]["createdAt"].as_str().unwrap());
            c >= ts("2025-02-01T00:00:00Z") && c < ts("2025-03-01T00:00:00Z")
        })
        .count();
    let pages = walk(
        &client,
        &sim,
        &[
            window[0],
            window[1],
            ("limit", "50"),
            ("sortBy", "createdAt"),
        ],
    )
    .await;
    assert_eq!(ids_of(&pages).len(), in_window);
}

#[tokio::test]
async fn real_samples_are_served_as_they_were_put() {
    let tenant = dossier_s1sim::Tenant::new(&dossier_s1sim::SimConfig::new(1, 3, TOKEN));
    let names = [
        "sekoia_threat.json",
        "sekoia_threat2.json",
        "sekoia_threat3.json",
        "sekoia_threat4.json",
        "sekoia_threat5.json",
        "sekoia_cloud_providers.json",
        "sumologic_threat_macos.json",
        "elastic_test_pipeline_threat_line1.json",
    ];
    let mut samples: Vec<Value> = names.iter().map(|n| sample(n)).collect();
    samples.push(sample("swimlane_get_threat_analysis.json")[0]["json_body"]["data"].clone());
    // The swimlane analysis object has no top-level id; it is the threatId.
    let last = samples.len() - 1;
    samples[last]["id"] = samples[last]["threatInfo"]["threatId"].clone();
    for s in &samples {
        tenant.put_threat(s).unwrap();
    }
    assert!(tenant
        .put_threat(&json!({"id": "x1", "threatInfo": {"createdAt": "2021-01-01T00:00:00Z"}}))
        .is_err());
    assert!(tenant.put_threat(&json!({"threatInfo": {}})).is_err());
    let (sim, client) = spawn_tenant(tenant).await;
    let (_, page) = get_threats(&client, &sim, &[("limit", "100"), ("sortBy", "updatedAt")]).await;
    let served = page["data"].as_array().unwrap();
    assert_eq!(served.len(), samples.len());
    for s in &samples {
        let got = served.iter().find(|t| t["id"] == s["id"]).unwrap();
        assert_eq!(got, s);
    }
    // The 20-digit id sorts last by id.
    let (_, page) = get_threats(
        &client,
        &sim,
        &[("sortBy", "id"), ("sortOrder", "desc"), ("limit", "1")],
    )
    .await;
    assert_eq!(page["data"][0]["id"], "55555555555555555555");
}

#[tokio::test]
async fn timeline_and_notes() {
    let (sim, client) = spawn(5).await;
    let id = sim.tenant.all_ids()[0].clone();
    let get = |path: String| {
        client
            .get(url(&sim, &path))
            .header("Authorization", format!("ApiToken {TOKEN}"))
            .send()
    };
    let response = get(format!("/threats/{id}/timeline")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"][0]["activityType"], 4003);
    assert_eq!(body["data"][0]["threatId"], id.as_str());
    assert!(body["pagination"]["nextCursor"].is_null());
    let response = get("/threats/1234/timeline".to_owned()).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = get(format!("/threats/{id}/notes")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = client
        .get(url(&sim, &format!("/threats/{id}/timeline")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn changes_during_a_walk_show_up_after_the_cursor() {
    let (sim, client) = spawn(300).await;
    let query = [
        ("limit", "100"),
        ("sortBy", "updatedAt"),
        ("updatedAt__gte", "2025-01-01T00:00:00Z"),
    ];
    let (_, first) = get_threats(&client, &sim, &query).await;
    let seen_first = ids_of(std::slice::from_ref(&first));
    // While the poller walks: a new threat arrives and an already returned one is updated.
    let now = ts("2025-06-01T00:00:00Z");
    let live = sim.tenant.generate_live(now);
    assert!(sim.tenant.update_threat(&seen_first[0], now));
    let mut pages = vec![first];
    let mut cursor = pages[0]["pagination"]["nextCursor"]
        .as_str()
        .map(str::to_owned);
    while let Some(c) = cursor {
        let mut q = query.to_vec();
        q.push(("cursor", &c));
        let (status, page) = get_threats(&client, &sim, &q).await;
        assert_eq!(status, StatusCode::OK);
        cursor = page["pagination"]["nextCursor"].as_str().map(str::to_owned);
        pages.push(page);
    }
    let ids = ids_of(&pages);
    assert_eq!(
        ids.len(),
        302,
        "300 + the new threat + the re-delivered update"
    );
    assert_eq!(ids.iter().filter(|id| **id == live).count(), 1);
    assert_eq!(ids.iter().filter(|id| **id == seen_first[0]).count(), 2);
    assert_eq!(pages.last().unwrap()["pagination"]["totalItems"], 301);
}

//! Story list: a page of 50 sorted by `updated_at` descending with one filter, at a million
//! stories, timed at the API on loopback.

use std::time::{Duration, Instant};

use chrono::Utc;

use super::{fresh_server, percentile, BenchOptions};

pub struct ListResult {
    pub queries: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

pub async fn run(o: &BenchOptions) -> anyhow::Result<ListResult> {
    let bench = fresh_server(&[]).await?;
    let account = bench
        .state
        .store
        .create_account("List", dossier_domain::access::Licence::Xops)
        .await?;
    let (key, hash) = dossier_server::auth::new_api_key();
    bench
        .state
        .store
        .insert_api_key(&dossier_store::ApiKeyRecord {
            id: crate::admin::uuid_like(&hash),
            account_id: Some(account.id.clone()),
            key_hash: hash,
            roles: vec![dossier_domain::access::Role::StoriesViewer],
            created_at: Utc::now(),
        })
        .await?;
    eprintln!("list: seeding {} stories", o.stories);
    let t = Instant::now();
    bench
        .store
        .seed_synthetic_stories(&account.id, o.stories, Utc::now())
        .await?;
    eprintln!("list: seeded in {:.1}s", t.elapsed().as_secs_f64());

    let base = format!("http://{}/api/v1/stories", bench.running.addr);
    let http = reqwest::Client::new();
    let two_days_ago =
        (Utc::now() - chrono::Duration::days(2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let filters = [
        "status=open".to_owned(),
        "verdict=malicious".to_owned(),
        "criticality_min=8".to_owned(),
        "producer=sentinelone".to_owned(),
        format!("from={two_days_ago}"),
        "status=monitoring".to_owned(),
        "q=mimikatz".to_owned(),
        "severity=high".to_owned(),
    ];
    let mut ms = Vec::new();
    for round in 0..25 {
        for f in &filters {
            let mut cursor: Option<String> = None;
            // First page, then two pages deeper through the cursor.
            for _ in 0..3 {
                let mut url = format!("{base}?sort=-updated_at&limit=50&{f}");
                if let Some(c) = &cursor {
                    url.push_str("&cursor=");
                    url.push_str(c);
                }
                let started = Instant::now();
                let resp: serde_json::Value = http
                    .get(&url)
                    .bearer_auth(&key)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                ms.push(started.elapsed().as_secs_f64() * 1000.0);
                cursor = resp["next_cursor"].as_str().map(str::to_owned);
                if cursor.is_none() {
                    break;
                }
            }
        }
        if round == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    bench.running.stop().await;
    ms.sort_by(f64::total_cmp);
    Ok(ListResult {
        queries: ms.len(),
        p50_ms: percentile(&ms, 50.0),
        p95_ms: percentile(&ms, 95.0),
    })
}

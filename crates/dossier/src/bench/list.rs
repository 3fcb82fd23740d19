//! Story list: a page of 50 sorted by `updated_at` descending with one filter, at a million
//! stories, timed at the API on loopback.

use std::time::{Duration, Instant};

use chrono::Utc;

use super::{fresh_nodes, percentile, stop_nodes, BenchOptions, Db};

pub struct ListResult {
    pub queries: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    /// The Workbench page (HTML, signed in) with its filters, sorts and groupings, where it
    /// was measured.
    pub pages: Option<PageResult>,
}

pub struct PageResult {
    pub queries: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    /// The slowest view measured, and its time at p95.
    pub worst: (String, f64),
}

/// Workbench views an analyst opens: the default (last 2 days, newest first), each filter,
/// sorts on other columns, groupings, and the widest range (90 days).
const PAGE_VIEWS: &[&str] = &[
    "",
    "status=open",
    "status=open&status=reopened&cmin=7",
    "verdict=malicious&severity=high",
    "q=mimikatz",
    "device=host-000123",
    "endpoint=1&producer=sentinelone",
    "sort=-criticality",
    "sort=source",
    "sort=indication&status=open",
    "sort=-incident_count",
    "group=status",
    "group=source&status=open",
    "group=indication",
    "group=file",
    "group=device",
    "group=file&status=open&cmin=7",
    "range=7d&group=file",
    "range=7d&status=open&cmin=8",
    "range=90d",
    "range=90d&status=pending_analysis",
    "range=90d&q=invoice",
];

pub async fn run(o: &BenchOptions) -> anyhow::Result<ListResult> {
    run_on(o, &Db::Sqlite, &[1], true)
        .await?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("list: nothing measured"))
}

/// The list benchmark on `db`, seeded once (a million stories take minutes to write), then
/// timed for each count of nodes in `node_counts`, the requests going to those nodes in turn.
/// The Workbench pages, with `with_pages`, are timed once through the first node, and come with
/// the first result.
pub async fn run_on(
    o: &BenchOptions,
    db: &Db,
    node_counts: &[usize],
    with_pages: bool,
) -> anyhow::Result<Vec<ListResult>> {
    let nodes = fresh_nodes(db, &[], node_counts.iter().copied().max().unwrap_or(1)).await?;
    let Some(bench) = nodes.first() else {
        anyhow::bail!("no benchmark server started");
    };
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
            name: None,
        })
        .await?;
    // Every producer's stories mixed, as an estate with several EDRs has them.
    let producers: Vec<_> = bench.state.sources.iter().map(|s| s.producer()).collect();
    eprintln!(
        "list: seeding {} stories of {} producers",
        o.stories,
        producers.len()
    );
    let t = Instant::now();
    bench
        .store
        .seed_synthetic_stories(&account.id, o.stories, Utc::now(), &producers)
        .await?;
    eprintln!("list: seeded in {:.1}s", t.elapsed().as_secs_f64());

    let mut results = Vec::with_capacity(node_counts.len());
    for &count in node_counts {
        let bases: Vec<String> = nodes
            .iter()
            .take(count.max(1))
            .map(|n| format!("http://{}/api/v1/stories", n.running.addr))
            .collect();
        let mut ms = api_times(&bases, &key).await?;
        ms.sort_by(f64::total_cmp);
        let pages = if with_pages && results.is_empty() {
            Some(pages(bench, &account.id).await?)
        } else {
            None
        };
        results.push(ListResult {
            queries: ms.len(),
            p50_ms: percentile(&ms, 50.0),
            p95_ms: percentile(&ms, 95.0),
            pages,
        });
    }
    stop_nodes(nodes).await;
    Ok(results)
}

/// Times the API's list over the filters, each request going to the next of `bases`.
async fn api_times(bases: &[String], key: &str) -> anyhow::Result<Vec<f64>> {
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
    let mut next = bases.iter().cycle();
    for round in 0..25 {
        for f in &filters {
            let mut cursor: Option<String> = None;
            // First page, then two pages deeper through the cursor.
            for _ in 0..3 {
                let base = next.next().map_or("", String::as_str);
                let mut url = format!("{base}?sort=-updated_at&limit=50&{f}");
                if let Some(c) = &cursor {
                    url.push_str("&cursor=");
                    url.push_str(c);
                }
                let started = Instant::now();
                let resp: serde_json::Value = http
                    .get(&url)
                    .bearer_auth(key)
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
    Ok(ms)
}

/// Times the Workbench list page, signed in as an analyst who may change stories, over
/// [`PAGE_VIEWS`].
async fn pages(bench: &super::Bench, account_id: &str) -> anyhow::Result<PageResult> {
    let password = dossier_server::passwords::generate();
    let user = dossier_server::passwords::new_user(
        "bench-analyst",
        &password,
        // An editor's page is the fullest: it also offers the bulk change and its owners.
        vec![dossier_domain::access::Role::StoriesEditor],
        Some(account_id.to_owned()),
    )
    .map_err(|m| anyhow::anyhow!(m))?;
    bench.state.store.create_user(&user).await?;
    let base = format!("http://{}", bench.running.addr);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let login = http
        .post(format!("{base}/login"))
        .form(&[
            ("username", "bench-analyst"),
            ("password", password.as_str()),
        ])
        .send()
        .await?;
    let cookie = login
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the bench user could not sign in"))?;
    let mut all = Vec::new();
    let mut worst = (String::new(), 0.0);
    for view in PAGE_VIEWS {
        let mut times = Vec::new();
        for _ in 0..20 {
            let started = Instant::now();
            let resp = http
                .get(format!("{base}/stories?{view}"))
                .header(reqwest::header::COOKIE, &cookie)
                .send()
                .await?;
            let status = resp.status();
            let body = resp.text().await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            if !status.is_success() || !body.contains("<h1>Stories</h1>") {
                anyhow::bail!("the Workbench answered {status} for {view:?}");
            }
        }
        times.sort_by(f64::total_cmp);
        let p95 = percentile(&times, 95.0);
        eprintln!("list: page {view:?}: p95 {p95:.1} ms");
        if p95 > worst.1 {
            worst = ((*view).to_owned(), p95);
        }
        all.extend(times);
    }
    all.sort_by(f64::total_cmp);
    Ok(PageResult {
        queries: all.len(),
        p50_ms: percentile(&all, 50.0),
        p95_ms: percentile(&all, 95.0),
        worst,
    })
}

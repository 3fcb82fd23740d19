//! Large stories stay usable: a story of 1,000 incidents (one device, one file) carries only
//! its first page of incidents, pages the rest by cursor, folds its timeline on the page, and
//! its page stays small and quick.

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use dossier_domain::access::{Licence, Role};
use serde_json::json;

use crate::web_access::{first_story, tenancy};
use crate::web_client::between;
use crate::{spawn_app, App};

const INCIDENTS: u64 = 1000;
/// What the story page may weigh at most, whatever the story's size.
const PAGE_BUDGET: usize = 500 * 1024;

/// Puts 1,000 versions of the tenant's one threat in it: one device, one file, one minute
/// apart, every tenth not mitigated.
pub(crate) fn a_thousand_threats_on_one_device(app: &App) {
    let ids = app.tenant.all_ids();
    let template = app.tenant.threat(&ids[0]).unwrap();
    let first: u64 = ids[0].parse().unwrap();
    let start = Utc::now() - chrono::Duration::days(20);
    for n in 0..INCIDENTS {
        let mut t = template.clone();
        let id = (first + n).to_string();
        let at = (start + chrono::Duration::minutes(i64::try_from(n).unwrap()))
            .to_rfc3339_opts(SecondsFormat::Micros, true);
        t["id"] = json!(id);
        t["threatInfo"]["threatId"] = json!(id);
        t["threatInfo"]["createdAt"] = json!(at);
        t["threatInfo"]["updatedAt"] = json!(at);
        t["threatInfo"]["mitigationStatus"] = json!(if n % 10 == 9 {
            "not_mitigated"
        } else {
            "mitigated"
        });
        app.tenant.put_threat(&t).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_incident_story_pages_its_incidents_and_its_page_stays_small() {
    let app = spawn_app(1).await;
    a_thousand_threats_on_one_device(&app);
    let own = tenancy(&app, Licence::Xops).await;
    app.until_backfilled(&own.key, &own.connector, INCIDENTS)
        .await;
    let sid = first_story(&app, &own.key).await;

    // The API's detail: the first page of incidents, a cursor to the rest, the full timeline.
    let started = Instant::now();
    let d = app.story(&own.key, &sid).await;
    let api_ms = started.elapsed().as_millis();
    assert_eq!(d["incident_count"], INCIDENTS);
    let first_page = d["incidents"].as_array().unwrap();
    assert_eq!(first_page.len(), 50);
    let next = d["incidents_next_cursor"].as_str().unwrap().to_owned();
    let added = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "incident_added")
        .count();
    assert_eq!(added as u64, INCIDENTS, "the API keeps the full timeline");
    assert!(
        d["criticality_detail"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "+1: 100 of 1000 incidents not mitigated"),
        "{}",
        d["criticality_detail"]
    );

    // The API pages every incident once, oldest first.
    let all = app
        .all_items(&own.key, &format!("/api/v1/stories/{sid}/incidents"))
        .await;
    let ids: Vec<&str> = all.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len() as u64, INCIDENTS);
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "each incident once");
    let created: Vec<&str> = all
        .iter()
        .map(|i| i["created_at"].as_str().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    let (status, rest) = app
        .call(
            "GET",
            &format!("/api/v1/stories/{sid}/incidents?limit=1000&cursor={next}"),
            Some(&own.key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(rest["items"][0]["id"].as_str(), Some(ids[50]));
    assert!(rest["next_cursor"].is_null());
    for bad in ["limit=0", "limit=1001", "page=2", "cursor=garbage"] {
        let (status, e) = app
            .call(
                "GET",
                &format!("/api/v1/stories/{sid}/incidents?{bad}"),
                Some(&own.key),
                None,
            )
            .await;
        assert_eq!(status, 400, "{bad}: {e}");
        assert_eq!(e["error"], "bad_request", "{bad}: {e}");
    }

    // The page: under budget, quick, the first page of incidents and their raw JSON only, a
    // link to the next, and the incidents folded in the timeline.
    let mut web = app
        .signed_in(Some(&own.account), &[Role::StoriesViewer])
        .await;
    let mut times = Vec::new();
    let mut html = String::new();
    for _ in 0..5 {
        let started = Instant::now();
        let (status, page) = web.get(&format!("/stories/{sid}")).await;
        times.push(started.elapsed());
        assert_eq!(status, 200);
        html = page;
    }
    times.sort();
    let median: Duration = times[times.len() / 2];
    println!(
        "large_story_incidents={INCIDENTS} large_story_page_bytes={} large_story_page_ms={} \
         large_story_api_detail_ms={api_ms} (page: median of 5; both as served over loopback \
         by this build)",
        html.len(),
        median.as_millis()
    );
    assert!(
        html.len() < PAGE_BUDGET,
        "the page weighs {} bytes",
        html.len()
    );
    assert_eq!(
        html.matches("<details").count(),
        50,
        "one raw JSON per incident shown"
    );
    assert!(html.contains(ids[49]) && !html.contains(&format!(">{}<", ids[50])));
    assert!(
        html.contains("1000 incidents added between"),
        "the timeline folds the added incidents"
    );
    let href = between(&html, "rel=\"next\" href=\"", "\"")
        .unwrap()
        .replace("&amp;", "&");
    let (status, second) = web.get(&href).await;
    assert_eq!(status, 200);
    assert!(
        second.contains(&format!(">{}<", ids[50])),
        "the next page starts after the first"
    );
    assert!(second.contains("First incidents"));
    assert!(second.len() < PAGE_BUDGET);
    app.running.stop().await;
}

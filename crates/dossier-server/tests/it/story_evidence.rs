//! The story page's evidence: recommended next steps, the entities, and a fileless story's
//! storyline in place of a file.

use dossier_domain::access::{Licence, Role};

use crate::spawn_app;
use crate::web_access::tenancy;

/// Whether every incident of a story's detail is a fileless SentinelOne threat.
pub(crate) fn is_fileless(detail: &serde_json::Value) -> bool {
    detail["incidents"].as_array().is_some_and(|i| {
        i.iter()
            .all(|i| i["raw"]["threatInfo"]["isFileless"] == true)
    })
}

/// Regression: a fileless story showed its threat's name in the "File" box. It shows its
/// storyline instead, its entities list no file, and every story page lists its next steps
/// (each action linking to its button) and its entities.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fileless_story_shows_its_storyline_not_a_file() {
    let app = spawn_app(200).await;
    let own = tenancy(&app, Licence::Xops).await;
    app.until_backfilled(&own.key, &own.connector, 200).await;
    let stories = app.all_items(&own.key, "/api/v1/stories").await;
    let mut web = app
        .signed_in(Some(&own.account), &[Role::StoriesViewer])
        .await;
    let (mut fileless, mut with_file) = (0, 0);
    for s in &stories {
        let sid = s["id"].as_str().unwrap();
        let (_, d) = app
            .call(
                "GET",
                &format!("/api/v1/stories/{sid}"),
                Some(&own.key),
                None,
            )
            .await;
        let incidents = d["incidents"].as_array().unwrap();
        let is_fileless = is_fileless(&d);
        let (status, page) = web.get(&format!("/stories/{sid}")).await;
        assert_eq!(status, 200);
        assert!(page.contains("id=\"entities-title\""), "{sid}");
        if d["status"] != "closed" {
            assert!(page.contains("Recommended next steps"), "{sid}");
        }
        for step in d["next_steps"].as_array().unwrap() {
            if let Some(a) = step["action"].as_str() {
                assert!(
                    page.contains(&format!("href=\"#action-{a}\"")),
                    "{sid}: {a}"
                );
            }
        }
        if is_fileless {
            fileless += 1;
            assert!(page.contains(">Storyline and process<"), "{sid}");
            assert!(!page.contains("id=\"file-title\">File<"), "{sid}");
            assert_eq!(d["entities"]["files"], serde_json::json!([]), "{sid}");
            let storyline = incidents
                .last()
                .and_then(|i| i["raw"]["threatInfo"]["storyline"].as_str());
            if let Some(storyline) = storyline {
                assert!(page.contains(storyline), "{sid}: {storyline}");
            }
            // The account the threat ran as stands beside its storyline.
            let user = incidents
                .last()
                .and_then(|i| i["raw"]["threatInfo"]["processUser"].as_str())
                .filter(|u| !u.is_empty());
            if let Some(user) = user {
                let panel = page.split("Storyline and process").nth(1).unwrap();
                let panel = panel.split("</section>").next().unwrap();
                assert!(panel.contains(user), "{sid}: {user} not in {panel}");
            }
        } else if d["file"]["sha1"].is_string() {
            with_file += 1;
            assert!(page.contains("id=\"file-title\">File<"), "{sid}");
        }
    }
    assert!(fileless > 0, "the emulator makes fileless threats");
    assert!(with_file > 0);
    app.running.stop().await;
}

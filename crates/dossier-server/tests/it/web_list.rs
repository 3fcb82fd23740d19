//! The Workbench list at outbreak scale: its count and pages, groups with their split, the
//! columns a user keeps, quick filters that add, changes to many stories with a confirmation,
//! the new-stories notice, and a story's related stories.

use dossier_domain::access::{Licence, Role};
use serde_json::Value;

use crate::web_access::{tenancy, Tenancy};
use crate::web_client::{between, WebSession};
use crate::{spawn_app, App};

const THREATS: u64 = 200;

/// The list's own count of a view ("N stories"): on the page when one page holds them all,
/// else from the count the page asks for once it is shown.
async fn shown_total(web: &mut WebSession, page: &str) -> String {
    if let Some(n) = between(page, "<span class=\"total\" role=\"status\">", " match") {
        return n.to_owned();
    }
    let url = between(
        page,
        "<span class=\"total\" role=\"status\" data-count=\"",
        "\"",
    )
    .unwrap_or_else(|| panic!("no total on the page: {page}"))
    .replace("&amp;", "&");
    let (status, body) = web.get(&url).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let text = v["text"].as_str().unwrap();
    text.rsplit_once(' ').unwrap().0.to_owned()
}

fn headings(page: &str) -> Vec<String> {
    let head = between(page, "<table class=\"stories\">", "</thead>").unwrap_or_default();
    head.split("<th ")
        .skip(1)
        .filter_map(|th| {
            let inner = th.split_once('>')?.1;
            let text: String = inner
                .replace("<a ", "\u{0}<a ")
                .split('<')
                .filter_map(|part| part.split_once('>').map(|(_, t)| t).or(Some(part)))
                .collect::<Vec<_>>()
                .join("");
            let text = text.replace(['\u{0}', '▼', '▲'], "");
            let text = text.trim().to_owned();
            (!text.is_empty()).then_some(text)
        })
        .collect()
}

async fn api_ids(app: &App, key: &str, query: &str) -> Vec<String> {
    app.all_items(key, &format!("/api/v1/stories?{query}"))
        .await
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_counts_pages_groups_and_changes_stories_in_bulk() {
    let app = spawn_app(usize::try_from(THREATS).unwrap()).await;
    let own = tenancy(&app, Licence::Xops).await;
    app.until_backfilled(&own.key, &own.connector, THREATS)
        .await;
    let all = api_ids(&app, &own.key, "from=").await;
    let mut web = app
        .signed_in(Some(&own.account), &[Role::StoriesEditor])
        .await;

    count_and_pages(&mut web, all.len()).await;
    columns_are_kept_per_user(&app, &own, &mut web).await;
    quick_filters_add_to_the_filters(&mut web).await;
    groups_split_and_open_as_lists(&app, &own, &mut web).await;
    bulk_changes_confirm_their_count(&app, &own, &mut web).await;
    new_stories_are_counted_since_the_list_opened(&mut web, all.len()).await;
    app.running.stop().await;
}

/// "N stories match" is the API's count; previous and next pages walk the same stories.
async fn count_and_pages(web: &mut WebSession, total: usize) {
    assert!(total > 50, "two pages of stories: {total}");
    let (status, first) = web.get("/stories?range=90d").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(shown_total(web, &first).await, format!("{total} stories"));
    assert!(
        first.contains("<span class=\"none\">‹ Previous</span>"),
        "no page before the first"
    );
    let next = between(&first, "<a rel=\"next\" href=\"", "\"").expect("a next page");
    let next = next.replace("&amp;", "&");
    let (status, second) = web.get(&next).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        shown_total(web, &second).await,
        format!("{total} stories"),
        "the count ignores the page"
    );
    let prev = between(&second, "<a rel=\"prev\" href=\"", "\"").expect("a previous page");
    let (_, back) = web.get(&prev.replace("&amp;", "&")).await;
    let rows = |p: &str| -> Vec<String> {
        p.split("name=\"id\" value=\"")
            .skip(1)
            .map(|r| r.split('"').next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        rows(&back),
        rows(&first),
        "previous of the second page is the first"
    );
    assert_eq!(rows(&first).len(), 50);
    // Human words on the page, stable names in the API.
    assert!(first.contains(">Open</span>"), "statuses read as words");
    assert!(!first.contains(">not_mitigated<"), "{first}");
}

/// The default columns fit a laptop screen and show the threat's own dates; a user's choice
/// is theirs alone, and survives the next visit.
async fn columns_are_kept_per_user(app: &App, own: &Tenancy, web: &mut WebSession) {
    let (_, page) = web.get("/stories?range=90d").await;
    let h = headings(&page);
    for want in ["ID", "Indication", "Owner", "First signal", "Last signal"] {
        assert!(h.iter().any(|x| x == want), "{want} in {h:?}");
    }
    for hidden in ["Created", "Updated", "File hash", "Mitigation"] {
        assert!(
            !h.iter().any(|x| x == hidden),
            "{hidden} hidden by default: {h:?}"
        );
    }
    let (status, _, location) = web
        .post_form(
            "/stories/columns",
            &[
                ("col", "id"),
                ("col", "created"),
                ("col", "mitigation"),
                ("back", "/stories?range=90d"),
            ],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/stories?range=90d"))
    );
    let (_, page) = web.get("/stories?range=90d").await;
    assert_eq!(headings(&page), vec!["ID", "Created", "Mitigation"]);
    // Another user of the account keeps the defaults.
    let mut other = app
        .signed_in(Some(&own.account), &[Role::StoriesViewer])
        .await;
    let (_, theirs) = other.get("/stories?range=90d").await;
    assert!(headings(&theirs).iter().any(|x| x == "Indication"));
    // Refused choices say why; a back address elsewhere is not followed.
    let (status, body, _) = web
        .post_form("/stories/columns", &[("col", "password")])
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("no column"), "{body}");
    let (status, body, _) = web.post_form("/stories/columns", &[]).await;
    assert_eq!(status, 400, "{body}");
    let (status, _, location) = web
        .post_form(
            "/stories/columns",
            &[("reset", "1"), ("back", "https://evil.example/")],
        )
        .await;
    assert_eq!((status, location.as_deref()), (303, Some("/stories")));
    let (_, page) = web.get("/stories?range=90d").await;
    assert!(
        headings(&page).iter().any(|x| x == "Indication"),
        "back to the defaults"
    );
}

/// A quick filter adds to the filters in use and a second click takes it off.
async fn quick_filters_add_to_the_filters(web: &mut WebSession) {
    let (_, page) = web.get("/stories?range=90d&status=monitoring&q=x").await;
    let quick = between(&page, "<div class=\"quick\">", "</div>").unwrap();
    let open = quick
        .split("<a ")
        .find(|a| a.contains(">Open<"))
        .and_then(|a| between(a, "href=\"", "\""))
        .unwrap()
        .replace("&amp;", "&");
    for kept in [
        "status=monitoring",
        "q=x",
        "range=90d",
        "status=open",
        "status=reopened",
    ] {
        assert!(open.contains(kept), "{kept} in {open}");
    }
    let (_, on) = web.get(&open).await;
    let quick = between(&on, "<div class=\"quick\">", "</div>").unwrap();
    let off = quick.split("<a ").find(|a| a.contains("Open<")).unwrap();
    assert!(off.contains("aria-pressed=\"true\""), "{off}");
    let off = between(off, "href=\"", "\"").unwrap().replace("&amp;", "&");
    assert!(
        off.contains("status=monitoring") && !off.contains("status=open"),
        "{off}"
    );
}

/// Grouped by file and by device, each group has its count, highest criticality and splits,
/// and its stories open as a list or in place.
async fn groups_split_and_open_as_lists(app: &App, own: &Tenancy, web: &mut WebSession) {
    let stories = app.all_items(&own.key, "/api/v1/stories?from=").await;
    for (group, key) in [("file", "hash="), ("device", "device=")] {
        let (status, page) = web.get(&format!("/stories?range=90d&group={group}")).await;
        assert_eq!(status, 200, "{page}");
        let section = between(&page, "<section class=\"groups\"", "</section>").unwrap();
        // The largest group with a value (stories without a file make a group of none).
        let first = section
            .split("<tbody class=\"group\">")
            .skip(1)
            .map(|g| g.split("</tbody>").next().unwrap())
            .find(|g| g.contains("Open as a list"))
            .unwrap();
        assert!(first.contains("badge status-open"), "{first}");
        assert!(first.contains("No severity"), "{first}");
        assert!(first.contains("Open as a list"), "{first}");
        let href = first
            .split("<a href=\"")
            .nth(1)
            .and_then(|a| a.split('"').next())
            .unwrap()
            .replace("&amp;", "&");
        assert!(href.contains(key), "{href}");
        let count: usize = between(first, "<td class=\"num\">", "</td>")
            .unwrap()
            .parse()
            .unwrap();
        let (_, listed) = web.get(&href).await;
        assert_eq!(
            shown_total(web, &listed).await,
            if count == 1 {
                "1 story".to_owned()
            } else {
                format!("{count} stories")
            },
            "the group's list holds its stories: {href}"
        );
        // In place: the rows alone, the same stories.
        let rows = between(first, "data-src=\"", "\"")
            .unwrap()
            .replace("&amp;", "&");
        let (status, fragment) = web.get(&rows).await;
        assert_eq!(status, 200);
        assert!(
            fragment.starts_with("<table class=\"stories\">"),
            "{fragment}"
        );
        assert_eq!(fragment.matches("<tr>").count() - 1, count.min(50));
    }
    // The groups' highest criticality is the stories' highest.
    let highest = stories
        .iter()
        .map(|s| s["criticality"].as_u64().unwrap())
        .max()
        .unwrap();
    let (_, page) = web.get("/stories?range=90d&group=status").await;
    assert!(page.contains(&format!("title=\"criticality, 1 to 10\">{highest}<")));
}

async fn bulk_changes_confirm_their_count(app: &App, own: &Tenancy, web: &mut WebSession) {
    let ids = api_ids(app, &own.key, "from=").await;
    let (a, b) = (ids[0].clone(), ids[1].clone());
    let view = "/stories?range=90d";
    // First the count and the change, and nothing changed yet.
    let (status, page, _) = web
        .post_form(
            "/stories/bulk",
            &[
                ("view", view),
                ("id", &a),
                ("id", &b),
                ("id", &a),
                ("status", "pending_analysis"),
                ("comment", "seen in bulk"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Change 2 stories?"), "{page}");
    assert!(page.contains("Pending analysis"), "{page}");
    assert_eq!(app.story(&own.key, &a).await["status"], "open");
    // Then the change.
    let (status, page, _) = web
        .post_form(
            "/stories/bulk",
            &[
                ("view", view),
                ("confirm", "1"),
                ("id", &a),
                ("id", &b),
                ("status", "pending_analysis"),
                ("comment", "seen in bulk"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Changed 2 stories."), "{page}");
    for id in [&a, &b] {
        let s = app.story(&own.key, id).await;
        assert_eq!(s["status"], "pending_analysis", "{s}");
        let timeline = s["timeline"].as_array().unwrap();
        assert!(
            timeline
                .iter()
                .any(|e| e["actor"].as_str() == Some(web.username.as_str())),
            "{s}"
        );
        assert!(s["comments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["text"] == "seen in bulk"));
    }
    // Closing without a verdict: the story takes nothing, and the page says why.
    let (_, page, _) = web
        .post_form(
            "/stories/bulk",
            &[
                ("view", view),
                ("confirm", "1"),
                ("id", &a),
                ("status", "closed"),
            ],
        )
        .await;
    assert!(page.contains("took none of the change"), "{page}");
    assert_eq!(app.story(&own.key, &a).await["status"], "pending_analysis");
    // All matching a filter: the confirmation's count must still hold when confirmed.
    let filtered = "/stories?range=90d&status=pending_analysis";
    let (_, page, _) = web
        .post_form(
            "/stories/bulk",
            &[
                ("view", filtered),
                ("all", "1"),
                ("assignee", &web.username.clone()),
            ],
        )
        .await;
    assert!(page.contains("Change 2 stories?"), "{page}");
    let (_, page, _) = web
        .post_form(
            "/stories/bulk",
            &[
                ("view", filtered),
                ("all", "1"),
                ("expect", "3"),
                ("confirm", "1"),
                ("assignee", &web.username.clone()),
            ],
        )
        .await;
    assert!(page.contains("The filters now select 2 stories"), "{page}");
    assert!(app.story(&own.key, &a).await["assignee"].is_null());
    let (_, page, _) = web
        .post_form(
            "/stories/bulk",
            &[
                ("view", filtered),
                ("all", "1"),
                ("expect", "2"),
                ("confirm", "1"),
                ("assignee", &web.username.clone()),
            ],
        )
        .await;
    assert!(page.contains("Changed 2 stories."), "{page}");
    assert_eq!(
        app.story(&own.key, &b).await["assignee"].as_str(),
        Some(web.username.as_str())
    );
    // Nothing chosen, or nothing to change: said, and nothing changes.
    let (status, page, _) = web
        .post_form("/stories/bulk", &[("view", view), ("status", "monitoring")])
        .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("Choose at least one story"), "{page}");
    let (status, page, _) = web
        .post_form("/stories/bulk", &[("view", view), ("id", &a)])
        .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("Nothing to change"), "{page}");
    // A viewer may not, whatever the form says.
    let mut viewer = app
        .signed_in(Some(&own.account), &[Role::StoriesViewer])
        .await;
    let (_, list) = viewer.get("/stories?range=90d").await;
    assert!(
        !list.contains("action=\"/stories/bulk\""),
        "no bulk form for a viewer"
    );
    let (status, page, _) = viewer
        .post_form(
            "/stories/bulk",
            &[
                ("view", view),
                ("id", &a),
                ("confirm", "1"),
                ("status", "monitoring"),
            ],
        )
        .await;
    assert_eq!(status, 403, "{page}");
    assert_eq!(app.story(&own.key, &a).await["status"], "pending_analysis");
}

/// The notice's count: stories created since the list was opened, under its filters.
async fn new_stories_are_counted_since_the_list_opened(web: &mut WebSession, total: usize) {
    let (_, page) = web.get("/stories?range=90d").await;
    let url = between(&page, "<div id=\"new-stories\" hidden data-count=\"", "\"")
        .unwrap()
        .replace("&amp;", "&");
    let (status, body) = web.get(&url).await;
    assert_eq!(status, 200, "{body}");
    let now: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(now["count"], 0, "nothing new since the page was made");
    let since = "2000-01-01T00%3A00%3A00Z";
    let (_, body) = web
        .get(&format!("/stories/count?range=90d&since={since}"))
        .await;
    let all: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(all["count"].as_u64(), Some(total as u64), "{body}");
    let (status, _) = web.get("/stories/count?range=90d&since=yesterday").await;
    assert_eq!(status, 400, "since must be a time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_story_lists_its_file_and_device_kin_and_says_when_saved() {
    let app = spawn_app(40).await;
    let own = tenancy(&app, Licence::Xops).await;
    app.until_backfilled(&own.key, &own.connector, 40).await;
    let stories = app.all_items(&own.key, "/api/v1/stories?from=").await;
    // A story whose device has other stories.
    let story = stories
        .iter()
        .find(|s| {
            stories
                .iter()
                .filter(|o| o["device"]["agent_uuid"] == s["device"]["agent_uuid"])
                .count()
                > 1
        })
        .expect("a device with two stories");
    let id = story["id"].as_str().unwrap();
    let agent = story["device"]["agent_uuid"].as_str().unwrap();
    let kin = stories
        .iter()
        .filter(|o| o["device"]["agent_uuid"].as_str() == Some(agent))
        .count();
    let mut web = app
        .signed_in(Some(&own.account), &[Role::StoriesEditor])
        .await;
    let (_, page) = web.get(&format!("/stories/{id}")).await;
    let related = between(&page, "id=\"related-title\"", "</section>").unwrap();
    let device = between(related, "Same device", "</table>").unwrap();
    assert_eq!(
        device.matches("<tr>").count() - 1,
        kin - 1,
        "every other story of the device"
    );
    assert!(
        device.contains("title=\"criticality, 1 to 10\""),
        "with criticality"
    );
    assert!(
        related.contains("View all stories of this device in the Workbench"),
        "{related}"
    );
    let detail = app.story(&own.key, id).await;
    let r = &detail["related"][0];
    assert!(
        r["criticality"].is_u64() && r["status"].is_string(),
        "{detail}"
    );

    // Saving says so; saving nothing says that.
    let (status, _, location) = web
        .post_form(&format!("/stories/{id}"), &[("status", "monitoring")])
        .await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    assert_eq!(location, format!("/stories/{id}?saved=triage"));
    let (_, page) = web.get(&location).await;
    assert!(
        page.contains("<p class=\"ok\" role=\"status\">Saved."),
        "{page}"
    );
    let (_, _, location) = web
        .post_form(&format!("/stories/{id}"), &[("status", "monitoring")])
        .await;
    let (_, page) = web.get(&location.unwrap()).await;
    assert!(page.contains("Nothing to save"), "{page}");
    let (_, page) = web.get(&format!("/stories/{id}?saved=%3Cscript%3E")).await;
    assert!(!page.contains("class=\"ok\""), "only known words are said");
    app.running.stop().await;
}

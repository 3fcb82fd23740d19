//! The Workbench in a real browser: Debian's headless Chromium, driven through chromedriver,
//! against the real server ingesting from the emulated tenant. Without chromium and
//! chromedriver the test says so loudly (a line starting with SKIPPED, which CI refuses).
//!
//! With `DOSSIER_SCREENSHOTS=<dir>` it also saves the screenshots the README shows.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dossier_domain::access::{Licence, Role};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::spawn_app;

const CHROMIUM: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const CHROMEDRIVER: &[&str] = &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];

struct Driver {
    process: Child,
    /// Chromium's profile directory, removed when the driver is.
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn first_existing(paths: &[&str]) -> Option<String> {
    paths
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(|p| (*p).to_owned())
}

/// Starts chromedriver and a headless Chromium session, or says loudly why it cannot.
async fn browser() -> Option<(Client, Driver)> {
    let (Some(chromium), Some(chromedriver)) =
        (first_existing(CHROMIUM), first_existing(CHROMEDRIVER))
    else {
        // Written past the test harness's capture, so the line shows in every run.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED browser tests: chromium or chromedriver not found (apt-get install chromium chromium-driver)"
        );
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let process = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver { process, profile };
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1440,1000",
                format!("--user-data-dir={}", driver.profile.path().display()),
            ]
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let attempt = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await;
        match attempt {
            Ok(c) => return Some((c, driver)),
            Err(e) if std::time::Instant::now() > deadline => {
                panic!("cannot start a Chromium session through chromedriver: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn screenshot(c: &Client, name: &str) {
    if let Ok(dir) = std::env::var("DOSSIER_SCREENSHOTS") {
        let png = c.screenshot().await.unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(std::path::Path::new(&dir).join(name), png).unwrap();
    }
}

async fn sign_in(c: &Client, base: &str, user: &str, password: &str) {
    c.goto(&format!("{base}/stories")).await.unwrap();
    // Not signed in: the Workbench sends the browser to the sign-in page.
    assert_eq!(c.current_url().await.unwrap().path(), "/login");
    type_into(c, "username", user).await;
    type_into(c, "password", password).await;
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("table.stories"))
        .await
        .unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/stories");
}

async fn texts(c: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in c.find_all(Locator::Css(css)).await.unwrap() {
        out.push(e.text().await.unwrap());
    }
    out
}

async fn body_text(c: &Client) -> String {
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn choose(c: &Client, id: &str, value: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap()
        .select_by_value(value)
        .await
        .unwrap();
}

async fn type_into(c: &Client, id: &str, text: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

/// Clicks what `target` finds and waits until the browser has left the current document.
/// Waiting for an element alone is not enough: the page being left may have one too, and
/// what is found on it goes stale as the new page replaces it.
async fn click_away(c: &Client, target: Locator<'_>) {
    let old = c.find(Locator::Css("html")).await.unwrap();
    c.find(target).await.unwrap().click().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while old.tag_name().await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the click did not lead to another page"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Follows a link and waits for the page to show `then`; returns the new URL's query.
async fn follow(c: &Client, link: Locator<'_>, then: Locator<'_>) -> String {
    click_away(c, link).await;
    c.wait().for_element(then).await.unwrap();
    c.current_url()
        .await
        .unwrap()
        .query()
        .unwrap_or_default()
        .to_owned()
}

async fn submit(c: &Client, css: &str) {
    click_away(c, Locator::Css(css)).await;
    c.wait().for_element(Locator::Css("main")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyst_triages_a_story_in_a_real_browser() {
    let Some((c, _driver)) = browser().await else {
        return;
    };
    let app = spawn_app(400).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    let connector = app.create_connector(&admin).await;
    let cid = connector["id"].as_str().unwrap().to_owned();
    // Enough stories for a second page of 50.
    app.until(120, || async {
        let (_, p) = app
            .call("GET", "/api/v1/stories?limit=60", Some(&admin), None)
            .await;
        p["items"].as_array().unwrap().len() > 50
    })
    .await;
    let (editor, editor_pw) = new_user(&app, &account, "ana", &[Role::StoriesEditor]).await;
    let (viewer, viewer_pw) = new_user(&app, &account, "vic", &[Role::StoriesViewer]).await;
    let base = app.base.clone();

    sign_in(&c, &base, &editor, &editor_pw).await;
    let rows = c
        .find_all(Locator::Css("table.stories tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 50, "a full first page");
    screenshot(&c, "workbench.png").await;

    the_list_sorts_pages_and_filters(&c, &base).await;
    stories_are_chosen_by_range_and_changed_together(&c, &base, &editor).await;
    a_group_expands_in_place(&c, &base).await;
    let story_url = open_and_triage_a_story(&c, &editor).await;
    respond_from_the_story(&c, &app, &admin, &cid, &story_url).await;
    a_viewer_reads_but_cannot_triage(&c, &base, &viewer, &viewer_pw, &story_url).await;

    // Connectors and events pages render for the viewer's roles as the roles allow.
    c.goto(&format!("{base}/events")).await.unwrap();
    c.wait()
        .for_element(Locator::Css("table.events"))
        .await
        .unwrap();
    c.close().await.unwrap();
}

async fn open_story(c: &Client, base: &str, sid: &str) {
    c.goto(&format!("{base}/stories/{sid}")).await.unwrap();
    c.wait()
        .for_element(Locator::Id("story-title"))
        .await
        .unwrap();
}

/// A story of 1,000 incidents and a fileless story, as an analyst sees them: the large one
/// shows its first 50 incidents with a link to the next, its summary counts every incident, and
/// its timeline folds the incidents added; the fileless one shows its storyline and process,
/// not a file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_and_fileless_stories_read_in_a_real_browser() {
    let Some((c, _driver)) = browser().await else {
        return;
    };
    // One device, one file, 1,000 threats.
    let large = spawn_app(1).await;
    crate::large_story::a_thousand_threats_on_one_device(&large);
    let own = crate::web_access::tenancy(&large, Licence::Xops).await;
    large.until_backfilled(&own.key, &own.connector, 1000).await;
    let sid = crate::web_access::first_story(&large, &own.key).await;
    let (viewer, pw) = new_user(&large, &own.account, "vic", &[Role::StoriesViewer]).await;
    sign_in(&c, &large.base, &viewer, &pw).await;
    open_story(&c, &large.base, &sid).await;
    let text = body_text(&c).await;
    assert!(
        text.contains("100 of 1000 incidents not mitigated"),
        "{text}"
    );
    assert!(text.contains("Showing 50 of 1000 incidents"), "{text}");
    screenshot(&c, "story-large.png").await;
    let folded = texts(&c, "table.timeline tbody tr.folded").await.join("\n");
    assert!(folded.contains("1000 incidents added between"), "{folded}");
    assert_eq!(
        c.find_all(Locator::Css("table.incidents tbody tr"))
            .await
            .unwrap()
            .len(),
        50
    );
    c.find(Locator::Css("a[rel=next]")).await.unwrap();
    large.running.stop().await;

    // A tenant whose threats include fileless ones.
    let app = spawn_app(200).await;
    let own = crate::web_access::tenancy(&app, Licence::Xops).await;
    app.until_backfilled(&own.key, &own.connector, 200).await;
    let mut found = None;
    for s in app.all_items(&own.key, "/api/v1/stories").await {
        let sid = s["id"].as_str().unwrap();
        let (_, d) = app
            .call(
                "GET",
                &format!("/api/v1/stories/{sid}"),
                Some(&own.key),
                None,
            )
            .await;
        if crate::story_evidence::is_fileless(&d) {
            found = Some(sid.to_owned());
            break;
        }
    }
    let sid = found.expect("the emulator makes fileless threats");
    let (viewer, pw) = new_user(&app, &own.account, "fay", &[Role::StoriesViewer]).await;
    // A session of the other server is no session here: the sign-in page comes first.
    sign_in(&c, &app.base, &viewer, &pw).await;
    open_story(&c, &app.base, &sid).await;
    let headings = texts(&c, "h2").await;
    assert!(
        headings.iter().any(|h| h == "Storyline and process"),
        "{headings:?}"
    );
    assert!(!headings.iter().any(|h| h == "File"), "{headings:?}");
    screenshot(&c, "story-fileless.png").await;
    c.close().await.unwrap();
    app.running.stop().await;
}

/// The story list: sorting by a header link, the next page, a filter through the form and the
/// "/" key, each kept in the URL.
async fn the_list_sorts_pages_and_filters(c: &Client, base: &str) {
    // Sort by criticality: the header link puts the sort in the URL, highest first.
    let query = follow(
        c,
        Locator::LinkText("Criticality"),
        Locator::Css("table.stories"),
    )
    .await;
    assert!(query.contains("sort=-criticality"), "{query}");
    let crits: Vec<u8> = texts(c, "table.stories tbody td.col-criticality")
        .await
        .iter()
        .map(|t| t.trim().parse().unwrap())
        .collect();
    assert!(crits.windows(2).all(|w| w[0] >= w[1]), "{crits:?}");

    // The next page: a keyset cursor in the URL, and other stories on it.
    let first_page = texts(c, "table.stories tbody td.id").await;
    let query = follow(
        c,
        Locator::Css("a[rel=next]"),
        Locator::Css("table.stories"),
    )
    .await;
    assert!(query.contains("cursor="), "{query}");
    assert!(query.contains("sort=-criticality"), "{query}");
    let second_page = texts(c, "table.stories tbody td.id").await;
    assert!(!second_page.is_empty());
    assert!(second_page.iter().all(|id| !first_page.contains(id)));

    // Filter by a device through the form: every row is that device, and the URL keeps it.
    let device = texts(c, "table.stories tbody td.col-source").await[0].clone();
    c.goto(&format!("{base}/stories")).await.unwrap();
    type_into(c, "device", &device).await;
    submit(c, "form.filters button[type=submit]").await;
    let url = c.current_url().await.unwrap();
    assert!(url.query().unwrap_or_default().contains("device="), "{url}");
    let devices = texts(c, "table.stories tbody td.col-source").await;
    assert!(!devices.is_empty());
    assert!(devices.iter().all(|d| *d == device), "{devices:?}");

    // The keyboard: "/" jumps to the search box.
    let slash = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: '/' })
        .then(KeyAction::Up { value: '/' });
    c.perform_actions(slash).await.unwrap();
    let focused = c.active_element().await.unwrap().attr("id").await.unwrap();
    assert_eq!(focused.as_deref(), Some("q"));
}

/// Stories are chosen by their boxes, a range with shift, and changed together once the
/// confirmation has said how many.
async fn stories_are_chosen_by_range_and_changed_together(c: &Client, base: &str, editor: &str) {
    c.goto(&format!("{base}/stories")).await.unwrap();
    c.wait().for_element(Locator::Id("bulk")).await.unwrap();
    // The total is counted after the page shows, and then replaces "Counting…".
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let total = c
            .find(Locator::Css(".total"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if total.ends_with("stories match")
            && total
                .split(' ')
                .next()
                .is_some_and(|n| n.parse::<u64>().is_ok())
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the total never came: {total:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The default columns fit the 1,440 px window: no horizontal scrolling.
    let fits = c
        .execute(
            "return document.documentElement.scrollWidth <= document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        fits,
        serde_json::Value::Bool(true),
        "the list scrolls sideways at 1,440 px"
    );
    let boxes = c.find_all(Locator::Css("td.pick input")).await.unwrap();
    boxes[1].click().await.unwrap();
    // A click with shift held chooses every box between the last one clicked and this one.
    c.execute(
        "arguments[0].dispatchEvent(new MouseEvent('click', {shiftKey: true, bubbles: true, cancelable: true}));",
        vec![serde_json::to_value(&boxes[4]).unwrap()],
    )
    .await
    .unwrap();
    let mut chosen = Vec::new();
    for (i, b) in boxes.iter().enumerate() {
        if b.prop("checked").await.unwrap().as_deref() == Some("true") {
            chosen.push(i);
        }
    }
    assert_eq!(chosen, vec![1, 2, 3, 4]);
    let said = c
        .find(Locator::Id("bulk-count"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(said, "4 stories chosen");
    choose(c, "bulk-assignee", editor).await;
    submit(c, "fieldset.bulkbar button[type=submit]").await;
    let text = body_text(c).await;
    assert!(text.contains("Change 4 stories?"), "{text}");
    submit(c, "main form button[type=submit]").await;
    let text = body_text(c).await;
    assert!(text.contains("Changed 4 stories."), "{text}");
}

/// A group of the list opens in place with its stories.
async fn a_group_expands_in_place(c: &Client, base: &str) {
    c.goto(&format!("{base}/stories?group=device"))
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("button.expand"))
        .await
        .unwrap();
    c.find(Locator::Css("button.expand"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("tr.group-rows table.stories tbody tr"))
        .await
        .unwrap();
    let rows = c
        .find_all(Locator::Css("tr.group-rows table.stories tbody tr"))
        .await
        .unwrap();
    assert!(!rows.is_empty());
    screenshot(c, "workbench-grouped.png").await;
}

/// Opens the first story of the list and triages it: status, verdict and severity, then a
/// comment, each on the timeline by `editor`. Returns the story's URL.
async fn open_and_triage_a_story(c: &Client, editor: &str) -> String {
    // Open a story.
    follow(
        c,
        Locator::Css("table.stories tbody td.id a"),
        Locator::Id("story-title"),
    )
    .await;
    let story_url = c.current_url().await.unwrap().to_string();
    let text = body_text(c).await;
    for section in [
        "Summary",
        "Device",
        "File",
        "Incidents",
        "Timeline",
        "Raw threat JSON",
    ] {
        assert!(text.contains(section), "the story page shows {section}");
    }

    // Triage: status, verdict and severity, then a comment.
    choose(c, "status", "monitoring").await;
    choose(c, "verdict", "malicious").await;
    choose(c, "severity", "high").await;
    submit(c, "form.actions-form button[type=submit]").await;
    type_into(c, "comment", "Isolated the host; waiting on the owner.").await;
    submit(c, "#comments form button[type=submit]").await;
    let timeline = texts(c, "table.timeline tbody tr").await.join("\n");
    assert!(timeline.contains("to monitoring"), "{timeline}");
    assert!(
        timeline.contains("verdict changed from none to malicious"),
        "{timeline}"
    );
    assert!(
        timeline.contains("severity changed from none to high"),
        "{timeline}"
    );
    assert!(timeline.contains("Isolated the host"), "{timeline}");
    assert!(timeline.contains(editor), "the timeline names who acted");
    let comments = texts(c, "#comments li").await.join("\n");
    assert!(comments.contains("Isolated the host; waiting on the owner."));
    c.goto(&story_url).await.unwrap();
    c.wait()
        .for_element(Locator::Id("story-title"))
        .await
        .unwrap();
    screenshot(c, "story.png").await;
    story_url
}

/// The connector allows response actions: the story's Respond section quarantines its threats
/// after a confirmation that says what it touches, the answer shows per threat, the emulated
/// tenant has done it, and the console's own timeline of a threat, beside the story's, lists it.
async fn respond_from_the_story(
    c: &Client,
    app: &crate::App,
    admin: &str,
    cid: &str,
    story_url: &str,
) {
    let (status, _) = app
        .call(
            "PATCH",
            &format!("/api/v1/connectors/{cid}"),
            Some(admin),
            Some(serde_json::json!({"response": true})),
        )
        .await;
    assert_eq!(status, 200);
    c.goto(story_url).await.unwrap();
    follow(
        c,
        Locator::Id("action-quarantine"),
        Locator::Id("confirm-title"),
    )
    .await;
    let touches = c
        .find(Locator::Id("touches"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        touches.contains("quarantine the threat's file for") && touches.contains(" on 1 device"),
        "{touches}"
    );
    assert!(
        app.tenant.writes().is_empty(),
        "nothing is sent before confirming"
    );
    screenshot(c, "action-confirm.png").await;

    follow(c, Locator::Id("confirm"), Locator::Id("result-title")).await;
    let result = body_text(c).await;
    assert!(result.contains("Done for"), "{result}");
    let answers = texts(c, "table.results tbody tr").await;
    assert!(!answers.is_empty());
    assert!(
        answers
            .iter()
            .all(|a| a.contains("done") && a.contains("affected 1")),
        "{answers:?}"
    );
    screenshot(c, "action-result.png").await;
    let threat = answers[0].split_whitespace().next().unwrap().to_owned();
    assert_eq!(
        app.tenant.threat(&threat).unwrap()["mitigationStatus"][0]["action"],
        "quarantine",
        "the tenant quarantined it"
    );

    c.goto(story_url).await.unwrap();
    let timeline = texts(c, "table.timeline tbody tr").await.join("\n");
    assert!(timeline.contains("quarantine: SentinelOne"), "{timeline}");
    follow(
        c,
        Locator::Css(&format!("a.vendor-notes[href*='vendor={threat}']")),
        Locator::Id("vendor-title"),
    )
    .await;
    let console = texts(c, "table.vendor-timeline tbody tr").await.join("\n");
    assert!(console.contains("issued a quarantine command"), "{console}");
    screenshot(c, "story-console-timeline.png").await;
}

/// Signs out; a viewer reads the same story but gets no triage form.
async fn a_viewer_reads_but_cannot_triage(
    c: &Client,
    base: &str,
    viewer: &str,
    password: &str,
    story_url: &str,
) {
    // Sign out; a viewer reads the same story but gets no triage form.
    submit(c, "header form button[type=submit]").await;
    assert_eq!(c.current_url().await.unwrap().path(), "/login");
    sign_in(c, base, viewer, password).await;
    c.goto(story_url).await.unwrap();
    c.wait()
        .for_element(Locator::Id("story-title"))
        .await
        .unwrap();
    assert!(c
        .find_all(Locator::Css("form.actions-form"))
        .await
        .unwrap()
        .is_empty());
    assert!(c.find_all(Locator::Id("comment")).await.unwrap().is_empty());
    assert!(body_text(c)
        .await
        .contains("You can read this story but not act on it"));
}

async fn new_user(app: &crate::App, account: &str, name: &str, roles: &[Role]) -> (String, String) {
    let password = dossier_server::passwords::generate();
    let rec = dossier_server::passwords::new_user(
        name,
        &password,
        roles.to_vec(),
        Some(account.to_owned()),
    )
    .unwrap();
    app.state.store.create_user(&rec).await.unwrap();
    (name.to_owned(), password)
}

//! The web UI over plain HTTP: roles × pages × own and foreign account, and licences.

use dossier_domain::access::{Licence, Permissions, Role};
use serde_json::Value;

use crate::web_client::{between, table_rows, Posted};
use crate::{spawn_app, App};

pub(crate) const THREATS: u64 = 30;

/// An account with an admin API key and a connector to the tenant (see `until_backfilled`).
pub(crate) struct Tenancy {
    pub(crate) account: String,
    pub(crate) key: String,
    pub(crate) connector: String,
}

pub(crate) async fn tenancy(app: &App, licence: Licence) -> Tenancy {
    let account = app.account(licence).await;
    let key = app.key(Some(&account), &[Role::Admin]).await;
    let connector = app.create_connector(&key).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Tenancy {
        account,
        key,
        connector,
    }
}

/// The newest story of the key's account.
pub(crate) async fn first_story(app: &App, key: &str) -> String {
    let (status, p) = app
        .call("GET", "/api/v1/stories?limit=1", Some(key), None)
        .await;
    assert_eq!(status, 200, "{p}");
    p["items"][0]["id"].as_str().unwrap().to_owned()
}

pub(crate) fn status_of(story: &Value) -> String {
    story["status"].as_str().unwrap().to_owned()
}

/// A status other than the story's, so that a form post is a real change.
pub(crate) fn other_status(current: &str) -> &'static str {
    if current == "monitoring" {
        "pending_analysis"
    } else {
        "monitoring"
    }
}

pub(crate) fn comments_by(story: &Value, author: &str) -> usize {
    story["comments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["author"] == author)
        .count()
}

/// The id of the key's account's connector of that name.
pub(crate) async fn connector_named(app: &App, key: &str, name: &str) -> Option<String> {
    let (status, list) = app.call("GET", "/api/v1/connectors", Some(key), None).await;
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .map(|c| c["id"].as_str().unwrap().to_owned())
}

pub(crate) async fn connector_name(app: &App, key: &str, id: &str) -> Option<String> {
    let (status, c) = app
        .call("GET", &format!("/api/v1/connectors/{id}"), Some(key), None)
        .await;
    (status == 200).then(|| c["name"].as_str().unwrap().to_owned())
}

/// Records what each check saw, so that one run reports every wrong answer at once.
#[derive(Default)]
struct Tally {
    checked: usize,
    failures: Vec<String>,
}

impl Tally {
    /// Allowed: a page is 200, a form is 303 to `to`. Denied: 403 or 404.
    fn expect(&mut self, who: &str, what: &str, allowed: bool, got: &Posted, to: Option<&str>) {
        self.checked += 1;
        let (status, body, location) = got;
        let ok = if allowed {
            match to {
                None => *status == 200,
                Some(to) => *status == 303 && location.as_deref() == Some(to),
            }
        } else {
            *status == 403 || *status == 404
        };
        if !ok {
            let excerpt: String = between(body, "role=\"alert\">", "<")
                .or_else(|| between(body, "role=\"status\">", "<"))
                .unwrap_or_default()
                .chars()
                .take(160)
                .collect();
            self.failures.push(format!(
                "{who}: {what}: expected {}, got {status} (Location {location:?}) {excerpt}",
                if allowed { "allowed" } else { "denied" }
            ));
        }
    }

    fn fail(&mut self, msg: String) {
        self.failures.push(msg);
    }
}

fn denied(got: &Posted) -> bool {
    got.0 == 403 || got.0 == 404
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_roles_and_accounts_are_enforced_on_every_page() {
    let app = spawn_app(usize::try_from(THREATS).unwrap()).await;
    let own = tenancy(&app, Licence::Xops).await;
    let foreign = tenancy(&app, Licence::Xops).await;
    app.until_backfilled(&own.key, &own.connector, THREATS)
        .await;
    app.until_backfilled(&foreign.key, &foreign.connector, THREATS)
        .await;
    let sid = first_story(&app, &own.key).await;
    let fsid = first_story(&app, &foreign.key).await;
    let (cid, fcid) = (own.connector.clone(), foreign.connector.clone());
    let (_, c) = app
        .call(
            "GET",
            &format!("/api/v1/connectors/{cid}"),
            Some(&own.key),
            None,
        )
        .await;
    let tenant_url = c["tenant_url"].as_str().unwrap().to_owned();
    let other_url = app.other_sim.base_url.clone();
    // Strings whose appearance on a page of the own account would be a leak.
    let foreign_marks = [fsid.clone(), fcid.clone(), foreign.account.clone()];

    let roles = [
        Role::Admin,
        Role::Operator,
        Role::StoriesEditor,
        Role::StoriesViewer,
        Role::IntegrationsEditor,
        Role::IntegrationsViewer,
    ];
    let mut t = Tally::default();
    let mut cross_account = 0usize;
    let mut foreign_checks = 0usize;
    let mut operator_name = String::new();
    for role in roles {
        let operator = role == Role::Operator;
        let account = (!operator).then_some(own.account.as_str());
        let mut web = app.signed_in(account, &[role]).await;
        let me = web.username.clone();
        if operator {
            operator_name.clone_from(&me);
        }
        let who = format!("{} ({me})", role.as_str());
        let p = Permissions::of(&[role]);
        let admin = role == Role::Admin || operator;
        let mut lists: Vec<(String, String)> = Vec::new();

        // Stories.
        let r = web.get_with_location("/stories").await;
        t.expect(&who, "GET /stories", p.view_stories, &r, None);
        lists.push(("/stories".into(), r.1));
        let r = web.get_with_location(&format!("/stories/{sid}")).await;
        t.expect(&who, "GET own story", p.view_stories, &r, None);

        let before = status_of(&app.story(&own.key, &sid).await);
        let target = other_status(&before);
        let r = web
            .post_form(
                &format!("/stories/{sid}"),
                &[("status", target), ("verdict", ""), ("severity", "")],
            )
            .await;
        let to = format!("/stories/{sid}");
        t.expect(&who, "POST own story", p.edit_stories, &r, Some(&to));
        let after = status_of(&app.story(&own.key, &sid).await);
        let want = if p.edit_stories { target } else { &before };
        if after != want {
            t.fail(format!(
                "{who}: own story status is {after}, expected {want}"
            ));
        }

        let text = format!("hi from {me}");
        let r = web
            .post_form(&format!("/stories/{sid}/comments"), &[("text", &text)])
            .await;
        let to = format!("/stories/{sid}#comments");
        t.expect(&who, "POST own comment", p.edit_stories, &r, Some(&to));
        let n = comments_by(&app.story(&own.key, &sid).await, &me);
        if n != usize::from(p.edit_stories) {
            t.fail(format!("{who}: {n} comments of theirs on the own story"));
        }

        // Connectors.
        let r = web.get_with_location("/connectors").await;
        t.expect(&who, "GET /connectors", p.view_integrations, &r, None);
        lists.push(("/connectors".into(), r.1));
        let r = web.get_with_location("/connectors/new").await;
        t.expect(&who, "GET /connectors/new", p.edit_integrations, &r, None);
        let r = web.get_with_location(&format!("/connectors/{cid}")).await;
        t.expect(&who, "GET own connector", p.edit_integrations, &r, None);

        let before = connector_name(&app, &own.key, &cid).await.unwrap();
        let name = format!("renamed by {me}");
        let r = web
            .post_form(
                &format!("/connectors/{cid}"),
                &[
                    ("name", &name),
                    ("description", ""),
                    ("tenant_url", &tenant_url),
                    ("api_token", ""),
                    ("track_errors", "1"),
                ],
            )
            .await;
        t.expect(
            &who,
            "POST own connector",
            p.edit_integrations,
            &r,
            Some("/connectors"),
        );
        let after = connector_name(&app, &own.key, &cid).await.unwrap();
        let want = if p.edit_integrations { &name } else { &before };
        if &after != want {
            t.fail(format!(
                "{who}: own connector is named {after:?}, expected {want:?}"
            ));
        }

        // Create a connector, then delete it: the one this role made, or else the main one
        // (which must survive the attempt).
        let throwaway = format!("throwaway of {me}");
        let mut create = vec![
            ("name", throwaway.as_str()),
            ("description", ""),
            ("tenant_url", other_url.as_str()),
            ("api_token", crate::TOKEN),
            ("track_errors", "1"),
        ];
        if operator {
            create.push(("account_id", own.account.as_str()));
        }
        let r = web.post_form("/connectors", &create).await;
        t.expect(
            &who,
            "POST /connectors (create)",
            p.edit_integrations,
            &r,
            Some("/connectors"),
        );
        let made = connector_named(&app, &own.key, &throwaway).await;
        if made.is_some() != p.edit_integrations {
            t.fail(format!("{who}: connector created: {}", made.is_some()));
        }
        let victim = made.unwrap_or_else(|| cid.clone());
        let r = web
            .post_form(&format!("/connectors/{victim}/delete"), &[])
            .await;
        t.expect(
            &who,
            "POST own connector delete",
            p.edit_integrations,
            &r,
            Some("/connectors"),
        );
        let exists = connector_name(&app, &own.key, &victim).await.is_some();
        if exists == p.edit_integrations {
            t.fail(format!(
                "{who}: connector {victim} exists after delete: {exists}"
            ));
        }

        // Events, for every role.
        let r = web.get_with_location("/events").await;
        t.expect(&who, "GET /events", true, &r, None);
        lists.push(("/events".into(), r.1));
        let r = web.get_with_location("/events.csv").await;
        t.expect(&who, "GET /events.csv", true, &r, None);
        lists.push(("/events.csv".into(), r.1));

        // Users and the audit log: admins and operators.
        let r = web.get_with_location("/users").await;
        t.expect(&who, "GET /users", admin, &r, None);
        lists.push(("/users".into(), r.1));
        let r = web.get_with_location("/audit").await;
        t.expect(&who, "GET /audit", admin, &r, None);
        lists.push(("/audit".into(), r.1));

        // The foreign account: only the operator reads or writes it. For everyone else, any
        // answer but 403 or 404, and any change seen through the foreign admin's key, counts
        // as a cross-account success.
        let mut foreign_result =
            |t: &mut Tally, what: &str, r: &Posted, to: Option<&str>, changed: bool| {
                foreign_checks += 1;
                if operator {
                    t.expect(&who, what, true, r, to);
                } else {
                    t.expect(&who, what, false, r, to);
                    if !denied(r) || changed {
                        cross_account += 1;
                        if changed {
                            t.fail(format!("{who}: {what}: the foreign account changed"));
                        }
                    }
                }
            };
        let r = web.get_with_location(&format!("/stories/{fsid}")).await;
        foreign_result(&mut t, "GET foreign story", &r, None, false);

        let before = status_of(&app.story(&foreign.key, &fsid).await);
        let target = other_status(&before);
        let r = web
            .post_form(
                &format!("/stories/{fsid}"),
                &[("status", target), ("verdict", ""), ("severity", "")],
            )
            .await;
        let after = status_of(&app.story(&foreign.key, &fsid).await);
        let to = format!("/stories/{fsid}");
        foreign_result(
            &mut t,
            "POST foreign story",
            &r,
            Some(&to),
            after != before && !operator,
        );
        if operator && after != target {
            t.fail(format!(
                "{who}: foreign story status {after}, expected {target}"
            ));
        }

        let r = web
            .post_form(&format!("/stories/{fsid}/comments"), &[("text", &text)])
            .await;
        let n = comments_by(&app.story(&foreign.key, &fsid).await, &me);
        let to = format!("/stories/{fsid}#comments");
        foreign_result(
            &mut t,
            "POST foreign comment",
            &r,
            Some(&to),
            n > 0 && !operator,
        );
        if operator && n != 1 {
            t.fail(format!("{who}: {n} comments on the foreign story"));
        }

        let r = web.get_with_location(&format!("/connectors/{fcid}")).await;
        foreign_result(&mut t, "GET foreign connector", &r, None, false);

        let before = connector_name(&app, &foreign.key, &fcid).await.unwrap();
        let r = web
            .post_form(
                &format!("/connectors/{fcid}"),
                &[
                    ("name", &name),
                    ("description", ""),
                    ("tenant_url", &tenant_url),
                    ("api_token", ""),
                    ("track_errors", "1"),
                ],
            )
            .await;
        let after = connector_name(&app, &foreign.key, &fcid).await.unwrap();
        foreign_result(
            &mut t,
            "POST foreign connector",
            &r,
            Some("/connectors"),
            after != before && !operator,
        );
        if operator && after != name {
            t.fail(format!("{who}: foreign connector named {after:?}"));
        }

        // Creating a connector in the foreign account.
        let mut create = create.clone();
        create.retain(|(k, _)| *k != "account_id");
        create.push(("account_id", foreign.account.as_str()));
        let r = web.post_form("/connectors", &create).await;
        let made = connector_named(&app, &foreign.key, &throwaway).await;
        foreign_result(
            &mut t,
            "POST /connectors into the foreign account",
            &r,
            Some("/connectors"),
            made.is_some() && !operator,
        );
        if operator && made.is_none() {
            t.fail(format!("{who}: no connector made in the foreign account"));
        }
        // The operator deletes what it made there; the others try the foreign connector.
        let victim = made.unwrap_or_else(|| fcid.clone());
        let r = web
            .post_form(&format!("/connectors/{victim}/delete"), &[])
            .await;
        let exists = connector_name(&app, &foreign.key, &victim).await.is_some();
        foreign_result(
            &mut t,
            "POST foreign connector delete",
            &r,
            Some("/connectors"),
            !exists && !operator,
        );
        if operator && exists {
            t.fail(format!("{who}: foreign connector {victim} not deleted"));
        }

        // Naming the foreign account, or its connector and story, in a filter.
        let r = web
            .get_with_location(&format!("/stories?account={}", foreign.account))
            .await;
        foreign_result(&mut t, "GET /stories?account=foreign", &r, None, false);
        for path in [
            format!("/events.csv?connector_id={fcid}"),
            format!("/events.csv?story_id={fsid}"),
            format!("/events?story_id={fsid}"),
        ] {
            let r = web.get_with_location(&path).await;
            foreign_checks += 1;
            t.checked += 1;
            if r.0 != 200 {
                t.fail(format!("{who}: GET {path}: {}", r.0));
            }
            lists.push((path, r.1));
        }

        // No page of the own account shows the foreign account's story, connector or id.
        if !operator {
            for (path, body) in &lists {
                // The filter echoes the story id it was given; the events must not show it.
                let body = if path.starts_with("/events?story_id=") {
                    body.rsplit("</form>").next().unwrap_or_default()
                } else if path.starts_with("/events.csv?") {
                    body.split_once('\n').map_or("", |(_, rows)| rows)
                } else {
                    body.as_str()
                };
                for mark in &foreign_marks {
                    if body.contains(mark.as_str()) {
                        cross_account += 1;
                        t.fail(format!("{who}: {path} shows the foreign {mark}"));
                    }
                }
            }
        }
    }
    println!(
        "web matrix: {} checks, {foreign_checks} on the foreign account, {cross_account} cross-account successes",
        t.checked
    );
    assert!(
        t.failures.is_empty(),
        "{} wrong answers:\n{}",
        t.failures.len(),
        t.failures.join("\n")
    );
    assert_eq!(cross_account, 0, "cross-account reads or writes");
    assert!(t.checked >= 6 * 25, "{} checks", t.checked);
    // The operator renamed the foreign connector; nobody after it did.
    assert_eq!(
        connector_name(&app, &foreign.key, &fcid).await,
        Some(format!("renamed by {operator_name}"))
    );
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_licences_gate_stories_but_not_events() {
    let app = spawn_app(10).await;
    let none = tenancy(&app, Licence::None).await;
    let mdr = tenancy(&app, Licence::Mdr).await;
    app.until_backfilled(&none.key, &none.connector, 10).await;
    app.until_backfilled(&mdr.key, &mdr.connector, 10).await;

    // No licence: no stories, but the events.
    let mut web = app.signed_in(Some(&none.account), &[Role::Admin]).await;
    let (status, body) = web.get("/stories").await;
    assert_eq!(status, 403, "{body}");
    let notice = between(&body, "role=\"status\">", "<").unwrap_or_default();
    assert!(notice.contains("licence"), "{notice}");
    let (status, body) = web.get("/events").await;
    assert_eq!(status, 200);
    let rows = table_rows(&body, "<table class=\"events\">");
    assert!(
        rows.iter().any(|r| r.contains("<td>incident created</td>")),
        "events are listed: {body}"
    );

    // mdr: the account reads its stories and does not act on them, not even its admin.
    let sid = first_story(&app, &mdr.key).await;
    for role in [Role::Admin, Role::StoriesEditor] {
        let mut web = app.signed_in(Some(&mdr.account), &[role]).await;
        let (status, body) = web.get("/stories").await;
        assert_eq!(status, 200, "{role:?}");
        assert!(body.contains(&format!("href=\"/stories/{sid}\"")));
        let (status, body) = web.get(&format!("/stories/{sid}")).await;
        assert_eq!(status, 200, "{role:?}");
        assert!(body.contains("You can read this story but not act on it"));
        assert!(body.contains("mdr licence"));
        assert!(!body.contains("class=\"actions-form\""), "no triage form");
        let before = status_of(&app.story(&mdr.key, &sid).await);
        let (status, body, _) = web
            .post_form(
                &format!("/stories/{sid}"),
                &[
                    ("status", other_status(&before)),
                    ("verdict", ""),
                    ("severity", ""),
                ],
            )
            .await;
        assert_eq!(status, 403, "{role:?}: {body}");
        assert!(body.contains("mdr"), "{body}");
        let (status, body, _) = web
            .post_form(&format!("/stories/{sid}/comments"), &[("text", "hi")])
            .await;
        assert_eq!(status, 403, "{role:?}: {body}");
        let story = app.story(&mdr.key, &sid).await;
        assert_eq!(status_of(&story), before);
        assert!(story["comments"].as_array().unwrap().is_empty());
        let (status, _) = web.get("/events").await;
        assert_eq!(status, 200);
    }
    // The provider's operator acts on them.
    let mut op = app.signed_in(None, &[Role::Operator]).await;
    let (status, _, to) = op
        .post_form(
            &format!("/stories/{sid}"),
            &[("status", "monitoring"), ("verdict", ""), ("severity", "")],
        )
        .await;
    assert_eq!(
        (status, to.as_deref()),
        (303, Some(format!("/stories/{sid}").as_str()))
    );
    assert_eq!(status_of(&app.story(&mdr.key, &sid).await), "monitoring");
    app.running.stop().await;
}

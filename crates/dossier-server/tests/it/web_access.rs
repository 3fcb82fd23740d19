//! The web UI over plain HTTP: roles × pages × own and foreign account, licences, sign-in and
//! sessions, CSRF, the analyst's forms, the story list's URL and the events export.

use std::collections::BTreeSet;

use chrono::{SecondsFormat, Utc};
use dossier_domain::access::{Licence, Permissions, Role};
use serde_json::Value;

use crate::web_client::{
    between, content_type, cookie_attributes, cookie_value, session_set_cookie, table_rows, Csrf,
    Headers, Posted, WebSession,
};
use crate::{spawn_app, App};

const THREATS: u64 = 30;

/// An account with an admin API key and a connector to the tenant (see `until_backfilled`).
struct Tenancy {
    account: String,
    key: String,
    connector: String,
}

async fn tenancy(app: &App, licence: Licence) -> Tenancy {
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
async fn first_story(app: &App, key: &str) -> String {
    let (status, p) = app
        .call("GET", "/api/v1/stories?limit=1", Some(key), None)
        .await;
    assert_eq!(status, 200, "{p}");
    p["items"][0]["id"].as_str().unwrap().to_owned()
}

fn status_of(story: &Value) -> String {
    story["status"].as_str().unwrap().to_owned()
}

/// A status other than the story's, so that a form post is a real change.
fn other_status(current: &str) -> &'static str {
    if current == "monitoring" {
        "pending_analysis"
    } else {
        "monitoring"
    }
}

fn comments_by(story: &Value, author: &str) -> usize {
    story["comments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["author"] == author)
        .count()
}

/// The id of the key's account's connector of that name.
async fn connector_named(app: &App, key: &str, name: &str) -> Option<String> {
    let (status, list) = app.call("GET", "/api/v1/connectors", Some(key), None).await;
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .map(|c| c["id"].as_str().unwrap().to_owned())
}

async fn connector_name(app: &App, key: &str, id: &str) -> Option<String> {
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
    let app = spawn_app(THREATS as usize).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_sign_in_refuses_wrong_passwords_and_limits_attempts() {
    let app = spawn_app(1).await;
    let account = app.account(Licence::Xops).await;
    let (user, password) = app.user(Some(&account), &[Role::StoriesViewer]).await;

    let resp = app.login(&user, "wrong-password-123", None, &[]).await;
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers().get("set-cookie").is_none());
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("Wrong username or password."));
    let resp = app.login("nobody-here", &password, None, &[]).await;
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers().get("set-cookie").is_none());
    // Case and spaces in the name do not matter.
    let resp = app
        .login(&format!(" {} ", user.to_uppercase()), &password, None, &[])
        .await;
    assert_eq!(resp.status().as_u16(), 303);

    // Four failures, then the right password: still in.
    let (near, near_pw) = app.user(Some(&account), &[Role::StoriesViewer]).await;
    for _ in 0..4 {
        let resp = app.login(&near, "not-the-password", None, &[]).await;
        assert_eq!(resp.status().as_u16(), 401);
    }
    let resp = app.login(&near, &near_pw, None, &[]).await;
    assert_eq!(resp.status().as_u16(), 303);
    assert!(session_set_cookie(resp.headers()).is_some());

    // Five failures: even the right password is refused, and no session is made.
    let (victim, victim_pw) = app.user(Some(&account), &[Role::StoriesViewer]).await;
    for _ in 0..5 {
        let resp = app.login(&victim, "not-the-password", None, &[]).await;
        assert_eq!(resp.status().as_u16(), 401);
    }
    let resp = app.login(&victim, &victim_pw, None, &[]).await;
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().get("set-cookie").is_none());
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("Too many failed sign-ins"));
    // The limit is per user name: others still sign in from the same address.
    let resp = app.login(&user, &password, None, &[]).await;
    assert_eq!(resp.status().as_u16(), 303);
    // And per address: failing on purpose from elsewhere does not lock the user out.
    let elsewhere = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let resp = elsewhere
        .post(format!("{}/login", app.base))
        .form(&[
            ("username", victim.as_str()),
            ("password", victim_pw.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        303,
        "the victim signs in from another address"
    );
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_session_cookie_and_redirects() {
    let app = spawn_app(1).await;
    let account = app.account(Licence::Xops).await;
    let (user, password) = app.user(Some(&account), &[Role::Admin]).await;

    // Over plain HTTP: HttpOnly, SameSite=Lax, Path=/, and not Secure.
    let resp = app.login(&user, &password, None, &[]).await;
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(
        crate::web_client::location(resp.headers()).as_deref(),
        Some("/stories")
    );
    let set = session_set_cookie(resp.headers()).unwrap();
    let attrs = cookie_attributes(&set);
    for want in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(attrs.iter().any(|a| a == want), "{want} in {set}");
    }
    assert!(
        !attrs.iter().any(|a| a.eq_ignore_ascii_case("secure")),
        "{set}"
    );
    let value = cookie_value(&set);
    assert!(value.len() >= 43, "256 random bits: {value}");
    // Behind a TLS-terminating proxy: Secure as well.
    let resp = app
        .login(&user, &password, None, &[("X-Forwarded-Proto", "https")])
        .await;
    assert_eq!(resp.status().as_u16(), 303);
    let set_tls = session_set_cookie(resp.headers()).unwrap();
    let attrs = cookie_attributes(&set_tls);
    assert!(attrs.iter().any(|a| a == "Secure"), "{set_tls}");
    assert!(attrs.iter().any(|a| a == "HttpOnly"), "{set_tls}");
    assert_ne!(
        cookie_value(&set_tls),
        value,
        "each sign-in has its own session"
    );

    // The cookie opens the pages; none, or a forged one, leads to the sign-in.
    let web = WebSession::with_cookie(&app, &value);
    let resp = web.get_response("/stories").await;
    assert_eq!(resp.status().as_u16(), 200);
    // Signed-in pages are neither framed nor cached, and load nothing from elsewhere.
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"));
    assert!(header("content-security-policy").contains("form-action 'self'"));
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("cache-control"), "no-store");
    assert!(resp.text().await.unwrap().contains(&user));
    let resp = crate::web_client::no_redirects()
        .get(format!("{}/stories", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303, "no cookie at all");
    assert_eq!(
        crate::web_client::location(resp.headers()).as_deref(),
        Some("/login?next=%2Fstories")
    );
    for cookie in ["", "forged-cookie-value"] {
        let mut anon = WebSession::with_cookie(&app, cookie);
        let (status, _, to) = anon.get_with_location("/stories").await;
        assert_eq!(status, 303);
        assert_eq!(to.as_deref(), Some("/login?next=%2Fstories"));
    }
    let resp = app
        .http
        .get(format!("{}/stories?status=open", app.base))
        .send()
        .await
        .unwrap();
    // reqwest follows the redirect to the sign-in page, which keeps where to go next.
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.url().path(), "/login");
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("name=\"next\" value=\"/stories?status=open\""),
        "{page}"
    );

    // Where a sign-in may lead: only paths of this site.
    for (next, to) in [
        ("/events", "/events"),
        (
            "/stories?status=open&sort=-criticality",
            "/stories?status=open&sort=-criticality",
        ),
        ("//evil.example", "/stories"),
        ("//evil.example/stories", "/stories"),
        ("https://evil.example/", "/stories"),
        ("/\\evil.example", "/stories"),
        ("", "/stories"),
    ] {
        let resp = app.login(&user, &password, Some(next), &[]).await;
        assert_eq!(resp.status().as_u16(), 303, "next={next}");
        assert_eq!(
            crate::web_client::location(resp.headers()).as_deref(),
            Some(to),
            "next={next}"
        );
    }
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_sign_out_ends_the_session() {
    let app = spawn_app(1).await;
    let account = app.account(Licence::Xops).await;
    let mut web = app.signed_in(Some(&account), &[Role::Admin]).await;
    let mut other = app.signed_in(Some(&account), &[Role::Admin]).await;
    let (status, _) = web.get("/stories").await;
    assert_eq!(status, 200);

    // Without the token, or with another session's, signing out is refused.
    let (status, _, _) = web.post_form_with("/logout", &[], Csrf::Missing, &[]).await;
    assert_eq!(status, 403);
    let other_token = other.csrf().await;
    let (status, _, _) = web
        .post_form_with("/logout", &[], Csrf::Value(&other_token), &[])
        .await;
    assert_eq!(status, 403);
    assert_eq!(web.get("/stories").await.0, 200, "still signed in");

    let token = web.csrf().await;
    let resp = web
        .http
        .post(format!("{}/logout", app.base))
        .header("cookie", format!("dossier_session={}", web.cookie))
        .form(&[("_csrf", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(
        crate::web_client::location(resp.headers()).as_deref(),
        Some("/login")
    );
    let cleared = session_set_cookie(resp.headers()).unwrap();
    assert_eq!(cookie_value(&cleared), "");
    assert!(
        cookie_attributes(&cleared).iter().any(|a| a == "Max-Age=0"),
        "{cleared}"
    );

    // The old cookie no longer opens anything, even if the browser kept it.
    let (status, _, to) = web.get_with_location("/stories").await;
    assert_eq!(
        (status, to.as_deref()),
        (303, Some("/login?next=%2Fstories"))
    );
    let (status, _, to) = web.post_form("/logout", &[]).await;
    assert_eq!(status, 303);
    assert!(to.unwrap().starts_with("/login"));
    // The other session is untouched.
    assert_eq!(other.get("/stories").await.0, 200);
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_forms_need_the_session_token_and_this_site() {
    let app = spawn_app(5).await;
    let own = tenancy(&app, Licence::Xops).await;
    app.until_backfilled(&own.key, &own.connector, 5).await;
    let sid = first_story(&app, &own.key).await;
    let mut web = app
        .signed_in(Some(&own.account), &[Role::StoriesEditor])
        .await;
    let mut other = app
        .signed_in(Some(&own.account), &[Role::StoriesEditor])
        .await;
    let (status, page) = web.get(&format!("/stories/{sid}")).await;
    assert_eq!(status, 200);
    let token = crate::web_client::csrf_of(&page).unwrap();
    let other_token = other.csrf().await;
    assert_ne!(token, other_token, "each session has its own token");
    let before = app.story(&own.key, &sid).await;
    assert_eq!(status_of(&before), "open");

    let path = format!("/stories/{sid}");
    let form = [("status", "monitoring"), ("verdict", ""), ("severity", "")];
    let mut wrong_token = token.clone();
    wrong_token.pop();
    wrong_token.push(if token.ends_with('A') { 'B' } else { 'A' });
    let evil_origin: Headers = &[("Origin", "http://evil.example")];
    let cross_site: Headers = &[("Sec-Fetch-Site", "cross-site")];
    let same_site: Headers = &[("Sec-Fetch-Site", "same-site")];
    let cases: [(&str, Csrf, Headers); 7] = [
        ("no token", Csrf::Missing, &[]),
        ("an empty token", Csrf::Value(""), &[]),
        ("a wrong token", Csrf::Value(&wrong_token), &[]),
        ("another session's token", Csrf::Value(&other_token), &[]),
        ("Origin: http://evil.example", Csrf::Session, evil_origin),
        ("Sec-Fetch-Site: cross-site", Csrf::Session, cross_site),
        ("Sec-Fetch-Site: same-site", Csrf::Session, same_site),
    ];
    for (what, csrf, headers) in cases {
        let (status, body, _) = web.post_form_with(&path, &form, csrf, headers).await;
        assert_eq!(status, 403, "{what}: {body}");
        let (status, _, _) = web
            .post_form_with(
                &format!("{path}/comments"),
                &[("text", "sneaky")],
                csrf,
                headers,
            )
            .await;
        assert_eq!(status, 403, "comment with {what}");
    }
    let after = app.story(&own.key, &sid).await;
    assert_eq!(status_of(&after), "open", "the story is unchanged");
    assert_eq!(after["timeline"], before["timeline"]);
    assert!(after["comments"].as_array().unwrap().is_empty());

    // The sign-in form is guarded too.
    let (user, password) = app.user(Some(&own.account), &[Role::StoriesViewer]).await;
    let resp = app.login(&user, &password, None, evil_origin).await;
    assert_eq!(resp.status().as_u16(), 403);
    assert!(session_set_cookie(resp.headers()).is_none());

    // The same form from this site, as a browser sends it: accepted.
    let origin = app.base.clone();
    let (status, _, to) = web
        .post_form_with(
            &path,
            &form,
            Csrf::Session,
            &[("Origin", &origin), ("Sec-Fetch-Site", "same-origin")],
        )
        .await;
    assert_eq!((status, to.as_deref()), (303, Some(path.as_str())));
    assert_eq!(status_of(&app.story(&own.key, &sid).await), "monitoring");
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_analyst_workflow_through_the_forms() {
    let app = spawn_app(10).await;
    let own = tenancy(&app, Licence::Xops).await;
    app.until_backfilled(&own.key, &own.connector, 10).await;
    let stories = app.all_items(&own.key, "/api/v1/stories").await;
    assert!(stories.len() >= 2, "two stories to work on");
    let sid = stories[0]["id"].as_str().unwrap().to_owned();
    let sid2 = stories[1]["id"].as_str().unwrap().to_owned();
    let mut web = app
        .signed_in(Some(&own.account), &[Role::StoriesEditor])
        .await;
    let me = web.username.clone();
    let path = format!("/stories/{sid}");

    // The page offers the triage form and the comment form.
    let (status, page) = web.get(&path).await;
    assert_eq!(status, 200);
    assert!(page.contains("class=\"actions-form\""));
    assert!(page.contains(&format!("action=\"/stories/{sid}/comments\"")));

    let (status, body, to) = web
        .post_form(
            &path,
            &[
                ("status", "pending_analysis"),
                ("verdict", ""),
                ("severity", ""),
            ],
        )
        .await;
    assert_eq!(
        (status, to.as_deref()),
        (303, Some(path.as_str())),
        "{body}"
    );
    let (status, body, to) = web
        .post_form(
            &path,
            &[
                ("status", "pending_analysis"),
                ("verdict", "malicious"),
                ("severity", "high"),
            ],
        )
        .await;
    assert_eq!(
        (status, to.as_deref()),
        (303, Some(path.as_str())),
        "{body}"
    );
    let s = app.story(&own.key, &sid).await;
    assert_eq!(
        (
            s["status"].as_str(),
            s["verdict"].as_str(),
            s["severity"].as_str()
        ),
        (Some("pending_analysis"), Some("malicious"), Some("high"))
    );

    let (status, page) = web.get(&path).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<dt>Status</dt><dd>pending analysis</dd>"),
        "{page}"
    );
    assert!(page.contains("<dt>Verdict</dt><dd>malicious</dd>"));
    assert!(page.contains("<dt>Severity</dt><dd>high</dd>"));
    let timeline = table_rows(&page, "<table class=\"timeline\">");
    for kind in ["status changed", "verdict changed", "severity changed"] {
        let row = timeline
            .iter()
            .find(|r| r.contains(&format!("<td>{kind}</td>")))
            .unwrap_or_else(|| panic!("{kind} in the timeline: {timeline:#?}"));
        assert!(
            row.contains(&format!("<td>{me}</td>")),
            "{kind} by {me}: {row}"
        );
    }
    // Each change was recorded once: saving the form again changes nothing.
    let count = |rows: &[String], kind: &str| {
        rows.iter()
            .filter(|r| r.contains(&format!("<td>{kind}</td>")))
            .count()
    };
    let (status, _, _) = web
        .post_form(
            &path,
            &[
                ("status", "pending_analysis"),
                ("verdict", "malicious"),
                ("severity", "high"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (_, page) = web.get(&path).await;
    let again = table_rows(&page, "<table class=\"timeline\">");
    for kind in ["status changed", "verdict changed", "severity changed"] {
        assert_eq!(count(&again, kind), 1, "{kind}");
    }

    // The audit log names the user for each change.
    let mut admin = app.signed_in(Some(&own.account), &[Role::Admin]).await;
    let (status, audit) = admin.get("/audit").await;
    assert_eq!(status, 200);
    let rows = table_rows(&audit, "<table class=\"audit\">");
    for action in ["status changed", "verdict changed", "severity changed"] {
        assert!(
            rows.iter().any(|r| r.contains(&format!("<td>{me}</td>"))
                && r.contains(&format!("<td>{action}</td>"))
                && r.contains(&sid)),
            "{action} by {me} in the audit log: {rows:#?}"
        );
    }

    // A severity needs the verdict malicious.
    let path2 = format!("/stories/{sid2}");
    let status2 = status_of(&app.story(&own.key, &sid2).await);
    let (status, body, _) = web
        .post_form(
            &path2,
            &[
                ("status", &status2),
                ("verdict", "benign"),
                ("severity", "high"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let alert = between(&body, "role=\"alert\">", "<").unwrap();
    assert!(alert.contains("severity"), "{alert}");
    let s2 = app.story(&own.key, &sid2).await;
    assert!(s2["verdict"].is_null() && s2["severity"].is_null(), "{s2}");
    // Changing the verdict away from malicious drops the severity the select still shows.
    let (status, _, _) = web
        .post_form(
            &path,
            &[
                ("status", "pending_analysis"),
                ("verdict", "benign"),
                ("severity", "high"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let s = app.story(&own.key, &sid).await;
    assert_eq!(s["verdict"], "benign");
    assert!(s["severity"].is_null(), "{s}");

    // Comments: at most 500 characters, escaped on the page.
    let long = "x".repeat(501);
    let (status, body, _) = web
        .post_form(&format!("{path}/comments"), &[("text", &long)])
        .await;
    assert_eq!(status, 400);
    assert!(between(&body, "role=\"alert\">", "<")
        .unwrap()
        .contains("500"));
    let full = "y".repeat(500);
    let (status, _, to) = web
        .post_form(&format!("{path}/comments"), &[("text", &full)])
        .await;
    assert_eq!((status, to), (303, Some(format!("{path}#comments"))));
    let html = "<b>not bold</b> & more";
    let (status, _, _) = web
        .post_form(&format!("{path}/comments"), &[("text", html)])
        .await;
    assert_eq!(status, 303);
    let (_, page) = web.get(&path).await;
    assert!(page.contains(&full));
    assert!(page.contains("&lt;b&gt;not bold&lt;/b&gt; &amp; more"));
    assert!(!page.contains(html));
    let s = app.story(&own.key, &sid).await;
    let comments = s["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 2, "the long one was not saved");

    // Only the author deletes a comment.
    let secret = format!("delete me, {me}");
    let (status, _, _) = web
        .post_form(&format!("{path}/comments"), &[("text", &secret)])
        .await;
    assert_eq!(status, 303);
    let s = app.story(&own.key, &sid).await;
    let cid = s["comments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["text"] == secret.as_str())
        .map(|c| {
            assert_eq!(c["author"], me.as_str());
            c["id"].as_str().unwrap().to_owned()
        })
        .unwrap();
    let mut colleague = app
        .signed_in(Some(&own.account), &[Role::StoriesEditor])
        .await;
    let (_, page) = colleague.get(&path).await;
    assert!(page.contains(&secret));
    assert!(
        !page.contains(&format!("/comments/{cid}/delete")),
        "no delete button for someone else's comment"
    );
    let (status, _, _) = colleague
        .post_form(&format!("{path}/comments/{cid}/delete"), &[])
        .await;
    assert_eq!(status, 403);
    assert!(app
        .story(&own.key, &sid)
        .await
        .to_string()
        .contains(&secret));
    let (_, page) = web.get(&path).await;
    assert!(page.contains(&format!("action=\"/stories/{sid}/comments/{cid}/delete\"")));
    let (status, _, to) = web
        .post_form(&format!("{path}/comments/{cid}/delete"), &[])
        .await;
    assert_eq!((status, to), (303, Some(format!("{path}#comments"))));
    let (_, page) = web.get(&path).await;
    assert!(
        !page.contains(&secret),
        "the deleted comment's text is gone"
    );
    assert!(page.contains(&full), "the other comments stay");
    let s = app.story(&own.key, &sid).await;
    assert!(!s["comments"].to_string().contains(&secret));
    assert!(s["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "comment_deleted" && e["actor"] == me.as_str()));
    app.running.stop().await;
}

/// The sum of the counts of the group table.
fn group_total(html: &str) -> (Vec<String>, u64) {
    let section = between(html, "<section class=\"groups\"", "</section>").unwrap_or_default();
    let rows = table_rows(section, "<table>");
    let total = rows
        .iter()
        .map(|r| {
            between(r, "<td class=\"num\">", "</td>")
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    (rows, total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_story_list_keeps_its_view_in_the_url() {
    let app = spawn_app(THREATS as usize).await;
    let own = tenancy(&app, Licence::Xops).await;
    app.until_backfilled(&own.key, &own.connector, THREATS)
        .await;
    let mut web = app
        .signed_in(Some(&own.account), &[Role::StoriesViewer])
        .await;
    // One story moves out of "open", so that the filter has something to leave out.
    let sid = first_story(&app, &own.key).await;
    let op = app.key(None, &[Role::Operator]).await;
    let (status, _) = app
        .call(
            "PATCH",
            &format!("/api/v1/stories/{sid}"),
            Some(&op),
            Some(serde_json::json!({"status": "monitoring"})),
        )
        .await;
    assert_eq!(status, 200);

    let from = (Utc::now() - chrono::Duration::days(2)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let api_open = app
        .all_items(
            &own.key,
            &format!("/api/v1/stories?status=open&from={from}"),
        )
        .await;
    let api_all = app
        .all_items(&own.key, &format!("/api/v1/stories?from={from}"))
        .await;
    assert!(!api_open.is_empty());
    assert!(api_open.len() < api_all.len(), "the filter leaves one out");
    assert!(api_all.len() <= 50, "one page of the list");

    let (status, page) = web
        .get("/stories?status=open&sort=-criticality&group=status")
        .await;
    assert_eq!(status, 200);
    let (groups, total) = group_total(&page);
    assert_eq!(groups.len(), 1, "only the open group: {groups:#?}");
    assert!(groups[0].contains(">open</a>"), "{groups:#?}");
    assert_eq!(
        total,
        api_open.len() as u64,
        "group counts sum to the API's"
    );
    // The table lists the same stories, by criticality, highest first.
    let rows = table_rows(&page, "<table class=\"stories\">");
    assert_eq!(rows.len(), api_open.len());
    let listed: BTreeSet<String> = rows
        .iter()
        .map(|r| between(r, "href=\"/stories/", "\"").unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = api_open
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, expected);
    assert!(!listed.contains(&sid));
    let crit: Vec<u8> = rows
        .iter()
        .map(|r| {
            between(r, "title=\"criticality, 1 to 10\">", "<")
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(crit.windows(2).all(|w| w[0] >= w[1]), "{crit:?}");
    // The view survives in its links and its form.
    assert!(page.contains("name=\"sort\" value=\"-criticality\""));
    assert!(page.contains("name=\"status\" value=\"open\" checked"));
    assert!(page.contains("<option value=\"status\" selected>"));
    assert!(page.contains("aria-sort=\"descending\""));
    let sort_link = between(
        &page,
        "<th scope=\"col\" aria-sort=\"none\"><a href=\"",
        "\"",
    )
    .unwrap();
    assert!(sort_link.contains("status=open"), "{sort_link}");
    assert!(sort_link.contains("group=status"), "{sort_link}");

    // Without the status filter, the groups add up to every story of the range.
    let (_, page) = web.get("/stories?group=status").await;
    let (groups, total) = group_total(&page);
    assert!(groups.len() >= 2, "{groups:#?}");
    assert_eq!(total, api_all.len() as u64);

    // A bad criticality: said on the page, which still opens.
    let (status, page) = web.get("/stories?cmin=11").await;
    assert_eq!(status, 200);
    let alert = between(&page, "<p class=\"error\" role=\"alert\">", "<").unwrap();
    assert!(alert.contains("criticality"), "{alert}");
    assert!(
        page.contains("name=\"cmin\" value=\"11\""),
        "the bad value is kept"
    );

    // Nothing matches: the empty state says so.
    let (status, page) = web.get("/stories?q=nothing-matches-this").await;
    assert_eq!(status, 200);
    assert!(page.contains("No stories match"), "{page}");
    assert!(table_rows(&page, "<table class=\"stories\">").is_empty());
    app.running.stop().await;
}

/// The ids of the rows of an events CSV, after checking the header.
fn csv_ids(csv: &str) -> Vec<String> {
    let mut lines = csv.split("\r\n");
    assert_eq!(
        lines.next(),
        Some("id,at,type,account_id,connector_id,story_id,incident_id,message")
    );
    lines
        .filter(|l| !l.is_empty())
        .map(|l| between(l, "\"", "\"").unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_events_export_is_the_accounts_events() {
    let app = spawn_app(THREATS as usize).await;
    let own = tenancy(&app, Licence::Xops).await;
    let foreign = app.account(Licence::Xops).await;
    let foreign_key = app.key(Some(&foreign), &[Role::Admin]).await;
    let fcid = app
        .create_connector_to(&foreign_key, &app.other_sim.base_url)
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.until_backfilled(&own.key, &own.connector, THREATS)
        .await;
    app.until_backfilled(&foreign_key, &fcid, 7).await;
    let web = app
        .signed_in(Some(&own.account), &[Role::IntegrationsViewer])
        .await;

    // Events only arrive with threats: once the backfill is over the set is still, but read
    // it until two reads agree anyway.
    let mut api: Vec<Value> = Vec::new();
    let mut csv = String::new();
    let mut agreed = false;
    for _ in 0..20 {
        let first = app.all_items(&own.key, "/api/v1/events").await;
        let resp = web.get_response("/events.csv").await;
        assert_eq!(resp.status().as_u16(), 200);
        assert!(content_type(resp.headers()).starts_with("text/csv"));
        assert!(resp
            .headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("attachment")));
        csv = resp.text().await.unwrap();
        api = app.all_items(&own.key, "/api/v1/events").await;
        if first.len() == api.len() && csv_ids(&csv).len() == api.len() {
            agreed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(agreed, "the CSV and the API never agreed");
    let ids = csv_ids(&csv);
    println!("events CSV: {} rows, API: {} events", ids.len(), api.len());
    assert!(
        ids.len() >= THREATS as usize,
        "at least one event per threat"
    );
    let csv_set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(csv_set.len(), ids.len(), "no row twice");
    let api_set: BTreeSet<String> = api
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(csv_set, api_set);
    // Every row is of this account, in the API's order (newest first).
    let api_order: Vec<String> = api
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, api_order);
    for line in csv.split("\r\n").skip(1).filter(|l| !l.is_empty()) {
        assert!(line.contains(&format!("\"{}\"", own.account)), "{line}");
    }

    // Nothing of the foreign account.
    let foreign_events = app.all_items(&foreign_key, "/api/v1/events").await;
    assert!(!foreign_events.is_empty());
    assert!(!csv.contains(&foreign));
    assert!(!csv.contains(&fcid));
    for e in &foreign_events {
        assert!(!csv_set.contains(e["id"].as_str().unwrap()));
    }
    // Filters apply to the export as to the page.
    let resp = web.get_response("/events.csv?type=incident_created").await;
    let filtered = csv_ids(&resp.text().await.unwrap());
    let api_filtered = app
        .all_items(&own.key, "/api/v1/events?type=incident_created")
        .await;
    assert_eq!(filtered.len(), api_filtered.len());
    assert!(filtered.len() < ids.len());
    app.running.stop().await;
}

/// A reader who sends the triage form unchanged has not acted, but is still not allowed to:
/// the form must be refused like any other change, not answered with a success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_an_unchanged_triage_form_from_a_reader_is_refused() {
    let app = spawn_app(5).await;
    let own = tenancy(&app, Licence::Xops).await;
    app.until_backfilled(&own.key, &own.connector, 5).await;
    let sid = first_story(&app, &own.key).await;
    let current = status_of(&app.story(&own.key, &sid).await);
    let mut reader = app
        .signed_in(Some(&own.account), &[Role::StoriesViewer])
        .await;
    let (status, _, to) = reader
        .post_form(
            &format!("/stories/{sid}"),
            &[("status", &current), ("verdict", ""), ("severity", "")],
        )
        .await;
    assert_eq!(
        status, 403,
        "a stories-viewer's triage form was answered {status} (Location {to:?})"
    );
    app.running.stop().await;
}

/// Browsers drop ASCII tabs and newlines from a URL before resolving it (WHATWG URL), so a
/// `next` of `/<TAB>/evil.example` is `//evil.example` to them: off-site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_sign_in_never_leads_off_site_through_hidden_characters() {
    let app = spawn_app(1).await;
    let account = app.account(Licence::Xops).await;
    let (user, password) = app.user(Some(&account), &[Role::StoriesViewer]).await;
    let mut wrong = Vec::new();
    for next in [
        "/\t/evil.example",
        "/\t\t/evil.example/stories",
        "/\n/evil.example",
        "/\r\n/evil.example",
    ] {
        let resp = app.login(&user, &password, Some(next), &[]).await;
        let status = resp.status().as_u16();
        let to = crate::web_client::location(resp.headers()).unwrap_or_default();
        let as_browsers_read_it: String = to
            .chars()
            .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
            .collect();
        let on_site = as_browsers_read_it.starts_with('/')
            && !as_browsers_read_it.starts_with("//")
            && !as_browsers_read_it.starts_with("/\\");
        if status != 303 || !on_site {
            wrong.push(format!("next={next:?}: {status}, Location {to:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "sign-in leads off-site or fails:\n{}",
        wrong.join("\n")
    );
    app.running.stop().await;
}

/// A form sent after the session ended leads to the sign-in; once signed in, the user must land
/// on a page, not on a URL that only takes a POST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_a_form_sent_after_the_session_ended_leads_back_to_a_page() {
    let app = spawn_app(5).await;
    let own = tenancy(&app, Licence::Xops).await;
    app.until_backfilled(&own.key, &own.connector, 5).await;
    let sid = first_story(&app, &own.key).await;
    let (user, password) = app.user(Some(&own.account), &[Role::StoriesEditor]).await;
    let mut web = WebSession::sign_in(&app, &user, &password).await;
    let token = web.csrf().await;
    let (status, _, _) = web.post_form("/logout", &[]).await;
    assert_eq!(status, 303);

    // The page was still open: its comment form is sent with the ended session.
    let (status, _, to) = web
        .post_form_with(
            &format!("/stories/{sid}/comments"),
            &[("text", "written before the session ended")],
            Csrf::Value(&token),
            &[],
        )
        .await;
    assert_eq!(status, 303);
    let to = to.unwrap();
    assert!(to.starts_with("/login?next="), "{to}");
    let next: String = url::form_urlencoded::parse(to.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let resp = app.login(&user, &password, Some(&next), &[]).await;
    assert_eq!(resp.status().as_u16(), 303);
    let landing = crate::web_client::location(resp.headers()).unwrap();
    let mut again = WebSession::sign_in(&app, &user, &password).await;
    let (status, _) = again.get(&landing).await;
    assert_eq!(
        status, 200,
        "after signing in again the user lands on {landing}, which answers {status}"
    );
    app.running.stop().await;
}

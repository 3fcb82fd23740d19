//! The web UI over plain HTTP: roles × pages × own and foreign account, and licences.

use dossier_domain::access::{Licence, Permissions, Role};
use serde_json::Value;

use crate::web_client::{between, table_rows, Posted, WebSession};
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
    /// Checks on the foreign account's pages.
    foreign_checks: usize,
    /// Foreign pages read or changed by a role of the own account.
    cross_account: usize,
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

/// The two accounts of the web matrix, each with its connector and a story.
struct Matrix {
    own: Tenancy,
    foreign: Tenancy,
    own_story: String,
    foreign_story: String,
    /// The own connector's tenant, and another one to make connectors to.
    tenant_url: String,
    other_url: String,
}

/// One role, signed in, going through the pages of both accounts.
struct Visit<'a> {
    app: &'a App,
    m: &'a Matrix,
    t: &'a mut Tally,
    web: WebSession,
    who: String,
    me: String,
    p: Permissions,
    operator: bool,
    /// An admin or the operator: may read the users and the audit log.
    admin: bool,
    /// The pages that list things, with their bodies: none may show the foreign account.
    lists: Vec<(String, String)>,
}

/// The form that saves a connector of that name on the own tenant, keeping its token.
fn rename_form<'s>(m: &'s Matrix, name: &'s str) -> [(&'static str, &'s str); 5] {
    [
        ("name", name),
        ("description", ""),
        ("tenant_url", &m.tenant_url),
        ("api_token", ""),
        ("track_errors", "1"),
    ]
}

/// The form that makes a connector of that name to the other tenant.
fn create_form<'s>(m: &'s Matrix, name: &'s str) -> Vec<(&'static str, &'s str)> {
    vec![
        ("name", name),
        ("description", ""),
        ("tenant_url", m.other_url.as_str()),
        ("api_token", crate::TOKEN),
        ("track_errors", "1"),
    ]
}

impl Visit<'_> {
    async fn own_story(&mut self) {
        let (app, m, p) = (self.app, self.m, self.p);
        let sid = &m.own_story;
        let who = &self.who;
        let r = self.web.get_with_location("/stories").await;
        self.t.expect(who, "GET /stories", p.view_stories, &r, None);
        self.lists.push(("/stories".into(), r.1));
        let r = self.web.get_with_location(&format!("/stories/{sid}")).await;
        self.t
            .expect(who, "GET own story", p.view_stories, &r, None);

        let before = status_of(&app.story(&m.own.key, sid).await);
        let target = other_status(&before);
        let r = self
            .web
            .post_form(
                &format!("/stories/{sid}"),
                &[("status", target), ("verdict", ""), ("severity", "")],
            )
            .await;
        let to = format!("/stories/{sid}?saved=triage");
        self.t
            .expect(who, "POST own story", p.edit_stories, &r, Some(&to));
        let after = status_of(&app.story(&m.own.key, sid).await);
        let want = if p.edit_stories { target } else { &before };
        if after != want {
            self.t.fail(format!(
                "{who}: own story status is {after}, expected {want}"
            ));
        }

        let text = format!("hi from {}", self.me);
        let r = self
            .web
            .post_form(&format!("/stories/{sid}/comments"), &[("text", &text)])
            .await;
        let to = format!("/stories/{sid}?saved=comment#comments");
        self.t
            .expect(who, "POST own comment", p.edit_stories, &r, Some(&to));
        let n = comments_by(&app.story(&m.own.key, sid).await, &self.me);
        if n != usize::from(p.edit_stories) {
            self.t
                .fail(format!("{who}: {n} comments of theirs on the own story"));
        }
    }

    async fn own_connector(&mut self) {
        let (app, m, p) = (self.app, self.m, self.p);
        let cid = &m.own.connector;
        let who = &self.who;
        let r = self.web.get_with_location("/connectors").await;
        self.t
            .expect(who, "GET /connectors", p.view_integrations, &r, None);
        self.lists.push(("/connectors".into(), r.1));
        let r = self.web.get_with_location("/connectors/new").await;
        self.t
            .expect(who, "GET /connectors/new", p.edit_integrations, &r, None);
        let r = self
            .web
            .get_with_location(&format!("/connectors/{cid}"))
            .await;
        self.t
            .expect(who, "GET own connector", p.edit_integrations, &r, None);

        let before = connector_name(app, &m.own.key, cid).await.unwrap();
        let name = format!("renamed by {}", self.me);
        let form = rename_form(m, &name);
        let r = self
            .web
            .post_form(&format!("/connectors/{cid}"), &form)
            .await;
        self.t.expect(
            who,
            "POST own connector",
            p.edit_integrations,
            &r,
            Some("/connectors"),
        );
        let after = connector_name(app, &m.own.key, cid).await.unwrap();
        let want = if p.edit_integrations { &name } else { &before };
        if &after != want {
            self.t.fail(format!(
                "{who}: own connector is named {after:?}, expected {want:?}"
            ));
        }
    }

    /// Create a connector, then delete it: the one this role made, or else the main one
    /// (which must survive the attempt).
    async fn own_connector_create_and_delete(&mut self) {
        let (app, m, p) = (self.app, self.m, self.p);
        let who = &self.who;
        let throwaway = format!("throwaway of {}", self.me);
        let mut create = create_form(m, &throwaway);
        if self.operator {
            create.push(("account_id", m.own.account.as_str()));
        }
        let r = self.web.post_form("/connectors", &create).await;
        self.t.expect(
            who,
            "POST /connectors (create)",
            p.edit_integrations,
            &r,
            Some("/connectors"),
        );
        let made = connector_named(app, &m.own.key, &throwaway).await;
        if made.is_some() != p.edit_integrations {
            self.t
                .fail(format!("{who}: connector created: {}", made.is_some()));
        }
        let victim = made.unwrap_or_else(|| m.own.connector.clone());
        let r = self
            .web
            .post_form(&format!("/connectors/{victim}/delete"), &[])
            .await;
        self.t.expect(
            who,
            "POST own connector delete",
            p.edit_integrations,
            &r,
            Some("/connectors"),
        );
        let exists = connector_name(app, &m.own.key, &victim).await.is_some();
        if exists == p.edit_integrations {
            self.t.fail(format!(
                "{who}: connector {victim} exists after delete: {exists}"
            ));
        }
    }

    /// Events, for every role; users and the audit log, for admins and operators.
    async fn events_users_and_audit(&mut self) {
        let (admin, who) = (self.admin, &self.who);
        for (path, allowed) in [
            ("/events", true),
            ("/events.csv", true),
            ("/users", admin),
            ("/audit", admin),
        ] {
            let r = self.web.get_with_location(path).await;
            self.t
                .expect(who, &format!("GET {path}"), allowed, &r, None);
            self.lists.push((path.into(), r.1));
        }
    }

    /// The foreign account: only the operator reads or writes it. For everyone else, any
    /// answer but 403 or 404, and any change seen through the foreign admin's key, counts as
    /// a cross-account success.
    fn foreign_result(&mut self, what: &str, r: &Posted, to: Option<&str>, changed: bool) {
        self.t.foreign_checks += 1;
        if self.operator {
            self.t.expect(&self.who, what, true, r, to);
        } else {
            self.t.expect(&self.who, what, false, r, to);
            if !denied(r) || changed {
                self.t.cross_account += 1;
                if changed {
                    self.t
                        .fail(format!("{}: {what}: the foreign account changed", self.who));
                }
            }
        }
    }

    async fn foreign_story(&mut self) {
        let (app, m, operator) = (self.app, self.m, self.operator);
        let fsid = &m.foreign_story;
        let r = self
            .web
            .get_with_location(&format!("/stories/{fsid}"))
            .await;
        self.foreign_result("GET foreign story", &r, None, false);

        let before = status_of(&app.story(&m.foreign.key, fsid).await);
        let target = other_status(&before);
        let r = self
            .web
            .post_form(
                &format!("/stories/{fsid}"),
                &[("status", target), ("verdict", ""), ("severity", "")],
            )
            .await;
        let after = status_of(&app.story(&m.foreign.key, fsid).await);
        let to = format!("/stories/{fsid}?saved=triage");
        self.foreign_result(
            "POST foreign story",
            &r,
            Some(&to),
            after != before && !operator,
        );
        if operator && after != target {
            self.t.fail(format!(
                "{}: foreign story status {after}, expected {target}",
                self.who
            ));
        }

        let text = format!("hi from {}", self.me);
        let r = self
            .web
            .post_form(&format!("/stories/{fsid}/comments"), &[("text", &text)])
            .await;
        let n = comments_by(&app.story(&m.foreign.key, fsid).await, &self.me);
        let to = format!("/stories/{fsid}?saved=comment#comments");
        self.foreign_result("POST foreign comment", &r, Some(&to), n > 0 && !operator);
        if operator && n != 1 {
            self.t
                .fail(format!("{}: {n} comments on the foreign story", self.who));
        }
    }

    async fn foreign_connector(&mut self) {
        let (app, m, operator) = (self.app, self.m, self.operator);
        let fcid = &m.foreign.connector;
        let r = self
            .web
            .get_with_location(&format!("/connectors/{fcid}"))
            .await;
        self.foreign_result("GET foreign connector", &r, None, false);

        let before = connector_name(app, &m.foreign.key, fcid).await.unwrap();
        let name = format!("renamed by {}", self.me);
        let form = rename_form(m, &name);
        let r = self
            .web
            .post_form(&format!("/connectors/{fcid}"), &form)
            .await;
        let after = connector_name(app, &m.foreign.key, fcid).await.unwrap();
        self.foreign_result(
            "POST foreign connector",
            &r,
            Some("/connectors"),
            after != before && !operator,
        );
        if operator && after != name {
            self.t
                .fail(format!("{}: foreign connector named {after:?}", self.who));
        }
    }

    /// Creating a connector in the foreign account; the operator deletes what it made there,
    /// the others try the foreign connector.
    async fn foreign_connector_create_and_delete(&mut self) {
        let (app, m, operator) = (self.app, self.m, self.operator);
        let throwaway = format!("throwaway of {}", self.me);
        let mut create = create_form(m, &throwaway);
        create.push(("account_id", m.foreign.account.as_str()));
        let r = self.web.post_form("/connectors", &create).await;
        let made = connector_named(app, &m.foreign.key, &throwaway).await;
        self.foreign_result(
            "POST /connectors into the foreign account",
            &r,
            Some("/connectors"),
            made.is_some() && !operator,
        );
        if operator && made.is_none() {
            self.t.fail(format!(
                "{}: no connector made in the foreign account",
                self.who
            ));
        }
        let victim = made.unwrap_or_else(|| m.foreign.connector.clone());
        let r = self
            .web
            .post_form(&format!("/connectors/{victim}/delete"), &[])
            .await;
        let exists = connector_name(app, &m.foreign.key, &victim).await.is_some();
        self.foreign_result(
            "POST foreign connector delete",
            &r,
            Some("/connectors"),
            !exists && !operator,
        );
        if operator && exists {
            self.t.fail(format!(
                "{}: foreign connector {victim} not deleted",
                self.who
            ));
        }
    }

    /// Naming the foreign account, or its connector and story, in a filter.
    async fn foreign_filters(&mut self) {
        let m = self.m;
        let r = self
            .web
            .get_with_location(&format!("/stories?account={}", m.foreign.account))
            .await;
        self.foreign_result("GET /stories?account=foreign", &r, None, false);
        for path in [
            format!("/events.csv?connector_id={}", m.foreign.connector),
            format!("/events.csv?story_id={}", m.foreign_story),
            format!("/events?story_id={}", m.foreign_story),
        ] {
            let r = self.web.get_with_location(&path).await;
            self.t.foreign_checks += 1;
            self.t.checked += 1;
            if r.0 != 200 {
                self.t.fail(format!("{}: GET {path}: {}", self.who, r.0));
            }
            self.lists.push((path, r.1));
        }
    }

    /// No page of the own account shows the foreign account's story, connector or id.
    fn no_foreign_marks(&mut self) {
        let m = self.m;
        let foreign_marks = [&m.foreign_story, &m.foreign.connector, &m.foreign.account];
        for (path, body) in &self.lists {
            // The filter echoes the story id it was given; the events must not show it.
            let body = if path.starts_with("/events?story_id=") {
                body.rsplit("</form>").next().unwrap_or_default()
            } else if path.starts_with("/events.csv?") {
                body.split_once('\n').map_or("", |(_, rows)| rows)
            } else {
                body.as_str()
            };
            for mark in foreign_marks {
                if body.contains(mark.as_str()) {
                    self.t.cross_account += 1;
                    self.t
                        .fail(format!("{}: {path} shows the foreign {mark}", self.who));
                }
            }
        }
    }
}

/// One role through every page of both accounts; returns the user it signed in as.
async fn visit_as(app: &App, m: &Matrix, t: &mut Tally, role: Role) -> String {
    let operator = role == Role::Operator;
    let account = (!operator).then_some(m.own.account.as_str());
    let web = app.signed_in(account, &[role]).await;
    let me = web.username.clone();
    let mut v = Visit {
        app,
        m,
        t,
        web,
        who: format!("{} ({me})", role.as_str()),
        me: me.clone(),
        p: Permissions::of(&[role]),
        operator,
        admin: role == Role::Admin || operator,
        lists: Vec::new(),
    };
    v.own_story().await;
    v.own_connector().await;
    v.own_connector_create_and_delete().await;
    v.events_users_and_audit().await;
    v.foreign_story().await;
    v.foreign_connector().await;
    v.foreign_connector_create_and_delete().await;
    v.foreign_filters().await;
    if !operator {
        v.no_foreign_marks();
    }
    me
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
    let own_story = first_story(&app, &own.key).await;
    let foreign_story = first_story(&app, &foreign.key).await;
    let (_, c) = app
        .call(
            "GET",
            &format!("/api/v1/connectors/{}", own.connector),
            Some(&own.key),
            None,
        )
        .await;
    let m = Matrix {
        tenant_url: c["tenant_url"].as_str().unwrap().to_owned(),
        other_url: app.other_sim.base_url.clone(),
        own,
        foreign,
        own_story,
        foreign_story,
    };

    let roles = [
        Role::Admin,
        Role::Operator,
        Role::StoriesEditor,
        Role::StoriesViewer,
        Role::IntegrationsEditor,
        Role::IntegrationsViewer,
    ];
    let mut t = Tally::default();
    let mut operator_name = String::new();
    for role in roles {
        let me = visit_as(&app, &m, &mut t, role).await;
        if role == Role::Operator {
            operator_name = me;
        }
    }
    println!(
        "web matrix: {} checks, {} on the foreign account, {} cross-account successes",
        t.checked, t.foreign_checks, t.cross_account
    );
    assert!(
        t.failures.is_empty(),
        "{} wrong answers:\n{}",
        t.failures.len(),
        t.failures.join("\n")
    );
    assert_eq!(t.cross_account, 0, "cross-account reads or writes");
    assert!(t.checked >= 6 * 25, "{} checks", t.checked);
    // The operator renamed the foreign connector; nobody after it did.
    assert_eq!(
        connector_name(&app, &m.foreign.key, &m.foreign.connector).await,
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
        (303, Some(format!("/stories/{sid}?saved=triage").as_str()))
    );
    assert_eq!(status_of(&app.story(&mdr.key, &sid).await), "monitoring");
    app.running.stop().await;
}

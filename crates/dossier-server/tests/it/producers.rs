//! The other producers through the whole server: their connectors' fields, statuses a person
//! can act on, and their alerts as stories.

use std::time::Duration;

use dossier_domain::access::{Licence, Role};
use serde_json::{json, Value};

use crate::{spawn_app_with, App};

const CLIENT: &str = "5b1d2a4c-8e3f-4a6b-9c7d-0e1f2a3b4c5d";
const SECRET: &str = "it~defender-client-secret-value";

/// Waits until the connector's view satisfies `ok`, and returns it.
async fn connector_until(app: &App, key: &str, id: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, c) = app
            .call("GET", &format!("/api/v1/connectors/{id}"), Some(key), None)
            .await;
        if ok(&c) {
            return c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {c}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Defender app whose Graph permission is not consented yet: the connector is `pending` with
/// what to grant and where, and connects by itself once consent is given, with no save.
#[tokio::test]
async fn a_defender_connector_waits_for_consent_and_then_connects() {
    let mut config = dossier_mdesim::SimConfig::new(5, 20);
    config.apps = vec![dossier_mdesim::AppSpec::new(CLIENT, SECRET, &[])];
    let tenant = dossier_mdesim::Tenant::new(&config);
    let now = chrono::Utc::now();
    tenant.generate_history(40, now - chrono::Duration::days(3), now);
    let sim = dossier_mdesim::start(tenant.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let ca = sim.ca_pem.clone();
    let app = spawn_app_with(0, move |c| {
        let mut pem = c.tenant_ca_pem.take().unwrap_or_default();
        pem.extend_from_slice(b"\n");
        pem.extend_from_slice(ca.as_bytes());
        c.tenant_ca_pem = Some(pem);
    })
    .await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    // Another producer's connector in the same account: the story page must still speak of
    // its own producer's records.
    app.create_connector_to(&admin, &app.sim.base_url).await;
    let (status, c) = app
        .call(
            "POST",
            "/api/v1/connectors",
            Some(&admin),
            Some(json!({
                "kind": "defender", "name": "MDE", "tenant_id": tenant.tenant_id(),
                "client_id": CLIENT, "client_secret": SECRET,
                "graph_url": sim.base_url, "login_url": sim.base_url,
            })),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["kind"], "defender");
    assert_eq!(c["tenant_url"], sim.base_url);
    assert!(!c.to_string().contains(SECRET), "{c}");
    let id = c["id"].as_str().unwrap().to_owned();

    let waiting = connector_until(&app, &admin, &id, |c| {
        c["status_detail"]
            .as_str()
            .is_some_and(|d| d.contains("SecurityAlert.Read.All"))
    })
    .await;
    assert_eq!(waiting["status"], "pending", "{waiting}");

    tenant.set_app(dossier_mdesim::AppSpec::new(
        CLIENT,
        SECRET,
        &[dossier_mdesim::READ_ROLE],
    ));
    let endpoint = tenant.endpoint_alert_ids().len() as u64;
    let connected = connector_until(&app, &admin, &id, |c| {
        c["status"] == "connected" && c["health"]["threats"].as_u64() >= Some(endpoint)
    })
    .await;
    assert_eq!(connected["status_detail"], Value::Null);
    let (_, page) = app
        .call(
            "GET",
            "/api/v1/stories?producer=defender&limit=1000&from=2000-01-01T00:00:00Z",
            Some(&admin),
            None,
        )
        .await;
    let stories = page["items"].as_array().unwrap();
    assert!(!stories.is_empty(), "{page}");
    assert!(stories
        .iter()
        .all(|s| s["producer"] == "defender" && s["engine_type"] == "endpoint"));
    assert!(!crate::logs().contains(SECRET), "the secret is in the logs");

    // A change keeps what it leaves out; moving where the secret goes needs the secret again.
    let (status, renamed) = app
        .call(
            "PATCH",
            &format!("/api/v1/connectors/{id}"),
            Some(&admin),
            Some(json!({"name": "MDE prod"})),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(
        renamed["status"], "connected",
        "a rename is no new tenant: {renamed}"
    );
    let (status, e) = app
        .call(
            "PATCH",
            &format!("/api/v1/connectors/{id}"),
            Some(&admin),
            Some(json!({"login_url": "https://login.example.net"})),
        )
        .await;
    assert_eq!(status, 400, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("client_secret: required"),
        "{e}"
    );

    saved_as_shown(&app, &account, &admin, &id, &sim.base_url).await;

    // The story page shows what only Defender says of the alert, names Defender's records,
    // and links to the alert as Defender gave its address.
    let mut web = app.signed_in(Some(&account), &[Role::StoriesViewer]).await;
    let story = stories[0]["id"].as_str().unwrap();
    let (status, page) = web.get(&format!("/stories/{story}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("Evidence from Microsoft Defender"), "{page}");
    assert!(page.contains("Alert ID"), "{page}");
    assert!(
        page.contains("href=\"https://security.microsoft.com/alerts/"),
        "{page}"
    );
}

/// Saves a Defender connector from its edit form as the form shows it: its addresses and its
/// status stay. The form must show the Graph URL in its own field, not empty (an empty one
/// would mean the default).
async fn saved_as_shown(app: &App, account: &str, admin: &str, id: &str, base_url: &str) {
    let mut editor = app.signed_in(Some(account), &[Role::Admin]).await;
    let (status, form) = editor.get(&format!("/connectors/{id}")).await;
    assert_eq!(status, 200, "{form}");
    let shown = |name: &str| -> String {
        let tag = form
            .split('<')
            .find(|t| t.starts_with("input") && t.contains(&format!("name=\"{name}\"")))
            .unwrap_or_else(|| panic!("no {name} field: {form}"));
        crate::web_client::between(tag, "value=\"", "\"")
            .unwrap_or_default()
            .to_owned()
    };
    let (graph, login, tenant_id, client_id) = (
        shown("graph_url"),
        shown("login_url"),
        shown("tenant_id"),
        shown("client_id"),
    );
    assert_eq!(graph, base_url);
    let (status, _, location) = editor
        .post_form(
            &format!("/connectors/{id}"),
            &[
                ("kind", "defender"),
                ("name", "MDE prod"),
                ("description", ""),
                ("tenant_id", &tenant_id),
                ("client_id", &client_id),
                ("client_secret", ""),
                ("graph_url", &graph),
                ("login_url", &login),
            ],
        )
        .await;
    assert_eq!((status, location.as_deref()), (303, Some("/connectors")));
    let (_, saved) = app
        .call(
            "GET",
            &format!("/api/v1/connectors/{id}"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(saved["tenant_url"], base_url);
    assert_eq!(saved["status"], "connected", "{saved}");
}

/// Each kind asks for its own fields, names a missing one, and refuses another kind's.
#[tokio::test]
async fn each_kind_takes_its_own_fields() {
    let app = crate::spawn_app(0).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    for (body, needle) in [
        (
            json!({"kind": "defender", "name": "x", "client_id": CLIENT, "client_secret": "s"}),
            "tenant_id",
        ),
        (
            json!({"kind": "defender", "name": "x", "tenant_id": "not-a-guid", "client_id": CLIENT, "client_secret": "s"}),
            "tenant_id",
        ),
        (
            json!({"kind": "defender", "name": "x", "tenant_id": CLIENT, "client_id": CLIENT, "client_secret": "s", "api_token": "t"}),
            "api_token",
        ),
        (
            json!({"kind": "crowdstrike", "name": "x", "cloud": "mars-1", "client_id": "c", "client_secret": "s"}),
            "cloud",
        ),
        (
            json!({"kind": "crowdstrike", "name": "x", "client_id": "c"}),
            "client_secret",
        ),
        (
            json!({"kind": "crowdstrike", "name": "x", "base_url": "http://api.crowdstrike.com", "client_id": "c", "client_secret": "s"}),
            "base_url",
        ),
    ] {
        let (status, e) = app
            .call(
                "POST",
                "/api/v1/connectors",
                Some(&admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 400, "{body}: {e}");
        let message = e["message"].as_str().unwrap();
        assert!(message.starts_with(needle), "{body}: {message}");
        assert!(!message.contains("\"s\""), "{message}");
    }
}

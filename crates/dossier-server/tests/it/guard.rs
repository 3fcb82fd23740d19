//! The address guard at save time (issue 27, item 7): every range the IANA special-purpose
//! registries mark as not globally reachable is refused, in every IPv6 form that embeds it,
//! and link-local and metadata addresses even with `--allow-private-tenants`. Only address
//! literals are saved: nothing is resolved and no test connects to any of them.

use dossier_domain::access::{Licence, Role};
use serde_json::json;

use crate::{spawn_app, spawn_app_with};

/// A tenant URL on each refused range, and the IPv6 forms of refused IPv4 addresses.
const NOT_GLOBAL: [&str; 22] = [
    "0.0.0.1",
    "10.0.0.1",
    "100.64.0.1",
    "127.0.0.1",
    "172.16.0.1",
    "192.0.0.8",
    "192.0.2.10",
    "192.88.99.1",
    "192.168.0.1",
    "198.18.0.1",
    "198.51.100.1",
    "203.0.113.1",
    "240.0.0.1",
    "[::1]",
    "[::127.0.0.1]",
    "[::ffff:127.0.0.1]",
    "[64:ff9b::c612:1]",
    "[64:ff9b:1::a00:1]",
    "[2002:c0a8:1::1]",
    "[2001:db8::1]",
    "[fc00::1]",
    "[100::1]",
];

const LINK_LOCAL: [&str; 6] = [
    "169.254.169.254",
    "169.254.0.1",
    "[fe80::1]",
    "[fd00:ec2::254]",
    "[::ffff:169.254.169.254]",
    "[2002:a9fe:a9fe::1]",
];

async fn save(app: &crate::App, key: &str, host: &str) -> (u16, String) {
    let body = json!({
        "kind": "sentinelone",
        "name": "Guarded",
        "tenant_url": format!("https://{host}"),
        "api_token": crate::TOKEN,
    });
    let (status, b) = app
        .call("POST", "/api/v1/connectors", Some(key), Some(body))
        .await;
    (status, b["message"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn every_range_not_globally_reachable_is_refused_when_a_connector_is_saved() {
    let app = spawn_app_with(0, |c| c.allow_private_tenants = false).await;
    let account = app.account(Licence::Xops).await;
    let key = app.key(Some(&account), &[Role::Admin]).await;
    for host in NOT_GLOBAL.iter().chain(&LINK_LOCAL) {
        let (status, message) = save(&app, &key, host).await;
        assert_eq!(status, 400, "{host}: {message}");
        assert!(message.starts_with("tenant_url: "), "{host}: {message}");
    }
    // The other URLs a secret is sent to pass the same guard.
    let (status, b) = app
        .call(
            "POST",
            "/api/v1/connectors",
            Some(&key),
            Some(json!({
                "kind": "defender", "name": "MDE", "tenant_id": "t", "client_id": "c",
                "client_secret": "s", "login_url": "https://198.18.0.1",
            })),
        )
        .await;
    assert_eq!(status, 400, "{b}");
    app.running.stop().await;
}

#[tokio::test]
async fn link_local_and_metadata_are_refused_even_with_private_tenants_allowed() {
    let app = spawn_app(0).await;
    assert!(app.state.config.allow_private_tenants);
    let account = app.account(Licence::Xops).await;
    let key = app.key(Some(&account), &[Role::Admin]).await;
    for host in LINK_LOCAL {
        let (status, message) = save(&app, &key, host).await;
        assert_eq!(status, 400, "{host}: {message}");
        assert!(
            message.contains("refused even with --allow-private-tenants"),
            "{host}: {message}"
        );
    }
    let (status, b) = app
        .call(
            "POST",
            "/api/v1/connectors",
            Some(&key),
            Some(json!({
                "kind": "crowdstrike", "name": "Falcon", "client_id": "c",
                "client_secret": "s", "base_url": "https://[fd00:ec2::254]",
            })),
        )
        .await;
    assert_eq!(status, 400, "{b}");
    app.running.stop().await;
}

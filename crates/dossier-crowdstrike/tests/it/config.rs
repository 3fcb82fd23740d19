//! A crowdstrike connector's fields, read from create and change bodies.

use dossier_crowdstrike::CrowdStrike;
use dossier_source::{Config, Source, Stored};
use secrecy::ExposeSecret;
use serde_json::json;

fn body(v: serde_json::Value) -> Config {
    match v {
        serde_json::Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

#[test]
fn a_cloud_gives_its_api_host_and_us_1_is_the_default() {
    let cs = CrowdStrike;
    let c = cs
        .configure(
            &body(json!({"cloud":"eu-1","client_id":"abc","client_secret":"sec"})),
            None,
        )
        .unwrap();
    assert_eq!(c.tenant_url.as_str(), "https://api.eu-1.crowdstrike.com/");
    assert_eq!(c.secret_urls, vec![c.tenant_url.clone()]);
    assert_eq!(c.config, body(json!({"cloud":"eu-1","client_id":"abc"})));
    assert_eq!(c.secret.unwrap().expose_secret(), "sec");
    let c = cs
        .configure(
            &body(json!({"client_id":"abc","client_secret":"sec"})),
            None,
        )
        .unwrap();
    assert_eq!(c.tenant_url.as_str(), "https://api.crowdstrike.com/");
    assert_eq!(c.config["cloud"], "us-1");
}

#[test]
fn an_explicit_base_url_wins_and_is_kept() {
    let cs = CrowdStrike;
    let c = cs
        .configure(&body(json!({"base_url":"https://falcon-proxy.example:8443","client_id":"abc","client_secret":"sec","member_cid":"0123456789ABCDEF0123456789abcdef"})), None)
        .unwrap();
    assert_eq!(c.tenant_url.as_str(), "https://falcon-proxy.example:8443/");
    assert_eq!(c.config["base_url"], "https://falcon-proxy.example:8443");
    assert_eq!(c.config["member_cid"], "0123456789abcdef0123456789abcdef");
    assert!(c.config.get("cloud").is_none(), "a proxy names no cloud");
}

#[test]
fn bad_fields_are_named_and_secrets_never_echoed() {
    let cs = CrowdStrike;
    for (b, says) in [
        (json!({"client_secret":"sec"}), "client_id: is required"),
        (json!({"client_id":"abc"}), "client_secret: is required"),
        (
            json!({"cloud":"mars-1","client_id":"abc","client_secret":"sec"}),
            "cloud: must be one of",
        ),
        (
            json!({"base_url":"http://api.crowdstrike.com","client_id":"abc","client_secret":"sec"}),
            "base_url: must start with https://",
        ),
        (
            json!({"member_cid":"xyz","client_id":"abc","client_secret":"sec"}),
            "member_cid: must be 32 hexadecimal",
        ),
        (
            json!({"tenant_id":"t","client_id":"abc","client_secret":"sec"}),
            "tenant_id: not a field of a crowdstrike connector",
        ),
        (
            json!({"client_id":"abc","client_secret":"s3cr3t\u{7}"}),
            "client_secret: is not a CrowdStrike API client secret",
        ),
    ] {
        let e = cs.configure(&body(b.clone()), None).unwrap_err();
        assert!(e.starts_with(says), "{b}: {e}");
        assert!(!e.contains("s3cr3t"));
    }
}

#[test]
fn a_change_keeps_what_it_leaves_out() {
    let cs = CrowdStrike;
    let stored = body(
        json!({"cloud":"us-2","client_id":"abc","member_cid":"0123456789abcdef0123456789abcdef"}),
    );
    let current = Stored {
        tenant_url: "https://api.us-2.crowdstrike.com",
        config: &stored,
    };
    let c = cs
        .configure(&body(json!({"client_id":"def"})), Some(current))
        .unwrap();
    assert_eq!(c.tenant_url.as_str(), "https://api.us-2.crowdstrike.com/");
    assert_eq!(
        c.config,
        body(
            json!({"cloud":"us-2","client_id":"def","member_cid":"0123456789abcdef0123456789abcdef"})
        )
    );
    assert!(c.secret.is_none());
    let c = cs
        .configure(
            &body(json!({"cloud":"eu-1","client_secret":"new"})),
            Some(current),
        )
        .unwrap();
    assert_eq!(c.tenant_url.as_str(), "https://api.eu-1.crowdstrike.com/");
    assert_eq!(c.config["client_id"], "abc");
    assert!(cs
        .configure(&body(json!({"client_secret":""})), Some(current))
        .is_err());
}

//! Internal addresses are refused at connect time when the deployment does not allow private
//! tenants, so a host re-pointed after validation (DNS rebinding) reaches nothing inside.

use dossier_sentinelone::{Client, ClientError, ThreatQuery};
use url::Url;

use crate::server::{fast_config, json, serve};

#[tokio::test]
async fn a_host_resolving_to_loopback_is_refused_at_connect_time() {
    let server =
        serve(|_, _| async { json(200, r#"{"data":[],"pagination":{"nextCursor":null}}"#) }).await;
    let port = server.addr.port();

    // Allowed: the same host works.
    let open = Client::new(fast_config(
        Url::parse(&format!("http://localhost:{port}")).unwrap(),
    ))
    .unwrap();
    assert!(open.threats_page(&ThreatQuery::default()).await.is_ok());

    // Refused: "localhost" resolves to loopback, after any validation the name passed.
    let mut cfg = fast_config(Url::parse(&format!("http://localhost:{port}")).unwrap());
    cfg.refuse_internal_addresses = true;
    let guarded = Client::new(cfg).unwrap();
    let err = guarded
        .threats_page(&ThreatQuery::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Unreachable(_)), "{err:?}");
    assert!(
        err.human_reason().contains("internal address"),
        "{}",
        err.human_reason()
    );
    let hits_before = server.hits();
    assert_eq!(hits_before, 1, "only the allowed client reached the server");

    // An address literal is refused when the client is built.
    for host in ["127.0.0.1", "[::1]", "169.254.169.254"] {
        let mut cfg = fast_config(Url::parse(&format!("http://{host}:{port}")).unwrap());
        cfg.refuse_internal_addresses = true;
        let err = Client::new(cfg).unwrap_err();
        assert!(matches!(err, ClientError::Config(_)), "{host}: {err:?}");
    }
    // Link-local and metadata literals are refused even where private tenants are allowed
    // (the client is only built: nothing connects).
    for host in ["169.254.169.254", "[fd00:ec2::254]", "[fe80::1]"] {
        let cfg = fast_config(Url::parse(&format!("http://{host}:{port}")).unwrap());
        assert!(!cfg.refuse_internal_addresses);
        let err = Client::new(cfg).unwrap_err();
        assert!(matches!(err, ClientError::Config(_)), "{host}: {err:?}");
    }
}

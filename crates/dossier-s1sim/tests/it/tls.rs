use crate::helpers::{spawn, url};

#[tokio::test]
async fn trusted_client_connects_and_untrusted_client_fails() {
    let (sim, client) = spawn(0).await;
    assert!(
        sim.base_url.starts_with("https://127.0.0.1:"),
        "{}",
        sim.base_url
    );
    let response = client
        .get(url(&sim, "/system/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.headers().contains_key("x-rqid"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"data": {"health": "ok"}}));

    // The certificate also names `localhost`.
    let port = sim.local_addr.port();
    let by_name = client
        .get(format!(
            "https://localhost:{port}/web/api/v2.1/system/status"
        ))
        .send()
        .await;
    assert_eq!(by_name.unwrap().status(), 200);

    // A client that does not trust the CA refuses the connection.
    let untrusted = reqwest::Client::new();
    let err = untrusted
        .get(url(&sim, "/system/status"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn writes_the_ca_and_releases_the_port_on_shutdown() {
    let (sim, client) = spawn(0).await;
    let dir = std::env::temp_dir().join(format!("s1sim-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ca.pem");
    sim.write_ca_pem(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), sim.ca_pem);
    std::fs::remove_dir_all(&dir).unwrap();

    let addr = sim.local_addr;
    let status_url = url(&sim, "/system/status");
    sim.shutdown().await;
    assert!(
        client.get(&status_url).send().await.is_err(),
        "server still answering"
    );
    // The same port can be served again (crash tests restart the emulator in place).
    let again = dossier_s1sim::start(
        dossier_s1sim::Tenant::new(&dossier_s1sim::SimConfig::new(1, 1, "t")),
        addr,
    )
    .await
    .unwrap();
    assert_eq!(again.local_addr, addr);
    again.shutdown().await;
}

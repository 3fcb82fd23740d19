//! TLS with a private CA: refused by default, trusted once its PEM is among the extra roots.

use std::net::SocketAddr;
use std::sync::Arc;

use dossier_sentinelone::{Client, ClientError, ThreatQuery};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::server::{fast_config, EMPTY_PAGE};

struct Pki {
    /// PEM of an unrelated CA followed by the CA that signed the server: every certificate of
    /// the bundle must be trusted, not just the first.
    bundle_pem: String,
    server_cert: CertificateDer<'static>,
    server_key: PrivateKeyDer<'static>,
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    (params.self_signed(&key).unwrap(), key)
}

fn pki() -> Pki {
    let (other, _) = ca("Unrelated CA");
    let (issuer, issuer_key) = ca("Dossier Test CA");
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer, &issuer_key)
        .unwrap();
    Pki {
        bundle_pem: format!("{}{}", other.pem(), issuer.pem()),
        server_cert: leaf.der().clone(),
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    }
}

/// A one-route HTTPS server: every request gets an empty threats page.
async fn serve_tls(pki: &Pki) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.server_cert.clone()], pki.server_key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{EMPTY_PAGE}",
                    EMPTY_PAGE.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_private_ca_is_trusted_only_through_extra_roots() {
    let pki = pki();
    let addr = serve_tls(&pki).await;
    let url = url::Url::parse(&format!("https://{addr}")).unwrap();

    let err = Client::new(fast_config(url.clone()))
        .unwrap()
        .verify()
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Tls(_)), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    let mut cfg = fast_config(url);
    cfg.extra_roots_pem = Some(pki.bundle_pem.into_bytes());
    let page = Client::new(cfg)
        .unwrap()
        .threats_page(&ThreatQuery::default())
        .await
        .unwrap();
    assert!(page.threats.is_empty());
}

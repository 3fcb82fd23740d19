//! Every `/api` error has the contract's shape, `{"error": kind, "message": text}` (issue 27,
//! item 11): unknown paths, wrong methods, paths that are not UTF-8 or do not decode, bad
//! query strings and bodies that do not parse.

use dossier_domain::access::{Licence, Role};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::spawn_app;

/// Method, path, content type, body and the status it must get.
type Case = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    u16,
);

fn assert_shape(what: &str, status: u16, body: &str, want: u16) {
    assert_eq!(status, want, "{what}: {body}");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 2, "{what}: {body}");
    assert!(
        v["error"].as_str().is_some_and(|k| !k.is_empty()),
        "{what}: {body}"
    );
    assert!(
        v["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
}

/// Sends raw bytes as a request (what no client library will send) and returns the status
/// and body of the answer.
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .parse()
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_error_has_the_json_error_shape() {
    let app = spawn_app(0).await;
    let account = app.account(Licence::Xops).await;
    let key = app.key(Some(&account), &[Role::Admin]).await;
    let send = |method: &str, path: &str, content_type: Option<&str>, body: Option<&str>| {
        let mut req = app
            .http
            .request(method.parse().unwrap(), format!("{}{path}", app.base))
            .bearer_auth(&key);
        if let Some(t) = content_type {
            req = req.header("content-type", t);
        }
        if let Some(b) = body {
            req = req.body(b.to_owned());
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let ct = resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, ct, resp.text().await.unwrap())
        }
    };
    let cases: [Case; 12] = [
        ("GET", "/api/v1/nothing-here", None, None, 404),
        ("GET", "/api/v2/stories", None, None, 404),
        ("GET", "/api", None, None, 404),
        ("DELETE", "/api/v1/stories", None, None, 405),
        ("PUT", "/api/v1/connectors", None, None, 405),
        ("GET", "/api/v1/stories/%FF%FE", None, None, 400),
        ("GET", "/api/v1/stories?limit=lots", None, None, 400),
        ("GET", "/api/v1/stories?limit=%FF", None, None, 400),
        ("GET", "/api/v1/events?from=yesterday", None, None, 400),
        (
            "POST",
            "/api/v1/connectors",
            Some("application/json"),
            Some("{not json"),
            400,
        ),
        (
            "POST",
            "/api/v1/connectors",
            Some("text/plain"),
            Some("{}"),
            400,
        ),
        (
            "PATCH",
            "/api/v1/connectors/x",
            Some("application/json"),
            Some("[1,"),
            400,
        ),
    ];
    for (method, path, ct, body, want) in cases {
        let (status, content_type, text) = send(method, path, ct, body).await;
        let what = format!("{method} {path}");
        assert_eq!(
            content_type.as_deref(),
            Some("application/json"),
            "{what}: {text}"
        );
        assert_shape(&what, status, &text, want);
    }
    // A path that is not UTF-8 at all, and a percent-encoding that is not one.
    let (status, body) = raw(
        app.running.addr,
        format!("GET /api/v1/stories/%C3%28 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert_shape("overlong UTF-8", status, &body, 400);
    let (status, body) = raw(
        app.running.addr,
        format!("GET /api/v1/connectors/%zz%4 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(status >= 400, "{status}");
    assert_shape("bad percent-encoding", status, &body, status);
    // Raw bytes that are not ASCII in the request line are not HTTP (RFC 9112 §3.2): the
    // HTTP parser refuses them with a bare 400 before any route or handler is reached, and
    // closes the connection. The server answers and goes on serving.
    let mut request =
        b"GET /api/v1/stories/\xff\xfe HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ".to_vec();
    request.extend_from_slice(format!("{key}\r\nConnection: close\r\n\r\n").as_bytes());
    let (status, _) = raw(app.running.addr, &request).await;
    assert_eq!(status, 400);
    let (status, _, text) = send("GET", "/api/v1/stories", None, None).await;
    assert_eq!(status, 200, "{text}");
    app.running.stop().await;
}

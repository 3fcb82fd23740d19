//! Connection exhaustion (issue 27, item 2): idle and half-sent connections cannot keep the
//! server from answering. Every wait is on a condition under a generous deadline.

use std::time::Duration;

use dossier_domain::access::{Licence, Role};
use dossier_server::ConnectionLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::spawn_app_with;

const DEADLINE: Duration = Duration::from_secs(20);

/// Opens a connection and sends `bytes` (a request line cut short, or nothing).
async fn open(addr: std::net::SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    if !bytes.is_empty() {
        s.write_all(bytes).await.unwrap();
    }
    s
}

/// Waits until the server closes the connection (a read sees its end), within the deadline.
async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let read_to_end = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(DEADLINE, read_to_end).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_or_half_sent_connections_leave_healthz_and_the_api_answering() {
    // A cap well under the flood, and timeouts longer than the test: only making room under
    // the cap lets the next request in.
    let app = spawn_app_with(0, |c| {
        c.connections = ConnectionLimits {
            header_read_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(600),
            max_connections: 100,
        };
    })
    .await;
    let account = app.account(Licence::Xops).await;
    let key = app.key(Some(&account), &[Role::Admin]).await;
    let addr = app.running.addr;
    let mut held = Vec::with_capacity(1000);
    for i in 0..1000 {
        let bytes: &[u8] = if i % 2 == 0 { b"" } else { b"GET /api/v1/conn" };
        held.push(open(addr, bytes).await);
    }
    let fresh = reqwest::Client::new();
    let health = tokio::time::timeout(DEADLINE, fresh.get(format!("{}/healthz", app.base)).send())
        .await
        .expect("/healthz answers while a thousand connections are held")
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let api = tokio::time::timeout(
        DEADLINE,
        fresh
            .get(format!("{}/api/v1/connectors", app.base))
            .bearer_auth(&key)
            .send(),
    )
    .await
    .expect("the API answers while a thousand connections are held")
    .unwrap();
    assert_eq!(api.status().as_u16(), 200);
    // The oldest of the held connections made room: the server closed it.
    assert!(closed_by_server(&mut held[0]).await);
    drop(held);
    app.running.stop().await;
}

#[tokio::test]
async fn a_request_head_that_does_not_arrive_in_time_is_cut_off() {
    let app = spawn_app_with(0, |c| {
        c.connections = ConnectionLimits {
            header_read_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_secs(600),
            max_connections: 100,
        };
    })
    .await;
    let addr = app.running.addr;
    let mut silent = open(addr, b"").await;
    let mut half = open(addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
    assert!(closed_by_server(&mut silent).await);
    assert!(closed_by_server(&mut half).await);
    app.running.stop().await;
}

#[tokio::test]
async fn a_kept_alive_connection_without_a_request_is_closed_after_the_idle_timeout() {
    let app = spawn_app_with(0, |c| {
        c.connections = ConnectionLimits {
            header_read_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_millis(300),
            max_connections: 100,
        };
    })
    .await;
    let mut s = open(
        app.running.addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let n = tokio::time::timeout(DEADLINE, s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    assert!(closed_by_server(&mut s).await);
    app.running.stop().await;
}

/// A request whose body trickles in (a slow-POST attack) is cut once the idle timeout has
/// passed since its head, so such requests cannot hold every connection.
#[tokio::test]
async fn a_request_body_that_does_not_arrive_in_time_is_cut_off() {
    let app = spawn_app_with(0, |c| {
        c.connections = ConnectionLimits {
            header_read_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_millis(300),
            max_connections: 100,
        };
    })
    .await;
    let mut s = open(
        app.running.addr,
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nusername=a",
    )
    .await;
    assert!(closed_by_server(&mut s).await);
    app.running.stop().await;
}

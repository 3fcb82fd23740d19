//! `dossier demo`: the first story of each producer is visible in the API within 5 seconds of
//! start, one file is seen under two EDRs, and the sign-in it prints works.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(port: u16, path: &str, key: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn sign_in(port: u16, user: &str, password: &str) -> String {
    let body = format!("username={user}&password={password}&next=%2Fstories");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The demo process, killed when the test ends however it ends: a failed assertion must not
/// leave a demo running.
struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_first_story_is_in_the_api_within_five_seconds() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = Demo(
        Command::new(env!("CARGO_BIN_EXE_dossier"))
            .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut logins = Vec::new();
    let key = loop {
        let line = lines.next().expect("the demo printed no API key").unwrap();
        if let Some(login) = line.trim().strip_prefix("Sign in:") {
            // "admin / <password>   (admin)"
            let mut words = login.split_whitespace();
            let user = words.next().unwrap().to_owned();
            assert_eq!(words.next(), Some("/"));
            logins.push((user, words.next().unwrap().to_owned()));
        }
        if let Some(k) = line.trim().strip_prefix("API key:") {
            break k.trim().to_owned();
        }
    };
    assert_eq!(logins.len(), 2, "an admin and a viewer sign-in");
    assert!(key.starts_with("dsk_"), "{key}");
    for producer in ["sentinelone", "defender", "crowdstrike"] {
        let story = loop {
            let resp = get(
                port,
                &format!("/api/v1/stories?limit=1&producer={producer}"),
                &key,
            );
            if resp.contains(&format!("\"producer\":\"{producer}\"")) {
                break resp;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "no {producer} story after 5 s: {resp}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        eprintln!(
            "first {producer} story after {:.2} s",
            started.elapsed().as_secs_f64()
        );
        assert!(story.starts_with("HTTP/1.1 200"), "{story}");
    }
    // One file the demo puts under two EDRs: its stories are of both.
    let shared = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let both = loop {
        let resp = get(
            port,
            &format!("/api/v1/stories?limit=1000&hash={shared}&from=2000-01-01T00:00:00Z"),
            &key,
        );
        if resp.contains("\"producer\":\"defender\"")
            && resp.contains("\"producer\":\"crowdstrike\"")
        {
            break true;
        }
        if started.elapsed() > Duration::from_secs(60) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(both, "the shared file is not under two EDRs");
    for (user, password) in &logins {
        let resp = sign_in(port, user, password);
        assert!(
            resp.starts_with("HTTP/1.1 303"),
            "{user} cannot sign in: {resp}"
        );
        assert!(resp.contains("dossier_session="), "{resp}");
    }
    let wrong = sign_in(port, &logins[0].0, "not-the-password");
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    // The demo leaves nothing in the working directory.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

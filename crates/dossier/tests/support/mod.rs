//! What the tests that run the `dossier` binary share: running it, ports, SIGKILL, a blocking
//! HTTP call, and the test PostgreSQL server.

#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_dossier")
}

/// Runs the binary to its end; its standard output, trimmed. Fails the test if it fails.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Runs the binary with `stdin` on its standard input, to its end, whatever its outcome.
pub fn dossier(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The standard output of a run that must have succeeded (else the test fails, showing both
/// outputs).
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn kill9(child: &mut Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
}

/// Makes an account (with every capability's licence) and an integrations editor's API key
/// for it on the database `url`: the account's id and the key.
pub fn account_with_editor(url: &str, name: &str) -> (String, String) {
    let account = run(&[
        "account",
        "create",
        "--name",
        name,
        "--licence",
        "xops",
        "--db",
        url,
    ]);
    let key = run(&[
        "api-key",
        "create",
        "--role",
        "integrations-editor",
        "--account",
        &account,
        "--db",
        url,
    ]);
    (account, key)
}

/// A minimal blocking HTTP POST of JSON with an API key, to keep the tests free of an async
/// client; the whole answer, head and body.
pub fn post(port: u16, path: &str, key: &str, body: &str) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // One write: written piece by piece, a request the server answers before its last piece
    // arrives would meet a closed connection.
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The test PostgreSQL server's URL (`DOSSIER_TEST_PG_URL`, or the local server), or `None`,
/// said loudly with a line CI refuses, where none answers.
pub fn postgres(what: &str) -> Option<String> {
    let url = std::env::var("DOSSIER_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    match postgres::Client::connect(&url, postgres::NoTls) {
        Ok(_) => Some(url),
        Err(e) => {
            println!(
                "SKIPPED: {what}: no PostgreSQL server at {url} ({e}); set DOSSIER_TEST_PG_URL"
            );
            None
        }
    }
}

/// A fresh schema on the test PostgreSQL server, and the URL of a database in it.
pub fn pg_schema(base: &str, prefix: &str) -> (String, String) {
    let schema = format!("{prefix}_{:08x}", rand::random::<u32>());
    let mut c = postgres::Client::connect(base, postgres::NoTls).unwrap();
    c.batch_execute(&format!("CREATE SCHEMA {schema}")).unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    (
        format!("{base}{sep}options=-c%20search_path%3D{schema}"),
        schema,
    )
}

/// Drops the schema a URL made by [`pg_schema`] names, with everything in it.
pub fn drop_pg_schema(base: &str, url: &str) {
    if let Some((_, schema)) = url.rsplit_once("search_path%3D") {
        if let Ok(mut c) = postgres::Client::connect(base, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

/// A schema made by [`pg_schema`], dropped with everything in it when this is dropped (from a
/// thread of its own: the blocking client may not run on a test's async runtime).
pub struct PgSchema {
    base: String,
    url: String,
}

impl PgSchema {
    pub fn new(base: &str, prefix: &str) -> Self {
        let (url, _) = pg_schema(base, prefix);
        Self {
            base: base.to_owned(),
            url,
        }
    }

    /// The URL of a database in the schema.
    pub fn url(&self) -> String {
        self.url.clone()
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (base, url) = (self.base.clone(), self.url.clone());
        let _ = std::thread::spawn(move || drop_pg_schema(&base, &url)).join();
    }
}

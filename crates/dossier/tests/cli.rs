//! The command line: `dossier user create` (the password printed alone or read from stdin),
//! API keys named, listed and revoked, `dossier sim --faults`, and a clear error for each bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Output, Stdio};

use support::{dossier, text};

/// A database in `dir` with one account: its URL and the account's id.
fn new_account(dir: &tempfile::TempDir) -> (String, String) {
    let db = format!("sqlite://{}", dir.path().join("d.db").display());
    let out = dossier(
        &[
            "account",
            "create",
            "--name",
            "Acme",
            "--licence",
            "xops",
            "--db",
            &db,
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let account = text(&out.stdout).trim().to_owned();
    (db, account)
}

/// `dossier api-key create --role ROLE --account ACCOUNT --db DB`.
fn create_key(db: &str, account: &str, role: &str) -> Output {
    dossier(
        &[
            "api-key",
            "create",
            "--role",
            role,
            "--account",
            account,
            "--db",
            db,
        ],
        None,
    )
}

#[test]
fn user_create_prints_a_password_alone_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let (db, account) = new_account(&dir);

    let out = dossier(
        &[
            "user",
            "create",
            "--username",
            "alice",
            "--role",
            "stories-editor",
            "--account",
            &account,
            "--db",
            &db,
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 1, "the password, alone: {printed:?}");
    assert!(
        lines[0].len() >= 24,
        "a generated password is long: {printed:?}"
    );

    let out = dossier(
        &[
            "user",
            "create",
            "--username",
            "bob",
            "--role",
            "admin",
            "--account",
            &account,
            "--password-stdin",
            "--db",
            &db,
        ],
        Some("a password of my own\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "a given password is not printed");

    let out = dossier(
        &[
            "user",
            "create",
            "--username",
            "op",
            "--role",
            "operator",
            "--db",
            &db,
        ],
        None,
    );
    assert!(
        out.status.success(),
        "an operator needs no account: {}",
        text(&out.stderr)
    );

    for (args, stdin, message) in [
        (
            vec![
                "--username",
                "ALICE",
                "--role",
                "admin",
                "--account",
                account.as_str(),
            ],
            None,
            "--username: \"ALICE\" is taken",
        ),
        (
            vec!["--username", "carol", "--role", "admin"],
            None,
            "--account: required unless the role is operator",
        ),
        (
            vec!["--username", "dave", "--role", "admin", "--account", "nope"],
            None,
            "--account: no account",
        ),
        (
            vec![
                "--username",
                "eve",
                "--role",
                "wizard",
                "--account",
                account.as_str(),
            ],
            None,
            "--role: unknown role \"wizard\"",
        ),
        (
            vec![
                "--username",
                "api-key:x",
                "--role",
                "admin",
                "--account",
                account.as_str(),
            ],
            None,
            "--username: only letters",
        ),
        (
            vec![
                "--username",
                "frank",
                "--role",
                "admin",
                "--account",
                account.as_str(),
                "--password-stdin",
            ],
            Some("short\n"),
            "--password: at least 12 characters",
        ),
    ] {
        let mut full = vec!["user", "create"];
        full.extend(args.iter().copied());
        full.extend(["--db", db.as_str()]);
        let out = dossier(&full, stdin);
        assert!(!out.status.success(), "{full:?} should fail");
        let err = text(&out.stderr);
        assert!(err.contains(message), "{full:?}: {err}");
        assert!(
            out.stdout.is_empty(),
            "{full:?} printed {:?}",
            text(&out.stdout)
        );
    }
}

/// `api-key list` names keys without showing them; `api-key revoke` removes one by its id and
/// says so; an unknown id is a clear error.
#[test]
fn api_keys_are_listed_by_id_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let (db, account) = new_account(&dir);
    let out = dossier(&["api-key", "list", "--db", &db], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).is_empty());
    assert!(
        text(&out.stderr).contains("no API keys"),
        "{}",
        text(&out.stderr)
    );
    let mut keys = Vec::new();
    for role in ["admin", "stories-viewer"] {
        let out = create_key(&db, &account, role);
        assert!(out.status.success(), "{}", text(&out.stderr));
        keys.push(text(&out.stdout).trim().to_owned());
    }
    let out = dossier(
        &["api-key", "list", "--account", &account, "--db", &db],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    for k in &keys {
        assert!(!listed.contains(k.as_str()), "a key is never printed again");
    }
    let first: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(first[1], account);
    assert!(lines.iter().any(|l| l.contains("\tadmin\t")), "{listed}");

    let out = dossier(&["api-key", "revoke", first[0], "--db", &db], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("revoked"),
        "{}",
        text(&out.stderr)
    );
    let out = dossier(&["api-key", "list", "--db", &db], None);
    assert_eq!(text(&out.stdout).lines().count(), 1);
    let out = dossier(&["api-key", "revoke", first[0], "--db", &db], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no API key with id"),
        "{}",
        text(&out.stderr)
    );
    let out = create_key(&db, &account, "operator");
    assert!(!out.status.success(), "an operator key has no account");
    assert!(
        text(&out.stdout).is_empty() && text(&out.stderr).contains("operator spans accounts"),
        "{}",
        text(&out.stderr)
    );
    let out = dossier(&["api-key", "list", "--account", "nope", "--db", &db], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--account"),
        "{}",
        text(&out.stderr)
    );
}

/// `api-key create --name` stores the name with the key and `api-key list` shows it (a key
/// without one shows `-`); a name that is empty, too long or holds a control or invisible
/// character is refused with the flag named, and no key is made.
#[test]
fn an_api_key_keeps_the_name_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let (db, account) = new_account(&dir);
    let named = |name: &str| {
        dossier(
            &[
                "api-key",
                "create",
                "--role",
                "admin",
                "--account",
                &account,
                "--name",
                name,
                "--db",
                &db,
            ],
            None,
        )
    };
    let out = named("  SOAR playbook ");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).trim().starts_with("dsk_"));
    let out = create_key(&db, &account, "stories-viewer");
    assert!(out.status.success(), "{}", text(&out.stderr));
    for (bad, why) in [
        ("", "--name: is empty"),
        (&*"x".repeat(65), "--name: at most 64 characters"),
        (
            "evil\u{1b}[2J",
            "--name: U+001B is a control or invisible character",
        ),
        ("gpj\u{202E}exe", "--name: U+202E"),
        ("two\nlines", "--name: U+000A"),
    ] {
        let out = named(bad);
        assert!(!out.status.success(), "{bad:?} should be refused");
        assert!(text(&out.stdout).is_empty(), "{bad:?}: no key printed");
        assert!(
            text(&out.stderr).contains(why),
            "{bad:?}: {}",
            text(&out.stderr)
        );
    }
    let out = dossier(&["api-key", "list", "--db", &db], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    let mut shown: Vec<&str> = listed
        .lines()
        .map(|l| l.split('\t').nth(4).unwrap())
        .collect();
    shown.sort_unstable();
    assert_eq!(shown, ["-", "SOAR playbook"], "{listed}");
}

/// Starts `dossier serve` with `args` and `envs`.
fn spawn_serve(args: &[&str], envs: &[(&str, &std::ffi::OsStr)]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_dossier"))
        .arg("serve")
        .args(args)
        .envs(envs.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `dossier serve` with `envs` set; it must exit by itself within 30 s.
fn serve_with(args: &[&str], envs: &[(&str, &std::ffi::OsStr)]) -> Output {
    let mut child = spawn_serve(args, envs);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("serve started where it should have refused: {envs:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// The switches of `serve` read from the environment as people write them (`1`, `yes`, `on`,
/// `true` and their opposites), refuse what is neither, and a CA file that holds no
/// certificate is refused before the server starts, not by every connector once it polls.
#[test]
fn serve_reads_its_switches_from_the_environment_and_refuses_a_ca_file_without_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("d.db").display());
    let args = ["--db", db.as_str(), "--listen", "127.0.0.1:0"];
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate\n").unwrap();
    for value in ["1", "yes", "on", "true", "TRUE", "0", "no", "off", "false"] {
        let out = serve_with(
            &args,
            &[
                ("DOSSIER_ALLOW_PRIVATE_TENANTS", value.as_ref()),
                ("DOSSIER_SECURE_COOKIES", value.as_ref()),
                ("DOSSIER_TENANT_CA_FILE", ca.as_os_str()),
            ],
        );
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{value}: {err}");
        assert!(
            err.contains("--tenant-ca-file") && err.contains("no certificate"),
            "{value}: {err}"
        );
    }
    let out = serve_with(
        &args,
        &[("DOSSIER_ALLOW_PRIVATE_TENANTS", "maybe".as_ref())],
    );
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("maybe") && err.contains("allow-private-tenants"),
        "{err}"
    );
}

/// Posts `body` to `path` on a server at `port` with `key`; returns the response's status line.
fn post(port: u16, path: &str, key: &str, body: &str) -> String {
    support::post(port, path, key, body)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// `0` and `off` in the environment turn a switch off, `1` and `yes` on: a tenant URL on an
/// internal address is refused, or taken, as `DOSSIER_ALLOW_PRIVATE_TENANTS` says.
#[test]
fn the_private_tenant_switch_follows_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let (db, account) = new_account(&dir);
    let out = create_key(&db, &account, "admin");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = text(&out.stdout).trim().to_owned();
    let connector =
        r#"{"kind":"sentinelone","name":"Lab","tenant_url":"https://127.0.0.1:9","api_token":"t"}"#;
    for (value, answer) in [("0", "400"), ("off", "400"), ("1", "201"), ("yes", "201")] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let mut child = spawn_serve(
            &["--db", &db, "--listen", &listen],
            &[("DOSSIER_ALLOW_PRIVATE_TENANTS", value.as_ref())],
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "serve did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let status = post(port, "/api/v1/connectors", &key, connector);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(status.contains(answer), "{value}: {status}");
    }
}

/// `dossier sim --faults`: the first requests for threats meet the faults given, in order, and a
/// list it cannot read is refused before anything starts.
#[test]
fn the_emulator_serves_the_faults_it_is_given() {
    let out = dossier(&["sim", "--token", "t", "--faults", "500,teapot"], None);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("--faults: \"teapot\": not a fault"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let mut sim = Command::new(env!("CARGO_BIN_EXE_dossier"))
        .args([
            "sim",
            "--token",
            "tok",
            "--threats",
            "3",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--faults", "500,429:1*2", "--ca-out", ca.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(sim.stdout.take().unwrap()));
    let first = lines.next().unwrap().unwrap();
    let url = first.rsplit(' ').next().unwrap().to_owned();
    let said: Vec<String> = lines.take(2).map(Result::unwrap).collect();
    assert_eq!(
        said[1],
        "The first 3 requests for threats meet the faults given"
    );

    let statuses = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let cert = reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(cert)
            .build()
            .unwrap();
        let mut got = Vec::new();
        for _ in 0..4 {
            let r = http
                .get(format!("{url}/web/api/v2.1/threats"))
                .header("Authorization", "ApiToken tok")
                .send()
                .await
                .unwrap();
            got.push((r.status().as_u16(), r.headers().contains_key("retry-after")));
        }
        got
    });
    sim.kill().unwrap();
    sim.wait().unwrap();
    assert_eq!(
        statuses,
        [(500, false), (429, true), (429, true), (200, false)]
    );
}

/// Logs written anywhere but a terminal (a file, a pipe, a collector) carry no colour codes.
#[test]
fn logs_carry_no_colour_codes_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("d.db").display());
    let out = Command::new(env!("CARGO_BIN_EXE_dossier"))
        .args([
            "account",
            "create",
            "--name",
            "Acme",
            "--licence",
            "xops",
            "--db",
            &db,
        ])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let logs = text(&out.stderr);
    assert!(logs.contains("database schema migrated"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "{logs:?}");
}

/// A metrics key has no account and no other role: it reads `/metrics` and nothing else.
#[test]
fn a_metrics_key_has_no_account_and_no_other_role() {
    let dir = tempfile::tempdir().unwrap();
    let (db, account) = new_account(&dir);
    let out = dossier(
        &["api-key", "create", "--role", "metrics", "--db", &db],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).trim().starts_with("dsk_"),
        "{}",
        text(&out.stdout)
    );
    for (role, with_account, says) in [
        ("metrics", true, "--account"),
        ("metrics,stories-viewer", false, "--role"),
        ("metrics,admin", true, "--role"),
    ] {
        let mut args = vec!["api-key", "create", "--role", role, "--db", &db];
        if with_account {
            args.extend(["--account", &account]);
        }
        let out = dossier(&args, None);
        assert!(!out.status.success(), "{role}");
        assert!(
            text(&out.stderr).contains(says),
            "{role}: {}",
            text(&out.stderr)
        );
    }
}

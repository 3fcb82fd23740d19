//! `dossier user create`: a web user from the command line, with the password printed alone or
//! read from stdin, and a clear error for each bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn dossier(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dossier"))
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

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn user_create_prints_a_password_alone_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
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

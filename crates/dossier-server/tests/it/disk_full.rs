//! A full disk, or any failing write, is visible (issue 27): the connector whose commit failed
//! goes to `error` saying why (from memory, since that cannot be written either), `/readyz`
//! fails, API and web writes answer 503 saying why, reads go on, and once space returns
//! everything resumes by itself with nothing lost or doubled.
//!
//! The database lives on a small tmpfs the test mounts. Mounting needs privilege: as root the
//! test mounts it directly; otherwise it runs itself again inside a user and mount namespace
//! (`unshare --user --map-root-user --mount`), where it is root; failing both, it says
//! `SKIPPED` (which CI refuses).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use dossier_domain::access::{Licence, Role};
use serde_json::{json, Value};

use crate::{spawn_app_storing_in, App};

const TEST: &str = "disk_full::a_full_disk_is_visible_and_everything_resumes_when_space_returns";
/// Set in the environment of the test run again inside a namespace.
const IN_NAMESPACE: &str = "DOSSIER_IT_IN_NAMESPACE";

/// A tmpfs of a few megabytes, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(dir: &tempfile::TempDir, size: &str) -> bool {
        Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk with a file of its own (whose path it returns): large writes first, then
    /// small ones, until nothing more fits.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        for chunk in [1 << 20, 4 << 10, 512] {
            let block = vec![0xa5u8; chunk];
            while f.write_all(&block).and_then(|()| f.flush()).is_ok() {}
        }
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: the server's connections may still hold files; the mount goes with the last.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .output();
    }
}

/// Keeps the database's WAL from starting over until the connection returned is dropped.
///
/// A full disk alone does not stop every write: once every frame of the WAL is copied into the
/// database, SQLite writes the next one at the start of the WAL again, in space the file
/// already has, so a small write (a connector's reason) may still fit. A reader whose snapshot
/// ends on a frame not yet copied keeps the WAL from starting over; with it, each write goes
/// at the end of the WAL, and once the disk is full none fits. Such a frame is written here
/// just before the snapshot is taken (the server's checkpoints come every 200 ms).
fn hold_wal(db: &Path) -> rusqlite::Connection {
    let writer = rusqlite::Connection::open(db).unwrap();
    writer
        .busy_timeout(std::time::Duration::from_secs(30))
        .unwrap();
    let version: i64 = writer
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    writer
        .execute_batch(&format!("PRAGMA user_version = {version}"))
        .unwrap();
    let reader = rusqlite::Connection::open(db).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    reader
}

/// The small disk, mounted; `None` when the test ran again in a namespace instead (and
/// passed there) or cannot run here (having said `SKIPPED`).
fn small_disk(size: &str) -> Option<SmallDisk> {
    let dir = tempfile::tempdir().unwrap();
    if SmallDisk::mount(&dir, size) {
        return Some(SmallDisk { dir });
    }
    if std::env::var_os(IN_NAMESPACE).is_some() {
        skipped("cannot mount a tmpfs, even as root of a user namespace");
        return None;
    }
    let run = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(IN_NAMESPACE, "1")
        .output();
    let out = match run {
        Ok(out) => out,
        Err(e) => {
            skipped(&format!(
                "cannot mount a tmpfs: not root, and no unshare ({e})"
            ));
            return None;
        }
    };
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    // The test harness's own exit code for a failed test.
    let failed = out.status.code() == Some(101);
    assert!(
        !failed,
        "the test failed in a user namespace:\n{stdout}\n{stderr}"
    );
    if !out.status.success() {
        skipped(&format!(
            "cannot mount a tmpfs: not root, and no user namespace ({})",
            stderr.trim()
        ));
        return None;
    }
    for line in stderr.lines().filter(|l| l.starts_with("SKIPPED")) {
        let _ = writeln!(std::io::stderr(), "{line}");
    }
    assert!(
        stdout.contains("1 passed") || stderr.contains("SKIPPED"),
        "the test did not run in the namespace:\n{stdout}"
    );
    None
}

/// Says why the test cannot run here, past the harness's capture, so every run shows it.
fn skipped(why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {TEST}: {why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_visible_and_everything_resumes_when_space_returns() {
    let Some(disk) = small_disk("24m") else {
        return;
    };
    let app = spawn_app_storing_in(40, Some(disk.path()), |_| {}).await;
    let account = app.account(Licence::Xops).await;
    let admin = app.key(Some(&account), &[Role::Admin]).await;
    let path = app.connector_path(&admin).await;
    app.until_read(&admin, &path, 40, 30).await;
    let mut web = app.signed_in(Some(&account), &[Role::Admin]).await;
    web.csrf().await;
    let story = first_story(&app, &admin).await;

    // Full: new threats arrive until a commit cannot be written and the database takes no
    // write at all (the WAL may have room left for a few first).
    let held = hold_wal(&disk.path().join("it.db"));
    let filler = disk.fill();
    app.until(60, || async {
        let (_, c) = app.call("GET", &path, Some(&admin), None).await;
        let (ready, _) = app.call("GET", "/readyz", None, None).await;
        if c["status"] == "error" && ready == 503 {
            return true;
        }
        app.tenant.generate_live(chrono::Utc::now());
        false
    })
    .await;
    let (_, c) = app.call("GET", &path, Some(&admin), None).await;
    let reason = c["status_detail"].as_str().unwrap().to_owned();
    assert!(
        reason.starts_with("the database could not be written"),
        "{reason}"
    );

    // Not ready, saying why.
    let (status, ready) = app.call("GET", "/readyz", None, None).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["status"], "database unavailable");
    assert!(
        ready["reason"]
            .as_str()
            .unwrap()
            .starts_with("the database could not be written"),
        "{ready}"
    );

    // A reason that cannot be written is shown from memory: the tenant going down changes
    // the connector's reason, which only the API and the page show.
    app.tenant.set_down(true);
    app.until(30, || async {
        let (_, c) = app.call("GET", &path, Some(&admin), None).await;
        c["status"] == "error" && c["status_detail"].as_str() != Some(reason.as_str())
    })
    .await;
    let (_, c) = app.call("GET", &path, Some(&admin), None).await;
    let id = path.rsplit('/').next().unwrap();
    let stored = app.state.store.get_connector(None, id).await.unwrap();
    assert_ne!(
        stored.status_detail,
        c["status_detail"].as_str().map(str::to_owned)
    );
    app.tenant.set_down(false);
    app.until(30, || async {
        let (_, c) = app.call("GET", &path, Some(&admin), None).await;
        c["status_detail"].as_str() == Some(reason.as_str())
    })
    .await;

    // Writes answer 503 with the reason, through the API and the pages.
    let comment = format!("/api/v1/stories/{story}/comments");
    let (status, body) = app
        .call(
            "POST",
            &comment,
            Some(&admin),
            Some(json!({"text": "seen"})),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "unavailable");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("the database could not be written"),
        "{body}"
    );
    let (status, page, _) = web
        .post_form(&format!("/stories/{story}/comments"), &[("text", "seen")])
        .await;
    assert_eq!(status, 503);
    assert!(page.contains("the database could not be written"), "{page}");

    // Reads go on.
    let (status, list) = app.call("GET", "/api/v1/stories", Some(&admin), None).await;
    assert_eq!(status, 200, "{list}");
    let (status, _) = web.get(&format!("/stories/{story}")).await;
    assert_eq!(status, 200);
    let (status, page) = web.get("/connectors").await;
    assert_eq!(status, 200);
    assert!(page.contains("the database could not be written"), "{page}");

    // Space returns: everything resumes by itself.
    std::fs::remove_file(filler).unwrap();
    drop(held);
    app.until(60, || async {
        let (ready, _) = app.call("GET", "/readyz", None, None).await;
        let (_, c) = app.call("GET", &path, Some(&admin), None).await;
        ready == 200
            && c["status"] == "connected"
            && c["health"]["threats"].as_u64() == Some(app.tenant.threat_count() as u64)
    })
    .await;
    let (status, body) = app
        .call(
            "POST",
            &comment,
            Some(&admin),
            Some(json!({"text": "seen"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // Nothing lost, nothing doubled: every threat of the tenant is one incident of one story.
    let mut tenant_ids = app.tenant.all_ids();
    tenant_ids.sort();
    let mut ingested = app.incident_ids(&admin).await;
    ingested.sort();
    assert_eq!(ingested, tenant_ids, "incident_created events");
    let stories = app.all_items(&admin, "/api/v1/stories").await;
    let in_stories: u64 = stories
        .iter()
        .map(|s| s["incident_count"].as_u64().unwrap())
        .sum();
    assert_eq!(in_stories, tenant_ids.len() as u64, "incidents in stories");
    let mut story_ids: Vec<&str> = stories.iter().map(|s| s["id"].as_str().unwrap()).collect();
    story_ids.sort_unstable();
    story_ids.dedup();
    assert_eq!(story_ids.len(), stories.len(), "stories listed once");
}

async fn first_story(app: &App, key: &str) -> String {
    let (status, list) = app
        .call("GET", "/api/v1/stories?limit=1", Some(key), None)
        .await;
    assert_eq!(status, 200, "{list}");
    let first: &Value = &list["items"][0];
    first["id"].as_str().unwrap().to_owned()
}

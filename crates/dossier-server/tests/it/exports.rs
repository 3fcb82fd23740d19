//! Large exports stream their rows (issue 27): the server reads the store a page at a time as
//! the client takes the body, so memory does not grow with the export.

use dossier_domain::access::{Licence, Role};
use dossier_domain::event::EventType;
use dossier_store::NewEvent;
use futures_util::StreamExt;

use crate::{spawn_app, App};

/// Writes `n` events of about `message_bytes` each to `account`.
async fn events(app: &App, account: &str, n: usize, message_bytes: usize) {
    let at = chrono::Utc::now() - chrono::Duration::hours(1);
    for (i, ms) in (0..n).zip(0i64..) {
        let event = NewEvent {
            account_id: account.to_owned(),
            event_type: EventType::ConnectorWarning,
            at: at + chrono::Duration::milliseconds(ms),
            connector_id: None,
            story_id: None,
            incident_id: None,
            message: format!("{i:08} {}", "m".repeat(message_bytes)),
            data: serde_json::json!({}),
        };
        app.state.store.insert_event(&event).await.unwrap();
    }
}

/// Reads an export's body as it comes, keeping none of it: (rows after the header, bytes).
async fn drain(resp: reqwest::Response) -> (usize, usize) {
    let mut body = resp.bytes_stream();
    let (mut lines, mut bytes) = (0, 0);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        bytes += chunk.len();
        lines += chunk.split(|b| *b == b'\n').count() - 1;
    }
    (lines.saturating_sub(1), bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_export_is_streamed_page_by_page_and_complete() {
    let app = spawn_app(0).await;
    let account = app.account(Licence::Xops).await;
    events(&app, &account, 2_500, 20).await;
    let web = app.signed_in(Some(&account), &[Role::Admin]).await;
    let resp = web.get_response("/events.csv").await;
    assert_eq!(resp.status().as_u16(), 200);
    // A body built whole before answering has a length; a streamed one is chunked.
    assert!(
        resp.headers().get("content-length").is_none(),
        "{:?}",
        resp.headers()
    );
    let text = resp.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("id,at,type,account_id,connector_id,story_id,incident_id,message")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2_500, "every event once, across pages");
    let distinct: std::collections::BTreeSet<&str> = rows.iter().copied().collect();
    assert_eq!(distinct.len(), 2_500);
}

/// A figure of this process's `/proc/self/status` (`VmHWM`, `RssAnon`), in MiB.
fn status_mib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

/// The bound below, held on every run: the measuring test runs alone in a process of its own,
/// whose peak memory is then the server's and not that of the tests running beside it.
#[test]
fn eight_concurrent_exports_stay_under_300_mb_in_a_process_of_their_own() {
    let name = "exports::eight_concurrent_exports_of_100k_rows_stay_under_300_mb";
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stdout.lines().filter(|l| l.starts_with("export_")) {
        println!("{line}");
    }
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the export test failed in its own process:\n{stdout}\n{stderr}"
    );
}

/// Eight exports of 100,000 rows of about 1 KB each at once keep the server under 300 MB;
/// built whole, each body alone would be over 100 MB. The memory is the process's peak
/// resident memory while the exports run (`VmHWM` after resetting it: `export_peak_rss_mib`),
/// which counts the database pages SQLite connections map as well as the heap; its anonymous
/// part (the heap, SQLite's page caches) is sampled too (`export_peak_anon_mib`). Readers map
/// nothing: when each mapped the file, the events table counted once per reader that read it
/// (640 MiB). Ignored when the suite runs, because its figure is the whole test process's:
/// the test above runs it alone in a process of its own
/// (`cargo test -p dossier-server --test it -- --ignored exports --nocapture` runs it here).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "run alone in its own process by the test above"]
async fn eight_concurrent_exports_of_100k_rows_stay_under_300_mb() {
    const ROWS: usize = 100_000;
    let app = spawn_app(0).await;
    let account = app.account(Licence::Xops).await;
    events(&app, &account, ROWS, 1_000).await;
    let web = app.signed_in(Some(&account), &[Role::Admin]).await;
    // The peak from here on: writing the events is not the export's.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let baseline = status_mib("RssAnon");
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = std::sync::Arc::clone(&sampling);
        std::thread::spawn(move || {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(status_mib("RssAnon"));
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            peak
        })
    };
    let started = std::time::Instant::now();
    let exports = (0..8).map(|_| async {
        let resp = web.get_response("/events.csv").await;
        assert_eq!(resp.status().as_u16(), 200);
        drain(resp).await
    });
    let done = futures_util::future::join_all(exports).await;
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    let hwm = status_mib("VmHWM");
    for (rows, bytes) in &done {
        assert_eq!(*rows, ROWS);
        assert!(*bytes > ROWS * 1_000, "{bytes}");
    }
    println!("export_baseline_anon_mib={baseline}");
    println!("export_peak_anon_mib={peak}");
    println!("export_peak_rss_mib={hwm}");
    println!("export_seconds={:.1}", started.elapsed().as_secs_f64());
    assert!(hwm < 300, "peak resident memory {hwm} MiB");
}

//! A backfill reads several pages before it commits them together while another commit holds
//! the writer, and commits at once when the writer is free. A failure part-way reads the
//! uncommitted pages again: nothing is lost, nothing is doubled, and the stories are those of a
//! page-by-page ingest.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use dossier_s1sim::Fault;

use crate::spawn_app_with;

const THREATS: usize = 300;
const PAGE: u32 = 10;

/// Ingests the seeded tenant with `batch` threats per commit and `budget` for all batches,
/// the tenant serving `faults` first; returns the story sizes, the incidents created and the
/// commits made. With `writer_busy`, the connector sees another commit under way throughout
/// (as when other connectors keep the writer busy).
async fn backfill(
    batch: usize,
    budget: usize,
    faults: Vec<Fault>,
    writer_busy: bool,
) -> (Vec<u64>, Vec<String>, u64) {
    let app = spawn_app_with(THREATS, |c| {
        c.poll_policy.page_size = PAGE;
        c.ingest_batch = batch;
        c.ingest_budget = budget;
        c.ingest_batch_wait = Duration::from_secs(30);
        // One walk, then quiet: every commit counted below belongs to the backfill.
        c.poll_interval = Duration::from_secs(3600);
    })
    .await;
    app.tenant.push_faults(faults);
    if writer_busy {
        app.state.commits_in_flight.fetch_add(1, Ordering::Relaxed);
    }
    let (admin, path) = app.admin_with_connector().await;
    app.until_read(&admin, &path, THREATS, 60).await;
    let sizes = app.story_sizes(&admin).await;
    let ids = app.incident_ids(&admin).await;
    let (_, c) = app.call("GET", &path, Some(&admin), None).await;
    let commits = c["health"]["polls"].as_u64().unwrap();
    app.running.stop().await;
    (sizes, ids, commits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_commits_pages_together_and_a_failure_reads_them_again() {
    let pass = || Fault::Slow(Duration::ZERO);
    // Failures in the middle of batches: the 4th, 11th and 19th requests for threats.
    let mut faults = Vec::new();
    for (normal, fault) in [
        (3, Fault::ServerError),
        (6, Fault::Truncated),
        (7, Fault::Garbage),
    ] {
        faults.extend(std::iter::repeat_with(pass).take(normal));
        faults.push(fault);
    }
    let (batched, ids, commits) = backfill(45, 1000, faults, true).await;
    let (single, _, single_commits) = backfill(1, 1000, Vec::new(), true).await;

    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(
        (ids.len(), unique.len()),
        (THREATS, THREATS),
        "every threat became exactly one incident"
    );
    assert_eq!(batched.iter().sum::<u64>(), THREATS as u64);
    assert_eq!(
        batched, single,
        "the same stories whether pages commit together or one by one"
    );
    let pages = (THREATS as u64).div_ceil(u64::from(PAGE));
    assert!(
        single_commits >= pages,
        "page by page: a commit per page ({single_commits} for {pages} pages)"
    );
    // The first page commits alone (stories show at once), then five pages at a time.
    assert!(
        commits * 3 <= pages,
        "batched: several pages per commit ({commits} commits for {pages} pages)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_free_writer_takes_every_page_at_once() {
    // Nothing else is committing: waiting for more pages would leave the writer idle.
    let (sizes, ids, commits) = backfill(45, 1000, Vec::new(), false).await;
    assert_eq!(ids.len(), THREATS);
    assert_eq!(sizes.iter().sum::<u64>(), THREATS as u64);
    let pages = (THREATS as u64).div_ceil(u64::from(PAGE));
    assert!(
        commits >= pages,
        "{commits} commits for {pages} pages: pages waited for a batch with the writer free"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_budget_left_every_page_commits_alone() {
    // Other connectors hold the whole budget: nothing may wait in memory for a batch.
    let (sizes, ids, commits) = backfill(45, 0, Vec::new(), true).await;
    assert_eq!(ids.len(), THREATS);
    assert_eq!(sizes.iter().sum::<u64>(), THREATS as u64);
    let pages = (THREATS as u64).div_ceil(u64::from(PAGE));
    assert!(
        commits >= pages,
        "{commits} commits for {pages} pages: pages were batched without budget"
    );
}

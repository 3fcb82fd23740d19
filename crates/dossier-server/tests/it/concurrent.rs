//! Two connectors of one account read the same tenant at the same time. Their batches are
//! planned on readers while the other's commit, so a plan is often out of date by the time
//! it is used, and both try to write the same threats: the stories must still be those of one
//! connector reading after the other, each threat one incident, whichever connector read it.

use std::time::Duration;

use dossier_domain::access::{Licence, Role};

use crate::{spawn_app_with, App};

const THREATS: usize = 200;

async fn app() -> App {
    spawn_app_with(THREATS, |c| {
        c.poll_policy.page_size = 10;
        c.ingest_batch = 20;
        c.ingest_batch_wait = Duration::from_millis(1);
        c.poll_interval = Duration::from_secs(3600);
    })
    .await
}

/// Waits until every connector at `paths` has finished its first sync and the account's
/// stories hold every threat of the tenant.
async fn until_synced(app: &App, key: &str, paths: &[String]) {
    app.until(120, || async {
        for path in paths {
            let (_, c) = app.call("GET", path, Some(key), None).await;
            if c["status"] != "connected" || !c["backfill"].is_null() {
                return false;
            }
        }
        app.story_sizes(key).await.iter().sum::<u64>() >= THREATS as u64
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_connectors_of_one_account_correlate_as_if_one_read_after_the_other() {
    let one_then_other = {
        let app = app().await;
        let account = app.account(Licence::Xops).await;
        let admin = app.key(Some(&account), &[Role::Admin]).await;
        let first = app.connector_path(&admin).await;
        app.until_read(&admin, &first, THREATS, 120).await;
        let second = app.connector_path(&admin).await;
        until_synced(&app, &admin, &[first, second]).await;
        let sizes = app.story_sizes(&admin).await;
        app.running.stop().await;
        sizes
    };
    let together = {
        let app = app().await;
        let account = app.account(Licence::Xops).await;
        let admin = app.key(Some(&account), &[Role::Admin]).await;
        let first = app.connector_path(&admin).await;
        let second = app.connector_path(&admin).await;
        until_synced(&app, &admin, &[first, second]).await;
        let sizes = app.story_sizes(&admin).await;
        app.running.stop().await;
        sizes
    };
    assert_eq!(
        one_then_other.iter().sum::<u64>(),
        THREATS as u64,
        "each threat is one incident, whichever connector read it"
    );
    assert!(
        one_then_other.len() < THREATS,
        "incidents of one device and file share stories: {one_then_other:?}"
    );
    assert_eq!(together, one_then_other);
}

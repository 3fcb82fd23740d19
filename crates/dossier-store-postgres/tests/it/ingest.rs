//! Ingest from many nodes at once: what `SQLite`'s one writer never has to face.

use dossier_domain::correlate::Policy;
use dossier_store::conformance::{block_on, incident, sha1, t0, Fixture};
use dossier_store::{IngestPage, Store};
use dossier_store_postgres::{PostgresStore, Settings};

/// How many threats the test commits.
const THREATS: u32 = 96;

/// Threats of two connectors of one account that correlate across them: two devices, two
/// files, and some without a file (keyed by their storyline), so that most pages of either
/// connector change the same stories. Each is created at its own hour, so no story depends on
/// how connector ids happen to sort.
fn threats() -> Vec<(usize, dossier_domain::Incident)> {
    (0..THREATS)
        .map(|n| {
            let hash = (n % 7 != 0).then(|| sha1(n % 2));
            let mut inc = incident(
                &format!("t{n}"),
                0,
                &format!("a{}", n % 3 % 2),
                hash.as_deref(),
            );
            inc.created_at += chrono::Duration::hours(i64::from(n));
            inc.updated_at = inc.created_at;
            ((n % 2) as usize, inc)
        })
        .collect()
}

/// The pages of each of two connectors, two threats a page.
fn pages(
    f: &Fixture<crate::PgBackend>,
    second: &dossier_store::ConnectorRecord,
) -> [Vec<IngestPage>; 2] {
    let mut by_connector: [Vec<dossier_domain::Incident>; 2] = Default::default();
    for (k, inc) in threats() {
        by_connector[k].push(inc);
    }
    let [one, two] = by_connector;
    // Stories of three threats at most, so that each commit decides where windows split; one
    // connector's threats come newest first, so that earlier ones reshape the windows.
    let page = |c: &[dossier_domain::Incident]| IngestPage {
        policy: Policy {
            cap: 3,
            ..Policy::default()
        },
        ..f.page(c.to_vec(), t0())
    };
    let one = one.chunks(2).map(page).collect();
    let two = two
        .rchunks(2)
        .map(|c| IngestPage {
            connector_id: second.id.clone(),
            generation: second.generation,
            ..page(c)
        })
        .collect();
    [one, two]
}

async fn commit_all(store: &PostgresStore, pages: Vec<IngestPage>) {
    for page in pages {
        store.commit_page(page).await.unwrap();
    }
}

/// Two nodes committing pages of one account at the same time tell the stories one node tells
/// committing the same pages one after another: each commit correlates against every commit
/// of the account before it, never against half of one.
#[test]
fn two_nodes_committing_one_accounts_pages_at_once_tell_the_stories_of_one() {
    let Some(b) = crate::backend() else {
        return;
    };
    block_on(async move {
        let alone = Fixture::new(&b).await;
        let second = alone
            .add_connector("sentinelone", "s1 again", "https://example.sentinelone.net")
            .await;
        let [one, two] = pages(&alone, &second);
        commit_all(&alone.store, one).await;
        commit_all(&alone.store, two).await;

        let together = Fixture::new(&b).await;
        let second = together
            .add_connector("sentinelone", "s1 again", "https://example.sentinelone.net")
            .await;
        let url = together.guard.url();
        let other_node = tokio::task::spawn_blocking(move || {
            PostgresStore::open(&url, crate::s1(), &Settings::default())
        })
        .await
        .unwrap()
        .unwrap();
        let [one, two] = pages(&together, &second);
        tokio::join!(
            commit_all(&together.store, one),
            commit_all(&other_node, two)
        );

        let expected = alone.stories_by_members().await;
        assert!(expected.len() > 1, "the threats tell several stories");
        assert_eq!(together.stories_by_members().await, expected);
        assert_eq!(together.assignment().await.len(), THREATS as usize);
    });
}

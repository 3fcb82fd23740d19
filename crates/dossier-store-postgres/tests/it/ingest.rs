//! Ingest from many nodes at once: what `SQLite`'s one writer never has to face.

use dossier_store::conformance::{block_on, incident, sha1, t0, Fixture};
use dossier_store::{IngestPage, Store};
use dossier_store_postgres::{PostgresStore, Settings};

/// Threats of two connectors of one account that correlate across them: four devices, three
/// files, and some without a file (keyed by their storyline). Each is created at its own time,
/// so no two stories depend on how connector ids happen to sort.
fn threats() -> Vec<(usize, dossier_domain::Incident)> {
    (0..48u32)
        .map(|n| {
            let hash = (n % 5 != 0).then(|| sha1(n % 3));
            let inc = incident(
                &format!("t{n}"),
                i64::from(n),
                &format!("a{}", n % 4),
                hash.as_deref(),
            );
            ((n % 2) as usize, inc)
        })
        .collect()
}

/// The pages of each of two connectors, four threats a page.
fn pages(
    f: &Fixture<crate::PgBackend>,
    second: &dossier_store::ConnectorRecord,
) -> [Vec<IngestPage>; 2] {
    let mut by_connector: [Vec<dossier_domain::Incident>; 2] = Default::default();
    for (k, inc) in threats() {
        by_connector[k].push(inc);
    }
    let [one, two] = by_connector;
    let one = one.chunks(4).map(|c| f.page(c.to_vec(), t0())).collect();
    let two = two
        .chunks(4)
        .map(|c| IngestPage {
            connector_id: second.id.clone(),
            generation: second.generation,
            ..f.page(c.to_vec(), t0())
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
        assert_eq!(together.assignment().await.len(), 48);
    });
}

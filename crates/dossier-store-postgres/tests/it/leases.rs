//! Leases between nodes: each connector is run by one node, connectors spread evenly, and a
//! node that lost a lease cannot write for it.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use dossier_store::{HealthUpdate, NewConnector, Store, StoreError};
use dossier_store_postgres::{PostgresStore, Settings};

use crate::{backend, s1, Schema};

const TTL: Duration = Duration::from_secs(30);

async fn open(url: &str) -> PostgresStore {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || PostgresStore::open(&url, s1(), &Settings::default()))
        .await
        .unwrap()
        .unwrap()
}

/// A SentinelOne connector of `account` to `url`: its id.
async fn connector(store: &PostgresStore, account: &str, name: &str, url: &str) -> String {
    store
        .create_connector(&NewConnector {
            account_id: account.to_owned(),
            kind: "sentinelone".into(),
            name: name.to_owned(),
            description: None,
            tenant_url: url.to_owned(),
            config: "{}".into(),
            token_enc: vec![1],
            track_errors: false,
            write_back: false,
            response: false,
            now: Utc::now(),
        })
        .await
        .unwrap()
        .id
}

async fn connectors(store: &PostgresStore, n: usize) -> Vec<String> {
    let account = store
        .create_account("Acme", dossier_domain::access::Licence::Xops)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            connector(
                store,
                &account.id,
                &format!("s1-{i}"),
                &format!("https://t{i}.sentinelone.net"),
            )
            .await,
        );
    }
    ids.sort();
    ids
}

async fn round(store: &PostgresStore, node: &str, ttl: Duration) -> BTreeSet<String> {
    store
        .lease_connectors(node, ttl)
        .await
        .unwrap()
        .expect("PostgreSQL leases")
        .into_iter()
        .collect()
}

#[test]
fn connectors_spread_over_the_live_nodes_each_held_by_one() {
    let Some(_) = backend() else { return };
    dossier_store::conformance::block_on(async {
        let schema = Schema::new();
        let (a, b, c) = (
            open(&schema.url()).await,
            open(&schema.url()).await,
            open(&schema.url()).await,
        );
        let all: BTreeSet<String> = connectors(&a, 7).await.into_iter().collect();

        // Alone, a node takes every connector.
        assert_eq!(round(&a, "a", TTL).await, all);
        // A second node finds them all held; the first gives up what is past its share, and
        // the second takes it.
        assert!(round(&b, "b", TTL).await.is_empty());
        let a_held = round(&a, "a", TTL).await;
        assert_eq!(
            a_held.len(),
            4,
            "7 / 2, and the remainder to the first node"
        );
        let b_held = round(&b, "b", TTL).await;
        assert_eq!(b_held.len(), 3);
        assert!(a_held.is_disjoint(&b_held));
        assert_eq!(&a_held | &b_held, all);

        // A third joins: after a round each, the nodes hold 3, 2 and 2, none twice.
        round(&c, "c", TTL).await;
        round(&a, "a", TTL).await;
        round(&b, "b", TTL).await;
        let held = [
            round(&a, "a", TTL).await,
            round(&b, "b", TTL).await,
            round(&c, "c", TTL).await,
        ];
        let sizes: Vec<usize> = held.iter().map(BTreeSet::len).collect();
        assert_eq!(sizes, [3, 2, 2]);
        assert_eq!(held.iter().fold(BTreeSet::new(), |u, h| &u | h), all);

        // A node that stops gives its connectors up; the others take them at once.
        a.release_leases("a").await.unwrap();
        let (b_held, c_held) = (round(&b, "b", TTL).await, round(&c, "c", TTL).await);
        assert!(b_held.is_disjoint(&c_held));
        assert_eq!(&b_held | &c_held, all);
    });
}

#[test]
fn a_node_whose_lease_expired_cannot_write_for_its_connector() {
    let Some(_) = backend() else { return };
    dossier_store::conformance::block_on(async {
        let schema = Schema::new();
        let (a, b) = (open(&schema.url()).await, open(&schema.url()).await);
        let id = connectors(&a, 1).await.remove(0);

        // Node a takes the lease with a time to live that is over at once: as if it paused
        // (a long GC, a partition) past its lease without knowing.
        assert!(round(&a, "a", Duration::from_micros(1)).await.contains(&id));
        let fence = a.get_connector(None, &id).await.unwrap().generation;
        // Node b finds it expired and takes it, under a new fence.
        assert!(round(&b, "b", TTL).await.contains(&id));
        let taken = b.get_connector(None, &id).await.unwrap().generation;
        assert!(taken > fence);

        // What a's worker still sends is refused whole.
        let stale = HealthUpdate {
            status: Some("connected".into()),
            polls_inc: 1,
            generation: Some(fence),
            ..HealthUpdate::default()
        };
        assert!(matches!(
            a.set_connector_health(&id, &stale).await,
            Err(StoreError::LeaseLost)
        ));
        // While a says nothing, b keeps it, and b's worker writes.
        assert!(round(&b, "b", TTL).await.contains(&id));
        let fresh = HealthUpdate {
            generation: Some(taken),
            polls_inc: 1,
            ..HealthUpdate::default()
        };
        b.set_connector_health(&id, &fresh).await.unwrap();
        assert_eq!(b.get_connector(None, &id).await.unwrap().polls, 1);
    });
}

/// A tenant's connectors (one console, one token) go to one node, so that the node paces the
/// token as one; a tenant of several connectors is never passed back and forth.
#[test]
fn a_tenants_connectors_are_held_by_one_node() {
    let Some(_) = backend() else { return };
    dossier_store::conformance::block_on(async {
        let schema = Schema::new();
        let (a, b) = (open(&schema.url()).await, open(&schema.url()).await);
        let account = a
            .create_account("Acme", dossier_domain::access::Licence::Xops)
            .await
            .unwrap();
        // Three connectors of one console, and one of another.
        let mut ids = Vec::new();
        for (i, url) in [
            "https://one.example",
            "https://one.example",
            "https://one.example",
            "https://two.example",
        ]
        .iter()
        .enumerate()
        {
            ids.push(connector(&a, &account.id, &format!("c{i}"), url).await);
        }
        let one: BTreeSet<String> = ids[..3].iter().cloned().collect();
        let two: BTreeSet<String> = ids[3..].iter().cloned().collect();
        for _ in 0..3 {
            round(&a, "a", TTL).await;
            round(&b, "b", TTL).await;
        }
        let (ha, hb) = (round(&a, "a", TTL).await, round(&b, "b", TTL).await);
        assert!(ha.is_disjoint(&hb));
        assert_eq!(&ha | &hb, &one | &two);
        for held in [&ha, &hb] {
            assert!(one.is_subset(held) || one.is_disjoint(held), "{held:?}");
        }
        // Stable: another round moves nothing.
        assert_eq!(round(&a, "a", TTL).await, ha);
        assert_eq!(round(&b, "b", TTL).await, hb);
    });
}

/// A lease round has a connection of its own: a node whose every pooled connection is held
/// (here the pool's one, by a read waiting on a table another session locked; in life, commits
/// waiting their account's turn) still renews its leases before they expire.
#[test]
fn a_lease_round_does_not_wait_for_a_busy_pool() {
    let Some(_) = backend() else { return };
    let schema = Schema::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let store = {
        let url = schema.url();
        let settings = Settings {
            pool_size: 1,
            ..Settings::default()
        };
        PostgresStore::open(&url, s1(), &settings).unwrap()
    };
    let ids: BTreeSet<String> = rt.block_on(connectors(&store, 3)).into_iter().collect();

    let mut other = postgres::Client::connect(&schema.url(), postgres::NoTls).unwrap();
    let mut tx = other.transaction().unwrap();
    tx.batch_execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let busy = {
        let store = store.clone();
        rt.spawn(async move { store.list_accounts().await })
    };
    // The pool's one connection now waits for the lock.
    let mut watch = postgres::Client::connect(&schema.url(), postgres::NoTls).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while watch
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE relation = 'accounts'::regclass AND NOT granted",
            &[],
        )
        .unwrap()
        .get::<_, i64>(0)
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the read never waited"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let round = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), store.lease_connectors("a", TTL)).await
    });
    let held: BTreeSet<String> = round
        .expect("the lease round waited for the busy pool")
        .unwrap()
        .expect("PostgreSQL leases")
        .into_iter()
        .collect();
    assert_eq!(held, ids);
    assert!(!busy.is_finished(), "the read was still waiting");

    tx.rollback().unwrap();
    assert_eq!(rt.block_on(busy).unwrap().unwrap().len(), 1);
}

//! The story list, counts, groups and triage over the benchmark's synthetic stories: stories
//! made without ingest, so these reads are tried on a store of many stories.

use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};
use dossier_domain::access::Licence;
use dossier_domain::story::Status;
use dossier_store::conformance::Backend;
use dossier_store::{Store, StoryGroup, StoryQuery, StorySortField, StoryUpdate};

const N: u64 = 240;

/// A store of `N` synthetic stories in one account. The backend is found (and the server
/// reached) outside the test's runtime, since the blocking client may not run inside one.
async fn seeded(
    b: crate::PgBackend,
) -> (dossier_store_postgres::PostgresStore, crate::Schema, String) {
    let (store, guard) = b.fresh(b.remap()).await;
    let account = store.create_account("Acme", Licence::Xops).await.unwrap();
    let now = Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap();
    store
        .seed_synthetic_stories(&account.id, N, now, &[b.producer()])
        .await
        .unwrap();
    (store, guard, account.id)
}

fn query(account: &str) -> StoryQuery {
    StoryQuery {
        account_id: Some(account.to_owned()),
        limit: 1000,
        ..Default::default()
    }
}

#[test]
fn synthetic_stories_page_each_once_both_ways_in_every_sort() {
    let Some(b) = crate::backend() else {
        return;
    };
    dossier_store::conformance::block_on(async move {
        let (store, _guard, account) = seeded(b).await;
        for (name, field) in StorySortField::ALL {
            for desc in [false, true] {
                let mut pages = Vec::new();
                let mut cursor = None;
                loop {
                    let q = StoryQuery {
                        sort: *field,
                        descending: desc,
                        limit: 17,
                        cursor: cursor.clone(),
                        ..query(&account)
                    };
                    let page = store.list_stories(&q).await.unwrap();
                    let ids: Vec<String> = page.items.iter().map(|s| s.id.clone()).collect();
                    pages.push((ids, page.prev_cursor.clone()));
                    match page.next_cursor {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
                let seen: Vec<&String> = pages.iter().flat_map(|(ids, _)| ids).collect();
                let unique: BTreeSet<_> = seen.iter().collect();
                assert_eq!(
                    seen.len(),
                    unique.len(),
                    "{name} desc={desc}: a story twice"
                );
                assert_eq!(unique.len() as u64, N, "{name} desc={desc}: a story missed");
                // Back from the last page, each page before is the one read before it.
                for k in (1..pages.len()).rev() {
                    let q = StoryQuery {
                        sort: *field,
                        descending: desc,
                        limit: 17,
                        cursor: pages[k].1.clone(),
                        ..query(&account)
                    };
                    let back = store.list_stories(&q).await.unwrap();
                    let ids: Vec<String> = back.items.iter().map(|s| s.id.clone()).collect();
                    assert_eq!(ids, pages[k - 1].0, "{name} desc={desc}: page {k} back");
                }
            }
        }
    });
}

#[test]
fn synthetic_stories_count_group_and_filter() {
    let Some(b) = crate::backend() else {
        return;
    };
    dossier_store::conformance::block_on(async move {
        let (store, _guard, account) = seeded(b).await;
        let q = query(&account);
        assert_eq!(store.count_stories(&q, 1_000_000).await.unwrap(), N);
        assert_eq!(store.count_stories(&q, 100).await.unwrap(), 100);
        for (name, by) in StoryGroup::ALL {
            let groups = store.group_stories(&q, *by, 1000).await.unwrap();
            let sum: u64 = groups.iter().map(|g| g.count).sum();
            assert_eq!(sum, N, "grouped by {name}");
            if *by == StoryGroup::Device {
                assert!(groups.iter().all(|g| g.label.starts_with("host-")));
            }
        }
        let all = store.list_stories(&q).await.unwrap().items;
        let one = &all[0];
        let name = one.device.name.clone().unwrap();
        let by_device = StoryQuery {
            device: Some(name.to_ascii_uppercase()),
            ..query(&account)
        };
        let found = store.list_stories(&by_device).await.unwrap().items;
        assert!(found.iter().any(|s| s.id == one.id));
        assert!(found
            .iter()
            .all(|s| s.device.name.as_deref() == Some(name.as_str())));
        // An operator, across accounts, finds them the same.
        let operator = StoryQuery {
            account_id: None,
            ..by_device.clone()
        };
        assert_eq!(
            store.count_stories(&operator, 1000).await.unwrap(),
            found.len() as u64
        );
        let search = StoryQuery {
            q: Some(name.to_ascii_uppercase()),
            ..query(&account)
        };
        let found_by_text = store.list_stories(&search).await.unwrap().items;
        assert_eq!(found_by_text.len(), found.len());
        let by_hash = StoryQuery {
            hash: one.file.sha1.clone(),
            ..query(&account)
        };
        let found = store.list_stories(&by_hash).await.unwrap().items;
        assert!(found.iter().any(|s| s.id == one.id));
        let by_status = StoryQuery {
            status: vec![Status::Closed],
            ..query(&account)
        };
        let closed = store.list_stories(&by_status).await.unwrap().items;
        assert!(!closed.is_empty() && closed.iter().all(|s| s.status == Status::Closed));
    });
}

#[test]
fn synthetic_stories_take_triage_and_comments() {
    let Some(b) = crate::backend() else {
        return;
    };
    dossier_store::conformance::block_on(async move {
        let (store, guard, account) = seeded(b).await;
        let now = Utc.with_ymd_and_hms(2025, 6, 2, 0, 0, 0).unwrap();
        let events = || {
            scalar(
                &guard.name,
                &format!("SELECT count(*) FROM events WHERE account_id = '{account}'"),
            )
        };
        let open = StoryQuery {
            status: vec![Status::Open],
            ..query(&account)
        };
        let target = store.list_stories(&open).await.unwrap().items[0].clone();
        let change = StoryUpdate {
            status: Some(Status::PendingAnalysis),
            ..Default::default()
        };
        let d = store
            .update_story(Some(&account), &target.id, &change, "ann", now)
            .await
            .unwrap();
        assert_eq!(d.story.status, Status::PendingAnalysis);
        assert!(d.timeline.iter().any(|e| e.kind == "status_changed"));
        // The same again changes nothing.
        let again = store
            .update_story(Some(&account), &target.id, &change, "ann", now)
            .await
            .unwrap();
        assert_eq!(again.timeline.len(), d.timeline.len());
        assert_eq!(events(), 1);
        // An owner is a user of the account or an operator, named in any letter case, and
        // found so by the list's filter.
        crate::outside_runtime(&format!(
            "INSERT INTO {schema}.users (id, account_id, username, password_hash, roles, created_at)
             VALUES ('u1', '{account}', 'Ann', 'x', 'stories_editor', 0),
                    ('u2', NULL, 'Op', 'x', 'operator', 0)",
            schema = guard.name
        ))
        .unwrap();
        let assign = |name: &str| StoryUpdate {
            assignee: Some(Some(name.to_owned())),
            ..Default::default()
        };
        let d = store
            .update_story(Some(&account), &target.id, &assign(" ANN "), "ann", now)
            .await
            .unwrap();
        assert_eq!(d.story.assignee.as_deref(), Some("Ann"));
        let mine = StoryQuery {
            assignee: Some(dossier_store::AssigneeFilter::User("aNN".into())),
            ..query(&account)
        };
        let mine = store.list_stories(&mine).await.unwrap().items;
        assert_eq!(mine.len(), 1);
        assert!(store
            .update_story(Some(&account), &target.id, &assign("nobody"), "ann", now)
            .await
            .is_err());
        let d = store
            .update_story(None, &target.id, &assign("op"), "op", now)
            .await
            .unwrap();
        assert_eq!(d.story.assignee.as_deref(), Some("Op"));
        assert_eq!(events(), 3);
        // In bulk, with an operator's reach: a story that is not there fails alone.
        let ids = vec![target.id.clone(), "nope".to_owned()];
        let out = store
            .update_stories(
                None,
                &ids,
                &StoryUpdate::default(),
                Some("look"),
                "ann",
                now,
            )
            .await
            .unwrap();
        assert_eq!(out.len(), 2);
        assert!(matches!(out[0].1, dossier_store::BulkOutcome::Changed));
        assert!(matches!(out[1].1, dossier_store::BulkOutcome::Failed(_)));
        let c = store
            .add_comment(Some(&account), &target.id, "bob", "mine", now)
            .await
            .unwrap();
        assert!(store
            .delete_comment(Some(&account), &target.id, &c.id, "ann", now)
            .await
            .is_err());
        store
            .delete_comment(Some(&account), &target.id, &c.id, "bob", now)
            .await
            .unwrap();
        store
            .record_on_story(&target.id, "note", "system", "looked at", now)
            .await
            .unwrap();
        let d = store.get_story(None, &target.id).await.unwrap();
        assert_eq!(d.comments.len(), 1);
        assert!(d.timeline.iter().any(|e| e.kind == "note"));
        assert!(d.timeline.iter().any(|e| e.kind == "comment_deleted"));
        assert!(!d.timeline.iter().any(|e| e.text == "mine"));
        assert!(store.get_story(Some("other"), &target.id).await.is_err());
    });
}

/// One number a query of the store's schema answers, read outside the test's runtime.
fn scalar(schema: &str, sql: &str) -> i64 {
    let sql = format!("SET search_path TO {schema}; {sql}");
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&crate::pg_url(), postgres::NoTls).unwrap();
        let (set, query) = sql.split_once("; ").unwrap();
        c.batch_execute(set).unwrap();
        c.query_one(query, &[]).unwrap().get(0)
    })
    .join()
    .unwrap()
}

/// Two nodes adding comments to one story at once never pass its bound together: each
/// counts the story's comments under the account's lock, so the second counts the first's.
#[test]
fn comments_from_two_nodes_at_once_stay_within_the_bound() {
    let Some(b) = crate::backend() else {
        return;
    };
    dossier_store::conformance::block_on(async move {
        let remap = b.remap();
        let (first, guard, account) = seeded(b).await;
        let url = guard.url();
        let second = tokio::task::spawn_blocking(move || {
            dossier_store_postgres::PostgresStore::open(
                &url,
                remap,
                &dossier_store_postgres::Settings::default(),
            )
        })
        .await
        .unwrap()
        .unwrap();
        let story = first.list_stories(&query(&account)).await.unwrap().items[0]
            .id
            .clone();
        let room = 6;
        crate::outside_runtime(&format!(
            "INSERT INTO {schema}.comments (id, story_id, author, text, created_at)
             SELECT 'c' || i, '{story}', 'ann', 'earlier', 0 FROM generate_series(1, {n}) i",
            schema = guard.name,
            n = 200 - room
        ))
        .unwrap();
        let now = Utc.with_ymd_and_hms(2025, 6, 2, 0, 0, 0).unwrap();
        let mut tasks = Vec::new();
        for k in 0..4 * room {
            let node = if k % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            let (account, story) = (account.clone(), story.clone());
            tasks.push(tokio::spawn(async move {
                node.add_comment(Some(&account), &story, "bob", &format!("n{k}"), now)
                    .await
            }));
        }
        let mut added = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => added += 1,
                Err(dossier_store::StoreError::Conflict(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(added, room);
        let d = first.get_story(Some(&account), &story).await.unwrap();
        assert_eq!(d.comments.len(), 200);
    });
}

//! The event log tailed in commit order: what a SIEM reading `order=asc&after=` relies on.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Duration;
use dossier_domain::event::EventType;

use super::{incident, sha1, t0, Backend, Fixture};
use crate::{EventOrder, EventQuery, NewEvent, Store, StoreError};

fn event(account: &str, kind: EventType, at_minutes: i64, message: &str) -> NewEvent {
    NewEvent {
        account_id: account.to_owned(),
        event_type: kind,
        at: t0() + Duration::minutes(at_minutes),
        connector_id: None,
        story_id: None,
        incident_id: None,
        message: message.to_owned(),
        data: serde_json::json!({}),
    }
}

fn tail(account: &str, after: Option<String>, limit: u32) -> EventQuery {
    EventQuery {
        account_id: Some(account.to_owned()),
        order: EventOrder::Asc,
        after,
        limit,
        ..Default::default()
    }
}

/// Follows the cursors from `after` to the end; returns the messages read and the last cursor.
async fn read_to_end<S: Store>(
    store: &S,
    q: &EventQuery,
    after: Option<String>,
) -> (Vec<String>, String) {
    let mut seen = Vec::new();
    let mut after = after;
    loop {
        let page = store
            .list_events(&EventQuery {
                after: after.clone(),
                ..q.clone()
            })
            .await
            .unwrap();
        let next = page
            .next_cursor
            .expect("an ascending page always has a cursor");
        if page.items.is_empty() {
            if let Some(a) = &after {
                assert_eq!(&next, a, "an empty page gives its cursor back");
            }
            return (seen, next);
        }
        seen.extend(page.items.into_iter().map(|e| e.message));
        after = Some(next);
    }
}

/// A tail reads events in the order they committed, not by their time: an event that commits
/// after the tail reached the end, stamped earlier than everything before it, is the next one
/// it reads. An empty page gives its cursor back, and a cursor read twice reads the same page.
pub async fn a_tail_reads_in_commit_order_and_never_skips_a_late_commit<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let a = &f.account;
    for (i, minutes) in [(0, 50), (1, 10), (2, 30), (3, 20)] {
        f.store
            .insert_event(&event(
                a,
                EventType::StoryUpdated,
                minutes,
                &format!("e{i}"),
            ))
            .await
            .unwrap();
    }
    let first = f.store.list_events(&tail(a, None, 2)).await.unwrap();
    let messages: Vec<_> = first.items.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["e0", "e1"], "commit order, not time order");
    let cursor = first.next_cursor.clone().unwrap();
    let again = f
        .store
        .list_events(&tail(a, Some(cursor.clone()), 2))
        .await
        .unwrap();
    let (rest, end) = read_to_end(&f.store, &tail(a, None, 2), Some(cursor.clone())).await;
    assert_eq!(rest, ["e2", "e3"]);
    let same = f
        .store
        .list_events(&tail(a, Some(cursor), 2))
        .await
        .unwrap();
    assert_eq!(
        again.items.iter().map(|e| &e.id).collect::<Vec<_>>(),
        same.items.iter().map(|e| &e.id).collect::<Vec<_>>(),
        "a cursor is stable"
    );
    assert_eq!(again.next_cursor, same.next_cursor);

    let empty = f
        .store
        .list_events(&tail(a, Some(end.clone()), 10))
        .await
        .unwrap();
    assert!(empty.items.is_empty());
    assert_eq!(
        empty.next_cursor.as_deref(),
        Some(end.as_str()),
        "same cursor back"
    );

    // Committed late, stamped before everything: still next.
    f.store
        .insert_event(&event(a, EventType::StoryUpdated, -600, "late"))
        .await
        .unwrap();
    let late = vec![incident("late-threat", -30, "ag-late", Some(&sha1(7)))];
    f.store.commit_page(f.page(late, t0())).await.unwrap();
    let (after_end, _) = read_to_end(&f.store, &tail(a, None, 1), Some(end)).await;
    assert_eq!(after_end.first().map(String::as_str), Some("late"));
    assert_eq!(
        after_end.len(),
        3,
        "the late event, an incident's and a story's"
    );

    // Ascending only takes `after`, descending only `cursor`; a cursor is checked.
    for bad in [
        EventQuery {
            cursor: Some("1".into()),
            ..tail(a, None, 5)
        },
        EventQuery {
            after: Some("1".into()),
            ..Default::default()
        },
        tail(a, Some("not a cursor".into()), 5),
    ] {
        assert!(
            matches!(f.store.list_events(&bad).await, Err(StoreError::Invalid(_))),
            "{bad:?}"
        );
    }
}

/// Writers racing a tail: every event is read exactly once, whatever commits while the tail
/// reads, and nothing of another account.
pub async fn a_tail_racing_writers_reads_every_event_once<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let other = f
        .store
        .create_account("Other", dossier_domain::access::Licence::None)
        .await
        .unwrap();
    let (writers, each): (usize, i64) = (4, 25);
    let done = AtomicUsize::new(0);
    let write = |w: i64| {
        let (store, done) = (&f.store, &done);
        let (mine, theirs) = (f.account.clone(), other.id.clone());
        async move {
            for i in 0..each {
                // Times run backwards: a later commit is stamped earlier.
                let at = -(w * 100 + i);
                let msg = format!("w{w}-{i}");
                store
                    .insert_event(&event(&mine, EventType::StoryUpdated, at, &msg))
                    .await
                    .unwrap();
                store
                    .insert_event(&event(&theirs, EventType::StoryUpdated, at, "theirs"))
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
            done.fetch_add(1, Ordering::SeqCst);
        }
    };
    let reader = async {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            // Read once more after the last writer finished: then nothing is left to come.
            let finished = done.load(Ordering::SeqCst) == writers;
            let page = f
                .store
                .list_events(&tail(&f.account, after.clone(), 3))
                .await
                .unwrap();
            let empty = page.items.is_empty();
            seen.extend(page.items.into_iter().map(|e| e.message));
            after = page.next_cursor;
            if finished && empty {
                return seen;
            }
            tokio::task::yield_now().await;
        }
    };
    let (seen, (), (), (), ()) = tokio::join!(reader, write(0), write(1), write(2), write(3));
    let unique: BTreeSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "each event once");
    assert_eq!(seen.len(), 4 * 25, "every event");
    assert!(
        seen.iter().all(|m| m.starts_with('w')),
        "only its own account"
    );
    // Each writer's events come in the order it wrote them.
    for w in 0..4 {
        let prefix = format!("w{w}-");
        let own: Vec<_> = seen.iter().filter(|m| m.starts_with(&prefix)).collect();
        let expected: Vec<_> = (0..each).map(|i| format!("w{w}-{i}")).collect();
        assert_eq!(own, expected.iter().collect::<Vec<_>>());
    }
}

/// The filters of the list narrow a tail too, and its cursor still moves past what they skip.
pub async fn a_tails_filters_narrow_it<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let incidents = (0..3u32)
        .map(|i| {
            incident(
                &i.to_string(),
                i64::from(i),
                &format!("ag{i}"),
                Some(&sha1(i)),
            )
        })
        .collect();
    f.store.commit_page(f.page(incidents, t0())).await.unwrap();
    let mut early = event(&f.account, EventType::ConnectorError, -5000, "early error");
    early.connector_id = Some(f.connector.clone());
    f.store.insert_event(&early).await.unwrap();
    let all = read_to_end(&f.store, &tail(&f.account, None, 2), None)
        .await
        .0;
    assert_eq!(all.len(), 3 + 3 + 1);

    let by_type = EventQuery {
        types: vec![EventType::ConnectorError],
        ..tail(&f.account, None, 2)
    };
    assert_eq!(
        read_to_end(&f.store, &by_type, None).await.0,
        ["early error"]
    );
    let by_time = EventQuery {
        to: Some(t0() - Duration::days(1)),
        ..tail(&f.account, None, 2)
    };
    assert_eq!(
        read_to_end(&f.store, &by_time, None).await.0,
        ["early error"]
    );
    let later = EventQuery {
        from: Some(t0() - Duration::days(1)),
        ..tail(&f.account, None, 2)
    };
    assert_eq!(read_to_end(&f.store, &later, None).await.0.len(), 6);

    let events = f
        .store
        .list_events(&tail(&f.account, None, 100))
        .await
        .unwrap()
        .items;
    let story = events
        .iter()
        .find_map(|e| e.story_id.clone())
        .expect("a story's event");
    let by_story = EventQuery {
        story_id: Some(story.clone()),
        ..tail(&f.account, None, 1)
    };
    let (of_story, _) = read_to_end(&f.store, &by_story, None).await;
    let expected = events
        .iter()
        .filter(|e| e.story_id.as_deref() == Some(&story));
    assert_eq!(of_story.len(), expected.count());
    let by_connector = EventQuery {
        connector_id: Some(f.connector.clone()),
        ..tail(&f.account, None, 2)
    };
    let expected = events
        .iter()
        .filter(|e| e.connector_id.as_deref() == Some(&f.connector))
        .count();
    assert!(expected >= 1);
    assert_eq!(
        read_to_end(&f.store, &by_connector, None).await.0.len(),
        expected
    );
}

/// The store tells waiters when it commits events, whichever way they were written.
pub async fn committing_events_tells_the_waiters<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let mut rx = f.store.event_commits();
    rx.mark_unchanged();
    f.store
        .insert_event(&event(&f.account, EventType::StoryUpdated, 0, "one"))
        .await
        .unwrap();
    assert!(rx.has_changed().unwrap(), "an inserted event");
    rx.mark_unchanged();
    let page = vec![incident("signal", 0, "ag-s", Some(&sha1(5)))];
    f.store.commit_page(f.page(page, t0())).await.unwrap();
    assert!(rx.has_changed().unwrap(), "a committed page");
}

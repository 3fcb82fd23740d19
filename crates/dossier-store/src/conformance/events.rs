//! The event log pages back from its newest event by a cursor.

use dossier_domain::event::EventType;

use super::{incident, sha1, t0, Backend, Fixture};
use crate::{EventQuery, NewEvent, Store, StoreError};

/// Paging through the events of an account by their cursor shows each event once, in the order
/// of the whole list, stops without an empty last page, and sees nothing that happened after the
/// first page was read, nor anything of another account.
pub async fn events_page_back_by_their_cursor<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let incidents = (0..8u32)
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
    let other = f
        .store
        .create_account("Other", dossier_domain::access::Licence::Xops)
        .await
        .unwrap();
    f.store
        .insert_event(&NewEvent {
            account_id: other.id.clone(),
            event_type: EventType::StoryUpdated,
            at: t0(),
            connector_id: None,
            story_id: None,
            incident_id: None,
            message: "of another account".into(),
            data: serde_json::json!({}),
        })
        .await
        .unwrap();
    let query = |limit: u32, cursor: Option<String>| EventQuery {
        account_id: Some(f.account.clone()),
        limit,
        cursor,
        ..Default::default()
    };
    let all = || async {
        let whole = f.store.list_events(&query(1000, None)).await.unwrap();
        assert_eq!(whole.next_cursor, None);
        whole.items.iter().map(|e| e.id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        all().await.len(),
        8 + 8,
        "one event per incident and per story"
    );

    for (n, limit) in [1, 3, 8, 16].into_iter().enumerate() {
        let ids = all().await;
        let mut seen = Vec::new();
        let mut pages = 0;
        let mut cursor = None;
        loop {
            let page = f.store.list_events(&query(limit, cursor)).await.unwrap();
            pages += 1;
            assert!(pages <= ids.len(), "limit {limit}: the cursor goes back");
            assert!(!page.items.is_empty(), "limit {limit}: no empty page");
            assert!(page.items.len() <= limit as usize);
            seen.extend(page.items.iter().map(|e| e.id.clone()));
            if pages == 1 {
                // Newer events, of a later page of the connector, come after the first page.
                let late = vec![incident(&format!("late{n}"), 9, "ag9", Some(&sha1(99)))];
                f.store.commit_page(f.page(late, t0())).await.unwrap();
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, ids, "limit {limit}");
        assert_eq!(pages, ids.len().div_ceil(limit as usize), "limit {limit}");
    }

    let bogus = query(10, Some("not a cursor".into()));
    assert!(matches!(
        f.store.list_events(&bogus).await,
        Err(StoreError::Invalid(_))
    ));
}

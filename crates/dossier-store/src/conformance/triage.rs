//! The analyst's work on stories: owners, finding a story by a vendor's id, and changes to
//! many stories at once.

use std::collections::{BTreeMap, BTreeSet};

use dossier_domain::story::{Status, Verdict};

use super::{incident, sha1, t0, Backend, Fixture};
use crate::{Store, StoryQuery, StoryUpdate};

/// Adds a user to the fixture's account (or an operator, with no account).
async fn user<B: Backend>(f: &Fixture<B>, name: &str, account: Option<&str>) {
    f.store
        .create_user(&crate::UserRecord {
            id: format!("u-{name}-{}", f.account),
            account_id: account.map(str::to_owned),
            username: name.into(),
            password_hash: "$argon2id$not-used".into(),
            roles: vec![dossier_domain::access::Role::StoriesEditor],
            created_at: t0(),
        })
        .await
        .unwrap();
}

/// The ids of the account's stories a query selects.
async fn selected<B: Backend>(f: &Fixture<B>, q: StoryQuery) -> BTreeSet<String> {
    f.store
        .list_stories(&StoryQuery {
            account_id: Some(f.account.clone()),
            ..q
        })
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| s.id)
        .collect()
}

/// A story is owned by a user of its account (or an operator), named in any letter case and
/// kept as the user is spelt; nobody else may own it. The owner shows on the list, filters it,
/// reaches the timeline, and stays with the story when a late incident gives it a new id.
pub async fn a_story_is_owned_by_a_user_of_its_account<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let ana = format!("Ana-{}", f.account);
    user(&f, &ana, Some(&f.account)).await;
    let stranger = format!("stranger-{}", f.account);
    let other = Fixture::new(backend).await;
    user(&other, &stranger, Some(&other.account)).await;
    f.store
        .commit_page(f.page(
            vec![
                incident("1", 5, "ag1", Some(&sha1(1))),
                incident("2", 5, "ag2", Some(&sha1(2))),
            ],
            t0(),
        ))
        .await
        .unwrap();
    let a = f.assignment().await;
    let (mine, theirs) = (a["1"].0.clone(), a["2"].0.clone());
    let assign = |name: &str| StoryUpdate {
        assignee: Some(Some(name.to_owned())),
        ..StoryUpdate::default()
    };
    let d = f
        .store
        .update_story(
            Some(&f.account),
            &mine,
            &assign(&ana.to_lowercase()),
            "lead",
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(d.story.assignee.as_deref(), Some(ana.as_str()));
    assert!(
        d.timeline
            .iter()
            .any(|e| e.text == format!("assigned to {ana}")),
        "{:?}",
        d.timeline
    );
    let refused = f
        .store
        .update_story(Some(&f.account), &theirs, &assign(&stranger), "lead", t0())
        .await;
    assert!(
        matches!(&refused, Err(crate::StoreError::Invalid(m)) if m.starts_with("assignee")),
        "{refused:?}"
    );

    let by = |filter| StoryQuery {
        assignee: Some(filter),
        ..StoryQuery::default()
    };
    assert_eq!(
        selected(&f, by(crate::AssigneeFilter::User(ana.to_uppercase()))).await,
        [mine.clone()].into()
    );
    assert_eq!(
        selected(&f, by(crate::AssigneeFilter::Unassigned)).await,
        [theirs.clone()].into()
    );

    // A late, earlier incident moves the first incident of the window: a new id, same owner.
    f.store
        .commit_page(f.page(vec![incident("0", 1, "ag1", Some(&sha1(1)))], t0()))
        .await
        .unwrap();
    let successor = f.assignment().await["1"].0.clone();
    assert_ne!(successor, mine);
    assert_eq!(
        f.story(&successor).await.story.assignee.as_deref(),
        Some(ana.as_str())
    );
}

/// A vendor's threat or alert id finds its story, as a filter and as free text.
pub async fn a_vendor_id_finds_its_story<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    f.store
        .commit_page(f.page(
            vec![
                incident("1300000000000000001", 0, "ag1", Some(&sha1(1))),
                incident("1300000000000000002", 0, "ag2", Some(&sha1(2))),
            ],
            t0(),
        ))
        .await
        .unwrap();
    let a = f.assignment().await;
    let want: BTreeSet<String> = [a["1300000000000000002"].0.clone()].into();
    let by_id = StoryQuery {
        incident_id: Some("1300000000000000002".into()),
        ..StoryQuery::default()
    };
    assert_eq!(selected(&f, by_id).await, want);
    let by_text = StoryQuery {
        q: Some("1300000000000000002".into()),
        ..StoryQuery::default()
    };
    assert_eq!(selected(&f, by_text).await, want);
    let none = StoryQuery {
        incident_id: Some("1300000000000000009".into()),
        ..StoryQuery::default()
    };
    assert!(selected(&f, none).await.is_empty());
    // Another account's stories are not found by their ids.
    let other = Fixture::new(backend).await;
    let theirs = StoryQuery {
        incident_id: Some("1300000000000000002".into()),
        ..StoryQuery::default()
    };
    assert!(selected(&other, theirs).await.is_empty());
}

/// A change to many stories is all or nothing per story: a story that cannot take it (closed
/// without a verdict) keeps all it had, comment included, and says why; the others change,
/// each with its timeline; a story already as asked is unchanged unless a comment comes.
pub async fn a_bulk_change_is_all_or_nothing_per_story<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    f.store
        .commit_page(
            f.page(
                (1..=3)
                    .map(|i| incident(&i.to_string(), 0, &format!("ag{i}"), Some(&sha1(i))))
                    .collect(),
                t0(),
            ),
        )
        .await
        .unwrap();
    let a = f.assignment().await;
    let ids: Vec<String> = ["1", "2", "3"].iter().map(|i| a[*i].0.clone()).collect();
    // Story 2 already has a verdict; the others have none.
    f.store
        .update_story(
            Some(&f.account),
            &ids[1],
            &StoryUpdate {
                verdict: Some(Some(Verdict::Benign)),
                ..StoryUpdate::default()
            },
            "ann",
            t0(),
        )
        .await
        .unwrap();
    let close = StoryUpdate {
        status: Some(Status::Closed),
        ..StoryUpdate::default()
    };
    let mut asked = ids.clone();
    asked.push("no-such-story".into());
    let out = f
        .store
        .update_stories(
            Some(&f.account),
            &asked,
            &close,
            Some("bulk close"),
            "lead",
            t0(),
        )
        .await
        .unwrap();
    let outcome: BTreeMap<String, crate::BulkOutcome> = out.into_iter().collect();
    assert_eq!(outcome[&ids[1]], crate::BulkOutcome::Changed);
    for i in [0, 2] {
        assert!(
            matches!(&outcome[&ids[i]], crate::BulkOutcome::Failed(m) if m.starts_with("verdict")),
            "{outcome:?}"
        );
        let d = f.story(&ids[i]).await;
        assert_eq!(d.story.status, Status::Open);
        assert!(d.comments.is_empty(), "nothing of the change was made");
    }
    assert!(matches!(
        outcome["no-such-story"],
        crate::BulkOutcome::Failed(_)
    ));
    let closed = f.story(&ids[1]).await;
    assert_eq!(closed.story.status, Status::Closed);
    assert_eq!(closed.comments.len(), 1);
    // Again, without a comment: already closed, nothing changes.
    let again = f
        .store
        .update_stories(Some(&f.account), &ids[1..2], &close, None, "lead", t0())
        .await
        .unwrap();
    assert_eq!(again[0].1, crate::BulkOutcome::Unchanged);
}

pub async fn a_users_settings_are_kept_replaced_and_go_with_them<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    user(&f, "ann", Some(&f.account)).await;
    user(&f, "bob", Some(&f.account)).await;
    let ann = format!("u-ann-{}", f.account);
    let bob = format!("u-bob-{}", f.account);
    assert_eq!(f.store.user_setting(&ann, "columns").await.unwrap(), None);
    f.store
        .set_user_setting(&ann, "columns", Some("id,status"))
        .await
        .unwrap();
    f.store
        .set_user_setting(&ann, "columns", Some("id,owner"))
        .await
        .unwrap();
    assert_eq!(
        f.store
            .user_setting(&ann, "columns")
            .await
            .unwrap()
            .as_deref(),
        Some("id,owner")
    );
    assert_eq!(f.store.user_setting(&bob, "columns").await.unwrap(), None);
    assert!(matches!(
        f.store
            .set_user_setting("nobody", "columns", Some("id"))
            .await,
        Err(crate::StoreError::NotFound)
    ));
    f.store
        .set_user_setting(&ann, "columns", None)
        .await
        .unwrap();
    assert_eq!(f.store.user_setting(&ann, "columns").await.unwrap(), None);
    f.store
        .set_user_setting(&ann, "columns", Some("id"))
        .await
        .unwrap();
    f.store.delete_user(Some(&f.account), &ann).await.unwrap();
    assert_eq!(f.store.user_setting(&ann, "columns").await.unwrap(), None);
}

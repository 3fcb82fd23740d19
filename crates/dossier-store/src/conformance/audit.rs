//! The audit log filtered by who, what and which story, never past its account.

use dossier_domain::story::Status;

use super::{incident, sha1, t0, Backend, Fixture};
use crate::{AuditQuery, Store, StoryUpdate};

/// Each filter narrows the log to exact matches, all of them together; a line about a story
/// names it, other lines name none; and no filter reaches another account's lines.
pub async fn audit_lines_filter_by_actor_action_and_story_within_an_account<B: Backend>(
    backend: &B,
) {
    let f = Fixture::new(backend).await;
    let incidents = (0..2u32)
        .map(|i| incident(&i.to_string(), 0, &format!("ag{i}"), Some(&sha1(i))))
        .collect();
    f.store.commit_page(f.page(incidents, t0())).await.unwrap();
    let stories = f.stories_by_members().await;
    assert_eq!(stories.len(), 2);
    let ids: Vec<String> = f.assignment().await.into_values().map(|(s, _)| s).collect();
    let (one, two) = (&ids[0], &ids[1]);
    let pending = StoryUpdate {
        status: Some(Status::PendingAnalysis),
        ..StoryUpdate::default()
    };
    let s = &f.store;
    s.update_story(Some(&f.account), one, &pending, "ann", t0())
        .await
        .unwrap();
    s.add_comment(Some(&f.account), two, "bob", "looks benign", t0())
        .await
        .unwrap();
    s.add_comment(Some(&f.account), one, "ann", "closing", t0())
        .await
        .unwrap();
    s.audit(&f.account, "ann", "signed_in", "ann", "", t0())
        .await
        .unwrap();
    let other = s
        .create_account("Other", dossier_domain::access::Licence::Xops)
        .await
        .unwrap();
    // Another account's line by the same actor, naming the same story id.
    s.audit(&other.id, "ann", "comment_added", one, "", t0())
        .await
        .unwrap();

    let list = |q: AuditQuery| async move {
        s.list_audit(&AuditQuery { limit: 100, ..q })
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.actor, e.action, e.story_id))
            .collect::<Vec<_>>()
    };
    let mine = |q: AuditQuery| AuditQuery {
        account_id: Some(f.account.clone()),
        ..q
    };
    let everything = list(mine(AuditQuery::default())).await;
    assert_eq!(everything.len(), 4, "{everything:?}");
    assert_eq!(
        everything[0],
        ("ann".into(), "signed_in".into(), None),
        "newest first, and a line about no story names none"
    );

    let by_ann = list(mine(AuditQuery {
        actor: Some("ann".into()),
        ..AuditQuery::default()
    }))
    .await;
    assert_eq!(by_ann.len(), 3, "{by_ann:?}");
    assert!(by_ann.iter().all(|(a, _, _)| a == "ann"));

    let comments = list(mine(AuditQuery {
        action: Some("comment_added".into()),
        ..AuditQuery::default()
    }))
    .await;
    assert_eq!(comments.len(), 2, "{comments:?}");

    let of_one = list(mine(AuditQuery {
        story_id: Some(one.clone()),
        ..AuditQuery::default()
    }))
    .await;
    assert_eq!(of_one.len(), 2, "{of_one:?}");
    assert!(of_one
        .iter()
        .all(|(_, _, s)| s.as_deref() == Some(one.as_str())));

    let all_three = list(mine(AuditQuery {
        actor: Some("ann".into()),
        action: Some("comment_added".into()),
        story_id: Some(one.clone()),
        ..AuditQuery::default()
    }))
    .await;
    assert_eq!(
        all_three,
        [("ann".into(), "comment_added".into(), Some(one.clone()))]
    );
    let none = list(mine(AuditQuery {
        actor: Some("bob".into()),
        story_id: Some(one.clone()),
        ..AuditQuery::default()
    }))
    .await;
    assert!(none.is_empty(), "{none:?}");

    // The other account's line is only in its own log, and names no story of it.
    let theirs = list(AuditQuery {
        account_id: Some(other.id.clone()),
        story_id: Some(one.clone()),
        ..AuditQuery::default()
    })
    .await;
    assert!(theirs.is_empty(), "{theirs:?}");
    let operator = list(AuditQuery {
        actor: Some("ann".into()),
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(operator.len(), 4, "an operator reads every account's lines");
    let _ = two;
}

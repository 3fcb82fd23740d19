//! Regression tests, named after what broke.
use std::collections::BTreeSet;

use chrono::Duration;

use super::{incident, sha1, t0, Backend, Fixture};
use crate::{Store, StoryQuery, StorySortField};

/// A threat name containing U+001F breaks the keyset cursor when sorting by indication.
pub async fn cursor_survives_a_separator_inside_a_threat_name<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let names = ["a", "a\u{1}", "a\u{1f}b", "b"];
    let incs = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut inc = incident(
                &format!("{i}"),
                0,
                &format!("ag{i}"),
                Some(&sha1(u32::try_from(i).unwrap())),
            );
            inc.threat_name = Some((*n).to_owned());
            inc
        })
        .collect();
    f.store.commit_page(f.page(incs, t0())).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..20 {
        let page = f
            .store
            .list_stories(&StoryQuery {
                account_id: Some(f.account.clone()),
                sort: StorySortField::Indication,
                descending: false,
                limit: 1,
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        seen.extend(
            page.items
                .iter()
                .map(|s| s.indication.clone().unwrap_or_default()),
        );
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4, "each story once; got {seen:?}");
}

/// After a late earlier incident changes a window's id, the next window's `previous_id`
/// still points at the retired id, so the previous/next relation disappears.
pub async fn next_window_follows_its_reshaped_previous_window<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let h = sha1(7);
    f.store
        .commit_page(f.page(
            vec![
                incident("x", 10, "ag", Some(&h)),
                incident("y", 120, "ag", Some(&h)),
            ],
            t0(),
        ))
        .await
        .unwrap();
    let a = f.assignment().await;
    let (s1, s2) = (a["x"].0.clone(), a["y"].0.clone());
    let d2 = f.story(&s2).await;
    assert!(d2
        .related
        .iter()
        .any(|r| r.id == s1 && r.relation == "previous_window"));

    // A late incident 5 days before x: window 1 gets a new id.
    f.store
        .commit_page(f.page(vec![incident("w", 5, "ag", Some(&h))], t0()))
        .await
        .unwrap();
    let a = f.assignment().await;
    let s1_new = a["x"].0.clone();
    assert_eq!(a["w"].0, s1_new);
    assert_ne!(s1_new, s1);
    assert_eq!(a["y"].0, s2, "window 2 keeps its id");
    let d2 = f.story(&s2).await;
    let d1 = f.story(&s1_new).await;
    assert!(
        d2.related
            .iter()
            .any(|r| r.id == s1_new && r.relation == "previous_window"),
        "S2 should name S1' as its previous window"
    );
    assert!(
        d1.related
            .iter()
            .any(|r| r.id == s2 && r.relation == "next_window"),
        "S1' should name S2 as its next window"
    );
}

/// An update that changes an incident's correlation key leaves the stories of its old key
/// uncorrelated: the result differs from ingesting the final state once.
pub async fn an_update_changing_the_key_recorrelates_the_old_key<B: Backend>(backend: &B) {
    let parts = |a: &std::collections::BTreeMap<String, (String, u64)>| {
        let mut by_story = std::collections::BTreeMap::<String, Vec<String>>::default();
        for (inc, (story, _)) in a {
            by_story.entry(story.clone()).or_default().push(inc.clone());
        }
        by_story.into_values().collect::<BTreeSet<_>>()
    };
    let h = sha1(3);
    let x = incident("x", 0, "ag", Some(&h));
    let y = incident("y", 50, "ag", Some(&h));
    let z = incident("z", 100, "ag", Some(&h));
    let mut x2 = x.clone();
    x2.device.agent_uuid = Some("ag-real-uuid".into());
    x2.updated_at = x.updated_at + Duration::days(200);

    let inc = Fixture::new(backend).await;
    inc.store
        .commit_page(inc.page(vec![x, y.clone(), z.clone()], t0()))
        .await
        .unwrap();
    inc.store
        .commit_page(inc.page(vec![x2.clone()], t0()))
        .await
        .unwrap();
    let got = parts(&inc.assignment().await);

    let once = Fixture::new(backend).await;
    once.store
        .commit_page(once.page(vec![x2, y, z], t0()))
        .await
        .unwrap();
    let want = parts(&once.assignment().await);
    assert_eq!(got, want);
}

/// A stale (older) version of a story's latest incident, re-delivered in a page that also
/// touches the story, is used to recompute the story although the incident row keeps the newer one.
pub async fn a_stale_redelivery_does_not_speak_for_its_story<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let h = sha1(5);
    let k = incident("k", 0, "ag", Some(&h));
    let l1 = incident("l", 2, "ag", Some(&h));
    f.store
        .commit_page(f.page(vec![k, l1.clone()], t0()))
        .await
        .unwrap();
    let mut l2 = l1.clone();
    l2.updated_at += Duration::hours(1);
    l2.mitigation_status = Some("mitigated".into());
    f.store.commit_page(f.page(vec![l2], t0())).await.unwrap();
    let sid = f.assignment().await["l"].0.clone();
    let before = f.story(&sid).await;
    assert_eq!(before.story.mitigation_status.as_deref(), Some("mitigated"));

    // The overlap re-delivers the old version of l together with a new incident of the story.
    let m = incident("m", 1, "ag", Some(&h));
    let out = f
        .store
        .commit_page(f.page(vec![l1, m], t0()))
        .await
        .unwrap();
    assert_eq!((out.incidents_new, out.incidents_unchanged), (1, 1));
    let after = f.story(&sid).await;
    let l_row = after.incidents.iter().find(|i| i.id == "l").unwrap();
    assert_eq!(l_row.mitigation_status.as_deref(), Some("mitigated"));
    assert_eq!(after.story.mitigation_status.as_deref(), Some("mitigated"));
}

/// A libprocesshider-style story: the rootkit on one Linux server, its early incidents
/// mitigated and a later one not (and then the reverse). The story was scored and summed up by
/// its latest incident alone, and read as mitigated while an incident was not.
pub async fn a_story_whose_incidents_differ_in_mitigation_is_not_called_mitigated<B: Backend>(
    backend: &B,
) {
    let f = Fixture::new(backend).await;
    let h = sha1(115);
    // A later version of a threat is updated later: `version` minutes after it was created.
    let rootkit = |id: u32, day: i64, mitigated: bool, version: i64| {
        let mut inc = incident(&format!("{id}"), day, "srv-db-01", Some(&h));
        inc.updated_at += Duration::minutes(version);
        inc.threat_name = Some("libprocesshider.so".into());
        inc.classification = Some("Malware".into());
        inc.file.path = Some("/usr/local/lib/libprocesshider.so".into());
        inc.device.os_name = Some("Linux".into());
        inc.mitigation_actions = vec!["kill:success".into()];
        if mitigated {
            inc.mitigation_status = Some("mitigated".into());
            inc.mitigation = dossier_domain::vocabulary::Mitigation::Mitigated;
        }
        inc
    };
    // Early incidents mitigated, the latest not.
    let early: Vec<_> = (0..5).map(|n| rootkit(n, i64::from(n), true, 0)).collect();
    f.store.commit_page(f.page(early, t0())).await.unwrap();
    f.store
        .commit_page(f.page(vec![rootkit(5, 5, false, 0)], t0()))
        .await
        .unwrap();
    let id = f.assignment().await["0"].0.clone();
    let d = f.story(&id).await;
    let reason = "+1: 1 of 6 incidents not mitigated";
    assert!(
        d.criticality_detail.reasons.iter().any(|r| r == reason),
        "{:?}",
        d.criticality_detail.reasons
    );
    assert!(
        d.summary
            .contains("the threat is not fully mitigated (1 of 6 incidents not mitigated)"),
        "{}",
        d.summary
    );
    assert_eq!(d.story.criticality, d.criticality_detail.score);

    // The reverse: the latest is mitigated now, an early one is not.
    f.store
        .commit_page(f.page(vec![rootkit(5, 5, true, 1), rootkit(1, 1, false, 1)], t0()))
        .await
        .unwrap();
    let d = f.story(&id).await;
    assert!(
        d.criticality_detail.reasons.iter().any(|r| r == reason),
        "{:?}",
        d.criticality_detail.reasons
    );
    assert!(
        !d.summary.contains("the threat is mitigated"),
        "{}",
        d.summary
    );
    let shown = |id: &str| {
        d.incidents
            .iter()
            .find(|i| i.id == id)
            .and_then(|i| i.mitigation_status.clone())
    };
    assert_eq!(
        shown("1").as_deref(),
        Some("not_mitigated"),
        "the update landed"
    );
    assert_eq!(
        shown("5").as_deref(),
        Some("mitigated"),
        "the update landed"
    );

    // All mitigated: no reason, and the story reads as mitigated.
    f.store
        .commit_page(f.page(vec![rootkit(1, 1, true, 2)], t0()))
        .await
        .unwrap();
    let d = f.story(&id).await;
    assert!(
        !d.criticality_detail
            .reasons
            .iter()
            .any(|r| r.contains("mitigated")),
        "{:?}",
        d.criticality_detail.reasons
    );
    assert!(
        d.summary.contains("the threat is mitigated"),
        "{}",
        d.summary
    );
}

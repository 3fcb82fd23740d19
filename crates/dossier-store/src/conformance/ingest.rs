use chrono::Duration;
use dossier_domain::story::{Severity, Status, Verdict};
use proptest::prelude::*;

use super::{incident, sha1, t0, Backend, Fixture};
use crate::{Store, StoryUpdate};

pub async fn a_page_becomes_stories_and_reingest_changes_nothing<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let h = sha1(1);
    let page = vec![
        incident("100", 0, "ag1", Some(&h)),
        incident("101", 3, "ag1", Some(&h)),
        incident("102", 3, "ag2", Some(&h)),
        incident("103", 4, "ag1", None),
    ];
    let out = f
        .store
        .commit_page(f.page(page.clone(), t0()))
        .await
        .unwrap();
    assert_eq!((out.incidents_new, out.stories_created), (4, 3));
    let before = f.assignment().await;
    assert_eq!(before["100"].0, before["101"].0);
    assert_ne!(before["100"].0, before["102"].0);
    let events = f.events().await;

    let out = f
        .store
        .commit_page(f.page(page, t0() + Duration::hours(1)))
        .await
        .unwrap();
    assert_eq!(
        (
            out.incidents_new,
            out.incidents_unchanged,
            out.stories_updated
        ),
        (0, 4, 0)
    );
    assert_eq!(f.assignment().await, before);
    let again = f.events().await;
    assert_eq!(events.len(), again.len(), "re-ingest creates no events");
    assert_eq!(events.len(), 4 + 3, "one event per incident and per story");
}

pub async fn an_update_of_a_threat_updates_its_incident_and_story<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let mut inc = incident("100", 0, "ag1", Some(&sha1(1)));
    f.store
        .commit_page(f.page(vec![inc.clone()], t0()))
        .await
        .unwrap();
    inc.updated_at += Duration::hours(2);
    inc.mitigation_status = Some("mitigated".into());
    let out = f
        .store
        .commit_page(f.page(vec![inc.clone()], t0() + Duration::hours(2)))
        .await
        .unwrap();
    assert_eq!(
        (
            out.incidents_updated,
            out.stories_updated,
            out.stories_created
        ),
        (1, 1, 0)
    );
    let (story, _) = f.assignment().await["100"].clone();
    let d = f.story(&story).await;
    assert_eq!(d.story.mitigation_status.as_deref(), Some("mitigated"));
    // An older version arriving late never overwrites the newer one.
    inc.updated_at -= Duration::hours(1);
    inc.mitigation_status = Some("not_mitigated".into());
    let out = f
        .store
        .commit_page(f.page(vec![inc], t0() + Duration::hours(3)))
        .await
        .unwrap();
    assert_eq!(out.incidents_unchanged, 1);
    let d = f.story(&story).await;
    assert_eq!(d.story.mitigation_status.as_deref(), Some("mitigated"));
}

pub async fn a_threat_twice_in_one_page_is_stored_once_as_its_latest_version<B: Backend>(
    backend: &B,
) {
    let f = Fixture::new(backend).await;
    let first = incident("300", 0, "ag1", Some(&sha1(3)));
    let mut newer = first.clone();
    newer.updated_at += Duration::hours(2);
    newer.mitigation_status = Some("mitigated".into());
    let mut older = first.clone();
    older.updated_at += Duration::hours(1);
    older.mitigation_status = Some("not_mitigated".into());
    let other = incident("200", 1, "ag2", Some(&sha1(2)));
    // The newest version comes between two older ones; another threat sorts before it.
    let out = f
        .store
        .commit_page(f.page(vec![first, newer, older, other], t0()))
        .await
        .unwrap();
    assert_eq!((out.incidents_new, out.stories_created), (2, 2));
    let assignment = f.assignment().await;
    assert_eq!(assignment.len(), 2);
    let d = f.story(&assignment["300"].0).await;
    assert_eq!(d.story.mitigation_status.as_deref(), Some("mitigated"));
    assert_eq!(
        d.incidents.len(),
        1,
        "one incident for the threat, not three"
    );

    // Of two versions equally recent, the later in the page wins.
    let mut a = incident("400", 0, "ag3", Some(&sha1(4)));
    a.mitigation_status = Some("not_mitigated".into());
    let mut b = a.clone();
    b.mitigation_status = Some("marked_as_benign".into());
    f.store.commit_page(f.page(vec![a, b], t0())).await.unwrap();
    let d = f.story(&f.assignment().await["400"].0).await;
    assert_eq!(
        d.story.mitigation_status.as_deref(),
        Some("marked_as_benign")
    );
}

/// Two connectors of one account reach the same tenant: a threat the first holds is not
/// written again by the second, which keeps only what the first does not hold; a connector
/// that names no sibling writes its own as before.
pub async fn a_threat_held_by_a_connector_of_the_same_tenant_is_kept_once<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let second = f
        .add_connector(
            "sentinelone",
            "the same tenant again",
            "https://example.sentinelone.net",
        )
        .await;
    let first = incident("500", 0, "ag1", Some(&sha1(5)));
    let second_threat = incident("501", 0, "ag1", Some(&sha1(5)));
    let third = incident("502", 1, "ag2", Some(&sha1(6)));
    let out = f
        .store
        .commit_page(f.page(vec![first.clone(), second_threat.clone()], t0()))
        .await
        .unwrap();
    assert_eq!(out.incidents_new, 2);

    let mut newer = first.clone();
    newer.updated_at += Duration::hours(1);
    let mut page = f.page(vec![newer, second_threat, third], t0());
    page.connector_id = second.id.clone();
    page.generation = second.generation;
    page.shared_with = vec![f.connector.clone()];
    let out = f.store.commit_page(page).await.unwrap();
    assert_eq!(
        (out.incidents_new, out.incidents_held_elsewhere),
        (1, 2),
        "only the threat the first connector does not hold is new"
    );
    let assignment = f.assignment().await;
    assert_eq!(assignment.len(), 3, "{assignment:?}");
    let d = f.story(&assignment["500"].0).await;
    assert_eq!(d.story.incident_count, 2, "each threat once in its story");
    let connectors: Vec<&str> = d
        .incidents
        .iter()
        .map(|i| i.connector_id.as_str())
        .collect();
    assert!(
        connectors.iter().all(|c| *c == f.connector),
        "{connectors:?}"
    );

    // Without a sibling named, the second connector keeps its own copy (the old behaviour,
    // for connectors whose tenants cannot be told apart).
    let mut page = f.page(vec![first], t0());
    page.connector_id = second.id.clone();
    page.generation = second.generation;
    let out = f.store.commit_page(page).await.unwrap();
    assert_eq!((out.incidents_new, out.incidents_held_elsewhere), (1, 0));
}

pub async fn a_late_earlier_incident_reshapes_windows_and_keeps_the_analysts_work<B: Backend>(
    backend: &B,
) {
    let f = Fixture::new(backend).await;
    let h = sha1(7);
    f.store
        .commit_page(f.page(vec![incident("2", 100, "ag", Some(&h))], t0()))
        .await
        .unwrap();
    let old = f.assignment().await["2"].0.clone();
    let upd = StoryUpdate {
        status: Some(Status::PendingAnalysis),
        ..Default::default()
    };
    f.store
        .update_story(Some(&f.account), &old, &upd, "ann", t0())
        .await
        .unwrap();
    f.store
        .add_comment(Some(&f.account), &old, "ann", "looking", t0())
        .await
        .unwrap();

    // An incident 20 days earlier arrives: it is now the story's first incident.
    f.store
        .commit_page(f.page(vec![incident("1", 80, "ag", Some(&h))], t0()))
        .await
        .unwrap();
    let a = f.assignment().await;
    assert_eq!(a["1"].0, a["2"].0);
    let new = a["1"].0.clone();
    assert_ne!(new, old, "the id follows the first incident");
    let d = f.story(&old).await;
    assert_eq!(d.story.id, new, "the old id resolves to its successor");
    assert_eq!(d.story.status, Status::PendingAnalysis);
    assert_eq!(d.comments.len(), 1);
}

/// Two stories an analyst triaged apart become one when a threat shows their files are the
/// same (its SHA-1 and SHA-256 together): the merged story keeps one story's verdict with
/// that story's severity and status, never one's verdict with the other's severity.
pub async fn triaged_stories_merged_by_a_sha256_alias_keep_a_verdict_with_its_own_severity<
    B: Backend,
>(
    backend: &B,
) {
    let f = Fixture::new(backend).await;
    let (h1, h256) = (sha1(11), format!("{:064x}", 11));
    let mut by_sha256 = incident("2", 1, "ag", None);
    by_sha256.file.sha256 = Some(h256.clone());
    f.store
        .commit_page(f.page(vec![incident("1", 0, "ag", Some(&h1)), by_sha256], t0()))
        .await
        .unwrap();
    let a = f.assignment().await;
    let (first, second) = (a["1"].0.clone(), a["2"].0.clone());
    assert_ne!(first, second, "two files as far as anyone knows");
    let triage = [
        (&first, Status::PendingAnalysis, Verdict::Benign, None),
        (
            &second,
            Status::Closed,
            Verdict::Malicious,
            Some(Severity::High),
        ),
    ];
    for (id, status, verdict, severity) in triage {
        let upd = StoryUpdate {
            status: Some(status),
            verdict: Some(Some(verdict)),
            severity: Some(severity),
            ..StoryUpdate::default()
        };
        f.store
            .update_story(Some(&f.account), id, &upd, "ann", t0())
            .await
            .unwrap();
    }

    let mut both = incident("3", 2, "ag", Some(&h1));
    both.file.sha256 = Some(h256);
    f.store
        .commit_page(f.page(vec![both], t0() + Duration::days(2)))
        .await
        .unwrap();
    let a = f.assignment().await;
    assert!(a["1"].0 == a["2"].0 && a["2"].0 == a["3"].0, "{a:?}");
    let merged = f.story(&a["3"].0).await.story;
    let kept = (merged.status, merged.verdict, merged.severity);
    assert!(
        kept == (triage[0].1, Some(triage[0].2), triage[0].3)
            || kept == (triage[1].1, Some(triage[1].2), triage[1].3),
        "one story's triage, whole: {kept:?}"
    );
}

pub async fn closed_stories_reopen_only_after_twelve_hours<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let h = sha1(9);
    f.store
        .commit_page(f.page(vec![incident("1", 0, "ag", Some(&h))], t0()))
        .await
        .unwrap();
    let id = f.assignment().await["1"].0.clone();
    let close = StoryUpdate {
        status: Some(Status::Closed),
        verdict: Some(Some(dossier_domain::story::Verdict::Benign)),
        ..Default::default()
    };
    f.store
        .update_story(Some(&f.account), &id, &close, "ann", t0())
        .await
        .unwrap();

    f.store
        .commit_page(f.page(
            vec![incident("2", 0, "ag", Some(&h))],
            t0() + Duration::hours(11),
        ))
        .await
        .unwrap();
    let d = f.story(&id).await;
    assert_eq!(
        (d.story.status, d.story.incident_count),
        (Status::Closed, 2)
    );

    f.store
        .commit_page(f.page(
            vec![incident("3", 1, "ag", Some(&h))],
            t0() + Duration::hours(12),
        ))
        .await
        .unwrap();
    let d = f.story(&id).await;
    assert_eq!(
        (d.story.status, d.story.incident_count),
        (Status::Reopened, 3)
    );
    assert!(d.timeline.iter().any(|e| e.kind == "reopened"));
}

pub async fn stories_of_one_account_are_invisible_to_another<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    f.store
        .commit_page(f.page(vec![incident("1", 0, "ag", Some(&sha1(1)))], t0()))
        .await
        .unwrap();
    let id = f.assignment().await["1"].0.clone();
    let other = f
        .store
        .create_account("Other", dossier_domain::access::Licence::Xops)
        .await
        .unwrap();
    assert!(matches!(
        f.store.get_story(Some(&other.id), &id).await,
        Err(crate::StoreError::NotFound)
    ));
    let mut page = f.page(vec![incident("2", 0, "ag", None)], t0());
    page.account_id = other.id.clone();
    assert!(
        f.store.commit_page(page).await.is_err(),
        "a connector writes only to its own account"
    );
}

fn arb_incidents() -> impl Strategy<Value = Vec<dossier_domain::Incident>> {
    let one = (0i64..300, 0u32..3, 0u32..3, any::<bool>(), 0u32..3);
    prop::collection::vec(one, 1..40).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (day, agent, hash, fileless, variant))| {
                let h = sha1(hash);
                let mut inc = incident(
                    &format!("{}", 1000 + i),
                    day,
                    &format!("ag{agent}"),
                    (!fileless).then_some(h.as_str()),
                );
                if fileless {
                    inc.storyline = Some(format!("SL{hash}"));
                }
                // What a story shows comes from its latest incident: let it differ, down to
                // the device's name, so a story updated in place must match one written whole.
                inc.threat_name = Some(format!("evil-{variant}.exe"));
                inc.device.name = Some(format!("host-ag{agent}-{}", variant % 2));
                if variant == 2 {
                    inc.mitigation_status = Some("mitigated".into());
                    inc.file.sha256 = Some(format!("{hash:064x}"));
                }
                inc
            })
            .collect()
    })
}

/// Any order of the same threats, in pages of any size, tells the same stories, each reading
/// the same, as one page of all of them.
pub fn any_order_and_page_split_gives_the_same_stories<B: Backend>(backend: &B) {
    let config = ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    };
    proptest!(config, |(
        incidents in arb_incidents(),
        seed in any::<u64>(),
        page_size in 1usize..8,
        // The default cap, or one small enough that stories overflow into linked ones.
        cap in prop::sample::select(vec![1000usize, 3]),
    )| {
        super::block_on(async {
            let one = Fixture::new(backend).await;
            let capped = |mut p: crate::IngestPage| {
                p.policy.cap = cap;
                p
            };
            one.store.commit_page(capped(one.page(incidents.clone(), t0()))).await.unwrap();
            let expected = one.assignment().await;
            let expected_stories = one.stories_by_members().await;

            let mut shuffled = incidents.clone();
            let mut s = seed;
            for i in (1..shuffled.len()).rev() {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                shuffled.swap(i, (s >> 33) as usize % (i + 1));
            }
            let split = Fixture::new(backend).await;
            for chunk in shuffled.chunks(page_size) {
                split.store.commit_page(capped(split.page(chunk.to_vec(), t0()))).await.unwrap();
            }
            // Re-ingesting everything again changes nothing.
            split.store.commit_page(capped(split.page(incidents.clone(), t0()))).await.unwrap();
            let got = split.assignment().await;
            assert_eq!(got.len(), incidents.len(), "every incident is in exactly one story");
            // Story ids are derived from the account, so compare the partitions.
            let parts = |a: &std::collections::BTreeMap<String, (String, u64)>| {
                let mut by_story = std::collections::BTreeMap::<&str, Vec<&str>>::default();
                for (inc, (story, _)) in a {
                    by_story.entry(story).or_default().push(inc);
                }
                let mut v: Vec<Vec<&str>> = by_story.into_values().collect();
                v.sort();
                v.into_iter().map(|g| g.join(",")).collect::<Vec<_>>()
            };
            assert_eq!(parts(&got), parts(&expected));
            // And each story reads the same, whether it was written whole or page by page.
            let got_stories = split.stories_by_members().await;
            let differing: Vec<_> = expected_stories
                .iter()
                .filter(|(k, v)| got_stories.get(*k) != Some(*v))
                .map(|(k, v)| (k, v, got_stories.get(k)))
                .collect();
            assert!(differing.is_empty(), "written whole vs page by page: {differing:#?}");
        });
    });
}

/// Whether a story's criticality counts an outbreak of its file among its reasons.
pub fn in_outbreak(d: &crate::StoryDetail) -> bool {
    d.criticality_detail
        .reasons
        .iter()
        .any(|r| r.contains("outbreak"))
}

pub async fn a_file_spreading_to_other_devices_raises_every_story_of_it<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let h = sha1(42);
    f.store
        .commit_page(f.page(vec![incident("1", 0, "ag1", Some(&h))], t0()))
        .await
        .unwrap();
    let first = f.assignment().await["1"].0.clone();
    let before = f.story(&first).await;
    assert!(!in_outbreak(&before));

    // Two more devices in a later page, one more in the same page as a second file.
    let page = vec![
        incident("2", 1, "ag2", Some(&h)),
        incident("3", 1, "ag3", Some(&h)),
        incident("4", 1, "ag3", Some(&sha1(43))),
    ];
    f.store.commit_page(f.page(page, t0())).await.unwrap();
    let a = f.assignment().await;
    for id in ["1", "2", "3"] {
        let d = f.story(&a[id].0).await;
        assert!(
            in_outbreak(&d),
            "story of {id}: {:?}",
            d.criticality_detail.reasons
        );
        assert!(d.story.criticality > before.story.criticality);
        assert!(d.summary.contains("2 other devices"), "{}", d.summary);
    }
    let other = f.story(&a["4"].0).await;
    assert!(!in_outbreak(&other));
}

/// A story keyed on a file's SHA-256 is re-keyed onto its SHA-1 when a threat linking the two
/// arrives on that device. The device still carries the same file, under its other name, so
/// the stories keyed on the SHA-256 elsewhere stay in the outbreak; but when an update moves
/// a device to another file, the file's other stories drop out of it. Either way the stories
/// are those of the same threats in one page.
pub async fn a_device_leaving_a_file_lowers_the_outbreak_of_its_other_stories<B: Backend>(
    backend: &B,
) {
    let sha256 = format!("{:064x}", 7);
    let only_sha256 = |id: &str, agent: &str| {
        let mut inc = incident(id, 0, agent, None);
        inc.file.sha256 = Some(sha256.clone());
        inc
    };
    let f = Fixture::new(backend).await;
    f.store
        .commit_page(f.page(vec![only_sha256("1", "ag1"), only_sha256("2", "ag2")], t0()))
        .await
        .unwrap();
    let a = f.assignment().await;
    let second = f.story(&a["2"].0).await;
    assert!(
        in_outbreak(&second),
        "{:?}",
        second.criticality_detail.reasons
    );

    let mut linking = incident("3", 1, "ag1", Some(&sha1(7)));
    linking.file.sha256 = Some(sha256.clone());
    f.store
        .commit_page(f.page(vec![linking.clone()], t0()))
        .await
        .unwrap();
    let a = f.assignment().await;
    assert_eq!(a["1"].0, a["3"].0, "the SHA-256 joined the SHA-1's story");
    let second = f.story(&a["2"].0).await;
    assert!(
        in_outbreak(&second),
        "ag1 still carries the file: {:?}",
        second.criticality_detail.reasons
    );

    let whole = Fixture::new(backend).await;
    whole
        .store
        .commit_page(whole.page(
            vec![only_sha256("1", "ag1"), only_sha256("2", "ag2"), linking],
            t0(),
        ))
        .await
        .unwrap();
    assert_eq!(
        whole.stories_by_members().await,
        f.stories_by_members().await
    );

    // ag2's threat turns out to be of another file: ag1 is alone with the file again.
    let mut moved = only_sha256("2", "ag2");
    moved.file.sha256 = Some(format!("{:064x}", 8));
    moved.updated_at += chrono::Duration::hours(1);
    f.store
        .commit_page(f.page(vec![moved], t0()))
        .await
        .unwrap();
    let a = f.assignment().await;
    let first = f.story(&a["1"].0).await;
    assert!(
        !in_outbreak(&first),
        "{:?}",
        first.criticality_detail.reasons
    );
}

/// Pages within a tier leave the stories of a file at that tier, and the page that crosses
/// into the next tier raises all of them, those of earlier pages too.
pub async fn a_file_crossing_into_a_wide_outbreak_raises_every_story_of_it<B: Backend>(
    backend: &B,
) {
    let f = Fixture::new(backend).await;
    let h = sha1(7);
    let reasons = |d: &crate::StoryDetail| d.criticality_detail.reasons.join("; ");
    let mut next_id = 0;
    // 5 devices, then 4 more: an outbreak throughout; then the tenth: a wide one.
    for devices in [5, 4, 1] {
        let page = (0..devices)
            .map(|_| {
                next_id += 1;
                incident(&next_id.to_string(), 0, &format!("ag{next_id}"), Some(&h))
            })
            .collect();
        f.store.commit_page(f.page(page, t0())).await.unwrap();
        let a = f.assignment().await;
        assert_eq!(a.len(), next_id);
        for (id, (story, _)) in &a {
            let d = f.story(story).await;
            let wide = reasons(&d).contains("wide outbreak");
            assert_eq!(
                wide,
                next_id >= 10,
                "after {next_id} devices, story of {id}: {}",
                reasons(&d)
            );
            assert!(
                reasons(&d).contains("outbreak"),
                "story of {id}: {}",
                reasons(&d)
            );
        }
    }
}

pub async fn events_carry_what_the_incident_and_the_story_were<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let h = sha1(7);
    f.store
        .commit_page(f.page(vec![incident("700", 0, "ag7", Some(&h))], t0()))
        .await
        .unwrap();
    let events = f.events().await;
    let of = |t: &str| {
        events
            .iter()
            .find(|e| e.event_type.as_str() == t)
            .unwrap_or_else(|| panic!("no {t} event in {events:?}"))
    };
    let detected = of("incident_created");
    assert_eq!(
        detected.message,
        "SentinelOne detected evil.exe on host-ag7"
    );
    assert_eq!(
        detected.data,
        serde_json::json!({
            "agent_uuid": "ag7",
            "confidence_level": "malicious",
            "mitigation_status": "not_mitigated",
            "producer": "sentinelone",
            "sha1": h,
            "threat_id": "700",
            "threat_name": "evil.exe",
        })
    );
    let created = of("story_created");
    assert_eq!(created.message, "story created: evil.exe on host-ag7");
    let score = created.data["criticality"].as_u64().unwrap();
    assert!((1..=10).contains(&score), "{created:?}");
    assert_eq!(
        created.data,
        serde_json::json!({
            "criticality": score,
            "incident_count": 1,
            "reopened": false,
            "status": "open",
        })
    );
}

/// A newer version that changes nothing an analyst sees (CrowdStrike moves `updated_timestamp`
/// for its own reasons) updates no story and raises no event; only its update time moves on, so
/// that it is not read as new again, and a real change after it is still an update.
pub async fn a_version_that_only_moves_its_update_time_changes_no_story<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let mut inc = incident("100", 0, "ag1", Some(&sha1(1)));
    f.store
        .commit_page(f.page(vec![inc.clone()], t0()))
        .await
        .unwrap();
    let (story, _) = f.assignment().await["100"].clone();
    let before = (f.story(&story).await.story, f.events().await.len());

    inc.updated_at += Duration::hours(2);
    let out = f
        .store
        .commit_page(f.page(vec![inc.clone()], t0() + Duration::hours(2)))
        .await
        .unwrap();
    assert_eq!((out.incidents_updated, out.stories_updated), (0, 0));
    assert_eq!(
        (f.story(&story).await.story, f.events().await.len()),
        before
    );
    // The same version again is no news either.
    let again = f
        .store
        .commit_page(f.page(vec![inc.clone()], t0() + Duration::hours(3)))
        .await
        .unwrap();
    assert_eq!(again.incidents_unchanged, 1);

    inc.updated_at += Duration::hours(1);
    inc.mitigation_status = Some("mitigated".into());
    let out = f
        .store
        .commit_page(f.page(vec![inc], t0() + Duration::hours(4)))
        .await
        .unwrap();
    assert_eq!((out.incidents_updated, out.stories_updated), (1, 1));
    assert_eq!(
        f.events().await.len(),
        before.1 + 2,
        "an incident and a story event"
    );
}

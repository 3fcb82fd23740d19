use std::collections::BTreeSet;
use std::sync::Arc;

use dossier_domain::story::{Severity, Status, Verdict};
use dossier_domain::Incident;

use super::{incident, sha1, t0, Backend, Fixture};
use crate::{Store, StoryQuery, StorySortField, StoryUpdate};

pub async fn keyset_paging_visits_every_story_once_in_every_sort<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let incidents: Vec<_> = (0..57)
        .map(|i| {
            incident(
                &format!("{i}"),
                i64::from(i % 9),
                &format!("ag{}", i % 11),
                Some(&sha1(i % 5)),
            )
        })
        .collect();
    f.store.commit_page(f.page(incidents, t0())).await.unwrap();
    let total = f
        .assignment()
        .await
        .values()
        .map(|(s, _)| s.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    for (name, field) in StorySortField::ALL {
        for desc in [false, true] {
            let mut seen = Vec::new();
            let mut cursor = None;
            loop {
                let q = StoryQuery {
                    account_id: Some(f.account.clone()),
                    sort: *field,
                    descending: desc,
                    limit: 7,
                    cursor: cursor.clone(),
                    ..Default::default()
                };
                let page = f.store.list_stories(&q).await.unwrap();
                seen.extend(page.items.iter().map(|s| s.id.clone()));
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            let unique: std::collections::BTreeSet<_> = seen.iter().collect();
            assert_eq!(
                (seen.len(), unique.len()),
                (total, total),
                "sort {name} desc={desc}"
            );
        }
    }
}

pub async fn filters_narrow_the_list<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    f.store
        .commit_page(f.page(
            vec![
                incident("1", 0, "aa", Some(&sha1(1))),
                incident("2", 0, "bb", Some(&sha1(2))),
            ],
            t0(),
        ))
        .await
        .unwrap();
    let all = f
        .store
        .list_stories(&StoryQuery {
            account_id: Some(f.account.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.items.len(), 2);
    let id = all.items[0].id.clone();
    let upd = StoryUpdate {
        verdict: Some(Some(Verdict::Malicious)),
        severity: Some(Some(Severity::High)),
        status: Some(Status::Monitoring),
        ..StoryUpdate::default()
    };
    f.store
        .update_story(Some(&f.account), &id, &upd, "ann", t0())
        .await
        .unwrap();
    let q = |q: StoryQuery| {
        let f = &f;
        async move {
            f.store
                .list_stories(&StoryQuery {
                    account_id: Some(f.account.clone()),
                    ..q
                })
                .await
                .unwrap()
                .items
        }
    };
    assert_eq!(
        q(StoryQuery {
            status: vec![Status::Monitoring],
            ..Default::default()
        })
        .await
        .len(),
        1
    );
    assert_eq!(
        q(StoryQuery {
            severity: vec![Severity::High],
            ..Default::default()
        })
        .await
        .len(),
        1
    );
    assert_eq!(
        q(StoryQuery {
            device: Some("AA".into()),
            ..Default::default()
        })
        .await
        .len(),
        1
    );
    assert_eq!(
        q(StoryQuery {
            device: Some("host-bb".into()),
            ..Default::default()
        })
        .await
        .len(),
        1
    );
    assert_eq!(
        q(StoryQuery {
            hash: Some(sha1(2).to_uppercase()),
            ..Default::default()
        })
        .await
        .len(),
        1
    );
    // An operator across accounts filters by device and hash too (without the per-account
    // index lookups).
    for across in [
        StoryQuery {
            device: Some("AA".into()),
            ..Default::default()
        },
        StoryQuery {
            hash: Some(sha1(2).to_uppercase()),
            ..Default::default()
        },
    ] {
        let found = f.store.list_stories(&across).await.unwrap().items;
        assert_eq!(found.len(), 1, "{across:?}");
    }
    assert!(q(StoryQuery {
        device: Some("nobody".into()),
        ..Default::default()
    })
    .await
    .is_empty());
    assert_eq!(
        q(StoryQuery {
            q: Some("EVIL".into()),
            ..Default::default()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        q(StoryQuery {
            q: Some("100%".into()),
            ..Default::default()
        })
        .await
        .len(),
        0
    );
    // Search text is bound, never spliced into SQL: a quote finds nothing and breaks nothing.
    for text in ["' OR '1'='1", "\"; DROP TABLE stories; --"] {
        assert_eq!(
            q(StoryQuery {
                q: Some(text.into()),
                ..Default::default()
            })
            .await
            .len(),
            0,
            "{text}"
        );
    }
    assert_eq!(
        q(StoryQuery {
            criticality_min: Some(11),
            ..Default::default()
        })
        .await
        .len(),
        0
    );
}

pub async fn severity_needs_a_malicious_verdict_and_actions_reach_the_timeline<B: Backend>(
    backend: &B,
) {
    let f = Fixture::new(backend).await;
    f.store
        .commit_page(f.page(vec![incident("1", 0, "aa", Some(&sha1(1)))], t0()))
        .await
        .unwrap();
    let id = f.assignment().await["1"].0.clone();
    let bad = StoryUpdate {
        severity: Some(Some(Severity::Low)),
        ..Default::default()
    };
    assert!(f
        .store
        .update_story(Some(&f.account), &id, &bad, "ann", t0())
        .await
        .is_err());
    let ok = StoryUpdate {
        verdict: Some(Some(Verdict::Malicious)),
        severity: Some(Some(Severity::Low)),
        ..Default::default()
    };
    let d = f
        .store
        .update_story(Some(&f.account), &id, &ok, "ann", t0())
        .await
        .unwrap();
    assert_eq!(d.story.severity, Some(Severity::Low));
    // Leaving malicious clears the severity.
    let benign = StoryUpdate {
        verdict: Some(Some(Verdict::Benign)),
        ..Default::default()
    };
    let d = f
        .store
        .update_story(Some(&f.account), &id, &benign, "bob", t0())
        .await
        .unwrap();
    assert_eq!(d.story.severity, None);
    let kinds: Vec<_> = d.timeline.iter().map(|e| e.kind.as_str()).collect();
    assert!(
        kinds.contains(&"verdict_changed") && kinds.contains(&"severity_changed"),
        "{kinds:?}"
    );
    assert!(!d.summary.is_empty());
}

/// Setting what a story already has changes nothing: its `updated_at` stays, and no event or
/// timeline entry is written.
pub async fn an_update_to_the_same_values_changes_nothing<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    f.store
        .commit_page(f.page(vec![incident("1", 0, "aa", Some(&sha1(1)))], t0()))
        .await
        .unwrap();
    let id = f.assignment().await["1"].0.clone();
    let set = StoryUpdate {
        status: Some(Status::Monitoring),
        verdict: Some(Some(Verdict::Malicious)),
        severity: Some(Some(Severity::High)),
        ..StoryUpdate::default()
    };
    let later = t0() + chrono::Duration::hours(1);
    let first = f
        .store
        .update_story(Some(&f.account), &id, &set, "ann", later)
        .await
        .unwrap();
    let events = || {
        let q = crate::EventQuery {
            story_id: Some(id.clone()),
            limit: 1000,
            ..Default::default()
        };
        let store = &f.store;
        async move { store.list_events(&q).await.unwrap().items.len() }
    };
    let before = events().await;
    let again = f
        .store
        .update_story(
            Some(&f.account),
            &id,
            &set,
            "bob",
            later + chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(again.story.updated_at, first.story.updated_at);
    assert_eq!(again.timeline.len(), first.timeline.len());
    assert_eq!(events().await, before, "no event for a change that is none");
    // A real change still goes through.
    let close = StoryUpdate {
        status: Some(Status::Closed),
        ..Default::default()
    };
    let closed = f
        .store
        .update_story(
            Some(&f.account),
            &id,
            &close,
            "bob",
            later + chrono::Duration::hours(2),
        )
        .await
        .unwrap();
    assert_eq!(closed.story.status, Status::Closed);
    assert_eq!(events().await, before + 1);
}

pub async fn comments_are_bounded<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    f.store
        .commit_page(f.page(vec![incident("1", 0, "aa", Some(&sha1(1)))], t0()))
        .await
        .unwrap();
    let id = f.assignment().await["1"].0.clone();
    assert!(f
        .store
        .add_comment(Some(&f.account), &id, "ann", &"x".repeat(501), t0())
        .await
        .is_err());
    assert!(f
        .store
        .add_comment(Some(&f.account), &id, "ann", "   ", t0())
        .await
        .is_err());
    assert!(f
        .store
        .add_comment(Some(&f.account), &id, "ann", &"é".repeat(500), t0())
        .await
        .is_ok());
    for i in 1..200 {
        f.store
            .add_comment(Some(&f.account), &id, "ann", &format!("c{i}"), t0())
            .await
            .unwrap();
    }
    assert!(f
        .store
        .add_comment(Some(&f.account), &id, "ann", "one too many", t0())
        .await
        .is_err());
}

pub async fn a_hash_filter_finds_stories_by_any_of_their_hashes<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let mut full = incident("1", 0, "aa", Some(&sha1(1)));
    full.file.sha256 = Some(format!("{:064x}", 11));
    full.file.md5 = Some(format!("{:032x}", 111));
    let mut md5_only = incident("2", 0, "bb", None);
    md5_only.file.md5 = Some(format!("{:032x}", 222));
    f.store
        .commit_page(f.page(vec![full, md5_only], t0()))
        .await
        .unwrap();
    for (account, scope) in [(Some(f.account.clone()), "account"), (None, "operator")] {
        let find = |h: String| {
            let q = StoryQuery {
                account_id: account.clone(),
                hash: Some(h),
                ..Default::default()
            };
            let store = &f.store;
            async move { store.list_stories(&q).await.unwrap().items }
        };
        for (h, agent) in [
            (sha1(1), "aa"),
            (format!("{:064X}", 11), "aa"),
            (format!("{:032x}", 111), "aa"),
            (format!("{:032x}", 222), "bb"),
        ] {
            let found = find(h.clone()).await;
            assert_eq!(found.len(), 1, "{scope}: {h}");
            assert_eq!(
                found[0].device.agent_uuid.as_deref(),
                Some(agent),
                "{scope}: {h}"
            );
        }
        assert!(find(sha1(9)).await.is_empty(), "{scope}");
        assert!(find("not-a-hash".into()).await.is_empty(), "{scope}");
    }
}

/// SentinelOne sends a file's SHA-256 and MD5 on some threats and not on others. A story shows,
/// and is found by, each hash any of its incidents carries (its latest incident's first), in
/// whatever order and pages the threats arrive.
pub async fn a_story_keeps_the_hashes_an_earlier_incident_carried<B: Backend>(backend: &B) {
    let sha256 = format!("{:064x}", 77);
    let md5 = format!("{:032x}", 777);
    let mut early = incident("1", 0, "aa", Some(&sha1(1)));
    early.file.sha256 = Some(sha256.clone());
    early.file.md5 = Some(md5.clone());
    let late = incident("2", 3, "aa", Some(&sha1(1)));
    let both = || vec![early.clone(), late.clone()];
    let orders: [Vec<Vec<Incident>>; 3] = [
        vec![both()],
        vec![vec![early.clone()], vec![late.clone()]],
        vec![vec![late.clone()], vec![early.clone()]],
    ];
    for (n, pages) in orders.into_iter().enumerate() {
        let f = Fixture::new(backend).await;
        for p in pages {
            f.store.commit_page(f.page(p, t0())).await.unwrap();
        }
        let found = f
            .store
            .list_stories(&StoryQuery {
                account_id: Some(f.account.clone()),
                hash: Some(sha256.clone()),
                ..Default::default()
            })
            .await
            .unwrap()
            .items;
        assert_eq!(found.len(), 1, "order {n}: found by the SHA-256");
        assert_eq!(found[0].incident_count, 2, "order {n}");
        assert_eq!(
            found[0].file.sha256.as_deref(),
            Some(sha256.as_str()),
            "order {n}"
        );
        assert_eq!(
            found[0].file.md5.as_deref(),
            Some(md5.as_str()),
            "order {n}"
        );
        assert_eq!(
            found[0].file.sha1.as_deref(),
            Some(sha1(1).as_str()),
            "order {n}"
        );
        let detail = f.story(&found[0].id).await;
        assert_eq!(
            detail.story.file.sha256.as_deref(),
            Some(sha256.as_str()),
            "order {n}"
        );
    }
}

/// A file's SHA-256 finds its stories on every device, also those whose threats never carried
/// the SHA-256: another story of the account names the file by both hashes.
pub async fn a_sha256_finds_the_stories_of_its_file_that_never_saw_it<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let sha256 = format!("{:064x}", 5);
    let mut known = incident("1", 0, "aa", Some(&sha1(5)));
    known.file.sha256 = Some(sha256.clone());
    let unknown = incident("2", 0, "bb", Some(&sha1(5)));
    let other = incident("3", 0, "cc", Some(&sha1(6)));
    f.store
        .commit_page(f.page(vec![known, unknown, other], t0()))
        .await
        .unwrap();
    for account in [Some(f.account.clone()), None] {
        let found = |h: &str| {
            let q = StoryQuery {
                account_id: account.clone(),
                hash: Some(h.to_owned()),
                ..Default::default()
            };
            let store = &f.store;
            async move {
                let mut agents: Vec<String> = store
                    .list_stories(&q)
                    .await
                    .unwrap()
                    .items
                    .into_iter()
                    .filter_map(|s| s.device.agent_uuid)
                    .collect();
                agents.sort();
                agents
            }
        };
        assert_eq!(found(&sha256).await, ["aa", "bb"], "{account:?}");
        assert_eq!(found(&sha1(5)).await, ["aa", "bb"], "{account:?}");
        assert_eq!(found(&format!("{:064x}", 6)).await, Vec::<String>::new());
    }
}

/// A story's incidents show their normalised form, mapped again from the stored threat: the
/// normalised form is not stored.
pub async fn a_story_shows_its_incidents_as_mapped_from_their_stored_threats<B: Backend>(
    backend: &B,
) {
    let f = Fixture::new(backend).await;
    story_of_a_mapped_threat(&f).await;
}

/// Commits one threat with a device name, a classification, actions and a technique, checks
/// that its story shows it as mapped again from the stored threat, and returns the story's id
/// and the incident. A backend's own tests go on from there (to an older row's stored form).
pub async fn story_of_a_mapped_threat<B: Backend>(f: &Fixture<B>) -> (String, Incident) {
    let mut inc = incident("41", 0, "ag1", Some(&sha1(1)));
    inc.device.name = Some("FINANCE-07".into());
    inc.classification = Some("Ransomware".into());
    inc.mitigation_actions = vec!["kill:success".into(), "quarantine:failed".into()];
    inc.device.network_status = Some("disconnected".into());
    inc.context.users = vec![dossier_domain::context::UserRef {
        name: "CORP\\ana".into(),
        role: dossier_domain::context::UserRole::Process,
    }];
    // SentinelOne's indicator carries the technique the story lists.
    inc.context.indicators = vec![dossier_domain::context::Indicator {
        techniques: vec!["T1055".into()],
        ..Default::default()
    }];
    inc.mitre = vec![dossier_domain::MitreTechnique {
        id: "T1055".into(),
        name: None,
        tactic: Some("Defense Evasion".into()),
    }];
    let inc = f.mapped(inc);
    f.store
        .commit_page(f.page(vec![inc.clone()], t0()))
        .await
        .unwrap();
    let story = f.assignment().await["41"].0.clone();
    let d = f.story(&story).await;
    let shown = &d.incidents[0];
    assert_eq!(shown.classification.as_deref(), Some("Ransomware"));
    assert_eq!(shown.mitigation_actions, inc.mitigation_actions);
    assert_eq!(shown.raw.get(), inc.raw);
    let normalised = shown.normalised.as_ref().expect("the threat maps");
    assert_eq!(
        normalised,
        &dossier_domain::Incident {
            raw: String::new(),
            ..inc.clone()
        }
    );
    assert!(d.summary.contains("FINANCE-07"), "{}", d.summary);
    // The story's entities are gathered from the incidents as mapped.
    let device = d.entities.device.as_ref().expect("a device");
    assert_eq!(device.network_status.as_deref(), Some("disconnected"));
    assert_eq!(device.sources.incident_ids, ["41"]);
    assert_eq!(d.entities.users[0].name, "CORP\\ana");
    assert_eq!(d.entities.files[0].sha1, inc.file.sha1);
    (story, inc)
}

/// A stored threat the mapping can no longer read (a later release reads the producer's JSON
/// differently, say) must not stop its story from being refreshed, which would stall every later
/// page of its connector: what the incident row holds stands in for it.
pub async fn a_stored_threat_that_no_longer_maps_does_not_stall_its_story<B: Backend>(backend: &B) {
    use std::sync::atomic::{AtomicBool, Ordering};
    // The mapping reads threat 50 until the release that no longer can.
    let later_release = Arc::new(AtomicBool::new(false));
    let source = backend.remap();
    let switched = Arc::clone(&later_release);
    let remap: crate::Remap = Arc::new(move |producer, raw| {
        let threat: serde_json::Value = serde_json::from_str(raw).ok()?;
        if switched.load(Ordering::SeqCst) && threat["id"] == "50" {
            return None;
        }
        source(producer, raw)
    });
    let f = Fixture::with_remap(backend, remap).await;
    let h = sha1(3);
    f.store
        .commit_page(f.page(vec![incident("50", 5, "ag1", Some(&h))], t0()))
        .await
        .unwrap();
    later_release.store(true, Ordering::SeqCst);
    // An earlier threat of the same story: the story's latest incident is the stored one.
    f.store
        .commit_page(f.page(vec![incident("51", 1, "ag1", Some(&h))], t0()))
        .await
        .unwrap();
    let a = f.assignment().await;
    assert_eq!(a["50"].0, a["51"].0);
    let d = f.story(&a["50"].0).await;
    assert_eq!(d.story.incident_count, 2);
    assert_eq!(d.story.file.sha1.as_deref(), Some(h.as_str()));
    let unreadable = d.incidents.iter().find(|i| i.id == "50").unwrap();
    assert!(unreadable.normalised.is_none());
}

/// The store reads a stored incident with the mapping the binary gave it for the incident's
/// producer, not with one of its own: it knows no source.
pub async fn stored_incidents_are_read_with_the_mapping_given_for_their_producer<B: Backend>(
    backend: &B,
) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let source = backend.remap();
    let remap: crate::Remap = Arc::new(move |producer, raw| {
        log.lock().unwrap().push(producer);
        let mut inc = source(producer, raw)?;
        inc.classification = Some("as the source maps it".into());
        Some(inc)
    });
    let f = Fixture::with_remap(backend, remap).await;
    f.store
        .commit_page(f.page(vec![incident("1", 0, "ag1", Some(&sha1(1)))], t0()))
        .await
        .unwrap();
    let story = f.assignment().await["1"].0.clone();
    let d = f.story(&story).await;
    assert_eq!(
        d.incidents[0].classification.as_deref(),
        Some("as the source maps it")
    );
    assert!(seen.lock().unwrap().iter().all(|p| *p == super::producer()));
    assert!(!seen.lock().unwrap().is_empty());
}

/// A second producer for the tests that span producers: its incidents are the suite's threats,
/// told apart only by their producer.
fn other_producer() -> dossier_domain::Producer {
    static SPEC: dossier_domain::ProducerSpec = dossier_domain::ProducerSpec {
        name: "otheredr",
        vendor: "Other EDR",
        engine_type: "endpoint",
        judged: dossier_domain::Judged::BySeverity,
    };
    dossier_domain::Producer::new(&SPEC)
}

/// A fixture whose store reads the other producer's threats as the suite's, and the connector
/// of the other producer in its account.
async fn with_other_producer<B: Backend>(backend: &B) -> (Fixture<B>, crate::ConnectorRecord) {
    let other = other_producer();
    let source = backend.remap();
    let remap: crate::Remap = Arc::new(move |producer, raw| {
        let base = if producer == other {
            super::producer()
        } else {
            producer
        };
        let mut inc = source(base, raw)?;
        inc.producer = producer;
        Some(inc)
    });
    let f = Fixture::with_remap(backend, remap).await;
    let second = f
        .add_connector("otheredr", "other", "https://other.example.net")
        .await;
    (f, second)
}

/// A page of the other producer's threats, on its connector.
fn other_page<B: Backend>(
    f: &Fixture<B>,
    connector: &crate::ConnectorRecord,
    incidents: Vec<Incident>,
) -> crate::IngestPage {
    let incidents = incidents
        .into_iter()
        .map(|i| {
            let mut i = f.mapped(i);
            i.producer = other_producer();
            i
        })
        .collect();
    crate::IngestPage {
        connector_id: connector.id.clone(),
        incidents,
        generation: connector.generation,
        ..f.page(vec![], t0())
    }
}

/// One file, named by its SHA-1 and SHA-256 by one producer on one device and by its SHA-256
/// alone by another producer on another device, is on two devices: every story of it is in
/// the outbreak, a filter by either hash finds both, whichever producer was read first.
pub async fn the_outbreak_count_spans_producers_whatever_hash_they_key_the_file_by<B: Backend>(
    backend: &B,
) {
    let sha256 = format!("{:064x}", 99);
    let both = || {
        let mut i = incident("1", 0, "ag1", Some(&sha1(99)));
        i.file.sha256 = Some(sha256.clone());
        i
    };
    let only_sha256 = || {
        let mut i = incident("10", 1, "other-ag1", None);
        i.file.sha256 = Some(sha256.clone());
        i
    };
    for other_first in [false, true] {
        let (f, second) = with_other_producer(backend).await;
        let mine = f.page(vec![both()], t0());
        let theirs = other_page(&f, &second, vec![only_sha256()]);
        let pages = if other_first {
            [theirs, mine]
        } else {
            [mine, theirs]
        };
        for page in pages {
            f.store.commit_page(page).await.unwrap();
        }
        let a = f.assignment().await;
        assert_ne!(a["1"].0, a["10"].0, "one story per device");
        for id in ["1", "10"] {
            let d = f.story(&a[id].0).await;
            assert!(
                super::ingest::in_outbreak(&d),
                "story of {id}, other producer first: {other_first}: {:?}",
                d.criticality_detail.reasons
            );
            assert!(d.summary.contains("1 other device"), "{}", d.summary);
            assert!(
                d.related
                    .iter()
                    .any(|r| r.relation == "same_hash" && r.id != d.story.id),
                "{:?}",
                d.related
            );
        }
        for h in [sha1(99), sha256.clone()] {
            let q = StoryQuery {
                account_id: Some(f.account.clone()),
                hash: Some(h.clone()),
                ..Default::default()
            };
            let found: BTreeSet<String> = f
                .store
                .list_stories(&q)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|s| s.id)
                .collect();
            let want: BTreeSet<String> = [a["1"].0.clone(), a["10"].0.clone()].into();
            assert_eq!(
                found, want,
                "filter by {h}, other producer first: {other_first}"
            );
        }
    }
}

/// The same SHA-256 under two producers (one file, whichever hash each keys it by), and one
/// device name under two producers, relate their stories; a story never relates to itself, and the same name under one producer is no
/// relation of this kind (its own device id says more).
pub async fn stories_relate_across_producers_by_sha256_and_device_name<B: Backend>(backend: &B) {
    let (f, second) = with_other_producer(backend).await;
    let sha256 = format!("{:064x}", 77);
    let mut s1 = incident("1", 0, "ag1", Some(&sha1(1)));
    s1.file.sha256 = Some(sha256.clone());
    s1.device.name = Some("HOST-A".into());
    let mut by_name = incident("2", 0, "ag9", Some(&sha1(2)));
    by_name.device.name = Some("HOST-B".into());
    f.store
        .commit_page(f.page(vec![s1, by_name], t0()))
        .await
        .unwrap();

    let mut same_file = incident("10", 1, "other-ag1", None);
    same_file.file.sha256 = Some(sha256.clone());
    let mut same_host = incident("11", 1, "other-ag2", Some(&sha1(3)));
    same_host.device.name = Some("host-b".into());
    f.store
        .commit_page(other_page(&f, &second, vec![same_file, same_host]))
        .await
        .unwrap();

    let stories = f.assignment().await;
    let of_s1 = relations(&f, &stories["1"].0).await;
    assert!(
        of_s1.contains(&("same_hash".into(), stories["10"].0.clone())),
        "{of_s1:?}"
    );
    let of_host = relations(&f, &stories["2"].0).await;
    assert!(
        of_host.contains(&("same_device_name".into(), stories["11"].0.clone())),
        "{of_host:?}"
    );
    assert!(
        of_host.iter().all(|(_, id)| *id != stories["2"].0),
        "{of_host:?}"
    );
    let of_other = relations(&f, &stories["11"].0).await;
    assert!(
        of_other.contains(&("same_device_name".into(), stories["2"].0.clone())),
        "{of_other:?}"
    );
}

/// A story's related stories as (relation, story id).
async fn relations<B: Backend>(f: &Fixture<B>, id: &str) -> Vec<(String, String)> {
    f.story(id)
        .await
        .related
        .iter()
        .map(|r| (r.relation.clone(), r.id.clone()))
        .collect()
}

pub async fn paging_back_retraces_the_pages_and_counts_stop_at_their_cap<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let incidents: Vec<_> = (0..23)
        .map(|i| {
            incident(
                &format!("{i}"),
                i64::from(i % 4),
                &format!("ag{i}"),
                Some(&sha1(i)),
            )
        })
        .collect();
    f.store.commit_page(f.page(incidents, t0())).await.unwrap();
    let base = StoryQuery {
        account_id: Some(f.account.clone()),
        limit: 5,
        ..Default::default()
    };
    assert_eq!(f.store.count_stories(&base, 10_001).await.unwrap(), 23);
    assert_eq!(f.store.count_stories(&base, 10).await.unwrap(), 10);
    let narrowed = StoryQuery {
        device: Some("ag7".into()),
        ..base.clone()
    };
    assert_eq!(f.store.count_stories(&narrowed, 10_001).await.unwrap(), 1);
    for (name, field) in StorySortField::ALL {
        for desc in [false, true] {
            let q = StoryQuery {
                sort: *field,
                descending: desc,
                ..base.clone()
            };
            // Forward, keeping each page and the cursor that led to it.
            let mut forward = Vec::new();
            let mut cursor = None;
            loop {
                let page = f
                    .store
                    .list_stories(&StoryQuery {
                        cursor: cursor.clone(),
                        ..q.clone()
                    })
                    .await
                    .unwrap();
                assert_eq!(
                    page.prev_cursor.is_none(),
                    cursor.is_none(),
                    "sort {name} desc={desc}: only the first page has no page before it"
                );
                let ids: Vec<String> = page.items.iter().map(|s| s.id.clone()).collect();
                forward.push((ids, page.prev_cursor.clone()));
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            assert_eq!(forward.len(), 5, "sort {name} desc={desc}");
            // Back from the last page: each previous page is the page that came before it.
            let mut back = forward.last().and_then(|(_, p)| p.clone());
            for i in (0..forward.len() - 1).rev() {
                let page = f
                    .store
                    .list_stories(&StoryQuery {
                        cursor: back.clone(),
                        ..q.clone()
                    })
                    .await
                    .unwrap();
                let ids: Vec<String> = page.items.iter().map(|s| s.id.clone()).collect();
                assert_eq!(ids, forward[i].0, "sort {name} desc={desc}: page {i}");
                assert!(page.next_cursor.is_some());
                back = page.prev_cursor;
                if i == 0 {
                    assert!(back.is_none(), "sort {name} desc={desc}: back at the top");
                }
            }
        }
    }
    // A cursor for one sort is refused by another, in either direction.
    let page = f.store.list_stories(&base).await.unwrap();
    let next = f
        .store
        .list_stories(&StoryQuery {
            cursor: page.next_cursor,
            ..base.clone()
        })
        .await
        .unwrap();
    let other = StoryQuery {
        sort: StorySortField::Criticality,
        cursor: next.prev_cursor,
        ..base.clone()
    };
    assert!(f.store.list_stories(&other).await.is_err());
}

pub async fn groups_count_their_stories_by_severity_and_status<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    // One file on three devices, one device with two more files.
    let mut spread = incident("1", 0, "ag1", Some(&sha1(1)));
    spread.threat_name = Some("mimikatz.exe".into());
    spread.file.name = Some("mimikatz.exe".into());
    let mut two = incident("2", 0, "ag2", Some(&sha1(1)));
    two.threat_name = Some("mimikatz.exe".into());
    two.file.name = Some("mimikatz.exe".into());
    let mut three = incident("3", 0, "ag3", Some(&sha1(1)));
    three.threat_name = Some("mimikatz.exe".into());
    three.file.name = Some("mimikatz.exe".into());
    f.store
        .commit_page(f.page(
            vec![
                spread,
                two,
                three,
                incident("4", 0, "ag1", Some(&sha1(2))),
                incident("5", 0, "ag1", Some(&sha1(3))),
            ],
            t0(),
        ))
        .await
        .unwrap();
    let q = StoryQuery {
        account_id: Some(f.account.clone()),
        ..Default::default()
    };
    let stories = f.store.list_stories(&q).await.unwrap().items;
    let of = |agent: &str, hash: &str| {
        stories
            .iter()
            .find(|s| {
                s.device.agent_uuid.as_deref() == Some(agent)
                    && s.file.sha1.as_deref() == Some(hash)
            })
            .unwrap()
            .id
            .clone()
    };
    let malicious = |severity| StoryUpdate {
        verdict: Some(Some(Verdict::Malicious)),
        severity: Some(Some(severity)),
        ..StoryUpdate::default()
    };
    for (id, u) in [
        (of("ag1", &sha1(1)), malicious(Severity::High)),
        (of("ag2", &sha1(1)), malicious(Severity::Low)),
        (
            of("ag3", &sha1(1)),
            StoryUpdate {
                status: Some(Status::Monitoring),
                ..StoryUpdate::default()
            },
        ),
    ] {
        f.store
            .update_story(Some(&f.account), &id, &u, "ann", t0())
            .await
            .unwrap();
    }

    // A fileless story makes a group of none, after the groups of files however large.
    let mut fileless = incident("7", 0, "ag7", None);
    fileless.file.name = None;
    let mut fileless2 = incident("8", 0, "ag8", None);
    fileless2.file.name = None;
    let mut fileless3 = incident("9", 0, "ag9b", None);
    fileless3.file.name = None;
    let mut fileless4 = incident("10", 0, "ag10", None);
    fileless4.file.name = None;
    f.store
        .commit_page(f.page(vec![fileless, fileless2, fileless3, fileless4], t0()))
        .await
        .unwrap();
    let files = f
        .store
        .group_stories(&q, crate::StoryGroup::File, 50)
        .await
        .unwrap();
    assert_eq!(files.len(), 4, "{files:?}");
    assert_eq!((files[3].value.as_str(), files[3].count), ("", 4));
    let file = &files[0];
    assert_eq!((file.value.as_str(), file.count), (sha1(1).as_str(), 3));
    assert_eq!(file.label, "mimikatz.exe");
    assert_eq!(
        file.by_severity,
        vec![
            (Some(Severity::High), 1),
            (Some(Severity::Low), 1),
            (None, 1)
        ]
    );
    assert_eq!(
        file.by_status,
        vec![(Status::Open, 2), (Status::Monitoring, 1)]
    );
    let highest = stories
        .iter()
        .filter(|s| s.file.sha1.as_deref() == Some(sha1(1).as_str()))
        .map(|s| s.criticality)
        .max()
        .unwrap();
    assert_eq!(file.max_criticality, highest);
    // The group's value filters the list to the group.
    let filtered = StoryQuery {
        hash: Some(file.value.clone()),
        ..q.clone()
    };
    assert_eq!(f.store.count_stories(&filtered, 100).await.unwrap(), 3);

    let devices = f
        .store
        .group_stories(&q, crate::StoryGroup::Device, 50)
        .await
        .unwrap();
    assert_eq!(
        devices.len(),
        7,
        "three devices and the four fileless stories' own"
    );
    assert_eq!((devices[0].value.as_str(), devices[0].count), ("ag1", 3));
    let named = stories
        .iter()
        .find(|s| s.device.agent_uuid.as_deref() == Some("ag1"))
        .and_then(|s| s.device.name.clone())
        .unwrap_or_default();
    assert_eq!(devices[0].label, named);
    let filtered = StoryQuery {
        device: Some(devices[0].value.clone()),
        ..q.clone()
    };
    assert_eq!(f.store.count_stories(&filtered, 100).await.unwrap(), 3);
}

/// A story's detail carries its first page of incidents, and the pages after it visit every
/// other incident once, in story order; a cursor of another story is refused, and another
/// account cannot page the story.
pub async fn a_storys_incidents_page_in_story_order_each_once<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let file = sha1(1000);
    // Two incidents share each creation time: story order breaks the tie by id.
    let many: Vec<Incident> = (0..120)
        .map(|n| incident(&format!("{}", 1000 + n), n / 2, "ag1", Some(&file)))
        .collect();
    for chunk in many.chunks(45) {
        f.store
            .commit_page(f.page(chunk.to_vec(), t0()))
            .await
            .unwrap();
    }
    f.store
        .commit_page(f.page(vec![incident("9", 0, "ag2", Some(&sha1(9)))], t0()))
        .await
        .unwrap();
    let assignment = f.assignment().await;
    let (id, other) = (assignment["1000"].0.clone(), assignment["9"].0.clone());
    let d = f.story(&id).await;
    let expected: Vec<String> = (0..120).map(|n| format!("{}", 1000 + n)).collect();
    let first = crate::STORY_INCIDENTS_FIRST_PAGE as usize;
    let ids = |items: &[crate::IncidentView]| -> Vec<String> {
        items.iter().map(|i| i.id.clone()).collect()
    };
    assert_eq!(ids(&d.incidents), expected[..first]);
    assert_eq!(
        d.latest.as_ref().map(|i| i.id.as_str()),
        Some("1119"),
        "the latest is the last in story order, past the first page"
    );
    assert_eq!(
        d.timeline
            .iter()
            .filter(|e| e.kind == "incident_added")
            .count(),
        120,
        "the detail's timeline still holds every incident"
    );

    // Small pages, from the start, visit every incident once in story order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let page = f
            .store
            .story_incidents(Some(&f.account), &id, cursor.as_deref(), 7)
            .await
            .unwrap();
        assert!(page.items.len() <= 7);
        seen.extend(ids(&page.items));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, expected);
    // The detail's cursor continues where its first page stops.
    let rest = f
        .store
        .story_incidents(
            Some(&f.account),
            &id,
            d.incidents_next_cursor.as_deref(),
            1000,
        )
        .await
        .unwrap();
    assert_eq!(ids(&rest.items), expected[first..]);
    assert_eq!(rest.next_cursor, None);

    // A cursor of another story's incidents, or no cursor at all, is refused.
    let theirs = f
        .store
        .story_incidents(Some(&f.account), &other, None, 1)
        .await
        .unwrap();
    assert_eq!(theirs.next_cursor, None, "one incident, one page");
    let mine = f
        .store
        .story_incidents(Some(&f.account), &id, None, 1)
        .await
        .unwrap()
        .next_cursor
        .unwrap();
    for bad in [mine.as_str(), "garbage!"] {
        let e = f
            .store
            .story_incidents(Some(&f.account), &other, Some(bad), 10)
            .await
            .unwrap_err();
        assert!(matches!(e, crate::StoreError::Invalid(_)), "{e:?}");
    }

    // Another account cannot page the story.
    let stranger = f
        .store
        .create_account("Other", dossier_domain::access::Licence::Xops)
        .await
        .unwrap();
    let e = f
        .store
        .story_incidents(Some(&stranger.id), &id, None, 10)
        .await
        .unwrap_err();
    assert!(matches!(e, crate::StoreError::NotFound), "{e:?}");

    // One incident by the producer's id, past the first page too; not another story's, not
    // from another account.
    for wanted in ["1000", "1119"] {
        let one = f
            .store
            .story_incident(Some(&f.account), &id, wanted)
            .await
            .unwrap();
        assert_eq!(one.id, wanted);
    }
    for (story, incident, account) in [
        (&id, "9", &f.account),
        (&other, "1000", &f.account),
        (&id, "1000", &stranger.id),
    ] {
        let e = f
            .store
            .story_incident(Some(account), story, incident)
            .await
            .unwrap_err();
        assert!(matches!(e, crate::StoreError::NotFound), "{e:?}");
    }
}

pub async fn device_names_group_whatever_their_letter_case<B: Backend>(backend: &B) {
    let f = Fixture::new(backend).await;
    let mut shouting = incident("3", 0, "ag9", Some(&sha1(9)));
    shouting.device.name = Some("HOST-AG1".into());
    f.store
        .commit_page(f.page(
            vec![
                incident("1", 0, "ag1", Some(&sha1(1))),
                incident("2", 0, "ag1", Some(&sha1(2))),
                shouting,
                incident("4", 0, "ag4", Some(&sha1(4))),
            ],
            t0(),
        ))
        .await
        .unwrap();
    let q = StoryQuery {
        account_id: Some(f.account.clone()),
        ..Default::default()
    };
    let by_name = f
        .store
        .group_stories(&q, crate::StoryGroup::Source, 50)
        .await
        .unwrap();
    assert_eq!(by_name.len(), 2, "{by_name:?}");
    let host = &by_name[0];
    assert_eq!(
        (host.value.to_lowercase().as_str(), host.count),
        ("host-ag1", 3)
    );
    assert_eq!(
        host.by_status.iter().map(|(_, n)| n).sum::<u64>(),
        3,
        "{host:?}"
    );
    assert_eq!(
        host.by_severity.iter().map(|(_, n)| n).sum::<u64>(),
        3,
        "{host:?}"
    );
}

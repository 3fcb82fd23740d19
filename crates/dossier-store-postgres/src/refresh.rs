//! Recomputing what a story shows from its incidents, after a page changed them.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use dossier_domain::correlate::{reopens, StoryPlan};
use dossier_domain::criticality::{
    count_unmitigated, criticality, highest_judgement, is_false_positive, outbreak_tier,
    Criticality, CriticalityFacts, LatestFacts,
};
use dossier_domain::event::EventType;
use dossier_domain::story::Status;
use dossier_domain::vocabulary::Judgement;
use dossier_domain::{Device, FileInfo, Incident, Producer};

use super::ingest::{event_for_incident, member_id, Prepared, Tx, Writes};
use super::{ts, us};
use dossier_store::{IngestOutcome, IngestPage, Remap, Result, StoreError};

/// Which stories a page touched, and how.
#[derive(Default)]
pub(crate) struct Touch {
    /// Stories whose incidents changed.
    pub updated: BTreeSet<String>,
    /// Per story, the member ids of incidents seen for the first time.
    pub new_incidents: BTreeMap<String, Vec<String>>,
    /// What correlation decided, per story id, for the stories it decided on.
    pub plans: BTreeMap<String, StoryPlan>,
    /// Stories replaced by a successor: old id → new id.
    pub retired: BTreeMap<String, String>,
    /// The file hashes of stories this page retired: a device may have left those files, and
    /// the outbreak tier of their remaining stories must be checked again.
    pub vacated: BTreeSet<String>,
    /// Per story, the member ids of every incident this page wrote into it.
    pub written: BTreeMap<String, Vec<String>>,
    /// Stories that stored incidents (not in this page) moved into.
    pub received_stored: BTreeSet<String>,
    /// Stories that incidents moved out of.
    pub lost: BTreeSet<String>,
}

impl Touch {
    pub(crate) fn written_to(&mut self, story_id: &str, p: &Prepared) {
        self.written
            .entry(story_id.to_owned())
            .or_default()
            .push(p.member_id.clone());
    }
}

pub(crate) struct Aggregates {
    count: i64,
    first: i64,
    last: i64,
    /// The highest [`Judgement::rank`] of the story's incidents.
    judgement_rank: i64,
    /// How many of the story's incidents are not mitigated.
    unmitigated: i64,
    all_false_positive: bool,
}

/// What a story shows of its latest incident and of its file: every column of its row that is
/// neither a count, a time nor the analyst's.
pub(crate) struct Shown {
    producer: Producer,
    /// The latest incident's device, if it names one: it counts towards the file's devices.
    agent: Option<String>,
    agent_uuid: String,
    device_name: String,
    indication: String,
    os: String,
    sha1: String,
    sha256: String,
    md5: String,
    file_name: String,
    file_path: String,
    mitigation: String,
    /// The lowercased text the list's search matches.
    search: String,
    /// What the story's events call it: a threat on a device.
    subject: String,
    latest: LatestFacts,
}

impl Shown {
    fn of(latest: &Incident, [sha1, sha256, md5]: [String; 3]) -> Self {
        let search = [
            latest.threat_name.as_deref(),
            latest.device.name.as_deref(),
            latest.device.agent_uuid.as_deref(),
            Some(sha1.as_str()).filter(|h| !h.is_empty()),
            Some(sha256.as_str()).filter(|h| !h.is_empty()),
            Some(md5.as_str()).filter(|h| !h.is_empty()),
            latest.file.name.as_deref(),
            latest.file.path.as_deref(),
            latest.classification.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
        let name = latest.threat_name.as_deref().unwrap_or("unnamed threat");
        let device = latest.device.name.as_deref().unwrap_or("an unnamed device");
        Self {
            producer: latest.producer,
            agent: latest.device.agent_uuid.clone(),
            agent_uuid: latest.device.agent_uuid.clone().unwrap_or_default(),
            device_name: latest.device.name.clone().unwrap_or_default(),
            indication: latest.threat_name.clone().unwrap_or_default(),
            os: latest
                .device
                .os_name
                .clone()
                .or_else(|| latest.device.os_type.clone())
                .unwrap_or_default(),
            sha1,
            sha256,
            md5,
            file_name: latest.file.name.clone().unwrap_or_default(),
            file_path: latest.file.path.clone().unwrap_or_default(),
            mitigation: latest.mitigation_status.clone().unwrap_or_default(),
            search,
            subject: format!("{name} on {device}"),
            latest: LatestFacts::of(latest),
        }
    }
}

/// A story made only of a page's new incidents, worked out from the page alone: everything
/// its row holds but what depends on the rest of the account (how many devices carry its file,
/// and with that its criticality). It is worked out with the page's plan, so that nothing of it
/// is read back from the database.
pub(crate) struct FreshStory {
    agg: Aggregates,
    shown: Shown,
    story_key: String,
    file_hash: String,
}

impl FreshStory {
    /// `None` unless every member of the plan is one of `incidents`.
    pub(crate) fn of<'a>(
        plan: &StoryPlan,
        incidents: impl Fn(&str) -> Option<&'a Incident>,
    ) -> Option<Self> {
        let members: Vec<&Incident> = plan
            .members
            .iter()
            .map(|m| incidents(m))
            .collect::<Option<_>>()?;
        // The members are oldest first: the latest is the last.
        let latest = *members.last()?;
        let agg = Aggregates {
            count: i64::try_from(members.len()).unwrap_or(i64::MAX),
            first: us(plan.first_at),
            last: us(plan.last_at),
            judgement_rank: i64::from(
                highest_judgement(members.iter().copied()).map_or(0, Judgement::rank),
            ),
            unmitigated: i64::from(count_unmitigated(members.iter().copied())),
            all_false_positive: members.iter().all(|i| is_false_positive(i)),
        };
        // Each hash the latest incident lacks comes from the most recent one that has it.
        let hashes = [0, 1, 2].map(|k| {
            members
                .iter()
                .rev()
                .find_map(|i| file_hash_of(i, k))
                .unwrap_or_default()
                .to_owned()
        });
        let story_key = plan.key.encode();
        Some(Self {
            agg,
            shown: Shown::of(latest, hashes),
            file_hash: key_hash(&story_key),
            story_key,
        })
    }
}

/// An incident's SHA-1 (0), SHA-256 (1) or MD5 (2), if it has one.
fn file_hash_of(i: &Incident, k: usize) -> Option<&str> {
    match k {
        0 => i.file.sha1.as_deref(),
        1 => i.file.sha256.as_deref(),
        _ => i.file.md5.as_deref(),
    }
    .filter(|h| !h.is_empty())
}

/// A touched story, before its criticality is known.
struct Pending<'a> {
    story_id: &'a str,
    plan: Option<&'a StoryPlan>,
    agg: Aggregates,
    shown: Shown,
    existing: Option<Existing>,
    story_key: String,
    file_hash: String,
}

struct Existing {
    status: String,
    closed_at: Option<i64>,
    story_key: String,
    previous_id: Option<String>,
    /// The stored SHA-1 and MD5 (the SHA-256 is in `placed`).
    sha1: String,
    md5: String,
    /// The stored values of the columns that only some indexes carry (see [`Placed`]).
    placed: Placed,
}

/// A story's columns that are in indexes its update need not otherwise touch: the device and
/// file lookups, the first-signal sort and the outbreak index. Kept as the SQLite store has
/// them, so that both stores write a story alike: `PostgreSQL` gives a new row version an entry
/// in every index whenever an indexed column changes, and a story's update always moves
/// `updated_at`, so here leaving them out saves only the values sent.
#[derive(PartialEq, Eq)]
struct Placed {
    agent_uuid: String,
    device_name: String,
    sha256: String,
    file_hash: String,
    first_signal_at: i64,
    outbreak_tier: i64,
}

/// Writes the row and the event of every story the page touched. `fresh` holds the stories
/// made only of the page's new incidents, as worked out with the page's plan (each is taken out
/// of it when used); any other story is read back from the database.
pub(crate) fn refresh_stories(
    tx: &mut Tx<'_>,
    writes: &mut Writes<'_>,
    page: &IngestPage,
    written: &[&Prepared],
    touch: &Touch,
    fresh: &mut HashMap<String, FreshStory>,
    outcome: &mut IngestOutcome,
) -> Result<()> {
    let remap = &std::sync::Arc::clone(&writes.remap);
    let by_member: HashMap<&str, &Prepared> =
        written.iter().map(|p| (p.member_id.as_str(), *p)).collect();
    // First which names of a file the page's incidents link; then what each touched story now
    // is, and which file it is of; then, with every story of the page known, how many devices
    // carry each file; then the rows.
    let mut vacated = super::files::learn(
        tx,
        &page.account_id,
        written.iter().filter_map(|p| {
            let f = &p.inc.file;
            Some((f.sha1.as_deref()?, f.sha256.as_deref()?))
        }),
    )?;
    vacated.extend(touch.vacated.iter().cloned());
    let mut pending = pending_stories(tx, remap, touch, fresh, &by_member, &mut vacated)?;
    let mut files = super::files::Identities::of(&page.account_id);
    for p in &mut pending {
        p.file_hash = files.get(tx, &p.file_hash)?;
    }
    vacated.remove("");
    let devices = devices_by_hash(tx, &page.account_id, &pending, &vacated)?;
    // A new story's id may once have been retired into an alias, which it must not shadow;
    // while no story was ever retired there is nothing to look for.
    let any_alias: bool = tx
        .query_one("SELECT EXISTS (SELECT 1 FROM story_aliases)", &[])?
        .get(0);
    let story_page = StoryPage {
        page,
        touch,
        by_member: &by_member,
        devices: &devices,
        any_alias,
    };
    let mut hashes = BTreeSet::new();
    for p in pending {
        write_story(tx, &story_page, writes, p, &mut hashes, outcome)?;
    }
    hashes.extend(vacated);
    refresh_outbreaks(tx, remap, &page.account_id, &hashes, &devices)?;
    Ok(())
}

/// What each touched story now is: made of the page's new incidents alone (from `fresh`), or
/// read back from the database. A story left with no incident is deleted, and its file hash
/// added to `vacated`.
fn pending_stories<'t>(
    tx: &mut Tx<'_>,
    remap: &Remap,
    touch: &'t Touch,
    fresh: &mut HashMap<String, FreshStory>,
    by_member: &HashMap<&str, &Prepared>,
    vacated: &mut BTreeSet<String>,
) -> Result<Vec<Pending<'t>>> {
    let mut pending: Vec<Pending<'_>> = Vec::with_capacity(touch.updated.len());

    for story_id in &touch.updated {
        if touch.retired.contains_key(story_id) {
            continue;
        }
        let plan = touch.plans.get(story_id);
        let made_fresh = plan.filter(|p| is_fresh(p, touch)).and_then(|p| {
            fresh
                .remove(&p.id)
                .or_else(|| FreshStory::of(p, |m| by_member.get(m).map(|p| &p.inc)))
        });
        if let Some(f) = made_fresh {
            pending.push(Pending {
                story_id,
                plan,
                agg: f.agg,
                shown: f.shown,
                existing: None,
                story_key: f.story_key,
                file_hash: f.file_hash,
            });
            continue;
        }
        let Some(agg) = aggregates(tx, story_id)? else {
            // Every incident moved elsewhere without a successor: nothing to show.
            let hash: Option<String> = tx
                .query_opt(
                    "DELETE FROM stories WHERE id = $1 RETURNING file_hash",
                    &[story_id],
                )?
                .map(|r| r.get(0));
            vacated.extend(hash);
            continue;
        };
        let latest = latest_incident(tx, remap, story_id, by_member)?;
        let existing = existing(tx, story_id)?;
        let hashes = story_hashes(tx, story_id, &latest, existing.as_ref(), touch, by_member)?;
        let story_key = plan
            .map(|p| p.key.encode())
            .or_else(|| existing.as_ref().map(|e| e.story_key.clone()))
            .unwrap_or_default();
        pending.push(Pending {
            story_id,
            plan,
            agg,
            shown: Shown::of(&latest, hashes),
            existing,
            file_hash: key_hash(&story_key),
            story_key,
        });
    }
    Ok(pending)
}

/// What every story of a page is written with, besides its own `Pending`.
struct StoryPage<'p> {
    page: &'p IngestPage,
    touch: &'p Touch,
    by_member: &'p HashMap<&'p str, &'p Prepared>,
    /// Per file hash, how many devices carry the file.
    devices: &'p HashMap<String, u32>,
    /// Whether any story was ever retired into an alias.
    any_alias: bool,
}

/// Writes one story's row, the events of its new incidents, and its own event; adds its file
/// hash to `hashes`.
fn write_story(
    tx: &mut Tx<'_>,
    sp: &StoryPage<'_>,
    writes: &mut Writes<'_>,
    pending: Pending<'_>,
    hashes: &mut BTreeSet<String>,
    outcome: &mut IngestOutcome,
) -> Result<()> {
    let StoryPage {
        page,
        touch,
        devices,
        ..
    } = *sp;
    let Pending {
        story_id,
        plan,
        agg,
        shown,
        existing,
        story_key,
        file_hash,
    } = pending;
    let new_members = touch
        .new_incidents
        .get(story_id)
        .map_or(&[][..], Vec::as_slice);
    let devices = devices.get(&file_hash).copied().unwrap_or(1);
    hashes.insert(file_hash.clone());
    let (crit, crit_json) = story_criticality(&agg, shown.latest, devices)?;

    let (status, closed_at, reopened) = status_after(existing.as_ref(), new_members, page);
    let previous_id = match plan {
        Some(p) => p.previous.clone(),
        None => existing.as_ref().and_then(|e| e.previous_id.clone()),
    };

    let created = existing.is_none();
    let Shown {
        producer,
        agent_uuid,
        device_name,
        indication,
        os,
        sha1,
        sha256,
        md5,
        file_name,
        file_path,
        mitigation,
        search,
        subject,
        ..
    } = shown;
    let placed = Placed {
        agent_uuid,
        device_name,
        sha256,
        file_hash,
        first_signal_at: agg.first,
        outbreak_tier: i64::from(outbreak_tier(devices)),
    };
    if existing.as_ref().is_some_and(|e| e.placed == placed) {
        // The same columns as the upsert below sets, but for the unchanged `Placed` ones.
        tx.execute(
            STORY_UPDATE,
            &[
                &story_id,
                &story_key,
                &previous_id,
                &indication,
                &status,
                &i64::from(crit.score),
                &crit_json,
                &us(page.now),
                &agg.last,
                &agg.count,
                &os,
                &sha1,
                &md5,
                &file_name,
                &file_path,
                &mitigation,
                &closed_at,
                &search,
            ],
        )?;
    } else {
        tx.execute(
            STORY_UPSERT,
            &[
                &story_id,
                &page.account_id,
                &producer.as_str(),
                &producer.engine_type(),
                &producer.vendor(),
                &page.connector_id,
                &story_key,
                &previous_id,
                &indication,
                &status,
                &i64::from(crit.score),
                &crit_json,
                &placed.outbreak_tier,
                &us(page.now),
                &placed.first_signal_at,
                &agg.last,
                &agg.count,
                &placed.agent_uuid,
                &placed.device_name,
                &os,
                &sha1,
                &placed.sha256,
                &md5,
                &file_name,
                &file_path,
                &placed.file_hash,
                &mitigation,
                &closed_at,
                &search,
            ],
        )?;
    }

    after_row(tx, sp, writes, story_id, new_members, created, reopened)?;
    let (kind, verb) = if created {
        outcome.stories_created += 1;
        (EventType::StoryCreated, "created")
    } else {
        outcome.stories_updated += 1;
        (EventType::StoryUpdated, "updated")
    };
    let data = StoryEventData {
        criticality: crit.score,
        incident_count: agg.count,
        reopened,
        status: &status,
    };
    story_event(
        writes,
        story_id,
        kind,
        format!("story {verb}: {subject}"),
        &data,
    )
}

/// What follows a story's row: a new story's id leaves the aliases, its new incidents get
/// their events, and a reopening goes on its timeline.
fn after_row(
    tx: &mut Tx<'_>,
    sp: &StoryPage<'_>,
    writes: &mut Writes<'_>,
    story_id: &str,
    new_members: &[String],
    created: bool,
    reopened: bool,
) -> Result<()> {
    let StoryPage {
        page,
        by_member,
        any_alias,
        ..
    } = *sp;
    if created && any_alias {
        // A window can come back to an id it once had; the story is real again.
        tx.execute("DELETE FROM story_aliases WHERE old_id = $1", &[&story_id])?;
    }
    for m in new_members {
        if let Some(p) = by_member.get(m.as_str()) {
            event_for_incident(writes, p, story_id, EventType::IncidentCreated);
        }
    }
    if reopened {
        timeline(tx, story_id, page, "reopened", &page.policy.reopen_text())?;
    }
    Ok(())
}

/// A story's status after the page, and when it closed: a closed story that gets new
/// incidents reopens if the policy says so (the `bool`).
fn status_after(
    existing: Option<&Existing>,
    new_members: &[String],
    page: &IngestPage,
) -> (String, Option<i64>, bool) {
    let (mut status, mut closed_at) = match existing {
        Some(e) => (e.status.clone(), e.closed_at),
        None => (Status::Open.as_str().to_owned(), None),
    };
    let reopened = reopens(
        Status::parse(&status).unwrap_or(Status::Open),
        closed_at.map(ts),
        !new_members.is_empty(),
        page.now,
        &page.policy,
    );
    if reopened {
        Status::Reopened.as_str().clone_into(&mut status);
        closed_at = None;
    }
    (status, closed_at, reopened)
}

/// Records that a story was created or updated.
fn story_event(
    writes: &mut Writes<'_>,
    story_id: &str,
    kind: EventType,
    text: String,
    data: &StoryEventData<'_>,
) -> Result<()> {
    let data = serde_json::to_string(data).map_err(|e| StoreError::Invalid(e.to_string()))?;
    writes.story_event(kind, story_id, text, data);
    Ok(())
}

/// Rewrites a story whose placed columns (device, hashes, first signal, outbreak tier) did not
/// change, leaving the index entries on them alone.
pub(crate) const STORY_UPDATE: &str =
    "UPDATE stories SET story_key = $2, previous_id = $3, indication = $4,
                     status = $5, criticality = $6, criticality_detail = $7, updated_at = $8,
                     last_signal_at = $9, incident_count = $10, os = $11, sha1 = $12, md5 = $13,
                     file_name = $14, file_path = $15, mitigation = $16, closed_at = $17,
                     search = $18
                 WHERE id = $1";

/// Writes a story, new or not.
pub(crate) const STORY_UPSERT: &str =
    "INSERT INTO stories (id, account_id, producer, engine_type, vendor, connector_id,
                     story_key, previous_id, indication, status, criticality, criticality_detail,
                     outbreak_tier, created_at, updated_at, first_signal_at, last_signal_at,
                     incident_count, agent_uuid, device_name, os, sha1, sha256, md5, file_name,
                     file_path, file_hash, mitigation, closed_at, search)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15,
                     $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29)
                 ON CONFLICT (id) DO UPDATE SET
                     story_key = excluded.story_key, previous_id = excluded.previous_id,
                     indication = excluded.indication, status = excluded.status,
                     criticality = excluded.criticality,
                     criticality_detail = excluded.criticality_detail,
                     outbreak_tier = excluded.outbreak_tier, updated_at = excluded.updated_at,
                     first_signal_at = excluded.first_signal_at,
                     last_signal_at = excluded.last_signal_at,
                     incident_count = excluded.incident_count, agent_uuid = excluded.agent_uuid,
                     device_name = excluded.device_name, os = excluded.os, sha1 = excluded.sha1,
                     sha256 = excluded.sha256, md5 = excluded.md5, file_name = excluded.file_name,
                     file_path = excluded.file_path, file_hash = excluded.file_hash,
                     mitigation = excluded.mitigation, closed_at = excluded.closed_at,
                     search = excluded.search";

/// The data of a story's created/updated event (its keys in this order, as they always were).
#[derive(serde::Serialize)]
struct StoryEventData<'a> {
    criticality: u8,
    incident_count: i64,
    reopened: bool,
    status: &'a str,
}

/// Whether a story planned by this page is made only of the page's new incidents, so that
/// nothing of it need be read back. A story that a retired one passed its analyst state to is
/// never fresh, whatever its incidents.
fn is_fresh(plan: &StoryPlan, touch: &Touch) -> bool {
    touch
        .new_incidents
        .get(&plan.id)
        .is_some_and(|new| new.len() == plan.members.len())
        && !touch.retired.values().any(|s| *s == plan.id)
}

/// A story's file hashes (SHA-1, SHA-256, MD5): its latest incident's, and each one that lacks
/// from another of the story's incidents that has it. SentinelOne often sends a file's SHA-256
/// or MD5 on some of its threats and not on others; the story keeps showing, and is found by,
/// every hash its file is known by. (The incidents of a story are of one file, so they agree on
/// each hash they carry; where they could not, the most recent one's is taken.)
///
/// Each hash comes, in this order, from: the latest incident; any incident this page wrote into
/// the story; the stored story, unless incidents left it; and only then the stored incidents,
/// which are asked only when one could have it (the stored story had it, or stored incidents
/// moved in). A stored story without a hash had no incident with it.
fn story_hashes(
    tx: &mut Tx<'_>,
    story_id: &str,
    latest: &Incident,
    existing: Option<&Existing>,
    touch: &Touch,
    by_member: &HashMap<&str, &Prepared>,
) -> Result<[String; 3]> {
    const MOST_RECENT: [&str; 3] = [
        "SELECT sha1 FROM incidents WHERE story_id = $1 AND sha1 != ''
         ORDER BY created_at DESC, connector_id DESC, external_id DESC LIMIT 1",
        "SELECT sha256 FROM incidents WHERE story_id = $1 AND sha256 != ''
         ORDER BY created_at DESC, connector_id DESC, external_id DESC LIMIT 1",
        "SELECT md5 FROM incidents WHERE story_id = $1 AND md5 != ''
         ORDER BY created_at DESC, connector_id DESC, external_id DESC LIMIT 1",
    ];
    let written: Vec<&Incident> = touch
        .written
        .get(story_id)
        .map(|ids| {
            ids.iter()
                .filter_map(|m| by_member.get(m.as_str()).map(|p| &p.inc))
                .collect()
        })
        .unwrap_or_default();
    let stored = existing.map(|e| [e.sha1.as_str(), e.placed.sha256.as_str(), e.md5.as_str()]);
    let lost = touch.lost.contains(story_id);
    let mut out: [String; 3] = Default::default();
    for (k, slot) in out.iter_mut().enumerate() {
        if let Some(h) = file_hash_of(latest, k) {
            h.clone_into(slot);
            continue;
        }
        if let Some(h) = written.iter().rev().find_map(|i| file_hash_of(i, k)) {
            h.clone_into(slot);
            continue;
        }
        let stored = stored.map(|s| s[k]);
        if let Some(h) = stored.filter(|h| !h.is_empty() && !lost) {
            h.clone_into(slot);
            continue;
        }
        if stored.is_none_or(|h| !h.is_empty()) || touch.received_stored.contains(story_id) {
            if let Some(r) = tx.query_opt(MOST_RECENT[k], &[&story_id])? {
                *slot = r.get(0);
            }
        }
    }
    Ok(out)
}

/// A story's criticality from its aggregates and what its latest incident says; the rule itself
/// lives in `dossier_domain::criticality`. Returned with its stored JSON form.
fn story_criticality(
    agg: &Aggregates,
    latest: LatestFacts,
    devices: u32,
) -> Result<(Criticality, String)> {
    let facts = CriticalityFacts::new(
        latest,
        Judgement::from_rank(latest.producer.judged(), agg.judgement_rank),
        u32::try_from(agg.count).unwrap_or(u32::MAX),
        u32::try_from(agg.unmitigated).unwrap_or(u32::MAX),
        agg.all_false_positive,
        devices,
    );
    let crit = criticality(&facts);
    let json = serde_json::to_string(&crit).map_err(|e| StoreError::Invalid(e.to_string()))?;
    Ok((crit, json))
}

fn aggregates(tx: &mut Tx<'_>, story_id: &str) -> Result<Option<Aggregates>> {
    let r = tx.query_one(
        "SELECT count(*), min(created_at), max(created_at), max(confidence_rank),
             min(false_positive), sum(unmitigated)::bigint
         FROM incidents WHERE story_id = $1",
        &[&story_id],
    )?;
    let agg = Aggregates {
        count: r.get(0),
        first: r.get::<_, Option<i64>>(1).unwrap_or_default(),
        last: r.get::<_, Option<i64>>(2).unwrap_or_default(),
        judgement_rank: r.get::<_, Option<i64>>(3).unwrap_or_default(),
        all_false_positive: r.get::<_, Option<i64>>(4).unwrap_or_default() == 1,
        unmitigated: r.get::<_, Option<i64>>(5).unwrap_or_default(),
    };
    Ok((agg.count > 0).then_some(agg))
}

/// The story's latest incident (by creation; ties broken by id, so any node agrees): from the
/// page when it is there, else from the database.
fn latest_incident<'a>(
    tx: &mut Tx<'_>,
    remap: &Remap,
    story_id: &str,
    in_page: &HashMap<&str, &'a Prepared>,
) -> Result<Cow<'a, Incident>> {
    // The last in story order (`dossier_domain::criticality::story_order`): created last, then
    // the greatest member id, which is the connector id and then the external id.
    let r = tx.query_one(
        "SELECT connector_id, external_id FROM incidents WHERE story_id = $1
         ORDER BY created_at DESC, connector_id DESC, external_id DESC LIMIT 1",
        &[&story_id],
    )?;
    let (connector, external): (String, String) = (r.get(0), r.get(1));
    if let Some(p) = in_page.get(member_id(&connector, &external).as_str()) {
        return Ok(Cow::Borrowed(&p.inc));
    }
    let r = tx.query_one(
        "SELECT b.raw, i.producer FROM incidents i
             JOIN incident_bodies b ON b.seq = i.seq
         WHERE i.connector_id = $1 AND i.external_id = $2",
        &[&connector, &external],
    )?;
    let (raw, producer): (String, String) = (r.get(0), r.get(1));
    let producer = Producer::parse(&producer).ok_or_else(|| {
        StoreError::Database(format!(
            "threat {external} names no known producer: {producer}"
        ))
    })?;
    // The raw JSON is all that is stored: the incident is its producer's mapping of it.
    if let Some(inc) = remap(producer, &raw) {
        return Ok(Cow::Owned(inc));
    }
    // A raw threat the mapping no longer reads must not stop the story from being refreshed
    // (and with it every later page of the connector): what the incident row holds stands in.
    tracing::warn!(threat = %external, "a stored threat no longer maps; its story shows its hashes and device only");
    let r = tx.query_one(
        "SELECT i.created_at, i.updated_at, i.agent, i.sha1, i.sha256, i.md5, i.storyline,
             coalesce(s.producer, c.kind)
         FROM incidents i LEFT JOIN stories s ON s.id = i.story_id
             LEFT JOIN connectors c ON c.id = i.connector_id
         WHERE i.connector_id = $1 AND i.external_id = $2",
        &[&connector, &external],
    )?;
    let producer: Option<String> = r.get(7);
    let producer = producer
        .as_deref()
        .and_then(Producer::parse)
        .ok_or_else(|| {
            StoreError::Database(format!("threat {external} names no known producer"))
        })?;
    Ok(Cow::Owned(Incident {
        producer,
        external_id: external.clone(),
        created_at: ts(r.get(0)),
        updated_at: ts(r.get(1)),
        device: Device {
            agent_uuid: r.get(2),
            ..Device::default()
        },
        file: FileInfo {
            sha1: r.get(3),
            sha256: r.get(4),
            md5: r.get(5),
            ..FileInfo::default()
        },
        threat_name: None,
        classification: None,
        confidence_level: None,
        mitigation_status: None,
        analyst_verdict: None,
        confidence: dossier_domain::vocabulary::Confidence::Unknown,
        mitigation: dossier_domain::vocabulary::Mitigation::Unknown,
        producer_verdict: dossier_domain::vocabulary::ProducerVerdict::Undefined,
        severity: None,
        incident_status: None,
        engines: Vec::new(),
        storyline: r.get(6),
        initiated_by: None,
        is_fileless: false,
        mitre: Vec::new(),
        mitigation_actions: Vec::new(),
        console_url: None,
        context: dossier_domain::context::Context::default(),
        raw: String::new(),
    }))
}

fn existing(tx: &mut Tx<'_>, story_id: &str) -> Result<Option<Existing>> {
    Ok(tx
        .query_opt(
            "SELECT status, closed_at, story_key, previous_id, agent_uuid, device_name, sha256,
                 file_hash, first_signal_at, outbreak_tier, sha1, md5
             FROM stories WHERE id = $1",
            &[&story_id],
        )?
        .map(|r| Existing {
            status: r.get(0),
            closed_at: r.get(1),
            story_key: r.get(2),
            previous_id: r.get(3),
            sha1: r.get(10),
            md5: r.get(11),
            placed: Placed {
                agent_uuid: r.get(4),
                device_name: r.get(5),
                sha256: r.get(6),
                file_hash: r.get(7),
                first_signal_at: r.get(8),
                outbreak_tier: r.get(9),
            },
        }))
}

/// The file hash of a story keyed on a hash (`hash:<agent>:<hash>`), else `""`.
fn key_hash(story_key: &str) -> String {
    story_key
        .strip_prefix("hash:")
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, h)| h.to_owned())
        .unwrap_or_default()
}

/// How many devices of the account carry each file (by identity) of the touched stories, and
/// each file of `vacated` (a retired story left it, or it took in stories of another name):
/// those stored, and those of this page's stories (not written yet).
fn devices_by_hash(
    tx: &mut Tx<'_>,
    account_id: &str,
    pending: &[Pending<'_>],
    vacated: &BTreeSet<String>,
) -> Result<HashMap<String, u32>> {
    let mut agents: HashMap<&str, HashSet<String>> = vacated
        .iter()
        .map(|h| (h.as_str(), HashSet::new()))
        .collect();
    for p in pending.iter().filter(|p| !p.file_hash.is_empty()) {
        let set = agents.entry(p.file_hash.as_str()).or_default();
        if let Some(a) = &p.shown.agent {
            set.insert(a.clone());
        }
    }
    let mut out = HashMap::new();
    for (hash, set) in &mut agents {
        let rows = tx.query(
            "SELECT DISTINCT agent_uuid FROM stories WHERE account_id = $1 AND file_hash = $2",
            &[&account_id, hash],
        )?;
        set.extend(rows.iter().map(|r| r.get::<_, String>(0)));
        out.insert(
            (*hash).to_owned(),
            u32::try_from(set.len().max(1)).unwrap_or(u32::MAX),
        );
    }
    Ok(out)
}

/// The stories of a file whose stored outbreak tier differs from the file's. The tier is in the
/// `stories_hash` index, so stories that are current are passed over without reading their rows.
pub(crate) const STALE_TIER: &str =
    "SELECT id FROM stories WHERE account_id = $1 AND file_hash = $2 AND outbreak_tier != $3";

/// When a file spreads to more devices, the criticality of every story of that file on other
/// devices changes too. Criticality depends on the device count only through its tier, so only
/// stories whose stored tier differs are recomputed.
fn refresh_outbreaks(
    tx: &mut Tx<'_>,
    remap: &Remap,
    account_id: &str,
    hashes: &BTreeSet<String>,
    devices_cache: &HashMap<String, u32>,
) -> Result<()> {
    for hash in hashes.iter().filter(|h| !h.is_empty()) {
        let Some(&devices) = devices_cache.get(hash) else {
            continue;
        };
        let tier = i64::from(outbreak_tier(devices));
        let stale: Vec<String> = tx
            .query(STALE_TIER, &[&account_id, hash, &tier])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for id in stale {
            let agg = aggregates(tx, &id)?;
            let Some(agg) = agg else { continue };
            let latest = latest_incident(tx, remap, &id, &HashMap::new())?;
            let (crit, crit_json) = story_criticality(&agg, LatestFacts::of(&latest), devices)?;
            tx.execute(
                "UPDATE stories SET criticality = $2, criticality_detail = $3, outbreak_tier = $4
                 WHERE id = $1",
                &[&id, &i64::from(crit.score), &crit_json, &tier],
            )?;
        }
    }
    Ok(())
}

pub(crate) fn timeline(
    tx: &mut Tx<'_>,
    story_id: &str,
    page: &IngestPage,
    kind: &str,
    text: &str,
) -> Result<()> {
    tx.execute(
        "INSERT INTO timeline (story_id, at, kind, actor, text) VALUES ($1, $2, $3, NULL, $4)",
        &[&story_id, &us(page.now), &kind, &text],
    )?;
    Ok(())
}

//! Committing one page of threats: incidents, story changes, events and the checkpoint, in
//! one transaction, so that a crash at any instant either re-reads the page or has applied it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use dossier_domain::correlate::{self, Arrival, HashKind, Member, Term};
use dossier_domain::event::EventType;
use dossier_domain::story::{Severity, Status, Triage, Verdict};
use dossier_domain::Incident;
use rusqlite::{
    params, CachedStatement, Connection, OptionalExtension, Transaction, TransactionBehavior,
};

use super::refresh::{refresh_stories, FreshStory, Touch};
use super::us;
use dossier_store::{IngestOutcome, IngestPage, Remap, Result, StoreError};

/// A stored story's triage, if the story exists.
pub(crate) fn triage(tx: &Connection, id: &str) -> Result<Option<Triage>> {
    let mut st = tx.prepare_cached(
        "SELECT status, verdict, severity, closed_at, close_reason, assignee
         FROM stories WHERE id = ?1",
    )?;
    let row = st
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })
        .optional()?;
    Ok(row.map(
        |(status, verdict, severity, closed_at, close_reason, assignee)| Triage {
            status: Status::parse(&status).unwrap_or(Status::Open),
            verdict: Verdict::parse(&verdict),
            severity: Severity::parse(&severity),
            closed_at: closed_at.map(super::ts),
            close_reason,
            assignee,
        },
    ))
}

/// The id correlation knows an incident by: unique within an account.
pub(crate) fn member_id(connector_id: &str, external_id: &str) -> String {
    format!("{connector_id}:{external_id}")
}

fn split_member_id(id: &str) -> (&str, &str) {
    id.split_once(':').unwrap_or((id, ""))
}

struct Stored {
    updated_at: i64,
    story_id: String,
    member: Member,
}

/// One incident of a page, made ready for writing before the writer lock is taken: the raw
/// JSON moved out and compressed. The normalised form is not stored: it is the producer's
/// mapping of the raw JSON, and is mapped again when it is read ([`super::body::stored_incident`]).
pub(crate) struct Prepared {
    pub inc: Incident,
    pub raw: Vec<u8>,
    pub member_id: String,
    /// The incident's event, but for its verb: what was seen on which device.
    pub event_subject: String,
    pub event_data: String,
}

/// Dedupes a page (the latest version of a threat wins; of versions equally recent, the last)
/// and serialises what will be written, in the order of the threats' ids.
pub(crate) fn prepare(page: &mut IngestPage) -> Result<Vec<Prepared>> {
    let incidents = std::mem::take(&mut page.incidents);
    // Which version of each threat wins is worked out on positions: a batch is thousands of
    // incidents of a kilobyte or so each, and a map of them moved them all at every split.
    let mut keep: Vec<usize> = {
        let mut winner: HashMap<&str, usize> = HashMap::with_capacity(incidents.len());
        for (i, inc) in incidents.iter().enumerate() {
            let slot = winner.entry(inc.external_id.as_str()).or_insert(i);
            if incidents[*slot].updated_at <= inc.updated_at {
                *slot = i;
            }
        }
        winner.into_values().collect()
    };
    keep.sort_unstable_by(|&a, &b| incidents[a].external_id.cmp(&incidents[b].external_id));
    let mut slots: Vec<Option<Incident>> = incidents.into_iter().map(Some).collect();
    let mut packer = super::body::Packer::default();
    let mut prepared = Vec::with_capacity(keep.len());
    for i in keep {
        let Some(mut inc) = slots.get_mut(i).and_then(Option::take) else {
            continue;
        };
        let raw_text = std::mem::take(&mut inc.raw);
        let raw = packer.raw(raw_text.as_bytes())?;
        let member_id = member_id(&page.connector_id, &inc.external_id);
        let (event_subject, event_data) = incident_event(&inc)?;
        prepared.push(Prepared {
            inc,
            raw,
            member_id,
            event_subject,
            event_data,
        });
    }
    Ok(prepared)
}

/// Takes out of the page the records that another connector reaching the same tenant
/// (`page.shared_with`) already holds: an incident is one record of one tenant, kept by the
/// connector that read it first. Returns how many were taken out.
pub(crate) fn drop_held(
    conn: &Connection,
    page: &IngestPage,
    prepared: &mut Vec<Prepared>,
) -> Result<u64> {
    if page.shared_with.is_empty() || prepared.is_empty() {
        return Ok(0);
    }
    let mut st = conn.prepare_cached(
        "SELECT 1 FROM incidents WHERE connector_id = ?1 AND external_id = ?2 AND account_id = ?3",
    )?;
    let before = prepared.len();
    let mut failed = None;
    prepared.retain(|p| {
        let held = page.shared_with.iter().try_fold(false, |held, other| {
            if held {
                return Ok(true);
            }
            st.exists(params![other, p.inc.external_id, page.account_id])
        });
        match held {
            Ok(held) => !held,
            Err(e) => {
                failed.get_or_insert(e);
                true
            }
        }
    });
    if let Some(e) = failed {
        return Err(e.into());
    }
    Ok((before - prepared.len()) as u64)
}

/// What a page does to the incidents already stored, and the stories correlation decides on:
/// everything about a commit that is read rather than written. It depends only on the
/// account's incidents, so it can be worked out on a reader before the writer lock is taken,
/// and used under the lock if no other commit of the account came in between.
pub(crate) struct PagePlan {
    /// Per prepared incident, in order.
    actions: Vec<Action>,
    /// The lookup terms' stored incidents, as correlation saw them: member id → story.
    current_story: HashMap<String, String>,
    plans: Vec<correlate::StoryPlan>,
    /// The planned stories made only of the page's new incidents, by id: their rows need
    /// nothing more from the database.
    fresh: HashMap<String, FreshStory>,
}

enum Action {
    /// A version no newer than the stored one: nothing to write.
    Unchanged,
    /// A newer version that changes nothing an analyst sees
    /// ([`dossier_domain::Incident::only_touched`]): only its update time moves on.
    Touched,
    /// A newer version with the same correlation key: it stays in its story.
    InPlace { story_id: String },
    /// New, or its key changed: correlation decides its story.
    Rekey { new: bool },
}

/// Reads what the page's incidents were and correlates those that need it. `conn` may be a
/// reader in a read transaction, or the writer's own transaction.
pub(crate) fn plan_page(
    conn: &Connection,
    remap: &Remap,
    page: &IngestPage,
    prepared: &[Prepared],
) -> Result<PagePlan> {
    let mut actions = Vec::with_capacity(prepared.len());
    let mut current_story: HashMap<String, String> = HashMap::new();
    // The lookup terms of incidents whose key changed, as stored: their old key's stories must
    // be correlated again too.
    let mut old_terms: Vec<Term> = Vec::new();
    let mut rekey: Vec<&Prepared> = Vec::new();
    for p in prepared {
        let stored = load_stored(conn, &page.connector_id, &p.inc.external_id, &p.member_id)?;
        let member = Member::of_incident(p.member_id.clone(), &p.inc);
        // Compared as stored, to the microsecond.
        let arrival = correlate::arrival(
            stored
                .as_ref()
                .map(|s| (super::ts(s.updated_at), &s.member)),
            super::ts(us(p.inc.updated_at)),
            &member,
        );
        actions.push(match (arrival, stored) {
            (Arrival::Unchanged, _) => Action::Unchanged,
            (Arrival::InPlace, Some(_))
                if stored_version(conn, remap, &page.connector_id, &p.inc)?
                    .is_some_and(|was| p.inc.only_touched(&was)) =>
            {
                Action::Touched
            }
            (Arrival::InPlace, Some(s)) => Action::InPlace {
                story_id: s.story_id,
            },
            (Arrival::Rekeyed, Some(s)) => {
                old_terms.extend(correlate::terms(&s.member));
                current_story.insert(p.member_id.clone(), s.story_id);
                rekey.push(p);
                Action::Rekey { new: false }
            }
            _ => {
                rekey.push(p);
                Action::Rekey { new: true }
            }
        });
    }
    let mut plans = Vec::new();
    let mut fresh = HashMap::new();
    if !rekey.is_empty() {
        let in_page: HashSet<&str> = rekey.iter().map(|p| p.member_id.as_str()).collect();
        let seed = rekey
            .iter()
            .map(|p| Member::of_incident(p.member_id.clone(), &p.inc))
            .collect();
        let members = closure(
            conn,
            &page.account_id,
            seed,
            old_terms,
            &in_page,
            &mut current_story,
        )?;
        // A page is one connector's, so one producer's; `rekey` is not empty here.
        let producer = rekey[0].inc.producer;
        plans = correlate::correlate(&page.account_id, producer, &members, &page.policy);
        let new: HashMap<&str, &Incident> = prepared
            .iter()
            .zip(&actions)
            .filter(|(_, a)| matches!(a, Action::Rekey { new: true }))
            .map(|(p, _)| (p.member_id.as_str(), &p.inc))
            .collect();
        fresh = plans
            .iter()
            .filter_map(|plan| {
                FreshStory::of(plan, |m| new.get(m).copied()).map(|f| (plan.id.clone(), f))
            })
            .collect();
    }
    Ok(PagePlan {
        actions,
        current_story,
        plans,
        fresh,
    })
}

/// What a commit worked with, handed back so that the caller frees it after the writer lock
/// is released: freeing a large batch's maps and plans is not work the lock must wait for.
pub(crate) struct Spent {
    _plans: Vec<correlate::StoryPlan>,
    _current_story: HashMap<String, String>,
    _actions: Vec<Action>,
    _touch: Touch,
    _fresh: HashMap<String, FreshStory>,
}

/// How many ingest commits have changed an account's incidents (see `account_epochs`).
pub(crate) fn account_epoch(conn: &Connection, account_id: &str) -> Result<i64> {
    let mut st = conn.prepare_cached("SELECT epoch FROM account_epochs WHERE account_id = ?1")?;
    Ok(st
        .query_row([account_id], |r| r.get(0))
        .optional()?
        .unwrap_or_default())
}

/// Commits a page. `ahead` is the page's plan if it was worked out beforehand, with the
/// account's epoch it was read at: it is used only if no commit of the account came in between
/// (checked here, inside the transaction); otherwise the plan is worked out again here.
pub(crate) fn commit_page(
    conn: &mut Connection,
    remap: &Remap,
    page: &IngestPage,
    prepared: &[Prepared],
    ahead: Option<(i64, PagePlan)>,
) -> Result<(IngestOutcome, Spent)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let owner: Option<(String, i64)> = tx
        .query_row(
            "SELECT account_id, generation FROM connectors WHERE id = ?1",
            [&page.connector_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    // Only the worker of the connector's current generation writes: one replaced (the
    // connector was saved again) or orphaned (deleted) while its page was on the way writes
    // nothing, so its successor's checkpoint and status stand.
    match owner {
        None => return Err(StoreError::LeaseLost),
        Some((account, _)) if account != page.account_id => return Err(StoreError::NotFound),
        Some((_, generation)) if generation != page.generation => {
            return Err(StoreError::LeaseLost)
        }
        Some(_) => {}
    }
    let epoch = account_epoch(&tx, &page.account_id)?;
    let PagePlan {
        actions,
        current_story,
        mut plans,
        mut fresh,
    } = match ahead {
        Some((read_at, plan)) if read_at == epoch => plan,
        _ => plan_page(&tx, remap, page, prepared)?,
    };
    tx.prepare_cached(
        "INSERT INTO account_epochs (account_id, epoch) VALUES (?1, ?2)
         ON CONFLICT (account_id) DO UPDATE SET epoch = excluded.epoch",
    )?
    .execute(params![page.account_id, epoch + 1])?;

    let mut outcome = IngestOutcome::default();
    let mut touch = Touch::default();
    let mut writes = Writes::prepare(&tx, remap)?;
    // The incidents this page writes: a re-delivered older version is not one of them, and must
    // not speak for its story.
    let mut written: Vec<&Prepared> = Vec::new();
    let mut rekey: Vec<(&Prepared, bool)> = Vec::new();
    for (p, action) in prepared.iter().zip(&actions) {
        match action {
            Action::Unchanged => outcome.incidents_unchanged += 1,
            Action::Touched => {
                outcome.incidents_unchanged += 1;
                tx.prepare_cached(
                    "UPDATE incidents SET updated_at = ?3 WHERE connector_id = ?1 AND external_id = ?2",
                )?
                .execute(params![page.connector_id, p.inc.external_id, us(p.inc.updated_at)])?;
            }
            Action::InPlace { story_id } => {
                outcome.incidents_updated += 1;
                written.push(p);
                touch.updated.insert(story_id.clone());
                touch.written_to(story_id, p);
                write_incident(&mut writes, page, p, story_id, false)?;
                event_for_incident(&mut writes, page, p, story_id, EventType::IncidentUpdated)?;
            }
            Action::Rekey { new } => {
                if *new {
                    outcome.incidents_new += 1;
                } else {
                    outcome.incidents_updated += 1;
                    if let Some(old) = current_story.get(&p.member_id) {
                        touch.updated.insert(old.clone());
                    }
                }
                written.push(p);
                rekey.push((p, *new));
            }
        }
    }

    if !rekey.is_empty() {
        let in_page: HashSet<&str> = rekey.iter().map(|(p, _)| p.member_id.as_str()).collect();
        let planned: HashMap<&str, &str> = plans
            .iter()
            .flat_map(|plan| {
                plan.members
                    .iter()
                    .map(move |m| (m.as_str(), plan.id.as_str()))
            })
            .collect();
        for (p, new) in &rekey {
            let story = planned
                .get(p.member_id.as_str())
                .copied()
                .unwrap_or_default();
            write_incident(&mut writes, page, p, story, *new)?;
            touch.written_to(story, p);
            if *new {
                touch
                    .new_incidents
                    .entry(story.to_owned())
                    .or_default()
                    .push(p.member_id.clone());
            } else {
                event_for_incident(&mut writes, page, p, story, EventType::IncidentUpdated)?;
            }
        }
        apply_plans(&tx, &plans, &current_story, &in_page, &mut touch)?;
        // The plans move to the stories' refresh: cloning them (every member id) cost the
        // writer more than the map they go into.
        touch.plans = std::mem::take(&mut plans)
            .into_iter()
            .map(|plan| (plan.id.clone(), plan))
            .collect();
    }

    refresh_stories(
        &tx,
        &mut writes,
        page,
        &written,
        &touch,
        &mut fresh,
        &mut outcome,
    )?;
    drop(writes);

    // A committed page is a successful poll: the connector is connected again.
    tx.execute(
        "UPDATE connectors SET checkpoint = ?1, threats = threats + ?2, polls = polls + ?5,
             last_success_at = ?4, status = 'connected', status_detail = ?6
         WHERE id = ?3",
        params![
            page.checkpoint,
            outcome.incidents_new,
            page.connector_id,
            us(page.now),
            page.polls.max(1),
            page.status_detail,
        ],
    )?;
    for event in &page.events {
        crate::events::insert(&tx, event)?;
    }
    tx.commit()?;
    Ok((
        outcome,
        Spent {
            _plans: plans,
            _current_story: current_story,
            _actions: actions,
            _touch: touch,
            _fresh: fresh,
        },
    ))
}

/// The stored version of a page's incident, as its producer's mapping reads it; `None` when it
/// no longer maps (it is then written again in full).
fn stored_version(
    conn: &Connection,
    remap: &Remap,
    connector_id: &str,
    inc: &Incident,
) -> Result<Option<Incident>> {
    let mut st = conn.prepare_cached(
        "SELECT b.normalised, b.raw FROM incidents i JOIN incident_bodies b ON b.seq = i.seq
         WHERE i.connector_id = ?1 AND i.external_id = ?2",
    )?;
    let bodies = st
        .query_row(params![connector_id, inc.external_id], |r| {
            Ok(super::body::unpack_bodies(r.get_ref(0)?, r.get_ref(1)?))
        })
        .optional()?;
    let Some(bodies) = bodies else {
        return Ok(None);
    };
    let (normalised, raw) = bodies?;
    Ok(super::body::stored_incident(
        remap,
        inc.producer,
        normalised.as_deref(),
        &raw,
    ))
}

fn load_stored(
    tx: &Connection,
    connector_id: &str,
    external_id: &str,
    id: &str,
) -> Result<Option<Stored>> {
    let mut st = tx.prepare_cached(
        "SELECT updated_at, story_id, created_at, agent, sha1, sha256, md5, storyline
         FROM incidents WHERE connector_id = ?1 AND external_id = ?2",
    )?;
    Ok(st
        .query_row(params![connector_id, external_id], |r| {
            Ok(Stored {
                updated_at: r.get(0)?,
                story_id: r.get(1)?,
                member: Member {
                    id: id.to_owned(),
                    created_at: super::ts(r.get(2)?),
                    agent: r.get(3)?,
                    sha1: r.get(4)?,
                    sha256: r.get(5)?,
                    md5: r.get(6)?,
                    storyline: r.get(7)?,
                },
            })
        })
        .optional()?)
}

/// The insert of an incident row, shared by the plain insert and the upsert.
macro_rules! insert_incident {
    () => {
        "INSERT INTO incidents (connector_id, external_id, account_id, story_id, created_at,
             updated_at, agent, sha1, sha256, md5, storyline, confidence_rank, false_positive,
             producer, unmitigated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    };
}

fn write_incident(
    writes: &mut Writes<'_>,
    page: &IngestPage,
    p: &Prepared,
    story_id: &str,
    new: bool,
) -> Result<()> {
    let inc = &p.inc;
    let values = params![
        page.connector_id,
        inc.external_id,
        page.account_id,
        story_id,
        us(inc.created_at),
        us(inc.updated_at),
        inc.device.agent_uuid,
        inc.file.sha1,
        inc.file.sha256,
        inc.file.md5,
        inc.storyline,
        // Kept per incident so that a story's aggregates are `max`, `min` and `sum` over its
        // rows; what they mean is the domain's (`Judgement::rank`, `is_false_positive`,
        // `is_unmitigated`).
        dossier_domain::vocabulary::Judgement::of(inc).rank(),
        dossier_domain::criticality::is_false_positive(inc),
        inc.producer.as_str(),
        dossier_domain::criticality::is_unmitigated(inc),
    ];
    // A threat seen for the first time is a plain insert (most of a backfill); a new version
    // of a known one updates its row in place and keeps its seq.
    let seq: i64 = if new {
        writes.insert_incident.insert(values)?
    } else {
        writes.upsert_incident.query_row(values, |r| r.get(0))?
    };
    writes
        .body
        .execute(params![seq, super::body::DERIVED, p.raw])?;
    Ok(())
}

/// The statements a page commit runs for each incident and each story, prepared once per
/// commit: taken from the statement cache for each row, every use hashed the statement's text
/// twice (to find it, and to put it back).
pub(crate) struct Writes<'c> {
    insert_incident: CachedStatement<'c>,
    upsert_incident: CachedStatement<'c>,
    body: CachedStatement<'c>,
    incident_event: CachedStatement<'c>,
    pub(crate) story_update: CachedStatement<'c>,
    pub(crate) story_upsert: CachedStatement<'c>,
    pub(crate) story_event: CachedStatement<'c>,
    /// Each producer's mapping, for stored incidents a story is refreshed from.
    pub(crate) remap: Remap,
}

impl<'c> Writes<'c> {
    fn prepare(conn: &'c Connection, remap: &Remap) -> Result<Self> {
        Ok(Self {
            remap: std::sync::Arc::clone(remap),
            insert_incident: conn.prepare_cached(insert_incident!())?,
            upsert_incident: conn.prepare_cached(concat!(
                insert_incident!(),
                " ON CONFLICT (connector_id, external_id) DO UPDATE SET
                     created_at = excluded.created_at, updated_at = excluded.updated_at,
                     agent = excluded.agent, sha1 = excluded.sha1, sha256 = excluded.sha256,
                     md5 = excluded.md5, storyline = excluded.storyline,
                     confidence_rank = excluded.confidence_rank,
                     false_positive = excluded.false_positive,
                     unmitigated = excluded.unmitigated, story_id = excluded.story_id
                 RETURNING seq"
            ))?,
            body: conn.prepare_cached(
                "INSERT OR REPLACE INTO incident_bodies (seq, normalised, raw) VALUES (?1, ?2, ?3)",
            )?,
            incident_event: conn.prepare_cached(
                "INSERT INTO events (account_id, type, at, connector_id, story_id, incident_id, message, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?,
            story_update: conn.prepare_cached(super::refresh::STORY_UPDATE)?,
            story_upsert: conn.prepare_cached(super::refresh::STORY_UPSERT)?,
            story_event: conn.prepare_cached(super::refresh::STORY_EVENT)?,
        })
    }
}

/// What an incident's event says, but for its verb, and its data: both known before the
/// writer lock is taken.
fn incident_event(inc: &Incident) -> Result<(String, String)> {
    /// The event's data (its keys in this order, as they always were).
    #[derive(serde::Serialize)]
    struct Data<'a> {
        agent_uuid: Option<&'a str>,
        confidence_level: Option<&'a str>,
        mitigation_status: Option<&'a str>,
        producer: &'a str,
        sha1: Option<&'a str>,
        threat_id: &'a str,
        threat_name: Option<&'a str>,
    }
    let name = inc.threat_name.as_deref().unwrap_or("unnamed threat");
    let device = inc.device.name.as_deref().unwrap_or("an unnamed device");
    let data = serde_json::to_string(&Data {
        agent_uuid: inc.device.agent_uuid.as_deref(),
        confidence_level: inc.confidence_level.as_deref(),
        mitigation_status: inc.mitigation_status.as_deref(),
        producer: inc.producer.as_str(),
        sha1: inc.file.sha1.as_deref(),
        threat_id: &inc.external_id,
        threat_name: inc.threat_name.as_deref(),
    })
    .map_err(|e| StoreError::Invalid(e.to_string()))?;
    Ok((format!("{name} on {device}"), data))
}

pub(crate) fn event_for_incident(
    writes: &mut Writes<'_>,
    page: &IngestPage,
    p: &Prepared,
    story_id: &str,
    kind: EventType,
) -> Result<()> {
    let verb = if kind == EventType::IncidentCreated {
        "detected"
    } else {
        "updated"
    };
    writes.incident_event.execute(params![
        page.account_id,
        kind.as_str(),
        us(page.now),
        page.connector_id,
        if story_id.is_empty() {
            None
        } else {
            Some(story_id)
        },
        p.inc.external_id,
        format!("{} {verb} {}", p.inc.producer.vendor(), p.event_subject),
        p.event_data,
    ])?;
    Ok(())
}

/// Loads every stored incident that shares a lookup term, transitively, with the members, so
/// that correlation sees the whole of each key it decides on.
fn closure(
    tx: &Connection,
    account_id: &str,
    seed: Vec<Member>,
    extra_terms: Vec<Term>,
    in_page: &HashSet<&str>,
    current_story: &mut HashMap<String, String>,
) -> Result<Vec<Member>> {
    let mut members: BTreeMap<String, Member> = BTreeMap::new();
    let mut frontier: Vec<Term> = extra_terms;
    for m in seed {
        frontier.extend(correlate::terms(&m));
        members.insert(m.id.clone(), m);
    }
    let mut visited: BTreeSet<Term> = BTreeSet::new();
    while let Some(term) = frontier.pop() {
        if !visited.insert(term.clone()) {
            continue;
        }
        let (sql, agent, value) = match &term {
            // What matches a term is the domain's rule (`Term`); each query is that rule.
            Term::Hash { agent, kind, hash } => (
                match kind {
                    HashKind::Sha1 => "SELECT connector_id, external_id, story_id, created_at, agent, sha1, sha256, md5, storyline FROM incidents WHERE account_id = ?1 AND agent = ?2 AND sha1 = ?3",
                    HashKind::Sha256 => "SELECT connector_id, external_id, story_id, created_at, agent, sha1, sha256, md5, storyline FROM incidents WHERE account_id = ?1 AND agent = ?2 AND sha256 = ?3",
                    HashKind::Md5 => "SELECT connector_id, external_id, story_id, created_at, agent, sha1, sha256, md5, storyline FROM incidents WHERE account_id = ?1 AND agent = ?2 AND md5 = ?3 AND sha1 IS NULL AND sha256 IS NULL",
                },
                agent,
                hash,
            ),
            Term::Storyline { agent, storyline } => (
                "SELECT connector_id, external_id, story_id, created_at, agent, sha1, sha256, md5, storyline FROM incidents WHERE account_id = ?1 AND agent = ?2 AND storyline = ?3 AND sha1 IS NULL AND sha256 IS NULL AND md5 IS NULL",
                agent,
                storyline,
            ),
        };
        let mut st = tx.prepare_cached(sql)?;
        let rows = st.query_map(params![account_id, agent, value], |r| {
            let connector: String = r.get(0)?;
            let external: String = r.get(1)?;
            Ok((
                r.get::<_, String>(2)?,
                Member {
                    id: member_id(&connector, &external),
                    created_at: super::ts(r.get(3)?),
                    agent: r.get(4)?,
                    sha1: r.get(5)?,
                    sha256: r.get(6)?,
                    md5: r.get(7)?,
                    storyline: r.get(8)?,
                },
            ))
        })?;
        for row in rows {
            let (story_id, m) = row?;
            if !in_page.contains(m.id.as_str()) {
                current_story.entry(m.id.clone()).or_insert(story_id);
            }
            if !members.contains_key(&m.id) {
                frontier.extend(correlate::terms(&m));
                members.insert(m.id.clone(), m);
            }
        }
    }
    Ok(members.into_values().collect())
}

/// Moves stored incidents to the stories correlation decided on (the page's own incidents were
/// written with theirs), and retires the stories that lost every incident: their analyst state
/// passes to their successor.
fn apply_plans(
    tx: &Transaction<'_>,
    plans: &[correlate::StoryPlan],
    current_story: &HashMap<String, String>,
    in_page: &HashSet<&str>,
    touch: &mut Touch,
) -> Result<()> {
    let mut moved = false;
    for plan in plans {
        for id in &plan.members {
            let old = current_story.get(id);
            if old.map(String::as_str) == Some(plan.id.as_str()) {
                continue;
            }
            if !in_page.contains(id.as_str()) {
                touch.received_stored.insert(plan.id.clone());
                let (connector, external) = split_member_id(id);
                let mut st = tx.prepare_cached(
                    "UPDATE incidents SET story_id = ?1 WHERE connector_id = ?2 AND external_id = ?3",
                )?;
                st.execute(params![plan.id, connector, external])?;
            }
            if let Some(old) = old {
                touch.lost.insert(old.clone());
                moved = true;
                touch.updated.insert(old.clone());
            }
            touch.updated.insert(plan.id.clone());
        }
    }
    if moved {
        // Windows were reshaped: a window whose own incidents did not move may still follow a
        // different story now.
        let mut st = tx.prepare_cached(
            "UPDATE stories SET previous_id = ?2 WHERE id = ?1 AND previous_id IS NOT ?2",
        )?;
        for plan in plans {
            st.execute(params![plan.id, plan.previous])?;
        }
    }
    // Which stories lost every incident, and to whom, is the domain's rule.
    let before = current_story.iter().map(|(m, s)| (m.as_str(), s.as_str()));
    for correlate::Retirement { retired, successor } in correlate::retirements(before, plans) {
        let remaining: i64 = tx.query_row(
            "SELECT count(*) FROM incidents WHERE story_id = ?1",
            [&retired],
            |r| r.get(0),
        )?;
        if remaining > 0 {
            // The lookup terms reach every incident of a touched story, so this cannot
            // happen; were it to, the story is kept rather than its incidents orphaned.
            tracing::error!(story_id = %retired, remaining, "a story to retire still has incidents; kept");
            continue;
        }
        touch
            .vacated
            .extend(retire_story(tx, &retired, &successor)?);
        touch.updated.remove(&retired);
        touch.retired.insert(retired, successor);
    }
    Ok(())
}

/// Replaces a story by its successor: the analyst's work (status, verdict, severity, comments,
/// timeline) moves over, and the old id keeps resolving through an alias. Whose status and
/// verdict the successor keeps is the domain's rule ([`Triage::inherit`]). Returns the file hash
/// the old story was keyed on, if it still existed.
fn retire_story(tx: &Transaction<'_>, old: &str, successor: &str) -> Result<Option<String>> {
    let retired = triage(tx, old)?;
    tx.execute(
        "INSERT INTO stories (id, account_id, producer, engine_type, vendor, connector_id, story_key,
             previous_id, status, verdict, severity, criticality, criticality_detail, created_at,
             updated_at, first_signal_at, last_signal_at, incident_count, closed_at,
             close_reason, assignee)
         SELECT ?2, account_id, producer, engine_type, vendor, connector_id, story_key, previous_id,
             status, verdict, severity, criticality, criticality_detail, created_at, updated_at,
             first_signal_at, last_signal_at, 0, closed_at, close_reason, assignee
         FROM stories WHERE id = ?1
         ON CONFLICT (id) DO UPDATE SET created_at = min(stories.created_at, excluded.created_at)",
        params![old, successor],
    )?;
    if let (Some(retired), Some(own)) = (retired, triage(tx, successor)?) {
        let t = own.clone().inherit(retired);
        if t != own {
            tx.execute(
                "UPDATE stories SET status = ?2, verdict = ?3, severity = ?4, closed_at = ?5,
                     close_reason = ?6, assignee = ?7
                 WHERE id = ?1",
                params![
                    successor,
                    t.status.as_str(),
                    t.verdict.map_or("", Verdict::as_str),
                    t.severity.map_or("", Severity::as_str),
                    t.closed_at.map(us),
                    t.close_reason,
                    t.assignee,
                ],
            )?;
        }
    }
    tx.execute(
        "UPDATE timeline SET story_id = ?2 WHERE story_id = ?1",
        params![old, successor],
    )?;
    tx.execute(
        "UPDATE comments SET story_id = ?2 WHERE story_id = ?1",
        params![old, successor],
    )?;
    tx.execute(
        "UPDATE story_aliases SET new_id = ?2 WHERE new_id = ?1",
        params![old, successor],
    )?;
    tx.execute(
        "INSERT OR REPLACE INTO story_aliases (old_id, new_id) VALUES (?1, ?2)",
        params![old, successor],
    )?;
    Ok(tx
        .query_row(
            "DELETE FROM stories WHERE id = ?1 RETURNING file_hash",
            [old],
            |r| r.get(0),
        )
        .optional()?)
}

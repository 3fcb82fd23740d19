//! Committing one page of threats: incidents, story changes, events and the checkpoint, in
//! one transaction, so that a crash at any instant either re-reads the page or has applied it.
//!
//! Nodes commit side by side, so a commit first takes its account's lock
//! ([`crate::lock_account`]) and only then reads what it correlates against: every other commit
//! of the account has then either ended, and is seen, or waits for this one. The page is
//! planned inside that transaction: a plan read beforehand could be overtaken by a commit of
//! another node.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use dossier_domain::correlate::{self, Arrival, HashKind, Member, Term};
use dossier_domain::event::EventType;
use dossier_domain::story::{Severity, Status, Triage, Verdict};
use dossier_domain::Incident;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, Row, Statement, Transaction};

use super::refresh::{refresh_stories, FreshStory, Touch};
use super::us;
use dossier_store::{IngestOutcome, IngestPage, Remap, Result, StoreError};

/// A parameter of a statement.
pub(crate) type Param<'a> = &'a (dyn ToSql + Sync);

/// A commit's transaction, with the statements it prepared: a statement run for each threat or
/// each story is parsed and planned by the server once per commit, not once per row.
pub(crate) struct Tx<'c> {
    tx: Transaction<'c>,
    statements: HashMap<&'static str, Statement>,
}

impl<'c> Tx<'c> {
    fn begin(conn: &'c mut Client) -> Result<Self> {
        Ok(Self {
            tx: conn.transaction()?,
            statements: HashMap::new(),
        })
    }

    fn commit(self) -> Result<()> {
        self.tx.commit()?;
        Ok(())
    }

    /// The statement of `sql`, prepared on first use in this transaction.
    fn statement(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.tx.prepare(sql)?;
        self.statements.insert(sql, st.clone());
        Ok(st)
    }

    pub(crate) fn execute(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<u64> {
        let st = self.statement(sql)?;
        Ok(self.tx.execute(&st, params)?)
    }

    pub(crate) fn query(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        let st = self.statement(sql)?;
        Ok(self.tx.query(&st, params)?)
    }

    pub(crate) fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[Param<'_>],
    ) -> Result<Option<Row>> {
        let st = self.statement(sql)?;
        Ok(self.tx.query_opt(&st, params)?)
    }

    pub(crate) fn query_one(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<Row> {
        let st = self.statement(sql)?;
        Ok(self.tx.query_one(&st, params)?)
    }

    /// The transaction itself, for the helpers that take any client.
    pub(crate) fn client(&mut self) -> &mut Transaction<'c> {
        &mut self.tx
    }
}

/// A stored story's triage, if the story exists.
pub(crate) fn triage(conn: &mut impl GenericClient, id: &str) -> Result<Option<Triage>> {
    let row = conn.query_opt(
        "SELECT status, verdict, severity, closed_at, close_reason, assignee
         FROM stories WHERE id = $1",
        &[&id],
    )?;
    Ok(row.map(|r| {
        let status: String = r.get(0);
        let verdict: String = r.get(1);
        let severity: String = r.get(2);
        Triage {
            status: Status::parse(&status).unwrap_or(Status::Open),
            verdict: Verdict::parse(&verdict),
            severity: Severity::parse(&severity),
            closed_at: r.get::<_, Option<i64>>(3).map(super::ts),
            close_reason: r.get(4),
            assignee: r.get(5),
        }
    }))
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

/// One incident of a page, made ready for writing before the transaction begins: the raw JSON
/// moved out, the event's text and data serialised. The normalised form is not stored: it is
/// the producer's mapping of the raw JSON, and is mapped again when it is read.
pub(crate) struct Prepared {
    pub inc: Incident,
    /// The producer's raw JSON, stored as it came (the database compresses it).
    pub raw: String,
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
    let mut prepared = Vec::with_capacity(keep.len());
    for i in keep {
        let Some(mut inc) = slots.get_mut(i).and_then(Option::take) else {
            continue;
        };
        let raw = std::mem::take(&mut inc.raw);
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

/// Leaves out of the page the records that another connector reaching the same tenant
/// (`page.shared_with`) already holds: an incident is one record of one tenant, kept by the
/// connector that read it first. Returns the records kept, and how many were left out. Run
/// under the account's lock, where no other commit can take a record in between; the page
/// itself is left as it is, since a commit the database could not order is run again.
pub(crate) fn drop_held<'p>(
    tx: &mut Tx<'_>,
    page: &IngestPage,
    prepared: &'p [Prepared],
) -> Result<(Vec<&'p Prepared>, u64)> {
    if page.shared_with.is_empty() || prepared.is_empty() {
        return Ok((prepared.iter().collect(), 0));
    }
    let ids: Vec<&str> = prepared
        .iter()
        .map(|p| p.inc.external_id.as_str())
        .collect();
    let held: HashSet<String> = tx
        .query(
            "SELECT external_id FROM incidents
             WHERE account_id = $1 AND connector_id = ANY($2) AND external_id = ANY($3)",
            &[&page.account_id, &page.shared_with, &ids],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let kept: Vec<&Prepared> = prepared
        .iter()
        .filter(|p| !held.contains(&p.inc.external_id))
        .collect();
    let left_out = (prepared.len() - kept.len()) as u64;
    Ok((kept, left_out))
}

/// What a page does to the incidents already stored, and the stories correlation decides on:
/// everything about a commit that is read rather than written.
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

/// Reads what the page's incidents were and correlates those that need it, in the commit's
/// own transaction, under the account's lock.
fn plan_page(
    tx: &mut Tx<'_>,
    remap: &Remap,
    page: &IngestPage,
    prepared: &[&Prepared],
) -> Result<PagePlan> {
    let mut actions = Vec::with_capacity(prepared.len());
    let mut current_story: HashMap<String, String> = HashMap::new();
    // The lookup terms of incidents whose key changed, as stored: their old key's stories must
    // be correlated again too.
    let mut old_terms: Vec<Term> = Vec::new();
    let mut rekey: Vec<&Prepared> = Vec::new();
    let mut stored_all = load_stored(tx, &page.connector_id, prepared)?;
    for &p in prepared {
        let stored = stored_all.remove(&p.inc.external_id);
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
                if stored_version(tx, remap, &page.connector_id, &p.inc)?
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
            tx,
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

/// How many ingest commits have changed an account's incidents (see `account_epochs`).
pub(crate) fn account_epoch(tx: &mut Tx<'_>, account_id: &str) -> Result<i64> {
    Ok(tx
        .query_opt(
            "SELECT epoch FROM account_epochs WHERE account_id = $1",
            &[&account_id],
        )?
        .map(|r| r.get(0))
        .unwrap_or_default())
}

/// Commits a page in a transaction of its own. The database may refuse to order it against a
/// concurrent transaction, and the caller then runs it again from the start: so nothing of
/// `prepared` is consumed.
pub(crate) fn commit(
    conn: &mut Client,
    remap: &Remap,
    page: &IngestPage,
    prepared: &[Prepared],
) -> Result<IngestOutcome> {
    let mut tx = Tx::begin(conn)?;
    crate::lock_account(tx.client(), &page.account_id)?;
    // The connector's row is locked until the commit: a save of the connector that gives it a
    // new generation waits for this page, or this page sees the new generation.
    let owner = tx.query_opt(
        "SELECT account_id, generation FROM connectors WHERE id = $1 FOR UPDATE",
        &[&page.connector_id],
    )?;
    let owner: Option<(String, i64)> = owner.map(|r| (r.get(0), r.get(1)));
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
    let (prepared, held) = drop_held(&mut tx, page, prepared)?;
    let epoch = account_epoch(&mut tx, &page.account_id)?;
    let PagePlan {
        actions,
        current_story,
        mut plans,
        mut fresh,
    } = plan_page(&mut tx, remap, page, &prepared)?;
    tx.execute(
        "INSERT INTO account_epochs (account_id, epoch) VALUES ($1, $2)
         ON CONFLICT (account_id) DO UPDATE SET epoch = excluded.epoch",
        &[&page.account_id, &(epoch + 1)],
    )?;

    let mut outcome = IngestOutcome {
        incidents_held_elsewhere: held,
        ..IngestOutcome::default()
    };
    let mut touch = Touch::default();
    let mut writes = Writes::new(remap);
    // The incidents this page writes: a re-delivered older version is not one of them, and must
    // not speak for its story.
    let mut written: Vec<&Prepared> = Vec::new();
    let mut rekey: Vec<(&Prepared, bool)> = Vec::new();
    for (&p, action) in prepared.iter().zip(&actions) {
        match action {
            Action::Unchanged => outcome.incidents_unchanged += 1,
            Action::Touched => {
                outcome.incidents_unchanged += 1;
                tx.execute(
                    "UPDATE incidents SET updated_at = $3
                     WHERE connector_id = $1 AND external_id = $2",
                    &[
                        &page.connector_id,
                        &p.inc.external_id,
                        &us(p.inc.updated_at),
                    ],
                )?;
            }
            Action::InPlace { story_id } => {
                outcome.incidents_updated += 1;
                written.push(p);
                touch.updated.insert(story_id.clone());
                touch.written_to(story_id, p);
                write_incident(&mut tx, &mut writes, page, p, story_id, false)?;
                event_for_incident(&mut writes, p, story_id, EventType::IncidentUpdated);
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
            write_incident(&mut tx, &mut writes, page, p, story, *new)?;
            touch.written_to(story, p);
            if *new {
                touch
                    .new_incidents
                    .entry(story.to_owned())
                    .or_default()
                    .push(p.member_id.clone());
            } else {
                event_for_incident(&mut writes, p, story, EventType::IncidentUpdated);
            }
        }
        insert_new_incidents(&mut tx, &mut writes, page)?;
        apply_plans(&mut tx, &plans, &current_story, &in_page, &mut touch)?;
        // The plans move to the stories' refresh: cloning them (every member id) cost more
        // than the map they go into.
        touch.plans = std::mem::take(&mut plans)
            .into_iter()
            .map(|plan| (plan.id.clone(), plan))
            .collect();
    }

    refresh_stories(
        &mut tx,
        &mut writes,
        page,
        &written,
        &touch,
        &mut fresh,
        &mut outcome,
    )?;
    writes.flush_events(&mut tx, page)?;

    // A committed page is a successful poll: the connector is connected again.
    tx.execute(
        "UPDATE connectors SET checkpoint = $1, threats = threats + $2, polls = polls + $5,
             last_success_at = $4, status = 'connected', status_detail = $6
         WHERE id = $3",
        &[
            &page.checkpoint,
            &i64::try_from(outcome.incidents_new).unwrap_or(i64::MAX),
            &page.connector_id,
            &us(page.now),
            &i64::try_from(page.polls.max(1)).unwrap_or(i64::MAX),
            &page.status_detail,
        ],
    )?;
    for event in &page.events {
        crate::events::insert(tx.client(), event)?;
    }
    tx.commit()?;
    Ok(outcome)
}

/// The stored version of a page's incident, as its producer's mapping reads it; `None` when it
/// no longer maps (it is then written again in full).
fn stored_version(
    tx: &mut Tx<'_>,
    remap: &Remap,
    connector_id: &str,
    inc: &Incident,
) -> Result<Option<Incident>> {
    let raw = tx.query_opt(
        "SELECT b.raw FROM incidents i JOIN incident_bodies b ON b.seq = i.seq
         WHERE i.connector_id = $1 AND i.external_id = $2",
        &[&connector_id, &inc.external_id],
    )?;
    Ok(raw.and_then(|r| remap(inc.producer, r.get(0))))
}

/// The stored rows of the page's incidents, by external id: one query for the whole page.
fn load_stored(
    tx: &mut Tx<'_>,
    connector_id: &str,
    prepared: &[&Prepared],
) -> Result<HashMap<String, Stored>> {
    if prepared.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<&str> = prepared
        .iter()
        .map(|p| p.inc.external_id.as_str())
        .collect();
    let rows = tx.query(
        "SELECT external_id, updated_at, story_id, created_at, agent, sha1, sha256, md5, storyline
         FROM incidents WHERE connector_id = $1 AND external_id = ANY($2)",
        &[&connector_id, &ids],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let external: String = r.get(0);
            let stored = Stored {
                updated_at: r.get(1),
                story_id: r.get(2),
                member: Member {
                    id: member_id(connector_id, &external),
                    created_at: super::ts(r.get(3)),
                    agent: r.get(4),
                    sha1: r.get(5),
                    sha256: r.get(6),
                    md5: r.get(7),
                    storyline: r.get(8),
                },
            };
            (external, stored)
        })
        .collect())
}

/// A new version of a known threat: its row is updated in place and keeps its seq, and its
/// body is replaced, in one statement.
const UPSERT_INCIDENT: &str = "WITH i AS (
         INSERT INTO incidents (connector_id, external_id, account_id, story_id, created_at,
             updated_at, agent, sha1, sha256, md5, storyline, confidence_rank, false_positive,
             producer, unmitigated)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (connector_id, external_id) DO UPDATE SET
             created_at = excluded.created_at, updated_at = excluded.updated_at,
             agent = excluded.agent, sha1 = excluded.sha1, sha256 = excluded.sha256,
             md5 = excluded.md5, storyline = excluded.storyline,
             confidence_rank = excluded.confidence_rank,
             false_positive = excluded.false_positive,
             unmitigated = excluded.unmitigated, story_id = excluded.story_id
         RETURNING seq)
     INSERT INTO incident_bodies (seq, raw) SELECT seq, $16 FROM i
     ON CONFLICT (seq) DO UPDATE SET raw = excluded.raw";

/// Threats seen for the first time (most of a backfill): every row and body of the page in one
/// statement. A page is one connector's and its threats are deduped, so the external id finds
/// each row's body.
const INSERT_INCIDENTS: &str = "WITH i AS (
         INSERT INTO incidents (connector_id, external_id, account_id, story_id, created_at,
             updated_at, agent, sha1, sha256, md5, storyline, confidence_rank, false_positive,
             producer, unmitigated)
         SELECT $1, x.external_id, $2, x.story_id, x.created_at, x.updated_at, x.agent, x.sha1,
             x.sha256, x.md5, x.storyline, x.confidence_rank, x.false_positive, x.producer,
             x.unmitigated
         FROM UNNEST($3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[],
             $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[], $13::bigint[],
             $14::text[], $15::bigint[])
             AS x(external_id, story_id, created_at, updated_at, agent, sha1, sha256, md5,
                  storyline, confidence_rank, false_positive, producer, unmitigated)
         RETURNING seq, external_id)
     INSERT INTO incident_bodies (seq, raw)
     SELECT i.seq, b.raw FROM i
         JOIN UNNEST($3::text[], $16::text[]) AS b(external_id, raw)
             ON b.external_id = i.external_id";

/// The page's new incidents, column by column as the bulk insert takes them (but the
/// connector and the account, which are the page's), with their bodies.
#[derive(Default)]
pub(crate) struct IncidentRows<'a> {
    external_id: Vec<&'a str>,
    story_id: Vec<String>,
    created_at: Vec<i64>,
    updated_at: Vec<i64>,
    agent: Vec<Option<&'a str>>,
    sha1: Vec<Option<&'a str>>,
    sha256: Vec<Option<&'a str>>,
    md5: Vec<Option<&'a str>>,
    storyline: Vec<Option<&'a str>>,
    confidence_rank: Vec<i64>,
    false_positive: Vec<i64>,
    producer: Vec<&'a str>,
    unmitigated: Vec<i64>,
    raw: Vec<&'a str>,
}

fn write_incident<'a>(
    tx: &mut Tx<'_>,
    writes: &mut Writes<'a>,
    page: &IngestPage,
    p: &'a Prepared,
    story_id: &str,
    new: bool,
) -> Result<()> {
    let inc = &p.inc;
    // Kept per incident so that a story's aggregates are `max`, `min` and `sum` over its rows;
    // what they mean is the domain's (`Judgement::rank`, `is_false_positive`,
    // `is_unmitigated`).
    let rank = i64::from(dossier_domain::vocabulary::Judgement::of(inc).rank());
    let false_positive = i64::from(dossier_domain::criticality::is_false_positive(inc));
    let unmitigated = i64::from(dossier_domain::criticality::is_unmitigated(inc));
    // A threat seen for the first time is a plain insert, written with the page's other new
    // ones; a new version of a known one updates its row in place and keeps its seq.
    if new {
        let r = &mut writes.new_incidents;
        r.external_id.push(&inc.external_id);
        r.story_id.push(story_id.to_owned());
        r.created_at.push(us(inc.created_at));
        r.updated_at.push(us(inc.updated_at));
        r.agent.push(inc.device.agent_uuid.as_deref());
        r.sha1.push(inc.file.sha1.as_deref());
        r.sha256.push(inc.file.sha256.as_deref());
        r.md5.push(inc.file.md5.as_deref());
        r.storyline.push(inc.storyline.as_deref());
        r.confidence_rank.push(rank);
        r.false_positive.push(false_positive);
        r.producer.push(inc.producer.as_str());
        r.unmitigated.push(unmitigated);
        r.raw.push(&p.raw);
        return Ok(());
    }
    tx.execute(
        UPSERT_INCIDENT,
        &[
            &page.connector_id,
            &inc.external_id,
            &page.account_id,
            &story_id,
            &us(inc.created_at),
            &us(inc.updated_at),
            &inc.device.agent_uuid,
            &inc.file.sha1,
            &inc.file.sha256,
            &inc.file.md5,
            &inc.storyline,
            &rank,
            &false_positive,
            &inc.producer.as_str(),
            &unmitigated,
            &p.raw,
        ],
    )?;
    Ok(())
}

/// Writes the page's new incidents, gathered by [`write_incident`]: before the stories are
/// refreshed, which read them.
fn insert_new_incidents(tx: &mut Tx<'_>, writes: &mut Writes<'_>, page: &IngestPage) -> Result<()> {
    let r = std::mem::take(&mut writes.new_incidents);
    if r.external_id.is_empty() {
        return Ok(());
    }
    tx.execute(
        INSERT_INCIDENTS,
        &[
            &page.connector_id,
            &page.account_id,
            &r.external_id,
            &r.story_id,
            &r.created_at,
            &r.updated_at,
            &r.agent,
            &r.sha1,
            &r.sha256,
            &r.md5,
            &r.storyline,
            &r.confidence_rank,
            &r.false_positive,
            &r.producer,
            &r.unmitigated,
            &r.raw,
        ],
    )?;
    Ok(())
}

/// One event a page commit records for an incident or a story; its account, connector and time
/// are the page's.
struct PageEvent {
    kind: &'static str,
    story_id: Option<String>,
    incident_id: Option<String>,
    message: String,
    data: String,
}

/// What a page commit gathers to write in bulk: its new incidents, and the events of its
/// incidents and stories, in the order they happened.
pub(crate) struct Writes<'a> {
    new_incidents: IncidentRows<'a>,
    events: Vec<PageEvent>,
    /// Each producer's mapping, for stored incidents a story is refreshed from.
    pub(crate) remap: Remap,
}

impl Writes<'_> {
    fn new(remap: &Remap) -> Self {
        Self {
            new_incidents: IncidentRows::default(),
            events: Vec::new(),
            remap: std::sync::Arc::clone(remap),
        }
    }

    /// Records a story's created or updated event.
    pub(crate) fn story_event(
        &mut self,
        kind: EventType,
        story_id: &str,
        message: String,
        data: String,
    ) {
        self.events.push(PageEvent {
            kind: kind.as_str(),
            story_id: Some(story_id.to_owned()),
            incident_id: None,
            message,
            data,
        });
    }

    /// Writes the gathered events in one statement, in the order they were recorded.
    fn flush_events(&mut self, tx: &mut Tx<'_>, page: &IngestPage) -> Result<()> {
        let events = std::mem::take(&mut self.events);
        if events.is_empty() {
            return Ok(());
        }
        let kinds: Vec<&str> = events.iter().map(|e| e.kind).collect();
        let stories: Vec<Option<&str>> = events.iter().map(|e| e.story_id.as_deref()).collect();
        let incidents: Vec<Option<&str>> =
            events.iter().map(|e| e.incident_id.as_deref()).collect();
        let messages: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
        let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
        tx.execute(
            "INSERT INTO events (account_id, type, at, connector_id, story_id, incident_id,
                 message, data)
             SELECT $1, x.type, $2, $3, x.story_id, x.incident_id, x.message, x.data
             FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
                 WITH ORDINALITY AS x(type, story_id, incident_id, message, data, n)
             ORDER BY x.n",
            &[
                &page.account_id,
                &us(page.now),
                &page.connector_id,
                &kinds,
                &stories,
                &incidents,
                &messages,
                &data,
            ],
        )?;
        Ok(())
    }
}

/// What an incident's event says, but for its verb, and its data: both known before the
/// transaction begins.
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

/// Records an incident's created or updated event, in the story it is now in.
pub(crate) fn event_for_incident(
    writes: &mut Writes<'_>,
    p: &Prepared,
    story_id: &str,
    kind: EventType,
) {
    let verb = if kind == EventType::IncidentCreated {
        "detected"
    } else {
        "updated"
    };
    writes.events.push(PageEvent {
        kind: kind.as_str(),
        story_id: (!story_id.is_empty()).then(|| story_id.to_owned()),
        incident_id: Some(p.inc.external_id.clone()),
        message: format!("{} {verb} {}", p.inc.producer.vendor(), p.event_subject),
        data: p.event_data.clone(),
    });
}

/// Loads every stored incident that shares a lookup term, transitively, with the members, so
/// that correlation sees the whole of each key it decides on.
fn closure(
    tx: &mut Tx<'_>,
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
                    HashKind::Sha1 => "SELECT connector_id, external_id, story_id, created_at, agent, sha1, sha256, md5, storyline FROM incidents WHERE account_id = $1 AND agent = $2 AND sha1 = $3",
                    HashKind::Sha256 => "SELECT connector_id, external_id, story_id, created_at, agent, sha1, sha256, md5, storyline FROM incidents WHERE account_id = $1 AND agent = $2 AND sha256 = $3",
                    HashKind::Md5 => "SELECT connector_id, external_id, story_id, created_at, agent, sha1, sha256, md5, storyline FROM incidents WHERE account_id = $1 AND agent = $2 AND md5 = $3 AND sha1 IS NULL AND sha256 IS NULL",
                },
                agent,
                hash,
            ),
            Term::Storyline { agent, storyline } => (
                "SELECT connector_id, external_id, story_id, created_at, agent, sha1, sha256, md5, storyline FROM incidents WHERE account_id = $1 AND agent = $2 AND storyline = $3 AND sha1 IS NULL AND sha256 IS NULL AND md5 IS NULL",
                agent,
                storyline,
            ),
        };
        for r in tx.query(sql, &[&account_id, agent, value])? {
            let connector: String = r.get(0);
            let external: String = r.get(1);
            let story_id: String = r.get(2);
            let m = Member {
                id: member_id(&connector, &external),
                created_at: super::ts(r.get(3)),
                agent: r.get(4),
                sha1: r.get(5),
                sha256: r.get(6),
                md5: r.get(7),
                storyline: r.get(8),
            };
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
    tx: &mut Tx<'_>,
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
                tx.execute(
                    "UPDATE incidents SET story_id = $1 WHERE connector_id = $2 AND external_id = $3",
                    &[&plan.id, &connector, &external],
                )?;
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
        for plan in plans {
            tx.execute(
                "UPDATE stories SET previous_id = $2
                 WHERE id = $1 AND previous_id IS DISTINCT FROM $2",
                &[&plan.id, &plan.previous],
            )?;
        }
    }
    // Which stories lost every incident, and to whom, is the domain's rule.
    let before = current_story.iter().map(|(m, s)| (m.as_str(), s.as_str()));
    for correlate::Retirement { retired, successor } in correlate::retirements(before, plans) {
        let remaining: i64 = tx
            .query_one(
                "SELECT count(*) FROM incidents WHERE story_id = $1",
                &[&retired],
            )?
            .get(0);
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
fn retire_story(tx: &mut Tx<'_>, old: &str, successor: &str) -> Result<Option<String>> {
    let retired = triage(tx.client(), old)?;
    tx.execute(
        "INSERT INTO stories (id, account_id, producer, engine_type, vendor, connector_id, story_key,
             previous_id, status, verdict, severity, criticality, criticality_detail, created_at,
             updated_at, first_signal_at, last_signal_at, incident_count, closed_at,
             close_reason, assignee)
         SELECT $2, account_id, producer, engine_type, vendor, connector_id, story_key, previous_id,
             status, verdict, severity, criticality, criticality_detail, created_at, updated_at,
             first_signal_at, last_signal_at, 0, closed_at, close_reason, assignee
         FROM stories WHERE id = $1
         ON CONFLICT (id) DO UPDATE
             SET created_at = LEAST(stories.created_at, excluded.created_at)",
        &[&old, &successor],
    )?;
    if let (Some(retired), Some(own)) = (retired, triage(tx.client(), successor)?) {
        let t = own.clone().inherit(retired);
        if t != own {
            tx.execute(
                "UPDATE stories SET status = $2, verdict = $3, severity = $4, closed_at = $5,
                     close_reason = $6, assignee = $7
                 WHERE id = $1",
                &[
                    &successor,
                    &t.status.as_str(),
                    &t.verdict.map_or("", Verdict::as_str),
                    &t.severity.map_or("", Severity::as_str),
                    &t.closed_at.map(us),
                    &t.close_reason,
                    &t.assignee,
                ],
            )?;
        }
    }
    tx.execute(
        "UPDATE timeline SET story_id = $2 WHERE story_id = $1",
        &[&old, &successor],
    )?;
    tx.execute(
        "UPDATE comments SET story_id = $2 WHERE story_id = $1",
        &[&old, &successor],
    )?;
    tx.execute(
        "UPDATE story_aliases SET new_id = $2 WHERE new_id = $1",
        &[&old, &successor],
    )?;
    tx.execute(
        "INSERT INTO story_aliases (old_id, new_id) VALUES ($1, $2)
         ON CONFLICT (old_id) DO UPDATE SET new_id = excluded.new_id",
        &[&old, &successor],
    )?;
    Ok(tx
        .query_opt(
            "DELETE FROM stories WHERE id = $1 RETURNING file_hash",
            &[&old],
        )?
        .map(|r| r.get(0)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Instant;

    use super::{INSERT_INCIDENTS, UPSERT_INCIDENT};

    /// The figures behind the bulk insert: new incidents and their bodies written one
    /// statement per threat (the simple way) against one statement per page of 1,000, over
    /// the same 20,000 threats with 4 KB bodies, each way in a fresh schema. Prints
    /// `bulk_*` lines; run with `--ignored --nocapture`.
    #[test]
    #[ignore = "a benchmark: prints figures, asserts nothing of speed"]
    fn bulk_insert_figures() {
        const N: usize = 20_000;
        const PAGE: usize = 1_000;
        let base = std::env::var("DOSSIER_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let body = format!("{{\"threatInfo\":\"{}\"}}", "x".repeat(4_000));
        let ids: Vec<String> = (0..N).map(|i| format!("threat-{i:08}")).collect();
        let stories: Vec<String> = (0..N).map(|i| format!("story-{:06}", i % 5_000)).collect();
        let fresh = |c: &mut postgres::Client| {
            let name = format!("t_bulk_{:08x}", rand::random::<u32>());
            c.batch_execute(&format!(
                "CREATE SCHEMA {name}; SET search_path = {name};
                 {}",
                include_str!("../migrations/postgres/0001_init.sql")
            ))
            .unwrap();
            name
        };
        let mut c = postgres::Client::connect(&base, postgres::NoTls).unwrap();
        for round in 0..2 {
            let schema = fresh(&mut c);
            let started = Instant::now();
            let mut tx = c.transaction().unwrap();
            let st = tx.prepare(UPSERT_INCIDENT).unwrap();
            for (id, story) in ids.iter().zip(&stories) {
                tx.execute(
                    &st,
                    &[
                        &"c1",
                        id,
                        &"a1",
                        story,
                        &1_i64,
                        &1_i64,
                        &Some("ag"),
                        &Some("h1"),
                        &None::<&str>,
                        &None::<&str>,
                        &None::<&str>,
                        &50_i64,
                        &0_i64,
                        &"sentinelone",
                        &1_i64,
                        &body,
                    ],
                )
                .unwrap();
            }
            tx.commit().unwrap();
            let simple = N as f64 / started.elapsed().as_secs_f64();
            c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .unwrap();

            let schema = fresh(&mut c);
            let started = Instant::now();
            let mut tx = c.transaction().unwrap();
            let st = tx.prepare(INSERT_INCIDENTS).unwrap();
            for (ids, stories) in ids.chunks(PAGE).zip(stories.chunks(PAGE)) {
                let n = ids.len();
                let at = vec![1_i64; n];
                let some = |v: &'static str| vec![Some(v); n];
                let none = vec![None::<&str>; n];
                tx.execute(
                    &st,
                    &[
                        &"c1",
                        &"a1",
                        &ids,
                        &stories,
                        &at,
                        &at,
                        &some("ag"),
                        &some("h1"),
                        &none,
                        &none,
                        &none,
                        &vec![50_i64; n],
                        &vec![0_i64; n],
                        &vec!["sentinelone"; n],
                        &vec![1_i64; n],
                        &vec![body.as_str(); n],
                    ],
                )
                .unwrap();
            }
            tx.commit().unwrap();
            let bulk = N as f64 / started.elapsed().as_secs_f64();
            c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .unwrap();
            println!("bulk_round={round} simple_rows_per_s={simple:.0} unnest_rows_per_s={bulk:.0} unnest_vs_simple={:.2}", bulk / simple);
        }
    }
}

//! Reading stories: the list with its filters, a story with its evidence, and group counts.
//! The analyst's changes to them are in `triage.rs`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use dossier_domain::criticality::Criticality;
use dossier_domain::next_steps::{next_steps, NextStepFacts};
use dossier_domain::story::{Severity, Status, Verdict};
use dossier_domain::summary::{summary, SummaryFacts};
use dossier_domain::{Incident, MitreTechnique, Producer};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use serde_json::value::RawValue;

use super::body;
use super::{nonempty, opt_ts, ts, us};
use dossier_store::cursor::{self, Side, SortValue};
use dossier_store::{
    AssigneeFilter, Comment, DeviceView, FileView, GroupCount, IncidentPage, IncidentView,
    RelatedStory, Remap, Result, StoreError, Story, StoryDetail, StoryGroup, StoryPage, StoryQuery,
    StorySortField, TimelineEntry, STORY_INCIDENTS_FIRST_PAGE,
};

const COLUMNS: &str = "id, producer, engine_type, vendor, indication, status, verdict, severity,
    criticality, created_at, updated_at, first_signal_at, last_signal_at, incident_count,
    agent_uuid, device_name, os, sha1, sha256, md5, file_name, file_path, mitigation,
    connector_id, account_id, assignee";

fn story_row(r: &Row<'_>) -> rusqlite::Result<Story> {
    let status: String = r.get(5)?;
    let verdict: String = r.get(6)?;
    let severity: String = r.get(7)?;
    Ok(Story {
        id: r.get(0)?,
        producer: r.get(1)?,
        engine_type: r.get(2)?,
        vendor: r.get(3)?,
        indication: nonempty(r.get(4)?),
        status: Status::parse(&status).unwrap_or(Status::Open),
        verdict: Verdict::parse(&verdict),
        severity: Severity::parse(&severity),
        criticality: r.get(8)?,
        created_at: ts(r.get(9)?),
        updated_at: ts(r.get(10)?),
        first_signal_at: ts(r.get(11)?),
        last_signal_at: ts(r.get(12)?),
        incident_count: r.get::<_, i64>(13)?.try_into().unwrap_or_default(),
        device: DeviceView {
            agent_uuid: nonempty(r.get(14)?),
            name: nonempty(r.get(15)?),
            os: nonempty(r.get(16)?),
        },
        file: FileView {
            sha1: nonempty(r.get(17)?),
            sha256: nonempty(r.get(18)?),
            md5: nonempty(r.get(19)?),
            name: nonempty(r.get(20)?),
            path: nonempty(r.get(21)?),
        },
        mitigation_status: nonempty(r.get(22)?),
        connector_id: r.get(23)?,
        account_id: r.get(24)?,
        assignee: r.get(25)?,
    })
}

fn sort_column(f: StorySortField) -> (&'static str, bool) {
    // (column, is integer)
    match f {
        StorySortField::Id => ("id", false),
        StorySortField::Indication => ("indication", false),
        StorySortField::Criticality => ("criticality", true),
        StorySortField::Source => ("device_name", false),
        StorySortField::Producer => ("producer", false),
        StorySortField::Status => ("status", false),
        StorySortField::Verdict => ("verdict", false),
        StorySortField::Severity => ("severity", false),
        StorySortField::IncidentCount => ("incident_count", true),
        StorySortField::FirstSignalAt => ("first_signal_at", true),
        StorySortField::LastSignalAt => ("last_signal_at", true),
        StorySortField::CreatedAt => ("created_at", true),
        StorySortField::UpdatedAt => ("updated_at", true),
        StorySortField::Vendor => ("vendor", false),
        StorySortField::FileHash => ("file_hash", false),
        StorySortField::Mitigation => ("mitigation", false),
    }
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Appends a `?N` parameter clause to the SQL, numbering it after the arguments so far.
fn push(sql: &mut String, args: &mut Vec<Value>, clause: &str, v: Value) {
    args.push(v);
    sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
}

/// The WHERE clauses of a story list request (everything but the cursor).
fn filters(q: &StoryQuery, sql: &mut String, args: &mut Vec<Value>) {
    if let Some(a) = &q.account_id {
        push(sql, args, " AND account_id = ?", Value::Text(a.clone()));
    }
    if q.licensed_only {
        sql.push_str(
            " AND account_id IN (SELECT id FROM accounts WHERE licence IN ('xops', 'mdr'))",
        );
    }
    if let Some(p) = &q.producer {
        push(sql, args, " AND producer = ?", Value::Text(p.clone()));
    }
    if let Some(e) = &q.engine_type {
        push(sql, args, " AND engine_type = ?", Value::Text(e.clone()));
    }
    for (name, values) in [
        (
            "status",
            q.status.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        ),
        ("verdict", q.verdict.iter().map(|s| s.as_str()).collect()),
        ("severity", q.severity.iter().map(|s| s.as_str()).collect()),
    ] {
        if values.is_empty() {
            continue;
        }
        let _ = write!(sql, " AND {name} IN (");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            push(sql, args, "?", Value::Text((*v).to_owned()));
        }
        sql.push(')');
    }
    if let Some(min) = q.criticality_min {
        push(
            sql,
            args,
            " AND criticality >= ?",
            Value::Integer(min.into()),
        );
    }
    if let Some(max) = q.criticality_max {
        push(
            sql,
            args,
            " AND criticality <= ?",
            Value::Integer(max.into()),
        );
    }
    let account_id = q.account_id.as_deref();
    if let Some(d) = q.device.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        any_column(
            account_id,
            sql,
            args,
            &[
                ("agent_uuid", d.to_lowercase()),
                ("device_name COLLATE NOCASE", d.to_owned()),
            ],
        );
    }
    if let Some(h) = q.hash.as_deref().map(str::trim).filter(|h| !h.is_empty()) {
        hash_filter(account_id, sql, args, h);
    }
    if let Some(i) = q.indication.as_deref().filter(|i| !i.is_empty()) {
        push(sql, args, " AND indication = ?", Value::Text(i.to_owned()));
    }
    match &q.assignee {
        None => {}
        Some(AssigneeFilter::Unassigned) => sql.push_str(" AND assignee IS NULL"),
        Some(AssigneeFilter::User(name)) => push(
            sql,
            args,
            " AND assignee = ? COLLATE NOCASE",
            Value::Text(name.clone()),
        ),
    }
    if let Some(i) = q
        .incident_id
        .as_deref()
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        sql.push_str(" AND id IN (");
        incident_stories(account_id, sql, args, i);
        sql.push(')');
    }
    if let Some(text) = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        push(
            sql,
            args,
            " AND (search LIKE ? ESCAPE '\\'",
            Value::Text(format!("%{}%", escape_like(&text.to_lowercase()))),
        );
        push(sql, args, " OR id = ?", Value::Text(text.to_owned()));
        // A vendor's threat or alert id finds its story too.
        sql.push_str(" OR id IN (");
        incident_stories(account_id, sql, args, text);
        sql.push_str("))");
    }
    if let Some(from) = q.from {
        push(sql, args, " AND updated_at >= ?", Value::Integer(us(from)));
    }
    if let Some(to) = q.to {
        push(sql, args, " AND updated_at <= ?", Value::Integer(us(to)));
    }
    if let Some(after) = q.created_after {
        push(sql, args, " AND created_at > ?", Value::Integer(us(after)));
    }
}

/// The ids of the stories that hold an incident of this vendor id: through the unique
/// (connector, vendor id) index, over the account's connectors.
fn incident_stories(account_id: Option<&str>, sql: &mut String, args: &mut Vec<Value>, id: &str) {
    sql.push_str("SELECT story_id FROM incidents WHERE connector_id IN (SELECT id FROM connectors");
    if let Some(a) = account_id {
        push(
            sql,
            args,
            " WHERE account_id = ?",
            Value::Text(a.to_owned()),
        );
    }
    push(
        sql,
        args,
        ") AND external_id = ?",
        Value::Text(id.to_owned()),
    );
}

/// Matches any of several columns. Within an account each column has its index, and a union
/// of index lookups finds the stories; an operator across accounts filters as it scans.
fn any_column(
    account_id: Option<&str>,
    sql: &mut String,
    args: &mut Vec<Value>,
    columns: &[(&str, String)],
) {
    if let Some(a) = account_id {
        sql.push_str(" AND seq IN (");
        for (i, (col, v)) in columns.iter().enumerate() {
            if i > 0 {
                sql.push_str(" UNION ALL ");
            }
            push(
                sql,
                args,
                "SELECT seq FROM stories WHERE account_id = ?",
                Value::Text(a.to_owned()),
            );
            push(
                sql,
                args,
                &format!(" AND {col} = ?"),
                Value::Text(v.clone()),
            );
        }
        sql.push(')');
    } else {
        sql.push_str(" AND (");
        for (i, (col, v)) in columns.iter().enumerate() {
            if i > 0 {
                sql.push_str(" OR ");
            }
            push(sql, args, &format!("{col} = ?"), Value::Text(v.clone()));
        }
        sql.push(')');
    }
}

/// A file hash, told apart by its length: an MD5, a SHA-256 or else a SHA-1. A SHA-1 or a
/// SHA-256 finds every story of its file, under whichever name the story's producer keyed it:
/// a story's `file_hash` is its file's identity (see `files.rs`), and the hash's identity is
/// looked up in `file_aliases`.
fn hash_filter(account_id: Option<&str>, sql: &mut String, args: &mut Vec<Value>, h: &str) {
    let h = h.to_lowercase();
    let t = |v: &str| Value::Text(v.to_owned());
    if h.len() == 32 {
        // An MD5: the correlation hash when it is the only one, else the md5 column, which
        // has no index (see migration 0003); the time range bounds the scan.
        push(sql, args, " AND (file_hash = ?", t(&h));
        push(sql, args, " OR md5 = ?)", t(&h));
        return;
    }
    let Some(a) = account_id else {
        // An operator across accounts: the hash's identity in any account.
        push(sql, args, " AND (file_hash = ?", t(&h));
        push(
            sql,
            args,
            " OR file_hash IN (SELECT file_id FROM file_aliases WHERE hash = ?)",
            t(&h),
        );
        if h.len() == 64 {
            push(sql, args, " OR sha256 = ?", t(&h));
        }
        sql.push(')');
        return;
    };
    push(
        sql,
        args,
        " AND seq IN (SELECT seq FROM stories WHERE account_id = ?",
        t(a),
    );
    push(
        sql,
        args,
        " AND file_hash = coalesce((SELECT file_id FROM file_aliases WHERE account_id = ?",
        t(a),
    );
    push(sql, args, " AND hash = ?), ", t(&h));
    push(sql, args, "?)", t(&h));
    if h.len() == 64 {
        // A story that shows the SHA-256 but is filed under no file: a threat without a
        // device is a story of its own.
        push(
            sql,
            args,
            " UNION ALL SELECT seq FROM stories WHERE account_id = ?",
            t(a),
        );
        push(sql, args, " AND sha256 = ?", t(&h));
    }
    sql.push(')');
}

pub(crate) fn list(conn: &Connection, q: &StoryQuery) -> Result<StoryPage> {
    let sort_name = format!("{}{}", if q.descending { "-" } else { "" }, q.sort.name());
    let limit = q.limit.clamp(1, 1000) as usize;
    let position = q
        .cursor
        .as_deref()
        .map(|c| cursor::decode(c, &sort_name))
        .transpose()?;
    let at = |(s, v): &(Story, SortValue), side| cursor::encode(&sort_name, v, &s.id, side);
    let (items, next_cursor, prev_cursor) = match position {
        Some((value, id, Side::Before)) => {
            // The page before a row: read backwards from it, then turn the rows around.
            let mut rows = page_rows(conn, q, Some((value, id)), !q.descending, limit + 1)?;
            if rows.len() <= limit {
                // Nothing lies before these rows: this is the first page, which may hold more
                // rows than are left above the cursor should stories have come in since.
                let mut first = q.clone();
                first.cursor = None;
                return list(conn, &first);
            }
            rows.truncate(limit);
            rows.reverse();
            let next = rows.last().map(|r| at(r, Side::After));
            let prev = rows.first().map(|r| at(r, Side::Before));
            (rows, next, prev)
        }
        position => {
            let after = position.map(|(value, id, _)| (value, id));
            let mut rows = page_rows(conn, q, after, q.descending, limit + 1)?;
            let next = if rows.len() > limit {
                rows.truncate(limit);
                rows.last().map(|r| at(r, Side::After))
            } else {
                None
            };
            // Past the first page, the page before is the one that ends above this one's top.
            let prev = if q.cursor.is_some() {
                rows.first().map(|r| at(r, Side::Before))
            } else {
                None
            };
            (rows, next, prev)
        }
    };
    Ok(StoryPage {
        items: items.into_iter().map(|(s, _)| s).collect(),
        next_cursor,
        prev_cursor,
    })
}

/// Up to `limit` rows of a list request past `after` (a sort value and story id) in the order
/// `descending` says, with each row's sort value.
fn page_rows(
    conn: &Connection,
    q: &StoryQuery,
    after: Option<(SortValue, String)>,
    descending: bool,
    limit: usize,
) -> Result<Vec<(Story, SortValue)>> {
    let (col, is_int) = sort_column(q.sort);
    // The inner query finds the page's rows by their sort key alone; only those rows are then
    // read in full. Sorting thousands of matches on a column without an index is then cheap,
    // since the sorter no longer carries every column of every candidate.
    let mut sql = "SELECT seq FROM stories WHERE 1 = 1".to_owned();
    let mut args: Vec<Value> = Vec::new();
    filters(q, &mut sql, &mut args);
    let op = if descending { "<" } else { ">" };
    if let Some((value, id)) = after {
        let v = match (value, is_int) {
            (SortValue::Int(i), true) => Value::Integer(i),
            (SortValue::Text(t), false) => Value::Text(t),
            _ => {
                return Err(StoreError::Invalid(
                    "cursor: not a cursor this list made".into(),
                ))
            }
        };
        if col == "id" {
            push(
                &mut sql,
                &mut args,
                &format!(" AND id {op} ?"),
                Value::Text(id),
            );
        } else {
            push(&mut sql, &mut args, &format!(" AND ({col}, id) {op} (?"), v);
            push(&mut sql, &mut args, ", ?)", Value::Text(id));
        }
    }
    let dir = if descending { "DESC" } else { "ASC" };
    let order = if col == "id" {
        format!("ORDER BY id {dir}")
    } else {
        format!("ORDER BY {col} {dir}, id {dir}")
    };
    let sql = format!(
        "SELECT {COLUMNS}, {col} FROM stories WHERE seq IN ({sql} {order} LIMIT {limit}) {order}"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(params_from_iter(args.iter()), |r| {
        let story = story_row(r)?;
        let sort_value = if is_int {
            SortValue::Int(r.get(26)?)
        } else {
            SortValue::Text(r.get(26)?)
        };
        Ok((story, sort_value))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many stories a list request matches, counting no further than `cap`.
pub(crate) fn count(conn: &Connection, q: &StoryQuery, cap: u64) -> Result<u64> {
    let mut sql = "SELECT seq FROM stories WHERE 1 = 1".to_owned();
    let mut args: Vec<Value> = Vec::new();
    filters(q, &mut sql, &mut args);
    let cap = i64::try_from(cap).unwrap_or(i64::MAX);
    let sql = format!("SELECT count(*) FROM ({sql} LIMIT {cap})");
    let n: i64 = conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(args.iter()), |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or_default())
}

/// Follows the aliases of stories that correlation replaced.
fn resolve(conn: &Connection, id: &str) -> Result<String> {
    let alias: Option<String> = conn
        .query_row(
            "SELECT new_id FROM story_aliases WHERE old_id = ?1
             AND NOT EXISTS (SELECT 1 FROM stories WHERE id = ?1)",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(alias.unwrap_or_else(|| id.to_owned()))
}

pub(crate) fn get_story_row(
    conn: &Connection,
    account_id: Option<&str>,
    id: &str,
) -> Result<Story> {
    let id = resolve(conn, id)?;
    Ok(conn.query_row(
        &format!("SELECT {COLUMNS} FROM stories WHERE id = ?1 AND (?2 IS NULL OR account_id = ?2)"),
        params![id, account_id],
        story_row,
    )?)
}

pub(crate) fn get(
    conn: &Connection,
    remap: &Remap,
    account_id: Option<&str>,
    id: &str,
) -> Result<StoryDetail> {
    let story = get_story_row(conn, account_id, id)?;
    let (crit_json, closed_at, previous_id, file_hash, close_reason): (
        String,
        Option<i64>,
        Option<String>,
        String,
        Option<String>,
    ) = conn.query_row(
        "SELECT criticality_detail, closed_at, previous_id, file_hash, close_reason
         FROM stories WHERE id = ?1",
        [&story.id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    let criticality_detail: Criticality = serde_json::from_str(&crit_json).unwrap_or(Criticality {
        score: story.criticality,
        reasons: Vec::new(),
    });

    // One pass over every incident, in story order: the first page in full, and of every
    // incident what the timeline, the techniques and the summary need. Only the first page's
    // (and the latest's) raw JSON is kept, so the detail of a large story stays small.
    let first_page = STORY_INCIDENTS_FIRST_PAGE as usize;
    let mut incidents = Vec::new();
    let mut incidents_next_cursor = None;
    let mut latest = None;
    let mut timeline: Vec<TimelineEntry> = Vec::new();
    let mut mitre: BTreeMap<String, MitreTechnique> = BTreeMap::new();
    let mut normalised: Vec<Incident> = Vec::new();
    let mut st = conn.prepare_cached(&format!("{INCIDENT_ROWS} ORDER BY {INCIDENT_ORDER}"))?;
    let mut rows = st.query([&story.id])?;
    while let Some(r) = rows.next()? {
        let row = IncidentRow::read(r, remap)?;
        let n = row.normalised.as_ref();
        timeline.push(TimelineEntry {
            at: ts(row.created),
            kind: "incident_added".into(),
            actor: None,
            text: format!(
                "threat {} detected: {}",
                row.external_id,
                n.and_then(|n| n.threat_name.as_deref())
                    .unwrap_or("unnamed threat")
            ),
        });
        for t in n.map(|n| n.mitre.as_slice()).unwrap_or_default() {
            mitre.entry(t.id.clone()).or_insert_with(|| t.clone());
        }
        if let Some(n) = n {
            normalised.push(n.clone());
        }
        if incidents.len() < first_page {
            incidents.push(row.view()?);
        } else {
            if incidents_next_cursor.is_none() {
                incidents_next_cursor = incidents.last().map(|i: &IncidentView| {
                    cursor::encode_incident(&story.id, us(i.created_at), &i.connector_id, &i.id)
                });
            }
            latest = Some(row);
        }
    }
    // The latest is the last in story order: on the first page, or the last row read.
    let latest = match latest {
        Some(row) => Some(row.view()?),
        None => incidents.last().cloned(),
    };

    let mut st = conn.prepare_cached(
        "SELECT at, kind, actor, text FROM timeline WHERE story_id = ?1 ORDER BY at, seq",
    )?;
    let rows = st.query_map([&story.id], |r| {
        Ok(TimelineEntry {
            at: ts(r.get(0)?),
            kind: r.get(1)?,
            actor: r.get(2)?,
            text: r.get(3)?,
        })
    })?;
    timeline.extend(rows.collect::<rusqlite::Result<Vec<_>>>()?);
    // Stable: incidents keep their story order, and entries at one instant their order.
    timeline.sort_by_key(|e| e.at);

    let comments = comments(conn, &story.id)?;
    let related = related(conn, &story, previous_id.as_deref(), &file_hash)?;

    let devices: i64 = if file_hash.is_empty() {
        1
    } else {
        conn.query_row(
            "SELECT count(DISTINCT agent_uuid) FROM stories WHERE account_id = ?1 AND file_hash = ?2",
            params![story.account_id, file_hash],
            |r| r.get(0),
        )?
    };
    let others = u32::try_from(devices.saturating_sub(1)).unwrap_or_default();
    let text = summary(&SummaryFacts::from_incidents(&normalised, others));
    let closed = story.status == Status::Closed;
    let steps = next_steps(&NextStepFacts {
        benign_verdict: story.verdict == Some(Verdict::Benign),
        ..NextStepFacts::from_incidents(&normalised, others, closed)
    });
    Ok(StoryDetail {
        story,
        summary: text,
        criticality_detail,
        next_steps: steps,
        entities: dossier_domain::entities::of(&normalised),
        incidents,
        incidents_next_cursor,
        latest,
        mitre: mitre.into_values().collect(),
        timeline,
        comments,
        related,
        closed_at: opt_ts(closed_at),
        close_reason,
    })
}

/// A story's incident rows with their bodies; `?1` is the story.
const INCIDENT_ROWS: &str = "SELECT i.external_id, i.connector_id, i.created_at, i.updated_at,
        b.normalised, b.raw, i.producer
    FROM incidents i JOIN incident_bodies b ON b.seq = i.seq
    WHERE i.story_id = ?1";

/// Story order (`dossier_domain::criticality::story_order`), which the `incidents_story` index
/// holds.
const INCIDENT_ORDER: &str = "i.created_at, i.connector_id, i.external_id";

/// One row of [`INCIDENT_ROWS`], its threat mapped again.
struct IncidentRow {
    external_id: String,
    connector_id: String,
    created: i64,
    updated: i64,
    raw: String,
    normalised: Option<Incident>,
}

impl IncidentRow {
    fn read(r: &Row<'_>, remap: &Remap) -> Result<Self> {
        let (normalised, raw) = body::unpack_bodies(r.get_ref(4)?, r.get_ref(5)?)?;
        let producer: String = r.get(6)?;
        let normalised = Producer::parse(&producer)
            .and_then(|p| body::stored_incident(remap, p, normalised.as_deref(), &raw));
        Ok(Self {
            external_id: r.get(0)?,
            connector_id: r.get(1)?,
            created: r.get(2)?,
            updated: r.get(3)?,
            raw,
            normalised,
        })
    }

    fn view(self) -> Result<IncidentView> {
        let raw = RawValue::from_string(self.raw).or_else(|e| {
            RawValue::from_string(serde_json::Value::String(e.to_string()).to_string())
        });
        let raw = raw.map_err(|e| StoreError::Database(e.to_string()))?;
        let n = self.normalised.as_ref();
        Ok(IncidentView {
            id: self.external_id,
            connector_id: self.connector_id,
            created_at: ts(self.created),
            updated_at: ts(self.updated),
            threat_name: n.and_then(|n| n.threat_name.clone()),
            classification: n.and_then(|n| n.classification.clone()),
            confidence_level: n.and_then(|n| n.confidence_level.clone()),
            mitigation_status: n.and_then(|n| n.mitigation_status.clone()),
            analyst_verdict: n.and_then(|n| n.analyst_verdict.clone()),
            incident_status: n.and_then(|n| n.incident_status.clone()),
            engines: n.map(|n| n.engines.clone()).unwrap_or_default(),
            mitigation_actions: n.map(|n| n.mitigation_actions.clone()).unwrap_or_default(),
            raw,
            normalised: self.normalised,
        })
    }
}

/// A page of a story's incidents in story order, after `cursor`.
pub(crate) fn incidents(
    conn: &Connection,
    remap: &Remap,
    account_id: Option<&str>,
    id: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<IncidentPage> {
    let story = get_story_row(conn, account_id, id)?;
    let limit = limit.clamp(1, 1000);
    let (created, connector, external) = match after {
        Some(c) => cursor::decode_incident(c, &story.id)?,
        None => (i64::MIN, String::new(), String::new()),
    };
    let mut st = conn.prepare_cached(&format!(
        "{INCIDENT_ROWS} AND (i.created_at, i.connector_id, i.external_id) > (?2, ?3, ?4)
         ORDER BY {INCIDENT_ORDER} LIMIT ?5"
    ))?;
    let mut rows = st.query(params![story.id, created, connector, external, limit + 1])?;
    let mut items = Vec::new();
    let mut more = false;
    while let Some(r) = rows.next()? {
        if items.len() == limit as usize {
            more = true;
            break;
        }
        items.push(IncidentRow::read(r, remap)?.view()?);
    }
    let next_cursor = more
        .then(|| items.last())
        .flatten()
        .map(|i| cursor::encode_incident(&story.id, us(i.created_at), &i.connector_id, &i.id));
    Ok(IncidentPage {
        story_id: story.id,
        account_id: story.account_id,
        items,
        next_cursor,
    })
}

/// One incident of a story, by the producer's id for it.
pub(crate) fn incident(
    conn: &Connection,
    remap: &Remap,
    account_id: Option<&str>,
    id: &str,
    incident_id: &str,
) -> Result<IncidentView> {
    let story = get_story_row(conn, account_id, id)?;
    let mut st = conn.prepare_cached(&format!(
        "{INCIDENT_ROWS} AND i.external_id = ?2 ORDER BY {INCIDENT_ORDER} LIMIT 1"
    ))?;
    let mut rows = st.query(params![story.id, incident_id])?;
    match rows.next()? {
        Some(r) => IncidentRow::read(r, remap)?.view(),
        None => Err(StoreError::NotFound),
    }
}

fn comments(conn: &Connection, story_id: &str) -> Result<Vec<Comment>> {
    let mut st = conn.prepare_cached(
        "SELECT id, story_id, author, text, created_at FROM comments WHERE story_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = st.query_map([story_id], |r| {
        Ok(Comment {
            id: r.get(0)?,
            story_id: r.get(1)?,
            author: r.get(2)?,
            text: r.get(3)?,
            created_at: ts(r.get(4)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The most stories a story lists per relation by device or file; the Workbench links to the
/// rest.
const RELATED_PER_RELATION: i64 = 50;

/// A device's or a file's stories are found through their own index, named: the (`account`,
/// `updated_at`) index carries the agent id and the file too, and a planner taking it to save the
/// sort would read every story of the account to find a device's few.
fn related(
    conn: &Connection,
    story: &Story,
    previous: Option<&str>,
    file_hash: &str,
) -> Result<Vec<RelatedStory>> {
    let mut out = Vec::new();
    let mut add = |sql: &str, relation: &str, args: &[&dyn rusqlite::ToSql]| -> Result<()> {
        let mut st = conn.prepare_cached(sql)?;
        let rows = st.query_map(args, |r| {
            let status: String = r.get(5)?;
            let verdict: String = r.get(6)?;
            Ok(RelatedStory {
                id: r.get(0)?,
                relation: relation.to_owned(),
                indication: nonempty(r.get(1)?),
                device_name: nonempty(r.get(2)?),
                updated_at: ts(r.get(3)?),
                criticality: r.get(4)?,
                status: Status::parse(&status).unwrap_or(Status::Open),
                verdict: Verdict::parse(&verdict),
            })
        })?;
        for row in rows {
            let row = row?;
            if row.id != story.id && !out.iter().any(|o: &RelatedStory| o.id == row.id) {
                out.push(row);
            }
        }
        Ok(())
    };
    if let Some(p) = previous {
        add(
            "SELECT id, indication, device_name, updated_at, criticality, status, verdict FROM stories WHERE id = ?1",
            "previous_window",
            &[&p],
        )?;
    }
    add(
        "SELECT id, indication, device_name, updated_at, criticality, status, verdict FROM stories WHERE previous_id = ?1 AND account_id = ?2",
        "next_window",
        &[&story.id, &story.account_id],
    )?;
    if let Some(agent) = &story.device.agent_uuid {
        add(
            "SELECT id, indication, device_name, updated_at, criticality, status, verdict
             FROM stories INDEXED BY stories_agent
             WHERE account_id = ?1 AND agent_uuid = ?2 ORDER BY updated_at DESC LIMIT ?3",
            "same_device",
            &[&story.account_id, agent, &RELATED_PER_RELATION],
        )?;
    }
    if !file_hash.is_empty() {
        add(
            "SELECT id, indication, device_name, updated_at, criticality, status, verdict
             FROM stories INDEXED BY stories_hash
             WHERE account_id = ?1 AND file_hash = ?2 ORDER BY updated_at DESC LIMIT ?3",
            "same_hash",
            &[&story.account_id, &file_hash, &RELATED_PER_RELATION],
        )?;
    }
    // Across producers: each keys a file by the hash it prefers (SentinelOne's SHA-1,
    // CrowdStrike's SHA-256), but a SHA-256 is the same file whoever saw it; and a device has
    // another id under each EDR, but the same name.
    if let Some(sha256) = story.file.sha256.as_deref().filter(|h| !h.is_empty()) {
        add(
            "SELECT id, indication, device_name, updated_at, criticality, status, verdict FROM stories
             WHERE account_id = ?1 AND sha256 = ?2 ORDER BY updated_at DESC LIMIT 10",
            "same_sha256",
            &[&story.account_id, &sha256],
        )?;
    }
    if let Some(name) = story.device.name.as_deref().filter(|n| !n.is_empty()) {
        add(
            "SELECT id, indication, device_name, updated_at, criticality, status, verdict FROM stories
             WHERE account_id = ?1 AND device_name = ?2 COLLATE NOCASE AND producer != ?3
             ORDER BY updated_at DESC LIMIT 10",
            "same_device_name",
            &[&story.account_id, &name, &story.producer],
        )?;
    }
    Ok(out)
}

/// One group as [`group_counts`] adds it up: its value, count, highest criticality, and stories
/// per severity (the last slot: none) and per status.
struct Sum {
    value: String,
    count: u64,
    max: u8,
    severities: [u64; 4],
    statuses: [u64; 6],
}

const _: () = assert!(Severity::ALL.len() + 1 == 4 && Status::ALL.len() == 6);

/// Counts the stories a list request matches, per value of the grouped field, largest group
/// first (at most `limit` groups), with each group's highest criticality and its split by
/// severity and by status.
///
/// One pass over the index groups the stories by value, severity and status, and the groups
/// are put together here: a second pass for the largest groups' split cost as much again, and
/// carrying a sum per severity and status through SQLite's grouping cost more than both.
pub(crate) fn group_counts(
    conn: &Connection,
    q: &StoryQuery,
    by: StoryGroup,
    limit: u32,
) -> Result<Vec<GroupCount>> {
    let col = match by {
        // As the device filter matches names: without regard to case.
        StoryGroup::Source => "device_name COLLATE NOCASE",
        StoryGroup::Device => "agent_uuid",
        StoryGroup::File => "file_hash",
        StoryGroup::Indication => "indication",
        StoryGroup::Status => "status",
        StoryGroup::Producer => "producer",
    };
    // The matching stories' group, severity, status and criticality, in index order: read
    // from the (account, updated_at) index alone and added up here, with no sort at all.
    let mut sql = format!("SELECT {col}, severity, status, criticality FROM stories WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    filters(q, &mut sql, &mut args);
    // Device names group without regard to ASCII case, as SQLite's NOCASE folds them.
    let key = |v: &str| {
        if by == StoryGroup::Source {
            v.to_ascii_lowercase()
        } else {
            v.to_owned()
        }
    };
    let text = |r: &rusqlite::Row<'_>, i: usize| -> rusqlite::Result<String> {
        Ok(r.get_ref(i)?.as_str().unwrap_or_default().to_owned())
    };
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut sums: Vec<Sum> = Vec::new();
    {
        let mut st = conn.prepare_cached(&sql)?;
        let mut rows = st.query(params_from_iter(args.iter()))?;
        // A device name is folded into one buffer, not a new string per story.
        let mut folded = String::new();
        while let Some(r) = rows.next()? {
            let value = r.get_ref(0)?.as_str().unwrap_or_default();
            let found = if by == StoryGroup::Source {
                folded.clear();
                folded.extend(value.chars().map(|c| c.to_ascii_lowercase()));
                at.get(folded.as_str()).copied()
            } else {
                at.get(value).copied()
            };
            let i = if let Some(i) = found {
                i
            } else {
                let value = text(r, 0)?;
                at.insert(key(&value), sums.len());
                sums.push(Sum {
                    value,
                    count: 0,
                    max: 0,
                    severities: [0; 4],
                    statuses: [0; 6],
                });
                sums.len() - 1
            };
            let severity = r.get_ref(1)?.as_str().unwrap_or_default();
            let status = r.get_ref(2)?.as_str().unwrap_or_default();
            let crit: u8 = r.get(3)?;
            let sum = &mut sums[i];
            sum.count += 1;
            sum.max = sum.max.max(crit);
            let sev = Severity::ALL
                .iter()
                .position(|x| x.as_str() == severity)
                .unwrap_or(Severity::ALL.len());
            sum.severities[sev] += 1;
            if let Some(p) = Status::ALL.iter().position(|x| x.as_str() == status) {
                sum.statuses[p] += 1;
            }
        }
    }
    // Largest first; stories without the value (no file, say) make a group too, listed last.
    // Only the groups shown are sorted: a grouping by file may have a group per story.
    let order = |a: &Sum, b: &Sum| {
        (a.value.is_empty(), std::cmp::Reverse(a.count), &a.value).cmp(&(
            b.value.is_empty(),
            std::cmp::Reverse(b.count),
            &b.value,
        ))
    };
    let shown = limit.clamp(1, 1000) as usize;
    if sums.len() > shown {
        sums.select_nth_unstable_by(shown, order);
        sums.truncate(shown);
    }
    sums.sort_by(order);
    let mut groups: Vec<GroupCount> = sums
        .into_iter()
        .map(|sum| {
            let mut by_severity = Vec::new();
            for (j, s) in Severity::ALL.iter().enumerate().rev() {
                if sum.severities[j] > 0 {
                    by_severity.push((Some(*s), sum.severities[j]));
                }
            }
            if sum.severities[Severity::ALL.len()] > 0 {
                by_severity.push((None, sum.severities[Severity::ALL.len()]));
            }
            let by_status = Status::ALL
                .iter()
                .zip(sum.statuses)
                .filter(|(_, n)| *n > 0)
                .map(|(s, n)| (*s, n))
                .collect();
            GroupCount {
                label: sum.value.clone(),
                value: sum.value,
                count: sum.count,
                max_criticality: sum.max,
                by_severity,
                by_status,
            }
        })
        .collect();
    // What people read for a device or a file: its name, from one of its stories, found
    // through the account's index on the value. (An operator's list across accounts has no
    // account to start from, and looks the name up among every account's stories.)
    // The index is named: the (account, updated_at) index carries the agent id too, and a
    // planner without statistics for it took it for a lookup, reading every story.
    let label_col = match by {
        StoryGroup::Device => Some(("device_name", "agent_uuid", "stories_agent")),
        StoryGroup::File => Some(("file_name", "file_hash", "stories_hash")),
        _ => None,
    };
    if let Some((name, value, index)) = label_col {
        let sql = if q.account_id.is_some() {
            format!(
                "SELECT {name} FROM stories INDEXED BY {index} WHERE account_id = ?1
                 AND {value} = ?2 AND {name} != '' LIMIT 1"
            )
        } else {
            format!(
                "SELECT {name} FROM stories WHERE {value} = ?2 AND {name} != '' AND ?1 IS NULL
                 LIMIT 1"
            )
        };
        let mut st = conn.prepare_cached(&sql)?;
        for g in groups.iter_mut().filter(|g| !g.value.is_empty()) {
            g.label = st
                .query_row(params![q.account_id, g.value], |r| r.get(0))
                .optional()?
                .unwrap_or_default();
        }
    }
    Ok(groups)
}

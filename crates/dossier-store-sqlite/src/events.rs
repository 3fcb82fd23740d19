//! The append-only event log.

use std::fmt::Write as _;

use dossier_domain::event::EventType;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::{ts, us};
use dossier_store::{Event, EventOrder, EventPage, EventQuery, NewEvent, Result, StoreError};

pub(crate) fn insert(conn: &Connection, e: &NewEvent) -> Result<()> {
    conn.execute(
        "INSERT INTO events (account_id, type, at, connector_id, story_id, incident_id, message, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            e.account_id,
            e.event_type.as_str(),
            us(e.at),
            e.connector_id,
            e.story_id,
            e.incident_id,
            e.message,
            e.data.to_string()
        ],
    )?;
    Ok(())
}

/// The largest event sequence number ever drawn (0 before the first event): `AUTOINCREMENT`
/// keeps it in `sqlite_sequence`, so this is one row read.
pub(crate) fn newest(conn: &Connection) -> Result<u64> {
    let mut st = conn.prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'events'")?;
    let seq: Option<i64> = st.query_row([], |r| r.get(0)).optional()?;
    Ok(seq.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
}

/// Reads a position in the log: a sequence number, 0 before the first event.
fn position(raw: &str, name: &str) -> Result<i64> {
    raw.parse::<i64>()
        .ok()
        .filter(|s| *s >= 0)
        .ok_or_else(|| StoreError::Invalid(format!("{name}: not a cursor this list made")))
}

/// Lists events newest first, the cursor being the sequence number of the last one shown; or,
/// ascending, the events after a sequence number in commit order.
///
/// `seq` is given by `AUTOINCREMENT` inside the transaction that inserts the event, and the
/// store's one writer connection (and, across processes, `SQLite`'s own write lock) lets only
/// one write transaction run at a time: a transaction that commits later draws larger
/// numbers. So the events any reader sees are exactly those up to some `seq`, and a tail from
/// the last `seq` it saw never misses one that committed after it read.
pub(crate) fn list(conn: &Connection, q: &EventQuery) -> Result<EventPage> {
    let mut sql = String::from(
        "SELECT seq, type, at, account_id, connector_id, story_id, incident_id, message, data
         FROM events WHERE 1 = 1",
    );
    let mut args: Vec<Value> = Vec::new();
    let mut push = |sql: &mut String, clause: &str, v: Value| {
        args.push(v);
        sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some(a) = &q.account_id {
        push(&mut sql, " AND account_id = ?", Value::Text(a.clone()));
    }
    if !q.types.is_empty() {
        sql.push_str(" AND type IN (");
        for (i, t) in q.types.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            push(&mut sql, "?", Value::Text(t.as_str().to_owned()));
        }
        sql.push(')');
    }
    if let Some(c) = &q.connector_id {
        push(&mut sql, " AND connector_id = ?", Value::Text(c.clone()));
    }
    if let Some(s) = &q.story_id {
        push(&mut sql, " AND story_id = ?", Value::Text(s.clone()));
    }
    if let Some(f) = q.from {
        push(&mut sql, " AND at >= ?", Value::Integer(us(f)));
    }
    if let Some(t) = q.to {
        push(&mut sql, " AND at <= ?", Value::Integer(us(t)));
    }
    let asc = q.order == EventOrder::Asc;
    let after = match (&q.after, asc) {
        (Some(_), false) => {
            return Err(StoreError::Invalid(
                "after: only an ascending list (order=asc) tails from a position".into(),
            ))
        }
        (Some(a), true) => position(a, "after")?,
        (None, _) => 0,
    };
    match (&q.cursor, asc) {
        (Some(_), true) => {
            return Err(StoreError::Invalid(
                "cursor: an ascending list goes on from its next_cursor given as after".into(),
            ))
        }
        (Some(c), false) => {
            // Sequence numbers start at 1: nothing else was made by this list.
            let seq = Some(position(c, "cursor")?)
                .filter(|s| *s > 0)
                .ok_or_else(|| StoreError::Invalid("cursor: not a cursor this list made".into()))?;
            push(&mut sql, " AND seq < ?", Value::Integer(seq));
        }
        (None, _) => {}
    }
    if asc {
        push(&mut sql, " AND seq > ?", Value::Integer(after));
    }
    let limit = q.limit.clamp(1, 1000);
    // Ascending, a page is all it asks for: its cursor is where the next one starts, more
    // or not. Newest first, one more tells whether there is a next page.
    let (direction, fetch) = if asc {
        ("ASC", limit)
    } else {
        ("DESC", limit + 1)
    };
    let _ = write!(sql, " ORDER BY seq {direction} LIMIT {fetch}");
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(params_from_iter(args.iter()), |r| {
        let kind: String = r.get(1)?;
        let data: String = r.get(8)?;
        Ok(Event {
            id: r.get::<_, i64>(0)?.to_string(),
            event_type: EventType::parse(&kind).unwrap_or(EventType::StoryUpdated),
            at: ts(r.get(2)?),
            account_id: r.get(3)?,
            connector_id: r.get(4)?,
            story_id: r.get(5)?,
            incident_id: r.get(6)?,
            message: r.get(7)?,
            data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
        })
    })?;
    let mut items: Vec<Event> = rows.collect::<rusqlite::Result<_>>()?;
    if asc {
        let next = items
            .last()
            .and_then(|e| e.id.parse::<i64>().ok())
            .unwrap_or(after);
        return Ok(EventPage {
            items,
            next_cursor: Some(next.to_string()),
        });
    }
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|e| e.id.clone())
    } else {
        None
    };
    Ok(EventPage { items, next_cursor })
}

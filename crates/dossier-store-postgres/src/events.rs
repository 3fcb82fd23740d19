//! The append-only event log, written by every node at once.
//!
//! Sequence numbers come from an identity column, drawn when a row is inserted, not when its
//! transaction commits: with several writers, an event numbered 10 can commit after one
//! numbered 11 was read. So a tail in commit order does not follow `seq` alone. Each
//! transaction that writes events draws, as the last thing before it commits, the next number
//! of one clock (a deferred trigger: see `0001_init.sql`), and holds the clock until its commit
//! is visible. A tail reads in the order of (that number, `seq`): once a reader has passed a
//! position, whatever commits later draws a larger number, so nothing can be placed before it.
//! Holding the clock costs each event-writing transaction the time of its own commit, not more.

use std::fmt::Write as _;

use dossier_domain::event::EventType;
use postgres::types::ToSql;
use postgres::{Client, GenericClient};

use super::{ts, us};
use dossier_store::{Event, EventOrder, EventPage, EventQuery, NewEvent, Result, StoreError};

pub(crate) fn insert(conn: &mut impl GenericClient, e: &NewEvent) -> Result<()> {
    conn.execute(
        "INSERT INTO events (account_id, type, at, connector_id, story_id, incident_id, message, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &e.account_id,
            &e.event_type.as_str(),
            &us(e.at),
            &e.connector_id,
            &e.story_id,
            &e.incident_id,
            &e.message,
            &e.data.to_string(),
        ],
    )?;
    Ok(())
}

/// The number of the last commit that wrote events (0 before the first): what this node tells
/// its waiters changed.
pub(crate) fn newest(conn: &mut Client) -> Result<u64> {
    let n: i64 = conn.query_one("SELECT n FROM event_clock", &[])?.get(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// A position of the tail: the commit number and sequence number of the last event read, or
/// the start (`0`, what a tail begins from).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    pos: i64,
    seq: i64,
}

impl Position {
    const START: Position = Position { pos: 0, seq: 0 };

    fn parse(raw: &str, name: &str) -> Result<Position> {
        let bad = || StoreError::Invalid(format!("{name}: not a cursor this list made"));
        let raw = raw.trim();
        if raw == "0" {
            return Ok(Position::START);
        }
        let (pos, seq) = raw.split_once('-').ok_or_else(bad)?;
        let positive = |s: &str| s.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(bad);
        Ok(Position {
            pos: positive(pos)?,
            seq: positive(seq)?,
        })
    }

    fn render(self) -> String {
        if self == Position::START {
            "0".into()
        } else {
            format!("{}-{}", self.pos, self.seq)
        }
    }
}

/// Reads a position of a newest-first list: a sequence number.
fn sequence(raw: &str, name: &str) -> Result<i64> {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| StoreError::Invalid(format!("{name}: not a cursor this list made")))
}

/// Lists events newest first, the cursor being the sequence number of the last one shown; or,
/// ascending, the events after a position in commit order (see the module's text).
pub(crate) fn list(conn: &mut Client, q: &EventQuery) -> Result<EventPage> {
    let asc = q.order == EventOrder::Asc;
    let after = match (&q.after, asc) {
        (Some(_), false) => {
            return Err(StoreError::Invalid(
                "after: only an ascending list (order=asc) tails from a position".into(),
            ))
        }
        (Some(a), true) => Position::parse(a, "after")?,
        (None, _) => Position::START,
    };
    let before = match (&q.cursor, asc) {
        (Some(_), true) => {
            return Err(StoreError::Invalid(
                "cursor: an ascending list goes on from its next_cursor given as after".into(),
            ))
        }
        (Some(c), false) => Some(sequence(c, "cursor")?),
        (None, _) => None,
    };

    // Only a tail needs each event's commit number; a newest-first list reads no other table.
    let mut sql = String::from(if asc {
        "SELECT e.seq, e.type, e.at, e.account_id, e.connector_id, e.story_id, e.incident_id,
                e.message, e.data, c.pos
         FROM events e JOIN event_commits c ON c.xact = e.xact WHERE true"
    } else {
        "SELECT e.seq, e.type, e.at, e.account_id, e.connector_id, e.story_id, e.incident_id,
                e.message, e.data, NULL::bigint
         FROM events e WHERE true"
    });
    let mut args: Vec<Box<dyn ToSql + Sync>> = Vec::new();
    let mut push = |sql: &mut String, clause: &str, v: Box<dyn ToSql + Sync>| {
        args.push(v);
        sql.push_str(&clause.replace('?', &format!("${}", args.len())));
    };
    if let Some(a) = &q.account_id {
        push(&mut sql, " AND e.account_id = ?", Box::new(a.clone()));
    }
    if !q.types.is_empty() {
        let types: Vec<String> = q.types.iter().map(|t| t.as_str().to_owned()).collect();
        push(&mut sql, " AND e.type = ANY(?)", Box::new(types));
    }
    if let Some(c) = &q.connector_id {
        push(&mut sql, " AND e.connector_id = ?", Box::new(c.clone()));
    }
    if let Some(s) = &q.story_id {
        push(&mut sql, " AND e.story_id = ?", Box::new(s.clone()));
    }
    if let Some(f) = q.from {
        push(&mut sql, " AND e.at >= ?", Box::new(us(f)));
    }
    if let Some(t) = q.to {
        push(&mut sql, " AND e.at <= ?", Box::new(us(t)));
    }
    if let Some(seq) = before {
        push(&mut sql, " AND e.seq < ?", Box::new(seq));
    }
    let limit = q.limit.clamp(1, 1000);
    if asc {
        push(&mut sql, " AND (c.pos, e.seq) > (?, ", Box::new(after.pos));
        push(&mut sql, "?)", Box::new(after.seq));
        let _ = write!(sql, " ORDER BY c.pos, e.seq LIMIT {limit}");
    } else {
        // One more tells whether there is a next page.
        let _ = write!(sql, " ORDER BY e.seq DESC LIMIT {}", limit + 1);
    }
    let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(AsRef::as_ref).collect();
    let rows = conn.query(&sql, &params)?;
    let mut last = after;
    let mut items = Vec::with_capacity(rows.len());
    for r in &rows {
        let kind: String = r.get(1);
        let data: String = r.get(8);
        let seq: i64 = r.get(0);
        // A tail's rows carry their commit number (the join); a newest-first list's, none.
        if let Some(pos) = r.get::<_, Option<i64>>(9) {
            last = Position { pos, seq };
        }
        items.push(Event {
            id: seq.to_string(),
            event_type: EventType::parse(&kind).unwrap_or(EventType::StoryUpdated),
            at: ts(r.get(2)),
            account_id: r.get(3),
            connector_id: r.get(4),
            story_id: r.get(5),
            incident_id: r.get(6),
            message: r.get(7),
            data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
        });
    }
    if asc {
        // Ascending, a page is all it asks for: its cursor is where the next one starts.
        return Ok(EventPage {
            items,
            next_cursor: Some(last.render()),
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

#[cfg(test)]
mod tests {
    use super::Position;

    #[test]
    fn positions_read_back_and_refuse_what_they_did_not_make() {
        for p in [
            Position::START,
            Position { pos: 7, seq: 3 },
            Position {
                pos: i64::MAX,
                seq: i64::MAX,
            },
        ] {
            assert_eq!(Position::parse(&p.render(), "after").ok(), Some(p));
        }
        for bad in ["", "x", "1", "1-", "-1", "1-0", "0-1", "1--2", "a-1"] {
            assert!(Position::parse(bad, "after").is_err(), "{bad:?}");
        }
    }
}

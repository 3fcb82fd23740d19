//! The analyst's changes to stories: triage (status, verdict, severity, owner, close
//! reason), alone or in bulk, and comments. Each goes to the story's timeline and the audit log.
//!
//! Every change is a transaction that first takes the lock of the story's account (see
//! [`locked_story`]): ingest on another node may be correlating that account's stories, and
//! a change read against a story ingest is halfway through replacing would be lost with it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use dossier_domain::story::{Severity, Status, Triage, Verdict};
use postgres::{Client, GenericClient};

use super::stories::get_story_row;
use super::{new_id, ts, us};
use dossier_store::{BulkOutcome, Comment, Result, StoreError, Story, StoryUpdate, RETRY};

pub(crate) const MAX_COMMENT_CHARS: usize = 500;
pub(crate) const MAX_COMMENTS: i64 = 200;

/// How many times one story of a bulk change is tried when the database could not order it
/// against a concurrent write. The bulk change is not run again as a whole (as `write` would
/// run it): the stories already changed are committed, and their comments would be added twice.
const STORY_ATTEMPTS: u32 = 5;

/// Reads the story a change is about, under its account's lock, inside the change's
/// transaction: what is read is then what ingest on any node last committed, and stays so
/// until the change commits. An operator names no account, so the story's account is read
/// first, to know which lock to take, and the story read again under it.
fn locked_story(tx: &mut impl GenericClient, account_id: Option<&str>, id: &str) -> Result<Story> {
    let account = match account_id {
        Some(a) => a.to_owned(),
        None => get_story_row(tx, None, id)?.account_id,
    };
    crate::lock_account(tx, &account)?;
    get_story_row(tx, account_id, id)
}

pub(crate) fn record(
    conn: &mut impl GenericClient,
    story: &Story,
    at: DateTime<Utc>,
    actor: &str,
    kind: &str,
    text: &str,
) -> Result<()> {
    conn.execute(
        "INSERT INTO timeline (story_id, at, kind, actor, text) VALUES ($1, $2, $3, $4, $5)",
        &[&story.id, &us(at), &kind, &actor, &text],
    )?;
    super::users::audit(conn, &story.account_id, at, actor, kind, &story.id, text)
}

/// Records an entry on a story's timeline and in the audit log, as the system or an operator
/// (no account is given): under the story's account's lock, like every change to a story.
pub(crate) fn record_on_story(
    conn: &mut Client,
    id: &str,
    now: DateTime<Utc>,
    actor: &str,
    kind: &str,
    text: &str,
) -> Result<()> {
    let mut tx = conn.transaction()?;
    let story = locked_story(&mut tx, None, id)?;
    record(&mut tx, &story, now, actor, kind, text)?;
    tx.commit()?;
    Ok(())
}

pub(crate) fn update(
    conn: &mut Client,
    account_id: Option<&str>,
    id: &str,
    u: &StoryUpdate,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut tx = conn.transaction()?;
    update_in(&mut tx, account_id, id, u, actor, now)?;
    tx.commit()?;
    Ok(())
}

/// Applies one change, and a comment if there is one, to each story: each story all or
/// nothing, in a transaction of its own.
pub(crate) fn update_many(
    conn: &mut Client,
    account_id: Option<&str>,
    ids: &[String],
    u: &StoryUpdate,
    comment: Option<&str>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Vec<(String, BulkOutcome)>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let mut attempt = 1;
        let outcome = loop {
            let done = change_one(conn, account_id, id, u, comment, actor, now);
            match done {
                Ok(true) => break BulkOutcome::Changed,
                Ok(false) => break BulkOutcome::Unchanged,
                Err(StoreError::Conflict(why)) if why == RETRY && attempt < STORY_ATTEMPTS => {
                    crate::retried();
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(5 << attempt));
                }
                Err(StoreError::NotFound) => break BulkOutcome::Failed("no such story".into()),
                Err(StoreError::Invalid(why) | StoreError::Conflict(why)) => {
                    break BulkOutcome::Failed(why)
                }
                Err(e) => return Err(e),
            }
        };
        out.push((id.clone(), outcome));
    }
    Ok(out)
}

/// One story of a bulk change, in a transaction of its own, committed when nothing failed;
/// returns whether anything changed.
fn change_one(
    conn: &mut Client,
    account_id: Option<&str>,
    id: &str,
    u: &StoryUpdate,
    comment: Option<&str>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut tx = conn.transaction()?;
    let mut changed = !u.is_empty() && update_in(&mut tx, account_id, id, u, actor, now)?;
    if let Some(text) = comment {
        add_comment_in(&mut tx, account_id, id, actor, text, now)?;
        changed = true;
    }
    tx.commit()?;
    Ok(changed)
}

/// The user name an assignee stands for: a user of the account, or an operator. User names
/// compare without regard to ASCII case, as SQLite's NOCASE column compares them, through the
/// `lower(username)` index.
fn owner(conn: &mut impl GenericClient, account_id: &str, name: &str) -> Result<String> {
    conn.query_opt(
        "SELECT username FROM users WHERE lower(username) = $1
             AND (account_id = $2 OR account_id IS NULL)",
        &[&name.trim().to_ascii_lowercase(), &account_id],
    )?
    .map(|r| r.get(0))
    .ok_or_else(|| {
        StoreError::Invalid(format!(
            "assignee: no user {:?} may own stories of this account",
            name.trim()
        ))
    })
}

/// Applies an analyst's change inside a transaction; returns whether anything changed.
fn update_in(
    tx: &mut impl GenericClient,
    account_id: Option<&str>,
    id: &str,
    u: &StoryUpdate,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let story = locked_story(tx, account_id, id)?;
    let before = super::ingest::triage(tx, &story.id)?.ok_or(StoreError::NotFound)?;
    let mut u = u.clone();
    if let Some(Some(name)) = &u.assignee {
        u.assignee = Some(Some(owner(tx, &story.account_id, name)?));
    }
    let after = before
        .clone()
        .apply(&u, now)
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    if after == before {
        // Setting what is already set changes nothing: no new updated_at, no event.
        return Ok(false);
    }
    let Triage {
        status,
        verdict,
        severity,
        closed_at,
        close_reason,
        assignee,
    } = after;
    if status != story.status {
        let why = match (&close_reason, status) {
            (Some(r), Status::Closed) => format!(": {r}"),
            _ => String::new(),
        };
        record(
            tx,
            &story,
            now,
            actor,
            "status_changed",
            &format!("status changed from {} to {}{why}", story.status, status),
        )?;
    } else if close_reason != before.close_reason {
        record(
            tx,
            &story,
            now,
            actor,
            "close_reason_changed",
            &format!(
                "close reason: {}",
                close_reason.as_deref().unwrap_or("none")
            ),
        )?;
    }
    if verdict != story.verdict {
        let show = |v: Option<Verdict>| v.map_or("none", Verdict::as_str);
        record(
            tx,
            &story,
            now,
            actor,
            "verdict_changed",
            &format!(
                "verdict changed from {} to {}",
                show(story.verdict),
                show(verdict)
            ),
        )?;
    }
    if severity != story.severity {
        let show = |v: Option<Severity>| v.map_or("none", Severity::as_str);
        record(
            tx,
            &story,
            now,
            actor,
            "severity_changed",
            &format!(
                "severity changed from {} to {}",
                show(story.severity),
                show(severity)
            ),
        )?;
    }
    if assignee != before.assignee {
        let text = match (&before.assignee, &assignee) {
            (_, Some(to)) => format!("assigned to {to}"),
            (Some(from), None) => format!("unassigned (was {from})"),
            (None, None) => String::new(),
        };
        record(tx, &story, now, actor, "assignee_changed", &text)?;
    }
    tx.execute(
        "UPDATE stories SET status = $2, verdict = $3, severity = $4, closed_at = $5,
             updated_at = $6, close_reason = $7, assignee = $8
         WHERE id = $1",
        &[
            &story.id,
            &status.as_str(),
            &verdict.map_or("", Verdict::as_str),
            &severity.map_or("", Severity::as_str),
            &closed_at.map(us),
            &us(now),
            &close_reason,
            &assignee,
        ],
    )?;
    tx.execute(
        "INSERT INTO events (account_id, type, at, connector_id, story_id, incident_id, message, data)
         VALUES ($1, 'story_updated', $2, $3, $4, NULL, $5, $6)",
        &[
            &story.account_id,
            &us(now),
            &story.connector_id,
            &story.id,
            &format!("story updated by {actor}"),
            &serde_json::json!({
                "status": status, "verdict": verdict, "severity": severity,
                "assignee": assignee, "actor": actor
            })
            .to_string(),
        ],
    )?;
    Ok(true)
}

pub(crate) fn add_comment(
    conn: &mut Client,
    account_id: Option<&str>,
    story_id: &str,
    author: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<Comment> {
    let mut tx = conn.transaction()?;
    let comment = add_comment_in(&mut tx, account_id, story_id, author, text, now)?;
    tx.commit()?;
    Ok(comment)
}

/// Adds a comment inside a transaction. The account's lock keeps the count of a story's
/// comments true until the commit, so two nodes adding at once never pass the bound together.
fn add_comment_in(
    tx: &mut impl GenericClient,
    account_id: Option<&str>,
    story_id: &str,
    author: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<Comment> {
    let text = text.trim();
    if text.is_empty() {
        return Err(StoreError::Invalid(
            "text: a comment needs some text".into(),
        ));
    }
    if text.chars().count() > MAX_COMMENT_CHARS {
        return Err(StoreError::Invalid(format!(
            "text: a comment holds at most {MAX_COMMENT_CHARS} characters"
        )));
    }
    let story = locked_story(tx, account_id, story_id)?;
    let n: i64 = tx
        .query_one(
            "SELECT count(*) FROM comments WHERE story_id = $1",
            &[&story.id],
        )?
        .get(0);
    if n >= MAX_COMMENTS {
        return Err(StoreError::Conflict(format!(
            "a story holds at most {MAX_COMMENTS} comments"
        )));
    }
    let comment = Comment {
        id: new_id(),
        story_id: story.id.clone(),
        author: author.to_owned(),
        text: text.to_owned(),
        // As stored (microseconds), so the answer to the POST reads as every later GET does.
        created_at: ts(us(now)),
    };
    tx.execute(
        "INSERT INTO comments (id, story_id, author, text, created_at) VALUES ($1, $2, $3, $4, $5)",
        &[
            &comment.id,
            &comment.story_id,
            &comment.author,
            &comment.text,
            &us(now),
        ],
    )?;
    record(tx, &story, now, author, "comment_added", text)?;
    Ok(comment)
}

/// Deletes a comment. Only its author may; the deletion is recorded in the timeline and the
/// audit log, and the comment's text leaves the timeline with it.
pub(crate) fn delete_comment(
    conn: &mut Client,
    account_id: Option<&str>,
    story_id: &str,
    comment_id: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut tx = conn.transaction()?;
    let story = locked_story(&mut tx, account_id, story_id)?;
    let found = tx.query_opt(
        "SELECT author, text, created_at FROM comments WHERE id = $1 AND story_id = $2",
        &[&comment_id, &story.id],
    )?;
    let Some(found) = found else {
        return Err(StoreError::NotFound);
    };
    let (author, text, created_at): (String, String, i64) =
        (found.get(0), found.get(1), found.get(2));
    if author != actor {
        return Err(StoreError::Forbidden(
            "only the author of a comment may delete it".into(),
        ));
    }
    tx.execute("DELETE FROM comments WHERE id = $1", &[&comment_id])?;
    tx.execute(
        "DELETE FROM timeline WHERE seq = (SELECT seq FROM timeline
           WHERE story_id = $1 AND kind = 'comment_added' AND actor = $2 AND at = $3 AND text = $4
           ORDER BY seq LIMIT 1)",
        &[&story.id, &author, &created_at, &text],
    )?;
    tx.execute(
        "INSERT INTO timeline (story_id, at, kind, actor, text)
         VALUES ($1, $2, 'comment_deleted', $3, $4)",
        &[
            &story.id,
            &us(now),
            &actor,
            &format!("{actor} deleted a comment"),
        ],
    )?;
    super::users::audit(
        &mut tx,
        &story.account_id,
        now,
        actor,
        "comment_deleted",
        &story.id,
        &text,
    )?;
    tx.commit()?;
    Ok(())
}

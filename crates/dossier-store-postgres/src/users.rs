//! Web users, their sessions, and the audit log. Sessions live in the database, so every node
//! knows every session: a browser may be answered by any node.

use chrono::{DateTime, Utc};
use dossier_domain::access::Role;
use postgres::error::SqlState;
use postgres::{Client, GenericClient, Row};

use super::{new_id, ts, us};
use dossier_store::{AuditEntry, AuditQuery, Result, SessionRecord, StoreError, UserRecord};

const USER_COLUMNS: &str = "id, account_id, username, password_hash, roles, created_at";

fn user_row(r: &Row) -> UserRecord {
    let roles: String = r.get(4);
    UserRecord {
        id: r.get(0),
        account_id: r.get(1),
        username: r.get(2),
        password_hash: r.get(3),
        roles: roles.split(',').filter_map(Role::parse).collect(),
        created_at: ts(r.get(5)),
    }
}

fn taken(username: &str) -> StoreError {
    StoreError::Conflict(format!("username: {username:?} is taken"))
}

/// Creates a user. A user name is unique whatever its letter case, as in the SQLite store.
pub(crate) fn create_user(conn: &mut Client, u: &UserRecord) -> Result<UserRecord> {
    if let Some(account) = &u.account_id {
        super::admin::get_account(conn, account)
            .map_err(|_| StoreError::Invalid(format!("account {account} does not exist")))?;
    }
    if conn
        .query_opt(
            "SELECT id FROM users WHERE lower(username) = lower($1)",
            &[&u.username],
        )?
        .is_some()
    {
        return Err(taken(&u.username));
    }
    let mut user = u.clone();
    if user.id.is_empty() {
        user.id = new_id();
    }
    let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
    let inserted = conn.execute(
        "INSERT INTO users (id, account_id, username, password_hash, roles, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &user.id,
            &user.account_id,
            &user.username,
            &user.password_hash,
            &roles.join(","),
            &us(user.created_at),
        ],
    );
    match inserted {
        Ok(_) => Ok(user),
        // Taken between the check above and this insert (by another node, say).
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(taken(&user.username)),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn find_user(conn: &mut Client, username: &str) -> Result<UserRecord> {
    conn.query_opt(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE lower(username) = lower($1)"),
        &[&username],
    )?
    .map(|r| user_row(&r))
    .ok_or(StoreError::NotFound)
}

pub(crate) fn list_users(conn: &mut Client, account_id: Option<&str>) -> Result<Vec<UserRecord>> {
    Ok(conn
        .query(
            &format!(
                "SELECT {USER_COLUMNS} FROM users WHERE $1::text IS NULL OR account_id = $1
                 ORDER BY lower(username), username"
            ),
            &[&account_id],
        )?
        .iter()
        .map(user_row)
        .collect())
}

pub(crate) fn delete_user(conn: &mut Client, account_id: Option<&str>, id: &str) -> Result<()> {
    let n = conn.execute(
        "DELETE FROM users WHERE id = $1 AND ($2::text IS NULL OR account_id = $2)",
        &[&id, &account_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) fn setting(conn: &mut Client, user_id: &str, name: &str) -> Result<Option<String>> {
    Ok(conn
        .query_opt(
            "SELECT value FROM user_settings WHERE user_id = $1 AND name = $2",
            &[&user_id, &name],
        )?
        .map(|r| r.get(0)))
}

pub(crate) fn set_setting(
    conn: &mut Client,
    user_id: &str,
    name: &str,
    value: Option<&str>,
) -> Result<()> {
    let exists: bool = conn
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)",
            &[&user_id],
        )?
        .get(0);
    if !exists {
        return Err(StoreError::NotFound);
    }
    let done = match value {
        Some(v) => conn.execute(
            "INSERT INTO user_settings (user_id, name, value) VALUES ($1, $2, $3)
             ON CONFLICT (user_id, name) DO UPDATE SET value = excluded.value",
            &[&user_id, &name, &v],
        ),
        None => conn.execute(
            "DELETE FROM user_settings WHERE user_id = $1 AND name = $2",
            &[&user_id, &name],
        ),
    };
    match done {
        Ok(_) => Ok(()),
        // The user was deleted between the check and the write.
        Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => Err(StoreError::NotFound),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn create_session(conn: &mut Client, s: &SessionRecord) -> Result<()> {
    // Expired sessions go whenever a new one starts, so the table stays small.
    conn.execute(
        "DELETE FROM sessions WHERE expires_at < $1",
        &[&us(s.created_at)],
    )?;
    conn.execute(
        "INSERT INTO sessions (id_hash, user_id, csrf, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &s.id_hash,
            &s.user_id,
            &s.csrf,
            &us(s.created_at),
            &us(s.expires_at),
        ],
    )?;
    Ok(())
}

pub(crate) fn find_session(
    conn: &mut Client,
    id_hash: &str,
    now: DateTime<Utc>,
) -> Result<(SessionRecord, UserRecord)> {
    let row = conn
        .query_opt(
            "SELECT s.id_hash, s.user_id, s.csrf, s.created_at, s.expires_at,
                    u.id, u.account_id, u.username, u.password_hash, u.roles, u.created_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id_hash = $1 AND s.expires_at > $2",
            &[&id_hash, &us(now)],
        )?
        .ok_or(StoreError::NotFound)?;
    let roles: String = row.get(9);
    Ok((
        SessionRecord {
            id_hash: row.get(0),
            user_id: row.get(1),
            csrf: row.get(2),
            created_at: ts(row.get(3)),
            expires_at: ts(row.get(4)),
        },
        UserRecord {
            id: row.get(5),
            account_id: row.get(6),
            username: row.get(7),
            password_hash: row.get(8),
            roles: roles.split(',').filter_map(Role::parse).collect(),
            created_at: ts(row.get(10)),
        },
    ))
}

pub(crate) fn delete_session(conn: &mut Client, id_hash: &str) -> Result<()> {
    conn.execute("DELETE FROM sessions WHERE id_hash = $1", &[&id_hash])?;
    Ok(())
}

/// The lines a query matches, newest first. A line concerns a story when its target is one of
/// its account's stories (story changes and comments name the story as their target).
pub(crate) fn list_audit(conn: &mut Client, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
    let rows = conn.query(
        "SELECT a.seq, a.account_id, a.at, a.actor, a.action, a.target, a.detail, s.id
         FROM audit_log a
         LEFT JOIN stories s ON s.id = a.target AND s.account_id = a.account_id
         WHERE ($1::text IS NULL OR a.account_id = $1) AND ($2::bigint IS NULL OR a.seq < $2)
           AND ($3::text IS NULL OR a.actor = $3) AND ($4::text IS NULL OR a.action = $4)
           AND ($5::text IS NULL OR s.id = $5)
         ORDER BY a.seq DESC LIMIT $6",
        &[
            &q.account_id,
            &q.before,
            &q.actor,
            &q.action,
            &q.story_id,
            &i64::from(q.limit.clamp(1, 1000)),
        ],
    )?;
    Ok(rows
        .iter()
        .map(|r| AuditEntry {
            seq: r.get(0),
            account_id: r.get(1),
            at: ts(r.get(2)),
            actor: r.get(3),
            action: r.get(4),
            target: r.get(5),
            detail: r.get(6),
            story_id: r.get(7),
        })
        .collect())
}

/// Writes an audit line, on its own or inside a transaction that changes what it records.
pub(crate) fn audit(
    conn: &mut impl GenericClient,
    account_id: &str,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<()> {
    conn.execute(
        "INSERT INTO audit_log (account_id, at, actor, action, target, detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&account_id, &us(at), &actor, &action, &target, &detail],
    )?;
    Ok(())
}

/// How many failed sign-ins each key has had since `since`, in the order of `keys`.
pub(crate) fn sign_in_failures(
    conn: &mut Client,
    keys: &[String],
    since: DateTime<Utc>,
) -> Result<Vec<u64>> {
    let rows = conn.query(
        "SELECT key, count(*) FROM sign_in_failures WHERE key = ANY($1) AND at >= $2 GROUP BY key",
        &[&keys, &us(since)],
    )?;
    let counted: std::collections::HashMap<String, i64> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok(keys
        .iter()
        .map(|k| counted.get(k).map_or(0, |n| u64::try_from(*n).unwrap_or(0)))
        .collect())
}

/// Counts a failed sign-in under each key; what is older than `forget_before` goes.
pub(crate) fn add_sign_in_failure(
    conn: &mut Client,
    keys: &[String],
    at: DateTime<Utc>,
    forget_before: DateTime<Utc>,
) -> Result<()> {
    let mut tx = conn.transaction()?;
    tx.execute(
        "DELETE FROM sign_in_failures WHERE at < $1",
        &[&us(forget_before)],
    )?;
    tx.execute(
        "INSERT INTO sign_in_failures (key, at) SELECT k, $2 FROM unnest($1::text[]) AS k",
        &[&keys, &us(at)],
    )?;
    tx.commit()?;
    Ok(())
}

pub(crate) fn clear_sign_in_failures(conn: &mut Client, key: &str) -> Result<()> {
    conn.execute("DELETE FROM sign_in_failures WHERE key = $1", &[&key])?;
    Ok(())
}

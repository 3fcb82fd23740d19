//! Web users, their sessions, and the audit log.

use chrono::{DateTime, Utc};
use dossier_domain::access::Role;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{new_id, ts, us};
use dossier_store::{AuditEntry, AuditQuery, Result, SessionRecord, StoreError, UserRecord};

const USER_COLUMNS: &str = "id, account_id, username, password_hash, roles, created_at";

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    let roles: String = r.get(4)?;
    Ok(UserRecord {
        id: r.get(0)?,
        account_id: r.get(1)?,
        username: r.get(2)?,
        password_hash: r.get(3)?,
        roles: roles.split(',').filter_map(Role::parse).collect(),
        created_at: ts(r.get(5)?),
    })
}

pub(crate) fn create_user(conn: &Connection, u: &UserRecord) -> Result<UserRecord> {
    if let Some(account) = &u.account_id {
        super::admin::get_account(conn, account)
            .map_err(|_| StoreError::Invalid(format!("account {account} does not exist")))?;
    }
    let taken: Option<String> = conn
        .query_row(
            "SELECT id FROM users WHERE username = ?1",
            [&u.username],
            |r| r.get(0),
        )
        .optional()?;
    if taken.is_some() {
        return Err(StoreError::Conflict(format!(
            "username: {:?} is taken",
            u.username
        )));
    }
    let mut user = u.clone();
    if user.id.is_empty() {
        user.id = new_id();
    }
    let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
    let inserted = conn.execute(
        "INSERT INTO users (id, account_id, username, password_hash, roles, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            user.id,
            user.account_id,
            user.username,
            user.password_hash,
            roles.join(","),
            us(user.created_at)
        ],
    );
    match inserted {
        Ok(_) => Ok(user),
        // Taken between the check above and this insert.
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(StoreError::Conflict(format!(
                "username: {:?} is taken",
                user.username
            )))
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn find_user(conn: &Connection, username: &str) -> Result<UserRecord> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE username = ?1"
    ))?;
    Ok(st.query_row([username], user_row)?)
}

pub(crate) fn list_users(conn: &Connection, account_id: Option<&str>) -> Result<Vec<UserRecord>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE ?1 IS NULL OR account_id = ?1 ORDER BY username"
    ))?;
    let rows = st.query_map([account_id], user_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn delete_user(conn: &Connection, account_id: Option<&str>, id: &str) -> Result<()> {
    let n = conn.execute(
        "DELETE FROM users WHERE id = ?1 AND (?2 IS NULL OR account_id = ?2)",
        params![id, account_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) fn setting(conn: &Connection, user_id: &str, name: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT value FROM user_settings WHERE user_id = ?1 AND name = ?2",
            params![user_id, name],
            |r| r.get(0),
        )
        .optional()?)
}

pub(crate) fn set_setting(
    conn: &Connection,
    user_id: &str,
    name: &str,
    value: Option<&str>,
) -> Result<()> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1)",
        [user_id],
        |r| r.get(0),
    )?;
    if !exists {
        return Err(StoreError::NotFound);
    }
    match value {
        Some(v) => conn.execute(
            "INSERT INTO user_settings (user_id, name, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id, name) DO UPDATE SET value = excluded.value",
            params![user_id, name, v],
        )?,
        None => conn.execute(
            "DELETE FROM user_settings WHERE user_id = ?1 AND name = ?2",
            params![user_id, name],
        )?,
    };
    Ok(())
}

pub(crate) fn create_session(conn: &Connection, s: &SessionRecord) -> Result<()> {
    // Expired sessions go whenever a new one starts, so the table stays small.
    conn.execute(
        "DELETE FROM sessions WHERE expires_at < ?1",
        [us(s.created_at)],
    )?;
    conn.execute(
        "INSERT INTO sessions (id_hash, user_id, csrf, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![s.id_hash, s.user_id, s.csrf, us(s.created_at), us(s.expires_at)],
    )?;
    Ok(())
}

pub(crate) fn find_session(
    conn: &Connection,
    id_hash: &str,
    now: DateTime<Utc>,
) -> Result<(SessionRecord, UserRecord)> {
    let mut st = conn.prepare_cached(
        "SELECT s.id_hash, s.user_id, s.csrf, s.created_at, s.expires_at,
                u.id, u.account_id, u.username, u.password_hash, u.roles, u.created_at
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id_hash = ?1 AND s.expires_at > ?2",
    )?;
    Ok(st.query_row(params![id_hash, us(now)], |r| {
        let roles: String = r.get(9)?;
        Ok((
            SessionRecord {
                id_hash: r.get(0)?,
                user_id: r.get(1)?,
                csrf: r.get(2)?,
                created_at: ts(r.get(3)?),
                expires_at: ts(r.get(4)?),
            },
            UserRecord {
                id: r.get(5)?,
                account_id: r.get(6)?,
                username: r.get(7)?,
                password_hash: r.get(8)?,
                roles: roles.split(',').filter_map(Role::parse).collect(),
                created_at: ts(r.get(10)?),
            },
        ))
    })?)
}

pub(crate) fn delete_session(conn: &Connection, id_hash: &str) -> Result<()> {
    conn.execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])?;
    Ok(())
}

/// The lines a query matches, newest first. A line concerns a story when its target is one of
/// its account's stories (story changes and comments name the story as their target).
pub(crate) fn list_audit(conn: &Connection, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
    let mut st = conn.prepare_cached(
        "SELECT a.seq, a.account_id, a.at, a.actor, a.action, a.target, a.detail, s.id
         FROM audit_log a
         LEFT JOIN stories s ON s.id = a.target AND s.account_id = a.account_id
         WHERE (?1 IS NULL OR a.account_id = ?1) AND (?2 IS NULL OR a.seq < ?2)
           AND (?3 IS NULL OR a.actor = ?3) AND (?4 IS NULL OR a.action = ?4)
           AND (?5 IS NULL OR s.id = ?5)
         ORDER BY a.seq DESC LIMIT ?6",
    )?;
    let args = params![
        q.account_id,
        q.before,
        q.actor,
        q.action,
        q.story_id,
        q.limit.clamp(1, 1000)
    ];
    let rows = st.query_map(args, |r| {
        Ok(AuditEntry {
            seq: r.get(0)?,
            account_id: r.get(1)?,
            at: ts(r.get(2)?),
            actor: r.get(3)?,
            action: r.get(4)?,
            target: r.get(5)?,
            detail: r.get(6)?,
            story_id: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Writes an audit line that does not belong to a story (users, connectors).
pub(crate) fn audit(
    conn: &Connection,
    account_id: &str,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<()> {
    conn.execute(
        "INSERT INTO audit_log (account_id, at, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![account_id, us(at), actor, action, target, detail],
    )?;
    Ok(())
}

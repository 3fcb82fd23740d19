//! Accounts, API keys and connectors.

use chrono::{DateTime, Utc};
use dossier_domain::access::{Licence, Role};
use rusqlite::{params, Connection, Row};

use super::{new_id, opt_ts, ts, us};
use dossier_store::{
    Account, ApiKeyRecord, ConnectorRecord, ConnectorUpdate, HealthUpdate, NewConnector, Result,
    StoreError,
};

pub(crate) fn create_account(
    conn: &Connection,
    name: &str,
    licence: Licence,
    now: DateTime<Utc>,
) -> Result<Account> {
    let account = Account {
        id: new_id(),
        name: name.to_owned(),
        licence,
        created_at: now,
    };
    conn.execute(
        "INSERT INTO accounts (id, name, licence, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![account.id, account.name, licence.as_str(), us(now)],
    )?;
    Ok(account)
}

fn account_row(r: &Row<'_>) -> rusqlite::Result<Account> {
    let licence: String = r.get(2)?;
    Ok(Account {
        id: r.get(0)?,
        name: r.get(1)?,
        licence: Licence::parse(&licence).unwrap_or(Licence::None),
        created_at: ts(r.get(3)?),
    })
}

pub(crate) fn get_account(conn: &Connection, id: &str) -> Result<Account> {
    Ok(conn.query_row(
        "SELECT id, name, licence, created_at FROM accounts WHERE id = ?1",
        [id],
        account_row,
    )?)
}

pub(crate) fn list_accounts(conn: &Connection) -> Result<Vec<Account>> {
    let mut st =
        conn.prepare("SELECT id, name, licence, created_at FROM accounts ORDER BY created_at, id")?;
    let rows = st.query_map([], account_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn insert_api_key(conn: &Connection, key: &ApiKeyRecord) -> Result<()> {
    if let Some(account) = &key.account_id {
        get_account(conn, account)
            .map_err(|_| StoreError::Invalid(format!("account {account} does not exist")))?;
    }
    let roles: Vec<&str> = key.roles.iter().map(|r| r.as_str()).collect();
    conn.execute(
        "INSERT INTO api_keys (id, account_id, key_hash, roles, created_at, name)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            key.id,
            key.account_id,
            key.key_hash,
            roles.join(","),
            us(key.created_at),
            key.name
        ],
    )?;
    Ok(())
}

fn api_key_row(r: &Row<'_>) -> rusqlite::Result<ApiKeyRecord> {
    let roles: String = r.get(3)?;
    Ok(ApiKeyRecord {
        id: r.get(0)?,
        account_id: r.get(1)?,
        key_hash: r.get(2)?,
        roles: roles.split(',').filter_map(Role::parse).collect(),
        created_at: ts(r.get(4)?),
        name: r.get(5)?,
    })
}

pub(crate) fn find_api_key(conn: &Connection, key_hash: &str) -> Result<ApiKeyRecord> {
    Ok(conn.query_row(
        "SELECT id, account_id, key_hash, roles, created_at, name FROM api_keys WHERE key_hash = ?1",
        [key_hash],
        api_key_row,
    )?)
}

pub(crate) fn list_api_keys(
    conn: &Connection,
    account_id: Option<&str>,
) -> Result<Vec<ApiKeyRecord>> {
    let mut st = conn.prepare(
        "SELECT id, account_id, key_hash, roles, created_at, name FROM api_keys
         WHERE ?1 IS NULL OR account_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = st.query_map([account_id], api_key_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn delete_api_key(conn: &Connection, id: &str) -> Result<()> {
    match conn.execute("DELETE FROM api_keys WHERE id = ?1", [id])? {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

const CONNECTOR_COLUMNS: &str = "id, account_id, kind, name, description, tenant_url, token_enc,
    status, status_detail, last_success_at, token_expires_at, track_errors, write_back,
    created_at, updated_at, checkpoint, polls, errors, threats, generation, expiry_warned, config,
    response";

fn connector_row(r: &Row<'_>) -> rusqlite::Result<ConnectorRecord> {
    Ok(ConnectorRecord {
        id: r.get(0)?,
        account_id: r.get(1)?,
        kind: r.get(2)?,
        name: r.get(3)?,
        description: r.get(4)?,
        tenant_url: r.get(5)?,
        token_enc: r.get(6)?,
        status: r.get(7)?,
        status_detail: r.get(8)?,
        last_success_at: opt_ts(r.get(9)?),
        token_expires_at: opt_ts(r.get(10)?),
        track_errors: r.get(11)?,
        write_back: r.get(12)?,
        created_at: ts(r.get(13)?),
        updated_at: ts(r.get(14)?),
        checkpoint: r.get(15)?,
        polls: r.get::<_, i64>(16)?.try_into().unwrap_or_default(),
        errors: r.get::<_, i64>(17)?.try_into().unwrap_or_default(),
        threats: r.get::<_, i64>(18)?.try_into().unwrap_or_default(),
        generation: r.get(19)?,
        expiry_warned: r.get(20)?,
        config: r.get(21)?,
        response: r.get(22)?,
    })
}

pub(crate) fn create_connector(conn: &Connection, c: &NewConnector) -> Result<ConnectorRecord> {
    get_account(conn, &c.account_id)
        .map_err(|_| StoreError::Invalid(format!("account {} does not exist", c.account_id)))?;
    let id = new_id();
    conn.execute(
        "INSERT INTO connectors (id, account_id, kind, name, description, tenant_url, token_enc,
             track_errors, write_back, status, created_at, updated_at, config, response)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10, ?10, ?11, ?12)",
        params![
            id,
            c.account_id,
            c.kind,
            c.name,
            c.description,
            c.tenant_url,
            c.token_enc,
            c.track_errors,
            c.write_back,
            us(c.now),
            c.config,
            c.response
        ],
    )?;
    get_connector(conn, None, &id)
}

pub(crate) fn list_connectors(
    conn: &Connection,
    account_id: Option<&str>,
) -> Result<Vec<ConnectorRecord>> {
    let sql = format!(
        "SELECT {CONNECTOR_COLUMNS} FROM connectors WHERE (?1 IS NULL OR account_id = ?1)
         ORDER BY created_at, id"
    );
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map([account_id], connector_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn get_connector(
    conn: &Connection,
    account_id: Option<&str>,
    id: &str,
) -> Result<ConnectorRecord> {
    let sql = format!(
        "SELECT {CONNECTOR_COLUMNS} FROM connectors WHERE id = ?1 AND (?2 IS NULL OR account_id = ?2)"
    );
    Ok(conn.query_row(&sql, params![id, account_id], connector_row)?)
}

pub(crate) fn update_connector(
    conn: &Connection,
    account_id: Option<&str>,
    id: &str,
    u: &ConnectorUpdate,
) -> Result<ConnectorRecord> {
    let current = get_connector(conn, account_id, id)?;
    let (status, detail) = u
        .status
        .clone()
        .unwrap_or((current.status.clone(), current.status_detail.clone()));
    conn.execute(
        "UPDATE connectors SET name = ?2, description = ?3, tenant_url = ?4, token_enc = ?5,
             track_errors = ?6, write_back = ?7, status = ?8, status_detail = ?9,
             updated_at = ?10, generation = generation + 1,
             checkpoint = CASE WHEN ?11 THEN NULL ELSE checkpoint END,
             expiry_warned = CASE WHEN ?12 THEN 0 ELSE expiry_warned END,
             token_expires_at = CASE WHEN ?12 THEN NULL ELSE token_expires_at END,
             config = ?13, response = ?14
         WHERE id = ?1",
        params![
            id,
            u.name.as_ref().unwrap_or(&current.name),
            u.description.clone().unwrap_or(current.description.clone()),
            u.tenant_url.as_ref().unwrap_or(&current.tenant_url),
            u.token_enc.as_ref().unwrap_or(&current.token_enc),
            u.track_errors.unwrap_or(current.track_errors),
            u.write_back.unwrap_or(current.write_back),
            status,
            detail,
            us(u.now.unwrap_or(current.updated_at)),
            u.reset_checkpoint,
            // A new token: its expiry is learnt afresh, and so are its warnings.
            u.token_enc.is_some(),
            u.config.as_ref().unwrap_or(&current.config),
            u.response.unwrap_or(current.response),
        ],
    )?;
    get_connector(conn, account_id, id)
}

pub(crate) fn delete_connector(
    conn: &Connection,
    account_id: Option<&str>,
    id: &str,
) -> Result<()> {
    let n = conn.execute(
        "DELETE FROM connectors WHERE id = ?1 AND (?2 IS NULL OR account_id = ?2)",
        params![id, account_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) fn set_connector_health(conn: &Connection, id: &str, h: &HealthUpdate) -> Result<()> {
    let n = conn.execute(
        "UPDATE connectors SET status = COALESCE(?2, status),
             status_detail = CASE WHEN ?3 THEN ?4 ELSE status_detail END,
             last_success_at = COALESCE(?5, last_success_at),
             token_expires_at = CASE WHEN ?6 THEN ?7 ELSE token_expires_at END,
             polls = polls + ?8, errors = errors + ?9, checkpoint = COALESCE(?10, checkpoint),
             expiry_warned = COALESCE(?11, expiry_warned)
         WHERE id = ?1 AND (?12 IS NULL OR generation = ?12)",
        params![
            id,
            h.status,
            h.status_detail.is_some(),
            h.status_detail.clone().flatten(),
            h.last_success_at.map(us),
            h.token_expires_at.is_some(),
            h.token_expires_at.flatten().map(us),
            h.polls_inc,
            h.errors_inc,
            h.checkpoint,
            h.expiry_warned,
            h.generation,
        ],
    )?;
    match (n, h.generation) {
        (0, Some(_)) => Err(StoreError::LeaseLost),
        (0, None) => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

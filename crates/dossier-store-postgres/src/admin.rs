//! Accounts, API keys and connectors.

use chrono::{DateTime, Utc};
use dossier_domain::access::{Licence, Role};
use postgres::{Client, Row};

use super::{new_id, opt_ts, ts, us};
use dossier_store::{
    Account, ApiKeyRecord, ConnectorRecord, ConnectorUpdate, HealthUpdate, NewConnector, Result,
    StoreError,
};

pub(crate) fn create_account(
    conn: &mut Client,
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
        "INSERT INTO accounts (id, name, licence, created_at) VALUES ($1, $2, $3, $4)",
        &[&account.id, &account.name, &licence.as_str(), &us(now)],
    )?;
    Ok(account)
}

fn account_row(r: &Row) -> Account {
    let licence: String = r.get(2);
    Account {
        id: r.get(0),
        name: r.get(1),
        licence: Licence::parse(&licence).unwrap_or(Licence::None),
        created_at: ts(r.get(3)),
    }
}

pub(crate) fn get_account(conn: &mut Client, id: &str) -> Result<Account> {
    conn.query_opt(
        "SELECT id, name, licence, created_at FROM accounts WHERE id = $1",
        &[&id],
    )?
    .map(|r| account_row(&r))
    .ok_or(StoreError::NotFound)
}

pub(crate) fn list_accounts(conn: &mut Client) -> Result<Vec<Account>> {
    Ok(conn
        .query(
            "SELECT id, name, licence, created_at FROM accounts ORDER BY created_at, id",
            &[],
        )?
        .iter()
        .map(account_row)
        .collect())
}

pub(crate) fn insert_api_key(conn: &mut Client, key: &ApiKeyRecord) -> Result<()> {
    if let Some(account) = &key.account_id {
        get_account(conn, account)
            .map_err(|_| StoreError::Invalid(format!("account {account} does not exist")))?;
    }
    let roles: Vec<&str> = key.roles.iter().map(|r| r.as_str()).collect();
    conn.execute(
        "INSERT INTO api_keys (id, account_id, key_hash, roles, created_at, name)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &key.id,
            &key.account_id,
            &key.key_hash,
            &roles.join(","),
            &us(key.created_at),
            &key.name,
        ],
    )?;
    Ok(())
}

fn api_key_row(r: &Row) -> ApiKeyRecord {
    let roles: String = r.get(3);
    ApiKeyRecord {
        id: r.get(0),
        account_id: r.get(1),
        key_hash: r.get(2),
        roles: roles.split(',').filter_map(Role::parse).collect(),
        created_at: ts(r.get(4)),
        name: r.get(5),
    }
}

pub(crate) fn find_api_key(conn: &mut Client, key_hash: &str) -> Result<ApiKeyRecord> {
    conn.query_opt(
        "SELECT id, account_id, key_hash, roles, created_at, name FROM api_keys WHERE key_hash = $1",
        &[&key_hash],
    )?
    .map(|r| api_key_row(&r))
    .ok_or(StoreError::NotFound)
}

pub(crate) fn list_api_keys(
    conn: &mut Client,
    account_id: Option<&str>,
) -> Result<Vec<ApiKeyRecord>> {
    Ok(conn
        .query(
            "SELECT id, account_id, key_hash, roles, created_at, name FROM api_keys
             WHERE $1::text IS NULL OR account_id = $1 ORDER BY created_at, id",
            &[&account_id],
        )?
        .iter()
        .map(api_key_row)
        .collect())
}

pub(crate) fn delete_api_key(conn: &mut Client, id: &str) -> Result<()> {
    match conn.execute("DELETE FROM api_keys WHERE id = $1", &[&id])? {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

const CONNECTOR_COLUMNS: &str = "id, account_id, kind, name, description, tenant_url, token_enc,
    status, status_detail, last_success_at, token_expires_at, track_errors, write_back,
    created_at, updated_at, checkpoint, polls, errors, threats, generation, expiry_warned, config,
    response";

fn count(r: &Row, i: usize) -> u64 {
    r.get::<_, i64>(i).try_into().unwrap_or_default()
}

fn connector_row(r: &Row) -> ConnectorRecord {
    ConnectorRecord {
        id: r.get(0),
        account_id: r.get(1),
        kind: r.get(2),
        name: r.get(3),
        description: r.get(4),
        tenant_url: r.get(5),
        token_enc: r.get(6),
        status: r.get(7),
        status_detail: r.get(8),
        last_success_at: opt_ts(r.get(9)),
        token_expires_at: opt_ts(r.get(10)),
        track_errors: r.get::<_, i64>(11) != 0,
        write_back: r.get::<_, i64>(12) != 0,
        created_at: ts(r.get(13)),
        updated_at: ts(r.get(14)),
        checkpoint: r.get(15),
        polls: count(r, 16),
        errors: count(r, 17),
        threats: count(r, 18),
        generation: r.get(19),
        expiry_warned: r.get(20),
        config: r.get(21),
        response: r.get::<_, i64>(22) != 0,
    }
}

pub(crate) fn create_connector(conn: &mut Client, c: &NewConnector) -> Result<ConnectorRecord> {
    get_account(conn, &c.account_id)
        .map_err(|_| StoreError::Invalid(format!("account {} does not exist", c.account_id)))?;
    let id = new_id();
    conn.execute(
        "INSERT INTO connectors (id, account_id, kind, name, description, tenant_url, token_enc,
             track_errors, write_back, status, created_at, updated_at, config, response)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $10, $11, $12)",
        &[
            &id,
            &c.account_id,
            &c.kind,
            &c.name,
            &c.description,
            &c.tenant_url,
            &c.token_enc,
            &i64::from(c.track_errors),
            &i64::from(c.write_back),
            &us(c.now),
            &c.config,
            &i64::from(c.response),
        ],
    )?;
    get_connector(conn, None, &id)
}

pub(crate) fn list_connectors(
    conn: &mut Client,
    account_id: Option<&str>,
) -> Result<Vec<ConnectorRecord>> {
    let sql = format!(
        "SELECT {CONNECTOR_COLUMNS} FROM connectors WHERE ($1::text IS NULL OR account_id = $1)
         ORDER BY created_at, id"
    );
    Ok(conn
        .query(&sql, &[&account_id])?
        .iter()
        .map(connector_row)
        .collect())
}

pub(crate) fn get_connector(
    conn: &mut Client,
    account_id: Option<&str>,
    id: &str,
) -> Result<ConnectorRecord> {
    let sql = format!(
        "SELECT {CONNECTOR_COLUMNS} FROM connectors
         WHERE id = $1 AND ($2::text IS NULL OR account_id = $2)"
    );
    conn.query_opt(&sql, &[&id, &account_id])?
        .map(|r| connector_row(&r))
        .ok_or(StoreError::NotFound)
}

pub(crate) fn update_connector(
    conn: &mut Client,
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
        "UPDATE connectors SET name = $2, description = $3, tenant_url = $4, token_enc = $5,
             track_errors = $6, write_back = $7, status = $8, status_detail = $9,
             updated_at = $10, generation = generation + 1,
             checkpoint = CASE WHEN $11 THEN NULL ELSE checkpoint END,
             expiry_warned = CASE WHEN $12 THEN 0 ELSE expiry_warned END,
             token_expires_at = CASE WHEN $12 THEN NULL ELSE token_expires_at END,
             config = $13, response = $14
         WHERE id = $1",
        &[
            &id,
            u.name.as_ref().unwrap_or(&current.name),
            &u.description.clone().unwrap_or(current.description.clone()),
            u.tenant_url.as_ref().unwrap_or(&current.tenant_url),
            u.token_enc.as_ref().unwrap_or(&current.token_enc),
            &i64::from(u.track_errors.unwrap_or(current.track_errors)),
            &i64::from(u.write_back.unwrap_or(current.write_back)),
            &status,
            &detail,
            &us(u.now.unwrap_or(current.updated_at)),
            &u.reset_checkpoint,
            // A new token: its expiry is learnt afresh, and so are its warnings.
            &u.token_enc.is_some(),
            u.config.as_ref().unwrap_or(&current.config),
            &i64::from(u.response.unwrap_or(current.response)),
        ],
    )?;
    get_connector(conn, account_id, id)
}

pub(crate) fn delete_connector(
    conn: &mut Client,
    account_id: Option<&str>,
    id: &str,
) -> Result<()> {
    let n = conn.execute(
        "DELETE FROM connectors WHERE id = $1 AND ($2::text IS NULL OR account_id = $2)",
        &[&id, &account_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

fn inc(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn set_connector_health(conn: &mut Client, id: &str, h: &HealthUpdate) -> Result<()> {
    let n = conn.execute(
        "UPDATE connectors SET status = COALESCE($2, status),
             status_detail = CASE WHEN $3 THEN $4 ELSE status_detail END,
             last_success_at = COALESCE($5, last_success_at),
             token_expires_at = CASE WHEN $6 THEN $7 ELSE token_expires_at END,
             polls = polls + $8, errors = errors + $9, checkpoint = COALESCE($10, checkpoint),
             expiry_warned = COALESCE($11, expiry_warned)
         WHERE id = $1 AND ($12::bigint IS NULL OR generation = $12)",
        &[
            &id,
            &h.status,
            &h.status_detail.is_some(),
            &h.status_detail.clone().flatten(),
            &h.last_success_at.map(us),
            &h.token_expires_at.is_some(),
            &h.token_expires_at.flatten().map(us),
            &inc(h.polls_inc),
            &inc(h.errors_inc),
            &h.checkpoint,
            &h.expiry_warned,
            &h.generation,
        ],
    )?;
    match (n, h.generation) {
        (0, Some(_)) => Err(StoreError::LeaseLost),
        (0, None) => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

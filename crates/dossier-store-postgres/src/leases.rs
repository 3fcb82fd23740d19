//! Leases: which node runs which connector.
//!
//! Each round (see [`dossier_store::Store::lease_connectors`]) is a few statements, each
//! atomic on its own: the node's heartbeat, the renewal of what it holds, giving up what is
//! past its share, and taking free or expired leases. Taking one bumps the connector's
//! generation in the same statement: that is the fencing token, checked by every commit of a
//! page and every health write in their own transactions, so a node that lost a lease cannot
//! write for it even if it does not know yet. Every time is the database's clock.

use std::time::Duration;

use postgres::Client;

use dossier_store::Result;

/// The database's clock, in microseconds since the epoch.
fn db_now(conn: &mut Client) -> Result<i64> {
    Ok(conn
        .query_one(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
            &[],
        )?
        .get(0))
}

/// What names a connector's tenant, for keeping a tenant's connectors on one node: its kind,
/// base URL and fields that are not secret (a Defender tenant and client id, a Falcon member
/// CID). Connectors of one token always agree on it.
const TENANT: &str = "c.kind || ' ' || c.tenant_url || ' ' || c.config";

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// One round of `node`'s leases; returns the connectors it holds after it.
pub(crate) fn round(conn: &mut Client, node: &str, ttl: Duration) -> Result<Vec<String>> {
    let now = db_now(conn)?;
    let expires = now.saturating_add(micros(ttl));
    conn.execute(
        "INSERT INTO nodes (id, started_at, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at",
        &[&node, &now, &expires],
    )?;
    // Nodes gone for a while are forgotten; their leases expired long ago.
    conn.execute(
        "DELETE FROM nodes WHERE expires_at < $1",
        &[&now.saturating_sub(micros(ttl) * 10)],
    )?;
    // Only a lease that has not expired is renewed: one that expired may have been taken, and
    // one that was not is taken again below, under a new fence.
    let mut held: Vec<(String, String)> = conn
        .query(
            &format!(
                "WITH renewed AS (
                     UPDATE connector_leases SET expires_at = $3
                     WHERE owner = $1 AND expires_at >= $2 RETURNING connector_id)
                 SELECT c.id, {TENANT} FROM renewed r JOIN connectors c ON c.id = r.connector_id"
            ),
            &[&node, &now, &expires],
        )?
        .iter()
        .map(|r| (r.get(1), r.get(0)))
        .collect();
    held.sort();

    // Its share: the connectors over the live nodes, the remainder going one each to the
    // first nodes in the order of their ids, so that shares add up to the connectors.
    let row = conn.query_one(
        "SELECT (SELECT count(*) FROM nodes WHERE expires_at >= $1),
                (SELECT count(*) FROM nodes WHERE expires_at >= $1 AND id < $2),
                (SELECT count(*) FROM connectors)",
        &[&now, &node],
    )?;
    let (live, rank, connectors): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    let live = live.max(1);
    let share = connectors / live + i64::from(rank < connectors % live);
    let share = usize::try_from(share).unwrap_or(0);

    if held.len() > share {
        // Whole tenants are given up, the last first, while the node stays within its share
        // (a tenant of several connectors that would take it below is kept, or two nodes
        // would pass it back and forth).
        let mut excess = Vec::new();
        while held.len() > share {
            let Some((tenant, _)) = held.last().cloned() else {
                break;
            };
            let size = held.iter().filter(|(t, _)| *t == tenant).count();
            if held.len() - size < share {
                break;
            }
            while held.last().is_some_and(|(t, _)| *t == tenant) {
                if let Some((_, id)) = held.pop() {
                    excess.push(id);
                }
            }
        }
        if !excess.is_empty() {
            conn.execute(
                "DELETE FROM connector_leases WHERE owner = $1 AND connector_id = ANY($2)",
                &[&node, &excess],
            )?;
            tracing::info!(
                node,
                given_up = excess.len(),
                share,
                "connectors given up to other nodes"
            );
        }
    }
    // Free connectors (no lease, or an expired one) are locked as they are chosen, and those
    // another node is choosing at the same moment are skipped, so two nodes never take the
    // same one; the conflict clause keeps a live lease whatever happened between. A tenant's
    // connectors go to one node: those of a tenant this node holds are taken whatever its
    // share, and none of a tenant another live node holds, so that a tenant's token is paced
    // by one node as one.
    let want = i64::try_from(share.saturating_sub(held.len())).unwrap_or(0);
    let mine: Vec<&str> = held.iter().map(|(t, _)| t.as_str()).collect();
    let taken: Vec<String> = conn
        .query(
            &format!(
                "WITH free AS (
                     SELECT c.id, {TENANT} AS tenant FROM connectors c
                     LEFT JOIN connector_leases l ON l.connector_id = c.id
                     WHERE (l.connector_id IS NULL OR l.expires_at < $2)
                       AND NOT EXISTS (
                           SELECT 1 FROM connector_leases o JOIN connectors oc ON oc.id = o.connector_id
                           WHERE o.owner <> $1 AND o.expires_at >= $2
                             AND oc.kind = c.kind AND oc.tenant_url = c.tenant_url
                             AND oc.config = c.config)
                     ORDER BY ({TENANT}) = ANY($5) DESC, {TENANT}, c.id
                     FOR UPDATE OF c SKIP LOCKED
                 ), chosen AS (
                     SELECT id FROM free
                     WHERE tenant = ANY($5)
                        OR tenant IN (SELECT DISTINCT tenant FROM free WHERE NOT tenant = ANY($5)
                                      ORDER BY tenant LIMIT $4)
                 ), taken AS (
                     INSERT INTO connector_leases (connector_id, owner, expires_at)
                     SELECT id, $1, $3 FROM chosen
                     ON CONFLICT (connector_id) DO UPDATE
                         SET owner = excluded.owner, expires_at = excluded.expires_at
                         WHERE connector_leases.expires_at < $2
                     RETURNING connector_id
                 )
                 UPDATE connectors SET generation = generation + 1
                 WHERE id IN (SELECT connector_id FROM taken) RETURNING id"
            ),
            &[&node, &now, &expires, &want, &mine],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !taken.is_empty() {
        tracing::info!(node, taken = taken.len(), share, "connectors taken");
    }
    let mut held: Vec<String> = held.into_iter().map(|(_, id)| id).chain(taken).collect();
    held.sort();
    Ok(held)
}

/// Gives up `node`'s leases and its heartbeat.
pub(crate) fn release(conn: &mut Client, node: &str) -> Result<()> {
    conn.execute("DELETE FROM connector_leases WHERE owner = $1", &[&node])?;
    conn.execute("DELETE FROM nodes WHERE id = $1", &[&node])?;
    Ok(())
}

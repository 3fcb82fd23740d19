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
    let mut held: Vec<String> = conn
        .query(
            "UPDATE connector_leases SET expires_at = $3
             WHERE owner = $1 AND expires_at >= $2 RETURNING connector_id",
            &[&node, &now, &expires],
        )?
        .iter()
        .map(|r| r.get(0))
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
        let excess = held.split_off(share);
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
    } else if held.len() < share {
        let want = i64::try_from(share - held.len()).unwrap_or(0);
        // Free connectors (no lease, or an expired one) are locked as they are chosen, and
        // those another node is choosing at the same moment are skipped, so two nodes never
        // take the same one; the conflict clause keeps a live lease whatever happened between.
        let taken: Vec<String> = conn
            .query(
                "WITH free AS (
                     SELECT c.id FROM connectors c
                     LEFT JOIN connector_leases l ON l.connector_id = c.id
                     WHERE l.connector_id IS NULL OR l.expires_at < $2
                     ORDER BY c.id LIMIT $4
                     FOR UPDATE OF c SKIP LOCKED
                 ), taken AS (
                     INSERT INTO connector_leases (connector_id, owner, expires_at)
                     SELECT id, $1, $3 FROM free
                     ON CONFLICT (connector_id) DO UPDATE
                         SET owner = excluded.owner, expires_at = excluded.expires_at
                         WHERE connector_leases.expires_at < $2
                     RETURNING connector_id
                 )
                 UPDATE connectors SET generation = generation + 1
                 WHERE id IN (SELECT connector_id FROM taken) RETURNING id",
                &[&node, &now, &expires, &want],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !taken.is_empty() {
            tracing::info!(node, taken = taken.len(), share, "connectors taken");
        }
        held.extend(taken);
        held.sort();
    }
    Ok(held)
}

/// Gives up `node`'s leases and its heartbeat.
pub(crate) fn release(conn: &mut Client, node: &str) -> Result<()> {
    conn.execute("DELETE FROM connector_leases WHERE owner = $1", &[&node])?;
    conn.execute("DELETE FROM nodes WHERE id = $1", &[&node])?;
    Ok(())
}

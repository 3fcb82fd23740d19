//! Synthetic stories for the story-list benchmark: a million stories cannot be ingested in a
//! benchmark's time budget, and the list query only reads the stories table.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use postgres::types::ToSql;
use rand::{Rng, SeedableRng};

use super::{us, PostgresStore};
use dossier_domain::Producer;
use dossier_store::Result;

const STATUSES: &[&str] = &[
    "open",
    "open",
    "open",
    "pending_analysis",
    "monitoring",
    "closed",
    "reopened",
];
const VERDICTS: &[&str] = &[
    "",
    "",
    "",
    "suspicious",
    "malicious",
    "benign",
    "informational",
];
const NAMES: &[&str] = &[
    "mimikatz.exe",
    "invoice.pdf.exe",
    "setup.exe",
    "powershell.exe",
    "eicar.com",
    "svchost.exe",
];

/// The values each story binds.
const PER_ROW: usize = 19;

/// Stories per INSERT: one round trip per thousand stories, not per story, and well under the
/// 65,535 parameters a statement may have.
const BATCH: usize = 1000;

/// An INSERT of `rows` stories, each of [`PER_ROW`] parameters.
fn insert_sql(rows: usize) -> String {
    let mut sql = "INSERT INTO stories (id, account_id, producer, engine_type, vendor, story_key,
             indication, status, verdict, severity, criticality, criticality_detail,
             created_at, updated_at, first_signal_at, last_signal_at, incident_count,
             agent_uuid, device_name, os, sha1, file_name, file_hash, mitigation, search)
         VALUES "
        .to_owned();
    for row in 0..rows {
        let p = |n: usize| format!("${}", row * PER_ROW + n);
        if row > 0 {
            sql.push_str(", ");
        }
        let _ = write!(
            sql,
            "({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, '{{\"score\":5,\"reasons\":[]}}', {}, {}, \
             {}, {}, {}, {}, {}, 'Windows 11', {}, {}, {}, {}, {})",
            p(1),
            p(2),
            p(17),
            p(18),
            p(19),
            p(3),
            p(4),
            p(5),
            p(6),
            p(7),
            p(8),
            p(9),
            p(10),
            p(9),
            p(10),
            p(11),
            p(12),
            p(13),
            p(14),
            p(4),
            p(14),
            p(15),
            p(16),
        );
    }
    sql
}

impl PostgresStore {
    /// Inserts `n` synthetic stories into `account_id`, updated over the 90 days before `now`,
    /// of the `producers` in turn. For benchmarks only: they have no incidents behind them.
    /// The stories are those the SQLite store makes (the same random sequence), so the two
    /// stores are benchmarked on the same data.
    ///
    /// # Errors
    /// Fails on a database error.
    pub async fn seed_synthetic_stories(
        &self,
        account_id: &str,
        n: u64,
        now: DateTime<Utc>,
        producers: &[Producer],
    ) -> Result<()> {
        if producers.is_empty() {
            return Err(dossier_store::StoreError::Invalid(
                "synthetic stories need a producer".into(),
            ));
        }
        let account = account_id.to_owned();
        let producers = producers.to_vec();
        self.write(move |conn| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(42);
            let span = 90 * 24 * 3600 * 1_000_000i64;
            let mut tx = conn.transaction()?;
            // Stories of an account are written under its lock, these as any others.
            crate::lock_account(&mut tx, &account)?;
            let full = tx.prepare(&insert_sql(BATCH))?;
            let mut batch: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(BATCH * PER_ROW);
            for i in 0..n {
                let updated = us(now) - rng.gen_range(0..span);
                let created = updated - rng.gen_range(0..span / 9);
                let agent = format!("{:032x}", rng.gen_range(0..50_000u64));
                let sha1 = format!("{:040x}", rng.gen_range(0..200_000u64));
                let name = NAMES[rng.gen_range(0..NAMES.len())];
                let verdict = VERDICTS[rng.gen_range(0..VERDICTS.len())];
                let severity = if verdict == "malicious" { "high" } else { "" };
                let device = format!("host-{}", &agent[26..]);
                let producer = producers[usize::try_from(i).unwrap_or_default() % producers.len()];
                // Drawn in the order the SQLite store draws them, as the same types (its
                // integer literals are `i32`), so the sequence is the same.
                let status = STATUSES[rng.gen_range(0..STATUSES.len())];
                let criticality = i64::from(rng.gen_range(1..=10i32));
                let incident_count = i64::from(rng.gen_range(1..20i32));
                let mitigation = if rng.gen_bool(0.7) {
                    "mitigated"
                } else {
                    "not_mitigated"
                };
                let search = format!("{name} {device} {agent} {sha1}");
                let row: [Box<dyn ToSql + Sync>; PER_ROW] = [
                    Box::new(format!("syn{i:021}")),
                    Box::new(account.clone()),
                    Box::new(format!("hash:{agent}:{sha1}")),
                    Box::new(name),
                    Box::new(status),
                    Box::new(verdict),
                    Box::new(severity),
                    Box::new(criticality),
                    Box::new(created),
                    Box::new(updated),
                    Box::new(incident_count),
                    Box::new(agent),
                    Box::new(device),
                    Box::new(sha1),
                    Box::new(mitigation),
                    Box::new(search),
                    Box::new(producer.as_str()),
                    Box::new(producer.engine_type()),
                    Box::new(producer.vendor()),
                ];
                batch.extend(row);
                if batch.len() == BATCH * PER_ROW {
                    tx.execute(&full, &params(&batch))?;
                    batch.clear();
                }
            }
            if !batch.is_empty() {
                tx.execute(&insert_sql(batch.len() / PER_ROW), &params(&batch))?;
            }
            tx.commit()?;
            // The planner's statistics, as a database that grew over months would have them.
            conn.batch_execute("ANALYZE stories")?;
            Ok(())
        })
        .await
    }
}

fn params(values: &[Box<dyn ToSql + Sync>]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(AsRef::as_ref).collect()
}

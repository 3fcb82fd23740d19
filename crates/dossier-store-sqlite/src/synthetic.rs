//! Synthetic stories for the story-list benchmark: a million stories cannot be ingested in a
//! benchmark's time budget, and the list query only reads the stories table.

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use rusqlite::params;

use super::{us, SqliteStore};
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

impl SqliteStore {
    /// Inserts `n` synthetic stories into `account_id`, updated over the 90 days before `now`,
    /// of the `producers` in turn. For benchmarks only: they have no incidents behind them.
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
            let tx = conn.transaction()?;
            {
                let mut st = tx.prepare(
                    "INSERT INTO stories (id, account_id, producer, engine_type, vendor, story_key,
                         indication, status, verdict, severity, criticality, criticality_detail,
                         created_at, updated_at, first_signal_at, last_signal_at, incident_count,
                         agent_uuid, device_name, os, sha1, file_name, file_hash, mitigation, search)
                     VALUES (?1, ?2, ?17, ?18, ?19, ?3, ?4, ?5, ?6, ?7, ?8,
                         '{\"score\":5,\"reasons\":[]}', ?9, ?10, ?9, ?10, ?11, ?12, ?13, 'Windows 11',
                         ?14, ?4, ?14, ?15, ?16)",
                )?;
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
                    st.execute(params![
                        format!("syn{i:021}"),
                        account,
                        format!("hash:{agent}:{sha1}"),
                        name,
                        STATUSES[rng.gen_range(0..STATUSES.len())],
                        verdict,
                        severity,
                        rng.gen_range(1..=10),
                        created,
                        updated,
                        rng.gen_range(1..20),
                        agent,
                        device,
                        sha1,
                        if rng.gen_bool(0.7) { "mitigated" } else { "not_mitigated" },
                        format!("{name} {device} {agent} {sha1}"),
                        producer.as_str(),
                        producer.engine_type(),
                        producer.vendor(),
                    ])?;
                }
            }
            tx.commit()?;
            conn.execute_batch("ANALYZE")?;
            // A million stories written in one transaction leave a WAL of about a gigabyte,
            // which a database that grew over months does not keep (the writer restarts it past
            // 1 GiB, and the checkpoint thread copies it back meanwhile): until it is copied back, reads are served from it, each reader
            // connection caching its own copy of the pages. The seed ends as such a database
            // would be.
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }
}

//! The floor: parse the same JSON and insert it as raw rows into SQLite, with no HTTP and no
//! correlation. Ingest is measured against it.

use std::time::Instant;

use rusqlite::params;

/// Returns the floor's threats per second.
pub async fn run(pages: &[Vec<u8>]) -> anyhow::Result<f64> {
    let pages = pages.to_vec();
    tokio::task::spawn_blocking(move || -> anyhow::Result<f64> {
        let dir = tempfile::tempdir()?;
        let mut conn = rusqlite::Connection::open(dir.path().join("floor.db"))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
             CREATE TABLE raw (id TEXT PRIMARY KEY, updated_at TEXT, body TEXT NOT NULL);",
        )?;
        let started = Instant::now();
        let mut n = 0u64;
        for page in &pages {
            let v: serde_json::Value = serde_json::from_slice(page)?;
            let tx = conn.transaction()?;
            {
                let mut st = tx.prepare_cached(
                    "INSERT OR REPLACE INTO raw (id, updated_at, body) VALUES (?1, ?2, ?3)",
                )?;
                for t in v["data"].as_array().map_or(&[][..], Vec::as_slice) {
                    st.execute(params![
                        t["id"].as_str().unwrap_or_default(),
                        t["updated"].as_str().unwrap_or_default(),
                        t["record"].to_string()
                    ])?;
                    n += 1;
                }
            }
            tx.commit()?;
        }
        Ok(n as f64 / started.elapsed().as_secs_f64())
    })
    .await?
}

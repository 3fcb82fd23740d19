//! The account's file identities (`dossier_domain::files`), kept as the incidents that link a
//! file's names arrive.
//!
//! `file_aliases` maps each name of a file known by more than one to the file's identity; a
//! hash with no row is its own identity. A story's `file_hash` column holds the identity of its
//! file, so the outbreak count (the distinct devices with a story of the file) and the stale
//! tier lookup read one index range per file, whichever producer named it how.
//!
//! Linking two files merges them: the rows and stories of the name that lost move to the
//! preferred one, whose stories then have their outbreak tier checked again.

use std::collections::{BTreeSet, HashMap, HashSet};

use dossier_domain::files::preferred;
use rusqlite::{params, OptionalExtension, Transaction};

use dossier_store::Result;

/// The identity `file_aliases` holds for a hash, if it holds one.
fn stored(tx: &Transaction<'_>, account_id: &str, hash: &str) -> Result<Option<String>> {
    let mut st =
        tx.prepare_cached("SELECT file_id FROM file_aliases WHERE account_id = ?1 AND hash = ?2")?;
    Ok(st
        .query_row(params![account_id, hash], |r| r.get(0))
        .optional()?)
}

/// Learns that each (SHA-1, SHA-256) pair names one file. Returns the identities of files
/// that took in stories of another name: their outbreak tiers must be checked again.
pub(crate) fn learn<'a>(
    tx: &Transaction<'_>,
    account_id: &str,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<BTreeSet<String>> {
    let mut recount = BTreeSet::new();
    let mut seen = HashSet::new();
    for (sha1, sha256) in pairs {
        if sha1.is_empty() || sha256.is_empty() || !seen.insert((sha1, sha256)) {
            continue;
        }
        let (a, b) = (
            stored(tx, account_id, sha1)?,
            stored(tx, account_id, sha256)?,
        );
        if a.is_some() && a == b {
            continue;
        }
        let (ia, ib) = (a.as_deref().unwrap_or(sha1), b.as_deref().unwrap_or(sha256));
        let new = preferred(ia, ib).to_owned();
        for old in [ia, ib] {
            if old == new {
                continue;
            }
            let mut st = tx.prepare_cached(
                "UPDATE file_aliases SET file_id = ?3 WHERE account_id = ?1 AND file_id = ?2",
            )?;
            st.execute(params![account_id, old, new])?;
            let mut st = tx.prepare_cached(
                "UPDATE stories SET file_hash = ?3 WHERE account_id = ?1 AND file_hash = ?2",
            )?;
            if st.execute(params![account_id, old, new])? > 0 {
                recount.insert(new.clone());
            }
        }
        let mut st = tx.prepare_cached(
            "INSERT INTO file_aliases (account_id, hash, file_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (account_id, hash) DO UPDATE SET file_id = excluded.file_id",
        )?;
        for h in [sha1, sha256] {
            st.execute(params![account_id, h, new])?;
        }
    }
    Ok(recount)
}

/// The file identities of one account, looked up once per hash.
pub(crate) struct Identities<'a> {
    account_id: &'a str,
    known: HashMap<String, String>,
}

impl<'a> Identities<'a> {
    pub(crate) fn of(account_id: &'a str) -> Self {
        Self {
            account_id,
            known: HashMap::new(),
        }
    }

    /// The identity of the file a hash names (`""` stays `""`: no file).
    pub(crate) fn get(&mut self, tx: &Transaction<'_>, hash: &str) -> Result<String> {
        if hash.is_empty() {
            return Ok(String::new());
        }
        if let Some(id) = self.known.get(hash) {
            return Ok(id.clone());
        }
        let id = stored(tx, self.account_id, hash)?.unwrap_or_else(|| hash.to_owned());
        self.known.insert(hash.to_owned(), id.clone());
        Ok(id)
    }
}

/// Learns the file links of every stored incident, for a database whose stories were written
/// before file identities were kept: their stories move to their files' identities, and the
/// outbreak tiers of the files that took in stories are recomputed.
pub(crate) fn backfill(tx: &Transaction<'_>, remap: &dossier_store::Remap) -> Result<()> {
    let mut st = tx.prepare(
        "SELECT DISTINCT account_id, sha1, sha256 FROM incidents
         WHERE sha1 IS NOT NULL AND sha1 != '' AND sha256 IS NOT NULL AND sha256 != ''
         ORDER BY account_id",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut by_account: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for row in rows {
        let (account, sha1, sha256) = row?;
        by_account.entry(account).or_default().push((sha1, sha256));
    }
    for (account, pairs) in &by_account {
        let recount = learn(
            tx,
            account,
            pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())),
        )?;
        if recount.is_empty() {
            continue;
        }
        tracing::info!(
            account = %account,
            files = recount.len(),
            "stories of one file under several hashes now count its devices together"
        );
        super::refresh::recount_outbreaks(tx, remap, account, &recount)?;
    }
    Ok(())
}

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
//!
//! A `PostgreSQL` database starts at the final schema, so there is no backfill here for stories
//! written before identities were kept.

use std::collections::{BTreeSet, HashMap, HashSet};

use dossier_domain::files::preferred;

use super::ingest::Tx;
use dossier_store::Result;

/// The identity `file_aliases` holds for a hash, if it holds one.
fn stored(tx: &mut Tx<'_>, account_id: &str, hash: &str) -> Result<Option<String>> {
    Ok(tx
        .query_opt(
            "SELECT file_id FROM file_aliases WHERE account_id = $1 AND hash = $2",
            &[&account_id, &hash],
        )?
        .map(|r| r.get(0)))
}

/// Learns that each (SHA-1, SHA-256) pair names one file. Returns the identities of files
/// that took in stories of another name: their outbreak tiers must be checked again.
pub(crate) fn learn<'a>(
    tx: &mut Tx<'_>,
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
            tx.execute(
                "UPDATE file_aliases SET file_id = $3 WHERE account_id = $1 AND file_id = $2",
                &[&account_id, &old, &new],
            )?;
            let moved = tx.execute(
                "UPDATE stories SET file_hash = $3 WHERE account_id = $1 AND file_hash = $2",
                &[&account_id, &old, &new],
            )?;
            if moved > 0 {
                recount.insert(new.clone());
            }
        }
        for h in [sha1, sha256] {
            tx.execute(
                "INSERT INTO file_aliases (account_id, hash, file_id) VALUES ($1, $2, $3)
                 ON CONFLICT (account_id, hash) DO UPDATE SET file_id = excluded.file_id",
                &[&account_id, &h, &new],
            )?;
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
    pub(crate) fn get(&mut self, tx: &mut Tx<'_>, hash: &str) -> Result<String> {
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

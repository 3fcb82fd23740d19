//! The tenant's file catalogue: files with consistent sha1/sha256/md5 triples, instantiated
//! from the families in `catalog`.

use rand::rngs::StdRng;
use rand::Rng;

use crate::catalog::{Os, WORDS};
use crate::families::{EICAR, FAMILIES};
use crate::host::{pick, random_string, HEX};
use crate::ids::snowflake;
use crate::time::parse_micros;

/// One malicious or suspicious file as the tenant knows it.
pub(crate) struct FileEntry {
    pub family: usize,
    pub os: Os,
    pub name: String,
    /// Directory with a `{user}` placeholder.
    pub dir: String,
    pub sha1: String,
    pub sha256: String,
    pub md5: String,
    pub size: u64,
    pub originator: String,
    /// Threats of the same file share a collection.
    pub collection_id: String,
}

fn fill(rng: &mut StdRng, pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut rest = pattern;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        match &rest[start..=start + len] {
            "{rand}" => {
                if rng.gen_bool(0.5) {
                    let word: &&str = pick(rng, WORDS);
                    out.push_str(word);
                } else {
                    out.push_str(&random_string(rng, b"abcdefghijklmnopqrstuvwxyz", 6));
                }
            }
            "{n}" => out.push_str(&rng.gen_range(1000..99_999).to_string()),
            "{HEX}" => out.push_str(&random_string(rng, b"0123456789ABCDEF", 4)),
            other => out.push_str(other),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

impl FileEntry {
    /// Returns a new file of a family of `os`, chosen by weight.
    pub(crate) fn generate(rng: &mut StdRng, os: Os) -> Self {
        let candidates: Vec<usize> = (0..FAMILIES.len())
            .filter(|i| FAMILIES[*i].os == os)
            .collect();
        let total: u32 = candidates.iter().map(|i| FAMILIES[*i].weight).sum();
        let mut roll = rng.gen_range(0..total.max(1));
        let mut family = candidates.first().copied().unwrap_or(0);
        for i in &candidates {
            if roll < FAMILIES[*i].weight {
                family = *i;
                break;
            }
            roll -= FAMILIES[*i].weight;
        }
        let f = &FAMILIES[family];
        let (sha1, sha256, md5) = if f.name == "eicar.com" {
            (EICAR.0.to_owned(), EICAR.1.to_owned(), EICAR.2.to_owned())
        } else {
            (
                random_string(rng, HEX, 40),
                random_string(rng, HEX, 64),
                random_string(rng, HEX, 32),
            )
        };
        let size = if f.size.0 == f.size.1 {
            f.size.0
        } else {
            rng.gen_range(f.size.0..f.size.1)
        };
        let seen = parse_micros("2019-01-01T00:00:00Z").unwrap_or(0) + rng.gen_range(0..2 << 47);
        Self {
            family,
            os,
            name: fill(rng, f.name),
            dir: fill(rng, f.dir),
            sha1,
            sha256,
            md5,
            size,
            originator: fill(rng, f.originator),
            collection_id: snowflake(seen, rng.gen_range(0..1 << 23)).to_string(),
        }
    }

    /// Returns the full path of this file on a device whose user is `user`.
    pub(crate) fn path(&self, user: &str) -> String {
        let dir = self.dir.replace("{user}", user);
        let separator = if self.os == Os::Windows { '\\' } else { '/' };
        format!("{dir}{separator}{}", self.name)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn files_have_consistent_hashes_and_os_paths() {
        let mut rng = StdRng::seed_from_u64(3);
        for os in [Os::Windows, Os::Mac, Os::Linux] {
            for _ in 0..50 {
                let f = FileEntry::generate(&mut rng, os);
                assert_eq!(FAMILIES[f.family].os, os);
                assert_eq!((f.sha1.len(), f.sha256.len(), f.md5.len()), (40, 64, 32));
                assert!(
                    !f.name.contains('{') && !f.dir.contains("{rand}"),
                    "{}",
                    f.name
                );
                let path = f.path("jdoe");
                match os {
                    Os::Windows => assert!(path.starts_with(r"\Device\HarddiskVolume3\"), "{path}"),
                    _ => assert!(path.starts_with('/'), "{path}"),
                }
                assert!(path.ends_with(&f.name));
            }
        }
    }

    #[test]
    fn fill_replaces_every_placeholder() {
        let mut rng = StdRng::seed_from_u64(1);
        let s = fill(&mut rng, "a{rand}b{n}c{HEX}d{user}");
        assert!(s.starts_with('a') && s.ends_with("d{user}"), "{s}");
        assert!(!s.contains("{rand}") && !s.contains("{n}") && !s.contains("{HEX}"));
    }
}

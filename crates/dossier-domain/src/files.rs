//! A file's identity across the account, whichever producer saw it.
//!
//! A file has several names: its SHA-1, its SHA-256 and its MD5. Producers key it by the one
//! they prefer. SentinelOne and Defender send a SHA-1, and often the SHA-256 too; CrowdStrike
//! sends only the SHA-256. Two hashes name the same file when any incident of the account
//! carries both (a SHA-1 and a SHA-256; an MD5 links nothing, as in correlation, because MD5
//! collisions can be made at will). The names linked this way form one file, and its
//! **identity** is its preferred name: the smallest SHA-1, else the smallest SHA-256, else the
//! hash itself ([`preferred`]).
//!
//! The outbreak count of a story is the number of distinct devices of the account with a story
//! of the same file identity, so it spans producers. A device that two EDRs watch has an id
//! under each, and counts once under each.
//!
//! Correlation links a story's hashes per device (`correlate`), the outbreak across the
//! account (here); both take the same preferred name of what they link, so a story's key hash
//! and its file identity agree whenever the device saw every name of the file.

use std::collections::HashMap;
use std::hash::Hash;

use crate::correlate::{HashKind, Member};

impl HashKind {
    /// Returns the kind of a lowercase hex hash by its length: 40 a SHA-1, 64 a SHA-256, 32 an
    /// MD5; `None` for any other length.
    #[must_use]
    pub fn of(hash: &str) -> Option<Self> {
        match hash.len() {
            40 => Some(Self::Sha1),
            64 => Some(Self::Sha256),
            32 => Some(Self::Md5),
            _ => None,
        }
    }
}

/// Of two names of one file, the one that names it: a SHA-1 before a SHA-256 before an MD5
/// (or a hash of no known length), and of two of a kind the smaller. It is the least of the
/// two in one total order, so the name a set of linked hashes settles on does not depend on
/// the order they were linked in.
#[must_use]
pub fn preferred<'a>(a: &'a str, b: &'a str) -> &'a str {
    let rank = |h: &str| HashKind::of(h).unwrap_or(HashKind::Md5);
    if (rank(b), b) < (rank(a), a) {
        b
    } else {
        a
    }
}

/// The identity of the file each hash names, as a set of members links them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileIdentities<'a>(HashMap<&'a str, &'a str>);

impl<'a> FileIdentities<'a> {
    /// The identity of the file a hash names: itself when no member linked it to another.
    #[must_use]
    pub fn of(&self, hash: &'a str) -> &'a str {
        self.0.get(hash).copied().unwrap_or(hash)
    }
}

/// Links every hash the members carry to the others of its file (see the module).
#[must_use]
pub fn file_identities<'a>(members: impl IntoIterator<Item = &'a Member>) -> FileIdentities<'a> {
    let mut files = Components::default();
    for m in members {
        files.link(m.linking_hashes());
    }
    FileIdentities(
        files
            .least()
            .into_iter()
            .map(|((_, h), (_, best))| (h, best))
            .collect(),
    )
}

/// Union-find over names that are linked when something carries them together.
pub(crate) struct Components<K> {
    index: HashMap<K, usize>,
    nodes: Vec<K>,
    parent: Vec<usize>,
}

impl<K> Default for Components<K> {
    fn default() -> Self {
        Self {
            index: HashMap::new(),
            nodes: Vec::new(),
            parent: Vec::new(),
        }
    }
}

impl<K: Copy + Eq + Hash + Ord> Components<K> {
    /// Links the nodes given together (one node alone is only added).
    pub(crate) fn link(&mut self, nodes: impl IntoIterator<Item = K>) {
        let mut first: Option<usize> = None;
        for node in nodes {
            let i = *self.index.entry(node).or_insert_with(|| {
                self.nodes.push(node);
                self.parent.push(self.parent.len());
                self.parent.len() - 1
            });
            match first {
                None => first = Some(i),
                Some(f) => {
                    let (a, b) = (self.find(f), self.find(i));
                    if a != b {
                        self.parent[a.max(b)] = a.min(b);
                    }
                }
            }
        }
    }

    fn find(&mut self, x: usize) -> usize {
        let mut root = x;
        while self.parent[root] != root {
            root = self.parent[root];
        }
        // Path compression keeps later finds short.
        let mut cur = x;
        while self.parent[cur] != root {
            let next = self.parent[cur];
            self.parent[cur] = root;
            cur = next;
        }
        root
    }

    /// Maps every node to the least node of its component: what it maps to depends only on
    /// the component, not on the order of the links.
    pub(crate) fn least(mut self) -> HashMap<K, K> {
        let roots: Vec<usize> = (0..self.nodes.len()).map(|i| self.find(i)).collect();
        let mut best: HashMap<usize, K> = HashMap::new();
        for (i, &node) in self.nodes.iter().enumerate() {
            best.entry(roots[i])
                .and_modify(|b| *b = (*b).min(node))
                .or_insert(node);
        }
        self.nodes
            .iter()
            .zip(roots)
            .map(|(&node, root)| (node, best[&root]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    use super::*;

    const S1A: &str = "1111111111111111111111111111111111111111";
    const S1B: &str = "0000000000000000000000000000000000000009";
    const S256: &str = "2222222222222222222222222222222222222222222222222222222222222222";
    const S256B: &str = "0000000000000000000000000000000000000000000000000000000000000001";
    const MD5: &str = "33333333333333333333333333333333";

    fn member(id: &str, agent: Option<&str>, sha1: Option<&str>, sha256: Option<&str>) -> Member {
        Member {
            id: id.into(),
            created_at: Utc.timestamp_opt(0, 0).unwrap(),
            agent: agent.map(Into::into),
            sha1: sha1.map(Into::into),
            sha256: sha256.map(Into::into),
            md5: None,
            storyline: None,
        }
    }

    #[test]
    fn a_sha1_names_the_file_before_a_sha256_and_the_smaller_of_a_kind() {
        assert_eq!(preferred(S256B, S1A), S1A);
        assert_eq!(preferred(S1A, S1B), S1B);
        assert_eq!(preferred(S256, S256B), S256B);
        assert_eq!(preferred(MD5, S256), S256);
        assert_eq!(preferred(S1A, S1A), S1A);
    }

    #[test]
    fn a_sha256_seen_alone_is_known_by_the_sha1_another_device_saw_with_it() {
        // One producer saw the SHA-1 and the SHA-256 on one device; another producer, the
        // SHA-256 alone on another device.
        let ms = [
            member("1", Some("ag1"), Some(S1A), Some(S256)),
            member("2", Some("cs-device"), None, Some(S256)),
        ];
        let ids = file_identities(&ms);
        assert_eq!(ids.of(S256), S1A);
        assert_eq!(ids.of(S1A), S1A);
        // Without the incident that carries both, the SHA-256 is a file of its own.
        let ids = file_identities(&ms[1..]);
        assert_eq!(ids.of(S256), S256);
    }

    #[test]
    fn a_link_from_an_incident_without_a_device_still_counts_and_md5_links_nothing() {
        let mut md5_too = member("2", Some("ag2"), Some(S1B), None);
        md5_too.md5 = Some(MD5.into());
        let ms = [member("1", None, Some(S1A), Some(S256)), md5_too];
        let ids = file_identities(&ms);
        assert_eq!(ids.of(S256), S1A);
        assert_eq!(ids.of(MD5), MD5);
        assert_eq!(ids.of(S1B), S1B);
    }

    fn arb_hash() -> impl Strategy<Value = Option<&'static str>> {
        prop::sample::select(vec![None, Some(S1A), Some(S1B), Some(S256), Some(S256B)])
    }

    fn arb_members() -> impl Strategy<Value = Vec<Member>> {
        prop::collection::vec((arb_hash(), arb_hash()), 1..12).prop_map(|pairs| {
            // Each field keeps to its kind: a SHA-1 in sha1, a SHA-256 in sha256.
            pairs
                .iter()
                .enumerate()
                .map(|(i, (a, b))| {
                    let sha1 = a.filter(|h| h.len() == 40);
                    let sha256 = b.filter(|h| h.len() == 64);
                    member(&i.to_string(), Some("ag"), sha1, sha256)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn identities_do_not_depend_on_the_order_of_the_incidents(
            (ms, shuffled) in arb_members()
                .prop_flat_map(|ms| (Just(ms.clone()), Just(ms).prop_shuffle())),
        ) {
            let a = file_identities(&ms);
            let b = file_identities(&shuffled);
            prop_assert_eq!(&a, &b);
            // Each identity is the preferred of the names it stands for.
            for (h, id) in &a.0 {
                prop_assert_eq!(preferred(h, id), *id);
            }
        }
    }
}

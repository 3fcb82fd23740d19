//! Runs a `GET /threats` query against the store and builds the response body by
//! concatenating the cached JSON of each threat.
//!
//! Keyset order is `(sort value, id)`, ids compared as numbers, so threats sharing an
//! `updatedAt` are each returned exactly once across pages. Sorting by `id`, `createdAt` or
//! `updatedAt` walks a sorted index from the cursor: a page costs `O(limit · log n)` plus the
//! rows its filters reject. Other sorts and `ids` filters sort their candidates per request.

use std::collections::HashSet;
use std::ops::Bound;

use crate::cursor::Position;
use crate::query::{Range, SortKey, ThreatQuery};
use crate::store::{Entry, Facets, Store};

/// One page of results.
pub(crate) struct Page<'a> {
    pub items: Vec<&'a Entry>,
    /// Position of the last item when more items follow.
    pub next: Option<Position>,
}

/// Visible to the token: `None` is the whole account.
pub(crate) type Scope<'a> = Option<&'a HashSet<String>>;

fn visible(q: &ThreatQuery, scope: Scope<'_>, f: &Facets) -> bool {
    scope.is_none_or(|sites| sites.contains(&f.site_id)) && q.matches(f)
}

fn position(sort: SortKey, key: u128, f: &Facets) -> Position {
    match sort {
        SortKey::Id => Position::Id(key),
        SortKey::CreatedAt => Position::Time(f.created, key),
        SortKey::UpdatedAt => Position::Time(f.updated, key),
        SortKey::Facet(field) => Position::Text(field.read(f).to_owned(), key),
    }
}

/// Inclusive `(µs, id)` bounds of a time index walk, or `None` when empty.
fn time_bounds(
    range: Range,
    after: Option<&Position>,
    desc: bool,
) -> Option<((i64, u128), (i64, u128))> {
    let mut lo = (range.lo, 0u128);
    let mut hi = (range.hi, u128::MAX);
    if let Some(Position::Time(t, id)) = after {
        if desc {
            let before = if *id == 0 {
                (t.checked_sub(1)?, u128::MAX)
            } else {
                (*t, id - 1)
            };
            hi = hi.min(before);
        } else {
            let next = if *id == u128::MAX {
                (t.checked_add(1)?, 0)
            } else {
                (*t, id + 1)
            };
            lo = lo.max(next);
        }
    }
    (lo <= hi).then_some((lo, hi))
}

/// Returns the page of `q` after `after`.
pub(crate) fn run<'a>(
    store: &'a Store,
    q: &ThreatQuery,
    after: Option<&Position>,
    scope: Scope<'_>,
) -> Page<'a> {
    let keys: Box<dyn Iterator<Item = u128> + '_> = match (q.sort, &q.ids) {
        (SortKey::UpdatedAt | SortKey::CreatedAt, None) => {
            let (index, range) = if q.sort == SortKey::UpdatedAt {
                (&store.by_updated, q.updated)
            } else {
                (&store.by_created, q.created)
            };
            match time_bounds(range, after, q.desc) {
                None => Box::new(std::iter::empty()),
                Some((lo, hi)) => {
                    let walk = index.range((Bound::Included(lo), Bound::Included(hi)));
                    if q.desc {
                        Box::new(walk.rev().map(|(_, id)| *id))
                    } else {
                        Box::new(walk.map(|(_, id)| *id))
                    }
                }
            }
        }
        (SortKey::Id, None) => {
            let bound = match after {
                Some(p) => Bound::Excluded(p.id()),
                None => Bound::Unbounded,
            };
            if q.desc {
                Box::new(
                    store
                        .entries
                        .range((Bound::Unbounded, bound))
                        .rev()
                        .map(|(k, _)| *k),
                )
            } else {
                Box::new(
                    store
                        .entries
                        .range((bound, Bound::Unbounded))
                        .map(|(k, _)| *k),
                )
            }
        }
        _ => Box::new(sorted_candidates(store, q, after, scope).into_iter()),
    };
    let mut items = Vec::with_capacity(q.limit.min(store.entries.len()));
    let mut skip = if after.is_none() { q.skip } else { 0 };
    let mut more = false;
    for key in keys {
        let Some(entry) = store.entries.get(&key) else {
            continue;
        };
        if !visible(q, scope, &entry.facets) {
            continue;
        }
        if skip > 0 {
            skip -= 1;
            continue;
        }
        if items.len() == q.limit {
            more = true;
            break;
        }
        items.push(entry);
    }
    let next = match (more, items.last()) {
        (true, Some(last)) => {
            let key = crate::ids::id_key(&last.id).unwrap_or_default();
            Some(position(q.sort, key, &last.facets))
        }
        _ => None,
    };
    Page { items, next }
}

/// Candidates of the unindexed paths, sorted, after the cursor.
fn sorted_candidates(
    store: &Store,
    q: &ThreatQuery,
    after: Option<&Position>,
    scope: Scope<'_>,
) -> Vec<u128> {
    let mut rows: Vec<(Position, u128)> = match &q.ids {
        Some(ids) => ids
            .iter()
            .filter_map(|k| store.entries.get(k).map(|e| (k, e)))
            .filter(|(_, e)| visible(q, scope, &e.facets))
            .map(|(k, e)| (position(q.sort, *k, &e.facets), *k))
            .collect(),
        None => store
            .entries
            .iter()
            .filter(|(_, e)| visible(q, scope, &e.facets))
            .map(|(k, e)| (position(q.sort, *k, &e.facets), *k))
            .collect(),
    };
    let key = |p: &Position| match p {
        Position::Time(t, id) => (*t, String::new(), *id),
        Position::Id(id) => (0, String::new(), *id),
        Position::Text(s, id) => (0, s.clone(), *id),
    };
    rows.sort_by_cached_key(|(p, _)| key(p));
    if q.desc {
        rows.reverse();
    }
    if let Some(after) = after {
        let cut = key(after);
        rows.retain(|(p, _)| if q.desc { key(p) < cut } else { key(p) > cut });
    }
    rows.into_iter().map(|(_, k)| k).collect()
}

/// Counts the threats matching `q` (ignoring cursor and skip).
pub(crate) fn count(store: &Store, q: &ThreatQuery, scope: Scope<'_>) -> usize {
    let by_index = |index: &std::collections::BTreeSet<(i64, u128)>, range: Range| {
        let walk = index.range((range.lo, 0)..=(range.hi, u128::MAX));
        if q.only_time_filters() && scope.is_none() && (q.created.is_all() || q.updated.is_all()) {
            walk.count()
        } else {
            walk.filter(|(_, k)| {
                store
                    .entries
                    .get(k)
                    .is_some_and(|e| visible(q, scope, &e.facets))
            })
            .count()
        }
    };
    if let Some(ids) = &q.ids {
        ids.iter()
            .filter(|k| {
                store
                    .entries
                    .get(k)
                    .is_some_and(|e| visible(q, scope, &e.facets))
            })
            .count()
    } else if q.updated.lo > q.updated.hi || q.created.lo > q.created.hi {
        0
    } else if !q.updated.is_all() {
        by_index(&store.by_updated, q.updated)
    } else if !q.created.is_all() {
        by_index(&store.by_created, q.created)
    } else if q.only_time_filters() && scope.is_none() {
        store.entries.len()
    } else {
        store
            .entries
            .values()
            .filter(|e| visible(q, scope, &e.facets))
            .count()
    }
}

/// Returns the response body: `{"data":[…],"pagination":{"nextCursor":…,"totalItems":…}}`.
pub(crate) fn body(items: &[&Entry], next_cursor: Option<&str>, total: Option<usize>) -> Vec<u8> {
    // Sized once: a page is megabytes, and regrowing it copies all of it.
    let size: usize = items.iter().map(|e| e.text.len() + 1).sum::<usize>()
        + next_cursor.map_or(0, str::len)
        + 128;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(b"{\"data\":[");
    for (i, entry) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(entry.text.as_bytes());
    }
    out.extend_from_slice(b"],\"pagination\":{\"nextCursor\":");
    match next_cursor {
        // Base64 needs no JSON escaping.
        Some(c) => {
            out.push(b'"');
            out.extend_from_slice(c.as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"totalItems\":");
    match total {
        Some(n) => out.extend_from_slice(n.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}}");
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::Facets;

    /// A page is megabytes: it is allocated once at its final size, never regrown (a regrowth
    /// copies the whole page and doubles what it holds), whatever the cursor's length.
    #[test]
    fn a_page_body_is_allocated_once_at_its_size() {
        let entries: Vec<Entry> = (0..50)
            .map(|i| Entry {
                id: i.to_string().into(),
                text: format!("{{\"id\":\"{i}\",\"pad\":\"{}\"}}", "x".repeat(2000)).into(),
                facets: Facets::default(),
            })
            .collect();
        let items: Vec<&Entry> = entries.iter().collect();
        let cursor = "c".repeat(600);
        let body = body(&items, Some(&cursor), Some(7));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["pagination"]["nextCursor"], cursor.as_str());
        assert_eq!(v["data"].as_array().unwrap().len(), 50);
        assert!(
            body.capacity() <= body.len() + 256,
            "capacity {} for {} bytes",
            body.capacity(),
            body.len()
        );
    }
}

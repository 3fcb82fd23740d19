//! The query options of `GET /v1.0/security/alerts_v2`: `$filter`, `$orderby`, `$top`, `$skip`,
//! `$count` and the `$skiptoken` of `@odata.nextLink`.
//!
//! Limits as documented for Graph security alerts (PRODUCERS.md §1.4): `$top` at most 1000,
//! `$skip` at most 500. The next link carries an opaque `$skiptoken` (offset paging on live
//! data, bound to the query it continues) instead of a `$skip`, so it can be followed past 500.

use std::hash::{DefaultHasher, Hash, Hasher};

use crate::store::{Store, Stored};
use crate::ticks;

pub(crate) const MAX_TOP: usize = 1000;
pub(crate) const MAX_SKIP: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Ge,
    Gt,
    Le,
    Lt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Clause {
    Text {
        field: &'static str,
        op: Op,
        value: String,
    },
    Time {
        field: &'static str,
        op: Op,
        ticks: i64,
    },
}

const TEXT_FIELDS: &[&str] = &["serviceSource", "status", "severity", "classification"];
const TIME_FIELDS: &[&str] = &["lastUpdateDateTime", "createdDateTime"];

/// A parsed list request.
#[derive(Debug, Clone)]
pub(crate) struct ListQuery {
    clauses: Vec<Clause>,
    by_created: bool,
    descending: bool,
    pub top: usize,
    pub offset: usize,
    pub count: bool,
    /// Binds a skip token to the query it continues.
    fingerprint: u64,
}

/// One page of a list.
pub(crate) struct Listing<'a> {
    pub items: Vec<&'a Stored>,
    pub more: bool,
    pub total: Option<usize>,
}

impl ListQuery {
    /// Parses the query pairs; the error is Graph's 400 message.
    pub(crate) fn parse(pairs: &[(String, String)]) -> Result<Self, String> {
        let mut q = ListQuery {
            clauses: Vec::new(),
            by_created: false,
            descending: true,
            top: MAX_TOP,
            offset: 0,
            count: false,
            fingerprint: 0,
        };
        let mut token = None;
        let mut bound: Vec<(&str, &str)> = Vec::new();
        for (key, value) in pairs {
            match key.as_str() {
                "$filter" => q.clauses = parse_filter(value)?,
                "$orderby" => (q.by_created, q.descending) = parse_orderby(value)?,
                "$top" => {
                    q.top = value
                        .trim()
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_TOP).contains(n))
                        .ok_or_else(|| {
                            format!("Invalid $top value '{value}': must be between 1 and {MAX_TOP}")
                        })?;
                }
                "$skip" => {
                    q.offset = value
                        .trim()
                        .parse()
                        .ok()
                        .filter(|n| *n <= MAX_SKIP)
                        .ok_or_else(|| {
                            format!(
                                "Invalid $skip value '{value}': must be between 0 and \
                                 {MAX_SKIP}; use a time filter to page further"
                            )
                        })?;
                }
                "$skiptoken" => token = Some(value.clone()),
                "$count" => q.count = value.trim().eq_ignore_ascii_case("true"),
                other if other.starts_with('$') => {
                    return Err(format!("Query option '{other}' is not supported"));
                }
                _ => {}
            }
            if matches!(key.as_str(), "$filter" | "$orderby" | "$count") {
                bound.push((key, value));
            }
        }
        let mut hasher = DefaultHasher::new();
        bound.hash(&mut hasher);
        q.fingerprint = hasher.finish();
        if let Some(token) = token {
            q.offset = decode_token(&token, q.fingerprint)
                .ok_or_else(|| "Invalid $skiptoken value".to_owned())?;
        }
        Ok(q)
    }

    /// The `$skiptoken` of the page after this one.
    pub(crate) fn next_token(&self) -> String {
        format!("{:x}-{:016x}", self.offset + self.top, self.fingerprint)
    }

    fn matches(&self, a: &Stored) -> bool {
        self.clauses.iter().all(|c| match c {
            Clause::Text { field, op, value } => {
                let v = a.field(field).unwrap_or_default();
                let same = v.eq_ignore_ascii_case(value);
                if *op == Op::Ne {
                    !same
                } else {
                    same
                }
            }
            Clause::Time { field, op, ticks } => {
                let t = if *field == "createdDateTime" {
                    a.created
                } else {
                    a.updated
                };
                match op {
                    Op::Eq => t == *ticks,
                    Op::Ne => t != *ticks,
                    Op::Ge => t >= *ticks,
                    Op::Gt => t > *ticks,
                    Op::Le => t <= *ticks,
                    Op::Lt => t < *ticks,
                }
            }
        })
    }

    /// The lowest `lastUpdateDateTime` the filter admits, to start the ordered scan there.
    fn update_floor(&self) -> i64 {
        self.clauses
            .iter()
            .filter_map(|c| match c {
                Clause::Time {
                    field: "lastUpdateDateTime",
                    op: Op::Ge | Op::Eq,
                    ticks,
                } => Some(*ticks),
                Clause::Time {
                    field: "lastUpdateDateTime",
                    op: Op::Gt,
                    ticks,
                } => Some(ticks.saturating_add(1)),
                _ => None,
            })
            .max()
            .unwrap_or(i64::MIN)
    }

    /// Runs the query over the store.
    pub(crate) fn run<'a>(&self, store: &'a Store) -> Listing<'a> {
        let want = self.offset + self.top + 1;
        let mut items: Vec<&Stored> = if self.by_created {
            let mut all: Vec<&Stored> = store.by_id.values().filter(|a| self.matches(a)).collect();
            all.sort_by(|a, b| {
                (a.created, &a.value["id"].to_string())
                    .cmp(&(b.created, &b.value["id"].to_string()))
            });
            if self.descending {
                all.reverse();
            }
            all.into_iter()
                .skip(self.offset)
                .take(self.top + 1)
                .collect()
        } else {
            let stored = |(_, id): &(i64, String)| store.by_id.get(id);
            let hits: Box<dyn Iterator<Item = &Stored>> = if self.descending {
                Box::new(store.by_update.iter().rev().filter_map(stored))
            } else {
                let floor = (self.update_floor(), String::new());
                Box::new(store.by_update.range(floor..).filter_map(stored))
            };
            hits.filter(|a| self.matches(a))
                .take(want)
                .skip(self.offset)
                .collect()
        };
        let more = items.len() > self.top;
        items.truncate(self.top);
        let total = self
            .count
            .then(|| store.by_id.values().filter(|a| self.matches(a)).count());
        Listing { items, more, total }
    }
}

fn decode_token(token: &str, fingerprint: u64) -> Option<usize> {
    let (offset, fp) = token.trim().split_once('-')?;
    (u64::from_str_radix(fp, 16).ok()? == fingerprint).then_some(())?;
    usize::from_str_radix(offset, 16).ok()
}

fn parse_orderby(text: &str) -> Result<(bool, bool), String> {
    let mut words = text.split_whitespace();
    let field = words.next().unwrap_or_default();
    let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(format!("Invalid $orderby direction '{other}'")),
    };
    match field {
        "lastUpdateDateTime" => Ok((false, descending)),
        "createdDateTime" => Ok((true, descending)),
        other => Err(format!("Invalid $orderby property '{other}'")),
    }
}

fn parse_filter(text: &str) -> Result<Vec<Clause>, String> {
    let mut clauses = Vec::new();
    let lower = text.to_ascii_lowercase();
    if lower.contains(" or ") || lower.contains('(') {
        return Err("Invalid filter clause: only 'and' of simple comparisons is supported".into());
    }
    for part in split_and(text) {
        let words: Vec<&str> = part.split_whitespace().collect();
        let [field, op, value] = words[..] else {
            return Err(format!("Invalid filter clause '{}'", part.trim()));
        };
        let op = match op.to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "ge" => Op::Ge,
            "gt" => Op::Gt,
            "le" => Op::Le,
            "lt" => Op::Lt,
            other => return Err(format!("Invalid filter operator '{other}'")),
        };
        if let Some(field) = TEXT_FIELDS.iter().find(|f| **f == field) {
            let value = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .filter(|_| matches!(op, Op::Eq | Op::Ne))
                .ok_or_else(|| format!("Invalid filter clause '{}'", part.trim()))?;
            clauses.push(Clause::Text {
                field,
                op,
                value: value.to_owned(),
            });
        } else if let Some(field) = TIME_FIELDS.iter().find(|f| **f == field) {
            let ticks = ticks::parse(value)
                .ok_or_else(|| format!("Invalid DateTimeOffset value '{value}'"))?;
            clauses.push(Clause::Time { field, op, ticks });
        } else {
            return Err(format!("Invalid filter property '{field}'"));
        }
    }
    Ok(clauses)
}

/// Splits on the word `and`, whatever its case.
fn split_and(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    for word in text.split_whitespace() {
        if word.eq_ignore_ascii_case("and") {
            parts.push(String::new());
        } else if let Some(last) = parts.last_mut() {
            last.push(' ');
            last.push_str(word);
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<ListQuery, String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ListQuery::parse(&pairs)
    }

    #[test]
    fn limits_and_bad_queries_are_refused() {
        assert!(q(&[("$top", "1001")]).unwrap_err().contains("$top"));
        assert!(q(&[("$top", "0")]).is_err());
        assert!(q(&[("$skip", "501")]).unwrap_err().contains("$skip"));
        assert_eq!(q(&[("$skip", "500")]).unwrap().offset, 500);
        assert!(q(&[("$filter", "status eq 'new' or status eq 'x'")]).is_err());
        assert!(q(&[("$filter", "title eq 'x'")]).is_err());
        assert!(q(&[("$filter", "lastUpdateDateTime ge yesterday")]).is_err());
        assert!(q(&[("$orderby", "title asc")]).is_err());
        assert!(q(&[("$expand", "x")]).is_err());
    }

    #[test]
    fn skip_tokens_are_bound_to_their_query() {
        let filter = ("$filter", "serviceSource eq 'microsoftDefenderForEndpoint'");
        let first = q(&[filter, ("$top", "10")]).unwrap();
        let token = first.next_token();
        let next = q(&[filter, ("$top", "10"), ("$skiptoken", &token)]).unwrap();
        assert_eq!(next.offset, 10);
        assert!(q(&[("$top", "10"), ("$skiptoken", &token)]).is_err());
    }
}

//! `GET /threats` query parameters: parsing and validation.
//!
//! Lists are comma-joined (`siteIds=1,2`); a repeated key is joined the same way. Unknown
//! parameters are ignored, like the real API, but still bind the cursor.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use crate::ids::id_key;
use crate::store::Facets;
use crate::time::parse_micros;

/// A facet that list filters and some sorts read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    AgentId,
    SiteId,
    GroupId,
    AccountId,
    /// sha1 or sha256 (`contentHashes`), case-insensitive.
    ContentHash,
    Storyline,
    Incident,
    Verdict,
    Mitigation,
    Confidence,
    Classification,
    OsType,
    MachineType,
    InitiatedBy,
    AgentVersion,
    ThreatName,
}

impl Field {
    pub(crate) fn read(self, f: &Facets) -> &str {
        match self {
            Field::AgentId => &f.agent_id,
            Field::SiteId => &f.site_id,
            Field::GroupId => &f.group_id,
            Field::AccountId => &f.account_id,
            Field::ContentHash => &f.sha1,
            Field::Storyline => &f.storyline,
            Field::Incident => &f.incident,
            Field::Verdict => &f.verdict,
            Field::Mitigation => &f.mitigation,
            Field::Confidence => &f.confidence,
            Field::Classification => &f.classification,
            Field::OsType => &f.os_type,
            Field::MachineType => &f.machine_type,
            Field::InitiatedBy => &f.initiated_by,
            Field::AgentVersion => &f.agent_version,
            Field::ThreatName => &f.threat_name,
        }
    }
}

/// List filters: parameter name (the `…Nin` variant excludes) and facet.
const LIST_FILTERS: &[(&str, Field)] = &[
    ("agentIds", Field::AgentId),
    ("siteIds", Field::SiteId),
    ("groupIds", Field::GroupId),
    ("accountIds", Field::AccountId),
    ("contentHashes", Field::ContentHash),
    ("storylines", Field::Storyline),
    ("incidentStatuses", Field::Incident),
    ("analystVerdicts", Field::Verdict),
    ("mitigationStatuses", Field::Mitigation),
    ("confidenceLevels", Field::Confidence),
    ("classifications", Field::Classification),
    ("osTypes", Field::OsType),
    ("agentMachineTypes", Field::MachineType),
    ("initiatedBy", Field::InitiatedBy),
    ("agentVersions", Field::AgentVersion),
];

/// Sort keys `sortBy` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SortKey {
    Id,
    CreatedAt,
    UpdatedAt,
    Facet(Field),
}

impl SortKey {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "id" => SortKey::Id,
            "createdAt" => SortKey::CreatedAt,
            "updatedAt" => SortKey::UpdatedAt,
            "mitigationStatus" => SortKey::Facet(Field::Mitigation),
            "fileDisplayName" => SortKey::Facet(Field::ThreatName),
            "agentVersion" => SortKey::Facet(Field::AgentVersion),
            "agentMachineType" => SortKey::Facet(Field::MachineType),
            "siteId" => SortKey::Facet(Field::SiteId),
            _ => return None,
        })
    }
}

const SORT_NAMES: &[&str] = &[
    "id",
    "createdAt",
    "updatedAt",
    "mitigationStatus",
    "fileDisplayName",
    "agentVersion",
    "agentMachineType",
    "siteId",
];

/// An inclusive range of microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub lo: i64,
    pub hi: i64,
}

impl Range {
    const ALL: Range = Range {
        lo: i64::MIN,
        hi: i64::MAX,
    };

    pub(crate) fn contains(self, t: i64) -> bool {
        self.lo <= t && t <= self.hi
    }

    pub(crate) fn is_all(self) -> bool {
        self == Self::ALL
    }
}

/// One list filter.
#[derive(Debug, Clone)]
pub(crate) struct ListFilter {
    pub field: Field,
    pub values: HashSet<String>,
    pub exclude: bool,
}

impl ListFilter {
    pub(crate) fn matches(&self, f: &Facets) -> bool {
        let hit = if self.field == Field::ContentHash {
            self.values.contains(&f.sha1)
                || (!f.sha256.is_empty() && self.values.contains(&f.sha256))
        } else {
            self.values.contains(self.field.read(f))
        };
        hit != self.exclude
    }
}

/// A validated `GET /threats` query.
#[derive(Debug, Clone)]
pub(crate) struct ThreatQuery {
    pub limit: usize,
    pub skip: usize,
    pub cursor: Option<String>,
    pub sort: SortKey,
    pub sort_name: String,
    pub desc: bool,
    pub created: Range,
    pub updated: Range,
    pub ids: Option<HashSet<u128>>,
    pub filters: Vec<ListFilter>,
    /// `siteIds` as asked (checked against the token's scope).
    pub site_ids: Option<HashSet<String>>,
    pub skip_count: bool,
    pub count_only: bool,
    /// Hash of every parameter but `cursor`, `limit`, `skipCount` and `countOnly`.
    pub fingerprint: String,
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn boolean(name: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{name}: Not a valid boolean.")),
    }
}

fn number(name: &str, value: &str, lo: usize, hi: usize) -> Result<usize, String> {
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|_| format!("{name}: Not a valid integer."))?;
    match usize::try_from(n) {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(format!(
            "{name}: Must be greater than or equal to {lo} and less than or equal to {hi}."
        )),
    }
}

impl ThreatQuery {
    /// Parses and validates the query pairs; the error is the 400 detail.
    pub(crate) fn parse(pairs: &[(String, String)]) -> Result<Self, String> {
        let mut merged: Vec<(String, String)> = Vec::new();
        for (k, v) in pairs {
            match merged.iter_mut().find(|(mk, _)| mk == k) {
                Some((_, mv)) => {
                    mv.push(',');
                    mv.push_str(v);
                }
                None => merged.push((k.clone(), v.clone())),
            }
        }
        let mut q = ThreatQuery {
            limit: 10,
            skip: 0,
            cursor: None,
            sort: SortKey::Id,
            sort_name: "id".to_owned(),
            desc: false,
            created: Range::ALL,
            updated: Range::ALL,
            ids: None,
            filters: Vec::new(),
            site_ids: None,
            skip_count: false,
            count_only: false,
            fingerprint: String::new(),
        };
        let mut hasher = Sha256::new();
        merged.sort();
        for (name, value) in &merged {
            let name = name.as_str();
            if !matches!(name, "cursor" | "limit" | "skipCount" | "countOnly") {
                hasher.update(name.as_bytes());
                hasher.update([0]);
                hasher.update(value.as_bytes());
                hasher.update([0]);
            }
            match name {
                "limit" => q.limit = number(name, value, 1, 1000)?,
                "skip" => q.skip = number(name, value, 0, 1000)?,
                "cursor" => q.cursor = Some(value.clone()).filter(|c| !c.is_empty()),
                "sortBy" => {
                    q.sort = SortKey::parse(value).ok_or_else(|| {
                        format!(
                            "sortBy: Must be one of: {}. Got '{value}'.",
                            SORT_NAMES.join(", ")
                        )
                    })?;
                    q.sort_name.clone_from(value);
                }
                "sortOrder" => {
                    q.desc = match value.as_str() {
                        "asc" => false,
                        "desc" => true,
                        _ => {
                            return Err(format!(
                                "sortOrder: Must be one of: asc, desc. Got '{value}'."
                            ))
                        }
                    }
                }
                "skipCount" => q.skip_count = boolean(name, value)?,
                "countOnly" => q.count_only = boolean(name, value)?,
                "resolved" => q.filters.push(ListFilter {
                    field: Field::Incident,
                    values: HashSet::from(["resolved".to_owned()]),
                    exclude: !boolean(name, value)?,
                }),
                "ids" => {
                    let mut ids = HashSet::new();
                    for id in list(value) {
                        ids.insert(
                            id_key(id).ok_or_else(|| format!("ids: '{id}' is not a valid id."))?,
                        );
                    }
                    q.ids = Some(ids);
                }
                _ => {
                    if let Some((field, bound)) = name.split_once("__") {
                        let range = match field {
                            "createdAt" => &mut q.created,
                            "updatedAt" => &mut q.updated,
                            _ => continue,
                        };
                        let t = parse_micros(value)
                            .ok_or_else(|| format!("{name}: Not a valid datetime: '{value}'."))?;
                        match bound {
                            "gt" => range.lo = range.lo.max(t.saturating_add(1)),
                            "gte" => range.lo = range.lo.max(t),
                            "lt" => range.hi = range.hi.min(t.saturating_sub(1)),
                            "lte" => range.hi = range.hi.min(t),
                            _ => {}
                        }
                        continue;
                    }
                    let (base, exclude) = match name.strip_suffix("Nin") {
                        Some(base) => (base, true),
                        None => (name, false),
                    };
                    if let Some((_, field)) = LIST_FILTERS.iter().find(|(p, _)| *p == base) {
                        let lower = *field == Field::ContentHash;
                        let values: HashSet<String> = list(value)
                            .map(|v| {
                                if lower {
                                    v.to_ascii_lowercase()
                                } else {
                                    v.to_owned()
                                }
                            })
                            .collect();
                        if *field == Field::SiteId && !exclude {
                            q.site_ids = Some(values.clone());
                        }
                        q.filters.push(ListFilter {
                            field: *field,
                            values,
                            exclude,
                        });
                    }
                }
            }
        }
        q.fingerprint = hex::encode(&hasher.finalize()[..12]);
        Ok(q)
    }

    /// Returns true when the query filters on nothing but time ranges.
    pub(crate) fn only_time_filters(&self) -> bool {
        self.ids.is_none() && self.filters.is_empty()
    }

    /// Returns true when the threat passes every filter (not the token scope).
    pub(crate) fn matches(&self, f: &Facets) -> bool {
        self.created.contains(f.created)
            && self.updated.contains(f.updated)
            && self.filters.iter().all(|filter| filter.matches(f))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn parse(query: &[(&str, &str)]) -> Result<ThreatQuery, String> {
        let pairs: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ThreatQuery::parse(&pairs)
    }

    #[test]
    fn defaults_and_bounds() {
        let q = parse(&[]).unwrap();
        assert_eq!(
            (q.limit, q.skip, q.sort, q.desc),
            (10, 0, SortKey::Id, false)
        );
        assert!(parse(&[("limit", "1000"), ("skip", "1000")]).is_ok());
        let err = parse(&[("limit", "1001")]).unwrap_err();
        assert!(
            err.starts_with("limit: Must be greater than or equal to 1"),
            "{err}"
        );
        assert!(parse(&[("limit", "0")]).is_err());
        assert!(parse(&[("limit", "ten")]).is_err());
        assert!(parse(&[("skip", "1001")]).is_err());
        assert!(parse(&[("skip", "-1")]).is_err());
        assert!(parse(&[("sortBy", "threatName")]).is_err());
        assert!(parse(&[("sortOrder", "up")]).is_err());
        assert!(parse(&[("updatedAt__gte", "last week")])
            .unwrap_err()
            .starts_with("updatedAt__gte"));
    }

    #[test]
    fn time_bounds_are_inclusive_or_not() {
        let q = parse(&[
            ("createdAt__gt", "2021-01-01T00:00:00Z"),
            ("createdAt__lte", "2021-01-02 00:00:00"),
        ])
        .unwrap();
        let t0 = parse_micros("2021-01-01T00:00:00Z").unwrap();
        assert!(!q.created.contains(t0) && q.created.contains(t0 + 1));
        assert!(
            q.created.contains(t0 + 86_400_000_000) && !q.created.contains(t0 + 86_400_000_001)
        );
        assert!(q.updated.is_all());
    }

    #[test]
    fn fingerprint_ignores_paging_only() {
        let a = parse(&[("limit", "5"), ("siteIds", "1,2"), ("cursor", "x")]).unwrap();
        let b = parse(&[("siteIds", "1,2"), ("limit", "7"), ("skipCount", "true")]).unwrap();
        let c = parse(&[("siteIds", "1,3")]).unwrap();
        let d = parse(&[("siteIds", "1,2"), ("sortOrder", "desc")]).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
        assert_ne!(a.fingerprint, d.fingerprint);
    }

    #[test]
    fn list_filters_and_exclusions() {
        let q = parse(&[
            ("contentHashes", "ABC,def"),
            ("incidentStatusesNin", "resolved"),
        ])
        .unwrap();
        let mut f = Facets {
            sha1: "abc".into(),
            incident: "unresolved".into(),
            ..Facets::default()
        };
        assert!(q.matches(&f));
        f.incident = "resolved".into();
        assert!(!q.matches(&f));
        f.incident = "in_progress".into();
        f.sha1 = "zzz".into();
        f.sha256 = "def".into();
        assert!(q.matches(&f));
        assert!(parse(&[("ids", "12,x")]).is_err());
        assert_eq!(
            parse(&[("ids", "12,55555555555555555555")])
                .unwrap()
                .ids
                .unwrap()
                .len(),
            2
        );
    }
}

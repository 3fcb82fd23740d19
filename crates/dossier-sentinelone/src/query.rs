//! The query string of `GET /web/api/v2.1/threats` (SENTINELONE.md §1.2).

use chrono::{DateTime, Utc};
use dossier_domain::time::format_micros;
use serde::{Deserialize, Serialize};

/// The largest page the API serves; `limit` > 1000 is a 400 (§6.6).
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Fields the threats list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SortBy {
    Id,
    CreatedAt,
    UpdatedAt,
}

impl SortBy {
    /// Returns the API's spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SortBy::Id => "id",
            SortBy::CreatedAt => "createdAt",
            SortBy::UpdatedAt => "updatedAt",
        }
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SortOrder {
    Asc,
    Desc,
}

impl SortOrder {
    /// Returns the API's spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SortOrder::Asc => "asc",
            SortOrder::Desc => "desc",
        }
    }
}

/// One request for a page of threats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreatQuery {
    /// Page size; clamped to `1..=1000` when sent.
    pub limit: u32,
    /// Opaque cursor from the previous page's `pagination.nextCursor`.
    pub cursor: Option<String>,
    pub updated_at_gte: Option<DateTime<Utc>>,
    pub updated_at_gt: Option<DateTime<Utc>>,
    pub created_at_gte: Option<DateTime<Utc>>,
    pub created_at_lte: Option<DateTime<Utc>>,
    pub sort_by: Option<SortBy>,
    pub sort_order: Option<SortOrder>,
    /// Sent comma-joined (`siteIds=1,2`), never as repeated keys.
    pub site_ids: Vec<String>,
}

impl Default for ThreatQuery {
    fn default() -> Self {
        ThreatQuery {
            limit: MAX_PAGE_SIZE,
            cursor: None,
            updated_at_gte: None,
            updated_at_gt: None,
            created_at_gte: None,
            created_at_lte: None,
            sort_by: None,
            sort_order: None,
            site_ids: Vec::new(),
        }
    }
}

impl ThreatQuery {
    /// The `limit` sent: at least 1 and at most [`MAX_PAGE_SIZE`], and so the most threats a
    /// page of this query may hold.
    #[must_use]
    pub fn page_limit(&self) -> usize {
        self.limit.clamp(1, MAX_PAGE_SIZE) as usize
    }

    /// Returns the query parameters in a stable order, timestamps as UTC with `Z` (§6.9).
    #[must_use]
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![("limit", self.page_limit().to_string())];
        if let Some(t) = self.updated_at_gte {
            pairs.push(("updatedAt__gte", format_micros(t)));
        }
        if let Some(t) = self.updated_at_gt {
            pairs.push(("updatedAt__gt", format_micros(t)));
        }
        if let Some(t) = self.created_at_gte {
            pairs.push(("createdAt__gte", format_micros(t)));
        }
        if let Some(t) = self.created_at_lte {
            pairs.push(("createdAt__lte", format_micros(t)));
        }
        if let Some(s) = self.sort_by {
            pairs.push(("sortBy", s.as_str().to_owned()));
        }
        if let Some(o) = self.sort_order {
            pairs.push(("sortOrder", o.as_str().to_owned()));
        }
        let sites: Vec<&str> = self
            .site_ids
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        if !sites.is_empty() {
            pairs.push(("siteIds", sites.join(",")));
        }
        if let Some(c) = self.cursor.as_deref().filter(|c| !c.is_empty()) {
            pairs.push(("cursor", c.to_owned()));
        }
        pairs
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use dossier_domain::time::parse_lenient;

    #[test]
    fn limit_is_clamped_and_lists_are_comma_joined() {
        let q = ThreatQuery {
            limit: 5000,
            site_ids: vec!["1".into(), " ".into(), "2".into()],
            ..ThreatQuery::default()
        };
        let pairs = q.to_pairs();
        assert_eq!(pairs[0], ("limit", "1000".to_owned()));
        assert!(pairs.contains(&("siteIds", "1,2".to_owned())));
        let q = ThreatQuery {
            limit: 0,
            ..ThreatQuery::default()
        };
        assert_eq!(q.to_pairs()[0], ("limit", "1".to_owned()));
    }

    #[test]
    fn timestamps_are_sent_as_utc_with_z() {
        let t = parse_lenient("2021-03-16T16:00:16.879105+02:00").unwrap();
        let q = ThreatQuery {
            updated_at_gte: Some(t),
            sort_by: Some(SortBy::UpdatedAt),
            sort_order: Some(SortOrder::Asc),
            cursor: Some("YWdlbnRfaWQ6NTgwMjkzODE=".into()),
            ..ThreatQuery::default()
        };
        let pairs = q.to_pairs();
        assert!(pairs.contains(&("updatedAt__gte", "2021-03-16T14:00:16.879105Z".to_owned())));
        assert!(pairs.contains(&("sortBy", "updatedAt".to_owned())));
        assert!(pairs.contains(&("sortOrder", "asc".to_owned())));
        assert!(pairs.contains(&("cursor", "YWdlbnRfaWQ6NTgwMjkzODE=".to_owned())));
        let q = ThreatQuery {
            updated_at_gt: Some(t),
            ..ThreatQuery::default()
        };
        let pairs = q.to_pairs();
        assert!(pairs.contains(&("updatedAt__gt", "2021-03-16T14:00:16.879105Z".to_owned())));
        assert!(!pairs.iter().any(|(k, _)| *k == "updatedAt__gte"));
    }
}

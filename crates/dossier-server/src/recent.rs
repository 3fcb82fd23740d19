//! The threats a connector's worker has committed and may read again.
//!
//! The overlap and the sweeps re-read the last minutes of a tenant's threats, and a threat
//! stamped in the far future (seen in STAR alerts) is in every window. The store skips any
//! version of a threat no newer than the one it holds; the worker drops such a version from the
//! page before it gets there, so that reading it again costs no commit: a poll that read only
//! what was committed before is an idle poll. Only threats updated recently enough to be read
//! again are remembered, so a backfill of old threats adds nothing here.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use dossier_domain::Incident;

/// The most threats remembered; past it all are forgotten, which costs only commits of
/// unchanged threats.
const MAX_THREATS: usize = 200_000;

/// The latest committed `updatedAt` of each recently updated threat, by its id.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    latest: HashMap<String, DateTime<Utc>>,
}

impl Recent {
    /// Tells whether a version at least as new as this one was committed: the store would
    /// find it unchanged.
    pub(crate) fn knows(&self, incident: &Incident) -> bool {
        // Not even hashed while nothing is remembered, as through a backfill.
        !self.latest.is_empty()
            && self
                .latest
                .get(incident.external_id.as_str())
                .is_some_and(|at| incident.updated_at <= *at)
    }

    /// The versions among `incidents` worth remembering once committed: those updated at or
    /// after `horizon`, the earliest any walk may start from.
    pub(crate) fn worth_keeping(
        incidents: &[Incident],
        horizon: DateTime<Utc>,
    ) -> Vec<(String, DateTime<Utc>)> {
        incidents
            .iter()
            .filter(|i| i.updated_at >= horizon)
            .map(|i| (i.external_id.clone(), i.updated_at))
            .collect()
    }

    /// Remembers `versions` as committed, and forgets threats updated before `horizon`.
    pub(crate) fn committed(
        &mut self,
        versions: Vec<(String, DateTime<Utc>)>,
        horizon: DateTime<Utc>,
    ) {
        if !self.latest.is_empty() {
            self.latest.retain(|_, at| *at >= horizon);
        }
        for (id, at) in versions {
            let latest = self.latest.entry(id).or_insert(at);
            *latest = (*latest).max(at);
        }
        if self.latest.len() > MAX_THREATS {
            self.latest.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::{Duration, TimeZone};

    use super::*;

    fn threat(id: &str, at: DateTime<Utc>) -> Incident {
        let json = format!(
            r#"{{"id":"{id}","threatInfo":{{"updatedAt":"{}"}}}}"#,
            at.to_rfc3339()
        );
        let raw = serde_json::value::RawValue::from_string(json).unwrap();
        dossier_sentinelone::map_owned_threat(raw).unwrap()
    }

    #[test]
    fn committed_threats_are_known_until_they_are_older_than_the_horizon() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let horizon = t - Duration::minutes(6);
        let mut recent = Recent::default();
        let page = [
            threat("old", t - Duration::days(30)),
            threat("a", t),
            threat("future", t + Duration::days(365 * 150)),
        ];
        let keep = Recent::worth_keeping(&page, horizon);
        assert_eq!(keep.len(), 2, "a backfill's old threats are not kept");
        recent.committed(keep, horizon);
        assert!(recent.knows(&page[1]) && recent.knows(&page[2]));
        assert!(!recent.knows(&page[0]));
        assert!(
            recent.knows(&threat("a", t - Duration::seconds(1))),
            "an older version of a committed threat is not new"
        );
        assert!(
            !recent.knows(&threat("a", t + Duration::seconds(1))),
            "a newer version of a committed threat is new"
        );
        // Later commits forget what no walk reads again; a far-future version stays.
        recent.committed(Vec::new(), t + Duration::minutes(1));
        assert!(!recent.knows(&page[1]));
        assert!(recent.knows(&page[2]));
    }

    #[test]
    fn too_many_threats_are_forgotten_at_once() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut recent = Recent::default();
        let many: Vec<_> = (0..=MAX_THREATS).map(|n| (n.to_string(), t)).collect();
        recent.committed(many, t);
        assert!(!recent.knows(&threat("0", t)));
    }
}

//! The tenant's threats: pre-serialised JSON text plus the few fields queries look at, with
//! sorted indexes so a page costs `O(limit · log n)`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::ids::id_key;
use crate::time::parse_micros;

/// The fields of a threat that filters and sorts read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Facets {
    pub created: i64,
    pub updated: i64,
    pub agent_id: String,
    pub site_id: String,
    pub group_id: String,
    pub account_id: String,
    pub os_type: String,
    pub machine_type: String,
    pub agent_version: String,
    /// Lowercase.
    pub sha1: String,
    /// Lowercase, empty when null.
    pub sha256: String,
    pub storyline: String,
    pub threat_name: String,
    pub classification: String,
    pub confidence: String,
    pub mitigation: String,
    pub incident: String,
    pub verdict: String,
    pub initiated_by: String,
}

impl Facets {
    /// Reads the facets of a threat object. Its `threatInfo.createdAt` must be a timestamp;
    /// a missing `updatedAt` reads as `createdAt`.
    pub(crate) fn from_threat(threat: &Value) -> Result<Self, String> {
        let info = &threat["threatInfo"];
        let agent = &threat["agentRealtimeInfo"];
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        let created = info["createdAt"]
            .as_str()
            .and_then(parse_micros)
            .ok_or("threatInfo.createdAt is missing or not a timestamp")?;
        let updated = match &info["updatedAt"] {
            Value::Null => created,
            v => v
                .as_str()
                .and_then(parse_micros)
                .ok_or("threatInfo.updatedAt is not a timestamp")?,
        };
        Ok(Self {
            created,
            updated,
            agent_id: text(&agent["agentId"]),
            site_id: text(&agent["siteId"]),
            group_id: text(&agent["groupId"]),
            account_id: text(&agent["accountId"]),
            os_type: text(&agent["agentOsType"]),
            machine_type: text(&agent["agentMachineType"]),
            agent_version: text(&agent["agentVersion"]),
            sha1: text(&info["sha1"]).to_ascii_lowercase(),
            sha256: text(&info["sha256"]).to_ascii_lowercase(),
            storyline: text(&info["storyline"]),
            threat_name: text(&info["threatName"]),
            classification: text(&info["classification"]),
            confidence: text(&info["confidenceLevel"]),
            mitigation: text(&info["mitigationStatus"]),
            incident: text(&info["incidentStatus"]),
            verdict: text(&info["analystVerdict"]),
            initiated_by: text(&info["initiatedBy"]),
        })
    }
}

/// One stored threat.
pub(crate) struct Entry {
    pub id: Box<str>,
    /// The threat object, serialised once (rebuilt on every update).
    pub text: Box<str>,
    pub facets: Facets,
}

/// All threats of the tenant and their indexes.
#[derive(Default)]
pub(crate) struct Store {
    /// By id (numeric order).
    pub entries: BTreeMap<u128, Entry>,
    /// `(threatInfo.updatedAt µs, id)`.
    pub by_updated: BTreeSet<(i64, u128)>,
    /// `(threatInfo.createdAt µs, id)`.
    pub by_created: BTreeSet<(i64, u128)>,
    /// Bumped on every change (invalidates cached counts).
    pub version: u64,
}

impl Store {
    /// Inserts or replaces a threat.
    pub(crate) fn put(&mut self, key: u128, entry: Entry) {
        self.remove(key);
        self.by_updated.insert((entry.facets.updated, key));
        self.by_created.insert((entry.facets.created, key));
        self.entries.insert(key, entry);
        self.version += 1;
    }

    /// Removes a threat; returns whether it was there.
    pub(crate) fn remove(&mut self, key: u128) -> bool {
        let Some(old) = self.entries.remove(&key) else {
            return false;
        };
        self.by_updated.remove(&(old.facets.updated, key));
        self.by_created.remove(&(old.facets.created, key));
        self.version += 1;
        true
    }

    /// Returns the stored threat with this id.
    pub(crate) fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.get(&id_key(id)?)
    }

    /// Returns the stored threat parsed back into JSON.
    pub(crate) fn value(&self, id: &str) -> Option<Value> {
        serde_json::from_str(&self.get(id)?.text).ok()
    }

    /// Replaces a threat's JSON (after an edit); returns false when the id is unknown or the
    /// edited JSON lost its timestamps.
    pub(crate) fn replace(&mut self, id: &str, threat: &Value) -> bool {
        let (Some(key), Ok(facets)) = (id_key(id), Facets::from_threat(threat)) else {
            return false;
        };
        let Some(old) = self.entries.get(&key) else {
            return false;
        };
        let entry = Entry {
            id: old.id.clone(),
            text: threat.to_string().into(),
            facets,
        };
        self.put(key, entry);
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use serde_json::json;

    fn threat(id: &str, created: &str, updated: &str) -> Value {
        json!({"id": id, "threatInfo": {"createdAt": created, "updatedAt": updated, "sha1": "ABC"},
               "agentRealtimeInfo": {"agentId": 17, "siteId": "5"}})
    }

    #[test]
    fn put_replaces_and_keeps_indexes_consistent() {
        let mut store = Store::default();
        let t = threat(
            "10",
            "2021-03-16T14:00:16.879105Z",
            "2021-03-16T14:00:16.874050Z",
        );
        let facets = Facets::from_threat(&t).unwrap();
        assert!(facets.updated < facets.created);
        assert_eq!(
            (facets.sha1.as_str(), facets.agent_id.as_str()),
            ("abc", "17")
        );
        store.put(
            10,
            Entry {
                id: "10".into(),
                text: t.to_string().into(),
                facets,
            },
        );
        let t2 = threat("10", "2021-03-16T14:00:16.879105Z", "2022-01-01T00:00:00Z");
        assert!(store.replace("10", &t2));
        assert_eq!(store.entries.len(), 1);
        assert_eq!(store.by_updated.len(), 1);
        assert_eq!(store.by_created.len(), 1);
        assert_eq!(store.value("10").unwrap(), t2);
        assert!(!store.replace("11", &t2));
    }

    #[test]
    fn facets_need_a_creation_time() {
        assert!(Facets::from_threat(&json!({"threatInfo": {}})).is_err());
        assert!(
            Facets::from_threat(&json!({"threatInfo": {"createdAt": "2021-03-16T14:00:16Z",
            "updatedAt": 5}}))
            .is_err()
        );
    }
}

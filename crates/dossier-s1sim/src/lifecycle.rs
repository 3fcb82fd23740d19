//! How a threat's state changes after detection: mitigation, analyst verdict, incident status.
//!
//! The same transitions serve the generator (history threats are rendered in their final
//! state) and `Tenant::update_threat` / the write endpoints (which edit stored JSON).

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

use crate::time::format_micros;

/// The three status fields of `threatInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    pub verdict: String,
    pub incident: String,
    pub mitigation: String,
}

/// One `mitigationStatus[]` action.
#[derive(Debug, Clone)]
#[expect(
    clippy::struct_field_names,
    reason = "`action` is the API's `mitigationStatus[].action`, kept under its own name"
)]
pub(crate) struct Action {
    pub action: &'static str,
    pub at: i64,
    pub report_id: u128,
}

impl Action {
    pub(crate) fn to_json(&self) -> Value {
        let at = format_micros(self.at);
        json!({
            "action": self.action,
            "actionsCounters": {
                "failed": 0, "notFound": 0, "pendingReboot": 0, "success": 1, "total": 1,
            },
            "agentSupportsReport": true,
            "groupNotFound": false,
            "lastUpdate": format_micros(self.at + 120),
            "latestReport": format!("/threats/mitigation-report/{}", self.report_id),
            "mitigationEndedAt": at,
            "mitigationStartedAt": at,
            "status": "success",
        })
    }
}

/// A later change applied to a threat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// The agent (or an analyst) killed and quarantined the file.
    Mitigate,
    /// An analyst started working on it.
    InProgress,
    /// An analyst confirmed it and resolved the incident.
    TruePositive,
    /// An analyst marked it benign (and released it from quarantine).
    FalsePositive,
}

impl Status {
    /// Returns the state of a fresh detection.
    pub(crate) fn detected(mitigated: bool) -> Self {
        Self {
            verdict: "undefined".to_owned(),
            incident: "unresolved".to_owned(),
            mitigation: if mitigated {
                "mitigated"
            } else {
                "not_mitigated"
            }
            .to_owned(),
        }
    }

    /// Picks a realistic next change for a threat in this state.
    pub(crate) fn next_change(&self, rng: &mut StdRng) -> Change {
        if self.mitigation == "not_mitigated" && rng.gen_bool(0.5) {
            Change::Mitigate
        } else if self.incident == "unresolved" && rng.gen_bool(0.4) {
            Change::InProgress
        } else if self.incident == "resolved" {
            // A resolved threat changes again when an analyst revisits it.
            if self.verdict == "false_positive" {
                Change::TruePositive
            } else if rng.gen_bool(0.5) {
                Change::InProgress
            } else {
                Change::FalsePositive
            }
        } else if rng.gen_bool(0.7) {
            Change::TruePositive
        } else {
            Change::FalsePositive
        }
    }

    /// Applies `change` at `at`; returns the mitigation actions it performed (newest first).
    pub(crate) fn apply(&mut self, change: Change, at: i64, report_base: u128) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut act = |action, offset: u16| {
            actions.insert(
                0,
                Action {
                    action,
                    at: at + i64::from(offset),
                    report_id: report_base + u128::from(offset),
                },
            );
        };
        match change {
            Change::Mitigate => {
                act("kill", 0);
                act("quarantine", 180);
                "mitigated".clone_into(&mut self.mitigation);
            }
            Change::InProgress => {
                "in_progress".clone_into(&mut self.incident);
                if self.verdict == "undefined" {
                    "suspicious".clone_into(&mut self.verdict);
                }
            }
            Change::TruePositive => {
                if self.mitigation != "mitigated" {
                    act("kill", 0);
                    act("quarantine", 180);
                    "mitigated".clone_into(&mut self.mitigation);
                }
                "true_positive".clone_into(&mut self.verdict);
                "resolved".clone_into(&mut self.incident);
            }
            Change::FalsePositive => {
                if self.mitigation == "mitigated" {
                    act("unquarantine", 0);
                }
                "false_positive".clone_into(&mut self.verdict);
                "resolved".clone_into(&mut self.incident);
                "marked_as_benign".clone_into(&mut self.mitigation);
            }
        }
        actions
    }

    /// Reads the status fields of a stored threat (missing fields read as a fresh detection).
    pub(crate) fn from_threat(threat: &Value) -> Self {
        let info = &threat["threatInfo"];
        let field = |key: &str, default: &str| info[key].as_str().unwrap_or(default).to_owned();
        Self {
            verdict: field("analystVerdict", "undefined"),
            incident: field("incidentStatus", "unresolved"),
            mitigation: field("mitigationStatus", "not_mitigated"),
        }
    }

    /// Writes the status fields (and their descriptions) into a stored threat.
    pub(crate) fn write_to(&self, threat: &mut Value) {
        if let Some(info) = threat.get_mut("threatInfo").and_then(Value::as_object_mut) {
            info.insert("analystVerdict".into(), json!(self.verdict));
            info.insert(
                "analystVerdictDescription".into(),
                json!(describe(&self.verdict)),
            );
            info.insert("incidentStatus".into(), json!(self.incident));
            info.insert(
                "incidentStatusDescription".into(),
                json!(describe(&self.incident)),
            );
            info.insert("mitigationStatus".into(), json!(self.mitigation));
            info.insert(
                "mitigationStatusDescription".into(),
                json!(describe(&self.mitigation)),
            );
        }
    }
}

/// Applies `change` to a stored threat JSON with `updatedAt = at`.
pub(crate) fn apply_to_threat(threat: &mut Value, change: Change, at: i64, report_base: u128) {
    let mut status = Status::from_threat(threat);
    let actions = status.apply(change, at, report_base);
    status.write_to(threat);
    if !actions.is_empty() {
        if !threat["mitigationStatus"].is_array() {
            threat["mitigationStatus"] = json!([]);
        }
        if let Some(list) = threat["mitigationStatus"].as_array_mut() {
            for (i, action) in actions.iter().enumerate() {
                list.insert(i, action.to_json());
            }
        }
    }
    set_updated_at(threat, at);
}

/// Sets `threatInfo.updatedAt`.
pub(crate) fn set_updated_at(threat: &mut Value, at: i64) {
    if let Some(info) = threat.get_mut("threatInfo").and_then(Value::as_object_mut) {
        info.insert("updatedAt".into(), json!(format_micros(at)));
    }
}

/// Returns the console's description of an enum value (`true_positive` → `True positive`).
pub(crate) fn describe(value: &str) -> &'static str {
    match value {
        "undefined" => "Undefined",
        "true_positive" => "True positive",
        "false_positive" => "False positive",
        "suspicious" => "Suspicious",
        "unresolved" => "Unresolved",
        "in_progress" => "In progress",
        "resolved" => "Resolved",
        "not_mitigated" => "Not mitigated",
        "mitigated" => "Mitigated",
        "marked_as_benign" => "Marked as benign",
        "agent_policy" => "Agent Policy",
        "star_active" => "Custom Rule",
        "full_disk_scan" => "Full Disk Scan",
        "on_demand_scan" => "On Demand Scan",
        _ => "Unknown",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn false_positive_releases_a_quarantined_file() {
        let mut status = Status::detected(true);
        let actions = status.apply(Change::FalsePositive, 1_000, 7);
        assert_eq!(status.mitigation, "marked_as_benign");
        assert_eq!(status.verdict, "false_positive");
        assert_eq!(actions[0].action, "unquarantine");
    }

    #[test]
    fn updates_edit_the_json_and_keep_old_actions() {
        let mut threat = json!({
            "mitigationStatus": [{"action": "kill"}],
            "threatInfo": {"analystVerdict": "undefined", "incidentStatus": "unresolved",
                           "mitigationStatus": "not_mitigated", "updatedAt": "x"}
        });
        apply_to_threat(&mut threat, Change::TruePositive, 1_700_000_000_000_000, 1);
        assert_eq!(
            threat["threatInfo"]["analystVerdictDescription"],
            "True positive"
        );
        assert_eq!(threat["threatInfo"]["incidentStatus"], "resolved");
        assert_eq!(
            threat["threatInfo"]["updatedAt"],
            "2023-11-14T22:13:20.000000Z"
        );
        let actions: Vec<&str> = threat["mitigationStatus"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["quarantine", "kill", "kill"]);
    }

    #[test]
    fn every_change_moves_the_state() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut status = Status::detected(false);
        for _ in 0..20 {
            let before = status.clone();
            let change = status.next_change(&mut rng);
            status.apply(change, 0, 0);
            assert_ne!(before, status, "{change:?}");
        }
    }
}

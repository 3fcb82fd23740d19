//! Recommended next steps: a short list of what an analyst should do now about a story, each
//! with the fact that calls for it and the response action that carries it out.
//!
//! Deterministic and local, like the summary ([`crate::summary`]): the same facts always give
//! the same steps, and no external service is involved. This module is the one place the rule
//! lives; stores, the API and the web page only call it.
//!
//! # The rule, in the order the steps are listed
//!
//! | When | Step | Action |
//! |---|---|---|
//! | the producer's analysts called every incident a false positive | close the story as benign | none |
//! | the story's analyst verdict is benign | mark it a false positive in the producer, close | `mark_false_positive` |
//! | some incident is not mitigated, on a server, the device is connected | disconnect the device | `disconnect` |
//! | some incident is not mitigated, malicious (or high severity), with a file | kill and quarantine | `kill`, `quarantine` |
//! | some incident is not mitigated, fileless | investigate the storyline and the process | none |
//! | some incident is not mitigated, with a file | remediate | `remediate` |
//! | classified as ransomware, with a file | roll back its changes | `rollback` |
//! | the same file is on 2 or more devices of the account | blocklist the hash | `blocklist` |
//! | the device is disconnected and every incident is mitigated | reconnect the device | `reconnect` |
//! | every incident is mitigated, malicious | confirm the verdict | `mark_true_positive` |
//! | every incident is mitigated, not malicious | close with a verdict | none |
//! | nothing above applies | review the evidence | none |
//!
//! The rule never recommends an action that contradicts the facts: nothing that stops a threat
//! (`kill`, `quarantine`, `remediate`, `disconnect`) when every incident is mitigated, nothing
//! about a file (`quarantine`, `blocklist`, `rollback`) for a threat without one, `reconnect`
//! only for a disconnected device, `disconnect` never for one, no true-positive verdict
//! when the producer's analysts called it a false positive, and nothing that stops or blocks a
//! threat the story's analyst judged benign. A closed story gets no step.

use serde::{Deserialize, Serialize};

use crate::criticality::{count_unmitigated, highest_judgement, latest_incident};
use crate::incident::Incident;
use crate::vocabulary::{Confidence, DeviceKind, Judgement, ProducerVerdict, VendorSeverity};

/// Devices carrying a hash from which blocklisting it is recommended.
const BLOCKLIST_DEVICES: u32 = 2;

/// A response action an analyst takes from a story on its producer's records, by the name the
/// API's `POST /api/v1/stories/{id}/actions` takes. The sources carry them out
/// (`dossier_source::Connection::respond`); the next steps name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseAction {
    /// Kill the threat's processes.
    Kill,
    /// Quarantine the threat's file.
    Quarantine,
    /// Remediate: undo what the threat changed.
    Remediate,
    /// Roll the device back to before the threat (from a snapshot).
    Rollback,
    /// Cut the device off the network, but for its link to the console.
    Disconnect,
    /// Reconnect a disconnected device.
    Reconnect,
    /// Add the threat's file hash to the blocklist.
    Blocklist,
    /// Mark the threat a true positive in the console.
    MarkTruePositive,
    /// Mark the threat a false positive in the console.
    MarkFalsePositive,
}

impl ResponseAction {
    /// Every action, in the API's order.
    pub const ALL: [ResponseAction; 9] = [
        ResponseAction::Kill,
        ResponseAction::Quarantine,
        ResponseAction::Remediate,
        ResponseAction::Rollback,
        ResponseAction::Disconnect,
        ResponseAction::Reconnect,
        ResponseAction::Blocklist,
        ResponseAction::MarkTruePositive,
        ResponseAction::MarkFalsePositive,
    ];

    /// Returns the API's name of the action: `kill`, `mark_true_positive`, …
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseAction::Kill => "kill",
            ResponseAction::Quarantine => "quarantine",
            ResponseAction::Remediate => "remediate",
            ResponseAction::Rollback => "rollback",
            ResponseAction::Disconnect => "disconnect",
            ResponseAction::Reconnect => "reconnect",
            ResponseAction::Blocklist => "blocklist",
            ResponseAction::MarkTruePositive => "mark_true_positive",
            ResponseAction::MarkFalsePositive => "mark_false_positive",
        }
    }

    /// Reads the API's name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// What it does, as a button says it: `Disconnect the device`.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            ResponseAction::Kill => "Kill the processes",
            ResponseAction::Quarantine => "Quarantine the file",
            ResponseAction::Remediate => "Remediate",
            ResponseAction::Rollback => "Roll back",
            ResponseAction::Disconnect => "Disconnect the device",
            ResponseAction::Reconnect => "Reconnect the device",
            ResponseAction::Blocklist => "Blocklist the hash",
            ResponseAction::MarkTruePositive => "Mark true positive",
            ResponseAction::MarkFalsePositive => "Mark false positive",
        }
    }

    /// In a sentence: `disconnect the device`.
    #[must_use]
    pub fn verb(self) -> &'static str {
        match self {
            ResponseAction::Kill => "kill the threat's processes",
            ResponseAction::Quarantine => "quarantine the threat's file",
            ResponseAction::Remediate => "remediate the threat",
            ResponseAction::Rollback => "roll the device back",
            ResponseAction::Disconnect => "disconnect the device from the network",
            ResponseAction::Reconnect => "reconnect the device to the network",
            ResponseAction::Blocklist => "add the file's hash to the blocklist",
            ResponseAction::MarkTruePositive => "mark the threat a true positive",
            ResponseAction::MarkFalsePositive => "mark the threat a false positive",
        }
    }

    /// Whether it acts on devices rather than on the records themselves.
    #[must_use]
    pub fn on_devices(self) -> bool {
        matches!(self, ResponseAction::Disconnect | ResponseAction::Reconnect)
    }
}

/// One recommended step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextStep {
    /// What to do, e.g. `Disconnect the device from the network`.
    pub text: String,
    /// The fact that calls for it, e.g. `not mitigated on a server`.
    pub reason: String,
    /// The response action that carries it out, if one does.
    pub action: Option<ResponseAction>,
}

/// The facts next steps are written from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each flag is one independent fact the rule reads"
)]
pub struct NextStepFacts {
    /// The producer's highest judgement across the story's incidents.
    pub judgement: Judgement,
    pub incident_count: u32,
    /// How many incidents are not mitigated.
    pub unmitigated: u32,
    /// The latest incident's device is a server.
    pub is_server: bool,
    /// The device is cut off from the network (by the producer's network quarantine).
    pub disconnected: bool,
    /// The threat has no file: the latest incident is fileless or carries no hash.
    pub fileless: bool,
    /// The storyline of a fileless threat, if the producer gave one.
    pub storyline: Option<String>,
    /// The process a fileless threat ran in, if the producer named one.
    pub process: Option<String>,
    /// The hash to blocklist, the one the story shows.
    pub hash: Option<String>,
    /// Devices of the account carrying the same file (1 = only this one).
    pub devices_with_hash: u32,
    /// Some incident is classified as ransomware.
    pub ransomware: bool,
    /// The producer's analysts called every incident a false positive.
    pub false_positive: bool,
    /// The story's own analyst verdict is benign (set by the caller, who knows the story).
    pub benign_verdict: bool,
    /// The story is closed.
    pub closed: bool,
}

impl NextStepFacts {
    /// Builds the facts of a story from its incidents in story order, the number of other
    /// devices of the account carrying its hash, and whether the story is closed.
    #[must_use]
    pub fn from_incidents(
        incidents: &[Incident],
        other_devices_with_hash: u32,
        closed: bool,
    ) -> Self {
        let Some(latest) = latest_incident(incidents) else {
            return Self {
                closed,
                ..Self::default()
            };
        };
        let hash = [&latest.file.sha1, &latest.file.sha256, &latest.file.md5]
            .into_iter()
            .find_map(|h| h.clone().filter(|h| !h.is_empty()));
        let fileless = latest.is_fileless || hash.is_none();
        Self {
            judgement: highest_judgement(incidents).unwrap_or_default(),
            incident_count: u32::try_from(incidents.len()).unwrap_or(u32::MAX),
            unmitigated: count_unmitigated(incidents),
            is_server: latest.device.kind == DeviceKind::Server,
            disconnected: is_disconnected(latest),
            fileless,
            storyline: latest.storyline.clone().filter(|s| !s.trim().is_empty()),
            // A fileless threat's "file" is no file (SentinelOne puts the threat's name
            // there): the process it ran in is the one its producer names.
            process: latest
                .context
                .processes
                .iter()
                .find_map(|p| p.name.clone())
                .filter(|n| fileless && !n.trim().is_empty()),
            hash: hash.filter(|_| !fileless),
            devices_with_hash: other_devices_with_hash.saturating_add(1),
            ransomware: incidents.iter().any(|i| {
                i.classification
                    .as_deref()
                    .is_some_and(|c| c.to_ascii_lowercase().contains("ransom"))
            }),
            false_positive: incidents
                .iter()
                .all(|i| i.producer_verdict == ProducerVerdict::FalsePositive),
            benign_verdict: false,
            closed,
        }
    }

    /// Returns whether the producer's judgement is malicious: a malicious confidence, or a
    /// high or critical severity.
    fn malicious(&self) -> bool {
        matches!(
            self.judgement,
            Judgement::Confidence(Confidence::Malicious)
                | Judgement::Severity(Some(VendorSeverity::High | VendorSeverity::Critical))
        )
    }
}

/// Returns whether the incident's device is cut off the network: by the network state the
/// producer reports, else by its last network action (`network_quarantine`, `disconnect`,
/// undone by `reconnect`) that succeeded.
fn is_disconnected(incident: &Incident) -> bool {
    if let Some(status) = incident.device.network_status.as_deref() {
        let status = status.trim().to_ascii_lowercase();
        if !status.is_empty() {
            return matches!(status.as_str(), "disconnected" | "isolated" | "contained");
        }
    }
    let mut disconnected = false;
    for action in &incident.mitigation_actions {
        let (name, status) = action.split_once(':').unwrap_or((action, ""));
        if !status.trim().eq_ignore_ascii_case("success") {
            continue;
        }
        match name.trim().to_ascii_lowercase().as_str() {
            "network_quarantine" | "disconnect" | "disconnect_from_network" => disconnected = true,
            "reconnect" | "reconnect_to_network" | "un_network_quarantine" => disconnected = false,
            _ => {}
        }
    }
    disconnected
}

/// Writes a story's recommended next steps, following the rule in the module doc.
#[must_use]
pub fn next_steps(f: &NextStepFacts) -> Vec<NextStep> {
    if f.closed {
        return Vec::new();
    }
    let mut steps = Vec::new();
    let mut push = |text: String, reason: String, action: Option<ResponseAction>| {
        steps.push(NextStep {
            text,
            reason,
            action,
        });
    };
    if f.false_positive {
        push(
            "Close the story with the verdict benign".to_owned(),
            "the producer's analysts called every incident a false positive".to_owned(),
            None,
        );
        return steps;
    }
    if f.benign_verdict {
        push(
            "Mark the threat a false positive in the producer, then close the story".to_owned(),
            "the story's verdict is benign".to_owned(),
            Some(ResponseAction::MarkFalsePositive),
        );
        return steps;
    }
    let open = open_reason(f);
    if let Some(open) = &open {
        if f.is_server && !f.disconnected {
            push(
                "Disconnect the device from the network, then remediate".to_owned(),
                format!("{open} on a server"),
                Some(ResponseAction::Disconnect),
            );
        }
        if f.fileless {
            let storyline = f
                .storyline
                .as_deref()
                .map(|s| format!(" {s}"))
                .unwrap_or_default();
            let process = f.process.as_deref().map_or_else(
                || " and the process it ran in".to_owned(),
                |p| format!(" and the process {p}"),
            );
            push(
                format!("Investigate the storyline{storyline}{process}"),
                format!("fileless threat, {open}: there is no file to quarantine"),
                None,
            );
            if f.malicious() {
                push(
                    "Kill the threat's processes".to_owned(),
                    format!("{}, {open}", judged(f)),
                    Some(ResponseAction::Kill),
                );
            }
        } else {
            if f.malicious() {
                push(
                    "Kill the process and quarantine the file".to_owned(),
                    format!("{}, {open}", judged(f)),
                    Some(ResponseAction::Quarantine),
                );
            }
            push(
                "Remediate the threat on the device".to_owned(),
                open.clone(),
                Some(ResponseAction::Remediate),
            );
        }
    }
    if f.ransomware && !f.fileless {
        push(
            "Roll back the changes the threat made".to_owned(),
            "classified as ransomware".to_owned(),
            Some(ResponseAction::Rollback),
        );
    }
    if let Some(hash) = f.hash.as_deref().filter(|_| !f.fileless) {
        if f.devices_with_hash >= BLOCKLIST_DEVICES {
            push(
                format!("Blocklist the hash {hash}"),
                format!("the same file is on {} devices", f.devices_with_hash),
                Some(ResponseAction::Blocklist),
            );
        }
    }
    if open.is_none() {
        if f.disconnected {
            push(
                "Reconnect the device to the network".to_owned(),
                "the device is disconnected and every incident is mitigated".to_owned(),
                Some(ResponseAction::Reconnect),
            );
        }
        if f.malicious() {
            push(
                "Confirm the verdict true positive, then close the story".to_owned(),
                format!("{}, every incident mitigated", judged(f)),
                Some(ResponseAction::MarkTruePositive),
            );
        } else {
            push(
                "Close the story with a verdict".to_owned(),
                "every incident is mitigated and none is judged malicious".to_owned(),
                None,
            );
        }
    }
    if steps.is_empty() {
        steps.push(NextStep {
            text: "Review the evidence and set a verdict".to_owned(),
            reason: "no fact calls for a response yet".to_owned(),
            action: None,
        });
    }
    steps
}

/// Says how much of the story is not mitigated, or `None` when all of it is.
fn open_reason(f: &NextStepFacts) -> Option<String> {
    match f.unmitigated {
        0 => None,
        n if n >= f.incident_count => Some("not mitigated".to_owned()),
        n => Some(format!(
            "{n} of {} incidents not mitigated",
            f.incident_count
        )),
    }
}

/// The judgement in words: `malicious`, `high severity`.
fn judged(f: &NextStepFacts) -> String {
    f.judgement
        .clause()
        .unwrap_or_else(|| f.judgement.describe())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::criticality::tests::incident;
    use crate::vocabulary::Mitigation;
    use proptest::prelude::*;

    fn actions(steps: &[NextStep]) -> Vec<&'static str> {
        steps
            .iter()
            .filter_map(|s| s.action.map(ResponseAction::as_str))
            .collect()
    }

    fn malicious_file(mitigation: Mitigation) -> Incident {
        let mut i = incident("1", 1, Confidence::Malicious, ProducerVerdict::Undefined);
        i.mitigation = mitigation;
        i.file.sha1 = Some("a".repeat(40));
        i.file.name = Some("x.exe".into());
        i
    }

    #[test]
    fn not_mitigated_on_a_server_disconnects_then_remediates() {
        let mut i = malicious_file(Mitigation::NotMitigated);
        i.device.kind = DeviceKind::Server;
        let steps = next_steps(&NextStepFacts::from_incidents(&[i], 0, false));
        assert_eq!(actions(&steps), ["disconnect", "quarantine", "remediate"]);
        assert_eq!(steps[0].reason, "not mitigated on a server");
        assert_eq!(steps[1].reason, "malicious, not mitigated");
    }

    #[test]
    fn the_same_file_on_many_devices_blocklists_the_hash() {
        let i = malicious_file(Mitigation::Mitigated);
        let steps = next_steps(&NextStepFacts::from_incidents(&[i], 35, false));
        assert_eq!(actions(&steps), ["blocklist", "mark_true_positive"]);
        assert_eq!(
            steps[0].text,
            format!("Blocklist the hash {}", "a".repeat(40))
        );
        assert_eq!(steps[0].reason, "the same file is on 36 devices");
    }

    #[test]
    fn a_fileless_threat_is_investigated_never_quarantined() {
        let mut i = malicious_file(Mitigation::NotMitigated);
        i.is_fileless = true;
        i.file = crate::FileInfo {
            name: Some("SuspiciousScript".into()),
            ..crate::FileInfo::default()
        };
        i.context.processes = vec![crate::context::ProcessInfo {
            name: Some("powershell.exe".into()),
            ..crate::context::ProcessInfo::default()
        }];
        i.storyline = Some("ABC123".into());
        let steps = next_steps(&NextStepFacts::from_incidents(&[i], 9, false));
        assert_eq!(
            steps[0].text,
            "Investigate the storyline ABC123 and the process powershell.exe"
        );
        assert_eq!(actions(&steps), ["kill"]);
    }

    #[test]
    fn mitigated_and_benign_looking_closes_with_a_verdict() {
        let mut i = incident("1", 1, Confidence::Suspicious, ProducerVerdict::Undefined);
        i.file.sha256 = Some("b".repeat(64));
        let steps = next_steps(&NextStepFacts::from_incidents(&[i], 0, false));
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].text, "Close the story with a verdict");
        assert_eq!(steps[0].action, None);
    }

    #[test]
    fn a_disconnected_device_is_reconnected_once_mitigated() {
        let mut i = malicious_file(Mitigation::Mitigated);
        i.mitigation_actions = vec!["kill:success".into(), "network_quarantine:success".into()];
        let steps = next_steps(&NextStepFacts::from_incidents(
            std::slice::from_ref(&i),
            0,
            false,
        ));
        assert_eq!(actions(&steps), ["reconnect", "mark_true_positive"]);
        i.mitigation_actions.push("reconnect:success".into());
        let steps = next_steps(&NextStepFacts::from_incidents(
            std::slice::from_ref(&i),
            0,
            false,
        ));
        assert_eq!(actions(&steps), ["mark_true_positive"]);
        // The network state the producer reports wins over the actions.
        i.device.network_status = Some("Disconnected".into());
        let steps = next_steps(&NextStepFacts::from_incidents(
            std::slice::from_ref(&i),
            0,
            false,
        ));
        assert_eq!(actions(&steps), ["reconnect", "mark_true_positive"]);
        i.device.network_status = Some("connected".into());
        i.mitigation_actions = vec!["network_quarantine:success".into()];
        let steps = next_steps(&NextStepFacts::from_incidents(&[i], 0, false));
        assert_eq!(actions(&steps), ["mark_true_positive"]);
    }

    #[test]
    fn partly_mitigated_stories_say_how_much_is_open() {
        let a = malicious_file(Mitigation::Mitigated);
        let mut b = malicious_file(Mitigation::NotMitigated);
        b.external_id = "2".into();
        let steps = next_steps(&NextStepFacts::from_incidents(&[a, b], 0, false));
        assert_eq!(steps[1].reason, "1 of 2 incidents not mitigated");
    }

    #[test]
    fn false_positives_and_closed_stories() {
        let i = incident(
            "1",
            1,
            Confidence::Malicious,
            ProducerVerdict::FalsePositive,
        );
        let steps = next_steps(&NextStepFacts::from_incidents(
            std::slice::from_ref(&i),
            0,
            false,
        ));
        assert_eq!(steps[0].text, "Close the story with the verdict benign");
        assert!(next_steps(&NextStepFacts::from_incidents(&[i], 0, true)).is_empty());
    }

    #[test]
    fn a_benign_verdict_marks_a_false_positive_and_stops_nothing() {
        let mut i = malicious_file(Mitigation::NotMitigated);
        i.device.kind = DeviceKind::Server;
        let facts = NextStepFacts {
            benign_verdict: true,
            ..NextStepFacts::from_incidents(&[i], 20, false)
        };
        let steps = next_steps(&facts);
        assert_eq!(actions(&steps), ["mark_false_positive"]);
        assert_eq!(steps[0].reason, "the story's verdict is benign");
    }

    #[test]
    fn ransomware_is_rolled_back() {
        let mut i = malicious_file(Mitigation::Mitigated);
        i.classification = Some("Ransomware".into());
        let steps = next_steps(&NextStepFacts::from_incidents(&[i], 0, false));
        assert_eq!(actions(&steps), ["rollback", "mark_true_positive"]);
    }

    #[test]
    fn action_names_are_the_apis() {
        for a in ResponseAction::ALL {
            let json = serde_json::to_string(&a).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", a.as_str()));
        }
    }

    fn arb_facts() -> impl Strategy<Value = NextStepFacts> {
        let judgement = prop_oneof![
            (0..4i64).prop_map(|r| Judgement::from_rank(crate::Judged::ByConfidence, r)),
            (0..6i64).prop_map(|r| Judgement::from_rank(crate::Judged::BySeverity, r)),
        ];
        (
            judgement,
            (1..50u32, 0..60u32),
            any::<[bool; 7]>(),
            proptest::option::of("[A-F0-9]{6}"),
            proptest::option::of("[a-f0-9]{40}"),
            0..40u32,
        )
            .prop_map(
                |(judgement, (count, unmitigated), b, storyline, hash, devices)| NextStepFacts {
                    judgement,
                    incident_count: count,
                    unmitigated: unmitigated.min(count),
                    is_server: b[0],
                    disconnected: b[1],
                    fileless: b[2] || hash.is_none(),
                    storyline,
                    process: None,
                    hash,
                    devices_with_hash: devices,
                    ransomware: b[3],
                    false_positive: b[4],
                    closed: b[5],
                    benign_verdict: b[6],
                },
            )
    }

    proptest! {
        #[test]
        fn steps_are_deterministic_and_never_contradict_the_facts(f in arb_facts()) {
            let steps = next_steps(&f);
            prop_assert_eq!(&steps, &next_steps(&f.clone()), "deterministic");
            prop_assert_eq!(steps.is_empty(), f.closed);
            let has = |a: ResponseAction| steps.iter().any(|s| s.action == Some(a));
            for s in &steps {
                prop_assert!(!s.text.is_empty() && !s.reason.is_empty());
            }
            if f.unmitigated == 0 {
                for a in [ResponseAction::Kill, ResponseAction::Quarantine,
                          ResponseAction::Remediate, ResponseAction::Disconnect] {
                    prop_assert!(!has(a), "{:?} with every incident mitigated", a);
                }
            }
            if f.disconnected {
                prop_assert!(!has(ResponseAction::Disconnect));
            } else {
                prop_assert!(!has(ResponseAction::Reconnect));
            }
            if f.fileless {
                for a in [ResponseAction::Quarantine, ResponseAction::Blocklist,
                          ResponseAction::Rollback, ResponseAction::Remediate] {
                    prop_assert!(!has(a), "{:?} without a file", a);
                }
            }
            if f.false_positive {
                prop_assert!(steps.iter().all(|s| s.action.is_none()));
            }
            if f.benign_verdict || f.false_positive {
                for a in [ResponseAction::Kill, ResponseAction::Quarantine,
                          ResponseAction::Remediate, ResponseAction::Disconnect,
                          ResponseAction::Blocklist, ResponseAction::Rollback,
                          ResponseAction::MarkTruePositive] {
                    prop_assert!(!has(a), "{:?} on a benign story", a);
                }
            } else {
                prop_assert!(!has(ResponseAction::MarkFalsePositive));
            }
            if f.devices_with_hash < BLOCKLIST_DEVICES {
                prop_assert!(!has(ResponseAction::Blocklist));
            }
        }
    }
}

//! What a Falcon alert says that only CrowdStrike gives, for the story page: the process and
//! its parent, the user, the tactic and technique as CrowdStrike names them (its own `CSTA…`
//! and `CST…` ids kept as such), the severity as a number and a name, what the sensor did,
//! and the process tree that groups related alerts.

use dossier_source::Evidence;
use serde_json::Value;

/// Reads the evidence of an alert's raw JSON; nothing for a text that is not an alert.
pub fn evidence(raw: &str) -> Vec<Evidence> {
    let Ok(alert) = serde_json::from_str::<Value>(raw) else {
        return Vec::new();
    };
    let text = |pointer: &str| alert.pointer(pointer).and_then(Value::as_str);
    let severity =
        alert
            .get("severity")
            .and_then(Value::as_u64)
            .map(|n| match text("/severity_name") {
                Some(name) => format!("{n} ({name})"),
                None => n.to_string(),
            });
    let tactic = join(text("/tactic"), text("/tactic_id"));
    let technique = join(text("/technique"), text("/technique_id"));
    let parent = join(
        text("/parent_details/filename"),
        text("/parent_details/cmdline"),
    );
    let actions: Vec<&str> = alert
        .get("pattern_disposition_details")
        .and_then(Value::as_object)
        .map(|d| {
            d.iter()
                .filter(|(_, on)| on.as_bool() == Some(true))
                .map(|(what, _)| what.as_str())
                .collect()
        })
        .unwrap_or_default();
    [
        Evidence::of("Severity", severity.as_deref()),
        Evidence::of("Scenario", text("/scenario")),
        Evidence::of("Tactic", tactic.as_deref()),
        Evidence::of("Technique", technique.as_deref()),
        Evidence::of("Command line", text("/cmdline")),
        Evidence::of("Parent process", parent.as_deref()),
        Evidence::of("User", text("/user_name")),
        Evidence::of("Sensor action", Some(&actions.join(", ").replace('_', " "))),
        Evidence::of("Process tree", text("/aggregate_id")),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// `name (id)`, or whichever of the two there is.
fn join(name: Option<&str>, id: Option<&str>) -> Option<String> {
    match (name, id) {
        (Some(n), Some(i)) => Some(format!("{n} ({i})")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::evidence;

    #[test]
    fn crowdstrike_ids_are_kept_as_crowdstrike_gives_them() {
        let raw = r#"{"severity":30,"tactic":"Machine Learning","tactic_id":"CSTA0004",
            "technique":"Adware/PUP","technique_id":"CST0000","cmdline":"x.exe /s",
            "parent_details":{"filename":"explorer.exe","cmdline":"C:\\WINDOWS\\Explorer.EXE"},
            "pattern_disposition_details":{"detect":false,"quarantine_file":true,"kill_process":true},
            "aggregate_id":"aggind:ab:12"}"#;
        let e: Vec<(String, String)> = evidence(raw)
            .into_iter()
            .map(|e| (e.label, e.value))
            .collect();
        let get = |label: &str| e.iter().find(|(l, _)| l == label).map(|(_, v)| v.as_str());
        assert_eq!(get("Severity"), Some("30"));
        assert_eq!(get("Tactic"), Some("Machine Learning (CSTA0004)"));
        assert_eq!(get("Technique"), Some("Adware/PUP (CST0000)"));
        assert_eq!(
            get("Parent process"),
            Some("explorer.exe (C:\\WINDOWS\\Explorer.EXE)")
        );
        assert_eq!(get("Sensor action"), Some("kill process, quarantine file"));
        assert_eq!(get("User"), None);
        assert!(evidence("not json").is_empty());
    }
}

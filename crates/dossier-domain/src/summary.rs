//! The one-paragraph summary at the top of a story page, written from the story's facts.
//!
//! Deterministic and local (PRODUCT.md, "Criticality and summary"): the same facts always give
//! the same text, and no external service is involved. The paragraph has up to three sentences:
//!
//! 1. what was detected, where, how often and over what period;
//! 2. what the producer did about it and whether the threat is mitigated: a story whose
//!    incidents differ says how many are not (`not fully mitigated (5 of 48 incidents not
//!    mitigated)`), and is never called mitigated while one of them is not;
//! 3. how many other devices of the account carry the same file.
//!
//! A fact that is unknown leaves its clause out rather than printing a placeholder. Producer
//! text that means "nothing" (empty, `null`, `None`, `n/a`, `undefined`, `unknown`) counts as
//! unknown, since producers send those literally. Other producer text is echoed verbatim, never
//! rewritten, so a path with braces or a device called `nullbox` reads as the producer sent it.

use chrono::{DateTime, Utc};

use crate::criticality::{count_unmitigated, highest_judgement, latest_incident};
use crate::incident::Incident;
use crate::vocabulary::{Judgement, Mitigation};

/// The facts a story summary is written from.
#[derive(Debug, Clone, Default)]
pub struct SummaryFacts<'a> {
    /// Threat name, the story's indication.
    pub indication: Option<&'a str>,
    /// e.g. `Trojan`.
    pub classification: Option<&'a str>,
    /// The producer's highest judgement of the story's incidents.
    pub judgement: Judgement,
    pub device_name: Option<&'a str>,
    pub os_name: Option<&'a str>,
    pub file_path: Option<&'a str>,
    pub sha1: Option<&'a str>,
    pub incident_count: u32,
    pub first_signal_at: Option<DateTime<Utc>>,
    pub last_signal_at: Option<DateTime<Utc>>,
    /// What the latest incident's mitigation status means.
    pub mitigation: Mitigation,
    /// How many of the story's incidents are not mitigated (see
    /// [`crate::criticality::is_unmitigated`]). When some are and some are not, the summary
    /// says so rather than speaking of the latest incident alone.
    pub unmitigated: u32,
    /// The latest incident's mitigation status as the producer spells it, shown when no rule
    /// knows what it means.
    pub mitigation_status: Option<&'a str>,
    /// Actions as `action:status`, e.g. `kill:success`, `quarantine:failed`.
    pub mitigation_actions: &'a [String],
    pub other_devices_with_hash: u32,
    pub fileless: bool,
    /// e.g. `SentinelOne`.
    pub producer_vendor: &'a str,
}

impl<'a> SummaryFacts<'a> {
    /// Builds the facts of a story from its incidents, in story order, and the number of other
    /// devices in the account carrying its hash. Descriptive fields come from the latest
    /// incident (see [`crate::criticality::latest_incident`]), the judgement is the highest
    /// across incidents, and the signal period spans every incident's creation time.
    #[must_use]
    pub fn from_incidents(incidents: &'a [Incident], other_devices_with_hash: u32) -> Self {
        let Some(latest) = latest_incident(incidents) else {
            return Self {
                other_devices_with_hash,
                ..Self::default()
            };
        };
        Self::of_latest(
            latest,
            &StoryTotals {
                incident_count: u32::try_from(incidents.len()).unwrap_or(u32::MAX),
                first_signal_at: incidents.iter().map(|i| i.created_at).min(),
                last_signal_at: incidents.iter().map(|i| i.created_at).max(),
                judgement: highest_judgement(incidents).unwrap_or_default(),
                unmitigated: count_unmitigated(incidents),
            },
            other_devices_with_hash,
        )
    }

    /// Builds the facts of a story from its latest incident and what a store aggregates over
    /// all of its incidents; the same facts as [`SummaryFacts::from_incidents`] without reading
    /// every incident.
    #[must_use]
    pub fn of_latest(
        latest: &'a Incident,
        totals: &StoryTotals,
        other_devices_with_hash: u32,
    ) -> Self {
        Self {
            indication: latest.threat_name.as_deref(),
            classification: latest.classification.as_deref(),
            judgement: totals.judgement,
            device_name: latest.device.name.as_deref(),
            os_name: latest.device.os_name.as_deref(),
            file_path: latest.file.path.as_deref(),
            sha1: latest.file.sha1.as_deref(),
            incident_count: totals.incident_count,
            first_signal_at: totals.first_signal_at,
            last_signal_at: totals.last_signal_at,
            mitigation: latest.mitigation,
            unmitigated: totals.unmitigated,
            mitigation_status: latest.mitigation_status.as_deref(),
            mitigation_actions: &latest.mitigation_actions,
            other_devices_with_hash,
            fileless: latest.is_fileless,
            producer_vendor: latest.producer.vendor(),
        }
    }
}

/// What a summary takes from all of a story's incidents rather than from the latest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoryTotals {
    pub incident_count: u32,
    pub first_signal_at: Option<DateTime<Utc>>,
    pub last_signal_at: Option<DateTime<Utc>>,
    /// The producer's highest judgement across the incidents.
    pub judgement: Judgement,
    /// How many incidents are not mitigated.
    pub unmitigated: u32,
}

/// Writes the one-paragraph summary shown at the top of a story page. Deterministic, no
/// external service.
#[must_use]
pub fn summary(f: &SummaryFacts<'_>) -> String {
    // The vendor only ever opens a sentence, so the fallback is capitalised.
    let vendor = known(Some(f.producer_vendor)).unwrap_or("The producer");
    let mut out = detection(f, vendor);
    if let Some(s) = mitigation(f, vendor) {
        out.push(' ');
        out.push_str(&s);
    }
    if let Some(s) = spread(f) {
        out.push(' ');
        out.push_str(&s);
    }
    out
}

/// Writes the first sentence: `SentinelOne detected Trojan "x" (malicious) at C:\x on HOST (OS)
/// 3 times over 2 days, …`.
fn detection(f: &SummaryFacts<'_>, vendor: &str) -> String {
    let what = match (f.fileless, known(f.classification), known(f.indication)) {
        (false, Some(c), Some(i)) => format!("{c} \"{i}\""),
        (false, None, Some(i)) => format!("\"{i}\""),
        (fileless, c, i) => {
            let noun = if fileless {
                "a fileless threat"
            } else {
                "a threat"
            };
            let name = i.map(|i| format!(" \"{i}\"")).unwrap_or_default();
            let class = c.map(|c| format!(" classified as {c}")).unwrap_or_default();
            format!("{noun}{name}{class}")
        }
    };
    // Only a judgement is worth saying: `n/a` or nothing leaves the clause out.
    let confidence = f.judgement.clause().map(|c| format!(" ({c})"));
    // A fileless threat's "file" is the host process, not what was detected.
    let path = known(f.file_path)
        .filter(|_| !f.fileless)
        .map(|p| format!(" at {p}"));
    let device = known(f.device_name).unwrap_or("an unnamed device");
    let os = known(f.os_name).map(|os| format!(" ({os})"));
    format!(
        "{vendor} detected {what}{}{} on {device}{} {}.",
        confidence.unwrap_or_default(),
        path.unwrap_or_default(),
        os.unwrap_or_default(),
        frequency(f)
    )
}

/// Writes how often and when: `once, at T`, `twice over 3 hours, from T1 to T2`,
/// `4 times, first at T`, …
fn frequency(f: &SummaryFacts<'_>) -> String {
    // A story has at least one incident, so a zero count reads as once.
    if f.incident_count <= 1 {
        return match f.first_signal_at.or(f.last_signal_at) {
            Some(t) => format!("once, at {}", stamp(t)),
            None => "once".to_owned(),
        };
    }
    let times = if f.incident_count == 2 {
        "twice".to_owned()
    } else {
        format!("{} times", f.incident_count)
    };
    match (f.first_signal_at, f.last_signal_at) {
        (Some(a), Some(b)) => {
            // Producers' clocks disagree; never print a negative period.
            let (from, to) = if a <= b { (a, b) } else { (b, a) };
            match duration(to - from) {
                Some(d) => format!("{times} over {d}, from {} to {}", stamp(from), stamp(to)),
                None => format!("{times} within a minute, at {}", stamp(from)),
            }
        }
        (Some(a), None) => format!("{times}, first at {}", stamp(a)),
        (None, Some(b)) => format!("{times}, last at {}", stamp(b)),
        (None, None) => times,
    }
}

/// Formats a non-negative period in whole minutes, hours or days (rounded down); `None` under a
/// minute.
fn duration(d: chrono::TimeDelta) -> Option<String> {
    let minutes = d.num_minutes();
    let (n, unit) = if minutes < 1 {
        return None;
    } else if minutes < 60 {
        (minutes, "minute")
    } else if minutes < 24 * 60 {
        (d.num_hours(), "hour")
    } else {
        (d.num_days(), "day")
    };
    Some(format!("{n} {unit}{}", if n == 1 { "" } else { "s" }))
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Writes the mitigation sentence: `SentinelOne killed and quarantined it; the threat is
/// mitigated.`
fn mitigation(f: &SummaryFacts<'_>, vendor: &str) -> Option<String> {
    let mut done = Vec::new();
    let mut failed = Vec::new();
    let mut pending = Vec::new();
    let mut rebooting = Vec::new();
    for raw in f.mitigation_actions {
        let (name, status) = raw.split_once(':').unwrap_or((raw, ""));
        let Some(name) = known(Some(name)) else {
            continue;
        };
        let words = Action::of(name);
        let (bucket, entry) = match status.trim().to_ascii_lowercase().as_str() {
            "success" => (&mut done, (words.past, words.object)),
            "partial" => (
                &mut done,
                (format!("partially {}", words.past), words.object),
            ),
            "failed" => (&mut failed, (words.base, words.object)),
            "pending-reboot" | "pending_reboot" => (&mut rebooting, (words.noun, String::new())),
            // pending, sent, or a status we do not know: the action has not completed.
            _ => (&mut pending, (words.noun, String::new())),
        };
        if !bucket.contains(&entry) {
            bucket.push(entry);
        }
    }

    let mut clauses = Vec::new();
    let vendor_led = !done.is_empty() || !failed.is_empty();
    match (done.is_empty(), failed.is_empty()) {
        (true, true) => {}
        (false, true) => clauses.push(format!("{vendor} {}", verb_groups(&done))),
        (true, false) => clauses.push(format!("{vendor} failed to {}", verb_groups(&failed))),
        (false, false) => clauses.push(format!(
            "{vendor} {} but failed to {}",
            verb_groups(&done),
            verb_groups(&failed)
        )),
    }
    for (items, one, many) in [
        (&pending, "is pending", "are pending"),
        (&rebooting, "awaits a reboot", "await a reboot"),
    ] {
        if !items.is_empty() {
            let nouns: Vec<&str> = items.iter().map(|(n, _)| n.as_str()).collect();
            let verb = if nouns.len() == 1 { one } else { many };
            clauses.push(format!("{} {verb}", join_list(&nouns)));
        }
    }
    let partly = f.unmitigated > 0 && f.unmitigated < f.incident_count;
    match f.mitigation {
        // The incidents differ: the latest one's state is not the story's.
        _ if partly => clauses.push(format!(
            "the threat is not fully mitigated ({} of {} incidents not mitigated)",
            f.unmitigated, f.incident_count
        )),
        // Never called mitigated while an incident is not.
        Mitigation::Mitigated if f.unmitigated > 0 => {
            clauses.push("the threat is not mitigated".to_owned());
        }
        Mitigation::Mitigated => clauses.push("the threat is mitigated".to_owned()),
        Mitigation::NotMitigated => clauses.push("the threat is not mitigated".to_owned()),
        Mitigation::MarkedBenign => clauses.push("the threat is marked as benign".to_owned()),
        Mitigation::Unknown => {
            if let Some(status) = known(f.mitigation_status) {
                clauses.push(format!(
                    "the mitigation status is {}",
                    status.replace('_', " ")
                ));
            }
        }
    }
    if clauses.is_empty() {
        return None;
    }
    let mut sentence = clauses.join("; ");
    if !vendor_led {
        // Only our own text ("the …") is capitalised; producer text is never rewritten.
        sentence = capitalise(&sentence);
    }
    sentence.push('.');
    Some(sentence)
}

/// How a mitigation action reads in a sentence.
struct Action {
    /// "killed", as in `SentinelOne killed it`.
    past: String,
    /// "kill", as in "failed to kill it".
    base: String,
    /// "it", or what else the action applies to.
    object: String,
    /// "the kill", as in "the kill is pending".
    noun: String,
}

impl Action {
    /// Words for a `SentinelOne` action (`SENTINELONE.md`, `mitigationStatus[].action`).
    fn of(name: &str) -> Self {
        let words = |past: &str, base: &str, object: &str, noun: &str| Action {
            past: past.to_owned(),
            base: base.to_owned(),
            object: object.to_owned(),
            noun: noun.to_owned(),
        };
        match name.to_ascii_lowercase().as_str() {
            "kill" => words("killed", "kill", "it", "the kill"),
            "quarantine" => words("quarantined", "quarantine", "it", "the quarantine"),
            "remediate" => words("remediated", "remediate", "it", "the remediation"),
            "rollback" => words("rolled back", "roll back", "its changes", "the rollback"),
            "unquarantine" => words("released", "release", "it from quarantine", "the release"),
            "network_quarantine" => words(
                "disconnected",
                "disconnect",
                "the device from the network",
                "the network quarantine",
            ),
            "remove_macros" => words("removed", "remove", "its macros", "the macro removal"),
            "restore_macros" => words("restored", "restore", "its macros", "the macro restore"),
            _ => words(
                "ran",
                "run",
                &format!("\"{name}\" on it"),
                &format!("the \"{name}\" action"),
            ),
        }
    }
}

/// Joins verbs that share an object before it: "killed and quarantined it and disconnected the
/// device from the network". Objects keep the order they first appear in.
fn verb_groups(items: &[(String, String)]) -> String {
    let mut objects: Vec<&str> = Vec::new();
    for (_, object) in items {
        if !objects.contains(&object.as_str()) {
            objects.push(object);
        }
    }
    let groups: Vec<String> = objects
        .iter()
        .map(|object| {
            let verbs: Vec<&str> = items
                .iter()
                .filter(|(_, o)| o == object)
                .map(|(v, _)| v.as_str())
                .collect();
            format!("{} {object}", join_list(&verbs))
        })
        .collect();
    join_list(&groups)
}

/// Joins `a`, `a and b`, `a, b and c`.
fn join_list<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_owned(),
        [rest @ .., last] => {
            let rest: Vec<&str> = rest.iter().map(AsRef::as_ref).collect();
            format!("{} and {}", rest.join(", "), last.as_ref())
        }
    }
}

/// Writes the spread sentence: `4 other devices carry the same file (sha1 3395856c…).`
fn spread(f: &SummaryFacts<'_>) -> Option<String> {
    let n = f.other_devices_with_hash;
    if n == 0 {
        return None;
    }
    let who = if n == 1 {
        "1 other device carries".to_owned()
    } else {
        format!("{n} other devices carry")
    };
    if f.fileless {
        return Some(format!("{who} the same threat."));
    }
    Some(match known(f.sha1) {
        Some(sha1) => {
            let short: String = sha1.chars().take(8).collect();
            let more = if sha1.chars().count() > 8 { "…" } else { "" };
            format!("{who} the same file (sha1 {short}{more}).")
        }
        None => format!("{who} the same file."),
    })
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Returns the trimmed text, or `None` when it is blank or a producer's word for nothing.
fn known(s: Option<&str>) -> Option<&str> {
    let s = s?.trim();
    let nothing = s.is_empty()
        || ["null", "none", "n/a", "undefined", "unknown"]
            .iter()
            .any(|w| s.eq_ignore_ascii_case(w));
    (!nothing).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::Confidence;
    use proptest::prelude::*;

    fn at(s: &str) -> Option<DateTime<Utc>> {
        crate::time::parse_lenient(s)
    }

    const SHA1: &str = "3395856ce81f2b7382dee72602f798b642f14140";

    fn actions(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The example from the brief; each test changes what it is about.
    fn example(acts: &[String]) -> SummaryFacts<'_> {
        SummaryFacts {
            indication: Some("setup.exe"),
            classification: Some("Trojan"),
            judgement: Judgement::Confidence(Confidence::Malicious),
            device_name: Some("WIN-FIN-0042"),
            os_name: Some("Windows 10 Pro"),
            file_path: None,
            sha1: Some(SHA1),
            incident_count: 3,
            first_signal_at: at("2026-11-01T09:12:31Z"),
            last_signal_at: at("2026-11-13T17:40:02Z"),
            mitigation: Mitigation::Mitigated,
            unmitigated: 0,
            mitigation_status: Some("mitigated"),
            mitigation_actions: acts,
            other_devices_with_hash: 4,
            fileless: false,
            producer_vendor: "SentinelOne",
        }
    }

    #[test]
    fn writes_the_example() {
        let acts = actions(&["kill:success", "quarantine:success"]);
        assert_eq!(
            summary(&example(&acts)),
            "SentinelOne detected Trojan \"setup.exe\" (malicious) on WIN-FIN-0042 \
             (Windows 10 Pro) 3 times over 12 days, from 2026-11-01 09:12 UTC to 2026-11-13 \
             17:40 UTC. SentinelOne killed and quarantined it; the threat is mitigated. 4 other \
             devices carry the same file (sha1 3395856c…)."
        );
    }

    #[test]
    fn single_incident_reads_once_at() {
        let f = SummaryFacts {
            incident_count: 1,
            last_signal_at: at("2026-11-01T09:12:31Z"),
            other_devices_with_hash: 0,
            ..example(&[])
        };
        assert_eq!(
            summary(&f),
            "SentinelOne detected Trojan \"setup.exe\" (malicious) on WIN-FIN-0042 \
             (Windows 10 Pro) once, at 2026-11-01 09:12 UTC. The threat is mitigated."
        );
    }

    #[test]
    fn missing_device_name_is_an_unnamed_device() {
        for name in [None, Some(""), Some("  "), Some("null")] {
            let f = SummaryFacts {
                device_name: name,
                incident_count: 1,
                ..example(&[])
            };
            assert!(
                summary(&f).starts_with(
                    "SentinelOne detected Trojan \"setup.exe\" (malicious) on an unnamed device \
                     (Windows 10 Pro) once, at 2026-11-01 09:12 UTC."
                ),
                "{name:?}"
            );
        }
    }

    #[test]
    fn unknown_fields_leave_their_clause_out() {
        let f = SummaryFacts {
            incident_count: 1,
            producer_vendor: "SentinelOne",
            ..Default::default()
        };
        assert_eq!(
            summary(&f),
            "SentinelOne detected a threat on an unnamed device once."
        );

        let f = SummaryFacts {
            indication: Some("None"),
            classification: Some("Trojan"),
            judgement: Judgement::Confidence(Confidence::NotApplicable),
            os_name: Some("null"),
            incident_count: 5,
            first_signal_at: at("2026-11-01T09:12:00Z"),
            mitigation_status: Some("undefined"),
            sha1: None,
            other_devices_with_hash: 2,
            producer_vendor: "",
            ..Default::default()
        };
        assert_eq!(
            summary(&f),
            "The producer detected a threat classified as Trojan on an unnamed device 5 times, \
             first at 2026-11-01 09:12 UTC. 2 other devices carry the same file."
        );

        let f = SummaryFacts {
            indication: Some("payload.dll"),
            file_path: Some(r"C:\Users\{guid}\payload.dll"),
            incident_count: 2,
            first_signal_at: None,
            last_signal_at: at("2026-11-02T10:00:00Z"),
            ..example(&[])
        };
        assert!(summary(&f).starts_with(
            "SentinelOne detected Trojan \"payload.dll\" (malicious) at \
             C:\\Users\\{guid}\\payload.dll on WIN-FIN-0042 (Windows 10 Pro) twice, last at \
             2026-11-02 10:00 UTC."
        ));
    }

    #[test]
    fn fileless_threat_has_no_hash_or_path() {
        let f = SummaryFacts {
            indication: Some("powershell.exe"),
            fileless: true,
            file_path: Some(r"C:\Windows\powershell.exe"),
            incident_count: 1,
            other_devices_with_hash: 1,
            mitigation: Mitigation::Unknown,
            mitigation_status: None,
            ..example(&[])
        };
        assert_eq!(
            summary(&f),
            "SentinelOne detected a fileless threat \"powershell.exe\" classified as Trojan \
             (malicious) on WIN-FIN-0042 (Windows 10 Pro) once, at 2026-11-01 09:12 UTC. 1 other \
             device carries the same threat."
        );
    }

    #[test]
    fn not_mitigated_and_marked_as_benign() {
        let acts = actions(&["kill:success", "quarantine:failed"]);
        let f = SummaryFacts {
            mitigation: Mitigation::NotMitigated,
            mitigation_status: Some("not_mitigated"),
            ..example(&acts)
        };
        assert!(summary(&f).contains(
            ". SentinelOne killed it but failed to quarantine it; the threat is not mitigated. "
        ));
        let f = SummaryFacts {
            mitigation: Mitigation::NotMitigated,
            mitigation_status: Some("Not mitigated"),
            ..example(&[])
        };
        assert!(summary(&f).contains(". The threat is not mitigated. "));
        let f = SummaryFacts {
            mitigation: Mitigation::MarkedBenign,
            mitigation_status: Some("marked_as_benign"),
            ..example(&[])
        };
        assert!(summary(&f).contains(". The threat is marked as benign. "));
    }

    #[test]
    fn mitigation_actions_read_as_sentences() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["quarantine:failed", "kill:failed"],
                "SentinelOne failed to quarantine and kill it",
            ),
            (
                &[
                    "kill:success",
                    "network_quarantine:success",
                    "quarantine:success",
                ],
                "SentinelOne killed and quarantined it and disconnected the device from the \
                 network",
            ),
            (
                &["kill:success", "kill:success", "rollback:partial"],
                "SentinelOne killed it and partially rolled back its changes",
            ),
            (
                &["quarantine:pending-reboot"],
                "The quarantine awaits a reboot",
            ),
            (
                &["kill:pending", "remediate:sent"],
                "The kill and the remediation are pending",
            ),
            (
                &["kill:success", "custom_thing:success", "null"],
                "SentinelOne killed it and ran \"custom_thing\" on it",
            ),
        ];
        for (acts, expected) in cases {
            let acts = actions(acts);
            let f = SummaryFacts {
                mitigation: Mitigation::Unknown,
                mitigation_status: None,
                ..example(&acts)
            };
            assert!(
                summary(&f).contains(&format!(" UTC. {expected}. 4 other")),
                "{acts:?}: {}",
                summary(&f)
            );
        }
        let acts = actions(&["quarantine:pending"]);
        let f = SummaryFacts {
            mitigation_status: Some("mitigated"),
            ..example(&acts)
        };
        assert!(summary(&f).contains(" UTC. The quarantine is pending; the threat is mitigated. "));
    }

    #[test]
    fn durations_in_minutes_hours_and_days() {
        let cases = [
            (
                "2026-11-01T09:12:40Z",
                "twice within a minute, at 2026-11-01 09:12 UTC",
            ),
            (
                "2026-11-01T09:13:00Z",
                "twice over 1 minute, from 2026-11-01 09:12 UTC to 2026-11-01 09:13 UTC",
            ),
            (
                "2026-11-01T10:11:59Z",
                "twice over 59 minutes, from 2026-11-01 09:12 UTC to 2026-11-01 10:11 UTC",
            ),
            (
                "2026-11-01T10:12:00Z",
                "twice over 1 hour, from 2026-11-01 09:12 UTC to 2026-11-01 10:12 UTC",
            ),
            (
                "2026-11-02T09:11:00Z",
                "twice over 23 hours, from 2026-11-01 09:12 UTC to 2026-11-02 09:11 UTC",
            ),
            (
                "2026-11-02T09:12:00Z",
                "twice over 1 day, from 2026-11-01 09:12 UTC to 2026-11-02 09:12 UTC",
            ),
            (
                "2026-11-30T09:12:00Z",
                "twice over 29 days, from 2026-11-01 09:12 UTC to 2026-11-30 09:12 UTC",
            ),
            // Clocks disagree: the period is still printed forwards.
            (
                "2026-10-31T09:12:00Z",
                "twice over 1 day, from 2026-10-31 09:12 UTC to 2026-11-01 09:12 UTC",
            ),
        ];
        for (last, expected) in cases {
            let f = SummaryFacts {
                incident_count: 2,
                first_signal_at: at("2026-11-01T09:12:00Z"),
                last_signal_at: at(last),
                ..example(&[])
            };
            assert!(
                summary(&f).contains(&format!("(Windows 10 Pro) {expected}.")),
                "{}",
                summary(&f)
            );
        }
    }

    #[test]
    fn other_devices_are_pluralised_or_omitted() {
        let one = SummaryFacts {
            other_devices_with_hash: 1,
            ..example(&[])
        };
        assert!(summary(&one).ends_with(" 1 other device carries the same file (sha1 3395856c…)."));
        let two = SummaryFacts {
            other_devices_with_hash: 2,
            sha1: Some("abc"),
            ..example(&[])
        };
        assert!(summary(&two).ends_with(" 2 other devices carry the same file (sha1 abc)."));
        let none = SummaryFacts {
            other_devices_with_hash: 0,
            ..example(&[])
        };
        assert!(summary(&none).ends_with("UTC. The threat is mitigated."));
    }

    fn inc(id: &str, created: &str, confidence: &str, status: &str) -> Incident {
        Incident {
            producer: crate::producer::test_producer(),
            external_id: id.to_owned(),
            created_at: at(created).unwrap_or_default(),
            updated_at: at(created).unwrap_or_default(),
            device: crate::Device {
                name: Some("WIN-FIN-0042".into()),
                ..Default::default()
            },
            file: crate::FileInfo {
                sha1: Some(SHA1.into()),
                ..Default::default()
            },
            threat_name: Some("setup.exe".into()),
            classification: Some("Trojan".into()),
            confidence_level: Some(confidence.into()),
            mitigation_status: Some(status.into()),
            analyst_verdict: None,
            confidence: match confidence {
                "malicious" => Confidence::Malicious,
                "suspicious" => Confidence::Suspicious,
                _ => Confidence::Unknown,
            },
            mitigation: match status {
                "mitigated" => Mitigation::Mitigated,
                _ => Mitigation::NotMitigated,
            },
            producer_verdict: crate::vocabulary::ProducerVerdict::Undefined,
            severity: None,
            incident_status: None,
            engines: vec![],
            storyline: None,
            initiated_by: None,
            is_fileless: false,
            mitre: vec![],
            mitigation_actions: vec!["kill:success".into()],
            console_url: None,
            context: crate::context::Context::default(),
            raw: String::new(),
        }
    }

    #[test]
    fn builds_facts_from_incidents() {
        let incidents = [
            inc("10", "2026-11-01T09:12:00Z", "malicious", "mitigated"),
            inc("20", "2026-11-13T17:40:00Z", "suspicious", "not_mitigated"),
        ];
        let f = SummaryFacts::from_incidents(&incidents, 0);
        assert_eq!(
            summary(&f),
            "TestVendor detected Trojan \"setup.exe\" (malicious) on WIN-FIN-0042 twice over \
             12 days, from 2026-11-01 09:12 UTC to 2026-11-13 17:40 UTC. TestVendor killed it; \
             the threat is not fully mitigated (1 of 2 incidents not mitigated)."
        );
        assert_eq!(
            summary(&SummaryFacts::from_incidents(&[], 0)),
            "The producer detected a threat on an unnamed device once."
        );
    }

    /// Regression: a libprocesshider-style story whose early incidents SentinelOne mitigated
    /// but whose later one it did not (or the reverse) was summed up by its latest incident
    /// alone, and called mitigated while a rootkit was still loaded.
    #[test]
    fn a_story_whose_incidents_differ_in_mitigation_says_how_many_are_not_mitigated() {
        let mut incidents: Vec<Incident> = (0..48)
            .map(|n| {
                let mut i = inc(
                    &format!("{}", 100 + n),
                    &format!("2026-11-{:02}T09:12:00Z", 1 + n / 2),
                    "malicious",
                    if (40..45).contains(&n) {
                        "not_mitigated"
                    } else {
                        "mitigated"
                    },
                );
                i.threat_name = Some("libprocesshider.so".into());
                i.classification = Some("Malware".into());
                i.file.path = Some("/usr/local/lib/libprocesshider.so".into());
                i
            })
            .collect();
        let text = summary(&SummaryFacts::from_incidents(&incidents, 0));
        assert!(
            text.ends_with(
                "TestVendor killed it; the threat is not fully mitigated (5 of 48 incidents not \
                 mitigated)."
            ),
            "{text}"
        );
        assert!(!text.contains("the threat is mitigated"), "{text}");

        // The reverse: the latest is not mitigated, the others are.
        for (n, i) in incidents.iter_mut().enumerate() {
            let last = n == 47;
            i.mitigation = if last {
                Mitigation::NotMitigated
            } else {
                Mitigation::Mitigated
            };
        }
        let text = summary(&SummaryFacts::from_incidents(&incidents, 0));
        assert!(text.contains("(1 of 48 incidents not mitigated)"), "{text}");

        // All alike: the story reads as its incidents do.
        for i in &mut incidents {
            i.mitigation = Mitigation::Mitigated;
        }
        let text = summary(&SummaryFacts::from_incidents(&incidents, 0));
        assert!(text.ends_with("the threat is mitigated."), "{text}");
    }

    /// Owned inputs, so the strategy can outlive the borrowed `SummaryFacts`.
    #[derive(Debug, Clone)]
    struct Owned {
        text: [Option<String>; 9],
        count: u32,
        first: Option<i64>,
        last: Option<i64>,
        actions: Vec<String>,
        others: u32,
        fileless: bool,
        confidence: Confidence,
        mitigation: Mitigation,
        unmitigated: u32,
    }

    impl Owned {
        fn facts(&self) -> SummaryFacts<'_> {
            let t = |i: usize| self.text[i].as_deref();
            let when = |s: Option<i64>| s.and_then(|s| DateTime::from_timestamp(s, 0));
            SummaryFacts {
                indication: t(0),
                classification: t(1),
                judgement: Judgement::Confidence(self.confidence),
                device_name: t(3),
                os_name: t(4),
                file_path: t(5),
                sha1: t(6),
                incident_count: self.count,
                first_signal_at: when(self.first),
                last_signal_at: when(self.last),
                mitigation: self.mitigation,
                unmitigated: self.unmitigated,
                mitigation_status: t(7),
                mitigation_actions: &self.actions,
                other_devices_with_hash: self.others,
                fileless: self.fileless,
                producer_vendor: t(8).unwrap_or_default(),
            }
        }

        fn inputs(&self) -> impl Iterator<Item = &str> {
            self.text
                .iter()
                .flatten()
                .chain(&self.actions)
                .map(String::as_str)
        }
    }

    fn owned(text: BoxedStrategy<String>) -> impl Strategy<Value = Owned> {
        let field = prop_oneof![
            Just(None),
            prop::sample::select(vec![
                "",
                " ",
                "null",
                "None",
                "n/a",
                "undefined",
                "malicious",
                "mitigated"
            ])
            .prop_map(|s| Some(s.to_owned())),
            text.clone().prop_map(Some),
        ];
        let action = prop_oneof![
            (
                prop::sample::select(vec![
                    "kill",
                    "quarantine",
                    "rollback",
                    "network_quarantine",
                    "remove_macros",
                    "x"
                ]),
                prop::sample::select(vec![
                    "success",
                    "failed",
                    "partial",
                    "pending-reboot",
                    "sent",
                    ""
                ]),
            )
                .prop_map(|(a, s)| format!("{a}:{s}")),
            text,
        ];
        let time = prop::option::of(-10_000_000_000i64..10_000_000_000);
        (
            prop::array::uniform9(field),
            prop_oneof![0..5u32, any::<u32>()],
            time.clone(),
            time,
            prop::collection::vec(action, 0..5),
            prop_oneof![0..3u32, any::<u32>()],
            any::<bool>(),
            prop::sample::select(vec![
                Confidence::Unknown,
                Confidence::NotApplicable,
                Confidence::Suspicious,
                Confidence::Malicious,
            ]),
            prop::sample::select(vec![
                Mitigation::Unknown,
                Mitigation::NotMitigated,
                Mitigation::Mitigated,
                Mitigation::MarkedBenign,
            ]),
            prop_oneof![0..5u32, any::<u32>()],
        )
            .prop_map(
                |(
                    text,
                    count,
                    first,
                    last,
                    actions,
                    others,
                    fileless,
                    confidence,
                    mitigation,
                    unmitigated,
                )| {
                    Owned {
                        text,
                        count,
                        first,
                        last,
                        actions,
                        others,
                        fileless,
                        confidence,
                        mitigation,
                        unmitigated,
                    }
                },
            )
    }

    const FORBIDDEN: [&str; 3] = ["None", "null", "{"];

    proptest! {
        #[test]
        fn never_prints_placeholders(o in owned(
            "[A-Za-z0-9 ._:/\\\\-]{0,16}"
                .prop_filter("free of forbidden text", |s| FORBIDDEN.iter().all(|w| !s.contains(w)))
                .boxed()
        )) {
            let out = summary(&o.facts());
            for w in FORBIDDEN {
                prop_assert!(!out.contains(w), "{:?} in {:?}", w, out);
            }
            prop_assert!(out.ends_with('.'));
            prop_assert_eq!(&out, &summary(&o.facts()), "deterministic");
            if o.unmitigated > 0 {
                prop_assert!(!out.contains("the threat is mitigated"), "{:?}", out);
            }
        }

        /// With any text at all, the summary never panics and adds no placeholder of its own:
        /// forbidden text in the output comes from the producer's text, echoed verbatim.
        #[test]
        fn never_panics_or_adds_placeholders(o in owned(any::<String>().boxed())) {
            let out = summary(&o.facts());
            for w in FORBIDDEN {
                prop_assert!(!out.contains(w) || o.inputs().any(|i| i.contains(w)), "{:?} in {:?}", w, out);
            }
        }
    }
}

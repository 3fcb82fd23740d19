//! What every source's mapping of a record onto an [`Incident`] shares, whatever its vendor:
//! keeping the record's own text as the incident's raw JSON, and reading the values that mean
//! the same in every vendor's records (file hashes, MITRE ATT&CK technique ids).
//!
//! These belong with the domain's vocabulary; they live here because the domain is not the
//! sources' to change.
//!
//! Two rules hold here for every source, so that no mapper can forget them: text is read
//! lossily ([`lossy_surrogates`]: a lone UTF-16 surrogate, which an NTFS name can hold, becomes
//! U+FFFD rather than hiding the record), and every string a tenant sends is bounded
//! ([`bound_incident`]: names 1 KiB, paths 4 KiB, command lines 32 KiB) with a visible marker.
//! The raw text is kept as the tenant sent it, whatever either rule did to the incident.

use std::borrow::Cow;

use dossier_domain::Incident;
use serde_json::value::RawValue;

/// Maps a record with `map` (everything of an incident but its raw JSON), then keeps the
/// record's own text as the incident's raw JSON rather than a copy of it: a page's records
/// are kilobytes each. `map` reads the text with lone surrogates replaced, and what it returns
/// is bounded ([`bound_incident`]).
///
/// # Errors
/// `map`'s.
pub fn keep_raw<E>(
    raw: Box<RawValue>,
    map: impl FnOnce(&str) -> Result<Incident, E>,
) -> Result<Incident, E> {
    read_record(raw, map).map_err(|(e, _)| e)
}

/// A record its source could not map: why, and the record as it came, for the worker to
/// name it in the event it records ([`crate::unreadable`]).
#[derive(Debug)]
pub struct Unmapped {
    pub reason: String,
    pub record: Box<RawValue>,
}

/// As [`keep_raw`], for [`crate::Source::map`]: a record that does not map is handed back
/// with the reason, so that it can be reported without copying every record beforehand.
///
/// # Errors
/// [`Unmapped`] with `map`'s error in words.
pub fn read<E: std::fmt::Display>(
    raw: Box<RawValue>,
    map: impl FnOnce(&str) -> Result<Incident, E>,
) -> Result<Incident, Unmapped> {
    read_record(raw, map).map_err(|(e, record)| Unmapped {
        reason: e.to_string(),
        record,
    })
}

fn read_record<E>(
    raw: Box<RawValue>,
    map: impl FnOnce(&str) -> Result<Incident, E>,
) -> Result<Incident, (E, Box<RawValue>)> {
    let mapped = map(&lossy_surrogates(raw.get()));
    match mapped {
        Ok(mut incident) => {
            bound_incident(&mut incident);
            incident.raw = String::from(Box::<str>::from(raw));
            Ok(incident)
        }
        Err(e) => Err((e, raw)),
    }
}

/// Maps a stored record's raw JSON again as [`keep_raw`] did at ingest (lone surrogates
/// replaced, strings bounded), leaving `raw` empty; `None` when it no longer maps.
pub fn remap<E>(raw: &str, map: impl FnOnce(&str) -> Result<Incident, E>) -> Option<Incident> {
    let mut incident = map(&lossy_surrogates(raw)).ok()?;
    bound_incident(&mut incident);
    Some(incident)
}

/// Returns JSON text with every `\uD800`–`\uDFFF` escape that is not half of a valid
/// surrogate pair replaced by `\uFFFD`; borrowed when there is none. `serde_json` refuses a lone
/// surrogate in a string it decodes, so a threat whose file name holds one (NTFS allows it)
/// would not map at all; an attacker on an endpoint could hide a detection that way.
///
/// Every backslash in JSON text is inside a string and starts an escape, so the text is read
/// escape by escape without tracking strings (`\\u…` is an escaped backslash, not an escape).
#[must_use]
pub fn lossy_surrogates(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let unit = |at: usize| -> Option<u16> {
        let hex = b.get(at..at + 6)?;
        if hex[0] != b'\\' || hex[1] != b'u' {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    };
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(u) = unit(i) else {
            // Another escape (`\"`, `\\`, …) or a malformed one, left to the parser.
            i += 2;
            continue;
        };
        let paired = (0xD800..0xDC00).contains(&u)
            && unit(i + 6).is_some_and(|low| (0xDC00..0xE000).contains(&low));
        if paired {
            i += 12;
        } else if (0xD800..0xE000).contains(&u) {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[copied..i]);
            o.push_str("\\uFFFD");
            i += 6;
            copied = i;
        } else {
            i += 6;
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

/// Why a record's id is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadId {
    #[error("id is empty")]
    Empty,
    /// `" 42"` is not `"42"`: trimming it would merge two records the tenant keeps apart.
    #[error("id {0:?} has surrounding whitespace")]
    Padded(String),
    #[error("id is longer than {NAME_MAX} bytes")]
    TooLong,
}

/// Checks a record's id as the producer sent it: not empty, no surrounding whitespace, at
/// most [`NAME_MAX`] bytes. An id is never trimmed or cut: either would make two records one.
///
/// # Errors
/// [`BadId`] saying what is wrong.
pub fn record_id(id: &str) -> Result<String, BadId> {
    if id.is_empty() {
        return Err(BadId::Empty);
    }
    if id.len() > NAME_MAX {
        return Err(BadId::TooLong);
    }
    if id.trim() != id {
        return Err(BadId::Padded(id.to_owned()));
    }
    Ok(id.to_owned())
}

/// The longest name a tenant's string is kept to (device, threat, signer, …), in bytes.
pub const NAME_MAX: usize = 1024;
/// The longest path or URL, in bytes.
pub const PATH_MAX: usize = 4 * 1024;
/// The longest command line, in bytes.
pub const COMMAND_LINE_MAX: usize = 32 * 1024;
/// What ends a string that was cut.
pub const TRUNCATED: &str = "…[truncated]";

/// Cuts `s` to at most `max` bytes, on a character boundary, ending in [`TRUNCATED`]; a
/// string within `max` is left as it is.
pub fn bound(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut cut = max.saturating_sub(TRUNCATED.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s.push_str(TRUNCATED);
}

/// As [`bound`], for an optional string.
pub fn bound_opt(s: &mut Option<String>, max: usize) {
    if let Some(s) = s {
        bound(s, max);
    }
}

/// Bounds every string of an incident a tenant sent: command lines to [`COMMAND_LINE_MAX`],
/// paths, links and indicator descriptions to [`PATH_MAX`], everything else to [`NAME_MAX`]. The id is not cut (see [`record_id`]); the raw JSON is
/// kept whole as evidence.
pub fn bound_incident(i: &mut Incident) {
    let d = &mut i.device;
    for s in [
        &mut d.agent_uuid,
        &mut d.agent_uuid_raw,
        &mut d.agent_id,
        &mut d.name,
        &mut d.os_type,
        &mut d.os_name,
        &mut d.machine_type,
    ] {
        bound_opt(s, NAME_MAX);
    }
    for ip in &mut d.ips {
        bound(ip, NAME_MAX);
    }
    let f = &mut i.file;
    for s in [&mut f.name, &mut f.signer, &mut f.verification] {
        bound_opt(s, NAME_MAX);
    }
    bound_opt(&mut f.path, PATH_MAX);
    bound_opt(&mut i.console_url, PATH_MAX);
    for s in [
        &mut i.threat_name,
        &mut i.classification,
        &mut i.confidence_level,
        &mut i.mitigation_status,
        &mut i.analyst_verdict,
        &mut i.incident_status,
        &mut i.storyline,
        &mut i.initiated_by,
    ] {
        bound_opt(s, NAME_MAX);
    }
    for s in i.engines.iter_mut().chain(&mut i.mitigation_actions) {
        bound(s, NAME_MAX);
    }
    for m in &mut i.mitre {
        bound_opt(&mut m.name, NAME_MAX);
        bound_opt(&mut m.tactic, NAME_MAX);
    }
    bound_opt(&mut i.device.network_status, NAME_MAX);
    let c = &mut i.context;
    for u in &mut c.users {
        bound(&mut u.name, NAME_MAX);
    }
    for p in &mut c.processes {
        for s in [&mut p.name, &mut p.pid, &mut p.user, &mut p.parent] {
            bound_opt(s, NAME_MAX);
        }
        bound_opt(&mut p.path, PATH_MAX);
        bound_opt(&mut p.command_line, COMMAND_LINE_MAX);
    }
    for f in &mut c.files {
        for s in [&mut f.name, &mut f.signer, &mut f.verification] {
            bound_opt(s, NAME_MAX);
        }
        bound_opt(&mut f.path, PATH_MAX);
    }
    for ind in &mut c.indicators {
        bound_opt(&mut ind.description, PATH_MAX);
        bound_opt(&mut ind.category, NAME_MAX);
        for t in &mut ind.techniques {
            bound(t, NAME_MAX);
        }
    }
}

/// Parses a record's top-level fields named in `keys` into a JSON object, skipping every
/// other field without building it. A mapper that reads a record as a JSON tree reads only
/// what it maps: a record carries kilobytes the mapping never looks at, and building a tree of
/// them cost a CrowdStrike alert's mapping more than all the rest of it.
///
/// # Errors
/// When the text is not a JSON object.
pub fn parse_fields(
    text: &str,
    keys: &[&str],
) -> Result<serde_json::Map<String, serde_json::Value>, serde_json::Error> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

    struct Fields<'k>(&'k [&'k str]);

    impl<'de> Visitor<'de> for Fields<'_> {
        type Value = serde_json::Map<String, serde_json::Value>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = serde_json::Map::new();
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if self.0.contains(&key.as_ref()) {
                    let value: serde_json::Value = map.next_value()?;
                    out.insert(key.into_owned(), value);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(out)
        }
    }

    impl<'de> DeserializeSeed<'de> for Fields<'_> {
        type Value = serde_json::Map<String, serde_json::Value>;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }

    let mut de = serde_json::Deserializer::from_str(text);
    let fields = Fields(keys).deserialize(&mut de)?;
    de.end()?;
    Ok(fields)
}

/// Lowercase hex of exactly `len` characters, else `None` (empty, null, truncated,
/// `"string"`).
pub fn hex_hash(s: Option<&str>, len: usize) -> Option<String> {
    let s = s?.trim();
    (s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

/// Tells whether a text is a MITRE ATT&CK technique id, exactly: `T` + 4 digits, optionally
/// `.` + 3 digits (`T1055`, `T1055.012`).
pub fn is_technique_id(s: &str) -> bool {
    let b = s.as_bytes();
    let base = b.len() >= 5 && b[0] == b'T' && b[1..5].iter().all(u8::is_ascii_digit);
    match b.len() {
        5 => base,
        9 => base && b[5] == b'.' && b[6..9].iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_lowercase_hex_of_their_length() {
        assert_eq!(hex_hash(Some(" ABCDEF12 "), 8).as_deref(), Some("abcdef12"));
        assert_eq!(hex_hash(Some("abcdef1"), 8), None);
        assert_eq!(hex_hash(Some("abcdefgh"), 8), None);
        assert_eq!(hex_hash(None, 8), None);
    }

    #[test]
    fn technique_ids_are_exact() {
        for good in ["T1055", "T1055.012"] {
            assert!(is_technique_id(good), "{good}");
        }
        for bad in [
            "T105",
            "T1055.",
            "T1055.12",
            "t1055",
            "TA0006",
            "T1055.012x",
        ] {
            assert!(!is_technique_id(bad), "{bad}");
        }
    }
}

#[cfg(test)]
mod parse_tests {
    use super::parse_fields;

    #[test]
    fn only_the_named_fields_are_kept_and_the_rest_must_still_be_json() {
        let text = r#"{"a":1,"big":{"x":[1,2,{"y":"z"}]},"b":"two","a\u0062":3}"#;
        let fields = parse_fields(text, &["a", "b", "ab"]).unwrap_or_default();
        assert_eq!(
            serde_json::Value::Object(fields),
            serde_json::json!({"a": 1, "b": "two", "ab": 3})
        );
        assert!(parse_fields("[1]", &["a"]).is_err());
        assert!(parse_fields(r#"{"a":1} trailing"#, &["a"]).is_err());
        assert!(parse_fields(r#"{"a":1,"skipped":[}"#, &["a"]).is_err());
    }
}

#[cfg(test)]
mod lossy_tests {
    use super::*;

    fn incident() -> Incident {
        static SPEC: dossier_domain::ProducerSpec = dossier_domain::ProducerSpec {
            name: "bounded",
            vendor: "Bounded",
            engine_type: "endpoint",
            judged: dossier_domain::Judged::ByConfidence,
        };
        let at = chrono::DateTime::UNIX_EPOCH;
        Incident {
            producer: dossier_domain::Producer::new(&SPEC),
            external_id: "1".into(),
            created_at: at,
            updated_at: at,
            device: dossier_domain::Device::default(),
            file: dossier_domain::FileInfo::default(),
            threat_name: None,
            classification: None,
            confidence_level: None,
            mitigation_status: None,
            analyst_verdict: None,
            confidence: dossier_domain::vocabulary::Confidence::default(),
            mitigation: dossier_domain::vocabulary::Mitigation::default(),
            producer_verdict: dossier_domain::vocabulary::ProducerVerdict::default(),
            severity: None,
            incident_status: None,
            engines: Vec::new(),
            storyline: None,
            initiated_by: None,
            is_fileless: false,
            mitre: Vec::new(),
            mitigation_actions: Vec::new(),
            console_url: None,
            context: dossier_domain::context::Context::default(),
            raw: String::new(),
        }
    }

    #[test]
    fn lone_surrogates_become_replacement_characters_and_pairs_stay() {
        let cases = [
            (r#"{"p":"C:\\a\ud800b"}"#, r#"{"p":"C:\\a\uFFFDb"}"#),
            (r#"{"p":"\udc00"}"#, r#"{"p":"\uFFFD"}"#),
            (
                r#"{"p":"\ud800\ud800\udc00"}"#,
                r#"{"p":"\uFFFD\ud800\udc00"}"#,
            ),
            (r#"{"p":"\ud800\u0041"}"#, r#"{"p":"\uFFFD\u0041"}"#),
            (r#"{"p":"x\ud800"}"#, r#"{"p":"x\uFFFD"}"#),
        ];
        for (text, want) in cases {
            assert_eq!(lossy_surrogates(text), want, "{text}");
            let v: serde_json::Value = serde_json::from_str(&lossy_surrogates(text))
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(v["p"].is_string());
        }
        for kept in [
            r#"{"p":"\ud83d\ude00"}"#,
            r#"{"p":"\\ud800"}"#,
            r#"{"p":"\\\ud83d\ude00"}"#,
            "{\"p\":\"plain ünïcode\"}",
            r#"{"p":"\u00e9"}"#,
        ] {
            assert!(
                matches!(lossy_surrogates(kept), Cow::Borrowed(_)),
                "{kept} must be left as it is"
            );
        }
        assert_eq!(lossy_surrogates(r"\\\ud800"), r"\\\uFFFD");
    }

    #[test]
    fn ids_are_refused_rather_than_trimmed() {
        assert_eq!(record_id("42"), Ok("42".into()));
        assert_eq!(record_id(""), Err(BadId::Empty));
        assert_eq!(record_id(" 42"), Err(BadId::Padded(" 42".into())));
        assert_eq!(record_id("42\t"), Err(BadId::Padded("42\t".into())));
        assert_eq!(record_id(&"9".repeat(NAME_MAX + 1)), Err(BadId::TooLong));
    }

    #[test]
    fn strings_are_cut_on_a_character_boundary_with_a_marker() {
        let mut short = "é".repeat(10);
        bound(&mut short, 20);
        assert_eq!(short, "é".repeat(10), "within the bound: untouched");
        let mut long = "é".repeat(1000);
        bound(&mut long, NAME_MAX);
        assert!(long.len() <= NAME_MAX, "{}", long.len());
        assert!(long.ends_with(TRUNCATED));
        assert!(long.trim_end_matches(TRUNCATED).chars().all(|c| c == 'é'));
        let mut tiny = "abcdef".to_owned();
        bound(&mut tiny, 3);
        assert_eq!(tiny, TRUNCATED, "a bound below the marker keeps the marker");
    }

    #[test]
    fn every_string_of_an_incident_is_bounded_by_its_kind_and_raw_is_kept() {
        let big = "x".repeat(100_000);
        let raw = format!(r#"{{"name":"{big}"}}"#);
        let record = RawValue::from_string(raw.clone()).unwrap_or_else(|_| unreachable!());
        let incident = keep_raw(record, |text| {
            let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
            let s = v["name"].as_str().map(str::to_owned);
            let mut i = incident();
            i.threat_name.clone_from(&s);
            i.file.path.clone_from(&s);
            i.device.name.clone_from(&s);
            i.console_url.clone_from(&s);
            i.engines = vec![big.clone()];
            i.context.processes = vec![dossier_domain::context::ProcessInfo {
                name: s.clone(),
                command_line: s.clone(),
                path: s.clone(),
                ..Default::default()
            }];
            i.context.users = vec![dossier_domain::context::UserRef {
                name: big.clone(),
                role: dossier_domain::context::UserRole::Process,
            }];
            i.context.indicators = vec![dossier_domain::context::Indicator {
                description: s.clone(),
                ..Default::default()
            }];
            Ok::<_, String>(i)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(incident.raw, raw, "the raw JSON is kept whole");
        for (s, max) in [
            (incident.threat_name.as_deref(), NAME_MAX),
            (incident.device.name.as_deref(), NAME_MAX),
            (incident.file.path.as_deref(), PATH_MAX),
            (incident.console_url.as_deref(), PATH_MAX),
            (incident.engines.first().map(String::as_str), NAME_MAX),
            (incident.context.users[0].name.as_str().into(), NAME_MAX),
            (incident.context.processes[0].name.as_deref(), NAME_MAX),
            (incident.context.processes[0].path.as_deref(), PATH_MAX),
            (
                incident.context.processes[0].command_line.as_deref(),
                COMMAND_LINE_MAX,
            ),
            (
                incident.context.indicators[0].description.as_deref(),
                PATH_MAX,
            ),
        ] {
            let s = s.unwrap_or_default();
            assert!(s.len() <= max && s.len() > max - 20, "{} > {max}", s.len());
            assert!(s.ends_with(TRUNCATED));
        }
    }
}

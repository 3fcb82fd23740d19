//! `map_threat` and `parse_page` never panic, whatever JSON they get, and a wrong type in a
//! non-essential field never costs the whole threat.

use dossier_sentinelone::{map_threat, parse_error, parse_page};
use proptest::prelude::*;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::samples::{all_threats, read, BARE_THREATS};

/// Keys the mapping and envelope read, so generated trees hit the interesting paths.
const KEYS: &[&str] = &[
    "id",
    "threatInfo",
    "threatId",
    "createdAt",
    "updatedAt",
    "identifiedAt",
    "sha1",
    "sha256",
    "md5",
    "fileSize",
    "filePath",
    "threatName",
    "engines",
    "detectionEngines",
    "title",
    "isFileless",
    "initiatedBy",
    "agentRealtimeInfo",
    "agentDetectionInfo",
    "agentUuid",
    "agentId",
    "agentIpV4",
    "agentIpV6",
    "networkInterfaces",
    "inet",
    "inet6",
    "indicators",
    "tactics",
    "techniques",
    "name",
    "link",
    "mitigationStatus",
    "action",
    "status",
    "data",
    "pagination",
    "nextCursor",
    "totalItems",
    "errors",
    "code",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just(String::new()),
            Just("null".to_owned()),
            Just("2021-03-16T14:00:16.879105Z".to_owned()),
            Just("T1059".to_owned()),
            Just("https://attack.mitre.org/techniques/T1204/002".to_owned()),
            "[a-fA-F0-9]{0,70}",
            "\\PC{0,20}",
            "star_[a-z]{0,6}",
        ]
        .prop_map(Value::String),
    ]
}

pub fn arb_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(KEYS).prop_map(str::to_owned),
                        "[a-z]{1,8}"
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every JSON pointer inside `v` (not the root).
fn pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    let escape = |k: &str| k.replace('~', "~0").replace('/', "~1");
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{at}/{}", escape(k));
                out.push(p.clone());
                pointers(child, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(child, &p, out);
            }
        }
        _ => {}
    }
}

fn remove(root: &mut Value, pointer: &str) {
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let last = last.replace("~1", "/").replace("~0", "~");
    match root.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.remove(&last);
        }
        Some(Value::Array(a)) => {
            a.remove(last.parse::<usize>().unwrap());
        }
        _ => {}
    }
}

/// Paths whose loss may legitimately fail a threat: the id and the timestamps.
fn essential(pointer: &str) -> bool {
    [
        "/id",
        "/threatInfo",
        "/threatInfo/threatId",
        "/threatInfo/createdAt",
        "/threatInfo/updatedAt",
        "/threatInfo/identifiedAt",
    ]
    .contains(&pointer)
}

fn samples() -> Vec<Value> {
    BARE_THREATS
        .iter()
        .map(|f| serde_json::from_str(&read(f)).unwrap())
        .collect()
}

proptest! {
    // 512 cases in every test run; a fuzzing run sets PROPTEST_CASES higher. Failing inputs
    // are kept in proptest-regressions/ and replayed first.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn map_threat_never_panics_on_any_json(v in arb_json()) {
        let raw = RawValue::from_string(v.to_string()).unwrap();
        if let Ok(i) = map_threat(&raw) {
            prop_assert!(!i.external_id.is_empty());
            prop_assert_eq!(i.raw.as_str(), raw.get());
        }
    }

    #[test]
    fn parse_page_never_panics_on_any_json(v in arb_json()) {
        let body = v.to_string();
        let _ = parse_error(body.as_bytes());
        if let Ok(page) = parse_page(body.as_bytes()) {
            prop_assert!(page.next_cursor.as_deref() != Some("null"));
            prop_assert!(page.next_cursor.as_deref() != Some(""));
            for t in &page.threats {
                let _ = map_threat(t);
            }
        }
    }

    #[test]
    fn parse_page_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_page(&body);
        let _ = parse_error(&body);
    }

    #[test]
    fn truncated_pages_are_errors(cut in 0usize..15108) {
        let body = read("demisto_eventcollector_threats.json");
        let cut = cut.min(body.len() - 1);
        prop_assert!(parse_page(&body.as_bytes()[..cut]).is_err());
    }

    #[test]
    fn mutated_samples_still_map(sample in 0usize..8, pick in any::<prop::sample::Index>(),
                                 drop_it in any::<bool>(), replacement in arb_json()) {
        let mut v = samples().swap_remove(sample);
        let before = map_threat(&RawValue::from_string(v.to_string()).unwrap()).unwrap();
        let mut paths = Vec::new();
        pointers(&v, "", &mut paths);
        let path = pick.get(&paths).clone();
        if drop_it {
            remove(&mut v, &path);
        } else if let Some(slot) = v.pointer_mut(&path) {
            *slot = replacement;
        }
        let raw = RawValue::from_string(v.to_string()).unwrap();
        let after = map_threat(&raw);
        if !essential(&path) {
            // A wrong or missing non-essential field degrades to None; the threat survives.
            let after = after.map_err(|e| TestCaseError::fail(format!("{path}: {e}")))?;
            prop_assert_eq!(after.external_id, before.external_id);
        }
    }
}

#[test]
fn envelope_borne_threats_survive_key_drops() {
    // Drop each top-level key of every sample threat in turn: only an id loss may fail.
    for (name, raw) in all_threats() {
        let v: Value = serde_json::from_str(raw.get()).unwrap();
        for key in v.as_object().unwrap().keys() {
            let mut w = v.clone();
            w.as_object_mut().unwrap().remove(key);
            let r = map_threat(&RawValue::from_string(w.to_string()).unwrap());
            if key != "id" && key != "threatInfo" {
                assert!(r.is_ok(), "{name} without {key}: {r:?}");
            }
        }
    }
}

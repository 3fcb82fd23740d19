//! The kept fuzzing corpus: hostile inputs found or written while fuzzing the mapper and the
//! envelope parser (`tests/corpus/`), each with the outcome it must keep (`tests/corpus/EXPECTED`).
//! Inputs that proptest finds are kept by proptest itself (`proptest-regressions/`) and replayed
//! first on every run; a longer fuzzing run is `PROPTEST_CASES=100000 cargo test -p
//! dossier-sentinelone --test it props`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use dossier_sentinelone::{map_threat, parse_error, parse_page};
use serde_json::value::RawValue;

/// What each input gives: `page` (`parse_page`), `threat` (`map_threat` of the whole document),
/// each `ok` or `err`; `-` when the document is not JSON a threat could be read from.
fn outcome(body: &[u8]) -> String {
    let page = match parse_page(body) {
        Ok(p) => {
            for t in &p.threats {
                let _ = map_threat(t);
            }
            "ok"
        }
        Err(_) => "err",
    };
    let _ = parse_error(body);
    let threat = match std::str::from_utf8(body)
        .ok()
        .and_then(|s| RawValue::from_string(s.to_owned()).ok())
    {
        Some(raw) => match map_threat(&raw) {
            Ok(i) => {
                assert!(!i.external_id.is_empty());
                "ok"
            }
            Err(_) => "err",
        },
        None => "-",
    };
    format!("page={page} threat={threat}")
}

#[test]
fn the_corpus_keeps_its_outcomes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let expected: BTreeMap<String, String> = std::fs::read_to_string(dir.join("EXPECTED"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, rest) = l.split_once(' ').unwrap();
            (name.to_owned(), rest.trim().to_owned())
        })
        .collect();
    let mut seen = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let got = outcome(&std::fs::read(&path).unwrap());
            seen.insert(name, got);
        }
    }
    let listing = seen.iter().fold(String::new(), |mut listing, (n, o)| {
        let _ = writeln!(listing, "{n} {o}");
        listing
    });
    assert_eq!(
        seen, expected,
        "every corpus file needs its outcome in EXPECTED; now:\n{listing}"
    );
}

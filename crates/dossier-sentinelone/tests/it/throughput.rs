//! Mapping throughput on a page of 1000 realistic threats. Run in release mode:
//! `cargo test --release -p dossier-sentinelone --test it -- --ignored throughput --nocapture`

use std::time::Instant;

use dossier_sentinelone::{map_threat, parse_page};

use crate::samples::all_threats;

/// A 1000-threat page cycling through the real samples (doc example excluded), ids made unique.
fn realistic_page() -> String {
    let samples: Vec<String> = all_threats()
        .into_iter()
        .filter(|(name, _)| name != "swimlane_get_threats")
        .map(|(_, raw)| raw.get().to_owned())
        .collect();
    let threats: Vec<String> = (0..1000)
        .map(|i| {
            let mut v: serde_json::Value =
                serde_json::from_str(&samples[i % samples.len()]).unwrap();
            v["id"] =
                serde_json::Value::String(format!("{}", 1_700_000_000_000_000_000u64 + i as u64));
            v.to_string()
        })
        .collect();
    format!(
        r#"{{"data":[{}],"pagination":{{"nextCursor":"YWdlbnRfaWQ6NTgwMjkzODE=","totalItems":100000}}}}"#,
        threats.join(",")
    )
}

#[test]
#[ignore = "benchmark: run in release mode with --ignored"]
fn throughput() {
    let body = realistic_page();
    let rounds = 30;
    let started = Instant::now();
    let mut mapped = 0usize;
    for _ in 0..rounds {
        let page = parse_page(body.as_bytes()).unwrap();
        for t in &page.threats {
            map_threat(t).unwrap();
            mapped += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let per_sec = mapped as f64 / secs;
    let mb_per_sec = (body.len() * rounds) as f64 / secs / 1e6;
    println!(
        "parse_page + map_threat: {mapped} threats ({} bytes/page, {:.1} KB/threat) in {secs:.3}s \
         = {per_sec:.0} threats/s, {mb_per_sec:.0} MB/s",
        body.len(),
        body.len() as f64 / 1000.0 / 1000.0
    );
    if !cfg!(debug_assertions) {
        assert!(per_sec >= 20_000.0, "{per_sec:.0} threats/s");
    }
}

//! `dossier bench --scale-out`: at a tiny size, the three ways run on the same input and every
//! figure and ratio is printed. It needs a PostgreSQL server (`DOSSIER_TEST_PG_URL`, or the
//! local one) and says `SKIPPED` where none answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::process::Command;

#[test]
fn scale_out_prints_the_three_ways_side_by_side() {
    let url = std::env::var("DOSSIER_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    if let Err(e) = postgres::Client::connect(&url, postgres::NoTls) {
        println!("SKIPPED: bench --scale-out: no server at {url} ({e}); set DOSSIER_TEST_PG_URL");
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_dossier"))
        .args([
            "bench",
            "--scale-out",
            &url,
            "--threats",
            "2000",
            "--agents",
            "120",
            "--tenants",
            "6",
            "--stories",
            "5000",
            "--latency-seconds",
            "2",
            "--latency-rate",
            "5",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let figures: HashMap<&str, f64> = stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
        .collect();
    for way in ["sqlite", "pg1", "pg3"] {
        for figure in ["ingest_threats_per_s", "latency_p99_ms", "list_p95_ms"] {
            let name = format!("{way}_{figure}");
            assert!(
                figures.get(name.as_str()).is_some_and(|v| *v > 0.0),
                "{name} missing or not positive in:\n{stdout}"
            );
        }
    }
    for ratio in ["pg3_vs_pg1", "pg1_vs_sqlite"] {
        assert!(
            figures
                .get(ratio)
                .is_some_and(|v| v.is_finite() && *v > 0.0),
            "{ratio} missing in:\n{stdout}"
        );
    }
    // The three ways read the same threats, so they make the same stories.
    assert!(figures.get("scale_stories").is_some_and(|v| *v > 0.0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("different numbers of stories"));
}

//! Scale-out: the same input (same seed, tenants and threats) ingested, timed and listed three
//! ways side by side, one node on SQLite, one node on PostgreSQL and three nodes sharing one
//! PostgreSQL database, to see what a second database engine costs and what more nodes give.
//!
//! Each PostgreSQL run gets a fresh schema of its own (`bench_…`), named in the URL's
//! `search_path`, and dropped after the runs unless asked to keep it.

use super::{ingest, latency, list, median, BenchOptions, Db};

/// Nodes in the scale-out run: the question is what three nodes give over one.
const NODES: usize = 3;

/// The ways compared, in the order printed: their prefix, database and node count.
const WAYS: [(&str, bool, usize); 3] =
    [("sqlite", false, 1), ("pg1", true, 1), ("pg3", true, NODES)];

pub async fn run(o: &BenchOptions, base: &str) -> anyhow::Result<()> {
    if !crate::options::is_postgres(base) {
        anyhow::bail!("--scale-out: a postgres:// URL, please");
    }
    let mut schemas = Schemas {
        base: base.to_owned(),
        made: Vec::new(),
    };
    let result = compare(o, &mut schemas).await;
    if o.keep_schemas {
        for s in &schemas.made {
            eprintln!("scale: kept schema {s}");
        }
    } else if let Err(e) = schemas.drop_all().await {
        eprintln!(
            "scale: could not drop the benchmark schemas {:?}: {e}",
            schemas.made
        );
    }
    result
}

/// Runs the benchmarks the three ways and prints their figures, prefixed with the way.
async fn compare(o: &BenchOptions, schemas: &mut Schemas) -> anyhow::Result<()> {
    println!("scale_tenants={}", o.tenants);
    println!("scale_nodes={NODES}");
    let skip = |name: &str| o.skip.iter().any(|s| s == name);
    let mut per_s = [f64::NAN; 3];
    if !skip("ingest") {
        let mut stories = Vec::new();
        for (i, &(way, pg, nodes)) in WAYS.iter().enumerate() {
            let mut runs = Vec::new();
            let mut spread = Vec::new();
            for k in 1..=o.ingest_runs {
                let db = schemas.db(pg).await?;
                eprintln!("scale: ingest {way} ({k}/{})", o.ingest_runs);
                let r = ingest::run_on(o, &db, nodes).await?;
                let rate = r.threats as f64 / r.seconds;
                eprintln!(
                    "scale: ingest {way}: {} threats in {:.1}s, {rate:.0}/s, {} stories{}",
                    r.threats,
                    r.seconds,
                    r.stories,
                    r.spread_after.map_or_else(String::new, |s| format!(
                        ", connectors spread after {s:.1}s"
                    ))
                );
                stories.push((way, r.stories));
                runs.push(rate);
                spread.extend(r.spread_per_s);
            }
            per_s[i] = median(runs);
            println!("{way}_ingest_threats_per_s={:.0}", per_s[i]);
            if nodes > 1 && !spread.is_empty() {
                // From the moment every node holds its share: what the nodes sustain together,
                // without the first second or two when the first node held more.
                println!("{way}_ingest_spread_threats_per_s={:.0}", median(spread));
            }
        }
        if stories.iter().any(|(_, n)| *n != stories[0].1) {
            eprintln!("scale: WARNING: the ways made different numbers of stories: {stories:?}");
        }
        println!("scale_stories={}", stories.first().map_or(0, |s| s.1));
    }
    if !skip("latency") {
        for &(way, pg, nodes) in &WAYS {
            let db = schemas.db(pg).await?;
            eprintln!("scale: latency {way}");
            let l = latency::run_on(o, &db, nodes).await?;
            println!("{way}_latency_p50_ms={:.0}", l.p50_ms);
            println!("{way}_latency_p99_ms={:.0}", l.p99_ms);
        }
    }
    if !skip("list") {
        // One seeding per database (a million stories take minutes to write): the PostgreSQL
        // one is listed through one node, then through three in turn.
        println!("list_stories={}", o.stories);
        for (pg, ways) in [(false, &["sqlite"][..]), (true, &["pg1", "pg3"][..])] {
            let db = schemas.db(pg).await?;
            let counts: Vec<usize> = WAYS
                .iter()
                .filter(|w| ways.contains(&w.0))
                .map(|w| w.2)
                .collect();
            eprintln!("scale: list {}", ways.join(", "));
            let results = list::run_on(o, &db, &counts, false).await?;
            for (way, l) in ways.iter().zip(results) {
                println!("{way}_list_p50_ms={:.1}", l.p50_ms);
                println!("{way}_list_p95_ms={:.1}", l.p95_ms);
            }
        }
    }
    if !skip("ingest") {
        println!("pg3_vs_pg1={:.2}", per_s[2] / per_s[1]);
        println!("pg1_vs_sqlite={:.2}", per_s[1] / per_s[0]);
    }
    Ok(())
}

/// The schemas made in the PostgreSQL database, to drop at the end.
struct Schemas {
    base: String,
    made: Vec<String>,
}

impl Schemas {
    /// A fresh database for one run: a new SQLite file (made by the servers) or a new schema.
    async fn db(&mut self, pg: bool) -> anyhow::Result<Db> {
        if !pg {
            return Ok(Db::Sqlite);
        }
        let schema = format!("bench_{:016x}", rand::random::<u64>());
        execute(&self.base, format!("CREATE SCHEMA {schema}")).await?;
        self.made.push(schema.clone());
        let sep = if self.base.contains('?') { '&' } else { '?' };
        Ok(Db::Postgres(format!(
            "{}{sep}options=-c%20search_path%3D{schema}",
            self.base
        )))
    }

    async fn drop_all(&self) -> anyhow::Result<()> {
        if self.made.is_empty() {
            return Ok(());
        }
        let sql: Vec<String> = self
            .made
            .iter()
            .map(|s| format!("DROP SCHEMA IF EXISTS {s} CASCADE;"))
            .collect();
        execute(&self.base, sql.join("\n")).await
    }
}

/// Runs `sql` on the database at `url`. The blocking client runs a runtime of its own, which
/// may not start on a thread of the async runtime: it runs on a thread of its own.
async fn execute(url: &str, sql: String) -> anyhow::Result<()> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || -> anyhow::Result<()> {
            let mut c = postgres::Client::connect(&url, postgres::NoTls)?;
            c.batch_execute(&sql)?;
            Ok(())
        })
        .join()
    })
    .await?
    .map_err(|_| anyhow::anyhow!("the benchmark's database statement panicked"))?
}

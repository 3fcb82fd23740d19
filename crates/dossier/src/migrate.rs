//! `dossier migrate --from sqlite://PATH --to postgres://URL`: moves an installation from the
//! embedded SQLite database to a PostgreSQL one, so that several nodes can share it.
//!
//! Every table is copied in its primary key's order, a batch of rows per PostgreSQL
//! transaction, and the last key copied of each table is written in that same transaction
//! (`dossier_migration`). A run that is interrupted (Ctrl-C, a kill, a lost connection) loses
//! at most the batch it was writing, which PostgreSQL rolls back, and the next run with the
//! same arguments goes on after the last key committed: nothing is copied twice.
//!
//! Rows are written with `COPY … FROM STDIN` (text format). Measured on 190,000 incidents
//! and their bodies (142,000 stories, 373,000 events), the whole copy took 75 s against 90 s
//! with one `INSERT … SELECT FROM UNNEST(…)` a batch: stories went twice as fast, events and
//! incidents a third faster; bodies, bound by the server compressing them, the same. The other
//! way is kept behind `--write-with` to measure it again.
//!
//! The run ends by comparing both databases: every table's row count, every story id, and
//! that the copied events read back in commit order; it fails when anything differs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use postgres::types::ToSql;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags};

use crate::options::{is_postgres, redact_url, remap};

#[derive(Args, Debug, Clone)]
pub struct MigrateOptions {
    /// The SQLite database to copy: `sqlite://PATH`. It is only read (after its schema is
    /// brought up to date); stop every `dossier serve` using it first.
    #[arg(long)]
    pub from: String,
    /// The PostgreSQL database to copy into: `postgres://…`. Its schema is created if needed;
    /// it must hold no other installation's data.
    #[arg(long)]
    pub to: String,
    /// Rows per batch: each batch is one PostgreSQL transaction, and the most an interrupted
    /// run copies again.
    #[arg(long, default_value_t = 5000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_rows: u32,
    /// How rows are written: `copy` (the default, the faster) or `insert` (`INSERT … SELECT
    /// FROM UNNEST`). Kept to measure one against the other.
    #[arg(long, value_enum, default_value_t = WriteWith::Copy, hide = true)]
    pub write_with: WriteWith,
    /// For tests of resuming: stop, failing, once at least this many rows were committed by
    /// this run, as an interrupted run would.
    #[arg(long, hide = true)]
    pub stop_after_rows: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WriteWith {
    Copy,
    Insert,
}

/// What a column holds, which says how it is read from SQLite and written to PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int,
    Text,
    Bytes,
    /// An incident's raw JSON: in SQLite a compressed body (or text), read together with the
    /// row's normalised body, which PostgreSQL does not keep.
    Body,
}

/// A table copied, its columns named alike in both schemas.
struct Table {
    name: &'static str,
    /// The primary key, in order: the order rows are copied in and a run resumes from.
    key: &'static [&'static str],
    columns: &'static [(&'static str, Kind)],
}

impl Table {
    /// Whether `seq` is an identity column in PostgreSQL, whose sequence must be moved past
    /// the copied rows so that new rows do not collide with them.
    fn identity(&self) -> bool {
        self.key == ["seq"] && self.name != "incident_bodies"
    }

    fn key_indexes(&self) -> Vec<usize> {
        self.key
            .iter()
            .filter_map(|k| self.columns.iter().position(|(c, _)| c == k))
            .collect()
    }
}

use Kind::{Body, Bytes, Int, Text};

/// Every table that holds an installation's data, in an order that copies each row after the
/// rows its foreign keys name (accounts before keys and users, users before their sessions).
/// PostgreSQL's own tables (nodes, leases, sign-in failures, the event clock) start empty.
const TABLES: &[Table] = &[
    Table {
        name: "accounts",
        key: &["id"],
        columns: &[
            ("id", Text),
            ("name", Text),
            ("licence", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "api_keys",
        key: &["id"],
        columns: &[
            ("id", Text),
            ("account_id", Text),
            ("key_hash", Text),
            ("roles", Text),
            ("created_at", Int),
            ("name", Text),
        ],
    },
    Table {
        name: "connectors",
        key: &["id"],
        columns: &[
            ("id", Text),
            ("account_id", Text),
            ("kind", Text),
            ("name", Text),
            ("description", Text),
            ("tenant_url", Text),
            ("token_enc", Bytes),
            ("track_errors", Int),
            ("write_back", Int),
            ("status", Text),
            ("status_detail", Text),
            ("last_success_at", Int),
            ("token_expires_at", Int),
            ("expiry_warned", Int),
            ("created_at", Int),
            ("updated_at", Int),
            ("checkpoint", Text),
            ("polls", Int),
            ("errors", Int),
            ("threats", Int),
            ("generation", Int),
            ("config", Text),
            ("response", Int),
        ],
    },
    Table {
        name: "users",
        key: &["id"],
        columns: &[
            ("id", Text),
            ("account_id", Text),
            ("username", Text),
            ("password_hash", Text),
            ("roles", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "sessions",
        key: &["id_hash"],
        columns: &[
            ("id_hash", Text),
            ("user_id", Text),
            ("csrf", Text),
            ("created_at", Int),
            ("expires_at", Int),
        ],
    },
    Table {
        name: "user_settings",
        key: &["user_id", "name"],
        columns: &[("user_id", Text), ("name", Text), ("value", Text)],
    },
    Table {
        name: "account_epochs",
        key: &["account_id"],
        columns: &[("account_id", Text), ("epoch", Int)],
    },
    Table {
        name: "file_aliases",
        key: &["account_id", "hash"],
        columns: &[("account_id", Text), ("hash", Text), ("file_id", Text)],
    },
    Table {
        name: "stories",
        key: &["seq"],
        columns: &[
            ("seq", Int),
            ("id", Text),
            ("account_id", Text),
            ("producer", Text),
            ("engine_type", Text),
            ("vendor", Text),
            ("connector_id", Text),
            ("story_key", Text),
            ("previous_id", Text),
            ("indication", Text),
            ("status", Text),
            ("verdict", Text),
            ("severity", Text),
            ("criticality", Int),
            ("criticality_detail", Text),
            ("outbreak_tier", Int),
            ("created_at", Int),
            ("updated_at", Int),
            ("first_signal_at", Int),
            ("last_signal_at", Int),
            ("incident_count", Int),
            ("agent_uuid", Text),
            ("device_name", Text),
            ("os", Text),
            ("sha1", Text),
            ("sha256", Text),
            ("md5", Text),
            ("file_name", Text),
            ("file_path", Text),
            ("file_hash", Text),
            ("mitigation", Text),
            ("closed_at", Int),
            ("search", Text),
            ("assignee", Text),
            ("close_reason", Text),
        ],
    },
    Table {
        name: "story_aliases",
        key: &["old_id"],
        columns: &[("old_id", Text), ("new_id", Text)],
    },
    Table {
        name: "incidents",
        key: &["seq"],
        columns: &[
            ("seq", Int),
            ("connector_id", Text),
            ("external_id", Text),
            ("account_id", Text),
            ("story_id", Text),
            ("created_at", Int),
            ("updated_at", Int),
            ("agent", Text),
            ("sha1", Text),
            ("sha256", Text),
            ("md5", Text),
            ("storyline", Text),
            ("confidence_rank", Int),
            ("false_positive", Int),
            ("producer", Text),
            ("unmitigated", Int),
        ],
    },
    Table {
        name: "incident_bodies",
        key: &["seq"],
        columns: &[("seq", Int), ("raw", Body)],
    },
    Table {
        name: "timeline",
        key: &["seq"],
        columns: &[
            ("seq", Int),
            ("story_id", Text),
            ("at", Int),
            ("kind", Text),
            ("actor", Text),
            ("text", Text),
        ],
    },
    Table {
        name: "comments",
        key: &["id"],
        columns: &[
            ("id", Text),
            ("story_id", Text),
            ("author", Text),
            ("text", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "audit_log",
        key: &["seq"],
        columns: &[
            ("seq", Int),
            ("account_id", Text),
            ("at", Int),
            ("actor", Text),
            ("action", Text),
            ("target", Text),
            ("detail", Text),
        ],
    },
    // Last: each batch's transaction draws the next commit number of the event clock (the
    // schema's deferred trigger), so events copied in `seq` order tail in that order.
    Table {
        name: "events",
        key: &["seq"],
        columns: &[
            ("seq", Int),
            ("account_id", Text),
            ("type", Text),
            ("at", Int),
            ("connector_id", Text),
            ("story_id", Text),
            ("incident_id", Text),
            ("message", Text),
            ("data", Text),
        ],
    },
];

/// Where a migration into this PostgreSQL database stands, per table; written in the same
/// transaction as each batch, so it never says more (or less) was copied than was.
const PROGRESS_TABLE: &str = "CREATE TABLE IF NOT EXISTS dossier_migration (
    table_name  TEXT COLLATE \"C\" PRIMARY KEY,
    source      TEXT NOT NULL,
    last_key    TEXT,
    rows        BIGINT NOT NULL,
    done        BOOLEAN NOT NULL
)";

/// One table's place in the migration.
#[derive(Debug, Default, Clone)]
struct Progress {
    /// The key of the last row copied (a JSON array of its columns), `None` before the first.
    last_key: Option<String>,
    rows: u64,
    done: bool,
}

pub async fn run(o: MigrateOptions) -> anyhow::Result<()> {
    // The blocking PostgreSQL client runs a runtime of its own, which may not start on a
    // thread of the async runtime: the whole migration runs on a thread of its own.
    let thread = std::thread::Builder::new()
        .name("migrate".into())
        .spawn(move || migrate(&o))
        .context("cannot start the migration's thread")?;
    tokio::task::spawn_blocking(move || thread.join())
        .await?
        .map_err(|_| anyhow!("the migration panicked"))?
}

fn migrate(o: &MigrateOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    let path = sqlite_file(&o.from)?;
    if !is_postgres(&o.to) {
        bail!("--to: give a postgres://… URL");
    }
    let shown_to = redact_url(&o.to);
    // Opening it through the store migrates an older installation's schema (and backfills
    // what later versions derive from stored threats), so the copy reads the latest schema.
    drop(
        dossier_store_sqlite::SqliteStore::open(&o.from, remap())
            .with_context(|| format!("--from: cannot open {}", path.display()))?,
    );
    let sqlite = read_only(&path)?;
    // The store migrates the PostgreSQL schema, under its lock, as a node starting would.
    drop(
        dossier_store_postgres::PostgresStore::open(
            &o.to,
            remap(),
            &dossier_store_postgres::Settings::default(),
        )
        .with_context(|| format!("--to: cannot open {shown_to}"))?,
    );
    let mut pg = connect(&o.to).with_context(|| format!("--to: cannot connect to {shown_to}"))?;
    let locked: bool = pg
        .query_one(
            "SELECT pg_try_advisory_lock(hashtextextended('dossier migrate ' || coalesce(current_schema(), ''), 0))",
            &[],
        )?
        .get(0);
    if !locked {
        bail!("another `dossier migrate` is copying into {shown_to}; wait for it to end");
    }
    let source = std::fs::canonicalize(&path)
        .unwrap_or_else(|_| path.clone())
        .display()
        .to_string();
    let mut progress = resume_or_refuse(&mut pg, &source)?;
    if progress.is_empty() {
        pg.batch_execute(PROGRESS_TABLE)?;
    }

    eprintln!(
        "copying {} into {shown_to}, {} rows a batch",
        path.display(),
        o.batch_rows
    );
    let mut copier = Copier {
        sqlite: &sqlite,
        path: &path,
        pg: &mut pg,
        source: &source,
        batch_rows: o.batch_rows as usize,
        write_with: o.write_with,
        stop_after_rows: o.stop_after_rows,
        copied_this_run: 0,
        bodies_without_raw: Vec::new(),
    };
    let mut summary = Vec::new();
    for table in TABLES {
        let at = progress.remove(table.name).unwrap_or_default();
        summary.push(copier.copy(table, at)?);
    }
    let bodies_without_raw = std::mem::take(&mut copier.bodies_without_raw);

    let mut out = String::new();
    for (name, copied, seconds) in &summary {
        if *copied > 0 {
            let _ = writeln!(
                out,
                "copied {name}: {copied} rows in {seconds:.1} s ({:.0} rows/s)",
                *copied as f64 / seconds
            );
        }
    }
    if !bodies_without_raw.is_empty() {
        let _ = writeln!(
            out,
            "warning: {} incidents (seq {}) stored no raw JSON, only a normalised form, which PostgreSQL does not keep: they and their stories are copied, but their threat's fields are not; keep the SQLite file",
            bodies_without_raw.len(),
            list_some(&bodies_without_raw)
        );
    }
    let differences = compare(&sqlite, &mut pg, &mut out)?;
    let _ = writeln!(
        out,
        "connector tokens are copied sealed: every node must use the secret key file the SQLite installation used (--secret-key-file, by default dossier-secret.key beside the database)"
    );
    let _ = writeln!(
        out,
        "migrated {} to {shown_to} in {:.1} s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    print!("{out}");
    std::io::stdout().flush()?;
    if differences > 0 {
        bail!("{differences} differences between the SQLite and PostgreSQL databases (see above)");
    }
    Ok(())
}

/// The SQLite file a `--from` URL names, which must exist: opening a missing one would make
/// an empty database and copy nothing.
fn sqlite_file(url: &str) -> anyhow::Result<PathBuf> {
    let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        bail!("--from: give a sqlite://PATH URL");
    };
    if path.is_empty() || path.contains(":memory:") {
        bail!("--from: give the path of the SQLite database file");
    }
    let path = Path::new(path);
    if !path.is_file() {
        bail!("--from: no SQLite database at {}", path.display());
    }
    Ok(path.to_path_buf())
}

/// The SQLite file opened to read only: the copy never writes to the installation it moves.
fn read_only(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("--from: cannot open {} to read", path.display()))?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(conn)
}

/// Reads `table` batch by batch after the key `from`, sending each batch (or the error that
/// ended the reading) until the last, or until nobody receives them.
fn read_batches(
    path: &Path,
    table: &Table,
    mut from: Option<String>,
    limit: usize,
    send: &std::sync::mpsc::SyncSender<anyhow::Result<Batch>>,
) {
    let conn = match read_only(path) {
        Ok(c) => c,
        Err(e) => {
            let _ = send.send(Err(e));
            return;
        }
    };
    loop {
        let batch = read_batch(&conn, table, from.as_deref(), limit);
        let last = match &batch {
            Ok(b) => {
                from.clone_from(&b.last_key);
                b.rows < limit
            }
            Err(_) => true,
        };
        if send.send(batch).is_err() || last {
            return;
        }
    }
}

fn connect(url: &str) -> anyhow::Result<postgres::Client> {
    let mut config: postgres::Config = url.parse().context("not a PostgreSQL URL")?;
    config.application_name("dossier migrate");
    config.connect_timeout(Duration::from_secs(10));
    Ok(config.connect(postgres::NoTls)?)
}

/// Where an earlier run into this database stopped, per table; or, when there was none, a
/// refusal if the database already holds data (another installation's, or nodes already
/// running on it), which a copy would mix with this one's.
fn resume_or_refuse(
    pg: &mut postgres::Client,
    source: &str,
) -> anyhow::Result<BTreeMap<String, Progress>> {
    let mut progress = BTreeMap::new();
    let exists: bool = pg
        .query_one("SELECT to_regclass('dossier_migration') IS NOT NULL", &[])?
        .get(0);
    if exists {
        for r in pg.query(
            "SELECT table_name, source, last_key, rows, done FROM dossier_migration",
            &[],
        )? {
            let from: String = r.get(1);
            if from != source {
                bail!(
                    "--to: this database holds a migration from {from}, not from {source}; migrate into an empty database or schema"
                );
            }
            progress.insert(
                r.get::<_, String>(0),
                Progress {
                    last_key: r.get(2),
                    rows: u64::try_from(r.get::<_, i64>(3)).unwrap_or(0),
                    done: r.get(4),
                },
            );
        }
    }
    if !progress.is_empty() {
        let copied: u64 = progress.values().map(|p| p.rows).sum();
        eprintln!("resuming an earlier run that copied {copied} rows");
        return Ok(progress);
    }
    let mut holding = Vec::new();
    for t in TABLES {
        let any: bool = pg
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {})", t.name), &[])?
            .get(0);
        if any {
            holding.push(t.name);
        }
    }
    if !holding.is_empty() {
        bail!(
            "--to: the database already holds data that no `dossier migrate` copied ({}); migrate into an empty database or schema",
            holding.join(", ")
        );
    }
    Ok(progress)
}

/// Copies tables batch by batch, each batch in a transaction of its own.
struct Copier<'a> {
    sqlite: &'a Connection,
    /// The SQLite file, which each table's reader opens for itself.
    path: &'a Path,
    pg: &'a mut postgres::Client,
    source: &'a str,
    batch_rows: usize,
    write_with: WriteWith,
    stop_after_rows: Option<u64>,
    copied_this_run: u64,
    /// Incidents whose SQLite row kept a normalised body but no raw JSON.
    bodies_without_raw: Vec<i64>,
}

impl Copier<'_> {
    /// Copies what is left of `table`: its name, the rows this run copied and the seconds it
    /// took (0 when an earlier run had finished it).
    fn copy(
        &mut self,
        table: &Table,
        mut at: Progress,
    ) -> anyhow::Result<(&'static str, u64, f64)> {
        let total: i64 =
            self.sqlite
                .query_row(&format!("SELECT count(*) FROM {}", table.name), [], |r| {
                    r.get(0)
                })?;
        let total = u64::try_from(total).unwrap_or(0);
        if at.done {
            eprintln!(
                "{}: copied by an earlier run ({} rows)",
                table.name, at.rows
            );
            return Ok((table.name, 0, 0.0));
        }
        let bar = bar(table.name, total, at.rows);
        let started = Instant::now();
        let mut copied = 0u64;
        let mut said = Instant::now();
        let limit = self.batch_rows;
        let path = self.path;
        let from = at.last_key.clone();
        // A thread of its own reads (and decompresses) the next batches from SQLite while
        // this one writes the last to PostgreSQL. When the writing stops early, dropping the
        // receiving end stops the reader.
        std::thread::scope(|scope| -> anyhow::Result<()> {
            let (send, batches) = std::sync::mpsc::sync_channel::<anyhow::Result<Batch>>(2);
            scope.spawn(move || read_batches(path, table, from, limit, &send));
            for batch in batches {
                let batch = batch.with_context(|| format!("reading {} from SQLite", table.name))?;
                self.bodies_without_raw
                    .extend_from_slice(&batch.bodies_without_raw);
                let n = batch.rows as u64;
                at.rows += n;
                at.done = batch.rows < limit;
                if let Some(k) = batch.last_key.clone() {
                    at.last_key = Some(k);
                }
                self.write(table, &batch, &at)
                    .with_context(|| format!("writing {} to PostgreSQL", table.name))?;
                copied += n;
                self.copied_this_run += n;
                bar.set_position(at.rows);
                if bar.is_hidden() && (at.done || said.elapsed() > Duration::from_secs(2)) {
                    eprintln!("{}: {} of {total} rows", table.name, at.rows);
                    said = Instant::now();
                }
                if let Some(stop) = self.stop_after_rows {
                    if self.copied_this_run >= stop {
                        bar.abandon();
                        bail!(
                            "stopped after {} rows, as --stop-after-rows asked",
                            self.copied_this_run
                        );
                    }
                }
                if at.done {
                    break;
                }
            }
            Ok(())
        })?;
        if !at.done {
            bail!(
                "reading {} from SQLite ended before its last row",
                table.name
            );
        }
        bar.finish();
        Ok((
            table.name,
            copied,
            started.elapsed().as_secs_f64().max(1e-6),
        ))
    }

    /// Writes one batch and where the table now stands, in one transaction; the last batch of
    /// a table with an identity column also moves its sequence past the copied rows.
    fn write(&mut self, table: &Table, batch: &Batch, at: &Progress) -> anyhow::Result<()> {
        let mut tx = self.pg.transaction()?;
        if batch.rows > 0 {
            match self.write_with {
                WriteWith::Copy => copy_in(&mut tx, table, batch)?,
                WriteWith::Insert => insert(&mut tx, table, batch)?,
            }
        }
        let rows = i64::try_from(at.rows).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO dossier_migration (table_name, source, last_key, rows, done)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (table_name) DO UPDATE
                 SET last_key = $3, rows = $4, done = $5",
            &[&table.name, &self.source, &at.last_key, &rows, &at.done],
        )?;
        if at.done && table.identity() {
            tx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{0}', 'seq'), max(seq)) FROM {0}
                     HAVING max(seq) IS NOT NULL",
                    table.name
                ),
                &[],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn bar(table: &str, total: u64, at: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>16} {bar:40} {pos}/{len} rows ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(table.to_owned());
    bar.set_position(at);
    bar
}

/// A batch of rows, column by column.
struct Batch {
    columns: Vec<Cells>,
    rows: usize,
    /// The key of the batch's last row (a JSON array), `None` for an empty batch.
    last_key: Option<String>,
    bodies_without_raw: Vec<i64>,
}

enum Cells {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
    Bytes(Vec<Option<Vec<u8>>>),
}

fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

/// The next `limit` rows of `table` after the key `after`, in key order.
fn read_batch(
    conn: &Connection,
    table: &Table,
    after: Option<&str>,
    limit: usize,
) -> anyhow::Result<Batch> {
    let mut select = Vec::new();
    for (name, kind) in table.columns {
        select.push(quoted(name));
        if *kind == Body {
            select.push(quoted("normalised"));
        }
    }
    let key: Vec<String> = table.key.iter().map(|k| quoted(k)).collect();
    let after: Vec<Value> = match after {
        Some(k) => key_values(k)?,
        None => Vec::new(),
    };
    let filter = if after.is_empty() {
        String::new()
    } else {
        let marks: Vec<String> = (1..=after.len()).map(|i| format!("?{i}")).collect();
        format!("WHERE ({}) > ({})", key.join(", "), marks.join(", "))
    };
    let sql = format!(
        "SELECT {} FROM {} {filter} ORDER BY {} LIMIT {limit}",
        select.join(", "),
        table.name,
        key.join(", ")
    );
    let mut columns: Vec<Cells> = table
        .columns
        .iter()
        .map(|(_, kind)| match kind {
            Int => Cells::Int(Vec::with_capacity(limit)),
            Text | Body => Cells::Text(Vec::with_capacity(limit)),
            Bytes => Cells::Bytes(Vec::with_capacity(limit)),
        })
        .collect();
    let mut bodies_without_raw = Vec::new();
    let mut st = conn.prepare(&sql)?;
    let mut rows = st.query(rusqlite::params_from_iter(after.iter()))?;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        let mut j = 0;
        let mut seq = None;
        for (i, (name, kind)) in table.columns.iter().enumerate() {
            let v = r.get_ref(j)?;
            j += 1;
            let bad = |what: &str| anyhow!("{}.{name}: {what}", table.name);
            match (&mut columns[i], kind) {
                (Cells::Int(out), _) => {
                    let x = match v {
                        ValueRef::Null => None,
                        ValueRef::Integer(x) => Some(x),
                        _ => return Err(bad("not an integer")),
                    };
                    if *name == "seq" {
                        seq = x;
                    }
                    out.push(x);
                }
                (Cells::Text(out), Body) => {
                    let normalised = r.get_ref(j)?;
                    j += 1;
                    let (kept, raw) = dossier_store_sqlite::body::unpack_bodies(normalised, v)
                        .map_err(|e| bad(&e.to_string()))?;
                    if raw.is_empty() && kept.is_some() {
                        bodies_without_raw.extend(seq);
                    }
                    out.push(Some(text(raw).map_err(|e| bad(&e))?));
                }
                (Cells::Text(out), _) => out.push(match v {
                    ValueRef::Null => None,
                    ValueRef::Text(t) => Some(
                        text(String::from_utf8(t.to_vec()).map_err(|e| bad(&e.to_string()))?)
                            .map_err(|e| bad(&e))?,
                    ),
                    ValueRef::Integer(x) => Some(x.to_string()),
                    ValueRef::Real(x) => Some(x.to_string()),
                    ValueRef::Blob(_) => return Err(bad("a blob where text belongs")),
                }),
                (Cells::Bytes(out), _) => out.push(match v {
                    ValueRef::Null => None,
                    ValueRef::Blob(b) | ValueRef::Text(b) => Some(b.to_vec()),
                    _ => return Err(bad("not bytes")),
                }),
            }
        }
        n += 1;
    }
    let last_key = (n > 0).then(|| last_key(table, &columns));
    Ok(Batch {
        columns,
        rows: n,
        last_key,
        bodies_without_raw,
    })
}

/// Text as PostgreSQL takes it, which is everything but the NUL character.
fn text(s: String) -> Result<String, String> {
    if s.contains('\0') {
        return Err("text holding a NUL character, which PostgreSQL cannot store".into());
    }
    Ok(s)
}

/// The key of the last row of a batch, as a JSON array.
fn last_key(table: &Table, columns: &[Cells]) -> String {
    let values: Vec<serde_json::Value> = table
        .key_indexes()
        .into_iter()
        .map(|i| match &columns[i] {
            Cells::Int(v) => v.last().copied().flatten().into(),
            Cells::Text(v) => v.last().cloned().flatten().into(),
            Cells::Bytes(_) => serde_json::Value::Null,
        })
        .collect();
    serde_json::Value::Array(values).to_string()
}

/// A stored key read back as SQLite values.
fn key_values(key: &str) -> anyhow::Result<Vec<Value>> {
    let bad = || anyhow!("dossier_migration holds a key this command did not write: {key}");
    let parsed: Vec<serde_json::Value> = serde_json::from_str(key).map_err(|_| bad())?;
    parsed
        .into_iter()
        .map(|v| match v {
            serde_json::Value::Number(n) => n.as_i64().map(Value::Integer).ok_or_else(bad),
            serde_json::Value::String(s) => Ok(Value::Text(s)),
            _ => Err(bad()),
        })
        .collect()
}

fn column_list(table: &Table) -> String {
    table
        .columns
        .iter()
        .map(|(c, _)| quoted(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes a batch with `COPY … FROM STDIN` in the text format.
fn copy_in(tx: &mut postgres::Transaction<'_>, table: &Table, batch: &Batch) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(batch.rows * 256);
    for r in 0..batch.rows {
        for (c, cells) in batch.columns.iter().enumerate() {
            if c > 0 {
                buf.push(b'\t');
            }
            match cells {
                Cells::Int(v) => match v[r] {
                    Some(x) => {
                        let _ = write!(buf, "{x}");
                    }
                    None => buf.extend_from_slice(b"\\N"),
                },
                Cells::Text(v) => match &v[r] {
                    Some(s) => escape_copy_text(s.as_bytes(), &mut buf),
                    None => buf.extend_from_slice(b"\\N"),
                },
                Cells::Bytes(v) => match &v[r] {
                    // bytea's hex input `\x…`, its backslash escaped for COPY.
                    Some(b) => {
                        buf.extend_from_slice(b"\\\\x");
                        for byte in b {
                            let _ = write!(buf, "{byte:02x}");
                        }
                    }
                    None => buf.extend_from_slice(b"\\N"),
                },
            }
        }
        buf.push(b'\n');
    }
    let mut w = tx.copy_in(&format!(
        "COPY {} ({}) FROM STDIN",
        table.name,
        column_list(table)
    ))?;
    w.write_all(&buf)?;
    w.finish()?;
    Ok(())
}

/// Escapes text for COPY's text format: its backslash, and the characters that would end a
/// column or a row.
fn escape_copy_text(s: &[u8], out: &mut Vec<u8>) {
    for &b in s {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.push(b),
        }
    }
}

/// Writes a batch with one `INSERT … SELECT FROM UNNEST(…)`, an array a column.
fn insert(tx: &mut postgres::Transaction<'_>, table: &Table, batch: &Batch) -> anyhow::Result<()> {
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    let mut arrays = Vec::new();
    for (i, cells) in batch.columns.iter().enumerate() {
        let (p, ty): (&(dyn ToSql + Sync), &str) = match cells {
            Cells::Int(v) => (v, "bigint[]"),
            Cells::Text(v) => (v, "text[]"),
            Cells::Bytes(v) => (v, "bytea[]"),
        };
        params.push(p);
        arrays.push(format!("${}::{ty}", i + 1));
    }
    tx.execute(
        &format!(
            "INSERT INTO {} ({}) SELECT * FROM UNNEST({})",
            table.name,
            column_list(table),
            arrays.join(", ")
        ),
        &params,
    )?;
    Ok(())
}

/// Compares both databases, writing a line per check to `out`; returns how many differ.
fn compare(
    sqlite: &Connection,
    pg: &mut postgres::Client,
    out: &mut String,
) -> anyhow::Result<usize> {
    let mut differences = 0;
    for t in TABLES {
        let there: i64 =
            sqlite.query_row(&format!("SELECT count(*) FROM {}", t.name), [], |r| {
                r.get(0)
            })?;
        let here: i64 = pg
            .query_one(&format!("SELECT count(*) FROM {}", t.name), &[])?
            .get(0);
        if there == here {
            let _ = writeln!(out, "ok {}: {here} rows in both", t.name);
        } else {
            differences += 1;
            let _ = writeln!(
                out,
                "DIFFERS {}: {there} rows in SQLite, {here} in PostgreSQL",
                t.name
            );
        }
    }
    differences += compare_story_ids(sqlite, pg, out)?;
    // Every copied event has its transaction's commit number, and those numbers rise with
    // `seq`: a tail in commit order reads them all, in the order they had.
    let row = pg.query_one(
        "SELECT count(*) FILTER (WHERE pos IS NULL),
                count(*) FILTER (WHERE pos < prev)
         FROM (SELECT c.pos, lag(c.pos) OVER (ORDER BY e.seq) AS prev
               FROM events e LEFT JOIN event_commits c ON c.xact = e.xact) x",
        &[],
    )?;
    let (uncommitted, out_of_order): (i64, i64) = (row.get(0), row.get(1));
    if uncommitted == 0 && out_of_order == 0 {
        let _ = writeln!(
            out,
            "ok events: a tail in commit order reads them in seq order"
        );
    } else {
        differences += 1;
        let _ = writeln!(
            out,
            "DIFFERS events: {uncommitted} without a commit number, {out_of_order} out of seq order"
        );
    }
    Ok(differences)
}

/// Compares the story ids of both databases, both read in id order (byte order on both
/// sides: PostgreSQL's ids are in the "C" collation) and merged; the first differences are
/// named.
fn compare_story_ids(
    sqlite: &Connection,
    pg: &mut postgres::Client,
    out: &mut String,
) -> anyhow::Result<usize> {
    use postgres::fallible_iterator::FallibleIterator as _;
    let mut st = sqlite.prepare("SELECT id FROM stories ORDER BY id")?;
    let mut left = st.query([])?;
    let mut right = pg.query_raw(
        "SELECT id FROM stories ORDER BY id",
        std::iter::empty::<i64>(),
    )?;
    let mut next_left = || -> anyhow::Result<Option<String>> {
        Ok(match left.next()? {
            Some(r) => Some(r.get(0)?),
            None => None,
        })
    };
    let mut only_sqlite = Vec::new();
    let mut only_pg = Vec::new();
    let mut same = 0u64;
    let (mut a, mut b) = (next_left()?, right.next()?.map(|r| r.get::<_, String>(0)));
    loop {
        match (&a, &b) {
            (None, None) => break,
            (Some(x), Some(y)) if x == y => {
                same += 1;
                a = next_left()?;
                b = right.next()?.map(|r| r.get(0));
            }
            (Some(x), Some(y)) if x < y => {
                only_sqlite.push(x.clone());
                a = next_left()?;
            }
            (Some(x), None) => {
                only_sqlite.push(x.clone());
                a = next_left()?;
            }
            (_, Some(y)) => {
                only_pg.push(y.clone());
                b = right.next()?.map(|r| r.get(0));
            }
        }
    }
    if only_sqlite.is_empty() && only_pg.is_empty() {
        let _ = writeln!(out, "ok story ids: the same {same} in both");
        return Ok(0);
    }
    let _ = writeln!(
        out,
        "DIFFERS story ids: {same} in both, {} in SQLite only ({}), {} in PostgreSQL only ({})",
        only_sqlite.len(),
        list_some(&only_sqlite),
        only_pg.len(),
        list_some(&only_pg)
    );
    Ok(1)
}

/// The first few of a list, for a message.
fn list_some<T: std::fmt::Display>(items: &[T]) -> String {
    let mut s: Vec<String> = items.iter().take(10).map(ToString::to_string).collect();
    if items.len() > 10 {
        s.push("…".into());
    }
    s.join(", ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn copy_text_escapes_what_would_end_a_column_or_a_row() {
        let mut out = Vec::new();
        escape_copy_text(b"a\tb\nc\\d\re", &mut out);
        assert_eq!(out, b"a\\tb\\nc\\\\d\\re");
    }

    #[test]
    fn keys_read_back_as_they_were_written() {
        let table = &TABLES[7];
        assert_eq!(table.name, "file_aliases");
        let columns = vec![
            Cells::Text(vec![Some("acct".into())]),
            Cells::Text(vec![Some("h\"1".into())]),
            Cells::Text(vec![Some("f".into())]),
        ];
        let key = last_key(table, &columns);
        assert_eq!(
            key_values(&key).unwrap(),
            vec![Value::Text("acct".into()), Value::Text("h\"1".into())]
        );
        assert_eq!(key_values("[42]").unwrap(), vec![Value::Integer(42)]);
        assert!(key_values("{}").is_err());
    }

    #[test]
    fn every_key_column_is_a_column_of_its_table() {
        for t in TABLES {
            assert_eq!(t.key_indexes().len(), t.key.len(), "{}", t.name);
        }
    }
}

//! `dossier`: one binary for the server, the demo, the benchmarks and the admin commands.

mod admin;
mod bench;
mod demo;
mod emulated;
mod migrate;
mod options;
mod serve;
mod sim;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "dossier",
    version,
    about = "EDR incidents correlated into stories an analyst can act on"
)]
struct Cli {
    /// Log format: text or json.
    #[arg(
        long,
        env = "DOSSIER_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Web UI, API and connector workers.
    Serve(options::ServeOptions),
    /// `serve` plus built-in emulated tenants (SentinelOne, Microsoft Defender, CrowdStrike) and a
    /// connector pointing at each.
    Demo(demo::DemoOptions),
    /// Runs the benchmarks against the built-in emulator and prints `name=value` lines.
    Bench(bench::BenchOptions),
    /// Manage API keys.
    #[command(subcommand, name = "api-key")]
    ApiKey(admin::ApiKeyCommand),
    /// Manage accounts.
    #[command(subcommand)]
    Account(admin::AccountCommand),
    /// Manage web users.
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Runs the SentinelOne tenant emulator on its own.
    Sim(sim::SimOptions),
    /// Moves an installation from SQLite to PostgreSQL: copies every table (resuming where an
    /// interrupted run stopped), then compares both databases.
    Migrate(migrate::MigrateOptions),
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn"));
    // Colour codes only for a person at a terminal: a log file or a collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

// The ingest path allocates and frees many short-lived buffers from several threads (response
// bodies of megabytes, parsed threats); the system allocator returns large blocks to the kernel
// and takes them back zeroed, which cost a tenth of ingest's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(o) => serve::run(o).await,
            Command::Demo(o) => demo::run(o).await,
            Command::Bench(o) => bench::run(o).await,
            Command::ApiKey(c) => admin::api_key(c).await,
            Command::Account(c) => admin::account(c).await,
            Command::User(c) => admin::user(c).await,
            Command::Sim(o) => sim::run(o).await,
            Command::Migrate(o) => migrate::run(o).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

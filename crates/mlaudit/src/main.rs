//! The `mlaudit` binary: thin glue over the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use mlaudit::client;
use mlaudit::config::{FileConfig, ServeConfig};

// Ingest allocates and frees many small JSON values; mimalloc does that
// markedly cheaper than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "mlaudit",
    version,
    about = "Tamper-evident audit log for ML platforms"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum Command {
    /// Run the server (creates the data directory, key and log on first start).
    Serve(ServeArgs),
    /// Send events from NDJSON files (or - for stdin), in batches.
    Send(client::SendArgs),
    /// Record one event (from a shell script or CI job) and print its receipt.
    Log(client::LogArgs),
    /// Fetch and verify the inclusion proof of one entry against the latest checkpoint.
    Proof(client::ProofArgs),
    /// Show the server's log origin, verifier key and size.
    Info(client::ServerArgs),
    /// Verify a whole log: offline on a data directory, or any C2SP tlog-tiles log over HTTP.
    Verify(client::VerifyArgs),
    /// Search the log: events matching filters, from the server's query index.
    Query(client::QueryArgs),
    /// Show one resource: a summary, then its timeline of events.
    History(client::HistoryArgs),
    /// Show the lineage graph around a resource: related datasets, models, deployments.
    Lineage(client::LineageArgs),
    /// Count events by a field and by hour or day.
    Stats(client::StatsArgs),
    /// Show which model version a deployment served at a time, and its evaluations.
    DeploymentState(client::DeploymentStateArgs),
    /// Rebuild the query index of a stopped server's data directory from its ledger.
    Reindex(client::ReindexArgs),
    /// Legal holds: create, list, release (entries they cover are never pruned).
    Hold(client::HoldArgs),
    /// Retention: prune the payloads of expired entries (`run`, `run --dry-run`).
    Retention(client::RetentionArgs),
    /// Erase a data subject (GDPR Art. 17): destroy its key, so its sealed cleartext is gone.
    Erase(client::EraseArgs),
    /// Data subject access (GDPR Art. 15).
    #[command(subcommand)]
    Subject(client::SubjectCommand),
    /// Re-wrap every key of a stopped server's key store under a new master key.
    RotateMasterKey(client::RotateMasterKeyArgs),
    /// Create, list and revoke API tokens (through the API as admin, or offline on a data directory).
    #[command(subcommand)]
    Token(client::tokens::TokenCommand),
}

#[derive(Args)]
struct ServeArgs {
    /// TOML configuration file (flags and MLAUDIT_* variables override it).
    #[arg(long, env = "MLAUDIT_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory [default: ./mlaudit-data].
    #[arg(long, env = "MLAUDIT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7405].
    #[arg(long, env = "MLAUDIT_LISTEN")]
    listen: Option<String>,
    /// Origin of a new log, e.g. audit.example.com/ml [default: localhost/mlaudit].
    #[arg(long, env = "MLAUDIT_ORIGIN")]
    origin: Option<String>,
    /// Longest delay in ms from acknowledgement to a covering checkpoint [default: 500].
    #[arg(long, env = "MLAUDIT_CHECKPOINT_INTERVAL_MS")]
    checkpoint_interval_ms: Option<u64>,
    /// Events accepted in one request [default: 1000].
    #[arg(long, env = "MLAUDIT_BATCH_EVENTS_MAX")]
    batch_events_max: Option<usize>,
    /// Entries that may wait for the ledger before ingest answers 503 [default: 200000].
    #[arg(long, env = "MLAUDIT_QUEUE_ENTRIES_MAX")]
    queue_entries_max: Option<usize>,
    /// Pseudonymize identifiers and seal their originals [default: true].
    #[arg(long, env = "MLAUDIT_PSEUDONYMIZE")]
    pseudonymize: Option<bool>,
    /// File holding the master key (base64 of 32 bytes) [default: <data-dir>/keys/master.key].
    /// The key itself can be given in MLAUDIT_MASTER_KEY instead.
    #[arg(long, env = "MLAUDIT_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
    /// Serve the tlog-tiles API under /log/ without a token (default: auditor role needed).
    #[arg(long, env = "MLAUDIT_PUBLIC_LOG")]
    public_log: bool,
    /// Do not record reads as audit.query events (weakens the meta-audit; see docs/security.md).
    #[arg(long, env = "MLAUDIT_NO_META_AUDIT")]
    no_meta_audit: bool,
    /// PEM certificate chain: serve HTTPS (needs --tls-key).
    #[arg(long, env = "MLAUDIT_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "MLAUDIT_TLS_KEY")]
    tls_key: Option<PathBuf>,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MLAUDIT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        // A client command piped into `head` ends quietly when the pipe closes, like any
        // Unix tool, instead of panicking on a failed print. Sockets are unaffected (Rust
        // sends with MSG_NOSIGNAL); the server keeps Rust's default of ignoring SIGPIPE.
        // SAFETY: sets the disposition of one signal before any other thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = match cli.command {
        Command::Serve(a) => serve(a),
        Command::Send(a) => client::send(a),
        Command::Log(a) => client::log(a),
        Command::Proof(a) => client::proof(a),
        Command::Info(a) => client::info(a),
        Command::Verify(a) => client::verify(a),
        Command::Query(a) => client::query(a),
        Command::History(a) => client::history(a),
        Command::Reindex(a) => client::reindex(a),
        Command::Lineage(a) => client::lineage(a),
        Command::Stats(a) => client::stats(a),
        Command::DeploymentState(a) => client::deployment_state(a),
        Command::Hold(a) => client::hold(a),
        Command::Retention(a) => client::retention(a),
        Command::Erase(a) => client::erase(a),
        Command::Subject(c) => client::subject(c),
        Command::RotateMasterKey(a) => client::rotate_master_key(a),
        Command::Token(c) => client::tokens::run(c),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("mlaudit: error: {e:#}");
            std::process::exit(1);
        }
    }
}

fn serve(a: ServeArgs) -> anyhow::Result<i32> {
    let flags = FileConfig {
        data_dir: a.data_dir,
        listen: a.listen,
        origin: a.origin,
        checkpoint_interval_ms: a.checkpoint_interval_ms,
        batch_events_max: a.batch_events_max,
        queue_entries_max: a.queue_entries_max,
        retention: None,
        privacy: Some(mlaudit::privacy::PrivacyFile {
            pseudonymize: a.pseudonymize,
            master_key_file: a.master_key_file,
            ..Default::default()
        }),
        public_log: a.public_log.then_some(true),
        meta_audit: a.no_meta_audit.then_some(false),
        tls_cert: a.tls_cert,
        tls_key: a.tls_key,
        ..FileConfig::default()
    };
    // Read here, not by clap, so the key never shows in --help or an error message.
    let master_key = std::env::var("MLAUDIT_MASTER_KEY").ok();
    let cfg = ServeConfig::resolve(flags, a.config.as_deref(), master_key)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(mlaudit::server::run(cfg))?;
    Ok(0)
}

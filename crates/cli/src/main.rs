//! The `mlaudit` binary: the command line over the library crates.
//!
//! `main.rs` is glue: clap parses the command, and each command lives in its own file
//! under `commands/`. Client commands talk to a server over HTTP (`http.rs`); the offline
//! ones (`reindex`, `rotate-master-key`, `token … --data-dir`, `verify --data-dir`) open a
//! stopped server's data directory under its lock. Output formats (table, CSV, JSON) are
//! shared in `output.rs`.
//!
//! Deliberately absent: no server logic and no access decision lives here; the CLI
//! only formats requests and answers.

#[macro_use]
mod output;
mod args;
mod commands;
mod http;
mod resource;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use server::config::{FileConfig, ServeConfig};

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
    Send(commands::send::SendArgs),
    /// Record one event (from a shell script or CI job) and print its receipt.
    Log(commands::log::LogArgs),
    /// Fetch and verify the inclusion proof of one entry against the latest checkpoint.
    Proof(commands::proof::ProofArgs),
    /// Show the server's log origin, verifier key and size.
    Info(http::ServerArgs),
    /// Verify a whole log: offline on a data directory, or any C2SP tlog-tiles log over HTTP.
    Verify(commands::verify::VerifyArgs),
    /// Search the log: events matching filters, from the server's query index.
    Query(commands::query::QueryArgs),
    /// Show one resource: a summary, then its timeline of events.
    History(commands::history::HistoryArgs),
    /// Show the lineage graph around a resource: related datasets, models, deployments.
    Lineage(commands::lineage::LineageArgs),
    /// Count events by a field and by hour or day.
    Stats(commands::stats::StatsArgs),
    /// Show which model version a deployment served at a time, and its evaluations.
    DeploymentState(commands::deployment_state::DeploymentStateArgs),
    /// Rebuild the query index of a stopped server's data directory from its ledger.
    Reindex(commands::reindex::ReindexArgs),
    /// Legal holds: create, list, release (entries they cover are never pruned).
    Hold(commands::hold::HoldArgs),
    /// Retention: prune the payloads of expired entries (`run`, `run --dry-run`).
    Retention(commands::retention::RetentionArgs),
    /// Erase a data subject (GDPR Art. 17): destroy its key, so its sealed cleartext is gone.
    Erase(commands::erase::EraseArgs),
    /// Data subject access (GDPR Art. 15).
    #[command(subcommand)]
    Subject(commands::subject::SubjectCommand),
    /// Re-wrap every key of a stopped server's key store under a new master key.
    RotateMasterKey(commands::rotate_master_key::RotateMasterKeyArgs),
    /// Sample data to try mlaudit with: `mlaudit demo events 1000 > events.ndjson`.
    #[command(subcommand)]
    Demo(commands::demo::DemoCommand),
    /// Create, list and revoke API tokens (through the API as admin, or offline on a data directory).
    #[command(subcommand)]
    Token(commands::token::TokenCommand),
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
    /// Recovery, for one start: sign a new checkpoint over a ledger whose checkpoint file
    /// is missing (refused otherwise). Logged and recorded as an audit.recovery event.
    #[arg(long, env = "MLAUDIT_RECOVER_MISSING_CHECKPOINT")]
    recover_missing_checkpoint: bool,
    /// Milliseconds a connection has to send a request's headers (and TLS handshake; also
    /// the keep-alive idle timeout) before it is closed [default: 10000].
    #[arg(long, env = "MLAUDIT_HEADER_READ_TIMEOUT_MS")]
    header_read_timeout_ms: Option<u64>,
    /// Milliseconds an ingest body has, plus 1 s per 64 KiB received, before 408
    /// body_timeout [default: 30000].
    #[arg(long, env = "MLAUDIT_BODY_READ_TIMEOUT_MS")]
    body_read_timeout_ms: Option<u64>,
    /// Milliseconds one index query (search, stats, lineage, history) may run before it
    /// is stopped with 503 query_timeout [default: 10000].
    #[arg(long, env = "MLAUDIT_QUERY_TIMEOUT_MS")]
    query_timeout_ms: Option<u64>,
    /// Client connections served at once; more wait in the listen backlog until one
    /// closes [default: 512].
    #[arg(long, env = "MLAUDIT_CONNECTIONS_MAX")]
    connections_max: Option<usize>,
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
    let result = match cli.command {
        Command::Serve(a) => serve(a),
        Command::Send(a) => commands::send::send(a),
        Command::Log(a) => commands::log::log(a),
        Command::Proof(a) => commands::proof::proof(a),
        Command::Info(a) => commands::info::info(a),
        Command::Verify(a) => commands::verify::verify(a),
        Command::Query(a) => commands::query::query(a),
        Command::History(a) => commands::history::history(a),
        Command::Reindex(a) => commands::reindex::reindex(a),
        Command::Lineage(a) => commands::lineage::lineage(a),
        Command::Stats(a) => commands::stats::stats(a),
        Command::DeploymentState(a) => commands::deployment_state::deployment_state(a),
        Command::Hold(a) => commands::hold::hold(a),
        Command::Retention(a) => commands::retention::retention(a),
        Command::Erase(a) => commands::erase::erase(a),
        Command::Subject(c) => commands::subject::subject(c),
        Command::RotateMasterKey(a) => commands::rotate_master_key::rotate_master_key(a),
        Command::Token(c) => commands::token::run(c),
        Command::Demo(c) => commands::demo::demo(c),
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
    // Before anything is opened: files created without an explicit mode are private too.
    datadir::restrict_umask();
    let flags = FileConfig {
        data_dir: a.data_dir,
        listen: a.listen,
        origin: a.origin,
        checkpoint_interval_ms: a.checkpoint_interval_ms,
        batch_events_max: a.batch_events_max,
        queue_entries_max: a.queue_entries_max,
        retention: None,
        privacy: Some(privacy::PrivacyFile {
            pseudonymize: a.pseudonymize,
            master_key_file: a.master_key_file,
            ..Default::default()
        }),
        public_log: a.public_log.then_some(true),
        meta_audit: a.no_meta_audit.then_some(false),
        tls_cert: a.tls_cert,
        tls_key: a.tls_key,
        header_read_timeout_ms: a.header_read_timeout_ms,
        body_read_timeout_ms: a.body_read_timeout_ms,
        query_timeout_ms: a.query_timeout_ms,
        connections_max: a.connections_max,
        ..FileConfig::default()
    };
    // Read here, not by clap, so the key never shows in --help or an error message.
    let master_key = std::env::var("MLAUDIT_MASTER_KEY").ok();
    let mut cfg = ServeConfig::resolve(flags, a.config.as_deref(), master_key)?;
    cfg.recover_missing_checkpoint = a.recover_missing_checkpoint;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(server::run(cfg))?;
    Ok(0)
}

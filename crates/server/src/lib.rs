//! `mlaudit serve`: the HTTP API over the ledger, and everything that runs beside it in the
//! server process (idempotency, the indexer thread, the meta-audit recorder, metrics, the
//! retention schedule, the configuration of `serve`).
//!
//! Handlers are thin: they parse HTTP and call logic functions (`ingest`, reads on
//! `ledger::Store`, the `index`, `privacy` and `retention` crates); every failure goes
//! through [`ApiError`]. Who may call what is decided by the `auth` crate's route table;
//! this crate only enforces it (`guard.rs`).
//!
//! Deliberately absent: no command-line parsing or printing (the `mlaudit` binary does
//! that), no knowledge of the ledger's file format (only `ledger::Store` reads), and no
//! SQL of another crate's store.
#![warn(missing_docs)]

mod analysis;
pub mod config;
mod conn;
pub mod dedup;
mod error;
pub mod guard;
pub mod indexer;
mod ingest;
pub mod metrics;
mod read;
pub mod recorder;
pub mod retention;
pub mod slots;
pub mod stamp;
mod subjects;
mod tokens;
pub mod verifier;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;
use ledger::fs::StdFs;
use ledger::Ledger;

pub use error::ApiError;
pub use ingest::{ingest, record_system, IngestOutcome, SYSTEM_PRINCIPAL};

use crate::config::ServeConfig;
use crate::dedup::Dedup;
use auth::tokens::TokenStore;
use event::BODY_BYTES_MAX;
use index::Index;
use indexer::Indexer;
use metrics::Metrics;
use privacy::Privacy;

/// Everything a handler needs, shared.
pub struct AppState {
    /// The ledger.
    pub ledger: Arc<Ledger>,
    /// Idempotency store.
    pub dedup: Arc<Dedup>,
    /// Query index (derived from the ledger, fed by the indexer thread).
    pub index: Arc<Index>,
    /// The indexer thread's progress (for the lag metric).
    pub indexer: Indexer,
    /// Metrics.
    pub metrics: Metrics,
    /// Log origin.
    pub origin: String,
    /// Verifier key of the log.
    pub vkey: String,
    /// Events per ingest request.
    pub batch_events_max: usize,
    /// Ingest requests allowed in progress at once (bodies in memory), in all and per
    /// principal.
    pub ingest_slots: slots::IngestSlots,
    /// Header and body read timeouts.
    pub timeouts: config::Timeouts,
    /// Retention policies, legal holds, and the one-run-at-a-time lock.
    pub retention: retention::Retention,
    /// Privacy transforms, subject keys, clearance (`privacy/`).
    pub privacy: Arc<Privacy>,
    /// API tokens.
    pub tokens: Arc<TokenStore>,
    /// Per-source limits of failed authentications and recorded denials.
    pub limits: guard::Limits,
    /// Where token expiry and the limits' windows read the time (the system clock, or a
    /// test's manual one: `Server::open_with_clock`).
    pub clock: auth::Clock,
    /// Queue of `audit.query` and `auth.denied` records.
    pub recorder: recorder::Recorder,
    /// JWT verifier, when `[oidc]` is configured.
    pub oidc: Option<Arc<auth::oidc::Oidc>>,
    /// The outcome of the latest background verification.
    pub verification: verifier::Status,
    /// The latest ledger append failed (a full disk fails batches without stopping the
    /// writer): recorded reads then record first and are refused if that fails.
    pub appends_failing: std::sync::atomic::AtomicBool,
}

/// A running server's core, opened from a data directory.
pub struct Server {
    /// Shared state.
    pub state: Arc<AppState>,
    /// Whether the signing key was created by this start.
    pub created: bool,
    /// Where the admin token was written, if this start created it.
    pub admin_token_file: Option<std::path::PathBuf>,
    /// Held for the server's lifetime: one writer per data directory.
    _lock: std::fs::File,
}

impl Server {
    /// Opens (or creates) the data directory: key, ledger (with recovery), index.
    pub fn open(cfg: &ServeConfig) -> anyhow::Result<Server> {
        Server::open_with_clock(cfg, auth::Clock::system())
    }

    /// [`Server::open`] with the clock that token expiry and the failure windows read
    /// (tests pass `auth::Clock::manual()` and move it instead of sleeping).
    pub fn open_with_clock(cfg: &ServeConfig, clock: auth::Clock) -> anyhow::Result<Server> {
        let dir = &cfg.data_dir;
        // 0700, files 0600, whatever the umask; and never a directory others may enter.
        datadir::create_private_dir(dir)?;
        datadir::check_private_dir(dir)?;
        let lock = datadir::lock_data_dir(dir)?;
        let (signer, created) = datadir::load_or_create(dir, cfg.origin.as_deref())?;
        // Before the ledger: a wrong master key refuses the start and changes nothing.
        // The key store is created with the ledger; a ledger without one lost it, and a new
        // one would silently give every identifier a different pseudonym.
        let key_store = dir.join(privacy::KEY_STORE_FILE);
        if dir.join("ledger").exists() && !privacy::KeyStore::initialized(&key_store)? {
            anyhow::bail!(
                "{} is missing but the ledger in {} exists: the pseudonym key and the subject \
                 keys it held cannot be made again (new ones would give everyone new \
                 pseudonyms). Restore it from a backup (docs/privacy.md, section 4)",
                key_store.display(),
                dir.display()
            );
        }
        let privacy = Arc::new(Privacy::open(dir, &cfg.privacy)?);
        let origin = signer.name().to_string();
        let vkey = signer.vkey();
        let mut lcfg = ledger::Config::new(&origin);
        lcfg.checkpoint_interval = cfg.checkpoint_interval;
        lcfg.queue_entries_max = cfg.queue_entries_max;
        lcfg.recover_missing_checkpoint = cfg.recover_missing_checkpoint;
        let recorded_at = Arc::new(stamp::RecordedAt::system());
        lcfg.stamp = Some(recorded_at.clone());
        if cfg.recover_missing_checkpoint {
            tracing::warn!(
                "started with --recover-missing-checkpoint: a ledger without a checkpoint \
                 file will be signed over as it is"
            );
        }
        let ledger = match Ledger::open(Arc::new(StdFs), &dir.join("ledger"), lcfg, signer) {
            Ok(l) => l,
            Err(ledger::OpenError::MissingCheckpoint { path, size }) => anyhow::bail!(
                "{path} is missing but the ledger holds {size} entries. A checkpoint is \
                 written when a log is created, so it was deleted or lost, and signing a new \
                 one would vouch for whatever the segments hold now; nothing was changed. \
                 Restore the checkpoint file from a backup (then run mlaudit verify \
                 --data-dir), or, if the segments are known to be intact, start once with \
                 --recover-missing-checkpoint (MLAUDIT_RECOVER_MISSING_CHECKPOINT=true), \
                 which signs a new checkpoint over them and records an audit.recovery event \
                 (docs/storage.md, Recovery)"
            ),
            Err(e) => {
                return Err(anyhow::Error::new(e))
                    .with_context(|| format!("opening the ledger in {}", dir.display()))
            }
        };
        // recorded_at never goes back in seq, across restarts too (ARCHITECTURE.md, Invariants). The last
        // entry can only be unreadable if retention pruned it, and then it is older than
        // any retention period, so the clock is past it anyway.
        if let Some(last) = ledger.store().size().checked_sub(1) {
            if let Ok(e) = ledger
                .store()
                .entry(last)
                .map_err(|e| e.to_string())
                .and_then(|b| event::parse_entry_raw(&b).map_err(|e| e.to_string()))
            {
                recorded_at.resume_after(&e.recorded_at);
            }
        }
        // Every derived store is checked against the ledger before it is used: one that
        // is ahead of it (ledger/ restored from a backup, the stores not) is cut back or
        // rebuilt from the ledger, and says so in the log (docs/storage.md, Recovery).
        remove_old_dedup_store(dir);
        let index_path = dir.join("index.sqlite");
        let index = Arc::new(Index::open(&index_path)?);
        index.set_query_time_max(cfg.timeouts.query);
        index
            .reconcile(ledger.store())
            .with_context(|| format!("rebuilding the index {}", index_path.display()))?;
        let caught_up = index
            .catch_up(ledger.store())
            .with_context(|| format!("catching up the index {}", index_path.display()))?;
        if caught_up > 0 {
            tracing::info!(entries = caught_up, "index caught up with the ledger");
        }
        let indexer = Indexer::start(index.clone(), ledger.store().clone())?;
        // Idempotency reads the index, caught up above, and memory (issue 12.2).
        let holds = Arc::new(::retention::HoldStore::open(&dir.join("retention.sqlite"))?);
        holds.reconcile(ledger.store().size())?;
        let dedup = Arc::new(Dedup::new(
            index.clone(),
            ledger.store().clone(),
            indexer.watermark(),
            holds.clone(),
        ));
        let tokens = TokenStore::open(dir)?;
        let admin_token_file = tokens.create_admin_if_empty(dir)?;
        Ok(Server {
            state: Arc::new(AppState {
                ledger: Arc::new(ledger),
                dedup,
                index,
                indexer,
                metrics: Metrics::new(),
                origin,
                vkey,
                batch_events_max: cfg.batch_events_max,
                ingest_slots: slots::IngestSlots::default(),
                timeouts: cfg.timeouts,
                retention: retention::Retention {
                    config: cfg.retention.clone(),
                    holds,
                    running: tokio::sync::Mutex::new(()),
                },
                privacy,
                tokens,
                limits: guard::Limits::new(cfg.auth.clone()),
                clock,
                recorder: recorder::Recorder::new(),
                oidc: cfg
                    .oidc
                    .clone()
                    .map(auth::oidc::Oidc::new)
                    .transpose()?
                    .map(Arc::new),
                verification: verifier::Status::default(),
                appends_failing: std::sync::atomic::AtomicBool::new(false),
            }),
            created,
            admin_token_file,
            _lock: lock,
        })
    }

    /// Flushes and closes everything: the final checkpoint is written here.
    pub fn close(&self) {
        if let Err(e) = self.state.tokens.flush_last_used() {
            tracing::warn!(error = %format!("{e:#}"), "writing token last-use times failed");
        }
        self.state.ledger.close();
        // After the ledger: the final catch_up indexes everything it wrote.
        self.state.indexer.stop();
    }
}

/// Deletes `dedup.sqlite` (and its `-wal`, `-shm`), the idempotency database of earlier
/// versions: idempotency now reads the index (`dedup.rs`), and the file was derived.
fn remove_old_dedup_store(dir: &Path) {
    for name in ["dedup.sqlite", "dedup.sqlite-wal", "dedup.sqlite-shm"] {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::warn!(
                file = %path.display(),
                "removed the idempotency database of an earlier version (idempotency reads \
                 the index now)"
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "could not remove it"),
        }
    }
}

/// The HTTP routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(read::healthz))
        .route("/metrics", get(read::metrics))
        .route(
            "/v1/events",
            post(ingest::post_events).get(read::query_events),
        )
        .route("/v1/events/{seq}", get(read::get_event))
        .route("/v1/resources/{type}/{id}", get(read::resource))
        .route("/v1/lineage", get(analysis::lineage))
        .route(
            "/v1/deployments/{id}/state",
            get(analysis::deployment_state),
        )
        .route("/v1/stats", get(analysis::stats))
        .route("/v1/proof/inclusion", get(read::inclusion))
        .route("/v1/proof/consistency", get(read::consistency))
        .route("/v1/subjects/{id}/events", get(subjects::subject_events))
        .route("/v1/subjects/{id}/erase", post(subjects::erase))
        .route("/v1/info", get(read::info))
        .route("/v1/schema/event", get(read::schema))
        .route(
            "/v1/holds",
            post(retention::create_hold).get(retention::list_holds),
        )
        .route("/v1/holds/{id}", delete(retention::release_hold))
        .route("/v1/retention/run", post(retention::run_now))
        .route("/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/v1/tokens/{id}", delete(tokens::revoke))
        .route("/log/checkpoint", get(read::checkpoint))
        .route("/log/kept/{*path}", get(read::kept))
        .route("/log/{*path}", get(read::tile))
        .fallback(read::no_route)
        // Outermost: no handler, and no body, is reached before access control.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        // gzip bodies are capped after decompression in the handler.
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(state)
}

/// Runs `mlaudit serve` until SIGINT/SIGTERM, then shuts down gracefully:
/// stop accepting, finish in-flight requests, write the final checkpoint.
pub async fn run(cfg: ServeConfig) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("listening on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    // Loaded before announcing: a bad certificate stops the start with its reason.
    let tls = match &cfg.tls {
        Some((cert, key)) => {
            // ring, not aws-lc-rs: no cmake, and the only provider compiled in. A second
            // install (tests starting servers in one process) keeps the first.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let loaded = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| {
                    format!(
                        "loading the TLS certificate {} and key {}",
                        cert.display(),
                        key.display()
                    )
                })?;
            // HTTP/1.1 only (conn.rs): ALPN must not offer h2.
            let mut config = (*loaded.get_inner()).clone();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(axum_server::tls_rustls::RustlsConfig::from_config(
                Arc::new(config),
            ))
        }
        None => None,
    };
    // Opened last: a start that fails on the port or the certificate leaves no new data
    // directory behind.
    let server = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || Server::open(&cfg)
    })
    .await??;
    announce(&cfg.data_dir, &server, addr, tls.is_some());
    if let Some(entries) = server.state.ledger.recovered_missing_checkpoint() {
        // Before any request is served: the log itself says that its checkpoint was
        // re-signed by an operator's recovery, not by the normal course of the writer.
        let event = serde_json::json!({
            "action": "audit.recovery",
            "actor": {"id": SYSTEM_PRINCIPAL},
            "resource": {"type": "ledger", "id": "checkpoint"},
            "reason": "the checkpoint file was missing; a new checkpoint was signed over the \
                       stored entries because mlaudit serve was started with \
                       --recover-missing-checkpoint",
            "parameters": {"recovery": "missing_checkpoint", "entries_signed_over": entries},
        });
        record_system(&server.state, &[event])
            .await
            .map_err(|e| anyhow::anyhow!("recording the audit.recovery event: {}", e))?;
    }
    recorder::Recorder::start(&server.state);
    verifier::start(&server.state, Duration::from_secs(cfg.verify_interval_s));
    tokens::start_last_used_flusher(&server.state);
    if let Some(s) = cfg.retention.run_interval_s.filter(|&s| s > 0) {
        retention::schedule(server.state.clone(), Duration::from_secs(s));
    }
    conn::serve(
        listener,
        tls,
        router(server.state.clone()),
        cfg.timeouts,
        cfg.connections_max,
        shutdown_signal(),
    )
    .await;
    // Records of the last requests are appended before the final checkpoint.
    server.state.recorder.flush().await;
    tracing::info!("shutting down: writing the final checkpoint");
    let state = server.state.clone();
    tokio::task::spawn_blocking(move || server.close()).await?;
    if let Some(cp) = state.ledger.store().checkpoint() {
        tracing::info!(size = cp.checkpoint.size, "final checkpoint written");
        // The third line of the note is the root hash: with the size, what an operator
        // keeps to prove later that the log still holds this history.
        let root = cp.note.lines().nth(2).unwrap_or_default();
        eprintln!(
            "mlaudit: stopped; final checkpoint size {} root {root}",
            cp.checkpoint.size
        );
    }
    Ok(())
}

pub use conn::SHUTDOWN_GRACE;

fn announce(data_dir: &Path, server: &Server, addr: std::net::SocketAddr, tls: bool) {
    let st = &server.state;
    let size = st.ledger.store().size();
    if server.created {
        eprintln!("mlaudit: created a new log in {}", data_dir.display());
    }
    eprintln!("mlaudit: log origin   {}", st.origin);
    eprintln!("mlaudit: verifier key {}", st.vkey);
    eprintln!("mlaudit: entries      {size}");
    if !st.limits.meta_audit() {
        eprintln!(
            "mlaudit: warning: meta-audit is off: reads are not recorded as audit.query events"
        );
    }
    if let Some(path) = &server.admin_token_file {
        // The path only: the token itself is never printed or logged.
        eprintln!(
            "mlaudit: admin token  written to {} (mode 0600); use it as MLAUDIT_TOKEN",
            path.display()
        );
    }
    let scheme = if tls { "https" } else { "http" };
    eprintln!("mlaudit: listening on {scheme}://{addr}");
    tracing::info!(%addr, origin = %st.origin, size, "mlaudit serving");
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Ingest requests processed at once; more are answered 503 at once, before
/// their bodies are read, so memory stays bounded under overload.
pub const INGEST_REQUESTS_MAX: usize = 64;

/// Ingest requests one principal may have in progress at once (a quarter of
/// [`INGEST_REQUESTS_MAX`]); past it that principal is answered 503 `busy` while others are
/// still served.
pub const INGEST_REQUESTS_PER_PRINCIPAL_MAX: usize = 16;

/// Default time a connection has to send a request's headers (from its start, or from the
/// end of the previous response), and a TLS client its handshake; then it is closed.
/// Configurable as `header_read_timeout_ms`.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Default time an ingest body has before the minimum rate counts: a body must be complete
/// within this plus one second per [`BODY_READ_MIN_BYTES_PER_S`] bytes received, else 408
/// `body_timeout`. Configurable as `body_read_timeout_ms`.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The minimum average rate of an ingest body after [`BODY_READ_TIMEOUT`]: 64 KiB/s
/// (512 kbit/s), so the largest body (16 MiB) may take 30 s + 256 s.
pub const BODY_READ_MIN_BYTES_PER_S: usize = 64 << 10;

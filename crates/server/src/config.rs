//! Server configuration: defaults, a TOML file, `MLAUDIT_*` environment
//! variables and flags, in increasing order of precedence.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

/// Default data directory, relative to the working directory.
pub const DATA_DIR_DEFAULT: &str = "./mlaudit-data";
/// Default listen address: loopback only, so a fresh server is not exposed.
pub const LISTEN_DEFAULT: &str = "127.0.0.1:7405";
/// Default longest delay between an acknowledgement and a covering checkpoint.
pub const CHECKPOINT_INTERVAL_MS_DEFAULT: u64 = 500;
/// Default cap on entries waiting for the ledger writer before ingest answers 503.
pub const QUEUE_ENTRIES_MAX_DEFAULT: usize = 200_000;

/// Keys accepted in the TOML file given with `--config`; each can also be
/// set by a flag or an `MLAUDIT_<KEY>` environment variable.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where the ledger, keys and index live.
    pub data_dir: Option<PathBuf>,
    /// Address to listen on.
    pub listen: Option<String>,
    /// Origin of a new log (ignored, and checked, once the log exists).
    pub origin: Option<String>,
    /// Checkpoint interval in milliseconds.
    pub checkpoint_interval_ms: Option<u64>,
    /// Events accepted in one request.
    pub batch_events_max: Option<usize>,
    /// Entries that may wait for the writer before ingest answers 503.
    pub queue_entries_max: Option<usize>,
    /// The `[retention]` section (file only): policies, default, schedule.
    pub retention: Option<::retention::RetentionConfig>,
    /// The `[privacy]` table (`docs/privacy.md`).
    pub privacy: Option<privacy::PrivacyFile>,
    /// Serve `/log/…` (tiles and checkpoint) without a token.
    pub public_log: Option<bool>,
    /// Failed authentications per source and window before it is answered 429.
    pub auth_failures_max: Option<u32>,
    /// `auth.denied` events recorded per source and window; more are counted, not recorded.
    pub auth_denied_events_max: Option<u32>,
    /// The window of both limits above, in milliseconds.
    pub auth_window_ms: Option<u64>,
    /// Record every read as an `audit.query` event (default true).
    pub meta_audit: Option<bool>,
    /// Seconds between background verifications of the whole ledger (0: only the one at
    /// start).
    pub verify_interval_s: Option<u64>,
    /// Reverse proxies (IP addresses, file only) whose `X-Forwarded-For` names the client:
    /// the limits and the records then use the address the proxy appended.
    pub trusted_proxies: Option<Vec<IpAddr>>,
    /// PEM certificate chain: serve HTTPS (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// OIDC / JWT bearer tokens (`[oidc]` table; file only).
    pub oidc: Option<auth::oidc::OidcConfig>,
    /// Milliseconds a connection has for a request's headers (also the keep-alive idle
    /// timeout, and the TLS handshake's).
    pub header_read_timeout_ms: Option<u64>,
    /// Milliseconds an ingest body has before its minimum-rate allowance starts counting.
    pub body_read_timeout_ms: Option<u64>,
    /// Milliseconds one index query may run before it is stopped (503 `query_timeout`).
    pub query_timeout_ms: Option<u64>,
    /// Client connections open at once; more wait in the listen backlog.
    pub connections_max: Option<usize>,
}

/// The resolved configuration of `mlaudit serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Listen address.
    pub listen: SocketAddr,
    /// Origin requested for a new log, if any.
    pub origin: Option<String>,
    /// Checkpoint interval.
    pub checkpoint_interval: Duration,
    /// Events per request.
    pub batch_events_max: usize,
    /// Ledger queue bound.
    pub queue_entries_max: usize,
    /// Retention policies and schedule (default: keep forever, no schedule).
    pub retention: ::retention::RetentionConfig,
    /// Privacy transforms, keys and clearance.
    pub privacy: privacy::PrivacyConfig,
    /// Access control settings.
    pub auth: AuthConfig,
    /// Certificate chain and key (PEM files) to serve HTTPS with; `None`: plain HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// OIDC / JWT settings; `None`: API tokens only.
    pub oidc: Option<auth::oidc::OidcConfig>,
    /// Seconds between background verifications (0: only the one at start).
    pub verify_interval_s: u64,
    /// Sign a new checkpoint over a ledger whose `checkpoint` file is missing
    /// (`--recover-missing-checkpoint`; flag or environment only, never the file: it is a
    /// recovery step for one start, not a setting).
    pub recover_missing_checkpoint: bool,
    /// Connection and body-read timeouts (slow clients), and the query time limit.
    pub timeouts: Timeouts,
    /// Client connections served at once (`connections_max`).
    pub connections_max: usize,
}

/// How long slow clients may take (`docs/security.md`, "Resource limits and slow clients").
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A connection's request headers must arrive within this (from the connection's start,
    /// or from the end of the previous response on a keep-alive connection, so it is the
    /// idle timeout too); else the connection is closed. Also bounds the TLS handshake.
    pub header_read: Duration,
    /// An ingest body must arrive within this plus one second per
    /// [`crate::BODY_READ_MIN_BYTES_PER_S`] bytes received; else 408 `body_timeout`.
    pub body_read: Duration,
    /// One index query may run this long; then SQLite stops it and the request is
    /// answered 503 `query_timeout`.
    pub query: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            header_read: crate::HEADER_READ_TIMEOUT,
            body_read: crate::BODY_READ_TIMEOUT,
            query: index::QUERY_TIME_MAX_DEFAULT,
        }
    }
}

/// `value` of the setting `name`, if it lies in `range`.
fn in_range(name: &str, value: u64, range: std::ops::RangeInclusive<u64>) -> anyhow::Result<u64> {
    if !range.contains(&value) {
        bail!(
            "{name} must be between {} and {}",
            range.start(),
            range.end()
        );
    }
    Ok(value)
}

/// Bounds of `header_read_timeout_ms`.
pub const HEADER_READ_TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 100..=600_000;
/// Bounds of `body_read_timeout_ms`.
pub const BODY_READ_TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 100..=3_600_000;
/// Bounds of `query_timeout_ms`.
pub const QUERY_TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 1..=600_000;
/// Default of `connections_max`: well under the usual 1024 open files of a process, with
/// room for the data directory's files.
pub const CONNECTIONS_MAX_DEFAULT: usize = 512;
/// Bounds of `connections_max`.
pub const CONNECTIONS_MAX_RANGE: std::ops::RangeInclusive<u64> = 1..=65_536;

/// Default for [`AuthConfig::auth_failures_max`].
pub const AUTH_FAILURES_MAX_DEFAULT: u32 = 30;
/// Default for [`AuthConfig::denied_events_max`].
pub const AUTH_DENIED_EVENTS_MAX_DEFAULT: u32 = 10;
/// Default for [`AuthConfig::window`].
pub const AUTH_WINDOW_MS_DEFAULT: u64 = 10_000;

/// Access control settings (`docs/security.md`).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `/log/…` needs no token.
    pub public_log: bool,
    /// Failed authentications a source may make per window; past it, the source's failed
    /// authentications are answered 429 with Retry-After until the window ends (a valid
    /// token is always served: others' failures never lock it out).
    pub failures_max: u32,
    /// `auth.denied` events recorded per source and window; the rest are counted and the
    /// count is recorded in the source's next recorded denial.
    pub denied_events_max: u32,
    /// The window of both limits.
    pub window: Duration,
    /// Record every read as an `audit.query` event.
    pub meta_audit: bool,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
}

impl ServeConfig {
    /// Merges flags (already including environment variables) over the file over defaults.
    /// `master_key` is the value of `MLAUDIT_MASTER_KEY`, if set.
    pub fn resolve(
        flags: FileConfig,
        file: Option<&Path>,
        master_key: Option<String>,
    ) -> anyhow::Result<ServeConfig> {
        let from_file = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let listen = flags
            .listen
            .or(from_file.listen)
            .unwrap_or_else(|| LISTEN_DEFAULT.to_string());
        let listen: SocketAddr = listen
            .parse()
            .with_context(|| format!("listen address {listen:?} is not IP:PORT"))?;
        let batch_events_max = flags
            .batch_events_max
            .or(from_file.batch_events_max)
            .unwrap_or(event::BATCH_EVENTS_MAX);
        if batch_events_max == 0 || batch_events_max > ledger::GROUP_ENTRIES_MAX {
            bail!(
                "batch_events_max must be between 1 and {} (one ledger commit group)",
                ledger::GROUP_ENTRIES_MAX
            );
        }
        let checkpoint_interval_ms = flags
            .checkpoint_interval_ms
            .or(from_file.checkpoint_interval_ms)
            .unwrap_or(CHECKPOINT_INTERVAL_MS_DEFAULT);
        if checkpoint_interval_ms > 60_000 {
            bail!("checkpoint_interval_ms must be at most 60000");
        }
        let header_read_ms = in_range(
            "header_read_timeout_ms",
            flags
                .header_read_timeout_ms
                .or(from_file.header_read_timeout_ms)
                .unwrap_or(crate::HEADER_READ_TIMEOUT.as_millis() as u64),
            HEADER_READ_TIMEOUT_MS_RANGE,
        )?;
        let body_read_ms = in_range(
            "body_read_timeout_ms",
            flags
                .body_read_timeout_ms
                .or(from_file.body_read_timeout_ms)
                .unwrap_or(crate::BODY_READ_TIMEOUT.as_millis() as u64),
            BODY_READ_TIMEOUT_MS_RANGE,
        )?;
        let query_ms = in_range(
            "query_timeout_ms",
            flags
                .query_timeout_ms
                .or(from_file.query_timeout_ms)
                .unwrap_or(index::QUERY_TIME_MAX_DEFAULT.as_millis() as u64),
            QUERY_TIMEOUT_MS_RANGE,
        )?;
        let connections_max = in_range(
            "connections_max",
            flags
                .connections_max
                .or(from_file.connections_max)
                .unwrap_or(CONNECTIONS_MAX_DEFAULT) as u64,
            CONNECTIONS_MAX_RANGE,
        )? as usize;
        let retention = flags.retention.or(from_file.retention).unwrap_or_default();
        retention.check()?;
        // Flags set single keys of [privacy]; the rest comes from the file.
        let mut privacy = from_file.privacy.unwrap_or_default();
        if let Some(f) = flags.privacy {
            privacy.pseudonymize = f.pseudonymize.or(privacy.pseudonymize);
            privacy.master_key_file = f.master_key_file.or(privacy.master_key_file);
        }
        let privacy = privacy::PrivacyConfig::resolve(privacy, master_key)?;
        let tls = match (
            flags.tls_cert.or(from_file.tls_cert),
            flags.tls_key.or(from_file.tls_key),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => bail!("TLS needs both a certificate (--tls-cert) and its key (--tls-key)"),
        };
        Ok(ServeConfig {
            privacy,
            data_dir: flags
                .data_dir
                .or(from_file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT)),
            listen,
            origin: flags.origin.or(from_file.origin),
            checkpoint_interval: Duration::from_millis(checkpoint_interval_ms),
            batch_events_max,
            queue_entries_max: flags
                .queue_entries_max
                .or(from_file.queue_entries_max)
                .unwrap_or(QUEUE_ENTRIES_MAX_DEFAULT),
            retention,
            auth: AuthConfig {
                public_log: flags.public_log.or(from_file.public_log).unwrap_or(false),
                failures_max: flags
                    .auth_failures_max
                    .or(from_file.auth_failures_max)
                    .unwrap_or(AUTH_FAILURES_MAX_DEFAULT),
                denied_events_max: flags
                    .auth_denied_events_max
                    .or(from_file.auth_denied_events_max)
                    .unwrap_or(AUTH_DENIED_EVENTS_MAX_DEFAULT),
                window: Duration::from_millis(
                    flags
                        .auth_window_ms
                        .or(from_file.auth_window_ms)
                        .unwrap_or(AUTH_WINDOW_MS_DEFAULT)
                        .clamp(100, 3_600_000),
                ),
                meta_audit: flags.meta_audit.or(from_file.meta_audit).unwrap_or(true),
                trusted_proxies: flags
                    .trusted_proxies
                    .or(from_file.trusted_proxies)
                    .unwrap_or_default(),
            },
            tls,
            oidc: flags.oidc.or(from_file.oidc),
            verify_interval_s: flags
                .verify_interval_s
                .or(from_file.verify_interval_s)
                .unwrap_or(crate::verifier::VERIFY_INTERVAL_S_DEFAULT),
            recover_missing_checkpoint: false,
            timeouts: Timeouts {
                header_read: Duration::from_millis(header_read_ms),
                body_read: Duration::from_millis(body_read_ms),
                query: Duration::from_millis(query_ms),
            },
            connections_max,
        })
    }
}

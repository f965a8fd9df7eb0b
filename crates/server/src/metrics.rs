//! Prometheus metrics of the server, served at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Label of rejected-event counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    /// The error code.
    pub reason: String,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    /// Events acknowledged (appended or duplicates).
    pub events_accepted: Counter,
    /// Events answered as duplicates of earlier ones.
    pub events_duplicate: Counter,
    /// Ingest requests rejected (whole batches), by error code.
    pub events_rejected: Family<Reason, Counter>,
    /// Events per ingest request.
    pub batch_events: Histogram,
    /// Seconds from submitting a batch to the ledger until it is durable.
    pub commit_seconds: Histogram,
    /// Entries in the log.
    pub tree_size: Gauge,
    /// Seconds since the latest checkpoint was published (sampled at scrape).
    pub checkpoint_age_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Entries waiting for the ledger writer (sampled at scrape).
    pub queue_depth: Gauge,
    /// Entries in the log not yet in the query index (sampled at scrape).
    pub index_lag_entries: Gauge,
    /// Requests denied (401, 403, 429), by reason: every one, also those whose
    /// `auth.denied` record was suppressed by the per-source budget. Alert on its rate.
    pub auth_denied: Family<Reason, Counter>,
    /// System records (`audit.query`, `auth.denied`) lost: dropped from a full queue, or
    /// not appended after a retry (sampled at scrape). Alert on any increase.
    pub records_lost: Gauge,
    /// Latest background verification: 1 verified, 0 failed, -1 none yet.
    pub verify_ok: Gauge,
    /// Unix time of the latest background verification that passed (0: none).
    pub verify_last_success_seconds: Gauge,
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("mlaudit");
        let m = Metrics {
            events_accepted: Counter::default(),
            events_duplicate: Counter::default(),
            events_rejected: Family::default(),
            batch_events: Histogram::new(exponential_buckets(1.0, 4.0, 8)),
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            tree_size: Gauge::default(),
            checkpoint_age_seconds: Gauge::default(),
            queue_depth: Gauge::default(),
            index_lag_entries: Gauge::default(),
            auth_denied: Family::default(),
            records_lost: Gauge::default(),
            verify_ok: Gauge::default(),
            verify_last_success_seconds: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "events_accepted",
            "Events acknowledged",
            m.events_accepted.clone(),
        );
        registry.register(
            "events_duplicate",
            "Events answered as duplicates",
            m.events_duplicate.clone(),
        );
        registry.register(
            "events_rejected",
            "Ingest requests rejected (each a whole batch, nothing stored), by reason",
            m.events_rejected.clone(),
        );
        registry.register(
            "batch_events",
            "Events per ingest request",
            m.batch_events.clone(),
        );
        registry.register(
            "commit_seconds",
            "Time until a batch is durable",
            m.commit_seconds.clone(),
        );
        registry.register("tree_size", "Entries in the log", m.tree_size.clone());
        registry.register(
            "checkpoint_age_seconds",
            "Seconds since the latest checkpoint",
            m.checkpoint_age_seconds.clone(),
        );
        registry.register(
            "queue_depth",
            "Entries waiting for the ledger writer",
            m.queue_depth.clone(),
        );
        m.verify_ok.set(-1);
        registry.register(
            "verify_ok",
            "Latest background verification of the ledger: 1 passed, 0 failed, -1 none yet",
            m.verify_ok.clone(),
        );
        registry.register(
            "verify_last_success_seconds",
            "Unix time of the latest background verification that passed",
            m.verify_last_success_seconds.clone(),
        );
        registry.register(
            "records_lost",
            "System records (audit.query, auth.denied) dropped or not appended",
            m.records_lost.clone(),
        );
        registry.register(
            "index_lag_entries",
            "Entries in the log not yet in the query index",
            m.index_lag_entries.clone(),
        );
        registry.register(
            "auth_denied",
            "Requests denied by access control (401, 403, 429), by reason",
            m.auth_denied.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

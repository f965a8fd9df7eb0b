//! Records that mlaudit writes about its own use (`audit.query`, `auth.denied`), off the
//! request path: handlers and the auth layer hand events to a bounded channel; one task
//! appends them in batches through [`record_system`], every [`FLUSH_INTERVAL`] or
//! [`RECORDS_BATCH_MAX`] events, whichever comes first.
//!
//! Reads wait for room in the channel ([`Recorder::record`]): a read is never served
//! without its record being queued. Denials do not wait ([`Recorder::try_record`]): a
//! flood of bad requests must not slow anyone down, so a full channel drops them and counts
//! the drops. A batch that fails to append is retried once after [`RETRY_DELAY`]; records
//! still not appended are counted too. Both counts are `mlaudit_records_lost` in `/metrics`
//! and logged. Reads are refused (fail closed) while the ledger writer is stopped, so the
//! loss of a read's record can only come from a failure between its queueing and its
//! append.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::{record_system, AppState};

/// Longest time a queued record waits before it is appended.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Records appended in one batch at most (also capped by the server's `batch_events_max`).
pub const RECORDS_BATCH_MAX: usize = 256;
/// Records that may wait in the channel.
pub const RECORDS_QUEUED_MAX: usize = 4096;
/// Wait before the one retry of a batch that failed to append.
pub const RETRY_DELAY: Duration = Duration::from_secs(1);
/// Bulk reads of the log (entry bundles, kept entries) by one principal on one route within
/// this window are one `audit.query` record, with their count and first and last path.
pub const BULK_WINDOW: Duration = Duration::from_secs(60);

/// The bulk reads of one principal in the current window.
struct BulkReads {
    /// The `audit.query` record of the first read; the counts are added when it closes.
    record: Value,
    reads: u64,
    results: u64,
    last_path: String,
    started: std::time::Instant,
    from: String,
}

impl BulkReads {
    fn finish(mut self) -> Value {
        let p = &mut self.record["parameters"];
        p["bulk"] = serde_json::json!({
            "reads": self.reads,
            "first_path": p["path"].clone(),
            "last_path": self.last_path,
            "from": self.from,
            "to": event::format_time(chrono::Utc::now()),
        });
        p["results"] = self.results.into();
        self.record
    }
}

enum Msg {
    Record(Value),
    Flush(oneshot::Sender<()>),
}

/// The queue of system records and its background writer.
pub struct Recorder {
    tx: mpsc::Sender<Msg>,
    rx: Mutex<Option<mpsc::Receiver<Msg>>>,
    dropped: AtomicU64,
    bulk: Mutex<std::collections::HashMap<String, BulkReads>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// A recorder whose writer is not started yet ([`Recorder::start`]).
    pub fn new() -> Recorder {
        let (tx, rx) = mpsc::channel(RECORDS_QUEUED_MAX);
        Recorder {
            tx,
            rx: Mutex::new(Some(rx)),
            dropped: AtomicU64::new(0),
            bulk: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Counts a bulk read (an entry bundle, or the kept entries of one) of `principal` on
    /// `route`, whose own record would be `record`, into the window of that principal and
    /// route; queues the record of the window it closes, if any. A `verify --url` of a
    /// large log is then a few records, not one per bundle, and still says who read what
    /// and when.
    pub async fn record_bulk(
        &self,
        principal: &str,
        route: &str,
        record: Value,
        path: &str,
        results: u64,
    ) {
        let key = format!("{principal}\n{route}");
        let closed = {
            let mut bulk = self.bulk.lock().unwrap();
            match bulk.get_mut(&key) {
                Some(b) if b.started.elapsed() < BULK_WINDOW => {
                    b.reads += 1;
                    b.results += results;
                    b.last_path = path.to_string();
                    None
                }
                _ => bulk
                    .insert(
                        key,
                        BulkReads {
                            record,
                            reads: 1,
                            results,
                            last_path: path.to_string(),
                            started: std::time::Instant::now(),
                            from: event::format_time(chrono::Utc::now()),
                        },
                    )
                    .map(BulkReads::finish),
            }
        };
        if let Some(r) = closed {
            self.record(r).await;
        }
    }

    /// The records of the bulk windows that are over (all of them with `all`).
    fn take_bulk(&self, all: bool) -> Vec<Value> {
        let mut bulk = self.bulk.lock().unwrap();
        let done: Vec<String> = bulk
            .iter()
            .filter(|(_, b)| all || b.started.elapsed() >= BULK_WINDOW)
            .map(|(k, _)| k.clone())
            .collect();
        done.into_iter()
            .filter_map(|k| bulk.remove(&k))
            .map(BulkReads::finish)
            .collect()
    }

    /// Records dropped or not appended since the start.
    pub fn lost(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues a record, waiting for room if the channel is full.
    pub async fn record(&self, event: Value) {
        if self.tx.send(Msg::Record(event)).await.is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues a record unless the channel is full; returns whether it was queued.
    pub fn try_record(&self, event: Value) -> bool {
        let ok = self.tx.try_send(Msg::Record(event)).is_ok();
        if !ok {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(
                dropped = n,
                "system record queue full: a record was dropped"
            );
        }
        ok
    }

    /// Appends everything queued so far (open bulk windows included) and waits until it is
    /// durable.
    pub async fn flush(&self) {
        for r in self.take_bulk(true) {
            self.record(r).await;
        }
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Starts the writer task. It holds only a weak reference to the state, so it never
    /// keeps a stopped server alive; it ends when the state is gone.
    pub fn start(st: &Arc<AppState>) {
        let Some(mut rx) = st.recorder.rx.lock().unwrap().take() else {
            return; // already started
        };
        let weak: Weak<AppState> = Arc::downgrade(st);
        tokio::spawn(async move {
            let mut batch: Vec<Value> = Vec::new();
            let mut acks: Vec<oneshot::Sender<()>> = Vec::new();
            // When the oldest record of `batch` must be appended at the latest.
            let mut deadline = tokio::time::Instant::now();
            loop {
                let first = if batch.is_empty() {
                    // Woken at least once a window, to close the bulk windows that are over.
                    match tokio::time::timeout(BULK_WINDOW, rx.recv()).await {
                        Ok(Some(m)) => {
                            deadline = tokio::time::Instant::now() + FLUSH_INTERVAL;
                            Some(m)
                        }
                        Ok(None) => return,
                        Err(_) => {
                            let Some(st) = weak.upgrade() else { return };
                            batch.extend(st.recorder.take_bulk(false));
                            if batch.is_empty() {
                                continue;
                            }
                            None
                        }
                    }
                } else {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(m)) => Some(m),
                        Ok(None) => None,
                        Err(_) => None, // the interval passed: flush
                    }
                };
                let mut flush_now = first.is_none();
                match first {
                    Some(Msg::Record(v)) => batch.push(v),
                    Some(Msg::Flush(ack)) => {
                        acks.push(ack);
                        flush_now = true;
                    }
                    None => {}
                }
                // Take whatever else is already waiting, without blocking.
                while batch.len() < RECORDS_BATCH_MAX {
                    match rx.try_recv() {
                        Ok(Msg::Record(v)) => batch.push(v),
                        Ok(Msg::Flush(ack)) => {
                            acks.push(ack);
                            flush_now = true;
                        }
                        Err(_) => break,
                    }
                }
                if !(flush_now || batch.len() >= RECORDS_BATCH_MAX) {
                    continue;
                }
                let Some(st) = weak.upgrade() else { return };
                let chunk = RECORDS_BATCH_MAX.min(st.batch_events_max).max(1);
                for part in batch.chunks(chunk) {
                    if let Err(e) = record_system(&st, part).await {
                        tracing::warn!(
                            records = part.len(),
                            error = %e,
                            "appending system records failed; retrying once"
                        );
                        tokio::time::sleep(RETRY_DELAY).await;
                        if let Err(e) = record_system(&st, part).await {
                            let n = st
                                .recorder
                                .dropped
                                .fetch_add(part.len() as u64, Ordering::Relaxed)
                                + part.len() as u64;
                            tracing::error!(
                                records = part.len(),
                                lost = n,
                                error = %e,
                                "appending system records failed again: they are lost"
                            );
                        }
                    }
                }
                drop(st);
                batch.clear();
                for ack in acks.drain(..) {
                    let _ = ack.send(());
                }
            }
        });
    }
}

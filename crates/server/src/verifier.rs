//! Background verification of the log the server serves: the whole ledger against its
//! newest signed checkpoint, as `mlaudit verify --data-dir` does (every entry re-hashed,
//! every tile and the root checked), on a thread of its own, once right after the start
//! and then every `verify_interval_s`.
//!
//! Start-up recovery checks only part of the data (`docs/storage.md` section 9): an
//! entry edited with its checksums fixed, or a flipped tile hash under the checkpoint,
//! would be served until someone ran `verify`. With this thread it is found within one
//! pass: the result is `mlaudit_verify_ok` in `/metrics` (1 verified, 0 failed, -1 not
//! yet), the failure is logged at error level, and `/healthz` answers 503 naming it.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::AppState;

/// Default of `verify_interval_s`: one full pass a day.
pub const VERIFY_INTERVAL_S_DEFAULT: u64 = 86_400;

/// The outcome of the latest pass.
#[derive(Debug, Default)]
pub struct Status {
    failure: Mutex<Option<String>>,
}

impl Status {
    /// Why the latest pass failed, if it did.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap().clone()
    }
}

/// Starts the verification thread: a pass now, then one every `interval` (none if zero).
pub fn start(st: &Arc<AppState>, interval: Duration) {
    let weak: Weak<AppState> = Arc::downgrade(st);
    let spawned = std::thread::Builder::new()
        .name("mlaudit-verify".into())
        .spawn(move || loop {
            let Some(st) = weak.upgrade() else { return };
            run_once(&st);
            drop(st);
            if interval.is_zero() {
                return;
            }
            // Sleep in short steps so that a stopped server lets the thread end.
            let mut left = interval;
            while !left.is_zero() {
                let step = left.min(Duration::from_secs(1));
                std::thread::sleep(step);
                left -= step;
                if weak.strong_count() == 0 {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "starting the verification thread failed");
    }
}

/// One full pass over the ledger; records its outcome in the metrics and [`Status`].
pub fn run_once(st: &AppState) {
    let verifier = match tlog::Verifier::parse(&st.vkey) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "the log's verifier key does not parse");
            return;
        }
    };
    let store = st.ledger.store().clone();
    if store.checkpoint().is_none() {
        return; // an empty log: nothing signed yet
    }
    let result = ledger::verify::verify_log(&*store, &verifier, None, &mut |_, _| {});
    let m = &st.metrics;
    match result {
        Ok(report) => {
            *st.verification.failure.lock().unwrap() = None;
            m.verify_ok.set(1);
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            m.verify_last_success_seconds.set(now as i64);
            tracing::info!(entries = report.size, "background verification passed");
        }
        Err(e) => {
            let why = e.to_string();
            tracing::error!(error = %why, "background verification FAILED: the log on disk does not match its signed checkpoint");
            *st.verification.failure.lock().unwrap() = Some(why);
            m.verify_ok.set(0);
        }
    }
}

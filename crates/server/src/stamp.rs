//! `recorded_at` in seq order (issue 12.4, ARCHITECTURE.md, Invariants).
//!
//! The ledger writer asks [`RecordedAt`] for one time per commit group, on its one thread,
//! in seq order ([`ledger::Stamp`]). The time given is `max(previous, now)`: a wall clock
//! that steps back (NTP, a VM restored from a snapshot) repeats the last time instead of
//! going back, so `recorded_at` never decreases in `seq` and "everything recorded between
//! T1 and T2" is one contiguous seq range, which one consistency proof covers. After a
//! restart the previous time is the last stored entry's.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// Where [`RecordedAt`] reads the wall clock: [`Utc::now`] in production; a test's own
/// function to step it back.
pub type WallClock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The `recorded_at` stamper of the ledger writer.
pub struct RecordedAt {
    clock: WallClock,
    /// Nanoseconds since the Unix epoch of the last stamp given (or resumed from).
    last_ns: AtomicI64,
}

impl std::fmt::Debug for RecordedAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordedAt")
            .field("last_ns", &self.last_ns.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl RecordedAt {
    /// A stamper on the system clock.
    pub fn system() -> RecordedAt {
        RecordedAt::with_clock(Arc::new(Utc::now))
    }

    /// A stamper reading `clock`.
    pub fn with_clock(clock: WallClock) -> RecordedAt {
        RecordedAt {
            clock,
            last_ns: AtomicI64::new(i64::MIN),
        }
    }

    /// Never stamps a time before `recorded_at` (the last stored entry's): called once
    /// after the ledger opens, before the first append. A value that is not a time is
    /// ignored (entries the server wrote always hold one).
    pub fn resume_after(&self, recorded_at: &str) {
        if let Some(ns) = DateTime::parse_from_rfc3339(recorded_at)
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
        {
            self.last_ns.fetch_max(ns, Ordering::SeqCst);
        }
    }

    /// The next time: `max(previous, now)`.
    pub fn next_time(&self) -> DateTime<Utc> {
        let now = (self.clock)().timestamp_nanos_opt().unwrap_or(i64::MAX);
        let previous = self.last_ns.fetch_max(now, Ordering::SeqCst);
        DateTime::from_timestamp_nanos(previous.max(now))
    }
}

impl ledger::Stamp for RecordedAt {
    fn next(&self) -> Vec<u8> {
        event::format_time(self.next_time()).into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().into()
    }

    /// Regression (issue 12.4): `recorded_at` was the time each request was prepared, so
    /// it went back whenever the clock did, and a later seq could be recorded earlier.
    #[test]
    fn a_clock_that_steps_back_repeats_the_last_time() {
        let now = Arc::new(Mutex::new(t("2026-03-01T12:00:00.5Z")));
        let clock = now.clone();
        let s = RecordedAt::with_clock(Arc::new(move || *clock.lock().unwrap()));
        assert_eq!(s.next_time(), t("2026-03-01T12:00:00.5Z"));
        *now.lock().unwrap() = t("2026-03-01T11:59:00Z");
        assert_eq!(s.next_time(), t("2026-03-01T12:00:00.5Z"), "stepped back");
        *now.lock().unwrap() = t("2026-03-01T12:00:01Z");
        assert_eq!(
            s.next_time(),
            t("2026-03-01T12:00:01Z"),
            "moves on with the clock"
        );
        assert_eq!(
            ledger::Stamp::next(&s),
            b"2026-03-01T12:00:01.000Z".to_vec()
        );
    }

    #[test]
    fn a_restart_resumes_after_the_last_stored_time() {
        let s = RecordedAt::with_clock(Arc::new(|| t("2026-03-01T12:00:00Z")));
        s.resume_after("2026-03-01T12:30:00.123456789Z");
        s.resume_after("not a time");
        assert_eq!(s.next_time(), t("2026-03-01T12:30:00.123456789Z"));
        assert_eq!(
            ledger::Stamp::next(&s),
            b"2026-03-01T12:30:00.123456789Z".to_vec()
        );
    }
}

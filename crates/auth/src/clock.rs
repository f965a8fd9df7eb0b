//! The time as access control reads it: the system clock in production, or a clock a test
//! moves by hand, so that token expiry and the failure windows are tested without sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a component reads the time. [`Clock::system`] (the default) is the system clock;
/// [`Clock::manual`] stands still until [`Clock::advance`] moves it. Clones share one time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Manual>>,
}

#[derive(Debug)]
struct Manual {
    start_ms: i64,
    start: Instant,
    advanced_ms: AtomicU64,
}

impl Clock {
    /// The system clock: wall time for [`Clock::now_ms`], monotonic for [`Clock::instant`].
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that starts at the current time and moves only by [`Clock::advance`].
    pub fn manual() -> Clock {
        Clock {
            manual: Some(Arc::new(Manual {
                start_ms: crate::tokens::now_ms(),
                start: Instant::now(),
                advanced_ms: AtomicU64::new(0),
            })),
        }
    }

    /// Milliseconds since the Unix epoch (token expiry and last use).
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            None => crate::tokens::now_ms(),
            Some(m) => m.start_ms + m.advanced_ms.load(Ordering::SeqCst) as i64,
        }
    }

    /// A monotonic instant (windows of the failure and denial limits).
    pub fn instant(&self) -> Instant {
        match &self.manual {
            None => Instant::now(),
            Some(m) => m.start + Duration::from_millis(m.advanced_ms.load(Ordering::SeqCst)),
        }
    }

    /// Moves a manual clock forward.
    ///
    /// # Panics
    ///
    /// On the system clock: only a test moves time by hand.
    pub fn advance(&self, by: Duration) {
        let m = self
            .manual
            .as_ref()
            .expect("only a manual clock is moved by hand");
        let ms = u64::try_from(by.as_millis()).expect("a test advances by less than 2^64 ms");
        m.advanced_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_clones_share_it() {
        let clock = Clock::manual();
        let (ms, at) = (clock.now_ms(), clock.instant());
        assert_eq!((clock.now_ms(), clock.instant()), (ms, at));
        clock.clone().advance(Duration::from_millis(1500));
        assert_eq!(clock.now_ms(), ms + 1500);
        assert_eq!(clock.instant() - at, Duration::from_millis(1500));
    }

    #[test]
    fn the_system_clock_is_the_default() {
        let before = crate::tokens::now_ms();
        let now = Clock::default().now_ms();
        assert!(now >= before && now - before < 60_000);
    }
}

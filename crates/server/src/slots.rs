//! Ingest slots: at most [`INGEST_REQUESTS_MAX`] ingest requests in progress at once (their
//! bodies are in memory), and at most [`INGEST_REQUESTS_PER_PRINCIPAL_MAX`] of them held by
//! one principal, so a single producer (slow, buggy or hostile) cannot take every slot.
//! A slot is held by a [`Slot`] guard and released when it drops, whatever the way out of
//! the handler (answer, error, timeout, or the client going away).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{INGEST_REQUESTS_MAX, INGEST_REQUESTS_PER_PRINCIPAL_MAX};

/// Why no slot was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// Every slot is taken.
    All,
    /// The principal already holds its share.
    Principal,
}

/// The ingest slots of a server.
#[derive(Debug)]
pub struct IngestSlots {
    total: Arc<Semaphore>,
    per_principal_max: usize,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

impl Default for IngestSlots {
    fn default() -> IngestSlots {
        IngestSlots::new(INGEST_REQUESTS_MAX, INGEST_REQUESTS_PER_PRINCIPAL_MAX)
    }
}

impl IngestSlots {
    /// `total` slots, at most `per_principal_max` of them for one principal.
    pub fn new(total: usize, per_principal_max: usize) -> IngestSlots {
        IngestSlots {
            total: Arc::new(Semaphore::new(total)),
            per_principal_max: per_principal_max.clamp(1, total.max(1)),
            held: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Takes a slot for `principal` now, or says why not (never waits).
    pub fn try_acquire(&self, principal: &str) -> Result<Slot, Busy> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let mine = held.get(principal).copied().unwrap_or(0);
        if mine >= self.per_principal_max {
            return Err(Busy::Principal);
        }
        let permit = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy::All)?;
        held.insert(principal.to_string(), mine + 1);
        Ok(Slot {
            _permit: permit,
            principal: principal.to_string(),
            held: self.held.clone(),
        })
    }

    /// Slots in use now.
    pub fn in_use(&self) -> usize {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }
}

/// One held ingest slot; dropping it releases it.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    principal: String,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.principal) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.principal);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_principal_gets_its_share_and_others_the_rest() {
        let slots = IngestSlots::new(4, 2);
        let a1 = slots.try_acquire("a").unwrap();
        let _a2 = slots.try_acquire("a").unwrap();
        assert_eq!(slots.try_acquire("a").unwrap_err(), Busy::Principal);
        let _b1 = slots.try_acquire("b").unwrap();
        let _c1 = slots.try_acquire("c").unwrap();
        assert_eq!(slots.try_acquire("d").unwrap_err(), Busy::All);
        assert_eq!(slots.in_use(), 4);
        drop(a1);
        assert_eq!(slots.in_use(), 3);
        let _a3 = slots.try_acquire("a").unwrap();
        assert_eq!(slots.try_acquire("a").unwrap_err(), Busy::Principal);
    }

    #[test]
    fn slots_are_released_on_drop() {
        let slots = IngestSlots::new(2, 2);
        for _ in 0..10 {
            let _x = slots.try_acquire("a").unwrap();
            let _y = slots.try_acquire("a").unwrap();
        }
        assert_eq!(slots.in_use(), 0);
        assert!(slots.held.lock().unwrap().is_empty());
    }
}

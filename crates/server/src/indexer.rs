//! The indexer thread: feeds the query index from the ledger, off the acknowledgement
//! path. It polls the ledger's size and calls [`Index::catch_up`] whenever it grew.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;

use index::Index;

/// How often the indexer looks at the ledger's size.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long the indexer waits after a failed catch-up before trying again.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

struct Shared {
    index: Arc<Index>,
    store: Arc<ledger::Store>,
    /// The index's next seq, as of its last committed bundle (stored after the commit).
    indexed: Arc<AtomicU64>,
    stopped: Mutex<bool>,
    wake: Condvar,
}

/// Handle on the indexer thread.
pub struct Indexer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Indexer {
    /// Starts the thread (the index should already be caught up once).
    pub fn start(index: Arc<Index>, store: Arc<ledger::Store>) -> anyhow::Result<Indexer> {
        let indexed = index.next_seq()?;
        let shared = Arc::new(Shared {
            index,
            store,
            indexed: Arc::new(AtomicU64::new(indexed)),
            stopped: Mutex::new(false),
            wake: Condvar::new(),
        });
        let thread = std::thread::Builder::new()
            .name("indexer".into())
            .spawn({
                let shared = shared.clone();
                move || run(&shared)
            })
            .context("starting the indexer thread")?;
        Ok(Indexer {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The index's committed high-water mark, shared: every seq below it is in the index
    /// and visible to its readers (idempotency relies on it: `dedup.rs`).
    pub fn watermark(&self) -> Arc<AtomicU64> {
        self.shared.indexed.clone()
    }

    /// Entries the ledger holds that the index does not yet.
    pub fn lag(&self) -> u64 {
        let size = self.shared.store.size();
        size.saturating_sub(self.shared.indexed.load(Ordering::Relaxed))
    }

    /// Stops the thread, then indexes whatever is left (call after the ledger is closed).
    pub fn stop(&self) {
        *self.shared.stopped.lock().unwrap() = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.lock().unwrap().take() {
            let _ = t.join();
            if let Err(e) = catch_up(&self.shared) {
                tracing::warn!("final index catch-up failed (the next start retries): {e:#}");
            }
        }
    }
}

fn catch_up(sh: &Shared) -> anyhow::Result<u64> {
    sh.index.catch_up_with(&sh.store, |next, _| {
        sh.indexed.store(next, Ordering::Release);
    })
}

fn run(sh: &Shared) {
    let mut wait = POLL_INTERVAL;
    loop {
        {
            let stopped = sh.stopped.lock().unwrap();
            let (stopped, _) = sh.wake.wait_timeout_while(stopped, wait, |s| !*s).unwrap();
            if *stopped {
                return;
            }
        }
        wait = POLL_INTERVAL;
        if sh.store.size() <= sh.indexed.load(Ordering::Relaxed) {
            continue;
        }
        if let Err(e) = catch_up(sh) {
            tracing::warn!("indexing failed, retrying in {RETRY_INTERVAL:?}: {e:#}");
            wait = RETRY_INTERVAL;
        }
    }
}

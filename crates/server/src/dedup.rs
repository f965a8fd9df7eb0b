//! Idempotency: a retried event (same source principal, same event `id`) gets its original
//! receipt back and appends nothing, also across restarts.
//!
//! No database of its own (issue 12.2): an id is found either in memory or in the query
//! index, which stores a hash of every event's `id` anyway (`events.id_hash`, for
//! `?id=` lookups).
//! - In memory: the ids of batches in flight (reserved, so that two concurrent requests
//!   with one id cannot both append) and of committed entries the index has not reached
//!   yet, with their receipts. A committed id leaves memory once the indexer's committed
//!   high-water mark passes its seq, so memory holds at most the index lag's worth of ids;
//!   past [`RECENT_IDS_MAX`] new batches are refused as busy (503 with `Retry-After`)
//!   until the index catches up: the back-pressure rule of a lagging index.
//! - In the index: an id not in memory is looked up by its hash; each candidate seq is
//!   confirmed against the entry in the ledger (same principal, same id), and the receipt
//!   is that seq and the leaf hash in the tiles. So the index can only ever lead to a
//!   receipt the ledger holds; a damaged index at worst misses a duplicate, which is then
//!   stored again.
//!
//! - Of pruned entries: retention drops an entry's index row, but first remembers its key
//!   and seq in `retention.sqlite` ([`::retention::HoldStore::pruned_seqs`]); an id the
//!   index misses is looked up there (no lookup at all while nothing was ever pruned), and
//!   the receipt's leaf hash still comes from the tiles.
//!
//! The index is derived and caught up from the ledger before the server serves, so a crash
//! loses no id; the keys of pruned entries are primary data and survive a reindex.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ::retention::HoldStore;
use index::Index;
use tlog::Hash;

use event::parse_entry;
pub use event::{id_key as key, IdKey as Key};

/// Most committed ids kept in memory while the index has not reached them (about 100
/// bytes each). More means the index lags by more than this many entries: new batches
/// with ids are refused as busy until it catches up.
pub const RECENT_IDS_MAX: usize = 1_000_000;

/// A receipt: where an event sits in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// Its seq.
    pub seq: u64,
    /// Its RFC 6962 leaf hash.
    pub leaf_hash: Hash,
}

/// What a lookup found for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Never seen: reserved for this batch until `complete` or `release`.
    New,
    /// Already in the log.
    Duplicate(Receipt),
}

/// Why ids could not be reserved.
#[derive(Debug)]
pub enum ReserveError {
    /// A request with the same id is between reservation and commit.
    InFlight(InFlight),
    /// [`RECENT_IDS_MAX`] committed ids wait for the index; nothing was reserved.
    IndexBehind,
    /// The index lookup failed; nothing was reserved.
    Storage(index::QueryError),
    /// The lookup of pruned ids failed; nothing was reserved.
    Pruned(anyhow::Error),
}

/// A request with the same id is between reservation and commit.
#[derive(Debug, Clone, Copy)]
pub struct InFlight {
    /// Position of the event in its batch.
    pub index: usize,
}

/// One id of a batch: its key and the id itself (for the index lookup).
#[derive(Debug, Clone, Copy)]
pub struct IdRef<'a> {
    /// [`key`] of (principal, id).
    pub key: Key,
    /// The event's `id`.
    pub id: &'a str,
}

enum Slot {
    Reserved,
    Done(Receipt),
}

#[derive(Default)]
struct State {
    slots: HashMap<Key, Slot>,
    /// Committed ids still in `slots`, in seq order (`complete` is called in commit order).
    done: VecDeque<(u64, Key)>,
}

impl State {
    /// Drops the committed ids the index has reached (`indexed`: every seq below it).
    fn evict(&mut self, indexed: u64) {
        while let Some(&(seq, k)) = self.done.front() {
            if seq >= indexed {
                break;
            }
            self.done.pop_front();
            if matches!(self.slots.get(&k), Some(Slot::Done(r)) if r.seq == seq) {
                self.slots.remove(&k);
            }
        }
    }
}

/// The idempotency store.
pub struct Dedup {
    state: Mutex<State>,
    index: Arc<Index>,
    store: Arc<ledger::Store>,
    /// The indexer's committed high-water mark: every seq below it is in the index.
    indexed: Arc<AtomicU64>,
    /// The keys of pruned entries.
    holds: Arc<HoldStore>,
}

impl Dedup {
    /// Idempotency over `index` (caught up with `store` before the server serves), with
    /// `indexed` the indexer's committed high-water mark, and `holds` the keys of pruned
    /// entries.
    pub fn new(
        index: Arc<Index>,
        store: Arc<ledger::Store>,
        indexed: Arc<AtomicU64>,
        holds: Arc<HoldStore>,
    ) -> Dedup {
        Dedup {
            state: Mutex::default(),
            index,
            store,
            indexed,
            holds,
        }
    }

    /// Looks up every id of a batch of `principal` and reserves the new ones. Fails,
    /// reserving nothing, if an id is reserved by a request still in flight.
    ///
    /// The mutex covers only memory; the index lookups run outside it. That is safe
    /// because an id leaves memory only after the index has committed its entry: an id
    /// absent from memory is either new or in the index.
    pub fn reserve(
        &self,
        principal: &str,
        ids: &[Option<IdRef<'_>>],
    ) -> Result<Vec<Lookup>, ReserveError> {
        let mut out = Vec::with_capacity(ids.len());
        let mut tentative: Vec<usize> = Vec::new();
        {
            let mut st = self.state.lock().unwrap();
            st.evict(self.indexed.load(Ordering::Acquire));
            if st.done.len() >= RECENT_IDS_MAX && ids.iter().any(Option::is_some) {
                return Err(ReserveError::IndexBehind);
            }
            for (index, id) in ids.iter().enumerate() {
                let Some(id) = id else {
                    out.push(Lookup::New);
                    continue;
                };
                match st.slots.get(&id.key) {
                    Some(Slot::Reserved) => {
                        for &i in &tentative {
                            st.slots.remove(&ids[i].expect("an id").key);
                        }
                        return Err(ReserveError::InFlight(InFlight { index }));
                    }
                    Some(Slot::Done(r)) => out.push(Lookup::Duplicate(*r)),
                    None => {
                        st.slots.insert(id.key, Slot::Reserved);
                        tentative.push(index);
                        out.push(Lookup::New);
                    }
                }
            }
        }
        if tentative.is_empty() {
            return Ok(out);
        }
        let found = self.lookup_indexed(principal, ids, &tentative);
        let mut st = self.state.lock().unwrap();
        match found {
            Ok(found) => {
                for (i, r) in found {
                    st.slots.remove(&ids[i].expect("an id").key);
                    out[i] = Lookup::Duplicate(r);
                }
                Ok(out)
            }
            Err(e) => {
                for &i in &tentative {
                    st.slots.remove(&ids[i].expect("an id").key);
                }
                Err(e)
            }
        }
    }

    /// The ids at `positions` that the index holds, each confirmed against its entry in
    /// the ledger, or that a pruned entry held; returns (position, receipt) of those found.
    fn lookup_indexed(
        &self,
        principal: &str,
        ids: &[Option<IdRef<'_>>],
        positions: &[usize],
    ) -> Result<Vec<(usize, Receipt)>, ReserveError> {
        let wanted: Vec<&str> = positions
            .iter()
            .map(|&i| ids[i].expect("an id").id)
            .collect();
        let candidates = self
            .index
            .seqs_by_id(&wanted)
            .map_err(ReserveError::Storage)?;
        let mut found = Vec::new();
        for (&i, seqs) in positions.iter().zip(candidates) {
            let id = ids[i].expect("an id").id;
            // A hash collision or a damaged index row names another entry: only an
            // entry that holds this principal's id is a duplicate. An entry that cannot
            // be read (pruned meanwhile) is not.
            let confirmed = seqs.into_iter().find_map(|seq| {
                let bytes = self.store.entry(seq).ok()?;
                let e = parse_entry(&bytes).ok()?;
                if e.principal != principal
                    || e.event.get("id").and_then(|v| v.as_str()) != Some(id)
                {
                    return None;
                }
                Some(Receipt {
                    seq,
                    leaf_hash: self.store.leaf_hash(seq).ok()?,
                })
            });
            if let Some(r) = confirmed {
                found.push((i, r));
            }
        }
        let mut hit = vec![false; ids.len()];
        for &(i, _) in &found {
            hit[i] = true;
        }
        let missed: Vec<usize> = positions.iter().copied().filter(|&i| !hit[i]).collect();
        let keys: Vec<Key> = missed.iter().map(|&i| ids[i].expect("an id").key).collect();
        let pruned = self
            .holds
            .pruned_seqs(&keys)
            .map_err(ReserveError::Pruned)?;
        for (i, seq) in missed.into_iter().zip(pruned) {
            let Some(seq) = seq else { continue };
            if let Ok(leaf_hash) = self.store.leaf_hash(seq) {
                found.push((i, Receipt { seq, leaf_hash }));
            }
        }
        Ok(found)
    }

    /// Drops the reservations of a batch that was not stored.
    pub fn release(&self, keys: &[Option<Key>], lookups: &[Lookup]) {
        let mut st = self.state.lock().unwrap();
        for (k, l) in keys.iter().zip(lookups) {
            if let (Some(k), Lookup::New) = (k, l) {
                if matches!(st.slots.get(k), Some(Slot::Reserved)) {
                    st.slots.remove(k);
                }
            }
        }
    }

    /// Drops reservations of keys whose batch failed to commit.
    pub fn release_reserved(&self, keys: &[Option<Key>]) {
        let mut st = self.state.lock().unwrap();
        for k in keys.iter().flatten() {
            if matches!(st.slots.get(k), Some(Slot::Reserved)) {
                st.slots.remove(k);
            }
        }
    }

    /// Records the receipts of a committed batch. Called for every committed batch, in
    /// commit order (from the ledger's writer thread), so `done` stays in seq order.
    pub fn complete(&self, done: Vec<(Key, Receipt)>) {
        let mut st = self.state.lock().unwrap();
        for (k, r) in done {
            st.slots.insert(k, Slot::Done(r));
            st.done.push_back((r.seq, k));
        }
        st.evict(self.indexed.load(Ordering::Acquire));
    }

    /// Committed ids held in memory (waiting for the index).
    pub fn recent(&self) -> usize {
        self.state.lock().unwrap().done.len()
    }
}

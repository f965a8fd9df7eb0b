//! Idempotency: a retried event (same source principal, same event `id`)
//! gets its original receipt back and appends nothing, also across restarts.
//!
//! Committed ids live in a SQLite table (`<data-dir>/dedup.sqlite`), which is
//! derived from the ledger: on start it catches up from the ledger past its
//! high-water mark, so a crash loses nothing. Ids between acknowledgement and
//! their SQLite flush are kept in memory (bounded by the flush interval), and
//! ids of batches not yet committed are reserved there, so two concurrent
//! requests with one id cannot both append.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::Context;
use datadir::open_db;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use tlog::Hash;

use event::parse_entry;

/// How often acknowledged ids are written to SQLite.
const FLUSH_INTERVAL: Duration = Duration::from_millis(200);

/// The dedup key of an event: a hash of (principal, id), so the table's size
/// does not depend on how long producers make their ids.
pub type Key = [u8; 16];

/// Computes the key of an event id sent by a principal.
pub fn key(principal: &str, id: &str) -> Key {
    let mut h = Sha256::new();
    h.update(principal.as_bytes());
    h.update([0]);
    h.update(id.as_bytes());
    h.finalize()[..16].try_into().unwrap()
}

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
    /// The SQLite lookup failed; nothing was reserved.
    Storage(String),
}

/// SQLite read connections kept for lookups.
const READERS_MAX: usize = 8;

/// A request with the same id is between reservation and commit.
#[derive(Debug, Clone, Copy)]
pub struct InFlight {
    /// Position of the event in its batch.
    pub index: usize,
}

enum Slot {
    Reserved,
    Done(Receipt),
}

struct State {
    slots: HashMap<Key, Slot>,
    to_flush: Vec<(Key, Receipt)>,
    next_seq: u64,
    closed: bool,
}

/// The idempotency store.
pub struct Dedup {
    state: Mutex<State>,
    readers: Mutex<Vec<Connection>>,
    path: std::path::PathBuf,
    wake: Condvar,
    flusher: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Dedup {
    /// Opens (or creates) the store and catches up with the ledger.
    pub fn open(path: &Path, store: &ledger::Store) -> anyhow::Result<Arc<Dedup>> {
        let mut writer = open_db(path)?;
        writer.execute_batch(
            "CREATE TABLE IF NOT EXISTS ids (key BLOB PRIMARY KEY, seq INTEGER NOT NULL, leaf_hash BLOB NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
        )?;
        reconcile(&mut writer, path, store)?;
        catch_up(&mut writer, store)?;
        let dedup = Arc::new(Dedup {
            readers: Mutex::new(Vec::new()),
            path: path.to_path_buf(),
            state: Mutex::new(State {
                slots: HashMap::new(),
                to_flush: Vec::new(),
                next_seq: 0,
                closed: false,
            }),
            wake: Condvar::new(),
            flusher: Mutex::new(None),
        });
        let d = dedup.clone();
        let handle = std::thread::Builder::new()
            .name("dedup-flush".into())
            .spawn(move || d.flush_loop(writer))?;
        *dedup.flusher.lock().unwrap() = Some(handle);
        Ok(dedup)
    }

    /// Looks up every key of a batch and reserves the new ones. Fails, reserving
    /// nothing, if a key is reserved by a request still in flight.
    ///
    /// The mutex covers only the in-memory slots; the SQLite lookups run
    /// outside it, in one read transaction, on a pooled connection. That is
    /// safe because a key leaves the slots only after its row is committed:
    /// a key absent from the slots is either new or already in SQLite.
    pub fn reserve(&self, keys: &[Option<Key>]) -> Result<Vec<Lookup>, ReserveError> {
        let mut out = Vec::with_capacity(keys.len());
        let mut tentative = Vec::new();
        {
            let mut st = self.state.lock().unwrap();
            for (index, k) in keys.iter().enumerate() {
                let Some(k) = k else {
                    out.push(Lookup::New);
                    continue;
                };
                match st.slots.get(k) {
                    Some(Slot::Reserved) => {
                        for &i in &tentative {
                            st.slots.remove(keys[i as usize].as_ref().expect("a key"));
                        }
                        return Err(ReserveError::InFlight(InFlight { index }));
                    }
                    Some(Slot::Done(r)) => out.push(Lookup::Duplicate(*r)),
                    None => {
                        st.slots.insert(*k, Slot::Reserved);
                        tentative.push(index as u32);
                        out.push(Lookup::New);
                    }
                }
            }
        }
        if tentative.is_empty() {
            return Ok(out);
        }
        let found = self.lookup_many(keys, &tentative);
        let mut st = self.state.lock().unwrap();
        match found {
            Ok(found) => {
                for (i, r) in found {
                    st.slots.remove(keys[i].as_ref().expect("a key"));
                    out[i] = Lookup::Duplicate(r);
                }
                Ok(out)
            }
            Err(e) => {
                for &i in &tentative {
                    st.slots.remove(keys[i as usize].as_ref().expect("a key"));
                }
                Err(ReserveError::Storage(e.to_string()))
            }
        }
    }

    /// Looks keys up in SQLite; returns (position, receipt) of those found.
    fn lookup_many(
        &self,
        keys: &[Option<Key>],
        positions: &[u32],
    ) -> rusqlite::Result<Vec<(usize, Receipt)>> {
        let conn = match self.readers.lock().unwrap().pop() {
            Some(c) => c,
            None => open_db(&self.path).map_err(|e| {
                rusqlite::Error::InvalidPath(std::path::PathBuf::from(format!("{e:#}")))
            })?,
        };
        let result = (|| {
            let tx = conn.unchecked_transaction()?;
            let mut found = Vec::new();
            {
                let mut stmt =
                    tx.prepare_cached("SELECT seq, leaf_hash FROM ids WHERE key = ?1")?;
                for &i in positions {
                    let k = keys[i as usize].as_ref().expect("a key");
                    let row = stmt
                        .query_row([&k[..]], |row| {
                            Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
                        })
                        .optional()?;
                    if let Some((seq, leaf)) = row {
                        let leaf_hash = leaf
                            .try_into()
                            .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(1, 0))?;
                        found.push((
                            i as usize,
                            Receipt {
                                seq: seq as u64,
                                leaf_hash,
                            },
                        ));
                    }
                }
            }
            tx.commit()?;
            Ok(found)
        })();
        let mut pool = self.readers.lock().unwrap();
        if pool.len() < READERS_MAX {
            pool.push(conn);
        }
        result
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

    /// Records the receipts of a committed batch whose last seq is `next_seq - 1`.
    /// Called for every committed batch, in commit order (from the ledger's
    /// writer thread), so `next_seq` is a safe high-water mark.
    pub fn complete(&self, done: Vec<(Key, Receipt)>, next_seq: u64) {
        let mut st = self.state.lock().unwrap();
        for (k, r) in &done {
            st.slots.insert(*k, Slot::Done(*r));
        }
        st.to_flush.extend(done);
        st.next_seq = st.next_seq.max(next_seq);
    }

    /// Flushes what is pending and stops the flusher thread.
    pub fn close(&self) {
        self.state.lock().unwrap().closed = true;
        self.wake.notify_all();
        if let Some(h) = self.flusher.lock().unwrap().take() {
            let _ = h.join();
        }
    }

    fn flush_loop(self: Arc<Self>, mut writer: Connection) {
        let mut written = 0;
        loop {
            let (batch, next_seq, closed) = {
                let st = self.state.lock().unwrap();
                let (mut st, _) = self
                    .wake
                    .wait_timeout_while(st, FLUSH_INTERVAL, |s| !s.closed)
                    .unwrap();
                (std::mem::take(&mut st.to_flush), st.next_seq, st.closed)
            };
            if next_seq > written {
                match write_ids(&mut writer, &batch, next_seq) {
                    Ok(()) => {
                        written = next_seq;
                        // Visible in SQLite now: the memory copies can go.
                        let mut st = self.state.lock().unwrap();
                        for (k, r) in &batch {
                            if matches!(st.slots.get(k), Some(Slot::Done(x)) if x == r) {
                                st.slots.remove(k);
                            }
                        }
                    }
                    // Kept in memory; the ledger still has them, so a restart
                    // rebuilds the table whatever happens here.
                    Err(e) => {
                        tracing::error!(error = %e, "writing idempotency keys failed");
                        self.state.lock().unwrap().to_flush.extend(batch);
                    }
                }
            }
            if closed {
                return;
            }
        }
    }
}

fn write_ids(
    conn: &mut Connection,
    batch: &[(Key, Receipt)],
    next_seq: u64,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut ins = tx.prepare_cached(
            "INSERT OR IGNORE INTO ids (key, seq, leaf_hash) VALUES (?1, ?2, ?3)",
        )?;
        for (k, r) in batch {
            ins.execute(params![&k[..], r.seq as i64, &r.leaf_hash[..]])?;
        }
        tx.execute(
            "INSERT INTO meta (name, value) VALUES ('next_seq', ?1)
             ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)",
            [next_seq as i64],
        )?;
    }
    tx.commit()
}

fn read_next_seq(conn: &Connection) -> rusqlite::Result<u64> {
    let next: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE name = 'next_seq'", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(next.unwrap_or(0) as u64)
}

/// Brings a table that is ahead of the ledger back to what the ledger holds, before
/// `catch_up`. Regression (issue 18.2): with `ledger/` restored from a backup and a newer
/// `dedup.sqlite` kept, re-sent events were answered "duplicate" with receipts for seqs the
/// ledger does not hold, and were never stored again.
///
/// A high-water mark past the ledger's size means the table saw entries that are gone: their
/// ids are dropped (they are new again). If the newest id the table keeps below the size
/// does not have the leaf hash the ledger holds at its seq, the table saw another history
/// and is emptied, so `catch_up` rebuilds it from seq 0. Both are logged.
fn reconcile(conn: &mut Connection, path: &Path, store: &ledger::Store) -> anyhow::Result<()> {
    let next = read_next_seq(conn)?;
    let size = store.size();
    if next <= size {
        return Ok(());
    }
    let tx = conn.transaction()?;
    let dropped = tx.execute("DELETE FROM ids WHERE seq >= ?1", [size as i64])?;
    let newest: Option<(i64, Vec<u8>)> = tx
        .query_row(
            "SELECT seq, leaf_hash FROM ids ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let agrees = match &newest {
        None => true,
        Some((seq, leaf)) => store
            .leaf_hash(*seq as u64)
            .map(|h| h[..] == leaf[..])
            .unwrap_or(false),
    };
    if agrees {
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE name = 'next_seq'",
            [size as i64],
        )?;
        tx.commit()?;
        tracing::warn!(
            file = %path.display(),
            store_next_seq = next,
            ledger_size = size,
            ids_dropped = dropped,
            "the idempotency store was ahead of the ledger (was ledger/ restored from a \
             backup?): dropped the ids of entries the ledger does not hold; events sent \
             again with those ids are stored as new"
        );
    } else {
        tx.execute("DELETE FROM ids", [])?;
        tx.execute("DELETE FROM meta WHERE name = 'next_seq'", [])?;
        tx.commit()?;
        tracing::warn!(
            file = %path.display(),
            store_next_seq = next,
            ledger_size = size,
            "the idempotency store was ahead of the ledger and disagrees with the entries it \
             holds: rebuilding it from the ledger"
        );
    }
    Ok(())
}

/// Adds the ids of entries past the table's high-water mark, read from the ledger.
fn catch_up(conn: &mut Connection, store: &ledger::Store) -> anyhow::Result<()> {
    let next = read_next_seq(conn)?;
    store.for_each_bundle(next, |first, entries| -> anyhow::Result<()> {
        let mut batch = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let s = first + i as u64;
            let entry = parse_entry(e).with_context(|| format!("parsing entry {s}"))?;
            if let Some(id) = entry.event.get("id").and_then(|v| v.as_str()) {
                let receipt = Receipt {
                    seq: s,
                    leaf_hash: tlog::leaf_hash(e),
                };
                batch.push((key(&entry.principal, id), receipt));
            }
        }
        write_ids(conn, &batch, first + entries.len() as u64)?;
        Ok(())
    })?;
    Ok(())
}

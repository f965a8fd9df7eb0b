//! The durable ledger: a C2SP tlog-tiles transparency log on local disk.
//!
//! Entries are appended in batches by one writer thread (group commit: all
//! batches waiting when a commit starts share one `fdatasync`), stored in
//! segment files of compressed frames, hashed into an RFC 6962 tree whose
//! tiles live in flat per-level files, and covered by a signed checkpoint
//! within `Config::checkpoint_interval`. See `docs/storage.md` for the byte
//! layouts and the crash analysis of every step.
//!
//! The Merkle math lives in the pure `tlog` crate; this crate only stores.
#![warn(missing_docs)]

pub mod fs;
pub mod fuzz;
pub mod segment;
pub mod store;
pub mod tiles;
pub mod verify;
mod writer;

use std::sync::Arc;
use std::time::Duration;

pub use store::{SignedCheckpoint, Store};
pub use writer::{Committed, Ledger, NewEntry, PruneReport};

/// Entries per segment file: 256 bundles of 256 entries.
pub const SEGMENT_ENTRIES: u64 = 1 << 16;
/// Entry bundles per segment file.
pub const SEGMENT_BUNDLES: u64 = SEGMENT_ENTRIES / tlog::TILE_WIDTH;
/// Version of the on-disk format, written in `FORMAT` and checked on open.
pub const FORMAT_VERSION: u32 = 1;
/// Largest stored entry (C2SP entry bundles use a `u16` length).
pub const ENTRY_BYTES_MAX: usize = tlog::ENTRY_BYTES_MAX;
/// Largest number of entries one commit group takes from the queue.
pub const GROUP_ENTRIES_MAX: usize = 16_384;

/// Default `Config::frame_entries`: 32 entries decompress in ~15 µs, and cost
/// about 13% more disk than whole 256-entry bundles (`docs/storage.md`).
pub const FRAME_ENTRIES_DEFAULT: u64 = 32;

/// Largest number of seqs one `Ledger::prune` call takes (the list is held in
/// memory by the writer thread; callers prune a segment's worth at a time).
pub const PRUNE_SEQS_MAX: usize = 1 << 20;

const _: () = assert!(SEGMENT_ENTRIES.is_multiple_of(tlog::TILE_WIDTH));
const _: () = assert!(PRUNE_SEQS_MAX as u64 >= SEGMENT_ENTRIES);
const _: () = assert!(GROUP_ENTRIES_MAX as u64 <= SEGMENT_ENTRIES);

/// Tunables of a ledger.
#[derive(Debug, Clone)]
pub struct Config {
    /// Origin line of checkpoints (the log's stable name), e.g. `example.com/mlaudit`.
    /// Must equal the signer's key name.
    pub origin: String,
    /// Longest time between an acknowledgement and a checkpoint that covers it
    /// (minus the time to write one).
    pub checkpoint_interval: Duration,
    /// Back-pressure: appends are refused with [`AppendError::QueueFull`] while
    /// this many entries wait for the writer.
    pub queue_entries_max: usize,
    /// zstd level for frames (1 is fast and already shrinks JSON several times).
    pub compression_level: i32,
    /// Threads that hash and compress the frames of a commit group (1 or 2).
    pub seal_threads: usize,
    /// Most entries in one frame, the unit of compression: a power of two
    /// from 1 to 256. Reading one entry decompresses its whole frame, so
    /// smaller frames make scattered reads (query results) cheaper and
    /// compress a little worse. Frames never cross a multiple of it.
    pub frame_entries: u64,
    /// Sign a new checkpoint over a ledger that holds entries but no
    /// `checkpoint` file. Off by default: a checkpoint is written when a ledger
    /// is created, so a missing one was deleted (or lost), and re-signing would
    /// vouch for whatever the segments hold now. Without it, `Ledger::open`
    /// refuses with [`OpenError::MissingCheckpoint`]. An operator recovery step,
    /// for one start; when it is used the open logs a warning and
    /// [`Ledger::recovered_missing_checkpoint`] reports it.
    pub recover_missing_checkpoint: bool,
    /// What fills the stamp hole of [`NewEntry::Template`] entries; `None` leaves it
    /// empty. See [`Stamp`].
    pub stamp: Option<Arc<dyn Stamp>>,
}

/// The stamp of a commit group, written into every [`NewEntry::Template`] of the group.
///
/// The writer calls [`Stamp::next`] once per commit group, on its one thread, in seq
/// order, before the group's sizes are checked: whatever a stamper returns, the stamps of
/// a log appear in the order it returned them, so a stamper that never goes back gives
/// stamps that never go back in seq. The ledger does not know what a stamp means (mlaudit's
/// server stamps `recorded_at`, a time clamped so that it never steps back; see
/// `server/src/stamp.rs`).
pub trait Stamp: Send + Sync + std::fmt::Debug {
    /// The stamp of the next commit group.
    fn next(&self) -> Vec<u8>;
}

impl Config {
    /// Sensible defaults for a log with the given origin.
    pub fn new(origin: &str) -> Config {
        Config {
            origin: origin.to_string(),
            checkpoint_interval: Duration::from_millis(500),
            queue_entries_max: 200_000,
            compression_level: 1,
            seal_threads: 2,
            frame_entries: FRAME_ENTRIES_DEFAULT,
            recover_missing_checkpoint: false,
            stamp: None,
        }
    }
}

/// Why a ledger could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The file system failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// The data directory was written by an incompatible version.
    #[error("unsupported ledger format in {path}: {found:?} (this build reads version {FORMAT_VERSION})")]
    Format {
        /// The FORMAT file.
        path: String,
        /// What it says.
        found: String,
    },
    /// Stored data contradicts the last signed checkpoint, or is damaged beyond
    /// an automatic repair. Starting would publish a log inconsistent with what
    /// was already signed, so the ledger refuses.
    #[error("ledger is damaged: {0}")]
    Corrupt(String),
    /// The ledger holds entries but its `checkpoint` file is gone. A checkpoint
    /// is written when a ledger is created, so it was deleted or lost; signing a
    /// new one would vouch for whatever the segments hold now (an edited entry
    /// included). Nothing was changed. Restore the checkpoint from a backup, or
    /// open once with `Config::recover_missing_checkpoint`.
    #[error(
        "{path} is missing but the ledger holds {size} entries: the last signed checkpoint \
         was deleted or lost, and signing a new one would vouch for whatever the segments \
         hold now; nothing was changed. Restore the checkpoint file from a backup, or, if \
         the segments are known to be intact, open once with the missing-checkpoint \
         recovery option"
    )]
    MissingCheckpoint {
        /// The checkpoint file that is missing.
        path: String,
        /// Entries stored in the segments.
        size: u64,
    },
    /// The signing key does not match the log.
    #[error("key problem: {0}")]
    Key(String),
    /// A `Config` value is out of range.
    #[error("bad ledger configuration: {0}")]
    Config(String),
}

impl OpenError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> OpenError {
        let context = context.into();
        move |source| OpenError::Io { context, source }
    }
}

/// A storage failure: what the ledger was doing, and the operating system's error, kept as
/// an [`std::io::Error`] (shared: one failure answers every request of a commit group) so
/// that callers can tell a full disk from a broken one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what}: {source}")]
pub struct StorageError {
    /// What was being done, e.g. `fdatasync of a segment`.
    pub what: String,
    /// The error the operating system (or the [`fs::Fs`] layer) returned.
    #[source]
    pub source: std::sync::Arc<std::io::Error>,
}

impl StorageError {
    /// `what` failed with `source`.
    pub fn new(what: impl Into<String>, source: std::io::Error) -> StorageError {
        StorageError {
            what: what.into(),
            source: std::sync::Arc::new(source),
        }
    }

    /// The kind of the underlying error.
    pub fn kind(&self) -> std::io::ErrorKind {
        self.source.kind()
    }

    /// Whether the disk (or a quota, or a file-size limit) is full: space freed, the same
    /// write can succeed.
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self.kind(),
            std::io::ErrorKind::StorageFull
                | std::io::ErrorKind::QuotaExceeded
                | std::io::ErrorKind::FileTooLarge
        )
    }
}

/// Equal when they say the same: the same step and the same kind of error.
impl PartialEq for StorageError {
    fn eq(&self, other: &StorageError) -> bool {
        self.what == other.what && self.kind() == other.kind()
    }
}

impl Eq for StorageError {}

/// Why an append failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppendError {
    /// Too many entries are waiting; retry later (HTTP 503 + Retry-After).
    #[error("ledger queue is full ({0} entries waiting); retry later")]
    QueueFull(usize),
    /// An entry is larger than [`ENTRY_BYTES_MAX`].
    #[error("entry {index} of the batch is {bytes} bytes, over the {ENTRY_BYTES_MAX}-byte limit")]
    TooLarge {
        /// Position in the batch.
        index: usize,
        /// Its size.
        bytes: usize,
    },
    /// The batch holds more than [`GROUP_ENTRIES_MAX`] entries.
    #[error("batch of {0} entries is over the limit of {GROUP_ENTRIES_MAX}; split it")]
    TooManyEntries(usize),
    /// The batch was empty.
    #[error("empty batch")]
    Empty,
    /// Writing failed and was undone; nothing of this batch is stored.
    #[error("write failed, batch not stored: {0}")]
    Failed(StorageError),
    /// A failure with unknown outcome happened; no more appends until restart.
    #[error("ledger writer stopped after a storage failure (restart to recover): {0}")]
    Poisoned(StorageError),
    /// The ledger is shutting down.
    #[error("ledger is closed")]
    Closed,
}

/// Why a prune (retention) did not happen, or did not finish.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PruneError {
    /// A seq is not covered by the latest checkpoint even after publishing one
    /// (it is past the log size): nothing was pruned.
    #[error("seq {seq} is past the log size {size}; nothing was pruned")]
    PastSize {
        /// The seq asked for.
        seq: u64,
        /// The log size.
        size: u64,
    },
    /// More than [`PRUNE_SEQS_MAX`] seqs in one call: nothing was pruned.
    #[error("{0} seqs in one prune call, over the limit of {PRUNE_SEQS_MAX}; split it")]
    TooMany(usize),
    /// Stored data disagrees with the tiles; pruning would destroy the evidence.
    /// Nothing of the segment named was changed (earlier segments were pruned).
    #[error("refusing to prune: {0}")]
    Corrupt(String),
    /// Writing the pruned copy failed before it replaced anything; the
    /// segment is as it was (earlier segments of the call were pruned).
    #[error("prune failed, segment unchanged: {0}")]
    Failed(String),
    /// A failure with unknown outcome (rename or directory sync); the writer
    /// is poisoned until restart, and recovery finds either version.
    #[error("ledger writer stopped after a storage failure (restart to recover): {0}")]
    Poisoned(StorageError),
    /// The ledger is shutting down.
    #[error("ledger is closed")]
    Closed,
}

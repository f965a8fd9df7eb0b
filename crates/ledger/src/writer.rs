//! Opening (with recovery), the writer thread, group commit and checkpoints.
//!
//! One thread owns every write. Appenders queue batches; the writer takes
//! all that are waiting (up to `GROUP_ENTRIES_MAX` entries), assigns seqs,
//! writes frames and tile hashes, and makes the group durable with one
//! `fdatasync`. Only then are the appenders answered. Checkpoints are signed
//! by the same thread, so they never get ahead of what is durable.

mod prune;
mod recover;

use recover::{create_layout, recover};

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tlog::{CompactRange, Hash, Signer, TILE_WIDTH};

use crate::fs::{write_durably, Fs, FsFile};
use crate::segment::{self, BundleIndex};
use crate::store::{
    check_format, checkpoint_path, format_path, segments_dir, SignedCheckpoint, Store,
};
use crate::tiles::TILE_LEVELS_MAX;
use crate::{
    AppendError, Config, OpenError, PruneError, Stamp, StorageError, ENTRY_BYTES_MAX,
    GROUP_ENTRIES_MAX, SEGMENT_ENTRIES,
};

/// One entry to append.
#[derive(Debug, Clone)]
pub enum NewEntry {
    /// The entry's bytes, independent of its seq.
    Bytes(Vec<u8>),
    /// An entry that contains its commit group's stamp and its own seq:
    /// `head ‖ stamp ‖ mid ‖ decimal(seq) ‖ tail`. (mlaudit's stored entries carry
    /// `"recorded_at":"…"` and `"seq":N`, which only the writer knows; the stamp is what
    /// [`Config::stamp`] gives, empty without one.)
    Template {
        /// Bytes before the stamp.
        head: Vec<u8>,
        /// Bytes between the stamp and the seq.
        mid: Vec<u8>,
        /// Bytes after the seq.
        tail: Vec<u8>,
    },
}

impl NewEntry {
    /// Appends the entry for `stamp` and `seq` to `out`.
    fn write(&self, stamp: &[u8], seq: u64, out: &mut Vec<u8>) {
        match self {
            NewEntry::Bytes(b) => out.extend_from_slice(b),
            NewEntry::Template { head, mid, tail } => {
                out.extend_from_slice(head);
                out.extend_from_slice(stamp);
                out.extend_from_slice(mid);
                let mut digits = itoa_u64(seq);
                out.extend_from_slice(digits.as_bytes_mut());
                out.extend_from_slice(tail);
            }
        }
    }

    /// The entry's length for `stamp` and `seq`.
    fn len(&self, stamp: &[u8], seq: u64) -> usize {
        match self {
            NewEntry::Bytes(b) => b.len(),
            NewEntry::Template { head, mid, tail } => {
                head.len()
                    + stamp.len()
                    + mid.len()
                    + itoa_u64(seq).as_bytes_mut().len()
                    + tail.len()
            }
        }
    }

    /// The entry's bytes for `stamp` and `seq`, as the writer lays them out.
    pub fn bytes(&self, stamp: &[u8], seq: u64) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(stamp, seq, &mut out);
        out
    }
}

struct Digits {
    buf: [u8; 20],
    start: usize,
}
impl Digits {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}
fn itoa_u64(mut n: u64) -> Digits {
    let mut buf = [0u8; 20];
    let mut i = 20;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    Digits { buf, start: i }
}

/// What a successful append returns: the seqs and leaf hashes of the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Seq of the first entry; the batch holds `first_seq..first_seq + leaf_hashes.len()`.
    pub first_seq: u64,
    /// RFC 6962 leaf hash of each entry, in order.
    pub leaf_hashes: Vec<Hash>,
}

type Reply = Box<dyn FnOnce(Result<Committed, AppendError>) + Send>;

struct Request {
    entries: Vec<NewEntry>,
    reply: Reply,
}

type PruneReply = Box<dyn FnOnce(Result<PruneReport, PruneError>) + Send>;

enum Msg {
    Append(Request),
    Checkpoint(Box<dyn FnOnce(Result<Arc<SignedCheckpoint>, AppendError>) + Send>),
    Prune(Vec<u64>, PruneReply),
}

/// What a prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Entries whose payload this call removed.
    pub pruned: u64,
    /// Entries asked for that were already pruned.
    pub already_pruned: u64,
    /// Segment files rewritten.
    pub segments_rewritten: u64,
}

/// A ledger open for appending. Reads go through [`Ledger::store`].
pub struct Ledger {
    store: Arc<Store>,
    tx: Mutex<Option<Sender<Msg>>>,
    queued: Arc<AtomicUsize>,
    poisoned: Arc<Mutex<Option<StorageError>>>,
    queue_entries_max: usize,
    thread: Mutex<Option<JoinHandle<()>>>,
    missing_checkpoint: Option<u64>,
}

impl Ledger {
    /// Opens the ledger in `dir`, creating it if it does not exist, and
    /// recovers from whatever a crash left: a torn tail is cut off, derived
    /// tiles are rebuilt from the entries, and the stored data is checked
    /// against the last signed checkpoint (refusing to open on a contradiction).
    pub fn open(
        fs: Arc<dyn Fs>,
        dir: &Path,
        config: Config,
        signer: Signer,
    ) -> Result<Ledger, OpenError> {
        if signer.name() != config.origin {
            return Err(OpenError::Key(format!(
                "signing key is for {:?} but the log origin is {:?}",
                signer.name(),
                config.origin
            )));
        }
        let fe = config.frame_entries;
        if !fe.is_power_of_two() || fe > TILE_WIDTH {
            return Err(OpenError::Config(format!(
                "frame_entries must be a power of two from 1 to {TILE_WIDTH}, not {fe}"
            )));
        }
        if !fs.exists(&format_path(dir)) {
            create_layout(fs.as_ref(), dir)?;
        }
        check_format(fs.as_ref(), dir)?;
        let recovered = recover(fs.clone(), dir, &config, &signer)?;
        let store = Arc::new(recovered.store);
        let missing_checkpoint = recovered.missing_checkpoint;
        let (tx, rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let poisoned = Arc::new(Mutex::new(None));
        let compressor = zstd::bulk::Compressor::new(config.compression_level)
            .map_err(OpenError::io("creating zstd compressor"))?;
        let mut writer = Writer {
            store: store.clone(),
            signer,
            origin: config.origin.clone(),
            interval: config.checkpoint_interval,
            compact: recovered.compact,
            active: recovered.active,
            active_segment: recovered.active_segment,
            compressor,
            compressor2: zstd::bulk::Compressor::new(config.compression_level)
                .map_err(OpenError::io("creating zstd compressor"))?,
            seal_threads: config.seal_threads,
            frame_entries: config.frame_entries,
            stamp: config.stamp.clone(),
            last_checkpoint_size: recovered.checkpoint_size,
            last_checkpoint_at: Instant::now(),
            poisoned: poisoned.clone(),
            queued: queued.clone(),
        };
        if recovered.checkpoint_size != writer.compact.size() || store.checkpoint().is_none() {
            writer.publish_checkpoint().map_err(|e| OpenError::Io {
                context: "publishing the recovered checkpoint".into(),
                source: std::io::Error::other(e),
            })?;
        }
        let thread = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(OpenError::io("starting the writer thread"))?;
        Ok(Ledger {
            store,
            tx: Mutex::new(Some(tx)),
            queued,
            poisoned,
            queue_entries_max: config.queue_entries_max,
            thread: Mutex::new(Some(thread)),
            missing_checkpoint,
        })
    }

    /// `Some(size)` when this open found entries but no checkpoint file and,
    /// because `Config::recover_missing_checkpoint` was set, signed a new
    /// checkpoint over the `size` stored entries. Callers record it.
    pub fn recovered_missing_checkpoint(&self) -> Option<u64> {
        self.missing_checkpoint
    }

    /// The read side.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Entries waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Why the writer stopped, if it did.
    pub fn poisoned(&self) -> Option<StorageError> {
        self.poisoned.lock().unwrap().clone()
    }

    /// Queues a batch; `reply` is called from the writer thread once the batch
    /// is durable (or failed). Fails at once, without calling `reply`, when
    /// the queue is full, the batch is empty, or the writer is stopped.
    pub fn submit(
        &self,
        entries: Vec<NewEntry>,
        reply: impl FnOnce(Result<Committed, AppendError>) + Send + 'static,
    ) -> Result<(), AppendError> {
        if entries.is_empty() {
            return Err(AppendError::Empty);
        }
        if let Some(why) = self.poisoned() {
            return Err(AppendError::Poisoned(why));
        }
        let n = entries.len();
        if n > GROUP_ENTRIES_MAX {
            return Err(AppendError::TooManyEntries(n));
        }
        let before = self.queued.fetch_add(n, Ordering::AcqRel);
        if before > 0 && before + n > self.queue_entries_max {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(AppendError::QueueFull(before));
        }
        let guard = self.tx.lock().unwrap();
        let sent = match guard.as_ref() {
            Some(tx) => tx
                .send(Msg::Append(Request {
                    entries,
                    reply: Box::new(reply),
                }))
                .is_ok(),
            None => false,
        };
        if !sent {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(AppendError::Closed);
        }
        Ok(())
    }

    /// Appends a batch and waits until it is durable.
    pub fn append(&self, entries: Vec<NewEntry>) -> Result<Committed, AppendError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(entries, move |r| {
            let _ = tx.send(r);
        })?;
        rx.recv().unwrap_or(Err(AppendError::Closed))
    }

    /// Publishes a checkpoint covering everything committed so far, now.
    pub fn checkpoint_now(&self) -> Result<Arc<SignedCheckpoint>, AppendError> {
        let (tx, rx) = mpsc::sync_channel(1);
        {
            let guard = self.tx.lock().unwrap();
            let sender = guard.as_ref().ok_or(AppendError::Closed)?;
            sender
                .send(Msg::Checkpoint(Box::new(move |r| {
                    let _ = tx.send(r);
                })))
                .map_err(|_| AppendError::Closed)?;
        }
        rx.recv().unwrap_or(Err(AppendError::Closed))
    }

    /// Removes the payloads of the entries `seqs` from disk, keeping their leaf
    /// hashes (retention). Runs on the writer thread, between commit groups,
    /// so it never races an append; it first publishes a checkpoint if the
    /// tree grew, so only entries under the latest checkpoint are touched.
    /// Each segment holding a seq is rewritten without those payloads and
    /// renamed over the old file (`docs/storage.md` section 10). Appends wait
    /// while a segment is rewritten. Seqs already pruned are counted, not an
    /// error.
    pub fn prune(&self, seqs: Vec<u64>) -> Result<PruneReport, PruneError> {
        if seqs.len() > crate::PRUNE_SEQS_MAX {
            return Err(PruneError::TooMany(seqs.len()));
        }
        if let Some(why) = self.poisoned() {
            return Err(PruneError::Poisoned(why));
        }
        let (tx, rx) = mpsc::sync_channel(1);
        {
            let guard = self.tx.lock().unwrap();
            let sender = guard.as_ref().ok_or(PruneError::Closed)?;
            sender
                .send(Msg::Prune(
                    seqs,
                    Box::new(move |r| {
                        let _ = tx.send(r);
                    }),
                ))
                .map_err(|_| PruneError::Closed)?;
        }
        rx.recv().unwrap_or(Err(PruneError::Closed))
    }

    /// Stops accepting appends, lets the writer finish what is queued, publishes
    /// a final checkpoint and waits for the writer thread to end.
    pub fn close(&self) {
        self.tx.lock().unwrap().take();
        if let Some(t) = self.thread.lock().unwrap().take() {
            let _ = t.join();
        }
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.close();
    }
}

/// Keeps the hashes that tiles store: those at tree heights 0, 8, 16, …
pub(super) fn collect_tile_hash(buffers: &mut [Vec<u8>], node: tlog::NodeId, hash: &Hash) {
    if node.level.is_multiple_of(8) {
        let level = (node.level / 8) as usize;
        if level < TILE_LEVELS_MAX {
            buffers[level].extend_from_slice(hash);
        }
    }
}

struct Writer {
    store: Arc<Store>,
    signer: Signer,
    origin: String,
    interval: Duration,
    compact: CompactRange,
    active: Option<Arc<dyn FsFile>>,
    active_segment: u64,
    compressor: zstd::bulk::Compressor<'static>,
    /// For the second frame-sealing thread.
    compressor2: zstd::bulk::Compressor<'static>,
    seal_threads: usize,
    /// `Config::frame_entries`: frames are cut at multiples of it.
    frame_entries: u64,
    /// Gives each commit group's stamp ([`Config::stamp`]).
    stamp: Option<Arc<dyn Stamp>>,
    last_checkpoint_size: u64,
    last_checkpoint_at: Instant,
    poisoned: Arc<Mutex<Option<StorageError>>>,
    queued: Arc<AtomicUsize>,
}

/// Entries of one frame before hashing and compression.
struct RawFrame {
    first: u64,
    count: u32,
    /// Bundle-framed entries.
    raw: Vec<u8>,
    /// Offset of each entry's length prefix in `raw`.
    starts: Vec<usize>,
}

/// Appends an encoded frame to the write of its segment.
fn place_frame(writes: &mut Vec<SegmentWrite>, first: u64, bytes: Vec<u8>) {
    let segment = first / SEGMENT_ENTRIES;
    if writes.last().map(|w| w.segment) != Some(segment) {
        writes.push(SegmentWrite {
            segment,
            bytes: Vec::with_capacity(bytes.len()),
            frames: Vec::new(),
            last_frame_at: 0,
        });
    }
    let w = writes.last_mut().expect("pushed above");
    w.last_frame_at = w.bytes.len();
    w.frames.push((w.bytes.len() as u64, first));
    w.bytes.extend_from_slice(&bytes);
}

/// Frames of one commit group that go to one segment.
struct SegmentWrite {
    segment: u64,
    bytes: Vec<u8>,
    /// (offset in `bytes`, first seq) of each frame.
    frames: Vec<(u64, u64)>,
    /// Offset in `bytes` of the last frame's header.
    last_frame_at: usize,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        let mut carry: Option<Request> = None;
        loop {
            let pending =
                self.compact.size() > self.last_checkpoint_size && self.is_poisoned().is_none();
            let msg = if let Some(r) = carry.take() {
                Ok(Msg::Append(r))
            } else if pending {
                let due = self.last_checkpoint_at + self.interval;
                rx.recv_timeout(due.saturating_duration_since(Instant::now()))
            } else {
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            };
            match msg {
                Ok(Msg::Append(first)) => {
                    let mut group = vec![first];
                    let mut entries = group[0].entries.len();
                    let mut control = Vec::new();
                    // Take what is waiting, up to GROUP_ENTRIES_MAX entries; a
                    // batch that would overflow the group starts the next one.
                    loop {
                        let next = match carry.take() {
                            Some(r) => Ok(Msg::Append(r)),
                            None => rx.try_recv(),
                        };
                        match next {
                            Ok(Msg::Append(r)) if entries + r.entries.len() > GROUP_ENTRIES_MAX => {
                                carry = Some(r);
                                break;
                            }
                            Ok(Msg::Append(r)) => {
                                entries += r.entries.len();
                                group.push(r);
                            }
                            Ok(other) => control.push(other),
                            Err(_) => break,
                        }
                    }
                    self.commit_group(group);
                    for msg in control {
                        self.control(msg);
                    }
                }
                Ok(other) => self.control(other),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    if self.is_poisoned().is_none()
                        && self.compact.size() > self.last_checkpoint_size
                    {
                        if let Err(e) = self.publish_checkpoint() {
                            tracing::error!(error = %e, "final checkpoint failed");
                        }
                    }
                    return;
                }
            }
            if self.is_poisoned().is_none()
                && self.compact.size() > self.last_checkpoint_size
                && self.last_checkpoint_at.elapsed() >= self.interval
            {
                if let Err(e) = self.publish_checkpoint() {
                    self.poison(e);
                }
            }
        }
    }

    /// Answers a request that is not an append.
    fn control(&mut self, msg: Msg) {
        match msg {
            Msg::Append(_) => unreachable!("bad math in the writer loop: appends are grouped"),
            Msg::Checkpoint(reply) => reply(self.checkpoint_for_request()),
            Msg::Prune(seqs, reply) => reply(self.prune(seqs)),
        }
    }

    fn checkpoint_for_request(&mut self) -> Result<Arc<SignedCheckpoint>, AppendError> {
        if let Some(why) = self.is_poisoned() {
            return Err(AppendError::Poisoned(why));
        }
        if self.compact.size() > self.last_checkpoint_size || self.store.checkpoint().is_none() {
            if let Err(why) = self.publish_checkpoint() {
                self.poison(why.clone());
                return Err(AppendError::Poisoned(why));
            }
        }
        Ok(self.store.checkpoint().expect("published above"))
    }

    fn is_poisoned(&self) -> Option<StorageError> {
        self.poisoned.lock().unwrap().clone()
    }

    fn poison(&self, why: StorageError) {
        tracing::error!(reason = %why, "ledger writer poisoned: no more appends until restart");
        let mut p = self.poisoned.lock().unwrap();
        if p.is_none() {
            *p = Some(why);
        }
    }

    fn commit_group(&mut self, group: Vec<Request>) {
        let total: usize = group.iter().map(|r| r.entries.len()).sum();
        let result = self.write_group(group);
        self.queued.fetch_sub(total, Ordering::AcqRel);
        for (reply, r) in result {
            reply(r);
        }
    }

    /// Writes one commit group and returns the answer for each request.
    fn write_group(&mut self, group: Vec<Request>) -> Vec<(Reply, Result<Committed, AppendError>)> {
        let mut answers = Vec::with_capacity(group.len());
        if let Some(why) = self.is_poisoned() {
            for req in group {
                answers.push((req.reply, Err(AppendError::Poisoned(why.clone()))));
            }
            return answers;
        }
        let start_size = self.compact.size();
        let saved_compact = self.compact.clone();
        let mut next = start_size;
        let mut writes: Vec<SegmentWrite> = Vec::new();
        let mut tile_bufs: Vec<Vec<u8>> = vec![Vec::new(); TILE_LEVELS_MAX];
        let mut frames: Vec<RawFrame> = Vec::new();
        let mut accepted: Vec<(Reply, u64, usize)> = Vec::with_capacity(group.len());

        // 1. Stamp the group, assign seqs and lay the entries out as
        //    bundle-framed bytes, one RawFrame per (part of a) bundle. The one
        //    writer thread takes groups in seq order, so stamps follow seq order
        //    (ARCHITECTURE.md, Invariants).
        let stamp = self.stamp.as_ref().map(|s| s.next()).unwrap_or_default();
        for req in group {
            // Check sizes before the batch takes any seq, so a refused batch
            // leaves no trace.
            let too_large = req.entries.iter().enumerate().find_map(|(i, e)| {
                let len = e.len(&stamp, next + i as u64);
                (len > ENTRY_BYTES_MAX).then_some((i, len))
            });
            if let Some((index, bytes)) = too_large {
                answers.push((req.reply, Err(AppendError::TooLarge { index, bytes })));
                continue;
            }
            accepted.push((req.reply, next, req.entries.len()));
            for e in &req.entries {
                if frames
                    .last()
                    .is_none_or(|f| next.is_multiple_of(self.frame_entries) && f.count > 0)
                {
                    frames.push(RawFrame {
                        first: next,
                        count: 0,
                        raw: Vec::with_capacity(self.frame_entries as usize * 512),
                        starts: Vec::with_capacity(self.frame_entries as usize),
                    });
                }
                let f = frames.last_mut().expect("pushed above");
                let at = f.raw.len();
                f.raw.extend_from_slice(&[0, 0]);
                e.write(&stamp, next, &mut f.raw);
                let len = f.raw.len() - at - 2;
                f.raw[at..at + 2].copy_from_slice(&(len as u16).to_be_bytes());
                f.starts.push(at);
                f.count += 1;
                next += 1;
            }
        }
        if accepted.is_empty() {
            return answers;
        }

        // 2. Hash and compress the frames; they are independent, so with two
        //    or more frames half of them go to a second thread.
        let sealed = self.seal_frames(&frames);

        // 3. In order: extend the tree and place the frames in their segments.
        let mut leaves: Vec<Hash> = Vec::with_capacity((next - start_size) as usize);
        for (frame, (hashes, bytes)) in frames.iter().zip(sealed) {
            for leaf in &hashes {
                self.compact.append(*leaf, |node, hash| {
                    collect_tile_hash(&mut tile_bufs, node, hash)
                });
            }
            leaves.extend(hashes);
            place_frame(&mut writes, frame.first, bytes);
        }
        let accepted: Vec<(Reply, Committed)> = accepted
            .into_iter()
            .map(|(reply, first_seq, n)| {
                let at = (first_seq - start_size) as usize;
                let leaf_hashes = leaves[at..at + n].to_vec();
                (
                    reply,
                    Committed {
                        first_seq,
                        leaf_hashes,
                    },
                )
            })
            .collect();

        // The last frame of the group (in each segment it touches) carries the
        // group-end flag: recovery keeps a group whole or drops it whole.
        for w in &mut writes {
            let at = w.last_frame_at;
            segment::set_group_end(&mut w.bytes[at..at + segment::FRAME_HEADER_BYTES]);
        }

        match self.persist(&writes, &tile_bufs) {
            Ok(()) => {}
            Err(Failure::Undone(e)) => {
                self.compact = saved_compact;
                for (reply, _) in accepted {
                    answers.push((reply, Err(AppendError::Failed(e.clone()))));
                }
                return answers;
            }
            Err(Failure::Unknown(e)) => {
                self.compact = saved_compact;
                self.poison(e.clone());
                for (reply, _) in accepted {
                    answers.push((reply, Err(AppendError::Poisoned(e.clone()))));
                }
                return answers;
            }
        }

        // From here the group is durable: a crash now recovers every entry of
        // it from the segment files (and rebuilds its tiles). Publish it.
        {
            let mut st = self.store.state.write().unwrap();
            for w in &writes {
                if w.segment != st.active_segment {
                    st.active_segment = w.segment;
                    st.active = BundleIndex::default();
                }
                let base = st.active.end;
                for &(off, first) in &w.frames {
                    st.active.push_frame(base + off, first);
                }
                st.active.end = base + w.bytes.len() as u64;
            }
            st.size = next;
        }
        for (reply, c) in accepted {
            answers.push((reply, Ok(c)));
        }
        answers
    }

    /// Leaf hashes and encoded bytes of each frame, in order.
    fn seal_frames(&mut self, frames: &[RawFrame]) -> Vec<(Vec<Hash>, Vec<u8>)> {
        fn seal(c: &mut zstd::bulk::Compressor<'static>, f: &RawFrame) -> (Vec<Hash>, Vec<u8>) {
            let mut hashes = Vec::with_capacity(f.starts.len());
            for (i, &at) in f.starts.iter().enumerate() {
                let end = f.starts.get(i + 1).copied().unwrap_or(f.raw.len());
                hashes.push(tlog::leaf_hash(&f.raw[at + 2..end]));
            }
            let mut bytes = Vec::with_capacity(f.raw.len() / 2);
            segment::encode_frame(c, f.first, f.count, &f.raw, &mut bytes)
                .expect("encoding into memory cannot fail");
            (hashes, bytes)
        }
        if frames.len() < 2 || self.seal_threads < 2 {
            return frames
                .iter()
                .map(|f| seal(&mut self.compressor, f))
                .collect();
        }
        let (mine, theirs) = frames.split_at(frames.len() / 2);
        let (c1, c2) = (&mut self.compressor, &mut self.compressor2);
        std::thread::scope(|scope| {
            let helper =
                scope.spawn(move || theirs.iter().map(|f| seal(c2, f)).collect::<Vec<_>>());
            let mut out: Vec<_> = mine.iter().map(|f| seal(c1, f)).collect();
            out.extend(helper.join().expect("frame sealing thread panicked"));
            out
        })
    }

    /// Writes frames and tile hashes, then makes them durable.
    fn persist(&mut self, writes: &[SegmentWrite], tile_bufs: &[Vec<u8>]) -> Result<(), Failure> {
        let fs = self.store.fs.clone();
        let seg_dir = segments_dir(&self.store.dir);
        let mut synced: Vec<Arc<dyn FsFile>> = Vec::new();
        let mut rotated = false;
        // Lengths to return to if a write fails before anything is synced.
        let seg_len = match &self.active {
            Some(f) => Some(f.len().map_err(|e| {
                Failure::Undone(StorageError::new("reading the segment length", e))
            })?),
            None => None,
        };
        let mut tile_lens = Vec::with_capacity(TILE_LEVELS_MAX);
        for level in 0..TILE_LEVELS_MAX {
            tile_lens.push(
                self.store.tiles.stored(level).map_err(|e| {
                    Failure::Undone(StorageError::new("reading the tile lengths", e))
                })?,
            );
        }
        let undo = |this: &Writer, what: &str, e: io::Error| -> Failure {
            let mut ok = true;
            if let (Some(f), Some(len)) = (&this.active, seg_len) {
                // Synced, so that the undone frames cannot come back after a power cut.
                ok &= f.set_len(len).and_then(|_| f.sync_data()).is_ok();
            }
            for (level, &n) in tile_lens.iter().enumerate() {
                ok &= this.store.tiles.truncate(level, n).is_ok();
            }
            if ok {
                Failure::Undone(StorageError::new(what, e))
            } else {
                Failure::Unknown(StorageError::new(
                    format!("{what} (and undoing the partial write failed too)"),
                    e,
                ))
            }
        };

        for w in writes {
            if self.active.is_none() || w.segment != self.active_segment {
                // A new segment. The previous one is complete and was synced
                // by the commit that filled it. Failures from here on poison:
                // undoing a half-made file is not worth the risk.
                rotated = true;
                if let Some(prev) = self.active.take() {
                    // The full segment must be durable before its successor
                    // exists: recovery only repairs the tail of the last one.
                    prev.sync_data().map_err(|e| {
                        Failure::Unknown(StorageError::new("fdatasync of a full segment", e))
                    })?;
                    synced.retain(|f| !Arc::ptr_eq(f, &prev));
                }
                let path = seg_dir.join(segment::segment_name(w.segment));
                let file: Arc<dyn FsFile> = fs.create(&path).map(Arc::from).map_err(|e| {
                    Failure::Unknown(StorageError::new(format!("creating {}", path.display()), e))
                })?;
                file.append(&segment::segment_header(w.segment * SEGMENT_ENTRIES))
                    .map_err(|e| {
                        Failure::Unknown(StorageError::new(
                            format!("writing {}", path.display()),
                            e,
                        ))
                    })?;
                // The header is made durable before any frame is written, so a
                // crash leaves either a file of at most 16 bytes (a torn
                // creation, repaired) or a durable header: a wrong header on a
                // longer file is damage, and recovery refuses it. Regression: a
                // power cut that kept the frames' length but not the header's
                // sector (zeros) made the next open refuse a ledger that had
                // lost nothing acknowledged.
                file.sync_data().map_err(|e| {
                    Failure::Unknown(StorageError::new("fdatasync of a new segment header", e))
                })?;
                self.active = Some(file);
                self.active_segment = w.segment;
            }
            let file = self.active.clone().expect("set above");
            if let Err(e) = file.append(&w.bytes) {
                return Err(if rotated {
                    Failure::Unknown(StorageError::new("writing a segment", e))
                } else {
                    undo(self, "writing a segment", e)
                });
            }
            if !synced.iter().any(|f| Arc::ptr_eq(f, &file)) {
                synced.push(file);
            }
        }
        for (level, buf) in tile_bufs.iter().enumerate() {
            if !buf.is_empty() {
                if let Err(e) = self.store.tiles.append(level, buf) {
                    return Err(if rotated {
                        Failure::Unknown(StorageError::new("writing tiles", e))
                    } else {
                        undo(self, "writing tiles", e)
                    });
                }
            }
        }
        // The commit point is the fdatasync below. If it fails we cannot know
        // what reached the disk, so the writer is poisoned (see docs/storage.md).
        for f in &synced {
            f.sync_data()
                .map_err(|e| Failure::Unknown(StorageError::new("fdatasync of a segment", e)))?;
        }
        if rotated {
            fs.sync_dir(&seg_dir).map_err(|e| {
                Failure::Unknown(StorageError::new("fsync of the segments directory", e))
            })?;
        }
        Ok(())
    }

    /// Signs and durably writes a checkpoint of the current tree. Tiles are
    /// synced first, so a checkpoint never covers tiles a crash could lose.
    fn publish_checkpoint(&mut self) -> Result<(), StorageError> {
        self.store
            .tiles
            .sync()
            .map_err(|e| StorageError::new("publishing a checkpoint: syncing tiles", e))?;
        let checkpoint = tlog::Checkpoint {
            origin: self.origin.clone(),
            size: self.compact.size(),
            root: self.compact.root(),
            extensions: Vec::new(),
        };
        let note = tlog::sign_note(&checkpoint.to_text(), &[&self.signer]).map_err(|e| {
            StorageError::new("publishing a checkpoint: signing", io::Error::other(e))
        })?;
        write_durably(
            self.store.fs.as_ref(),
            &checkpoint_path(&self.store.dir),
            note.as_bytes(),
        )
        .map_err(|e| StorageError::new("publishing a checkpoint: writing it", e))?;
        self.last_checkpoint_size = checkpoint.size;
        self.last_checkpoint_at = Instant::now();
        *self.store.checkpoint.write().unwrap() = Some(Arc::new(SignedCheckpoint {
            note,
            checkpoint,
            published_at: std::time::SystemTime::now(),
        }));
        Ok(())
    }
}

enum Failure {
    /// Nothing of the group is stored; only the group fails.
    Undone(StorageError),
    /// The outcome is unknown; the writer must stop.
    Unknown(StorageError),
}

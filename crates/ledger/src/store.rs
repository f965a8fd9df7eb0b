//! The read side of a ledger directory: sizes, entry bundles, tiles, proofs.
//!
//! A `Store` is shared by the writer (which moves `size` forward after each
//! commit) and any number of readers. Readers never see past the committed
//! size, so everything they return is durable.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use tlog::{Hash, TILE_WIDTH};

use crate::fs::{read_all, Fs, FsFile};
use crate::segment::{self, BundleIndex, FrameAt};
use crate::tiles::{BoundedTiles, TileStore};
use crate::{OpenError, FORMAT_VERSION, SEGMENT_BUNDLES, SEGMENT_ENTRIES};

/// `(seq, leaf hash)` of the pruned entries met in a read.
type PrunedLeaves = Vec<(u64, Hash)>;

/// Sealed segment indexes kept in memory; bounds memory whatever the log size.
const SEALED_INDEXES_MAX: usize = 64;

/// A checkpoint together with the signed note it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The signed note, exactly as published at `/log/checkpoint`.
    pub note: String,
    /// Its parsed body.
    pub checkpoint: tlog::Checkpoint,
    /// When this process published (or loaded) it.
    pub published_at: std::time::SystemTime,
}

pub(crate) struct ReadState {
    pub size: u64,
    pub active_segment: u64,
    pub active: BundleIndex,
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The request is past the committed size of the log.
    #[error("{0}")]
    NotFound(String),
    /// Stored data is damaged.
    #[error("{0}")]
    Corrupt(String),
    /// The file system failed.
    #[error("{0}")]
    Io(String),
    /// The entry (or an entry of the bundle asked for) was pruned by retention:
    /// its payload is gone on purpose, its leaf hash stays in the tree.
    #[error("{message}")]
    Pruned {
        /// The first pruned seq met.
        seq: u64,
        /// Its leaf hash (still in the tiles and proofs).
        leaf_hash: Hash,
        /// What was asked for.
        message: String,
    },
}

pub use crate::segment::Slot;

/// `Store::read_seqs` shares the frames out over two threads from this many on
/// (one 32-entry frame decompresses in ~15 µs; a thread costs ~50 µs to start).
const PARALLEL_FRAMES_MIN: usize = 24;

/// Whether this machine runs two threads at once.
fn two_cores() -> bool {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())) > 1
}

/// Files and read access of one ledger directory.
pub struct Store {
    pub(crate) fs: Arc<dyn Fs>,
    pub(crate) dir: PathBuf,
    pub(crate) tiles: TileStore,
    pub(crate) state: RwLock<ReadState>,
    sealed: Mutex<VecDeque<(u64, Arc<BundleIndex>)>>,
    pub(crate) checkpoint: RwLock<Option<Arc<SignedCheckpoint>>>,
    node_cache: Mutex<HashMap<tlog::NodeId, Hash>>,
    /// Held (shared) by every entry read from finding a bundle's byte range
    /// until its file is open, and (exclusive) by the writer while it renames
    /// a pruned segment over the old one and swaps its bundle index: a reader
    /// never applies old offsets to the new file.
    pub(crate) rewrite: RwLock<()>,
}

pub(crate) fn segments_dir(dir: &Path) -> PathBuf {
    dir.join("segments")
}
pub(crate) fn format_path(dir: &Path) -> PathBuf {
    dir.join("FORMAT")
}
pub(crate) fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join("checkpoint")
}
pub(crate) fn format_text() -> String {
    format!("mlaudit-ledger {FORMAT_VERSION}\n")
}

/// Lists segment numbers, checking that they are 0, 1, 2, … with no gap.
pub(crate) fn list_segments(fs: &dyn Fs, dir: &Path) -> Result<Vec<u64>, OpenError> {
    let seg_dir = segments_dir(dir);
    let names = fs
        .list(&seg_dir)
        .map_err(OpenError::io(format!("listing {}", seg_dir.display())))?;
    let mut segs = Vec::new();
    for name in names {
        if name.ends_with(".tmp") {
            continue;
        }
        match segment::parse_segment_name(&name) {
            Some(n) => segs.push(n),
            None => {
                return Err(OpenError::Corrupt(format!(
                    "unexpected file {} in {}",
                    name,
                    seg_dir.display()
                )))
            }
        }
    }
    segs.sort_unstable();
    for (i, &n) in segs.iter().enumerate() {
        if n != i as u64 {
            return Err(OpenError::Corrupt(format!(
                "segment file {} is missing",
                segment::segment_name(i as u64)
            )));
        }
    }
    Ok(segs)
}

/// Reads `<dir>/checkpoint` without verifying its signature (the caller does).
pub(crate) fn load_checkpoint(
    fs: &dyn Fs,
    dir: &Path,
) -> Result<Option<Arc<SignedCheckpoint>>, OpenError> {
    let path = checkpoint_path(dir);
    if !fs.exists(&path) {
        return Ok(None);
    }
    let bytes =
        read_all(fs, &path).map_err(OpenError::io(format!("reading {}", path.display())))?;
    let note = String::from_utf8(bytes)
        .map_err(|_| OpenError::Corrupt(format!("{} is not UTF-8", path.display())))?;
    let body = note.split_once("\n\n").map(|(b, _)| format!("{b}\n"));
    let checkpoint = body
        .as_deref()
        .map(tlog::Checkpoint::parse)
        .transpose()
        .ok()
        .flatten()
        .ok_or_else(|| {
            OpenError::Corrupt(format!("{} is not a checkpoint note", path.display()))
        })?;
    Ok(Some(Arc::new(SignedCheckpoint {
        note,
        checkpoint,
        published_at: std::time::SystemTime::now(),
    })))
}

/// Checks the FORMAT file.
pub(crate) fn check_format(fs: &dyn Fs, dir: &Path) -> Result<(), OpenError> {
    let path = format_path(dir);
    let found =
        read_all(fs, &path).map_err(OpenError::io(format!("reading {}", path.display())))?;
    let found = String::from_utf8_lossy(&found).into_owned();
    if found != format_text() {
        return Err(OpenError::Format {
            path: path.display().to_string(),
            found,
        });
    }
    Ok(())
}

impl Store {
    /// Opens an existing ledger directory for reading only: nothing is
    /// repaired or written. The size is what the segments hold up to the first
    /// invalid frame of the last one.
    pub fn open_read_only(fs: Arc<dyn Fs>, dir: &Path) -> Result<Store, OpenError> {
        check_format(fs.as_ref(), dir)?;
        let segs = list_segments(fs.as_ref(), dir)?;
        let tiles = TileStore::open(fs.clone(), &dir.join("tiles"), false)
            .map_err(OpenError::io("opening tile files"))?;
        let (active_segment, active, size) = match segs.last() {
            None => (0, BundleIndex::default(), 0),
            Some(&last) => {
                let path = segments_dir(dir).join(segment::segment_name(last));
                let file = fs
                    .open(&path)
                    .map_err(OpenError::io(format!("opening {}", path.display())))?;
                let scan = segment::scan_segment(file.as_ref(), last, false)
                    .map_err(OpenError::io(format!("reading {}", path.display())))?;
                let count: u64 = scan.frames.iter().map(|f| u64::from(f.header.count)).sum();
                (
                    last,
                    BundleIndex::from_scan(&scan),
                    last * SEGMENT_ENTRIES + count,
                )
            }
        };
        let store = Store::new(fs, dir, tiles, active_segment, active, size);
        let cp = store.load_checkpoint_note()?;
        *store.checkpoint.write().unwrap() = cp;
        Ok(store)
    }

    pub(crate) fn new(
        fs: Arc<dyn Fs>,
        dir: &Path,
        tiles: TileStore,
        active_segment: u64,
        active: BundleIndex,
        size: u64,
    ) -> Store {
        Store {
            fs,
            dir: dir.to_path_buf(),
            tiles,
            state: RwLock::new(ReadState {
                size,
                active_segment,
                active,
            }),
            sealed: Mutex::new(VecDeque::new()),
            checkpoint: RwLock::new(None),
            node_cache: Mutex::new(HashMap::new()),
            rewrite: RwLock::new(()),
        }
    }

    /// Reads `<dir>/checkpoint` without verifying its signature (the caller does).
    pub(crate) fn load_checkpoint_note(&self) -> Result<Option<Arc<SignedCheckpoint>>, OpenError> {
        load_checkpoint(self.fs.as_ref(), &self.dir)
    }

    /// Number of committed (durable, acknowledged or recovered) entries.
    pub fn size(&self) -> u64 {
        self.state.read().unwrap().size
    }

    /// The latest signed checkpoint, if one was ever published.
    pub fn checkpoint(&self) -> Option<Arc<SignedCheckpoint>> {
        self.checkpoint.read().unwrap().clone()
    }

    /// The directory of this ledger.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn segment_path(&self, n: u64) -> PathBuf {
        segments_dir(&self.dir).join(segment::segment_name(n))
    }

    /// Byte range of bundle `index` in its segment, within the committed size.
    fn bundle_range(&self, index: u64) -> Result<(u64, u64), ReadError> {
        let seg = index / SEGMENT_BUNDLES;
        let i = (index % SEGMENT_BUNDLES) as usize;
        {
            let st = self.state.read().unwrap();
            if seg == st.active_segment {
                return st.active.range(i).ok_or_else(|| {
                    ReadError::NotFound(format!("entry bundle {index} is not stored"))
                });
            }
            if seg > st.active_segment {
                return Err(ReadError::NotFound(format!(
                    "entry bundle {index} is not stored"
                )));
            }
        }
        let idx = self.sealed_index(seg)?;
        idx.range(i)
            .ok_or_else(|| ReadError::Corrupt(format!("sealed segment {seg} lacks bundle {i}")))
    }

    /// Replaces the cached index of sealed segment `seg` after a rewrite
    /// (caller holds `rewrite` exclusively).
    pub(crate) fn forget_sealed_index(&self, seg: u64) {
        self.sealed.lock().unwrap().retain(|(s, _)| *s != seg);
    }

    fn sealed_index(&self, seg: u64) -> Result<Arc<BundleIndex>, ReadError> {
        if let Some((_, idx)) = self.sealed.lock().unwrap().iter().find(|(s, _)| *s == seg) {
            return Ok(idx.clone());
        }
        let path = self.segment_path(seg);
        let file = self
            .fs
            .open(&path)
            .map_err(|e| ReadError::Io(format!("opening {}: {e}", path.display())))?;
        let scan = segment::scan_segment(file.as_ref(), seg, false)
            .map_err(|e| ReadError::Io(format!("reading {}: {e}", path.display())))?;
        let count: u64 = scan.frames.iter().map(|f| u64::from(f.header.count)).sum();
        if count != SEGMENT_ENTRIES {
            return Err(ReadError::Corrupt(format!(
                "{} holds {count} valid entries, a sealed segment must hold {SEGMENT_ENTRIES}: {}",
                path.display(),
                scan.stopped.unwrap_or_default()
            )));
        }
        let idx = Arc::new(BundleIndex::from_scan(&scan));
        let mut cache = self.sealed.lock().unwrap();
        if cache.len() >= SEALED_INDEXES_MAX {
            cache.pop_front();
        }
        cache.push_back((seg, idx.clone()));
        Ok(idx)
    }

    /// Opens segment `seg`. The caller holds `rewrite` while it reads offsets and
    /// opens the file, so both come from the same version of the segment.
    fn open_segment(&self, seg: u64) -> Result<(PathBuf, Box<dyn FsFile>), ReadError> {
        let path = self.segment_path(seg);
        let file = self
            .fs
            .open(&path)
            .map_err(|e| ReadError::Io(format!("opening {}: {e}", path.display())))?;
        Ok((path, file))
    }

    /// The segment file of bundle `index`, opened, with the bundle's byte range in it.
    fn open_bundle(&self, index: u64) -> Result<(PathBuf, u64, u64, Box<dyn FsFile>), ReadError> {
        let _gate = self.rewrite.read().unwrap();
        let (start, end) = self.bundle_range(index)?;
        let (path, file) = self.open_segment(index / SEGMENT_BUNDLES)?;
        Ok((path, start, end, file))
    }

    /// What is stored for each of `seqs` (ascending, each below the log size):
    /// the entry, or the leaf hash of a pruned one. Only the frames that hold
    /// one of them are read and decompressed, so scattered reads cost one small
    /// frame each rather than a whole bundle (see `Config::frame_entries`).
    pub fn read_seqs(&self, seqs: &[u64]) -> Result<Vec<Slot>, ReadError> {
        let size = self.size();
        if let Some(bad) = seqs.windows(2).find(|w| w[0] >= w[1]) {
            return Err(ReadError::NotFound(format!(
                "seqs must be ascending: {} before {}",
                bad[0], bad[1]
            )));
        }
        if let Some(&last) = seqs.last().filter(|&&s| s >= size) {
            return Err(ReadError::NotFound(format!(
                "seq {last} is past the log size {size}"
            )));
        }
        // 1. The frames that hold them, each segment's file opened once.
        let mut files = Vec::new();
        let mut jobs: Vec<(usize, FrameAt, std::ops::Range<usize>)> = Vec::new();
        let mut at = 0;
        for run in seqs.chunk_by(|a, b| a / SEGMENT_ENTRIES == b / SEGMENT_ENTRIES) {
            let seg = run[0] / SEGMENT_ENTRIES;
            let _gate = self.rewrite.read().unwrap();
            for (f, n) in self.frames_of(seg, run)? {
                jobs.push((files.len(), f, at..at + n));
                at += n;
            }
            files.push(self.open_segment(seg)?);
        }
        // 2. Read and decompress them; many frames are shared out over two threads.
        let read = |jobs: &[(usize, FrameAt, std::ops::Range<usize>)]| {
            let mut out = Vec::new();
            for (i, f, r) in jobs {
                let (path, file) = &files[*i];
                let slots = segment::read_wanted(
                    file.as_ref(),
                    f.start,
                    f.end,
                    f.first_seq,
                    &seqs[r.clone()],
                )
                .map_err(|e| ReadError::Corrupt(format!("{}: {e}", path.display())))?;
                out.extend(slots);
            }
            Ok::<_, ReadError>(out)
        };
        if jobs.len() < PARALLEL_FRAMES_MIN || !two_cores() {
            return read(&jobs);
        }
        let (first, second) = jobs.split_at(jobs.len() / 2);
        let (out, rest) = std::thread::scope(|s| {
            let helper = s.spawn(|| read(second));
            (read(first), helper.join())
        });
        let mut out = out?;
        out.extend(rest.map_err(|_| ReadError::Io("a reader thread panicked".into()))??);
        Ok(out)
    }

    /// For `seqs` (ascending, all in segment `seg`, below the size): the frames
    /// holding them, each with how many of `seqs` it holds.
    fn frames_of(&self, seg: u64, seqs: &[u64]) -> Result<Vec<(FrameAt, usize)>, ReadError> {
        let group = |idx: &BundleIndex| {
            let mut out: Vec<(FrameAt, usize)> = Vec::new();
            for &seq in seqs {
                match out.last_mut() {
                    Some((f, n)) if seq < f.next_seq => *n += 1,
                    _ => {
                        let f = idx.frame_of(seq).ok_or_else(|| {
                            ReadError::Corrupt(format!("segment {seg} has no frame for seq {seq}"))
                        })?;
                        out.push((f, 1));
                    }
                }
            }
            Ok(out)
        };
        {
            let st = self.state.read().unwrap();
            if seg == st.active_segment {
                return group(&st.active);
            }
        }
        group(self.sealed_index(seg)?.as_ref())
    }

    /// Reads bundle `index` up to `width` entries: the bundle-framed bytes of
    /// the entries that are stored, and `(seq, leaf hash)` of the pruned ones.
    fn read_bundle(&self, index: u64, width: u64) -> Result<(Vec<u8>, PrunedLeaves), ReadError> {
        if width == 0 || width > TILE_WIDTH {
            return Err(ReadError::NotFound(format!("bad bundle width {width}")));
        }
        let first_seq = index
            .checked_mul(TILE_WIDTH)
            .ok_or_else(|| ReadError::NotFound("bundle index out of range".into()))?;
        if first_seq.saturating_add(width) > self.size() {
            return Err(ReadError::NotFound(format!(
                "entry bundle {index} of width {width} is past the log size {}",
                self.size()
            )));
        }
        let (path, start, end, file) = self.open_bundle(index)?;
        let mut raw = Vec::new();
        let mut pruned = Vec::new();
        let count =
            segment::read_frames(file.as_ref(), start, end, first_seq, &mut raw, &mut pruned)
                .map_err(|e| ReadError::Corrupt(format!("{}: {e}", path.display())))?;
        if count < width {
            return Err(ReadError::Corrupt(format!(
                "{}: bundle {index} holds {count} entries, expected at least {width}",
                path.display()
            )));
        }
        pruned.retain(|(s, _)| *s < first_seq + width);
        let kept = width as usize - pruned.len();
        let cut = bundle_prefix_len(&raw, kept);
        raw.truncate(cut);
        Ok((raw, pruned))
    }

    /// The bytes of C2SP entry bundle `index` holding its first `width`
    /// entries (1..=256), exactly as served at `/log/tile/entries/…`. A bundle
    /// with a pruned entry among them no longer exists: `ReadError::Pruned`.
    pub fn bundle(&self, index: u64, width: u64) -> Result<Vec<u8>, ReadError> {
        let (raw, pruned) = self.read_bundle(index, width)?;
        if let Some(&(seq, leaf_hash)) = pruned.first() {
            return Err(ReadError::Pruned {
                seq,
                leaf_hash,
                message: format!(
                    "entry bundle {index} of width {width} no longer exists: {} of its entries \
                     were pruned by retention, the first at seq {seq}",
                    pruned.len()
                ),
            });
        }
        Ok(raw)
    }

    /// The first `width` positions of bundle `index`: each stored entry, or the
    /// leaf hash of a pruned one. Works on any bundle, pruned or not.
    pub fn slots(&self, index: u64, width: u64) -> Result<Vec<Slot>, ReadError> {
        let (raw, pruned) = self.read_bundle(index, width)?;
        let entries = tlog::parse_bundle(&raw)
            .map_err(|e| ReadError::Corrupt(format!("entry bundle {index}: {e}")))?;
        let mut kept = entries.into_iter();
        let mut pruned = pruned.into_iter().peekable();
        let first_seq = index * TILE_WIDTH;
        let mut out = Vec::with_capacity(width as usize);
        for seq in first_seq..first_seq + width {
            match pruned.next_if(|(s, _)| *s == seq) {
                Some((_, h)) => out.push(Slot::Pruned(h)),
                None => out.push(Slot::Entry(
                    kept.next()
                        .ok_or_else(|| {
                            ReadError::Corrupt(format!("entry bundle {index} lacks seq {seq}"))
                        })?
                        .to_vec(),
                )),
            }
        }
        Ok(out)
    }

    /// One stored entry (`ReadError::Pruned` once retention pruned it).
    pub fn entry(&self, seq: u64) -> Result<Vec<u8>, ReadError> {
        let size = self.size();
        if seq >= size {
            return Err(ReadError::NotFound(format!(
                "seq {seq} is past the log size {size}"
            )));
        }
        match self.read_seqs(&[seq])?.swap_remove(0) {
            Slot::Entry(bytes) => Ok(bytes),
            Slot::Pruned(leaf_hash) => Err(ReadError::Pruned {
                seq,
                leaf_hash,
                message: format!(
                    "entry {seq} was pruned by retention; its leaf hash stays in the log"
                ),
            }),
        }
    }

    /// Reads the committed entries from seq `from` up to the current size, one
    /// bundle at a time: `f(first_seq, entries)` gets consecutive entries of one
    /// bundle. Pruned entries are skipped: a bundle with pruned entries gives
    /// one call per run of stored entries. This is how derived stores catch up
    /// (one transaction per call). Returns the seq after the last entry read.
    pub fn for_each_bundle<E: From<ReadError>>(
        &self,
        from: u64,
        mut f: impl FnMut(u64, &[&[u8]]) -> Result<(), E>,
    ) -> Result<u64, E> {
        let size = self.size();
        let mut seq = from;
        while seq < size {
            let index = seq / TILE_WIDTH;
            let end = ((index + 1) * TILE_WIDTH).min(size);
            let (raw, pruned) = self.read_bundle(index, end - index * TILE_WIDTH)?;
            let entries = tlog::parse_bundle(&raw)
                .map_err(|e| ReadError::Corrupt(format!("entry bundle {index}: {e}")))?;
            if pruned.is_empty() {
                f(seq, &entries[(seq - index * TILE_WIDTH) as usize..])?;
            } else {
                // Runs of stored entries between pruned ones.
                let mut run: Vec<&[u8]> = Vec::new();
                let mut run_first = index * TILE_WIDTH;
                let mut kept = entries.into_iter();
                let mut pruned = pruned.iter().map(|(s, _)| *s).peekable();
                for s in index * TILE_WIDTH..end {
                    if pruned.next_if_eq(&s).is_some() {
                        if !run.is_empty() {
                            f(run_first, &run)?;
                            run.clear();
                        }
                        run_first = s + 1;
                        continue;
                    }
                    let e = kept.next().ok_or_else(|| {
                        ReadError::Corrupt(format!("entry bundle {index} lacks seq {s}"))
                    })?;
                    if s < seq {
                        run_first = s + 1;
                    } else {
                        run.push(e);
                    }
                }
                if !run.is_empty() {
                    f(run_first, &run)?;
                }
            }
            seq = end;
        }
        Ok(seq.max(from))
    }

    /// The bytes of C2SP hash tile `level/index` of width `width`.
    pub fn tile(&self, level: u8, index: u64, width: u64) -> Result<Vec<u8>, ReadError> {
        let size = self.size();
        let level = level as usize;
        if width == 0 || width > TILE_WIDTH {
            return Err(ReadError::NotFound(format!("bad tile width {width}")));
        }
        let end = index.saturating_mul(TILE_WIDTH).saturating_add(width);
        if end > crate::tiles::level_len(level, size) {
            return Err(ReadError::NotFound(format!(
                "tile {level}/{index} of width {width} is past the log size {size}"
            )));
        }
        self.tiles
            .tile(level, index, width)
            .map_err(|e| ReadError::Io(format!("reading tile {level}/{index}: {e}")))
    }

    /// Root hash of the tree of the first `size` entries (`size` ≤ committed size).
    pub fn root_at(&self, size: u64) -> Result<Hash, ReadError> {
        self.check_size(size)?;
        tlog::root_hash(size, &self.hash_reader(size)).map_err(tree_err)
    }

    /// RFC 9162 inclusion proof of entry `seq` in the tree of size `size`.
    pub fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<Hash>, ReadError> {
        self.check_size(size)?;
        if seq >= size {
            return Err(ReadError::NotFound(format!(
                "seq {seq} is not in a tree of size {size}"
            )));
        }
        tlog::inclusion_proof(seq, size, &self.hash_reader(size)).map_err(tree_err)
    }

    /// RFC 9162 consistency proof between tree sizes `old` and `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, ReadError> {
        self.check_size(new)?;
        if old == 0 || old > new {
            return Err(ReadError::NotFound(format!(
                "no consistency proof from size {old} to size {new} (need 0 < from <= to)"
            )));
        }
        tlog::consistency_proof(old, new, &self.hash_reader(new)).map_err(tree_err)
    }

    /// Leaf hash of entry `seq`, from the level-0 tiles.
    pub fn leaf_hash(&self, seq: u64) -> Result<Hash, ReadError> {
        self.check_size(seq + 1)?;
        let hashes = self
            .tiles
            .read(0, seq, 1)
            .map_err(|e| ReadError::Io(format!("reading leaf hash {seq}: {e}")))?;
        Ok(hashes[0])
    }

    fn check_size(&self, size: u64) -> Result<(), ReadError> {
        let committed = self.size();
        if size > committed {
            return Err(ReadError::NotFound(format!(
                "tree size {size} is past the log size {committed}"
            )));
        }
        Ok(())
    }

    fn hash_reader(&self, size: u64) -> CachedNodes<'_> {
        CachedNodes {
            inner: tlog::TileHashReader(BoundedTiles {
                store: &self.tiles,
                size,
            }),
            cache: &self.node_cache,
        }
    }
}

/// Node hashes recomputed from tiles for proofs, kept for reuse; bounded.
const NODE_CACHE_MAX: usize = 8192;

/// A hash reader that remembers nodes of height 8 and up. A perfect
/// subtree's hash never changes once it exists, so nothing is ever stale;
/// the upper nodes are shared by every proof, and recomputing them from
/// their tile is most of a proof's cost.
struct CachedNodes<'a> {
    inner: tlog::TileHashReader<BoundedTiles<'a>>,
    cache: &'a Mutex<HashMap<tlog::NodeId, Hash>>,
}

impl tlog::HashReader for CachedNodes<'_> {
    fn read_hashes(&self, nodes: &[tlog::NodeId]) -> Result<Vec<Hash>, tlog::Error> {
        let mut out: Vec<Option<Hash>> = {
            let cache = self.cache.lock().unwrap();
            nodes.iter().map(|n| cache.get(n).copied()).collect()
        };
        let missing: Vec<tlog::NodeId> = nodes
            .iter()
            .zip(&out)
            .filter(|(_, h)| h.is_none())
            .map(|(n, _)| *n)
            .collect();
        if !missing.is_empty() {
            let read = self.inner.read_hashes(&missing)?;
            if read.len() != missing.len() {
                return Err(tlog::Error::ReaderCount {
                    expected: missing.len(),
                    got: read.len(),
                });
            }
            let mut cache = self.cache.lock().unwrap();
            if cache.len() + missing.len() > NODE_CACHE_MAX {
                cache.clear();
            }
            let mut it = read.into_iter();
            for (slot, node) in out.iter_mut().zip(nodes) {
                if slot.is_none() {
                    let h = it.next().expect("counted above");
                    if node.level >= 8 {
                        cache.insert(*node, h);
                    }
                    *slot = Some(h);
                }
            }
        }
        Ok(out.into_iter().map(|h| h.expect("filled above")).collect())
    }
}

fn tree_err(e: tlog::Error) -> ReadError {
    ReadError::Corrupt(e.to_string())
}

/// Length of the first `n` entries of a bundle-framed buffer (already validated).
fn bundle_prefix_len(raw: &[u8], n: usize) -> usize {
    let mut at = 0;
    for _ in 0..n {
        let len = u16::from_be_bytes([raw[at], raw[at + 1]]) as usize;
        at += 2 + len;
    }
    at
}

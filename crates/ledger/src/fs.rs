//! The file system as the ledger sees it: a handful of operations with
//! explicit durability, so that a test double can model exactly what a crash
//! keeps and inject a failure at any step.
//!
//! Contract of every implementation:
//! - `append` and `set_len` change the file's *volatile* contents; only a
//!   successful `sync_data` on that file makes them durable.
//! - `create` and `rename` change the directory's *volatile* entries; only a
//!   successful `sync_dir` on the parent directory makes them durable.
//! - Calls may come from several threads at once; reads (`read_at`, `len`)
//!   never block writers for long and may run concurrently with appends.
//! - A failed call may or may not have taken effect (the ledger treats an
//!   unknown outcome of `sync_data`, `rename` or `sync_dir` as fatal).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One open file.
#[allow(clippy::len_without_is_empty)] // a file length, not a collection
pub trait FsFile: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`; returns the number read (0 at end of file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Appends all of `data` at the end of the file (not durable until `sync_data`).
    fn append(&self, data: &[u8]) -> io::Result<()>;
    /// Current length, including volatile appends.
    fn len(&self) -> io::Result<u64>;
    /// Truncates or extends the file (not durable until `sync_data`).
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the file's contents durable (fdatasync).
    fn sync_data(&self) -> io::Result<()>;
}

/// A directory tree the ledger lives in.
pub trait Fs: Send + Sync {
    /// Creates a directory and its parents (durable only after `sync_dir` of the parent).
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Opens an existing file for reading and appending.
    fn open(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// Creates an empty file; fails if it exists.
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// Atomically replaces `to` with `from` (durable after `sync_dir`).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the directory's entries durable (fsync of the directory).
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Names of the entries of a directory, sorted.
    fn list(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Removes a file (durable after `sync_dir`).
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Whether a file or directory exists.
    fn exists(&self, path: &Path) -> bool;
}

/// Reads exactly `buf.len()` bytes at `offset`, or fails with `UnexpectedEof`.
pub fn read_exact_at(file: &dyn FsFile, buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = file.read_at(&mut buf[done..], offset)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file ended early",
            ));
        }
        done += n;
        offset += n as u64;
    }
    Ok(())
}

/// Writes a small file durably: temp file, fsync, rename, fsync of the directory.
pub fn write_durably(fs: &dyn Fs, path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    if fs.exists(&tmp) {
        fs.remove(&tmp)?;
    }
    let file = fs.create(&tmp)?;
    file.append(data)?;
    file.sync_data()?;
    drop(file);
    fs.rename(&tmp, path)?;
    fs.sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Reads a whole (small) file.
pub fn read_all(fs: &dyn Fs, path: &Path) -> io::Result<Vec<u8>> {
    let file = fs.open(path)?;
    let len = file.len()? as usize;
    let mut buf = vec![0; len];
    read_exact_at(file.as_ref(), &mut buf, 0)?;
    Ok(buf)
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

struct StdFile(File);

impl FsFile for StdFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn append(&self, data: &[u8]) -> io::Result<()> {
        // The file is opened with O_APPEND, so every write lands at the end.
        (&self.0).write_all(data)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl Fs for StdFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        // 0700 and files 0600 whatever the umask (a umask only narrows a mode): the
        // ledger holds every event (issue 18.10).
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let file = OpenOptions::new().read(true).append(true).open(path)?;
        Ok(Box::new(StdFile(file)))
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        Ok(Box::new(StdFile(file)))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
    fn list(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

/// How an injected failure behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The operation fails and has no effect ("failed and not persisted").
    Before,
    /// The operation takes full effect, then reports failure ("failed but persisted").
    After,
}

/// An in-memory file system that models durability, for crash tests.
///
/// Every file has durable contents and volatile contents, and remembers the
/// writes and truncations made since its last `sync_data`; every directory
/// remembers the creates, renames and removes made since its last
/// `sync_dir`. A simulated power cut keeps the durable state and some of the
/// rest, in one of two models:
///
/// - [`MemFs::crash`], *clean prefix losses*: unsynced directory entries are
///   lost, and each file keeps a prefix of its unsynced appends, as long as
///   the caller chooses.
/// - [`MemFs::power_cut`], *torn and reordered*, from a seed: each directory
///   keeps a prefix of its unsynced operations (metadata is journaled in
///   order); each file's length is the length after some prefix of its
///   unsynced operations, maybe in the middle of an append; and within that
///   length each unsynced write reaches the disk whole, in 512-byte sectors
///   at random, or not at all, independently of the writes before it. Bytes
///   no surviving write covers read as zeros or as garbage.
///
/// Mutating operations are numbered from 0 so that a test can fail the
/// k-th one with [`Fault::Before`] or [`Fault::After`].
///
/// **Committed bytes are immutable.** Bytes a successful `sync_data` made
/// durable are *committed*: a later write that puts different bytes at
/// their offset in the same file (after a truncation) is a bug of the
/// caller, and panics with the file, the offset and both values. A panic on
/// another thread (the ledger's writer) is remembered, and every later call
/// on this `MemFs` panics with the same message, so the test fails. A file
/// replaced by `rename` is a new file; bytes damaged by [`MemFs::corrupt`]
/// may be repaired.
#[derive(Clone, Default)]
pub struct MemFs {
    inner: Arc<Mutex<MemState>>,
}

#[derive(Default, Clone)]
struct MemState {
    /// Visible names → file ids (volatile view).
    names: BTreeMap<PathBuf, u64>,
    /// Names as they would survive a crash.
    durable_names: BTreeMap<PathBuf, u64>,
    /// Per directory, the entry changes made since its last `sync_dir`, in order.
    dir_log: BTreeMap<PathBuf, Vec<DirOp>>,
    dirs: BTreeMap<PathBuf, ()>,
    files: HashMap<u64, MemData>,
    next_id: u64,
    ops: u64,
    fail_at: Option<(u64, Fault)>,
    /// The first committed-bytes violation; every later call panics with it.
    violation: Option<String>,
}

/// One change to a directory's entries.
#[derive(Clone)]
enum DirOp {
    Link { path: PathBuf, id: u64 },
    Unlink { path: PathBuf },
    Rename { from: PathBuf, to: PathBuf, id: u64 },
}

/// One change to a file's contents.
#[derive(Clone)]
enum DataOp {
    /// Bytes appended at `at` (the length at the time).
    Write { at: usize, bytes: Vec<u8> },
    /// A truncation or extension (with zeros).
    SetLen(usize),
}

#[derive(Default, Clone)]
struct MemData {
    current: Vec<u8>,
    durable: Vec<u8>,
    /// Writes and truncations since the last sync, in order.
    log: Vec<DataOp>,
    /// Every byte a successful `sync_data` ever made durable, at its offset.
    committed: Vec<u8>,
    /// Offsets damaged by `corrupt`, exempt from the committed-bytes check.
    damaged: BTreeSet<usize>,
}

/// The disk sector: the unit in which a torn write reaches the disk.
const SECTOR_BYTES: usize = 512;

/// A small deterministic generator (SplitMix64), so that a failing seed replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A value in `0..=max`.
    fn up_to(&mut self, max: usize) -> usize {
        (self.next() % (max as u64 + 1)) as usize
    }
    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
}

impl MemData {
    /// The length after the operations `log[..p]`.
    fn len_after(&self, p: usize) -> usize {
        match p.checked_sub(1).map(|i| &self.log[i]) {
            None => self.durable.len(),
            Some(DataOp::Write { at, bytes }) => at + bytes.len(),
            Some(DataOp::SetLen(n)) => *n,
        }
    }

    /// Makes the volatile contents durable; `committed` when the sync reports success.
    fn sync(&mut self, committed: bool) {
        for op in self.log.drain(..) {
            match op {
                DataOp::Write { at, bytes } => {
                    self.durable.resize(at, 0);
                    self.durable.extend_from_slice(&bytes);
                }
                DataOp::SetLen(n) => self.durable.resize(n, 0),
            }
        }
        debug_assert!(self.durable == self.current, "MemFs: bad replay");
        if committed && self.current.len() > self.committed.len() {
            let from = self.committed.len();
            self.committed.extend_from_slice(&self.current[from..]);
        }
    }

    /// The first committed byte that writing `bytes` at `at` would change:
    /// (offset, committed value, new value).
    fn rewrites_committed(&self, at: usize, bytes: &[u8]) -> Option<(usize, u8, u8)> {
        let end = (at + bytes.len()).min(self.committed.len());
        if at >= end || self.committed[at..end] == bytes[..end - at] {
            return None;
        }
        (at..end)
            .find(|&x| self.committed[x] != bytes[x - at] && !self.damaged.contains(&x))
            .map(|x| (x, self.committed[x], bytes[x - at]))
    }

    /// The clean-prefix power cut: keeps `torn(unsynced)` bytes of unsynced
    /// appends when the volatile contents extend the durable ones.
    fn crash_prefix(&mut self, torn: &mut impl FnMut(usize) -> usize) {
        let extends = self.current.len() >= self.durable.len()
            && self.current[..self.durable.len()] == self.durable[..];
        if extends {
            let extra = self.current.len() - self.durable.len();
            let keep = torn(extra).min(extra);
            self.current.truncate(self.durable.len() + keep);
        } else {
            self.current = self.durable.clone();
        }
        self.durable = self.current.clone();
        self.log.clear();
    }

    /// The torn and reordered power cut (see [`MemFs`]).
    fn crash_torn(&mut self, rng: &mut Rng) {
        if self.log.is_empty() {
            return;
        }
        let n = self.log.len();
        // The length: metadata reaches the disk in order, maybe mid-append.
        let p = rng.up_to(n);
        let mut len = self.len_after(p);
        if p < n && matches!(self.log[p], DataOp::Write { .. }) && rng.one_in(3) {
            let next = self.len_after(p + 1);
            len = len.min(next) + rng.up_to(len.abs_diff(next));
        }
        let max_len = (0..=n).map(|i| self.len_after(i)).max().unwrap_or(0);
        let mut buf = self.durable.clone();
        buf.resize(max_len, 0);
        let mut known = vec![false; max_len];
        known[..self.durable.len()].fill(true);
        // Data reaches the disk in any order: each write whole, in part, or not.
        for (i, op) in self.log.iter().enumerate() {
            match op {
                DataOp::SetLen(cut) if i < p => known[(*cut).min(max_len)..].fill(false),
                DataOp::SetLen(_) => {}
                DataOp::Write { at, bytes } => {
                    let whole = match rng.up_to(3) {
                        0 => continue,
                        1 => false,
                        _ => true,
                    };
                    let mut x = *at;
                    while x < at + bytes.len() {
                        let end = ((x / SECTOR_BYTES + 1) * SECTOR_BYTES).min(at + bytes.len());
                        if whole || rng.one_in(2) {
                            buf[x..end].copy_from_slice(&bytes[x - at..end - at]);
                            known[x..end].fill(true);
                        }
                        x = end;
                    }
                }
            }
        }
        buf.truncate(len);
        let garbage = rng.one_in(2);
        for (x, b) in buf.iter_mut().enumerate() {
            if !known[x] {
                *b = if garbage { rng.next() as u8 } else { 0 };
            }
        }
        self.current = buf;
        self.durable = self.current.clone();
        self.log.clear();
    }
}

impl MemState {
    /// Counts one mutating operation and says whether it must fail, and how.
    fn tick(&mut self) -> Option<Fault> {
        let op = self.ops;
        self.ops += 1;
        match self.fail_at {
            Some((at, fault)) if at == op => Some(fault),
            _ => None,
        }
    }

    fn log_dir(&mut self, dir_of: &Path, op: DirOp) {
        let dir = dir_of.parent().unwrap_or(Path::new("")).to_path_buf();
        self.dir_log.entry(dir).or_default().push(op);
    }

    /// Keeps only the files some name still reaches.
    fn drop_unreachable(&mut self) {
        let live: BTreeSet<u64> = self.names.values().copied().collect();
        self.files.retain(|id, _| live.contains(id));
    }

    fn name_of(&self, id: u64) -> String {
        self.names
            .iter()
            .find(|(_, &i)| i == id)
            .map_or(format!("(unlinked file #{id})"), |(p, _)| {
                p.display().to_string()
            })
    }
}

/// Locks the state; panics (failing the test) if a violation was seen before.
fn lock(inner: &Mutex<MemState>) -> std::sync::MutexGuard<'_, MemState> {
    let st = inner.lock().unwrap_or_else(|e| e.into_inner());
    // Not while unwinding: a second panic would abort the test run.
    if let (Some(v), false) = (&st.violation, std::thread::panicking()) {
        let v = v.clone();
        drop(st);
        panic!("{v}");
    }
    st
}

fn injected() -> io::Error {
    io::Error::other("injected fault")
}

impl MemFs {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// An independent copy of this file system, volatile state, operation
    /// count and all (to run many crash cases from one prefilled disk).
    pub fn fork(&self) -> MemFs {
        let st = lock(&self.inner).clone();
        MemFs {
            inner: Arc::new(Mutex::new(st)),
        }
    }

    /// Number of mutating operations so far.
    pub fn ops(&self) -> u64 {
        lock(&self.inner).ops
    }

    /// Fails the mutating operation numbered `op` (counting from 0 since creation).
    pub fn fail_at(&self, op: u64, fault: Fault) {
        lock(&self.inner).fail_at = Some((op, fault));
    }

    /// Simulates a power cut with clean prefix losses: unsynced directory
    /// entries are lost, and each file keeps its durable contents plus
    /// `torn(unsynced_len)` bytes of the unsynced appends (when the volatile
    /// contents extend the durable ones).
    pub fn crash(&self, mut torn: impl FnMut(usize) -> usize) {
        let mut st = lock(&self.inner);
        st.names = st.durable_names.clone();
        st.dir_log.clear();
        st.fail_at = None;
        st.drop_unreachable();
        for data in st.files.values_mut() {
            data.crash_prefix(&mut torn);
        }
    }

    /// Simulates a power cut that tears and reorders what was not synced
    /// (the second model of [`MemFs`]), choosing by `seed`. Committed bytes
    /// always survive; so does every directory entry made durable by `sync_dir`.
    pub fn power_cut(&self, seed: u64) {
        let mut rng = Rng(seed);
        let mut guard = lock(&self.inner);
        let st = &mut *guard;
        let mut names = st.durable_names.clone();
        for log in st.dir_log.values() {
            for op in &log[..rng.up_to(log.len())] {
                match op {
                    DirOp::Link { path, id } => {
                        names.insert(path.clone(), *id);
                    }
                    DirOp::Unlink { path } => {
                        names.remove(path);
                    }
                    DirOp::Rename { from, to, id } => {
                        names.remove(from);
                        names.insert(to.clone(), *id);
                    }
                }
            }
        }
        st.dir_log.clear();
        st.durable_names = names.clone();
        st.names = names;
        st.fail_at = None;
        st.drop_unreachable();
        // In id order, so that a seed always gives the same disk.
        let mut ids: Vec<u64> = st.files.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            st.files.get_mut(&id).expect("listed").crash_torn(&mut rng);
        }
    }

    /// Flips one bit of a file, durably (for corruption tests). The byte may
    /// later be rewritten with any value (a repair).
    pub fn corrupt(&self, path: &Path, offset: usize) {
        let mut st = lock(&self.inner);
        let id = st.names[path];
        let data = st.files.get_mut(&id).unwrap();
        data.current[offset] ^= 0x01;
        data.durable = data.current.clone();
        data.log.clear();
        data.damaged.insert(offset);
    }
}

struct MemFile {
    fs: Arc<Mutex<MemState>>,
    id: u64,
}

fn removed() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "file was removed")
}

impl MemFile {
    fn with<R>(&self, f: impl FnOnce(&mut MemData) -> R) -> io::Result<R> {
        let mut st = lock(&self.fs);
        match st.files.get_mut(&self.id) {
            Some(data) => Ok(f(data)),
            None => Err(removed()),
        }
    }

    /// Runs one mutating operation under fault injection. `write` is the
    /// data the operation puts at an offset, checked against committed bytes.
    fn mutate(
        &self,
        write: Option<(usize, &[u8])>,
        f: impl FnOnce(&mut MemData),
    ) -> io::Result<()> {
        let mut st = lock(&self.fs);
        let fault = st.tick();
        if fault == Some(Fault::Before) {
            return Err(injected());
        }
        let Some(data) = st.files.get_mut(&self.id) else {
            return Err(removed());
        };
        let at = write.map(|(at, _)| at);
        let bytes = write.map_or(&[][..], |(_, b)| b);
        let bad = at.and_then(|at| {
            let at = if at == usize::MAX {
                data.current.len()
            } else {
                at
            };
            data.rewrites_committed(at, bytes)
        });
        if let Some((offset, was, now)) = bad {
            let msg = format!(
                "MemFs: committed bytes rewritten: {} offset {offset} was {was:#04x} when a \
                 successful sync_data made it durable, and is now written as {now:#04x}",
                st.name_of(self.id)
            );
            st.violation = Some(msg.clone());
            drop(st);
            panic!("{msg}");
        }
        f(data);
        match fault {
            Some(_) => Err(injected()),
            None => Ok(()),
        }
    }
}

impl FsFile for MemFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.with(|d| {
            let start = (offset as usize).min(d.current.len());
            let n = buf.len().min(d.current.len() - start);
            buf[..n].copy_from_slice(&d.current[start..start + n]);
            n
        })
    }
    fn append(&self, data: &[u8]) -> io::Result<()> {
        // usize::MAX: at the end of the file, known only under the lock.
        self.mutate(Some((usize::MAX, data)), |d| {
            let at = d.current.len();
            d.current.extend_from_slice(data);
            d.log.push(DataOp::Write {
                at,
                bytes: data.to_vec(),
            });
        })
    }
    fn len(&self) -> io::Result<u64> {
        self.with(|d| d.current.len() as u64)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = len as usize;
        // Extending writes zeros: they must not change committed bytes either.
        let cur = self.with(|d| d.current.len())?;
        let zeros = vec![0; len.saturating_sub(cur)];
        self.mutate(Some((cur.min(len), &zeros)), |d| {
            d.current.resize(len, 0);
            d.log.push(DataOp::SetLen(len));
        })
    }
    fn sync_data(&self) -> io::Result<()> {
        let mut st = lock(&self.fs);
        let fault = st.tick();
        if fault == Some(Fault::Before) {
            return Err(injected());
        }
        let data = st.files.get_mut(&self.id).ok_or_else(removed)?;
        // "Failed but persisted": durable, but never reported committed.
        data.sync(fault.is_none());
        match fault {
            Some(_) => Err(injected()),
            None => Ok(()),
        }
    }
}

impl Fs for MemFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = lock(&self.inner);
        for anc in path.ancestors() {
            st.dirs.insert(anc.to_path_buf(), ());
        }
        Ok(())
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let st = lock(&self.inner);
        match st.names.get(path) {
            Some(&id) => Ok(Box::new(MemFile {
                fs: self.inner.clone(),
                id,
            })),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} not found", path.display()),
            )),
        }
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let mut st = lock(&self.inner);
        if st.names.contains_key(path) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
        }
        let fault = st.tick();
        if fault == Some(Fault::Before) {
            return Err(injected());
        }
        let id = st.next_id;
        st.next_id += 1;
        st.files.insert(id, MemData::default());
        st.names.insert(path.to_path_buf(), id);
        st.log_dir(
            path,
            DirOp::Link {
                path: path.to_path_buf(),
                id,
            },
        );
        if fault.is_some() {
            return Err(injected());
        }
        Ok(Box::new(MemFile {
            fs: self.inner.clone(),
            id,
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        assert_eq!(
            from.parent(),
            to.parent(),
            "MemFs models renames within one directory only"
        );
        let mut st = lock(&self.inner);
        let fault = st.tick();
        if fault == Some(Fault::Before) {
            return Err(injected());
        }
        let id = st
            .names
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "rename source missing"))?;
        st.names.insert(to.to_path_buf(), id);
        st.log_dir(
            to,
            DirOp::Rename {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
                id,
            },
        );
        if fault.is_some() {
            return Err(injected());
        }
        Ok(())
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut st = lock(&self.inner);
        let fault = st.tick();
        if fault == Some(Fault::Before) {
            return Err(injected());
        }
        let in_dir = |p: &Path| p.parent() == Some(path);
        let durable: Vec<PathBuf> = st
            .durable_names
            .keys()
            .filter(|p| in_dir(p))
            .cloned()
            .collect();
        for p in durable {
            st.durable_names.remove(&p);
        }
        let visible: Vec<(PathBuf, u64)> = st
            .names
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, id)| (p.clone(), *id))
            .collect();
        st.durable_names.extend(visible);
        st.dir_log.remove(path);
        if fault.is_some() {
            return Err(injected());
        }
        Ok(())
    }
    fn list(&self, path: &Path) -> io::Result<Vec<String>> {
        let st = lock(&self.inner);
        Ok(st
            .names
            .keys()
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = lock(&self.inner);
        let fault = st.tick();
        if fault == Some(Fault::Before) {
            return Err(injected());
        }
        if st.names.remove(path).is_some() {
            st.log_dir(
                path,
                DirOp::Unlink {
                    path: path.to_path_buf(),
                },
            );
        }
        if fault.is_some() {
            return Err(injected());
        }
        Ok(())
    }
    fn exists(&self, path: &Path) -> bool {
        let st = lock(&self.inner);
        st.names.contains_key(path) || st.dirs.contains_key(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(fs: &MemFs, path: &str) -> Box<dyn FsFile> {
        fs.create_dir_all(Path::new(path).parent().unwrap())
            .unwrap();
        fs.create(Path::new(path)).unwrap()
    }

    fn contents(fs: &MemFs, path: &str) -> Vec<u8> {
        read_all(fs, Path::new(path)).unwrap()
    }

    #[test]
    fn synced_bytes_and_names_survive_every_power_cut() {
        for seed in 0..200 {
            let fs = MemFs::new();
            let f = file(&fs, "/d/a");
            f.append(b"committed").unwrap();
            f.sync_data().unwrap();
            fs.sync_dir(Path::new("/d")).unwrap();
            f.append(&[7; 3000]).unwrap();
            f.append(&[8; 3000]).unwrap();
            let g = file(&fs, "/d/b");
            g.append(b"unsynced name").unwrap();
            g.sync_data().unwrap();
            drop((f, g));
            fs.power_cut(seed);
            let a = contents(&fs, "/d/a");
            assert_eq!(&a[..9], b"committed", "seed {seed}");
            assert!(a.len() <= 6009, "seed {seed}");
        }
    }

    #[test]
    fn power_cuts_tear_reorder_and_fill_unsynced_writes() {
        // Over many seeds, the model produces each outcome the ledger must survive.
        let (mut torn_length, mut later_without_earlier, mut zeros, mut garbage) =
            (false, false, false, false);
        let (mut name_kept, mut name_lost) = (false, false);
        for seed in 0..500 {
            let fs = MemFs::new();
            let f = file(&fs, "/d/a");
            fs.sync_dir(Path::new("/d")).unwrap();
            f.append(&[1; 1024]).unwrap();
            f.append(&[2; 1024]).unwrap();
            drop(f);
            file(&fs, "/d/new");
            fs.power_cut(seed);
            let a = contents(&fs, "/d/a");
            torn_length |= !a.len().is_multiple_of(1024);
            if a.len() == 2048 {
                later_without_earlier |= a[0] != 1 && a[2047] == 2;
            }
            zeros |= a.contains(&0);
            garbage |= a.iter().any(|&b| b > 2);
            if fs.exists(Path::new("/d/new")) {
                name_kept = true;
            } else {
                name_lost = true;
            }
        }
        assert!(torn_length && later_without_earlier && zeros && garbage);
        assert!(name_kept && name_lost);
    }

    #[test]
    fn a_seed_always_gives_the_same_disk() {
        let run = |seed| {
            let fs = MemFs::new();
            let f = file(&fs, "/d/a");
            f.append(&[5; 5000]).unwrap();
            f.set_len(100).unwrap();
            f.append(&[6; 700]).unwrap();
            drop(f);
            fs.sync_dir(Path::new("/d")).unwrap();
            fs.power_cut(seed);
            contents(&fs, "/d/a")
        };
        for seed in 0..20 {
            assert_eq!(run(seed), run(seed));
        }
    }

    #[test]
    #[should_panic(expected = "committed bytes rewritten: /d/a offset 3 was 0x64")]
    fn rewriting_committed_bytes_fails_the_test() {
        let fs = MemFs::new();
        let f = file(&fs, "/d/a");
        f.append(b"abcdef").unwrap();
        f.sync_data().unwrap();
        f.set_len(2).unwrap();
        f.append(b"cX").unwrap(); // "c" is unchanged, "X" replaces the committed "d"
    }

    #[test]
    fn committed_bytes_may_be_truncated_and_written_again_unchanged() {
        let fs = MemFs::new();
        let f = file(&fs, "/d/a");
        f.append(b"abcdef").unwrap();
        f.sync_data().unwrap();
        f.set_len(2).unwrap();
        f.append(b"cdefgh").unwrap();
        f.sync_data().unwrap();
        // Bytes made durable by a sync that reported failure were never committed.
        fs.fail_at(fs.ops() + 1, Fault::After);
        f.append(b"ij").unwrap();
        assert!(f.sync_data().is_err());
        f.set_len(8).unwrap();
        f.append(b"IJ").unwrap();
        // A damaged byte may be repaired; a new file under the name is a new file.
        fs.corrupt(Path::new("/d/a"), 0);
        f.set_len(0).unwrap();
        f.append(b"abcdefghIJ").unwrap();
        let g = file(&fs, "/d/a.tmp");
        g.append(b"other").unwrap();
        g.sync_data().unwrap();
        fs.rename(Path::new("/d/a.tmp"), Path::new("/d/a")).unwrap();
        assert_eq!(contents(&fs, "/d/a"), b"other");
    }

    #[test]
    fn a_violation_on_another_thread_fails_the_next_call() {
        let fs = MemFs::new();
        let f: Arc<dyn FsFile> = Arc::from(file(&fs, "/d/a"));
        f.append(b"abc").unwrap();
        f.sync_data().unwrap();
        f.set_len(0).unwrap();
        let writer = {
            let f = f.clone();
            std::thread::spawn(move || f.append(b"xyz"))
        };
        assert!(writer.join().is_err(), "the writer thread panicked");
        let later = std::panic::catch_unwind(|| fs.ops());
        let msg = later.unwrap_err();
        let msg = msg.downcast_ref::<String>().unwrap();
        assert!(msg.contains("committed bytes rewritten"), "{msg}");
    }
}

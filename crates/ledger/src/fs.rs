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

use std::collections::{BTreeMap, HashMap};
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
/// Every file has durable contents and volatile contents; `crash` throws
/// away what was never synced (keeping a torn prefix of unsynced appends,
/// chosen by the caller), and directory entries that were never synced.
/// Mutating operations are numbered from 0 so that a test can fail the
/// k-th one with [`Fault::Before`] or [`Fault::After`].
#[derive(Clone, Default)]
pub struct MemFs {
    inner: Arc<Mutex<MemState>>,
}

#[derive(Default)]
struct MemState {
    /// Visible names → file ids (volatile view).
    names: BTreeMap<PathBuf, u64>,
    /// Names as they would survive a crash.
    durable_names: BTreeMap<PathBuf, u64>,
    dirs: BTreeMap<PathBuf, ()>,
    files: HashMap<u64, MemData>,
    next_id: u64,
    ops: u64,
    fail_at: Option<(u64, Fault)>,
}

#[derive(Default, Clone)]
struct MemData {
    current: Vec<u8>,
    durable: Vec<u8>,
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
}

fn injected() -> io::Error {
    io::Error::other("injected fault")
}

impl MemFs {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of mutating operations so far.
    pub fn ops(&self) -> u64 {
        self.inner.lock().unwrap().ops
    }

    /// Fails the mutating operation numbered `op` (counting from 0 since creation).
    pub fn fail_at(&self, op: u64, fault: Fault) {
        self.inner.lock().unwrap().fail_at = Some((op, fault));
    }

    /// Simulates a power cut: unsynced directory entries are lost, and each
    /// file keeps its durable contents plus `torn(unsynced_len)` bytes of the
    /// unsynced appends (when the volatile contents extend the durable ones).
    pub fn crash(&self, mut torn: impl FnMut(usize) -> usize) {
        let mut st = self.inner.lock().unwrap();
        st.names = st.durable_names.clone();
        st.fail_at = None;
        let live: Vec<u64> = st.names.values().copied().collect();
        st.files.retain(|id, _| live.contains(id));
        for data in st.files.values_mut() {
            let extends = data.current.len() >= data.durable.len()
                && data.current[..data.durable.len()] == data.durable[..];
            if extends {
                let extra = data.current.len() - data.durable.len();
                let keep = torn(extra).min(extra);
                data.current.truncate(data.durable.len() + keep);
            } else {
                data.current = data.durable.clone();
            }
            data.durable = data.current.clone();
        }
    }

    /// Flips one bit of a file, durably (for corruption tests).
    pub fn corrupt(&self, path: &Path, offset: usize) {
        let mut st = self.inner.lock().unwrap();
        let id = st.names[path];
        let data = st.files.get_mut(&id).unwrap();
        data.current[offset] ^= 0x01;
        data.durable = data.current.clone();
    }
}

struct MemFile {
    fs: Arc<Mutex<MemState>>,
    id: u64,
}

impl MemFile {
    fn with<R>(&self, f: impl FnOnce(&mut MemData) -> R) -> io::Result<R> {
        let mut st = self.fs.lock().unwrap();
        match st.files.get_mut(&self.id) {
            Some(data) => Ok(f(data)),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "file was removed")),
        }
    }
    fn mutate(&self, f: impl FnOnce(&mut MemData)) -> io::Result<()> {
        let mut st = self.fs.lock().unwrap();
        let fault = st.tick();
        if fault == Some(Fault::Before) {
            return Err(injected());
        }
        match st.files.get_mut(&self.id) {
            Some(data) => f(data),
            None => return Err(io::Error::new(io::ErrorKind::NotFound, "file was removed")),
        }
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
        self.mutate(|d| d.current.extend_from_slice(data))
    }
    fn len(&self) -> io::Result<u64> {
        self.with(|d| d.current.len() as u64)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.mutate(|d| d.current.resize(len as usize, 0))
    }
    fn sync_data(&self) -> io::Result<()> {
        self.mutate(|d| d.durable = d.current.clone())
    }
}

impl Fs for MemFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.inner.lock().unwrap();
        for anc in path.ancestors() {
            st.dirs.insert(anc.to_path_buf(), ());
        }
        Ok(())
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let st = self.inner.lock().unwrap();
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
        let mut st = self.inner.lock().unwrap();
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
        if fault.is_some() {
            return Err(injected());
        }
        Ok(Box::new(MemFile {
            fs: self.inner.clone(),
            id,
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.inner.lock().unwrap();
        let fault = st.tick();
        if fault == Some(Fault::Before) {
            return Err(injected());
        }
        let id = st
            .names
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "rename source missing"))?;
        st.names.insert(to.to_path_buf(), id);
        if fault.is_some() {
            return Err(injected());
        }
        Ok(())
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut st = self.inner.lock().unwrap();
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
        if fault.is_some() {
            return Err(injected());
        }
        Ok(())
    }
    fn list(&self, path: &Path) -> io::Result<Vec<String>> {
        let st = self.inner.lock().unwrap();
        Ok(st
            .names
            .keys()
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.inner.lock().unwrap();
        let fault = st.tick();
        if fault == Some(Fault::Before) {
            return Err(injected());
        }
        st.names.remove(path);
        if fault.is_some() {
            return Err(injected());
        }
        Ok(())
    }
    fn exists(&self, path: &Path) -> bool {
        let st = self.inner.lock().unwrap();
        st.names.contains_key(path) || st.dirs.contains_key(path)
    }
}

//! Hash tiles on disk: one flat file per tile level.
//!
//! `tiles/<L>.hashes` holds, in order, every hash at tree height `8 * L`
//! (level 0: the leaf hashes). A C2SP tile `L/N` of width `W` is therefore
//! the byte range `[N * 256 * 32, (N * 256 + W) * 32)` of that file, served
//! as is. The files are derived state: recovery re-creates whatever is past
//! the last checkpoint from the entries, and they are synced before a
//! checkpoint that covers them is written.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tlog::{Hash, HASH_SIZE, TILE_WIDTH};

use crate::fs::{read_exact_at, Fs, FsFile};

/// Highest tile level a `u64`-sized tree can have (256^8 = 2^64).
pub const TILE_LEVELS_MAX: usize = 8;

/// The tile level files of one ledger.
pub struct TileStore {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    files: RwLock<Vec<Arc<dyn FsFile>>>,
}

/// Number of hashes tile level `level` has in a tree of `size` leaves.
pub fn level_len(level: usize, size: u64) -> u64 {
    if level >= TILE_LEVELS_MAX {
        return 0;
    }
    size >> (8 * level)
}

impl TileStore {
    /// Opens the level files under `dir`; when `create`, missing ones are
    /// created (durably), otherwise a missing file is an error.
    pub fn open(fs: Arc<dyn Fs>, dir: &Path, create: bool) -> io::Result<TileStore> {
        if create {
            fs.create_dir_all(dir)?;
        }
        let mut files: Vec<Arc<dyn FsFile>> = Vec::with_capacity(TILE_LEVELS_MAX);
        let mut created = false;
        for level in 0..TILE_LEVELS_MAX {
            let path = dir.join(format!("{level}.hashes"));
            let file = if fs.exists(&path) || !create {
                fs.open(&path)?
            } else {
                created = true;
                fs.create(&path)?
            };
            files.push(Arc::from(file));
        }
        if created {
            fs.sync_dir(dir)?;
        }
        Ok(TileStore {
            fs,
            dir: dir.to_path_buf(),
            files: RwLock::new(files),
        })
    }

    fn file(&self, level: usize) -> Arc<dyn FsFile> {
        self.files.read().unwrap()[level].clone()
    }

    /// Number of hashes stored at a level.
    pub fn stored(&self, level: usize) -> io::Result<u64> {
        Ok(self.file(level).len()? / HASH_SIZE as u64)
    }

    /// Appends hashes (concatenated) to a level file; not durable until `sync`.
    pub fn append(&self, level: usize, hashes: &[u8]) -> io::Result<()> {
        debug_assert_eq!(hashes.len() % HASH_SIZE, 0);
        self.file(level).append(hashes)
    }

    /// Truncates a level file to `count` hashes.
    pub fn truncate(&self, level: usize, count: u64) -> io::Result<()> {
        self.file(level).set_len(count * HASH_SIZE as u64)
    }

    /// Makes every level file durable.
    pub fn sync(&self) -> io::Result<()> {
        for level in 0..TILE_LEVELS_MAX {
            self.file(level).sync_data()?;
        }
        Ok(())
    }

    /// Reads `count` hashes at tile level `level` starting at hash `first`.
    pub fn read(&self, level: usize, first: u64, count: u64) -> io::Result<Vec<Hash>> {
        let bytes = self.read_bytes(level, first, count)?;
        Ok(bytes
            .chunks_exact(HASH_SIZE)
            .map(|c| c.try_into().unwrap())
            .collect())
    }

    /// The raw bytes of `count` hashes at `level` starting at hash `first`.
    pub fn read_bytes(&self, level: usize, first: u64, count: u64) -> io::Result<Vec<u8>> {
        if level >= TILE_LEVELS_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no such tile level",
            ));
        }
        let mut buf = vec![0u8; (count as usize) * HASH_SIZE];
        read_exact_at(
            self.file(level).as_ref(),
            &mut buf,
            first * HASH_SIZE as u64,
        )?;
        Ok(buf)
    }

    /// The bytes of C2SP hash tile `level/index` of width `width`.
    pub fn tile(&self, level: usize, index: u64, width: u64) -> io::Result<Vec<u8>> {
        self.read_bytes(level, index * TILE_WIDTH, width)
    }

    /// Directory holding the level files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file system the store lives on.
    pub fn fs(&self) -> &Arc<dyn Fs> {
        &self.fs
    }
}

/// Reads hashes from a [`TileStore`], refusing anything past `size` leaves.
pub struct BoundedTiles<'a> {
    /// The store.
    pub store: &'a TileStore,
    /// Tree size the reads must stay within.
    pub size: u64,
}

impl tlog::TileReader for BoundedTiles<'_> {
    fn read_tile_hashes(
        &self,
        tile_level: u8,
        first: u64,
        count: u64,
    ) -> Result<Vec<Hash>, tlog::Error> {
        let level = tile_level as usize;
        if first + count > level_len(level, self.size) {
            return Err(tlog::Error::Storage(format!(
                "hashes {first}..{} of tile level {level} are past tree size {}",
                first + count,
                self.size
            )));
        }
        self.store
            .read(level, first, count)
            .map_err(|e| tlog::Error::Storage(format!("reading tile level {level}: {e}")))
    }
}

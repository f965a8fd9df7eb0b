//! Opening an existing ledger directory: creating an empty one, and recovery
//! after a crash (torn frames, missing tiles, a checkpoint ahead of or behind
//! the durable entries). The crash analysis of each step is in
//! `docs/storage.md` ("Recovery").

use std::path::Path;
use std::sync::Arc;

use tlog::{CompactRange, Signer, TILE_WIDTH};

use crate::fs::{write_durably, Fs, FsFile};
use crate::segment::{self, BundleIndex, SEGMENT_HEADER_BYTES};
use crate::store::Slot;
use crate::store::{
    format_path, format_text, list_segments, load_checkpoint, segments_dir, SignedCheckpoint, Store,
};
use crate::tiles::{level_len, BoundedTiles, TileStore, TILE_LEVELS_MAX};
use crate::{Config, OpenError, SEGMENT_ENTRIES};

use super::collect_tile_hash;

/// Creates an empty ledger directory, durably.
pub(super) fn create_layout(fs: &dyn Fs, dir: &Path) -> Result<(), OpenError> {
    let io = |what: &str| OpenError::io(format!("creating {what} in {}", dir.display()));
    fs.create_dir_all(&segments_dir(dir))
        .map_err(io("segments"))?;
    // Make the new directories themselves durable before anything in them counts.
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs.sync_dir(parent).map_err(io("the data directory"))?;
    }
    fs.sync_dir(dir).map_err(io("the segments directory"))?;
    // FORMAT is written last: a directory without it is an unfinished creation.
    write_durably(fs, &format_path(dir), format_text().as_bytes()).map_err(io("FORMAT"))?;
    Ok(())
}

pub(super) struct Recovered {
    pub(super) store: Store,
    pub(super) compact: CompactRange,
    pub(super) active: Option<Arc<dyn FsFile>>,
    pub(super) active_segment: u64,
    pub(super) checkpoint_size: u64,
    /// Entries a new checkpoint is signed over although the checkpoint file
    /// was missing (`Config::recover_missing_checkpoint`).
    pub(super) missing_checkpoint: Option<u64>,
}

/// Brings a ledger directory back to a consistent state. The crash analysis
/// behind each step is in `docs/storage.md` ("Recovery").
pub(super) fn recover(
    fs: Arc<dyn Fs>,
    dir: &Path,
    config: &Config,
    signer: &Signer,
) -> Result<Recovered, OpenError> {
    let segs = list_segments(fs.as_ref(), dir)?;
    let seg_dir = segments_dir(dir);

    // 1. The last signed checkpoint must verify with our key. Nothing is
    //    written before the stored data is known to cover it, so a refusal
    //    leaves the directory exactly as it was found.
    let cp = load_checkpoint(fs.as_ref(), dir)?;
    if let Some(cp) = &cp {
        let verifier =
            tlog::Verifier::parse(&signer.vkey()).map_err(|e| OpenError::Key(e.to_string()))?;
        let opened = tlog::open_checkpoint(&cp.note, &verifier).map_err(|e| {
            OpenError::Key(format!(
                "the stored checkpoint does not verify with this log's key ({e}); wrong key file?"
            ))
        })?;
        if opened.origin != config.origin {
            return Err(OpenError::Key(format!(
                "stored checkpoint is for origin {:?}, not {:?}",
                opened.origin, config.origin
            )));
        }
    }
    let checkpoint_size = cp.as_ref().map_or(0, |c| c.checkpoint.size);
    if checkpoint_size > 0 && segs.is_empty() {
        // Regression: with no segment at all the size check below never ran,
        // and the ledger signed a rollback to size 0.
        return Err(OpenError::Corrupt(format!(
            "the signed checkpoint covers {checkpoint_size} entries but {} holds no segment file: \
             acknowledged entries are missing; nothing was changed",
            seg_dir.display()
        )));
    }

    // 2. The last segment may end in a torn commit group (one whose fdatasync
    //    never finished, so it was never acknowledged).
    let mut active = None;
    let mut active_segment = 0;
    let mut index = BundleIndex::default();
    let mut size = 0;
    let mut missing_checkpoint = None;
    if let Some(&last) = segs.last() {
        let path = seg_dir.join(segment::segment_name(last));
        let file: Arc<dyn FsFile> = Arc::from(
            fs.open(&path)
                .map_err(OpenError::io(format!("opening {}", path.display())))?,
        );
        let scan = segment::scan_segment(file.as_ref(), last, true)
            .map_err(OpenError::io(format!("reading {}", path.display())))?;
        let file_len = file
            .len()
            .map_err(OpenError::io("reading segment length"))?;
        let count: u64 = scan.frames.iter().map(|f| u64::from(f.header.count)).sum();
        size = last * SEGMENT_ENTRIES + count;
        if cp.is_none() && size > 0 {
            // Regression (issue 18.11): a deleted checkpoint was silently
            // re-signed over whatever the segments held. A ledger writes its
            // first checkpoint when it is created, before any entry, so
            // entries without one mean it was removed.
            let path = crate::store::checkpoint_path(dir);
            if !config.recover_missing_checkpoint {
                return Err(OpenError::MissingCheckpoint {
                    path: path.display().to_string(),
                    size,
                });
            }
            tracing::warn!(
                file = %path.display(),
                entries = size,
                "the checkpoint is missing; recovering as configured \
                 (recover_missing_checkpoint): a new checkpoint will be signed over the stored entries"
            );
            missing_checkpoint = Some(size);
        }
        if checkpoint_size > size {
            return Err(OpenError::Corrupt(format!(
                "the signed checkpoint covers {checkpoint_size} entries but only {size} are stored \
                 intact ({}: {}): acknowledged entries are missing or damaged; nothing was changed",
                path.display(),
                scan.stopped.as_deref().unwrap_or("file ends early")
            )));
        }
        if scan.valid_len < SEGMENT_HEADER_BYTES && file_len > SEGMENT_HEADER_BYTES {
            return Err(OpenError::Corrupt(format!(
                "{} has a damaged header: {}",
                path.display(),
                scan.stopped.unwrap_or_default()
            )));
        } else if scan.valid_len < SEGMENT_HEADER_BYTES {
            // The segment's creation was torn: write its header again.
            tracing::warn!(file = %path.display(), "segment header torn by a crash; rewriting it");
            file.set_len(0)
                .and_then(|_| file.append(&segment::segment_header(last * SEGMENT_ENTRIES)))
                .map_err(OpenError::io(format!("repairing {}", path.display())))?;
        } else if scan.valid_len < file_len {
            tracing::warn!(
                file = %path.display(),
                cut_bytes = file_len - scan.valid_len,
                reason = scan.stopped.as_deref().unwrap_or(""),
                "cutting a torn tail left by a crash"
            );
            file.set_len(scan.valid_len)
                .map_err(OpenError::io(format!("truncating {}", path.display())))?;
        }
        // What we keep may only be in the page cache (a kill -9 keeps it
        // there): make it durable before anything signs over it.
        file.sync_data()
            .map_err(OpenError::io(format!("syncing {}", path.display())))?;
        index = BundleIndex::from_scan(&scan);
        active = Some(file);
        active_segment = last;
        if last > 0 {
            let prev = seg_dir.join(segment::segment_name(last - 1));
            fs.open(&prev)
                .and_then(|f| f.sync_data())
                .map_err(OpenError::io(format!("syncing {}", prev.display())))?;
        }
        // A prune interrupted before its rename leaves a `.seg.tmp` copy;
        // the segment it was made from is intact, so the copy goes.
        for name in fs
            .list(&seg_dir)
            .map_err(OpenError::io(format!("listing {}", seg_dir.display())))?
        {
            if name.ends_with(".seg.tmp") {
                tracing::warn!(file = %name, "removing a pruned copy left by an interrupted prune");
                fs.remove(&seg_dir.join(&name))
                    .map_err(OpenError::io(format!("removing {name}")))?;
            }
        }
        fs.sync_dir(&seg_dir)
            .map_err(OpenError::io("syncing the segments directory"))?;
    }

    let tiles = TileStore::open(fs.clone(), &dir.join("tiles"), true)
        .map_err(OpenError::io("opening tile files"))?;
    fs.sync_dir(dir)
        .map_err(OpenError::io(format!("syncing {}", dir.display())))?;
    let store = Store::new(fs.clone(), dir, tiles, active_segment, index, size);

    // 3. Tiles up to the checkpoint were synced before it was written; past it
    //    they may be torn. Keep the checkpointed prefix if its root matches,
    //    otherwise rebuild every tile from the entries.
    let mut keep = checkpoint_size;
    for level in 0..TILE_LEVELS_MAX {
        let stored = store
            .tiles
            .stored(level)
            .map_err(OpenError::io("reading tile file length"))?;
        if stored < level_len(level, keep) {
            tracing::warn!(
                level,
                "tile file shorter than the checkpoint; rebuilding tiles"
            );
            keep = 0;
        }
    }
    let mut compact = CompactRange::new();
    if keep > 0 {
        let reader = tlog::TileHashReader(BoundedTiles {
            store: &store.tiles,
            size: keep,
        });
        let nodes = tlog::subtree_nodes(keep);
        let hashes = tlog::HashReader::read_hashes(&reader, &nodes);
        match hashes.map(|h| CompactRange::from_parts(keep, h)) {
            Ok(Ok(c)) if Some(c.root()) == cp.as_ref().map(|c| c.checkpoint.root) => compact = c,
            _ => {
                tracing::warn!("tiles do not match the signed checkpoint; rebuilding tiles");
                keep = 0;
            }
        }
    }
    for level in 0..TILE_LEVELS_MAX {
        store
            .tiles
            .truncate(level, level_len(level, keep))
            .map_err(OpenError::io("truncating tile files"))?;
    }

    // 4. Re-hash the entries past what the tiles hold.
    let mut buffers: Vec<Vec<u8>> = vec![Vec::new(); TILE_LEVELS_MAX];
    let flush = |buffers: &mut Vec<Vec<u8>>| -> Result<(), OpenError> {
        for (level, buf) in buffers.iter_mut().enumerate() {
            if !buf.is_empty() {
                store
                    .tiles
                    .append(level, buf)
                    .map_err(OpenError::io("writing tile files"))?;
                buf.clear();
            }
        }
        Ok(())
    };
    while compact.size() < size {
        let at = compact.size();
        if at == checkpoint_size && checkpoint_size > 0 {
            check_root(&compact, cp.as_deref())?;
        }
        let bundle = at / TILE_WIDTH;
        let end = ((bundle + 1) * TILE_WIDTH).min(size);
        // Pruned entries carry their leaf hash in the segment.
        let slots = store
            .slots(bundle, end - bundle * TILE_WIDTH)
            .map_err(|e| OpenError::Corrupt(format!("reading entries at seq {at}: {e}")))?;
        // A checkpoint may end inside a bundle: stop there to compare roots.
        let stop = if at < checkpoint_size {
            end.min(checkpoint_size)
        } else {
            end
        };
        let skip = (at - bundle * TILE_WIDTH) as usize;
        for slot in &slots[skip..skip + (stop - at) as usize] {
            let leaf = match slot {
                Slot::Entry(e) => tlog::leaf_hash(e),
                Slot::Pruned(h) => *h,
            };
            compact.append(leaf, |node, hash| {
                collect_tile_hash(&mut buffers, node, hash)
            });
        }
        flush(&mut buffers)?;
    }
    if compact.size() == checkpoint_size && checkpoint_size > 0 {
        check_root(&compact, cp.as_deref())?;
    }
    store
        .tiles
        .sync()
        .map_err(OpenError::io("syncing tile files"))?;
    *store.checkpoint.write().unwrap() = cp;
    Ok(Recovered {
        store,
        compact,
        active,
        active_segment,
        checkpoint_size,
        missing_checkpoint,
    })
}

fn check_root(compact: &CompactRange, cp: Option<&SignedCheckpoint>) -> Result<(), OpenError> {
    let cp = cp.expect("checked by caller");
    if compact.root() != cp.checkpoint.root {
        return Err(OpenError::Corrupt(format!(
            "the stored entries do not reproduce the signed checkpoint at size {}: \
             some entry before it was changed",
            cp.checkpoint.size
        )));
    }
    Ok(())
}

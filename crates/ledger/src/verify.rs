//! The verifier: recomputes a whole log from its entries and checks it
//! against its tiles, its signed checkpoint and, optionally, a checkpoint
//! saved earlier. It reads through [`LogSource`], so the same code checks a
//! local data directory (`mlaudit verify --data-dir`) and any C2SP
//! tlog-tiles log over HTTP (`mlaudit verify --url`).

use std::time::{Duration, Instant};

use tlog::{CompactRange, Hash, Verifier, HASH_SIZE, TILE_WIDTH};

use crate::store::{ReadError, Slot, Store};

/// Where a verifier reads a log from. Errors are human-readable strings
/// naming what failed (file, URL).
pub trait LogSource {
    /// The latest signed checkpoint note.
    fn checkpoint(&self) -> Result<String, String>;
    /// Entry bundle `index` with its first `width` entries (C2SP bytes).
    fn bundle(&self, index: u64, width: u64) -> Result<Vec<u8>, String>;
    /// Hash tile `level/index` of width `width` (C2SP bytes).
    fn tile(&self, level: u8, index: u64, width: u64) -> Result<Vec<u8>, String>;
    /// The first `width` positions of bundle `index`: entries, or pruned
    /// entries with the leaf hash the store keeps for them (`None` when the
    /// source only knows the entry is gone, as over HTTP). The default reads
    /// [`LogSource::bundle`], for sources that never prune.
    fn slots(&self, index: u64, width: u64) -> Result<Vec<SourceSlot>, String> {
        let bytes = self.bundle(index, width)?;
        let entries = tlog::parse_bundle(&bytes)
            .map_err(|e| format!("entry bundle {index} is malformed: {e}"))?;
        Ok(entries
            .into_iter()
            .map(|e| SourceSlot::Entry(e.to_vec()))
            .collect())
    }
}

/// One position of a bundle as a [`LogSource`] gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSlot {
    /// The entry's bytes.
    Entry(Vec<u8>),
    /// Pruned by retention; the leaf hash the source keeps for it, if any.
    Pruned(Option<Hash>),
}

impl LogSource for Store {
    fn checkpoint(&self) -> Result<String, String> {
        Store::checkpoint(self)
            .map(|c| c.note.clone())
            .ok_or_else(|| format!("{} has no checkpoint", self.dir().display()))
    }
    fn bundle(&self, index: u64, width: u64) -> Result<Vec<u8>, String> {
        Store::bundle(self, index, width).map_err(|e| e.to_string())
    }
    fn tile(&self, level: u8, index: u64, width: u64) -> Result<Vec<u8>, String> {
        Store::tile(self, level, index, width).map_err(|e| e.to_string())
    }
    fn slots(&self, index: u64, width: u64) -> Result<Vec<SourceSlot>, String> {
        match Store::slots(self, index, width) {
            Ok(slots) => Ok(slots
                .into_iter()
                .map(|s| match s {
                    Slot::Entry(e) => SourceSlot::Entry(e),
                    Slot::Pruned(h) => SourceSlot::Pruned(Some(h)),
                })
                .collect()),
            Err(e @ ReadError::Pruned { .. }) => Err(format!("unexpected: {e}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Largest body of a kept-entries answer ([`encode_kept_entries`]): every position of a
/// full bundle kept, each of the largest entry size, plus its position byte and length.
pub const KEPT_ENTRIES_BYTES_MAX: usize = TILE_WIDTH as usize * (3 + tlog::ENTRY_BYTES_MAX);

/// The entries still stored in a bundle, as mlaudit serves them at `/log/kept/<N>[.p/<W>]`
/// (`docs/api.md` section 7): for each kept entry in seq order, its position in the bundle
/// (one byte, 0 to 255), then the entry as in a C2SP entry bundle (big-endian u16 length,
/// the bytes). Pruned positions are absent; their leaf hashes are in hash tile 0/N. This
/// is what lets a remote verifier re-hash the kept entries of a bundle that answers 410
/// as a whole.
pub fn encode_kept_entries(slots: &[Slot]) -> Vec<u8> {
    assert!(
        slots.len() <= TILE_WIDTH as usize,
        "bad math in encode_kept_entries: {} slots",
        slots.len()
    );
    let mut out = Vec::new();
    for (position, slot) in slots.iter().enumerate() {
        if let Slot::Entry(e) = slot {
            let len = u16::try_from(e.len()).expect("a stored entry fits a C2SP bundle");
            out.push(position as u8);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(e);
        }
    }
    out
}

/// Parses a kept-entries answer ([`encode_kept_entries`]) for a bundle of `width`
/// positions: every position absent from it is [`SourceSlot::Pruned`] with no kept hash.
/// Positions must be increasing and below `width`, and the body must end on a record.
pub fn parse_kept_entries(bytes: &[u8], width: u64) -> Result<Vec<SourceSlot>, String> {
    if width == 0 || width > TILE_WIDTH {
        return Err(format!(
            "a bundle has 1 to {TILE_WIDTH} entries, not {width}"
        ));
    }
    let mut out = vec![SourceSlot::Pruned(None); width as usize];
    let mut rest = bytes;
    let mut next_position = 0u64;
    while !rest.is_empty() {
        let [position, hi, lo, tail @ ..] = rest else {
            return Err("a kept entry is cut short in its header".into());
        };
        let position = u64::from(*position);
        if position < next_position || position >= width {
            return Err(format!(
                "kept entry position {position} is out of order or past the width {width}"
            ));
        }
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if tail.len() < len {
            return Err(format!("kept entry at position {position} is cut short"));
        }
        out[position as usize] = SourceSlot::Entry(tail[..len].to_vec());
        rest = &tail[len..];
        next_position = position + 1;
    }
    Ok(out)
}

/// A log that verified.
#[derive(Debug, Clone)]
pub struct Report {
    /// Size of the verified checkpoint.
    pub size: u64,
    /// Its root hash.
    pub root: Hash,
    /// Time spent.
    pub elapsed: Duration,
    /// Ranges `[first, end)` of seqs whose entries were pruned by retention,
    /// in order and merged. Their leaf hashes came from the log's tiles (and
    /// matched the hash kept in the segment, for a local directory); the root
    /// was recomputed over them, so the rest of the log is fully verified.
    pub pruned: Vec<(u64, u64)>,
}

impl Report {
    /// Number of pruned entries.
    pub fn pruned_entries(&self) -> u64 {
        self.pruned.iter().map(|(a, b)| b - a).sum()
    }
}

impl Report {
    /// Entries verified per second.
    pub fn entries_per_sec(&self) -> f64 {
        self.size as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// What is wrong with a log.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{message}", .seq.map(|s| format!("first bad seq {s}: ")).unwrap_or_default())]
pub struct VerifyError {
    /// The first entry known to be bad, when it can be named.
    pub seq: Option<u64>,
    /// What is wrong, naming the file or URL involved.
    pub message: String,
}

fn fail(seq: Option<u64>, message: impl Into<String>) -> VerifyError {
    VerifyError {
        seq,
        message: message.into(),
    }
}

/// Verifies a log: the checkpoint signature, every entry against the root it
/// signs, every hash tile against the entries, and (with `saved`) that the
/// log still contains the history a checkpoint saved earlier committed to.
/// `progress(done, total)` is called after each bundle.
pub fn verify_log(
    src: &dyn LogSource,
    verifier: &Verifier,
    saved: Option<&str>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Report, VerifyError> {
    let started = Instant::now();
    let note = src.checkpoint().map_err(|e| fail(None, e))?;
    let cp = tlog::open_checkpoint(&note, verifier).map_err(|e| {
        fail(
            None,
            format!(
                "the checkpoint does not verify with key {} ({e}): signed by another key, or altered",
                verifier.name()
            ),
        )
    })?;
    let saved = match saved {
        None => None,
        Some(text) => {
            let old = tlog::open_checkpoint(text, verifier)
                .map_err(|e| fail(None, format!("the saved checkpoint does not verify: {e}")))?;
            if old.size > cp.size {
                return Err(fail(
                    Some(cp.size),
                    format!(
                        "the log was truncated: a saved checkpoint covers {} entries, the log now has {}",
                        old.size, cp.size
                    ),
                ));
            }
            Some(old)
        }
    };

    let mut compact = CompactRange::new();
    // Hashes at tile levels >= 1 computed from the entries, waiting to be
    // compared with their tile once it is complete (or at the end).
    let mut pending: Vec<Vec<u8>> = vec![Vec::new(); 8];
    let mut pending_first: Vec<u64> = vec![0; 8];
    let mut first_tile_mismatch: Option<(u64, String)> = None;
    let bundles = cp.size.div_ceil(TILE_WIDTH);
    let mut pruned: Vec<(u64, u64)> = Vec::new();

    for b in 0..bundles {
        let first_seq = b * TILE_WIDTH;
        let width = (cp.size - first_seq).min(TILE_WIDTH);
        let slots = src
            .slots(b, width)
            .map_err(|e| fail(Some(first_seq), format!("entry bundle {b}: {e}")))?;
        if slots.len() as u64 != width {
            // Name the first entry that no longer matches its hash in the
            // tile (a deleted entry shifts the rest), else the first missing one.
            let mut bad = first_seq + (slots.len() as u64).min(width);
            if let Ok(tile) = src.tile(0, b, width) {
                let leaves: Vec<u8> = slots
                    .iter()
                    .map_while(|s| match s {
                        SourceSlot::Entry(e) => Some(tlog::leaf_hash(e)),
                        SourceSlot::Pruned(h) => *h,
                    })
                    .flatten()
                    .collect();
                let n = leaves.len().min(tile.len());
                let i = first_difference(&tile[..n], &leaves[..n]);
                bad = bad.min(first_seq + i);
            }
            return Err(fail(
                Some(bad),
                format!(
                    "entry bundle {b} holds {} entries, expected {width}",
                    slots.len()
                ),
            ));
        }
        // Pruned entries have no bytes: their leaf hash comes from tile 0/b.
        let leaf_tile = if slots.iter().any(|s| matches!(s, SourceSlot::Pruned(_))) {
            Some(
                src.tile(0, b, width)
                    .map_err(|e| fail(Some(first_seq), format!("hash tile 0/{b}: {e}")))?,
            )
        } else {
            None
        };
        let mut leaves = Vec::with_capacity(width as usize * HASH_SIZE);
        for (i, slot) in slots.iter().enumerate() {
            let seq = first_seq + i as u64;
            let leaf = match slot {
                SourceSlot::Entry(entry) => tlog::leaf_hash(entry),
                SourceSlot::Pruned(kept) => {
                    let tile = leaf_tile.as_ref().expect("read above");
                    let at = i * HASH_SIZE;
                    let h: Hash = tile
                        .get(at..at + HASH_SIZE)
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| fail(Some(seq), format!("hash tile 0/{b} is short")))?;
                    if kept.is_some_and(|k| k != h) {
                        return Err(fail(
                            Some(seq),
                            "this entry was pruned, and the leaf hash kept in its segment differs \
                             from the tiles",
                        ));
                    }
                    match pruned.last_mut() {
                        Some((_, end)) if *end == seq => *end += 1,
                        _ => pruned.push((seq, seq + 1)),
                    }
                    h
                }
            };
            leaves.extend_from_slice(&leaf);
            compact.append(leaf, |node, hash| {
                if node.level > 0 && node.level % 8 == 0 && node.level / 8 < 8 {
                    let level = (node.level / 8) as usize;
                    if pending[level].is_empty() {
                        pending_first[level] = node.index;
                    }
                    pending[level].extend_from_slice(hash);
                }
            });
            if let Some(old) = &saved {
                if compact.size() == old.size && compact.root() != old.root {
                    return Err(fail(
                        None,
                        format!(
                            "history was rewritten: the first {} entries no longer match the saved checkpoint",
                            old.size
                        ),
                    ));
                }
            }
        }
        let tile = src
            .tile(0, b, width)
            .map_err(|e| fail(Some(first_seq), format!("hash tile 0/{b}: {e}")))?;
        if tile != leaves && first_tile_mismatch.is_none() {
            let i = first_difference(&tile, &leaves);
            first_tile_mismatch = Some((
                first_seq + i,
                format!(
                    "the hash of entry {} in tile 0/{b} differs from the entry",
                    first_seq + i
                ),
            ));
        }
        for level in 1..8u8 {
            let buf = &mut pending[level as usize];
            if buf.len() == TILE_WIDTH as usize * HASH_SIZE {
                let index = pending_first[level as usize] / TILE_WIDTH;
                check_tile(src, level, index, buf, &mut first_tile_mismatch)?;
                buf.clear();
            }
        }
        progress(first_seq + width, cp.size);
    }
    for level in 1..8u8 {
        let buf = &pending[level as usize];
        if !buf.is_empty() {
            let index = pending_first[level as usize] / TILE_WIDTH;
            check_tile(src, level, index, buf, &mut first_tile_mismatch)?;
        }
    }
    if let Some(old) = &saved {
        if old.size == 0 && old.root != tlog::EMPTY_ROOT {
            return Err(fail(
                None,
                "the saved checkpoint of size 0 has a wrong root",
            ));
        }
    }
    if compact.root() != cp.root {
        return Err(match first_tile_mismatch {
            Some((seq, _)) => fail(
                Some(seq),
                "this entry was changed: its hash differs from the tiles and the tree no longer \
                 matches the signed checkpoint",
            ),
            None => fail(
                None,
                format!(
                    "the entries do not reproduce the signed root of size {} (entries and tiles were both rewritten)",
                    cp.size
                ),
            ),
        });
    }
    if let Some((seq, what)) = first_tile_mismatch {
        return Err(fail(
            None,
            format!("a hash tile is damaged (entries are intact): {what} (seq {seq})"),
        ));
    }
    Ok(Report {
        size: cp.size,
        root: cp.root,
        elapsed: started.elapsed(),
        pruned,
    })
}

fn check_tile(
    src: &dyn LogSource,
    level: u8,
    index: u64,
    computed: &[u8],
    first_mismatch: &mut Option<(u64, String)>,
) -> Result<(), VerifyError> {
    let width = (computed.len() / HASH_SIZE) as u64;
    let tile = src
        .tile(level, index, width)
        .map_err(|e| fail(None, format!("hash tile {level}/{index}: {e}")))?;
    if tile != computed && first_mismatch.is_none() {
        let i = first_difference(&tile, computed);
        // Hash i of tile level L covers entries from ((index*256 + i) << 8L).
        let seq = (index * TILE_WIDTH + i) << (8 * u32::from(level));
        *first_mismatch = Some((
            seq,
            format!("hash {i} of tile {level}/{index} differs from the entries"),
        ));
    }
    Ok(())
}

/// Index of the first hash that differs between two concatenations of hashes.
fn first_difference(a: &[u8], b: &[u8]) -> u64 {
    let n = a
        .chunks(HASH_SIZE)
        .zip(b.chunks(HASH_SIZE))
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()) / HASH_SIZE);
    n as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_entries_round_trip_and_malformed_answers_are_refused() {
        let slots = vec![
            Slot::Pruned([1; HASH_SIZE]),
            Slot::Entry(b"one".to_vec()),
            Slot::Pruned([2; HASH_SIZE]),
            Slot::Entry(Vec::new()),
        ];
        let bytes = encode_kept_entries(&slots);
        assert_eq!(bytes, b"\x01\x00\x03one\x03\x00\x00");
        assert_eq!(
            parse_kept_entries(&bytes, 4).unwrap(),
            vec![
                SourceSlot::Pruned(None),
                SourceSlot::Entry(b"one".to_vec()),
                SourceSlot::Pruned(None),
                SourceSlot::Entry(Vec::new()),
            ]
        );
        assert_eq!(
            parse_kept_entries(&[], 2).unwrap(),
            vec![SourceSlot::Pruned(None); 2]
        );
        for (bad, width) in [
            (&b"\x01\x00\x03on"[..], 4),           // cut short
            (&b"\x01\x00"[..], 4),                 // header cut short
            (&b"\x04\x00\x00"[..], 4),             // past the width
            (&b"\x02\x00\x00\x01\x00\x00"[..], 4), // out of order
            (&b"\x01\x00\x00\x01\x00\x00"[..], 4), // repeated
        ] {
            assert!(parse_kept_entries(bad, width).is_err(), "{bad:?}");
        }
        assert!(parse_kept_entries(&[], 0).is_err());
        assert!(parse_kept_entries(&[], 257).is_err());
    }
}

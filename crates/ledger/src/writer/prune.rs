//! Pruning (retention): removing the payloads of chosen entries from disk
//! while their leaf hashes stay, so the tree, every checkpoint ever signed and
//! the proofs of kept entries still verify.
//!
//! A segment is rewritten into `<name>.seg.tmp` with each pruned run of
//! entries replaced by a pruned frame (`FLAG_PRUNED`, payload = the leaf
//! hashes), synced, read back and checked against the tiles, then renamed over
//! the segment and the directory synced. Byte layout, syscall sequence and the
//! crash analysis of every step: `docs/storage.md` section 10.

use std::sync::Arc;

use tlog::Hash;

use super::{PruneReport, Writer};
use crate::fs::{read_exact_at, FsFile};
use crate::segment::{self, BundleIndex, SEGMENT_HEADER_BYTES};
use crate::store::segments_dir;
use crate::{PruneError, StorageError, SEGMENT_ENTRIES};

/// A failure that leaves the ledger as it was vs one whose outcome is unknown.
enum Outcome {
    Unchanged(PruneError),
    Poison(StorageError),
}

impl Writer {
    /// Prunes `seqs` (any order, duplicates allowed), segment by segment.
    pub(super) fn prune(&mut self, mut seqs: Vec<u64>) -> Result<PruneReport, PruneError> {
        if let Some(why) = self.is_poisoned() {
            return Err(PruneError::Poisoned(why));
        }
        seqs.sort_unstable();
        seqs.dedup();
        let size = self.compact.size();
        if let Some(&last) = seqs.last() {
            if last >= size {
                return Err(PruneError::PastSize { seq: last, size });
            }
        }
        // Only entries under the latest checkpoint are pruned: its tiles are
        // synced, so the leaf hashes that stand in for the payloads are durable.
        if size > self.last_checkpoint_size {
            if let Err(why) = self.publish_checkpoint() {
                self.poison(why.clone());
                return Err(PruneError::Poisoned(why));
            }
        }
        let mut report = PruneReport::default();
        let mut rest = &seqs[..];
        while let Some(&first) = rest.first() {
            let seg = first / SEGMENT_ENTRIES;
            let n = rest.partition_point(|&s| s / SEGMENT_ENTRIES == seg);
            match self.prune_segment(seg, &rest[..n]) {
                Ok((pruned, already)) => {
                    report.pruned += pruned;
                    report.already_pruned += already;
                    report.segments_rewritten += u64::from(pruned > 0);
                }
                Err(Outcome::Unchanged(e)) => return Err(e),
                Err(Outcome::Poison(why)) => {
                    self.poison(why.clone());
                    return Err(PruneError::Poisoned(why));
                }
            }
            rest = &rest[n..];
        }
        Ok(report)
    }

    /// Rewrites segment `seg` without the payloads of `targets` (sorted, all in
    /// `seg`, all committed). Returns (newly pruned, already pruned).
    fn prune_segment(&mut self, seg: u64, targets: &[u64]) -> Result<(u64, u64), Outcome> {
        let fs = self.store.fs.clone();
        let seg_dir = segments_dir(&self.store.dir);
        let path = seg_dir.join(segment::segment_name(seg));
        let tmp = seg_dir.join(format!("{}.tmp", segment::segment_name(seg)));
        let failed =
            |what: &str, e: String| Outcome::Unchanged(PruneError::Failed(format!("{what}: {e}")));
        let corrupt = |e: String| Outcome::Unchanged(PruneError::Corrupt(e));
        let seg_first = seg * SEGMENT_ENTRIES;
        let seg_count = (self.compact.size() - seg_first).min(SEGMENT_ENTRIES);

        // 1. Read the segment (payloads checked) and the leaf hashes the tiles hold.
        let old = fs
            .open(&path)
            .map_err(|e| failed(&format!("opening {}", path.display()), e.to_string()))?;
        let scan = segment::scan_segment(old.as_ref(), seg, true)
            .map_err(|e| failed(&format!("reading {}", path.display()), e.to_string()))?;
        let scanned: u64 = scan.frames.iter().map(|f| u64::from(f.header.count)).sum();
        if scanned != seg_count {
            return Err(corrupt(format!(
                "{} holds {scanned} intact entries, {seg_count} are committed: {}",
                path.display(),
                scan.stopped.unwrap_or_default()
            )));
        }
        let leaves = self
            .store
            .tiles
            .read(0, seg_first, seg_count)
            .map_err(|e| failed("reading leaf hashes", e.to_string()))?;
        let leaf = |s: u64| leaves[(s - seg_first) as usize];

        // 2. Lay out the new segment in memory.
        let mut out = Vec::with_capacity(16 << 20);
        out.extend_from_slice(&segment::segment_header(seg_first));
        let mut index = BundleIndex::default();
        let mut last_frame_at = 0;
        let (mut pruned, mut already) = (0u64, 0u64);
        let mut t = targets.iter().copied().peekable();
        let mut stored = Vec::new();
        let mut raw = Vec::new();
        for f in &scan.frames {
            let h = f.header;
            let end = h.first_seq + u64::from(h.count);
            let hit: Vec<u64> = std::iter::from_fn(|| t.next_if(|&s| s < end)).collect();
            stored.resize(h.stored_len as usize, 0);
            read_exact_at(
                old.as_ref(),
                &mut stored,
                f.offset + segment::FRAME_HEADER_BYTES as u64,
            )
            .map_err(|e| failed("reading a frame", e.to_string()))?;
            let mut place = |out: &mut Vec<u8>, first: u64, bytes: &[u8]| {
                index.push_frame(out.len() as u64, first);
                last_frame_at = out.len();
                out.extend_from_slice(bytes);
            };
            if hit.is_empty() || h.is_pruned() {
                already += hit.len() as u64 * u64::from(h.is_pruned());
                let mut frame = h.encode().to_vec();
                frame.extend_from_slice(&stored);
                place(&mut out, h.first_seq, &frame);
                continue;
            }
            raw.clear();
            segment::decode_payload(&h, &stored, &mut raw).map_err(corrupt)?;
            let entries = tlog::parse_bundle(&raw).map_err(|e| corrupt(e.to_string()))?;
            // Before the only copy of an entry goes, it must be the one the tree holds.
            for (i, e) in entries.iter().enumerate() {
                let s = h.first_seq + i as u64;
                if tlog::leaf_hash(e) != leaf(s) {
                    return Err(corrupt(format!(
                        "entry {s} does not match its leaf hash in the tiles (run mlaudit verify)"
                    )));
                }
            }
            // Split the frame into runs of kept and of pruned entries.
            let mut i = 0usize;
            let mut hit = hit.into_iter().peekable();
            while i < entries.len() {
                let s = h.first_seq + i as u64;
                let prune_run = hit.peek() == Some(&s);
                let mut j = i;
                while j < entries.len()
                    && (hit.peek() == Some(&(h.first_seq + j as u64))) == prune_run
                {
                    if prune_run {
                        hit.next();
                    }
                    j += 1;
                }
                let mut frame = Vec::new();
                if prune_run {
                    let run: Vec<Hash> = (i..j).map(|k| leaf(h.first_seq + k as u64)).collect();
                    segment::encode_pruned_frame(s, &run, &mut frame);
                    pruned += (j - i) as u64;
                } else {
                    let mut run_raw = Vec::new();
                    for e in &entries[i..j] {
                        run_raw.extend_from_slice(&(e.len() as u16).to_be_bytes());
                        run_raw.extend_from_slice(e);
                    }
                    segment::encode_frame(
                        &mut self.compressor,
                        s,
                        (j - i) as u32,
                        &run_raw,
                        &mut frame,
                    )
                    .expect("encoding into memory cannot fail");
                }
                place(&mut out, s, &frame);
                i = j;
            }
        }
        if pruned == 0 {
            return Ok((0, already));
        }
        // The rewritten segment is one finished commit group.
        segment::set_group_end(
            &mut out[last_frame_at..last_frame_at + segment::FRAME_HEADER_BYTES],
        );
        index.end = out.len() as u64;

        // 3. Write the copy and make it durable. A failure here leaves the
        //    segment untouched; the copy is removed (or by the next recovery).
        let write_copy = || -> std::io::Result<Box<dyn FsFile>> {
            if fs.exists(&tmp) {
                fs.remove(&tmp)?;
            }
            let file = fs.create(&tmp)?;
            file.append(&out)?;
            file.sync_data()?;
            Ok(file)
        };
        let copy = match write_copy() {
            Ok(f) => f,
            Err(e) => {
                let _ = fs.remove(&tmp);
                return Err(failed(&format!("writing {}", tmp.display()), e.to_string()));
            }
        };

        // 4. Read the copy back: it must hold every position of the segment,
        //    and every leaf hash (of kept entries, and in pruned frames) must
        //    equal the tiles'.
        let check = || -> Result<(), String> {
            let len = copy.len().map_err(|e| e.to_string())?;
            let mut raw = Vec::new();
            let mut gone = Vec::new();
            let n = segment::read_frames(
                copy.as_ref(),
                SEGMENT_HEADER_BYTES,
                len,
                seg_first,
                &mut raw,
                &mut gone,
            )?;
            if n != seg_count {
                return Err(format!("the copy holds {n} entries, not {seg_count}"));
            }
            let entries = split_framed(&raw)?;
            let mut kept = entries.iter();
            let mut gone = gone.into_iter().peekable();
            for s in seg_first..seg_first + seg_count {
                let h = match gone.next_if(|(g, _)| *g == s) {
                    Some((_, h)) => h,
                    None => tlog::leaf_hash(kept.next().ok_or("the copy lacks entries")?),
                };
                if h != leaf(s) {
                    return Err(format!(
                        "entry {s} of the copy does not match its leaf hash"
                    ));
                }
            }
            Ok(())
        };
        if let Err(e) = check() {
            drop(copy);
            let _ = fs.remove(&tmp);
            return Err(corrupt(format!(
                "the pruned copy of {} is wrong: {e}",
                path.display()
            )));
        }
        drop(copy);

        // 5. Replace the segment. From the rename on, the outcome of a failure
        //    is unknown (old or new name may be durable), so it poisons; both
        //    versions hold the same leaf hashes, so recovery accepts either.
        {
            let _gate = self.store.rewrite.write().unwrap();
            fs.rename(&tmp, &path)
                .map_err(|e| Outcome::Poison(StorageError::new("renaming a pruned segment", e)))?;
            if seg == self.active_segment && self.active.is_some() {
                let file: Arc<dyn FsFile> = fs.open(&path).map(Arc::from).map_err(|e| {
                    Outcome::Poison(StorageError::new("reopening a pruned segment", e))
                })?;
                self.active = Some(file);
                self.store.state.write().unwrap().active = index;
            } else {
                self.store.forget_sealed_index(seg);
            }
        }
        fs.sync_dir(&seg_dir).map_err(|e| {
            Outcome::Poison(StorageError::new("fsync of the segments directory", e))
        })?;
        tracing::info!(segment = seg, pruned, "pruned entry payloads");
        Ok((pruned, already))
    }
}

/// Splits bundle-framed bytes (`u16` BE length, bytes; any number of them).
fn split_framed(raw: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        let len = raw
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
            .ok_or("torn entry length")?;
        out.push(raw.get(at + 2..at + 2 + len).ok_or("torn entry")?);
        at += 2 + len;
    }
    Ok(out)
}

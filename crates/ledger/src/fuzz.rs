//! Bodies of the fuzz targets over the ledger's on-disk parsers, as plain functions:
//! `fuzz/` runs them under libFuzzer (`cargo +nightly fuzz run segment`), and
//! `tests/fuzz_segment.rs` runs them on stable over a corpus of segments the writer made
//! and a few thousand mutated ones. Each takes arbitrary bytes and panics only on a bug.

use std::path::Path;

use tlog::TILE_WIDTH;

use crate::fs::{Fs, MemFs};
use crate::segment::{
    read_frames, read_wanted, scan_segment, segment_header, BundleIndex, Scan, FLAG_GROUP_END,
    SEGMENT_HEADER_BYTES,
};
use crate::SEGMENT_ENTRIES;

/// Segment files as recovery and readers see them: the first byte of `data` chooses the
/// segment number (bit 1: segment 1, else 0) and whether the right 16-byte header is
/// put before the rest (bit 0), which is the file's contents.
///
/// Properties: no panic; both scans (headers only, and with payload checks) keep
/// contiguous frames from the segment's first seq, each inside one bundle, up to a frame
/// flagged as the end of a commit group, and `valid_len` just past it; a scan says why it
/// stopped exactly when it keeps less than the file; the payload-checked scan keeps a
/// prefix of what the header scan keeps; and every bundle and seq it keeps reads back
/// through the index as the store reads them (`read_frames`, `read_wanted`).
pub fn segment(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let n = u64::from(control >> 1 & 1);
    let mut contents = Vec::with_capacity(rest.len() + 16);
    if control & 1 == 1 {
        contents.extend_from_slice(&segment_header(n * SEGMENT_ENTRIES));
    }
    contents.extend_from_slice(rest);

    let fs = MemFs::new();
    let path = Path::new("/s.seg");
    let file = fs.create(path).expect("a new file");
    file.append(&contents).expect("in memory");
    let len = contents.len() as u64;

    let headers = scan_segment(file.as_ref(), n, false).expect("in memory");
    let checked = scan_segment(file.as_ref(), n, true).expect("in memory");
    check_scan(&headers, n, len);
    check_scan(&checked, n, len);
    assert!(
        checked.frames.len() <= headers.frames.len()
            && checked
                .frames
                .iter()
                .zip(&headers.frames)
                .all(|(a, b)| a.offset == b.offset && a.header == b.header),
        "the payload-checked scan keeps a prefix of the header scan"
    );

    // Everything the checked scan keeps reads back as the store reads it.
    let index = BundleIndex::from_scan(&checked);
    let first = n * SEGMENT_ENTRIES;
    let kept: u64 = checked
        .frames
        .iter()
        .map(|f| u64::from(f.header.count))
        .sum();
    for bundle in 0..kept.div_ceil(TILE_WIDTH) {
        let (start, end) = index.range(bundle as usize).expect("a kept bundle");
        let mut raw = Vec::new();
        let mut pruned = Vec::new();
        let seq = first + bundle * TILE_WIDTH;
        let count = read_frames(file.as_ref(), start, end, seq, &mut raw, &mut pruned)
            .unwrap_or_else(|e| panic!("bundle {bundle} was scanned but does not read: {e}"));
        let want = (kept - bundle * TILE_WIDTH).min(TILE_WIDTH);
        assert_eq!(count, want, "entries of bundle {bundle}");
        let entries = tlog::parse_bundle(&raw).expect("decoded payloads are bundle framing");
        assert_eq!(entries.len() + pruned.len(), want as usize);
    }
    for seq in (first..first + kept).step_by(7) {
        let at = index.frame_of(seq).expect("a kept seq has a frame");
        let slots = read_wanted(file.as_ref(), at.start, at.end, at.first_seq, &[seq])
            .unwrap_or_else(|e| panic!("seq {seq} was scanned but does not read: {e}"));
        assert_eq!(slots.len(), 1, "one slot for seq {seq}");
    }
}

fn check_scan(scan: &Scan, n: u64, len: u64) {
    assert!(scan.valid_len <= len, "valid_len past the end");
    assert_eq!(
        scan.stopped.is_some(),
        scan.valid_len < len,
        "a scan says why exactly when it keeps less than the file ({:?}, {} of {len})",
        scan.stopped,
        scan.valid_len
    );
    let mut offset = SEGMENT_HEADER_BYTES;
    let mut seq = n * SEGMENT_ENTRIES;
    for f in &scan.frames {
        let h = &f.header;
        assert_eq!(f.offset, offset, "frames are back to back");
        assert_eq!(h.first_seq, seq, "frames are contiguous");
        assert!((1..=TILE_WIDTH as u32).contains(&h.count));
        let last = h.first_seq + u64::from(h.count) - 1;
        assert_eq!(
            h.first_seq / TILE_WIDTH,
            last / TILE_WIDTH,
            "a frame is in one bundle"
        );
        assert!(
            last < (n + 1) * SEGMENT_ENTRIES,
            "a frame is in its segment"
        );
        offset += h.disk_len();
        seq += u64::from(h.count);
    }
    match scan.frames.last() {
        Some(f) => {
            assert!(
                f.header.flags & FLAG_GROUP_END != 0,
                "kept up to a group end"
            );
            assert_eq!(scan.valid_len, offset);
        }
        None => assert!(scan.valid_len == 0 || scan.valid_len == SEGMENT_HEADER_BYTES),
    }
}

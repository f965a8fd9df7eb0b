//! Segment files: the durable home of entries.
//!
//! A segment holds the entries `[n * SEGMENT_ENTRIES, (n + 1) * SEGMENT_ENTRIES)`
//! as a file header followed by frames. A frame holds consecutive entries of
//! one entry bundle (never two), encoded exactly as the C2SP entry bundle
//! (`u16` big-endian length, then the bytes), optionally zstd-compressed.
//! The byte layout is in `docs/storage.md`; keep the two in step.

use std::io;

use crate::fs::{read_exact_at, FsFile};
use crate::{SEGMENT_BUNDLES, SEGMENT_ENTRIES};
use tlog::{Hash, HASH_SIZE, TILE_WIDTH};

/// Magic and format version at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"MLASEG\x00\x01";
/// Segment header: magic (8) + first seq (u64 LE).
pub const SEGMENT_HEADER_BYTES: u64 = 16;
/// Magic at the start of every frame.
pub const FRAME_MAGIC: [u8; 4] = *b"MLAF";
/// Frame header size in bytes.
pub const FRAME_HEADER_BYTES: usize = 36;
/// Largest raw (uncompressed) frame payload: a full bundle of maximal entries.
pub const FRAME_RAW_BYTES_MAX: usize = TILE_WIDTH as usize * (2 + tlog::ENTRY_BYTES_MAX);

/// Frame flag: this frame ends a commit group (or the part of one that
/// fits in its segment). Recovery keeps frames only up to the last such
/// frame, so a batch torn by a crash disappears whole.
pub const FLAG_GROUP_END: u8 = 1;

/// Frame flag: the frame's entries were pruned (retention). Its payload is not
/// bundle-framed entries but their `count` leaf hashes, 32 bytes each, stored
/// raw (codec 0), so readers know the entries are gone rather than damaged and
/// recovery can rebuild tiles without them. Layout and crash analysis:
/// `docs/storage.md` section 10.
pub const FLAG_PRUNED: u8 = 2;

const _: () = assert!(SEGMENT_MAGIC[7] as u32 == crate::FORMAT_VERSION);

/// Payload stored as is.
pub const CODEC_NONE: u8 = 0;
/// Payload compressed with zstd.
pub const CODEC_ZSTD: u8 = 1;

/// The decoded header of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// `CODEC_NONE` or `CODEC_ZSTD`.
    pub codec: u8,
    /// `FLAG_GROUP_END` and/or `FLAG_PRUNED`, or 0.
    pub flags: u8,
    /// Seq of the first entry in the frame.
    pub first_seq: u64,
    /// Number of entries in the frame (1..=256).
    pub count: u32,
    /// Length of the bundle-framed entries once decompressed.
    pub raw_len: u32,
    /// Length of the payload as stored.
    pub stored_len: u32,
    /// CRC-32 (IEEE) of the stored payload.
    pub payload_crc: u32,
}

impl FrameHeader {
    /// Encodes the header, with its own CRC as the last 4 bytes.
    pub fn encode(&self) -> [u8; FRAME_HEADER_BYTES] {
        let mut b = [0u8; FRAME_HEADER_BYTES];
        b[0..4].copy_from_slice(&FRAME_MAGIC);
        b[4] = self.codec;
        b[5] = self.flags;
        b[8..16].copy_from_slice(&self.first_seq.to_le_bytes());
        b[16..20].copy_from_slice(&self.count.to_le_bytes());
        b[20..24].copy_from_slice(&self.raw_len.to_le_bytes());
        b[24..28].copy_from_slice(&self.stored_len.to_le_bytes());
        b[28..32].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32fast::hash(&b[0..32]);
        b[32..36].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a header: magic, header CRC, codec, and that the
    /// frame stays inside one bundle.
    pub fn decode(b: &[u8; FRAME_HEADER_BYTES]) -> Result<FrameHeader, String> {
        if b[0..4] != FRAME_MAGIC {
            return Err("bad frame magic".into());
        }
        let crc = u32::from_le_bytes(b[32..36].try_into().unwrap());
        if crc32fast::hash(&b[0..32]) != crc {
            return Err("frame header checksum mismatch".into());
        }
        let h = FrameHeader {
            codec: b[4],
            flags: b[5],
            first_seq: u64::from_le_bytes(b[8..16].try_into().unwrap()),
            count: u32::from_le_bytes(b[16..20].try_into().unwrap()),
            raw_len: u32::from_le_bytes(b[20..24].try_into().unwrap()),
            stored_len: u32::from_le_bytes(b[24..28].try_into().unwrap()),
            payload_crc: u32::from_le_bytes(b[28..32].try_into().unwrap()),
        };
        if h.codec != CODEC_NONE && h.codec != CODEC_ZSTD {
            return Err(format!("unknown frame codec {}", h.codec));
        }
        if h.flags & !(FLAG_GROUP_END | FLAG_PRUNED) != 0 || b[6] != 0 || b[7] != 0 {
            return Err(format!("unknown frame flags {:#x}", h.flags));
        }
        if h.is_pruned()
            && (h.codec != CODEC_NONE || h.raw_len as usize != h.count as usize * HASH_SIZE)
        {
            return Err("pruned frame with a bad codec or length".into());
        }
        if h.count == 0 || u64::from(h.count) > TILE_WIDTH {
            return Err(format!("bad frame entry count {}", h.count));
        }
        let last = h.first_seq.checked_add(u64::from(h.count) - 1);
        if last.map(|l| l / TILE_WIDTH) != Some(h.first_seq / TILE_WIDTH) {
            return Err("frame crosses a bundle boundary".into());
        }
        if h.raw_len as usize > FRAME_RAW_BYTES_MAX || h.stored_len as usize > FRAME_RAW_BYTES_MAX {
            return Err("frame length over the limit".into());
        }
        if h.codec == CODEC_NONE && h.raw_len != h.stored_len {
            return Err("uncompressed frame with differing lengths".into());
        }
        Ok(h)
    }

    /// Whether the frame holds the leaf hashes of pruned entries instead of entries.
    pub fn is_pruned(&self) -> bool {
        self.flags & FLAG_PRUNED != 0
    }

    /// Bytes the frame occupies on disk, header included.
    pub fn disk_len(&self) -> u64 {
        FRAME_HEADER_BYTES as u64 + u64::from(self.stored_len)
    }
}

/// Encodes the segment file header.
pub fn segment_header(first_seq: u64) -> [u8; SEGMENT_HEADER_BYTES as usize] {
    let mut b = [0u8; SEGMENT_HEADER_BYTES as usize];
    b[0..8].copy_from_slice(&SEGMENT_MAGIC);
    b[8..16].copy_from_slice(&first_seq.to_le_bytes());
    b
}

/// File name of segment number `n` (its first seq, 20 decimal digits, sorts in order).
pub fn segment_name(n: u64) -> String {
    format!("{:020}.seg", n * SEGMENT_ENTRIES)
}

/// Parses a segment file name back into its segment number.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let first: u64 = digits.parse().ok()?;
    first
        .is_multiple_of(SEGMENT_ENTRIES)
        .then_some(first / SEGMENT_ENTRIES)
}

/// Appends one frame (header + payload) for `raw` (bundle-framed entries) to `out`,
/// compressing with `compressor` when that makes it smaller.
pub fn encode_frame(
    compressor: &mut zstd::bulk::Compressor<'static>,
    first_seq: u64,
    count: u32,
    raw: &[u8],
    out: &mut Vec<u8>,
) -> io::Result<()> {
    assert!(
        raw.len() <= FRAME_RAW_BYTES_MAX,
        "frame raw length checked by caller"
    );
    let header_at = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
    let payload_at = out.len();
    out.reserve(zstd::zstd_safe::compress_bound(raw.len()));
    let spare = out.capacity() - out.len();
    out.resize(payload_at + spare, 0);
    let compressed = compressor.compress_to_buffer(raw, &mut out[payload_at..]);
    let (codec, stored_len) = match compressed {
        Ok(n) if n < raw.len() => (CODEC_ZSTD, n),
        _ => {
            out[payload_at..payload_at + raw.len()].copy_from_slice(raw);
            (CODEC_NONE, raw.len())
        }
    };
    out.truncate(payload_at + stored_len);
    let header = FrameHeader {
        codec,
        flags: 0,
        first_seq,
        count,
        raw_len: raw.len() as u32,
        stored_len: stored_len as u32,
        payload_crc: crc32fast::hash(&out[payload_at..]),
    };
    out[header_at..payload_at].copy_from_slice(&header.encode());
    Ok(())
}

/// Appends one pruned frame for the entries `first_seq ..` whose leaf hashes
/// are `leaves` (1..=256, within one bundle) to `out`.
pub fn encode_pruned_frame(first_seq: u64, leaves: &[Hash], out: &mut Vec<u8>) {
    assert!(
        !leaves.is_empty() && leaves.len() as u64 <= TILE_WIDTH,
        "bad math in pruned frame size"
    );
    let payload: Vec<u8> = leaves.concat();
    let header = FrameHeader {
        codec: CODEC_NONE,
        flags: FLAG_PRUNED,
        first_seq,
        count: leaves.len() as u32,
        raw_len: payload.len() as u32,
        stored_len: payload.len() as u32,
        payload_crc: crc32fast::hash(&payload),
    };
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(&payload);
}

/// Checks a pruned frame's payload and returns the leaf hashes it carries.
pub fn decode_pruned(h: &FrameHeader, stored: &[u8]) -> Result<Vec<Hash>, String> {
    if crc32fast::hash(stored) != h.payload_crc {
        return Err("frame payload checksum mismatch".into());
    }
    if stored.len() != h.count as usize * HASH_SIZE {
        return Err("pruned frame length mismatch".into());
    }
    Ok(stored
        .chunks_exact(HASH_SIZE)
        .map(|c| c.try_into().expect("chunks of HASH_SIZE"))
        .collect())
}

thread_local! {
    /// One zstd decompression context per thread: creating one per frame would
    /// cost more than decompressing a small frame.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Marks the frame whose header starts at `header` as the end of a commit group.
pub fn set_group_end(header: &mut [u8]) {
    let b: &mut [u8; FRAME_HEADER_BYTES] = header.try_into().expect("a frame header");
    let mut h = FrameHeader::decode(b).expect("we just encoded it");
    h.flags |= FLAG_GROUP_END;
    *b = h.encode();
}

/// Decodes a frame payload back into bundle-framed entries, checking its CRC and lengths.
pub fn decode_payload(h: &FrameHeader, stored: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    if crc32fast::hash(stored) != h.payload_crc {
        return Err("frame payload checksum mismatch".into());
    }
    let start = out.len();
    match h.codec {
        CODEC_NONE => out.extend_from_slice(stored),
        _ => {
            out.resize(start + h.raw_len as usize, 0);
            let n = DECOMPRESSOR
                .with(|d| {
                    let mut d = d.borrow_mut();
                    if d.is_none() {
                        *d = Some(zstd::bulk::Decompressor::new()?);
                    }
                    d.as_mut()
                        .unwrap()
                        .decompress_to_buffer(stored, &mut out[start..])
                })
                .map_err(|e| {
                    out.truncate(start);
                    format!("frame payload does not decompress: {e}")
                })?;
            if n != h.raw_len as usize {
                out.truncate(start);
                return Err("frame payload length mismatch".into());
            }
        }
    }
    // The payload must be exactly `count` well-formed bundle entries.
    let entries = tlog::parse_bundle(&out[start..]).map_err(|e| e.to_string())?;
    if entries.len() != h.count as usize {
        return Err("frame entry count mismatch".into());
    }
    Ok(())
}

/// One frame found by a scan.
#[derive(Debug, Clone, Copy)]
pub struct ScannedFrame {
    /// Offset of the frame header in the segment file.
    pub offset: u64,
    /// Its header.
    pub header: FrameHeader,
}

/// What scanning a segment found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Valid frames in order.
    pub frames: Vec<ScannedFrame>,
    /// Offset just past the last valid frame that ends a commit group:
    /// everything after it is a torn tail (or corruption).
    pub valid_len: u64,
    /// Why scanning stopped before the end of the file, if it did.
    pub stopped: Option<String>,
}

/// Reads the frames of a segment from its header on, checking headers,
/// payload CRCs (when `check_payload`) and seq continuity, and stopping at the
/// first frame that is not valid (a torn tail, or corruption).
pub fn scan_segment(file: &dyn FsFile, segment: u64, check_payload: bool) -> io::Result<Scan> {
    let file_len = file.len()?;
    let mut scan = Scan::default();
    if file_len < SEGMENT_HEADER_BYTES {
        scan.stopped = (file_len > 0).then(|| "segment header torn".to_string());
        return Ok(scan);
    }
    let mut head = [0u8; SEGMENT_HEADER_BYTES as usize];
    read_exact_at(file, &mut head, 0)?;
    if head != segment_header(segment * SEGMENT_ENTRIES) {
        scan.stopped = Some("bad segment header (magic, version or first seq)".into());
        return Ok(scan);
    }
    let mut offset = SEGMENT_HEADER_BYTES;
    let mut next_seq = segment * SEGMENT_ENTRIES;
    let end_seq = next_seq + SEGMENT_ENTRIES;
    let mut payload = Vec::new();
    let mut raw = Vec::new();
    let mut committed_frames = 0;
    scan.valid_len = offset;
    while offset < file_len {
        if file_len - offset < FRAME_HEADER_BYTES as u64 {
            scan.stopped = Some(format!("torn frame header at offset {offset}"));
            break;
        }
        let mut hb = [0u8; FRAME_HEADER_BYTES];
        read_exact_at(file, &mut hb, offset)?;
        let h = match FrameHeader::decode(&hb) {
            Ok(h) => h,
            Err(e) => {
                scan.stopped = Some(format!("{e} at offset {offset}"));
                break;
            }
        };
        if h.first_seq != next_seq || h.first_seq + u64::from(h.count) > end_seq {
            scan.stopped = Some(format!(
                "frame at offset {offset} holds seq {} but {next_seq} was expected",
                h.first_seq
            ));
            break;
        }
        if offset + h.disk_len() > file_len {
            scan.stopped = Some(format!("torn frame payload at offset {offset}"));
            break;
        }
        if check_payload {
            payload.resize(h.stored_len as usize, 0);
            read_exact_at(file, &mut payload, offset + FRAME_HEADER_BYTES as u64)?;
            raw.clear();
            let checked = if h.is_pruned() {
                decode_pruned(&h, &payload).map(|_| ())
            } else {
                decode_payload(&h, &payload, &mut raw)
            };
            if let Err(e) = checked {
                scan.stopped = Some(format!("{e} (frame at offset {offset}, seq {next_seq})"));
                break;
            }
        }
        scan.frames.push(ScannedFrame { offset, header: h });
        offset += h.disk_len();
        next_seq += u64::from(h.count);
        if h.flags & FLAG_GROUP_END != 0 {
            committed_frames = scan.frames.len();
            scan.valid_len = offset;
        }
    }
    if committed_frames < scan.frames.len() {
        // Frames of a commit group whose last frame never reached the disk:
        // that group was never acknowledged, and is dropped whole.
        scan.frames.truncate(committed_frames);
        scan.stopped
            .get_or_insert_with(|| "an unfinished commit group".into());
    }
    Ok(scan)
}

/// Where the frames of a segment are: the offset and first seq of every frame,
/// which of them start a bundle, and `end`, the offset past the last frame.
/// Readers find a bundle's byte range, or the one frame that holds a seq.
#[derive(Debug, Clone)]
pub struct BundleIndex {
    /// `(offset, first seq)` of each frame, in order.
    frames: Vec<(u64, u64)>,
    /// For each bundle present, the position in `frames` of its first frame.
    bundles: Vec<u32>,
    /// Offset past the last frame.
    pub end: u64,
}

impl Default for BundleIndex {
    /// The index of a segment that holds only its header.
    fn default() -> BundleIndex {
        BundleIndex {
            frames: Vec::new(),
            bundles: Vec::new(),
            end: SEGMENT_HEADER_BYTES,
        }
    }
}

impl BundleIndex {
    /// Builds the index from a scan.
    pub fn from_scan(scan: &Scan) -> BundleIndex {
        let mut idx = BundleIndex {
            frames: Vec::with_capacity(scan.frames.len()),
            bundles: Vec::with_capacity(SEGMENT_BUNDLES as usize),
            end: scan.valid_len.max(SEGMENT_HEADER_BYTES),
        };
        for f in &scan.frames {
            idx.push_frame(f.offset, f.header.first_seq);
        }
        idx
    }

    /// Records a frame placed at `offset` (after every frame already recorded)
    /// holding entries from `first_seq` on. The caller then moves `end`.
    pub fn push_frame(&mut self, offset: u64, first_seq: u64) {
        if first_seq.is_multiple_of(TILE_WIDTH) {
            self.bundles.push(self.frames.len() as u32);
        }
        self.frames.push((offset, first_seq));
    }

    /// Byte range of bundle `i` (within the segment), if present.
    pub fn range(&self, i: usize) -> Option<(u64, u64)> {
        let first = *self.bundles.get(i)? as usize;
        let end = match self.bundles.get(i + 1) {
            Some(&next) => self.frames[next as usize].0,
            None => self.end,
        };
        Some((self.frames[first].0, end))
    }

    /// The frame that would hold `seq` (the caller checks `seq` is below the
    /// size): its byte range, its first seq, and the first seq of the next
    /// frame (`u64::MAX` for the last one).
    pub fn frame_of(&self, seq: u64) -> Option<FrameAt> {
        let k = self.frames.partition_point(|f| f.1 <= seq).checked_sub(1)?;
        let (start, first_seq) = self.frames[k];
        let next = self.frames.get(k + 1);
        Some(FrameAt {
            start,
            end: next.map_or(self.end, |f| f.0),
            first_seq,
            next_seq: next.map_or(u64::MAX, |f| f.1),
        })
    }
}

/// Where one frame is, from [`BundleIndex::frame_of`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameAt {
    /// Offset of its header.
    pub start: u64,
    /// Offset past its payload.
    pub end: u64,
    /// Seq of its first entry.
    pub first_seq: u64,
    /// Seq of the next frame's first entry (`u64::MAX` if it is the last).
    pub next_seq: u64,
}

/// Walks the frames in `buf`, the bytes `[start, start + buf.len())` of a
/// segment that must hold consecutive frames from seq `first_seq` on:
/// `f(header, stored payload)` for each, after checking its header, its seq
/// continuity and that it is whole (payload CRCs are the caller's:
/// `decode_payload` and `decode_pruned` check them). Returns the number of
/// entries the frames hold, pruned ones included.
fn walk_frames(
    buf: &[u8],
    start: u64,
    first_seq: u64,
    mut f: impl FnMut(&FrameHeader, &[u8]) -> Result<(), String>,
) -> Result<u64, String> {
    let mut at = 0usize;
    let mut seq = first_seq;
    while at < buf.len() {
        let offset = start + at as u64;
        if buf.len() - at < FRAME_HEADER_BYTES {
            return Err(format!("torn frame header at offset {offset}"));
        }
        let hb: &[u8; FRAME_HEADER_BYTES] = buf[at..at + FRAME_HEADER_BYTES].try_into().unwrap();
        let h = FrameHeader::decode(hb).map_err(|e| format!("{e} at offset {offset}"))?;
        if h.first_seq != seq {
            return Err(format!(
                "frame at offset {offset} holds seq {} but {seq} was expected",
                h.first_seq
            ));
        }
        let p0 = at + FRAME_HEADER_BYTES;
        let p1 = p0 + h.stored_len as usize;
        if p1 > buf.len() {
            return Err(format!("torn frame payload at offset {offset}"));
        }
        f(&h, &buf[p0..p1]).map_err(|e| format!("{e} (frame at offset {offset}, seq {seq})"))?;
        seq += u64::from(h.count);
        at = p1;
    }
    Ok(seq - first_seq)
}

fn read_range(file: &dyn FsFile, start: u64, end: u64) -> Result<Vec<u8>, String> {
    let len = usize::try_from(end - start).map_err(|_| "range too large".to_string())?;
    let mut buf = vec![0u8; len];
    read_exact_at(file, &mut buf, start).map_err(|e| format!("read failed: {e}"))?;
    Ok(buf)
}

/// Reads and decodes the frames in `[start, end)` of a segment, appending the
/// bundle-framed entries to `out` and `(seq, leaf hash)` of each pruned entry
/// to `pruned`. Returns the number of entries read, pruned ones included.
pub fn read_frames(
    file: &dyn FsFile,
    start: u64,
    end: u64,
    expect_first_seq: u64,
    out: &mut Vec<u8>,
    pruned: &mut Vec<(u64, Hash)>,
) -> Result<u64, String> {
    let buf = read_range(file, start, end)?;
    walk_frames(&buf, start, expect_first_seq, |h, stored| {
        if h.is_pruned() {
            let leaves = decode_pruned(h, stored)?;
            pruned.extend(
                leaves
                    .into_iter()
                    .enumerate()
                    .map(|(i, l)| (h.first_seq + i as u64, l)),
            );
            Ok(())
        } else {
            decode_payload(h, stored, out)
        }
    })
}

/// One position of an entry bundle as stored: the entry, or the leaf hash that
/// stands for it once retention pruned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// The entry's bytes.
    Entry(Vec<u8>),
    /// The entry was pruned; this is its leaf hash, kept in the segment.
    Pruned(Hash),
}

/// Reads the frames in `[start, end)` of a segment (from seq
/// `expect_first_seq` on) and returns, for each seq of `wanted` (ascending,
/// all inside the range), what is stored for it. Only the frames holding a
/// wanted seq are checked and decompressed, so reading one entry costs one
/// frame, not a whole bundle. Returns an error if a wanted seq is not in the range.
pub fn read_wanted(
    file: &dyn FsFile,
    start: u64,
    end: u64,
    expect_first_seq: u64,
    wanted: &[u64],
) -> Result<Vec<Slot>, String> {
    let buf = read_range(file, start, end)?;
    let mut found = Vec::with_capacity(wanted.len());
    let mut raw = Vec::new();
    walk_frames(&buf, start, expect_first_seq, |h, stored| {
        let end_seq = h.first_seq + u64::from(h.count);
        let first = found.len();
        let n = wanted[first..].iter().take_while(|&&s| s < end_seq).count();
        if n == 0 {
            return Ok(());
        }
        if wanted[first] < h.first_seq {
            return Err(format!("seq {} is out of order", wanted[first]));
        }
        let here = &wanted[first..first + n];
        if h.is_pruned() {
            let leaves = decode_pruned(h, stored)?;
            found.extend(
                here.iter()
                    .map(|&s| Slot::Pruned(leaves[(s - h.first_seq) as usize])),
            );
        } else {
            raw.clear();
            decode_payload(h, stored, &mut raw)?;
            let entries = tlog::parse_bundle(&raw).map_err(|e| e.to_string())?;
            found.extend(
                here.iter()
                    .map(|&s| Slot::Entry(entries[(s - h.first_seq) as usize].to_vec())),
            );
        }
        Ok(())
    })?;
    if found.len() != wanted.len() {
        return Err(format!(
            "seq {} is not in the frames read",
            wanted[found.len()]
        ));
    }
    Ok(found)
}

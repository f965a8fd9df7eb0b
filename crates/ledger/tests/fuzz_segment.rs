//! The fuzz target `segment` (`ledger::fuzz::segment`, run unbounded by `fuzz/`) on
//! stable, in a few seconds: a corpus of segment files the writer made (compressed and
//! raw frames, several commit groups, pruned frames, both segment numbers), then
//! thousands of arbitrary and mutated files. Each input's first byte picks the segment
//! number and whether its header is put in front (see `ledger::fuzz::segment`).

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ledger::fs::{read_all, Fs, MemFs};
use ledger::segment::{encode_frame, segment_header, segment_name, set_group_end};
use ledger::{Config, Ledger, NewEntry};
use proptest::prelude::*;
use tlog::Signer;

/// Control byte: the file as is, segment 0.
const AS_IS: u8 = 0;
/// Control byte: the right header is put in front.
const HEADER: u8 = 1;
/// Control byte bit: segment 1.
const SEGMENT_1: u8 = 2;

/// Segment 0 as the writer leaves it after `groups` commits (and a prune of `pruned`).
fn written_segment(groups: &[usize], pruned: &[u64]) -> Vec<u8> {
    let (signer, _, _) = Signer::generate("fuzz.example/ledger").unwrap();
    let fs: Arc<dyn Fs> = Arc::new(MemFs::new());
    let dir = Path::new("/l");
    let mut config = Config::new("fuzz.example/ledger");
    config.checkpoint_interval = Duration::from_secs(3600);
    config.frame_entries = 8;
    let ledger = Ledger::open(fs.clone(), dir, config, signer).unwrap();
    let mut seq = 0u64;
    for &n in groups {
        let entries = (0..n)
            .map(|i| {
                // Some repetitive (zstd frames), some not (raw frames).
                let text = if seq.is_multiple_of(3) {
                    format!("{{\"n\":{seq},\"pad\":\"{}\"}}", "ab".repeat(40))
                } else {
                    format!("{:x}", (seq + i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
                };
                NewEntry::Bytes(text.into_bytes())
            })
            .collect();
        seq += ledger.append(entries).unwrap().leaf_hashes.len() as u64;
    }
    if !pruned.is_empty() {
        ledger.prune(pruned.to_vec()).unwrap();
    }
    drop(ledger);
    read_all(fs.as_ref(), &dir.join("segments").join(segment_name(0))).unwrap()
}

/// A hand-made segment 1: two commit groups of raw and compressed frames.
fn segment_one() -> Vec<u8> {
    let mut c = zstd::bulk::Compressor::new(1).unwrap();
    let mut out = segment_header(ledger::SEGMENT_ENTRIES).to_vec();
    let mut first = ledger::SEGMENT_ENTRIES;
    for (count, text) in [(3u32, "x".repeat(200)), (5, "short".into())] {
        let entries: Vec<&[u8]> = (0..count).map(|_| text.as_bytes()).collect();
        let mut raw = Vec::new();
        tlog::encode_bundle(&entries, &mut raw).unwrap();
        let at = out.len();
        encode_frame(&mut c, first, count, &raw, &mut out).unwrap();
        set_group_end(&mut out[at..at + ledger::segment::FRAME_HEADER_BYTES]);
        first += u64::from(count);
    }
    out
}

fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let with = |control: u8, file: &[u8]| [&[control][..], file].concat();
        let small = written_segment(&[1, 7, 9, 20], &[]);
        let big = written_segment(&[300, 1, 40], &[]);
        let pruned = written_segment(&[30, 30], &[2, 3, 4, 40]);
        let one = segment_one();
        let mut torn = big.clone();
        torn.truncate(big.len() - 5);
        vec![
            with(AS_IS, &small),
            with(AS_IS, &big),
            with(AS_IS, &pruned),
            with(AS_IS, &torn),
            with(HEADER, &small[16..]),
            with(HEADER | SEGMENT_1, &one[16..]),
            with(AS_IS | SEGMENT_1, &one),
            with(AS_IS, &one), // the wrong segment number
            vec![HEADER],
            vec![AS_IS, 0x4d, 0x4c],
        ]
    })
}

/// Edits applied to a seed: (operation, position, byte).
fn edits() -> impl Strategy<Value = Vec<(u8, usize, u8)>> {
    proptest::collection::vec((0u8..5, any::<usize>(), any::<u8>()), 1..6)
}

fn mutate(seed: &[u8], edits: &[(u8, usize, u8)]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for &(op, pos, byte) in edits {
        let at = if b.len() <= 1 {
            b.len()
        } else {
            1 + pos % b.len()
        };
        match op {
            0 => b.insert(at, byte),
            1 if at < b.len() => {
                b.remove(at);
            }
            2 if at < b.len() => b[at] ^= byte | 1,
            3 => b.truncate(at),
            // Overwrite a little-endian length or seq field with an extreme value.
            _ if at + 4 <= b.len() => {
                let v: u32 = [0, 1, u32::MAX, 256, 1 << 24][usize::from(byte) % 5];
                b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            _ => {}
        }
    }
    b
}

#[test]
fn the_seed_corpus_holds() {
    for seed in seeds() {
        ledger::fuzz::segment(seed);
    }
}

/// Writes the seed corpus for `cargo fuzz run segment` (see `fuzz/README.md`).
#[test]
#[ignore = "writes fuzz/corpus/segment; run on purpose"]
fn write_fuzz_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/segment");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, seed) in seeds().iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:02}")), seed).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        ledger::fuzz::segment(&b);
    }

    #[test]
    fn mutated_segments(seed in 0usize..10, e in edits()) {
        ledger::fuzz::segment(&mutate(&seeds()[seed], &e));
    }
}

//! The fuzz target `cursor` (`index::fuzz::cursor`, run unbounded by `fuzz/`) on stable,
//! in well under a second: a seeded corpus of real and almost-real cursors, then
//! thousands of arbitrary and mutated strings.

use index::{Cursor, Order};
use proptest::prelude::*;

fn seeds() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = [0, 1, 255, 256, 1 << 53, i64::MAX as u64]
        .into_iter()
        .flat_map(|seq| {
            [Order::Asc, Order::Desc].map(|order| Cursor { seq, order }.encode().into_bytes())
        })
        .collect();
    // Version 2, order 2, a seq past i64::MAX, a padded and a standard-alphabet form.
    out.extend(
        [
            "AgAAAAAAAAAAAQ",
            "AQIAAAAAAAAAAQ",
            "AQD__________w",
            "AQAAAAAAAAAAAQ==",
            "AQ+/AAAAAAAAAA",
        ]
        .map(|s| s.as_bytes().to_vec()),
    );
    out.extend([vec![], b"AQ".to_vec(), vec![0xff, 0xfe]]);
    out
}

fn mutate(seed: &[u8], edits: &[(u8, usize, u8)]) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=";
    let mut b = seed.to_vec();
    for &(op, pos, byte) in edits {
        let at = if b.is_empty() { 0 } else { pos % (b.len() + 1) };
        let c = ALPHABET[usize::from(byte) % ALPHABET.len()];
        match op {
            0 => b.insert(at, c),
            1 if at < b.len() => {
                b.remove(at);
            }
            2 if at < b.len() => b[at] = c,
            3 => b.truncate(at),
            _ => b.insert(at, byte),
        }
    }
    b
}

#[test]
fn the_seed_corpus_holds() {
    for seed in seeds() {
        index::fuzz::cursor(&seed);
    }
}

#[test]
fn a_cursor_past_what_sqlite_compares_is_refused() {
    // Regression (found by the `cursor` fuzz target): seq 2^64 - 1 decoded, and the
    // query compared `seq > -1`, so an ascending page restarted from the first entry
    // instead of refusing a cursor this server never returned.
    let forged = Cursor {
        seq: u64::MAX,
        order: Order::Asc,
    }
    .encode();
    assert!(Cursor::decode(&forged).is_err());
}

/// Writes the seed corpus for `cargo fuzz run cursor` (see `fuzz/README.md`).
#[test]
#[ignore = "writes fuzz/corpus/cursor; run on purpose"]
fn write_fuzz_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/cursor");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, seed) in seeds().iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:02}")), seed).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..32)) {
        index::fuzz::cursor(&b);
    }

    #[test]
    fn arbitrary_base64ish(s in "[A-Za-z0-9_=+/-]{0,24}") {
        index::fuzz::cursor(s.as_bytes());
    }

    #[test]
    fn mutated_cursors(seed in 0usize..19, e in proptest::collection::vec((0u8..5, any::<usize>(), any::<u8>()), 1..5)) {
        index::fuzz::cursor(&mutate(&seeds()[seed], &e));
    }
}

//! Benchmark: inclusion and consistency proofs for a 10M-entry log read
//! through `TileHashReader`. Prints figures; asserts nothing.
//!
//!     cargo run --release -p tlog --example proof_bench
//!
//! The tile reader fabricates hashes instead of storing 320 MB of them: the
//! cost measured is proof assembly (node planning, tile reads, hashing the
//! levels between tiles), which does not depend on the hash values.

use std::cell::Cell;
use std::time::Instant;

use tlog::{
    consistency_proof, inclusion_proof, root_hash, Error, Hash, TileHashReader, TileReader,
};

const SIZE: u64 = 10_000_000;
const ROUNDS: u64 = 20_000;

/// Fabricated tile hashes, counting the calls and hashes read.
#[derive(Default)]
struct FakeTiles {
    reads: Cell<u64>,
    hashes: Cell<u64>,
}

impl TileReader for FakeTiles {
    fn read_tile_hashes(&self, tile_level: u8, first: u64, count: u64) -> Result<Vec<Hash>, Error> {
        self.reads.set(self.reads.get() + 1);
        self.hashes.set(self.hashes.get() + count);
        Ok((first..first + count)
            .map(|i| {
                let mut h = [tile_level; 32];
                h[..8].copy_from_slice(&i.to_le_bytes());
                h
            })
            .collect())
    }
}

fn main() {
    node_hash_rate();
    let reader = TileHashReader(FakeTiles::default());
    // A cheap deterministic spread of indexes over the whole log.
    let index = |i: u64| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % SIZE;

    let start = Instant::now();
    let mut proof_hashes = 0;
    for i in 0..ROUNDS {
        proof_hashes += inclusion_proof(index(i), SIZE, &reader).unwrap().len();
    }
    report("inclusion_proof", start, &reader.0, proof_hashes);

    let (reader, start) = (TileHashReader(FakeTiles::default()), Instant::now());
    let mut proof_hashes = 0;
    for i in 0..ROUNDS {
        proof_hashes += consistency_proof(index(i).max(1), SIZE, &reader)
            .unwrap()
            .len();
    }
    report("consistency_proof", start, &reader.0, proof_hashes);

    let (reader, start) = (TileHashReader(FakeTiles::default()), Instant::now());
    for i in 0..ROUNDS {
        root_hash(SIZE - i, &reader).unwrap();
    }
    report("root_hash", start, &reader.0, 0);
}

fn report(what: &str, start: Instant, tiles: &FakeTiles, proof_hashes: usize) {
    let per_us = start.elapsed().as_secs_f64() * 1e6 / ROUNDS as f64;
    println!(
        "{what:>18}: {per_us:7.1} µs/op, {:5.1} tile reads/op, {:6.1} tile hashes/op, {:4.1} proof hashes/op",
        tiles.reads.get() as f64 / ROUNDS as f64,
        tiles.hashes.get() as f64 / ROUNDS as f64,
        proof_hashes as f64 / ROUNDS as f64,
    );
}

/// The unit cost everything else is made of: proofs through tiles are
/// dominated by hashing the 7 tree levels between tile levels.
fn node_hash_rate() {
    let mut h = [1u8; 32];
    let start = Instant::now();
    for _ in 0..1_000_000 {
        h = tlog::node_hash(&h, &h);
    }
    println!(
        "{:>18}: {:7.1} ns/op",
        "node_hash",
        start.elapsed().as_secs_f64() * 1e3
    );
}

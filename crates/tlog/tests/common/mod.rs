//! Shared test helpers: an in-memory store, and a naive RFC 9162 model
//! written straight from the RFC text to compare the crate against.
#![allow(dead_code)]

use std::path::PathBuf;

use tlog::{
    leaf_hash, node_hash, CompactRange, Error, Hash, HashReader, NodeId, TileReader, EMPTY_ROOT,
};

/// The repository's `testdata/` (vectors from other implementations; see its README).
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// Every perfect subtree hash of a tree, by level then index, filled from
/// `CompactRange::append` callbacks. Fails the test if a node is written twice
/// or out of order (nodes are immutable once complete).
#[derive(Default)]
pub struct MemStore {
    pub levels: Vec<Vec<Hash>>,
    pub range: CompactRange,
}

impl MemStore {
    pub fn from_leaves(leaves: &[Hash]) -> MemStore {
        let mut s = MemStore::default();
        for l in leaves {
            s.append(*l);
        }
        s
    }

    pub fn append(&mut self, leaf: Hash) {
        let levels = &mut self.levels;
        self.range.append(leaf, |id, h| {
            let level = id.level as usize;
            if levels.len() <= level {
                levels.resize(level + 1, Vec::new());
            }
            assert_eq!(
                levels[level].len() as u64,
                id.index,
                "node {id:?} written out of order or twice"
            );
            levels[level].push(*h);
        });
    }

    pub fn size(&self) -> u64 {
        self.range.size()
    }
}

impl HashReader for MemStore {
    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, Error> {
        nodes
            .iter()
            .map(|n| {
                self.levels
                    .get(n.level as usize)
                    .and_then(|l| l.get(n.index as usize))
                    .copied()
                    .ok_or_else(|| Error::Storage(format!("no node {n:?}")))
            })
            .collect()
    }
}

/// The tile view of the same store: tile level L is tree level 8L.
pub struct MemTiles<'a>(pub &'a MemStore);

impl TileReader for MemTiles<'_> {
    fn read_tile_hashes(&self, tile_level: u8, first: u64, count: u64) -> Result<Vec<Hash>, Error> {
        assert!(
            first / 256 == (first + count - 1) / 256,
            "read crosses a tile boundary"
        );
        let level = self
            .0
            .levels
            .get(tile_level as usize * 8)
            .ok_or_else(|| Error::Storage(format!("no tile level {tile_level}")))?;
        level
            .get(first as usize..(first + count) as usize)
            .map(<[Hash]>::to_vec)
            .ok_or_else(|| {
                Error::Storage(format!(
                    "no hashes {first}+{count} at tile level {tile_level}"
                ))
            })
    }
}

/// Largest power of two strictly smaller than n (RFC 9162, 2.1.1).
fn k_of(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH(D[n]) from RFC 9162, section 2.1.1, over leaf hashes.
pub fn naive_mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => EMPTY_ROOT,
        1 => d[0],
        n => {
            let k = k_of(n);
            node_hash(&naive_mth(&d[..k]), &naive_mth(&d[k..]))
        }
    }
}

/// PATH(m, D[n]) from RFC 9162, section 2.1.3.1.
pub fn naive_path(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n == 1 {
        return vec![];
    }
    let k = k_of(n);
    if m < k {
        let mut p = naive_path(m, &d[..k]);
        p.push(naive_mth(&d[k..]));
        p
    } else {
        let mut p = naive_path(m - k, &d[k..]);
        p.push(naive_mth(&d[..k]));
        p
    }
}

/// PROOF(m, D[n]) from RFC 9162, section 2.1.4.1.
pub fn naive_proof(m: usize, d: &[Hash]) -> Vec<Hash> {
    naive_subproof(m, d, true)
}

fn naive_subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![naive_mth(d)] };
    }
    let k = k_of(n);
    if m <= k {
        let mut p = naive_subproof(m, &d[..k], b);
        p.push(naive_mth(&d[k..]));
        p
    } else {
        let mut p = naive_subproof(m - k, &d[k..], false);
        p.push(naive_mth(&d[..k]));
        p
    }
}

/// Deterministic distinct leaf hashes.
pub fn leaves(n: usize, seed: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("{seed}-{i}").as_bytes()))
        .collect()
}

pub fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

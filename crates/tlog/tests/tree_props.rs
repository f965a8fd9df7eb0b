//! Property tests: the crate against a naive RFC 9162 model (MTH, PATH,
//! PROOF written straight from the RFC in `common`), over random trees.

mod common;

use common::{leaves, naive_mth, naive_path, naive_proof, MemStore, MemTiles};
use proptest::prelude::*;
use tlog::{
    consistency_proof, inclusion_proof, leaf_hash, node_hash, root_hash, subtree_nodes,
    verify_consistency, verify_inclusion, CompactRange, Error, Hash, HashReader, NodeId,
    TileHashReader,
};

const SIZE_MAX: u64 = 2000;

/// A tree size with a leaf index in it.
fn size_and_index() -> impl Strategy<Value = (u64, u64, u64)> {
    (1..=SIZE_MAX, any::<u64>()).prop_flat_map(|(size, seed)| (Just(size), 0..size, Just(seed)))
}

/// Two tree sizes `0 < old <= new`.
fn old_and_new() -> impl Strategy<Value = (u64, u64, u64)> {
    (1..=SIZE_MAX, any::<u64>()).prop_flat_map(|(new, seed)| (1..=new, Just(new), Just(seed)))
}

fn flip_each_bit_fails(proof: &[Hash], check: impl Fn(&[Hash]) -> Result<(), Error>) {
    for i in 0..proof.len() {
        for bit in 0..256 {
            let mut bad = proof.to_vec();
            bad[i][bit / 8] ^= 1 << (bit % 8);
            assert!(
                check(&bad).is_err(),
                "flipping bit {bit} of proof[{i}] still verifies"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn inclusion_matches_naive_and_verifies((size, index, seed) in size_and_index()) {
        let d = leaves(size as usize, seed);
        let store = MemStore::from_leaves(&d);
        let root = naive_mth(&d);
        prop_assert_eq!(root_hash(size, &store).unwrap(), root);
        prop_assert_eq!(store.range.root(), root);

        let proof = inclusion_proof(index, size, &store).unwrap();
        prop_assert_eq!(&proof, &naive_path(index as usize, &d));
        verify_inclusion(index, size, &d[index as usize], &proof, &root).unwrap();

        // The same proof read through tiles.
        let tiles = TileHashReader(MemTiles(&store));
        prop_assert_eq!(&inclusion_proof(index, size, &tiles).unwrap(), &proof);
        prop_assert_eq!(root_hash(size, &tiles).unwrap(), root);

        flip_each_bit_fails(&proof, |p| verify_inclusion(index, size, &d[index as usize], p, &root));
        // Wrong leaf, wrong index, index outside the tree, truncated or
        // extended proof. (A wrong size may share the proof's shape; the
        // signed root is what binds the size.)
        prop_assert!(verify_inclusion(index, size, &leaf_hash(b"other"), &proof, &root).is_err());
        if size > 1 {
            let other = (index + 1) % size;
            prop_assert!(verify_inclusion(other, size, &d[index as usize], &proof, &root).is_err());
        }
        prop_assert!(verify_inclusion(index, index, &d[index as usize], &proof, &root).is_err());
        if !proof.is_empty() {
            prop_assert!(verify_inclusion(index, size, &d[index as usize], &proof[1..], &root).is_err());
        }
        let mut longer = proof.clone();
        longer.push(root);
        prop_assert!(verify_inclusion(index, size, &d[index as usize], &longer, &root).is_err());
    }

    #[test]
    fn consistency_matches_naive_and_verifies((old, new, seed) in old_and_new()) {
        let d = leaves(new as usize, seed);
        let store = MemStore::from_leaves(&d);
        let (old_root, new_root) = (naive_mth(&d[..old as usize]), naive_mth(&d));
        prop_assert_eq!(root_hash(old, &store).unwrap(), old_root);

        let proof = consistency_proof(old, new, &store).unwrap();
        prop_assert_eq!(&proof, &naive_proof(old as usize, &d));
        verify_consistency(old, new, &old_root, &new_root, &proof).unwrap();

        let tiles = TileHashReader(MemTiles(&store));
        prop_assert_eq!(&consistency_proof(old, new, &tiles).unwrap(), &proof);

        flip_each_bit_fails(&proof, |p| verify_consistency(old, new, &old_root, &new_root, p));
        prop_assert!(verify_consistency(old, new, &new_root, &old_root, &proof).is_err() || old_root == new_root);
        prop_assert!(verify_consistency(new, old, &new_root, &old_root, &proof).is_err() || old == new);
        prop_assert!(verify_consistency(0, new, &old_root, &new_root, &proof).is_err());
        if !proof.is_empty() {
            prop_assert!(verify_consistency(old, new, &old_root, &new_root, &proof[1..]).is_err());
        }
        let mut longer = proof.clone();
        longer.push(new_root);
        prop_assert!(verify_consistency(old, new, &old_root, &new_root, &longer).is_err());
    }

    /// `append` reports exactly the perfect subtrees a leaf completes, each
    /// with its naive MTH, leaf first and then by increasing level.
    #[test]
    fn compact_range_emits_completed_subtrees(size in 0..=SIZE_MAX, seed in any::<u64>()) {
        let d = leaves(size as usize, seed);
        let mut range = CompactRange::new();
        for (i, leaf) in d.iter().enumerate() {
            let n = i as u64 + 1;
            let mut got = Vec::new();
            range.append(*leaf, |id, h| got.push((id, *h)));
            // Leaf n-1 completes the subtree of 2^level leaves ending at n
            // for every level where n is a multiple of 2^level.
            let mut want = Vec::new();
            for level in 0..=n.trailing_zeros() as u8 {
                let index = (n >> level) - 1;
                let lo = (index << level) as usize;
                want.push((NodeId { level, index }, naive_mth(&d[lo..lo + (1 << level)])));
            }
            prop_assert_eq!(got, want);
        }
        prop_assert_eq!(range.size(), size);
        prop_assert_eq!(range.root(), naive_mth(&d));
        let nodes = subtree_nodes(size);
        prop_assert_eq!(range.hashes().len(), nodes.len());
        for (node, h) in nodes.iter().zip(range.hashes()) {
            let lo = (node.index << node.level) as usize;
            prop_assert_eq!(*h, naive_mth(&d[lo..lo + (1 << node.level)]));
        }
        let rebuilt = CompactRange::from_parts(size, range.hashes().to_vec()).unwrap();
        prop_assert_eq!(&rebuilt, &range);
    }
}

#[test]
fn compact_range_from_parts_checks_shape() {
    let h = leaf_hash(b"x");
    assert!(CompactRange::from_parts(0, vec![]).is_ok());
    assert!(matches!(
        CompactRange::from_parts(0, vec![h]),
        Err(Error::CompactRangeShape { .. })
    ));
    assert!(matches!(
        CompactRange::from_parts(3, vec![h]),
        Err(Error::CompactRangeShape { .. })
    ));
    let mut r = CompactRange::from_parts(3, vec![h, h]).unwrap();
    assert_eq!(r.root(), node_hash(&h, &h));
    r.append(h, |_, _| {});
    assert_eq!(r.hashes(), &[node_hash(&h, &node_hash(&h, &h))]);
}

/// Every size below 300 and every index and old size in it, exhaustively.
#[test]
fn exhaustive_small_trees() {
    let d = leaves(300, 7);
    let store = MemStore::from_leaves(&d);
    let roots: Vec<Hash> = (0..=d.len()).map(|n| naive_mth(&d[..n])).collect();
    for size in 1..=d.len() {
        let root = roots[size];
        assert_eq!(root_hash(size as u64, &store).unwrap(), root);
        for (index, leaf) in d[..size].iter().enumerate() {
            let proof = inclusion_proof(index as u64, size as u64, &store).unwrap();
            verify_inclusion(index as u64, size as u64, leaf, &proof, &root).unwrap();
        }
        for (old, old_root) in roots.iter().enumerate().take(size + 1).skip(1) {
            let proof = consistency_proof(old as u64, size as u64, &store).unwrap();
            verify_consistency(old as u64, size as u64, old_root, &root, &proof).unwrap();
        }
    }
}

/// A tree large enough for level-2 tiles (> 65,536 leaves): tile-derived
/// proofs equal stored-node proofs, and each proof is a single tile read per
/// tile touched.
#[test]
fn tiles_reach_level_two() {
    use std::cell::RefCell;
    struct Counting<'a>(MemTiles<'a>, RefCell<Vec<(u8, u64, u64)>>);
    impl tlog::TileReader for Counting<'_> {
        fn read_tile_hashes(&self, l: u8, first: u64, count: u64) -> Result<Vec<Hash>, Error> {
            self.1.borrow_mut().push((l, first, count));
            self.0.read_tile_hashes(l, first, count)
        }
    }
    let size = 70_000u64;
    let d = leaves(size as usize, 3);
    let store = MemStore::from_leaves(&d);
    let tiles = TileHashReader(Counting(MemTiles(&store), RefCell::new(Vec::new())));
    let root = store.range.root();
    assert_eq!(root_hash(size, &tiles).unwrap(), root);
    for index in [0, 1, 255, 256, 65_535, 65_536, 69_999, 12_345] {
        tiles.0 .1.borrow_mut().clear();
        let proof = inclusion_proof(index, size, &tiles).unwrap();
        let reads = tiles.0 .1.borrow().clone();
        let mut touched: Vec<(u8, u64)> = reads.iter().map(|r| (r.0, r.1 / 256)).collect();
        touched.sort();
        touched.dedup();
        assert_eq!(touched.len(), reads.len(), "one read per tile: {reads:?}");
        assert_eq!(proof, inclusion_proof(index, size, &store).unwrap());
        verify_inclusion(index, size, &d[index as usize], &proof, &root).unwrap();
    }
    for old in [1, 255, 256, 257, 65_536, 65_537, 69_999] {
        let proof = consistency_proof(old, size, &tiles).unwrap();
        assert_eq!(proof, consistency_proof(old, size, &store).unwrap());
    }
}

/// Readers that break their contract are caught, not trusted.
#[test]
fn reader_count_is_checked() {
    struct Short;
    impl HashReader for Short {
        fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, Error> {
            Ok(vec![[0; 32]; nodes.len().saturating_sub(1)])
        }
    }
    assert!(matches!(
        root_hash(5, &Short),
        Err(Error::ReaderCount {
            expected: 2,
            got: 1
        })
    ));
    assert!(matches!(
        inclusion_proof(0, 5, &Short),
        Err(Error::ReaderCount { .. })
    ));
    assert!(matches!(
        consistency_proof(3, 5, &Short),
        Err(Error::ReaderCount { .. })
    ));

    struct ShortTiles;
    impl tlog::TileReader for ShortTiles {
        fn read_tile_hashes(&self, _: u8, _: u64, count: u64) -> Result<Vec<Hash>, Error> {
            Ok(vec![[0; 32]; count as usize + 1])
        }
    }
    assert!(matches!(
        root_hash(5, &TileHashReader(ShortTiles)),
        Err(Error::ReaderCount { .. })
    ));
    // Nodes whose leaves cannot fit in u64 are refused before any read.
    for (level, index) in [
        (64, 0),
        (7, u64::MAX),
        (7, (1 << 57) - 1),
        (0, u64::MAX),
        (8, u64::MAX),
    ] {
        let far = [NodeId { level, index }];
        let got = TileHashReader(ShortTiles).read_hashes(&far);
        assert!(matches!(got, Err(Error::NodeOutOfRange { .. })), "{far:?}");
    }
    // The last level-7 node whose span fits is passed to the tile reader.
    let edge = [NodeId {
        level: 7,
        index: (1 << 57) - 2,
    }];
    let got = TileHashReader(ShortTiles).read_hashes(&edge);
    assert!(matches!(got, Err(Error::ReaderCount { .. })));
}

#[test]
fn argument_errors() {
    let store = MemStore::from_leaves(&leaves(4, 1));
    assert!(matches!(
        inclusion_proof(4, 4, &store),
        Err(Error::IndexOutOfRange { index: 4, size: 4 })
    ));
    assert!(matches!(
        inclusion_proof(0, 0, &store),
        Err(Error::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        consistency_proof(0, 4, &store),
        Err(Error::InvalidSizes { .. })
    ));
    assert!(matches!(
        consistency_proof(3, 2, &store),
        Err(Error::InvalidSizes { .. })
    ));
    assert_eq!(consistency_proof(4, 4, &store).unwrap(), Vec::<Hash>::new());
    // Reading beyond the store is the reader's error, passed through.
    assert!(matches!(root_hash(5, &store), Err(Error::Storage(_))));
}

//! Merkle tree roots and proofs: RFC 9162, sections 2.1.1 (MTH), 2.1.3
//! (inclusion) and 2.1.4 (consistency).
//!
//! Generation works in two steps: work out which perfect subtrees
//! ([`NodeId`]s) a root or proof needs, fetch them all with a single
//! [`HashReader::read_hashes`] call, then fold them. Every hash a proof
//! contains is the Merkle Tree Hash of a leaf range `[lo, hi)` whose start is
//! aligned to the power of two at or above its length, so it is always the
//! right-to-left fold of the perfect subtrees given by the binary digits of
//! `hi - lo`.
//!
//! Verification follows the RFC 9162 algorithms step by step, after checking
//! the proof length against the tree shape so that a wrong length is reported
//! as such.

use crate::hash::{node_hash, Hash, EMPTY_ROOT};
use crate::Error;

/// A perfect subtree: `2^level` leaves starting at leaf `index << level`.
///
/// Level 0 nodes are leaf hashes; a node at level `l` and index `i` is
/// `MTH(D[i * 2^l : (i + 1) * 2^l])` in RFC 9162 section 2.1.1 notation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height of the subtree above the leaves (0 = a single leaf).
    pub level: u8,
    /// Position of the subtree among those of the same level, from the left.
    pub index: u64,
}

/// Where stored hashes enter the crate.
///
/// Contract: `read_hashes` returns exactly `nodes.len()` hashes, the `i`-th
/// being the hash of `nodes[i]`. Callers in this crate check the count and
/// return [`Error::ReaderCount`] on a mismatch; storage failures are reported
/// as [`Error::Storage`]. The crate asks only for perfect subtrees of the
/// tree size it was given, so a reader may treat anything else as an error.
pub trait HashReader {
    /// Returns the hashes of `nodes`, in order.
    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, Error>;
}

impl<R: HashReader + ?Sized> HashReader for &R {
    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, Error> {
        (**self).read_hashes(nodes)
    }
}

/// The perfect subtrees making up a tree of `size` leaves, left to right
/// (largest first): one per set bit of `size`.
///
/// These are the nodes whose right-to-left fold is the tree's root
/// (RFC 9162, section 2.1.1), and the hashes a [`crate::CompactRange`] keeps.
pub fn subtree_nodes(size: u64) -> Vec<NodeId> {
    let mut out = Vec::with_capacity(size.count_ones() as usize);
    push_range_nodes(0, size, &mut out);
    out
}

/// `MTH(D[0:size])`, the root hash of the first `size` leaves
/// (RFC 9162, section 2.1.1); [`EMPTY_ROOT`] for an empty tree.
pub fn root_hash(size: u64, r: &impl HashReader) -> Result<Hash, Error> {
    if size == 0 {
        return Ok(EMPTY_ROOT);
    }
    let hashes = read_ranges(&[(0, size)], r)?;
    Ok(hashes[0])
}

/// The inclusion proof `PATH(index, D[0:size])` of RFC 9162, section
/// 2.1.3.1: sibling hashes from the leaf up to the root.
///
/// Returns [`Error::IndexOutOfRange`] if `index >= size`.
pub fn inclusion_proof(index: u64, size: u64, r: &impl HashReader) -> Result<Vec<Hash>, Error> {
    if index >= size {
        return Err(Error::IndexOutOfRange { index, size });
    }
    let mut ranges = Vec::with_capacity(64);
    path_ranges(index, 0, size, &mut ranges);
    read_ranges(&ranges, r)
}

/// The consistency proof `PROOF(old, D[0:new])` of RFC 9162, section
/// 2.1.4.1.
///
/// Requires `0 < old <= new` ([`Error::InvalidSizes`] otherwise); the proof
/// between equal sizes is empty.
pub fn consistency_proof(old: u64, new: u64, r: &impl HashReader) -> Result<Vec<Hash>, Error> {
    if old == 0 || old > new {
        return Err(Error::InvalidSizes { old, new });
    }
    let mut ranges = Vec::with_capacity(64);
    subproof_ranges(old, 0, new, true, &mut ranges);
    read_ranges(&ranges, r)
}

/// Verifies that `leaf` is the leaf hash at `index` in the tree of `size`
/// leaves with root `root`, following RFC 9162, section 2.1.3.2.
///
/// Fails with [`Error::IndexOutOfRange`] if `index >= size`,
/// [`Error::ProofLength`] if the proof has the wrong number of hashes for
/// that shape, and [`Error::RootMismatch`] if it does not lead to `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), Error> {
    if index >= size {
        return Err(Error::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(Error::ProofLength {
            expected,
            got: proof.len(),
        });
    }
    // RFC 9162, 2.1.3.2, steps 2-5.
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            unreachable!("bad math in verify_inclusion: proof longer than the tree is tall");
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        unreachable!("bad math in verify_inclusion: proof shorter than the tree is tall");
    }
    if r != *root {
        return Err(Error::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `new` leaves with root `new_root` extends the
/// tree of `old` leaves with root `old_root`, following RFC 9162, section
/// 2.1.4.2.
///
/// Edge policy (same as transparency-dev/merkle): `old == 0` is refused as
/// meaningless and `old > new` as time travel ([`Error::InvalidSizes`]);
/// equal sizes need an empty proof and equal roots.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), Error> {
    if old == 0 || old > new {
        return Err(Error::InvalidSizes { old, new });
    }
    if old == new {
        if !proof.is_empty() {
            return Err(Error::ProofLength {
                expected: 0,
                got: proof.len(),
            });
        }
        if old_root != new_root {
            return Err(Error::RootMismatch);
        }
        return Ok(());
    }
    let expected = consistency_proof_len(old, new);
    if proof.len() != expected {
        return Err(Error::ProofLength {
            expected,
            got: proof.len(),
        });
    }
    // RFC 9162, 2.1.4.2. Step 2: if old is a power of two, the proof
    // implicitly starts with old_root; we seed with it instead of prepending.
    let (seed, rest) = if old.is_power_of_two() {
        (old_root, proof)
    } else {
        (&proof[0], &proof[1..])
    };
    // Steps 3-4.
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    let (mut fr, mut sr) = (*seed, *seed);
    // Step 6.
    for c in rest {
        if sn == 0 {
            unreachable!("bad math in verify_consistency: proof longer than the tree is tall");
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn != 0 {
        unreachable!("bad math in verify_consistency: proof shorter than the tree is tall");
    }
    if fr != *old_root || sr != *new_root {
        return Err(Error::RootMismatch);
    }
    Ok(())
}

/// Number of hashes in `PATH(index, D[0:size])`: the levels where the paths
/// to `index` and `size - 1` have diverged (each contributes one sibling),
/// plus one left sibling per set bit above that point.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = (index.checked_shr(inner).unwrap_or(0)).count_ones();
    (inner + border) as usize
}

/// Number of hashes in `PROOF(old, D[0:new])` for `0 < old < new`: the
/// inclusion proof of leaf `old - 1`, minus the levels inside the perfect
/// subtree that ends at `old`, plus that subtree's own hash unless it is the
/// whole old tree.
fn consistency_proof_len(old: u64, new: u64) -> usize {
    let shift = old.trailing_zeros() as usize;
    let full = inclusion_proof_len(old - 1, new);
    let seed = usize::from(!old.is_power_of_two());
    full - shift + seed
}

/// The largest power of two strictly below `n`, for `n >= 2`
/// (the split point `k` of RFC 9162, section 2.1.1).
fn split_point(n: u64) -> u64 {
    if n < 2 {
        unreachable!("bad math in split_point: {n} leaves cannot be split");
    }
    1 << (63 - (n - 1).leading_zeros())
}

/// Appends `PATH(m, D[lo:hi])` (RFC 9162, 2.1.3.1) as leaf ranges whose
/// Merkle Tree Hashes form the proof, leaf to root. `m` is absolute.
fn path_ranges(m: u64, lo: u64, hi: u64, out: &mut Vec<(u64, u64)>) {
    if hi - lo == 1 {
        return;
    }
    let k = split_point(hi - lo);
    if m < lo + k {
        path_ranges(m, lo, lo + k, out);
        out.push((lo + k, hi));
    } else {
        path_ranges(m, lo + k, hi, out);
        out.push((lo, lo + k));
    }
}

/// Appends `SUBPROOF(m, D[lo:hi], b)` (RFC 9162, 2.1.4.1) as leaf ranges.
/// `m` is the absolute old tree size, `lo < m <= hi`.
fn subproof_ranges(m: u64, lo: u64, hi: u64, b: bool, out: &mut Vec<(u64, u64)>) {
    if m == hi {
        if !b {
            out.push((lo, hi));
        }
        return;
    }
    let k = split_point(hi - lo);
    if m <= lo + k {
        subproof_ranges(m, lo, lo + k, b, out);
        out.push((lo + k, hi));
    } else {
        subproof_ranges(m, lo + k, hi, false, out);
        out.push((lo, lo + k));
    }
}

/// Appends the perfect subtrees covering `[lo, hi)`, left to right. `lo`
/// must be aligned to every subtree size used, which holds for the prefix
/// `[0, size)` and for every range the RFC recursions produce.
fn push_range_nodes(lo: u64, hi: u64, out: &mut Vec<NodeId>) {
    let mut start = lo;
    let mut width = hi - lo;
    while width != 0 {
        let level = 63 - width.leading_zeros();
        if start & ((1u64 << level) - 1) != 0 {
            unreachable!("bad math in push_range_nodes: [{lo}, {hi}) is not aligned");
        }
        out.push(NodeId {
            level: level as u8,
            index: start >> level,
        });
        start += 1 << level;
        width -= 1 << level;
    }
}

/// Reads every node of every range in one call and returns each range's
/// Merkle Tree Hash.
fn read_ranges(ranges: &[(u64, u64)], r: &impl HashReader) -> Result<Vec<Hash>, Error> {
    let mut nodes = Vec::with_capacity(ranges.len() * 2);
    let mut ends = Vec::with_capacity(ranges.len());
    for &(lo, hi) in ranges {
        push_range_nodes(lo, hi, &mut nodes);
        ends.push(nodes.len());
    }
    let hashes = read_checked(r, &nodes)?;
    let mut out = Vec::with_capacity(ranges.len());
    let mut start = 0;
    for end in ends {
        out.push(fold_right(&hashes[start..end]));
        start = end;
    }
    Ok(out)
}

/// Calls the reader and checks it kept its side of the contract.
pub(crate) fn read_checked(r: &impl HashReader, nodes: &[NodeId]) -> Result<Vec<Hash>, Error> {
    let hashes = r.read_hashes(nodes)?;
    if hashes.len() != nodes.len() {
        return Err(Error::ReaderCount {
            expected: nodes.len(),
            got: hashes.len(),
        });
    }
    Ok(hashes)
}

/// Folds subtree hashes right to left: `H(h0, H(h1, … H(hn-2, hn-1)))`.
pub(crate) fn fold_right(hashes: &[Hash]) -> Hash {
    let Some((last, rest)) = hashes.split_last() else {
        unreachable!("bad math in fold_right: no hashes to fold");
    };
    rest.iter().rev().fold(*last, |acc, h| node_hash(h, &acc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtree_nodes_follow_binary_digits() {
        assert!(subtree_nodes(0).is_empty());
        assert_eq!(
            subtree_nodes(13),
            vec![
                NodeId { level: 3, index: 0 },
                NodeId { level: 2, index: 2 },
                NodeId {
                    level: 0,
                    index: 12
                },
            ]
        );
        assert_eq!(subtree_nodes(u64::MAX).len(), 64);
    }

    #[test]
    fn split_point_is_largest_power_below() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }

    /// The length formulas must agree with the number of steps the RFC loops
    /// take, or verification would panic; check every small shape.
    #[test]
    fn proof_lengths_match_rfc_ranges() {
        for size in 1..=300u64 {
            for index in 0..size {
                let mut ranges = Vec::new();
                path_ranges(index, 0, size, &mut ranges);
                assert_eq!(
                    ranges.len(),
                    inclusion_proof_len(index, size),
                    "{index}/{size}"
                );
            }
            for old in 1..size {
                let mut ranges = Vec::new();
                subproof_ranges(old, 0, size, true, &mut ranges);
                assert_eq!(
                    ranges.len(),
                    consistency_proof_len(old, size),
                    "{old}->{size}"
                );
            }
        }
    }

    #[test]
    fn huge_trees_do_not_overflow() {
        let zero = [0u8; 32];
        let size = u64::MAX;
        // Leaf 0 has a sibling on each of the 64 levels; the last leaf only
        // one left sibling per set bit of the leaves before it.
        for (index, want) in [(0, 64), (size - 1, 63), (size / 2, 64)] {
            let n = inclusion_proof_len(index, size);
            assert_eq!(n, want, "index {index}");
            let proof = vec![zero; n];
            assert!(matches!(
                verify_inclusion(index, size, &zero, &proof, &zero),
                Err(Error::RootMismatch)
            ));
        }
        for old in [1, 2, 3, size / 2, size - 1] {
            let proof = vec![zero; consistency_proof_len(old, size)];
            assert!(matches!(
                verify_consistency(old, size, &zero, &zero, &proof),
                Err(Error::RootMismatch)
            ));
        }
    }
}

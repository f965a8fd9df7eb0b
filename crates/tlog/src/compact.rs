//! The right edge of a Merkle tree: a "compact range" from leaf 0.
//!
//! A tree of `size` leaves is the right-to-left fold of its perfect subtrees
//! (one per set bit of `size`, RFC 9162 section 2.1.1), so those few hashes
//! are all an appender needs to keep to extend the tree and compute its root.

use crate::hash::{node_hash, Hash, EMPTY_ROOT};
use crate::tree::{fold_right, NodeId};
use crate::Error;

/// The right edge of a tree ("compact range" from 0): the roots of the
/// perfect subtrees of [`crate::subtree_nodes`]`(size)`, left to right.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    hashes: Vec<Hash>,
}

impl CompactRange {
    /// The range of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a range from a stored size and the hashes of
    /// [`crate::subtree_nodes`]`(size)`, in that order.
    ///
    /// Fails with [`Error::CompactRangeShape`] unless
    /// `hashes.len() == size.count_ones()`. The hashes themselves cannot be
    /// checked here; compare [`CompactRange::root`] with a trusted root.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<Self, Error> {
        let expected = size.count_ones() as usize;
        if hashes.len() != expected {
            return Err(Error::CompactRangeShape {
                size,
                expected,
                got: hashes.len(),
            });
        }
        Ok(Self { size, hashes })
    }

    /// Number of leaves covered.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree hashes, largest (leftmost) first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// The Merkle Tree Hash of all leaves so far (RFC 9162, section 2.1.1);
    /// [`EMPTY_ROOT`] when empty.
    pub fn root(&self) -> Hash {
        if self.hashes.is_empty() {
            return EMPTY_ROOT;
        }
        fold_right(&self.hashes)
    }

    /// Appends one leaf hash.
    ///
    /// Calls `on_node` for the leaf itself (level 0) and then for every
    /// perfect subtree the leaf completes (level 1, 2, …), in increasing
    /// level order, so a caller can store every node hash as it appears.
    ///
    /// # Panics
    ///
    /// If the range already holds `u64::MAX` leaves.
    pub fn append(&mut self, leaf: Hash, mut on_node: impl FnMut(NodeId, &Hash)) {
        let index = self.size;
        let new_size = index
            .checked_add(1)
            .expect("compact range is full: u64::MAX leaves");
        on_node(NodeId { level: 0, index }, &leaf);
        // Each trailing one bit of the old size is a subtree of the same
        // height as the one being carried; merge them pairwise.
        let mut carry = leaf;
        for level in 1..=index.trailing_ones() {
            let Some(left) = self.hashes.pop() else {
                unreachable!("bad math in CompactRange::append: missing subtree");
            };
            carry = node_hash(&left, &carry);
            on_node(
                NodeId {
                    level: level as u8,
                    index: (new_size >> level) - 1,
                },
                &carry,
            );
        }
        self.hashes.push(carry);
        self.size = new_size;
        if self.hashes.len() != self.size.count_ones() as usize {
            unreachable!("bad math in CompactRange::append: shape lost");
        }
    }
}

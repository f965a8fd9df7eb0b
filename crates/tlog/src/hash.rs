//! RFC 9162 Merkle tree hashing (section 2.1.1) with SHA-256.
//!
//! Leaves and interior nodes are domain-separated by a one-byte prefix so a
//! leaf can never be passed off as a node (RFC 9162, section 2.1.1).

use sha2::{Digest, Sha256};

/// Size in bytes of every hash in the tree (SHA-256).
pub const HASH_SIZE: usize = 32;

/// A SHA-256 Merkle tree hash.
pub type Hash = [u8; HASH_SIZE];

/// `MTH({})`, the root of the empty tree: SHA-256 of the empty string
/// (RFC 9162, section 2.1.1).
pub const EMPTY_ROOT: Hash =
    hex_hash("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

/// The leaf hash of an entry: `SHA-256(0x00 || entry)` (RFC 9162, section 2.1.1).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    h.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`
/// (RFC 9162, section 2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Decodes a 64-digit lowercase hex string at compile time.
const fn hex_hash(s: &str) -> Hash {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lowercase hex digit"),
        }
    }
    let b = s.as_bytes();
    assert!(b.len() == 2 * HASH_SIZE);
    let mut out = [0u8; HASH_SIZE];
    let mut i = 0;
    while i < HASH_SIZE {
        out[i] = nibble(b[2 * i]) << 4 | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        let want: Hash = Sha256::digest(b"").into();
        assert_eq!(EMPTY_ROOT, want);
    }

    #[test]
    fn leaf_and_node_are_domain_separated() {
        let a = leaf_hash(b"a");
        let mut joined = Vec::new();
        joined.extend_from_slice(&a);
        joined.extend_from_slice(&a);
        // A 64-byte leaf whose content equals two hashes must not collide with the node.
        assert_ne!(leaf_hash(&joined), node_hash(&a, &a));
    }
}

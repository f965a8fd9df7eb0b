//! The pure core of a transparency log: RFC 9162 Merkle tree hashing,
//! proofs and their verification, compact ranges, C2SP tlog-tiles paths and
//! entry bundles, C2SP signed notes (Ed25519) and C2SP tlog-checkpoints.
//!
//! What is deliberately absent: this crate opens no files, makes no network
//! calls, reads no clock and knows nothing of SQLite or HTTP. Stored hashes
//! enter through one small trait, [`HashReader`] (or [`TileReader`] adapted
//! by [`TileHashReader`]); everything else is computation on values.
//!
//! Untrusted input (proofs, paths, bundles, notes, keys, checkpoints) is
//! answered with [`Error`]; an impossible state of this crate's own index
//! arithmetic panics with `unreachable!("bad math in …")`.
//!
//! Code map:
//! - `hash.rs`: [`leaf_hash`], [`node_hash`], [`EMPTY_ROOT`].
//! - `tree.rs`: [`NodeId`], [`HashReader`], roots, proof generation and
//!   verification.
//! - `compact.rs`: [`CompactRange`], the right edge an appender keeps.
//! - `tile.rs`: tile paths, entry bundles, [`TileHashReader`].
//! - `note.rs`: signed notes, [`Signer`], [`Verifier`].
//! - `checkpoint.rs`: [`Checkpoint`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod checkpoint;
mod compact;
mod error;
mod hash;
mod note;
mod tile;
mod tree;

pub use checkpoint::{open_checkpoint, Checkpoint};
pub use compact::CompactRange;
pub use error::Error;
pub use hash::{leaf_hash, node_hash, Hash, EMPTY_ROOT, HASH_SIZE};
pub use note::{
    key_id, open_note, sign_note, Note, Signer, Verifier, KEY_TYPE_ED25519, NOTE_BYTES_MAX,
    NOTE_SIGNATURES_MAX,
};
pub use tile::{
    encode_bundle, encode_tile_index, entry_tiles_for_size, parse_bundle, tiles_for_size,
    TileHashReader, TileKind, TileReader, TileRef, BUNDLE_ENTRIES_MAX, ENTRY_BYTES_MAX,
    TILE_HEIGHT, TILE_LEVEL_MAX, TILE_WIDTH,
};
pub use tree::{
    consistency_proof, inclusion_proof, root_hash, subtree_nodes, verify_consistency,
    verify_inclusion, HashReader, NodeId,
};

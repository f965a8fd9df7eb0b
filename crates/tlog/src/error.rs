//! The one error type of the crate.
//!
//! Every variant describes untrusted input (a proof, a path, a note, a key) or
//! a storage failure reported through [`crate::HashReader`] /
//! [`crate::TileReader`]. Mistakes in this crate's own index arithmetic are
//! not errors: they panic with `unreachable!("bad math in …")`.

/// Everything that can go wrong when handling untrusted input or storage.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A [`crate::HashReader`] or [`crate::TileReader`] could not read from
    /// its storage. Readers put their own description (I/O error, missing
    /// tile, …) in the string.
    #[error("storage: {0}")]
    Storage(String),

    /// A reader returned a different number of hashes than it was asked for.
    #[error("reader returned {got} hashes, expected {expected}")]
    ReaderCount {
        /// How many hashes were requested.
        expected: usize,
        /// How many the reader returned.
        got: usize,
    },

    /// A node outside any possible tree (level above 63, or an index whose
    /// leaves would not fit in `u64`) was asked of a reader.
    #[error("node at level {level} index {index} lies outside any tree")]
    NodeOutOfRange {
        /// Level of the requested node.
        level: u8,
        /// Index of the requested node.
        index: u64,
    },

    /// A leaf index is not inside the tree (`index >= size`).
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },

    /// Tree sizes for a consistency proof are not `0 < old <= new`.
    #[error("tree sizes old={old} new={new} do not satisfy 0 < old <= new")]
    InvalidSizes {
        /// The older tree size.
        old: u64,
        /// The newer tree size.
        new: u64,
    },

    /// A proof has the wrong number of hashes for its tree sizes.
    #[error("proof has {got} hashes, expected {expected}")]
    ProofLength {
        /// Number of hashes the tree shape requires.
        expected: usize,
        /// Number of hashes the proof holds.
        got: usize,
    },

    /// A proof does not lead to the expected root hash(es).
    #[error("proof does not match the root hash")]
    RootMismatch,

    /// [`crate::CompactRange::from_parts`] got a hash count that does not fit
    /// the size.
    #[error("compact range of size {size} needs {expected} hashes, got {got}")]
    CompactRangeShape {
        /// The range size.
        size: u64,
        /// `size.count_ones()`.
        expected: usize,
        /// Number of hashes given.
        got: usize,
    },

    /// A tile path does not have the exact C2SP tlog-tiles form.
    #[error("malformed tile path: {0}")]
    TilePath(&'static str),

    /// A tile reference has a level or width outside the C2SP tlog-tiles
    /// ranges.
    #[error("invalid tile: {0}")]
    InvalidTile(&'static str),

    /// An entry is longer than [`crate::ENTRY_BYTES_MAX`] and cannot be
    /// framed in an entry bundle.
    #[error("entry of {len} bytes exceeds the {max}-byte limit")]
    EntryTooLarge {
        /// Length of the offending entry.
        len: usize,
        /// [`crate::ENTRY_BYTES_MAX`].
        max: usize,
    },

    /// An entry bundle is malformed (truncated, or too many entries).
    #[error("malformed entry bundle: {0}")]
    Bundle(&'static str),

    /// A signed note does not follow the C2SP signed-note format.
    #[error("malformed note: {0}")]
    MalformedNote(&'static str),

    /// A signer or verifier key string is malformed.
    #[error("malformed key: {0}")]
    MalformedKey(&'static str),

    /// A key's stated ID differs from the ID computed from its name and
    /// public key.
    #[error("key id {stated:08x} does not match computed id {computed:08x}")]
    KeyIdMismatch {
        /// The ID written in the key string.
        stated: u32,
        /// The ID computed per C2SP signed-note.
        computed: u32,
    },

    /// A key uses a signature type other than Ed25519 (0x01).
    #[error("unsupported key type 0x{0:02x}")]
    UnsupportedKeyType(u8),

    /// A signature from a known key failed to verify.
    #[error("invalid signature for key {name}+{key_id:08x}")]
    BadSignature {
        /// Key name of the signature line.
        name: String,
        /// Key ID of the signature line.
        key_id: u32,
    },

    /// Two of the given verifiers share both name and key ID.
    #[error("ambiguous verifiers for key {name}+{key_id:08x}")]
    AmbiguousVerifier {
        /// The shared key name.
        name: String,
        /// The shared key ID.
        key_id: u32,
    },

    /// No signature from any of the given verifiers is present on the note.
    #[error("note has no signature from a known key")]
    NoVerifiedSignature,

    /// [`crate::sign_note`] was called without signers.
    #[error("no signers given")]
    NoSigners,

    /// The operating system's random number generator failed.
    #[error("random number generator: {0}")]
    Random(String),

    /// A checkpoint body does not follow C2SP tlog-checkpoint.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),

    /// A checkpoint's origin line differs from the verifier's key name.
    #[error("checkpoint origin {origin:?} does not match key name {expected:?}")]
    OriginMismatch {
        /// Origin line of the checkpoint.
        origin: String,
        /// Key name of the verifier.
        expected: String,
    },
}

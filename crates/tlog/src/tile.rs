//! C2SP tlog-tiles: tile paths, entry bundles, and reading tree nodes out of
//! tiles.
//!
//! A tile at level `L` holds up to 256 consecutive hashes at tree height
//! `8 * L` ("Merkle Tree" section of c2sp.org/tlog-tiles); the levels in
//! between are recomputed by hashing, which [`TileHashReader`] does.

use crate::hash::{node_hash, Hash};
use crate::tree::{HashReader, NodeId};
use crate::Error;

/// Tree levels spanned by one tile (c2sp.org/tlog-tiles, "Merkle Tree").
pub const TILE_HEIGHT: u8 = 8;

/// Hashes in a full tile, and entries in a full entry bundle
/// (c2sp.org/tlog-tiles, "Merkle Tree" and "Log entries").
pub const TILE_WIDTH: u64 = 256;

/// Largest entry an entry bundle can frame: its length prefix is a
/// big-endian uint16 (c2sp.org/tlog-tiles, "Log entries").
pub const ENTRY_BYTES_MAX: usize = 65535;

/// Highest hash tile level a path may name (c2sp.org/tlog-tiles: "between
/// 0 and 63").
pub const TILE_LEVEL_MAX: u8 = 63;

/// Most entries [`parse_bundle`] accepts and [`encode_bundle`] writes: one
/// full bundle.
pub const BUNDLE_ENTRIES_MAX: usize = TILE_WIDTH as usize;

const _: () = assert!(TILE_WIDTH == 1 << TILE_HEIGHT);
const _: () = assert!(ENTRY_BYTES_MAX == u16::MAX as usize);

/// What a tile holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileKind {
    /// Merkle tree hashes at tile level `L` (tree height `8 * L`), served at
    /// `tile/<L>/<N>[.p/<W>]`.
    Hash(u8),
    /// An entry bundle, served at `tile/entries/<N>[.p/<W>]`.
    Entries,
}

/// One tile or entry bundle of a tiled log (c2sp.org/tlog-tiles).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileRef {
    /// Hash tile of a level, or entry bundle.
    pub kind: TileKind,
    /// Tile index `N` within its level.
    pub index: u64,
    /// Number of hashes or entries, `1..=256`; 256 is a full tile and has no
    /// `.p/<W>` suffix.
    pub width: u64,
}

impl TileRef {
    /// A tile reference, checked: level at most [`TILE_LEVEL_MAX`] and width
    /// in `1..=256` ([`Error::InvalidTile`] otherwise).
    pub fn new(kind: TileKind, index: u64, width: u64) -> Result<TileRef, Error> {
        if let TileKind::Hash(level) = kind {
            if level > TILE_LEVEL_MAX {
                return Err(Error::InvalidTile("level above 63"));
            }
        }
        if width == 0 || width > TILE_WIDTH {
            return Err(Error::InvalidTile("width not in 1..=256"));
        }
        Ok(TileRef { kind, index, width })
    }

    /// The path of the tile, `tile/<L>/<N>[.p/<W>]` or
    /// `tile/entries/<N>[.p/<W>]`, with `<N>` encoded by
    /// [`encode_tile_index`] (c2sp.org/tlog-tiles, "Merkle Tree").
    ///
    /// # Panics
    ///
    /// If the level or width is out of range; build untrusted references
    /// with [`TileRef::new`] or [`TileRef::parse`].
    pub fn path(&self) -> String {
        assert!(
            (1..=TILE_WIDTH).contains(&self.width),
            "tile width {} not in 1..=256",
            self.width
        );
        let mut p = match self.kind {
            TileKind::Hash(level) => {
                assert!(level <= TILE_LEVEL_MAX, "tile level {level} above 63");
                format!("tile/{level}/")
            }
            TileKind::Entries => "tile/entries/".to_string(),
        };
        p.push_str(&encode_tile_index(self.index));
        if self.width < TILE_WIDTH {
            p.push_str(&format!(".p/{}", self.width));
        }
        p
    }

    /// Parses a tile path, accepting exactly what [`TileRef::path`]
    /// produces: the `tile/` prefix and no leading slash, a level in 0..=63
    /// or `entries` without leading zeros, 3-digit index groups all but the
    /// last prefixed with `x` and no all-zero leading group, and `.p/<W>`
    /// only with `W` in 1..=255 without leading zeros.
    pub fn parse(path: &str) -> Result<TileRef, Error> {
        let rest = path
            .strip_prefix("tile/")
            .ok_or(Error::TilePath("missing tile/ prefix"))?;
        let mut parts = rest.split('/');
        let kind_part = parts.next().ok_or(Error::TilePath("missing level"))?;
        let kind = if kind_part == "entries" {
            TileKind::Entries
        } else {
            let level = parse_decimal(kind_part, 2).ok_or(Error::TilePath("bad level"))?;
            if level > u64::from(TILE_LEVEL_MAX) {
                return Err(Error::TilePath("level above 63"));
            }
            TileKind::Hash(level as u8)
        };

        let mut index: u64 = 0;
        let mut groups = 0;
        let mut partial = false;
        loop {
            let part = parts.next().ok_or(Error::TilePath("missing index"))?;
            let (digits, last) = match part.strip_prefix('x') {
                Some(d) => (d, false),
                None => match part.strip_suffix(".p") {
                    Some(d) => {
                        partial = true;
                        (d, true)
                    }
                    None => (part, true),
                },
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::TilePath("index group is not 3 digits"));
            }
            let group: u64 = digits
                .parse()
                .map_err(|_| Error::TilePath("bad index group"))?;
            if groups == 0 && !last && group == 0 {
                return Err(Error::TilePath("leading zero index group"));
            }
            index = index
                .checked_mul(1000)
                .and_then(|i| i.checked_add(group))
                .ok_or(Error::TilePath("index overflows u64"))?;
            groups += 1;
            if last {
                break;
            }
        }

        let width = if partial {
            let w = parts
                .next()
                .ok_or(Error::TilePath("missing partial width"))?;
            let w = parse_decimal(w, 3).ok_or(Error::TilePath("bad partial width"))?;
            if w == 0 || w >= TILE_WIDTH {
                return Err(Error::TilePath("partial width not in 1..=255"));
            }
            w
        } else {
            TILE_WIDTH
        };
        if parts.next().is_some() {
            return Err(Error::TilePath("trailing path elements"));
        }
        Ok(TileRef { kind, index, width })
    }
}

/// Parses a canonical decimal of at most `max_digits` digits: ASCII digits
/// only, no sign, no leading zeros except `0` itself.
fn parse_decimal(s: &str, max_digits: usize) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > max_digits || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.len() > 1 && b[0] == b'0' {
        return None;
    }
    s.parse().ok()
}

/// Encodes a tile index as zero-padded 3-digit path elements, all but the
/// last prefixed with `x`: 1234067 becomes `x001/x234/067`
/// (c2sp.org/tlog-tiles, "Merkle Tree").
pub fn encode_tile_index(n: u64) -> String {
    let mut groups = Vec::with_capacity(7);
    let mut rest = n;
    loop {
        groups.push(rest % 1000);
        rest /= 1000;
        if rest == 0 {
            break;
        }
    }
    let mut out = String::with_capacity(groups.len() * 5);
    for (i, g) in groups.iter().rev().enumerate() {
        if i + 1 < groups.len() {
            out.push_str(&format!("x{g:03}/"));
        } else {
            out.push_str(&format!("{g:03}"));
        }
    }
    out
}

/// Appends an entry bundle to `out`: each entry as a big-endian uint16
/// length followed by its bytes (c2sp.org/tlog-tiles, "Log entries").
///
/// Fails, writing nothing, if an entry is longer than [`ENTRY_BYTES_MAX`]
/// ([`Error::EntryTooLarge`]) or there are more than
/// [`BUNDLE_ENTRIES_MAX`] entries ([`Error::Bundle`]).
pub fn encode_bundle(entries: &[&[u8]], out: &mut Vec<u8>) -> Result<(), Error> {
    if entries.len() > BUNDLE_ENTRIES_MAX {
        return Err(Error::Bundle("more than 256 entries"));
    }
    let mut total = 0;
    for e in entries {
        if e.len() > ENTRY_BYTES_MAX {
            return Err(Error::EntryTooLarge {
                len: e.len(),
                max: ENTRY_BYTES_MAX,
            });
        }
        total += 2 + e.len();
    }
    out.reserve(total);
    for e in entries {
        let len =
            u16::try_from(e.len()).unwrap_or_else(|_| unreachable!("bad math in encode_bundle"));
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(())
}

/// Splits an entry bundle into its entries (c2sp.org/tlog-tiles, "Log
/// entries").
///
/// Strict: fails on a truncated length prefix or entry, and on more than
/// [`BUNDLE_ENTRIES_MAX`] entries. An empty input is an empty bundle; callers
/// should compare the entry count with the width they expect.
pub fn parse_bundle(bytes: &[u8]) -> Result<Vec<&[u8]>, Error> {
    let mut entries = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        if entries.len() == BUNDLE_ENTRIES_MAX {
            return Err(Error::Bundle("more than 256 entries"));
        }
        let [hi, lo, tail @ ..] = rest else {
            return Err(Error::Bundle("truncated length prefix"));
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if tail.len() < len {
            return Err(Error::Bundle("truncated entry"));
        }
        let (entry, tail) = tail.split_at(len);
        entries.push(entry);
        rest = tail;
    }
    Ok(entries)
}

/// The hash tiles at tile level `level` of a tree of `size` leaves: every
/// full tile, then the partial one if any (width
/// `floor(size / 256^level) mod 256`, c2sp.org/tlog-tiles "Partial Tiles").
///
/// Allocates one [`TileRef`] per tile (`size / 256^(level+1)` of them);
/// empty for levels the tree does not reach.
pub fn tiles_for_size(level: u8, size: u64) -> Vec<TileRef> {
    if level > TILE_LEVEL_MAX {
        return Vec::new();
    }
    tiles(TileKind::Hash(level), level, size)
}

/// The entry bundles of a tree of `size` leaves: every full bundle, then the
/// partial one if any (c2sp.org/tlog-tiles, "Log entries").
pub fn entry_tiles_for_size(size: u64) -> Vec<TileRef> {
    tiles(TileKind::Entries, 0, size)
}

fn tiles(kind: TileKind, level: u8, size: u64) -> Vec<TileRef> {
    let shift = u32::from(level) * u32::from(TILE_HEIGHT);
    let hashes = size.checked_shr(shift).unwrap_or(0);
    let full = hashes / TILE_WIDTH;
    let partial = hashes % TILE_WIDTH;
    let mut out: Vec<TileRef> = (0..full)
        .map(|index| TileRef {
            kind,
            index,
            width: TILE_WIDTH,
        })
        .collect();
    if partial != 0 {
        out.push(TileRef {
            kind,
            index: full,
            width: partial,
        });
    }
    out
}

/// Reads hashes stored in tiles.
///
/// `read_tile_hashes(L, first, count)` returns the `count` consecutive hashes
/// at tree height `8 * L` starting at `first` (counted in hashes at that
/// height, not in tiles), i.e. positions `first % 256 ..` of tile
/// `first / 256` onwards. It must return exactly `count` hashes
/// ([`Error::ReaderCount`] otherwise) and report storage failures as
/// [`Error::Storage`]. [`TileHashReader`] never asks for a range crossing a
/// tile boundary, nor for hashes outside the tree it was asked about.
pub trait TileReader {
    /// Returns `count` hashes at tile level `tile_level` starting at `first`.
    fn read_tile_hashes(&self, tile_level: u8, first: u64, count: u64) -> Result<Vec<Hash>, Error>;
}

impl<T: TileReader + ?Sized> TileReader for &T {
    fn read_tile_hashes(&self, tile_level: u8, first: u64, count: u64) -> Result<Vec<Hash>, Error> {
        (**self).read_tile_hashes(tile_level, first, count)
    }
}

/// Adapts a [`TileReader`] into a [`HashReader`].
///
/// A node at tree level `h` is read directly when `h % 8 == 0`; otherwise it
/// is computed from the `2^(h % 8)` hashes at tile level `h / 8` below it.
/// Each call makes one tile read per tile touched, covering the span of the
/// nodes requested from that tile.
pub struct TileHashReader<T: TileReader>(pub T);

impl<T: TileReader> HashReader for TileHashReader<T> {
    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, Error> {
        // (tile level, tile index, position in `nodes`, first hash, end hash)
        let mut spans = Vec::with_capacity(nodes.len());
        for (pos, node) in nodes.iter().enumerate() {
            // The 2^sub hashes at the tile level below the node, [first, end).
            // Nodes whose span does not fit u64 lie beyond any tree.
            let sub = node.level % TILE_HEIGHT;
            let first = node.index.checked_mul(1 << sub);
            let end = first.and_then(|f| f.checked_add(1 << sub));
            let (Some(first), Some(end), true) = (first, end, node.level <= TILE_LEVEL_MAX) else {
                return Err(Error::NodeOutOfRange {
                    level: node.level,
                    index: node.index,
                });
            };
            spans.push((
                node.level / TILE_HEIGHT,
                first / TILE_WIDTH,
                pos,
                first,
                end,
            ));
        }
        spans.sort_unstable();

        let mut out = vec![[0u8; 32]; nodes.len()];
        for group in spans.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let tile_level = group[0].0;
            let lo = group
                .iter()
                .map(|s| s.3)
                .min()
                .unwrap_or_else(|| unreachable!("bad math in TileHashReader: empty group"));
            let hi = group
                .iter()
                .map(|s| s.4)
                .max()
                .unwrap_or_else(|| unreachable!("bad math in TileHashReader: empty group"));
            let hashes = self.0.read_tile_hashes(tile_level, lo, hi - lo)?;
            if hashes.len() as u64 != hi - lo {
                return Err(Error::ReaderCount {
                    expected: (hi - lo) as usize,
                    got: hashes.len(),
                });
            }
            for &(_, _, pos, first, end) in group {
                out[pos] = perfect_root(&hashes[(first - lo) as usize..(end - lo) as usize]);
            }
        }
        Ok(out)
    }
}

/// The root of a perfect subtree given its `2^k` bottom hashes, `k <= 7`.
fn perfect_root(bottom: &[Hash]) -> Hash {
    if !bottom.len().is_power_of_two() || bottom.len() > TILE_WIDTH as usize / 2 {
        unreachable!("bad math in perfect_root: {} hashes", bottom.len());
    }
    if bottom.len() == 1 {
        return bottom[0];
    }
    let mut buf = [[0u8; 32]; TILE_WIDTH as usize / 4];
    let mut n = bottom.len() / 2;
    for i in 0..n {
        buf[i] = node_hash(&bottom[2 * i], &bottom[2 * i + 1]);
    }
    while n > 1 {
        n /= 2;
        for i in 0..n {
            buf[i] = node_hash(&buf[2 * i], &buf[2 * i + 1]);
        }
    }
    buf[0]
}

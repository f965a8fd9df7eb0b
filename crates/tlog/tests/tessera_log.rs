//! Interoperability: a 15-entry tlog-tiles log written by Trillian Tessera
//! (`testdata/tessera-log`). Every checkpoint must open with the
//! log's key and match the root recomputed from the entry bundles and from
//! the hash tiles.

mod common;

use std::collections::HashMap;
use std::fs;

use common::vectors_dir;
use tlog::{
    entry_tiles_for_size, inclusion_proof, leaf_hash, open_checkpoint, parse_bundle, root_hash,
    tiles_for_size, verify_inclusion, CompactRange, Error, Hash, TileHashReader, TileReader,
    TileRef, Verifier, TILE_WIDTH,
};

const VKEY: &str = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";
const WORDS: [&str; 15] = [
    "one", "two", "three", "four", "five", "six", "seven", "eit", "nain", "ten", "ileven", "twelf",
    "threeten", "fourten", "fivten",
];

/// Tiles of one tree size, keyed by tile level and tile index.
struct FileTiles(HashMap<(u8, u64), Vec<Hash>>);

impl FileTiles {
    fn load(size: u64) -> FileTiles {
        let mut tiles = HashMap::new();
        for level in 0..8 {
            for t in tiles_for_size(level, size) {
                let bytes = fs::read(vectors_dir().join("tessera-log").join(t.path())).unwrap();
                assert_eq!(bytes.len() as u64, t.width * 32, "{}", t.path());
                let hashes = bytes.chunks(32).map(|c| c.try_into().unwrap()).collect();
                tiles.insert((level, t.index), hashes);
            }
        }
        FileTiles(tiles)
    }
}

impl TileReader for FileTiles {
    fn read_tile_hashes(&self, tile_level: u8, first: u64, count: u64) -> Result<Vec<Hash>, Error> {
        let tile = self
            .0
            .get(&(tile_level, first / TILE_WIDTH))
            .ok_or_else(|| {
                Error::Storage(format!("no tile {tile_level}/{}", first / TILE_WIDTH))
            })?;
        let start = (first % TILE_WIDTH) as usize;
        tile.get(start..start + count as usize)
            .map(<[Hash]>::to_vec)
            .ok_or_else(|| Error::Storage("short tile".into()))
    }
}

#[test]
fn every_checkpoint_matches_tiles_and_entries() {
    let verifier = Verifier::parse(VKEY).unwrap();
    assert_eq!(verifier.name(), "example.com/log/testdata");
    assert_eq!(verifier.key_id(), 0x33d7b496);
    assert_eq!(verifier.vkey(), VKEY);
    let dir = vectors_dir().join("tessera-log");

    for n in 0..=15u64 {
        let note = fs::read_to_string(dir.join(format!("checkpoint.{n}"))).unwrap();
        let cp =
            open_checkpoint(&note, &verifier).unwrap_or_else(|e| panic!("checkpoint.{n}: {e}"));
        assert_eq!(cp.size, n);
        assert_eq!(cp.origin, "example.com/log/testdata");

        // Entries, from the bundles, hashed and appended.
        let mut range = CompactRange::new();
        let mut leaf_hashes = Vec::new();
        let mut entries: Vec<Vec<u8>> = Vec::new();
        for t in entry_tiles_for_size(n) {
            let bytes = fs::read(dir.join(t.path())).unwrap();
            let bundle = parse_bundle(&bytes).unwrap();
            assert_eq!(bundle.len() as u64, t.width);
            entries.extend(bundle.iter().map(|e| e.to_vec()));
        }
        assert_eq!(entries.len() as u64, n);
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e, WORDS[i].as_bytes());
            let h = leaf_hash(e);
            leaf_hashes.push(h);
            range.append(h, |_, _| {});
        }
        assert_eq!(range.root(), cp.root, "root from entries at size {n}");

        // Hash tiles: level 0 holds the leaf hashes; the root and every
        // inclusion proof can be computed from the tiles alone.
        let tiles = FileTiles::load(n);
        if n > 0 {
            let path = format!("tile/0/000.p/{n}");
            assert_eq!(TileRef::parse(&path).unwrap().path(), path);
            assert_eq!(tiles.0[&(0, 0)], leaf_hashes, "tile/0 at size {n}");
        }
        let reader = TileHashReader(&tiles);
        assert_eq!(
            root_hash(n, &reader).unwrap(),
            cp.root,
            "root from tiles at size {n}"
        );
        for (i, leaf) in leaf_hashes.iter().enumerate() {
            let proof = inclusion_proof(i as u64, n, &reader).unwrap();
            verify_inclusion(i as u64, n, leaf, &proof, &cp.root).unwrap();
        }
    }

    // `checkpoint` is the latest one.
    let latest = fs::read_to_string(dir.join("checkpoint")).unwrap();
    assert_eq!(open_checkpoint(&latest, &verifier).unwrap().size, 15);
}

#[test]
fn checkpoint_with_another_key_is_refused() {
    let (_, _, vkey) = tlog::Signer::generate("example.com/log/testdata").unwrap();
    let other = Verifier::parse(&vkey).unwrap();
    let note = fs::read_to_string(vectors_dir().join("tessera-log/checkpoint.15")).unwrap();
    assert!(matches!(
        open_checkpoint(&note, &other),
        Err(Error::NoVerifiedSignature)
    ));
}

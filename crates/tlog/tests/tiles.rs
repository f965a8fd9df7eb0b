//! Tile paths, tile lists and entry bundles (c2sp.org/tlog-tiles).

use proptest::prelude::*;
use tlog::{
    encode_bundle, encode_tile_index, entry_tiles_for_size, parse_bundle, tiles_for_size, Error,
    TileKind, TileRef, ENTRY_BYTES_MAX,
};

#[test]
fn tile_index_encoding() {
    assert_eq!(encode_tile_index(0), "000");
    assert_eq!(encode_tile_index(5), "005");
    assert_eq!(encode_tile_index(999), "999");
    assert_eq!(encode_tile_index(1000), "x001/000");
    assert_eq!(encode_tile_index(1234067), "x001/x234/067");
    assert_eq!(
        encode_tile_index(u64::MAX),
        "x018/x446/x744/x073/x709/x551/615"
    );
}

#[test]
fn tile_paths() {
    let cases = [
        (
            TileRef {
                kind: TileKind::Hash(0),
                index: 1234,
                width: 5,
            },
            "tile/0/x001/234.p/5",
        ),
        (
            TileRef {
                kind: TileKind::Entries,
                index: 0,
                width: 256,
            },
            "tile/entries/000",
        ),
        (
            TileRef {
                kind: TileKind::Hash(2),
                index: 67,
                width: 256,
            },
            "tile/2/067",
        ),
        (
            TileRef {
                kind: TileKind::Hash(63),
                index: 1234067,
                width: 255,
            },
            "tile/63/x001/x234/067.p/255",
        ),
        (
            TileRef {
                kind: TileKind::Entries,
                index: 1000,
                width: 1,
            },
            "tile/entries/x001/000.p/1",
        ),
        (
            TileRef {
                kind: TileKind::Hash(1),
                index: u64::MAX,
                width: 256,
            },
            "tile/1/x018/x446/x744/x073/x709/x551/615",
        ),
    ];
    for (t, p) in cases {
        assert_eq!(t.path(), p);
        assert_eq!(TileRef::parse(p).unwrap(), t, "{p}");
    }
}

#[test]
fn malformed_tile_paths_are_rejected() {
    let bad = [
        "",
        "tile",
        "tile/",
        "/tile/0/000",
        "tile/0/000/",
        "tile//000",
        "tiles/0/000",
        "tile/00/000",
        "tile/01/000",
        "tile/64/000",
        "tile/100/000",
        "tile/-1/000",
        "tile/+1/000",
        "tile/a/000",
        "tile/entry/000",
        "tile/Entries/000",
        "tile/0",
        "tile/0/",
        "tile/0/00",
        "tile/0/0000",
        "tile/0/1",
        "tile/0/x001",
        "tile/0/x001/",
        "tile/0/001/002",
        "tile/0/x000/001",
        "tile/0/x00/001",
        "tile/0/y001/002",
        "tile/0/X001/002",
        "tile/0/x001/x002",
        "tile/0/x018/x446/x744/x073/x709/x551/616",
        "tile/0/x001/x000/x000/x000/x000/x000/x000/000",
        "tile/0/000.p",
        "tile/0/000.p/",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/05",
        "tile/0/000.p/+5",
        "tile/0/000.p/5/",
        "tile/0/000.p/5/6",
        "tile/0/000.P/5",
        "tile/0/000.q/5",
        "tile/0/x001.p/5",
        "tile/0/000/.p/5",
        "tile/0/ 000",
        "tile/0/000 ",
        "tile/0/٠٠٠",
        "tile/entries/000.p/256",
        "tile/entries/entries",
    ];
    for p in bad {
        assert!(
            matches!(TileRef::parse(p), Err(Error::TilePath(_))),
            "{p:?} accepted"
        );
    }
}

#[test]
fn tile_ref_new_checks_ranges() {
    assert!(TileRef::new(TileKind::Hash(63), 0, 256).is_ok());
    assert!(TileRef::new(TileKind::Hash(64), 0, 256).is_err());
    assert!(TileRef::new(TileKind::Entries, 0, 0).is_err());
    assert!(TileRef::new(TileKind::Entries, 0, 257).is_err());
}

#[test]
#[should_panic(expected = "width")]
fn path_of_invalid_tile_panics() {
    let _ = TileRef {
        kind: TileKind::Entries,
        index: 0,
        width: 0,
    }
    .path();
}

#[test]
fn tiles_for_sizes() {
    // The spec's example: size 70,000 has 273 full level 0 tiles and a
    // partial one of width 112, one full level 1 tile and a partial one of
    // width 17, and a partial level 2 tile of width 1.
    let l0 = tiles_for_size(0, 70_000);
    assert_eq!(l0.len(), 274);
    assert!(l0[..273]
        .iter()
        .enumerate()
        .all(|(i, t)| t.index == i as u64 && t.width == 256));
    assert_eq!(
        l0[273],
        TileRef {
            kind: TileKind::Hash(0),
            index: 273,
            width: 112
        }
    );
    assert_eq!(
        tiles_for_size(1, 70_000),
        vec![
            TileRef {
                kind: TileKind::Hash(1),
                index: 0,
                width: 256
            },
            TileRef {
                kind: TileKind::Hash(1),
                index: 1,
                width: 17
            }
        ]
    );
    assert_eq!(
        tiles_for_size(2, 70_000),
        vec![TileRef {
            kind: TileKind::Hash(2),
            index: 0,
            width: 1
        }]
    );
    assert!(tiles_for_size(3, 70_000).is_empty());
    // A tree of 256 is a full level 0 tile and a partial level 1 tile of width 1.
    assert_eq!(
        tiles_for_size(0, 256),
        vec![TileRef {
            kind: TileKind::Hash(0),
            index: 0,
            width: 256
        }]
    );
    assert_eq!(
        tiles_for_size(1, 256),
        vec![TileRef {
            kind: TileKind::Hash(1),
            index: 0,
            width: 1
        }]
    );
    assert!(tiles_for_size(0, 0).is_empty());
    assert_eq!(
        tiles_for_size(7, u64::MAX),
        vec![TileRef {
            kind: TileKind::Hash(7),
            index: 0,
            width: 255
        }]
    );
    assert!(tiles_for_size(8, u64::MAX).is_empty());
    assert!(tiles_for_size(64, u64::MAX).is_empty());
    let e = entry_tiles_for_size(513);
    assert_eq!(e.len(), 3);
    assert_eq!(
        e[2],
        TileRef {
            kind: TileKind::Entries,
            index: 2,
            width: 1
        }
    );
    assert_eq!(e[2].path(), "tile/entries/002.p/1");
}

#[test]
fn bundles() {
    let big = vec![7u8; ENTRY_BYTES_MAX];
    let entries: Vec<&[u8]> = vec![b"", b"a", &big, b"three"];
    let mut out = b"prefix".to_vec();
    encode_bundle(&entries, &mut out).unwrap();
    assert_eq!(&out[..6], b"prefix");
    assert_eq!(&out[6..11], &[0, 0, 0, 1, b'a']);
    assert_eq!(parse_bundle(&out[6..]).unwrap(), entries);

    // Too large an entry: nothing written.
    let too_big = vec![0u8; ENTRY_BYTES_MAX + 1];
    let mut out = Vec::new();
    let err = encode_bundle(&[b"ok", &too_big], &mut out).unwrap_err();
    assert!(matches!(
        err,
        Error::EntryTooLarge {
            len: 65536,
            max: 65535
        }
    ));
    assert!(out.is_empty());

    // Every truncation of a valid bundle that does not end on an entry
    // boundary is an error.
    let mut b = Vec::new();
    encode_bundle(&[b"one", b"two", b"three"], &mut b).unwrap();
    let boundaries = [0, 5, 10, 17];
    for cut in 0..b.len() {
        let r = parse_bundle(&b[..cut]);
        assert_eq!(r.is_ok(), boundaries.contains(&cut), "cut at {cut}");
        if !boundaries.contains(&cut) {
            assert!(matches!(r, Err(Error::Bundle(_))));
        }
    }
    assert!(parse_bundle(&[0]).is_err());
    assert!(parse_bundle(&[0, 2, 1]).is_err());
    assert_eq!(parse_bundle(&[]).unwrap(), Vec::<&[u8]>::new());

    // At most one full bundle's worth of entries.
    let empty: Vec<&[u8]> = vec![b""; 256];
    let mut b = Vec::new();
    encode_bundle(&empty, &mut b).unwrap();
    assert_eq!(parse_bundle(&b).unwrap().len(), 256);
    b.extend_from_slice(&[0, 0]);
    assert!(matches!(parse_bundle(&b), Err(Error::Bundle(_))));
    let too_many: Vec<&[u8]> = vec![b""; 257];
    assert!(matches!(
        encode_bundle(&too_many, &mut Vec::new()),
        Err(Error::Bundle(_))
    ));
}

fn any_tile() -> impl Strategy<Value = TileRef> {
    let kind = prop_oneof![(0u8..=63).prop_map(TileKind::Hash), Just(TileKind::Entries)];
    let index = prop_oneof![0u64..2000, any::<u64>()];
    (kind, index, 1u64..=256).prop_map(|(kind, index, width)| TileRef { kind, index, width })
}

proptest! {
    #[test]
    fn tile_path_round_trip(t in any_tile()) {
        let p = t.path();
        prop_assert_eq!(TileRef::parse(&p).unwrap(), t);
    }

    #[test]
    fn bundle_round_trip(entries in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..=256)) {
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        let mut b = Vec::new();
        encode_bundle(&refs, &mut b).unwrap();
        prop_assert_eq!(parse_bundle(&b).unwrap(), refs);
    }
}

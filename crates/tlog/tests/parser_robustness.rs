//! Fuzz-style tests that run on stable in CI: every parser gets thousands of
//! arbitrary and mutated inputs; none may panic, and whatever a strict
//! parser accepts must re-encode to exactly the input.
//! (The cargo-fuzz targets in `fuzz/` check the same properties unbounded.)

use proptest::prelude::*;
use tlog::{
    encode_bundle, open_note, parse_bundle, sign_note, Checkpoint, Signer, TileKind, TileRef,
    Verifier, EMPTY_ROOT,
};

const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

/// Edits applied to a valid input: (operation, position, byte).
fn edits() -> impl Strategy<Value = Vec<(u8, usize, u8)>> {
    proptest::collection::vec((0u8..4, any::<usize>(), any::<u8>()), 1..6)
}

fn mutate(seed: &[u8], edits: &[(u8, usize, u8)]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for &(op, pos, byte) in edits {
        let at = if b.is_empty() { 0 } else { pos % (b.len() + 1) };
        match op {
            0 => b.insert(at, byte),
            1 if at < b.len() => {
                b.remove(at);
            }
            2 if at < b.len() => b[at] ^= byte | 1,
            3 => b.truncate(at),
            _ => b.insert(at, b'\n'),
        }
    }
    b
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn note_seeds() -> Vec<String> {
    let s = Signer::from_skey(PETER_SKEY).unwrap();
    let cp = Checkpoint {
        origin: "PeterNeumann".into(),
        size: 12,
        root: EMPTY_ROOT,
        extensions: vec!["x".into()],
    };
    vec![
        sign_note("If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n", &[&s]).unwrap(),
        sign_note(&cp.to_text(), &[&s]).unwrap(),
        sign_note("\n", &[&s, &s]).unwrap(),
    ]
}

fn checkpoint_seeds() -> Vec<String> {
    vec![
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
            .into(),
        "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next\n".into(),
    ]
}

fn tile_seeds() -> Vec<String> {
    vec![
        "tile/0/x001/234.p/5".into(),
        "tile/entries/000".into(),
        "tile/63/x018/x446/x744/x073/x709/x551/615".into(),
        TileRef {
            kind: TileKind::Entries,
            index: 999,
            width: 255,
        }
        .path(),
    ]
}

fn bundle_seeds() -> Vec<Vec<u8>> {
    let mut a = Vec::new();
    encode_bundle(&[b"one", b"", b"three"], &mut a).unwrap();
    let mut b = Vec::new();
    encode_bundle(&vec![b"xy".as_slice(); 256], &mut b).unwrap();
    vec![a, b, Vec::new()]
}

fn check_note(input: &str, v: &Verifier) {
    if let Ok(n) = open_note(input, &[v]) {
        assert!(input.starts_with(&n.text));
        assert!(n.text.ends_with('\n'));
        assert_eq!(n.verified, vec![("PeterNeumann".to_string(), 0xc74f20a3)]);
    }
}

fn check_checkpoint(input: &str) {
    if let Ok(cp) = Checkpoint::parse(input) {
        assert_eq!(cp.to_text(), input, "accepted a non-canonical checkpoint");
    }
}

fn check_tile(input: &str) {
    if let Ok(t) = TileRef::parse(input) {
        assert_eq!(t.path(), input, "accepted a non-canonical path");
    }
}

fn check_bundle(input: &[u8]) {
    if let Ok(entries) = parse_bundle(input) {
        let mut out = Vec::new();
        encode_bundle(&entries, &mut out).unwrap();
        assert_eq!(out, input);
    }
}

fn check_keys(input: &str) {
    if let Ok(v) = Verifier::parse(input) {
        assert_eq!(v.vkey().to_lowercase(), input.to_lowercase());
    }
    if let Ok(s) = Signer::from_skey(input) {
        assert!(Verifier::parse(&s.vkey()).is_ok());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_strings(s in any::<String>()) {
        let v = Verifier::parse(PETER_VKEY).unwrap();
        check_note(&s, &v);
        check_checkpoint(&s);
        check_tile(&s);
        check_bundle(s.as_bytes());
        check_keys(&s);
    }

    #[test]
    fn arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        check_bundle(&b);
        let s = text(&b);
        check_checkpoint(&s);
        check_tile(&s);
    }

    #[test]
    fn mutated_notes(seed in 0usize..3, e in edits()) {
        let v = Verifier::parse(PETER_VKEY).unwrap();
        let s = text(&mutate(note_seeds()[seed].as_bytes(), &e));
        check_note(&s, &v);
    }

    #[test]
    fn mutated_checkpoints(seed in 0usize..2, e in edits()) {
        check_checkpoint(&text(&mutate(checkpoint_seeds()[seed].as_bytes(), &e)));
    }

    #[test]
    fn mutated_tile_paths(seed in 0usize..4, e in edits()) {
        check_tile(&text(&mutate(tile_seeds()[seed].as_bytes(), &e)));
    }

    #[test]
    fn mutated_bundles(seed in 0usize..3, e in edits()) {
        check_bundle(&mutate(&bundle_seeds()[seed], &e));
    }

    #[test]
    fn mutated_keys(which in 0usize..2, e in edits()) {
        let seed = [PETER_VKEY, PETER_SKEY][which];
        check_keys(&text(&mutate(seed.as_bytes(), &e)));
    }
}

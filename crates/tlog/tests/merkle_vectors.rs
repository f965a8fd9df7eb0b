//! Known-answer tests: RFC 6962 sample tree roots and every inclusion and
//! consistency probe from transparency-dev/merkle (`testdata/merkle`).

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use common::{hex, unhex, vectors_dir, MemStore};
use serde_json::Value;
use tlog::{
    consistency_proof, inclusion_proof, leaf_hash, root_hash, verify_consistency, verify_inclusion,
    Hash, EMPTY_ROOT,
};

/// RFC 6962 sample leaves (transparency-dev/merkle `testonly/constants.go`).
const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Roots for sizes 0..=8 of the sample leaves (`testonly/constants.go`, `RootHashes`).
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn sample_store() -> MemStore {
    let leaves: Vec<Hash> = LEAVES.iter().map(|l| leaf_hash(&unhex(l))).collect();
    MemStore::from_leaves(&leaves)
}

#[test]
fn rfc6962_sample_roots() {
    assert_eq!(hex(&EMPTY_ROOT), ROOTS[0]);
    let leaves: Vec<Hash> = LEAVES.iter().map(|l| leaf_hash(&unhex(l))).collect();
    let mut store = MemStore::default();
    assert_eq!(hex(&root_hash(0, &store).unwrap()), ROOTS[0]);
    assert_eq!(hex(&store.range.root()), ROOTS[0]);
    for (i, leaf) in leaves.iter().enumerate() {
        store.append(*leaf);
        let size = i as u64 + 1;
        assert_eq!(
            hex(&store.range.root()),
            ROOTS[i + 1],
            "compact range root at size {size}"
        );
        // Roots of every smaller size, from the stored nodes of the bigger tree.
        for s in 0..=size {
            assert_eq!(
                hex(&root_hash(s, &store).unwrap()),
                ROOTS[s as usize],
                "root_hash({s})"
            );
        }
    }
}

/// Proofs from transparency-dev/merkle `proof/verify_test.go` over the sample leaves.
#[test]
fn rfc6962_sample_proofs() {
    let store = sample_store();
    let h = |s: &str| -> Hash { unhex(s).try_into().unwrap() };
    let inclusion: [(u64, u64, &[&str]); 5] = [
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (index, size, want) in inclusion {
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        assert_eq!(
            inclusion_proof(index, size, &store).unwrap(),
            want,
            "inclusion {index}/{size}"
        );
        let leaf = leaf_hash(&unhex(LEAVES[index as usize]));
        verify_inclusion(index, size, &leaf, &want, &h(ROOTS[size as usize])).unwrap();
    }
    let consistency: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    for (old, new, want) in consistency {
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        assert_eq!(
            consistency_proof(old, new, &store).unwrap(),
            want,
            "consistency {old}->{new}"
        );
        verify_consistency(
            old,
            new,
            &h(ROOTS[old as usize]),
            &h(ROOTS[new as usize]),
            &want,
        )
        .unwrap();
    }
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A probe hash; `None` when it is not 32 bytes and so cannot even be passed
/// to the typed API (`&Hash`). That is this crate's answer to the probes'
/// wrong-length hashes: refused at the type boundary.
fn hash(v: &Value) -> Option<Hash> {
    let bytes = BASE64.decode(v.as_str().unwrap()).unwrap();
    bytes.try_into().ok()
}

/// A probe proof; Go writes an empty proof as `null`.
fn hashes(v: &Value) -> Option<Vec<Hash>> {
    match v {
        Value::Null => Some(Vec::new()),
        v => v.as_array().unwrap().iter().map(hash).collect(),
    }
}

/// The one probe whose success depends on wrong-length hashes: equal sizes
/// with equal 12-byte "roots". Our API cannot express it; we check the same
/// situation with 32-byte roots instead.
const UNREPRESENTABLE_HAPPY: &str = "sizes-are-equal-one-and-proof-is-empty.json";

#[test]
fn inclusion_probes() {
    let files = json_files(&vectors_dir().join("merkle/inclusion"));
    assert!(
        files.len() > 50,
        "expected the inclusion probes, found {}",
        files.len()
    );
    let (mut ok, mut rejected) = (0, 0);
    for f in files {
        let v: Value = serde_json::from_str(&fs::read_to_string(&f).unwrap()).unwrap();
        let index = v["leafIdx"].as_u64().unwrap();
        let size = v["treeSize"].as_u64().unwrap();
        let want_err = v["wantErr"].as_bool().unwrap();
        let result = match (hash(&v["root"]), hash(&v["leafHash"]), hashes(&v["proof"])) {
            (Some(root), Some(leaf), Some(proof)) => {
                verify_inclusion(index, size, &leaf, &proof, &root).map_err(|e| e.to_string())
            }
            _ => Err("hash of the wrong length".to_string()),
        };
        match (want_err, &result) {
            (true, Err(_)) => rejected += 1,
            (false, Ok(())) => ok += 1,
            _ => panic!(
                "{}: {} wantErr={want_err} got {result:?}",
                f.display(),
                v["desc"]
            ),
        }
    }
    assert_eq!(ok, 6);
    assert!(rejected > 50);
}

#[test]
fn consistency_probes() {
    let files = json_files(&vectors_dir().join("merkle/consistency"));
    assert!(
        files.len() > 50,
        "expected the consistency probes, found {}",
        files.len()
    );
    let (mut ok, mut rejected) = (0, 0);
    for f in files {
        let v: Value = serde_json::from_str(&fs::read_to_string(&f).unwrap()).unwrap();
        let old = v["size1"].as_u64().unwrap();
        let new = v["size2"].as_u64().unwrap();
        let want_err = v["wantErr"].as_bool().unwrap();
        let result = match (hash(&v["root1"]), hash(&v["root2"]), hashes(&v["proof"])) {
            (Some(r1), Some(r2), Some(proof)) => {
                verify_consistency(old, new, &r1, &r2, &proof).map_err(|e| e.to_string())
            }
            _ => Err("hash of the wrong length".to_string()),
        };
        let name = f.file_name().unwrap().to_str().unwrap();
        if !want_err && name == UNREPRESENTABLE_HAPPY {
            assert!(result.is_err(), "12-byte roots cannot be typed as Hash");
            let r = [7u8; 32];
            verify_consistency(old, new, &r, &r, &[]).unwrap();
            ok += 1;
            continue;
        }
        match (want_err, &result) {
            (true, Err(_)) => rejected += 1,
            (false, Ok(())) => ok += 1,
            _ => panic!(
                "{}: {} wantErr={want_err} got {result:?}",
                f.display(),
                v["desc"]
            ),
        }
    }
    assert_eq!(ok, 6);
    assert!(rejected > 50);
}

/// The happy-path probes describe real trees of the sample leaves: our
/// generated proofs must equal theirs.
#[test]
fn generated_proofs_match_happy_probes() {
    let store = sample_store();
    for kind in ["inclusion", "consistency"] {
        for f in json_files(&vectors_dir().join("merkle").join(kind)) {
            if f.file_name().unwrap() != "happy-path.json" {
                continue;
            }
            let v: Value = serde_json::from_str(&fs::read_to_string(&f).unwrap()).unwrap();
            let want = hashes(&v["proof"]).unwrap();
            let got = if kind == "inclusion" {
                inclusion_proof(
                    v["leafIdx"].as_u64().unwrap(),
                    v["treeSize"].as_u64().unwrap(),
                    &store,
                )
                .unwrap()
            } else {
                consistency_proof(
                    v["size1"].as_u64().unwrap(),
                    v["size2"].as_u64().unwrap(),
                    &store,
                )
                .unwrap()
            };
            assert_eq!(got, want, "{}", f.display());
        }
    }
}

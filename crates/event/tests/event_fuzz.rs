//! The fuzz target `body` (`event::fuzz::body`, run unbounded by `fuzz/`) on stable, in a
//! few seconds: a seeded corpus of realistic and edge-case bodies, then thousands of
//! arbitrary and mutated inputs. Each input's first byte picks the format and the batch
//! limit (see `event::fuzz::body`).

use proptest::prelude::*;

const JSON: u8 = 0;
const NDJSON: u8 = 1;

/// Bodies that reach deep into the parser, each with its control byte.
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(make_seeds)
}

fn make_seeds() -> Vec<Vec<u8>> {
    let opts = sample::Options::default();
    let ndjson = sample::ndjson(5, &opts);
    let first = ndjson.lines().next().unwrap().to_string();
    let array = format!("[{}]", ndjson.lines().collect::<Vec<_>>().join(","));
    let bodies: Vec<(u8, String)> = vec![
        (JSON, first.clone()),
        (JSON, array),
        (NDJSON, ndjson.clone()),
        (NDJSON, ndjson.replace('\n', "\r\n\n  \n")),
        (NDJSON | 4, ndjson), // batch limit 2
        (
            JSON,
            r#"{"action":"model.update","actor":{"id":"alice"},"n":1e-400}"#.into(),
        ),
        (
            JSON,
            r#"{"action":"a.b","actor":{"id":"x"},"id":"i","id":"j"}"#.into(),
        ),
        (
            JSON,
            format!("{}{{}}{}", r#"{"a":"#.repeat(40), "}".repeat(40)),
        ),
        (JSON, "[1,2,3]".into()),
        (JSON, "  ".into()),
        (NDJSON, "{\"a\":1}\n[]\n".into()),
        (
            JSON,
            r#"{"action":"x.y","actor":{"id":"\ud800"},"n":18446744073709551616}"#.into(),
        ),
    ];
    bodies
        .into_iter()
        .map(|(control, body)| {
            let mut b = vec![control];
            b.extend_from_slice(body.as_bytes());
            b
        })
        .chain([vec![JSON, 0xff, b'{'], vec![NDJSON, b'{', 0xc3]])
        .collect()
}

/// Edits applied to a seed: (operation, position, byte).
fn edits() -> impl Strategy<Value = Vec<(u8, usize, u8)>> {
    proptest::collection::vec((0u8..6, any::<usize>(), any::<u8>()), 1..8)
}

fn mutate(seed: &[u8], edits: &[(u8, usize, u8)]) -> Vec<u8> {
    const TOKENS: [&[u8]; 8] = [b"{", b"}", b"[", b"]", b"\"", b",", b":", b"\n"];
    let mut b = seed.to_vec();
    for &(op, pos, byte) in edits {
        let at = if b.is_empty() { 0 } else { pos % (b.len() + 1) };
        match op {
            0 => b.insert(at, byte),
            1 if at < b.len() => {
                b.remove(at);
            }
            2 if at < b.len() => b[at] ^= byte | 1,
            3 => b.truncate(at.max(1)),
            4 => {
                let t = TOKENS[usize::from(byte) % TOKENS.len()];
                b.splice(at..at, t.iter().copied());
            }
            _ => {
                // Duplicate a slice: repeated members, lines and nesting.
                let end = (at + usize::from(byte)).min(b.len());
                let piece = b[at..end].to_vec();
                b.splice(at..at, piece);
            }
        }
    }
    b
}

#[test]
fn the_seed_corpus_holds() {
    for seed in seeds() {
        event::fuzz::body(seed);
    }
}

/// Writes the seed corpus for `cargo fuzz run body` (see `fuzz/README.md`).
#[test]
#[ignore = "writes fuzz/corpus/body; run on purpose"]
fn write_fuzz_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/body");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, seed) in seeds().iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:02}")), seed).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..400)) {
        event::fuzz::body(&b);
    }

    #[test]
    fn arbitrary_json_text(control in any::<u8>(), s in "[\\[\\]{}\":,\\n a-z0-9.eE+-]{0,200}") {
        let mut b = vec![control];
        b.extend_from_slice(s.as_bytes());
        event::fuzz::body(&b);
    }

    #[test]
    fn mutated_seeds(seed in 0usize..14, e in edits()) {
        event::fuzz::body(&mutate(&seeds()[seed], &e));
    }
}

//! open_note on arbitrary input must never panic; whatever it accepts must
//! carry a verified signature from the one key it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tlog::{open_note, Verifier};

/// golang.org/x/mod/sumdb/note's test key; seed the corpus with its signed
/// note to let the fuzzer reach the signature checks.
const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

fuzz_target!(|data: &[u8]| {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    let v = VERIFIER.get_or_init(|| Verifier::parse(VKEY).unwrap());
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(note) = open_note(s, &[v]) {
        assert!(s.starts_with(&note.text));
        assert_eq!(note.verified, vec![(v.name().to_string(), v.key_id())]);
    }
});

//! parse_bundle is strict: re-encoding what it accepts gives back the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlog::{encode_bundle, parse_bundle};

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = parse_bundle(data) {
        let mut out = Vec::new();
        encode_bundle(&entries, &mut out).unwrap();
        assert_eq!(out, data);
    }
});

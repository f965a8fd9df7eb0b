//! Checkpoint::parse is strict: anything it accepts re-encodes to exactly
//! the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlog::Checkpoint;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cp) = Checkpoint::parse(s) {
        assert_eq!(cp.to_text(), s);
    }
});

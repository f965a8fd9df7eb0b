//! TileRef::parse accepts exactly what TileRef::path produces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlog::TileRef;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = TileRef::parse(s) {
        assert_eq!(t.path(), s);
        assert_eq!(TileRef::parse(&t.path()).unwrap(), t);
    }
});

//! The query cursor (`index::Cursor::decode`): see `index::fuzz::cursor` for the
//! properties.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| index::fuzz::cursor(data));

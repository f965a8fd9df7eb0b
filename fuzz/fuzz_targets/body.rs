//! The request-body parser (`event::split_body_items`), then validation and the stored
//! entry: see `event::fuzz::body` for the input layout and the properties.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| event::fuzz::body(data));

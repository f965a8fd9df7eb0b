//! The segment scan of recovery and readers (`ledger::segment::scan_segment`) and the
//! reads through its index: see `ledger::fuzz::segment` for the input layout and the
//! properties.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ledger::fuzz::segment(data));

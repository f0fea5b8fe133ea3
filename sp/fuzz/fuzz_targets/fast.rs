//! cargo-fuzz target: `sp_fuzz::fast` (the harness documents the input format and checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sp_fuzz::fast(data));

//! cargo-fuzz target: `rump_server_fuzz::server` (the harness documents input and checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rump_server_fuzz::server(data));

//! cargo-fuzz target: `kernel_fuzz::syscalls` (the harness documents the input and checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kernel_fuzz::syscalls(data));

//! The cargo-fuzz harness of `kernel/fuzz` on stable Rust: every checked-in regression input
//! (`kernel/fuzz/regressions/syscalls/`), then a bounded number of seeded random inputs.

#[path = "../fuzz/src/lib.rs"]
mod harness;

#[path = "../../testsupport/replay.rs"]
mod support;

use std::path::Path;
use support::Rng;

#[test]
fn syscalls_regressions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/syscalls");
    support::replay(&dir, harness::syscalls);
}

#[test]
fn syscalls_random() {
    let mut r = Rng(0x5eed_0004);
    for _ in 0..2000 {
        let n = r.below(600) as usize;
        harness::syscalls(&r.bytes(n));
    }
}

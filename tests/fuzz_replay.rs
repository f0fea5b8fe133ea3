//! The cargo-fuzz harness of `fuzz/` (the connection's state machine and copy table) on
//! stable Rust: every checked-in regression input (`fuzz/regressions/session/`), then a
//! bounded number of seeded random inputs.

#[path = "../fuzz/src/lib.rs"]
mod harness;

#[path = "../testsupport/replay.rs"]
mod support;

use std::path::Path;
use support::Rng;

fn regressions(target: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target)
}

#[test]
fn session_regressions() {
    support::replay(&regressions("session"), harness::session);
}

#[test]
fn session_random() {
    let mut r = Rng(0x5eed_0005);
    for _ in 0..5000 {
        let n = r.below(400) as usize;
        harness::session(&r.bytes(n));
    }
}

#[test]
fn server_regressions_and_random() {
    support::replay(&regressions("server"), harness::server);
    let mut r = Rng(0x5eed_0006);
    for _ in 0..150 {
        let n = r.below(120) as usize;
        harness::server(&r.bytes(n));
    }
    let [attacks, mounted, ops] = harness::ffs_attack_counts();
    eprintln!("server: {attacks} FFS attacks, {mounted} corrupted images mounted, {ops} ops");
    assert!(mounted > 0, "no FFS attack got a corrupted image mounted");
}

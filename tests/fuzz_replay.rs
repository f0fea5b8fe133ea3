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
    // Shaped: a machine that grants the fast path, a fast GUEST handshake that succeeds, then
    // SYSCALL_FAST frames (built by the client encoder, sometimes mutated) among random events.
    for _ in 0..2000 {
        let mut input = vec![0x80 | r.below(4) as u8, 0, 0, 0, 0, 0, 0, 1, 1, 1];
        for _ in 0..r.below(6) {
            let shape = if r.below(4) == 0 { 0x20 } else { 0 };
            input.extend_from_slice(&[0, 0, 9, 1, shape, r.below(16) as u8, 1]);
            input.push(r.below(48) as u8);
            input.extend(r.bytes(48));
            if r.below(3) == 0 {
                input.push(5); // a syscall completes
                input.push(0);
            }
        }
        let n = r.below(100) as usize;
        input.extend(r.bytes(n));
        harness::session(&input);
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

//! The cargo-fuzz harness of `fuzz/` (the connection's state machine and copy table) on
//! stable Rust: every checked-in regression input (`fuzz/regressions/session/`), then a
//! bounded number of seeded random inputs.

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::Path;

/// xorshift64*: deterministic inputs without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn session_regressions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/session");
    for e in std::fs::read_dir(&dir).into_iter().flatten() {
        let path = e.unwrap().path();
        eprintln!("replaying {}", path.display());
        harness::session(&std::fs::read(&path).unwrap());
    }
}

#[test]
fn session_random() {
    let mut r = Rng(0x5eed_0005);
    for _ in 0..5000 {
        let n = (r.next() % 400) as usize;
        let data: Vec<u8> = (0..n).map(|_| r.next() as u8).collect();
        harness::session(&data);
    }
}

#[test]
fn server_regressions_and_random() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/server");
    for e in std::fs::read_dir(&dir).into_iter().flatten() {
        let path = e.unwrap().path();
        eprintln!("replaying {}", path.display());
        harness::server(&std::fs::read(&path).unwrap());
    }
    let mut r = Rng(0x5eed_0006);
    for _ in 0..150 {
        let n = (r.next() % 120) as usize;
        let data: Vec<u8> = (0..n).map(|_| r.next() as u8).collect();
        harness::server(&data);
    }
}

//! Shared by the stable-Rust replays of the cargo-fuzz harnesses (`sp/tests/fuzz_replay.rs`,
//! `kernel/tests/fuzz_replay.rs`, `tests/fuzz_replay.rs`, each including this file with
//! `#[path]`): the seeded input generator and the replay of checked-in regression inputs.

use std::path::Path;

/// xorshift64*: deterministic inputs without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Runs `f` on every file in `dir` (none if it does not exist); returns how many there were.
pub fn replay(dir: &Path, f: impl Fn(&[u8])) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries {
        let path = e.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        eprintln!("replaying {}", path.display());
        f(&data);
        n += 1;
    }
    n
}

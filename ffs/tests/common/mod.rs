//! Helpers shared by the integration tests: images, a model-free tree reader, seeds.
#![allow(dead_code)]

use ffs::{block_on, check, newfs, Fs, MemDisk, MountOptions, NewfsOptions};

/// A fresh in-memory file system of `size` bytes.
pub fn fresh(size: usize, ufs2: bool, bsize: Option<u32>) -> MemDisk {
    let disk = MemDisk::new(size);
    let o = NewfsOptions {
        ufs2,
        bsize,
        fsize: bsize.map(|b| b / 8),
        ..NewfsOptions::default()
    };
    block_on(newfs(&disk, &o)).expect("newfs");
    assert_clean(&disk, "after newfs");
    disk
}

/// Mounts read-write.
pub fn mount(disk: &MemDisk) -> Fs<MemDisk> {
    block_on(Fs::mount(disk.clone(), MountOptions::default())).expect("mount")
}

/// Panics with the findings unless the checker finds nothing.
pub fn assert_clean(disk: &MemDisk, when: &str) {
    let f = block_on(check(disk)).expect("superblock");
    assert!(f.is_empty(), "checker findings {when}:\n{}", f.join("\n"));
}

/// The seed: `RUMP_FFS_SEED` or a fixed default.
pub fn seed() -> u64 {
    std::env::var("RUMP_FFS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f00d)
}

/// A small deterministic generator (splitmix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

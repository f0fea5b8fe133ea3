//! Helpers shared by the integration tests: images, a model-free tree reader, seeds.
#![allow(dead_code)]

use ffs::sb::Superblock;
use ffs::{block_on, check, newfs, Fs, Ino, MemDisk, MountOptions, NewfsOptions};

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

/// A populated 8 MiB image (a directory with a subdirectory, a small file and a long
/// symbolic link; a 3 MiB file through indirect blocks at the root), unmounted clean, for
/// tests that damage copies of it.
pub struct Base {
    pub disk: MemDisk,
    pub sb: Superblock,
    pub dir: Ino,
    pub sub: Ino,
    pub file: Ino,
    pub big: Ino,
}

/// The populated image, UFS2 or UFS1.
pub fn base(ufs2: bool) -> Base {
    let disk = fresh(8 << 20, ufs2, Some(4096));
    let fs = mount(&disk);
    let root = fs.root();
    let dir = block_on(fs.mkdir(root, b"dir", 0o755, 0, 0)).unwrap();
    let sub = block_on(fs.mkdir(dir, b"sub", 0o755, 0, 0)).unwrap();
    let file = block_on(fs.create(dir, b"file", 0o100644, 0, 0, 0)).unwrap();
    block_on(fs.write(file, 0, &[7u8; 3000])).unwrap();
    let big = block_on(fs.create(root, b"big", 0o100644, 0, 0, 0)).unwrap();
    block_on(fs.write(big, 0, &vec![9u8; 3 << 20])).unwrap();
    block_on(fs.symlink(dir, b"link", &[b'l'; 200], 0o755, 0, 0)).unwrap();
    block_on(fs.unmount()).unwrap();
    let sb = block_on(Superblock::find(&disk)).unwrap();
    Base {
        disk,
        sb,
        dir,
        sub,
        file,
        big,
    }
}

/// A copy of the populated image to damage.
pub fn copy(b: &Base) -> MemDisk {
    MemDisk::from_vec(b.disk.to_vec())
}

/// The little-endian u32 at `off`.
pub fn peek32(d: &MemDisk, off: u64) -> u32 {
    d.with_bytes(|b| u32::from_le_bytes(b[off as usize..off as usize + 4].try_into().unwrap()))
}

/// Writes the little-endian u32 `v` at `off`.
pub fn poke32(d: &MemDisk, off: u64, v: u32) {
    d.with_bytes(|b| b[off as usize..off as usize + 4].copy_from_slice(&v.to_le_bytes()));
}

/// Byte offset of direct pointer `i` of inode `ino`.
pub fn db_off(b: &Base, ino: Ino, i: u64) -> u64 {
    let o = b.sb.inode_offset(ino);
    if b.sb.ufs2 {
        o + 112 + 8 * i
    } else {
        o + 40 + 4 * i
    }
}

/// The block pointer at `off` (8 bytes on UFS2, 4 on UFS1).
pub fn peek_ptr(b: &Base, d: &MemDisk, off: u64) -> u64 {
    if b.sb.ufs2 {
        d.with_bytes(|x| u64::from_le_bytes(x[off as usize..off as usize + 8].try_into().unwrap()))
    } else {
        peek32(d, off) as u64
    }
}

/// Writes the block pointer `v` at `off` (8 bytes on UFS2, 4 on UFS1).
pub fn poke_ptr(b: &Base, d: &MemDisk, off: u64, v: u64) {
    if b.sb.ufs2 {
        d.with_bytes(|x| x[off as usize..off as usize + 8].copy_from_slice(&v.to_le_bytes()));
    } else {
        poke32(d, off, v as u32);
    }
}

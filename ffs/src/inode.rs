//! On-disk inodes: `ufs1_dinode` (128 bytes) and `ufs2_dinode` (256 bytes) as one `Dinode`.

use crate::le::*;
use crate::sb::{NDADDR, NIADDR};

/// File type bits of `di_mode`.
pub const IFMT: u16 = 0o170000;
/// FIFO.
pub const IFIFO: u16 = 0o010000;
/// Character device.
pub const IFCHR: u16 = 0o020000;
/// Directory.
pub const IFDIR: u16 = 0o040000;
/// Block device.
pub const IFBLK: u16 = 0o060000;
/// Regular file.
pub const IFREG: u16 = 0o100000;
/// Symbolic link.
pub const IFLNK: u16 = 0o120000;
/// Socket.
pub const IFSOCK: u16 = 0o140000;
/// Whiteout (never stored in an inode).
pub const IFWHT: u16 = 0o160000;
/// `NODEV`: the device number of anything that is not a device.
pub const NODEV: u64 = u64::MAX;

/// A timestamp: seconds and nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timespec {
    /// Seconds since the epoch.
    pub sec: i64,
    /// Nanoseconds (0..1e9).
    pub nsec: u32,
}

/// An inode, decoded from either format. `raw` keeps the bytes of fields not decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dinode {
    /// The on-disk bytes (128 or 256).
    pub raw: Vec<u8>,
    /// Type and permission bits.
    pub mode: u16,
    /// Link count.
    pub nlink: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Allocated space in 512-byte sectors (data and indirect blocks).
    pub blocks: u64,
    /// Last access.
    pub atime: Timespec,
    /// Last modification.
    pub mtime: Timespec,
    /// Last change.
    pub ctime: Timespec,
    /// Creation (UFS2 only; zero on UFS1).
    pub birthtime: Timespec,
    /// `chflags` flags.
    pub flags: u32,
    /// Generation number.
    pub gen: u32,
    /// Direct blocks (fragment addresses; `db[0]` is `rdev` for devices).
    pub db: [u64; NDADDR],
    /// Single, double, triple indirect blocks.
    pub ib: [u64; NIADDR],
}

fn ts(sec: i64, nsec: i32) -> Timespec {
    Timespec {
        sec,
        nsec: nsec.clamp(0, 999_999_999) as u32,
    }
}

impl Dinode {
    /// An all-zero inode of the given format.
    pub fn zeroed(ufs2: bool) -> Dinode {
        Dinode::decode(ufs2, &vec![0u8; if ufs2 { 256 } else { 128 }])
    }

    /// Decodes `raw` (128 bytes for UFS1, 256 for UFS2).
    pub fn decode(ufs2: bool, raw: &[u8]) -> Dinode {
        let r = raw;
        let mut db = [0u64; NDADDR];
        let mut ib = [0u64; NIADDR];
        if ufs2 {
            for (i, d) in db.iter_mut().enumerate() {
                *d = u64_at(r, 112 + 8 * i);
            }
            for (i, d) in ib.iter_mut().enumerate() {
                *d = u64_at(r, 208 + 8 * i);
            }
            Dinode {
                mode: u16_at(r, 0),
                nlink: u16_at(r, 2),
                uid: u32_at(r, 4),
                gid: u32_at(r, 8),
                size: u64_at(r, 16),
                blocks: u64_at(r, 24),
                atime: ts(i64_at(r, 32), i32_at(r, 68)),
                mtime: ts(i64_at(r, 40), i32_at(r, 64)),
                ctime: ts(i64_at(r, 48), i32_at(r, 72)),
                birthtime: ts(i64_at(r, 56), i32_at(r, 76)),
                gen: u32_at(r, 80),
                flags: u32_at(r, 88),
                db,
                ib,
                raw: r.to_vec(),
            }
        } else {
            for (i, d) in db.iter_mut().enumerate() {
                *d = u32_at(r, 40 + 4 * i) as u64;
            }
            for (i, d) in ib.iter_mut().enumerate() {
                *d = u32_at(r, 88 + 4 * i) as u64;
            }
            Dinode {
                mode: u16_at(r, 0),
                nlink: u16_at(r, 2),
                size: u64_at(r, 8),
                atime: ts(i32_at(r, 16) as i64, i32_at(r, 20)),
                mtime: ts(i32_at(r, 24) as i64, i32_at(r, 28)),
                ctime: ts(i32_at(r, 32) as i64, i32_at(r, 36)),
                birthtime: Timespec::default(),
                flags: u32_at(r, 100),
                blocks: u32_at(r, 104) as u64,
                gen: u32_at(r, 108),
                uid: u32_at(r, 112),
                gid: u32_at(r, 116),
                db,
                ib,
                raw: r.to_vec(),
            }
        }
    }

    /// Encodes into `raw` and returns it.
    pub fn encode(&mut self) -> &[u8] {
        let ufs2 = self.raw.len() == 256;
        let r = &mut self.raw;
        put_u16(r, 0, self.mode);
        put_u16(r, 2, self.nlink);
        if ufs2 {
            put_u32(r, 4, self.uid);
            put_u32(r, 8, self.gid);
            put_u64(r, 16, self.size);
            put_u64(r, 24, self.blocks);
            put_i64(r, 32, self.atime.sec);
            put_i64(r, 40, self.mtime.sec);
            put_i64(r, 48, self.ctime.sec);
            put_i64(r, 56, self.birthtime.sec);
            put_u32(r, 64, self.mtime.nsec);
            put_u32(r, 68, self.atime.nsec);
            put_u32(r, 72, self.ctime.nsec);
            put_u32(r, 76, self.birthtime.nsec);
            put_u32(r, 80, self.gen);
            put_u32(r, 88, self.flags);
            for (i, d) in self.db.iter().enumerate() {
                put_u64(r, 112 + 8 * i, *d);
            }
            for (i, d) in self.ib.iter().enumerate() {
                put_u64(r, 208 + 8 * i, *d);
            }
        } else {
            put_u64(r, 8, self.size);
            put_i32(r, 16, self.atime.sec as i32);
            put_u32(r, 20, self.atime.nsec);
            put_i32(r, 24, self.mtime.sec as i32);
            put_u32(r, 28, self.mtime.nsec);
            put_i32(r, 32, self.ctime.sec as i32);
            put_u32(r, 36, self.ctime.nsec);
            put_u32(r, 100, self.flags);
            put_u32(r, 104, self.blocks as u32);
            put_u32(r, 108, self.gen);
            put_u32(r, 112, self.uid);
            put_u32(r, 116, self.gid);
            for (i, d) in self.db.iter().enumerate() {
                put_u32(r, 40 + 4 * i, *d as u32);
            }
            for (i, d) in self.ib.iter().enumerate() {
                put_u32(r, 88 + 4 * i, *d as u32);
            }
        }
        &self.raw
    }

    /// Offset and length of the pointer area (where fast symlinks live).
    pub fn ptr_area(&self) -> (usize, usize) {
        if self.raw.len() == 256 {
            (112, 120)
        } else {
            (40, 60)
        }
    }

    /// Stores `target` inline (a fast symlink; the caller checked it fits).
    pub fn set_fast_symlink(&mut self, target: &[u8]) {
        let (off, len) = self.ptr_area();
        self.raw[off..off + len].fill(0);
        self.raw[off..off + target.len()].copy_from_slice(target);
        let fresh = Dinode::decode(self.raw.len() == 256, &self.raw);
        self.db = fresh.db;
        self.ib = fresh.ib;
        self.size = target.len() as u64;
        self.blocks = 0;
    }

    /// The inline symlink text.
    pub fn fast_symlink(&self) -> &[u8] {
        let (off, len) = self.ptr_area();
        let n = (self.size as usize).min(len);
        &self.raw[off..off + n]
    }

    /// Clears the pointer area after a fast symlink turns into something else.
    pub fn clear_ptr_area(&mut self) {
        let (off, len) = self.ptr_area();
        self.raw[off..off + len].fill(0);
        self.db = [0; NDADDR];
        self.ib = [0; NIADDR];
    }

    /// `mode & IFMT`.
    pub fn kind(&self) -> u16 {
        self.mode & IFMT
    }

    /// Is it a directory?
    pub fn is_dir(&self) -> bool {
        self.kind() == IFDIR
    }

    /// Device number of a device inode (`di_rdev`, kept in `db[0]`); `NODEV` (all ones)
    /// for every other type, as `ufs_getattr` reports it.
    pub fn rdev(&self) -> u64 {
        match self.kind() {
            IFCHR | IFBLK => {
                if self.raw.len() == 256 {
                    u64_at(&self.raw, 112)
                } else {
                    u32_at(&self.raw, 40) as u64
                }
            }
            _ => NODEV,
        }
    }
}

/// The `d_type` value for a mode.
pub fn dtype_of(mode: u16) -> u8 {
    ((mode & IFMT) >> 12) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_both_formats() {
        for ufs2 in [false, true] {
            let mut d = Dinode::zeroed(ufs2);
            d.mode = IFREG | 0o644;
            d.nlink = 3;
            d.uid = 1000;
            d.gid = 20;
            d.size = 123456789;
            d.blocks = 88;
            d.mtime = Timespec {
                sec: 1_700_000_000,
                nsec: 5,
            };
            d.db[3] = 777;
            d.ib[2] = 999;
            d.gen = 42;
            let raw = d.encode().to_vec();
            let e = Dinode::decode(ufs2, &raw);
            assert_eq!(e, d);
        }
    }

    #[test]
    fn fast_symlink_text_survives_encode() {
        let mut d = Dinode::zeroed(false);
        d.mode = IFLNK | 0o755;
        d.set_fast_symlink(b"target/path");
        let raw = d.encode().to_vec();
        let e = Dinode::decode(false, &raw);
        assert_eq!(e.fast_symlink(), b"target/path");
    }
}

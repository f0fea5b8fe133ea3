//! File mode bits and the 152-byte `struct stat` of `__stat50` (netbsd-abi.md §4.3, §5.6).

use super::Timespec;

/// Type of file mask.
pub const S_IFMT: u32 = 0o170000;
/// Named pipe.
pub const S_IFIFO: u32 = 0o010000;
/// Character special.
pub const S_IFCHR: u32 = 0o020000;
/// Directory.
pub const S_IFDIR: u32 = 0o040000;
/// Block special.
pub const S_IFBLK: u32 = 0o060000;
/// Regular file.
pub const S_IFREG: u32 = 0o100000;
/// Symbolic link.
pub const S_IFLNK: u32 = 0o120000;
/// Socket.
pub const S_IFSOCK: u32 = 0o140000;
/// Whiteout.
pub const S_IFWHT: u32 = 0o160000;
/// Set user id on execution.
pub const S_ISUID: u32 = 0o4000;
/// Set group id on execution.
pub const S_ISGID: u32 = 0o2000;
/// Sticky bit.
pub const S_ISVTX: u32 = 0o1000;

/// `NODEV`: no device.
pub const NODEV: u64 = u64::MAX;

/// `makedev(major, minor)` of NetBSD (netbsd-abi.md §5.8).
pub const fn makedev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (major as u64, minor as u64);
    ((ma << 8) & 0x000f_ff00) | ((mi << 12) & 0xfff0_0000) | (mi & 0xff)
}

/// Size of `struct stat` on amd64.
pub const STAT_SIZE: usize = 152;

/// `struct stat` as the kernel fills it; [`Stat::encode`] gives the client's bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// Device of the file system.
    pub dev: u64,
    /// Type and permission bits.
    pub mode: u32,
    /// Inode number.
    pub ino: u64,
    /// Link count.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number of a device file.
    pub rdev: u64,
    /// Last access.
    pub atime: Timespec,
    /// Last modification.
    pub mtime: Timespec,
    /// Last status change.
    pub ctime: Timespec,
    /// Creation.
    pub birthtime: Timespec,
    /// Size in bytes.
    pub size: i64,
    /// Allocated 512-byte blocks.
    pub blocks: i64,
    /// Preferred I/O size.
    pub blksize: i32,
    /// `UF_*`/`SF_*` flags.
    pub flags: u32,
    /// Generation number (always 0 from `vn_stat`).
    pub gen: u32,
}

/// `UF_SETTABLE`: the flags an owner may change.
pub const UF_SETTABLE: u32 = 0x0000_ffff;
/// `UF_IMMUTABLE`.
pub const UF_IMMUTABLE: u32 = 0x2;
/// `UF_APPEND`.
pub const UF_APPEND: u32 = 0x4;
/// `SF_SETTABLE`: the flags only the superuser may change.
pub const SF_SETTABLE: u32 = 0xffff_0000;
/// `SF_IMMUTABLE`.
pub const SF_IMMUTABLE: u32 = 0x2_0000;
/// `SF_APPEND`.
pub const SF_APPEND: u32 = 0x4_0000;
/// `IMMUTABLE`: either immutable flag.
pub const IMMUTABLE: u32 = UF_IMMUTABLE | SF_IMMUTABLE;
/// `APPEND`: either append-only flag.
pub const APPEND: u32 = UF_APPEND | SF_APPEND;

impl Stat {
    /// The native amd64 layout, padding and spares zero.
    pub fn encode(&self) -> [u8; STAT_SIZE] {
        let mut b = [0u8; STAT_SIZE];
        b[0..8].copy_from_slice(&self.dev.to_le_bytes());
        b[8..12].copy_from_slice(&self.mode.to_le_bytes());
        b[16..24].copy_from_slice(&self.ino.to_le_bytes());
        b[24..28].copy_from_slice(&self.nlink.to_le_bytes());
        b[28..32].copy_from_slice(&self.uid.to_le_bytes());
        b[32..36].copy_from_slice(&self.gid.to_le_bytes());
        b[40..48].copy_from_slice(&self.rdev.to_le_bytes());
        b[48..64].copy_from_slice(&self.atime.encode());
        b[64..80].copy_from_slice(&self.mtime.encode());
        b[80..96].copy_from_slice(&self.ctime.encode());
        b[96..112].copy_from_slice(&self.birthtime.encode());
        b[112..120].copy_from_slice(&self.size.to_le_bytes());
        b[120..128].copy_from_slice(&self.blocks.to_le_bytes());
        b[128..132].copy_from_slice(&self.blksize.to_le_bytes());
        b[132..136].copy_from_slice(&self.flags.to_le_bytes());
        b[136..140].copy_from_slice(&self.gen.to_le_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_layout_offsets() {
        let ts = |s| Timespec { sec: s, nsec: 7 };
        let st = Stat {
            dev: 1,
            mode: S_IFCHR | 0o600,
            ino: 3,
            nlink: 4,
            uid: 5,
            gid: 6,
            rdev: 0xc500,
            atime: ts(10),
            mtime: ts(11),
            ctime: ts(12),
            birthtime: ts(13),
            size: 14,
            blocks: 15,
            blksize: 512,
            flags: 17,
            gen: 18,
        };
        let b = st.encode();
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        assert_eq!(u64_at(0), 1);
        assert_eq!(u32_at(8), 0o020600);
        assert_eq!(u64_at(16), 3);
        assert_eq!((u32_at(24), u32_at(28), u32_at(32)), (4, 5, 6));
        assert_eq!(u64_at(40), 0xc500);
        assert_eq!((u64_at(48), u64_at(56)), (10, 7));
        assert_eq!(u64_at(96), 13);
        assert_eq!((u64_at(112), u64_at(120)), (14, 15));
        assert_eq!((u32_at(128), u32_at(132), u32_at(136)), (512, 17, 18));
        assert!(b[140..].iter().all(|&x| x == 0));
        assert_eq!(makedev(197, 0), 0xc500);
    }
}

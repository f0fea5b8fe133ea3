//! File-system constants: lookup limits, access modes, `d_type`, utimens, sync and pathconf
//! names, mount flags (netbsd-abi.md §4.4, §5.3–§5.17).

/// Longest path component name lookup accepts (`KERNEL_NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// Most symbolic links followed in one lookup (`MAXSYMLINKS`).
pub const MAXSYMLINKS: u32 = 32;
/// Most hard links to one file (`LINK_MAX`).
pub const LINK_MAX: u32 = 32767;
/// `DEV_BSIZE`: the unit of `st_blocks`.
pub const DEV_BSIZE: u64 = 512;

/// access(2): existence.
pub const F_OK: u32 = 0;
/// access(2): execute/search.
pub const X_OK: u32 = 1;
/// access(2): write.
pub const W_OK: u32 = 2;
/// access(2): read.
pub const R_OK: u32 = 4;

/// `d_type`: unknown.
pub const DT_UNKNOWN: u8 = 0;
/// `IFTODT(mode)`: the `d_type` of a file type.
pub const fn iftodt(mode: u32) -> u8 {
    ((mode & super::S_IFMT) >> 12) as u8
}

/// `tv_nsec` meaning "now" in utimensat.
pub const UTIME_NOW: i64 = 0x3fff_ffff;
/// `tv_nsec` meaning "leave unchanged" in utimensat.
pub const UTIME_OMIT: i64 = 0x3fff_fffe;

/// fsync_range: data only.
pub const FDATASYNC: i32 = 0x0010;
/// fsync_range: data and metadata.
pub const FFILESYNC: i32 = 0x0020;
/// fsync_range: flush the disk cache too.
pub const FDISKSYNC: i32 = 0x0040;

/// pathconf: `_PC_LINK_MAX`.
pub const PC_LINK_MAX: i32 = 1;
/// pathconf: `_PC_MAX_CANON`.
pub const PC_MAX_CANON: i32 = 2;
/// pathconf: `_PC_MAX_INPUT`.
pub const PC_MAX_INPUT: i32 = 3;
/// pathconf: `_PC_NAME_MAX`.
pub const PC_NAME_MAX: i32 = 4;
/// pathconf: `_PC_PATH_MAX`.
pub const PC_PATH_MAX: i32 = 5;
/// pathconf: `_PC_PIPE_BUF`.
pub const PC_PIPE_BUF: i32 = 6;
/// pathconf: `_PC_CHOWN_RESTRICTED`.
pub const PC_CHOWN_RESTRICTED: i32 = 7;
/// pathconf: `_PC_NO_TRUNC`.
pub const PC_NO_TRUNC: i32 = 8;
/// pathconf: `_PC_VDISABLE`.
pub const PC_VDISABLE: i32 = 9;
/// pathconf: `_PC_SYNC_IO`.
pub const PC_SYNC_IO: i32 = 10;
/// pathconf: `_PC_FILESIZEBITS`.
pub const PC_FILESIZEBITS: i32 = 11;
/// pathconf: `_PC_SYMLINK_MAX`.
pub const PC_SYMLINK_MAX: i32 = 12;
/// pathconf: `_PC_2_SYMLINKS`.
pub const PC_2_SYMLINKS: i32 = 13;

/// posix_fadvise: highest valid advice (`POSIX_FADV_NOREUSE`).
pub const POSIX_FADV_NOREUSE: i32 = 5;

/// Mount flag: read-only.
pub const MNT_RDONLY: u64 = 0x0000_0001;
/// Mount flag: local file system.
pub const MNT_LOCAL: u64 = 0x0000_1000;
/// Mount flag: the root file system.
pub const MNT_ROOTFS: u64 = 0x0000_4000;
/// statvfs1 flag: wait for fresh numbers.
pub const ST_WAIT: i32 = 1;
/// statvfs1 flag: do not wait.
pub const ST_NOWAIT: i32 = 2;
/// getvfsstat flag: `MNT_LAZY`.
pub const MNT_LAZY: i32 = 3;

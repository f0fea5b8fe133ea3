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
/// Mount flag: all I/O synchronous.
pub const MNT_SYNCHRONOUS: u64 = 0x0000_0002;
/// Mount flag: no execution of binaries.
pub const MNT_NOEXEC: u64 = 0x0000_0004;
/// Mount flag: set-user-id and set-group-id bits ignored.
pub const MNT_NOSUID: u64 = 0x0000_0008;
/// Mount flag: device nodes cannot be opened (`ENXIO`).
pub const MNT_NODEV: u64 = 0x0000_0010;
/// Mount flag: union with the covered directory.
pub const MNT_UNION: u64 = 0x0000_0020;
/// Mount flag: asynchronous writes.
pub const MNT_ASYNC: u64 = 0x0000_0040;
/// Mount flag: exported (NFS), refused by mount(2).
pub const MNT_EXPORTED: u64 = 0x0000_0100;
/// Mount flag: local file system.
pub const MNT_LOCAL: u64 = 0x0000_1000;
/// Mount flag: the root file system.
pub const MNT_ROOTFS: u64 = 0x0000_4000;
/// Mount flag: no core dumps written.
pub const MNT_NOCOREDUMP: u64 = 0x0000_8000;
/// mount(2) operation: change an existing mount.
pub const MNT_UPDATE: u64 = 0x0001_0000;
/// Mount flag: relative access-time updates.
pub const MNT_RELATIME: u64 = 0x0002_0000;
/// mount(2) operation: reload a read-only file system.
pub const MNT_RELOAD: u64 = 0x0004_0000;
/// mount(2)/unmount(2) operation: force.
pub const MNT_FORCE: u64 = 0x0008_0000;
/// Mount flag: hidden from df.
pub const MNT_IGNORE: u64 = 0x0010_0000;
/// mount(2) operation: copy the mount arguments out.
pub const MNT_GETARGS: u64 = 0x0040_0000;
/// Mount flag: discard (TRIM) freed blocks.
pub const MNT_DISCARD: u64 = 0x0080_0000;
/// Mount flag: extended attributes.
pub const MNT_EXTATTR: u64 = 0x0100_0000;
/// Mount flag: metadata journaling (WAPBL, FFS).
pub const MNT_LOG: u64 = 0x0200_0000;
/// Mount flag: access times are not updated.
pub const MNT_NOATIME: u64 = 0x0400_0000;
/// Mount flag: automounted.
pub const MNT_AUTOMOUNTED: u64 = 0x1000_0000;
/// Mount flag: symbolic-link permissions checked.
pub const MNT_SYMPERM: u64 = 0x2000_0000;
/// Mount flag: device nodes' times not updated.
pub const MNT_NODEVMTIME: u64 = 0x4000_0000;
/// Mount flag: soft dependencies.
pub const MNT_SOFTDEP: u64 = 0x8000_0000;
/// The flags mount(2) keeps for a file system (`MNT_BASIC_FLAGS | MNT_IGNORE`).
pub const MNT_BASIC_FLAGS: u64 = MNT_ASYNC
    | MNT_AUTOMOUNTED
    | MNT_DISCARD
    | MNT_EXTATTR
    | MNT_LOG
    | MNT_NOATIME
    | MNT_NOCOREDUMP
    | MNT_NODEV
    | MNT_NODEVMTIME
    | MNT_NOEXEC
    | MNT_NOSUID
    | MNT_RDONLY
    | MNT_RELATIME
    | MNT_SOFTDEP
    | MNT_SYMPERM
    | MNT_SYNCHRONOUS
    | MNT_UNION
    | MNT_IGNORE;
/// Operation bits of mount(2)/unmount(2), never stored (`MNT_OP_FLAGS`).
pub const MNT_OP_FLAGS: u64 = MNT_UPDATE | MNT_RELOAD | MNT_FORCE | MNT_GETARGS;
/// Longest mount argument structure copied in (`VFS_MAX_MOUNT_DATA`).
pub const VFS_MAX_MOUNT_DATA: usize = 8192;
/// Size of a file-system type name buffer, NUL included (`_VFS_NAMELEN`).
pub const VFS_NAMELEN: usize = 32;
/// statvfs1 flag: wait for fresh numbers.
pub const ST_WAIT: i32 = 1;
/// statvfs1 flag: do not wait.
pub const ST_NOWAIT: i32 = 2;
/// getvfsstat flag: `MNT_LAZY`.
pub const MNT_LAZY: i32 = 3;

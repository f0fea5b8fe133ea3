//! open(2) flags, fcntl(2) commands, `*at()` flags (netbsd-abi.md §5.2–§5.5).

/// Open for reading only.
pub const O_RDONLY: u32 = 0x0000_0000;
/// Open for writing only.
pub const O_WRONLY: u32 = 0x0000_0001;
/// Open for reading and writing.
pub const O_RDWR: u32 = 0x0000_0002;
/// Mask of the access mode.
pub const O_ACCMODE: u32 = 0x0000_0003;
/// No delay.
pub const O_NONBLOCK: u32 = 0x0000_0004;
/// Append on each write.
pub const O_APPEND: u32 = 0x0000_0008;
/// Open with shared file lock.
pub const O_SHLOCK: u32 = 0x0000_0010;
/// Open with exclusive file lock.
pub const O_EXLOCK: u32 = 0x0000_0020;
/// Signal pgrp when data ready.
pub const O_ASYNC: u32 = 0x0000_0040;
/// Synchronous writes.
pub const O_SYNC: u32 = 0x0000_0080;
/// Don't follow symlinks on the last path component.
pub const O_NOFOLLOW: u32 = 0x0000_0100;
/// Create if nonexistent.
pub const O_CREAT: u32 = 0x0000_0200;
/// Truncate to zero length.
pub const O_TRUNC: u32 = 0x0000_0400;
/// Error if already exists.
pub const O_EXCL: u32 = 0x0000_0800;
/// Don't assign a controlling terminal.
pub const O_NOCTTY: u32 = 0x0000_8000;
/// Write: I/O data completion.
pub const O_DSYNC: u32 = 0x0001_0000;
/// Read: I/O completion as for write.
pub const O_RSYNC: u32 = 0x0002_0000;
/// Use alternate I/O semantics.
pub const O_ALT_IO: u32 = 0x0004_0000;
/// Direct I/O hint.
pub const O_DIRECT: u32 = 0x0008_0000;
/// Fail if not a directory.
pub const O_DIRECTORY: u32 = 0x0020_0000;
/// Set close-on-exec.
pub const O_CLOEXEC: u32 = 0x0040_0000;
/// Skip search permission checks.
pub const O_SEARCH: u32 = 0x0080_0000;
/// Don't deliver SIGPIPE.
pub const O_NOSIGPIPE: u32 = 0x0100_0000;
/// Fail if not a regular file.
pub const O_REGULAR: u32 = 0x0200_0000;
/// Open for executing only.
pub const O_EXEC: u32 = 0x0400_0000;

/// Kernel `f_flag`: open for reading (`FFLAGS(O_RDONLY)`).
pub const FREAD: u32 = 0x0000_0001;
/// Kernel `f_flag`: open for writing.
pub const FWRITE: u32 = 0x0000_0002;
/// Kernel `f_flag` bits that `F_SETFL` may change (NetBSD's `FCNTLFLAGS`).
pub const FCNTLFLAGS: u32 = O_APPEND
    | O_ASYNC
    | O_SYNC
    | O_NONBLOCK
    | O_DSYNC
    | O_RSYNC
    | O_ALT_IO
    | O_DIRECT
    | O_NOSIGPIPE;

/// `FFLAGS(oflags)`: open(2) flags to kernel `f_flag` (NetBSD adds one; wrapping as C does).
pub const fn fflags(oflags: u32) -> u32 {
    oflags.wrapping_add(1)
}

/// `OFLAGS(fflags)`: kernel `f_flag` back to open(2) flags.
pub const fn oflags(fflags: u32) -> u32 {
    fflags.wrapping_sub(1)
}

/// Duplicate a descriptor (lowest ≥ arg).
pub const F_DUPFD: i32 = 0;
/// Get descriptor flags.
pub const F_GETFD: i32 = 1;
/// Set descriptor flags.
pub const F_SETFD: i32 = 2;
/// Get file status flags.
pub const F_GETFL: i32 = 3;
/// Set file status flags.
pub const F_SETFL: i32 = 4;
/// Get SIGIO/SIGURG owner.
pub const F_GETOWN: i32 = 5;
/// Set SIGIO/SIGURG owner.
pub const F_SETOWN: i32 = 6;
/// Get record lock.
pub const F_GETLK: i32 = 7;
/// Set record lock.
pub const F_SETLK: i32 = 8;
/// Set record lock, waiting.
pub const F_SETLKW: i32 = 9;
/// Close all descriptors ≥ fd.
pub const F_CLOSEM: i32 = 10;
/// Highest open descriptor.
pub const F_MAXFD: i32 = 11;
/// F_DUPFD with close-on-exec set.
pub const F_DUPFD_CLOEXEC: i32 = 12;
/// Get the SIGPIPE-suppression flag.
pub const F_GETNOSIGPIPE: i32 = 13;
/// Set the SIGPIPE-suppression flag.
pub const F_SETNOSIGPIPE: i32 = 14;
/// Path of the file (vnodes only).
pub const F_GETPATH: i32 = 15;
/// File-system-specific fcntl (bit 31).
pub const F_FSCTL: i32 = 0x8000_0000_u32 as i32;
/// `struct flock` size on amd64.
pub const FLOCK_SIZE: usize = 24;

/// Close-on-exec descriptor flag.
pub const FD_CLOEXEC: i32 = 1;

/// Relative to the current directory.
pub const AT_FDCWD: i32 = -100;
/// Use effective ids in access checks.
pub const AT_EACCESS: i32 = 0x100;
/// Do not follow a final symlink.
pub const AT_SYMLINK_NOFOLLOW: i32 = 0x200;
/// Follow a final symlink.
pub const AT_SYMLINK_FOLLOW: i32 = 0x400;
/// Remove a directory instead of a file.
pub const AT_REMOVEDIR: i32 = 0x800;

/// Seek from the start.
pub const SEEK_SET: i32 = 0;
/// Seek from the current offset.
pub const SEEK_CUR: i32 = 1;
/// Seek from the end.
pub const SEEK_END: i32 = 2;

//! Kernel limits and process constants (sys/param.h, sys/syslimits.h, netbsd-abi.md §5.13).

/// Highest process id; allocation wraps after it (sys/proc.h `PID_MAX`).
pub const PID_MAX: i32 = 30000;
/// `OPEN_MAX` = `NOFILE`: the `RLIMIT_NOFILE` soft limit of proc0, inherited by every process
/// (kern_proc.c `proc0_init`: `min(maxfiles, NOFILE)`; a rump kernel's maxfiles is larger).
pub const OPEN_MAX: usize = 128;
/// Longest command name kept (`MAXCOMLEN`).
pub const MAXCOMLEN: usize = 16;
/// Longest path including the NUL.
pub const PATH_MAX: usize = 1024;
/// Most iovecs in one readv/writev (`IOV_MAX`, `UIO_MAXIOV`).
pub const IOV_MAX: usize = 1024;
/// Size of `struct iovec` on amd64.
pub const IOVEC_SIZE: usize = 16;
/// `SSIZE_MAX` on amd64.
pub const SSIZE_MAX: u64 = i64::MAX as u64;
/// Default file creation mask (`CMASK`).
pub const CMASK: u32 = 0o022;
/// Most supplementary groups (`NGROUPS_MAX`).
pub const NGROUPS_MAX: usize = 16;
/// Longest login name kept, without the NUL (`MAXLOGNAME`).
pub const MAXLOGNAME: usize = 16;
/// Bytes a pipe write is atomic up to (`PIPE_BUF`).
pub const PIPE_BUF: usize = 512;
/// All permission bits (`ALLPERMS`).
pub const ALLPERMS: u32 = 0o7777;

/// Signal: broken pipe.
pub const SIGPIPE: u32 = 13;

//! The NetBSD ABI numbers the workloads use (syscall numbers, open flags, errno values).
//!
//! Kept here rather than taken from `kernel::abi` so that the load generator depends only on
//! the wire protocol and can drive any sp server, NetBSD's own included.

/// `read(fd, buf, nbyte)`.
pub const SYS_READ: u32 = 3;
/// `write(fd, buf, nbyte)`.
pub const SYS_WRITE: u32 = 4;
/// `fcntl(fd, cmd, arg)`.
pub const SYS_FCNTL: u32 = 92;
/// `mkfifo(path, mode)`.
pub const SYS_MKFIFO: u32 = 132;
/// `__socket30(domain, type, protocol)`.
pub const SYS_SOCKET: u32 = 394;
/// `bind(s, name, namelen)`.
pub const SYS_BIND: u32 = 104;
/// `listen(s, backlog)`.
pub const SYS_LISTEN: u32 = 106;
/// `accept(s, name, anamelen)`.
pub const SYS_ACCEPT: u32 = 30;
/// `connect(s, name, namelen)`.
pub const SYS_CONNECT: u32 = 98;
/// `AF_LOCAL`.
pub const AF_LOCAL: u64 = 1;
/// `SOCK_STREAM`.
pub const SOCK_STREAM: u64 = 1;
/// `AF_INET`.
pub const AF_INET: u64 = 2;
/// `setsockopt(s, level, name, val, valsize)`.
pub const SYS_SETSOCKOPT: u32 = 105;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u64 = 6;
/// `TCP_NODELAY`.
pub const TCP_NODELAY: u64 = 1;
/// `F_SETFL`.
pub const F_SETFL: u64 = 4;
/// `O_NONBLOCK`.
pub const O_NONBLOCK: u64 = 4;
/// `open(path, flags, mode)`.
pub const SYS_OPEN: u32 = 5;
/// `close(fd)`.
pub const SYS_CLOSE: u32 = 6;
/// `unlink(path)`.
pub const SYS_UNLINK: u32 = 10;
/// `getpid()`.
pub const SYS_GETPID: u32 = 20;
/// `mkdir(path, mode)`.
pub const SYS_MKDIR: u32 = 136;
/// `pread(fd, buf, nbyte, PAD, offset)`.
pub const SYS_PREAD: u32 = 173;
/// `pwrite(fd, buf, nbyte, PAD, offset)`.
pub const SYS_PWRITE: u32 = 174;
/// `__getdents30(fd, buf, count)`.
pub const SYS_GETDENTS: u32 = 390;
/// `__stat50(path, ub)`.
pub const SYS_STAT: u32 = 439;

/// `O_RDONLY`.
pub const O_RDONLY: u64 = 0;
/// `O_WRONLY`.
pub const O_WRONLY: u64 = 1;
/// `O_RDWR`.
pub const O_RDWR: u64 = 2;
/// `O_CREAT`.
pub const O_CREAT: u64 = 0x200;
/// `O_TRUNC`.
pub const O_TRUNC: u64 = 0x400;
/// `O_DIRECTORY`.
pub const O_DIRECTORY: u64 = 0x20_0000;

/// `EEXIST`.
pub const EEXIST: i32 = 17;
/// `ENOSYS`.
pub const ENOSYS: i32 = 78;

/// The name of a syscall number used here, for messages.
pub fn sysname(nr: u32) -> &'static str {
    match nr {
        SYS_READ => "read",
        SYS_WRITE => "write",
        SYS_FCNTL => "fcntl",
        SYS_MKFIFO => "mkfifo",
        SYS_SOCKET => "__socket30",
        SYS_BIND => "bind",
        SYS_LISTEN => "listen",
        SYS_ACCEPT => "accept",
        SYS_CONNECT => "connect",
        SYS_OPEN => "open",
        SYS_CLOSE => "close",
        SYS_UNLINK => "unlink",
        SYS_GETPID => "getpid",
        SYS_MKDIR => "mkdir",
        SYS_PREAD => "pread",
        SYS_PWRITE => "pwrite",
        SYS_GETDENTS => "__getdents30",
        SYS_STAT => "__stat50",
        _ => "syscall",
    }
}

/// A short text for a NetBSD errno value.
pub fn errname(e: i32) -> String {
    let n = match e {
        1 => "EPERM",
        2 => "ENOENT",
        5 => "EIO",
        9 => "EBADF",
        12 => "ENOMEM",
        13 => "EACCES",
        14 => "EFAULT",
        EEXIST => "EEXIST",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL",
        24 => "EMFILE",
        28 => "ENOSPC",
        35 => "EAGAIN",
        ENOSYS => "ENOSYS",
        _ => return format!("errno {e}"),
    };
    format!("{n} ({e})")
}

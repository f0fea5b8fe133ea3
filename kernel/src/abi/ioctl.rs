//! ioctl(2) command encoding and common commands (netbsd-abi.md §5.15, sys/ioccom.h).

/// Parameter length mask (13 bits).
pub const IOCPARM_MASK: u32 = 0x1fff;
/// Largest parameter the kernel copies (`NBPG`).
pub const IOCPARM_MAX: usize = 4096;
/// No parameters; the pointer value is the argument.
pub const IOC_VOID: u32 = 0x2000_0000;
/// Copy parameters out.
pub const IOC_OUT: u32 = 0x4000_0000;
/// Copy parameters in.
pub const IOC_IN: u32 = 0x8000_0000;
/// Copy in and out.
pub const IOC_INOUT: u32 = IOC_IN | IOC_OUT;

/// `IOCPARM_LEN(com)`: the parameter length encoded in `com`.
pub const fn iocparm_len(com: u32) -> usize {
    ((com >> 16) & IOCPARM_MASK) as usize
}

/// Set close-on-exec.
pub const FIOCLEX: u32 = 0x2000_6601;
/// Clear close-on-exec.
pub const FIONCLEX: u32 = 0x2000_6602;
/// Bytes ready to read.
pub const FIONREAD: u32 = 0x4004_667f;
/// Set/clear non-blocking I/O.
pub const FIONBIO: u32 = 0x8004_667e;
/// Set/clear async I/O.
pub const FIOASYNC: u32 = 0x8004_667d;
/// Set owner (`_IOW('f', 124, int)`).
pub const FIOSETOWN: u32 = 0x8004_667c;
/// Get owner (`_IOR('f', 123, int)`).
pub const FIOGETOWN: u32 = 0x4004_667b;
/// Get termios (`_IOR('t', 19, struct termios)`, 44 bytes).
pub const TIOCGETA: u32 = 0x402c_7413;
/// Size of `struct termios` on amd64.
pub const TERMIOS_SIZE: usize = 44;
/// Media size of a disk.
pub const DIOCGMEDIASIZE: u32 = 0x4008_6484;
/// Flush a disk's write cache.
pub const DIOCCACHESYNC: u32 = 0x8004_6476;
/// Get the disklabel (408 bytes on amd64).
pub const DIOCGDINFO: u32 = 0x4198_6465;
/// `DIOCGPARTINFO` (`_IOW('d',104,struct partinfo)`, 32 bytes): copy-in only, so a client
/// sees nothing of what the driver fills in (NetBSD uses it inside the kernel).
pub const DIOCGPARTINFO: u32 = 0x8020_6468;

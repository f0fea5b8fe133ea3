//! reboot(2) `howto` flags (sys/reboot.h, netbsd-abi.md §5.10).

/// Plain reboot: sync, unmount, exit.
pub const RB_AUTOBOOT: u32 = 0;
/// Ask for the file name to reboot from.
pub const RB_ASKNAME: u32 = 0x0000_0001;
/// Reboot to single user.
pub const RB_SINGLE: u32 = 0x0000_0002;
/// Do not sync before reboot.
pub const RB_NOSYNC: u32 = 0x0000_0004;
/// Halt instead of rebooting (rump: stay alive without sysproxy).
pub const RB_HALT: u32 = 0x0000_0008;
/// Name given for /sbin/init.
pub const RB_INITNAME: u32 = 0x0000_0010;
/// Enter the debugger.
pub const RB_KDB: u32 = 0x0000_0040;
/// Mount root read-only.
pub const RB_RDONLY: u32 = 0x0000_0080;
/// Dump kernel memory (rump: abort()).
pub const RB_DUMP: u32 = 0x0000_0100;
/// Mini root given in memory.
pub const RB_MINIROOT: u32 = 0x0000_0200;
/// A boot string is passed (fetched and ignored).
pub const RB_STRING: u32 = 0x0000_0400;
/// Power down (acts as `RB_HALT`).
pub const RB_POWERDOWN: u32 = RB_HALT | 0x800;
/// Change configured devices.
pub const RB_USERCONF: u32 = 0x0000_1000;
/// Maximum length of the boot string, including the NUL.
pub const RB_BOOTSTR_MAX: usize = 128;

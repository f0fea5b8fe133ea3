//! Character devices of the VFS: `/dev/null` and `/dev/zero` (rumpvfs devnull.c, mem(4)).

use crate::abi::makedev;

/// `/dev/null`: major 2 (the "null" cdevsw the rump kernel attaches), minor 2.
pub const NULL_DEV: u64 = makedev(2, 2);
/// `/dev/zero`: major 2, minor 12.
pub const ZERO_DEV: u64 = makedev(2, 12);

/// A device a vnode's `rdev` reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dev {
    /// Reads end of file, writes vanish.
    Null,
    /// Reads zeros, writes vanish.
    Zero,
}

/// The driver of device number `rdev`; `ENXIO` when no driver is attached.
pub fn lookup(rdev: u64) -> Option<Dev> {
    match rdev {
        NULL_DEV => Some(Dev::Null),
        ZERO_DEV => Some(Dev::Zero),
        _ => None,
    }
}

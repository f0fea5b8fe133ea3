//! NetBSD/amd64 ABI: constants, syscall numbers and structure encoders (netbsd-abi.md).
//!
//! Everything a client sees in bytes or numbers lives here, so that syscall code reads in
//! NetBSD's terms and never passes client values to the host.

mod dirent;
mod fcntl;
mod ioctl;
mod limits;
mod reboot;
mod resource;
mod stat;
mod statvfs;
pub mod sysnum;
mod time;
mod vfs;

pub use dirent::*;
pub use fcntl::*;
pub use ioctl::*;
pub use limits::*;
pub use reboot::*;
pub use resource::*;
pub use stat::*;
pub use statvfs::*;
pub use time::*;
pub use vfs::*;

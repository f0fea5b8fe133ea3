//! The rump kernel in Rust: NetBSD's ABI, processes, descriptors and system calls.
//!
//! A client connection is a [`Proc`]; the sp session calls [`Kernel::syscall`] with NetBSD
//! syscall numbers and reaches the client's memory through [`UserMem`]. The kernel reaches the
//! host only through [`Host`]. It never names the runtime, sockets or the wire protocol.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod abi;
pub mod bio;
pub mod copy;
pub mod dev;
mod errno;
pub mod file;
pub mod fs;
mod host;
pub mod hostio;
mod kern;
pub mod lock;
pub mod mem;
pub mod module;
pub mod proc;
pub mod sync;
pub mod sys;
pub mod sysctl;
mod usermem;
pub mod vfs;

#[cfg(test)]
mod testutil;
#[cfg(test)]
mod tidy;

pub use errno::{Errno, Result};
pub use host::{BackgroundTask, Host, StdHost};
pub use kern::{BootConfig, Kernel};
pub use proc::Proc;
pub use sys::SyscallOutcome;
pub use usermem::{BoxFut, DynMem, UserMem};

/// `kern.ostype`.
pub const OSTYPE: &str = "NetBSD";
/// `kern.osrelease`.
pub const OSRELEASE: &str = "10.1";
/// `hw.machine`.
pub const MACHINE: &str = "amd64";

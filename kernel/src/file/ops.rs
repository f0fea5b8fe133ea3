//! The file-operations interface (NetBSD's `struct fileops`): what every kind of open file
//! implements, and the readiness hooks poll(2), select(2) and kqueue(2) will be built on.
//!
//! A kind of file (console, pipe end, vnode; sockets and kqueues later) is a type that
//! implements [`FileOps`] and a variant of `FileKind` holding it; `File`'s methods dispatch
//! on the variant (a `match`, no virtual call) in one place, `file/mod.rs`. A new kind adds
//! its type, its variant and one arm per method there — the system calls do not change.
//!
//! **Readiness** ([`FileOps::poll`], NetBSD's `fo_poll` + `selrecord`): a file answers which
//! of the asked [`PollEvents`] hold now. When none does and the caller passed a waker, the
//! file registers it ([`crate::sync::WaitQueue::register`]) on every wait queue whose
//! wake-up may change the answer — a pipe end on the queues its readers and writers sleep
//! on — and the caller sleeps until a wake-up, then asks again (a wake-up may be spurious:
//! the answer is what counts). A registration is consumed by the wake-up that finds it; it
//! never holds a lock, and the queues stay bounded by the tasks waiting on them. Planned
//! use: `poll`/`select` ask each descriptor with one waker and sleep once (`EINTR` on exit,
//! the timeout as `sleep_until`); a kqueue's `EVFILT_READ`/`EVFILT_WRITE` knote asks the
//! same hook when its queue wakes it. Queues that pollers register on must be woken with
//! `wake_all` (or the waker passes a `wake_one` on), so a poller never swallows a wake-up
//! meant for a sleeping reader or writer.

use std::sync::Arc;
use std::task::Waker;

use super::{File, Iov};
use crate::abi::Stat;
use crate::{Errno, Kernel, Proc, Result, UserMem};

/// poll(2) event bits (`<sys/poll.h>`, NetBSD's values).
pub type PollEvents = u32;
/// Data to read.
pub const POLLIN: PollEvents = 0x0001;
/// Urgent data to read.
pub const POLLPRI: PollEvents = 0x0002;
/// Writing will not block.
pub const POLLOUT: PollEvents = 0x0004;
/// An error (returned only).
pub const POLLERR: PollEvents = 0x0008;
/// The other side hung up (returned only).
pub const POLLHUP: PollEvents = 0x0010;
/// Not an open descriptor (returned only).
pub const POLLNVAL: PollEvents = 0x0020;
/// Normal data to read.
pub const POLLRDNORM: PollEvents = 0x0040;
/// Normal data may be written (`POLLOUT`).
pub const POLLWRNORM: PollEvents = POLLOUT;
/// Priority data to read.
pub const POLLRDBAND: PollEvents = 0x0080;
/// Priority data may be written.
pub const POLLWRBAND: PollEvents = 0x0100;

/// What every kind of open file does (`fo_read`, `fo_write`, `fo_ioctl`, `fo_fcntl`,
/// `fo_poll`, `fo_stat`, `fo_seek`). `fp` is the open file (flags, offset) the kind's object
/// belongs to; `p` the calling process (its sleeps end with `EINTR` when it exits).
#[allow(async_fn_in_trait)] // statically dispatched: no `dyn`, no `Send` bound needed
pub trait FileOps {
    /// `fo_read` at the file offset (`at` None, then advanced) or at `at` (pread); the
    /// bytes moved and the error that stopped the transfer, if any.
    async fn read<M: UserMem>(
        &self,
        fp: &File,
        k: &Kernel,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
        at: Option<i64>,
    ) -> (u64, Result<()>);

    /// `fo_write`, as [`FileOps::read`].
    async fn write<M: UserMem>(
        &self,
        fp: &File,
        k: &Kernel,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
        at: Option<i64>,
    ) -> (u64, Result<()>);

    /// `fo_ioctl` with the kernel copy of the argument.
    fn ioctl(&self, fp: &File, com: u32, data: &mut [u8]) -> Result<()>;

    /// `fo_fcntl`: `F_SETFL` is accepted, nothing else is supported (`fnullop_fcntl`).
    fn fcntl(&self, cmd: i32, _arg: &mut [u8]) -> Result<()> {
        if cmd == crate::abi::F_SETFL {
            Ok(())
        } else {
            Err(Errno::EOPNOTSUPP)
        }
    }

    /// `fo_stat`.
    fn stat(&self, k: &Kernel) -> Result<Stat>;

    /// `fo_seek`: `ESPIPE` unless the kind has an offset.
    fn seek(&self, _fp: &File, _off: i64, _whence: i32) -> Result<i64> {
        Err(Errno::ESPIPE)
    }

    /// `fo_poll`: which of `events` hold now; with none and a `waker`, the waker is
    /// registered where a change will be announced (see the module documentation).
    fn poll(&self, fp: &File, events: PollEvents, waker: Option<&Waker>) -> PollEvents;

    /// The vnode of a vnode file (record locks, paths, `fstat` of the node).
    fn vnode(&self) -> Option<&Arc<crate::vfs::Vnode>> {
        None
    }
}

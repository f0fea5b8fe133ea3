//! The file-operations interface (NetBSD's `struct fileops`): what every kind of open file
//! implements, and the readiness hooks poll(2), select(2) and kqueue(2) will be built on.
//!
//! A kind of file (console, pipe end, vnode; sockets and kqueues later) is a type that
//! implements [`FileOps`] and a variant of `FileKind` holding it; `File`'s methods dispatch
//! on the variant (a `match`, no virtual call) in one place, `file/mod.rs`. A new kind adds
//! its type, its variant and one arm per method there — the system calls do not change.
//!
//! **Readiness** ([`FileOps::poll`], NetBSD's `fo_poll` + `selrecord`): a file answers which
//! of the asked [`PollEvents`] hold now. When none does and the caller passed a
//! [`Selector`], the file records it ([`Selector::record`]) on every wait queue whose
//! wake-up may change the answer — a pipe end on the queues its readers and writers sleep
//! on — and may lower the selector's deadline ([`Selector::wake_at`], a timer); the caller
//! sleeps until a wake-up, then asks again (a wake-up may be spurious: the answer is what
//! counts). The selector cancels its registrations before each new scan and when it is
//! dropped (`seldeselect`), so queues hold only the registrations of pollers that are
//! waiting now. A registration is consumed by the wake-up that finds it and never holds a
//! lock. Queues that pollers register on must be woken with `wake_all` (or the waker passes
//! a `wake_one` on), so a poller never swallows a wake-up meant for a sleeping reader or
//! writer. To avoid a lost wake-up a file records the selector *before* it reads the state
//! its answer depends on (a waker takes the queue lock after changing that state).
//!
//! poll(2)/select(2) (`sys/select.rs`) ask each descriptor with one selector and sleep once;
//! a kqueue (`file/kqueue.rs`) keeps one selector per knote, whose waker marks the knote
//! and wakes the kqueue's own queue. Its `EVFILT_READ`/`EVFILT_WRITE` knotes ask
//! [`FileOps::filter`], which by default derives the answer from `poll` (a new kind gets
//! poll, select and kqueue from its one `poll` method).

use std::sync::Arc;

pub use crate::sync::Selector;

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

    /// `fo_poll`: which of `events` hold now; with none and a selector, the selector is
    /// recorded where a change will be announced (see the module documentation).
    fn poll(&self, fp: &File, events: PollEvents, sel: Option<&mut Selector>) -> PollEvents;

    /// `fo_kqfilter` + the filter's `f_event` for `EVFILT_READ`/`EVFILT_WRITE`: whether a
    /// knote of `filter` fires now, with its `data` and `EV_EOF`; an error refuses the
    /// knote (at `EV_ADD`). By default the answer of [`FileOps::poll`] for `POLLIN` or
    /// `POLLOUT` (data 0, `EV_EOF` with `POLLHUP`).
    fn filter(&self, fp: &File, filter: Filter, sel: Option<&mut Selector>) -> Result<Filt> {
        Ok(Filt::from_poll(
            filter,
            self.poll(fp, filter.poll_events(), sel),
        ))
    }

    /// The vnode of a vnode file (record locks, paths, `fstat` of the node).
    fn vnode(&self) -> Option<&Arc<crate::vfs::Vnode>> {
        None
    }
}

/// The descriptor filters of kqueue (`EVFILT_READ`, `EVFILT_WRITE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// `EVFILT_READ`.
    Read,
    /// `EVFILT_WRITE`.
    Write,
}

impl Filter {
    /// The poll event this filter waits for: `POLLIN` for `EVFILT_READ`, `POLLOUT` for
    /// `EVFILT_WRITE`.
    pub fn poll_events(self) -> PollEvents {
        match self {
            Filter::Read => POLLIN,
            Filter::Write => POLLOUT,
        }
    }
}

/// A filter's answer: fires or not, its `data` and whether it reports `EV_EOF`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filt {
    /// The knote fires.
    pub ready: bool,
    /// `kn_data`: bytes to read, room to write.
    pub data: i64,
    /// `EV_EOF`: the other side is gone.
    pub eof: bool,
}

impl Filt {
    /// The default answer from a poll of `filter`'s event that returned `r`: fires on that
    /// event or `POLLHUP`, data 0, `EV_EOF` with `POLLHUP`.
    pub fn from_poll(filter: Filter, r: PollEvents) -> Filt {
        Filt {
            ready: r & (filter.poll_events() | POLLHUP) != 0,
            data: 0,
            eof: r & POLLHUP != 0,
        }
    }
}

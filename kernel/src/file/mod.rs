//! Open files (`struct file`): the object a descriptor refers to, shared by dup and fork.
//!
//! A [`File`] holds what every kind shares (status flags, offset) and a [`FileKind`] with the
//! kind-specific object, NetBSD's `f_type` + `f_ops` + `f_data`. Every kind implements
//! [`FileOps`] (`ops.rs`, with the readiness hooks); a new kind is a new enum variant with
//! its own module and one arm in [`dispatch!`]. Syscalls call the `File` methods, which
//! dispatch statically.

mod console;
pub mod ext;
pub mod kqueue;
pub mod ops;
pub mod pipe;
mod vnode;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::abi::{Stat, Timespec, FREAD, FWRITE, O_NONBLOCK};
use crate::{Kernel, Proc, Result, UserMem};

pub use console::Console;
pub use ext::FactionFile;
pub use kqueue::KQueue;
pub use ops::{FileOps, Filt, Filter, PollEvents, Selector};
pub use pipe::{Fifo, Pipe, PipeEnd};
pub use vnode::{VnFile, VN_CHUNK_MAX};

/// A span of client memory: `struct iovec`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iov {
    /// Client address.
    pub base: u64,
    /// Length in bytes.
    pub len: u64,
}

/// What kind of object an open file is.
pub enum FileKind {
    /// The rump console (`rumpcons`): write-only character device.
    Console(Console),
    /// One end of a pipe(2) (`DTYPE_PIPE`).
    Pipe(PipeEnd),
    /// An open vnode (`DTYPE_VNODE`).
    Vnode(VnFile),
    /// A kqueue (`DTYPE_KQUEUE`).
    Kqueue(KQueue),
    /// An object of a faction outside this crate (`DTYPE_SOCKET` of the socket layer).
    Faction(Box<dyn FactionFile>),
}

/// Calls a [`FileOps`] method on the kind-specific object of a file (`$f` bound to it): the
/// one place that lists the kinds.
macro_rules! dispatch {
    ($kind:expr, $f:ident => $call:expr) => {
        match $kind {
            FileKind::Console($f) => $call,
            FileKind::Pipe($f) => $call,
            FileKind::Vnode($f) => $call,
            FileKind::Kqueue($f) => $call,
            FileKind::Faction($f) => $call,
        }
    };
}

/// An open file. Shared (`Arc<File>`) by every descriptor that refers to it.
pub struct File {
    /// Kernel `f_flag`: `FREAD`/`FWRITE` and the `O_*` status bits.
    flag: AtomicU32,
    /// The file offset, shared by all descriptors of this file. Never held across an await.
    offset: Mutex<i64>,
    kind: FileKind,
}

impl File {
    /// A new open file with kernel flags `flag` (`FFLAGS` of the open(2) flags).
    pub fn new(kind: FileKind, flag: u32) -> Arc<File> {
        Arc::new(File {
            flag: AtomicU32::new(flag),
            offset: Mutex::new(0),
            kind,
        })
    }

    /// The kind-specific object.
    pub fn kind(&self) -> &FileKind {
        &self.kind
    }

    /// Kernel `f_flag`.
    pub fn flag(&self) -> u32 {
        self.flag.load(Ordering::Relaxed)
    }

    /// Sets bits of `f_flag`.
    pub fn flag_or(&self, bits: u32) {
        self.flag.fetch_or(bits, Ordering::Relaxed);
    }

    /// Clears bits of `f_flag`.
    pub fn flag_clear(&self, bits: u32) {
        self.flag.fetch_and(!bits, Ordering::Relaxed);
    }

    /// Replaces the bits `mask` of `f_flag` by those of `value`.
    pub fn flag_replace(&self, mask: u32, value: u32) {
        let _ = self
            .flag
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |f| {
                Some((f & !mask) | (value & mask))
            });
    }

    /// Open for reading.
    pub fn readable(&self) -> bool {
        self.flag() & FREAD != 0
    }

    /// Open for writing.
    pub fn writable(&self) -> bool {
        self.flag() & FWRITE != 0
    }

    /// `O_NONBLOCK` is set (`FNONBLOCK`).
    pub fn nonblock(&self) -> bool {
        self.flag() & O_NONBLOCK != 0
    }

    /// The current file offset.
    pub fn offset(&self) -> i64 {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the file offset.
    pub fn set_offset(&self, off: i64) {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner()) = off;
    }

    /// `fo_read`: reads into the client buffers at the file offset; returns the bytes moved
    /// and the error that stopped the transfer, if any.
    /// `p` is the caller: a sleep in the transfer ends with `EINTR` when it is exiting.
    pub async fn read<M: UserMem>(
        &self,
        k: &Kernel,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
    ) -> (u64, Result<()>) {
        dispatch!(&self.kind, f => FileOps::read(f, self, k, p, mem, iov, None).await)
    }

    /// `fo_write`: writes the client buffers at the file offset; returns the bytes moved and
    /// the error that stopped the transfer, if any.
    /// `p` is the caller: a sleep in the transfer ends with `EINTR` when it is exiting.
    pub async fn write<M: UserMem>(
        &self,
        k: &Kernel,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
    ) -> (u64, Result<()>) {
        dispatch!(&self.kind, f => FileOps::write(f, self, k, p, mem, iov, None).await)
    }

    /// `fo_ioctl` with the kernel copy of the argument (`sys_ioctl` did the copying).
    pub fn ioctl(&self, com: u32, data: &mut [u8]) -> Result<()> {
        dispatch!(&self.kind, f => FileOps::ioctl(f, self, com, data))
    }

    /// `fo_fcntl`: `F_SETFL` (new flags in `arg`) and file-system fcntls.
    pub fn fcntl(&self, cmd: i32, arg: &mut [u8]) -> Result<()> {
        dispatch!(&self.kind, f => FileOps::fcntl(f, cmd, arg))
    }

    /// `fo_stat`.
    pub fn stat(&self, k: &Kernel) -> Result<Stat> {
        dispatch!(&self.kind, f => FileOps::stat(f, k))
    }

    /// `fo_poll`: which of `events` hold now (see [`FileOps::poll`]).
    pub fn poll(&self, events: PollEvents, sel: Option<&mut Selector>) -> PollEvents {
        dispatch!(&self.kind, f => FileOps::poll(f, self, events, sel))
    }

    /// `EVFILT_READ`/`EVFILT_WRITE` on this file (see [`FileOps::filter`]).
    pub fn filter(&self, filter: Filter, sel: Option<&mut Selector>) -> Result<Filt> {
        dispatch!(&self.kind, f => FileOps::filter(f, self, filter, sel))
    }

    /// The kqueue of a kqueue file.
    pub fn kqueue(&self) -> Option<&KQueue> {
        match &self.kind {
            FileKind::Kqueue(k) => Some(k),
            _ => None,
        }
    }

    /// The faction object of a faction file (the socket layer finds its sockets so).
    pub fn faction(&self) -> Option<&dyn FactionFile> {
        match &self.kind {
            FileKind::Faction(f) => Some(&**f),
            _ => None,
        }
    }

    /// Whether this is a vnode (`DTYPE_VNODE`): record locks and paths need one.
    pub fn is_vnode(&self) -> bool {
        self.vnode().is_some()
    }

    /// The vnode of a vnode file.
    pub fn vnode(&self) -> Option<&Arc<crate::vfs::Vnode>> {
        dispatch!(&self.kind, f => FileOps::vnode(f))
    }

    /// pread/preadv: reads at `off` without moving the offset; `ESPIPE` unless a vnode.
    pub async fn read_at<M: UserMem>(
        &self,
        k: &Kernel,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
        off: i64,
    ) -> (u64, Result<()>) {
        dispatch!(&self.kind, f => FileOps::read(f, self, k, p, mem, iov, Some(off)).await)
    }

    /// pwrite/pwritev: writes at `off` without moving the offset.
    pub async fn write_at<M: UserMem>(
        &self,
        k: &Kernel,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
        off: i64,
    ) -> (u64, Result<()>) {
        dispatch!(&self.kind, f => FileOps::write(f, self, k, p, mem, iov, Some(off)).await)
    }

    /// `fo_seek`: `ESPIPE` for everything but vnodes.
    pub fn seek(&self, off: i64, whence: i32) -> Result<i64> {
        dispatch!(&self.kind, f => FileOps::seek(f, self, off, whence))
    }
}

/// `getnanotime()`: the kernel's wall clock, for file times.
pub(crate) fn now(k: &Kernel) -> Timespec {
    Timespec::from_pair(k.host().clock_realtime())
}

//! Open files (`struct file`): the object a descriptor refers to, shared by dup and fork.
//!
//! A [`File`] holds what every kind shares (status flags, offset) and a [`FileKind`] with the
//! kind-specific object, NetBSD's `f_type` + `f_ops` + `f_data`. New kinds (vnodes, pipes) are
//! new enum variants with their own module; syscalls call the `File` methods, which dispatch.

mod console;
pub mod pipe;
mod vnode;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::abi::{Stat, Timespec, FREAD, FWRITE, O_NONBLOCK};
use crate::{Errno, Kernel, Proc, Result, UserMem};

pub use console::Console;
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

    /// `fo_read`: reads into the client buffers; returns the bytes moved and the error that
    /// stopped the transfer, if any.
    /// `p` is the caller: a sleep in the transfer ends with `EINTR` when it is exiting.
    pub async fn read<M: UserMem>(
        &self,
        k: &Kernel,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
    ) -> (u64, Result<()>) {
        match &self.kind {
            // rumpcons: `fo_read` is nullop (and the console is never open for reading).
            FileKind::Console(_) => (0, Ok(())),
            FileKind::Pipe(end) => end.read(p, mem, iov, self.nonblock(), now(k)).await,
            FileKind::Vnode(v) => v.read(self, k, p, mem, iov, None).await,
        }
    }

    /// `fo_write`: writes the client buffers; returns the bytes moved and the error that
    /// stopped the transfer, if any.
    /// `p` is the caller: a sleep in the transfer ends with `EINTR` when it is exiting.
    pub async fn write<M: UserMem>(
        &self,
        k: &Kernel,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
    ) -> (u64, Result<()>) {
        match &self.kind {
            FileKind::Console(c) => c.write(k, mem, iov).await,
            FileKind::Pipe(end) => end.write(p, mem, iov, self.nonblock(), now(k)).await,
            FileKind::Vnode(v) => v.write(self, k, p, mem, iov, None).await,
        }
    }

    /// `fo_ioctl` with the kernel copy of the argument (`sys_ioctl` did the copying).
    pub fn ioctl(&self, com: u32, data: &mut [u8]) -> Result<()> {
        match &self.kind {
            FileKind::Console(c) => c.ioctl(com, data),
            FileKind::Pipe(end) => end.ioctl(com, data),
            FileKind::Vnode(v) => v.ioctl(self, com, data),
        }
    }

    /// `fo_fcntl`: `F_SETFL` (new flags in `arg`) and file-system fcntls.
    pub fn fcntl(&self, cmd: i32, _arg: &mut [u8]) -> Result<()> {
        match &self.kind {
            // fnullop_fcntl: F_SETFL is accepted, everything else is not supported.
            FileKind::Console(_) | FileKind::Pipe(_) if cmd == crate::abi::F_SETFL => Ok(()),
            FileKind::Console(_) | FileKind::Pipe(_) => Err(Errno::EOPNOTSUPP),
            // Vnodes: F_SETFL is accepted (our policy; rumpfs says EINVAL), no fs fcntls.
            FileKind::Vnode(_) if cmd == crate::abi::F_SETFL => Ok(()),
            FileKind::Vnode(_) => Err(Errno::EOPNOTSUPP),
        }
    }

    /// `fo_stat`.
    pub fn stat(&self, k: &Kernel) -> Result<Stat> {
        match &self.kind {
            FileKind::Console(c) => Ok(c.stat(k)),
            FileKind::Pipe(end) => Ok(end.stat()),
            FileKind::Vnode(v) => Ok(v.vn.stat()),
        }
    }

    /// Whether this is a vnode (`DTYPE_VNODE`): record locks and paths need one.
    pub fn is_vnode(&self) -> bool {
        match &self.kind {
            FileKind::Console(_) | FileKind::Pipe(_) => false,
            FileKind::Vnode(_) => true,
        }
    }

    /// The vnode of a vnode file.
    pub fn vnode(&self) -> Option<&Arc<crate::vfs::Vnode>> {
        match &self.kind {
            FileKind::Vnode(v) => Some(&v.vn),
            _ => None,
        }
    }

    /// pread/preadv: reads at `off` without moving the offset; `ESPIPE` unless a vnode
    /// other than a FIFO.
    pub async fn read_at<M: UserMem>(
        &self,
        k: &Kernel,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
        off: i64,
    ) -> (u64, Result<()>) {
        match &self.kind {
            FileKind::Vnode(v) => v.read(self, k, p, mem, iov, Some(off)).await,
            _ => (0, Err(Errno::ESPIPE)),
        }
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
        match &self.kind {
            FileKind::Vnode(v) => v.write(self, k, p, mem, iov, Some(off)).await,
            _ => (0, Err(Errno::ESPIPE)),
        }
    }

    /// `fo_seek`: `ESPIPE` for everything but vnodes.
    pub fn seek(&self, off: i64, whence: i32) -> Result<i64> {
        match &self.kind {
            FileKind::Vnode(v) => v.seek(self, off, whence),
            _ => Err(Errno::ESPIPE),
        }
    }
}

/// `getnanotime()`: the kernel's wall clock, for file times.
fn now(k: &Kernel) -> Timespec {
    Timespec::from_pair(k.host().clock_realtime())
}

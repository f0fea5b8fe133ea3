//! Host files (NetBSD's `rumpuser_bio` door): the [`HostFile`] trait the buffer cache and etfs
//! do their I/O through, host errno translation, and two backends of the three.
//!
//! Design decisions:
//! - **Owned buffers.** Reads and writes move a `Vec<u8>` in and hand it back with the result
//!   (as the runtime's own file type does). A completion-based backend must own the memory
//!   it gives the host kernel until the completion arrives, also when the waiting future is
//!   dropped; a borrowed `&mut [u8]` could not promise that without a bounce copy.
//! - **[`HostIo`]: ready or boxed.** The trait methods return `HostIo`, an enum future: a
//!   synchronous backend ([`StdFile`], [`FaultyFile`] over it) answers with `HostIo::Ready`
//!   and allocates nothing; an asynchronous backend boxes one future per host operation.
//!   Host operations happen only on cache misses, write-back and raw-device transfers, each
//!   of which costs a system call, so one small allocation there is noise, while a cache hit
//!   never reaches this trait. (Generic `async fn` in a trait is not object-safe, and the
//!   kernel holds host files as `Arc<dyn HostFile>` so that every backend fits one etfs
//!   table.) The futures need not be `Send`: they are polled on the loop that started them.
//! - **Errno at the door.** Host (Linux) errno values become NetBSD ones in [`host_errno`],
//!   as `rumpuser_errtrans.c` does; nothing above this module sees a host number.
//! - `len` and `set_len` are synchronous: they are metadata calls made at registration and
//!   start-up, not on the data path.
//!
//! Plugging in the completion-ring backend (it lives outside `kernel/`, in the server, over
//! `ring::fs::File`): implement [`HostFile`] for a wrapper of `ring::fs::File` whose
//! `read_at`/`write_at` return `HostIo::boxed(async move { … })` around the runtime's owned-
//! buffer calls (they run on the ring of the loop polling them, so a request is served on its
//! own loop) and map `std::io::Error` with [`host_errno`]; then hand such files to
//! `Kernel::etfs_register` (for `-d`), or give the kernel a [`HostFileOpener`] for components
//! that open host paths themselves.

mod fault;
mod mem;
mod stdfile;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

pub use fault::{FaultConfig, FaultyFile, FAIL_SCALE};
pub use mem::MemFile;
pub use stdfile::{StdFile, StdOpener};

use crate::{Errno, Result};

/// The result of a transfer: bytes moved (or the error) and the buffer handed back.
pub type IoResult = (Result<usize>, Vec<u8>);

/// A host operation in flight: either already complete (synchronous backends, no allocation)
/// or a boxed future (asynchronous backends).
pub enum HostIo<'a, T> {
    /// Complete; taken on the first poll.
    Ready(Option<T>),
    /// Still running.
    Pending(Pin<Box<dyn Future<Output = T> + 'a>>),
}

impl<'a, T> HostIo<'a, T> {
    /// A completed operation.
    pub fn ready(v: T) -> Self {
        HostIo::Ready(Some(v))
    }

    /// An operation that still has to run.
    pub fn boxed(f: impl Future<Output = T> + 'a) -> Self {
        HostIo::Pending(Box::pin(f))
    }
}

impl<T> Unpin for HostIo<'_, T> {}

impl<T> Future for HostIo<'_, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.get_mut() {
            HostIo::Ready(v) => Poll::Ready(v.take().expect("HostIo polled after completion")),
            HostIo::Pending(f) => f.as_mut().poll(cx),
        }
    }
}

/// A host file opened by the server: positional I/O with NetBSD errno.
///
/// Shared by all loops (`Arc<dyn HostFile>`); every method may be called from any loop
/// thread, concurrently. A transfer may be short (fewer bytes than the buffer): callers that
/// need all of it loop, see [`read_full`] and [`write_full`].
pub trait HostFile: Send + Sync + 'static {
    /// Reads up to `buf.len()` bytes at `off` into `buf`; 0 at end of file.
    fn read_at(&self, buf: Vec<u8>, off: u64) -> HostIo<'_, IoResult>;
    /// Writes `buf` at `off`; returns how many bytes were written.
    fn write_at(&self, buf: Vec<u8>, off: u64) -> HostIo<'_, IoResult>;
    /// `fdatasync`: the data written so far is on stable storage.
    fn sync_data(&self) -> HostIo<'_, Result<()>>;
    /// Current size of the host file (for a device: its media size).
    fn len(&self) -> Result<u64>;
    /// Whether the host file is empty.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Sets the size (`ftruncate`).
    fn set_len(&self, len: u64) -> Result<()>;
    /// Whether the file was opened for writing (a read-only one refuses write opens of
    /// its etfs nodes with `EACCES`).
    fn writable(&self) -> bool {
        true
    }
    /// The host path the file was opened by, when known (for messages and for a module's
    /// name).
    fn host_path(&self) -> Option<std::path::PathBuf> {
        None
    }
    /// For a file the operator marked as a module (`-d …,module`): the path the module
    /// loader opens to load it — one that names this open file, not the host path (the
    /// server's `/proc/self/fd/N`), so replacing the host path cannot change what loads.
    /// `None` (the default): `modctl` refuses to load it. A module file is never writable.
    fn module_path(&self) -> Option<std::path::PathBuf> {
        None
    }
}

/// Opens host files by path for components that name host paths themselves (NetBSD's
/// `rumpuser_open`); the server supplies one that returns its preferred backend.
pub trait HostFileOpener: Send + Sync + 'static {
    /// Opens `path` read-write (read-only when `write` is false), creating it with mode
    /// 0644 when `create` is set.
    fn open(&self, path: &std::path::Path, write: bool, create: bool) -> Result<Arc<dyn HostFile>>;
}

/// Fills `buf` from `off`, looping over short transfers; returns fewer bytes only when end
/// of file comes first (a 0-byte read).
pub async fn read_full(f: &dyn HostFile, mut buf: Vec<u8>, off: u64) -> IoResult {
    let want = buf.len();
    let mut done = 0;
    let mut chunk = Vec::new();
    while done < want {
        chunk.clear();
        chunk.resize(want - done, 0);
        let (r, back) = f
            .read_at(std::mem::take(&mut chunk), off + done as u64)
            .await;
        chunk = back;
        match r {
            Ok(0) => break,
            Ok(n) => {
                let n = n.min(want - done);
                buf[done..done + n].copy_from_slice(&chunk[..n]);
                done += n;
            }
            Err(e) => return (Err(e), buf),
        }
        if done == want {
            break;
        }
    }
    (Ok(done), buf)
}

/// Writes all of `buf` at `off`, looping over short transfers; a write that moves 0 bytes
/// is `EIO` (the host refuses to make progress).
pub async fn write_full(f: &dyn HostFile, buf: Vec<u8>, off: u64) -> IoResult {
    let (r, back) = f.write_at(buf, off).await;
    let n = match r {
        Ok(n) if n >= back.len() => return (Ok(back.len()), back),
        Ok(n) => n,
        Err(e) => return (Err(e), back),
    };
    let mut done = n;
    let mut rest = back[done..].to_vec();
    while done < back.len() {
        let (r, left) = f.write_at(rest, off + done as u64).await;
        match r {
            Ok(0) => return (Err(Errno::EIO), back),
            Ok(n) => {
                done += n;
                rest = left;
                rest.drain(..n.min(rest.len()));
            }
            Err(e) => return (Err(e), back),
        }
    }
    (Ok(done), back)
}

/// Host (Linux) errno → NetBSD errno (`rumpuser_errtrans`). Numbers 1–34 agree except
/// `EAGAIN`; the rest is mapped by name; anything unknown is `EIO`.
pub fn host_errno(raw: i32) -> Errno {
    let n: u16 = match raw {
        11 => 35,  // EAGAIN
        35 => 11,  // EDEADLK
        36 => 63,  // ENAMETOOLONG
        37 => 77,  // ENOLCK
        38 => 78,  // ENOSYS
        39 => 66,  // ENOTEMPTY
        40 => 62,  // ELOOP
        61 => 93,  // ENODATA → ENOATTR
        75 => 84,  // EOVERFLOW
        95 => 45,  // EOPNOTSUPP
        110 => 60, // ETIMEDOUT
        116 => 70, // ESTALE
        122 => 69, // EDQUOT
        125 => 87, // ECANCELED
        1..=34 => raw as u16,
        _ => 5, // EIO
    };
    Errno::from_raw(n)
}

/// A `std::io::Error` → NetBSD errno; errors without an OS number are `EIO`.
pub fn io_errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, host_errno)
}

#[cfg(test)]
pub(crate) mod tests;

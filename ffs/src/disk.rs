//! The disk under a file system: the `Disk` trait, `FileDisk`, `MemDisk` and a `block_on`.
//!
//! The engine reaches its image only through `Disk`. The kernel implements it over its buffer
//! cache; the tools and tests use `FileDisk` (a host file, positional I/O) or `MemDisk`.
//! Requests are at byte offsets (not necessarily sector-aligned: an inode is 128 or 256
//! bytes, a directory chunk 512) and at most 64 KiB long; apart from the superblock (8 KiB at
//! its fixed offset) each lies inside one file-system block. The engine checks every address
//! against the file system's size before it asks.

use crate::{Errno, Result};
use std::future::Future;
use std::os::unix::fs::FileExt;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// Byte-addressed storage holding a file system.
///
/// The futures need not be `Send`: a mount is driven by one task at a time. A read or write
/// that reaches past `size()` fails with `EIO` (the engine checks bounds before it asks).
pub trait Disk {
    /// The size of the device in bytes.
    fn size(&self) -> u64;
    /// Reads `buf.len()` bytes at byte offset `off`.
    fn read(&self, off: u64, buf: &mut [u8]) -> impl Future<Output = Result<()>>;
    /// Writes `buf` at byte offset `off`.
    fn write(&self, off: u64, buf: &[u8]) -> impl Future<Output = Result<()>>;
    /// Makes earlier writes durable (fsync of the host file, cache write-back).
    fn flush(&self) -> impl Future<Output = Result<()>>;
    /// A pause between two units of work of a walk whose length the image or the caller
    /// decides (a directory block, an indirect block, a directory of a `..` chain, a
    /// cylinder group). The kernel lets its loop's other tasks run here now and then, and
    /// answers `EINTR` once the calling process is exiting: walks that change nothing stop
    /// on it, the others (truncation) go on to keep the file system consistent. By default
    /// (tools, tests) nothing happens.
    fn pace(&self) -> impl Future<Output = Result<()>> {
        std::future::ready(Ok(()))
    }
}

fn in_bounds(off: u64, len: usize, size: u64) -> Result<()> {
    match off.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(Errno::EIO),
    }
}

/// A host file as a disk: synchronous `pread`/`pwrite`, futures that are ready at once.
#[derive(Debug)]
pub struct FileDisk {
    file: std::fs::File,
    size: u64,
    read_only: bool,
}

impl FileDisk {
    /// Opens `path` read-write (or read-only); the disk's size is the file's length.
    pub fn open(path: &std::path::Path, read_only: bool) -> std::io::Result<FileDisk> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(!read_only)
            .open(path)?;
        let size = file.metadata()?.len();
        Ok(FileDisk {
            file,
            size,
            read_only,
        })
    }

    /// Wraps an open file of `size` bytes.
    pub fn from_file(file: std::fs::File, size: u64, read_only: bool) -> FileDisk {
        FileDisk {
            file,
            size,
            read_only,
        }
    }
}

impl Disk for FileDisk {
    fn size(&self) -> u64 {
        self.size
    }

    async fn read(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        in_bounds(off, buf.len(), self.size)?;
        self.file.read_exact_at(buf, off).map_err(|_| Errno::EIO)
    }

    async fn write(&self, off: u64, buf: &[u8]) -> Result<()> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        in_bounds(off, buf.len(), self.size)?;
        self.file.write_all_at(buf, off).map_err(|_| Errno::EIO)
    }

    async fn flush(&self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.file.sync_data().map_err(|_| Errno::EIO)
    }
}

/// An in-memory disk, shareable: clones see the same bytes (tests remount a "device").
#[derive(Clone, Debug, Default)]
pub struct MemDisk {
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl MemDisk {
    /// A zero-filled disk of `size` bytes.
    pub fn new(size: usize) -> MemDisk {
        MemDisk::from_vec(vec![0; size])
    }

    /// A disk holding `bytes`.
    pub fn from_vec(bytes: Vec<u8>) -> MemDisk {
        MemDisk {
            bytes: Arc::new(Mutex::new(bytes)),
        }
    }

    /// A copy of the contents.
    pub fn to_vec(&self) -> Vec<u8> {
        self.lock().clone()
    }

    /// Runs `f` on the bytes (tests corrupt images with it).
    pub fn with_bytes<R>(&self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        f(&mut self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        // A panic elsewhere while holding the lock leaves plain bytes: still usable.
        self.bytes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Disk for MemDisk {
    fn size(&self) -> u64 {
        self.lock().len() as u64
    }

    async fn read(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        let bytes = self.lock();
        in_bounds(off, buf.len(), bytes.len() as u64)?;
        buf.copy_from_slice(&bytes[off as usize..off as usize + buf.len()]);
        Ok(())
    }

    async fn write(&self, off: u64, buf: &[u8]) -> Result<()> {
        let mut bytes = self.lock();
        in_bounds(off, buf.len(), bytes.len() as u64)?;
        bytes[off as usize..off as usize + buf.len()].copy_from_slice(buf);
        Ok(())
    }

    async fn flush(&self) -> Result<()> {
        Ok(())
    }
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on the calling thread (for the tools and tests).
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memdisk_bounds() {
        let d = MemDisk::new(1024);
        block_on(d.write(1000, &[1; 24])).unwrap();
        assert_eq!(block_on(d.write(1001, &[1; 24])), Err(Errno::EIO));
        let mut b = [0u8; 24];
        block_on(d.read(1000, &mut b)).unwrap();
        assert_eq!(b, [1; 24]);
        assert_eq!(block_on(d.read(u64::MAX, &mut b)), Err(Errno::EIO));
    }
}

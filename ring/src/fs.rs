//! `File`: positioned reads, writes and syncs of a host file through the current loop's ring.
//!
//! Unlike sockets, a host file (a disk image, a block device) is shared by all loops, so `File`
//! is `Send + Sync`; each operation goes through the ring of the loop it is awaited on.
//!
//! On the epoll backend (a host without io_uring) each operation is a plain `pread`, `pwrite`,
//! `fsync` or `fdatasync` made on the loop thread when the future is first polled: it blocks
//! that loop for the duration of the call (a page-cache hit takes microseconds, a cold disk
//! read milliseconds). Regular files are always "ready" for epoll, so readiness cannot help;
//! a thread pool would add a hand-off per call and bounds of its own, for a fallback.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use io_uring::{opcode, squeue, types};

use crate::driver::{Op, OpData};
use crate::epoll::io as eio;
use crate::executor::on_epoll;

fn result(res: i32) -> io::Result<usize> {
    if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        Ok(res as usize)
    }
}

/// A host file for positioned I/O through io_uring (synchronous calls on the epoll backend).
/// Must be awaited on a loop thread.
#[derive(Debug)]
pub struct File {
    fd: OwnedFd,
}

struct ReadData {
    fd: RawFd,
    buf: Vec<u8>,
    off: u64,
}

impl OpData for ReadData {
    fn entry(&mut self) -> squeue::Entry {
        let spare = self.buf.spare_capacity_mut();
        let len = spare.len().min(u32::MAX as usize) as u32;
        opcode::Read::new(types::Fd(self.fd), spare.as_mut_ptr().cast(), len)
            .offset(self.off)
            .build()
    }
}

struct WriteData {
    fd: RawFd,
    buf: Vec<u8>,
    from: usize,
    off: u64,
}

impl OpData for WriteData {
    fn entry(&mut self) -> squeue::Entry {
        let rest = &self.buf[self.from..];
        let len = rest.len().min(u32::MAX as usize) as u32;
        opcode::Write::new(types::Fd(self.fd), rest.as_ptr(), len)
            .offset(self.off)
            .build()
    }
}

struct FsyncData {
    fd: RawFd,
    datasync: bool,
}

impl OpData for FsyncData {
    fn entry(&mut self) -> squeue::Entry {
        let flags = match self.datasync {
            true => types::FsyncFlags::DATASYNC,
            false => types::FsyncFlags::empty(),
        };
        opcode::Fsync::new(types::Fd(self.fd)).flags(flags).build()
    }
}

impl File {
    /// Takes over an open file.
    pub fn from_std(f: std::fs::File) -> File {
        File { fd: f.into() }
    }

    /// Takes over an open descriptor.
    pub fn from_fd(fd: OwnedFd) -> File {
        File { fd }
    }

    /// The file's descriptor.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// `pread(fd, spare, n, off)`: reads into `buf[buf.len()..buf.capacity()]` and extends
    /// `buf` by the bytes read; `Ok(0)` at end of file (or when `buf` has no spare capacity).
    pub async fn read_at(&self, buf: Vec<u8>, off: u64) -> (io::Result<usize>, Vec<u8>) {
        if buf.len() == buf.capacity() {
            return (Ok(0), buf);
        }
        if on_epoll() {
            let mut buf = buf;
            eio::coop().await;
            return (eio::pread(self.fd(), &mut buf, off), buf);
        }
        let (res, _, mut d) = Op::new(ReadData {
            fd: self.fd(),
            buf,
            off,
        })
        .await;
        let r = result(res);
        if let Ok(n) = r {
            let len = d.buf.len() + n;
            assert!(
                len <= d.buf.capacity(),
                "kernel reported more bytes than asked for"
            );
            // SAFETY: the kernel initialised the `n` bytes after the old length.
            unsafe { d.buf.set_len(len) };
        }
        (r, d.buf)
    }

    /// Reads until `buf` is full (`len == capacity`), starting at `off`; `UnexpectedEof` if the
    /// file ends first (the bytes read so far are in `buf`).
    pub async fn read_exact_at(&self, mut buf: Vec<u8>, off: u64) -> (io::Result<()>, Vec<u8>) {
        let start = buf.len();
        while buf.len() < buf.capacity() {
            let pos = off + (buf.len() - start) as u64;
            let (r, b) = self.read_at(buf, pos).await;
            buf = b;
            match r {
                Ok(0) => return (Err(io::ErrorKind::UnexpectedEof.into()), buf),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// `pwrite(fd, buf[from..], off)`: returns the bytes written, which may be fewer.
    pub async fn write_at(
        &self,
        buf: Vec<u8>,
        from: usize,
        off: u64,
    ) -> (io::Result<usize>, Vec<u8>) {
        if from >= buf.len() {
            let r = match from == buf.len() {
                true => Ok(0),
                false => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "write offset past end",
                )),
            };
            return (r, buf);
        }
        if on_epoll() {
            eio::coop().await;
            return (eio::pwrite(self.fd(), &buf[from..], off), buf);
        }
        let (res, _, d) = Op::new(WriteData {
            fd: self.fd(),
            buf,
            from,
            off,
        })
        .await;
        (result(res), d.buf)
    }

    /// Writes all of `buf` at `off`.
    pub async fn write_all_at(&self, mut buf: Vec<u8>, off: u64) -> (io::Result<()>, Vec<u8>) {
        let mut from = 0;
        while from < buf.len() {
            let (r, b) = self.write_at(buf, from, off + from as u64).await;
            buf = b;
            match r {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(n) => from += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// `fsync(fd)`, or `fdatasync(fd)` when `datasync`.
    pub async fn sync(&self, datasync: bool) -> io::Result<()> {
        if on_epoll() {
            eio::coop().await;
            return eio::fsync(self.fd(), datasync);
        }
        let (res, _, _) = Op::new(FsyncData {
            fd: self.fd(),
            datasync,
        })
        .await;
        result(res).map(drop)
    }
}

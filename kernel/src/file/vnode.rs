//! Vnode files (`DTYPE_VNODE`, vfs_vnops.c): read/write/seek/ioctl on an open vnode.
//!
//! Data moves between the client and the vnode in chunks of at most [`VN_CHUNK_MAX`] bytes,
//! copied outside every vnode lock. A write holds the vnode's async I/O lock for its whole
//! length (so writes do not interleave); reads take no lock across awaits. FIFOs forward to
//! the pipe engine, character devices to their driver.
//!
//! Each open vnode file carries its flock(2) identity, made on first use and dropped with
//! the open file (last close across dup and fork), which releases its flock locks.

use std::sync::{Arc, OnceLock};

use super::kqueue::{NOTE_EXTEND, NOTE_WRITE};
use super::{File, Iov, PipeEnd};
use crate::abi::{Timespec, FIOASYNC, FIONBIO, FIONREAD, O_APPEND, SEEK_CUR, SEEK_END, SEEK_SET};
use crate::dev::{self, Dev};
use crate::lock::{FileLockOwner, Locks};
use crate::vfs::{VType, Vnode};
use crate::{copy, Errno, Kernel, Proc, Result, UserMem};

/// Most bytes moved per copy between the client and a vnode.
pub const VN_CHUNK_MAX: usize = 64 * 1024;

/// An open vnode.
pub struct VnFile {
    /// The vnode.
    pub vn: Arc<Vnode>,
    /// For a FIFO: this open's end of the pipe.
    pub fifo: Option<PipeEnd>,
    /// The flock(2) identity of this open file, made on first use (NetBSD's `FHASLOCK`).
    flock: OnceLock<FileLockOwner>,
}

fn now(k: &Kernel) -> Timespec {
    Timespec::from_pair(k.host().clock_realtime())
}

/// The chunks of `iov` from byte `skip` on, each at most [`VN_CHUNK_MAX`] long.
fn chunks(iov: &[Iov]) -> impl Iterator<Item = (u64, usize)> + '_ {
    iov.iter().flat_map(|v| {
        (0..v.len.div_ceil(VN_CHUNK_MAX as u64)).map(move |i| {
            let off = i * VN_CHUNK_MAX as u64;
            let n = (v.len - off).min(VN_CHUNK_MAX as u64) as usize;
            (v.base.wrapping_add(off), n)
        })
    })
}

impl VnFile {
    /// An open vnode (with its FIFO end for a FIFO).
    pub fn new(vn: Arc<Vnode>, fifo: Option<PipeEnd>) -> VnFile {
        VnFile {
            vn,
            fifo,
            flock: OnceLock::new(),
        }
    }

    /// The flock(2) identity of this open file in `locks`, made on first use.
    pub fn flock_owner(&self, locks: &Arc<Locks>) -> &FileLockOwner {
        self.flock
            .get_or_init(|| locks.file_owner(self.vn.lock_key()))
    }

    /// `vn_read`: at the file offset (`at` None, then advanced) or at `at` (pread).
    pub async fn read<M: UserMem>(
        &self,
        fp: &File,
        k: &Kernel,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
        at: Option<i64>,
    ) -> (u64, Result<()>) {
        // A file of a forcibly unmounted file system is dead.
        if self.vn.revoked() {
            return (0, Err(Errno::EIO));
        }
        match self.vn.vtype() {
            VType::Fifo => match &self.fifo {
                Some(end) => end.read(p, mem, iov, fp.nonblock(), now(k)).await,
                None => (0, Err(Errno::EBADF)),
            },
            VType::Chr | VType::Blk if self.vn.drives_data() => {
                self.read_data(fp, iov, at, mem).await
            }
            VType::Chr | VType::Blk => match dev::lookup(self.vn.attr().rdev) {
                Some(Dev::Null) => (0, Ok(())),
                Some(Dev::Zero) => {
                    let mut done = 0;
                    for (addr, n) in chunks(iov) {
                        if let Err(e) = copy::copyout(mem, addr, &vec![0; n]).await {
                            return (done, Err(e));
                        }
                        done += n as u64;
                    }
                    (done, Ok(()))
                }
                None => (0, Err(Errno::ENXIO)),
            },
            VType::Dir => (0, Err(Errno::EISDIR)),
            VType::Reg => self.read_data(fp, iov, at, mem).await,
            _ => (0, Err(Errno::EOPNOTSUPP)),
        }
    }

    /// The data read of regular files and etfs devices, chunk by chunk.
    async fn read_data<M: UserMem>(
        &self,
        fp: &File,
        iov: &[Iov],
        at: Option<i64>,
        mem: &M,
    ) -> (u64, Result<()>) {
        let mut off = at.unwrap_or_else(|| fp.offset()) as u64;
        let mut done = 0;
        let mut res = Ok(());
        for (addr, n) in chunks(iov) {
            let got = match self.vn.is_mem_file() {
                // Memory files are copied straight into the outgoing COPYOUT (no buffer).
                true => {
                    let vn = &self.vn;
                    copy::copyout_fill(mem, addr, n, |out| vn.read_mem_into(off, out).unwrap_or(0))
                        .await
                }
                false => match self.vn.read_at(off, n).await {
                    Ok(data) => copy::copyout(mem, addr, &data).await.map(|()| data.len()),
                    Err(e) => Err(e),
                },
            };
            let got = match got {
                Ok(g) => g,
                Err(e) => {
                    res = Err(e);
                    break;
                }
            };
            off += got as u64;
            done += got as u64;
            if got < n {
                break;
            }
        }
        if at.is_none() {
            fp.set_offset(off as i64);
        }
        (done, res)
    }

    /// `vn_write`: at the file offset or at `at`; with `O_APPEND` always at the end (also
    /// for pwrite, as NetBSD).
    pub async fn write<M: UserMem>(
        &self,
        fp: &File,
        k: &Kernel,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
        at: Option<i64>,
    ) -> (u64, Result<()>) {
        if self.vn.revoked() {
            return (0, Err(Errno::EIO));
        }
        match self.vn.vtype() {
            VType::Fifo => match &self.fifo {
                Some(end) => end.write(p, mem, iov, fp.nonblock(), now(k)).await,
                None => (0, Err(Errno::EBADF)),
            },
            VType::Chr | VType::Blk if self.vn.drives_data() => {
                self.write_reg(fp, k, p, mem, iov, at).await
            }
            VType::Chr | VType::Blk => match dev::lookup(self.vn.attr().rdev) {
                // The null driver consumes everything without looking at it.
                Some(_) => (iov.iter().map(|v| v.len).sum(), Ok(())),
                None => (0, Err(Errno::ENXIO)),
            },
            VType::Dir => (0, Err(Errno::EISDIR)),
            // Open for writing before a forced remount read-only: `EROFS` from then on.
            VType::Reg if self.vn.read_only() => (0, Err(Errno::EROFS)),
            VType::Reg => self.write_reg(fp, k, p, mem, iov, at).await,
            _ => (0, Err(Errno::EOPNOTSUPP)),
        }
    }

    async fn write_reg<M: UserMem>(
        &self,
        fp: &File,
        k: &Kernel,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
        at: Option<i64>,
    ) -> (u64, Result<()>) {
        let append = fp.flag() & O_APPEND != 0;
        let size0 = self.vn.size();
        let mut off = at.unwrap_or_else(|| fp.offset()) as u64;
        let mut done = 0;
        let mut res = Ok(());
        for (addr, n) in chunks(iov) {
            // The client round trip happens before the vnode's I/O lock is taken: a slow or
            // silent client must never hold up other writers of the file. Each chunk (at
            // most 64 KiB) is written atomically under the lock.
            let data = match copy::copyin(mem, addr, n).await {
                Ok(d) => d,
                Err(e) => {
                    res = Err(e);
                    break;
                }
            };
            let _io = match self.vn.io_lock().lock_sig(p).await {
                Ok(g) => g,
                Err(e) => {
                    res = Err(e);
                    break;
                }
            };
            let wrote = self.vn.write_at(off, &data, append).await;
            mem.recycle(data);
            let wrote = match wrote {
                Ok((at, wrote)) => {
                    off = at + wrote as u64;
                    wrote
                }
                Err(e) => {
                    res = Err(e);
                    break;
                }
            };
            done += wrote as u64;
            // A device's end cuts the write short (rumpblk): the rest is not written.
            if wrote < n {
                break;
            }
        }
        if done > 0 {
            let t = now(k);
            self.vn.update(|a| {
                a.mtime = t;
                a.ctime = t;
            });
            let grew = self.vn.size() > size0;
            self.vn
                .klist()
                .knote(NOTE_WRITE | if grew { NOTE_EXTEND } else { 0 });
        }
        if at.is_none() {
            fp.set_offset(off as i64);
        }
        (done, res)
    }

    /// `vn_seek`: the new offset; FIFOs cannot seek.
    pub fn seek(&self, fp: &File, off: i64, whence: i32) -> Result<i64> {
        if self.vn.vtype() == VType::Fifo {
            return Err(Errno::ESPIPE);
        }
        let base = match whence {
            SEEK_SET => 0,
            SEEK_CUR => fp.offset(),
            SEEK_END => self.vn.size() as i64,
            _ => return Err(Errno::EINVAL),
        };
        let new = base.checked_add(off).ok_or(Errno::EINVAL)?;
        let is_dev = matches!(self.vn.vtype(), VType::Chr | VType::Blk);
        if new < 0 && !is_dev {
            return Err(Errno::EINVAL);
        }
        fp.set_offset(new);
        Ok(new)
    }

    /// `vn_ioctl`: `FIONREAD` (bytes after the offset), `FIONBIO`/`FIOASYNC` accepted; the
    /// rest `ENOTTY`. A FIFO forwards to its pipe.
    pub fn ioctl(&self, fp: &File, com: u32, data: &mut [u8]) -> Result<()> {
        if let Some(end) = &self.fifo {
            return end.ioctl(com, data);
        }
        match com {
            FIONREAD if self.vn.vtype() == VType::Reg => {
                let n = (self.vn.size() as i64 - fp.offset()).clamp(0, i64::from(i32::MAX));
                data[..4].copy_from_slice(&(n as i32).to_le_bytes());
                Ok(())
            }
            FIONBIO | FIOASYNC => Ok(()),
            _ if self.vn.vtype() != VType::Reg && self.vn.drives_data() => {
                let n = self.vn.node_ops().ok_or(Errno::ENOTTY)?;
                n.ioctl(com, data)
            }
            _ => Err(Errno::ENOTTY),
        }
    }
}

impl super::FileOps for VnFile {
    async fn read<M: UserMem>(
        &self,
        fp: &File,
        k: &Kernel,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
        at: Option<i64>,
    ) -> (u64, Result<()>) {
        VnFile::read(self, fp, k, p, mem, iov, at).await
    }

    async fn write<M: UserMem>(
        &self,
        fp: &File,
        k: &Kernel,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
        at: Option<i64>,
    ) -> (u64, Result<()>) {
        VnFile::write(self, fp, k, p, mem, iov, at).await
    }

    fn ioctl(&self, fp: &File, com: u32, data: &mut [u8]) -> Result<()> {
        VnFile::ioctl(self, fp, com, data)
    }

    /// Vnodes: F_SETFL is accepted (our policy; rumpfs says EINVAL), no fs fcntls.
    fn fcntl(&self, cmd: i32, _arg: &mut [u8]) -> Result<()> {
        if cmd == crate::abi::F_SETFL {
            Ok(())
        } else {
            Err(Errno::EOPNOTSUPP)
        }
    }

    fn stat(&self, _k: &Kernel) -> Result<crate::abi::Stat> {
        Ok(self.vn.stat())
    }

    fn seek(&self, fp: &File, off: i64, whence: i32) -> Result<i64> {
        VnFile::seek(self, fp, off, whence)
    }

    /// A FIFO answers as its pipe end; other vnodes are always ready (`genfs_poll`).
    fn poll(
        &self,
        _fp: &File,
        events: super::PollEvents,
        sel: Option<&mut super::Selector>,
    ) -> super::PollEvents {
        use super::ops::{POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
        match &self.fifo {
            Some(end) => end.poll(events, sel),
            None => events & (POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM),
        }
    }

    /// A FIFO answers as its pipe end. Other vnodes (`genfs_kqfilter`): readable while the
    /// offset is before the end (`data` = bytes to the end, `filt_genfsread`), `EV_EOF` once
    /// revoked; always writable (`data` 0). The read filter is woken by the vnode's notes.
    fn filter(
        &self,
        fp: &File,
        filter: super::Filter,
        sel: Option<&mut super::Selector>,
    ) -> Result<super::Filt> {
        if let Some(end) = &self.fifo {
            return Ok(end.filter(filter, sel));
        }
        if self.vn.revoked() {
            return Ok(super::Filt {
                ready: true,
                data: 0,
                eof: true,
            });
        }
        if filter == super::Filter::Write {
            return Ok(super::Filt {
                ready: true,
                data: 0,
                eof: false,
            });
        }
        if let Some(s) = sel {
            s.record(self.vn.klist().queue());
        }
        let data = (self.vn.size() as i64).saturating_sub(fp.offset());
        Ok(super::Filt {
            ready: data != 0,
            data,
            eof: false,
        })
    }

    fn vnode(&self) -> Option<&Arc<Vnode>> {
        Some(&self.vn)
    }
}

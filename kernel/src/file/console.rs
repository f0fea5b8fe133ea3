//! The rump console (`rumpcons`, sys/rump/librump/rumpkern/cons.c): fds 0–2 of every process.
//!
//! Write-only: every byte written goes to the host console. Looks just enough like a tty to
//! make `isatty()` true: `TIOCGETA` succeeds, other ioctls are `ENOTTY`.

use super::Iov;
use crate::abi::{Stat, Timespec, S_IFCHR, TIOCGETA};
use crate::{copy, Errno, Kernel, Result, UserMem};

/// Most bytes fetched from the client per COPYIN (NetBSD moves a page at a time; larger
/// chunks save round trips and bound the kernel buffer).
pub const CONSOLE_CHUNK_MAX: usize = 64 * 1024;

/// The console device.
#[derive(Debug, Default)]
pub struct Console;

impl Console {
    /// `rumpcons_write`: copies each buffer in, chunk by chunk, and prints it.
    pub async fn write<M: UserMem>(&self, k: &Kernel, mem: &M, iov: &[Iov]) -> (u64, Result<()>) {
        let mut done = 0u64;
        for v in iov {
            let mut off = 0u64;
            while off < v.len {
                let n = (v.len - off).min(CONSOLE_CHUNK_MAX as u64) as usize;
                let addr = v.base.wrapping_add(off);
                match copy::copyin(mem, addr, n).await {
                    Ok(buf) => k.host().console_write(&buf),
                    Err(e) => return (done, Err(e)),
                }
                off += n as u64;
                done += n as u64;
            }
        }
        (done, Ok(()))
    }

    /// `rumpcons_ioctl`: only `TIOCGETA` (termios left zero), the rest `ENOTTY`.
    pub fn ioctl(&self, com: u32, _data: &mut [u8]) -> Result<()> {
        if com == TIOCGETA {
            Ok(())
        } else {
            Err(Errno::ENOTTY)
        }
    }

    /// `rumpcons_stat`: all zero but the mode (`S_IFCHR | 0600`) and the times (boot time).
    pub fn stat(&self, k: &Kernel) -> Stat {
        let t: Timespec = k.boottime();
        Stat {
            mode: S_IFCHR | 0o600,
            atime: t,
            mtime: t,
            ctime: t,
            birthtime: t,
            ..Stat::default()
        }
    }
}

impl super::FileOps for Console {
    /// rumpcons: `fo_read` is nullop (and the console is never open for reading).
    async fn read<M: UserMem>(
        &self,
        _fp: &super::File,
        _k: &Kernel,
        _p: &crate::Proc,
        _mem: &M,
        _iov: &[Iov],
        at: Option<i64>,
    ) -> (u64, Result<()>) {
        match at {
            Some(_) => (0, Err(Errno::ESPIPE)),
            None => (0, Ok(())),
        }
    }

    async fn write<M: UserMem>(
        &self,
        _fp: &super::File,
        k: &Kernel,
        _p: &crate::Proc,
        mem: &M,
        iov: &[Iov],
        at: Option<i64>,
    ) -> (u64, Result<()>) {
        match at {
            Some(_) => (0, Err(Errno::ESPIPE)),
            None => Console::write(self, k, mem, iov).await,
        }
    }

    fn ioctl(&self, _fp: &super::File, com: u32, data: &mut [u8]) -> Result<()> {
        Console::ioctl(self, com, data)
    }

    fn stat(&self, k: &Kernel) -> Result<Stat> {
        Ok(Console::stat(self, k))
    }

    /// Always writable, never readable (`rumpcons_poll`).
    fn poll(
        &self,
        _fp: &super::File,
        events: super::PollEvents,
        _sel: Option<&mut super::Selector>,
    ) -> super::PollEvents {
        events & (super::ops::POLLOUT | super::ops::POLLWRNORM)
    }

    /// No kqueue filters (`fnullop_kqfilter`).
    fn filter(
        &self,
        _fp: &super::File,
        _filter: super::Filter,
        _sel: Option<&mut super::Selector>,
    ) -> Result<super::Filt> {
        Err(Errno::EOPNOTSUPP)
    }
}

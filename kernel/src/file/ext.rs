//! Files of a faction outside the kernel crate (NetBSD's `DTYPE_SOCKET` of rumpnet): a
//! [`FactionFile`] trait object in `FileKind::Faction`.
//!
//! [`FileOps`] is generic over the caller's memory and dispatched statically; a faction that
//! lives in its own crate (the socket layer) cannot add a variant of its own, so it
//! implements this object-safe mirror instead: client memory arrives as `&dyn DynMem` and
//! the transfers return boxed futures. Readiness is the same contract as
//! [`FileOps::poll`]: record the selector on the queues whose wake-up may change the answer
//! before reading the state. The faction finds its own objects again with
//! [`FactionFile::as_any`]. The object is dropped with the open file (its last close).

use std::any::Any;

use super::ops::{Filt, Filter, PollEvents, Selector};
use super::{File, FileOps, Iov};
use crate::abi::Stat;
use crate::usermem::{BoxFut, DynMem};
use crate::{Errno, Kernel, Proc, Result, UserMem};

/// An open-file object of a faction (see the module documentation).
pub trait FactionFile: Send + Sync + 'static {
    /// [`FileOps::read`].
    fn read<'a>(
        &'a self,
        fp: &'a File,
        k: &'a Kernel,
        p: &'a Proc,
        mem: &'a dyn DynMem,
        iov: &'a [Iov],
        at: Option<i64>,
    ) -> BoxFut<'a, (u64, Result<()>)>;

    /// [`FileOps::write`].
    fn write<'a>(
        &'a self,
        fp: &'a File,
        k: &'a Kernel,
        p: &'a Proc,
        mem: &'a dyn DynMem,
        iov: &'a [Iov],
        at: Option<i64>,
    ) -> BoxFut<'a, (u64, Result<()>)>;

    /// [`FileOps::ioctl`].
    fn ioctl(&self, fp: &File, com: u32, data: &mut [u8]) -> Result<()>;

    /// An ioctl whose argument points at more client memory (NetBSD's handlers copy
    /// through it: `struct ifdrv`, `struct ifconf`). `Some`: the faction runs the request
    /// with the caller's memory, after the kernel copied the argument in and before it
    /// copies it out; `None` (the default): [`FactionFile::ioctl`].
    #[allow(clippy::too_many_arguments)]
    fn ioctl_mem<'a>(
        &'a self,
        _fp: &'a File,
        _k: &'a Kernel,
        _p: &'a Proc,
        _mem: &'a dyn DynMem,
        _com: u32,
        _data: &'a mut [u8],
    ) -> Option<BoxFut<'a, Result<()>>> {
        None
    }

    /// [`FileOps::fcntl`].
    fn fcntl(&self, cmd: i32, _arg: &mut [u8]) -> Result<()> {
        if cmd == crate::abi::F_SETFL {
            Ok(())
        } else {
            Err(Errno::EOPNOTSUPP)
        }
    }

    /// [`FileOps::stat`].
    fn stat(&self, k: &Kernel) -> Result<Stat>;

    /// [`FileOps::poll`].
    fn poll(&self, fp: &File, events: PollEvents, sel: Option<&mut Selector>) -> PollEvents;

    /// [`FileOps::filter`]; by default derived from [`FactionFile::poll`].
    fn filter(&self, fp: &File, filter: Filter, sel: Option<&mut Selector>) -> Result<Filt> {
        Ok(Filt::from_poll(
            filter,
            self.poll(fp, filter.poll_events(), sel),
        ))
    }

    /// The object itself, for the faction to downcast.
    fn as_any(&self) -> &dyn Any;
}

impl FileOps for Box<dyn FactionFile> {
    async fn read<M: UserMem>(
        &self,
        fp: &File,
        k: &Kernel,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
        at: Option<i64>,
    ) -> (u64, Result<()>) {
        FactionFile::read(&**self, fp, k, p, mem as &dyn DynMem, iov, at).await
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
        FactionFile::write(&**self, fp, k, p, mem as &dyn DynMem, iov, at).await
    }

    fn ioctl(&self, fp: &File, com: u32, data: &mut [u8]) -> Result<()> {
        FactionFile::ioctl(&**self, fp, com, data)
    }

    fn fcntl(&self, cmd: i32, arg: &mut [u8]) -> Result<()> {
        FactionFile::fcntl(&**self, cmd, arg)
    }

    fn stat(&self, k: &Kernel) -> Result<Stat> {
        FactionFile::stat(&**self, k)
    }

    fn poll(&self, fp: &File, events: PollEvents, sel: Option<&mut Selector>) -> PollEvents {
        FactionFile::poll(&**self, fp, events, sel)
    }

    fn filter(&self, fp: &File, filter: Filter, sel: Option<&mut Selector>) -> Result<Filt> {
        FactionFile::filter(&**self, fp, filter, sel)
    }
}

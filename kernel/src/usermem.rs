//! `UserMem`: how the kernel reaches a client process's memory (implemented by the session).

use core::future::Future;

use crate::Result;

/// Client memory, one per connection. The kernel applies NetBSD's rules before calling these
/// (a NULL address with a length → `EFAULT` without asking; length 0 → nothing asked): use the
/// wrappers in [`crate::copy`], never these methods directly.
pub trait UserMem {
    /// Exactly `len` bytes from the client at `addr` (`EFAULT` on any failure).
    fn copyin(&self, addr: u64, len: usize) -> impl Future<Output = Result<Vec<u8>>>;
    /// Up to `maxlen` bytes ending at the first NUL, as the client sent them (the kernel
    /// wrapper checks for the NUL).
    fn copyinstr(&self, addr: u64, maxlen: usize) -> impl Future<Output = Result<Vec<u8>>>;
    /// Writes `data` to the client at `addr` (`EFAULT` if the connection is gone).
    fn copyout(&self, addr: u64, data: &[u8]) -> impl Future<Output = Result<()>>;
    /// Writes to the client at `addr` what `fill` puts into a buffer of `len` bytes; `fill`
    /// returns how many it filled (at most `len`: a short read), and so does this. An
    /// implementation may hand `fill` its outgoing buffer (no intermediate copy); `fill` runs
    /// synchronously, exactly once, unless the copy fails before it.
    fn copyout_fill(
        &self,
        addr: u64,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> impl Future<Output = Result<usize>> {
        async move {
            let mut buf = vec![0u8; len];
            let n = fill(&mut buf).min(len);
            if n > 0 {
                self.copyout(addr, &buf[..n]).await?;
            }
            Ok(n)
        }
    }
    /// Takes back a buffer that `copyin` returned, once the kernel is done with it (an
    /// implementation may reuse it for the next copyin).
    fn recycle(&self, _buf: Vec<u8>) {}
    /// Posts a signal (NetBSD number) to the client process.
    fn raise(&self, signo: u32);
}

/// A boxed future borrowing for `'a`: what the object-safe interfaces of factions return.
pub type BoxFut<'a, T> = core::pin::Pin<Box<dyn Future<Output = T> + 'a>>;

/// [`UserMem`] as a trait object, for factions outside this crate (the socket layer): every
/// `UserMem` is one, and `dyn DynMem` is a `UserMem` again, so the [`crate::copy`] wrappers
/// and their rules apply to it unchanged. Each copy costs one boxed future.
pub trait DynMem {
    /// [`UserMem::copyin`].
    fn copyin_dyn(&self, addr: u64, len: usize) -> BoxFut<'_, Result<Vec<u8>>>;
    /// [`UserMem::copyinstr`].
    fn copyinstr_dyn(&self, addr: u64, maxlen: usize) -> BoxFut<'_, Result<Vec<u8>>>;
    /// [`UserMem::copyout`].
    fn copyout_dyn<'a>(&'a self, addr: u64, data: &'a [u8]) -> BoxFut<'a, Result<()>>;
    /// [`UserMem::recycle`].
    fn recycle_dyn(&self, buf: Vec<u8>);
    /// [`UserMem::raise`].
    fn raise_dyn(&self, signo: u32);
}

impl<M: UserMem> DynMem for M {
    fn copyin_dyn(&self, addr: u64, len: usize) -> BoxFut<'_, Result<Vec<u8>>> {
        Box::pin(self.copyin(addr, len))
    }
    fn copyinstr_dyn(&self, addr: u64, maxlen: usize) -> BoxFut<'_, Result<Vec<u8>>> {
        Box::pin(self.copyinstr(addr, maxlen))
    }
    fn copyout_dyn<'a>(&'a self, addr: u64, data: &'a [u8]) -> BoxFut<'a, Result<()>> {
        Box::pin(self.copyout(addr, data))
    }
    fn recycle_dyn(&self, buf: Vec<u8>) {
        self.recycle(buf)
    }
    fn raise_dyn(&self, signo: u32) {
        self.raise(signo)
    }
}

impl UserMem for dyn DynMem + '_ {
    fn copyin(&self, addr: u64, len: usize) -> impl Future<Output = Result<Vec<u8>>> {
        self.copyin_dyn(addr, len)
    }
    fn copyinstr(&self, addr: u64, maxlen: usize) -> impl Future<Output = Result<Vec<u8>>> {
        self.copyinstr_dyn(addr, maxlen)
    }
    async fn copyout(&self, addr: u64, data: &[u8]) -> Result<()> {
        self.copyout_dyn(addr, data).await
    }
    fn recycle(&self, buf: Vec<u8>) {
        self.recycle_dyn(buf)
    }
    fn raise(&self, signo: u32) {
        self.raise_dyn(signo)
    }
}

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

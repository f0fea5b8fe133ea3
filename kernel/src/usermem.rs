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
    /// Posts a signal (NetBSD number) to the client process.
    fn raise(&self, signo: u32);
}

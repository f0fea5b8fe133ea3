//! copyin/copyinstr/copyout with NetBSD's local rules (sys/rump/librump/rumpkern/rumpcopy.c).
//!
//! A NULL user address with a non-zero length fails with `EFAULT` without a request; a zero
//! length asks nothing and succeeds. Answers of the wrong size are `EFAULT`.

use crate::{Errno, Result, UserMem};

/// `copyin(uaddr, len)` — exactly `len` bytes of client memory.
pub async fn copyin<M: UserMem + ?Sized>(mem: &M, addr: u64, len: usize) -> Result<Vec<u8>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if addr == 0 {
        return Err(Errno::EFAULT);
    }
    let data = mem.copyin(addr, len).await?;
    if data.len() != len {
        return Err(Errno::EFAULT);
    }
    Ok(data)
}

/// `copyinstr(uaddr, maxlen)` — a NUL-terminated string of at most `maxlen` bytes including
/// the NUL, returned without it. No NUL within `maxlen` → `ENAMETOOLONG`; `maxlen` 0 → empty.
pub async fn copyinstr<M: UserMem + ?Sized>(mem: &M, addr: u64, maxlen: usize) -> Result<Vec<u8>> {
    if maxlen == 0 {
        return Ok(Vec::new());
    }
    if addr == 0 {
        return Err(Errno::EFAULT);
    }
    let mut data = mem.copyinstr(addr, maxlen).await?;
    if data.len() > maxlen {
        return Err(Errno::EFAULT);
    }
    match data.iter().position(|&b| b == 0) {
        Some(nul) => {
            data.truncate(nul);
            Ok(data)
        }
        None => Err(Errno::ENAMETOOLONG),
    }
}

/// `copyout(kaddr, uaddr, len)` — writes `data` to the client.
pub async fn copyout<M: UserMem + ?Sized>(mem: &M, addr: u64, data: &[u8]) -> Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    if addr == 0 {
        return Err(Errno::EFAULT);
    }
    mem.copyout(addr, data).await
}

/// `copyout` of what `fill` produces, up to `len` bytes (see [`UserMem::copyout_fill`]);
/// returns the bytes copied out.
pub async fn copyout_fill<M: UserMem>(
    mem: &M,
    addr: u64,
    len: usize,
    fill: impl FnOnce(&mut [u8]) -> usize,
) -> Result<usize> {
    if len == 0 {
        return Ok(0);
    }
    if addr == 0 {
        // As `copyout`: a NULL address faults only when there is something to copy (a read
        // at the end of the file into NULL returns 0).
        let mut scratch = vec![0u8; len];
        return match fill(&mut scratch) {
            0 => Ok(0),
            _ => Err(Errno::EFAULT),
        };
    }
    mem.copyout_fill(addr, len, fill).await
}

/// A buffer copied in from the client, handed back to the client memory
/// ([`UserMem::recycle`]) when dropped, so that the next copy reuses it: a path looked up on
/// every open or stat then costs no allocation (the session keeps a few spare buffers).
pub struct Recycled<'a, M: UserMem + ?Sized> {
    buf: Vec<u8>,
    mem: &'a M,
}

impl<'a, M: UserMem + ?Sized> Recycled<'a, M> {
    /// Wraps `buf`, which came from `mem`.
    pub fn new(mem: &'a M, buf: Vec<u8>) -> Self {
        Recycled { buf, mem }
    }
}

impl<M: UserMem + ?Sized> core::ops::Deref for Recycled<'_, M> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl<M: UserMem + ?Sized> Drop for Recycled<'_, M> {
    fn drop(&mut self) {
        self.mem.recycle(core::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{block_on, TestMem};

    #[test]
    fn copyout_fill_copies_what_fill_produced() {
        let mem = TestMem::new();
        mem.map_zero(0x1000, 16);
        let n = block_on(copyout_fill(&mem, 0x1000, 8, |b| {
            b[..3].copy_from_slice(b"abc");
            3
        }));
        assert_eq!(n, Ok(3));
        assert_eq!(mem.read(0x1000, 4), b"abc\0");
        // NULL faults only when there is something to copy.
        assert_eq!(block_on(copyout_fill(&mem, 0, 8, |_| 0)), Ok(0));
        assert_eq!(
            block_on(copyout_fill(&mem, 0, 8, |_| 1)),
            Err(Errno::EFAULT)
        );
        assert_eq!(block_on(copyout_fill(&mem, 0x1000, 0, |_| 1)), Ok(0));
    }

    #[test]
    fn null_and_empty_ask_nothing() {
        let mem = TestMem::new();
        assert_eq!(block_on(copyin(&mem, 0, 4)), Err(Errno::EFAULT));
        assert_eq!(block_on(copyin(&mem, 0x1000, 0)), Ok(vec![]));
        assert_eq!(block_on(copyout(&mem, 0, b"x")), Err(Errno::EFAULT));
        assert_eq!(block_on(copyout(&mem, 0x1000, b"")), Ok(()));
        assert_eq!(block_on(copyinstr(&mem, 0, 10)), Err(Errno::EFAULT));
        assert_eq!(block_on(copyinstr(&mem, 0x1000, 0)), Ok(vec![]));
        assert!(mem.requests().is_empty());
    }

    #[test]
    fn strings_need_their_nul() {
        let mem = TestMem::new();
        mem.map(0x1000, b"hello\0world");
        assert_eq!(
            block_on(copyinstr(&mem, 0x1000, 100)),
            Ok(b"hello".to_vec())
        );
        assert_eq!(block_on(copyinstr(&mem, 0x1000, 6)), Ok(b"hello".to_vec()));
        assert_eq!(
            block_on(copyinstr(&mem, 0x1000, 5)),
            Err(Errno::ENAMETOOLONG)
        );
        assert_eq!(block_on(copyin(&mem, 0x1006, 5)), Ok(b"world".to_vec()));
        assert_eq!(block_on(copyin(&mem, 0x1006, 6)), Err(Errno::EFAULT));
    }

    /// Client memory that records the buffers given back to it.
    struct Spares(std::cell::RefCell<Vec<Vec<u8>>>);

    impl UserMem for Spares {
        async fn copyin(&self, _addr: u64, _len: usize) -> Result<Vec<u8>> {
            Err(Errno::EFAULT)
        }
        async fn copyinstr(&self, _addr: u64, _maxlen: usize) -> Result<Vec<u8>> {
            Err(Errno::EFAULT)
        }
        async fn copyout(&self, _addr: u64, _data: &[u8]) -> Result<()> {
            Err(Errno::EFAULT)
        }
        fn recycle(&self, buf: Vec<u8>) {
            self.0.borrow_mut().push(buf);
        }
        fn raise(&self, _signo: u32) {}
    }

    #[test]
    fn a_recycled_buffer_goes_back_to_the_client_memory_when_dropped() {
        let mem = Spares(Default::default());
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(b"/a/path");
        let ptr = buf.as_ptr();
        let path = Recycled::new(&mem, buf);
        assert_eq!(&*path, b"/a/path");
        assert!(mem.0.borrow().is_empty());
        drop(path);
        let back = mem.0.borrow();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].as_ptr(), ptr, "the same allocation, not a copy");
        assert_eq!(back[0].capacity(), 64);
    }
}

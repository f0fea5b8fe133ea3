//! Client memory regions the server may touch during a call, and serving copy requests from
//! them (sp-protocol.md §6.5–6.6).
//!
//! librumpclient reads and writes whatever address the server names. We only serve addresses
//! inside the regions passed with the call; anything else gets an empty COPYIN response (our
//! server then fails the call with `EFAULT`) or, for COPYOUT, is ignored. No `unsafe`.

/// A memory region the server may access during one call, identified by its address.
#[derive(Debug)]
pub enum Buf<'a> {
    /// The server may read it (COPYIN/COPYINSTR).
    In(&'a [u8]),
    /// The server may write it (COPYOUT).
    Out(&'a mut [u8]),
    /// The server may read and write it.
    InOut(&'a mut [u8]),
}

/// The address of a slice as passed in a syscall argument slot.
pub fn addr_of(s: &[u8]) -> u64 {
    s.as_ptr() as usize as u64
}

impl Buf<'_> {
    /// The region's start address (what goes into the syscall argument).
    pub fn addr(&self) -> u64 {
        match self {
            Buf::In(s) => addr_of(s),
            Buf::Out(s) | Buf::InOut(s) => addr_of(s),
        }
    }

    pub(crate) fn readable(&self) -> Option<&[u8]> {
        match self {
            Buf::In(s) => Some(s),
            Buf::InOut(s) => Some(s),
            Buf::Out(_) => None,
        }
    }

    fn writable(&mut self) -> Option<&mut [u8]> {
        match self {
            Buf::Out(s) | Buf::InOut(s) => Some(s),
            Buf::In(_) => None,
        }
    }
}

/// Offset of `[addr, addr + len)` inside a region of `size` bytes at `base`, if it fits.
fn offset_in(base: u64, size: usize, addr: u64, len: u64) -> Option<usize> {
    let off = addr.checked_sub(base)?;
    let room = (size as u64).checked_sub(off)?;
    (len <= room).then_some(off as usize)
}

/// COPYIN: exactly `len` bytes at `addr` from one readable region, or empty.
pub(crate) fn copyin<'m>(mem: &'m [Buf<'_>], addr: u64, len: u64) -> &'m [u8] {
    for b in mem {
        if let Some(s) = b.readable() {
            if let Some(off) = offset_in(addr_of(s), s.len(), addr, len) {
                return &s[off..off + len as usize];
            }
        }
    }
    &[]
}

/// COPYINSTR: the string at `addr` including its NUL, at most `maxlen` bytes (without a NUL
/// if the string is longer, as librumpclient); empty if the region ends before either.
pub(crate) fn copyinstr<'m>(mem: &'m [Buf<'_>], addr: u64, maxlen: u64) -> &'m [u8] {
    for b in mem {
        let Some(s) = b.readable() else { continue };
        let Some(off) = offset_in(addr_of(s), s.len(), addr, 0) else {
            continue;
        };
        let rest = &s[off..];
        let limit = rest
            .len()
            .min(usize::try_from(maxlen).unwrap_or(usize::MAX));
        if let Some(nul) = rest[..limit].iter().position(|&c| c == 0) {
            return &rest[..=nul];
        }
        if (limit as u64) == maxlen {
            return &rest[..limit];
        }
    }
    &[]
}

/// COPYOUT: writes `data` at `addr` if it fits in one writable region; returns whether it did.
pub(crate) fn copyout(mem: &mut [Buf<'_>], addr: u64, data: &[u8]) -> bool {
    for b in mem {
        if let Some(s) = b.writable() {
            if let Some(off) = offset_in(addr_of(s), s.len(), addr, data.len() as u64) {
                s[off..off + data.len()].copy_from_slice(data);
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copyin_bounds() {
        let a = *b"hello world";
        let mem = [Buf::In(&a)];
        let base = addr_of(&a);
        assert_eq!(copyin(&mem, base, 5), b"hello");
        assert_eq!(copyin(&mem, base + 6, 5), b"world");
        assert_eq!(copyin(&mem, base + 11, 0), b"");
        assert_eq!(copyin(&mem, base + 7, 5), b"", "runs past the end");
        assert_eq!(copyin(&mem, base - 1, 2), b"", "starts before");
        assert_eq!(copyin(&mem, 0, 1), b"");
        assert_eq!(copyin(&mem, u64::MAX, u64::MAX), b"");
        let mut o = [0u8; 4];
        let mem = [Buf::Out(&mut o)];
        assert_eq!(copyin(&mem, mem[0].addr(), 1), b"", "Out is not readable");
    }

    #[test]
    fn copyinstr_bounds() {
        let a = *b"/tmp/f\0junk";
        let mem = [Buf::In(&a)];
        let base = addr_of(&a);
        assert_eq!(copyinstr(&mem, base, 1024), b"/tmp/f\0");
        assert_eq!(copyinstr(&mem, base, 7), b"/tmp/f\0");
        assert_eq!(
            copyinstr(&mem, base, 3),
            b"/tm",
            "longer than maxlen: no NUL"
        );
        assert_eq!(
            copyinstr(&mem, base + 7, 1024),
            b"",
            "region ends before a NUL"
        );
        assert_eq!(copyinstr(&mem, base + 7, 4), b"junk");
        assert_eq!(copyinstr(&mem, base + 100, 4), b"");
    }

    #[test]
    fn copyout_bounds() {
        let mut a = [0u8; 4];
        let mut b = [0u8; 4];
        let ro = [9u8; 4];
        let (pa, pb, pr) = (addr_of(&a), addr_of(&b), addr_of(&ro));
        let mut mem = [Buf::Out(&mut a), Buf::InOut(&mut b), Buf::In(&ro)];
        assert!(copyout(&mut mem, pa + 1, b"xy"));
        assert!(copyout(&mut mem, pb, b"abcd"));
        assert!(!copyout(&mut mem, pb + 1, b"abcd"));
        assert!(!copyout(&mut mem, pr, b"z"), "In is not writable");
        assert_eq!(a, *b"\0xy\0");
        assert_eq!(b, *b"abcd");
        assert_eq!(ro, [9; 4]);
    }
}

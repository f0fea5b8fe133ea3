//! The sp fast path for C programs (docs/sp-fastpath.md): what a call copies in travels with
//! the request. Which arguments point to such memory comes from `syscalls.tab` (build.rs
//! generates `spec`); the bytes are read with `process_vm_readv` on this process, so a bad
//! pointer only means nothing is prefetched (the kernel then asks, and a bad address faults
//! as it does with NetBSD's client, only if the kernel really reads it).

use std::sync::atomic::{AtomicBool, Ordering};

use sp::fast::FastGrant;

/// One argument's memory, by slot index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pf {
    /// A NUL-terminated string.
    Str(usize),
    /// A buffer at slot `.0` of the length in slot `.1`.
    Buf(usize, usize),
    /// An iovec array at `.0` with the count in `.1`; `.2`: the buffers too.
    Iov(usize, usize, bool),
    /// A structure of fixed size.
    Fixed(usize, usize),
}

include!(concat!(env!("OUT_DIR"), "/prefetch.rs"));

/// Longest string prefetched (the kernel's path limit).
const STR_MAX: usize = 1024;
/// Most iovecs looked at.
const IOV_MAX: usize = 64;
const PAGE: u64 = 4096;

/// Set once `process_vm_readv` is refused (seccomp, old kernel): prefetch nothing more.
static NO_READV: AtomicBool = AtomicBool::new(false);

/// Reads up to `len` bytes at `addr` of our own memory; stops at the first unreadable page.
fn read_own(addr: u64, len: usize) -> Vec<u8> {
    if len == 0 || addr == 0 || NO_READV.load(Ordering::Relaxed) {
        return Vec::new();
    }
    let Some(end) = addr.checked_add(len as u64) else {
        return Vec::new();
    };
    let mut buf = vec![0u8; len];
    // Remote pieces split at page boundaries: a transfer stops at the first piece that fails.
    let mut remote: Vec<libc::iovec> = Vec::new();
    let mut a = addr;
    while a < end {
        let next = ((a / PAGE) + 1) * PAGE;
        let stop = next.min(end);
        remote.push(libc::iovec {
            iov_base: a as usize as *mut libc::c_void,
            iov_len: (stop - a) as usize,
        });
        a = stop;
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: len,
    };
    let mut done = 0usize;
    for chunk in remote.chunks(1024) {
        // SAFETY: reads our own address space into `buf` (len bytes, owned); the kernel checks
        // every remote address and reports a fault as an error instead of a signal.
        let n = unsafe {
            let l = libc::iovec {
                iov_base: local.iov_base.cast::<u8>().add(done).cast(),
                iov_len: len - done,
            };
            libc::process_vm_readv(libc::getpid(), &l, 1, chunk.as_ptr(), chunk.len() as _, 0)
        };
        if n < 0 {
            let e = std::io::Error::last_os_error().raw_os_error();
            if matches!(e, Some(libc::ENOSYS) | Some(libc::EPERM)) {
                NO_READV.store(true, Ordering::Relaxed);
            }
            break;
        }
        done += n as usize;
        let want: usize = chunk.iter().map(|v| v.iov_len).sum();
        if (n as usize) < want {
            break;
        }
    }
    buf.truncate(done);
    buf
}

/// A string at `addr`: up to its NUL, or `STR_MAX` bytes without one.
fn read_str(addr: u64) -> Vec<u8> {
    // Up to the end of the page first: most strings end there and the next page may not exist.
    let first = (PAGE - addr % PAGE) as usize;
    let mut v = read_own(addr, first.min(STR_MAX));
    if let Some(n) = v.iter().position(|&c| c == 0) {
        v.truncate(n + 1);
        return v;
    }
    if v.len() == first && first < STR_MAX {
        v.extend(read_own(addr + first as u64, STR_MAX - first));
        if let Some(n) = v.iter().position(|&c| c == 0) {
            v.truncate(n + 1);
        }
    }
    v
}

/// The memory call `nr` with argument `slots` will copy in, at most `g.max_bytes` in all:
/// `(addr, bytes)` in the order of the arguments.
pub(crate) fn gather(nr: u32, slots: &[u64; 8], g: &FastGrant) -> Vec<(u64, Vec<u8>)> {
    let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
    let max = g.max_bytes as usize;
    let used = |out: &Vec<(u64, Vec<u8>)>| out.iter().map(|o| o.1.len()).sum::<usize>();
    let take = |out: &mut Vec<(u64, Vec<u8>)>, a: u64, mut v: Vec<u8>| {
        let k = v.len().min(max - used(out));
        if k > 0 && out.len() < sp::fast::FAST_MAX_RANGES as usize {
            v.truncate(k);
            out.push((a, v));
        }
    };
    for p in spec(nr) {
        let budget = max - used(&out);
        match *p {
            Pf::Str(i) => take(&mut out, slots[i], read_str(slots[i])),
            Pf::Buf(i, l) => {
                let len = (slots[l] as usize).min(budget);
                take(&mut out, slots[i], read_own(slots[i], len));
            }
            Pf::Fixed(i, size) => take(&mut out, slots[i], read_own(slots[i], size)),
            Pf::Iov(i, c, data) => {
                let cnt = (slots[c] as u32 as usize).min(IOV_MAX);
                let arr = read_own(slots[i], (cnt * 16).min(budget));
                let iovs: Vec<(u64, u64)> = arr
                    .chunks_exact(16)
                    .map(|e| {
                        let b = u64::from_le_bytes(e[..8].try_into().unwrap_or([0; 8]));
                        let l = u64::from_le_bytes(e[8..].try_into().unwrap_or([0; 8]));
                        (b, l)
                    })
                    .collect();
                take(&mut out, slots[i], arr);
                if data {
                    for (b, l) in iovs {
                        let len = (l as usize).min(budget);
                        take(&mut out, b, read_own(b, len));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: FastGrant = FastGrant {
        version: 1,
        max_ranges: 64,
        max_bytes: 1 << 20,
    };

    #[test]
    fn the_table_names_what_is_copied_in() {
        assert_eq!(spec(4), &[Pf::Buf(1, 2)]); // write
        assert_eq!(spec(5), &[Pf::Str(0)]); // open
        assert_eq!(spec(9), &[Pf::Str(0), Pf::Str(1)]); // link
        assert_eq!(spec(121), &[Pf::Iov(1, 2, true)]); // writev
        assert_eq!(spec(120), &[Pf::Iov(1, 2, false)]); // readv: only the array
        assert_eq!(spec(174), &[Pf::Buf(1, 2)]); // pwrite
        assert_eq!(spec(58), &[Pf::Str(0)]); // readlink: the buffer is written
        assert!(spec(3).is_empty() && spec(20).is_empty()); // read, getpid
    }

    #[test]
    fn gather_reads_strings_buffers_and_iovecs() {
        let path = b"/tmp/x\0junk";
        let data = *b"0123456789";
        let mut slots = [0u64; 8];
        slots[0] = path.as_ptr() as u64;
        assert_eq!(
            gather(5, &slots, &G),
            vec![(slots[0], b"/tmp/x\0".to_vec())]
        );
        slots = [1, data.as_ptr() as u64, 4, 0, 0, 0, 0, 0];
        assert_eq!(gather(4, &slots, &G), vec![(slots[1], b"0123".to_vec())]);
        let small = FastGrant { max_bytes: 3, ..G };
        assert_eq!(gather(4, &slots, &small)[0].1, b"012");
        let iov: [u64; 4] = [data.as_ptr() as u64, 2, data.as_ptr() as u64 + 5, 3];
        slots = [1, iov.as_ptr() as u64, 2, 0, 0, 0, 0, 0];
        let got = gather(121, &slots, &G);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].1.len(), 32);
        assert_eq!(
            (got[1].1.as_slice(), got[2].1.as_slice()),
            (&b"01"[..], &b"567"[..])
        );
        // Bad pointers prefetch nothing and do not fault.
        slots = [8, 0, 0, 0, 0, 0, 0, 0];
        assert!(gather(5, &slots, &G).is_empty());
        slots = [1, 0x10, 100, 0, 0, 0, 0, 0];
        assert!(gather(4, &slots, &G).is_empty());
    }

    #[test]
    fn a_string_up_to_an_unmapped_page() {
        // The last bytes of a mapping, without a NUL: what is readable, no more, no fault.
        // SAFETY: a fresh two-page mapping, the second page made inaccessible.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_ANON | libc::MAP_PRIVATE,
                -1,
                0,
            ) as *mut u8;
            assert!(!p.is_null());
            libc::mprotect(p.add(4096).cast(), 4096, libc::PROT_NONE);
            std::ptr::write_bytes(p, b'a', 4096);
            let s = read_str(p as u64 + 4090);
            assert_eq!(s, b"aaaaaa");
            *p.add(4095) = 0;
            assert_eq!(read_str(p as u64 + 4090), b"aaaaa\0");
            libc::munmap(p.cast(), 8192);
        }
    }
}

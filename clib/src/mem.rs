//! Serving the server's memory requests from this process's address space, as NetBSD's
//! client does: the addresses are those the program passed in its syscall arguments (and
//! those the kernel derived from them, e.g. iovec buffers). A bad address faults the program,
//! exactly as with NetBSD's client; the server is trusted with our memory by design.

/// COPYIN: `len` bytes at `addr`.
///
/// # Safety
/// `[addr, addr + len)` must be readable memory of this process.
pub(crate) unsafe fn copyin<'a>(addr: u64, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: the caller's contract (the server names memory the program passed).
    unsafe { std::slice::from_raw_parts(addr as usize as *const u8, len) }
}

/// COPYINSTR: the string at `addr` with its NUL, at most `maxlen` bytes (cut without a NUL
/// when longer, so the server answers ENAMETOOLONG).
///
/// # Safety
/// The bytes from `addr` up to the NUL or `maxlen` must be readable.
pub(crate) unsafe fn copyinstr<'a>(addr: u64, maxlen: usize) -> &'a [u8] {
    let p = addr as usize as *const u8;
    let mut n = 0;
    // SAFETY: the caller's contract; we read one byte at a time up to the NUL or maxlen.
    unsafe {
        while n < maxlen {
            let c = *p.add(n);
            n += 1;
            if c == 0 {
                break;
            }
        }
        std::slice::from_raw_parts(p, n)
    }
}

/// COPYOUT: writes `data` at `addr`.
///
/// # Safety
/// `[addr, addr + data.len())` must be writable memory of this process.
pub(crate) unsafe fn copyout(addr: u64, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    // SAFETY: the caller's contract; `data` is our receive buffer, disjoint from it.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), addr as usize as *mut u8, data.len()) }
}

/// The host signal for a NetBSD signal number (rumpuser_sigtrans's table), if Linux has it.
pub(crate) fn host_signal(nb: u32) -> Option<i32> {
    use libc::*;
    Some(match nb {
        1 => SIGHUP,
        2 => SIGINT,
        3 => SIGQUIT,
        4 => SIGILL,
        5 => SIGTRAP,
        6 => SIGABRT,
        8 => SIGFPE,
        9 => SIGKILL,
        10 => SIGBUS,
        11 => SIGSEGV,
        12 => SIGSYS,
        13 => SIGPIPE,
        14 => SIGALRM,
        15 => SIGTERM,
        16 => SIGURG,
        17 => SIGSTOP,
        18 => SIGTSTP,
        19 => SIGCONT,
        20 => SIGCHLD,
        21 => SIGTTIN,
        22 => SIGTTOU,
        23 => SIGIO,
        24 => SIGXCPU,
        25 => SIGXFSZ,
        26 => SIGVTALRM,
        27 => SIGPROF,
        28 => SIGWINCH,
        30 => SIGUSR1,
        31 => SIGUSR2,
        _ => return None, // EMT (7), INFO (29) and others Linux lacks: dropped.
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copyinstr_stops_at_nul_or_max() {
        let s = b"/tmp/f\0junk";
        let a = s.as_ptr() as u64;
        // SAFETY: s is readable for its length.
        unsafe {
            assert_eq!(copyinstr(a, 1024), b"/tmp/f\0");
            assert_eq!(copyinstr(a, 3), b"/tm");
            assert_eq!(copyin(a + 7, 4), b"junk");
        }
    }

    #[test]
    fn signals_translate() {
        assert_eq!(host_signal(13), Some(libc::SIGPIPE));
        assert_eq!(host_signal(30), Some(libc::SIGUSR1));
        assert_eq!(host_signal(29), None);
        assert_eq!(host_signal(0), None);
    }
}

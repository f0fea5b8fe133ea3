//! poll(2), pollts(2), select(2) and pselect(2) (sys_select.c): each descriptor's
//! `FileOps::poll` asked with one selector, the caller asleep until one of them changes,
//! the timeout passes or the client disconnects (`EINTR`).

use super::{ret, Args, Ctx, SysResult};
use crate::abi::Timespec;
use crate::file::ops::{POLLERR, POLLHUP, POLLNVAL, POLLRDBAND, POLLRDNORM, POLLWRNORM};
use crate::sync::select_wait;
use crate::{copy, Errno, Result, UserMem};

/// `struct pollfd`: `int fd; short events; short revents`.
const POLLFD_BYTES: usize = 8;
/// `sigset_t`: four 32-bit words.
const SIGSET_BYTES: usize = 16;
/// `INFTIM`: poll's "no timeout".
const INFTIM: i32 = -1;
/// Bits per `fd_mask`.
const NFDBITS: usize = 32;
/// What each of select's three sets asks (`sel_flag`).
const SEL_FLAG: [u32; 3] = [
    POLLRDNORM | POLLHUP | POLLERR,
    POLLWRNORM | POLLHUP | POLLERR,
    POLLRDBAND,
];

/// `inittimeleft`: the deadline on the monotonic clock `ts` from now; `EINVAL` for a
/// negative time or nanoseconds out of range (`itimespecfix`).
pub(crate) fn deadline(now: (i64, i64), sec: i64, nsec: i64) -> Result<(i64, i64)> {
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    let mut s = now.0.saturating_add(sec);
    let mut n = now.1 + nsec;
    if n >= 1_000_000_000 {
        n -= 1_000_000_000;
        s = s.saturating_add(1);
    }
    Ok((s, n))
}

/// Copies in a `struct timespec` and makes it a deadline (NULL: none).
async fn timespec_deadline<M: UserMem>(c: &Ctx<'_, M>, addr: u64) -> Result<Option<Timespec>> {
    if addr == 0 {
        return Ok(None);
    }
    let b = copy::copyin(c.mem, addr, 16).await?;
    let sec = i64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
    let nsec = i64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
    Ok(Some(Timespec { sec, nsec }))
}

/// Copies in the signal mask of pollts/pselect (rump processes take no signals while
/// they wait: it is checked, not applied).
async fn sigmask<M: UserMem>(c: &Ctx<'_, M>, addr: u64) -> Result<()> {
    if addr != 0 {
        copy::copyin(c.mem, addr, SIGSET_BYTES).await?;
    }
    Ok(())
}

/// `poll(fds, nfds, timeout)` — waits for events on descriptors; `poll(2)`.
pub async fn poll<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let ms = a.int(2);
    let ts = (ms != INFTIM).then(|| Timespec {
        sec: i64::from(ms / 1000),
        nsec: i64::from(ms % 1000) * 1_000_000,
    });
    pollcommon(c, a.word(0), a.uint(1), ts).await
}

/// `__pollts50(fds, nfds, ts, mask)` — poll with a `struct timespec` and a signal mask;
/// `pollts(2)`.
pub async fn pollts<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let ts = timespec_deadline(c, a.word(2)).await?;
    sigmask(c, a.word(3)).await?;
    pollcommon(c, a.word(0), a.uint(1), ts).await
}

/// `pollcommon`: `EINVAL` beyond 1000 + the descriptor table's size (NetBSD's bound on the
/// kernel copy), then the scan, then the `revents` copied back.
async fn pollcommon<M: UserMem>(
    c: &Ctx<'_, M>,
    fds: u64,
    nfds: u32,
    ts: Option<Timespec>,
) -> SysResult {
    if nfds as usize > 1000 + c.p.fd.nfiles() {
        return Err(Errno::EINVAL);
    }
    let n = nfds as usize;
    let mut buf = copy::copyin(c.mem, fds, n * POLLFD_BYTES).await?;
    let host = c.k.host();
    let dl = match ts {
        Some(t) => Some(deadline(host.clock_monotonic(), t.sec, t.nsec)?),
        None => None,
    };
    let fdtab = &c.p.fd;
    let found = select_wait(c.p, host, dl, |sel| {
        let mut hits = 0;
        for e in buf.chunks_exact_mut(POLLFD_BYTES) {
            let fd = i32::from_le_bytes(e[..4].try_into().expect("4 bytes"));
            let events = u32::from(u16::from_le_bytes([e[4], e[5]]));
            let revents = if fd < 0 {
                0
            } else {
                match fdtab.get(fd) {
                    Err(_) => POLLNVAL,
                    Ok(f) => f.poll(events | POLLERR | POLLHUP, Some(&mut *sel)),
                }
            };
            e[6..8].copy_from_slice(&(revents as u16).to_le_bytes());
            hits += usize::from(revents != 0);
        }
        Ok((hits > 0).then_some(hits))
    })
    .await?;
    copy::copyout(c.mem, fds, &buf).await?;
    ret(found.unwrap_or(0) as i64)
}

/// `__select50(nd, in, ou, ex, tv)` — waits for descriptors in three sets; `select(2)`.
pub async fn select<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let ts = match a.word(4) {
        0 => None,
        addr => {
            let b = copy::copyin(c.mem, addr, 16).await?;
            let sec = i64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
            let usec = i64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
            // TIMEVAL_TO_TIMESPEC; out-of-range microseconds fail the range check.
            Some(Timespec {
                sec,
                nsec: usec.saturating_mul(1000),
            })
        }
    };
    selcommon(c, a, ts).await
}

/// `__pselect50(nd, in, ou, ex, ts, mask)` — select with a `struct timespec` and a signal
/// mask; `pselect(2)`.
pub async fn pselect<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let ts = timespec_deadline(c, a.word(4)).await?;
    sigmask(c, a.word(5)).await?;
    selcommon(c, a, ts).await
}

/// `selcommon`: `nd` < 0 is `EINVAL`, beyond the descriptor table's size it is cut to it
/// (NetBSD: "forgiving; slightly wrong"); a set bit on a descriptor not open is `EBADF`.
async fn selcommon<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>, ts: Option<Timespec>) -> SysResult {
    let nd = a.int(0);
    if nd < 0 {
        return Err(Errno::EINVAL);
    }
    let nd = (nd as usize).min(c.p.fd.nfiles());
    let ni = nd.div_ceil(NFDBITS) * (NFDBITS / 8);
    let addrs = [a.word(1), a.word(2), a.word(3)];
    let mut ibits = vec![0u8; ni * 3];
    for (i, &addr) in addrs.iter().enumerate() {
        if addr != 0 && ni > 0 {
            let b = copy::copyin(c.mem, addr, ni).await?;
            ibits[i * ni..(i + 1) * ni].copy_from_slice(&b);
        }
    }
    let host = c.k.host();
    let dl = match ts {
        Some(t) => Some(deadline(host.clock_monotonic(), t.sec, t.nsec)?),
        None => None,
    };
    let fdtab = &c.p.fd;
    let found = select_wait(c.p, host, dl, |sel| {
        let mut obits = vec![0u8; ni * 3];
        let mut n = 0;
        for (set, flag) in SEL_FLAG.iter().enumerate() {
            for fd in 0..nd {
                let byte = set * ni + fd / 8;
                if ibits[byte] & (1 << (fd % 8)) == 0 {
                    continue;
                }
                let f = fdtab.get(fd as i32)?;
                if f.poll(*flag, Some(&mut *sel)) != 0 {
                    obits[byte] |= 1 << (fd % 8);
                    n += 1;
                }
            }
        }
        Ok((n > 0).then_some((n, obits)))
    })
    .await?;
    let (n, obits) = found.unwrap_or_else(|| (0, vec![0u8; ni * 3]));
    for (i, &addr) in addrs.iter().enumerate() {
        if addr != 0 && ni > 0 {
            copy::copyout(c.mem, addr, &obits[i * ni..(i + 1) * ni]).await?;
        }
    }
    ret(n as i64)
}

#[cfg(test)]
mod tests {
    use crate::abi::sysnum::*;
    use crate::testutil::Fixture;
    use crate::Errno;

    fn pollfd(fd: i32, events: u16) -> Vec<u8> {
        let mut b = fd.to_le_bytes().to_vec();
        b.extend_from_slice(&events.to_le_bytes());
        b.extend_from_slice(&[0, 0]);
        b
    }

    /// poll answers per descriptor (POLLNVAL for a closed one), bounds `nfds` by the
    /// table's size plus 1000, refuses a bad timeout; select's `EBADF` and `nd` rules.
    #[test]
    fn poll_and_select_follow_netbsd() {
        let f = Fixture::new();
        let rv = f.call(SYS_pipe, &[]).unwrap();
        let (r, w) = (rv[0] as i32, rv[1] as i32);
        let mut fds = pollfd(r, 1);
        fds.extend(pollfd(w, 4));
        fds.extend(pollfd(40, 1));
        f.mem.map(0x1000, &fds);
        assert_eq!(f.ok(SYS_poll, &[0x1000, 3, 0]), 2);
        let got = f.mem.read(0x1000, 24);
        let rev = |i: usize| u16::from_le_bytes([got[i * 8 + 6], got[i * 8 + 7]]);
        assert_eq!((rev(0), rev(1), rev(2)), (0, 4, 0x20));
        assert_eq!(f.call(SYS_poll, &[0x1000, 1021, 0]), Err(Errno::EINVAL));
        assert_eq!(
            f.call(SYS_poll, &[0x1000, 1, (-5i32) as u32 as u64]),
            Err(Errno::EINVAL)
        );
        // select: a set bit on a closed descriptor below nd is EBADF; nd < 0 EINVAL.
        f.mem.map(0x2000, &(1u32 << 10).to_le_bytes());
        assert_eq!(
            f.call(SYS___select50, &[16, 0x2000, 0, 0, 0]),
            Err(Errno::EBADF)
        );
        f.mem.map(0x3000, &[0u8; 16]);
        assert_eq!(
            f.call(SYS___select50, &[(-1i32) as u32 as u64, 0, 0, 0, 0x3000]),
            Err(Errno::EINVAL)
        );
        f.mem.map(0x6000, &(1u32 << w).to_le_bytes());
        assert_eq!(f.ok(SYS___select50, &[16, 0, 0x6000, 0, 0x3000]), 1);
    }

    /// kevent: EBADF on a non-kqueue, ENOENT deleting a missing knote, EV_ERROR entries
    /// when there is room, a pipe's read data.
    #[test]
    fn kevent_registers_and_reports() {
        let f = Fixture::new();
        let rv = f.call(SYS_pipe, &[]).unwrap();
        let (r, w) = (rv[0] as u64, rv[1] as u64);
        let kq = f.ok(SYS_kqueue, &[]) as u64;
        f.mem.map_zero(0x4000, 16);
        assert_eq!(
            f.call(SYS___kevent50, &[r, 0, 0, 0, 0, 0x4000]),
            Err(Errno::EBADF)
        );
        let kev = |ident: u64, filter: u32, flags: u32| {
            let mut b = vec![0u8; 40];
            b[..8].copy_from_slice(&ident.to_le_bytes());
            b[8..12].copy_from_slice(&filter.to_le_bytes());
            b[12..16].copy_from_slice(&flags.to_le_bytes());
            b
        };
        f.mem.map(0x1000, &kev(r, 0, 2));
        assert_eq!(
            f.call(SYS___kevent50, &[kq, 0x1000, 1, 0, 0, 0x4000]),
            Err(Errno::ENOENT)
        );
        f.mem.map_zero(0x2000, 80);
        assert_eq!(f.ok(SYS___kevent50, &[kq, 0x1000, 1, 0x2000, 2, 0x4000]), 1);
        let out = f.mem.read(0x2000, 40);
        assert_eq!(u32::from_le_bytes(out[12..16].try_into().unwrap()), 0x4000);
        assert_eq!(i64::from_le_bytes(out[24..32].try_into().unwrap()), 2);
        f.mem.map(0x7000, &kev(r, 0, 1));
        assert_eq!(f.ok(SYS___kevent50, &[kq, 0x7000, 1, 0x2000, 2, 0x4000]), 0);
        f.mem.map(0x5000, b"abc");
        assert_eq!(f.ok(SYS_write, &[w, 0x5000, 3]), 3);
        assert_eq!(f.ok(SYS___kevent50, &[kq, 0, 0, 0x2000, 2, 0x4000]), 1);
        let out = f.mem.read(0x2000, 40);
        assert_eq!(i64::from_le_bytes(out[24..32].try_into().unwrap()), 3);
    }
}

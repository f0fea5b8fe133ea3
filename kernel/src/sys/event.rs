//! kqueue(2), kqueue1(2) and kevent(2) in both layouts (kern_event.c `kevent1`): changes
//! copied in and applied in chunks of [`KQ_NEVENTS`], then the scan, asleep until an event,
//! the timeout or a disconnect (`EINTR`).

use super::select::deadline;
use super::{ret, Args, Ctx, SysResult};
use crate::abi::{FREAD, FWRITE, O_CLOEXEC, O_NONBLOCK, O_NOSIGPIPE};
use crate::file::kqueue::{
    Kevent, Register, EV_ERROR, EV_RECEIPT, EV_SYSFLAGS, KEVENT100_BYTES, KEVENT50_BYTES,
};
use crate::file::{File, FileKind, KQueue};
use crate::sync::select_wait;
use crate::{copy, Errno, UserMem};

/// Changes copied in, and events copied out, at a time (`KQ_NEVENTS`).
pub const KQ_NEVENTS: usize = 8;

/// `kqueue()` — a new kqueue; `kqueue(2)`.
pub fn kqueue<M>(c: &Ctx<'_, M>) -> SysResult {
    kqueue1_flags(c, 0)
}

/// `kqueue1(flags)` — a kqueue with `O_CLOEXEC`/`O_NONBLOCK`/`O_NOSIGPIPE` (other bits
/// ignored, as NetBSD); `kqueue(2)`.
pub fn kqueue1<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    kqueue1_flags(c, a.uint(0))
}

fn kqueue1_flags<M>(c: &Ctx<'_, M>, flags: u32) -> SysResult {
    // NetBSD 7.99 ignores unknown bits (it keeps the three it knows).
    let flags = flags & (O_CLOEXEC | O_NONBLOCK | O_NOSIGPIPE);
    let kq = KQueue::new(c.k.host_arc());
    let f = File::new(FileKind::Kqueue(kq), FREAD | FWRITE | (flags & !O_CLOEXEC));
    let fd = c.p.fd.alloc(f, 0, flags & O_CLOEXEC != 0)?;
    ret(i64::from(fd))
}

/// `__kevent50(fd, changelist, nchanges, eventlist, nevents, timeout)` — the 40-byte
/// `struct kevent`; `kevent(2)`.
pub async fn kevent50<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    kevent1(c, a, KEVENT50_BYTES).await
}

/// `__kevent100(...)` — NetBSD 10's 72-byte `struct kevent` (with `ext[4]`); `kevent(2)`.
pub async fn kevent100<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    kevent1(c, a, KEVENT100_BYTES).await
}

/// `kevent1`: `EBADF` unless `fd` is a kqueue; the timeout copied in; each change
/// applied (an error, or `EV_RECEIPT`, goes out as an `EV_ERROR` event while there is room,
/// else it is the call's error); with errors reported their count is the result, else the
/// events found (`EINVAL` for a bad timeout, checked only then, as NetBSD).
async fn kevent1<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>, size: usize) -> SysResult {
    let fp = c.p.fd.get(a.int(0))?;
    let kq = fp.kqueue().ok_or(Errno::EBADF)?;
    let (changes, nchanges) = (a.word(1), a.word(2));
    let (events, mut nevents) = (a.word(3), a.word(4));
    let timeout = match a.word(5) {
        0 => None,
        addr => {
            let b = copy::copyin(c.mem, addr, 16).await?;
            let sec = i64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
            let nsec = i64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
            Some((sec, nsec))
        }
    };
    let reg = Register { p: c.p, k: c.k };
    let mut nerrors = 0u64;
    let mut done = 0u64;
    while done < nchanges {
        let n = (nchanges - done).min(KQ_NEVENTS as u64) as usize;
        let addr = changes.wrapping_add(done * size as u64);
        let buf = copy::copyin(c.mem, addr, n * size).await?;
        for rec in buf.chunks_exact(size) {
            let mut kev = Kevent::decode(rec, size);
            kev.flags &= !EV_SYSFLAGS;
            let res = kq.register(&reg, &kev, c.k.budget());
            if res.is_err() || kev.flags & EV_RECEIPT != 0 {
                if nevents == 0 {
                    res?;
                    continue;
                }
                kev.flags = EV_ERROR;
                kev.data = res.err().map_or(0, |e| i64::from(e.raw()));
                let mut out = Vec::with_capacity(size);
                kev.encode(&mut out, size);
                copy::copyout(c.mem, events.wrapping_add(nerrors * size as u64), &out).await?;
                nevents -= 1;
                nerrors += 1;
            }
        }
        done += n as u64;
    }
    if nerrors > 0 {
        return ret(nerrors as i64);
    }
    if nevents == 0 {
        return ret(0);
    }
    let host = c.k.host();
    let dl = match timeout {
        Some((s, ns)) => Some(deadline(host.clock_monotonic(), s, ns)?),
        None => None,
    };
    // The events are at most the knotes (charged to the budget); copied out in chunks.
    let max = usize::try_from(nevents).unwrap_or(usize::MAX);
    let found = select_wait(c.p, host, dl, |sel| {
        let evs = kq.scan(Some(c.p), host.clock_monotonic(), max, Some(sel));
        Ok((!evs.is_empty()).then_some(evs))
    })
    .await?
    .unwrap_or_default();
    for (i, chunk) in found.chunks(KQ_NEVENTS).enumerate() {
        let mut out = Vec::with_capacity(chunk.len() * size);
        for e in chunk {
            e.encode(&mut out, size);
        }
        let at = events.wrapping_add((i * KQ_NEVENTS * size) as u64);
        copy::copyout(c.mem, at, &out).await?;
    }
    ret(found.len() as i64)
}

//! Descriptor syscalls: close, dup family, fcntl, fstat (sys_descrip.c, kern_descrip.c).

use super::{ret, Args, Ctx, SysResult};
use crate::abi::*;
use crate::{copy, Errno, UserMem};

/// `close(fd)` — deletes a descriptor; `close(2)`.
pub fn close<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    drop(c.p.fd.close(a.int(0))?);
    ret(0)
}

/// `dup(fd)` — duplicates a descriptor onto the lowest free number; `dup(2)`.
pub fn dup<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let fp = c.p.fd.get(a.int(0))?;
    ret(i64::from(c.p.fd.alloc(fp, 0, false)?))
}

/// `dup2(from, to)` — duplicates a descriptor onto `to`; `dup2(2)`.
pub fn dup2<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    dodup(c, a.int(0), a.int(1), 0)
}

/// `dup3(from, to, flags)` under number 454 (compat_100): `from == to` succeeds.
pub fn dup3_compat<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    dodup(c, a.int(0), a.int(1), a.uint(2))
}

/// `dup3(from, to, flags)` (`__dup3100`, 505) — as dup2 with `O_CLOEXEC`/`O_NONBLOCK`/
/// `O_NOSIGPIPE`; `from == to` → `EINVAL`; `dup3(2)`.
pub fn dup3<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    if a.int(0) == a.int(1) {
        return Err(Errno::EINVAL);
    }
    dodup(c, a.int(0), a.int(1), a.uint(2))
}

/// NetBSD's `dodup`: `to` at or above the descriptor limit → `EBADF`; `from == to` → no-op.
fn dodup<M>(c: &Ctx<'_, M>, from: i32, to: i32, flags: u32) -> SysResult {
    let fp = c.p.fd.get(from)?;
    let to_u = to as u32 as usize;
    if to_u >= c.p.fd.limit() {
        return Err(Errno::EBADF);
    }
    if from != to {
        // fd_dup2
        if flags & !(O_CLOEXEC | O_NONBLOCK | O_NOSIGPIPE) != 0 {
            return Err(Errno::EINVAL);
        }
        let old = c.p.fd.install(fp.clone(), to_u, flags & O_CLOEXEC != 0)?;
        fp.flag_or(flags & (O_NONBLOCK | O_NOSIGPIPE));
        drop(old);
    }
    ret(i64::from(to))
}

/// `fcntl(fd, cmd, arg)` — file control; `fcntl(2)`.
pub async fn fcntl<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let (fd, cmd, arg) = (a.int(0), a.int(1), a.word(2));
    match cmd {
        F_CLOSEM => {
            if fd < 0 {
                return Err(Errno::EBADF);
            }
            drop(c.p.fd.close_from(fd as usize));
            return ret(0);
        }
        F_MAXFD => return ret(i64::from(c.p.fd.last())),
        F_GETLK | F_SETLK | F_SETLKW => return lock(c, fd, cmd, arg).await,
        _ => {}
    }
    let fp = c.p.fd.get(fd)?;
    if cmd & F_FSCTL != 0 {
        return forfs(c, &fp, cmd, arg).await;
    }
    match cmd {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let min = arg as u32 as usize;
            if min >= c.p.fd.limit() {
                return Err(Errno::EINVAL);
            }
            ret(i64::from(c.p.fd.alloc(fp, min, cmd == F_DUPFD_CLOEXEC)?))
        }
        F_GETFD => ret(if c.p.fd.cloexec(fd)? {
            i64::from(FD_CLOEXEC)
        } else {
            0
        }),
        F_SETFD => {
            c.p.fd
                .set_cloexec(fd, arg as i64 & i64::from(FD_CLOEXEC) != 0)?;
            ret(0)
        }
        F_GETNOSIGPIPE => ret(i64::from(fp.flag() & O_NOSIGPIPE != 0)),
        F_SETNOSIGPIPE => {
            if arg != 0 {
                fp.flag_or(O_NOSIGPIPE);
            } else {
                fp.flag_clear(O_NOSIGPIPE);
            }
            ret(0)
        }
        F_GETFL => ret(i64::from(oflags(fp.flag()) as i32)),
        F_SETFL => setfl(&fp, arg),
        F_GETOWN => {
            let mut data = [0u8; 4];
            fp.ioctl(FIOGETOWN, &mut data)?;
            ret(i64::from(i32::from_le_bytes(data)))
        }
        F_SETOWN => {
            let mut data = (arg as u32).to_le_bytes();
            fp.ioctl(FIOSETOWN, &mut data)?;
            ret(0)
        }
        F_GETPATH if !fp.is_vnode() => Err(Errno::EOPNOTSUPP),
        _ => Err(Errno::EINVAL),
    }
}

/// `F_SETFL`: `FFLAGS(arg) & FCNTLFLAGS`, offered to the file, then `FIONBIO`/`FIOASYNC` to
/// the file for changed bits (rolled back on failure), then stored.
fn setfl(fp: &crate::file::File, arg: u64) -> SysResult {
    let new = fflags(arg as u32) & FCNTLFLAGS;
    let mut data = new.to_le_bytes();
    fp.fcntl(F_SETFL, &mut data)?;
    let old = fp.flag();
    let changed = new ^ old;
    let rollback = |fp: &crate::file::File| {
        let mut cur = old.to_le_bytes();
        let _ = fp.fcntl(F_SETFL, &mut cur);
    };
    if changed & O_NONBLOCK != 0 {
        let mut v = i32::from(new & O_NONBLOCK != 0).to_le_bytes();
        if let Err(e) = fp.ioctl(FIONBIO, &mut v) {
            rollback(fp);
            return Err(e);
        }
    }
    if changed & O_ASYNC != 0 {
        let mut v = i32::from(new & O_ASYNC != 0).to_le_bytes();
        if let Err(e) = fp.ioctl(FIOASYNC, &mut v) {
            if changed & O_NONBLOCK != 0 {
                let mut v = i32::from(old & O_NONBLOCK != 0).to_le_bytes();
                let _ = fp.ioctl(FIONBIO, &mut v);
            }
            rollback(fp);
            return Err(e);
        }
    }
    fp.flag_replace(FCNTLFLAGS, new);
    ret(0)
}

/// `F_GETLK`/`F_SETLK`/`F_SETLKW`: the `struct flock` is copied in first; only vnodes lock.
async fn lock<M: UserMem>(c: &Ctx<'_, M>, fd: i32, cmd: i32, arg: u64) -> SysResult {
    let _fl = copy::copyin(c.mem, arg, FLOCK_SIZE).await?;
    let fp = c.p.fd.get(fd)?;
    if !fp.is_vnode() {
        return Err(Errno::EINVAL);
    }
    // Record locks arrive with the VFS; no vnode exists yet.
    let _ = cmd;
    Err(Errno::EINVAL)
}

/// `fcntl_forfs`: a file-system fcntl with its parameter block copied as the command says.
async fn forfs<M: UserMem>(
    c: &Ctx<'_, M>,
    fp: &crate::file::File,
    cmd: i32,
    arg: u64,
) -> SysResult {
    const F_FSIN: u32 = 0x1000_0000;
    const F_FSOUT: u32 = 0x2000_0000;
    const F_PARAM_MAX: usize = 4095;
    let ucmd = cmd as u32;
    if !fp.readable() && !fp.writable() {
        return Err(Errno::EBADF);
    }
    let size = ((ucmd >> 16) & 0xfff) as usize;
    if size > F_PARAM_MAX {
        return Err(Errno::EINVAL);
    }
    let mut data = if ucmd & F_FSIN != 0 && size > 0 {
        copy::copyin(c.mem, arg, size).await?
    } else if ucmd & F_FSOUT != 0 && size > 0 {
        vec![0; size]
    } else {
        arg.to_le_bytes().to_vec()
    };
    fp.fcntl(cmd, &mut data)?;
    if ucmd & F_FSOUT != 0 && size > 0 {
        copy::copyout(c.mem, arg, &data).await?;
    }
    ret(0)
}

/// `__fstat50(fd, sb)` — status of an open file; `fstat(2)`.
pub async fn fstat<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let fp = c.p.fd.get(a.int(0))?;
    let st = fp.stat(c.k)?;
    copy::copyout(c.mem, a.word(1), &st.encode()).await?;
    ret(0)
}

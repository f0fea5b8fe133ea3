//! Descriptor syscalls: close, dup family, fcntl, flock, fstat (sys_descrip.c,
//! kern_descrip.c).
//!
//! Every path that removes a descriptor (close, dup2/dup3 over an open one, `F_CLOSEM`,
//! exec's close-on-exec) drops the process's POSIX record locks on the file it referred to,
//! as `fd_close` does; process exit drops them all at once (`Kernel::exit_process`).

use super::{ret, Args, Ctx, SysResult};
use crate::abi::*;
use crate::file::{File, FileKind};
use crate::vfs::VType;
use crate::{copy, Errno, UserMem};

/// `close(fd)` — deletes a descriptor; `close(2)`. The last close of an open file runs the
/// file system's close (a host-file block device's write-back) before the call returns.
pub async fn close<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let fp = c.p.fd.close(a.int(0))?;
    c.k.closed(c.p, [fp]);
    c.k.run_closes().await;
    ret(0)
}

/// `flock(fd, how)` — applies or removes a whole-file advisory lock owned by the open file
/// (shared by its dups and across fork); `flock(2)`. Only vnodes lock (`EOPNOTSUPP`).
pub async fn flock<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let fp = c.p.fd.get(a.int(0))?;
    flock_file(c, &fp, a.int(1)).await?;
    ret(0)
}

/// `sys_flock`'s body for an open file, also `open_setfp`'s `O_SHLOCK`/`O_EXLOCK`: not a
/// vnode → `EOPNOTSUPP`; a bad `how` → `EINVAL`; a FIFO → `EINVAL` (fifofs's advlock is
/// `genfs_einval`); a conflict with `LOCK_NB` → `EWOULDBLOCK`; a wait ends with `EINTR`
/// when the process is exiting.
pub(super) async fn flock_file<M>(c: &Ctx<'_, M>, fp: &File, how: i32) -> crate::Result<()> {
    let FileKind::Vnode(v) = fp.kind() else {
        return Err(Errno::EOPNOTSUPP);
    };
    use crate::lock::{LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN};
    if !matches!(how & !LOCK_NB, LOCK_UN | LOCK_EX | LOCK_SH) {
        return Err(Errno::EINVAL);
    }
    if v.vn.vtype() == VType::Fifo {
        return Err(Errno::EINVAL);
    }
    crate::lock::flock(c.p, v.flock_owner(c.k.locks()), how).await
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
        // fd_dup2 closes what was on `to` with fd_close: record locks go (even when it
        // was the same open file).
        c.k.closed(c.p, old);
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
            let closed = c.p.fd.close_from(fd as usize);
            c.k.closed(c.p, closed);
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
    let raw = copy::copyin(c.mem, arg, FLOCK_SIZE).await?;
    let fp = c.p.fd.get(fd)?;
    let vn = fp.vnode().cloned().ok_or(Errno::EINVAL)?;
    // fifofs's advlock is genfs_einval.
    if vn.vtype() == VType::Fifo {
        return Err(Errno::EINVAL);
    }
    let mut fl = crate::lock::Flock::decode(&raw);
    let size = vn.size() as i64;
    crate::lock::fcntl_lock(c.k.locks(), c.p, &fp, vn.lock_key(), size, cmd, &mut fl).await?;
    if cmd == F_GETLK {
        copy::copyout(c.mem, arg, &fl.encode()).await?;
    }
    ret(0)
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

#[cfg(test)]
mod tests {
    use crate::abi::sysnum::*;
    use crate::abi::*;
    use crate::testutil::{int, Fixture, Req};
    use crate::Errno;

    fn fcntl(f: &Fixture, fd: i32, cmd: i32, arg: u64) -> crate::Result<[i64; 2]> {
        f.call(SYS_fcntl, &[int(fd), int(cmd), arg])
    }

    #[test]
    fn close_and_dup_take_the_lowest_free() {
        let f = Fixture::new();
        assert_eq!(f.ok(SYS_close, &[1]), 0);
        assert_eq!(f.err(SYS_close, &[1]), Errno::EBADF);
        assert_eq!(f.err(SYS_close, &[int(-1)]), Errno::EBADF);
        assert_eq!(f.ok(SYS_dup, &[2]), 1);
        assert_eq!(f.ok(SYS_dup, &[2]), 3);
        assert_eq!(f.err(SYS_dup, &[50]), Errno::EBADF);
        assert_eq!(f.p.fd_count(), 4);
    }

    #[test]
    fn dup2_limits() {
        let f = Fixture::new();
        assert_eq!(f.ok(SYS_dup2, &[1, 127]), 127);
        assert_eq!(f.err(SYS_dup2, &[1, 128]), Errno::EBADF);
        assert_eq!(f.err(SYS_dup2, &[1, int(-1)]), Errno::EBADF);
        assert_eq!(f.err(SYS_dup2, &[9, 5]), Errno::EBADF);
        assert_eq!(f.ok(SYS_dup2, &[1, 1]), 1);
        assert_eq!(f.ok(SYS_dup2, &[0, 127]), 127);
        assert_eq!(f.p.fd_count(), 4);
        assert_eq!(fcntl(&f, 0, F_MAXFD, 0), Ok([127, 0]));
    }

    #[test]
    fn dup3_both_numbers() {
        let f = Fixture::new();
        assert_eq!(f.ok(SYS_dup3, &[1, 1, 0]), 1);
        assert_eq!(f.err(SYS___dup3100, &[1, 1, 0]), Errno::EINVAL);
        assert_eq!(f.err(SYS___dup3100, &[1, 5, 0x8]), Errno::EINVAL);
        assert_eq!(f.err(SYS_dup3, &[1, 5, u64::from(O_APPEND)]), Errno::EINVAL);
        assert_eq!(f.err(SYS___dup3100, &[1, 128, 0]), Errno::EBADF);
        let cloexec = u64::from(O_CLOEXEC);
        assert_eq!(f.ok(SYS___dup3100, &[1, 5, cloexec]), 5);
        assert_eq!(fcntl(&f, 5, F_GETFD, 0), Ok([1, 0]));
        assert_eq!(fcntl(&f, 1, F_GETFD, 0), Ok([0, 0]));
        assert_eq!(f.ok(SYS_dup3, &[1, 6, u64::from(O_NOSIGPIPE)]), 6);
        // The flag lands on the shared open file.
        assert_eq!(fcntl(&f, 1, F_GETNOSIGPIPE, 0), Ok([1, 0]));
    }

    #[test]
    fn fcntl_dupfd_and_descriptor_flags() {
        let f = Fixture::new();
        assert_eq!(fcntl(&f, 1, F_DUPFD, 10), Ok([10, 0]));
        assert_eq!(fcntl(&f, 1, F_DUPFD, 10), Ok([11, 0]));
        assert_eq!(fcntl(&f, 1, F_DUPFD, 128), Err(Errno::EINVAL));
        assert_eq!(fcntl(&f, 1, F_DUPFD, int(-1)), Err(Errno::EINVAL));
        assert_eq!(fcntl(&f, 9, F_DUPFD, 0), Err(Errno::EBADF));
        assert_eq!(fcntl(&f, 1, F_DUPFD_CLOEXEC, 0), Ok([3, 0]));
        assert_eq!(fcntl(&f, 3, F_GETFD, 0), Ok([1, 0]));
        assert_eq!(fcntl(&f, 3, F_SETFD, 0), Ok([0, 0]));
        assert_eq!(fcntl(&f, 3, F_GETFD, 0), Ok([0, 0]));
        assert_eq!(fcntl(&f, 3, F_SETFD, 3), Ok([0, 0]));
        assert_eq!(fcntl(&f, 3, F_GETFD, 0), Ok([1, 0]));
        assert_eq!(fcntl(&f, 9, F_SETFD, 1), Err(Errno::EBADF));
    }

    #[test]
    fn fcntl_status_flags() {
        let f = Fixture::new();
        assert_eq!(fcntl(&f, 1, F_GETFL, 0), Ok([i64::from(O_WRONLY), 0]));
        let append = u64::from(O_APPEND | O_RDWR | O_CREAT);
        assert_eq!(fcntl(&f, 1, F_SETFL, append), Ok([0, 0]));
        // Shared by the dups of the console: fd 2 sees it; access mode and O_CREAT stay out.
        assert_eq!(
            fcntl(&f, 2, F_GETFL, 0),
            Ok([i64::from(O_WRONLY | O_APPEND), 0])
        );
        // The console refuses FIONBIO, so O_NONBLOCK fails and nothing changes.
        let nb = u64::from(O_NONBLOCK);
        assert_eq!(fcntl(&f, 1, F_SETFL, nb), Err(Errno::ENOTTY));
        assert_eq!(
            fcntl(&f, 1, F_GETFL, 0),
            Ok([i64::from(O_WRONLY | O_APPEND), 0])
        );
        assert_eq!(fcntl(&f, 1, F_SETFL, 0), Ok([0, 0]));
        assert_eq!(fcntl(&f, 1, F_GETFL, 0), Ok([i64::from(O_WRONLY), 0]));
        assert_eq!(fcntl(&f, 1, F_GETNOSIGPIPE, 0), Ok([0, 0]));
        assert_eq!(fcntl(&f, 1, F_SETNOSIGPIPE, 1), Ok([0, 0]));
        assert_eq!(fcntl(&f, 1, F_GETNOSIGPIPE, 0), Ok([1, 0]));
        assert_eq!(
            fcntl(&f, 1, F_GETFL, 0),
            Ok([i64::from(O_WRONLY | O_NOSIGPIPE), 0])
        );
        assert_eq!(fcntl(&f, 1, F_SETNOSIGPIPE, 0), Ok([0, 0]));
        assert_eq!(fcntl(&f, 1, F_GETNOSIGPIPE, 0), Ok([0, 0]));
    }

    #[test]
    fn fcntl_closem_maxfd_and_others() {
        let f = Fixture::new();
        assert_eq!(f.ok(SYS_dup2, &[1, 40]), 40);
        assert_eq!(fcntl(&f, 0, F_MAXFD, 0), Ok([40, 0]));
        assert_eq!(fcntl(&f, 2, F_CLOSEM, 0), Ok([0, 0]));
        assert_eq!(f.p.fd_count(), 2);
        assert_eq!(fcntl(&f, 0, F_MAXFD, 0), Ok([1, 0]));
        assert_eq!(fcntl(&f, -1, F_CLOSEM, 0), Err(Errno::EBADF));
        assert_eq!(fcntl(&f, 0, F_CLOSEM, 0), Ok([0, 0]));
        assert_eq!(fcntl(&f, 0, F_MAXFD, 0), Ok([-1, 0]));
        let g = Fixture::new();
        assert_eq!(fcntl(&g, 1, F_GETOWN, 0), Err(Errno::ENOTTY));
        assert_eq!(fcntl(&g, 1, F_SETOWN, 5), Err(Errno::ENOTTY));
        assert_eq!(fcntl(&g, 1, F_GETPATH, 0x1000), Err(Errno::EOPNOTSUPP));
        assert_eq!(fcntl(&g, 1, 99, 0), Err(Errno::EINVAL));
        assert_eq!(fcntl(&g, 9, 99, 0), Err(Errno::EBADF));
        assert_eq!(
            fcntl(&g, 1, 0x4000_0000_u32 as i32 | F_FSCTL, 0),
            Err(Errno::EOPNOTSUPP)
        );
        assert!(g.mem.requests().is_empty());
    }

    #[test]
    fn fcntl_locks_copy_in_first_then_refuse_non_vnodes() {
        let f = Fixture::new();
        assert_eq!(fcntl(&f, 1, F_GETLK, 0), Err(Errno::EFAULT));
        assert!(f.mem.requests().is_empty());
        f.mem.map_zero(0x1000, 24);
        assert_eq!(fcntl(&f, 9, F_SETLK, 0x1000), Err(Errno::EBADF));
        assert_eq!(fcntl(&f, 1, F_SETLKW, 0x1000), Err(Errno::EINVAL));
        assert_eq!(
            f.mem.requests(),
            vec![Req::In(0x1000, 24), Req::In(0x1000, 24)]
        );
    }

    #[test]
    fn descriptor_table_fills_at_the_limit() {
        let f = Fixture::new();
        for want in 3..128 {
            assert_eq!(f.ok(SYS_dup, &[0]), want);
        }
        assert_eq!(f.err(SYS_dup, &[0]), Errno::EMFILE);
        assert_eq!(fcntl(&f, 0, F_DUPFD, 5), Err(Errno::EMFILE));
        assert_eq!(f.ok(SYS_dup2, &[0, 127]), 127);
        assert_eq!(f.ok(SYS_close, &[64]), 0);
        assert_eq!(f.ok(SYS_dup, &[0]), 64);
        assert_eq!(f.p.fd_count(), 128);
    }

    #[test]
    fn exec_closes_close_on_exec_descriptors() {
        let f = Fixture::new();
        assert_eq!(fcntl(&f, 1, F_DUPFD_CLOEXEC, 5), Ok([5, 0]));
        assert_eq!(f.ok(SYS___dup3100, &[1, 6, u64::from(O_CLOEXEC)]), 6);
        assert_eq!(fcntl(&f, 2, F_SETFD, 1), Ok([0, 0]));
        assert_eq!(f.ok(SYS_dup, &[1]), 3);
        f.k.exec(&f.p, b"newprog");
        assert_eq!(f.p.fd_count(), 3);
        assert_eq!(fcntl(&f, 0, F_MAXFD, 0), Ok([3, 0]));
        assert_eq!(f.err(SYS_close, &[2]), Errno::EBADF);
        assert_eq!(f.p.comm(), b"newprog");
    }

    #[test]
    fn fstat_of_the_console() {
        let f = Fixture::new();
        f.mem.map(0x1000, &[0xff; 152]);
        assert_eq!(f.ok(SYS___fstat50, &[1, 0x1000]), 0);
        let b = f.mem.read(0x1000, 152);
        let boot = f.k.boottime();
        let mut want = [0u8; 152];
        want[8..12].copy_from_slice(&0o020600u32.to_le_bytes());
        for off in [48, 64, 80, 96] {
            want[off..off + 8].copy_from_slice(&boot.sec.to_le_bytes());
            want[off + 8..off + 16].copy_from_slice(&boot.nsec.to_le_bytes());
        }
        assert_eq!(b, want.to_vec());
        assert_eq!(boot.sec, crate::testutil::TEST_REALTIME.0);
        assert_eq!(f.err(SYS___fstat50, &[8, 0x1000]), Errno::EBADF);
        assert_eq!(f.err(SYS___fstat50, &[1, 0]), Errno::EFAULT);
    }
}

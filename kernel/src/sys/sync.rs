//! Writing back and advice: fsync, fdatasync, fsync_range, sync, posix_fadvise,
//! posix_fallocate, fdiscard (vfs_syscalls.c, sys_descrip.c).

use super::at::{fd_vnode, vfs};
use super::{ret, Args, Ctx, SysResult};
use crate::abi::*;
use crate::vfs::VType;
use crate::{Errno, UserMem};

/// `fsync(fd)` — writes back a file; `fsync(2)`.
pub async fn fsync<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    vfs(c)?;
    let vn = fd_vnode(c, a.int(0))?;
    vn.fsync(false).await?;
    ret(0)
}

/// `fdatasync(fd)` — writes back a file's data; the file must be writable (`EBADF`);
/// `fdatasync(2)`.
pub async fn fdatasync<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    vfs(c)?;
    let fp = c.p.fd.get(a.int(0))?;
    let vn = fp.vnode().cloned().ok_or(Errno::EINVAL)?;
    if !fp.writable() {
        return Err(Errno::EBADF);
    }
    vn.fsync(true).await?;
    ret(0)
}

/// `fsync_range(fd, flags, start, length)` — `FDATASYNC` or `FFILESYNC` required;
/// `fsync_range(2)`.
pub async fn fsync_range<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    vfs(c)?;
    let (flags, start, len) = (a.int(1), a.long(2), a.long(3));
    let fp = c.p.fd.get(a.int(0))?;
    let vn = fp.vnode().cloned().ok_or(Errno::EINVAL)?;
    if !fp.writable() {
        return Err(Errno::EBADF);
    }
    if flags & (FDATASYNC | FFILESYNC) == 0
        || flags & !(FDATASYNC | FFILESYNC | FDISKSYNC) != 0
        || start < 0
        || len < 0
    {
        return Err(Errno::EINVAL);
    }
    vn.fsync(flags & FFILESYNC == 0).await?;
    ret(0)
}

/// `sync()` — writes back every file system; `sync(2)` (errors are not reported).
pub async fn sync<M>(c: &Ctx<'_, M>) -> SysResult {
    let _ = vfs(c)?.sync_all_async().await;
    ret(0)
}

/// The checks of fadvise/fallocate; the error becomes the return value (NOERR calls).
fn noerr(r: SysResult) -> SysResult {
    match r {
        Ok(v) => Ok(v),
        Err(Errno::ENOSYS) => Err(Errno::ENOSYS),
        Err(e) => ret(i64::from(e.raw())),
    }
}

/// `__posix_fadvise50(fd, PAD, offset, len, advice)` — advice is accepted and ignored;
/// errors are returned as the value; `posix_fadvise(2)`.
pub fn fadvise<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    noerr((|| {
        vfs(c)?;
        let fp = c.p.fd.get(a.int(0))?;
        let vn = fp.vnode().ok_or(Errno::ESPIPE)?;
        if vn.vtype() == VType::Fifo {
            return Err(Errno::ESPIPE);
        }
        let advice = a.int(4);
        if a.long(3) < 0 || !(0..=POSIX_FADV_NOREUSE).contains(&advice) {
            return Err(Errno::EINVAL);
        }
        ret(0)
    })())
}

/// The checks shared by posix_fallocate and fdiscard (vfs_syscalls.c
/// `sys_posix_fallocate`, `sys_fdiscard`): a negative or overflowing range `EINVAL`, a
/// descriptor that is not a vnode `EINVAL` (`fd_getvnode`), not open for writing `EBADF`, a
/// directory `EISDIR`. The memory file systems do not implement `VOP_FALLOCATE`/`VOP_FDISCARD`
/// (their vnode-op tables fall back to `vn_default_error`/`genfs_eopnotsupp`), so every
/// request that passes the checks is `EOPNOTSUPP`.
fn alloc_checks<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    vfs(c)?;
    let (pos, len) = (a.long(2), a.long(3));
    if pos < 0 || len < 0 || len > i64::MAX - pos {
        return Err(Errno::EINVAL);
    }
    let fp = c.p.fd.get(a.int(0))?;
    let vn = fp.vnode().cloned().ok_or(Errno::EINVAL)?;
    if !fp.writable() {
        return Err(Errno::EBADF);
    }
    if vn.vtype() == VType::Dir {
        return Err(Errno::EISDIR);
    }
    Err(Errno::EOPNOTSUPP)
}

/// `posix_fallocate(fd, PAD, pos, len)` — errors are returned as the value (NOERR), and
/// the memory file systems answer `EOPNOTSUPP`; `posix_fallocate(2)`.
pub fn fallocate<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    noerr(alloc_checks(c, a))
}

/// `fdiscard(fd, PAD, pos, len)` — `EOPNOTSUPP` on the memory file systems after the
/// common checks; `fdiscard(2)`.
pub fn fdiscard<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    alloc_checks(c, a)
}

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

/// `sync()` — writes back every file system; `sync(2)`.
pub fn sync<M>(c: &Ctx<'_, M>) -> SysResult {
    vfs(c)?.sync_all();
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

/// `posix_fallocate(fd, PAD, pos, len)` — makes the file at least `pos + len` long;
/// errors are returned as the value; `posix_fallocate(2)`.
pub async fn fallocate<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let r = async {
        vfs(c)?;
        let (pos, len) = (a.long(2), a.long(3));
        if pos < 0 || len <= 0 {
            return Err(Errno::EINVAL);
        }
        let fp = c.p.fd.get(a.int(0))?;
        let vn = fp.vnode().cloned().ok_or(Errno::ESPIPE)?;
        if !fp.writable() {
            return Err(Errno::EBADF);
        }
        match vn.vtype() {
            VType::Fifo => return Err(Errno::ESPIPE),
            VType::Reg => {}
            _ => return Err(Errno::ENODEV),
        }
        let end = pos.checked_add(len).ok_or(Errno::EFBIG)? as u64;
        let _io = vn.io_lock().lock_sig(c.p).await?;
        if vn.size() < end {
            vn.truncate(end).await?;
        }
        ret(0)
    }
    .await;
    noerr(r)
}

/// `fdiscard(fd, PAD, pos, len)` — drops the data of a range (reads then give zeros);
/// `fdiscard(2)`.
pub async fn fdiscard<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    vfs(c)?;
    let (pos, len) = (a.long(2), a.long(3));
    let fp = c.p.fd.get(a.int(0))?;
    let vn = fp.vnode().cloned().ok_or(Errno::ESPIPE)?;
    if !fp.writable() {
        return Err(Errno::EBADF);
    }
    if pos < 0 || len < 0 {
        return Err(Errno::EINVAL);
    }
    if vn.vtype() == VType::Fifo {
        return Err(Errno::ESPIPE);
    }
    let _io = vn.io_lock().lock_sig(c.p).await?;
    vn.discard(pos as u64, len as u64).await?;
    ret(0)
}

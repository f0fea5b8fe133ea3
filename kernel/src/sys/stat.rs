//! stat family and access/faccessat (vfs_syscalls.c `do_sys_statat`, `do_sys_accessat`).

use super::at::{self, vfs};
use super::{ret, Args, Ctx, SysResult};
use crate::abi::*;
use crate::vfs::{self, access};
use crate::{copy, Errno, UserMem};

/// `__stat50(path, ub)` — status of a file, following symlinks; `stat(2)`.
pub async fn stat<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    statat(c, AT_FDCWD, a.word(0), a.word(1), true).await
}

/// `__lstat50(path, ub)` — status of a symbolic link itself; `lstat(2)`.
pub async fn lstat<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    statat(c, AT_FDCWD, a.word(0), a.word(1), false).await
}

/// `fstatat(fd, path, buf, flag)` — `AT_SYMLINK_NOFOLLOW` as lstat; `fstatat(2)`.
pub async fn fstatat<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let flag = a.int(3);
    if flag & !AT_SYMLINK_NOFOLLOW != 0 {
        vfs(c)?;
        return Err(Errno::EINVAL);
    }
    statat(
        c,
        a.int(0),
        a.word(1),
        a.word(2),
        flag & AT_SYMLINK_NOFOLLOW == 0,
    )
    .await
}

async fn statat<M: UserMem>(c: &Ctx<'_, M>, fd: i32, p: u64, ub: u64, follow: bool) -> SysResult {
    let vn = at::lookup(c, fd, p, follow).await?;
    copy::copyout(c.mem, ub, &vn.stat().encode()).await?;
    ret(0)
}

/// `access(path, mode)` — checks with the real ids; `access(2)`.
pub async fn access<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    accessat(c, AT_FDCWD, a.word(0), a.int(1), 0).await
}

/// `faccessat(fd, path, amode, flag)` — `AT_EACCESS` uses the effective ids; `faccessat(2)`.
pub async fn faccessat<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    accessat(c, a.int(0), a.word(1), a.int(2), a.int(3)).await
}

async fn accessat<M: UserMem>(c: &Ctx<'_, M>, fd: i32, p: u64, mode: i32, flag: i32) -> SysResult {
    let v = vfs(c)?;
    // Only the mode is validated; unknown flag bits are ignored (vfs_syscalls.c
    // `do_sys_accessat`).
    if mode & !((R_OK | W_OK | X_OK) as i32) != 0 {
        return Err(Errno::EINVAL);
    }
    let mut cred = c.p.cred();
    if flag & AT_EACCESS == 0 {
        cred.euid = cred.uid;
        cred.egid = cred.gid;
    }
    let path = crate::copy::Recycled::new(c.mem, at::path(c, p).await?);
    let start = at::start_namei(c, v, fd, &path)?;
    let nd = at::nd_with(c, v, cred);
    let vn = vfs::namei(&nd, &start, &path, flag & AT_SYMLINK_NOFOLLOW == 0).await?;
    if mode != 0 {
        access::check(&cred, vn.vtype(), &vn.attr(), mode as u32)?;
    }
    ret(0)
}

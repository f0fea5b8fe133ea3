//! Path arguments and the starting directory of `*at()` calls (`fd_nameiat`, `namei`).

use std::sync::Arc;

use super::Ctx;
use crate::abi::{AT_FDCWD, PATH_MAX};
use crate::proc::Cred;
use crate::vfs::{self, Found, NameOp, Nd, Vfs, Vnode};
use crate::{copy, Errno, Result, UserMem};

/// The VFS, or `ENOSYS` without the `rumpvfs` faction.
pub fn vfs<'a, M>(c: &Ctx<'a, M>) -> Result<&'a Vfs> {
    c.k.vfs()
}

/// A path argument: COPYINSTR of at most `PATH_MAX` bytes (`ENAMETOOLONG` without a NUL).
pub async fn path<M: UserMem>(c: &Ctx<'_, M>, addr: u64) -> Result<Vec<u8>> {
    copy::copyinstr(c.mem, addr, PATH_MAX).await
}

/// The vnode of descriptor `fd` (`fd_getvnode`): `EBADF` if not open, `EINVAL` if it is not
/// a vnode.
pub fn fd_vnode<M>(c: &Ctx<'_, M>, fd: i32) -> Result<Arc<Vnode>> {
    let fp = c.p.fd.get(fd)?;
    fp.vnode().cloned().ok_or(Errno::EINVAL)
}

/// Where a relative path starts: the current directory for `AT_FDCWD`, else the directory
/// open on `fd` (checked even for absolute paths, as NetBSD: a closed fd is `EBADF`).
pub fn start<M>(c: &Ctx<'_, M>, v: &Vfs, fd: i32) -> Result<Arc<Vnode>> {
    if fd == AT_FDCWD {
        Ok(c.p.dirs.cwd(v))
    } else {
        fd_vnode(c, fd)
    }
}

/// [`start`] for the lookup of `path`, which a traced process records (`KTR_NAMEI`) once
/// its starting directory is found, as `namei_start`.
pub fn start_namei<M>(c: &Ctx<'_, M>, v: &Vfs, fd: i32, path: &[u8]) -> Result<Arc<Vnode>> {
    let dir = start(c, v, fd)?;
    super::ktrace::namei(c.k, c.p, path);
    Ok(dir)
}

/// The lookup context of the calling process, with credentials `cred`.
pub fn nd_with<M>(c: &Ctx<'_, M>, v: &Vfs, cred: Cred) -> Nd {
    Nd {
        root: c.p.dirs.root(v),
        cred,
    }
}

/// The lookup context of the calling process.
pub fn nd<M>(c: &Ctx<'_, M>, v: &Vfs) -> Nd {
    nd_with(c, v, c.p.cred())
}

/// Copies in the path at `addr` and looks it up relative to `fd`.
pub async fn lookup<M: UserMem>(
    c: &Ctx<'_, M>,
    fd: i32,
    addr: u64,
    follow: bool,
) -> Result<Arc<Vnode>> {
    let v = vfs(c)?;
    let path = crate::copy::Recycled::new(c.mem, path(c, addr).await?);
    let start = start_namei(c, v, fd, &path)?;
    vfs::namei(&nd(c, v), &start, &path, follow).await
}

/// Copies in the path at `addr` and looks up its parent relative to `fd`, the last
/// component for `op`.
pub async fn lookup_parent<M: UserMem>(
    c: &Ctx<'_, M>,
    fd: i32,
    addr: u64,
    follow: bool,
    op: NameOp,
) -> Result<Found> {
    let v = vfs(c)?;
    let path = crate::copy::Recycled::new(c.mem, path(c, addr).await?);
    let start = start_namei(c, v, fd, &path)?;
    vfs::namei_parent(&nd(c, v), &start, &path, follow, op).await
}

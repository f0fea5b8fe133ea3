//! The current and root directories: chdir, fchdir, chroot, `__getcwd` (vfs_syscalls.c,
//! vfs_getcwd.c).

use std::sync::Arc;

use super::at::{self, vfs};
use super::{ret, Args, Ctx, SysResult};
use crate::abi::{AT_FDCWD, PATH_MAX, R_OK, X_OK};
use crate::vfs::walk::WalkUp;
use crate::vfs::{access, is_under, VType, Vnode};
use crate::{copy, Errno, UserMem};

async fn dir_at<M: UserMem>(c: &Ctx<'_, M>, addr: u64) -> crate::Result<Arc<Vnode>> {
    let vn = at::lookup(c, AT_FDCWD, addr, true).await?;
    searchable(c, &vn)?;
    Ok(vn)
}

/// A directory the caller may search: `ENOTDIR`, `EACCES`.
fn searchable<M>(c: &Ctx<'_, M>, vn: &Vnode) -> crate::Result<()> {
    if !vn.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    access::check(&c.p.cred(), VType::Dir, &vn.attr(), X_OK)
}

/// `chdir(path)` — changes the current directory; `chdir(2)`.
pub async fn chdir<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let vn = dir_at(c, a.word(0)).await?;
    c.p.dirs.set_cwd(vn);
    ret(0)
}

/// `fchdir(fd)` — changes to the directory open on `fd`; `fchdir(2)`. After chroot, a
/// directory outside the new root (a descriptor opened before) is `EPERM`, as NetBSD's
/// `vn_isunder` check: the classic chroot escape.
pub async fn fchdir<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let v = vfs(c)?;
    let vn = at::fd_vnode(c, a.int(0))?;
    searchable(c, &vn)?;
    let root = c.p.dirs.root(v);
    if !Arc::ptr_eq(&root, v.root()) && !is_under(&vn, &root).await {
        return Err(Errno::EPERM);
    }
    c.p.dirs.set_cwd(vn);
    ret(0)
}

/// `chroot(path)` — changes the root directory (superuser only); `chroot(2)`. A current
/// directory outside the new root moves to it (vfs_syscalls.c `change_root`), so relative
/// paths cannot reach the old tree.
pub async fn chroot<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let v = vfs(c)?;
    if !access::is_root(&c.p.cred()) {
        return Err(Errno::EPERM);
    }
    let vn = dir_at(c, a.word(0)).await?;
    let cwd = c.p.dirs.cwd(v);
    let under = is_under(&cwd, &vn).await;
    c.p.dirs.change_root(vn, &cwd, under);
    ret(0)
}

/// `__getcwd(buf, length)` — the current directory's path; returns the bytes used including
/// the NUL (vfs_getcwd.c `sys___getcwd`, `getcwd_common`). `length` is an `int` there: below
/// 2 (or negative once truncated) `ERANGE`, above 4 × MAXPATHLEN clamped; a path that does
/// not fit `ERANGE`; a removed directory, or one outside the process root, `ENOENT`; search
/// permission on the current directory and read + search on each ancestor below the root
/// (`GETCWD_CHECK_ACCESS`), else `EACCES`.
pub async fn getcwd<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let v = vfs(c)?;
    let len = a.word(1) as u32 as i32;
    if len < 2 {
        return Err(Errno::ERANGE);
    }
    let len = (len as usize).min(4 * PATH_MAX);
    let cred = c.p.cred();
    let root = c.p.dirs.root(v);
    let mut cur = c.p.dirs.cwd(v);
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut total = 1;
    let mut want = X_OK;
    let mut walk = WalkUp::new();
    'walk: while !Arc::ptr_eq(&cur, &root) {
        access::check(&cred, VType::Dir, &cur.attr(), want)?;
        // Step up over mount points to the covered vnode (checked once, as NetBSD).
        loop {
            let m = cur.mount()?;
            if !m.is_root(&cur) {
                break;
            }
            if Arc::ptr_eq(&cur, &root) {
                break 'walk;
            }
            // The file system root reached without meeting the process root: the current
            // directory is outside it (after chroot).
            cur = m.covered().ok_or(Errno::ENOENT)?.clone();
        }
        let parent = walk.parent(&cur).await?;
        let name = parent.name_of(&cur).await?;
        total += name.len() + 1;
        if total > len {
            return Err(Errno::ERANGE);
        }
        parts.push(name);
        want = R_OK | X_OK;
        cur = parent;
    }
    let mut out = Vec::with_capacity(total + 1);
    if parts.is_empty() {
        out.push(b'/');
    }
    for name in parts.iter().rev() {
        out.push(b'/');
        out.extend_from_slice(name);
    }
    out.push(0);
    copy::copyout(c.mem, a.word(0), &out).await?;
    ret(out.len() as i64)
}

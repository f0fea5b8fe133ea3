//! Names: link/linkat, symlink/symlinkat, readlink/readlinkat, unlink/unlinkat,
//! rename/renameat/__posix_rename (vfs_syscalls.c).

use std::sync::Arc;

use super::at::{self, vfs};
use super::{ret, Args, Ctx, SysResult};
use crate::abi::*;
use crate::vfs::{NameOp, NewNode, VType};
use crate::{copy, Errno, UserMem};

/// `link(path, link)` — makes a hard link (following a final symlink); `link(2)`.
pub async fn link<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    do_link(
        c,
        AT_FDCWD,
        a.word(0),
        AT_FDCWD,
        a.word(1),
        AT_SYMLINK_FOLLOW,
    )
    .await
}

/// `linkat(fd1, name1, fd2, name2, flags)` — `AT_SYMLINK_FOLLOW` follows; `linkat(2)`.
pub async fn linkat<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    do_link(c, a.int(0), a.word(1), a.int(2), a.word(3), a.int(4)).await
}

async fn do_link<M: UserMem>(
    c: &Ctx<'_, M>,
    fd1: i32,
    p1: u64,
    fd2: i32,
    p2: u64,
    flags: i32,
) -> SysResult {
    let v = vfs(c)?;
    // Other flag bits are ignored (vfs_syscalls.c `sys_linkat` masks AT_SYMLINK_FOLLOW).
    let node = at::lookup(c, fd1, p1, flags & AT_SYMLINK_FOLLOW != 0).await?;
    let f = at::lookup_parent(c, fd2, p2, false, NameOp::Create).await?;
    let dir = f.create_in()?;
    v.link(&c.p.cred(), dir, &f.name, &node).await?;
    ret(0)
}

/// `symlink(target, link)` — makes a symbolic link; `symlink(2)`.
pub async fn symlink<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    do_symlink(c, a.word(0), AT_FDCWD, a.word(1)).await
}

/// `symlinkat(target, fd, link)`; `symlinkat(2)`.
pub async fn symlinkat<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    do_symlink(c, a.word(0), a.int(1), a.word(2)).await
}

async fn do_symlink<M: UserMem>(c: &Ctx<'_, M>, target: u64, fd: i32, link: u64) -> SysResult {
    let v = vfs(c)?;
    let target = at::path(c, target).await?;
    let f = at::lookup_parent(c, fd, link, false, NameOp::Create).await?;
    let dir = f.create_in()?;
    let new = NewNode {
        vtype: VType::Lnk,
        mode: ACCESSPERMS & !c.p.umask(),
        rdev: NODEV,
        target: &target,
    };
    v.create(&c.p.cred(), dir, &f.name, &new).await?;
    ret(0)
}

/// `ACCESSPERMS`: the permission bits of a new symbolic link before the umask.
const ACCESSPERMS: u32 = 0o777;

/// `readlink(path, buf, count)` — the target of a symbolic link, without NUL; `readlink(2)`.
pub async fn readlink<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    do_readlink(c, AT_FDCWD, a.word(0), a.word(1), a.word(2)).await
}

/// `readlinkat(fd, path, buf, bufsize)`; `readlinkat(2)`.
pub async fn readlinkat<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    do_readlink(c, a.int(0), a.word(1), a.word(2), a.word(3)).await
}

async fn do_readlink<M: UserMem>(c: &Ctx<'_, M>, fd: i32, p: u64, buf: u64, n: u64) -> SysResult {
    let vn = at::lookup(c, fd, p, false).await?;
    let target = vn.readlink().await?;
    let len = target.len().min(usize::try_from(n).unwrap_or(usize::MAX));
    copy::copyout(c.mem, buf, &target[..len]).await?;
    ret(len as i64)
}

/// `unlink(path)` — removes a name; a directory is `EPERM`; `unlink(2)`.
pub async fn unlink<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    do_unlink(c, AT_FDCWD, a.word(0)).await
}

/// `unlinkat(fd, path, flag)` — with `AT_REMOVEDIR` as rmdir; other flag bits are ignored
/// (vfs_syscalls.c `do_sys_unlinkat` does not check them); `unlinkat(2)`.
pub async fn unlinkat<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let flag = a.int(2);
    if flag & AT_REMOVEDIR != 0 {
        super::dir::do_rmdir(c, a.int(0), a.word(1)).await
    } else {
        do_unlink(c, a.int(0), a.word(1)).await
    }
}

async fn do_unlink<M: UserMem>(c: &Ctx<'_, M>, fd: i32, p: u64) -> SysResult {
    let v = vfs(c)?;
    let f = at::lookup_parent(c, fd, p, false, NameOp::Delete).await?;
    let node = f.node.as_ref().ok_or(Errno::ENOENT)?;
    // vfs_syscalls.c `do_sys_unlinkat`: a file-system root `EBUSY`, `.` `EINVAL`, then a
    // directory `EPERM`.
    if f.at_mount_root() || node.mount()?.is_root(node) {
        return Err(Errno::EBUSY);
    }
    let dir = f.dir.clone().ok_or(Errno::EBUSY)?;
    if Arc::ptr_eq(&dir, node) {
        return Err(Errno::EINVAL);
    }
    if node.is_dir() {
        return Err(Errno::EPERM);
    }
    v.unlink(&c.p.cred(), &dir, &f.name).await?;
    ret(0)
}

/// `rename(from, to)` — renames; renaming onto another link of the same file removes the
/// source name (BSD); `rename(2)`.
pub async fn rename<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    do_rename(c, AT_FDCWD, a.word(0), AT_FDCWD, a.word(1), false).await
}

/// `__posix_rename(from, to)` — as rename, but two links of one file are both kept
/// (vfs_syscalls.c `sys___posix_rename`, `retain`).
pub async fn posix_rename<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    do_rename(c, AT_FDCWD, a.word(0), AT_FDCWD, a.word(1), true).await
}

/// `renameat(fromfd, from, tofd, to)`; `renameat(2)`.
pub async fn renameat<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    do_rename(c, a.int(0), a.word(1), a.int(2), a.word(3), false).await
}

/// The checks of vfs_syscalls.c `do_sys_renameat`, in its order: the source lookup
/// (missing `ENOENT`, a file-system root `EBUSY`), a source `.` or `..` `EINVAL`, the
/// target lookup (a trailing slash lets a missing name through only for a directory,
/// `ENOENT` otherwise), a target `.` `EISDIR` or `..` `EINVAL`; the rest in `Vfs::rename`.
async fn do_rename<M: UserMem>(
    c: &Ctx<'_, M>,
    fd1: i32,
    p1: u64,
    fd2: i32,
    p2: u64,
    retain: bool,
) -> SysResult {
    let v = vfs(c)?;
    let from = at::lookup_parent(c, fd1, p1, false, NameOp::Delete).await?;
    let src = from.node.clone().ok_or(Errno::ENOENT)?;
    if from.at_mount_root() {
        return Err(Errno::EBUSY);
    }
    if from.is_dot() {
        return Err(Errno::EINVAL);
    }
    let to = at::lookup_parent(c, fd2, p2, false, NameOp::Rename).await?;
    if to.node.is_none() && to.slash && !src.is_dir() {
        return Err(Errno::ENOENT);
    }
    if to.at_mount_root() {
        return Err(Errno::EBUSY);
    }
    match &to.name[..] {
        b"." => return Err(Errno::EISDIR),
        b".." => return Err(Errno::EINVAL),
        _ => {}
    }
    let (fdir, tdir) = match (&from.dir, &to.dir) {
        (Some(f), Some(t)) => (f, t),
        _ => return Err(Errno::EBUSY),
    };
    v.rename(&c.p.cred(), fdir, &from.name, tdir, &to.name, retain)
        .await?;
    ret(0)
}

//! Directories: mkdir/mkdirat, rmdir, `__getdents30` (vfs_syscalls.c, vfs_vnops.c).

use std::sync::Arc;

use super::at::{self, vfs};
use super::{ret, Args, Ctx, SysResult};
use crate::abi::*;
use crate::file::VN_CHUNK_MAX;
use crate::vfs::{NameOp, NewNode, VType};
use crate::{copy, Errno, UserMem};

/// `mkdir(path, mode)` — makes a directory; `mkdir(2)`.
pub async fn mkdir<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    do_mkdir(c, AT_FDCWD, a.word(0), a.uint(1)).await
}

/// `mkdirat(fd, path, mode)`; `mkdirat(2)`.
pub async fn mkdirat<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    do_mkdir(c, a.int(0), a.word(1), a.uint(2)).await
}

async fn do_mkdir<M: UserMem>(c: &Ctx<'_, M>, fd: i32, addr: u64, mode: u32) -> SysResult {
    let v = vfs(c)?;
    // A trailing slash is fine for mkdir (`CREATEDIR`).
    let f = at::lookup_parent(c, fd, addr, false, NameOp::Create).await?;
    if f.node.is_some() {
        return Err(Errno::EEXIST);
    }
    let dir = f.dir.ok_or(Errno::EEXIST)?;
    let new = NewNode {
        vtype: VType::Dir,
        mode: (mode & ACCESSPERMS_STICKY) & !c.p.umask(),
        rdev: NODEV,
        target: b"",
    };
    v.create(&c.p.cred(), &dir, &f.name, &new).await?;
    ret(0)
}

/// Bits mkdir keeps from its mode (`ACCESSPERMS | S_ISVTX`).
const ACCESSPERMS_STICKY: u32 = 0o1777;

/// `rmdir(path)` — removes an empty directory; `rmdir(2)`.
pub async fn rmdir<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    do_rmdir(c, AT_FDCWD, a.word(0)).await
}

/// rmdir relative to `fd` (also `unlinkat(fd, path, AT_REMOVEDIR)`).
pub(super) async fn do_rmdir<M: UserMem>(c: &Ctx<'_, M>, fd: i32, addr: u64) -> SysResult {
    let v = vfs(c)?;
    let f = at::lookup_parent(c, fd, addr, false, NameOp::Delete).await?;
    let node = f.node.clone().ok_or(Errno::ENOENT)?;
    // vfs_syscalls.c `do_sys_unlinkat` order: a file-system root or mount point `EBUSY`
    // (also `.` or `..` naming one), `.` `EINVAL`, a non-directory `ENOTDIR`, and `..`
    // always has an entry (the directory it was reached from): `ENOTEMPTY`.
    if f.at_mount_root() || node.mount()?.is_root(&node) {
        return Err(Errno::EBUSY);
    }
    let dir = f.dir.clone().ok_or(Errno::EBUSY)?;
    if Arc::ptr_eq(&dir, &node) {
        return Err(Errno::EINVAL);
    }
    if !node.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if &f.name[..] == b".." {
        return Err(Errno::ENOTEMPTY);
    }
    v.rmdir(&c.p.cred(), &dir, &f.name).await?;
    ret(0)
}

/// `__getdents30(fd, buf, count)` — reads directory entries; `getdents(2)`.
///
/// The offset is the cookie of the next entry, so a read resumes exactly after the last
/// entry returned; a buffer that cannot hold the next entry is `EINVAL`; a regular file is
/// `EINVAL` (as observed on NetBSD). At most 64 KiB are returned per call. File systems
/// that list `.` and `..` give them cookies 0 and 1; `..` of a file system's root
/// is the root itself, as NetBSD's memory file system answers.
pub async fn getdents<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    vfs(c)?;
    let fp = c.p.fd.get(a.int(0))?;
    let vn = fp.vnode().cloned().ok_or(Errno::EINVAL)?;
    if !fp.readable() {
        return Err(Errno::EBADF);
    }
    if !vn.is_dir() {
        return Err(Errno::EINVAL);
    }
    let count = a.word(2).min(VN_CHUNK_MAX as u64) as usize;
    let from = fp.offset().max(0) as u64;
    if let Some(n) = vn.node_ops() {
        return getdents_node(c, &fp, n.readdir(&vn, from, count).await?, a.word(1), count).await;
    }
    let m = vn.mount()?;
    let (dots, newest_first) = (m.lists_dots(), m.params().newest_first);
    let mut out = Vec::new();
    let mut next = from;
    {
        let d = vn.dir()?;
        let mut pending = false;
        if dots && !d.removed {
            let up = d.parent.upgrade().map_or(vn.ino(), |p| p.ino());
            for (cookie, name, ino) in [(0, &b"."[..], vn.ino()), (1, b"..", up)] {
                if cookie < from {
                    continue;
                }
                if pending || out.len() + dirent_reclen(name.len()) > count {
                    pending = true;
                    continue;
                }
                encode_dirent(&mut out, ino, iftodt(S_IFDIR), name);
                next = cookie + 1;
            }
        }
        if !pending {
            // Newest first (as the file system asks): the offset is the cookie of the last
            // entry returned (cookies start at 1), 0 the start; else the cookie of the next.
            let entries: Box<dyn Iterator<Item = _>> = match newest_first {
                true => Box::new(d.newest_before((from > 0).then_some(from))),
                false => Box::new(d.from(from)),
            };
            for (cookie, e) in entries {
                if out.len() + dirent_reclen(e.name.len()) > count {
                    pending = true;
                    break;
                }
                let dtype = iftodt(e.node.vtype().ifmt());
                encode_dirent(&mut out, e.node.ino(), dtype, &e.name);
                next = match newest_first {
                    true => cookie,
                    false => cookie + 1,
                };
            }
        }
        if out.is_empty() && pending {
            return Err(Errno::EINVAL);
        }
    }
    copy::copyout(c.mem, a.word(1), &out).await?;
    fp.set_offset(next as i64);
    ret(out.len() as i64)
}

/// getdents of a file system with its own nodes: the entries its readdir gave (cookies are
/// its own, `.` and `..` as it lists them), as many as fit.
async fn getdents_node<M: UserMem>(
    c: &Ctx<'_, M>,
    fp: &crate::file::File,
    entries: Vec<crate::vfs::ops::DirEntry>,
    addr: u64,
    count: usize,
) -> SysResult {
    let mut out = Vec::new();
    let mut next = fp.offset().max(0) as u64;
    for e in &entries {
        if out.len() + dirent_reclen(e.name.len()) > count {
            break;
        }
        encode_dirent(&mut out, e.ino, e.dtype, &e.name);
        next = e.next;
    }
    copy::copyout(c.mem, addr, &out).await?;
    fp.set_offset(next as i64);
    ret(out.len() as i64)
}

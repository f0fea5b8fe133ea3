//! Attribute changes: chmod, chown, utimes/utimensat, truncate (vfs_syscalls.c, genfs
//! `genfs_can_chmod`/`genfs_can_chown`/`genfs_can_chtimes`).

use std::sync::Arc;

use super::at::{self, vfs};
use super::{ret, Args, Ctx, SysResult};
use crate::abi::*;
use crate::proc::Cred;
use crate::vfs::{access, VType, Vnode};
use crate::{copy, Errno, Result, UserMem};

/// Looks up `path` (following per `follow`) or takes the vnode of `fd` when `addr` is None.
async fn target<M: UserMem>(
    c: &Ctx<'_, M>,
    fd: i32,
    addr: Option<u64>,
    follow: bool,
) -> Result<Arc<Vnode>> {
    vfs(c)?;
    match addr {
        Some(p) => at::lookup(c, fd, p, follow).await,
        None => at::fd_vnode(c, fd),
    }
}

/// `EROFS` for an attribute change on a read-only mount (`VOP_SETATTR`).
fn writable_fs(vn: &Vnode) -> Result<()> {
    if vn.read_only() {
        return Err(Errno::EROFS);
    }
    Ok(())
}

fn at_flag(flag: i32) -> Result<bool> {
    if flag & !AT_SYMLINK_NOFOLLOW != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(flag & AT_SYMLINK_NOFOLLOW == 0)
}

/// `chmod(path, mode)`; `chmod(2)`.
pub async fn chmod<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let vn = target(c, AT_FDCWD, Some(a.word(0)), true).await?;
    setmode(c, &vn, a.uint(1)).await
}

/// `lchmod(path, mode)` — on a symbolic link itself; `lchmod(2)`.
pub async fn lchmod<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let vn = target(c, AT_FDCWD, Some(a.word(0)), false).await?;
    setmode(c, &vn, a.uint(1)).await
}

/// `fchmod(fd, mode)`; `fchmod(2)`.
pub async fn fchmod<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let vn = target(c, a.int(0), None, true).await?;
    setmode(c, &vn, a.uint(1)).await
}

/// `fchmodat(fd, path, mode, flag)`; `fchmodat(2)`.
pub async fn fchmodat<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    vfs(c)?;
    let follow = at_flag(a.int(3))?;
    let vn = target(c, a.int(0), Some(a.word(1)), follow).await?;
    setmode(c, &vn, a.uint(2)).await
}

/// `genfs_can_chmod` then the change: only the owner (or root); a non-root owner may not
/// set the sticky bit on a file (`EFTYPE`) nor set-group-id for a group it is not in.
async fn setmode<M>(c: &Ctx<'_, M>, vn: &Vnode, mode: u32) -> SysResult {
    writable_fs(vn)?;
    access::flags_allow(vn, IMMUTABLE | APPEND)?;
    let cred = c.p.cred();
    let a = vn.attr();
    if !access::owns(&cred, &a) {
        return Err(Errno::EPERM);
    }
    if !access::is_root(&cred) {
        if vn.vtype() != VType::Dir && mode & S_ISVTX != 0 {
            return Err(Errno::EFTYPE);
        }
        if mode & S_ISGID != 0 && !cred.in_group(a.gid) {
            return Err(Errno::EPERM);
        }
    }
    let now = c.k.vfs()?.now();
    vn.update(|a| {
        a.mode = mode & ALLPERMS;
        a.ctime = now;
    });
    persist(vn).await?;
    ret(0)
}

/// `chflags(path, flags)`; `chflags(2)`.
pub async fn chflags<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let vn = target(c, AT_FDCWD, Some(a.word(0)), true).await?;
    setflags(c, &vn, a.word(1)).await
}

/// `lchflags(path, flags)` — on a symbolic link itself; `lchflags(2)`.
pub async fn lchflags<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let vn = target(c, AT_FDCWD, Some(a.word(0)), false).await?;
    setflags(c, &vn, a.word(1)).await
}

/// `fchflags(fd, flags)`; `fchflags(2)`.
pub async fn fchflags<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let vn = target(c, a.int(0), None, true).await?;
    setflags(c, &vn, a.word(1)).await
}

/// `VOP_SETATTR` of `va_flags` (NetBSD's chflags of each file system): `EROFS` on a
/// read-only mount; then kauth: root may do anything (securelevel 0, a rump kernel's),
/// anyone else must own the node (`genfs_can_chflags`), may change only the `UF_SETTABLE`
/// half, and not on a device node (`EPERM`). What changes: every flag when the system half
/// changes, else only the user half. The flags are kept in the node (memory file systems) or
/// written to the inode's `di_flags` through `VOP_SETATTR` (disk file systems).
async fn setflags<M>(c: &Ctx<'_, M>, vn: &Vnode, flags: u64) -> SysResult {
    writable_fs(vn)?;
    // `u_long` in, `uint32_t` in the node (`va_flags` is truncated the same way).
    let flags = flags as u32;
    let cred = c.p.cred();
    let a = vn.attr();
    let sys_change = (flags & SF_SETTABLE) != (a.flags & SF_SETTABLE);
    if !access::is_root(&cred)
        && (cred.euid != a.uid || sys_change || matches!(vn.vtype(), VType::Chr | VType::Blk))
    {
        return Err(Errno::EPERM);
    }
    let now = c.k.vfs()?.now();
    vn.update(|x| {
        x.flags = match sys_change {
            true => flags,
            false => (x.flags & SF_SETTABLE) | (flags & UF_SETTABLE),
        };
        x.ctime = now;
    });
    persist(vn).await?;
    ret(0)
}

/// `chown(path, uid, gid)` (also `__posix_chown`); −1 leaves an id unchanged; `chown(2)`.
pub async fn chown<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let vn = target(c, AT_FDCWD, Some(a.word(0)), true).await?;
    setowner(c, &vn, a.uint(1), a.uint(2)).await
}

/// `lchown(path, uid, gid)` (also `__posix_lchown`); `lchown(2)`.
pub async fn lchown<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let vn = target(c, AT_FDCWD, Some(a.word(0)), false).await?;
    setowner(c, &vn, a.uint(1), a.uint(2)).await
}

/// `fchown(fd, uid, gid)` (also `__posix_fchown`); `fchown(2)`.
pub async fn fchown<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let vn = target(c, a.int(0), None, true).await?;
    setowner(c, &vn, a.uint(1), a.uint(2)).await
}

/// `fchownat(fd, path, uid, gid, flag)`; `fchownat(2)`.
pub async fn fchownat<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    vfs(c)?;
    let follow = at_flag(a.int(4))?;
    let vn = target(c, a.int(0), Some(a.word(1)), follow).await?;
    setowner(c, &vn, a.uint(2), a.uint(3)).await
}

/// `genfs_can_chown` then the change: a non-root owner may only change the group, to one
/// it is in; a non-root change clears set-user-id and set-group-id.
async fn setowner<M>(c: &Ctx<'_, M>, vn: &Vnode, uid: u32, gid: u32) -> SysResult {
    writable_fs(vn)?;
    access::flags_allow(vn, IMMUTABLE | APPEND)?;
    let cred = c.p.cred();
    let a = vn.attr();
    let uid = if uid == u32::MAX { a.uid } else { uid };
    let gid = if gid == u32::MAX { a.gid } else { gid };
    let root = access::is_root(&cred);
    if !root && (cred.euid != a.uid || uid != a.uid || (gid != a.gid && !cred.in_group(gid))) {
        return Err(Errno::EPERM);
    }
    let now = c.k.vfs()?.now();
    vn.update(|x| {
        if !root && (uid != x.uid || gid != x.gid) {
            x.mode &= !(S_ISUID | S_ISGID);
        }
        x.uid = uid;
        x.gid = gid;
        x.ctime = now;
    });
    persist(vn).await?;
    ret(0)
}

/// One time of a utimes call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Set {
    Now,
    Omit,
    At(Timespec),
}

fn word(b: &[u8], off: usize) -> i64 {
    i64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

/// Two `struct timeval`s, or now for NULL.
async fn timevals<M: UserMem>(c: &Ctx<'_, M>, addr: u64) -> Result<[Set; 2]> {
    if addr == 0 {
        return Ok([Set::Now; 2]);
    }
    let b = copy::copyin(c.mem, addr, 2 * TIMESPEC_SIZE).await?;
    let mut out = [Set::Omit; 2];
    for (i, o) in out.iter_mut().enumerate() {
        let sec = word(&b, i * 16);
        let usec = i32::from_le_bytes(b[i * 16 + 8..i * 16 + 12].try_into().expect("4"));
        if !(0..1_000_000).contains(&usec) {
            return Err(Errno::EINVAL);
        }
        *o = Set::At(Timespec {
            sec,
            nsec: i64::from(usec) * 1000,
        });
    }
    Ok(out)
}

/// Two `struct timespec`s with `UTIME_NOW`/`UTIME_OMIT`, or now for NULL.
async fn timespecs<M: UserMem>(c: &Ctx<'_, M>, addr: u64) -> Result<[Set; 2]> {
    if addr == 0 {
        return Ok([Set::Now; 2]);
    }
    let b = copy::copyin(c.mem, addr, 2 * TIMESPEC_SIZE).await?;
    let mut out = [Set::Omit; 2];
    for (i, o) in out.iter_mut().enumerate() {
        let (sec, nsec) = (word(&b, i * 16), word(&b, i * 16 + 8));
        *o = match nsec {
            UTIME_NOW => Set::Now,
            UTIME_OMIT => Set::Omit,
            0..=999_999_999 => Set::At(Timespec { sec, nsec }),
            _ => return Err(Errno::EINVAL),
        };
    }
    Ok(out)
}

/// `__utimes50(path, tptr)`; `utimes(2)`.
pub async fn utimes<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let vn = target(c, AT_FDCWD, Some(a.word(0)), true).await?;
    settimes(c, &vn, timevals(c, a.word(1)).await?).await
}

/// `__lutimes50(path, tptr)` — on a symbolic link itself; `lutimes(2)`.
pub async fn lutimes<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let vn = target(c, AT_FDCWD, Some(a.word(0)), false).await?;
    settimes(c, &vn, timevals(c, a.word(1)).await?).await
}

/// `__futimes50(fd, tptr)`; `futimes(2)`.
pub async fn futimes<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let vn = target(c, a.int(0), None, true).await?;
    settimes(c, &vn, timevals(c, a.word(1)).await?).await
}

/// `utimensat(fd, path, tptr, flag)`; `utimensat(2)`.
pub async fn utimensat<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    vfs(c)?;
    let follow = at_flag(a.int(3))?;
    let vn = target(c, a.int(0), Some(a.word(1)), follow).await?;
    settimes(c, &vn, timespecs(c, a.word(2)).await?).await
}

/// `futimens(fd, tptr)`; `futimens(2)`.
pub async fn futimens<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let vn = target(c, a.int(0), None, true).await?;
    settimes(c, &vn, timespecs(c, a.word(1)).await?).await
}

/// `genfs_can_chtimes` then the change: only "both now" (a NULL pointer or two
/// `UTIME_NOW`, vfs_syscalls.c `do_sys_utimensat` `VA_UTIMES_NULL`) lets a non-owner with
/// write permission through (else `EACCES`); any other combination needs the owner
/// (`EPERM`). Both omitted changes nothing.
async fn settimes<M>(c: &Ctx<'_, M>, vn: &Vnode, t: [Set; 2]) -> SysResult {
    if t == [Set::Omit; 2] {
        return ret(0);
    }
    writable_fs(vn)?;
    access::flags_allow(vn, IMMUTABLE | APPEND)?;
    let cred: Cred = c.p.cred();
    let a = vn.attr();
    if !access::owns(&cred, &a) {
        if t != [Set::Now; 2] {
            return Err(Errno::EPERM);
        }
        access::check(&cred, vn.vtype(), &a, W_OK)?;
    }
    let now = c.k.vfs()?.now();
    let pick = |s: Set, old: Timespec| match s {
        Set::Now => now,
        Set::Omit => old,
        Set::At(ts) => ts,
    };
    vn.update(|x| {
        x.atime = pick(t[0], x.atime);
        x.mtime = pick(t[1], x.mtime);
        x.ctime = now;
    });
    persist(vn).await?;
    ret(0)
}

/// `truncate(path, PAD, length)`; `truncate(2)`.
pub async fn truncate<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let vn = target(c, AT_FDCWD, Some(a.word(0)), true).await?;
    let len = a.long(2);
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    if vn.is_dir() {
        return Err(Errno::EISDIR);
    }
    writable_fs(&vn)?;
    access::check(&c.p.cred(), vn.vtype(), &vn.attr(), W_OK)?;
    settsize(c, &vn, len as u64).await
}

/// `ftruncate(fd, PAD, length)` — the file must be open for writing (`EINVAL`);
/// `ftruncate(2)`.
pub async fn ftruncate<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    vfs(c)?;
    let len = a.long(2);
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let fp = c.p.fd.get(a.int(0))?;
    let vn = fp.vnode().cloned().ok_or(Errno::EINVAL)?;
    if !fp.writable() {
        return Err(Errno::EINVAL);
    }
    if vn.is_dir() {
        return Err(Errno::EISDIR);
    }
    settsize(c, &vn, len as u64).await
}

async fn settsize<M>(c: &Ctx<'_, M>, vn: &Vnode, len: u64) -> SysResult {
    if vn.revoked() {
        return Err(Errno::EIO);
    }
    if vn.vtype() == VType::Reg {
        writable_fs(vn)?;
        access::flags_allow(vn, IMMUTABLE | APPEND)?;
    }
    let _io = vn.io_lock().lock_sig(c.p).await?;
    vn.truncate(len).await?;
    if vn.vtype() == VType::Reg {
        let now = c.k.vfs()?.now();
        vn.update(|x| {
            x.mtime = now;
            x.ctime = now;
        });
        persist(vn).await?;
    }
    ret(0)
}

/// Writes a vnode's changed attributes to its file system when they live elsewhere (on a
/// device); memory file systems keep them in the vnode.
/// Every attribute change ends here: its vnode note (`NOTE_ATTRIB`) goes out too.
pub(crate) async fn persist(vn: &crate::vfs::Vnode) -> crate::Result<()> {
    vn.klist().knote(crate::file::kqueue::NOTE_ATTRIB);
    vn.setattr().await
}

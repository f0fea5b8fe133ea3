//! mount(2) and unmount(2): `__mount50` and `unmount` (vfs_syscalls.c `do_sys_mount`,
//! `mount_get_vfsops`, `mount_getargs`, `mount_update`, `sys_unmount`), with the checks in
//! NetBSD's order. The mount table work is `Vfs::mount_new`/`mount_update`/`unmount`
//! (vfs/mountops.rs).

use super::at::{self, vfs};
use super::{ret, Args, Ctx, SysResult};
use crate::abi::*;
use crate::vfs::Vnode;
use crate::vfs::{access, FsType, MountReq};
use crate::{copy, Errno, Result, UserMem};
use std::sync::Arc;

/// The historic numeric file-system types (`mountcompatnames`): a type argument whose
/// string cannot be fetched is taken as one of these numbers.
const COMPAT_NAMES: [Option<&[u8]>; 10] = [
    None,
    Some(b"ffs"),
    Some(b"nfs"),
    Some(b"mfs"),
    Some(b"msdos"),
    Some(b"cd9660"),
    Some(b"fdesc"),
    Some(b"kernfs"),
    None,
    Some(b"afs"),
];

/// `mount_get_vfsops`: the type string (at most 31 bytes and a NUL; if it cannot be
/// fetched, the pointer value as a historic number), then the registered type of that name
/// (`Kernel::fs_type`: `ENODEV` unless built in and loaded, or a loaded component's).
async fn fs_type<M: UserMem>(c: &Ctx<'_, M>, addr: u64) -> Result<Arc<dyn FsType>> {
    let name = match copy::copyinstr(c.mem, addr, VFS_NAMELEN).await {
        Ok(n) => n,
        Err(_) => match usize::try_from(addr).ok().and_then(|i| COMPAT_NAMES.get(i)) {
            Some(Some(n)) => n.to_vec(),
            _ => return Err(Errno::ENODEV),
        },
    };
    c.k.fs_type(&name)
}

/// Only the superuser mounts and unmounts (`KAUTH_SYSTEM_MOUNT` without user mounts).
fn superuser<M>(c: &Ctx<'_, M>) -> Result<()> {
    if access::is_root(&c.p.cred()) {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// `__mount50(type, path, flags, data, data_len)` — mounts a file system, changes one
/// (`MNT_UPDATE`) or reads its arguments back (`MNT_GETARGS`, returning their length);
/// `mount(2)`.
///
/// Order (do_sys_mount): the path is looked up (following symbolic links and mounts);
/// unless updating or reading arguments the type is resolved (`ENODEV`); a non-NULL `data`
/// is copied in — `data_len` 0 means the file system's own argument size, above 8192 (or
/// 0 then) is `EINVAL`. `MNT_UNION` is refused with `EOPNOTSUPP` (lookups do not fall
/// through to the covered directory here) rather than recorded and ignored.
pub async fn mount<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let v = vfs(c)?;
    let flags = u64::from(a.uint(2));
    let (data_addr, data_len) = (a.word(3), a.word(4));
    let vn = at::lookup(c, AT_FDCWD, a.word(1), true).await?;
    let typ = if flags & (MNT_GETARGS | MNT_UPDATE) != 0 {
        vn.mount()?.fs_type().clone()
    } else {
        fs_type(c, a.word(0)).await?
    };
    let data = if data_addr != 0 {
        let len = match data_len {
            0 => typ.min_mount_data(),
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        if len == 0 || len > VFS_MAX_MOUNT_DATA {
            return Err(Errno::EINVAL);
        }
        Some(copy::copyin(c.mem, data_addr, len).await?)
    } else {
        None
    };
    let procs = c.k.all_procs();
    if flags & MNT_GETARGS != 0 {
        // mount_getargs: no other flag, the root of a file system, then the fs's answer.
        let data = data.ok_or(Errno::EINVAL)?;
        let m = vn.mount()?;
        if flags & !MNT_GETARGS != 0 || !m.is_root(&vn) {
            return Err(Errno::EINVAL);
        }
        let out = m.ops().getargs(&m, data)?;
        copy::copyout(c.mem, data_addr, &out).await?;
        return ret(out.len() as i64);
    }
    if flags & MNT_UPDATE != 0 {
        // mount_update: the root of a file system; going read-only only where the file
        // system supports it; permission; then the file system.
        let m = vn.mount()?;
        if !m.is_root(&vn) {
            return Err(Errno::EINVAL);
        }
        if flags & (MNT_RELOAD | MNT_RDONLY) != 0 && !m.read_only() && !typ.can_rw_to_ro() {
            return Err(Errno::EOPNOTSUPP);
        }
        superuser(c)?;
        if flags & MNT_UNION != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        if flags & MNT_RDONLY != 0 {
            m.ops().sync().await?;
        } else if m.read_only() {
            m.ops().upgrade().await?;
        }
        v.mount_update(&m, flags, data.as_deref(), &procs)?;
        return ret(0);
    }
    // mount_domount: permission, a directory to cover, no export flag; then the file
    // system checks its arguments.
    superuser(c)?;
    if !vn.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if flags & MNT_EXPORTED != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MNT_UNION != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let device = match typ.device_arg(data.as_deref())? {
        Some(fspec) => Some(device(c, fspec).await?),
        None => None,
    };
    let req = MountReq {
        typ,
        flags,
        data: data.as_deref(),
        owner: c.p.cred().euid,
        device,
    };
    v.mount_new(&vn, &req, c.k.budget(), &procs).await?;
    ret(0)
}

/// The device node whose path is at client address `fspec` (`ufs_args.fspec`), looked up
/// from the current directory following symbolic links; the file system checks its type.
async fn device<M: UserMem>(c: &Ctx<'_, M>, fspec: u64) -> Result<(Arc<Vnode>, Vec<u8>)> {
    let path = at::path(c, fspec).await?;
    let v = vfs(c)?;
    let start = at::start_namei(c, v, AT_FDCWD, &path)?;
    let dev = crate::vfs::namei(&at::nd(c, v), &start, &path, true).await?;
    Ok((dev, path))
}

/// `unmount(path, flags)` — unmounts the file system whose root `path` names; with
/// `MNT_FORCE` even while files in it are open (they die: `EIO`); `unmount(2)`.
///
/// Order (sys_unmount): lookup, permission (`EPERM`), the root file system (`EINVAL`), a
/// path that is not the root of a file system (`EINVAL`), then `dounmount` (`EBUSY`).
pub async fn unmount<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let v = vfs(c)?;
    let flags = u64::from(a.uint(1));
    let vn = at::lookup(c, AT_FDCWD, a.word(0), true).await?;
    let m = vn.mount()?;
    superuser(c)?;
    if m.flag() & MNT_ROOTFS != 0 || !m.is_root(&vn) {
        return Err(Errno::EINVAL);
    }
    // VFS_UNMOUNT writes everything back first: a failure leaves the file system mounted.
    match flags & MNT_FORCE {
        0 => m.ops().sync().await?,
        // Forced: it goes even if the device fails.
        _ => drop(m.ops().sync().await),
    }
    v.unmount(&m, flags, &c.k.all_procs())?;
    // Out of the table: the last write-back (a device's clean flag).
    m.ops().finish().await?;
    ret(0)
}

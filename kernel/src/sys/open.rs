//! open/openat and node creation: mknod, mkfifo (vfs_syscalls.c `do_open`, vfs_vnops.c
//! `vn_open`, `do_sys_mknodat`, `do_sys_mkfifoat`).

use std::sync::Arc;

use super::at::{self, vfs};
use super::{ret, Args, Ctx, SysResult};
use crate::abi::*;
use crate::dev;
use crate::file::{File, FileKind, VnFile};
use crate::lock::{LOCK_EX, LOCK_NB, LOCK_SH};
use crate::vfs::{access, NewNode, VType, Vnode};
use crate::{Errno, UserMem};

/// `open(path, flags, mode)` — opens or creates a file; `open(2)`.
pub async fn open<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    do_open(c, AT_FDCWD, a.word(0), a.uint(1), a.uint(2)).await
}

/// `openat(fd, path, flags, mode)` — open relative to a directory; `openat(2)`.
pub async fn openat<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    do_open(c, a.int(0), a.word(1), a.uint(2), a.uint(3)).await
}

/// Bits of `f_flag` an open file keeps (`FMASK`).
const FMASK: u32 = FREAD | FWRITE | FCNTLFLAGS;

pub(crate) async fn do_open<M: UserMem>(
    c: &Ctx<'_, M>,
    fd: i32,
    addr: u64,
    flags: u32,
    mode: u32,
) -> SysResult {
    let v = vfs(c)?;
    let fmode = fflags(flags);
    if fmode & (FREAD | FWRITE) == 0 {
        return Err(Errno::EINVAL);
    }
    // vfs_vnops.c `vn_open`: O_CREAT with O_DIRECTORY is refused before any lookup.
    if flags & (O_CREAT | O_DIRECTORY) == O_CREAT | O_DIRECTORY {
        return Err(Errno::EINVAL);
    }
    let path = crate::copy::Recycled::new(c.mem, at::path(c, addr).await?);
    let start = at::start_namei(c, v, fd, &path)?;
    let nd = at::nd(c, v);
    let cred = c.p.cred();
    let nofollow = flags & (O_NOFOLLOW | O_EXCL) != 0;
    let (vn, created) = if flags & O_CREAT != 0 {
        let f = crate::vfs::namei_parent(&nd, &start, &path, !nofollow, crate::vfs::NameOp::Create)
            .await?;
        // namei's CREATE on `/` or a mount point: `EEXIST`, even without O_EXCL.
        if f.at_mount_root() {
            return Err(Errno::EEXIST);
        }
        match (f.node, f.dir) {
            (Some(_), _) if flags & O_EXCL != 0 => return Err(Errno::EEXIST),
            (Some(vn), _) => (vn, false),
            (None, Some(_)) if f.slash => return Err(Errno::ENOENT),
            (None, Some(dir)) => {
                let perm = (mode & !c.p.umask()) & ALLPERMS & !S_ISVTX;
                let new = NewNode {
                    vtype: VType::Reg,
                    mode: perm,
                    rdev: NODEV,
                    target: b"",
                };
                (v.create(&cred, &dir, &f.name, &new).await?, true)
            }
            (None, None) => return Err(Errno::ENOENT),
        }
    } else {
        (
            crate::vfs::namei(&nd, &start, &path, flags & O_NOFOLLOW == 0).await?,
            false,
        )
    };
    match vn.vtype() {
        // O_NOFOLLOW on a symbolic link: EFTYPE, as NetBSD answers.
        VType::Lnk => return Err(Errno::EFTYPE),
        VType::Sock => return Err(Errno::EOPNOTSUPP),
        _ => {}
    }
    if flags & O_DIRECTORY != 0 && !vn.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if flags & O_REGULAR != 0 && vn.vtype() != VType::Reg {
        return Err(Errno::EFTYPE);
    }
    if !created {
        let mut want = 0;
        if fmode & FREAD != 0 {
            want |= R_OK;
        }
        if fmode & FWRITE != 0 || flags & O_TRUNC != 0 {
            if vn.is_dir() {
                return Err(Errno::EISDIR);
            }
            // `VOP_ACCESS`: writing a file of a read-only mount is `EROFS`.
            if vn.read_only() && matches!(vn.vtype(), VType::Reg | VType::Lnk) {
                return Err(Errno::EROFS);
            }
            want |= W_OK;
            // `VOP_ACCESS`: no writing an immutable node; `VOP_OPEN`: an
            // append-only file only with O_APPEND.
            access::flags_allow(&vn, IMMUTABLE)?;
            if flags & O_APPEND == 0 {
                access::flags_allow(&vn, APPEND)?;
            }
        }
        access::check(&cred, vn.vtype(), &vn.attr(), want)?;
    }
    let fifo = open_special(c, &vn, fmode, flags).await?;
    // `vn_open` truncates for O_TRUNC whatever the access mode (write permission was
    // checked above), so O_RDONLY | O_TRUNC empties the file as on NetBSD.
    if flags & O_TRUNC != 0 && vn.vtype() == VType::Reg && !created {
        let _io = vn.io_lock().lock_sig(c.p).await?;
        vn.truncate(0).await?;
        let t = v.now();
        vn.update(|a| {
            a.mtime = t;
            a.ctime = t;
        });
        super::attr::persist(&vn).await?;
    }
    let file = File::new(FileKind::Vnode(VnFile::new(vn, fifo)), fmode & FMASK);
    if flags & (O_SHLOCK | O_EXLOCK) != 0 {
        // open_setfp: a flock lock on the new open file, waiting unless O_NONBLOCK; on
        // failure the file is dropped (vn_close). O_EXLOCK wins when both are given.
        let mut how = if flags & O_EXLOCK != 0 {
            LOCK_EX
        } else {
            LOCK_SH
        };
        if flags & O_NONBLOCK != 0 {
            how |= LOCK_NB;
        }
        super::descrip::flock_file(c, &file, how).await?;
    }
    let nfd = c.p.fd.alloc(file, 0, flags & O_CLOEXEC != 0)?;
    ret(i64::from(nfd))
}

/// Opens what a device or FIFO node stands for: the device must have a driver (`ENXIO`),
/// a FIFO joins its pipe (waiting for the other side as `fifo_open` does).
async fn open_special<M: UserMem>(
    c: &Ctx<'_, M>,
    vn: &Arc<Vnode>,
    fmode: u32,
    flags: u32,
) -> crate::Result<Option<crate::file::PipeEnd>> {
    match vn.body() {
        crate::vfs::Body::Fifo(fifo) => {
            let now = c.k.vfs()?.now();
            let (r, w) = (fmode & FREAD != 0, fmode & FWRITE != 0);
            let nonblock = flags & O_NONBLOCK != 0;
            Ok(Some(
                fifo.open(c.p, r, w, nonblock, now, c.k.budget()).await?,
            ))
        }
        // Nodes that drive their own data (host-file devices) open themselves.
        crate::vfs::Body::Node(n) if n.drives_data() => n.open(fmode).map(|()| None),
        // spec_open: devices of an `MNT_NODEV` mount cannot be opened.
        _ if matches!(vn.vtype(), VType::Chr | VType::Blk) => {
            if vn.mnt_flag() & MNT_NODEV != 0 {
                return Err(Errno::ENXIO);
            }
            dev::lookup(vn.attr().rdev).ok_or(Errno::ENXIO)?;
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// `__mknod50(path, mode, dev)` — makes a device, FIFO or regular node; `mknod(2)`.
pub async fn mknod<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    do_mknod(c, AT_FDCWD, a.word(0), a.uint(1), a.word(2)).await
}

/// `mknodat(fd, path, mode, PAD, dev)`; `mknodat(2)`.
pub async fn mknodat<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    do_mknod(c, a.int(0), a.word(1), a.uint(2), a.word(4)).await
}

async fn do_mknod<M: UserMem>(
    c: &Ctx<'_, M>,
    fd: i32,
    addr: u64,
    mode: u32,
    rdev: u64,
) -> SysResult {
    let v = vfs(c)?;
    let vtype = match mode & S_IFMT {
        S_IFIFO => VType::Fifo,
        S_IFCHR => VType::Chr,
        S_IFBLK => VType::Blk,
        S_IFREG | 0 => VType::Reg,
        _ => return Err(Errno::EINVAL),
    };
    // Only the superuser makes nodes other than FIFOs (`KAUTH_SYSTEM_MKNOD`).
    if vtype != VType::Fifo && !access::is_root(&c.p.cred()) {
        return Err(Errno::EPERM);
    }
    make(c, v, fd, addr, vtype, mode, rdev).await
}

/// `mkfifo(path, mode)` — makes a FIFO; `mkfifo(2)`.
pub async fn mkfifo<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let v = vfs(c)?;
    make(c, v, AT_FDCWD, a.word(0), VType::Fifo, a.uint(1), NODEV).await
}

/// `mkfifoat(fd, path, mode)`; `mkfifoat(2)`.
pub async fn mkfifoat<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let v = vfs(c)?;
    make(c, v, a.int(0), a.word(1), VType::Fifo, a.uint(2), NODEV).await
}

async fn make<M: UserMem>(
    c: &Ctx<'_, M>,
    v: &crate::vfs::Vfs,
    fd: i32,
    addr: u64,
    vtype: VType,
    mode: u32,
    rdev: u64,
) -> SysResult {
    let f = at::lookup_parent(c, fd, addr, false, crate::vfs::NameOp::Create).await?;
    let dir = f.create_in()?;
    let new = NewNode {
        vtype,
        mode: (mode & !c.p.umask()) & ALLPERMS,
        rdev,
        target: b"",
    };
    v.create(&c.p.cred(), dir, &f.name, &new).await?;
    ret(0)
}

//! Namespace operations on directories: create, link, remove, rename, with NetBSD's checks
//! (`VOP_CREATE`/`VOP_LINK`/`VOP_REMOVE`/`VOP_RMDIR`/`VOP_RENAME`, genfs rename).

use std::sync::Arc;

use super::memnode::{Dir, RegData};
use super::walk::WalkUp;
use super::{access, Attr, Body, VType, Vfs, Vnode};
use crate::abi::{Timespec, APPEND, IMMUTABLE, LINK_MAX, NODEV, S_ISVTX, W_OK, X_OK};
use crate::file::kqueue::{NOTE_DELETE, NOTE_LINK, NOTE_RENAME, NOTE_WRITE};
use crate::proc::Cred;
use crate::{Errno, Result};

/// What to create.
pub struct NewNode<'a> {
    /// Type.
    pub vtype: VType,
    /// Permission bits (umask already applied).
    pub mode: u32,
    /// Device number for device nodes.
    pub rdev: u64,
    /// Target of a symbolic link.
    pub target: &'a [u8],
}

fn touch_dir(dir: &Vnode, now: Timespec, nlink_delta: i32) {
    dir.update(|a| {
        a.mtime = now;
        a.ctime = now;
        a.nlink = a.nlink.wrapping_add_signed(nlink_delta);
    });
    let link = if nlink_delta != 0 { NOTE_LINK } else { 0 };
    dir.klist().knote(NOTE_WRITE | link);
}

/// Write and search permission on a directory that is about to change (an immutable one:
/// `EPERM`, `VOP_ACCESS`).
fn may_modify(cred: &Cred, dir: &Vnode) -> Result<()> {
    access::flags_allow(dir, IMMUTABLE)?;
    access::check(cred, VType::Dir, &dir.attr(), W_OK | X_OK)
}

/// `VOP_REMOVE`/`VOP_RMDIR` and the rename checks: an immutable or append-only
/// node keeps its name, and an append-only directory keeps its entries (`EPERM`).
fn may_unlink(dir: &Vnode, node: &Vnode) -> Result<()> {
    access::flags_allow(node, IMMUTABLE | APPEND)?;
    access::flags_allow(dir, APPEND)
}

/// The sticky-directory rule: in a sticky directory only the owner of the entry or of the
/// directory (or root) may remove or rename it.
fn sticky_ok(cred: &Cred, dir: &Vnode, node: &Vnode) -> Result<()> {
    let d = dir.attr();
    if d.mode & S_ISVTX != 0 && !access::is_root(cred) {
        let n = node.attr();
        if cred.euid != d.uid && cred.euid != n.uid {
            return Err(Errno::EPERM);
        }
    }
    Ok(())
}

/// `EROFS` when `dir`'s file system is mounted read-only (namei refuses to create, remove
/// or rename there).
fn writable_fs(dir: &Vnode) -> Result<()> {
    if dir.read_only() {
        return Err(Errno::EROFS);
    }
    Ok(())
}

fn same_mount(a: &Vnode, b: &Vnode) -> Result<bool> {
    Ok(Arc::ptr_eq(&a.mount()?, &b.mount()?))
}

impl Vfs {
    /// Creates `name` in `dir` (`VOP_CREATE`/`VOP_MKDIR`/`VOP_MKNOD`/`VOP_SYMLINK`): owner
    /// is the effective user, group the directory's (BSD rule).
    pub async fn create(
        &self,
        cred: &Cred,
        dir: &Arc<Vnode>,
        name: &[u8],
        new: &NewNode<'_>,
    ) -> Result<Arc<Vnode>> {
        writable_fs(dir)?;
        may_modify(cred, dir)?;
        if let Some(n) = dir.node_ops() {
            return n.create(dir, name, new, cred.euid).await;
        }
        let m = dir.mount()?;
        let now = self.now();
        let attr = Attr {
            mode: new.mode & 0o7777,
            uid: cred.euid,
            gid: dir.attr().gid,
            nlink: if new.vtype == VType::Dir { 2 } else { 1 },
            rdev: match new.vtype {
                VType::Chr | VType::Blk => new.rdev,
                _ => NODEV,
            },
            flags: 0,
            atime: now,
            mtime: now,
            ctime: now,
            birthtime: now,
        };
        let body = match new.vtype {
            VType::Dir => Body::Dir(std::sync::Mutex::new(Dir::new(
                Arc::downgrade(dir),
                m.first_cookie(),
                m.budget(),
            ))),
            VType::Reg => Body::Reg(std::sync::Mutex::new(RegData::new(m.budget()))),
            VType::Lnk => Body::Link(new.target.to_vec()),
            VType::Fifo => Body::Fifo(crate::file::Fifo::new()),
            _ => Body::Special,
        };
        // Within the mount's node limit (`ENOSPC`).
        let vn = Vnode::try_new(&m, m.alloc_ino(), new.vtype, attr, body)?;
        dir.dir()?.insert(name, vn.clone())?;
        touch_dir(dir, now, i32::from(new.vtype == VType::Dir));
        Ok(vn)
    }

    /// `VOP_LINK`: a new name for `node` in `dir`.
    pub async fn link(
        &self,
        cred: &Cred,
        dir: &Arc<Vnode>,
        name: &[u8],
        node: &Arc<Vnode>,
    ) -> Result<()> {
        if node.is_dir() {
            return Err(Errno::EPERM);
        }
        if !same_mount(dir, node)? {
            return Err(Errno::EXDEV);
        }
        writable_fs(dir)?;
        may_modify(cred, dir)?;
        if node.attr().nlink >= LINK_MAX {
            return Err(Errno::EMLINK);
        }
        // `VOP_LINK`: an immutable or append-only file gets no new name.
        access::flags_allow(node, IMMUTABLE | APPEND)?;
        if let Some(n) = dir.node_ops() {
            return n.link(dir, name, node).await;
        }
        let now = self.now();
        {
            let mut d = dir.dir()?;
            // The node may have lost its last name meanwhile (`ENOENT` as NetBSD).
            if node.attr().nlink == 0 {
                return Err(Errno::ENOENT);
            }
            d.insert(name, node.clone())?;
            node.update(|a| {
                a.nlink += 1;
                a.ctime = now;
            });
        }
        touch_dir(dir, now, 0);
        node.klist().knote(NOTE_LINK);
        Ok(())
    }

    /// `VOP_REMOVE`: removes the non-directory `name` from `dir`.
    pub async fn unlink(&self, cred: &Cred, dir: &Arc<Vnode>, name: &[u8]) -> Result<()> {
        writable_fs(dir)?;
        may_modify(cred, dir)?;
        if let Some(n) = dir.node_ops() {
            let check = |node: &Arc<Vnode>| {
                if node.is_dir() {
                    return Err(Errno::EPERM);
                }
                sticky_ok(cred, dir, node)?;
                may_unlink(dir, node)
            };
            return n.remove(dir, name, false, &check).await;
        }
        let now = self.now();
        {
            let mut d = dir.dir()?;
            let node = d.get(name).cloned().ok_or(Errno::ENOENT)?;
            if node.is_dir() {
                return Err(Errno::EPERM);
            }
            sticky_ok(cred, dir, &node)?;
            may_unlink(dir, &node)?;
            d.remove(name);
            let left = node.update(|a| {
                a.nlink = a.nlink.saturating_sub(1);
                a.ctime = now;
                a.nlink
            });
            node.klist()
                .knote(if left > 0 { NOTE_LINK } else { NOTE_DELETE });
        }
        touch_dir(dir, now, 0);
        Ok(())
    }

    /// `VOP_RMDIR`: removes the empty directory `name` from `dir`.
    pub async fn rmdir(&self, cred: &Cred, dir: &Arc<Vnode>, name: &[u8]) -> Result<()> {
        writable_fs(dir)?;
        may_modify(cred, dir)?;
        if let Some(n) = dir.node_ops() {
            let check = |node: &Arc<Vnode>| {
                if !node.is_dir() {
                    return Err(Errno::ENOTDIR);
                }
                if node.mounted_here().is_some() {
                    return Err(Errno::EBUSY);
                }
                sticky_ok(cred, dir, node)?;
                may_unlink(dir, node)
            };
            return n.remove(dir, name, true, &check).await;
        }
        let _ns = self.ns_lock();
        let now = self.now();
        {
            let mut d = dir.dir()?;
            let node = d.get(name).cloned().ok_or(Errno::ENOENT)?;
            if !node.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            if node.mounted_here().is_some() {
                return Err(Errno::EBUSY);
            }
            sticky_ok(cred, dir, &node)?;
            may_unlink(dir, &node)?;
            {
                let mut nd = node.dir()?;
                if !nd.is_empty() {
                    return Err(Errno::ENOTEMPTY);
                }
                nd.removed = true;
            }
            d.remove(name);
            node.update(|a| {
                a.nlink = 0;
                a.ctime = now;
            });
            node.klist().knote(NOTE_DELETE);
        }
        touch_dir(dir, now, -1);
        Ok(())
    }

    /// `VOP_RENAME` with POSIX semantics, checked in NetBSD's order (vfs_syscalls.c
    /// `do_sys_renameat`, then genfs_rename.c `genfs_sane_rename`): `EXDEV`; a directory
    /// over a non-directory `ENOTDIR` or the reverse `EISDIR`; a directory into itself or
    /// below itself `EINVAL`; the same file under two names (`retain`, `__posix_rename`:
    /// nothing happens; otherwise the source name goes away, BSD); mount points `EBUSY`;
    /// a non-empty target directory `ENOTEMPTY`; only then permissions and the sticky bit.
    pub async fn rename(
        &self,
        cred: &Cred,
        fdir: &Arc<Vnode>,
        fname: &[u8],
        tdir: &Arc<Vnode>,
        tname: &[u8],
        retain: bool,
    ) -> Result<()> {
        if fdir.node_ops().is_some() {
            return self
                .rename_node(cred, fdir, fname, tdir, tname, retain)
                .await;
        }
        let _ns = self.ns_lock();
        let src = fdir.dir()?.get(fname).cloned().ok_or(Errno::ENOENT)?;
        if !same_mount(fdir, tdir)? || !same_mount(&src, tdir)? {
            return Err(Errno::EXDEV);
        }
        writable_fs(fdir)?;
        let dst = tdir.dir()?.get(tname).cloned();
        if let Some(dst) = &dst {
            match (src.is_dir(), dst.is_dir()) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                _ => {}
            }
        }
        if src.is_dir() {
            // The target directory must not be the source or below it (memory directories:
            // the walk up never waits, the namespace lock stays held).
            let mut walk = WalkUp::new();
            let mut d = tdir.clone();
            loop {
                if Arc::ptr_eq(&d, &src) {
                    return Err(Errno::EINVAL);
                }
                if d.mount()?.is_root(&d) {
                    break;
                }
                d = match walk.parent_now(&d) {
                    Some(Ok(p)) => p,
                    Some(Err(Errno::ENOENT)) | None => break,
                    Some(Err(e)) => return Err(e),
                };
            }
        }
        if let Some(dst) = &dst {
            if Arc::ptr_eq(dst, &src) {
                if retain || (Arc::ptr_eq(fdir, tdir) && fname == tname) {
                    return Ok(());
                }
                // Two links of one file: the source name goes away (BSD behaviour).
                drop(_ns);
                return Box::pin(self.unlink(cred, fdir, fname)).await;
            }
        }
        if src.is_dir() && src.mounted_here().is_some() {
            return Err(Errno::EBUSY);
        }
        if let Some(dst) = dst.as_ref().filter(|d| d.is_dir()) {
            if dst.mounted_here().is_some() {
                return Err(Errno::EBUSY);
            }
            if !dst.dir()?.is_empty() {
                return Err(Errno::ENOTEMPTY);
            }
        }
        may_modify(cred, fdir)?;
        may_modify(cred, tdir)?;
        sticky_ok(cred, fdir, &src)?;
        may_unlink(fdir, &src)?;
        if let Some(dst) = &dst {
            sticky_ok(cred, tdir, dst)?;
            may_unlink(tdir, dst)?;
        }
        let moving_dir = src.is_dir() && !Arc::ptr_eq(fdir, tdir);
        if moving_dir {
            // Its `..` changes: write permission on the directory itself.
            access::check(cred, VType::Dir, &src.attr(), W_OK)?;
        }
        let now = self.now();
        if Arc::ptr_eq(fdir, tdir) {
            // The new name first: its charge may not fit (`ENOSPC`, nothing changed).
            let mut d = fdir.dir()?;
            if d.replace(tname, src.clone()).is_none() {
                d.insert(tname, src.clone())?;
            }
            d.remove(fname);
        } else {
            let mut f = fdir.dir()?;
            let mut t = tdir.dir()?;
            if t.replace(tname, src.clone()).is_none() {
                t.insert(tname, src.clone())?;
            }
            f.remove(fname);
        }
        let mut tdelta = 0;
        if let Some(dst) = &dst {
            if dst.is_dir() {
                dst.dir()?.removed = true;
                dst.update(|a| a.nlink = 0);
                tdelta -= 1;
            } else {
                dst.update(|a| a.nlink = a.nlink.saturating_sub(1));
            }
            dst.update(|a| a.ctime = now);
            dst.klist().knote(NOTE_DELETE);
        }
        if moving_dir {
            src.dir()?.parent = Arc::downgrade(tdir);
            touch_dir(fdir, now, -1);
            tdelta += 1;
        } else {
            touch_dir(fdir, now, 0);
        }
        touch_dir(tdir, now, tdelta);
        src.update(|a| a.ctime = now);
        src.klist().knote(NOTE_RENAME);
        Ok(())
    }

    /// `VOP_RENAME` in a file system with its own nodes: NetBSD's checks as above on vnodes
    /// it looks up; the file system moves the entries, fixes `..` and refuses what would
    /// break the tree.
    async fn rename_node(
        &self,
        cred: &Cred,
        fdir: &Arc<Vnode>,
        fname: &[u8],
        tdir: &Arc<Vnode>,
        tname: &[u8],
        retain: bool,
    ) -> Result<()> {
        let src = fdir.lookup(fname).await?.ok_or(Errno::ENOENT)?;
        if !same_mount(fdir, tdir)? || !same_mount(&src, tdir)? {
            return Err(Errno::EXDEV);
        }
        writable_fs(fdir)?;
        let dst = tdir.lookup(tname).await?;
        if let Some(dst) = &dst {
            match (src.is_dir(), dst.is_dir()) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                _ => {}
            }
            if Arc::ptr_eq(dst, &src) {
                if retain || (Arc::ptr_eq(fdir, tdir) && fname == tname) {
                    return Ok(());
                }
                // Two links of one file: the source name goes away (BSD behaviour).
                return Box::pin(self.unlink(cred, fdir, fname)).await;
            }
            if dst.mounted_here().is_some() {
                return Err(Errno::EBUSY);
            }
        }
        if src.mounted_here().is_some() {
            return Err(Errno::EBUSY);
        }
        may_modify(cred, fdir)?;
        may_modify(cred, tdir)?;
        sticky_ok(cred, fdir, &src)?;
        may_unlink(fdir, &src)?;
        if let Some(dst) = &dst {
            sticky_ok(cred, tdir, dst)?;
            may_unlink(tdir, dst)?;
        }
        if src.is_dir() && !Arc::ptr_eq(fdir, tdir) {
            access::check(cred, VType::Dir, &src.attr(), W_OK)?;
        }
        let mut touch: Vec<&Vnode> = vec![&src];
        if let Some(dst) = &dst {
            touch.push(dst);
        }
        let ops = fdir.node_ops().ok_or(Errno::EIO)?;
        ops.rename(fdir, fname, tdir, tname, &touch).await
    }
}

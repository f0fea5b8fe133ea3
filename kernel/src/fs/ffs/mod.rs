//! FFS in the kernel (`rumpfs_ffs`): the engine of crate `ffs` over etfs block devices.
//!
//! A mount holds one engine behind an async lock ([`FfsMount`]) and a cache of the vnodes it
//! handed out, by inode number (weak references: a vnode lives while someone uses it, and the
//! same inode always gets the same vnode). FFS vnodes carry only their inode number and a
//! copy of the attributes; names, data and directories stay on the device, read through
//! the buffer cache ([`BioDisk`]).
//!
//! Read-write and read-only mounts: lookup (incl. `..` and symbolic links), stat, read,
//! getdents, readlink, statvfs; create/mkdir/mknod/symlink, link, unlink, rmdir, rename,
//! write, truncate, setattr (mode, owner, times, flags), fsync, sync and unmount through the
//! engine. A vnode holds a reference on its inode (`retain`), so a file unlinked while open
//! lives until its last vnode goes; the release is queued by the vnode's drop and done at
//! the next operation on the mount (a drop cannot wait for the device).

mod disk;
pub mod sysctl;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

pub use disk::BioDisk;

use crate::abi::{Statvfs, Timespec, DEV_BSIZE, MNT_RDONLY};
use crate::mem::Budget;
use crate::sync::Mutex as IoLock;
use crate::vfs::ops::{
    BuildArgs, DirEntry, FsFuture, FsOps, FsType, MountParams, PrepareArgs, RemoveCheck, VnodeOps,
};
use crate::vfs::{Attr, Body, Mount, NameOp, NewMount, NewNode, VType, Vnode};
use crate::{Errno, Result};

/// Size of `struct ufs_args` (`fspec`, a pointer).
pub const UFS_ARGS_SIZE: usize = 8;

/// One mounted FFS: the engine, its vnodes, and the figures statvfs reports.
pub struct FfsMount {
    /// The engine; `None` once unmounted.
    fs: IoLock<Option<ffs::Fs<BioDisk>>>,
    vnodes: Mutex<HashMap<u32, Weak<Vnode>>>,
    stat: Mutex<ffs::StatVfs>,
    /// Inodes whose last vnode went: released at the next operation.
    to_release: Mutex<Vec<u32>>,
    /// The device's claim, given back at unmount (or when the mount is never built).
    claim: Mutex<Option<DevClaim>>,
}

/// A block device marked as mounted on (`EtfsNode::claim_mount`) until this drops.
struct DevClaim(Arc<Vnode>);

impl DevClaim {
    fn take(dev: &Arc<Vnode>) -> Result<DevClaim> {
        let n = crate::fs::rumpfs::etfs::of(dev).ok_or(Errno::ENXIO)?;
        n.claim_mount()?;
        Ok(DevClaim(dev.clone()))
    }
}

impl Drop for DevClaim {
    fn drop(&mut self) {
        if let Some(n) = crate::fs::rumpfs::etfs::of(&self.0) {
            n.release_mount();
        }
    }
}

type Engine = ffs::Fs<BioDisk>;

impl std::fmt::Debug for FfsMount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FfsMount").finish_non_exhaustive()
    }
}

/// An FFS vnode's body: its inode number and size.
#[derive(Debug)]
pub struct FfsNode {
    ino: u32,
    size: AtomicU64,
    blocks: AtomicU64,
    fsm: Weak<FfsMount>,
}

impl Drop for FfsNode {
    fn drop(&mut self) {
        if let Some(fsm) = self.fsm.upgrade() {
            let mut q = fsm.to_release.lock().unwrap_or_else(|e| e.into_inner());
            q.push(self.ino);
        }
    }
}

impl FfsNode {
    /// Inode number.
    pub fn ino(&self) -> u32 {
        self.ino
    }

    /// Size in bytes (as last read from the inode).
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    /// Space in 512-byte blocks.
    pub fn blocks(&self) -> u64 {
        self.blocks.load(Ordering::Relaxed)
    }
}

fn errno(e: ffs::Errno) -> Errno {
    Errno::from_raw(e.raw())
}

fn ts(t: ffs::Timespec) -> Timespec {
    Timespec {
        sec: t.sec,
        nsec: i64::from(t.nsec),
    }
}

fn vtype_of(mode: u16) -> Result<VType> {
    VType::from_mode(u32::from(mode)).ok_or(Errno::EIO)
}

fn attr_of(a: &ffs::Attr) -> Attr {
    Attr {
        mode: u32::from(a.mode) & crate::abi::ALLPERMS,
        uid: a.uid,
        gid: a.gid,
        nlink: u32::from(a.nlink),
        rdev: a.rdev,
        flags: a.flags,
        atime: ts(a.atime),
        mtime: ts(a.mtime),
        ctime: ts(a.ctime),
        birthtime: ts(a.birthtime),
    }
}

impl FfsMount {
    /// `ffs_mountfs`: mounts the file system on `disk` (the engine checks the superblock:
    /// `EINVAL` for none, `EROFS` for what it mounts read-only only). Read-write is not
    /// offered yet: `EROFS`.
    pub async fn mount(
        disk: BioDisk,
        read_only: bool,
        now: fn() -> ffs::Timespec,
    ) -> Result<Arc<FfsMount>> {
        let opts = ffs::MountOptions {
            read_only,
            clock: now,
        };
        let fs = ffs::Fs::mount(disk, opts).await.map_err(errno)?;
        let stat = fs.statvfs();
        Ok(Arc::new(FfsMount {
            fs: IoLock::new(Some(fs)),
            vnodes: Mutex::new(HashMap::new()),
            stat: Mutex::new(stat),
            to_release: Mutex::new(Vec::new()),
            claim: Mutex::new(None),
        }))
    }

    /// The root inode's attributes.
    pub async fn root_attr(&self) -> Result<ffs::Attr> {
        let g = self.fs.lock().await;
        let fs = g.as_ref().ok_or(Errno::EIO)?;
        fs.getattr(fs.root()).await.map_err(errno)
    }

    /// Releases the inodes whose vnodes went (with the engine locked).
    async fn drain(&self, fs: &mut Engine) {
        let q = std::mem::take(&mut *self.to_release.lock().unwrap_or_else(|e| e.into_inner()));
        for ino in q {
            // A failure leaves the inode to the checker, as a crash would.
            let _ = fs.release(ino).await;
        }
    }

    /// The engine, locked for a change, with the pending releases done.
    async fn locked(&self) -> crate::sync::MutexGuard<'_, Option<Engine>> {
        let mut g = self.fs.lock().await;
        if let Some(fs) = g.as_mut() {
            self.drain(fs).await;
        }
        g
    }

    fn note_stat(&self, fs: &Engine) {
        *self.stat.lock().unwrap_or_else(|e| e.into_inner()) = fs.statvfs();
    }

    /// The releases pending from vnodes that went, done, and the statvfs figures noted.
    pub async fn settle(&self) -> Result<()> {
        if let Some(fs) = self.locked().await.as_ref() {
            self.note_stat(fs);
        }
        Ok(())
    }

    /// Read-only to read-write: the engine's write state.
    pub async fn upgrade(&self) -> Result<()> {
        match self.locked().await.as_mut() {
            Some(fs) => fs.make_writable().await.map_err(errno),
            None => Err(Errno::EIO),
        }
    }

    /// `VFS_SYNC`: everything written back (the engine's sync ends with the device flush).
    pub async fn sync(&self) -> Result<()> {
        match self.locked().await.as_mut() {
            Some(fs) => fs.sync().await.map_err(errno),
            None => Ok(()),
        }
    }

    /// `ffs_unmount` after the table let the mount go: releases, writes back, marks the
    /// file system clean. Idempotent.
    pub async fn finish(&self) -> Result<()> {
        let mut g = self.fs.lock().await;
        let Some(mut fs) = g.take() else {
            return Ok(());
        };
        self.drain(&mut fs).await;
        self.vnodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let r = fs.unmount().await.map(drop).map_err(errno);
        // The device is free again once written back (whatever the write-back said).
        drop(self.claim.lock().unwrap_or_else(|e| e.into_inner()).take());
        r
    }

    /// The statvfs figures (kept from the last change).
    pub fn fill_statvfs(&self, s: &mut Statvfs) {
        let st = *self.stat.lock().unwrap_or_else(|e| e.into_inner());
        s.bsize = st.bsize;
        s.frsize = st.frsize;
        s.iosize = st.iosize;
        s.blocks = st.blocks;
        s.bfree = st.bfree;
        s.bavail = st.bavail;
        s.bresvd = st.bresvd;
        s.files = st.files;
        s.ffree = st.ffree;
        s.favail = st.favail;
        s.fresvd = st.fresvd;
        s.namemax = st.namemax;
    }

    /// The file system's block size (`st_blksize`).
    pub fn bsize(&self) -> u64 {
        self.stat.lock().unwrap_or_else(|e| e.into_inner()).bsize
    }
}

/// Builds the mount of `fsm` on `nm.covered` with the root vnode from `root`.
fn new_mount(
    nm: &NewMount,
    fsm: Arc<FfsMount>,
    root: &ffs::Attr,
    from_name: &[u8],
    budget: Arc<Budget>,
) -> Result<Arc<Mount>> {
    // fs_fsmnt, written with the superblock once the mount is read-write (the engine is
    // not shared yet: never busy).
    if let Some(fs) = fsm.fs.try_lock().as_mut().and_then(|g| g.as_mut()) {
        fs.set_fsmnt(&nm.on_name);
    }
    let m = nm.build(from_name, u64::from(root.ino), budget);
    let ops = Box::new(FfsOps(fsm));
    let m = Arc::new(m.with(ops, nm.fsidx, nm.owner, u64::MAX));
    // The root's inode is never freed: no reference needed.
    let vn = vnode_from(&m, root, None)?;
    m.set_root(vn);
    Ok(m)
}

fn fsm_of(m: &Mount) -> Result<&Arc<FfsMount>> {
    m.ops_as::<FfsOps>().map(|o| &o.0).ok_or(Errno::EIO)
}

/// The vnode of inode `a.ino` (the cached one, refreshed, or a new one that takes a
/// reference on the inode through `fs`).
fn vnode_from(m: &Arc<Mount>, a: &ffs::Attr, fs: Option<&mut Engine>) -> Result<Arc<Vnode>> {
    let fsm = fsm_of(m)?;
    let mut cache = fsm.vnodes.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(vn) = cache.get(&a.ino).and_then(Weak::upgrade) {
        if let Some(n) = vn.node_as::<FfsNode>() {
            n.size.store(a.size, Ordering::Relaxed);
            n.blocks.store(a.blocks, Ordering::Relaxed);
        }
        vn.update(|x| *x = attr_of(a));
        return Ok(vn);
    }
    if let Some(fs) = fs {
        fs.retain(a.ino);
    }
    let body = Body::Node(Box::new(FfsNode {
        ino: a.ino,
        size: AtomicU64::new(a.size),
        blocks: AtomicU64::new(a.blocks),
        fsm: Arc::downgrade(fsm),
    }));
    let vn = Vnode::new(
        Arc::downgrade(m),
        u64::from(a.ino),
        vtype_of(a.mode)?,
        attr_of(a),
        body,
    );
    cache.retain(|_, w| w.strong_count() > 0);
    cache.insert(a.ino, Arc::downgrade(&vn));
    Ok(vn)
}

fn node(vn: &Vnode) -> Result<&FfsNode> {
    vn.node_as::<FfsNode>().ok_or(Errno::EIO)
}

/// `VOP_LOOKUP` in an FFS directory: the child's vnode, or `None` when there is no such
/// name. `..` of the file system's root is the caller's business (it crosses the mount).
/// As ufs_lookup, a last component to be removed or renamed on a read-only mount is
/// `EROFS` before the directory is searched (so also for a name that does not exist).
async fn lookup(dir: &Vnode, name: &[u8], op: NameOp) -> Result<Option<Arc<Vnode>>> {
    if matches!(op, NameOp::Delete | NameOp::Rename) && dir.read_only() {
        return Err(Errno::EROFS);
    }
    let m = dir.mount()?;
    let fsm = fsm_of(&m)?.clone();
    let ino = node(dir)?.ino;
    let mut g = fsm.fs.lock().await;
    let fs = g.as_mut().ok_or(Errno::EIO)?;
    let child = match fs.lookup(ino, name).await {
        Ok(c) => c,
        Err(e) if e == ffs::Errno::ENOENT => return Ok(None),
        Err(e) => return Err(errno(e)),
    };
    let attr = fs.getattr(child).await.map_err(errno)?;
    vnode_from(&m, &attr, Some(fs)).map(Some)
}

/// `VOP_READLINK`: `EINVAL` for anything but a symbolic link.
async fn readlink(vn: &Vnode) -> Result<Vec<u8>> {
    if vn.vtype() != VType::Lnk {
        return Err(Errno::EINVAL);
    }
    let m = vn.mount()?;
    let fsm = fsm_of(&m)?;
    let g = fsm.fs.lock().await;
    let fs = g.as_ref().ok_or(Errno::EIO)?;
    fs.readlink(node(vn)?.ino).await.map_err(errno)
}

/// `VOP_READ` of a regular file: at most `len` bytes at `off`.
async fn read(vn: &Vnode, off: u64, len: usize) -> Result<Vec<u8>> {
    let m = vn.mount()?;
    let fsm = fsm_of(&m)?;
    let n = node(vn)?;
    let len = (n.size().saturating_sub(off)).min(len as u64) as usize;
    let mut buf = vec![0u8; len];
    let g = fsm.fs.lock().await;
    let fs = g.as_ref().ok_or(Errno::EIO)?;
    let got = fs.read(n.ino, off, &mut buf).await.map_err(errno)?;
    buf.truncate(got);
    Ok(buf)
}

/// `VOP_READDIR`: up to `max` entries from `cookie` (a byte offset in the directory).
async fn readdir(vn: &Vnode, cookie: u64, max: usize) -> Result<Vec<ffs::DirEntry>> {
    let m = vn.mount()?;
    let fsm = fsm_of(&m)?;
    let g = fsm.fs.lock().await;
    let fs = g.as_ref().ok_or(Errno::EIO)?;
    fs.readdir(node(vn)?.ino, cookie, max).await.map_err(errno)
}

/// The name of `child` in directory `dir`: its entries read until one holds the child's
/// inode (`.` and `..` skipped). The engine bounds and paces the reads.
async fn name_of(dir: &Vnode, child: &Vnode) -> Result<Vec<u8>> {
    let want = node(child)?.ino;
    let mut cookie = 0;
    loop {
        let batch = readdir(dir, cookie, 64).await?;
        let Some(last) = batch.last() else {
            return Err(Errno::ENOENT);
        };
        if last.next <= cookie {
            return Err(Errno::EIO);
        }
        cookie = last.next;
        let hit = batch
            .into_iter()
            .find(|e| e.ino == want && e.name != b"." && e.name != b"..");
        if let Some(e) = hit {
            return Ok(e.name);
        }
    }
}

/// Re-reads `vn`'s inode into the vnode (after a change).
async fn refresh(m: &Arc<Mount>, fs: &Engine, vn: &Vnode) -> Result<()> {
    let a = fs.getattr(node(vn)?.ino).await.map_err(errno)?;
    vnode_from(m, &a, None).map(drop)
}

/// The mount of `vn` and its FFS state.
fn engine(vn: &Vnode) -> Result<(Arc<Mount>, Arc<FfsMount>)> {
    let m = vn.mount()?;
    let fsm = fsm_of(&m)?.clone();
    Ok((m, fsm))
}

/// After a change: the vnodes in `touch` re-read, the statvfs figures noted.
async fn after(m: &Arc<Mount>, fsm: &FfsMount, fs: &Engine, touch: &[&Vnode]) {
    for t in touch {
        // A node whose inode went (last name removed, nothing left) keeps its last copy.
        let _ = refresh(m, fs, t).await;
    }
    fsm.note_stat(fs);
}

/// `VOP_WRITE`: `data` at `off` (at the end with `append`); the offset written at.
async fn write(vn: &Vnode, off: u64, data: &[u8], append: bool) -> Result<u64> {
    let ino = node(vn)?.ino;
    let (m, fsm) = engine(vn)?;
    let mut g = fsm.locked().await;
    let fs = g.as_mut().ok_or(Errno::EIO)?;
    let at = if append {
        fs.getattr(ino).await.map_err(errno)?.size
    } else {
        off
    };
    let r = fs.write(ino, at, data).await.map_err(errno);
    after(&m, &fsm, fs, &[vn]).await;
    r.map(|_| at)
}

/// `VOP_SETATTR` of the size.
async fn truncate(vn: &Vnode, len: u64) -> Result<()> {
    let ino = node(vn)?.ino;
    let (m, fsm) = engine(vn)?;
    let mut g = fsm.locked().await;
    let fs = g.as_mut().ok_or(Errno::EIO)?;
    let r = fs.truncate(ino, len).await.map_err(errno);
    after(&m, &fsm, fs, &[vn]).await;
    r
}

/// `VOP_SETATTR` of mode, owner, times and flags: the vnode's attributes (already
/// changed and checked by the caller) written to the inode.
async fn setattr(vn: &Vnode) -> Result<()> {
    let ino = node(vn)?.ino;
    let a = vn.attr();
    let t = |t: Timespec| ffs::Timespec {
        sec: t.sec,
        nsec: t.nsec.clamp(0, 999_999_999) as u32,
    };
    let set = ffs::SetAttr {
        mode: Some((a.mode & crate::abi::ALLPERMS) as u16),
        uid: Some(a.uid),
        gid: Some(a.gid),
        size: None,
        atime: Some(t(a.atime)),
        mtime: Some(t(a.mtime)),
        birthtime: Some(t(a.birthtime)),
        flags: Some(a.flags),
    };
    let (m, fsm) = engine(vn)?;
    let mut g = fsm.locked().await;
    let fs = g.as_mut().ok_or(Errno::EIO)?;
    let r = fs.setattr(ino, &set).await.map(drop).map_err(errno);
    after(&m, &fsm, fs, &[vn]).await;
    r
}

/// `VOP_FSYNC`.
async fn fsync(vn: &Vnode) -> Result<()> {
    let (_, fsm) = engine(vn)?;
    fsm.sync().await
}

/// `VOP_CREATE`/`VOP_MKDIR`/`VOP_MKNOD`/`VOP_SYMLINK` in FFS directory `dir`: owner `uid`,
/// group the directory's.
async fn create(dir: &Vnode, name: &[u8], new: &NewNode<'_>, uid: u32) -> Result<Arc<Vnode>> {
    let dino = node(dir)?.ino;
    let gid = dir.attr().gid;
    let perm = (new.mode & crate::abi::ALLPERMS) as u16;
    let (m, fsm) = engine(dir)?;
    let mut g = fsm.locked().await;
    let fs = g.as_mut().ok_or(Errno::EIO)?;
    let r = match new.vtype {
        VType::Dir => fs.mkdir(dino, name, perm, uid, gid).await,
        VType::Lnk => fs.symlink(dino, name, new.target, perm, uid, gid).await,
        t => {
            let mode = t.ifmt() as u16 | perm;
            fs.create(dino, name, mode, uid, gid, new.rdev).await
        }
    };
    after(&m, &fsm, fs, &[dir]).await;
    let ino = r.map_err(errno)?;
    let a = fs.getattr(ino).await.map_err(errno)?;
    vnode_from(&m, &a, Some(fs))
}

/// `VOP_LINK`.
async fn link(dir: &Vnode, name: &[u8], vn: &Vnode) -> Result<()> {
    let (dino, ino) = (node(dir)?.ino, node(vn)?.ino);
    let (m, fsm) = engine(dir)?;
    let mut g = fsm.locked().await;
    let fs = g.as_mut().ok_or(Errno::EIO)?;
    let r = fs.link(dino, name, ino).await.map_err(errno);
    after(&m, &fsm, fs, &[dir, vn]).await;
    r
}

/// `VOP_REMOVE` or, with `dir_op`, `VOP_RMDIR`, after `check` accepted the node the name
/// leads to.
async fn remove(dir: &Vnode, name: &[u8], dir_op: bool, check: RemoveCheck<'_>) -> Result<()> {
    let victim = lookup(dir, name, NameOp::Lookup)
        .await?
        .ok_or(Errno::ENOENT)?;
    check(&victim)?;
    let victim = &*victim;
    let dino = node(dir)?.ino;
    let (m, fsm) = engine(dir)?;
    let mut g = fsm.locked().await;
    let fs = g.as_mut().ok_or(Errno::EIO)?;
    let r = match dir_op {
        true => fs.rmdir(dino, name).await,
        false => fs.unlink(dino, name).await,
    }
    .map_err(errno);
    after(&m, &fsm, fs, &[dir, victim]).await;
    r
}

/// `VOP_RENAME` within one FFS mount; `touch`: the vnodes involved besides the directories.
async fn rename(
    fdir: &Vnode,
    fname: &[u8],
    tdir: &Vnode,
    tname: &[u8],
    touch: &[&Vnode],
) -> Result<()> {
    let (f, t) = (node(fdir)?.ino, node(tdir)?.ino);
    let (m, fsm) = engine(fdir)?;
    let mut g = fsm.locked().await;
    let fs = g.as_mut().ok_or(Errno::EIO)?;
    let r = fs.rename(f, fname, t, tname).await.map_err(errno);
    let mut all: Vec<&Vnode> = vec![fdir, tdir];
    all.extend_from_slice(touch);
    after(&m, &fsm, fs, &all).await;
    r
}

/// The kernel clock for the engine's timestamps.
fn clock() -> ffs::Timespec {
    ffs::system_clock()
}

impl VnodeOps for FfsNode {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn size(&self) -> u64 {
        FfsNode::size(self)
    }

    fn blocks(&self) -> Option<u64> {
        Some(FfsNode::blocks(self))
    }

    fn lookup<'a>(
        &'a self,
        dir: &'a Vnode,
        name: &'a [u8],
        op: NameOp,
    ) -> FsFuture<'a, Option<Arc<Vnode>>> {
        Box::pin(lookup(dir, name, op))
    }

    fn name_of<'a>(&'a self, dir: &'a Vnode, child: &'a Vnode) -> FsFuture<'a, Vec<u8>> {
        Box::pin(name_of(dir, child))
    }

    fn readlink<'a>(&'a self, vn: &'a Vnode) -> FsFuture<'a, Vec<u8>> {
        Box::pin(readlink(vn))
    }

    /// NetBSD's ufs_readdir refuses a buffer below one directory block chunk: `EINVAL`
    /// under 512 bytes; cookies are byte offsets in the directory.
    fn readdir<'a>(
        &'a self,
        vn: &'a Vnode,
        cookie: u64,
        bytes: usize,
    ) -> FsFuture<'a, Vec<DirEntry>> {
        Box::pin(async move {
            if bytes < 512 {
                return Err(Errno::EINVAL);
            }
            // Each record takes at least 12 bytes: never ask for more than fit.
            let entries = readdir(vn, cookie, bytes / 12).await?;
            Ok(entries
                .into_iter()
                .map(|e| DirEntry {
                    ino: u64::from(e.ino),
                    dtype: e.dtype,
                    name: e.name,
                    next: e.next,
                })
                .collect())
        })
    }

    fn read<'a>(&'a self, vn: &'a Vnode, off: u64, len: usize) -> FsFuture<'a, Vec<u8>> {
        match vn.vtype() {
            VType::Reg => Box::pin(read(vn, off, len)),
            VType::Dir => crate::vfs::ops::ready(Err(Errno::EISDIR)),
            _ => crate::vfs::ops::ready(Err(Errno::EOPNOTSUPP)),
        }
    }

    fn write<'a>(
        &'a self,
        vn: &'a Vnode,
        off: u64,
        data: &'a [u8],
        append: bool,
    ) -> FsFuture<'a, (u64, usize)> {
        match vn.vtype() {
            VType::Reg => Box::pin(async move {
                let at = write(vn, off, data, append).await?;
                Ok((at, data.len()))
            }),
            _ => crate::vfs::ops::ready(Err(Errno::EOPNOTSUPP)),
        }
    }

    fn truncate<'a>(&'a self, vn: &'a Vnode, len: u64) -> FsFuture<'a, ()> {
        match vn.vtype() {
            VType::Reg => Box::pin(truncate(vn, len)),
            // Devices, FIFOs: setting the size is ignored.
            _ => crate::vfs::ops::ready(Ok(())),
        }
    }

    fn setattr<'a>(&'a self, vn: &'a Vnode) -> FsFuture<'a, ()> {
        Box::pin(setattr(vn))
    }

    fn fsync<'a>(&'a self, vn: &'a Vnode) -> FsFuture<'a, ()> {
        Box::pin(fsync(vn))
    }

    fn create<'a>(
        &'a self,
        dir: &'a Vnode,
        name: &'a [u8],
        new: &'a NewNode<'a>,
        uid: u32,
    ) -> FsFuture<'a, Arc<Vnode>> {
        Box::pin(create(dir, name, new, uid))
    }

    fn link<'a>(&'a self, dir: &'a Vnode, name: &'a [u8], vn: &'a Vnode) -> FsFuture<'a, ()> {
        Box::pin(link(dir, name, vn))
    }

    fn remove<'a>(
        &'a self,
        dir: &'a Vnode,
        name: &'a [u8],
        rmdir: bool,
        check: RemoveCheck<'a>,
    ) -> FsFuture<'a, ()> {
        Box::pin(remove(dir, name, rmdir, check))
    }

    fn rename<'a>(
        &'a self,
        fdir: &'a Vnode,
        fname: &'a [u8],
        tdir: &'a Vnode,
        tname: &'a [u8],
        touch: &'a [&'a Vnode],
    ) -> FsFuture<'a, ()> {
        Box::pin(rename(fdir, fname, tdir, tname, touch))
    }
}

/// The operations of one FFS mount.
struct FfsOps(Arc<FfsMount>);

impl FsOps for FfsOps {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn params(&self) -> MountParams {
        MountParams {
            dev_is_ino: false,
            blksize: self.0.bsize(),
            lists_dots: false,
            fixed_bytes: Some(DEV_BSIZE),
            dirent_size: None,
            newest_first: false,
            enforces_flags: true,
            pathconf: crate::vfs::ops::PathconfParams {
                filesize_bits: 42,
                symlinks: true,
                fifofs: true,
            },
        }
    }

    fn statvfs(&self, _m: &Mount, s: &mut Statvfs) {
        self.0.fill_statvfs(s);
    }

    fn sync(&self) -> FsFuture<'_, ()> {
        Box::pin(self.0.sync())
    }

    fn settle(&self) -> FsFuture<'_, ()> {
        Box::pin(self.0.settle())
    }

    fn finish(&self) -> FsFuture<'_, ()> {
        Box::pin(self.0.finish())
    }

    fn upgrade(&self) -> FsFuture<'_, ()> {
        Box::pin(self.0.upgrade())
    }

    /// Going read-only works (the caller synced it first); going read-write was done by
    /// [`FsOps::upgrade`].
    fn update(&self, _m: &Mount, _old: u64, _new: u64, _data: Option<&[u8]>) -> Result<()> {
        Ok(())
    }

    /// ffs_mount: the arguments with a NULL fspec.
    fn getargs(&self, _m: &Mount, _given: Vec<u8>) -> Result<Vec<u8>> {
        Ok(vec![0u8; UFS_ARGS_SIZE])
    }
}

/// The FFS file-system type (`ffs`; mount(2) also takes `ufs`).
pub struct FfsType;

/// What [`FfsType::prepare`] hands to `build`: the engine, its root inode, the device path.
type Prepared = (Arc<FfsMount>, ffs::Attr, Vec<u8>);

impl FsType for FfsType {
    fn name(&self) -> &str {
        "ffs"
    }

    fn min_mount_data(&self) -> usize {
        UFS_ARGS_SIZE
    }

    /// `struct ufs_args` names the block device (`EINVAL` without arguments or with a
    /// NULL `fspec`, as `ffs_mount` checks before it looks the name up).
    fn device_arg(&self, data: Option<&[u8]>) -> Result<Option<u64>> {
        let args = data
            .filter(|d| d.len() >= UFS_ARGS_SIZE)
            .ok_or(Errno::EINVAL)?;
        match u64::from_le_bytes(args[..8].try_into().expect("8 bytes")) {
            0 => Err(Errno::EINVAL),
            fspec => Ok(Some(fspec)),
        }
    }

    /// `ffs_mount` of a new file system: the device must be a block device node
    /// (`ENOTBLK`) of a host drive (`ENXIO` otherwise); the engine then reads its
    /// superblock.
    fn prepare<'a>(&'a self, args: PrepareArgs<'a>) -> FsFuture<'a, Box<dyn std::any::Any>> {
        Box::pin(async move {
            let (dev, path) = args.device.ok_or(Errno::EINVAL)?;
            if dev.vtype() != VType::Blk {
                return Err(Errno::ENOTBLK);
            }
            let etfs = crate::fs::rumpfs::etfs::of(dev);
            let (cache, bdev) = etfs.and_then(|n| n.block_dev()).ok_or(Errno::ENXIO)?;
            let disk = BioDisk::new(cache.clone(), bdev.clone());
            let read_only = args.flags & MNT_RDONLY != 0;
            let claim = DevClaim::take(dev)?;
            let fsm = FfsMount::mount(disk, read_only, clock).await?;
            *fsm.claim.lock().unwrap_or_else(|e| e.into_inner()) = Some(claim);
            let root = fsm.root_attr().await?;
            let p: Prepared = (fsm, root, path.to_vec());
            Ok(Box::new(p) as Box<dyn std::any::Any>)
        })
    }

    fn build(&self, nm: &NewMount, args: BuildArgs<'_>) -> Result<Arc<Mount>> {
        let (fsm, root, from) = *args
            .prepared
            .downcast::<Prepared>()
            .map_err(|_| Errno::EINVAL)?;
        new_mount(nm, fsm, &root, &from, args.budget.clone())
    }
}

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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

pub use disk::BioDisk;

use crate::abi::{Statvfs, Timespec};
use crate::mem::Budget;
use crate::sync::Mutex as IoLock;
use crate::vfs::{Attr, Body, FsData, FsKind, Mount, NewMount, VType, Vnode};
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
        fs.unmount().await.map(drop).map_err(errno)
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
pub fn new_mount(
    nm: &NewMount,
    fsm: Arc<FfsMount>,
    root: &ffs::Attr,
    from_name: &[u8],
    budget: Arc<Budget>,
) -> Result<Arc<Mount>> {
    let m = nm.build(FsKind::Ffs, from_name, u64::from(root.ino), budget);
    let m = Arc::new(m.with(FsData::Ffs(fsm), nm.fsidx, nm.owner, u64::MAX));
    // The root's inode is never freed: no reference needed.
    let vn = vnode_from(&m, root, None)?;
    m.set_root(vn);
    Ok(m)
}

fn fsm_of(m: &Mount) -> Result<&Arc<FfsMount>> {
    match m.data() {
        FsData::Ffs(f) => Ok(f),
        _ => Err(Errno::EIO),
    }
}

/// The vnode of inode `a.ino` (the cached one, refreshed, or a new one that takes a
/// reference on the inode through `fs`).
fn vnode_from(m: &Arc<Mount>, a: &ffs::Attr, fs: Option<&mut Engine>) -> Result<Arc<Vnode>> {
    let fsm = fsm_of(m)?;
    let mut cache = fsm.vnodes.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(vn) = cache.get(&a.ino).and_then(Weak::upgrade) {
        if let Body::Ffs(n) = vn.body() {
            n.size.store(a.size, Ordering::Relaxed);
            n.blocks.store(a.blocks, Ordering::Relaxed);
        }
        vn.update(|x| *x = attr_of(a));
        return Ok(vn);
    }
    if let Some(fs) = fs {
        fs.retain(a.ino);
    }
    let body = Body::Ffs(FfsNode {
        ino: a.ino,
        size: AtomicU64::new(a.size),
        blocks: AtomicU64::new(a.blocks),
        fsm: Arc::downgrade(fsm),
    });
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
    match vn.body() {
        Body::Ffs(n) => Ok(n),
        _ => Err(Errno::EIO),
    }
}

/// `VOP_LOOKUP` in an FFS directory: the child's vnode, or `None` when there is no such
/// name. `..` of the file system's root is the caller's business (it crosses the mount).
pub async fn lookup(dir: &Arc<Vnode>, name: &[u8]) -> Result<Option<Arc<Vnode>>> {
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

/// `VOP_READLINK`.
pub async fn readlink(vn: &Vnode) -> Result<Vec<u8>> {
    let m = vn.mount()?;
    let fsm = fsm_of(&m)?;
    let g = fsm.fs.lock().await;
    let fs = g.as_ref().ok_or(Errno::EIO)?;
    fs.readlink(node(vn)?.ino).await.map_err(errno)
}

/// `VOP_READ`: at most `len` bytes at `off`.
pub async fn read(vn: &Vnode, off: u64, len: usize) -> Result<Vec<u8>> {
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
pub async fn readdir(vn: &Vnode, cookie: u64, max: usize) -> Result<Vec<ffs::DirEntry>> {
    let m = vn.mount()?;
    let fsm = fsm_of(&m)?;
    let g = fsm.fs.lock().await;
    let fs = g.as_ref().ok_or(Errno::EIO)?;
    fs.readdir(node(vn)?.ino, cookie, max).await.map_err(errno)
}

/// The mount's engine state, for the unmount and sync paths.
pub fn mount_of(m: &Mount) -> Option<Arc<FfsMount>> {
    fsm_of(m).ok().cloned()
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
pub async fn write(vn: &Vnode, off: u64, data: &[u8], append: bool) -> Result<u64> {
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
pub async fn truncate(vn: &Vnode, len: u64) -> Result<()> {
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
pub async fn setattr(vn: &Vnode) -> Result<()> {
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
pub async fn fsync(vn: &Vnode) -> Result<()> {
    let (_, fsm) = engine(vn)?;
    fsm.sync().await
}

/// `VOP_CREATE`/`VOP_MKDIR`/`VOP_MKNOD`/`VOP_SYMLINK` in FFS directory `dir`: owner `uid`,
/// group the directory's.
pub async fn create(
    dir: &Arc<Vnode>,
    name: &[u8],
    new: &crate::vfs::NewNode<'_>,
    uid: u32,
) -> Result<Arc<Vnode>> {
    let dino = node(dir)?.ino;
    let gid = dir.attr().gid;
    let perm = (new.mode & crate::abi::ALLPERMS) as u16;
    let (m, fsm) = engine(dir)?;
    let mut g = fsm.locked().await;
    let fs = g.as_mut().ok_or(Errno::EIO)?;
    let r = match new.vtype {
        VType::Dir => fs.mkdir(dino, name, perm, uid, gid).await,
        VType::Lnk => fs.symlink(dino, name, new.target, uid, gid).await,
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
pub async fn link(dir: &Arc<Vnode>, name: &[u8], vn: &Arc<Vnode>) -> Result<()> {
    let (dino, ino) = (node(dir)?.ino, node(vn)?.ino);
    let (m, fsm) = engine(dir)?;
    let mut g = fsm.locked().await;
    let fs = g.as_mut().ok_or(Errno::EIO)?;
    let r = fs.link(dino, name, ino).await.map_err(errno);
    after(&m, &fsm, fs, &[dir, vn]).await;
    r
}

/// `VOP_REMOVE` (`victim`: the vnode the name leads to) or, with `dir_op`, `VOP_RMDIR`.
pub async fn remove(dir: &Arc<Vnode>, name: &[u8], victim: &Vnode, dir_op: bool) -> Result<()> {
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
pub async fn rename(
    fdir: &Arc<Vnode>,
    fname: &[u8],
    tdir: &Arc<Vnode>,
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

/// Whether `vn` is an FFS vnode.
pub fn is_ffs(vn: &Vnode) -> bool {
    matches!(vn.body(), Body::Ffs(_))
}

/// The kernel clock for the engine's timestamps.
pub fn clock() -> ffs::Timespec {
    ffs::system_clock()
}

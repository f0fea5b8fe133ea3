//! FFS in the kernel (`rumpfs_ffs`): the engine of crate `ffs` over etfs block devices.
//!
//! A mount holds one engine ([`FfsMount`]) and a cache of the vnodes it handed out, by inode
//! number (weak references: a vnode lives while someone uses it, and the same inode always
//! gets the same vnode). FFS vnodes carry only their inode number, a copy of the attributes
//! and their lock; names, data and directories stay on the device, read through the buffer
//! cache ([`BioDisk`]).
//!
//! Locking (NetBSD's: per vnode, plus the mount's rename lock; the engine keeps its
//! allocation state under its own short lock). Every lock here is async and may be held
//! across an await; they are taken in this order and never the other way round:
//! 1. the mount's `gate`, shared by every operation, exclusive only for the mount-wide
//!    changes (read-write upgrade, unmount), which hold nothing else;
//! 2. `rename_lock`, by rename and rmdir (NetBSD's `mnt_renamelock`): only under it may an
//!    operation hold more than one directory;
//! 3. directory vnodes: one at a time, or under `rename_lock` several in inode order;
//! 4. other vnodes in inode order (the victim of unlink, the file of link, rename's);
//! 5. `sync_lock` (one summary write-back at a time), by sync and fsync, holding no vnode.
//!
//! A vnode's lock is shared for reads (read, readdir, readlink, lookup) and exclusive for
//! changes (write, truncate, setattr, and every namespace change in a directory), so
//! operations on different files run at once, also on different loops, and reads of one
//! file share it. Lookup holds only the directory while it finds the name, retains the
//! child and makes its vnode; a vnode it makes is then brought up to date under the child's
//! own lock (never with the directory's held: `..` would invert the order).
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
use crate::sync::{Mutex as IoLock, RwLock};
use crate::vfs::ops::{
    BuildArgs, DirEntry, FsFuture, FsOps, FsType, MountParams, PrepareArgs, RemoveCheck, VnodeOps,
};
use crate::vfs::{Attr, Body, Mount, NameOp, NewMount, NewNode, VType, Vnode};
use crate::{Errno, Result};

/// Size of `struct ufs_args` (`fspec`, a pointer).
pub const UFS_ARGS_SIZE: usize = 8;

/// The vnode map is never swept below this many entries.
const VNODE_SWEEP_MIN: usize = 256;

/// One mounted FFS: the engine, its vnodes, and the figures statvfs reports.
pub struct FfsMount {
    /// Shared by every operation, exclusive for upgrade and unmount.
    gate: RwLock,
    /// The engine; `None` once unmounted. Cloned out under `gate` (never held across an
    /// await itself).
    fs: Mutex<Option<Arc<Engine>>>,
    /// Serialises rename and rmdir (NetBSD's `mnt_renamelock`).
    rename_lock: IoLock<()>,
    /// One summary write-back (sync, fsync) at a time.
    sync_lock: IoLock<()>,
    vnodes: Mutex<HashMap<u32, Weak<Vnode>>>,
    /// The vnode map's size at which its dead entries are next swept: twice what was left
    /// by the last sweep, so a new vnode costs O(1) amortised under the map's lock (a sweep
    /// on every new vnode made each create scan all live vnodes there, across loops).
    sweep_at: std::sync::atomic::AtomicUsize,
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

/// The engine for one operation, with the mount's gate held shared (the clone goes first,
/// so an unmount waiting for the gate finds the engine alone).
struct Held<'a> {
    fs: Arc<Engine>,
    _gate: crate::sync::ReadGuard<'a>,
}

impl std::fmt::Debug for FfsMount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FfsMount").finish_non_exhaustive()
    }
}

/// An FFS vnode's body: its inode number, size and lock.
#[derive(Debug)]
pub struct FfsNode {
    ino: u32,
    size: AtomicU64,
    blocks: AtomicU64,
    /// The vnode lock: shared for reads, exclusive for changes.
    lock: RwLock,
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
            gate: RwLock::new(),
            fs: Mutex::new(Some(Arc::new(fs))),
            rename_lock: IoLock::new(()),
            sync_lock: IoLock::new(()),
            vnodes: Mutex::new(HashMap::new()),
            sweep_at: std::sync::atomic::AtomicUsize::new(VNODE_SWEEP_MIN),
            stat: Mutex::new(stat),
            to_release: Mutex::new(Vec::new()),
            claim: Mutex::new(None),
        }))
    }

    /// The root inode's attributes.
    pub async fn root_attr(&self) -> Result<ffs::Attr> {
        let h = self.shared().await?;
        h.fs.getattr(h.fs.root()).await.map_err(errno)
    }

    /// The engine with the gate held shared: for reads.
    async fn shared(&self) -> Result<Held<'_>> {
        let gate = self.gate.read().await;
        let fs = self.slot().clone().ok_or(Errno::EIO)?;
        Ok(Held { fs, _gate: gate })
    }

    /// The engine with the gate held shared and the pending releases done: for changes.
    async fn changing(&self) -> Result<Held<'_>> {
        let h = self.shared().await?;
        self.drain(&h.fs).await;
        Ok(h)
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<Engine>>> {
        self.fs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The engine alone (the gate held exclusive): taken out of its slot, to be put back;
    /// `None` once unmounted. Every other holder held the gate and let go of its clone
    /// first, so it is never still shared (`EBUSY` if it were).
    fn take_alone(&self) -> Result<Option<Engine>> {
        let mut slot = self.slot();
        let Some(fs) = slot.take() else {
            return Ok(None);
        };
        match Arc::try_unwrap(fs) {
            Ok(fs) => Ok(Some(fs)),
            Err(fs) => {
                *slot = Some(fs);
                Err(Errno::EBUSY)
            }
        }
    }

    /// Releases the inodes whose vnodes went.
    async fn drain(&self, fs: &Engine) {
        let q = std::mem::take(&mut *self.to_release.lock().unwrap_or_else(|e| e.into_inner()));
        for ino in q {
            // A failure leaves the inode to the checker, as a crash would.
            let _ = fs.release(ino).await;
        }
    }

    fn note_stat(&self, fs: &Engine) {
        *self.stat.lock().unwrap_or_else(|e| e.into_inner()) = fs.statvfs();
    }

    /// The releases pending from vnodes that went, done, and the statvfs figures noted.
    pub async fn settle(&self) -> Result<()> {
        if let Ok(h) = self.changing().await {
            self.note_stat(&h.fs);
        }
        Ok(())
    }

    /// Read-only to read-write: the engine's write state (the gate held exclusive).
    pub async fn upgrade(&self) -> Result<()> {
        let _alone = self.gate.write().await;
        let mut fs = self.take_alone()?.ok_or(Errno::EIO)?;
        self.drain(&fs).await;
        let r = fs.make_writable().await.map_err(errno);
        *self.slot() = Some(Arc::new(fs));
        r
    }

    /// `VFS_SYNC`: everything written back (the engine's sync ends with the device flush).
    pub async fn sync(&self) -> Result<()> {
        let Ok(h) = self.changing().await else {
            return Ok(());
        };
        let _one = self.sync_lock.lock().await;
        h.fs.sync().await.map_err(errno)
    }

    /// `ffs_unmount` after the table let the mount go: releases, writes back, marks the
    /// file system clean. Idempotent.
    pub async fn finish(&self) -> Result<()> {
        let _alone = self.gate.write().await;
        let Some(fs) = self.take_alone()? else {
            return Ok(());
        };
        self.drain(&fs).await;
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
    if let Some(fs) = fsm.slot().as_mut().and_then(Arc::get_mut) {
        fs.set_fsmnt(&nm.on_name);
    }
    let m = nm.build(from_name, u64::from(root.ino), budget);
    let ops = Box::new(FfsOps(fsm));
    let m = Arc::new(m.with(ops, nm.fsidx, nm.owner, u64::MAX));
    // The root's inode is never freed: no reference needed.
    let (vn, _) = vnode_from(&m, root, None)?;
    m.set_root(vn);
    Ok(m)
}

fn fsm_of(m: &Mount) -> Result<&Arc<FfsMount>> {
    m.ops_as::<FfsOps>().map(|o| &o.0).ok_or(Errno::EIO)
}

/// The vnode of inode `a.ino`: the cached one as it is (operations through it keep it up
/// to date), or a new one made from `a` that takes a reference on the inode through `fs`;
/// true when new.
fn vnode_from(m: &Arc<Mount>, a: &ffs::Attr, fs: Option<&Engine>) -> Result<(Arc<Vnode>, bool)> {
    let fsm = fsm_of(m)?;
    let mut cache = fsm.vnodes.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(vn) = cache.get(&a.ino).and_then(Weak::upgrade) {
        return Ok((vn, false));
    }
    if let Some(fs) = fs {
        fs.retain(a.ino);
    }
    let body = Body::Node(Box::new(FfsNode {
        ino: a.ino,
        size: AtomicU64::new(a.size),
        blocks: AtomicU64::new(a.blocks),
        lock: RwLock::new(),
        fsm: Arc::downgrade(fsm),
    }));
    let vn = Vnode::new(
        Arc::downgrade(m),
        u64::from(a.ino),
        vtype_of(a.mode)?,
        attr_of(a),
        body,
    );
    use std::sync::atomic::Ordering::Relaxed;
    if cache.len() >= fsm.sweep_at.load(Relaxed) {
        cache.retain(|_, w| w.strong_count() > 0);
        fsm.sweep_at
            .store((cache.len() * 2).max(VNODE_SWEEP_MIN), Relaxed);
    }
    cache.insert(a.ino, Arc::downgrade(&vn));
    Ok((vn, true))
}

/// Copies what the engine changes in an inode into its vnode: size, space, links, times
/// and device. Mode, owner and flags are the VFS's to change in the vnode (then written
/// through setattr), so a refresh never takes them back from the inode: a chmod that has
/// changed the vnode and waits for its setattr is not undone by another operation's refresh.
fn refresh_from(vn: &Vnode, a: &ffs::Attr) {
    if let Some(n) = vn.node_as::<FfsNode>() {
        n.size.store(a.size, Ordering::Relaxed);
        n.blocks.store(a.blocks, Ordering::Relaxed);
    }
    let new = attr_of(a);
    vn.update(|x| {
        x.nlink = new.nlink;
        x.rdev = new.rdev;
        x.atime = new.atime;
        x.mtime = new.mtime;
        x.ctime = new.ctime;
        x.birthtime = new.birthtime;
    });
}

fn node(vn: &Vnode) -> Result<&FfsNode> {
    vn.node_as::<FfsNode>().ok_or(Errno::EIO)
}

/// The child `name` of directory `dir` (its lock held by the caller): found, retained and
/// given its vnode (true when the vnode is new); `None` when there is no such name.
async fn child(
    m: &Arc<Mount>,
    fs: &Engine,
    dir: u32,
    name: &[u8],
) -> Result<Option<(Arc<Vnode>, bool)>> {
    let ino = match fs.lookup(dir, name).await {
        Ok(c) => c,
        Err(e) if e == ffs::Errno::ENOENT => return Ok(None),
        Err(e) => return Err(errno(e)),
    };
    let attr = fs.getattr(ino).await.map_err(errno)?;
    vnode_from(m, &attr, Some(fs)).map(Some)
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
    let h = fsm.shared().await?;
    let found = {
        let _d = node(dir)?.lock.read().await;
        child(&m, &h.fs, node(dir)?.ino, name).await?
    };
    let Some((vn, new)) = found else {
        return Ok(None);
    };
    if new {
        // Made from what was read under the directory's lock: brought up to date under its
        // own (an operation through an older vnode of the inode may have ended since).
        let n = node(&vn)?;
        let _c = n.lock.read().await;
        if let Ok(a) = h.fs.getattr(n.ino).await {
            refresh_from(&vn, &a);
        }
    }
    Ok(Some(vn))
}

/// `VOP_READLINK`: `EINVAL` for anything but a symbolic link.
async fn readlink(vn: &Vnode) -> Result<Vec<u8>> {
    if vn.vtype() != VType::Lnk {
        return Err(Errno::EINVAL);
    }
    let m = vn.mount()?;
    let h = fsm_of(&m)?.shared().await?;
    let n = node(vn)?;
    let _l = n.lock.read().await;
    h.fs.readlink(n.ino).await.map_err(errno)
}

/// `VOP_READ` of a regular file: at most `len` bytes at `off`.
async fn read(vn: &Vnode, off: u64, len: usize) -> Result<Vec<u8>> {
    let m = vn.mount()?;
    let h = fsm_of(&m)?.shared().await?;
    let n = node(vn)?;
    let _l = n.lock.read().await;
    let len = (n.size().saturating_sub(off)).min(len as u64) as usize;
    let mut buf = vec![0u8; len];
    let got = h.fs.read(n.ino, off, &mut buf).await.map_err(errno)?;
    buf.truncate(got);
    Ok(buf)
}

/// `VOP_READDIR`: up to `max` entries from `cookie` (a byte offset in the directory).
async fn readdir(vn: &Vnode, cookie: u64, max: usize) -> Result<Vec<ffs::DirEntry>> {
    let m = vn.mount()?;
    let h = fsm_of(&m)?.shared().await?;
    let n = node(vn)?;
    let _l = n.lock.read().await;
    h.fs.readdir(n.ino, cookie, max).await.map_err(errno)
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

/// The mount of `vn` and its FFS state.
fn engine(vn: &Vnode) -> Result<(Arc<Mount>, Arc<FfsMount>)> {
    let m = vn.mount()?;
    let fsm = fsm_of(&m)?.clone();
    Ok((m, fsm))
}

/// After a change: the vnodes in `touch` (their locks held) re-read, the statvfs figures
/// noted.
async fn after(fsm: &FfsMount, fs: &Engine, touch: &[&Vnode]) {
    for t in touch {
        // A node whose inode went (last name removed, nothing left) keeps its last copy.
        if let Ok(n) = node(t) {
            if let Ok(a) = fs.getattr(n.ino).await {
                refresh_from(t, &a);
            }
        }
    }
    fsm.note_stat(fs);
}

/// Write locks on `vns` (each once), in the documented order: directories first, then the
/// others, each group by inode number. More than one directory only under `rename_lock`.
async fn lock_all<'a>(vns: &[&'a Vnode]) -> Result<Vec<crate::sync::WriteGuard<'a>>> {
    let mut nodes: Vec<(bool, u32, &'a FfsNode)> = Vec::with_capacity(vns.len());
    for v in vns {
        let n = node(v)?;
        nodes.push((v.vtype() != VType::Dir, n.ino, n));
    }
    nodes.sort_by_key(|&(file, ino, _)| (file, ino));
    nodes.dedup_by_key(|&mut (_, ino, _)| ino);
    let mut held = Vec::with_capacity(nodes.len());
    for (_, _, n) in nodes {
        held.push(n.lock.write().await);
    }
    Ok(held)
}

/// `VOP_WRITE`: `data` at `off` (at the end with `append`); the offset written at.
async fn write(vn: &Vnode, off: u64, data: &[u8], append: bool) -> Result<u64> {
    let n = node(vn)?;
    let (_, fsm) = engine(vn)?;
    let h = fsm.changing().await?;
    let _l = n.lock.write().await;
    let at = if append {
        h.fs.getattr(n.ino).await.map_err(errno)?.size
    } else {
        off
    };
    let r = h.fs.write(n.ino, at, data).await.map_err(errno);
    after(&fsm, &h.fs, &[vn]).await;
    r.map(|_| at)
}

/// `VOP_SETATTR` of the size.
async fn truncate(vn: &Vnode, len: u64) -> Result<()> {
    let n = node(vn)?;
    let (_, fsm) = engine(vn)?;
    let h = fsm.changing().await?;
    let _l = n.lock.write().await;
    let r = h.fs.truncate(n.ino, len).await.map_err(errno);
    after(&fsm, &h.fs, &[vn]).await;
    r
}

/// `VOP_SETATTR` of mode, owner, times and flags: the vnode's attributes (already
/// changed and checked by the caller) written to the inode.
async fn setattr(vn: &Vnode) -> Result<()> {
    let n = node(vn)?;
    let (_, fsm) = engine(vn)?;
    let h = fsm.changing().await?;
    let _l = n.lock.write().await;
    // Read under the lock: the latest of the changes callers made to the vnode.
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
    let r = h.fs.setattr(n.ino, &set).await.map(drop).map_err(errno);
    if r.is_err() {
        // Not written: the vnode shows the inode again.
        if let Ok(a) = h.fs.getattr(n.ino).await {
            vn.update(|x| *x = attr_of(&a));
        }
    }
    after(&fsm, &h.fs, &[vn]).await;
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
    let perm = (new.mode & crate::abi::ALLPERMS) as u16;
    let (m, fsm) = engine(dir)?;
    let h = fsm.changing().await?;
    let _d = node(dir)?.lock.write().await;
    let gid = dir.attr().gid;
    let fs = &h.fs;
    let r = match new.vtype {
        VType::Dir => fs.mkdir(dino, name, perm, uid, gid).await,
        VType::Lnk => fs.symlink(dino, name, new.target, perm, uid, gid).await,
        t => {
            let mode = t.ifmt() as u16 | perm;
            fs.create(dino, name, mode, uid, gid, new.rdev).await
        }
    };
    after(&fsm, fs, &[dir]).await;
    let ino = r.map_err(errno)?;
    let a = fs.getattr(ino).await.map_err(errno)?;
    vnode_from(&m, &a, Some(fs)).map(|(vn, _)| vn)
}

/// `VOP_LINK`.
async fn link(dir: &Vnode, name: &[u8], vn: &Vnode) -> Result<()> {
    let (dino, ino) = (node(dir)?.ino, node(vn)?.ino);
    let (_, fsm) = engine(dir)?;
    let h = fsm.changing().await?;
    // A directory never gets a second name (the engine says EPERM): only its parent is
    // locked then, so that no operation outside rename holds two directories.
    let both = [dir, vn];
    let _l = lock_all(if vn.vtype() == VType::Dir {
        &both[..1]
    } else {
        &both
    })
    .await?;
    let r = h.fs.link(dino, name, ino).await.map_err(errno);
    after(&fsm, &h.fs, &[dir, vn]).await;
    r
}

/// `VOP_REMOVE` or, with `dir_op`, `VOP_RMDIR` (under the rename lock), after `check`
/// accepted the node the name leads to: the directory locked, then the victim.
async fn remove(dir: &Vnode, name: &[u8], dir_op: bool, check: RemoveCheck<'_>) -> Result<()> {
    let dino = node(dir)?.ino;
    let (m, fsm) = engine(dir)?;
    let h = fsm.changing().await?;
    let _rename = match dir_op {
        true => Some(fsm.rename_lock.lock().await),
        false => None,
    };
    let _d = node(dir)?.lock.write().await;
    let (victim, _) = child(&m, &h.fs, dino, name).await?.ok_or(Errno::ENOENT)?;
    check(&victim)?;
    let vnode = node(&victim)?;
    let _v = match vnode.ino == dino {
        true => None,
        false => Some(vnode.lock.write().await),
    };
    let r = match dir_op {
        true => h.fs.rmdir(dino, name).await,
        false => h.fs.unlink(dino, name).await,
    }
    .map_err(errno);
    after(&fsm, &h.fs, &[dir, &victim]).await;
    r
}

/// `VOP_RENAME` within one FFS mount; `touch`: the vnodes involved besides the directories.
/// Under the mount's rename lock, every vnode involved locked in order.
async fn rename(
    fdir: &Vnode,
    fname: &[u8],
    tdir: &Vnode,
    tname: &[u8],
    touch: &[&Vnode],
) -> Result<()> {
    let (f, t) = (node(fdir)?.ino, node(tdir)?.ino);
    let (_, fsm) = engine(fdir)?;
    let h = fsm.changing().await?;
    let _rename = fsm.rename_lock.lock().await;
    let mut all: Vec<&Vnode> = vec![fdir, tdir];
    all.extend_from_slice(touch);
    let _l = lock_all(&all).await?;
    let r = h.fs.rename(f, fname, t, tname).await.map_err(errno);
    after(&fsm, &h.fs, &all).await;
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

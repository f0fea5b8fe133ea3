//! FFS in the kernel (`rumpfs_ffs`): the engine of crate `ffs` over etfs block devices.
//!
//! A mount holds one engine behind an async lock ([`FfsMount`]) and a cache of the vnodes it
//! handed out, by inode number (weak references: a vnode lives while someone uses it, and the
//! same inode always gets the same vnode). FFS vnodes carry only their inode number and a
//! copy of the attributes; names, data and directories stay on the device, read through
//! the buffer cache ([`BioDisk`]).
//!
//! Landed: mounting read-only (`MNT_RDONLY`; a read-write mount is refused with `EROFS`
//! until the write path is wired), lookup (incl. `..` and symbolic links), stat, read,
//! getdents, readlink, statvfs, unmount. Still to come: the write path (create, write,
//! truncate, remove, rename, setattr) through the engine's operations.

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
    fs: IoLock<ffs::Fs<BioDisk>>,
    vnodes: Mutex<HashMap<u32, Weak<Vnode>>>,
    stat: Mutex<ffs::StatVfs>,
}

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
        if !read_only {
            return Err(Errno::EROFS);
        }
        let opts = ffs::MountOptions {
            read_only,
            clock: now,
        };
        let fs = ffs::Fs::mount(disk, opts).await.map_err(errno)?;
        let stat = fs.statvfs();
        Ok(Arc::new(FfsMount {
            fs: IoLock::new(fs),
            vnodes: Mutex::new(HashMap::new()),
            stat: Mutex::new(stat),
        }))
    }

    /// The root inode's attributes.
    pub async fn root_attr(&self) -> Result<ffs::Attr> {
        let fs = self.fs.lock().await;
        let root = fs.root();
        fs.getattr(root).await.map_err(errno)
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
    let vn = vnode_from(&m, root)?;
    m.set_root(vn);
    Ok(m)
}

fn fsm_of(m: &Mount) -> Result<&Arc<FfsMount>> {
    match m.data() {
        FsData::Ffs(f) => Ok(f),
        _ => Err(Errno::EIO),
    }
}

fn vnode_from(m: &Arc<Mount>, a: &ffs::Attr) -> Result<Arc<Vnode>> {
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
    let body = Body::Ffs(FfsNode {
        ino: a.ino,
        size: AtomicU64::new(a.size),
        blocks: AtomicU64::new(a.blocks),
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
    let attr = {
        let fs = fsm.fs.lock().await;
        let child = match fs.lookup(ino, name).await {
            Ok(c) => c,
            Err(e) if e == ffs::Errno::ENOENT => return Ok(None),
            Err(e) => return Err(errno(e)),
        };
        fs.getattr(child).await.map_err(errno)?
    };
    vnode_from(&m, &attr).map(Some)
}

/// `VOP_READLINK`.
pub async fn readlink(vn: &Vnode) -> Result<Vec<u8>> {
    let m = vn.mount()?;
    let fsm = fsm_of(&m)?;
    let fs = fsm.fs.lock().await;
    fs.readlink(node(vn)?.ino).await.map_err(errno)
}

/// `VOP_READ`: at most `len` bytes at `off`.
pub async fn read(vn: &Vnode, off: u64, len: usize) -> Result<Vec<u8>> {
    let m = vn.mount()?;
    let fsm = fsm_of(&m)?;
    let n = node(vn)?;
    let len = (n.size().saturating_sub(off)).min(len as u64) as usize;
    let mut buf = vec![0u8; len];
    let fs = fsm.fs.lock().await;
    let got = fs.read(n.ino, off, &mut buf).await.map_err(errno)?;
    buf.truncate(got);
    Ok(buf)
}

/// `VOP_READDIR`: up to `max` entries from `cookie` (a byte offset in the directory).
pub async fn readdir(vn: &Vnode, cookie: u64, max: usize) -> Result<Vec<ffs::DirEntry>> {
    let m = vn.mount()?;
    let fsm = fsm_of(&m)?;
    let fs = fsm.fs.lock().await;
    fs.readdir(node(vn)?.ino, cookie, max).await.map_err(errno)
}

/// `ffs_unmount` of a read-only mount: the engine has nothing to write.
pub fn unmounted(m: &Mount) {
    if let Ok(fsm) = fsm_of(m) {
        fsm.vnodes.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// The kernel clock for the engine's timestamps.
pub fn clock() -> ffs::Timespec {
    ffs::system_clock()
}

//! Vnodes: the kernel's file objects, shared by every loop thread.
//!
//! A [`Vnode`] has an immutable identity (id, inode number, type, mount) and three locks, each
//! a leaf held only for in-memory work and never across an await: the attributes, the body
//! (directory entries or file data), and the mount-point slot. Data I/O entry points are
//! `async` so that file systems backed by host I/O can wait inside them; the memory file
//! systems complete them without waiting.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

use super::memnode::{Dir, RegData};
use super::mount::NodeRef;
use super::ops::{NameOp, VnodeOps};
use super::Mount;
use crate::abi::*;
use crate::file::Fifo;
use crate::mem::{heap_bytes, Charge};
use crate::sync::Mutex as IoLock;
use crate::{Errno, Result};

/// Vnode type (`enum vtype`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VType {
    /// Regular file.
    Reg,
    /// Directory.
    Dir,
    /// Symbolic link.
    Lnk,
    /// Character device.
    Chr,
    /// Block device.
    Blk,
    /// Named pipe.
    Fifo,
    /// Socket.
    Sock,
}

impl VType {
    /// The `S_IF*` bits.
    pub fn ifmt(self) -> u32 {
        match self {
            VType::Reg => S_IFREG,
            VType::Dir => S_IFDIR,
            VType::Lnk => S_IFLNK,
            VType::Chr => S_IFCHR,
            VType::Blk => S_IFBLK,
            VType::Fifo => S_IFIFO,
            VType::Sock => S_IFSOCK,
        }
    }

    /// The type of `S_IF*` bits; `None` for unknown ones.
    pub fn from_mode(mode: u32) -> Option<VType> {
        Some(match mode & S_IFMT {
            S_IFREG => VType::Reg,
            S_IFDIR => VType::Dir,
            S_IFLNK => VType::Lnk,
            S_IFCHR => VType::Chr,
            S_IFBLK => VType::Blk,
            S_IFIFO => VType::Fifo,
            S_IFSOCK => VType::Sock,
            _ => return None,
        })
    }
}

/// The changeable attributes of a vnode (`struct vattr`, the parts kept per node).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attr {
    /// Permission bits (`ALLPERMS`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Link count.
    pub nlink: u32,
    /// Device number (`NODEV` for non-devices).
    pub rdev: u64,
    /// `st_flags`.
    pub flags: u32,
    /// Last access.
    pub atime: Timespec,
    /// Last modification.
    pub mtime: Timespec,
    /// Last status change.
    pub ctime: Timespec,
    /// Creation.
    pub birthtime: Timespec,
}

/// What a vnode holds: the VFS's memory node bodies (statically dispatched)
/// or a file system's own node behind its vnode operations.
pub enum Body {
    /// A directory of a memory file system.
    Dir(Mutex<Dir>),
    /// Regular file data in memory.
    Reg(Mutex<RegData>),
    /// A symbolic link's target.
    Link(Vec<u8>),
    /// A named pipe: the pipe its opens share.
    Fifo(Fifo),
    /// Device or socket node: no data of its own.
    Special,
    /// A file system's own node (an inode on a device, a window of a host file): every
    /// operation goes through its [`VnodeOps`].
    Node(Box<dyn VnodeOps>),
}

impl Body {
    /// Heap bytes the body holds beyond the vnode itself that its vnode charge covers (a
    /// symbolic link's target).
    pub fn heap_bytes(&self) -> u64 {
        match self {
            Body::Link(t) => heap_bytes(t.capacity()),
            _ => 0,
        }
    }
}

/// A vnode.
pub struct Vnode {
    id: u64,
    ino: u64,
    vtype: VType,
    mount: Weak<Mount>,
    attr: Mutex<Attr>,
    body: Body,
    mounted_here: RwLock<Option<Arc<Mount>>>,
    /// Serialises whole writes and truncations (`vn_lock` for writers); may be held across
    /// awaits (client copies), never taken under the locks above.
    io: IoLock<()>,
    /// This vnode's share of the memory budget.
    _charge: Option<Charge>,
    /// Its place in the mount's node count, and the mount's flags and liveness.
    node: Option<NodeRef>,
    /// Its knotes (`v_klist`): kqueue's vnode notes and read filters.
    klist: crate::file::kqueue::KList,
    /// The object bound to a socket node (`v_socket`): set by the socket layer's bind,
    /// cleared when the socket goes; never kept across a reload (an unbound node refuses).
    bound: Mutex<Option<Weak<dyn std::any::Any + Send + Sync>>>,
}

/// Bytes every vnode is charged to the budget: its `Arc` allocation (the node, its body
/// inline, two reference counts) and 128 bytes of bookkeeping (lock wait queues, slack).
/// A symbolic link adds its target's allocation ([`Body::heap_bytes`]); directory entries,
/// file pages and pipe buffers are charged by their owners as they grow.
pub const VNODE_CHARGE_BYTES: u64 = heap_bytes(std::mem::size_of::<Vnode>() + 16) + 128;

/// Source of vnode ids (unique for the kernel's life: the advisory lock key).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Vnode {
    /// A new vnode of `mount`, counted and charged whatever the mount's node limit and
    /// budget: only for nodes no client call multiplies (boot-time nodes, host-file keys, disk
    /// inodes in use, which open files and working directories bound).
    pub fn new(mount: Weak<Mount>, ino: u64, vtype: VType, attr: Attr, body: Body) -> Arc<Vnode> {
        let m = mount.upgrade();
        let node = m.as_ref().map(|m| NodeRef::forced(m.state()));
        let charge = m.map(|m| Charge::forced(m.budget(), VNODE_CHARGE_BYTES + body.heap_bytes()));
        Vnode::with_node(mount, node, charge, ino, vtype, attr, body)
    }

    /// A new vnode of `mount` within its node limit and budget (its size and a symbolic
    /// link's target): `ENOSPC` at either (NetBSD's `tm_nodes_max`, `tmpfs_alloc_node`),
    /// `EIO` once the mount is gone.
    pub fn try_new(
        mount: &Arc<Mount>,
        ino: u64,
        vtype: VType,
        attr: Attr,
        body: Body,
    ) -> Result<Arc<Vnode>> {
        let node = NodeRef::try_new(mount.state())?;
        let charge = Charge::try_new(mount.budget(), VNODE_CHARGE_BYTES + body.heap_bytes())?;
        let w = Arc::downgrade(mount);
        Ok(Vnode::with_node(
            w,
            Some(node),
            Some(charge),
            ino,
            vtype,
            attr,
            body,
        ))
    }

    fn with_node(
        mount: Weak<Mount>,
        node: Option<NodeRef>,
        charge: Option<Charge>,
        ino: u64,
        vtype: VType,
        attr: Attr,
        body: Body,
    ) -> Arc<Vnode> {
        Arc::new(Vnode {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            ino,
            vtype,
            mount,
            attr: Mutex::new(attr),
            body,
            mounted_here: RwLock::new(None),
            io: IoLock::new(()),
            _charge: charge,
            node,
            klist: Default::default(),
            bound: Mutex::new(None),
        })
    }

    /// The flags of this vnode's mount (0 for a vnode of no mount).
    pub fn mnt_flag(&self) -> u64 {
        self.node.as_ref().map_or(0, |n| n.0.flag())
    }

    /// Whether this vnode's mount is read-only (`EROFS` for changes).
    pub fn read_only(&self) -> bool {
        self.mnt_flag() & MNT_RDONLY != 0
    }

    /// Whether this vnode's file system was unmounted under it (forced unmount): it is
    /// dead, I/O on it is `EIO`.
    pub fn revoked(&self) -> bool {
        self.node.as_ref().is_some_and(|n| n.0.gone())
    }

    /// Whether this vnode belongs to `m` (no reference taken).
    pub fn on_mount(&self, m: &Mount) -> bool {
        std::ptr::eq(self.mount.as_ptr(), m)
    }

    /// Unique id of this vnode, stable for its life: the key of its advisory locks.
    pub fn lock_key(&self) -> u64 {
        self.id
    }

    /// Inode number.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// Type.
    pub fn vtype(&self) -> VType {
        self.vtype
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.vtype == VType::Dir
    }

    /// The mount this vnode belongs to (`v_mount`); `EIO` after an unmount.
    pub fn mount(&self) -> Result<Arc<Mount>> {
        self.mount.upgrade().filter(|m| !m.gone()).ok_or(Errno::EIO)
    }

    /// A copy of the attributes.
    pub fn attr(&self) -> Attr {
        *lock(&self.attr)
    }

    /// Changes the attributes under their lock.
    pub fn update<R>(&self, f: impl FnOnce(&mut Attr) -> R) -> R {
        f(&mut lock(&self.attr))
    }

    /// The object bound to this socket node (`v_socket`), if it is still there.
    pub fn bound(&self) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        lock(&self.bound).as_ref().and_then(Weak::upgrade)
    }

    /// Binds `obj` to this node (`None` unbinds): the socket layer's `v_socket`.
    pub fn set_bound(&self, obj: Option<Weak<dyn std::any::Any + Send + Sync>>) {
        *lock(&self.bound) = obj;
    }

    /// Its knotes: `klist().knote(NOTE_*)` where it changes (`VN_KNOTE`).
    pub fn klist(&self) -> &crate::file::kqueue::KList {
        &self.klist
    }

    /// The writers' I/O lock.
    pub fn io_lock(&self) -> &IoLock<()> {
        &self.io
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The directory body, locked; `ENOTDIR` for other types.
    pub fn dir(&self) -> Result<MutexGuard<'_, Dir>> {
        match &self.body {
            Body::Dir(d) => Ok(lock(d)),
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// A symbolic link's target.
    pub fn link_target(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Link(t) => Some(t),
            _ => None,
        }
    }

    /// The file system mounted on this vnode, if any.
    pub fn mounted_here(&self) -> Option<Arc<Mount>> {
        self.mounted_here
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records (or clears) the mount on this vnode (`v_mountedhere`).
    pub fn set_mounted_here(&self, m: Option<Arc<Mount>>) {
        *self.mounted_here.write().unwrap_or_else(|e| e.into_inner()) = m;
    }

    /// File size (`va_size`).
    pub fn size(&self) -> u64 {
        match &self.body {
            Body::Reg(d) => lock(d).size(),
            Body::Link(t) => t.len() as u64,
            Body::Node(n) => n.size(),
            Body::Dir(d) => match self.mount.upgrade().and_then(|m| m.params().dirent_size) {
                Some(each) => each.saturating_mul(lock(d).len() as u64),
                None => DEV_BSIZE,
            },
            Body::Fifo(_) | Body::Special => DEV_BSIZE,
        }
    }

    /// `VOP_GETATTR` + `vn_stat`: the `struct stat` of this vnode.
    pub fn stat(&self) -> Stat {
        let a = self.attr();
        let m = self.mount.upgrade();
        // NetBSD's root file system reports one 512-byte block for every node (its
        // `va_bytes` never changes); its memory file system the size rounded up to a page
        // (`round_page(tn_size)`), holes included.
        let fixed = m
            .as_ref()
            .map_or(Some(DEV_BSIZE), |m| m.params().fixed_bytes);
        let (size, bytes) = match &self.body {
            Body::Node(n) => (n.size(), n.blocks().map_or(DEV_BSIZE, |b| b * DEV_BSIZE)),
            _ => {
                let size = self.size();
                let page = crate::vfs::memnode::PAGE_SIZE as u64;
                (
                    size,
                    fixed.unwrap_or_else(|| size.div_ceil(page).saturating_mul(page)),
                )
            }
        };
        let dev = m.as_ref().map_or(0, |m| m.st_dev(self));
        let blksize = m.as_ref().map_or(DEV_BSIZE, |m| m.blksize());
        Stat {
            dev,
            mode: self.vtype.ifmt() | a.mode,
            ino: self.ino,
            nlink: a.nlink,
            uid: a.uid,
            gid: a.gid,
            rdev: a.rdev,
            atime: a.atime,
            mtime: a.mtime,
            ctime: a.ctime,
            birthtime: a.birthtime,
            size: size as i64,
            blocks: bytes.div_ceil(DEV_BSIZE) as i64,
            blksize: blksize as i32,
            flags: a.flags,
            gen: 0,
        }
    }

    /// `VOP_READ` of a regular file: at most `len` bytes at `off` (0 bytes at or past EOF).
    pub async fn read_at(&self, off: u64, len: usize) -> Result<Vec<u8>> {
        match &self.body {
            Body::Reg(d) => Ok(lock(d).read(off, len)),
            Body::Node(n) => n.read(self, off, len).await,
            Body::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EOPNOTSUPP),
        }
    }

    /// A memory file's read straight into `out` (see `RegData::read_into`); `None` for a
    /// vnode whose data is not in memory (the caller uses [`Vnode::read_at`]).
    pub fn read_mem_into(&self, off: u64, out: &mut [u8]) -> Option<usize> {
        match &self.body {
            Body::Reg(d) => Some(lock(d).read_into(off, out)),
            _ => None,
        }
    }

    /// Whether [`Vnode::read_mem_into`] applies.
    pub fn is_mem_file(&self) -> bool {
        matches!(self.body, Body::Reg(_))
    }

    /// `VOP_WRITE` of a regular file: `data` at `off`, or at the end with `append`; returns
    /// the offset written at and the bytes written (short only at a device's end).
    pub async fn write_at(&self, off: u64, data: &[u8], append: bool) -> Result<(u64, usize)> {
        match &self.body {
            Body::Reg(d) => {
                let mut d = lock(d);
                let at = if append { d.size() } else { off };
                d.write(at, data)?;
                Ok((at, data.len()))
            }
            Body::Node(n) => n.write(self, off, data, append).await,
            Body::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EOPNOTSUPP),
        }
    }

    /// Sets the size of a regular file (`VOP_SETATTR` of `va_size`).
    pub async fn truncate(&self, len: u64) -> Result<()> {
        match &self.body {
            Body::Reg(d) => {
                lock(d).truncate(len);
                Ok(())
            }
            Body::Dir(_) => Err(Errno::EISDIR),
            Body::Node(n) => n.truncate(self, len).await,
            // Devices, FIFOs: setting the size is ignored.
            _ => Ok(()),
        }
    }

    /// `fdiscard` on a regular file.
    pub async fn discard(&self, off: u64, len: u64) -> Result<()> {
        match &self.body {
            Body::Reg(d) => {
                lock(d).discard(off, len);
                Ok(())
            }
            _ => Err(Errno::ENODEV),
        }
    }

    /// `VOP_FSYNC`: memory file systems have nothing to write back; others write theirs.
    pub async fn fsync(&self, _data_only: bool) -> Result<()> {
        match &self.body {
            Body::Node(n) => n.fsync(self).await,
            _ => Ok(()),
        }
    }

    /// `VOP_SETATTR` made durable: the attributes (changed in the vnode) written to a file
    /// system that keeps them elsewhere; memory file systems keep them in the vnode.
    pub async fn setattr(&self) -> Result<()> {
        match &self.body {
            Body::Node(n) => n.setattr(self).await,
            _ => Ok(()),
        }
    }

    /// `VOP_LOOKUP` of one name (`..` included, within the file system; not past mounts).
    pub async fn lookup(&self, name: &[u8]) -> Result<Option<Arc<Vnode>>> {
        self.lookup_for(name, NameOp::Lookup).await
    }

    /// [`Vnode::lookup`] of a last component for `op` (`cn_nameiop`).
    pub async fn lookup_for(&self, name: &[u8], op: NameOp) -> Result<Option<Arc<Vnode>>> {
        match &self.body {
            Body::Node(n) => n.lookup(self, name, op).await,
            // tmpfs_lookup: removing or renaming on a read-only mount is refused before the
            // name is searched.
            Body::Dir(_) if matches!(op, NameOp::Delete | NameOp::Rename) && self.read_only() => {
                Err(Errno::EROFS)
            }
            Body::Dir(d) if name == b".." => Ok(lock(d).parent.upgrade()),
            _ => Ok(self.dir()?.get(name).cloned()),
        }
    }

    /// `VOP_CLOSE` at the last close of an open file ([`VnodeOps::close`]).
    pub async fn close(&self) -> Result<()> {
        match &self.body {
            Body::Node(n) => n.close(self).await,
            _ => Ok(()),
        }
    }

    /// `VOP_READLINK`: `EINVAL` for anything but a symbolic link.
    pub async fn readlink(&self) -> Result<Vec<u8>> {
        match &self.body {
            Body::Node(n) => n.readlink(self).await,
            Body::Link(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    /// A file system's own node operations (`None` for the VFS's memory nodes).
    pub fn node_ops(&self) -> Option<&dyn VnodeOps> {
        match &self.body {
            Body::Node(n) => Some(&**n),
            _ => None,
        }
    }

    /// The node as its file system's own type (for that file system's code).
    pub fn node_as<T: VnodeOps>(&self) -> Option<&T> {
        self.node_ops()?.as_any().downcast_ref()
    }

    /// Whether the node drives its own data whatever its type ([`VnodeOps::drives_data`]).
    pub fn drives_data(&self) -> bool {
        self.node_ops().is_some_and(|n| n.drives_data())
    }
}

/// A directory's entries hold their nodes (`Arc<Vnode>`), so dropping the last reference to
/// a directory would drop its subtree recursively, one stack frame group per level: a client
/// that made a chain of some ten thousand directories could then overflow a loop thread's
/// stack (an abort, without the halt's sync) by unmounting it or just dropping the last
/// reference. Instead the subtree is taken apart here, iteratively: each node whose last
/// reference this is gets its own entries moved onto a work list before it goes, so every
/// vnode is dropped with an empty directory. Nodes still referenced elsewhere (a current
/// directory, an open file) keep their subtrees; their own last drop does the same. A file
/// system mounted on a dropped node goes with it (its root drops the same way), so the
/// nesting is bounded by the mount count, not by the tree.
impl Drop for Vnode {
    fn drop(&mut self) {
        let Body::Dir(d) = &mut self.body else {
            return;
        };
        let mut work = Vec::new();
        d.get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain_into(&mut work);
        while let Some(vn) = work.pop() {
            if let Some(mut vn) = Arc::into_inner(vn) {
                if let Body::Dir(d) = &mut vn.body {
                    d.get_mut()
                        .unwrap_or_else(|e| e.into_inner())
                        .drain_into(&mut work);
                }
            }
        }
    }
}

impl std::fmt::Debug for Vnode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vnode")
            .field("ino", &self.ino)
            .field("vtype", &self.vtype)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod drop_tests {
    use super::*;

    fn dir(parent: &Weak<Vnode>) -> Arc<Vnode> {
        let body = Body::Dir(Mutex::new(Dir::new(
            parent.clone(),
            0,
            &crate::mem::Budget::unlimited(),
        )));
        Vnode::new(Weak::new(), 0, VType::Dir, Attr::default(), body)
    }

    /// A chain of `n` directories below a new top; returns the top and every node.
    fn chain(n: usize) -> (Arc<Vnode>, Vec<Weak<Vnode>>) {
        let top = dir(&Weak::new());
        let mut all = vec![Arc::downgrade(&top)];
        let mut cur = top.clone();
        for _ in 0..n {
            let next = dir(&Arc::downgrade(&cur));
            cur.dir().unwrap().insert(b"d", next.clone()).unwrap();
            all.push(Arc::downgrade(&next));
            cur = next;
        }
        (top, all)
    }

    /// On a 256 KiB stack, a recursive drop of 200,000 levels overflows; this must not.
    #[test]
    fn a_deep_tree_drops_without_recursion() {
        let t = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(|| {
                let (top, all) = chain(200_000);
                drop(top);
                assert!(all.iter().all(|w| w.upgrade().is_none()), "all freed");
            })
            .unwrap();
        t.join().unwrap();
    }

    /// A node still referenced elsewhere keeps its subtree; its own last drop frees it.
    #[test]
    fn a_referenced_subtree_survives_until_its_last_reference() {
        let (top, all) = chain(1000);
        let mid = all[500].upgrade().unwrap();
        drop(top);
        assert!(all[..500].iter().all(|w| w.upgrade().is_none()));
        assert!(all[500..].iter().all(|w| w.upgrade().is_some()));
        assert!(mid.dir().unwrap().get(b"d").is_some(), "entries kept");
        drop(mid);
        assert!(all.iter().all(|w| w.upgrade().is_none()));
    }
}

//! The mount table entries (`struct mount`): what lookup crosses and statvfs reports.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::vnode::VNODE_CHARGE_BYTES;
use super::Vnode;
use crate::abi::{Statvfs, DEV_BSIZE, MNT_OP_FLAGS, MNT_RDONLY, NAME_MAX};
use crate::fs::rumpfs::etfs::Keys;
use crate::mem::Budget;
use crate::{Errno, Result};

/// Which file system a mount runs: static dispatch of the per-file-system quirks.
///
/// A new file system adds a variant here, its name to [`FsKind::ALL`], its mount entry to
/// `vfs/mountops.rs` (`Vfs::mount_new` dispatches on the kind) and the arms the compiler
/// then asks for (`st_dev`, getdents cookies, statvfs, block size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsKind {
    /// The rump kernel's root file system.
    Rumpfs,
    /// tmpfs (`rumpfs_tmpfs`): memory file system with a size and node limit.
    Tmpfs,
    /// FFS (`rumpfs_ffs`) on an etfs block device.
    Ffs,
}

impl FsKind {
    /// Every file-system type this kernel can be built with, by mount(2) type name.
    pub const ALL: [FsKind; 3] = [FsKind::Rumpfs, FsKind::Tmpfs, FsKind::Ffs];

    /// The type name (`MOUNT_*`, `f_fstypename`).
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Rumpfs => "rumpfs",
            FsKind::Tmpfs => "tmpfs",
            FsKind::Ffs => "ffs",
        }
    }

    /// The kind a mount(2) type name selects (the caller maps `ufs` to `ffs`).
    pub fn from_name(name: &[u8]) -> Option<FsKind> {
        FsKind::ALL
            .into_iter()
            .find(|k| k.name().as_bytes() == name)
    }

    /// `vfs_min_mount_data`: the argument size used when mount(2) gets data without a
    /// length.
    pub fn min_mount_data(self) -> usize {
        match self {
            FsKind::Rumpfs => 0,
            FsKind::Tmpfs => crate::fs::tmpfs::TMPFS_ARGS_SIZE,
            FsKind::Ffs => crate::fs::ffs::UFS_ARGS_SIZE,
        }
    }

    /// Whether `MNT_UPDATE` may turn a read-write mount read-only (`IMNT_CAN_RWTORO`).
    pub fn can_rw_to_ro(self) -> bool {
        matches!(self, FsKind::Tmpfs | FsKind::Ffs)
    }
}

/// The state a mount shares with every vnode of it: what the data paths check without
/// reaching the mount itself (flags, revocation) and the node count.
#[derive(Debug)]
pub struct MountState {
    flag: AtomicU64,
    gone: AtomicBool,
    nodes: AtomicU64,
    nodes_max: AtomicU64,
}

impl MountState {
    /// Mount flags now.
    pub fn flag(&self) -> u64 {
        self.flag.load(Ordering::Acquire)
    }

    /// Whether the file system was unmounted (its vnodes are dead: `EIO`).
    pub fn gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    /// Nodes in use.
    pub fn nodes(&self) -> u64 {
        self.nodes.load(Ordering::Relaxed)
    }

    /// The node limit.
    pub fn nodes_max(&self) -> u64 {
        self.nodes_max.load(Ordering::Relaxed)
    }
}

/// One node's place in its mount's node count, given back when the vnode goes.
#[derive(Debug)]
pub(crate) struct NodeRef(pub(crate) Arc<MountState>);

impl NodeRef {
    /// Counts a node whatever the limit (boot-time nodes, etfs keys).
    pub(crate) fn forced(s: &Arc<MountState>) -> NodeRef {
        s.nodes.fetch_add(1, Ordering::Relaxed);
        NodeRef(s.clone())
    }

    /// Counts a node if the limit allows, else `ENOSPC` (tmpfs `tm_nodes_max`).
    pub(crate) fn try_new(s: &Arc<MountState>) -> Result<NodeRef> {
        let max = s.nodes_max();
        s.nodes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| Errno::ENOSPC)?;
        Ok(NodeRef(s.clone()))
    }
}

impl Drop for NodeRef {
    fn drop(&mut self) {
        self.0.nodes.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What one kind of file system keeps per mount (`mnt_data`).
#[derive(Debug, Default)]
pub enum FsData {
    /// Nothing beyond the generic mount (rumpfs).
    #[default]
    None,
    /// tmpfs (its size limit, `tm_mem_limit`, is the limit of the mount's budget;
    /// `u64::MAX`: none).
    Tmpfs,
    /// FFS: the engine and its vnodes.
    Ffs(Arc<crate::fs::ffs::FfsMount>),
}

/// A mounted file system.
pub struct Mount {
    kind: FsKind,
    root: OnceLock<Arc<Vnode>>,
    covered: Option<Arc<Vnode>>,
    state: Arc<MountState>,
    on_name: Vec<u8>,
    from_name: Vec<u8>,
    fsidx: [i32; 2],
    owner: u32,
    next_ino: AtomicU64,
    etfs: Keys,
    budget: Arc<Budget>,
    data: FsData,
    /// `f_fstypename` of a component file system (a tmpfs under the component's name).
    type_name: OnceLock<String>,
}

impl Mount {
    /// A mount of `kind` on `covered` (None for the root file system); its root vnode is
    /// attached with [`Mount::set_root`].
    #[allow(clippy::too_many_arguments)] // each is one field of `struct mount`
    pub fn new(
        kind: FsKind,
        covered: Option<Arc<Vnode>>,
        flag: u64,
        on_name: &[u8],
        from_name: &[u8],
        fsid: u64,
        first_ino: u64,
        budget: Arc<Budget>,
    ) -> Mount {
        Mount {
            kind,
            root: OnceLock::new(),
            covered,
            state: Arc::new(MountState {
                flag: AtomicU64::new(flag),
                gone: AtomicBool::new(false),
                nodes: AtomicU64::new(0),
                nodes_max: AtomicU64::new(u64::MAX),
            }),
            on_name: on_name.to_vec(),
            from_name: from_name.to_vec(),
            fsidx: [fsid as i32, 0],
            owner: 0,
            next_ino: AtomicU64::new(first_ino),
            etfs: Keys::default(),
            budget,
            data: FsData::None,
            type_name: OnceLock::new(),
        }
    }

    /// The type name mount(2) took and statvfs reports (`f_fstypename`).
    pub fn type_name(&self) -> &[u8] {
        match self.type_name.get() {
            Some(n) => n.as_bytes(),
            None => self.kind.name().as_bytes(),
        }
    }

    /// Names a component file system after its type (once, before the mount is shared).
    pub fn set_type_name(&self, name: &str) {
        let _ = self.type_name.set(name.to_string());
    }

    /// Sets the file system's own data, `f_fsidx` (`vfs_getnewfsid`), `f_owner` and the node
    /// limit (before the mount is shared).
    pub fn with(mut self, data: FsData, fsidx: [i32; 2], owner: u32, nodes_max: u64) -> Mount {
        self.data = data;
        self.fsidx = fsidx;
        self.owner = owner;
        self.state.nodes_max.store(nodes_max, Ordering::Relaxed);
        self
    }

    /// The state shared with this mount's vnodes.
    pub fn state(&self) -> &Arc<MountState> {
        &self.state
    }

    /// The file system's own data.
    pub fn data(&self) -> &FsData {
        &self.data
    }

    /// `f_fsidx`.
    pub fn fsidx(&self) -> [i32; 2] {
        self.fsidx
    }

    /// Replaces the stored flags (`MNT_UPDATE`); operation bits are never stored.
    pub fn set_flag(&self, flag: u64) {
        self.state
            .flag
            .store(flag & !MNT_OP_FLAGS, Ordering::Release);
    }

    /// Sets the node limit (tmpfs `MNT_UPDATE`).
    pub fn set_nodes_max(&self, n: u64) {
        self.state.nodes_max.store(n, Ordering::Relaxed);
    }

    /// Marks the file system unmounted: its vnodes answer `EIO` from now on.
    pub fn set_gone(&self) {
        self.state.gone.store(true, Ordering::Release);
    }

    /// Whether this file system was unmounted.
    pub fn gone(&self) -> bool {
        self.state.gone()
    }

    /// Whether it is mounted read-only.
    pub fn read_only(&self) -> bool {
        self.flag() & MNT_RDONLY != 0
    }

    /// Where it is mounted (`f_mntonname`).
    pub fn on_name(&self) -> &[u8] {
        &self.on_name
    }

    /// The budget this file system's data and vnodes are charged to.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// Attaches the root vnode (once).
    pub fn set_root(&self, root: Arc<Vnode>) {
        let _ = self.root.set(root);
    }

    /// The etfs keys (used on the rumpfs root mount).
    pub fn etfs(&self) -> &Keys {
        &self.etfs
    }

    /// The file system kind.
    pub fn kind(&self) -> FsKind {
        self.kind
    }

    /// The root vnode.
    pub fn root(&self) -> &Arc<Vnode> {
        self.root.get().expect("mount without a root vnode")
    }

    /// Whether `vn` is this mount's root.
    pub fn is_root(&self, vn: &Vnode) -> bool {
        self.root.get().is_some_and(|r| std::ptr::eq(&**r, vn))
    }

    /// The vnode this file system is mounted on (None for `/`).
    pub fn covered(&self) -> Option<&Arc<Vnode>> {
        self.covered.as_ref()
    }

    /// A new inode number (rumpfs: a counter, first value after 2).
    pub fn alloc_ino(&self) -> u64 {
        self.next_ino.fetch_add(1, Ordering::Relaxed)
    }

    /// `st_dev` of a vnode of this mount: rumpfs sets `va_fsid` to the inode number, the
    /// others to `f_fsidx[0]`.
    pub fn st_dev(&self, vn: &Vnode) -> u64 {
        match self.kind {
            FsKind::Rumpfs => vn.ino(),
            FsKind::Tmpfs | FsKind::Ffs => u64::from(self.fsidx[0] as u32),
        }
    }

    /// `st_blksize` (`va_blocksize`): rumpfs 512, tmpfs a page.
    pub fn blksize(&self) -> u64 {
        match self.kind {
            FsKind::Rumpfs => DEV_BSIZE,
            FsKind::Tmpfs => crate::fs::memnode::PAGE_SIZE as u64,
            FsKind::Ffs => match &self.data {
                FsData::Ffs(f) => f.bsize(),
                _ => DEV_BSIZE,
            },
        }
    }

    /// Whether getdents starts with `.` and `..` (tmpfs, FFS; not rumpfs).
    pub fn lists_dots(&self) -> bool {
        matches!(self.kind, FsKind::Tmpfs)
    }

    /// The first getdents cookie of a directory: those that list `.` and `..` reserve
    /// cookies 0 and 1 for them.
    pub fn first_cookie(&self) -> u64 {
        if self.lists_dots() {
            2
        } else {
            0
        }
    }

    /// Longest name (`f_namemax`, `_PC_NAME_MAX`).
    pub fn name_max(&self) -> u64 {
        NAME_MAX as u64
    }

    /// Mount flags.
    pub fn flag(&self) -> u64 {
        self.state.flag()
    }

    /// `VFS_STATVFS` with the generic fields filled in.
    pub fn statvfs(&self) -> Statvfs {
        let mut s = Statvfs {
            flag: self.flag(),
            fsidx: self.fsidx,
            fsid: u64::from(self.fsidx[0] as u32),
            namemax: self.name_max(),
            owner: self.owner,
            fstypename: self.type_name().to_vec(),
            mntonname: self.on_name.clone(),
            mntfromname: self.from_name.clone(),
            ..Statvfs::default()
        };
        match self.kind {
            FsKind::Rumpfs => {
                (s.bsize, s.blocks) = (DEV_BSIZE, 2);
            }
            FsKind::Tmpfs => self.tmpfs_statvfs(&mut s),
            FsKind::Ffs => {
                if let FsData::Ffs(f) = &self.data {
                    f.fill_statvfs(&mut s);
                }
                return s;
            }
        }
        (s.frsize, s.iosize) = (s.bsize, s.bsize);
        s
    }

    /// tmpfs_statvfs: pages of the size limit (unlimited: what the kernel budget has left
    /// plus what this file system holds), pages still available (its limit and the kernel
    /// budget both), nodes in use and the nodes that still fit.
    fn tmpfs_statvfs(&self, s: &mut Statvfs) {
        let page = crate::fs::memnode::PAGE_SIZE as u64;
        let (avail, used) = (self.budget.available(), self.budget.used());
        let max = match self.budget.limit() {
            u64::MAX => avail.saturating_add(used),
            size_max => size_max,
        };
        s.bsize = page;
        s.blocks = max / page;
        s.bfree = (avail / page).min(s.blocks);
        s.bavail = s.bfree;
        let (nodes, nodes_max) = (self.state.nodes(), self.state.nodes_max());
        let free = nodes_max
            .saturating_sub(nodes)
            .min(avail / VNODE_CHARGE_BYTES);
        s.files = nodes + free;
        (s.ffree, s.favail) = (free, free);
    }
}

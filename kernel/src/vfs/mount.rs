//! The mount table entries (`struct mount`): what lookup crosses and statvfs reports.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::ops::{FsOps, FsType, MountParams};
use super::Vnode;
use crate::abi::{Statvfs, DEV_BSIZE, MNT_OP_FLAGS, MNT_RDONLY, NAME_MAX};
use crate::mem::Budget;
use crate::{Errno, Result};

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
    /// Counts a node whatever the limit (boot-time nodes, host-file keys).
    pub(crate) fn forced(s: &Arc<MountState>) -> NodeRef {
        s.nodes.fetch_add(1, Ordering::Relaxed);
        NodeRef(s.clone())
    }

    /// Counts a node if the limit allows, else `ENOSPC` (a node limit such as `tm_nodes_max`).
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

/// The operations of a mount not built yet (never seen outside `Mount::new`/`with`).
struct Unbuilt;

impl FsOps for Unbuilt {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn params(&self) -> MountParams {
        MountParams {
            dev_is_ino: false,
            blksize: DEV_BSIZE,
            lists_dots: false,
            fixed_bytes: Some(DEV_BSIZE),
            dirent_size: None,
            newest_first: false,
            enforces_flags: false,
            pathconf: crate::vfs::ops::PathconfParams {
                filesize_bits: 43,
                symlinks: true,
                fifofs: false,
            },
        }
    }
    fn statvfs(&self, _m: &Mount, _s: &mut Statvfs) {}
    fn getargs(&self, _m: &Mount, _given: Vec<u8>) -> Result<Vec<u8>> {
        Err(Errno::EINVAL)
    }
}

/// A mounted file system.
pub struct Mount {
    typ: Arc<dyn FsType>,
    root: OnceLock<Arc<Vnode>>,
    covered: Option<Arc<Vnode>>,
    state: Arc<MountState>,
    on_name: Vec<u8>,
    from_name: Vec<u8>,
    fsidx: [i32; 2],
    owner: u32,
    next_ino: AtomicU64,
    budget: Arc<Budget>,
    ops: Box<dyn FsOps>,
    params: MountParams,
    /// `f_fstypename` of a component file system (a memory file system under the component's name).
    type_name: OnceLock<String>,
}

impl Mount {
    /// A mount of type `typ` on `covered` (None for the root file system); its root vnode is
    /// attached with [`Mount::set_root`].
    #[allow(clippy::too_many_arguments)] // each is one field of `struct mount`
    pub fn new(
        typ: Arc<dyn FsType>,
        covered: Option<Arc<Vnode>>,
        flag: u64,
        on_name: &[u8],
        from_name: &[u8],
        fsid: u64,
        first_ino: u64,
        budget: Arc<Budget>,
    ) -> Mount {
        let ops: Box<dyn FsOps> = Box::new(Unbuilt);
        Mount {
            typ,
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
            budget,
            params: ops.params(),
            ops,
            type_name: OnceLock::new(),
        }
    }

    /// The type name mount(2) took and statvfs reports (`f_fstypename`).
    pub fn type_name(&self) -> &[u8] {
        match self.type_name.get() {
            Some(n) => n.as_bytes(),
            None => self.typ.name().as_bytes(),
        }
    }

    /// Names a component file system after its type (once, before the mount is shared).
    pub fn set_type_name(&self, name: &str) {
        let _ = self.type_name.set(name.to_string());
    }

    /// Sets the file system's operations, `f_fsidx` (`vfs_getnewfsid`), `f_owner` and the
    /// node limit (before the mount is shared).
    pub fn with(
        mut self,
        ops: Box<dyn FsOps>,
        fsidx: [i32; 2],
        owner: u32,
        nodes_max: u64,
    ) -> Mount {
        self.params = ops.params();
        self.ops = ops;
        self.fsidx = fsidx;
        self.owner = owner;
        self.state.nodes_max.store(nodes_max, Ordering::Relaxed);
        self
    }

    /// The state shared with this mount's vnodes.
    pub fn state(&self) -> &Arc<MountState> {
        &self.state
    }

    /// The file system's operations.
    pub fn ops(&self) -> &dyn FsOps {
        &*self.ops
    }

    /// The file system's operations as its own type (for the file system's code).
    pub fn ops_as<T: FsOps>(&self) -> Option<&T> {
        self.ops.as_any().downcast_ref()
    }

    /// The per-mount constants.
    pub fn params(&self) -> &MountParams {
        &self.params
    }

    /// The file-system type.
    pub fn fs_type(&self) -> &Arc<dyn FsType> {
        &self.typ
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

    /// Sets the node limit (`MNT_UPDATE`).
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

    /// A new inode number (a counter, first value after 2).
    pub fn alloc_ino(&self) -> u64 {
        self.next_ino.fetch_add(1, Ordering::Relaxed)
    }

    /// `st_dev` of a vnode of this mount: the root file system sets `va_fsid` to the inode number,
    /// the others to `f_fsidx[0]`.
    pub fn st_dev(&self, vn: &Vnode) -> u64 {
        if self.params.dev_is_ino {
            vn.ino()
        } else {
            u64::from(self.fsidx[0] as u32)
        }
    }

    /// `st_blksize` (`va_blocksize`).
    pub fn blksize(&self) -> u64 {
        self.params.blksize
    }

    /// Whether getdents starts with `.` and `..` (as the file system's `FsOps` says).
    pub fn lists_dots(&self) -> bool {
        self.params.lists_dots
    }

    /// The first getdents cookie of a directory: those that list `.` and `..` reserve
    /// cookies 0 and 1 for them; those listed newest first reserve 0 for the start.
    pub fn first_cookie(&self) -> u64 {
        if self.lists_dots() {
            2
        } else if self.params.newest_first {
            1
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
        self.ops.statvfs(self, &mut s);
        s
    }
}

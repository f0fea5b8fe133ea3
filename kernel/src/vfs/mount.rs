//! The mount table entries (`struct mount`): what lookup crosses and statvfs reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::Vnode;
use crate::abi::{Statvfs, NAME_MAX};
use crate::fs::rumpfs::etfs::Keys;
use crate::mem::Budget;

/// Which file system a mount runs: static dispatch of the per-file-system quirks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsKind {
    /// The rump kernel's root file system.
    Rumpfs,
}

/// A mounted file system.
pub struct Mount {
    kind: FsKind,
    root: OnceLock<Arc<Vnode>>,
    covered: Option<Arc<Vnode>>,
    flag: u64,
    on_name: Vec<u8>,
    from_name: Vec<u8>,
    fsid: u64,
    next_ino: AtomicU64,
    etfs: Keys,
    budget: Arc<Budget>,
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
            flag,
            on_name: on_name.to_vec(),
            from_name: from_name.to_vec(),
            fsid,
            next_ino: AtomicU64::new(first_ino),
            etfs: Keys::default(),
            budget,
        }
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

    /// `st_dev` of a vnode of this mount: rumpfs sets `va_fsid` to the inode number.
    pub fn st_dev(&self, vn: &Vnode) -> u64 {
        match self.kind {
            FsKind::Rumpfs => vn.ino(),
        }
    }

    /// The first getdents cookie of a directory (rumpfs lists no `.` and `..`).
    pub fn first_cookie(&self) -> u64 {
        match self.kind {
            FsKind::Rumpfs => 0,
        }
    }

    /// Longest name (`f_namemax`, `_PC_NAME_MAX`).
    pub fn name_max(&self) -> u64 {
        NAME_MAX as u64
    }

    /// Mount flags.
    pub fn flag(&self) -> u64 {
        self.flag
    }

    /// `VFS_STATVFS` with the generic fields filled in.
    pub fn statvfs(&self) -> Statvfs {
        let (bsize, blocks) = match self.kind {
            FsKind::Rumpfs => (512, 2),
        };
        let type_name: &[u8] = match self.kind {
            FsKind::Rumpfs => b"rumpfs",
        };
        Statvfs {
            flag: self.flag,
            bsize,
            frsize: bsize,
            iosize: bsize,
            blocks,
            fsidx: [self.fsid as i32, 0],
            fsid: self.fsid & 0xffff_ffff,
            namemax: self.name_max(),
            owner: 0,
            fstypename: type_name.to_vec(),
            mntonname: self.on_name.clone(),
            mntfromname: self.from_name.clone(),
            ..Statvfs::default()
        }
    }
}

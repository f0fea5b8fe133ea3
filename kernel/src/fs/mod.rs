//! File systems: rumpfs (the root, with etfs), tmpfs and component file systems over the
//! VFS's memory nodes, and FFS over block devices. Each plugs into the VFS through the
//! interfaces of `crate::vfs::ops` (`FsType`, `FsOps`, `VnodeOps`) and is registered by
//! name at boot ([`types`]); the VFS and the system calls name none of them.
//!
//! **Adding a file system**: a module here implementing `FsType` (mount arguments, `build`,
//! and `prepare` if mounting waits for a device), `FsOps` for its mounts and, if its nodes
//! are not memory nodes, `VnodeOps` for them (a `Body::Node`); a variant of [`FsKind`] with
//! its mount(2) type name; and a server component whose `Component::filesystem` names it.

pub mod ffs;
pub mod rumpfs;
pub mod tmpfs;

use std::sync::Arc;

use crate::vfs::FsType;

/// The file systems this kernel can be built with (`-l`, modules), by mount(2) type name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsKind {
    /// The rump kernel's root file system.
    Rumpfs,
    /// tmpfs (`rumpfs_tmpfs`): memory file system with a size and node limit.
    Tmpfs,
    /// FFS (`rumpfs_ffs`) on an etfs block device.
    Ffs,
}

/// Registers the sysctl nodes of the file systems in `loaded` (NetBSD's `SYSCTL_SETUP` of
/// each file-system module).
pub fn sysctl_nodes(m: &crate::sysctl::Mib, loaded: &[FsKind]) {
    if loaded.contains(&FsKind::Ffs) {
        ffs::sysctl::nodes(m);
    }
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

    /// The kind a type name selects (mount(2) maps `ufs` to `ffs` first).
    pub fn from_name(name: &[u8]) -> Option<FsKind> {
        FsKind::ALL
            .into_iter()
            .find(|k| k.name().as_bytes() == name)
    }

    /// The type's operations.
    pub fn fs_type(self) -> Arc<dyn FsType> {
        match self {
            FsKind::Rumpfs => Arc::new(rumpfs::RumpfsType),
            FsKind::Tmpfs => Arc::new(tmpfs::TmpfsType),
            FsKind::Ffs => Arc::new(ffs::FfsType),
        }
    }
}

/// Every built-in file-system type, for the VFS's list.
pub fn types() -> Vec<Arc<dyn FsType>> {
    FsKind::ALL.into_iter().map(FsKind::fs_type).collect()
}

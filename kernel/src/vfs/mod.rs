//! The VFS (NetBSD's `rumpvfs` faction): vnodes, name lookup, the mount table, namespace
//! operations and permission checks.
//!
//! Design decisions (for ARCHITECTURE.md):
//! - **Vnodes are `Arc<Vnode>`, shared by all loop threads.** Identity (id, inode number,
//!   type, mount) is immutable; attributes, the body (directory entries or file data) and
//!   the mount-point slot each have their own leaf `Mutex`, held only for in-memory work and
//!   never across an await. Lookup locks one directory at a time; nothing global is taken on
//!   the read, write or lookup paths.
//! - **File systems plug in through [`ops`]** (`FsType` registered by name, `FsOps` per
//!   mount, `VnodeOps` per node); this module names none of them. `Vnode::read_at`/
//!   `write_at`/`truncate`/`fsync` are `async fn` matching on the vnode's [`Body`]: the
//!   memory bodies statically, without boxing; `Body::Node` (a device's
//!   inodes, host-file windows) through its `VnodeOps`, one boxed future per operation that
//!   waits for host I/O anyway. Client data moves through `crate::copy` in chunks of at most
//!   64 KiB copied outside every vnode lock, so a huge length never allocates more than a
//!   chunk; a write is atomic per chunk, not as a whole (NetBSD holds the vnode lock for the
//!   whole write; a client racing two writers on one range may see them interleave at 64 KiB
//!   boundaries).
//! - **Structural changes that touch two directories** (rename, rmdir) are serialised by one
//!   namespace lock, NetBSD's `vfs_renamelock`; under it two directory locks may be held. All
//!   other operations hold at most one directory lock, so there is no lock-order cycle.
//! - **Mounts** ([`Mount`]) carry their file-system kind ([`FsKind`], static dispatch of the
//!   per-file-system quirks: `st_dev`, getdents cookies, statvfs), the covered vnode and
//!   names. Lookup crosses `mounted_here` downwards and `covered` upwards for `..` at a mount
//!   root; `st_dev` and statvfs are per mount. mount(2)/unmount(2) change the table under
//!   its write lock (`mountops`); the flags and the unmounted state a vnode's data paths
//!   check live in a [`MountState`] every vnode of the mount shares, so checking them never
//!   touches the mount's reference count.
//! - **One walk up** ([`walk`]): `..`, `is_under`, getcwd, mount paths and rename's
//!   ancestor check step up with `WalkUp`; a `..` cycle of a crafted image ends it (`EIO`).
//! - **The root file system** is the root, built at boot as NetBSD's rump kernel shows it
//!   (`/dev`, `/tmp`, `/dev/null`, `/dev/zero`; inode numbers from a counter after 2;
//!   `st_dev == st_ino`),
//!   with "our policy" where netbsd-abi.md §10 says so: hard links, POSIX rename, directory
//!   nlink 2 + subdirectories, nlink 0 for unlinked open files, zeros after shrink-extend,
//!   getdents resuming exactly after the last entry returned (cookies are never reused).
//! - **Permissions** are checked in [`access`] with the calling process's `Cred`: owner,
//!   group, other bits, root bypass, sticky directories, search permission on every
//!   directory lookup passes through.
//! - **Advisory locks** are keyed by [`Vnode::lock_key`], a kernel-unique vnode id.
//! - The VFS is optional (`BootConfig::vfs`): without it every file-system syscall is
//!   `ENOSYS`, as NetBSD's server without `-lrumpvfs`.

pub mod access;
pub mod lookup;
pub mod memnode;
mod mount;
mod mountops;
mod ns;
pub mod ops;
#[cfg(test)]
mod tests;
mod vnode;
pub mod walk;

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

pub use lookup::{namei, namei_parent, Found, Nd};
pub use mount::{Mount, MountState};
pub use mountops::{MountReq, NewMount, MOUNTS_MAX};
pub use ns::NewNode;
pub use ops::{FsOps, FsType, NameOp, VnodeOps};
pub use vnode::{Attr, Body, VType, Vnode, VNODE_CHARGE_BYTES};
pub use walk::is_under;

use crate::abi::Timespec;
use crate::bio::{BufCache, DEFAULT_BLOCK_SIZE, DEFAULT_SHARDS};
use crate::mem::Budget;
use crate::Host;

/// The kernel's file-system state.
pub struct Vfs {
    host: Arc<dyn Host>,
    root_mount: Arc<Mount>,
    mounts: RwLock<Vec<Arc<Mount>>>,
    /// Serialises rename and rmdir (`vfs_renamelock`).
    ns_lock: Mutex<()>,
    /// The buffer cache of every block device.
    bio: Arc<BufCache>,
    /// The file-system types mount(2) may name (`vfs_list`).
    types: Vec<Arc<dyn FsType>>,
}

impl Vfs {
    /// Boots the VFS with the file-system types `types` registered by name and the root file
    /// system `mount_root` builds (with NetBSD's boot-time nodes).
    /// The buffer cache holds at most `cache_bytes` and is charged to `budget`, like the
    /// file data of the memory file systems.
    pub fn boot(
        host: Arc<dyn Host>,
        budget: Arc<Budget>,
        cache_bytes: u64,
        types: Vec<Arc<dyn FsType>>,
        mount_root: fn(Timespec, Arc<Budget>) -> Arc<Mount>,
    ) -> Vfs {
        let now = Timespec::from_pair(host.clock_realtime());
        let root_mount = mount_root(now, budget.clone());
        let bio = BufCache::with_budget(cache_bytes, DEFAULT_BLOCK_SIZE, DEFAULT_SHARDS, &budget);
        bio.set_host(host.clone());
        Vfs {
            host,
            mounts: RwLock::new(vec![root_mount.clone()]),
            root_mount,
            ns_lock: Mutex::new(()),
            bio,
            types,
        }
    }

    /// The registered file-system type named `name` (`vfs_getopsbyname`).
    pub fn fs_type(&self, name: &[u8]) -> Option<Arc<dyn FsType>> {
        self.types
            .iter()
            .find(|t| t.name().as_bytes() == name)
            .cloned()
    }

    /// The current wall-clock time, for timestamps.
    pub fn now(&self) -> Timespec {
        Timespec::from_pair(self.host.clock_realtime())
    }

    /// The root vnode of the root file system.
    pub fn root(&self) -> &Arc<Vnode> {
        self.root_mount.root()
    }

    /// Every mounted file system, the root first.
    pub fn mounts(&self) -> Vec<Arc<Mount>> {
        self.mounts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The buffer cache.
    pub fn bio(&self) -> &Arc<BufCache> {
        &self.bio
    }

    /// The root mount (the root file system's, where host-file keys live).
    pub fn root_mount(&self) -> &Arc<Mount> {
        &self.root_mount
    }

    /// `vfs_sync` of every mount (`VFS_SYNC`: memory file systems have nothing to write
    /// back); then the buffer cache writes every dirty block back and syncs the host files.
    /// Synchronous (see [`crate::bio::park_on`]); loops use [`Vfs::sync_all_async`].
    pub fn sync_all(&self) -> crate::Result<()> {
        crate::bio::park_on(self.sync_all_async())
    }

    /// [`Vfs::sync_all`] for callers on a loop.
    pub async fn sync_all_async(&self) -> crate::Result<()> {
        let mut first = Ok(());
        for m in self.mounts() {
            if let Err(e) = m.ops().sync().await {
                first = first.and(Err(e));
            }
        }
        first.and(self.bio.sync_all().await)
    }

    /// At halt (`vfs_unmountall`): every mount's unmount write-back (a file system on a
    /// device written back and marked clean), then the cache synced.
    pub async fn shutdown_async(&self) -> crate::Result<()> {
        let mut first = Ok(());
        for m in self.mounts() {
            if let Err(e) = m.ops().finish().await {
                first = first.and(Err(e));
            }
        }
        first.and(self.bio.sync_all().await)
    }

    pub(crate) fn ns_lock(&self) -> MutexGuard<'_, ()> {
        self.ns_lock.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A process's current and root directories (`struct cwdinfo`); `None` until changed,
/// meaning the file system root.
#[derive(Default)]
pub struct ProcDirs {
    dirs: Mutex<CwdInfo>,
}

/// The current and the root directory, `None` meaning the file system root.
type CwdInfo = (Option<Arc<Vnode>>, Option<Arc<Vnode>>);

impl ProcDirs {
    fn lock(&self) -> MutexGuard<'_, CwdInfo> {
        self.dirs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current directory.
    pub fn cwd(&self, vfs: &Vfs) -> Arc<Vnode> {
        self.lock().0.clone().unwrap_or_else(|| vfs.root().clone())
    }

    /// The root directory (chroot).
    pub fn root(&self, vfs: &Vfs) -> Arc<Vnode> {
        self.lock().1.clone().unwrap_or_else(|| vfs.root().clone())
    }

    /// Sets the current directory.
    pub fn set_cwd(&self, vn: Arc<Vnode>) {
        self.lock().0 = Some(vn);
    }

    /// Sets the root directory to `vn` and, unless `cwd` (the current directory as read
    /// before) was found below it, moves the current directory to it too (`change_root`:
    /// "prevent escaping from chroot by putting the root under the working directory"). A
    /// current directory changed since it was read also moves: the check was not about it.
    pub fn change_root(&self, vn: Arc<Vnode>, cwd: &Arc<Vnode>, cwd_under: bool) {
        let mut d = self.lock();
        let same = match &d.0 {
            Some(c) => Arc::ptr_eq(c, cwd),
            None => false,
        };
        if !(same && cwd_under) {
            d.0 = Some(vn.clone());
        }
        d.1 = Some(vn);
    }

    /// Whether the current or the root directory (as set) satisfies `f`.
    pub fn any(&self, f: impl Fn(&Arc<Vnode>) -> bool) -> bool {
        let d = self.lock();
        d.0.as_ref().is_some_and(&f) || d.1.as_ref().is_some_and(&f)
    }

    /// Moves a current or root directory that is `old` to `new` (a file system was just
    /// mounted on `old`: `mount_checkdirs`).
    pub fn replace(&self, old: &Arc<Vnode>, new: &Arc<Vnode>) {
        let mut guard = self.lock();
        let d = &mut *guard;
        for slot in [&mut d.0, &mut d.1] {
            if slot.as_ref().is_some_and(|v| Arc::ptr_eq(v, old)) {
                *slot = Some(new.clone());
            }
        }
    }

    /// Copies another process's directories (fork).
    pub fn copy_from(&self, other: &ProcDirs) {
        let o = other.lock().clone();
        *self.lock() = o;
    }
}

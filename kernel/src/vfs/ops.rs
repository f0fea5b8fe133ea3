//! The interfaces file systems plug into (NetBSD's `vfsops` and `vnodeops`): the VFS and the
//! system calls call only these, and name no file system.
//!
//! Three traits, one per level:
//! - [`FsType`]: an entry of the file-system type list (`vfs_list`, `vfs_getopsbyname`),
//!   registered by name at boot ([`crate::vfs::Vfs::boot`]). It says how mount(2) copies its
//!   arguments in and builds a new [`Mount`]: `prepare` may wait for a device (a disk file
//!   system reads its superblock), `build` runs under the mount-table lock and must not wait.
//! - [`FsOps`]: what one mounted file system does (`VFS_STATVFS`, `VFS_SYNC`, the write-back
//!   of `VFS_UNMOUNT`, `MNT_UPDATE`, `MNT_GETARGS`, the root file system's whole-path lookup
//!   of host-file keys).
//! - [`VnodeOps`]: the vnode operations of a file system whose nodes are its own (inodes
//!   on a device, windows of host files). They are `async` through a boxed future: such
//!   an operation waits for the device anyway, so the allocation is noise.
//!
//! The memory nodes of the memory file systems ([`crate::vfs::memnode`]) are the VFS's own vnode
//! bodies: their operations are plain code in `vfs/` (`ns.rs`, `vnode.rs`), statically
//! dispatched and never boxed, which keeps the hot paths (stat, a read of a memory file)
//! free of virtual calls and allocations. Every other body is a `Body::Node` holding a
//! `Box<dyn VnodeOps>`.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::{Mount, NewMount, NewNode, Vfs, Vnode};
use crate::abi::Statvfs;
use crate::mem::Budget;
use crate::{Errno, Result};

/// The future of a file system's asynchronous operation.
pub type FsFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + 'a>>;

/// A finished [`FsFuture`].
pub fn ready<'a, T: 'a>(r: Result<T>) -> FsFuture<'a, T> {
    Box::pin(std::future::ready(r))
}

/// One directory entry as a file system's `readdir` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Inode number.
    pub ino: u64,
    /// `d_type` (`DT_*`).
    pub dtype: u8,
    /// Name.
    pub name: Vec<u8>,
    /// The cookie of the entry after this one.
    pub next: u64,
}

/// What a lookup's last component is looked up for (NetBSD's `cn_nameiop`): a file system
/// may refuse early (ufs_lookup: removing or renaming on a read-only mount is `EROFS`, even
/// for a name that does not exist). Components before the last are looked up as `Lookup`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameOp {
    /// A plain lookup.
    Lookup,
    /// The name is to be created.
    Create,
    /// The name is to be removed (unlink, rmdir, the source of a rename).
    Delete,
    /// The name is a rename's target.
    Rename,
}

/// What the removal of a name checks on the node it leads to, under the file system's own
/// serialisation (type, mount point, sticky bit): the VFS's half of `VOP_REMOVE`/`VOP_RMDIR`.
pub type RemoveCheck<'a> = &'a (dyn Fn(&Arc<Vnode>) -> Result<()> + 'a);

/// The vnode operations of a file system with its own nodes (`struct vnodeopv_desc`). Each
/// takes the vnode (`vn`, or the directory `dir`) this node body belongs to. Defaults answer
/// as a node type without the operation does.
pub trait VnodeOps: Any + Send + Sync {
    /// For the file system's own downcasts ([`Vnode::node_as`]).
    fn as_any(&self) -> &dyn Any;

    /// `va_size`.
    fn size(&self) -> u64;

    /// Space held in 512-byte blocks (`va_bytes`), when the file system knows it; `None`:
    /// one block.
    fn blocks(&self) -> Option<u64> {
        None
    }

    /// Whether the node drives its own data whatever its type (a host-file device: reads,
    /// writes, opens and ioctls go to it, not to a device driver).
    fn drives_data(&self) -> bool {
        false
    }

    /// `VOP_LOOKUP` of one name in directory `dir` (`..` included: the parent within the
    /// file system) for `op`; `None` when there is no such name.
    fn lookup<'a>(
        &'a self,
        _dir: &'a Vnode,
        _name: &'a [u8],
        _op: NameOp,
    ) -> FsFuture<'a, Option<Arc<Vnode>>> {
        ready(Err(Errno::ENOTDIR))
    }

    /// The name `child` has in directory `dir` (the name half of parent-and-name, for
    /// getcwd and mount paths); `ENOENT` when none.
    fn name_of<'a>(&'a self, _dir: &'a Vnode, _child: &'a Vnode) -> FsFuture<'a, Vec<u8>> {
        ready(Err(Errno::ENOENT))
    }

    /// `VOP_READLINK`: `EINVAL` for anything but a symbolic link.
    fn readlink<'a>(&'a self, _vn: &'a Vnode) -> FsFuture<'a, Vec<u8>> {
        ready(Err(Errno::EINVAL))
    }

    /// `VOP_READDIR`: entries from `cookie` that fit `bytes` bytes of `struct dirent`.
    fn readdir<'a>(
        &'a self,
        _vn: &'a Vnode,
        _cookie: u64,
        _bytes: usize,
    ) -> FsFuture<'a, Vec<DirEntry>> {
        ready(Err(Errno::EINVAL))
    }

    /// `VOP_READ`: at most `len` bytes at `off`.
    fn read<'a>(&'a self, _vn: &'a Vnode, _off: u64, _len: usize) -> FsFuture<'a, Vec<u8>> {
        ready(Err(Errno::EOPNOTSUPP))
    }

    /// `VOP_WRITE`: `data` at `off` (at the end with `append`); the offset written at and
    /// the bytes written (fewer than `data` only where a device's end cuts the write short).
    fn write<'a>(
        &'a self,
        _vn: &'a Vnode,
        _off: u64,
        _data: &'a [u8],
        _append: bool,
    ) -> FsFuture<'a, (u64, usize)> {
        ready(Err(Errno::EOPNOTSUPP))
    }

    /// `VOP_SETATTR` of the size.
    fn truncate<'a>(&'a self, _vn: &'a Vnode, _len: u64) -> FsFuture<'a, ()> {
        ready(Ok(()))
    }

    /// `VOP_SETATTR` of mode, owner, times and flags: the vnode's attributes (changed and
    /// checked by the caller) made durable.
    fn setattr<'a>(&'a self, _vn: &'a Vnode) -> FsFuture<'a, ()> {
        ready(Ok(()))
    }

    /// `VOP_FSYNC`.
    fn fsync<'a>(&'a self, _vn: &'a Vnode) -> FsFuture<'a, ()> {
        ready(Ok(()))
    }

    /// `VOP_CREATE`/`VOP_MKDIR`/`VOP_MKNOD`/`VOP_SYMLINK` in directory `dir`, owned by `uid`
    /// (permissions already checked).
    fn create<'a>(
        &'a self,
        _dir: &'a Vnode,
        _name: &'a [u8],
        _new: &'a NewNode<'a>,
        _uid: u32,
    ) -> FsFuture<'a, Arc<Vnode>> {
        ready(Err(Errno::ENOTDIR))
    }

    /// `VOP_LINK`: `node` under `name` in directory `dir`.
    fn link<'a>(&'a self, _dir: &'a Vnode, _name: &'a [u8], _node: &'a Vnode) -> FsFuture<'a, ()> {
        ready(Err(Errno::ENOTDIR))
    }

    /// `VOP_REMOVE` or (`rmdir`) `VOP_RMDIR` of `name` in `dir`, after `check` accepted the
    /// node it names (`ENOENT` when none).
    fn remove<'a>(
        &'a self,
        _dir: &'a Vnode,
        _name: &'a [u8],
        _rmdir: bool,
        _check: RemoveCheck<'a>,
    ) -> FsFuture<'a, ()> {
        ready(Err(Errno::ENOTDIR))
    }

    /// `VOP_RENAME` within this file system, the VFS's checks done; `touch`: the vnodes
    /// involved besides the directories.
    fn rename<'a>(
        &'a self,
        _fdir: &'a Vnode,
        _fname: &'a [u8],
        _tdir: &'a Vnode,
        _tname: &'a [u8],
        _touch: &'a [&'a Vnode],
    ) -> FsFuture<'a, ()> {
        ready(Err(Errno::ENOTDIR))
    }

    /// `VOP_CLOSE` at the last close of an open file of a node that [drives its
    /// data](VnodeOps::drives_data) (a host-file block device writes its dirty blocks back).
    fn close<'a>(&'a self, _vn: &'a Vnode) -> FsFuture<'a, ()> {
        ready(Ok(()))
    }

    /// `VOP_OPEN` of a node that [drives its data](VnodeOps::drives_data), with `FREAD`/
    /// `FWRITE` in `fmode`.
    fn open(&self, _fmode: u32) -> Result<()> {
        Ok(())
    }

    /// `VOP_IOCTL` of a node that drives its data.
    fn ioctl(&self, _com: u32, _data: &mut [u8]) -> Result<()> {
        Err(Errno::ENOTTY)
    }
}

/// Per-mount values the data paths read without a call (stat is a hot path).
#[derive(Clone, Copy, Debug)]
pub struct MountParams {
    /// `st_dev` is the inode number (NetBSD's root file system's `va_fsid`) rather than
    /// `f_fsidx[0]`.
    pub dev_is_ino: bool,
    /// `st_blksize`.
    pub blksize: u64,
    /// Whether getdents starts with `.` and `..`.
    pub lists_dots: bool,
    /// `va_bytes` of a memory node: `Some(n)` the same for every node (NetBSD's root file
    /// system: 512 bytes, its one constant), `None` the size rounded up to a page.
    pub fixed_bytes: Option<u64>,
    /// `va_size` of a memory directory: this many bytes per entry (NetBSD's memory file
    /// system: the size of its directory entry, so an empty directory is 0); `None`:
    /// `DEV_BSIZE`.
    pub dirent_size: Option<u64>,
    /// Whether getdents lists a memory directory's newest entry first (NetBSD's root file system
    /// keeps its entries in a list it inserts at the head of) rather than in creation order.
    pub newest_first: bool,
    /// Whether the immutable and append-only flags restrict what may be done to a node
    /// (as NetBSD's memory and disk file systems); others store flags without acting on them.
    pub enforces_flags: bool,
    /// What `VOP_PATHCONF` answers for the file system's own nodes.
    pub pathconf: PathconfParams,
}

/// The per-file-system part of `VOP_PATHCONF` (`rump_vop_pathconf`, `tmpfs_pathconf`,
/// `ufs_pathconf`); device nodes answer specfs's values whatever the file system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathconfParams {
    /// `_PC_FILESIZEBITS`.
    pub filesize_bits: i64,
    /// Whether `_PC_SYMLINK_MAX` and `_PC_2_SYMLINKS` are answered (tmpfs: `EINVAL`).
    pub symlinks: bool,
    /// Whether FIFOs answer fifofs's values (tmpfs, FFS) rather than the file system's own
    /// (NetBSD's root file system keeps its FIFOs in its own vnode operations).
    pub fifofs: bool,
}

/// What one mounted file system does (`struct vfsops` on `mnt_data`).
pub trait FsOps: Any + Send + Sync {
    /// For the file system's own downcasts ([`Mount::ops_as`]).
    fn as_any(&self) -> &dyn Any;

    /// Per-mount constants (fixed when the mount is built).
    fn params(&self) -> MountParams;

    /// `VFS_STATVFS`: the file system's figures in `s` (the generic fields are filled in).
    fn statvfs(&self, m: &Mount, s: &mut Statvfs);

    /// Work that earlier operations left for later and that statvfs must already show
    /// (a disk file system: the inodes whose last vnode went, freed as NetBSD's reclaim frees
    /// them); statvfs1, fstatvfs1 and getvfsstat await it before [`FsOps::statvfs`].
    fn settle(&self) -> FsFuture<'_, ()> {
        ready(Ok(()))
    }

    /// `VFS_SYNC`: everything written back.
    fn sync(&self) -> FsFuture<'_, ()> {
        ready(Ok(()))
    }

    /// The write-back of `VFS_UNMOUNT` after the table let the mount go (and at halt):
    /// idempotent.
    fn finish(&self) -> FsFuture<'_, ()> {
        ready(Ok(()))
    }

    /// `MNT_UPDATE` from read-only to read-write: what the file system must do first, and
    /// may wait for (a disk file system: its write state, the image marked in use).
    fn upgrade(&self) -> FsFuture<'_, ()> {
        ready(Ok(()))
    }

    /// The file system's part of `MNT_UPDATE` from flags `old` to `new` with `data`.
    fn update(&self, _m: &Mount, _old: u64, _new: u64, _data: Option<&[u8]>) -> Result<()> {
        Ok(())
    }

    /// `MNT_GETARGS`: the arguments as the file system runs now (`given`: the caller's
    /// buffer, copied in).
    fn getargs(&self, m: &Mount, given: Vec<u8>) -> Result<Vec<u8>>;

    /// A lookup step that takes the whole remaining path at directory `dir` (the root file
    /// system's host-file keys at its root); `None`: look the next component up as usual.
    fn lookup_whole(&self, _m: &Mount, _dir: &Vnode, _rest: &[u8]) -> Option<Arc<Vnode>> {
        None
    }
}

/// What a file system's `build` is given beyond the generic mount.
pub struct BuildArgs<'a> {
    /// The VFS (component file systems fill themselves through it).
    pub vfs: &'a Vfs,
    /// The arguments mount(2) copied in.
    pub data: Option<&'a [u8]>,
    /// The kernel budget a mount's data is charged to (or a child of it).
    pub budget: &'a Arc<Budget>,
    /// What [`FsType::prepare`] made.
    pub prepared: Box<dyn Any>,
}

/// What [`FsType::prepare`] is given: the device node mount(2) looked up for a file system
/// that names one in its arguments ([`FsType::device_arg`]), with the path given.
pub struct PrepareArgs<'a> {
    /// The `MNT_*` flags given.
    pub flags: u64,
    /// The device node and its path, if the type takes one.
    pub device: Option<(&'a Arc<Vnode>, &'a [u8])>,
}

/// A file-system type (`struct vfsops` as `vfs_list` holds it), registered by name.
pub trait FsType: Send + Sync {
    /// The mount(2) type name (`MOUNT_*`); also what `vfs_getnewfsid` hashes.
    fn name(&self) -> &str;

    /// `vfs_min_mount_data`: the argument size when mount(2) gets data without a length.
    fn min_mount_data(&self) -> usize;

    /// Whether `MNT_UPDATE` may turn a read-write mount read-only (`IMNT_CAN_RWTORO`).
    fn can_rw_to_ro(&self) -> bool {
        true
    }

    /// Where the arguments name a device path to look up (`ufs_args.fspec`): the client
    /// address; `None` for file systems without a device. Bad arguments are `EINVAL`.
    fn device_arg(&self, _data: Option<&[u8]>) -> Result<Option<u64>> {
        Ok(None)
    }

    /// The part of `VFS_MOUNT` that may wait (a device's superblock), before the table is
    /// locked; its result goes to [`FsType::build`].
    fn prepare<'a>(&'a self, _args: PrepareArgs<'a>) -> FsFuture<'a, Box<dyn Any>> {
        ready(Ok(Box::new(())))
    }

    /// The rest of `VFS_MOUNT`, under the mount-table lock: checks the arguments and builds
    /// the mount (`NewMount::build` + `Mount::with`) with its root vnode.
    fn build(&self, nm: &NewMount, args: BuildArgs<'_>) -> Result<Arc<Mount>>;
}

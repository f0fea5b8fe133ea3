//! mount(2) and unmount(2) on the mount table (vfs_mount.c `mount_domount`, `dounmount`,
//! vfs_syscalls.c `mount_update`, `mount_getargs`): dispatch by file-system type, the busy
//! checks, moving current directories onto a new mount, and a mount's identity
//! (`vfs_getnewfsid`). The syscalls' argument handling is in `sys/mount.rs`.
//!
//! Every change of the table happens under its write lock: a new mount is built, checked
//! against the covered vnode and inserted in one step, so two mounts racing for one vnode
//! cannot both win (`EBUSY`), and an unmount's busy scan and removal are atomic with
//! respect to other mounts and unmounts.

use std::sync::Arc;

use super::ops::{BuildArgs, FsType, PrepareArgs};
use super::walk::{Up, WalkUp};
use super::{Mount, Vfs, Vnode};
use crate::abi::*;
use crate::mem::Budget;
use crate::proc::Proc;
use crate::{Errno, Result};

/// Most file systems mounted at once (the root included): each costs kernel memory a
/// client chose to spend, so the table is bounded; beyond it mount(2) is `ENOMEM`.
pub const MOUNTS_MAX: usize = 256;

/// What the VFS hands a file system's mount entry: the generic half of `struct mount`
/// before `VFS_MOUNT` runs.
pub struct NewMount {
    /// The file-system type.
    pub typ: Arc<dyn FsType>,
    /// The vnode the new file system covers.
    pub covered: Arc<Vnode>,
    /// `MNT_*` flags to keep (operation bits removed).
    pub flag: u64,
    /// `f_mntonname`: the covered vnode's path from the global root.
    pub on_name: Vec<u8>,
    /// `f_fsidx` (`vfs_getnewfsid`).
    pub fsidx: [i32; 2],
    /// `f_owner`: who mounted it.
    pub owner: u32,
}

impl NewMount {
    /// The generic mount of the new file system named `from_name` (`f_mntfromname`),
    /// inode numbers from `first_ino`, data charged to `budget`; `MNT_LOCAL` added.
    pub fn build(&self, from_name: &[u8], first_ino: u64, budget: Arc<Budget>) -> Mount {
        Mount::new(
            self.typ.clone(),
            Some(self.covered.clone()),
            self.flag | MNT_LOCAL,
            &self.on_name,
            from_name,
            0,
            first_ino,
            budget,
        )
    }
}

/// A new mount as mount(2) asked for it.
pub struct MountReq<'a> {
    /// The file-system type.
    pub typ: Arc<dyn FsType>,
    /// The `MNT_*` flags given.
    pub flags: u64,
    /// The file system's arguments, copied in.
    pub data: Option<&'a [u8]>,
    /// Who mounts (`f_owner`).
    pub owner: u32,
    /// The device node the arguments name ([`FsType::device_arg`]) and its path.
    pub device: Option<(Arc<Vnode>, Vec<u8>)>,
}

/// `makefstype`: a number made from a type name.
fn makefstype(name: &str) -> i32 {
    name.bytes().fold(0i64, |rv, c| (rv << 2) ^ i64::from(c)) as i32
}

/// The bits of `MNT_BASIC_FLAGS` an update replaces (`MNT_RDONLY` is handled apart).
const UPDATE_FLAGS: u64 = MNT_BASIC_FLAGS & !MNT_RDONLY;

impl Vfs {
    /// `vfs_getnewfsid`: `f_fsidx` for a new mount of type `name`, unique among `mounts`.
    fn new_fsidx(mounts: &[Arc<Mount>], name: &str) -> [i32; 2] {
        let mtype = makefstype(name);
        let mut dev = makedev(mtype as u32 & 0xff, 1) as u32;
        while mounts.iter().any(|m| m.fsidx() == [dev as i32, mtype]) {
            dev = dev.wrapping_add(1);
        }
        [dev as i32, mtype]
    }

    /// `mount_domount` after the caller's checks (`sys/mount.rs`: lookup, type, argument
    /// copy-in, permission, a directory to cover, the device the arguments name): the file
    /// system prepares (what waits: a device's superblock), then builds itself from `data`
    /// (its argument errors come first, as `VFS_MOUNT` runs before the mount point is
    /// validated), then under the table lock the covered vnode must still be free (`EBUSY`
    /// if another mount took it meanwhile), and processes whose current or root directory
    /// was the covered vnode move onto the new root (`mount_checkdirs`).
    pub async fn mount_new(
        &self,
        covered: &Arc<Vnode>,
        req: &MountReq<'_>,
        budget: &Arc<Budget>,
        procs: &[Arc<Proc>],
    ) -> Result<Arc<Mount>> {
        let device = req.device.as_ref().map(|(v, p)| (v, &p[..]));
        let prepared = req
            .typ
            .prepare(PrepareArgs {
                flags: req.flags,
                device,
            })
            .await?;
        let on_name = self.path_of(covered).await?;
        let mut mounts = self.mounts.write().unwrap_or_else(|e| e.into_inner());
        if mounts.len() >= MOUNTS_MAX {
            return Err(Errno::ENOMEM);
        }
        let nm = NewMount {
            typ: req.typ.clone(),
            covered: covered.clone(),
            flag: req.flags & MNT_BASIC_FLAGS,
            on_name,
            fsidx: Vfs::new_fsidx(&mounts, req.typ.name()),
            owner: req.owner,
        };
        let args = BuildArgs {
            vfs: self,
            data: req.data,
            budget,
            prepared,
        };
        let m = req.typ.build(&nm, args)?;
        if covered.mounted_here().is_some() || covered.revoked() {
            return Err(Errno::EBUSY);
        }
        covered.set_mounted_here(Some(m.clone()));
        mounts.push(m.clone());
        drop(mounts);
        let root = m.root().clone();
        for p in procs {
            p.dirs.replace(covered, &root);
        }
        Ok(m)
    }

    /// `mount_update` + the file system's update: `flags` replace the stored flags
    /// (`MNT_RDONLY` set or cleared, the other basic flags as given). Going read-only
    /// first flushes writers: a file of this mount open for writing is `EBUSY` unless
    /// `MNT_FORCE` (then its writes get `EROFS`). On any error nothing changes.
    pub fn mount_update(
        &self,
        m: &Arc<Mount>,
        flags: u64,
        data: Option<&[u8]>,
        procs: &[Arc<Proc>],
    ) -> Result<()> {
        let _table = self.mounts.write().unwrap_or_else(|e| e.into_inner());
        let old = m.flag();
        let mut new = (old & !UPDATE_FLAGS) | (flags & UPDATE_FLAGS);
        if flags & MNT_RDONLY != 0 {
            new |= MNT_RDONLY;
        } else {
            new &= !MNT_RDONLY;
        }
        let to_ro = old & MNT_RDONLY == 0 && new & MNT_RDONLY != 0;
        if to_ro && flags & MNT_FORCE == 0 && writers(m, procs) {
            return Err(Errno::EBUSY);
        }
        m.ops().update(m, old, new, data)?;
        m.set_flag(new);
        Ok(())
    }

    /// `dounmount`: `EBUSY` while another file system is mounted on a directory of this one
    /// (also with `MNT_FORCE`: the other would be left hanging) or, without `MNT_FORCE`,
    /// while a file of it is open or a process has its current or root directory in it.
    /// Forced, those files and directories are dead afterwards (`EIO`). `ENOENT` if it was
    /// unmounted meanwhile. Memory file systems have nothing to write back; the nodes go
    /// with the last reference to them.
    pub fn unmount(&self, m: &Arc<Mount>, flags: u64, procs: &[Arc<Proc>]) -> Result<()> {
        let mut mounts = self.mounts.write().unwrap_or_else(|e| e.into_inner());
        let Some(at) = mounts.iter().position(|x| Arc::ptr_eq(x, m)) else {
            return Err(Errno::ENOENT);
        };
        let nested = mounts
            .iter()
            .any(|x| x.covered().is_some_and(|c| c.on_mount(m)));
        if nested || (flags & MNT_FORCE == 0 && in_use(m, procs)) {
            return Err(Errno::EBUSY);
        }
        m.set_gone();
        mounts.remove(at);
        if let Some(c) = m.covered() {
            c.set_mounted_here(None);
        }
        Ok(())
    }

    /// The path of `vn` from the global root, crossing mount points upwards (what
    /// `f_mntonname` shows whatever path the caller gave); `ENOENT` for a removed
    /// directory, `ENAMETOOLONG` beyond `PATH_MAX`.
    pub async fn path_of(&self, vn: &Arc<Vnode>) -> Result<Vec<u8>> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut total = 1;
        let mut walk = WalkUp::new();
        let mut cur = vn.clone();
        while !Arc::ptr_eq(&cur, self.root()) {
            let parent = match walk.step(&cur).await? {
                Up::Covered(c) => {
                    cur = c;
                    continue;
                }
                Up::Parent(p) => p,
                Up::Top => return Err(Errno::ENOENT),
            };
            let name = parent.name_of(&cur).await?;
            total += name.len() + 1;
            if total > PATH_MAX {
                return Err(Errno::ENAMETOOLONG);
            }
            parts.push(name);
            cur = parent;
        }
        let mut out = Vec::with_capacity(total);
        for name in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(name);
        }
        if out.is_empty() {
            out.push(b'/');
        }
        Ok(out)
    }
}

/// Whether a process has a file of `m` open, or its current or root directory in `m`
/// (`vflush` finding a referenced vnode).
fn in_use(m: &Mount, procs: &[Arc<Proc>]) -> bool {
    procs.iter().any(|p| {
        p.dirs.any(|vn| vn.on_mount(m))
            || p.fd
                .files()
                .iter()
                .any(|f| f.vnode().is_some_and(|vn| vn.on_mount(m)))
    })
}

/// Whether a file of `m` is open for writing (`vflush(WRITECLOSE)`).
fn writers(m: &Mount, procs: &[Arc<Proc>]) -> bool {
    procs.iter().any(|p| {
        p.fd.files().iter().any(|f| {
            f.writable()
                && f.vnode()
                    .is_some_and(|vn| vn.on_mount(m) && vn.vtype() == super::VType::Reg)
        })
    })
}

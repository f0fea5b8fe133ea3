//! rumpfs (sys/rump/librump/rumpvfs/rumpfs.c): the root file system a rump kernel boots with.
//!
//! Memory nodes (crate::vfs::memnode) with rumpfs's visible traits: inode numbers from a
//! counter whose first value is 3, `st_dev` equal to the inode number, `st_blksize` 512, no
//! `.`/`..` in getdents. At boot: `/` 0755, `/dev` 0755, `/tmp` 01777, and the character
//! devices `/dev/null` and `/dev/zero`, mode 0644 as observed on NetBSD's server.

pub mod etfs;

use std::sync::{Arc, Mutex, Weak};

use crate::abi::{Statvfs, Timespec, DEV_BSIZE, MNT_LOCAL, MNT_ROOTFS, NODEV};
use crate::dev::{NULL_DEV, ZERO_DEV};
use crate::mem::Budget;
use crate::vfs::memnode::Dir;
use crate::vfs::ops::{BuildArgs, FsOps, FsType, MountParams};
use crate::vfs::{Attr, Body, Mount, NewMount, VType, Vnode};
use crate::{Errno, Result};

/// First inode number rumpfs hands out.
pub const FIRST_INO: u64 = 3;

fn node(
    m: &Arc<Mount>,
    vtype: VType,
    mode: u32,
    rdev: u64,
    body: Body,
    now: Timespec,
) -> Arc<Vnode> {
    let attr = Attr {
        mode,
        nlink: if vtype == VType::Dir { 2 } else { 1 },
        rdev,
        atime: now,
        mtime: now,
        ctime: now,
        birthtime: now,
        ..Attr::default()
    };
    Vnode::new(Arc::downgrade(m), m.alloc_ino(), vtype, attr, body)
}

fn dir_body(m: &Mount, parent: Weak<Vnode>) -> Body {
    Body::Dir(Mutex::new(Dir::new(parent, m.first_cookie(), m.budget())))
}

fn add(parent: &Arc<Vnode>, name: &[u8], child: Arc<Vnode>) {
    if child.is_dir() {
        parent.update(|a| a.nlink += 1);
    }
    parent
        .dir()
        .expect("directory")
        .insert_forced(name, child)
        .expect("fresh name");
}

/// The rumpfs type: the root file system only.
pub struct RumpfsType;

impl FsType for RumpfsType {
    fn name(&self) -> &str {
        "rumpfs"
    }

    fn min_mount_data(&self) -> usize {
        0
    }

    fn can_rw_to_ro(&self) -> bool {
        false
    }

    /// A second rumpfs instance would share inode numbers with the root's (its st_dev is
    /// the inode number): not offered; tmpfs is the memory file system.
    fn build(&self, _nm: &NewMount, _args: BuildArgs<'_>) -> Result<Arc<Mount>> {
        Err(Errno::EOPNOTSUPP)
    }
}

/// The operations of the rumpfs mount: memory nodes, and the etfs keys.
#[derive(Default)]
pub struct RumpfsOps {
    keys: etfs::Keys,
}

impl FsOps for RumpfsOps {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn params(&self) -> MountParams {
        MountParams {
            dev_is_ino: true,
            blksize: DEV_BSIZE,
            lists_dots: false,
            fixed_bytes: Some(DEV_BSIZE),
            dirent_size: None,
            newest_first: true,
            enforces_flags: false,
            pathconf: crate::vfs::ops::PathconfParams {
                filesize_bits: 43,
                symlinks: true,
                fifofs: false,
            },
        }
    }

    fn statvfs(&self, _m: &Mount, s: &mut Statvfs) {
        (s.bsize, s.blocks) = (DEV_BSIZE, 2);
        (s.frsize, s.iosize) = (s.bsize, s.bsize);
    }

    /// rumpfs_mount answers `MNT_GETARGS` without filling anything in.
    fn getargs(&self, _m: &Mount, given: Vec<u8>) -> Result<Vec<u8>> {
        Ok(given)
    }

    /// rumpfs_lookup's etfs step: at the root the whole remaining path is compared with the
    /// etfs keys, verbatim (netbsd-abi.md §7.2).
    fn lookup_whole(&self, m: &Mount, dir: &Vnode, rest: &[u8]) -> Option<Arc<Vnode>> {
        if !m.is_root(dir) {
            return None;
        }
        self.keys.get(rest)
    }
}

/// The etfs keys of the rumpfs mount `m` (`None` for other mounts).
pub fn keys(m: &Mount) -> Option<&etfs::Keys> {
    m.ops_as::<RumpfsOps>().map(|o| &o.keys)
}

/// Mounts rumpfs on `/` and creates the boot-time nodes.
pub fn mount_root(now: Timespec, budget: Arc<Budget>) -> Arc<Mount> {
    let m = Mount::new(
        Arc::new(RumpfsType),
        None,
        MNT_LOCAL | MNT_ROOTFS,
        b"/",
        b"rumpfs",
        0,
        FIRST_INO,
        budget,
    );
    let m = Arc::new(m.with(Box::<RumpfsOps>::default(), [0, 0], 0, u64::MAX));
    let root = node(&m, VType::Dir, 0o755, NODEV, dir_body(&m, Weak::new()), now);
    m.set_root(root.clone());
    let dev = node(
        &m,
        VType::Dir,
        0o755,
        NODEV,
        dir_body(&m, Arc::downgrade(&root)),
        now,
    );
    add(&root, b"dev", dev.clone());
    let tmp = node(
        &m,
        VType::Dir,
        0o1777,
        NODEV,
        dir_body(&m, Arc::downgrade(&root)),
        now,
    );
    add(&root, b"tmp", tmp);
    for (name, rdev) in [(&b"null"[..], NULL_DEV), (b"zero", ZERO_DEV)] {
        let n = node(&m, VType::Chr, 0o644, rdev, Body::Special, now);
        add(&dev, name, n);
    }
    m
}

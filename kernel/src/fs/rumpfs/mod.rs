//! rumpfs (sys/rump/librump/rumpvfs/rumpfs.c): the root file system a rump kernel boots with.
//!
//! Memory nodes (crate::fs::memnode) with rumpfs's visible traits: inode numbers from a
//! counter whose first value is 3, `st_dev` equal to the inode number, `st_blksize` 512, no
//! `.`/`..` in getdents. At boot: `/` 0755, `/dev` 0755, `/tmp` 01777, and the character
//! devices `/dev/null` and `/dev/zero`, mode 0644 as observed on NetBSD's server.

pub mod etfs;

use std::sync::{Arc, Mutex, Weak};

use crate::abi::{Timespec, MNT_LOCAL, MNT_ROOTFS, NODEV};
use crate::dev::{NULL_DEV, ZERO_DEV};
use crate::fs::memnode::Dir;
use crate::mem::Budget;
use crate::vfs::{Attr, Body, FsKind, Mount, VType, Vnode};

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
    Body::Dir(Mutex::new(Dir::new(parent, 0, m.budget())))
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

/// Mounts rumpfs on `/` and creates the boot-time nodes.
pub fn mount_root(now: Timespec, budget: Arc<Budget>) -> Arc<Mount> {
    let m = Arc::new(Mount::new(
        FsKind::Rumpfs,
        None,
        MNT_LOCAL | MNT_ROOTFS,
        b"/",
        b"rumpfs",
        0,
        FIRST_INO,
        budget,
    ));
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

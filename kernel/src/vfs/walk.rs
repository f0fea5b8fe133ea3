//! The one walk up the tree, built on parent-and-name: `..` in lookup, `vn_isunder`
//! ([`is_under`]), getcwd, the mount-point path (`Vfs::path_of`) and rename's ancestor check
//! all step up with [`WalkUp`], and name a directory in its parent with [`Vnode::name_of`].
//!
//! A memory directory knows its parent (a weak reference rename keeps right; rename refuses
//! to make a cycle). A file system with its own nodes answers `..` from its storage, which a
//! crafted disk image can make point at a descendant: every such step is remembered by
//! (mount, inode) and one met twice ends the walk with `EIO`, so every walk terminates.
//! Those steps go through the file system's `lookup` of `..`, which paces its loop as the
//! engine does for any walk (a yield every few blocks, `EINTR` once the caller is exiting).

use std::collections::HashSet;
use std::sync::Arc;

use super::{Body, Vnode};
use crate::{Errno, Result};

/// Where one step up from a vnode leads.
pub enum Up {
    /// The vnode was the root of a mounted file system: the vnode that mount covers.
    Covered(Arc<Vnode>),
    /// The parent directory within the same file system.
    Parent(Arc<Vnode>),
    /// The vnode is the root of the root file system.
    Top,
}

/// A walk towards the root; it remembers the on-device directories it left through `..`.
#[derive(Default)]
pub struct WalkUp {
    seen: HashSet<(usize, u64)>,
}

impl WalkUp {
    /// A new walk.
    pub fn new() -> WalkUp {
        WalkUp::default()
    }

    /// The parent of directory `dir` within its file system: `ENOENT` when it has none (a
    /// removed directory, a file system's root), `ENOTDIR` for a non-directory, `EIO` when
    /// the walk comes back to a directory it left (a `..` cycle of a corrupt image).
    pub async fn parent(&mut self, dir: &Arc<Vnode>) -> Result<Arc<Vnode>> {
        if let Some(r) = self.parent_now(dir) {
            return r;
        }
        let m = dir.mount()?;
        if !self.seen.insert((Arc::as_ptr(&m) as usize, dir.ino())) {
            return Err(Errno::EIO);
        }
        dir.lookup(b"..").await?.ok_or(Errno::ENOENT)
    }

    /// [`WalkUp::parent`] for a memory directory, which never waits (for callers holding a
    /// lock); `None` for a directory whose file system must be asked.
    pub fn parent_now(&mut self, dir: &Vnode) -> Option<Result<Arc<Vnode>>> {
        match dir.body() {
            Body::Node(_) => None,
            _ => Some(
                dir.dir()
                    .and_then(|d| d.parent.upgrade().ok_or(Errno::ENOENT)),
            ),
        }
    }

    /// One step up from `vn`, crossing a mount root to the vnode it covers.
    pub async fn step(&mut self, vn: &Arc<Vnode>) -> Result<Up> {
        let m = vn.mount()?;
        if m.is_root(vn) {
            return Ok(match m.covered() {
                Some(c) => Up::Covered(c.clone()),
                None => Up::Top,
            });
        }
        self.parent(vn).await.map(Up::Parent)
    }
}

impl Vnode {
    /// The name `child` has in this directory (the name half of parent-and-name); `ENOENT`
    /// when none.
    pub async fn name_of(&self, child: &Vnode) -> Result<Vec<u8>> {
        if let Some(n) = self.node_ops() {
            return n.name_of(self, child).await;
        }
        self.dir()?
            .from(0)
            .find(|(_, e)| std::ptr::eq(&*e.node, child))
            .map(|(_, e)| e.name.clone())
            .ok_or(Errno::ENOENT)
    }
}

/// `vn_isunder(dir, root)`: whether `dir` is `root` or below it, walking up through parents
/// and the directories mounts cover. A loop, not a recursion: the walk is as long as the
/// tree is deep, and a `..` cycle of a crafted image ends it ([`WalkUp`]): not under.
pub async fn is_under(dir: &Arc<Vnode>, root: &Arc<Vnode>) -> bool {
    let mut walk = WalkUp::new();
    let mut cur = dir.clone();
    loop {
        if Arc::ptr_eq(&cur, root) {
            return true;
        }
        match walk.step(&cur).await {
            Ok(Up::Covered(u) | Up::Parent(u)) => cur = u,
            Ok(Up::Top) | Err(_) => return false,
        }
    }
}

//! Name lookup (`namei`, vfs_lookup.c): components, `.` and `..`, mount points, symbolic
//! links, trailing slashes, and NetBSD's limits.
//!
//! Each step locks one directory just long enough to fetch the child's `Arc`; nothing global
//! is taken. The walk is `async` so that file systems whose directories live on a
//! device (FFS, through the buffer cache) can wait for a block; memory directories never
//! wait. A symbolic link is spliced into the remaining path (at most `MAXSYMLINKS`
//! times, then `ELOOP`; a spliced path of `PATH_MAX` or more is `ENAMETOOLONG`).

use std::sync::Arc;

use super::{access, VType, Vnode};
use crate::abi::{MAXSYMLINKS, NAME_MAX, PATH_MAX, X_OK};
use crate::proc::Cred;
use crate::{Errno, Result};

/// Who looks up, and where `/` is for them.
pub struct Nd {
    /// The process root (`cwdi_rdir`, or the file system root).
    pub root: Arc<Vnode>,
    /// Credentials for the search permission checks.
    pub cred: Cred,
}

/// The result of a lookup for creation, removal or renaming: the parent directory, the last
/// component and the node it names, if any.
#[derive(Debug)]
pub struct Found {
    /// Directory holding the last component; `None` when the path names the root (`/`).
    pub dir: Option<Arc<Vnode>>,
    /// The last component (`.` and `..` included as such); empty for `/`.
    pub name: Vec<u8>,
    /// The node the last component names, if it exists.
    pub node: Option<Arc<Vnode>>,
    /// The path ended in one or more slashes.
    pub slash: bool,
}

impl Found {
    /// The directory to create a non-directory named by the last component in: `EEXIST` if
    /// the name exists (or is `/`), `ENOENT` for a trailing slash (namei's `lookup_once`
    /// wants a directory there, and the new node will not be one).
    pub fn create_in(&self) -> Result<&Arc<Vnode>> {
        if self.node.is_some() {
            return Err(Errno::EEXIST);
        }
        let dir = self.dir.as_ref().ok_or(Errno::EEXIST)?;
        if self.slash {
            return Err(Errno::ENOENT);
        }
        Ok(dir)
    }

    /// Whether the last component is `.` or `..` (or the path is `/`).
    pub fn is_dot(&self) -> bool {
        matches!(&self.name[..], b"" | b"." | b"..")
    }

    /// Whether the path names the root of a file system with no parent on the same mount
    /// (`/`, a mount point, a symbolic link to either). NetBSD's namei (vfs_lookup.c
    /// `namei_oneroot`) refuses those for anything but a plain lookup: creating is
    /// `EEXIST`, removing or renaming `EBUSY`.
    pub fn at_mount_root(&self) -> bool {
        match (&self.dir, &self.node) {
            (None, _) => true,
            (Some(d), Some(n)) => match (d.mount(), n.mount()) {
                (Ok(a), Ok(b)) => !Arc::ptr_eq(&a, &b),
                _ => false,
            },
            (Some(_), None) => false,
        }
    }
}

/// Looks `path` up from `start` (used for relative paths); the last component's symbolic
/// link is followed when `follow` is set. Missing → `ENOENT`.
pub async fn namei(nd: &Nd, start: &Arc<Vnode>, path: &[u8], follow: bool) -> Result<Arc<Vnode>> {
    let f = walk(nd, start, path, follow, false).await?;
    f.node.ok_or(Errno::ENOENT)
}

/// Looks up the parent of `path`'s last component (`LOCKPARENT`): the last component may be
/// missing. With `follow`, a symbolic link as last component is followed (open with
/// `O_CREAT`), so the result names the link's target.
pub async fn namei_parent(nd: &Nd, start: &Arc<Vnode>, path: &[u8], follow: bool) -> Result<Found> {
    walk(nd, start, path, follow, true).await
}

/// `vn_isunder(dir, root)`: whether `dir` is `root` or below it, walking up through parents
/// (an FFS directory's `..` entry) and the directories mounts cover. A loop, not a
/// recursion: the walk is as long as the tree is deep, and a `..` cycle of a crafted FFS
/// image ends it (each FFS directory is passed at most once; each `..` read paces the loop).
pub async fn is_under(dir: &Arc<Vnode>, root: &Arc<Vnode>) -> bool {
    let mut cur = dir.clone();
    // FFS directories (mount, inode) left through their `..` entries: a crafted image can
    // make `..` name a descendant, and a walk that comes back to a directory is not under
    // anything (memory directories' parents cannot form a cycle: rename refuses to make one).
    let mut ffs_seen = std::collections::HashSet::new();
    loop {
        if Arc::ptr_eq(&cur, root) {
            return true;
        }
        let Ok(m) = cur.mount() else {
            return false;
        };
        let up = if m.is_root(&cur) {
            m.covered().cloned()
        } else if let super::Body::Ffs(_) = cur.body() {
            if !ffs_seen.insert((Arc::as_ptr(&m) as usize, cur.ino())) {
                return false;
            }
            crate::fs::ffs::lookup(&cur, b"..").await.ok().flatten()
        } else {
            cur.dir().ok().and_then(|d| d.parent.upgrade())
        };
        match up {
            Some(u) => cur = u,
            None => return false,
        }
    }
}

/// Whether `vn` is the root of the root file system (`rootvnode`).
fn is_global_root(vn: &Vnode) -> bool {
    vn.mount()
        .is_ok_and(|m| m.covered().is_none() && m.is_root(vn))
}

/// `..` of `dir`: stays at the process root, crosses back over mount points. After chroot,
/// `..` of a directory outside the process root (reached through a descriptor opened
/// before) is the process root, as vfs_lookup.c `lookup_once` ("detected outside of its
/// chroot"): the walk up never leaves the root.
///
/// `inside` says `dir` is known to be under the process root. NetBSD checks at every `..`;
/// here once per lookup: a walk only goes down, or up stopping at the root, so once a
/// directory of it is under the root, all later ones are (a check per `..` would cost the
/// tree's depth per component).
async fn dotdot(nd: &Nd, dir: &Arc<Vnode>, inside: &mut bool) -> Result<Arc<Vnode>> {
    if !*inside {
        *inside = true;
        if !is_global_root(&nd.root) && !is_under(dir, &nd.root).await {
            return Ok(nd.root.clone());
        }
    }
    let mut cur = dir.clone();
    loop {
        if Arc::ptr_eq(&cur, &nd.root) {
            return Ok(cur);
        }
        let m = cur.mount()?;
        if m.is_root(&cur) {
            match m.covered() {
                Some(c) => {
                    cur = c.clone();
                    continue;
                }
                None => return Ok(cur),
            }
        }
        if let super::Body::Ffs(_) = cur.body() {
            return crate::fs::ffs::lookup(&cur, b"..")
                .await?
                .ok_or(Errno::ENOENT);
        }
        let parent = cur.dir()?.parent.upgrade();
        return parent.ok_or(Errno::ENOENT);
    }
}

/// The child `name` of `dir`, past any file systems mounted on it.
async fn child(dir: &Arc<Vnode>, name: &[u8]) -> Result<Option<Arc<Vnode>>> {
    let found = match dir.body() {
        super::Body::Ffs(_) => crate::fs::ffs::lookup(dir, name).await?,
        _ => dir.dir()?.get(name).cloned(),
    };
    Ok(found.map(|mut vn| {
        while let Some(m) = vn.mounted_here() {
            vn = m.root().clone();
        }
        vn
    }))
}

/// rumpfs_lookup's etfs step: at the rumpfs root the whole remaining path is compared with
/// the etfs keys, verbatim (netbsd-abi.md §7.2).
fn etfs_key(cur: &Arc<Vnode>, rest: &[u8]) -> Option<Arc<Vnode>> {
    let m = cur.mount().ok()?;
    if m.kind() != super::FsKind::Rumpfs || !m.is_root(cur) {
        return None;
    }
    m.etfs().get(rest)
}

async fn walk(
    nd: &Nd,
    start: &Arc<Vnode>,
    path: &[u8],
    follow: bool,
    parent: bool,
) -> Result<Found> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let mut buf = path.to_vec();
    let mut pos = 0;
    let mut links = 0;
    // Whether `cur` is known to be under the process root (see `dotdot`).
    let mut inside = buf[0] == b'/';
    let mut cur = if buf[0] == b'/' {
        nd.root.clone()
    } else {
        start.clone()
    };
    // A current or root directory in a forcibly unmounted file system is dead.
    if cur.revoked() {
        return Err(Errno::EIO);
    }
    loop {
        while buf.get(pos) == Some(&b'/') {
            pos += 1;
        }
        if pos == buf.len() {
            // Nothing but slashes left: the path names `cur` itself (`/`, or a link to `/`).
            if !cur.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            return Ok(Found {
                dir: None,
                name: Vec::new(),
                node: Some(cur),
                slash: true,
            });
        }
        if let Some(vn) = etfs_key(&cur, &buf[pos..]) {
            return Ok(Found {
                dir: Some(cur),
                name: buf[pos..].to_vec(),
                node: Some(vn),
                slash: false,
            });
        }
        let end = buf[pos..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(buf.len(), |i| pos + i);
        let comp = buf[pos..end].to_vec();
        pos = end;
        if comp.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let mut after = pos;
        while buf.get(after) == Some(&b'/') {
            after += 1;
        }
        let last = after == buf.len();
        let slash = last && pos < buf.len();
        if !cur.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        access::check(&nd.cred, VType::Dir, &cur.attr(), X_OK)?;
        let next = match &comp[..] {
            b"." => Some(cur.clone()),
            b".." => Some(dotdot(nd, &cur, &mut inside).await?),
            _ => child(&cur, &comp).await?,
        };
        let is_link = next.as_ref().is_some_and(|v| v.vtype() == VType::Lnk);
        if is_link && (!last || follow || slash) {
            links += 1;
            if links > MAXSYMLINKS {
                return Err(Errno::ELOOP);
            }
            let link = next.expect("checked");
            let target = match link.body() {
                super::Body::Ffs(_) => crate::fs::ffs::readlink(&link).await?,
                _ => link.link_target().unwrap_or_default().to_vec(),
            };
            if target.is_empty() {
                return Err(Errno::ENOENT);
            }
            let mut spliced = target.to_vec();
            spliced.extend_from_slice(&buf[pos..]);
            if spliced.len() >= PATH_MAX {
                return Err(Errno::ENAMETOOLONG);
            }
            buf = spliced;
            pos = 0;
            if buf[0] == b'/' {
                cur = nd.root.clone();
            }
            continue;
        }
        if last {
            if slash && next.as_ref().is_some_and(|v| !v.is_dir()) {
                return Err(Errno::ENOTDIR);
            }
            if next.is_none() && !parent {
                return Err(Errno::ENOENT);
            }
            return Ok(Found {
                dir: Some(cur),
                name: comp,
                node: next,
                slash,
            });
        }
        cur = next.ok_or(Errno::ENOENT)?;
    }
}

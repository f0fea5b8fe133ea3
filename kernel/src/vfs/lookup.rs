//! Name lookup (`namei`, vfs_lookup.c): components, `.` and `..`, mount points, symbolic
//! links, trailing slashes, and NetBSD's limits.
//!
//! Each step locks one directory just long enough to fetch the child's `Arc`; nothing global
//! is taken. The walk is `async` so that file systems whose directories live on a
//! device (through the buffer cache) can wait for a block; memory directories never
//! wait. A symbolic link is spliced into the remaining path (at most `MAXSYMLINKS`
//! times, then `ELOOP`; a spliced path of `PATH_MAX` or more is `ENAMETOOLONG`).

use std::sync::Arc;

use super::walk::{is_under, Up, WalkUp};
use super::{access, NameOp, VType, Vnode};
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
    let f = walk(nd, start, path, follow, None).await?;
    f.node.ok_or(Errno::ENOENT)
}

/// Looks up the parent of `path`'s last component (`LOCKPARENT`): the last component may be
/// missing. With `follow`, a symbolic link as last component is followed (open with
/// `O_CREAT`), so the result names the link's target. `op` is what the last component is
/// looked up for (`cn_nameiop`), told to the file system.
pub async fn namei_parent(
    nd: &Nd,
    start: &Arc<Vnode>,
    path: &[u8],
    follow: bool,
    op: NameOp,
) -> Result<Found> {
    walk(nd, start, path, follow, Some(op)).await
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
    let mut walk = WalkUp::new();
    let mut cur = dir.clone();
    loop {
        if Arc::ptr_eq(&cur, &nd.root) {
            return Ok(cur);
        }
        match walk.step(&cur).await? {
            Up::Covered(c) => cur = c,
            Up::Parent(p) => return Ok(p),
            Up::Top => return Ok(cur),
        }
    }
}

/// The child `name` of `dir`, past any file systems mounted on it.
async fn child(dir: &Arc<Vnode>, name: &[u8], op: NameOp) -> Result<Option<Arc<Vnode>>> {
    let found = dir.lookup_for(name, op).await?;
    Ok(found.map(|mut vn| {
        while let Some(m) = vn.mounted_here() {
            vn = m.root().clone();
        }
        vn
    }))
}

/// A file system's step that takes the whole remaining path (`FsOps::lookup_whole`: at
/// the root file system's root the host-file keys, compared verbatim, netbsd-abi.md §7.2).
fn whole_path(cur: &Arc<Vnode>, rest: &[u8]) -> Option<Arc<Vnode>> {
    let m = cur.mount().ok()?;
    m.ops().lookup_whole(&m, cur, rest)
}

async fn walk(
    nd: &Nd,
    start: &Arc<Vnode>,
    path: &[u8],
    follow: bool,
    parent: Option<NameOp>,
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
        if let Some(vn) = whole_path(&cur, &buf[pos..]) {
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
        // Removing or renaming `.` or `..` on a read-only mount: the file system's lookup
        // refuses before anything else (ufs_lookup, tmpfs_lookup: `EROFS` ahead of the
        // `EINVAL`/`ENOTEMPTY` the calls themselves would give).
        if last
            && matches!(parent, Some(NameOp::Delete | NameOp::Rename))
            && matches!(&comp[..], b"." | b"..")
            && cur.read_only()
        {
            return Err(Errno::EROFS);
        }
        let next = match &comp[..] {
            b"." => Some(cur.clone()),
            b".." => Some(dotdot(nd, &cur, &mut inside).await?),
            _ => {
                let op = match parent {
                    Some(op) if last => op,
                    _ => NameOp::Lookup,
                };
                child(&cur, &comp, op).await?
            }
        };
        let is_link = next.as_ref().is_some_and(|v| v.vtype() == VType::Lnk);
        if is_link && (!last || follow || slash) {
            links += 1;
            if links > MAXSYMLINKS {
                return Err(Errno::ELOOP);
            }
            let link = next.expect("checked");
            let target = link.readlink().await?;
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
            if next.is_none() && parent.is_none() {
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

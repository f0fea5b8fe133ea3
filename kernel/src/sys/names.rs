//! Name-space doors for factions outside this crate: the socket layer binds and connects to
//! socket nodes (`VSOCK`) by path, relative to the calling process's directories.

use std::sync::Arc;

use crate::abi::ALLPERMS;
use crate::vfs::{self, NameOp, NewNode, VType, Vnode};
use crate::{Kernel, Proc, Result};

/// `namei(LOOKUP)` of `path` (already in the kernel, NUL-free) for `p`: symbolic links of
/// the last component followed when `follow`. `ENOSYS` without the VFS.
pub async fn lookup(k: &Kernel, p: &Proc, path: &[u8], follow: bool) -> Result<Arc<Vnode>> {
    let v = k.vfs()?;
    let nd = vfs::Nd {
        root: p.dirs.root(v),
        cred: p.cred(),
    };
    let start = p.dirs.cwd(v);
    vfs::namei(&nd, &start, path, follow).await
}

/// `namei(CREATE)` + `VOP_CREATE` of a node of type `vtype` with permissions `mode` (the
/// caller applies the umask) at `path` for `p`: `EEXIST` when the name exists.
pub async fn create(
    k: &Kernel,
    p: &Proc,
    path: &[u8],
    vtype: VType,
    mode: u32,
) -> Result<Arc<Vnode>> {
    let v = k.vfs()?;
    let nd = vfs::Nd {
        root: p.dirs.root(v),
        cred: p.cred(),
    };
    let start = p.dirs.cwd(v);
    let f = vfs::namei_parent(&nd, &start, path, true, NameOp::Create).await?;
    let dir = f.create_in()?;
    let new = NewNode {
        vtype,
        mode: mode & ALLPERMS,
        rdev: crate::abi::NODEV,
        target: b"",
    };
    v.create(&p.cred(), dir, &f.name, &new).await
}

/// `VOP_ACCESS(vn, want)` for `p`'s credentials (`want`: `R_OK`/`W_OK`/`X_OK` bits).
pub fn access(p: &Proc, vn: &Vnode, want: u32) -> Result<()> {
    vfs::access::check(&p.cred(), vn.vtype(), &vn.attr(), want)
}

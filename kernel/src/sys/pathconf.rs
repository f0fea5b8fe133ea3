//! pathconf/fpathconf/lpathconf (vfs_syscalls.c, `VOP_PATHCONF` of the memory file systems).

use super::at::{self, vfs};
use super::{ret, Args, Ctx, SysResult};
use crate::abi::*;
use crate::vfs::Vnode;
use crate::{Errno, UserMem};

/// `VOP_PATHCONF` of a memory file system; unknown names `EINVAL`.
fn pathconf_of(vn: &Vnode, name: i32) -> SysResult {
    let v: i64 = match name {
        PC_LINK_MAX => i64::from(LINK_MAX),
        PC_NAME_MAX => vn.mount()?.name_max() as i64,
        PC_PATH_MAX => PATH_MAX as i64,
        PC_PIPE_BUF => PIPE_BUF as i64,
        PC_CHOWN_RESTRICTED | PC_NO_TRUNC | PC_SYNC_IO | PC_2_SYMLINKS => 1,
        // NetBSD's root file system: 43 file-size bits, MAXPATHLEN for symbolic links.
        PC_FILESIZEBITS => 43,
        PC_SYMLINK_MAX => PATH_MAX as i64,
        _ => return Err(Errno::EINVAL),
    };
    ret(v)
}

/// `pathconf(path, name)`; `pathconf(2)`.
pub async fn pathconf<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let vn = at::lookup(c, AT_FDCWD, a.word(0), true).await?;
    pathconf_of(&vn, a.int(1))
}

/// `lpathconf(path, name)` — of a symbolic link itself; `lpathconf(2)`.
pub async fn lpathconf<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let vn = at::lookup(c, AT_FDCWD, a.word(0), false).await?;
    pathconf_of(&vn, a.int(1))
}

/// `fpathconf(fd, name)`; `fpathconf(2)`. Not a vnode → `EINVAL`... except that a pipe
/// answers `_PC_PIPE_BUF`.
pub fn fpathconf<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    vfs(c)?;
    let fp = c.p.fd.get(a.int(0))?;
    match fp.vnode() {
        Some(vn) => pathconf_of(vn, a.int(1)),
        None if a.int(1) == PC_PIPE_BUF && matches!(fp.kind(), crate::file::FileKind::Pipe(_)) => {
            ret(PIPE_BUF as i64)
        }
        None => Err(Errno::EINVAL),
    }
}

//! pathconf/fpathconf/lpathconf (vfs_syscalls.c, `VOP_PATHCONF` of the memory file systems).

use super::at;
use super::{ret, Args, Ctx, SysResult};
use crate::abi::*;
use crate::file::FileKind;
use crate::vfs::{VType, Vnode};
use crate::{Errno, UserMem};

/// `VOP_PATHCONF`: device nodes answer specfs's values (`spec_pathconf`), FIFOs fifofs's
/// where the file system hands them to it (`fifo_pathconf`; NetBSD's rump kernel has no
/// fifofs and answers `EOPNOTSUPP` there, its full kernel these), every other node its file
/// system's (`MountParams::pathconf`); unknown names `EINVAL`.
fn pathconf_of(vn: &Vnode, name: i32) -> SysResult {
    let m = vn.mount()?;
    let fs = m.params().pathconf;
    let v: i64 = match (vn.vtype(), name) {
        (_, PC_LINK_MAX) => i64::from(LINK_MAX),
        (_, PC_PIPE_BUF) => PIPE_BUF as i64,
        (_, PC_CHOWN_RESTRICTED | PC_SYNC_IO) => 1,
        (VType::Chr | VType::Blk, PC_MAX_CANON | PC_MAX_INPUT) => MAX_CANON,
        (VType::Chr | VType::Blk, PC_VDISABLE) => VDISABLE,
        (VType::Chr | VType::Blk, _) => return Err(Errno::EINVAL),
        (VType::Fifo, _) if fs.fifofs => return Err(Errno::EINVAL),
        (_, PC_NAME_MAX) => m.name_max() as i64,
        (_, PC_PATH_MAX) => PATH_MAX as i64,
        (_, PC_NO_TRUNC) => 1,
        (_, PC_FILESIZEBITS) => fs.filesize_bits,
        (_, PC_SYMLINK_MAX) if fs.symlinks => PATH_MAX as i64,
        (_, PC_2_SYMLINKS) if fs.symlinks => 1,
        _ => return Err(Errno::EINVAL),
    };
    ret(v)
}

/// `MAX_CANON` and `MAX_INPUT` (`sys/syslimits.h`), a device's answer.
const MAX_CANON: i64 = 255;
/// `_POSIX_VDISABLE`, a device's answer.
const VDISABLE: i64 = 0xff;

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

/// `fpathconf(fd, name)`; `fpathconf(2)`: a vnode's `VOP_PATHCONF`, a pipe's `_PC_PIPE_BUF`
/// (any other name `EINVAL`), a kqueue `EINVAL`, any other file `EOPNOTSUPP`
/// (`sys_fpathconf`).
pub fn fpathconf<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let fp = c.p.fd.get(a.int(0))?;
    if let Some(vn) = fp.vnode() {
        return pathconf_of(vn, a.int(1));
    }
    match fp.kind() {
        FileKind::Pipe(_) if a.int(1) == PC_PIPE_BUF => ret(PIPE_BUF as i64),
        FileKind::Pipe(_) | FileKind::Kqueue(_) => Err(Errno::EINVAL),
        _ => Err(Errno::EOPNOTSUPP),
    }
}

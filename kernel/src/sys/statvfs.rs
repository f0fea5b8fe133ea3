//! File-system statistics: statvfs1/fstatvfs1/getvfsstat under the old (356–358, `struct
//! statvfs90`) and the new (483–485) numbers (vfs_syscalls.c `do_sys_pstatvfs`).

use super::at::{self, vfs};
use super::{ret, Args, Ctx, SysResult};
use crate::abi::{Statvfs, AT_FDCWD, STATVFS90_SIZE, STATVFS_SIZE};
use crate::{copy, UserMem};

fn encode(s: &Statvfs, old: bool) -> Vec<u8> {
    if old {
        s.encode90()
    } else {
        s.encode()
    }
}

/// `statvfs1(path, buf, flags)`; `old` selects `struct statvfs90`; `statvfs(2)`.
pub async fn statvfs1<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>, old: bool) -> SysResult {
    let vn = at::lookup(c, AT_FDCWD, a.word(0), true).await?;
    let m = vn.mount()?;
    drop(vn);
    m.ops().settle().await?;
    let s = m.statvfs();
    copy::copyout(c.mem, a.word(1), &encode(&s, old)).await?;
    ret(0)
}

/// `fstatvfs1(fd, buf, flags)`; `fstatvfs(2)`.
pub async fn fstatvfs1<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>, old: bool) -> SysResult {
    vfs(c)?;
    let vn = at::fd_vnode(c, a.int(0))?;
    let m = vn.mount()?;
    drop(vn);
    m.ops().settle().await?;
    let s = m.statvfs();
    copy::copyout(c.mem, a.word(1), &encode(&s, old)).await?;
    ret(0)
}

/// `getvfsstat(buf, bufsize, flags)` — statistics of every mount that fits; with a NULL
/// buffer the number of mounts; `getvfsstat(2)`.
pub async fn getvfsstat<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>, old: bool) -> SysResult {
    let v = vfs(c)?;
    let mounts = v.mounts();
    let (buf, size) = (a.word(0), a.word(1));
    if buf == 0 {
        return ret(mounts.len() as i64);
    }
    let each = if old { STATVFS90_SIZE } else { STATVFS_SIZE } as u64;
    let mut n = 0;
    for m in mounts.iter().take((size / each) as usize) {
        let addr = buf + n * each;
        m.ops().settle().await?;
        copy::copyout(c.mem, addr, &encode(&m.statvfs(), old)).await?;
        n += 1;
    }
    ret(n as i64)
}

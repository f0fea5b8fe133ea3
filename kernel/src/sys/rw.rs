//! read/write and readv/writev (sys_generic.c).

use std::sync::Arc;

use super::{ret, Args, Ctx, SysResult};
use crate::abi::{IOVEC_SIZE, IOV_MAX, O_NOSIGPIPE, SIGPIPE, SSIZE_MAX};
use crate::file::{File, Iov};
use crate::{copy, Errno, UserMem};

/// `read(fd, buf, nbyte)` — reads from a descriptor; `read(2)`.
pub async fn read<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let fp = c.p.fd.get(a.int(0))?;
    if !fp.readable() {
        return Err(Errno::EBADF);
    }
    let iov = [Iov {
        base: a.word(1),
        len: a.word(2),
    }];
    if iov[0].len > SSIZE_MAX {
        return Err(Errno::EINVAL);
    }
    let (done, res) = fp.read(c.k, c.mem, &iov).await;
    finish(c, &fp, done, res)
}

/// `write(fd, buf, nbyte)` — writes to a descriptor; `write(2)`.
pub async fn write<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let fp = c.p.fd.get(a.int(0))?;
    if !fp.writable() {
        return Err(Errno::EBADF);
    }
    let iov = [Iov {
        base: a.word(1),
        len: a.word(2),
    }];
    if iov[0].len > SSIZE_MAX {
        return Err(Errno::EINVAL);
    }
    let (done, res) = fp.write(c.k, c.mem, &iov).await;
    finish(c, &fp, done, res)
}

/// `readv(fd, iov, iovcnt)` — scatter read; `readv(2)`.
pub async fn readv<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let (fp, iov) = vector(c, a, File::readable).await?;
    let (done, res) = fp.read(c.k, c.mem, &iov).await;
    finish(c, &fp, done, res)
}

/// `writev(fd, iov, iovcnt)` — gather write; `writev(2)`.
pub async fn writev<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let (fp, iov) = vector(c, a, File::writable).await?;
    let (done, res) = fp.write(c.k, c.mem, &iov).await;
    finish(c, &fp, done, res)
}

/// The checks of `do_filereadv`/`do_filewritev`, in NetBSD's order: `iovcnt` 0, descriptor,
/// access mode, `iovcnt` above `IOV_MAX`, the iovec copy, lengths above `SSIZE_MAX`.
async fn vector<M: UserMem>(
    c: &Ctx<'_, M>,
    a: Args<'_>,
    allowed: fn(&File) -> bool,
) -> Result<(Arc<File>, Vec<Iov>), Errno> {
    let iovcnt = a.int(2);
    if iovcnt == 0 {
        return Err(Errno::EINVAL);
    }
    let fp = c.p.fd.get(a.int(0))?;
    if !allowed(&fp) {
        return Err(Errno::EBADF);
    }
    let n = iovcnt as u32 as usize;
    if n > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let raw = copy::copyin(c.mem, a.word(1), n * IOVEC_SIZE).await?;
    let mut total = 0u64;
    let mut iov = Vec::with_capacity(n);
    for e in raw.chunks_exact(IOVEC_SIZE) {
        let base = u64::from_le_bytes(e[..8].try_into().expect("8 bytes"));
        let len = u64::from_le_bytes(e[8..].try_into().expect("8 bytes"));
        total = total.saturating_add(len);
        if len > SSIZE_MAX || total > SSIZE_MAX {
            return Err(Errno::EINVAL);
        }
        iov.push(Iov { base, len });
    }
    Ok((fp, iov))
}

/// NetBSD's ending of a transfer: an interrupted partial transfer counts as success; `EPIPE`
/// posts `SIGPIPE` unless the file has `O_NOSIGPIPE`.
fn finish<M: UserMem>(c: &Ctx<'_, M>, fp: &File, done: u64, res: Result<(), Errno>) -> SysResult {
    match res {
        Ok(()) => ret(done as i64),
        Err(Errno::EINTR | Errno::EAGAIN) if done > 0 => ret(done as i64),
        Err(e) => {
            if e == Errno::EPIPE && fp.flag() & O_NOSIGPIPE == 0 {
                c.mem.raise(SIGPIPE);
            }
            Err(e)
        }
    }
}

//! read/write and readv/writev (sys_generic.c).

use std::sync::Arc;

use super::{ret, Args, Ctx, SysResult};
use crate::abi::{
    IOVEC_SIZE, IOV_MAX, O_APPEND, O_NOSIGPIPE, RLIMIT_FSIZE, SIGPIPE, SIGXFSZ, SSIZE_MAX,
};
use crate::file::{File, Iov};
use crate::vfs::VType;
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
    let (done, res) = fp.read(c.k, c.p, c.mem, &iov).await;
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
    fsize_check(c, &fp, None, &iov)?;
    let (done, res) = fp.write(c.k, c.p, c.mem, &iov).await;
    finish(c, &fp, done, res)
}

/// `readv(fd, iov, iovcnt)` — scatter read; `readv(2)`.
pub async fn readv<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let (fp, iov) = vector(c, a, File::readable).await?;
    let (done, res) = fp.read(c.k, c.p, c.mem, &iov).await;
    finish(c, &fp, done, res)
}

/// `writev(fd, iov, iovcnt)` — gather write; `writev(2)`.
pub async fn writev<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let (fp, iov) = vector(c, a, File::writable).await?;
    fsize_check(c, &fp, None, &iov)?;
    let (done, res) = fp.write(c.k, c.p, c.mem, &iov).await;
    finish(c, &fp, done, res)
}

/// The checks of pread/pwrite in NetBSD's order: descriptor, access mode, a seekable vnode
/// (`ESPIPE`), a non-negative offset (`EINVAL`; devices may take any).
fn positional<M>(c: &Ctx<'_, M>, fd: i32, read: bool, off: i64) -> Result<Arc<File>, Errno> {
    let fp = c.p.fd.get(fd)?;
    if !(if read { fp.readable() } else { fp.writable() }) {
        return Err(Errno::EBADF);
    }
    let vn = fp.vnode().ok_or(Errno::ESPIPE)?;
    match vn.vtype() {
        VType::Fifo => return Err(Errno::ESPIPE),
        VType::Chr | VType::Blk => {}
        _ if off < 0 => return Err(Errno::EINVAL),
        _ => {}
    }
    Ok(fp)
}

/// `pread(fd, buf, nbyte, PAD, offset)` — reads at an offset; `pread(2)`.
pub async fn pread<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let fp = positional(c, a.int(0), true, a.long(4))?;
    let iov = [Iov {
        base: a.word(1),
        len: a.word(2),
    }];
    if iov[0].len > SSIZE_MAX {
        return Err(Errno::EINVAL);
    }
    let (done, res) = fp.read_at(c.k, c.p, c.mem, &iov, a.long(4)).await;
    finish(c, &fp, done, res)
}

/// `pwrite(fd, buf, nbyte, PAD, offset)` — writes at an offset (at the end with
/// `O_APPEND`, as NetBSD); `pwrite(2)`.
pub async fn pwrite<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let fp = positional(c, a.int(0), false, a.long(4))?;
    let iov = [Iov {
        base: a.word(1),
        len: a.word(2),
    }];
    if iov[0].len > SSIZE_MAX {
        return Err(Errno::EINVAL);
    }
    fsize_check(c, &fp, Some(a.long(4)), &iov)?;
    let (done, res) = fp.write_at(c.k, c.p, c.mem, &iov, a.long(4)).await;
    finish(c, &fp, done, res)
}

/// `preadv(fd, iov, iovcnt, PAD, offset)`; `preadv(2)`.
pub async fn preadv<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    if a.int(2) != 0 {
        positional(c, a.int(0), true, a.long(4))?;
    }
    let (fp, iov) = vector(c, a, File::readable).await?;
    let (done, res) = fp.read_at(c.k, c.p, c.mem, &iov, a.long(4)).await;
    finish(c, &fp, done, res)
}

/// `pwritev(fd, iov, iovcnt, PAD, offset)`; `pwritev(2)`.
pub async fn pwritev<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    if a.int(2) != 0 {
        positional(c, a.int(0), false, a.long(4))?;
    }
    let (fp, iov) = vector(c, a, File::writable).await?;
    fsize_check(c, &fp, Some(a.long(4)), &iov)?;
    let (done, res) = fp.write_at(c.k, c.p, c.mem, &iov, a.long(4)).await;
    finish(c, &fp, done, res)
}

/// `lseek(fd, PAD, offset, whence)` — moves the file offset; `lseek(2)`.
pub fn lseek<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let fp = c.p.fd.get(a.int(0))?;
    ret(fp.seek(a.long(2), a.int(3))?)
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

/// `enforce_rlimit_fsize` (vfs_vnops.c `vn_write`): a write to a regular file that would
/// reach past the caller's `RLIMIT_FSIZE` — from the end with `O_APPEND`, else from `at` or
/// the file offset — fails whole with `EFBIG` and posts SIGXFSZ, also when it moves no byte.
/// Done here, before the vnode's I/O, as NetBSD does before `VOP_WRITE`.
fn fsize_check<M: UserMem>(
    c: &Ctx<'_, M>,
    fp: &File,
    at: Option<i64>,
    iov: &[Iov],
) -> Result<(), Errno> {
    let Some(vn) = fp.vnode() else {
        return Ok(());
    };
    if vn.vtype() != VType::Reg {
        return Ok(());
    }
    let start = if fp.flag() & O_APPEND != 0 {
        vn.size()
    } else {
        at.unwrap_or_else(|| fp.offset()).max(0) as u64
    };
    let resid = iov.iter().fold(0u64, |t, v| t.saturating_add(v.len));
    if start.saturating_add(resid) > c.p.rlimit_cur(RLIMIT_FSIZE) {
        psignal(c, SIGXFSZ);
        return Err(Errno::EFBIG);
    }
    Ok(())
}

/// `psignal` in a rump kernel (RUMP_SIGMODEL_RAISE): the client raises `signo` to itself;
/// the process's `EVFILT_SIGNAL` knotes count it.
fn psignal<M: UserMem>(c: &Ctx<'_, M>, signo: u32) {
    c.p.notes.signal(signo);
    c.mem.raise(signo);
}

/// NetBSD's ending of a transfer: an interrupted partial transfer counts as success; `EPIPE`
/// posts `SIGPIPE` unless the file has `O_NOSIGPIPE`.
fn finish<M: UserMem>(c: &Ctx<'_, M>, fp: &File, done: u64, res: Result<(), Errno>) -> SysResult {
    match res {
        Ok(()) => ret(done as i64),
        Err(Errno::EINTR | Errno::EAGAIN) if done > 0 => ret(done as i64),
        Err(e) => {
            if e == Errno::EPIPE && fp.flag() & O_NOSIGPIPE == 0 {
                psignal(c, SIGPIPE);
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::abi::sysnum::*;
    use crate::testutil::{int, Fixture, Req};
    use crate::Errno;

    fn iovecs(list: &[(u64, u64)]) -> Vec<u8> {
        list.iter()
            .flat_map(|(b, l)| [b.to_le_bytes(), l.to_le_bytes()].concat())
            .collect()
    }

    #[test]
    fn write_goes_to_the_console() {
        let f = Fixture::new();
        f.mem.map(0x1000, b"hi there");
        assert_eq!(f.ok(SYS_write, &[1, 0x1000, 2]), 2);
        assert_eq!(f.ok(SYS_write, &[2, 0x1002, 6]), 6);
        assert_eq!(f.host.console(), b"hi there");
        assert_eq!(
            f.mem.requests(),
            vec![Req::In(0x1000, 2), Req::In(0x1002, 6)]
        );
    }

    #[test]
    fn write_rules_null_empty_and_limits() {
        let f = Fixture::new();
        assert_eq!(f.ok(SYS_write, &[1, 0x1000, 0]), 0);
        assert_eq!(f.err(SYS_write, &[1, 0, 5]), Errno::EFAULT);
        assert_eq!(f.err(SYS_write, &[1, 0x1000, 1 << 63]), Errno::EINVAL);
        assert_eq!(f.err(SYS_write, &[7, 0x1000, 1]), Errno::EBADF);
        assert_eq!(f.err(SYS_write, &[int(-1), 0x1000, 1]), Errno::EBADF);
        assert!(f.mem.requests().is_empty());
    }

    #[test]
    fn large_writes_are_copied_in_bounded_chunks() {
        let f = Fixture::new();
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        f.mem.map(0x10000, &data);
        assert_eq!(f.ok(SYS_write, &[1, 0x10000, data.len() as u64]), 200_000);
        assert_eq!(f.host.console(), data);
        let reqs = f.mem.requests();
        assert_eq!(reqs.len(), 4);
        assert!(reqs
            .iter()
            .all(|r| matches!(r, Req::In(_, n) if *n <= 65536)));
    }

    #[test]
    fn console_is_not_readable() {
        let f = Fixture::new();
        f.mem.map_zero(0x1000, 16);
        assert_eq!(f.err(SYS_read, &[0, 0x1000, 16]), Errno::EBADF);
        assert_eq!(f.err(SYS_read, &[9, 0x1000, 16]), Errno::EBADF);
        f.mem.map(0x2000, &iovecs(&[(0x1000, 4)]));
        assert_eq!(f.err(SYS_readv, &[0, 0x2000, 1]), Errno::EBADF);
        assert!(f.mem.requests().is_empty());
    }

    #[test]
    fn writev_gathers() {
        let f = Fixture::new();
        f.mem.map(0x1000, b"abcdef");
        f.mem
            .map(0x2000, &iovecs(&[(0x1003, 3), (0, 0), (0x1000, 3)]));
        assert_eq!(f.ok(SYS_writev, &[1, 0x2000, 3]), 6);
        assert_eq!(f.host.console(), b"defabc");
        assert_eq!(f.mem.requests()[0], Req::In(0x2000, 48));
    }

    #[test]
    fn writev_iovec_errors() {
        let f = Fixture::new();
        assert_eq!(f.err(SYS_writev, &[1, 0x2000, 0]), Errno::EINVAL);
        assert_eq!(f.err(SYS_writev, &[9, 0x2000, 0]), Errno::EINVAL);
        assert_eq!(f.err(SYS_writev, &[9, 0x2000, 1]), Errno::EBADF);
        assert_eq!(f.err(SYS_writev, &[1, 0x2000, 1025]), Errno::EINVAL);
        assert_eq!(f.err(SYS_writev, &[1, 0x2000, int(-1)]), Errno::EINVAL);
        assert_eq!(f.err(SYS_writev, &[1, 0, 1]), Errno::EFAULT);
        assert!(f.mem.requests().is_empty());
        f.mem
            .map(0x2000, &iovecs(&[(0x1000, 1 << 62), (0x1000, 1 << 62)]));
        assert_eq!(f.err(SYS_writev, &[1, 0x2000, 2]), Errno::EINVAL);
        f.mem.map(0x3000, &iovecs(&[(0x1000, u64::MAX)]));
        assert_eq!(f.err(SYS_writev, &[1, 0x3000, 1]), Errno::EINVAL);
        assert!(f.host.console().is_empty());
        let mut big = vec![];
        for _ in 0..1024 {
            big.extend(iovecs(&[(0x9000, 1)]));
        }
        f.mem.map(0x9000, b"z");
        f.mem.map(0x100000, &big);
        assert_eq!(f.ok(SYS_writev, &[1, 0x100000, 1024]), 1024);
    }

    /// `RLIMIT_FSIZE`: a write reaching past it fails whole with `EFBIG` and SIGXFSZ, also
    /// with no byte to move; pipes and the console are not limited.
    #[test]
    fn fsize_limit_refuses_whole_writes() {
        use crate::abi::{Rlimit, O_APPEND, O_CREAT, O_RDWR};
        let f = Fixture::new();
        f.mem.map(0x1000, b"/f\0");
        f.mem.map(0x2000, &Rlimit::new(100, 1000).encode());
        f.mem.map(0x3000, &[7; 200]);
        assert_eq!(f.ok(SYS_setrlimit, &[1, 0x2000]), 0);
        let flags = (O_RDWR | O_CREAT) as u64;
        let fd = f.ok(SYS_open, &[0x1000, flags, 0o644]) as u64;
        assert_eq!(f.ok(SYS_write, &[fd, 0x3000, 60]), 60);
        f.mem.clear_requests();
        assert_eq!(f.err(SYS_write, &[fd, 0x3000, 60]), Errno::EFBIG);
        assert_eq!(f.mem.requests(), vec![Req::Raise(25)]);
        assert_eq!(f.ok(SYS_write, &[fd, 0x3000, 40]), 40);
        assert_eq!(f.err(SYS_pwrite, &[fd, 0x3000, 0, 0, 101]), Errno::EFBIG);
        assert_eq!(f.ok(SYS_pwrite, &[fd, 0x3000, 10, 0, 90]), 10);
        let fd2 = f.ok(SYS_open, &[0x1000, (O_RDWR | O_APPEND) as u64]) as u64;
        assert_eq!(f.err(SYS_pwrite, &[fd2, 0x3000, 1, 0, 0]), Errno::EFBIG);
        assert_eq!(f.ok(SYS_ftruncate, &[fd, 0, 500]), 0);
        assert_eq!(f.ok(SYS_write, &[1, 0x3000, 200]), 200);
    }
}

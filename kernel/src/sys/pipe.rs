//! pipe(2) and pipe2(2) (sys_pipe.c `pipe1`, sys_descrip.c).

use super::{ret, Args, Ctx, SysResult};
use crate::abi::{Timespec, FREAD, FWRITE, O_CLOEXEC, O_NONBLOCK, O_NOSIGPIPE};
use crate::file::{File, FileKind, Pipe};
use crate::{copy, Errno, UserMem};

/// `pipe()` — a pipe; the read end in `retval[0]`, the write end in `retval[1]`; `pipe(2)`.
pub fn pipe<M>(c: &Ctx<'_, M>) -> SysResult {
    let (r, w) = pipe1(c, 0)?;
    Ok([i64::from(r), i64::from(w)])
}

/// `pipe2(fildes, flags)` — a pipe with `O_CLOEXEC`/`O_NONBLOCK`/`O_NOSIGPIPE`, the two
/// descriptors copied out to `fildes`; `pipe2(2)`. As NetBSD, a failed copy-out leaves
/// them open.
pub async fn pipe2<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let (r, w) = pipe1(c, a.uint(1))?;
    let mut fds = [0u8; 8];
    fds[..4].copy_from_slice(&r.to_le_bytes());
    fds[4..].copy_from_slice(&w.to_le_bytes());
    copy::copyout(c.mem, a.word(0), &fds).await?;
    ret(0)
}

/// `pipe1`: both files get `flags` in their `f_flag`; `EMFILE` leaves nothing behind.
fn pipe1<M>(c: &Ctx<'_, M>, flags: u32) -> Result<(i32, i32), Errno> {
    if flags & !(O_CLOEXEC | O_NONBLOCK | O_NOSIGPIPE) != 0 {
        return Err(Errno::EINVAL);
    }
    let cred = c.p.cred();
    let now = Timespec::from_pair(c.k.host().clock_realtime());
    let (r, w) = Pipe::pair(now, cred.euid, cred.egid, c.k.budget())?;
    let cloexec = flags & O_CLOEXEC != 0;
    let rf = File::new(FileKind::Pipe(r), FREAD | flags);
    let wf = File::new(FileKind::Pipe(w), FWRITE | flags);
    let rfd = c.p.fd.alloc(rf, 0, cloexec)?;
    match c.p.fd.alloc(wf, 0, cloexec) {
        Ok(wfd) => Ok((rfd, wfd)),
        Err(e) => {
            drop(c.p.fd.close(rfd));
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::thread;

    use crate::abi::sysnum::*;
    use crate::abi::*;
    use crate::file::pipe::{Fifo, BIG_PIPE_SIZE, PIPE_CHUNK_MAX, PIPE_SIZE};
    use crate::mem::Budget;
    use crate::sync::tests::run;
    use crate::testutil::{int, Fixture, Req, TestMem};
    use crate::{Errno, Kernel, Proc};

    fn pipe(f: &Fixture) -> (u64, u64) {
        let rv = f.call(SYS_pipe, &[]).unwrap();
        (rv[0] as u64, rv[1] as u64)
    }

    fn sys(k: &Kernel, p: &Arc<Proc>, mem: &TestMem, nr: u32, a: &[u64]) -> crate::Result<i64> {
        let mut slots = [0u64; 8];
        slots[..a.len()].copy_from_slice(a);
        run(k.syscall(p, mem, nr, &slots)).result.map(|rv| rv[0])
    }

    #[test]
    fn pipe_moves_bytes_and_reports_them() {
        let f = Fixture::new();
        assert_eq!(pipe(&f), (3, 4));
        f.mem.map(0x1000, b"hello");
        f.mem.map_zero(0x2000, 64);
        assert_eq!(f.ok(SYS_write, &[4, 0x1000, 5]), 5);
        assert_eq!(f.ok(SYS_ioctl, &[3, u64::from(FIONREAD), 0x2000]), 0);
        assert_eq!(f.mem.read(0x2000, 4), 5i32.to_le_bytes());
        assert_eq!(f.ok(SYS_ioctl, &[4, u64::from(FIONREAD), 0x2000]), 0);
        assert_eq!(f.mem.read(0x2000, 4), 0i32.to_le_bytes());
        f.mem.map_zero(0x3000, STAT_SIZE);
        assert_eq!(f.ok(SYS___fstat50, &[3, 0x3000]), 0);
        let st = f.mem.read(0x3000, STAT_SIZE);
        let u32_at = |o: usize| u32::from_le_bytes(st[o..o + 4].try_into().unwrap());
        assert_eq!(u32_at(8), S_IFIFO | 0o600);
        assert_eq!(i64::from_le_bytes(st[112..120].try_into().unwrap()), 5);
        assert_eq!(u32_at(128), PIPE_SIZE as u32);
        assert_eq!(f.ok(SYS_read, &[3, 0x2000, 64]), 5);
        assert_eq!(f.mem.read(0x2000, 5), b"hello");
        // Wrong direction: EBADF at the syscall layer.
        assert_eq!(f.err(SYS_read, &[4, 0x2000, 1]), Errno::EBADF);
        assert_eq!(f.err(SYS_write, &[3, 0x1000, 1]), Errno::EBADF);
        assert_eq!(f.call(SYS_fcntl, &[3, int(F_GETFL), 0]), Ok([0, 0]));
    }

    #[test]
    fn pipe2_flags_and_copyout() {
        let f = Fixture::new();
        assert_eq!(
            f.err(SYS_pipe2, &[0x1000, u64::from(O_APPEND)]),
            Errno::EINVAL
        );
        assert_eq!(f.p.fd_count(), 3);
        f.mem.map_zero(0x1000, 8);
        let fl = u64::from(O_CLOEXEC | O_NONBLOCK | O_NOSIGPIPE);
        assert_eq!(f.call(SYS_pipe2, &[0x1000, fl]), Ok([0, 0]));
        assert_eq!(f.mem.read(0x1000, 8), [3, 0, 0, 0, 4, 0, 0, 0]);
        assert_eq!(f.call(SYS_fcntl, &[3, int(F_GETFD), 0]), Ok([1, 0]));
        assert_eq!(f.call(SYS_fcntl, &[4, int(F_GETNOSIGPIPE), 0]), Ok([1, 0]));
        f.mem.map_zero(0x2000, 8);
        assert_eq!(f.err(SYS_read, &[3, 0x2000, 8]), Errno::EAGAIN);
        // A bad address: EFAULT, and the descriptors stay open (as NetBSD).
        assert_eq!(f.err(SYS_pipe2, &[0, 0]), Errno::EFAULT);
        assert_eq!(f.p.fd_count(), 7);
    }

    #[test]
    fn eof_epipe_and_sigpipe() {
        let f = Fixture::new();
        let (r, w) = pipe(&f);
        f.mem.map(0x1000, b"abc");
        assert_eq!(f.ok(SYS_write, &[w, 0x1000, 3]), 3);
        assert_eq!(f.ok(SYS_close, &[w]), 0);
        f.mem.map_zero(0x2000, 8);
        // Data first, then EOF.
        assert_eq!(f.ok(SYS_read, &[r, 0x2000, 8]), 3);
        assert_eq!(f.ok(SYS_read, &[r, 0x2000, 8]), 0);
        let (r2, w2) = pipe(&f);
        assert_eq!(f.ok(SYS_close, &[r2]), 0);
        f.mem.clear_requests();
        assert_eq!(f.err(SYS_write, &[w2, 0x1000, 3]), Errno::EPIPE);
        assert_eq!(f.mem.requests(), vec![Req::Raise(SIGPIPE)]);
        f.mem.clear_requests();
        assert_eq!(f.call(SYS_fcntl, &[w2, int(F_SETNOSIGPIPE), 1]), Ok([0, 0]));
        assert_eq!(f.err(SYS_write, &[w2, 0x1000, 3]), Errno::EPIPE);
        assert!(f.mem.requests().is_empty());
    }

    #[test]
    fn nonblocking_writes_fill_and_small_writes_stay_whole() {
        let f = Fixture::new();
        let (r, w) = pipe(&f);
        let nb = u64::from(O_NONBLOCK);
        assert_eq!(f.call(SYS_fcntl, &[w, int(F_SETFL), nb]), Ok([0, 0]));
        f.mem.map(0x10000, &vec![7u8; PIPE_SIZE]);
        assert_eq!(
            f.ok(SYS_write, &[w, 0x10000, PIPE_SIZE as u64 - 100]),
            16284
        );
        // 512 bytes do not fit in 100: nothing is written.
        assert_eq!(f.err(SYS_write, &[w, 0x10000, 512]), Errno::EAGAIN);
        // 1000 bytes are not atomic: 100 go in.
        assert_eq!(f.ok(SYS_write, &[w, 0x10000, 1000]), 100);
        assert_eq!(f.err(SYS_write, &[w, 0x10000, 1]), Errno::EAGAIN);
        f.mem.map_zero(0x40000, PIPE_SIZE);
        assert_eq!(
            f.ok(SYS_read, &[r, 0x40000, PIPE_SIZE as u64]),
            PIPE_SIZE as i64
        );
        // A big write into an empty pipe grows it to BIG_PIPE_SIZE.
        f.mem.map(0x100000, &vec![1u8; 70_000]);
        assert_eq!(
            f.ok(SYS_write, &[w, 0x100000, 70_000]),
            BIG_PIPE_SIZE as i64
        );
        let reqs = f.mem.requests();
        assert!(reqs
            .iter()
            .all(|q| !matches!(q, Req::In(_, n) if *n > PIPE_CHUNK_MAX)));
    }

    #[test]
    fn blocked_reader_is_woken_by_a_writer_on_another_thread() {
        let f = Fixture::new();
        let (r, w) = pipe(&f);
        let (k, p) = (f.k.clone(), f.p.clone());
        let reader = thread::spawn(move || {
            let mem = TestMem::new();
            mem.map_zero(0x1000, 16);
            let n = sys(&k, &p, &mem, SYS_read, &[r, 0x1000, 16]);
            (n, mem.read(0x1000, 2))
        });
        thread::sleep(std::time::Duration::from_millis(20));
        f.mem.map(0x1000, b"hi");
        assert_eq!(f.ok(SYS_write, &[w, 0x1000, 2]), 2);
        assert_eq!(reader.join().unwrap(), (Ok(2), b"hi".to_vec()));
    }

    #[test]
    fn large_transfer_streams_in_bounded_chunks() {
        const N: usize = 600_000;
        let f = Fixture::new();
        let (r, w) = pipe(&f);
        let data: Arc<Vec<u8>> = Arc::new((0..N).map(|i| (i * 7 % 251) as u8).collect());
        let (k, p, d) = (f.k.clone(), f.p.clone(), data.clone());
        let writer = thread::spawn(move || {
            let mem = TestMem::new();
            mem.map(0x100000, &d);
            let n = sys(&k, &p, &mem, SYS_write, &[w, 0x100000, N as u64]);
            let biggest = mem.requests().iter().fold(0, |m, q| match q {
                Req::In(_, n) => m.max(*n),
                _ => m,
            });
            (n, biggest)
        });
        let mut got = Vec::new();
        f.mem.map_zero(0x1000_0000, 100_000);
        while got.len() < N {
            let n = sys(&f.k, &f.p, &f.mem, SYS_read, &[r, 0x1000_0000, 100_000]).unwrap();
            assert!(n > 0);
            got.extend(f.mem.read(0x1000_0000, n as usize));
        }
        let (n, biggest) = writer.join().unwrap();
        assert_eq!(n, Ok(N as i64));
        assert!(biggest <= PIPE_CHUNK_MAX);
        assert!(got == *data);
    }

    #[test]
    fn disconnect_interrupts_a_blocked_read_and_write() {
        let f = Fixture::new();
        let (r, w) = pipe(&f);
        let (k, p) = (f.k.clone(), f.p.clone());
        let reader = thread::spawn(move || {
            let mem = TestMem::new();
            mem.map_zero(0x1000, 16);
            sys(&k, &p, &mem, SYS_read, &[r, 0x1000, 16])
        });
        // Fill the pipe so that a writer blocks too.
        thread::sleep(std::time::Duration::from_millis(20));
        f.k.begin_exit(&f.p);
        assert_eq!(reader.join().unwrap(), Err(Errno::EINTR));
        f.mem.map(0x10000, &vec![0u8; PIPE_SIZE + 1]);
        assert_eq!(f.ok(SYS_write, &[w, 0x10000, PIPE_SIZE as u64]), 16384);
        let e = sys(&f.k, &f.p, &f.mem, SYS_write, &[w, 0x10000, 1]);
        assert_eq!(e, Err(Errno::EINTR));
    }

    #[test]
    fn fifo_open_waits_for_the_other_side() {
        let f = Fixture::new();
        let fifo = Arc::new(Fifo::new());
        let now = f.k.boottime();
        assert_eq!(
            run(fifo.open(&f.p, false, true, true, now, &Budget::unlimited())).err(),
            Some(Errno::ENXIO)
        );
        assert!(!fifo.is_open());
        // A non-blocking reader opens at once and reads EOF.
        let rd = run(fifo.open(&f.p, true, false, true, now, &Budget::unlimited())).unwrap();
        let (fi, p) = (fifo.clone(), f.p.clone());
        let opener = thread::spawn(move || {
            run(fi.open(&p, false, true, false, now, &Budget::unlimited())).is_ok()
        });
        assert!(opener.join().unwrap());
        drop(rd);
        // A blocking reader waits for a writer.
        let (fi, p) = (fifo.clone(), f.p.clone());
        let reader = thread::spawn(move || {
            run(fi.open(&p, true, false, false, now, &Budget::unlimited())).map(|_| ())
        });
        thread::sleep(std::time::Duration::from_millis(20));
        assert!(!reader.is_finished());
        let wr = run(fifo.open(&f.p, false, true, false, now, &Budget::unlimited())).unwrap();
        assert_eq!(reader.join().unwrap(), Ok(()));
        drop(wr);
        // O_RDWR never waits; a waiting open is interrupted by the exit.
        let both = run(fifo.open(&f.p, true, true, false, now, &Budget::unlimited())).unwrap();
        drop(both);
        f.k.begin_exit(&f.p);
        let e = run(fifo.open(&f.p, true, false, false, now, &Budget::unlimited())).err();
        assert_eq!(e, Some(Errno::EINTR));
        assert!(!fifo.is_open());
    }
}

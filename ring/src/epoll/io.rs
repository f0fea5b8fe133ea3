//! The epoll backend's operations: readiness waits, non-blocking socket calls retried on the
//! next edge, timers, and synchronous host-file calls.

use std::future::Future;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::pool::Pool;
use super::{Reactor, SourceKey, READ, WRITE};
use crate::bufring::BUF_SIZE;

/// Runs `f` with the current loop's reactor.
///
/// # Panics
/// Off a loop thread, or on an io_uring loop.
pub(crate) fn with_reactor<R>(f: impl FnOnce(&Reactor) -> R) -> R {
    let local = crate::executor::local().expect("ring I/O polled off a loop thread");
    f(local.io.epoll())
}

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Waits until `key` is ready (or closed) in direction `dir`; yields first when the task
/// has spent its budget of operations that completed without waiting.
pub(crate) async fn ready(key: SourceKey, dir: u8) {
    std::future::poll_fn(|cx| {
        let local = crate::executor::local().expect("ring I/O polled off a loop thread");
        if !local.coop_take() {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        local.io.epoll().poll_ready(key, dir, cx)
    })
    .await
}

/// Yields when the task has spent its budget (before a host-file call, which never waits).
pub(crate) async fn coop() {
    std::future::poll_fn(|cx| {
        let local = crate::executor::local().expect("ring I/O polled off a loop thread");
        if local.coop_take() {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

/// Forgets `key`'s readiness in `dir`; `Err(ENOTCONN)` (or `hangup`) when it hung up for good.
fn not_ready(key: SourceKey, dir: u8, hangup: i32) -> io::Result<()> {
    match with_reactor(|r| r.clear_ready(key, dir)) {
        true => Ok(()),
        false => Err(io::Error::from_raw_os_error(hangup)),
    }
}

/// `recv(fd, buf[..capacity], MSG_DONTWAIT)`, waiting for readability on `EAGAIN`; sets the
/// length of `buf` (which the caller cleared) to the bytes received.
pub(crate) async fn recv(key: SourceKey, fd: RawFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    loop {
        ready(key, READ).await;
        let cap = buf.capacity();
        // SAFETY: the kernel writes at most `cap` bytes into the vector's allocation during
        // the call only.
        let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), cap, libc::MSG_DONTWAIT) };
        if r >= 0 {
            let n = r as usize;
            assert!(n <= cap, "kernel reported more bytes than asked for");
            // SAFETY: the kernel initialised the first `n` bytes.
            unsafe { buf.set_len(n) };
            if n > 0 && n < cap {
                not_ready(key, READ, libc::ENOTCONN).ok(); // drained: wait for the next edge
            }
            return Ok(n);
        }
        match errno() {
            libc::EAGAIN => not_ready(key, READ, libc::ENOTCONN)?,
            libc::EINTR => {}
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// `recv` into a buffer from the loop's pool, for `RecvStream`: waits for readability first
/// and for a free buffer second, so that a waiting stream holds no buffer. `Ok(None)` at end
/// of file.
pub(crate) async fn recv_pooled(
    key: SourceKey,
    fd: RawFd,
    pool: &Rc<Pool>,
) -> io::Result<Option<(Box<[u8]>, usize)>> {
    loop {
        ready(key, READ).await;
        let mut buf = std::future::poll_fn(|cx| pool.poll_take(cx)).await;
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf` during the call only.
        let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if r > 0 {
            let n = r as usize;
            assert!(n <= buf.len(), "kernel reported more bytes than asked for");
            if n < BUF_SIZE as usize {
                not_ready(key, READ, libc::ENOTCONN).ok();
            }
            return Ok(Some((buf, n)));
        }
        pool.give_back(buf);
        if r == 0 {
            return Ok(None);
        }
        match errno() {
            libc::EAGAIN => not_ready(key, READ, libc::ENOTCONN)?,
            libc::EINTR => {}
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// `send(fd, buf, MSG_NOSIGNAL | MSG_DONTWAIT)`, waiting for writability on `EAGAIN`.
pub(crate) async fn send(key: SourceKey, fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    loop {
        ready(key, WRITE).await;
        // SAFETY: send(2) reads `buf` (live, of that length) during the call only.
        let r = unsafe {
            libc::send(
                fd,
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if r >= 0 {
            let n = r as usize;
            if n < buf.len() {
                not_ready(key, WRITE, libc::EPIPE).ok(); // socket buffer full
            }
            return Ok(n);
        }
        match errno() {
            libc::EAGAIN => not_ready(key, WRITE, libc::EPIPE)?,
            libc::EINTR => {}
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// `accept4(fd, NULL, NULL, SOCK_CLOEXEC)` on a non-blocking listener, waiting for
/// readability on `EAGAIN`. A listener shut down meanwhile fails with `EINVAL`.
pub(crate) async fn accept(key: SourceKey, fd: RawFd) -> io::Result<OwnedFd> {
    loop {
        ready(key, READ).await;
        // SAFETY: no address buffers are passed.
        let r = unsafe {
            libc::accept4(
                fd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if r >= 0 {
            // SAFETY: a descriptor freshly returned by accept, owned by nobody else.
            return Ok(unsafe { OwnedFd::from_raw_fd(r) });
        }
        match errno() {
            libc::EAGAIN => not_ready(key, READ, libc::EINVAL)?,
            libc::EINTR => {}
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// Sets `O_NONBLOCK` on `fd` (a listener: `accept4` has no per-call flag for it).
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller owns; no pointers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A sleep on the epoll loop: a timer entry from the first poll until it fires or the future
/// is dropped.
pub(crate) struct Sleep {
    dur: Duration,
    timer: Option<(Instant, u64)>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Sleep {
    pub(crate) fn new(dur: Duration) -> Sleep {
        Sleep {
            dur,
            timer: None,
            _not_send: std::marker::PhantomData,
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        with_reactor(|r| match this.timer {
            None => {
                let deadline = Instant::now() + this.dur;
                this.timer = Some(r.add_timer(deadline, cx.waker()));
                Poll::Pending
            }
            Some(t) if r.timer_pending(t, cx.waker()) => Poll::Pending,
            Some(_) => {
                this.timer = None;
                this.dur = Duration::ZERO;
                Poll::Ready(())
            }
        })
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(t) = self.timer.take() {
            if let Some(local) = crate::executor::local() {
                if let crate::executor::Io::Epoll(r) = &local.io {
                    r.cancel_timer(t);
                }
            }
        }
    }
}

fn retry_eintr(mut f: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let r = f();
        if r >= 0 {
            return Ok(r as usize);
        }
        match errno() {
            libc::EINTR => {}
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// `pread(fd, spare, n, off)` on the loop thread; extends `buf` by the bytes read.
pub(crate) fn pread(fd: RawFd, buf: &mut Vec<u8>, off: u64) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let (ptr, len) = (spare.as_mut_ptr(), spare.len());
    let off = off_t(off)?;
    // SAFETY: the kernel writes at most `len` bytes into the spare capacity during the call.
    let n = retry_eintr(|| unsafe { libc::pread(fd, ptr.cast(), len, off) })?;
    assert!(n <= len, "kernel reported more bytes than asked for");
    // SAFETY: the kernel initialised the `n` bytes after the old length.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// `pwrite(fd, buf, n, off)` on the loop thread.
pub(crate) fn pwrite(fd: RawFd, buf: &[u8], off: u64) -> io::Result<usize> {
    let off = off_t(off)?;
    // SAFETY: pwrite reads `buf` (live, of that length) during the call only.
    retry_eintr(|| unsafe { libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), off) })
}

/// `fsync(fd)`, or `fdatasync(fd)` when `datasync`, on the loop thread.
pub(crate) fn fsync(fd: RawFd, datasync: bool) -> io::Result<()> {
    // SAFETY: plain system calls on a descriptor; no pointers.
    retry_eintr(|| unsafe {
        match datasync {
            true => libc::fdatasync(fd) as isize,
            false => libc::fsync(fd) as isize,
        }
    })
    .map(drop)
}

fn off_t(off: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(off).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

//! `ready`: waits for a descriptor the caller owns (and keeps open) to become readable or
//! writable, on the current loop — an io_uring `POLL_ADD` (one-shot), or on the epoll
//! backend a registration of the descriptor on the loop's epoll instance for the wait only.
//! For a caller that makes its own non-blocking system calls and waits only on `EAGAIN`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::task::Poll;

use io_uring::{opcode, squeue, types};

use crate::driver::{Op, OpData};
use crate::epoll::{SourceKey, READ, WRITE};

struct PollData {
    fd: RawFd,
    mask: u32,
}

impl OpData for PollData {
    fn entry(&mut self) -> squeue::Entry {
        opcode::PollAdd::new(types::Fd(self.fd), self.mask).build()
    }
}

/// Waits until `fd` is readable (`read`) or writable (`write`), has hung up or failed
/// (`POLLIN`/`POLLRDHUP`, `POLLOUT`, `POLLHUP`/`POLLERR` as `poll(2)`): returns at once when
/// it already is. Must run on a loop thread; `fd` must stay open until the future ends.
/// Dropping the future cancels the wait (io_uring: an async cancel; the op's slot lives on
/// until its completion; epoll: the registration is removed).
pub async fn ready(fd: RawFd, read: bool, write: bool) -> io::Result<()> {
    if crate::executor::on_epoll() {
        return epoll_ready(fd, read, write).await;
    }
    let mut mask = 0;
    if read {
        mask |= (libc::POLLIN | libc::POLLRDHUP) as u32;
    }
    if write {
        mask |= libc::POLLOUT as u32;
    }
    let (res, _, _) = Op::new(PollData { fd, mask }).await;
    if res < 0 {
        return Err(io::Error::from_raw_os_error(-res));
    }
    Ok(())
}

/// The epoll registration of one wait; removed when the wait ends or is dropped.
struct Reg {
    key: SourceKey,
    fd: RawFd,
    /// A duplicate registered instead of `fd` when `fd` is registered already (another wait
    /// on this loop): epoll keys registrations by descriptor and open file.
    _dup: Option<OwnedFd>,
}

impl Drop for Reg {
    fn drop(&mut self) {
        if let Some(local) = crate::executor::local() {
            local.io.epoll().deregister(self.key, self.fd);
        }
    }
}

async fn epoll_ready(fd: RawFd, read: bool, write: bool) -> io::Result<()> {
    let reg = crate::epoll::io::with_reactor(|r| -> io::Result<Reg> {
        match r.register(fd) {
            Ok(key) => Ok(Reg {
                key,
                fd,
                _dup: None,
            }),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                // SAFETY: plain system call; the result is checked.
                let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
                if d < 0 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: a new descriptor nobody else owns.
                let dup = unsafe { OwnedFd::from_raw_fd(d) };
                let key = r.register(dup.as_raw_fd())?;
                Ok(Reg {
                    key,
                    fd: dup.as_raw_fd(),
                    _dup: Some(dup),
                })
            }
            Err(e) => Err(e),
        }
    })?;
    // A new source counts as ready both ways; the registration itself reports the edge of
    // what is ready now, so forget the assumption and wait for the report.
    crate::epoll::io::with_reactor(|r| {
        r.clear_ready(reg.key, READ);
        r.clear_ready(reg.key, WRITE);
    });
    std::future::poll_fn(|cx| {
        crate::epoll::io::with_reactor(|r| {
            if read && r.poll_ready(reg.key, READ, cx).is_ready() {
                return Poll::Ready(());
            }
            if write && r.poll_ready(reg.key, WRITE, cx).is_ready() {
                return Poll::Ready(());
            }
            if !read && !write {
                return Poll::Ready(());
            }
            Poll::Pending
        })
    })
    .await;
    drop(reg);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::sync::mpsc;
    use std::time::Duration;

    use crate::{BackendChoice, Config, Runtime};

    fn each_backend(f: impl Fn(&Runtime)) {
        for b in [BackendChoice::IoUring, BackendChoice::Epoll] {
            let cfg = Config {
                loops: 1,
                pin: false,
                backend: Some(b),
                ..Config::default()
            };
            let Ok(rt) = Runtime::start(&cfg) else {
                continue; // io_uring unavailable here
            };
            f(&rt);
            rt.shutdown();
        }
    }

    #[test]
    fn waits_for_readable_then_writable_and_cancels_on_drop() {
        each_backend(|rt| {
            let (a, mut b) = UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            let (tx, rx) = mpsc::channel();
            let fd = a.as_raw_fd();
            rt.handles()[0].spawn(move || async move {
                // Writable at once.
                crate::ready::ready(fd, false, true).await.unwrap();
                tx.send("writable").unwrap();
                // Two waits on one descriptor (the epoll backend registers a duplicate).
                let r1 = crate::ready::ready(fd, true, false);
                let r2 = crate::ready::ready(fd, true, false);
                let (x, y) = futures_join(r1, r2).await;
                x.unwrap();
                y.unwrap();
                tx.send("readable").unwrap();
                // Drained, the next wait waits; dropped, it leaves nothing behind.
                let mut byte = [0u8; 1];
                // SAFETY: one valid byte of buffer; the descriptor is open.
                let n = unsafe { libc::read(fd, byte.as_mut_ptr().cast(), 1) };
                assert_eq!(n, 1);
                let w = crate::ready::ready(fd, true, false);
                let won = futures_race(w, crate::sleep(Duration::from_millis(20))).await;
                tx.send(if won { "spurious" } else { "dropped" }).unwrap();
            });
            assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "writable");
            assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
            b.write_all(b"x").unwrap();
            assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "readable");
            assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "dropped");
            drop(a);
        });
    }

    async fn futures_join<A: std::future::Future, B: std::future::Future>(
        a: A,
        b: B,
    ) -> (A::Output, B::Output) {
        let mut a = std::pin::pin!(a);
        let mut b = std::pin::pin!(b);
        let (mut ra, mut rb) = (None, None);
        std::future::poll_fn(|cx| {
            if ra.is_none() {
                if let std::task::Poll::Ready(v) = a.as_mut().poll(cx) {
                    ra = Some(v);
                }
            }
            if rb.is_none() {
                if let std::task::Poll::Ready(v) = b.as_mut().poll(cx) {
                    rb = Some(v);
                }
            }
            if ra.is_some() && rb.is_some() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
        (ra.unwrap(), rb.unwrap())
    }

    async fn futures_race<A: std::future::Future, B: std::future::Future>(a: A, b: B) -> bool {
        let mut a = std::pin::pin!(a);
        let mut b = std::pin::pin!(b);
        std::future::poll_fn(|cx| {
            if a.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(true);
            }
            if b.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(false);
            }
            std::task::Poll::Pending
        })
        .await
    }
}

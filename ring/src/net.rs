//! `Listener` and `Stream`: sockets driven through the loop's io_uring (accept, recv, send).
//!
//! Sockets are created, bound and listened on with std by the caller and handed over as
//! descriptors. Both types are `!Send`: their I/O goes through the ring of the loop they are
//! used on.

use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use io_uring::{opcode, squeue, types};

use crate::driver::{Op, OpData};

/// Makes a type `!Send` and `!Sync`.
type NotSend = PhantomData<*const ()>;

fn result(res: i32) -> io::Result<usize> {
    if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        Ok(res as usize)
    }
}

/// `RING_DIRECT_SEND=1` turns direct sends on for every new stream (read once).
fn direct_send_default() -> bool {
    static DEFAULT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DEFAULT.get_or_init(|| std::env::var_os("RING_DIRECT_SEND").is_some_and(|v| v == "1"))
}

/// Pushes queued SQEs naming `fd` to the kernel before `fd` is closed, so that a later socket
/// reusing the number cannot receive them.
fn flush_before_close() {
    if let Some(local) = crate::executor::local() {
        local.driver.flush();
    }
}

/// A listening unix or TCP socket whose `accept`s go through io_uring.
pub struct Listener {
    fd: OwnedFd,
    _not_send: NotSend,
}

struct AcceptData {
    fd: RawFd,
}

impl OpData for AcceptData {
    fn entry(&mut self) -> squeue::Entry {
        opcode::Accept::new(
            types::Fd(self.fd),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
        .flags(libc::SOCK_CLOEXEC)
        .build()
    }

    fn ignored_completion(self: Box<Self>, res: i32) {
        if res >= 0 {
            // SAFETY: the kernel handed us this new descriptor and nobody else knows it.
            drop(unsafe { OwnedFd::from_raw_fd(res) });
        }
    }
}

impl Listener {
    /// Takes over a bound, listening socket.
    pub fn from_std(fd: OwnedFd) -> Listener {
        Listener {
            fd,
            _not_send: PhantomData,
        }
    }

    /// The listening descriptor.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// `accept4(fd, NULL, NULL, SOCK_CLOEXEC)` through io_uring. Dropping the future cancels
    /// the accept; a connection accepted anyway is closed.
    pub async fn accept(&self) -> io::Result<OwnedFd> {
        let (res, _, _) = Op::new(AcceptData {
            fd: self.fd.as_raw_fd(),
        })
        .await;
        let fd = result(res)? as RawFd;
        // SAFETY: a descriptor freshly returned by accept, owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        flush_before_close();
    }
}

/// A connected stream socket whose receives and sends go through io_uring.
pub struct Stream {
    fd: OwnedFd,
    direct_send: std::cell::Cell<bool>,
    _not_send: NotSend,
}

struct RecvData {
    fd: RawFd,
    buf: Vec<u8>,
}

impl OpData for RecvData {
    fn entry(&mut self) -> squeue::Entry {
        let len = self.buf.capacity().min(u32::MAX as usize) as u32;
        opcode::Recv::new(types::Fd(self.fd), self.buf.as_mut_ptr(), len).build()
    }
}

struct SendData {
    fd: RawFd,
    buf: Vec<u8>,
    from: usize,
}

impl OpData for SendData {
    fn entry(&mut self) -> squeue::Entry {
        let rest = &self.buf[self.from..];
        let len = rest.len().min(u32::MAX as usize) as u32;
        opcode::Send::new(types::Fd(self.fd), rest.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    }
}

impl Stream {
    /// Takes over a connected socket.
    ///
    /// # Panics
    /// When called off a loop thread.
    pub fn from_fd(fd: OwnedFd) -> Stream {
        assert!(
            crate::executor::local().is_some(),
            "ring::Stream::from_fd off a loop thread"
        );
        Stream {
            fd,
            direct_send: std::cell::Cell::new(direct_send_default()),
            _not_send: PhantomData,
        }
    }

    /// Whether `send` first tries a direct non-blocking `send(2)` (see [`Stream::send`]).
    /// Default: off, or the `RING_DIRECT_SEND=1` environment variable (for measurements).
    pub fn set_direct_send(&self, on: bool) {
        self.direct_send.set(on);
    }

    /// The socket's descriptor.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// `recv(fd, buf, capacity, 0)`: receives into `buf[..buf.capacity()]` and sets `buf`'s
    /// length to the bytes received; `Ok(0)` is end of file. A zero-capacity buffer is
    /// refused with `InvalidInput` (it could not be told from EOF).
    pub async fn recv(&self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        buf.clear();
        if buf.capacity() == 0 {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "recv into a 0-capacity buffer");
            return (Err(e), buf);
        }
        let (res, _, mut data) = Op::new(RecvData { fd: self.fd(), buf }).await;
        let r = result(res);
        if let Ok(n) = r {
            assert!(
                n <= data.buf.capacity(),
                "kernel reported more bytes than asked for"
            );
            // SAFETY: the kernel initialised the first `n` bytes of the buffer.
            unsafe { data.buf.set_len(n) };
        }
        (r, data.buf)
    }

    /// `send(fd, buf[from..], MSG_NOSIGNAL)`: returns the bytes sent, which may be fewer.
    ///
    /// With [`Stream::set_direct_send`] on, a plain non-blocking `send(2)` is tried first and
    /// the ring is used only when the socket buffer is full (`EAGAIN`). For a ping-pong this
    /// saves one `io_uring_enter`, a CQE and a task wake per response; with many connections
    /// per loop the ring's batching of all sends into one `io_uring_enter` may win instead.
    pub async fn send(&self, buf: Vec<u8>, from: usize) -> (io::Result<usize>, Vec<u8>) {
        if self.direct_send.get() && from < buf.len() {
            let rest = &buf[from..];
            // SAFETY: send(2) reads `rest` (live, of that length) during the call only.
            let r = unsafe {
                libc::send(
                    self.fd(),
                    rest.as_ptr().cast(),
                    rest.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            if r >= 0 {
                return (Ok(r as usize), buf);
            }
            let e = io::Error::last_os_error();
            if !matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) {
                return (Err(e), buf);
            }
        }
        if from >= buf.len() {
            let r = match from == buf.len() {
                true => Ok(0),
                false => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "send offset past end",
                )),
            };
            return (r, buf);
        }
        let (res, _, data) = Op::new(SendData {
            fd: self.fd(),
            buf,
            from,
        })
        .await;
        (result(res), data.buf)
    }

    /// Sends all of `buf`, in as many sends as it takes.
    pub async fn send_all(&self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let mut from = 0;
        let mut buf = buf;
        while from < buf.len() {
            let (r, b) = self.send(buf, from).await;
            buf = b;
            match r {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(n) => from += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// `shutdown(fd, SHUT_RDWR)`: a pending `recv` completes with 0, later sends fail.
    pub fn shutdown(&self) {
        // SAFETY: plain system call on our own descriptor; errors (ENOTCONN) do not matter.
        unsafe { libc::shutdown(self.fd(), libc::SHUT_RDWR) };
    }
}

impl Drop for Stream {
    /// Shuts the socket down and closes it; ops still in flight keep their buffers until their
    /// completions arrive.
    fn drop(&mut self) {
        self.shutdown();
        flush_before_close();
    }
}

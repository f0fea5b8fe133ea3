//! `Listener` and `Stream`: sockets driven through the loop's io_uring (accept, recv, send),
//! or on the epoll backend through non-blocking calls retried on readiness (`epoll/io.rs`).
//!
//! Sockets are created, bound and listened on with std by the caller and handed over as
//! descriptors. Both types are `!Send`: their I/O goes through the ring (or epoll instance) of
//! the loop they are used on.

use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::task::Poll;

use io_uring::{opcode, squeue, types};

use crate::bufring::{BufRing, RecvBuf, BGID, BUF_SIZE};
use crate::driver::{Op, OpData};
use crate::epoll::io as eio;
use crate::epoll::pool::Pool;
use crate::epoll::SourceKey;
use crate::executor::Io;

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
        if let Io::Uring(d) = &local.io {
            d.flush();
        }
    }
}

/// Deregisters an epoll source before its descriptor is closed.
fn deregister(key: SourceKey, fd: RawFd) {
    if let Some(local) = crate::executor::local() {
        if let Io::Epoll(r) = &local.io {
            r.deregister(key, fd);
        }
    }
}

/// A listening unix or TCP socket whose `accept`s go through io_uring (on the epoll backend:
/// made non-blocking and registered with the loop's epoll on the first `accept`).
pub struct Listener {
    fd: OwnedFd,
    /// The epoll registration, once an `accept` ran on an epoll loop.
    src: std::cell::Cell<Option<SourceKey>>,
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
            src: std::cell::Cell::new(None),
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
        if crate::executor::on_epoll() {
            let key = self.epoll_source()?;
            return eio::accept(key, self.fd()).await;
        }
        let (res, _, _) = Op::new(AcceptData {
            fd: self.fd.as_raw_fd(),
        })
        .await;
        let fd = result(res)? as RawFd;
        // SAFETY: a descriptor freshly returned by accept, owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// The listener's epoll registration, made on first use.
    fn epoll_source(&self) -> io::Result<SourceKey> {
        if let Some(k) = self.src.get() {
            return Ok(k);
        }
        eio::set_nonblocking(self.fd())?;
        let k = eio::with_reactor(|r| r.register(self.fd()))?;
        self.src.set(Some(k));
        Ok(k)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        match self.src.get() {
            Some(k) => deregister(k, self.fd()),
            None => flush_before_close(),
        }
    }
}

/// How a stream's I/O runs: through io_uring, or through its epoll registration (or the
/// errno of a registration that failed, which every operation then reports).
#[derive(Clone, Copy)]
enum Via {
    Uring,
    Epoll(Result<SourceKey, i32>),
}

/// A connected stream socket whose receives and sends go through io_uring (on the epoll
/// backend: non-blocking `recv`/`send` retried on readiness).
pub struct Stream {
    fd: OwnedFd,
    via: Via,
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
    lazy: bool,
}

impl OpData for SendData {
    fn entry(&mut self) -> squeue::Entry {
        let rest = &self.buf[self.from..];
        let len = rest.len().min(u32::MAX as usize) as u32;
        // A lazy send is one non-blocking attempt (MSG_DONTWAIT: io_uring completes it while
        // submitting, never arming a poll; short or refused, it fails its link; see
        // `Driver::wait`). Others use MSG_WAITALL: io_uring retries a partial send itself and
        // posts one completion when everything is sent (or an error, with the bytes sent).
        let flags = match self.lazy {
            true => libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT | libc::MSG_WAITALL,
            false => libc::MSG_NOSIGNAL | libc::MSG_WAITALL,
        };
        opcode::Send::new(types::Fd(self.fd), rest.as_ptr(), len)
            .flags(flags)
            .build()
    }
    fn lazy(&self) -> bool {
        self.lazy
    }
}

impl Stream {
    /// Takes over a connected socket.
    ///
    /// # Panics
    /// When called off a loop thread.
    pub fn from_fd(fd: OwnedFd) -> Stream {
        let local = crate::executor::local().expect("ring::Stream::from_fd off a loop thread");
        let via = match &local.io {
            Io::Uring(_) => Via::Uring,
            Io::Epoll(r) => Via::Epoll(
                r.register(fd.as_raw_fd())
                    .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO)),
            ),
        };
        Stream {
            fd,
            via,
            direct_send: std::cell::Cell::new(direct_send_default()),
            _not_send: PhantomData,
        }
    }

    /// The epoll registration, when the stream lives on an epoll loop.
    fn epoll_source(&self) -> Option<io::Result<SourceKey>> {
        match self.via {
            Via::Uring => None,
            Via::Epoll(r) => Some(r.map_err(io::Error::from_raw_os_error)),
        }
    }

    /// Whether `send` first tries a direct non-blocking `send(2)` (see [`Stream::send`]).
    /// Default: off, or the `RING_DIRECT_SEND=1` environment variable (for measurements).
    /// The epoll backend always sends directly.
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
        if let Some(src) = self.epoll_source() {
            let r = match src {
                Ok(key) => eio::recv(key, self.fd(), &mut buf).await,
                Err(e) => Err(e),
            };
            return (r, buf);
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
        self.send_as(buf, from, false).await
    }

    async fn send_as(&self, buf: Vec<u8>, from: usize, lazy: bool) -> (io::Result<usize>, Vec<u8>) {
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
        if let Some(src) = self.epoll_source() {
            let r = match src {
                Ok(key) => eio::send(key, self.fd(), &buf[from..]).await,
                Err(e) => Err(e),
            };
            return (r, buf);
        }
        if self.direct_send.get() {
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
        let lazy = lazy
            && crate::executor::local()
                .is_some_and(|l| matches!(&l.io, Io::Uring(d) if d.lazy_on()));
        let (res, _, data) = Op::new(SendData {
            fd: self.fd(),
            buf,
            from,
            lazy,
        })
        .await;
        (result(res), data.buf)
    }

    /// Sends all of `buf`, in as many sends as it takes.
    pub async fn send_all(&self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        self.send_all_as(buf, false).await
    }

    /// [`Stream::send_all`] for a caller in no hurry for the completion: the loop's wait does
    /// not end at this send's completion but at the next other one, so that a ping-pong
    /// costs one `io_uring_enter` instead of two (see the driver's `wait`).
    ///
    /// The contract: after the send, the task must have nothing to do that is not itself
    /// started by another completion (e.g. a connection's writer whose requests arrive
    /// through an armed [`Stream::recv_multi`]). A task of the loop that starts waiting for
    /// the task in the same turn (more data queued for it, a flush) calls [`crate::urge`].
    /// Where the task itself must go on (e.g. to post the next plain `recv`), use
    /// [`Stream::send_all`].
    pub async fn send_all_lazy(&self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        self.send_all_as(buf, true).await
    }

    async fn send_all_as(&self, buf: Vec<u8>, lazy: bool) -> (io::Result<()>, Vec<u8>) {
        let mut from = 0;
        let mut buf = buf;
        let mut lazy = lazy;
        while from < buf.len() {
            let (r, b) = self.send_as(buf, from, lazy).await;
            buf = b;
            // What a lazy attempt left (a full socket buffer) waits for room as usual.
            lazy = false;
            match r {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(n) => from += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// A multishot receive on this socket: one armed `IORING_OP_RECV` (`IORING_RECV_MULTISHOT`,
    /// buffers picked from the loop's provided buffer ring) yields every chunk of data as it
    /// arrives, with no new SQE per receive and no buffer owned by the connection. On kernels
    /// without provided buffer rings or multishot receives it falls back to plain receives.
    /// On the epoll backend each `next` receives (when the socket is readable) into a buffer
    /// of the loop's bounded pool of the same count and size. See [`RecvStream`].
    pub fn recv_multi(&self) -> RecvStream<'_> {
        let local = crate::executor::local().expect("ring::Stream::recv_multi off a loop thread");
        let mode = match &local.io {
            Io::Uring(d) => match d.buf_ring() {
                Some(r) => Mode::Multi(r),
                None => Mode::Plain,
            },
            Io::Epoll(r) => Mode::Pool(r.pool()),
        };
        RecvStream {
            stream: self,
            mode,
            state: RecvState::Idle,
            paused: false,
        }
    }

    /// `recv_multi` forced onto the plain-receive fallback (for tests).
    #[cfg(test)]
    pub(crate) fn recv_plain_stream(&self) -> RecvStream<'_> {
        RecvStream {
            stream: self,
            mode: Mode::Plain,
            state: RecvState::Idle,
            paused: false,
        }
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
        match self.via {
            Via::Uring => flush_before_close(),
            Via::Epoll(Ok(key)) => deregister(key, self.fd()),
            Via::Epoll(Err(_)) => {}
        }
    }
}

struct RecvMultiData {
    fd: RawFd,
}

impl OpData for RecvMultiData {
    fn entry(&mut self) -> squeue::Entry {
        opcode::RecvMulti::new(types::Fd(self.fd), BGID).build()
    }
}

enum Mode {
    Multi(std::rc::Rc<BufRing>),
    Plain,
    /// The epoll backend: receives on demand into the loop's buffer pool.
    Pool(std::rc::Rc<Pool>),
}

enum RecvState {
    /// No receive armed.
    Idle,
    /// The multishot receive in op slot `idx`.
    Armed(u32),
    /// The last receive ended for lack of buffers: re-arm once one comes back.
    NoBufs,
    /// End of file seen.
    Eof,
    /// The receive failed; the error is reported once, then EOF.
    Failed(Option<io::Error>),
}

/// The data arriving on a [`Stream`], chunk by chunk (from [`Stream::recv_multi`]).
///
/// `next` yields each received chunk as a [`RecvBuf`] lent by the loop's buffer ring; drop it
/// as soon as it is parsed, since the loop's buffers are shared by all its connections. When
/// the ring runs dry the kernel ends the receive (`ENOBUFS`) and `next` re-arms it once a
/// buffer comes back; data waits in the socket meanwhile. [`RecvStream::pause`] stops
/// receiving (back-pressure) without losing data already received. Dropping the stream
/// cancels the receive; buffers it had filled go back to the ring, and the op's slot lives
/// until the kernel's final completion.
///
/// On the epoll backend nothing is armed between calls: `next` receives only when asked
/// (so a stream that is not drained stops reading), into a buffer of the loop's pool, which
/// holds as many buffers of the same size as the ring (a `next` finding it empty waits for a
/// buffer to come back); `pause` returns nothing.
pub struct RecvStream<'a> {
    stream: &'a Stream,
    mode: Mode,
    state: RecvState,
    /// `pause` ran: `next` does not re-arm until called again after the pause ended.
    paused: bool,
}

impl RecvStream<'_> {
    /// The next chunk of data; `Ok(None)` at end of file (and after an error was reported).
    pub async fn next(&mut self) -> io::Result<Option<RecvBuf>> {
        self.paused = false;
        loop {
            match &self.mode {
                Mode::Plain => return self.next_plain().await,
                Mode::Pool(p) => {
                    let p = p.clone();
                    return self.next_pooled(p).await;
                }
                Mode::Multi(_) => {}
            }
            if let Some(r) = std::future::poll_fn(|cx| self.poll_next(cx)).await {
                return r;
            }
            // Multishot receives turned out unsupported: go on with plain receives.
        }
    }

    /// What `next` returns once the stream ended (EOF, or an error reported once).
    fn ended(&mut self) -> Option<io::Result<Option<RecvBuf>>> {
        match self.state {
            RecvState::Eof => Some(Ok(None)),
            RecvState::Failed(ref mut e) => Some(e.take().map_or(Ok(None), Err)),
            _ => None,
        }
    }

    async fn next_pooled(&mut self, pool: std::rc::Rc<Pool>) -> io::Result<Option<RecvBuf>> {
        if let Some(r) = self.ended() {
            return r;
        }
        let r = match self.stream.epoll_source() {
            Some(Ok(key)) => eio::recv_pooled(key, self.stream.fd(), &pool).await,
            Some(Err(e)) => Err(e),
            None => unreachable!("a pooled receive on an io_uring stream"),
        };
        match r {
            Ok(Some((buf, n))) => Ok(Some(RecvBuf::pooled(pool, buf, n))),
            Ok(None) => {
                self.state = RecvState::Eof;
                Ok(None)
            }
            Err(e) => {
                self.state = RecvState::Failed(None);
                Err(e)
            }
        }
    }

    async fn next_plain(&mut self) -> io::Result<Option<RecvBuf>> {
        if let Some(r) = self.ended() {
            return r;
        }
        let (r, buf) = self
            .stream
            .recv(Vec::with_capacity(BUF_SIZE as usize))
            .await;
        match r {
            Ok(0) => {
                self.state = RecvState::Eof;
                Ok(None)
            }
            Ok(_) => Ok(Some(RecvBuf::owned(buf))),
            Err(e) => {
                self.state = RecvState::Failed(None);
                Err(e)
            }
        }
    }

    /// `None`: the kernel refused multishot receives and the stream switched to plain ones.
    #[allow(clippy::type_complexity)]
    fn poll_next(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<io::Result<Option<RecvBuf>>>> {
        let Mode::Multi(ring) = &self.mode else {
            unreachable!("plain and pooled streams use next_plain/next_pooled")
        };
        let ring = ring.clone();
        let local = crate::executor::local().expect("ring I/O polled off a loop thread");
        let d = local.io.uring();
        loop {
            if self.paused && !matches!(self.state, RecvState::Armed(_)) {
                return Poll::Ready(Some(Ok(None))); // the pause is complete
            }
            match &mut self.state {
                RecvState::Eof => return Poll::Ready(Some(Ok(None))),
                RecvState::Failed(e) => return Poll::Ready(Some(e.take().map_or(Ok(None), Err))),
                RecvState::NoBufs => {
                    if !ring.has_free() {
                        ring.wait_free(cx.waker());
                        return Poll::Pending;
                    }
                    ring.note_dry_rearm();
                    self.state = RecvState::Idle;
                }
                RecvState::Idle => {
                    let mut data = RecvMultiData {
                        fd: self.stream.fd(),
                    };
                    match d.start_multi(&mut data, cx) {
                        Some(idx) => self.state = RecvState::Armed(idx),
                        None => return Poll::Pending, // woken when a slot frees up
                    }
                }
                RecvState::Armed(idx) => {
                    let idx = *idx;
                    let (res, flags) = match d.poll_multi(idx, cx) {
                        Poll::Ready(c) => c,
                        Poll::Pending => return Poll::Pending,
                    };
                    let last = !io_uring::cqueue::more(flags);
                    if last {
                        self.state = RecvState::Idle;
                    }
                    if res > 0 {
                        let bid = io_uring::cqueue::buffer_select(flags)
                            .expect("multishot receive without a buffer");
                        return Poll::Ready(Some(Ok(Some(ring.take(bid, res as usize)))));
                    }
                    match -res {
                        0 => self.state = RecvState::Eof,
                        libc::ENOBUFS => self.state = RecvState::NoBufs,
                        libc::EINTR | libc::EAGAIN => {} // re-armed below
                        libc::ECANCELED if self.paused => {}
                        libc::EINVAL => {
                            // No multishot receives here: plain receives from now on.
                            d.disable_multishot();
                            self.mode = Mode::Plain;
                            self.state = RecvState::Idle;
                            return Poll::Ready(None);
                        }
                        e => {
                            self.state = RecvState::Failed(None);
                            return Poll::Ready(Some(Err(io::Error::from_raw_os_error(e))));
                        }
                    }
                }
            }
        }
    }

    /// Stops receiving (for back-pressure): cancels the armed receive and returns the chunks
    /// it had already received, in order. The next `next` re-arms (or reports EOF/an error
    /// that ended the receive meanwhile). With the plain fallback nothing is armed between
    /// calls and this returns nothing.
    pub async fn pause(&mut self) -> Vec<RecvBuf> {
        let mut out = Vec::new();
        let RecvState::Armed(idx) = self.state else {
            return out;
        };
        if let Some(local) = crate::executor::local() {
            local.io.uring().cancel_multi(idx);
        }
        self.paused = true;
        while let RecvState::Armed(_) = self.state {
            match std::future::poll_fn(|cx| self.poll_one(cx)).await {
                Some(b) => out.push(b),
                None => break,
            }
        }
        out
    }

    /// One completion of the armed receive while pausing: its data, or `None` once it ended.
    fn poll_one(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Option<RecvBuf>> {
        let RecvState::Armed(_) = self.state else {
            return Poll::Ready(None);
        };
        match self.poll_next(cx) {
            Poll::Ready(Some(Ok(Some(b)))) => Poll::Ready(Some(b)),
            Poll::Ready(Some(Ok(None)) | None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => {
                self.state = RecvState::Failed(Some(e));
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for RecvStream<'_> {
    fn drop(&mut self) {
        if let RecvState::Armed(idx) = self.state {
            if let Some(local) = crate::executor::local() {
                let data = RecvMultiData {
                    fd: self.stream.fd(),
                };
                local.io.uring().abandon_multi(idx, Box::new(data));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::sync::mpsc;
    use std::time::Duration;

    use crate::bufring::BUF_COUNT;

    /// Runs `f` as a task on a one-loop runtime and returns its result.
    fn on_loop<R, F, Fut>(f: F) -> Option<R>
    where
        R: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = R> + 'static,
    {
        if let Err(e) = crate::probe_io_uring() {
            eprintln!("skipping: {e}");
            return None;
        }
        let cfg = crate::Config {
            loops: 1,
            pin: false,
            ring_entries: 8,
            backend: Some(crate::BackendChoice::IoUring),
            ..Default::default()
        };
        let rt = crate::Runtime::start(&cfg).unwrap();
        let (tx, rx) = mpsc::channel();
        rt.handles()[0].spawn(move || async move {
            tx.send(f().await).unwrap();
        });
        Some(rx.recv_timeout(Duration::from_secs(30)).unwrap())
    }

    fn pattern(off: usize) -> u8 {
        (off % 251) as u8
    }

    /// Writes `total` bytes of `pattern` in `chunk`-sized writes, then closes.
    fn writer(mut s: UnixStream, total: usize, chunk: usize) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let data: Vec<u8> = (0..total).map(pattern).collect();
            for c in data.chunks(chunk) {
                s.write_all(c).unwrap();
            }
        })
    }

    fn loop_bufs() -> Option<std::rc::Rc<BufRing>> {
        crate::executor::local().unwrap().io.uring().buf_ring()
    }

    fn in_flight() -> usize {
        crate::executor::local().unwrap().io.uring().in_flight()
    }

    async fn read_all(rs: &mut RecvStream<'_>, held: &mut Vec<RecvBuf>) -> Vec<u8> {
        let mut got = Vec::new();
        while let Some(b) = rs.next().await.unwrap() {
            got.extend_from_slice(&b);
            held.clear();
        }
        got
    }

    #[test]
    fn many_messages_arrive_in_order_then_eof() {
        let r = on_loop(|| async {
            let (a, b) = UnixStream::pair().unwrap();
            let w = writer(b, 3 << 20, 100);
            let s = Stream::from_fd(a.into());
            let mut rs = s.recv_multi();
            let multi = matches!(rs.mode, Mode::Multi(_));
            let got = read_all(&mut rs, &mut Vec::new()).await;
            assert!(rs.next().await.unwrap().is_none(), "EOF again");
            w.join().unwrap();
            let out = loop_bufs().map_or(0, |r| r.handed_out());
            (got, multi, out)
        });
        let Some((got, multi, out)) = r else { return };
        assert!(multi, "kernel 6.0+ expected to support multishot receive");
        assert_eq!(got.len(), 3 << 20);
        assert!(got.iter().enumerate().all(|(i, &b)| b == pattern(i)));
        assert_eq!(out, 0, "every buffer back in the ring");
    }

    #[test]
    fn plain_fallback_reads_the_same() {
        let r = on_loop(|| async {
            let (a, b) = UnixStream::pair().unwrap();
            let w = writer(b, 1 << 20, 1000);
            let s = Stream::from_fd(a.into());
            let mut rs = s.recv_plain_stream();
            let got = read_all(&mut rs, &mut Vec::new()).await;
            w.join().unwrap();
            got
        });
        let Some(got) = r else { return };
        assert_eq!(got.len(), 1 << 20);
        assert!(got.iter().enumerate().all(|(i, &b)| b == pattern(i)));
    }

    #[test]
    fn a_dry_ring_rearms_once_buffers_come_back() {
        let r = on_loop(|| async {
            let (a, b) = UnixStream::pair().unwrap();
            let total = 8 << 20; // more than the ring holds
            let w = writer(b, total, 8192);
            let s = Stream::from_fd(a.into());
            let mut rs = s.recv_multi();
            let ring = loop_bufs().unwrap();
            let mut held = Vec::new();
            let mut got = Vec::new();
            // Hold every buffer until the ring is dry and the receive ended with ENOBUFS.
            while ring.handed_out() < usize::from(BUF_COUNT) {
                let b = rs.next().await.unwrap().expect("data before EOF");
                got.extend_from_slice(&b);
                held.push(b);
            }
            crate::sleep(Duration::from_millis(50)).await;
            assert_eq!(ring.handed_out(), usize::from(BUF_COUNT));
            let held_n = held.len();
            // Take what is queued until the receive reports the dry ring (the kernel may post
            // ENOBUFS only when it next tries to receive).
            while !matches!(rs.state, RecvState::NoBufs) {
                let mut f = Box::pin(rs.next());
                let b = std::future::poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx))).await;
                drop(f);
                match b {
                    Poll::Ready(b) => {
                        let b = b.unwrap().expect("data before EOF");
                        got.extend_from_slice(&b);
                        held.push(b);
                    }
                    Poll::Pending => break,
                }
            }
            let rearms = ring.dry_rearms();
            drop(held);
            got.extend(read_all(&mut rs, &mut Vec::new()).await);
            w.join().unwrap();
            assert!(ring.dry_rearms() > rearms, "re-armed after ENOBUFS");
            (got, held_n, ring.handed_out())
        });
        let Some((got, held_n, out)) = r else { return };
        assert!(held_n > 0 && held_n <= usize::from(BUF_COUNT));
        assert_eq!(got.len(), 8 << 20);
        assert!(got.iter().enumerate().all(|(i, &b)| b == pattern(i)));
        assert_eq!(out, 0);
    }

    #[test]
    fn dropping_an_armed_stream_cancels_and_returns_its_buffers() {
        let r = on_loop(|| async {
            let (a, mut b) = UnixStream::pair().unwrap();
            let s = Stream::from_fd(a.into());
            let ring = loop_bufs().unwrap();
            // Armed with nothing received.
            let mut rs = s.recv_multi();
            {
                let mut f = Box::pin(rs.next());
                std::future::poll_fn(|cx| {
                    assert!(f.as_mut().poll(cx).is_pending());
                    Poll::Ready(())
                })
                .await;
            }
            assert_eq!(in_flight(), 1);
            drop(rs);
            while in_flight() > 0 {
                crate::sleep(Duration::from_millis(1)).await;
            }
            // Armed with data queued in the slot that nobody takes.
            let mut rs = s.recv_multi();
            b.write_all(b"first").unwrap();
            let first = rs.next().await.unwrap().unwrap();
            assert_eq!(&*first, b"first");
            b.write_all(b"queued").unwrap();
            crate::sleep(Duration::from_millis(20)).await;
            drop(rs);
            while in_flight() > 0 {
                crate::sleep(Duration::from_millis(1)).await;
            }
            let out_while_held = ring.handed_out();
            drop(first);
            // A new stream still works and sees what comes next.
            let mut rs = s.recv_multi();
            b.write_all(b"next").unwrap();
            let n = rs.next().await.unwrap().unwrap().to_vec();
            drop(b);
            let eof = rs.next().await.unwrap().is_none();
            drop(rs);
            (out_while_held, n, eof, ring.handed_out())
        });
        let Some((out_while_held, n, eof, out)) = r else {
            return;
        };
        assert_eq!(out_while_held, 1, "only the buffer still held is out");
        assert_eq!(n, b"next");
        assert!(eof);
        assert_eq!(out, 0);
    }

    #[test]
    fn pause_keeps_received_data_and_next_resumes() {
        let r = on_loop(|| async {
            let (a, b) = UnixStream::pair().unwrap();
            let total = 2 << 20;
            let w = writer(b, total, 4096);
            let s = Stream::from_fd(a.into());
            let mut rs = s.recv_multi();
            let mut got = Vec::new();
            let mut pauses = 0;
            loop {
                match rs.next().await.unwrap() {
                    Some(b) => got.extend_from_slice(&b),
                    None => break,
                }
                if got.len() / (256 << 10) > pauses {
                    pauses += 1;
                    crate::sleep(Duration::from_millis(5)).await;
                    for b in rs.pause().await {
                        got.extend_from_slice(&b);
                    }
                    assert!(!matches!(rs.state, RecvState::Armed(_)), "nothing armed");
                }
            }
            w.join().unwrap();
            (got, pauses)
        });
        let Some((got, pauses)) = r else { return };
        assert!(pauses >= 1);
        assert_eq!(got.len(), 2 << 20);
        assert!(got.iter().enumerate().all(|(i, &b)| b == pattern(i)));
    }
}

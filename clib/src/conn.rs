//! The connection to the server, shared by all threads of the program.
//!
//! Sending: a thread takes the send right (`State::sending`), writes one whole frame and gives
//! it back. Receiving: a thread that waits for an answer takes the receive right if nobody has
//! it, reads frames and dispatches them: answers to their waiters (`State::replies`), server
//! requests served at once (COPYIN/COPYINSTR answered from our memory, COPYOUT written to it,
//! RAISE raised in this process). Once its own answer is in, it gives the receive right back
//! and wakes the others, one of which takes over (sp-protocol.md §17.4).
//!
//! Connection loss: the waiters of that connection fail with `ENOTCONN`; a call is then sent
//! again, and sending on a lost connection reconnects as `rumpclient_setconnretry` says
//! (§17.8): a new GUEST handshake, i.e. a new process in the kernel.

use std::collections::HashMap;
use std::ffi::c_int;
use std::io;
use std::os::fd::IntoRawFd;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sp::fast::FastGrant;
use sp::url::{Role, SpAddr};
use sp::{Class, ErrorCode, FrameDecoder, HandshakeType, MsgType, SyscallResp};

use crate::mem;

/// Largest frame accepted from the server (a COPYOUT of up to 64 MiB).
const MAX_FRAME_LEN: usize = sp::HEADER_LEN + sp::COPY_REQ_LEN + (64 << 20);
/// Socket read buffer.
const READ_BUF_LEN: usize = 64 * 1024;
/// A receiving thread polls without a timeout, as NetBSD's client: a timeout arms a host
/// timer per wait, which on a VM costs exits (measured: 1 s polls made the null call slower
/// than NetBSD's client). A lost connection ends the poll itself (EOF, error, hang-up).
const POLL_MS: c_int = -1;

/// A thread's frame buffer kept between its requests up to this capacity (a null call's
/// frame is 24–88 bytes; a large write's is let go after it).
const TX_KEEP_LEN: usize = 16 * 1024;

thread_local! {
    /// This thread's frame buffer, reused by each request it sends instead of an allocation
    /// per call. A call runs with all signals blocked, so no handler re-enters it (the
    /// fallback allocates if it ever were).
    static TX: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An answer to one of our requests.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Syscall(SyscallResp),
    /// The error, and the fast-path grant if the answer carried one.
    Handshake(i32, Option<FastGrant>),
    Prefork([u8; sp::COOKIE_LEN]),
    Error(ErrorCode),
}

/// Longest a receiving thread spins on a non-blocking read before it sleeps in poll, by
/// default; `RUMPCLIENT_SPIN_US` sets it (0: never spin).
const SPIN_US_DEFAULT: u64 = 50;
/// Most waits skipped between spin attempts after spins kept failing.
const SPIN_BACKOFF_MAX: u32 = 256;

/// The spin bound of this process (read once).
fn spin_limit() -> Duration {
    static US: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let us = *US.get_or_init(|| {
        std::env::var("RUMPCLIENT_SPIN_US")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(SPIN_US_DEFAULT)
            .min(10_000)
    });
    Duration::from_micros(us)
}

/// Receive side: only the thread holding the receive right touches it.
struct Rx {
    dec: FrameDecoder,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    /// Waits left that go straight to poll, after a spin that saw nothing.
    spin_skip: u32,
    /// What `spin_skip` is set to at the next failed spin (doubles, reset by a success).
    spin_backoff: u32,
}

impl Rx {
    fn new() -> Box<Rx> {
        Box::new(Rx {
            dec: FrameDecoder::new(MAX_FRAME_LEN),
            buf: vec![0u8; READ_BUF_LEN].into_boxed_slice(),
            pos: 0,
            len: 0,
            spin_skip: 0,
            spin_backoff: 0,
        })
    }

    /// Whether this wait may spin: answers came within the bound lately (or it is time to
    /// try again after a run of slow ones).
    fn may_spin(&mut self, limit: Duration) -> bool {
        if limit.is_zero() {
            return false;
        }
        if self.spin_skip > 0 {
            self.spin_skip -= 1;
            return false;
        }
        true
    }

    /// Records how a spin ended: data seen resets the back-off, nothing seen doubles it.
    fn spun(&mut self, got: bool) {
        if got {
            self.spin_backoff = 0;
        } else {
            self.spin_backoff = (self.spin_backoff * 2).clamp(1, SPIN_BACKOFF_MAX);
            self.spin_skip = self.spin_backoff;
        }
    }
}

/// How a non-blocking read went.
enum ReadEnd {
    Data(usize),
    Empty,
    Lost,
}

/// One non-blocking read of the socket into `buf`.
fn read_nb(fd: c_int, buf: &mut [u8]) -> ReadEnd {
    loop {
        // SAFETY: reading into a live buffer (the socket is O_NONBLOCK).
        let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if r > 0 {
            return ReadEnd::Data(r as usize);
        }
        if r == 0 {
            return ReadEnd::Lost;
        }
        match last_errno() {
            libc::EINTR => {}
            libc::EAGAIN => return ReadEnd::Empty,
            _ => return ReadEnd::Lost,
        }
    }
}

struct State {
    /// The socket and the signalfd (-1 if none).
    fd: c_int,
    sigfd: c_int,
    /// Incremented at every reconnect; a waiter of an older generation fails.
    generation: u64,
    /// The connection of this generation is lost.
    dead: bool,
    sending: bool,
    receiving: bool,
    next_reqno: u64,
    /// Registered waiters: reqno → (generation, answer once it arrived).
    replies: HashMap<u64, (u64, Option<Reply>)>,
    rx: Option<Box<Rx>>,
    /// Threads sleeping on the condvar: a notify is a futex syscall, made only for them.
    sleepers: usize,
    /// The sp fast path's grant on this generation's connection (docs/sp-fastpath.md).
    fast: Option<FastGrant>,
}

/// The process's connection (see the module doc).
pub(crate) struct Conn {
    /// The URL, made absolute (what `RUMP__PARSEDSERVER` passes to an exec'd image).
    url: String,
    addr: SpAddr,
    st: Mutex<State>,
    cv: Condvar,
}

/// How a wait ended without an answer.
enum WaitEnd {
    Lost,
}

fn last_errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Moves `fd` above 2 (never on stdio) and makes it survive exec.
fn dup_good(fd: c_int) -> Result<c_int, i32> {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let nfd = if fd <= 2 {
            let n = libc::fcntl(fd, libc::F_DUPFD, 3);
            let e = last_errno();
            libc::close(fd);
            if n == -1 {
                return Err(e);
            }
            n
        } else {
            fd
        };
        libc::fcntl(nfd, libc::F_SETFD, 0);
        Ok(nfd)
    }
}

fn parse(url: &str) -> Result<(SpAddr, String), i32> {
    let cwd = std::env::current_dir().ok();
    let addr = sp::url::parse(url, Role::Client, cwd.as_deref()).map_err(|e| {
        eprintln!("rump_sp: {e}");
        libc::EINVAL
    })?;
    let abs = match &addr {
        SpAddr::Unix(p) => format!("unix://{}", p.display()),
        SpAddr::Tcp(_) => url.to_string(),
    };
    Ok((addr, abs))
}

/// Connects, reads the banner (one read of at most 95 bytes ending in '\n'), sets
/// O_NONBLOCK. Returns the socket.
fn open_socket(addr: &SpAddr) -> Result<c_int, i32> {
    let io = |e: io::Error| e.raw_os_error().unwrap_or(libc::EIO);
    let fd = match addr {
        SpAddr::Unix(p) => std::os::unix::net::UnixStream::connect(p)
            .map_err(io)?
            .into_raw_fd(),
        SpAddr::Tcp(sa) => {
            let s = std::net::TcpStream::connect(sa).map_err(io)?;
            s.set_nodelay(true).map_err(io)?;
            s.into_raw_fd()
        }
    };
    let fd = dup_good(fd)?;
    let mut b = [0u8; sp::BANNER_MAX_LEN];
    let n = loop {
        // SAFETY: reading into a local buffer.
        let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), b.len()) };
        if n == -1 && last_errno() == libc::EINTR {
            continue;
        }
        break n;
    };
    if n <= 0 || b[n as usize - 1] != b'\n' {
        // SAFETY: our descriptor.
        unsafe { libc::close(fd) };
        return Err(libc::ECONNREFUSED);
    }
    // SAFETY: fcntl on our descriptor.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    Ok(fd)
}

/// A signalfd for every signal: readable while a signal is pending for us, so that a thread
/// waiting for the server can let it through (signals are blocked during a call).
fn make_sigfd() -> c_int {
    // SAFETY: sigset on a local; signalfd creates a new descriptor.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        let fd = libc::signalfd(-1, &all, 0);
        if fd == -1 {
            return -1;
        }
        dup_good(fd).unwrap_or(-1)
    }
}

/// Writes all of `buf` to the non-blocking socket (MSG_NOSIGNAL; EPIPE → ENOTCONN).
fn write_all(fd: c_int, mut buf: &[u8]) -> Result<(), i32> {
    while !buf.is_empty() {
        // SAFETY: sending from a live slice.
        let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
        if n >= 0 {
            buf = &buf[n as usize..];
            continue;
        }
        match last_errno() {
            libc::EINTR => {}
            libc::EAGAIN => {
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: polling one local pollfd.
                unsafe { libc::poll(&mut p, 1, -1) };
            }
            libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN => return Err(libc::ENOTCONN),
            e => return Err(e),
        }
    }
    Ok(())
}

/// This program's name as NetBSD's client sends it on Linux: `/proc/self/comm`, or `???`.
fn program_name() -> Vec<u8> {
    match std::fs::read("/proc/self/comm") {
        Ok(mut b) => {
            b.truncate(127);
            if b.last() == Some(&b'\n') {
                b.pop();
            }
            b
        }
        Err(_) => b"???".to_vec(),
    }
}

/// `rumpclient_fork_cancel`: a connection that releases the prepared process.
pub(crate) fn cancel_prefork(url: &str, cookie: &[u8; sp::COOKIE_LEN]) {
    let Ok((addr, _)) = parse(url) else { return };
    let Ok(fd) = open_socket(&addr) else { return };
    let mut f = Vec::new();
    sp::encode_handshake_fork_req(&mut f, 1, cookie, 1);
    let _ = write_all(fd, &f);
    // SAFETY: our descriptor.
    unsafe { libc::close(fd) };
}

impl Conn {
    fn new(url: String, addr: SpAddr, fd: c_int, sigfd: c_int, next_reqno: u64) -> Conn {
        Conn {
            url,
            addr,
            st: Mutex::new(State {
                fd,
                sigfd,
                generation: 0,
                dead: false,
                sending: false,
                receiving: false,
                next_reqno,
                replies: HashMap::new(),
                rx: Some(Rx::new()),
                sleepers: 0,
                fast: None,
            }),
            cv: Condvar::new(),
        }
    }

    /// Connects to `url` (banner read); the handshake is separate.
    pub(crate) fn connect(url: &str) -> Result<Conn, i32> {
        let (addr, abs) = parse(url)?;
        let fd = open_socket(&addr)?;
        // NetBSD's client consumes reqno 0 at every connect: the handshake is reqno 1.
        Ok(Conn::new(abs, addr, fd, make_sigfd(), 1))
    }

    /// Continues on a connection inherited across exec (no banner; reqnos from 0).
    pub(crate) fn inherit(url: &str, fd: c_int, sigfd: c_int) -> Result<Conn, i32> {
        let (addr, abs) = parse(url)?;
        if fd < 0 {
            return Err(libc::EBADF);
        }
        let sigfd = if sigfd >= 0 { sigfd } else { make_sigfd() };
        Ok(Conn::new(abs, addr, fd, sigfd, 0))
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps on the condvar, counted in `sleepers`.
    fn sleep<'a>(&self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        st.sleepers += 1;
        let mut st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        st.sleepers -= 1;
        st
    }

    /// Wakes the sleepers, if any (`st` is the state just changed, still locked).
    fn wake(&self, st: MutexGuard<'_, State>) {
        let any = st.sleepers > 0;
        drop(st);
        if any {
            self.cv.notify_all();
        }
    }

    pub(crate) fn fd(&self) -> c_int {
        self.lock().fd
    }

    pub(crate) fn sigfd(&self) -> c_int {
        self.lock().sigfd
    }

    /// Closes the socket and signalfd (a fork child dropping its parent's connection).
    /// Does not lock: the state may be locked by a thread the fork did not copy.
    pub(crate) fn close_fds(&self) {
        let (fd, sfd) = match self.st.try_lock() {
            Ok(g) => (g.fd, g.sigfd),
            Err(_) => return,
        };
        // SAFETY: closing this (child) process's copies of the connection's descriptors.
        unsafe {
            libc::close(fd);
            if sfd >= 0 {
                libc::close(sfd);
            }
        }
    }

    /// `rumpclient__closenotify` for close/dup2: if `fd` is one of ours, move ours.
    pub(crate) fn move_fd_away(&self, fd: c_int) -> c_int {
        let mut st = self.lock();
        for which in [0, 1] {
            let cur = if which == 0 { st.fd } else { st.sigfd };
            if cur != fd || cur < 0 {
                continue;
            }
            // SAFETY: duplicating and closing our own descriptor.
            let n = unsafe { libc::fcntl(cur, libc::F_DUPFD, 3) };
            if n == -1 {
                return -1;
            }
            // SAFETY: as above.
            unsafe { libc::close(cur) };
            if which == 0 {
                st.fd = n;
            } else {
                st.sigfd = n;
            }
        }
        0
    }

    /// Sends one frame built by `enc` under the send right; registers a waiter for `reqno`
    /// first if `wait`. Returns the generation it was sent on.
    fn send(
        &self,
        enc: impl FnOnce(&mut Vec<u8>, u64, Option<FastGrant>),
        wait: bool,
    ) -> Result<(u64, u64), i32> {
        let mut st = self.lock();
        while st.sending {
            st = self.sleep(st);
        }
        if st.dead {
            return Err(libc::ENOTCONN);
        }
        st.sending = true;
        let reqno = st.next_reqno;
        st.next_reqno = st.next_reqno.wrapping_add(1);
        let (fd, gen, fast) = (st.fd, st.generation, st.fast);
        if wait {
            st.replies.insert(reqno, (gen, None));
        }
        drop(st);
        let r = TX.with(|tx| match tx.try_borrow_mut() {
            Ok(mut f) => {
                f.clear();
                enc(&mut f, reqno, fast);
                let r = write_all(fd, &f);
                if f.capacity() > TX_KEEP_LEN {
                    *f = Vec::new();
                }
                r
            }
            Err(_) => {
                let mut f = Vec::new();
                enc(&mut f, reqno, fast);
                write_all(fd, &f)
            }
        });
        let mut st = self.lock();
        st.sending = false;
        if r.is_err() && wait {
            st.replies.remove(&reqno);
        }
        if matches!(r, Err(libc::ENOTCONN | libc::EBADF)) && st.generation == gen {
            st.dead = true;
        }
        self.wake(st);
        match r {
            Ok(()) => Ok((reqno, gen)),
            Err(libc::EBADF) => Err(libc::ENOTCONN),
            Err(e) => Err(e),
        }
    }

    /// Sends an answer to a server request (no waiter). Gives up if the connection of
    /// generation `gen` is gone.
    fn send_answer(&self, gen: u64, enc: impl FnOnce(&mut Vec<u8>)) {
        let mut st = self.lock();
        while st.sending && st.generation == gen {
            st = self.sleep(st);
        }
        if st.generation != gen || st.dead {
            return;
        }
        st.sending = true;
        let fd = st.fd;
        drop(st);
        let mut f = Vec::new();
        enc(&mut f);
        let _ = write_all(fd, &f);
        let mut st = self.lock();
        st.sending = false;
        self.wake(st);
    }

    /// Waits for the answer to `reqno` sent on generation `gen`, receiving for everybody
    /// while nobody else does.
    fn wait(&self, reqno: u64, gen: u64, omask: &libc::sigset_t) -> Result<Reply, WaitEnd> {
        let mut st = self.lock();
        loop {
            if let Some((_, Some(r))) = st.replies.get(&reqno) {
                let r = *r;
                st.replies.remove(&reqno);
                return Ok(r);
            }
            if st.generation != gen || st.dead {
                st.replies.remove(&reqno);
                return Err(WaitEnd::Lost);
            }
            if st.receiving {
                st = self.sleep(st);
                continue;
            }
            st.receiving = true;
            let mut rx = st.rx.take().unwrap_or_else(Rx::new);
            let (fd, sigfd) = (st.fd, st.sigfd);
            drop(st);
            let end = self.receive(&mut rx, fd, sigfd, reqno, gen, omask);
            st = self.lock();
            st.receiving = false;
            if st.generation == gen {
                st.rx = Some(rx);
                if end == RecvEnd::Lost {
                    st.dead = true;
                }
            }
            if st.sleepers > 0 {
                self.cv.notify_all();
            }
            if end == RecvEnd::Signal {
                // Let the pending signal's handler run with the caller's mask, then block
                // everything again and keep waiting (NetBSD's client: no EINTR).
                drop(st);
                // SAFETY: sigmask changes for this thread.
                unsafe {
                    let mut all: libc::sigset_t = std::mem::zeroed();
                    libc::sigfillset(&mut all);
                    libc::pthread_sigmask(libc::SIG_SETMASK, omask, std::ptr::null_mut());
                    libc::pthread_sigmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
                }
                st = self.lock();
            }
        }
    }

    /// The receive loop of the thread holding the receive right.
    fn receive(
        &self,
        rx: &mut Rx,
        fd: c_int,
        sigfd: c_int,
        mine: u64,
        gen: u64,
        omask: &libc::sigset_t,
    ) -> RecvEnd {
        loop {
            // Dispatch every complete frame already read.
            loop {
                let mut input = &rx.buf[rx.pos..rx.len];
                let avail = input.len();
                let f = match rx.dec.next(&mut input) {
                    Ok(f) => f,
                    Err(_) => return RecvEnd::Lost,
                };
                let consumed = avail - input.len();
                let Some(f) = f else {
                    rx.pos += consumed;
                    break;
                };
                let (h, p) = (f.header, f.payload);
                let got = self.dispatch(h, p, gen);
                rx.pos += consumed;
                if got == Some(mine) {
                    return RecvEnd::Mine;
                }
            }
            if self.lock().generation != gen {
                return RecvEnd::Lost;
            }
            // One read before anything else: where the server shares this CPU (pinned, or
            // put here by the scheduler's wake-up affinity, the usual case on a small machine)
            // it ran while we sent, and the answer is there — no poll needed.
            match read_nb(fd, &mut rx.buf) {
                ReadEnd::Data(n) => {
                    rx.pos = 0;
                    rx.len = n;
                    continue;
                }
                ReadEnd::Lost => return RecvEnd::Lost,
                ReadEnd::Empty => {}
            }
            // Not yet: spin a little — sched_yield, then another non-blocking read, until the
            // bound. The yield lets a server waiting for this CPU run at once instead of after
            // our time slice. Spins that see nothing back off (skipped for 1, 2, 4, … up to
            // 256 waits), so slow answers cost little CPU. Signals stay blocked meanwhile; a
            // pending one waits at most the bound.
            let limit = spin_limit();
            if rx.may_spin(limit) {
                let start = Instant::now();
                let got = loop {
                    // SAFETY: sched_yield has no preconditions.
                    unsafe { libc::sched_yield() };
                    match read_nb(fd, &mut rx.buf) {
                        ReadEnd::Data(n) => break Some(n),
                        ReadEnd::Lost => return RecvEnd::Lost,
                        ReadEnd::Empty => {}
                    }
                    if start.elapsed() >= limit {
                        break None;
                    }
                };
                rx.spun(got.is_some());
                if let Some(n) = got {
                    rx.pos = 0;
                    rx.len = n;
                    continue;
                }
            }
            let mut pfd = [
                libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: sigfd,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // The signalfd stays readable while a signal is pending; watch it only when no
            // pending signal is one the caller blocks itself (e.g. inside a signal handler that
            // makes a call), else this would spin without ever reading the socket.
            let nfds = if sigfd >= 0 && !blocked_signal_pending(omask) {
                2
            } else {
                1
            };
            // SAFETY: polling local pollfds.
            let n = unsafe { libc::poll(pfd.as_mut_ptr(), nfds, POLL_MS) };
            if n == 0 || (n < 0 && last_errno() == libc::EINTR) {
                continue;
            }
            if nfds == 2 && pfd[1].revents & libc::POLLIN != 0 {
                return RecvEnd::Signal;
            }
            if pfd[0].revents == 0 {
                continue;
            }
            match read_nb(fd, &mut rx.buf) {
                ReadEnd::Data(n) => {
                    rx.pos = 0;
                    rx.len = n;
                }
                ReadEnd::Empty => {}
                ReadEnd::Lost => return RecvEnd::Lost,
            }
        }
    }

    /// Handles one frame; returns the reqno of an answer it delivered.
    fn dispatch(&self, h: sp::Header, p: &[u8], gen: u64) -> Option<u64> {
        match h.class {
            Class::RESP | Class::ERROR => {
                let reply = if h.class == Class::ERROR {
                    Some(Reply::Error(ErrorCode(h.u)))
                } else {
                    match h.typ {
                        MsgType::SYSCALL => sp::parse_syscall_resp(p).map(Reply::Syscall),
                        MsgType::HANDSHAKE => sp::parse_handshake_resp(p)
                            .map(|e| Reply::Handshake(e, sp::fast::parse_fast_handshake_resp(p))),
                        MsgType::PREFORK => sp::parse_prefork_resp(p).map(Reply::Prefork),
                        _ => None,
                    }
                };
                let mut st = self.lock();
                if let (Some(r), Some(slot)) = (reply, st.replies.get_mut(&h.reqno)) {
                    slot.1 = Some(r);
                    self.wake(st);
                }
                Some(h.reqno)
            }
            Class::REQ => {
                match h.typ {
                    MsgType::COPYIN | MsgType::COPYINSTR => {
                        let req = sp::parse_copy_req(p)?;
                        let len = usize::try_from(req.len).unwrap_or(usize::MAX);
                        // SAFETY: the server names memory the program passed to the call
                        // (or derived from it); NetBSD's client reads it the same way.
                        let data = unsafe {
                            if h.typ == MsgType::COPYIN {
                                mem::copyin(req.addr, len)
                            } else {
                                mem::copyinstr(req.addr, len)
                            }
                        };
                        self.send_answer(gen, |o| sp::encode_copyin_resp(o, h.reqno, data));
                    }
                    MsgType::COPYOUT | MsgType::COPYOUTSTR => {
                        if let Some((addr, data)) = sp::parse_copyout_req(p) {
                            // SAFETY: as for COPYIN: the program's own buffer.
                            unsafe { mem::copyout(addr, data) };
                        }
                    }
                    MsgType::ANONMMAP => {
                        let size = sp::parse_u64(p).unwrap_or(0) as usize;
                        // SAFETY: a fresh anonymous mapping.
                        let a = unsafe {
                            libc::mmap(
                                std::ptr::null_mut(),
                                size,
                                libc::PROT_READ | libc::PROT_WRITE,
                                libc::MAP_ANON | libc::MAP_PRIVATE,
                                -1,
                                0,
                            )
                        };
                        let a = if a == libc::MAP_FAILED { 0 } else { a as u64 };
                        self.send_answer(gen, |o| sp::encode_anonmmap_resp(o, h.reqno, a));
                    }
                    MsgType::RAISE => {
                        if let Some(s) = mem::host_signal(h.u) {
                            // SAFETY: raise in this thread; signals are blocked during the
                            // call, so the handler runs when the call returns.
                            unsafe { libc::raise(s) };
                        }
                    }
                    t => {
                        eprintln!("PANIC: INVALID TYPE {}", t.0);
                        std::process::abort();
                    }
                }
                None
            }
            _ => None,
        }
    }

    /// Sends a request and waits for its answer, reconnecting as configured.
    fn request(&self, enc: &Encoder<'_>, omask: &libc::sigset_t) -> Result<Reply, i32> {
        let mut retried_once = false;
        loop {
            match self.send(enc, true) {
                Ok((reqno, gen)) => match self.wait(reqno, gen, omask) {
                    Ok(r) => return Ok(r),
                    // Lost while waiting: send again (which reconnects if allowed).
                    Err(WaitEnd::Lost) => {}
                },
                Err(libc::ENOTCONN) => {
                    if crate::retry_timeout() == 0 || retried_once {
                        return Err(libc::ENOTCONN);
                    }
                    self.reconnect(omask)?;
                    if crate::retry_timeout() == -2 {
                        retried_once = true;
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reconnects after a loss, as `rumpclient_setconnretry` says (a new GUEST process).
    fn reconnect(&self, omask: &libc::sigset_t) -> Result<(), i32> {
        let timeout = crate::retry_timeout();
        if timeout == -3 {
            // SAFETY: _exit has no preconditions.
            unsafe { libc::_exit(1) };
        }
        let start = Instant::now();
        let mut last_msg = Instant::now();
        let mut tries: u32 = 0;
        loop {
            // Take the send right, so nobody sends on the dead connection meanwhile.
            let mut st = self.lock();
            while st.sending || st.receiving {
                st = self.sleep(st);
            }
            if !st.dead {
                return Ok(()); // another thread reconnected already
            }
            if tries == 1 {
                eprintln!("rump_sp: connection to kernel lost, trying to reconnect ...");
            } else if last_msg.elapsed() > Duration::from_secs(120) {
                eprintln!("rump_sp: still trying to reconnect ...");
                last_msg = Instant::now();
            }
            if timeout > 0 && start.elapsed() >= Duration::from_secs(timeout as u64) {
                eprintln!("rump_sp: reconnect failed, {timeout} second timeout");
                return Err(libc::ENOTCONN);
            }
            st.sending = true;
            // Close both descriptors before making new ones, as NetBSD's client does (the
            // program may have closed them already, e.g. with closefrom: then their numbers
            // must not be closed once a new descriptor could have taken them).
            // SAFETY: closing the lost connection's descriptors; nobody uses them now.
            unsafe {
                if st.fd >= 0 {
                    libc::close(st.fd);
                }
                if st.sigfd >= 0 {
                    libc::close(st.sigfd);
                }
            }
            st.fd = -1;
            st.sigfd = -1;
            drop(st);
            let backoff = if tries < 10 {
                Duration::from_millis(100 * u64::from(tries))
            } else {
                Duration::from_secs(u64::from((tries - 9).min(10)))
            };
            std::thread::sleep(backoff);
            tries += 1;
            let fresh = open_socket(&self.addr);
            let mut st = self.lock();
            let Ok(fd) = fresh else {
                st.sending = false;
                self.wake(st);
                continue;
            };
            // We keep the send right until the new process is ours, so that nothing but the
            // handshake goes out first.
            st.fd = fd;
            st.sigfd = make_sigfd();
            st.generation += 1;
            st.dead = false;
            st.rx = Some(Rx::new());
            st.fast = None;
            // The placeholder reqno consumed at every connect, then the handshake's.
            let reqno = st.next_reqno.wrapping_add(1);
            st.next_reqno = reqno.wrapping_add(1);
            let gen = st.generation;
            st.replies.insert(reqno, (gen, None));
            drop(st);
            // The new process gets the fast path as the first did: asked for unless this
            // process saw it refused (the server may have been replaced by one without it:
            // then ERROR AUTH and a close, and the next attempt at once hand-shakes plain).
            let ask_fast = want_fast();
            let mut name = program_name();
            let mut f = Vec::new();
            if ask_fast {
                name.push(0);
                sp::fast::encode_fast_handshake_req(&mut f, reqno, HandshakeType::GUEST.0, &name);
            } else {
                sp::encode_handshake_name_req(&mut f, reqno, HandshakeType::GUEST, &name);
            }
            // Not sent at all is a failed attempt; sent and answered ERROR AUTH, or closed
            // before any answer, is the refusal of docs/sp-fastpath.md §1.3.
            let answer = match write_all(fd, &f) {
                Ok(()) => Some(self.wait(reqno, gen, omask)),
                Err(_) => None,
            };
            let (ok, refused, grant) = match answer {
                Some(Ok(Reply::Handshake(0, g))) => (true, false, g),
                Some(Ok(Reply::Error(ErrorCode::AUTH)) | Err(WaitEnd::Lost)) if ask_fast => {
                    (false, true, None)
                }
                _ => (false, false, None),
            };
            let mut st = self.lock();
            st.sending = false;
            st.replies.remove(&reqno);
            if ok {
                st.fast = grant;
            } else {
                st.dead = true;
            }
            self.wake(st);
            if refused {
                FAST_REFUSED.store(true, std::sync::atomic::Ordering::Relaxed);
                tries -= 1; // not a failed attempt: try again at once, plain
                continue;
            }
            if ok {
                if tries != 1 {
                    eprintln!("rump_sp: reconnected!");
                }
                return Ok(());
            }
        }
    }

    /// Sends a handshake and waits for its answer: the grant it carried, if any.
    fn handshake(
        &self,
        enc: &dyn Fn(&mut Vec<u8>, u64),
        omask: &libc::sigset_t,
    ) -> Result<Option<FastGrant>, Refusal> {
        // A handshake is not re-sent on loss (it would be on a new connection anyway).
        let (reqno, gen) = self
            .send(|o, r, _| enc(o, r), true)
            .map_err(Refusal::Errno)?;
        match self.wait(reqno, gen, omask) {
            Ok(Reply::Handshake(0, g)) => Ok(g),
            Ok(Reply::Handshake(e, _)) => Err(Refusal::Errno(e)),
            Ok(Reply::Error(ErrorCode::AUTH)) => Err(Refusal::Auth),
            Ok(Reply::Error(c)) => Err(Refusal::Errno(c.errno())),
            Ok(_) => Err(Refusal::Errno(libc::EPROTO)),
            Err(WaitEnd::Lost) => Err(Refusal::Lost),
        }
    }

    /// The connection's first handshake (GUEST or FORK with `payload`). The sp fast path is
    /// asked for unless `RUMP_SP_FASTPATH=0` or this process saw the server refuse it; a
    /// refusal (ERROR AUTH and a close, as NetBSD's server answers) is followed by the plain
    /// handshake on a new connection (docs/sp-fastpath.md §1.3).
    fn first_handshake(
        &self,
        base: HandshakeType,
        payload: &[u8],
        omask: &libc::sigset_t,
    ) -> Result<(), i32> {
        if want_fast() {
            let fast = |o: &mut Vec<u8>, r: u64| {
                sp::fast::encode_fast_handshake_req(o, r, base.0, payload)
            };
            match self.handshake(&fast, omask) {
                Ok(g) => {
                    self.lock().fast = g;
                    return Ok(());
                }
                Err(Refusal::Errno(e)) => return Err(e),
                Err(Refusal::Auth | Refusal::Lost) => {
                    FAST_REFUSED.store(true, std::sync::atomic::Ordering::Relaxed);
                    self.reopen()?;
                }
            }
        }
        let plain = |o: &mut Vec<u8>, r: u64| sp::encode_handshake_req(o, r, base, payload);
        self.handshake(&plain, omask)
            .map(|_| ())
            .map_err(Refusal::errno)
    }

    /// A fresh connection in place of a refused one (before any process exists on it).
    fn reopen(&self) -> Result<(), i32> {
        let fd = open_socket(&self.addr)?;
        let mut st = self.lock();
        // SAFETY: the refused connection's descriptor; nothing else uses it during init.
        unsafe { libc::close(st.fd) };
        st.fd = fd;
        st.generation += 1;
        st.dead = false;
        st.rx = Some(Rx::new());
        st.fast = None;
        st.next_reqno = 1; // a new connection: reqno 0 is the placeholder (sp §7)
        Ok(())
    }

    pub(crate) fn handshake_guest(&self, omask: &libc::sigset_t) -> Result<(), i32> {
        let mut name = program_name();
        name.push(0);
        self.first_handshake(HandshakeType::GUEST, &name, omask)
    }

    /// The EXEC handshake on an inherited connection; `fast`: the image before the exec had
    /// the fast path, so the server knows it and it is asked for again.
    pub(crate) fn handshake_exec(&self, fast: bool, omask: &libc::sigset_t) -> Result<(), i32> {
        let mut name = program_name();
        name.push(0);
        let g = match fast && want_fast() {
            true => self.handshake(
                &|o, r| sp::fast::encode_fast_handshake_req(o, r, HandshakeType::EXEC.0, &name),
                omask,
            ),
            false => self.handshake(
                &|o, r| sp::encode_handshake_req(o, r, HandshakeType::EXEC, &name),
                omask,
            ),
        };
        self.lock().fast = g.map_err(Refusal::errno)?;
        Ok(())
    }

    /// Whether this connection speaks the fast path (passed across exec).
    pub(crate) fn is_fast(&self) -> bool {
        self.lock().fast.is_some()
    }

    pub(crate) fn handshake_fork(
        &self,
        cookie: &[u8; sp::COOKIE_LEN],
        omask: &libc::sigset_t,
    ) -> Result<(), i32> {
        let mut payload = cookie.to_vec();
        payload.extend_from_slice(&0i32.to_le_bytes());
        self.first_handshake(HandshakeType::FORK, &payload, omask)
    }

    pub(crate) fn prefork(&self, omask: &libc::sigset_t) -> Result<[u8; sp::COOKIE_LEN], i32> {
        match self.request(&|o, r, _| sp::encode_prefork_req(o, r), omask)? {
            Reply::Prefork(c) => Ok(c),
            Reply::Error(c) => Err(c.errno()),
            _ => Err(libc::EPROTO),
        }
    }

    /// A system call: re-sent on TRYAGAIN and, if allowed, after a reconnect.
    pub(crate) fn syscall(
        &self,
        nr: u32,
        data: &[u8],
        omask: &libc::sigset_t,
    ) -> Result<SyscallResp, i32> {
        // On the fast path, what the call copies in travels with it (read once, re-sent as
        // is on TRYAGAIN; a connection that lost the fast path meanwhile gets plain sp).
        let mut slots = [0u64; sp::MAX_SYSCALL_ARGS];
        let nslots = data
            .len()
            .div_ceil(sp::SYSCALL_ARG_SLOT)
            .min(sp::MAX_SYSCALL_ARGS);
        let pre = match self.lock().fast {
            Some(g) => {
                slots = sp::syscall_args(data);
                crate::fastpath::gather(nr, &slots, &g)
            }
            None => Vec::new(),
        };
        let enc = |o: &mut Vec<u8>, r: u64, fast: Option<FastGrant>| match fast {
            Some(g) if !pre.is_empty() => {
                let mut cand: Vec<(u64, &[u8])> = pre.iter().map(|(a, d)| (*a, &d[..])).collect();
                sp::fast::encode_fast_syscall(o, r, nr, &slots[..nslots], &mut cand, &g);
            }
            _ => encode_syscall(o, r, nr, data),
        };
        loop {
            match self.request(&enc, omask)? {
                Reply::Syscall(r) => return Ok(r),
                Reply::Error(ErrorCode::TRYAGAIN) => std::thread::yield_now(),
                Reply::Error(c) => return Err(c.errno()),
                _ => return Err(libc::EPROTO),
            }
        }
    }
}

/// Encodes a request given its reqno and the connection's fast-path grant.
type Encoder<'a> = dyn Fn(&mut Vec<u8>, u64, Option<FastGrant>) + 'a;

/// How a handshake was not accepted.
enum Refusal {
    /// ERROR AUTH: what a server without the fast path answers a fast handshake.
    Auth,
    /// The connection closed first.
    Lost,
    /// Any other failure, as an errno.
    Errno(i32),
}

impl Refusal {
    fn errno(self) -> i32 {
        match self {
            Refusal::Auth => ErrorCode::AUTH.errno(),
            Refusal::Lost => libc::ENOTCONN,
            Refusal::Errno(e) => e,
        }
    }
}

/// Set once a server refused the fast path: later connections (forks) do not ask again.
static FAST_REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether to ask for the fast path: not after a refusal, not with `RUMP_SP_FASTPATH=0`.
fn want_fast() -> bool {
    !FAST_REFUSED.load(std::sync::atomic::Ordering::Relaxed)
        && std::env::var_os("RUMP_SP_FASTPATH").is_none_or(|v| v != "0")
}

/// Whether a signal is pending that the caller's mask `omask` blocks.
fn blocked_signal_pending(omask: &libc::sigset_t) -> bool {
    // A caller that blocks nothing (the common case) needs no sigpending call.
    // SAFETY: sigset_t is plain data; reading its bytes is defined.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (omask as *const libc::sigset_t).cast::<u8>(),
            std::mem::size_of::<libc::sigset_t>(),
        )
    };
    if bytes.iter().all(|&b| b == 0) {
        return false;
    }
    // SAFETY: sigpending and sigismember on locals.
    unsafe {
        let mut pend: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut pend);
        (1..libc::SIGRTMAX())
            .any(|s| libc::sigismember(&pend, s) == 1 && libc::sigismember(omask, s) == 1)
    }
}

/// A SYSCALL request carrying the raw argument block (any length, as NetBSD's client).
fn encode_syscall(out: &mut Vec<u8>, reqno: u64, nr: u32, data: &[u8]) {
    let h = sp::Header {
        len: (sp::HEADER_LEN + data.len()) as u64,
        reqno,
        class: Class::REQ,
        typ: MsgType::SYSCALL,
        u: nr,
    };
    out.extend_from_slice(&h.to_bytes());
    out.extend_from_slice(data);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecvEnd {
    Mine,
    Lost,
    Signal,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Failed spins skip the next 1, 2, 4, … up to 256 waits; a spin that saw data resets it;
    /// a zero bound never spins.
    #[test]
    fn spin_backs_off_and_recovers() {
        let lim = Duration::from_micros(50);
        let mut rx = Rx::new();
        assert!(rx.may_spin(lim));
        let mut skipped = Vec::new();
        for _ in 0..10 {
            rx.spun(false);
            let mut n = 0;
            while !rx.may_spin(lim) {
                n += 1;
            }
            skipped.push(n);
        }
        assert_eq!(skipped, [1, 2, 4, 8, 16, 32, 64, 128, 256, 256]);
        rx.spun(true);
        assert!(rx.may_spin(lim));
        rx.spun(false);
        assert!(!rx.may_spin(lim), "back to one skipped wait");
        assert!(rx.may_spin(lim));
        assert!(!Rx::new().may_spin(Duration::ZERO));
    }

    /// A non-blocking read tells data, nothing yet and a closed peer apart.
    #[test]
    fn read_nb_ends() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&a);
        let mut buf = [0u8; 16];
        assert!(matches!(read_nb(fd, &mut buf), ReadEnd::Empty));
        std::io::Write::write_all(&mut &b, b"abc").unwrap();
        assert!(matches!(read_nb(fd, &mut buf), ReadEnd::Data(3)));
        drop(b);
        assert!(matches!(read_nb(fd, &mut buf), ReadEnd::Lost));
    }
}

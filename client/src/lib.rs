//! A blocking Rust rumpclient: connect to an sp server, hand-shake, and issue NetBSD system
//! calls, serving the server's copy requests from memory regions passed with each call.
//!
//! Wire behaviour follows librumpclient (`shared/docs/sp-protocol.md`): one `read()` of at most
//! 95 bytes for the banner, reqno 0 consumed as a placeholder so the handshake is reqno 1,
//! `TCP_NODELAY` on TCP, syscalls re-sent on ERROR `TRYAGAIN`, COPYOUT and RAISE unanswered.
//! Unlike librumpclient, copy requests are served only from the [`Buf`] regions given with the
//! call, never from arbitrary addresses; a client may therefore be used from safe code.
//!
//! Syscall arguments are 8-byte slots; 32-bit values go in the low 4 bytes with the upper 4
//! zero (see [`int_arg`]). Errors returned by the kernel are NetBSD errno numbers.

mod error;
pub mod fs;
mod mem;
pub mod net;
mod stream;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::ffi::CStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use sp::fast::{FastGrant, Prefetch};
use sp::url::{self, Role};
use sp::{Class, ErrorCode, Frame, FrameDecoder, HandshakeType, MsgType, SyscallResp};

pub use error::{Error, Result};
pub use mem::{addr_of, Buf};
use stream::Stream;

/// NetBSD system call numbers used by the typed helpers (netbsd-abi.md §3).
pub mod nr {
    /// `read(fd, buf, nbyte)`.
    pub const READ: u32 = 3;
    /// `write(fd, buf, nbyte)`.
    pub const WRITE: u32 = 4;
    /// `close(fd)`.
    pub const CLOSE: u32 = 6;
    /// `getpid()` → pid, ppid.
    pub const GETPID: u32 = 20;
    /// `__sysctl(name, namelen, oldp, oldlenp, newp, newlen)`.
    pub const SYSCTL: u32 = 202;
    /// `getuid()` → uid, euid.
    pub const GETUID: u32 = 24;
    /// `geteuid()`.
    pub const GETEUID: u32 = 25;
    /// `getppid()`.
    pub const GETPPID: u32 = 39;
    /// `dup(fd)`.
    pub const DUP: u32 = 41;
    /// `getegid()`.
    pub const GETEGID: u32 = 43;
    /// `getgid()` → gid, egid.
    pub const GETGID: u32 = 47;
    /// `umask(newmask)`.
    pub const UMASK: u32 = 60;
    /// `dup2(from, to)`.
    pub const DUP2: u32 = 90;
    /// `fcntl(fd, cmd, arg)`.
    pub const FCNTL: u32 = 92;
    /// `writev(fd, iov, iovcnt)`.
    pub const WRITEV: u32 = 121;
    /// `reboot(opt, bootstr)`.
    pub const REBOOT: u32 = 208;
    /// `issetugid()`.
    pub const ISSETUGID: u32 = 305;
    /// `dup3(from, to, flags)`, pre-NetBSD-10 number (compat_100 in 2024).
    pub const DUP3_COMPAT: u32 = 454;
    /// `__dup3100` — `dup3(from, to, flags)`, NetBSD 10 number.
    pub const DUP3: u32 = 505;
}

/// A 32-bit argument in its slot: low 4 bytes, upper 4 zero (not sign-extended), as the
/// generated librumpclient stubs send it. `int_arg(-100)` (`AT_FDCWD`) is `0xffff_ff9c`.
pub fn int_arg(v: i32) -> u64 {
    u64::from(v as u32)
}

/// `ENOENT`, returned by [`Client::from_env`] when `RUMP_SERVER` is not set.
const ENOENT: i32 = 2;
/// Size of the socket read buffer.
const READ_BUF_LEN: usize = 64 * 1024;
/// Largest frame the client accepts from the server (header included). The server is trusted
/// more than clients are, so this only guards against a corrupt stream; it must exceed any
/// COPYOUT the server may send (servers cap theirs by their own frame limit, 1 MiB default).
pub const CLIENT_MAX_FRAME_LEN: usize = sp::HEADER_LEN + sp::COPY_REQ_LEN + (64 << 20);

/// What an answer frame said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    Syscall(SyscallResp),
    /// The error, and the fast-path grant if the answer carried one.
    Handshake(i32, Option<FastGrant>),
    Prefork([u8; sp::COOKIE_LEN]),
    Error(ErrorCode),
}

/// What handling one incoming frame produced.
enum Event {
    /// A server request that was served (or ignored).
    Served,
    /// RAISE with this NetBSD signal number.
    Raise(u32),
    /// An answer to one of our requests.
    Reply(u64, Reply),
}

/// A pipelined syscall, kept so that a `TRYAGAIN` can be re-sent.
#[derive(Debug, Clone, Copy)]
struct Outstanding {
    sysnum: u32,
    args: [u64; sp::MAX_SYSCALL_ARGS],
    nargs: usize,
}

/// Receive side: the socket read buffer and the frame decoder.
struct Reader {
    dec: FrameDecoder,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
}

impl Reader {
    fn new() -> Reader {
        Reader {
            dec: FrameDecoder::new(CLIENT_MAX_FRAME_LEN),
            buf: vec![0u8; READ_BUF_LEN].into_boxed_slice(),
            pos: 0,
            len: 0,
        }
    }

    /// The next complete frame among the bytes already read, if any.
    fn poll(&mut self) -> Result<Option<Frame<'_>>> {
        let mut input = &self.buf[self.pos..self.len];
        let avail = input.len();
        let r = self.dec.next(&mut input);
        self.pos += avail - input.len();
        r.map_err(|e| Error::Protocol(e.to_string()))
    }

    /// Reads more bytes from the socket (blocking). EOF is an error: a call was in progress.
    fn fill(&mut self, s: &mut Stream) -> Result<()> {
        debug_assert_eq!(self.pos, self.len, "fill only once the buffer is consumed");
        let n = loop {
            match s.read(&mut self.buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Io(e)),
            }
        };
        if n == 0 {
            let e = io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection");
            return Err(Error::Io(e));
        }
        self.pos = 0;
        self.len = n;
        Ok(())
    }
}

/// Send side: the socket and a reusable frame buffer.
struct Writer {
    stream: Stream,
    buf: Vec<u8>,
}

impl Writer {
    /// Encodes one frame with `enc` and writes it whole.
    fn send(&mut self, enc: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
        self.buf.clear();
        enc(&mut self.buf);
        let r = self.stream.write_all(&self.buf);
        if self.buf.capacity() > READ_BUF_LEN {
            self.buf = Vec::new();
        }
        r.map_err(Error::Io)
    }
}

/// One connection to an sp server, i.e. one process in the rump kernel.
pub struct Client {
    rd: Reader,
    wr: Writer,
    banner: String,
    next_reqno: u64,
    /// Answers that arrived for pipelined requests while waiting for another one.
    pending: VecDeque<(u64, Reply)>,
    /// Pipelined syscalls sent and not yet received.
    outstanding: HashMap<u64, Outstanding>,
    /// NetBSD number of the last signal the server raised (RAISE), if any.
    last_signal: Option<u32>,
    /// The fast path in use: what the server granted (docs/sp-fastpath.md).
    fast: Option<FastGrant>,
}

/// How to connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Ask for the sp fast path in the handshake; a server that refuses it (NetBSD's) is
    /// connected to again with plain sp. Default: on unless `RUMP_SP_FASTPATH=0`.
    pub fast_path: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            fast_path: std::env::var_os("RUMP_SP_FASTPATH").is_none_or(|v| v != "0"),
        }
    }
}

/// URLs whose server refused a fast handshake in this process: later connections (forks)
/// speak plain sp at once instead of paying the refusal again.
static PLAIN_ONLY: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn plain_only(url: &str) -> bool {
    PLAIN_ONLY
        .lock()
        .map(|v| v.iter().any(|u| u == url))
        .unwrap_or(false)
}

fn remember_plain_only(url: &str) {
    if let Ok(mut v) = PLAIN_ONLY.lock() {
        if !v.iter().any(|u| u == url) && v.len() < 64 {
            v.push(url.to_string());
        }
    }
}

impl Client {
    /// Connects to `url` as a new process named after this program (`/proc/self/comm`, or
    /// `???` as librumpclient).
    pub fn connect(url: &str) -> Result<Client> {
        Client::connect_named(url, &program_name())
    }

    /// Connects to `url` as a new process (GUEST handshake) with command name `name`.
    pub fn connect_named(url: &str, name: &str) -> Result<Client> {
        Client::connect_with(url, name, Options::default())
    }

    /// Connects to `url` as a new process named `name`, with `opts`.
    pub fn connect_with(url: &str, name: &str, opts: Options) -> Result<Client> {
        let mut payload = name.as_bytes().to_vec();
        payload.push(0);
        Client::open_handshake(url, HandshakeType::GUEST, &payload, opts)
    }

    /// Opens a new connection and claims the process prepared by [`Client::prefork`] on
    /// another connection (HANDSHAKE FORK with `cancel` = 0).
    pub fn connect_fork(url: &str, cookie: &[u8; sp::COOKIE_LEN]) -> Result<Client> {
        Client::connect_fork_with(url, cookie, Options::default())
    }

    /// [`Client::connect_fork`] with `opts`.
    pub fn connect_fork_with(
        url: &str,
        cookie: &[u8; sp::COOKIE_LEN],
        opts: Options,
    ) -> Result<Client> {
        let mut payload = Vec::with_capacity(sp::HANDSHAKE_FORK_LEN);
        payload.extend_from_slice(cookie);
        payload.extend_from_slice(&0i32.to_le_bytes());
        Client::open_handshake(url, HandshakeType::FORK, &payload, opts)
    }

    /// Connects and hand-shakes; with the fast path asked for, a refusal (ERROR AUTH, or the
    /// connection closed, as NetBSD's server answers an unknown subtype before it creates a
    /// process or consumes a cookie) is followed by a plain handshake on a new connection.
    fn open_handshake(
        url: &str,
        sub: HandshakeType,
        payload: &[u8],
        opts: Options,
    ) -> Result<Client> {
        if opts.fast_path && !plain_only(url) {
            let mut c = Client::open_url(url)?;
            let reqno = c.take_reqno();
            c.wr.send(|o| sp::fast::encode_fast_handshake_req(o, reqno, sub.0, payload))?;
            match c.wait_for(reqno, &mut []) {
                Ok(Reply::Handshake(0, g)) => {
                    c.fast = g;
                    return Ok(c);
                }
                Ok(Reply::Handshake(e, _)) => return Err(Error::Errno(e)),
                Ok(Reply::Error(ErrorCode::AUTH)) | Err(Error::Io(_)) => remember_plain_only(url),
                Ok(Reply::Error(code)) => return Err(Error::Sp(code)),
                Ok(r) => return Err(unexpected(reqno, r)),
                Err(e) => return Err(e),
            }
        }
        let mut c = Client::open_url(url)?;
        let reqno = c.take_reqno();
        c.wr.send(|o| sp::encode_handshake_req(o, reqno, sub, payload))?;
        c.finish_handshake(reqno)?;
        Ok(c)
    }

    /// What the server granted if this connection uses the sp fast path.
    pub fn fast_path(&self) -> Option<FastGrant> {
        self.fast
    }

    /// Connects to the server named by `RUMP__PARSEDSERVER` or else `RUMP_SERVER`, as
    /// `rumpclient_init()` does. If neither is set, prints `error: RUMP_SERVER not set` to
    /// stderr (as librumpclient) and fails with `Errno(ENOENT)`.
    pub fn from_env() -> Result<Client> {
        let parsed = std::env::var("RUMP__PARSEDSERVER").ok();
        let url = server_url(parsed, std::env::var("RUMP_SERVER").ok()).inspect_err(|_| {
            eprintln!("error: RUMP_SERVER not set");
        })?;
        Client::connect(&url)
    }

    /// Runs the client protocol over an already connected unix stream (banner, then a GUEST
    /// handshake named `name`); for socketpairs and tests.
    pub fn from_unix_stream(s: UnixStream, name: &str) -> Result<Client> {
        let mut c = Client::start(Stream::Unix(s))?;
        c.handshake(HandshakeType::GUEST, name)?;
        Ok(c)
    }

    /// Parses the URL, connects and reads the banner.
    fn open_url(url: &str) -> Result<Client> {
        let cwd = std::env::current_dir().ok();
        let addr = url::parse(url, Role::Client, cwd.as_deref())?;
        Client::start(Stream::connect(&addr)?)
    }

    /// Reads the banner: one `read()` of at most 95 bytes that must end in `'\n'` (§2.4).
    fn start(mut stream: Stream) -> Result<Client> {
        let mut b = [0u8; sp::BANNER_MAX_LEN];
        let n = loop {
            match stream.read(&mut b) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Io(e)),
            }
        };
        if n == 0 || b[n - 1] != b'\n' {
            let got = String::from_utf8_lossy(&b[..n]);
            return Err(Error::Protocol(format!("invalid banner {got:?}")));
        }
        Ok(Client {
            rd: Reader::new(),
            wr: Writer {
                stream,
                buf: Vec::with_capacity(256),
            },
            banner: String::from_utf8_lossy(&b[..n]).into_owned(),
            // librumpclient consumes reqno 0 as a placeholder at every connect (§7).
            next_reqno: 1,
            pending: VecDeque::new(),
            outstanding: HashMap::new(),
            last_signal: None,
            fast: None,
        })
    }

    /// The banner the server sent, including its trailing newline.
    pub fn banner(&self) -> &str {
        &self.banner
    }

    /// The socket's file descriptor.
    pub fn as_raw_fd(&self) -> RawFd {
        self.wr.stream.as_raw_fd()
    }

    /// Sets a timeout for every blocking wait on the server (`None` = wait forever, the
    /// default and librumpclient's behaviour). A timed-out call leaves the connection unusable.
    pub fn set_timeout(&self, t: Option<Duration>) -> Result<()> {
        self.wr.stream.set_read_timeout(t)?;
        self.wr.stream.set_write_timeout(t)?;
        Ok(())
    }

    /// The NetBSD number of the last signal the server raised (RAISE requests are otherwise
    /// ignored: a Rust client has no business raising NetBSD signals in itself).
    pub fn last_signal(&self) -> Option<u32> {
        self.last_signal
    }

    fn take_reqno(&mut self) -> u64 {
        let r = self.next_reqno;
        self.next_reqno = self.next_reqno.wrapping_add(1);
        r
    }

    /// Sends a GUEST or EXEC handshake with `name\0` and waits for its answer.
    fn handshake(&mut self, sub: HandshakeType, name: &str) -> Result<()> {
        let reqno = self.take_reqno();
        self.wr
            .send(|o| sp::encode_handshake_name_req(o, reqno, sub, name.as_bytes()))?;
        self.finish_handshake(reqno)
    }

    fn finish_handshake(&mut self, reqno: u64) -> Result<()> {
        match self.wait_for(reqno, &mut [])? {
            Reply::Handshake(0, _) => Ok(()),
            Reply::Handshake(e, _) => Err(Error::Errno(e)),
            Reply::Error(c) => Err(Error::Sp(c)),
            r => Err(unexpected(reqno, r)),
        }
    }

    /// Asks the server to prepare a fork of this process (PREFORK); returns the cookie to pass
    /// to [`Client::connect_fork`] from the new connection.
    pub fn prefork(&mut self) -> Result<[u8; sp::COOKIE_LEN]> {
        let reqno = self.take_reqno();
        self.wr.send(|o| sp::encode_prefork_req(o, reqno))?;
        match self.wait_for(reqno, &mut [])? {
            Reply::Prefork(c) => Ok(c),
            Reply::Error(c) => Err(Error::Sp(c)),
            r => Err(unexpected(reqno, r)),
        }
    }

    /// Tells the server this process now runs a new program `name` (HANDSHAKE EXEC on the same
    /// connection, §13.2): close-on-exec descriptors are closed, the pid stays. A connection
    /// on the fast path asks for it again (the server knows it); the new image speaks what
    /// this handshake asked for.
    pub fn exec_handshake(&mut self, name: &str) -> Result<()> {
        if self.fast.is_none() {
            return self.handshake(HandshakeType::EXEC, name);
        }
        let mut payload = name.as_bytes().to_vec();
        payload.push(0);
        let reqno = self.take_reqno();
        self.wr.send(|o| {
            sp::fast::encode_fast_handshake_req(o, reqno, HandshakeType::EXEC.0, &payload)
        })?;
        match self.wait_for(reqno, &mut [])? {
            Reply::Handshake(0, g) => {
                self.fast = g;
                Ok(())
            }
            Reply::Handshake(e, _) => Err(Error::Errno(e)),
            Reply::Error(c) => Err(Error::Sp(c)),
            r => Err(unexpected(reqno, r)),
        }
    }

    /// Runs syscall `sysnum` and returns `retval[0..2]`; a non-zero error becomes
    /// [`Error::Errno`]. Copy requests are served from `mem`.
    ///
    /// # Panics
    /// If more than 8 arguments are given.
    pub fn syscall(&mut self, sysnum: u32, args: &[u64], mem: &mut [Buf<'_>]) -> Result<[i64; 2]> {
        let r = self.syscall_raw(sysnum, args, mem)?;
        if r.error != 0 {
            return Err(Error::Errno(r.error));
        }
        Ok(r.retval)
    }

    /// Runs a syscall and returns the raw response (error and retvals), re-sending it with a
    /// new reqno while the server answers `TRYAGAIN` (librumpclient behaviour).
    ///
    /// # Panics
    /// If more than 8 arguments are given.
    pub fn syscall_raw(
        &mut self,
        sysnum: u32,
        args: &[u64],
        mem: &mut [Buf<'_>],
    ) -> Result<SyscallResp> {
        assert!(
            args.len() <= sp::MAX_SYSCALL_ARGS,
            "at most 8 syscall arguments"
        );
        loop {
            let reqno = self.take_reqno();
            match self.fast {
                // Everything the server may read travels with the request (bounded by the
                // grant); what it asks beyond that is served from `mem` as in plain sp.
                Some(g) if mem.iter().any(|b| b.readable().is_some()) => {
                    let mut pf = Prefetch::new();
                    for b in mem.iter() {
                        if let Some(s) = b.readable() {
                            pf.push(addr_of(s), s);
                        }
                    }
                    self.wr.send(|o| pf.encode(o, reqno, sysnum, args, &g))?;
                }
                _ => self
                    .wr
                    .send(|o| sp::encode_syscall_req(o, reqno, sysnum, args))?,
            }
            match self.wait_for(reqno, mem)? {
                Reply::Syscall(r) => return Ok(r),
                Reply::Error(ErrorCode::TRYAGAIN) => std::thread::yield_now(),
                Reply::Error(c) => return Err(Error::Sp(c)),
                r => return Err(unexpected(reqno, r)),
            }
        }
    }

    /// Sends a syscall without waiting (pipelining); collect its answer with
    /// [`Client::recv_syscall`]. Returns its reqno.
    ///
    /// # Panics
    /// If more than 8 arguments are given.
    pub fn send_syscall(&mut self, sysnum: u32, args: &[u64]) -> Result<u64> {
        assert!(
            args.len() <= sp::MAX_SYSCALL_ARGS,
            "at most 8 syscall arguments"
        );
        let reqno = self.take_reqno();
        let mut slots = [0u64; sp::MAX_SYSCALL_ARGS];
        slots[..args.len()].copy_from_slice(args);
        self.wr
            .send(|o| sp::encode_syscall_req(o, reqno, sysnum, args))?;
        self.outstanding.insert(
            reqno,
            Outstanding {
                sysnum,
                args: slots,
                nargs: args.len(),
            },
        );
        Ok(reqno)
    }

    /// Waits for the next answer to a pipelined syscall, serving copy requests from `mem`
    /// meanwhile. Returns its reqno and `Ok(retval)` or `Err(NetBSD errno)`; an ERROR frame
    /// other than `TRYAGAIN` (which re-sends the call under the same reqno) is reported as
    /// `Err(ErrorCode::errno())`. Fails with [`Error::Protocol`] if nothing is outstanding.
    pub fn recv_syscall(
        &mut self,
        mem: &mut [Buf<'_>],
    ) -> Result<(u64, std::result::Result<[i64; 2], i32>)> {
        loop {
            let (reqno, reply) = match self.pending.pop_front() {
                Some(p) => p,
                None if self.outstanding.is_empty() => {
                    return Err(Error::Protocol(
                        "recv_syscall: no syscall outstanding".into(),
                    ));
                }
                None => self.next_reply(mem)?,
            };
            if self.outstanding.remove(&reqno).is_none() {
                continue; // Not ours: dropped, as librumpclient drops unknown reqnos.
            }
            return match reply {
                Reply::Syscall(r) if r.error == 0 => Ok((reqno, Ok(r.retval))),
                Reply::Syscall(r) => Ok((reqno, Err(r.error))),
                Reply::Error(c) => Ok((reqno, Err(c.errno()))),
                r => Err(unexpected(reqno, r)),
            };
        }
    }

    /// Number of pipelined syscalls sent and not yet received.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Waits for the answer to `reqno`, keeping answers to pipelined calls for later.
    fn wait_for(&mut self, reqno: u64, mem: &mut [Buf<'_>]) -> Result<Reply> {
        if let Some(i) = self.pending.iter().position(|(r, _)| *r == reqno) {
            if let Some((_, rep)) = self.pending.remove(i) {
                return Ok(rep);
            }
        }
        loop {
            let (r, rep) = self.next_reply(mem)?;
            if r == reqno {
                return Ok(rep);
            }
            if self.outstanding.contains_key(&r) {
                self.pending.push_back((r, rep));
            }
            // Otherwise an answer nobody waits for: dropped (reference behaviour).
        }
    }

    /// Reads frames, serving server requests, until an answer arrives. `TRYAGAIN` for a
    /// pipelined syscall is handled here by re-sending it.
    fn next_reply(&mut self, mem: &mut [Buf<'_>]) -> Result<(u64, Reply)> {
        loop {
            let ev = match self.rd.poll()? {
                Some(f) => Some(handle_frame(f, &mut self.wr, mem)?),
                None => None,
            };
            let Some(ev) = ev else {
                self.rd.fill(&mut self.wr.stream)?;
                continue;
            };
            match ev {
                Event::Served => {}
                Event::Raise(sig) => self.last_signal = Some(sig),
                Event::Reply(r, Reply::Error(ErrorCode::TRYAGAIN))
                    if self.outstanding.contains_key(&r) =>
                {
                    let o = self.outstanding[&r];
                    self.wr
                        .send(|w| sp::encode_syscall_req(w, r, o.sysnum, &o.args[..o.nargs]))?;
                }
                Event::Reply(r, rep) => return Ok((r, rep)),
            }
        }
    }
}

impl AsRawFd for Client {
    fn as_raw_fd(&self) -> RawFd {
        Client::as_raw_fd(self)
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("fd", &self.as_raw_fd())
            .field("banner", &self.banner)
            .field("next_reqno", &self.next_reqno)
            .field("outstanding", &self.outstanding.len())
            .finish()
    }
}

fn unexpected(reqno: u64, r: Reply) -> Error {
    Error::Protocol(format!("unexpected answer to request {reqno}: {r:?}"))
}

/// Serves or interprets one frame from the server.
fn handle_frame(f: Frame<'_>, wr: &mut Writer, mem: &mut [Buf<'_>]) -> Result<Event> {
    let h = f.header;
    let p = f.payload;
    match h.class {
        Class::REQ => match h.typ {
            MsgType::COPYIN | MsgType::COPYINSTR => {
                let data = match sp::parse_copy_req(p) {
                    Some(r) if h.typ == MsgType::COPYIN => mem::copyin(mem, r.addr, r.len),
                    Some(r) => mem::copyinstr(mem, r.addr, r.len),
                    None => &[],
                };
                wr.send(|o| sp::encode_copyin_resp(o, h.reqno, data))?;
                Ok(Event::Served)
            }
            MsgType::COPYOUT | MsgType::COPYOUTSTR => {
                if let Some((addr, data)) = sp::parse_copyout_req(p) {
                    mem::copyout(mem, addr, data);
                }
                Ok(Event::Served)
            }
            MsgType::ANONMMAP => {
                // Not supported: answer "mmap failed"; the server maps 0 to ENOMEM.
                wr.send(|o| sp::encode_anonmmap_resp(o, h.reqno, 0))?;
                Ok(Event::Served)
            }
            MsgType::RAISE => Ok(Event::Raise(h.u)),
            t => Err(Error::Protocol(format!(
                "invalid request type {} from server",
                t.0
            ))),
        },
        Class::RESP => {
            let reply = match h.typ {
                MsgType::SYSCALL => sp::parse_syscall_resp(p).map(Reply::Syscall),
                MsgType::HANDSHAKE => sp::parse_handshake_resp(p)
                    .map(|e| Reply::Handshake(e, sp::fast::parse_fast_handshake_resp(p))),
                MsgType::PREFORK => sp::parse_prefork_resp(p).map(Reply::Prefork),
                _ => None,
            };
            match reply {
                Some(r) => Ok(Event::Reply(h.reqno, r)),
                None => Err(Error::Protocol(format!(
                    "malformed response type {} ({} payload bytes) for request {}",
                    h.typ.0,
                    p.len(),
                    h.reqno
                ))),
            }
        }
        Class::ERROR => Ok(Event::Reply(h.reqno, Reply::Error(ErrorCode(h.u)))),
        c => Err(Error::Protocol(format!(
            "invalid frame class {} from server",
            c.0
        ))),
    }
}

/// The URL `rumpclient_init()` would use: `RUMP__PARSEDSERVER` first, then `RUMP_SERVER`.
fn server_url(parsed: Option<String>, server: Option<String>) -> Result<String> {
    parsed.or(server).ok_or(Error::Errno(ENOENT))
}

/// This program's name as librumpclient sends it on Linux: `/proc/self/comm` without the
/// newline (at most 127 bytes), or `???`.
pub fn program_name() -> String {
    match std::fs::read("/proc/self/comm") {
        Ok(mut b) => {
            b.truncate(127);
            if b.last() == Some(&b'\n') {
                b.pop();
            }
            String::from_utf8_lossy(&b).into_owned()
        }
        Err(_) => "???".to_string(),
    }
}

/// Typed wrappers for common system calls (NetBSD semantics; errors are NetBSD errnos).
impl Client {
    /// `__sysctl(name, ...)`: reads at most `old_max` bytes of the node at `name` (none
    /// when 0) and, with `new`, writes it; returns what was read.
    pub fn sysctl(&mut self, name: &[i32], old_max: usize, new: Option<&[u8]>) -> Result<Vec<u8>> {
        let nm: Vec<u8> = name.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut old = vec![0u8; old_max];
        let mut len = (old_max as u64).to_le_bytes();
        let newv = new.unwrap_or(&[]);
        let (op, lp) = match old_max {
            0 => (0, 0),
            _ => (addr_of(&old), addr_of(&len)),
        };
        let (np, nl) = match new {
            Some(v) => (addr_of(v), v.len() as u64),
            None => (0, 0),
        };
        let args = [addr_of(&nm), name.len() as u64, op, lp, np, nl];
        let mut mem = vec![Buf::In(&nm)];
        if old_max > 0 {
            mem.push(Buf::Out(&mut old));
            mem.push(Buf::InOut(&mut len));
        }
        if new.is_some() {
            mem.push(Buf::In(newv));
        }
        self.syscall(nr::SYSCTL, &args, &mut mem)?;
        let n = (u64::from_le_bytes(len) as usize).min(old_max);
        old.truncate(n);
        Ok(old)
    }

    /// `__sysctl` of one int at `name`, writing `new` if given; the old value.
    pub fn sysctl_int(&mut self, name: &[i32], new: Option<i32>) -> Result<i32> {
        let nb = new.map(i32::to_le_bytes);
        let old = self.sysctl(name, 4, nb.as_ref().map(|b| &b[..]))?;
        let b: [u8; 4] = old
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .unwrap_or_default();
        Ok(i32::from_le_bytes(b))
    }

    /// `getpid()` — returns `(pid, ppid)` (NOERR: the error field is ignored).
    pub fn getpid(&mut self) -> Result<(i32, i32)> {
        let r = self.syscall_raw(nr::GETPID, &[], &mut [])?.retval;
        Ok((r[0] as i32, r[1] as i32))
    }

    /// `getppid()` — the parent's pid (NOERR).
    pub fn getppid(&mut self) -> Result<i32> {
        Ok(self.syscall_raw(nr::GETPPID, &[], &mut [])?.retval[0] as i32)
    }

    /// `getuid()` — returns `(uid, euid)` (NOERR).
    pub fn getuid(&mut self) -> Result<(u32, u32)> {
        let r = self.syscall_raw(nr::GETUID, &[], &mut [])?.retval;
        Ok((r[0] as u32, r[1] as u32))
    }

    /// `geteuid()` (NOERR).
    pub fn geteuid(&mut self) -> Result<u32> {
        Ok(self.syscall_raw(nr::GETEUID, &[], &mut [])?.retval[0] as u32)
    }

    /// `getgid()` — returns `(gid, egid)` (NOERR).
    pub fn getgid(&mut self) -> Result<(u32, u32)> {
        let r = self.syscall_raw(nr::GETGID, &[], &mut [])?.retval;
        Ok((r[0] as u32, r[1] as u32))
    }

    /// `getegid()` (NOERR).
    pub fn getegid(&mut self) -> Result<u32> {
        Ok(self.syscall_raw(nr::GETEGID, &[], &mut [])?.retval[0] as u32)
    }

    /// `issetugid()` (NOERR).
    pub fn issetugid(&mut self) -> Result<i32> {
        Ok(self.syscall_raw(nr::ISSETUGID, &[], &mut [])?.retval[0] as i32)
    }

    /// `umask(newmask)` — sets the file creation mask, returns the old one.
    pub fn umask(&mut self, mask: u32) -> Result<u32> {
        Ok(self.syscall(nr::UMASK, &[u64::from(mask)], &mut [])?[0] as u32)
    }

    /// `write(fd, buf, nbyte)` — returns the number of bytes written.
    pub fn write(&mut self, fd: i32, data: &[u8]) -> Result<usize> {
        let args = [int_arg(fd), addr_of(data), data.len() as u64];
        Ok(self.syscall(nr::WRITE, &args, &mut [Buf::In(data)])?[0] as usize)
    }

    /// `writev(fd, iov, iovcnt)` — the 16-byte `struct iovec` array is built locally and
    /// offered to the server together with every buffer.
    pub fn writev(&mut self, fd: i32, bufs: &[&[u8]]) -> Result<usize> {
        let mut iov = Vec::with_capacity(16 * bufs.len());
        for b in bufs {
            iov.extend_from_slice(&addr_of(b).to_le_bytes());
            iov.extend_from_slice(&(b.len() as u64).to_le_bytes());
        }
        let mut mem = Vec::with_capacity(bufs.len() + 1);
        mem.push(Buf::In(&iov));
        mem.extend(bufs.iter().map(|b| Buf::In(b)));
        let args = [int_arg(fd), addr_of(&iov), int_arg(bufs.len() as i32)];
        Ok(self.syscall(nr::WRITEV, &args, &mut mem)?[0] as usize)
    }

    /// `read(fd, buf, nbyte)` — returns the number of bytes read (0 at end of file).
    pub fn read(&mut self, fd: i32, buf: &mut [u8]) -> Result<usize> {
        let args = [int_arg(fd), addr_of(buf), buf.len() as u64];
        Ok(self.syscall(nr::READ, &args, &mut [Buf::Out(buf)])?[0] as usize)
    }

    /// `close(fd)`.
    pub fn close(&mut self, fd: i32) -> Result<()> {
        self.syscall(nr::CLOSE, &[int_arg(fd)], &mut [])?;
        Ok(())
    }

    /// `dup(fd)` — returns the new descriptor.
    pub fn dup(&mut self, fd: i32) -> Result<i32> {
        Ok(self.syscall(nr::DUP, &[int_arg(fd)], &mut [])?[0] as i32)
    }

    /// `dup2(from, to)` — returns `to`.
    pub fn dup2(&mut self, from: i32, to: i32) -> Result<i32> {
        Ok(self.syscall(nr::DUP2, &[int_arg(from), int_arg(to)], &mut [])?[0] as i32)
    }

    /// `dup3(from, to, flags)` with the NetBSD 10 number (505, `__dup3100`).
    pub fn dup3(&mut self, from: i32, to: i32, flags: i32) -> Result<i32> {
        let args = [int_arg(from), int_arg(to), int_arg(flags)];
        Ok(self.syscall(nr::DUP3, &args, &mut [])?[0] as i32)
    }

    /// `dup3(from, to, flags)` with the pre-NetBSD-10 number (454), as older clients send it.
    pub fn dup3_compat(&mut self, from: i32, to: i32, flags: i32) -> Result<i32> {
        let args = [int_arg(from), int_arg(to), int_arg(flags)];
        Ok(self.syscall(nr::DUP3_COMPAT, &args, &mut [])?[0] as i32)
    }

    /// `fcntl(fd, cmd, arg)` — `arg` fills its slot as given (an int value or an address);
    /// commands that take a `struct flock *` need [`Client::syscall`] with a [`Buf`]. `cmd` is
    /// unsigned because file-system fcntls set bit 31 (`F_FSCTL`).
    pub fn fcntl(&mut self, fd: i32, cmd: u32, arg: u64) -> Result<i64> {
        Ok(self.syscall(nr::FCNTL, &[int_arg(fd), u64::from(cmd), arg], &mut [])?[0])
    }

    /// `reboot(howto, bootstr)` — halts the server (what `rump.halt` sends). The boot string is
    /// offered to the server only when given (it reads it only with `RB_STRING`).
    pub fn reboot(&mut self, howto: i32, bootstr: Option<&CStr>) -> Result<()> {
        match bootstr {
            Some(s) => {
                let b = s.to_bytes_with_nul();
                self.syscall(nr::REBOOT, &[int_arg(howto), addr_of(b)], &mut [Buf::In(b)])?;
            }
            None => {
                self.syscall(nr::REBOOT, &[int_arg(howto), 0], &mut [])?;
            }
        }
        Ok(())
    }
}

//! Fuzz harness for one sp connection's logic without sockets: the protocol state machine
//! (`session::machine::Machine`) and the copy-request table (`session::copies::Copies`).
//!
//! The input is a sequence of events as the reader and the syscall tasks of a connection
//! produce them: frames of any class/type/subtype/payload, handshake outcomes, syscalls and
//! EXECs completing in any order, COPYIN/COPYINSTR requests, their answers (right, wrong,
//! duplicated, unknown reqnos) and the client disconnecting. A small model follows along and
//! checks, after every event:
//!
//! * before a successful handshake nothing but GUEST/FORK is accepted, afterwards no second
//!   one; ERROR codes are the ones §5.4 prescribes for the situation;
//! * the in-flight count equals the syscalls started and not yet done, never exceeds the
//!   limit, and TRYAGAIN comes exactly when it is reached;
//! * PREFORK and a second EXEC during an EXEC fail with INEXEC; an EXEC proceeds only when idle;
//! * the connection finishes exactly once, only after the reader stopped and the last syscall
//!   was answered;
//! * a copy resolves once, to the first answer if it has the right length, else `EFAULT`;
//!   every copy still waiting at a disconnect fails with `EFAULT`.
//!
//! Chosen over driving the server through sockets: this is deterministic (a finding replays
//! exactly; a socket round trip through the loops would not), needs no runtime threads, and
//! every input reaches the transitions at once instead of after a connect and a banner;
//! `tests/garbage.rs` and the `disconnect`/`limits` tests cover the socket side. The same
//! file is compiled into `tests/fuzz_replay.rs`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use rump_server::session::copies::{Copies, CopyKind};
use rump_server::session::machine::{Decision, Machine, State};
use sp::{Class, ErrorCode, HandshakeType, Header, MsgType};

/// Events one input runs at most.
const MAX_EVENTS: usize = 256;

/// The fuzzer's bytes, read front to back; zeros once exhausted.
struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head.to_vec()
    }
}

struct NoopWake;

impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

type Wait<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, kernel::Errno>> + 'a>>;

/// A copy request some syscall task waits on.
struct CopyWait<'a> {
    reqno: u64,
    kind: CopyKind,
    fut: Wait<'a>,
}

/// What the model expects of the connection.
#[derive(Default)]
struct Model {
    handshaked: bool,
    /// The reader stopped (client EOF, or a close we decided).
    closed: bool,
    /// Reqnos of syscalls started and not yet answered.
    syscalls: Vec<u64>,
    exec_pending: bool,
    finished: usize,
    /// Copy reqnos registered whose wait has not resolved yet.
    live: HashSet<u64>,
    /// First answer delivered to each live copy.
    answers: HashMap<u64, Vec<u8>>,
    /// Copy reqnos registered before the disconnect failed them.
    failed_all: bool,
}

/// Target `session`: see the module documentation.
pub fn session(data: &[u8]) {
    let mut inp = Input { data };
    let max = 1 + usize::from(inp.byte() % 4);
    let mut m = Machine::new(max);
    let mut model = Model::default();
    let copies = Copies::default();
    let mut waits: Vec<CopyWait<'_>> = Vec::new();
    let waker = Waker::from(Arc::new(NoopWake));
    let mut cx = Context::from_waker(&waker);
    for _ in 0..MAX_EVENTS {
        if inp.data.is_empty() {
            break;
        }
        match inp.byte() % 10 {
            0..=3 => frame(&mut inp, &mut m, &mut model, max, &copies),
            4 | 5 if !model.syscalls.is_empty() => {
                let i = usize::from(inp.byte()) % model.syscalls.len();
                model.syscalls.remove(i);
                assert_eq!(m.syscall_done(), model.syscalls.is_empty());
            }
            6 if model.exec_pending => {
                assert_eq!(m.idle(), model.syscalls.is_empty() || model.closed);
                if m.idle() {
                    m.exec_done();
                    model.exec_pending = false;
                }
            }
            7 if !model.closed => {
                model.closed = true;
                m.disconnect();
                copies.fail_all();
                model.failed_all = true;
            }
            8 => {
                let kind = if inp.byte() & 1 == 0 {
                    CopyKind::In {
                        len: usize::from(inp.byte() % 24),
                    }
                } else {
                    CopyKind::InStr {
                        maxlen: usize::from(inp.byte() % 24),
                    }
                };
                match copies.register(kind) {
                    Ok(reqno) => {
                        assert!(!model.failed_all, "copy registered on a dead connection");
                        assert!(model.live.insert(reqno), "copy reqno {reqno} reused");
                        let fut: Wait<'_> = Box::pin(copies.wait(reqno));
                        waits.push(CopyWait { reqno, kind, fut });
                    }
                    Err(e) => {
                        assert!(model.failed_all);
                        assert_eq!(e, kernel::Errno::EFAULT);
                    }
                }
            }
            _ => poll_waits(&mut waits, &mut cx, &mut model),
        }
        check(&mut m, &mut model, max);
    }
    // The client goes away; the syscalls still running finish.
    if !model.closed {
        model.closed = true;
        m.disconnect();
        copies.fail_all();
        model.failed_all = true;
    }
    poll_waits(&mut waits, &mut cx, &mut model);
    assert!(
        waits.is_empty(),
        "copies still waiting after the disconnect"
    );
    while let Some(_r) = model.syscalls.pop() {
        m.syscall_done();
        check(&mut m, &mut model, max);
    }
    check(&mut m, &mut model, max);
    assert_eq!(model.finished, 1, "connection never finished");
}

/// One frame from the client, as the reader would hand it over.
fn frame(inp: &mut Input<'_>, m: &mut Machine, model: &mut Model, max: usize, copies: &Copies) {
    if model.closed {
        return; // the reader stopped: no frame reaches the machine any more
    }
    let sel = inp.byte();
    let class = match sel % 8 {
        0..=4 => Class::REQ,
        5 | 6 => Class::RESP,
        _ => Class(u16::from(inp.byte() % 4)),
    };
    let typ = MsgType(u16::from(inp.byte() % 10));
    let u = match inp.byte() % 4 {
        0 => u32::from(inp.byte() % 5),
        1 => 20,
        _ => u32::from(inp.byte()),
    };
    let reqno = u64::from(inp.byte() % 16);
    let payload = match inp.byte() % 4 {
        0 => inp.bytes(20),
        1 => Vec::new(),
        _ => {
            let n = usize::from(inp.byte() % 40);
            inp.bytes(n)
        }
    };
    let h = Header {
        len: (24 + payload.len()) as u64,
        reqno,
        class,
        typ,
        u,
    };
    let state_before = m.state();
    let d = m.on_frame(&h, &payload);
    let hs = HandshakeType(u);
    match d {
        Decision::Deliver => {
            assert_eq!(class, Class::RESP);
            copies.deliver(reqno, &payload);
            if model.live.contains(&reqno) {
                model.answers.entry(reqno).or_insert(payload.clone());
            }
        }
        Decision::Error(code) => {
            if code == ErrorCode::TRYAGAIN {
                assert!(model.handshaked && typ == MsgType::SYSCALL);
                assert_eq!(model.syscalls.len(), max, "TRYAGAIN below the limit");
            } else {
                assert_eq!(code, ErrorCode::MALFORMED_REQUEST);
                let other_class = class != Class::REQ && class != Class::RESP;
                let bad_type = model.handshaked
                    && !matches!(
                        typ,
                        MsgType::SYSCALL | MsgType::PREFORK | MsgType::HANDSHAKE
                    );
                assert!(other_class || bad_type, "MALFORMED for {h:?}");
            }
        }
        Decision::Fail(code) => {
            match code {
                ErrorCode::AUTH => assert!(!model.handshaked),
                ErrorCode::INEXEC => assert!(model.exec_pending),
                ErrorCode::MALFORMED_REQUEST => assert_eq!(typ, MsgType::HANDSHAKE),
                other => panic!("unexpected failure code {other:?}"),
            }
            close(m, model, copies);
        }
        Decision::Guest(name) => {
            assert!(!model.handshaked && typ == MsgType::HANDSHAKE && hs == HandshakeType::GUEST);
            assert_eq!(name, sp::parse_name(&payload));
            handshake_outcome(inp, m, model, copies);
        }
        Decision::Fork(hf) => {
            assert!(!model.handshaked && hs == HandshakeType::FORK);
            assert_eq!(payload.len(), sp::HANDSHAKE_FORK_LEN);
            assert_eq!(&hf.cookie[..], &payload[..16]);
            handshake_outcome(inp, m, model, copies);
        }
        Decision::Syscall { nr, args } => {
            assert!(model.handshaked && typ == MsgType::SYSCALL && nr == u);
            assert_eq!(args, sp::syscall_args(&payload));
            assert!(model.syscalls.len() < max);
            model.syscalls.push(reqno);
        }
        Decision::Prefork => assert!(model.handshaked && !model.exec_pending),
        Decision::Exec(name) => {
            assert!(model.handshaked && !model.exec_pending && hs == HandshakeType::EXEC);
            assert_eq!(name, sp::parse_name(&payload));
            model.exec_pending = true;
        }
        Decision::Stop => panic!("Stop while the reader runs (state was {state_before:?})"),
    }
}

/// The connection decides to close (after an ERROR, or a refused handshake): its reader stops.
fn close(m: &mut Machine, model: &mut Model, copies: &Copies) {
    model.closed = true;
    m.disconnect();
    copies.fail_all();
    model.failed_all = true;
}

/// A GUEST or FORK handshake succeeds or fails as the input says.
fn handshake_outcome(inp: &mut Input<'_>, m: &mut Machine, model: &mut Model, copies: &Copies) {
    if inp.byte() & 3 != 0 {
        m.running();
        model.handshaked = true;
    } else {
        close(m, model, copies);
    }
}

/// Polls every copy waiting; checks what each resolved to.
fn poll_waits(waits: &mut Vec<CopyWait<'_>>, cx: &mut Context<'_>, model: &mut Model) {
    waits.retain_mut(|w| match w.fut.as_mut().poll(cx) {
        Poll::Pending => {
            assert!(
                !model.failed_all,
                "copy {} survived the disconnect",
                w.reqno
            );
            true
        }
        Poll::Ready(r) => {
            model.live.remove(&w.reqno);
            let first = model.answers.get(&w.reqno);
            let ok_len = |p: &Vec<u8>| match w.kind {
                CopyKind::In { len } => p.len() == len,
                CopyKind::InStr { maxlen } => !p.is_empty() && p.len() <= maxlen,
            };
            match (&r, first) {
                (Ok(v), Some(a)) => {
                    assert_eq!(v, a, "copy {} got a later answer", w.reqno);
                    assert!(ok_len(v), "copy {} accepted a bad length", w.reqno);
                }
                (Ok(_), None) => panic!("copy {} resolved without an answer", w.reqno),
                (Err(e), first) => {
                    assert_eq!(*e, kernel::Errno::EFAULT);
                    let bad = first.is_some_and(|a| !ok_len(a));
                    assert!(
                        bad || model.failed_all,
                        "copy {} failed for nothing",
                        w.reqno
                    );
                }
            }
            false
        }
    });
}

/// Invariants after every event; counts the finish.
fn check(m: &mut Machine, model: &mut Model, max: usize) {
    assert_eq!(m.inflight(), model.syscalls.len());
    assert!(m.inflight() <= max);
    assert_eq!(m.in_exec(), model.exec_pending);
    let want = if model.closed {
        State::Dying
    } else if model.handshaked {
        State::Running
    } else {
        State::New
    };
    assert_eq!(m.state(), want);
    assert_eq!(m.reader_done(), model.closed);
    if m.take_finish() {
        assert!(model.closed && model.syscalls.is_empty());
        model.finished += 1;
    }
    assert!(model.finished <= 1, "finished twice");
    if model.closed && model.syscalls.is_empty() {
        assert_eq!(model.finished, 1, "idle dead connection not finished");
    }
}

// ---------------------------------------------------------------------------------------------
// Target `server`: the real server, in process, over its unix socket.

/// Syscalls the `server` target sends (reboot excluded: it would halt the shared server).
const SERVER_SYSCALLS: &[u32] = &[
    3, 4, 5, 6, 10, 20, 41, 42, 50, 54, 90, 92, 120, 121, 131, 136, 173, 174, 199, 390, 439, 440,
    453, 454, 410, 22, 60, 12, 296, 999,
];

/// A quiet host for the in-process kernel (console output discarded).
struct QuietHost;

impl kernel::Host for QuietHost {
    fn console_write(&self, _data: &[u8]) {}
    fn clock_realtime(&self) -> (i64, i64) {
        kernel::StdHost.clock_realtime()
    }
    fn clock_monotonic(&self) -> (i64, i64) {
        kernel::StdHost.clock_monotonic()
    }
    fn random(&self, buf: &mut [u8]) {
        kernel::StdHost.random(buf)
    }
}

/// The in-process server: its socket path and the server itself.
type Running = (PathBuf, Mutex<rump_server::server::Server>);

/// Starts the in-process server once (two loops, the VFS and tmpfs, small limits so that
/// they are reached). It is kept (reachable: no leak report) and serves until the process
/// exits.
fn running_server() -> &'static Running {
    static SERVER: std::sync::OnceLock<Running> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rump-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let sock = dir.join("sock");
        let _ = std::fs::remove_file(&sock);
        let cfg = kernel::BootConfig {
            ncpu: 2,
            verbose: false,
            hostname: "rump-fuzz".into(),
            vfs: true,
            mem_limit_bytes: Some(32 << 20),
            filesystems: vec![kernel::vfs::FsKind::Tmpfs],
        };
        let k = kernel::Kernel::boot(cfg, Arc::new(QuietHost)).expect("boot");
        let limits = rump_server::server::Limits {
            max_frame_len: 64 << 10,
            max_inflight_per_conn: 8,
            max_conns: 64,
            max_outbuf_bytes: 64 << 10,
            max_forks_per_conn: 4,
        };
        let url = format!("unix://{}", sock.display());
        let addr = sp::url::SpAddr::Unix(sock.clone());
        let srv = rump_server::server::start(k, 2, &url, &addr, limits).expect("server start");
        (sock, Mutex::new(srv))
    })
}

/// Once every client is gone, the server holds no connection and no process: waits up to
/// 10 s for the asynchronous teardown, then panics naming what is left.
fn assert_drained(srv: &Mutex<rump_server::server::Server>) {
    let srv = srv.lock().unwrap_or_else(|e| e.into_inner());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (conns, procs) = (srv.connections(), srv.shared.kernel.process_count());
        if conns == 0 && procs == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "after every client left: {conns} connections, {procs} processes"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// One raw connection of the `server` target.
struct Conn {
    s: std::os::unix::net::UnixStream,
    dec: sp::FrameDecoder,
    buf: Vec<u8>,
}

impl Conn {
    fn connect(path: &std::path::Path) -> Option<Conn> {
        use std::io::Read;
        let mut s = std::os::unix::net::UnixStream::connect(path).ok()?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .ok()?;
        let mut banner = [0u8; 96];
        let n = s.read(&mut banner).ok()?;
        (n > 0 && banner[n - 1] == b'\n').then_some(Conn {
            s,
            dec: sp::FrameDecoder::new(1 << 20),
            buf: vec![0; 1 << 16],
        })
    }

    fn send(&mut self, bytes: &[u8]) -> bool {
        use std::io::Write;
        self.s.write_all(bytes).is_ok()
    }

    /// Reads frames until `f` says stop or nothing comes within `quiet`; false on EOF.
    fn read_until(
        &mut self,
        quiet: std::time::Duration,
        mut f: impl FnMut(&Header, &[u8], &mut Vec<u8>) -> bool,
    ) -> bool {
        use std::io::Read;
        let _ = self.s.set_read_timeout(Some(quiet));
        let mut out = Vec::new();
        loop {
            let n = match self.s.read(&mut self.buf) {
                Ok(0) => return false,
                Ok(n) => n,
                Err(_) => return true, // quiet: nothing more for now
            };
            let mut input = &self.buf[..n];
            let mut stop = false;
            loop {
                match self.dec.next(&mut input) {
                    Ok(Some(fr)) => stop |= !f(&fr.header, fr.payload, &mut out),
                    Ok(None) => break,
                    Err(e) => panic!("server sent a bad frame: {e}"),
                }
            }
            if !out.is_empty() && !self.send(&out) {
                return false;
            }
            out.clear();
            if stop {
                return true;
            }
        }
    }
}

/// Target `server`: `[flags][ops…]` sent over a fresh connection to the in-process server:
/// syscalls with shaped arguments (COPYIN/COPYINSTR answered from the input, sometimes with
/// the wrong length), raw frames of any class and type, PREFORK, EXEC handshakes, and a
/// disconnect at any point (also mid-frame). Checks: every frame the server sends decodes
/// and is a type a client accepts (§17.5); a syscall's answer comes (unless it blocks, then
/// the disconnect must end it); afterwards a new client is served at once, and once it is
/// gone too the server holds no connection and no process.
pub fn server(data: &[u8]) {
    let (path, srv) = running_server();
    let mut inp = Input { data };
    let Some(mut c) = Conn::connect(path) else {
        return; // at the connection limit for a moment: fine
    };
    let flags = inp.byte();
    let mut reqno = 1u64;
    if flags & 7 != 0 {
        let mut out = Vec::new();
        sp::encode_handshake_name_req(&mut out, reqno, HandshakeType::GUEST, b"fuzz");
        c.send(&out);
    }
    let mut expect = 0usize;
    let mut ok = true;
    let quiet = std::time::Duration::from_millis(20);
    for _ in 0..MAX_EVENTS {
        if inp.data.is_empty() || !ok {
            break;
        }
        reqno += 1;
        let mut out = Vec::new();
        match inp.byte() % 16 {
            0..=8 => {
                let nr = SERVER_SYSCALLS[usize::from(inp.byte()) % SERVER_SYSCALLS.len()];
                let mut args = [0u64; 6];
                for a in &mut args {
                    *a = match inp.byte() % 6 {
                        0 | 1 => u64::from(inp.byte() % 8),
                        2 => 0x1000 + u64::from(inp.byte()) * 16,
                        3 => u64::from(inp.byte()) << (inp.byte() % 24),
                        4 => (-100i64) as u64,
                        _ => 0,
                    };
                }
                sp::encode_syscall_req(&mut out, reqno, nr, &args);
                expect += 1;
            }
            9 | 10 => {
                let class = Class(u16::from(inp.byte() % 4));
                let typ = MsgType(u16::from(inp.byte() % 10));
                let u = u32::from(inp.byte());
                let n = usize::from(inp.byte() % 40);
                let payload = inp.bytes(n);
                let h = Header {
                    len: (24 + payload.len()) as u64,
                    reqno: u64::from(inp.byte() % 4),
                    class,
                    typ,
                    u,
                };
                out.extend_from_slice(&h.to_bytes());
                out.extend_from_slice(&payload);
            }
            11 => sp::encode_prefork_req(&mut out, reqno),
            12 => sp::encode_handshake_name_req(&mut out, reqno, HandshakeType::EXEC, b"x"),
            13 => {
                // Gone in the middle of a frame.
                sp::encode_syscall_req(&mut out, reqno, 4, &[1, 0x1000, 8]);
                let cut = 1 + usize::from(inp.byte()) % (out.len() - 1);
                c.send(&out[..cut]);
                break;
            }
            _ => {
                ok = serve_requests(&mut c, &mut inp, &mut expect, quiet);
                continue;
            }
        }
        ok = c.send(&out);
    }
    if ok {
        serve_requests(&mut c, &mut inp, &mut expect, quiet);
    }
    drop(c);
    // Whatever happened, the next client is served.
    let mut fresh = Conn::connect(path).or_else(|| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        Conn::connect(path)
    });
    let c = fresh.as_mut().expect("server stopped accepting");
    let mut out = Vec::new();
    sp::encode_handshake_name_req(&mut out, 1, HandshakeType::GUEST, b"check");
    sp::encode_syscall_req(&mut out, 2, 20, &[]);
    assert!(c.send(&out));
    let mut answered = false;
    let t = std::time::Instant::now();
    let open = c.read_until(std::time::Duration::from_secs(10), |h, _, _| {
        answered = h.reqno == 2 && h.typ == MsgType::SYSCALL;
        !answered
    });
    assert!(
        answered,
        "a new client was not served ({} after {:?})",
        if open { "no answer" } else { "closed" },
        t.elapsed()
    );
    drop(fresh);
    assert_drained(srv);
}

/// Answers the server's requests until `expect` syscall answers arrived or it goes quiet.
fn serve_requests(
    c: &mut Conn,
    inp: &mut Input<'_>,
    expect: &mut usize,
    quiet: std::time::Duration,
) -> bool {
    let answers: Vec<u8> = inp.bytes(64);
    let mut k = 0usize;
    c.read_until(quiet, |h, p, out| {
        match (h.class, h.typ) {
            (Class::RESP, MsgType::SYSCALL) | (Class::ERROR, _) => {
                *expect = expect.saturating_sub(1);
            }
            (Class::RESP, _) => {}
            (Class::REQ, MsgType::COPYIN) | (Class::REQ, MsgType::COPYINSTR) => {
                let req = sp::parse_copy_req(p).expect("copy request payload");
                let pick = answers.get(k).copied().unwrap_or(0);
                k += 1;
                let mut data = if h.typ == MsgType::COPYINSTR {
                    [
                        &b"/tmp/f\0"[..],
                        b"/tmp\0",
                        b"tmpfs\0",
                        b"/\0",
                        b"/tmp/d/x\0",
                    ][usize::from(pick) % 5]
                        .to_vec()
                } else {
                    vec![pick; req.len.min(1 << 16) as usize]
                };
                if pick == 0xff {
                    data.push(0); // the wrong length: EFAULT for that copy
                }
                sp::encode_copyin_resp(out, h.reqno, &data);
            }
            (Class::REQ, t) => assert!(
                matches!(t, MsgType::COPYOUT | MsgType::RAISE),
                "server sent request type {t:?}, which a client aborts on"
            ),
            (class, _) => panic!("server sent class {class:?}"),
        }
        *expect > 0
    })
}

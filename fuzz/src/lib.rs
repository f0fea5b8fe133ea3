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
//!   every copy still waiting at a disconnect fails with `EFAULT`;
//! * the sp fast path (docs/sp-fastpath.md), when the machine grants it: a flagged handshake
//!   is decided on the payload behind its hello and answered with the grant, SYSCALL_FAST is
//!   accepted only on a connection that has it and exactly when its parser accepts it (else
//!   MALFORMED and a close), a plain EXEC turns it off; a machine without a grant refuses a
//!   flagged handshake with AUTH, as NetBSD's server.
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

/// The grant of a fast-path machine: small, so that inputs reach its limits.
const GRANT: sp::fast::FastGrant = sp::fast::FastGrant {
    version: 1,
    max_ranges: 3,
    max_bytes: 32,
};

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
    /// The machine grants the fast path (docs/sp-fastpath.md) / the connection has it.
    grants: bool,
    fast: bool,
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
    let first = inp.byte();
    let max = 1 + usize::from(first % 4);
    let mut model = Model::default();
    let mut m = match first & 0x80 {
        0 => Machine::new(max),
        _ => {
            model.grants = true;
            Machine::with_fast_path(max, GRANT)
        }
    };
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
    let fast_shape = inp.byte();
    let u = match fast_shape.is_multiple_of(4) && typ == MsgType::HANDSHAKE {
        true => u | sp::fast::FAST_FLAG,
        false => u,
    };
    let reqno = u64::from(inp.byte() % 16);
    let mut payload = match inp.byte() % 4 {
        0 => inp.bytes(20),
        1 => Vec::new(),
        _ => {
            let n = usize::from(inp.byte() % 40);
            inp.bytes(n)
        }
    };
    if u & sp::fast::FAST_FLAG != 0 && fast_shape & 0x10 == 0 {
        // A well-formed hello in front of the usual payload.
        let mut o = Vec::new();
        sp::fast::encode_fast_handshake_req(&mut o, reqno, 0, &payload);
        payload = o[sp::HEADER_LEN..].to_vec();
    }
    if typ == MsgType::SYSCALL_FAST && fast_shape & 0x20 == 0 {
        // A SYSCALL_FAST built by the client-side encoder (within or beyond the grant).
        let n = usize::from(inp.byte() % 48);
        let data = inp.bytes(n);
        let mut cand: Vec<(u64, &[u8])> = data
            .chunks(8)
            .enumerate()
            .map(|(i, c)| (0x1000 + 6 * i as u64, c))
            .collect();
        let g = sp::fast::FastGrant {
            max_ranges: 1 + u32::from(fast_shape % 5),
            max_bytes: 48,
            ..GRANT
        };
        let mut o = Vec::new();
        sp::fast::encode_fast_syscall(&mut o, reqno, u, &[1, 2], &mut cand, &g);
        payload = o[sp::HEADER_LEN..].to_vec();
    }
    let h = Header {
        len: (24 + payload.len()) as u64,
        reqno,
        class,
        typ,
        u,
    };
    let state_before = m.state();
    let d = m.on_frame(&h, &payload);
    // A granting machine reads a flagged handshake's subtype without the flag and its payload
    // behind a valid hello; a non-granting one sees an unknown subtype.
    let hello = match (model.grants, u & sp::fast::FAST_FLAG != 0) {
        (true, true) => sp::fast::parse_fast_hello(&payload).map(|(_, rest)| rest.to_vec()),
        _ => None,
    };
    let flagged_ok = hello.is_some();
    let hs = match flagged_ok {
        true => HandshakeType(u & !sp::fast::FAST_FLAG),
        false => HandshakeType(u),
    };
    let usual = hello.unwrap_or_else(|| payload.clone());
    let fast_call = typ == MsgType::SYSCALL_FAST && model.fast;
    let parsed = sp::fast::parse_fast_syscall(&payload, GRANT.max_ranges, GRANT.max_bytes as usize);
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
                assert!(model.handshaked && (typ == MsgType::SYSCALL || fast_call));
                assert_eq!(model.syscalls.len(), max, "TRYAGAIN below the limit");
            } else {
                assert_eq!(code, ErrorCode::MALFORMED_REQUEST);
                let other_class = class != Class::REQ && class != Class::RESP;
                let bad_type = model.handshaked
                    && !fast_call
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
                ErrorCode::MALFORMED_REQUEST => assert!(
                    typ == MsgType::HANDSHAKE || (fast_call && parsed.is_err()),
                    "MALFORMED close for {h:?}"
                ),
                other => panic!("unexpected failure code {other:?}"),
            }
            close(m, model, copies);
        }
        Decision::Guest(name) => {
            assert!(!model.handshaked && typ == MsgType::HANDSHAKE && hs == HandshakeType::GUEST);
            assert_eq!(name, sp::parse_name(&usual));
            assert_eq!(m.fast_answer().is_some(), flagged_ok);
            handshake_outcome(inp, m, model, copies, flagged_ok);
        }
        Decision::Fork(hf) => {
            assert!(!model.handshaked && hs == HandshakeType::FORK);
            assert_eq!(usual.len(), sp::HANDSHAKE_FORK_LEN);
            assert_eq!(&hf.cookie[..], &usual[..16]);
            assert_eq!(m.fast_answer().is_some(), flagged_ok);
            handshake_outcome(inp, m, model, copies, flagged_ok);
        }
        Decision::Syscall { nr, args, prefetch } => {
            assert!(model.handshaked && nr == u);
            if typ == MsgType::SYSCALL {
                assert_eq!(args, sp::syscall_args(&payload));
                assert!(prefetch.is_empty());
            } else {
                assert!(fast_call, "SYSCALL_FAST accepted without the fast path");
                let fs = parsed.expect("accepted what the parser refuses");
                assert_eq!((args, prefetch), (fs.args, fs.prefetch));
            }
            assert!(model.syscalls.len() < max);
            model.syscalls.push(reqno);
        }
        Decision::Prefork => assert!(model.handshaked && !model.exec_pending),
        Decision::Exec(name) => {
            assert!(model.handshaked && !model.exec_pending && hs == HandshakeType::EXEC);
            assert_eq!(name, sp::parse_name(&usual));
            model.exec_pending = true;
            model.fast = flagged_ok;
            assert_eq!(m.fast(), flagged_ok);
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
fn handshake_outcome(
    inp: &mut Input<'_>,
    m: &mut Machine,
    model: &mut Model,
    copies: &Copies,
    fast: bool,
) {
    if inp.byte() & 3 != 0 {
        m.running();
        model.handshaked = true;
        model.fast = fast;
        assert_eq!(m.fast(), fast);
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
    // The socket layer (the net faction with AF_LOCAL and sockin is attached): socket, socketpair, bind,
    // connect, listen, accept, paccept, sendto, recvfrom, sendmsg, recvmsg, shutdown,
    // get/setsockopt, sendmmsg, recvmmsg, getpeername, getsockname.
    394, 394, 135, 135, 104, 98, 106, 30, 456, 133, 29, 28, 27, 134, 118, 105, 476, 475, 31, 32,
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

/// Longest a syscall of the FFS attack, and a probe's getpid on either loop, may take while
/// the attacks run: a call that walks a corrupted image must not hold a loop (the "loop
/// stall bound" of issue 19).
pub const LOOP_STALL_BOUND: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether the FFS attack also makes `..` cycles (a directory's `..` naming one of its
/// descendants). On since `vfs::lookup::is_under` passes each FFS directory at most once
/// (before, `chroot` below such a cycle never answered).
pub const FFS_DOTDOT_CYCLES: bool = true;

fn ffs_dotdot_cycles() -> bool {
    FFS_DOTDOT_CYCLES
}

/// Probe connections: one per loop (the server gives a new connection the loop with the
/// fewest), each asked for its pid every few milliseconds while the inputs run.
const PROBES: usize = 2;

/// Bytes of the FFS image behind the `-d` keys `/dk` (block) and `/rdk` (raw).
const FFS_IMAGE_BYTES: u64 = 4 << 20;

/// The in-process server and what the `server` target checks it against.
pub struct Running {
    sock: PathBuf,
    srv: Mutex<rump_server::server::Server>,
    /// The server's directory on the host: the socket, the FFS image, canary files.
    dir: PathBuf,
    /// The FFS image (the only host file besides the socket a client may change).
    img: PathBuf,
    /// The populated image, as every FFS attack starts from and leaves it.
    pristine: Vec<u8>,
    /// 512-byte sectors holding the populated tree's metadata (superblock, inodes,
    /// directories, cylinder groups), where corruption does the most.
    hot: Vec<u64>,
    /// Longest probe round trip since the last [`Running::take_probe_max`], in µs.
    probe_max_us: Arc<std::sync::atomic::AtomicU64>,
    /// Directories of the populated image: (byte offset of their `..` entry's inode number,
    /// own inode, parent inode), found by scanning for `.`/`..` directory blocks.
    dirs: Vec<(u64, u32, u32)>,
    /// FFS attacks run, mounts of a corrupted image that succeeded, operations on them.
    ffs_counts: [std::sync::atomic::AtomicU64; 3],
}

/// FFS attacks run so far in this process: (attacks, corrupted images mounted, operations
/// on them), for the replay's summary and its check that the attack ran.
pub fn ffs_attack_counts() -> [u64; 3] {
    running_server()
        .ffs_counts
        .each_ref()
        .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
}

impl Running {
    /// The longest probe round trip since the last call (and resets it).
    fn take_probe_max(&self) -> std::time::Duration {
        let us = self
            .probe_max_us
            .swap(0, std::sync::atomic::Ordering::SeqCst);
        std::time::Duration::from_micros(us)
    }
}

/// Starts the in-process server once: two loops, the VFS with tmpfs and FFS, small limits so
/// that they are reached, an FFS image on `-d` keys `/dk` (blk) and `/rdk` (chr), canary host
/// files beside it, and the probes. It is kept (reachable: no leak report) and serves until
/// the process exits.
fn running_server() -> &'static Running {
    static SERVER: std::sync::OnceLock<Running> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rump-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("host/etc")).expect("server dir");
        std::fs::write(dir.join("host/canary"), b"canary\n").expect("canary");
        std::fs::write(dir.join("host/etc/passwd"), b"root:x:0:0\n").expect("canary");
        let img = dir.join("ffs.img");
        std::fs::File::create(&img)
            .and_then(|f| f.set_len(FFS_IMAGE_BYTES))
            .expect("image");
        let disk = ffs::FileDisk::open(&img, false).expect("image");
        ffs::block_on(ffs::newfs(&disk, &ffs::NewfsOptions::default())).expect("newfs");
        drop(disk);
        let sock = dir.join("sock");
        let cfg = kernel::BootConfig {
            ncpu: 2,
            verbose: false,
            hostname: "rump-fuzz".into(),
            vfs: true,
            mem_limit_bytes: Some(32 << 20),
            filesystems: vec![kernel::fs::FsKind::Tmpfs, kernel::fs::FsKind::Ffs],
            dev: false,
        };
        let k = kernel::Kernel::boot(cfg, Arc::new(QuietHost)).expect("boot");
        let net = net::attach(&k, true).expect("attach the net faction");
        // sockin too (AF_INET is domain 2, which the argument bytes reach), held to one
        // loopback port nobody listens on and 16 host sockets: inputs exercise its argument
        // checks, the policy and the host calls without sending traffic anywhere else.
        let host = rump_server::sockin::HostSockin::new(
            rump_server::sockin::Policy::parse("127.0.0.1:1").expect("policy"),
            16,
        );
        net::sockin::attach(&net, Arc::new(host)).expect("attach sockin");
        let specs = [
            format!("key=/dk,hostpath={},size=host", img.display()),
            format!("key=/rdk,hostpath={},size=host,type=chr", img.display()),
        ]
        .map(|d| rump_server::drivespec::parse(&d).expect("drivespec"));
        rump_server::drives::attach(&k, &specs, false).expect("attach the image");
        let limits = rump_server::server::Limits {
            max_frame_len: 64 << 10,
            max_inflight_per_conn: 8,
            max_conns: 64,
            max_outbuf_bytes: 64 << 10,
            max_forks_per_conn: 4,
            fast_path: true,
        };
        let url = format!("unix://{}", sock.display());
        let addr = sp::url::SpAddr::Unix(sock.clone());
        let srv = rump_server::server::start(k, 2, &url, &addr, limits).expect("server start");
        let probe_max_us = start_probes(&sock);
        let newfs_img = std::fs::read(&img).expect("image");
        populate(&sock);
        let pristine = std::fs::read(&img).expect("image");
        let mut hot: Vec<u64> = (0..pristine.len() / 512)
            .filter(|&i| pristine[i * 512..][..512] != newfs_img[i * 512..][..512])
            .map(|i| i as u64)
            .collect();
        hot.extend(128..128 + 16); // the UFS2 superblock at 64 KiB
        Running {
            sock,
            srv: Mutex::new(srv),
            dir,
            img,
            dirs: ffs_dirs(&pristine),
            pristine,
            hot,
            probe_max_us,
            ffs_counts: Default::default(),
        }
    })
}

/// The directory blocks of an FFS image: every 512-byte block that starts with a `.` entry
/// (12 bytes, `DT_DIR`) followed by a `..` entry.
fn ffs_dirs(img: &[u8]) -> Vec<(u64, u32, u32)> {
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    img.chunks_exact(512)
        .enumerate()
        .filter(|(_, b)| b[4..9] == [12, 0, 4, 1, b'.'] && b[18..22] == [4, 2, b'.', b'.'])
        .map(|(i, b)| ((i * 512 + 12) as u64, u32_at(b, 0), u32_at(b, 12)))
        .collect()
}

/// Connects the probes and starts their thread; returns the longest round trip seen.
fn start_probes(sock: &std::path::Path) -> Arc<std::sync::atomic::AtomicU64> {
    let max = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut probes: Vec<Cli> = (0..PROBES)
        .map(|_| Cli::connect(sock, b"probe").expect("probe connects"))
        .collect();
    let m = max.clone();
    std::thread::Builder::new()
        .name("fuzz-probe".into())
        .spawn(move || loop {
            for p in &mut probes {
                let t = std::time::Instant::now();
                let r = p.call(20, &[]);
                let us = t.elapsed().as_micros() as u64;
                m.fetch_max(us, std::sync::atomic::Ordering::SeqCst);
                assert!(r.is_ok(), "probe getpid: {r:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        })
        .expect("probe thread");
    max
}

/// Once every client is gone, the server holds only the probes' connections and processes:
/// waits up to 10 s for the asynchronous teardown, then panics naming what is left.
fn assert_drained(srv: &Mutex<rump_server::server::Server>) {
    let srv = srv.lock().unwrap_or_else(|e| e.into_inner());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (conns, procs) = (srv.connections(), srv.shared.kernel.process_count());
        // Prepared (PREFORK) processes outlive their connection for a while, as NetBSD's.
        let prepared = srv.shared.forks.len();
        if conns == PROBES && procs == PROBES + prepared {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "after every client left: {conns} connections, {procs} processes (besides \
             {PROBES} probes)"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Names, sizes, modification times and (for small files) contents of every host file in the
/// server's directory except the `-d` image: none may change, whatever a client does.
fn host_snapshot(run: &Running) -> Vec<(PathBuf, u64, std::time::SystemTime, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![run.dir.clone()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("server dir").flatten() {
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).expect("metadata");
            if md.is_dir() {
                todo.push(p.clone());
            }
            if p == run.img || p == run.sock {
                continue;
            }
            let data = if md.is_file() && md.len() < 4096 {
                std::fs::read(&p).unwrap_or_default()
            } else {
                Vec::new()
            };
            out.push((p, md.len(), md.modified().expect("mtime"), data));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
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
        let mut out = Vec::new();
        // Quiet means nothing for `quiet` since the last frame: a read that fails early (a
        // signal, or a timeout cut short) does not end the wait.
        let mut deadline = std::time::Instant::now() + quiet;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return true; // quiet: nothing more for now
            }
            let _ = self.s.set_read_timeout(Some(left));
            let n = match self.s.read(&mut self.buf) {
                Ok(0) => return false,
                Ok(n) => n,
                Err(e) => match e.kind() {
                    std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::Interrupted => continue,
                    _ => return false, // reset: as good as closed
                },
            };
            deadline = std::time::Instant::now() + quiet;
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
    let run = running_server();
    let (path, srv) = (&run.sock, &run.srv);
    let host_before = host_snapshot(run);
    run.take_probe_max();
    let mut inp = Input { data };
    let flags = inp.byte();
    if flags & 0x18 == 0x18 {
        ffs_attack(run, &mut inp);
    }
    let Some(mut c) = Conn::connect(path) else {
        return; // at the connection limit for a moment: fine
    };
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
    let stall = run.take_probe_max();
    assert!(
        stall < LOOP_STALL_BOUND,
        "a probe's getpid waited {stall:?}: a loop was blocked"
    );
    assert!(
        host_snapshot(run) == host_before,
        "a host file outside the -d image changed"
    );
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

// ---------------------------------------------------------------------------------------------
// A scripted client for the `server` target's FFS attack and its probes.

/// Where a [`Cli`]'s memory starts, and its size.
const CLI_BASE: u64 = 0x10_0000;
const CLI_MEM: usize = 1 << 17;

/// A client that answers the server's copies from its own memory: every call is one syscall,
/// answered within [`LOOP_STALL_BOUND`] (else a panic).
struct Cli {
    c: Conn,
    mem: Vec<u8>,
    reqno: u64,
}

/// Offsets in a [`Cli`]'s memory.
const A0: u64 = 0;
const A1: u64 = 0x800;
const ABUF: u64 = 0x1000;
const ADATA: u64 = 0x2000;

impl Cli {
    fn connect(path: &std::path::Path, name: &[u8]) -> Option<Cli> {
        let mut c = Conn::connect(path)?;
        let mut out = Vec::new();
        sp::encode_handshake_name_req(&mut out, 1, HandshakeType::GUEST, name);
        c.send(&out).then_some(())?;
        let mut ok = false;
        c.read_until(LOOP_STALL_BOUND, |h, p, _| {
            ok = h.typ == MsgType::HANDSHAKE && sp::parse_handshake_resp(p) == Some(0);
            false
        });
        ok.then_some(Cli {
            c,
            mem: vec![0; CLI_MEM],
            reqno: 1,
        })
    }

    fn put(&mut self, off: u64, b: &[u8]) -> u64 {
        self.mem[off as usize..][..b.len()].copy_from_slice(b);
        CLI_BASE + off
    }

    fn path(&mut self, off: u64, p: &str) -> u64 {
        let mut b = p.as_bytes().to_vec();
        b.push(0);
        self.put(off, &b)
    }

    fn get(&self, off: u64, len: usize) -> &[u8] {
        &self.mem[off as usize..][..len]
    }

    /// One syscall: its result (`Err` holds the errno), within [`LOOP_STALL_BOUND`].
    fn call(&mut self, nr: u32, args: &[u64]) -> Result<i64, i32> {
        self.reqno += 1;
        let reqno = self.reqno;
        let mut out = Vec::new();
        sp::encode_syscall_req(&mut out, reqno, nr, args);
        assert!(self.c.send(&out), "server closed the connection");
        let t = std::time::Instant::now();
        let mut res = None;
        let mem = &mut self.mem;
        let open = self.c.read_until(LOOP_STALL_BOUND, |h, p, out| {
            match (h.class, h.typ) {
                (Class::REQ, MsgType::COPYIN) | (Class::REQ, MsgType::COPYINSTR) => {
                    let r = sp::parse_copy_req(p).expect("copy request");
                    let off = r.addr.wrapping_sub(CLI_BASE) as usize;
                    let len = (r.len as usize).min(CLI_MEM.saturating_sub(off));
                    let mut d = mem.get(off..off + len).unwrap_or(&[]).to_vec();
                    if h.typ == MsgType::COPYINSTR {
                        if let Some(i) = d.iter().position(|&b| b == 0) {
                            d.truncate(i + 1);
                        }
                    }
                    sp::encode_copyin_resp(out, h.reqno, &d);
                }
                (Class::REQ, MsgType::COPYOUT) => {
                    let (addr, d) = sp::parse_copyout_req(p).expect("copyout");
                    let off = addr.wrapping_sub(CLI_BASE) as usize;
                    if let Some(m) = mem.get_mut(off..off + d.len()) {
                        m.copy_from_slice(d);
                    }
                }
                (Class::RESP, MsgType::SYSCALL) if h.reqno == reqno => {
                    let r = sp::parse_syscall_resp(p).expect("syscall response");
                    res = Some(if r.error == 0 {
                        Ok(r.retval[0])
                    } else {
                        Err(r.error)
                    });
                }
                _ => {}
            }
            res.is_none()
        });
        match res {
            Some(r) => {
                let took = t.elapsed();
                assert!(took < LOOP_STALL_BOUND, "syscall {nr} took {took:?}");
                r
            }
            None => panic!(
                "syscall {nr} {args:x?}: no answer after {:?} ({})",
                t.elapsed(),
                if open {
                    "connection open"
                } else {
                    "connection closed"
                }
            ),
        }
    }

    fn ok(&mut self, what: &str, nr: u32, args: &[u64]) -> i64 {
        self.call(nr, args)
            .unwrap_or_else(|e| panic!("{what}: errno {e}"))
    }

    fn open(&mut self, p: &str, flags: u64) -> Result<i64, i32> {
        let a = self.path(A0, p);
        self.call(5, &[a, flags, 0o644])
    }

    fn mount_ffs(&mut self) -> Result<i64, i32> {
        let t = self.path(A0, "ffs");
        let d = self.path(A1, "/f");
        let dev = self.path(A1 + 0x100, "/dk");
        let args = self.put(ABUF, &dev.to_le_bytes());
        self.call(410, &[t, d, 0, args, 8])
    }

    /// Unmounts `/f`, forcibly if the plain unmount fails; it must be gone afterwards.
    fn unmount_ffs(&mut self) {
        let d = self.path(A0, "/f");
        if self.call(22, &[d, 0]).is_ok() {
            return;
        }
        let r = self.call(22, &[d, 0x0008_0000]);
        // EINVAL: /f is not a mount root (the mount had failed).
        assert!(matches!(r, Ok(_) | Err(22)), "forced unmount of /f: {r:?}");
    }
}

/// Mounts FFS from `/dk` on `/f` and makes the tree the attacks corrupt.
fn populate(sock: &std::path::Path) {
    let mut c = Cli::connect(sock, b"populate").expect("connect");
    let d = c.path(A0, "/f");
    c.ok("mkdir /f", 136, &[d, 0o755]);
    c.mount_ffs().expect("mount the fresh image");
    for d in ["/f/a", "/f/a/b", "/f/a/b/c", "/f/a/b/c/d"] {
        let p = c.path(A0, d);
        c.ok(d, 136, &[p, 0o755]);
    }
    let fd = c.open("/f/a/file", 0x202).expect("create");
    let data = c.put(ADATA, &[0x5a; 9000]);
    c.ok("write", 4, &[fd as u64, data, 9000]);
    c.ok("close", 6, &[fd as u64]);
    let (t, l) = (c.path(A0, "b/c"), c.path(A1, "/f/a/l"));
    c.ok("symlink", 57, &[t, l]);
    for i in 0..40 {
        let fd = c.open(&format!("/f/a/b/n{i}"), 0x202).expect("create");
        c.ok("close", 6, &[fd as u64]);
    }
    let d = c.path(A0, "/f");
    c.ok("unmount", 22, &[d, 0]);
}

/// The FFS attack: corrupted metadata bytes written through `/rdk` (raw, past the cache) or
/// `/dk` (the block device, through it), before the mount or under it, then lookups,
/// readdir, a walk down and `getcwd`, a rename into its own subtree, creates and removals;
/// each must answer within [`LOOP_STALL_BOUND`] (any errno is fine). Then `/f` is unmounted
/// (forcibly if need be) and the image restored, through `/dk`, to the populated one.
fn ffs_attack(run: &Running, inp: &mut Input<'_>) {
    let mut c = Cli::connect(&run.sock, b"ffs-attack").expect("connect");
    let n = 1 + usize::from(inp.byte() % 8);
    let mounted_first = inp.byte() & 1 == 1;
    let mut mounted = mounted_first && c.mount_ffs().is_ok();
    for _ in 0..n {
        corrupt(run, &mut c, inp);
    }
    if !mounted_first {
        mounted = c.mount_ffs().is_ok();
    }
    let count = |i: usize, n: usize| {
        run.ffs_counts[i].fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    };
    count(0, 1);
    if mounted {
        let ops = 4 + usize::from(inp.byte() % 16);
        count(1, 1);
        count(2, ops);
        for _ in 0..ops {
            ffs_op(run, &mut c, inp.byte());
        }
        let root = c.path(A0, "/");
        c.ok("chdir /", 12, &[root]);
    }
    c.unmount_ffs();
    restore(run, &mut c);
}

/// Writes hostile bytes at a metadata offset: 1–4 bytes in a hot sector, or a directory's
/// `..` made to name one of its descendants (a cycle for every walk up the tree).
fn corrupt(run: &Running, c: &mut Cli, inp: &mut Input<'_>) {
    let (sector, at, v) =
        if inp.byte().is_multiple_of(3) && ffs_dotdot_cycles() && !run.dirs.is_empty() {
            let (off, ino, _) = run.dirs[usize::from(inp.byte()) % run.dirs.len()];
            // A descendant: follow parent links down from the chosen directory.
            let mut below = ino;
            for _ in 0..1 + inp.byte() % 4 {
                match run.dirs.iter().find(|d| d.2 == below && d.1 != below) {
                    Some(d) => below = d.1,
                    None => break,
                }
            }
            (
                off / 512,
                (off % 512) as usize,
                below.to_le_bytes().to_vec(),
            )
        } else {
            hot_bytes(run, inp)
        };
    write_sector(c, inp.byte() & 1 == 1, sector, at, &v);
}

/// 1–4 bytes at a random place of a hot sector.
fn hot_bytes(run: &Running, inp: &mut Input<'_>) -> (u64, usize, Vec<u8>) {
    let sector = run.hot[usize::from(inp.byte()) % run.hot.len()];
    let at = usize::from(inp.byte()) % 512;
    let len = (1 + usize::from(inp.byte() % 4)).min(512 - at);
    let v: Vec<u8> = (0..len)
        .map(|i| match inp.byte() % 5 {
            0 => 0,
            1 => 0xff,
            2 => 2 + (i == 0) as u8, // inode numbers of the root and its first child
            3 => 0x80,
            _ => inp.byte(),
        })
        .collect();
    (sector, at, v)
}

/// Read-modify-write of one sector through `/rdk` (`raw`) or `/dk`.
fn write_sector(c: &mut Cli, raw: bool, sector: u64, at: usize, v: &[u8]) {
    let len = v.len();
    let key = if raw { "/rdk" } else { "/dk" };
    let Ok(fd) = c.open(key, 2) else {
        return; // a device in use may refuse writers
    };
    let off = sector * 512;
    let buf = c.put(ADATA, &[0; 512]);
    if c.call(173, &[fd as u64, buf, 512, 0, off]) == Ok(512) {
        let mut s = c.get(ADATA, 512).to_vec();
        s[at..at + len].copy_from_slice(v);
        c.put(ADATA, &s);
        let _ = c.call(174, &[fd as u64, buf, 512, 0, off]);
    }
    let _ = c.call(95, &[fd as u64]); // fsync
    c.ok("close", 6, &[fd as u64]);
}

/// One operation on the (possibly corrupted) mounted tree; any answer but a stall is fine.
fn ffs_op(run: &Running, c: &mut Cli, sel: u8) {
    const DIRS: [&str; 6] = [
        "/f",
        "/f/a",
        "/f/a/b",
        "/f/a/b/c",
        "/f/a/l",
        "/f/a/b/c/d/..",
    ];
    let d = DIRS[usize::from(sel >> 4) % DIRS.len()];
    match sel % 9 {
        8 => {
            // chroot with the current directory below the new root (vn_isunder walks up),
            // `..` there, fchdir back: in a process of its own (the root stays changed).
            let mut j = Cli::connect(&run.sock, b"ffs-chroot").expect("connect");
            let p = j.path(A0, "/f/a/b/c/d");
            let _ = j.call(12, &[p]);
            let fd = j.open("/f/a", 0);
            let p = j.path(A0, "/f/a/b");
            let _ = j.call(61, &[p]);
            let p = j.path(A0, "../../..");
            let _ = j.call(12, &[p]);
            if let Ok(fd) = fd {
                let _ = j.call(13, &[fd as u64]);
            }
        }
        0 | 1 => {
            // readdir
            if let Ok(fd) = c.open(d, 0) {
                for _ in 0..8 {
                    let buf = c.put(ABUF, &[0; 8]);
                    if !matches!(c.call(390, &[fd as u64, buf, 4096]), Ok(n) if n > 0) {
                        break;
                    }
                }
                let _ = c.call(6, &[fd as u64]);
            }
        }
        2 => {
            let p = c.path(A0, &format!("{d}/file"));
            let _ = c.call(439, &[p, ABUF + CLI_BASE]); // stat
            let _ = c.call(58, &[p, ABUF + CLI_BASE, 256]); // readlink
        }
        3 => {
            // Down the chain, getcwd, back.
            let p = c.path(A0, "/f/a/b/c/d");
            if c.call(12, &[p]).is_ok() {
                let _ = c.call(296, &[ABUF + CLI_BASE, 1024]);
                let up = c.path(A0, "../../..");
                let _ = c.call(12, &[up]);
            }
            let root = c.path(A0, "/");
            c.ok("chdir /", 12, &[root]);
        }
        4 => {
            // Into its own subtree: the walk up from the target.
            let (a, b) = (c.path(A0, "/f/a"), c.path(A1, "/f/a/b/c/d/x"));
            let _ = c.call(128, &[a, b]);
        }
        5 => {
            let p = format!("{d}/new");
            if let Ok(fd) = c.open(&p, 0x202) {
                let data = c.put(ADATA, &[7; 5000]);
                let _ = c.call(4, &[fd as u64, data, 5000]);
                let _ = c.call(6, &[fd as u64]);
                let p = c.path(A0, &p);
                let _ = c.call(10, &[p]);
            }
        }
        6 => {
            let p = c.path(A0, &format!("{d}/nd"));
            if c.call(136, &[p, 0o755]).is_ok() {
                let _ = c.call(137, &[p]);
            }
        }
        _ => {
            let (a, b) = (c.path(A0, "/f/a/file"), c.path(A1, &format!("{d}/hl")));
            if c.call(9, &[a, b]).is_ok() {
                let _ = c.call(10, &[b]);
            }
        }
    }
}

/// Puts the populated image back: every 512-byte sector that differs on the host is written
/// through `/dk` (so that the cache holds it too) and synced; then the host file must equal it.
fn restore(run: &Running, c: &mut Cli) {
    for _ in 0..3 {
        if restore_once(run, c) {
            return;
        }
    }
    panic!("the FFS image could not be restored");
}

/// One pass of [`restore`]; whether the host file is the populated image now.
fn restore_once(run: &Running, c: &mut Cli) -> bool {
    let now = std::fs::read(&run.img).expect("image");
    let fd = c.open("/dk", 2).expect("open /dk to restore");
    let mut wrote = false;
    for i in 0..now.len() / 512 {
        let want = &run.pristine[i * 512..][..512];
        if now[i * 512..][..512] != *want {
            let buf = c.put(ADATA, want);
            let off = (i * 512) as u64;
            assert_eq!(c.call(174, &[fd as u64, buf, 512, 0, off]), Ok(512));
            wrote = true;
        }
    }
    // Blocks the cache holds but the host file does not show yet are written back by fsync.
    c.ok("fsync /dk", 95, &[fd as u64]);
    c.ok("close", 6, &[fd as u64]);
    let now = std::fs::read(&run.img).expect("image");
    assert!(
        wrote || now == run.pristine,
        "image changed after its fsync"
    );
    now == run.pristine
}

//! The C library asks for the sp fast path again on every new connection it makes
//! (docs/sp-fastpath.md §1.3): after a lost connection (`rumpclient_setconnretry`), in a
//! `rumpclient_fork` child, across `rumpclient_exec`. clib/tests/c/renegotiate.c runs each
//! case against a scripted server, which checks the handshakes and that the open after them
//! carries its path (SYSCALL_FAST), and against our real server with the fast path on and off
//! (same results). A refused fast hello on reconnect (the server replaced by one without the
//! fast path) is followed at once by a plain handshake. Skips without `cc`.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Server, TempDir};
use sp::fast::{self, FastGrant};
use sp::{Class, ErrorCode, HandshakeType, Header, MsgType};

/// Compiles renegotiate.c (`common::build_c`); `None` without a C compiler.
fn build(dir: &TempDir) -> Option<PathBuf> {
    common::build_c(
        dir,
        "renegotiate",
        &["-std=gnu11", "-Wall", "-Wextra", "-Werror"],
        &["-lrumpclient"],
    )
}

fn run(bin: &Path, url: &str, mode: &str) -> Output {
    Command::new(bin)
        .arg(mode)
        .env("RUMP_SERVER", url)
        .env_remove("RUMP__PARSEDSERVER")
        .env_remove("RUMPCLIENT__EXECFD")
        .env_remove("RUMPCLIENT__FASTPATH")
        .env_remove("RUMP_SP_FASTPATH")
        .output()
        .expect("run renegotiate")
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success() && out.stdout == b"ok\n",
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Against our server, fast path granted and refused: every case passes.
#[test]
fn real_server_with_and_without_the_fast_path() {
    let dir = TempDir::new("clibreneg");
    let Some(bin) = build(&dir) else { return };
    for fastpath in ["1", "0"] {
        for mode in ["reconnect", "fork", "exec"] {
            let srv = Server::unix_env(&["-lrumpvfs"], &[("RUMP_SP_FASTPATH", fastpath)]);
            let out = run(&bin, &srv.url, mode);
            assert_ok(&out, &format!("{mode}, server fast path {fastpath}"));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!err.contains("trying to reconnect"), "{mode}: {err}");
        }
    }
}

/// The scripted server's end of the conversation.
struct Script {
    l: UnixListener,
}

const GRANT: FastGrant = FastGrant {
    version: 1,
    max_ranges: 64,
    max_bytes: 4096,
};

impl Script {
    fn new(dir: &TempDir) -> (Script, String) {
        let sock = dir.path().join("sock");
        let l = UnixListener::bind(&sock).unwrap();
        l.set_nonblocking(true).unwrap();
        (Script { l }, format!("unix://{}", sock.display()))
    }

    /// The next connection (within 20 s), banner sent.
    fn accept(&self) -> UnixStream {
        let end = Instant::now() + Duration::from_secs(20);
        let mut s = loop {
            match self.l.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < end, "the client did not connect");
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"RUMPSP-0.4-NetBSD-10.0/amd64\n").unwrap();
        s
    }
}

fn frame(s: &mut UnixStream) -> (Header, Vec<u8>) {
    let mut h = [0u8; 24];
    s.read_exact(&mut h).unwrap();
    let h = Header::from_bytes(&h);
    let mut p = vec![0u8; h.payload_len()];
    s.read_exact(&mut p).unwrap();
    (h, p)
}

/// Reads the fast handshake of subtype `base` and grants it; its payload after the hello.
fn grant(s: &mut UnixStream, base: HandshakeType) -> Vec<u8> {
    let (h, p) = frame(s);
    assert_eq!(
        (h.class, h.typ, h.u),
        (Class::REQ, MsgType::HANDSHAKE, fast::FAST_FLAG | base.0),
        "a fast handshake"
    );
    let rest = fast::parse_fast_hello(&p).expect("a hello").1.to_vec();
    let mut o = Vec::new();
    fast::encode_fast_handshake_resp(&mut o, h.reqno, &GRANT);
    s.write_all(&o).unwrap();
    rest
}

/// Reads an open of `path`: SYSCALL_FAST carrying the path when `fast`, else plain; answers
/// descriptor `fd`.
fn open(s: &mut UnixStream, path: &[u8], fast: bool, fd: i64) {
    let (h, p) = frame(s);
    if fast {
        assert_eq!((h.typ, h.u), (MsgType::SYSCALL_FAST, 5), "a fast open");
        let fs = fast::parse_fast_syscall(&p, 64, 4096).unwrap();
        assert_eq!(fs.prefetch.copyinstr(fs.args[0], 1024), Some(path));
    } else {
        assert_eq!((h.typ, h.u), (MsgType::SYSCALL, 5), "a plain open");
    }
    let mut o = Vec::new();
    sp::encode_syscall_resp(&mut o, h.reqno, 0, [fd, 0]);
    s.write_all(&o).unwrap();
}

/// Waits for the client to close the connection.
fn eof(mut s: UnixStream) {
    let mut b = [0u8; 256];
    while s.read(&mut b).unwrap_or(0) > 0 {}
}

#[test]
fn reconnect_asks_again_and_gets_it() {
    let dir = TempDir::new("clibreneg1");
    let Some(bin) = build(&dir) else { return };
    let (sc, url) = Script::new(&dir);
    let child = std::thread::spawn(move || run(&bin, &url, "reconnect"));
    let mut s = sc.accept();
    grant(&mut s, HandshakeType::GUEST);
    open(&mut s, b"/a\0", true, 3);
    eof(s); // closefrom(3)
    let mut s = sc.accept();
    assert_eq!(grant(&mut s, HandshakeType::GUEST), b"renegotiate\0");
    open(&mut s, b"/b\0", true, 3);
    let out = child.join().unwrap();
    assert_ok(&out, "reconnect");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("trying to reconnect"));
}

/// The server behind the URL no longer has the fast path (NetBSD's, or ours with it off):
/// refused on the reconnect, the library connects again at once and hand-shakes plain.
#[test]
fn reconnect_refused_falls_back_to_plain_at_once() {
    let dir = TempDir::new("clibreneg2");
    let Some(bin) = build(&dir) else { return };
    let (sc, url) = Script::new(&dir);
    let child = std::thread::spawn(move || run(&bin, &url, "reconnect"));
    let mut s = sc.accept();
    grant(&mut s, HandshakeType::GUEST);
    open(&mut s, b"/a\0", true, 3);
    eof(s);
    let mut s = sc.accept();
    let (h, _) = frame(&mut s);
    assert_eq!(h.u, fast::FAST_FLAG, "asked again");
    let mut o = Vec::new();
    sp::encode_error(&mut o, h.reqno, ErrorCode::AUTH);
    s.write_all(&o).unwrap();
    drop(s);
    let mut s = sc.accept();
    let (h, p) = frame(&mut s);
    assert_eq!((h.typ, h.u), (MsgType::HANDSHAKE, 0), "a plain GUEST");
    assert_eq!(p, b"renegotiate\0");
    let mut o = Vec::new();
    sp::encode_handshake_resp(&mut o, h.reqno, 0);
    s.write_all(&o).unwrap();
    open(&mut s, b"/b\0", false, 3);
    let out = child.join().unwrap();
    assert_ok(&out, "reconnect refused");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("trying to reconnect"));
}

#[test]
fn fork_child_asks_and_gets_it() {
    let dir = TempDir::new("clibreneg3");
    let Some(bin) = build(&dir) else { return };
    let (sc, url) = Script::new(&dir);
    let child = std::thread::spawn(move || run(&bin, &url, "fork"));
    let mut s = sc.accept();
    grant(&mut s, HandshakeType::GUEST);
    open(&mut s, b"/a\0", true, 3);
    let (h, _) = frame(&mut s);
    assert_eq!(h.typ, MsgType::PREFORK);
    let cookie = *b"0123456789abcdef";
    let mut o = Vec::new();
    sp::encode_prefork_resp(&mut o, h.reqno, &cookie);
    s.write_all(&o).unwrap();
    let mut c = sc.accept();
    let rest = grant(&mut c, HandshakeType::FORK);
    assert_eq!(&rest[..16], &cookie, "the fork handshake claims the cookie");
    open(&mut c, b"/child\0", true, 4);
    eof(c);
    let out = child.join().unwrap();
    assert_ok(&out, "fork");
}

#[test]
fn exec_keeps_it() {
    let dir = TempDir::new("clibreneg4");
    let Some(bin) = build(&dir) else { return };
    let (sc, url) = Script::new(&dir);
    let child = std::thread::spawn(move || run(&bin, &url, "exec"));
    let mut s = sc.accept();
    grant(&mut s, HandshakeType::GUEST);
    open(&mut s, b"/a\0", true, 3);
    assert_eq!(grant(&mut s, HandshakeType::EXEC), b"renegotiate\0");
    open(&mut s, b"/exec\0", true, 4);
    let out = child.join().unwrap();
    assert_ok(&out, "exec");
}

//! The C library and the sp fast path (docs/sp-fastpath.md): clib/tests/c/fastpath.c runs
//! against our server with the fast path granted, refused (the server's `RUMP_SP_FASTPATH=0`
//! answers as NetBSD's) and not asked for (the client's `RUMP_SP_FASTPATH=0`), with the same
//! results; a scripted server checks that the granted calls carry their path and data and
//! that a refusal is followed by a plain handshake on a new connection. Skips without `cc`.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Server, TempDir};
use sp::fast::{self, FastGrant};
use sp::{Class, ErrorCode, Header, MsgType};

/// Compiles fastpath.c (`common::build_c`); `None` without a C compiler.
fn build(dir: &TempDir) -> Option<PathBuf> {
    common::build_c(
        dir,
        "fastpath",
        &["-std=gnu11", "-Wall", "-Werror"],
        &["-lrumpclient"],
    )
}

fn run(bin: &Path, url: &str, client_env: &[(&str, &str)]) -> Output {
    Command::new(bin)
        .env("RUMP_SERVER", url)
        .env_remove("RUMP__PARSEDSERVER")
        .env_remove("RUMPCLIENT__EXECFD")
        .env_remove("RUMP_SP_FASTPATH")
        .envs(client_env.iter().copied())
        .output()
        .expect("run fastpath")
}

#[test]
fn same_results_granted_refused_and_not_asked() {
    let dir = TempDir::new("clibfp");
    let Some(bin) = build(&dir) else { return };
    for (server_env, client_env) in [
        ("1", &[][..]),
        ("0", &[][..]),
        ("1", &[("RUMP_SP_FASTPATH", "0")][..]),
    ] {
        let srv = Server::unix_env(&["-lrumpvfs"], &[("RUMP_SP_FASTPATH", server_env)]);
        let out = run(&bin, &srv.url, client_env);
        assert!(
            out.status.success() && out.stdout == b"ok\n",
            "server fast {server_env}, client {client_env:?}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
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

fn accept(l: &UnixListener) -> UnixStream {
    let (mut s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(b"RUMPSP-0.4-NetBSD-10.0/amd64\n").unwrap();
    s
}

fn answer(s: &mut UnixStream, reqno: u64, rv: i64) {
    let mut o = Vec::new();
    sp::encode_syscall_resp(&mut o, reqno, 0, [rv, 0]);
    s.write_all(&o).unwrap();
}

/// A scripted server grants the fast path; open, write and writev then carry their path,
/// data, iovec array and buffers.
#[test]
fn granted_calls_carry_path_and_data() {
    let dir = TempDir::new("clibfp2");
    let Some(bin) = build(&dir) else { return };
    let sock = dir.path().join("sock");
    let l = UnixListener::bind(&sock).unwrap();
    let url = format!("unix://{}", sock.display());
    let child = std::thread::spawn(move || run(&bin, &url, &[]));
    let mut s = accept(&l);
    let (h, p) = frame(&mut s);
    assert_eq!((h.typ, h.u), (MsgType::HANDSHAKE, fast::FAST_FLAG));
    assert_eq!(fast::parse_fast_hello(&p).unwrap().1, b"fastpath\0");
    let g = FastGrant {
        version: 1,
        max_ranges: 64,
        max_bytes: 4096,
    };
    let mut o = Vec::new();
    fast::encode_fast_handshake_resp(&mut o, h.reqno, &g);
    s.write_all(&o).unwrap();
    // open: the path travels with the call.
    let (h, p) = frame(&mut s);
    assert_eq!((h.typ, h.u), (MsgType::SYSCALL_FAST, 5));
    let fs = fast::parse_fast_syscall(&p, 64, 4096).unwrap();
    assert_eq!(
        fs.prefetch.copyinstr(fs.args[0], 1024),
        Some(&b"/fastpath.txt\0"[..])
    );
    answer(&mut s, h.reqno, 3);
    // write(3, "hello ", 6)
    let (h, p) = frame(&mut s);
    assert_eq!((h.typ, h.u), (MsgType::SYSCALL_FAST, 4));
    let fs = fast::parse_fast_syscall(&p, 64, 4096).unwrap();
    assert_eq!(fs.prefetch.copyin(fs.args[1], 6), Some(&b"hello "[..]));
    answer(&mut s, h.reqno, 6);
    // writev: the array and both non-empty buffers.
    let (h, p) = frame(&mut s);
    assert_eq!((h.typ, h.u), (MsgType::SYSCALL_FAST, 121));
    let fs = fast::parse_fast_syscall(&p, 64, 4096).unwrap();
    let arr = fs.prefetch.copyin(fs.args[1], 48).expect("the iovec array");
    let b0 = u64::from_le_bytes(arr[..8].try_into().unwrap());
    let b2 = u64::from_le_bytes(arr[32..40].try_into().unwrap());
    assert_eq!(fs.prefetch.copyin(b0, 5), Some(&b"wide "[..]));
    assert_eq!(fs.prefetch.copyin(b2, 5), Some(&b"world"[..]));
    drop(s); // the program fails its next check; enough seen
    let out = child.join().unwrap();
    assert!(!out.status.success());
}

/// Refused as NetBSD's server refuses: ERROR AUTH and a close; the library connects again
/// and hand-shakes plain, then sends plain SYSCALLs.
#[test]
fn refusal_falls_back_to_plain() {
    let dir = TempDir::new("clibfp3");
    let Some(bin) = build(&dir) else { return };
    let sock = dir.path().join("sock");
    let l = UnixListener::bind(&sock).unwrap();
    let url = format!("unix://{}", sock.display());
    let child = std::thread::spawn(move || run(&bin, &url, &[]));
    let mut s = accept(&l);
    let (h, _) = frame(&mut s);
    assert_eq!(h.u, fast::FAST_FLAG);
    let mut o = Vec::new();
    sp::encode_error(&mut o, h.reqno, ErrorCode::AUTH);
    s.write_all(&o).unwrap();
    drop(s);
    let mut s = accept(&l);
    let (h, p) = frame(&mut s);
    assert_eq!(
        (h.class, h.typ, h.u, h.reqno),
        (Class::REQ, MsgType::HANDSHAKE, 0, 1)
    );
    assert_eq!(p, b"fastpath\0");
    let mut o = Vec::new();
    sp::encode_handshake_resp(&mut o, 1, 0);
    s.write_all(&o).unwrap();
    let (h, _) = frame(&mut s);
    assert_eq!((h.typ, h.u), (MsgType::SYSCALL, 5), "plain open");
    drop(s);
    let out = child.join().unwrap();
    assert!(!out.status.success());
}

//! The socket probe (issue 15) whose answers NetBSD's rump_server recorded in
//! `tests/oracle/sockets.netbsd`: socket(2) argument errors, option defaults of each AF_LOCAL
//! type and setsockopt's checks, names (`getsockname`/`getpeername`/`accept` bytes), bind and
//! connect errors (bad lengths, addresses, `EADDRINUSE`, `ECONNREFUSED`, `ENOTSOCK`,
//! `EPROTOTYPE`), the backlog, stream data with `MSG_PEEK`/`MSG_DONTWAIT`, half-close and
//! who gets SIGPIPE, what accept inherits, datagrams (sender names, `EMSGSIZE`, a full
//! receiver, `EISCONN`, a vanished target), seqpacket records and `MSG_TRUNC`,
//! `SCM_RIGHTS` between two processes, `LOCAL_CREDS`, `LOCAL_PEEREID`, fstat of a socket,
//! sendmmsg/recvmmsg and poll. One line per step: `name: ok[ value]` or `name: errno N`.
//!
//! Run against any server with `cargo run --example oracle_sockets -- URL` (the server
//! started fresh as `rump_server -lrumpvfs -lrumpnet -lrumpnet_net -lrumpnet_local URL`);
//! `tests/oracle_sockets.rs` runs it against ours and compares.

use client::net::*;
use client::{addr_of, int_arg, Buf, Client};

use crate::transcript::{connect, Transcript};

const SOCK_RAW: i32 = 3;
const SOCK_NONBLOCK: i32 = 0x2000_0000;
const SOCK_NOSIGPIPE: i32 = 0x4000_0000;
const SOCK_CLOEXEC: i32 = 0x1000_0000;
const AF_INET: i32 = 2;
const IPPROTO_TCP: i32 = 6;
const TCP_NODELAY: i32 = 1;
const SO_REUSEADDR: i32 = 0x0004;
const SO_KEEPALIVE: i32 = 0x0008;
const SO_LINGER: i32 = 0x0080;
const SO_NOSIGPIPE: i32 = 0x0800;
const SO_ACCEPTCONN: i32 = 0x0002;
const SO_SNDBUF: i32 = 0x1001;
const SO_RCVBUF: i32 = 0x1002;
const SO_SNDLOWAT: i32 = 0x1003;
const SO_RCVLOWAT: i32 = 0x1004;
const SO_ERROR: i32 = 0x1007;
const SO_TYPE: i32 = 0x1008;
const SO_SNDTIMEO: i32 = 0x100b;
const SO_RCVTIMEO: i32 = 0x100c;
const LOCAL_CREDS: i32 = 0x0004;
const LOCAL_PEEREID: i32 = 0x0003;
const MSG_PEEK: i32 = 0x2;
const MSG_DONTWAIT: i32 = 0x80;
const MSG_NOSIGNAL: i32 = 0x400;
const MSG_OOB: i32 = 0x1;
const SHUT_RD: i32 = 0;
const SHUT_WR: i32 = 1;
const F_GETFL: u32 = 3;
const F_SETFL: u32 = 4;
const F_GETFD: u32 = 1;
const O_NONBLOCK: u64 = 0x4;
const FIONREAD: u64 = 0x4004_667f;
const SYS_IOCTL: u32 = 54;
const SYS_POLL: u32 = 209;
const POLLIN: i16 = 1;
const POLLOUT: i16 = 4;
const RB_HALT: i32 = 0x8;
const RB_NOSYNC: i32 = 0x4;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Transcript {
    fn fd(&mut self, name: &str, r: client::Result<i32>) -> i32 {
        let v = *r.as_ref().unwrap_or(&-1);
        self.step(name, r, |fd| fd.to_string());
        v
    }

    fn bytes(&mut self, name: &str, r: client::Result<Vec<u8>>) {
        self.step(name, r, |b| hex(&b));
    }

    fn int(&mut self, name: &str, r: client::Result<i32>) {
        self.step(name, r, |v| v.to_string());
    }

    fn n(&mut self, name: &str, r: client::Result<usize>) {
        self.step(name, r, |v| v.to_string());
    }
}

fn fionread(c: &mut Client, fd: i32) -> client::Result<i32> {
    let mut v = [0u8; 4];
    let args = [int_arg(fd), FIONREAD, addr_of(&v)];
    c.syscall(SYS_IOCTL, &args, &mut [Buf::Out(&mut v)])?;
    Ok(i32::from_le_bytes(v))
}

fn poll1(c: &mut Client, fd: i32, events: i16) -> client::Result<String> {
    let mut pfd = [0u8; 8];
    pfd[..4].copy_from_slice(&fd.to_le_bytes());
    pfd[4..6].copy_from_slice(&events.to_le_bytes());
    let args = [addr_of(&pfd), 1, 0];
    let n = c.syscall(SYS_POLL, &args, &mut [Buf::InOut(&mut pfd)])?[0];
    Ok(format!("{n} {:#x}", i16::from_le_bytes([pfd[6], pfd[7]])))
}

fn read_all(c: &mut Client, fd: i32, len: usize) -> client::Result<String> {
    let mut b = vec![0u8; len];
    let n = c.read(fd, &mut b)?;
    Ok(format!("{n} {}", String::from_utf8_lossy(&b[..n])))
}

fn signal_of(c: &Client) -> String {
    c.last_signal().map_or("none".into(), |s| s.to_string())
}

fn sockopts(t: &mut Transcript, c: &mut Client, tag: &str, fd: i32) {
    for (name, opt) in [
        ("SO_TYPE", SO_TYPE),
        ("SO_SNDBUF", SO_SNDBUF),
        ("SO_RCVBUF", SO_RCVBUF),
        ("SO_SNDLOWAT", SO_SNDLOWAT),
        ("SO_RCVLOWAT", SO_RCVLOWAT),
        ("SO_ERROR", SO_ERROR),
        ("SO_REUSEADDR", SO_REUSEADDR),
        ("SO_NOSIGPIPE", SO_NOSIGPIPE),
        ("SO_ACCEPTCONN", SO_ACCEPTCONN),
    ] {
        let r = c.getsockopt_int(fd, SOL_SOCKET, opt);
        t.int(&format!("{tag} getsockopt {name}"), r);
    }
    let r = c.getsockopt(fd, SOL_SOCKET, SO_LINGER, 8);
    t.bytes(&format!("{tag} getsockopt SO_LINGER"), r);
    let r = c.getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, 16);
    t.bytes(&format!("{tag} getsockopt SO_RCVTIMEO"), r);
}

/// Runs the probe against the server at `url`, which it halts at the end.
pub fn run(url: &str) -> Transcript {
    let mut t = Transcript::default();
    let mut c = connect(url, "sockprobe");
    let mut c2 = connect(url, "sockpeer");
    let pid2 = c2.getpid().map(|p| p.0).unwrap_or(-1);
    let pid1 = c.getpid().map(|p| p.0).unwrap_or(-1);

    // socket(2) arguments.
    let r = c.socket(99, SOCK_STREAM, 0);
    t.fd("socket bad domain", r);
    let r = c.socket(AF_LOCAL, 99, 0);
    t.fd("socket bad type", r);
    let r = c.socket(AF_LOCAL, SOCK_STREAM, 5);
    t.fd("socket bad protocol", r);
    let r = c.socket(AF_LOCAL, SOCK_RAW, 0);
    t.fd("socket raw", r);
    let r = c.socket(AF_LOCAL, SOCK_STREAM | 0x0800_0000, 0);
    t.fd("socket bad flag", r);
    let r = c.socket(AF_INET, SOCK_STREAM, 0);
    t.fd("socket inet", r);
    let r = c.socketpair(AF_INET, SOCK_STREAM, 0);
    t.step("socketpair inet", r, |p| format!("{} {}", p.0, p.1));

    // Options of each type.
    let st = t.fd("socket stream", c.socket(AF_LOCAL, SOCK_STREAM, 0));
    let dg = t.fd("socket dgram", c.socket(AF_LOCAL, SOCK_DGRAM, 0));
    let sq = t.fd("socket seqpacket", c.socket(AF_LOCAL, SOCK_SEQPACKET, 0));
    sockopts(&mut t, &mut c, "stream", st);
    sockopts(&mut t, &mut c, "dgram", dg);
    sockopts(&mut t, &mut c, "seqpacket", sq);
    let r = c.getsockopt_int(st, IPPROTO_TCP, TCP_NODELAY);
    t.int("getsockopt TCP_NODELAY", r);
    let r = c.setsockopt(st, IPPROTO_TCP, TCP_NODELAY, &1i32.to_le_bytes());
    t.unit("setsockopt TCP_NODELAY", r);
    let r = c.getsockopt(st, 0, LOCAL_PEEREID, 12);
    t.bytes("getsockopt LOCAL_PEEREID unconnected", r);
    let r = c.getsockopt_int(st, 0, LOCAL_CREDS);
    t.int("getsockopt LOCAL_CREDS", r);
    let r = c.getsockopt_int(st, SOL_SOCKET, 0x7777);
    t.int("getsockopt unknown", r);
    let r = c.getsockopt_int(st, 0, 0x7777);
    t.int("getsockopt local unknown", r);
    let r = c.setsockopt(st, SOL_SOCKET, SO_REUSEADDR, &1i32.to_le_bytes());
    t.unit("setsockopt SO_REUSEADDR", r);
    let r = c.getsockopt_int(st, SOL_SOCKET, SO_REUSEADDR);
    t.int("getsockopt SO_REUSEADDR set", r);
    let r = c.setsockopt(st, SOL_SOCKET, SO_KEEPALIVE, &7i32.to_le_bytes());
    t.unit("setsockopt SO_KEEPALIVE 7", r);
    let r = c.getsockopt_int(st, SOL_SOCKET, SO_KEEPALIVE);
    t.int("getsockopt SO_KEEPALIVE set", r);
    let r = c.setsockopt(st, SOL_SOCKET, SO_REUSEADDR, &[1, 0]);
    t.unit("setsockopt short int", r);
    let r = c.setsockopt(st, SOL_SOCKET, SO_SNDBUF, &8192i32.to_le_bytes());
    t.unit("setsockopt SO_SNDBUF 8192", r);
    let r = c.getsockopt_int(st, SOL_SOCKET, SO_SNDBUF);
    t.int("getsockopt SO_SNDBUF set", r);
    let r = c.setsockopt(st, SOL_SOCKET, SO_SNDBUF, &0i32.to_le_bytes());
    t.unit("setsockopt SO_SNDBUF 0", r);
    let r = c.setsockopt(st, SOL_SOCKET, SO_RCVBUF, &(1i32 << 30).to_le_bytes());
    t.unit("setsockopt SO_RCVBUF huge", r);
    let r = c.setsockopt(st, SOL_SOCKET, SO_RCVLOWAT, &100_000i32.to_le_bytes());
    t.unit("setsockopt SO_RCVLOWAT big", r);
    let r = c.getsockopt_int(st, SOL_SOCKET, SO_RCVLOWAT);
    t.int("getsockopt SO_RCVLOWAT big", r);
    let r = c.setsockopt(st, SOL_SOCKET, SO_RCVLOWAT, &1i32.to_le_bytes());
    t.unit("setsockopt SO_RCVLOWAT 1", r);
    let mut tv = [0u8; 16];
    tv[8..].copy_from_slice(&2_000_000i64.to_le_bytes());
    let r = c.setsockopt(st, SOL_SOCKET, SO_RCVTIMEO, &tv);
    t.unit("setsockopt SO_RCVTIMEO bad usec", r);
    tv[..8].copy_from_slice(&(-1i64).to_le_bytes());
    tv[8..].copy_from_slice(&0i64.to_le_bytes());
    let r = c.setsockopt(st, SOL_SOCKET, SO_RCVTIMEO, &tv);
    t.unit("setsockopt SO_RCVTIMEO negative", r);
    tv[..8].copy_from_slice(&1i64.to_le_bytes());
    tv[8..].copy_from_slice(&500_000i64.to_le_bytes());
    let r = c.setsockopt(st, SOL_SOCKET, SO_SNDTIMEO, &tv);
    t.unit("setsockopt SO_SNDTIMEO", r);
    let r = c.getsockopt(st, SOL_SOCKET, SO_SNDTIMEO, 16);
    t.bytes("getsockopt SO_SNDTIMEO set", r);
    let mut lg = [0u8; 8];
    lg[..4].copy_from_slice(&1i32.to_le_bytes());
    lg[4..].copy_from_slice(&5i32.to_le_bytes());
    let r = c.setsockopt(st, SOL_SOCKET, SO_LINGER, &lg);
    t.unit("setsockopt SO_LINGER", r);
    let r = c.getsockopt(st, SOL_SOCKET, SO_LINGER, 8);
    t.bytes("getsockopt SO_LINGER set", r);
    let r = c.setsockopt(st, SOL_SOCKET, SO_TYPE, &1i32.to_le_bytes());
    t.unit("setsockopt SO_TYPE", r);
    let r = c.setsockopt(st, SOL_SOCKET, SO_REUSEADDR, &vec![0u8; 4096]);
    t.unit("setsockopt huge value", r);
    let r = c.getsockopt(st, SOL_SOCKET, SO_SNDBUF, 2);
    t.bytes("getsockopt short buffer", r);
    let r = c.setsockopt(0, SOL_SOCKET, SO_REUSEADDR, &1i32.to_le_bytes());
    t.unit("setsockopt console", r);
    let r = c.setsockopt(77, SOL_SOCKET, SO_REUSEADDR, &1i32.to_le_bytes());
    t.unit("setsockopt closed fd", r);
    let r = c.setsockopt(st, SOL_SOCKET, SO_NOSIGPIPE, &1i32.to_le_bytes());
    t.unit("setsockopt SO_NOSIGPIPE", r);
    let r = c.fcntl(st, F_GETFL, 0);
    t.step("fcntl F_GETFL after SO_NOSIGPIPE", r, |v| format!("{v:#x}"));
    let r = c.setsockopt(st, SOL_SOCKET, SO_NOSIGPIPE, &0i32.to_le_bytes());
    t.unit("setsockopt SO_NOSIGPIPE off", r);
    for fd in [st, dg, sq] {
        let _ = c.close(fd);
    }

    // Names and bind.
    let s1 = t.fd("socket s1", c.socket(AF_LOCAL, SOCK_STREAM, 0));
    let r = c.getsockname(s1);
    t.bytes("getsockname unbound", r);
    let r = c.getpeername(s1);
    t.bytes("getpeername unconnected", r);
    let a1 = sockaddr_un(b"/s1");
    let r = c.bind_len(s1, &a1, 2);
    t.unit("bind length 2", r);
    let r = c.bind_len(s1, &a1, 256);
    t.unit("bind length 256", r);
    // (An address the client does not have kills NetBSD's server: not probed here.)
    let r = c.bind(99, &a1);
    t.unit("bind closed fd", r);
    let r = c.bind(0, &a1);
    t.unit("bind console", r);
    let r = c.bind(s1, &sockaddr_un(b"/nodir/s"));
    t.unit("bind missing directory", r);
    let r = c.bind(s1, &sockaddr_un(b""));
    t.unit("bind empty path", r);
    let r = c.bind(s1, &a1);
    t.unit("bind /s1", r);
    let r = c.getsockname(s1);
    t.bytes("getsockname bound", r);
    let r = c.bind(s1, &sockaddr_un(b"/s1b"));
    t.unit("bind again", r);
    let r = c.lstat("/s1");
    t.step("lstat /s1", r, |s| {
        format!("mode={:o} nlink={} size={}", s.mode, s.nlink, s.size)
    });
    let r = c.open("/s1", 0, 0);
    t.fd("open /s1", r);
    let s1b = t.fd("socket s1b", c.socket(AF_LOCAL, SOCK_STREAM, 0));
    let r = c.bind(s1b, &a1);
    t.unit("bind in use", r);
    let mut af0 = a1.clone();
    af0[1] = 0;
    let r = c.bind(s1b, &af0);
    t.unit("bind family 0 in use", r);
    let r = c.listen(s1b, 5);
    t.unit("listen unbound", r);

    // Connect errors.
    let k = t.fd("socket k", c2.socket(AF_LOCAL, SOCK_STREAM, 0));
    let r = c2.connect_sock(k, &sockaddr_un(b"/nonexistent"));
    t.unit("connect missing", r);
    let r = c2.connect_sock(k, &sockaddr_un(b"/"));
    t.unit("connect directory", r);
    let r = c2.connect_sock(k, &a1);
    t.unit("connect not listening", r);
    let mut inet = a1.clone();
    inet[1] = AF_INET as u8;
    let r = c2.connect_sock(k, &inet);
    t.unit("connect other family", r);
    let r = c2.connect_len(k, &a1, 1);
    t.unit("connect length 1", r);
    let d = t.fd("socket dgram d", c2.socket(AF_LOCAL, SOCK_DGRAM, 0));
    let r = c.listen(s1, 1);
    t.unit("listen s1 backlog 1", r);
    let r = c2.connect_sock(d, &a1);
    t.unit("connect dgram to stream", r);
    let r = c2.listen(d, 1);
    t.unit("listen dgram", r);
    let r = c.getsockopt_int(s1, SOL_SOCKET, SO_ACCEPTCONN);
    t.int("getsockopt SO_ACCEPTCONN listening", r);
    let r = c2.connect_sock(k, &a1);
    t.unit("connect s1", r);
    let r = c2.connect_sock(k, &a1);
    t.unit("connect again", r);
    let r = c2.getpeername(k);
    t.bytes("getpeername connected", r);
    let r = c2.getsockname(k);
    t.bytes("getsockname connector", r);
    let r = c2.getsockopt(k, 0, LOCAL_PEEREID, 12);
    t.step("LOCAL_PEEREID connector", r, |b| peereid(&b, pid1));
    let r = c.connect_sock(s1, &a1);
    t.unit("connect listener", r);

    // Backlog 1: connections until refused.
    let mut extra = Vec::new();
    let mut refused = String::from("never");
    for i in 0..8 {
        let x = c2.socket(AF_LOCAL, SOCK_STREAM, 0).unwrap_or(-1);
        match c2.connect_sock(x, &a1) {
            Ok(()) => extra.push(x),
            Err(e) => {
                refused = format!("after {i}: errno {}", e.errno().unwrap_or(0));
                let _ = c2.close(x);
                break;
            }
        }
    }
    t.step("backlog 1 fills", Ok::<_, client::Error>(()), |_| refused);
    let r = c.fcntl(s1, F_SETFL, O_NONBLOCK);
    t.unit("listener nonblocking", r);
    let (a, name) = c.accept(s1).unwrap_or((-1, Vec::new()));
    t.step("accept", Ok::<_, client::Error>(()), |_| {
        format!("{a} {}", hex(&name))
    });
    let r = c.fcntl(a, F_GETFL, 0);
    t.step("accepted F_GETFL", r, |v| format!("{v:#x}"));
    let r = c.getsockname(a);
    t.bytes("getsockname accepted", r);
    let r = c.getpeername(a);
    t.bytes("getpeername accepted", r);
    let r = c.getsockopt(a, 0, LOCAL_PEEREID, 12);
    t.step("LOCAL_PEEREID accepted", r, |b| peereid(&b, pid2));
    let r = c.getsockopt_int(a, SOL_SOCKET, SO_ACCEPTCONN);
    t.int("accepted SO_ACCEPTCONN", r);
    let r = c.getsockopt_int(a, SOL_SOCKET, SO_SNDBUF);
    t.int("accepted SO_SNDBUF", r);
    for x in extra.drain(..) {
        let r = c.accept(s1);
        t.step("accept pending", r, |_| String::new());
        let _ = c2.close(x);
    }
    let r = c.accept(s1);
    t.step("accept empty nonblocking", r, |(fd, _)| fd.to_string());
    let r = c.paccept(s1, 0x0100_0000);
    t.step("paccept bad flags", r, |(fd, _)| fd.to_string());
    let r = c.fcntl(s1, F_SETFL, 0);
    t.unit("listener blocking", r);
    let r = c2.accept(k);
    t.step("accept on connector", r, |(fd, _)| fd.to_string());
    let r = c2.accept(d);
    t.step("accept on dgram", r, |(fd, _)| fd.to_string());
    let r = c.accept(0);
    t.step("accept console", r, |(fd, _)| fd.to_string());

    // Stream data.
    let r = c2.write(k, b"hello");
    t.n("write connector", r);
    let r = fionread(&mut c, a);
    t.int("FIONREAD accepted", r);
    let mut b = [0u8; 3];
    let r = c.recvfrom(a, &mut b, MSG_PEEK);
    t.step("recvfrom peek", r, |(n, from)| {
        format!(
            "{n} {} from={}",
            String::from_utf8_lossy(&b[..n.min(3)]),
            hex(&from)
        )
    });
    let r = read_all(&mut c, a, 16);
    t.step("read accepted", r, |s| s);
    let r = c.recvfrom(a, &mut b, MSG_DONTWAIT);
    t.step("recvfrom empty dontwait", r, |(n, _)| n.to_string());
    let r = c.sendto(a, b"x", MSG_OOB, None);
    t.n("send OOB", r);
    let r = c.sendto(a, b"back", 0, Some(&a1));
    t.n("sendto with address on stream", r);
    let r = read_all(&mut c2, k, 16);
    t.step("read connector", r, |s| s);
    let r = c.fstat(a);
    t.step("fstat accepted", r, |s| {
        format!(
            "mode={:o} nlink={} size={} blksize={} uid={} rdev={:#x} dev={:#x}",
            s.mode, s.nlink, s.size, s.blksize, s.uid, s.rdev, s.dev
        )
    });
    let r = c.lseek(a, 0, 0);
    t.step("lseek socket", r, |v| v.to_string());
    let r = poll1(&mut c, a, POLLIN | POLLOUT);
    t.step("poll accepted idle", r, |s| s);
    let _ = c2.write(k, b"z");
    let r = poll1(&mut c, a, POLLIN | POLLOUT);
    t.step("poll accepted data", r, |s| s);
    let _ = read_all(&mut c, a, 4);

    // Half-close and SIGPIPE.
    let r = c2.shutdown(k, 7);
    t.unit("shutdown bad how", r);
    let r = c2.shutdown(k, SHUT_WR);
    t.unit("shutdown connector SHUT_WR", r);
    let r = read_all(&mut c, a, 16);
    t.step("read after peer SHUT_WR", r, |s| s);
    let r = poll1(&mut c, a, POLLIN | POLLOUT);
    t.step("poll after peer SHUT_WR", r, |s| s);
    let r = c.write(a, b"still");
    t.n("write toward half-closed", r);
    let r = read_all(&mut c2, k, 16);
    t.step("read on half-closed connector", r, |s| s);
    let r = c2.write(k, b"no");
    t.n("write after SHUT_WR", r);
    t.step(
        "signal after SHUT_WR write",
        Ok::<_, client::Error>(()),
        |_| signal_of(&c2),
    );
    let r = c2.shutdown(k, SHUT_RD);
    t.unit("shutdown connector SHUT_RD", r);
    let r = c.write(a, b"dropped");
    t.n("write toward SHUT_RD", r);
    let r = read_all(&mut c2, k, 16);
    t.step("read after SHUT_RD", r, |s| s);
    let r = c.close(a);
    t.unit("close accepted", r);
    let r = poll1(&mut c2, k, POLLIN | POLLOUT);
    t.step("poll after peer close", r, |s| s);

    // A second connection: SIGPIPE, MSG_NOSIGNAL, SOCK_NOSIGPIPE.
    let k2 = t.fd(
        "socket k2",
        c2.socket(AF_LOCAL, SOCK_STREAM | SOCK_NOSIGPIPE, 0),
    );
    let r = c.fcntl(s1, F_SETFL, O_NONBLOCK);
    t.unit("listener nonblocking again", r);
    let r = c2.connect_sock(k2, &a1);
    t.unit("connect k2", r);
    let r = c.paccept(s1, SOCK_NONBLOCK | SOCK_CLOEXEC);
    let a2 = r.as_ref().map(|x| x.0).unwrap_or(-1);
    t.step("paccept nonblock cloexec", r, |(fd, n)| {
        format!("{fd} {}", hex(&n))
    });
    let r = c.fcntl(a2, F_GETFL, 0);
    t.step("paccepted F_GETFL", r, |v| format!("{v:#x}"));
    let r = c.fcntl(a2, F_GETFD, 0);
    t.step("paccepted F_GETFD", r, |v| v.to_string());
    let r = c.read(a2, &mut b);
    t.n("read paccepted empty", r);
    let r = c2.getsockopt_int(k2, SOL_SOCKET, SO_NOSIGPIPE);
    t.int("SOCK_NOSIGPIPE as SO_NOSIGPIPE", r);
    let _ = c.close(a2);
    let _ = c2.close(k2);
    for (tag, sflags, opt, how) in [
        ("write", 0, false, Send::Write),
        ("sendto", 0, false, Send::Sendto(0)),
        ("sendto MSG_NOSIGNAL", 0, false, Send::Sendto(MSG_NOSIGNAL)),
        (
            "sendmsg MSG_NOSIGNAL",
            0,
            false,
            Send::Sendmsg(MSG_NOSIGNAL),
        ),
        ("write SOCK_NOSIGPIPE", SOCK_NOSIGPIPE, false, Send::Write),
        ("write SO_NOSIGPIPE", 0, true, Send::Write),
    ] {
        let line = sigpipe(url, &mut c, s1, &a1, sflags, opt, how);
        t.step(&format!("EPIPE {tag}"), Ok::<_, client::Error>(()), |_| {
            line
        });
    }
    let k3 = t.fd("socket k3", c2.socket(AF_LOCAL, SOCK_STREAM, 0));
    let r = c2.connect_sock(k3, &a1);
    t.unit("connect k3", r);
    let a3 = c.accept(s1).map(|x| x.0).unwrap_or(-1);
    let _ = c.close(a3);
    let r = read_all(&mut c2, k3, 4);
    t.step("read from closed peer", r, |s| s);
    let r = c2.shutdown(k3, SHUT_WR);
    t.unit("shutdown disconnected", r);
    let r = c2.getpeername(k3);
    t.bytes("getpeername disconnected", r);
    let r = c2.connect_sock(k3, &a1);
    t.unit("connect disconnected again", r);
    let r = c.accept(s1);
    t.step("accept reconnected", r, |(fd, n)| {
        let _ = fd;
        hex(&n)
    });

    // Datagrams.
    let d1 = t.fd("socket d1", c.socket(AF_LOCAL, SOCK_DGRAM, 0));
    let ad = sockaddr_un(b"/d1");
    let r = c.bind(d1, &ad);
    t.unit("bind /d1", r);
    let r = c2.sendto(d, b"dgram1", 0, Some(&ad));
    t.n("sendto /d1 unbound sender", r);
    let mut db = [0u8; 64];
    let r = c.recvfrom(d1, &mut db, 0);
    t.step("recvfrom /d1", r, |(n, from)| {
        format!("{n} from={}", hex(&from))
    });
    let d3 = t.fd("socket d3", c2.socket(AF_LOCAL, SOCK_DGRAM, 0));
    let r = c2.bind(d3, &sockaddr_un(b"/d3"));
    t.unit("bind /d3", r);
    let r = c2.sendto(d3, b"named", 0, Some(&ad));
    t.n("sendto from /d3", r);
    let r = c.recvfrom(d1, &mut db[..2], 0);
    t.step("recvfrom short", r, |(n, from)| {
        format!("{n} from={}", hex(&from))
    });
    let r = c.recvfrom(d1, &mut db, MSG_DONTWAIT);
    t.step("recvfrom after truncation", r, |(n, _)| n.to_string());
    let r = c2.sendto(d, &[7u8; 3000], 0, Some(&ad));
    t.n("sendto 3000", r);
    let r = c2.sendto(d, &[7u8; 2048], 0, Some(&ad));
    t.n("sendto 2048", r);
    let mut full = String::from("never");
    for i in 0..8 {
        if let Err(e) = c2.sendto(d, &[7u8; 1000], 0, Some(&ad)) {
            full = format!("after {i}: errno {}", e.errno().unwrap_or(0));
            break;
        }
    }
    t.step("dgram receiver fills", Ok::<_, client::Error>(()), |_| full);
    let r = c.getsockopt_int(d1, SOL_SOCKET, 0x1009);
    t.int("SO_OVERFLOWED", r);
    let r = fionread(&mut c, d1);
    t.int("FIONREAD dgram", r);
    let r = c2.sendto(d, b"x", 0, None);
    t.n("send dgram no address", r);
    let r = c2.write(d, b"x");
    t.n("write dgram unconnected", r);
    let r = c2.connect_sock(d, &ad);
    t.unit("connect dgram", r);
    let r = c2.getpeername(d);
    t.bytes("getpeername dgram", r);
    let r = c2.sendto(d, b"x", 0, Some(&ad));
    t.n("sendto connected dgram", r);
    let r = c2.connect_sock(d, &sockaddr_un(b"/d3"));
    t.unit("reconnect dgram", r);
    let r = c2.connect_sock(d, &ad);
    t.unit("connect dgram back", r);
    let r = c.close(d1);
    t.unit("close /d1", r);
    let r = c2.write(d, b"x");
    t.n("write to vanished target", r);
    let r = c2.write(d, b"x");
    t.n("write to vanished target again", r);
    let r = c2.getsockopt_int(d, SOL_SOCKET, SO_ERROR);
    t.int("SO_ERROR after vanished", r);
    let r = c2.sendto(d3, b"x", 0, Some(&ad));
    t.n("sendto unbound name", r);
    let r = c2.sendto(d3, b"x", 0, Some(&a1));
    t.n("sendto stream name", r);

    // Socket pairs, seqpacket.
    let r = c.socketpair(AF_LOCAL, SOCK_SEQPACKET, 0);
    let (q1, q2) = *r.as_ref().unwrap_or(&(-1, -1));
    t.step("socketpair seqpacket", r, |p| format!("{} {}", p.0, p.1));
    let _ = c.write(q1, b"rec-one");
    let _ = c.write(q1, b"rec-two");
    let r = c.recvmsg(q2, &mut b, 0, 0);
    t.step("recvmsg seqpacket short", r, |m| {
        format!(
            "{} {} flags={:#x} namelen={}",
            m.n,
            String::from_utf8_lossy(&b[..m.n.min(3)]),
            m.flags,
            m.name.len()
        )
    });
    let r = read_all(&mut c, q2, 64);
    t.step("read seqpacket next record", r, |s| s);
    let r = c.getsockname(q1);
    t.bytes("getsockname socketpair", r);
    let r = c.getpeername(q1);
    t.bytes("getpeername socketpair", r);
    let r = c.getsockopt(q1, 0, LOCAL_PEEREID, 12);
    t.step("LOCAL_PEEREID socketpair", r, |b| peereid(&b, pid1));
    let r = c.socketpair(AF_LOCAL, SOCK_DGRAM, 0);
    let (g1, g2) = *r.as_ref().unwrap_or(&(-1, -1));
    t.step("socketpair dgram", r, |p| format!("{} {}", p.0, p.1));
    let r = c.sendmmsg(g1, &[b"m1", b"mm2", b"mmm3"], 0);
    t.step("sendmmsg", r, |(n, l)| format!("{n} {l:?}"));
    let mut bufs = vec![vec![0u8; 8]; 4];
    let r = c.recvmmsg(g2, &mut bufs, MSG_DONTWAIT);
    t.step("recvmmsg", r, |(n, l)| format!("{n} {l:?}"));
    let r = c.recvfrom(g2, &mut b, MSG_DONTWAIT);
    t.step("recvfrom socketpair dgram empty", r, |(n, _)| n.to_string());
    let r = c.socketpair(AF_LOCAL, SOCK_STREAM | SOCK_NONBLOCK, 0);
    let (p1, p2) = *r.as_ref().unwrap_or(&(-1, -1));
    t.step("socketpair stream nonblock", r, |p| {
        format!("{} {}", p.0, p.1)
    });
    let mut fill = 0usize;
    let chunk = [1u8; 1000];
    let last = loop {
        match c.write(p1, &chunk) {
            Ok(n) => fill += n,
            Err(e) => break e.errno().unwrap_or(0),
        }
        if fill > 1 << 20 {
            break 0;
        }
    };
    t.step("stream fills", Ok::<_, client::Error>(()), |_| {
        format!("{fill} then errno {last}")
    });
    let r = poll1(&mut c, p1, POLLOUT);
    t.step("poll full stream", r, |s| s);
    let r = c.fstat(p1);
    t.step("fstat full stream", r, |s| format!("blksize={}", s.blksize));
    let mut big = vec![0u8; 8192];
    let r = c.read(p2, &mut big);
    t.n("drain stream", r);

    // SCM_RIGHTS between processes, LOCAL_CREDS.
    let k4 = t.fd("socket k4", c2.socket(AF_LOCAL, SOCK_STREAM, 0));
    let _ = c.fcntl(s1, F_SETFL, 0);
    let r = c2.connect_sock(k4, &a1);
    t.unit("connect k4", r);
    let a4 = t.fd("accept k4", c.accept(s1).map(|x| x.0));
    let r = c.setsockopt(a4, 0, LOCAL_CREDS, &1i32.to_le_bytes());
    t.unit("setsockopt LOCAL_CREDS", r);
    let (pr, pw) = c2.pipe().unwrap_or((-1, -1));
    let r = c2.sendmsg(k4, &[b"fd"], None, &cmsg_rights(&[pw]), 0);
    t.n("sendmsg SCM_RIGHTS", r);
    let _ = c2.close(pw);
    let r = c.recvmsg(a4, &mut b, 128, 0);
    let mut got_fd = -1;
    t.step("recvmsg SCM_RIGHTS", r, |m| {
        let mut parts = vec![format!("{} flags={:#x} clen={}", m.n, m.flags, m.control.len())];
        for (level, ty, data) in parse_cmsgs(&m.control) {
            if ty == SCM_RIGHTS && data.len() >= 4 {
                got_fd = i32::from_le_bytes(data[..4].try_into().unwrap());
                parts.push(format!("rights len={}", data.len()));
            } else if ty == SCM_CREDS && data.len() >= 24 {
                let w = |i: usize| i32::from_le_bytes(data[i..i + 4].try_into().unwrap());
                parts.push(format!(
                    "creds level={level:#x} len={} pid_is_sender={} uid={} euid={} gid={} egid={} ngroups={}",
                    data.len(), w(0) == pid2, w(4), w(8), w(12), w(16), w(20)
                ));
            } else {
                parts.push(format!("cmsg {level:#x} {ty} {}", hex(&data)));
            }
        }
        parts.join(" ")
    });
    let r = c.write(got_fd, b"through");
    t.n("write passed pipe", r);
    let r = read_all(&mut c2, pr, 16);
    t.step("read pipe end", r, |s| s);
    let _ = c.close(got_fd);
    let r = c2.write(k4, b"again");
    t.n("write after creds", r);
    let r = c.recvmsg(a4, &mut b, 128, 0);
    t.step("recvmsg creds only once", r, |m| {
        format!("{} clen={}", m.n, m.control.len())
    });
    let _ = read_all(&mut c, a4, 16);
    let r = c2.sendmsg(k4, &[b"x"], None, &cmsg_rights(&[55]), 0);
    t.n("sendmsg SCM_RIGHTS closed fd", r);
    let mut bad = cmsg_rights(&[pr]);
    bad[8] = 9;
    let r = c2.sendmsg(k4, &[b"x"], None, &bad, 0);
    t.n("sendmsg bad cmsg type", r);
    let r = c2.sendmsg(k4, &[b"x"], None, &bad[..8], 0);
    t.n("sendmsg short control", r);
    let kq = c2
        .syscall(344, &[], &mut [])
        .map(|r| r[0] as i32)
        .unwrap_or(-1);
    let r = c2.sendmsg(k4, &[b"x"], None, &cmsg_rights(&[kq]), 0);
    t.n("sendmsg SCM_RIGHTS kqueue", r);
    let r = c2.sendmsg(k4, &[b"r"], None, &cmsg_rights(&[pr, pr]), 0);
    t.n("sendmsg two rights", r);
    let r = c.recvmsg(a4, &mut b, 16, 0);
    t.step("recvmsg rights truncated", r, |m| {
        format!("{} flags={:#x} clen={}", m.n, m.flags, m.control.len())
    });
    let r = c2.sendmsg(k4, &[b"r"], None, &cmsg_rights(&[pr]), 0);
    t.n("sendmsg rights again", r);
    let r = c.recvmsg(a4, &mut b, 0, 0);
    t.step("recvmsg no control buffer", r, |m| {
        format!("{} flags={:#x} clen={}", m.n, m.flags, m.control.len())
    });
    let r = c.socket(AF_LOCAL, SOCK_STREAM, 0);
    t.fd("next free descriptor", r);

    // Unlinking a bound name.
    let r = c.unlink("/s1");
    t.unit("unlink /s1", r);
    let k5 = c2.socket(AF_LOCAL, SOCK_STREAM, 0).unwrap_or(-1);
    let r = c2.connect_sock(k5, &a1);
    t.unit("connect unlinked name", r);
    let r = c.getsockname(s1);
    t.bytes("getsockname after unlink", r);

    drop(c2);
    let r = c.reboot(RB_HALT | RB_NOSYNC, None);
    t.unit("halt", r);
    t
}

#[derive(Clone, Copy)]
enum Send {
    Write,
    Sendto(i32),
    Sendmsg(i32),
}

/// A fresh process connects to the listener, its peer is closed, then it sends: the errno
/// and the signal it was sent.
fn sigpipe(
    url: &str,
    c: &mut Client,
    s1: i32,
    a1: &[u8],
    sflags: i32,
    opt: bool,
    how: Send,
) -> String {
    let mut c3 = connect(url, "sigpipe");
    let k = c3.socket(AF_LOCAL, SOCK_STREAM | sflags, 0).unwrap_or(-1);
    if opt {
        let _ = c3.setsockopt(k, SOL_SOCKET, SO_NOSIGPIPE, &1i32.to_le_bytes());
    }
    let _ = c3.connect_sock(k, a1);
    if let Ok((a, _)) = c.accept(s1) {
        let _ = c.close(a);
    }
    let r = match how {
        Send::Write => c3.write(k, b"x"),
        Send::Sendto(f) => c3.sendto(k, b"x", f, None),
        Send::Sendmsg(f) => c3.sendmsg(k, &[b"x"], None, &[], f),
    };
    let e = match r {
        Ok(n) => format!("ok {n}"),
        Err(e) => format!("errno {}", e.errno().unwrap_or(0)),
    };
    format!("{e} signal {}", signal_of(&c3))
}

fn peereid(b: &[u8], pid: i32) -> String {
    if b.len() < 12 {
        return hex(b);
    }
    let w = |i: usize| i32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    format!(
        "len={} pid_matches={} euid={} egid={}",
        b.len(),
        w(0) == pid,
        w(4),
        w(8)
    )
}

/// The socket calls on a server without AF_LOCAL (`-lrumpnet` alone: `EAFNOSUPPORT`) or
/// without the socket layer (`ENOSYS`): each call once, on the console's descriptor where
/// it takes one. Halts the server.
pub fn run_absent(url: &str) -> Transcript {
    let mut t = Transcript::default();
    let mut c = connect(url, "sockabsent");
    let a1 = sockaddr_un(b"/s1");
    let r = c.socket(AF_LOCAL, SOCK_STREAM, 0);
    t.fd("socket local stream", r);
    let r = c.socket(AF_LOCAL, 99, 0);
    t.fd("socket local bad type", r);
    let r = c.socketpair(AF_LOCAL, SOCK_DGRAM, 0);
    t.step("socketpair local", r, |p| format!("{} {}", p.0, p.1));
    let r = c.bind(0, &a1);
    t.unit("bind console", r);
    let r = c.bind_len(0, &a1, 2);
    t.unit("bind console length 2", r);
    let r = c.connect_sock(0, &a1);
    t.unit("connect console", r);
    let r = c.listen(0, 1);
    t.unit("listen console", r);
    let r = c.accept(0);
    t.step("accept console", r, |(fd, _)| fd.to_string());
    let r = c.paccept(0, 0);
    t.step("paccept console", r, |(fd, _)| fd.to_string());
    let r = c.getsockname(0);
    t.bytes("getsockname console", r);
    let r = c.getpeername(0);
    t.bytes("getpeername console", r);
    let r = c.shutdown(0, SHUT_RD);
    t.unit("shutdown console", r);
    let r = c.sendto(0, b"x", 0, None);
    t.n("sendto console", r);
    let mut b = [0u8; 4];
    let r = c.recvfrom(0, &mut b, 0);
    t.step("recvfrom console", r, |(n, _)| n.to_string());
    let r = c.sendmsg(0, &[b"x"], None, &[], 0);
    t.n("sendmsg console", r);
    let r = c.recvmsg(0, &mut b, 0, 0);
    t.step("recvmsg console", r, |m| m.n.to_string());
    let r = c.sendmmsg(0, &[b"x"], 0);
    t.step("sendmmsg console", r, |(n, _)| n.to_string());
    let mut bufs = vec![vec![0u8; 4]];
    let r = c.recvmmsg(0, &mut bufs, 0);
    t.step("recvmmsg console", r, |(n, _)| n.to_string());
    let r = c.getsockopt_int(0, SOL_SOCKET, SO_TYPE);
    t.int("getsockopt console", r);
    let r = c.setsockopt(0, SOL_SOCKET, SO_REUSEADDR, &1i32.to_le_bytes());
    t.unit("setsockopt console", r);
    let r = c.reboot(RB_HALT | RB_NOSYNC, None);
    t.unit("halt", r);
    t
}

//! The sockin probe (issue 15) whose answers NetBSD's rump_server recorded in
//! `tests/oracle/sockin.netbsd` (`rump_server -lrumpnet -lrumpnet_net -lrumpnet_sockin URL`):
//! socket(2) types and protocols of AF_INET/AF_INET6, option defaults, bind errors (bad
//! lengths, the other family, `EADDRNOTAVAIL`, a second bind), getsockname bytes,
//! `ECONNREFUSED`, `ENOTCONN`, a TCP connection between two processes (accept's address,
//! getpeername, data, FIONREAD, poll), UDP with the sender's address, and options set.
//! Host port numbers differ run to run: addresses are shown as `len fam/PORTNAME/rest`
//! with the port replaced by the name of what it belongs to. The probe never closes a
//! connected TCP socket (NetBSD's sockin panics in `pr_disconnect`) and halts at the end.
//!
//! Run with `cargo run --example oracle_sockin -- URL`; `tests/oracle_sockin.rs` compares.

use std::net::TcpListener;

use client::net::*;
use client::{addr_of, int_arg, Buf, Client};

use crate::transcript::{connect, Transcript};

const SOCK_RAW: i32 = 3;
const SOCK_SEQPACKET_: i32 = 5;
const IPPROTO_UDP: i32 = 17;
const TCP_NODELAY: i32 = 1;
const SO_REUSEADDR: i32 = 0x0004;
const SO_KEEPALIVE: i32 = 0x0008;
const SO_LINGER: i32 = 0x0080;
const SO_ACCEPTCONN: i32 = 0x0002;
const SO_SNDBUF: i32 = 0x1001;
const SO_RCVBUF: i32 = 0x1002;
const SO_SNDLOWAT: i32 = 0x1003;
const SO_RCVLOWAT: i32 = 0x1004;
const SO_ERROR: i32 = 0x1007;
const SO_TYPE: i32 = 0x1008;
const FIONREAD: u64 = 0x4004_667f;
const SYS_IOCTL: u32 = 54;
const SYS_POLL: u32 = 209;
const POLLIN: i16 = 1;
const POLLOUT: i16 = 4;
const RB_HALT: i32 = 0x8;
const RB_NOSYNC: i32 = 0x4;
const LO: [u8; 4] = [127, 0, 0, 1];
const LO6: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Port numbers seen so far and their names.
#[derive(Default)]
struct Ports(Vec<(u16, String)>);

impl Ports {
    fn name(&mut self, port: u16, fresh: &str) -> String {
        if port == 0 {
            return "0".into();
        }
        if let Some((_, n)) = self.0.iter().find(|(p, _)| *p == port) {
            return n.clone();
        }
        self.0.push((port, fresh.to_string()));
        fresh.to_string()
    }

    /// `len fam/PORTNAME/rest` of a sockaddr_in/in6.
    fn show(&mut self, sa: &[u8], fresh: &str) -> String {
        if sa.len() < 4 {
            return hex(sa);
        }
        let p = sin_port(sa);
        format!(
            "{}/{}/{}",
            hex(&sa[..2]),
            self.name(p, fresh),
            hex(&sa[4..])
        )
    }
}

impl Transcript {
    fn fd(&mut self, name: &str, r: client::Result<i32>) -> i32 {
        let v = *r.as_ref().unwrap_or(&-1);
        self.step(name, r, |_| String::new());
        v
    }

    fn int(&mut self, name: &str, r: client::Result<i32>) {
        self.step(name, r, |v| v.to_string());
    }
}

fn fionread(c: &mut Client, fd: i32) -> client::Result<i32> {
    let mut v = [0u8; 4];
    let args = [int_arg(fd), FIONREAD, addr_of(&v)];
    c.syscall(SYS_IOCTL, &args, &mut [Buf::Out(&mut v)])?;
    Ok(i32::from_le_bytes(v))
}

fn poll1(c: &mut Client, fd: i32, events: i16, ms: i32) -> client::Result<String> {
    let mut pfd = [0u8; 8];
    pfd[..4].copy_from_slice(&fd.to_le_bytes());
    pfd[4..6].copy_from_slice(&events.to_le_bytes());
    let args = [addr_of(&pfd), 1, int_arg(ms)];
    let n = c.syscall(SYS_POLL, &args, &mut [Buf::InOut(&mut pfd)])?[0];
    Ok(format!("{n} {:#x}", i16::from_le_bytes([pfd[6], pfd[7]])))
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
        ("SO_KEEPALIVE", SO_KEEPALIVE),
        ("SO_ACCEPTCONN", SO_ACCEPTCONN),
    ] {
        let r = c.getsockopt_int(fd, SOL_SOCKET, opt);
        t.int(&format!("{tag} getsockopt {name}"), r);
    }
    let r = c.getsockopt(fd, SOL_SOCKET, SO_LINGER, 8);
    t.step(&format!("{tag} getsockopt SO_LINGER"), r, |b| hex(&b));
}

/// A loopback port nobody listens on (bound by the host, then freed).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(1)
}

/// Runs the probe against the server at `url`, which it halts at the end.
pub fn run(url: &str) -> Transcript {
    let mut t = Transcript::default();
    let mut ports = Ports::default();
    let mut c = connect(url, "sockinprobe");
    let mut c2 = connect(url, "sockinpeer");

    // socket(2): types and protocols.
    for (name, dom, ty, proto) in [
        ("inet stream", AF_INET, SOCK_STREAM, 0),
        ("inet dgram", AF_INET, SOCK_DGRAM, 0),
        ("inet stream tcp", AF_INET, SOCK_STREAM, IPPROTO_TCP),
        ("inet dgram udp", AF_INET, SOCK_DGRAM, IPPROTO_UDP),
        ("inet stream udp", AF_INET, SOCK_STREAM, IPPROTO_UDP),
        ("inet raw", AF_INET, SOCK_RAW, 0),
        ("inet seqpacket", AF_INET, SOCK_SEQPACKET_, 0),
        ("inet6 stream", AF_INET6, SOCK_STREAM, 0),
        ("inet6 dgram", AF_INET6, SOCK_DGRAM, 0),
    ] {
        let r = c.socket(dom, ty, proto);
        t.fd(&format!("socket {name}"), r);
    }
    // socketpair(AF_INET) is not probed: NetBSD's sockin panics in pr_connect2 (ours:
    // EOPNOTSUPP, as netinet). Nor is close: its pr_detach and pr_disconnect panic too.

    // Option defaults.
    let s = c.socket(AF_INET, SOCK_STREAM, 0).unwrap_or(-1);
    sockopts(&mut t, &mut c, "stream", s);
    let u = c.socket(AF_INET, SOCK_DGRAM, 0).unwrap_or(-1);
    sockopts(&mut t, &mut c, "dgram", u);
    let s6 = c.socket(AF_INET6, SOCK_STREAM, 0).unwrap_or(-1);
    sockopts(&mut t, &mut c, "stream6", s6);

    // Names of an unbound socket.
    let r = c.getsockname(s);
    t.step("getsockname unbound", r, |b| ports.show(&b, "P?"));
    let r = c.getpeername(s);
    t.step("getpeername unbound", r, |b| hex(&b));
    let r = c.getsockname(s6);
    t.step("getsockname unbound inet6", r, |b| ports.show(&b, "P?"));

    // bind errors.
    let r = c.bind_len(s, &sockaddr_in(LO, 0), 15);
    t.unit("bind len 15", r);
    let mut long = sockaddr_in(LO, 0);
    long.resize(20, 0);
    let r = c.bind_len(s, &long, 20);
    t.unit("bind len 20", r);
    let r = c.bind(s, &sockaddr_in6(LO6, 0));
    t.unit("bind inet6 address on inet", r);
    let r = c.bind(s6, &sockaddr_in(LO, 0));
    t.unit("bind inet address on inet6", r);
    let r = c.bind(s, &sockaddr_un(b"/x"));
    t.unit("bind local address on inet", r);
    let x = c.socket(AF_INET, SOCK_STREAM, 0).unwrap_or(-1);
    let r = c.bind(x, &sockaddr_in([192, 0, 2, 1], 0));
    t.unit("bind address not on the host", r);

    // A bound listener.
    let r = c.bind(s, &sockaddr_in(LO, 0));
    t.unit("bind 127.0.0.1:0", r);
    let r = c.getsockname(s);
    t.step("getsockname bound", r, |b| ports.show(&b, "LISTENER"));
    let r = c.bind(s, &sockaddr_in(LO, 0));
    t.unit("bind again", r);
    let r = c.listen(s, 4);
    t.unit("listen", r);
    let r = c.getsockopt_int(s, SOL_SOCKET, SO_ACCEPTCONN);
    t.int("listener getsockopt SO_ACCEPTCONN", r);
    let port = c.getsockname(s).map(|b| sin_port(&b)).unwrap_or(0);

    // Refused and unconnected.
    let k0 = c2.socket(AF_INET, SOCK_STREAM, 0).unwrap_or(-1);
    let closed = free_port();
    ports.name(closed, "CLOSED");
    let r = c2.connect_sock(k0, &sockaddr_in(LO, closed));
    t.unit("connect to a closed port", r);
    let u2 = c2.socket(AF_INET, SOCK_DGRAM, 0).unwrap_or(-1);
    let r = c2.getpeername(u2);
    t.unit("getpeername dgram unconnected", r);
    let mut b = [0u8; 4];
    let r = c2.read(k0, &mut b);
    t.step("read unconnected stream", r, |n| n.to_string());

    // UDP with the sender's address.
    let r = c.bind(u, &sockaddr_in(LO, 0));
    t.unit("bind dgram", r);
    let r = c2.bind(u2, &sockaddr_in(LO, 0));
    t.unit("bind dgram peer", r);
    let ua = c.getsockname(u).unwrap_or_default();
    let ua2 = c2.getsockname(u2).unwrap_or_default();
    ports.name(if ua.len() >= 4 { sin_port(&ua) } else { 0 }, "UDP1");
    ports.name(if ua2.len() >= 4 { sin_port(&ua2) } else { 0 }, "UDP2");
    let r = c2.sendto(u2, b"datagram", 0, Some(&ua));
    t.step("sendto", r, |n| n.to_string());
    let r = poll1(&mut c, u, POLLIN, 2000);
    t.step("poll dgram", r, |s| s);
    let mut buf = [0u8; 64];
    let r = c.recvfrom(u, &mut buf, 0);
    t.step("recvfrom", r, |(n, from)| {
        format!(
            "{} {} from {}",
            n,
            String::from_utf8_lossy(&buf[..n]),
            ports.show(&from, "P?")
        )
    });

    // A TCP connection between the two processes.
    let k = c2.socket(AF_INET, SOCK_STREAM, 0).unwrap_or(-1);
    let r = c2.connect_sock(k, &sockaddr_in(LO, port));
    t.unit("connect to the listener", r);
    let r = c2.connect_sock(k, &sockaddr_in(LO, port));
    t.unit("connect again", r);
    let mine = c2.getsockname(k).unwrap_or_default();
    ports.name(
        if mine.len() >= 4 { sin_port(&mine) } else { 0 },
        "CONNECTOR",
    );
    let r = c2.getpeername(k);
    t.step("getpeername connected", r, |b| ports.show(&b, "P?"));
    let r = poll1(&mut c, s, POLLIN, 2000);
    t.step("poll listener", r, |s| s);
    let r = c.accept(s);
    let a = *r.as_ref().map(|(fd, _)| fd).unwrap_or(&-1);
    t.step("accept", r, |(_, peer)| ports.show(&peer, "P?"));
    let r = c.getsockname(a);
    t.step("getsockname accepted", r, |b| ports.show(&b, "P?"));
    let r = c.getsockopt_int(a, SOL_SOCKET, SO_ACCEPTCONN);
    t.int("accepted getsockopt SO_ACCEPTCONN", r);
    let r = c2.write(k, b"hello");
    t.step("write", r, |n| n.to_string());
    let r = poll1(&mut c, a, POLLIN | POLLOUT, 2000);
    t.step("poll accepted", r, |s| s);
    // Let the bytes arrive before FIONREAD (NetBSD's worker thread moves them).
    let _ = poll1(&mut c, a, POLLIN, 2000);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let r = fionread(&mut c, a);
    t.int("FIONREAD", r);
    let r = c.read(a, &mut buf);
    t.step("read", r, |n| {
        format!("{n} {}", String::from_utf8_lossy(&buf[..n]))
    });

    // Options set.
    let one = 1i32.to_le_bytes();
    let r = c.setsockopt(a, SOL_SOCKET, SO_REUSEADDR, &one);
    t.unit("setsockopt SO_REUSEADDR", r);
    let r = c.getsockopt_int(a, SOL_SOCKET, SO_REUSEADDR);
    t.int("getsockopt SO_REUSEADDR set", r);
    let r = c.setsockopt(a, SOL_SOCKET, SO_SNDBUF, &32768i32.to_le_bytes());
    t.unit("setsockopt SO_SNDBUF", r);
    let r = c.getsockopt_int(a, SOL_SOCKET, SO_SNDBUF);
    t.int("getsockopt SO_SNDBUF set", r);
    let r = c.setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one);
    t.unit("setsockopt TCP_NODELAY", r);
    let r = c.setsockopt(a, SOL_SOCKET, SO_LINGER, &[1, 0, 0, 0, 5, 0, 0, 0]);
    t.unit("setsockopt SO_LINGER", r);
    let r = c.getsockopt(a, SOL_SOCKET, SO_LINGER, 8);
    t.step("getsockopt SO_LINGER set", r, |b| hex(&b));

    let r = c.getsockopt_int(a, IPPROTO_TCP, TCP_NODELAY);
    t.int("getsockopt TCP_NODELAY set", r);
    let r = c.getsockopt_int(s6, IPPROTO_IPV6, 27);
    t.int("inet6 getsockopt IPV6_V6ONLY", r);

    // The listener's port again.
    let y = c2.socket(AF_INET, SOCK_STREAM, 0).unwrap_or(-1);
    let r = c2.bind(y, &sockaddr_in(LO, port));
    t.unit("bind the listener's address", r);
    // (A datagram cut by a short buffer is not probed: NetBSD's sockin worker stops
    // delivering datagrams here and the probe would hang.)

    let r = c.reboot(RB_HALT | RB_NOSYNC, None);
    t.unit("halt", r);
    t
}

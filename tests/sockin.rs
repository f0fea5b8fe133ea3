//! sockin (`-lrumpnet_sockin`, issue 15): AF_INET/AF_INET6 TCP and UDP served by the host's
//! stack, driven through the client. Rump-to-rump and rump-to-host TCP on 127.0.0.1 and
//! ::1, UDP datagrams with their sender, NetBSD's sockaddr layouts and errno values, options
//! mapped to the host's, non-blocking connect and poll, blocking calls that a disconnect
//! ends (and frees: a small host-socket cap would run out otherwise), the address policy
//! (`RUMP_SOCKIN_ALLOW`, loopback by default) and the cap (`RUMP_SOCKIN_MAX`). Only
//! loopback addresses and free ports. NetBSD's answers: `tests/oracle_sockin.rs`.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use client::net::*;
use client::{addr_of, int_arg, Buf, Client};
use common::Server;

const SHUT_WR: i32 = 1;
const EACCES: i32 = 13;
const EINVAL: i32 = 22;
const EAFNOSUPPORT: i32 = 47;
const EADDRINUSE: i32 = 48;
const EADDRNOTAVAIL: i32 = 49;
const ENOTCONN: i32 = 57;
const ECONNREFUSED: i32 = 61;
const EINPROGRESS: i32 = 36;
const ENFILE: i32 = 23;
const EPROTONOSUPPORT: i32 = 43;
const SYS_POLL: u32 = 209;
const SO_TYPE: i32 = 0x1008;
const SO_SNDBUF: i32 = 0x1001;
const SO_RCVBUF: i32 = 0x1002;
const SO_ERROR: i32 = 0x1007;
const SO_REUSEADDR: i32 = 0x4;
const SO_KEEPALIVE: i32 = 0x8;
const TCP_NODELAY: i32 = 1;
const IPV6_V6ONLY: i32 = 27;
const SOCK_NONBLOCK: i32 = 0x2000_0000;
const LO: [u8; 4] = [127, 0, 0, 1];
const LO6: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

fn errno<T: std::fmt::Debug>(r: client::Result<T>) -> i32 {
    r.expect_err("an error").errno().expect("an errno")
}

fn sockin() -> Server {
    Server::unix(&["-lrumpnet_sockin"])
}

/// A listener on 127.0.0.1 with a host-chosen port: (socket, port).
fn listen_lo(c: &mut Client) -> (i32, u16) {
    let l = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    c.bind(l, &sockaddr_in(LO, 0)).unwrap();
    c.listen(l, 8).unwrap();
    let sa = c.getsockname(l).unwrap();
    assert_eq!(&sa[..2], &[16, AF_INET as u8], "sin_len and sin_family");
    assert_eq!(&sa[4..8], &LO);
    (l, sin_port(&sa))
}

fn poll1(c: &mut Client, fd: i32, events: i16, timeout_ms: i32) -> (i64, i16) {
    let mut pfd = [0u8; 8];
    pfd[..4].copy_from_slice(&fd.to_le_bytes());
    pfd[4..6].copy_from_slice(&events.to_le_bytes());
    let args = [addr_of(&pfd), 1, int_arg(timeout_ms)];
    let n = c
        .syscall(SYS_POLL, &args, &mut [Buf::InOut(&mut pfd)])
        .unwrap()[0];
    (n, i16::from_le_bytes([pfd[6], pfd[7]]))
}

fn read_exact(c: &mut Client, fd: i32, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    while out.len() < n {
        let k = c.read(fd, &mut buf[..(n - out.len()).min(65536)]).unwrap();
        assert!(k > 0, "early EOF after {} of {n}", out.len());
        out.extend_from_slice(&buf[..k]);
    }
    out
}

#[test]
fn tcp_between_two_rump_processes_with_netbsd_addresses_and_eof() {
    let srv = sockin();
    let mut p1 = srv.client();
    let (l, port) = listen_lo(&mut p1);
    let mut p2 = srv.client();
    let k = p2.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    assert_eq!(errno(p2.getpeername(k)), ENOTCONN);
    p2.connect_sock(k, &sockaddr_in(LO, port)).unwrap();
    let (a, peer) = p1.accept(l).unwrap();
    let mine = p2.getsockname(k).unwrap();
    assert_eq!(peer, mine, "accept's address is the connector's name");
    assert_eq!(peer.len(), 16);
    assert_eq!(p2.getpeername(k).unwrap(), sockaddr_in(LO, port));
    // 300 KiB one way (more than the socket buffers: blocking sends and receives), then
    // back.
    let data: Vec<u8> = (0..300 * 1024).map(|i| (i % 251) as u8).collect();
    let d2 = data.clone();
    let w = std::thread::spawn(move || {
        assert_eq!(p2.write(k, &d2).unwrap(), d2.len());
        p2
    });
    assert_eq!(read_exact(&mut p1, a, data.len()), data);
    let mut p2 = w.join().unwrap();
    p1.write(a, b"pong").unwrap();
    assert_eq!(read_exact(&mut p2, k, 4), b"pong");
    // Half-close: the other side reads EOF, and can still send.
    p2.shutdown(k, SHUT_WR).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(p1.read(a, &mut buf).unwrap(), 0);
    p1.write(a, b"late").unwrap();
    assert_eq!(read_exact(&mut p2, k, 4), b"late");
}

#[test]
fn tcp_with_host_peers_both_ways_and_on_ipv6() {
    let srv = sockin();
    let mut c = srv.client();
    // Rump connects out to a host listener.
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let hp = host.local_addr().unwrap().port();
    let s = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    c.connect_sock(s, &sockaddr_in(LO, hp)).unwrap();
    let (mut hs, from) = host.accept().unwrap();
    assert_eq!(sin_port(&c.getsockname(s).unwrap()), from.port());
    c.write(s, b"to host").unwrap();
    let mut b = [0u8; 7];
    hs.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"to host");
    hs.write_all(b"to rump").unwrap();
    assert_eq!(read_exact(&mut c, s, 7), b"to rump");
    drop(hs);
    let mut buf = [0u8; 4];
    assert_eq!(c.read(s, &mut buf).unwrap(), 0, "host close is EOF");
    // The host connects in to a rump listener.
    let (l, port) = listen_lo(&mut c);
    let mut hc = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (a, _) = c.accept(l).unwrap();
    hc.write_all(b"in").unwrap();
    assert_eq!(read_exact(&mut c, a, 2), b"in");
    // IPv6 loopback, when the host has it.
    if TcpListener::bind("[::1]:0").is_err() {
        return;
    }
    let l6 = c.socket(AF_INET6, SOCK_STREAM, 0).unwrap();
    assert_eq!(
        c.getsockopt_int(l6, IPPROTO_IPV6, IPV6_V6ONLY).unwrap(),
        1,
        "NetBSD's inet6 sockets are v6-only"
    );
    c.bind(l6, &sockaddr_in6(LO6, 0)).unwrap();
    c.listen(l6, 4).unwrap();
    let sa = c.getsockname(l6).unwrap();
    assert_eq!(&sa[..2], &[28, AF_INET6 as u8]);
    assert_eq!(&sa[8..24], &LO6);
    let k6 = c.socket(AF_INET6, SOCK_STREAM, 0).unwrap();
    c.connect_sock(k6, &sockaddr_in6(LO6, sin_port(&sa)))
        .unwrap();
    let (a6, peer) = c.accept(l6).unwrap();
    assert_eq!(peer.len(), 28);
    c.write(k6, b"six").unwrap();
    assert_eq!(read_exact(&mut c, a6, 3), b"six");
}

#[test]
fn udp_datagrams_carry_their_sender() {
    let srv = sockin();
    let mut c = srv.client();
    let u1 = c.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    let u2 = c.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    c.bind(u1, &sockaddr_in(LO, 0)).unwrap();
    c.bind(u2, &sockaddr_in(LO, 0)).unwrap();
    let a1 = c.getsockname(u1).unwrap();
    let a2 = c.getsockname(u2).unwrap();
    assert_eq!(c.sendto(u1, b"dgram", 0, Some(&a2)).unwrap(), 5);
    let mut buf = [0u8; 64];
    let (n, from) = c.recvfrom(u2, &mut buf, 0).unwrap();
    assert_eq!(&buf[..n], b"dgram");
    assert_eq!(from, a1);
    // A host UDP socket answers.
    let h = UdpSocket::bind("127.0.0.1:0").unwrap();
    let hp = h.local_addr().unwrap().port();
    c.sendto(u1, b"to host", 0, Some(&sockaddr_in(LO, hp)))
        .unwrap();
    let mut hb = [0u8; 16];
    let (n, from) = h.recv_from(&mut hb).unwrap();
    assert_eq!(&hb[..n], b"to host");
    assert_eq!(from.port(), sin_port(&a1));
    h.send_to(b"back", from).unwrap();
    let (n, from) = c.recvfrom(u1, &mut buf, 0).unwrap();
    assert_eq!((&buf[..n], sin_port(&from)), (&b"back"[..], hp));
    assert_eq!(
        c.getsockopt_int(u1, SOL_SOCKET, SO_TYPE).unwrap(),
        SOCK_DGRAM
    );
}

#[test]
fn netbsd_errors_for_bad_addresses_and_refused_connections() {
    let srv = sockin();
    let mut c = srv.client();
    let s = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    // A sockaddr_in one byte short, and one of the other family.
    assert_eq!(errno(c.bind_len(s, &sockaddr_in(LO, 0), 15)), EINVAL);
    assert_eq!(errno(c.bind(s, &sockaddr_in6(LO6, 0))), EAFNOSUPPORT);
    assert_eq!(
        errno(c.socket(AF_INET, SOCK_STREAM, 17)),
        EPROTONOSUPPORT,
        "UDP is no stream protocol"
    );
    // Nobody listens on a port just freed.
    let port = {
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        t.local_addr().unwrap().port()
    };
    assert_eq!(
        errno(c.connect_sock(s, &sockaddr_in(LO, port))),
        ECONNREFUSED
    );
    // A port in use.
    let (_l, used) = listen_lo(&mut c);
    let t = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    assert_eq!(errno(c.bind(t, &sockaddr_in(LO, used))), EADDRINUSE);
    assert_eq!(errno(c.getpeername(t)), ENOTCONN);
}

#[test]
fn the_policy_keeps_sockets_on_loopback_unless_the_operator_widens_it() {
    let srv = sockin();
    let mut c = srv.client();
    let s = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    // Never sent: refused before the host sees it.
    assert_eq!(
        errno(c.connect_sock(s, &sockaddr_in([192, 0, 2, 1], 80))),
        EACCES
    );
    assert_eq!(errno(c.bind(s, &sockaddr_in([0, 0, 0, 0], 0))), EACCES);
    let u = c.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    assert_eq!(
        errno(c.sendto(u, b"x", 0, Some(&sockaddr_in([192, 0, 2, 1], 9)))),
        EACCES
    );
    let s6 = c.socket(AF_INET6, SOCK_STREAM, 0).unwrap();
    let mut mapped = [0u8; 16];
    mapped[10] = 0xff;
    mapped[11] = 0xff;
    mapped[12..].copy_from_slice(&[192, 0, 2, 1]);
    assert_eq!(errno(c.connect_sock(s6, &sockaddr_in6(mapped, 80))), EACCES);
    drop(c);
    drop(srv);
    // Narrowed to one port range: other loopback ports are refused, and an address the
    // host does not have is EADDRNOTAVAIL from the host once allowed.
    let srv = Server::unix_env(
        &["-lrumpnet_sockin"],
        &[("RUMP_SOCKIN_ALLOW", "127.0.0.1:1-2,192.0.2.1")],
    );
    let mut c = srv.client();
    let s = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    assert_eq!(errno(c.connect_sock(s, &sockaddr_in(LO, 8080))), EACCES);
    assert_eq!(
        errno(c.bind(s, &sockaddr_in([192, 0, 2, 1], 0))),
        EADDRNOTAVAIL
    );
}

#[test]
fn options_are_netbsd_numbers_mapped_to_the_host() {
    let srv = sockin();
    let mut c = srv.client();
    let s = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    assert_eq!(
        c.getsockopt_int(s, SOL_SOCKET, SO_TYPE).unwrap(),
        SOCK_STREAM
    );
    assert_eq!(c.getsockopt_int(s, SOL_SOCKET, SO_SNDBUF).unwrap(), 65536);
    assert_eq!(c.getsockopt_int(s, SOL_SOCKET, SO_RCVBUF).unwrap(), 65536);
    assert_eq!(c.getsockopt_int(s, SOL_SOCKET, SO_ERROR).unwrap(), 0);
    for (level, name) in [
        (SOL_SOCKET, SO_REUSEADDR),
        (SOL_SOCKET, SO_KEEPALIVE),
        (IPPROTO_TCP, TCP_NODELAY),
    ] {
        assert_eq!(c.getsockopt_int(s, level, name).unwrap(), 0, "{name:#x}");
        c.setsockopt(s, level, name, &1i32.to_le_bytes()).unwrap();
        assert_ne!(c.getsockopt_int(s, level, name).unwrap(), 0, "{name:#x}");
    }
    c.setsockopt(s, SOL_SOCKET, SO_SNDBUF, &32768i32.to_le_bytes())
        .unwrap();
    assert_eq!(c.getsockopt_int(s, SOL_SOCKET, SO_SNDBUF).unwrap(), 32768);
    let u = c.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    assert!(c.getsockopt_int(u, IPPROTO_TCP, TCP_NODELAY).is_err());
}

#[test]
fn nonblocking_connect_then_poll_for_writable() {
    let srv = sockin();
    let mut c = srv.client();
    let (l, port) = listen_lo(&mut c);
    let k = c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0).unwrap();
    match c.connect_sock(k, &sockaddr_in(LO, port)) {
        Ok(()) => {}
        Err(e) => assert_eq!(e.errno(), Some(EINPROGRESS)),
    }
    let (n, rev) = poll1(&mut c, k, 4, 5000); // POLLOUT
    assert_eq!((n, rev & 4), (1, 4));
    assert_eq!(c.getsockopt_int(k, SOL_SOCKET, SO_ERROR).unwrap(), 0);
    let (a, _) = c.accept(l).unwrap();
    // Nothing to read yet: a non-blocking read says so; poll wakes when data comes.
    let mut buf = [0u8; 4];
    assert_eq!(errno(c.read(k, &mut buf)), 35);
    let (n, _) = poll1(&mut c, a, 1, 0);
    assert_eq!(n, 0);
    c.write(k, b"rdy").unwrap();
    let (n, rev) = poll1(&mut c, a, 1, 5000);
    assert_eq!((n, rev & 1), (1, 1));
}

#[test]
fn blocked_calls_end_on_disconnect_and_free_their_host_sockets() {
    // Four host sockets in all: a leak would make the later rounds fail with ENFILE.
    let srv = Server::unix_env(&["-lrumpnet_sockin"], &[("RUMP_SOCKIN_MAX", "4")]);
    let mut p1 = srv.client();
    let (l, port) = listen_lo(&mut p1);
    for round in 0..6 {
        let mut p2 = srv.client();
        let k = p2.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        p2.connect_sock(k, &sockaddr_in(LO, port)).unwrap();
        let (a, _) = p1.accept(l).unwrap();
        // p2 sleeps in a read nobody answers; then its connection vanishes.
        let raw = p2.as_raw_fd();
        let blocked = std::thread::spawn(move || {
            let mut b = [0u8; 8];
            let r = p2.read(k, &mut b);
            drop(p2);
            r.is_err()
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(!blocked.is_finished(), "round {round}: the read must block");
        // SAFETY: shutdown(2) of the client's socket, still open in the thread.
        unsafe {
            libc::shutdown(raw, libc::SHUT_RDWR);
        }
        assert!(blocked.join().unwrap(), "round {round}: the read ends");
        // The server closes the vanished process's socket: the accepted side sees EOF.
        let mut b = [0u8; 8];
        assert_eq!(p1.read(a, &mut b).unwrap(), 0, "round {round}");
        p1.close(a).unwrap();
    }
    // All slots free again: four sockets open.
    let mut c = srv.client();
    for _ in 0..3 {
        c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    }
    assert_eq!(errno(c.socket(AF_INET, SOCK_STREAM, 0)), ENFILE);
}

#[test]
fn a_writer_whose_peer_vanishes_mid_send_gets_an_error_and_sigpipe_for_epipe() {
    let srv = sockin();
    let mut p1 = srv.client();
    let (l, port) = listen_lo(&mut p1);
    let mut p2 = srv.client();
    let k = p2.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    p2.connect_sock(k, &sockaddr_in(LO, port)).unwrap();
    let (_a, _) = p1.accept(l).unwrap();
    // p2 writes far more than the host buffers hold; nobody reads: the write sleeps.
    let writer = std::thread::spawn(move || {
        let big = vec![7u8; 16 << 20];
        let r = p2.write(k, &big).map_err(|e| e.errno());
        (r, p2)
    });
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        !writer.is_finished(),
        "the write must block on full buffers"
    );
    // The reader's process vanishes: its socket closes with unread data (a reset).
    let raw = p1.as_raw_fd();
    // SAFETY: shutdown(2) of the client's own socket; it stays open until p1 drops.
    unsafe {
        libc::shutdown(raw, libc::SHUT_RDWR);
    }
    let (r, mut p2) = writer.join().unwrap();
    // The blocked write ends: a partial count or the reset.
    match r {
        Ok(n) => assert!(n < 16 << 20, "a partial write: {n}"),
        Err(e) => assert!(matches!(e, Some(32) | Some(54)), "{e:?}"),
    }
    // Writing on: EPIPE, with SIGPIPE posted to the client; MSG_NOSIGNAL suppresses it.
    let mut got = None;
    for _ in 0..50 {
        match p2.write(k, b"more") {
            Err(e) if e.errno() == Some(32) => {
                got = Some(p2.last_signal());
                break;
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    assert_eq!(got, Some(Some(13)), "EPIPE and SIGPIPE");
    let before = p2.last_signal();
    assert_eq!(errno(p2.sendto(k, b"x", 0x400, None)), 32);
    assert_eq!(p2.last_signal(), before, "no new signal with MSG_NOSIGNAL");
    drop(p1);
}

#[test]
fn peek_waitall_and_shutdown_of_the_read_side() {
    let srv = sockin();
    let mut c = srv.client();
    let (l, port) = listen_lo(&mut c);
    let k = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    c.connect_sock(k, &sockaddr_in(LO, port)).unwrap();
    let (a, _) = c.accept(l).unwrap();
    c.write(k, b"abcdef").unwrap();
    let mut buf = [0u8; 16];
    // MSG_PEEK leaves the bytes; then they are read.
    let (n, _) = c.recvfrom(a, &mut buf, 0x2 | 0x40).unwrap_or((0, vec![]));
    assert!(n > 0 && n <= 6 && buf[..n] == b"abcdef"[..n]);
    std::thread::sleep(Duration::from_millis(50));
    let (n, _) = c.recvfrom(a, &mut buf[..6], 0x40).unwrap(); // MSG_WAITALL
    assert_eq!(&buf[..n], b"abcdef");
    // Nothing left: MSG_DONTWAIT says so.
    assert_eq!(errno(c.recvfrom(a, &mut buf, 0x80)), 35);
    c.shutdown(a, 0).unwrap(); // SHUT_RD
    assert_eq!(c.read(a, &mut buf).unwrap(), 0, "no more receives: EOF");
    // listen on a datagram socket, accept on a non-listener.
    let u = c.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    assert_eq!(errno(c.listen(u, 1)), 45);
    assert_eq!(errno(c.accept(k)), EINVAL);
}

#[test]
fn no_socket_ends_up_on_the_wildcard_address_unless_allowed() {
    let srv = sockin();
    let mut c = srv.client();
    // listen(2) without bind would have the host pick 0.0.0.0.
    let s = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    assert_eq!(errno(c.listen(s, 1)), EACCES);
    // An unbound UDP socket sending to loopback is put on the loopback address first.
    let u = c.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    let h = UdpSocket::bind("127.0.0.1:0").unwrap();
    let hp = h.local_addr().unwrap().port();
    c.sendto(u, b"lo", 0, Some(&sockaddr_in(LO, hp))).unwrap();
    let me = c.getsockname(u).unwrap();
    assert_eq!(&me[4..8], &LO, "bound to 127.0.0.1, not 0.0.0.0");
    let mut b = [0u8; 4];
    let (n, from) = h.recv_from(&mut b).unwrap();
    assert_eq!((&b[..n], from.port()), (&b"lo"[..], sin_port(&me)));
}

/// kevent(2) `EVFILT_READ` sleeps until a host peer's bytes arrive (`data`: bytes
/// buffered); `SO_RCVTIMEO` ends a receive with `EAGAIN` after its time.
#[test]
fn kqueue_wakes_on_host_data_and_receive_timeouts() {
    const SYS_KQUEUE: u32 = 344;
    const SYS_KEVENT: u32 = 435;
    const SO_RCVTIMEO: i32 = 0x100c;
    let srv = sockin();
    let mut c = srv.client();
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let hp = host.local_addr().unwrap().port();
    let s = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    c.connect_sock(s, &sockaddr_in(LO, hp)).unwrap();
    let (mut hs, _) = host.accept().unwrap();
    let kq = c.syscall(SYS_KQUEUE, &[], &mut []).unwrap()[0] as i32;
    let waiter = std::thread::spawn(move || {
        let mut ch = [0u8; 40];
        ch[..8].copy_from_slice(&(s as u64).to_le_bytes());
        ch[12..16].copy_from_slice(&1u32.to_le_bytes()); // EV_ADD, EVFILT_READ
        let mut out = [0u8; 40];
        let args = [int_arg(kq), addr_of(&ch), 1, addr_of(&out), 1, 0];
        let n = c
            .syscall(SYS_KEVENT, &args, &mut [Buf::In(&ch), Buf::Out(&mut out)])
            .unwrap()[0];
        let data = i64::from_le_bytes(out[24..32].try_into().unwrap());
        (n, data, c)
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!waiter.is_finished(), "kevent must wait for data");
    hs.write_all(b"seven!!").unwrap();
    let (n, data, mut c) = waiter.join().unwrap();
    assert_eq!((n, data), (1, 7));
    // A receive timeout of 0.2 s on an idle connection.
    let mut b = [0u8; 16];
    assert_eq!(c.read(s, &mut b).unwrap(), 7);
    let mut tv = [0u8; 16];
    tv[8..].copy_from_slice(&200_000i64.to_le_bytes());
    c.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv).unwrap();
    let t = std::time::Instant::now();
    assert_eq!(errno(c.read(s, &mut b)), 35);
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
}

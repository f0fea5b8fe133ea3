//! A hostile client against the socket layer (issue 15 under issue 19's rules): what it can
//! make the server hold is bounded by `-r`, and nothing it sends stops the server from
//! serving everyone else. Floods of socket buffers (with the largest buffers the options
//! allow), datagrams nobody reads, descriptors in flight, connections a listener never
//! accepts, descriptor cycles that only the collector can free, and seeded garbage to every
//! socket call; after each, the server still answers another client and its resident memory
//! stayed under the budget plus a fixed allowance.

mod common;

use client::net::*;
use client::{addr_of, Buf, Client};
use common::{rss_kib, Server};

const SOCK_NONBLOCK: i32 = 0x2000_0000;
const MSG_DONTWAIT: i32 = 0x80;
const SO_SNDBUF: i32 = 0x1001;
const SO_RCVBUF: i32 = 0x1002;
/// What the server may hold beyond `-r 16m` (its code, stacks, the loops' rings).
const RSS_BOUND_KIB: u64 = (16 + 24) * 1024;

fn server() -> Server {
    Server::unix(&["-lrumpvfs", "-lrumpnet", "-lrumpnet_net", "-r", "16m"])
}

fn alive(srv: &Server) {
    let mut c = common::connect_retry(&srv.url, "bystander");
    assert!(c.getpid().is_ok(), "the server stopped serving others");
    let err = srv.stderr_text();
    assert!(!err.contains("panicked"), "server panicked: {err}");
}

fn rss_ok(srv: &Server, what: &str) {
    let kib = rss_kib(srv.pid());
    assert!(
        kib < RSS_BOUND_KIB,
        "{what}: server RSS {kib} KiB with -r 16m"
    );
}

/// Socket pairs in 16 processes, each end's buffers raised as far as the options go, then
/// written without reading until the kernel says no.
#[test]
fn socket_buffer_floods_stop_at_the_budget() {
    let srv = server();
    let mut held = Vec::new();
    let mut total = 0usize;
    let chunk = vec![0x5au8; 64 * 1024];
    for p in 0..16 {
        let mut c = common::connect_retry(&srv.url, &format!("flood{p}"));
        'pairs: for _ in 0..60 {
            let Ok((a, b)) = c.socketpair(AF_LOCAL, SOCK_STREAM | SOCK_NONBLOCK, 0) else {
                break;
            };
            for s in [a, b] {
                let big = (1i32 << 30).to_le_bytes();
                let _ = c.setsockopt(s, SOL_SOCKET, SO_SNDBUF, &big);
                let _ = c.setsockopt(s, SOL_SOCKET, SO_RCVBUF, &big);
            }
            for _ in 0..64 {
                match c.sendto(a, &chunk, MSG_DONTWAIT, None) {
                    Ok(n) if n > 0 => total += n,
                    _ => continue 'pairs,
                }
            }
        }
        held.push(c);
    }
    eprintln!("bytes accepted into socket buffers: {total}");
    assert!(total < 64 << 20, "{total} bytes held with -r 16m");
    rss_ok(&srv, "socket buffer flood");
    alive(&srv);
    drop(held);
    alive(&srv);
}

/// Datagrams to a bound name nobody reads, from many senders.
#[test]
fn datagrams_nobody_reads_are_bounded() {
    let srv = server();
    let mut r = common::connect_retry(&srv.url, "deaf");
    let s = r.socket(AF_LOCAL, SOCK_DGRAM, 0).unwrap();
    r.bind(s, &sockaddr_un(b"/deaf")).unwrap();
    let big = (1i32 << 30).to_le_bytes();
    let _ = r.setsockopt(s, SOL_SOCKET, SO_RCVBUF, &big);
    let mut senders = Vec::new();
    let msg = vec![1u8; 2048];
    let mut accepted = 0usize;
    for p in 0..8 {
        let mut c = common::connect_retry(&srv.url, &format!("shout{p}"));
        let d = c.socket(AF_LOCAL, SOCK_DGRAM | SOCK_NONBLOCK, 0).unwrap();
        for _ in 0..5000 {
            match c.sendto(d, &msg, MSG_DONTWAIT, Some(&sockaddr_un(b"/deaf"))) {
                Ok(n) => accepted += n,
                Err(_) => break,
            }
        }
        senders.push(c);
    }
    eprintln!("datagram bytes queued: {accepted}");
    assert!(accepted < 64 << 20);
    rss_ok(&srv, "datagram flood");
    alive(&srv);
}

/// Messages carrying descriptors, sent and never received, until the kernel refuses.
#[test]
fn descriptors_in_flight_are_bounded() {
    let srv = server();
    let mut c = common::connect_retry(&srv.url, "rights");
    let (a, _b) = c
        .socketpair(AF_LOCAL, SOCK_DGRAM | SOCK_NONBLOCK, 0)
        .unwrap();
    let fds: Vec<i32> = (0..32).map(|_| a).collect();
    let cm = cmsg_rights(&fds);
    let mut sent = 0;
    for _ in 0..100_000 {
        if c.sendmsg(a, &[b"x"], None, &cm, MSG_DONTWAIT).is_err() {
            break;
        }
        sent += 1;
    }
    eprintln!("messages with 32 descriptors in flight: {sent}");
    assert!(sent < 100_000, "the kernel never refused");
    rss_ok(&srv, "rights flood");
    drop(c);
    alive(&srv);
}

/// Each of 200 processes sends both ends of a pair through the pair, closes them and goes:
/// only the collector can free those sockets; the budget must come back.
#[test]
fn descriptor_cycles_are_collected_after_the_processes_go() {
    let srv = server();
    for round in 0..3 {
        for p in 0..200 {
            let mut c = common::connect_retry(&srv.url, &format!("cycle{round}.{p}"));
            let (a, b) = c.socketpair(AF_LOCAL, SOCK_STREAM, 0).unwrap();
            c.sendmsg(a, &[b"x"], None, &cmsg_rights(&[a, b]), 0)
                .unwrap();
            c.sendmsg(b, &[b"y"], None, &cmsg_rights(&[a, b]), 0)
                .unwrap();
            c.close(a).unwrap();
            c.close(b).unwrap();
        }
        rss_ok(&srv, "descriptor cycles");
    }
    alive(&srv);
}

/// A listener that never accepts, and thousands of connection attempts.
#[test]
fn connections_never_accepted_are_bounded() {
    let srv = server();
    let mut l = common::connect_retry(&srv.url, "never-accepts");
    let s = l.socket(AF_LOCAL, SOCK_STREAM, 0).unwrap();
    l.bind(s, &sockaddr_un(b"/lazy")).unwrap();
    l.listen(s, 1 << 20).unwrap();
    let mut queued = 0;
    let mut refused = 0;
    let mut conns = Vec::new();
    for p in 0..20 {
        let mut c = common::connect_retry(&srv.url, &format!("knock{p}"));
        for _ in 0..120 {
            let Ok(k) = c.socket(AF_LOCAL, SOCK_STREAM | SOCK_NONBLOCK, 0) else {
                break;
            };
            match c.connect_sock(k, &sockaddr_un(b"/lazy")) {
                Ok(()) => queued += 1,
                Err(_) => {
                    refused += 1;
                    let _ = c.close(k);
                }
            }
        }
        conns.push(c);
    }
    eprintln!("connections queued {queued}, refused {refused}");
    assert!(refused > 0, "an unbounded accept queue");
    rss_ok(&srv, "accept queue flood");
    alive(&srv);
}

/// Seeded garbage (numbers, pointers into the client's own junk, lengths up to 4 GiB) to
/// every socket call, from several processes.
#[test]
fn garbage_to_every_socket_call_is_refused() {
    let srv = server();
    const CALLS: [u32; 18] = [
        27, 28, 29, 30, 31, 32, 98, 104, 105, 106, 118, 133, 134, 135, 394, 456, 475, 476,
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let fresh = |p: usize| {
        let mut c: Client = common::connect_retry(&srv.url, &format!("garbage{p}"));
        // A call the garbage makes may block for good (accept, recv): the client gives up
        // and goes, which the server must clean up after.
        c.set_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        let _ = c.socket(AF_LOCAL, SOCK_STREAM, 0);
        let _ = c.socketpair(AF_LOCAL, SOCK_DGRAM, 0);
        c
    };
    let mut abandoned = 0;
    for p in 0..4 {
        let mut c = fresh(p);
        let junk: Vec<u8> = (0..4096).map(|_| next() as u8).collect();
        let base = addr_of(&junk);
        for _ in 0..3000 {
            let nr = CALLS[(next() % CALLS.len() as u64) as usize];
            let mut args = [0u64; 6];
            for a in &mut args {
                *a = match next() % 6 {
                    0 => next() % 8,
                    1 => base + next() % 4096,
                    2 => next() % 300,
                    3 => u64::from(next() as u32),
                    4 => next(),
                    _ => 0,
                };
            }
            let mut b = junk.clone();
            if let Err(e) = c.syscall(nr, &args, &mut [Buf::InOut(&mut b)]) {
                if e.errno().is_none() {
                    abandoned += 1;
                    c = fresh(p);
                }
            }
        }
        assert!(
            c.getpid().is_ok(),
            "process {p} lost its connection to garbage"
        );
    }
    eprintln!("connections abandoned in a blocked call: {abandoned}");
    rss_ok(&srv, "garbage");
    alive(&srv);
}

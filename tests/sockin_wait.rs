//! sockin's waits (issue 15): a request that finds a host socket not ready arms a readiness
//! wait on its own loop (io_uring `POLL_ADD`, or the epoll backend's registration). These
//! check what that must not break: a socket closed while a wait is armed really closes its
//! host socket (the peer sees end of file; a ring poll would otherwise keep the host file
//! open), and a socket shared by two rump processes (`SCM_RIGHTS`, served on any loop) wakes
//! the waiters of both. Runs on both backends (`.ci/run` repeats it with
//! `RUMP_IO_BACKEND=epoll`). Only loopback addresses and free ports.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use client::net::*;
use client::{addr_of, int_arg, Buf, Client};
use common::Server;

const SYS_POLL: u32 = 209;
const SO_RCVTIMEO: i32 = 0x100c;
const EWOULDBLOCK: i32 = 35;
const POLLIN: i16 = 1;
const LO: [u8; 4] = [127, 0, 0, 1];

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

#[test]
fn closing_a_socket_with_armed_waits_closes_its_host_socket() {
    let srv = Server::unix(&["-lrumpnet_sockin"]);
    let mut c = srv.client();
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let hp = host.local_addr().unwrap().port();
    for round in 0..3 {
        let s = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        c.connect_sock(s, &sockaddr_in(LO, hp)).unwrap();
        let (mut hs, _) = host.accept().unwrap();
        // A poll that times out and a receive that times out leave a wait armed.
        assert_eq!(poll1(&mut c, s, POLLIN, 50), (0, 0), "round {round}");
        let mut tv = [0u8; 16];
        tv[8..].copy_from_slice(&50_000i64.to_le_bytes());
        c.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv).unwrap();
        let mut b = [0u8; 4];
        assert_eq!(
            c.read(s, &mut b).expect_err("timeout").errno(),
            Some(EWOULDBLOCK)
        );
        c.close(s).unwrap();
        // The host socket closes: the host peer reads end of file, not a timeout.
        hs.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut hb = [0u8; 4];
        assert_eq!(hs.read(&mut hb).unwrap(), 0, "round {round}: EOF");
    }
}

#[test]
fn a_socket_in_two_processes_wakes_the_waiters_of_both() {
    let srv = Server::unix(&[
        "-lrumpvfs",
        "-lrumpnet_local",
        "-lrumpnet_sockin",
        "-c",
        "2",
    ]);
    let mut p1 = srv.client();
    let l = p1.socket(AF_LOCAL, SOCK_STREAM, 0).unwrap();
    p1.bind(l, &sockaddr_un(b"/w")).unwrap();
    p1.listen(l, 4).unwrap();
    let mut p2 = srv.client();
    let k = p2.socket(AF_LOCAL, SOCK_STREAM, 0).unwrap();
    p2.connect_sock(k, &sockaddr_un(b"/w")).unwrap();
    let (a, _) = p1.accept(l).unwrap();
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let hp = host.local_addr().unwrap().port();
    let s = p1.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    p1.connect_sock(s, &sockaddr_in(LO, hp)).unwrap();
    let (mut hs, _) = host.accept().unwrap();
    p1.sendmsg(a, &[b"s"], None, &cmsg_rights(&[s]), 0).unwrap();
    let mut b = [0u8; 4];
    let m = p2.recvmsg(k, &mut b, 64, 0).unwrap();
    let cm = parse_cmsgs(&m.control);
    let s2 = i32::from_le_bytes(cm[0].2[..4].try_into().unwrap());
    for round in 0..3 {
        // p1 sleeps in a one-byte read, p2 in poll, both on the same host socket.
        let reader = std::thread::spawn(move || {
            let mut b = [0u8; 1];
            let n = p1.read(s, &mut b).unwrap();
            (n, b[0], p1)
        });
        let poller = std::thread::spawn(move || {
            let r = poll1(&mut p2, s2, POLLIN, 10_000);
            (r, p2)
        });
        std::thread::sleep(Duration::from_millis(150));
        assert!(!reader.is_finished(), "round {round}: the read waits");
        assert!(!poller.is_finished(), "round {round}: the poll waits");
        hs.write_all(b"xy").unwrap();
        let (n, byte, q1) = reader.join().unwrap();
        assert_eq!((n, byte), (1, b'x'), "round {round}");
        let ((pn, rev), q2) = poller.join().unwrap();
        assert_eq!((pn, rev & POLLIN), (1, POLLIN), "round {round}");
        p1 = q1;
        p2 = q2;
        // p2 takes the rest.
        assert_eq!(p2.read(s2, &mut b).unwrap(), 1, "round {round}");
        assert_eq!(b[0], b'y');
    }
}

/// `poll(2)` on `fds` for `POLLIN`: (count, the indexes with `POLLIN` back).
fn poll_in(c: &mut Client, fds: &[i32], timeout_ms: i32) -> (i64, Vec<usize>) {
    let mut pfd = vec![0u8; 8 * fds.len()];
    for (i, fd) in fds.iter().enumerate() {
        pfd[8 * i..8 * i + 4].copy_from_slice(&fd.to_le_bytes());
        pfd[8 * i + 4..8 * i + 6].copy_from_slice(&POLLIN.to_le_bytes());
    }
    let args = [addr_of(&pfd), fds.len() as u64, int_arg(timeout_ms)];
    let n = c
        .syscall(SYS_POLL, &args, &mut [Buf::InOut(&mut pfd)])
        .unwrap()[0];
    let ready = (0..fds.len())
        .filter(|i| i16::from_le_bytes([pfd[8 * i + 6], pfd[8 * i + 7]]) & POLLIN != 0)
        .collect();
    (n, ready)
}

/// 140 idle sockets of two processes in poll on one loop (140 armed waits): another process
/// on that loop is still served, and the sockets armed last wake their pollers.
#[test]
fn many_idle_sockets_in_poll_do_not_starve_the_loop() {
    const PER_PROC: usize = 70;
    let srv = Server::unix(&["-lrumpnet_sockin", "-c", "1"]);
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let hp = host.local_addr().unwrap().port();
    let mut procs = Vec::new();
    let mut peers = Vec::new();
    for _ in 0..2 {
        let mut c = srv.client();
        let mut fds = Vec::new();
        for _ in 0..PER_PROC {
            let s = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
            c.connect_sock(s, &sockaddr_in(LO, hp)).unwrap();
            fds.push(s);
            peers.push(host.accept().unwrap().0);
        }
        procs.push((c, fds));
    }
    let pollers: Vec<_> = procs
        .into_iter()
        .map(|(mut c, fds)| {
            std::thread::spawn(move || {
                let r = poll_in(&mut c, &fds, 20_000);
                (r, c)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(pollers.iter().all(|p| !p.is_finished()), "the polls wait");
    // Another process on the same loop is still served.
    let (tx, rx) = std::sync::mpsc::channel();
    let url_client = srv.client();
    std::thread::spawn(move || {
        let mut c = url_client;
        let s = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        c.close(s).unwrap();
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("the loop serves another process while 140 sockets wait");
    // The last socket of each process wakes its poller.
    peers[PER_PROC - 1].write_all(b"a").unwrap();
    peers[2 * PER_PROC - 1].write_all(b"b").unwrap();
    for p in pollers {
        let ((n, ready), _c) = p.join().unwrap();
        assert_eq!((n, ready), (1, vec![PER_PROC - 1]));
    }
}

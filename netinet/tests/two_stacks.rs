//! Two stacks on one shmif bus in a temp dir (as two rump kernels would be): ARP, ping
//! over a raw ICMP socket, UDP and TCP both ways; and one stack over lo0.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kernel::mem::Budget;
use netinet::{sock, Stack};

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "netinet-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn stack(dir: &Path) -> Arc<Stack> {
    let s = Stack::new(Budget::new(64 << 20), dir.to_path_buf()).unwrap();
    s.start(Box::new(|| true)).unwrap();
    s
}

fn join(s: &Stack, addr: &str) {
    let i = s.lock().if_create("shmif0").unwrap();
    s.set_linkstr("shmif0", b"bus1").unwrap();
    s.lock()
        .add_addr(i, addr.parse().unwrap(), 24, None)
        .unwrap();
    s.kick();
}

/// Runs `f` under the stack's lock until it gives `Some`, or panics after 10 s.
fn until<T>(s: &Stack, what: &str, mut f: impl FnMut(&mut netinet::Engine) -> Option<T>) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = f(&mut s.lock()) {
            s.kick();
            return v;
        }
        s.kick();
        assert!(t.elapsed() < Duration::from_secs(10), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(b"rump ping payload");
    let c = netinet::engine::csum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn ping_udp_tcp_over_a_bus() {
    let dir = tempdir("bus");
    let a = stack(&dir);
    let b = stack(&dir);
    join(&a, "10.0.1.1");
    join(&b, "10.0.1.2");
    assert!(
        dir.join("bus1").exists(),
        "the bus file is the linkstr path"
    );

    // ping: raw ICMP socket, echo answered by b's stack, reply delivered with its IP header.
    let r = sock::create(&mut a.lock(), false, 3, 1).unwrap();
    for seq in 0..3u16 {
        sock::dgram_send(
            &mut a.lock(),
            r,
            &echo_request(0x77, seq),
            Some((ip("10.0.1.2"), 0)),
            Default::default(),
        )
        .unwrap();
        let (pkt, n, from, _) = until(&a, "echo reply", |e| {
            sock::dgram_recv(e, r, 2048, false).unwrap()
        });
        assert_eq!(from.0, ip("10.0.1.2"));
        assert_eq!(n, pkt.len());
        assert_eq!(pkt[0] >> 4, 4, "raw ICMP reads the IP header");
        let icmp = &pkt[20..];
        assert_eq!((icmp[0], &icmp[4..8]), (0, &[0, 0x77, 0, seq as u8][..]));
    }
    // ARP learnt both ways.
    assert!(a.lock().arp.values().any(|e| e.mac.is_some()));
    assert!(b.lock().arp.values().any(|e| e.mac.is_some()));

    // UDP both ways.
    let ua = sock::create(&mut a.lock(), false, 2, 0).unwrap();
    let ub = sock::create(&mut b.lock(), false, 2, 0).unwrap();
    sock::bind(&mut b.lock(), ub, None, 5000).unwrap();
    sock::dgram_send(
        &mut a.lock(),
        ua,
        b"hello b",
        Some((ip("10.0.1.2"), 5000)),
        Default::default(),
    )
    .unwrap();
    let (d, _, from, _) = until(&b, "udp at b", |e| {
        sock::dgram_recv(e, ub, 100, false).unwrap()
    });
    assert_eq!((&d[..], from.0), (&b"hello b"[..], ip("10.0.1.1")));
    sock::dgram_send(
        &mut b.lock(),
        ub,
        b"hello a",
        Some(from),
        Default::default(),
    )
    .unwrap();
    let (d, _, from, _) = until(&a, "udp at a", |e| {
        sock::dgram_recv(e, ua, 100, false).unwrap()
    });
    assert_eq!((&d[..], from), (&b"hello a"[..], (ip("10.0.1.2"), 5000)));

    // TCP: b listens, a connects; 200 KB each way.
    let lb = sock::create(&mut b.lock(), false, 1, 0).unwrap();
    sock::bind(&mut b.lock(), lb, None, 7).unwrap();
    sock::listen(&mut b.lock(), lb, 5).unwrap();
    let ca = sock::create(&mut a.lock(), false, 1, 0).unwrap();
    sock::connect(&mut a.lock(), ca, ip("10.0.1.2"), 7).unwrap();
    a.kick();
    until(&a, "connected", |e| {
        sock::connect_status(e, ca).unwrap().then_some(())
    });
    let cb = until(&b, "accept", |e| sock::accept(e, lb).unwrap());
    assert_eq!(
        sock::name(&mut b.lock(), cb, true).unwrap().unwrap().0,
        ip("10.0.1.1")
    );
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    for (tx, txid, rx, rxid) in [(&a, ca, &b, cb), (&b, cb, &a, ca)] {
        let mut sent = 0;
        let mut got = Vec::new();
        let t = Instant::now();
        while got.len() < data.len() {
            if sent < data.len() {
                sent += sock::tcp_send(&mut tx.lock(), txid, &data[sent..]).unwrap();
                tx.kick();
            }
            let mut buf = [0u8; 8192];
            if let Some(n) = sock::tcp_recv(&mut rx.lock(), rxid, &mut buf, false).unwrap() {
                assert!(n > 0, "no early end of stream");
                got.extend_from_slice(&buf[..n]);
            } else {
                std::thread::sleep(Duration::from_micros(200));
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "tcp stalled at {}",
                got.len()
            );
        }
        assert!(got == data, "bytes arrive intact");
    }
    // a closes; b reads the end of the stream.
    sock::close(&mut a.lock(), ca);
    a.kick();
    until(&b, "eof", |e| {
        let mut buf = [0u8; 16];
        sock::tcp_recv(e, cb, &mut buf, false)
            .unwrap()
            .filter(|n| *n == 0)
    });
    // A closed port refuses (RST).
    let c2 = sock::create(&mut a.lock(), false, 1, 0).unwrap();
    sock::connect(&mut a.lock(), c2, ip("10.0.1.2"), 9).unwrap();
    let err = until(&a, "refused", |e| sock::connect_status(e, c2).err());
    assert_eq!(err, kernel::Errno::ECONNREFUSED);
    // No route: EHOSTUNREACH at once (the SYN has no way out), as NetBSD.
    let c3 = sock::create(&mut a.lock(), false, 1, 0).unwrap();
    assert_eq!(
        sock::connect(&mut a.lock(), c3, ip("192.0.2.1"), 7),
        Err(kernel::Errno::EHOSTUNREACH)
    );
    a.stop();
    b.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tcp_over_lo0() {
    let dir = tempdir("lo");
    let s = stack(&dir);
    let l = sock::create(&mut s.lock(), false, 1, 0).unwrap();
    sock::bind(
        &mut s.lock(),
        l,
        Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        8080,
    )
    .unwrap();
    sock::listen(&mut s.lock(), l, 1).unwrap();
    let c = sock::create(&mut s.lock(), false, 1, 0).unwrap();
    sock::connect(&mut s.lock(), c, ip("127.0.0.1"), 8080).unwrap();
    until(&s, "connected", |e| {
        sock::connect_status(e, c).unwrap().then_some(())
    });
    let a = until(&s, "accept", |e| sock::accept(e, l).unwrap());
    assert_eq!(sock::tcp_send(&mut s.lock(), c, b"over lo0").unwrap(), 8);
    let mut buf = [0u8; 64];
    let n = until(&s, "data", |e| {
        sock::tcp_recv(e, a, &mut buf, false).unwrap()
    });
    assert_eq!(&buf[..n], b"over lo0");
    // ping 127.0.0.1 over a raw socket.
    let r = sock::create(&mut s.lock(), false, 3, 1).unwrap();
    sock::dgram_send(
        &mut s.lock(),
        r,
        &echo_request(1, 1),
        Some((ip("127.0.0.1"), 0)),
        Default::default(),
    )
    .unwrap();
    let (pkt, _, _, _) = until(&s, "echo reply", |e| {
        sock::dgram_recv(e, r, 2048, false).unwrap()
    });
    assert_eq!(pkt[20], 0, "an echo reply");
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

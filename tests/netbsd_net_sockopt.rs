//! SO_SNDTIMEO/SO_RCVTIMEO on AF_INET and AF_INET6 sockets as NetBSD's generic `sosetopt`
//! takes them: the probe of `tests/oracle/inet_timeo.rs` was run against NetBSD's own
//! rump_server (`rump_server -lrumpnet -lrumpnet_net -lrumpnet_netinet -lrumpnet_netinet6
//! URL`, then `cargo run --example oracle_inet_timeo -- URL >
//! tests/oracle/inet-timeo.netbsd`): exactly a timeval long, EDOM past the tick count (and
//! for microseconds below -10000), any other time taken and read back in ticks of 10 ms,
//! negative ones included (they time out at once), the padding after tv_usec not read,
//! and a UDP receive that times out with EWOULDBLOCK. Ours answers every step as NetBSD did (net::domain's
//! codec, shared with AF_LOCAL and sockin).

mod common;

#[path = "oracle/inet_timeo.rs"]
mod inet_timeo;
#[path = "oracle/transcript.rs"]
mod transcript;

use std::time::{Duration, Instant};

use common::{InDir, TempDir};

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/inet-timeo.netbsd");

const LIBS: &[&str] = &[
    "-lrumpnet",
    "-lrumpnet_net",
    "-lrumpnet_netinet",
    "-lrumpnet_netinet6",
];

#[test]
fn so_sndtimeo_and_so_rcvtimeo_answer_as_netbsd() {
    let dir = TempDir::new("netbsd-timeo");
    let srv = InDir::start(&dir, "s.sock", LIBS);
    let ours = inet_timeo::run(&srv.url);
    transcript::assert_as_netbsd(&ours.0, NETBSD, &[]);
}

#[test]
fn a_receive_timeout_waits_its_ticks_and_accept_ignores_it() {
    let dir = TempDir::new("netbsd-timeo-wait");
    let srv = InDir::start(&dir, "s.sock", LIBS);
    let mut c = srv.client();
    let mut sin = vec![16u8, 2, 0, 0, 127, 0, 0, 1];
    sin.resize(16, 0);
    let tv = |sec: i64, usec: i32| {
        let mut b = sec.to_le_bytes().to_vec();
        b.extend_from_slice(&usec.to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        b
    };
    // 0.25 s: EWOULDBLOCK after about that long.
    let u = c.socket(2, 2, 0).unwrap();
    c.bind(u, &sin).unwrap();
    c.setsockopt(u, 0xffff, 0x100c, &tv(0, 250_000)).unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 8];
    assert!(matches!(
        c.recvfrom(u, &mut buf, 0),
        Err(client::Error::Errno(35))
    ));
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(240) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // A negative time reads back negative (as NetBSD) and times out at once (NetBSD's
    // server by hand: EWOULDBLOCK within a millisecond).
    c.setsockopt(u, 0xffff, 0x100c, &tv(-1, 500_000)).unwrap();
    let b = c.getsockopt(u, 0xffff, 0x100c, 16).unwrap();
    assert_eq!(i64::from_le_bytes(b[..8].try_into().unwrap()), 0);
    assert_eq!(i32::from_le_bytes(b[8..12].try_into().unwrap()), -500_000);
    let t = Instant::now();
    assert!(matches!(
        c.recvfrom(u, &mut buf, 0),
        Err(client::Error::Errno(35))
    ));
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    // No timeout again: a datagram sent after 0.3 s arrives.
    c.setsockopt(u, 0xffff, 0x100c, &tv(0, 0)).unwrap();
    let me = c.getsockname(u).unwrap();
    let url = srv.url.clone();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut c2 = common::connect_retry(&url, "sender");
        let s = c2.socket(2, 2, 0).unwrap();
        c2.sendto(s, b"late", 0, Some(&me)).unwrap();
    });
    let (n, _) = c.recvfrom(u, &mut buf, 0).unwrap();
    assert_eq!(&buf[..n], b"late");
    sender.join().unwrap();
    // accept(2) waits without a timeout whatever SO_RCVTIMEO says (`sowait(so, true,
    // 0)`): a connection made after 0.3 s is accepted, not EWOULDBLOCK at 0.1 s.
    let l = c.socket(2, 1, 0).unwrap();
    c.bind(l, &sin).unwrap();
    c.listen(l, 5).unwrap();
    c.setsockopt(l, 0xffff, 0x100c, &tv(0, 100_000)).unwrap();
    let me = c.getsockname(l).unwrap();
    let url = srv.url.clone();
    let dialer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut c2 = common::connect_retry(&url, "dialer");
        let s = c2.socket(2, 1, 0).unwrap();
        c2.connect_sock(s, &me).unwrap();
        c2
    });
    let t = Instant::now();
    let (fd, _) = c.accept(l).unwrap();
    assert!(fd >= 0);
    assert!(t.elapsed() >= Duration::from_millis(250));
    drop(dialer.join().unwrap());
}

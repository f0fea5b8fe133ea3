//! The socket-timeout probe for the TCP/IP faction: `SO_SNDTIMEO`/`SO_RCVTIMEO` set and read
//! back on AF_INET and AF_INET6 TCP and UDP sockets, with NetBSD's generic `sosetopt`
//! deciding (a value not a `struct timeval` long, a negative time, microseconds outside
//! 0..1e6, garbage in the padding after `tv_usec`, a time too long for the tick count).
//! Recorded from NetBSD's rump_server (`-lrumpnet -lrumpnet_net -lrumpnet_netinet
//! -lrumpnet_netinet6`) into `tests/oracle/inet-timeo.netbsd` by `cargo run --example
//! oracle_inet_timeo -- URL`; `tests/netbsd_net_sockopt.rs` replays it against ours.

use client::Client;

use crate::transcript::{connect, Transcript};

const SOL_SOCKET: i32 = 0xffff;
const SO_SNDTIMEO: i32 = 0x100b;
const SO_RCVTIMEO: i32 = 0x100c;

/// A `struct timeval` of `len` bytes: `tv_sec`, `tv_usec` (an int), the padding word.
fn tv(sec: i64, usec: i32, pad: u32, len: usize) -> Vec<u8> {
    let mut b = sec.to_le_bytes().to_vec();
    b.extend_from_slice(&usec.to_le_bytes());
    b.extend_from_slice(&pad.to_le_bytes());
    b.resize(len, 0);
    b
}

/// The value read back: seconds and microseconds (the padding is the kernel's stack).
fn show(b: Vec<u8>) -> String {
    if b.len() < 12 {
        return format!("short {}", b.len());
    }
    let s = i64::from_le_bytes(b[..8].try_into().expect("8"));
    let us = i32::from_le_bytes(b[8..12].try_into().expect("4"));
    format!("len {} {s}s {us}us", b.len())
}

/// Every case, `(name, value)`.
fn cases() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("1.5s", tv(1, 500_000, 0, 16)),
        ("zero", tv(0, 0, 0, 16)),
        ("1us", tv(0, 1, 0, 16)),
        ("1.005s", tv(1, 5_000, 0, 16)),
        ("2.999999s", tv(2, 999_999, 0, 16)),
        ("usec 1e6", tv(0, 1_000_000, 0, 16)),
        ("usec 2e6", tv(1, 2_000_000, 0, 16)),
        ("usec -1", tv(1, -1, 0, 16)),
        ("usec -20000", tv(3, -20_000, 0, 16)),
        ("sec -1", tv(-1, 0, 0, 16)),
        ("sec -1 usec 500000", tv(-1, 500_000, 0, 16)),
        ("padding garbage", tv(1, 0, 0xdead_beef, 16)),
        ("sec 21474836", tv(21_474_836, 0, 0, 16)),
        ("sec 21474837", tv(21_474_837, 0, 0, 16)),
        ("sec 1e12", tv(1_000_000_000_000, 0, 0, 16)),
        ("sec i64 min", tv(i64::MIN, 0, 0, 16)),
        ("len 0", Vec::new()),
        ("len 8", tv(1, 0, 0, 8)),
        ("len 12", tv(1, 0, 0, 12)),
        ("len 15", tv(1, 0, 0, 15)),
        ("len 17", tv(1, 0, 0, 17)),
        ("len 24", tv(1, 0, 0, 24)),
    ]
}

/// The probe against the server at `url`.
pub fn run(url: &str) -> Transcript {
    let mut c: Client = connect(url, "inet-timeo");
    let mut t = Transcript::default();
    for (af, afname) in [(2, "inet"), (24, "inet6")] {
        for (ty, tyname) in [(1, "tcp"), (2, "udp")] {
            let tag = format!("{afname} {tyname}");
            let s = match c.socket(af, ty, 0) {
                Ok(s) => s,
                Err(e) => {
                    t.unit(&format!("{tag} socket"), Err::<(), _>(e));
                    continue;
                }
            };
            for (opt, oname) in [(SO_SNDTIMEO, "SO_SNDTIMEO"), (SO_RCVTIMEO, "SO_RCVTIMEO")] {
                let r = c.getsockopt(s, SOL_SOCKET, opt, 16);
                t.step(&format!("{tag} {oname} default"), r, show);
                for (name, v) in cases() {
                    // Each case from a known value, so a refused one shows it unchanged.
                    let _ = c.setsockopt(s, SOL_SOCKET, opt, &tv(7, 0, 0, 16));
                    let r = c.setsockopt(s, SOL_SOCKET, opt, &v);
                    t.unit(&format!("{tag} {oname} set {name}"), r);
                    let r = c.getsockopt(s, SOL_SOCKET, opt, 16);
                    t.step(&format!("{tag} {oname} get {name}"), r, show);
                }
            }
            let r = c.getsockopt(s, SOL_SOCKET, SO_SNDTIMEO, 8);
            t.step(&format!("{tag} get SO_SNDTIMEO into 8"), r, |b| {
                format!("len {}", b.len())
            });
            let r = c.getsockopt(s, SOL_SOCKET, SO_SNDTIMEO, 32);
            t.step(&format!("{tag} get SO_SNDTIMEO into 32"), r, show);
            let _ = c.close(s);
        }
    }
    // The timeout at work: a bound UDP socket with 0.1 s (10 ticks) and with 1 tick
    // waits that long and says EWOULDBLOCK. (NetBSD's accept(2) ignores SO_RCVTIMEO:
    // `sowait(so, true, 0)`; a probe of it would wait for ever.)
    // A negative time times out at once.
    for (name, v) in [
        ("0.1s", tv(0, 100_000, 0, 16)),
        ("1us", tv(0, 1, 0, 16)),
        ("sec -1", tv(-1, 0, 0, 16)),
    ] {
        let s = c.socket(2, 2, 0).expect("udp socket");
        let mut sin = vec![16u8, 2, 0, 0, 127, 0, 0, 1];
        sin.resize(16, 0);
        t.unit(&format!("udp bind ({name})"), c.bind(s, &sin));
        let r = c.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &v);
        t.unit(&format!("udp SO_RCVTIMEO {name}"), r);
        let mut buf = [0u8; 16];
        let r = c.recvfrom(s, &mut buf, 0);
        t.step(&format!("udp recvfrom waits {name}"), r, |(n, _)| {
            n.to_string()
        });
        let _ = c.close(s);
    }
    t
}

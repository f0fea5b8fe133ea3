//! Hostile input to what `mcast.rs`, `nd6.rs` (router advertisements) and `ip6opts.rs`
//! parse, in process: frames fed straight to `ether_input` — IGMP, MLD behind a
//! hop-by-hop header, router advertisements and UDP to a group, each valid once and then
//! truncated, bit-flipped and with random option bytes (checksums fixed up so the
//! parsers past them run) — and random control messages to `ip6opts::for_send`. Nothing
//! panics, the state stays bounded (groups, the socket's multicast queue, routes,
//! addresses), and a valid datagram to a group still arrives afterwards.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use kernel::mem::Budget;
use netinet::engine::{csum, csum6};
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

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

const PEER_MAC: [u8; 6] = [0xb2, 0xa0, 9, 9, 9, 9];

fn frame6(
    dst_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    hlim: u8,
    body: &[u8],
) -> Vec<u8> {
    let mut f = dst_mac.to_vec();
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(body.len() as u16).to_be_bytes());
    f.extend_from_slice(&[next, hlim]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(body);
    f
}

fn frame4(dst: Ipv4Addr, proto: u8, ttl: u8, body: &[u8]) -> Vec<u8> {
    let o = dst.octets();
    let mut f = vec![0x01, 0, 0x5e, o[1] & 0x7f, o[2], o[3]];
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((20 + body.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0, 0, ttl, proto, 0, 0, 10, 0, 0, 99]);
    ip.extend_from_slice(&o);
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(body);
    f
}

/// ICMPv6 `m` with its checksum set for `src` → `dst`.
fn icmp6(src: Ipv6Addr, dst: Ipv6Addr, mut m: Vec<u8>) -> Vec<u8> {
    if m.len() >= 4 {
        m[2] = 0;
        m[3] = 0;
        let c = csum6(src, dst, 58, &m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
    }
    m
}

#[test]
fn hostile_multicast_control_and_ra_input_bounded() {
    let dir = tempdir("mcast-hostile");
    let s = Stack::new(Budget::new(64 << 20), dir).unwrap();
    let mut e = s.lock();
    let i = e.if_create("shmif0").unwrap();
    drop(e);
    s.set_linkstr("shmif0", b"bus1").unwrap();
    let mut e = s.lock();
    e.add_addr(i, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 24, None)
        .unwrap();
    e.nd6.accept_rtadv = true;
    // UDP sockets bound to 9000 (in 239.1.2.3) and 9001 (in ff05::9) on shmif0.
    let u4 = sock::create(&mut e, false, 2, 0).unwrap();
    sock::bind(&mut e, u4, None, 9000).unwrap();
    let g4 = Ipv4Addr::new(239, 1, 2, 3);
    let mut m = g4.octets().to_vec();
    m.extend_from_slice(&[10, 0, 0, 1]);
    netinet::mcast::setopt(&mut e, u4, false, 12, &m).unwrap();
    let g6: Ipv6Addr = "ff05::9".parse().unwrap();
    let u6 = sock::create(&mut e, true, 2, 0).unwrap();
    sock::bind(&mut e, u6, None, 9001).unwrap();
    let mut m6 = g6.octets().to_vec();
    m6.extend_from_slice(&i.to_le_bytes());
    netinet::mcast::setopt(&mut e, u6, true, 12, &m6).unwrap();

    let ll: Ipv6Addr = "fe80::99".parse().unwrap();
    let all: Ipv6Addr = "ff02::1".parse().unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let addrs_before = e.ifp(i).unwrap().addrs.len();
    for round in 0..6000u32 {
        let r = rng.next();
        // A valid message of one kind, then spoiled.
        let kind = round % 5;
        let mut f = match kind {
            0 => {
                let mut q = vec![0x11, (r % 50) as u8, 0, 0];
                q.extend_from_slice(&[0, 0, 0, 0]);
                let c = csum(&q);
                q[2..4].copy_from_slice(&c.to_be_bytes());
                frame4(Ipv4Addr::new(224, 0, 0, 1), 2, 1, &q)
            }
            1 => {
                let mut body = vec![58, 0, 1, 0, 5, 2, 0, 0];
                let mut q = vec![130, 0, 0, 0, 0, (r % 200) as u8, 0, 0];
                q.extend_from_slice(&[0; 16]);
                body.extend_from_slice(&icmp6(ll, all, q));
                frame6([0x33, 0x33, 0, 0, 0, 1], ll, all, 0, 1, &body)
            }
            2 => {
                let mut ra = vec![134, 0, 0, 0, 64, 0, 0, 30, 0, 0, 0, 0, 0, 0, 0, 0];
                ra.extend_from_slice(&[1, 1]);
                ra.extend_from_slice(&PEER_MAC);
                ra.extend_from_slice(&[3, 4, 64, 0xc0]);
                ra.extend_from_slice(&600u32.to_be_bytes());
                ra.extend_from_slice(&300u32.to_be_bytes());
                ra.extend_from_slice(&[0; 4]);
                let mut p = [0u8; 16];
                p[0] = 0xfc;
                p[1] = (r % 4) as u8; // a few prefixes
                ra.extend_from_slice(&p);
                frame6(
                    [0x33, 0x33, 0, 0, 0, 1],
                    ll,
                    all,
                    58,
                    255,
                    &icmp6(ll, all, ra),
                )
            }
            3 => {
                let mut u = vec![0x30, 0x39, 0x23, 0x28, 0, 12, 0, 0];
                u.extend_from_slice(b"abcd");
                frame4(g4, 17, 1, &u)
            }
            _ => {
                let src: Ipv6Addr = "fc00::99".parse().unwrap();
                let mut u = vec![0x30, 0x39, 0x23, 0x29, 0, 12, 0, 0];
                u.extend_from_slice(b"abcd");
                let c = csum6(src, g6, 17, &u);
                u[6..8].copy_from_slice(&c.to_be_bytes());
                frame6([0x33, 0x33, 0, 0, 0, 9], src, g6, 17, 1, &u)
            }
        };
        match (r >> 8) % 4 {
            0 => {}
            1 => {
                let n = (r >> 16) as usize % f.len();
                f.truncate(n);
            }
            2 => {
                for _ in 0..1 + (r >> 20) % 6 {
                    let k = 14 + (rng.next() as usize) % (f.len() - 14);
                    f[k] ^= 1 << (rng.next() % 8);
                }
            }
            _ => {
                let extra = (r >> 24) as usize % 64;
                for _ in 0..extra {
                    f.push(rng.next() as u8);
                }
            }
        }
        e.ether_input(i, &f);
        if round % 64 == 0 {
            e.poll();
            // The socket's queues are read now and then, as an application would.
            while sock::dgram_recv(&mut e, u4, 64, false).unwrap().is_some() {}
            while sock::dgram_recv(&mut e, u6, 64, false).unwrap().is_some() {}
        }
        assert!(e.mcast.groups.len() <= netinet::mcast::GROUPS_MAX);
    }
    e.poll();
    // The hostile prefixes gave at most the four valid ones' addresses; routes bounded.
    let added = e.ifp(i).unwrap().addrs.len() - addrs_before;
    assert!(added <= 4, "{added} addresses from advertisements");
    assert!(e.routes.all().len() < 64);
    while sock::dgram_recv(&mut e, u4, 64, false).unwrap().is_some() {}
    while sock::dgram_recv(&mut e, u6, 64, false).unwrap().is_some() {}

    // Still working: a valid datagram to each group arrives.
    let mut u = vec![0x30, 0x39, 0x23, 0x28, 0, 13, 0, 0];
    u.extend_from_slice(b"after");
    e.ether_input(i, &frame4(g4, 17, 1, &u));
    let got = sock::dgram_recv(&mut e, u4, 64, false)
        .unwrap()
        .expect("a datagram");
    assert_eq!(got.0, b"after");
    assert_eq!(got.2, (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 99)), 12345));

    // Random control messages: errors, never a panic.
    for _ in 0..20000 {
        let n = (rng.next() % 96) as usize;
        let mut ctl: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        if n >= 12 && rng.next().is_multiple_of(2) {
            // Often a plausible header: a length within the buffer, level IPPROTO_IPV6.
            let len = (rng.next() as usize % (n + 1)) as u32;
            ctl[..4].copy_from_slice(&len.to_le_bytes());
            ctl[4..8].copy_from_slice(&41i32.to_le_bytes());
            ctl[8..12].copy_from_slice(&[46i32, 47][(rng.next() % 2) as usize].to_le_bytes());
        }
        let _ = netinet::ip6opts::for_send(&e, u6, &ctl);
    }
    // And random multicast options.
    for _ in 0..5000 {
        let n = (rng.next() % 24) as usize;
        let v: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        let name = 9 + (rng.next() % 5) as i32;
        let v6 = rng.next().is_multiple_of(2);
        let id = if v6 { u6 } else { u4 };
        let _ = netinet::mcast::setopt(&mut e, id, v6, name, &v);
        let _ = netinet::mcast::getopt(&e, id, v6, name);
    }
    assert!(e.mcast.groups.len() <= netinet::mcast::GROUPS_MAX);
    sock::close(&mut e, u4);
    sock::close(&mut e, u6);
}

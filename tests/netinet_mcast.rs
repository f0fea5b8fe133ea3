//! IP multicast between two of our servers on one shmif bus (issue 16): UDP to an IPv4
//! and an IPv6 group reaches the sockets bound to the port on a server whose interface
//! joined it (from the sender's address, with the TTL/hop limit the sender set), not a
//! server that did not join, and no longer once the group is left; the IGMPv2 and MLDv1
//! reports and leaves as NetBSD sends them are on the bus; a server answers an MLD
//! query for a group it is in; closing a socket leaves its groups.

mod common;
#[path = "oracle/mcast.rs"]
#[allow(dead_code)]
mod mcast;
#[path = "netinet/peer.rs"]
mod peer;
#[path = "oracle/transcript.rs"]
mod transcript;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use client::{Client, Error};
use common::{InDir, TempDir};
use peer::*;

const LIBS: &[&str] = common::NETINET6;
const AF_INET6: i32 = 24;
const IPPROTO_IP: i32 = 0;
const IPPROTO_IPV6: i32 = 41;
const IP_MULTICAST_IF: i32 = 9;
const IP_MULTICAST_TTL: i32 = 10;
const IP_ADD_MEMBERSHIP: i32 = 12;
const IP_DROP_MEMBERSHIP: i32 = 13;
/// `_IOW('i', 107, struct in6_aliasreq)`.
const SIOCAIFADDR_IN6: u32 = 0x8080_696b;
const BUS: &str = "mcast-bus";

fn mreq(g: Ipv4Addr, ifa: Ipv4Addr) -> Vec<u8> {
    let mut m = g.octets().to_vec();
    m.extend_from_slice(&ifa.octets());
    m
}

fn mreq6(g: Ipv6Addr, index: u32) -> Vec<u8> {
    let mut m = g.octets().to_vec();
    m.extend_from_slice(&index.to_le_bytes());
    m
}

/// shmif0 on the bus with `v4`/24 and `v6`/64, its addresses past DAD.
fn setup(c: &mut Client, v4: Ipv4Addr, v6: Ipv6Addr) {
    ifconfig_shmif(c, "shmif0", BUS, v4).unwrap();
    let s = c.socket(AF_INET6, SOCK_DGRAM, 0).unwrap();
    let mut r = vec![0u8; 128];
    r[..6].copy_from_slice(b"shmif0");
    r[16..44].copy_from_slice(&sin6(v6, 0));
    r[72..100].copy_from_slice(&sin6(Ipv6Addr::from(!0u128 << 64), 0));
    r[120..128].copy_from_slice(&[0xff; 8]);
    ioctl(c, s, SIOCAIFADDR_IN6, &mut r, &[]).unwrap();
    c.close(s).unwrap();
}

/// A datagram on `s` within `ms`: payload and sender address.
fn recv_within(c: &mut Client, s: i32, ms: u64) -> Option<(Vec<u8>, IpAddr)> {
    let end = Instant::now() + Duration::from_millis(ms);
    let mut buf = [0u8; 512];
    loop {
        match c.recvfrom(s, &mut buf, 0x80) {
            Ok((n, from)) => {
                let a = if from[1] == 2 {
                    IpAddr::V4(Ipv4Addr::new(from[4], from[5], from[6], from[7]))
                } else {
                    IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&from[8..24]).unwrap()))
                };
                return Some((buf[..n].to_vec(), a));
            }
            Err(Error::Errno(35)) if Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(Error::Errno(35)) => return None,
            Err(e) => panic!("recvfrom: {e}"),
        }
    }
}

/// The IPv4 TTL or IPv6 hop limit of the UDP frames on the bus to `group`.
fn udp_hops_on_bus(dir: &TempDir, group: IpAddr) -> Vec<u8> {
    let (bus, _) = shmif::Bus::open(&dir.path().join(BUS)).unwrap();
    let mut out = Vec::new();
    for p in bus.packets().unwrap() {
        let f = &p.frame;
        if f.len() < 14 + 40 {
            continue;
        }
        let ip = &f[14..];
        match (u16::from_be_bytes([f[12], f[13]]), group) {
            (0x0800, IpAddr::V4(g)) if ip[9] == 17 && ip[16..20] == g.octets() => out.push(ip[8]),
            (0x86dd, IpAddr::V6(g)) if ip[6] == 17 && ip[24..40] == g.octets() => out.push(ip[7]),
            _ => {}
        }
    }
    out
}

#[test]
fn udp_to_groups_between_two_servers() {
    let dir = TempDir::new("netinet-mcast");
    let a = InDir::start(&dir, "a.sock", LIBS);
    let b = InDir::start(&dir, "b.sock", LIBS);
    let (mut ca, mut cb) = (a.client(), b.client());
    let (a4, b4) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    let (a6, b6): (Ipv6Addr, Ipv6Addr) = ("fc00::1".parse().unwrap(), "fc00::2".parse().unwrap());
    setup(&mut ca, a4, a6);
    setup(&mut cb, b4, b6);
    std::thread::sleep(Duration::from_millis(1500));
    let g4 = Ipv4Addr::new(239, 1, 2, 3);
    let g6: Ipv6Addr = "ff0e::1234".parse().unwrap();

    // A joins both groups on one socket and receives on others bound to the ports (as
    // NetBSD delivers to every socket bound to the port once the interface is a member).
    let j4 = ca.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    ca.setsockopt(j4, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq(g4, a4))
        .unwrap();
    let j6 = ca.socket(AF_INET6, SOCK_DGRAM, 0).unwrap();
    ca.setsockopt(j6, IPPROTO_IPV6, IP_ADD_MEMBERSHIP, &mreq6(g6, 2))
        .unwrap();
    let ra4 = ca.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    ca.bind(ra4, &sin(Ipv4Addr::UNSPECIFIED, 5000)).unwrap();
    let ra6 = ca.socket(AF_INET6, SOCK_DGRAM, 0).unwrap();
    ca.bind(ra6, &sin6(Ipv6Addr::UNSPECIFIED, 5001)).unwrap();
    // B, not a member, has sockets on the same ports: they get nothing.
    let rb4 = cb.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    cb.bind(rb4, &sin(Ipv4Addr::UNSPECIFIED, 5000)).unwrap();
    let rb6 = cb.socket(AF_INET6, SOCK_DGRAM, 0).unwrap();
    cb.bind(rb6, &sin6(Ipv6Addr::UNSPECIFIED, 5001)).unwrap();

    let sb4 = cb.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    cb.setsockopt(sb4, IPPROTO_IP, IP_MULTICAST_IF, &b4.octets())
        .unwrap();
    cb.setsockopt(sb4, IPPROTO_IP, IP_MULTICAST_TTL, &[2])
        .unwrap();
    let sb6 = cb.socket(AF_INET6, SOCK_DGRAM, 0).unwrap();
    cb.setsockopt(sb6, IPPROTO_IPV6, IP_MULTICAST_IF, &2u32.to_le_bytes())
        .unwrap();
    cb.setsockopt(sb6, IPPROTO_IPV6, IP_MULTICAST_TTL, &3i32.to_le_bytes())
        .unwrap();
    assert_eq!(
        cb.sendto(sb4, b"to the v4 group", 0, Some(&sin(g4, 5000)))
            .unwrap(),
        15
    );
    assert_eq!(
        cb.sendto(sb6, b"to the v6 group", 0, Some(&sin6(g6, 5001)))
            .unwrap(),
        15
    );
    assert_eq!(
        recv_within(&mut ca, ra4, 2000),
        Some((b"to the v4 group".to_vec(), IpAddr::V4(b4)))
    );
    assert_eq!(
        recv_within(&mut ca, ra6, 2000),
        Some((b"to the v6 group".to_vec(), IpAddr::V6(b6)))
    );
    // The joining socket is not bound: it gets nothing; B's own sockets neither (B is
    // no member, and its copy is not looped back).
    assert_eq!(recv_within(&mut ca, j4, 100), None);
    assert_eq!(recv_within(&mut cb, rb4, 100), None);
    assert_eq!(recv_within(&mut cb, rb6, 100), None);
    assert_eq!(udp_hops_on_bus(&dir, IpAddr::V4(g4)), vec![2]);
    assert_eq!(udp_hops_on_bus(&dir, IpAddr::V6(g6)), vec![3]);

    // A's reports are on the bus: IGMPv2 for the group from its address, MLDv1 with the
    // router alert from its link-local address.
    let seen = mcast::bus_summary(&dir.path().join(BUS));
    let want4 = "IGMP type 0x16 code 0 group 239.1.2.3 to 239.1.2.3 (01:00:5e:01:02:03) ttl 1 \
                 from 10.0.0.1 hlen 20 tos 0 off 0x0";
    assert!(seen.contains(want4), "{seen:#?}");
    let want6 = "MLD type 131 code 0 delay 0 group ff0e::1234 to ff0e::1234 (33:33:00:00:12:34) \
                 hlim 1 from fe80::(link-local) hbh 3a00010005020000";
    assert!(seen.contains(want6), "{seen:#?}");

    // Left (IPv4 by dropping, IPv6 by closing the socket): nothing more arrives, and the
    // leave and the done are on the bus.
    ca.setsockopt(j4, IPPROTO_IP, IP_DROP_MEMBERSHIP, &mreq(g4, a4))
        .unwrap();
    ca.close(j6).unwrap();
    cb.sendto(sb4, b"late", 0, Some(&sin(g4, 5000))).unwrap();
    cb.sendto(sb6, b"late", 0, Some(&sin6(g6, 5001))).unwrap();
    assert_eq!(recv_within(&mut ca, ra4, 500), None);
    assert_eq!(recv_within(&mut ca, ra6, 200), None);
    let seen = mcast::bus_summary(&dir.path().join(BUS));
    assert!(
        seen.iter()
            .any(|l| l.starts_with("IGMP type 0x17 code 0 group 239.1.2.3")),
        "{seen:#?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.starts_with("MLD type 132 code 0 delay 0 group ff0e::1234 to ff02::2")),
        "{seen:#?}"
    );
}

/// An MLD general query (from a link-local source, hop limit 1, router alert) written
/// onto the bus: a member answers with a report of its group within the query's maximum
/// delay.
#[test]
fn mld_query_is_answered() {
    let dir = TempDir::new("netinet-mcast-q");
    let a = InDir::start(&dir, "a.sock", LIBS);
    let mut ca = a.client();
    setup(
        &mut ca,
        Ipv4Addr::new(10, 0, 0, 1),
        "fc00::1".parse().unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let g6: Ipv6Addr = "ff05::77".parse().unwrap();
    let j6 = ca.socket(AF_INET6, SOCK_DGRAM, 0).unwrap();
    ca.setsockopt(j6, IPPROTO_IPV6, IP_ADD_MEMBERSHIP, &mreq6(g6, 2))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let count = |dir: &TempDir| {
        let (bus, _) = shmif::Bus::open(&dir.path().join(BUS)).unwrap();
        bus.packets()
            .unwrap()
            .iter()
            .filter(|p| {
                let f = &p.frame;
                f.len() >= 14 + 48 + 24
                    && f[12..14] == [0x86, 0xdd]
                    && f[14 + 48] == 131
                    && f[14 + 48 + 8..14 + 48 + 24] == g6.octets()
            })
            .count()
    };
    let before = count(&dir);
    assert!(before >= 1, "the join's report");
    // The query: from fe80::99 to ff02::1, maximum delay 100 ms.
    let src: Ipv6Addr = "fe80::99".parse().unwrap();
    let dst: Ipv6Addr = "ff02::1".parse().unwrap();
    let mut m = vec![130, 0, 0, 0, 0, 100, 0, 0];
    m.extend_from_slice(&[0; 16]);
    let mut ph = src.octets().to_vec();
    ph.extend_from_slice(&dst.octets());
    ph.extend_from_slice(&(m.len() as u32).to_be_bytes());
    ph.extend_from_slice(&[0, 0, 0, 58]);
    ph.extend_from_slice(&m);
    let mut s: u32 = 0;
    for c in ph.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    m[2..4].copy_from_slice(&(!(s as u16)).to_be_bytes());
    let mut f = vec![
        0x33, 0x33, 0, 0, 0, 1, 0xb2, 0xa0, 0, 0, 0, 0x99, 0x86, 0xdd,
    ];
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&((8 + m.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 1]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&[58, 0, 1, 0, 5, 2, 0, 0]);
    f.extend_from_slice(&m);
    let (bus, _) = shmif::Bus::open(&dir.path().join(BUS)).unwrap();
    bus.send(&f, 0x5eed, 0, 0).unwrap();
    bus.wakeup().unwrap();
    let t = Instant::now();
    while count(&dir) == before {
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "no report after the query"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A raw IPv4 socket's send to a group (`ping -I ADDR 224.0.0.1`): without
/// `IP_MULTICAST_IF` and a route `EHOSTUNREACH`; with it out of that interface with
/// `IP_MULTICAST_TTL` as the TTL (`ip_output` sets it for a group), to the group's MAC.
/// An IGMP general query on the bus is answered with a report of the group joined.
#[test]
fn raw_send_to_a_group_and_igmp_query() {
    let dir = TempDir::new("netinet-mcast-raw");
    let a = InDir::start(&dir, "a.sock", LIBS);
    let mut ca = a.client();
    let a4 = Ipv4Addr::new(10, 0, 0, 1);
    setup(&mut ca, a4, "fc00::1".parse().unwrap());
    let g = Ipv4Addr::new(239, 1, 2, 9);
    let r = ca.socket(AF_INET, SOCK_RAW, 1).unwrap();
    let echo = [8u8, 0, 0xf7, 0xfe, 0, 1, 0, 0];
    assert!(matches!(
        ca.sendto(r, &echo, 0, Some(&sin(g, 0))),
        Err(Error::Errno(65))
    ));
    ca.setsockopt(r, IPPROTO_IP, IP_MULTICAST_IF, &a4.octets())
        .unwrap();
    ca.setsockopt(r, IPPROTO_IP, IP_MULTICAST_TTL, &[3])
        .unwrap();
    assert_eq!(ca.sendto(r, &echo, 0, Some(&sin(g, 0))).unwrap(), 8);
    let frames = |dir: &TempDir| {
        let (bus, _) = shmif::Bus::open(&dir.path().join(BUS)).unwrap();
        bus.packets().unwrap()
    };
    let t = Instant::now();
    loop {
        let seen = frames(&dir).iter().any(|p| {
            let f = &p.frame;
            f.len() >= 34
                && f[..6] == [0x01, 0, 0x5e, 1, 2, 9]
                && f[14 + 9] == 1
                && f[14 + 8] == 3
                && f[14 + 12..14 + 16] == a4.octets()
        });
        if seen {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(3), "no echo to the group");
        std::thread::sleep(Duration::from_millis(20));
    }

    // IGMP: joined 239.1.2.10, then a general query (maximum 0.2 s) from 10.0.0.99.
    let j = ca.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    let g2 = Ipv4Addr::new(239, 1, 2, 10);
    ca.setsockopt(j, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq(g2, a4))
        .unwrap();
    let reports = |dir: &TempDir| {
        frames(dir)
            .iter()
            .filter(|p| {
                let f = &p.frame;
                f.len() >= 42
                    && f[14 + 9] == 2
                    && f[14 + 20] == 0x16
                    && f[14 + 24..14 + 28] == g2.octets()
            })
            .count()
    };
    std::thread::sleep(Duration::from_millis(200));
    let before = reports(&dir);
    assert!(before >= 1, "the join's report");
    let mut q = vec![0x11u8, 2, 0, 0, 0, 0, 0, 0];
    let c = {
        let mut s: u32 = q
            .chunks(2)
            .map(|x| u32::from(u16::from_be_bytes([x[0], x[1]])))
            .sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    };
    q[2..4].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![
        0x45u8, 0, 0, 28, 0, 1, 0, 0, 1, 2, 0, 0, 10, 0, 0, 99, 224, 0, 0, 1,
    ];
    let mut s: u32 = ip
        .chunks(2)
        .map(|x| u32::from(u16::from_be_bytes([x[0], x[1]])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    ip[10..12].copy_from_slice(&(!(s as u16)).to_be_bytes());
    let mut f = vec![
        0x01, 0, 0x5e, 0, 0, 1, 0xb2, 0xa0, 0, 0, 0, 0x99, 0x08, 0x00,
    ];
    f.extend_from_slice(&ip);
    f.extend_from_slice(&q);
    let (bus, _) = shmif::Bus::open(&dir.path().join(BUS)).unwrap();
    bus.send(&f, 0x5eed, 0, 0).unwrap();
    bus.wakeup().unwrap();
    let t = Instant::now();
    while reports(&dir) == before {
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "no report after the query"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A forwarding server with a default route does not forward a datagram to a group its
/// interface is not in (no multicast routing, as NetBSD without MROUTING).
#[test]
fn groups_are_not_forwarded() {
    let dir = TempDir::new("netinet-mcast-fwd");
    let a = InDir::start(&dir, "a.sock", LIBS);
    let m = InDir::start(&dir, "m.sock", LIBS);
    let (mut ca, mut cm) = (a.client(), m.client());
    let a4 = Ipv4Addr::new(10, 0, 1, 1);
    ifconfig_shmif(&mut ca, "shmif0", "bus1", a4).unwrap();
    ifconfig_shmif(&mut cm, "shmif0", "bus1", Ipv4Addr::new(10, 0, 1, 254)).unwrap();
    ifconfig_shmif(&mut cm, "shmif1", "bus2", Ipv4Addr::new(10, 0, 2, 254)).unwrap();
    route_add(
        &mut cm,
        Ipv4Addr::UNSPECIFIED,
        0,
        Ipv4Addr::new(10, 0, 2, 2),
    )
    .unwrap();
    let g = Ipv4Addr::new(239, 1, 2, 3);
    let s = ca.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    ca.setsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, &a4.octets())
        .unwrap();
    ca.setsockopt(s, IPPROTO_IP, IP_MULTICAST_TTL, &[5])
        .unwrap();
    for _ in 0..3 {
        ca.sendto(s, b"stay here", 0, Some(&sin(g, 7000))).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let to_group = |bus: &str| {
        let (b, _) = shmif::Bus::open(&dir.path().join(bus)).unwrap();
        b.packets()
            .unwrap()
            .iter()
            .filter(|p| p.frame.len() >= 34 && p.frame[14 + 16..14 + 20] == g.octets())
            .count()
    };
    assert_eq!(to_group("bus1"), 3);
    assert_eq!(to_group("bus2"), 0, "forwarded to another link");
}

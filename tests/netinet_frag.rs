//! Fragmentation, reassembly, MTU and MSS between real servers on shmif buses (issue 16,
//! docs/netinet.md "Fragments, MTU and MSS"): big pings and UDP datagrams both ways over
//! IPv4 and IPv6, DF and EMSGSIZE, SIOCSIFMTU followed by the output path, TCP's MSS on the
//! bus and on lo0, need-frag / packet too big from a router with a smaller MTU and the
//! path MTU learnt from them, and hostile fragment floods with a memory bound.

mod common;
#[path = "netinet/peer.rs"]
mod peer;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use client::{Client, Error};
use common::{InDir, TempDir};
use peer::*;

const LIBS: &[&str] = common::NETINET6;
const AF_INET6: i32 = 24;
const IPPROTO_IP: i32 = 0;
const IP_HDRINCL: i32 = 2;
const SOL_SOCKET: i32 = 0xffff;
const SO_RCVBUF: i32 = 0x1002;
const SO_SNDBUF: i32 = 0x1001;
/// `_IOW('i', 127, struct ifreq)`.
const SIOCSIFMTU: u32 = 0x8090_697f;
/// `_IOW('i', 107, struct in6_aliasreq)`.
const SIOCAIFADDR_IN6: u32 = 0x8080_696b;
/// `_IOWR('i', 73, struct in6_ifreq)`.
const SIOCGIFAFLAG_IN6: u32 = 0xc120_6949;
const EMSGSIZE: i32 = 40;
const IPPROTO_IPV6: i32 = 41;
const IPV6_USE_MIN_MTU: i32 = 42;
const IPV6_RECVPATHMTU: i32 = 43;
const IPV6_PATHMTU: i32 = 44;

fn start(dir: &TempDir, name: &str) -> InDir {
    InDir::start(dir, name, LIBS)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn named(name: &str, len: usize) -> Vec<u8> {
    let mut r = vec![0u8; len];
    r[..name.len()].copy_from_slice(name.as_bytes());
    r
}

fn int_opt(c: &mut Client, s: i32, level: i32, name: i32, v: i32) {
    c.setsockopt(s, level, name, &v.to_le_bytes()).unwrap();
}

/// `ifconfig NAME mtu MTU`.
fn set_mtu(c: &mut Client, name: &str, mtu: i32) -> Result<(), Error> {
    let s = c.socket(AF_INET, SOCK_DGRAM, 0)?;
    let mut r = named(name, 144);
    r[16..20].copy_from_slice(&mtu.to_le_bytes());
    let res = ioctl(c, s, SIOCSIFMTU, &mut r, &[]);
    c.close(s)?;
    res
}

/// `ifconfig NAME inet6 ADDR/64`, then `ifconfig -w` (until it is no longer tentative).
fn add6(c: &mut Client, name: &str, a: Ipv6Addr) {
    let s = c.socket(AF_INET6, SOCK_DGRAM, 0).unwrap();
    let mut r = named(name, 128);
    r[16..44].copy_from_slice(&sin6(a, 0));
    r[72..100].copy_from_slice(&sin6(Ipv6Addr::from(u128::MAX << 64), 0));
    r[120..128].copy_from_slice(&[0xff; 8]);
    ioctl(c, s, SIOCAIFADDR_IN6, &mut r, &[]).unwrap();
    let t = Instant::now();
    loop {
        let mut q = named(name, 16 + 272);
        q[16..44].copy_from_slice(&sin6(a, 0));
        ioctl(c, s, SIOCGIFAFLAG_IN6, &mut q, &[]).unwrap();
        if i32::from_le_bytes(q[16..20].try_into().unwrap()) & 0x02 == 0 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "{a} still tentative");
        std::thread::sleep(Duration::from_millis(50));
    }
    c.close(s).unwrap();
}

/// `sysctl NAME[=NEW]` of an int: the old value.
fn sysctl_int(c: &mut Client, name: &[i32], new: Option<i32>) -> Result<i32, Error> {
    c.sysctl_int(name, new)
}

fn csum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for ch in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([ch[0], *ch.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn echo_request(id: u16, seq: u16, n: usize) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend((0..n).map(|i| (i * 7) as u8));
    let k = csum(&m);
    m[2..4].copy_from_slice(&k.to_be_bytes());
    m
}

/// What came back on a raw ICMP socket within `wait`: every ICMP message (header
/// stripped) with its sender.
fn icmp_recv(c: &mut Client, s: i32, wait: Duration) -> Vec<(Vec<u8>, Ipv4Addr)> {
    let mut out = Vec::new();
    let until = Instant::now() + wait;
    while Instant::now() < until {
        let mut buf = vec![0u8; 70000];
        match c.recvfrom(s, &mut buf, 0x80) {
            Ok((n, from)) => {
                let hl = usize::from(buf[0] & 0xf) * 4;
                if n > hl {
                    out.push((
                        buf[hl..n].to_vec(),
                        Ipv4Addr::new(from[4], from[5], from[6], from[7]),
                    ));
                }
            }
            Err(Error::Errno(35)) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("recvfrom: {e}"),
        }
    }
    out
}

/// `ping -s N -c COUNT`: how many echo replies of the full size came back (NetBSD's
/// ping widens its socket buffers the same way).
fn ping_big(c: &mut Client, to: Ipv4Addr, n: usize, count: u16) -> u16 {
    let s = c.socket(AF_INET, SOCK_RAW, 1).unwrap();
    int_opt(c, s, SOL_SOCKET, SO_RCVBUF, 65535);
    int_opt(c, s, SOL_SOCKET, SO_SNDBUF, 65535);
    let id = 0x4646;
    let mut got = 0;
    for seq in 0..count {
        let m = echo_request(id, seq, n);
        c.sendto(s, &m, 0, Some(&sin(to, 0))).unwrap();
        let until = Instant::now() + Duration::from_secs(2);
        'wait: while Instant::now() < until {
            for (r, from) in icmp_recv(c, s, Duration::from_millis(50)) {
                if from == to && r[0] == 0 && r[4..8] == m[4..8] && r[8..] == m[8..] {
                    got += 1;
                    break 'wait;
                }
            }
        }
    }
    c.close(s).unwrap();
    got
}

/// ICMPv6 echo of `n` bytes: how many replies of the full size came back, and the
/// packet-too-big MTUs heard meanwhile.
fn ping6_big(c: &mut Client, to: Ipv6Addr, n: usize, count: u16) -> (u16, Vec<u32>) {
    ping6_opt(c, to, n, count, None)
}

/// [`ping6_big`] with `IPV6_USE_MIN_MTU` set to `min_mtu` when given.
fn ping6_opt(
    c: &mut Client,
    to: Ipv6Addr,
    n: usize,
    count: u16,
    min_mtu: Option<i32>,
) -> (u16, Vec<u32>) {
    let s = c.socket(AF_INET6, SOCK_RAW, 58).unwrap();
    if let Some(v) = min_mtu {
        int_opt(c, s, IPPROTO_IPV6, IPV6_USE_MIN_MTU, v);
    }
    int_opt(c, s, SOL_SOCKET, SO_RCVBUF, 65535);
    int_opt(c, s, SOL_SOCKET, SO_SNDBUF, 65535);
    let mut got = 0;
    let mut ptb = Vec::new();
    for seq in 0..count {
        let mut m = vec![128, 0, 0, 0, 0x46, 0x46];
        m.extend_from_slice(&seq.to_be_bytes());
        m.extend((0..n).map(|i| (i * 3) as u8));
        c.sendto(s, &m, 0, Some(&sin6(to, 0))).unwrap();
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            let mut buf = vec![0u8; 70000];
            match c.recvfrom(s, &mut buf, 0x80) {
                Ok((k, _)) if k >= 8 && buf[0] == 129 && buf[4..k] == m[4..] => {
                    got += 1;
                    break;
                }
                Ok((k, _)) if k >= 8 && buf[0] == 2 => {
                    ptb.push(u32::from_be_bytes(buf[4..8].try_into().unwrap()));
                }
                Ok(_) => {}
                Err(Error::Errno(35)) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("recvfrom: {e}"),
            }
        }
    }
    c.close(s).unwrap();
    (got, ptb)
}

/// A UDP datagram of `n` bytes from `cs` to `cr`'s port (IPv4 or IPv6 addresses as
/// sockaddrs), received whole.
fn udp_both(cs: &mut Client, cr: &mut Client, fam: i32, to: &[u8], any: &[u8], n: usize) {
    let r = cr.socket(fam, SOCK_DGRAM, 0).unwrap();
    cr.bind(r, any).unwrap();
    let s = cs.socket(fam, SOCK_DGRAM, 0).unwrap();
    let data = pattern(n);
    assert_eq!(cs.sendto(s, &data, 0, Some(to)).unwrap(), n);
    let mut buf = vec![0u8; 65536];
    let (k, _) = cr.recvfrom(r, &mut buf, 0).unwrap();
    assert_eq!(k, n, "the whole datagram");
    assert!(buf[..k] == data[..], "intact");
    // One byte more than udp_sendspace: EMSGSIZE (sosend's atomic check).
    let e = cs.sendto(s, &pattern(n + 1), 0, Some(to)).unwrap_err();
    assert!(matches!(e, Error::Errno(EMSGSIZE)), "{e}");
    cs.close(s).unwrap();
    cr.close(r).unwrap();
}

/// The frames on a bus, oldest first.
fn frames(dir: &TempDir, bus: &str) -> Vec<Vec<u8>> {
    let b = shmif::Bus::open_readonly(&dir.path().join(bus)).unwrap();
    b.packets().unwrap().into_iter().map(|p| p.frame).collect()
}

/// IPv4 TCP segments on a bus: (source MAC, IP total length, payload length, MSS option
/// of a SYN).
fn tcp_segments(fr: &[Vec<u8>]) -> Vec<([u8; 6], usize, usize, Option<u16>)> {
    let mut out = Vec::new();
    for f in fr {
        if f.len() < 14 + 40 || f[12..14] != [8, 0] || f[14 + 9] != 6 {
            continue;
        }
        let ip = &f[14..];
        let hl = usize::from(ip[0] & 0xf) * 4;
        let tot = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let t = &ip[hl..tot.min(ip.len())];
        let thl = usize::from(t[12] >> 4) * 4;
        let mut mss = None;
        if t[13] & 2 != 0 {
            let mut o = 20;
            while o + 4 <= thl {
                match t[o] {
                    0 => break,
                    1 => o += 1,
                    2 => {
                        mss = Some(u16::from_be_bytes([t[o + 2], t[o + 3]]));
                        break;
                    }
                    _ => o += usize::from(t[o + 1]).max(2),
                }
            }
        }
        out.push((f[6..12].try_into().unwrap(), tot, tot - hl - thl, mss));
    }
    out
}

/// The MAC of `name` from `NET_RT_IFLIST` (its `sockaddr_dl`).
fn mac_of(c: &mut Client, index: u16) -> [u8; 6] {
    let b = sysctl_read(c, &[4, 34, 0, 0, 5, 0]).unwrap();
    let mut o = 0;
    while o + 4 <= b.len() {
        let len = usize::from(u16::from_le_bytes([b[o], b[o + 1]]));
        let m = &b[o..o + len];
        if m[3] == 0x14 && u16::from_le_bytes([m[12], m[13]]) == index {
            // if_msghdr (152 bytes), then the sockaddr_dl.
            let sdl = &m[152..];
            let (nlen, alen) = (usize::from(sdl[5]), usize::from(sdl[6]));
            return sdl[8 + nlen..8 + nlen + alen].try_into().unwrap();
        }
        o += len.max(4);
    }
    panic!("no interface {index}");
}

/// `ifi_opackets` of interface `index` (`NET_RT_IFLIST`'s `if_data`).
fn opackets(c: &mut Client, index: u16) -> u64 {
    let b = sysctl_read(c, &[4, 34, 0, 0, 5, 0]).unwrap();
    let mut o = 0;
    while o + 4 <= b.len() {
        let len = usize::from(u16::from_le_bytes([b[o], b[o + 1]]));
        let m = &b[o..o + len];
        if m[3] == 0x14 && u16::from_le_bytes([m[12], m[13]]) == index {
            return u64::from_le_bytes(m[16 + 48..16 + 56].try_into().unwrap());
        }
        o += len.max(4);
    }
    panic!("no interface {index}");
}

/// The route `NET_RT_DUMP` lists for exactly `dst` (a host route): its flags and
/// `rmx_mtu`.
fn host_route(c: &mut Client, dst: std::net::IpAddr) -> Option<(u32, u64)> {
    let af = if dst.is_ipv4() { 2 } else { 24 };
    let b = sysctl_read(c, &[4, 34, 0, af, 1, 0]).unwrap();
    let mut o = 0;
    while o + 4 <= b.len() {
        let len = usize::from(u16::from_le_bytes([b[o], b[o + 1]]));
        if len < 120 || o + len > b.len() {
            break;
        }
        let m = &b[o..o + len];
        let d = match dst {
            std::net::IpAddr::V4(_) if m.len() >= 128 => {
                std::net::IpAddr::V4(Ipv4Addr::new(m[124], m[125], m[126], m[127]))
            }
            std::net::IpAddr::V6(_) if m.len() >= 144 => {
                let a: [u8; 16] = m[128..144].try_into().unwrap();
                std::net::IpAddr::V6(Ipv6Addr::from(a))
            }
            _ => dst,
        };
        let flags = u32::from_le_bytes(m[8..12].try_into().unwrap());
        if d == dst && flags & 0x4 != 0 {
            return Some((flags, u64::from_le_bytes(m[48..56].try_into().unwrap())));
        }
        o += len;
    }
    None
}

/// Two servers on one bus with IPv4 and IPv6 addresses.
fn pair(dir: &TempDir) -> (InDir, InDir) {
    let a = start(dir, "a.sock");
    let b = start(dir, "b.sock");
    let (mut ca, mut cb) = (a.client(), b.client());
    ifconfig_shmif(&mut ca, "shmif0", "bus1", ip("10.0.1.1")).unwrap();
    ifconfig_shmif(&mut cb, "shmif0", "bus1", ip("10.0.1.2")).unwrap();
    add6(&mut ca, "shmif0", ip6("fc00::1"));
    add6(&mut cb, "shmif0", ip6("fc00::2"));
    (a, b)
}

#[test]
fn big_pings_and_datagrams_both_ways_over_ipv4_and_ipv6() {
    let dir = TempDir::new("frag-big");
    let (a, b) = pair(&dir);
    let (mut ca, mut cb) = (a.client(), b.client());
    // The first may be lost while ARP resolves (la_hold keeps one fragment, as NetBSD's).
    assert!(ping_big(&mut ca, ip("10.0.1.2"), 4000, 3) >= 2);
    assert_eq!(ping_big(&mut cb, ip("10.0.1.1"), 4000, 2), 2);
    let (got6, _) = ping6_big(&mut ca, ip6("fc00::2"), 4000, 3);
    assert!(got6 >= 2, "{got6} of 3");
    assert_eq!(ping6_big(&mut cb, ip6("fc00::1"), 4000, 2).0, 2);
    // IPV6_USE_MIN_MTU (ping6's default): fragments of at most 1280 bytes although the
    // link takes 1500.
    let mac_a = mac_of(&mut ca, 2);
    assert_eq!(ping6_opt(&mut ca, ip6("fc00::2"), 1400, 1, Some(1)).0, 1);
    let last_a: Vec<Vec<u8>> = frames(&dir, "bus1")
        .into_iter()
        .filter(|f| f[6..12] == mac_a && f[12..14] == [0x86, 0xdd])
        .collect();
    let n = last_a.len();
    assert!(
        last_a[n - 2..]
            .iter()
            .all(|f| f[14 + 6] == 44 && f.len() <= 14 + 1280),
        "two fragments of at most 1280"
    );
    // The biggest echo there is: 65535 - 20 - 8 bytes of data.
    assert_eq!(ping_big(&mut ca, ip("10.0.1.2"), 65507, 1), 1);
    // What went over the bus: IPv4 fragments (MF, offsets in 8-byte units) and IPv6
    // fragment headers, no frame above 1500 bytes of IP.
    let fr = frames(&dir, "bus1");
    assert!(
        fr.iter().all(|f| f.len() <= 14 + 1500),
        "frames fit the MTU"
    );
    let v4frags = fr
        .iter()
        .filter(|f| {
            f[12..14] == [8, 0]
                && (f[14 + 6] & 0x20 != 0 || f[14 + 6] & 0x1f != 0 || f[14 + 7] != 0)
        })
        .count();
    let v6frags = fr
        .iter()
        .filter(|f| f[12..14] == [0x86, 0xdd] && f[14 + 6] == 44)
        .count();
    assert!(
        v4frags >= 4 * 3 + 45,
        "IPv4 fragments on the bus: {v4frags}"
    );
    assert!(v6frags >= 4 * 3, "IPv6 fragments on the bus: {v6frags}");

    // UDP: udp_sendspace (9216) is the largest datagram, both ways, both families.
    let (sa, sb) = (sin(ip("10.0.1.1"), 7001), sin(ip("10.0.1.2"), 7001));
    let any4 = sin(Ipv4Addr::UNSPECIFIED, 7001);
    udp_both(&mut ca, &mut cb, AF_INET, &sb, &any4, 9216);
    udp_both(&mut cb, &mut ca, AF_INET, &sa, &any4, 9216);
    let (sa6, sb6) = (sin6(ip6("fc00::1"), 7002), sin6(ip6("fc00::2"), 7002));
    let any6 = sin6(Ipv6Addr::UNSPECIFIED, 7002);
    udp_both(&mut ca, &mut cb, AF_INET6, &sb6, &any6, 9216);
    udp_both(&mut cb, &mut ca, AF_INET6, &sa6, &any6, 9216);
    assert_eq!(
        sysctl_int(&mut ca, &[4, 2, 17, 2], None).unwrap(),
        9216,
        "net.inet.udp.sendspace"
    );
    // SO_SNDBUF and SO_RCVBUF raised: the largest datagram IPv4 carries (65507 bytes,
    // 45 fragments on the bus), both ways; one more byte is EMSGSIZE.
    for (cs, cr, to) in [(&a, &b, &sb), (&b, &a, &sa)] {
        let (cs, cr) = (&mut cs.client(), &mut cr.client());
        let r = cr.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
        cr.bind(r, &sin(Ipv4Addr::UNSPECIFIED, 7003)).unwrap();
        int_opt(cr, r, SOL_SOCKET, SO_RCVBUF, 65535);
        let s = cs.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
        int_opt(cs, s, SOL_SOCKET, SO_SNDBUF, 65535);
        let mut to = to.clone();
        to[2..4].copy_from_slice(&7003u16.to_be_bytes());
        let data = pattern(65507);
        assert_eq!(cs.sendto(s, &data, 0, Some(&to)).unwrap(), 65507);
        let mut buf = vec![0u8; 65536];
        let (k, _) = cr.recvfrom(r, &mut buf, 0).unwrap();
        assert!(k == 65507 && buf[..k] == data[..], "{k} bytes");
        let e = cs.sendto(s, &pattern(65508), 0, Some(&to)).unwrap_err();
        assert!(matches!(e, Error::Errno(EMSGSIZE)), "{e}");
        cs.close(s).unwrap();
        cr.close(r).unwrap();
    }
}

/// An echo request of `n` bytes with our own IP header (`IP_HDRINCL`, ip_len and ip_off
/// in host order as NetBSD's raw sockets take them), DF when `df`.
fn hdrincl_echo(
    c: &mut Client,
    s: i32,
    src: Ipv4Addr,
    to: Ipv4Addr,
    n: usize,
    df: bool,
) -> Result<usize, Error> {
    let m = echo_request(0x4444, 1, n);
    hdrincl_send(c, s, src, to, 1, &m, df)
}

/// `m` behind our own IP header of protocol `proto` (DF when `df`).
fn hdrincl_send(
    c: &mut Client,
    s: i32,
    src: Ipv4Addr,
    to: Ipv4Addr,
    proto: u8,
    m: &[u8],
    df: bool,
) -> Result<usize, Error> {
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&((20 + m.len()) as u16).to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&(if df { 0x4000u16 } else { 0 }).to_le_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&to.octets());
    p.extend_from_slice(m);
    c.sendto(s, &p, 0, Some(&sin(to, 0)))
}

#[test]
fn df_is_emsgsize_and_an_mtu_change_is_followed() {
    let dir = TempDir::new("frag-df");
    let (a, b) = pair(&dir);
    let (mut ca, mut cb) = (a.client(), b.client());
    assert_eq!(ping_big(&mut ca, ip("10.0.1.2"), 100, 1), 1);
    let s = ca.socket(AF_INET, SOCK_RAW, 1).unwrap();
    int_opt(&mut ca, s, IPPROTO_IP, IP_HDRINCL, 1);
    int_opt(&mut ca, s, SOL_SOCKET, SO_SNDBUF, 65535);
    let (me, to) = (ip("10.0.1.1"), ip("10.0.1.2"));
    // ping -D -s 4000: "sendto: Message too long", as NetBSD's ip_output.
    let e = hdrincl_echo(&mut ca, s, me, to, 4000, true).unwrap_err();
    assert!(matches!(e, Error::Errno(EMSGSIZE)), "{e}");
    // Just fits: 1500 bytes of IP with DF go.
    assert_eq!(hdrincl_echo(&mut ca, s, me, to, 1472, true).unwrap(), 1500);
    let e = hdrincl_echo(&mut ca, s, me, to, 1473, true).unwrap_err();
    assert!(matches!(e, Error::Errno(EMSGSIZE)), "{e}");
    // Without DF it is fragmented and answered.
    hdrincl_echo(&mut ca, s, me, to, 4000, false).unwrap();
    let got = icmp_recv(&mut ca, s, Duration::from_millis(500));
    assert!(
        got.iter().any(|(m, _)| m[0] == 0 && m.len() == 4008),
        "the reply"
    );

    // The MTU lowered (on the whole link: NetBSD's ether_input discards frames beyond
    // the interface's MTU): DF beyond it is refused, what leaves fits it.
    set_mtu(&mut ca, "shmif0", 1280).unwrap();
    set_mtu(&mut cb, "shmif0", 1280).unwrap();
    let e = hdrincl_echo(&mut ca, s, me, to, 1300, true).unwrap_err();
    assert!(matches!(e, Error::Errno(EMSGSIZE)), "{e}");
    assert_eq!(hdrincl_echo(&mut ca, s, me, to, 1252, true).unwrap(), 1280);
    let mac_a = mac_of(&mut ca, 2);
    assert_eq!(ping_big(&mut ca, to, 4000, 2), 2);
    let from_a: Vec<usize> = frames(&dir, "bus1")
        .iter()
        .filter(|f| f[6..12] == mac_a)
        .map(|f| f.len() - 14)
        .collect();
    assert!(
        from_a.iter().rev().take(8).all(|&l| l <= 1280),
        "{from_a:?}"
    );
    assert!(
        from_a.contains(&1276),
        "full fragments of 1280: (1280-20)&~7 + 20"
    );
    // A frame beyond the receiver's MTU is discarded: b at 1500 again, a at 1280 gets
    // none of what b sends back in 1500-byte fragments.
    set_mtu(&mut cb, "shmif0", 1500).unwrap();
    assert_eq!(
        ping_big(&mut ca, to, 4000, 1),
        0,
        "oversize frames discarded"
    );
    set_mtu(&mut cb, "shmif0", 1280).unwrap();
    assert_eq!(ping_big(&mut ca, to, 4000, 1), 1);
    // ether_ioctl's range: ETHERMIN (46) to ETHERMTU; loioctl's: up to LOMTU_MAX.
    assert!(matches!(
        set_mtu(&mut ca, "shmif0", 45),
        Err(Error::Errno(22))
    ));
    assert!(matches!(
        set_mtu(&mut ca, "shmif0", 1501),
        Err(Error::Errno(22))
    ));
    assert!(matches!(
        set_mtu(&mut ca, "lo0", 66393),
        Err(Error::Errno(22))
    ));
    set_mtu(&mut ca, "lo0", 66392).unwrap();
    set_mtu(&mut ca, "lo0", 33624).unwrap();

    // Under traffic: a TCP transfer goes on across the change, its segments shrink.
    let mut cs = b.client();
    let l = tcp_listen(&mut cs, 7).unwrap();
    let t = std::thread::spawn(move || tcp_echo_once(&mut cs, l).unwrap());
    set_mtu(&mut ca, "shmif0", 1500).unwrap();
    set_mtu(&mut cb, "shmif0", 1500).unwrap();
    let so = ca.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    ca.connect_sock(so, &sin(to, 7)).unwrap();
    let data = pattern(200_000);
    let mut off = 0;
    while off < data.len() {
        if (100_000..116_384).contains(&off) {
            set_mtu(&mut cb, "shmif0", 1000).unwrap();
            set_mtu(&mut ca, "shmif0", 1000).unwrap();
        }
        off += ca
            .write(so, &data[off..(off + 16384).min(data.len())])
            .unwrap();
    }
    ca.shutdown(so, 1).unwrap();
    let mut back = Vec::new();
    let mut buf = vec![0u8; 16384];
    loop {
        let k = ca.read(so, &mut buf).unwrap();
        if k == 0 {
            break;
        }
        back.extend_from_slice(&buf[..k]);
    }
    assert!(back == data, "echoed whole across the MTU change");
    assert_eq!(t.join().unwrap(), 200_000);
    let segs = tcp_segments(&frames(&dir, "bus1"));
    let last: Vec<usize> = segs.iter().rev().take(20).map(|s| s.1).collect();
    assert!(
        last.iter().all(|&l| l <= 1000),
        "after the change: {last:?}"
    );
    assert!(
        segs.iter().any(|s| s.1 == 1500),
        "before it: full 1500-byte segments"
    );
}

#[test]
fn tcp_mss_follows_the_interface_on_the_bus_and_on_lo0() {
    let dir = TempDir::new("frag-mss");
    let (a, b) = pair(&dir);
    let mut ca = a.client();
    for (mtu, mss) in [(1500, 1460), (1280, 1240)] {
        set_mtu(&mut ca, "shmif0", mtu).unwrap();
        set_mtu(&mut b.client(), "shmif0", mtu).unwrap();
        let mut cs = b.client();
        let l = tcp_listen(&mut cs, 7).unwrap();
        let t = std::thread::spawn(move || tcp_echo_once(&mut cs, l).unwrap());
        tcp_echo_client(&mut ca, ip("10.0.1.2"), 7, 100_000).unwrap();
        assert_eq!(t.join().unwrap(), 100_000);
        let segs = tcp_segments(&frames(&dir, "bus1"));
        let syns: Vec<u16> = segs.iter().rev().filter_map(|s| s.3).take(2).collect();
        assert_eq!(syns, vec![mss as u16; 2], "SYN and SYN|ACK advertise {mss}");
        let biggest = segs.iter().rev().take(60).map(|s| s.2).max().unwrap();
        assert_eq!(biggest, mss, "full segments of the MSS");
    }
    // lo0: NetBSD's LOMTU 33624 gives an MSS of 33584; 300 KB over 127.0.0.1 take a few
    // dozen segments, not the 200 and more an Ethernet MSS would.
    let mut cs = a.client();
    let l = tcp_listen(&mut cs, 9).unwrap();
    let t = std::thread::spawn(move || tcp_sink_once(&mut cs, l).unwrap());
    let before = opackets(&mut ca, 1);
    tcp_send(&mut ca, Ipv4Addr::LOCALHOST, 9, 300_000).unwrap();
    assert_eq!(t.join().unwrap(), 300_000);
    let n = opackets(&mut ca, 1) - before;
    assert!(n < 150, "{n} packets on lo0 for 300 KB");
    assert_eq!(
        sysctl_int(&mut ca, &[4, 2, 6, 4], None).unwrap(),
        536,
        "net.inet.tcp.mssdflt"
    );
    assert!(matches!(
        sysctl_int(&mut ca, &[4, 2, 6, 4], Some(31)),
        Err(Error::Errno(22))
    ));
}

/// `route add [-inet6] DST/PREFIX GW` (`RTM_ADD`).
fn route_add6(c: &mut Client, dst: Ipv6Addr, prefix: u8, gw: Ipv6Addr) {
    let s = c.socket(34, SOCK_RAW, 0).unwrap();
    let mut m = vec![0u8; 120];
    m[2] = 4;
    m[3] = 1;
    m[8..12].copy_from_slice(&(0x1i32 | 0x2 | 0x800).to_le_bytes());
    m[12..16].copy_from_slice(&(0x1 | 0x2 | 0x4i32).to_le_bytes());
    m[20..24].copy_from_slice(&1i32.to_le_bytes());
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    for a in [dst, gw, Ipv6Addr::from(mask)] {
        m.extend_from_slice(&sin6(a, 0));
        m.extend_from_slice(&[0; 4]); // RT_ROUNDUP to 8
    }
    let len = m.len() as u16;
    m[0..2].copy_from_slice(&len.to_le_bytes());
    c.write(s, &m).unwrap();
    c.close(s).unwrap();
}

#[test]
fn a_router_with_a_smaller_mtu_fragments_or_says_too_big() {
    let dir = TempDir::new("frag-router");
    let a = start(&dir, "a.sock");
    let r = start(&dir, "r.sock");
    let b = start(&dir, "b.sock");
    let (mut ca, mut cr, mut cb) = (a.client(), r.client(), b.client());
    ifconfig_shmif(&mut ca, "shmif0", "bus1", ip("10.0.1.1")).unwrap();
    ifconfig_shmif(&mut cr, "shmif0", "bus1", ip("10.0.1.254")).unwrap();
    ifconfig_shmif(&mut cr, "shmif1", "bus2", ip("10.0.2.254")).unwrap();
    ifconfig_shmif(&mut cb, "shmif0", "bus2", ip("10.0.2.1")).unwrap();
    add6(&mut ca, "shmif0", ip6("fc00:1::1"));
    add6(&mut cr, "shmif0", ip6("fc00:1::fe"));
    add6(&mut cr, "shmif1", ip6("fc00:2::fe"));
    add6(&mut cb, "shmif0", ip6("fc00:2::1"));
    route_add(&mut ca, ip("10.0.2.0"), 24, ip("10.0.1.254")).unwrap();
    route_add(&mut cb, ip("10.0.1.0"), 24, ip("10.0.2.254")).unwrap();
    route_add6(&mut ca, ip6("fc00:2::"), 64, ip6("fc00:1::fe"));
    route_add6(&mut cb, ip6("fc00:1::"), 64, ip6("fc00:2::fe"));
    sysctl_int(&mut cr, &[4, 24, 41, 1], Some(1)).unwrap();
    // bus2's link MTU is 1280 (the router's and b's interfaces on it: NetBSD discards
    // frames beyond its interface's MTU); bus1's stays 1500.
    set_mtu(&mut cr, "shmif1", 1280).unwrap();
    set_mtu(&mut cb, "shmif0", 1280).unwrap();
    // b's other interface (1500) makes it advertise an MSS of 1460 all the same
    // (tcp_mss_to_advertise's in_maxmtu, RFC 1191 3.1): a's segments need path MTU
    // discovery.
    ifconfig_shmif(&mut cb, "shmif1", "bus3", ip("10.0.3.1")).unwrap();
    let to = ip("10.0.2.1");
    assert_eq!(ping_big(&mut ca, to, 100, 2), 2, "routed");

    // DF through the narrow hop: the router's need-frag carries its next hop's MTU.
    let s = ca.socket(AF_INET, SOCK_RAW, 1).unwrap();
    int_opt(&mut ca, s, IPPROTO_IP, IP_HDRINCL, 1);
    hdrincl_echo(&mut ca, s, ip("10.0.1.1"), to, 1400, true).unwrap();
    let got = icmp_recv(&mut ca, s, Duration::from_millis(800));
    let nf = got
        .iter()
        .find(|(m, _)| m[0] == 3 && m[1] == 4)
        .expect("ICMP need-frag");
    assert_eq!(nf.1, ip("10.0.1.254"));
    assert_eq!(u16::from_be_bytes([nf.0[6], nf.0[7]]), 1280, "next-hop MTU");
    assert!(
        host_route(&mut ca, to.into()).is_none(),
        "no route for an ICMP's"
    );
    // Without DF the router fragments it: the reply comes.
    hdrincl_echo(&mut ca, s, ip("10.0.1.1"), to, 1400, false).unwrap();
    let got = icmp_recv(&mut ca, s, Duration::from_millis(800));
    assert!(got.iter().any(|(m, f)| m[0] == 0 && *f == to), "{got:?}");
    // need-frags at most icmperrppslim (100) a second: 300 DF packets in a burst get
    // 100 per second they span (the burst's seconds, and one more for where it starts).
    let t = Instant::now();
    for _ in 0..300 {
        hdrincl_echo(&mut ca, s, ip("10.0.1.1"), to, 1400, true).unwrap();
    }
    let seconds = t.elapsed().as_secs() as usize + 2;
    let nf = icmp_recv(&mut ca, s, Duration::from_millis(1500))
        .iter()
        .filter(|(m, _)| m[0] == 3 && m[1] == 4)
        .count();
    assert!(
        nf >= 100 && nf <= 100 * seconds,
        "{nf} need-frags for 300 in {seconds} s"
    );
    // A forwarded TCP packet without DF is fragmented like any other (not re-cut into
    // segments: that is only for our own connections).
    let mut seg = vec![0u8; 1400];
    seg[..4].copy_from_slice(&[0x30, 0x39, 0x30, 0x39]);
    seg[12] = 0x50;
    seg[13] = 0x18;
    hdrincl_send(&mut ca, s, ip("10.0.1.1"), to, 6, &seg, false).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mac_r3 = mac_of(&mut cr, 3);
    let tcp_frags: Vec<(u16, usize)> = frames(&dir, "bus2")
        .iter()
        .filter(|f| f[6..12] == mac_r3 && f[12..14] == [8, 0] && f[14 + 9] == 6)
        .map(|f| (u16::from_be_bytes([f[14 + 6], f[14 + 7]]), f.len() - 14))
        .collect();
    let n = tcp_frags.len();
    assert!(n >= 2, "{tcp_frags:?}");
    assert_eq!(tcp_frags[n - 2..], [(0x2000, 1276), (157, 1420 - 1256)]);
    ca.close(s).unwrap();
    // What the router sends on bus2 fits its MTU there.
    let mac_r = mac_of(&mut cr, 3);
    let from_r = |dir: &TempDir| -> Vec<Vec<u8>> {
        frames(dir, "bus2")
            .into_iter()
            .filter(|f| f[6..12] == mac_r)
            .collect()
    };
    assert!(
        from_r(&dir).iter().all(|f| f.len() <= 14 + 1280),
        "nothing above the narrow MTU from the router"
    );

    // TCP: its segments carry DF; the need-frag lowers the path MTU and the transfer
    // goes on in segments that fit.
    let mut cs = b.client();
    let l = tcp_listen(&mut cs, 7).unwrap();
    let t = std::thread::spawn(move || tcp_echo_once(&mut cs, l).unwrap());
    tcp_echo_client(&mut ca, to, 7, 200_000).unwrap();
    assert_eq!(t.join().unwrap(), 200_000);
    let segs = tcp_segments(&from_r(&dir));
    assert!(segs.iter().all(|s| s.1 <= 1280));
    assert!(
        segs.iter().any(|s| s.1 == 1280),
        "full segments of the path MTU"
    );
    // As icmp_mtudisc: a dynamic host route cloned from the network route, rmx_mtu 1280
    // (UP, GATEWAY, HOST, DYNAMIC). The ICMP need-frag before it made none (NetBSD's
    // comes from tcp_ctlinput only).
    let (flags, mtu) = host_route(&mut ca, to.into()).expect("the cloned host route");
    assert_eq!((flags & 0x17, mtu), (0x17, 1280));

    // IPv6: the router says packet too big (1280); the sender fragments from then on
    // (a small one first, so that neighbour discovery holds no fragment on the way).
    assert_eq!(ping6_big(&mut ca, ip6("fc00:2::1"), 100, 2).0, 2, "routed");
    let note = ca.socket(AF_INET6, SOCK_RAW, 58).unwrap();
    int_opt(&mut ca, note, IPPROTO_IPV6, IPV6_RECVPATHMTU, 1);
    let (got, ptb) = ping6_big(&mut ca, ip6("fc00:2::1"), 1400, 3);
    assert_eq!(ptb.first(), Some(&1280), "packet too big with the MTU");
    assert!(got >= 2, "later ones fragmented at the source: {got}");
    let (flags, mtu) = host_route(&mut ca, ip6("fc00:2::1").into()).expect("IPv6 host route");
    assert_eq!((flags & 0x17, mtu), (0x17, 1280));
    // IPV6_RECVPATHMTU: an empty datagram from the destination with IPV6_PATHMTU (struct
    // ip6_mtuinfo: its sockaddr_in6, then the MTU), as ip6_notify_pmtu.
    let mut buf = [0u8; 64];
    let mut heard = None;
    for _ in 0..50 {
        match ca.recvmsg(note, &mut buf, 128, 0x80) {
            Ok(m) if m.n == 0 => {
                heard = Some(m);
                break;
            }
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    let m = heard.expect("a path MTU notification");
    let c = &m.control;
    let clen = u32::from_le_bytes(c[0..4].try_into().unwrap()) as usize;
    assert_eq!(
        (
            i32::from_le_bytes(c[4..8].try_into().unwrap()),
            i32::from_le_bytes(c[8..12].try_into().unwrap())
        ),
        (IPPROTO_IPV6, IPV6_PATHMTU)
    );
    assert_eq!(&c[16 + 8..16 + 24], &ip6("fc00:2::1").octets());
    assert_eq!(
        u32::from_le_bytes(c[clen - 4..clen].try_into().unwrap()),
        1280
    );
    let v6frags = from_r(&dir)
        .iter()
        .filter(|f| f[12..14] == [0x86, 0xdd] && f[14 + 6] == 44)
        .count();
    assert!(v6frags >= 4, "fragment headers on bus2: {v6frags}");
}

#[test]
fn hostile_fragment_floods_stay_within_bounds() {
    let dir = TempDir::new("frag-flood");
    let (a, b) = pair(&dir);
    let (mut ca, mut cb) = (a.client(), b.client());
    assert_eq!(ping_big(&mut ca, ip("10.0.1.2"), 100, 1), 1);
    assert_eq!(sysctl_int(&mut cb, &[4, 2, 0, 18], None).unwrap(), 200);
    assert_eq!(sysctl_int(&mut cb, &[4, 24, 41, 9], None).unwrap(), 200);
    assert_eq!(sysctl_int(&mut cb, &[4, 24, 41, 41], None).unwrap(), 200);
    let mac_b = mac_of(&mut cb, 2);
    let rss0 = common::rss_kib(b.pid());
    let (bus, _) = shmif::Bus::open(&dir.path().join("bus1")).unwrap();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // 24,000 fragments (about 34 MB): never completed, duplicated, overlapping, tiny,
    // misaligned, past IP_MAXPACKET, IPv4 and IPv6.
    for batch in 0..60 {
        for k in 0..400u32 {
            let r = rnd();
            let n = [1440usize, 8, 13, 1232, 600][(r % 5) as usize];
            let off = ((r >> 8) as usize % 8200) * 8;
            let mf = r & (1 << 40) != 0 || k % 3 == 0;
            let mut f = mac_b.to_vec();
            f.extend_from_slice(&[2, 0, 0, 0, 0, 0x99]);
            if batch % 2 == 0 {
                let id = if k % 10 == 0 { 7 } else { (r >> 24) as u16 };
                let mut p = vec![
                    0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 1, 99, 10, 0, 1, 2,
                ];
                p[2..4].copy_from_slice(&((20 + n) as u16).to_be_bytes());
                p[4..6].copy_from_slice(&id.to_be_bytes());
                let fo = ((off >> 3) as u16 & 0x1fff) | if mf { 0x2000 } else { 0 };
                p[6..8].copy_from_slice(&fo.to_be_bytes());
                let c = csum(&p);
                p[10..12].copy_from_slice(&c.to_be_bytes());
                p.resize(20 + n, 0x41);
                f.extend_from_slice(&[8, 0]);
                f.extend_from_slice(&p);
            } else {
                let mut p = vec![0x60, 0, 0, 0, 0, 0, 44, 64];
                p[4..6].copy_from_slice(&((8 + n) as u16).to_be_bytes());
                p.extend_from_slice(&ip6("fc00::99").octets());
                p.extend_from_slice(&ip6("fc00::2").octets());
                p.extend_from_slice(&[17, 0]);
                p.extend_from_slice(&(((off as u16) & 0xfff8) | u16::from(mf)).to_be_bytes());
                p.extend_from_slice(&((r >> 16) as u32 % 100_000).to_be_bytes());
                p.resize(48 + n, 0x42);
                f.extend_from_slice(&[0x86, 0xdd]);
                f.extend_from_slice(&p);
            }
            bus.send(&f, 0xbad, 0, 0).unwrap();
        }
        bus.wakeup().unwrap();
        std::thread::sleep(Duration::from_millis(15));
    }
    // Then the costliest kind: 300 datagrams each filled to 64 KB but for its last
    // fragment (about 20 MB of fragments), which only the byte bound (4 MiB per family)
    // keeps from being held. (The queues the first flood left are drained first:
    // maxfragpackets 0, then 200 again; else new datagrams find no room, as on NetBSD.)
    sysctl_int(&mut cb, &[4, 2, 0, 18], Some(0)).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    sysctl_int(&mut cb, &[4, 2, 0, 18], Some(200)).unwrap();
    for id in 0..300u32 {
        for k in 0..45usize {
            let off = k * 1440;
            let mut f = mac_b.to_vec();
            f.extend_from_slice(&[2, 0, 0, 0, 0, 0x99, 8, 0]);
            let mut p = vec![
                0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 1, 98, 10, 0, 1, 2,
            ];
            p[2..4].copy_from_slice(&(1460u16).to_be_bytes());
            p[4..6].copy_from_slice(&(40000 + id as u16).to_be_bytes());
            p[6..8].copy_from_slice(&(0x2000 | (off / 8) as u16).to_be_bytes());
            let c = csum(&p);
            p[10..12].copy_from_slice(&c.to_be_bytes());
            p.resize(1460, 0x43);
            f.extend_from_slice(&p);
            bus.send(&f, 0xbad, 0, 0).unwrap();
        }
        if id % 8 == 7 {
            bus.wakeup().unwrap();
            std::thread::sleep(Duration::from_millis(15));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let grown = common::rss_kib(b.pid()).saturating_sub(rss0);
    eprintln!("fragment flood: RSS grew {grown} KiB");
    assert!(grown < 10 * 1024, "RSS grew {grown} KiB");
    // Still answering what is not fragmented.
    assert_eq!(ping_big(&mut ca, ip("10.0.1.2"), 100, 2), 2);
    // maxfragpackets 0: no reassembly at all (NetBSD's meaning), and the slow timer
    // drains the queues down to it; back at 200 big pings are answered again (with the
    // queues full of the flood's they would wait for IPFRAGTTL, as on NetBSD).
    sysctl_int(&mut cb, &[4, 2, 0, 18], Some(0)).unwrap();
    sysctl_int(&mut cb, &[4, 24, 41, 9], Some(0)).unwrap();
    assert_eq!(ping_big(&mut ca, ip("10.0.1.2"), 4000, 1), 0);
    assert_eq!(ping6_big(&mut ca, ip6("fc00::2"), 4000, 1).0, 0);
    sysctl_int(&mut cb, &[4, 2, 0, 18], Some(200)).unwrap();
    sysctl_int(&mut cb, &[4, 24, 41, 9], Some(200)).unwrap();
    assert_eq!(ping_big(&mut ca, ip("10.0.1.2"), 4000, 2), 2);
    assert_eq!(ping6_big(&mut ca, ip6("fc00::2"), 4000, 2).0, 2);

    // frag6_input's parameter problems, to a (which can be reached): a non-final fragment
    // of 13 bytes (pointer 4, the payload length), one reaching past 65535 (pointer 42,
    // the fragment offset).
    let mac_a = mac_of(&mut ca, 2);
    let r6 = ca.socket(AF_INET6, SOCK_RAW, 58).unwrap();
    // A fresh second for icmp6errppslim (the drained queues' time exceeded used some).
    std::thread::sleep(Duration::from_millis(1100));
    for (off, n, mf) in [(0usize, 13usize, true), (65528, 16, false)] {
        let mut f = mac_b.to_vec();
        f.extend_from_slice(&mac_a);
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        f.extend_from_slice(&((8 + n) as u16).to_be_bytes());
        f.extend_from_slice(&[44, 64]);
        f.extend_from_slice(&ip6("fc00::1").octets());
        f.extend_from_slice(&ip6("fc00::2").octets());
        f.extend_from_slice(&[17, 0]);
        f.extend_from_slice(&(((off as u16) & 0xfff8) | u16::from(mf)).to_be_bytes());
        f.extend_from_slice(&0x0bad_f00du32.to_be_bytes());
        f.resize(14 + 48 + n, 0x44);
        bus.send(&f, 0xbad, 0, 0).unwrap();
    }
    bus.wakeup().unwrap();
    let mut pointers = Vec::new();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until && pointers.len() < 2 {
        let mut buf = [0u8; 2048];
        match ca.recvfrom(r6, &mut buf, 0x80) {
            Ok((k, _)) if k >= 8 && buf[0] == 4 && buf[1] == 0 => {
                pointers.push(u32::from_be_bytes(buf[4..8].try_into().unwrap()))
            }
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    assert_eq!(pointers, vec![4, 42], "ICMPv6 parameter problems");
}

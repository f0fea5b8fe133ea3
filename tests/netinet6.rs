//! IPv6 on shmif (issue 16, netinet6) between two of our servers on one bus in a temp dir:
//! the link-local address an interface gets when it comes up (EUI-64 from its MAC, as
//! NetBSD's `in6_ifattach`), global addresses by `SIOCAIFADDR_IN6` and their getters,
//! ICMPv6 echo over a raw socket (neighbour discovery first), TCP and UDP over IPv6 (to a
//! global and to a link-local address), `SIOCDIFADDR_IN6`, `net.inet6.ip6.forwarding`.

mod common;
#[path = "netinet/peer.rs"]
mod peer;

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use client::{addr_of, Client, Error};
use common::{InDir, TempDir};
use peer::*;

const LIBS: &[&str] = common::NETINET6;
const AF_INET6: i32 = 24;
const SIOCIFCREATE: u32 = 0x8090_697a;
const SIOCSLINKSTR: u32 = 0x8028_6988;
const SIOCSIFFLAGS: u32 = 0x8090_6910;
const SIOCGIFFLAGS: u32 = 0xc090_6911;
/// `_IOW('i', 107, struct in6_aliasreq)`.
const SIOCAIFADDR_IN6: u32 = 0x8080_696b;
/// `_IOW('i', 25, struct in6_ifreq)`.
const SIOCDIFADDR_IN6: u32 = 0x8120_6919;
/// `_IOWR('i', 37, struct in6_ifreq)`.
const SIOCGIFNETMASK_IN6: u32 = 0xc120_6925;
/// `_IOWR('i', 33, struct in6_ifreq)`.
const SIOCGIFADDR_IN6: u32 = 0xc120_6921;
/// `_IOWR('i', 73, struct in6_ifreq)`.
const SIOCGIFAFLAG_IN6: u32 = 0xc120_6949;
const IN6_IFF_TENTATIVE: i32 = 0x02;

/// A server with [`LIBS`] started in `dir` (where relative bus paths land).
fn start(dir: &TempDir, name: &str) -> InDir {
    InDir::start(dir, name, LIBS)
}

fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn sin6(a: Ipv6Addr, port: u16) -> Vec<u8> {
    let mut s = vec![28, AF_INET6 as u8];
    s.extend_from_slice(&port.to_be_bytes());
    s.extend_from_slice(&[0; 4]);
    s.extend_from_slice(&a.octets());
    s.extend_from_slice(&[0; 4]);
    s
}

fn named(name: &str, len: usize) -> Vec<u8> {
    let mut r = vec![0u8; len];
    r[..name.len()].copy_from_slice(name.as_bytes());
    r
}

/// `ifconfig NAME create; ifconfig NAME linkstr BUS; ifconfig NAME up`.
fn shmif_up(c: &mut Client, name: &str, bus: &str) -> Result<(), Error> {
    let s = c.socket(AF_INET6, SOCK_DGRAM, 0)?;
    ioctl(c, s, SIOCIFCREATE, &mut named(name, 144), &[])?;
    let mut path = bus.as_bytes().to_vec();
    path.push(0);
    let mut d = named(name, 40);
    d[24..32].copy_from_slice(&(path.len() as u64).to_le_bytes());
    d[32..40].copy_from_slice(&addr_of(&path).to_le_bytes());
    ioctl(c, s, SIOCSLINKSTR, &mut d, &path)?;
    let mut r = named(name, 144);
    ioctl(c, s, SIOCGIFFLAGS, &mut r, &[])?;
    r[16] |= 1;
    ioctl(c, s, SIOCSIFFLAGS, &mut r, &[])?;
    c.close(s)
}

/// `ifconfig NAME inet6 ADDR/PREFIX` (`SIOCAIFADDR_IN6`, infinite lifetimes).
fn add6(c: &mut Client, name: &str, a: Ipv6Addr, prefix: u8) -> Result<(), Error> {
    let s = c.socket(AF_INET6, SOCK_DGRAM, 0)?;
    let mut r = named(name, 128);
    r[16..44].copy_from_slice(&sin6(a, 0));
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    r[72..100].copy_from_slice(&sin6(Ipv6Addr::from(mask), 0));
    r[120..128].copy_from_slice(&[0xff; 8]); // vltime, pltime: ND6_INFINITE_LIFETIME
    let res = ioctl(c, s, SIOCAIFADDR_IN6, &mut r, &[]);
    c.close(s)?;
    res
}

/// `ifconfig -w`: waits (at most 5 s) until `a` is no longer tentative
/// (`SIOCGIFAFLAG_IN6`); the flags seen first.
fn wait_dad(c: &mut Client, name: &str, a: Ipv6Addr) -> i32 {
    let flags = |c: &mut Client| {
        let r = in6_req(c, SIOCGIFAFLAG_IN6, name, a).unwrap();
        i32::from_le_bytes(r[0..4].try_into().unwrap())
    };
    let first = flags(c);
    let t = Instant::now();
    while flags(c) & IN6_IFF_TENTATIVE != 0 {
        assert!(t.elapsed() < Duration::from_secs(5), "{a} still tentative");
        std::thread::sleep(Duration::from_millis(50));
    }
    first
}

/// An `in6_ifreq` request naming address `a`; the answer's sockaddr.
fn in6_req(c: &mut Client, com: u32, name: &str, a: Ipv6Addr) -> Result<Vec<u8>, Error> {
    let s = c.socket(AF_INET6, SOCK_DGRAM, 0)?;
    let mut r = named(name, 16 + 272);
    r[16..44].copy_from_slice(&sin6(a, 0));
    let res = ioctl(c, s, com, &mut r, &[]);
    c.close(s)?;
    res.map(|()| r[16..44].to_vec())
}

/// The IPv6 addresses of the interfaces as getifaddrs reads them (`NET_RT_IFLIST`'s
/// `RTM_NEWADDR` messages): (interface index, address with its embedded scope).
fn ifaddrs6(c: &mut Client) -> Vec<(u16, [u8; 16])> {
    let b = sysctl_read(c, &[4, 34, 0, 0, 5, 0]).unwrap();
    let mut out = Vec::new();
    let mut o = 0;
    while o + 4 <= b.len() {
        let len = usize::from(u16::from_le_bytes([b[o], b[o + 1]]));
        if len < 4 || o + len > b.len() {
            break;
        }
        let m = &b[o..o + len];
        if m[3] == 0xc {
            // ifa_msghdr (24 bytes), then sockaddrs padded to 8: netmask, ifa, …
            let index = u16::from_le_bytes([m[16], m[17]]);
            let mut p = 24;
            while p + 2 <= m.len() {
                let sl = usize::from(m[p]).max(1);
                if m[p + 1] == AF_INET6 as u8 && sl == 28 && p + 28 <= m.len() {
                    let a: [u8; 16] = m[p + 8..p + 24].try_into().unwrap();
                    if a != [0xff; 16] && a[0] != 0xff {
                        out.push((index, a));
                    }
                }
                p += sl.div_ceil(8) * 8;
            }
        }
        o += len;
    }
    out
}

/// ICMPv6 echo requests over a raw socket (which hands over the ICMPv6 message without
/// the IPv6 header): how many of `count` got their reply within 3 s each.
fn ping6(c: &mut Client, to: Ipv6Addr, count: u16) -> Result<u16, Error> {
    let s = c.socket(AF_INET6, SOCK_RAW, 58)?;
    let ident = 0x4242u16;
    let mut got = 0;
    for seq in 0..count {
        let mut m = vec![128, 0, 0, 0];
        m.extend_from_slice(&ident.to_be_bytes());
        m.extend_from_slice(&seq.to_be_bytes());
        m.extend_from_slice(b"netinet6 echo");
        c.sendto(s, &m, 0, Some(&sin6(to, 0)))?;
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            let mut buf = [0u8; 256];
            match c.recvfrom(s, &mut buf, 0x80) {
                // MSG_DONTWAIT
                Ok((n, from)) => {
                    if n >= 8
                        && buf[0] == 129
                        && buf[4..8] == m[4..8]
                        && buf[8..n] == m[8..]
                        && from[8..24] == to.octets()
                    {
                        got += 1;
                        break;
                    }
                }
                Err(Error::Errno(35)) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(e),
            }
        }
    }
    c.close(s)?;
    Ok(got)
}

fn sysctl_int(c: &mut Client, name: &[i32], new: Option<i32>) -> Result<i32, Error> {
    c.sysctl_int(name, new)
}

/// A TCP echo over IPv6: `srv` listens on `port`, `cli` connects to `to`, `n` bytes out
/// and back.
fn tcp6_echo(srv: &InDir, cli: &InDir, to: Ipv6Addr, port: u16, n: usize) {
    let mut cs = srv.client();
    let l = cs.socket(AF_INET6, SOCK_STREAM, 0).unwrap();
    cs.bind(l, &sin6(Ipv6Addr::UNSPECIFIED, port)).unwrap();
    cs.listen(l, 1).unwrap();
    let t = std::thread::spawn(move || tcp_echo_once(&mut cs, l).unwrap());
    let mut cc = cli.client();
    let s = cc.socket(AF_INET6, SOCK_STREAM, 0).unwrap();
    cc.connect_sock(s, &sin6(to, port)).unwrap();
    let data = pattern(n);
    let mut off = 0;
    while off < n {
        off += cc.write(s, &data[off..(off + 16384).min(n)]).unwrap();
    }
    cc.shutdown(s, 1).unwrap();
    let mut back = Vec::with_capacity(n);
    let mut buf = vec![0u8; 16384];
    loop {
        let k = cc.read(s, &mut buf).unwrap();
        if k == 0 {
            break;
        }
        back.extend_from_slice(&buf[..k]);
    }
    assert!(
        back == data,
        "echo differs: {} of {n} bytes back",
        back.len()
    );
    cc.close(s).unwrap();
    assert_eq!(t.join().unwrap(), n);
}

#[test]
fn two_servers_on_one_bus_over_ipv6() {
    let dir = TempDir::new("netinet6-bus");
    let a = start(&dir, "a.sock");
    let b = start(&dir, "b.sock");
    let (mut ca, mut cb) = (a.client(), b.client());
    shmif_up(&mut ca, "shmif0", "bus1").unwrap();
    shmif_up(&mut cb, "shmif0", "bus1").unwrap();

    // Coming up gave each a link-local address: fe80::/64, the interface's index embedded
    // (KAME's form in routing messages), the EUI-64 of a b2:a0:… MAC (b0:a0:…ff:fe…).
    let lla = ifaddrs6(&mut ca);
    let (ia, ll_a) = *lla
        .iter()
        .find(|(_, x)| x[0] == 0xfe && x[1] == 0x80)
        .expect("a link-local address on a");
    assert_eq!(ia, 2, "shmif0 is the second interface");
    assert_eq!(&ll_a[2..4], &2u16.to_be_bytes(), "embedded scope");
    assert_eq!(
        (ll_a[8], ll_a[9], ll_a[11], ll_a[12]),
        (0xb0, 0xa0, 0xff, 0xfe)
    );
    let ll_b = ifaddrs6(&mut cb)
        .into_iter()
        .find(|(_, x)| x[0] == 0xfe && x[1] == 0x80)
        .expect("a link-local address on b")
        .1;
    let unscoped = |mut x: [u8; 16]| {
        x[2] = 0;
        x[3] = 0;
        Ipv6Addr::from(x)
    };
    let (ll_a, ll_b) = (unscoped(ll_a), unscoped(ll_b));
    assert_ne!(ll_a, ll_b);
    // The getters name their address: the link-local one is there (its scope back in
    // sin6_scope_id), an address nobody has is EADDRNOTAVAIL, as is `::`.
    let got = in6_req(&mut ca, SIOCGIFADDR_IN6, "shmif0", ll_a).unwrap();
    assert_eq!(
        (&got[8..24], &got[24..28]),
        (&ll_a.octets()[..], &2u32.to_le_bytes()[..])
    );
    for x in [Ipv6Addr::UNSPECIFIED, ip6("fc00::99")] {
        let e = in6_req(&mut ca, SIOCGIFADDR_IN6, "shmif0", x).unwrap_err();
        assert!(matches!(e, Error::Errno(49)), "EADDRNOTAVAIL: {e}");
    }

    // Global addresses: the prefix as given, the link-local address kept.
    // Duplicate-address detection: tentative for a second (one unanswered probe), then
    // ready (the flag is read at once: the probe waits 1 s for an answer).
    add6(&mut ca, "shmif0", ip6("fc00::1"), 64).unwrap();
    assert_eq!(
        wait_dad(&mut ca, "shmif0", ip6("fc00::1")),
        IN6_IFF_TENTATIVE
    );
    add6(&mut cb, "shmif0", ip6("fc00::2"), 64).unwrap();
    assert_eq!(
        wait_dad(&mut cb, "shmif0", ip6("fc00::2")),
        IN6_IFF_TENTATIVE
    );
    wait_dad(&mut ca, "shmif0", ll_a);
    wait_dad(&mut cb, "shmif0", ll_b);
    let m = in6_req(&mut ca, SIOCGIFNETMASK_IN6, "shmif0", ip6("fc00::1")).unwrap();
    assert_eq!(&m[8..24], &Ipv6Addr::from(!0u128 << 64).octets());
    assert_eq!(
        ifaddrs6(&mut ca).len(),
        3,
        "::1, the link-local and fc00::1"
    );

    // ICMPv6 echo both ways (neighbour solicitation/advertisement first), to global and
    // link-local addresses.
    assert_eq!(ping6(&mut ca, ip6("fc00::2"), 3).unwrap(), 3);
    assert_eq!(ping6(&mut cb, ip6("fc00::1"), 2).unwrap(), 2);
    assert_eq!(ping6(&mut ca, ll_b, 1).unwrap(), 1);
    // Nobody there: no answer (the solicitations go unanswered).
    assert_eq!(ping6(&mut ca, ip6("fc00::9"), 1).unwrap(), 0);

    // TCP both ways, 200 KB each, and to a link-local address.
    tcp6_echo(&b, &a, ip6("fc00::2"), 7, 200_000);
    tcp6_echo(&a, &b, ip6("fc00::1"), 7, 200_000);
    tcp6_echo(&b, &a, ll_b, 8, 50_000);

    // UDP: a datagram to b's bound port and the answer back to a's source port.
    let ub = cb.socket(AF_INET6, SOCK_DGRAM, 0).unwrap();
    cb.bind(ub, &sin6(Ipv6Addr::UNSPECIFIED, 5000)).unwrap();
    let ua = ca.socket(AF_INET6, SOCK_DGRAM, 0).unwrap();
    ca.sendto(
        ua,
        b"six over the bus",
        0,
        Some(&sin6(ip6("fc00::2"), 5000)),
    )
    .unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = cb.recvfrom(ub, &mut buf, 0).unwrap();
    assert_eq!(&buf[..n], b"six over the bus");
    assert_eq!((from[1], &from[8..24]), (24, &ip6("fc00::1").octets()[..]));
    cb.sendto(ub, b"and back", 0, Some(&from)).unwrap();
    let (n, from) = ca.recvfrom(ua, &mut buf, 0).unwrap();
    assert_eq!(&buf[..n], b"and back");
    assert_eq!(&from[..24], &sin6(ip6("fc00::2"), 5000)[..24]);

    // SIOCDIFADDR_IN6: the address goes (then EADDRNOTAVAIL), and with it the echo.
    in6_req(&mut cb, SIOCDIFADDR_IN6, "shmif0", ip6("fc00::2")).unwrap();
    let e = in6_req(&mut cb, SIOCDIFADDR_IN6, "shmif0", ip6("fc00::2")).unwrap_err();
    assert!(matches!(e, Error::Errno(49)), "EADDRNOTAVAIL: {e}");
    assert_eq!(
        ping6(&mut cb, ll_a, 1).unwrap(),
        1,
        "link-local still works"
    );

    // net.inet6.ip6.forwarding: 0 as NetBSD, and it can be set.
    let fwd = [4, 24, 41, 1];
    assert_eq!(sysctl_int(&mut ca, &fwd, None).unwrap(), 0);
    assert_eq!(sysctl_int(&mut ca, &fwd, Some(1)).unwrap(), 0);
    assert_eq!(sysctl_int(&mut ca, &fwd, None).unwrap(), 1);
}

/// Two servers given the same address: the second one's probe is answered by the first,
/// so its address is a duplicate (`IN6_IFF_DUPLICATED`, as `ifconfig` shows `duplicated`)
/// and never its source; the first keeps its address.
#[test]
fn duplicate_address_detected() {
    let dir = TempDir::new("netinet6-dad");
    let a = start(&dir, "a.sock");
    let b = start(&dir, "b.sock");
    let (mut ca, mut cb) = (a.client(), b.client());
    shmif_up(&mut ca, "shmif0", "bus1").unwrap();
    shmif_up(&mut cb, "shmif0", "bus1").unwrap();
    add6(&mut ca, "shmif0", ip6("fc00::7"), 64).unwrap();
    wait_dad(&mut ca, "shmif0", ip6("fc00::7"));
    add6(&mut cb, "shmif0", ip6("fc00::7"), 64).unwrap();
    wait_dad(&mut cb, "shmif0", ip6("fc00::7"));
    let flags = |c: &mut Client| {
        let r = in6_req(c, SIOCGIFAFLAG_IN6, "shmif0", ip6("fc00::7")).unwrap();
        i32::from_le_bytes(r[0..4].try_into().unwrap())
    };
    assert_eq!(flags(&mut cb), 0x04, "IN6_IFF_DUPLICATED");
    assert_eq!(flags(&mut ca), 0, "the first one keeps it");
}

/// A three-server line (a on bus1, r on both, c on bus2): r forwards IPv6 between the
/// buses only with `net.inet6.ip6.forwarding` 1 (off by default, as NetBSD).
#[test]
fn ipv6_forwarding_is_off_by_default_and_honoured() {
    let dir = TempDir::new("netinet6-fwd");
    let a = start(&dir, "a.sock");
    let r = start(&dir, "r.sock");
    let c = start(&dir, "c.sock");
    let (mut ca, mut cr, mut cc) = (a.client(), r.client(), c.client());
    shmif_up(&mut ca, "shmif0", "bus1").unwrap();
    shmif_up(&mut cr, "shmif0", "bus1").unwrap();
    shmif_up(&mut cr, "shmif1", "bus2").unwrap();
    shmif_up(&mut cc, "shmif0", "bus2").unwrap();
    add6(&mut ca, "shmif0", ip6("fc01::1"), 64).unwrap();
    add6(&mut cr, "shmif0", ip6("fc01::ff"), 64).unwrap();
    add6(&mut cr, "shmif1", ip6("fc02::ff"), 64).unwrap();
    add6(&mut cc, "shmif0", ip6("fc02::1"), 64).unwrap();
    wait_dad(&mut ca, "shmif0", ip6("fc01::1"));
    wait_dad(&mut cr, "shmif0", ip6("fc01::ff"));
    wait_dad(&mut cr, "shmif1", ip6("fc02::ff"));
    wait_dad(&mut cc, "shmif0", ip6("fc02::1"));
    route6_add(&mut ca, ip6("fc02::"), 64, ip6("fc01::ff"));
    route6_add(&mut cc, ip6("fc01::"), 64, ip6("fc02::ff"));
    // The router answers on both of its addresses.
    assert_eq!(ping6(&mut ca, ip6("fc02::ff"), 1).unwrap(), 1);
    // Not forwarded by default.
    assert_eq!(ping6(&mut ca, ip6("fc02::1"), 1).unwrap(), 0);
    sysctl_int(&mut cr, &[4, 24, 41, 1], Some(1)).unwrap();
    assert_eq!(ping6(&mut ca, ip6("fc02::1"), 2).unwrap(), 2);
    tcp6_echo(&c, &a, ip6("fc02::1"), 7, 100_000);
    sysctl_int(&mut cr, &[4, 24, 41, 1], Some(0)).unwrap();
    assert_eq!(ping6(&mut ca, ip6("fc02::1"), 1).unwrap(), 0);
}

/// `route add -inet6 DST/PREFIX GW` over a routing socket (RTM_ADD, RTF_GATEWAY).
fn route6_add(c: &mut Client, dst: Ipv6Addr, prefix: u8, gw: Ipv6Addr) {
    let s = c.socket(34, SOCK_RAW, 0).unwrap();
    let mut m = vec![0u8; 120]; // rt_msghdr (amd64)
    m[2] = 4; // RTM_VERSION
    m[3] = 1; // RTM_ADD
    m[8..12].copy_from_slice(&(0x1u32 | 0x2 | 0x800).to_le_bytes()); // UP|GATEWAY|STATIC
    m[12..16].copy_from_slice(&7u32.to_le_bytes()); // DST|GATEWAY|NETMASK
    m[20..24].copy_from_slice(&1i32.to_le_bytes());
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    for sa in [sin6(dst, 0), sin6(gw, 0), sin6(Ipv6Addr::from(mask), 0)] {
        m.extend_from_slice(&sa);
        m.resize(m.len().div_ceil(8) * 8, 0);
    }
    let len = m.len() as u16;
    m[0..2].copy_from_slice(&len.to_le_bytes());
    c.write(s, &m).unwrap();
    c.close(s).unwrap();
}

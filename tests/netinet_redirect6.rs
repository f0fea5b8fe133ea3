//! ICMPv6 redirects between our servers on shmif buses (issue 16, `netinet/src/icmp.rs`,
//! as NetBSD's `icmp6_redirect_output` / `icmp6_redirect_input`): a router forwarding a
//! packet back out of the link it came from tells the sender of a better first hop (the
//! next hop's link-local address, its link-layer address, the redirected header); the
//! host takes it (a dynamic host route, `RTM_REDIRECT`, the neighbour cache) when it
//! comes from its current first hop. Link-local gateways with KAME's embedded scope go
//! into the routing table as route(8) gives them and come out the same way. The knobs
//! (`net.inet6.ip6.redirect`, `net.inet6.icmp6.rediraccept`) and forged redirects that
//! must change nothing.

mod common;
#[path = "oracle/icmp.rs"]
#[allow(dead_code)]
mod icmp;
#[path = "netinet/peer.rs"]
mod peer;
#[path = "oracle/sysctl.rs"]
#[allow(dead_code)]
mod sysctl;
#[path = "oracle/transcript.rs"]
mod transcript;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use client::Client;
use common::{InDir, TempDir};
use icmp::{rtmsg_of, sysctl_int};
use peer::*;

const LIBS: &[&str] = common::NETINET6;
const AF_INET6: i32 = 24;
const SIOCAIFADDR_IN6: u32 = 0x8080_696b;
/// net.inet6.ip6.forwarding, net.inet6.ip6.redirect, net.inet6.icmp6.rediraccept.
const FORWARDING6: &[i32] = &[4, 24, 41, 1];
const REDIRECT6: &[i32] = &[4, 24, 41, 2];
const REDIRACCEPT6: &[i32] = &[4, 24, 58, 2];
const G_MAC: [u8; 6] = [2, 0, 0, 0, 0, 3];

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// `ifconfig NAME inet6 ADDR/64`.
fn add6(c: &mut Client, name: &str, a: Ipv6Addr) {
    let s = c.socket(AF_INET6, SOCK_DGRAM, 0).unwrap();
    let mut r = vec![0u8; 128];
    r[..name.len()].copy_from_slice(name.as_bytes());
    r[16..44].copy_from_slice(&sin6(a, 0));
    r[72..100].copy_from_slice(&sin6(Ipv6Addr::from(u128::MAX << 64), 0));
    r[120..128].copy_from_slice(&[0xff; 8]);
    ioctl(c, s, SIOCAIFADDR_IN6, &mut r, &[]).unwrap();
    c.close(s).unwrap();
}

/// `a` with interface `zone` embedded in bytes 2-3 (KAME's form, as route(8) sends
/// `fe80::1%shmif0` and NetBSD's routing messages show it).
fn embed(a: Ipv6Addr, zone: u16) -> Ipv6Addr {
    let mut o = a.octets();
    o[2..4].copy_from_slice(&zone.to_be_bytes());
    Ipv6Addr::from(o)
}

/// The link-local address of the server's interface `ifindex` (from NET_RT_IFLIST,
/// where it carries its interface embedded), without its scope.
fn link_local(c: &mut Client, ifindex: u16) -> Ipv6Addr {
    let t = Instant::now();
    loop {
        let b = sysctl_read(c, &[4, 34, 0, AF_INET6, 5, 0]).unwrap();
        for w in (0..b.len().saturating_sub(28)).step_by(4) {
            let sa = &b[w..w + 28];
            if sa[0] == 28 && sa[1] == 24 && sa[8] == 0xfe && sa[9] & 0xc0 == 0x80 {
                let mut o: [u8; 16] = sa[8..24].try_into().unwrap();
                if u16::from_be_bytes([o[2], o[3]]) == ifindex {
                    o[2] = 0;
                    o[3] = 0;
                    return Ipv6Addr::from(o);
                }
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no link-local address"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `route add -inet6 DST/PREFIX GW` over a routing socket, the gateway's sockaddr_in6
/// as given (`gw_scope_id`: its sin6_scope_id).
fn route_add6(
    c: &mut Client,
    dst: Ipv6Addr,
    prefix: u8,
    gw: Ipv6Addr,
    gw_scope_id: u32,
) -> Result<usize, client::Error> {
    let s = c.socket(34, SOCK_RAW, 0)?;
    let mut m = vec![0u8; 120];
    m[2] = 4;
    m[3] = 1; // RTM_ADD
    let fl: u32 = 0x1 | 0x2 | 0x800;
    m[8..12].copy_from_slice(&fl.to_le_bytes());
    m[12..16].copy_from_slice(&7u32.to_le_bytes());
    m[20..24].copy_from_slice(&1i32.to_le_bytes());
    let mut g = sin6(gw, 0);
    g[24..28].copy_from_slice(&gw_scope_id.to_le_bytes());
    let mask = sin6(Ipv6Addr::from(u128::MAX << (128 - u32::from(prefix))), 0);
    for sa in [sin6(dst, 0), g, mask] {
        m.extend_from_slice(&sa);
        m.resize(m.len().div_ceil(8) * 8, 0);
    }
    let len = m.len() as u16;
    m[0..2].copy_from_slice(&len.to_le_bytes());
    let r = c.write(s, &m);
    c.close(s)?;
    r
}

/// `route -n get -inet6 DST`: flags (but RTF_DONE), the addrs bits of DST, GATEWAY and
/// NETMASK, and the destination and gateway as the answer has them (scope embedded).
fn route_get6(c: &mut Client, dst: Ipv6Addr) -> String {
    let s = c.socket(34, SOCK_RAW, 0).unwrap();
    let mut m = vec![0u8; 120];
    m[2] = 4;
    m[3] = 4; // RTM_GET
    m[8..12].copy_from_slice(&1i32.to_le_bytes());
    m[12..16].copy_from_slice(&1i32.to_le_bytes());
    m[20..24].copy_from_slice(&7i32.to_le_bytes());
    m.extend_from_slice(&sin6(dst, 0));
    let len = m.len() as u16;
    m[0..2].copy_from_slice(&len.to_le_bytes());
    let r = c.write(s, &m).and_then(|_| {
        let mut b = vec![0u8; 1024];
        let n = c.read(s, &mut b)?;
        Ok(b[..n].to_vec())
    });
    c.close(s).unwrap();
    let b = match r {
        Ok(b) => b,
        Err(e) => return format!("error {e}"),
    };
    let flags = i32::from_le_bytes(b[8..12].try_into().unwrap());
    let addrs = i32::from_le_bytes(b[12..16].try_into().unwrap());
    let mut sas = Vec::new();
    let mut o = 120;
    while o < b.len() && sas.len() < 2 {
        let l = usize::from(b[o]);
        let sa = &b[o..(o + l.max(1)).min(b.len())];
        sas.push(match sa.get(1) {
            Some(24) if sa.len() >= 24 => {
                Ipv6Addr::from(<[u8; 16]>::try_from(&sa[8..24]).unwrap()).to_string()
            }
            _ => format!("af{}", sa.get(1).copied().unwrap_or(0)),
        });
        o += if l == 0 { 8 } else { l.div_ceil(8) * 8 };
    }
    format!(
        "flags {:#x} addrs {:#x} {}",
        flags & !0x40,
        addrs & 0x7,
        sas.join(",")
    )
}

/// An echo request to `to` from a raw ICMPv6 socket that stays open (its owner reads
/// what comes back).
fn echo6(c: &mut Client, to: Ipv6Addr) -> i32 {
    let s = c.socket(AF_INET6, SOCK_RAW, 58).unwrap();
    let mut tv = 0i64.to_le_bytes().to_vec();
    tv.extend_from_slice(&200_000i64.to_le_bytes());
    c.setsockopt(s, 0xffff, 0x100c, &tv).unwrap(); // SO_RCVTIMEO 200 ms
    let mut m = vec![128, 0, 0, 0, 0x77, 0x77, 0, 1];
    m.extend_from_slice(&[0x5a; 16]);
    c.sendto(s, &m, 0, Some(&sin6(to, 0))).unwrap();
    s
}

/// The first ICMPv6 message of type `ty` raw socket `s` gets within `ms` (and its source).
fn wait6(c: &mut Client, s: i32, ty: u8, ms: u64) -> Option<(Vec<u8>, Ipv6Addr)> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(ms) {
        let mut b = [0u8; 2048];
        if let Ok((n, from)) = c.recvfrom(s, &mut b, 0) {
            if n >= 8 && b[0] == ty {
                let a: [u8; 16] = from[8..24].try_into().unwrap();
                return Some((b[..n].to_vec(), Ipv6Addr::from(a)));
            }
        }
    }
    None
}

#[test]
fn a_router_of_ours_redirects_a_host_of_ours_to_a_link_local_next_hop() {
    // a (fc00:1::1), r (fc00:1::2, forwarding) and g (fc00:1::3; fc00:9::1 on bus2) on
    // bus1. a's route to fc00::/16 is r's link-local address, r's to fc00:9::/64 g's
    // (both given as route(8) gives `fe80::…%shmif0`): r forwards a's packet back out
    // onto bus1 to g and tells a to use g.
    let dir = TempDir::new("redirect6");
    let (sa, sr, sg) = (
        InDir::start(&dir, "a.sock", LIBS),
        InDir::start(&dir, "r.sock", LIBS),
        InDir::start(&dir, "g.sock", LIBS),
    );
    let (mut a, mut r, mut g) = (sa.client(), sr.client(), sg.client());
    ifconfig_shmif(&mut a, "shmif0", "bus1", ip("10.0.1.1")).unwrap();
    ifconfig_shmif(&mut r, "shmif0", "bus1", ip("10.0.1.2")).unwrap();
    ifconfig_shmif(&mut g, "shmif0", "bus1", ip("10.0.1.3")).unwrap();
    ifconfig_shmif(&mut g, "shmif1", "bus2", ip("10.0.9.1")).unwrap();
    add6(&mut a, "shmif0", ip6("fc00:1::1"));
    add6(&mut r, "shmif0", ip6("fc00:1::2"));
    add6(&mut g, "shmif0", ip6("fc00:1::3"));
    add6(&mut g, "shmif1", ip6("fc00:9::1"));
    assert_eq!(sysctl_int(&mut r, FORWARDING6, Some(1)).unwrap(), 0);
    assert_eq!(sysctl_int(&mut r, REDIRECT6, None).unwrap(), 1);
    assert_eq!(sysctl_int(&mut a, REDIRACCEPT6, None).unwrap(), 1);
    let (r_ll, g_ll) = (link_local(&mut r, 2), link_local(&mut g, 2));
    // A link-local gateway: the scope embedded (route(8)), or in sin6_scope_id; one
    // naming no interface is refused.
    assert!(route_add6(&mut a, ip6("fc00::"), 16, embed(r_ll, 2), 0).is_ok());
    assert!(route_add6(&mut r, ip6("fc00:9::"), 64, g_ll, 2).is_ok());
    assert!(matches!(
        route_add6(&mut r, ip6("fc00:8::"), 64, embed(g_ll, 9), 0),
        Err(client::Error::Errno(51))
    ));
    // Shown with the scope embedded, as NetBSD's route(8) reads it.
    let r_gw = embed(r_ll, 2);
    let g_gw = embed(g_ll, 2);
    assert_eq!(
        route_get6(&mut a, ip6("fc00:9::1")),
        format!("flags 0x803 addrs 0x7 fc00::,{r_gw}")
    );
    assert_eq!(
        route_get6(&mut r, ip6("fc00:9::1")),
        format!("flags 0x803 addrs 0x7 fc00:9::,{g_gw}")
    );
    // Duplicate-address detection.
    std::thread::sleep(Duration::from_millis(1500));
    // r resolves g's link-local address first (a redirect carries the target's link
    // address only when the neighbour cache has it, as NetBSD's `LLE_VALID` test).
    let s = echo6(&mut r, ip6("fc00:9::1"));
    assert!(wait6(&mut r, s, 129, 3000).is_some(), "r reaches g");
    r.close(s).unwrap();
    let rs = a.socket(34, SOCK_RAW, 0).unwrap();
    a.fcntl(rs, 4, 4).unwrap(); // O_NONBLOCK
    let s = echo6(&mut a, ip6("fc00:9::1"));
    // The redirect itself, as a's raw socket sees it: from r's link-local address, the
    // target g's link-local address, the destination, g's link-layer address (r knows
    // it: it just sent there) and the packet as r forwarded it (hop limit 63).
    let (rd, from) = wait6(&mut a, s, 137, 3000).expect("a redirect");
    assert_eq!(from, r_ll);
    assert_eq!(rd[1], 0, "code");
    assert_eq!(
        Ipv6Addr::from(<[u8; 16]>::try_from(&rd[8..24]).unwrap()),
        g_ll
    );
    assert_eq!(
        Ipv6Addr::from(<[u8; 16]>::try_from(&rd[24..40]).unwrap()),
        ip6("fc00:9::1")
    );
    assert_eq!(&rd[40..42], &[2, 1], "target link-layer address option");
    assert_eq!(rd[42] & 1, 0, "a unicast MAC");
    assert_eq!(rd[48], 4, "redirected header option");
    assert_eq!(usize::from(rd[49]) * 8, rd.len() - 48);
    let q = &rd[56..];
    assert_eq!(q.len(), 64, "the 64-byte echo request, a multiple of 8");
    assert_eq!(q[7], 63, "the hop limit as forwarded");
    assert_eq!(&q[24..40], &ip6("fc00:9::1").octets());
    // The echo came back all the same (r forwarded it).
    assert!(wait6(&mut a, s, 129, 3000).is_some(), "the echo reply");
    a.close(s).unwrap();
    assert_eq!(
        rtmsg_of(&mut a, rs, 6, 2000),
        format!("type 6 flags 0x57 errno 0 addrs 0x43 fc00:9::1,{g_gw},{r_gw}")
    );
    assert_eq!(
        route_get6(&mut a, ip6("fc00:9::1")),
        format!("flags 0x17 addrs 0x3 fc00:9::1,{g_gw}")
    );
    // Now straight to g: no more redirects.
    let s = echo6(&mut a, ip6("fc00:9::1"));
    assert!(wait6(&mut a, s, 129, 3000).is_some(), "the echo reply");
    a.close(s).unwrap();
    assert_eq!(rtmsg_of(&mut a, rs, 6, 500), "none");

    // A host that refuses redirects keeps its route (r still sends one).
    assert_eq!(sysctl_int(&mut a, REDIRACCEPT6, Some(0)).unwrap(), 1);
    let s = echo6(&mut a, ip6("fc00:9::2"));
    assert!(wait6(&mut a, s, 137, 3000).is_some(), "r redirects");
    a.close(s).unwrap();
    assert_eq!(rtmsg_of(&mut a, rs, 6, 500), "none");
    assert_eq!(
        route_get6(&mut a, ip6("fc00:9::2")),
        format!("flags 0x803 addrs 0x7 fc00::,{r_gw}")
    );
    sysctl_int(&mut a, REDIRACCEPT6, Some(1)).unwrap();
    // A router told not to send them does not.
    assert_eq!(sysctl_int(&mut r, REDIRECT6, Some(0)).unwrap(), 1);
    let s = echo6(&mut a, ip6("fc00:9::3"));
    assert!(wait6(&mut a, s, 137, 1500).is_none(), "no redirect");
    a.close(s).unwrap();
    assert_eq!(rtmsg_of(&mut a, rs, 6, 300), "none");
    sysctl_int(&mut r, REDIRECT6, Some(1)).unwrap();
    // On again: redirects again.
    let s = echo6(&mut a, ip6("fc00:9::4"));
    assert!(wait6(&mut a, s, 137, 3000).is_some(), "r redirects again");
    a.close(s).unwrap();
    assert_eq!(
        rtmsg_of(&mut a, rs, 6, 2000),
        format!("type 6 flags 0x57 errno 0 addrs 0x43 fc00:9::4,{g_gw},{r_gw}")
    );
    drop((sa, sr, sg));
}

/// A redirect from `src` (hop limit `hlim`) to the server at fc00::1: `target`, `dst`,
/// `opts` after them; `code`; the checksum spoilt when `bad_sum`.
#[allow(clippy::too_many_arguments)]
fn forged(
    src: Ipv6Addr,
    hlim: u8,
    code: u8,
    target: Ipv6Addr,
    dst: Ipv6Addr,
    opts: &[u8],
    bad_sum: bool,
) -> Vec<u8> {
    let srv = ip6("fc00::1");
    let mut body = target.octets().to_vec();
    body.extend_from_slice(&dst.octets());
    body.extend_from_slice(opts);
    let mut m = icmp::icmp6(src, srv, 137, code, [0; 4], &body);
    if bad_sum {
        m[2] ^= 0x55;
    }
    icmp::ip6(src, srv, 58, hlim, &m)
}

#[test]
fn a_host_takes_only_redirects_from_its_first_hop() {
    // One server of ours (10.0.1.1, fc00::1) and the test on its bus as its router
    // fe80::2 (through which fc00:9::/64 goes) and as strangers.
    let dir = TempDir::new("redirect6-forged");
    let srv = InDir::start(&dir, "s.sock", LIBS);
    let mut c = srv.client();
    ifconfig_shmif(&mut c, "shmif0", icmp::BUS, ip("10.0.1.1")).unwrap();
    add6(&mut c, "shmif0", ip6("fc00::1"));
    let router = ip6("fe80::2");
    assert!(route_add6(&mut c, ip6("fc00:9::"), 64, embed(router, 2), 0).is_ok());
    let mut w = icmp::Wire::open(&dir.path().join(icmp::BUS));
    std::thread::sleep(Duration::from_millis(1500));
    let rs = c.socket(34, SOCK_RAW, 0).unwrap();
    c.fcntl(rs, 4, 4).unwrap(); // O_NONBLOCK
    let r_gw = embed(router, 2);
    let before = format!("flags 0x803 addrs 0x7 fc00:9::,{r_gw}");
    let (g, dst) = (ip6("fe80::3"), ip6("fc00:9::5"));
    let mut lla = vec![2, 1];
    lla.extend_from_slice(&G_MAC);
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        (
            "not the first hop",
            forged(ip6("fe80::bad"), 255, 0, g, dst, &lla, false),
        ),
        ("hop limit 64", forged(router, 64, 0, g, dst, &lla, false)),
        (
            "a global source",
            forged(ip6("fc00::2"), 255, 0, g, dst, &lla, false),
        ),
        ("code 1", forged(router, 255, 1, g, dst, &lla, false)),
        ("a bad checksum", forged(router, 255, 0, g, dst, &lla, true)),
        (
            "a global target that is not the destination",
            forged(router, 255, 0, ip6("fc00::77"), dst, &lla, false),
        ),
        (
            "an option of length 0",
            forged(router, 255, 0, g, dst, &[2, 0, 0, 0, 0, 0, 0, 0], false),
        ),
        (
            "a link-layer option of 16 bytes",
            forged(
                router,
                255,
                0,
                g,
                dst,
                &[2, 2, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0],
                false,
            ),
        ),
        ("cut short", {
            let mut p = forged(router, 255, 0, g, dst, &[], false);
            p.truncate(40 + 32);
            p[5] = 32;
            p
        }),
        (
            "a destination not through the sender",
            forged(router, 255, 0, g, ip6("fc00:1::5"), &lla, false),
        ),
    ];
    for (why, p) in &hostile {
        w.send(p, false);
        let _ = w.pump(150);
        assert_eq!(rtmsg_of(&mut c, rs, 6, 150), "none", "{why}");
        assert_eq!(route_get6(&mut c, dst), before, "{why}");
    }
    // The knob off, or a router (forwarding on): a good one is ignored too.
    let good = forged(router, 255, 0, g, dst, &lla, false);
    assert_eq!(sysctl_int(&mut c, REDIRACCEPT6, Some(0)).unwrap(), 1);
    w.send(&good, false);
    let _ = w.pump(150);
    assert_eq!(rtmsg_of(&mut c, rs, 6, 150), "none", "rediraccept 0");
    sysctl_int(&mut c, REDIRACCEPT6, Some(1)).unwrap();
    assert_eq!(sysctl_int(&mut c, FORWARDING6, Some(1)).unwrap(), 0);
    w.send(&good, false);
    let _ = w.pump(150);
    assert_eq!(rtmsg_of(&mut c, rs, 6, 150), "none", "forwarding 1");
    sysctl_int(&mut c, FORWARDING6, Some(0)).unwrap();
    assert_eq!(route_get6(&mut c, dst), before);
    // The good one: a host route through g, and g's link-layer address known at once:
    // the next packet to the destination goes to G_MAC without a solicitation.
    w.send(&good, false);
    let _ = w.pump(150);
    let g_gw = embed(g, 2);
    assert_eq!(
        rtmsg_of(&mut c, rs, 6, 2000),
        format!("type 6 flags 0x57 errno 0 addrs 0x43 fc00:9::5,{g_gw},{r_gw}")
    );
    assert_eq!(
        route_get6(&mut c, dst),
        format!("flags 0x17 addrs 0x3 fc00:9::5,{g_gw}")
    );
    let s = echo6(&mut c, dst);
    let got = w.pump(500);
    assert!(
        got.iter()
            .any(|(mac, p)| *mac == G_MAC && p[6] == 58 && p[24..40] == dst.octets()),
        "the echo request went to g's MAC: {got:?}"
    );
    c.close(s).unwrap();
    // From the old router now, it is not the first hop any more.
    w.send(
        &forged(router, 255, 0, ip6("fe80::4"), dst, &[], false),
        false,
    );
    let _ = w.pump(150);
    assert_eq!(rtmsg_of(&mut c, rs, 6, 200), "none");
    // An on-link redirect (target = destination): no route, the neighbour learnt.
    let onlink = ip6("fc00:9::6");
    w.send(&forged(router, 255, 0, onlink, onlink, &lla, false), false);
    let _ = w.pump(150);
    assert_eq!(rtmsg_of(&mut c, rs, 6, 200), "none", "on-link: no route");
    drop(srv);
}

//! The multicast probe (issue 16): the IPv4 and IPv6 multicast socket options on UDP
//! sockets (`IP_MULTICAST_IF/TTL/LOOP`, `IP_ADD/DROP_MEMBERSHIP`,
//! `IPV6_MULTICAST_IF/HOPS/LOOP`, `IPV6_JOIN/LEAVE_GROUP`) with their getsockopt answers
//! and errno, datagrams to a group looped back to the sockets bound to its port (or not:
//! `IP_MULTICAST_LOOP` 0, a group nobody joined), and then the frames the server put on
//! its bus while doing it — its IGMP and MLD reports, leaves and dones and its UDP to a
//! group — summarised (addresses that are random per boot by shape) and sorted. Run
//! against a server started in directory `dir` with `-lrumpnet -lrumpnet_net
//! -lrumpnet_netinet -lrumpnet_netinet6 -lrumpnet_shmif` (the bus `mcast-bus` lands there).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use client::Client;

use crate::peer::{ifconfig_shmif, ioctl, sin, sin6, SOCK_DGRAM};
use crate::transcript::{connect, Transcript};

const AF_INET: i32 = 2;
const AF_INET6: i32 = 24;
const IPPROTO_IP: i32 = 0;
const IPPROTO_IPV6: i32 = 41;
const MULTICAST_IF: i32 = 9;
const MULTICAST_TTL: i32 = 10;
const MULTICAST_LOOP: i32 = 11;
const ADD_MEMBERSHIP: i32 = 12;
const DROP_MEMBERSHIP: i32 = 13;
const MSG_DONTWAIT: i32 = 0x80;
/// `_IOW('i', 107, struct in6_aliasreq)`.
const SIOCAIFADDR_IN6: u32 = 0x8080_696b;
/// The bus, relative to the server's directory.
pub const BUS: &str = "mcast-bus";

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

fn int(v: i32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An address as the transcript shows it: link-local ones by their prefix only.
fn shape(a: IpAddr) -> String {
    match a {
        IpAddr::V6(v) if v.segments()[0] == 0xfe80 => "fe80::(link-local)".into(),
        IpAddr::V6(v) if v.segments()[..6] == [0xff02, 0, 0, 0, 0, 1] && v.octets()[12] == 0xff => {
            if v.octets()[13..] == [0, 0, 1] {
                "ff02::1:ff00:1 (fc00::1's solicited-node)".into()
            } else {
                "ff02::1:ffxx:xxxx (link-local's solicited-node)".into()
            }
        }
        IpAddr::V6(v) if v.segments()[..6] == [0xff02, 0, 0, 0, 0, 2] => {
            "ff02::2:xxxx:xxxx (node information)".into()
        }
        IpAddr::V4(v) if v.octets()[..3] == [239, 1, 3] => "239.1.3.x".into(),
        _ => a.to_string(),
    }
}

impl Transcript {
    fn set(&mut self, c: &mut Client, s: i32, step: &str, level: i32, name: i32, v: &[u8]) {
        let r = c.setsockopt(s, level, name, v);
        self.unit(step, r);
    }

    fn get(&mut self, c: &mut Client, s: i32, step: &str, level: i32, name: i32) {
        let r = c.getsockopt(s, level, name, 16);
        self.step(step, r, |v| format!("len {} {}", v.len(), hex(&v)));
    }

    /// Waits up to `ms` for a datagram on `s`: its length, payload and sender.
    fn recv_within(&mut self, c: &mut Client, s: i32, step: &str, ms: u64) {
        let end = Instant::now() + Duration::from_millis(ms);
        let mut buf = [0u8; 256];
        let r = loop {
            match c.recvfrom(s, &mut buf, MSG_DONTWAIT) {
                Err(e) if e.errno() == Some(35) && Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                r => break r,
            }
        };
        self.step(step, r, |(n, from)| {
            let a = match from.get(1) {
                Some(2) => IpAddr::V4(Ipv4Addr::new(from[4], from[5], from[6], from[7])),
                _ => IpAddr::V6(Ipv6Addr::from(
                    <[u8; 16]>::try_from(&from[8..24]).unwrap_or_default(),
                )),
            };
            format!(
                "{n} bytes {:?} from {}",
                String::from_utf8_lossy(&buf[..n]),
                shape(a)
            )
        });
    }
}

/// `ifconfig shmif0 inet6 ADDR/64`.
fn inet6(c: &mut Client, s: i32, a: Ipv6Addr) -> client::Result<()> {
    let mut r = vec![0u8; 128];
    r[..6].copy_from_slice(b"shmif0");
    r[16..44].copy_from_slice(&sin6(a, 0));
    r[72..100].copy_from_slice(&sin6(Ipv6Addr::from(!0u128 << 64), 0));
    r[120..128].copy_from_slice(&[0xff; 8]);
    ioctl(c, s, SIOCAIFADDR_IN6, &mut r, &[])
}

/// One line per kind of multicast control frame on the bus: IGMP and MLD messages and
/// UDP to a group, with the fields NetBSD decides (type, group, destination and its MAC,
/// TTL or hop limit, source by shape, the hop-by-hop header's bytes).
pub fn bus_summary(bus: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Ok(b) = shmif::Bus::open_readonly(bus) else {
        out.insert("no bus".into());
        return out;
    };
    for p in b.packets().unwrap_or_default() {
        let f = &p.frame;
        if f.len() < 14 || f[0] & 1 == 0 || f[0] == 0xff {
            continue;
        }
        let mac = f[..6]
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        let ip = &f[14..];
        match u16::from_be_bytes([f[12], f[13]]) {
            0x0800 if ip.len() >= 20 => {
                let hl = usize::from(ip[0] & 0xf) * 4;
                let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
                let dst = IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
                let l4 = &ip[hl.min(ip.len())..];
                let what = match ip[9] {
                    2 if l4.len() >= 8 => format!(
                        "IGMP type {:#04x} code {} group {}",
                        l4[0],
                        l4[1],
                        shape(IpAddr::V4(Ipv4Addr::new(l4[4], l4[5], l4[6], l4[7])))
                    ),
                    17 => "UDP".into(),
                    p => format!("proto {p}"),
                };
                out.insert(format!(
                    "{what} to {} ({}) ttl {} from {} hlen {hl} tos {} off {:#x}",
                    shape(dst),
                    if dst.to_string().starts_with("239.1.3.") {
                        "01:00:5e:01:03:xx".into()
                    } else {
                        mac
                    },
                    ip[8],
                    shape(src),
                    ip[1],
                    u16::from_be_bytes([ip[6], ip[7]])
                ));
            }
            0x86dd if ip.len() >= 40 => {
                let a = |o: usize| {
                    IpAddr::V6(Ipv6Addr::from(
                        <[u8; 16]>::try_from(&ip[o..o + 16]).unwrap_or_default(),
                    ))
                };
                let (src, dst) = (a(8), a(24));
                let (mut nxt, mut off, mut ext) = (ip[6], 40, String::new());
                if nxt == 0 && ip.len() >= 48 {
                    let len = 8 * (usize::from(ip[41]) + 1);
                    ext = format!(" hbh {}", hex(&ip[40..(40 + len).min(ip.len())]));
                    nxt = ip[40];
                    off += len;
                }
                let l4 = &ip[off.min(ip.len())..];
                let what = match nxt {
                    58 if l4.len() >= 24 && (130..=132).contains(&l4[0]) => format!(
                        "MLD type {} code {} delay {} group {}",
                        l4[0],
                        l4[1],
                        u16::from_be_bytes([l4[4], l4[5]]),
                        shape(a(off + 8))
                    ),
                    // Neighbour discovery is not the subject here.
                    58 => continue,
                    17 => "UDP".into(),
                    n => format!("next {n}"),
                };
                // The groups an address joins report first from `::` (the link-local
                // address is tentative) and again within 10 s: from which depends on
                // timing, so either is shown alike.
                let early = matches!(dst, IpAddr::V6(d)
                    if d.segments()[..5] == [0xff02, 0, 0, 0, 0] && d.segments()[5] != 0);
                let from = match src {
                    IpAddr::V6(s) if early && (s.is_unspecified() || s.segments()[0] == 0xfe80) => {
                        ":: or link-local".to_string()
                    }
                    _ => shape(src),
                };
                let mac = if dst.to_string().starts_with("ff02::") && mac.starts_with("33:33:") {
                    // Derived from a random MAC or host name (shown by the group's shape).
                    "33:33:group".to_string()
                } else {
                    mac
                };
                out.insert(format!(
                    "{what} to {} ({mac}) hlim {} from {from}{ext}",
                    shape(dst),
                    ip[7]
                ));
            }
            _ => {}
        }
    }
    out
}

/// Runs the probe against the server at `url`, started in `dir`; the transcript.
pub fn run(url: &str, dir: &Path) -> Transcript {
    let mut t = Transcript::default();
    let mut c = connect(url, "oracle-mcast");
    let u4 = c.socket(AF_INET, SOCK_DGRAM, 0).expect("an AF_INET socket");
    let g4 = Ipv4Addr::new(239, 1, 2, 3);
    let me4 = Ipv4Addr::new(10, 0, 0, 1);
    let any4 = Ipv4Addr::UNSPECIFIED;

    // IPv4 options before any interface.
    t.get(
        &mut c,
        u4,
        "v4 default IP_MULTICAST_IF",
        IPPROTO_IP,
        MULTICAST_IF,
    );
    t.get(
        &mut c,
        u4,
        "v4 default IP_MULTICAST_TTL",
        IPPROTO_IP,
        MULTICAST_TTL,
    );
    t.get(
        &mut c,
        u4,
        "v4 default IP_MULTICAST_LOOP",
        IPPROTO_IP,
        MULTICAST_LOOP,
    );
    t.get(
        &mut c,
        u4,
        "v4 get IP_ADD_MEMBERSHIP",
        IPPROTO_IP,
        ADD_MEMBERSHIP,
    );
    t.set(
        &mut c,
        u4,
        "v4 TTL u_char 5",
        IPPROTO_IP,
        MULTICAST_TTL,
        &[5],
    );
    t.get(&mut c, u4, "v4 TTL after 5", IPPROTO_IP, MULTICAST_TTL);
    t.set(
        &mut c,
        u4,
        "v4 TTL 300",
        IPPROTO_IP,
        MULTICAST_TTL,
        &int(300),
    );
    t.set(
        &mut c,
        u4,
        "v4 TTL 2 bytes",
        IPPROTO_IP,
        MULTICAST_TTL,
        &[7, 0],
    );
    t.set(
        &mut c,
        u4,
        "v4 TTL int 7",
        IPPROTO_IP,
        MULTICAST_TTL,
        &int(7),
    );
    t.get(&mut c, u4, "v4 TTL after 7", IPPROTO_IP, MULTICAST_TTL);
    t.set(&mut c, u4, "v4 LOOP 2", IPPROTO_IP, MULTICAST_LOOP, &int(2));
    t.set(&mut c, u4, "v4 LOOP 0", IPPROTO_IP, MULTICAST_LOOP, &[0]);
    t.get(&mut c, u4, "v4 LOOP after 0", IPPROTO_IP, MULTICAST_LOOP);
    t.set(&mut c, u4, "v4 LOOP 1", IPPROTO_IP, MULTICAST_LOOP, &int(1));
    let nobody = Ipv4Addr::new(10, 0, 0, 9);
    t.set(
        &mut c,
        u4,
        "v4 IF nobody's",
        IPPROTO_IP,
        MULTICAST_IF,
        &nobody.octets(),
    );
    t.set(
        &mut c,
        u4,
        "v4 IF 3 bytes",
        IPPROTO_IP,
        MULTICAST_IF,
        &[10, 0, 0],
    );
    let r = c.setsockopt(u4, IPPROTO_IP, ADD_MEMBERSHIP, &mreq(g4, any4));
    t.unit("v4 ADD no route", r);
    let r = c.setsockopt(u4, IPPROTO_IP, ADD_MEMBERSHIP, &mreq(nobody, any4));
    t.unit("v4 ADD unicast group", r);
    let mut m12 = mreq(g4, any4);
    m12.extend_from_slice(&[0; 4]);
    t.set(
        &mut c,
        u4,
        "v4 ADD 12 bytes",
        IPPROTO_IP,
        ADD_MEMBERSHIP,
        &m12,
    );
    let r = c.sendto(u4, b"x", 0, Some(&sin(g4, 4000)));
    t.step("v4 send no route", r, |n| n.to_string());

    // An interface with an IPv4 and an IPv6 address.
    let r = ifconfig_shmif(&mut c, "shmif0", BUS, me4);
    t.unit("ifconfig shmif0 10.0.0.1/24", r);
    let s6 = c
        .socket(AF_INET6, SOCK_DGRAM, 0)
        .expect("an AF_INET6 socket");
    let fc1: Ipv6Addr = "fc00::1".parse().unwrap();
    let r = inet6(&mut c, s6, fc1);
    t.unit("ifconfig shmif0 inet6 fc00::1/64", r);
    // Duplicate-address detection: one second on both.
    std::thread::sleep(Duration::from_millis(2500));

    t.set(
        &mut c,
        u4,
        "v4 IF 10.0.0.1",
        IPPROTO_IP,
        MULTICAST_IF,
        &me4.octets(),
    );
    t.get(&mut c, u4, "v4 IF after 10.0.0.1", IPPROTO_IP, MULTICAST_IF);
    t.set(
        &mut c,
        u4,
        "v4 IF index 2",
        IPPROTO_IP,
        MULTICAST_IF,
        &[0, 0, 0, 2],
    );
    t.get(&mut c, u4, "v4 IF after index 2", IPPROTO_IP, MULTICAST_IF);
    t.set(
        &mut c,
        u4,
        "v4 IF index 99",
        IPPROTO_IP,
        MULTICAST_IF,
        &[0, 0, 0, 99],
    );
    t.set(
        &mut c,
        u4,
        "v4 IF any",
        IPPROTO_IP,
        MULTICAST_IF,
        &any4.octets(),
    );
    t.get(&mut c, u4, "v4 IF after any", IPPROTO_IP, MULTICAST_IF);
    let add = |c: &mut Client, g: Ipv4Addr, i: Ipv4Addr| {
        c.setsockopt(u4, IPPROTO_IP, ADD_MEMBERSHIP, &mreq(g, i))
    };
    let r = add(&mut c, g4, me4);
    t.unit("v4 ADD 239.1.2.3 on 10.0.0.1", r);
    let r = add(&mut c, g4, me4);
    t.unit("v4 ADD 239.1.2.3 again", r);
    let r = add(&mut c, g4, any4);
    t.unit("v4 ADD 239.1.2.3 by route", r);
    let r = add(&mut c, g4, nobody);
    t.unit("v4 ADD on nobody's address", r);
    let mut n = 1;
    let r = loop {
        match add(&mut c, Ipv4Addr::new(239, 1, 3, n as u8), me4) {
            Ok(()) if n < 64 => n += 1,
            r => break r.map(|()| n),
        }
    };
    t.step("v4 ADD until refused", r, |n| n.to_string());
    t.0.push(format!("v4 memberships taken: {}", n));
    for k in 1..n {
        let _ = c.setsockopt(
            u4,
            IPPROTO_IP,
            DROP_MEMBERSHIP,
            &mreq(Ipv4Addr::new(239, 1, 3, k as u8), any4),
        );
    }
    let r = c.setsockopt(
        u4,
        IPPROTO_IP,
        DROP_MEMBERSHIP,
        &mreq(Ipv4Addr::new(239, 9, 9, 9), any4),
    );
    t.unit("v4 DROP never joined", r);
    let r = c.setsockopt(u4, IPPROTO_IP, DROP_MEMBERSHIP, &mreq(g4, nobody));
    t.unit("v4 DROP on nobody's address", r);

    // Datagrams to a group, looped back to the sockets bound to the port.
    let r4 = c.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    let r = c.bind(r4, &sin(any4, 4000));
    t.unit("v4 bind receiver *:4000", r);
    let s4 = c.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    let r = c.sendto(s4, b"hello4", 0, Some(&sin(g4, 4000)));
    t.step("v4 send by route", r, |n| n.to_string());
    t.set(
        &mut c,
        s4,
        "v4 sender IF",
        IPPROTO_IP,
        MULTICAST_IF,
        &me4.octets(),
    );
    let r = c.sendto(s4, b"hello4", 0, Some(&sin(g4, 4000)));
    t.step("v4 send to 239.1.2.3", r, |n| n.to_string());
    t.recv_within(&mut c, r4, "v4 receiver got", 1000);
    let r = c.sendto(
        s4,
        b"other",
        0,
        Some(&sin(Ipv4Addr::new(239, 1, 2, 4), 4000)),
    );
    t.step("v4 send to 239.1.2.4", r, |n| n.to_string());
    t.recv_within(&mut c, r4, "v4 receiver got (no member)", 300);
    t.set(
        &mut c,
        s4,
        "v4 sender LOOP 0",
        IPPROTO_IP,
        MULTICAST_LOOP,
        &[0],
    );
    let r = c.sendto(s4, b"noloop", 0, Some(&sin(g4, 4000)));
    t.step("v4 send without loop", r, |n| n.to_string());
    t.recv_within(&mut c, r4, "v4 receiver got (no loop)", 300);
    t.set(
        &mut c,
        s4,
        "v4 sender LOOP 1",
        IPPROTO_IP,
        MULTICAST_LOOP,
        &[1],
    );
    t.set(
        &mut c,
        s4,
        "v4 sender TTL 0",
        IPPROTO_IP,
        MULTICAST_TTL,
        &[0],
    );
    let r = c.sendto(s4, b"ttl0", 0, Some(&sin(g4, 4000)));
    t.step("v4 send with TTL 0", r, |n| n.to_string());
    t.recv_within(&mut c, r4, "v4 receiver got (TTL 0)", 1000);
    t.set(
        &mut c,
        s4,
        "v4 sender TTL 3",
        IPPROTO_IP,
        MULTICAST_TTL,
        &[3],
    );
    let r = c.sendto(s4, b"ttl3", 0, Some(&sin(g4, 4000)));
    t.step("v4 send with TTL 3", r, |n| n.to_string());
    t.recv_within(&mut c, r4, "v4 receiver got (TTL 3)", 1000);

    // IPv6.
    let u6 = c.socket(AF_INET6, SOCK_DGRAM, 0).unwrap();
    let g6: Ipv6Addr = "ff12::1".parse().unwrap();
    t.get(
        &mut c,
        u6,
        "v6 default IPV6_MULTICAST_IF",
        IPPROTO_IPV6,
        MULTICAST_IF,
    );
    t.get(
        &mut c,
        u6,
        "v6 default IPV6_MULTICAST_HOPS",
        IPPROTO_IPV6,
        MULTICAST_TTL,
    );
    t.get(
        &mut c,
        u6,
        "v6 default IPV6_MULTICAST_LOOP",
        IPPROTO_IPV6,
        MULTICAST_LOOP,
    );
    t.get(
        &mut c,
        u6,
        "v6 get IPV6_JOIN_GROUP",
        IPPROTO_IPV6,
        ADD_MEMBERSHIP,
    );
    t.set(
        &mut c,
        u6,
        "v6 HOPS 300",
        IPPROTO_IPV6,
        MULTICAST_TTL,
        &int(300),
    );
    t.set(
        &mut c,
        u6,
        "v6 HOPS u_char",
        IPPROTO_IPV6,
        MULTICAST_TTL,
        &[5],
    );
    t.set(
        &mut c,
        u6,
        "v6 HOPS 5",
        IPPROTO_IPV6,
        MULTICAST_TTL,
        &int(5),
    );
    t.get(&mut c, u6, "v6 HOPS after 5", IPPROTO_IPV6, MULTICAST_TTL);
    t.set(
        &mut c,
        u6,
        "v6 HOPS -1",
        IPPROTO_IPV6,
        MULTICAST_TTL,
        &int(-1),
    );
    t.get(&mut c, u6, "v6 HOPS after -1", IPPROTO_IPV6, MULTICAST_TTL);
    t.set(
        &mut c,
        u6,
        "v6 LOOP 2",
        IPPROTO_IPV6,
        MULTICAST_LOOP,
        &int(2),
    );
    t.set(
        &mut c,
        u6,
        "v6 LOOP 0",
        IPPROTO_IPV6,
        MULTICAST_LOOP,
        &int(0),
    );
    t.get(&mut c, u6, "v6 LOOP after 0", IPPROTO_IPV6, MULTICAST_LOOP);
    t.set(
        &mut c,
        u6,
        "v6 LOOP 1",
        IPPROTO_IPV6,
        MULTICAST_LOOP,
        &int(1),
    );
    t.set(&mut c, u6, "v6 IF 99", IPPROTO_IPV6, MULTICAST_IF, &int(99));
    t.set(&mut c, u6, "v6 IF 2", IPPROTO_IPV6, MULTICAST_IF, &int(2));
    t.get(&mut c, u6, "v6 IF after 2", IPPROTO_IPV6, MULTICAST_IF);
    t.set(&mut c, u6, "v6 IF 0", IPPROTO_IPV6, MULTICAST_IF, &int(0));
    let join = |c: &mut Client, g: Ipv6Addr, i: u32| {
        c.setsockopt(u6, IPPROTO_IPV6, ADD_MEMBERSHIP, &mreq6(g, i))
    };
    let r = join(&mut c, g6, 2);
    t.unit("v6 JOIN ff12::1 on 2", r);
    let r = join(&mut c, g6, 2);
    t.unit("v6 JOIN ff12::1 again", r);
    let r = join(&mut c, fc1, 2);
    t.unit("v6 JOIN unicast", r);
    let r = join(&mut c, "ff12::2".parse().unwrap(), 99);
    t.unit("v6 JOIN on 99", r);
    let r = join(&mut c, "ff12::2".parse().unwrap(), 0);
    t.unit("v6 JOIN ff12::2 by route", r);
    let r = join(&mut c, "ff0e::2".parse().unwrap(), 0);
    t.unit("v6 JOIN ff0e::2 by route", r);
    let r = join(&mut c, "ff02::1:3".parse().unwrap(), 1);
    t.unit("v6 JOIN ff02::1:3 on lo0", r);
    let r = c.setsockopt(u6, IPPROTO_IPV6, ADD_MEMBERSHIP, &mreq6(g6, 2)[..19]);
    t.unit("v6 JOIN 19 bytes", r);
    let r = c.setsockopt(u6, IPPROTO_IPV6, DROP_MEMBERSHIP, &mreq6(g6, 0));
    t.unit("v6 LEAVE ff12::1 any interface", r);
    let r = c.setsockopt(u6, IPPROTO_IPV6, DROP_MEMBERSHIP, &mreq6(g6, 0));
    t.unit("v6 LEAVE ff12::1 again", r);
    let r = join(&mut c, g6, 2);
    t.unit("v6 JOIN ff12::1 on 2 once more", r);

    let r6 = c.socket(AF_INET6, SOCK_DGRAM, 0).unwrap();
    let r = c.bind(r6, &sin6(Ipv6Addr::UNSPECIFIED, 4001));
    t.unit("v6 bind receiver [::]:4001", r);
    let s6b = c.socket(AF_INET6, SOCK_DGRAM, 0).unwrap();
    let r = c.sendto(s6b, b"by-route", 0, Some(&sin6(g6, 4001)));
    t.step("v6 send by route", r, |n| n.to_string());
    t.recv_within(&mut c, r6, "v6 receiver got (by route)", 500);
    t.set(
        &mut c,
        s6b,
        "v6 sender IF 2",
        IPPROTO_IPV6,
        MULTICAST_IF,
        &int(2),
    );
    let r = c.sendto(s6b, b"hello6", 0, Some(&sin6(g6, 4001)));
    t.step("v6 send to ff12::1", r, |n| n.to_string());
    t.recv_within(&mut c, r6, "v6 receiver got", 1000);
    t.set(
        &mut c,
        s6b,
        "v6 sender HOPS 4",
        IPPROTO_IPV6,
        MULTICAST_TTL,
        &int(4),
    );
    let r = c.sendto(
        s6b,
        b"glob6",
        0,
        Some(&sin6("ff0e::7".parse().unwrap(), 4001)),
    );
    t.step("v6 send to ff0e::7", r, |n| n.to_string());
    t.recv_within(&mut c, r6, "v6 receiver got (no member)", 300);
    t.set(
        &mut c,
        s6b,
        "v6 sender LOOP 0",
        IPPROTO_IPV6,
        MULTICAST_LOOP,
        &int(0),
    );
    let r = c.sendto(s6b, b"noloop", 0, Some(&sin6(g6, 4001)));
    t.step("v6 send without loop", r, |n| n.to_string());
    t.recv_within(&mut c, r6, "v6 receiver got (no loop)", 300);

    // The reports repeat within 10 s; then the groups are left.
    std::thread::sleep(Duration::from_millis(11_000));
    let r = c.setsockopt(u4, IPPROTO_IP, DROP_MEMBERSHIP, &mreq(g4, any4));
    t.unit("v4 DROP 239.1.2.3", r);
    let r = c.setsockopt(u6, IPPROTO_IPV6, DROP_MEMBERSHIP, &mreq6(g6, 2));
    t.unit("v6 LEAVE ff12::1", r);
    std::thread::sleep(Duration::from_millis(500));
    for s in [u4, u6, r4, s4, r6, s6b, s6] {
        let _ = c.close(s);
    }
    for line in bus_summary(&dir.join(BUS)) {
        t.0.push(format!("bus: {line}"));
    }
    t
}

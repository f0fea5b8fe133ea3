//! The ICMP probe (issue 16): the server under test has `shmif0` on a bus in its directory
//! (10.0.1.1/24, fc00::1/64) and the probe is two hosts on that bus itself — "me"
//! (10.0.1.2, fc00::2, MAC 02:00:00:00:00:02) and "g" (10.0.1.3, fc00::3, a router) —
//! writing frames and reading what the server answers (ARP and neighbour solicitations
//! are answered, IGMP/MLD/ND left out). It records which ICMP/ICMPv6 errors the server
//! makes, byte for byte but the IP id and header checksum (udp to a closed port, a link
//! broadcast, an unknown protocol, TTL/hop limit running out when forwarding, fragments,
//! errors about errors, no route, reject and blackhole routes, redirects and their knob,
//! the rate limit), and what it does with errors it receives: a connected UDP socket's
//! errno, a raw socket's copy, a redirect's route and `RTM_REDIRECT`, a TCP connection
//! attempt answered by host unreachables. Run against a server started in a directory of
//! its own with `-lrumpnet -lrumpnet_net -lrumpnet_netinet -lrumpnet_netinet6
//! -lrumpnet_shmif`.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use client::Client;

use crate::peer::{ifconfig_shmif, ioctl, sin, sin6, AF_INET, SOCK_DGRAM, SOCK_RAW, SOCK_STREAM};
use crate::sysctl::query;
use crate::transcript::{connect, Transcript};

/// The probe's bus, relative to the server's directory.
pub const BUS: &str = "icmp-bus";
const ME_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const G_MAC: [u8; 6] = [2, 0, 0, 0, 0, 3];
const SENDER: u64 = 0x1c3b_0002;
const AF_INET6: i32 = 24;
const SIOCAIFADDR_IN6: u32 = 0x8080_696b;
const F_SETFL: u32 = 4;
const O_NONBLOCK: u64 = 4;

fn a4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn a6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn csum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn pseudo6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> u16 {
    let mut b = Vec::new();
    b.extend_from_slice(&src.octets());
    b.extend_from_slice(&dst.octets());
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, next]);
    b.extend_from_slice(payload);
    csum(&b)
}

/// An IPv4 packet: `off` is the flags and fragment offset field.
pub fn ip4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, ttl: u8, off: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&0x1c3bu16.to_be_bytes());
    h.extend_from_slice(&off.to_be_bytes());
    h.extend_from_slice(&[ttl, proto, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let c = csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

pub fn udp4(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut u = sport.to_be_bytes().to_vec();
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    let mut b = src.octets().to_vec();
    b.extend_from_slice(&dst.octets());
    b.extend_from_slice(&[0, 17]);
    b.extend_from_slice(&(u.len() as u16).to_be_bytes());
    b.extend_from_slice(&u);
    let c = csum(&b);
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

pub fn icmp4(ty: u8, code: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(data);
    let c = csum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

pub fn ip6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, hlim: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, hlim]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(payload);
    h
}

fn udp6(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut u = sport.to_be_bytes().to_vec();
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    let c = pseudo6(src, dst, 17, &u);
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

pub fn icmp6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ty: u8,
    code: u8,
    rest: [u8; 4],
    data: &[u8],
) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(data);
    let c = pseudo6(src, dst, 58, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The probe's two hosts on the bus.
pub struct Wire {
    bus: shmif::Bus,
    rd: shmif::Reader,
    /// The server's MAC (learnt by ARP).
    pub srv: [u8; 6],
}

impl Wire {
    /// Joins the bus at `path` and learns the server's MAC (10.0.1.1).
    pub fn open(path: &Path) -> Wire {
        let (bus, rd) = shmif::Bus::open(path).expect("the server's bus");
        let mut w = Wire {
            bus,
            rd,
            srv: [0xff; 6],
        };
        let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
        arp.extend_from_slice(&ME_MAC);
        arp.extend_from_slice(&a4("10.0.1.2").octets());
        arp.extend_from_slice(&[0; 6]);
        arp.extend_from_slice(&a4("10.0.1.1").octets());
        let t = Instant::now();
        while w.srv == [0xff; 6] && t.elapsed() < Duration::from_secs(5) {
            w.frame([0xff; 6], ME_MAC, 0x0806, &arp);
            let _ = w.pump(200);
        }
        assert_ne!(w.srv, [0xff; 6], "the server answers ARP");
        w
    }

    fn frame(&self, dst: [u8; 6], src: [u8; 6], ty: u16, payload: &[u8]) {
        let mut f = dst.to_vec();
        f.extend_from_slice(&src);
        f.extend_from_slice(&ty.to_be_bytes());
        f.extend_from_slice(payload);
        self.bus.send(&f, SENDER, 0, 0).expect("bus send");
    }

    /// An IP packet from "me" to the server (link unicast unless `bcast`).
    pub fn send(&self, p: &[u8], bcast: bool) {
        let ty = if p[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
        let dst = if bcast { [0xff; 6] } else { self.srv };
        self.frame(dst, ME_MAC, ty, p);
    }

    /// Reads the bus for `ms` milliseconds, answering ARP and neighbour solicitations for
    /// both hosts: the IP packets seen (IGMP, MLD and ND left out) and the MAC each went to.
    pub fn pump(&mut self, ms: u64) -> Vec<([u8; 6], Vec<u8>)> {
        let mut out = Vec::new();
        let t = Instant::now();
        let mut buf = [0u8; shmif::FRAME_MAX];
        while t.elapsed() < Duration::from_millis(ms) {
            let r = match self.rd.recv(&self.bus, &mut buf) {
                Ok(Some(r)) if r.sender == SENDER => continue,
                Ok(Some(r)) => r.len,
                Ok(None) | Err(_) => {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
            };
            let f = buf[..r].to_vec();
            if f.len() < 14 {
                continue;
            }
            let dst: [u8; 6] = f[0..6].try_into().unwrap();
            let src: [u8; 6] = f[6..12].try_into().unwrap();
            let ty = u16::from_be_bytes([f[12], f[13]]);
            let p = &f[14..];
            match ty {
                0x0806 if p.len() >= 28 => {
                    let tpa = Ipv4Addr::new(p[24], p[25], p[26], p[27]);
                    if p[7] == 2 && tpa == a4("10.0.1.2") {
                        self.srv = src;
                    }
                    let mac = match tpa.octets()[3] {
                        2 => ME_MAC,
                        3 => G_MAC,
                        _ => continue,
                    };
                    if p[7] == 1 && tpa.octets()[..3] == [10, 0, 1] {
                        let mut a = vec![0, 1, 8, 0, 6, 4, 0, 2];
                        a.extend_from_slice(&mac);
                        a.extend_from_slice(&p[24..28]);
                        a.extend_from_slice(&p[8..14]);
                        a.extend_from_slice(&p[14..18]);
                        self.frame(src, mac, 0x0806, &a);
                    }
                }
                0x0800 if p.len() >= 20 && p[9] != 2 => out.push((dst, p.to_vec())),
                0x86dd if p.len() >= 40 => {
                    // MLD reports (behind a hop-by-hop header) and neighbour discovery.
                    if p[6] == 0 && p[24] == 0xff {
                        continue;
                    }
                    if p[6] == 58 && p.len() > 40 && (130..=143).contains(&p[40]) {
                        if p[40] == 135 && p.len() >= 64 {
                            self.advertise(src, p);
                        }
                        continue;
                    }
                    out.push((dst, p.to_vec()));
                }
                _ => {}
            }
        }
        out
    }

    /// [`Wire::pump`] for `ms`, then on for as long as packets keep coming (200 ms of
    /// quiet, 2 s at most): what a step caused, late answers on a loaded host included.
    pub fn settle(&mut self, ms: u64) -> Vec<([u8; 6], Vec<u8>)> {
        let mut got = self.pump(ms);
        let t = Instant::now();
        let mut last = got.len();
        while t.elapsed() < Duration::from_secs(2) {
            got.extend(self.pump(200));
            if got.len() == last {
                break;
            }
            last = got.len();
        }
        got
    }

    /// Answers a neighbour solicitation for fc00::2 or fc00::3.
    fn advertise(&self, to: [u8; 6], ns: &[u8]) {
        let target = Ipv6Addr::from(<[u8; 16]>::try_from(&ns[48..64]).unwrap());
        let mac = if target == a6("fc00::2") {
            ME_MAC
        } else if target == a6("fc00::3") {
            G_MAC
        } else {
            return;
        };
        let from = Ipv6Addr::from(<[u8; 16]>::try_from(&ns[8..24]).unwrap());
        let dst = if from.is_unspecified() {
            a6("ff02::1")
        } else {
            from
        };
        let mut body = target.octets().to_vec();
        body.extend_from_slice(&[2, 1]);
        body.extend_from_slice(&mac);
        let m = icmp6(target, dst, 136, 0, [0x60, 0, 0, 0], &body);
        self.frame(to, mac, 0x86dd, &ip6(target, dst, 58, 255, &m));
    }
}

/// What the server sent: each packet with its link destination, the IP header but for
/// its id and checksum (IPv4), the payload in hex.
fn show(got: &[([u8; 6], Vec<u8>)]) -> String {
    if got.is_empty() {
        return "nothing".into();
    }
    got.iter()
        .map(|(mac, p)| {
            let to = match *mac {
                ME_MAC => "me",
                G_MAC => "g",
                [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] => "bcast",
                _ => "other",
            };
            if p[0] >> 4 == 4 {
                let hl = usize::from(p[0] & 0xf) * 4;
                format!(
                    "[to {to} v4 tos {} len {} off {:#x} ttl {} p {} {}>{} {}]",
                    p[1],
                    u16::from_be_bytes([p[2], p[3]]),
                    u16::from_be_bytes([p[6], p[7]]),
                    p[8],
                    p[9],
                    Ipv4Addr::new(p[12], p[13], p[14], p[15]),
                    Ipv4Addr::new(p[16], p[17], p[18], p[19]),
                    hex(&p[hl.min(p.len())..])
                )
            } else {
                let a = |o: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&p[o..o + 16]).unwrap());
                format!(
                    "[to {to} v6 flow {} plen {} nxt {} hlim {} {}>{} {}]",
                    hex(&p[0..4]),
                    u16::from_be_bytes([p[4], p[5]]),
                    p[6],
                    p[7],
                    a(8),
                    a(24),
                    hex(&p[40..])
                )
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `__sysctl` of one int by name (numbers), writing `new` if given; the old value.
pub fn sysctl_int(c: &mut Client, name: &[i32], new: Option<i32>) -> client::Result<i32> {
    c.sysctl_int(name, new)
}

/// `route add` over a routing socket: `gw` with `RTF_GATEWAY`, and `flags` besides
/// `RTF_UP|RTF_STATIC` (a full-length prefix is a host route, `RTF_HOST`).
pub fn route_add(
    c: &mut Client,
    dst: std::net::IpAddr,
    prefix: u8,
    gw: std::net::IpAddr,
    flags: u32,
) -> client::Result<usize> {
    let s = c.socket(34, SOCK_RAW, 0)?;
    let sa = |a: std::net::IpAddr| match a {
        std::net::IpAddr::V4(v) => sin(v, 0),
        std::net::IpAddr::V6(v) => sin6(v, 0),
    };
    let full = if dst.is_ipv4() { 32 } else { 128 };
    let host = prefix == full;
    let mut m = vec![0u8; 120];
    m[2] = 4;
    m[3] = 1;
    let fl = 0x1 | 0x2 | 0x800 | flags | if host { 0x4 } else { 0 };
    m[8..12].copy_from_slice(&fl.to_le_bytes());
    let addrs: u32 = if host { 3 } else { 7 };
    m[12..16].copy_from_slice(&addrs.to_le_bytes());
    m[20..24].copy_from_slice(&1i32.to_le_bytes());
    let mut sas = vec![sa(dst), sa(gw)];
    if !host {
        let mask = match dst {
            std::net::IpAddr::V4(_) => std::net::IpAddr::V4(Ipv4Addr::from(
                u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0),
            )),
            std::net::IpAddr::V6(_) => std::net::IpAddr::V6(Ipv6Addr::from(
                u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0),
            )),
        };
        sas.push(sa(mask));
    }
    for s in sas {
        m.extend_from_slice(&s);
        m.resize(m.len().div_ceil(8) * 8, 0);
    }
    let len = m.len() as u16;
    m[0..2].copy_from_slice(&len.to_le_bytes());
    let r = c.write(s, &m);
    c.close(s)?;
    r
}

/// The sockaddrs of a routing message after its header, shown.
fn show_sas(m: &[u8]) -> String {
    let mut out = Vec::new();
    let mut o = 120;
    while o < m.len() {
        let l = usize::from(m[o]);
        let sa = &m[o..(o + l.max(1)).min(m.len())];
        out.push(match sa.get(1) {
            Some(2) if sa.len() >= 8 => Ipv4Addr::new(sa[4], sa[5], sa[6], sa[7]).to_string(),
            Some(24) if sa.len() >= 24 => {
                Ipv6Addr::from(<[u8; 16]>::try_from(&sa[8..24]).unwrap()).to_string()
            }
            _ => format!("af{}", sa.get(1).copied().unwrap_or(0)),
        });
        o += if l == 0 { 8 } else { l.div_ceil(8) * 8 };
    }
    out.join(",")
}

/// An RTM_GET for DST with `rtm_flags` 0, as the oracle recorded it: flags and the
/// sockaddrs of the answer. Without RTF_UP, NetBSD's `route_output` (and ours) takes it
/// as an older arp(8)'s question when DST is not the key of the route found: the answer
/// is then the L2 entry, not the route.
pub fn route_get(c: &mut Client, dst: Ipv4Addr) -> client::Result<String> {
    route_get_flags(c, dst, 0)
}

/// `route -n get DST` as route(8) asks it (`RTF_UP` set): the route, never an L2 entry.
#[allow(dead_code)] // used by tests/netinet_icmp.rs, not by the oracle
pub fn route_get_route(c: &mut Client, dst: Ipv4Addr) -> client::Result<String> {
    route_get_flags(c, dst, 0x1)
}

fn route_get_flags(c: &mut Client, dst: Ipv4Addr, flags: i32) -> client::Result<String> {
    let s = c.socket(34, SOCK_RAW, 0)?;
    let mut m = vec![0u8; 120];
    m[2] = 4;
    m[3] = 4;
    m[8..12].copy_from_slice(&flags.to_le_bytes());
    m[12..16].copy_from_slice(&0x1i32.to_le_bytes());
    m[20..24].copy_from_slice(&7i32.to_le_bytes());
    m.extend_from_slice(&sin(dst, 0));
    let len = m.len() as u16;
    m[0..2].copy_from_slice(&len.to_le_bytes());
    let r = c.write(s, &m).and_then(|_| {
        let mut b = vec![0u8; 1024];
        let n = c.read(s, &mut b)?;
        Ok(b[..n].to_vec())
    });
    c.close(s)?;
    let b = r?;
    let flags = i32::from_le_bytes(b[8..12].try_into().unwrap());
    let addrs = i32::from_le_bytes(b[12..16].try_into().unwrap());
    // DST and GATEWAY only: the rest names interfaces and their addresses.
    let sas = show_sas(&b);
    let first_two: Vec<&str> = sas.split(',').take(2).collect();
    Ok(format!(
        "flags {:#x} addrs {:#x} {}",
        flags & !0x40,
        addrs & 0x7,
        first_two.join(",")
    ))
}

/// Whether `route_get`'s answer is a host route.
fn host_route(v: &str) -> String {
    let f = v.split_whitespace().nth(1).unwrap_or("0x0");
    let f = u32::from_str_radix(f.trim_start_matches("0x"), 16).unwrap_or(0);
    (f & 0x4 != 0).to_string()
}

/// The next routing message of type `ty` on the non-blocking routing socket `s`, waiting
/// up to `ms`: type, flags, errno, addrs and sockaddrs, or `none`.
pub fn rtmsg_of(c: &mut Client, s: i32, ty: u8, ms: u64) -> String {
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(ms) {
        let mut b = vec![0u8; 1024];
        match c.read(s, &mut b) {
            Ok(n) if n >= 120 && b[3] == ty => {
                let b = &b[..n];
                return format!(
                    "type {} flags {:#x} errno {} addrs {:#x} {}",
                    b[3],
                    i32::from_le_bytes(b[8..12].try_into().unwrap()),
                    i32::from_le_bytes(b[24..28].try_into().unwrap()),
                    i32::from_le_bytes(b[12..16].try_into().unwrap()),
                    show_sas(b)
                );
            }
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    "none".into()
}

/// The first UDP datagram from the server in `got`.
fn udp_from_server(got: &[([u8; 6], Vec<u8>)]) -> Option<Vec<u8>> {
    got.iter()
        .map(|(_, p)| p)
        .find(|p| (p[0] >> 4 == 4 && p[9] == 17) || (p[0] >> 4 == 6 && p[6] == 17))
        .cloned()
}

/// Runs the probe against the server at `url` whose directory is `dir`.
pub fn run(url: &str, dir: &Path) -> Transcript {
    let mut t = Transcript::default();
    let mut c = connect(url, "icmp-probe");
    let me = a4("10.0.1.2");
    let srv = a4("10.0.1.1");
    t.unit(
        "ifconfig shmif0 10.0.1.1/24",
        ifconfig_shmif(&mut c, "shmif0", BUS, srv),
    );
    let mut w = Wire::open(&dir.join(BUS));
    let ip = std::net::IpAddr::V4;
    t.unit(
        "route add 10.0.2.0/24 10.0.1.3",
        route_add(&mut c, ip(a4("10.0.2.0")), 24, ip(a4("10.0.1.3")), 0),
    );
    t.unit(
        "route add -host 10.9.9.9 127.0.0.1 -reject",
        route_add(&mut c, ip(a4("10.9.9.9")), 32, ip(a4("127.0.0.1")), 0x8),
    );
    t.unit(
        "route add -host 10.9.9.8 127.0.0.1 -blackhole",
        route_add(&mut c, ip(a4("10.9.9.8")), 32, ip(a4("127.0.0.1")), 0x1000),
    );
    let step = |t: &mut Transcript, w: &mut Wire, name: &str, p: Vec<u8>, bcast: bool| {
        w.send(&p, bcast);
        let got = w.settle(400);
        t.step(name, Ok(()), |_| show(&got));
    };
    let closed = udp4(me, srv, 40000, 9, b"hello, closed port!");
    step(
        &mut t,
        &mut w,
        "udp to a closed port",
        ip4(me, srv, 17, 64, 0, &closed),
        false,
    );
    step(
        &mut t,
        &mut w,
        "udp to a closed port, link broadcast",
        ip4(me, srv, 17, 64, 0, &closed),
        true,
    );
    let bc = udp4(me, a4("10.0.1.255"), 40000, 9, b"hello, broadcast!");
    step(
        &mut t,
        &mut w,
        "udp to 10.0.1.255, link unicast",
        ip4(me, a4("10.0.1.255"), 17, 64, 0, &bc),
        false,
    );
    let mut bad = closed.clone();
    bad[6] ^= 0x55;
    step(
        &mut t,
        &mut w,
        "udp with a bad checksum",
        ip4(me, srv, 17, 64, 0, &bad),
        false,
    );
    step(
        &mut t,
        &mut w,
        "protocol 253",
        ip4(me, srv, 253, 64, 0, b"unknown protocol data"),
        false,
    );
    let rdb = &[4, 2, 1, 3];
    t.step(
        "sysctl net.inet.icmp.returndatabytes=7",
        sysctl_int(&mut c, rdb, Some(7)),
        |v| v.to_string(),
    );
    t.step(
        "sysctl net.inet.icmp.returndatabytes=513",
        sysctl_int(&mut c, rdb, Some(513)),
        |v| v.to_string(),
    );
    t.step(
        "sysctl net.inet.icmp.returndatabytes=24",
        sysctl_int(&mut c, rdb, Some(24)),
        |v| v.to_string(),
    );
    step(
        &mut t,
        &mut w,
        "udp to a closed port, returndatabytes 24",
        ip4(me, srv, 17, 64, 0, &closed),
        false,
    );
    t.step(
        "sysctl net.inet.icmp.returndatabytes=8",
        sysctl_int(&mut c, rdb, Some(8)),
        |v| v.to_string(),
    );
    let from0 = udp4(a4("0.0.0.0"), srv, 40000, 9, b"from nowhere");
    step(
        &mut t,
        &mut w,
        "udp to a closed port from 0.0.0.0",
        ip4(a4("0.0.0.0"), srv, 17, 64, 0, &from0),
        false,
    );
    let far = a4("10.0.2.9");
    let echo = icmp4(8, 0, [0x12, 0x34, 0, 1], b"echo with ttl 1");
    step(
        &mut t,
        &mut w,
        "echo request forwarded with ttl 1",
        ip4(me, far, 1, 1, 0, &echo),
        false,
    );
    let err = icmp4(
        3,
        3,
        [0; 4],
        &ip4(far, me, 17, 64, 0, &udp4(far, me, 1, 2, b"x")),
    );
    step(
        &mut t,
        &mut w,
        "icmp error forwarded with ttl 1",
        ip4(me, far, 1, 1, 0, &err),
        false,
    );
    let data = udp4(me, far, 40000, 9, b"fragment data 16");
    step(
        &mut t,
        &mut w,
        "first fragment forwarded with ttl 1",
        ip4(me, far, 17, 1, 0x2000, &data),
        false,
    );
    step(
        &mut t,
        &mut w,
        "non-first fragment forwarded with ttl 1",
        ip4(me, far, 17, 1, 0x0003, &data),
        false,
    );
    let nr = udp4(me, a4("192.0.2.1"), 40000, 9, b"no route here");
    step(
        &mut t,
        &mut w,
        "udp forwarded without a route",
        ip4(me, a4("192.0.2.1"), 17, 64, 0, &nr),
        false,
    );
    let rj = udp4(me, a4("10.9.9.9"), 40000, 9, b"rejected");
    step(
        &mut t,
        &mut w,
        "udp forwarded to a reject route",
        ip4(me, a4("10.9.9.9"), 17, 64, 0, &rj),
        false,
    );
    let bh = udp4(me, a4("10.9.9.8"), 40000, 9, b"blackholed");
    step(
        &mut t,
        &mut w,
        "udp forwarded to a blackhole route",
        ip4(me, a4("10.9.9.8"), 17, 64, 0, &bh),
        false,
    );
    let rd = udp4(me, far, 40000, 9, b"back out the same way");
    step(
        &mut t,
        &mut w,
        "udp forwarded back out its interface",
        ip4(me, far, 17, 64, 0, &rd),
        false,
    );
    let other = a4("10.7.7.7");
    let rd2 = udp4(other, far, 40000, 9, b"from off the link");
    step(
        &mut t,
        &mut w,
        "same from a source off the link",
        ip4(other, far, 17, 64, 0, &rd2),
        false,
    );
    step(
        &mut t,
        &mut w,
        "udp forwarded, link broadcast",
        ip4(me, far, 17, 64, 0, &rd),
        true,
    );
    step(
        &mut t,
        &mut w,
        "echo request with ttl 1, link broadcast",
        ip4(me, far, 1, 1, 0, &echo),
        true,
    );
    let e240 = udp4(me, a4("240.0.0.1"), 40000, 9, b"class e");
    step(
        &mut t,
        &mut w,
        "udp to 240.0.0.1 (class E)",
        ip4(me, a4("240.0.0.1"), 17, 64, 0, &e240),
        false,
    );
    t.step(
        "sysctl net.inet.ip.redirect=0",
        sysctl_int(&mut c, &[4, 2, 0, 2], Some(0)),
        |v| v.to_string(),
    );
    step(
        &mut t,
        &mut w,
        "udp forwarded back out, redirects off",
        ip4(me, far, 17, 64, 0, &rd),
        false,
    );
    t.step(
        "sysctl net.inet.ip.redirect=1",
        sysctl_int(&mut c, &[4, 2, 0, 2], Some(1)),
        |v| v.to_string(),
    );
    t.step(
        "sysctl net.inet.icmp.rediraccept",
        sysctl_int(&mut c, &[4, 2, 1, 5], None),
        |v| v.to_string(),
    );
    t.step(
        "sysctl net.inet.icmp.errppslimit=3",
        sysctl_int(&mut c, &[4, 2, 1, 4], Some(3)),
        |v| v.to_string(),
    );
    std::thread::sleep(Duration::from_millis(1100));
    for k in 0..10u16 {
        let u = udp4(me, srv, 41000 + k, 9, b"rate");
        w.send(&ip4(me, srv, 17, 64, 0, &u), false);
    }
    let got = w.settle(600);
    // NetBSD's rump kernel lets a fourth through at times (`ppsratecheck` on its coarse
    // uptime clock starts a new second within the burst).
    t.step(
        "10 udp to a closed port at once, limit 3",
        Ok(()),
        |_| match got.len() {
            3 | 4 => "3 or 4 errors".to_string(),
            n => format!("{n} errors"),
        },
    );
    t.step(
        "sysctl net.inet.icmp.errppslimit=100",
        sysctl_int(&mut c, &[4, 2, 1, 4], Some(100)),
        |v| v.to_string(),
    );
    std::thread::sleep(Duration::from_millis(1100));
    for k in 0..10u16 {
        let u = udp4(me, srv, 41000 + k, 9, b"rate");
        w.send(&ip4(me, srv, 17, 64, 0, &u), false);
    }
    let got = w.settle(600);
    t.step("10 udp to a closed port at once, limit 100", Ok(()), |_| {
        format!("{} errors", got.len())
    });

    // Errors received: a connected UDP socket, a raw ICMP socket.
    let raw = c.socket(AF_INET, SOCK_RAW, 1).unwrap();
    let _ = c.fcntl(raw, F_SETFL, O_NONBLOCK);
    let u = c.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    t.unit(
        "connect udp to 10.0.1.2:7777",
        c.connect_sock(u, &sin(me, 7777)),
    );
    let answer = |t: &mut Transcript,
                  c: &mut Client,
                  w: &mut Wire,
                  name: &str,
                  from: Ipv4Addr,
                  ty: u8,
                  code: u8| {
        t.unit(&format!("{name}: send"), c.write(u, b"datagram"));
        let got = w.pump(400);
        let Some(d) = udp_from_server(&got) else {
            t.step(&format!("{name}: the datagram"), Ok(()), |_| {
                "not seen".to_string()
            });
            return;
        };
        let hl = usize::from(d[0] & 0xf) * 4;
        let m = icmp4(ty, code, [0; 4], &d[..hl + 8]);
        w.send(&ip4(from, srv, 1, 64, 0, &m), false);
        let _ = w.pump(300);
        t.unit(&format!("{name}: send after it"), c.write(u, b"datagram"));
        let _ = w.pump(200);
        t.unit(&format!("{name}: send again"), c.write(u, b"datagram"));
        let _ = w.pump(200);
    };
    answer(&mut t, &mut c, &mut w, "port unreachable", me, 3, 3);
    answer(
        &mut t,
        &mut c,
        &mut w,
        "host unreachable from 10.0.1.3",
        a4("10.0.1.3"),
        3,
        1,
    );
    answer(&mut t, &mut c, &mut w, "net unreachable", me, 3, 0);
    answer(&mut t, &mut c, &mut w, "protocol unreachable", me, 3, 2);
    answer(
        &mut t,
        &mut c,
        &mut w,
        "time exceeded",
        a4("10.0.1.3"),
        11,
        0,
    );
    answer(&mut t, &mut c, &mut w, "parameter problem", me, 12, 0);
    let mut seen = Vec::new();
    loop {
        let mut b = [0u8; 2048];
        match c.recvfrom(raw, &mut b, 0) {
            Ok((n, _)) if n > 20 => {
                let hl = usize::from(b[0] & 0xf) * 4;
                seen.push(format!("{}/{}", b[hl], b[hl + 1]));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    t.step("raw icmp socket saw", Ok(()), |_| seen.join(" "));
    let _ = c.close(u);

    // Redirects received.
    let rs = c.socket(34, SOCK_RAW, 0).unwrap();
    let _ = c.fcntl(rs, F_SETFL, O_NONBLOCK);
    t.unit(
        "route add 10.0.5.0/24 10.0.1.2",
        route_add(&mut c, ip(a4("10.0.5.0")), 24, ip(me), 0),
    );
    let _ = rtmsg_of(&mut c, rs, 1, 300);
    let redirect = |w: &mut Wire, from: Ipv4Addr, gw: Ipv4Addr, dst: Ipv4Addr| {
        let q = ip4(srv, dst, 17, 64, 0, &udp4(srv, dst, 1234, 9, b"x"));
        let m = icmp4(5, 1, gw.octets(), &q[..28]);
        w.send(&ip4(from, srv, 1, 64, 0, &m), false);
        let _ = w.pump(300);
    };
    redirect(&mut w, me, a4("10.0.1.3"), a4("10.0.5.7"));
    let m = rtmsg_of(&mut c, rs, 6, 1000);
    t.step(
        "redirect for 10.0.5.7 to 10.0.1.3: RTM_REDIRECT",
        Ok(()),
        |_| m,
    );
    t.step(
        "route get 10.0.5.7",
        route_get(&mut c, a4("10.0.5.7")),
        |v| v,
    );
    t.step(
        "route get 10.0.5.8: a host route",
        route_get(&mut c, a4("10.0.5.8")),
        |v| host_route(&v),
    );
    redirect(&mut w, a4("10.0.1.3"), a4("10.0.1.4"), a4("10.0.5.9"));
    let m = rtmsg_of(&mut c, rs, 6, 1000);
    t.step(
        "redirect from 10.0.1.3, not the router: RTM_REDIRECT",
        Ok(()),
        |_| m,
    );
    t.step(
        "route get 10.0.5.9: a host route",
        route_get(&mut c, a4("10.0.5.9")),
        |v| host_route(&v),
    );
    redirect(&mut w, me, a4("192.0.2.7"), a4("10.0.5.10"));
    let m = rtmsg_of(&mut c, rs, 6, 1000);
    t.step(
        "redirect to a gateway off the link: RTM_REDIRECT",
        Ok(()),
        |_| m,
    );
    redirect(&mut w, a4("10.0.1.3"), a4("10.0.1.2"), a4("10.0.5.7"));
    let m = rtmsg_of(&mut c, rs, 6, 1000);
    t.step(
        "redirect of the redirected host route: RTM_REDIRECT",
        Ok(()),
        |_| m,
    );
    t.step(
        "route get 10.0.5.7 again",
        route_get(&mut c, a4("10.0.5.7")),
        |v| v,
    );
    t.step(
        "sysctl net.inet.icmp.rediraccept=0",
        sysctl_int(&mut c, &[4, 2, 1, 5], Some(0)),
        |v| v.to_string(),
    );
    redirect(&mut w, me, a4("10.0.1.3"), a4("10.0.5.11"));
    let m = rtmsg_of(&mut c, rs, 6, 600);
    t.step("redirect ignored: RTM_REDIRECT", Ok(()), |_| m);
    t.step(
        "route get 10.0.5.11: a host route",
        route_get(&mut c, a4("10.0.5.11")),
        |v| host_route(&v),
    );
    t.step(
        "sysctl net.inet.icmp.rediraccept=1",
        sysctl_int(&mut c, &[4, 2, 1, 5], Some(1)),
        |v| v.to_string(),
    );
    let _ = c.close(rs);

    inet6(&mut t, &mut c, &mut w);
    tcp_syn_unreachable(&mut t, url, &mut c, &mut w);
    t
}

/// IPv6: errors made and taken.
fn inet6(t: &mut Transcript, c: &mut Client, w: &mut Wire) {
    let (srv, me, far) = (a6("fc00::1"), a6("fc00::2"), a6("fc00::5:9"));
    let s = c.socket(AF_INET6, SOCK_DGRAM, 0).unwrap();
    let mut r = vec![0u8; 128];
    r[..6].copy_from_slice(b"shmif0");
    r[16..44].copy_from_slice(&sin6(srv, 0));
    r[72..100].copy_from_slice(&sin6(Ipv6Addr::from(u128::MAX << 64), 0));
    r[120..128].copy_from_slice(&[0xff; 8]);
    t.unit(
        "ifconfig shmif0 inet6 fc00::1/64",
        ioctl(c, s, SIOCAIFADDR_IN6, &mut r, &[]),
    );
    let _ = c.close(s);
    // Duplicate-address detection (ifconfig -w), then the neighbour learns "me".
    let _ = w.pump(2500);
    let ip = std::net::IpAddr::V6;
    t.unit(
        "route add -inet6 fc00::5:0/112 fc00::3",
        route_add(c, ip(a6("fc00::5:0")), 112, ip(a6("fc00::3")), 0),
    );
    t.unit(
        "route add -inet6 -host fc00::9:9 ::1 -reject",
        route_add(c, ip(a6("fc00::9:9")), 128, ip(a6("::1")), 0x8),
    );
    let step = |t: &mut Transcript, w: &mut Wire, name: &str, p: Vec<u8>| {
        w.send(&p, false);
        let got = w.settle(400);
        t.step(name, Ok(()), |_| show(&got));
    };
    let u = udp6(me, srv, 40000, 9, b"hello, closed port!");
    step(t, w, "udp6 to a closed port", ip6(me, srv, 17, 64, &u));
    let mc = a6("ff02::1");
    let um = udp6(me, mc, 40000, 9, b"hello, all nodes!");
    step(
        t,
        w,
        "udp6 to ff02::1, closed port",
        ip6(me, mc, 17, 64, &um),
    );
    step(
        t,
        w,
        "next header 253",
        ip6(me, srv, 253, 64, b"unknown next header"),
    );
    let e = icmp6(me, far, 128, 0, [0x12, 0x34, 0, 1], b"echo hlim 1");
    step(
        t,
        w,
        "echo6 to forward, forwarding off",
        ip6(me, far, 58, 1, &e),
    );
    t.step(
        "sysctl net.inet6.ip6.forwarding=1",
        sysctl_int(c, &[4, 24, 41, 1], Some(1)),
        |v| v.to_string(),
    );
    t.step(
        "sysctl net.inet6.ip6.redirect",
        sysctl_int(c, &[4, 24, 41, 2], None),
        |v| v.to_string(),
    );
    t.step(
        "sysctl net.inet6.icmp6.rediraccept",
        sysctl_int(c, &[4, 24, 58, 2], None),
        |v| v.to_string(),
    );
    t.step(
        "sysctl net.inet6.icmp6.errppslimit",
        sysctl_int(c, &[4, 24, 58, 14], None),
        |v| v.to_string(),
    );
    step(t, w, "echo6 forwarded with hlim 1", ip6(me, far, 58, 1, &e));
    let ue = icmp6(
        far,
        me,
        1,
        4,
        [0; 4],
        &ip6(far, me, 17, 64, &udp6(far, me, 1, 2, b"x")),
    );
    step(
        t,
        w,
        "icmp6 error forwarded with hlim 1",
        ip6(me, far, 58, 1, &ue),
    );
    let nr = a6("2001:db8::1");
    let un = udp6(me, nr, 40000, 9, b"no route here");
    step(
        t,
        w,
        "udp6 forwarded without a route",
        ip6(me, nr, 17, 64, &un),
    );
    let rj = a6("fc00::9:9");
    let ur = udp6(me, rj, 40000, 9, b"rejected");
    step(
        t,
        w,
        "udp6 forwarded to a reject route",
        ip6(me, rj, 17, 64, &ur),
    );
    t.step(
        "sysctl net.inet6.ip6.forwarding=0",
        sysctl_int(c, &[4, 24, 41, 1], Some(0)),
        |v| v.to_string(),
    );
    // A connected UDP socket gets the port unreachable.
    let s = c.socket(AF_INET6, SOCK_DGRAM, 0).unwrap();
    t.unit(
        "connect udp6 to [fc00::2]:7777",
        c.connect_sock(s, &sin6(me, 7777)),
    );
    for (name, ty, code) in [
        ("port unreachable", 1u8, 4u8),
        ("address unreachable", 1, 3),
        ("no route", 1, 0),
        ("admin prohibited", 1, 1),
        ("time exceeded", 3, 0),
        ("parameter problem next header", 4, 1),
    ] {
        t.unit(&format!("udp6 {name}: send"), c.write(s, b"datagram"));
        let got = w.pump(400);
        let Some(d) = udp_from_server(&got) else {
            t.step(&format!("udp6 {name}: the datagram"), Ok(()), |_| {
                "not seen".to_string()
            });
            continue;
        };
        let m = icmp6(me, srv, ty, code, [0; 4], &d);
        w.send(&ip6(me, srv, 58, 64, &m), false);
        let _ = w.pump(300);
        t.unit(
            &format!("udp6 {name}: send after it"),
            c.write(s, b"datagram"),
        );
        let _ = w.pump(200);
        t.unit(&format!("udp6 {name}: send again"), c.write(s, b"datagram"));
        let _ = w.pump(200);
    }
    let _ = c.close(s);
}

/// A TCP connection attempt whose every SYN a router answers with host unreachable:
/// how it ends (`net.inet.tcp.keepinit` well above the time it takes).
fn tcp_syn_unreachable(t: &mut Transcript, url: &str, c: &mut Client, w: &mut Wire) {
    let nodes = query(c, &[4, 2, 6]).unwrap_or_default();
    let keepinit = nodes.iter().find(|n| n.name == "keepinit").map(|n| n.num);
    t.step("net.inet.tcp.keepinit exists", Ok(()), |_| {
        keepinit.is_some().to_string()
    });
    let Some(k) = keepinit else { return };
    t.step(
        "sysctl net.inet.tcp.keepinit=8",
        sysctl_int(c, &[4, 2, 6, k], Some(8)),
        |v| v.to_string(),
    );
    let url = url.to_string();
    let h = std::thread::spawn(move || {
        let mut c = connect(&url, "icmp-probe-tcp");
        let s = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        c.connect_sock(s, &sin(a4("10.0.1.2"), 80))
    });
    let start = Instant::now();
    let mut syns = 0;
    while !h.is_finished() && start.elapsed() < Duration::from_secs(90) {
        for (_, p) in w.pump(100) {
            if p[0] >> 4 == 4 && p[9] == 6 {
                let hl = usize::from(p[0] & 0xf) * 4;
                if p.get(hl + 13).is_some_and(|f| f & 0x02 != 0) {
                    syns += 1;
                    let m = icmp4(3, 1, [0; 4], &p[..hl + 8]);
                    w.send(&ip4(a4("10.0.1.3"), a4("10.0.1.1"), 1, 64, 0, &m), false);
                }
            }
        }
    }
    let r = h.join().unwrap();
    if std::env::var_os("ORACLE_TRACE").is_some() {
        eprintln!("{syns} SYNs in {:?}", start.elapsed());
    }
    t.unit("tcp connect, every SYN answered by host unreachable", r);
    let secs = start.elapsed().as_secs_f64();
    t.step("it ended after keepinit (4 s), within 10 s", Ok(()), |_| {
        (3.5..10.0).contains(&secs).to_string()
    });
    t.step(
        "sysctl net.inet.tcp.keepinit=150",
        sysctl_int(c, &[4, 2, 6, k], Some(150)),
        |v| v.to_string(),
    );
    // Nobody answers: ETIMEDOUT.
    t.step(
        "sysctl net.inet.tcp.keepinit=4",
        sysctl_int(c, &[4, 2, 6, k], Some(4)),
        |v| v.to_string(),
    );
    let s = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    t.unit(
        "tcp connect, nobody answers",
        c.connect_sock(s, &sin(a4("10.0.1.3"), 80)),
    );
    let _ = c.close(s);
    t.step(
        "sysctl net.inet.tcp.keepinit=150",
        sysctl_int(c, &[4, 2, 6, k], Some(150)),
        |v| v.to_string(),
    );
}

//! The fragmentation/MTU/MSS probe (issue 16, netinet/src/frag.rs): the knobs
//! (`net.inet.ip.maxfragpackets`, `mtudisc`, `mtudisctimeout`, `net.inet.tcp.mssdflt`,
//! `mss_ifmtu`, `net.inet6.ip6.maxfragpackets`, `maxfrags`, `net.inet.udp.sendspace`) and
//! their refusals, `SIOCSIFMTU`'s ranges on shmif and lo0, the largest UDP datagram and
//! EMSGSIZE beyond, DF with `IP_HDRINCL` beyond the MTU, and datagrams fragmented and
//! reassembled over lo0 with a 1500-byte MTU (UDP, ICMP echo, ICMPv6 echo). Run against a
//! server started in a directory of its own with `-lrumpnet -lrumpnet_net
//! -lrumpnet_netinet -lrumpnet_netinet6 -lrumpnet_shmif` (the bus `oracle-frag-bus` lands
//! there).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use client::{Client, Error};

use crate::peer::{ifconfig_shmif, ioctl, sin, sin6, AF_INET, SOCK_DGRAM, SOCK_RAW};
use crate::sysctl::sysctl;
use crate::transcript::{connect, Transcript};

const AF_INET6: i32 = 24;
/// `_IOW('i', 127, struct ifreq)`, `_IOWR('i', 126, struct ifreq)`.
const SIOCSIFMTU: u32 = 0x8090_697f;
const SIOCGIFMTU: u32 = 0xc090_697e;
const SOL_SOCKET: i32 = 0xffff;
const SO_SNDBUF: i32 = 0x1001;
const SO_RCVBUF: i32 = 0x1002;
const IP_HDRINCL: i32 = 2;

fn ifreq_mtu(name: &str, mtu: i32) -> Vec<u8> {
    let mut r = vec![0u8; 144];
    r[..name.len()].copy_from_slice(name.as_bytes());
    r[16..20].copy_from_slice(&mtu.to_le_bytes());
    r
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

/// What a socket receives within 2 s (non-blocking reads): the lengths of what came,
/// filtered by `keep`.
fn recv_lens(c: &mut Client, s: i32, keep: impl Fn(&[u8]) -> bool) -> Vec<usize> {
    let mut out = Vec::new();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until && out.is_empty() {
        let mut buf = vec![0u8; 70000];
        match c.recvfrom(s, &mut buf, 0x80) {
            Ok((n, _)) if keep(&buf[..n]) => out.push(n),
            Ok(_) => {}
            Err(Error::Errno(35)) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => break,
        }
    }
    out
}

impl Transcript {
    fn knob(&mut self, c: &mut Client, name: &str, mib: &[i32], new: Option<i32>) {
        let nv = new.map(|v| v.to_le_bytes());
        let a = sysctl(c, mib, Some(4), Some(4), nv.as_ref().map(|v| &v[..]));
        let r = if a.errno == 0 {
            Ok(i32::from_le_bytes(a.old[..4].try_into().unwrap()))
        } else {
            Err(Error::Errno(a.errno))
        };
        let step = match new {
            Some(v) => format!("sysctl -w {name}={v}"),
            None => format!("sysctl {name}"),
        };
        self.step(&step, r, |v| v.to_string());
    }

    fn mtu(&mut self, c: &mut Client, s: i32, name: &str, mtu: i32) {
        let mut r = ifreq_mtu(name, mtu);
        let res = ioctl(c, s, SIOCSIFMTU, &mut r, &[]);
        self.unit(&format!("SIOCSIFMTU {name} {mtu}"), res);
        let mut r = ifreq_mtu(name, 0);
        let res = ioctl(c, s, SIOCGIFMTU, &mut r, &[])
            .map(|()| i32::from_le_bytes(r[16..20].try_into().unwrap()));
        self.step(&format!("SIOCGIFMTU {name}"), res, |v| v.to_string());
    }

    /// A UDP datagram of `n` bytes to `to` (a socket of family `fam` bound to `bind`),
    /// and what the receiver got.
    fn udp(&mut self, c: &mut Client, fam: i32, bind: &[u8], to: &[u8], n: usize, what: &str) {
        self.udp_sndbuf(c, fam, bind, to, n, what, None);
    }

    /// [`Transcript::udp`] with the sender's `SO_SNDBUF` set first when given.
    #[allow(clippy::too_many_arguments)]
    fn udp_sndbuf(
        &mut self,
        c: &mut Client,
        fam: i32,
        bind: &[u8],
        to: &[u8],
        n: usize,
        what: &str,
        sndbuf: Option<i32>,
    ) {
        let r = c.socket(fam, SOCK_DGRAM, 0).unwrap();
        c.bind(r, bind).unwrap();
        c.setsockopt(r, SOL_SOCKET, SO_RCVBUF, &65535i32.to_le_bytes())
            .unwrap();
        let s = c.socket(fam, SOCK_DGRAM, 0).unwrap();
        if let Some(b) = sndbuf {
            c.setsockopt(s, SOL_SOCKET, SO_SNDBUF, &b.to_le_bytes())
                .unwrap();
        }
        let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        let res = c.sendto(s, &data, 0, Some(to));
        let sent = res.is_ok();
        self.step(&format!("udp sendto {n} {what}"), res, |v| v.to_string());
        if sent {
            let got = recv_lens(c, r, |_| true);
            self.0.push(format!("udp received {what}: {got:?}"));
        }
        c.close(s).unwrap();
        c.close(r).unwrap();
    }
}

/// An echo request with our own IP header (ip_len, ip_off host order), DF when `df`.
fn hdrincl_echo(n: usize, to: Ipv4Addr, df: bool) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
    m.extend((0..n).map(|i| i as u8));
    let k = csum(&m);
    m[2..4].copy_from_slice(&k.to_be_bytes());
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&((20 + m.len()) as u16).to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&(if df { 0x4000u16 } else { 0 }).to_le_bytes());
    p.extend_from_slice(&[64, 1, 0, 0]);
    p.extend_from_slice(&to.octets());
    p.extend_from_slice(&to.octets());
    p.extend_from_slice(&m);
    p
}

/// The probe.
pub fn run(url: &str) -> Transcript {
    let mut t = Transcript::default();
    let mut c = connect(url, "oracle_frag");
    let knobs: &[(&str, &[i32])] = &[
        ("net.inet.ip.maxfragpackets", &[4, 2, 0, 18]),
        ("net.inet.ip.mtudisc", &[4, 2, 0, 9]),
        ("net.inet.ip.mtudisctimeout", &[4, 2, 0, 12]),
        ("net.inet.tcp.mssdflt", &[4, 2, 6, 4]),
        ("net.inet.tcp.mss_ifmtu", &[4, 2, 6, 9]),
        ("net.inet.udp.sendspace", &[4, 2, 17, 2]),
        ("net.inet6.ip6.maxfragpackets", &[4, 24, 41, 9]),
        ("net.inet6.ip6.maxfrags", &[4, 24, 41, 41]),
    ];
    for (name, mib) in knobs {
        t.knob(&mut c, name, mib, None);
    }
    t.knob(&mut c, "net.inet.tcp.mssdflt", &[4, 2, 6, 4], Some(31));
    t.knob(&mut c, "net.inet.tcp.mssdflt", &[4, 2, 6, 4], Some(32));
    t.knob(&mut c, "net.inet.tcp.mssdflt", &[4, 2, 6, 4], Some(536));
    t.knob(
        &mut c,
        "net.inet.ip.mtudisctimeout",
        &[4, 2, 0, 12],
        Some(-1),
    );
    t.knob(
        &mut c,
        "net.inet.ip.maxfragpackets",
        &[4, 2, 0, 18],
        Some(-1),
    );
    t.knob(
        &mut c,
        "net.inet.ip.maxfragpackets",
        &[4, 2, 0, 18],
        Some(200),
    );

    // SIOCSIFMTU's ranges.
    let s = c.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    let r = ifconfig_shmif(
        &mut c,
        "shmif0",
        "oracle-frag-bus",
        Ipv4Addr::new(10, 0, 1, 1),
    );
    t.unit("ifconfig shmif0 10.0.1.1", r);
    for mtu in [45, 46, 1501, 1280, 1500] {
        t.mtu(&mut c, s, "shmif0", mtu);
    }
    for mtu in [66393, 66392, -1, 0, 1500] {
        t.mtu(&mut c, s, "lo0", mtu);
    }

    // lo0 at 1500: datagrams are fragmented and reassembled on it.
    let lo = Ipv4Addr::LOCALHOST;
    let any = sin(Ipv4Addr::UNSPECIFIED, 7101);
    t.udp(&mut c, AF_INET, &any, &sin(lo, 7101), 9216, "127.0.0.1");
    t.udp(&mut c, AF_INET, &any, &sin(lo, 7101), 9217, "127.0.0.1");
    t.udp(
        &mut c,
        AF_INET,
        &any,
        &sin(Ipv4Addr::new(10, 0, 1, 1), 7101),
        9216,
        "10.0.1.1",
    );
    let any6 = sin6(Ipv6Addr::UNSPECIFIED, 7102);
    t.udp(
        &mut c,
        AF_INET6,
        &any6,
        &sin6(Ipv6Addr::LOCALHOST, 7102),
        9216,
        "::1",
    );
    t.udp(
        &mut c,
        AF_INET6,
        &any6,
        &sin6(Ipv6Addr::LOCALHOST, 7102),
        9217,
        "::1",
    );
    // SO_SNDBUF raises the largest datagram up to what IP carries.
    let big = Some(65535);
    let to4 = sin(lo, 7101);
    for n in [20000, 41600, 65507, 65508] {
        t.udp_sndbuf(&mut c, AF_INET, &any, &to4, n, "127.0.0.1 sndbuf", big);
    }
    let to6 = sin6(Ipv6Addr::LOCALHOST, 7102);
    for n in [65487, 65488, 65527, 65528] {
        t.udp_sndbuf(&mut c, AF_INET6, &any6, &to6, n, "::1 sndbuf", big);
    }

    // Raw IPv4: DF beyond the MTU is EMSGSIZE; without it the echo is fragmented, answered
    // and the reply put back together.
    let raw = c.socket(AF_INET, SOCK_RAW, 1).unwrap();
    for (o, v) in [(SO_SNDBUF, 65535i32), (SO_RCVBUF, 65535)] {
        c.setsockopt(raw, SOL_SOCKET, o, &v.to_le_bytes()).unwrap();
    }
    let r = c.setsockopt(raw, 0, IP_HDRINCL, &1i32.to_le_bytes());
    t.unit("setsockopt IP_HDRINCL", r);
    // 127.0.0.1's route keeps the MTU lo0 had when it was made (rmx_mtu 33624); our
    // own shmif address's has none: lo0's MTU of now decides.
    let me = Ipv4Addr::new(10, 0, 1, 1);
    let cases = [
        (4000, true, lo),
        (4000, true, me),
        (1472, true, me),
        (1473, true, me),
        (4000, false, me),
    ];
    for (n, df, to) in cases {
        let p = hdrincl_echo(n, to, df);
        let r = c.sendto(raw, &p, 0, Some(&sin(to, 0)));
        let sent = r.is_ok();
        t.step(&format!("raw sendto {n} df {df} {to}"), r, |v| {
            v.to_string()
        });
        if sent {
            let got = recv_lens(&mut c, raw, |b| {
                let hl = usize::from(b[0] & 0xf) * 4;
                b.len() > hl && b[hl] == 0
            });
            t.0.push(format!("raw echo reply {n} df {df} {to}: {got:?}"));
        }
    }
    c.close(raw).unwrap();
    // ICMPv6 echo of 4000 bytes to ::1 over lo0 at 1500.
    let r6 = c.socket(AF_INET6, SOCK_RAW, 58).unwrap();
    for (o, v) in [(SO_SNDBUF, 65535i32), (SO_RCVBUF, 65535)] {
        c.setsockopt(r6, SOL_SOCKET, o, &v.to_le_bytes()).unwrap();
    }
    let mut m = vec![128, 0, 0, 0, 0x12, 0x34, 0, 1];
    m.extend((0..4000).map(|i| i as u8));
    let r = c.sendto(r6, &m, 0, Some(&sin6(Ipv6Addr::LOCALHOST, 0)));
    t.step("icmp6 sendto 4008 ::1", r, |v| v.to_string());
    let got = recv_lens(&mut c, r6, |b| b.first() == Some(&129));
    t.0.push(format!("icmp6 echo reply: {got:?}"));
    c.close(r6).unwrap();
    t.mtu(&mut c, s, "lo0", 33624);
    c.close(s).unwrap();
    t
}

//! The IPv6 packet options probe (RFC 3542, issue 16): the sticky `IPV6_PKTINFO` option
//! of UDP and raw sockets (its errno, its getsockopt answer, the source it makes a
//! connect choose, with the link-local zone in `sin6_scope_id`), and sends with
//! `IPV6_PKTINFO`/`IPV6_HOPLIMIT` control messages — what `ping6 -I IF` does: an echo
//! request to ff02::1 out of shmif0 with hop limit 7, answered by the server itself, and
//! the frame on the bus. Run against a server started in directory `dir` with
//! `-lrumpnet -lrumpnet_net -lrumpnet_netinet -lrumpnet_netinet6 -lrumpnet_shmif` (the
//! bus `pktinfo-bus` lands there).

use std::net::Ipv6Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::peer::{ioctl, sin6, SOCK_DGRAM, SOCK_RAW};
use crate::transcript::{connect, Transcript};

const AF_INET6: i32 = 24;
const IPPROTO_IPV6: i32 = 41;
const IPV6_PKTINFO: i32 = 46;
const IPV6_HOPLIMIT: i32 = 47;
const SIOCIFCREATE: u32 = 0x8090_697a;
const SIOCSLINKSTR: u32 = 0x8028_6988;
const SIOCAIFADDR_IN6: u32 = 0x8080_696b;
/// The bus, relative to the server's directory.
pub const BUS: &str = "pktinfo-bus";

fn named(name: &str, len: usize) -> Vec<u8> {
    let mut r = vec![0u8; len];
    r[..name.len()].copy_from_slice(name.as_bytes());
    r
}

fn pktinfo(a: Ipv6Addr, index: u32) -> Vec<u8> {
    let mut v = a.octets().to_vec();
    v.extend_from_slice(&index.to_le_bytes());
    v
}

/// One control message (`cmsghdr`, data at 16, padded to 8).
fn cmsg(level: i32, ty: i32, data: &[u8]) -> Vec<u8> {
    let mut m = ((16 + data.len()) as u32).to_le_bytes().to_vec();
    m.extend_from_slice(&[0; 4]);
    m[4..8].copy_from_slice(&level.to_le_bytes());
    m.extend_from_slice(&ty.to_le_bytes());
    m.extend_from_slice(&[0; 4]);
    m.extend_from_slice(data);
    while !m.len().is_multiple_of(8) {
        m.push(0);
    }
    m
}

/// A sockaddr_in6 as the transcript shows it: link-local addresses by shape.
fn show(s: &[u8]) -> String {
    if s.len() < 28 {
        return format!("{} bytes", s.len());
    }
    let a = Ipv6Addr::from(<[u8; 16]>::try_from(&s[8..24]).unwrap());
    let shown = if a.segments()[0] == 0xfe80 {
        "fe80::(link-local)".to_string()
    } else {
        a.to_string()
    };
    let port = match u16::from_be_bytes([s[2], s[3]]) {
        p @ 0..=1023 => p.to_string(),
        _ => "anonymous".into(),
    };
    format!(
        "len {} port {port} {shown} scope {}",
        s[0],
        u32::from_le_bytes(s[24..28].try_into().unwrap())
    )
}

/// The ICMPv6 echo requests on the bus: destination MAC, hop limit, source by shape.
fn echo_frames(bus: &Path) -> Vec<String> {
    let Ok(b) = shmif::Bus::open_readonly(bus) else {
        return vec!["no bus".into()];
    };
    let mut out = Vec::new();
    for p in b.packets().unwrap_or_default() {
        let f = &p.frame;
        if f.len() < 14 + 48 || f[12..14] != [0x86, 0xdd] || f[14 + 6] != 58 || f[14 + 40] != 128 {
            continue;
        }
        let ip = &f[14..];
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap());
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap());
        out.push(format!(
            "echo request to {dst} ({:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}) hlim {} from {}",
            f[0],
            f[1],
            f[2],
            f[3],
            f[4],
            f[5],
            ip[7],
            if src.segments()[0] == 0xfe80 {
                "fe80::(link-local)".to_string()
            } else {
                src.to_string()
            }
        ));
    }
    out
}

/// Runs the probe against the server at `url`, started in `dir`.
pub fn run(url: &str, dir: &Path) -> Transcript {
    let mut t = Transcript::default();
    let mut c = connect(url, "oracle-pktinfo");
    let s = c
        .socket(AF_INET6, SOCK_DGRAM, 0)
        .expect("an AF_INET6 socket");
    let r = ioctl(&mut c, s, SIOCIFCREATE, &mut named("shmif0", 144), &[]);
    t.unit("create shmif0", r);
    let path = format!("{BUS}\0");
    let mut d = named("shmif0", 40);
    d[24..32].copy_from_slice(&(path.len() as u64).to_le_bytes());
    d[32..40].copy_from_slice(&client::addr_of(path.as_bytes()).to_le_bytes());
    let r = ioctl(&mut c, s, SIOCSLINKSTR, &mut d, path.as_bytes());
    t.unit("linkstr shmif0", r);
    let fc1: Ipv6Addr = "fc00::1".parse().unwrap();
    let mut a = named("shmif0", 128);
    a[16..44].copy_from_slice(&sin6(fc1, 0));
    a[72..100].copy_from_slice(&sin6(Ipv6Addr::from(!0u128 << 64), 0));
    a[120..128].copy_from_slice(&[0xff; 8]);
    let r = ioctl(&mut c, s, SIOCAIFADDR_IN6, &mut a, &[]);
    t.unit("inet6 fc00::1/64", r);
    std::thread::sleep(Duration::from_millis(2500));

    // The sticky option on a UDP socket.
    let u = c.socket(AF_INET6, SOCK_DGRAM, 0).unwrap();
    let r = c.getsockopt(u, IPPROTO_IPV6, IPV6_PKTINFO, 64);
    t.step("udp get IPV6_PKTINFO unset", r, |v| {
        format!("len {} zero {}", v.len(), v.iter().all(|b| *b == 0))
    });
    let bad: [(&str, Vec<u8>); 5] = [
        ("19 bytes", pktinfo(Ipv6Addr::UNSPECIFIED, 2)[..19].to_vec()),
        ("interface 99", pktinfo(Ipv6Addr::UNSPECIFIED, 99)),
        ("not our address", pktinfo("fc00::9".parse().unwrap(), 0)),
        ("our address on lo0", pktinfo(fc1, 1)),
        ("::1 on shmif0", pktinfo(Ipv6Addr::LOCALHOST, 2)),
    ];
    for (name, v) in bad {
        let r = c.setsockopt(u, IPPROTO_IPV6, IPV6_PKTINFO, &v);
        t.unit(&format!("udp set IPV6_PKTINFO {name}"), r);
    }
    let r = c.setsockopt(
        u,
        IPPROTO_IPV6,
        IPV6_PKTINFO,
        &pktinfo(Ipv6Addr::UNSPECIFIED, 2),
    );
    t.unit("udp set IPV6_PKTINFO shmif0", r);
    let r = c.getsockopt(u, IPPROTO_IPV6, IPV6_PKTINFO, 64);
    t.step("udp get IPV6_PKTINFO", r, |v| {
        format!(
            "len {} index {}",
            v.len(),
            u32::from_le_bytes(v[16..20].try_into().unwrap())
        )
    });
    let r = c.connect_sock(u, &sin6("fe80::1234".parse().unwrap(), 9));
    t.unit("udp connect fe80::1234.9", r);
    let r = c.getsockname(u);
    t.step("udp getsockname", r, |n| show(&n));
    let r = c.getpeername(u);
    t.step("udp getpeername", r, |n| show(&n));
    let u2 = c.socket(AF_INET6, SOCK_DGRAM, 0).unwrap();
    let r = c.setsockopt(u2, IPPROTO_IPV6, IPV6_PKTINFO, &pktinfo(fc1, 2));
    t.unit("udp2 set IPV6_PKTINFO fc00::1", r);
    let r = c.connect_sock(u2, &sin6("fe80::1234".parse().unwrap(), 9));
    t.unit("udp2 connect fe80::1234.9", r);
    let r = c.getsockname(u2);
    t.step("udp2 getsockname", r, |n| show(&n));
    let u3 = c.socket(AF_INET6, SOCK_DGRAM, 0).unwrap();
    let r = c.setsockopt(
        u3,
        IPPROTO_IPV6,
        IPV6_PKTINFO,
        &pktinfo("fc00::9".parse().unwrap(), 0),
    );
    t.unit("udp3 set IPV6_PKTINFO fc00::9 (not ours)", r);
    let r = c.connect_sock(u3, &sin6("fc00::2".parse().unwrap(), 9));
    t.unit("udp3 connect fc00::2.9", r);
    let r = c.sendto(u3, b"x", 0, None);
    t.step("udp3 send", r, |n| n.to_string());
    let _ = c.close(u3);

    // ping6 -I shmif0 -h 7 ff02::1: the options in control messages.
    let raw = c.socket(AF_INET6, SOCK_RAW, 58).unwrap();
    let one = 1i32.to_le_bytes();
    let r = c.setsockopt(raw, IPPROTO_IPV6, 36, &one); // IPV6_RECVPKTINFO
    t.unit("raw IPV6_RECVPKTINFO", r);
    let echo = [128u8, 0, 0, 0, 0x77, 0x77, 0, 1, b'p', b'k', b't'];
    let to = sin6("ff02::1".parse().unwrap(), 0);
    let mut ctl = cmsg(
        IPPROTO_IPV6,
        IPV6_PKTINFO,
        &pktinfo(Ipv6Addr::UNSPECIFIED, 2),
    );
    ctl.extend(cmsg(IPPROTO_IPV6, IPV6_HOPLIMIT, &7i32.to_le_bytes()));
    let r = c.sendmsg(raw, &[&echo], Some(&to), &ctl, 0);
    t.step("raw sendmsg ff02::1 pktinfo shmif0 hoplimit 7", r, |n| {
        n.to_string()
    });
    let end = Instant::now() + Duration::from_secs(2);
    let mut buf = [0u8; 256];
    let r = loop {
        match c.recvmsg(raw, &mut buf, 64, 0x80) {
            Ok(m) if m.n >= 8 && buf[0] == 129 && buf[4..8] == echo[4..8] => break Ok(m),
            Ok(_) => {}
            Err(e) if e.errno() == Some(35) && Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => break Err(e),
        }
    };
    t.step("raw reply", r, |m| {
        let ifindex = m
            .control
            .get(16 + 16..16 + 20)
            .map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap()));
        format!("from {} pktinfo ifindex {ifindex}", show(&m.name))
    });
    let bad_ctl: [(&str, Vec<u8>); 4] = [
        (
            "hoplimit 300",
            cmsg(IPPROTO_IPV6, IPV6_HOPLIMIT, &300i32.to_le_bytes()),
        ),
        (
            "pktinfo interface 99",
            cmsg(
                IPPROTO_IPV6,
                IPV6_PKTINFO,
                &pktinfo(Ipv6Addr::UNSPECIFIED, 99),
            ),
        ),
        ("IPv6 type 99", cmsg(IPPROTO_IPV6, 99, &[0; 4])),
        ("cmsg_len 8", {
            let mut m = cmsg(IPPROTO_IPV6, IPV6_HOPLIMIT, &7i32.to_le_bytes());
            m[..4].copy_from_slice(&8u32.to_le_bytes());
            m
        }),
    ];
    for (name, ctl) in bad_ctl {
        let r = c.sendmsg(raw, &[&echo], Some(&to), &ctl, 0);
        t.step(&format!("raw sendmsg {name}"), r, |n| n.to_string());
    }
    std::thread::sleep(Duration::from_millis(300));
    for f in echo_frames(&dir.join(BUS)) {
        t.0.push(format!("bus: {f}"));
    }
    for x in [u, u2, raw, s] {
        let _ = c.close(x);
    }
    t
}

//! IPv6 on virtif (`-lrumpnet_virtif -lrumpnet_netinet6`, issue 16 §4): a rump kernel's
//! `virt0` on a Linux tap in a network namespace the test makes itself (as tests/virtif.rs
//! does for IPv4): the link-local address it gets when it comes up (EUI-64 of its MAC),
//! duplicate-address detection, neighbour discovery with Linux both ways, ICMPv6 echo
//! both ways to the global and the link-local addresses, each side's neighbour entry
//! for the other.
//!
//! Needs root and `/dev/net/tun` (CI has both); without them it prints SKIPPED and passes.

mod common;
#[path = "virtif/netns.rs"]
mod netns;
#[path = "netinet/peer.rs"]
mod peer;

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use client::{Client, Error};
use common::TempDir;
use netns::{unsupported, InNs, Netns};
use peer::*;

/// The server's components.
const VIRTIF6: &[&str] = &[
    "-lrumpnet",
    "-lrumpnet_net",
    "-lrumpnet_netinet",
    "-lrumpnet_netinet6",
    "-lrumpnet_virtif",
];

const AF_INET6: i32 = 24;
const SIOCIFCREATE: u32 = 0x8090_697a;
/// `_IOW('i', 107, struct in6_aliasreq)`.
const SIOCAIFADDR_IN6: u32 = 0x8080_696b;
/// `_IOWR('i', 73, struct in6_ifreq)`.
const SIOCGIFAFLAG_IN6: u32 = 0xc120_6949;
/// `_IOWR('i', 78, struct in6_nbrinfo)`.
const SIOCGNBRINFO_IN6: u32 = 0xc038_694e;

fn named(name: &str, len: usize) -> Vec<u8> {
    let mut r = vec![0u8; len];
    r[..name.len()].copy_from_slice(name.as_bytes());
    r
}

/// ICMPv6 echo from the rump kernel over a raw socket (the kernel fills the checksum),
/// out of interface `ifindex` when not 0 (`IPV6_PKTINFO`, as `ping6 -I`): replies of
/// `count`.
fn rump_ping6(c: &mut Client, to: Ipv6Addr, ifindex: u32, count: u16) -> Result<u16, Error> {
    let s = c.socket(AF_INET6, SOCK_RAW, 58)?;
    if ifindex != 0 {
        let mut pi = Ipv6Addr::UNSPECIFIED.octets().to_vec();
        pi.extend_from_slice(&ifindex.to_le_bytes());
        c.setsockopt(s, 41, 46, &pi)?;
    }
    let mut got = 0;
    for seq in 0..count {
        let mut m = vec![128, 0, 0, 0, 0x66, 0x66];
        m.extend_from_slice(&seq.to_be_bytes());
        m.extend_from_slice(b"virtif6");
        c.sendto(s, &m, 0, Some(&sin6(to, 0)))?;
        let until = Instant::now() + Duration::from_secs(3);
        let mut buf = [0u8; 256];
        while Instant::now() < until {
            match c.recvfrom(s, &mut buf, 0x80) {
                Ok((n, from)) if n >= 8 && buf[0] == 129 && buf[4..8] == m[4..8] => {
                    assert_eq!(from[8..24], to.octets());
                    got += 1;
                    break;
                }
                Ok(_) => {}
                Err(Error::Errno(35)) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(e),
            }
        }
    }
    c.close(s)?;
    Ok(got)
}

/// ICMPv6 echo from Linux (a raw socket in the namespace; Linux fills the checksum) to
/// `to` on interface `scope`: replies of `count`.
fn linux_ping6(to: Ipv6Addr, scope: u32, count: u16) -> u16 {
    // SAFETY: plain system calls on a descriptor we own and close.
    unsafe {
        let s = libc::socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6);
        assert!(s >= 0, "raw socket: {}", std::io::Error::last_os_error());
        let tv = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        libc::setsockopt(
            s,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        );
        let mut sa: libc::sockaddr_in6 = std::mem::zeroed();
        sa.sin6_family = libc::AF_INET6 as u16;
        sa.sin6_addr.s6_addr = to.octets();
        sa.sin6_scope_id = scope;
        let mut got = 0;
        for seq in 0..count {
            let mut m = vec![128u8, 0, 0, 0, 0x7e, 0x57];
            m.extend_from_slice(&seq.to_be_bytes());
            m.extend_from_slice(&[0xa5; 32]);
            let n = libc::sendto(
                s,
                m.as_ptr().cast(),
                m.len(),
                0,
                (&sa as *const libc::sockaddr_in6).cast(),
                std::mem::size_of::<libc::sockaddr_in6>() as u32,
            );
            assert_eq!(n, m.len() as isize, "{}", std::io::Error::last_os_error());
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(2) {
                let mut buf = [0u8; 2048];
                let n = libc::recv(s, buf.as_mut_ptr().cast(), buf.len(), 0);
                if n < 0 {
                    break;
                }
                let n = n as usize;
                if n >= 8 && buf[0] == 129 && buf[4..8] == m[4..8] && buf[8..n] == m[8..] {
                    got += 1;
                    break;
                }
            }
        }
        libc::close(s);
        got
    }
}

#[test]
fn virt0_ipv6_link_local_ndp_and_echo_with_linux() {
    if let Some(why) = unsupported() {
        println!("SKIPPED: {why}");
        return;
    }
    let ns = Netns::new("v6");
    ns.exec(&["ip", "link", "set", "lo", "up"]);
    ns.exec(&["ip", "tuntap", "add", "dev", "tun0", "mode", "tap"]);
    ns.exec(&["ip", "addr", "add", "fd77::1/64", "dev", "tun0", "nodad"]);
    ns.exec(&["ip", "link", "set", "tun0", "up"]);
    let dir = TempDir::new("virtif6");
    let srv = InNs::start(&ns, &dir, VIRTIF6, Some("tun0"));
    let mut c = common::connect_retry(&srv.url, "virtif6");

    let s = c.socket(AF_INET6, SOCK_DGRAM, 0).unwrap();
    ioctl(&mut c, s, SIOCIFCREATE, &mut named("virt0", 144), &[]).unwrap();
    let me: Ipv6Addr = "fd77::2".parse().unwrap();
    let mut r = named("virt0", 128);
    r[16..44].copy_from_slice(&sin6(me, 0)[..28]);
    r[72..100].copy_from_slice(&sin6(Ipv6Addr::from(!0u128 << 64), 0)[..28]);
    r[120..128].copy_from_slice(&[0xff; 8]);
    ioctl(&mut c, s, SIOCAIFADDR_IN6, &mut r, &[]).unwrap();
    // Tentative at first, then ready (nobody on the tap has it).
    let flags = |c: &mut Client, a: Ipv6Addr| {
        let mut q = named("virt0", 16 + 272);
        q[16..44].copy_from_slice(&sin6(a, 0)[..28]);
        ioctl(c, s, SIOCGIFAFLAG_IN6, &mut q, &[]).unwrap();
        i32::from_le_bytes(q[16..20].try_into().unwrap())
    };
    assert_eq!(flags(&mut c, me) & 2, 2, "tentative first");
    let t = Instant::now();
    while flags(&mut c, me) != 0 {
        assert!(t.elapsed() < Duration::from_secs(5), "DAD never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The link-local address: fe80:: and the EUI-64 of virt0's MAC (b2:0a:RR:0b:0e:00).
    let linux_ll = {
        let out = ns.exec(&["ip", "-6", "addr", "show", "dev", "tun0", "scope", "link"]);
        let a = out
            .split_whitespace()
            .skip_while(|w| *w != "inet6")
            .nth(1)
            .expect("Linux's link-local address");
        a.split('/').next().unwrap().parse::<Ipv6Addr>().unwrap()
    };
    let out = ns.exec(&["cat", "/sys/class/net/tun0/ifindex"]);
    let tun_index: u32 = out.trim().parse().unwrap();

    // rump → Linux: to its global and its link-local address (out of virt0, index 2).
    assert_eq!(
        rump_ping6(&mut c, "fd77::1".parse().unwrap(), 0, 3).unwrap(),
        3
    );
    assert_eq!(rump_ping6(&mut c, linux_ll, 2, 2).unwrap(), 2);
    // Our neighbour entry for Linux: its MAC, confirmed (REACHABLE).
    let mut q = named("virt0", 56);
    q[16..32].copy_from_slice(&"fd77::1".parse::<Ipv6Addr>().unwrap().octets());
    ioctl(&mut c, s, SIOCGNBRINFO_IN6, &mut q, &[]).unwrap();
    assert_eq!(i32::from_le_bytes(q[44..48].try_into().unwrap()), 1);

    // Linux → rump: to the global address and to the link-local one (whose id is the
    // EUI-64 of our MAC, which Linux learns by neighbour discovery).
    assert_eq!(ns.within(move || linux_ping6(me, 0, 3)), 3);
    let neigh = ns.exec(&["ip", "-6", "neigh", "show", "dev", "tun0"]);
    let line = neigh
        .lines()
        .find(|l| l.starts_with("fd77::2 "))
        .unwrap_or_else(|| panic!("Linux has no entry for fd77::2: {neigh}"));
    let mac = line
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .unwrap()
        .to_string();
    assert!(mac.starts_with("b2:0a:"), "{line}");
    assert!(mac.ends_with(":0b:0e:00"), "{line}");
    let m: Vec<u8> = mac
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect();
    let ll = Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 2,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ]);
    assert_eq!(ns.within(move || linux_ping6(ll, tun_index, 2)), 2);
    let _ = c.close(s);
    drop(srv);
}

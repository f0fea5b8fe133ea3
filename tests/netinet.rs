//! The TCP/IP faction (issue 16) between real servers: two of ours on one shmif bus in a
//! temp dir (ifconfig by ioctl, ping over a raw ICMP socket, TCP both ways, UDP), sockets
//! within one server over lo0, the bus path relative to the server's directory, and what
//! NetBSD's tools read (getifaddrs through net.route, the knobs).

mod common;
#[path = "netinet/peer.rs"]
mod peer;

use std::net::Ipv4Addr;

use common::{InDir, Server, TempDir};
use peer::*;

const LIBS: &[&str] = &[
    "-lrumpnet",
    "-lrumpnet_net",
    "-lrumpnet_netinet",
    "-lrumpnet_shmif",
];

/// A server with [`LIBS`] started in `dir` (where relative bus paths land).
fn start(dir: &TempDir, name: &str) -> InDir {
    InDir::start(dir, name, LIBS)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn two_servers_on_one_bus_ping_and_talk_tcp_and_udp() {
    let dir = TempDir::new("netinet-bus");
    let a = start(&dir, "a.sock");
    let b = start(&dir, "b.sock");
    let (mut ca, mut cb) = (a.client(), b.client());
    // The linkstr is relative to the server's directory, as NetBSD's.
    ifconfig_shmif(&mut ca, "shmif0", "bus1", ip("10.0.1.1")).unwrap();
    ifconfig_shmif(&mut cb, "shmif0", "bus1", ip("10.0.1.2")).unwrap();
    let meta = std::fs::metadata(dir.path().join("bus1")).unwrap();
    assert_eq!(meta.len(), 1 << 20, "the bus file is 1 MiB");
    // An address brings the interface up: UP|BROADCAST|RUNNING|SIMPLEX|MULTICAST.
    assert_eq!(if_flags(&mut ca, "shmif0").unwrap(), 0x8843);

    // A routing socket hears of the next address (RTM_NEWADDR, then RTM_IFINFO).
    let rs = ca.socket(34, SOCK_RAW, 0).unwrap();
    assert_eq!(ping(&mut ca, ip("10.0.1.2"), 3).unwrap(), (3, 255));
    assert_eq!(ping(&mut cb, ip("10.0.1.1"), 2).unwrap(), (2, 255));
    // ARP: b's address learnt, ours permanent (arp -an's view).
    let arp = arp_entries(&mut ca).unwrap();
    let mac_b = &arp
        .iter()
        .find(|e| e.0 == ip("10.0.1.2"))
        .expect("b in a's table")
        .1;
    assert_eq!(
        (mac_b.len(), &mac_b[..2]),
        (6, &[0xb2, 0xa0][..]),
        "shmif's b2:a0"
    );
    assert!(
        arp.iter().any(|e| e.0 == ip("10.0.1.1") && e.2),
        "our own, permanent"
    );
    assert!(arp.iter().any(|e| e.0 == ip("10.0.1.2") && !e.2));
    let mut a2 = vec![0u8; 64];
    a2[..6].copy_from_slice(b"shmif0");
    a2[16..32].copy_from_slice(&sin(ip("10.0.9.1"), 0));
    let so = ca.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    ioctl(&mut ca, so, 0x8040_691a, &mut a2, &[]).unwrap(); // SIOCAIFADDR
    let mut m = [0u8; 512];
    let n = ca.read(rs, &mut m).unwrap();
    assert_eq!(
        (m[2], m[3], n),
        (4, 0xc, usize::from(u16::from_le_bytes([m[0], m[1]])))
    );
    let n = ca.read(rs, &mut m).unwrap();
    assert_eq!((m[3], n), (0x14, 176), "RTM_IFINFO");
    // Nobody there: no reply (ARP goes unanswered).
    assert_eq!(ping(&mut ca, ip("10.0.1.9"), 1).unwrap().0, 0);

    // TCP both ways, 300 KB each: b serves, a connects; then the other way.
    for (srv, cli, to) in [(&b, &a, "10.0.1.2"), (&a, &b, "10.0.1.1")] {
        let mut cs = srv.client();
        let l = tcp_listen(&mut cs, 7).unwrap();
        let t = std::thread::spawn(move || tcp_echo_once(&mut cs, l).unwrap());
        let mut cc = cli.client();
        tcp_echo_client(&mut cc, ip(to), 7, 300_000).unwrap();
        assert_eq!(t.join().unwrap(), 300_000);
    }

    // UDP: a datagram to b's bound port and the answer back to a's source port.
    let ub = cb.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    cb.bind(ub, &sin(Ipv4Addr::UNSPECIFIED, 5000)).unwrap();
    let ua = ca.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    ca.sendto(ua, b"over the bus", 0, Some(&sin(ip("10.0.1.2"), 5000)))
        .unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = cb.recvfrom(ub, &mut buf, 0).unwrap();
    assert_eq!(&buf[..n], b"over the bus");
    assert_eq!(
        &from[..8],
        &sin(ip("10.0.1.1"), u16::from_be_bytes([from[2], from[3]]))[..8]
    );
    cb.sendto(ub, b"and back", 0, Some(&from)).unwrap();
    let (n, from) = ca.recvfrom(ua, &mut buf, 0).unwrap();
    assert_eq!(
        (&buf[..n], &from[..]),
        (&b"and back"[..], &sin(ip("10.0.1.2"), 5000)[..])
    );

    // A connected UDP socket hears of the closed port (ICMP port unreachable from b's
    // stack): its next receive is ECONNREFUSED, as NetBSD's in_pcbnotify makes it.
    let uc = ca.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    ca.connect_sock(uc, &sin(ip("10.0.1.2"), 9)).unwrap();
    ca.write(uc, b"anyone?").unwrap();
    let e = ca.read(uc, &mut buf).unwrap_err();
    assert!(matches!(e, client::Error::Errno(61)), "ECONNREFUSED: {e}");
    // A non-blocking connect to nobody: EINPROGRESS, and a write meanwhile ENOTCONN.
    let s = ca.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    ca.fcntl(s, 4, 4).unwrap(); // F_SETFL O_NONBLOCK
    let e = ca.connect_sock(s, &sin(ip("10.0.1.9"), 7)).unwrap_err();
    assert!(matches!(e, client::Error::Errno(36)), "EINPROGRESS: {e}");
    let e = ca.write(s, b"early").unwrap_err();
    assert!(matches!(e, client::Error::Errno(57)), "ENOTCONN: {e}");
    let e = ca.connect_sock(s, &sin(ip("10.0.1.9"), 7)).unwrap_err();
    assert!(matches!(e, client::Error::Errno(37)), "EALREADY: {e}");
    ca.close(s).unwrap();
    // A closed port: connection refused (b's RST).
    let s = ca.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    let e = ca.connect_sock(s, &sin(ip("10.0.1.2"), 9)).unwrap_err();
    assert!(matches!(e, client::Error::Errno(61)), "ECONNREFUSED: {e}");
    // No route: EHOSTUNREACH for a connection and a datagram, as NetBSD
    // (tests/oracle/inet.netbsd).
    let s = ca.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    let e = ca.connect_sock(s, &sin(ip("192.0.2.1"), 7)).unwrap_err();
    assert!(matches!(e, client::Error::Errno(65)), "EHOSTUNREACH: {e}");
    let e = ca
        .sendto(ua, b"x", 0, Some(&sin(ip("192.0.2.1"), 7)))
        .unwrap_err();
    assert!(matches!(e, client::Error::Errno(65)), "EHOSTUNREACH: {e}");
}

#[test]
fn sockets_within_one_server_over_lo0() {
    let srv = Server::unix(LIBS);
    let mut c = srv.client();
    let l = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    c.bind(l, &sin(Ipv4Addr::LOCALHOST, 8080)).unwrap();
    // NetBSD's errno for a port in use and an address that is not ours.
    let l2 = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    assert!(matches!(
        c.bind(l2, &sin(Ipv4Addr::LOCALHOST, 8080)),
        Err(client::Error::Errno(48))
    ));
    assert!(matches!(
        c.bind(l2, &sin(ip("10.9.9.9"), 1)),
        Err(client::Error::Errno(49))
    ));
    c.listen(l, 1).unwrap();
    let s = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    c.connect_sock(s, &sin(Ipv4Addr::LOCALHOST, 8080)).unwrap();
    let (a, peer) = c.accept(l).unwrap();
    assert_eq!(
        &peer[..8],
        &c.getsockname(s).unwrap()[..8],
        "accept names the connector"
    );
    c.write(s, b"over lo0").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(c.read(a, &mut buf).unwrap(), 8);
    assert_eq!(&buf[..8], b"over lo0");
    c.close(s).unwrap();
    assert_eq!(
        c.read(a, &mut buf).unwrap(),
        0,
        "end of stream after the close"
    );
    assert_eq!(ping(&mut c, Ipv4Addr::LOCALHOST, 1).unwrap(), (1, 255));
    // SIOCGIFCONF: the length with a null buffer, then one ifreq per address (lo0's link
    // address and 127.0.0.1), each 144 bytes.
    let so = c.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    let mut ifc = vec![0u8; 16];
    ioctl(&mut c, so, 0xc010_6926, &mut ifc, &[]).unwrap();
    let need = i32::from_le_bytes(ifc[..4].try_into().unwrap()) as usize;
    assert_eq!(need, 2 * 144);
    let reqs = vec![0u8; need];
    ifc[..4].copy_from_slice(&(need as i32).to_le_bytes());
    ifc[8..16].copy_from_slice(&client::addr_of(&reqs).to_le_bytes());
    let mut reqs = reqs;
    let args = [client::int_arg(so), 0xc010_6926u64, client::addr_of(&ifc)];
    c.syscall(
        54,
        &args,
        &mut [client::Buf::InOut(&mut ifc), client::Buf::Out(&mut reqs)],
    )
    .unwrap();
    assert_eq!(&reqs[..4], b"lo0\0");
    assert_eq!((reqs[17], reqs[144 + 17]), (18, 2), "AF_LINK, then AF_INET");
    assert_eq!(&reqs[144 + 20..144 + 24], &[127, 0, 0, 1]);
    // UDP to ourselves.
    let u = c.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    c.bind(u, &sin(Ipv4Addr::LOCALHOST, 53)).unwrap();
    c.sendto(u, b"self", 0, Some(&sin(Ipv4Addr::LOCALHOST, 53)))
        .unwrap();
    let (n, _) = c.recvfrom(u, &mut buf, 0).unwrap();
    assert_eq!(&buf[..n], b"self");
}

#[test]
fn a_routed_path_through_a_forwarding_server() {
    // a (10.0.1.1) — bus1 — r (10.0.1.2 | 10.0.2.2) — bus2 — b (10.0.2.3): r forwards
    // (net.inet.ip.forwarding is 1 in a rump kernel), a and b route through it.
    let dir = TempDir::new("netinet-route");
    let a = start(&dir, "a.sock");
    let r = start(&dir, "r.sock");
    let b = start(&dir, "b.sock");
    let (mut ca, mut cr, mut cb) = (a.client(), r.client(), b.client());
    ifconfig_shmif(&mut ca, "shmif0", "bus1", ip("10.0.1.1")).unwrap();
    ifconfig_shmif(&mut cr, "shmif0", "bus1", ip("10.0.1.2")).unwrap();
    ifconfig_shmif(&mut cr, "shmif1", "bus2", ip("10.0.2.2")).unwrap();
    ifconfig_shmif(&mut cb, "shmif0", "bus2", ip("10.0.2.3")).unwrap();
    // Unrouted first: EHOSTUNREACH from the raw socket.
    assert!(matches!(
        ping(&mut ca, ip("10.0.2.3"), 1),
        Err(client::Error::Errno(65))
    ));
    // A gateway on no connected network, with no route to the destination either:
    // ENETUNREACH (`ifa_ifwithroute`); with a default route NetBSD takes it (by hand,
    // docs/netinet.md).
    assert!(matches!(
        route_add(&mut ca, ip("10.7.0.0"), 16, ip("10.9.9.9")),
        Err(client::Error::Errno(51))
    ));
    route_add(&mut ca, ip("0.0.0.0"), 0, ip("10.0.1.2")).unwrap();
    route_add(&mut cb, ip("10.0.1.0"), 24, ip("10.0.2.2")).unwrap();
    // The same route again: EEXIST.
    assert!(matches!(
        route_add(&mut ca, ip("0.0.0.0"), 0, ip("10.0.1.2")),
        Err(client::Error::Errno(17))
    ));
    route_add(&mut ca, ip("10.7.0.0"), 16, ip("10.9.9.9")).unwrap();
    // One hop: the reply's TTL is 255 less the router's decrement.
    assert_eq!(ping(&mut ca, ip("10.0.2.3"), 2).unwrap(), (2, 254));
    // TTL 1 dies at the router, which says so (ICMP time exceeded from 10.0.1.2);
    // TTL 2 gets through.
    assert_eq!(
        probe_ttl(&mut ca, ip("10.0.2.3"), 1).unwrap(),
        Some((11, ip("10.0.1.2")))
    );
    assert_eq!(
        probe_ttl(&mut ca, ip("10.0.2.3"), 2).unwrap(),
        Some((0, ip("10.0.2.3")))
    );
    let mut cs = b.client();
    let l = tcp_listen(&mut cs, 80).unwrap();
    let t = std::thread::spawn(move || tcp_echo_once(&mut cs, l).unwrap());
    tcp_echo_client(&mut ca, ip("10.0.2.3"), 80, 100_000).unwrap();
    assert_eq!(t.join().unwrap(), 100_000);
}

#[test]
fn inet6_tcp_over_lo0_with_netinet6() {
    let mut libs = LIBS.to_vec();
    libs.push("-lrumpnet_netinet6");
    let srv = Server::unix(&libs);
    let mut c = srv.client();
    let sin6 = |port: u16| {
        let mut s = vec![28, 24];
        s.extend_from_slice(&port.to_be_bytes());
        s.extend_from_slice(&[0; 4]);
        s.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
        s.extend_from_slice(&[0; 4]);
        s
    };
    let l = c.socket(24, SOCK_STREAM, 0).unwrap();
    c.bind(l, &sin6(8086)).unwrap();
    c.listen(l, 1).unwrap();
    let s = c.socket(24, SOCK_STREAM, 0).unwrap();
    c.connect_sock(s, &sin6(8086)).unwrap();
    let (a, peer) = c.accept(l).unwrap();
    assert_eq!((peer[0], peer[1]), (28, 24), "a sockaddr_in6");
    assert_eq!(&peer[8..24], &std::net::Ipv6Addr::LOCALHOST.octets());
    c.write(s, b"six").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(c.read(a, &mut buf).unwrap(), 3);
    // Without -lrumpnet_netinet6 there is no AF_INET6.
    let srv4 = Server::unix(LIBS);
    let mut c4 = srv4.client();
    assert!(matches!(
        c4.socket(24, SOCK_STREAM, 0),
        Err(client::Error::Errno(47))
    ));
}

/// Frames no honest interface sends, written straight onto the bus: the servers on it
/// drop them and keep working.
fn hostile_frames(seed: u64) -> Vec<Vec<u8>> {
    let mut x = seed | 1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let bcast = [0xffu8; 6];
    let mut out = Vec::new();
    for i in 0..400 {
        let len = 14 + (rnd() % 1500) as usize;
        let mut f: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        f[..6].copy_from_slice(&bcast);
        // Half claim to be ARP or IPv4/IPv6 so the parsers see them.
        let ty: u16 = match i % 4 {
            0 => 0x0806,
            1 => 0x0800,
            2 => 0x86dd,
            _ => rnd() as u16,
        };
        f[12..14].copy_from_slice(&ty.to_be_bytes());
        if ty == 0x0800 && f.len() > 34 {
            f[14] = 0x45; // a plausible header start, the rest random
        }
        if ty == 0x0806 && f.len() >= 42 {
            f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
            f[38..42].copy_from_slice(&[10, 0, 1, 1]); // "who has 10.0.1.1"
        }
        out.push(f);
    }
    // Runt frames and an IPv4 header whose lengths lie.
    out.push(vec![0xff; 14]);
    let mut lie = vec![0xffu8; 6];
    lie.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x00, 0x4f, 0, 0xff, 0xff]);
    out.push(lie);
    out
}

#[test]
fn hostile_frames_on_the_bus_and_an_interface_destroyed() {
    let dir = TempDir::new("netinet-hostile");
    let a = start(&dir, "a.sock");
    let b = start(&dir, "b.sock");
    let (mut ca, mut cb) = (a.client(), b.client());
    ifconfig_shmif(&mut ca, "shmif0", "bus1", ip("10.0.1.1")).unwrap();
    ifconfig_shmif(&mut cb, "shmif0", "bus1", ip("10.0.1.2")).unwrap();
    // A linkstr never names a host file that is not a bus (docs/threat-model.md): no
    // paths, no `..`, no existing non-bus file (left as it was).
    let victim = dir.path().join("notabus");
    std::fs::write(&victim, b"precious").unwrap();
    for bad in ["/etc/passwd", "../bus1", "sub/bus", "notabus", ".."] {
        let e = ifconfig_shmif(&mut ca, "shmif1", bad, ip("10.0.7.1")).unwrap_err();
        assert!(
            matches!(e, client::Error::Errno(13)),
            "{bad}: EACCES, not {e}"
        );
        let so = ca.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
        let mut r = vec![0u8; 144];
        r[..6].copy_from_slice(b"shmif1");
        ioctl(&mut ca, so, 0x8090_6979, &mut r, &[]).unwrap(); // SIOCIFDESTROY
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    let (bus, _) = shmif::Bus::open(&dir.path().join("bus1")).unwrap();
    for f in hostile_frames(0x5eed) {
        bus.send(&f, 0xbad, 0, 0).unwrap();
    }
    assert_eq!(
        ping(&mut ca, ip("10.0.1.2"), 2).unwrap(),
        (2, 255),
        "still talking"
    );
    // The interface goes under traffic: a connection and the routes through it go.
    let mut cs = b.client();
    let l = tcp_listen(&mut cs, 7).unwrap();
    let s = ca.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    ca.connect_sock(s, &sin(ip("10.0.1.2"), 7)).unwrap();
    let _accepted = cs.accept(l).unwrap();
    ca.write(s, &pattern(10_000)).unwrap();
    let so = ca.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    let mut r = vec![0u8; 144];
    r[..6].copy_from_slice(b"shmif0");
    ioctl(&mut ca, so, 0x8090_6979, &mut r, &[]).unwrap(); // SIOCIFDESTROY
    assert!(matches!(
        if_flags(&mut ca, "shmif0"),
        Err(client::Error::Errno(6))
    ));
    assert!(matches!(
        ping(&mut ca, ip("10.0.1.2"), 1),
        Err(client::Error::Errno(65))
    ));
    // Writes still go into the buffer (they leave nowhere); the server answers.
    let _ = ca.write(s, b"more");
    assert_eq!(ping(&mut ca, Ipv4Addr::LOCALHOST, 1).unwrap(), (1, 255));
    assert_eq!(ping(&mut cb, ip("10.0.1.2"), 1).unwrap(), (1, 255));
}

#[test]
fn hostile_ioctls_and_routing_messages_get_errno_not_a_crash() {
    let dir = TempDir::new("netinet-hostile-ioctl");
    let a = start(&dir, "a.sock");
    let mut c = a.client();
    ifconfig_shmif(&mut c, "shmif0", "bus1", ip("10.0.1.1")).unwrap();
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let socks = [
        c.socket(AF_INET, SOCK_DGRAM, 0).unwrap(),
        c.socket(18, SOCK_DGRAM, 0).unwrap(),
        c.socket(34, SOCK_RAW, 0).unwrap(),
    ];
    // Every 'i' ioctl number in every direction, sizes from none to past the structs,
    // interface names real and not, the rest random (pointers inside point nowhere).
    for num in 0..=255u32 {
        for dir in [0x2000_0000u32, 0x4000_0000, 0x8000_0000, 0xc000_0000] {
            for size in [0u32, 16, 40, 64, 144, 280] {
                let com = dir | (size & 0x1fff) << 16 | u32::from(b'i') << 8 | num;
                let mut d: Vec<u8> = (0..size.max(8)).map(|_| rnd() as u8).collect();
                let name: &[u8] = match rnd() % 3 {
                    0 => b"shmif0\0",
                    1 => b"lo0\0",
                    _ => b"",
                };
                let k = name.len().min(d.len());
                d[..k].copy_from_slice(&name[..k]);
                // Never destroy or reconfigure on purpose: those are tested elsewhere.
                if [121, 122, 136, 16, 26, 25].contains(&num) {
                    continue;
                }
                let s = socks[(rnd() % 3) as usize];
                let _ = ioctl(&mut c, s, com, &mut d, &[]);
            }
        }
    }
    // Routing messages that lie about their lengths, versions and sockaddrs.
    for i in 0..300usize {
        let len = [0usize, 4, 119, 120, 121, 200, 600][i % 7];
        let mut m: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        if len >= 4 {
            let claimed = if i % 2 == 0 { len as u16 } else { rnd() as u16 };
            m[..2].copy_from_slice(&claimed.to_le_bytes());
            m[2] = 4;
            m[3] = (1 + i % 4) as u8;
        }
        let r = c.write(socks[2], &m);
        assert!(
            r.is_err() || len >= 120,
            "message {i} of {len} bytes accepted"
        );
    }
    // Still serving, still routing.
    assert!(if_flags(&mut c, "lo0").is_ok());
    assert_eq!(ping(&mut c, Ipv4Addr::LOCALHOST, 1).unwrap().0, 1);
    assert!(c.getpid().is_ok());
}

//! The IPv6 socket-option probe for the TCP/IP faction: `net.inet6.ip6.v6only`,
//! `IPV6_V6ONLY` (its default, before and after bind, and what it does to binds, connects,
//! sends, TCP listeners and UDP sockets on `::` over lo0), and the `ip6_ctloutput`
//! options ping6, traceroute6 and rtadvd set on raw, UDP and TCP sockets
//! (`IPV6_UNICAST_HOPS`, `IPV6_RECVRTHDR`, `IPV6_RECVHOPOPTS`, `IPV6_RECVDSTOPTS`,
//! `IPV6_RECVRTHDRDSTOPTS`, `IPV6_RECVPATHMTU`).
//! Recorded from NetBSD's rump_server (`-lrumpnet -lrumpnet_net -lrumpnet_netinet
//! -lrumpnet_netinet6`) into `tests/oracle/inet6-opts.netbsd` by `cargo run --example
//! oracle_inet6_opts -- URL`; `tests/oracle_inet6_opts.rs` replays it against ours.

use client::{addr_of, Buf, Client};

use crate::transcript::{connect, Transcript};

const AF_INET: i32 = 2;
const AF_INET6: i32 = 24;
const IPPROTO_IPV6: i32 = 41;
const IPV6_UNICAST_HOPS: i32 = 4;
const IPV6_V6ONLY: i32 = 27;
const IPV6_RECVRTHDR: i32 = 38;
const IPV6_RECVHOPOPTS: i32 = 39;
const IPV6_RECVDSTOPTS: i32 = 40;
const IPV6_RECVRTHDRDSTOPTS: i32 = 41;
const IPV6_RECVPATHMTU: i32 = 43;
const SOL_SOCKET: i32 = 0xffff;
const SO_RCVTIMEO: i32 = 0x100c;

/// `net.inet6.ip6.v6only`.
const V6ONLY_MIB: [i32; 4] = [4, 24, 41, 24];

fn sin(a: [u8; 4], port: u16) -> Vec<u8> {
    let mut s = vec![16, AF_INET as u8];
    s.extend_from_slice(&port.to_be_bytes());
    s.extend_from_slice(&a);
    s.resize(16, 0);
    s
}

fn sin6(a: [u8; 16], port: u16) -> Vec<u8> {
    let mut s = vec![28, AF_INET6 as u8];
    s.extend_from_slice(&port.to_be_bytes());
    s.extend_from_slice(&[0; 4]);
    s.extend_from_slice(&a);
    s.extend_from_slice(&[0; 4]);
    s
}

const ANY6: [u8; 16] = [0; 16];
const LO6: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const LO4: [u8; 4] = [127, 0, 0, 1];
const MAPPED_LO4: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1];

/// A peer's socket address as text (family, address; its port is an ephemeral one).
fn show_sa(sa: &[u8]) -> String {
    match sa.get(1).map(|f| i32::from(*f)) {
        Some(AF_INET) if sa.len() >= 8 => {
            format!("inet {}.{}.{}.{}", sa[4], sa[5], sa[6], sa[7])
        }
        Some(AF_INET6) if sa.len() >= 24 => {
            let b: [u8; 16] = sa[8..24].try_into().expect("16");
            format!("inet6 {}", std::net::Ipv6Addr::from(b))
        }
        _ => format!("len {}", sa.len()),
    }
}

/// `__sysctl` of one int by name (numbers), writing `new` if given; the old value.
fn sysctl_int(c: &mut Client, name: &[i32], new: Option<i32>) -> client::Result<i32> {
    let nm: Vec<u8> = name.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut old = [0u8; 4];
    let mut len = 4u64.to_le_bytes();
    let newv = new.unwrap_or(0).to_le_bytes();
    let (np, nl) = match new {
        Some(_) => (addr_of(&newv), 4),
        None => (0, 0),
    };
    let args = [
        addr_of(&nm),
        name.len() as u64,
        addr_of(&old),
        addr_of(&len),
        np,
        nl,
    ];
    c.syscall(
        202,
        &args,
        &mut [
            Buf::In(&nm),
            Buf::Out(&mut old),
            Buf::InOut(&mut len),
            Buf::In(&newv),
        ],
    )?;
    Ok(i32::from_le_bytes(old))
}

fn int(v: i32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// A receive timeout of 0.3 s (30 ticks), so "nothing arrives" ends.
fn timeo(c: &mut Client, s: i32) {
    let mut tv = 0i64.to_le_bytes().to_vec();
    tv.extend_from_slice(&300_000i32.to_le_bytes());
    tv.extend_from_slice(&[0; 4]);
    let _ = c.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv);
}

/// The options of one socket: defaults, sets, and reads back.
fn options(c: &mut Client, t: &mut Transcript, tag: &str, ty: i32, proto: i32) {
    let s = match c.socket(AF_INET6, ty, proto) {
        Ok(s) => s,
        Err(e) => {
            t.unit(&format!("{tag} socket"), Err::<(), _>(e));
            return;
        }
    };
    let opts = [
        (IPV6_UNICAST_HOPS, "IPV6_UNICAST_HOPS"),
        (IPV6_V6ONLY, "IPV6_V6ONLY"),
        (IPV6_RECVRTHDR, "IPV6_RECVRTHDR"),
        (IPV6_RECVHOPOPTS, "IPV6_RECVHOPOPTS"),
        (IPV6_RECVDSTOPTS, "IPV6_RECVDSTOPTS"),
        (IPV6_RECVRTHDRDSTOPTS, "IPV6_RECVRTHDRDSTOPTS"),
    ];
    for (o, name) in opts {
        let r = c.getsockopt_int(s, IPPROTO_IPV6, o);
        t.step(&format!("{tag} {name} default"), r, |v| v.to_string());
    }
    for (o, name) in opts {
        for v in [1, 0, 5] {
            let r = c.setsockopt(s, IPPROTO_IPV6, o, &int(v));
            t.unit(&format!("{tag} {name} set {v}"), r);
            let r = c.getsockopt_int(s, IPPROTO_IPV6, o);
            t.step(&format!("{tag} {name} get after {v}"), r, |v| v.to_string());
        }
    }
    for v in [64, 255, -1, 256, -2] {
        let r = c.setsockopt(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &int(v));
        t.unit(&format!("{tag} IPV6_UNICAST_HOPS set {v}"), r);
        let r = c.getsockopt_int(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS);
        t.step(&format!("{tag} IPV6_UNICAST_HOPS get {v}"), r, |v| {
            v.to_string()
        });
    }
    if ty == 3 {
        // ping6 sets it on its raw socket.
        let r = c.setsockopt(s, IPPROTO_IPV6, IPV6_RECVPATHMTU, &int(1));
        t.unit(&format!("{tag} IPV6_RECVPATHMTU set 1"), r);
        let r = c.getsockopt_int(s, IPPROTO_IPV6, IPV6_RECVPATHMTU);
        t.step(&format!("{tag} IPV6_RECVPATHMTU get"), r, |v| v.to_string());
    }
    // IPV6_V6ONLY only before bind.
    let r = c.bind(s, &sin6(LO6, 0));
    t.unit(&format!("{tag} bind ::1"), r);
    let r = c.setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &int(0));
    t.unit(&format!("{tag} IPV6_V6ONLY set 0 after bind"), r);
    let r = c.setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &int(1));
    t.unit(&format!("{tag} IPV6_V6ONLY set 1 after bind"), r);
    let r = c.getsockopt_int(s, IPPROTO_IPV6, IPV6_V6ONLY);
    t.step(&format!("{tag} IPV6_V6ONLY after bind"), r, |v| {
        v.to_string()
    });
    let _ = c.close(s);
}

/// An AF_INET6 socket of type `ty` with IPV6_V6ONLY `only`.
fn sock6(c: &mut Client, ty: i32, only: i32) -> i32 {
    let s = c.socket(AF_INET6, ty, 0).expect("inet6 socket");
    c.setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &int(only))
        .expect("IPV6_V6ONLY");
    s
}

/// Binds, connects, sends and receives over lo0 with IPV6_V6ONLY on and off.
fn v6only(c: &mut Client, t: &mut Transcript) {
    // Binds: an AF_INET and an AF_INET6 socket on one port.
    for (only, port) in [(1, 7101u16), (0, 7102)] {
        for (ty, tn) in [(1, "tcp"), (2, "udp")] {
            let tag = format!("{tn} v6only {only}");
            let a = c.socket(AF_INET, ty, 0).expect("inet socket");
            t.unit(
                &format!("{tag} inet bind 0.0.0.0"),
                c.bind(a, &sin([0; 4], port)),
            );
            let b = sock6(c, ty, only);
            t.unit(
                &format!("{tag} inet6 bind :: same port"),
                c.bind(b, &sin6(ANY6, port)),
            );
            let d = sock6(c, ty, only);
            let r = c.bind(d, &sin6(MAPPED_LO4, port));
            t.unit(&format!("{tag} inet6 bind ::ffff:127.0.0.1 same port"), r);
            let e = sock6(c, ty, only);
            let r = c.bind(e, &sin6(MAPPED_LO4, port + 10));
            t.unit(&format!("{tag} inet6 bind ::ffff:127.0.0.1 free port"), r);
            let f = c.socket(AF_INET, ty, 0).expect("inet socket");
            let r = c.bind(f, &sin(LO4, port + 10));
            t.unit(
                &format!("{tag} inet bind 127.0.0.1 on the mapped one's port"),
                r,
            );
            let g = sock6(c, ty, only);
            let r = c.bind(g, &sin6(ANY6, port + 10));
            t.unit(&format!("{tag} inet6 bind :: on the mapped one's port"), r);
            for s in [a, b, d, e, f, g] {
                let _ = c.close(s);
            }
            // A v4-mapped peer.
            let s = sock6(c, ty, only);
            let r = c.connect_sock(s, &sin6(MAPPED_LO4, 9));
            t.unit(&format!("{tag} connect ::ffff:127.0.0.1"), r);
            let _ = c.close(s);
            if ty == 2 {
                let s = sock6(c, ty, only);
                let r = c.sendto(s, b"x", 0, Some(&sin6(MAPPED_LO4, 9)));
                t.step(&format!("{tag} sendto ::ffff:127.0.0.1"), r, |n| {
                    n.to_string()
                });
                let _ = c.close(s);
            }
        }
    }
    // TCP: a listener on [::] and a client of each family.
    for (only, port) in [(1, 7201u16), (0, 7202)] {
        let tag = format!("tcp listener v6only {only}");
        let l = sock6(c, 1, only);
        t.unit(&format!("{tag} bind"), c.bind(l, &sin6(ANY6, port)));
        t.unit(&format!("{tag} listen"), c.listen(l, 5));
        for (af, dst, name) in [
            (AF_INET, sin(LO4, port), "inet 127.0.0.1"),
            (AF_INET6, sin6(LO6, port), "inet6 ::1"),
        ] {
            let s = c.socket(af, 1, 0).expect("client socket");
            let r = c.connect_sock(s, &dst);
            let ok = r.is_ok();
            t.unit(&format!("{tag} connect from {name}"), r);
            if ok {
                let r = c.accept(l);
                let fd = r.as_ref().map(|x| x.0).unwrap_or(-1);
                t.step(&format!("{tag} accept from {name}"), r, |(_, sa)| {
                    show_sa(&sa)
                });
                let _ = c.close(fd);
            }
            let _ = c.close(s);
        }
        let _ = c.close(l);
    }
    // TCP: an AF_INET listener beside an AF_INET6 one without IPV6_V6ONLY on one port:
    // an IPv4 peer goes to the AF_INET one.
    {
        let port = 7203;
        let l4 = c.socket(AF_INET, 1, 0).expect("inet socket");
        c.bind(l4, &sin([0; 4], port)).expect("bind");
        c.listen(l4, 5).expect("listen");
        let l6 = sock6(c, 1, 0);
        t.unit("tcp both listeners bind ::", c.bind(l6, &sin6(ANY6, port)));
        t.unit("tcp both listeners listen ::", c.listen(l6, 5));
        let s = c.socket(AF_INET, 1, 0).expect("client");
        t.unit(
            "tcp both listeners connect from inet",
            c.connect_sock(s, &sin(LO4, port)),
        );
        let r = c.accept(l4);
        let fd = r.as_ref().map(|x| x.0).unwrap_or(-1);
        t.step("tcp both listeners accept on inet", r, |(_, sa)| {
            show_sa(&sa)
        });
        let _ = c.close(fd);
        let s6 = c.socket(AF_INET6, 1, 0).expect("client");
        t.unit(
            "tcp both listeners connect from inet6",
            c.connect_sock(s6, &sin6(LO6, port)),
        );
        let r = c.accept(l6);
        let fd = r.as_ref().map(|x| x.0).unwrap_or(-1);
        t.step("tcp both listeners accept on inet6", r, |(_, sa)| {
            show_sa(&sa)
        });
        for s in [fd, s, s6, l4, l6] {
            let _ = c.close(s);
        }
    }
    // UDP: a socket on [::] and a datagram of each family.
    for (only, port) in [(1, 7301u16), (0, 7302)] {
        let tag = format!("udp v6only {only}");
        let u = sock6(c, 2, only);
        t.unit(&format!("{tag} bind"), c.bind(u, &sin6(ANY6, port)));
        timeo(c, u);
        for (af, dst, name) in [
            (AF_INET, sin(LO4, port), "inet 127.0.0.1"),
            (AF_INET6, sin6(LO6, port), "inet6 ::1"),
        ] {
            let s = c.socket(af, 2, 0).expect("client socket");
            let r = c.sendto(s, name.as_bytes(), 0, Some(&dst));
            t.step(&format!("{tag} sendto from {name}"), r, |n| n.to_string());
            let mut buf = [0u8; 64];
            let r = c.recvfrom(u, &mut buf, 0);
            t.step(&format!("{tag} recvfrom from {name}"), r, |(n, sa)| {
                format!(
                    "{} from {}",
                    String::from_utf8_lossy(&buf[..n]),
                    show_sa(&sa)
                )
            });
            let _ = c.close(s);
        }
        let _ = c.close(u);
    }
    // UDP: an AF_INET socket beside an AF_INET6 one without IPV6_V6ONLY.
    {
        let port = 7303;
        let (u6, u4) = (sock6(c, 2, 0), c.socket(AF_INET, 2, 0).expect("inet"));
        t.unit("udp both bind ::", c.bind(u6, &sin6(ANY6, port)));
        t.unit("udp both bind 0.0.0.0", c.bind(u4, &sin([0; 4], port)));
        timeo(c, u6);
        timeo(c, u4);
        let s = c.socket(AF_INET, 2, 0).expect("client");
        let r = c.sendto(s, b"four", 0, Some(&sin(LO4, port)));
        t.step("udp both sendto from inet", r, |n| n.to_string());
        let mut buf = [0u8; 16];
        for (u, name) in [(u4, "inet"), (u6, "inet6")] {
            let r = c.recvfrom(u, &mut buf, 0);
            t.step(&format!("udp both recvfrom on {name}"), r, |(n, sa)| {
                format!(
                    "{} from {}",
                    String::from_utf8_lossy(&buf[..n]),
                    show_sa(&sa)
                )
            });
        }
        for s in [s, u4, u6] {
            let _ = c.close(s);
        }
    }
}

/// The probe against the server at `url`.
pub fn run(url: &str) -> Transcript {
    let mut c: Client = connect(url, "inet6-opts");
    let mut t = Transcript::default();
    let r = sysctl_int(&mut c, &V6ONLY_MIB, None);
    t.step("sysctl net.inet6.ip6.v6only", r, |v| v.to_string());
    options(&mut c, &mut t, "raw icmp6", 3, 58);
    options(&mut c, &mut t, "udp", 2, 0);
    options(&mut c, &mut t, "tcp", 1, 0);
    v6only(&mut c, &mut t);
    // The knob: new sockets start with it.
    let r = sysctl_int(&mut c, &V6ONLY_MIB, Some(0));
    t.step("sysctl net.inet6.ip6.v6only=0", r, |v| v.to_string());
    for (ty, tn) in [(1, "tcp"), (2, "udp"), (3, "raw")] {
        let s = c.socket(AF_INET6, ty, if ty == 3 { 58 } else { 0 });
        let r = s.and_then(|s| {
            let v = c.getsockopt_int(s, IPPROTO_IPV6, IPV6_V6ONLY);
            let _ = c.close(s);
            v
        });
        t.step(&format!("{tn} IPV6_V6ONLY with the knob 0"), r, |v| {
            v.to_string()
        });
    }
    let r = sysctl_int(&mut c, &V6ONLY_MIB, Some(1));
    t.step("sysctl net.inet6.ip6.v6only=1", r, |v| v.to_string());
    let r = sysctl_int(&mut c, &V6ONLY_MIB, None);
    t.step("sysctl net.inet6.ip6.v6only again", r, |v| v.to_string());
    t
}

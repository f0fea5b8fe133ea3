//! The `pcblist` probe whose answers NetBSD's rump_server recorded in
//! `tests/oracle/pcblist.netbsd`: the `net.local.{stream,dgram,seqpacket}.pcblist` leaves
//! (`sysctl_unpcblist`, what `netstat -f local` reads) before and after a client makes
//! sockets of each type (a bound listener, a connection to it and its accepted end, a
//! socketpair with unread bytes, a bound datagram socket two others connect to, a lone
//! seqpacket socket, another client's socket; then some closed), with the
//! size probe (`PCB_SLOP` records more), partial copies (a short buffer, an element
//! count), and the argument errors. Records are shown field by field with kernel pointers
//! made symbolic (`0`, or `#k` for the k-th record's pcb, or `p`), sorted, as the order of
//! NetBSD's file list is not.
//!
//! Run against any server with `cargo run --example oracle_pcblist -- URL` (the server
//! started fresh as `rump_server -lrumpvfs -lrumpnet -lrumpnet_net -lrumpnet_local URL`);
//! `tests/oracle_pcblist.rs` runs it against ours and compares.

use client::net::*;
use client::Client;

use crate::sysctl::sysctl;
use crate::transcript::{connect, Transcript};

/// `CTL_NET`, `PF_LOCAL`, `CTL_QUERY`.
const NET: i32 = 4;
const LOCAL: i32 = 1;
const CTL_QUERY: i32 = -2;
/// `sizeof(struct kinfo_pcb)`.
const KINFO: usize = 640;

/// The number of each type's `pcblist` leaf (dynamic: found by name).
fn leaf(c: &mut Client, ty: i32) -> i32 {
    crate::sysctl::query(c, &[NET, LOCAL, ty])
        .ok()
        .and_then(|n| n.into_iter().find(|n| n.name == "pcblist"))
        .map_or(-1, |n| n.num)
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]))
}

/// A `sockaddr` of a record: its `sa_len` bytes in hex (the path as text for AF_LOCAL).
fn addr(b: &[u8]) -> String {
    let len = usize::from(b[0]).min(b.len());
    match (len, b.get(1)) {
        (0, _) => "-".to_string(),
        (l, Some(1)) if l > 2 => {
            let path = &b[2..l];
            let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
            format!("local:{}", String::from_utf8_lossy(&path[..end]))
        }
        // AF_INET: address and port, an ephemeral port (random in NetBSD) as `eph`.
        (16, Some(2)) => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let port = match port {
                49152.. => "eph".to_string(),
                p => p.to_string(),
            };
            format!("in:{}.{}.{}.{}:{port}", b[4], b[5], b[6], b[7])
        }
        // AF_INET6: address and port (`eph` as above), and whether a flow label and a
        // scope are set (NetBSD's connect picks a random flow label).
        (28, Some(24)) => {
            let port = match u16::from_be_bytes([b[2], b[3]]) {
                49152.. => "eph".to_string(),
                p => p.to_string(),
            };
            let ip = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&b[8..24]).unwrap_or([0; 16]));
            let fl = match u32_at(b, 4) {
                0 => "",
                _ => "/flow",
            };
            let scope = match u32_at(b, 24) {
                0 => "",
                _ => "/scope",
            };
            format!("in6:[{ip}]:{port}{fl}{scope}")
        }
        _ => b[..len].iter().map(|x| format!("{x:02x}")).collect(),
    }
}

/// The records of one read, each a line with its pointers symbolic, sorted.
fn records(old: &[u8]) -> Vec<String> {
    let recs: Vec<&[u8]> = old.chunks_exact(KINFO).collect();
    let pcbs: Vec<u64> = recs.iter().map(|r| u64_at(r, 0)).collect();
    let sym = |v: u64| match v {
        0 => "0".to_string(),
        v => match pcbs.iter().position(|&p| p == v) {
            // Which record: by its own name and type, as the order is not NetBSD's.
            Some(k) => format!("<{}>", ident(recs[k])),
            None => "p".to_string(),
        },
    };
    let mut lines: Vec<String> = recs
        .iter()
        .map(|r| {
            format!(
                "[{}] family={} type={} proto={} pflags={:#x} sostate={:#x} prstate={} \
                 tstate={} tflags={:#x} rcvq={} sndq={} src={} dst={} inode={} pcb={} \
                 ppcb={} so={} vnode={} conn={} refs={} nextref={}",
                ident(r),
                u32_at(r, 24),
                u32_at(r, 28),
                u32_at(r, 32),
                u32_at(r, 36),
                u32_at(r, 40),
                u32_at(r, 44),
                u32_at(r, 48) as i32,
                u32_at(r, 52),
                u64_at(r, 56),
                sndq(r),
                addr(&r[72..336]),
                addr(&r[336..600]),
                u64_at(r, 600),
                if u64_at(r, 0) != 0 { "p" } else { "0" },
                sym(u64_at(r, 8)),
                if u64_at(r, 16) != 0 { "p" } else { "0" },
                if u64_at(r, 608) != 0 { "p" } else { "0" },
                sym(u64_at(r, 616)),
                sym(u64_at(r, 624)),
                sym(u64_at(r, 632)),
            )
        })
        .collect();
    lines.sort();
    lines
}

/// `ki_sndq`, but `-` for TCP: what the peer has not acknowledged yet depends on the
/// timing of its delayed ACK (NetBSD's and smoltcp's differ).
fn sndq(r: &[u8]) -> String {
    match u32_at(r, 28) == 1 && matches!(u32_at(r, 24), 2 | 24) {
        true => "-".to_string(),
        false => u64_at(r, 64).to_string(),
    }
}

/// A record's name for the others to point at: type, own and peer names, queue length.
fn ident(r: &[u8]) -> String {
    format!(
        "t{} {} {} q{}",
        u32_at(r, 28),
        addr(&r[72..336]),
        addr(&r[336..600]),
        u64_at(r, 56)
    )
}

/// Reads every leaf in full and shows the records; `tag` names the moment.
fn list_all(t: &mut Transcript, c: &mut Client, tag: &str) {
    for (name, ty) in [
        ("stream", SOCK_STREAM),
        ("dgram", SOCK_DGRAM),
        ("seqpacket", SOCK_SEQPACKET),
    ] {
        let n = leaf(c, ty);
        let probe = sysctl(
            c,
            &[NET, LOCAL, ty, n, 0, 0, KINFO as i32, 64],
            None,
            Some(0),
            None,
        );
        t.0.push(format!(
            "{tag} {name} probe: errno {} oldlen {}",
            probe.errno, probe.oldlen
        ));
        let room = 64 * KINFO;
        let a = sysctl(
            c,
            &[NET, LOCAL, ty, n, 0, 0, KINFO as i32, 64],
            Some(room),
            Some(room as u64),
            None,
        );
        t.0.push(format!(
            "{tag} {name} read: errno {} oldlen {}",
            a.errno, a.oldlen
        ));
        let got = (a.oldlen as usize).min(room);
        for line in records(&a.old[..got - got % KINFO]) {
            t.0.push(format!("{tag} {name} record {line}"));
        }
    }
}

/// `PF_INET`, the `net.inet` protocol nodes and the leaves' types.
const INET: i32 = 2;
const INET_LEAVES: [(&str, i32); 3] = [("tcp", 6), ("udp", 17), ("raw", 255)];

fn inet_leaf(c: &mut Client, proto: i32) -> i32 {
    pf_leaf(c, INET, proto)
}

/// The number of `net.<pf>.<proto>.pcblist` (-1: none).
fn pf_leaf(c: &mut Client, pf: i32, proto: i32) -> i32 {
    crate::sysctl::query(c, &[NET, pf, proto])
        .ok()
        .and_then(|n| n.into_iter().find(|n| n.name == "pcblist"))
        .map_or(-1, |n| n.num)
}

fn list_inet(t: &mut Transcript, c: &mut Client, tag: &str) {
    list_pf(t, c, tag, INET, &INET_LEAVES);
}

/// Reads `net.<pf>.<leaf>.pcblist` of each leaf in full (a size probe, then a read) and
/// shows the records.
fn list_pf(t: &mut Transcript, c: &mut Client, tag: &str, pf: i32, leaves: &[(&str, i32)]) {
    for &(name, proto) in leaves {
        let n = pf_leaf(c, pf, proto);
        let nm = [NET, pf, proto, n, 0, 0, KINFO as i32, 64];
        let probe = sysctl(c, &nm, None, Some(0), None);
        t.0.push(format!(
            "{tag} {name} probe: errno {} oldlen {}",
            probe.errno, probe.oldlen
        ));
        let room = 64 * KINFO;
        let a = sysctl(c, &nm, Some(room), Some(room as u64), None);
        t.0.push(format!(
            "{tag} {name} read: errno {} oldlen {}",
            a.errno, a.oldlen
        ));
        // A failed read's oldlen is what was asked for: no records.
        let got = if a.errno == 0 {
            (a.oldlen as usize).min(room)
        } else {
            0
        };
        for line in records(&a.old[..got - got % KINFO]) {
            t.0.push(format!("{tag} {name} record {line}"));
        }
    }
}

/// The inet probe (a fresh server with `-lrumpnet_netinet`): `net.inet.{tcp,udp,raw}
/// .pcblist` (`sysctl_inpcblist`) before and after a client makes a TCP listener on
/// 127.0.0.1, a connection to it and its accepted end with unread bytes, a bound UDP
/// socket and a connected one that sent it a datagram, and a raw ICMP socket.
pub fn run_inet(url: &str) -> Transcript {
    let mut t = Transcript::default();
    let mut c = connect(url, "pcbinet");
    list_inet(&mut t, &mut c, "empty");
    let n = inet_leaf(&mut c, 6);
    let base = [NET, INET, 6, n];
    for (name, args, old) in [
        ("no args", vec![], Some(KINFO)),
        ("query below", vec![CTL_QUERY], Some(KINFO)),
        ("bad elem size", vec![0, 0, 100, 1], Some(KINFO)),
        ("bad elem size probe", vec![0, 0, 100, 1], None),
    ] {
        let mut nm = base.to_vec();
        nm.extend(args);
        let a = sysctl(&mut c, &nm, old, Some(old.unwrap_or(0) as u64), None);
        t.0.push(format!(
            "inet args {name}: errno {} oldlen {}",
            a.errno, a.oldlen
        ));
    }
    const AF_INET: i32 = 2;
    const SOCK_RAW: i32 = 3;
    let lo = [127, 0, 0, 1];
    let lis = t.fd("tcp listener", c.socket(AF_INET, SOCK_STREAM, 0));
    let r = c.bind(lis, &sockaddr_in(lo, 24680));
    t.unit("tcp bind", r);
    let r = c.listen(lis, 5);
    t.unit("tcp listen", r);
    let cl = t.fd("tcp connector", c.socket(AF_INET, SOCK_STREAM, 0));
    let r = c.connect_sock(cl, &sockaddr_in(lo, 24680));
    t.unit("tcp connect", r);
    let acc = c.accept(lis).map(|a| a.0);
    let acc = t.fd("tcp accept", acc);
    let r = c.write(cl, b"hello");
    t.unit("tcp write 5", r);
    // Let the bytes arrive.
    let mut pfd = [0u8; 8];
    pfd[..4].copy_from_slice(&acc.to_le_bytes());
    pfd[4..6].copy_from_slice(&1i16.to_le_bytes());
    let r = c.syscall(
        209,
        &[client::addr_of(&pfd), 1, 2000],
        &mut [client::Buf::InOut(&mut pfd)],
    );
    t.unit("poll accepted", r);
    let u = t.fd("udp", c.socket(AF_INET, SOCK_DGRAM, 0));
    let r = c.bind(u, &sockaddr_in(lo, 24681));
    t.unit("udp bind", r);
    let u2 = t.fd("udp 2", c.socket(AF_INET, SOCK_DGRAM, 0));
    let r = c.connect_sock(u2, &sockaddr_in(lo, 24681));
    t.unit("udp connect", r);
    let r = c.sendto(u2, b"datagram", 0, None);
    t.unit("udp send", r);
    let raw = t.fd("raw icmp", c.socket(AF_INET, SOCK_RAW, 1));
    list_inet(&mut t, &mut c, "made");
    for fd in [lis, cl, acc, u, u2, raw] {
        let r = c.close(fd);
        t.unit(&format!("close {fd}"), r);
    }
    let _ = c.getpid();
    t
}

/// `PF_INET6` and the `net.inet6` protocol nodes of the leaves.
const INET6: i32 = 24;
const INET6_LEAVES: [(&str, i32); 3] = [("tcp6", 6), ("udp6", 17), ("raw6", 255)];

/// The inet6 probe (a fresh server with `-lrumpnet_netinet -lrumpnet_netinet6`):
/// `net.inet6.{tcp6,udp6,raw6}.pcblist` (`sysctl_inpcblist` with `PF_INET6`) before and
/// after a client makes a TCP listener on ::1, a connection to it and its accepted end
/// with unread bytes, a UDP socket bound to ::1 and a connected one that sent it a
/// datagram, one bound to the wildcard with a port the kernel picks, an unbound TCP
/// socket, a raw ICMPv6 socket and a connected one; and AF_INET sockets beside them (a
/// TCP listener, a bound UDP socket, a bound and connected raw ICMP socket), to show that
/// each family's lists hold only its own sockets.
pub fn run_inet6(url: &str) -> Transcript {
    let mut t = Transcript::default();
    let mut c = connect(url, "pcbinet6");
    list_pf(&mut t, &mut c, "empty", INET6, &INET6_LEAVES);
    let n = pf_leaf(&mut c, INET6, 6);
    let base = [NET, INET6, 6, n];
    for (name, args, old) in [
        ("no args", vec![], Some(KINFO)),
        ("query below", vec![CTL_QUERY], Some(KINFO)),
        ("bad elem size", vec![0, 0, 100, 1], Some(KINFO)),
        ("bad elem size probe", vec![0, 0, 100, 1], None),
    ] {
        let mut nm = base.to_vec();
        nm.extend(args);
        let a = sysctl(&mut c, &nm, old, Some(old.unwrap_or(0) as u64), None);
        t.0.push(format!(
            "inet6 args {name}: errno {} oldlen {}",
            a.errno, a.oldlen
        ));
    }
    const AF_INET: i32 = 2;
    const AF_INET6: i32 = 24;
    const SOCK_RAW: i32 = 3;
    let lo6 = std::net::Ipv6Addr::LOCALHOST.octets();
    let lis = t.fd("tcp6 listener", c.socket(AF_INET6, SOCK_STREAM, 0));
    let r = c.bind(lis, &sockaddr_in6(lo6, 24690));
    t.unit("tcp6 bind", r);
    let r = c.listen(lis, 5);
    t.unit("tcp6 listen", r);
    let cl = t.fd("tcp6 connector", c.socket(AF_INET6, SOCK_STREAM, 0));
    let r = c.connect_sock(cl, &sockaddr_in6(lo6, 24690));
    t.unit("tcp6 connect", r);
    let acc = c.accept(lis).map(|a| a.0);
    let acc = t.fd("tcp6 accept", acc);
    let r = c.write(cl, b"hello");
    t.unit("tcp6 write 5", r);
    // Let the bytes arrive.
    let mut pfd = [0u8; 8];
    pfd[..4].copy_from_slice(&acc.to_le_bytes());
    pfd[4..6].copy_from_slice(&1i16.to_le_bytes());
    let r = c.syscall(
        209,
        &[client::addr_of(&pfd), 1, 2000],
        &mut [client::Buf::InOut(&mut pfd)],
    );
    t.unit("poll accepted", r);
    let fresh = t.fd("tcp6 unbound", c.socket(AF_INET6, SOCK_STREAM, 0));
    let u = t.fd("udp6", c.socket(AF_INET6, SOCK_DGRAM, 0));
    let r = c.bind(u, &sockaddr_in6(lo6, 24691));
    t.unit("udp6 bind", r);
    let u2 = t.fd("udp6 2", c.socket(AF_INET6, SOCK_DGRAM, 0));
    let r = c.connect_sock(u2, &sockaddr_in6(lo6, 24691));
    t.unit("udp6 connect", r);
    let r = c.sendto(u2, b"datagram", 0, None);
    t.unit("udp6 send", r);
    let ua = t.fd("udp6 any", c.socket(AF_INET6, SOCK_DGRAM, 0));
    let r = c.bind(ua, &sockaddr_in6([0; 16], 0));
    t.unit("udp6 bind any port 0", r);
    let raw = t.fd("raw6 icmp6", c.socket(AF_INET6, SOCK_RAW, 58));
    let rawc = t.fd("raw6 connected", c.socket(AF_INET6, SOCK_RAW, 58));
    let r = c.connect_sock(rawc, &sockaddr_in6(lo6, 0));
    t.unit("raw6 connect", r);
    let raw4 = t.fd("raw icmp bound, connected", c.socket(AF_INET, SOCK_RAW, 1));
    let r = c.bind(raw4, &sockaddr_in([127, 0, 0, 1], 0));
    t.unit("raw bind", r);
    let r = c.connect_sock(raw4, &sockaddr_in([127, 0, 0, 1], 0));
    t.unit("raw connect", r);
    let l4 = t.fd("tcp listener", c.socket(AF_INET, SOCK_STREAM, 0));
    let r = c.bind(l4, &sockaddr_in([127, 0, 0, 1], 24692));
    t.unit("tcp bind", r);
    let r = c.listen(l4, 5);
    t.unit("tcp listen", r);
    let u4 = t.fd("udp", c.socket(AF_INET, SOCK_DGRAM, 0));
    let r = c.bind(u4, &sockaddr_in([127, 0, 0, 1], 24693));
    t.unit("udp bind", r);
    list_pf(&mut t, &mut c, "made", INET6, &INET6_LEAVES);
    list_inet(&mut t, &mut c, "made");
    for fd in [lis, cl, acc, fresh, u, u2, ua, raw, rawc, raw4, l4, u4] {
        let r = c.close(fd);
        t.unit(&format!("close {fd}"), r);
    }
    let _ = c.getpid();
    t
}

/// The sockin probe (a fresh server with `-lrumpnet -lrumpnet_net -lrumpnet_sockin`):
/// which `net` nodes and `pcblist` leaves there are while a client holds sockin sockets
/// (a TCP listener on 127.0.0.1, a connection to it and its accepted end, a bound UDP
/// socket, a TCP socket on ::1), and what reading the inet leaves' names answers.
/// NetBSD's sockin is host sockets behind the socket layer: no pcb table, no sysctl
/// nodes of its own. Connected TCP sockets are left open (NetBSD's sockin panics closing
/// them: `tests/oracle/sockin.rs`); the caller halts the server.
pub fn run_sockin(url: &str) -> Transcript {
    let mut t = Transcript::default();
    let mut c = connect(url, "pcbsockin");
    const AF_INET: i32 = 2;
    const AF_INET6: i32 = 24;
    let lo = [127, 0, 0, 1];
    let lis = t.fd("tcp listener", c.socket(AF_INET, SOCK_STREAM, 0));
    let r = c.bind(lis, &sockaddr_in(lo, 0));
    t.unit("tcp bind", r);
    let r = c.listen(lis, 5);
    t.unit("tcp listen", r);
    let name = c.getsockname(lis).unwrap_or_default();
    let cl = t.fd("tcp connector", c.socket(AF_INET, SOCK_STREAM, 0));
    let r = c.connect_sock(cl, &name);
    t.unit("tcp connect", r);
    let acc = c.accept(lis).map(|a| a.0);
    t.fd("tcp accept", acc);
    let u = t.fd("udp", c.socket(AF_INET, SOCK_DGRAM, 0));
    let r = c.bind(u, &sockaddr_in(lo, 0));
    t.unit("udp bind", r);
    let s6 = t.fd("tcp6", c.socket(AF_INET6, SOCK_STREAM, 0));
    let r = c.bind(s6, &sockaddr_in6(std::net::Ipv6Addr::LOCALHOST.octets(), 0));
    t.unit("tcp6 bind", r);
    for (pf, leaves) in [(INET, &INET_LEAVES), (INET6, &INET6_LEAVES)] {
        for &(name, proto) in leaves.iter() {
            let q = crate::sysctl::query(&mut c, &[NET, pf, proto]);
            let shown = match &q {
                Ok(nodes) => {
                    let mut n: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
                    n.sort_unstable();
                    format!("ok {}", n.join(","))
                }
                Err(e) => format!("errno {e}"),
            };
            t.0.push(format!("sockin query net.{pf}.{name}: {shown}"));
            let n = pf_leaf(&mut c, pf, proto);
            t.0.push(format!("sockin {name} pcblist leaf: {}", n >= 0));
        }
    }
    list_pf(&mut t, &mut c, "sockin", INET, &INET_LEAVES);
    list_pf(&mut t, &mut c, "sockin", INET6, &INET6_LEAVES);
    t
}

/// The probe (a fresh server: no other client's sockets).
pub fn run(url: &str) -> Transcript {
    let mut t = Transcript::default();
    let mut c = connect(url, "pcbprobe");
    list_all(&mut t, &mut c, "empty");

    // Argument errors on the stream leaf.
    let n = leaf(&mut c, SOCK_STREAM);
    let base = [NET, LOCAL, SOCK_STREAM, n];
    let mut cases: Vec<(&str, Vec<i32>, Option<usize>)> = vec![
        ("no args", vec![], Some(KINFO)),
        ("three args", vec![0, 0, KINFO as i32], Some(KINFO)),
        ("five args", vec![0, 0, KINFO as i32, 1, 0], Some(KINFO)),
        ("query below", vec![CTL_QUERY], Some(KINFO)),
        ("bad elem size", vec![0, 0, 100, 1], Some(KINFO)),
        ("bad elem size probe", vec![0, 0, 100, 1], None),
        ("op 7 arg 9", vec![7, 9, KINFO as i32, 1], Some(KINFO)),
    ];
    for (name, args, old) in cases.drain(..) {
        let mut nm = base.to_vec();
        nm.extend(args);
        let a = sysctl(&mut c, &nm, old, Some(old.unwrap_or(0) as u64), None);
        t.0.push(format!(
            "args {name}: errno {} oldlen {}",
            a.errno, a.oldlen
        ));
    }
    let mut nm = base.to_vec();
    nm.extend([0, 0, KINFO as i32, 1]);
    let a = sysctl(
        &mut c,
        &nm,
        Some(KINFO),
        Some(KINFO as u64),
        Some(&[0u8; 4]),
    );
    t.0.push(format!("args write: errno {} oldlen {}", a.errno, a.oldlen));

    // Sockets of each type.
    let lis = t.fd("listener", c.socket(AF_LOCAL, SOCK_STREAM, 0));
    let r = c.bind(lis, &sockaddr_un(b"/pcb.l"));
    t.unit("bind listener", r);
    let r = c.listen(lis, 5);
    t.unit("listen", r);
    let cl = t.fd("connector", c.socket(AF_LOCAL, SOCK_STREAM, 0));
    let r = c.connect_sock(cl, &sockaddr_un(b"/pcb.l"));
    t.unit("connect", r);
    let acc = c.accept(lis).map(|a| a.0);
    let acc = t.fd("accept", acc);
    let r = c.write(cl, b"hello");
    t.unit("write 5 to accepted", r);
    let pair = c.socketpair(AF_LOCAL, SOCK_STREAM, 0);
    let (p0, _p1) = pair.unwrap_or((-1, -1));
    t.0.push(format!(
        "socketpair: {}",
        if p0 >= 0 { "ok" } else { "failed" }
    ));
    let r = c.write(p0, b"abc");
    t.unit("write 3 to pair", r);
    let dg = t.fd("dgram", c.socket(AF_LOCAL, SOCK_DGRAM, 0));
    let r = c.bind(dg, &sockaddr_un(b"/pcb.d"));
    t.unit("bind dgram", r);
    let d1 = t.fd("dgram 1", c.socket(AF_LOCAL, SOCK_DGRAM, 0));
    let r = c.connect_sock(d1, &sockaddr_un(b"/pcb.d"));
    t.unit("connect dgram 1", r);
    let d2 = t.fd("dgram 2", c.socket(AF_LOCAL, SOCK_DGRAM, 0));
    let r = c.connect_sock(d2, &sockaddr_un(b"/pcb.d"));
    t.unit("connect dgram 2", r);
    let r = c.sendto(d2, b"datagram", 0, None);
    t.unit("send dgram 2", r);
    let sq = t.fd("seqpacket", c.socket(AF_LOCAL, SOCK_SEQPACKET, 0));
    list_all(&mut t, &mut c, "made");

    // Partial copies: room for one record, an element count of one, a count of zero.
    let n = leaf(&mut c, SOCK_STREAM);
    let nm = [NET, LOCAL, SOCK_STREAM, n, 0, 0, KINFO as i32, 64];
    let a = sysctl(
        &mut c,
        &nm,
        Some(KINFO + 100),
        Some(KINFO as u64 + 100),
        None,
    );
    let filled = |old: &[u8]| {
        old.chunks(KINFO)
            .filter(|r| r.iter().any(|&b| b != 0xa5))
            .count()
    };
    t.0.push(format!(
        "short buffer: errno {} oldlen {} records {}",
        a.errno,
        a.oldlen,
        filled(&a.old)
    ));
    for count in [1, 0, -1] {
        let nm = [NET, LOCAL, SOCK_STREAM, n, 0, 0, KINFO as i32, count];
        let room = 16 * KINFO;
        let a = sysctl(&mut c, &nm, Some(room), Some(room as u64), None);
        t.0.push(format!(
            "count {count}: errno {} oldlen {} records {}",
            a.errno,
            a.oldlen,
            filled(&a.old)
        ));
    }
    let a = sysctl(&mut c, &nm, None, None, None);
    t.0.push(format!("no oldlenp: errno {}", a.errno));

    // A second client's sockets are listed too; closed ones are not.
    let mut c2 = connect(url, "pcbpeer");
    let o = t.fd(
        "other client's seqpacket",
        c2.socket(AF_LOCAL, SOCK_SEQPACKET, 0),
    );
    let _ = o;
    for fd in [lis, cl, acc, d1, sq] {
        let r = c.close(fd);
        t.unit(&format!("close {fd}"), r);
    }
    list_all(&mut t, &mut c, "closed");
    t
}

impl Transcript {
    fn fd(&mut self, name: &str, r: client::Result<i32>) -> i32 {
        let fd = *r.as_ref().unwrap_or(&-1);
        self.unit(name, r);
        fd
    }
}

//! NetBSD's tests/net/net/t_tcp.c over lo0 in one server: a non-blocking listener, a
//! non-blocking connect (EINPROGRESS, then EISCONN once accepted), and what the accepted
//! socket's O_NONBLOCK is after accept(2) (kept from the listener), paccept(2) with 0
//! (cleared) or SOCK_NONBLOCK (set), and after fcntl(F_SETFL) clears it; a read on a
//! non-blocking one (EWOULDBLOCK); getpeereid on TCP sockets (its getsockopt at level 0,
//! which on an inet socket is IPPROTO_IP's IP_OPTIONS: t_tcp.c's "garbage"). For IPv4 to IPv4,
//! IPv6 to IPv6, and IPv4 to an IPv6 listener on `::` with IPV6_V6ONLY off (v4-mapped).
//! Recorded from NetBSD's rump_server (`-lrumpnet -lrumpnet_net -lrumpnet_netinet
//! -lrumpnet_netinet6`) by `cargo run --example oracle_netbsd_tcp -- URL >
//! tests/oracle/netbsd-tcp.netbsd`; `tests/netbsd_net_tcp.rs` replays it.

use std::time::Duration;

use client::Client;

use crate::transcript::{connect, Transcript};

const SOCK_STREAM: i32 = 1;
const SOCK_NONBLOCK: i32 = 0x2000_0000;
const F_GETFL: u32 = 3;
const F_SETFL: u32 = 4;
const O_NONBLOCK: u64 = 4;

fn sa(af: i32, any: bool, port: u16) -> Vec<u8> {
    if af == 2 {
        let mut s = vec![16, 2];
        s.extend_from_slice(&port.to_be_bytes());
        s.extend_from_slice(&[127, 0, 0, 1]);
        s.resize(16, 0);
        s
    } else {
        let mut s = vec![28, 24];
        s.extend_from_slice(&port.to_be_bytes());
        s.extend_from_slice(&[0; 4]);
        let mut a = [0u8; 16];
        if !any {
            a[15] = 1;
        }
        s.extend_from_slice(&a);
        s.extend_from_slice(&[0; 4]);
        s
    }
}

/// One `accept_test(sfamily, cfamily, useaccept, accept4_block, fcntlblock)`.
fn accept_test(t: &mut Transcript, c: &mut Client, tag: &str, sf: i32, cf: i32, how: &str) {
    let srvr = match c.socket(sf, SOCK_STREAM | SOCK_NONBLOCK, 0) {
        Ok(s) => s,
        Err(e) => return t.unit(&format!("{tag} socket"), Err::<(), _>(e)),
    };
    if sf == 24 && cf == 2 {
        // IPV6_V6ONLY off.
        let r = c.setsockopt(srvr, 41, 27, &0i32.to_le_bytes());
        t.unit(&format!("{tag} IPV6_V6ONLY 0"), r);
    }
    let r = c.bind(srvr, &sa(sf, sf == 24 && cf == 2, 0));
    t.unit(&format!("{tag} bind"), r);
    let port = match c.getsockname(srvr) {
        Ok(n) if n.len() >= 4 => u16::from_be_bytes([n[2], n[3]]),
        _ => 0,
    };
    t.unit(&format!("{tag} listen"), c.listen(srvr, 128));
    let clnt = c
        .socket(cf, SOCK_STREAM | SOCK_NONBLOCK, 0)
        .expect("client socket");
    let to = sa(cf, false, port);
    t.unit(&format!("{tag} connect"), c.connect_sock(clnt, &to));
    std::thread::sleep(Duration::from_millis(300));
    let acpt = match how {
        "accept" => c.accept(srvr),
        "accept4 block" => c.paccept(srvr, 0),
        _ => c.paccept(srvr, SOCK_NONBLOCK),
    };
    let acpt = match acpt {
        Ok((a, _)) => {
            t.unit(&format!("{tag} {how}"), Ok::<(), client::Error>(()));
            Some(a)
        }
        Err(e) => {
            t.unit(&format!("{tag} {how}"), Err::<(), _>(e));
            None
        }
    };
    t.unit(&format!("{tag} connect again"), c.connect_sock(clnt, &to));
    let Some(acpt) = acpt else { return };
    let r = c.fcntl(acpt, F_GETFL, 0);
    t.step(&format!("{tag} F_GETFL accepted"), r, |v| format!("{v:#x}"));
    if how == "fcntl" || how == "accept" {
        let fl = c.fcntl(acpt, F_GETFL, 0).unwrap_or(0) as u64;
        t.unit(
            &format!("{tag} F_SETFL clear"),
            c.fcntl(acpt, F_SETFL, fl & !O_NONBLOCK),
        );
        let r = c.fcntl(acpt, F_GETFL, 0);
        t.step(&format!("{tag} F_GETFL after"), r, |v| format!("{v:#x}"));
    }
    if c.fcntl(acpt, F_GETFL, 0).unwrap_or(0) as u64 & O_NONBLOCK != 0 {
        let mut buf = [0u8; 10];
        let r = c.read(acpt, &mut buf);
        t.step(&format!("{tag} read"), r, |n| n.to_string());
    }
    // getpeereid: LOCAL_PEEREID (3) at level 0 — IP_OPTIONS on an inet socket.
    for (who, s) in [("clnt", clnt), ("acpt", acpt)] {
        let r = c.getsockopt(s, 0, 3, 12);
        t.step(&format!("{tag} getpeereid {who}"), r, |b| {
            format!("len {}", b.len())
        });
    }
    let _ = c.close(acpt);
    let _ = c.close(clnt);
    let _ = c.close(srvr);
}

/// The ten cases of t_tcp.c.
pub fn run(url: &str) -> Transcript {
    let mut c = connect(url, "t_tcp");
    let mut t = Transcript::default();
    for (name, sf, cf, how) in [
        ("accept_44_preserve_nonblock", 2, 2, "accept"),
        ("accept4_44_reset_nonblock", 2, 2, "accept4 block"),
        ("fcntl44_reset_nonblock", 2, 2, "fcntl"),
        ("accept4_44_nonblock", 2, 2, "accept4 nonblock"),
        ("accept4_66_reset_nonblock", 24, 24, "accept4 block"),
        ("fcntl66_reset_nonblock", 24, 24, "fcntl"),
        ("accept4_66_nonblock", 24, 24, "accept4 nonblock"),
        ("accept4_46_reset_nonblock", 24, 2, "accept4 block"),
        ("fcntl46_reset_nonblock", 24, 2, "fcntl"),
        ("accept4_46_nonblock", 24, 2, "accept4 nonblock"),
    ] {
        accept_test(&mut t, &mut c, name, sf, cf, how);
    }
    t
}

//! NetBSD's tests/net/net/t_udp.c (udp4_send, udp6_send: sendto twice on an unconnected
//! socket, then connect and send, connect again and send, to a socket bound on localhost
//! port 9999; here also what the bound socket receives) and t_raw.c (PRU_SENSE: fstat of
//! a PF_ROUTE raw socket) in one server with `-lrumpnet -lrumpnet_net -lrumpnet_netinet
//! -lrumpnet_netinet6`. Recorded from NetBSD's rump_server by `cargo run --example
//! oracle_netbsd_udp_raw -- URL > tests/oracle/netbsd-udp-raw.netbsd`; replayed by
//! `tests/netbsd_net_udp_raw.rs`.

use client::Client;

use crate::transcript::{connect, Transcript};

const MSG: &[u8] = b"sendto test\0";

fn localhost(af: i32, port: u16) -> Vec<u8> {
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
        a[15] = 1;
        s.extend_from_slice(&a);
        s.extend_from_slice(&[0; 4]);
        s
    }
}

fn sendit(t: &mut Transcript, c: &mut Client, tag: &str, af: i32) {
    let sa = localhost(af, 9999);
    let srv = c.socket(af, 2, 17).expect("server socket");
    t.unit(&format!("{tag} bind localhost 9999"), c.bind(srv, &sa));
    let s = c.socket(af, 2, 17).expect("client socket");
    let n = |r: client::Result<usize>| r;
    t.step(
        &format!("{tag} sendto 1"),
        n(c.sendto(s, MSG, 0, Some(&sa))),
        |k| k.to_string(),
    );
    t.step(
        &format!("{tag} sendto 2"),
        n(c.sendto(s, MSG, 0, Some(&sa))),
        |k| k.to_string(),
    );
    t.unit(&format!("{tag} connect 1"), c.connect_sock(s, &sa));
    t.step(
        &format!("{tag} send 1"),
        n(c.sendto(s, MSG, 0, None)),
        |k| k.to_string(),
    );
    t.unit(&format!("{tag} connect 2"), c.connect_sock(s, &sa));
    t.step(
        &format!("{tag} send 2"),
        n(c.sendto(s, MSG, 0, None)),
        |k| k.to_string(),
    );
    let me = c.getsockname(s).unwrap_or_default();
    let mut tv = 1i64.to_le_bytes().to_vec();
    tv.extend_from_slice(&[0; 8]);
    let _ = c.setsockopt(srv, 0xffff, 0x100c, &tv);
    for k in 1..=5 {
        let mut buf = [0u8; 64];
        let r = c.recvfrom(srv, &mut buf, 0);
        t.step(&format!("{tag} server recvfrom {k}"), r, |(got, from)| {
            // The sender's address without its (anonymous) port.
            let same = from.len() == me.len() && from[..2] == me[..2] && from[4..] == me[4..];
            format!(
                "{got} bytes, same {}, from len {}",
                same && buf[..got] == *MSG,
                from.len()
            )
        });
    }
    let _ = c.close(s);
    let _ = c.close(srv);
}

/// The probe.
pub fn run(url: &str) -> Transcript {
    let mut c = connect(url, "t_udp");
    let mut t = Transcript::default();
    sendit(&mut t, &mut c, "udp4_send", 2);
    sendit(&mut t, &mut c, "udp6_send", 24);
    // t_raw.c PRU_SENSE.
    match c.socket(34, 3, 0) {
        Ok(s) => {
            t.unit("PRU_SENSE socket PF_ROUTE", Ok::<(), client::Error>(()));
            let r = c.fstat(s);
            t.step("PRU_SENSE fstat", r, |st| {
                format!("mode {:o} size {} blksize {}", st.mode, st.size, st.blksize)
            });
        }
        Err(e) => t.unit("PRU_SENSE socket PF_ROUTE", Err::<(), _>(e)),
    }
    t
}

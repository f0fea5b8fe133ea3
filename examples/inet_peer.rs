//! The TCP/IP faction by hand against any server (ours or NetBSD's rump_server with
//! -lrumpnet_netinet -lrumpnet_shmif), over the Rust client:
//! `inet_peer URL ifconfig NAME BUS ADDR` · `inet_peer URL ping ADDR [COUNT]` ·
//! `inet_peer URL echo-server PORT` (one connection; `echo-server6` over IPv6) ·
//! `inet_peer URL echo ADDR PORT BYTES` (ADDR IPv4 or IPv6) ·
//! `inet_peer URL sink PORT` (one connection, reads to EOF) · `inet_peer URL send ADDR PORT
//! BYTES` (bulk TCP, timed from connect to the sink's close; benches/run-netinet.sh) ·
//! `inet_peer URL route DST/PREFIX GW`.
//! docs/netinet.md shows the sessions with NetBSD's server.

#[path = "../tests/netinet/peer.rs"]
mod peer;

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let usage = || -> ! {
        eprintln!("usage: inet_peer URL (ifconfig NAME BUS ADDR | ping ADDR [COUNT] | echo-server PORT | echo-server6 PORT | echo ADDR PORT BYTES | sink PORT | send ADDR PORT BYTES | route DST/PREFIX GW)");
        std::process::exit(2)
    };
    if a.len() < 2 {
        usage();
    }
    let mut c = client::Client::connect(&a[0]).unwrap_or_else(|e| {
        eprintln!("inet_peer: {}: {e}", a[0]);
        std::process::exit(1)
    });
    let ip = |s: &str| s.parse().unwrap_or_else(|_| usage());
    let r = match (a[1].as_str(), &a[2..]) {
        ("ifconfig", [name, bus, addr]) => {
            peer::ifconfig_shmif(&mut c, name, bus, ip(addr)).map(|()| "ok".to_string())
        }
        ("ping", [addr, rest @ ..]) => {
            let n = rest.first().and_then(|s| s.parse().ok()).unwrap_or(3);
            let t = std::time::Instant::now();
            peer::ping(&mut c, ip(addr), n).map(|(got, ttl)| {
                let per_ms = t.elapsed().as_secs_f64() * 1e3 / f64::from(n.max(1));
                format!("{n} sent, {got} replies, ttl {ttl}, {per_ms:.3} ms per echo")
            })
        }
        ("echo-server", [port]) => {
            peer::tcp_listen(&mut c, port.parse().unwrap_or_else(|_| usage()))
                .and_then(|l| peer::tcp_echo_once(&mut c, l))
                .map(|n| format!("echoed {n} bytes"))
        }
        ("echo-server6", [port]) => {
            peer::tcp_listen6(&mut c, port.parse().unwrap_or_else(|_| usage()))
                .and_then(|l| peer::tcp_echo_once(&mut c, l))
                .map(|n| format!("echoed {n} bytes"))
        }
        ("echo", [addr, port, n]) => {
            let n: usize = n.parse().unwrap_or_else(|_| usage());
            peer::tcp_echo_client_ip(
                &mut c,
                addr.parse::<std::net::IpAddr>().unwrap_or_else(|_| usage()),
                port.parse().unwrap_or_else(|_| usage()),
                n,
            )
            .map(|d| {
                format!(
                    "{n} bytes out and back identical in {:.3} s",
                    d.as_secs_f64()
                )
            })
        }
        ("sink", [port]) => peer::tcp_listen(&mut c, port.parse().unwrap_or_else(|_| usage()))
            .and_then(|l| peer::tcp_sink_once(&mut c, l))
            .map(|n| format!("sank {n} bytes")),
        ("send", [addr, port, n]) => {
            let n: usize = n.parse().unwrap_or_else(|_| usage());
            peer::tcp_send(
                &mut c,
                ip(addr),
                port.parse().unwrap_or_else(|_| usage()),
                n,
            )
            .map(|d| {
                let s = d.as_secs_f64();
                format!("{n} bytes sent in {s:.3} s: {:.1} MB/s", n as f64 / s / 1e6)
            })
        }
        ("route", [dst, gw]) => {
            let (d, p) = dst.split_once('/').unwrap_or((dst.as_str(), "32"));
            peer::route_add(&mut c, ip(d), p.parse().unwrap_or_else(|_| usage()), ip(gw))
                .map(|()| "ok".to_string())
        }
        _ => usage(),
    };
    match r {
        Ok(s) => println!("{s}"),
        Err(e) => {
            eprintln!("inet_peer: {e}");
            std::process::exit(1)
        }
    }
}

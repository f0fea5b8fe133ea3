//! A syslog daemon for a rump kernel by hand (docs/netinet.md, rtadvd): binds the
//! AF_LOCAL datagram socket `/var/run/log` in the server at URL (with `-lrumpvfs
//! -lrumpnet_local`) and prints what arrives for SECONDS.

use std::time::{Duration, Instant};

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 2 {
        eprintln!("usage: rump_syslog URL SECONDS");
        std::process::exit(1);
    }
    let mut c = client::Client::connect_named(&a[0], "rump_syslog").expect("connect");
    let s = c.socket(1, 2, 0).expect("socket");
    c.bind(s, &client::net::sockaddr_un(b"/var/run/log"))
        .expect("bind /var/run/log");
    let end = Instant::now() + Duration::from_secs(a[1].parse().unwrap_or(10));
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        match c.recvfrom(s, &mut buf, 0x80) {
            Ok((n, _)) => println!("{}", String::from_utf8_lossy(&buf[..n])),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

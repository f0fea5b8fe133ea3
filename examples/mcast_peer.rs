//! Multicast by hand against any server, NetBSD's included (docs/netinet.md):
//! `mcast_peer URL recv GROUP PORT IF N` joins GROUP on IF (an IPv4 address of the
//! interface, or an interface index for an IPv6 group), binds PORT and prints the first N
//! datagrams (10 s at most); `mcast_peer URL send GROUP PORT IF TTL TEXT` sends TEXT to
//! the group out of IF with that TTL/hop limit.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use client::Client;

fn sa(a: IpAddr, port: u16) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => client::net::sockaddr_in(v.octets(), port),
        IpAddr::V6(v) => client::net::sockaddr_in6(v.octets(), port),
    }
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 6 {
        eprintln!("usage: mcast_peer URL recv|send GROUP PORT IF N|TTL [TEXT]");
        std::process::exit(1);
    }
    let mut c = Client::connect_named(&a[0], "mcast_peer").expect("connect");
    let g: IpAddr = a[2].parse().expect("group");
    let port: u16 = a[3].parse().expect("port");
    let v6 = g.is_ipv6();
    let (fam, level) = if v6 { (24, 41) } else { (2, 0) };
    let s = c.socket(fam, 2, 0).expect("socket");
    let ifv: Vec<u8> = if v6 {
        a[4].parse::<u32>().expect("index").to_le_bytes().to_vec()
    } else {
        a[4].parse::<Ipv4Addr>().expect("address").octets().to_vec()
    };
    if a[1] == "recv" {
        let mut m = match g {
            IpAddr::V4(v) => v.octets().to_vec(),
            IpAddr::V6(v) => v.octets().to_vec(),
        };
        m.extend_from_slice(&ifv);
        c.setsockopt(s, level, 12, &m).expect("join");
        let any = if v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        c.bind(s, &sa(any, port)).expect("bind");
        let n: usize = a[5].parse().unwrap_or(1);
        let end = Instant::now() + Duration::from_secs(10);
        let mut got = 0;
        let mut buf = [0u8; 1500];
        while got < n && Instant::now() < end {
            match c.recvfrom(s, &mut buf, 0x80) {
                Ok((k, from)) => {
                    let who = if v6 {
                        Ipv6Addr::from(<[u8; 16]>::try_from(&from[8..24]).unwrap()).to_string()
                    } else {
                        Ipv4Addr::new(from[4], from[5], from[6], from[7]).to_string()
                    };
                    println!(
                        "{k} bytes from {who}: {}",
                        String::from_utf8_lossy(&buf[..k])
                    );
                    got += 1;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        println!("{got} datagrams");
    } else {
        c.setsockopt(s, level, 9, &ifv).expect("multicast if");
        let ttl: i32 = a[5].parse().expect("ttl");
        let t = if v6 {
            ttl.to_le_bytes().to_vec()
        } else {
            vec![ttl as u8]
        };
        c.setsockopt(s, level, 10, &t).expect("ttl");
        let text = a.get(6).cloned().unwrap_or_default();
        let n = c
            .sendto(s, text.as_bytes(), 0, Some(&sa(g, port)))
            .expect("send");
        println!("sent {n} bytes");
    }
}

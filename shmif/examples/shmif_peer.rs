//! A tiny host on a shmif bus, to try the bus against NetBSD's own shmif interfaces:
//! `shmif_peer BUS 10.0.1.2 [--ping 10.0.1.1] [--seconds N]` joins the bus as
//! `b2:a0:01:02:03:04`, answers ARP requests and ICMP echo requests for its address, and
//! with `--ping` first resolves the target by ARP and sends it three echo requests,
//! printing what comes back. It prints one line per frame it answers or receives for it.
//! (docs/shmif.md: NetBSD's `ping` against it, and it against NetBSD's interface.)

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const MAC: [u8; 6] = [0xb2, 0xa0, 0x01, 0x02, 0x03, 0x04];
const SENDER: u64 = 0x5eed_0000_0000_0001;

fn csum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn eth(dst: [u8; 6], ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&MAC);
    f.extend_from_slice(&ty.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn arp(op: u16, tha: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&MAC);
    a.extend_from_slice(&spa.octets());
    a.extend_from_slice(&tha);
    a.extend_from_slice(&tpa.octets());
    a
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, 0, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let c = csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn icmp(ty: u8, rest: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, 0, 0, 0];
    m.extend_from_slice(rest);
    let c = csum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn uptime(start: Instant) -> (u32, u32) {
    let d = start.elapsed();
    (d.as_secs() as u32, d.subsec_micros())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: shmif_peer BUS ADDR [--ping ADDR] [--seconds N]");
        std::process::exit(2);
    }
    let me: Ipv4Addr = args[1].parse().expect("ADDR");
    let mut ping: Option<Ipv4Addr> = None;
    let mut seconds = 5u64;
    let mut i = 2;
    while i < args.len() {
        match args[i].as_str() {
            "--ping" => ping = Some(args[i + 1].parse().expect("ping ADDR")),
            "--seconds" => seconds = args[i + 1].parse().expect("seconds"),
            a => panic!("unknown argument {a}"),
        }
        i += 2;
    }
    let start = Instant::now();
    let (bus, mut rd) = shmif::Bus::open(args[0].as_ref()).expect("open bus");
    let watch = shmif::Watch::new(bus.path()).expect("watch bus");
    let send = |f: &[u8]| {
        let (s, u) = uptime(start);
        bus.send(f, SENDER, s, u).expect("send");
    };
    println!("joined {} as {:02x?} {me}", args[0], MAC);
    let mut peer_mac: Option<[u8; 6]> = None;
    let mut sent_pings = 0;
    if let Some(t) = ping {
        send(&eth([0xff; 6], 0x0806, &arp(1, [0; 6], me, t)));
        println!("sent ARP who-has {t}");
    }
    let deadline = start + Duration::from_secs(seconds);
    let mut buf = [0u8; shmif::FRAME_MAX];
    while Instant::now() < deadline {
        let r = match rd.recv(&bus, &mut buf) {
            Ok(Some(r)) => r,
            Ok(None) => {
                let _ = watch.wait(Duration::from_millis(100));
                continue;
            }
            Err(e) => {
                println!("bus: {e}");
                continue;
            }
        };
        if r.sender == SENDER {
            continue;
        }
        let f = &buf[..r.len];
        let dst: [u8; 6] = f[0..6].try_into().unwrap();
        if dst != MAC && dst != [0xff; 6] {
            continue;
        }
        let src: [u8; 6] = f[6..12].try_into().unwrap();
        let ty = u16::from_be_bytes([f[12], f[13]]);
        let p = &f[14..];
        if ty == 0x0806 && p.len() >= 28 {
            let op = u16::from_be_bytes([p[6], p[7]]);
            let spa = Ipv4Addr::new(p[14], p[15], p[16], p[17]);
            let tpa = Ipv4Addr::new(p[24], p[25], p[26], p[27]);
            if op == 1 && tpa == me {
                println!("ARP who-has {me} from {spa} {src:02x?}: replied");
                send(&eth(src, 0x0806, &arp(2, src, me, spa)));
            } else if op == 2 && Some(spa) == ping {
                println!("ARP reply: {spa} is at {src:02x?}");
                peer_mac = Some(src);
            }
        } else if ty == 0x0800 && p.len() >= 28 && p[9] == 1 {
            let ihl = usize::from(p[0] & 0xf) * 4;
            let src_ip = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
            let m = &p[ihl..];
            if m[0] == 8 {
                println!(
                    "ICMP echo request from {src_ip} seq {}: replied",
                    u16::from_be_bytes([m[6], m[7]])
                );
                send(&eth(src, 0x0800, &ipv4(me, src_ip, 1, &icmp(0, &m[4..]))));
            } else if m[0] == 0 {
                println!(
                    "ICMP echo reply from {src_ip} seq {}",
                    u16::from_be_bytes([m[6], m[7]])
                );
            }
        }
        if let (Some(t), Some(mac)) = (ping, peer_mac) {
            while sent_pings < 3 {
                sent_pings += 1;
                let mut rest = vec![0x42, 0x42, 0, sent_pings as u8];
                rest.extend_from_slice(b"rump shmif probe");
                send(&eth(mac, 0x0800, &ipv4(me, t, 1, &icmp(8, &rest))));
                println!("sent ICMP echo request to {t} seq {sent_pings}");
            }
        }
    }
}

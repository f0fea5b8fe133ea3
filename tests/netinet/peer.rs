//! A client's side of the TCP/IP faction over the Rust client: `ifconfig` by ioctl,
//! ping over a raw ICMP socket, a TCP echo both ways, UDP. Shared by tests/netinet.rs and
//! examples/inet_peer.rs (which runs it against any server, NetBSD's included).

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use client::{addr_of, Buf};
use client::{int_arg, Client, Error};

pub const AF_INET: i32 = 2;
pub const SOCK_STREAM: i32 = 1;
pub const SOCK_DGRAM: i32 = 2;
pub const SOCK_RAW: i32 = 3;
const SYS_IOCTL: u32 = 54;
const SIOCIFCREATE: u32 = 0x8090_697a;
const SIOCSLINKSTR: u32 = 0x8028_6988;
const SIOCAIFADDR: u32 = 0x8040_691a;
const SIOCGIFFLAGS: u32 = 0xc090_6911;
const SOL_SOCKET: i32 = 0xffff;
const SO_RCVTIMEO: i32 = 0x100c;

pub fn sin(a: Ipv4Addr, port: u16) -> Vec<u8> {
    let mut s = vec![16, 2];
    s.extend_from_slice(&port.to_be_bytes());
    s.extend_from_slice(&a.octets());
    s.extend_from_slice(&[0; 8]);
    s
}

fn ifreq(name: &str) -> Vec<u8> {
    let mut r = vec![0u8; 144];
    r[..name.len()].copy_from_slice(name.as_bytes());
    r
}

/// `ioctl(s, com, data)` with `data` read and written.
pub fn ioctl(c: &mut Client, s: i32, com: u32, data: &mut [u8], extra: &[u8]) -> Result<(), Error> {
    let args = [int_arg(s), u64::from(com), addr_of(data)];
    c.syscall(SYS_IOCTL, &args, &mut [Buf::InOut(data), Buf::In(extra)])?;
    Ok(())
}

/// `ifconfig NAME create; ifconfig NAME linkstr BUS; ifconfig NAME inet ADDR netmask 255.255.255.0`.
pub fn ifconfig_shmif(c: &mut Client, name: &str, bus: &str, addr: Ipv4Addr) -> Result<(), Error> {
    let s = c.socket(AF_INET, SOCK_DGRAM, 0)?;
    let mut r = ifreq(name);
    ioctl(c, s, SIOCIFCREATE, &mut r, &[])?;
    let mut path = bus.as_bytes().to_vec();
    path.push(0);
    let mut d = vec![0u8; 40];
    d[..name.len()].copy_from_slice(name.as_bytes());
    d[24..32].copy_from_slice(&(path.len() as u64).to_le_bytes());
    d[32..40].copy_from_slice(&addr_of(&path).to_le_bytes());
    ioctl(c, s, SIOCSLINKSTR, &mut d, &path)?;
    let mut a = vec![0u8; 64];
    a[..name.len()].copy_from_slice(name.as_bytes());
    a[16..32].copy_from_slice(&sin(addr, 0));
    a[48..64].copy_from_slice(&sin(Ipv4Addr::new(255, 255, 255, 0), 0));
    ioctl(c, s, SIOCAIFADDR, &mut a, &[])?;
    c.close(s)?;
    Ok(())
}

/// `SIOCGIFFLAGS`.
pub fn if_flags(c: &mut Client, name: &str) -> Result<u16, Error> {
    let s = c.socket(AF_INET, SOCK_DGRAM, 0)?;
    let mut r = ifreq(name);
    let res = ioctl(c, s, SIOCGIFFLAGS, &mut r, &[]);
    c.close(s)?;
    res?;
    Ok(u16::from_le_bytes([r[16], r[17]]))
}

fn csum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for ch in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([ch[0], *ch.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn set_rcvtimeo(c: &mut Client, s: i32, secs: i64) -> Result<(), Error> {
    let mut tv = secs.to_le_bytes().to_vec();
    tv.extend_from_slice(&[0; 8]);
    c.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv)
}

/// Sends `count` echo requests over a raw ICMP socket and returns how many replies came
/// (each within 2 s) and the TTL of the last.
pub fn ping(c: &mut Client, to: Ipv4Addr, count: u16) -> Result<(u16, u8), Error> {
    let s = c.socket(AF_INET, SOCK_RAW, 1)?;
    set_rcvtimeo(c, s, 2)?;
    let id = std::process::id() as u16;
    let (mut got, mut ttl) = (0, 0);
    for seq in 0..count {
        let mut m = vec![8, 0, 0, 0];
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&seq.to_be_bytes());
        m.extend_from_slice(&[0x5a; 48]);
        let k = csum(&m);
        m[2..4].copy_from_slice(&k.to_be_bytes());
        c.sendto(s, &m, 0, Some(&sin(to, 0)))?;
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(2) {
            let mut buf = [0u8; 2048];
            let (n, _) = match c.recvfrom(s, &mut buf, 0) {
                Ok(x) => x,
                Err(Error::Errno(35)) => break,
                Err(e) => return Err(e),
            };
            let hl = usize::from(buf[0] & 0xf) * 4;
            if n >= hl + 8
                && buf[hl] == 0
                && buf[hl + 4..hl + 6] == id.to_be_bytes()
                && buf[hl + 6..hl + 8] == seq.to_be_bytes()
            {
                got += 1;
                ttl = buf[8];
                break;
            }
        }
    }
    c.close(s)?;
    Ok((got, ttl))
}

/// A TCP listener on `port` (INADDR_ANY).
pub fn tcp_listen(c: &mut Client, port: u16) -> Result<i32, Error> {
    let s = c.socket(AF_INET, SOCK_STREAM, 0)?;
    c.bind(s, &sin(Ipv4Addr::UNSPECIFIED, port))?;
    c.listen(s, 5)?;
    Ok(s)
}

/// Accepts one connection on `l`, reads until the peer shuts down its side, writes it all
/// back and closes; returns the bytes seen.
pub fn tcp_echo_once(c: &mut Client, l: i32) -> Result<usize, Error> {
    let (s, _) = c.accept(l)?;
    let mut all = Vec::new();
    let mut buf = vec![0u8; 16384];
    loop {
        let n = c.read(s, &mut buf)?;
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
    }
    let mut off = 0;
    while off < all.len() {
        off += c.write(s, &all[off..(off + 16384).min(all.len())])?;
    }
    c.close(s)?;
    Ok(all.len())
}

/// Accepts one connection on `l`, reads (64 KiB at a time) until the peer shuts down its
/// side and closes; returns the bytes seen.
pub fn tcp_sink_once(c: &mut Client, l: i32) -> Result<usize, Error> {
    let (s, _) = c.accept(l)?;
    let mut buf = vec![0u8; 65536];
    let mut total = 0;
    loop {
        let n = c.read(s, &mut buf)?;
        if n == 0 {
            break;
        }
        total += n;
    }
    c.close(s)?;
    Ok(total)
}

/// Connects to `to:port`, writes `n` bytes 64 KiB at a time, shuts down its side and waits
/// for the peer's close (so every byte was read); returns the time from connect to close.
pub fn tcp_send(c: &mut Client, to: Ipv4Addr, port: u16, n: usize) -> Result<Duration, Error> {
    let s = c.socket(AF_INET, SOCK_STREAM, 0)?;
    let data = pattern(65536);
    let t = Instant::now();
    c.connect_sock(s, &sin(to, port))?;
    let mut off = 0;
    while off < n {
        let k = (n - off).min(data.len());
        off += c.write(s, &data[..k])?;
    }
    c.shutdown(s, 1)?;
    let mut buf = [0u8; 64];
    while c.read(s, &mut buf)? != 0 {}
    let d = t.elapsed();
    c.close(s)?;
    Ok(d)
}

/// The pattern a TCP test sends.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A `sockaddr_in6`.
pub fn sin6(a: std::net::Ipv6Addr, port: u16) -> Vec<u8> {
    let mut s = vec![28, 24];
    s.extend_from_slice(&port.to_be_bytes());
    s.extend_from_slice(&[0; 4]);
    s.extend_from_slice(&a.octets());
    s.extend_from_slice(&[0; 4]);
    s
}

/// A TCP listener on `[::]:port` (AF_INET6).
pub fn tcp_listen6(c: &mut Client, port: u16) -> Result<i32, Error> {
    let l = c.socket(24, SOCK_STREAM, 0)?;
    c.bind(l, &sin6(std::net::Ipv6Addr::UNSPECIFIED, port))?;
    c.listen(l, 4)?;
    Ok(l)
}

/// Connects to `to:port`, sends `n` bytes, shuts down its side, reads the echo and checks
/// it; returns the time the round trip took.
pub fn tcp_echo_client(
    c: &mut Client,
    to: Ipv4Addr,
    port: u16,
    n: usize,
) -> Result<Duration, Error> {
    tcp_echo_client_ip(c, std::net::IpAddr::V4(to), port, n)
}

/// [`tcp_echo_client`] over IPv4 or IPv6.
pub fn tcp_echo_client_ip(
    c: &mut Client,
    to: std::net::IpAddr,
    port: u16,
    n: usize,
) -> Result<Duration, Error> {
    let t = Instant::now();
    let (s, sa) = match to {
        std::net::IpAddr::V4(a) => (c.socket(AF_INET, SOCK_STREAM, 0)?, sin(a, port)),
        std::net::IpAddr::V6(a) => (c.socket(24, SOCK_STREAM, 0)?, sin6(a, port)),
    };
    c.connect_sock(s, &sa)?;
    let data = pattern(n);
    let mut off = 0;
    while off < n {
        off += c.write(s, &data[off..(off + 16384).min(n)])?;
    }
    c.shutdown(s, 1)?;
    let mut back = Vec::new();
    let mut buf = vec![0u8; 16384];
    loop {
        let k = c.read(s, &mut buf)?;
        if k == 0 {
            break;
        }
        back.extend_from_slice(&buf[..k]);
    }
    c.close(s)?;
    assert!(
        back == data,
        "echo differs: {} of {} bytes back",
        back.len(),
        n
    );
    Ok(t.elapsed())
}

/// `route add DST/PREFIX GW` through a routing socket (`RTM_ADD`, as route(8) writes it).
pub fn route_add(c: &mut Client, dst: Ipv4Addr, prefix: u8, gw: Ipv4Addr) -> Result<(), Error> {
    let s = c.socket(34, SOCK_RAW, 0)?;
    let mut m = vec![0u8; 120];
    m[2] = 4; // RTM_VERSION
    m[3] = 1; // RTM_ADD
    let flags: i32 = 0x1 | 0x2 | 0x800 | if prefix == 32 { 0x4 } else { 0 };
    m[8..12].copy_from_slice(&flags.to_le_bytes());
    m[12..16].copy_from_slice(&(0x1 | 0x2 | 0x4i32).to_le_bytes());
    m[20..24].copy_from_slice(&1i32.to_le_bytes());
    m.extend_from_slice(&sin(dst, 0));
    m.extend_from_slice(&sin(gw, 0));
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    };
    m.extend_from_slice(&sin(Ipv4Addr::from(mask), 0));
    let len = m.len() as u16;
    m[0..2].copy_from_slice(&len.to_le_bytes());
    let r = c.write(s, &m);
    c.close(s)?;
    r.map(|_| ())
}

/// `__sysctl(name)` read whole (a size probe, then the data).
pub fn sysctl_read(c: &mut Client, name: &[i32]) -> Result<Vec<u8>, Error> {
    let nm: Vec<u8> = name.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut len = 0u64.to_le_bytes();
    let args = [addr_of(&nm), name.len() as u64, 0, addr_of(&len), 0, 0];
    c.syscall(202, &args, &mut [Buf::In(&nm), Buf::InOut(&mut len)])?;
    let n = u64::from_le_bytes(len) as usize + 512;
    let mut old = vec![0u8; n];
    let mut len = (n as u64).to_le_bytes();
    let args = [
        addr_of(&nm),
        name.len() as u64,
        addr_of(&old),
        addr_of(&len),
        0,
        0,
    ];
    c.syscall(
        202,
        &args,
        &mut [Buf::In(&nm), Buf::Out(&mut old), Buf::InOut(&mut len)],
    )?;
    old.truncate(u64::from_le_bytes(len) as usize);
    Ok(old)
}

/// `arp -an` through `net.route.0.inet.flags.0`: (address, link address, permanent).
pub fn arp_entries(c: &mut Client) -> Result<Vec<(Ipv4Addr, Vec<u8>, bool)>, Error> {
    let b = sysctl_read(c, &[4, 34, 0, 2, 2, 0])?;
    let mut out = Vec::new();
    let mut off = 0;
    while off + 120 <= b.len() {
        let len = usize::from(u16::from_le_bytes([b[off], b[off + 1]]));
        if len < 120 || off + len > b.len() {
            break;
        }
        let m = &b[off..off + len];
        let expire = i64::from_le_bytes(m[104..112].try_into().unwrap());
        let dst = Ipv4Addr::new(m[124], m[125], m[126], m[127]);
        let sdl = &m[136..];
        let (nlen, alen) = (usize::from(sdl[5]), usize::from(sdl[6]));
        out.push((dst, sdl[8 + nlen..8 + nlen + alen].to_vec(), expire == 0));
        off += len;
    }
    Ok(out)
}

/// One echo request with IP TTL `ttl` over a raw socket with `IP_HDRINCL` (as traceroute:
/// NetBSD's `rip_output` sends MAXTTL whatever `IP_TTL` says); the ICMP type and source of
/// the first answer (an echo reply, or a router's time exceeded), within 2 s.
pub fn probe_ttl(c: &mut Client, to: Ipv4Addr, ttl: i32) -> Result<Option<(u8, Ipv4Addr)>, Error> {
    let s = c.socket(AF_INET, SOCK_RAW, 1)?;
    set_rcvtimeo(c, s, 2)?;
    c.setsockopt(s, 0, 2, &1i32.to_le_bytes())?; // IP_HDRINCL
    let mut m = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
    m.extend_from_slice(&[0x5a; 16]);
    let k = csum(&m);
    m[2..4].copy_from_slice(&k.to_be_bytes());
    // The header: ip_len and ip_off in host order (NetBSD's raw output), the source and
    // the checksum left to the kernel.
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&((20 + m.len()) as u16).to_le_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, ttl as u8, 1, 0, 0, 0, 0, 0, 0]);
    p.extend_from_slice(&to.octets());
    p.extend_from_slice(&m);
    c.sendto(s, &p, 0, Some(&sin(to, 0)))?;
    let mut buf = [0u8; 2048];
    let r = match c.recvfrom(s, &mut buf, 0) {
        Ok((n, _)) if n >= 28 => {
            let hl = usize::from(buf[0] & 0xf) * 4;
            Some((buf[hl], Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15])))
        }
        Ok(_) | Err(Error::Errno(35)) => None,
        Err(e) => return Err(e),
    };
    c.close(s)?;
    Ok(r)
}

//! The router advertisement probe (issue 16, nd6_rtr.c): `net.inet6.ip6.accept_rtadv`
//! (0 by default), then a router advertisement written onto the bus by hand (from
//! fe80::99, router lifetime 1800 s, prefix fc00:1::/64 on-link and autonomous, the
//! router's link address): ignored while the knob is 0; once it is 1, the interface gets
//! an address of the prefix with its own interface id (`IN6_IFF_AUTOCONF`, after DAD),
//! the router is the default route and a neighbour; an advertisement with lifetime 0
//! takes the default route away. Run against a server started in directory `dir` with
//! `-lrumpnet -lrumpnet_net -lrumpnet_netinet -lrumpnet_netinet6 -lrumpnet_shmif`.

use std::net::Ipv6Addr;
use std::path::Path;
use std::time::Duration;

use client::Client;

use crate::peer::{ioctl, sin6, sysctl_read, SOCK_DGRAM};
use crate::transcript::{connect, Transcript};

const AF_INET6: i32 = 24;
const SIOCIFCREATE: u32 = 0x8090_697a;
const SIOCSLINKSTR: u32 = 0x8028_6988;
const SIOCSIFFLAGS: u32 = 0x8090_6910;
const SIOCGIFFLAGS: u32 = 0xc090_6911;
/// `_IOWR('i', 73, struct in6_ifreq)`.
const SIOCGIFAFLAG_IN6: u32 = 0xc120_6949;
/// `_IOWR('i', 78, struct in6_nbrinfo)`.
const SIOCGNBRINFO_IN6: u32 = 0xc038_694e;
/// The bus, relative to the server's directory.
pub const BUS: &str = "rtadv-bus";
const ROUTER: [u8; 6] = [0xb2, 0xa0, 0, 0, 0, 0x99];

fn named(name: &str, len: usize) -> Vec<u8> {
    let mut r = vec![0u8; len];
    r[..name.len()].copy_from_slice(name.as_bytes());
    r
}

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

/// An Ethernet frame with a router advertisement from fe80::99 to ff02::1.
pub fn ra_frame(lifetime_s: u16) -> Vec<u8> {
    ra_frame_prefix(lifetime_s, "fc00:1::".parse().unwrap(), 3600, 1800)
}

/// The same with the prefix option's prefix and lifetimes chosen.
pub fn ra_frame_prefix(lifetime_s: u16, prefix: Ipv6Addr, valid: u32, preferred: u32) -> Vec<u8> {
    let src: Ipv6Addr = "fe80::99".parse().unwrap();
    let dst: Ipv6Addr = "ff02::1".parse().unwrap();
    // Type 134, code 0, checksum, cur hop limit 64, flags 0, lifetime, reachable 0,
    // retrans 0; the source link address; the prefix fc00:1::/64, L and A.
    let mut m = vec![134, 0, 0, 0, 64, 0];
    m.extend_from_slice(&lifetime_s.to_be_bytes());
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&[1, 1]);
    m.extend_from_slice(&ROUTER);
    m.extend_from_slice(&[3, 4, 64, 0xc0]);
    m.extend_from_slice(&valid.to_be_bytes());
    m.extend_from_slice(&preferred.to_be_bytes());
    m.extend_from_slice(&[0; 4]);
    m.extend_from_slice(&prefix.octets());
    let mut ph = src.octets().to_vec();
    ph.extend_from_slice(&dst.octets());
    ph.extend_from_slice(&(m.len() as u32).to_be_bytes());
    ph.extend_from_slice(&[0, 0, 0, 58]);
    ph.extend_from_slice(&m);
    let c = csum(&ph);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = vec![0x33, 0x33, 0, 0, 0, 1];
    f.extend_from_slice(&ROUTER);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(m.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, 255]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&m);
    f
}

fn send_ra(dir: &Path, lifetime_s: u16) -> client::Result<()> {
    send_frame(dir, &ra_frame(lifetime_s))
}

fn send_frame(dir: &Path, f: &[u8]) -> client::Result<()> {
    let (bus, _) = shmif::Bus::open(&dir.join(BUS))
        .map_err(|e| client::Error::Io(std::io::Error::other(format!("{e:?}"))))?;
    bus.send(f, 0x5eed_0099, 0, 0)
        .map_err(|e| client::Error::Io(std::io::Error::other(format!("{e:?}"))))?;
    let _ = bus.wakeup();
    Ok(())
}

/// The IPv6 addresses `NET_RT_IFLIST` gives for interface 2, the link-local one by shape.
fn addrs(c: &mut Client) -> client::Result<String> {
    let b = sysctl_read(c, &[4, 34, 0, AF_INET6, 5, 0])?;
    let mut out = Vec::new();
    let mut o = 0;
    while o + 4 <= b.len() {
        let len = usize::from(u16::from_le_bytes([b[o], b[o + 1]]));
        if len < 4 || o + len > b.len() {
            break;
        }
        let m = &b[o..o + len];
        if m[3] == 0xc && u16::from_le_bytes([m[16], m[17]]) == 2 {
            let mut p = 24;
            let mut n = 0;
            while p + 2 <= m.len() {
                let sl = usize::from(m[p]);
                if n == 1 && m[p + 1] == AF_INET6 as u8 && p + 28 <= m.len() {
                    let a: [u8; 16] = m[p + 8..p + 24].try_into().unwrap();
                    out.push(if a[0] == 0xfe && a[1] == 0x80 {
                        "fe80::(link-local)".to_string()
                    } else if a[11] == 0xff && a[12] == 0xfe {
                        // The interface id is the MAC's (random per boot): by shape.
                        let mut p = a;
                        p[8..].fill(0);
                        format!("{}(EUI-64 id)", Ipv6Addr::from(p))
                    } else {
                        Ipv6Addr::from(a).to_string()
                    });
                }
                n += 1;
                p += sl.max(1).div_ceil(8) * 8;
            }
        }
        o += len;
    }
    out.sort();
    Ok(out.join(", "))
}

/// The default route of `NET_RT_DUMP` for AF_INET6: its gateway (zone cleared) and flags.
fn default_route(c: &mut Client) -> client::Result<String> {
    let b = sysctl_read(c, &[4, 34, 0, AF_INET6, 1, 0])?;
    let mut o = 0;
    while o + 4 <= b.len() {
        let len = usize::from(u16::from_le_bytes([b[o], b[o + 1]]));
        if len < 120 || o + len > b.len() {
            break;
        }
        let m = &b[o..o + len];
        let flags = i32::from_le_bytes(m[8..12].try_into().unwrap());
        let sas = i32::from_le_bytes(m[12..16].try_into().unwrap());
        let mut p = 120;
        let mut got = Vec::new();
        for bit in 0..8 {
            if sas & (1 << bit) == 0 || p + 2 > m.len() {
                continue;
            }
            let sl = usize::from(m[p]);
            got.push((bit, m[p..(p + sl).min(m.len())].to_vec()));
            p += sl.max(1).div_ceil(8) * 8;
        }
        let dst = got.iter().find(|g| g.0 == 0).map(|g| g.1.clone());
        let mask = got.iter().find(|g| g.0 == 2).map(|g| g.1.clone());
        let gw = got.iter().find(|g| g.0 == 1).map(|g| g.1.clone());
        let is_default = dst
            .as_ref()
            .is_some_and(|d| d.len() >= 24 && d[8..24] == [0; 16])
            && mask
                .as_ref()
                .is_none_or(|k| k.len() < 24 || k[8..24].iter().all(|x| *x == 0));
        if is_default {
            let g = gw.unwrap_or_default();
            let shown = if g.len() >= 24 && g[1] == AF_INET6 as u8 {
                let mut a: [u8; 16] = g[8..24].try_into().unwrap();
                a[2] = 0;
                a[3] = 0;
                Ipv6Addr::from(a).to_string()
            } else {
                format!("family {}", g.get(1).copied().unwrap_or(0))
            };
            return Ok(format!("via {shown} flags {flags:#x}"));
        }
        o += len;
    }
    Ok("none".into())
}

fn aflag(c: &mut Client, s: i32, a: Ipv6Addr) -> client::Result<String> {
    let mut r = named("shmif0", 16 + 272);
    r[16..44].copy_from_slice(&sin6(a, 0));
    ioctl(c, s, SIOCGIFAFLAG_IN6, &mut r, &[])?;
    Ok(format!(
        "{:#x}",
        i32::from_le_bytes(r[16..20].try_into().unwrap())
    ))
}

fn router_entry(c: &mut Client, s: i32) -> client::Result<String> {
    let mut r = named("shmif0", 56);
    r[16..32].copy_from_slice(&"fe80::99".parse::<Ipv6Addr>().unwrap().octets());
    ioctl(c, s, SIOCGNBRINFO_IN6, &mut r, &[])?;
    Ok(format!(
        "state {} isrouter {}",
        i32::from_le_bytes(r[44..48].try_into().unwrap()),
        i32::from_le_bytes(r[40..44].try_into().unwrap())
    ))
}

fn knob(c: &mut Client, v: Option<i32>) -> client::Result<i32> {
    if let Some(v) = v {
        let nm: Vec<u8> = [4i32, 24, 41, 12]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let newv = v.to_le_bytes();
        let args = [client::addr_of(&nm), 4, 0, 0, client::addr_of(&newv), 4];
        c.syscall(
            202,
            &args,
            &mut [client::Buf::In(&nm), client::Buf::In(&newv)],
        )?;
    }
    let b = sysctl_read(c, &[4, 24, 41, 12])?;
    Ok(i32::from_le_bytes(b[..4].try_into().unwrap()))
}

/// Runs the probe against the server at `url`, started in `dir`.
pub fn run(url: &str, dir: &Path) -> Transcript {
    let mut t = Transcript::default();
    let mut c = connect(url, "oracle-rtadv");
    let r = knob(&mut c, None);
    t.step("sysctl net.inet6.ip6.accept_rtadv", r, |v| v.to_string());
    let s = c
        .socket(AF_INET6, SOCK_DGRAM, 0)
        .expect("an AF_INET6 socket");
    let r = ioctl(&mut c, s, SIOCIFCREATE, &mut named("shmif0", 144), &[]);
    t.unit("create shmif0", r);
    let path = format!("{BUS}\0");
    let mut d = named("shmif0", 40);
    d[24..32].copy_from_slice(&(path.len() as u64).to_le_bytes());
    d[32..40].copy_from_slice(&client::addr_of(path.as_bytes()).to_le_bytes());
    let r = ioctl(&mut c, s, SIOCSLINKSTR, &mut d, path.as_bytes());
    t.unit("linkstr shmif0", r);
    let mut f = named("shmif0", 144);
    let _ = ioctl(&mut c, s, SIOCGIFFLAGS, &mut f, &[]);
    f[16] |= 1;
    let r = ioctl(&mut c, s, SIOCSIFFLAGS, &mut f, &[]);
    t.unit("up shmif0", r);
    std::thread::sleep(Duration::from_millis(2500));

    let r = send_ra(dir, 1800);
    t.unit("RA while accept_rtadv is 0", r);
    std::thread::sleep(Duration::from_millis(1000));
    let r = addrs(&mut c);
    t.step("addresses", r, |v| v);
    let r = default_route(&mut c);
    t.step("default route", r, |v| v);
    let r = router_entry(&mut c, s);
    t.step("neighbour fe80::99", r, |v| v);

    let r = knob(&mut c, Some(1));
    t.step("sysctl -w net.inet6.ip6.accept_rtadv=1", r, |v| {
        v.to_string()
    });
    let r = send_ra(dir, 1800);
    t.unit("RA", r);
    std::thread::sleep(Duration::from_millis(300));
    let r = addrs(&mut c);
    t.step("addresses", r, |v| v);
    std::thread::sleep(Duration::from_millis(2500));
    let r = router_entry(&mut c, s);
    t.step("neighbour fe80::99", r, |v| v);
    let r = default_route(&mut c);
    t.step("default route", r, |v| v);
    // The address: the prefix and the link-local address's interface id.
    let ll = addrs_ll(&mut c);
    if let Some(ll) = ll {
        let mut b: [u8; 16] = "fc00:1::".parse::<Ipv6Addr>().unwrap().octets();
        b[8..].copy_from_slice(&ll.octets()[8..]);
        let r = aflag(&mut c, s, Ipv6Addr::from(b));
        t.step("fc00:1::<interface id> SIOCGIFAFLAG_IN6", r, |v| v);
    } else {
        t.0.push("no link-local address".into());
    }
    let r = send_ra(dir, 0);
    t.unit("RA with router lifetime 0", r);
    std::thread::sleep(Duration::from_millis(1000));
    let r = default_route(&mut c);
    t.step("default route", r, |v| v);
    // A lifetime of 2 s: the route is there, then goes when it runs out.
    let r = send_ra(dir, 2);
    t.unit("RA with router lifetime 2", r);
    std::thread::sleep(Duration::from_millis(700));
    let r = default_route(&mut c);
    t.step("default route at once", r, |v| v);
    std::thread::sleep(Duration::from_millis(3500));
    let r = default_route(&mut c);
    t.step("default route 4 s later", r, |v| v);
    let r = addrs(&mut c);
    t.step("addresses", r, |v| v);

    // A prefix with short lifetimes (valid 5 s, preferred 2 s): its address is
    // deprecated, then gone.
    let p2: Ipv6Addr = "fc00:2::".parse().unwrap();
    let r = send_frame(dir, &ra_frame_prefix(0, p2, 5, 2));
    t.unit("RA with fc00:2::/64 valid 5 s preferred 2 s", r);
    std::thread::sleep(Duration::from_millis(1800));
    let a2 = ll.map(|ll| {
        let mut b = p2.octets();
        b[8..].copy_from_slice(&ll.octets()[8..]);
        Ipv6Addr::from(b)
    });
    if let Some(a2) = a2 {
        let r = aflag(&mut c, s, a2);
        t.step("fc00:2::<interface id> SIOCGIFAFLAG_IN6 at 1.8 s", r, |v| v);
        let r = source_for(&mut c, "fc00:2::77".parse().unwrap());
        t.step("source for fc00:2::77 at 1.8 s", r, |v| v);
        std::thread::sleep(Duration::from_millis(1700));
        let r = aflag(&mut c, s, a2);
        t.step("fc00:2::<interface id> SIOCGIFAFLAG_IN6 at 3.5 s", r, |v| v);
        // Deprecated: not chosen as a source while another address will do.
        let r = source_for(&mut c, "fc00:2::77".parse().unwrap());
        t.step("source for fc00:2::77 at 3.5 s", r, |v| v);
        std::thread::sleep(Duration::from_millis(3000));
        let r = aflag(&mut c, s, a2);
        t.step("fc00:2::<interface id> SIOCGIFAFLAG_IN6 at 6.5 s", r, |v| v);
    }
    let r = addrs(&mut c);
    t.step("addresses", r, |v| v);
    let _ = c.close(s);
    t
}

/// The source a UDP socket connected to `to` gets (getsockname), EUI-64 ids by shape.
fn source_for(c: &mut Client, to: Ipv6Addr) -> client::Result<String> {
    let u = c.socket(AF_INET6, SOCK_DGRAM, 0)?;
    let r = c
        .connect_sock(u, &sin6(to, 9))
        .and_then(|()| c.getsockname(u));
    let _ = c.close(u);
    let n = r?;
    let mut a: [u8; 16] = n[8..24].try_into().unwrap();
    Ok(if a[11] == 0xff && a[12] == 0xfe {
        a[8..].fill(0);
        format!("{}(EUI-64 id)", Ipv6Addr::from(a))
    } else {
        Ipv6Addr::from(a).to_string()
    })
}

/// The link-local address of shmif0 (`NET_RT_IFLIST`).
fn addrs_ll(c: &mut Client) -> Option<Ipv6Addr> {
    let b = sysctl_read(c, &[4, 34, 0, AF_INET6, 5, 0]).ok()?;
    let mut o = 0;
    while o + 4 <= b.len() {
        let len = usize::from(u16::from_le_bytes([b[o], b[o + 1]]));
        if len < 4 || o + len > b.len() {
            break;
        }
        let m = &b[o..o + len];
        if m[3] == 0xc && u16::from_le_bytes([m[16], m[17]]) == 2 {
            let mut p = 24;
            let mut n = 0;
            while p + 2 <= m.len() {
                let sl = usize::from(m[p]);
                if n == 1 && p + 28 <= m.len() && m[p + 8] == 0xfe && m[p + 9] == 0x80 {
                    let mut a: [u8; 16] = m[p + 8..p + 24].try_into().unwrap();
                    a[2] = 0;
                    a[3] = 0;
                    return Some(Ipv6Addr::from(a));
                }
                n += 1;
                p += sl.max(1).div_ceil(8) * 8;
            }
        }
        o += len;
    }
    None
}

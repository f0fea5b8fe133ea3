//! NetBSD's tests/net scenarios for routes, ARP, ping, forwarding and TCP
//! (route/t_route.sh, route/t_flags.sh, route/t_change.sh, net/t_forwarding.sh,
//! arp/t_arp.sh, icmp/t_ping.sh) as one probe over the Rust client: the same steps
//! scripts/netbsd-tests-compare.sh takes with rumpctrl's ifconfig/route/arp/ping, made by
//! ioctl, routing socket, sysctl and raw/TCP sockets, on five servers started by the
//! caller in one directory (`src` 10.0.1.2 on bus1, `fwd` 10.0.1.1 on bus1 and 10.0.2.1 on
//! bus2, `dst` 10.0.2.2 on bus2, `host` 10.0.0.1 on bus3 and 10.0.0.5/32 on bus4, `gw`
//! 192.168.0.1 on bus4). Each section names the NetBSD test case it reproduces. One line
//! per step; MAC addresses and times are not shown (random, and the clock's).
//!
//! Recorded from NetBSD's rump_server by `cargo run --example oracle_netbsd_net --
//! NETBSD_RUMP_SERVER` into tests/oracle/netbsd-net.netbsd; tests/netbsd_net_*.rs replay
//! the sections against ours.

use std::net::Ipv4Addr;
use std::time::Duration;

use client::Client;

use crate::peer::{self, ioctl, sin, AF_INET, SOCK_DGRAM, SOCK_RAW};
use crate::transcript::{connect, Transcript};

/// The components each server is started with.
pub const LIBS: &[&str] = &[
    "-lrumpnet",
    "-lrumpnet_net",
    "-lrumpnet_netinet",
    "-lrumpnet_shmif",
];

/// The servers, in the order `run` asks for them.
pub const SERVERS: &[&str] = &["src", "fwd", "dst", "host", "gw"];

const RTM_ADD: u8 = 1;
const RTM_DELETE: u8 = 2;
const RTM_CHANGE: u8 = 3;
const RTM_GET: u8 = 4;
const RTF_UP: i32 = 0x1;
const RTF_GATEWAY: i32 = 0x2;
const RTF_HOST: i32 = 0x4;
const RTF_REJECT: i32 = 0x8;
const RTF_CONNECTED: i32 = 0x100;
const RTF_STATIC: i32 = 0x800;
const RTF_BLACKHOLE: i32 = 0x1000;
const RTF_LLDATA: i32 = 0x400;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("address")
}

/// A route's gateway as route(8) sends it.
#[derive(Clone, Copy)]
enum Gw<'a> {
    None,
    Inet(&'a str),
    /// `-link -iface NAME`: a sockaddr_dl whose data is the name (`link_addr`).
    Link(&'a str),
}

/// A routing message (`rt_msghdr`, amd64, RTM_VERSION 4) and its sockaddrs, rounded to 8.
fn rtmsg(ty: u8, flags: i32, seq: i32, sas: &[(i32, Vec<u8>)]) -> Vec<u8> {
    let mut m = vec![0u8; 120];
    m[2] = 4;
    m[3] = ty;
    m[8..12].copy_from_slice(&flags.to_le_bytes());
    let addrs: i32 = sas.iter().map(|s| s.0).sum();
    m[12..16].copy_from_slice(&addrs.to_le_bytes());
    m[20..24].copy_from_slice(&seq.to_le_bytes());
    for (_, sa) in sas {
        let mut sa = sa.clone();
        sa.resize(sa.len().div_ceil(8).max(1) * 8, 0);
        m.extend_from_slice(&sa);
    }
    let len = m.len() as u16;
    m[0..2].copy_from_slice(&len.to_le_bytes());
    m
}

fn mask_sa(prefix: u8) -> Vec<u8> {
    let m = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    };
    sin(Ipv4Addr::from(m), 0)
}

fn link_sa(name: &str) -> Vec<u8> {
    let mut s = vec![0u8; 20];
    s[0] = 20;
    s[1] = 18;
    s[8..8 + name.len()].copy_from_slice(name.as_bytes());
    s
}

/// How a sockaddr of a reply shows: an IPv4 address, `link#N` or `link NAME`.
fn show_sa(sa: &[u8]) -> String {
    match sa.get(1) {
        Some(2) if sa.len() >= 8 => Ipv4Addr::new(sa[4], sa[5], sa[6], sa[7]).to_string(),
        Some(2) => {
            // A trimmed netmask.
            let mut b = [0u8; 4];
            for (k, v) in sa.iter().skip(4).take(4).enumerate() {
                b[k] = *v;
            }
            Ipv4Addr::from(b).to_string()
        }
        Some(18) if sa.len() >= 8 => {
            let nlen = usize::from(sa[5]);
            match nlen {
                0 => format!("link#{}", u16::from_le_bytes([sa[2], sa[3]])),
                _ => format!(
                    "link {}",
                    String::from_utf8_lossy(sa.get(8..8 + nlen).unwrap_or_default())
                ),
            }
        }
        Some(f) => format!("af{f}"),
        None => "empty".into(),
    }
}

/// A routing message as a line: its flags (without RTF_DONE) and its addresses.
fn show_rt(m: &[u8]) -> String {
    let flags = i32::from_le_bytes(m[8..12].try_into().unwrap()) & !0x40;
    let addrs = i32::from_le_bytes(m[12..16].try_into().unwrap());
    let names = [
        "dst", "gw", "mask", "genmask", "ifp", "ifa", "author", "brd", "tag",
    ];
    let mut out = format!("flags {flags:#x}");
    let mut off = 120;
    for (i, n) in names.iter().enumerate() {
        if addrs & (1 << i) == 0 {
            continue;
        }
        let len = usize::from(*m.get(off).unwrap_or(&0));
        let sa = m.get(off..off + len).unwrap_or_default();
        let shown = match *n {
            // A netmask (trimmed by radix, its family byte not AF_INET): its length.
            "mask" => {
                let bits: u32 = (4..8).map(|k| sa.get(k).unwrap_or(&0).count_ones()).sum();
                format!("/{bits}")
            }
            _ => show_sa(sa),
        };
        out.push_str(&format!(" {n} {shown}"));
        off += if len == 0 { 8 } else { len.div_ceil(8) * 8 };
    }
    out
}

/// A client and its routing socket.
struct Rt {
    c: Client,
    s: i32,
    seq: i32,
}

impl Rt {
    fn new(url: &str, name: &str) -> Rt {
        let mut c = connect(url, name);
        let s = c.socket(34, SOCK_RAW, 0).expect("routing socket");
        let mut tv = 2i64.to_le_bytes().to_vec();
        tv.extend_from_slice(&[0; 8]);
        c.setsockopt(s, 0xffff, 0x100c, &tv).expect("SO_RCVTIMEO");
        Rt { c, s, seq: 0 }
    }

    /// One request as route(8) makes it; the answer with our sequence number.
    #[allow(clippy::too_many_arguments)]
    fn req(
        &mut self,
        ty: u8,
        flags: i32,
        dst: &str,
        gw: Gw,
        prefix: Option<u8>,
        ifa: Option<&str>,
    ) -> client::Result<Vec<u8>> {
        self.seq += 1;
        let mut sas = vec![(1, sin(ip(dst), 0))];
        match gw {
            Gw::None => {}
            Gw::Inet(g) => sas.push((2, sin(ip(g), 0))),
            Gw::Link(n) => sas.push((2, link_sa(n))),
        }
        if let Some(p) = prefix {
            sas.push((4, mask_sa(p)));
        }
        if let Some(a) = ifa {
            sas.push((0x20, sin(ip(a), 0)));
        }
        let m = rtmsg(ty, flags, self.seq, &sas);
        self.c.write(self.s, &m)?;
        loop {
            let mut buf = vec![0u8; 2048];
            let n = self.c.read(self.s, &mut buf)?;
            buf.truncate(n);
            if n >= 120 && buf[3] == ty && buf[20..24] == self.seq.to_le_bytes() {
                return Ok(buf);
            }
        }
    }
}

impl Rt {
    /// A message as given (its sequence number set); the answer with it.
    fn raw(&mut self, mut m: Vec<u8>) -> client::Result<Vec<u8>> {
        self.seq += 1;
        m[20..24].copy_from_slice(&self.seq.to_le_bytes());
        let ty = m[3];
        self.c.write(self.s, &m)?;
        loop {
            let mut buf = vec![0u8; 2048];
            let n = self.c.read(self.s, &mut buf)?;
            buf.truncate(n);
            if n >= 120 && buf[3] == ty && buf[20..24] == self.seq.to_le_bytes() {
                return Ok(buf);
            }
        }
    }

    /// arp(8)'s RTM_GET of `a` (RTF_LLDATA, RTA_DST|RTA_IFP with no RTA_IFP sockaddr).
    fn arp_get(&mut self, a: &str) -> client::Result<Vec<u8>> {
        let mut m = rtmsg(RTM_GET, RTF_LLDATA, 0, &[(1, sin(ip(a), 0))]);
        m[12..16].copy_from_slice(&0x11i32.to_le_bytes());
        self.raw(m)
    }

    /// `arp -s A MAC [temp]`: the RTM_GET for the interface, then RTM_ADD of the link
    /// address (RTF_HOST|RTF_STATIC|RTF_LLDATA; `temp` gives an expiry).
    fn arp_s(&mut self, a: &str, mac: [u8; 6], temp: bool) -> client::Result<()> {
        let g = self.arp_get(a)?;
        let sdl = nth_sa(&g, 1).unwrap_or_default();
        let mut dl = vec![0u8; 20];
        dl[0] = 20;
        dl[1] = 18;
        dl[2..4].copy_from_slice(sdl.get(2..4).unwrap_or(&[0, 0]));
        dl[4] = *sdl.get(4).unwrap_or(&6);
        dl[6] = 6;
        dl[8..14].copy_from_slice(&mac);
        let flags = RTF_HOST | RTF_STATIC | RTF_LLDATA;
        let mut m = rtmsg(RTM_ADD, flags, 0, &[(1, sin(ip(a), 0)), (2, dl)]);
        if temp {
            m[104..112].copy_from_slice(&(1_800_000_000i64).to_le_bytes());
            m[32..40].copy_from_slice(&0x8u64.to_le_bytes()); // RTV_EXPIRE
        }
        self.raw(m).map(|_| ())
    }

    /// `arp -d A`: the RTM_GET, then it back as RTM_DELETE.
    fn arp_d(&mut self, a: &str) -> client::Result<()> {
        let mut g = self.arp_get(a)?;
        let dst = nth_sa(&g, 0).unwrap_or_default();
        if dst.get(4..8) != Some(&ip(a).octets()[..]) {
            return Err(client::Error::Errno(-1));
        }
        g[3] = RTM_DELETE;
        self.raw(g).map(|_| ())
    }
}

/// The `n`th sockaddr of a routing message.
fn nth_sa(m: &[u8], n: usize) -> Option<Vec<u8>> {
    let mut off = 120;
    for k in 0..=n {
        let len = usize::from(*m.get(off)?);
        if k == n {
            return m.get(off..off + len).map(|s| s.to_vec());
        }
        off += if len == 0 { 8 } else { len.div_ceil(8) * 8 };
    }
    None
}

impl Transcript {
    fn rt(&mut self, r: &mut Rt, name: &str, args: (u8, i32, &str, Gw, Option<u8>)) {
        let (ty, flags, dst, gw, prefix) = args;
        let res = r.req(ty, flags, dst, gw, prefix, None);
        match ty {
            RTM_GET => self.step(name, res, |m| show_rt(&m)),
            _ => self.unit(name, res),
        }
    }

    fn ping(&mut self, c: &mut Client, name: &str, to: &str, count: u16) {
        let r = peer::ping(c, ip(to), count);
        self.step(name, r, |(got, ttl)| match got {
            0 => "0 replies".to_string(),
            _ => format!("{got} replies ttl {ttl}"),
        });
    }

    /// `route -n show -inet`: the NET_RT_DUMP lines.
    fn dump(&mut self, c: &mut Client, name: &str) {
        let r = peer::sysctl_read(c, &[4, 34, 0, 2, 1, 0]).map(|b| {
            let mut lines = Vec::new();
            let mut off = 0;
            while off + 120 <= b.len() {
                let len = usize::from(u16::from_le_bytes([b[off], b[off + 1]]));
                if len < 120 || off + len > b.len() {
                    break;
                }
                let m = &b[off..off + len];
                let ifindex = u16::from_le_bytes([m[4], m[5]]);
                lines.push(format!("[{} if {ifindex}]", show_rt(m)));
                off += len;
            }
            lines.join(" ")
        });
        self.step(name, r, |s| s);
    }

    fn arp(&mut self, c: &mut Client, name: &str) {
        let r = peer::arp_entries(c).map(|v| {
            v.iter()
                .map(|(a, mac, perm)| {
                    let kind = if *perm { "permanent" } else { "dynamic" };
                    // The MACs arp -s set are shown (the others are random).
                    match mac.starts_with(&[0xb2, 0xa0, 0x20, 0, 0]) {
                        true => format!("{a} at {:02x?} {kind}", mac),
                        false => format!("{a} alen {} {kind}", mac.len()),
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        });
        self.step(name, r, |s| s);
    }
}

/// t_ping.c's pingsize: one echo request with `size` bytes of data over a raw ICMP
/// socket (2 s to answer): the length of the echo reply's ICMP part, or None.
fn ping_size(c: &mut Client, to: &str, size: usize) -> client::Result<Option<usize>> {
    let s = c.socket(AF_INET, SOCK_RAW, 1)?;
    let mut tv = 2i64.to_le_bytes().to_vec();
    tv.extend_from_slice(&[0; 8]);
    c.setsockopt(s, 0xffff, 0x100c, &tv)?;
    let mut m = vec![8, 0, 0, 0, 0x4e, 0x42, 0, 1];
    m.extend((0..size).map(|k| k as u8));
    let mut sum: u32 = m
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    m[2..4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    let r = c.sendto(s, &m, 0, Some(&sin(ip(to), 0)));
    if let Err(e) = r {
        let _ = c.close(s);
        return Err(e);
    }
    let mut buf = vec![0u8; 70000];
    let got = loop {
        match c.recvfrom(s, &mut buf, 0) {
            Ok((n, _)) => {
                let hl = usize::from(buf[0] & 0xf) * 4;
                if n >= hl + 8 && buf[hl] == 0 && buf[hl + 4..hl + 8] == [0x4e, 0x42, 0, 1] {
                    break Some(n - hl);
                }
            }
            Err(client::Error::Errno(35)) => break None,
            Err(e) => {
                let _ = c.close(s);
                return Err(e);
            }
        }
    };
    let _ = c.close(s);
    Ok(got)
}

/// `ifconfig NAME create; linkstr BUS; inet ADDR/PREFIX`.
fn ifconfig(c: &mut Client, name: &str, bus: &str, addr: &str, prefix: u8) -> client::Result<()> {
    if prefix == 24 {
        return peer::ifconfig_shmif(c, name, bus, ip(addr));
    }
    let s = c.socket(AF_INET, SOCK_DGRAM, 0)?;
    let mut r = vec![0u8; 144];
    r[..name.len()].copy_from_slice(name.as_bytes());
    ioctl(c, s, 0x8090_697a, &mut r, &[])?;
    let mut path = bus.as_bytes().to_vec();
    path.push(0);
    let mut d = vec![0u8; 40];
    d[..name.len()].copy_from_slice(name.as_bytes());
    d[24..32].copy_from_slice(&(path.len() as u64).to_le_bytes());
    d[32..40].copy_from_slice(&client::addr_of(&path).to_le_bytes());
    ioctl(c, s, 0x8028_6988, &mut d, &path)?;
    let mut a = vec![0u8; 64];
    a[..name.len()].copy_from_slice(name.as_bytes());
    a[16..32].copy_from_slice(&sin(ip(addr), 0));
    a[48..64].copy_from_slice(&mask_sa(prefix));
    ioctl(c, s, 0x8040_691a, &mut a, &[])?;
    c.close(s)
}

/// `sysctl -w net.inet.ip.forwarding=V`: the old value.
fn forwarding(c: &mut Client, v: Option<i32>) -> client::Result<i32> {
    knob(c, &[4, 2, 0, 1], v)
}

/// `sysctl [-w] NAME[=V]` of an int: the old value.
fn knob(c: &mut Client, mib: &[i32], v: Option<i32>) -> client::Result<i32> {
    let name: Vec<u8> = mib.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut old = [0u8; 4];
    let mut len = 4u64.to_le_bytes();
    let new = v.map(|v| v.to_le_bytes());
    let (np, nl) = match &new {
        Some(n) => (client::addr_of(n), 4),
        None => (0, 0),
    };
    let args = [
        client::addr_of(&name),
        mib.len() as u64,
        client::addr_of(&old),
        client::addr_of(&len),
        np,
        nl,
    ];
    let newb: &[u8] = match &new {
        Some(n) => n,
        None => &[],
    };
    c.syscall(
        202,
        &args,
        &mut [
            client::Buf::In(&name),
            client::Buf::Out(&mut old),
            client::Buf::InOut(&mut len),
            client::Buf::In(newb),
        ],
    )?;
    Ok(i32::from_le_bytes(old))
}

/// The set-up lines of a recorded transcript and those of one section.
pub fn section(recorded: &str, name: &str) -> String {
    let mut out = Vec::new();
    let mut cur: Option<&str> = None;
    for l in recorded.lines() {
        if let Some(s) = l.strip_prefix("## ") {
            cur = Some(s);
        }
        if cur.is_none() || cur == Some(name) {
            out.push(l);
        }
    }
    out.join("\n") + "\n"
}

/// The scenarios; `urls` are the servers of [`SERVERS`], each started in the one
/// directory with [`LIBS`]. `section` picks one (`None`: all, as recorded).
pub fn run(urls: &[String], section: Option<&str>) -> Transcript {
    let mut t = Transcript::default();
    // Each section begins with a `## NAME` line ([`section`] cuts one out).
    let want = |t: &mut Transcript, s: &str| {
        let on = section.is_none_or(|x| x == s);
        if on {
            t.0.push(format!("## {s}"));
        }
        on
    };
    let [src, fwd, dst, host, gw] = urls else {
        panic!("five servers")
    };
    // t_route.sh route_command_get's set-up (t_forwarding.sh's and t_flags.sh's are the
    // same layout).
    let mut s = Rt::new(src, "src");
    let mut f = Rt::new(fwd, "fwd");
    let mut d = Rt::new(dst, "dst");
    t.unit(
        "setup src shmif0 10.0.1.2/24 bus1",
        ifconfig(&mut s.c, "shmif0", "bus1", "10.0.1.2", 24),
    );
    t.unit(
        "setup dst shmif0 10.0.2.2/24 bus2",
        ifconfig(&mut d.c, "shmif0", "bus2", "10.0.2.2", 24),
    );
    t.unit(
        "setup fwd shmif0 10.0.1.1/24 bus1",
        ifconfig(&mut f.c, "shmif0", "bus1", "10.0.1.1", 24),
    );
    t.unit(
        "setup fwd shmif1 10.0.2.1/24 bus2",
        ifconfig(&mut f.c, "shmif1", "bus2", "10.0.2.1", 24),
    );
    let ugs = RTF_UP | RTF_GATEWAY | RTF_STATIC;
    t.rt(
        &mut s,
        "setup src route add default 10.0.1.1",
        (RTM_ADD, ugs, "0.0.0.0", Gw::Inet("10.0.1.1"), Some(0)),
    );
    t.rt(
        &mut d,
        "setup dst route add default 10.0.2.1",
        (RTM_ADD, ugs, "0.0.0.0", Gw::Inet("10.0.2.1"), Some(0)),
    );
    t.step(
        "setup fwd net.inet.ip.forwarding",
        forwarding(&mut f.c, None),
        |v| v.to_string(),
    );
    // NetBSD's addresses may be tentative for a moment (`ifconfig -w`).
    std::thread::sleep(Duration::from_millis(500));

    if want(&mut t, "route") {
        // t_route.sh route_command_get: a local address, a neighbour, a remote host;
        // after a ping (an ARP entry) the neighbour's route is unchanged.
        let g = |d| {
            (
                RTM_GET,
                RTF_UP | RTF_GATEWAY | RTF_STATIC,
                d,
                Gw::None,
                None,
            )
        };
        t.rt(&mut s, "route_command_get local 10.0.1.2", g("10.0.1.2"));
        t.rt(
            &mut s,
            "route_command_get neighbour 10.0.1.1",
            g("10.0.1.1"),
        );
        t.rt(&mut s, "route_command_get remote 10.0.2.2", g("10.0.2.2"));
        t.ping(&mut s.c, "route_command_get ping 10.0.1.1", "10.0.1.1", 1);
        t.rt(
            &mut s,
            "route_command_get neighbour after ping",
            g("10.0.1.1"),
        );
        // t_flags.sh route_flags_lo, _connected, _default_gateway: the table.
        t.dump(
            &mut s.c,
            "route_flags_lo/connected/default_gateway src table",
        );
        // route_flags_static: a host and a network route through the neighbour.
        let uhgs = ugs | RTF_HOST;
        t.rt(
            &mut s,
            "route_flags_static add host 10.0.3.1",
            (RTM_ADD, uhgs, "10.0.3.1", Gw::Inet("10.0.1.1"), None),
        );
        t.rt(
            &mut s,
            "route_flags_static add net 10.0.4.0/24",
            (RTM_ADD, ugs, "10.0.4.0", Gw::Inet("10.0.1.1"), Some(24)),
        );
        t.rt(
            &mut s,
            "route_flags_static add net 10.0.4.0/24 again",
            (RTM_ADD, ugs, "10.0.4.0", Gw::Inet("10.0.1.1"), Some(24)),
        );
        t.rt(&mut s, "route_flags_static get 10.0.3.1", g("10.0.3.1"));
        t.rt(&mut s, "route_flags_static get 10.0.4.9", g("10.0.4.9"));
        t.rt(
            &mut s,
            "route_flags_static delete host 10.0.3.1",
            (RTM_DELETE, uhgs, "10.0.3.1", Gw::None, None),
        );
        t.rt(
            &mut s,
            "route_flags_static delete net 10.0.4.0/24",
            (RTM_DELETE, ugs, "10.0.4.0", Gw::None, Some(24)),
        );
        t.rt(
            &mut s,
            "route_flags_static delete net 10.0.4.0/24 again",
            (RTM_DELETE, ugs, "10.0.4.0", Gw::None, Some(24)),
        );
        // route_flags_blackhole: the connected route replaced by a blackhole through lo0:
        // ping gets nothing and no error.
        t.ping(&mut s.c, "route_flags_blackhole ping before", "10.0.1.1", 1);
        let net = |ty, fl, gw| (ty, fl, "10.0.1.0", gw, Some(24));
        t.rt(
            &mut s,
            "route_flags_blackhole delete connected",
            net(RTM_DELETE, ugs, Gw::None),
        );
        t.rt(
            &mut s,
            "route_flags_blackhole add",
            net(RTM_ADD, ugs | RTF_BLACKHOLE, Gw::Inet("127.0.0.1")),
        );
        t.dump(&mut s.c, "route_flags_blackhole table");
        t.ping(&mut s.c, "route_flags_blackhole ping", "10.0.1.1", 1);
        t.rt(&mut s, "route_flags_blackhole get 10.0.1.1", g("10.0.1.1"));
        // route_flags_reject: through the neighbour (EHOSTUNREACH), through lo0
        // (ENETUNREACH), a host route through lo0 without RTF_GATEWAY (EHOSTUNREACH).
        t.rt(
            &mut s,
            "route_flags_reject delete",
            net(RTM_DELETE, ugs, Gw::None),
        );
        t.rt(
            &mut s,
            "route_flags_reject add via 10.0.1.1",
            net(RTM_ADD, ugs | RTF_REJECT, Gw::Inet("10.0.1.1")),
        );
        t.ping(
            &mut s.c,
            "route_flags_reject ping via 10.0.1.1",
            "10.0.1.1",
            1,
        );
        t.rt(
            &mut s,
            "route_flags_reject delete again",
            net(RTM_DELETE, ugs, Gw::None),
        );
        t.rt(
            &mut s,
            "route_flags_reject add via 127.0.0.1",
            net(RTM_ADD, ugs | RTF_REJECT, Gw::Inet("127.0.0.1")),
        );
        t.ping(
            &mut s.c,
            "route_flags_reject ping via 127.0.0.1",
            "10.0.1.1",
            1,
        );
        t.rt(
            &mut s,
            "route_flags_reject delete a third time",
            net(RTM_DELETE, ugs, Gw::None),
        );
        let uhrs = RTF_UP | RTF_HOST | RTF_STATIC | RTF_REJECT;
        t.rt(
            &mut s,
            "route_flags_reject add host -iface",
            (RTM_ADD, uhrs, "10.0.1.1", Gw::Inet("127.0.0.1"), None),
        );
        t.dump(&mut s.c, "route_flags_reject table");
        t.ping(&mut s.c, "route_flags_reject ping host", "10.0.1.1", 1);
        t.rt(
            &mut s,
            "route_flags_reject delete host",
            (RTM_DELETE, uhrs, "10.0.1.1", Gw::None, None),
        );
        // t_change.sh: RTM_CHANGE of the gateway, of the flags alone, of a route that is
        // not there (ESRCH), of a network route named without its mask (ETOOMANYREFS).
        t.rt(
            &mut s,
            "route_change add net",
            net(RTM_ADD, ugs, Gw::Inet("10.0.1.1")),
        );
        t.rt(
            &mut s,
            "route_change gateway 10.0.1.5",
            net(RTM_CHANGE, ugs, Gw::Inet("10.0.1.5")),
        );
        t.rt(&mut s, "route_change get after gateway", g("10.0.1.3"));
        t.rt(
            &mut s,
            "route_change -reject",
            net(RTM_CHANGE, ugs | RTF_REJECT, Gw::None),
        );
        t.rt(&mut s, "route_change get after -reject", g("10.0.1.3"));
        t.ping(&mut s.c, "route_change ping rejected", "10.0.1.1", 1);
        t.rt(
            &mut s,
            "route_change not there",
            (RTM_CHANGE, ugs, "10.0.99.0", Gw::Inet("10.0.1.5"), Some(24)),
        );
        t.rt(
            &mut s,
            "route_change without mask",
            (RTM_CHANGE, ugs, "10.0.1.0", Gw::Inet("10.0.1.5"), None),
        );
        t.rt(
            &mut s,
            "route_change delete",
            net(RTM_DELETE, ugs, Gw::None),
        );
        t.dump(&mut s.c, "route_change table");
        // Put the connected route back for what follows.
        t.rt(
            &mut s,
            "route restore connected",
            net(RTM_ADD, RTF_UP | RTF_CONNECTED, Gw::Link("shmif0")),
        );
        t.ping(&mut s.c, "route restore ping", "10.0.1.1", 1);
    }

    if want(&mut t, "arp") {
        // t_arp.sh arp_cache_expiration's first half: after a ping the neighbour is
        // cached, our own address is permanent, an address nobody has is no entry;
        // the forwarder holds both sides and an incomplete entry.
        t.ping(&mut s.c, "arp ping 10.0.1.1", "10.0.1.1", 1);
        t.arp(&mut s.c, "arp src table");
        t.ping(&mut s.c, "arp ping nobody 10.0.2.99", "10.0.2.99", 1);
        t.ping(&mut d.c, "arp dst ping 10.0.2.1", "10.0.2.1", 1);
        t.arp(&mut f.c, "arp fwd table");
    }

    if want(&mut t, "arp_command") {
        // t_arp.sh arp_command and arp_cache_overwriting, as arp(8) -s/-d make them: a
        // static entry, deleted; two more, deleted one by one as `arp -d -a` does (our own
        // address's entry too); a temporary one; a static one over a dynamic one, and not
        // over a static one (EEXIST).
        let mac = |b: u8| [0xb2, 0xa0, 0x20, 0, 0, b];
        t.ping(&mut s.c, "arp_command ping first", "10.0.1.1", 1);
        t.unit(
            "arp_command -s 10.0.1.10",
            s.arp_s("10.0.1.10", mac(0x10), false),
        );
        t.arp(&mut s.c, "arp_command table after -s");
        t.unit("arp_command -d 10.0.1.10", s.arp_d("10.0.1.10"));
        t.unit("arp_command -d 10.0.1.10 again", s.arp_d("10.0.1.10"));
        t.unit(
            "arp_command -s 10.0.1.11",
            s.arp_s("10.0.1.11", mac(0x11), false),
        );
        t.unit(
            "arp_command -s 10.0.1.12",
            s.arp_s("10.0.1.12", mac(0x12), false),
        );
        t.ping(&mut s.c, "arp_command ping 10.0.1.1", "10.0.1.1", 1);
        t.arp(&mut s.c, "arp_command table before -d -a");
        for a in ["10.0.1.11", "10.0.1.12", "10.0.1.1", "10.0.1.2"] {
            // `arp -d -a`: each dumped entry sent back as RTM_DELETE.
            let r = peer::sysctl_read(&mut s.c, &[4, 34, 0, 2, 2, 0x400]).and_then(|b| {
                let mut off = 0;
                while off + 120 <= b.len() {
                    let len = usize::from(u16::from_le_bytes([b[off], b[off + 1]]));
                    let m = b.get(off..off + len).unwrap_or_default();
                    if nth_sa(m, 0).and_then(|d| d.get(4..8).map(|x| x.to_vec()))
                        == Some(ip(a).octets().to_vec())
                    {
                        let mut m = m.to_vec();
                        m[3] = RTM_DELETE;
                        return s.raw(m).map(|_| ());
                    }
                    off += len.max(1);
                }
                Err(client::Error::Errno(-2))
            });
            t.unit(&format!("arp_command -d -a: {a}"), r);
        }
        t.arp(&mut s.c, "arp_command table after -d -a");
        t.unit(
            "arp_command -s 10.0.1.10 temp",
            s.arp_s("10.0.1.10", mac(0x10), true),
        );
        t.arp(&mut s.c, "arp_command table after temp");
        t.unit(
            "arp_cache_overwriting -s 10.0.1.1",
            s.arp_s("10.0.1.1", mac(0xff), false),
        );
        t.unit(
            "arp_cache_overwriting -s 10.0.1.1 again",
            s.arp_s("10.0.1.1", mac(0xfe), false),
        );
        t.unit("arp_cache_overwriting -d 10.0.1.1", s.arp_d("10.0.1.1"));
        t.ping(&mut s.c, "arp_cache_overwriting ping", "10.0.1.1", 1);
        t.unit(
            "arp_cache_overwriting -s over dynamic",
            s.arp_s("10.0.1.1", mac(0), false),
        );
        t.unit(
            "arp_cache_overwriting -s over temp",
            s.arp_s("10.0.1.10", mac(0xff), false),
        );
        t.arp(&mut s.c, "arp_cache_overwriting table");
        t.ping(
            &mut s.c,
            "arp_cache_overwriting ping to a wrong static MAC",
            "10.0.1.1",
            1,
        );
        t.unit(
            "arp_cache_overwriting -d 10.0.1.1 at last",
            s.arp_d("10.0.1.1"),
        );
        t.unit(
            "arp_cache_overwriting -d 10.0.1.10 at last",
            s.arp_d("10.0.1.10"),
        );
        t.ping(
            &mut s.c,
            "arp_cache_overwriting ping resolved again",
            "10.0.1.1",
            1,
        );
        t.arp(&mut s.c, "arp_cache_overwriting table at last");
    }

    if want(&mut t, "forwarding") {
        // t_forwarding.sh basic / t_ping.sh: through the forwarder both ways (one hop:
        // TTL 254), a big echo, TTL 1 dies at the forwarder (time exceeded from it);
        // forwarding off: no reply; on again: replies.
        t.ping(&mut s.c, "forwarding ping src to dst", "10.0.2.2", 2);
        t.ping(&mut d.c, "forwarding ping dst to src", "10.0.1.2", 1);
        let r = peer::probe_ttl(&mut s.c, ip("10.0.2.2"), 1);
        t.step("forwarding ttl 1", r, |a| format!("{a:?}"));
        let r = peer::probe_ttl(&mut s.c, ip("10.0.2.2"), 2);
        t.step("forwarding ttl 2", r, |a| format!("{a:?}"));
        // A directed broadcast: dst's own network's (not answered: icmpbmcastecho 0), and
        // src's through the forwarder (not forwarded: directed-broadcast 0, host
        // unreachable from it).
        t.ping(&mut d.c, "forwarding ping own broadcast", "10.0.2.255", 1);
        let r = peer::probe_ttl(&mut s.c, ip("10.0.2.255"), 64);
        t.step("forwarding directed broadcast", r, |a| format!("{a:?}"));
        t.step("forwarding off", forwarding(&mut f.c, Some(0)), |v| {
            v.to_string()
        });
        t.ping(&mut s.c, "forwarding ping when off", "10.0.2.2", 1);
        t.step("forwarding on", forwarding(&mut f.c, Some(1)), |v| {
            v.to_string()
        });
        t.ping(&mut s.c, "forwarding ping when on again", "10.0.2.2", 1);
        // ipforwarding_misc's test_sysctl_ttl: net.inet.ip.ttl 1 on the source, and a
        // datagram to dst dies at the forwarder; 2 gets through (sockets made after).
        let ttl = [4, 2, 0, 3];
        let mut rx = connect(dst, "ttl-rx");
        let u = rx.socket(AF_INET, SOCK_DGRAM, 0).expect("udp");
        rx.bind(u, &sin(ip("10.0.2.2"), 5000)).expect("bind");
        let mut tv = 1i64.to_le_bytes().to_vec();
        tv.extend_from_slice(&[0; 8]);
        rx.setsockopt(u, 0xffff, 0x100c, &tv).expect("timeout");
        for v in [1, 2] {
            t.step(
                &format!("sysctl_ttl set {v}"),
                knob(&mut s.c, &ttl, Some(v)),
                |o| o.to_string(),
            );
            let tx = s.c.socket(AF_INET, SOCK_DGRAM, 0).expect("udp");
            let r = s.c.sendto(tx, b"ttl", 0, Some(&sin(ip("10.0.2.2"), 5000)));
            t.step(&format!("sysctl_ttl {v} sendto"), r, |n| n.to_string());
            let mut buf = [0u8; 16];
            let r = rx.recvfrom(u, &mut buf, 0);
            t.step(&format!("sysctl_ttl {v} dst receives"), r, |(n, _)| {
                n.to_string()
            });
            let _ = s.c.close(tx);
        }
        let r = peer::tcp_echo_client(&mut s.c, ip("10.0.2.2"), 9, 10);
        t.unit("sysctl_ttl 2 tcp to a closed port (RST back)", r);
        t.step(
            "sysctl_ttl back to 64",
            knob(&mut s.c, &ttl, Some(64)),
            |o| o.to_string(),
        );
        t.step("sysctl_ttl read", knob(&mut s.c, &ttl, None), |o| {
            o.to_string()
        });
    }

    if want(&mut t, "ping") {
        // t_ping2.sh basic: a ping to the neighbour and one to our own address; t_ping.c
        // pingsize: echoes of growing size to the neighbour and through the forwarder,
        // up to what one Ethernet frame holds (1472 bytes of data) and past it (the
        // fragmented ones: docs/netinet.md).
        t.ping(&mut s.c, "t_ping2 basic to the neighbour", "10.0.1.1", 1);
        t.ping(&mut s.c, "t_ping2 basic to ourselves", "10.0.1.2", 1);
        for to in ["10.0.1.1", "10.0.2.2"] {
            for size in [0, 1, 56, 100, 1000, 1472, 1473, 4000] {
                let r = ping_size(&mut s.c, to, size);
                t.step(&format!("pingsize {size} to {to}"), r, |g| match g {
                    Some(n) => format!("reply of {n}"),
                    None => "no reply".into(),
                });
            }
        }
    }

    if want(&mut t, "tcp") {
        // TCP through the forwarder (t_forwarding.sh's TCP leg): an echo of 100000
        // bytes each way, and a connection to a port nobody listens on (ECONNREFUSED).
        for (from, to, addr, name) in [
            (src, dst, "10.0.2.2", "src to dst"),
            (dst, src, "10.0.1.2", "dst to src"),
        ] {
            let mut server = connect(to, "echo-server");
            let l = peer::tcp_listen(&mut server, 7).expect("listen");
            let echo = std::thread::spawn(move || peer::tcp_echo_once(&mut server, l));
            let mut c = connect(from, "echo-client");
            let r = peer::tcp_echo_client(&mut c, ip(addr), 7, 100_000);
            t.unit(&format!("tcp echo {name}"), r);
            let got = echo.join().expect("echo thread");
            t.step(&format!("tcp echo {name} server saw"), got, |n| {
                n.to_string()
            });
        }
        let r = peer::tcp_echo_client(&mut s.c, ip("10.0.2.2"), 9, 10);
        t.unit("tcp connect to a closed port", r);
    }

    if want(&mut t, "route_add") {
        // t_route.sh route_command_add on a server of its own.
        let mut h = Rt::new(host, "host");
        t.unit(
            "route_command_add host shmif0 10.0.0.1/24 bus3",
            ifconfig(&mut h.c, "shmif0", "bus3", "10.0.0.1", 24),
        );
        let add = |dst, gw, p: Option<u8>| {
            let fl = if p.is_none() { ugs | RTF_HOST } else { ugs };
            (RTM_ADD, fl, dst, gw, p)
        };
        t.rt(
            &mut h,
            "route_command_add net via subnet gateway",
            add("10.0.1.0", Gw::Inet("10.0.0.2"), Some(24)),
        );
        t.rt(
            &mut h,
            "route_command_add host via subnet gateway",
            add("10.0.2.1", Gw::Inet("10.0.0.3"), None),
        );
        t.rt(
            &mut h,
            "route_command_add -connected -link -iface",
            (
                RTM_ADD,
                RTF_UP | RTF_STATIC | RTF_CONNECTED,
                "10.0.3.0",
                Gw::Link("shmif0"),
                Some(24),
            ),
        );
        t.rt(
            &mut h,
            "route_command_add via a gateway on it",
            add("10.0.4.0", Gw::Inet("10.0.3.1"), Some(24)),
        );
        t.rt(
            &mut h,
            "route_command_add gateway unreachable, destination reachable",
            add("10.0.1.0", Gw::Inet("10.0.5.1"), Some(26)),
        );
        t.rt(
            &mut h,
            "route_command_add gateway behind a gateway",
            add("10.0.6.0", Gw::Inet("10.0.1.1"), Some(24)),
        );
        t.rt(
            &mut h,
            "route_command_add nowhere to go",
            add("10.0.7.0", Gw::Inet("10.0.9.9"), Some(24)),
        );
        t.rt(
            &mut h,
            "route_command_add default",
            add("0.0.0.0", Gw::Inet("10.0.0.254"), Some(0)),
        );
        t.rt(
            &mut h,
            "route_command_add nowhere to go with a default",
            add("10.0.7.0", Gw::Inet("10.0.9.9"), Some(24)),
        );
        t.rt(
            &mut h,
            "route_command_add bad link gateway",
            (
                RTM_ADD,
                RTF_UP | RTF_STATIC,
                "10.0.8.0",
                Gw::Link("nosuch0"),
                Some(24),
            ),
        );
        t.dump(&mut h.c, "route_command_add table");
        t.rt(
            &mut h,
            "route_command_add get 10.0.3.7",
            (RTM_GET, ugs, "10.0.3.7", Gw::None, None),
        );
        t.rt(
            &mut h,
            "route_command_add get 10.0.1.1",
            (RTM_GET, ugs, "10.0.1.1", Gw::None, None),
        );

        // t_route.sh route_non_subnet_gateway: a /32 address, a gateway on no subnet.
        let mut g = Rt::new(gw, "gw");
        t.unit(
            "route_non_subnet_gateway gw shmif0 192.168.0.1/24 bus4",
            ifconfig(&mut g.c, "shmif0", "bus4", "192.168.0.1", 24),
        );
        t.rt(
            &mut g,
            "route_non_subnet_gateway gw knows the client",
            (
                RTM_ADD,
                RTF_UP | RTF_STATIC,
                "10.0.0.5",
                Gw::Link("shmif0"),
                Some(32),
            ),
        );
        t.rt(
            &mut h,
            "route_non_subnet_gateway host delete default",
            (RTM_DELETE, ugs, "0.0.0.0", Gw::None, Some(0)),
        );
        t.unit(
            "route_non_subnet_gateway host shmif1 10.0.0.5/32 bus4",
            ifconfig(&mut h.c, "shmif1", "bus4", "10.0.0.5", 32),
        );
        std::thread::sleep(Duration::from_millis(500));
        t.ping(
            &mut h.c,
            "route_non_subnet_gateway ping without a route",
            "192.168.0.1",
            1,
        );
        t.rt(
            &mut h,
            "route_non_subnet_gateway route to the gateway",
            (
                RTM_ADD,
                RTF_UP | RTF_STATIC,
                "192.168.0.1",
                Gw::Link("shmif1"),
                Some(32),
            ),
        );
        let r = h.req(
            RTM_ADD,
            ugs,
            "0.0.0.0",
            Gw::Inet("192.168.0.1"),
            Some(0),
            Some("10.0.0.5"),
        );
        t.unit("route_non_subnet_gateway default -ifa 10.0.0.5", r);
        t.dump(&mut h.c, "route_non_subnet_gateway host table");
        t.ping(&mut h.c, "route_non_subnet_gateway ping", "192.168.0.1", 1);
    }
    t
}

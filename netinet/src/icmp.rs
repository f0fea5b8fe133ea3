//! ICMP and ICMPv6 errors of our own, as NetBSD's `ip_icmp.c`, `icmp6.c`, `ip_input.c`
//! (`ip_forward`), `ip6_forward.c`, `udp_usrreq.c` and `tcp_subr.c` make and take them.
//!
//! Made here (smoltcp's own port/protocol unreachables are dropped: [`smoltcp_error`]):
//! port unreachable for UDP to a closed port, protocol unreachable (IPv4) / parameter
//! problem "next header" (IPv6) when no raw socket takes an unknown protocol, time
//! exceeded, net/host unreachable (IPv4) and no route/address unreachable (IPv6) when
//! forwarding finds no route or a reject route, and redirects when a router sends a packet
//! back out of the interface it came in on towards a source on that link (IPv6:
//! `ND_REDIRECT` as `icmp6_redirect_output`, [`icmp6_redirect_output`]). Never about an
//! ICMP error, a link broadcast/multicast, a non-first fragment or to a source that cannot
//! be answered (`icmp_error`/`icmp6_error`'s rules), and at most `errppslimit` a second
//! (`ppsratecheck`).
//!
//! Taken here ([`input`]): an error quoting one of our datagrams reaches the connected
//! UDP sockets it concerns (`so_error`, `udp_notify`) and the TCP connections (a soft
//! error as `tcp_notify`, which a connection attempt that times out fails with instead
//! of `ETIMEDOUT`, as `tcp_drop`); a redirect changes the routing table as `rtredirect` (a host route
//! `RTF_GATEWAY|RTF_HOST|RTF_DYNAMIC`, or `RTF_MODIFIED` on an existing host route) and
//! tells the routing sockets (`RTM_REDIRECT`); an ICMPv6 redirect is checked as
//! `icmp6_redirect_input` first ([`redirect6_input`]). Raw sockets see every error before
//! this.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use kernel::Errno;

use crate::engine::{csum, csum6, is_link_local, Engine, IpHdr, IPPROTO_ICMPV6};
use crate::route::{self, Route, RTF_BLACKHOLE, RTF_GATEWAY, RTF_HOST, RTF_REJECT, RTF_UP};
use crate::sock::{Pcb, TcpState};

/// `ICMP_UNREACH` and its codes.
pub const ICMP_UNREACH: u8 = 3;
/// `ICMP_UNREACH_NET`.
pub const ICMP_UNREACH_NET: u8 = 0;
/// `ICMP_UNREACH_HOST`.
pub const ICMP_UNREACH_HOST: u8 = 1;
/// `ICMP_UNREACH_PROTOCOL`.
pub const ICMP_UNREACH_PROTOCOL: u8 = 2;
/// `ICMP_UNREACH_PORT`.
pub const ICMP_UNREACH_PORT: u8 = 3;
/// `ICMP_UNREACH_NEEDFRAG`: the next-hop MTU in the low 16 bits of the info word.
pub const ICMP_UNREACH_NEEDFRAG: u8 = 4;
/// `ICMP_REDIRECT`.
pub const ICMP_REDIRECT: u8 = 5;
/// `ICMP_REDIRECT_HOST`.
pub const ICMP_REDIRECT_HOST: u8 = 1;
/// `ICMP_TIMXCEED`.
pub const ICMP_TIMXCEED: u8 = 11;
/// `ICMP_PARAMPROB`.
pub const ICMP_PARAMPROB: u8 = 12;

/// `ICMP6_DST_UNREACH`.
pub const ICMP6_DST_UNREACH: u8 = 1;
/// `ICMP6_DST_UNREACH_NOROUTE`.
pub const ICMP6_DST_UNREACH_NOROUTE: u8 = 0;
/// `ICMP6_DST_UNREACH_BEYONDSCOPE`.
pub const ICMP6_DST_UNREACH_BEYONDSCOPE: u8 = 2;
/// `ICMP6_DST_UNREACH_ADDR`.
pub const ICMP6_DST_UNREACH_ADDR: u8 = 3;
/// `ICMP6_DST_UNREACH_NOPORT`.
pub const ICMP6_DST_UNREACH_NOPORT: u8 = 4;
/// `ICMP6_PACKET_TOO_BIG`.
pub const ICMP6_PACKET_TOO_BIG: u8 = 2;
/// `ICMP6_TIME_EXCEEDED`.
pub const ICMP6_TIME_EXCEEDED: u8 = 3;
/// `ICMP6_PARAM_PROB`.
pub const ICMP6_PARAM_PROB: u8 = 4;
/// `ICMP6_TIME_EXCEED_REASSEMBLY`.
pub const ICMP6_TIME_EXCEED_REASSEMBLY: u8 = 1;
/// `ICMP6_PARAMPROB_HEADER`.
pub const ICMP6_PARAMPROB_HEADER: u8 = 0;
/// `ICMP6_PARAMPROB_NEXTHEADER`.
pub const ICMP6_PARAMPROB_NEXTHEADER: u8 = 1;
/// `ICMP6_PARAMPROB_OPTION`.
pub const ICMP6_PARAMPROB_OPTION: u8 = 2;
/// `ND_REDIRECT`.
pub const ND_REDIRECT: u8 = 137;

/// `RTF_DYNAMIC`: made by a redirect.
pub const RTF_DYNAMIC: u32 = 0x10;
/// `RTF_MODIFIED`: changed by a redirect.
pub const RTF_MODIFIED: u32 = 0x20;
/// `RTM_REDIRECT`.
pub const RTM_REDIRECT: u8 = 0x6;
/// `RTA_AUTHOR`.
const RTA_AUTHOR: i32 = 0x40;

/// `MAXTTL`: `icmp_reflect`'s TTL.
const MAXTTL: u8 = 255;
/// `ip6_defhlim`: `icmp6_reflect`'s hop limit.
const IP6_DEFHLIM: u8 = 64;
/// `ICMPV6_PLD_MAXLEN`: most of the offending packet an ICMPv6 error carries.
const ICMPV6_PLD_MAXLEN: usize = 1232;
/// Routing messages waiting for the softint to deliver them (more are dropped).
const RTMSGS_MAX: usize = 64;
/// `PR_SLOWHZ`: TCP's slow ticks per second (`net.inet.tcp.keepinit` counts them).
pub const PR_SLOWHZ: i32 = 2;

/// `ppsratecheck`: at most `max` events a second (a negative `max` is no limit).
#[derive(Default, Debug)]
pub struct Pps {
    last: Option<Instant>,
    count: i32,
}

impl Pps {
    /// Whether one more event may happen now.
    pub fn check(&mut self, now: Instant, max: i32) -> bool {
        if self
            .last
            .is_none_or(|l| now.duration_since(l) >= Duration::from_secs(1))
        {
            self.last = Some(now);
            self.count = 0;
        }
        let ok = max < 0 || self.count < max;
        self.count = self.count.saturating_add(1);
        ok
    }
}

/// The ICMP knobs (`net.inet.icmp`, `net.inet6.icmp6`, the redirect knobs, and
/// `net.inet.tcp.keepinit` which decides when a soft error ends a connection attempt)
/// and the state of error generation.
#[derive(Debug)]
pub struct IcmpState {
    /// `net.inet.icmp.errppslimit` (100).
    pub errppslimit: i32,
    /// `net.inet6.icmp6.errppslimit` (100).
    pub errppslimit6: i32,
    /// `net.inet.ip.redirect` (1): a router sends redirects.
    pub sendredirects: i32,
    /// `net.inet6.ip6.redirect` (1).
    pub sendredirects6: i32,
    /// `net.inet.icmp.rediraccept` (1): redirects change our routes.
    pub rediraccept: i32,
    /// `net.inet6.icmp6.rediraccept` (1).
    pub rediraccept6: i32,
    /// `net.inet.tcp.keepinit` in slow ticks (150: 75 s).
    pub tcp_keepinit: i32,
    /// `net.inet.icmp.returndatabytes` (8, from 8 to 512): bytes of the datagram after
    /// its header an IPv4 error quotes.
    pub returndatabytes: i32,
    pps: Pps,
    pps6: Pps,
    /// The packet being input arrived in a link broadcast or multicast frame
    /// (`M_BCAST|M_MCAST`).
    pub rx_lmcast: bool,
    /// `RTM_REDIRECT` messages for the routing sockets (the softint delivers them).
    pub rtmsgs: Vec<Vec<u8>>,
    /// Errors sent.
    pub sent: u64,
    /// Errors not sent: the rate limit.
    pub ratelimited: u64,
}

impl Default for IcmpState {
    fn default() -> Self {
        IcmpState {
            errppslimit: 100,
            errppslimit6: 100,
            sendredirects: 1,
            sendredirects6: 1,
            rediraccept: 1,
            rediraccept6: 1,
            tcp_keepinit: 150,
            returndatabytes: 8,
            pps: Pps::default(),
            pps6: Pps::default(),
            rx_lmcast: false,
            rtmsgs: Vec::new(),
            sent: 0,
            ratelimited: 0,
        }
    }
}

impl IcmpState {
    /// How long a connection attempt lasts (`tcp_keepinit`).
    pub fn keepinit(&self) -> Duration {
        Duration::from_millis(self.tcp_keepinit.max(1) as u64 * 1000 / PR_SLOWHZ as u64)
    }
}

/// `ICMP_INFOTYPE`: the informational ICMP types (errors may quote them).
fn icmp_infotype(t: u8) -> bool {
    matches!(t, 0 | 8 | 9 | 10 | 13 | 14 | 15 | 16 | 17 | 18)
}

/// `in_canforward` (what an error may be sent to), with `icmp_reflect`'s exception for
/// the loopback network.
fn v4_answerable(a: Ipv4Addr) -> bool {
    let o = a.octets()[0];
    !(o >= 224 || o == 0)
}

/// `icmp_error`: an ICMP error of `ty`/`code` about `orig` (its header and what follows,
/// perhaps cut short), received on interface `rcvif`; `info` is the redirect's gateway or
/// the next-hop MTU, as the message type wants.
pub fn icmp_error(e: &mut Engine, rcvif: u32, orig: &[u8], ty: u8, code: u8, info: u32) {
    if orig.len() < 20 || orig[0] >> 4 != 4 {
        return;
    }
    let hl = usize::from(orig[0] & 0xf) * 4;
    if hl < 20 || hl > orig.len() {
        return;
    }
    // Not about a fragment but the first.
    if u16::from_be_bytes([orig[6], orig[7]]) & !0x6000 != 0 {
        return;
    }
    // Not about an ICMP error.
    if orig[9] == 1 && ty != ICMP_REDIRECT && orig.len() >= hl + 8 && !icmp_infotype(orig[hl]) {
        return;
    }
    if e.icmp.rx_lmcast {
        return;
    }
    let osrc = Ipv4Addr::new(orig[12], orig[13], orig[14], orig[15]);
    let odst = Ipv4Addr::new(orig[16], orig[17], orig[18], orig[19]);
    if !e.icmp.pps.check(Instant::now(), e.icmp.errppslimit) {
        e.icmp.ratelimited += 1;
        return;
    }
    if !v4_answerable(osrc) {
        return;
    }
    let ip_len = usize::from(u16::from_be_bytes([orig[2], orig[3]]));
    let data = e.icmp.returndatabytes.clamp(8, 512) as usize;
    let quote = (hl + data.min(ip_len.saturating_sub(hl))).min(orig.len());
    let mut m = vec![ty, code, 0, 0];
    match ty {
        ICMP_PARAMPROB => {
            // The pointer rides in `code` (`icmp_pptr`).
            m[1] = 0;
            m.extend_from_slice(&[code, 0, 0, 0]);
        }
        _ => m.extend_from_slice(&info.to_be_bytes()),
    }
    m.extend_from_slice(&orig[..quote]);
    let c = csum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let Some(src) = reflect_src(e, rcvif, odst, osrc) else {
        return;
    };
    e.icmp.sent += 1;
    let p = e.ipv4_packet(src, osrc, 1, MAXTTL, &m);
    e.output(p);
}

/// `icmp_reflect`'s source: the original destination if it is ours, the address of
/// `rcvif` whose broadcast address it was, the address towards `to` if it is on `rcvif`,
/// `rcvif`'s first address, or the first address of any interface but loopback.
fn reflect_src(e: &Engine, rcvif: u32, odst: Ipv4Addr, to: Ipv4Addr) -> Option<Ipv4Addr> {
    let v4 = |a: IpAddr| match a {
        IpAddr::V4(v) => Some(v),
        IpAddr::V6(_) => None,
    };
    if e.is_local(IpAddr::V4(odst)) {
        return Some(odst);
    }
    let f = e.ifp(rcvif);
    if let Some(a) = f.and_then(|f| {
        f.addrs
            .iter()
            .find(|a| a.broadcast == Some(odst) && a.addr.is_ipv4())
    }) {
        return v4(a.addr);
    }
    if let Ok(IpAddr::V4(s)) = e.select_source(IpAddr::V4(to)) {
        if f.is_some_and(|f| f.has_addr(IpAddr::V4(s))) {
            return Some(s);
        }
    }
    if let Some(a) = f.and_then(|f| f.first_addr(false)) {
        return v4(a);
    }
    e.ifs
        .iter()
        .filter(|f| f.flags & crate::ifnet::IFF_LOOPBACK == 0)
        .find_map(|f| f.first_addr(false))
        .and_then(v4)
}

/// The last header of an IPv6 packet (`ip6_lasthdr`): its offset and protocol, through
/// hop-by-hop, routing, destination options and first fragment headers.
fn ip6_lasthdr(p: &[u8]) -> Option<(usize, u8)> {
    let mut nxt = *p.get(6)?;
    let mut off = 40;
    for _ in 0..8 {
        match nxt {
            0 | 43 | 60 => {
                let h = p.get(off..off + 2)?;
                nxt = h[0];
                off += (usize::from(h[1]) + 1) * 8;
            }
            44 => {
                let h = p.get(off..off + 8)?;
                if u16::from_be_bytes([h[2], h[3]]) & 0xfff8 != 0 {
                    return None;
                }
                nxt = h[0];
                off += 8;
            }
            _ => return Some((off, nxt)),
        }
    }
    None
}

/// `icmp6_error`: an ICMPv6 error about `orig` (received on `rcvif`), `param` its pointer
/// or MTU.
pub fn icmp6_error(e: &mut Engine, _rcvif: u32, orig: &[u8], ty: u8, code: u8, param: u32) {
    if orig.len() < 40 || orig[0] >> 4 != 6 {
        return;
    }
    let a = |o: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&orig[o..o + 16]).unwrap_or_default());
    let (osrc, odst) = (a(8), a(24));
    let exempt =
        ty == ICMP6_PACKET_TOO_BIG || (ty == ICMP6_PARAM_PROB && code == ICMP6_PARAMPROB_OPTION);
    if (e.icmp.rx_lmcast || odst.is_multicast()) && !exempt {
        return;
    }
    if osrc.is_unspecified() || osrc.is_multicast() {
        return;
    }
    if let Some((off, IPPROTO_ICMPV6)) = ip6_lasthdr(orig) {
        match orig.get(off) {
            None => return,
            Some(&t) if t < 128 || t == ND_REDIRECT => return,
            _ => {}
        }
    }
    if !e.icmp.pps6.check(Instant::now(), e.icmp.errppslimit6) {
        e.icmp.ratelimited += 1;
        return;
    }
    let quote = orig.len().min(ICMPV6_PLD_MAXLEN);
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&param.to_be_bytes());
    m.extend_from_slice(&orig[..quote]);
    // `icmp6_reflect`: the original destination if it is ours and ready, else the source
    // towards the original sender.
    let ready = e.ifs.iter().any(|f| {
        f.addrs
            .iter()
            .any(|x| x.addr == IpAddr::V6(odst) && x.ready())
    });
    let src = if ready {
        odst
    } else {
        match e.select_source(IpAddr::V6(osrc)) {
            Ok(IpAddr::V6(s)) => s,
            _ => return,
        }
    };
    let c = csum6(src, osrc, IPPROTO_ICMPV6, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    e.icmp.sent += 1;
    let p = Engine::ipv6_packet(src, osrc, IPPROTO_ICMPV6, IP6_DEFHLIM, &m);
    e.output(p);
}

/// Whether smoltcp's output `p` is one of the errors made here instead (it makes them
/// without NetBSD's rules, rate limit, TTL and quote length): dropped.
pub fn smoltcp_error(p: &[u8]) -> bool {
    match p.first().map(|b| b >> 4) {
        Some(4) if p.len() >= 22 && p[9] == 1 => {
            let hl = usize::from(p[0] & 0xf) * 4;
            matches!(
                (p.get(hl), p.get(hl + 1)),
                (
                    Some(&ICMP_UNREACH),
                    Some(&ICMP_UNREACH_PROTOCOL | &ICMP_UNREACH_PORT)
                )
            )
        }
        Some(6) if p.len() >= 42 && p[6] == IPPROTO_ICMPV6 => matches!(
            (p[40], p[41]),
            (ICMP6_DST_UNREACH, ICMP6_DST_UNREACH_NOPORT)
                | (ICMP6_PARAM_PROB, ICMP6_PARAMPROB_NEXTHEADER)
        ),
        _ => false,
    }
}

/// Whether a UDP socket takes datagrams to `dst`:`port` (smoltcp's `accepts`).
fn udp_bound(e: &Engine, dst: IpAddr, port: u16) -> bool {
    e.sockets.iter().any(|(_, s)| match s {
        smoltcp::socket::Socket::Udp(u) => {
            let ep = u.endpoint();
            u.is_open() && ep.port == port && ep.addr.is_none_or(|a| IpAddr::from(a) == dst)
        }
        _ => false,
    })
}

/// Whether a raw socket takes protocol `proto` from `h` (`rip_input`'s `last`).
fn raw_takes(e: &Engine, h: &IpHdr) -> bool {
    e.pcbs.values().any(|p| match p {
        Pcb::Raw(r) => {
            r.v6 == h.dst.is_ipv6()
                && (r.proto == 0 || r.proto == h.proto)
                && r.local.is_none_or(|a| a == h.dst)
                && r.remote.is_none_or(|a| a == h.src)
        }
        _ => false,
    })
}

/// The checks of `udp_input` before a datagram finds no socket: its length and checksum.
fn udp_ok(h: &IpHdr, p: &[u8]) -> bool {
    let Some(u) = p.get(h.hlen..h.total_len) else {
        return false;
    };
    if u.len() < 8 {
        return false;
    }
    let ulen = usize::from(u16::from_be_bytes([u[4], u[5]]));
    if ulen < 8 || ulen > u.len() {
        return false;
    }
    let u = &u[..ulen];
    match (h.src, h.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            if u[6..8] == [0, 0] {
                return true;
            }
            let mut b = Vec::with_capacity(12 + u.len());
            b.extend_from_slice(&s.octets());
            b.extend_from_slice(&d.octets());
            b.extend_from_slice(&[0, 17]);
            b.extend_from_slice(&(u.len() as u16).to_be_bytes());
            b.extend_from_slice(u);
            csum(&b) == 0
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => u[6..8] != [0, 0] && csum6(s, d, 17, u) == 0,
        _ => false,
    }
}

/// A packet for us on interface `i`, after the raw sockets saw it: the errors its
/// protocol makes when nothing takes it (`udp_input`'s port unreachable, `rip_input`'s
/// protocol unreachable, `rip6_input`'s parameter problem).
pub fn local_input(e: &mut Engine, i: u32, h: &IpHdr, p: &[u8]) {
    // `M_BCAST|M_MCAST` only: a datagram to a broadcast address in a unicast frame is
    // answered (`icmp_reflect` picks the interface's address), as NetBSD's.
    let bcast = e.icmp.rx_lmcast;
    let v6 = h.dst.is_ipv6();
    match h.proto {
        17 => {
            if !udp_ok(h, p) {
                return;
            }
            let dport = u16::from_be_bytes([p[h.hlen + 2], p[h.hlen + 3]]);
            if bcast || udp_bound(e, h.dst, dport) {
                return;
            }
            let orig = &p[..h.total_len];
            if v6 {
                icmp6_error(e, i, orig, ICMP6_DST_UNREACH, ICMP6_DST_UNREACH_NOPORT, 0);
            } else {
                icmp_error(e, i, orig, ICMP_UNREACH, ICMP_UNREACH_PORT, 0);
            }
        }
        // TCP (smoltcp resets), ICMP, IGMP, ICMPv6, IPv6 extension headers, no next header.
        1 | 2 | 6 | 58 | 59 if !(v6 && h.proto == 1) => {}
        0 | 43 | 44 | 50 | 51 | 60 if v6 => {}
        _ => {
            if raw_takes(e, h) {
                return;
            }
            let orig = &p[..h.total_len];
            if v6 {
                icmp6_error(e, i, orig, ICMP6_PARAM_PROB, ICMP6_PARAMPROB_NEXTHEADER, 6);
            } else {
                // `rip_input` turned ip_len (less the header) and ip_off into host order
                // before `icmp_error` quoted the header: NetBSD's error shows them so.
                let mut q = orig.to_vec();
                let len = (h.total_len - h.hlen) as u16;
                q[2..4].copy_from_slice(&len.to_le_bytes());
                let off = u16::from_be_bytes([q[6], q[7]]);
                q[6..8].copy_from_slice(&off.to_le_bytes());
                icmp_error(e, i, &q, ICMP_UNREACH, ICMP_UNREACH_PROTOCOL, 0);
            }
        }
    }
}

/// `ip_forward`'s and `ip6_forward`'s first test: never a packet that came in a link
/// broadcast or multicast frame, nor (IPv4, `in_canforward`) to net 0, 127 or class D/E.
pub fn can_forward(e: &Engine, dst: IpAddr) -> bool {
    !e.icmp.rx_lmcast
        && match dst {
            IpAddr::V4(d) => {
                let o = d.octets()[0];
                o != 0 && o != 127 && o < 224
            }
            IpAddr::V6(_) => true,
        }
}

/// `ip_forward` after the TTL check: the route for `h.dst`, or the error when there is
/// none (`ICMP_UNREACH_NET`) or it rejects (`ICMP_UNREACH_HOST`; a blackhole drops
/// silently). `Some(Some(gw))` when a redirect to `gw` is due. `mcopy` is the packet
/// before its TTL went down.
pub fn forward_route(e: &mut Engine, i: u32, h: &IpHdr, mcopy: &[u8]) -> Option<Option<u32>> {
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (h.src, h.dst) else {
        return None;
    };
    let Some(r) = e.routes.lookup(IpAddr::V4(dst)).cloned() else {
        e.stats.ip_noroute += 1;
        icmp_error(e, i, mcopy, ICMP_UNREACH, ICMP_UNREACH_NET, 0);
        return None;
    };
    if r.flags & RTF_REJECT != 0 {
        e.stats.ip_rejected += 1;
        icmp_error(e, i, mcopy, ICMP_UNREACH, ICMP_UNREACH_HOST, 0);
        return None;
    }
    if r.flags & RTF_BLACKHOLE != 0 {
        e.stats.ip_rejected += 1;
        return None;
    }
    if r.ifindex == i
        && r.flags & (RTF_DYNAMIC | RTF_MODIFIED) == 0
        && !(r.prefix == 0 && r.dst == IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        && e.icmp.sendredirects != 0
    {
        // The source is on the route's network (`ia_subnet` of its interface address).
        let on_link = e.ifp(i).is_some_and(|f| {
            f.addrs.iter().any(|a| {
                a.addr.is_ipv4() && route::prefix_contains(a.addr, a.prefix, IpAddr::V4(src))
            })
        });
        if on_link {
            let gw = match (r.flags & RTF_GATEWAY != 0, r.gateway) {
                (true, Some(IpAddr::V4(g))) => g,
                _ => dst,
            };
            return Some(Some(u32::from(gw)));
        }
    }
    Some(None)
}

/// `ip6_forward` after the hop limit went down: the route, or the error when there is
/// none (no route), the source's scope ends here (beyond scope) or the route rejects
/// (address unreachable; a blackhole drops silently). `mcopy`: the packet as forwarded.
/// `Some(Some(route))` when a redirect is due (`ip6_forward`: the route goes back out of
/// `i`, `net.inet6.ip6.redirect` is on, the route was not made or changed by a redirect):
/// [`icmp6_redirect_output`] after the packet went.
pub fn forward6_route(e: &mut Engine, i: u32, h: &IpHdr, mcopy: &[u8]) -> Option<Option<Route>> {
    let Some(r) = e.routes.lookup(h.dst).cloned() else {
        e.stats.ip_noroute += 1;
        icmp6_error(e, i, mcopy, ICMP6_DST_UNREACH, ICMP6_DST_UNREACH_NOROUTE, 0);
        return None;
    };
    if is_link_local(h.src) && r.ifindex != i {
        icmp6_error(
            e,
            i,
            mcopy,
            ICMP6_DST_UNREACH,
            ICMP6_DST_UNREACH_BEYONDSCOPE,
            0,
        );
        return None;
    }
    if r.flags & RTF_REJECT != 0 {
        e.stats.ip_rejected += 1;
        icmp6_error(e, i, mcopy, ICMP6_DST_UNREACH, ICMP6_DST_UNREACH_ADDR, 0);
        return None;
    }
    if r.flags & RTF_BLACKHOLE != 0 {
        e.stats.ip_rejected += 1;
        return None;
    }
    let redirect =
        r.ifindex == i && e.icmp.sendredirects6 != 0 && r.flags & (RTF_DYNAMIC | RTF_MODIFIED) == 0;
    Some(redirect.then_some(r))
}

/// `ND_OPT_TARGET_LINKADDR`.
const ND_OPT_TARGET_LINKADDR: u8 = 2;
/// `ND_OPT_REDIRECTED_HEADER`.
const ND_OPT_REDIRECTED_HEADER: u8 = 4;
/// `IPV6_MMTU`: the most an ICMPv6 redirect takes.
const IPV6_MMTU: usize = 1280;

/// `nd6_is_addr_neighbor`: `a` is on interface `i`'s link (link-local, in one of its
/// prefixes, or in its neighbour cache).
fn is_neighbor(e: &Engine, i: u32, a: Ipv6Addr) -> bool {
    let a = IpAddr::V6(a);
    is_link_local(a)
        || e.ifp(i).is_some_and(|f| {
            f.addrs
                .iter()
                .any(|x| x.addr.is_ipv6() && route::prefix_contains(x.addr, x.prefix, a))
        })
        || matches!(a, IpAddr::V6(v) if e.nd.contains_key(&(i, v)))
}

/// The first ready link-local address of interface `i` (`in6ifa_ifpforlinklocal`).
fn link_local_of(e: &Engine, i: u32) -> Option<Ipv6Addr> {
    e.ifp(i)?.addrs.iter().find_map(|a| match a.addr {
        IpAddr::V6(v) if is_link_local(a.addr) && a.ready() => Some(v),
        _ => None,
    })
}

/// `icmp6_redirect_output`: tells the sender of `mcopy` (the packet as forwarded back out
/// of interface `i` by route `r`) of a better first hop: the route's link-local gateway
/// (no redirect for a gateway that is not link-local) or, for a destination on the link,
/// the destination itself. From our link-local address, hop limit 255, with the target's
/// link-layer address when the neighbour cache has it and as much of the packet as fits
/// 1280 bytes (a multiple of 8) in a redirected header option; `errppslimit6` a second.
pub fn icmp6_redirect_output(e: &mut Engine, i: u32, mcopy: &[u8], r: &Route) {
    if !e.forwarding_v6 || mcopy.len() < 40 {
        return;
    }
    let a = |o: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&mcopy[o..o + 16]).unwrap_or_default());
    let (osrc, odst) = (a(8), a(24));
    if !is_neighbor(e, i, osrc) || odst.is_multicast() {
        return;
    }
    if !e.icmp.pps6.check(Instant::now(), e.icmp.errppslimit6) {
        e.icmp.ratelimited += 1;
        return;
    }
    let Some(ll6) = link_local_of(e, i) else {
        return;
    };
    let target = if r.flags & RTF_GATEWAY != 0 {
        match r.gateway {
            Some(IpAddr::V6(g)) if is_link_local(IpAddr::V6(g)) => g,
            _ => return,
        }
    } else {
        odst
    };
    let mut m = vec![ND_REDIRECT, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    m.extend_from_slice(&odst.octets());
    if let Some(mac) = e.nd.get(&(i, target)).and_then(|n| n.mac) {
        m.extend_from_slice(&[ND_OPT_TARGET_LINKADDR, 1]);
        m.extend_from_slice(&mac);
    }
    // The redirected header: what fits, cut to a multiple of 8 bytes.
    let room = (IPV6_MMTU - 40 - m.len()) & !7;
    let quote = if room - 8 < mcopy.len() {
        room - 8
    } else {
        mcopy.len() - mcopy.len() % 8
    };
    m.extend_from_slice(&[
        ND_OPT_REDIRECTED_HEADER,
        ((quote + 8) / 8) as u8,
        0,
        0,
        0,
        0,
        0,
        0,
    ]);
    m.extend_from_slice(&mcopy[..quote]);
    let c = csum6(ll6, osrc, IPPROTO_ICMPV6, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    e.icmp.sent += 1;
    let p = Engine::ipv6_packet(ll6, osrc, IPPROTO_ICMPV6, MAXTTL, &m);
    // Out of the interface it concerns, whatever the routes to a link-local source say.
    e.nd_resolve(i, osrc, p);
}

/// `icmp6_redirect_input`: a redirect received on interface `i` (a host only:
/// `net.inet6.ip6.forwarding` 0, `net.inet6.icmp6.rediraccept` 1). Ignored unless from a
/// link-local address with hop limit 255, code 0, a valid checksum and options, from the
/// current first hop towards the (not multicast) destination, naming a link-local target
/// (a better router) or the destination itself (on the link). The target's link-layer
/// address goes into the neighbour cache (`nd6_cache_lladdr`, STALE); a better router
/// gets a host route through it ([`rtredirect`], `RTM_REDIRECT`).
pub fn redirect6_input(e: &mut Engine, i: u32, h: &IpHdr, p: &[u8]) {
    let (IpAddr::V6(src), IpAddr::V6(dst)) = (h.src, h.dst) else {
        return;
    };
    if e.forwarding_v6 || e.icmp.rediraccept6 == 0 {
        return;
    }
    let Some(m) = p.get(h.hlen..h.total_len) else {
        return;
    };
    if m.len() < 40 || m[1] != 0 || csum6(src, dst, IPPROTO_ICMPV6, m) != 0 {
        return;
    }
    if !is_link_local(h.src) || p[7] != 255 {
        return;
    }
    let a = |o: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&m[o..o + 16]).unwrap_or_default());
    let (target, rdst) = (a(8), a(24));
    // The current first hop for the destination must be the sender, on this link.
    match e.routes.lookup(IpAddr::V6(rdst)) {
        Some(r) if r.flags & RTF_GATEWAY != 0 && r.gateway == Some(h.src) && r.ifindex == i => {}
        _ => return,
    }
    if rdst.is_multicast() {
        return;
    }
    let is_router = is_link_local(IpAddr::V6(target));
    let is_onlink = target == rdst;
    if !is_router && !is_onlink {
        return;
    }
    let mut lla: Option<[u8; 6]> = None;
    let mut o = &m[40..];
    while !o.is_empty() {
        if o.len() < 8 || o[1] == 0 || usize::from(o[1]) * 8 > o.len() {
            return;
        }
        let len = usize::from(o[1]) * 8;
        if o[0] == ND_OPT_TARGET_LINKADDR {
            // `if_addrlen` 6: one 8-byte unit.
            if len != 8 {
                return;
            }
            lla = o[2..8].try_into().ok();
        }
        o = &o[len..];
    }
    if let Some(mac) = lla.filter(|m| m[0] & 1 == 0) {
        let now_s = e.uptime_s();
        e.nd_learn(i, target, mac, crate::engine::NdState::Stale, now_s);
        if let Some(n) = e.nd.get_mut(&(i, target)) {
            n.router = is_router && !is_onlink;
        }
    }
    if !is_onlink {
        rtredirect_on(e, IpAddr::V6(rdst), IpAddr::V6(target), h.src, Some(i));
    }
}

/// `inetctlerrmap` after `icmp_input`'s code mapping: the errno an IPv4 error gives the
/// sockets (0: none), `None` for what is not taken here.
fn v4_errno(ty: u8, code: u8) -> Option<i32> {
    match (ty, code) {
        (ICMP_UNREACH, 2 | 3) => Some(i32::from(Errno::ECONNREFUSED.raw())),
        // Source route failed, net and host codes.
        (ICMP_UNREACH, 0 | 1 | 5..=15) => Some(i32::from(Errno::EHOSTUNREACH.raw())),
        (ICMP_TIMXCEED, 0 | 1) => Some(0),
        (ICMP_PARAMPROB, 0 | 1) => Some(i32::from(Errno::ENOPROTOOPT.raw())),
        // Source quench: TCP ignores it, UDP's errno is 0.
        (4, 0) => Some(0),
        _ => None,
    }
}

/// `inet6ctlerrmap` after `icmp6_input`'s mapping; `true` for `PRC_HOSTDEAD` (every
/// socket to that host, whatever its ports).
fn v6_errno(ty: u8, code: u8) -> Option<(i32, bool)> {
    match (ty, code) {
        (ICMP6_DST_UNREACH, 0 | 2) => Some((i32::from(Errno::EHOSTUNREACH.raw()), false)),
        (ICMP6_DST_UNREACH, 1 | 4) => Some((i32::from(Errno::ECONNREFUSED.raw()), false)),
        (ICMP6_DST_UNREACH, 3) => Some((i32::from(Errno::EHOSTDOWN.raw()), true)),
        (ICMP6_TIME_EXCEEDED, 0 | 1) => Some((0, false)),
        (ICMP6_PARAM_PROB, 1) => Some((i32::from(Errno::ECONNREFUSED.raw()), false)),
        (ICMP6_PARAM_PROB, 0 | 2) => Some((i32::from(Errno::ENOPROTOOPT.raw()), false)),
        _ => None,
    }
}

fn errno_of(n: i32) -> Errno {
    Errno::from_raw(n as u16)
}

/// An ICMP or ICMPv6 message for us (the raw sockets have seen it): errors go to the
/// sockets they concern, redirects to the routing table.
pub fn input(e: &mut Engine, _i: u32, h: &IpHdr, p: &[u8]) {
    let Some(m) = p.get(h.hlen..h.total_len) else {
        return;
    };
    match (h.src, h.dst) {
        (IpAddr::V4(src), IpAddr::V4(_)) if h.proto == 1 => {
            if m.len() < 8 || csum(m) != 0 {
                return;
            }
            if m[0] == ICMP_REDIRECT {
                if m[1] <= 3 && e.icmp.rediraccept != 0 && m.len() >= 8 + 20 + 8 {
                    let q = &m[8..];
                    if q[0] >> 4 == 4 && q[0] & 0xf >= 5 {
                        let dst = Ipv4Addr::new(q[16], q[17], q[18], q[19]);
                        let gw = Ipv4Addr::new(m[4], m[5], m[6], m[7]);
                        rtredirect(e, IpAddr::V4(dst), IpAddr::V4(gw), IpAddr::V4(src));
                    }
                }
                return;
            }
            let Some(errno) = v4_errno(m[0], m[1]) else {
                return;
            };
            // `ICMP_ADVLENMIN`, `ICMP_ADVLEN`.
            let q = &m[8..];
            if q.len() < 20 + 8 || q[0] >> 4 != 4 || q[0] & 0xf < 5 {
                return;
            }
            let qhl = usize::from(q[0] & 0xf) * 4;
            if q.len() < qhl + 8 || errno == 0 {
                return;
            }
            let qsrc = IpAddr::V4(Ipv4Addr::new(q[12], q[13], q[14], q[15]));
            let qdst = Ipv4Addr::new(q[16], q[17], q[18], q[19]);
            if qdst.is_multicast() {
                return;
            }
            let l4 = &q[qhl..];
            notify(e, q[9], qsrc, l4, IpAddr::V4(qdst), errno_of(errno), false);
        }
        (IpAddr::V6(_), IpAddr::V6(_)) if h.proto == IPPROTO_ICMPV6 => {
            if m.len() < 8 {
                return;
            }
            let Some((errno, hostdead)) = v6_errno(m[0], m[1]) else {
                return;
            };
            let q = &m[8..];
            if q.len() < 40 + 8 || q[0] >> 4 != 6 || errno == 0 {
                return;
            }
            let Some((off, nxt)) = ip6_lasthdr(q) else {
                return;
            };
            let Some(l4) = q.get(off..off + 8) else {
                return;
            };
            let a = |o: usize| {
                IpAddr::V6(Ipv6Addr::from(
                    <[u8; 16]>::try_from(&q[o..o + 16]).unwrap_or_default(),
                ))
            };
            notify(e, nxt, a(8), l4, a(24), errno_of(errno), hostdead);
        }
        _ => {}
    }
}

/// `in_pcbnotify` / `in6_pcbnotify` with `udp_notify` and `tcp_notify`: the sockets of
/// protocol `proto` from `laddr` (port in `l4`) to `faddr` (every port of it when
/// `any_port`).
fn notify(
    e: &mut Engine,
    proto: u8,
    laddr: IpAddr,
    l4: &[u8],
    faddr: IpAddr,
    err: Errno,
    any_port: bool,
) {
    let lport = u16::from_be_bytes([l4[0], l4[1]]);
    let fport = u16::from_be_bytes([l4[2], l4[3]]);
    match proto {
        17 => {
            for p in e.pcbs.values_mut() {
                let Pcb::Udp(u) = p else { continue };
                let Some((ra, rp)) = u.remote else { continue };
                let (la, lp) = u.local.unwrap_or((None, 0));
                if ra == faddr
                    && (any_port || (rp == fport && lp == lport && la.is_none_or(|a| a == laddr)))
                {
                    u.error = Some(err);
                }
            }
        }
        6 => {
            let mut hit = Vec::new();
            for (id, p) in e.pcbs.iter() {
                let Pcb::Tcp(t) = p else { continue };
                if let TcpState::Conn(h) = t.state {
                    hit.push((*id, h));
                }
            }
            for (id, h) in hit {
                let s = e.tcp(h);
                let (Some(le), Some(re)) = (s.local_endpoint(), s.remote_endpoint()) else {
                    continue;
                };
                if IpAddr::from(re.addr) != faddr
                    || IpAddr::from(le.addr) != laddr
                    || !any_port && (re.port != fport || le.port != lport)
                {
                    continue;
                }
                let st = s.state();
                use smoltcp::socket::tcp::State;
                if st == State::Established
                    && matches!(
                        err,
                        Errno::EHOSTUNREACH | Errno::ENETUNREACH | Errno::EHOSTDOWN
                    )
                {
                    continue;
                }
                if let Some(Pcb::Tcp(t)) = e.pcbs.get_mut(&id) {
                    // `tcp_notify`: a soft error (`t_rxtshift > 3` never comes before
                    // `tcp_keepinit` in NetBSD's SYN_SENT: it sends four SYNs in 75 s).
                    t.softerror = Some(err);
                }
            }
        }
        _ => {}
    }
}

/// `rtredirect`: the route to `dst` goes through `gw` from now on, as router `src` said.
pub fn rtredirect(e: &mut Engine, dst: IpAddr, gw: IpAddr, src: IpAddr) {
    rtredirect_on(e, dst, gw, src, None);
}

/// [`rtredirect`] with the interface a link-local gateway's scope names.
fn rtredirect_on(e: &mut Engine, dst: IpAddr, gw: IpAddr, src: IpAddr, zone: Option<u32>) {
    let mut flags = RTF_GATEWAY | RTF_HOST;
    // The gateway must be on one of our networks (`ifa_ifwithnet`; a link-local one on
    // the link its scope names).
    let ifa = e
        .ifs
        .iter()
        .filter(|f| f.flags & crate::ifnet::IFF_LOOPBACK == 0)
        .filter(|f| zone.is_none_or(|z| z == f.index))
        .find(|f| {
            f.addrs
                .iter()
                .any(|a| route::prefix_contains(a.addr, a.prefix, gw))
        })
        .map(|f| f.index);
    let error = match ifa {
        None => i32::from(Errno::ENETUNREACH.raw()),
        Some(ifindex) => {
            let cur = e.routes.lookup(dst).cloned();
            match cur {
                Some(r) if r.gateway != Some(src) || r.ifindex != ifindex => {
                    i32::from(Errno::EINVAL.raw())
                }
                _ if e.is_local(gw) => i32::from(Errno::EHOSTUNREACH.raw()),
                Some(r) if r.prefix != 0 && r.flags & RTF_GATEWAY == 0 => {
                    i32::from(Errno::EHOSTUNREACH.raw())
                }
                Some(r) if r.prefix != 0 && r.flags & RTF_HOST != 0 => {
                    if let Some(x) = e.routes.get_mut(r.dst, r.prefix) {
                        x.gateway = Some(gw);
                        x.flags |= RTF_MODIFIED;
                        flags |= RTF_MODIFIED;
                    }
                    0
                }
                _ => {
                    flags |= RTF_DYNAMIC;
                    let nr = Route {
                        dst,
                        prefix: route::host_prefix(dst),
                        gateway: Some(gw),
                        ifindex,
                        flags,
                    };
                    match e.routes.add(nr) {
                        Ok(()) => {
                            flags |= RTF_UP;
                            0
                        }
                        Err(route::RtError::Exists) => i32::from(Errno::EEXIST.raw()),
                        Err(_) => i32::from(Errno::ENOBUFS.raw()),
                    }
                }
            }
        }
    };
    if e.icmp.rtmsgs.len() < RTMSGS_MAX {
        let z = zone.unwrap_or(0);
        e.icmp
            .rtmsgs
            .push(redirect_msg(dst, gw, src, flags, error, z));
    }
}

/// `rt_missmsg(RTM_REDIRECT)`: destination, gateway and author, `RTF_DONE` and the
/// flags, the error.
/// Link-local gateway and author carry interface `zone` embedded (KAME's form, as
/// NetBSD's kernel holds them).
fn redirect_msg(
    dst: IpAddr,
    gw: IpAddr,
    src: IpAddr,
    flags: u32,
    error: i32,
    zone: u32,
) -> Vec<u8> {
    let mut m = vec![0u8; crate::rtmsg::RT_MSGHDR];
    m[2] = crate::rtmsg::RTM_VERSION;
    m[3] = RTM_REDIRECT;
    m[8..12].copy_from_slice(&((flags | route::RTF_DONE) as i32).to_le_bytes());
    m[12..16].copy_from_slice(&(0x1 | 0x2 | RTA_AUTHOR).to_le_bytes());
    m[24..28].copy_from_slice(&error.to_le_bytes());
    for a in [dst, gw, src] {
        crate::rtmsg::push_sa(&mut m, &crate::rtmsg::sa_of_scoped(a, zone));
    }
    let len = m.len() as u16;
    m[0..2].copy_from_slice(&len.to_le_bytes());
    m
}

/// Registers the knobs: `net.inet.icmp.{returndatabytes,errppslimit,rediraccept}`, `net.inet.ip.redirect`,
/// `net.inet.tcp.keepinit` and, with netinet6, `net.inet6.icmp6.{rediraccept,errppslimit}`
/// and `net.inet6.ip6.redirect` (NetBSD's numbers; `keepinit` is created as NetBSD's).
pub fn register_sysctl(
    k: &kernel::Kernel,
    st: &std::sync::Arc<crate::Stack>,
    inet6: bool,
) -> kernel::Result<()> {
    use kernel::sysctl::{Spec, CTLTYPE_INT};
    type Get = fn(&IcmpState) -> i32;
    type Set = fn(&mut IcmpState, i32);
    let mib = k.sysctl();
    let knob = |path: &[&str], name: &str, num: Option<i32>, get: Get, set: Set| {
        crate::sysctl::int_knob(
            mib,
            st,
            path,
            name,
            num,
            move |e| get(&e.icmp),
            move |e, v| {
                set(&mut e.icmp, v);
                Ok(())
            },
        )
    };
    mib.register(&["net", "inet"], Spec::node("icmp", Some(1)))?;
    let icmp = &["net", "inet", "icmp"][..];
    let (s1, s2) = (st.clone(), st.clone());
    mib.register(
        icmp,
        Spec::func_rw(
            "returndatabytes",
            Some(3),
            CTLTYPE_INT,
            4,
            move |_| Ok(s1.lock().icmp.returndatabytes.to_le_bytes().to_vec()),
            move |_, v| {
                let b = v.get(..4).ok_or(Errno::EINVAL)?;
                let n = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                if !(8..=512).contains(&n) {
                    return Err(Errno::EINVAL);
                }
                s2.lock().icmp.returndatabytes = n;
                Ok(())
            },
        )
        .rw(),
    )?;
    knob(
        icmp,
        "errppslimit",
        Some(4),
        |s| s.errppslimit,
        |s, v| s.errppslimit = v,
    )?;
    knob(
        icmp,
        "rediraccept",
        Some(5),
        |s| s.rediraccept,
        |s, v| s.rediraccept = v,
    )?;
    let ip = &["net", "inet", "ip"][..];
    knob(
        ip,
        "redirect",
        Some(2),
        |s| s.sendredirects,
        |s, v| s.sendredirects = v,
    )?;
    let tcp = &["net", "inet", "tcp"][..];
    knob(
        tcp,
        "keepinit",
        None,
        |s| s.tcp_keepinit,
        |s, v| s.tcp_keepinit = v,
    )?;
    if inet6 {
        mib.register(&["net", "inet6"], Spec::node("icmp6", Some(58)))?;
        let icmp6 = &["net", "inet6", "icmp6"][..];
        knob(
            icmp6,
            "rediraccept",
            Some(2),
            |s| s.rediraccept6,
            |s, v| s.rediraccept6 = v,
        )?;
        knob(
            icmp6,
            "errppslimit",
            Some(14),
            |s| s.errppslimit6,
            |s, v| s.errppslimit6 = v,
        )?;
        let ip6 = &["net", "inet6", "ip6"][..];
        knob(
            ip6,
            "redirect",
            Some(2),
            |s| s.sendredirects6,
            |s, v| s.sendredirects6 = v,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pps_as_ppsratecheck() {
        let t0 = Instant::now();
        let mut p = Pps::default();
        let ok = (0..150).filter(|_| p.check(t0, 100)).count();
        assert_eq!(ok, 100);
        assert!(
            p.check(t0 + Duration::from_millis(1001), 100),
            "a new second"
        );
        let mut z = Pps::default();
        assert!(!z.check(t0, 0), "0: none at all");
        let mut n = Pps::default();
        assert_eq!((0..500).filter(|_| n.check(t0, -1)).count(), 500);
    }

    #[test]
    fn smoltcp_errors_are_recognised() {
        let mut p = vec![0x45, 0, 0, 56, 0, 0, 0, 0, 64, 1, 0, 0];
        p.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        p.extend_from_slice(&[3, 3, 0, 0]);
        p.resize(56, 0);
        assert!(smoltcp_error(&p));
        p[21] = 1;
        assert!(!smoltcp_error(&p), "host unreachable is not smoltcp's");
        p[20] = 0;
        assert!(!smoltcp_error(&p), "an echo reply");
    }

    #[test]
    fn lasthdr_walks_extension_headers() {
        let mut p = vec![0x60, 0, 0, 0, 0, 16, 0, 64];
        p.resize(40, 0);
        p.extend_from_slice(&[58, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[1, 4, 0, 0]);
        assert_eq!(ip6_lasthdr(&p), Some((48, 58)));
        p[6] = 17;
        assert_eq!(ip6_lasthdr(&p), Some((40, 17)));
    }
}

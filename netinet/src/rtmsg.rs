//! Routing messages (NetBSD's `rtsock.c` layouts, amd64, `RTM_VERSION` 4): what
//! `sysctl net.route` (`NET_RT_DUMP`, `NET_RT_FLAGS`, `NET_RT_IFLIST`) returns —
//! `getifaddrs(3)`, `route show`, `arp -a` read them.

use std::net::IpAddr;

use crate::engine::Engine;
use crate::ifnet::Ifnet;
use crate::ioctl::{if_data, mask4, mask6, sin, sin6, sockaddr_dl};
use crate::route::{self, Route};

/// `RTM_VERSION`.
pub const RTM_VERSION: u8 = 4;
/// `RTM_GET`.
pub const RTM_GET: u8 = 0x4;
/// `RTM_NEWADDR`.
pub const RTM_NEWADDR: u8 = 0xc;
/// `RTM_DELADDR`.
pub const RTM_DELADDR: u8 = 0xd;
/// `RTM_IFINFO`.
pub const RTM_IFINFO: u8 = 0x14;
const RTA_DST: i32 = 0x1;
const RTA_GATEWAY: i32 = 0x2;
const RTA_NETMASK: i32 = 0x4;
const RTA_IFP: i32 = 0x10;
const RTA_IFA: i32 = 0x20;
const RTA_BRD: i32 = 0x80;
/// `RTF_LLDATA` (NetBSD 7.99: ARP/NDP entries).
pub const RTF_LLDATA: i32 = 0x400;
const IF_MSGHDR: usize = 152;
const IFA_MSGHDR: usize = 24;
/// `sizeof(struct rt_msghdr)`.
pub const RT_MSGHDR: usize = 120;
/// `RTF_DONE`: a message confirmed.
pub const RTF_DONE_FLAG: u32 = route::RTF_DONE;
/// `NET_RT_DUMP`.
pub const NET_RT_DUMP: i32 = 1;
/// `NET_RT_FLAGS`.
pub const NET_RT_FLAGS: i32 = 2;
/// `NET_RT_IFLIST`.
pub const NET_RT_IFLIST: i32 = 5;

/// Appends `sa` padded to 8 bytes (`RT_ROUNDUP`; an empty one takes 8).
pub(crate) fn push_sa(out: &mut Vec<u8>, sa: &[u8]) {
    let n = if sa.is_empty() {
        8
    } else {
        sa.len().div_ceil(8) * 8
    };
    let at = out.len();
    out.extend_from_slice(sa);
    out.resize(at + n, 0);
}

pub(crate) fn sa_of(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => sin(v).to_vec(),
        IpAddr::V6(v) => sin6(v).to_vec(),
    }
}

/// A netmask as NetBSD's radix code keeps it: trailing zero bytes cut (`sa_len` counts
/// the bytes up to the last non-zero one; a zero mask has length 0).
fn mask_sa(a: IpAddr, prefix: u8) -> Vec<u8> {
    let mut s = match a {
        IpAddr::V4(_) => sin(mask4(prefix)).to_vec(),
        IpAddr::V6(_) => sin6(mask6(prefix)).to_vec(),
    };
    let end = s.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let end = if end <= 2 { 0 } else { end };
    s.truncate(end);
    if let Some(l) = s.first_mut() {
        *l = end as u8;
    }
    s
}

fn fam_ok(af: i32, a: IpAddr) -> bool {
    af == 0 || (af == 2 && a.is_ipv4()) || (af == 24 && a.is_ipv6())
}

/// `RTM_IFINFO` for an interface (as `sysctl_iflist` lists it).
pub fn if_msg(f: &Ifnet) -> Vec<u8> {
    let mut m = vec![0u8; IF_MSGHDR];
    m[2] = RTM_VERSION;
    m[3] = RTM_IFINFO;
    m[4..8].copy_from_slice(&RTA_IFP.to_le_bytes());
    m[8..12].copy_from_slice(&(f.flags as i32).to_le_bytes());
    m[12..14].copy_from_slice(&(f.index as u16).to_le_bytes());
    m[16..16 + crate::ioctl::IF_DATA].copy_from_slice(&if_data(f));
    push_sa(&mut m, &sockaddr_dl(f));
    let len = m.len() as u16;
    m[0..2].copy_from_slice(&len.to_le_bytes());
    m
}

/// [`sa_of`] with a link-local IPv6 address's interface in KAME's embedded form (bytes
/// 2-3 of the address), as NetBSD's kernel tables hold it and its routing messages show
/// it (route(8) prints `fe80::1%shmif0`).
pub(crate) fn sa_of_scoped(a: IpAddr, ifindex: u32) -> Vec<u8> {
    let mut sa = sa_of(a);
    if crate::engine::is_link_local(a) && sa.len() >= 12 {
        sa[10..12].copy_from_slice(&(ifindex as u16).to_be_bytes());
    }
    sa
}

/// `RTM_NEWADDR` for an address.
pub fn ifa_msg(f: &Ifnet, a: &crate::ifnet::IfAddr) -> Vec<u8> {
    let mut m = vec![0u8; IFA_MSGHDR];
    m[2] = RTM_VERSION;
    m[3] = RTM_NEWADDR;
    let mut addrs = RTA_NETMASK | RTA_IFA;
    if a.broadcast.is_some() {
        addrs |= RTA_BRD;
    }
    m[4..8].copy_from_slice(&addrs.to_le_bytes());
    m[16..18].copy_from_slice(&(f.index as u16).to_le_bytes());
    push_sa(&mut m, &mask_sa(a.addr, a.prefix));
    let mut ifa = sa_of(a.addr);
    if crate::engine::is_link_local(a.addr) {
        // A link-local address carries its interface in KAME's embedded form (bytes 2-3
        // of the address, as NetBSD's routing messages do; ifconfig prints `%shmif0`).
        ifa[10..12].copy_from_slice(&(f.index as u16).to_be_bytes());
    }
    push_sa(&mut m, &ifa);
    if let Some(b) = a.broadcast {
        push_sa(&mut m, &sin(b));
    }
    let len = m.len() as u16;
    m[0..2].copy_from_slice(&len.to_le_bytes());
    m
}

/// `NET_RT_IFLIST` for family `af` (0: all) and interface `ifindex` (0: all): per
/// interface its `RTM_IFINFO`, then an `RTM_NEWADDR` per address.
pub fn iflist(e: &Engine, af: i32, ifindex: i32) -> Vec<u8> {
    let mut out = Vec::new();
    for f in &e.ifs {
        if ifindex != 0 && f.index as i32 != ifindex {
            continue;
        }
        out.extend_from_slice(&if_msg(f));
        // The link-level address is the interface's first `ifaddr` (`if_dl`).
        if af == 0 || af == 18 {
            let mut m = vec![0u8; IFA_MSGHDR];
            m[2] = RTM_VERSION;
            m[3] = RTM_NEWADDR;
            m[4..8].copy_from_slice(&(RTA_NETMASK | RTA_IFA).to_le_bytes());
            m[16..18].copy_from_slice(&(f.index as u16).to_le_bytes());
            // Its netmask covers the name (`if_alloc_sadl`).
            let nlen = f.name.len();
            let mut mask = vec![0u8; 8 + nlen];
            mask[0] = mask.len() as u8;
            mask[8..].fill(0xff);
            push_sa(&mut m, &mask);
            push_sa(&mut m, &sockaddr_dl(f));
            let len = m.len() as u16;
            m[0..2].copy_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&m);
        }
        for a in &f.addrs {
            if fam_ok(af, a.addr) {
                out.extend_from_slice(&ifa_msg(f, a));
            }
        }
    }
    out
}

/// A route as `RTM_GET` (`sysctl_dumpentry`).
pub fn rt_msg(
    e: &Engine,
    ty: u8,
    r: &Route,
    seq: i32,
    pid: i32,
    errno: i32,
    extra: u32,
) -> Vec<u8> {
    let mut m = rt_msg_gw(e, ty, r, seq, pid, extra, None);
    m[24..28].copy_from_slice(&errno.to_le_bytes());
    m
}

/// The link address arp(8) reads for `a` on interface `i` (`route_get_sdl`): the entry's
/// MAC, none while unresolved; and whether the entry is static.
pub fn arp_sdl(e: &Engine, i: u32, a: std::net::Ipv4Addr) -> (Vec<u8>, bool) {
    let Some(f) = e.ifp(i) else {
        return (Vec::new(), false);
    };
    let ent = e.arp.get(&(i, a));
    // `sockaddr_dl_init(sdl, ifindex, type, NULL, 0, addr, addrlen)`: no name.
    let mut sdl = vec![0u8; 20];
    sdl[0] = 20;
    sdl[1] = 18;
    sdl[2..4].copy_from_slice(&(i as u16).to_le_bytes());
    sdl[4] = if f.mac.is_some() { 6 } else { 24 };
    if let Some(mac) = ent.and_then(|x| x.mac) {
        sdl[6] = 6;
        sdl[8..14].copy_from_slice(&mac);
    }
    (sdl, ent.is_some_and(|x| x.permanent))
}

/// [`arp_sdl`] for the neighbour cache (ndp(8)); never static here.
pub fn nd_sdl(e: &Engine, i: u32, a: std::net::Ipv6Addr) -> (Vec<u8>, bool) {
    let Some(f) = e.ifp(i) else {
        return (Vec::new(), false);
    };
    let mut sdl = vec![0u8; 20];
    sdl[0] = 20;
    sdl[1] = 18;
    sdl[2..4].copy_from_slice(&(i as u16).to_le_bytes());
    sdl[4] = if f.mac.is_some() { 6 } else { 24 };
    if let Some(mac) = e.nd.get(&(i, a)).and_then(|x| x.mac) {
        sdl[6] = 6;
        sdl[8..14].copy_from_slice(&mac);
    }
    (sdl, false)
}

/// [`rt_msg`] with its gateway sockaddr given (an L2 entry for arp(8)).
pub fn rt_msg_gw(
    e: &Engine,
    ty: u8,
    r: &Route,
    seq: i32,
    pid: i32,
    extra: u32,
    gw: Option<Vec<u8>>,
) -> Vec<u8> {
    let errno = 0i32;
    let mut m = vec![0u8; RT_MSGHDR];
    m[2] = RTM_VERSION;
    m[3] = ty;
    // A local route goes through lo0 (`rt_ifp`), its gateway the owner's link address.
    let local = r.flags & route::RTF_LOCAL != 0;
    let out_if = if local { 1 } else { r.ifindex };
    m[4..6].copy_from_slice(&(out_if as u16).to_le_bytes());
    let host = r.flags & route::RTF_HOST != 0;
    let mut addrs = RTA_DST | RTA_GATEWAY;
    if !host {
        addrs |= RTA_NETMASK;
    }
    let f = e.ifp(out_if);
    if f.is_some() {
        addrs |= RTA_IFP | RTA_IFA;
    }
    m[8..12].copy_from_slice(&((r.flags | route::RTF_UP | extra) as i32).to_le_bytes());
    m[12..16].copy_from_slice(&addrs.to_le_bytes());
    m[16..20].copy_from_slice(&pid.to_le_bytes());
    m[20..24].copy_from_slice(&seq.to_le_bytes());
    m[24..28].copy_from_slice(&errno.to_le_bytes());
    if let Some(f) = f {
        // rmx_mtu: lo0's own routes carry its MTU, as NetBSD's do.
        if f.mac.is_none() && r.ifindex == 1 {
            m[48..56].copy_from_slice(&u64::from(f.mtu).to_le_bytes());
        } else if let Some(p) = e.frag.pmtu.get(&r.dst).filter(|_| host) {
            // A path MTU learnt from ICMP (frag.rs): its cloned host route's rmx_mtu.
            m[48..56].copy_from_slice(&(p.mtu as u64).to_le_bytes());
        }
    }
    push_sa(&mut m, &sa_of(r.dst));
    match (r.gateway, f) {
        _ if gw.is_some() => push_sa(&mut m, gw.as_deref().unwrap_or_default()),
        (Some(g), _) => push_sa(&mut m, &sa_of_scoped(g, r.ifindex)),
        (_, Some(_)) if local && r.ifindex == 1 => {
            // lo0's own address: the gateway is lo0 by name.
            push_sa(&mut m, &e.ifp(1).map(sockaddr_dl).unwrap_or_default())
        }
        (_, Some(_)) => {
            // `link#N`: a sockaddr_dl with the index only.
            match e.ifp(r.ifindex) {
                Some(owner) => {
                    let mut sdl = sockaddr_dl(owner);
                    sdl[5] = 0;
                    sdl[6] = 0;
                    sdl[8..].fill(0);
                    push_sa(&mut m, &sdl);
                }
                None => push_sa(&mut m, &[]),
            }
        }
        _ => push_sa(&mut m, &[]),
    }
    if !host {
        push_sa(&mut m, &mask_sa(r.dst, r.prefix));
    }
    if let Some(f) = f {
        push_sa(&mut m, &sockaddr_dl(f));
        // A local route's ifa is the address itself (`rt_ifa_addlocal`).
        let a = match local {
            true => Some(r.dst),
            false => f.first_addr(r.dst.is_ipv6()),
        };
        let mut ifa = a.map(sa_of).unwrap_or_default();
        if a.is_some_and(crate::engine::is_link_local) && ifa.len() >= 12 {
            // KAME's embedded scope (route(8) prints `%shmif0`).
            let owner = if local { r.ifindex } else { f.index };
            ifa[10..12].copy_from_slice(&(owner as u16).to_be_bytes());
        }
        push_sa(&mut m, &ifa);
    }
    let len = m.len() as u16;
    m[0..2].copy_from_slice(&len.to_le_bytes());
    m
}

/// A routing message without its RTA_IFP and RTA_IFA sockaddrs (the last ones `rt_msg`
/// puts): NetBSD's `route_output` reports them only when the request names one of them.
pub fn without_ifp(mut m: Vec<u8>) -> Vec<u8> {
    if m.len() < RT_MSGHDR {
        return m;
    }
    let addrs = i32::from_le_bytes(m[12..16].try_into().unwrap_or_default());
    let mut off = RT_MSGHDR;
    for bit in 0..4 {
        if addrs & (1 << bit) != 0 {
            let len = usize::from(*m.get(off).unwrap_or(&0));
            off += if len == 0 { 8 } else { len.div_ceil(8) * 8 };
        }
    }
    m.truncate(off.min(m.len()));
    let addrs = addrs & !(RTA_IFP | RTA_IFA);
    m[12..16].copy_from_slice(&addrs.to_le_bytes());
    let len = m.len() as u16;
    m[0..2].copy_from_slice(&len.to_le_bytes());
    m
}

/// `NET_RT_DUMP`: every route of family `af`, and the local host routes NetBSD adds for
/// each address (`RTF_LOCAL`, through `lo0`).
pub fn dump(e: &Engine, af: i32) -> Vec<u8> {
    let mut out = Vec::new();
    for r in all_routes(e) {
        if fam_ok(af, r.dst) {
            out.extend_from_slice(&rt_msg(e, RTM_GET, &r, 0, 0, 0, 0));
        }
    }
    out
}

/// The table as a dump shows it: ours plus a local host route per address of a
/// non-loopback interface.
pub fn all_routes(e: &Engine) -> Vec<Route> {
    let mut v = e.routes.all();
    for f in &e.ifs {
        // `rt_ifa_addlocal`: RTF_LLDATA on an interface with link-level addresses.
        let lldata = if f.mac.is_some() {
            RTF_LLDATA as u32
        } else {
            0
        };
        for a in &f.addrs {
            v.push(Route {
                dst: a.addr,
                prefix: route::host_prefix(a.addr),
                gateway: None,
                ifindex: f.index,
                flags: route::RTF_UP | route::RTF_HOST | route::RTF_LOCAL | lldata,
            });
        }
    }
    // Radix order: by key, then a host route before the masks of the same key, the
    // longer mask first (`10.0.1.0/26` before `10.0.1/24`).
    v.sort_by_key(|r| {
        let net = r.flags & route::RTF_HOST == 0;
        (r.dst.is_ipv6(), r.dst, net, std::cmp::Reverse(r.prefix))
    });
    v
}

/// `NET_RT_FLAGS` with `RTF_LLDATA`: the ARP entries (`arp -a`).
pub fn llinfo(e: &Engine, af: i32) -> Vec<u8> {
    let mut out = Vec::new();
    if af == 24 {
        return nd_llinfo(e);
    }
    if af != 0 && af != 2 {
        return out;
    }
    let mut keys: Vec<_> = e
        .arp
        .iter()
        .map(|(k, v)| (k.0, k.1, v.mac, v.permanent))
        .collect();
    keys.sort();
    // Our own addresses on Ethernet interfaces: permanent entries.
    for f in &e.ifs {
        for a in &f.addrs {
            if let (Some(mac), IpAddr::V4(v)) = (f.mac, a.addr) {
                if e.arp_own_deleted.contains(&(f.index, v)) {
                    continue;
                }
                keys.push((f.index, v, Some(mac), true));
            }
        }
    }
    // NetBSD's order: each interface's lltable bucket by bucket (`IN_LLTBL_HASH` of the
    // address as it lies in memory, 32 buckets).
    let bucket = |a: std::net::Ipv4Addr| {
        let k = u32::from_le_bytes(a.octets());
        ((((((k >> 8) ^ k) >> 8) ^ k) >> 8) ^ k) & 31
    };
    // The newest interface's table first (`lltable_link` puts each at the list's head).
    keys.sort_by_key(|k| (std::cmp::Reverse(k.0), bucket(k.1)));
    for (i, a, mac, permanent) in keys {
        let Some(f) = e.ifp(i) else { continue };
        let mut m = vec![0u8; RT_MSGHDR];
        m[2] = RTM_VERSION;
        m[3] = RTM_GET;
        m[4..6].copy_from_slice(&(i as u16).to_le_bytes());
        let flags = (route::RTF_UP | route::RTF_HOST) as i32 | RTF_LLDATA;
        m[8..12].copy_from_slice(&flags.to_le_bytes());
        m[12..16].copy_from_slice(&(RTA_DST | RTA_GATEWAY).to_le_bytes());
        push_sa(&mut m, &sin(a));
        let mut sdl = sockaddr_dl(f);
        // The neighbour's address in place of ours; none while unresolved.
        let nlen = f.name.len();
        match mac {
            Some(mac) => sdl[8 + nlen..8 + nlen + 6].copy_from_slice(&mac),
            None => sdl[6] = 0,
        }
        if !permanent {
            // rmx_expire: arp(8) says "permanent" only for 0.
            m[104..112].copy_from_slice(&i64::MAX.to_le_bytes());
        }
        push_sa(&mut m, &sdl);
        let len = m.len() as u16;
        m[0..2].copy_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&m);
    }
    out
}

/// `NET_RT_FLAGS` with `RTF_LLDATA` for AF_INET6: the neighbour cache (`ndp -a`), then
/// our own addresses on Ethernet interfaces (permanent), each interface in turn; the
/// state and expiry ndp shows come from `SIOCGNBRINFO_IN6`.
fn nd_llinfo(e: &Engine) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keys: Vec<_> = e.nd.iter().map(|(k, v)| (k.0, k.1, v.mac, false)).collect();
    keys.sort();
    for f in &e.ifs {
        for a in &f.addrs {
            if let (Some(mac), IpAddr::V6(v)) = (f.mac, a.addr) {
                keys.push((f.index, v, Some(mac), true));
            }
        }
    }
    keys.sort_by_key(|k| k.0);
    for (i, a, mac, permanent) in keys {
        let Some(f) = e.ifp(i) else { continue };
        let mut m = vec![0u8; RT_MSGHDR];
        m[2] = RTM_VERSION;
        m[3] = RTM_GET;
        m[4..6].copy_from_slice(&(i as u16).to_le_bytes());
        let flags = (route::RTF_UP | route::RTF_HOST) as i32 | RTF_LLDATA;
        m[8..12].copy_from_slice(&flags.to_le_bytes());
        m[12..16].copy_from_slice(&(RTA_DST | RTA_GATEWAY).to_le_bytes());
        let mut dst = sin6(a);
        if crate::engine::is_link_local(IpAddr::V6(a)) {
            // KAME's embedded scope, as the kernel's tables hold it.
            dst[10..12].copy_from_slice(&(i as u16).to_be_bytes());
        }
        push_sa(&mut m, &dst);
        let mut sdl = sockaddr_dl(f);
        let nlen = f.name.len();
        match mac {
            Some(mac) => sdl[8 + nlen..8 + nlen + 6].copy_from_slice(&mac),
            None => sdl[6] = 0,
        }
        if !permanent {
            m[104..112].copy_from_slice(&i64::MAX.to_le_bytes());
        }
        push_sa(&mut m, &sdl);
        let len = m.len() as u16;
        m[0..2].copy_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&m);
    }
    out
}

/// The family of a routing message's destination (0 when it has none).
pub fn family_of(m: &[u8]) -> i32 {
    let addrs = m
        .get(12..16)
        .map_or(0, |b| i32::from_le_bytes(b.try_into().unwrap_or_default()));
    if addrs & RTA_DST == 0 {
        return 0;
    }
    m.get(RT_MSGHDR + 1).map_or(0, |&f| i32::from(f))
}

/// The messages for an address added (`RTM_NEWADDR`, then the interface's `RTM_IFINFO`)
/// or about to go (`RTM_DELADDR`).
pub fn addr_msgs(e: &Engine, ifindex: u32, addr: IpAddr, ty: u8) -> Vec<Vec<u8>> {
    let Some(f) = e.ifp(ifindex) else {
        return Vec::new();
    };
    let Some(a) = f.addrs.iter().find(|a| a.addr == addr) else {
        return Vec::new();
    };
    let mut m = ifa_msg(f, a);
    m[3] = ty;
    let mut v = vec![m];
    if ty == RTM_NEWADDR {
        v.push(if_msg(f));
    }
    v
}

//! PF_ROUTE (`rtsock.c`): raw sockets on which `route(8)` writes `RTM_ADD`, `RTM_DELETE`,
//! `RTM_CHANGE` and `RTM_GET` and reads the answers; every message (answers included) goes
//! to every routing socket of the family asked for, as NetBSD's `raw_input` does.

use std::any::Any;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, Weak};

use kernel::abi::{Stat, NODEV, S_IFSOCK};
use kernel::file::ops::{POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use kernel::file::{File, Filt, Filter, Iov, PollEvents, Selector};
use kernel::{BoxFut, Errno, Result};
use net::{Ctx, Domain, ProtoSock, Received, Uio};

use crate::route::{self, Route};
use crate::rtmsg;
use crate::Stack;

/// `PF_ROUTE`.
pub const PF_ROUTE: i32 = 34;
/// `route_recvspace`: bytes queued per socket (messages beyond are dropped).
const RCVBUF: usize = 8192;
/// The longest message accepted.
const MSG_MAX: usize = 2048;
const RTM_ADD: u8 = 1;
const RTM_DELETE: u8 = 2;
const RTM_CHANGE: u8 = 3;
const RTM_GET: u8 = 4;
const RTAX_MAX: usize = 9;

/// `routedomain`.
pub struct RouteDomain {
    /// The stack whose table the messages change.
    pub stack: Arc<Stack>,
    /// Open routing sockets (to broadcast to).
    pub socks: Arc<Mutex<Vec<Weak<RouteSock>>>>,
}

impl Domain for RouteDomain {
    fn family(&self) -> i32 {
        PF_ROUTE
    }

    fn name(&self) -> &'static str {
        "route"
    }

    fn create(&self, _cx: &Ctx<'_>, ty: i32, proto: i32) -> Result<Arc<dyn ProtoSock>> {
        if ty != 3 {
            return Err(Errno::EPROTOTYPE);
        }
        let so = Arc::new(RouteSock {
            stack: self.stack.clone(),
            socks: self.socks.clone(),
            af: proto,
            q: Mutex::new((VecDeque::new(), 0)),
        });
        let mut v = self.socks.lock().unwrap_or_else(|e| e.into_inner());
        v.retain(|w| w.strong_count() > 0);
        if v.len() >= crate::sock::PCBS_MAX {
            return Err(Errno::ENOBUFS);
        }
        v.push(Arc::downgrade(&so));
        Ok(so)
    }
}

/// One routing socket.
pub struct RouteSock {
    stack: Arc<Stack>,
    socks: Arc<Mutex<Vec<Weak<RouteSock>>>>,
    /// Family filter (0: all).
    af: i32,
    /// Queued messages and their bytes.
    q: Mutex<(VecDeque<Vec<u8>>, usize)>,
}

/// The sockaddrs of a message by `RTAX_*` (`rt_xaddrs`): the message may end before the
/// RTA_IFP/RTA_IFA an RTM_GET asks for (arp(8) names RTA_IFP and sends none).
fn parse_addrs(m: &[u8], addrs: i32, ty: u8) -> Result<[Option<Vec<u8>>; RTAX_MAX]> {
    let mut out: [Option<Vec<u8>>; RTAX_MAX] = Default::default();
    let mut off = rtmsg::RT_MSGHDR;
    for (i, slot) in out.iter_mut().enumerate() {
        if addrs & (1 << i) == 0 {
            continue;
        }
        if off >= m.len() {
            let left = addrs & (!0 << i);
            let asked = if ty == RTM_GET { left & !0x30 } else { left };
            if asked != 0 {
                return Err(Errno::EINVAL);
            }
            break;
        }
        let len = *m.get(off).ok_or(Errno::EINVAL)? as usize;
        let sa = m.get(off..off + len.max(1)).ok_or(Errno::EINVAL)?;
        *slot = Some(sa[..len].to_vec());
        off += if len == 0 { 8 } else { len.div_ceil(8) * 8 };
    }
    Ok(out)
}

fn ip_of(sa: &[u8]) -> Option<IpAddr> {
    match sa.get(1) {
        Some(2) if sa.len() >= 8 => Some(IpAddr::V4(Ipv4Addr::new(sa[4], sa[5], sa[6], sa[7]))),
        Some(24) if sa.len() >= 24 => {
            let b: [u8; 16] = sa[8..24].try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// A link-local IPv6 sockaddr's address without its scope and the interface the scope
/// names: KAME's embedded form (bytes 2-3 of the address) first, else `sin6_scope_id`.
/// `None` for any other address or a link-local one without a scope.
pub(crate) fn link_scope(sa: &[u8]) -> Option<(Ipv6Addr, u32)> {
    let Some(IpAddr::V6(a)) = ip_of(sa) else {
        return None;
    };
    if !crate::engine::is_link_local(IpAddr::V6(a)) {
        return None;
    }
    let mut o = a.octets();
    let embedded = u32::from(u16::from_be_bytes([o[2], o[3]]));
    let scope_id = sa
        .get(24..28)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0);
    o[2] = 0;
    o[3] = 0;
    let zone = if embedded != 0 { embedded } else { scope_id };
    (zone != 0).then_some((Ipv6Addr::from(o), zone))
}

/// The prefix length of a (possibly shortened) netmask sockaddr for `dst`'s family.
fn prefix_of(mask: Option<&Vec<u8>>, dst: IpAddr) -> Result<u8> {
    let Some(m) = mask else {
        return Ok(route::host_prefix(dst));
    };
    let (start, n) = if dst.is_ipv4() { (4, 4) } else { (8, 16) };
    // A mask shorter than its sockaddr (radix's trimmed masks) has zeros past its end.
    let bytes: Vec<u8> = (0..n)
        .map(|k| m.get(start + k).copied().unwrap_or(0))
        .collect();
    let bits: u32 = bytes.iter().map(|b| b.leading_ones()).sum();
    // Contiguous masks only.
    let want: Vec<u8> = (0..n)
        .map(|k| {
            let left = bits.saturating_sub(8 * k as u32).min(8);
            if left == 0 {
                0
            } else {
                0xffu8 << (8 - left)
            }
        })
        .collect();
    if want != bytes {
        return Err(Errno::EINVAL);
    }
    Ok(bits as u8)
}

/// `lla_rt_output` for AF_INET: RTM_ADD makes a static entry (`arp -s`; `temp`, an expiry,
/// a dynamic one) on the interface the link address names by index, `EEXIST` over a
/// static one; RTM_DELETE removes the entry (`ENOENT` without one).
fn lla_output(e: &mut crate::Engine, ty: u8, a: Ipv4Addr, gw: &[u8], expire: i64) -> Result<()> {
    let idx = u32::from(u16::from_le_bytes([
        *gw.get(2).unwrap_or(&0),
        *gw.get(3).unwrap_or(&0),
    ]));
    if e.ifp(idx).is_none() {
        return Err(Errno::EINVAL);
    }
    match ty {
        RTM_ADD => {
            let nlen = usize::from(*gw.get(5).unwrap_or(&0));
            let alen = usize::from(*gw.get(6).unwrap_or(&0));
            let mac: [u8; 6] = gw
                .get(8 + nlen..8 + nlen + 6)
                .filter(|_| alen >= 6)
                .and_then(|b| b.try_into().ok())
                .unwrap_or_default();
            e.arp_add_static(idx, a, mac, expire == 0)
        }
        _ => e.arp_delete(idx, a),
    }
}

/// `lla_rt_output` for AF_INET6 (ndp(8)): RTM_DELETE removes the neighbour cache entry
/// (`ENOENT` without one); static entries (`ndp -s`) are not done: `EOPNOTSUPP`.
fn nd_lla_output(e: &mut crate::Engine, ty: u8, a: Ipv6Addr, gw: &[u8]) -> Result<()> {
    let idx = u32::from(u16::from_le_bytes([
        *gw.get(2).unwrap_or(&0),
        *gw.get(3).unwrap_or(&0),
    ]));
    if e.ifp(idx).is_none() {
        return Err(Errno::EINVAL);
    }
    // A link-local address may come with KAME's embedded scope.
    let mut o = a.octets();
    if o[0] == 0xfe && o[1] & 0xc0 == 0x80 {
        o[2] = 0;
        o[3] = 0;
    }
    match ty {
        RTM_DELETE => {
            e.nd.remove(&(idx, Ipv6Addr::from(o)))
                .map(|_| ())
                .ok_or(Errno::ENOENT)
        }
        _ => Err(Errno::EOPNOTSUPP),
    }
}

impl RouteSock {
    /// `route_output`: one request; the answer to broadcast (also on failure).
    fn request(&self, m: &[u8], pid: i32) -> (Result<()>, Option<Vec<u8>>) {
        if m.len() < rtmsg::RT_MSGHDR {
            return (Err(Errno::EINVAL), None);
        }
        let msglen = usize::from(u16::from_le_bytes([m[0], m[1]]));
        if msglen != m.len() {
            return (Err(Errno::EINVAL), None);
        }
        if m[2] != rtmsg::RTM_VERSION {
            return (Err(Errno::EPROTONOSUPPORT), None);
        }
        let ty = m[3];
        let flags = i32::from_le_bytes(m[8..12].try_into().unwrap_or_default());
        let addrs = i32::from_le_bytes(m[12..16].try_into().unwrap_or_default());
        let seq = i32::from_le_bytes(m[20..24].try_into().unwrap_or_default());
        let sas = match parse_addrs(m, addrs, m[3]) {
            Ok(s) => s,
            Err(e) => return (Err(e), None),
        };
        let Some(dst) = sas[0].as_deref().and_then(ip_of) else {
            return (Err(Errno::EINVAL), None);
        };
        let host = flags as u32 & route::RTF_HOST != 0;
        let prefix = match if host {
            Ok(route::host_prefix(dst))
        } else {
            prefix_of(sas[2].as_ref(), dst)
        } {
            Ok(p) => p,
            Err(e) => return (Err(e), None),
        };
        let mut e = self.stack.lock();
        // arp(8)'s requests (`RTF_LLDATA` with a link-level gateway): the ARP table, not the
        // routes (`lla_rt_output`).
        let lldata = flags & rtmsg::RTF_LLDATA != 0;
        if let (true, Some(gw), RTM_ADD | RTM_DELETE) = (lldata, sas[1].as_deref(), ty) {
            if gw.get(1) == Some(&18) {
                let expire = i64::from_le_bytes(m[104..112].try_into().unwrap_or_default());
                let r = match dst {
                    IpAddr::V4(a) => lla_output(&mut e, ty, a, gw, expire),
                    IpAddr::V6(a) => nd_lla_output(&mut e, ty, a, gw),
                };
                let mut answer = m.to_vec();
                answer[16..20].copy_from_slice(&pid.to_le_bytes());
                match r {
                    Ok(()) => {
                        let f = i32::from_le_bytes(answer[8..12].try_into().unwrap_or_default());
                        answer[8..12].copy_from_slice(&(f | route::RTF_DONE as i32).to_le_bytes());
                    }
                    Err(err) => answer[24..28].copy_from_slice(&i32::from(err.raw()).to_le_bytes()),
                }
                drop(e);
                return (r, Some(answer));
            }
        }
        let r: Result<Route> = (|| match ty {
            RTM_ADD | RTM_CHANGE => {
                let is_gw = flags as u32 & route::RTF_GATEWAY != 0;
                // RTM_CHANGE (`route_output`): the route `rt_lookup` finds (longest match,
                // of exactly the given mask), whose key must be the destination, and a
                // netmask when the route has one.
                let cur = match ty {
                    RTM_CHANGE => {
                        let masked = route::network(dst, prefix);
                        let c = e
                            .routes
                            .lookup(masked)
                            .filter(|r| sas[2].is_none() || r.prefix == prefix)
                            .cloned()
                            .ok_or(Errno::ESRCH)?;
                        if c.dst != dst {
                            return Err(Errno::ESRCH);
                        }
                        if sas[2].is_none() && c.flags & route::RTF_HOST == 0 {
                            return Err(Errno::ETOOMANYREFS);
                        }
                        Some(c)
                    }
                    _ => None,
                };
                // `ifa_ifwithroute`: our own address (an interface route), an interface
                // whose network holds the gateway, else the interface of the route to the
                // destination; none of those is ENETUNREACH.
                // `rt_getifa`: an RTA_IFA naming one of our addresses picks its interface
                // before anything else (`route add default -ifa 10.0.0.5 192.168.0.1`).
                let by_ifa = sas[5]
                    .as_deref()
                    .and_then(ip_of)
                    .and_then(|a| e.ifindex_of_addr(a));
                let via_dst = || e.routes.lookup(dst).map(|r| r.ifindex);
                let (gateway, ifindex) = match sas[1].as_deref() {
                    None if cur.is_some() => {
                        // A change without a gateway keeps it (rt_getifa still asks).
                        e.ifindex_of_net(dst)
                            .or_else(via_dst)
                            .ok_or(Errno::ENETUNREACH)?;
                        let c = cur.as_ref().expect("change");
                        (c.gateway, c.ifindex)
                    }
                    None => return Err(Errno::EINVAL),
                    Some(gw) => match ip_of(gw) {
                        Some(g) => {
                            // A link-local gateway names its interface (KAME's embedded
                            // scope, as route(8) passes `fe80::1%shmif0`, or
                            // sin6_scope_id): kept without it, on that interface.
                            let (g, zone) = match link_scope(gw) {
                                Some((a, z)) => {
                                    e.ifp(z).ok_or(Errno::ENETUNREACH)?;
                                    (IpAddr::V6(a), Some(z))
                                }
                                None => (g, None),
                            };
                            let own = (!is_gw).then(|| e.ifindex_of_addr(g)).flatten();
                            let ifindex = by_ifa
                                .or(zone)
                                .or(own)
                                .or_else(|| e.ifindex_of_net(g))
                                .or_else(via_dst)
                                .ok_or(Errno::ENETUNREACH)?;
                            (Some(g), ifindex)
                        }
                        // A link-level gateway (`-link -iface shmif0`): its interface.
                        // By index, else by the name its data begins with (route(8)'s
                        // `link_addr("shmif0")`; `ifa_ifwithnet` compares the data under
                        // each link address's mask, which covers the name).
                        None if gw.get(1) == Some(&18) && gw.len() >= 8 => {
                            let idx = u32::from(u16::from_le_bytes([gw[2], gw[3]]));
                            let by_name = || {
                                e.ifs
                                    .iter()
                                    .find(|f| gw[8..].starts_with(f.name.as_bytes()))
                                    .map(|f| f.index)
                            };
                            let i = match e.ifp(idx) {
                                Some(_) => Some(idx),
                                None => by_name(),
                            };
                            (None, i.or_else(via_dst).ok_or(Errno::ENETUNREACH)?)
                        }
                        None => return Err(Errno::EINVAL),
                    },
                };
                let keep = route::RTF_REJECT
                    | route::RTF_BLACKHOLE
                    | route::RTF_STATIC
                    | route::RTF_CONNECTED;
                let asked = flags as u32 & keep;
                let new = match cur {
                    // The flags are the message's but for `PRESERVED_RTF` (UP, GATEWAY,
                    // HOST, ...), which stay the route's.
                    Some(c) => Route {
                        gateway,
                        ifindex,
                        flags: asked | (c.flags & !keep),
                        ..c
                    },
                    None => {
                        let is_gw = is_gw && gateway.is_some();
                        Route {
                            dst,
                            prefix,
                            // NetBSD keeps the gateway as given (route(8) shows it) with
                            // or without RTF_GATEWAY; output uses it only with the flag.
                            gateway,
                            ifindex,
                            flags: route::RTF_UP
                                | asked
                                | if is_gw { route::RTF_GATEWAY } else { 0 }
                                // A host route is asked for (or has no mask): `-net
                                // 192.168.0.1/32` stays a network route.
                                | if host || sas[2].is_none() {
                                    route::RTF_HOST
                                } else {
                                    0
                                },
                        }
                    }
                };
                // `arp_rtrequest` (RTM_ADD, also run by a change): a direct IPv4 network
                // route on an Ethernet interface whose mask is not /32 clones neighbours,
                // RTF_CONNECTED.
                let mut new = new;
                if new.flags & (route::RTF_GATEWAY | route::RTF_HOST) == 0
                    && new.dst.is_ipv4()
                    && sas[2].is_some()
                    && prefix != 32
                    && e.ifp(new.ifindex).is_some_and(|f| f.mac.is_some())
                {
                    new.flags |= route::RTF_CONNECTED;
                }
                if ty == RTM_ADD {
                    e.routes.add(new.clone()).map_err(|x| match x {
                        route::RtError::Exists => Errno::EEXIST,
                        route::RtError::Full => Errno::ENOBUFS,
                        route::RtError::NotFound => Errno::ESRCH,
                    })?;
                } else {
                    let r = e.routes.get_mut(new.dst, new.prefix).ok_or(Errno::ESRCH)?;
                    *r = new.clone();
                }
                Ok(new)
            }
            RTM_DELETE => e.routes.delete(dst, prefix).map_err(|_| Errno::ESRCH),
            RTM_GET => {
                // `rtalloc1` (longest match) unless a netmask asks for one route.
                let r = if sas[2].is_some() {
                    e.routes
                        .all()
                        .into_iter()
                        .find(|r| r.dst == route::network(dst, prefix) && r.prefix == prefix)
                } else {
                    rtmsg::all_routes(&e)
                        .into_iter()
                        .filter(|r| route::prefix_contains(r.dst, r.prefix, dst))
                        .max_by_key(|r| r.prefix)
                };
                r.ok_or(Errno::ESRCH)
            }
            _ => Err(Errno::EOPNOTSUPP),
        })();
        // arp(8) asking for an L2 entry (`RTF_LLDATA`, or not RTF_UP as older arp(8)) of an
        // address that is not a route's key: the route, its gateway the entry's link address
        // (none while unresolved) on the route's interface, RTF_LLDATA (and RTF_STATIC).
        if let (RTM_GET, Ok(route)) = (ty, &r) {
            if (lldata || flags as u32 & route::RTF_UP == 0) && route.dst != dst {
                let (sdl, st) = match dst {
                    IpAddr::V4(a) => rtmsg::arp_sdl(&e, route.ifindex, a),
                    IpAddr::V6(a) => rtmsg::nd_sdl(&e, route.ifindex, a),
                };
                let extra = rtmsg::RTF_DONE_FLAG
                    | rtmsg::RTF_LLDATA as u32
                    | if st { route::RTF_STATIC } else { 0 };
                // The requested address as the destination, no netmask (NetBSD keeps the
                // request's RTAX_DST), the route's flags.
                let l2 = Route {
                    dst,
                    prefix: route::host_prefix(dst),
                    flags: route.flags | route::RTF_HOST,
                    ..route.clone()
                };
                let mut a = rtmsg::rt_msg_gw(&e, ty, &l2, seq, pid, extra, Some(sdl));
                a[8..12].copy_from_slice(&((route.flags | extra) as i32).to_le_bytes());
                let a = match addrs & 0x30 {
                    0 => rtmsg::without_ifp(a),
                    _ => a,
                };
                drop(e);
                return (Ok(()), Some(a));
            }
        }
        let (res, answer) = match r {
            Ok(route) => {
                let a = rtmsg::rt_msg(&e, ty, &route, seq, pid, 0, rtmsg::RTF_DONE_FLAG);
                // The interface and its address only when asked for (route(8)'s `get`
                // asks with RTA_IFP).
                match addrs & 0x30 {
                    0 => (Ok(()), rtmsg::without_ifp(a)),
                    _ => (Ok(()), a),
                }
            }
            Err(err) => {
                // The request itself comes back with rtm_errno set (and our pid, as
                // `route_output` sets it).
                let mut a = m.to_vec();
                a[16..20].copy_from_slice(&pid.to_le_bytes());
                a[24..28].copy_from_slice(&i32::from(err.raw()).to_le_bytes());
                (Err(err), a)
            }
        };
        drop(e);
        (res, Some(answer))
    }

    fn deliver(&self, msg: &[u8], af: i32) {
        deliver(&self.stack, &self.socks, msg, af);
    }
}

/// `raw_input` for routing messages: a copy to every routing socket of the family (0:
/// all), within each socket's queue limit; then wakes the readers.
pub fn deliver(st: &Stack, socks: &Mutex<Vec<Weak<RouteSock>>>, msg: &[u8], af: i32) {
    {
        let v = socks.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for w in v {
            let Some(so) = w.upgrade() else { continue };
            if so.af != 0 && af != 0 && so.af != af {
                continue;
            }
            let mut q = so.q.lock().unwrap_or_else(|e| e.into_inner());
            if q.1 + msg.len() > RCVBUF {
                continue;
            }
            q.1 += msg.len();
            q.0.push_back(msg.to_vec());
        }
    }
    st.wq.wake_all();
}

/// Tells the routing sockets of a change (`rt_ifmsg`, `rt_newaddrmsg`): the messages
/// `announce` builds under the engine's lock, delivered after it.
pub fn announce(st: &Stack, msgs: Vec<Vec<u8>>) {
    if st
        .rtsocks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_empty()
    {
        return;
    }
    for m in msgs {
        let af = match m.get(3) {
            Some(&rtmsg::RTM_NEWADDR) | Some(&rtmsg::RTM_DELADDR) => 0,
            _ => rtmsg::family_of(&m),
        };
        deliver(st, &st.rtsocks, &m, af);
    }
}

impl ProtoSock for RouteSock {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn ty(&self) -> i32 {
        3
    }

    fn shutdown(&self, _how: i32) -> Result<()> {
        Ok(())
    }

    fn send<'a>(
        &'a self,
        cx: &'a Ctx<'a>,
        iov: &'a [Iov],
        _to: Option<Vec<u8>>,
        _control: Vec<u8>,
        _flags: i32,
        _nb: bool,
    ) -> BoxFut<'a, (u64, Result<()>)> {
        Box::pin(async move {
            let total = match net::iov_total(iov) {
                Ok(t) => t as usize,
                Err(e) => return (0, Err(e)),
            };
            if total > MSG_MAX {
                return (0, Err(Errno::EINVAL));
            }
            let m = match Uio::new(iov).copyin(cx.mem, total).await {
                Ok(m) => m,
                Err(e) => return (0, Err(e)),
            };
            let (res, answer) = self.request(&m, cx.p.pid());
            if let Some(a) = answer {
                let af = rtmsg::family_of(&a);
                self.deliver(&a, af);
            }
            match res {
                Ok(()) => (total as u64, Ok(())),
                Err(e) => (0, Err(e)),
            }
        })
    }

    fn recv<'a>(
        &'a self,
        cx: &'a Ctx<'a>,
        iov: &'a [Iov],
        flags: i32,
        nonblock: bool,
    ) -> BoxFut<'a, Result<Received>> {
        Box::pin(async move {
            let total = net::iov_total(iov)? as usize;
            let peek = flags & 0x2 != 0;
            let m = loop {
                {
                    let mut q = self.q.lock().unwrap_or_else(|e| e.into_inner());
                    let got = if peek {
                        q.0.front().cloned()
                    } else {
                        q.0.pop_front()
                    };
                    if let Some(m) = got {
                        if !peek {
                            q.1 -= m.len();
                        }
                        break m;
                    }
                }
                if nonblock {
                    return Err(Errno::EWOULDBLOCK);
                }
                let q = &self.q;
                net::sowait(cx.k, cx.p, &self.stack.wq, 0, || {
                    !q.lock().unwrap_or_else(|e| e.into_inner()).0.is_empty()
                })
                .await?;
            };
            let n = m.len().min(total);
            Uio::new(iov).copyout(cx.mem, &m[..n]).await?;
            Ok(Received {
                n: n as u64,
                addr: Some(vec![2, PF_ROUTE as u8]),
                ctl: Vec::new(),
                flags: if n < m.len() { 0x10 } else { 0 },
            })
        })
    }

    fn sockaddr(&self) -> Result<Vec<u8>> {
        Ok(vec![2, PF_ROUTE as u8])
    }

    fn peeraddr(&self) -> Result<Vec<u8>> {
        Err(Errno::ENOTCONN)
    }

    fn setopt(&self, _cx: &Ctx<'_>, level: i32, _name: i32, _v: &[u8]) -> Result<()> {
        // SO_USELOOPBACK and friends are accepted by NetBSD; ours always loops back.
        if level == 0xffff {
            Ok(())
        } else {
            Err(Errno::ENOPROTOOPT)
        }
    }

    fn getopt(&self, _cx: &Ctx<'_>, level: i32, name: i32) -> Result<Vec<u8>> {
        match (level, name) {
            (0xffff, 0x1008) => Ok(3i32.to_le_bytes().to_vec()),
            (0xffff, 0x1001) | (0xffff, 0x1002) => Ok((RCVBUF as i32).to_le_bytes().to_vec()),
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn ioctl(&self, _fp: &File, _com: u32, _data: &mut [u8]) -> Result<()> {
        Err(Errno::EOPNOTSUPP)
    }

    fn ioctl_mem<'a>(
        &'a self,
        cx: Ctx<'a>,
        com: u32,
        data: &'a mut [u8],
    ) -> Option<BoxFut<'a, Result<()>>> {
        crate::ioctl::socket_ioctl_mem(&self.stack, cx, PF_ROUTE, com, data)
    }

    fn poll(&self, events: PollEvents, sel: Option<&mut Selector>) -> PollEvents {
        if let Some(s) = sel {
            s.record(&self.stack.wq);
        }
        let mut r = events & (POLLOUT | POLLWRNORM);
        if !self
            .q
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .is_empty()
        {
            r |= events & (POLLIN | POLLRDNORM);
        }
        r
    }

    fn filter(&self, filter: Filter, sel: Option<&mut Selector>) -> Result<Filt> {
        let ev = filter.poll_events();
        let r = self.poll(ev, sel);
        Ok(Filt {
            ready: r & ev != 0,
            data: 0,
            eof: false,
        })
    }

    fn stat(&self) -> Result<Stat> {
        Ok(Stat {
            dev: NODEV,
            mode: S_IFSOCK,
            ..Stat::default()
        })
    }

    fn close(&self) {
        let mut q = self.q.lock().unwrap_or_else(|e| e.into_inner());
        q.0.clear();
        q.1 = 0;
    }
}

//! Neighbour unreachability detection: the neighbour cache's states and timers as
//! NetBSD's `nd6.c` (`nd6_llinfo_timer`, `nd6_output`, `nd6_cache_lladdr`) runs them.
//!
//! An entry is INCOMPLETE while multicast solicitations go (one per `retrans`, 1 s, at
//! most `nd6_mmaxtries` 3, then it is freed); REACHABLE after a solicited advertisement
//! for the interface's `reachable` time (`ND_COMPUTE_RTIME(REACHABLE_TIME)`: 15 to 44 s,
//! drawn per interface), then STALE; STALE (also what a solicitation or an unsolicited
//! advertisement teaches) until a packet uses it, then DELAY for `nd6_delay` (5 s), then
//! PROBE: unicast solicitations to the cached address, one per second, at most
//! `nd6_umaxtries` (3), and the entry is freed when none is answered. An unused STALE
//! entry goes after `nd6_gctimer` (a day). Every entry has one deadline; the softint
//! runs [`timer`] on every round.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

use crate::engine::{Engine, NdEntry, NdState};

/// `nd6_delay`: seconds in DELAY before the first probe.
pub const DELAY_MS: u64 = 5_000;
/// `nd6_umaxtries`: unicast probes before a neighbour is given up.
pub const UMAXTRIES: u32 = 3;
/// `nd6_mmaxtries`: multicast solicitations before an unresolved entry is freed.
pub const MMAXTRIES: u32 = 3;
/// `RETRANS_TIMER`.
pub const RETRANS_MS: u64 = 1_000;
/// `nd6_gctimer`: an unused STALE entry lives a day.
pub const GCTIMER_MS: u64 = 86_400_000;
/// `REACHABLE_TIME`.
const REACHABLE_TIME_MS: u64 = 30_000;

/// ND parameters: the knobs (`net.inet6.icmp6.nd6_*`) and per interface (`nd_ifinfo`).
pub struct State {
    /// `reachable` (ms) by interface, drawn when first needed.
    reachable_ms: HashMap<u32, u64>,
    /// `nd6_delay` (seconds).
    pub delay_s: i32,
    /// `nd6_umaxtries`.
    pub umaxtries: i32,
    /// `nd6_mmaxtries`.
    pub mmaxtries: i32,
    /// `net.inet6.ip6.accept_rtadv` (0 on NetBSD's rump kernels).
    pub accept_rtadv: bool,
    /// Default routers (`nd_defrouter`): interface, address, when its lifetime ends (ms).
    routers: Vec<(u32, Ipv6Addr, u64)>,
    /// Autoconf addresses: interface, address, when its valid and preferred lifetimes
    /// end (ms; `None`: infinite).
    autoconf: Vec<Autoconf>,
}

/// An address made from a router's prefix and its lifetimes.
struct Autoconf {
    ifindex: u32,
    addr: Ipv6Addr,
    valid_ms: Option<u64>,
    preferred_ms: Option<u64>,
}

/// `IN6_IFF_DEPRECATED`: its preferred lifetime is over.
pub const IN6_IFF_DEPRECATED: u32 = 0x10;
/// RFC 4862 5.5.3 e): an advertisement shortens a valid lifetime to no less than 2 hours.
const TWO_HOURS_MS: u64 = 7_200_000;

/// Default routers remembered (a bound of ours).
const ROUTERS_MAX: usize = 16;

impl Default for State {
    fn default() -> State {
        State {
            reachable_ms: HashMap::new(),
            delay_s: (DELAY_MS / 1000) as i32,
            umaxtries: UMAXTRIES as i32,
            mmaxtries: MMAXTRIES as i32,
            accept_rtadv: false,
            routers: Vec::new(),
            autoconf: Vec::new(),
        }
    }
}

/// `net.inet6.icmp6.nd6_delay`, `nd6_umaxtries`, `nd6_mmaxtries` (read-write ints, any
/// value taken as NetBSD takes it; below 0 counts as 0). The `icmp6` node may be there
/// already.
pub fn register_sysctl(
    mib: &kernel::sysctl::Mib,
    st: &std::sync::Arc<crate::Stack>,
) -> kernel::Result<()> {
    use kernel::sysctl::Spec;
    let _ = mib.register(&["net", "inet6"], Spec::node("icmp6", Some(58)));
    type Get = fn(&State) -> i32;
    type Set = fn(&mut State, i32);
    let knobs: [(&str, i32, Get, Set); 3] = [
        ("nd6_delay", 8, |s| s.delay_s, |s, v| s.delay_s = v),
        ("nd6_umaxtries", 9, |s| s.umaxtries, |s, v| s.umaxtries = v),
        ("nd6_mmaxtries", 10, |s| s.mmaxtries, |s, v| s.mmaxtries = v),
    ];
    for (name, num, get, set) in knobs {
        crate::sysctl::int_knob(
            mib,
            st,
            &["net", "inet6", "icmp6"],
            name,
            Some(num),
            move |e| get(&e.nd6),
            move |e, v| {
                set(&mut e.nd6, v);
                Ok(())
            },
        )?;
    }
    crate::sysctl::int_knob(
        mib,
        st,
        &["net", "inet6", "ip6"],
        "accept_rtadv",
        Some(12),
        |e| i32::from(e.nd6.accept_rtadv),
        |e, v| {
            e.nd6.accept_rtadv = v != 0;
            Ok(())
        },
    )?;
    Ok(())
}

/// `IN6_IFF_AUTOCONF`: an address made from a router's prefix.
pub const IN6_IFF_AUTOCONF: u32 = 0x40;

/// `nd6_ra_input`, when `accept_rtadv` is on: a router advertisement (hop limit 255, from
/// a link-local address, code 0, a valid checksum and options) teaches its sender's link
/// address (STALE, `nd6_cache_lladdr`), makes it the default router while its lifetime is
/// not 0 (the route `::/0` through it, `defrtrlist_update`; lifetime 0 takes it away), and
/// each prefix with the autonomous flag and length 64 gives the interface an address of
/// that prefix and its link-local interface id (`in6_ifadd`: `IN6_IFF_AUTOCONF`, through
/// duplicate-address detection, its prefix route on-link). Lifetimes are counted down:
/// the router's (the route goes with it), the address's preferred (then
/// `IN6_IFF_DEPRECATED`) and valid ones (then it goes).
pub fn ra_input(e: &mut Engine, i: u32, h: &crate::engine::IpHdr, p: &[u8]) {
    if !e.nd6.accept_rtadv {
        return;
    }
    let (IpAddr::V6(src), IpAddr::V6(dst)) = (h.src, h.dst) else {
        return;
    };
    let m = &p[h.hlen..h.total_len];
    if p[7] != 255
        || !crate::engine::is_link_local(h.src)
        || m.len() < 16
        || m[1] != 0
        || crate::engine::csum6(src, dst, crate::engine::IPPROTO_ICMPV6, m) != 0
    {
        return;
    }
    let lifetime_s = u16::from_be_bytes([m[6], m[7]]);
    let mut lla = None;
    let mut prefixes = Vec::new();
    let mut o = &m[16..];
    while o.len() >= 2 {
        let len = usize::from(o[1]) * 8;
        if len == 0 || len > o.len() {
            // `nd6_options`: a malformed option spoils the whole message.
            return;
        }
        match o[0] {
            1 if len >= 8 => lla = <[u8; 6]>::try_from(&o[2..8]).ok(),
            3 if len == 32 => prefixes.push((
                o[2],
                o[3],
                u32::from_be_bytes([o[4], o[5], o[6], o[7]]),
                u32::from_be_bytes([o[8], o[9], o[10], o[11]]),
                Ipv6Addr::from(<[u8; 16]>::try_from(&o[16..32]).unwrap_or_default()),
            )),
            _ => {}
        }
        o = &o[len..];
    }
    if let Some(mac) = lla.filter(|m| m[0] & 1 == 0) {
        let now_s = e.uptime_s();
        e.nd_learn(i, src, mac, NdState::Stale, now_s);
    }
    if let Some(n) = e.nd.get_mut(&(i, src)) {
        n.router = true;
    }
    let gw = IpAddr::V6(src);
    let any = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    if lifetime_s > 0 {
        let expire = now_ms(e) + u64::from(lifetime_s) * 1000;
        if let Some(r) = e.nd6.routers.iter_mut().find(|r| (r.0, r.1) == (i, src)) {
            r.2 = expire;
        } else if e.nd6.routers.len() < ROUTERS_MAX {
            e.nd6.routers.push((i, src, expire));
        }
        if e.routes.lookup(any).is_none_or(|r| r.prefix != 0) {
            let _ = e.routes.add(crate::route::Route {
                dst: any,
                prefix: 0,
                gateway: Some(gw),
                ifindex: i,
                flags: crate::route::RTF_UP | crate::route::RTF_GATEWAY,
            });
        }
    } else {
        router_gone(e, i, src);
    }
    let Some(ifid) = e.ifp(i).and_then(|f| {
        f.addrs.iter().find_map(|a| match a.addr {
            IpAddr::V6(v) if crate::engine::is_link_local(a.addr) => Some(v),
            _ => None,
        })
    }) else {
        return;
    };
    for (plen, flags, valid, preferred, prefix) in prefixes {
        // `prelist_update`: autonomous (0x40), 64 bits, a lifetime, not link-local.
        if flags & 0x40 == 0
            || plen != 64
            || valid == 0
            || preferred > valid
            || crate::engine::is_link_local(IpAddr::V6(prefix))
            || prefix.is_multicast()
        {
            continue;
        }
        let mut b = prefix.octets();
        b[8..].copy_from_slice(&ifid.octets()[8..]);
        let a6 = Ipv6Addr::from(b);
        let a = IpAddr::V6(a6);
        let now = now_ms(e);
        let life = |s: u32| (s != u32::MAX).then(|| now + u64::from(s) * 1000);
        if let Some(k) = e
            .nd6
            .autoconf
            .iter()
            .position(|x| (x.ifindex, x.addr) == (i, a6))
        {
            // `prelist_update` on an address we have: the valid lifetime by RFC 4862's
            // two-hour rule, the preferred one as told.
            let x = &mut e.nd6.autoconf[k];
            let left = x.valid_ms.map(|t| t.saturating_sub(now));
            let new = life(valid).map(|t| t - now);
            let longer = match (new, left) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(n), Some(l)) => n > l,
            };
            if new.is_none_or(|n| n > TWO_HOURS_MS) || longer {
                x.valid_ms = life(valid);
            } else if left.is_none_or(|l| l > TWO_HOURS_MS) {
                x.valid_ms = Some(now + TWO_HOURS_MS);
            }
            x.preferred_ms = life(preferred);
            if preferred > 0 {
                if let Some(y) = e
                    .ifp_mut(i)
                    .and_then(|f| f.addrs.iter_mut().find(|y| y.addr == a))
                {
                    y.flags6 &= !IN6_IFF_DEPRECATED;
                }
            }
            continue;
        }
        if e.is_local(a) || e.nd6.autoconf.len() >= 8 || e.add_addr(i, a, 64, None).is_err() {
            continue;
        }
        if let Some(x) = e
            .ifp_mut(i)
            .and_then(|f| f.addrs.iter_mut().find(|x| x.addr == a))
        {
            x.flags6 |= IN6_IFF_AUTOCONF;
        }
        e.nd6.autoconf.push(Autoconf {
            ifindex: i,
            addr: a6,
            valid_ms: life(valid),
            preferred_ms: life(preferred),
        });
    }
}

/// Milliseconds since the stack started.
pub fn now_ms(e: &Engine) -> u64 {
    e.now().total_millis() as u64
}

/// `ND_IFINFO(ifp)->reachable`: `ND_COMPUTE_RTIME(REACHABLE_TIME)`, between 0.5 and 1.5
/// times 30 s (in whole seconds, as NetBSD keeps it), once per interface.
pub fn reachable_ms(e: &mut Engine, i: u32) -> u64 {
    if let Some(r) = e.nd6.reachable_ms.get(&i) {
        return *r;
    }
    let x = REACHABLE_TIME_MS >> 10;
    let r = e.random() as u32;
    let s = (512 * x + (u64::from(r) & (1024 * x))) / 1000;
    let ms = s * 1000;
    if e.nd6.reachable_ms.len() < crate::ifnet::IFS_MAX * 4 {
        e.nd6.reachable_ms.insert(i, ms);
    }
    ms
}

/// Forgets interface `i`'s parameters and routers.
pub fn if_detached(e: &mut Engine, i: u32) {
    e.nd6.reachable_ms.remove(&i);
    e.nd6.routers.retain(|r| r.0 != i);
    e.nd6.autoconf.retain(|a| a.ifindex != i);
}

/// Autoconf addresses whose preferred lifetime ran out are deprecated, whose valid
/// lifetime ran out go (`nd6_timer`: `IFA6_IS_DEPRECATED`, `IFA6_IS_INVALID`).
fn autoconf_timer(e: &mut Engine, now: u64) {
    let mut gone = Vec::new();
    let mut deprecated = Vec::new();
    for a in &e.nd6.autoconf {
        if a.valid_ms.is_some_and(|t| t <= now) {
            gone.push((a.ifindex, a.addr));
        } else if a.preferred_ms.is_some_and(|t| t <= now) {
            deprecated.push((a.ifindex, a.addr));
        }
    }
    for (i, a) in deprecated {
        if let Some(x) = e
            .ifp_mut(i)
            .and_then(|f| f.addrs.iter_mut().find(|x| x.addr == IpAddr::V6(a)))
        {
            x.flags6 |= IN6_IFF_DEPRECATED;
        }
    }
    for (i, a) in gone {
        let _ = e.del_addr(i, IpAddr::V6(a));
    }
    // Entries whose address is gone (by its lifetime or by SIOCDIFADDR_IN6).
    let ifs = &e.ifs;
    e.nd6.autoconf.retain(|a| {
        ifs.iter()
            .any(|f| f.index == a.ifindex && f.has_addr(IpAddr::V6(a.addr)))
    });
}

/// The default route through router `gw` on `i` goes (`defrtrlist_del`).
fn router_gone(e: &mut Engine, i: u32, gw: Ipv6Addr) {
    let any = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    let g = IpAddr::V6(gw);
    e.routes
        .retain(|r| !(r.prefix == 0 && r.dst == any && r.gateway == Some(g) && r.ifindex == i));
    e.nd6.routers.retain(|r| (r.0, r.1) != (i, gw));
}

/// Routers whose lifetime ran out (`nd6_timer`'s walk of the default router list).
fn routers_timer(e: &mut Engine, now: u64) {
    let gone: Vec<(u32, Ipv6Addr)> = e
        .nd6
        .routers
        .iter()
        .filter(|r| r.2 <= now)
        .map(|r| (r.0, r.1))
        .collect();
    for (i, gw) in gone {
        router_gone(e, i, gw);
    }
}

/// Sets an entry's state and its deadline (`nd6_llinfo_settimer`) as the state asks.
pub fn set_state(e: &mut Engine, i: u32, a: Ipv6Addr, st: NdState) {
    let now = now_ms(e);
    let ms = match st {
        NdState::Reachable => reachable_ms(e, i),
        NdState::Stale => GCTIMER_MS,
        NdState::Delay => e.nd6.delay_s.max(0) as u64 * 1000,
        NdState::Incomplete | NdState::Probe => RETRANS_MS,
    };
    if let Some(n) = e.nd.get_mut(&(i, a)) {
        n.state = st;
        n.expire_ms = now + ms;
    }
}

/// `nd6_output` found a resolved entry: a STALE one goes to DELAY (`ln_asked` 0, the
/// first probe in `nd6_delay`).
pub fn used(e: &mut Engine, i: u32, a: Ipv6Addr) {
    if let Some(n) = e.nd.get_mut(&(i, a)) {
        if n.state == NdState::Stale {
            n.tries = 0;
            set_state(e, i, a, NdState::Delay);
        }
    }
}

/// What [`timer`] decided for one entry.
enum Act {
    /// A multicast solicitation (INCOMPLETE) with the held packet's source.
    Multi(Option<IpAddr>),
    /// A unicast probe to the cached address.
    Probe([u8; 6], Option<IpAddr>),
    /// Freed.
    Free,
}

/// `nd6_llinfo_timer` for every entry whose deadline passed.
pub fn timer(e: &mut Engine) {
    let now = now_ms(e);
    if !e.nd6.routers.is_empty() {
        routers_timer(e, now);
    }
    if !e.nd6.autoconf.is_empty() {
        autoconf_timer(e, now);
    }
    let (umax, mmax) = (e.nd6.umaxtries.max(0) as u32, e.nd6.mmaxtries.max(0) as u32);
    let due: Vec<(u32, Ipv6Addr)> =
        e.nd.iter()
            .filter(|(_, n)| n.expire_ms <= now)
            .map(|(k, _)| *k)
            .collect();
    for (i, a) in due {
        let Some(n) = e.nd.get_mut(&(i, a)) else {
            continue;
        };
        let hsrc = n
            .hold
            .as_deref()
            .and_then(crate::engine::ip_header)
            .map(|h| h.src);
        let act = match n.state {
            NdState::Incomplete if n.tries < mmax => {
                n.tries += 1;
                n.expire_ms = now + RETRANS_MS;
                Act::Multi(hsrc)
            }
            NdState::Incomplete => Act::Free,
            NdState::Reachable => {
                n.state = NdState::Stale;
                n.expire_ms = now + GCTIMER_MS;
                continue;
            }
            NdState::Stale => Act::Free,
            NdState::Delay => {
                n.state = NdState::Probe;
                n.tries = 1;
                n.expire_ms = now + RETRANS_MS;
                match n.mac {
                    Some(m) => Act::Probe(m, hsrc),
                    None => continue,
                }
            }
            NdState::Probe if n.tries < umax => {
                n.tries += 1;
                n.expire_ms = now + RETRANS_MS;
                match n.mac {
                    Some(m) => Act::Probe(m, hsrc),
                    None => continue,
                }
            }
            NdState::Probe => Act::Free,
        };
        match act {
            Act::Multi(src) => e.nd6_ns_output(i, a, src, None),
            Act::Probe(mac, src) => e.nd6_ns_output(i, a, src, Some(mac)),
            Act::Free => {
                if let Some(n) = e.nd.remove(&(i, a)) {
                    drop_hold(e, n);
                }
            }
        }
    }
}

/// A freed entry's held packet goes with it (NetBSD answers it with an ICMPv6 address
/// unreachable, which is the ICMP errors' business).
fn drop_hold(e: &mut Engine, n: NdEntry) {
    if n.hold.is_some() {
        e.stats.ip_dropped += 1;
    }
}

/// The state and seconds left that `SIOCGNBRINFO_IN6` reports for an entry.
pub fn info(e: &Engine, n: &NdEntry) -> (NdState, u64) {
    let left_ms = n.expire_ms.saturating_sub(now_ms(e));
    (n.state, left_ms.div_ceil(1000))
}

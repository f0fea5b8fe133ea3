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
}

impl Default for State {
    fn default() -> State {
        State {
            reachable_ms: HashMap::new(),
            delay_s: (DELAY_MS / 1000) as i32,
            umaxtries: UMAXTRIES as i32,
            mmaxtries: MMAXTRIES as i32,
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
    use kernel::sysctl::{Spec, CTLTYPE_INT};
    let _ = mib.register(&["net", "inet6"], Spec::node("icmp6", Some(58)));
    type Field = fn(&mut State) -> &mut i32;
    let knobs: [(&str, i32, Field); 3] = [
        ("nd6_delay", 8, |s| &mut s.delay_s),
        ("nd6_umaxtries", 9, |s| &mut s.umaxtries),
        ("nd6_mmaxtries", 10, |s| &mut s.mmaxtries),
    ];
    for (name, num, field) in knobs {
        let (s1, s2) = (st.clone(), st.clone());
        mib.register(
            &["net", "inet6", "icmp6"],
            Spec::func_rw(
                name,
                Some(num),
                CTLTYPE_INT,
                4,
                move |_| Ok((*field(&mut s1.lock().nd6)).to_le_bytes().to_vec()),
                move |_, v| {
                    let x = v
                        .get(..4)
                        .map(|b| i32::from_le_bytes(b.try_into().unwrap_or_default()))
                        .ok_or(kernel::Errno::EINVAL)?;
                    *field(&mut s2.lock().nd6) = x;
                    Ok(())
                },
            )
            .rw(),
        )?;
    }
    Ok(())
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

/// Forgets interface `i`'s parameters.
pub fn if_detached(e: &mut Engine, i: u32) {
    e.nd6.reachable_ms.remove(&i);
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

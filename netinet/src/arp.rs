//! IPv4 duplicate-address detection (RFC 5227 as NetBSD 7.99's `arp_dad_*`), the
//! gratuitous ARP an address sends when it is set (`arp_ifinit`), and the
//! `net.inet.arp.*` / `net.inet.ip.dad_count` knobs.
//!
//! NetBSD runs DAD for an IPv4 address only when its interface was up and running
//! before the address was set (`if_do_dad`): `ifconfig shmif0 inet 10.0.1.1` on a fresh
//! interface skips it and sends one gratuitous request (`who-has A tell A`); after
//! `ifconfig shmif0 up` the address is `tentative` while `dad_count` probes
//! (`who-has A tell 0.0.0.0`) go out, the first after a random [0, `PROBE_WAIT`) s, the
//! next [`PROBE_MIN`, `PROBE_MAX`) s apart; `ANNOUNCE_WAIT` s after the last one it is
//! ready and announced twice (`who-has A tell A`, `ANNOUNCE_INTERVAL` s apart). A
//! request or reply whose sender is the address, or a probe for it, while it is
//! tentative marks it `duplicated` (`arp_dad_duplicated`); a tentative or duplicated
//! address is not answered for.

use crate::engine::Engine;
use crate::ifnet::IfAddr;
use std::net::{IpAddr, Ipv4Addr};

/// `IN_IFF_TENTATIVE`.
pub const IN_IFF_TENTATIVE: u32 = 0x01;
/// `IN_IFF_DUPLICATED`.
pub const IN_IFF_DUPLICATED: u32 = 0x02;
/// `IN_IFF_DETACHED` (link down; shmif has no link state, so never set here).
pub const IN_IFF_DETACHED: u32 = 0x04;
/// `IN_IFF_NOTREADY` without `IN_IFF_TRYTENTATIVE` (only set inside `in_ifinit`).
pub const IN_IFF_NOTREADY: u32 = IN_IFF_TENTATIVE | IN_IFF_DUPLICATED;

/// `PROBE_WAIT` (s): the first probe goes out within it.
const PROBE_WAIT_MS: u64 = 1000;
/// `PROBE_MIN`, `PROBE_MAX` (s): the gap between probes.
const PROBE_MIN_MS: u64 = 1000;
const PROBE_MAX_MS: u64 = 2000;
/// `ANNOUNCE_WAIT` (s): after the last probe, before the address is ready.
const ANNOUNCE_WAIT_MS: u64 = 2000;
/// `ANNOUNCE_NUM`: announcements once ready.
const ANNOUNCE_NUM: u32 = 2;
/// `ANNOUNCE_INTERVAL` (s): between them.
const ANNOUNCE_INTERVAL_MS: u64 = 2000;
/// `PROBE_NUM`: `net.inet.ip.dad_count`'s default.
pub const PROBE_NUM: i32 = 3;
/// Most detections running at once (one per address; addresses are bounded anyway).
const DAD_MAX: usize = 64;

/// One detection in progress (`struct dadq`).
#[derive(Debug, Clone)]
pub struct Dad {
    /// Interface index.
    pub ifindex: u32,
    /// The address.
    pub addr: Ipv4Addr,
    /// Probes to send (`dad_count`, the knob when it started).
    count: u32,
    /// Probes sent (`dad_arp_ocount`).
    sent: u32,
    /// Announcements sent (`dad_arp_acount`).
    announced: u32,
    /// When the timer fires (ms of uptime).
    due_ms: u64,
}

/// The ARP knobs and detections of one kernel.
#[derive(Debug)]
pub struct ArpState {
    /// `net.inet.arp.keep` (`arpt_keep`, 1200 s): how long a resolved entry lives.
    pub keep_s: i32,
    /// `net.inet.arp.down` (`arpt_down`, 20 s): how long an unanswered entry is given
    /// up on.
    pub down_s: i32,
    /// `net.inet.arp.log_movements`, `log_permanent_modify`, `log_wrong_iface`,
    /// `log_unknown_network` (1 each), `debug` (0): kept and shown; we log nothing.
    pub log_knobs: [i32; 5],
    /// `net.inet.ip.dad_count` (`ip_dad_count`, 3): probes per detection; 0 skips it.
    pub dad_count: i32,
    /// Detections running.
    pub dad: Vec<Dad>,
    /// The second of uptime the cache was last pruned (`arptimer`, once a second).
    pruned_s: u64,
}

impl Default for ArpState {
    fn default() -> Self {
        ArpState {
            keep_s: 1200,
            down_s: 20,
            log_knobs: [1, 1, 1, 1, 0],
            dad_count: PROBE_NUM,
            dad: Vec::new(),
            pruned_s: 0,
        }
    }
}

/// What `in_arpinput`'s DAD check left to do with a packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Handled here (or dropped): nothing more.
    Done,
    /// Learn the sender and answer as usual.
    Continue,
}

/// An ARP packet for Ethernet and IPv4.
pub fn packet(op: u16, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sha);
    a.extend_from_slice(&spa.octets());
    a.extend_from_slice(&tha);
    a.extend_from_slice(&tpa.octets());
    a
}

/// Whether an address may be used and answered for (`IN_IFF_NOTREADY|IN_IFF_DETACHED`
/// clear).
pub fn ready4(a: &IfAddr) -> bool {
    a.flags6 & (IN_IFF_NOTREADY | IN_IFF_DETACHED) == 0
}

const ETHERTYPE_ARP: u16 = 0x0806;

impl Engine {
    fn now_ms_arp(&self) -> u64 {
        self.uptime_ms()
    }

    /// `arprequest`: a broadcast request from `spa` for `tpa`.
    fn arp_request_from(&mut self, i: u32, spa: Ipv4Addr, tpa: Ipv4Addr) {
        let Some(mac) = self.ifp(i).and_then(|f| f.mac) else {
            return;
        };
        let a = packet(1, mac, spa, [0; 6], tpa);
        self.ether_output(i, [0xff; 6], ETHERTYPE_ARP, &a);
    }

    /// `in_ifinit` → `arp_ifinit` / `arp_dad_start` for IPv4 address `a` just set on
    /// interface `i`: `was_running` is whether the interface was up and running before
    /// (`if_do_dad`), `is_new` whether the address was not there already (`hostIsNew`).
    /// Returns the address's `IN_IFF_*` flags.
    pub fn arp_addr_added(&mut self, i: u32, a: Ipv4Addr, was_running: bool, is_new: bool) -> u32 {
        self.arp_dad_stop(i, a);
        if a.is_unspecified() || self.ifp(i).and_then(|f| f.mac).is_none() {
            return 0;
        }
        if !(is_new && was_running) {
            // `arp_ifinit`: a gratuitous request for a ready address.
            self.arp_request_from(i, a, a);
            return 0;
        }
        if self.arp4.dad_count <= 0 {
            // `arp_dad_start` with `ip_dad_count` 0: ready and announced once.
            self.arp_request_from(i, a, a);
            return 0;
        }
        if self.arp4.dad.len() >= DAD_MAX {
            return 0;
        }
        let wait = self.random() % PROBE_WAIT_MS;
        let due_ms = self.now_ms_arp() + wait;
        self.arp4.dad.push(Dad {
            ifindex: i,
            addr: a,
            count: self.arp4.dad_count as u32,
            sent: 0,
            announced: 0,
            due_ms,
        });
        IN_IFF_TENTATIVE
    }

    /// `arp_dad_stop`: the address went (or is set again).
    pub fn arp_dad_stop(&mut self, i: u32, a: Ipv4Addr) {
        self.arp4.dad.retain(|d| (d.ifindex, d.addr) != (i, a));
    }

    fn addr4_mut(&mut self, i: u32, a: Ipv4Addr) -> Option<&mut IfAddr> {
        self.ifp_mut(i)
            .and_then(|f| f.addrs.iter_mut().find(|x| x.addr == IpAddr::V4(a)))
    }

    /// `arptimer`: resolved entries older than `net.inet.arp.keep` leave the cache (arp(8)
    /// lists them no more), checked once a second; static ones stay.
    fn arp_expire(&mut self) {
        let now_s = self.uptime_s();
        if now_s == self.arp4.pruned_s {
            return;
        }
        self.arp4.pruned_s = now_s;
        let keep_s = self.arp4.keep_s.max(0) as u64;
        self.arp
            .retain(|_, e| e.permanent || e.mac.is_none() || now_s.saturating_sub(e.at_s) < keep_s);
    }

    /// `arp_dad_timer`: probes, then ready, then announcements (and [`Self::arp_expire`]).
    pub fn arp_dad_timer(&mut self) {
        self.arp_expire();
        if self.arp4.dad.is_empty() {
            return;
        }
        let now = self.now_ms_arp();
        let due: Vec<Dad> = self
            .arp4
            .dad
            .iter()
            .filter(|d| d.due_ms <= now)
            .cloned()
            .collect();
        for mut d in due {
            let (i, a) = (d.ifindex, d.addr);
            self.arp_dad_stop(i, a);
            let Some(flags) = self.addr4_mut(i, a).map(|x| x.flags6) else {
                continue;
            };
            if flags & IN_IFF_DUPLICATED != 0 {
                continue;
            }
            if d.sent < d.count {
                // `arp_dad_output`: a probe from 0.0.0.0 (only when up and running).
                let up = self
                    .ifp(i)
                    .is_some_and(|f| f.flags & crate::ifnet::IFF_UP != 0);
                if up {
                    self.arp_request_from(i, Ipv4Addr::UNSPECIFIED, a);
                }
                d.sent += 1;
                d.due_ms = now
                    + if d.sent < d.count {
                        PROBE_MIN_MS + self.random() % (PROBE_MAX_MS - PROBE_MIN_MS)
                    } else {
                        ANNOUNCE_WAIT_MS
                    };
                self.arp4.dad.push(d);
                continue;
            }
            if d.announced == 0 {
                // Done: no duplicate.
                if let Some(x) = self.addr4_mut(i, a) {
                    x.flags6 &= !IN_IFF_TENTATIVE;
                }
            }
            self.arp_request_from(i, a, a);
            d.announced += 1;
            if d.announced < ANNOUNCE_NUM {
                d.due_ms = now + ANNOUNCE_INTERVAL_MS;
                self.arp4.dad.push(d);
            }
        }
    }

    /// `in_arpinput`'s DAD check (RFC 5227 2.1.1) and the packets it answers itself: a
    /// sender claiming one of our addresses, or a probe for one, makes a tentative one
    /// duplicated; nothing is answered for an address not ready; a probe (sender
    /// 0.0.0.0) is answered without learning; a request from our own address is
    /// defended with a reply.
    pub fn arp_dad_input(
        &mut self,
        i: u32,
        op: u16,
        sha: [u8; 6],
        spa: Ipv4Addr,
        tpa: Ipv4Addr,
    ) -> Verdict {
        let Some(f) = self.ifp(i) else {
            return Verdict::Done;
        };
        let mac = f.mac.unwrap_or_default();
        let mine = |x: Ipv4Addr| {
            f.addrs
                .iter()
                .find(|y| y.addr == IpAddr::V4(x))
                .map(|y| y.flags6)
        };
        // `myaddr`: the target if it is ours, else the sender if it is.
        let claimed = if spa.is_unspecified() {
            mine(tpa).map(|fl| (tpa, fl))
        } else {
            mine(spa).map(|fl| (spa, fl))
        };
        if let Some((a, flags)) = claimed {
            if flags & IN_IFF_TENTATIVE != 0
                && self.arp4.dad.iter().any(|d| (d.ifindex, d.addr) == (i, a))
            {
                // `arp_dad_duplicated`.
                self.arp_dad_stop(i, a);
                if let Some(x) = self.addr4_mut(i, a) {
                    x.flags6 = (x.flags6 & !IN_IFF_TENTATIVE) | IN_IFF_DUPLICATED;
                }
                return Verdict::Done;
            }
            if flags & (IN_IFF_NOTREADY | IN_IFF_DETACHED) != 0 {
                return Verdict::Done;
            }
        }
        if tpa.is_unspecified() {
            return Verdict::Done;
        }
        let target_ready = self
            .ifp(i)
            .and_then(|f| f.addrs.iter().find(|y| y.addr == IpAddr::V4(tpa)))
            .is_some_and(ready4);
        if spa.is_unspecified() {
            // A probe for a ready address of ours: answered, nothing learnt.
            if op == 1 && target_ready {
                let r = packet(2, mac, tpa, sha, spa);
                self.ether_output(i, sha, ETHERTYPE_ARP, &r);
            }
            return Verdict::Done;
        }
        if claimed.is_some() {
            // "duplicate IP address": defend it (a request gets our reply), learn nothing.
            if op == 1 {
                let r = packet(2, mac, spa, sha, spa);
                self.ether_output(i, sha, ETHERTYPE_ARP, &r);
            }
            return Verdict::Done;
        }
        Verdict::Continue
    }
}

/// Registers `net.inet.arp.{keep,down,log_movements,log_permanent_modify,
/// log_wrong_iface,log_unknown_network,debug}` and `net.inet.ip.dad_count` (all int,
/// read-write, NetBSD 7.99's names and defaults; `net.inet.arp.stats` is not kept).
pub fn register_sysctl(
    k: &kernel::Kernel,
    st: &std::sync::Arc<crate::Stack>,
) -> kernel::Result<()> {
    use kernel::sysctl::Spec;
    type Get = fn(&ArpState) -> i32;
    type Set = fn(&mut ArpState, i32);
    let mib = k.sysctl();
    let knob = |path: &[&str], name: &str, num: Option<i32>, get: Get, set: Set| {
        crate::sysctl::int_knob(
            mib,
            st,
            path,
            name,
            num,
            move |e| get(&e.arp4),
            move |e, v| {
                set(&mut e.arp4, v);
                Ok(())
            },
        )
    };
    knob(
        &["net", "inet", "ip"],
        "dad_count",
        Some(25),
        |s| s.dad_count,
        |s, v| s.dad_count = v,
    )?;
    mib.register(&["net", "inet"], Spec::node("arp", None))?;
    let arp = &["net", "inet", "arp"][..];
    knob(arp, "keep", None, |s| s.keep_s, |s, v| s.keep_s = v)?;
    knob(arp, "down", None, |s| s.down_s, |s, v| s.down_s = v)?;
    knob(
        arp,
        "log_movements",
        None,
        |s| s.log_knobs[0],
        |s, v| s.log_knobs[0] = v,
    )?;
    knob(
        arp,
        "log_permanent_modify",
        None,
        |s| s.log_knobs[1],
        |s, v| s.log_knobs[1] = v,
    )?;
    knob(
        arp,
        "log_wrong_iface",
        None,
        |s| s.log_knobs[2],
        |s, v| s.log_knobs[2] = v,
    )?;
    knob(
        arp,
        "log_unknown_network",
        None,
        |s| s.log_knobs[3],
        |s, v| s.log_knobs[3] = v,
    )?;
    knob(
        arp,
        "debug",
        None,
        |s| s.log_knobs[4],
        |s, v| s.log_knobs[4] = v,
    )?;
    Ok(())
}

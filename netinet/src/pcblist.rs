//! `net.inet.{tcp,udp,raw}.pcblist` and `net.inet6.{tcp6,udp6,raw6}.pcblist`
//! (`sysctl_inpcblist` with `PF_INET` or `PF_INET6`, what `netstat -an` reads): the
//! engine's pcb table as `struct kinfo_pcb` records, with NetBSD's handler rules from
//! `net::pcblist` (four name components, size probe with `PCB_SLOP`, whole records). Each
//! family's leaves list only its own sockets (`inph_af`): an AF_INET6 socket that talks
//! IPv4 through a mapped address is in the inet6 lists, with the mapped address.
//!
//! The table is walked under the engine's lock, which is released before anything is
//! copied. Fields NetBSD takes from its own structures are derived from ours:
//! `ki_tstate` from smoltcp's TCP state, `ki_prstate` (`INP_BOUND`, `INP_CONNECTED`) and
//! `ki_sostate` from what the pcb has (a raw pcb's `ki_prstate` is 0 and it has no
//! `ki_dst`: NetBSD never moves its `inp_state`), a connected UDP (or raw IPv6) socket's
//! source address as its connect chooses it, `INP_ANONPORT` for a port of the anonymous range;
//! `ki_tflags` (NetBSD's `TF_*` options) is 0, and a UDP receive queue counts one
//! sender's address (16 bytes, 28 for AF_INET6, as `sbappendaddr`) for the datagrams
//! queued, not one each. AF_INET6 records: `ki_pflags` has `IN6P_ANONPORT` (and a raw
//! socket's `IN6P_PKTINFO`/`IN6P_HOPLIMIT`) and `IN6P_IPV6_V6ONLY` as the socket has it
//! (NetBSD's default `net.inet6.ip6.v6only=1`); no flow label
//! is kept (NetBSD's connect picks a random one, shown in `sin6_flowinfo`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Weak};

use kernel::sysctl::{ArgsCall, Env, Spec, CTLTYPE_STRUCT};
use kernel::{Errno, Kernel, Result};
use net::pcblist::{kaddr, serve, Pcb as Kinfo, PCBLIST_ARGS};
use smoltcp::socket::tcp;

use crate::engine::Engine;
use crate::inet::{sockaddr, AF_INET, AF_INET6};
use crate::sock::{Pcb, TcpState};
use crate::Stack;

/// `IPPROTO_TCP`, `IPPROTO_UDP`, `IPPROTO_RAW` (the `net.inet` nodes of the leaves).
const TCP: i32 = 6;
const UDP: i32 = 17;
const RAW: i32 = 255;
/// `INP_BOUND`, `INP_CONNECTED` (`inp_state`).
const INP_BOUND: u32 = 1;
const INP_CONNECTED: u32 = 2;
/// `INP_ANONPORT`.
const INP_ANONPORT: u32 = 0x40;
/// `IN6P_PKTINFO`, `IN6P_HOPLIMIT`, `IN6P_ANONPORT` (`in6p_flags`).
const IN6P_PKTINFO: u32 = 0x1_0000;
const IN6P_HOPLIMIT: u32 = 0x2_0000;
const IN6P_ANONPORT: u32 = 0x400_0000;
const IN6P_IPV6_V6ONLY: u32 = 0x8000;
/// `SS_ISCONNECTED`, `SS_ISCONNECTING`, `SS_CANTRCVMORE`.
const SS_ISCONNECTED: u32 = 0x2;
const SS_ISCONNECTING: u32 = 0x4;
const SS_CANTRCVMORE: u32 = 0x20;
/// First port of the anonymous range (`net.inet.ip.anonportmin`).
const ANON_MIN: u16 = 49152;
/// `sizeof(struct sockaddr_in)`, `sizeof(struct sockaddr_in6)`: what `sbappendaddr`
/// counts for a sender.
const SIN_LEN: u64 = 16;
const SIN6_LEN: u64 = 28;

/// Registers the three leaves (with `net.inet.raw`) for AF_INET.
pub fn register(k: &Kernel, st: &Arc<Stack>) -> Result<()> {
    k.sysctl()
        .register(&["net", "inet"], Spec::node("raw", Some(RAW)))?;
    leaves(k, st, false, ["tcp", "udp", "raw"])
}

/// Registers `net.inet6.{tcp6,udp6,raw6}` and their leaves for AF_INET6 (NetBSD's
/// `tcp6`, `udp6` and `raw6` setup, each with `sysctl_inpcblist`); `net.inet6` is there.
pub fn register6(k: &Kernel, st: &Arc<Stack>) -> Result<()> {
    let mib = k.sysctl();
    for (node, proto) in [("tcp6", TCP), ("udp6", UDP), ("raw6", RAW)] {
        mib.register(&["net", "inet6"], Spec::node(node, Some(proto)))?;
    }
    leaves(k, st, true, ["tcp6", "udp6", "raw6"])
}

/// The `pcblist` leaves under the family's TCP, UDP and raw nodes.
fn leaves(k: &Kernel, st: &Arc<Stack>, v6: bool, nodes: [&str; 3]) -> Result<()> {
    let mib = k.sysctl();
    let fam = if v6 { "inet6" } else { "inet" };
    for (node, proto) in nodes.into_iter().zip([TCP, UDP, RAW]) {
        let weak: Weak<Stack> = Arc::downgrade(st);
        let list = move |e: &Env<'_>, call: &ArgsCall<'_>| {
            let st = weak.upgrade().ok_or(Errno::ENOENT)?;
            let pcbs = pcbs(&mut st.lock(), proto, v6);
            serve_inet(call, e.oldlen, &pcbs)
        };
        let leaf = Spec::func_args("pcblist", None, CTLTYPE_STRUCT, 0, PCBLIST_ARGS, list);
        mib.register(&["net", fam, node], leaf)?;
    }
    Ok(())
}

/// `sysctl_inpcblist` checks the count of components first: `CTL_QUERY` below the leaf
/// is `EINVAL` here (`ENOTDIR` in `sysctl_unpcblist`).
fn serve_inet(call: &ArgsCall<'_>, oldlen: u64, pcbs: &[Kinfo]) -> Result<kernel::sysctl::ArgsOut> {
    if call.args.len() != PCBLIST_ARGS {
        return Err(Errno::EINVAL);
    }
    serve(call, oldlen, pcbs)
}

fn tstate(s: tcp::State) -> i32 {
    use tcp::State::*;
    match s {
        Closed => 0,
        Listen => 1,
        SynSent => 2,
        SynReceived => 3,
        Established => 4,
        CloseWait => 5,
        FinWait1 => 6,
        Closing => 7,
        LastAck => 8,
        FinWait2 => 9,
        TimeWait => 10,
    }
}

/// A record's `sockaddr_in` (`sockaddr_in6` for `v6`, an IPv4 address mapped).
fn sin(v6: bool, a: Option<IpAddr>, port: u16) -> Vec<u8> {
    let a = match (v6, a) {
        (false, a) => a.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        (true, Some(IpAddr::V4(v))) => IpAddr::V6(v.to_ipv6_mapped()),
        (true, a) => a.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
    };
    sockaddr(a, port)
}

/// The pcbs of family `v6` and protocol node `proto`, newest first.
fn pcbs(e: &mut Engine, proto: i32, v6: bool) -> Vec<Kinfo> {
    let mut ids: Vec<u32> = e.pcbs.keys().copied().collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.into_iter()
        .filter_map(|id| record(e, id, proto, v6))
        .collect()
}

fn record(e: &mut Engine, id: u32, proto: i32, v6: bool) -> Option<Kinfo> {
    let n = u64::from(id) + 1;
    let mut k = Kinfo {
        pcbaddr: kaddr(n, 0),
        sockaddr: kaddr(n, 1),
        family: if v6 { AF_INET6 } else { AF_INET } as u32,
        ..Kinfo::default()
    };
    let anon = |p: u16| match (p >= ANON_MIN, v6) {
        (false, _) => 0,
        (true, false) => INP_ANONPORT,
        (true, true) => IN6P_ANONPORT,
    };
    let addr_len = if v6 { SIN6_LEN } else { SIN_LEN };
    let mut raw_flags = 0;
    let (local, remote) = match (e.pcbs.get(&id)?, proto) {
        (Pcb::Tcp(t), TCP) if t.v6 == v6 => {
            k.ty = 1;
            k.protocol = TCP as u32;
            k.ppcbaddr = kaddr(n, 3);
            let (mut local, rd_shut) = (t.local, t.rd_shut);
            let mut remote = None;
            match &t.state {
                TcpState::Fresh => {}
                TcpState::Listen(_) => k.tstate = 1,
                TcpState::Conn(h) => {
                    let s = e.tcp(*h);
                    k.tstate = tstate(s.state());
                    k.rcvq = s.recv_queue() as u64;
                    k.sndq = s.send_queue() as u64;
                    if let Some(ep) = s.local_endpoint() {
                        local = Some((Some(ep.addr.into()), ep.port));
                    }
                    remote = s
                        .remote_endpoint()
                        .map(|ep| (IpAddr::from(ep.addr), ep.port));
                    k.sostate = match s.state() {
                        tcp::State::SynSent | tcp::State::SynReceived => SS_ISCONNECTING,
                        tcp::State::Closed | tcp::State::TimeWait => 0,
                        _ => SS_ISCONNECTED,
                    };
                }
            }
            if rd_shut {
                k.sostate |= SS_CANTRCVMORE;
            }
            (local, remote)
        }
        (Pcb::Udp(u), UDP) if u.v6 == v6 => {
            k.ty = 2;
            k.protocol = UDP as u32;
            let (mut local, remote, h) = (u.local, u.remote, u.h);
            // A connected socket has its source address (`in_pcbconnect` sets `inp_laddr`).
            if let (Some((None, port)), Some((ra, _))) = (local, remote) {
                local = Some((e.select_source(ra).ok(), port));
            }
            let s = e.udp(h);
            let q = s.recv_queue() as u64;
            k.rcvq = if q > 0 { q + addr_len } else { 0 };
            k.sndq = s.send_queue() as u64;
            (local, remote)
        }
        (Pcb::Raw(r), RAW) if r.v6 == v6 => {
            k.ty = 3;
            k.protocol = u32::from(r.proto);
            k.rcvq = r.q_bytes as u64 + addr_len * r.q.len() as u64;
            if v6 && r.recvpktinfo {
                raw_flags |= IN6P_PKTINFO;
            }
            if v6 && r.recvhoplimit {
                raw_flags |= IN6P_HOPLIMIT;
            }
            let (mut local, remote) = (r.local, r.remote);
            // `rip6_connect` sets the source address its connect chooses (`rip_connect`
            // only the peer's).
            if let (true, None, Some(ra)) = (v6, local, remote) {
                local = e.select_source(ra).ok();
            }
            (local.map(|a| (Some(a), 0)), remote.map(|a| (a, 0)))
        }
        _ => return None,
    };
    let is_raw = k.ty == 3;
    // A raw pcb's `inp_state` stays `INP_ATTACHED` (0) whatever its bind and connect do,
    // so `sysctl_inpcblist` shows no peer for it.
    k.prstate = match (&local, &remote) {
        _ if is_raw => 0,
        (_, Some(_)) => INP_CONNECTED,
        (Some(_), None) => INP_BOUND,
        (None, None) => 0,
    };
    if remote.is_some() && k.ty != 1 {
        k.sostate |= SS_ISCONNECTED;
    }
    let (la, lp) = local.unwrap_or((None, 0));
    k.pflags = if is_raw { raw_flags } else { anon(lp) };
    if v6 && crate::sock::pcb_v6only(e, id) {
        k.pflags |= IN6P_IPV6_V6ONLY;
    }
    k.src = sin(v6, la, lp);
    if let (Some((ra, rp)), false) = (remote, is_raw) {
        k.dst = sin(v6, Some(ra), rp);
    }
    Some(k)
}

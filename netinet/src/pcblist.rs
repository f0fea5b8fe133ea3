//! `net.inet.{tcp,udp,raw}.pcblist` (`sysctl_inpcblist`, what `netstat -an` reads): the
//! engine's pcb table as `struct kinfo_pcb` records, with NetBSD's handler rules from
//! `net::pcblist` (four name components, size probe with `PCB_SLOP`, whole records).
//!
//! The table is walked under the engine's lock, which is released before anything is
//! copied. Fields NetBSD takes from its own structures are derived from ours:
//! `ki_tstate` from smoltcp's TCP state, `ki_prstate` (`INP_BOUND`, `INP_CONNECTED`) and
//! `ki_sostate` from what the pcb has, a connected UDP socket's source address as its
//! connect chooses it, `INP_ANONPORT` for a port of the anonymous range;
//! `ki_tflags` (NetBSD's `TF_*` options) is 0, and a UDP receive queue counts one
//! sender's address (16 bytes, as `sbappendaddr`) for the datagrams queued, not one each.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Weak};

use kernel::sysctl::{ArgsCall, Env, Spec, CTLTYPE_STRUCT};
use kernel::{Errno, Kernel, Result};
use net::pcblist::{kaddr, serve, Pcb as Kinfo, PCBLIST_ARGS};
use smoltcp::socket::tcp;

use crate::engine::Engine;
use crate::inet::{sockaddr, AF_INET};
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
/// `SS_ISCONNECTED`, `SS_ISCONNECTING`, `SS_CANTRCVMORE`.
const SS_ISCONNECTED: u32 = 0x2;
const SS_ISCONNECTING: u32 = 0x4;
const SS_CANTRCVMORE: u32 = 0x20;
/// First port of the anonymous range (`net.inet.ip.anonportmin`).
const ANON_MIN: u16 = 49152;
/// `sizeof(struct sockaddr_in)`: what `sbappendaddr` counts for a sender.
const SIN_LEN: u64 = 16;

/// Registers the three leaves (with `net.inet.raw`) for AF_INET.
pub fn register(k: &Kernel, st: &Arc<Stack>) -> Result<()> {
    let mib = k.sysctl();
    mib.register(&["net", "inet"], Spec::node("raw", Some(RAW)))?;
    for (node, proto) in [("tcp", TCP), ("udp", UDP), ("raw", RAW)] {
        let weak: Weak<Stack> = Arc::downgrade(st);
        let list = move |e: &Env<'_>, call: &ArgsCall<'_>| {
            let st = weak.upgrade().ok_or(Errno::ENOENT)?;
            let pcbs = pcbs(&mut st.lock(), proto);
            serve_inet(call, e.oldlen, &pcbs)
        };
        let leaf = Spec::func_args("pcblist", None, CTLTYPE_STRUCT, 0, PCBLIST_ARGS, list);
        mib.register(&["net", "inet", node], leaf)?;
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

fn sin(a: Option<IpAddr>, port: u16) -> Vec<u8> {
    sockaddr(a.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port)
}

/// The AF_INET pcbs of protocol node `proto`, newest first.
fn pcbs(e: &mut Engine, proto: i32) -> Vec<Kinfo> {
    let mut ids: Vec<u32> = e.pcbs.keys().copied().collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.into_iter()
        .filter_map(|id| record(e, id, proto))
        .collect()
}

fn record(e: &mut Engine, id: u32, proto: i32) -> Option<Kinfo> {
    let n = u64::from(id) + 1;
    let mut k = Kinfo {
        pcbaddr: kaddr(n, 0),
        sockaddr: kaddr(n, 1),
        family: AF_INET as u32,
        ..Kinfo::default()
    };
    let anon = |p: u16| if p >= ANON_MIN { INP_ANONPORT } else { 0 };
    let (local, remote) = match (e.pcbs.get(&id)?, proto) {
        (Pcb::Tcp(t), TCP) if !t.v6 => {
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
        (Pcb::Udp(u), UDP) if !u.v6 => {
            k.ty = 2;
            k.protocol = UDP as u32;
            let (mut local, remote, h) = (u.local, u.remote, u.h);
            // A connected socket has its source address (`in_pcbconnect` sets `inp_laddr`).
            if let (Some((None, port)), Some((ra, _))) = (local, remote) {
                local = Some((e.select_source(ra).ok(), port));
            }
            let s = e.udp(h);
            let q = s.recv_queue() as u64;
            k.rcvq = if q > 0 { q + SIN_LEN } else { 0 };
            k.sndq = s.send_queue() as u64;
            (local, remote)
        }
        (Pcb::Raw(r), RAW) if !r.v6 => {
            k.ty = 3;
            k.protocol = u32::from(r.proto);
            k.rcvq = r.q_bytes as u64 + SIN_LEN * r.q.len() as u64;
            (r.local.map(|a| (Some(a), 0)), r.remote.map(|a| (a, 0)))
        }
        _ => return None,
    };
    let is_raw = k.ty == 3;
    k.prstate = match (&local, &remote) {
        (_, Some(_)) => INP_CONNECTED,
        (Some(_), None) => INP_BOUND,
        (None, None) => 0,
    };
    if remote.is_some() && k.ty != 1 {
        k.sostate |= SS_ISCONNECTED;
    }
    let (la, lp) = local.unwrap_or((None, 0));
    if !is_raw {
        k.pflags = anon(lp);
    }
    k.src = sin(la, lp);
    if let Some((ra, rp)) = remote {
        k.dst = sin(Some(ra), rp);
    }
    Some(k)
}

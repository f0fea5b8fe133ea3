//! IPv6 packet options (RFC 3542, NetBSD's `ip6_setpktopts`/`ip6_setpktopt`): the sticky
//! `IPV6_PKTINFO` socket option (`struct in6_pktinfo`: a source address and an outgoing
//! interface) and the `IPV6_PKTINFO`/`IPV6_HOPLIMIT` control messages of a send. The
//! source and the interface they name come first in source selection (`in6_selectsrc`)
//! and in the choice of the interface (`in6_selectif`); that is what `ping6 -I IF` and
//! rtadvd need.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

use kernel::Errno;

use crate::engine::Engine;

/// `IPPROTO_IPV6`.
const IPPROTO_IPV6: i32 = 41;
/// `IPV6_PKTINFO`.
pub const IPV6_PKTINFO: i32 = 46;
/// `IPV6_HOPLIMIT`.
pub const IPV6_HOPLIMIT: i32 = 47;
/// `sizeof(struct in6_pktinfo)`.
const PKTINFO_LEN: usize = 20;
/// `CMSG_ALIGN(sizeof(struct cmsghdr))` on amd64.
const CMSG_HDR: usize = 16;

/// `struct in6_pktinfo`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PktInfo {
    /// `ipi6_addr` (unspecified: not chosen).
    pub addr: Option<Ipv6Addr>,
    /// `ipi6_ifindex` (0: not chosen).
    pub ifindex: u32,
}

/// What one send asks for (control messages over the sticky option).
#[derive(Clone, Copy, Debug, Default)]
pub struct Out {
    /// Source and interface.
    pub pktinfo: PktInfo,
    /// `IPV6_HOPLIMIT` (-1 or absent: the socket's).
    pub hlim: Option<u8>,
}

/// Sticky options by pcb id.
#[derive(Default)]
pub struct State {
    sticky: HashMap<u32, PktInfo>,
}

/// `ip6_setpktopt(IPV6_PKTINFO)`: parses and checks an `in6_pktinfo` (`EINVAL` for
/// another length, `ENXIO` for an interface that is not there); the address is taken as
/// it is and checked when a source is chosen (`in6_selectsrc`).
fn pktinfo(e: &Engine, v: &[u8]) -> Result<PktInfo, Errno> {
    if v.len() != PKTINFO_LEN {
        return Err(Errno::EINVAL);
    }
    let a = Ipv6Addr::from(<[u8; 16]>::try_from(&v[..16]).map_err(|_| Errno::EINVAL)?);
    let ifindex = u32::from_le_bytes(v[16..20].try_into().map_err(|_| Errno::EINVAL)?);
    if ifindex != 0 && e.ifp(ifindex).is_none() {
        return Err(Errno::ENXIO);
    }
    let addr = (!a.is_unspecified()).then_some(a);
    Ok(PktInfo { addr, ifindex })
}

/// `setsockopt(IPV6_PKTINFO)` on pcb `id`.
pub fn set_sticky(e: &mut Engine, id: u32, v: &[u8]) -> Result<(), Errno> {
    let p = pktinfo(e, v)?;
    if p == PktInfo::default() {
        e.ip6opts.sticky.remove(&id);
    } else {
        e.ip6opts.sticky.insert(id, p);
    }
    Ok(())
}

/// `getsockopt(IPV6_PKTINFO)`: the sticky value (zeroes when none).
pub fn get_sticky(e: &Engine, id: u32) -> Vec<u8> {
    let p = e.ip6opts.sticky.get(&id).copied().unwrap_or_default();
    let mut b = p.addr.unwrap_or(Ipv6Addr::UNSPECIFIED).octets().to_vec();
    b.extend_from_slice(&p.ifindex.to_le_bytes());
    b
}

/// A pcb goes.
pub fn pcb_detach(e: &mut Engine, id: u32) {
    e.ip6opts.sticky.remove(&id);
}

/// The options of one send: the control messages (`ip6_setpktopts`: every
/// `IPPROTO_IPV6` message checked, another level skipped, a malformed header `EINVAL`)
/// over the sticky `IPV6_PKTINFO`.
pub fn for_send(e: &Engine, id: u32, ctl: &[u8]) -> Result<Out, Errno> {
    let mut out = Out {
        pktinfo: e.ip6opts.sticky.get(&id).copied().unwrap_or_default(),
        hlim: None,
    };
    let mut o = 0;
    while o < ctl.len() {
        if ctl.len() - o < 12 {
            return Err(Errno::EINVAL);
        }
        let len = u32::from_le_bytes(ctl[o..o + 4].try_into().unwrap_or_default()) as usize;
        let level = i32::from_le_bytes(ctl[o + 4..o + 8].try_into().unwrap_or_default());
        let ty = i32::from_le_bytes(ctl[o + 8..o + 12].try_into().unwrap_or_default());
        if len < CMSG_HDR || len > ctl.len() - o {
            return Err(Errno::EINVAL);
        }
        let data = &ctl[o + CMSG_HDR..o + len];
        if level == IPPROTO_IPV6 {
            match ty {
                IPV6_PKTINFO => out.pktinfo = pktinfo(e, data)?,
                IPV6_HOPLIMIT => {
                    if data.len() != 4 {
                        return Err(Errno::EINVAL);
                    }
                    let h = i32::from_le_bytes(data.try_into().unwrap_or_default());
                    if !(-1..=255).contains(&h) {
                        return Err(Errno::EINVAL);
                    }
                    out.hlim = (h >= 0).then_some(h as u8);
                }
                _ => return Err(Errno::ENOPROTOOPT),
            }
        }
        o += net_align(len);
    }
    Ok(out)
}

fn net_align(n: usize) -> usize {
    (n + 7) & !7
}

/// `in6_selectsrc` with the pcb's sticky `IPV6_PKTINFO` first: its address, else an
/// address of its interface for `dst`, else the usual choice.
pub fn select_source(e: &Engine, id: u32, dst: IpAddr) -> Result<IpAddr, Errno> {
    match (dst, e.ip6opts.sticky.get(&id)) {
        (IpAddr::V6(_), Some(p)) => source_for(e, p, dst),
        _ => e.select_source(dst),
    }
}

/// The source for `dst` under `p`.
pub fn source_for(e: &Engine, p: &PktInfo, dst: IpAddr) -> Result<IpAddr, Errno> {
    if let Some(a) = p.addr {
        // `in6_selectsrc`: the address must be one of ours, ready.
        let ready = e
            .ifs
            .iter()
            .flat_map(|f| f.addrs.iter())
            .any(|x| x.addr == IpAddr::V6(a) && x.ready());
        return if ready {
            Ok(IpAddr::V6(a))
        } else {
            Err(Errno::EADDRNOTAVAIL)
        };
    }
    if p.ifindex != 0 {
        let f = e.ifp(p.ifindex).ok_or(Errno::ENXIO)?;
        let link_scope = match dst {
            IpAddr::V6(d) => {
                crate::engine::is_link_local(dst) || (d.is_multicast() && d.octets()[1] & 0xf <= 2)
            }
            IpAddr::V4(_) => false,
        };
        let a = if link_scope {
            f.addrs
                .iter()
                .find(|x| crate::engine::is_link_local(x.addr) && x.ready())
                .map(|x| x.addr)
        } else {
            f.src_addr(dst)
        };
        return a.ok_or(Errno::EADDRNOTAVAIL);
    }
    e.select_source(dst)
}

//! Interfaces (`struct ifnet`): `lo0` from boot, `shmifN` created by `SIOCIFCREATE` and
//! joined to a bus at `SIOCSLINKSTR`; their addresses, flags and MTU.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// `IFF_UP`.
pub const IFF_UP: u32 = 0x1;
/// `IFF_BROADCAST`.
pub const IFF_BROADCAST: u32 = 0x2;
/// `IFF_LOOPBACK`.
pub const IFF_LOOPBACK: u32 = 0x8;
/// `IFF_RUNNING`.
pub const IFF_RUNNING: u32 = 0x40;
/// `IFF_SIMPLEX`.
pub const IFF_SIMPLEX: u32 = 0x800;
/// `IFF_MULTICAST`.
pub const IFF_MULTICAST: u32 = 0x8000;
/// Flags a client may change with `SIOCSIFFLAGS` (`IFF_CANTCHANGE`'s complement).
pub const IFF_CHANGEABLE: u32 = IFF_UP | 0x1 << 2 | 0x80 | 0x100 | 0x200 | 0x1000 | 0x2000 | 0x4000;

/// `ETHERMTU`.
pub const ETHERMTU: u32 = 1500;
/// `LOMTU` (NetBSD's `if_loop.c`).
pub const LOMTU: u32 = 33624;

/// Most interfaces a kernel creates (`SIOCIFCREATE` beyond: `ENOBUFS`... NetBSD's limit is
/// memory; ours is a number).
pub const IFS_MAX: usize = 64;
/// Most addresses one interface holds.
pub const ADDRS_MAX: usize = 8;

/// One address of an interface (`struct ifaddr`/`in_ifaddr`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfAddr {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length of its network.
    pub prefix: u8,
    /// The broadcast address (IPv4 on broadcast interfaces) or the point-to-point peer.
    pub broadcast: Option<Ipv4Addr>,
    /// `IN6_IFF_*` (IPv6): [`IN6_IFF_TENTATIVE`] during duplicate-address detection,
    /// [`IN6_IFF_DUPLICATED`] when another node has it. IPv4: `IN_IFF_*` (`arp.rs`).
    pub flags6: u32,
}

/// `IN6_IFF_TENTATIVE`.
pub const IN6_IFF_TENTATIVE: u32 = 0x02;
/// `IN6_IFF_DUPLICATED`.
pub const IN6_IFF_DUPLICATED: u32 = 0x04;

impl IfAddr {
    /// Usable as a source and answered for: not tentative, not a duplicate
    /// (`IN6_IFF_NOTREADY`).
    pub fn ready(&self) -> bool {
        if self.addr.is_ipv4() {
            return crate::arp::ready4(self);
        }
        self.flags6 & (IN6_IFF_TENTATIVE | IN6_IFF_DUPLICATED) == 0
    }
}

/// The bus an shmif interface is on.
pub struct Port {
    /// The linkstr as the client gave it.
    pub linkstr: Vec<u8>,
    /// Resolved path.
    pub path: PathBuf,
    /// The mapped bus.
    pub bus: shmif::Bus,
    /// Our place on it.
    pub reader: shmif::Reader,
    /// Wakes the softint when the bus changes.
    pub watch: PortWatch,
}

/// The kernel's one inotify instance for all its buses (`Watch::add` per bus, counted:
/// two interfaces of one kernel on one bus share a watch descriptor).
pub struct Watches {
    /// The instance the softint polls.
    pub watch: shmif::Watch,
    refs: std::sync::Mutex<std::collections::HashMap<i32, usize>>,
}

impl Watches {
    /// An instance watching nothing.
    pub fn new() -> std::io::Result<std::sync::Arc<Watches>> {
        Ok(std::sync::Arc::new(Watches {
            watch: shmif::Watch::empty()?,
            refs: Default::default(),
        }))
    }

    /// Watches `path` for one more interface.
    pub fn add(self: &std::sync::Arc<Self>, path: &std::path::Path) -> std::io::Result<PortWatch> {
        let wd = self.watch.add(path)?;
        *self
            .refs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(wd)
            .or_insert(0) += 1;
        Ok(PortWatch {
            shared: self.clone(),
            wd,
        })
    }
}

/// One interface's share of [`Watches`]; the watch goes with the last interface on its bus.
pub struct PortWatch {
    shared: std::sync::Arc<Watches>,
    wd: i32,
}

impl PortWatch {
    /// Drains the pending events (of every bus: the rings say what is new).
    pub fn drain(&self) {
        let _ = self.shared.watch.wait(std::time::Duration::ZERO);
    }

    /// The descriptor the softint polls.
    pub fn as_raw_fd(&self) -> i32 {
        self.shared.watch.as_raw_fd()
    }
}

impl Drop for PortWatch {
    fn drop(&mut self) {
        let mut refs = self.shared.refs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = refs.get_mut(&self.wd) {
            *n -= 1;
            if *n == 0 {
                refs.remove(&self.wd);
                self.shared.watch.remove(self.wd);
            }
        }
    }
}

/// What is below an interface.
pub enum Link {
    /// `lo0`: packets come back in.
    Loop,
    /// `shmifN`: a bus, once `linkstr` is set.
    Shmif {
        /// The sender id in the bus's packet headers (NetBSD's `sc_uid`).
        sender: u64,
        /// The bus, after `SIOCSLINKSTR`.
        port: Option<Port>,
    },
    /// `virtN`: a host tap, opened at `SIOCIFCREATE` (`virtif.rs`).
    Virt {
        /// The tap.
        tap: crate::virtif::Tap,
    },
}

/// One interface.
pub struct Ifnet {
    /// `lo0`, `shmif0`, …
    pub name: String,
    /// `if_index` (1 is `lo0`).
    pub index: u32,
    /// `IFF_*`.
    pub flags: u32,
    /// `if_mtu`.
    pub mtu: u32,
    /// Ethernet address (shmif).
    pub mac: Option<[u8; 6]>,
    /// Addresses, in the order they were added.
    pub addrs: Vec<IfAddr>,
    /// What is below.
    pub link: Link,
    /// Counters (`if_data`): packets and bytes in and out, input errors, drops.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Input errors.
    pub ierrors: u64,
    /// Output errors.
    pub oerrors: u64,
}

impl Ifnet {
    /// Whether `a` is one of this interface's addresses.
    pub fn has_addr(&self, a: IpAddr) -> bool {
        self.addrs.iter().any(|x| x.addr == a)
    }

    /// Whether `a` is a broadcast address of this interface.
    pub fn is_broadcast(&self, a: Ipv4Addr) -> bool {
        a == Ipv4Addr::BROADCAST
            || self
                .addrs
                .iter()
                .any(|x| x.broadcast == Some(a) && self.flags & IFF_BROADCAST != 0)
    }

    /// The first address of `a`'s family on this interface.
    pub fn first_addr(&self, v6: bool) -> Option<IpAddr> {
        self.addrs
            .iter()
            .find(|x| x.addr.is_ipv6() == v6)
            .map(|x| x.addr)
    }

    /// The source address for `dst` among this interface's addresses of its family
    /// (`in6_selectsrc`'s rules as far as they apply here: the same scope as the
    /// destination first, then one not deprecated, then the longest common prefix; IPv4:
    /// the first address).
    pub fn src_addr(&self, dst: IpAddr) -> Option<IpAddr> {
        let IpAddr::V6(d) = dst else {
            return self.first_addr(false);
        };
        let ll = |a: std::net::Ipv6Addr| a.segments()[0] & 0xffc0 == 0xfe80;
        // Same scope first, then not deprecated (RFC 6724 rules 2 and 3), then the
        // longest common prefix.
        self.addrs
            .iter()
            .filter(|x| x.ready())
            .filter_map(|x| match x.addr {
                IpAddr::V6(a) => Some((a, x.flags6 & 0x10 == 0)),
                IpAddr::V4(_) => None,
            })
            .max_by_key(|(a, fresh)| {
                let common = (u128::from(*a) ^ u128::from(d)).leading_zeros();
                (ll(*a) == ll(d), *fresh, common)
            })
            .map(|(a, _)| IpAddr::V6(a))
    }

    /// `IFF_UP` and `IFF_RUNNING`.
    pub fn is_up(&self) -> bool {
        self.flags & IFF_UP != 0
    }
}

/// The broadcast address of `a/prefix` (NetBSD's default for `SIOCAIFADDR` without one).
pub fn default_broadcast(a: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let p = u32::from(prefix.min(32));
    let host = if p == 32 { 0 } else { u32::MAX >> p };
    Ipv4Addr::from(u32::from(a) | host)
}

/// NetBSD's classful default prefix for an address given without a mask (`in_ifinit`
/// with `ia_subnetmask` unset: class A /8, B /16, C /24).
pub fn classful_prefix(a: Ipv4Addr) -> u8 {
    match a.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

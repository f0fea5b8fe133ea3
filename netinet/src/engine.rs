//! The engine of one kernel's stack: smoltcp's `Interface` (TCP, UDP, ICMP echo) seeing IP
//! packets only, and around it what is ours: interfaces, Ethernet on shmif buses, ARP, the
//! routing table, forwarding, loopback and raw sockets.
//!
//! Packets move in one direction each: `ether_input` / loopback → `ip_input` (raw sockets,
//! then smoltcp through `Dev::rx`, or `forward`) and smoltcp / raw sends / forwarding →
//! `output` (local → loopback; else the route → the interface → ARP → `ether_output`).
//! Every queue is bounded; what does not fit is dropped and counted, as an IP stack does.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant as SInstant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

use crate::ifnet::*;
use crate::route::{self, Route, RTF_BLACKHOLE, RTF_GATEWAY, RTF_REJECT};
use crate::sock::Pcb;

/// IP packets waiting for smoltcp (input) or for routing (its output).
const DEV_QUEUE_MAX: usize = 512;
/// Bytes those queues hold at most each (packets reach `IP_MAXPACKET` since smoltcp's
/// device takes whole datagrams: frag.rs).
const DEV_QUEUE_BYTES_MAX: usize = 4 << 20;

/// Bytes queued in `q`.
fn queued_bytes(q: &VecDeque<Vec<u8>>) -> usize {
    q.iter().map(|p| p.len()).sum()
}

/// ARP entries per kernel.
const ARP_MAX: usize = 1024;
/// `arp_maxtries`: requests before an entry is given up.
const ARP_MAXTRIES: u32 = 5;
const ETHERTYPE_IP: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// `IPPROTO_ICMPV6`.
pub const IPPROTO_ICMPV6: u8 = 58;
/// `ND_NEIGHBOR_SOLICIT`, `ND_NEIGHBOR_ADVERT`.
const ND_NEIGHBOR_SOLICIT: u8 = 135;
const ND_NEIGHBOR_ADVERT: u8 = 136;
const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// `ip_defttl`.
pub const IP_DEFTTL: u8 = 64;
/// Dummy next hop for smoltcp's own (unused) routing: with `Medium::Ip` it only decides
/// that a destination is reachable; ours decides where a packet goes.
const SMOL_GW4: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 254);

/// The device smoltcp polls: two queues of IP packets.
pub struct Dev {
    /// Packets for smoltcp.
    pub rx: VecDeque<Vec<u8>>,
    /// Packets smoltcp sent, to be routed.
    pub tx: VecDeque<Vec<u8>>,
}

/// smoltcp's receive token.
pub struct Rx(Vec<u8>);
/// smoltcp's transmit token.
pub struct Tx<'a>(&'a mut VecDeque<Vec<u8>>);

impl smoltcp::phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl smoltcp::phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut b = vec![0u8; len];
        let r = f(&mut b);
        self.0.push_back(b);
        r
    }
}

impl Device for Dev {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _t: SInstant) -> Option<(Rx, Tx<'_>)> {
        let p = self.rx.pop_front()?;
        Some((Rx(p), Tx(&mut self.tx)))
    }

    fn transmit(&mut self, _t: SInstant) -> Option<Tx<'_>> {
        (self.tx.len() < DEV_QUEUE_MAX && queued_bytes(&self.tx) < DEV_QUEUE_BYTES_MAX)
            .then_some(Tx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        // Any IP packet: the way out cuts it to its MTU (frag.rs), and TCP's MSS is the
        // route's (`Engine::smol_output`), not one device's.
        c.max_transmission_unit = crate::frag::IP_MAXPACKET;
        c
    }
}

/// An ARP entry (`llinfo_arp`).
pub struct ArpEntry {
    /// The resolved address.
    pub mac: Option<[u8; 6]>,
    /// When it was resolved or last asked for (seconds of uptime).
    pub at_s: u64,
    /// Requests sent while unresolved.
    pub tries: u32,
    /// The packet waiting for the answer (`la_hold`: one, the newest).
    pub hold: Option<Vec<u8>>,
    /// Static (`arp -s` without `temp`: `LLE_STATIC`): never expires, never relearnt.
    pub permanent: bool,
}

/// Neighbour cache entries per kernel (`nd6`'s lltable; NetBSD's bound is memory).
pub const ND_MAX: usize = 1024;
/// `RETRANS_TIMER`: how long duplicate-address detection waits for an answer.
const DAD_RETRANS_MS: u64 = 1000;

/// `ND6_LLINFO_*`: the neighbour states `ndp -an` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NdState {
    /// Solicited, no answer yet.
    Incomplete,
    /// Confirmed by a solicited advertisement.
    Reachable,
    /// Learnt without confirmation (a solicitation's source, an unsolicited advert).
    Stale,
    /// A STALE entry used: the first probe goes when its time is up.
    Delay,
    /// Probed by unicast solicitations.
    Probe,
}

/// A neighbour cache entry (`llinfo_nd6`).
pub struct NdEntry {
    /// The link address once known.
    pub mac: Option<[u8; 6]>,
    /// Its state (`nd6.rs` moves it on when `expire_ms` passes).
    pub state: NdState,
    /// When it was made or last learnt (seconds of uptime; the oldest goes first).
    pub at_s: u64,
    /// The state's deadline (ms of uptime).
    pub expire_ms: u64,
    /// Solicitations sent in this state (`ln_asked`).
    pub tries: u32,
    /// A router (`ln_router`: it sent a router advertisement, or an advertisement with
    /// the router flag).
    pub router: bool,
    /// The packet waiting for the answer (`ln_hold`: one, the newest).
    pub hold: Option<Vec<u8>>,
}

/// Counters (a subset of `ipstat`/`icmpstat`).
#[derive(Default, Debug, Clone)]
pub struct Stats {
    /// Packets received.
    pub ip_total: u64,
    /// Malformed packets.
    pub ip_bad: u64,
    /// Packets forwarded.
    pub ip_forward: u64,
    /// Packets with no route.
    pub ip_noroute: u64,
    /// Packets dropped for lack of room.
    pub ip_dropped: u64,
    /// Packets sent.
    pub ip_localout: u64,
    /// Packets refused by a reject route or dropped by a blackhole.
    pub ip_rejected: u64,
}

/// The stack's state (under one lock).
pub struct Engine {
    /// smoltcp's interface: holds every address of every interface.
    pub iface: Interface,
    /// Its device.
    pub dev: Dev,
    /// smoltcp's sockets.
    pub sockets: SocketSet<'static>,
    /// Interfaces by index order.
    pub ifs: Vec<Ifnet>,
    next_index: u32,
    /// Next unit number per driver name (`shmif` → 0, 1, …).
    pub routes: route::Table,
    /// ARP entries by (interface index, address).
    pub arp: HashMap<(u32, Ipv4Addr), ArpEntry>,
    /// Our addresses whose ARP entry `arp -d` removed (not listed until set again).
    pub arp_own_deleted: std::collections::HashSet<(u32, Ipv4Addr)>,
    /// Neighbour cache by (interface index, address).
    pub nd: HashMap<(u32, Ipv6Addr), NdEntry>,
    /// Addresses in duplicate-address detection: (interface, address, deadline in ms of
    /// uptime). At most one per address (8 per kernel).
    pub dad: Vec<(u32, Ipv6Addr, u64)>,
    /// `rumpnet_netinet6`: interfaces that come up get a link-local address.
    pub inet6: bool,
    /// `net.inet6.ip6.auto_linklocal` (1): whether they do.
    pub auto_linklocal: bool,
    /// `net.inet.ip.ttl` (`ip_defttl`): the TTL new IPv4 TCP and UDP sockets take.
    pub ip_ttl: u8,
    /// Multicast groups, socket options and queues (`mcast.rs`).
    pub mcast: crate::mcast::State,
    /// Per-interface neighbour discovery parameters (`nd6.rs`).
    pub nd6: crate::nd6::State,
    /// Sticky IPv6 packet options (`ip6opts.rs`).
    pub ip6opts: crate::ip6opts::State,
    /// The node information group of the host name (`in6_nigroup`), joined with every
    /// IPv6 address.
    pub nigroup: Option<Ipv6Addr>,
    /// Protocol control blocks by id.
    pub pcbs: HashMap<u32, Pcb>,
    /// Next pcb id.
    pub next_pcb: u32,
    /// TCP connections closed by their socket, finishing (handle, deadline in seconds).
    pub closing: Vec<(SocketHandle, u64)>,
    /// `net.inet.ip.forwarding` (1: a rump kernel is a GATEWAY build).
    pub forwarding_v4: bool,
    /// `net.inet6.ip6.forwarding`.
    pub forwarding_v6: bool,
    /// `net.inet6.ip6.v6only` (1, as NetBSD): new AF_INET6 sockets start IPv6-only.
    pub v6only: bool,
    /// Counters.
    pub stats: Stats,
    /// Reassembly queues, path MTUs and their knobs (frag.rs).
    pub frag: crate::frag::FragState,
    /// ICMP errors and redirects of our own: knobs and state (`icmp.rs`).
    pub icmp: crate::icmp::IcmpState,
    /// IPv4 duplicate-address detection and the `net.inet.arp` knobs (`arp.rs`).
    pub arp4: crate::arp::ArpState,
    /// The kernel's memory budget (socket buffers, queued packets).
    pub budget: std::sync::Arc<kernel::mem::Budget>,
    start: std::time::Instant,
    ip_id: u16,
    rand: u64,
}

/// A 64-bit random number (xorshift over a seed from the host's hasher keys).
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() | 1
}

/// Whether `a` is an IPv6 link-local unicast address (fe80::/10).
pub fn is_link_local(a: IpAddr) -> bool {
    matches!(a, IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80)
}

/// The checksum of an upper-layer IPv6 payload with its pseudo-header (RFC 8200 §8.1).
pub fn csum6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> u16 {
    let mut b = Vec::with_capacity(40 + payload.len());
    b.extend_from_slice(&src.octets());
    b.extend_from_slice(&dst.octets());
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, next]);
    b.extend_from_slice(payload);
    csum(&b)
}

/// The Internet checksum of `b`.
pub fn csum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

impl Engine {
    /// A stack with `lo0` (127.0.0.1/8, ::1/128) up.
    pub fn new(budget: std::sync::Arc<kernel::mem::Budget>) -> Engine {
        let mut dev = Dev {
            rx: VecDeque::new(),
            tx: VecDeque::new(),
        };
        let start = std::time::Instant::now();
        let mut cfg = Config::new(HardwareAddress::Ip);
        let rand = seed();
        cfg.random_seed = rand;
        let mut iface = Interface::new(cfg, &mut dev, SInstant::from_micros(0));
        let _ = iface.routes_mut().add_default_ipv4_route(SMOL_GW4);
        let _ = iface
            .routes_mut()
            .add_default_ipv6_route(Ipv6Addr::LOCALHOST);
        let mut e = Engine {
            iface,
            dev,
            sockets: SocketSet::new(Vec::new()),
            ifs: Vec::new(),
            next_index: 1,
            routes: route::Table::default(),
            arp: HashMap::new(),
            arp_own_deleted: Default::default(),
            nd: HashMap::new(),
            dad: Vec::new(),
            inet6: true,
            auto_linklocal: true,
            ip_ttl: IP_DEFTTL,
            mcast: Default::default(),
            nd6: Default::default(),
            ip6opts: Default::default(),
            nigroup: None,
            pcbs: HashMap::new(),
            next_pcb: 1,
            closing: Vec::new(),
            forwarding_v4: true,
            forwarding_v6: false,
            v6only: true,
            stats: Stats::default(),
            frag: crate::frag::FragState::new(rand.rotate_left(32)),
            icmp: Default::default(),
            budget,
            start,
            ip_id: (rand >> 16) as u16,
            arp4: Default::default(),
            rand,
        };
        e.ifs.push(Ifnet {
            name: "lo0".into(),
            index: 1,
            flags: IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_MULTICAST,
            mtu: LOMTU,
            mac: None,
            addrs: Vec::new(),
            link: Link::Loop,
            ipackets: 0,
            opackets: 0,
            ibytes: 0,
            obytes: 0,
            ierrors: 0,
            oerrors: 0,
        });
        e.next_index = 2;
        let _ = e.add_addr(1, IpAddr::V4(Ipv4Addr::LOCALHOST), 8, None);
        let _ = e.add_addr(1, IpAddr::V6(Ipv6Addr::LOCALHOST), 128, None);
        e
    }

    /// A random number.
    pub fn random(&mut self) -> u64 {
        let mut x = self.rand;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rand = x;
        x
    }

    /// smoltcp's clock.
    pub fn now(&self) -> SInstant {
        SInstant::from_micros(self.start.elapsed().as_micros() as i64)
    }

    /// Milliseconds since the stack started.
    pub fn uptime_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Seconds since the stack started.
    pub fn uptime_s(&self) -> u64 {
        self.start.elapsed().as_secs()
    }

    /// The interface with index `i`.
    pub fn ifp(&self, i: u32) -> Option<&Ifnet> {
        self.ifs.iter().find(|f| f.index == i)
    }

    /// The interface with index `i`, to change it.
    pub fn ifp_mut(&mut self, i: u32) -> Option<&mut Ifnet> {
        self.ifs.iter_mut().find(|f| f.index == i)
    }

    /// The interface named `name`.
    pub fn ifp_by_name(&self, name: &str) -> Option<&Ifnet> {
        self.ifs.iter().find(|f| f.name == name)
    }

    /// The next `if_index` (`if_getindex`): from the last one given, the first free one —
    /// an interface destroyed and made again gets its index back, as on NetBSD.
    pub(crate) fn alloc_index(&mut self) -> u32 {
        let mut index = self.next_index.max(2);
        while self.ifs.iter().any(|f| f.index == index) {
            index = if index >= u32::from(u16::MAX) - 1 {
                2
            } else {
                index + 1
            };
        }
        self.next_index = index;
        index
    }

    /// Lets smoltcp take what input queued once its queue is half full.
    pub(crate) fn poll_if_full(&mut self) {
        if self.dev.rx.len() >= DEV_QUEUE_MAX / 2 {
            self.poll();
        }
    }

    /// Creates `shmifN` (`SIOCIFCREATE`): down, no bus, a random MAC and sender id.
    pub fn if_create(&mut self, name: &str) -> Result<u32, kernel::Errno> {
        use kernel::Errno;
        let unit = name
            .strip_prefix("shmif")
            .filter(|u| !u.is_empty() && u.len() <= 4 && u.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(Errno::EINVAL)?;
        if unit.len() > 1 && unit.starts_with('0') {
            return Err(Errno::EINVAL);
        }
        if self.ifp_by_name(name).is_some() {
            return Err(Errno::EEXIST);
        }
        if self.ifs.len() >= IFS_MAX {
            return Err(Errno::ENOBUFS);
        }
        let index = self.alloc_index();
        let r = self.random();
        let sender = self.random();
        self.ifs.push(Ifnet {
            name: name.into(),
            index,
            flags: IFF_BROADCAST | IFF_SIMPLEX | IFF_MULTICAST,
            mtu: ETHERMTU,
            mac: Some(shmif::mac_address(r as u32)),
            addrs: Vec::new(),
            link: Link::Shmif { sender, port: None },
            ipackets: 0,
            opackets: 0,
            ibytes: 0,
            obytes: 0,
            ierrors: 0,
            oerrors: 0,
        });
        Ok(index)
    }

    /// Destroys an interface (`SIOCIFDESTROY`): its addresses, routes and ARP entries go.
    pub fn if_destroy(&mut self, name: &str) -> Result<(), kernel::Errno> {
        use kernel::Errno;
        let i = self.ifp_by_name(name).ok_or(Errno::ENXIO)?.index;
        if i == 1 {
            return Err(Errno::EOPNOTSUPP);
        }
        let addrs: Vec<IpAddr> = self
            .ifp(i)
            .map(|f| f.addrs.iter().map(|a| a.addr).collect())
            .unwrap_or_default();
        for a in addrs {
            let _ = self.del_addr(i, a);
        }
        self.routes.retain(|r| r.ifindex != i);
        self.arp.retain(|k, _| k.0 != i);
        self.nd.retain(|k, _| k.0 != i);
        crate::mcast::if_detached(self, i);
        crate::nd6::if_detached(self, i);
        self.ifs.retain(|f| f.index != i);
        Ok(())
    }

    /// Adds an address (`SIOCAIFADDR`): with it its connected route; the interface comes up.
    /// An address already there has its prefix and broadcast replaced.
    pub fn add_addr(
        &mut self,
        i: u32,
        addr: IpAddr,
        prefix: u8,
        broadcast: Option<Ipv4Addr>,
    ) -> Result<(), kernel::Errno> {
        use kernel::Errno;
        let existed = self.ifp(i).map(|f| f.has_addr(addr)) == Some(true);
        if existed {
            self.del_addr(i, addr)?;
        }
        // `if_do_dad`: IPv4 DAD only when the interface was up and running already.
        let was_running = self
            .ifp(i)
            .is_some_and(|f| f.flags & (IFF_UP | IFF_RUNNING) == IFF_UP | IFF_RUNNING);
        if let IpAddr::V4(a) = addr {
            self.arp_own_deleted.remove(&(i, a));
        }
        let total: usize = self.ifs.iter().map(|f| f.addrs.len()).sum();
        let f = self.ifp(i).ok_or(Errno::ENXIO)?;
        if f.addrs.len() >= ADDRS_MAX || total >= 8 {
            // smoltcp's interface holds at most 8 addresses (iface-max-addr-count-8).
            return Err(Errno::ENOBUFS);
        }
        if matches!(f.link, Link::Shmif { port: None, .. }) {
            // `in_ifinit` → `if_init`: shmif without a bus is ENXIO.
            return Err(Errno::ENXIO);
        }
        let loopback = f.flags & IFF_LOOPBACK != 0;
        let bcast_if = f.flags & IFF_BROADCAST != 0;
        let broadcast = match addr {
            IpAddr::V4(a) if bcast_if => Some(broadcast.unwrap_or(default_broadcast(a, prefix))),
            // A loopback address's destination is itself (`ifa_dstaddr`).
            IpAddr::V4(a) if loopback => Some(a),
            _ => None,
        };
        // A multicast address (NetBSD takes one as an interface address) is ours only:
        // smoltcp's interface cannot hold it.
        if !addr.is_multicast() {
            let cidr = IpCidr::new(IpAddress::from(addr), prefix);
            let mut full = false;
            self.iface.update_ip_addrs(|v| full = v.push(cidr).is_err());
            if full {
                return Err(Errno::ENOBUFS);
            }
        }
        // `nd6_dad_start`: an IPv6 address on Ethernet is tentative until one solicitation
        // from `::` went unanswered for `retrans` (1 s, `ip6_dad_count` 1).
        let dad = self.inet6 && addr.is_ipv6() && !loopback && !addr.is_multicast();
        let now_ms = self.start.elapsed().as_millis() as u64;
        let f = self.ifp_mut(i).ok_or(Errno::ENXIO)?;
        f.addrs.push(IfAddr {
            addr,
            prefix,
            broadcast,
            flags6: if dad { IN6_IFF_TENTATIVE } else { 0 },
        });
        if let (true, IpAddr::V6(a)) = (dad, addr) {
            self.dad.retain(|d| (d.0, d.1) != (i, a));
            self.dad.push((i, a, now_ms + DAD_RETRANS_MS));
            self.nd6_dad_ns(i, a);
        }
        let f = self.ifp_mut(i).ok_or(Errno::ENXIO)?;
        let was_up = f.flags & IFF_UP != 0;
        f.flags |= IFF_UP | IFF_RUNNING;
        crate::mcast::addr_added(self, i, addr);
        // The connected route (`in_addprefix`); a loopback address gets only its local
        // host route (listed by `rtmsg::all_routes`), as NetBSD's table shows.
        // NetBSD's IPv4 /32 is a net route with a full mask (`10.0.0.1/32` in route show).
        let host = addr.is_ipv6() && prefix == route::host_prefix(addr);
        if !loopback {
            let _ = self.routes.add(Route {
                dst: addr,
                prefix,
                gateway: None,
                ifindex: i,
                flags: route::RTF_UP
                    | route::RTF_CONNECTED
                    | if host { route::RTF_HOST } else { 0 },
            });
        }
        if let (false, IpAddr::V4(a)) = (loopback, addr) {
            let fl = self.arp_addr_added(i, a, was_running, !existed);
            if let Some(x) = self
                .ifp_mut(i)
                .and_then(|f| f.addrs.iter_mut().find(|x| x.addr == addr))
            {
                x.flags6 = fl;
            }
        }
        if !was_up {
            self.in6_if_up(i);
        }
        Ok(())
    }

    /// `in6_if_up` → `in6_ifattach`: an Ethernet interface coming up gets its link-local
    /// address, fe80::/64 with the EUI-64 interface id from its MAC (`get_hw_ifid`: the
    /// universal/local bit inverted, ff:fe in the middle). Nothing without netinet6, on
    /// loopback, or when it has one already.
    pub fn in6_if_up(&mut self, i: u32) {
        let Some(f) = self.ifp(i) else { return };
        let Some(m) = f.mac else { return };
        if !self.inet6 || !self.auto_linklocal || f.addrs.iter().any(|a| is_link_local(a.addr)) {
            return;
        }
        let ll = Ipv6Addr::from([
            0xfe,
            0x80,
            0,
            0,
            0,
            0,
            0,
            0,
            m[0] ^ 0x02,
            m[1],
            m[2],
            0xff,
            0xfe,
            m[3],
            m[4],
            m[5],
        ]);
        let _ = self.add_addr(i, IpAddr::V6(ll), 64, None);
    }

    /// Removes an address (`SIOCDIFADDR`) and its connected route.
    pub fn del_addr(&mut self, i: u32, addr: IpAddr) -> Result<(), kernel::Errno> {
        use kernel::Errno;
        let f = self.ifp_mut(i).ok_or(Errno::ENXIO)?;
        let pos = f
            .addrs
            .iter()
            .position(|a| a.addr == addr)
            .ok_or(Errno::EADDRNOTAVAIL)?;
        let a = f.addrs.remove(pos);
        match addr {
            IpAddr::V6(v) => self.dad.retain(|d| (d.0, d.1) != (i, v)),
            IpAddr::V4(v) => self.arp_dad_stop(i, v),
        }
        crate::mcast::addr_removed(self, i, addr);
        let ip = IpAddress::from(addr);
        self.iface
            .update_ip_addrs(|v| v.retain(|c| c.address() != ip));
        let net = route::network(a.addr, a.prefix);
        self.routes.retain(|r| {
            !(r.ifindex == i
                && r.flags & route::RTF_CONNECTED != 0
                && r.dst == net
                && r.prefix == a.prefix)
        });
        Ok(())
    }

    /// Whether `a` is one of our addresses (any interface: NetBSD's weak host model).
    pub fn is_local(&self, a: IpAddr) -> bool {
        self.ifs.iter().any(|f| f.has_addr(a))
    }

    /// The interface holding address `a`.
    pub fn ifindex_of_addr(&self, a: IpAddr) -> Option<u32> {
        self.ifs.iter().find(|f| f.has_addr(a)).map(|f| f.index)
    }

    /// `ifa_ifwithnet`: the interface with the most specific address whose network
    /// holds `a`.
    pub fn ifindex_of_net(&self, a: IpAddr) -> Option<u32> {
        self.ifs
            .iter()
            .flat_map(|f| f.addrs.iter().map(move |x| (f.index, x)))
            .filter(|(_, x)| route::prefix_contains(x.addr, x.prefix, a))
            .max_by_key(|(_, x)| x.prefix)
            .map(|(i, _)| i)
    }

    /// The source address for packets to `dst` (`in_selectsrc`): the destination itself
    /// if it is ours, else the first address of the route's interface.
    pub fn select_source(&self, dst: IpAddr) -> Result<IpAddr, kernel::Errno> {
        use kernel::Errno;
        if self.is_local(dst) {
            return Ok(dst);
        }
        if dst.is_loopback() {
            return Ok(if dst.is_ipv4() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            });
        }
        // `in_selectsrc`: the route's interface's address, else the first address of a
        // non-loopback interface, else EADDRNOTAVAIL.
        if let Some(r) = self.routes.lookup(dst) {
            if let Some(a) = self
                .ifp(r.ifindex)
                .filter(|f| f.flags & IFF_LOOPBACK == 0)
                .and_then(|f| f.src_addr(dst))
            {
                return Ok(a);
            }
        }
        self.ifs
            .iter()
            .filter(|f| f.flags & IFF_LOOPBACK == 0)
            .find_map(|f| f.first_addr(dst.is_ipv6()))
            .ok_or(Errno::EADDRNOTAVAIL)
    }

    /// The route for `dst` as `ip_output` sees it: `EHOSTUNREACH` without one or for a
    /// reject route (a blackhole route is taken: packets vanish).
    pub fn route_check(&self, dst: IpAddr) -> Result<Route, kernel::Errno> {
        use kernel::Errno;
        let r = self.routes.lookup(dst).ok_or(Errno::EHOSTUNREACH)?;
        if r.flags & RTF_REJECT != 0 {
            // `rt_check_reject_route`/`looutput`: through a loopback interface a host route
            // is EHOSTUNREACH and a network one ENETUNREACH; elsewhere a gateway route
            // EHOSTUNREACH and a direct one EHOSTDOWN.
            let looped = self.ifp(r.ifindex).map(|f| f.flags & IFF_LOOPBACK != 0);
            return Err(match (looped.unwrap_or(false), r.flags) {
                (true, f) if f & route::RTF_HOST != 0 => Errno::EHOSTUNREACH,
                (true, _) => Errno::ENETUNREACH,
                (false, f) if f & RTF_GATEWAY != 0 => Errno::EHOSTUNREACH,
                (false, _) => Errno::EHOSTDOWN,
            });
        }
        Ok(r.clone())
    }

    /// The next IP identification.
    pub fn next_ip_id(&mut self) -> u16 {
        self.ip_id = self.ip_id.wrapping_add(1);
        self.ip_id
    }

    /// Runs smoltcp and routes what it sends until nothing moves (bounded).
    pub fn poll(&mut self) {
        self.nd6_timer();
        self.arp_dad_timer();
        self.frag_timer();
        crate::nd6::timer(self);
        crate::mcast::timer(self);
        for _ in 0..64 {
            let now = self.now();
            self.iface.poll(now, &mut self.dev, &mut self.sockets);
            let sent = !self.dev.tx.is_empty();
            while let Some(mut p) = self.dev.tx.pop_front() {
                if crate::icmp::smoltcp_error(&p) {
                    continue;
                }
                reflect_ttl(&mut p);
                self.smol_output(p);
            }
            crate::sock::maintain(self);
            if !sent && self.dev.rx.is_empty() {
                break;
            }
        }
    }

    /// How long until smoltcp's next timer.
    pub fn poll_delay(&mut self) -> Option<std::time::Duration> {
        let now = self.now();
        self.iface
            .poll_delay(now, &self.sockets)
            .map(|d| std::time::Duration::from_micros(d.total_micros()))
    }

    /// Reads every shmif bus (bounded per call); whether anything arrived.
    pub fn read_buses(&mut self, frames_max: usize) -> bool {
        let mut got = false;
        let mut buf = [0u8; shmif::FRAME_MAX];
        let idx: Vec<u32> = self.ifs.iter().map(|f| f.index).collect();
        for i in idx {
            // Drain the watch's events once per round; the ring says what is new.
            if let Some(Link::Shmif {
                port: Some(port), ..
            }) = self.ifp(i).map(|f| &f.link)
            {
                port.watch.drain();
            }
            for _ in 0..frames_max {
                let r = {
                    let Some(f) = self.ifp_mut(i) else { break };
                    let Link::Shmif {
                        sender,
                        port: Some(port),
                    } = &mut f.link
                    else {
                        break;
                    };
                    match port.reader.recv(&port.bus, &mut buf) {
                        Ok(Some(r)) if r.sender == *sender => continue,
                        Ok(Some(r)) => r.len,
                        Ok(None) => break,
                        Err(_) => {
                            f.ierrors += 1;
                            break;
                        }
                    }
                };
                got = true;
                self.ether_input(i, &buf[..r]);
                if self.dev.rx.len() >= DEV_QUEUE_MAX / 2 {
                    self.poll();
                }
            }
        }
        got
    }

    /// A frame from interface `i`'s bus (`ether_input`).
    pub fn ether_input(&mut self, i: u32, frame: &[u8]) {
        let Some(f) = self.ifp_mut(i) else { return };
        if !f.is_up() || frame.len() < 14 {
            return;
        }
        // `ETHER_MAX_FRAME`: a frame beyond the interface's MTU (plus a VLAN tag) is
        // discarded, as NetBSD's ether_input does ("discarding oversize frame").
        let vlan = if frame[12..14] == [0x81, 0] { 4 } else { 0 };
        if frame.len() > f.mtu as usize + 14 + vlan {
            return;
        }
        let mac = f.mac.unwrap_or_default();
        let dst: [u8; 6] = frame[0..6].try_into().unwrap_or_default();
        if dst != mac && dst != BROADCAST_MAC && dst[0] & 1 == 0 {
            return;
        }
        f.ipackets += 1;
        f.ibytes += frame.len() as u64;
        let ty = u16::from_be_bytes([frame[12], frame[13]]);
        let payload = &frame[14..];
        match ty {
            ETHERTYPE_ARP => self.arp_input(i, payload),
            ETHERTYPE_IP | ETHERTYPE_IPV6 => {
                self.icmp.rx_lmcast = dst[0] & 1 != 0;
                self.ip_input(i, payload.to_vec());
                self.icmp.rx_lmcast = false;
            }
            _ => {}
        }
    }

    /// An IP packet received on interface `i`: ours (raw sockets, then smoltcp) or
    /// forwarded.
    pub fn ip_input(&mut self, i: u32, mut p: Vec<u8>) {
        self.stats.ip_total += 1;
        let Some(h) = ip_header(&p) else {
            self.stats.ip_bad += 1;
            return;
        };
        p.truncate(h.total_len);
        let h = crate::mcast::skip_hbh(&h, &p).unwrap_or(h);
        // A group only when the interface is a member (`IN_LOOKUP_MULTI`).
        let for_us = self.is_local(h.dst)
            || (h.dst.is_multicast() && crate::mcast::is_member(self, i, h.dst))
            || matches!(h.dst, IpAddr::V4(d) if self.ifp(i).is_some_and(|f| f.is_broadcast(d)))
            || (i == 1 && h.dst.is_loopback());
        if for_us {
            // Fragments for us are put back together first (frag.rs).
            let Some((h, p)) = self.reass_input(h, p) else {
                return;
            };
            if h.proto == IPPROTO_ICMPV6 && i != 1 && self.nd6_input(i, &h, &p) {
                // Neighbour discovery is ours (smoltcp's `Medium::Ip` has none).
                return;
            }
            crate::sock::raw_input(self, i, &h, &p);
            if h.dst.is_multicast() && crate::mcast::input(self, i, &h, &p) {
                return;
            }
            crate::icmp::input(self, i, &h, &p);
            crate::icmp::local_input(self, i, &h, &p);
            self.mtudisc_input(&h, &p);
            // `icmp_input` with `icmpbmcastecho` 0 (NetBSD's default): an echo request to
            // a broadcast or multicast address is not answered (it went to the raw
            // sockets above).
            if h.dst.is_ipv4() && h.proto == 1 && p.get(h.hlen) == Some(&8) && !self.is_local(h.dst)
            {
                return;
            }
            if self.dev.rx.len() < DEV_QUEUE_MAX
                && queued_bytes(&self.dev.rx) + p.len() <= DEV_QUEUE_BYTES_MAX
            {
                self.dev.rx.push_back(p);
            } else {
                self.stats.ip_dropped += 1;
            }
            return;
        }
        if h.dst.is_multicast() {
            // A group the interface is not in: dropped, never forwarded (no multicast
            // routing, as NetBSD's kernels without MROUTING).
            return;
        }
        self.forward(i, &h, p);
    }

    /// `ip_forward`: TTL down by one, then out by the route; `ICMP_TIMXCEED` when it ran out.
    fn forward(&mut self, i: u32, h: &IpHdr, mut p: Vec<u8>) {
        let IpAddr::V4(src) = h.src else {
            self.forward6(i, h, p);
            return;
        };
        let IpAddr::V4(dst) = h.dst else { return };
        if !self.forwarding_v4
            || i == 1
            || src.is_unspecified()
            || src.is_broadcast()
            || src.is_multicast()
            || src.is_loopback()
            || dst.is_loopback()
            || dst.is_broadcast()
            || dst.is_unspecified()
            || !crate::icmp::can_forward(self, h.dst)
        {
            return;
        }
        if p[8] <= 1 {
            crate::icmp::icmp_error(self, i, &p, crate::icmp::ICMP_TIMXCEED, 0, 0);
            return;
        }
        // `ip_output` without IP_ALLOWBROADCAST (`net.inet.ip.directed-broadcast` 0, as
        // NetBSD's default): the broadcast address of the outgoing interface's network is
        // refused, EACCES, which `ip_forward` answers with host unreachable.
        let directed = self.routes.lookup(h.dst).is_some_and(|r| {
            r.flags & RTF_GATEWAY == 0 && self.ifp(r.ifindex).is_some_and(|f| f.is_broadcast(dst))
        });
        if directed {
            self.icmp_error(i, 3, 1, &p);
            return;
        }
        let mcopy = p[..p.len().min(68)].to_vec();
        let Some(redirect) = crate::icmp::forward_route(self, i, h, &mcopy) else {
            return;
        };
        p[8] -= 1;
        p[10] = 0;
        p[11] = 0;
        let c = csum(&p[..h.hlen]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        if self.forward_too_big(i, h, &p) {
            return;
        }
        self.stats.ip_forward += 1;
        self.output(p);
        if let Some(gw) = redirect {
            let (ty, code) = (crate::icmp::ICMP_REDIRECT, crate::icmp::ICMP_REDIRECT_HOST);
            crate::icmp::icmp_error(self, i, &mcopy, ty, code, gw);
        }
    }

    /// An ICMP error about `orig` (`icmp_error`, received on interface `i`): see
    /// [`crate::icmp::icmp_error`], which makes it with NetBSD's rules.
    pub fn icmp_error(&mut self, i: u32, ty: u8, code: u8, orig: &[u8]) {
        crate::icmp::icmp_error(self, i, orig, ty, code, 0);
    }

    /// An IPv4 packet (no options) around `payload`.
    pub fn ipv4_packet(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        ttl: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let id = self.next_ip_id();
        let mut h = vec![0x45, 0];
        h.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
        h.extend_from_slice(&id.to_be_bytes());
        h.extend_from_slice(&[0, 0, ttl, proto, 0, 0]);
        h.extend_from_slice(&src.octets());
        h.extend_from_slice(&dst.octets());
        let c = csum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.extend_from_slice(payload);
        h
    }

    /// An IP packet leaving (`ip_output`/`ip6_output`): cut to the MTU of the way out
    /// (frag.rs), then each piece to loopback or its interface.
    pub fn output(&mut self, p: Vec<u8>) {
        let Some(h) = ip_header(&p) else {
            self.stats.ip_bad += 1;
            return;
        };
        match self.path_mtu(h.dst) {
            Some(mtu) if p.len() > mtu => {
                for q in self.fit_mtu(&h, p, mtu) {
                    self.output_fit(q);
                }
            }
            _ => self.output_fit(p),
        }
    }

    /// A packet that fits the MTU of its way out.
    fn output_fit(&mut self, p: Vec<u8>) {
        let Some(h) = ip_header(&p) else {
            self.stats.ip_bad += 1;
            return;
        };
        self.stats.ip_localout += 1;
        if self.is_local(h.dst) || h.dst.is_loopback() {
            self.loop_output(p);
            return;
        }
        let Some(r) = self.routes.lookup(h.dst).cloned() else {
            self.stats.ip_noroute += 1;
            return;
        };
        if r.flags & (RTF_REJECT | RTF_BLACKHOLE) != 0 {
            self.stats.ip_rejected += 1;
            return;
        }
        let Some(f) = self.ifp(r.ifindex) else { return };
        if !f.is_up() {
            return;
        }
        match &f.link {
            Link::Loop => self.loop_output(p),
            Link::Shmif { .. } | Link::Virt { .. } => {
                let dst = match h.dst {
                    IpAddr::V4(d) => d,
                    IpAddr::V6(d) => {
                        if d.is_multicast() {
                            let o = d.octets();
                            let mac = [0x33, 0x33, o[12], o[13], o[14], o[15]];
                            self.ether_output(r.ifindex, mac, ETHERTYPE_IPV6, &p);
                            return;
                        }
                        let next = match (r.flags & RTF_GATEWAY != 0, r.gateway) {
                            (true, Some(IpAddr::V6(g))) => g,
                            _ => d,
                        };
                        self.nd_resolve(r.ifindex, next, p);
                        return;
                    }
                };
                if f.is_broadcast(dst) || dst.is_multicast() {
                    let mac = if dst.is_multicast() {
                        let o = dst.octets();
                        [0x01, 0, 0x5e, o[1] & 0x7f, o[2], o[3]]
                    } else {
                        BROADCAST_MAC
                    };
                    self.ether_output(r.ifindex, mac, ETHERTYPE_IP, &p);
                    return;
                }
                let next = match (r.flags & RTF_GATEWAY != 0, r.gateway) {
                    (true, Some(IpAddr::V4(g))) => g,
                    _ => dst,
                };
                self.arp_resolve(r.ifindex, next, p);
            }
        }
    }

    fn loop_output(&mut self, p: Vec<u8>) {
        if let Some(f) = self.ifp_mut(1) {
            f.opackets += 1;
            f.obytes += p.len() as u64;
            f.ipackets += 1;
            f.ibytes += p.len() as u64;
        }
        self.ip_input(1, p);
    }

    /// Sends an Ethernet frame on interface `i`'s bus.
    pub fn ether_output(&mut self, i: u32, dst: [u8; 6], ty: u16, payload: &[u8]) {
        let (sec, usec) = {
            let d = self.start.elapsed();
            (d.as_secs() as u32, d.subsec_micros())
        };
        let Some(f) = self.ifp_mut(i) else { return };
        let Some(mac) = f.mac else { return };
        let mut frame = Vec::with_capacity(14 + payload.len());
        frame.extend_from_slice(&dst);
        frame.extend_from_slice(&mac);
        frame.extend_from_slice(&ty.to_be_bytes());
        frame.extend_from_slice(payload);
        let sent = match &f.link {
            Link::Shmif {
                sender,
                port: Some(port),
            } => port.bus.send(&frame, *sender, sec, usec).map_err(|_| ()),
            Link::Virt { tap } => tap.send(&frame).map_err(|_| ()),
            _ => Err(()),
        };
        match sent {
            Ok(()) => {
                f.opackets += 1;
                f.obytes += frame.len() as u64;
            }
            Err(_) => f.oerrors += 1,
        }
    }

    /// `arp -s` (`lla_rt_output` RTM_ADD): `EEXIST` over a static entry, else the entry
    /// is (re)made resolved to `mac`, static when `permanent`, sending what it held.
    pub fn arp_add_static(
        &mut self,
        i: u32,
        a: Ipv4Addr,
        mac: [u8; 6],
        permanent: bool,
    ) -> Result<(), kernel::Errno> {
        if self.arp.get(&(i, a)).is_some_and(|e| e.permanent) {
            return Err(kernel::Errno::EEXIST);
        }
        if !self.arp.contains_key(&(i, a)) && self.arp.len() >= ARP_MAX {
            return Err(kernel::Errno::ENOMEM);
        }
        let now_s = self.uptime_s();
        let old = self.arp.insert(
            (i, a),
            ArpEntry {
                mac: Some(mac),
                at_s: now_s,
                tries: 0,
                hold: None,
                permanent,
            },
        );
        if let Some(p) = old.and_then(|o| o.hold) {
            self.ether_output(i, mac, ETHERTYPE_IP, &p);
        }
        Ok(())
    }

    /// `arp -d` (`lla_rt_output` RTM_DELETE): `ENOENT` without an entry. Our own
    /// address's entry (`LLE_IFADDR`) goes too: arp(8) lists it no more until the address
    /// is set again (`arp -d -a` on NetBSD's server).
    pub fn arp_delete(&mut self, i: u32, a: Ipv4Addr) -> Result<(), kernel::Errno> {
        if self.arp.remove(&(i, a)).is_some() {
            return Ok(());
        }
        let own = self.ifp(i).is_some_and(|f| f.has_addr(IpAddr::V4(a)));
        if own && self.arp_own_deleted.len() < ADDRS_MAX * 64 && self.arp_own_deleted.insert((i, a))
        {
            return Ok(());
        }
        Err(kernel::Errno::ENOENT)
    }

    fn arp_request(&mut self, i: u32, target: Ipv4Addr) {
        let Some(f) = self.ifp(i) else { return };
        let Some(mac) = f.mac else { return };
        let src = match f.first_addr(false) {
            Some(IpAddr::V4(a)) => a,
            _ => return,
        };
        let a = arp_packet(1, mac, src, [0; 6], target);
        self.ether_output(i, BROADCAST_MAC, ETHERTYPE_ARP, &a);
    }

    /// `arpresolve`: sends `p` to `next` on interface `i` once its address is known.
    fn arp_resolve(&mut self, i: u32, next: Ipv4Addr, p: Vec<u8>) {
        let now_s = self.uptime_s();
        if let Some(e) = self.arp.get_mut(&(i, next)) {
            if let Some(mac) = e.mac {
                let keep_s = self.arp4.keep_s.max(0) as u64;
                if e.permanent || now_s.saturating_sub(e.at_s) < keep_s {
                    self.ether_output(i, mac, ETHERTYPE_IP, &p);
                    return;
                }
                e.mac = None;
                e.tries = 0;
            }
            e.hold = Some(p);
            let down_s = self.arp4.down_s.max(0) as u64;
            if e.tries >= ARP_MAXTRIES && now_s.saturating_sub(e.at_s) < down_s {
                // `arpt_down`: given up on for 20 s.
                e.hold = None;
                return;
            }
            if e.tries >= ARP_MAXTRIES {
                e.tries = 0;
            }
            if e.tries == 0 || now_s > e.at_s {
                e.tries += 1;
                e.at_s = now_s;
                self.arp_request(i, next);
            }
            return;
        }
        if self.arp.len() >= ARP_MAX {
            // Drop the oldest unresolved entry, else refuse.
            let victim = self
                .arp
                .iter()
                .filter(|(_, e)| e.mac.is_none())
                .min_by_key(|(_, e)| e.at_s)
                .map(|(k, _)| *k);
            match victim {
                Some(k) => {
                    self.arp.remove(&k);
                }
                None => {
                    self.stats.ip_dropped += 1;
                    return;
                }
            }
        }
        self.arp.insert(
            (i, next),
            ArpEntry {
                mac: None,
                at_s: now_s,
                tries: 1,
                hold: Some(p),
                permanent: false,
            },
        );
        self.arp_request(i, next);
    }

    /// `in_arpinput`: learns the sender, answers requests for our addresses, sends what
    /// waited.
    fn arp_input(&mut self, i: u32, a: &[u8]) {
        if a.len() < 28 || a[0..2] != [0, 1] || a[2..4] != [8, 0] || a[4] != 6 || a[5] != 4 {
            return;
        }
        let op = u16::from_be_bytes([a[6], a[7]]);
        let sha: [u8; 6] = a[8..14].try_into().unwrap_or_default();
        let spa = Ipv4Addr::new(a[14], a[15], a[16], a[17]);
        let tpa = Ipv4Addr::new(a[24], a[25], a[26], a[27]);
        let Some(f) = self.ifp(i) else { return };
        let mac = f.mac.unwrap_or_default();
        if sha == mac || sha[0] & 1 != 0 {
            return;
        }
        if self.arp_dad_input(i, op, sha, spa, tpa) == crate::arp::Verdict::Done {
            return;
        }
        let Some(f) = self.ifp(i) else { return };
        let for_us = f
            .addrs
            .iter()
            .any(|x| x.addr == IpAddr::V4(tpa) && x.ready());
        let now_s = self.uptime_s();
        let room = self.arp.len() < ARP_MAX;
        let held = match self.arp.get_mut(&(i, spa)) {
            // `in_arpinput`: a static entry is not overwritten.
            Some(e) if e.permanent => None,
            Some(e) => {
                e.mac = Some(sha);
                e.at_s = now_s;
                e.tries = 0;
                e.hold.take()
            }
            None if for_us && room => {
                self.arp.insert(
                    (i, spa),
                    ArpEntry {
                        mac: Some(sha),
                        at_s: now_s,
                        tries: 0,
                        hold: None,
                        permanent: false,
                    },
                );
                None
            }
            None => None,
        };
        if let Some(p) = held {
            self.ether_output(i, sha, ETHERTYPE_IP, &p);
        }
        if op == 1 && for_us {
            let r = arp_packet(2, mac, tpa, sha, spa);
            self.ether_output(i, sha, ETHERTYPE_ARP, &r);
        }
    }

    /// `ip6_forward`: hop limit down by one, then out by the route, when
    /// `net.inet6.ip6.forwarding` is 1 (NetBSD's default 0: dropped). Link-local and
    /// multicast packets never leave their link.
    fn forward6(&mut self, i: u32, h: &IpHdr, mut p: Vec<u8>) {
        let (IpAddr::V6(src), IpAddr::V6(dst)) = (h.src, h.dst) else {
            return;
        };
        if !self.forwarding_v6
            || !crate::icmp::can_forward(self, h.dst)
            || i == 1
            || src.is_unspecified()
            || src.is_multicast()
            || src.is_loopback()
            || is_link_local(IpAddr::V6(dst))
            || dst.is_multicast()
            || dst.is_loopback()
            || dst.is_unspecified()
        {
            return;
        }
        if p[7] <= 1 {
            crate::icmp::icmp6_error(self, i, &p, crate::icmp::ICMP6_TIME_EXCEEDED, 0, 0);
            return;
        }
        p[7] -= 1;
        let mcopy = p[..p.len().min(1232)].to_vec();
        let Some(redirect) = crate::icmp::forward6_route(self, i, h, &mcopy) else {
            return;
        };
        if self.forward_too_big(i, h, &p) {
            return;
        }
        self.stats.ip_forward += 1;
        self.output(p);
        if let Some(r) = redirect {
            crate::icmp::icmp6_redirect_output(self, i, &mcopy, &r);
        }
    }

    /// `nd6_output`: sends `p` to `next` on interface `i` once its link address is known
    /// (a STALE entry used goes to DELAY); else holds the newest packet in an INCOMPLETE
    /// entry whose solicitations `nd6::timer` repeats.
    pub(crate) fn nd_resolve(&mut self, i: u32, next: Ipv6Addr, p: Vec<u8>) {
        let now_s = self.uptime_s();
        let src = ip_header(&p).map(|h| h.src);
        if let Some(e) = self.nd.get_mut(&(i, next)) {
            if let Some(mac) = e.mac {
                crate::nd6::used(self, i, next);
                self.ether_output(i, mac, ETHERTYPE_IPV6, &p);
                return;
            }
            e.hold = Some(p);
            return;
        }
        if self.nd.len() >= ND_MAX {
            // Room for the new one: the oldest unresolved entry goes, else the oldest.
            let victim = self
                .nd
                .iter()
                .min_by_key(|(_, e)| (e.mac.is_some(), e.at_s))
                .map(|(k, _)| *k);
            if let Some(k) = victim {
                self.nd.remove(&k);
            }
        }
        let expire_ms = crate::nd6::now_ms(self) + crate::nd6::RETRANS_MS;
        self.nd.insert(
            (i, next),
            NdEntry {
                mac: None,
                state: NdState::Incomplete,
                at_s: now_s,
                expire_ms,
                tries: 1,
                router: false,
                hold: Some(p),
            },
        );
        self.nd6_ns_output(i, next, src, None);
    }

    /// An IPv6 packet (no extension headers) around `payload`.
    pub(crate) fn ipv6_packet(
        src: Ipv6Addr,
        dst: Ipv6Addr,
        next: u8,
        hlim: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0];
        h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        h.extend_from_slice(&[next, hlim]);
        h.extend_from_slice(&src.octets());
        h.extend_from_slice(&dst.octets());
        h.extend_from_slice(payload);
        h
    }

    /// Sends a neighbour discovery message (checksum filled in, hop limit 255 as RFC 4861
    /// requires) on interface `i` to link address `mac`.
    fn icmp6_send(&mut self, i: u32, mac: [u8; 6], src: Ipv6Addr, dst: Ipv6Addr, mut m: Vec<u8>) {
        let c = csum6(src, dst, IPPROTO_ICMPV6, &m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        let p = Self::ipv6_packet(src, dst, IPPROTO_ICMPV6, 255, &m);
        self.ether_output(i, mac, ETHERTYPE_IPV6, &p);
    }

    /// `nd6_dad_timer`: addresses whose solicitation went unanswered are ready.
    pub fn nd6_timer(&mut self) {
        if self.dad.is_empty() {
            return;
        }
        let now_ms = self.start.elapsed().as_millis() as u64;
        let done: Vec<(u32, Ipv6Addr)> = self
            .dad
            .iter()
            .filter(|d| d.2 <= now_ms)
            .map(|d| (d.0, d.1))
            .collect();
        self.dad.retain(|d| d.2 > now_ms);
        for (i, a) in done {
            if let Some(x) = self
                .ifp_mut(i)
                .and_then(|f| f.addrs.iter_mut().find(|x| x.addr == IpAddr::V6(a)))
            {
                x.flags6 &= !IN6_IFF_TENTATIVE;
            }
        }
    }

    /// `nd6_dad_duplicated`: another node has `a` (it defends it or probes for it too).
    fn nd6_dad_duplicated(&mut self, i: u32, a: Ipv6Addr) {
        self.dad.retain(|d| (d.0, d.1) != (i, a));
        if let Some(x) = self
            .ifp_mut(i)
            .and_then(|f| f.addrs.iter_mut().find(|x| x.addr == IpAddr::V6(a)))
        {
            x.flags6 = (x.flags6 & !IN6_IFF_TENTATIVE) | IN6_IFF_DUPLICATED;
        }
    }

    /// `nd6_dad_ns_output`: the probe for tentative `target`, from `::`, no link address.
    fn nd6_dad_ns(&mut self, i: u32, target: Ipv6Addr) {
        let t = target.octets();
        let dst = Ipv6Addr::from([
            0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13], t[14], t[15],
        ]);
        let mut m = vec![ND_NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&t);
        let gmac = [0x33, 0x33, 0xff, t[13], t[14], t[15]];
        self.icmp6_send(i, gmac, Ipv6Addr::UNSPECIFIED, dst, m);
    }

    /// `nd6_ns_output`: a neighbour solicitation for `target` to its solicited-node
    /// group, or (`unicast`, a probe) to the target itself at its cached link address;
    /// from the held packet's source when it is this interface's, else (a probe) the
    /// source for the target, else the interface's link-local address; with our link
    /// address (option 1).
    pub(crate) fn nd6_ns_output(
        &mut self,
        i: u32,
        target: Ipv6Addr,
        src: Option<IpAddr>,
        unicast: Option<[u8; 6]>,
    ) {
        let Some(f) = self.ifp(i) else { return };
        let Some(mac) = f.mac else { return };
        let probe_src = unicast.and_then(|_| f.src_addr(IpAddr::V6(target)));
        let src = match src.or(probe_src) {
            Some(IpAddr::V6(s)) if f.addrs.iter().any(|a| a.addr == IpAddr::V6(s) && a.ready()) => {
                s
            }
            _ => match f
                .addrs
                .iter()
                .find(|a| is_link_local(a.addr) && a.ready())
                .or_else(|| f.addrs.iter().find(|a| a.addr.is_ipv6() && a.ready()))
            {
                Some(IfAddr {
                    addr: IpAddr::V6(a),
                    ..
                }) => *a,
                _ => return,
            },
        };
        let t = target.octets();
        let (dst, gmac) = match unicast {
            Some(m) => (target, m),
            None => (
                crate::mcast::solicited_node(target),
                [0x33, 0x33, 0xff, t[13], t[14], t[15]],
            ),
        };
        let mut m = vec![ND_NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&t);
        m.extend_from_slice(&[1, 1]);
        m.extend_from_slice(&mac);
        self.icmp6_send(i, gmac, src, dst, m);
    }

    /// Neighbour discovery received on interface `i` (`nd6_ns_input`, `nd6_na_input`):
    /// whether the packet was one (then it goes no further). Checked as RFC 4861 asks:
    /// hop limit 255, code 0, a valid checksum, option lengths.
    fn nd6_input(&mut self, i: u32, h: &IpHdr, p: &[u8]) -> bool {
        let m = &p[h.hlen..];
        let Some(&ty) = m.first() else { return false };
        if !(133..=137).contains(&ty) {
            return false;
        }
        let (IpAddr::V6(src), IpAddr::V6(dst)) = (h.src, h.dst) else {
            return true;
        };
        if ty == 134 {
            crate::nd6::ra_input(self, i, h, p);
            return true;
        }
        if ty == crate::icmp::ND_REDIRECT {
            // `icmp6_input`: a redirect with code 0 and its full length goes to
            // `icmp6_redirect_input` and to the raw sockets (ping6 -v prints it).
            crate::icmp::redirect6_input(self, i, h, p);
            if m.len() >= 40 && m[1] == 0 {
                crate::sock::raw_input(self, i, h, p);
            }
            return true;
        }
        if p[7] != 255 || m.len() < 24 || m[1] != 0 || csum6(src, dst, IPPROTO_ICMPV6, m) != 0 {
            return true;
        }
        let t: [u8; 16] = m[8..24].try_into().unwrap_or_default();
        let target = Ipv6Addr::from(t);
        // The link-layer option (1: source, 2: target).
        let mut lla: Option<[u8; 6]> = None;
        let mut o = &m[24..];
        while o.len() >= 2 {
            let len = usize::from(o[1]) * 8;
            if len == 0 || len > o.len() {
                return true;
            }
            if o[0] == 1 || o[0] == 2 {
                lla = o[2..8].try_into().ok();
            }
            o = &o[len..];
        }
        let lla = lla.filter(|m| m[0] & 1 == 0);
        let Some(f) = self.ifp(i) else { return true };
        let Some(mymac) = f.mac else { return true };
        let now_s = self.uptime_s();
        match ty {
            ND_NEIGHBOR_SOLICIT => {
                let Some(ta) = f.addrs.iter().find(|a| a.addr == IpAddr::V6(target)) else {
                    return true;
                };
                if !ta.ready() {
                    // Our own probe is not seen (the bus skips our frames): a probe from
                    // `::` for a tentative address of ours is another node's.
                    if ta.flags6 & IN6_IFF_TENTATIVE != 0 && src.is_unspecified() {
                        self.nd6_dad_duplicated(i, target);
                    }
                    return true;
                }
                if !src.is_unspecified() {
                    if let Some(mac) = lla {
                        self.nd_learn(i, src, mac, NdState::Stale, now_s);
                    }
                }
                // The advertisement: solicited (unless for DAD: then to all nodes),
                // override, router when forwarding.
                let (to, tomac) = if src.is_unspecified() {
                    (
                        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
                        [0x33, 0x33, 0, 0, 0, 1],
                    )
                } else {
                    match lla.or_else(|| self.nd.get(&(i, src)).and_then(|e| e.mac)) {
                        Some(mac) => (src, mac),
                        None => return true,
                    }
                };
                let mut flags = 0x20u8; // override
                if !src.is_unspecified() {
                    flags |= 0x40; // solicited
                }
                if self.forwarding_v6 {
                    flags |= 0x80; // router
                }
                let mut a = vec![ND_NEIGHBOR_ADVERT, 0, 0, 0, flags, 0, 0, 0];
                a.extend_from_slice(&t);
                a.extend_from_slice(&[2, 1]);
                a.extend_from_slice(&mymac);
                self.icmp6_send(i, tomac, target, to, a);
                if !src.is_unspecified() {
                    // `nd6_na_output` goes through `nd6_output`: the entry is used.
                    crate::nd6::used(self, i, src);
                }
            }
            ND_NEIGHBOR_ADVERT => {
                let solicited = m[4] & 0x40 != 0;
                if target.is_multicast() || (solicited && dst.is_multicast()) {
                    return true;
                }
                if f.addrs
                    .iter()
                    .any(|a| a.addr == IpAddr::V6(target) && a.flags6 & IN6_IFF_TENTATIVE != 0)
                {
                    // Someone defends the address we probe for.
                    self.nd6_dad_duplicated(i, target);
                    return true;
                }
                // Only neighbours we have an entry for (`nd6_na_input` ignores others).
                let Some(n) = self.nd.get(&(i, target)) else {
                    return true;
                };
                let st = if solicited {
                    NdState::Reachable
                } else {
                    NdState::Stale
                };
                let is_router = m[4] & 0x80 != 0;
                let was_reachable = n.state == NdState::Reachable;
                let Some(old) = n.mac else {
                    if let Some(mac) = lla {
                        self.nd_learn(i, target, mac, st, now_s);
                        if let Some(n) = self.nd.get_mut(&(i, target)) {
                            n.router = is_router;
                        }
                    }
                    return true;
                };
                if let Some(n) = self.nd.get_mut(&(i, target)) {
                    n.router = is_router;
                }
                let overrides = m[4] & 0x20 != 0;
                let llchange = lla.is_some_and(|l| l != old);
                if !overrides && llchange {
                    // Another address without override: a REACHABLE entry is doubted.
                    if was_reachable {
                        crate::nd6::set_state(self, i, target, NdState::Stale);
                    }
                } else {
                    if let (Some(l), Some(n)) = (lla, self.nd.get_mut(&(i, target))) {
                        n.mac = Some(l);
                    }
                    if solicited || llchange {
                        crate::nd6::set_state(self, i, target, st);
                    }
                }
            }
            _ => {}
        }
        true
    }

    /// Records `mac` for `a` on interface `i` and sends what waited for it.
    pub(crate) fn nd_learn(&mut self, i: u32, a: Ipv6Addr, mac: [u8; 6], st: NdState, now_s: u64) {
        if !self.nd.contains_key(&(i, a)) && self.nd.len() >= ND_MAX {
            return;
        }
        let e = self.nd.entry((i, a)).or_insert(NdEntry {
            mac: None,
            state: NdState::Incomplete,
            at_s: now_s,
            expire_ms: 0,
            tries: 0,
            router: false,
            hold: None,
        });
        // A solicitation from a neighbour already known at that address keeps its state
        // (`nd6_cache_lladdr`: only a new or changed link address makes it STALE).
        let keep = st == NdState::Stale && e.mac == Some(mac);
        e.mac = Some(mac);
        let hold = e.hold.take();
        if !keep {
            e.at_s = now_s;
            e.tries = 0;
            crate::nd6::set_state(self, i, a, st);
        }
        if let Some(p) = hold {
            crate::nd6::used(self, i, a);
            self.ether_output(i, mac, ETHERTYPE_IPV6, &p);
        }
    }

    /// The smoltcp socket behind `h`.
    pub fn tcp(&mut self, h: SocketHandle) -> &mut smoltcp::socket::tcp::Socket<'static> {
        self.sockets.get_mut::<smoltcp::socket::tcp::Socket>(h)
    }

    /// The smoltcp UDP socket behind `h`.
    pub fn udp(&mut self, h: SocketHandle) -> &mut smoltcp::socket::udp::Socket<'static> {
        self.sockets.get_mut::<smoltcp::socket::udp::Socket>(h)
    }
}

fn arp_packet(op: u16, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sha);
    a.extend_from_slice(&spa.octets());
    a.extend_from_slice(&tha);
    a.extend_from_slice(&tpa.octets());
    a
}

/// smoltcp answers echo requests with its hop limit (64); NetBSD's `icmp_reflect` sends
/// them with `MAXTTL` (255), which ping shows.
fn reflect_ttl(p: &mut [u8]) {
    if p.len() >= 28 && p[0] >> 4 == 4 && p[9] == 1 {
        let hlen = usize::from(p[0] & 0xf) * 4;
        if p.get(hlen) == Some(&0) && hlen >= 20 {
            p[8] = crate::sock::MAXTTL;
            p[10] = 0;
            p[11] = 0;
            let c = csum(&p[..hlen]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
    }
}

/// What the stack reads of an IP header.
#[derive(Clone, Debug)]
pub struct IpHdr {
    /// Source.
    pub src: IpAddr,
    /// Destination.
    pub dst: IpAddr,
    /// Protocol (IPv4) or next header (IPv6).
    pub proto: u8,
    /// Header length.
    pub hlen: usize,
    /// Length of the whole packet.
    pub total_len: usize,
}

/// Parses and checks an IP header (version, lengths, IPv4's checksum).
pub fn ip_header(p: &[u8]) -> Option<IpHdr> {
    match p.first()? >> 4 {
        4 => {
            if p.len() < 20 {
                return None;
            }
            let hlen = usize::from(p[0] & 0xf) * 4;
            let total_len = usize::from(u16::from_be_bytes([p[2], p[3]]));
            if hlen < 20 || total_len < hlen || total_len > p.len() || csum(&p[..hlen]) != 0 {
                return None;
            }
            Some(IpHdr {
                src: IpAddr::V4(Ipv4Addr::new(p[12], p[13], p[14], p[15])),
                dst: IpAddr::V4(Ipv4Addr::new(p[16], p[17], p[18], p[19])),
                proto: p[9],
                hlen,
                total_len,
            })
        }
        6 => {
            if p.len() < 40 {
                return None;
            }
            let total_len = 40 + usize::from(u16::from_be_bytes([p[4], p[5]]));
            if total_len > p.len() {
                return None;
            }
            let a = |o: usize| {
                let b: [u8; 16] = p[o..o + 16].try_into().unwrap_or_default();
                IpAddr::V6(Ipv6Addr::from(b))
            };
            Some(IpHdr {
                src: a(8),
                dst: a(24),
                proto: p[6],
                hlen: 40,
                total_len,
            })
        }
        _ => None,
    }
}

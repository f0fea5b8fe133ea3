//! Protocol control blocks (`inpcb`/`tcpcb` as a socket sees them): TCP and UDP over
//! smoltcp's sockets, raw IP sockets of our own. Every operation is non-blocking and
//! answers with NetBSD's errno; a caller that must wait sleeps on the stack's wait queue
//! and asks again (`Stack::wq`, woken after every round of the softint).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use kernel::Errno;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint};

use crate::engine::{Engine, IpHdr};

/// `MAXTTL`: raw IP sends with it (`rip_output`).
pub const MAXTTL: u8 = 255;

/// `tcp_sendspace`/`tcp_recvspace`: each TCP socket's buffers.
pub const TCP_BUF: usize = 32 * 1024;
/// `udp_sendspace`: the largest datagram (`EMSGSIZE` beyond).
pub const UDP_SNDBUF: usize = 9216;
/// `udp_recvspace`.
pub const UDP_RCVBUF: usize = 41600;
/// `rip_sendspace`/`rip_recvspace`.
pub const RAW_BUF: usize = 8192;
/// Most pcbs (sockets of this stack) per kernel.
pub const PCBS_MAX: usize = 1024;
/// smoltcp sockets waiting in a listen queue before accept (per listener, besides the
/// ones accepting handshakes).
const LISTEN_ARMED: usize = 2;
/// How long a closed connection may take to finish (FIN exchange, TIME_WAIT).
const LINGER_S: u64 = 60;
/// `IPPORT_ANONMIN`/`IPPORT_ANONMAX`.
const ANON_MIN: u16 = 49152;

/// Memory a smoltcp TCP socket holds (charged to the kernel's budget).
const TCP_CHARGE: u64 = 2 * TCP_BUF as u64 + 1024;
const UDP_CHARGE: u64 = (UDP_SNDBUF * 2 + UDP_RX_CAP) as u64 + 2048;

/// One pcb.
pub enum Pcb {
    /// SOCK_STREAM.
    Tcp(Tcp),
    /// SOCK_DGRAM.
    Udp(Udp),
    /// SOCK_RAW.
    Raw(Raw),
}

/// A TCP pcb.
pub struct Tcp {
    /// AF_INET6.
    pub v6: bool,
    /// Bound local address (None: any) and port.
    pub local: Option<(Option<IpAddr>, u16)>,
    /// Where it is.
    pub state: TcpState,
    /// `so_error`.
    pub error: Option<Errno>,
    /// Reading was shut down.
    pub rd_shut: bool,
    /// When the connection attempt began (uptime seconds).
    pub connect_at: u64,
    /// `t_softerror`: the last ICMP error about the connection (`tcp_notify`), what a
    /// connection attempt that times out fails with instead of `ETIMEDOUT` (`tcp_drop`).
    pub softerror: Option<Errno>,
    /// `IN6P_IPV6_V6ONLY` (AF_INET6 only): no IPv4 peers.
    pub v6only: bool,
    /// `IPV6_UNICAST_HOPS` for the connection `connect` starts (None: the default).
    pub hops: Option<u8>,
}

/// TCP pcb states as far as the socket layer cares.
pub enum TcpState {
    /// Not connected, not listening.
    Fresh,
    /// Connecting or connected.
    Conn(SocketHandle),
    /// Listening.
    Listen(Listener),
}

/// A listening pcb: smoltcp sockets armed for handshakes and the established ones.
pub struct Listener {
    /// `so_qlimit`.
    pub backlog: usize,
    /// Sockets in LISTEN or SYN-RECEIVED.
    pub armed: Vec<SocketHandle>,
    /// Established, not yet accepted (`so_q`).
    pub ready: VecDeque<SocketHandle>,
}

/// A UDP pcb.
pub struct Udp {
    /// AF_INET6.
    pub v6: bool,
    /// smoltcp's socket.
    pub h: SocketHandle,
    /// Bound local address and port.
    pub local: Option<(Option<IpAddr>, u16)>,
    /// Connected peer.
    pub remote: Option<(IpAddr, u16)>,
    /// `so_error` (an ICMP port unreachable for the connected peer: ECONNREFUSED).
    pub error: Option<Errno>,
    /// `so_snd.sb_hiwat` (`SO_SNDBUF`): the largest datagram (sosend's atomic check).
    pub snd_hiwat: usize,
    /// `so_rcv.sb_hiwat` (`SO_RCVBUF`): a datagram that would not fit with its address
    /// alone is dropped (`sbappendaddr`).
    pub rcv_hiwat: usize,
    /// `IN6P_IPV6_V6ONLY` (AF_INET6 only): no IPv4 peers.
    pub v6only: bool,
    /// Datagrams smoltcp gave another pcb on this port that belong here (an IPv4 one
    /// taken by an AF_INET6 socket while an AF_INET one is bound, ...): see [`udp_sort`].
    pub spill: VecDeque<(Vec<u8>, (IpAddr, u16))>,
    /// Bytes in `spill`.
    pub spill_bytes: usize,
}

/// smoltcp's receive buffer of a UDP socket: room for the largest datagram (a socket's
/// own `SO_RCVBUF` decides what it takes: `Udp::rcv_hiwat`).
const UDP_RX_CAP: usize = 65536 + 2048;

/// A raw pcb (`rawcb`).
pub struct Raw {
    /// AF_INET6.
    pub v6: bool,
    /// Protocol (0: all).
    pub proto: u8,
    /// Received packets and their senders.
    pub q: VecDeque<(Vec<u8>, IpAddr, Option<Rcv6>)>,
    /// Bytes in `q`.
    pub q_bytes: usize,
    /// `so_rcv.sb_hiwat`.
    pub rcv_hiwat: usize,
    /// Bound local address.
    pub local: Option<IpAddr>,
    /// Connected peer.
    pub remote: Option<IpAddr>,
    /// `IP_HDRINCL`.
    pub hdrincl: bool,
    /// `IP_TTL`; `IPV6_UNICAST_HOPS` on AF_INET6.
    pub ttl: u8,
    /// `IN6P_IPV6_V6ONLY` (kept and shown; a raw IPv6 socket gets no IPv4 anyway).
    pub v6only: bool,
    /// `IPV6_RECVPKTINFO`: receives carry `IPV6_PKTINFO` (destination, interface).
    pub recvpktinfo: bool,
    /// `IPV6_RECVHOPLIMIT`: receives carry `IPV6_HOPLIMIT`.
    pub recvhoplimit: bool,
    /// `ICMP6_FILTER`: the ICMPv6 types passed (bit `type` of 256; all by default).
    pub icmp6_filter: [u32; 8],
    /// `IPV6_USE_MIN_MTU`: -1 for multicast only (the default), 0 never, 1 always: sends
    /// bigger than `IPV6_MMTU` are fragmented to it (frag.rs).
    pub use_min_mtu: i32,
    /// `IPV6_RECVPATHMTU`: a packet too big for a destination is told to the socket as an
    /// empty datagram with an `IPV6_PATHMTU` control message (`ip6_notify_pmtu`).
    pub recvpathmtu: bool,
}

/// What a raw IPv6 socket may hand over with a packet: its destination, the interface it
/// came in on and its hop limit.
#[derive(Clone, Copy, Debug)]
pub struct Rcv6 {
    /// `ipi6_addr`.
    pub dst: Ipv6Addr,
    /// `ipi6_ifindex`.
    pub ifindex: u32,
    /// The hop limit it arrived with.
    pub hlim: u8,
    /// A path MTU notification (`IPV6_PATHMTU`) rather than a packet.
    pub pathmtu: Option<u32>,
}

/// `IPPROTO_IPV6`, `IPV6_PKTINFO`, `IPV6_HOPLIMIT`: the control messages a raw IPv6
/// receive carries.
pub const IPPROTO_IPV6: i32 = 41;
const IPV6_PKTINFO: i32 = 46;
const IPV6_HOPLIMIT: i32 = 47;
const IPV6_PATHMTU: i32 = 44;

fn uptime_s(e: &Engine) -> u64 {
    (e.now().total_millis() / 1000) as u64
}

/// Allocates a pcb id.
pub fn insert(e: &mut Engine, p: Pcb) -> Result<u32, Errno> {
    if e.pcbs.len() >= PCBS_MAX {
        return Err(Errno::ENOBUFS);
    }
    let mut id = e.next_pcb;
    while e.pcbs.contains_key(&id) || id == 0 {
        id = id.wrapping_add(1);
    }
    e.next_pcb = id.wrapping_add(1);
    e.pcbs.insert(id, p);
    Ok(id)
}

/// A smoltcp TCP socket; an IPv4 one with `net.inet.ip.ttl` (`tcp_newtcpcb`).
fn new_tcp_socket(e: &mut Engine, v4: bool) -> Result<SocketHandle, Errno> {
    e.budget
        .try_charge(TCP_CHARGE)
        .map_err(|_| Errno::ENOBUFS)?;
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; TCP_BUF]),
        tcp::SocketBuffer::new(vec![0; TCP_BUF]),
    );
    s.set_nagle_enabled(true);
    if v4 && e.ip_ttl != crate::engine::IP_DEFTTL {
        s.set_hop_limit(Some(e.ip_ttl));
    }
    Ok(e.sockets.add(s))
}

fn free_tcp_socket(e: &mut Engine, h: SocketHandle) {
    e.sockets.remove(h);
    e.budget.release(TCP_CHARGE);
}

/// A new pcb for `socket(2)`: `ty` 1 stream, 2 dgram, 3 raw.
pub fn create(e: &mut Engine, v6: bool, ty: i32, proto: i32) -> Result<u32, Errno> {
    match ty {
        1 => {
            if proto != 0 && proto != 6 {
                return Err(Errno::EPROTONOSUPPORT);
            }
            insert(
                e,
                Pcb::Tcp(Tcp {
                    v6,
                    local: None,
                    state: TcpState::Fresh,
                    error: None,
                    rd_shut: false,
                    connect_at: 0,
                    softerror: None,
                    v6only: v6 && e.v6only,
                    hops: None,
                }),
            )
        }
        2 => {
            if proto != 0 && proto != 17 {
                return Err(Errno::EPROTONOSUPPORT);
            }
            if e.pcbs.len() >= PCBS_MAX {
                return Err(Errno::ENOBUFS);
            }
            e.budget
                .try_charge(UDP_CHARGE)
                .map_err(|_| Errno::ENOBUFS)?;
            let mut s = udp::Socket::new(
                udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 64], vec![0; UDP_RX_CAP]),
                udp::PacketBuffer::new(
                    vec![udp::PacketMetadata::EMPTY; 16],
                    vec![0; UDP_SNDBUF * 2],
                ),
            );
            // `udp_attach`: an IPv4 socket takes `net.inet.ip.ttl`.
            if !v6 && e.ip_ttl != crate::engine::IP_DEFTTL {
                s.set_hop_limit(Some(e.ip_ttl));
            }
            let h = e.sockets.add(s);
            insert(
                e,
                Pcb::Udp(Udp {
                    v6,
                    h,
                    local: None,
                    remote: None,
                    error: None,
                    snd_hiwat: UDP_SNDBUF,
                    rcv_hiwat: UDP_RCVBUF,
                    v6only: v6 && e.v6only,
                    spill: VecDeque::new(),
                    spill_bytes: 0,
                }),
            )
        }
        3 => {
            if !(0..=255).contains(&proto) {
                return Err(Errno::EINVAL);
            }
            insert(
                e,
                Pcb::Raw(Raw {
                    v6,
                    proto: proto as u8,
                    q: VecDeque::new(),
                    q_bytes: 0,
                    rcv_hiwat: RAW_BUF,
                    local: None,
                    remote: None,
                    hdrincl: false,
                    ttl: if v6 { crate::engine::IP_DEFTTL } else { MAXTTL },
                    v6only: v6 && e.v6only,
                    recvpktinfo: false,
                    recvhoplimit: false,
                    use_min_mtu: -1,
                    recvpathmtu: false,
                    icmp6_filter: [u32::MAX; 8],
                }),
            )
        }
        _ => Err(Errno::EPROTOTYPE),
    }
}

/// Whether `port` (and `addr`) is taken for a bind by a socket of family `v6` (an IPv4
/// `addr` on an AF_INET6 socket is a v4-mapped one). As NetBSD's rump_server answers
/// (tests/oracle/inet6-opts.netbsd): an IPv4 or v4-mapped bind clashes with AF_INET pcbs
/// and with AF_INET6 ones without IPV6_V6ONLY on `::` or a v4-mapped address; an IPv6
/// bind (`::` included) only with AF_INET6 pcbs on `::` or an IPv6 address.
fn port_in_use(e: &Engine, tcp: bool, port: u16, addr: Option<IpAddr>, v6: bool) -> bool {
    let mapped = v6 && addr.is_some_and(|a| a.is_ipv4());
    let clash = |l: &Option<(Option<IpAddr>, u16)>, pv6: bool, only: bool| match l {
        Some((a, p)) if *p == port => {
            let fam = if !v6 || mapped {
                !pv6 || !only && a.is_none_or(|a| a.is_ipv4())
            } else {
                pv6 && a.is_none_or(|a| a.is_ipv6())
            };
            fam && (a.is_none() || addr.is_none() || *a == addr)
        }
        _ => false,
    };
    e.pcbs.values().any(|p| match p {
        Pcb::Tcp(t) if tcp => clash(&t.local, t.v6, t.v6only),
        Pcb::Udp(u) if !tcp => clash(&u.local, u.v6, u.v6only),
        _ => false,
    })
}

fn anon_port(e: &mut Engine, tcp: bool, v6: bool) -> Result<u16, Errno> {
    let span = u32::from(u16::MAX - ANON_MIN) + 1;
    let start = (e.random() % u64::from(span)) as u32;
    for k in 0..span {
        let p = ANON_MIN + ((start + k) % span) as u16;
        if !port_in_use(e, tcp, p, None, v6) {
            return Ok(p);
        }
    }
    Err(Errno::EAGAIN)
}

/// Whether the pcb is an AF_INET6 TCP or UDP one with `IPV6_V6ONLY`.
pub fn pcb_v6only(e: &Engine, id: u32) -> bool {
    match e.pcbs.get(&id) {
        Some(Pcb::Tcp(t)) => t.v6only,
        Some(Pcb::Udp(u)) => u.v6only,
        Some(Pcb::Raw(r)) => r.v6only,
        None => false,
    }
}

/// `bind(2)`: `addr` None is INADDR_ANY; port 0 picks one.
pub fn bind(e: &mut Engine, id: u32, addr: Option<IpAddr>, port: u16) -> Result<(), Errno> {
    let v6only = match e.pcbs.get(&id) {
        Some(Pcb::Tcp(t)) => t.v6only,
        Some(Pcb::Udp(u)) => u.v6only,
        _ => false,
    };
    // `in6_pcbbind_addr`: a v4-mapped address on an IPv6-only socket is EINVAL.
    if v6only && addr.is_some_and(|a| a.is_ipv4()) {
        return Err(Errno::EINVAL);
    }
    if let Some(a) = addr {
        if !e.is_local(a) && !a.is_unspecified() {
            return Err(Errno::EADDRNOTAVAIL);
        }
    }
    let addr = addr.filter(|a| !a.is_unspecified());
    let (tcp, v6) = match e.pcbs.get(&id) {
        Some(Pcb::Tcp(t)) => {
            if t.local.is_some() || !matches!(t.state, TcpState::Fresh) {
                return Err(Errno::EINVAL);
            }
            (true, t.v6)
        }
        Some(Pcb::Udp(u)) => {
            if u.local.is_some() {
                return Err(Errno::EINVAL);
            }
            (false, u.v6)
        }
        Some(Pcb::Raw(_)) => {
            if let Some(Pcb::Raw(r)) = e.pcbs.get_mut(&id) {
                r.local = addr;
            }
            return Ok(());
        }
        None => return Err(Errno::EBADF),
    };
    let port = if port == 0 {
        anon_port(e, tcp, v6)?
    } else {
        if port_in_use(e, tcp, port, addr, v6) {
            return Err(Errno::EADDRINUSE);
        }
        port
    };
    match e.pcbs.get_mut(&id) {
        Some(Pcb::Tcp(t)) => t.local = Some((addr, port)),
        Some(Pcb::Udp(u)) => {
            u.local = Some((addr, port));
            let h = u.h;
            let ep = IpListenEndpoint {
                addr: addr.map(IpAddress::from),
                port,
            };
            e.udp(h).bind(ep).map_err(|_| Errno::EINVAL)?;
        }
        _ => {}
    }
    Ok(())
}

/// `connect(2)`: starts the handshake (TCP; then wait for [`connect_status`]) or sets
/// the peer (UDP, raw).
pub fn connect(e: &mut Engine, id: u32, addr: IpAddr, port: u16) -> Result<(), Errno> {
    if addr.is_unspecified() {
        return Err(Errno::EADDRNOTAVAIL);
    }
    match e.pcbs.get(&id) {
        Some(Pcb::Tcp(t)) => match &t.state {
            TcpState::Listen(_) => return Err(Errno::EOPNOTSUPP),
            TcpState::Conn(h) => {
                let h = *h;
                return Err(match e.tcp(h).state() {
                    tcp::State::SynSent | tcp::State::SynReceived => Errno::EALREADY,
                    _ => Errno::EISCONN,
                });
            }
            TcpState::Fresh => {}
        },
        Some(Pcb::Udp(_)) | Some(Pcb::Raw(_)) => {}
        None => return Err(Errno::EBADF),
    }
    // `in6_pcbconnect`: a v4-mapped peer on an IPv6-only socket is EINVAL.
    if addr.is_ipv4() && pcb_v6only(e, id) {
        return Err(Errno::EINVAL);
    }
    if port == 0 && !matches!(e.pcbs.get(&id), Some(Pcb::Raw(_))) {
        return Err(Errno::EADDRNOTAVAIL);
    }
    let src = crate::ip6opts::select_source(e, id, addr)?;
    match e.pcbs.get(&id) {
        Some(Pcb::Tcp(t)) => {
            // The SYN's `ip_output` fails at once without a route (EHOSTUNREACH).
            if !e.is_local(addr) && !addr.is_loopback() {
                e.route_check(addr)?;
            }
            let (local, v6, hops) = (t.local, t.v6, t.hops);
            let (laddr, lport) = match local {
                Some((a, p)) => (a.unwrap_or(src), p),
                None => (src, anon_port(e, true, v6)?),
            };
            let h = new_tcp_socket(e, addr.is_ipv4())?;
            if hops.is_some() && addr.is_ipv6() {
                e.tcp(h).set_hop_limit(hops);
            }
            let now = uptime_s(e);
            let keepinit_us = e.icmp.keepinit().as_micros() as u64;
            let r = {
                let cx = e.iface.context();
                let s = e.sockets.get_mut::<tcp::Socket>(h);
                s.set_timeout(Some(smoltcp::time::Duration::from_micros(keepinit_us)));
                s.connect(
                    cx,
                    IpEndpoint::new(addr.into(), port),
                    IpListenEndpoint {
                        addr: Some(laddr.into()),
                        port: lport,
                    },
                )
            };
            if r.is_err() {
                free_tcp_socket(e, h);
                return Err(Errno::EADDRNOTAVAIL);
            }
            if let Some(Pcb::Tcp(t)) = e.pcbs.get_mut(&id) {
                t.local = Some((local.and_then(|l| l.0), lport));
                t.state = TcpState::Conn(h);
                t.connect_at = now;
                t.softerror = None;
            }
            Ok(())
        }
        Some(Pcb::Udp(u)) => {
            let (h, local) = (u.h, u.local);
            if local.is_none() {
                bind(e, id, None, 0)?;
            }
            let _ = h;
            if let Some(Pcb::Udp(u)) = e.pcbs.get_mut(&id) {
                u.remote = Some((addr, port));
                // `in_pcbconnect`/`in6_pcbconnect`: an unbound local address becomes the
                // source the route gives (getsockname shows it; ping6 asks this way).
                if let Some((l @ None, _)) = &mut u.local {
                    *l = Some(src);
                }
            }
            Ok(())
        }
        Some(Pcb::Raw(_)) => {
            if let Some(Pcb::Raw(r)) = e.pcbs.get_mut(&id) {
                r.remote = Some(addr);
            }
            Ok(())
        }
        None => Err(Errno::EBADF),
    }
}

/// Where a connection attempt is: `Ok(true)` connected, `Ok(false)` still trying, or the
/// error that ended it (`ECONNREFUSED`, `ETIMEDOUT`).
pub fn connect_status(e: &mut Engine, id: u32) -> Result<bool, Errno> {
    let now = uptime_s(e);
    let (h, at, soft) = match e.pcbs.get(&id) {
        Some(Pcb::Tcp(Tcp {
            state: TcpState::Conn(h),
            connect_at,
            error,
            softerror,
            ..
        })) => {
            if let Some(err) = error {
                return Err(*err);
            }
            (*h, *connect_at, *softerror)
        }
        Some(Pcb::Tcp(Tcp {
            error: Some(err), ..
        })) => return Err(*err),
        Some(_) => return Err(Errno::ENOTCONN),
        None => return Err(Errno::EBADF),
    };
    match e.tcp(h).state() {
        tcp::State::SynSent | tcp::State::SynReceived => Ok(false),
        tcp::State::Closed => {
            let err = if now.saturating_sub(at) >= e.icmp.keepinit().as_secs() {
                // `tcp_timer_keep` drops it with ETIMEDOUT, which `tcp_drop` turns into
                // the soft error if there is one.
                soft.unwrap_or(Errno::ETIMEDOUT)
            } else {
                Errno::ECONNREFUSED
            };
            if let Some(Pcb::Tcp(t)) = e.pcbs.get_mut(&id) {
                t.error = Some(err);
                t.state = TcpState::Fresh;
            }
            free_tcp_socket(e, h);
            Err(err)
        }
        _ => {
            e.tcp(h).set_timeout(None);
            Ok(true)
        }
    }
}

/// `listen(2)`.
pub fn listen(e: &mut Engine, id: u32, backlog: i32) -> Result<(), Errno> {
    let backlog = backlog.clamp(1, 128) as usize;
    match e.pcbs.get(&id) {
        Some(Pcb::Tcp(t)) => match &t.state {
            TcpState::Fresh => {}
            TcpState::Listen(_) => {
                if let Some(Pcb::Tcp(Tcp {
                    state: TcpState::Listen(l),
                    ..
                })) = e.pcbs.get_mut(&id)
                {
                    l.backlog = backlog;
                }
                return Ok(());
            }
            TcpState::Conn(_) => return Err(Errno::EINVAL),
        },
        Some(_) => return Err(Errno::EOPNOTSUPP),
        None => return Err(Errno::EBADF),
    }
    if matches!(e.pcbs.get(&id), Some(Pcb::Tcp(Tcp { local: None, .. }))) {
        bind(e, id, None, 0)?;
    }
    if let Some(Pcb::Tcp(t)) = e.pcbs.get_mut(&id) {
        t.state = TcpState::Listen(Listener {
            backlog,
            armed: Vec::new(),
            ready: VecDeque::new(),
        });
    }
    arm(e, id);
    if let Some(Pcb::Tcp(Tcp {
        state: TcpState::Listen(l),
        ..
    })) = e.pcbs.get(&id)
    {
        if l.armed.is_empty() {
            return Err(Errno::ENOBUFS);
        }
    }
    Ok(())
}

/// Keeps a listener's armed sockets topped up.
fn arm(e: &mut Engine, id: u32) {
    let (local, want, v6) = match e.pcbs.get(&id) {
        Some(Pcb::Tcp(Tcp {
            local: Some(l),
            state: TcpState::Listen(li),
            v6,
            ..
        })) => {
            let room = li.backlog.saturating_sub(li.ready.len());
            (
                *l,
                room.min(LISTEN_ARMED).saturating_sub(li.armed.len()),
                *v6,
            )
        }
        _ => return,
    };
    for _ in 0..want {
        let Ok(h) = new_tcp_socket(e, !v6) else {
            return;
        };
        let ep = IpListenEndpoint {
            addr: local.0.map(IpAddress::from),
            port: local.1,
        };
        if e.tcp(h).listen(ep).is_err() {
            free_tcp_socket(e, h);
            return;
        }
        if let Some(Pcb::Tcp(Tcp {
            state: TcpState::Listen(li),
            ..
        })) = e.pcbs.get_mut(&id)
        {
            li.armed.push(h);
        }
    }
}

/// After each poll: listeners move established connections to their queue and re-arm;
/// closed connections finish.
pub fn maintain(e: &mut Engine) {
    let ids: Vec<u32> = e
        .pcbs
        .iter()
        .filter(|(_, p)| {
            matches!(
                p,
                Pcb::Tcp(Tcp {
                    state: TcpState::Listen(_),
                    ..
                })
            )
        })
        .map(|(id, _)| *id)
        .collect();
    for id in ids {
        let armed = match e.pcbs.get(&id) {
            Some(Pcb::Tcp(Tcp {
                state: TcpState::Listen(l),
                ..
            })) => l.armed.clone(),
            _ => continue,
        };
        let mut keep = Vec::new();
        let mut done = Vec::new();
        let mut moved = Vec::new();
        for h in armed {
            let st = e.tcp(h).state();
            match st {
                tcp::State::Listen => keep.push(h),
                tcp::State::Closed | tcp::State::TimeWait => free_tcp_socket(e, h),
                _ => {
                    // smoltcp's listening sockets take both families: the peer goes to
                    // the listener NetBSD's `tcp_input` would have found, or is reset.
                    let s = e.tcp(h);
                    let ends = s.remote_endpoint().zip(s.local_endpoint());
                    let to = ends.map(|(r, l)| {
                        let v4 = matches!(r.addr, IpAddress::Ipv4(_));
                        home(e, true, l.port, l.addr.into(), v4)
                    });
                    match to {
                        Some(None) => {
                            let deadline = uptime_s(e) + 1;
                            e.tcp(h).abort();
                            e.closing.push((h, deadline));
                        }
                        Some(Some(t)) if t != id => moved.push((t, h, st)),
                        _ if st == tcp::State::SynReceived => keep.push(h),
                        _ => done.push(h),
                    }
                }
            }
        }
        if let Some(Pcb::Tcp(Tcp {
            state: TcpState::Listen(l),
            ..
        })) = e.pcbs.get_mut(&id)
        {
            l.armed = keep;
            l.ready.extend(done);
        }
        for (t, h, st) in moved {
            if let Some(Pcb::Tcp(Tcp {
                state: TcpState::Listen(l),
                ..
            })) = e.pcbs.get_mut(&t)
            {
                if st == tcp::State::SynReceived {
                    l.armed.push(h);
                } else {
                    l.ready.push_back(h);
                }
            }
        }
        arm(e, id);
    }
    let udps: Vec<u32> = e
        .pcbs
        .iter()
        .filter(|(_, p)| matches!(p, Pcb::Udp(Udp { local: Some(_), .. })))
        .map(|(id, _)| *id)
        .collect();
    for id in udps {
        udp_sort(e, id);
    }
    let now = uptime_s(e);
    let closing = std::mem::take(&mut e.closing);
    for (h, deadline) in closing {
        let st = e.tcp(h).state();
        if st == tcp::State::Closed || st == tcp::State::TimeWait && now >= deadline {
            free_tcp_socket(e, h);
        } else if now >= deadline {
            e.tcp(h).abort();
            e.closing.push((h, deadline));
        } else {
            e.closing.push((h, deadline));
        }
    }
}

/// Whether a pcb of family `v6` (`only`: `IPV6_V6ONLY`) takes a peer of family IPv4
/// (`v4`) or IPv6.
fn takes(v6: bool, only: bool, v4: bool) -> bool {
    if v4 {
        !v6 || !only
    } else {
        v6
    }
}

/// The pcb bound to `port` that NetBSD's `tcp_input`/`udp_input`/`udp6_input` gives a
/// packet from a peer of family `v4` to `dst` (TCP: listeners only): for an IPv4 peer
/// the AF_INET pcbs first (`in_pcblookup_bind`), then AF_INET6 ones without
/// IPV6_V6ONLY (v4-mapped); a bound address before the wildcard.
fn home(e: &Engine, tcp: bool, port: u16, dst: IpAddr, v4: bool) -> Option<u32> {
    let mut best: Option<(u8, u32)> = None;
    for (id, p) in &e.pcbs {
        let (local, v6, only) = match p {
            Pcb::Tcp(t) if tcp && matches!(t.state, TcpState::Listen(_)) => {
                (t.local, t.v6, t.v6only)
            }
            Pcb::Udp(u) if !tcp => (u.local, u.v6, u.v6only),
            _ => continue,
        };
        let Some((a, p)) = local else { continue };
        if p != port || !takes(v6, only, v4) || a.is_some_and(|a| a != dst) {
            continue;
        }
        let rank = u8::from(v4 && v6) * 2 + u8::from(a.is_none());
        if best.is_none_or(|(r, _)| rank < r) {
            best = Some((rank, *id));
        }
    }
    best.map(|b| b.1)
}

/// Datagrams a pcb holds for others at most (`Udp::spill`).
const SPILL_MAX: usize = 64;

/// smoltcp hands a datagram to the first socket bound to its port, whatever its family:
/// the ones at the front of pcb `id`'s queue that NetBSD would give another pcb (an
/// IPv4 datagram while an AF_INET socket is bound beside an AF_INET6 one) move to that
/// pcb's `spill`; those no pcb takes (IPv4 to an IPv6-only socket) are dropped.
fn udp_sort(e: &mut Engine, id: u32) {
    loop {
        let (h, bound) = match e.pcbs.get(&id) {
            Some(Pcb::Udp(u)) => match u.local {
                Some((a, p)) => (u.h, (a, p)),
                None => return,
            },
            _ => return,
        };
        let Ok((_, m)) = e.udp(h).peek() else { return };
        let v4 = matches!(m.endpoint.addr, IpAddress::Ipv4(_));
        let dst: Option<IpAddr> = m.local_address.map(Into::into);
        let dst = dst.or(bound.0).unwrap_or(if v4 {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        });
        let to = home(e, false, bound.1, dst, v4);
        if to == Some(id) {
            return;
        }
        let Ok((d, m)) = e.udp(h).recv() else { return };
        let (d, from) = (d.to_vec(), (m.endpoint.addr.into(), m.endpoint.port));
        let budget = e.budget.clone();
        if let Some(Pcb::Udp(t)) = to.and_then(|t| e.pcbs.get_mut(&t)) {
            if t.spill.len() < SPILL_MAX
                && t.spill_bytes + d.len() <= t.rcv_hiwat
                && budget.try_charge(d.len() as u64).is_ok()
            {
                t.spill_bytes += d.len();
                t.spill.push_back((d, from));
            }
        }
    }
}

/// `accept(2)`: the next established connection, as a new pcb (`None`: none yet).
pub fn accept(e: &mut Engine, id: u32) -> Result<Option<u32>, Errno> {
    let h = match e.pcbs.get_mut(&id) {
        Some(Pcb::Tcp(Tcp {
            state: TcpState::Listen(l),
            ..
        })) => l.ready.pop_front(),
        Some(Pcb::Tcp(_)) => return Err(Errno::EINVAL),
        Some(_) => return Err(Errno::EOPNOTSUPP),
        None => return Err(Errno::EBADF),
    };
    let Some(h) = h else { return Ok(None) };
    let v6 = matches!(e.pcbs.get(&id), Some(Pcb::Tcp(Tcp { v6: true, .. })));
    let v6only = matches!(e.pcbs.get(&id), Some(Pcb::Tcp(Tcp { v6only: true, .. })));
    let port = e.tcp(h).local_endpoint().map(|l| l.port).unwrap_or(0);
    let nid = insert(
        e,
        Pcb::Tcp(Tcp {
            v6,
            local: Some((None, port)),
            state: TcpState::Conn(h),
            error: None,
            rd_shut: false,
            connect_at: 0,
            softerror: None,
            v6only,
            hops: None,
        }),
    );
    match nid {
        Ok(n) => {
            // Accepted connections share the listener's port: not a bind clash.
            if let Some(Pcb::Tcp(t)) = e.pcbs.get_mut(&n) {
                t.local = None;
            }
            arm(e, id);
            Ok(Some(n))
        }
        Err(err) => {
            e.tcp(h).abort();
            e.closing.push((h, uptime_s(e) + 1));
            Err(err)
        }
    }
}

/// Listener has connections waiting.
pub fn acceptable(e: &Engine, id: u32) -> bool {
    matches!(e.pcbs.get(&id), Some(Pcb::Tcp(Tcp { state: TcpState::Listen(l), .. })) if !l.ready.is_empty())
}

/// `sosend` on a stream: bytes taken (0: no room now, wait).
pub fn tcp_send(e: &mut Engine, id: u32, data: &[u8]) -> Result<usize, Errno> {
    let h = match e.pcbs.get(&id) {
        Some(Pcb::Tcp(Tcp {
            state: TcpState::Conn(h),
            ..
        })) => *h,
        Some(Pcb::Tcp(Tcp {
            error: Some(err), ..
        })) => return Err(*err),
        Some(Pcb::Tcp(_)) => return Err(Errno::ENOTCONN),
        Some(_) => return Err(Errno::EOPNOTSUPP),
        None => return Err(Errno::EBADF),
    };
    let s = e.tcp(h);
    match s.state() {
        // `sosend` on a socket still connecting: ENOTCONN, as NetBSD.
        tcp::State::SynSent | tcp::State::SynReceived => return Err(Errno::ENOTCONN),
        tcp::State::Established | tcp::State::CloseWait => {}
        _ => return Err(Errno::EPIPE),
    }
    s.send_slice(data).map_err(|_| Errno::EPIPE)
}

/// Room in a stream's send buffer.
pub fn tcp_send_space(e: &mut Engine, id: u32) -> usize {
    match e.pcbs.get(&id) {
        Some(Pcb::Tcp(Tcp {
            state: TcpState::Conn(h),
            ..
        })) => {
            let h = *h;
            let s = e.tcp(h);
            s.send_capacity() - s.send_queue()
        }
        _ => 0,
    }
}

/// `soreceive` on a stream: `Some(n)` bytes (0: end of stream), `None`: nothing yet.
pub fn tcp_recv(
    e: &mut Engine,
    id: u32,
    buf: &mut [u8],
    peek: bool,
) -> Result<Option<usize>, Errno> {
    let (h, rd_shut) = match e.pcbs.get(&id) {
        Some(Pcb::Tcp(Tcp {
            state: TcpState::Conn(h),
            rd_shut,
            ..
        })) => (*h, *rd_shut),
        Some(Pcb::Tcp(Tcp {
            error: Some(err), ..
        })) => return Err(*err),
        Some(Pcb::Tcp(_)) => return Err(Errno::ENOTCONN),
        Some(_) => return Err(Errno::EOPNOTSUPP),
        None => return Err(Errno::EBADF),
    };
    if rd_shut {
        return Ok(Some(0));
    }
    let s = e.tcp(h);
    if s.can_recv() {
        let n = if peek {
            s.peek_slice(buf)
        } else {
            s.recv_slice(buf)
        };
        return Ok(Some(n.unwrap_or(0)));
    }
    match s.state() {
        tcp::State::SynSent | tcp::State::SynReceived => Ok(None),
        _ if s.may_recv() => Ok(None),
        _ => Ok(Some(0)),
    }
}

/// Bytes waiting to be read.
pub fn recv_queue(e: &mut Engine, id: u32) -> usize {
    match e.pcbs.get(&id) {
        Some(Pcb::Tcp(Tcp {
            state: TcpState::Conn(h),
            ..
        })) => {
            let h = *h;
            e.tcp(h).recv_queue()
        }
        Some(Pcb::Udp(u)) => {
            if let Some((d, _)) = u.spill.front() {
                return d.len();
            }
            udp_sort(e, id);
            let Some(Pcb::Udp(u)) = e.pcbs.get(&id) else {
                return 0;
            };
            let h = u.h;
            crate::mcast::pending(e, id)
                .unwrap_or_else(|| e.udp(h).peek().map(|(d, _)| d.len()).unwrap_or(0))
        }
        Some(Pcb::Raw(r)) => r.q.front().map(|(d, _, _)| d.len()).unwrap_or(0),
        _ => 0,
    }
}

/// Whether a read would not wait (data, end of stream, an error).
pub fn readable(e: &mut Engine, id: u32) -> bool {
    match e.pcbs.get(&id) {
        Some(Pcb::Tcp(Tcp {
            state: TcpState::Listen(l),
            ..
        })) => !l.ready.is_empty(),
        Some(Pcb::Tcp(Tcp {
            state: TcpState::Conn(h),
            rd_shut,
            ..
        })) => {
            let (h, rd) = (*h, *rd_shut);
            let s = e.tcp(h);
            rd || s.can_recv()
                || !s.may_recv()
                    && !matches!(s.state(), tcp::State::SynSent | tcp::State::SynReceived)
        }
        Some(Pcb::Tcp(t)) => t.error.is_some(),
        Some(Pcb::Udp(u)) => {
            let (h, err) = (u.h, u.error.is_some() || !u.spill.is_empty());
            udp_sort(e, id);
            err || crate::mcast::pending(e, id).is_some() || e.udp(h).can_recv()
        }
        Some(Pcb::Raw(r)) => !r.q.is_empty(),
        None => true,
    }
}

/// Whether a write would not wait.
pub fn writable(e: &mut Engine, id: u32) -> bool {
    match e.pcbs.get(&id) {
        Some(Pcb::Tcp(Tcp {
            state: TcpState::Conn(h),
            ..
        })) => {
            let h = *h;
            let s = e.tcp(h);
            match s.state() {
                tcp::State::SynSent | tcp::State::SynReceived => false,
                tcp::State::Established | tcp::State::CloseWait => s.can_send(),
                _ => true,
            }
        }
        Some(Pcb::Tcp(Tcp {
            state: TcpState::Listen(_),
            ..
        })) => false,
        Some(Pcb::Tcp(t)) => t.error.is_some(),
        _ => true,
    }
}

/// `shutdown(2)`: `how` 0 read, 1 write, 2 both.
pub fn shutdown(e: &mut Engine, id: u32, how: i32) -> Result<(), Errno> {
    match e.pcbs.get_mut(&id) {
        Some(Pcb::Tcp(t)) => {
            let TcpState::Conn(h) = t.state else {
                return Err(Errno::ENOTCONN);
            };
            if how != 1 {
                t.rd_shut = true;
            }
            if how != 0 {
                e.tcp(h).close();
            }
            Ok(())
        }
        Some(Pcb::Udp(u)) => {
            if u.remote.is_none() {
                return Err(Errno::ENOTCONN);
            }
            Ok(())
        }
        Some(Pcb::Raw(_)) => Ok(()),
        None => Err(Errno::EBADF),
    }
}

/// The socket's last close (`soclose`): a connection finishes in the background.
pub fn close(e: &mut Engine, id: u32) {
    let Some(p) = e.pcbs.remove(&id) else { return };
    crate::mcast::pcb_detach(e, id);
    crate::ip6opts::pcb_detach(e, id);
    match p {
        Pcb::Tcp(t) => match t.state {
            TcpState::Fresh => {}
            TcpState::Conn(h) => {
                let s = e.tcp(h);
                if s.state() == tcp::State::Closed {
                    free_tcp_socket(e, h);
                } else {
                    s.close();
                    let d = uptime_s(e) + LINGER_S;
                    e.closing.push((h, d));
                }
            }
            TcpState::Listen(l) => {
                for h in l.armed.into_iter().chain(l.ready) {
                    e.tcp(h).abort();
                    let d = uptime_s(e) + 1;
                    e.closing.push((h, d));
                }
            }
        },
        Pcb::Udp(u) => {
            e.sockets.remove(u.h);
            e.budget.release(UDP_CHARGE + u.spill_bytes as u64);
        }
        Pcb::Raw(r) => {
            e.budget.release(r.q_bytes as u64);
        }
    }
}

/// `getsockname`/`getpeername` for the pcb: (address, port).
pub fn name(e: &mut Engine, id: u32, peer: bool) -> Result<Option<(IpAddr, u16)>, Errno> {
    let any = |v6: bool| {
        if v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        }
    };
    match e.pcbs.get(&id) {
        Some(Pcb::Tcp(t)) => {
            let (v6, local) = (t.v6, t.local);
            match t.state {
                TcpState::Conn(h) => {
                    let s = e.tcp(h);
                    let ep = if peer {
                        s.remote_endpoint()
                    } else {
                        s.local_endpoint()
                    };
                    match ep {
                        Some(ep) => Ok(Some((ep.addr.into(), ep.port))),
                        None if peer => Err(Errno::ENOTCONN),
                        None => Ok(Some((any(v6), local.map(|l| l.1).unwrap_or(0)))),
                    }
                }
                _ if peer => Err(Errno::ENOTCONN),
                _ => Ok(Some(match local {
                    Some((a, p)) => (a.unwrap_or(any(v6)), p),
                    None => (any(v6), 0),
                })),
            }
        }
        Some(Pcb::Udp(u)) => {
            if peer {
                return u.remote.map(Some).ok_or(Errno::ENOTCONN);
            }
            Ok(Some(match u.local {
                Some((a, p)) => (a.unwrap_or(any(u.v6)), p),
                None => (any(u.v6), 0),
            }))
        }
        Some(Pcb::Raw(r)) => {
            if peer {
                return r.remote.map(|a| Some((a, 0))).ok_or(Errno::ENOTCONN);
            }
            Ok(Some((r.local.unwrap_or(any(r.v6)), 0)))
        }
        None => Err(Errno::EBADF),
    }
}

/// `sendto` on a datagram or raw socket; `to` None uses the connected peer.
/// `opts`: an AF_INET6 send's packet options (`ip6opts.rs`).
pub fn dgram_send(
    e: &mut Engine,
    id: u32,
    data: &[u8],
    to: Option<(IpAddr, u16)>,
    opts: crate::ip6opts::Out,
) -> Result<usize, Errno> {
    if let Some(Pcb::Udp(u)) = e.pcbs.get_mut(&id) {
        if let Some(err) = u.error.take() {
            return Err(err);
        }
    }
    match e.pcbs.get(&id) {
        Some(Pcb::Udp(u)) => {
            let (h, remote, local, v6) = (u.h, u.remote, u.local, u.v6);
            let dst = match (to, remote) {
                (Some(_), Some(_)) => return Err(Errno::EISCONN),
                (Some(t), None) => t,
                (None, Some(r)) => r,
                // `sosend`: unconnected and no address.
                (None, None) => return Err(Errno::EDESTADDRREQ),
            };
            // `udp6_output`: a v4-mapped destination on an IPv6-only socket is EINVAL.
            if dst.0.is_ipv4() && u.v6only {
                return Err(Errno::EINVAL);
            }
            // sosend: beyond `SO_SNDBUF` is EMSGSIZE; `udp_output`/`udp6_output`: so is
            // what IP cannot carry (65535 less the IPv4 and UDP headers; IPv6's payload
            // length less the UDP header).
            let ip_max = if v6 { 65535 - 8 } else { 65535 - 28 };
            if data.len() > u.snd_hiwat || data.len() > ip_max {
                return Err(Errno::EMSGSIZE);
            }
            if dst.1 == 0 {
                return Err(Errno::EADDRNOTAVAIL);
            }
            if dst.0.is_multicast() {
                // Multicast is ours (`mcast.rs`), never smoltcp's.
                if local.is_none() {
                    bind(e, id, None, 0)?;
                }
                let local = match e.pcbs.get(&id) {
                    Some(Pcb::Udp(u)) => u.local.unwrap_or((None, 0)),
                    _ => return Err(Errno::EBADF),
                };
                return crate::mcast::udp_output(e, id, local, dst, data);
            }
            // `ip_output`: no route is EHOSTUNREACH for a datagram.
            if !e.is_local(dst.0) && !dst.0.is_loopback() {
                e.route_check(dst.0)?;
            }
            let src = match local.and_then(|l| l.0) {
                Some(a) => a,
                None if dst.0.is_ipv6() => crate::ip6opts::source_for(e, &opts.pktinfo, dst.0)?,
                None => e.select_source(dst.0)?,
            };
            if local.is_none() {
                bind(e, id, None, 0)?;
            }
            if data.len() > e.udp(h).payload_send_capacity() / 2 {
                // Bigger than smoltcp's send buffer takes (SO_SNDBUF raised): out as a
                // datagram of our own.
                let sport = match e.pcbs.get(&id) {
                    Some(Pcb::Udp(u)) => u.local.map_or(0, |l| l.1),
                    _ => 0,
                };
                let hlim = e.udp(h).hop_limit();
                return udp_output_big(e, src, sport, dst, data, hlim);
            }
            let meta = udp::UdpMetadata {
                endpoint: IpEndpoint::new(dst.0.into(), dst.1),
                local_address: Some(src.into()),
                meta: Default::default(),
            };
            match e.udp(h).send_slice(data, meta) {
                Ok(()) => Ok(data.len()),
                Err(udp::SendError::BufferFull) => Err(Errno::ENOBUFS),
                Err(udp::SendError::Unaddressable) => Err(Errno::EADDRNOTAVAIL),
            }
        }
        Some(Pcb::Raw(r)) => {
            let dst = match (to, r.remote) {
                (Some(_), Some(_)) => return Err(Errno::EISCONN),
                (Some(t), None) => t.0,
                (None, Some(a)) => a,
                // `sosend`: unconnected and no address.
                (None, None) => return Err(Errno::EDESTADDRREQ),
            };
            let (v6, proto, local, hdrincl, ttl) = (r.v6, r.proto, r.local, r.hdrincl, r.ttl);
            if v6 {
                let min_mtu = r.use_min_mtu == 1
                    || (r.use_min_mtu == -1 && matches!(dst, IpAddr::V6(d) if d.is_multicast()));
                return raw6_output(e, id, proto, local, ttl, dst, data, opts, min_mtu);
            }
            if data.len() > RAW_BUF.max(65535 - 20) {
                return Err(Errno::EMSGSIZE);
            }
            // To a group with `IP_MULTICAST_IF`: out of that interface, no route needed.
            let mo = dst
                .is_multicast()
                .then(|| crate::mcast::opts_of(e, id))
                .filter(|m| m.if_index != 0);
            e.route_check(dst).or_else(|err| {
                if let Some(m) = &mo {
                    Ok(crate::route::Route {
                        dst,
                        prefix: 32,
                        gateway: None,
                        ifindex: m.if_index,
                        flags: 0,
                    })
                } else if e.is_local(dst) || dst.is_loopback() {
                    Ok(crate::route::Route {
                        dst,
                        prefix: 32,
                        gateway: None,
                        ifindex: 1,
                        flags: 0,
                    })
                } else {
                    Err(err)
                }
            })?;
            let pkt = if hdrincl {
                // `rip_output` with IP_HDRINCL: ip_len and ip_off in host order, ip_len the
                // whole packet; a zero source or id is filled in, the checksum computed.
                if data.len() < 20 || data[0] >> 4 != 4 {
                    return Err(Errno::EINVAL);
                }
                let hlen = usize::from(data[0] & 0xf) * 4;
                let len = usize::from(u16::from_le_bytes([data[2], data[3]]));
                if hlen < 20 || hlen > data.len() || len != data.len() {
                    return Err(Errno::EINVAL);
                }
                let mut p = data.to_vec();
                p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                let off = u16::from_le_bytes([data[6], data[7]]);
                p[6..8].copy_from_slice(&off.to_be_bytes());
                if p[12..16] == [0; 4] {
                    if let IpAddr::V4(s4) = e.select_source(dst)? {
                        p[12..16].copy_from_slice(&s4.octets());
                    }
                }
                if p[4..6] == [0; 2] {
                    let id = e.next_ip_id();
                    p[4..6].copy_from_slice(&id.to_be_bytes());
                }
                // `ip_output`: DF and bigger than the way out is EMSGSIZE (ping -D -s).
                if off & 0x4000 != 0 && e.path_mtu(dst).is_some_and(|m| len > m) {
                    return Err(Errno::EMSGSIZE);
                }
                p[10] = 0;
                p[11] = 0;
                let c = crate::engine::csum(&p[..hlen]);
                p[10..12].copy_from_slice(&c.to_be_bytes());
                p
            } else {
                let src = match local {
                    Some(a) => a,
                    None => e.select_source(dst)?,
                };
                let (IpAddr::V4(s4), IpAddr::V4(d4)) = (src, dst) else {
                    return Err(Errno::EAFNOSUPPORT);
                };
                // `rip_output`: MAXTTL whatever IP_TTL says (it is kept for getsockopt).
                let _ = ttl;
                e.ipv4_packet(s4, d4, proto, MAXTTL, data)
            };
            if dst.is_multicast() {
                // `ip_output`: a group's TTL is `IP_MULTICAST_TTL` (1 by default), raw
                // headers included; out of `IP_MULTICAST_IF` or the route's interface.
                let m = crate::mcast::opts_of(e, id);
                let i = match m.if_index {
                    0 => e.route_check(dst)?.ifindex,
                    i => i,
                };
                let mut pkt = pkt;
                let hlen = usize::from(pkt[0] & 0xf) * 4;
                pkt[8] = m.ttl;
                pkt[10] = 0;
                pkt[11] = 0;
                let c = crate::engine::csum(&pkt[..hlen]);
                pkt[10..12].copy_from_slice(&c.to_be_bytes());
                crate::mcast::output_on(e, i, dst, pkt, m.mloop);
                return Ok(data.len());
            }
            e.output(pkt);
            Ok(data.len())
        }
        Some(Pcb::Tcp(_)) => Err(Errno::EOPNOTSUPP),
        None => Err(Errno::EBADF),
    }
}

/// A UDP datagram too big for smoltcp's send buffer, made here: the UDP header and its
/// checksum, the IP header (hop limit the socket's or 64), then `output` (which fragments).
fn udp_output_big(
    e: &mut Engine,
    src: IpAddr,
    sport: u16,
    dst: (IpAddr, u16),
    data: &[u8],
    hlim: Option<u8>,
) -> Result<usize, Errno> {
    let mut m = Vec::with_capacity(8 + data.len());
    m.extend_from_slice(&sport.to_be_bytes());
    m.extend_from_slice(&dst.1.to_be_bytes());
    m.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(data);
    let hlim = hlim.unwrap_or(crate::engine::IP_DEFTTL);
    let p = match (src, dst.0) {
        (IpAddr::V4(s4), IpAddr::V4(d4)) => {
            let mut b = Vec::with_capacity(12 + m.len());
            b.extend_from_slice(&s4.octets());
            b.extend_from_slice(&d4.octets());
            b.extend_from_slice(&[0, 17]);
            b.extend_from_slice(&(m.len() as u16).to_be_bytes());
            b.extend_from_slice(&m);
            let c = match crate::engine::csum(&b) {
                0 => 0xffff,
                c => c,
            };
            m[6..8].copy_from_slice(&c.to_be_bytes());
            e.ipv4_packet(s4, d4, 17, hlim, &m)
        }
        (IpAddr::V6(s6), IpAddr::V6(d6)) => {
            let c = match crate::engine::csum6(s6, d6, 17, &m) {
                0 => 0xffff,
                c => c,
            };
            m[6..8].copy_from_slice(&c.to_be_bytes());
            let mut p = vec![0x60, 0, 0, 0];
            p.extend_from_slice(&(m.len() as u16).to_be_bytes());
            p.extend_from_slice(&[17, hlim]);
            p.extend_from_slice(&s6.octets());
            p.extend_from_slice(&d6.octets());
            p.extend_from_slice(&m);
            p
        }
        _ => return Err(Errno::EAFNOSUPPORT),
    };
    e.output(p);
    Ok(data.len())
}

/// `rip6_output`: the payload behind an IPv6 header of ours (no `IPV6_HDRINCL` in
/// NetBSD), hop limit `IPV6_UNICAST_HOPS` (`ip6_defhlim` 64 by default), an ICMPv6 payload's checksum computed by the kernel
/// (`in6p_cksum` 2 for ICMPv6 sockets).
/// An interface from `IPV6_PKTINFO` (or, to a group, `IPV6_MULTICAST_IF`) sends out of
/// it without a route; the hop limit of a control message or, to a group,
/// `IPV6_MULTICAST_HOPS` goes before `IPV6_UNICAST_HOPS`.
#[allow(clippy::too_many_arguments)]
fn raw6_output(
    e: &mut Engine,
    id: u32,
    proto: u8,
    local: Option<IpAddr>,
    hlim: u8,
    dst: IpAddr,
    data: &[u8],
    opts: crate::ip6opts::Out,
    min_mtu: bool,
) -> Result<usize, Errno> {
    let IpAddr::V6(d6) = dst else {
        return Err(Errno::EAFNOSUPPORT);
    };
    if data.len() > crate::frag::IP_MAXPACKET {
        // `IPV6_MAXPACKET` of payload; bigger than the way out is fragmented (frag.rs).
        return Err(Errno::EMSGSIZE);
    }
    let mo = crate::mcast::opts_of(e, id);
    let ifindex = match opts.pktinfo.ifindex {
        0 if d6.is_multicast() => mo.if_index,
        i => i,
    };
    let route_ok = e.is_local(dst) || d6.is_loopback() || d6.is_multicast() || ifindex != 0;
    if !route_ok {
        e.route_check(dst)?;
    }
    let hlim = match (opts.hlim, d6.is_multicast()) {
        (Some(h), _) => h,
        (None, true) => mo.ttl,
        (None, false) => hlim,
    };
    let src = match (opts.pktinfo.addr, local) {
        (Some(_), _) => crate::ip6opts::source_for(e, &opts.pktinfo, dst)?,
        (None, Some(a)) => a,
        (None, None) if ifindex != 0 => crate::ip6opts::source_for(
            e,
            &crate::ip6opts::PktInfo {
                addr: None,
                ifindex,
            },
            dst,
        )?,
        (None, None) if d6.is_multicast() => e
            .ifs
            .iter()
            .filter(|f| f.flags & crate::ifnet::IFF_LOOPBACK == 0)
            .find_map(|f| f.first_addr(true))
            .ok_or(Errno::EADDRNOTAVAIL)?,
        (None, None) => e.select_source(dst)?,
    };
    let IpAddr::V6(s6) = src else {
        return Err(Errno::EADDRNOTAVAIL);
    };
    let mut m = data.to_vec();
    if proto == crate::engine::IPPROTO_ICMPV6 {
        if m.len() < 4 {
            return Err(Errno::EINVAL);
        }
        m[2] = 0;
        m[3] = 0;
        let c = crate::engine::csum6(s6, d6, proto, &m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
    }
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(m.len() as u16).to_be_bytes());
    p.extend_from_slice(&[proto, hlim]);
    p.extend_from_slice(&s6.octets());
    p.extend_from_slice(&d6.octets());
    p.extend_from_slice(&m);
    // `IPV6_USE_MIN_MTU`: fragmented to IPV6_MMTU whatever the path's MTU.
    let pkts = match crate::engine::ip_header(&p) {
        Some(h) if min_mtu && p.len() > crate::frag::IPV6_MMTU => {
            e.fit_mtu(&h, p, crate::frag::IPV6_MMTU)
        }
        _ => vec![p],
    };
    for q in pkts {
        if ifindex != 0 && !e.is_local(dst) {
            crate::mcast::output_on(e, ifindex, dst, q, mo.mloop);
        } else {
            e.output(q);
        }
    }
    Ok(data.len())
}

/// `recvfrom` on a datagram or raw socket: the datagram (truncated to `max`), its full
/// length and its sender; `None`: nothing yet.
/// Control messages asked for come as (`cmsg_level`, `cmsg_type`, data).
#[allow(clippy::type_complexity)]
pub fn dgram_recv(
    e: &mut Engine,
    id: u32,
    max: usize,
    peek: bool,
) -> Result<Option<(Vec<u8>, usize, (IpAddr, u16), Vec<(i32, i32, Vec<u8>)>)>, Errno> {
    match e.pcbs.get_mut(&id) {
        Some(Pcb::Udp(u)) => {
            if let Some(err) = u.error.take() {
                return Err(err);
            }
            let (h, remote) = (u.h, u.remote);
            // `sbappendaddr`: the datagram with its address must fit `SO_RCVBUF`.
            let room = u.rcv_hiwat.saturating_sub(if u.v6 { 28 } else { 16 });
            if !u.spill.is_empty() {
                let got = if peek {
                    u.spill.front().cloned()
                } else {
                    u.spill.pop_front()
                };
                if let Some((d, from)) = got {
                    if !peek {
                        u.spill_bytes -= d.len();
                        e.budget.release(d.len() as u64);
                    }
                    let n = d.len();
                    return Ok(Some((d[..n.min(max)].to_vec(), n, from, Vec::new())));
                }
            }
            if let Some((d, n, from)) = crate::mcast::recv(e, id, max, peek) {
                return Ok(Some((d, n, from, Vec::new())));
            }
            udp_sort(e, id);
            let s = e.sockets.get_mut::<udp::Socket>(h);
            loop {
                let got = if peek {
                    s.peek().map(|(d, m)| (d, *m))
                } else {
                    s.recv()
                };
                let Ok((d, m)) = got else { return Ok(None) };
                let from: (IpAddr, u16) = (m.endpoint.addr.into(), m.endpoint.port);
                if d.len() > room {
                    if peek {
                        let _ = s.recv();
                    }
                    continue;
                }
                if let Some(r) = remote {
                    if r != from {
                        if peek {
                            let _ = s.recv();
                        }
                        continue;
                    }
                }
                let n = d.len();
                return Ok(Some((d[..n.min(max)].to_vec(), n, from, Vec::new())));
            }
        }
        Some(Pcb::Raw(r)) => {
            let (pktinfo, hoplimit) = (r.recvpktinfo, r.recvhoplimit);
            let Some((d, from, rcv)) = (if peek {
                r.q.front().cloned()
            } else {
                r.q.pop_front()
            }) else {
                return Ok(None);
            };
            if !peek {
                r.q_bytes -= d.len();
                e.budget.release(d.len() as u64);
            }
            let n = d.len();
            let mut ctl = Vec::new();
            if let Some(mtu) = rcv.and_then(|m| m.pathmtu) {
                // `struct ip6_mtuinfo`: the destination's sockaddr_in6, then the MTU.
                let mut b = vec![28, 24, 0, 0, 0, 0, 0, 0];
                if let IpAddr::V6(a) = from {
                    b.extend_from_slice(&a.octets());
                }
                b.extend_from_slice(&[0; 4]);
                b.extend_from_slice(&mtu.to_le_bytes());
                ctl.push((IPPROTO_IPV6, IPV6_PATHMTU, b));
            } else if let Some(m) = rcv {
                if pktinfo {
                    // `struct in6_pktinfo`: the address, then the interface index.
                    let mut b = m.dst.octets().to_vec();
                    b.extend_from_slice(&m.ifindex.to_le_bytes());
                    ctl.push((IPPROTO_IPV6, IPV6_PKTINFO, b));
                }
                if hoplimit {
                    ctl.push((
                        IPPROTO_IPV6,
                        IPV6_HOPLIMIT,
                        i32::from(m.hlim).to_le_bytes().to_vec(),
                    ));
                }
            }
            Ok(Some((d[..n.min(max)].to_vec(), n, (from, 0), ctl)))
        }
        Some(Pcb::Tcp(_)) => Err(Errno::EOPNOTSUPP),
        None => Err(Errno::EBADF),
    }
}

/// `rip_input`: a copy of a packet for us to every raw socket of its protocol (ICMP echo
/// requests, which the stack answers, excepted, as NetBSD's `icmp_input` does).
pub fn raw_input(e: &mut Engine, i: u32, h: &IpHdr, p: &[u8]) {
    // An echo request to one of our addresses is answered by `icmp_input`, not given to
    // the raw sockets; one to a broadcast or multicast address is (not answered).
    if h.proto == 1 && p.get(h.hlen) == Some(&8) && e.is_local(h.dst) {
        return;
    }
    let budget = e.budget.clone();
    let ifindex_ll = e.ifindex_of_addr(h.dst);
    for pcb in e.pcbs.values_mut() {
        let Pcb::Raw(r) = pcb else { continue };
        if r.v6 != h.dst.is_ipv6()
            || r.proto != 0 && r.proto != h.proto
            || r.local.is_some_and(|a| a != h.dst)
            || r.remote.is_some_and(|a| a != h.src)
        {
            continue;
        }
        if r.v6 && h.proto == crate::engine::IPPROTO_ICMPV6 {
            // `ICMP6_FILTER_WILLPASS`.
            let ty = usize::from(p.get(h.hlen).copied().unwrap_or(0));
            if r.icmp6_filter[ty >> 5] & (1 << (ty & 31)) == 0 {
                continue;
            }
        }
        let rcv = match h.dst {
            IpAddr::V6(dst) => Some(Rcv6 {
                dst,
                // Looped to a link-local address of ours: received on its interface, as
                // NetBSD's `ip6_output` keeps the zone's interface (`origifp`).
                ifindex: if i == 1 && crate::engine::is_link_local(h.dst) {
                    ifindex_ll.unwrap_or(i)
                } else {
                    i
                },
                hlim: p[7],
                pathmtu: None,
            }),
            IpAddr::V4(_) => None,
        };
        let data = if r.v6 {
            p[h.hlen..].to_vec()
        } else {
            // `rip_input`: ip_len without the header and ip_off, both in host order.
            let mut d = p.to_vec();
            let len = (h.total_len - h.hlen) as u16;
            d[2..4].copy_from_slice(&len.to_le_bytes());
            let off = u16::from_be_bytes([d[6], d[7]]);
            d[6..8].copy_from_slice(&off.to_le_bytes());
            d
        };
        if r.q_bytes + data.len() > r.rcv_hiwat || budget.try_charge(data.len() as u64).is_err() {
            continue;
        }
        r.q_bytes += data.len();
        r.q.push_back((data, h.src, rcv));
    }
}

/// Path MTU notifications queued per raw socket at most.
const PATHMTU_NOTES_MAX: usize = 16;

/// `ip6_notify_pmtu` through `in6_pcbnotify`: raw IPv6 sockets with `IPV6_RECVPATHMTU`,
/// unconnected or connected to `dst`, hear of its path MTU (an empty datagram from `dst`
/// with `IPV6_PATHMTU`).
pub fn notify_pathmtu(e: &mut Engine, dst: Ipv6Addr, mtu: u32) {
    for pcb in e.pcbs.values_mut() {
        let Pcb::Raw(r) = pcb else { continue };
        if !r.v6 || !r.recvpathmtu || r.remote.is_some_and(|a| a != IpAddr::V6(dst)) {
            continue;
        }
        let notes = r.q.iter().filter(|x| x.0.is_empty()).count();
        if notes >= PATHMTU_NOTES_MAX {
            continue;
        }
        let rcv = Rcv6 {
            dst,
            ifindex: 0,
            hlim: 0,
            pathmtu: Some(mtu),
        };
        r.q.push_back((Vec::new(), IpAddr::V6(dst), Some(rcv)));
    }
}

//! sockin (`-lrumpnet_sockin`): AF_INET and AF_INET6 TCP and UDP sockets served by the
//! host's stack, as NetBSD's sockin component. This crate never touches the host: every
//! host operation is a hypercall on the [`SockinHost`]/[`HostSock`] the server hands to
//! [`attach`] (NetBSD's `rumpcomp_sockin_*`), which also applies the operator's address
//! policy and the host-socket cap. Host sockets are non-blocking; a request that must wait
//! sleeps on the host socket's wait queue, which the host side wakes at every readiness
//! edge (and the socket's event count moves), so a wait ends on data, on a timeout or when
//! the client goes (`EINTR`), and poll/select/kqueue see host readiness.
//!
//! Addresses are NetBSD's `sockaddr_in` (16 bytes: `sin_len`, `sin_family`, port, address,
//! zero) and `sockaddr_in6` (28 bytes: `sin6_len`, `sin6_family` 24, port, flow info,
//! address, scope id); options are NetBSD's numbers, mapped to [`HostOpt`]. AF_INET6
//! sockets start `IPV6_V6ONLY` as NetBSD's (`ip6_v6only`).

use std::any::Any;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::{Arc, Mutex, MutexGuard};

use kernel::abi::{Stat, Timespec, NODEV, S_IFSOCK};
use kernel::file::ops::{POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use kernel::file::{File, Filt, Filter, Iov, PollEvents, Selector};
use kernel::mem::{heap_bytes, Charge};
use kernel::sync::WaitQueue;
use kernel::{BoxFut, Errno, Result};

use crate::abi::*;
use crate::domain::{iov_total, Accepted, Ctx, Domain, Net, ProtoSock, Received, Uio, CHUNK_MAX};
use crate::sys::sowait;

/// `IPPROTO_IP`.
pub const IPPROTO_IP: i32 = 0;
/// `IPPROTO_UDP`.
pub const IPPROTO_UDP: i32 = 17;
/// `IPPROTO_IPV6`.
pub const IPPROTO_IPV6: i32 = 41;
/// `IP_TOS`.
pub const IP_TOS: i32 = 3;
/// `IP_TTL`.
pub const IP_TTL: i32 = 4;
/// `IPV6_UNICAST_HOPS`.
pub const IPV6_UNICAST_HOPS: i32 = 4;
/// `IPV6_V6ONLY`.
pub const IPV6_V6ONLY: i32 = 27;
/// `TCP_MAXSEG`.
pub const TCP_MAXSEG: i32 = 2;
/// `TCP_KEEPIDLE`.
pub const TCP_KEEPIDLE: i32 = 3;
/// `TCP_KEEPINTVL`.
pub const TCP_KEEPINTVL: i32 = 5;
/// `TCP_KEEPCNT`.
pub const TCP_KEEPCNT: i32 = 6;
/// `sizeof(struct sockaddr_in)`.
pub const SOCKADDR_IN_SIZE: usize = 16;
/// `sizeof(struct sockaddr_in6)`.
pub const SOCKADDR_IN6_SIZE: usize = 28;
/// NetBSD sockin's socket buffer reservation (`SOCKIN_SBSIZE`): the `SO_SNDBUF`/`SO_RCVBUF`
/// a socket reports until set.
pub const SOCKIN_SBSIZE: i32 = 65536;
/// Largest datagram received at once (`IP_MAXPACKET`).
const IP_MAXPACKET: usize = 65535;
/// What a sockin socket costs the budget besides its host socket.
const SOCKIN_CHARGE_BYTES: u64 = heap_bytes(std::mem::size_of::<SockinSock>()) + 512;

/// A host socket option sockin maps a NetBSD option to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostOpt {
    /// `SO_REUSEADDR`.
    ReuseAddr,
    /// `SO_REUSEPORT`.
    ReusePort,
    /// `SO_KEEPALIVE`.
    KeepAlive,
    /// `SO_BROADCAST`.
    Broadcast,
    /// `SO_DONTROUTE`.
    DontRoute,
    /// `SO_OOBINLINE`.
    OobInline,
    /// `SO_SNDBUF` (bytes as asked; the host may round).
    SndBuf,
    /// `SO_RCVBUF`.
    RcvBuf,
    /// `SO_RCVLOWAT`.
    RcvLowat,
    /// `SO_ERROR` (get only: the pending error as a NetBSD errno, cleared).
    Error,
    /// `TCP_NODELAY`.
    TcpNoDelay,
    /// `TCP_MAXSEG`.
    TcpMaxSeg,
    /// `TCP_KEEPIDLE` (seconds).
    TcpKeepIdle,
    /// `TCP_KEEPINTVL` (seconds).
    TcpKeepIntvl,
    /// `TCP_KEEPCNT`.
    TcpKeepCnt,
    /// `IP_TOS`.
    IpTos,
    /// `IP_TTL`.
    IpTtl,
    /// `IPV6_UNICAST_HOPS`.
    Ipv6Hops,
    /// `IPV6_V6ONLY`.
    Ipv6Only,
    /// `SO_LINGER`: the value is the linger time in seconds, negative for off.
    Linger,
}

/// Readiness of a host socket now (`poll(2)` with no wait).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostReady {
    /// Data, a connection to accept, end of file or an error.
    pub readable: bool,
    /// Room to send, or an error.
    pub writable: bool,
    /// The peer hung up or the socket has an error.
    pub hup: bool,
}

/// One host socket (NetBSD's `rumpcomp_sockin_*` on one descriptor). Every call is
/// non-blocking; errors are NetBSD errno values (`EWOULDBLOCK` when it would wait).
pub trait HostSock: Send + Sync {
    /// `bind(2)`; `EACCES` when the operator's policy refuses the address.
    fn bind(&self, a: &SocketAddr) -> Result<()>;
    /// `listen(2)`.
    fn listen(&self, backlog: i32) -> Result<()>;
    /// Starts `connect(2)`: `Ok` when connected, `EINPROGRESS` while it goes on (the
    /// socket turns writable when it ends; [`HostOpt::Error`] tells how); `EACCES` when
    /// the policy refuses the address.
    fn connect(&self, a: &SocketAddr) -> Result<()>;
    /// `accept(2)`: a connection and its peer (`EWOULDBLOCK`: none yet; `ENFILE` past the
    /// host-socket cap).
    fn accept(&self) -> Result<(Box<dyn HostSock>, SocketAddr)>;
    /// `sendto(2)`/`send(2)` of `data` (to `to` on a datagram socket); never raises SIGPIPE
    /// (a closed peer is `EPIPE`). `EACCES` when the policy refuses `to`.
    fn send(&self, data: &[u8], to: Option<&SocketAddr>) -> Result<usize>;
    /// `recvfrom(2)` into `buf`: the bytes, the sender (datagrams) and the datagram's
    /// whole length (larger than `buf` when it was cut).
    fn recv(&self, buf: &mut [u8], peek: bool) -> Result<(usize, Option<SocketAddr>, usize)>;
    /// `shutdown(2)` with NetBSD's `how`.
    fn shutdown(&self, how: i32) -> Result<()>;
    /// `getsockname(2)`.
    fn sockname(&self) -> Result<SocketAddr>;
    /// `getpeername(2)` (`ENOTCONN`).
    fn peername(&self) -> Result<SocketAddr>;
    /// `setsockopt(2)` of a mapped option.
    fn setopt(&self, o: HostOpt, v: i32) -> Result<()>;
    /// `getsockopt(2)` of a mapped option.
    fn getopt(&self, o: HostOpt) -> Result<i32>;
    /// Bytes waiting to be read (`FIONREAD`).
    fn nread(&self) -> Result<i32>;
    /// Readiness now.
    fn ready(&self) -> HostReady;
    /// Readiness edges seen so far: a waiter reads it before trying and sleeps until it
    /// moves.
    fn events(&self) -> u64;
    /// Woken when a readiness wait asked for by [`want_readable`](Self::want_readable) or
    /// [`want_writable`](Self::want_writable) ends (and the event count moves).
    fn queue(&self) -> &Arc<WaitQueue>;
    /// Asks for the next readability (data, a connection, end of file, an error): called
    /// before waiting to receive or accept, and by poll for `POLLIN` on a socket not
    /// readable now when someone will wait.
    fn want_readable(&self) {}
    /// Asks for the next writability: called before waiting to send or for a connect, and
    /// by poll for `POLLOUT` on a socket not writable now.
    fn want_writable(&self) {}
}

/// The host side of sockin (NetBSD's `rumpcomp_sockin_socket`): the server implements it
/// over its own runtime and hands it to [`attach`].
pub trait SockinHost: Send + Sync {
    /// A new non-blocking host socket: IPv6 or IPv4, TCP (`stream`) or UDP. `ENFILE` past
    /// the server's cap of host sockets.
    fn socket(&self, v6: bool, stream: bool) -> Result<Box<dyn HostSock>>;
}

/// Registers AF_INET and AF_INET6 served by `host` (`-lrumpnet_sockin`).
pub fn attach(net: &Net, host: Arc<dyn SockinHost>) -> Result<()> {
    net.register_domain(Arc::new(SockinDomain {
        v6: false,
        host: host.clone(),
    }))?;
    net.register_domain(Arc::new(SockinDomain { v6: true, host }))
}

/// One of sockin's two domains (`sockindomain`, `sockin6domain`).
pub struct SockinDomain {
    v6: bool,
    host: Arc<dyn SockinHost>,
}

impl Domain for SockinDomain {
    fn family(&self) -> i32 {
        if self.v6 {
            AF_INET6
        } else {
            AF_INET
        }
    }

    fn name(&self) -> &'static str {
        if self.v6 {
            "socket_inet6"
        } else {
            "socket_inet"
        }
    }

    fn create(&self, cx: &Ctx<'_>, ty: i32, proto: i32) -> Result<Arc<dyn ProtoSock>> {
        // pffindproto/pffindtype over sockin's protosw: UDP datagrams and TCP streams.
        let stream = match ty {
            SOCK_STREAM => true,
            SOCK_DGRAM => false,
            _ => {
                return Err(if proto == 0 {
                    Errno::EPROTOTYPE
                } else {
                    Errno::EPROTONOSUPPORT
                })
            }
        };
        let want = if stream { IPPROTO_TCP } else { IPPROTO_UDP };
        if proto != 0 && proto != want {
            return Err(Errno::EPROTONOSUPPORT);
        }
        let charge =
            Charge::try_new(cx.k.budget(), SOCKIN_CHARGE_BYTES).map_err(|_| Errno::ENOBUFS)?;
        let host = self.host.socket(self.v6, stream)?;
        if self.v6 {
            // NetBSD's inet6 sockets are v6-only by default.
            host.setopt(HostOpt::Ipv6Only, 1)?;
        }
        let (s, ns) = cx.k.host().clock_realtime();
        Ok(Arc::new(SockinSock::new(
            ty,
            self.v6,
            host,
            charge,
            Timespec::from_pair((s, ns)),
        )))
    }
}

/// The family's state of one socket.
#[derive(Default)]
struct St {
    /// `so_options` bits sockin keeps (`SO_ACCEPTCONN` and the booleans set).
    options: i32,
    /// Connected (`SS_ISCONNECTED`).
    connected: bool,
    /// A non-blocking connect is under way (`SS_ISCONNECTING`).
    connecting: bool,
    /// `SS_CANTSENDMORE`.
    cantsend: bool,
    /// `so_error`: how a connect that went on in the background ended.
    error: Option<Errno>,
    /// `SS_CANTRCVMORE`.
    cantrcv: bool,
    /// `SO_SNDBUF`/`SO_RCVBUF` as reported (NetBSD's `sb_hiwat`).
    sndbuf: i32,
    rcvbuf: i32,
    /// `SO_SNDLOWAT`/`SO_RCVLOWAT`.
    sndlowat: i32,
    rcvlowat: i32,
    /// `SO_LINGER` time.
    linger: i32,
    /// `SO_SNDTIMEO`/`SO_RCVTIMEO` in microseconds.
    snd_timeo_us: u64,
    rcv_timeo_us: u64,
    /// `fstat`'s inode number.
    ino: u64,
}

/// One sockin socket.
pub struct SockinSock {
    ty: i32,
    v6: bool,
    host: Box<dyn HostSock>,
    st: Mutex<St>,
    ctime: Timespec,
    _charge: Charge,
}

/// `fstat` inode numbers of sockin sockets.
static SOCKIN_INO: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl SockinSock {
    fn new(ty: i32, v6: bool, host: Box<dyn HostSock>, charge: Charge, now: Timespec) -> Self {
        SockinSock {
            ty,
            v6,
            host,
            st: Mutex::new(St {
                sndbuf: SOCKIN_SBSIZE,
                rcvbuf: SOCKIN_SBSIZE,
                sndlowat: 2048,
                rcvlowat: 1,
                ..St::default()
            }),
            ctime: now,
            _charge: charge,
        }
    }

    fn lock(&self) -> MutexGuard<'_, St> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stream(&self) -> bool {
        self.ty == SOCK_STREAM
    }

    fn family(&self) -> i32 {
        if self.v6 {
            AF_INET6
        } else {
            AF_INET
        }
    }

    /// The address of a NetBSD sockaddr for this family: `EAFNOSUPPORT` for another
    /// family, `EINVAL` for a wrong length (`in_pcbbind`'s checks).
    fn addr_of(&self, sa: &[u8]) -> Result<SocketAddr> {
        parse_sockaddr(sa, self.family())
    }

    /// Waits (unless `nonblock`) for the host socket to move past `seen` events; the
    /// time limit is `timeo_us` (0: none).
    async fn wait(&self, cx: &Ctx<'_>, seen: u64, timeo_us: u64) -> Result<()> {
        let q = self.host.queue().clone();
        sowait(cx.k, cx.p, &q, timeo_us, || self.host.events() != seen).await
    }

    /// [`wait`](Self::wait) for the socket to turn readable (a receive or an accept).
    async fn wait_readable(&self, cx: &Ctx<'_>, seen: u64, timeo_us: u64) -> Result<()> {
        self.host.want_readable();
        self.wait(cx, seen, timeo_us).await
    }

    /// A TCP connect the host refused leaves the socket disconnected, as NetBSD's sockin
    /// (its worker sees the host socket's error: `soisdisconnected`); reads then see end
    /// of file. A refusal by the policy (`EACCES`) or a bad address changes nothing.
    fn failed_connect(&self, e: Errno) {
        if self.stream() && !matches!(e, Errno::EACCES | Errno::EINVAL | Errno::EAFNOSUPPORT) {
            let mut st = self.lock();
            st.cantrcv = true;
            st.cantsend = true;
        }
    }

    /// Completes a connect under way: its result from the host's pending error.
    fn finish_connect(&self) -> Option<Result<()>> {
        let r = self.host.ready();
        if !r.writable && !r.hup {
            return None;
        }
        let err = self.host.getopt(HostOpt::Error).unwrap_or(0);
        let mut st = self.lock();
        if !st.connecting {
            return Some(st.error.take().map_or(Ok(()), Err));
        }
        st.connecting = false;
        if err == 0 {
            st.connected = true;
            Some(Ok(()))
        } else {
            let e = Errno::from_raw(err as u16);
            st.error = Some(e);
            Some(Err(e))
        }
    }
}

/// A NetBSD `sockaddr_in`/`sockaddr_in6` (with `sa_len` as `sockargs` set it) as an
/// address of family `af`.
pub fn parse_sockaddr(sa: &[u8], af: i32) -> Result<SocketAddr> {
    if sa.len() < 2 || i32::from(sa[1]) != af {
        return Err(Errno::EAFNOSUPPORT);
    }
    let port = |sa: &[u8]| u16::from_be_bytes([sa[2], sa[3]]);
    if af == AF_INET {
        // NetBSD's sockin hands the length to the host, which takes any length that holds
        // a sockaddr_in (the oracle: 20 bytes bind, 15 are EINVAL).
        if sa.len() < SOCKADDR_IN_SIZE {
            return Err(Errno::EINVAL);
        }
        let ip = Ipv4Addr::new(sa[4], sa[5], sa[6], sa[7]);
        Ok(SocketAddr::V4(SocketAddrV4::new(ip, port(sa))))
    } else {
        // The host takes RFC 2133's 24 bytes (no scope id) and up.
        if sa.len() < SOCKADDR_IN6_SIZE - 4 {
            return Err(Errno::EINVAL);
        }
        let flow = u32::from_be_bytes(sa[4..8].try_into().expect("4"));
        let ip: [u8; 16] = sa[8..24].try_into().expect("16");
        let scope = sa
            .get(24..28)
            .map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4")));
        Ok(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(ip),
            port(sa),
            flow,
            scope,
        )))
    }
}

/// The NetBSD bytes of an address: `sockaddr_in` or `sockaddr_in6` (`sin_len` set).
pub fn sockaddr_bytes(a: &SocketAddr) -> Vec<u8> {
    match a {
        SocketAddr::V4(a) => {
            let mut b = vec![SOCKADDR_IN_SIZE as u8, AF_INET as u8];
            b.extend_from_slice(&a.port().to_be_bytes());
            b.extend_from_slice(&a.ip().octets());
            b.resize(SOCKADDR_IN_SIZE, 0);
            b
        }
        SocketAddr::V6(a) => {
            let mut b = vec![SOCKADDR_IN6_SIZE as u8, AF_INET6 as u8];
            b.extend_from_slice(&a.port().to_be_bytes());
            b.extend_from_slice(&a.flowinfo().to_be_bytes());
            b.extend_from_slice(&a.ip().octets());
            b.extend_from_slice(&a.scope_id().to_le_bytes());
            b
        }
    }
}

/// The unspecified address of a family (an unbound socket's name).
fn unspecified(v6: bool) -> SocketAddr {
    if v6 {
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
    } else {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
    }
}

fn int_opt(v: &[u8]) -> Result<i32> {
    if v.len() < 4 {
        return Err(Errno::EINVAL);
    }
    Ok(i32::from_le_bytes(v[..4].try_into().expect("4")))
}

/// The host option of a NetBSD boolean `SOL_SOCKET` option.
fn sol_bool(name: i32) -> Option<HostOpt> {
    Some(match name {
        SO_REUSEADDR => HostOpt::ReuseAddr,
        SO_REUSEPORT => HostOpt::ReusePort,
        SO_KEEPALIVE => HostOpt::KeepAlive,
        SO_BROADCAST => HostOpt::Broadcast,
        SO_DONTROUTE => HostOpt::DontRoute,
        SO_OOBINLINE => HostOpt::OobInline,
        _ => return None,
    })
}

/// The host option of a protocol-level option (`IPPROTO_TCP`, `IPPROTO_IP`,
/// `IPPROTO_IPV6`).
fn proto_opt(s: &SockinSock, level: i32, name: i32) -> Result<HostOpt> {
    Ok(match (level, name) {
        (IPPROTO_TCP, _) if !s.stream() => return Err(Errno::ENOPROTOOPT),
        (IPPROTO_TCP, TCP_NODELAY) => HostOpt::TcpNoDelay,
        (IPPROTO_TCP, TCP_MAXSEG) => HostOpt::TcpMaxSeg,
        (IPPROTO_TCP, TCP_KEEPIDLE) => HostOpt::TcpKeepIdle,
        (IPPROTO_TCP, TCP_KEEPINTVL) => HostOpt::TcpKeepIntvl,
        (IPPROTO_TCP, TCP_KEEPCNT) => HostOpt::TcpKeepCnt,
        (IPPROTO_IP, IP_TOS) if !s.v6 => HostOpt::IpTos,
        (IPPROTO_IP, IP_TTL) if !s.v6 => HostOpt::IpTtl,
        (IPPROTO_IPV6, IPV6_V6ONLY) if s.v6 => HostOpt::Ipv6Only,
        (IPPROTO_IPV6, IPV6_UNICAST_HOPS) if s.v6 => HostOpt::Ipv6Hops,
        _ => return Err(Errno::ENOPROTOOPT),
    })
}

impl ProtoSock for SockinSock {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn ty(&self) -> i32 {
        self.ty
    }

    fn bind<'a>(&'a self, _cx: &'a Ctx<'a>, sa: &'a [u8]) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let a = self.addr_of(sa)?;
            self.host.bind(&a)
        })
    }

    fn listen(&self, _cx: &Ctx<'_>, backlog: i32) -> Result<()> {
        if !self.stream() {
            return Err(Errno::EOPNOTSUPP);
        }
        {
            let st = self.lock();
            if st.connected || st.connecting {
                return Err(Errno::EINVAL);
            }
        }
        let b = if !(0..=SOMAXCONN).contains(&backlog) {
            SOMAXCONN
        } else {
            backlog
        };
        self.host.listen(b)?;
        self.lock().options |= SO_ACCEPTCONN;
        Ok(())
    }

    fn connect<'a>(
        &'a self,
        cx: &'a Ctx<'a>,
        sa: &'a [u8],
        nonblock: bool,
    ) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            {
                let st = self.lock();
                if st.options & SO_ACCEPTCONN != 0 {
                    return Err(Errno::EOPNOTSUPP);
                }
                if self.stream() && st.connected {
                    return Err(Errno::EISCONN);
                }
            }
            if self.lock().connecting {
                return match self.finish_connect() {
                    None => Err(Errno::EALREADY),
                    Some(Ok(())) => Err(Errno::EISCONN),
                    Some(Err(e)) => {
                        self.lock().error = None;
                        Err(e)
                    }
                };
            }
            let a = self.addr_of(sa)?;
            let seen = self.host.events();
            match self.host.connect(&a) {
                Ok(()) => {
                    self.lock().connected = true;
                    return Ok(());
                }
                Err(Errno::EINPROGRESS) => {}
                Err(e) => {
                    self.failed_connect(e);
                    return Err(e);
                }
            }
            self.lock().connecting = true;
            self.host.want_writable();
            if nonblock {
                return Err(Errno::EINPROGRESS);
            }
            let mut seen = seen;
            loop {
                if let Some(r) = self.finish_connect() {
                    if let Err(e) = r {
                        self.lock().error = None;
                        self.failed_connect(e);
                    }
                    return r;
                }
                self.host.want_writable();
                self.wait(cx, seen, 0).await?;
                seen = self.host.events();
            }
        })
    }

    fn accept<'a>(&'a self, cx: &'a Ctx<'a>, nonblock: bool) -> BoxFut<'a, Result<Accepted>> {
        Box::pin(async move {
            if !self.stream() {
                return Err(Errno::EOPNOTSUPP);
            }
            let timeo = {
                let st = self.lock();
                if st.options & SO_ACCEPTCONN == 0 {
                    return Err(Errno::EINVAL);
                }
                st.rcv_timeo_us
            };
            loop {
                let seen = self.host.events();
                match self.host.accept() {
                    Ok((h, peer)) => {
                        let charge = Charge::try_new(cx.k.budget(), SOCKIN_CHARGE_BYTES)
                            .map_err(|_| Errno::ENOBUFS)?;
                        let n = SockinSock::new(self.ty, self.v6, h, charge, self.ctime);
                        {
                            // sonewconn: the listener's options and marks are inherited.
                            let l = self.lock();
                            let mut st = n.lock();
                            st.options = l.options & !SO_ACCEPTCONN;
                            st.sndbuf = l.sndbuf;
                            st.rcvbuf = l.rcvbuf;
                            st.sndlowat = l.sndlowat;
                            st.rcvlowat = l.rcvlowat;
                            st.linger = l.linger;
                            st.snd_timeo_us = l.snd_timeo_us;
                            st.rcv_timeo_us = l.rcv_timeo_us;
                            st.connected = true;
                        }
                        return Ok(Accepted {
                            so: Arc::new(n),
                            peer: sockaddr_bytes(&peer),
                        });
                    }
                    Err(Errno::EWOULDBLOCK) if nonblock => return Err(Errno::EWOULDBLOCK),
                    Err(Errno::EWOULDBLOCK) => self.wait_readable(cx, seen, timeo).await?,
                    Err(e) => return Err(e),
                }
            }
        })
    }

    fn shutdown(&self, how: i32) -> Result<()> {
        {
            let st = self.lock();
            if !st.connected && self.stream() {
                return Err(Errno::ENOTCONN);
            }
        }
        let r = self.host.shutdown(how);
        let mut st = self.lock();
        if how != SHUT_WR {
            st.cantrcv = true;
        }
        if how != SHUT_RD {
            st.cantsend = true;
        }
        drop(st);
        // A datagram socket's host shutdown may answer ENOTCONN; NetBSD's does not.
        match r {
            Err(Errno::ENOTCONN) if !self.stream() => Ok(()),
            r => r,
        }
    }

    fn send<'a>(
        &'a self,
        cx: &'a Ctx<'a>,
        iov: &'a [Iov],
        to: Option<Vec<u8>>,
        control: Vec<u8>,
        flags: i32,
        nonblock: bool,
    ) -> BoxFut<'a, (u64, Result<()>)> {
        Box::pin(async move {
            let resid = match iov_total(iov) {
                Ok(t) => t as usize,
                Err(e) => return (0, Err(e)),
            };
            if flags & MSG_OOB != 0 || !control.is_empty() {
                return (0, Err(Errno::EOPNOTSUPP));
            }
            let (cantsend, connected, timeo) = {
                let st = self.lock();
                (st.cantsend, st.connected, st.snd_timeo_us)
            };
            if cantsend {
                return (0, Err(Errno::EPIPE));
            }
            let to = match to {
                Some(sa) if self.stream() && connected => {
                    let _ = sa;
                    return (0, Err(Errno::EISCONN));
                }
                Some(sa) => match self.addr_of(&sa) {
                    Ok(a) => Some(a),
                    Err(e) => return (0, Err(e)),
                },
                None if self.stream() && !connected => return (0, Err(Errno::ENOTCONN)),
                None => None,
            };
            if !self.stream() {
                if resid > IP_MAXPACKET {
                    return (0, Err(Errno::EMSGSIZE));
                }
                let mut uio = Uio::new(iov);
                let data = match uio.copyin(cx.mem, resid).await {
                    Ok(d) => d,
                    Err(e) => return (0, Err(e)),
                };
                loop {
                    let seen = self.host.events();
                    match self.host.send(&data, to.as_ref()) {
                        Ok(n) => return (n as u64, Ok(())),
                        Err(Errno::EWOULDBLOCK) if !nonblock => {
                            self.host.want_writable();
                            if let Err(e) = self.wait(cx, seen, timeo).await {
                                return (0, Err(e));
                            }
                        }
                        Err(e) => return (0, Err(e)),
                    }
                }
            }
            let mut uio = Uio::new(iov);
            let mut sent = 0usize;
            while sent < resid {
                let chunk = match uio.copyin(cx.mem, (resid - sent).min(CHUNK_MAX)).await {
                    Ok(d) => d,
                    Err(e) => return (sent as u64, Err(e)),
                };
                let mut off = 0;
                while off < chunk.len() {
                    let seen = self.host.events();
                    match self.host.send(&chunk[off..], None) {
                        Ok(n) => {
                            off += n;
                            sent += n;
                        }
                        Err(Errno::EWOULDBLOCK) if !nonblock => {
                            self.host.want_writable();
                            if let Err(e) = self.wait(cx, seen, timeo).await {
                                return (sent as u64, Err(e));
                            }
                        }
                        Err(e) => {
                            if e == Errno::EPIPE {
                                self.lock().cantsend = true;
                            }
                            return (sent as u64, Err(e));
                        }
                    }
                }
            }
            (sent as u64, Ok(()))
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
            let resid = iov_total(iov)? as usize;
            if flags & MSG_OOB != 0 {
                return Err(Errno::EOPNOTSUPP);
            }
            let peek = flags & MSG_PEEK != 0;
            let (cantrcv, connected, timeo) = {
                let st = self.lock();
                (st.cantrcv, st.connected, st.rcv_timeo_us)
            };
            if self.stream() && !connected && !cantrcv {
                return Err(Errno::ENOTCONN);
            }
            let mut got = Received {
                n: 0,
                addr: None,
                ctl: Vec::new(),
                flags: 0,
            };
            if cantrcv || resid == 0 {
                return Ok(got);
            }
            let mut uio = Uio::new(iov);
            let cap = if self.stream() {
                resid.min(CHUNK_MAX)
            } else {
                resid.min(IP_MAXPACKET)
            };
            let mut buf = vec![0u8; cap];
            loop {
                let seen = self.host.events();
                let want = (resid - got.n as usize).min(cap);
                match self.host.recv(&mut buf[..want], peek) {
                    Ok((n, from, whole)) => {
                        if !self.stream() {
                            if whole > n {
                                got.flags |= MSG_TRUNC;
                            }
                            got.addr = from.map(|a| sockaddr_bytes(&a));
                        }
                        uio.copyout(cx.mem, &buf[..n]).await?;
                        got.n += n as u64;
                        let more = self.stream()
                            && n > 0
                            && flags & MSG_WAITALL != 0
                            && !peek
                            && (got.n as usize) < resid;
                        if !more {
                            return Ok(got);
                        }
                    }
                    Err(Errno::EWOULDBLOCK) if got.n > 0 && flags & MSG_WAITALL == 0 => {
                        return Ok(got)
                    }
                    Err(Errno::EWOULDBLOCK) if nonblock => {
                        if got.n > 0 {
                            return Ok(got);
                        }
                        return Err(Errno::EWOULDBLOCK);
                    }
                    Err(Errno::EWOULDBLOCK) => match self.wait_readable(cx, seen, timeo).await {
                        Ok(()) => {}
                        Err(e) if got.n > 0 && e == Errno::EWOULDBLOCK => return Ok(got),
                        Err(e) => return Err(e),
                    },
                    Err(e) if got.n > 0 => {
                        let _ = e;
                        return Ok(got);
                    }
                    Err(e) => return Err(e),
                }
            }
        })
    }

    fn sockaddr(&self) -> Result<Vec<u8>> {
        let a = self
            .host
            .sockname()
            .unwrap_or_else(|_| unspecified(self.v6));
        Ok(sockaddr_bytes(&a))
    }

    fn peeraddr(&self) -> Result<Vec<u8>> {
        if !self.lock().connected {
            return Err(Errno::ENOTCONN);
        }
        Ok(sockaddr_bytes(&self.host.peername()?))
    }

    fn setopt(&self, _cx: &Ctx<'_>, level: i32, name: i32, v: &[u8]) -> Result<()> {
        if level != SOL_SOCKET {
            let o = proto_opt(self, level, name)?;
            return self.host.setopt(o, int_opt(v)?);
        }
        if let Some(o) = sol_bool(name) {
            let on = int_opt(v)? != 0;
            self.host.setopt(o, i32::from(on))?;
            let mut st = self.lock();
            if on {
                st.options |= name;
            } else {
                st.options &= !name;
            }
            return Ok(());
        }
        match name {
            SO_LINGER => {
                if v.len() != LINGER_SIZE {
                    return Err(Errno::EINVAL);
                }
                let on = i32::from_le_bytes(v[..4].try_into().expect("4"));
                let l = i32::from_le_bytes(v[4..].try_into().expect("4"));
                if on != 0 && !(0..=i32::from(i16::MAX) / 100).contains(&l) {
                    return Err(Errno::EDOM);
                }
                self.host
                    .setopt(HostOpt::Linger, if on != 0 { l } else { -1 })?;
                let mut st = self.lock();
                if on != 0 {
                    st.options |= SO_LINGER;
                    st.linger = l;
                } else {
                    st.options &= !SO_LINGER;
                }
                Ok(())
            }
            SO_SNDBUF | SO_RCVBUF | SO_SNDLOWAT | SO_RCVLOWAT => {
                let x = int_opt(v)?;
                if x < 1 {
                    return Err(Errno::EINVAL);
                }
                match name {
                    SO_SNDBUF | SO_RCVBUF if x as usize > crate::sock::SB_MAX => {
                        return Err(Errno::ENOBUFS)
                    }
                    SO_SNDBUF => {
                        self.host.setopt(HostOpt::SndBuf, x)?;
                        let mut st = self.lock();
                        st.sndbuf = x;
                        st.sndlowat = st.sndlowat.min(x);
                    }
                    SO_RCVBUF => {
                        self.host.setopt(HostOpt::RcvBuf, x)?;
                        let mut st = self.lock();
                        st.rcvbuf = x;
                        st.rcvlowat = st.rcvlowat.min(x);
                    }
                    SO_SNDLOWAT => {
                        let mut st = self.lock();
                        st.sndlowat = x.min(st.sndbuf);
                    }
                    _ => {
                        let x = x.min(self.lock().rcvbuf);
                        self.host.setopt(HostOpt::RcvLowat, x)?;
                        self.lock().rcvlowat = x;
                    }
                }
                Ok(())
            }
            SO_SNDTIMEO => {
                self.lock().snd_timeo_us = crate::domain::opt_timeval_us(v)?;
                Ok(())
            }
            SO_RCVTIMEO => {
                self.lock().rcv_timeo_us = crate::domain::opt_timeval_us(v)?;
                Ok(())
            }
            SO_DEBUG | SO_USELOOPBACK | SO_TIMESTAMP => {
                let on = int_opt(v)? != 0;
                let mut st = self.lock();
                if on {
                    st.options |= name;
                } else {
                    st.options &= !name;
                }
                Ok(())
            }
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn getopt(&self, _cx: &Ctx<'_>, level: i32, name: i32) -> Result<Vec<u8>> {
        let int = |v: i32| v.to_le_bytes().to_vec();
        if level != SOL_SOCKET {
            let o = proto_opt(self, level, name)?;
            return Ok(int(self.host.getopt(o)?));
        }
        let st = self.lock();
        Ok(match name {
            SO_LINGER => {
                let mut b = int(i32::from(st.options & SO_LINGER != 0));
                b.extend_from_slice(&st.linger.to_le_bytes());
                b
            }
            SO_ACCEPTCONN => int(i32::from(st.options & SO_ACCEPTCONN != 0)),
            n if sol_bool(n).is_some() || matches!(n, SO_DEBUG | SO_USELOOPBACK | SO_TIMESTAMP) => {
                int(i32::from(st.options & n != 0))
            }
            SO_TYPE => int(self.ty),
            SO_ERROR => {
                drop(st);
                if self.lock().connecting {
                    self.finish_connect();
                }
                match self.lock().error.take() {
                    Some(e) => int(i32::from(e.raw())),
                    None => int(self.host.getopt(HostOpt::Error)?),
                }
            }
            SO_SNDBUF => int(st.sndbuf),
            SO_RCVBUF => int(st.rcvbuf),
            SO_SNDLOWAT => int(st.sndlowat),
            SO_RCVLOWAT => int(st.rcvlowat),
            SO_SNDTIMEO => crate::domain::timeval_bytes(st.snd_timeo_us),
            SO_RCVTIMEO => crate::domain::timeval_bytes(st.rcv_timeo_us),
            SO_OVERFLOWED => int(0),
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }

    fn ioctl(&self, _fp: &File, com: u32, data: &mut [u8]) -> Result<()> {
        let put = |data: &mut [u8], v: i32| {
            if data.len() >= 4 {
                data[..4].copy_from_slice(&v.to_le_bytes());
            }
        };
        match com {
            FIONREAD => {
                put(data, self.host.nread()?);
                Ok(())
            }
            FIONWRITE => {
                put(data, 0);
                Ok(())
            }
            FIONSPACE => {
                put(data, self.lock().sndbuf);
                Ok(())
            }
            SIOCATMARK => {
                put(data, 0);
                Ok(())
            }
            _ => Err(Errno::EOPNOTSUPP),
        }
    }

    fn poll(&self, events: PollEvents, sel: Option<&mut Selector>) -> PollEvents {
        let waiting = sel.is_some();
        if let Some(s) = sel {
            s.record(self.host.queue());
        }
        if self.lock().connecting {
            self.finish_connect();
        }
        let r = self.host.ready();
        let (cantrcv, cantsend, connected, listening) = {
            let st = self.lock();
            (
                st.cantrcv,
                st.cantsend,
                st.connected,
                st.options & SO_ACCEPTCONN != 0,
            )
        };
        let mut out = 0;
        if r.readable || r.hup || cantrcv {
            out |= events & (POLLIN | POLLRDNORM);
        } else if waiting && events & (POLLIN | POLLRDNORM) != 0 {
            self.host.want_readable();
        }
        let writable =
            cantsend || r.hup || (!listening && r.writable && (connected || !self.stream()));
        if writable {
            out |= events & (POLLOUT | POLLWRNORM);
        } else if events & (POLLOUT | POLLWRNORM) != 0 {
            self.host.want_writable();
        }
        out
    }

    fn filter(&self, filter: Filter, sel: Option<&mut Selector>) -> Result<Filt> {
        let ev = filter.poll_events();
        let ready = self.poll(ev, sel) & ev != 0;
        let r = self.host.ready();
        let st = self.lock();
        let (data, eof) = match filter {
            // A listener's count of pending connections is the host's to know: at least
            // one when readable.
            Filter::Read if st.options & SO_ACCEPTCONN != 0 => (i64::from(ready), false),
            Filter::Read => (
                i64::from(self.host.nread().unwrap_or(0)),
                st.cantrcv || r.hup,
            ),
            Filter::Write => (i64::from(st.sndbuf), st.cantsend || r.hup),
        };
        Ok(Filt { ready, data, eof })
    }

    fn stat(&self) -> Result<Stat> {
        let ino = {
            let mut st = self.lock();
            if st.ino == 0 {
                st.ino = SOCKIN_INO.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            st.ino
        };
        let blksize = self.lock().sndbuf;
        Ok(Stat {
            dev: NODEV,
            ino,
            mode: S_IFSOCK,
            blksize,
            atime: self.ctime,
            mtime: self.ctime,
            ctime: self.ctime,
            ..Stat::default()
        })
    }

    fn close(&self) {
        // The host socket closes when the last reference goes; wake its waiters now.
        let mut st = self.lock();
        st.cantrcv = true;
        st.cantsend = true;
        drop(st);
        self.host.queue().wake_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        let a: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let b = sockaddr_bytes(&a);
        assert_eq!(b, [16, 2, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(parse_sockaddr(&b, AF_INET).unwrap(), a);
        let a6: SocketAddr = "[::1]:80".parse().unwrap();
        let b6 = sockaddr_bytes(&a6);
        assert_eq!(b6.len(), 28);
        assert_eq!(&b6[..4], &[28, 24, 0, 80]);
        assert_eq!(b6[23], 1);
        assert_eq!(parse_sockaddr(&b6, AF_INET6).unwrap(), a6);
        assert_eq!(parse_sockaddr(&b6, AF_INET), Err(Errno::EAFNOSUPPORT));
        assert_eq!(parse_sockaddr(&b[..15], AF_INET), Err(Errno::EINVAL));
        let mut long = b.clone();
        long.resize(20, 0);
        assert_eq!(parse_sockaddr(&long, AF_INET).unwrap(), a);
        assert_eq!(parse_sockaddr(&b6[..24], AF_INET6).unwrap(), a6);
        assert_eq!(parse_sockaddr(&b6[..23], AF_INET6), Err(Errno::EINVAL));
    }
}

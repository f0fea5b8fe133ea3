//! AF_INET and AF_INET6 on the socket layer's protocol switch (`net::Domain`,
//! `net::ProtoSock`): `inetdomain`'s protosw (TCP stream, UDP datagram, raw IP) over the
//! stack's pcbs, with NetBSD's `sockaddr_in`/`sockaddr_in6`, errno and option defaults.

use std::any::Any;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use kernel::abi::{Stat, NODEV, S_IFSOCK};
use kernel::file::ops::{POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use kernel::file::{File, Filt, Filter, Iov, PollEvents, Selector};
use kernel::{BoxFut, Errno, Result};
use net::{Accepted, Ctx, Domain, ProtoSock, Received, Uio};

use crate::sock::{self, Pcb};
use crate::Stack;

/// `AF_INET`.
pub const AF_INET: i32 = 2;
/// `AF_INET6`.
pub const AF_INET6: i32 = 24;
const SOL_SOCKET: i32 = 0xffff;
const IPPROTO_IP: i32 = 0;
const IPPROTO_TCP: i32 = 6;
const IPPROTO_IPV6: i32 = 41;
const IP_HDRINCL: i32 = 2;
const IP_TOS: i32 = 3;
const IP_TTL: i32 = 4;
const IPPROTO_ICMPV6: i32 = 58;
const IPV6_UNICAST_HOPS: i32 = 4;
const IPV6_RECVPKTINFO: i32 = 36;
const IPV6_RECVHOPLIMIT: i32 = 37;
const IPV6_USE_MIN_MTU: i32 = 42;
const IPV6_RECVPATHMTU: i32 = 43;
const IPV6_V6ONLY: i32 = 27;
const IPV6_RECVRTHDR: i32 = 38;
const IPV6_RECVHOPOPTS: i32 = 39;
const IPV6_RECVDSTOPTS: i32 = 40;
const IPV6_RECVRTHDRDSTOPTS: i32 = 41;
const ICMP6_FILTER: i32 = 18;
const TCP_NODELAY: i32 = 1;
const TCP_MAXSEG: i32 = 2;
const SO_ACCEPTCONN: i32 = 0x2;
const SO_LINGER: i32 = 0x80;
const SO_SNDBUF: i32 = 0x1001;
const SO_RCVBUF: i32 = 0x1002;
const SO_SNDLOWAT: i32 = 0x1003;
const SO_RCVLOWAT: i32 = 0x1004;
const SO_ERROR: i32 = 0x1007;
const SO_TYPE: i32 = 0x1008;
const SO_SNDTIMEO: i32 = 0x100b;
const SO_RCVTIMEO: i32 = 0x100c;
const SO_BOOL_MASK: i32 = 0x1 | 0x4 | 0x8 | 0x10 | 0x20 | 0x40 | 0x100 | 0x200 | 0x2000;
const MSG_PEEK: i32 = 0x2;
const MSG_TRUNC: i32 = 0x10;
const MSG_WAITALL: i32 = 0x40;
/// `IP_MAXPACKET`.
const IP_MAXPACKET: u64 = 65535;

/// `sockaddr_in`/`sockaddr_in6` bytes for an address and port.
pub fn sockaddr(a: IpAddr, port: u16) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => {
            let mut s = vec![16, AF_INET as u8];
            s.extend_from_slice(&port.to_be_bytes());
            s.extend_from_slice(&v.octets());
            s.extend_from_slice(&[0; 8]);
            s
        }
        IpAddr::V6(v) => {
            let mut s = vec![28, AF_INET6 as u8];
            s.extend_from_slice(&port.to_be_bytes());
            s.extend_from_slice(&[0; 4]);
            s.extend_from_slice(&v.octets());
            s.extend_from_slice(&[0; 4]);
            s
        }
    }
}

/// Parses a `sockaddr_in` (`v6` false) or `sockaddr_in6`: `EINVAL` for a short one,
/// `EAFNOSUPPORT` for another family (NetBSD's `in_pcbbind`/`in6_pcbbind` checks).
pub fn parse_sockaddr(sa: &[u8], v6: bool) -> Result<(IpAddr, u16)> {
    if sa.len() < 2 {
        return Err(Errno::EINVAL);
    }
    if !v6 {
        // `in_pcbbind`/`in_pcbconnect`: sin_len must be sizeof(struct sockaddr_in).
        if sa.len() != 16 {
            return Err(Errno::EINVAL);
        }
        if sa[1] as i32 != AF_INET {
            return Err(Errno::EAFNOSUPPORT);
        }
        let port = u16::from_be_bytes([sa[2], sa[3]]);
        Ok((IpAddr::V4(Ipv4Addr::new(sa[4], sa[5], sa[6], sa[7])), port))
    } else {
        if sa.len() < 28 {
            return Err(Errno::EINVAL);
        }
        if sa[1] as i32 != AF_INET6 {
            return Err(Errno::EAFNOSUPPORT);
        }
        let port = u16::from_be_bytes([sa[2], sa[3]]);
        let b: [u8; 16] = sa[8..24].try_into().map_err(|_| Errno::EINVAL)?;
        let a = Ipv6Addr::from(b);
        // An IPv4-mapped address talks IPv4.
        Ok((
            a.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(a)),
            port,
        ))
    }
}

/// `inetdomain`/`inet6domain`.
pub struct InetDomain {
    /// The stack.
    pub stack: Arc<Stack>,
    /// AF_INET6.
    pub v6: bool,
}

impl Domain for InetDomain {
    fn family(&self) -> i32 {
        if self.v6 {
            AF_INET6
        } else {
            AF_INET
        }
    }

    fn name(&self) -> &'static str {
        if self.v6 {
            "inet6"
        } else {
            "inet"
        }
    }

    fn create(&self, _cx: &Ctx<'_>, ty: i32, proto: i32) -> Result<Arc<dyn ProtoSock>> {
        // `pffindproto`: raw sockets need a protocol number in range; stream and datagram
        // sockets only their own.
        let id = match ty {
            1..=3 => sock::create(&mut self.stack.lock(), self.v6, ty, proto)?,
            _ => return Err(Errno::EPROTOTYPE),
        };
        let (snd, rcv) = match ty {
            1 => (sock::TCP_BUF, sock::TCP_BUF),
            2 => (sock::UDP_SNDBUF, sock::UDP_RCVBUF),
            _ => (sock::RAW_BUF, sock::RAW_BUF),
        };
        Ok(Arc::new(InetSock {
            stack: self.stack.clone(),
            id,
            ty,
            v6: self.v6,
            ino: next_ino(),
            o: Mutex::new(Opts {
                options: 0,
                snd_hiwat: snd,
                rcv_hiwat: rcv,
                snd_lowat: if ty == 1 { 2048 } else { 2048.min(snd) },
                rcv_lowat: 1,
                sndtimeo_ticks: 0,
                rcvtimeo_ticks: 0,
                linger: 0,
                nodelay: false,
                closed: false,
                hops6: -1,
                recv_ext6: 0,
            }),
        }))
    }
}

fn next_ino() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static INO: AtomicU64 = AtomicU64::new(1);
    INO.fetch_add(1, Ordering::Relaxed)
}

/// Socket-level state the pcb does not hold.
struct Opts {
    options: i32,
    snd_hiwat: usize,
    rcv_hiwat: usize,
    snd_lowat: usize,
    rcv_lowat: usize,
    /// `SO_SNDTIMEO`/`SO_RCVTIMEO` in NetBSD's ticks (`net::domain::opt_timeval_ticks`).
    sndtimeo_ticks: i32,
    rcvtimeo_ticks: i32,
    linger: i32,
    nodelay: bool,
    closed: bool,
    /// `in6p_hops` (`IPV6_UNICAST_HOPS`; -1: the kernel's default).
    hops6: i32,
    /// `IPV6_RECVRTHDR`, `IPV6_RECVHOPOPTS`, `IPV6_RECVDSTOPTS`, `IPV6_RECVRTHDRDSTOPTS`
    /// (bit `name - IPV6_RECVRTHDR`).
    recv_ext6: u8,
}

/// One AF_INET/AF_INET6 socket.
pub struct InetSock {
    stack: Arc<Stack>,
    id: u32,
    ty: i32,
    v6: bool,
    ino: u64,
    o: Mutex<Opts>,
}

impl InetSock {
    fn opts(&self) -> std::sync::MutexGuard<'_, Opts> {
        self.o.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn wait(
        &self,
        cx: &Ctx<'_>,
        timeo_us: u64,
        mut cond: impl FnMut(&mut crate::Engine) -> bool,
    ) -> Result<()> {
        let st = &self.stack;
        net::sowait(cx.k, cx.p, &st.wq, timeo_us, || cond(&mut st.lock())).await
    }

    fn name_of(&self, peer: bool) -> Result<Vec<u8>> {
        let r = sock::name(&mut self.stack.lock(), self.id, peer)?;
        let any = if self.v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        let (a, p) = r.unwrap_or((any, 0));
        Ok(self.scoped(a, p))
    }

    /// The sockaddr for `a`, a link-local address with its zone in `sin6_scope_id`
    /// (`sa6_recoverscope`): the interface holding it, else the one its route goes out of.
    fn scoped(&self, a: IpAddr, port: u16) -> Vec<u8> {
        let mut s = sockaddr(self.map(a), port);
        if crate::engine::is_link_local(a) {
            let e = self.stack.lock();
            let zone = e
                .ifindex_of_addr(a)
                .or_else(|| e.routes.lookup(a).map(|r| r.ifindex))
                .unwrap_or(0);
            s[24..28].copy_from_slice(&zone.to_le_bytes());
        }
        s
    }

    /// An address as this socket's family shows it (IPv4 on an AF_INET6 socket mapped).
    fn map(&self, a: IpAddr) -> IpAddr {
        match (self.v6, a) {
            (true, IpAddr::V4(v)) => IpAddr::V6(v.to_ipv6_mapped()),
            _ => a,
        }
    }
}

impl ProtoSock for InetSock {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn ty(&self) -> i32 {
        self.ty
    }

    fn bind<'a>(&'a self, _cx: &'a Ctx<'a>, sa: &'a [u8]) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let (a, port) = parse_sockaddr(sa, self.v6)?;
            let addr = (!a.is_unspecified()).then_some(a);
            sock::bind(&mut self.stack.lock(), self.id, addr, port)
        })
    }

    fn listen(&self, _cx: &Ctx<'_>, backlog: i32) -> Result<()> {
        if self.ty != 1 {
            return Err(Errno::EOPNOTSUPP);
        }
        let backlog = if !(0..=128).contains(&backlog) {
            128
        } else {
            backlog
        };
        sock::listen(&mut self.stack.lock(), self.id, backlog)?;
        self.opts().options |= SO_ACCEPTCONN;
        self.stack.kick();
        Ok(())
    }

    fn connect<'a>(
        &'a self,
        cx: &'a Ctx<'a>,
        sa: &'a [u8],
        nonblock: bool,
    ) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let (a, port) = parse_sockaddr(sa, self.v6)?;
            if self.opts().options & SO_ACCEPTCONN != 0 {
                return Err(Errno::EOPNOTSUPP);
            }
            // INADDR_ANY means this host (`in_pcbconnect`).
            let a = if a.is_unspecified() {
                if a.is_ipv4() {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                } else {
                    IpAddr::V6(Ipv6Addr::LOCALHOST)
                }
            } else {
                a
            };
            sock::connect(&mut self.stack.lock(), self.id, a, port)?;
            self.stack.kick();
            if self.ty != 1 {
                return Ok(());
            }
            if nonblock {
                return Err(Errno::EINPROGRESS);
            }
            let mut res = Ok(false);
            self.wait(cx, 0, |e| {
                res = sock::connect_status(e, self.id);
                !matches!(res, Ok(false))
            })
            .await?;
            res.map(|_| ())
        })
    }

    fn accept<'a>(&'a self, cx: &'a Ctx<'a>, nonblock: bool) -> BoxFut<'a, Result<Accepted>> {
        Box::pin(async move {
            if self.ty != 1 {
                return Err(Errno::EOPNOTSUPP);
            }
            // NetBSD's accept waits without a timeout (`sowait(so, true, 0)`), whatever
            // SO_RCVTIMEO says.
            let timeo = 0;
            let id = loop {
                match sock::accept(&mut self.stack.lock(), self.id)? {
                    Some(id) => break id,
                    None if nonblock => return Err(Errno::EWOULDBLOCK),
                    None => {}
                }
                self.wait(cx, timeo, |e| sock::acceptable(e, self.id))
                    .await?;
            };
            self.stack.kick();
            let o = self.opts();
            let so = Arc::new(InetSock {
                stack: self.stack.clone(),
                id,
                ty: 1,
                v6: self.v6,
                ino: next_ino(),
                o: Mutex::new(Opts {
                    options: o.options & !SO_ACCEPTCONN,
                    snd_hiwat: o.snd_hiwat,
                    rcv_hiwat: o.rcv_hiwat,
                    snd_lowat: o.snd_lowat,
                    rcv_lowat: o.rcv_lowat,
                    sndtimeo_ticks: o.sndtimeo_ticks,
                    rcvtimeo_ticks: o.rcvtimeo_ticks,
                    linger: o.linger,
                    nodelay: o.nodelay,
                    closed: false,
                    hops6: o.hops6,
                    recv_ext6: o.recv_ext6,
                }),
            });
            drop(o);
            let peer = so
                .name_of(true)
                .unwrap_or_else(|_| sockaddr(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
            Ok(Accepted { so, peer })
        })
    }

    fn shutdown(&self, how: i32) -> Result<()> {
        sock::shutdown(&mut self.stack.lock(), self.id, how)?;
        self.stack.kick();
        Ok(())
    }

    fn send<'a>(
        &'a self,
        cx: &'a Ctx<'a>,
        iov: &'a [Iov],
        to: Option<Vec<u8>>,
        control: Vec<u8>,
        _flags: i32,
        nonblock: bool,
    ) -> BoxFut<'a, (u64, Result<()>)> {
        Box::pin(async move {
            let total = match net::iov_total(iov) {
                Ok(t) => t,
                Err(e) => return (0, Err(e)),
            };
            let mut uio = Uio::new(iov);
            let timeo = net::domain::ticks_us(self.opts().sndtimeo_ticks);
            if self.ty != 1 {
                let to = match to.map(|sa| parse_sockaddr(&sa, self.v6)).transpose() {
                    Ok(t) => t,
                    Err(e) => return (0, Err(e)),
                };
                if total > IP_MAXPACKET {
                    return (0, Err(Errno::EMSGSIZE));
                }
                let data = match uio.copyin(cx.mem, total as usize).await {
                    Ok(d) => d,
                    Err(e) => return (0, Err(e)),
                };
                let r = {
                    let mut e = self.stack.lock();
                    let opts = if self.v6 {
                        crate::ip6opts::for_send(&e, self.id, &control)
                    } else {
                        Ok(Default::default())
                    };
                    opts.and_then(|o| sock::dgram_send(&mut e, self.id, &data, to, o))
                };
                self.stack.kick();
                return match r {
                    Ok(n) => (n as u64, Ok(())),
                    Err(e) => (0, Err(e)),
                };
            }
            if to.is_some() {
                // A connected stream takes no address (`EISCONN`), an unconnected one
                // `ENOTCONN` (TCP does not do implied connects).
                let e = match sock::name(&mut self.stack.lock(), self.id, true) {
                    Ok(_) => Errno::EISCONN,
                    Err(_) => Errno::ENOTCONN,
                };
                return (0, Err(e));
            }
            let mut sent = 0u64;
            while sent < total {
                let room = loop {
                    let r = {
                        let mut e = self.stack.lock();
                        match sock::tcp_send(&mut e, self.id, &[]) {
                            Err(err) => Err(err),
                            Ok(_) => Ok(sock::tcp_send_space(&mut e, self.id)),
                        }
                    };
                    match r {
                        Err(err) => return (sent, Err(err)),
                        Ok(0) if nonblock => {
                            return (sent, Err(Errno::EWOULDBLOCK));
                        }
                        Ok(0) => {
                            if let Err(err) = self
                                .wait(cx, timeo, |e| {
                                    sock::writable(e, self.id)
                                        && sock::tcp_send_space(e, self.id) > 0
                                        || sock::tcp_send(e, self.id, &[]).is_err()
                                })
                                .await
                            {
                                return (sent, Err(err));
                            }
                        }
                        Ok(n) => break n,
                    }
                };
                let want = ((total - sent) as usize).min(room).min(net::CHUNK_MAX);
                let data = match uio.copyin(cx.mem, want).await {
                    Ok(d) => d,
                    Err(e) => return (sent, Err(e)),
                };
                // Another writer of the socket may have taken room while this one copied:
                // what does not fit now waits for room (or ends a non-blocking send).
                let mut off = 0;
                while off < data.len() {
                    let r = sock::tcp_send(&mut self.stack.lock(), self.id, &data[off..]);
                    self.stack.kick();
                    match r {
                        Ok(0) if nonblock => {
                            return (sent, Err(Errno::EWOULDBLOCK));
                        }
                        Ok(0) => {
                            let ready = |e: &mut crate::Engine| {
                                sock::tcp_send_space(e, self.id) > 0
                                    || sock::tcp_send(e, self.id, &[]).is_err()
                            };
                            if let Err(err) = self.wait(cx, timeo, ready).await {
                                return (sent, Err(err));
                            }
                        }
                        Ok(n) => {
                            off += n;
                            sent += n as u64;
                        }
                        Err(e) => return (sent, Err(e)),
                    }
                }
            }
            (sent, Ok(()))
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
            let total = net::iov_total(iov)?;
            let mut uio = Uio::new(iov);
            let peek = flags & MSG_PEEK != 0;
            let timeo = net::domain::ticks_us(self.opts().rcvtimeo_ticks);
            if self.ty != 1 {
                let got = loop {
                    let r = sock::dgram_recv(
                        &mut self.stack.lock(),
                        self.id,
                        total.min(IP_MAXPACKET) as usize,
                        peek,
                    )?;
                    match r {
                        Some(g) => break g,
                        None if nonblock => return Err(Errno::EWOULDBLOCK),
                        None => self.wait(cx, timeo, |e| sock::readable(e, self.id)).await?,
                    }
                };
                let (data, n, from, ctl) = got;
                uio.copyout(cx.mem, &data).await?;
                let ctl = ctl
                    .into_iter()
                    .map(|(level, ty, data)| net::Ctl::Raw { level, ty, data })
                    .collect();
                return Ok(Received {
                    n: data.len() as u64,
                    addr: Some(self.scoped(from.0, from.1)),
                    ctl,
                    flags: if n > data.len() { MSG_TRUNC } else { 0 },
                });
            }
            let mut done = 0u64;
            let waitall = flags & MSG_WAITALL != 0 && !peek;
            loop {
                let want = ((total - done) as usize).min(net::CHUNK_MAX);
                if want == 0 {
                    break;
                }
                let mut buf = vec![0u8; want];
                let r = sock::tcp_recv(&mut self.stack.lock(), self.id, &mut buf, peek);
                match r {
                    Err(e) if done > 0 => {
                        let _ = e;
                        break;
                    }
                    Err(e) => return Err(e),
                    Ok(Some(0)) => break,
                    Ok(Some(n)) => {
                        self.stack.kick();
                        uio.copyout(cx.mem, &buf[..n]).await?;
                        done += n as u64;
                        if !waitall || done >= total {
                            break;
                        }
                    }
                    Ok(None) => {
                        if done > 0 && !waitall {
                            break;
                        }
                        if nonblock {
                            if done > 0 {
                                break;
                            }
                            return Err(Errno::EWOULDBLOCK);
                        }
                        if let Err(e) = self.wait(cx, timeo, |e| sock::readable(e, self.id)).await {
                            if done > 0 {
                                break;
                            }
                            return Err(e);
                        }
                    }
                }
            }
            Ok(Received {
                n: done,
                addr: None,
                ctl: Vec::new(),
                flags: 0,
            })
        })
    }

    fn sockaddr(&self) -> Result<Vec<u8>> {
        self.name_of(false)
    }

    fn peeraddr(&self) -> Result<Vec<u8>> {
        self.name_of(true)
    }

    fn setopt(&self, _cx: &Ctx<'_>, level: i32, name: i32, v: &[u8]) -> Result<()> {
        let int = || -> Result<i32> {
            v.get(..4)
                .map(|b| i32::from_le_bytes(b.try_into().unwrap_or_default()))
                .ok_or(Errno::EINVAL)
        };
        match (level, name) {
            (SOL_SOCKET, n) if n & SO_BOOL_MASK == n && n.count_ones() == 1 => {
                let on = int()? != 0;
                let mut o = self.opts();
                if on {
                    o.options |= n;
                } else {
                    o.options &= !n;
                }
                Ok(())
            }
            (SOL_SOCKET, SO_LINGER) => {
                if v.len() < 8 {
                    return Err(Errno::EINVAL);
                }
                let on = i32::from_le_bytes(v[0..4].try_into().unwrap_or_default());
                let mut o = self.opts();
                o.linger = i32::from_le_bytes(v[4..8].try_into().unwrap_or_default());
                if on != 0 {
                    o.options |= SO_LINGER;
                } else {
                    o.options &= !SO_LINGER;
                }
                Ok(())
            }
            (SOL_SOCKET, SO_SNDBUF | SO_RCVBUF | SO_SNDLOWAT | SO_RCVLOWAT) => {
                let x = int()?;
                if x < 1 {
                    return Err(Errno::EINVAL);
                }
                let x = x as usize;
                let mut o = self.opts();
                match name {
                    SO_SNDBUF => {
                        o.snd_hiwat = x.min(256 * 1024);
                        let h = o.snd_hiwat;
                        drop(o);
                        if let Some(Pcb::Udp(u)) = self.stack.lock().pcbs.get_mut(&self.id) {
                            u.snd_hiwat = h;
                        }
                    }
                    SO_RCVBUF => {
                        o.rcv_hiwat = x.min(256 * 1024);
                        let h = o.rcv_hiwat;
                        drop(o);
                        match self.stack.lock().pcbs.get_mut(&self.id) {
                            Some(Pcb::Raw(r)) => r.rcv_hiwat = h,
                            Some(Pcb::Udp(u)) => u.rcv_hiwat = h,
                            _ => {}
                        }
                    }
                    SO_SNDLOWAT => o.snd_lowat = x.min(o.snd_hiwat),
                    _ => o.rcv_lowat = x.min(o.rcv_hiwat),
                }
                Ok(())
            }
            // NetBSD's generic `sosetopt`, shared with AF_LOCAL and sockin.
            (SOL_SOCKET, SO_SNDTIMEO) => {
                self.opts().sndtimeo_ticks = net::domain::opt_timeval_ticks(v)?;
                Ok(())
            }
            (SOL_SOCKET, SO_RCVTIMEO) => {
                self.opts().rcvtimeo_ticks = net::domain::opt_timeval_ticks(v)?;
                Ok(())
            }
            (SOL_SOCKET, _) => Err(Errno::ENOPROTOOPT),
            (IPPROTO_IP, IP_HDRINCL) if self.ty == 3 && !self.v6 => {
                let on = int()? != 0;
                if let Some(Pcb::Raw(r)) = self.stack.lock().pcbs.get_mut(&self.id) {
                    r.hdrincl = on;
                }
                Ok(())
            }
            (IPPROTO_IP, IP_TTL) if !self.v6 => {
                let t = int()?;
                if !(-1..=255).contains(&t) {
                    return Err(Errno::EINVAL);
                }
                if let Some(Pcb::Raw(r)) = self.stack.lock().pcbs.get_mut(&self.id) {
                    r.ttl = if t == -1 { 255 } else { t as u8 };
                }
                Ok(())
            }
            (IPPROTO_IP, IP_TOS) if !self.v6 => int().map(|_| ()),
            (IPPROTO_IP, 9..=13) if !self.v6 => {
                crate::mcast::setopt(&mut self.stack.lock(), self.id, false, name, v)
            }
            (IPPROTO_IP, _) if !self.v6 => Err(Errno::ENOPROTOOPT),
            (IPPROTO_IPV6, 9..=13) if self.v6 => {
                crate::mcast::setopt(&mut self.stack.lock(), self.id, true, name, v)
            }
            (IPPROTO_IPV6, crate::ip6opts::IPV6_PKTINFO) if self.v6 && self.ty != 1 => {
                crate::ip6opts::set_sticky(&mut self.stack.lock(), self.id, v)
            }
            (IPPROTO_TCP, TCP_NODELAY) if self.ty == 1 => {
                let on = int()? != 0;
                self.opts().nodelay = on;
                let mut e = self.stack.lock();
                if let Some(Pcb::Tcp(sock::Tcp {
                    state: sock::TcpState::Conn(h),
                    ..
                })) = e.pcbs.get(&self.id)
                {
                    let h = *h;
                    e.tcp(h).set_nagle_enabled(!on);
                }
                Ok(())
            }
            (IPPROTO_TCP, TCP_MAXSEG) if self.ty == 1 => int().map(|_| ()),
            (IPPROTO_IPV6, IPV6_RECVPKTINFO | IPV6_RECVHOPLIMIT) if self.v6 && self.ty == 3 => {
                let v = int()?;
                if let Some(Pcb::Raw(r)) = self.stack.lock().pcbs.get_mut(&self.id) {
                    match name {
                        IPV6_RECVPKTINFO => r.recvpktinfo = v != 0,
                        _ => r.recvhoplimit = v != 0,
                    }
                }
                Ok(())
            }
            // `in6p_hops`: raw, UDP and TCP sockets alike (ip6_ctloutput); -1 is the
            // kernel's default (`ip6_defhlim`).
            (IPPROTO_IPV6, IPV6_UNICAST_HOPS) if self.v6 => {
                let v = int()?;
                if !(-1..=255).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                self.opts().hops6 = v;
                // smoltcp sends no hop limit 0 (NetBSD does, and lo0 delivers it): 1.
                let hops = (v != -1).then_some(v.max(1) as u8);
                let mut e = self.stack.lock();
                match e.pcbs.get_mut(&self.id) {
                    Some(Pcb::Raw(r)) => {
                        r.ttl = if v == -1 {
                            crate::engine::IP_DEFTTL
                        } else {
                            v as u8
                        }
                    }
                    Some(Pcb::Udp(u)) => {
                        let h = u.h;
                        e.udp(h).set_hop_limit(hops);
                    }
                    Some(Pcb::Tcp(t)) => {
                        t.hops = hops;
                        if let sock::TcpState::Conn(h) = t.state {
                            e.tcp(h).set_hop_limit(hops);
                        }
                    }
                    None => {}
                }
                Ok(())
            }
            // The extension headers of received packets (`ip6_savecontrol`'s
            // IPV6_HOPOPTS, IPV6_DSTOPTS, IPV6_RTHDR): kept as asked. Our stack hands no
            // socket a packet that carries such headers (docs/netinet.md), so no
            // control message is ever due.
            (
                IPPROTO_IPV6,
                IPV6_RECVRTHDR | IPV6_RECVHOPOPTS | IPV6_RECVDSTOPTS | IPV6_RECVRTHDRDSTOPTS,
            ) if self.v6 => {
                let on = int()? != 0;
                let bit = 1u8 << (name - IPV6_RECVRTHDR);
                let mut o = self.opts();
                if on {
                    o.recv_ext6 |= bit;
                } else {
                    o.recv_ext6 &= !bit;
                }
                Ok(())
            }
            // Raw sockets fragment to IPV6_MMTU with it (frag.rs); a UDP socket's value
            // is checked and kept by nothing (its datagrams follow the path MTU).
            (IPPROTO_IPV6, IPV6_USE_MIN_MTU) if self.v6 => {
                let v = int()?;
                if !(-1..=1).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                if let Some(Pcb::Raw(r)) = self.stack.lock().pcbs.get_mut(&self.id) {
                    r.use_min_mtu = v;
                }
                Ok(())
            }
            (IPPROTO_IPV6, IPV6_RECVPATHMTU) if self.v6 && self.ty == 3 => {
                let v = int()?;
                if let Some(Pcb::Raw(r)) = self.stack.lock().pcbs.get_mut(&self.id) {
                    r.recvpathmtu = v != 0;
                }
                Ok(())
            }
            // Only before bind (`in6p_lport` 0 and `in6p_laddr` unspecified): EINVAL after.
            (IPPROTO_IPV6, IPV6_V6ONLY) if self.v6 => {
                let on = int()? != 0;
                let mut e = self.stack.lock();
                match e.pcbs.get_mut(&self.id) {
                    Some(Pcb::Tcp(sock::Tcp { local, v6only, .. }))
                    | Some(Pcb::Udp(sock::Udp { local, v6only, .. })) => {
                        if local.is_some() {
                            return Err(Errno::EINVAL);
                        }
                        *v6only = on;
                    }
                    Some(Pcb::Raw(r)) => {
                        if r.local.is_some() {
                            return Err(Errno::EINVAL);
                        }
                        r.v6only = on;
                    }
                    None => return Err(Errno::EBADF),
                }
                Ok(())
            }
            (IPPROTO_ICMPV6, ICMP6_FILTER) if self.v6 && self.ty == 3 => {
                // `struct icmp6_filter`: 256 bits, a set bit passes its type.
                if v.len() < 32 {
                    return Err(Errno::EINVAL);
                }
                let mut f = [0u32; 8];
                for (k, w) in f.iter_mut().enumerate() {
                    *w = u32::from_le_bytes(v[k * 4..k * 4 + 4].try_into().unwrap_or_default());
                }
                if let Some(Pcb::Raw(r)) = self.stack.lock().pcbs.get_mut(&self.id) {
                    r.icmp6_filter = f;
                }
                Ok(())
            }
            (IPPROTO_IPV6, _) if self.v6 => Err(Errno::ENOPROTOOPT),
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn getopt(&self, _cx: &Ctx<'_>, level: i32, name: i32) -> Result<Vec<u8>> {
        let int = |v: i32| Ok(v.to_le_bytes().to_vec());
        let o = self.opts();
        match (level, name) {
            (SOL_SOCKET, n) if (n & (SO_BOOL_MASK | SO_ACCEPTCONN)) == n && n.count_ones() == 1 => {
                int(o.options & n)
            }
            (SOL_SOCKET, SO_LINGER) => {
                let mut b = (o.options & SO_LINGER).to_le_bytes().to_vec();
                b.extend_from_slice(&o.linger.to_le_bytes());
                Ok(b)
            }
            (SOL_SOCKET, SO_SNDBUF) => int(o.snd_hiwat as i32),
            (SOL_SOCKET, SO_RCVBUF) => int(o.rcv_hiwat as i32),
            (SOL_SOCKET, SO_SNDLOWAT) => int(o.snd_lowat as i32),
            (SOL_SOCKET, SO_RCVLOWAT) => int(o.rcv_lowat as i32),
            (SOL_SOCKET, SO_TYPE) => int(self.ty),
            (SOL_SOCKET, SO_SNDTIMEO) => Ok(net::domain::ticks_timeval_bytes(o.sndtimeo_ticks)),
            (SOL_SOCKET, SO_RCVTIMEO) => Ok(net::domain::ticks_timeval_bytes(o.rcvtimeo_ticks)),
            (SOL_SOCKET, SO_ERROR) => {
                drop(o);
                let mut e = self.stack.lock();
                let err = match e.pcbs.get_mut(&self.id) {
                    Some(Pcb::Tcp(t)) => t.error.take(),
                    _ => None,
                };
                let err = match err {
                    Some(x) => Some(x),
                    None => match sock::connect_status(&mut e, self.id) {
                        Err(Errno::ENOTCONN) | Ok(_) => None,
                        Err(x) => {
                            if let Some(Pcb::Tcp(t)) = e.pcbs.get_mut(&self.id) {
                                t.error = None;
                            }
                            Some(x)
                        }
                    },
                };
                int(err.map_or(0, |x| i32::from(x.raw())))
            }
            (SOL_SOCKET, _) => Err(Errno::ENOPROTOOPT),
            (IPPROTO_IP, IP_HDRINCL) if self.ty == 3 && !self.v6 => {
                drop(o);
                let on =
                    matches!(self.stack.lock().pcbs.get(&self.id), Some(Pcb::Raw(r)) if r.hdrincl);
                int(i32::from(on))
            }
            (IPPROTO_IP, IP_TTL) if !self.v6 => {
                drop(o);
                let t = match self.stack.lock().pcbs.get(&self.id) {
                    Some(Pcb::Raw(r)) => r.ttl,
                    _ => crate::engine::IP_DEFTTL,
                };
                int(i32::from(t))
            }
            (IPPROTO_IP, IP_TOS) if !self.v6 => int(0),
            (IPPROTO_IP, 9..=13) if !self.v6 => {
                drop(o);
                crate::mcast::getopt(&self.stack.lock(), self.id, false, name)
            }
            (IPPROTO_IPV6, 9..=13) if self.v6 => {
                drop(o);
                crate::mcast::getopt(&self.stack.lock(), self.id, true, name)
            }
            (IPPROTO_IPV6, crate::ip6opts::IPV6_PKTINFO) if self.v6 && self.ty != 1 => {
                drop(o);
                Ok(crate::ip6opts::get_sticky(&self.stack.lock(), self.id))
            }
            (IPPROTO_TCP, TCP_NODELAY) if self.ty == 1 => int(i32::from(o.nodelay)),
            (IPPROTO_TCP, TCP_MAXSEG) if self.ty == 1 => int(512),
            (IPPROTO_IPV6, IPV6_UNICAST_HOPS) if self.v6 => int(o.hops6),
            (
                IPPROTO_IPV6,
                IPV6_RECVRTHDR | IPV6_RECVHOPOPTS | IPV6_RECVDSTOPTS | IPV6_RECVRTHDRDSTOPTS,
            ) if self.v6 => int(i32::from(o.recv_ext6 >> (name - IPV6_RECVRTHDR) & 1)),
            (IPPROTO_IPV6, IPV6_V6ONLY) if self.v6 => {
                drop(o);
                int(i32::from(sock::pcb_v6only(&self.stack.lock(), self.id)))
            }
            (IPPROTO_IPV6, IPV6_RECVPATHMTU) if self.v6 && self.ty == 3 => {
                drop(o);
                let on = matches!(self.stack.lock().pcbs.get(&self.id),
                    Some(Pcb::Raw(r)) if r.recvpathmtu);
                int(i32::from(on))
            }
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn ioctl(&self, _fp: &File, com: u32, data: &mut [u8]) -> Result<()> {
        const FIONREAD: u32 = 0x4004_667f;
        const SIOCATMARK: u32 = 0x4004_7307;
        let put = |data: &mut [u8], v: i32| {
            if data.len() >= 4 {
                data[..4].copy_from_slice(&v.to_le_bytes());
            }
        };
        match com {
            FIONREAD => {
                let n = sock::recv_queue(&mut self.stack.lock(), self.id);
                put(data, n as i32);
                Ok(())
            }
            SIOCATMARK => {
                put(data, 0);
                Ok(())
            }
            _ => Err(Errno::EOPNOTSUPP),
        }
    }

    fn ioctl_mem<'a>(
        &'a self,
        cx: Ctx<'a>,
        com: u32,
        data: &'a mut [u8],
    ) -> Option<BoxFut<'a, Result<()>>> {
        let fam = if self.v6 { AF_INET6 } else { AF_INET };
        crate::ioctl::socket_ioctl_mem(&self.stack, cx, fam, com, data)
    }

    fn poll(&self, events: PollEvents, sel: Option<&mut Selector>) -> PollEvents {
        if let Some(s) = sel {
            s.record(&self.stack.wq);
        }
        let mut e = self.stack.lock();
        let mut r = 0;
        if sock::readable(&mut e, self.id) {
            r |= events & (POLLIN | POLLRDNORM);
        }
        if sock::writable(&mut e, self.id) {
            r |= events & (POLLOUT | POLLWRNORM);
        }
        r
    }

    fn filter(&self, filter: Filter, sel: Option<&mut Selector>) -> Result<Filt> {
        let ev = filter.poll_events();
        let r = self.poll(ev, sel);
        let data = match filter {
            Filter::Read => sock::recv_queue(&mut self.stack.lock(), self.id) as i64,
            Filter::Write => self.opts().snd_hiwat as i64,
        };
        Ok(Filt {
            ready: r & ev != 0,
            data,
            eof: false,
        })
    }

    fn stat(&self) -> Result<Stat> {
        Ok(Stat {
            dev: NODEV,
            ino: self.ino,
            mode: S_IFSOCK,
            blksize: self.opts().snd_hiwat as i32,
            ..Stat::default()
        })
    }

    fn close(&self) {
        {
            let mut o = self.opts();
            if o.closed {
                return;
            }
            o.closed = true;
        }
        sock::close(&mut self.stack.lock(), self.id);
        self.stack.kick();
    }
}

impl Drop for InetSock {
    fn drop(&mut self) {
        self.close();
    }
}

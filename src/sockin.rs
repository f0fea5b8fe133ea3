//! The host side of sockin (`-lrumpnet_sockin`; NetBSD's `rumpcomp_sockin_*`): host TCP
//! and UDP sockets for `net::sockin`, the operator's address policy and the cap on host
//! sockets.
//!
//! Every host socket is non-blocking; the loops call it directly (one non-blocking system
//! call, never a wait). Readiness comes from one `rump-sockin` thread that watches all
//! host sockets with edge-triggered epoll and, at each edge, moves the socket's event count
//! and wakes its wait queue, from which a waiting request, poll, select or kqueue goes on,
//! on whichever loop its client is served. The same on both backends: a host socket follows
//! its descriptor across loops (fork, `SCM_RIGHTS`), which a per-loop ring could not follow.
//!
//! Policy (`RUMP_SOCKIN_ALLOW`, docs/threat-model.md): a comma-separated list of
//! `ADDR[/PREFIX][:PORT[-PORT]]` (IPv6 in brackets: `[::1]/128:8000-9000`; `any` for every
//! address and port). A bind must name an allowed address (the wildcard only when a rule
//! covers it exactly: `0.0.0.0` or `[::]`) and port (0 always: the host picks); a connect or
//! a datagram's destination must be allowed. Default: `127.0.0.0/8,[::1]` (loopback).
//! Refused: `EACCES`; nor may the host bind a socket to the wildcard implicitly (listen
//! without bind, a UDP send from an unbound socket; to loopback it is bound to loopback).
//! Host sockets are capped server-wide (`RUMP_SOCKIN_MAX`, default 256,
//! at most a quarter of the server's RLIMIT_NOFILE): past it `ENFILE`.

use std::collections::HashMap;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use kernel::sync::WaitQueue;
use kernel::{Errno, Result};
use net::sockin::{HostOpt, HostReady, HostSock, SockinHost};

/// Default of `RUMP_SOCKIN_MAX`.
pub const SOCKIN_MAX_DEFAULT: usize = 256;
/// Default of `RUMP_SOCKIN_ALLOW`.
pub const ALLOW_DEFAULT: &str = "127.0.0.0/8,[::1]";

/// One rule of the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    net: IpAddr,
    prefix: u8,
    ports: (u16, u16),
}

impl Rule {
    fn covers(&self, ip: IpAddr, port: u16) -> bool {
        if port != 0 && !(self.ports.0..=self.ports.1).contains(&port) {
            return false;
        }
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & m == u32::from(a) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & m == u128::from(a) & m
            }
            _ => false,
        }
    }
}

/// The addresses and ports sockets may bind and connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
}

fn parse_ports(s: &str) -> std::result::Result<(u16, u16), String> {
    let bad = || format!("bad port range {s:?}");
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (
                a.parse::<u16>().map_err(|_| bad())?,
                b.parse::<u16>().map_err(|_| bad())?,
            );
            if a > b {
                return Err(bad());
            }
            Ok((a, b))
        }
        None => {
            let p = s.parse::<u16>().map_err(|_| bad())?;
            Ok((p, p))
        }
    }
}

impl Policy {
    /// Parses `RUMP_SOCKIN_ALLOW`'s syntax.
    pub fn parse(spec: &str) -> std::result::Result<Policy, String> {
        let mut rules = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "any" {
                rules.push(Rule {
                    net: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    prefix: 0,
                    ports: (0, u16::MAX),
                });
                rules.push(Rule {
                    net: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                    prefix: 0,
                    ports: (0, u16::MAX),
                });
                continue;
            }
            let bad = |why: &str| format!("RUMP_SOCKIN_ALLOW: {item:?}: {why}");
            let (addr, rest) = if let Some(r) = item.strip_prefix('[') {
                let (a, rest) = r.split_once(']').ok_or_else(|| bad("no ']'"))?;
                (a, rest)
            } else {
                match item.find([':', '/']) {
                    Some(i) => (&item[..i], &item[i..]),
                    None => (item, ""),
                }
            };
            let ip: IpAddr = addr.parse().map_err(|_| bad("not an address"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let (prefix, ports) = match rest.split_once(':') {
                Some((p, ports)) => (p, parse_ports(ports).map_err(|e| bad(&e))?),
                None => (rest, (0, u16::MAX)),
            };
            let prefix = match prefix.strip_prefix('/') {
                Some(n) => n
                    .parse::<u8>()
                    .ok()
                    .filter(|&n| n <= max)
                    .ok_or_else(|| bad("bad prefix length"))?,
                None if prefix.is_empty() => max,
                None => return Err(bad("expected /PREFIX or :PORTS")),
            };
            rules.push(Rule {
                net: ip,
                prefix,
                ports,
            });
        }
        Ok(Policy { rules })
    }

    /// Whether a socket may bind `a` (port 0: any the host picks; the wildcard only by a
    /// rule naming it).
    pub fn may_bind(&self, a: &SocketAddr) -> bool {
        let ip = canonical(a.ip());
        if ip.is_unspecified() {
            return self
                .rules
                .iter()
                .any(|r| r.net.is_unspecified() && r.net.is_ipv4() == ip.is_ipv4());
        }
        self.rules.iter().any(|r| r.covers(ip, a.port()))
    }

    /// Whether a socket may connect or send to `a`.
    pub fn may_reach(&self, a: &SocketAddr) -> bool {
        let ip = canonical(a.ip());
        // Port 0 is no destination; the host answers it, as long as the address is allowed.
        self.rules.iter().any(|r| r.covers(ip, a.port()))
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// What the readiness thread knows of one host socket.
struct Watch {
    events: AtomicU64,
    queue: Arc<WaitQueue>,
    /// The descriptor (for `EPOLL_CTL_MOD`; the watch is removed before it closes).
    fd: RawFd,
    /// EPOLLOUT is armed: a waiter wants the next writability edge.
    want_out: std::sync::atomic::AtomicBool,
    token: u64,
}

impl Watch {
    fn token(&self) -> u64 {
        self.token
    }
}

/// What every host socket is watched for; EPOLLOUT is added only while someone waits to
/// write (an ACK would otherwise wake the thread for every segment sent).
const EV_IN: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
const EV_INOUT: u32 = EV_IN | libc::EPOLLOUT as u32;

/// The readiness thread: one epoll instance for every host socket.
struct Reactor {
    epfd: OwnedFd,
    watches: Mutex<HashMap<u64, Weak<Watch>>>,
    next: AtomicU64,
}

fn errno() -> Errno {
    host_errno(io::Error::last_os_error())
}

fn host_errno(e: io::Error) -> Errno {
    Errno::from_raw(crate::hosterr::to_netbsd(
        e.raw_os_error().unwrap_or(libc::EIO),
    ))
}

impl Reactor {
    fn start() -> io::Result<Arc<Reactor>> {
        // SAFETY: plain system call; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor nobody else owns.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let r = Arc::new(Reactor {
            epfd,
            watches: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        });
        let weak = Arc::downgrade(&r);
        let raw = r.epfd.as_raw_fd();
        std::thread::Builder::new()
            .name("rump-sockin".into())
            .spawn(move || Reactor::run(raw, weak))?;
        Ok(r)
    }

    fn run(epfd: RawFd, me: Weak<Reactor>) {
        // SAFETY: epoll_event is plain data.
        let mut evs: [libc::epoll_event; 64] = unsafe { zeroed() };
        loop {
            // SAFETY: `evs` is a valid array of 64 events; `epfd` stays open while the
            // reactor lives (the reactor lives as long as the server's sockin host).
            let n = unsafe { libc::epoll_wait(epfd, evs.as_mut_ptr(), 64, -1) };
            let Some(r) = me.upgrade() else { return };
            if n < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
            let ws: Vec<(Arc<Watch>, u32)> = {
                let map = r.watches.lock().unwrap_or_else(|e| e.into_inner());
                evs[..n as usize]
                    .iter()
                    .filter_map(|e| {
                        let (tok, ev) = ({ e.u64 }, { e.events });
                        map.get(&tok).and_then(Weak::upgrade).map(|w| (w, ev))
                    })
                    .collect()
            };
            for (w, ev) in &ws {
                if ev & libc::EPOLLOUT as u32 != 0 && w.want_out.swap(false, Ordering::AcqRel) {
                    r.modify(w.fd, EV_IN, w.token());
                }
            }
            drop(r);
            for (w, _) in ws {
                w.events.fetch_add(1, Ordering::AcqRel);
                w.queue.wake_all();
            }
        }
    }

    fn add(&self, fd: RawFd) -> io::Result<(u64, Arc<Watch>)> {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let w = Arc::new(Watch {
            events: AtomicU64::new(0),
            queue: Arc::new(WaitQueue::new()),
            fd,
            want_out: std::sync::atomic::AtomicBool::new(false),
            token,
        });
        self.watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token, Arc::downgrade(&w));
        let mut ev = libc::epoll_event {
            events: EV_IN,
            u64: token,
        };
        // SAFETY: `fd` is an open socket we own; `ev` is valid for the call.
        let rc =
            unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            self.remove(token, fd);
            return Err(e);
        }
        Ok((token, w))
    }

    /// Changes what `fd` is watched for (`EPOLL_CTL_MOD`: an edge already there is
    /// reported at once).
    fn modify(&self, fd: RawFd, events: u32, token: u64) {
        // Under the map's lock, and only while the token is registered: a socket leaves
        // the map before its descriptor closes, so `fd` is still this socket's (never a
        // reused number of another).
        let map = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        if !map.contains_key(&token) {
            return;
        }
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `fd` is open (above); `ev` is valid for the call.
        unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_MOD, fd, &mut ev) };
        drop(map);
    }

    fn remove(&self, token: u64, fd: RawFd) {
        self.watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&token);
        // SAFETY: `fd` is still open (closed after this); a failure (not registered) is
        // harmless.
        unsafe {
            libc::epoll_ctl(
                self.epfd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
    }
}

/// The server's sockin host: policy, cap and the readiness thread (started at the first
/// socket, after daemonizing).
pub struct HostSockin {
    inner: Arc<Inner>,
}

struct Inner {
    policy: Policy,
    cap: usize,
    count: AtomicUsize,
    reactor: OnceLock<std::result::Result<Arc<Reactor>, String>>,
}

impl HostSockin {
    /// From `RUMP_SOCKIN_ALLOW` and `RUMP_SOCKIN_MAX`; an error names the bad setting.
    pub fn from_env() -> std::result::Result<HostSockin, String> {
        let allow = std::env::var("RUMP_SOCKIN_ALLOW").unwrap_or_else(|_| ALLOW_DEFAULT.into());
        let policy = Policy::parse(&allow)?;
        let max = match std::env::var("RUMP_SOCKIN_MAX") {
            Ok(v) => v
                .parse::<usize>()
                .map_err(|_| format!("RUMP_SOCKIN_MAX: {v:?} is not a number"))?,
            Err(_) => SOCKIN_MAX_DEFAULT,
        };
        Ok(HostSockin::new(policy, max))
    }

    /// A host with `policy` and at most `max` host sockets (also at most a quarter of the
    /// server's RLIMIT_NOFILE).
    pub fn new(policy: Policy, max: usize) -> HostSockin {
        // SAFETY: getrlimit fills the struct; checked.
        let mut rl: libc::rlimit = unsafe { zeroed() };
        let nofile = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0 {
            rl.rlim_cur as usize
        } else {
            1024
        };
        HostSockin {
            inner: Arc::new(Inner {
                policy,
                cap: max.min((nofile / 4).max(16)),
                count: AtomicUsize::new(0),
                reactor: OnceLock::new(),
            }),
        }
    }

    /// The cap on host sockets.
    pub fn cap(&self) -> usize {
        self.inner.cap
    }
}

impl Inner {
    fn reactor(&self) -> Result<Arc<Reactor>> {
        match self
            .reactor
            .get_or_init(|| Reactor::start().map_err(|e| e.to_string()))
        {
            Ok(r) => Ok(r.clone()),
            Err(_) => Err(Errno::ENOBUFS),
        }
    }

    /// Takes one slot of the cap (`ENFILE` past it).
    fn take_slot(&self) -> Result<()> {
        let mut n = self.count.load(Ordering::Relaxed);
        loop {
            if n >= self.cap {
                return Err(Errno::ENFILE);
            }
            match self
                .count
                .compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(x) => n = x,
            }
        }
    }

    /// Wraps a new non-blocking host descriptor that holds a slot.
    fn wrap(self: &Arc<Inner>, fd: OwnedFd, stream: bool) -> Result<Box<dyn HostSock>> {
        let r = match self.reactor() {
            Ok(r) => r,
            Err(e) => {
                self.count.fetch_sub(1, Ordering::AcqRel);
                return Err(e);
            }
        };
        let (token, watch) = match r.add(fd.as_raw_fd()) {
            Ok(x) => x,
            Err(e) => {
                self.count.fetch_sub(1, Ordering::AcqRel);
                return Err(host_errno(e));
            }
        };
        Ok(Box::new(Sock {
            fd,
            stream,
            token,
            watch,
            reactor: r,
            inner: self.clone(),
            linger: AtomicU64::new(0),
        }))
    }
}

impl SockinHost for HostSockin {
    fn socket(&self, v6: bool, stream: bool) -> Result<Box<dyn HostSock>> {
        self.inner.take_slot()?;
        let dom = if v6 { libc::AF_INET6 } else { libc::AF_INET };
        let ty = if stream {
            libc::SOCK_STREAM
        } else {
            libc::SOCK_DGRAM
        } | libc::SOCK_NONBLOCK
            | libc::SOCK_CLOEXEC;
        // SAFETY: plain system call; checked.
        let fd = unsafe { libc::socket(dom, ty, 0) };
        if fd < 0 {
            let e = errno();
            self.inner.count.fetch_sub(1, Ordering::AcqRel);
            return Err(e);
        }
        // SAFETY: a new descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let s = self.inner.wrap(fd, stream)?;
        if !stream {
            // NetBSD's sockin: "make sure we can send/recv maximum" for UDP.
            let _ = s.setopt(HostOpt::SndBuf, net::sockin::SOCKIN_SBSIZE);
            let _ = s.setopt(HostOpt::RcvBuf, net::sockin::SOCKIN_SBSIZE);
        }
        Ok(s)
    }
}

/// One host socket.
struct Sock {
    fd: OwnedFd,
    stream: bool,
    token: u64,
    watch: Arc<Watch>,
    reactor: Arc<Reactor>,
    inner: Arc<Inner>,
    /// SO_LINGER time set (0: off or zero).
    linger: AtomicU64,
}

impl Drop for Sock {
    fn drop(&mut self) {
        self.reactor.remove(self.token, self.fd.as_raw_fd());
        if self.linger.load(Ordering::Relaxed) > 0 {
            // A lingering close would block the loop thread: the host closes in the
            // background instead (docs/threat-model.md).
            let l = libc::linger {
                l_onoff: 0,
                l_linger: 0,
            };
            // SAFETY: valid pointer and length; the descriptor is open.
            unsafe {
                libc::setsockopt(
                    self.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&l as *const libc::linger).cast(),
                    size_of::<libc::linger>() as libc::socklen_t,
                )
            };
        }
        self.inner.count.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A host `sockaddr_storage` for an address.
fn to_host(a: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; zero is valid.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match a {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo().to_be(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// The address in a host `sockaddr_storage` (`None`: another family).
fn from_host(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says it holds a sockaddr_in.
            let sin: libc::sockaddr_in =
                unsafe { std::ptr::read((ss as *const libc::sockaddr_storage).cast()) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says it holds a sockaddr_in6.
            let sin6: libc::sockaddr_in6 =
                unsafe { std::ptr::read((ss as *const libc::sockaddr_storage).cast()) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                u32::from_be(sin6.sin6_flowinfo),
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn opt_of(o: HostOpt) -> (i32, i32) {
    use libc::*;
    match o {
        HostOpt::ReuseAddr => (SOL_SOCKET, SO_REUSEADDR),
        HostOpt::ReusePort => (SOL_SOCKET, SO_REUSEPORT),
        HostOpt::KeepAlive => (SOL_SOCKET, SO_KEEPALIVE),
        HostOpt::Broadcast => (SOL_SOCKET, SO_BROADCAST),
        HostOpt::DontRoute => (SOL_SOCKET, SO_DONTROUTE),
        HostOpt::OobInline => (SOL_SOCKET, SO_OOBINLINE),
        HostOpt::SndBuf => (SOL_SOCKET, SO_SNDBUF),
        HostOpt::RcvBuf => (SOL_SOCKET, SO_RCVBUF),
        HostOpt::RcvLowat => (SOL_SOCKET, SO_RCVLOWAT),
        HostOpt::Error => (SOL_SOCKET, SO_ERROR),
        HostOpt::TcpNoDelay => (IPPROTO_TCP, TCP_NODELAY),
        HostOpt::TcpMaxSeg => (IPPROTO_TCP, TCP_MAXSEG),
        HostOpt::TcpKeepIdle => (IPPROTO_TCP, TCP_KEEPIDLE),
        HostOpt::TcpKeepIntvl => (IPPROTO_TCP, TCP_KEEPINTVL),
        HostOpt::TcpKeepCnt => (IPPROTO_TCP, TCP_KEEPCNT),
        HostOpt::IpTos => (IPPROTO_IP, IP_TOS),
        HostOpt::IpTtl => (IPPROTO_IP, IP_TTL),
        HostOpt::Ipv6Hops => (IPPROTO_IPV6, IPV6_UNICAST_HOPS),
        HostOpt::Ipv6Only => (IPPROTO_IPV6, IPV6_V6ONLY),
        HostOpt::Linger => (SOL_SOCKET, SO_LINGER),
    }
}

impl Sock {
    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Before the host would bind the socket implicitly to the wildcard address (a UDP
    /// send or connect, a listen, on an unbound socket): unless the policy allows the
    /// wildcard, a datagram socket going to loopback is bound to the loopback address of
    /// its family first, and anything else is refused (`EACCES`), so no socket listens or
    /// receives on outside interfaces unless the operator says so.
    fn no_implicit_wildcard(&self, to: Option<&SocketAddr>) -> Result<()> {
        let me = self.name(false)?;
        if me.port() != 0 || !me.ip().is_unspecified() {
            return Ok(());
        }
        if self.inner.policy.may_bind(&me) {
            return Ok(());
        }
        match to {
            Some(a) if canonical(a.ip()).is_loopback() => {
                let lo = match me {
                    SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
                    SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0),
                };
                self.bind(&lo)
            }
            _ => Err(Errno::EACCES),
        }
    }

    fn name(&self, peer: bool) -> Result<SocketAddr> {
        // SAFETY: plain data.
        let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
        let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let p = (&mut ss as *mut libc::sockaddr_storage).cast();
        // SAFETY: `ss` and `len` are valid for the call.
        let rc = unsafe {
            if peer {
                libc::getpeername(self.raw(), p, &mut len)
            } else {
                libc::getsockname(self.raw(), p, &mut len)
            }
        };
        if rc != 0 {
            return Err(errno());
        }
        from_host(&ss).ok_or(Errno::EAFNOSUPPORT)
    }
}

impl HostSock for Sock {
    fn bind(&self, a: &SocketAddr) -> Result<()> {
        if !self.inner.policy.may_bind(a) {
            return Err(Errno::EACCES);
        }
        let (ss, len) = to_host(a);
        // SAFETY: valid address of `len` bytes.
        let rc = unsafe {
            libc::bind(
                self.raw(),
                (&ss as *const libc::sockaddr_storage).cast(),
                len,
            )
        };
        if rc != 0 {
            return Err(errno());
        }
        Ok(())
    }

    fn listen(&self, backlog: i32) -> Result<()> {
        self.no_implicit_wildcard(None)?;
        // SAFETY: plain system call.
        if unsafe { libc::listen(self.raw(), backlog) } != 0 {
            return Err(errno());
        }
        Ok(())
    }

    fn connect(&self, a: &SocketAddr) -> Result<()> {
        if !self.inner.policy.may_reach(a) {
            return Err(Errno::EACCES);
        }
        if !self.stream {
            self.no_implicit_wildcard(Some(a))?;
        }
        let (ss, len) = to_host(a);
        // SAFETY: valid address of `len` bytes.
        let rc = unsafe {
            libc::connect(
                self.raw(),
                (&ss as *const libc::sockaddr_storage).cast(),
                len,
            )
        };
        if rc != 0 {
            return Err(errno());
        }
        Ok(())
    }

    fn accept(&self) -> Result<(Box<dyn HostSock>, SocketAddr)> {
        self.inner.take_slot()?;
        // SAFETY: plain data.
        let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
        let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `ss`/`len` valid for the call.
        let fd = unsafe {
            libc::accept4(
                self.raw(),
                (&mut ss as *mut libc::sockaddr_storage).cast(),
                &mut len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = errno();
            self.inner.count.fetch_sub(1, Ordering::AcqRel);
            return Err(e);
        }
        // SAFETY: a new descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let peer = from_host(&ss);
        let s = self.inner.wrap(fd, self.stream)?;
        Ok((s, peer.ok_or(Errno::ECONNABORTED)?))
    }

    fn send(&self, data: &[u8], to: Option<&SocketAddr>) -> Result<usize> {
        let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
        let n = match to {
            Some(a) => {
                if !self.inner.policy.may_reach(a) {
                    return Err(Errno::EACCES);
                }
                self.no_implicit_wildcard(Some(a))?;
                let (ss, len) = to_host(a);
                // SAFETY: valid buffer and address.
                unsafe {
                    libc::sendto(
                        self.raw(),
                        data.as_ptr().cast(),
                        data.len(),
                        flags,
                        (&ss as *const libc::sockaddr_storage).cast(),
                        len,
                    )
                }
            }
            None => {
                // A connected datagram socket: its peer and its address were checked at
                // connect.
                // SAFETY: valid buffer.
                unsafe { libc::send(self.raw(), data.as_ptr().cast(), data.len(), flags) }
            }
        };
        if n < 0 {
            return Err(errno());
        }
        Ok(n as usize)
    }

    fn recv(&self, buf: &mut [u8], peek: bool) -> Result<(usize, Option<SocketAddr>, usize)> {
        let mut flags = libc::MSG_DONTWAIT;
        if peek {
            flags |= libc::MSG_PEEK;
        }
        if !self.stream {
            flags |= libc::MSG_TRUNC;
        }
        // SAFETY: plain data.
        let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
        let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: valid buffer, address and length.
        let n = unsafe {
            libc::recvfrom(
                self.raw(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                flags,
                (&mut ss as *mut libc::sockaddr_storage).cast(),
                &mut len,
            )
        };
        if n < 0 {
            return Err(errno());
        }
        let whole = n as usize;
        let got = whole.min(buf.len());
        let from = if self.stream { None } else { from_host(&ss) };
        Ok((got, from, whole))
    }

    fn shutdown(&self, how: i32) -> Result<()> {
        let how = match how {
            0 => libc::SHUT_RD,
            1 => libc::SHUT_WR,
            _ => libc::SHUT_RDWR,
        };
        // SAFETY: plain system call.
        if unsafe { libc::shutdown(self.raw(), how) } != 0 {
            return Err(errno());
        }
        Ok(())
    }

    fn sockname(&self) -> Result<SocketAddr> {
        self.name(false)
    }

    fn peername(&self) -> Result<SocketAddr> {
        self.name(true)
    }

    fn setopt(&self, o: HostOpt, v: i32) -> Result<()> {
        let (level, name) = opt_of(o);
        let rc = if o == HostOpt::Linger {
            let l = libc::linger {
                l_onoff: i32::from(v >= 0),
                l_linger: v.max(0),
            };
            self.linger.store(v.max(0) as u64, Ordering::Relaxed);
            // SAFETY: valid pointer and length.
            unsafe {
                libc::setsockopt(
                    self.raw(),
                    level,
                    name,
                    (&l as *const libc::linger).cast(),
                    size_of::<libc::linger>() as libc::socklen_t,
                )
            }
        } else {
            // SAFETY: valid pointer and length.
            unsafe {
                libc::setsockopt(
                    self.raw(),
                    level,
                    name,
                    (&v as *const i32).cast(),
                    size_of::<i32>() as libc::socklen_t,
                )
            }
        };
        if rc != 0 {
            return Err(errno());
        }
        Ok(())
    }

    fn getopt(&self, o: HostOpt) -> Result<i32> {
        let (level, name) = opt_of(o);
        if o == HostOpt::Linger {
            // SAFETY: plain data.
            let mut l: libc::linger = unsafe { zeroed() };
            let mut len = size_of::<libc::linger>() as libc::socklen_t;
            // SAFETY: valid pointer and length.
            let rc = unsafe {
                libc::getsockopt(
                    self.raw(),
                    level,
                    name,
                    (&mut l as *mut libc::linger).cast(),
                    &mut len,
                )
            };
            if rc != 0 {
                return Err(errno());
            }
            return Ok(if l.l_onoff != 0 { l.l_linger } else { -1 });
        }
        let mut v: i32 = 0;
        let mut len = size_of::<i32>() as libc::socklen_t;
        // SAFETY: valid pointer and length.
        let rc = unsafe {
            libc::getsockopt(
                self.raw(),
                level,
                name,
                (&mut v as *mut i32).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(errno());
        }
        if o == HostOpt::Error && v != 0 {
            return Ok(i32::from(crate::hosterr::to_netbsd(v)));
        }
        Ok(v)
    }

    fn nread(&self) -> Result<i32> {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int.
        if unsafe { libc::ioctl(self.raw(), libc::FIONREAD, &mut n) } != 0 {
            return Err(errno());
        }
        Ok(n)
    }

    fn ready(&self) -> HostReady {
        let mut p = libc::pollfd {
            fd: self.raw(),
            events: libc::POLLIN | libc::POLLOUT | libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: one valid pollfd; no wait.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        if n <= 0 {
            return HostReady::default();
        }
        let r = p.revents;
        let err = r & (libc::POLLERR | libc::POLLHUP) != 0;
        HostReady {
            readable: r & (libc::POLLIN | libc::POLLRDHUP) != 0 || err,
            writable: r & libc::POLLOUT != 0 || err,
            hup: err,
        }
    }

    fn events(&self) -> u64 {
        self.watch.events.load(Ordering::Acquire)
    }

    fn queue(&self) -> &Arc<WaitQueue> {
        &self.watch.queue
    }

    fn want_writable(&self) {
        if !self.watch.want_out.swap(true, Ordering::AcqRel) {
            self.reactor.modify(self.raw(), EV_INOUT, self.token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_default_is_loopback() {
        let p = Policy::parse(ALLOW_DEFAULT).unwrap();
        let ok = |s: &str| p.may_reach(&s.parse().unwrap());
        assert!(ok("127.0.0.1:80"));
        assert!(ok("127.9.9.9:1"));
        assert!(ok("[::1]:22"));
        assert!(ok("[::ffff:127.0.0.1]:22"));
        assert!(!ok("10.0.0.1:80"));
        assert!(!ok("[::ffff:10.0.0.1]:80"));
        assert!(!ok("[::2]:80"));
        assert!(p.may_bind(&"127.0.0.1:0".parse().unwrap()));
        assert!(!p.may_bind(&"0.0.0.0:0".parse().unwrap()));
        assert!(!p.may_bind(&"[::]:80".parse().unwrap()));
    }

    #[test]
    fn policy_syntax() {
        let p = Policy::parse("10.1.0.0/16:8000-8100, [fe80::]/10, 0.0.0.0").unwrap();
        assert!(p.may_reach(&"10.1.2.3:8050".parse().unwrap()));
        assert!(!p.may_reach(&"10.1.2.3:80".parse().unwrap()));
        assert!(!p.may_reach(&"10.2.0.1:8050".parse().unwrap()));
        assert!(p.may_reach(&"[fe80::1]:9".parse().unwrap()));
        assert!(p.may_bind(&"0.0.0.0:0".parse().unwrap()));
        assert!(p.may_bind(&"10.1.0.1:0".parse().unwrap()));
        let any = Policy::parse("any").unwrap();
        assert!(any.may_reach(&"8.8.8.8:53".parse().unwrap()));
        assert!(any.may_bind(&"[::]:0".parse().unwrap()));
        for bad in ["10.0.0.1/33", "[::1", "x", "1.2.3.4:9-1", "1.2.3.4:70000"] {
            assert!(Policy::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Policy::parse("").unwrap().rules.len(), 0);
    }
}

//! The host side of sockin (`-lrumpnet_sockin`; NetBSD's `rumpcomp_sockin_*`): host TCP
//! and UDP sockets for `net::sockin`, the operator's address policy and the cap on host
//! sockets.
//!
//! Every host socket is non-blocking; the loops call it directly (one non-blocking system
//! call, never a wait). Only a request (or a poll, select or kqueue) that is about to wait
//! arms a readiness wait for the direction it waits for (`want_readable`/`want_writable`):
//! a task on the loop running it that awaits `ring::ready` — an io_uring `POLL_ADD` on that
//! loop's ring, or a registration on its epoll instance — and then moves the socket's event
//! count and wakes its wait queue. So a request woken by its own socket is woken on its own
//! loop, without a thread hop; a waiter on another loop (the socket passed on by fork or
//! `SCM_RIGHTS`) is woken through the queue as for any other file. At most one wait per
//! direction is armed per socket, and at most `LOOP_WAITS_MAX` per loop on its ring (each
//! holds one of the ring's op slots; past it one task of the loop polls the rest every
//! 2 ms). A wait ends at readiness or at the socket's last close (the
//! descriptor closes with the last armed wait, so no ring poll or epoll registration ever
//! outlives it); a waiter that goes away (its process exits, its client disconnects) leaves
//! the wait armed until one of those.
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

use std::future::{poll_fn, Future};
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

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

/// A direction a waiter waits for: index into [`Watch::cancel`].
const IN: usize = 0;
const OUT: usize = 1;

/// Readiness waits a loop keeps armed on its ring at most: each holds one of the ring's
/// bounded op slots (about 8 000 per loop with the server's ring size) for as long as the
/// socket stays idle; an operator who raises `RUMP_SOCKIN_MAX` (and the descriptor limit)
/// far enough would otherwise let idle sockets in poll or kqueue starve the loop's other
/// I/O. At the default cap (256 sockets, two waits each) it is never reached.
const LOOP_WAITS_MAX: usize = 1024;

/// How often the overflow waits past [`LOOP_WAITS_MAX`] are polled.
const OVERFLOW_TICK: std::time::Duration = std::time::Duration::from_millis(2);

thread_local! {
    /// Readiness waits armed on this loop's ring.
    static LOOP_WAITS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Waits past the bound: polled (without waiting) every [`OVERFLOW_TICK`] by one task of
    /// this loop while any is there.
    static OVERFLOW: std::cell::RefCell<Vec<(Arc<Watch>, usize)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Gives back a [`LOOP_WAITS`] slot when its wait ends (or its task is dropped).
struct LoopWaitSlot;

impl Drop for LoopWaitSlot {
    fn drop(&mut self) {
        LOOP_WAITS.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// Adds a wait past the loop's bound to the overflow list; starts its ticker when the list
/// was empty. The list holds at most two entries per host socket (one per direction).
fn overflow_add(w: Arc<Watch>, dir: usize) {
    let start = OVERFLOW.with(|o| {
        let mut o = o.borrow_mut();
        o.push((w, dir));
        o.len() == 1
    });
    if start {
        ring::spawn_local(overflow_ticker());
    }
}

/// Polls the overflow waits until none is left: one `poll(2)` without waiting per tick;
/// a ready (or hung up, or closed) socket's wait ends.
async fn overflow_ticker() {
    loop {
        ring::sleep(OVERFLOW_TICK).await;
        let list = OVERFLOW.with(|o| std::mem::take(&mut *o.borrow_mut()));
        let mut fds: Vec<libc::pollfd> = list
            .iter()
            .map(|(w, dir)| libc::pollfd {
                fd: w.fd.as_raw_fd(),
                events: if *dir == IN {
                    libc::POLLIN | libc::POLLRDHUP
                } else {
                    libc::POLLOUT
                },
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of its length; each descriptor is open while its
        // watch (in `list`) lives.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
        let mut keep = Vec::new();
        for ((w, dir), p) in list.into_iter().zip(&fds) {
            if n < 0 || p.revents != 0 || w.closed.load(Ordering::Acquire) {
                w.fire(dir);
            } else {
                keep.push((w, dir));
            }
        }
        let empty = OVERFLOW.with(|o| {
            let mut o = o.borrow_mut();
            o.extend(keep);
            o.is_empty()
        });
        if empty {
            return;
        }
    }
}

/// One host socket's descriptor and what its waiters need: the event count, the wait queue
/// and the readiness waits armed for them. Shared by the socket and its armed waits, so the
/// descriptor closes only after the last wait has ended (never under a pending ring poll or
/// epoll registration, never a reused number).
struct Watch {
    fd: OwnedFd,
    events: AtomicU64,
    queue: Arc<WaitQueue>,
    /// Directions (`1 << IN`, `1 << OUT`) with a readiness wait armed.
    armed: AtomicU8,
    /// Set at the socket's last close: armed waits end.
    closed: AtomicBool,
    /// The wakers of the armed waits, to end them at close.
    cancel: Mutex<[Option<Waker>; 2]>,
}

fn errno() -> Errno {
    host_errno(io::Error::last_os_error())
}

fn host_errno(e: io::Error) -> Errno {
    Errno::from_raw(crate::hosterr::to_netbsd(
        e.raw_os_error().unwrap_or(libc::EIO),
    ))
}

impl Watch {
    fn new(fd: OwnedFd) -> Arc<Watch> {
        Arc::new(Watch {
            fd,
            events: AtomicU64::new(0),
            queue: Arc::new(WaitQueue::new()),
            armed: AtomicU8::new(0),
            closed: AtomicBool::new(false),
            cancel: Mutex::new([None, None]),
        })
    }

    /// Makes sure a readiness wait for `dir` is armed: a waiter is about to sleep on the
    /// queue until the event count moves. At most one per direction, wherever it runs; on
    /// a loop thread it is a task on that loop (the loop running the waiting request).
    fn arm(self: &Arc<Watch>, dir: usize) {
        let bit = 1u8 << dir;
        if self.closed.load(Ordering::Acquire)
            || self.armed.fetch_or(bit, Ordering::AcqRel) & bit != 0
        {
            return;
        }
        let w = self.clone();
        if ring::current().is_some() {
            if LOOP_WAITS.with(|n| n.get()) < LOOP_WAITS_MAX {
                LOOP_WAITS.with(|n| n.set(n.get() + 1));
                ring::spawn_local(async move {
                    let _slot = LoopWaitSlot;
                    w.wait_on_loop(dir).await
                });
            } else {
                overflow_add(w, dir);
            }
            return;
        }
        // Off the loops (not a path the server takes: requests run on loops): a thread
        // that polls with a short timeout so that it notices the close.
        let w2 = self.clone();
        let spawned = std::thread::Builder::new()
            .name("rump-sockin-wait".into())
            .spawn(move || {
                let events = if dir == IN {
                    libc::POLLIN | libc::POLLRDHUP
                } else {
                    libc::POLLOUT
                };
                while !w.closed.load(Ordering::Acquire) {
                    let mut p = libc::pollfd {
                        fd: w.fd.as_raw_fd(),
                        events,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd; the descriptor is open while `w` lives.
                    if unsafe { libc::poll(&mut p, 1, 100) } != 0 {
                        break;
                    }
                }
                w.fire(dir);
            });
        if spawned.is_err() {
            w2.fire(dir);
        }
    }

    /// The armed wait for `dir` on this loop's ring (or epoll): ends when the socket is
    /// ready that way (or hung up), or at its close.
    async fn wait_on_loop(self: Arc<Watch>, dir: usize) {
        let mut wait = pin!(ring::ready(self.fd.as_raw_fd(), dir == IN, dir == OUT));
        poll_fn(|cx| {
            if self.closed.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            {
                let mut c = self.cancel.lock().unwrap_or_else(|e| e.into_inner());
                if !c[dir].as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    c[dir] = Some(cx.waker().clone());
                }
            }
            // Again after storing the waker: a close in between found none to wake.
            if self.closed.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            // An error (none expected: the descriptor is ours and open) ends the wait too;
            // the waiter's retried system call tells what is wrong.
            wait.as_mut().poll(cx).map(drop)
        })
        .await;
        self.cancel.lock().unwrap_or_else(|e| e.into_inner())[dir] = None;
        self.fire(dir);
    }

    /// A wait for `dir` ended: moves the event count and wakes the queue (requests, poll,
    /// select and kqueue waiting on the socket).
    fn fire(&self, dir: usize) {
        self.armed.fetch_and(!(1u8 << dir), Ordering::AcqRel);
        self.events.fetch_add(1, Ordering::AcqRel);
        self.queue.wake_all();
    }

    /// The socket's last close: ends the armed waits (the descriptor closes with the last
    /// of them).
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let ws = std::mem::take(&mut *self.cancel.lock().unwrap_or_else(|e| e.into_inner()));
        for w in ws.into_iter().flatten() {
            w.wake();
        }
    }
}

/// The server's sockin host: the policy and the cap.
pub struct HostSockin {
    inner: Arc<Inner>,
}

struct Inner {
    policy: Policy,
    cap: usize,
    count: AtomicUsize,
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
            }),
        }
    }

    /// The cap on host sockets.
    pub fn cap(&self) -> usize {
        self.inner.cap
    }
}

impl Inner {
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
        Ok(Box::new(Sock {
            watch: Watch::new(fd),
            stream,
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
    watch: Arc<Watch>,
    stream: bool,
    inner: Arc<Inner>,
    /// SO_LINGER time set (0: off or zero).
    linger: AtomicU64,
}

impl Drop for Sock {
    fn drop(&mut self) {
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
                    self.watch.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&l as *const libc::linger).cast(),
                    size_of::<libc::linger>() as libc::socklen_t,
                )
            };
        }
        self.watch.close();
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
        self.watch.fd.as_raw_fd()
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

    fn want_readable(&self) {
        self.watch.arm(IN);
    }

    fn want_writable(&self) {
        self.watch.arm(OUT);
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

    /// Off the loops (no path of the server's, but the trait allows it) a wait is a
    /// polling thread: it still wakes the queue, and a close still closes the socket.
    #[test]
    fn waits_armed_off_the_loops_wake_and_end_at_close() {
        use std::io::{Read, Write};
        let h = HostSockin::new(Policy::parse(ALLOW_DEFAULT).unwrap(), 16);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = h.socket(false, true).unwrap();
        match s.connect(&l.local_addr().unwrap()) {
            Ok(()) | Err(Errno::EINPROGRESS) => {}
            Err(e) => panic!("connect: {e:?}"),
        }
        let (mut peer, _) = l.accept().unwrap();
        let seen = s.events();
        s.want_readable();
        s.want_readable(); // one wait per direction
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(s.events(), seen, "nothing to read yet");
        peer.write_all(b"hi").unwrap();
        let t = std::time::Instant::now();
        while s.events() == seen {
            assert!(t.elapsed() < std::time::Duration::from_secs(5), "no wake");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mut b = [0u8; 4];
        assert_eq!(s.recv(&mut b, false).unwrap().0, 2);
        // Armed again, then closed: the peer sees end of file.
        s.want_readable();
        drop(s);
        peer.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        assert_eq!(peer.read(&mut b).unwrap(), 0);
        assert_eq!(h.inner.count.load(Ordering::Relaxed), 0);
    }

    /// A wait past the loop's bound goes to the overflow ticker: it still wakes, and a
    /// close still closes the socket.
    #[test]
    fn waits_past_the_loop_bound_are_polled_and_end_at_close() {
        use std::io::{Read, Write};
        let rt = ring::Runtime::start(&ring::Config {
            loops: 1,
            pin: false,
            ..ring::Config::default()
        })
        .unwrap();
        let h = HostSockin::new(Policy::parse(ALLOW_DEFAULT).unwrap(), 16);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = h.socket(false, true).unwrap();
        match s.connect(&l.local_addr().unwrap()) {
            Ok(()) | Err(Errno::EINPROGRESS) => {}
            Err(e) => panic!("connect: {e:?}"),
        }
        let (mut peer, _) = l.accept().unwrap();
        let s = Arc::new(s);
        let arm = |s: &Arc<Box<dyn HostSock>>| {
            let (tx, rx) = std::sync::mpsc::channel();
            let s = s.clone();
            rt.handles()[0].spawn(move || async move {
                let before = LOOP_WAITS.with(|n| n.replace(LOOP_WAITS_MAX));
                s.want_readable();
                LOOP_WAITS.with(|n| n.set(before));
                let queued = OVERFLOW.with(|o| o.borrow().len());
                tx.send(queued).unwrap();
            });
            rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap()
        };
        let seen = s.events();
        assert_eq!(arm(&s), 1, "past the bound: on the overflow list");
        std::thread::sleep(std::time::Duration::from_millis(30));
        assert_eq!(s.events(), seen, "nothing to read yet");
        peer.write_all(b"hi").unwrap();
        let t = std::time::Instant::now();
        while s.events() == seen {
            assert!(t.elapsed() < std::time::Duration::from_secs(5), "no wake");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let mut b = [0u8; 4];
        assert_eq!(s.recv(&mut b, false).unwrap().0, 2);
        assert_eq!(arm(&s), 1);
        drop(s); // the last reference, once the arming task is gone
        peer.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        assert_eq!(
            peer.read(&mut b).unwrap(),
            0,
            "closed from the overflow list"
        );
        rt.shutdown();
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

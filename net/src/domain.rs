//! The protocol switch (NetBSD's `struct domain` + `struct protosw`/`pr_usrreqs`): the
//! generic socket layer in [`crate::sys`] copies arguments, keeps descriptors, posts
//! SIGPIPE and lays out control messages; everything a family decides goes through a
//! [`Domain`] (creating sockets) and the [`ProtoSock`] it made (one socket's requests).
//!
//! Families register on the [`Net`] that [`crate::attach`] hands out, at boot and before
//! clients come: AF_LOCAL is the first (`crate::local`), others live in other crates
//! (sockin in this one, the in-kernel TCP/IP stack in `netinet`).

use std::any::Any;
use std::sync::{Arc, Mutex, RwLock, Weak};

use kernel::abi::Stat;
use kernel::file::{File, Filt, Filter, Iov, PollEvents, Selector};
use kernel::{BoxFut, DynMem, Errno, Kernel, Proc, Result};

/// What a request runs with: the kernel, the calling process and its memory (for a family
/// that copies data itself, through [`Uio`]).
pub struct Ctx<'a> {
    /// The rump kernel.
    pub k: &'a Kernel,
    /// The caller.
    pub p: &'a Proc,
    /// The caller's memory.
    pub mem: &'a dyn DynMem,
}

/// Control data of a message, as the generic layer internalizes and externalizes it.
pub enum Ctl {
    /// `SCM_RIGHTS`: open files in flight (AF_LOCAL).
    Rights(Vec<Arc<File>>),
    /// `SCM_CREDS`: a `struct sockcred` (AF_LOCAL).
    Creds(Vec<u8>),
    /// Any other control message a family hands to the receiver (`cmsg_level`,
    /// `cmsg_type`, its data), laid out by the generic layer.
    Raw {
        /// `cmsg_level`.
        level: i32,
        /// `cmsg_type`.
        ty: i32,
        /// The data after the header.
        data: Vec<u8>,
    },
}

/// What a receive got besides the bytes copied out (`soreceive`'s results).
pub struct Received {
    /// Bytes copied to the caller's iovecs.
    pub n: u64,
    /// The sender's address (datagrams; `None`: none).
    pub addr: Option<Vec<u8>>,
    /// Control data for the caller (the generic layer lays it out, or drops it).
    pub ctl: Vec<Ctl>,
    /// `msg_flags` (`MSG_TRUNC`, ...; `MSG_CTRUNC` is the generic layer's).
    pub flags: i32,
}

/// What an accept got: the new socket and its peer's address.
pub struct Accepted {
    /// The connection (its file flags are the generic layer's).
    pub so: Arc<dyn ProtoSock>,
    /// The peer's address as `accept(2)` copies it out (`sa_len` bytes).
    pub peer: Vec<u8>,
}

/// One socket of a family: NetBSD's `pr_usrreqs` for it plus the parts of `struct socket`
/// the family keeps (its state, buffers, options and wait queues live in the family).
///
/// Requests run on a loop and may sleep: a blocking one waits on the family's own
/// `kernel::sync::WaitQueue`s with `kernel::sync::sleep_until` (or [`crate::sowait`] for
/// `SO_RCVTIMEO`-style limits), which ends with `EINTR` when the client goes; the caller
/// drops the future at any await. `nonblock` is the file's `O_NONBLOCK` (for send and
/// receive also `MSG_DONTWAIT`). The generic layer has validated descriptors and copied
/// socket addresses (`sockargs`: 3..=255 bytes, `sa_len` set to the length, a zero family
/// taken from the length byte); the family checks the family byte and the length.
pub trait ProtoSock: Any + Send + Sync {
    /// The object itself, for the family to downcast (a peer of the same family).
    fn as_any(&self) -> &dyn Any;

    /// `so_type`.
    fn ty(&self) -> i32;

    /// The socket's `struct kinfo_pcb` for the `pcblist` sysctl leaves (`netstat`), if its
    /// family serves one.
    fn pcb(&self) -> Option<crate::pcblist::Pcb> {
        None
    }

    /// `pr_bind`. The defaults of `bind`, `listen`, `connect` and `accept` are
    /// `EOPNOTSUPP`, as a family whose `pr_usrreqs` entry is `eopnotsupp` (AF_LINK, PF_ROUTE).
    fn bind<'a>(&'a self, cx: &'a Ctx<'a>, sa: &'a [u8]) -> BoxFut<'a, Result<()>> {
        let _ = (cx, sa);
        Box::pin(async { Err(Errno::EOPNOTSUPP) })
    }

    /// `solisten` + `pr_listen`; `backlog` as the caller gave it.
    fn listen(&self, cx: &Ctx<'_>, backlog: i32) -> Result<()> {
        let _ = (cx, backlog);
        Err(Errno::EOPNOTSUPP)
    }

    /// `soconnect` + `pr_connect`, waiting for the connection unless `nonblock`
    /// (`EINPROGRESS`).
    fn connect<'a>(
        &'a self,
        cx: &'a Ctx<'a>,
        sa: &'a [u8],
        nonblock: bool,
    ) -> BoxFut<'a, Result<()>> {
        let _ = (cx, sa, nonblock);
        Box::pin(async { Err(Errno::EOPNOTSUPP) })
    }

    /// `soaccept`: the first completed connection, waiting unless `nonblock`
    /// (`EWOULDBLOCK`); `EOPNOTSUPP`/`EINVAL` as NetBSD for a socket that cannot accept.
    fn accept<'a>(&'a self, cx: &'a Ctx<'a>, nonblock: bool) -> BoxFut<'a, Result<Accepted>> {
        let _ = (cx, nonblock);
        Box::pin(async { Err(Errno::EOPNOTSUPP) })
    }

    /// `soshutdown` for `how` (`SHUT_RD`..=`SHUT_RDWR`, checked by the caller).
    fn shutdown(&self, how: i32) -> Result<()>;

    /// `sosend` + `pr_send`: sends the bytes of `iov` (copied in with [`Uio`]), to `to`
    /// (a sendto/sendmsg name) with the raw control bytes of sendmsg (the family
    /// internalizes them; none: empty). Returns the bytes sent and the error that stopped
    /// it; the caller turns a partial `EINTR`/`EWOULDBLOCK` into a count and posts SIGPIPE
    /// for `EPIPE`.
    #[allow(clippy::too_many_arguments)]
    fn send<'a>(
        &'a self,
        cx: &'a Ctx<'a>,
        iov: &'a [Iov],
        to: Option<Vec<u8>>,
        control: Vec<u8>,
        flags: i32,
        nonblock: bool,
    ) -> BoxFut<'a, (u64, Result<()>)>;

    /// `soreceive` + `pr_rcvd`: copies into `iov` (with [`Uio`]).
    fn recv<'a>(
        &'a self,
        cx: &'a Ctx<'a>,
        iov: &'a [Iov],
        flags: i32,
        nonblock: bool,
    ) -> BoxFut<'a, Result<Received>>;

    /// `pr_sockaddr`: the local address (`sa_len` bytes).
    fn sockaddr(&self) -> Result<Vec<u8>>;

    /// `pr_peeraddr`: the peer's address; `ENOTCONN` when not connected.
    fn peeraddr(&self) -> Result<Vec<u8>>;

    /// `sosetopt` + `pr_ctloutput(PRCO_SETOPT)` for every level (`SOL_SOCKET` included;
    /// `SO_NOSIGPIPE` is also kept by the generic layer as the file's flag). `v` is the
    /// copied value (at most `MCLBYTES`).
    fn setopt(&self, cx: &Ctx<'_>, level: i32, name: i32, v: &[u8]) -> Result<()>;

    /// `sogetopt` + `pr_ctloutput(PRCO_GETOPT)`: the whole value (the caller copies out
    /// at most the caller's size). `SO_NOSIGPIPE` is answered by the generic layer.
    fn getopt(&self, cx: &Ctx<'_>, level: i32, name: i32) -> Result<Vec<u8>>;

    /// `pr_ioctl` (`soo_ioctl` after the generic `FIONBIO`, `FIOASYNC`, `FIOSETOWN`,
    /// `FIOGETOWN`): `data` is the ioctl's argument (`IOCPARM_LEN` bytes, copied in for
    /// `IOC_IN`, out for `IOC_OUT` by the kernel). Unknown: `EOPNOTSUPP`.
    fn ioctl(&self, fp: &File, com: u32, data: &mut [u8]) -> Result<()>;

    /// An ioctl that copies through pointers in its argument (`struct ifdrv`, `struct
    /// ifconf`: NetBSD's `ifioctl`), with the caller's context; `None` (the default):
    /// [`ProtoSock::ioctl`].
    fn ioctl_mem<'a>(
        &'a self,
        _cx: Ctx<'a>,
        _com: u32,
        _data: &'a mut [u8],
    ) -> Option<BoxFut<'a, Result<()>>> {
        None
    }

    /// `sopoll`: the ready events among `events`; with `sel`, records the wait queues
    /// whose wake-up may change the answer.
    fn poll(&self, events: PollEvents, sel: Option<&mut Selector>) -> PollEvents;

    /// kqueue `filt_soread`/`filt_sowrite`.
    fn filter(&self, filter: Filter, sel: Option<&mut Selector>) -> Result<Filt>;

    /// `soo_stat`.
    fn stat(&self) -> Result<Stat>;

    /// `soclose` (the last close of the file, or an abandoned accepted connection).
    /// Must not sleep; idempotent.
    fn close(&self);
}

/// A protocol family (`struct domain` with its `protosw` table).
pub trait Domain: Send + Sync {
    /// `dom_family` (`AF_*`).
    fn family(&self) -> i32;

    /// `dom_name`, for messages.
    fn name(&self) -> &'static str;

    /// `socreate`: `pffindproto`/`pffindtype` and `pr_attach` for `ty` (flags stripped)
    /// and `proto`: `EPROTOTYPE`, `EPROTONOSUPPORT`, `ENOBUFS` as NetBSD.
    fn create(&self, cx: &Ctx<'_>, ty: i32, proto: i32) -> Result<Arc<dyn ProtoSock>>;

    /// `socketpair(2)`: two sockets connected by `pr_connect2`. NetBSD's families without
    /// `pr_connect2` answer `EOPNOTSUPP` (after creating both).
    fn socketpair(
        &self,
        cx: &Ctx<'_>,
        ty: i32,
        proto: i32,
    ) -> Result<(Arc<dyn ProtoSock>, Arc<dyn ProtoSock>)> {
        let _ = (self.create(cx, ty, proto)?, self.create(cx, ty, proto)?);
        Err(Errno::EOPNOTSUPP)
    }
}

/// The socket layer of one kernel: the registered families (NetBSD's `domains` list).
#[derive(Default)]
pub struct Net {
    domains: RwLock<Vec<Arc<dyn Domain>>>,
    /// The sockets that have an open file (NetBSD's file list, which `pcblist` walks),
    /// newest last; weak, so a closed file's entry dies with it and is pruned when the
    /// vector would grow. Its lock is taken alone, never with a socket's.
    files: Mutex<Vec<Weak<dyn ProtoSock>>>,
}

impl Net {
    /// Adds a family (at attach time, before clients come); `EEXIST` when its `AF_*` is
    /// taken.
    pub fn register_domain(&self, d: Arc<dyn Domain>) -> Result<()> {
        let mut v = self.domains.write().unwrap_or_else(|e| e.into_inner());
        if v.iter().any(|x| x.family() == d.family()) {
            return Err(Errno::EEXIST);
        }
        v.push(d);
        Ok(())
    }

    /// The family `af`, if registered (`pffinddomain`).
    pub fn domain(&self, af: i32) -> Option<Arc<dyn Domain>> {
        let v = self.domains.read().unwrap_or_else(|e| e.into_inner());
        v.iter().find(|d| d.family() == af).cloned()
    }

    /// Records a socket that has just been given an open file.
    pub fn note_file(&self, so: &Arc<dyn ProtoSock>) {
        let mut v = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() == v.capacity() {
            // Dead entries go before the vector grows: it stays within twice the sockets
            // alive (bounded by descriptors and the budget).
            v.retain(|w| w.strong_count() > 0);
        }
        v.push(Arc::downgrade(so));
    }

    /// Entries of the list of sockets with an open file, dead ones included (for tests of
    /// its bound).
    pub fn file_entries(&self) -> usize {
        self.files.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The sockets with an open file, newest first, taken out of the lock (their own
    /// locks are taken afterwards, one at a time).
    pub fn open_sockets(&self) -> Vec<Arc<dyn ProtoSock>> {
        let v = self.files.lock().unwrap_or_else(|e| e.into_inner());
        v.iter().rev().filter_map(Weak::upgrade).collect()
    }

    /// The records of the sockets with an open file for which `keep` holds (family and
    /// type of a `pcblist` leaf).
    pub fn pcbs(&self, keep: impl Fn(&crate::pcblist::Pcb) -> bool) -> Vec<crate::pcblist::Pcb> {
        self.open_sockets()
            .iter()
            .filter_map(|so| so.pcb())
            .filter(|p| keep(p))
            .collect()
    }

    /// The registered families.
    pub fn families(&self) -> Vec<i32> {
        let v = self.domains.read().unwrap_or_else(|e| e.into_inner());
        v.iter().map(|d| d.family()).collect()
    }
}

/// A cursor over a request's iovecs (`struct uio`): families copy data in and out with it
/// in bounded chunks.
pub struct Uio<'a> {
    iov: &'a [Iov],
    cur: (usize, u64),
}

/// Most bytes copied to or from the client at a time.
pub const CHUNK_MAX: usize = 64 * 1024;

impl<'a> Uio<'a> {
    /// A cursor at the start of `iov`.
    pub fn new(iov: &'a [Iov]) -> Uio<'a> {
        Uio { iov, cur: (0, 0) }
    }

    /// Copies in up to `n` bytes from the cursor, advancing it (fewer at the end).
    pub async fn copyin(&mut self, mem: &dyn DynMem, n: usize) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(n.min(CHUNK_MAX));
        while out.len() < n && self.cur.0 < self.iov.len() {
            let v = self.iov[self.cur.0];
            let left = v.len - self.cur.1;
            if left == 0 {
                self.cur = (self.cur.0 + 1, 0);
                continue;
            }
            let take = (left as usize).min(n - out.len()).min(CHUNK_MAX);
            let b = kernel::copy::copyin(mem, v.base + self.cur.1, take).await?;
            out.extend_from_slice(&b);
            mem.recycle_dyn(b);
            self.cur.1 += take as u64;
        }
        Ok(out)
    }

    /// Copies `data` out at the cursor, advancing it (what does not fit is not copied).
    pub async fn copyout(&mut self, mem: &dyn DynMem, data: &[u8]) -> Result<()> {
        let mut done = 0;
        while done < data.len() && self.cur.0 < self.iov.len() {
            let v = self.iov[self.cur.0];
            let left = v.len - self.cur.1;
            if left == 0 {
                self.cur = (self.cur.0 + 1, 0);
                continue;
            }
            let n = (left as usize).min(data.len() - done);
            kernel::copy::copyout(mem, v.base + self.cur.1, &data[done..done + n]).await?;
            done += n;
            self.cur.1 += n as u64;
        }
        Ok(())
    }
}

/// Total length of iovecs: `EINVAL` past `SSIZE_MAX`.
pub fn iov_total(iov: &[Iov]) -> Result<u64> {
    let mut t = 0u64;
    for v in iov {
        t = t
            .checked_add(v.len)
            .filter(|&t| t <= i64::MAX as u64)
            .ok_or(Errno::EINVAL)?;
    }
    Ok(t)
}

/// An `int` option value (`sockopt_getint`): exactly four bytes, else `EINVAL`.
pub fn opt_int(v: &[u8]) -> Result<i32> {
    if v.len() != 4 {
        return Err(Errno::EINVAL);
    }
    Ok(i32::from_le_bytes(v.try_into().expect("4")))
}

/// NetBSD's clock rate in a rump kernel (`hz`): socket timeouts are kept in its ticks.
pub const HZ: i32 = 100;
const TICK_US: i32 = 1_000_000 / HZ;

/// A `struct timeval` option value (`SO_SNDTIMEO`/`SO_RCVTIMEO`) as NetBSD's `sosetopt`
/// keeps it, in ticks: exactly a `timeval` long (`EINVAL` otherwise); `tv_usec` is the
/// `int` after `tv_sec` (the padding after it is not read); `EDOM` when `tv_sec >
/// (INT_MAX - tv_usec / tick) / hz` in C's `int` arithmetic (so microseconds below
/// -`tick` are `EDOM` too); then `tv_sec * hz + tv_usec / tick` cut to an `int` (any
/// other microseconds and a negative time are taken), at least one tick when `tv_usec`
/// is not 0. Recorded from NetBSD: tests/oracle/inet-timeo.netbsd.
pub fn opt_timeval_ticks(v: &[u8]) -> Result<i32> {
    if v.len() != crate::abi::TIMEVAL_SIZE {
        return Err(Errno::EINVAL);
    }
    let s = i64::from_le_bytes(v[..8].try_into().expect("8"));
    let us = i32::from_le_bytes(v[8..12].try_into().expect("4"));
    let q = us / TICK_US;
    if s > i64::from(i32::MAX.wrapping_sub(q) / HZ) {
        return Err(Errno::EDOM);
    }
    let t = s.wrapping_mul(i64::from(HZ)).wrapping_add(i64::from(q)) as i32;
    Ok(if t == 0 && us != 0 { 1 } else { t })
}

/// The `struct timeval` bytes of a timeout of `t` ticks as `sogetopt` gives it back
/// (`tv_sec = t / hz`, `tv_usec = t % hz * tick`: negative for a negative time).
pub fn ticks_timeval_bytes(t: i32) -> Vec<u8> {
    let mut b = i64::from(t / HZ).to_le_bytes().to_vec();
    b.extend_from_slice(&i64::from(t % HZ * TICK_US).to_le_bytes());
    b
}

/// How long a wait of `t` ticks lasts, in microseconds (0: no timeout). A negative time
/// times out at once (NetBSD's `callout_schedule` of a negative count; seen on its
/// server: EWOULDBLOCK within a millisecond): one microsecond here.
pub fn ticks_us(t: i32) -> u64 {
    match u64::try_from(t) {
        Ok(t) => t * TICK_US as u64,
        Err(_) => 1,
    }
}

/// A `struct timeval` option value in microseconds of wait ([`opt_timeval_ticks`] then
/// [`ticks_us`]).
pub fn opt_timeval_us(v: &[u8]) -> Result<u64> {
    opt_timeval_ticks(v).map(ticks_us)
}

/// The `struct timeval` bytes of `us` microseconds (getsockopt of a timeout).
pub fn timeval_bytes(us: u64) -> Vec<u8> {
    let mut b = ((us / 1_000_000) as i64).to_le_bytes().to_vec();
    b.extend_from_slice(&((us % 1_000_000) as i64).to_le_bytes());
    b
}

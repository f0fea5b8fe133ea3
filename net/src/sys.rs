//! The socket system calls (uipc_syscalls.c) over [`Sock`]: argument copies in NetBSD's
//! order, `sosend`/`soreceive`, socket options, and AF_LOCAL names (uipc_usrreq.c).

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use kernel::abi::{Timespec, FREAD, FWRITE, O_NONBLOCK, O_NOSIGPIPE, SIGPIPE, W_OK};
use kernel::copy;
use kernel::file::{File, FileKind, Iov};
use kernel::sync::{self, WaitQueue};
use kernel::sys::names;
use kernel::vfs::VType;
use kernel::{BoxFut, DynMem, Errno, Kernel, Proc, Result};

use crate::abi::*;
use crate::sock::{
    discard_recs, drop_ctl, ConnId, Ctl, Rec, Sock, SockFile, SB_MAX, SS_CANTRCVMORE,
    SS_CANTSENDMORE, SS_ISCONNECTED, SS_ISCONNECTING, UNP_CONNWAIT, UNP_EIDSBIND, UNP_EIDSVALID,
    UNP_WANTCRED,
};

/// `retval`.
pub type SysResult = Result<[i64; 2]>;

fn ret(v: i64) -> SysResult {
    Ok([v, 0])
}

/// Most bytes copied to or from the client at a time.
const CHUNK_MAX: usize = 64 * 1024;
/// `SSIZE_MAX`.
const SSIZE_MAX: u64 = i64::MAX as u64;
/// Control data larger than this is refused (`sockargs`: a page).
const CONTROL_MAX: usize = 4096;
/// `sun_noname`: an unbound AF_LOCAL address.
const NONAME: [u8; 2] = [SUN_PATH_OFF as u8, AF_LOCAL as u8];

/// The syscall table registered with the kernel.
pub struct Table {
    /// AF_LOCAL is attached (`rumpnet_local`).
    pub local: bool,
}

impl kernel::sys::SyscallTable for Table {
    fn serves(&self, nr: u32) -> bool {
        SYSCALLS.contains(&nr)
    }

    fn syscall<'a>(
        &'a self,
        k: &'a Kernel,
        p: &'a Arc<Proc>,
        mem: &'a dyn DynMem,
        nr: u32,
        args: &'a [u64; 8],
    ) -> BoxFut<'a, SysResult> {
        Box::pin(dispatch(k, p, mem, nr, args, self.local))
    }
}

struct C<'a> {
    k: &'a Kernel,
    p: &'a Proc,
    mem: &'a dyn DynMem,
    local: bool,
}

fn int(a: &[u64; 8], i: usize) -> i32 {
    a[i] as u32 as i32
}

async fn dispatch(
    k: &Kernel,
    p: &Arc<Proc>,
    mem: &dyn DynMem,
    nr: u32,
    a: &[u64; 8],
    local: bool,
) -> SysResult {
    let c = C { k, p, mem, local };
    match nr {
        SYS_SOCKET => socket(&c, int(a, 0), int(a, 1), int(a, 2)),
        SYS_SOCKETPAIR => socketpair(&c, int(a, 0), int(a, 1), int(a, 2), a[3]).await,
        SYS_BIND => bind(&c, int(a, 0), a[1], a[2] as u32).await,
        SYS_CONNECT => connect(&c, int(a, 0), a[1], a[2] as u32).await,
        SYS_LISTEN => listen(&c, int(a, 0), int(a, 1)),
        SYS_ACCEPT => accept(&c, int(a, 0), a[1], a[2], 0).await,
        SYS_PACCEPT => {
            // Other flag bits are ignored, as NetBSD's do_sys_accept ignores them. The signal
            // mask (a[3]) only matters to a blocked accept's signals; a rump process takes
            // none while it sleeps.
            let flags = int(a, 4) & (SOCK_CLOEXEC | SOCK_NONBLOCK | SOCK_NOSIGPIPE);
            accept(&c, int(a, 0), a[1], a[2], flags).await
        }
        SYS_GETSOCKNAME => sockname(&c, int(a, 0), a[1], a[2], false).await,
        SYS_GETPEERNAME => sockname(&c, int(a, 0), a[1], a[2], true).await,
        SYS_SHUTDOWN => shutdown(&c, int(a, 0), int(a, 1)),
        SYS_SENDTO => {
            let iov = [Iov {
                base: a[1],
                len: a[2],
            }];
            let to = if a[4] != 0 {
                Some(sockargs(&c, a[4], a[5] as u32).await?)
            } else {
                None
            };
            sendit(&c, int(a, 0), &iov, to, Vec::new(), int(a, 3)).await
        }
        SYS_RECVFROM => recvfrom(&c, int(a, 0), a[1], a[2], int(a, 3), a[4], a[5]).await,
        SYS_SENDMSG => {
            let n = sendmsg(&c, int(a, 0), a[1], int(a, 2)).await?;
            ret(n)
        }
        SYS_RECVMSG => {
            let n = recvmsg(&c, int(a, 0), a[1], int(a, 2)).await?;
            ret(n)
        }
        SYS_SENDMMSG => sendmmsg(&c, int(a, 0), a[1], a[2] as u32, int(a, 3)).await,
        SYS_RECVMMSG => recvmmsg(&c, int(a, 0), a[1], a[2] as u32, int(a, 3), a[4]).await,
        SYS_GETSOCKOPT => getsockopt(&c, int(a, 0), int(a, 1), int(a, 2), a[3], a[4]).await,
        SYS_SETSOCKOPT => setsockopt(&c, int(a, 0), int(a, 1), int(a, 2), a[3], a[4] as u32).await,
        _ => Err(Errno::ENOSYS),
    }
}

/// The socket open on `fd`: `EBADF`, `ENOTSOCK`.
fn getsock(c: &C<'_>, fd: i32) -> Result<(Arc<File>, Arc<Sock>)> {
    let fp = c.p.fds().get(fd)?;
    let so = sock_of(&fp).ok_or(Errno::ENOTSOCK)?;
    Ok((fp, so))
}

/// The socket of an open file, if it is one.
pub fn sock_of(fp: &File) -> Option<Arc<Sock>> {
    let f = fp.faction()?;
    f.as_any().downcast_ref::<SockFile>().map(|s| s.0.clone())
}

fn now(k: &Kernel) -> Timespec {
    Timespec::from_pair(k.host().clock_realtime())
}

/// `socreate` for AF_LOCAL: the type and protocol checks of `pffindproto`/`pffindtype`.
fn create(c: &C<'_>, domain: i32, ty: i32, proto: i32) -> Result<Arc<Sock>> {
    if domain != AF_LOCAL || !c.local {
        return Err(Errno::EAFNOSUPPORT);
    }
    let known = matches!(ty, SOCK_STREAM | SOCK_DGRAM | SOCK_SEQPACKET);
    if !known {
        return Err(if proto == 0 {
            Errno::EPROTOTYPE
        } else {
            Errno::EPROTONOSUPPORT
        });
    }
    if proto != 0 {
        return Err(Errno::EPROTONOSUPPORT);
    }
    let cred = c.p.cred();
    Sock::new(ty, now(c.k), cred.euid, cred.egid, c.k.budget())
}

fn file_flags(flags: i32) -> u32 {
    let mut f = FREAD | FWRITE;
    if flags & SOCK_NONBLOCK != 0 {
        f |= O_NONBLOCK;
    }
    if flags & SOCK_NOSIGPIPE != 0 {
        f |= O_NOSIGPIPE;
    }
    f
}

fn install(c: &C<'_>, so: Arc<Sock>, flag: u32, cloexec: bool) -> Result<i32> {
    let fp = File::new(FileKind::Faction(Box::new(SockFile(so))), flag);
    c.p.fds().alloc(fp, 0, cloexec)
}

/// `socket(2)` (`__socket30`).
fn socket(c: &C<'_>, domain: i32, ty: i32, proto: i32) -> SysResult {
    let flags = ty & SOCK_FLAGS_MASK;
    if flags & !(SOCK_CLOEXEC | SOCK_NONBLOCK | SOCK_NOSIGPIPE) != 0 {
        return Err(Errno::EINVAL);
    }
    let so = create(c, domain, ty & !SOCK_FLAGS_MASK, proto)?;
    let fd = install(c, so, file_flags(flags), flags & SOCK_CLOEXEC != 0)?;
    ret(i64::from(fd))
}

/// Connects two fresh sockets to each other (`unp_connect2`).
fn connect2(a: &Arc<Sock>, b: &Arc<Sock>, p: &Proc) {
    let cred = p.cred();
    let id = ConnId {
        pid: p.pid(),
        euid: cred.euid,
        egid: cred.egid,
    };
    for (x, y) in [(a, b), (b, a)] {
        let mut st = x.lock();
        st.peer = Some(y.clone());
        st.state |= SS_ISCONNECTED;
        if x.conn_required() {
            st.connid = id;
            st.flags |= UNP_EIDSVALID;
        } else {
            drop(st);
            y.lock().refs.push(Arc::downgrade(x));
        }
    }
}

/// `socketpair(2)`: two connected sockets; a failed copy-out closes both.
async fn socketpair(c: &C<'_>, domain: i32, ty: i32, proto: i32, sv: u64) -> SysResult {
    let flags = ty & SOCK_FLAGS_MASK;
    if flags & !(SOCK_CLOEXEC | SOCK_NONBLOCK | SOCK_NOSIGPIPE) != 0 {
        return Err(Errno::EINVAL);
    }
    let ty = ty & !SOCK_FLAGS_MASK;
    let a = create(c, domain, ty, proto)?;
    let b = create(c, domain, ty, proto)?;
    connect2(&a, &b, c.p);
    let (fl, cx) = (file_flags(flags), flags & SOCK_CLOEXEC != 0);
    let fa = install(c, a, fl, cx)?;
    let fb = match install(c, b, fl, cx) {
        Ok(fb) => fb,
        Err(e) => {
            drop(c.p.fds().close(fa));
            return Err(e);
        }
    };
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&fa.to_le_bytes());
    out[4..].copy_from_slice(&fb.to_le_bytes());
    if let Err(e) = copy::copyout(c.mem, sv, &out).await {
        drop(c.p.fds().close(fa));
        drop(c.p.fds().close(fb));
        return Err(e);
    }
    ret(0)
}

/// `sockargs_sb`: a socket address argument of `len` bytes (3 to 255), `sa_len` set to it
/// and a zero family taken from the length byte (4.3BSD compatibility).
async fn sockargs(c: &C<'_>, addr: u64, len: u32) -> Result<Vec<u8>> {
    if len > 255 || len <= 2 {
        return Err(Errno::EINVAL);
    }
    let mut sa = copy::copyin(c.mem, addr, len as usize).await?;
    if sa[1] == 0 && (sa[0] as i32) < 44 {
        sa[1] = sa[0];
    }
    sa[0] = len as u8;
    Ok(sa)
}

/// The path of an AF_LOCAL address: `sun_path` up to its first NUL (`makeun_sb`).
fn sun_path(sa: &[u8]) -> &[u8] {
    let p = &sa[SUN_PATH_OFF.min(sa.len())..];
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    &p[..end]
}

/// `bind(2)` on AF_LOCAL (`unp_bind`): makes a socket node at the path.
async fn bind(c: &C<'_>, fd: i32, addr: u64, len: u32) -> SysResult {
    let sa = sockargs(c, addr, len).await?;
    let (_fp, so) = getsock(c, fd)?;
    if i32::from(sa[1]) != AF_LOCAL {
        return Err(Errno::EAFNOSUPPORT);
    }
    {
        let mut st = so.lock();
        if st.vnode.is_some() {
            return Err(Errno::EINVAL);
        }
        if st.busy {
            return Err(Errno::EALREADY);
        }
        st.busy = true;
    }
    let _busy = Busy(&so);
    bind1(c, &so, &sa).await.map(|()| [0, 0])
}

/// `UNP_BUSY` while a bind or connect waits; cleared also when the call is dropped.
struct Busy<'a>(&'a Sock);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.lock().busy = false;
    }
}

async fn bind1(c: &C<'_>, so: &Arc<Sock>, sa: &[u8]) -> Result<()> {
    let path = sun_path(sa);
    let mode = 0o777 & !c.p.umask();
    let vn = match names::create(c.k, c.p, path, VType::Sock, mode).await {
        Err(Errno::EEXIST) => return Err(Errno::EADDRINUSE),
        r => r?,
    };
    let any: Arc<dyn std::any::Any + Send + Sync> = so.clone();
    vn.set_bound(Some(Arc::downgrade(&any)));
    let cred = c.p.cred();
    let mut st = so.lock();
    let mut name = sa.to_vec();
    name.push(0);
    st.addr = Some(name);
    st.vnode = Some(vn);
    st.connid = ConnId {
        pid: c.p.pid(),
        euid: cred.euid,
        egid: cred.egid,
    };
    st.flags |= UNP_EIDSBIND;
    Ok(())
}

/// `listen(2)` (`solisten` + `unp_listen`).
fn listen(c: &C<'_>, fd: i32, backlog: i32) -> SysResult {
    let (_fp, so) = getsock(c, fd)?;
    let mut st = so.lock();
    if st.state & (SS_ISCONNECTED | SS_ISCONNECTING) != 0 {
        return Err(Errno::EINVAL);
    }
    if st.vnode.is_none() {
        return Err(Errno::EINVAL);
    }
    st.options |= SO_ACCEPTCONN;
    let b = if !(0..=SOMAXCONN).contains(&backlog) {
        SOMAXCONN
    } else {
        backlog
    };
    st.qlimit = b as usize;
    ret(0)
}

/// The socket bound at an AF_LOCAL address (`unp_connect`'s lookup): `ENOTSOCK` for
/// another node, `EACCES` without write permission, `ECONNREFUSED` when nobody is bound,
/// `EPROTOTYPE` for another type.
async fn lookup_bound(c: &C<'_>, so: &Sock, sa: &[u8]) -> Result<Arc<Sock>> {
    let vn = names::lookup(c.k, c.p, sun_path(sa), true).await?;
    if vn.vtype() != VType::Sock {
        return Err(Errno::ENOTSOCK);
    }
    names::access(c.p, &vn, W_OK)?;
    let so2 = vn
        .bound()
        .and_then(|b| b.downcast::<Sock>().ok())
        .ok_or(Errno::ECONNREFUSED)?;
    if so2.ty != so.ty {
        return Err(Errno::EPROTOTYPE);
    }
    Ok(so2)
}

/// `connect(2)` (`soconnect` + `unp_connect`).
async fn connect(c: &C<'_>, fd: i32, addr: u64, len: u32) -> SysResult {
    let sa = sockargs(c, addr, len).await?;
    let (fp, so) = getsock(c, fd)?;
    {
        let st = so.lock();
        if st.state & SS_ISCONNECTING != 0 {
            return Err(Errno::EALREADY);
        }
        if st.options & SO_ACCEPTCONN != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        if st.state & SS_ISCONNECTED != 0 && so.conn_required() {
            return Err(Errno::EISCONN);
        }
    }
    if sa[1] as i32 != AF_LOCAL {
        return Err(Errno::EAFNOSUPPORT);
    }
    {
        let mut st = so.lock();
        if st.busy {
            return Err(Errno::EALREADY);
        }
        st.busy = true;
    }
    let busy = Busy(&so);
    let wait = connect1(c, &so, &sa).await?;
    drop(busy);
    if wait {
        // LOCAL_CONNWAIT: connected once the listener accepts.
        if fp.nonblock() {
            return Err(Errno::EINPROGRESS);
        }
        sync::sleep_until(c.p, &so.wq, || {
            let st = so.lock();
            st.state & SS_ISCONNECTING == 0 || st.closed
        })
        .await?;
        if so.lock().state & SS_ISCONNECTED == 0 {
            return Err(Errno::ECONNREFUSED);
        }
    }
    ret(0)
}

/// `unp_connect`; `true` when the connection waits for the listener's accept
/// (`LOCAL_CONNWAIT` on either side).
async fn connect1(c: &C<'_>, so: &Arc<Sock>, sa: &[u8]) -> Result<bool> {
    let so2 = lookup_bound(c, so, sa).await?;
    if !so.conn_required() {
        // A datagram socket: disconnect from any previous target, connect to this one.
        let old = so.lock().peer.take();
        if let Some(o) = old {
            o.lock()
                .refs
                .retain(|w| !std::ptr::eq(w.as_ptr(), Arc::as_ptr(so)));
        }
        so2.lock().refs.push(Arc::downgrade(so));
        let mut st = so.lock();
        st.peer = Some(so2);
        st.state |= SS_ISCONNECTED;
        return Ok(false);
    }
    let cred = c.p.cred();
    let me = ConnId {
        pid: c.p.pid(),
        euid: cred.euid,
        egid: cred.egid,
    };
    // sonewconn on the listener: refused past 3/2 of the backlog.
    let so3 = Sock::new(so.ty, now(c.k), so2.uid, so2.gid, so.budget())?;
    let wait;
    {
        let mut l = so2.lock();
        if l.options & SO_ACCEPTCONN == 0 || l.closed || l.q.len() > 3 * l.qlimit / 2 {
            return Err(Errno::ECONNREFUSED);
        }
        let mut n = so3.lock();
        n.options = l.options & !SO_ACCEPTCONN;
        n.linger = l.linger;
        n.snd_hiwat = l.snd_hiwat;
        n.rcv_hiwat = l.rcv_hiwat;
        n.snd_lowat = l.snd_lowat;
        n.rcv_lowat = l.rcv_lowat;
        n.snd_timeo_us = l.snd_timeo_us;
        n.rcv_timeo_us = l.rcv_timeo_us;
        n.addr = l.addr.clone();
        n.flags = l.flags;
        n.peer = Some(so.clone());
        n.state |= SS_ISCONNECTED;
        // The accepted side learns who connected; the connector learns the binder.
        n.connid = me;
        n.flags |= UNP_EIDSVALID;
        let eidsbind = l.flags & UNP_EIDSBIND != 0;
        drop(n);
        let mut st = so.lock();
        wait = (st.flags | l.flags) & UNP_CONNWAIT != 0;
        st.peer = Some(so3.clone());
        st.state |= if wait {
            SS_ISCONNECTING
        } else {
            SS_ISCONNECTED
        };
        drop(st);
        l.q.push_back(so3.clone());
        drop(l);
        let mut st = so.lock();
        // unp_connect1 copies the new socket's identity, which it has just set to the
        // connector's own: LOCAL_PEEREID on a connector names itself (NetBSD's answer).
        if eidsbind {
            st.connid = me;
            st.flags |= UNP_EIDSVALID;
        }
    }
    so2.rq.wake_all();
    Ok(wait)
}

/// Sleeps on `q` until `cond` holds; `EWOULDBLOCK` after `timeo_us` (0: never), `EINTR`
/// when the process exits.
async fn sowait(
    k: &Kernel,
    p: &Proc,
    q: &WaitQueue,
    timeo_us: u64,
    mut cond: impl FnMut() -> bool,
) -> Result<()> {
    if timeo_us == 0 {
        return sync::sleep_until(p, q, cond).await;
    }
    let (s, ns) = k.host().clock_monotonic();
    let total_ns = ns as u64 + (timeo_us % 1_000_000) * 1000;
    let deadline = (
        s + (timeo_us / 1_000_000) as i64 + (total_ns / 1_000_000_000) as i64,
        (total_ns % 1_000_000_000) as i64,
    );
    let mut w = pin!(sync::sleep_until(p, q, &mut cond));
    let mut t = pin!(sync::sleep_for(p, k.host(), deadline));
    poll_fn(|cx| {
        if let Poll::Ready(r) = w.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        match t.as_mut().poll(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Err(Errno::EWOULDBLOCK)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// `accept(2)`/`paccept(2)` (`do_sys_accept`): the first completed connection.
async fn accept(c: &C<'_>, fd: i32, name: u64, anamelen: u64, flags: i32) -> SysResult {
    let (fp, so) = getsock(c, fd)?;
    if !so.conn_required() {
        return Err(Errno::EOPNOTSUPP);
    }
    if so.lock().options & SO_ACCEPTCONN == 0 {
        return Err(Errno::EINVAL);
    }
    let take = || -> Option<Result<Arc<Sock>>> {
        let mut st = so.lock();
        if let Some(e) = st.error.take() {
            return Some(Err(e));
        }
        if let Some(n) = st.q.pop_front() {
            return Some(Ok(n));
        }
        if st.state & SS_CANTRCVMORE != 0 {
            return Some(Err(Errno::ECONNABORTED));
        }
        None
    };
    let so2 = match take() {
        Some(r) => r?,
        None if fp.nonblock() => return Err(Errno::EWOULDBLOCK),
        None => {
            let mut got = None;
            sync::sleep_until(c.p, &so.rq, || {
                got = take();
                got.is_some()
            })
            .await?;
            got.expect("woke with a result")?
        }
    };
    let peer = so2.lock().peer.clone();
    let peer_addr = peer.as_ref().and_then(|p| p.lock().addr.clone());
    if let Some(pe) = &peer {
        // soisconnected of a connector that waited (LOCAL_CONNWAIT).
        let mut st = pe.lock();
        if st.state & SS_ISCONNECTING != 0 {
            st.state = (st.state & !SS_ISCONNECTING) | SS_ISCONNECTED;
            drop(st);
            pe.wq.wake_all();
        }
    }
    let flag = (fp.flag() & !(O_NONBLOCK | O_NOSIGPIPE))
        | file_flags(flags)
        | if flags == 0 {
            fp.flag() & (O_NONBLOCK | O_NOSIGPIPE)
        } else {
            0
        };
    let flag = if flags & SOCK_NONBLOCK == 0 && flags != 0 {
        (flag & !O_NONBLOCK) | (fp.flag() & O_NONBLOCK)
    } else {
        flag
    };
    let nfd = install(c, so2, flag, flags & SOCK_CLOEXEC != 0)?;
    let sa = peer_addr.map_or(NONAME.to_vec(), |a| a[..a[0] as usize].to_vec());
    if let Err(e) = copyout_sockname(c, name, anamelen, &sa).await {
        drop(c.p.fds().close(nfd));
        return Err(e);
    }
    ret(i64::from(nfd))
}

/// `copyout_sockname_sb`: at most `*alen` bytes of `sa` to `asa`, the length back to `alen`;
/// nothing when `asa` is NULL.
async fn copyout_sockname(c: &C<'_>, asa: u64, alen: u64, sa: &[u8]) -> Result<()> {
    if asa == 0 {
        return Ok(());
    }
    let len = u32::from_le_bytes(copy::copyin(c.mem, alen, 4).await?.try_into().expect("4"));
    let n = (len as usize).min(sa.len());
    copy::copyout(c.mem, asa, &sa[..n]).await?;
    copy::copyout(c.mem, alen, &(n as u32).to_le_bytes()).await
}

/// getsockname(2)/getpeername(2).
async fn sockname(c: &C<'_>, fd: i32, asa: u64, alen: u64, peer: bool) -> SysResult {
    let (_fp, so) = getsock(c, fd)?;
    let sa = {
        let st = so.lock();
        let a = if peer {
            if st.state & (SS_ISCONNECTED | SS_ISCONNECTING) == 0 {
                return Err(Errno::ENOTCONN);
            }
            st.peer.as_ref().and_then(|p| p.lock().addr.clone())
        } else {
            st.addr.clone()
        };
        a.map_or(NONAME.to_vec(), |a| a[..a[0] as usize].to_vec())
    };
    copyout_sockname(c, asa, alen, &sa).await?;
    ret(0)
}

/// `shutdown(2)`.
fn shutdown(c: &C<'_>, fd: i32, how: i32) -> SysResult {
    let (_fp, so) = getsock(c, fd)?;
    if !(SHUT_RD..=SHUT_RDWR).contains(&how) {
        return Err(Errno::EINVAL);
    }
    if how != SHUT_WR {
        so.shut_rd();
    }
    if how != SHUT_RD {
        so.shut_wr();
    }
    ret(0)
}

/// Copies in `n` bytes from the iovs starting at `(i, off)`, advancing the cursor.
async fn gather(c: &C<'_>, iov: &[Iov], cur: &mut (usize, u64), n: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n && cur.0 < iov.len() {
        let v = iov[cur.0];
        let left = v.len - cur.1;
        if left == 0 {
            *cur = (cur.0 + 1, 0);
            continue;
        }
        let take = (left as usize).min(n - out.len()).min(CHUNK_MAX);
        let b = copy::copyin(c.mem, v.base + cur.1, take).await?;
        out.extend_from_slice(&b);
        c.mem.recycle_dyn(b);
        cur.1 += take as u64;
    }
    Ok(out)
}

/// Copies `data` out across the iovs starting at the cursor.
async fn scatter(c: &C<'_>, iov: &[Iov], cur: &mut (usize, u64), data: &[u8]) -> Result<()> {
    let mut done = 0;
    while done < data.len() && cur.0 < iov.len() {
        let v = iov[cur.0];
        let left = v.len - cur.1;
        if left == 0 {
            *cur = (cur.0 + 1, 0);
            continue;
        }
        let n = (left as usize).min(data.len() - done);
        copy::copyout(c.mem, v.base + cur.1, &data[done..done + n]).await?;
        done += n;
        cur.1 += n as u64;
    }
    Ok(())
}

fn total(iov: &[Iov]) -> Result<u64> {
    let mut t = 0u64;
    for v in iov {
        t = t
            .checked_add(v.len)
            .filter(|&t| t <= SSIZE_MAX)
            .ok_or(Errno::EINVAL)?;
    }
    Ok(t)
}

/// `sosend`: sends the iovs (with `to` for an unconnected datagram socket, `ctl` with the
/// first byte); the bytes sent and the error that stopped it.
async fn sosend(
    c: &C<'_>,
    fp: &File,
    so: &Arc<Sock>,
    iov: &[Iov],
    to: Option<Vec<u8>>,
    mut ctl: Vec<Ctl>,
    flags: i32,
) -> (u64, Result<()>) {
    let resid = match total(iov) {
        Ok(t) => t as usize,
        Err(e) => return (0, Err(e)),
    };
    let nonblock = fp.nonblock() || flags & (MSG_DONTWAIT | MSG_NBIO) != 0;
    if flags & MSG_OOB != 0 {
        drop_ctl(ctl);
        return (0, Err(Errno::EOPNOTSUPP));
    }
    let (hiwat, lowat, timeo) = {
        let st = so.lock();
        (st.snd_hiwat, st.snd_lowat, st.snd_timeo_us)
    };
    if so.atomic() && resid > hiwat {
        drop_ctl(ctl);
        return (0, Err(Errno::EMSGSIZE));
    }
    let mut cur = (0usize, 0u64);
    if !so.conn_required() {
        let r = send_dgram(c, so, iov, &mut cur, resid, to, ctl).await;
        return (if r.is_ok() { resid as u64 } else { 0 }, r);
    }
    let mut sent = 0usize;
    loop {
        let peer = match so.send_peer() {
            Ok(p) => p,
            Err(e) => {
                drop_ctl(ctl);
                return (sent as u64, Err(e));
            }
        };
        let left = resid - sent;
        let need = if so.atomic() {
            left
        } else {
            left.min(lowat).max(1)
        };
        if so.space(&peer) < need {
            if nonblock {
                drop_ctl(ctl);
                return (sent as u64, Err(Errno::EWOULDBLOCK));
            }
            let w = sowait(c.k, c.p, &so.wq, timeo, || {
                let st = so.lock();
                let gone = st.state & SS_CANTSENDMORE != 0
                    || st.error.is_some()
                    || !st.peer.as_ref().is_some_and(|q| Arc::ptr_eq(q, &peer));
                drop(st);
                gone || so.space(&peer) >= need
            })
            .await;
            if let Err(e) = w {
                drop_ctl(ctl);
                return (sent as u64, Err(e));
            }
            continue;
        }
        let n = if so.atomic() {
            left
        } else {
            left.min(so.space(&peer)).min(CHUNK_MAX)
        };
        let data = match gather(c, iov, &mut cur, n).await {
            Ok(d) => d,
            Err(e) => {
                drop_ctl(ctl);
                return (sent as u64, Err(e));
            }
        };
        let rec = Rec::new(None, std::mem::take(&mut ctl), data);
        if let Err((e, rec)) = peer.append(rec, false) {
            discard_recs(vec![rec]);
            return (sent as u64, Err(e));
        }
        sent += n;
        if sent >= resid {
            return (sent as u64, Ok(()));
        }
    }
}

async fn send_dgram(
    c: &C<'_>,
    so: &Arc<Sock>,
    iov: &[Iov],
    cur: &mut (usize, u64),
    resid: usize,
    to: Option<Vec<u8>>,
    ctl: Vec<Ctl>,
) -> Result<()> {
    let target = {
        let mut st = so.lock();
        if st.state & SS_CANTSENDMORE != 0 {
            drop(st);
            drop_ctl(ctl);
            return Err(Errno::EPIPE);
        }
        if let Some(e) = st.error.take() {
            drop(st);
            drop_ctl(ctl);
            return Err(e);
        }
        match (&to, &st.peer) {
            (None, None) => {
                drop(st);
                drop_ctl(ctl);
                return Err(Errno::EDESTADDRREQ);
            }
            (Some(_), Some(_)) => {
                drop(st);
                drop_ctl(ctl);
                return Err(Errno::EISCONN);
            }
            (None, Some(p)) => Some(p.clone()),
            (Some(_), None) => None,
        }
    };
    let target = match target {
        Some(t) => t,
        None => {
            let sa = to.expect("checked");
            let r = if sa[1] as i32 != AF_LOCAL {
                Err(Errno::EAFNOSUPPORT)
            } else {
                lookup_bound(c, so, &sa).await
            };
            match r {
                Ok(t) => t,
                Err(e) => {
                    drop_ctl(ctl);
                    return Err(e);
                }
            }
        }
    };
    let data = match gather(c, iov, cur, resid).await {
        Ok(d) => d,
        Err(e) => {
            drop_ctl(ctl);
            return Err(e);
        }
    };
    let addr = so
        .lock()
        .addr
        .clone()
        .map_or(NONAME.to_vec(), |a| a[..a[0] as usize].to_vec());
    let mut ctl = ctl;
    if target.lock().flags & UNP_WANTCRED != 0 {
        ctl.push(Ctl::Creds(sockcred(c.p)));
    }
    let rec = Rec::new(Some(addr), ctl, data);
    match target.append(rec, true) {
        Ok(()) => Ok(()),
        Err((e, rec)) => {
            discard_recs(vec![rec]);
            Err(if e == Errno::EPIPE {
                Errno::ECONNREFUSED
            } else {
                e
            })
        }
    }
}

/// `struct sockcred` of the caller (`unp_addsockcred`).
fn sockcred(p: &Proc) -> Vec<u8> {
    let cred = p.cred();
    let groups = cred.groups();
    let mut b = Vec::with_capacity(sockcred_size(groups.len().max(1)));
    b.extend_from_slice(&p.pid().to_le_bytes());
    for v in [cred.uid, cred.euid, cred.gid, cred.egid] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&(groups.len() as i32).to_le_bytes());
    for g in groups {
        b.extend_from_slice(&g.to_le_bytes());
    }
    b.resize(sockcred_size(groups.len()), 0);
    b
}

/// `sendit`: sosend, then SIGPIPE for `EPIPE` unless suppressed.
async fn sendit(
    c: &C<'_>,
    fd: i32,
    iov: &[Iov],
    to: Option<Vec<u8>>,
    ctl: Vec<Ctl>,
    flags: i32,
) -> SysResult {
    let (fp, so) = match getsock(c, fd) {
        Ok(x) => x,
        Err(e) => {
            drop_ctl(ctl);
            return Err(e);
        }
    };
    let mut ctl = ctl;
    if so.conn_required() {
        let peer = so.lock().peer.clone();
        if let Some(pe) = peer {
            let want = {
                let mut st = pe.lock();
                let w = st.flags & UNP_WANTCRED != 0;
                st.flags &= !UNP_WANTCRED;
                w
            };
            if want {
                ctl.push(Ctl::Creds(sockcred(c.p)));
            }
        }
    }
    let (n, r) = sosend(c, &fp, &so, iov, to, ctl, flags).await;
    match r {
        Err(e) if n > 0 && matches!(e, Errno::EINTR | Errno::EWOULDBLOCK) => ret(n as i64),
        Err(Errno::EPIPE) => {
            if fp.flag() & O_NOSIGPIPE == 0 && flags & MSG_NOSIGNAL == 0 {
                c.mem.raise_dyn(SIGPIPE);
            }
            Err(Errno::EPIPE)
        }
        Err(e) => Err(e),
        Ok(()) => ret(n as i64),
    }
}

/// What [`soreceive`] got besides the bytes.
struct Got {
    n: u64,
    addr: Option<Vec<u8>>,
    ctl: Vec<Ctl>,
    flags: i32,
}

/// `soreceive`.
async fn soreceive(c: &C<'_>, fp: &File, so: &Arc<Sock>, iov: &[Iov], flags: i32) -> Result<Got> {
    let resid = total(iov)? as usize;
    if flags & MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let nonblock = fp.nonblock() || flags & (MSG_DONTWAIT | MSG_NBIO) != 0;
    let peek = flags & MSG_PEEK != 0;
    let mut got = Got {
        n: 0,
        addr: None,
        ctl: Vec::new(),
        flags: 0,
    };
    let mut cur = (0usize, 0u64);
    loop {
        // What to do now: take, end (EOF or error), or wait.
        let ready = |st: &crate::sock::St| -> Option<Result<bool>> {
            if !st.rcv.is_empty() {
                let enough = st.rcv_cc >= (resid - got.n as usize).min(st.rcv_lowat)
                    || !so.atomic() && st.rcv.front().is_some_and(|r| !r.ctl.is_empty())
                    || so.atomic();
                if enough || st.state & SS_CANTRCVMORE != 0 || st.error.is_some() {
                    return Some(Ok(true));
                }
            }
            if let Some(e) = st.error {
                return Some(Err(e));
            }
            if st.state & SS_CANTRCVMORE != 0 {
                return Some(Ok(false));
            }
            if st.state & (SS_ISCONNECTED | SS_ISCONNECTING) == 0 && so.conn_required() {
                return Some(Err(Errno::ENOTCONN));
            }
            if resid == 0 {
                return Some(Ok(false));
            }
            None
        };
        let r = {
            let st = so.lock();
            ready(&st)
        };
        let r = match r {
            Some(r) => r,
            None if got.n > 0 => return Ok(got),
            None if nonblock => return Err(Errno::EWOULDBLOCK),
            None => {
                let timeo = so.lock().rcv_timeo_us;
                let w = sowait(c.k, c.p, &so.rq, timeo, || ready(&so.lock()).is_some()).await;
                match w {
                    Ok(()) => continue,
                    Err(e) if got.n > 0 && e == Errno::EWOULDBLOCK => return Ok(got),
                    Err(e) => return Err(e),
                }
            }
        };
        match r {
            Err(e) => {
                if got.n > 0 {
                    return Ok(got);
                }
                so.lock().error = None;
                return Err(e);
            }
            Ok(false) => return Ok(got),
            Ok(true) => {}
        }
        let Some(t) = so.take(resid - got.n as usize, peek) else {
            continue;
        };
        if !peek {
            let peer = so.lock().peer.clone();
            if let Some(pe) = peer {
                pe.wq.wake_all();
            }
        }
        if so.atomic() && t.reclen > t.data.len() {
            got.flags |= MSG_TRUNC;
        }
        if got.n == 0 {
            got.addr = t.addr;
        }
        got.ctl.extend(t.ctl);
        scatter(c, iov, &mut cur, &t.data).await?;
        got.n += t.data.len() as u64;
        let more = !so.atomic() && flags & MSG_WAITALL != 0 && !peek && (got.n as usize) < resid;
        if !more {
            return Ok(got);
        }
    }
}

/// `recvfrom(2)`.
async fn recvfrom(
    c: &C<'_>,
    fd: i32,
    buf: u64,
    len: u64,
    flags: i32,
    from: u64,
    fromlen: u64,
) -> SysResult {
    let (fp, so) = getsock(c, fd)?;
    let iov = [Iov { base: buf, len }];
    let g = soreceive(c, &fp, &so, &iov, flags).await?;
    let n = g.n;
    drop_ctl(g.ctl);
    if from != 0 {
        let sa = g.addr.unwrap_or_default();
        copyout_sockname(c, from, fromlen, &sa).await?;
    }
    ret(n as i64)
}

/// A `struct msghdr` as read from the client.
struct Msg {
    name: u64,
    namelen: u32,
    iov: u64,
    iovlen: i32,
    control: u64,
    controllen: u32,
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8"))
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4"))
}

fn parse_msg(b: &[u8]) -> Msg {
    Msg {
        name: u64_at(b, 0),
        namelen: u32_at(b, 8),
        iov: u64_at(b, 16),
        iovlen: u32_at(b, 24) as i32,
        control: u64_at(b, 32),
        controllen: u32_at(b, 40),
    }
}

/// The iovec array of a message: `EMSGSIZE` past `IOV_MAX` (or negative).
async fn iovecs(c: &C<'_>, addr: u64, n: i32) -> Result<Vec<Iov>> {
    if n < 0 || n as usize > IOV_MAX {
        return Err(Errno::EMSGSIZE);
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let raw = copy::copyin(c.mem, addr, n as usize * IOVEC_SIZE).await?;
    let v = raw
        .chunks_exact(IOVEC_SIZE)
        .map(|ch| Iov {
            base: u64_at(ch, 0),
            len: u64_at(ch, 8),
        })
        .collect();
    Ok(v)
}

/// `unp_internalize`: one `SCM_RIGHTS` message of descriptors of the caller, taken as open
/// files in flight (`EBADF` for a closed one or a kqueue, `EAGAIN` past the bound).
fn internalize(c: &C<'_>, b: &[u8]) -> Result<Vec<Ctl>> {
    let len = u32_at(b, 0) as usize;
    let (level, ty) = (u32_at(b, 4) as i32, u32_at(b, 8) as i32);
    if ty != SCM_RIGHTS || level != SOL_SOCKET || len > b.len() || len < cmsg_align(CMSGHDR_SIZE) {
        return Err(Errno::EINVAL);
    }
    let nfds = (len - cmsg_align(CMSGHDR_SIZE)) / 4;
    let mut files = Vec::with_capacity(nfds);
    for i in 0..nfds {
        let o = cmsg_align(CMSGHDR_SIZE) + 4 * i;
        let fd = u32_at(b, o) as i32;
        let fp = c.p.fds().get(fd)?;
        if fp.kqueue().is_some() {
            return Err(Errno::EBADF);
        }
        files.push(fp);
    }
    if !crate::gc::enter_flight(files.len()) {
        // Cycles nobody can reach count too: collect them, then try once more.
        crate::gc::collect();
        if !crate::gc::enter_flight(files.len()) {
            return Err(Errno::EAGAIN);
        }
    }
    Ok(vec![Ctl::Rights(files)])
}

/// Reads a message's name and control data (`sockargs` rules).
async fn msg_args(c: &C<'_>, m: &Msg) -> Result<(Option<Vec<u8>>, Vec<u8>)> {
    let to = if m.name != 0 {
        Some(sockargs(c, m.name, m.namelen).await?)
    } else {
        None
    };
    let mut ctl = Vec::new();
    if m.control != 0 {
        let len = m.controllen as usize;
        if len < cmsg_align(CMSGHDR_SIZE) || len > CONTROL_MAX {
            return Err(Errno::EINVAL);
        }
        ctl = copy::copyin(c.mem, m.control, len).await?;
    }
    Ok((to, ctl))
}

/// sendmsg(2): the bytes sent.
async fn sendmsg(c: &C<'_>, fd: i32, msg: u64, flags: i32) -> Result<i64> {
    let raw = copy::copyin(c.mem, msg, MSGHDR_SIZE).await?;
    send1(c, fd, &parse_msg(&raw), flags).await
}

async fn send1(c: &C<'_>, fd: i32, m: &Msg, flags: i32) -> Result<i64> {
    let (to, ctlbuf) = msg_args(c, m).await?;
    let iov = iovecs(c, m.iov, m.iovlen).await?;
    total(&iov)?;
    let (_fp, so) = getsock(c, fd)?;
    let ctl = if ctlbuf.is_empty() {
        Vec::new()
    } else {
        let _ = &so;
        internalize(c, &ctlbuf)?
    };
    sendit(c, fd, &iov, to, ctl, flags).await.map(|r| r[0])
}

/// `unp_externalize` + the control copy-out of `recvit`: control messages laid out for the
/// client; descriptors installed in the caller (those that do not fit are closed).
async fn externalize(c: &C<'_>, m: &Msg, ctl: Vec<Ctl>, flags: i32) -> Result<(u32, i32)> {
    if m.control == 0 {
        // No control buffer: the control data is dropped without MSG_CTRUNC (NetBSD).
        for cm in ctl {
            if let Ctl::Rights(files) = cm {
                crate::gc::left_flight(files.len());
                crate::sock::discard_unflown(files);
            }
        }
        return Ok((0, 0));
    }
    let room = m.controllen as usize;
    let mut out = Vec::new();
    let mut mflags = 0;
    let cloexec = flags & MSG_CMSG_CLOEXEC != 0;
    for cm in ctl {
        let (ty, body) = match cm {
            Ctl::Creds(b) => (SCM_CREDS, b),
            Ctl::Rights(files) => {
                crate::gc::left_flight(files.len());
                if out.len() + cmsg_len(4 * files.len()) > room {
                    // Nowhere to put them: the descriptors are closed (work list).
                    mflags |= MSG_CTRUNC;
                    crate::sock::discard_unflown(files);
                    continue;
                }
                let mut body = Vec::new();
                for f in files {
                    match c.p.fds().alloc(f, 0, cloexec) {
                        Ok(fd) => body.extend_from_slice(&fd.to_le_bytes()),
                        Err(_) => mflags |= MSG_CTRUNC,
                    }
                }
                (SCM_RIGHTS, body)
            }
        };
        let len = cmsg_len(body.len());
        let at = out.len();
        if at + len > room {
            // A message that does not fit whole is not copied (its descriptors were
            // closed above).
            mflags |= MSG_CTRUNC;
            continue;
        }
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&SOL_SOCKET.to_le_bytes());
        out.extend_from_slice(&ty.to_le_bytes());
        out.resize(at + cmsg_align(CMSGHDR_SIZE), 0);
        out.extend_from_slice(&body);
        out.resize(at + cmsg_space(body.len()), 0);
    }
    out.truncate(room);
    if !out.is_empty() {
        copy::copyout(c.mem, m.control, &out).await?;
    }
    Ok((out.len() as u32, mflags))
}

/// recvmsg(2) for a message already read: receives, then writes back `msg_namelen`,
/// `msg_controllen` and `msg_flags`.
async fn recv1(c: &C<'_>, fd: i32, m: &Msg, msg: u64, flags: i32) -> Result<i64> {
    let iov = iovecs(c, m.iov, m.iovlen).await?;
    let (fp, so) = getsock(c, fd)?;
    let g = soreceive(c, &fp, &so, &iov, flags).await?;
    let mut namelen = 0u32;
    if m.name != 0 {
        if let Some(sa) = &g.addr {
            let n = (m.namelen as usize).min(sa.len());
            copy::copyout(c.mem, m.name, &sa[..n]).await?;
            namelen = n as u32;
        }
    }
    let (controllen, cflags) = externalize(c, m, g.ctl, flags).await?;
    copy::copyout(c.mem, msg + 8, &namelen.to_le_bytes()).await?;
    copy::copyout(c.mem, msg + 40, &controllen.to_le_bytes()).await?;
    copy::copyout(c.mem, msg + 44, &(g.flags | cflags).to_le_bytes()).await?;
    Ok(g.n as i64)
}

/// recvmsg(2): the bytes received.
async fn recvmsg(c: &C<'_>, fd: i32, msg: u64, flags: i32) -> Result<i64> {
    let raw = copy::copyin(c.mem, msg, MSGHDR_SIZE).await?;
    recv1(c, fd, &parse_msg(&raw), msg, flags).await
}

/// sendmmsg(2): messages sent until the first error (which is returned only when none was).
async fn sendmmsg(c: &C<'_>, fd: i32, mmsg: u64, vlen: u32, flags: i32) -> SysResult {
    getsock(c, fd)?;
    let vlen = vlen.min(IOV_MAX as u32);
    let mut dg = 0u32;
    while dg < vlen {
        let at = mmsg + u64::from(dg) * MMSGHDR_SIZE as u64;
        let raw = copy::copyin(c.mem, at, MSGHDR_SIZE).await;
        let r = match raw {
            Ok(raw) => send1(c, fd, &parse_msg(&raw), flags).await,
            Err(e) => Err(e),
        };
        match r {
            Ok(n) => copy::copyout(c.mem, at + 48, &(n as u32).to_le_bytes()).await?,
            Err(e) if dg == 0 => return Err(e),
            Err(_) => break,
        }
        dg += 1;
    }
    ret(i64::from(dg))
}

/// recvmmsg(2): up to `vlen` messages; `MSG_WAITFORONE` makes all after the first
/// non-blocking. The timeout argument is read but a wait is bounded only by the flags.
async fn recvmmsg(c: &C<'_>, fd: i32, mmsg: u64, vlen: u32, flags: i32, timeout: u64) -> SysResult {
    // The timeout (a struct timespec) is checked between messages, as NetBSD's: a wait for
    // a message is not cut by it.
    let limit_ns = if timeout != 0 {
        let t = copy::copyin(c.mem, timeout, 16).await?;
        let sec = i64::from_le_bytes(t[..8].try_into().expect("8"));
        let nsec = i64::from_le_bytes(t[8..].try_into().expect("8"));
        if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
            return Err(Errno::EINVAL);
        }
        Some(sec.saturating_mul(1_000_000_000).saturating_add(nsec))
    } else {
        None
    };
    let mono_ns = |k: &Kernel| {
        let (s, ns) = k.host().clock_monotonic();
        s.saturating_mul(1_000_000_000).saturating_add(ns)
    };
    let start = mono_ns(c.k);
    getsock(c, fd)?;
    let vlen = vlen.min(IOV_MAX as u32);
    let mut dg = 0u32;
    let mut fl = flags & !MSG_WAITFORONE;
    while dg < vlen {
        if dg > 0 && limit_ns.is_some_and(|l| mono_ns(c.k) - start > l) {
            break;
        }
        let at = mmsg + u64::from(dg) * MMSGHDR_SIZE as u64;
        let raw = copy::copyin(c.mem, at, MSGHDR_SIZE).await?;
        match recv1(c, fd, &parse_msg(&raw), at, fl).await {
            Ok(n) => copy::copyout(c.mem, at + 48, &(n as u32).to_le_bytes()).await?,
            Err(e) if dg == 0 => return Err(e),
            Err(_) => break,
        }
        dg += 1;
        if flags & MSG_WAITFORONE != 0 {
            fl |= MSG_DONTWAIT;
        }
    }
    ret(i64::from(dg))
}

fn int_opt(v: &[u8]) -> Result<i32> {
    if v.len() != 4 {
        return Err(Errno::EINVAL);
    }
    Ok(i32::from_le_bytes(v.try_into().expect("4")))
}

fn timeval_us(v: &[u8]) -> Result<u64> {
    if v.len() != TIMEVAL_SIZE {
        return Err(Errno::EINVAL);
    }
    let s = i64::from_le_bytes(v[..8].try_into().expect("8"));
    let us = i64::from_le_bytes(v[8..].try_into().expect("8"));
    // NetBSD 7.99 takes any microseconds and a negative time (as no timeout here); only
    // a time that overflows its tick count is EDOM.
    if s > i64::from(i32::MAX) / 100 {
        return Err(Errno::EDOM);
    }
    Ok((s.max(0) as u64 * 1_000_000).saturating_add(us.max(0) as u64))
}

/// `setsockopt(2)` (`sosetopt`, `uipc_ctloutput`).
async fn setsockopt(c: &C<'_>, fd: i32, level: i32, name: i32, val: u64, len: u32) -> SysResult {
    if len as usize > MCLBYTES_OPT {
        return Err(Errno::EINVAL);
    }
    let v = if len > 0 {
        copy::copyin(c.mem, val, len as usize).await?
    } else {
        Vec::new()
    };
    let (fp, so) = getsock(c, fd)?;
    let r = setopt(&so, level, name, &v);
    if fp.flag() & O_NOSIGPIPE != 0
        && so.lock().options & SO_NOSIGPIPE == 0
        && level == SOL_SOCKET
        && name == SO_NOSIGPIPE
    {
        fp.flag_clear(O_NOSIGPIPE);
    }
    if so.lock().options & SO_NOSIGPIPE != 0 {
        fp.flag_or(O_NOSIGPIPE);
    } else {
        fp.flag_clear(O_NOSIGPIPE);
    }
    r.map(|()| [0, 0])
}

/// `MCLBYTES`: the largest option value.
const MCLBYTES_OPT: usize = 2048;

fn setopt(so: &Sock, level: i32, name: i32, v: &[u8]) -> Result<()> {
    if level != SOL_SOCKET {
        if level != 0 {
            return Err(Errno::ENOPROTOOPT);
        }
        let bit = match name {
            LOCAL_CREDS => UNP_WANTCRED,
            LOCAL_CONNWAIT => UNP_CONNWAIT,
            _ => return Err(Errno::ENOPROTOOPT),
        };
        let on = int_opt(v)? != 0;
        let mut st = so.lock();
        if on {
            st.flags |= bit;
        } else {
            st.flags &= !bit;
        }
        return Ok(());
    }
    let mut st = so.lock();
    match name {
        SO_LINGER => {
            if v.len() != LINGER_SIZE {
                return Err(Errno::EINVAL);
            }
            let on = i32::from_le_bytes(v[..4].try_into().expect("4"));
            let l = i32::from_le_bytes(v[4..].try_into().expect("4"));
            if on != 0 {
                if !(0..=i32::from(i16::MAX) / 100).contains(&l) {
                    return Err(Errno::EDOM);
                }
                st.options |= SO_LINGER;
                st.linger = l;
            } else {
                st.options &= !SO_LINGER;
            }
        }
        n if SO_BOOLS.contains(&n) && n != SO_ACCEPTCONN => {
            if int_opt(v)? != 0 {
                st.options |= n;
            } else {
                st.options &= !n;
            }
        }
        SO_SNDBUF | SO_RCVBUF | SO_SNDLOWAT | SO_RCVLOWAT => {
            let x = int_opt(v)?;
            if x < 1 {
                return Err(Errno::EINVAL);
            }
            let x = x as usize;
            match name {
                SO_SNDBUF | SO_RCVBUF if x > SB_MAX => return Err(Errno::ENOBUFS),
                SO_SNDBUF => {
                    st.snd_hiwat = x;
                    st.snd_lowat = st.snd_lowat.min(x);
                }
                SO_RCVBUF => {
                    st.rcv_hiwat = x;
                    st.rcv_lowat = st.rcv_lowat.min(x);
                }
                SO_SNDLOWAT => st.snd_lowat = x.min(st.snd_hiwat),
                _ => st.rcv_lowat = x.min(st.rcv_hiwat),
            }
        }
        SO_SNDTIMEO => st.snd_timeo_us = timeval_us(v)?,
        SO_RCVTIMEO => st.rcv_timeo_us = timeval_us(v)?,
        _ => return Err(Errno::ENOPROTOOPT),
    }
    Ok(())
}

fn timeval_of(us: u64) -> Vec<u8> {
    let mut b = ((us / 1_000_000) as i64).to_le_bytes().to_vec();
    b.extend_from_slice(&((us % 1_000_000) as i64).to_le_bytes());
    b
}

fn getopt(so: &Sock, level: i32, name: i32) -> Result<Vec<u8>> {
    let int = |v: i32| v.to_le_bytes().to_vec();
    if level != SOL_SOCKET {
        if level != 0 {
            return Err(Errno::ENOPROTOOPT);
        }
        let st = so.lock();
        return match name {
            LOCAL_PEEREID if st.flags & UNP_EIDSVALID != 0 => {
                let mut b = st.connid.pid.to_le_bytes().to_vec();
                b.extend_from_slice(&st.connid.euid.to_le_bytes());
                b.extend_from_slice(&st.connid.egid.to_le_bytes());
                Ok(b)
            }
            LOCAL_PEEREID => Err(Errno::EINVAL),
            LOCAL_CREDS => Ok(int(i32::from(st.flags & UNP_WANTCRED != 0))),
            _ => Err(Errno::ENOPROTOOPT),
        };
    }
    let mut st = so.lock();
    Ok(match name {
        SO_LINGER => {
            let mut b = int(i32::from(st.options & SO_LINGER != 0));
            b.extend_from_slice(&st.linger.to_le_bytes());
            b
        }
        n if SO_BOOLS.contains(&n) => int(i32::from(st.options & n != 0)),
        SO_TYPE => int(so.ty),
        SO_ERROR => int(st.error.take().map_or(0, |e| i32::from(e.raw()))),
        SO_SNDBUF => int(st.snd_hiwat as i32),
        SO_RCVBUF => int(st.rcv_hiwat as i32),
        SO_SNDLOWAT => int(st.snd_lowat as i32),
        SO_RCVLOWAT => int(st.rcv_lowat as i32),
        SO_OVERFLOWED => int(st.overflowed as i32),
        SO_SNDTIMEO => timeval_of(st.snd_timeo_us),
        SO_RCVTIMEO => timeval_of(st.rcv_timeo_us),
        _ => return Err(Errno::ENOPROTOOPT),
    })
}

/// `getsockopt(2)`: at most `*avalsize` bytes of the value, its length written back.
async fn getsockopt(
    c: &C<'_>,
    fd: i32,
    level: i32,
    name: i32,
    val: u64,
    avalsize: u64,
) -> SysResult {
    let valsize = if val != 0 {
        u32::from_le_bytes(
            copy::copyin(c.mem, avalsize, 4)
                .await?
                .try_into()
                .expect("4"),
        )
    } else {
        0
    };
    let (fp, so) = getsock(c, fd)?;
    {
        let mut st = so.lock();
        if fp.flag() & O_NOSIGPIPE != 0 {
            st.options |= SO_NOSIGPIPE;
        } else {
            st.options &= !SO_NOSIGPIPE;
        }
    }
    let v = getopt(&so, level, name)?;
    if val != 0 {
        let n = (valsize as usize).min(v.len());
        copy::copyout(c.mem, val, &v[..n]).await?;
        copy::copyout(c.mem, avalsize, &(n as u32).to_le_bytes()).await?;
    }
    ret(0)
}

/// read(2)/readv(2) on a socket: `soreceive` without flags.
pub async fn read(
    k: &Kernel,
    p: &Proc,
    mem: &dyn DynMem,
    fp: &File,
    so: &Arc<Sock>,
    iov: &[Iov],
) -> (u64, Result<()>) {
    let c = C {
        k,
        p,
        mem,
        local: true,
    };
    match soreceive(&c, fp, so, iov, 0).await {
        Ok(g) => {
            drop_ctl(g.ctl);
            (g.n, Ok(()))
        }
        Err(e) => (0, Err(e)),
    }
}

/// write(2)/writev(2) on a socket: `sosend` without flags (the caller posts SIGPIPE).
pub async fn write(
    k: &Kernel,
    p: &Proc,
    mem: &dyn DynMem,
    fp: &File,
    so: &Arc<Sock>,
    iov: &[Iov],
) -> (u64, Result<()>) {
    let c = C {
        k,
        p,
        mem,
        local: true,
    };
    sosend(&c, fp, so, iov, None, Vec::new(), 0).await
}

/// `SS_CANTSENDMORE` for the poll code.
pub const CANTSEND: u32 = SS_CANTSENDMORE;

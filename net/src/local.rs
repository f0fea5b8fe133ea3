//! AF_LOCAL (uipc_usrreq.c): the first family through the protocol switch. Its sockets
//! are [`Sock`]s (sock.rs); names are socket nodes in the rump namespace; `SCM_RIGHTS`
//! and `SCM_CREDS` travel as [`Ctl`] records.

use std::any::Any;
use std::sync::Arc;

use kernel::abi::{Stat, Timespec, NODEV, S_IFSOCK, W_OK};
use kernel::file::ops::{POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use kernel::file::{File, Filt, Filter, Iov, PollEvents, Selector};
use kernel::sync;
use kernel::sys::names;
use kernel::vfs::VType;
use kernel::{BoxFut, Errno, Kernel, Proc, Result};

use crate::abi::*;
use crate::domain::{iov_total as total, Accepted, Ctx, Domain, ProtoSock, Received, Uio};
use crate::pcblist::Pcb;
use crate::sock::{
    discard_recs, drop_ctl, ConnId, Ctl, Rec, Sock, SB_MAX, SS_CANTRCVMORE, SS_CANTSENDMORE,
    SS_ISCONNECTED, SS_ISCONNECTING, UNP_CONNWAIT, UNP_EIDSBIND, UNP_EIDSVALID, UNP_WANTCRED,
};
use crate::sys::{sowait, u32_at, SockFile};

type C<'a> = Ctx<'a>;

/// `sun_noname`: an unbound AF_LOCAL address.
const NONAME: [u8; 2] = [SUN_PATH_OFF as u8, AF_LOCAL as u8];
/// Most bytes copied to or from the client at a time.
const CHUNK_MAX: usize = crate::domain::CHUNK_MAX;

/// AF_LOCAL (`unixdomain`).
pub struct LocalDomain;

/// One AF_LOCAL socket as the socket layer holds it.
pub struct Local(pub Arc<Sock>);

fn wrap(so: Arc<Sock>) -> Arc<dyn ProtoSock> {
    Arc::new(Local(so))
}

/// The AF_LOCAL socket of an open file, if it is one.
pub fn sock_of(fp: &File) -> Option<Arc<Sock>> {
    let f = fp.faction()?;
    let sf = f.as_any().downcast_ref::<SockFile>()?;
    sf.so.as_any().downcast_ref::<Local>().map(|l| l.0.clone())
}

fn now(k: &Kernel) -> Timespec {
    Timespec::from_pair(k.host().clock_realtime())
}

/// `socreate` for AF_LOCAL: the type and protocol checks of `pffindproto`/`pffindtype`.
fn create(c: &C<'_>, ty: i32, proto: i32) -> Result<Arc<Sock>> {
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

impl Domain for LocalDomain {
    fn family(&self) -> i32 {
        AF_LOCAL
    }

    fn name(&self) -> &'static str {
        "local"
    }

    fn create(&self, cx: &Ctx<'_>, ty: i32, proto: i32) -> Result<Arc<dyn ProtoSock>> {
        create(cx, ty, proto).map(wrap)
    }

    fn socketpair(
        &self,
        cx: &Ctx<'_>,
        ty: i32,
        proto: i32,
    ) -> Result<(Arc<dyn ProtoSock>, Arc<dyn ProtoSock>)> {
        let a = create(cx, ty, proto)?;
        let b = create(cx, ty, proto)?;
        connect2(&a, &b, cx.p);
        Ok((wrap(a), wrap(b)))
    }
}

impl ProtoSock for Local {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn ty(&self) -> i32 {
        self.0.ty
    }

    fn pcb(&self) -> Option<Pcb> {
        local_pcb(&self.0)
    }

    fn bind<'a>(&'a self, c: &'a Ctx<'a>, sa: &'a [u8]) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let so = &self.0;
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
            let _busy = Busy(so);
            bind1(c, so, sa).await
        })
    }

    /// `solisten` + `unp_listen`.
    fn listen(&self, _c: &Ctx<'_>, backlog: i32) -> Result<()> {
        let mut st = self.0.lock();
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
        Ok(())
    }

    /// `soconnect` + `unp_connect`.
    fn connect<'a>(
        &'a self,
        c: &'a Ctx<'a>,
        sa: &'a [u8],
        nonblock: bool,
    ) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let so = &self.0;
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
            let busy = Busy(so);
            let wait = connect1(c, so, sa).await?;
            drop(busy);
            if wait {
                // LOCAL_CONNWAIT: connected once the listener accepts.
                if nonblock {
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
            Ok(())
        })
    }

    fn accept<'a>(&'a self, c: &'a Ctx<'a>, nonblock: bool) -> BoxFut<'a, Result<Accepted>> {
        Box::pin(async move {
            let so = &self.0;
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
                None if nonblock => return Err(Errno::EWOULDBLOCK),
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
            let sa = peer_addr.map_or(NONAME.to_vec(), |a| a[..a[0] as usize].to_vec());
            Ok(Accepted {
                so: wrap(so2),
                peer: sa,
            })
        })
    }

    fn shutdown(&self, how: i32) -> Result<()> {
        if how != SHUT_WR {
            self.0.shut_rd();
        }
        if how != SHUT_RD {
            self.0.shut_wr();
        }
        Ok(())
    }

    fn send<'a>(
        &'a self,
        c: &'a Ctx<'a>,
        iov: &'a [Iov],
        to: Option<Vec<u8>>,
        control: Vec<u8>,
        flags: i32,
        nonblock: bool,
    ) -> BoxFut<'a, (u64, Result<()>)> {
        Box::pin(async move {
            let so = &self.0;
            let mut ctl = if control.is_empty() {
                Vec::new()
            } else {
                match internalize(c, &control) {
                    Ok(ctl) => ctl,
                    Err(e) => return (0, Err(e)),
                }
            };
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
            sosend(c, nonblock, so, iov, to, ctl, flags).await
        })
    }

    fn recv<'a>(
        &'a self,
        c: &'a Ctx<'a>,
        iov: &'a [Iov],
        flags: i32,
        nonblock: bool,
    ) -> BoxFut<'a, Result<Received>> {
        Box::pin(soreceive(c, nonblock, &self.0, iov, flags))
    }

    fn sockaddr(&self) -> Result<Vec<u8>> {
        let a = self.0.lock().addr.clone();
        Ok(a.map_or(NONAME.to_vec(), |a| a[..a[0] as usize].to_vec()))
    }

    fn peeraddr(&self) -> Result<Vec<u8>> {
        let st = self.0.lock();
        if st.state & (SS_ISCONNECTED | SS_ISCONNECTING) == 0 {
            return Err(Errno::ENOTCONN);
        }
        let a = st.peer.as_ref().and_then(|p| p.lock().addr.clone());
        Ok(a.map_or(NONAME.to_vec(), |a| a[..a[0] as usize].to_vec()))
    }

    fn setopt(&self, _c: &Ctx<'_>, level: i32, name: i32, v: &[u8]) -> Result<()> {
        setopt(&self.0, level, name, v)
    }

    fn getopt(&self, _c: &Ctx<'_>, level: i32, name: i32) -> Result<Vec<u8>> {
        getopt(&self.0, level, name)
    }

    fn ioctl(&self, _fp: &File, com: u32, data: &mut [u8]) -> Result<()> {
        let so = &self.0;
        let put = |data: &mut [u8], v: i32| {
            if data.len() >= 4 {
                data[..4].copy_from_slice(&v.to_le_bytes());
            }
        };
        match com {
            FIONREAD => {
                put(data, so.lock().rcv_cc as i32);
                Ok(())
            }
            FIONWRITE => {
                put(data, 0);
                Ok(())
            }
            FIONSPACE => {
                let peer = so.lock().peer.clone();
                let space = match peer {
                    Some(pe) if so.conn_required() => so.space(&pe),
                    _ => so.lock().snd_hiwat,
                };
                put(data, space as i32);
                Ok(())
            }
            SIOCATMARK => {
                put(data, 0);
                Ok(())
            }
            _ => Err(Errno::EOPNOTSUPP),
        }
    }

    fn stat(&self) -> Result<Stat> {
        let so = &self.0;
        let ino = so.ino();
        // NetBSD lowers a stream's send mark by what the peer holds and adds it back here.
        let blksize = so.lock().snd_hiwat;
        Ok(Stat {
            dev: NODEV,
            ino,
            mode: S_IFSOCK,
            blksize: blksize as i32,
            atime: so.ctime,
            mtime: so.ctime,
            ctime: so.ctime,
            ..Stat::default()
        })
    }

    fn poll(&self, events: PollEvents, sel: Option<&mut Selector>) -> PollEvents {
        let so = &self.0;
        if let Some(s) = sel {
            s.record(&so.rq);
            s.record(&so.wq);
        }
        let (readable, state, error, peer, listening, hiwat) = {
            let st = so.lock();
            (
                !st.rcv.is_empty() && st.rcv_cc >= st.rcv_lowat.max(1) || !st.q.is_empty(),
                st.state,
                st.error,
                st.peer.clone(),
                st.options & SO_ACCEPTCONN != 0,
                st.snd_lowat,
            )
        };
        let mut r = 0;
        if readable || state & SS_CANTRCVMORE != 0 || error.is_some() {
            r |= events & (POLLIN | POLLRDNORM);
        }
        let writable = if state & SS_CANTSENDMORE != 0 || error.is_some() {
            true
        } else if listening {
            false
        } else if !so.conn_required() {
            true
        } else {
            match (&peer, state & SS_ISCONNECTED != 0) {
                (Some(pe), true) => so.space(pe) >= hiwat,
                _ => false,
            }
        };
        if writable {
            r |= events & (POLLOUT | POLLWRNORM);
        }
        // NetBSD's sopoll never reports POLLHUP.
        r
    }

    fn filter(&self, filter: Filter, sel: Option<&mut Selector>) -> Result<Filt> {
        let ev = filter.poll_events();
        let r = self.poll(ev, sel);
        let st = self.0.lock();
        let data = match filter {
            Filter::Read if st.options & SO_ACCEPTCONN != 0 => st.q.len() as i64,
            Filter::Read => st.rcv_cc as i64,
            Filter::Write => st.snd_hiwat as i64,
        };
        let eof = match filter {
            Filter::Read => st.state & SS_CANTRCVMORE != 0,
            Filter::Write => st.state & SS_CANTSENDMORE != 0,
        };
        Ok(Filt {
            ready: r & ev != 0,
            data,
            eof,
        })
    }

    fn close(&self) {
        self.0.close();
    }
}

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

/// The path of an AF_LOCAL address: `sun_path` up to its first NUL (`makeun_sb`).
fn sun_path(sa: &[u8]) -> &[u8] {
    let p = &sa[SUN_PATH_OFF.min(sa.len())..];
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    &p[..end]
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
/// `sosend`: sends the iovs (with `to` for an unconnected datagram socket, `ctl` with the
/// first byte); the bytes sent and the error that stopped it.
async fn sosend(
    c: &C<'_>,
    nonblock: bool,
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
    let mut uio = Uio::new(iov);
    if !so.conn_required() {
        let r = send_dgram(c, so, &mut uio, resid, to, ctl).await;
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
        let data = match uio.copyin(c.mem, n).await {
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
    uio: &mut Uio<'_>,
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
    let data = match uio.copyin(c.mem, resid).await {
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

/// `soreceive`.
async fn soreceive(
    c: &C<'_>,
    nonblock: bool,
    so: &Arc<Sock>,
    iov: &[Iov],
    flags: i32,
) -> Result<Received> {
    let resid = total(iov)? as usize;
    if flags & MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let peek = flags & MSG_PEEK != 0;
    let mut got = Received {
        n: 0,
        addr: None,
        ctl: Vec::new(),
        flags: 0,
    };
    let mut uio = Uio::new(iov);
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
        uio.copyout(c.mem, &t.data).await?;
        got.n += t.data.len() as u64;
        let more = !so.atomic() && flags & MSG_WAITALL != 0 && !peek && (got.n as usize) < resid;
        if !more {
            return Ok(got);
        }
    }
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
        let on = crate::domain::opt_int(v)? != 0;
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
            if crate::domain::opt_int(v)? != 0 {
                st.options |= n;
            } else {
                st.options &= !n;
            }
        }
        SO_SNDBUF | SO_RCVBUF | SO_SNDLOWAT | SO_RCVLOWAT => {
            let x = crate::domain::opt_int(v)?;
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
        SO_SNDTIMEO => st.snd_timeo_us = crate::domain::opt_timeval_us(v)?,
        SO_RCVTIMEO => st.rcv_timeo_us = crate::domain::opt_timeval_us(v)?,
        _ => return Err(Errno::ENOPROTOOPT),
    }
    Ok(())
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
        SO_SNDTIMEO => crate::domain::timeval_bytes(st.snd_timeo_us),
        SO_RCVTIMEO => crate::domain::timeval_bytes(st.rcv_timeo_us),
        _ => return Err(Errno::ENOPROTOOPT),
    })
}

/// `sysctl_dounpcb`: the record of an open AF_LOCAL socket (none once closed). Its lock is
/// taken, released, then its peer's for the peer's name and its place in the peer's list
/// of datagram senders (`ki_nextref`), never both.
fn local_pcb(so: &Arc<Sock>) -> Option<Pcb> {
    use crate::pcblist::kaddr;
    let (mut p, peer) = {
        let st = so.lock();
        if st.closed {
            return None;
        }
        let refs = st.refs.iter().rev().find_map(|w| w.upgrade());
        let p = Pcb {
            pcbaddr: kaddr(so.id, 0),
            sockaddr: kaddr(so.id, 1),
            family: AF_LOCAL as u32,
            ty: so.ty as u32,
            pflags: st.flags,
            sostate: st.state,
            rcvq: st.rcv_cc as u64,
            src: st.addr.clone().unwrap_or_else(|| NONAME.to_vec()),
            inode: st.ino,
            vnode: st.vnode.as_ref().map_or(0, |_| kaddr(so.id, 2)),
            refs: refs.map_or(0, |r| kaddr(r.id, 0)),
            ..Pcb::default()
        };
        (p, st.peer.clone())
    };
    if let Some(peer) = peer {
        let st = peer.lock();
        p.conn = kaddr(peer.id, 0);
        p.dst = st.addr.clone().unwrap_or_else(|| NONAME.to_vec());
        // The peer's senders, newest first as NetBSD links them: the one after this one.
        let mut senders = st.refs.iter().rev().filter_map(|w| w.upgrade());
        if senders.any(|r| Arc::ptr_eq(&r, so)) {
            p.nextref = senders.next().map_or(0, |r| kaddr(r.id, 0));
        }
    }
    Some(p)
}

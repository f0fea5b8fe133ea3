//! Sockets (`struct socket` + AF_LOCAL's `unpcb`, uipc_socket.c / uipc_usrreq.c semantics).
//!
//! A [`Sock`] is one endpoint; the open file holds a [`SockFile`] whose drop is `soclose`.
//! Each socket has one lock of its own and no code holds two at once: a sender locks itself
//! to find its peer, then the peer to append; a close unlinks itself, then tells the peer.
//! Stream back-pressure is NetBSD's: the sender may have at most its `SO_SNDBUF` bytes
//! waiting in the peer's receive buffer. Receivers sleep on `rq`, senders and connectors on
//! `wq`; whoever changes a side wakes its queue after the change. Buffered bytes and
//! records are charged to the kernel's budget (`ENOBUFS` past it). Descriptors in flight
//! (`SCM_RIGHTS`) are open files in a record; a discarded record drops them through
//! [`discard`], a work list, so a chain of sockets inside sockets never recurses.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use kernel::abi::Timespec;
use kernel::file::File;
use kernel::mem::{heap_bytes, Budget, Charge};
use kernel::sync::WaitQueue;
use kernel::vfs::Vnode;
use kernel::Errno;

use crate::abi::*;

/// Stream and seqpacket buffer sizes (`unpst_sendspace`/`unpst_recvspace`, `PIPSIZ`).
pub const UNPST_SPACE: usize = 4096;
/// Datagram send space: the largest datagram (`unpdg_sendspace` as NetBSD's rump kernel
/// reports it, 2560).
pub const UNPDG_SENDSPACE: usize = 2560;
/// Datagram receive space (`unpdg_recvspace`).
pub const UNPDG_RECVSPACE: usize = 4096;
/// Most a socket buffer may be set to (`sb_max`, kern.sbmax).
pub const SB_MAX: usize = 256 * 1024;
/// Send low-water mark default (`MCLBYTES`, clipped to the high-water mark).
pub const MCLBYTES: usize = 2048;

/// `so_state` bits.
pub const SS_ISCONNECTED: u32 = 0x002;
/// Connecting (`LOCAL_CONNWAIT` until accepted).
pub const SS_ISCONNECTING: u32 = 0x004;
/// `SS_CANTSENDMORE`.
pub const SS_CANTSENDMORE: u32 = 0x010;
/// `SS_CANTRCVMORE`.
pub const SS_CANTRCVMORE: u32 = 0x020;
/// `SS_ISDISCONNECTING`
pub const SS_ISDISCONNECTED: u32 = 0x800;

/// `UNP_WANTCRED`: `LOCAL_CREDS`.
pub const UNP_WANTCRED: u32 = 0x01;
/// `UNP_CONNWAIT`.
pub const UNP_CONNWAIT: u32 = 0x02;
/// `UNP_EIDSVALID`: `unp_connid` holds the peer's identity.
pub const UNP_EIDSVALID: u32 = 0x04;
/// `UNP_EIDSBIND`: the listener's bind identity is given to connectors.
pub const UNP_EIDSBIND: u32 = 0x08;

/// Socket numbers (made-up kernel addresses in `pcblist` records).
static SOCK_ID: AtomicU64 = AtomicU64::new(1);

/// Fake inode numbers of `fstat` (`unp_ino`).
static UNP_INO: AtomicU64 = AtomicU64::new(1);

pub use crate::domain::Ctl;

/// One record of a receive buffer (a datagram, a seqpacket record, or stream bytes).
pub struct Rec {
    /// The sender's address (datagrams).
    pub addr: Option<Vec<u8>>,
    /// Control data delivered with the first byte.
    pub ctl: Vec<Ctl>,
    /// The bytes.
    pub data: Vec<u8>,
    /// Bytes of `data` already read (streams).
    pub off: usize,
    /// What the record holds of the budget (set by [`Sock::append`]).
    charged: u64,
    /// Its mbuf bytes in NetBSD's accounting (`sb_mbcnt`).
    mb: usize,
}

/// `MSIZE` on amd64.
const MSIZE: usize = 512;
/// Data bytes of a plain mbuf (`MLEN`).
const MLEN: usize = 456;
/// Smallest length stored in a cluster (`MINCLSIZE`).
const MINCLSIZE: usize = 857;
/// `MCLBYTES`.
const MCL: usize = 2048;

/// The mbuf bytes `len` bytes of data take as sosend copies them (`sb_mbcnt`'s share).
pub fn mbufs(len: usize) -> usize {
    let (mut n, mut l) = (0, len);
    while l > 0 {
        if l >= MINCLSIZE {
            n += MSIZE + MCL;
            l -= l.min(MCL);
        } else {
            n += MSIZE;
            l -= l.min(MLEN);
        }
    }
    n
}

impl Rec {
    /// A record of `data` with the sender's address and control data.
    pub fn new(addr: Option<Vec<u8>>, ctl: Vec<Ctl>, data: Vec<u8>) -> Rec {
        Rec {
            addr,
            ctl,
            data,
            off: 0,
            charged: 0,
            mb: 0,
        }
    }

    fn len(&self) -> usize {
        self.data.len() - self.off
    }

    /// Bytes it counts in `sb_cc`: its data, address and control.
    fn cc(&self) -> usize {
        self.len() + self.addr.as_ref().map_or(0, Vec::len)
    }
}

/// Drops control data that will not be delivered (its files in flight).
pub fn drop_ctl(ctl: Vec<Ctl>) {
    discard_recs(vec![Rec::new(None, ctl, Vec::new())]);
}

/// A pending connection or the identity stored by connect (`struct unpcbid`).
#[derive(Clone, Copy, Default)]
pub struct ConnId {
    /// pid.
    pub pid: i32,
    /// Effective uid.
    pub euid: u32,
    /// Effective gid.
    pub egid: u32,
}

/// The mutable state of a socket.
pub struct St {
    /// `so_options`.
    pub options: i32,
    /// `so_state`.
    pub state: u32,
    /// `so_error`.
    pub error: Option<Errno>,
    /// `so_linger`.
    pub linger: i32,
    /// Send high-water mark (`so_snd.sb_hiwat`).
    pub snd_hiwat: usize,
    /// Receive high-water mark.
    pub rcv_hiwat: usize,
    /// Send low-water mark.
    pub snd_lowat: usize,
    /// Receive low-water mark.
    pub rcv_lowat: usize,
    /// Send timeout in microseconds (0: none).
    pub snd_timeo_us: u64,
    /// Receive timeout in microseconds (0: none).
    pub rcv_timeo_us: u64,
    /// The receive buffer.
    pub rcv: VecDeque<Rec>,
    /// Bytes in it (`sb_cc`: data and addresses).
    pub rcv_cc: usize,
    /// Its mbuf bytes (`sb_mbcnt`).
    pub rcv_mb: usize,
    /// Its charge.
    charge: Charge,
    /// Datagrams dropped for want of room (`SO_OVERFLOWED`).
    pub overflowed: u32,
    /// The connected peer (stream, seqpacket) or the datagram target.
    pub peer: Option<Arc<Sock>>,
    /// Datagram sockets connected to this one (`unp_refs`).
    pub refs: Vec<Weak<Sock>>,
    /// The bound address, `sun_len` bytes and a NUL (`unp_addr`).
    pub addr: Option<Vec<u8>>,
    /// The socket node bound to (`unp_vnode`).
    pub vnode: Option<Arc<Vnode>>,
    /// Completed connections waiting for accept (`so_q`).
    pub q: VecDeque<Arc<Sock>>,
    /// `so_qlimit`.
    pub qlimit: usize,
    /// `unp_flags`.
    pub flags: u32,
    /// `unp_connid`.
    pub connid: ConnId,
    /// `fstat`'s inode number, given at the first fstat.
    pub ino: u64,
    /// Closed (`soclose` ran): nothing more arrives.
    pub closed: bool,
    /// bind or connect in progress (`UNP_BUSY`).
    pub busy: bool,
}

/// One socket.
pub struct Sock {
    /// `so_type`.
    pub ty: i32,
    /// The socket's number (never 0): its made-up kernel addresses in `pcblist`.
    pub id: u64,
    st: Mutex<St>,
    /// Receivers and acceptors sleep here.
    pub rq: Arc<WaitQueue>,
    /// Senders sleep here.
    pub wq: Arc<WaitQueue>,
    /// `unp_ctime`.
    pub ctime: Timespec,
    /// Creator's effective ids (`so_uidinfo`, `fstat`'s owner).
    pub uid: u32,
    /// Creator's effective gid.
    pub gid: u32,
    budget: Arc<Budget>,
}

/// Bytes a socket costs the budget before it holds data.
pub const SOCK_CHARGE_BYTES: u64 = heap_bytes(std::mem::size_of::<Sock>() + 16) + 256;

impl Sock {
    /// A new unconnected socket of `ty` (`socreate` + `unp_attach`); `ENOBUFS` past the
    /// budget.
    pub fn new(
        ty: i32,
        now: Timespec,
        uid: u32,
        gid: u32,
        budget: &Arc<Budget>,
    ) -> Result<Arc<Sock>, Errno> {
        let charge = Charge::try_new(budget, SOCK_CHARGE_BYTES).map_err(|_| Errno::ENOBUFS)?;
        let (snd, rcv) = if ty == SOCK_DGRAM {
            (UNPDG_SENDSPACE, UNPDG_RECVSPACE)
        } else {
            (UNPST_SPACE, UNPST_SPACE)
        };
        Ok(Arc::new(Sock {
            ty,
            id: SOCK_ID.fetch_add(1, Ordering::Relaxed),
            st: Mutex::new(St {
                options: 0,
                state: 0,
                error: None,
                linger: 0,
                snd_hiwat: snd,
                rcv_hiwat: rcv,
                snd_lowat: MCLBYTES.min(snd),
                rcv_lowat: 1,
                snd_timeo_us: 0,
                rcv_timeo_us: 0,
                rcv: VecDeque::new(),
                rcv_cc: 0,
                rcv_mb: 0,
                charge,
                overflowed: 0,
                peer: None,
                refs: Vec::new(),
                addr: None,
                vnode: None,
                q: VecDeque::new(),
                qlimit: 0,
                flags: 0,
                connid: ConnId::default(),
                ino: 0,
                closed: false,
                busy: false,
            }),
            rq: Arc::new(WaitQueue::new()),
            wq: Arc::new(WaitQueue::new()),
            ctime: now,
            uid,
            gid,
            budget: budget.clone(),
        }))
    }

    /// The socket's lock.
    pub fn lock(&self) -> MutexGuard<'_, St> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the type needs a connection (`PR_CONNREQUIRED`).
    pub fn conn_required(&self) -> bool {
        self.ty != SOCK_DGRAM
    }

    /// Whether sends are atomic records (`PR_ATOMIC`).
    pub fn atomic(&self) -> bool {
        self.ty != SOCK_STREAM
    }

    /// The fake inode number for fstat (`unp_ino`).
    pub fn ino(&self) -> u64 {
        let mut st = self.lock();
        if st.ino == 0 {
            st.ino = UNP_INO.fetch_add(1, Ordering::Relaxed);
        }
        st.ino
    }

    /// Appends a record to this socket's receive buffer (`sbappend*`): for streams the
    /// bytes join the last record when neither carries control data. `ENOBUFS` when the
    /// budget refuses or, with `room_check` (datagrams, `sbappendaddr`), the buffer has no
    /// room; `EPIPE` once the socket is closed. A socket shut for reading still takes data,
    /// as NetBSD's. The record comes back on failure so its files can be discarded.
    pub fn append(self: &Arc<Sock>, mut rec: Rec, room_check: bool) -> Result<(), (Errno, Rec)> {
        {
            let mut st = self.lock();
            if st.closed {
                return Err((Errno::EPIPE, rec));
            }
            let (cc, mb) = (
                rec.cc(),
                mbufs(rec.len()) + rec.addr.as_ref().map_or(0, |_| MSIZE),
            );
            if room_check {
                let mbmax = (2 * st.rcv_hiwat).min(SB_MAX);
                let space = st
                    .rcv_hiwat
                    .saturating_sub(st.rcv_cc)
                    .min(mbmax.saturating_sub(st.rcv_mb));
                if cc > space {
                    st.overflowed = st.overflowed.saturating_add(1);
                    return Err((Errno::ENOBUFS, rec));
                }
            }
            let rights = rec.ctl.iter().any(|c| matches!(c, Ctl::Rights(_)));
            // Never into a record partly read: its consumed prefix would be kept (and
            // charged) for as long as the writer keeps appending.
            let merge = self.ty == SOCK_STREAM
                && rec.ctl.is_empty()
                && st
                    .rcv
                    .back()
                    .is_some_and(|r| r.ctl.is_empty() && r.addr.is_none() && r.off == 0);
            let charge = heap_bytes(rec.data.len()) + if merge { 0 } else { 128 };
            if st.charge.try_grow(charge).is_err() {
                return Err((Errno::ENOBUFS, rec));
            }
            st.rcv_cc += cc;
            st.rcv_mb += mb;
            if merge {
                let last = st.rcv.back_mut().expect("checked");
                last.data.extend_from_slice(&rec.data);
                last.charged += charge;
                last.mb += mb;
            } else {
                rec.charged = charge;
                rec.mb = mb;
                st.rcv.push_back(rec);
            }
            drop(st);
            if rights {
                crate::gc::note_holder(self);
            }
        }
        self.rq.wake_all();
        Ok(())
    }

    /// Removes up to `max` bytes from the head of the receive buffer (`soreceive`'s
    /// taking half): a stream gathers records without control data behind the first; a
    /// record type takes one record (the rest of it dropped unless `peek`: `MSG_TRUNC`).
    /// Returns (data, address, control, whole record length).
    pub fn take(&self, max: usize, peek: bool) -> Option<Taken> {
        let mut st = self.lock();
        let first = st.rcv.front()?;
        let mut t = Taken {
            data: Vec::new(),
            addr: first.addr.clone(),
            ctl: Vec::new(),
            reclen: first.len(),
        };
        if self.ty == SOCK_STREAM {
            let mut i = 0;
            while t.data.len() < max && i < st.rcv.len() {
                if i > 0 && !st.rcv[i].ctl.is_empty() {
                    break;
                }
                let r = &st.rcv[i];
                let n = (max - t.data.len()).min(r.len());
                t.data.extend_from_slice(&r.data[r.off..r.off + n]);
                i += 1;
            }
            if !peek {
                let mut left = t.data.len();
                let (mut freed, mut mb) = (0u64, 0usize);
                let mut first = true;
                while let Some(r) = st.rcv.front_mut() {
                    if first {
                        t.ctl = std::mem::take(&mut r.ctl);
                        first = false;
                    }
                    let n = left.min(r.len());
                    r.off += n;
                    left -= n;
                    if r.len() == 0 && r.ctl.is_empty() {
                        let r = st.rcv.pop_front().expect("front");
                        freed += r.charged;
                        mb += r.mb;
                    }
                    if left == 0 {
                        break;
                    }
                }
                st.rcv_cc -= t.data.len();
                st.rcv_mb -= mb;
                st.charge.shrink(freed);
            }
        } else {
            let r = st.rcv.front().expect("front");
            let n = max.min(r.len());
            t.data.extend_from_slice(&r.data[r.off..r.off + n]);
            if !peek {
                let mut r = st.rcv.pop_front().expect("front");
                st.rcv_cc -= r.cc();
                st.rcv_mb -= r.mb;
                st.charge.shrink(r.charged);
                t.ctl = std::mem::take(&mut r.ctl);
            }
        }
        Some(t)
    }

    /// The peer, for senders (with the state checks of `sosend`): `EPIPE` once this side
    /// can send no more, a pending error, `ENOTCONN` without a peer.
    pub fn send_peer(&self) -> Result<Arc<Sock>, Errno> {
        let mut st = self.lock();
        if st.state & SS_CANTSENDMORE != 0 {
            return Err(Errno::EPIPE);
        }
        if let Some(e) = st.error.take() {
            return Err(e);
        }
        match &st.peer {
            Some(p) if st.state & SS_ISCONNECTED != 0 => Ok(p.clone()),
            _ => Err(Errno::ENOTCONN),
        }
    }

    /// Room this socket may still fill in `peer`'s receive buffer (stream back-pressure,
    /// `sbspace` of a send buffer whose marks NetBSD lowers by what the peer holds: bytes
    /// against `SO_SNDBUF`, mbuf bytes against twice that).
    pub fn space(&self, peer: &Sock) -> usize {
        let hiwat = self.lock().snd_hiwat;
        let (cc, mb) = {
            let p = peer.lock();
            (p.rcv_cc, p.rcv_mb)
        };
        let mbmax = (2 * hiwat).min(SB_MAX);
        hiwat.saturating_sub(cc).min(mbmax.saturating_sub(mb))
    }

    /// `socantsendmore` + `unp_shutdown`: no more sends; the peer sees end of file.
    pub fn shut_wr(&self) {
        let peer = {
            let mut st = self.lock();
            st.state |= SS_CANTSENDMORE;
            if self.conn_required() {
                st.peer.clone()
            } else {
                None
            }
        };
        self.wq.wake_all();
        if let Some(p) = peer {
            p.lock().state |= SS_CANTRCVMORE;
            p.rq.wake_all();
        }
    }

    /// `socantrcvmore` + flush: no more receives; what is buffered is discarded.
    pub fn shut_rd(&self) {
        let recs = {
            let mut st = self.lock();
            st.state |= SS_CANTRCVMORE;
            let recs: Vec<Rec> = st.rcv.drain(..).collect();
            let freed: u64 = recs.iter().map(|r| r.charged).sum();
            st.rcv_cc = 0;
            st.rcv_mb = 0;
            st.charge.shrink(freed);
            recs
        };
        self.rq.wake_all();
        discard_recs(recs);
    }

    /// Discards the receive buffer (the collector's `sorflush` of an unreachable socket).
    pub fn flush(&self) {
        let recs = {
            let mut st = self.lock();
            let recs: Vec<Rec> = st.rcv.drain(..).collect();
            let freed: u64 = recs.iter().map(|r| r.charged).sum();
            st.rcv_cc = 0;
            st.rcv_mb = 0;
            st.charge.shrink(freed);
            recs
        };
        discard_recs(recs);
    }

    /// `soisdisconnected` of a peer whose other end went, with `so_error` `err` (0: none).
    fn disconnected(&self, gone: &Sock, err: Option<Errno>) {
        {
            let mut st = self.lock();
            let ours = st.peer.as_ref().is_some_and(|p| std::ptr::eq(&**p, gone));
            if !ours {
                return;
            }
            st.peer = None;
            if self.conn_required() {
                st.state |= SS_CANTRCVMORE | SS_CANTSENDMORE | SS_ISDISCONNECTED;
            } else if err.is_some() {
                st.error = err;
            }
            st.state &= !(SS_ISCONNECTED | SS_ISCONNECTING);
        }
        self.rq.wake_all();
        self.wq.wake_all();
    }

    /// `soclose`: unbinds, disconnects both sides, aborts pending connections and discards
    /// the buffer (and the files in it). Idempotent.
    pub fn close(self: &Arc<Sock>) {
        let (peer, refs, q, recs, vnode) = {
            let mut st = self.lock();
            if st.closed {
                return;
            }
            st.closed = true;
            st.state |= SS_CANTRCVMORE | SS_CANTSENDMORE;
            st.state &= !(SS_ISCONNECTED | SS_ISCONNECTING);
            let recs: Vec<Rec> = st.rcv.drain(..).collect();
            let freed: u64 = recs.iter().map(|r| r.charged).sum();
            st.rcv_cc = 0;
            st.rcv_mb = 0;
            st.charge.shrink(freed);
            (
                st.peer.take(),
                std::mem::take(&mut st.refs),
                std::mem::take(&mut st.q),
                recs,
                st.vnode.take(),
            )
        };
        self.rq.wake_all();
        self.wq.wake_all();
        if let Some(vn) = vnode {
            let ours = vn
                .bound()
                .is_some_and(|b| b.downcast::<Sock>().is_ok_and(|s| Arc::ptr_eq(&s, self)));
            if ours {
                vn.set_bound(None);
            }
        }
        if let Some(p) = peer {
            if self.conn_required() {
                p.disconnected(self, None);
            } else {
                p.lock().refs.retain(|w| {
                    w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(self))
                });
            }
        }
        for r in refs.iter().filter_map(Weak::upgrade) {
            r.disconnected(self, Some(Errno::ECONNRESET));
        }
        for pending in q {
            pending.close();
        }
        discard_recs(recs);
    }

    /// The budget this socket is charged to.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }
}

/// What [`Sock::take`] removed.
pub struct Taken {
    /// Bytes.
    pub data: Vec<u8>,
    /// The sender's address.
    pub addr: Option<Vec<u8>>,
    /// Control data.
    pub ctl: Vec<Ctl>,
    /// Length of the whole first record (datagram truncation).
    pub reclen: usize,
}

thread_local! {
    static DRAINING: Cell<bool> = const { Cell::new(false) };
}

/// Files discarded while a drain runs on this thread.
static DISCARD: Mutex<Vec<Arc<File>>> = Mutex::new(Vec::new());

/// Drops the control data of discarded records (`unp_dispose`).
pub fn discard_recs(recs: Vec<Rec>) {
    let mut files = Vec::new();
    for r in recs {
        for c in r.ctl {
            if let Ctl::Rights(f) = c {
                files.extend(f);
            }
        }
    }
    discard(files);
}

/// Drops files no longer counted in flight (refused at delivery) with the work list.
pub fn discard_unflown(files: Vec<Arc<File>>) {
    crate::gc::enter_flight_forced(files.len());
    discard(files);
}

/// Drops files that are not counted in flight, with the work list.
pub fn discard_plain(files: Vec<Arc<File>>) {
    enqueue(files);
}

/// Drops in-flight files with a work list: a file whose drop discards more files (a
/// socket carrying sockets) adds them to the list instead of recursing.
pub fn discard(files: Vec<Arc<File>>) {
    if files.is_empty() {
        return;
    }
    crate::gc::left_flight(files.len());
    enqueue(files);
}

fn enqueue(files: Vec<Arc<File>>) {
    if files.is_empty() {
        return;
    }
    DISCARD
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(files);
    if DRAINING.with(|d| d.replace(true)) {
        return;
    }
    loop {
        let next = DISCARD.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match next {
            Some(f) => drop(f),
            None => break,
        }
    }
    DRAINING.with(|d| d.set(false));
}

//! The rumpnet faction: NetBSD's socket layer and its AF_LOCAL family, attached to a rump
//! kernel through its faction hooks (a `FileKind::Faction` file per socket, a
//! `SyscallTable` for the socket calls, `Vnode::bound` for names, sysctl nodes).
//!
//! The kernel crate never depends on this one. `attach` is what `-lrumpnet_local` does at
//! boot; without it every socket call stays `ENOSYS`, as in a NetBSD rump kernel without
//! the component. Families that need the host (sockin: AF_INET/AF_INET6 through the
//! server's runtime) plug in beside AF_LOCAL in `sys::create`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod abi;
pub mod gc;
pub mod sock;
pub mod sys;

use std::any::Any;
use std::sync::Arc;

use kernel::abi::{Stat, NODEV, S_IFSOCK};
use kernel::file::ops::{POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use kernel::file::{FactionFile, File, Filt, Filter, Iov, PollEvents, Selector};
use kernel::sysctl::Spec;
use kernel::{BoxFut, DynMem, Errno, Kernel, Proc, Result};

use abi::*;
use sock::{SockFile, SS_CANTRCVMORE, SS_CANTSENDMORE, SS_ISCONNECTED};

/// Attaches the socket layer (`-lrumpnet`: the socket system calls) and, with `local`
/// (`-lrumpnet_local`), AF_LOCAL and its `net.local` sysctl nodes.
pub fn attach(k: &Kernel, local: bool) -> Result<()> {
    k.register_syscalls(Arc::new(sys::Table { local }));
    if !local {
        return Ok(());
    }
    // NetBSD's nodes (uipc_domain.c), without descriptions as its rump kernel shows them;
    // the `pcblist` leaves (struct kinfo_pcb lists) are not served yet.
    let mib = k.sysctl();
    mib.register(&["net"], Spec::node("local", Some(AF_LOCAL)))?;
    for (name, num) in [
        ("stream", SOCK_STREAM),
        ("seqpacket", SOCK_SEQPACKET),
        ("dgram", SOCK_DGRAM),
    ] {
        mib.register(&["net", "local"], Spec::node(name, Some(num)))?;
    }
    Ok(())
}

impl FactionFile for SockFile {
    fn read<'a>(
        &'a self,
        fp: &'a File,
        k: &'a Kernel,
        p: &'a Proc,
        mem: &'a dyn DynMem,
        iov: &'a [Iov],
        at: Option<i64>,
    ) -> BoxFut<'a, (u64, Result<()>)> {
        Box::pin(async move {
            if at.is_some() {
                return (0, Err(Errno::ESPIPE));
            }
            sys::read(k, p, mem, fp, &self.0, iov).await
        })
    }

    fn write<'a>(
        &'a self,
        fp: &'a File,
        k: &'a Kernel,
        p: &'a Proc,
        mem: &'a dyn DynMem,
        iov: &'a [Iov],
        at: Option<i64>,
    ) -> BoxFut<'a, (u64, Result<()>)> {
        Box::pin(async move {
            if at.is_some() {
                return (0, Err(Errno::ESPIPE));
            }
            sys::write(k, p, mem, fp, &self.0, iov).await
        })
    }

    fn ioctl(&self, _fp: &File, com: u32, data: &mut [u8]) -> Result<()> {
        let so = &self.0;
        let put = |data: &mut [u8], v: i32| {
            if data.len() >= 4 {
                data[..4].copy_from_slice(&v.to_le_bytes());
            }
        };
        match com {
            FIONBIO | FIOASYNC => Ok(()),
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
            FIOSETOWN | FIOGETOWN => {
                if com == FIOGETOWN {
                    put(data, 0);
                }
                Ok(())
            }
            SIOCATMARK => {
                put(data, 0);
                Ok(())
            }
            _ => Err(Errno::EOPNOTSUPP),
        }
    }

    fn stat(&self, _k: &Kernel) -> Result<Stat> {
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

    fn poll(&self, _fp: &File, events: PollEvents, sel: Option<&mut Selector>) -> PollEvents {
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

    fn filter(&self, fp: &File, filter: Filter, sel: Option<&mut Selector>) -> Result<Filt> {
        let ev = match filter {
            Filter::Read => POLLIN,
            Filter::Write => POLLOUT,
        };
        let r = self.poll(fp, ev, sel);
        let so = &self.0;
        let st = so.lock();
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

    fn as_any(&self) -> &dyn Any {
        self
    }
}

//! The rumpnet faction: NetBSD's socket layer and its families, attached to a rump kernel
//! through its faction hooks (a `FileKind::Faction` file per socket, a `SyscallTable` for
//! the socket calls, `Vnode::bound` for names, sysctl nodes).
//!
//! The kernel crate never depends on this one. `attach` is what `-lrumpnet` does at boot;
//! without it every socket call stays `ENOSYS`, as in a NetBSD rump kernel without the
//! component. The generic layer (sys.rs) reaches families through the protocol switch
//! (domain.rs: [`Domain`], [`ProtoSock`]); AF_LOCAL (local.rs, sock.rs) is the first,
//! other crates register theirs on the [`Net`] that [`attach`] returns.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod abi;
pub mod domain;
pub mod gc;
pub mod local;
pub mod pcblist;
pub mod sock;
pub mod sockin;
pub mod sys;

use std::any::Any;
use std::sync::Arc;

use kernel::abi::Stat;
use kernel::file::{FactionFile, File, Filt, Filter, Iov, PollEvents, Selector};
use kernel::sysctl::{ArgsCall, Env, Spec, CTLTYPE_STRUCT};
use kernel::{BoxFut, DynMem, Errno, Kernel, Proc, Result};

use abi::*;
pub use domain::{iov_total, Accepted, Ctl, Ctx, Domain, Net, ProtoSock, Received, Uio, CHUNK_MAX};
pub use sys::{proto_of, sowait, SockFile};

/// Attaches the socket layer (`-lrumpnet`: the socket system calls) and, with `local`
/// (`-lrumpnet_local`), AF_LOCAL and its `net.local` sysctl nodes. Returns the family
/// registry, on which other components register theirs before clients come.
pub fn attach(k: &Kernel, local: bool) -> Result<Arc<Net>> {
    let net = Arc::new(Net::default());
    k.register_syscalls(Arc::new(sys::Table { net: net.clone() }));
    if !local {
        return Ok(net);
    }
    net.register_domain(Arc::new(local::LocalDomain))?;
    // NetBSD's nodes (uipc_domain.c), without descriptions as its rump kernel shows them.
    // Each type's `pcblist` leaf (CTL_CREATE'd, a struct) takes four name components
    // (op, arg, element size and count: `sysctl_unpcblist`) and lists the open sockets
    // of its type (`pcblist.rs`).
    let mib = k.sysctl();
    mib.register(&["net"], Spec::node("local", Some(AF_LOCAL)))?;
    for (name, num) in [
        ("stream", SOCK_STREAM),
        ("seqpacket", SOCK_SEQPACKET),
        ("dgram", SOCK_DGRAM),
    ] {
        mib.register(&["net", "local"], Spec::node(name, Some(num)))?;
        let weak = Arc::downgrade(&net);
        let list = move |e: &Env<'_>, call: &ArgsCall<'_>| {
            let net = weak.upgrade().ok_or(Errno::ENOENT)?;
            let pcbs = net.pcbs(|p| p.family == AF_LOCAL as u32 && p.ty == num as u32);
            pcblist::serve(call, e.oldlen, &pcbs)
        };
        let pcblist = Spec::func_args(
            "pcblist",
            None,
            CTLTYPE_STRUCT,
            0,
            pcblist::PCBLIST_ARGS,
            list,
        );
        mib.register(&["net", "local", name], pcblist)?;
    }
    Ok(net)
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
            sys::read(k, p, mem, fp, &*self.so, iov).await
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
            sys::write(k, p, mem, fp, &*self.so, iov).await
        })
    }

    /// `soo_ioctl`: the generic requests here, the rest the family's.
    fn ioctl(&self, fp: &File, com: u32, data: &mut [u8]) -> Result<()> {
        match com {
            FIONBIO | FIOASYNC => Ok(()),
            FIOSETOWN => Ok(()),
            FIOGETOWN => {
                if data.len() >= 4 {
                    data[..4].copy_from_slice(&0i32.to_le_bytes());
                }
                Ok(())
            }
            _ => self.so.ioctl(fp, com, data),
        }
    }

    fn ioctl_mem<'a>(
        &'a self,
        _fp: &'a File,
        k: &'a Kernel,
        p: &'a Proc,
        mem: &'a dyn DynMem,
        com: u32,
        data: &'a mut [u8],
    ) -> Option<BoxFut<'a, Result<()>>> {
        self.so.ioctl_mem(Ctx { k, p, mem }, com, data)
    }

    fn stat(&self, _k: &Kernel) -> Result<Stat> {
        self.so.stat()
    }

    fn poll(&self, _fp: &File, events: PollEvents, sel: Option<&mut Selector>) -> PollEvents {
        self.so.poll(events, sel)
    }

    fn filter(&self, _fp: &File, filter: Filter, sel: Option<&mut Selector>) -> Result<Filt> {
        self.so.filter(filter, sel)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

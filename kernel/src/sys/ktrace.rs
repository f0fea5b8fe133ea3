//! ktrace(2) (`kern_ktrace.c`): a process's calls recorded into a file of the rump namespace
//! in NetBSD's format (`struct ktr_header` + payload, `sys/ktrace.h`), for kdump.
//!
//! Only `KTR_SYSCALL` and `KTR_SYSRET` records are written (not `NAMEI`/`GENIO`: their
//! facility bits are accepted and kept, as NetBSD keeps bits it has no record for). Records
//! are written synchronously with the call through the VFS (an ordinary vnode write, charged
//! to the budget like any file data, async on the loop); a failed write stops tracing the
//! process, as `ktrderror`. The hook costs one relaxed load of [`ANY`] per syscall until the
//! first ktrace(2) succeeds.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{Args, Ctx, SysResult, SyscallOutcome};
use crate::abi::{AT_FDCWD, O_APPEND, O_RDWR};
use crate::file::{File, Iov};
use crate::{Errno, Kernel, Proc, Result, UserMem};

/// Set once a process was traced: until then the syscall path skips [`around`].
pub(crate) static ANY: AtomicBool = AtomicBool::new(false);

const KTROP_SET: i32 = 0;
const KTROP_CLEAR: i32 = 1;
const KTROP_CLEARFILE: i32 = 2;
const KTROP_MASK: i32 = 3;
const KTRFLAG_DESCEND: i32 = 4;
const KTR_SYSCALL: u32 = 1;
const KTR_SYSRET: u32 = 2;
const KTRFAC_MASK: u32 = 0x00ff_ffff;
const KTRFAC_PERSISTENT: u32 = 0x8000_0000;
const KTRFAC_VER_MASK: u32 = 0x0f00_0000;
const KTRFAC_VER_SHIFT: u32 = 24;
/// `sizeof(struct ktr_header)` on amd64.
const HDR: usize = 56;

/// A traced process's state: `p_traceflag` and the trace file (`p_tracep`).
#[derive(Clone)]
pub(crate) struct Trace {
    flags: u32,
    file: Arc<File>,
}

/// `sy_narg` of every NetBSD syscall (from `syscalls.master`): how many `register_t`s a
/// `KTR_SYSCALL` record carries.
const NARG: [u8; 512] = [
    2, 1, 0, 3, 3, 3, 1, 4, 2, 2, 1, 0, 1, 1, 3, 2, 3, 1, 3, 3, 0, 4, 2, 1, 0, 0, 4, 3, 3, 6, 3, 3,
    3, 2, 2, 2, 0, 2, 2, 0, 2, 1, 0, 0, 4, 4, 3, 0, 2, 2, 1, 1, 0, 2, 3, 1, 1, 2, 3, 3, 1, 1, 2, 4,
    0, 2, 0, 0, 0, 1, 1, 6, 1, 2, 3, 3, 0, 0, 3, 2, 2, 0, 2, 3, 0, 1, 2, 2, 2, 0, 2, 0, 3, 5, 0, 1,
    3, 3, 3, 3, 2, 4, 4, 1, 3, 5, 2, 0, 3, 1, 1, 1, 2, 3, 3, 0, 2, 2, 5, 0, 3, 3, 2, 3, 2, 6, 2, 2,
    2, 2, 2, 2, 2, 6, 2, 4, 2, 1, 2, 0, 2, 3, 0, 1, 2, 2, 2, 0, 4, 0, 3, 0, 0, 0, 0, 2, 4, 2, 2, 0,
    0, 2, 2, 2, 1, 2, 0, 0, 0, 5, 6, 4, 0, 5, 5, 1, 1, 0, 0, 0, 0, 1, 1, 1, 3, 3, 2, 2, 2, 2, 2, 2,
    2, 0, 2, 2, 4, 7, 2, 4, 3, 3, 6, 2, 2, 1, 2, 1, 2, 3, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 3, 3, 1,
    3, 2, 4, 5, 3, 3, 1, 3, 2, 2, 2, 3, 1, 4, 2, 1, 2, 1, 1, 0, 3, 2, 2, 2, 5, 1, 1, 1, 1, 1, 2, 1,
    2, 4, 1, 1, 2, 3, 2, 4, 4, 5, 5, 0, 0, 0, 2, 3, 3, 3, 2, 3, 2, 3, 2, 2, 2, 2, 0, 3, 3, 3, 1, 2,
    4, 5, 5, 3, 1, 3, 1, 1, 2, 1, 2, 2, 2, 4, 3, 3, 2, 0, 3, 1, 1, 3, 0, 0, 2, 1, 1, 1, 0, 1, 2, 1,
    4, 2, 3, 2, 3, 2, 0, 0, 0, 0, 4, 2, 0, 1, 0, 1, 0, 0, 0, 0, 5, 3, 3, 3, 0, 6, 4, 4, 4, 4, 0, 1,
    0, 0, 4, 2, 3, 3, 3, 3, 5, 5, 5, 3, 5, 5, 3, 5, 5, 3, 4, 4, 4, 6, 4, 5, 5, 5, 4, 4, 4, 3, 3, 3,
    2, 2, 2, 2, 2, 2, 3, 0, 2, 1, 3, 3, 3, 4, 3, 2, 1, 2, 1, 1, 3, 1, 4, 0, 0, 0, 5, 5, 1, 1, 3, 5,
    5, 5, 2, 2, 2, 2, 2, 2, 2, 3, 2, 2, 2, 2, 2, 3, 5, 5, 4, 6, 6, 4, 3, 2, 2, 2, 4, 3, 3, 2, 4, 2,
    1, 4, 3, 3, 0, 2, 3, 1, 5, 5, 4, 3, 5, 3, 4, 4, 5, 3, 4, 4, 4, 4, 3, 3, 2, 2, 6, 5, 4, 4, 6, 4,
    4, 6, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

fn trace_of(p: &Proc) -> Option<Trace> {
    p.ktrace.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn set_trace(p: &Proc, t: Option<Trace>) {
    *p.ktrace.lock().unwrap_or_else(|e| e.into_inner()) = t;
}

/// Runs syscall `call` of a process, with its `KTR_SYSCALL`/`KTR_SYSRET` records when traced.
pub(crate) async fn around(
    k: &Kernel,
    p: &Arc<Proc>,
    nr: u32,
    args: &[u64; 8],
    call: impl Future<Output = SyscallOutcome>,
) -> SyscallOutcome {
    // `p_trace_enabled` is read at entry (sy_invoke): a call that starts tracing has no
    // return record, one that stops it may.
    let Some(t) = trace_of(p) else {
        return call.await;
    };
    if t.flags & (1 << KTR_SYSCALL) != 0 {
        let n = NARG.get(nr as usize).copied().unwrap_or(0) as usize;
        let mut b = Vec::with_capacity(8 + 8 * n);
        b.extend_from_slice(&(nr as i32).to_le_bytes());
        b.extend_from_slice(&((8 * n) as i32).to_le_bytes());
        for a in &args[..n.min(8)] {
            b.extend_from_slice(&a.to_le_bytes());
        }
        record(k, p, &t, KTR_SYSCALL, &b).await;
    }
    let out = call.await;
    if let Some(t) = trace_of(p).filter(|t| t.flags & (1 << KTR_SYSRET) != 0) {
        let (error, rv) = match out.result {
            Ok(rv) => (0, rv),
            Err(e) => (i32::from(e.raw()), [0, 0]),
        };
        let mut b = Vec::with_capacity(24);
        b.extend_from_slice(&(nr as i16).to_le_bytes());
        b.extend_from_slice(&0i16.to_le_bytes());
        b.extend_from_slice(&error.to_le_bytes());
        b.extend_from_slice(&rv[0].to_le_bytes());
        b.extend_from_slice(&rv[1].to_le_bytes());
        record(k, p, &t, KTR_SYSRET, &b).await;
    }
    out
}

/// Appends one record to `t`'s file; a failed write ends the tracing (`ktrderror`).
async fn record(k: &Kernel, p: &Arc<Proc>, t: &Trace, ty: u32, payload: &[u8]) {
    let version = (t.flags & KTRFAC_VER_MASK) >> KTRFAC_VER_SHIFT;
    let mut b = Vec::with_capacity(HDR + payload.len());
    b.extend_from_slice(&(payload.len() as i32).to_le_bytes());
    b.extend_from_slice(&(ty as i16).to_le_bytes());
    b.extend_from_slice(&(version as i16).to_le_bytes());
    b.extend_from_slice(&p.pid().to_le_bytes());
    let mut comm = [0u8; 17];
    let name = p.comm();
    let n = name.len().min(16);
    comm[..n].copy_from_slice(&name[..n]);
    b.extend_from_slice(&comm);
    b.resize(32, 0);
    let now = crate::file::now(k);
    match version {
        // v0: int32 tv_sec, long tv_usec; v1: int32 tv_sec, long tv_nsec, lwpid.
        0 | 1 => {
            b.extend_from_slice(&(now.sec as i32).to_le_bytes());
            b.resize(40, 0);
            let frac = if version == 0 {
                now.nsec / 1000
            } else {
                now.nsec
            };
            b.extend_from_slice(&frac.to_le_bytes());
        }
        _ => {
            b.extend_from_slice(&now.sec.to_le_bytes());
            b.extend_from_slice(&now.nsec.to_le_bytes());
        }
    }
    if version >= 1 {
        b.extend_from_slice(&1i32.to_le_bytes()); // lid: one lwp per process
    }
    b.resize(HDR, 0);
    b.extend_from_slice(payload);
    let mem = KMem(&b);
    let iov = [Iov {
        base: 1,
        len: b.len() as u64,
    }];
    let (n, r) = t.file.write(k, p, &mem, &iov).await;
    if r.is_err() || n != b.len() as u64 {
        // ktrderror: the file is unusable, tracing of the process stops.
        let mut g = p.ktrace.lock().unwrap_or_else(|e| e.into_inner());
        if g.as_ref().is_some_and(|g| Arc::ptr_eq(&g.file, &t.file)) {
            *g = None;
        }
    }
}

/// The record being written, as the "user memory" of a vnode write (base address 1).
struct KMem<'a>(&'a [u8]);

impl UserMem for KMem<'_> {
    async fn copyin(&self, addr: u64, len: usize) -> Result<Vec<u8>> {
        let off = usize::try_from(addr.wrapping_sub(1)).map_err(|_| Errno::EFAULT)?;
        let end = off.checked_add(len).ok_or(Errno::EFAULT)?;
        self.0
            .get(off..end)
            .map(<[u8]>::to_vec)
            .ok_or(Errno::EFAULT)
    }
    async fn copyinstr(&self, _addr: u64, _maxlen: usize) -> Result<Vec<u8>> {
        Err(Errno::EFAULT)
    }
    async fn copyout(&self, _addr: u64, _data: &[u8]) -> Result<()> {
        Err(Errno::EFAULT)
    }
    fn raise(&self, _signo: u32) {}
}

/// `ktrcanset` as NetBSD's `secmodel_bsd44` decides it: root, or a target whose real and
/// saved uids are the caller's effective uid and that did not change credentials.
fn can_set(caller: &Proc, target: &Proc) -> bool {
    let (c, t) = (caller.cred(), target.cred());
    c.euid == 0 || (t.uid == c.euid && t.svuid == c.euid && !target.sugid())
}

/// `ktrace(fname, ops, facs, pid)`.
pub async fn ktrace<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    // Every op but KTROP_CLEAR opens the file (vn_open FREAD|FWRITE, no creation), a
    // regular file (`EACCES` else), through a descriptor slot as NetBSD's fd_allocfile.
    let file = match a.int(1) & KTROP_MASK {
        KTROP_CLEAR => None,
        _ => {
            let fd = super::open::do_open(c, AT_FDCWD, a.word(0), O_RDWR | O_APPEND, 0).await?[0];
            let fp = c.p.fd.get(fd as i32)?;
            drop(c.p.fd.close(fd as i32)?);
            if fp.vnode().map(|v| v.vtype()) != Some(crate::vfs::VType::Reg) {
                return Err(Errno::EACCES);
            }
            Some(fp)
        }
    };
    common(c, a, file)
}

/// `fktrace(fd, ops, facs, pid)`: as ktrace(2) into an open file; only a vnode's file (a
/// pipe's reader could stop the traced process: NetBSD writes from a kernel thread).
pub async fn fktrace<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let fp = c.p.fd.get(a.int(0)).map_err(|_| Errno::EBADF)?;
    if !fp.writable() {
        return Err(Errno::EBADF);
    }
    if !fp.is_vnode() {
        return Err(Errno::EOPNOTSUPP);
    }
    common(c, a, Some(fp))
}

/// `ktrace_common`: the operation `a[1]` with facilities `a[2]` on process (tree) `a[3]`.
fn common<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>, file: Option<Arc<File>>) -> SysResult {
    let (ops, facs, pid) = (a.int(1), a.uint(2) & !KTRFAC_PERSISTENT, a.int(3));
    let same = |t: &Trace| {
        let (Some(a), Some(b)) = (t.file.vnode(), file.as_ref().and_then(|f| f.vnode())) else {
            return false;
        };
        Arc::ptr_eq(a, b)
    };
    if ops & KTROP_MASK == KTROP_CLEARFILE {
        // ktrderefall: every process tracing to this file that the caller may change.
        for p in c.k.all_procs() {
            if trace_of(&p).is_some_and(|t| same(&t)) && can_set(c.p, &p) {
                set_trace(&p, None);
            }
        }
        return Ok([0, 0]);
    }
    if facs == 0 {
        return Err(Errno::EINVAL);
    }
    // Our processes have no process groups: a pgid names none (pgrp_find fails).
    if pid < 0 {
        return Err(Errno::ESRCH);
    }
    let vers = a.uint(1) & KTRFAC_VER_MASK;
    // init (pid 1) is no client process here but exists, root's and never traced: root may
    // change it (`ktrace -C` clears from it with KTRFLAG_DESCEND), nothing else may.
    let is_init = pid == crate::proc::INIT_PID;
    let mut any = is_init && c.p.cred().euid == 0;
    let targets: Vec<Arc<Proc>> = {
        let all = c.k.all_procs();
        let mut v: Vec<Arc<Proc>> = all.iter().filter(|p| p.pid() == pid).cloned().collect();
        if v.is_empty() && !is_init {
            return Err(Errno::ESRCH);
        }
        if ops & KTRFLAG_DESCEND != 0 {
            // ktrsetchildren: the descendants, by parent pid.
            let mut parents = vec![pid];
            let mut i = 0;
            while i < parents.len() {
                let ppid = parents[i];
                for p in all.iter().filter(|p| p.ppid() == ppid && p.pid() != ppid) {
                    parents.push(p.pid());
                    v.push(p.clone());
                }
                i += 1;
            }
        }
        v
    };
    for p in &targets {
        if !can_set(c.p, p) {
            continue;
        }
        if vers > 2 << KTRFAC_VER_SHIFT {
            return Err(Errno::EINVAL);
        }
        any = true;
        let mut g = p.ktrace.lock().unwrap_or_else(|e| e.into_inner());
        match (ops & KTROP_MASK, file.as_ref()) {
            (KTROP_SET, Some(f)) => {
                let old = g
                    .take()
                    .filter(|t| same(t))
                    .map_or(0, |t| t.flags & KTRFAC_MASK);
                *g = Some(Trace {
                    flags: old | (facs & KTRFAC_MASK) | vers,
                    file: f.clone(),
                });
                ANY.store(true, Ordering::Relaxed);
            }
            _ => {
                if let Some(t) = g.as_mut() {
                    t.flags &= !facs;
                    if t.flags & KTRFAC_MASK == 0 {
                        *g = None;
                    }
                }
            }
        }
    }
    match any {
        true => Ok([0, 0]),
        false => Err(Errno::EPERM),
    }
}

//! ktrace(2) (`kern_ktrace.c`): a process's calls recorded into a file of the rump namespace
//! in NetBSD's format (`struct ktr_header` + payload, `sys/ktrace.h`), for kdump.
//!
//! Records: `KTR_SYSCALL` and `KTR_SYSRET` around each call; `KTR_NAMEI` for every path a
//! call looks up (the path with its NUL, as `namei_ktrace`, made when the lookup starts and
//! written after the call, before its return record); `KTR_GENIO` for the data a successful
//! read, write, readv, writev, pread, pwrite, preadv or pwritev moved (`ktr_io`: records of
//! at most a page, the data copied in again from the client's buffers) and an ioctl's
//! `IOC_IN` argument and `IOC_OUT` result (`sys_ioctl`). Other facility bits
//! are accepted and kept, as NetBSD keeps bits it has no record for. `KTRFAC_INHERIT` passes
//! the tracing to fork children (`fork1`). Records are written synchronously with the call
//! through the VFS (an ordinary vnode write at the file's offset, charged to the budget like
//! any file data, async on the loop); a failed write stops tracing the process, as
//! `ktrderror`. The hook costs one relaxed load of [`ANY`] per syscall until the first
//! ktrace(2) succeeds.
//!
//! One deliberate difference: ktrace(2) opens the file for appending. NetBSD's opens a new
//! file object at offset 0 without `FAPPEND` (`kern_ktrace_vfs.c`), so `ktrace -a` on an
//! existing file writes its records over the file's beginning; here they go after it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{Args, Ctx, SysResult, SyscallOutcome};
use crate::abi::sysnum::{
    SYS_ioctl, SYS_pread, SYS_preadv, SYS_pwrite, SYS_pwritev, SYS_read, SYS_readv, SYS_write,
    SYS_writev,
};
use crate::abi::{Timespec, AT_FDCWD, IOVEC_SIZE, IOV_MAX, O_APPEND, O_RDWR};
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
const KTR_NAMEI: u32 = 3;
const KTR_GENIO: u32 = 4;
const KTRFAC_MASK: u32 = 0x00ff_ffff;
const KTRFAC_INHERIT: u32 = 0x4000_0000;
/// `struct ktr_genio` (fd, `enum uio_rw`) before the data.
const GENIO_HDR: usize = 8;
/// A `KTR_GENIO` record's payload, at most (`ktr_io`: a page with its `ktr_genio`).
const GENIO_MAX: usize = 4096;
/// `IOC_IN`, `IOC_OUT`, `IOCPARM_MASK` and `IOCPARM_MAX` (`NBPG`) of `sys/ioccom.h`.
const IOC_IN: u32 = 0x8000_0000;
const IOC_OUT: u32 = 0x4000_0000;
const IOCPARM_MASK: u32 = 0x1fff;
const IOCPARM_MAX: usize = 4096;
/// Records a call may make before its return (paths looked up); more are dropped, as
/// NetBSD drops records it cannot allocate.
const PENDING_MAX: usize = 16;
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
    /// Records made during the current call, written before its return record.
    pending: Vec<Rec>,
}

/// A record made inside a call: its type, creation time and payload.
#[derive(Clone)]
struct Rec {
    ty: u32,
    time: Timespec,
    payload: Vec<u8>,
}

impl Trace {
    fn traces(&self, ty: u32) -> bool {
        self.flags & (1 << ty) != 0
    }
}

/// `ktrnamei`: the lookup of `path` starts (after its starting directory was found); a
/// traced process with `KTR_NAMEI` records it with its NUL. An empty path fails before.
pub(crate) fn namei(k: &Kernel, p: &Proc, path: &[u8]) {
    if !ANY.load(Ordering::Relaxed) || path.is_empty() {
        return;
    }
    let mut g = p.ktrace.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = g.as_mut().filter(|t| t.traces(KTR_NAMEI)) {
        if t.pending.len() < PENDING_MAX {
            let mut payload = Vec::with_capacity(path.len() + 1);
            payload.extend_from_slice(path);
            payload.push(0);
            t.pending.push(Rec {
                ty: KTR_NAMEI,
                time: crate::file::now(k),
                payload,
            });
        }
    }
}

/// `fork1`'s `KTRFAC_INHERIT`: the child traces to its parent's file with its flags.
pub(crate) fn fork(parent: &Proc, child: &Proc) {
    if !ANY.load(Ordering::Relaxed) {
        return;
    }
    if let Some(t) = trace_of(parent).filter(|t| t.flags & KTRFAC_INHERIT != 0) {
        set_trace(
            child,
            Some(Trace {
                pending: Vec::new(),
                ..t
            }),
        );
    }
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

/// Runs syscall `call` of a process, with its records when traced.
pub(crate) async fn around<M: UserMem>(
    k: &Kernel,
    p: &Arc<Proc>,
    mem: &M,
    nr: u32,
    args: &[u64; 8],
    call: impl Future<Output = SyscallOutcome>,
) -> SyscallOutcome {
    // `p_trace_enabled` is read at entry (sy_invoke): a call that starts tracing has no
    // return record, one that stops it may.
    let Some(t) = trace_of(p) else {
        return call.await;
    };
    if t.traces(KTR_SYSCALL) {
        let n = NARG.get(nr as usize).copied().unwrap_or(0) as usize;
        let mut b = Vec::with_capacity(8 + 8 * n);
        b.extend_from_slice(&(nr as i32).to_le_bytes());
        b.extend_from_slice(&((8 * n) as i32).to_le_bytes());
        for a in &args[..n.min(8)] {
            b.extend_from_slice(&a.to_le_bytes());
        }
        record(k, p, &t, KTR_SYSCALL, &b, None).await;
    }
    // ioctl's argument as the call copies it in, recorded only if the call gets that far.
    let ioc_in = match nr == SYS_ioctl && t.traces(KTR_GENIO) {
        true => ioctl_in(mem, args).await,
        false => None,
    };
    let out = call.await;
    let pending = {
        let mut g = p.ktrace.lock().unwrap_or_else(|e| e.into_inner());
        g.as_mut()
            .map(|t| std::mem::take(&mut t.pending))
            .unwrap_or_default()
    };
    for r in pending {
        if let Some(t) = trace_of(p) {
            record(k, p, &t, r.ty, &r.payload, Some(r.time)).await;
        }
    }
    if let Some(t) = trace_of(p).filter(|t| t.traces(KTR_GENIO)) {
        match &out.result {
            _ if nr == SYS_ioctl => ioctl_genio(k, p, &t, mem, args, ioc_in, &out.result).await,
            Ok(rv) => genio(k, p, &t, mem, nr, args, rv[0]).await,
            Err(_) => {}
        }
    }
    if let Some(t) = trace_of(p).filter(|t| t.traces(KTR_SYSRET)) {
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
        record(k, p, &t, KTR_SYSRET, &b, None).await;
    }
    out
}

/// `IOC_IN`: the argument's bytes of an `ioctl(fd, com, data)` before the call, as
/// `sys_ioctl` copies them in (`IOCPARM_LEN(com)`, at most `IOCPARM_MAX`).
async fn ioctl_in<M: UserMem>(mem: &M, args: &[u64; 8]) -> Option<Vec<u8>> {
    let (com, size) = ioctl_com(args);
    if com & IOC_IN == 0 || size == 0 || size > IOCPARM_MAX {
        return None;
    }
    crate::copy::copyin(mem, args[2], size).await.ok()
}

/// `com` and its argument size.
fn ioctl_com(args: &[u64; 8]) -> (u32, usize) {
    let com = args[1] as u32;
    (com, ((com >> 16) & IOCPARM_MASK) as usize)
}

/// `sys_ioctl`'s records: the `IOC_IN` argument (`UIO_WRITE`) unless the call failed before
/// copying it in (a bad descriptor), and after a successful call the `IOC_OUT` result
/// (`UIO_READ`), copied in again from the client.
async fn ioctl_genio<M: UserMem>(
    k: &Kernel,
    p: &Arc<Proc>,
    t: &Trace,
    mem: &M,
    args: &[u64; 8],
    ioc_in: Option<Vec<u8>>,
    result: &Result<[i64; 2]>,
) {
    let fd = args[0] as i32;
    let rec = |rw: u32, data: &[u8]| {
        let mut b = Vec::with_capacity(GENIO_HDR + data.len());
        b.extend_from_slice(&fd.to_le_bytes());
        b.extend_from_slice(&rw.to_le_bytes());
        b.extend_from_slice(data);
        b
    };
    if let Some(d) = ioc_in.filter(|_| *result != Err(Errno::EBADF)) {
        record(k, p, t, KTR_GENIO, &rec(1, &d), None).await;
    }
    let (com, size) = ioctl_com(args);
    if result.is_err() || com & IOC_OUT == 0 || size == 0 || size > IOCPARM_MAX {
        return;
    }
    if let Ok(d) = crate::copy::copyin(mem, args[2], size).await {
        record(k, p, t, KTR_GENIO, &rec(0, &d), None).await;
    }
}

/// `ktrgenio`/`ktrgeniov` after a successful transfer call of `done` bytes: the data moved,
/// copied in again from the client's buffers (`ktr_io`), in records of at most a page.
/// A buffer the client no longer serves ends the records (`ktr_io`'s copyin failure).
async fn genio<M: UserMem>(
    k: &Kernel,
    p: &Arc<Proc>,
    t: &Trace,
    mem: &M,
    nr: u32,
    args: &[u64; 8],
    done: i64,
) {
    #[allow(non_upper_case_globals)] // NetBSD's `SYS_*` names
    let (rw, vector) = match nr {
        SYS_read | SYS_pread => (0u32, false),
        SYS_write | SYS_pwrite => (1, false),
        SYS_readv | SYS_preadv => (0, true),
        SYS_writev | SYS_pwritev => (1, true),
        _ => return,
    };
    let Ok(mut resid) = u64::try_from(done) else {
        return;
    };
    // The buffers: one, or the iovec array (bounded by IOV_MAX, as the call checked).
    let iov: Vec<(u64, u64)> = if vector {
        let cnt = (args[2] as usize).min(IOV_MAX);
        let Ok(raw) = crate::copy::copyin(mem, args[1], cnt * IOVEC_SIZE).await else {
            return;
        };
        raw.chunks_exact(IOVEC_SIZE)
            .map(|v| {
                let w = |o: usize| u64::from_le_bytes(v[o..o + 8].try_into().expect("8 bytes"));
                (w(0), w(8))
            })
            .collect()
    } else {
        vec![(args[1], resid)]
    };
    let fd = args[0] as i32;
    let mut it = iov.into_iter().filter(|v| v.1 > 0);
    let mut cur = it.next();
    loop {
        let mut b = Vec::with_capacity(GENIO_MAX.min(GENIO_HDR + resid as usize));
        b.extend_from_slice(&fd.to_le_bytes());
        b.extend_from_slice(&rw.to_le_bytes());
        while resid > 0 && b.len() < GENIO_MAX {
            let Some((base, len)) = cur else {
                break;
            };
            let n = len.min(resid).min((GENIO_MAX - b.len()) as u64);
            match crate::copy::copyin(mem, base, n as usize).await {
                Ok(d) => b.extend_from_slice(&d),
                Err(_) => return,
            }
            resid -= n;
            cur = match len - n {
                0 => it.next(),
                rest => Some((base + n, rest)),
            };
        }
        let Some(t) = trace_of(p).filter(|x| Arc::ptr_eq(&x.file, &t.file)) else {
            return;
        };
        record(k, p, &t, KTR_GENIO, &b, None).await;
        if resid == 0 || cur.is_none() {
            return;
        }
    }
}

/// Appends one record to `t`'s file, stamped `time` (else now); a failed write ends the
/// tracing (`ktrderror`).
async fn record(
    k: &Kernel,
    p: &Arc<Proc>,
    t: &Trace,
    ty: u32,
    payload: &[u8],
    time: Option<Timespec>,
) {
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
    let now = time.unwrap_or_else(|| crate::file::now(k));
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
                    .map_or(0, |t| t.flags & (KTRFAC_MASK | KTRFAC_INHERIT));
                *g = Some(Trace {
                    flags: old | (facs & (KTRFAC_MASK | KTRFAC_INHERIT)) | vers,
                    file: f.clone(),
                    pending: Vec::new(),
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

//! The generic socket system calls (uipc_syscalls.c, the family-independent half of
//! uipc_socket.c): argument copies in NetBSD's order, descriptors and file flags,
//! SIGPIPE, `SO_NOSIGPIPE`, control-message layout; every request goes to the socket's
//! family through [`ProtoSock`] (domain.rs).

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;

use kernel::abi::{FREAD, FWRITE, O_NONBLOCK, O_NOSIGPIPE, SIGPIPE};
use kernel::copy;
use kernel::file::{File, FileKind, Iov};
use kernel::sync::{self, WaitQueue};
use kernel::{BoxFut, DynMem, Errno, Kernel, Proc, Result};

use crate::abi::*;
use crate::domain::{iov_total as total, Ctl, Ctx, Net, ProtoSock, Received};
use crate::sock::drop_ctl;

type C<'a> = Ctx<'a>;

/// `retval`.
pub type SysResult = Result<[i64; 2]>;

fn ret(v: i64) -> SysResult {
    Ok([v, 0])
}

/// Control data larger than this is refused (`sockargs`: a page).
const CONTROL_MAX: usize = 4096;

/// The syscall table registered with the kernel.
pub struct Table {
    /// The registered families.
    pub net: Arc<Net>,
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
        Box::pin(dispatch(k, p, mem, nr, args, &self.net))
    }
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
    net: &Net,
) -> SysResult {
    let c = C { k, p, mem };
    match nr {
        SYS_SOCKET => socket(&c, net, int(a, 0), int(a, 1), int(a, 2)),
        SYS_SOCKETPAIR => socketpair(&c, net, int(a, 0), int(a, 1), int(a, 2), a[3]).await,
        SYS_BIND => bind(&c, int(a, 0), a[1], a[2] as u32).await,
        SYS_CONNECT => connect(&c, int(a, 0), a[1], a[2] as u32).await,
        SYS_LISTEN => listen(&c, int(a, 0), int(a, 1)),
        SYS_ACCEPT => accept(&c, net, int(a, 0), a[1], a[2], 0, false).await,
        SYS_PACCEPT => {
            // Other flag bits are ignored, as NetBSD's do_sys_accept ignores them. The signal
            // mask (a[3]) only matters to a blocked accept's signals; a rump process takes
            // none while it sleeps.
            let flags = int(a, 4) & (SOCK_CLOEXEC | SOCK_NONBLOCK | SOCK_NOSIGPIPE);
            accept(&c, net, int(a, 0), a[1], a[2], flags, true).await
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
fn getsock(c: &C<'_>, fd: i32) -> Result<(Arc<File>, Arc<dyn ProtoSock>)> {
    let fp = c.p.fds().get(fd)?;
    let so = proto_of(&fp).ok_or(Errno::ENOTSOCK)?;
    Ok((fp, so))
}

/// The socket of an open file, if it is one.
pub fn proto_of(fp: &File) -> Option<Arc<dyn ProtoSock>> {
    sockfile(fp).map(|s| s.so.clone())
}

fn sockfile(fp: &File) -> Option<&SockFile> {
    fp.faction()?.as_any().downcast_ref::<SockFile>()
}

/// The open-file object of a socket (`soo_*`): the family's socket and the generic
/// layer's `SO_NOSIGPIPE` bit of `so_options`. Its drop is the last close (`soo_close`).
pub struct SockFile {
    /// The family's socket.
    pub so: Arc<dyn ProtoSock>,
    /// `so_options & SO_NOSIGPIPE` (the file's `FNOSIGPIPE` follows it at setsockopt).
    nosigpipe: AtomicBool,
}

impl SockFile {
    /// The file object of a new socket.
    pub fn new(so: Arc<dyn ProtoSock>) -> SockFile {
        SockFile {
            so,
            nosigpipe: AtomicBool::new(false),
        }
    }
}

impl Drop for SockFile {
    fn drop(&mut self) {
        self.so.close();
        // A socket closing while descriptors are in flight may leave a cycle behind.
        if crate::gc::in_flight() > 0 {
            crate::gc::collect();
        }
    }
}

/// `socreate`: the family's `create`; `EAFNOSUPPORT` for a family not attached.
fn create(c: &C<'_>, net: &Net, domain: i32, ty: i32, proto: i32) -> Result<Arc<dyn ProtoSock>> {
    let d = net.domain(domain).ok_or(Errno::EAFNOSUPPORT)?;
    d.create(c, ty, proto)
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

fn install(c: &C<'_>, net: &Net, so: Arc<dyn ProtoSock>, flag: u32, cloexec: bool) -> Result<i32> {
    net.note_file(&so);
    install_file(c, SockFile::new(so), flag, cloexec)
}

fn install_file(c: &C<'_>, sf: SockFile, flag: u32, cloexec: bool) -> Result<i32> {
    let fp = File::new(FileKind::Faction(Box::new(sf)), flag);
    c.p.fds().alloc(fp, 0, cloexec)
}

/// `socket(2)` (`__socket30`).
fn socket(c: &C<'_>, net: &Net, domain: i32, ty: i32, proto: i32) -> SysResult {
    let flags = ty & SOCK_FLAGS_MASK;
    if flags & !(SOCK_CLOEXEC | SOCK_NONBLOCK | SOCK_NOSIGPIPE) != 0 {
        return Err(Errno::EINVAL);
    }
    let so = create(c, net, domain, ty & !SOCK_FLAGS_MASK, proto)?;
    let fd = install(c, net, so, file_flags(flags), flags & SOCK_CLOEXEC != 0)?;
    ret(i64::from(fd))
}

/// `socketpair(2)`: two connected sockets; a failed copy-out closes both.
async fn socketpair(c: &C<'_>, net: &Net, domain: i32, ty: i32, proto: i32, sv: u64) -> SysResult {
    let flags = ty & SOCK_FLAGS_MASK;
    if flags & !(SOCK_CLOEXEC | SOCK_NONBLOCK | SOCK_NOSIGPIPE) != 0 {
        return Err(Errno::EINVAL);
    }
    let ty = ty & !SOCK_FLAGS_MASK;
    let d = net.domain(domain).ok_or(Errno::EAFNOSUPPORT)?;
    let (a, b) = d.socketpair(c, ty, proto)?;
    let (fl, cx) = (file_flags(flags), flags & SOCK_CLOEXEC != 0);
    let fa = install(c, net, a, fl, cx)?;
    let fb = match install(c, net, b, fl, cx) {
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

/// `bind(2)`.
async fn bind(c: &C<'_>, fd: i32, addr: u64, len: u32) -> SysResult {
    let sa = sockargs(c, addr, len).await?;
    let (_fp, so) = getsock(c, fd)?;
    so.bind(c, &sa).await.map(|()| [0, 0])
}

/// `listen(2)`.
fn listen(c: &C<'_>, fd: i32, backlog: i32) -> SysResult {
    let (_fp, so) = getsock(c, fd)?;
    so.listen(c, backlog).map(|()| [0, 0])
}

/// `connect(2)`.
async fn connect(c: &C<'_>, fd: i32, addr: u64, len: u32) -> SysResult {
    let sa = sockargs(c, addr, len).await?;
    let (fp, so) = getsock(c, fd)?;
    so.connect(c, &sa, fp.nonblock()).await.map(|()| [0, 0])
}

/// Sleeps on `q` until `cond` holds; `EWOULDBLOCK` after `timeo_us` (0: never), `EINTR`
/// when the process exits (`sbwait` with `SO_RCVTIMEO`/`SO_SNDTIMEO`), for families.
pub async fn sowait(
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

/// `accept(2)`/`paccept(2)` (`do_sys_accept`): the first completed connection. The new
/// file's flags are the listener's (accept keeps its O_NONBLOCK; paccept, `clrflags`
/// FNONBLOCK, clears it) with SOCK_NONBLOCK/SOCK_NOSIGPIPE of `flags` added: a paccept
/// with 0 gives a blocking socket (t_tcp.c's accept4_*_reset_nonblock, recorded from
/// NetBSD in tests/oracle/netbsd-tcp.netbsd).
async fn accept(
    c: &C<'_>,
    net: &Net,
    fd: i32,
    name: u64,
    anamelen: u64,
    flags: i32,
    clr_nonblock: bool,
) -> SysResult {
    let (fp, so) = getsock(c, fd)?;
    let got = so.accept(c, fp.nonblock()).await?;
    let clr = if clr_nonblock { O_NONBLOCK } else { 0 };
    let flag = (fp.flag() & !clr) | file_flags(flags);
    // so_options are inherited (sonewconn), SO_NOSIGPIPE among them.
    net.note_file(&got.so);
    let sf = SockFile::new(got.so);
    let bit = sockfile(&fp).is_some_and(|l| l.nosigpipe.load(Ordering::Relaxed));
    sf.nosigpipe.store(bit, Ordering::Relaxed);
    let nfd = install_file(c, sf, flag, flags & SOCK_CLOEXEC != 0)?;
    let sa = got.peer;
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
    let sa = if peer { so.peeraddr()? } else { so.sockaddr()? };
    copyout_sockname(c, asa, alen, &sa).await?;
    ret(0)
}

/// `shutdown(2)`.
fn shutdown(c: &C<'_>, fd: i32, how: i32) -> SysResult {
    let (_fp, so) = getsock(c, fd)?;
    if !(SHUT_RD..=SHUT_RDWR).contains(&how) {
        return Err(Errno::EINVAL);
    }
    so.shutdown(how).map(|()| [0, 0])
}

fn nonblocking(fp: &File, flags: i32) -> bool {
    fp.nonblock() || flags & (MSG_DONTWAIT | MSG_NBIO) != 0
}

/// `sendit`: the family's send, then SIGPIPE for `EPIPE` unless suppressed.
async fn sendit(
    c: &C<'_>,
    fd: i32,
    iov: &[Iov],
    to: Option<Vec<u8>>,
    control: Vec<u8>,
    flags: i32,
) -> SysResult {
    let (fp, so) = getsock(c, fd)?;
    let (n, r) = so
        .send(c, iov, to, control, flags, nonblocking(&fp, flags))
        .await;
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

/// `soreceive` through the family.
async fn soreceive(
    c: &C<'_>,
    fp: &File,
    so: &dyn ProtoSock,
    iov: &[Iov],
    flags: i32,
) -> Result<Received> {
    so.recv(c, iov, flags, nonblocking(fp, flags)).await
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
    let g = soreceive(c, &fp, &*so, &iov, flags).await?;
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

pub(crate) fn u32_at(b: &[u8], o: usize) -> u32 {
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
    getsock(c, fd)?;
    sendit(c, fd, &iov, to, ctlbuf, flags).await.map(|r| r[0])
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
        let (level, ty, body) = match cm {
            Ctl::Creds(b) => (SOL_SOCKET, SCM_CREDS, b),
            Ctl::Raw { level, ty, data } => (level, ty, data),
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
                (SOL_SOCKET, SCM_RIGHTS, body)
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
        out.extend_from_slice(&level.to_le_bytes());
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
    let g = soreceive(c, &fp, &*so, &iov, flags).await?;
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

/// `MCLBYTES`: the largest option value.
const MCLBYTES_OPT: usize = 2048;

/// `setsockopt(2)` (`sosetopt`): the family's `setopt`; `SO_NOSIGPIPE` is the file's
/// `O_NOSIGPIPE` as well.
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
    let bit = &sockfile(&fp).ok_or(Errno::ENOTSOCK)?.nosigpipe;
    let r = if level == SOL_SOCKET && name == SO_NOSIGPIPE {
        crate::domain::opt_int(&v).map(|on| bit.store(on != 0, Ordering::Relaxed))
    } else {
        so.setopt(c, level, name, &v)
    };
    // NetBSD's sys_setsockopt: the file's FNOSIGPIPE follows so_options after any
    // setsockopt (also a failed one).
    if bit.load(Ordering::Relaxed) {
        fp.flag_or(O_NOSIGPIPE);
    } else {
        fp.flag_clear(O_NOSIGPIPE);
    }
    r.map(|()| [0, 0])
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
    // sys_getsockopt: so_options take the file's FNOSIGPIPE first.
    let on = fp.flag() & O_NOSIGPIPE != 0;
    let bit = &sockfile(&fp).ok_or(Errno::ENOTSOCK)?.nosigpipe;
    bit.store(on, Ordering::Relaxed);
    let v = if level == SOL_SOCKET && name == SO_NOSIGPIPE {
        i32::from(on).to_le_bytes().to_vec()
    } else {
        so.getopt(c, level, name)?
    };
    if val != 0 {
        let n = (valsize as usize).min(v.len());
        copy::copyout(c.mem, val, &v[..n]).await?;
        copy::copyout(c.mem, avalsize, &(n as u32).to_le_bytes()).await?;
    }
    ret(0)
}

/// read(2)/readv(2) on a socket: a receive without flags.
pub async fn read(
    k: &Kernel,
    p: &Proc,
    mem: &dyn DynMem,
    fp: &File,
    so: &dyn ProtoSock,
    iov: &[Iov],
) -> (u64, Result<()>) {
    let c = C { k, p, mem };
    match soreceive(&c, fp, so, iov, 0).await {
        Ok(g) => {
            drop_ctl(g.ctl);
            (g.n, Ok(()))
        }
        Err(e) => (0, Err(e)),
    }
}

/// write(2)/writev(2) on a socket: a send without flags (the caller posts SIGPIPE).
pub async fn write(
    k: &Kernel,
    p: &Proc,
    mem: &dyn DynMem,
    fp: &File,
    so: &dyn ProtoSock,
    iov: &[Iov],
) -> (u64, Result<()>) {
    let c = C { k, p, mem };
    so.send(&c, iov, None, Vec::new(), 0, fp.nonblock()).await
}

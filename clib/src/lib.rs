//! librumpclient for Linux: the C ABI of NetBSD's librumpclient (`rump/rumpclient.h`,
//! `rump/rump_syscalls.h`) over the sp protocol (`shared/docs/sp-protocol.md`), so that
//! programs written for NetBSD's library build and run unchanged against our server.
//!
//! One process-wide connection ([`conn::Conn`]), shared by every thread: any thread sends
//! under the send lock, and one waiting thread at a time reads the socket and hands answers to
//! their waiters (sp-protocol.md §17.4). Unlike the Rust client, the server's copy requests are
//! served from whatever address it names: that is what a C program passes (`mem.rs`).
//!
//! `errno` is set as NetBSD's generated stubs set it: to the call's error (a NetBSD number, as
//! the kernel sent it) after every call, 0 on success. Transport failures are host errno values
//! (`ENOTCONN`), as in NetBSD's client.

mod conn;
mod fastpath;
mod mem;

use std::ffi::{c_char, c_int, CStr};
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicPtr, Ordering};

use conn::Conn;

#[allow(clippy::missing_safety_doc)]
mod stubs {
    include!(concat!(env!("OUT_DIR"), "/stubs.rs"));
}

/// The current connection (null before `rumpclient_init`). Replaced, never freed, by a fork
/// child and by a re-init in a new host process: the old one may be locked by a thread that
/// did not survive the fork.
static CONN: AtomicPtr<Conn> = AtomicPtr::new(ptr::null_mut());
/// Host pid that ran `rumpclient_init` successfully (0: none).
static INIT_PID: AtomicI32 = AtomicI32::new(0);
/// `rumpclient_setconnretry` value: 0 never, -1 forever, -2 once, -3 exit, n > 0 seconds.
static RETRY: AtomicI64 = AtomicI64::new(0);

pub(crate) fn retry_timeout() -> i64 {
    RETRY.load(Ordering::Relaxed)
}

fn current() -> Option<&'static Conn> {
    let p = CONN.load(Ordering::Acquire);
    // SAFETY: a non-null CONN comes from Box::leak and is never freed.
    unsafe { p.as_ref() }
}

fn install(c: Conn) -> &'static Conn {
    let c: &'static Conn = Box::leak(Box::new(c));
    CONN.store(c as *const Conn as *mut Conn, Ordering::Release);
    c
}

fn set_errno(e: i32) {
    // SAFETY: __errno_location returns this thread's errno.
    unsafe { *libc::__errno_location() = e };
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Runs a call with all signals blocked (as NetBSD's client), restoring the caller's mask
/// after; `f` gets the caller's mask so that a waiting thread can let a signal through.
fn with_signals_blocked<T>(f: impl FnOnce(&libc::sigset_t) -> T) -> T {
    // SAFETY: plain sigset manipulation on locals.
    unsafe {
        let mut full: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut full);
        libc::pthread_sigmask(libc::SIG_SETMASK, &full, &mut old);
        let r = f(&old);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut());
        r
    }
}

/// Runs syscall `nr` with argument block `data`: the response, or a transport errno.
fn syscall_resp(nr: u32, data: &[u8]) -> Result<sp::SyscallResp, i32> {
    let Some(c) = current() else {
        return Err(libc::ENOTCONN);
    };
    with_signals_blocked(|omask| c.syscall(nr, data, omask))
}

/// Runs syscall `nr` with argument block `data`; 0 or an errno, `retval` set on a response.
fn syscall(nr: u32, data: &[u8], retval: &mut [i64; 2]) -> i32 {
    match syscall_resp(nr, data) {
        Ok(r) => {
            *retval = r.retval;
            r.error
        }
        Err(e) => e,
    }
}

fn slots_bytes(args: &[u64]) -> ([u8; 64], usize) {
    let mut b = [0u8; 64];
    for (i, a) in args.iter().enumerate().take(8) {
        b[i * 8..i * 8 + 8].copy_from_slice(&a.to_le_bytes());
    }
    (b, args.len().min(8) * 8)
}

/// A generated stub of a call that reports errors: -1 and errno, else retval[0]; errno is
/// set either way (0 on success), as NetBSD's stubs do.
pub(crate) fn stub_std(nr: u32, args: &[u64]) -> i64 {
    let (b, n) = slots_bytes(args);
    let mut rv = [0i64; 2];
    let e = syscall(nr, &b[..n], &mut rv);
    set_errno(e);
    if e == 0 {
        rv[0]
    } else {
        -1
    }
}

/// A generated stub of a NOERR call: retval[0] whatever the error field says (-1 if the
/// server could not be reached).
pub(crate) fn stub_noerr(nr: u32, args: &[u64]) -> i64 {
    let (b, n) = slots_bytes(args);
    let mut rv = [-1i64, 0];
    let _ = syscall(nr, &b[..n], &mut rv);
    rv[0]
}

/// `pipe`: both descriptors come back in retval.
///
/// # Safety
/// `fds` must point to two writable ints.
pub(crate) unsafe fn stub_pipe(nr: u32, fds: *mut i32) -> i32 {
    let mut rv = [0i64; 2];
    let e = syscall(nr, &[], &mut rv);
    if e != 0 {
        set_errno(e);
        return -1;
    }
    // SAFETY: the caller's contract.
    unsafe {
        *fds = rv[0] as i32;
        *fds.add(1) = rv[1] as i32;
    }
    0
}

/// `int rumpclient_syscall(int sysnum, const void *data, size_t dlen, register_t *retval)`.
///
/// # Safety
/// `data` must be readable for `dlen` bytes and `retval` writable for two `register_t`.
#[no_mangle]
pub unsafe extern "C" fn rumpclient_syscall(
    sysnum: c_int,
    data: *const u8,
    dlen: usize,
    retval: *mut i64,
) -> c_int {
    let data: &[u8] = if data.is_null() || dlen == 0 {
        &[]
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(data, dlen) }
    };
    match syscall_resp(sysnum as u32, data) {
        Ok(r) => {
            if !retval.is_null() {
                // SAFETY: the caller's contract.
                unsafe { ptr::copy_nonoverlapping(r.retval.as_ptr(), retval, 2) };
            }
            r.error
        }
        // A transport failure leaves retval alone, as NetBSD's client.
        Err(e) => e,
    }
}

/// The URL `rumpclient_init` uses: `RUMP__PARSEDSERVER`, else `RUMP_SERVER`.
fn server_url() -> Option<String> {
    std::env::var("RUMP__PARSEDSERVER")
        .ok()
        .or_else(|| std::env::var("RUMP_SERVER").ok())
}

/// `int rumpclient_init(void)`: connects (once per host process) and hand-shakes; after
/// `rumpclient_exec`, continues on the inherited connection with an EXEC handshake.
#[no_mangle]
pub extern "C" fn rumpclient_init() -> c_int {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    if INIT_PID.load(Ordering::Acquire) == pid {
        return 0;
    }
    let Some(url) = server_url() else {
        eprintln!("error: RUMP_SERVER not set");
        set_errno(libc::ENOENT);
        return -1;
    };
    let r = with_signals_blocked(|omask| {
        if let Ok(v) = std::env::var("RUMPCLIENT__EXECFD") {
            std::env::remove_var("RUMPCLIENT__EXECFD");
            let mut it = v.split(',').map(|s| s.trim().parse::<i32>().unwrap_or(-1));
            let (fd, sfd) = (it.next().unwrap_or(-1), it.next().unwrap_or(-1));
            let fast = std::env::var_os("RUMPCLIENT__FASTPATH").is_some_and(|v| v == "1");
            std::env::remove_var("RUMPCLIENT__FASTPATH");
            let c = Conn::inherit(&url, fd, sfd)?;
            let c = install(c);
            c.handshake_exec(fast, omask).inspect_err(|_| {
                // SAFETY: closing our own descriptor after a failed handshake.
                unsafe { libc::close(fd) };
            })
        } else {
            // A child of a plain host fork: drop the parent's descriptors, connect anew.
            if let Some(old) = current() {
                old.close_fds();
            }
            let c = Conn::connect(&url)?;
            let c = install(c);
            c.handshake_guest(omask)
        }
    });
    match r {
        Ok(()) => {
            INIT_PID.store(pid, Ordering::Release);
            0
        }
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

/// `struct rumpclient_fork`: the PREFORK cookie first (NetBSD's tests rely on it) and the
/// parent's connection, for `rumpclient_fork_vparent`.
#[repr(C)]
pub struct RumpclientFork {
    auth: [u8; sp::COOKIE_LEN],
    parent: *const Conn,
}

/// `struct rumpclient_fork *rumpclient_prefork(void)`: asks the server to prepare a fork.
#[no_mangle]
pub extern "C" fn rumpclient_prefork() -> *mut RumpclientFork {
    let Some(c) = current() else {
        set_errno(libc::ENOTCONN);
        return ptr::null_mut();
    };
    match with_signals_blocked(|omask| c.prefork(omask)) {
        Ok(auth) => Box::into_raw(Box::new(RumpclientFork {
            auth,
            parent: c as *const Conn,
        })),
        Err(e) => {
            set_errno(e);
            ptr::null_mut()
        }
    }
}

/// `int rumpclient_fork_init(struct rumpclient_fork *)`: in the host child, connects anew and
/// claims the prepared process. The parent's descriptors inherited by the child are closed.
///
/// # Safety
/// `rf` must come from `rumpclient_prefork`.
#[no_mangle]
pub unsafe extern "C" fn rumpclient_fork_init(rf: *mut RumpclientFork) -> c_int {
    // SAFETY: the caller's contract.
    let Some(rf) = (unsafe { rf.as_ref() }) else {
        set_errno(libc::EINVAL);
        return -1;
    };
    // SAFETY: `parent` is a leaked, never freed Conn.
    let parent = unsafe { &*rf.parent };
    parent.close_fds();
    let url = parent.url().to_string();
    let r = with_signals_blocked(|omask| {
        let c = install(Conn::connect(&url)?);
        c.handshake_fork(&rf.auth, omask)
    });
    match r {
        Ok(()) => {
            // SAFETY: getpid has no preconditions.
            INIT_PID.store(unsafe { libc::getpid() }, Ordering::Release);
            0
        }
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

/// `void rumpclient_fork_cancel(struct rumpclient_fork *)`: the host fork failed; tells the
/// server to drop the prepared process (HANDSHAKE FORK with `cancel` set, not answered).
///
/// # Safety
/// `rf` must come from `rumpclient_prefork` and is freed.
#[no_mangle]
pub unsafe extern "C" fn rumpclient_fork_cancel(rf: *mut RumpclientFork) {
    if rf.is_null() {
        return;
    }
    // SAFETY: the caller's contract: allocated by rumpclient_prefork.
    let rf = unsafe { Box::from_raw(rf) };
    // SAFETY: leaked Conn.
    let parent = unsafe { &*rf.parent };
    let e = errno();
    conn::cancel_prefork(parent.url(), &rf.auth);
    set_errno(e);
}

/// `void rumpclient_fork_vparent(struct rumpclient_fork *)`: after a vfork whose child ran
/// `rumpclient_fork_init` in our memory, takes the parent's connection back.
///
/// # Safety
/// `rf` must come from `rumpclient_prefork`.
#[no_mangle]
pub unsafe extern "C" fn rumpclient_fork_vparent(rf: *mut RumpclientFork) {
    // SAFETY: the caller's contract.
    if let Some(rf) = unsafe { rf.as_ref() } {
        CONN.store(rf.parent as *mut Conn, Ordering::Release);
        // SAFETY: getpid has no preconditions.
        INIT_PID.store(unsafe { libc::getpid() }, Ordering::Release);
    }
}

/// `pid_t rumpclient_fork(void)`: host fork with the rump process forked too.
#[no_mangle]
pub extern "C" fn rumpclient_fork() -> libc::pid_t {
    let rf = rumpclient_prefork();
    if rf.is_null() {
        return -1;
    }
    // SAFETY: fork; the child only calls async-signal-safe-enough code of ours (a fresh
    // connection) as NetBSD's client does.
    match unsafe { libc::fork() } {
        -1 => {
            // SAFETY: rf from rumpclient_prefork.
            unsafe { rumpclient_fork_cancel(rf) };
            -1
        }
        0 => {
            // SAFETY: rf from rumpclient_prefork.
            if unsafe { rumpclient_fork_init(rf) } == -1 {
                -1
            } else {
                0
            }
        }
        pid => {
            // SAFETY: the parent's copy is ours to free.
            drop(unsafe { Box::from_raw(rf) });
            pid
        }
    }
}

/// `int rumpclient_exec(const char *path, char *const argv[], char *const envp[])`: execve
/// with the connection handed to the new image (`RUMPCLIENT__EXECFD`, `RUMP__PARSEDSERVER`).
///
/// # Safety
/// As execve(2).
#[no_mangle]
pub unsafe extern "C" fn rumpclient_exec(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let (fd, sfd, url, fast) = match current() {
        Some(c) => (c.fd(), c.sigfd(), Some(c.url().to_string()), c.is_fast()),
        None => (-1, -1, None, false),
    };
    let mut extra = vec![format!("RUMPCLIENT__EXECFD={fd},{sfd}\0")];
    if fast {
        // The new image asks for the fast path in its EXEC handshake (docs/sp-fastpath.md).
        extra.push("RUMPCLIENT__FASTPATH=1\0".to_string());
    }
    if let Some(u) = url {
        extra.push(format!("RUMP__PARSEDSERVER={u}\0"));
    }
    let mut env: Vec<*const c_char> = Vec::new();
    if !envp.is_null() {
        let mut i = 0;
        // SAFETY: envp is a NULL-terminated array (execve's contract).
        unsafe {
            while !(*envp.add(i)).is_null() {
                let s = CStr::from_ptr(*envp.add(i)).to_bytes();
                let ours = s.starts_with(b"RUMPCLIENT__EXECFD=")
                    || s.starts_with(b"RUMP__PARSEDSERVER=")
                    || s.starts_with(b"RUMPCLIENT__FASTPATH=");
                if !ours {
                    env.push(*envp.add(i));
                }
                i += 1;
            }
        }
    }
    env.extend(extra.iter().map(|s| s.as_ptr() as *const c_char));
    env.push(ptr::null());
    // SAFETY: execve's contract; every pointer in env outlives the call.
    unsafe { libc::execve(path, argv, env.as_ptr()) }
}

/// `int rumpclient_daemon(int nochdir, int noclose)`: daemon(3) keeping the rump process.
///
/// Unlike NetBSD's, the parent exits only once the child has claimed the prepared process:
/// our server drops a fork cookie when the connection that asked for it goes away, so a
/// parent exiting at once would leave the child an `ESRCH`.
#[no_mangle]
pub extern "C" fn rumpclient_daemon(nochdir: c_int, noclose: c_int) -> c_int {
    let rf = rumpclient_prefork();
    if rf.is_null() {
        return -1;
    }
    let mut sync = [-1 as c_int; 2];
    // SAFETY: pipe2/fork/setsid/chdir/open/dup2/read/write with valid arguments.
    unsafe {
        if libc::pipe2(sync.as_mut_ptr(), libc::O_CLOEXEC) == -1 {
            let e = errno();
            rumpclient_fork_cancel(rf);
            set_errno(e);
            return -1;
        }
        match libc::fork() {
            -1 => {
                let e = errno();
                libc::close(sync[0]);
                libc::close(sync[1]);
                rumpclient_fork_cancel(rf);
                set_errno(e);
                return -1;
            }
            0 => {}
            _ => {
                // Wait until the child has claimed the process (or died), then leave.
                libc::close(sync[1]);
                let mut b = 0u8;
                while libc::read(sync[0], (&mut b as *mut u8).cast(), 1) == -1
                    && errno() == libc::EINTR
                {}
                libc::_exit(0)
            }
        }
        libc::close(sync[0]);
        let done = |r: c_int| {
            let e = errno();
            libc::write(sync[1], b"x".as_ptr().cast(), 1);
            libc::close(sync[1]);
            set_errno(e);
            r
        };
        let fail = |rf| {
            let e = errno();
            rumpclient_fork_cancel(rf);
            set_errno(e);
            done(-1)
        };
        if libc::setsid() == -1 {
            return fail(rf);
        }
        if nochdir == 0 && libc::chdir(c"/".as_ptr()) == -1 {
            return fail(rf);
        }
        if noclose == 0 {
            let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if fd != -1 {
                libc::dup2(fd, 0);
                libc::dup2(fd, 1);
                libc::dup2(fd, 2);
                if fd > 2 {
                    libc::close(fd);
                }
            }
        }
        done(rumpclient_fork_init(rf))
    }
}

/// `void rumpclient_setconnretry(time_t)`.
#[no_mangle]
pub extern "C" fn rumpclient_setconnretry(timeout: libc::time_t) {
    if timeout < -3 {
        return;
    }
    RETRY.store(timeout, Ordering::Relaxed);
}

/// `int rumpclient__closenotify(int *fdp, enum rumpclient_closevariant)`: keeps the client's
/// descriptors out of the way of a close, dup2 or closefrom the program is about to do.
///
/// # Safety
/// `fdp` must point to a readable and writable int.
#[no_mangle]
pub unsafe extern "C" fn rumpclient__closenotify(fdp: *mut c_int, variant: c_int) -> c_int {
    // SAFETY: the caller's contract.
    let Some(fdp) = (unsafe { fdp.as_mut() }) else {
        return -1;
    };
    let Some(c) = current() else { return 0 };
    match variant {
        2 => {
            // FCLOSEM: close everything from *fdp up to our highest fd, skipping ours.
            let mut fd = *fdp;
            let until = c.fd().max(c.sigfd());
            while fd <= until {
                if fd != c.fd() && fd != c.sigfd() {
                    // SAFETY: closing a descriptor the program asked to close.
                    if unsafe { libc::close(fd) } == -1 && errno() != libc::EBADF {
                        return -1;
                    }
                }
                fd += 1;
            }
            *fdp = fd;
            0
        }
        _ => c.move_fd_away(*fdp),
    }
}

#[cfg(test)]
mod tests {
    /// The checked-in header is what build.rs generates from syscalls.tab. After changing
    /// the table, copy `$OUT_DIR/rump_syscalls.h` over it (`CLIB_BLESS=1 cargo test -p
    /// rump-clib` does).
    #[test]
    fn header_is_generated() {
        let generated = include_str!(concat!(env!("OUT_DIR"), "/rump_syscalls.h"));
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/rump/rump_syscalls.h");
        if std::env::var_os("CLIB_BLESS").is_some() {
            std::fs::write(path, generated).expect("write the header");
        }
        let checked_in = std::fs::read_to_string(path).expect("read the header");
        assert!(
            checked_in == generated,
            "include/rump/rump_syscalls.h is stale: run CLIB_BLESS=1 cargo test -p rump-clib"
        );
    }
}

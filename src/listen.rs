//! Creating the listening socket for an sp URL (NetBSD's `rumpuser_sp_init` steps 3–4).
//!
//! Unix sockets: an existing socket file is not removed first, so `bind` fails with
//! `EADDRINUSE` just as in the reference. TCP: unlike the reference we set `SO_REUSEADDR`, so
//! that a server restarted right after a halt can bind while old connections sit in
//! TIME_WAIT (on Linux it never lets two live listeners share a port). Backlog 256, as NetBSD.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use sp::url::SpAddr;

/// The listen(2) backlog of the reference server.
pub const LISTEN_BACKLOG: i32 = 256;

/// Creates, binds and listens; the socket is close-on-exec.
pub fn bind_listen(addr: &SpAddr) -> io::Result<OwnedFd> {
    match addr {
        SpAddr::Unix(path) => {
            let fd = socket(libc::AF_UNIX)?;
            // SAFETY: sockaddr_un is plain old data; all-zero is a valid value.
            let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
            sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
            let bytes = path.as_os_str().as_bytes();
            if bytes.len() >= sun.sun_path.len() {
                return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
            }
            for (dst, src) in sun.sun_path.iter_mut().zip(bytes) {
                *dst = *src as libc::c_char;
            }
            let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            // SAFETY: `sun` is a fully initialised sockaddr_un of `len` bytes.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sun as *const libc::sockaddr_un).cast(),
                    len,
                )
            };
            check(rc)?;
            listen(&fd)?;
            Ok(fd)
        }
        SpAddr::Tcp(sa) => {
            let fd = socket(libc::AF_INET)?;
            let one: libc::c_int = 1;
            // SAFETY: setsockopt reads sizeof(int) bytes from `one`.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_REUSEADDR,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            check(rc)?;
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: sa.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(sa.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            // SAFETY: `sin` is a fully initialised sockaddr_in of `len` bytes.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sin as *const libc::sockaddr_in).cast(),
                    len,
                )
            };
            check(rc)?;
            listen(&fd)?;
            Ok(fd)
        }
    }
}

/// The port a TCP listener is bound to (for `tcp://…:0`, which NetBSD never reports).
pub fn local_port(fd: &OwnedFd) -> Option<u16> {
    // SAFETY: sockaddr_in is plain old data; getsockname writes at most `len` bytes.
    let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `sin`/`len` describe a writable buffer of the right size.
    let rc = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut sin as *mut libc::sockaddr_in).cast(),
            &mut len,
        )
    };
    (rc == 0 && sin.sin_family == libc::AF_INET as libc::sa_family_t)
        .then(|| u16::from_be(sin.sin_port))
}

/// Sets `TCP_NODELAY`, as the reference's accept hook does for tcp (errors ignored).
pub fn set_nodelay(fd: &OwnedFd) {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads sizeof(int) bytes from `one`; failure is harmless.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

fn socket(family: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socket(2) returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn listen(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: plain listen(2) on our socket.
    check(unsafe { libc::listen(fd.as_raw_fd(), LISTEN_BACKLOG) })
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

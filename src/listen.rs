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
            let (ss, len) = sockaddr_of(sa);
            let fd = socket(i32::from(ss.ss_family))?;
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
            // SAFETY: `ss` holds an initialised sockaddr_in or sockaddr_in6 of `len` bytes.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&ss as *const libc::sockaddr_storage).cast(),
                    len,
                )
            };
            check(rc)?;
            listen(&fd)?;
            Ok(fd)
        }
    }
}

/// `sa` as a `sockaddr_in` or `sockaddr_in6` in a `sockaddr_storage`, with its length.
fn sockaddr_of(sa: &std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match sa {
        std::net::SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            (
                ss,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        std::net::SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            (
                ss,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

/// The port a TCP listener is bound to (for `tcp://…:0`, which NetBSD never reports).
pub fn local_port(fd: &OwnedFd) -> Option<u16> {
    // SAFETY: sockaddr_storage is plain old data; getsockname writes at most `len` bytes.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `ss`/`len` describe a writable buffer of the right size.
    let rc = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    // Both sockaddr_in and sockaddr_in6 keep the port, in network order, right after the
    // family; read it through the right type.
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in (family AF_INET) into `ss`.
            let sin: libc::sockaddr_in =
                unsafe { std::ptr::read((&ss as *const libc::sockaddr_storage).cast()) };
            Some(u16::from_be(sin.sin_port))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6 (family AF_INET6) into `ss`.
            let sin6: libc::sockaddr_in6 =
                unsafe { std::ptr::read((&ss as *const libc::sockaddr_storage).cast()) };
            Some(u16::from_be(sin6.sin6_port))
        }
        _ => None,
    }
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

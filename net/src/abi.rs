//! NetBSD's socket numbers and layouts (`<sys/socket.h>`, `<sys/un.h>`, syscalls.master).

/// `recvmsg(2)`.
pub const SYS_RECVMSG: u32 = 27;
/// `sendmsg(2)`.
pub const SYS_SENDMSG: u32 = 28;
/// `recvfrom(2)`.
pub const SYS_RECVFROM: u32 = 29;
/// `accept(2)`.
pub const SYS_ACCEPT: u32 = 30;
/// `getpeername(2)`.
pub const SYS_GETPEERNAME: u32 = 31;
/// `getsockname(2)`.
pub const SYS_GETSOCKNAME: u32 = 32;
/// `connect(2)`.
pub const SYS_CONNECT: u32 = 98;
/// `bind(2)`.
pub const SYS_BIND: u32 = 104;
/// `setsockopt(2)`.
pub const SYS_SETSOCKOPT: u32 = 105;
/// `listen(2)`.
pub const SYS_LISTEN: u32 = 106;
/// `getsockopt(2)`.
pub const SYS_GETSOCKOPT: u32 = 118;
/// `sendto(2)`.
pub const SYS_SENDTO: u32 = 133;
/// `shutdown(2)`.
pub const SYS_SHUTDOWN: u32 = 134;
/// `socketpair(2)`.
pub const SYS_SOCKETPAIR: u32 = 135;
/// `__socket30` (`socket(2)`).
pub const SYS_SOCKET: u32 = 394;
/// `paccept(2)`.
pub const SYS_PACCEPT: u32 = 456;
/// `recvmmsg(2)`.
pub const SYS_RECVMMSG: u32 = 475;
/// `sendmmsg(2)`.
pub const SYS_SENDMMSG: u32 = 476;
/// Every number this faction serves.
pub const SYSCALLS: [u32; 18] = [
    SYS_RECVMSG,
    SYS_SENDMSG,
    SYS_RECVFROM,
    SYS_ACCEPT,
    SYS_GETPEERNAME,
    SYS_GETSOCKNAME,
    SYS_CONNECT,
    SYS_BIND,
    SYS_SETSOCKOPT,
    SYS_LISTEN,
    SYS_GETSOCKOPT,
    SYS_SENDTO,
    SYS_SHUTDOWN,
    SYS_SOCKETPAIR,
    SYS_SOCKET,
    SYS_PACCEPT,
    SYS_RECVMMSG,
    SYS_SENDMMSG,
];

/// `AF_UNSPEC`.
pub const AF_UNSPEC: i32 = 0;
/// `AF_LOCAL` (`AF_UNIX`).
pub const AF_LOCAL: i32 = 1;
/// `AF_INET`.
pub const AF_INET: i32 = 2;
/// `AF_INET6`.
pub const AF_INET6: i32 = 24;

/// `SOCK_STREAM`.
pub const SOCK_STREAM: i32 = 1;
/// `SOCK_DGRAM`.
pub const SOCK_DGRAM: i32 = 2;
/// `SOCK_RAW`.
pub const SOCK_RAW: i32 = 3;
/// `SOCK_SEQPACKET`.
pub const SOCK_SEQPACKET: i32 = 5;
/// `SOCK_CLOEXEC`.
pub const SOCK_CLOEXEC: i32 = 0x1000_0000;
/// `SOCK_NONBLOCK`.
pub const SOCK_NONBLOCK: i32 = 0x2000_0000;
/// `SOCK_NOSIGPIPE`.
pub const SOCK_NOSIGPIPE: i32 = 0x4000_0000;
/// `SOCK_FLAGS_MASK`.
pub const SOCK_FLAGS_MASK: i32 = 0xf000_0000_u32 as i32;

/// `SOL_SOCKET`.
pub const SOL_SOCKET: i32 = 0xffff;
/// `SO_DEBUG`.
pub const SO_DEBUG: i32 = 0x0001;
/// `SO_ACCEPTCONN`.
pub const SO_ACCEPTCONN: i32 = 0x0002;
/// `SO_REUSEADDR`.
pub const SO_REUSEADDR: i32 = 0x0004;
/// `SO_KEEPALIVE`.
pub const SO_KEEPALIVE: i32 = 0x0008;
/// `SO_DONTROUTE`.
pub const SO_DONTROUTE: i32 = 0x0010;
/// `SO_BROADCAST`.
pub const SO_BROADCAST: i32 = 0x0020;
/// `SO_USELOOPBACK`.
pub const SO_USELOOPBACK: i32 = 0x0040;
/// `SO_LINGER`.
pub const SO_LINGER: i32 = 0x0080;
/// `SO_OOBINLINE`.
pub const SO_OOBINLINE: i32 = 0x0100;
/// `SO_REUSEPORT`.
pub const SO_REUSEPORT: i32 = 0x0200;
/// `SO_NOSIGPIPE`.
pub const SO_NOSIGPIPE: i32 = 0x0800;
/// `SO_TIMESTAMP`.
pub const SO_TIMESTAMP: i32 = 0x2000;
/// `SO_SNDBUF`.
pub const SO_SNDBUF: i32 = 0x1001;
/// `SO_RCVBUF`.
pub const SO_RCVBUF: i32 = 0x1002;
/// `SO_SNDLOWAT`.
pub const SO_SNDLOWAT: i32 = 0x1003;
/// `SO_RCVLOWAT`.
pub const SO_RCVLOWAT: i32 = 0x1004;
/// `SO_ERROR`.
pub const SO_ERROR: i32 = 0x1007;
/// `SO_TYPE`.
pub const SO_TYPE: i32 = 0x1008;
/// `SO_OVERFLOWED`.
pub const SO_OVERFLOWED: i32 = 0x1009;
/// `SO_NOHEADER`.
pub const SO_NOHEADER: i32 = 0x100a;
/// `SO_SNDTIMEO`.
pub const SO_SNDTIMEO: i32 = 0x100b;
/// `SO_RCVTIMEO`.
pub const SO_RCVTIMEO: i32 = 0x100c;
/// The boolean `SO_*` options kept in `so_options`.
pub const SO_BOOLS: [i32; 11] = [
    SO_DEBUG,
    SO_REUSEADDR,
    SO_KEEPALIVE,
    SO_DONTROUTE,
    SO_BROADCAST,
    SO_USELOOPBACK,
    SO_OOBINLINE,
    SO_REUSEPORT,
    SO_NOSIGPIPE,
    SO_TIMESTAMP,
    SO_ACCEPTCONN,
];

/// `IPPROTO_TCP` level.
pub const IPPROTO_TCP: i32 = 6;
/// `TCP_NODELAY`.
pub const TCP_NODELAY: i32 = 1;

/// `LOCAL_CONNWAIT`.
pub const LOCAL_CONNWAIT: i32 = 0x0002;
/// `LOCAL_PEEREID`.
pub const LOCAL_PEEREID: i32 = 0x0003;
/// `LOCAL_CREDS`.
pub const LOCAL_CREDS: i32 = 0x0004;

/// `MSG_OOB`.
pub const MSG_OOB: i32 = 0x0001;
/// `MSG_PEEK`.
pub const MSG_PEEK: i32 = 0x0002;
/// `MSG_EOR`.
pub const MSG_EOR: i32 = 0x0008;
/// `MSG_TRUNC`.
pub const MSG_TRUNC: i32 = 0x0010;
/// `MSG_CTRUNC`.
pub const MSG_CTRUNC: i32 = 0x0020;
/// `MSG_WAITALL`.
pub const MSG_WAITALL: i32 = 0x0040;
/// `MSG_DONTWAIT`.
pub const MSG_DONTWAIT: i32 = 0x0080;
/// `MSG_NOSIGNAL`.
pub const MSG_NOSIGNAL: i32 = 0x0400;
/// `MSG_CMSG_CLOEXEC`.
pub const MSG_CMSG_CLOEXEC: i32 = 0x0800;
/// `MSG_NBIO`.
pub const MSG_NBIO: i32 = 0x1000;
/// `MSG_WAITFORONE`.
pub const MSG_WAITFORONE: i32 = 0x2000;

/// `SCM_RIGHTS`.
pub const SCM_RIGHTS: i32 = 0x01;
/// `SCM_CREDS`.
pub const SCM_CREDS: i32 = 0x10;

/// `SHUT_RD`.
pub const SHUT_RD: i32 = 0;
/// `SHUT_WR`.
pub const SHUT_WR: i32 = 1;
/// `SHUT_RDWR`.
pub const SHUT_RDWR: i32 = 2;

/// `SOMAXCONN`.
pub const SOMAXCONN: i32 = 128;
/// `sizeof(struct sockaddr_un)`: `sun_len`, `sun_family`, `sun_path[104]`.
pub const SOCKADDR_UN_SIZE: usize = 106;
/// `offsetof(struct sockaddr_un, sun_path)`.
pub const SUN_PATH_OFF: usize = 2;
/// `sizeof(struct msghdr)` on amd64.
pub const MSGHDR_SIZE: usize = 48;
/// `sizeof(struct mmsghdr)` on amd64 (the msghdr, `msg_len`, padding).
pub const MMSGHDR_SIZE: usize = 56;
/// `sizeof(struct cmsghdr)`.
pub const CMSGHDR_SIZE: usize = 12;
/// `sizeof(struct iovec)`.
pub const IOVEC_SIZE: usize = 16;
/// `UIO_MAXIOV`/`IOV_MAX`.
pub const IOV_MAX: usize = 1024;
/// `sizeof(struct linger)`.
pub const LINGER_SIZE: usize = 8;
/// `sizeof(struct timeval)`.
pub const TIMEVAL_SIZE: usize = 16;
/// `sizeof(struct unpcbid)`.
pub const UNPCBID_SIZE: usize = 12;

/// `__CMSG_ALIGN` on amd64 (`ALIGNBYTES` 7).
pub const fn cmsg_align(n: usize) -> usize {
    (n + 7) & !7
}

/// `CMSG_SPACE(l)`.
pub const fn cmsg_space(l: usize) -> usize {
    cmsg_align(CMSGHDR_SIZE) + cmsg_align(l)
}

/// `CMSG_LEN(l)`.
pub const fn cmsg_len(l: usize) -> usize {
    cmsg_align(CMSGHDR_SIZE) + l
}

/// `SOCKCREDSIZE(ngroups)`: `struct sockcred` (28 bytes, one group slot) with its groups.
pub const fn sockcred_size(ngroups: usize) -> usize {
    28 + 4 * if ngroups > 0 { ngroups - 1 } else { 0 }
}

/// `FIONREAD`.
pub const FIONREAD: u32 = 0x4004_667f;
/// `FIONBIO`.
pub const FIONBIO: u32 = 0x8004_667e;
/// `FIOASYNC`.
pub const FIOASYNC: u32 = 0x8004_667d;
/// `FIONWRITE`.
pub const FIONWRITE: u32 = 0x4004_6679;
/// `FIONSPACE`.
pub const FIONSPACE: u32 = 0x4004_6678;
/// `FIOSETOWN`.
pub const FIOSETOWN: u32 = 0x8004_667c;
/// `FIOGETOWN`.
pub const FIOGETOWN: u32 = 0x4004_667b;
/// `SIOCATMARK` (`_IOR('s', 7, int)`).
pub const SIOCATMARK: u32 = 0x4004_7307;

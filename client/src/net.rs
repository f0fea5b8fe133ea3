//! Typed wrappers for the socket system calls (NetBSD numbers and layouts: `struct
//! sockaddr_un` with `sun_len`, `struct msghdr`/`mmsghdr`/`cmsghdr` on amd64) and helpers to
//! build and parse addresses and control messages.

use crate::{addr_of, int_arg, Buf, Client, Result};

/// Socket syscall numbers.
pub mod netnr {
    pub const RECVMSG: u32 = 27;
    pub const SENDMSG: u32 = 28;
    pub const RECVFROM: u32 = 29;
    pub const ACCEPT: u32 = 30;
    pub const GETPEERNAME: u32 = 31;
    pub const GETSOCKNAME: u32 = 32;
    pub const CONNECT: u32 = 98;
    pub const BIND: u32 = 104;
    pub const SETSOCKOPT: u32 = 105;
    pub const LISTEN: u32 = 106;
    pub const GETSOCKOPT: u32 = 118;
    pub const SENDTO: u32 = 133;
    pub const SHUTDOWN: u32 = 134;
    pub const SOCKETPAIR: u32 = 135;
    pub const SOCKET: u32 = 394;
    pub const PACCEPT: u32 = 456;
    pub const RECVMMSG: u32 = 475;
    pub const SENDMMSG: u32 = 476;
}

/// `AF_LOCAL`.
pub const AF_LOCAL: i32 = 1;
/// `AF_INET`.
pub const AF_INET: i32 = 2;
/// `AF_INET6` (NetBSD's number).
pub const AF_INET6: i32 = 24;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: i32 = 6;
/// `IPPROTO_IPV6`.
pub const IPPROTO_IPV6: i32 = 41;

/// A NetBSD `struct sockaddr_in` (16 bytes, `sin_len` first) for `ip`:`port`.
pub fn sockaddr_in(ip: [u8; 4], port: u16) -> Vec<u8> {
    let mut b = vec![16, AF_INET as u8];
    b.extend_from_slice(&port.to_be_bytes());
    b.extend_from_slice(&ip);
    b.resize(16, 0);
    b
}

/// A NetBSD `struct sockaddr_in6` (28 bytes) for `ip`:`port`.
pub fn sockaddr_in6(ip: [u8; 16], port: u16) -> Vec<u8> {
    let mut b = vec![28, AF_INET6 as u8];
    b.extend_from_slice(&port.to_be_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&ip);
    b.extend_from_slice(&[0; 4]);
    b
}

/// The port of a `sockaddr_in`/`sockaddr_in6`.
pub fn sin_port(sa: &[u8]) -> u16 {
    u16::from_be_bytes([sa[2], sa[3]])
}

/// `SOCK_STREAM`.
pub const SOCK_STREAM: i32 = 1;
/// `SOCK_DGRAM`.
pub const SOCK_DGRAM: i32 = 2;
/// `SOCK_SEQPACKET`.
pub const SOCK_SEQPACKET: i32 = 5;
/// `SOL_SOCKET`.
pub const SOL_SOCKET: i32 = 0xffff;
/// `SCM_RIGHTS`.
pub const SCM_RIGHTS: i32 = 1;
/// `SCM_CREDS`.
pub const SCM_CREDS: i32 = 0x10;

/// A `struct sockaddr_un` for `path`: `sun_len` = `SUN_LEN` (2 + the path), the family,
/// the path and its NUL.
pub fn sockaddr_un(path: &[u8]) -> Vec<u8> {
    let mut v = vec![(2 + path.len()).min(255) as u8, AF_LOCAL as u8];
    v.extend_from_slice(path);
    v.push(0);
    v
}

/// An `SCM_RIGHTS` control message carrying `fds` (`CMSG_SPACE`-sized).
pub fn cmsg_rights(fds: &[i32]) -> Vec<u8> {
    let len = 16 + 4 * fds.len();
    let mut v = Vec::with_capacity(len + 8);
    v.extend_from_slice(&(len as u32).to_le_bytes());
    v.extend_from_slice(&SOL_SOCKET.to_le_bytes());
    v.extend_from_slice(&SCM_RIGHTS.to_le_bytes());
    v.extend_from_slice(&[0; 4]);
    for fd in fds {
        v.extend_from_slice(&fd.to_le_bytes());
    }
    v.resize((len + 7) & !7, 0);
    v
}

/// The control messages in `buf`: (level, type, data).
pub fn parse_cmsgs(buf: &[u8]) -> Vec<(i32, i32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 16 <= buf.len() {
        let len = u32::from_le_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
        let level = i32::from_le_bytes(buf[at + 4..at + 8].try_into().unwrap());
        let ty = i32::from_le_bytes(buf[at + 8..at + 12].try_into().unwrap());
        if len < 16 {
            break;
        }
        let end = (at + len).min(buf.len());
        out.push((level, ty, buf[at + 16..end].to_vec()));
        at += (len + 7) & !7;
    }
    out
}

/// What recvmsg(2) returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Bytes received.
    pub n: usize,
    /// The sender's address (`msg_namelen` bytes).
    pub name: Vec<u8>,
    /// The control data (`msg_controllen` bytes).
    pub control: Vec<u8>,
    /// `msg_flags`.
    pub flags: i32,
}

fn msghdr(name: u64, namelen: u32, iov: u64, iovlen: i32, control: u64, clen: u32) -> [u8; 48] {
    let mut m = [0u8; 48];
    m[0..8].copy_from_slice(&name.to_le_bytes());
    m[8..12].copy_from_slice(&namelen.to_le_bytes());
    m[16..24].copy_from_slice(&iov.to_le_bytes());
    m[24..28].copy_from_slice(&iovlen.to_le_bytes());
    m[32..40].copy_from_slice(&control.to_le_bytes());
    m[40..44].copy_from_slice(&clen.to_le_bytes());
    m
}

fn iovec(bufs: &[(u64, usize)]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 * bufs.len());
    for (a, l) in bufs {
        v.extend_from_slice(&a.to_le_bytes());
        v.extend_from_slice(&(*l as u64).to_le_bytes());
    }
    v
}

fn opt_addr(b: Option<&[u8]>) -> (u64, u64) {
    b.map_or((0, 0), |b| (addr_of(b), b.len() as u64))
}

/// Socket calls.
impl Client {
    /// `socket(domain, type, protocol)` (`__socket30`).
    pub fn socket(&mut self, domain: i32, ty: i32, proto: i32) -> Result<i32> {
        let args = [int_arg(domain), int_arg(ty), int_arg(proto)];
        Ok(self.syscall(netnr::SOCKET, &args, &mut [])?[0] as i32)
    }

    /// `socketpair(domain, type, protocol, sv)`.
    pub fn socketpair(&mut self, domain: i32, ty: i32, proto: i32) -> Result<(i32, i32)> {
        let mut sv = [0u8; 8];
        let args = [int_arg(domain), int_arg(ty), int_arg(proto), addr_of(&sv)];
        self.syscall(netnr::SOCKETPAIR, &args, &mut [Buf::Out(&mut sv)])?;
        let a = i32::from_le_bytes(sv[..4].try_into().unwrap());
        let b = i32::from_le_bytes(sv[4..].try_into().unwrap());
        Ok((a, b))
    }

    /// `bind(s, name, namelen)` with `namelen` = `addr.len()`.
    pub fn bind(&mut self, s: i32, addr: &[u8]) -> Result<()> {
        self.bind_len(s, addr, addr.len() as u32)
    }

    /// `bind(s, name, namelen)` with an explicit length.
    pub fn bind_len(&mut self, s: i32, addr: &[u8], len: u32) -> Result<()> {
        let args = [int_arg(s), addr_of(addr), u64::from(len)];
        self.syscall(netnr::BIND, &args, &mut [Buf::In(addr)])?;
        Ok(())
    }

    /// `connect(s, name, namelen)` with `namelen` = `addr.len()`.
    pub fn connect_sock(&mut self, s: i32, addr: &[u8]) -> Result<()> {
        self.connect_len(s, addr, addr.len() as u32)
    }

    /// `connect(s, name, namelen)` with an explicit length.
    pub fn connect_len(&mut self, s: i32, addr: &[u8], len: u32) -> Result<()> {
        let args = [int_arg(s), addr_of(addr), u64::from(len)];
        self.syscall(netnr::CONNECT, &args, &mut [Buf::In(addr)])?;
        Ok(())
    }

    /// `listen(s, backlog)`.
    pub fn listen(&mut self, s: i32, backlog: i32) -> Result<()> {
        self.syscall(netnr::LISTEN, &[int_arg(s), int_arg(backlog)], &mut [])?;
        Ok(())
    }

    /// `accept(s, name, anamelen)` with a 255-byte name buffer: the new descriptor and the
    /// peer's address.
    pub fn accept(&mut self, s: i32) -> Result<(i32, Vec<u8>)> {
        self.paccept_inner(s, None)
    }

    /// `paccept(s, name, anamelen, NULL, flags)`.
    pub fn paccept(&mut self, s: i32, flags: i32) -> Result<(i32, Vec<u8>)> {
        self.paccept_inner(s, Some(flags))
    }

    fn paccept_inner(&mut self, s: i32, flags: Option<i32>) -> Result<(i32, Vec<u8>)> {
        let mut name = [0u8; 255];
        let mut len = 255u32.to_le_bytes();
        let (nr, args) = match flags {
            None => (
                netnr::ACCEPT,
                vec![int_arg(s), addr_of(&name), addr_of(&len)],
            ),
            Some(f) => (
                netnr::PACCEPT,
                vec![int_arg(s), addr_of(&name), addr_of(&len), 0, int_arg(f)],
            ),
        };
        let fd = self.syscall(nr, &args, &mut [Buf::Out(&mut name), Buf::InOut(&mut len)])?[0];
        let n = (u32::from_le_bytes(len) as usize).min(255);
        Ok((fd as i32, name[..n].to_vec()))
    }

    fn sockname(&mut self, nr: u32, s: i32) -> Result<Vec<u8>> {
        let mut name = [0u8; 255];
        let mut len = 255u32.to_le_bytes();
        let args = [int_arg(s), addr_of(&name), addr_of(&len)];
        self.syscall(nr, &args, &mut [Buf::Out(&mut name), Buf::InOut(&mut len)])?;
        let n = (u32::from_le_bytes(len) as usize).min(255);
        Ok(name[..n].to_vec())
    }

    /// `getsockname(s, name, namelen)`: the address bytes.
    pub fn getsockname(&mut self, s: i32) -> Result<Vec<u8>> {
        self.sockname(netnr::GETSOCKNAME, s)
    }

    /// `getpeername(s, name, namelen)`: the address bytes.
    pub fn getpeername(&mut self, s: i32) -> Result<Vec<u8>> {
        self.sockname(netnr::GETPEERNAME, s)
    }

    /// `shutdown(s, how)`.
    pub fn shutdown(&mut self, s: i32, how: i32) -> Result<()> {
        self.syscall(netnr::SHUTDOWN, &[int_arg(s), int_arg(how)], &mut [])?;
        Ok(())
    }

    /// `sendto(s, buf, len, flags, to, tolen)`.
    pub fn sendto(&mut self, s: i32, data: &[u8], flags: i32, to: Option<&[u8]>) -> Result<usize> {
        let (ta, tl) = opt_addr(to);
        let args = [
            int_arg(s),
            addr_of(data),
            data.len() as u64,
            int_arg(flags),
            ta,
            tl,
        ];
        let mut mem = vec![Buf::In(data)];
        if let Some(t) = to {
            mem.push(Buf::In(t));
        }
        Ok(self.syscall(netnr::SENDTO, &args, &mut mem)?[0] as usize)
    }

    /// `recvfrom(s, buf, len, flags, from, fromlen)`: the bytes and the sender's address.
    pub fn recvfrom(&mut self, s: i32, buf: &mut [u8], flags: i32) -> Result<(usize, Vec<u8>)> {
        let mut from = [0u8; 255];
        let mut len = 255u32.to_le_bytes();
        let args = [
            int_arg(s),
            addr_of(buf),
            buf.len() as u64,
            int_arg(flags),
            addr_of(&from),
            addr_of(&len),
        ];
        let mut mem = [Buf::Out(buf), Buf::Out(&mut from), Buf::InOut(&mut len)];
        let n = self.syscall(netnr::RECVFROM, &args, &mut mem)?[0] as usize;
        let fl = (u32::from_le_bytes(len) as usize).min(255);
        Ok((n, from[..fl].to_vec()))
    }

    /// `sendmsg(s, msg, flags)` with the buffers as the iovecs, an optional name and
    /// control data (none when empty).
    pub fn sendmsg(
        &mut self,
        s: i32,
        bufs: &[&[u8]],
        name: Option<&[u8]>,
        control: &[u8],
        flags: i32,
    ) -> Result<usize> {
        let iov = iovec(
            &bufs
                .iter()
                .map(|b| (addr_of(b), b.len()))
                .collect::<Vec<_>>(),
        );
        let (na, nl) = opt_addr(name);
        let (ca, cl) = if control.is_empty() {
            (0, 0)
        } else {
            (addr_of(control), control.len())
        };
        let m = msghdr(
            na,
            nl as u32,
            addr_of(&iov),
            bufs.len() as i32,
            ca,
            cl as u32,
        );
        let mut mem = vec![Buf::In(&m), Buf::In(&iov), Buf::In(control)];
        if let Some(n) = name {
            mem.push(Buf::In(n));
        }
        mem.extend(bufs.iter().map(|b| Buf::In(b)));
        let args = [int_arg(s), addr_of(&m), int_arg(flags)];
        Ok(self.syscall(netnr::SENDMSG, &args, &mut mem)?[0] as usize)
    }

    /// `recvmsg(s, msg, flags)` into `buf`, with a 255-byte name buffer and `control_len`
    /// bytes of control buffer.
    pub fn recvmsg(
        &mut self,
        s: i32,
        buf: &mut [u8],
        control_len: usize,
        flags: i32,
    ) -> Result<Received> {
        let mut name = [0u8; 255];
        let mut control = vec![0u8; control_len];
        let iov = iovec(&[(addr_of(buf), buf.len())]);
        let ca = if control_len == 0 {
            0
        } else {
            addr_of(&control)
        };
        let mut m = msghdr(
            addr_of(&name),
            255,
            addr_of(&iov),
            1,
            ca,
            control_len as u32,
        );
        let args = [int_arg(s), addr_of(&m), int_arg(flags)];
        let mut mem = [
            Buf::InOut(&mut m),
            Buf::In(&iov),
            Buf::Out(buf),
            Buf::Out(&mut name),
            Buf::Out(&mut control),
        ];
        let n = self.syscall(netnr::RECVMSG, &args, &mut mem)?[0] as usize;
        let namelen = (u32::from_le_bytes(m[8..12].try_into().unwrap()) as usize).min(255);
        let clen = (u32::from_le_bytes(m[40..44].try_into().unwrap()) as usize).min(control_len);
        let flags = i32::from_le_bytes(m[44..48].try_into().unwrap());
        control.truncate(clen);
        Ok(Received {
            n,
            name: name[..namelen].to_vec(),
            control,
            flags,
        })
    }

    /// `sendmmsg(s, msgvec, vlen, flags)`: one message per buffer; the count sent and each
    /// message's `msg_len`.
    pub fn sendmmsg(&mut self, s: i32, msgs: &[&[u8]], flags: i32) -> Result<(usize, Vec<u32>)> {
        let iovs: Vec<Vec<u8>> = msgs
            .iter()
            .map(|b| iovec(&[(addr_of(b), b.len())]))
            .collect();
        let mut vec = Vec::with_capacity(56 * msgs.len());
        for iov in &iovs {
            vec.extend_from_slice(&msghdr(0, 0, addr_of(iov), 1, 0, 0));
            vec.extend_from_slice(&[0u8; 8]);
        }
        let args = [int_arg(s), addr_of(&vec), msgs.len() as u64, int_arg(flags)];
        let mut mem = vec![Buf::InOut(&mut vec)];
        mem.extend(iovs.iter().map(|i| Buf::In(i)));
        mem.extend(msgs.iter().map(|b| Buf::In(b)));
        let n = self.syscall(netnr::SENDMMSG, &args, &mut mem)?[0] as usize;
        let lens = (0..msgs.len())
            .map(|i| u32::from_le_bytes(vec[56 * i + 48..56 * i + 52].try_into().unwrap()))
            .collect();
        Ok((n, lens))
    }

    /// `recvmmsg(s, msgvec, vlen, flags, NULL)` into `bufs`: the count and each `msg_len`.
    pub fn recvmmsg(
        &mut self,
        s: i32,
        bufs: &mut [Vec<u8>],
        flags: i32,
    ) -> Result<(usize, Vec<u32>)> {
        let iovs: Vec<Vec<u8>> = bufs
            .iter()
            .map(|b| iovec(&[(addr_of(b), b.len())]))
            .collect();
        let mut vec = Vec::with_capacity(56 * bufs.len());
        for iov in &iovs {
            vec.extend_from_slice(&msghdr(0, 0, addr_of(iov), 1, 0, 0));
            vec.extend_from_slice(&[0u8; 8]);
        }
        let args = [
            int_arg(s),
            addr_of(&vec),
            bufs.len() as u64,
            int_arg(flags),
            0,
        ];
        let count = bufs.len();
        let mut mem = vec![Buf::InOut(&mut vec)];
        mem.extend(iovs.iter().map(|i| Buf::In(i)));
        mem.extend(bufs.iter_mut().map(|b| Buf::Out(b)));
        let n = self.syscall(netnr::RECVMMSG, &args, &mut mem)?[0] as usize;
        let lens = (0..count)
            .map(|i| u32::from_le_bytes(vec[56 * i + 48..56 * i + 52].try_into().unwrap()))
            .collect();
        Ok((n, lens))
    }

    /// `getsockopt(s, level, name, val, avalsize)` with a `len`-byte buffer: the value as
    /// long as the server says.
    pub fn getsockopt(&mut self, s: i32, level: i32, name: i32, len: usize) -> Result<Vec<u8>> {
        let mut val = vec![0u8; len];
        let mut vl = (len as u32).to_le_bytes();
        let args = [
            int_arg(s),
            int_arg(level),
            int_arg(name),
            addr_of(&val),
            addr_of(&vl),
        ];
        self.syscall(
            netnr::GETSOCKOPT,
            &args,
            &mut [Buf::Out(&mut val), Buf::InOut(&mut vl)],
        )?;
        val.truncate(u32::from_le_bytes(vl) as usize);
        Ok(val)
    }

    /// An `int` socket option.
    pub fn getsockopt_int(&mut self, s: i32, level: i32, name: i32) -> Result<i32> {
        let v = self.getsockopt(s, level, name, 4)?;
        let mut b = [0u8; 4];
        b[..v.len().min(4)].copy_from_slice(&v[..v.len().min(4)]);
        Ok(i32::from_le_bytes(b))
    }

    /// `setsockopt(s, level, name, val, valsize)`.
    pub fn setsockopt(&mut self, s: i32, level: i32, name: i32, val: &[u8]) -> Result<()> {
        let args = [
            int_arg(s),
            int_arg(level),
            int_arg(name),
            addr_of(val),
            val.len() as u64,
        ];
        self.syscall(netnr::SETSOCKOPT, &args, &mut [Buf::In(val)])?;
        Ok(())
    }
}

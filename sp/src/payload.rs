//! Payload parsers (§6). None of them panics, whatever the input; short or over-long payloads
//! are either rejected (`None`) or handled as documented per function.

use crate::{COOKIE_LEN, COPY_REQ_LEN, HANDSHAKE_FORK_LEN, MAX_SYSCALL_ARGS, SYSCALL_RESP_LEN};

fn u64_at(p: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&p[off..off + 8]);
    u64::from_le_bytes(b)
}

fn i32_at(p: &[u8], off: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&p[off..off + 4]);
    i32::from_le_bytes(b)
}

/// The argument slots of a SYSCALL request (§6.3): eight 8-byte little-endian slots.
///
/// Missing bytes read as zero (also within a partial last slot); bytes beyond 64 are ignored.
/// 32-bit arguments are the low half of their slot (`slot as u32 as i32`).
pub fn syscall_args(payload: &[u8]) -> [u64; MAX_SYSCALL_ARGS] {
    let mut args = [0u64; MAX_SYSCALL_ARGS];
    for (slot, chunk) in args.iter_mut().zip(payload.chunks(8)) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        *slot = u64::from_le_bytes(b);
    }
    args
}

/// A COPYIN/COPYINSTR request (§6.5).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CopyReq {
    /// Bytes wanted (COPYIN) or maximum string length including the NUL (COPYINSTR).
    pub len: u64,
    /// Client address.
    pub addr: u64,
}

/// Parses a COPYIN/COPYINSTR request payload: `len`, `addr` (16 bytes; extra bytes ignored).
pub fn parse_copy_req(p: &[u8]) -> Option<CopyReq> {
    if p.len() < COPY_REQ_LEN {
        return None;
    }
    Some(CopyReq {
        len: u64_at(p, 0),
        addr: u64_at(p, 8),
    })
}

/// Parses a COPYOUT/COPYOUTSTR request payload (§6.6): `(addr, data)`.
///
/// The `len` field must equal the number of data bytes that follow.
pub fn parse_copyout_req(p: &[u8]) -> Option<(u64, &[u8])> {
    if p.len() < COPY_REQ_LEN {
        return None;
    }
    let data = &p[COPY_REQ_LEN..];
    if u64_at(p, 0) != data.len() as u64 {
        return None;
    }
    Some((u64_at(p, 8), data))
}

/// The payload of a HANDSHAKE FORK request (§6.1).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct HandshakeFork {
    /// The cookie from the PREFORK response, byte for byte.
    pub cookie: [u8; COOKIE_LEN],
    /// Non-zero: abandon the prepared process.
    pub cancel: i32,
}

/// Parses a HANDSHAKE FORK payload; it must be exactly 20 bytes.
pub fn parse_handshake_fork(p: &[u8]) -> Option<HandshakeFork> {
    if p.len() != HANDSHAKE_FORK_LEN {
        return None;
    }
    let mut cookie = [0u8; COOKIE_LEN];
    cookie.copy_from_slice(&p[..COOKIE_LEN]);
    Some(HandshakeFork {
        cookie,
        cancel: i32_at(p, COOKIE_LEN),
    })
}

/// A GUEST/EXEC program name: the bytes up to the first NUL, or all of them if there is none.
pub fn parse_name(p: &[u8]) -> &[u8] {
    match p.iter().position(|&b| b == 0) {
        Some(n) => &p[..n],
        None => p,
    }
}

/// A SYSCALL response (§6.4).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SyscallResp {
    /// 0 or a NetBSD errno number.
    pub error: i32,
    /// `retval[0]`, `retval[1]`.
    pub retval: [i64; 2],
}

/// Parses a SYSCALL response payload (at least 24 bytes; extra bytes ignored).
pub fn parse_syscall_resp(p: &[u8]) -> Option<SyscallResp> {
    if p.len() < SYSCALL_RESP_LEN {
        return None;
    }
    Some(SyscallResp {
        error: i32_at(p, 0),
        retval: [u64_at(p, 8) as i64, u64_at(p, 16) as i64],
    })
}

/// Parses a HANDSHAKE response payload: the i32 error (at least 4 bytes; extra ignored).
pub fn parse_handshake_resp(p: &[u8]) -> Option<i32> {
    if p.len() < 4 {
        return None;
    }
    Some(i32_at(p, 0))
}

/// Parses a PREFORK response payload: the 16-byte cookie (extra bytes ignored).
pub fn parse_prefork_resp(p: &[u8]) -> Option<[u8; COOKIE_LEN]> {
    let mut c = [0u8; COOKIE_LEN];
    c.copy_from_slice(p.get(..COOKIE_LEN)?);
    Some(c)
}

/// Parses a single u64 payload (ANONMMAP request size / response address; extra ignored).
pub fn parse_u64(p: &[u8]) -> Option<u64> {
    if p.len() < 8 {
        return None;
    }
    Some(u64_at(p, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_args_short_long_partial() {
        assert_eq!(syscall_args(&[]), [0; 8]);
        let mut p = Vec::new();
        for i in 1..=10u64 {
            p.extend_from_slice(&(i * 0x0101_0101_0101).to_le_bytes());
        }
        let a = syscall_args(&p);
        assert_eq!(a[0], 0x0101_0101_0101);
        assert_eq!(a[7], 8 * 0x0101_0101_0101);
        // Partial last slot: missing bytes are zero.
        let a = syscall_args(&[1, 0, 0, 0, 0, 0, 0, 0, 0x9c, 0xff, 0xff, 0xff]);
        assert_eq!(a[..3], [1, 0xffff_ff9c, 0]);
        assert_eq!(a[1] as u32 as i32, -100);
    }

    #[test]
    fn copy_req() {
        assert_eq!(parse_copy_req(&[0; 15]), None);
        let mut p = 2u64.to_le_bytes().to_vec();
        p.extend_from_slice(&0x5555_5555_92a0u64.to_le_bytes());
        assert_eq!(
            parse_copy_req(&p),
            Some(CopyReq {
                len: 2,
                addr: 0x5555_5555_92a0
            })
        );
        p.push(7);
        assert_eq!(
            parse_copy_req(&p),
            Some(CopyReq {
                len: 2,
                addr: 0x5555_5555_92a0
            })
        );
    }

    #[test]
    fn copyout_req() {
        assert_eq!(parse_copyout_req(&[0; 15]), None);
        let mut p = 3u64.to_le_bytes().to_vec();
        p.extend_from_slice(&0x1000u64.to_le_bytes());
        assert_eq!(parse_copyout_req(&p), None, "len 3 but no data");
        p.extend_from_slice(b"abc");
        assert_eq!(parse_copyout_req(&p), Some((0x1000, &b"abc"[..])));
        p.push(b'd');
        assert_eq!(parse_copyout_req(&p), None, "more data than len");
        let mut z = 0u64.to_le_bytes().to_vec();
        z.extend_from_slice(&8u64.to_le_bytes());
        assert_eq!(parse_copyout_req(&z), Some((8, &b""[..])));
    }

    #[test]
    fn handshake_fork() {
        let mut p: Vec<u8> = (1..=16).collect();
        p.extend_from_slice(&(-1i32).to_le_bytes());
        let hf = parse_handshake_fork(&p).unwrap();
        assert_eq!(hf.cookie[0], 1);
        assert_eq!(hf.cookie[15], 16);
        assert_eq!(hf.cancel, -1);
        assert_eq!(parse_handshake_fork(&p[..19]), None);
        p.push(0);
        assert_eq!(parse_handshake_fork(&p), None);
        assert_eq!(parse_handshake_fork(&[]), None);
    }

    #[test]
    fn name() {
        assert_eq!(parse_name(b"hello\0"), b"hello");
        assert_eq!(parse_name(b"hello"), b"hello");
        assert_eq!(parse_name(b"a\0b\0"), b"a");
        assert_eq!(parse_name(b""), b"");
        assert_eq!(parse_name(b"\0"), b"");
    }

    #[test]
    fn syscall_resp() {
        assert_eq!(parse_syscall_resp(&[0; 23]), None);
        let mut p = 9i32.to_le_bytes().to_vec();
        p.extend_from_slice(&[0xaa; 4]); // padding is ignored
        p.extend_from_slice(&(-1i64).to_le_bytes());
        p.extend_from_slice(&7i64.to_le_bytes());
        let r = parse_syscall_resp(&p).unwrap();
        assert_eq!(
            r,
            SyscallResp {
                error: 9,
                retval: [-1, 7]
            }
        );
        p.push(0);
        assert_eq!(parse_syscall_resp(&p), Some(r));
    }

    #[test]
    fn small_responses() {
        assert_eq!(parse_handshake_resp(&[]), None);
        assert_eq!(parse_handshake_resp(&[1, 2, 3]), None);
        assert_eq!(parse_handshake_resp(&[5, 0, 0, 0]), Some(5));
        assert_eq!(parse_handshake_resp(&[0xff, 0xff, 0xff, 0xff, 9]), Some(-1));
        assert_eq!(parse_prefork_resp(&[7; 15]), None);
        assert_eq!(parse_prefork_resp(&[7; 16]), Some([7; 16]));
        assert_eq!(parse_prefork_resp(&[7; 17]), Some([7; 16]));
        assert_eq!(parse_u64(&[1; 7]), None);
        assert_eq!(parse_u64(&4096u64.to_le_bytes()), Some(4096));
    }
}

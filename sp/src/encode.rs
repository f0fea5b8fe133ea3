//! Frame encoders (§6). Each appends exactly one whole frame to `out`, reserving its length
//! once; unused header fields and padding are always zero.

use crate::{
    Class, ErrorCode, HandshakeType, Header, MsgType, COOKIE_LEN, COPY_REQ_LEN, HEADER_LEN,
    MAX_SYSCALL_ARGS, SYSCALL_RESP_LEN,
};

/// Reserves room for a frame with `payload_len` payload bytes and appends its header.
fn start(out: &mut Vec<u8>, payload_len: usize, reqno: u64, class: Class, typ: MsgType, u: u32) {
    let len = HEADER_LEN + payload_len;
    out.reserve(len);
    let h = Header {
        len: len as u64,
        reqno,
        class,
        typ,
        u,
    };
    out.extend_from_slice(&h.to_bytes());
}

/// HANDSHAKE request (§6.1): `payload` is `name\0` for GUEST/EXEC or the 20-byte
/// `handshake_fork` for FORK.
pub fn encode_handshake_req(out: &mut Vec<u8>, reqno: u64, sub: HandshakeType, payload: &[u8]) {
    start(
        out,
        payload.len(),
        reqno,
        Class::REQ,
        MsgType::HANDSHAKE,
        sub.0,
    );
    out.extend_from_slice(payload);
}

/// GUEST or EXEC HANDSHAKE request carrying `name` followed by the terminating NUL (§6.1).
pub fn encode_handshake_name_req(out: &mut Vec<u8>, reqno: u64, sub: HandshakeType, name: &[u8]) {
    start(
        out,
        name.len() + 1,
        reqno,
        Class::REQ,
        MsgType::HANDSHAKE,
        sub.0,
    );
    out.extend_from_slice(name);
    out.push(0);
}

/// HANDSHAKE FORK request: the cookie then `cancel` (§6.1).
pub fn encode_handshake_fork_req(
    out: &mut Vec<u8>,
    reqno: u64,
    cookie: &[u8; COOKIE_LEN],
    cancel: i32,
) {
    start(
        out,
        20,
        reqno,
        Class::REQ,
        MsgType::HANDSHAKE,
        HandshakeType::FORK.0,
    );
    out.extend_from_slice(cookie);
    out.extend_from_slice(&cancel.to_le_bytes());
}

/// HANDSHAKE response (§6.2): the 4-byte error field (0 = success).
pub fn encode_handshake_resp(out: &mut Vec<u8>, reqno: u64, error: i32) {
    start(out, 4, reqno, Class::RESP, MsgType::HANDSHAKE, 0);
    out.extend_from_slice(&error.to_le_bytes());
}

/// SYSCALL request (§6.3): one 8-byte slot per argument.
///
/// # Panics
/// If more than [`MAX_SYSCALL_ARGS`] arguments are given.
pub fn encode_syscall_req(out: &mut Vec<u8>, reqno: u64, sysnum: u32, args: &[u64]) {
    assert!(
        args.len() <= MAX_SYSCALL_ARGS,
        "at most {MAX_SYSCALL_ARGS} syscall arguments"
    );
    start(
        out,
        8 * args.len(),
        reqno,
        Class::REQ,
        MsgType::SYSCALL,
        sysnum,
    );
    for a in args {
        out.extend_from_slice(&a.to_le_bytes());
    }
}

/// SYSCALL response (§6.4): error, 4 zero padding bytes, `retval[0]`, `retval[1]`.
pub fn encode_syscall_resp(out: &mut Vec<u8>, reqno: u64, error: i32, retval: [i64; 2]) {
    start(
        out,
        SYSCALL_RESP_LEN,
        reqno,
        Class::RESP,
        MsgType::SYSCALL,
        0,
    );
    out.extend_from_slice(&error.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&retval[0].to_le_bytes());
    out.extend_from_slice(&retval[1].to_le_bytes());
}

/// PREFORK request (§6.9): header only.
pub fn encode_prefork_req(out: &mut Vec<u8>, reqno: u64) {
    start(out, 0, reqno, Class::REQ, MsgType::PREFORK, 0);
}

/// PREFORK response (§6.9): the 16-byte cookie.
pub fn encode_prefork_resp(out: &mut Vec<u8>, reqno: u64, cookie: &[u8; COOKIE_LEN]) {
    start(out, COOKIE_LEN, reqno, Class::RESP, MsgType::PREFORK, 0);
    out.extend_from_slice(cookie);
}

/// COPYIN or COPYINSTR request (§6.5): `len` (wanted / maximum) and `addr`.
pub fn encode_copyin_req(out: &mut Vec<u8>, reqno: u64, typ: MsgType, len: u64, addr: u64) {
    debug_assert!(typ == MsgType::COPYIN || typ == MsgType::COPYINSTR);
    start(out, COPY_REQ_LEN, reqno, Class::REQ, typ, 0);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&addr.to_le_bytes());
}

/// Response to COPYIN or COPYINSTR (§6.5): type COPYIN for both, payload = the data.
pub fn encode_copyin_resp(out: &mut Vec<u8>, reqno: u64, data: &[u8]) {
    start(out, data.len(), reqno, Class::RESP, MsgType::COPYIN, 0);
    out.extend_from_slice(data);
}

/// COPYOUT request (§6.6): `len`, `addr`, data. Never answered.
pub fn encode_copyout_req(out: &mut Vec<u8>, reqno: u64, addr: u64, data: &[u8]) {
    start(
        out,
        COPY_REQ_LEN + data.len(),
        reqno,
        Class::REQ,
        MsgType::COPYOUT,
        0,
    );
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&addr.to_le_bytes());
    out.extend_from_slice(data);
}

/// ANONMMAP request (§6.7): the size in bytes.
pub fn encode_anonmmap_req(out: &mut Vec<u8>, reqno: u64, size: u64) {
    start(out, 8, reqno, Class::REQ, MsgType::ANONMMAP, 0);
    out.extend_from_slice(&size.to_le_bytes());
}

/// ANONMMAP response (§6.7): the mapped address, 0 on failure.
pub fn encode_anonmmap_resp(out: &mut Vec<u8>, reqno: u64, addr: u64) {
    start(out, 8, reqno, Class::RESP, MsgType::ANONMMAP, 0);
    out.extend_from_slice(&addr.to_le_bytes());
}

/// RAISE request (§6.8): header only, `u` = NetBSD signal number. Never answered.
pub fn encode_raise(out: &mut Vec<u8>, reqno: u64, signo: u32) {
    start(out, 0, reqno, Class::REQ, MsgType::RAISE, signo);
}

/// ERROR frame (§5.4): header only, type 0, `u` = the code.
pub fn encode_error(out: &mut Vec<u8>, reqno: u64, code: ErrorCode) {
    start(out, 0, reqno, Class::ERROR, MsgType(0), code.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

    /// Parses a hex dump as printed in sp-protocol.md §18 (offset column, then bytes).
    fn hex(dump: &str) -> Vec<u8> {
        dump.lines()
            .filter_map(|l| l.split_once(':'))
            .flat_map(|(_, bytes)| bytes.split_whitespace())
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    /// Decodes exactly one frame from `bytes` (owned copy of the payload).
    fn decode_one(bytes: &[u8]) -> (Header, Vec<u8>) {
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
        let mut input = bytes;
        let f = d.next(&mut input).unwrap().unwrap();
        assert!(input.is_empty());
        (f.header, f.payload.to_vec())
    }

    fn hdr(len: u64, reqno: u64, class: Class, typ: MsgType, u: u32) -> Header {
        Header {
            len,
            reqno,
            class,
            typ,
            u,
        }
    }

    #[test]
    fn worked_example_handshake() {
        let wire = hex("0000: 1e 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00\n\
                        0010: 00 00 00 00 00 00 00 00 68 65 6c 6c 6f 00");
        let mut out = Vec::new();
        encode_handshake_req(&mut out, 1, HandshakeType::GUEST, b"hello\0");
        assert_eq!(out, wire);
        let mut out = Vec::new();
        encode_handshake_name_req(&mut out, 1, HandshakeType::GUEST, b"hello");
        assert_eq!(out, wire);
        let (h, p) = decode_one(&wire);
        assert_eq!(h, hdr(30, 1, Class::REQ, MsgType::HANDSHAKE, 0));
        assert_eq!(parse_name(&p), b"hello");

        let wire = hex("0000: 1c 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00\n\
                        0010: 01 00 00 00 00 00 00 00 00 00 00 00");
        let mut out = Vec::new();
        encode_handshake_resp(&mut out, 1, 0);
        assert_eq!(out, wire);
        let (h, p) = decode_one(&wire);
        assert_eq!(h, hdr(28, 1, Class::RESP, MsgType::HANDSHAKE, 0));
        assert_eq!(parse_handshake_resp(&p), Some(0));
    }

    #[test]
    fn worked_example_getpid() {
        let wire = hex("0000: 18 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00\n\
                        0010: 00 00 01 00 14 00 00 00");
        let mut out = Vec::new();
        encode_syscall_req(&mut out, 2, 20, &[]);
        assert_eq!(out, wire);
        let (h, p) = decode_one(&wire);
        assert_eq!(h, hdr(24, 2, Class::REQ, MsgType::SYSCALL, 20));
        assert!(p.is_empty());

        let wire = hex("0000: 30 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00\n\
                        0010: 01 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00\n\
                        0020: 02 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00");
        let mut out = Vec::new();
        encode_syscall_resp(&mut out, 2, 0, [2, 1]);
        assert_eq!(out, wire);
        let (h, p) = decode_one(&wire);
        assert_eq!(h, hdr(48, 2, Class::RESP, MsgType::SYSCALL, 0));
        assert_eq!(
            parse_syscall_resp(&p),
            Some(SyscallResp {
                error: 0,
                retval: [2, 1]
            })
        );
    }

    #[test]
    fn worked_example_write_with_copyin() {
        let wire = hex("0000: 30 00 00 00 00 00 00 00 03 00 00 00 00 00 00 00\n\
                        0010: 00 00 01 00 04 00 00 00 01 00 00 00 00 00 00 00\n\
                        0020: a0 92 55 55 55 55 00 00 02 00 00 00 00 00 00 00");
        let mut out = Vec::new();
        encode_syscall_req(&mut out, 3, 4, &[1, 0x5555_5555_92a0, 2]);
        assert_eq!(out, wire);
        let (h, p) = decode_one(&wire);
        assert_eq!(h, hdr(48, 3, Class::REQ, MsgType::SYSCALL, 4));
        assert_eq!(syscall_args(&p), [1, 0x5555_5555_92a0, 2, 0, 0, 0, 0, 0]);

        let wire = hex("0000: 28 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n\
                        0010: 00 00 02 00 00 00 00 00 02 00 00 00 00 00 00 00\n\
                        0020: a0 92 55 55 55 55 00 00");
        let mut out = Vec::new();
        encode_copyin_req(&mut out, 0, MsgType::COPYIN, 2, 0x5555_5555_92a0);
        assert_eq!(out, wire);
        let (h, p) = decode_one(&wire);
        assert_eq!(h, hdr(40, 0, Class::REQ, MsgType::COPYIN, 0));
        assert_eq!(
            parse_copy_req(&p),
            Some(CopyReq {
                len: 2,
                addr: 0x5555_5555_92a0
            })
        );

        let wire = hex("0000: 1a 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n\
                        0010: 01 00 02 00 00 00 00 00 68 69");
        let mut out = Vec::new();
        encode_copyin_resp(&mut out, 0, b"hi");
        assert_eq!(out, wire);
        let (h, p) = decode_one(&wire);
        assert_eq!(h, hdr(26, 0, Class::RESP, MsgType::COPYIN, 0));
        assert_eq!(p, b"hi");

        let wire = hex("0000: 30 00 00 00 00 00 00 00 03 00 00 00 00 00 00 00\n\
                        0010: 01 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00\n\
                        0020: 02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
        let mut out = Vec::new();
        encode_syscall_resp(&mut out, 3, 0, [2, 0]);
        assert_eq!(out, wire);
        let (h, p) = decode_one(&wire);
        assert_eq!(h, hdr(48, 3, Class::RESP, MsgType::SYSCALL, 0));
        assert_eq!(
            parse_syscall_resp(&p),
            Some(SyscallResp {
                error: 0,
                retval: [2, 0]
            })
        );
    }

    #[test]
    fn worked_example_copyinstr_and_error() {
        let mut out = Vec::new();
        encode_copyin_req(&mut out, 5, MsgType::COPYINSTR, 1024, 0x1000);
        let (h, p) = decode_one(&out);
        assert_eq!(h, hdr(40, 5, Class::REQ, MsgType::COPYINSTR, 0));
        assert_eq!(
            parse_copy_req(&p),
            Some(CopyReq {
                len: 1024,
                addr: 0x1000
            })
        );
        let mut out = Vec::new();
        encode_copyin_resp(&mut out, 5, b"/tmp/f\0");
        assert_eq!(out.len(), 31);
        assert_eq!(
            decode_one(&out).0,
            hdr(31, 5, Class::RESP, MsgType::COPYIN, 0)
        );

        let wire = hex("0000: 18 00 00 00 00 00 00 00 07 00 00 00 00 00 00 00\n\
                        0010: 02 00 00 00 07 00 00 00");
        let mut out = Vec::new();
        encode_error(&mut out, 7, ErrorCode::MALFORMED_REQUEST);
        assert_eq!(out, wire);
        let (h, p) = decode_one(&wire);
        assert_eq!(h, hdr(24, 7, Class::ERROR, MsgType(0), 7));
        assert!(p.is_empty());
    }

    #[test]
    fn other_frames_round_trip() {
        let mut out = Vec::new();
        encode_prefork_req(&mut out, 4);
        assert_eq!(
            decode_one(&out),
            (hdr(24, 4, Class::REQ, MsgType::PREFORK, 0), vec![])
        );

        let cookie: [u8; 16] = core::array::from_fn(|i| i as u8 + 1);
        let mut out = Vec::new();
        encode_prefork_resp(&mut out, 4, &cookie);
        let (h, p) = decode_one(&out);
        assert_eq!(h, hdr(40, 4, Class::RESP, MsgType::PREFORK, 0));
        assert_eq!(parse_prefork_resp(&p), Some(cookie));

        let mut out = Vec::new();
        encode_handshake_fork_req(&mut out, 1, &cookie, 0);
        let (h, p) = decode_one(&out);
        assert_eq!(h, hdr(44, 1, Class::REQ, MsgType::HANDSHAKE, 2));
        assert_eq!(
            parse_handshake_fork(&p),
            Some(HandshakeFork { cookie, cancel: 0 })
        );

        let mut out = Vec::new();
        encode_copyout_req(&mut out, 6, 0xdead_beef, b"xyz");
        let (h, p) = decode_one(&out);
        assert_eq!(h, hdr(43, 6, Class::REQ, MsgType::COPYOUT, 0));
        assert_eq!(parse_copyout_req(&p), Some((0xdead_beef, &b"xyz"[..])));

        let mut out = Vec::new();
        encode_anonmmap_req(&mut out, 8, 4096);
        let (h, p) = decode_one(&out);
        assert_eq!(h, hdr(32, 8, Class::REQ, MsgType::ANONMMAP, 0));
        assert_eq!(parse_u64(&p), Some(4096));

        let mut out = Vec::new();
        encode_anonmmap_resp(&mut out, 8, 0x7000);
        let (h, p) = decode_one(&out);
        assert_eq!(h, hdr(32, 8, Class::RESP, MsgType::ANONMMAP, 0));
        assert_eq!(parse_u64(&p), Some(0x7000));

        let mut out = Vec::new();
        encode_raise(&mut out, 9, 13);
        assert_eq!(
            decode_one(&out),
            (hdr(24, 9, Class::REQ, MsgType::RAISE, 13), vec![])
        );

        // Encoders append: two frames in one buffer decode in order.
        let mut out = Vec::new();
        encode_syscall_resp(&mut out, 1, 22, [-1, 0]);
        encode_syscall_req(&mut out, 2, 92, &[0xffff_ff9c; 8]);
        assert_eq!(out.len(), 48 + 24 + 64);
        assert_eq!(&out[28..32], &[0; 4], "padding is zero");
    }

    #[test]
    #[should_panic]
    fn too_many_args_panics() {
        encode_syscall_req(&mut Vec::new(), 1, 1, &[0; 9]);
    }
}

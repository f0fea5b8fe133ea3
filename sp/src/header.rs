//! The 24-byte frame header (§4.1) and the enumerations carried in it (§5).

use std::fmt;

/// Frame class (§5.1): request, response or error.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub struct Class(pub u16);

impl Class {
    /// `RUMPSP_REQ`: a request, answered by RESP or ERROR unless its type says otherwise.
    pub const REQ: Class = Class(0);
    /// `RUMPSP_RESP`: the answer to a request with the same reqno.
    pub const RESP: Class = Class(1);
    /// `RUMPSP_ERROR`: a header-only failure answer; `u` carries an [`ErrorCode`].
    pub const ERROR: Class = Class(2);
}

/// Message type (§5.2).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub struct MsgType(pub u16);

impl MsgType {
    /// Client → server: start (GUEST/FORK) or re-image (EXEC) the connection's process.
    pub const HANDSHAKE: MsgType = MsgType(0);
    /// Client → server: run a NetBSD system call; `u` is the syscall number.
    pub const SYSCALL: MsgType = MsgType(1);
    /// Server → client: read client memory; also the type of both copy-in responses.
    pub const COPYIN: MsgType = MsgType(2);
    /// Server → client: read a NUL-terminated string from client memory.
    pub const COPYINSTR: MsgType = MsgType(3);
    /// Server → client: write client memory; never answered.
    pub const COPYOUT: MsgType = MsgType(4);
    /// Server → client: write a string (never sent by the reference server); never answered.
    pub const COPYOUTSTR: MsgType = MsgType(5);
    /// Server → client: map anonymous memory in the client.
    pub const ANONMMAP: MsgType = MsgType(6);
    /// Client → server: prepare a fork, answered with a cookie.
    pub const PREFORK: MsgType = MsgType(7);
    /// Server → client: raise a signal (`u` = NetBSD signal number); never answered.
    pub const RAISE: MsgType = MsgType(8);
    /// A syscall carrying prefetched client memory; only after a fast handshake
    /// (docs/sp-fastpath.md).
    pub const SYSCALL_FAST: MsgType = MsgType(9);
}

/// HANDSHAKE request subtype, carried in `u` (§5.3).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub struct HandshakeType(pub u32);

impl HandshakeType {
    /// A new process, child of init.
    pub const GUEST: HandshakeType = HandshakeType(0);
    /// Reserved, never implemented (the server answers ERROR AUTH).
    pub const AUTH: HandshakeType = HandshakeType(1);
    /// Claim a process prepared by PREFORK; payload is `struct handshake_fork`.
    pub const FORK: HandshakeType = HandshakeType(2);
    /// Same process, new program image on the same connection.
    pub const EXEC: HandshakeType = HandshakeType(3);
}

/// Error code of an ERROR frame, carried in `u` (§5.4).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// No error (never sent).
    pub const NONE: ErrorCode = ErrorCode(0);
    /// The server is out of resources for this request; a SYSCALL is simply re-sent.
    pub const TRYAGAIN: ErrorCode = ErrorCode(1);
    /// Wrong first frame or handshake subtype.
    pub const AUTH: ErrorCode = ErrorCode(2);
    /// FORK handshake with an unknown cookie.
    pub const INVALID_PREFORK: ErrorCode = ErrorCode(3);
    /// Process creation failed during PREFORK or FORK.
    pub const RFORK_FAILED: ErrorCode = ErrorCode(4);
    /// PREFORK or EXEC while an EXEC is in progress.
    pub const INEXEC: ErrorCode = ErrorCode(5);
    /// Bookkeeping allocation failed.
    pub const NOMEM: ErrorCode = ErrorCode(6);
    /// A request that is not valid in the connection's state.
    pub const MALFORMED_REQUEST: ErrorCode = ErrorCode(7);

    /// The reference's name for the code (`"TRYAGAIN"`, …), `"UNKNOWN"` for other values.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "NONE",
            1 => "TRYAGAIN",
            2 => "AUTH",
            3 => "INVALID_PREFORK",
            4 => "RFORK_FAILED",
            5 => "INEXEC",
            6 => "NOMEM",
            7 => "MALFORMED_REQUEST",
            _ => "UNKNOWN",
        }
    }

    /// The errno librumpclient reports for this code (`errmap`, §5.4), as a **NetBSD** number.
    ///
    /// librumpclient maps to host errno values; apart from `EAGAIN` (35 on NetBSD, 11 on
    /// Linux) every value in the table is the same number on NetBSD and Linux. Unknown codes
    /// map to `EINVAL`.
    pub fn errno(self) -> i32 {
        match self.0 {
            0 => 0,
            1 => 35, // EAGAIN
            2 => 1,  // EPERM
            3 => 3,  // ESRCH
            4 => 5,  // EIO
            5 => 16, // EBUSY
            6 => 12, // ENOMEM
            _ => 22, // EINVAL
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sp error {} ({})", self.name(), self.0)
    }
}

/// The fixed frame header (§4.1).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Header {
    /// Total frame length, header included.
    pub len: u64,
    /// Request number; a response echoes its request's (§7).
    pub reqno: u64,
    /// REQ, RESP or ERROR.
    pub class: Class,
    /// Message type.
    pub typ: MsgType,
    /// Syscall number, handshake subtype, error code or signal number; 0 otherwise.
    pub u: u32,
}

impl Header {
    /// The header in wire format (little-endian).
    pub fn to_bytes(&self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[0..8].copy_from_slice(&self.len.to_le_bytes());
        b[8..16].copy_from_slice(&self.reqno.to_le_bytes());
        b[16..18].copy_from_slice(&self.class.0.to_le_bytes());
        b[18..20].copy_from_slice(&self.typ.0.to_le_bytes());
        b[20..24].copy_from_slice(&self.u.to_le_bytes());
        b
    }

    /// Parses a header; every bit pattern is a header (validation is the decoder's job).
    pub fn from_bytes(b: &[u8; 24]) -> Header {
        let u64_at = |o: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(x)
        };
        Header {
            len: u64_at(0),
            reqno: u64_at(8),
            class: Class(u16::from_le_bytes([b[16], b[17]])),
            typ: MsgType(u16::from_le_bytes([b[18], b[19]])),
            u: u32::from_le_bytes([b[20], b[21], b[22], b[23]]),
        }
    }

    /// `len − 24`, or 0 if `len` is smaller than a header; saturates at `usize::MAX`.
    pub fn payload_len(&self) -> usize {
        usize::try_from(self.len.saturating_sub(crate::HEADER_LEN as u64)).unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = Header {
            len: 0x0102_0304_0506_0708,
            reqno: 0x1112_1314_1516_1718,
            class: Class(0x2122),
            typ: MsgType(0x3132),
            u: 0x4142_4344,
        };
        let b = h.to_bytes();
        assert_eq!(
            b,
            [
                8, 7, 6, 5, 4, 3, 2, 1, 0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11, 0x22, 0x21,
                0x32, 0x31, 0x44, 0x43, 0x42, 0x41
            ]
        );
        assert_eq!(Header::from_bytes(&b), h);
        assert_eq!(h.payload_len(), 0x0102_0304_0506_0708 - 24);
        let small = Header { len: 3, ..h };
        assert_eq!(small.payload_len(), 0);
    }

    #[test]
    fn enum_values() {
        assert_eq!([Class::REQ.0, Class::RESP.0, Class::ERROR.0], [0, 1, 2]);
        let types = [
            MsgType::HANDSHAKE,
            MsgType::SYSCALL,
            MsgType::COPYIN,
            MsgType::COPYINSTR,
            MsgType::COPYOUT,
            MsgType::COPYOUTSTR,
            MsgType::ANONMMAP,
            MsgType::PREFORK,
            MsgType::RAISE,
        ];
        for (i, t) in types.iter().enumerate() {
            assert_eq!(t.0 as usize, i);
        }
        assert_eq!(HandshakeType::GUEST.0, 0);
        assert_eq!(HandshakeType::AUTH.0, 1);
        assert_eq!(HandshakeType::FORK.0, 2);
        assert_eq!(HandshakeType::EXEC.0, 3);
        let names = [
            "NONE",
            "TRYAGAIN",
            "AUTH",
            "INVALID_PREFORK",
            "RFORK_FAILED",
            "INEXEC",
            "NOMEM",
            "MALFORMED_REQUEST",
        ];
        for (i, n) in names.iter().enumerate() {
            assert_eq!(ErrorCode(i as u32).name(), *n);
        }
        assert_eq!(ErrorCode(8).name(), "UNKNOWN");
        assert_eq!(ErrorCode::MALFORMED_REQUEST, ErrorCode(7));
        let errnos: Vec<i32> = (0..9).map(|c| ErrorCode(c).errno()).collect();
        assert_eq!(errnos, [0, 35, 1, 3, 5, 16, 12, 22, 22]);
        assert_eq!(ErrorCode::AUTH.to_string(), "sp error AUTH (2)");
    }
}

//! The rump sysproxy ("sp") wire protocol: banner, frame header, incremental frame decoder,
//! payload parsers, frame encoders and URL parsing.
//!
//! This crate does no I/O. Everything follows `shared/docs/sp-protocol.md` (section numbers in
//! the doc comments refer to it). The protocol is native-endian on amd64, so every integer on
//! the wire is little-endian here.
//!
//! Allocation is bounded: the decoder buffers at most one incomplete frame whose length was
//! checked against its configured maximum before any payload byte is stored, and the encoders
//! reserve exactly the frame they append. The parsers never panic on any input.

mod decode;
mod encode;
pub mod fast;
mod header;
mod payload;
pub mod url;

pub use decode::{DecodeError, Frame, FrameDecoder};
pub use encode::*;
pub use header::{Class, ErrorCode, HandshakeType, Header, MsgType};
pub use payload::*;

/// Size of the fixed frame header (§4.1).
pub const HEADER_LEN: usize = 24;
/// Protocol major version announced in the banner (§3).
pub const PROTO_MAJOR: u32 = 0;
/// Protocol minor version announced in the banner (§3).
pub const PROTO_MINOR: u32 = 4;
/// Longest banner a client accepts, including the trailing `'\n'` (buffer of 96, §3).
pub const BANNER_MAX_LEN: usize = 95;
/// Maximum number of 8-byte syscall argument slots (§6.3).
pub const MAX_SYSCALL_ARGS: usize = 8;
/// Size of one syscall argument slot in bytes (§6.3).
pub const SYSCALL_ARG_SLOT: usize = 8;
/// Syscall numbers at or above this value are answered with `ENOSYS` (§6.3).
pub const SYS_NSYSENT: u32 = 512;
/// Length of a PREFORK cookie (§6.9).
pub const COOKIE_LEN: usize = 16;
/// Exact payload length of a HANDSHAKE FORK request (§6.1).
pub const HANDSHAKE_FORK_LEN: usize = 20;
/// Payload length of a SYSCALL response (§6.4).
pub const SYSCALL_RESP_LEN: usize = 24;
/// Length of the `len`/`addr` part of a copy request payload (§6.5).
pub const COPY_REQ_LEN: usize = 16;
/// Default maximum frame length (header included): 1 MiB of payload plus the header.
///
/// The reference has no limit at all (§4.2). 1 MiB of payload is far more than any request a
/// client legitimately sends (syscall arguments are ≤ 64 bytes, names a few KiB, copy
/// responses are as large as the server asks for), yet small enough that one connection
/// cannot make the decoder hold a large buffer. The server makes it configurable.
pub const DEFAULT_MAX_FRAME_LEN: usize = HEADER_LEN + (1 << 20);

/// Formats the banner `RUMPSP-<major>.<minor>-<ostype>-<osrelease>/<machine>\n` (§3).
///
/// # Panics
/// If the result is longer than [`BANNER_MAX_LEN`] (a client would reject it); the arguments
/// are compile-time constants of the server, so this is a programming error.
pub fn banner(ostype: &str, osrelease: &str, machine: &str) -> String {
    let b = format!("RUMPSP-{PROTO_MAJOR}.{PROTO_MINOR}-{ostype}-{osrelease}/{machine}\n");
    assert!(
        b.len() <= BANNER_MAX_LEN,
        "sp banner longer than {BANNER_MAX_LEN} bytes: {b:?}"
    );
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_matches_worked_example() {
        let b = banner("NetBSD", "10.0", "amd64");
        assert_eq!(b, "RUMPSP-0.4-NetBSD-10.0/amd64\n");
        let expect: &[u8] = &[
            0x52, 0x55, 0x4d, 0x50, 0x53, 0x50, 0x2d, 0x30, 0x2e, 0x34, 0x2d, 0x4e, 0x65, 0x74,
            0x42, 0x53, 0x44, 0x2d, 0x31, 0x30, 0x2e, 0x30, 0x2f, 0x61, 0x6d, 0x64, 0x36, 0x34,
            0x0a,
        ];
        assert_eq!(b.as_bytes(), expect);
        assert_eq!(
            banner("NetBSD", "10.1", "amd64"),
            "RUMPSP-0.4-NetBSD-10.1/amd64\n"
        );
    }

    #[test]
    fn banner_limit() {
        // 95 bytes exactly is fine: "RUMPSP-0.4-" (11) + "-" + "/" + "\n" = 14 fixed bytes.
        let rel = "x".repeat(95 - 14 - 6 - 5);
        assert_eq!(banner("NetBSD", &rel, "amd64").len(), 95);
        let r = std::panic::catch_unwind(|| banner("NetBSD", &format!("{rel}x"), "amd64"));
        assert!(r.is_err());
    }
}

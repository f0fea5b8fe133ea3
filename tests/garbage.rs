//! Untrusted clients: seeded random frames (any class, type, subtype, reqno, payload, with
//! and without a handshake, some truncated, some over the length limit) on many connections;
//! the server must answer or disconnect, never die, and keep serving a well-behaved client.
//!
//! Seed and size: `RUMP_GARBAGE_SEED`, `RUMP_GARBAGE_CONNS` (defaults 1 and 200).

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::Server;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One random frame: mostly plausible headers, sometimes nonsense.
fn frame(r: &mut Rng, out: &mut Vec<u8>) {
    let payload_len = match r.below(10) {
        0 => 0,
        1..=6 => r.below(80) as usize,
        7 | 8 => r.below(5000) as usize,
        _ => r.below(70_000) as usize,
    };
    let len = match r.below(20) {
        0 => r.below(24),             // shorter than a header
        1 => 1 << (20 + r.below(40)), // over the limit
        _ => 24 + payload_len as u64,
    };
    let class = if r.below(8) == 0 {
        r.below(65536) as u16
    } else {
        r.below(3) as u16
    };
    let typ = if r.below(8) == 0 {
        r.below(65536) as u16
    } else {
        r.below(9) as u16
    };
    let u = match r.below(4) {
        0 => r.below(4) as u32,   // handshake subtypes
        1 => r.below(600) as u32, // syscall numbers, some above 511
        2 => [3u32, 4, 6, 20, 41, 90, 92, 121, 5, 505][r.below(10) as usize],
        _ => r.next() as u32,
    };
    // reboot (208) would legitimately halt the server: everything else is fair game.
    let u = if u == 208 { 209 } else { u };
    let h = sp::Header {
        len,
        reqno: r.below(16),
        class: sp::Class(class),
        typ: sp::MsgType(typ),
        u,
    };
    out.extend_from_slice(&h.to_bytes());
    out.extend((0..payload_len).map(|_| r.next() as u8));
}

fn abuse(path: &std::path::Path, r: &mut Rng) {
    let Ok(mut s) = UnixStream::connect(path) else {
        return;
    };
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut banner = [0u8; 96];
    let _ = s.read(&mut banner);
    let mut out = Vec::new();
    if r.below(2) == 0 {
        sp::encode_handshake_req(&mut out, 1, sp::HandshakeType::GUEST, b"garbage\0");
    }
    for _ in 0..1 + r.below(12) {
        frame(r, &mut out);
    }
    if r.below(4) == 0 {
        out.truncate(r.below(out.len() as u64 + 1) as usize); // stop mid-frame
    }
    let _ = s.write_all(&out);
    let mut sink = [0u8; 4096];
    for _ in 0..3 {
        match s.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

#[test]
fn random_frames_never_take_the_server_down() {
    let seed = std::env::var("RUMP_GARBAGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1u64);
    let conns: usize = std::env::var("RUMP_GARBAGE_CONNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let mut srv = Server::unix(&["-lrumpvfs", "-c", "2"]);
    let path = srv.sock.clone().unwrap();
    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    for i in 0..conns {
        abuse(&path, &mut r);
        if i % 50 == 49 {
            assert!(
                srv.child.as_mut().unwrap().try_wait().unwrap().is_none(),
                "server died"
            );
            assert_eq!(srv.client().getpid().unwrap().1, 1, "after {i} connections");
        }
    }
    let mut c = srv.client();
    assert_eq!(c.write(1, b"survived\n").unwrap(), 9);
    srv.wait_stdout("survived\n");
    assert!(
        srv.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "server died"
    );
}

//! The cargo-fuzz harnesses of `sp/fuzz` on stable Rust: every checked-in regression input
//! (`sp/fuzz/regressions/<target>/`), then a bounded number of seeded random inputs, some
//! shaped like valid frame streams so that the deep paths are reached too.

#[path = "../fuzz/src/lib.rs"]
mod harness;

#[path = "../../testsupport/replay.rs"]
mod support;

use std::path::Path;
use support::Rng;

/// Runs `f` on every file in `sp/fuzz/regressions/<target>/`; returns how many there were.
fn replay(target: &str, f: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    support::replay(&dir.join(target), f)
}

/// A stream of plausible frames (mostly valid lengths, sometimes not).
fn frame_stream(r: &mut Rng) -> Vec<u8> {
    let mut s = Vec::new();
    for _ in 0..r.below(12) {
        let payload = r.below(120) as usize;
        let len = match r.below(30) {
            0 => r.below(24),
            1 => r.next(),
            _ => (24 + payload) as u64,
        };
        let h = sp::Header {
            len,
            reqno: r.below(8),
            class: sp::Class(r.below(4) as u16),
            typ: sp::MsgType(r.below(10) as u16),
            u: r.below(600) as u32,
        };
        s.extend_from_slice(&h.to_bytes());
        s.extend(r.bytes(payload));
    }
    if r.below(3) == 0 {
        let cut = r.below(s.len() as u64 + 1) as usize;
        s.truncate(cut);
    }
    s
}

#[test]
fn frame_decoder() {
    replay("frame_decoder", harness::frame_decoder);
    let mut r = Rng(0x5eed_0001);
    for _ in 0..3000 {
        let mut input = Vec::new();
        input.extend_from_slice(&(r.below(400) as u16).to_le_bytes());
        input.extend(r.bytes(4));
        if r.below(4) == 0 {
            let n = r.below(300) as usize;
            input.extend(r.bytes(n));
        } else {
            input.extend(frame_stream(&mut r));
        }
        harness::frame_decoder(&input);
    }
}

#[test]
fn payloads() {
    replay("payloads", harness::payloads);
    let mut r = Rng(0x5eed_0002);
    for _ in 0..5000 {
        let n = r.below(120) as usize;
        let mut input = r.bytes(25 + n);
        if r.below(2) == 0 {
            input[9..17].copy_from_slice(&r.below(64).to_le_bytes());
        }
        harness::payloads(&input);
    }
}

#[test]
fn url() {
    replay("url", harness::url);
    let mut r = Rng(0x5eed_0003);
    let parts = [
        "unix://",
        "unix:///",
        "tcp://",
        "tcp6://",
        "://",
        "0",
        "*",
        ":",
        "/",
        "127.0.0.1",
        "65535",
        "65536",
        "3755",
        "a",
        "..",
        "x".repeat(60).leak(),
        "255.255.255.255",
        "junk",
    ];
    for _ in 0..5000 {
        let mut s = vec![r.below(2) as u8];
        for _ in 0..r.below(6) {
            s.extend_from_slice(parts[r.below(parts.len() as u64) as usize].as_bytes());
        }
        if r.below(5) == 0 {
            let n = r.below(20) as usize;
            s.extend(r.bytes(n));
        }
        harness::url(&s);
    }
}

#[test]
fn fast() {
    replay("fast", harness::fast);
    let mut r = Rng(0x5eed_0004);
    for i in 0..4000 {
        let mut input = vec![
            r.below(70) as u8,
            r.below(256) as u8,
            r.below(8) as u8,
            i as u8,
        ];
        if i % 2 == 0 {
            // A plausible SYSCALL_FAST payload, then mutated.
            let n = r.below(6);
            let k = 8 * r.below(9) as usize;
            input.extend_from_slice(&(k as u32).to_le_bytes());
            input.extend_from_slice(&(n as u32).to_le_bytes());
            input.extend(r.bytes(k));
            let mut a = 0x1000u64;
            let mut total = 0;
            for _ in 0..n {
                a += r.below(40);
                let l = r.below(20);
                input.extend_from_slice(&a.to_le_bytes());
                input.extend_from_slice(&l.to_le_bytes());
                a += l;
                total += l as usize;
            }
            let k = total + (r.below(4) == 0) as usize;
            input.extend(r.bytes(k));
            if r.below(4) == 0 {
                let k = r.below(input.len() as u64) as usize;
                input[k] ^= 1 << r.below(8);
            }
        } else {
            let n = r.below(100) as usize;
            input.extend(r.bytes(n));
        }
        harness::fast(&input);
    }
}

//! The ktrace(2) probe whose answers NetBSD's rump_server recorded in
//! `tests/oracle/ktrace.netbsd`: argument and permission errors of ktrace(2), then a process
//! that traces itself (syscalls, returns, names, I/O) into a file it created, makes a few
//! calls, stops, and reads the trace file back. Each record is shown by its deterministic
//! fields: type, length, version, pid relative to the traced one, comm, lwp id and the
//! payload fields that do not depend on addresses or times. Run against any server with
//! `cargo run --example oracle_ktrace -- URL` (`rump_server -lrumpvfs URL`, fresh: the probe
//! halts it at the end); `tests/oracle_ktrace.rs` runs it against ours and compares.

use std::ffi::CString;

use client::fs::{O_CREAT, O_RDONLY, O_RDWR};
use client::{Buf, Client};

use crate::transcript::{connect, Transcript};

const SYS_KTRACE: u32 = 45;
const SYS_SETUID: u32 = 23;
/// KTROP_SET with KTRFACv2, as ktrace(1) asks.
const KTROP_SET: u64 = 2 << 24;
const KTROP_CLEAR: u64 = 1;
const KTROP_CLEARFILE: u64 = 2;
/// SYSCALL | SYSRET | NAMEI | GENIO.
const FACS: u64 = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4);
const RB_HALT: i32 = 0x8;
const RB_NOSYNC: i32 = 0x4;
/// `sizeof(struct ktr_header)` on amd64.
const HDR: usize = 56;

fn ktrace(
    c: &mut Client,
    path: Option<&str>,
    ops: u64,
    facs: u64,
    pid: i64,
) -> client::Result<[i64; 2]> {
    match path {
        Some(p) => {
            let p = CString::new(p).unwrap();
            let b = p.as_bytes_with_nul();
            c.syscall(
                SYS_KTRACE,
                &[client::addr_of(b), ops, facs, pid as u64],
                &mut [Buf::In(b)],
            )
        }
        None => c.syscall(SYS_KTRACE, &[0, ops, facs, pid as u64], &mut []),
    }
}

fn i32_at(b: &[u8], o: usize) -> i32 {
    i32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn i64_at(b: &[u8], o: usize) -> i64 {
    i64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// The records of a trace file, one line each.
fn records(file: &[u8], pid: i32) -> Vec<String> {
    let mut out = Vec::new();
    let mut o = 0;
    while o + HDR <= file.len() {
        let h = &file[o..o + HDR];
        let len = i32_at(h, 0);
        let ty = i16::from_le_bytes([h[4], h[5]]);
        let ver = i16::from_le_bytes([h[6], h[7]]);
        let rpid = i32_at(h, 8) - pid;
        let comm = String::from_utf8_lossy(h[12..29].split(|&b| b == 0).next().unwrap_or(&[]))
            .into_owned();
        let lid = i32_at(h, 48);
        let Ok(n) = usize::try_from(len) else {
            out.push(format!("bad length {len}"));
            break;
        };
        let Some(p) = file.get(o + HDR..o + HDR + n) else {
            out.push(format!("truncated record len {len}"));
            break;
        };
        let body = match ty {
            1 if n >= 8 => format!("code {} argsize {}", i32_at(p, 0), i32_at(p, 4)),
            2 if n >= 24 => {
                let code = i16::from_le_bytes([p[0], p[1]]);
                let err = i32_at(p, 4);
                // getpid's return values are pids: shown relative to the traced one.
                let (r0, r1) = match code {
                    20 => (i64_at(p, 8) - i64::from(pid), i64_at(p, 16)),
                    _ => (i64_at(p, 8), i64_at(p, 16)),
                };
                format!("code {code} error {err} retval {r0} {r1}")
            }
            3 => format!("path {:?}", String::from_utf8_lossy(p)),
            4 if n >= 8 => format!(
                "fd {} rw {} data {} {:?}",
                i32_at(p, 0),
                i32_at(p, 4),
                n - 8,
                String::from_utf8_lossy(&p[8..n.min(16)])
            ),
            _ => String::new(),
        };
        out.push(format!(
            "type {ty} len {len} version {ver} pid+{rpid} comm {comm} lid {lid} {body}"
        ));
        o += HDR + n;
    }
    if o != file.len() {
        out.push(format!("{} trailing bytes", file.len() - o));
    }
    out
}

/// Runs the probe against the server at `url` and returns its transcript.
pub fn run(url: &str) -> Transcript {
    let mut t = Transcript::default();
    let mut c = connect(url, "kttest");
    let pid = c.getpid().map(|p| p.0).unwrap_or(0);
    t.unit(
        "ktrace missing file",
        ktrace(&mut c, Some("/kt.out"), KTROP_SET, FACS, pid.into()),
    );
    t.step(
        "create /kt.out",
        c.open("/kt.out", O_RDWR | O_CREAT, 0o600)
            .and_then(|fd| c.close(fd)),
        |_| String::new(),
    );
    t.unit(
        "ktrace no such pid",
        ktrace(&mut c, Some("/kt.out"), KTROP_SET, FACS, 999_999),
    );
    t.unit(
        "ktrace bad ops",
        ktrace(&mut c, Some("/kt.out"), 3, FACS, pid.into()),
    );
    t.unit(
        "ktrace clear untraced",
        ktrace(&mut c, None, KTROP_CLEAR, FACS, pid.into()),
    );
    t.unit(
        "ktrace clearfile no file",
        ktrace(&mut c, None, KTROP_CLEARFILE, 0, 0),
    );
    // Another uid may not trace root's process.
    let mut u = connect(url, "ktuser");
    t.unit("setuid 1000", u.syscall(SYS_SETUID, &[1000], &mut []));
    let made = c
        .open("/u.out", O_RDWR | O_CREAT, 0o600)
        .and_then(|fd| c.close(fd));
    t.unit("create /u.out", made.and_then(|_| c.chmod("/u.out", 0o666)));
    t.unit(
        "ktrace root's pid as uid 1000",
        ktrace(&mut u, Some("/u.out"), KTROP_SET, FACS, pid.into()),
    );
    t.unit(
        "ktrace pgrp as uid 1000",
        ktrace(&mut u, Some("/u.out"), KTROP_SET, FACS, -i64::from(pid)),
    );
    drop(u);
    // The traced sequence.
    t.unit(
        "ktrace set self",
        ktrace(&mut c, Some("/kt.out"), KTROP_SET, FACS, pid.into()),
    );
    t.step("getpid traced", c.getpid(), |_| String::new());
    let fd = c.open("/f", O_RDWR | O_CREAT, 0o644).unwrap_or(-1);
    let _ = c.write(fd, b"hello");
    // pread into a buffer the server may read back (GENIO copies the data in again).
    let mut buf = [0u8; 8];
    let a = client::addr_of(&buf);
    let _ = c.syscall(173, &[fd as u64, a, 8, 0, 1], &mut [Buf::InOut(&mut buf)]);
    // writev of two buffers: one GENIO record; 5000 bytes: two (a page each at most).
    let (x, y) = (*b"ab", *b"cd");
    let mut iov = Vec::new();
    for v in [&x[..], &y[..]] {
        iov.extend_from_slice(&client::addr_of(v).to_le_bytes());
        iov.extend_from_slice(&(v.len() as u64).to_le_bytes());
    }
    let ia = client::addr_of(&iov);
    let _ = c.syscall(
        121,
        &[fd as u64, ia, 2],
        &mut [Buf::In(&iov), Buf::In(&x), Buf::In(&y)],
    );
    let _ = c.write(fd, &[b'z'; 5000]);
    // ioctls: FIONBIO's argument is copied in (a write record), FIONREAD's result out (a
    // read record; the buffer must be readable again).
    let on = 1i32.to_le_bytes();
    let _ = c.syscall(
        54,
        &[fd as u64, 0x8004_667e, client::addr_of(&on)],
        &mut [Buf::In(&on)],
    );
    let mut nread = [0u8; 4];
    let na = client::addr_of(&nread);
    let _ = c.syscall(
        54,
        &[fd as u64, 0x4004_667f, na],
        &mut [Buf::InOut(&mut nread)],
    );
    let _ = c.close(fd);
    let _ = c.stat("/nonexistent");
    t.unit(
        "ktrace clear self",
        ktrace(&mut c, None, KTROP_CLEAR, FACS, pid.into()),
    );
    let _ = c.getpid();
    // NetBSD writes records from its ktrace thread: give it time.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let mut file = vec![0u8; 65536];
    let n = c
        .open("/kt.out", O_RDONLY, 0)
        .and_then(|fd| c.pread(fd, &mut file, 0));
    t.step(
        "read /kt.out",
        n.as_ref().map(|n| *n).map_err(clone_err),
        |n| format!("{n} bytes"),
    );
    if let Ok(n) = n {
        for r in records(&file[..n], pid) {
            t.0.push(format!("record: {r}"));
        }
    }
    // Tracing again, then KTROP_CLEARFILE by root stops every trace to the file.
    t.unit(
        "ktrace set again",
        ktrace(&mut c, Some("/kt.out"), KTROP_SET, 1 << 1, pid.into()),
    );
    t.unit(
        "ktrace clearfile",
        ktrace(&mut c, Some("/kt.out"), KTROP_CLEARFILE, 0, 0),
    );
    t.unit(
        "ktrace clear after clearfile",
        ktrace(&mut c, None, KTROP_CLEAR, FACS, pid.into()),
    );
    // NetBSD's server may be gone by now (see tests/oracle_ktrace.rs).
    match client::Client::connect_named(url, "halt") {
        Ok(mut root) => t.unit("halt by root", root.reboot(RB_HALT | RB_NOSYNC, None)),
        Err(e) => t.0.push(format!("halt by root: failed ({e})")),
    }
    t
}

fn clone_err(e: &client::Error) -> client::Error {
    match e.errno() {
        Some(n) => client::Error::Errno(n),
        None => client::Error::Protocol(e.to_string()),
    }
}

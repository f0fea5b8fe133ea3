//! NetBSD as the oracle for ktrace(2): the probe of `tests/oracle/ktrace.rs` was run against
//! NetBSD's rump_server (`rump_server -lrumpvfs URL`, then
//! `cargo run --example oracle_ktrace -- URL > tests/oracle/ktrace.netbsd`) and our server
//! must answer every step as NetBSD did, except the steps in `DIFFERENCES`.
//!
//! NetBSD's server dies at the first traced call after `getpid` (the connection breaks and the
//! server is gone), so its transcript has no records: ours are checked against the layout of
//! `sys/ktrace.h` (amd64, version 2) in `RECORDS`, which kdump reads.

mod common;

#[path = "oracle/ktrace.rs"]
mod ktrace;
#[path = "oracle/transcript.rs"]
mod transcript;

use common::Server;

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/ktrace.netbsd");

/// Steps where our answer differs from NetBSD's on purpose: (step, our line, why).
const DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "ktrace root's pid as uid 1000",
        "ktrace root's pid as uid 1000: errno 1",
        "a rump kernel has no secmodel, so NetBSD's kauth lets any uid trace any process \
         (and read its I/O); ours applies secmodel_bsd44's rule: root, or the same uids",
    ),
    (
        "ktrace clear self",
        "ktrace clear self: ok",
        "NetBSD's server is dead by then (it dies in one of the traced calls after getpid)",
    ),
    ("read /kt.out", "read /kt.out: ok 7349 bytes", "as above"),
    ("ktrace set again", "ktrace set again: ok", "as above"),
    ("ktrace clearfile", "ktrace clearfile: ok", "as above"),
    (
        "ktrace clear after clearfile",
        "ktrace clear after clearfile: ok",
        "as above",
    ),
    ("halt by root", "halt by root: ok", "as above"),
];

/// Our records for the traced sequence (getpid, open, write, pread, writev, a 5000-byte
/// write, FIONBIO and FIONREAD ioctls, close, stat of a missing name, the clearing ktrace): call and return records, pids
/// relative to the traced process, argument sizes = `sy_narg` × 8, the path of each lookup
/// with its NUL between them (`namei_ktrace`), the data moved by each transfer in records of
/// at most a page (`ktr_io`: 8 bytes of `ktr_genio` + 4088) and an ioctl's argument in and
/// result out (`sys_ioctl`), the clearing call with no
/// return record.
const RECORDS: &[&str] = &[
    "type 1 len 8 version 2 pid+0 comm kttest lid 1 code 20 argsize 0",
    "type 2 len 24 version 2 pid+0 comm kttest lid 1 code 20 error 0 retval 0 1",
    "type 1 len 40 version 2 pid+0 comm kttest lid 1 code 468 argsize 32",
    "type 3 len 3 version 2 pid+0 comm kttest lid 1 path \"/f\\0\"",
    "type 2 len 24 version 2 pid+0 comm kttest lid 1 code 468 error 0 retval 3 0",
    "type 1 len 32 version 2 pid+0 comm kttest lid 1 code 4 argsize 24",
    "type 4 len 13 version 2 pid+0 comm kttest lid 1 fd 3 rw 1 data 5 \"hello\"",
    "type 2 len 24 version 2 pid+0 comm kttest lid 1 code 4 error 0 retval 5 0",
    "type 1 len 48 version 2 pid+0 comm kttest lid 1 code 173 argsize 40",
    "type 4 len 12 version 2 pid+0 comm kttest lid 1 fd 3 rw 0 data 4 \"ello\"",
    "type 2 len 24 version 2 pid+0 comm kttest lid 1 code 173 error 0 retval 4 0",
    "type 1 len 32 version 2 pid+0 comm kttest lid 1 code 121 argsize 24",
    "type 4 len 12 version 2 pid+0 comm kttest lid 1 fd 3 rw 1 data 4 \"abcd\"",
    "type 2 len 24 version 2 pid+0 comm kttest lid 1 code 121 error 0 retval 4 0",
    "type 1 len 32 version 2 pid+0 comm kttest lid 1 code 4 argsize 24",
    "type 4 len 4096 version 2 pid+0 comm kttest lid 1 fd 3 rw 1 data 4088 \"zzzzzzzz\"",
    "type 4 len 920 version 2 pid+0 comm kttest lid 1 fd 3 rw 1 data 912 \"zzzzzzzz\"",
    "type 2 len 24 version 2 pid+0 comm kttest lid 1 code 4 error 0 retval 5000 0",
    "type 1 len 32 version 2 pid+0 comm kttest lid 1 code 54 argsize 24",
    "type 4 len 12 version 2 pid+0 comm kttest lid 1 fd 3 rw 1 data 4 \"\\u{1}\\0\\0\\0\"",
    "type 2 len 24 version 2 pid+0 comm kttest lid 1 code 54 error 0 retval 0 0",
    "type 1 len 32 version 2 pid+0 comm kttest lid 1 code 54 argsize 24",
    "type 4 len 12 version 2 pid+0 comm kttest lid 1 fd 3 rw 0 data 4 \"\\0\\0\\0\\0\"",
    "type 2 len 24 version 2 pid+0 comm kttest lid 1 code 54 error 0 retval 0 0",
    "type 1 len 16 version 2 pid+0 comm kttest lid 1 code 6 argsize 8",
    "type 2 len 24 version 2 pid+0 comm kttest lid 1 code 6 error 0 retval 0 0",
    "type 1 len 24 version 2 pid+0 comm kttest lid 1 code 439 argsize 16",
    "type 3 len 13 version 2 pid+0 comm kttest lid 1 path \"/nonexistent\\0\"",
    "type 2 len 24 version 2 pid+0 comm kttest lid 1 code 439 error 2 retval 0 0",
    "type 1 len 40 version 2 pid+0 comm kttest lid 1 code 45 argsize 32",
];

#[test]
fn ktrace_probe_answers_as_netbsd() {
    let srv = Server::unix(&["-lrumpvfs"]);
    let all = ktrace::run(&srv.url).0;
    let (records, ours): (Vec<&String>, Vec<&String>) =
        all.iter().partition(|l| l.starts_with("record: "));
    let theirs: Vec<&str> = NETBSD.lines().collect();
    let mut bad = Vec::new();
    for (i, (o, n)) in ours.iter().zip(&theirs).enumerate() {
        if o.as_str() == *n {
            continue;
        }
        let step = n.split(':').next().unwrap_or("");
        match DIFFERENCES.iter().find(|d| d.0 == step) {
            Some((_, line, _)) if line == o => {}
            _ => bad.push(format!("line {}: ours `{o}`, NetBSD `{n}`", i + 1)),
        }
    }
    assert_eq!(ours.len(), theirs.len(), "transcript lengths: {all:#?}");
    assert!(
        bad.is_empty(),
        "differences from NetBSD:\n{}",
        bad.join("\n")
    );
    let records: Vec<&str> = records.iter().map(|r| &r["record: ".len()..]).collect();
    assert_eq!(records, RECORDS);
    for (step, line, why) in DIFFERENCES {
        assert!(
            ours.iter().any(|o| o == line),
            "documented difference `{step}` ({why}) no longer seen"
        );
    }
}

/// A trace into a full file system ends the tracing (NetBSD's `ktrderror`): the file stops
/// growing, even once there is room again, and the traced process's calls go on.
#[test]
fn full_trace_file_stops_tracing() {
    use client::fs::{tmpfs_args, O_CREAT, O_RDWR};
    use client::Buf;
    let srv = Server::unix(&["-lrumpvfs", "-lrumpfs_tmpfs"]);
    let mut c = transcript::connect(&srv.url, "full");
    c.mkdir("/small", 0o755).unwrap();
    c.mount_tmpfs("/small", 0, &tmpfs_args(256 << 10, 0, 0, 0, 0o755))
        .unwrap();
    let fd = c.open("/small/kt", O_RDWR | O_CREAT, 0o600).unwrap();
    c.close(fd).unwrap();
    // 64 KiB to free once the trace has failed.
    let fill = c.open("/small/fill", O_RDWR | O_CREAT, 0o600).unwrap();
    c.write(fill, &[7u8; 64 << 10]).unwrap();
    c.close(fill).unwrap();
    let pid = c.getpid().unwrap().0;
    let name = b"/small/kt\0";
    let facs = (1 << 1) | (1 << 2);
    c.syscall(
        45,
        &[client::addr_of(name), 2 << 24, facs, pid as u64],
        &mut [Buf::In(name)],
    )
    .unwrap();
    // Each getpid adds 144 bytes: 256 KiB fills within 2000 calls.
    for _ in 0..4000 {
        c.getpid().unwrap();
    }
    let full = c.stat("/small/kt").unwrap().size;
    assert!(
        full > 120 << 10 && full <= 192 << 10,
        "trace file size {full}"
    );
    // Room again: a process still traced would grow the file.
    c.unlink("/small/fill").unwrap();
    for _ in 0..100 {
        c.getpid().unwrap();
    }
    assert_eq!(c.stat("/small/kt").unwrap().size, full, "tracing went on");
}

/// `KTRFAC_INHERIT` (`ktrace -i`): a fork child traces to its parent's file (`fork1`); without
/// it the child is not traced.
#[test]
fn inherit_follows_fork() {
    use client::fs::{O_CREAT, O_RDONLY, O_RDWR};
    use client::{Buf, Client};
    let srv = Server::unix(&["-lrumpvfs"]);
    for (inherit, child_records) in [(true, 2), (false, 0)] {
        let mut c = transcript::connect(&srv.url, "parent");
        let fd = c.open("/kt", O_RDWR | O_CREAT, 0o600).unwrap();
        c.ftruncate(fd, 0).unwrap();
        c.close(fd).unwrap();
        let pid = c.getpid().unwrap().0;
        let name = b"/kt\0";
        let facs = (1u64 << 1) | (1 << 2) | if inherit { 0x4000_0000 } else { 0 };
        c.syscall(
            45,
            &[client::addr_of(name), 2 << 24, facs, pid as u64],
            &mut [Buf::In(name)],
        )
        .unwrap();
        let cookie = c.prefork().unwrap();
        let mut child = Client::connect_fork(&srv.url, &cookie).unwrap();
        let cpid = child.getpid().unwrap().0;
        drop(child);
        c.syscall(45, &[0, 1, facs, pid as u64], &mut []).unwrap();
        let mut file = vec![0u8; 8192];
        let fd = c.open("/kt", O_RDONLY, 0).unwrap();
        let n = c.pread(fd, &mut file, 0).unwrap();
        let mut o = 0;
        let mut theirs = 0;
        while o + 56 <= n {
            let len = i32::from_le_bytes(file[o..o + 4].try_into().unwrap()) as usize;
            let rpid = i32::from_le_bytes(file[o + 8..o + 12].try_into().unwrap());
            assert!(rpid == pid || rpid == cpid, "record of pid {rpid}");
            theirs += usize::from(rpid == cpid);
            o += 56 + len;
        }
        assert_eq!(o, n, "records end at the file's end");
        // getpid's call and return record.
        assert_eq!(
            theirs, child_records,
            "child records with inherit={inherit}"
        );
    }
}

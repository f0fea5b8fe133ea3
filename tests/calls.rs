//! The other calls NetBSD's programs make (issue 14), over the wire: a nanosleep sleeps
//! its whole time on the server's timer and a disconnect ends it at once (the process, its
//! connection slot and its descriptors are freed); resource limits hold per process.
//! NetBSD's own answers to these calls are compared in `tests/oracle_calls.rs`.

mod common;

use std::time::{Duration, Instant};

use client::{addr_of, Buf};
use common::{Raw, Server};

const SYS_NANOSLEEP: u32 = 430;
const SYS_CLOCK_NANOSLEEP: u32 = 477;

fn timespec(sec: i64, nsec: i64) -> [u8; 16] {
    let mut ts = [0u8; 16];
    ts[..8].copy_from_slice(&sec.to_le_bytes());
    ts[8..].copy_from_slice(&nsec.to_le_bytes());
    ts
}

#[test]
fn nanosleep_sleeps_its_time_on_every_loop() {
    let srv = Server::unix(&["-c", "2"]);
    // Two connections: one per loop.
    for _ in 0..2 {
        let mut c = srv.client();
        let rq = timespec(0, 80_000_000);
        let mut rm = [0xffu8; 16];
        let t = Instant::now();
        let args = [addr_of(&rq), addr_of(&rm)];
        let r = c.syscall(SYS_NANOSLEEP, &args, &mut [Buf::In(&rq), Buf::Out(&mut rm)]);
        let took = t.elapsed();
        assert_eq!(r.unwrap()[0], 0);
        assert!(took >= Duration::from_millis(80), "slept only {took:?}");
        assert!(took < Duration::from_secs(5), "slept {took:?}");
        assert_eq!(rm, timespec(0, 0), "nothing left");
        // Several sleeps in flight on one connection end by their own deadlines.
        let long = timespec(0, 300_000_000);
        let short = timespec(0, 50_000_000);
        let t = Instant::now();
        let a = c.send_syscall(SYS_NANOSLEEP, &[addr_of(&long), 0]).unwrap();
        let b = c.send_syscall(SYS_CLOCK_NANOSLEEP, &[3, 0, addr_of(&short), 0]);
        let b = b.unwrap();
        let mut mem = [Buf::In(&long), Buf::In(&short)];
        let (first, r) = c.recv_syscall(&mut mem).unwrap();
        assert_eq!((first, r.unwrap()[0]), (b, 0), "the short sleep ends first");
        assert!(t.elapsed() < Duration::from_millis(300));
        let (second, r) = c.recv_syscall(&mut mem).unwrap();
        assert_eq!((second, r.unwrap()[0]), (a, 0));
        assert!(t.elapsed() >= Duration::from_millis(300));
    }
}

#[test]
fn a_disconnect_ends_a_nanosleep() {
    let srv = Server::unix_env(&[], &[("RUMP_MAX_CONNS", "2")]);
    common::connect_retry(&srv.url, "warm-up").getpid().unwrap();
    let sock = srv.sock.as_ref().unwrap();
    for _ in 0..2 {
        let mut raw = Raw::guest(sock);
        let mut out = Vec::new();
        sp::encode_syscall_req(&mut out, 2, SYS_NANOSLEEP, &[0x1000, 0]);
        raw.send(&out);
        let (h, _) = raw.read_frame().expect("COPYIN of the request");
        assert_eq!(h.typ, sp::MsgType::COPYIN);
        out.clear();
        sp::encode_copyin_resp(&mut out, h.reqno, &timespec(3600, 0));
        raw.send(&out);
        // It sleeps: no answer for a while.
        raw.s
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        assert!(raw.read_frame().is_none(), "answered before its hour");
        drop(raw);
    }
    // Both sleepers are gone with their connections: the two slots serve new clients.
    let t = Instant::now();
    let mut a = common::connect_retry(&srv.url, "after-a");
    let mut b = common::connect_retry(&srv.url, "after-b");
    let (pa, pb) = (a.getpid().unwrap().0, b.getpid().unwrap().0);
    assert!(pa != pb);
    assert!(t.elapsed() < Duration::from_secs(10));
}

/// The console at halt as NetBSD's rump_server prints it (recorded with
/// `/work/ref/rump_server -s -lrumpvfs unix://…` and `rump.halt`; with `-n`, no sync).
#[test]
fn halt_prints_netbsds_console_lines() {
    for (args, want) in [
        (
            &[][..],
            "rump kernel halting...\nsyncing disks... done\nunmounting file systems...\n\
             unmounting done\nhalted\n",
        ),
        (&["-n"][..], "rump kernel halting...\nhalted\n"),
    ] {
        let mut srv = Server::unix(&["-lrumpvfs"]);
        let out = srv.halt_with(std::path::Path::new(common::HALT), args);
        assert!(out.status.success());
        assert_eq!(srv.wait_exit(10).code(), Some(0));
        // The capture thread may still be reading the last lines after the exit.
        srv.wait_stdout(want);
        assert!(srv.stdout_text().ends_with(want), "{}", srv.stdout_text());
    }
}

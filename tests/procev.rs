//! kqueue's process filters beyond the oracle probe (tests/oracle_procev.rs): `EVFILT_SIGNAL`
//! counts the SIGXFSZ a write past `RLIMIT_FSIZE` raises, and a kevent(2) asleep without a
//! timeout wakes for a watched process's exit (`NOTE_EXIT`, `EV_EOF`).

mod common;

use std::time::{Duration, Instant};

use client::fs::{O_CREAT, O_RDWR};
use client::{addr_of, int_arg, Buf, Client};
use common::Server;

const SYS_KQUEUE: u32 = 344;
const SYS_KEVENT: u32 = 435;
const SYS_SETRLIMIT: u32 = 195;
const EVFILT_PROC: u32 = 4;
const EVFILT_SIGNAL: u32 = 5;
const EV_ADD: u32 = 1;
const EV_ONESHOT: u32 = 0x10;
const EV_EOF: u32 = 0x8000;
const NOTE_EXIT: u32 = 0x8000_0000;
const SIGXFSZ: u64 = 25;
const RLIMIT_FSIZE: u64 = 1;
const EFBIG: i32 = 27;

fn kev(ident: u64, filter: u32, fflags: u32) -> [u8; 40] {
    let mut b = [0u8; 40];
    b[..8].copy_from_slice(&ident.to_le_bytes());
    b[8..12].copy_from_slice(&filter.to_le_bytes());
    b[12..16].copy_from_slice(&EV_ADD.to_le_bytes());
    b[16..20].copy_from_slice(&fflags.to_le_bytes());
    b
}

/// Registers `k`, then waits for one event (`None`: no timeout); the event's
/// (ident, filter, flags, fflags, data).
fn kevent(
    c: &mut Client,
    kq: i32,
    k: Option<[u8; 40]>,
    ms: Option<i64>,
) -> Vec<(u64, u32, u32, u32, i64)> {
    let ch = k.unwrap_or([0; 40]);
    let mut out = [0u8; 40];
    let mut t = [0u8; 16];
    if let Some(ms) = ms {
        t[..8].copy_from_slice(&(ms / 1000).to_le_bytes());
        t[8..].copy_from_slice(&((ms % 1000) * 1_000_000).to_le_bytes());
    }
    let args = [
        int_arg(kq),
        addr_of(&ch),
        u64::from(k.is_some()),
        addr_of(&out),
        1,
        if ms.is_some() { addr_of(&t) } else { 0 },
    ];
    let n = c
        .syscall(
            SYS_KEVENT,
            &args,
            &mut [Buf::In(&ch), Buf::Out(&mut out), Buf::In(&t)],
        )
        .expect("kevent")[0];
    let e = &out;
    let w = |o: usize| u32::from_le_bytes(e[o..o + 4].try_into().unwrap());
    (0..n)
        .map(|_| {
            (
                u64::from_le_bytes(e[..8].try_into().unwrap()),
                w(8),
                w(12),
                w(16),
                i64::from_le_bytes(e[24..32].try_into().unwrap()),
            )
        })
        .collect()
}

#[test]
fn signal_filter_counts_sigxfsz() {
    let srv = Server::unix(&["-lrumpvfs"]);
    let mut c = Client::connect(&srv.url).unwrap();
    let kq = c.syscall(SYS_KQUEUE, &[], &mut []).unwrap()[0] as i32;
    assert!(kevent(&mut c, kq, Some(kev(SIGXFSZ, EVFILT_SIGNAL, 0)), Some(0)).is_empty());
    let lim = [16u64.to_le_bytes(), u64::MAX.to_le_bytes()].concat();
    c.syscall(
        SYS_SETRLIMIT,
        &[RLIMIT_FSIZE, addr_of(&lim)],
        &mut [Buf::In(&lim)],
    )
    .unwrap();
    let fd = c.open("/tmp/big", O_CREAT | O_RDWR, 0o644).unwrap();
    for _ in 0..3 {
        let e = c.write(fd, &[0u8; 64]).unwrap_err();
        assert_eq!(e.errno(), Some(EFBIG));
    }
    assert_eq!(c.last_signal(), Some(SIGXFSZ as u32));
    let ev = kevent(&mut c, kq, None, Some(0));
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].0, ev[0].1, ev[0].4),
        (SIGXFSZ, EVFILT_SIGNAL, 3),
        "{ev:?}"
    );
    // EV_CLEAR: counted again from zero.
    assert!(kevent(&mut c, kq, None, Some(0)).is_empty());
}

#[test]
fn a_sleeping_kevent_wakes_for_an_exit() {
    let srv = Server::unix(&[]);
    let mut c = Client::connect(&srv.url).unwrap();
    let kq = c.syscall(SYS_KQUEUE, &[], &mut []).unwrap()[0] as i32;
    let mut other = Client::connect(&srv.url).unwrap();
    let pid = other.getpid().unwrap().0 as u64;
    assert!(kevent(&mut c, kq, Some(kev(pid, EVFILT_PROC, NOTE_EXIT)), Some(0)).is_empty());
    let gone = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        drop(other);
    });
    let start = Instant::now();
    let ev = kevent(&mut c, kq, None, None);
    assert!(
        start.elapsed() >= Duration::from_millis(150),
        "woke early: {ev:?}"
    );
    gone.join().unwrap();
    assert_eq!(ev.len(), 1);
    let (ident, filter, flags, fflags, data) = ev[0];
    assert_eq!(
        (ident, filter, fflags, data),
        (pid, EVFILT_PROC, NOTE_EXIT, 0)
    );
    assert_eq!(flags & (EV_EOF | EV_ONESHOT), EV_EOF | EV_ONESHOT);
    // One-shot: gone once reported.
    assert!(kevent(&mut c, kq, None, Some(0)).is_empty());
}

//! The readiness probe (issue 14 item 2) whose answers NetBSD's rump_server recorded in
//! `tests/oracle/ready.netbsd`: poll/pollts on pipes (empty, written, full, closed ends),
//! FIFOs, tmpfs files and directories, the console's descriptors and invalid ones; select and
//! pselect on the same, with bad sets and timeouts; kqueue/kevent registration errors, the
//! data of `EVFILT_READ`/`EVFILT_WRITE`, `EV_ONESHOT`/`EV_CLEAR`/`EV_DISABLE`/`EV_RECEIPT`,
//! `EVFILT_VNODE` notes after write/chmod/link/rename/unlink/create, `EVFILT_TIMER`, and a
//! kqueue polled and watched. One line per step: `name: ok[ value]` or `name: errno N`.
//!
//! Run against any server with `cargo run --example oracle_ready -- URL` (the server started
//! as `rump_server -lrumpvfs -lrumpfs_tmpfs URL`, fresh: the probe halts it at the end);
//! `tests/oracle_ready.rs` runs it against ours and compares.

use std::ffi::CString;
use std::time::{Duration, Instant};

use client::fs::{tmpfs_args, O_CREAT, O_RDONLY, O_RDWR, O_WRONLY};
use client::{addr_of, int_arg, Buf, Client};

use crate::transcript::{connect, Transcript};

const SYS_MKFIFO: u32 = 132;
const SYS_POLL: u32 = 209;
const SYS_KQUEUE: u32 = 344;
const SYS_SELECT: u32 = 417;
const SYS_KEVENT: u32 = 435;
const SYS_PSELECT: u32 = 436;
const SYS_POLLTS: u32 = 437;
const SYS_KQUEUE1: u32 = 455;
const SYS_KEVENT100: u32 = 501;
const O_NONBLOCK: i32 = 0x4;
const POLLIN: i16 = 0x1;
const POLLOUT: i16 = 0x4;
const POLLRDNORM: i16 = 0x40;
const EVFILT_READ: u32 = 0;
const EVFILT_WRITE: u32 = 1;
const EVFILT_AIO: u32 = 2;
const EVFILT_VNODE: u32 = 3;
const EVFILT_TIMER: u32 = 6;
const EV_ADD: u32 = 1;
const EV_DELETE: u32 = 2;
const EV_ENABLE: u32 = 4;
const EV_DISABLE: u32 = 8;
const EV_ONESHOT: u32 = 0x10;
const EV_CLEAR: u32 = 0x20;
const EV_RECEIPT: u32 = 0x40;
const NOTE_ALL: u32 = 0x7f;
const RB_HALT: i32 = 0x8;
const RB_NOSYNC: i32 = 0x4;

impl Transcript {
    /// Records a descriptor-returning step and gives the descriptor (−1 on failure).
    fn fd(&mut self, name: &str, r: client::Result<i32>) -> i32 {
        let v = *r.as_ref().unwrap_or(&-1);
        self.step(name, r, |fd| fd.to_string());
        v
    }

    fn ret(&mut self, name: &str, r: client::Result<[i64; 2]>) {
        self.step(name, r, |v| v[0].to_string());
    }
}

/// poll(2) on `(fd, events)` pairs: the count and each `revents` in hex.
fn poll(c: &mut Client, fds: &[(i32, i16)], ms: i32) -> client::Result<String> {
    let mut b = Vec::new();
    for (fd, ev) in fds {
        b.extend_from_slice(&fd.to_le_bytes());
        b.extend_from_slice(&ev.to_le_bytes());
        b.extend_from_slice(&0i16.to_le_bytes());
    }
    let a = addr_of(&b);
    let n = fds.len() as u64;
    let r = c.syscall(SYS_POLL, &[a, n, int_arg(ms)], &mut [Buf::InOut(&mut b)])?;
    Ok(revents(r[0], &b))
}

fn revents(n: i64, b: &[u8]) -> String {
    let rs: Vec<String> = b
        .chunks(8)
        .map(|e| format!("{:#x}", u16::from_le_bytes([e[6], e[7]])))
        .collect();
    format!("{n} [{}]", rs.join(" "))
}

fn pollts(c: &mut Client, fd: i32, ev: i16, ts: Option<(i64, i64)>) -> client::Result<String> {
    let mut b = Vec::new();
    b.extend_from_slice(&fd.to_le_bytes());
    b.extend_from_slice(&ev.to_le_bytes());
    b.extend_from_slice(&0i16.to_le_bytes());
    let mut t = [0u8; 16];
    let mask = [0u8; 16];
    let ta = match ts {
        Some((s, ns)) => {
            t[..8].copy_from_slice(&s.to_le_bytes());
            t[8..].copy_from_slice(&ns.to_le_bytes());
            addr_of(&t)
        }
        None => 0,
    };
    let args = [addr_of(&b), 1, ta, addr_of(&mask)];
    let mut mem = [Buf::InOut(&mut b), Buf::In(&t), Buf::In(&mask)];
    let r = c.syscall(SYS_POLLTS, &args, &mut mem)?;
    Ok(revents(r[0], &b))
}

/// select(2) with read and write sets (bit lists), timeout `(sec, usec)`; the count and the
/// bits set on return.
fn select(
    c: &mut Client,
    nd: i32,
    rd: &[i32],
    wr: &[i32],
    tv: Option<(i64, i64)>,
    nr: u32,
) -> client::Result<String> {
    let mut r = [0u8; 16];
    let mut w = [0u8; 16];
    for &fd in rd {
        r[fd as usize / 8] |= 1 << (fd % 8);
    }
    for &fd in wr {
        w[fd as usize / 8] |= 1 << (fd % 8);
    }
    let mut t = [0u8; 16];
    let mask = [0u8; 16];
    let ta = match tv {
        Some((s, x)) => {
            t[..8].copy_from_slice(&s.to_le_bytes());
            t[8..].copy_from_slice(&x.to_le_bytes());
            addr_of(&t)
        }
        None => 0,
    };
    let mut args = vec![int_arg(nd), addr_of(&r), addr_of(&w), 0, ta];
    if nr == SYS_PSELECT {
        args.push(addr_of(&mask));
    }
    let (ra, wa) = (addr_of(&r), addr_of(&w));
    let mut mem = [
        Buf::InOut(&mut r),
        Buf::InOut(&mut w),
        Buf::In(&t),
        Buf::In(&mask),
    ];
    let _ = (ra, wa);
    let n = c.syscall(nr, &args, &mut mem)?;
    let bits = |s: &[u8]| -> Vec<usize> {
        (0..128)
            .filter(|i| s[i / 8] & (1 << (i % 8)) != 0)
            .collect()
    };
    Ok(format!("{} r{:?} w{:?}", n[0], bits(&r), bits(&w)))
}

/// One 40-byte `struct kevent`.
fn kev(ident: u64, filter: u32, flags: u32, fflags: u32, data: i64) -> [u8; 40] {
    let mut b = [0u8; 40];
    b[..8].copy_from_slice(&ident.to_le_bytes());
    b[8..12].copy_from_slice(&filter.to_le_bytes());
    b[12..16].copy_from_slice(&flags.to_le_bytes());
    b[16..20].copy_from_slice(&fflags.to_le_bytes());
    b[24..32].copy_from_slice(&data.to_le_bytes());
    b[32..40].copy_from_slice(&0x5eedu64.to_le_bytes());
    b
}

fn show_events(n: i64, out: &[u8], size: usize) -> String {
    let mut s = n.to_string();
    for e in out.chunks(size).take(n.max(0) as usize) {
        let ident = u64::from_le_bytes(e[..8].try_into().unwrap());
        let filter = u32::from_le_bytes(e[8..12].try_into().unwrap());
        let flags = u32::from_le_bytes(e[12..16].try_into().unwrap());
        let fflags = u32::from_le_bytes(e[16..20].try_into().unwrap());
        let data = i64::from_le_bytes(e[24..32].try_into().unwrap());
        let udata = u64::from_le_bytes(e[32..40].try_into().unwrap());
        s += &format!(" [{ident} {filter} {flags:#x} {fflags:#x} {data} {udata:#x}]");
    }
    s
}

/// kevent(2): `changes`, room for `nev` events, timeout `(sec, nsec)` (None: wait).
fn kevent(
    c: &mut Client,
    kq: i32,
    changes: &[[u8; 40]],
    nev: usize,
    ts: Option<(i64, i64)>,
) -> client::Result<String> {
    let ch: Vec<u8> = changes.concat();
    let mut out = vec![0u8; 40 * nev.max(1)];
    let mut t = [0u8; 16];
    let ta = match ts {
        Some((s, ns)) => {
            t[..8].copy_from_slice(&s.to_le_bytes());
            t[8..].copy_from_slice(&ns.to_le_bytes());
            addr_of(&t)
        }
        None => 0,
    };
    let ca = if ch.is_empty() { 0 } else { addr_of(&ch) };
    let args = [
        int_arg(kq),
        ca,
        changes.len() as u64,
        addr_of(&out),
        nev as u64,
        ta,
    ];
    let mut mem = [Buf::In(&ch), Buf::Out(&mut out), Buf::In(&t)];
    let r = c.syscall(SYS_KEVENT, &args, &mut mem)?;
    Ok(show_events(r[0], &out, 40))
}

const NOW: Option<(i64, i64)> = Some((0, 0));

fn mkfifo(c: &mut Client, path: &str) -> client::Result<[i64; 2]> {
    let p = CString::new(path).unwrap();
    let b = p.as_bytes_with_nul();
    c.syscall(SYS_MKFIFO, &[addr_of(b), 0o666], &mut [Buf::In(b)])
}

/// Runs the probe against the server at `url` and returns its transcript.
pub fn run(url: &str) -> Transcript {
    let mut t = Transcript::default();
    let mut c = connect(url, "ready");
    let _ = c.mkdir("/t", 0o777);
    let args = tmpfs_args(1 << 20, 0, 0, 0, 0o777);
    t.unit("mount tmpfs /t", c.mount_tmpfs("/t", 0, &args));
    poll_steps(&mut c, &mut t);
    select_steps(&mut c, &mut t);
    kqueue_steps(&mut c, &mut t);
    vnode_steps(&mut c, &mut t);
    timer_steps(&mut c, &mut t);
    let mut root = connect(url, "halt");
    t.unit("halt", root.reboot(RB_HALT | RB_NOSYNC, None));
    t
}

fn poll_steps(c: &mut Client, t: &mut Transcript) {
    let id = |s: String| s;
    t.step(
        "poll console",
        poll(c, &[(0, 0x47), (1, 0x47), (2, 0x47)], 0),
        id,
    );
    t.step(
        "poll invalid",
        poll(c, &[(99, POLLIN), (-1, POLLIN)], 0),
        id,
    );
    t.step("poll none", poll(c, &[], 0), id);
    let (r, w) = c.pipe().expect("pipe");
    t.0.push(format!("pipe: ok {r} {w}"));
    let ev = POLLIN | POLLOUT | POLLRDNORM;
    t.step("poll empty pipe", poll(c, &[(r, ev), (w, ev)], 0), id);
    t.unit("write 5", c.write(w, b"hello"));
    t.step("poll written pipe", poll(c, &[(r, ev), (w, ev)], 0), id);
    let start = Instant::now();
    let p = poll(c, &[(w, POLLIN)], 60);
    let waited = start.elapsed() >= Duration::from_millis(60);
    t.step("poll 60ms nothing", p, |s| format!("{s} waited {waited}"));
    t.step("poll timeout -5", poll(c, &[(r, POLLIN)], -5), id);
    t.ret("poll NULL", c.syscall(SYS_POLL, &[0, 1, 0], &mut []));
    t.ret(
        "poll nfds huge",
        c.syscall(SYS_POLL, &[0, 100_000, 0], &mut []),
    );
    t.step("pollts 0", pollts(c, r, POLLIN, NOW), id);
    t.step(
        "pollts nsec 1e9",
        pollts(c, r, POLLIN, Some((0, 1_000_000_000))),
        id,
    );
    t.step("pollts sec -1", pollts(c, r, POLLIN, Some((-1, 0))), id);
    t.unit("close w", c.close(w));
    t.step("poll reader, writer gone", poll(c, &[(r, ev)], 0), id);
    t.step(
        "poll reader, writer gone, no events",
        poll(c, &[(r, 0)], 0),
        id,
    );
    t.unit("close r", c.close(r));
    let (r, w) = c.pipe().expect("pipe");
    t.unit("close r", c.close(r));
    t.step("poll writer, reader gone", poll(c, &[(w, ev)], 0), id);
    t.unit("close w", c.close(w));
    // A full pipe.
    let mut fds = [0u8; 8];
    let a = addr_of(&fds);
    t.ret(
        "pipe2 nonblock",
        c.syscall(453, &[a, O_NONBLOCK as u64], &mut [Buf::Out(&mut fds)]),
    );
    let r = i32::from_le_bytes(fds[..4].try_into().unwrap());
    let w = i32::from_le_bytes(fds[4..].try_into().unwrap());
    let chunk = vec![7u8; 4096];
    let mut total = 0;
    while let Ok(n) = c.write(w, &chunk) {
        total += n;
        if total > 1 << 20 {
            break;
        }
    }
    t.0.push(format!("fill pipe: ok {total}"));
    t.step("poll full pipe", poll(c, &[(r, ev), (w, ev)], 0), id);
    let mut buf = vec![0u8; 4096];
    t.unit("read 4096", c.read(r, &mut buf));
    t.step("poll after a read", poll(c, &[(w, ev)], 0), id);
    t.unit("close r", c.close(r));
    t.unit("close w", c.close(w));
    // Files and directories on tmpfs.
    let f = t.fd("open /t/f", c.open("/t/f", O_RDWR | O_CREAT, 0o644));
    t.step("poll file", poll(c, &[(f, ev | 0x80)], 0), id);
    let d = c.open("/t", O_RDONLY, 0).unwrap_or(-1);
    t.step("poll dir", poll(c, &[(d, ev)], 0), id);
    t.unit("close dir", c.close(d));
    t.unit("close file", c.close(f));
    // FIFOs.
    t.ret("mkfifo", mkfifo(c, "/t/fifo"));
    let fr = t.fd(
        "open fifo reader",
        c.open("/t/fifo", O_RDONLY | O_NONBLOCK, 0),
    );
    t.step("poll fifo reader alone", poll(c, &[(fr, ev)], 0), id);
    let fw = t.fd(
        "open fifo writer",
        c.open("/t/fifo", O_WRONLY | O_NONBLOCK, 0),
    );
    t.step("poll fifo both", poll(c, &[(fr, ev), (fw, ev)], 0), id);
    t.unit("write fifo", c.write(fw, b"abc"));
    t.step("poll fifo data", poll(c, &[(fr, ev)], 0), id);
    t.unit("close fifo writer", c.close(fw));
    t.step("poll fifo writer gone", poll(c, &[(fr, ev)], 0), id);
    t.unit("close fifo reader", c.close(fr));
}

fn select_steps(c: &mut Client, t: &mut Transcript) {
    let id = |s: String| s;
    let (r, w) = c.pipe().expect("pipe");
    let z = Some((0, 0));
    t.step(
        "select empty pipe",
        select(c, 8, &[r], &[w], z, SYS_SELECT),
        id,
    );
    t.unit("write", c.write(w, b"x"));
    t.step(
        "select data",
        select(c, 8, &[r, w], &[r, w], z, SYS_SELECT),
        id,
    );
    t.step(
        "select console",
        select(c, 3, &[0, 1, 2], &[0, 1, 2], z, SYS_SELECT),
        id,
    );
    t.step(
        "select closed fd",
        select(c, 20, &[10], &[], z, SYS_SELECT),
        id,
    );
    t.step(
        "select fd past nd",
        select(c, 3, &[10], &[], z, SYS_SELECT),
        id,
    );
    t.step(
        "select fd 100 nd 101",
        select(c, 101, &[100], &[], z, SYS_SELECT),
        id,
    );
    t.step("select nd -1", select(c, -1, &[], &[], z, SYS_SELECT), id);
    t.step("select nd 0", select(c, 0, &[], &[], z, SYS_SELECT), id);
    t.step(
        "select usec 1e6",
        select(c, 8, &[w], &[], Some((0, 1_000_000)), SYS_SELECT),
        id,
    );
    t.step(
        "select sec -1",
        select(c, 8, &[w], &[], Some((-1, 0)), SYS_SELECT),
        id,
    );
    let start = Instant::now();
    let s = select(c, 8, &[w], &[], Some((0, 50_000)), SYS_SELECT);
    let waited = start.elapsed() >= Duration::from_millis(50);
    t.step("select 50ms nothing", s, |s| format!("{s} waited {waited}"));
    t.step("pselect data", select(c, 8, &[r], &[w], z, SYS_PSELECT), id);
    t.step(
        "pselect nsec 1e9",
        select(c, 8, &[r], &[], Some((0, 1_000_000_000)), SYS_PSELECT),
        id,
    );
    t.unit("close r", c.close(r));
    t.unit("close w", c.close(w));
}

fn kqueue_steps(c: &mut Client, t: &mut Transcript) {
    let id = |s: String| s;
    t.ret(
        "kqueue1 bad flags",
        c.syscall(SYS_KQUEUE1, &[0x1234_5678], &mut []),
    );
    let kq = t.fd(
        "kqueue",
        c.syscall(SYS_KQUEUE, &[], &mut []).map(|r| r[0] as i32),
    );
    t.step("fstat kqueue", c.fstat(kq), |s| {
        format!("mode {:#o} size {}", s.mode, s.size)
    });
    let mut b = [0u8; 8];
    t.unit("read kqueue", c.read(kq, &mut b));
    t.unit("write kqueue", c.write(kq, b"x"));
    let (r, w) = c.pipe().expect("pipe");
    t.0.push(format!("pipe: ok {r} {w}"));
    t.step("kevent on a pipe", kevent(c, r, &[], 1, NOW), id);
    t.step("kevent on fd 99", kevent(c, 99, &[], 1, NOW), id);
    t.step("kevent nothing", kevent(c, kq, &[], 4, NOW), id);
    let bad = kev(99, EVFILT_READ, EV_ADD, 0, 0);
    t.step("add read fd 99, no room", kevent(c, kq, &[bad], 0, NOW), id);
    t.step("add read fd 99, room", kevent(c, kq, &[bad], 2, NOW), id);
    let bad = kev(r as u64, 42, EV_ADD, 0, 0);
    t.step("add filter 42", kevent(c, kq, &[bad], 0, NOW), id);
    let bad = kev(r as u64, EVFILT_AIO, EV_ADD, 0, 0);
    t.step("add EVFILT_AIO", kevent(c, kq, &[bad], 0, NOW), id);
    let del = kev(r as u64, EVFILT_READ, EV_DELETE, 0, 0);
    t.step("delete missing", kevent(c, kq, &[del], 0, NOW), id);
    let en = kev(r as u64, EVFILT_READ, EV_ENABLE, 0, 0);
    t.step("enable missing", kevent(c, kq, &[en], 0, NOW), id);
    let cons = kev(0, EVFILT_READ, EV_ADD, 0, 0);
    t.step("add read console", kevent(c, kq, &[cons], 0, NOW), id);
    let cons = kev(1, EVFILT_WRITE, EV_ADD, 0, 0);
    t.step("add write console", kevent(c, kq, &[cons], 0, NOW), id);
    let cons = kev(1, EVFILT_VNODE, EV_ADD, NOTE_ALL, 0);
    t.step("add vnode console", kevent(c, kq, &[cons], 0, NOW), id);
    let pv = kev(r as u64, EVFILT_VNODE, EV_ADD, NOTE_ALL, 0);
    t.step("add vnode pipe", kevent(c, kq, &[pv], 0, NOW), id);
    let rd = kev(r as u64, EVFILT_READ, EV_ADD, 0, 0);
    t.step("add read pipe", kevent(c, kq, &[rd], 0, NOW), id);
    t.step("kevent empty pipe", kevent(c, kq, &[], 4, NOW), id);
    t.unit("write 5", c.write(w, b"hello"));
    t.step("kevent 5 bytes", kevent(c, kq, &[], 4, NOW), id);
    t.step("kevent again (level)", kevent(c, kq, &[], 4, NOW), id);
    t.step("fstat kqueue", c.fstat(kq), |s| {
        format!("mode {:#o} size {}", s.mode, s.size)
    });
    t.step("poll kqueue", poll(c, &[(kq, POLLIN | POLLOUT)], 0), id);
    let wr = kev(w as u64, EVFILT_WRITE, EV_ADD, 0, 0);
    t.step("add write pipe", kevent(c, kq, &[wr], 4, NOW), id);
    let dis = kev(r as u64, EVFILT_READ, EV_DISABLE, 0, 0);
    let wdel = kev(w as u64, EVFILT_WRITE, EV_DELETE, 0, 0);
    t.step(
        "disable read, delete write",
        kevent(c, kq, &[dis, wdel], 4, NOW),
        id,
    );
    let en = kev(r as u64, EVFILT_READ, EV_ENABLE, 0, 0);
    t.step("enable read", kevent(c, kq, &[en], 4, NOW), id);
    let clr = kev(r as u64, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0);
    t.step("re-add with EV_CLEAR", kevent(c, kq, &[clr], 4, NOW), id);
    let del = kev(r as u64, EVFILT_READ, EV_DELETE, 0, 0);
    t.step("delete read", kevent(c, kq, &[del], 4, NOW), id);
    t.step("add EV_CLEAR", kevent(c, kq, &[clr], 4, NOW), id);
    t.step("EV_CLEAR again", kevent(c, kq, &[], 4, NOW), id);
    t.unit("write 3", c.write(w, b"abc"));
    t.step("EV_CLEAR after a write", kevent(c, kq, &[], 4, NOW), id);
    t.step("delete read", kevent(c, kq, &[del], 4, NOW), id);
    let one = kev(r as u64, EVFILT_READ, EV_ADD | EV_ONESHOT, 0, 0);
    t.step("add EV_ONESHOT", kevent(c, kq, &[one], 4, NOW), id);
    t.step("EV_ONESHOT again", kevent(c, kq, &[], 4, NOW), id);
    t.step("delete oneshot", kevent(c, kq, &[del], 4, NOW), id);
    let rc = kev(r as u64, EVFILT_READ, EV_ADD | EV_RECEIPT, 0, 0);
    t.step("add EV_RECEIPT", kevent(c, kq, &[rc], 4, NOW), id);
    let wrr = kev(r as u64, EVFILT_WRITE, EV_ADD, 0, 0);
    t.step(
        "write filter on read end",
        kevent(c, kq, &[wrr], 4, NOW),
        id,
    );
    let wdel = kev(r as u64, EVFILT_WRITE, EV_DELETE, 0, 0);
    t.step("delete it", kevent(c, kq, &[wdel], 4, NOW), id);
    // A kqueue watching the first.
    let kq2 = t.fd(
        "kqueue 2",
        c.syscall(SYS_KQUEUE, &[], &mut []).map(|r| r[0] as i32),
    );
    let onkq = kev(kq as u64, EVFILT_READ, EV_ADD, 0, 0);
    t.step(
        "kqueue 2 watches kqueue",
        kevent(c, kq2, &[onkq], 4, NOW),
        id,
    );
    let wkq = kev(kq as u64, EVFILT_WRITE, EV_ADD, 0, 0);
    t.step("write filter on kqueue", kevent(c, kq2, &[wkq], 4, NOW), id);
    let mut buf = [0u8; 16];
    t.unit("drain pipe", c.read(r, &mut buf));
    t.step("kqueue 2 after drain", kevent(c, kq2, &[], 4, NOW), id);
    t.unit("close w", c.close(w));
    t.step("kevent writer gone", kevent(c, kq, &[], 4, NOW), id);
    let badts = Some((0, 1_000_000_000));
    t.step("kevent nsec 1e9", kevent(c, kq, &[], 4, badts), id);
    t.step("kevent nsec 1e9 no room", kevent(c, kq, &[], 0, badts), id);
    t.ret(
        "kevent changes NULL",
        c.syscall(SYS_KEVENT, &[int_arg(kq), 0, 1, 0, 0, 0], &mut []),
    );
    t.unit("close r", c.close(r));
    t.step("kevent reader closed", kevent(c, kq, &[], 4, NOW), id);
    t.step(
        "delete read of closed fd",
        kevent(c, kq, &[del], 4, NOW),
        id,
    );
    // NetBSD 10's layout.
    let mut out = [0u8; 72];
    let ch = [0u8; 72];
    let a = [int_arg(kq), addr_of(&ch), 0, addr_of(&out), 1, 0];
    let ts = [0u8; 16];
    let mut args = a;
    args[5] = addr_of(&ts);
    t.ret(
        "kevent100 nothing",
        c.syscall(
            SYS_KEVENT100,
            &args,
            &mut [Buf::In(&ch), Buf::Out(&mut out), Buf::In(&ts)],
        ),
    );
    t.unit("close kqueue 2", c.close(kq2));
    t.unit("close kqueue", c.close(kq));
}

fn vnode_steps(c: &mut Client, t: &mut Transcript) {
    let id = |s: String| s;
    let kq = c
        .syscall(SYS_KQUEUE, &[], &mut [])
        .map(|r| r[0] as i32)
        .unwrap_or(-1);
    let f = c.open("/t/v", O_RDWR | O_CREAT, 0o644).unwrap_or(-1);
    let d = c.open("/t", O_RDONLY, 0).unwrap_or(-1);
    t.0.push(format!("open: ok {kq} {f} {d}"));
    let rd = kev(f as u64, EVFILT_READ, EV_ADD, 0, 0);
    t.step("read filter empty file", kevent(c, kq, &[rd], 4, NOW), id);
    t.unit("write 10", c.write(f, b"0123456789"));
    t.step("read filter at 10", kevent(c, kq, &[], 4, NOW), id);
    t.unit("lseek 4", c.lseek(f, 4, 0));
    t.step("read filter at 4", kevent(c, kq, &[], 4, NOW), id);
    t.unit("lseek end", c.lseek(f, 0, 2));
    t.step("read filter at end", kevent(c, kq, &[], 4, NOW), id);
    let del = kev(f as u64, EVFILT_READ, EV_DELETE, 0, 0);
    t.step("delete read filter", kevent(c, kq, &[del], 4, NOW), id);
    let vn = kev(f as u64, EVFILT_VNODE, EV_ADD | EV_CLEAR, NOTE_ALL, 0);
    let dv = kev(d as u64, EVFILT_VNODE, EV_ADD | EV_CLEAR, NOTE_ALL, 0);
    t.step("add vnode notes", kevent(c, kq, &[vn, dv], 4, NOW), id);
    t.unit("write 3", c.write(f, b"abc"));
    t.step("after write", kevent(c, kq, &[], 4, NOW), id);
    t.unit("pwrite inside", c.pwrite(f, b"z", 0));
    t.step("after pwrite inside", kevent(c, kq, &[], 4, NOW), id);
    t.unit("chmod", c.chmod("/t/v", 0o600));
    t.step("after chmod", kevent(c, kq, &[], 4, NOW), id);
    t.unit("link", c.link("/t/v", "/t/v2"));
    t.step("after link", kevent(c, kq, &[], 4, NOW), id);
    t.unit("rename", c.rename("/t/v2", "/t/v3"));
    t.step(
        "after rename of the other name",
        kevent(c, kq, &[], 4, NOW),
        id,
    );
    t.unit("rename", c.rename("/t/v", "/t/v4"));
    t.step("after rename", kevent(c, kq, &[], 4, NOW), id);
    t.unit(
        "create",
        c.open("/t/new", O_RDWR | O_CREAT, 0o644)
            .and_then(|x| c.close(x)),
    );
    t.step("after create", kevent(c, kq, &[], 4, NOW), id);
    t.unit("mkdir", c.mkdir("/t/sub", 0o755));
    t.step("after mkdir", kevent(c, kq, &[], 4, NOW), id);
    t.unit("unlink", c.unlink("/t/v4"));
    t.step("after unlink", kevent(c, kq, &[], 4, NOW), id);
    t.unit("unlink last", c.unlink("/t/v3"));
    t.step(
        "after unlink of the last name",
        kevent(c, kq, &[], 4, NOW),
        id,
    );
    let vl = kev(f as u64, EVFILT_VNODE, EV_ADD, NOTE_ALL, 0);
    t.step("re-add without EV_CLEAR", kevent(c, kq, &[vl], 4, NOW), id);
    t.unit("write", c.write(f, b"q"));
    t.step("level note 1", kevent(c, kq, &[], 4, NOW), id);
    t.step("level note 2", kevent(c, kq, &[], 4, NOW), id);
    let wf = kev(f as u64, EVFILT_WRITE, EV_ADD, 0, 0);
    t.step("write filter on a file", kevent(c, kq, &[wf], 4, NOW), id);
    // rumpfs, the root file system.
    let rf = c.open("/rootfile", O_RDWR | O_CREAT, 0o644).unwrap_or(-1);
    let rr = kev(rf as u64, EVFILT_READ, EV_ADD, 0, 0);
    t.step("read filter on rumpfs", kevent(c, kq, &[rr], 4, NOW), id);
    let rv = kev(rf as u64, EVFILT_VNODE, EV_ADD, NOTE_ALL, 0);
    t.step("vnode filter on rumpfs", kevent(c, kq, &[rv], 4, NOW), id);
    t.unit("close", c.close(rf));
    t.unit("close", c.close(f));
    t.unit("close", c.close(d));
    t.unit("close kqueue", c.close(kq));
}

fn timer_steps(c: &mut Client, t: &mut Transcript) {
    let id = |s: String| s;
    let kq = c
        .syscall(SYS_KQUEUE, &[], &mut [])
        .map(|r| r[0] as i32)
        .unwrap_or(-1);
    let z = kev(1, EVFILT_TIMER, EV_ADD, 0, 0);
    t.step("timer 0 ms", kevent(c, kq, &[z], 4, NOW), id);
    let tm = kev(1, EVFILT_TIMER, EV_ADD | EV_ONESHOT, 0, 30);
    t.step("timer 30 ms", kevent(c, kq, &[tm], 4, NOW), id);
    // NetBSD rounds to 10 ms ticks and may fire a tick early: only the event is shown.
    t.step("timer fires", kevent(c, kq, &[], 4, None), id);
    t.step("oneshot timer gone", kevent(c, kq, &[], 4, NOW), id);
    let start = Instant::now();
    let r = kevent(c, kq, &[], 4, Some((0, 50_000_000)));
    let waited = start.elapsed() >= Duration::from_millis(50);
    t.step("kevent 50ms nothing", r, |s| format!("{s} waited {waited}"));
    t.unit("close kqueue", c.close(kq));
}

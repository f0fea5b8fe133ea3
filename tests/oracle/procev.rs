//! The process-event probe (issue 14, kqueue's `EVFILT_PROC` and `EVFILT_SIGNAL`) whose
//! answers NetBSD's rump_server recorded in `tests/oracle/procev.netbsd`: registration on
//! the caller, proc0, init, missing and truncated pids, and as a set-id non-root process;
//! `EVFILT_SIGNAL` for SIGPIPE; then the events after a SIGPIPE, a fork (also with
//! `NOTE_TRACK`), an exec and the children's exits. Event lines name processes by role
//! (`self`, `child`, `child2`), not by pid. One line per step: `name: ok[ value]` or
//! `name: errno N`.
//!
//! Run against any server with `cargo run --example oracle_procev -- URL` (the server
//! started as `rump_server URL`, fresh); `tests/oracle_procev.rs` runs it against ours and
//! compares. The probe does not halt the server: NetBSD's rump kernel keeps knotes on
//! processes that have exited, and detaching them at the end may take it down.

use client::{addr_of, int_arg, Buf, Client};

use crate::transcript::{connect, Transcript};

const SYS_WRITE: u32 = 4;
const SYS_GETPID: u32 = 20;
const SYS_SETUID: u32 = 23;
const SYS_KQUEUE: u32 = 344;
const SYS_KEVENT: u32 = 435;
const EVFILT_PROC: u32 = 4;
const EVFILT_SIGNAL: u32 = 5;
const EV_ADD: u32 = 1;
const NOTE_EXIT: u32 = 0x8000_0000;
const NOTE_FORK: u32 = 0x4000_0000;
const NOTE_EXEC: u32 = 0x2000_0000;
const NOTE_TRACK: u32 = 1;
const SIGPIPE: u64 = 13;

/// One 40-byte `struct kevent`, `udata` 0x5eed.
fn kev(ident: u64, filter: u32, flags: u32, fflags: u32) -> [u8; 40] {
    let mut b = [0u8; 40];
    b[..8].copy_from_slice(&ident.to_le_bytes());
    b[8..12].copy_from_slice(&filter.to_le_bytes());
    b[12..16].copy_from_slice(&flags.to_le_bytes());
    b[16..20].copy_from_slice(&fflags.to_le_bytes());
    b[32..40].copy_from_slice(&0x5eedu64.to_le_bytes());
    b
}

/// The processes events name, by role.
struct Roles(Vec<(u64, &'static str)>);

impl Roles {
    fn name(&self, ident: u64) -> String {
        self.0
            .iter()
            .find(|r| r.0 == ident)
            .map_or_else(|| ident.to_string(), |r| r.1.to_string())
    }
}

/// kevent(2) with one change and no room for events: the change's errno is the call's.
fn change(c: &mut Client, kq: i32, k: [u8; 40]) -> client::Result<[i64; 2]> {
    let args = [int_arg(kq), addr_of(&k), 1, 0, 0, 0];
    c.syscall(SYS_KEVENT, &args, &mut [Buf::In(&k)])
}

/// kevent(2) collecting up to 4 events within `ms` milliseconds, shown with roles.
fn events(c: &mut Client, kq: i32, ms: i64, roles: &Roles) -> client::Result<String> {
    let mut out = vec![0u8; 40 * 4];
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&(ms / 1000).to_le_bytes());
    t[8..].copy_from_slice(&((ms % 1000) * 1_000_000).to_le_bytes());
    let args = [int_arg(kq), 0, 0, addr_of(&out), 4, addr_of(&t)];
    let r = c.syscall(SYS_KEVENT, &args, &mut [Buf::Out(&mut out), Buf::In(&t)])?;
    let mut s = r[0].to_string();
    for e in out.chunks(40).take(r[0].max(0) as usize) {
        let ident = u64::from_le_bytes(e[..8].try_into().unwrap());
        let filter = u32::from_le_bytes(e[8..12].try_into().unwrap());
        let flags = u32::from_le_bytes(e[12..16].try_into().unwrap());
        let fflags = u32::from_le_bytes(e[16..20].try_into().unwrap());
        let data = i64::from_le_bytes(e[24..32].try_into().unwrap());
        let udata = u64::from_le_bytes(e[32..40].try_into().unwrap());
        let data = match filter {
            EVFILT_PROC if data > 0 => roles.name(data as u64),
            _ => data.to_string(),
        };
        s += &format!(
            " [{} {filter} {flags:#x} {fflags:#x} {data} {udata:#x}]",
            roles.name(ident)
        );
    }
    Ok(s)
}

fn getpid(c: &mut Client) -> u64 {
    c.syscall(SYS_GETPID, &[], &mut []).expect("getpid")[0] as u64
}

/// Runs the probe against the server at `url` and returns its transcript.
pub fn run(url: &str) -> Transcript {
    let mut t = Transcript::default();
    let mut c = connect(url, "procev");
    let me = getpid(&mut c);
    let mut roles = Roles(vec![(me, "self")]);
    let kq = c.syscall(SYS_KQUEUE, &[], &mut []).expect("kqueue")[0] as i32;
    let all = NOTE_EXIT | NOTE_FORK | NOTE_EXEC;
    t.unit(
        "proc self",
        change(&mut c, kq, kev(me, EVFILT_PROC, EV_ADD, all)),
    );
    t.unit(
        "proc init",
        change(&mut c, kq, kev(1, EVFILT_PROC, EV_ADD, all)),
    );
    t.unit(
        "proc0",
        change(&mut c, kq, kev(0, EVFILT_PROC, EV_ADD, all)),
    );
    t.unit(
        "proc missing",
        change(&mut c, kq, kev(29_999, EVFILT_PROC, EV_ADD, all)),
    );
    t.unit(
        "proc -1",
        change(&mut c, kq, kev(u64::MAX, EVFILT_PROC, EV_ADD, all)),
    );
    t.unit(
        "proc self, high bits set",
        change(
            &mut c,
            kq,
            kev(me | 1 << 32, EVFILT_PROC, EV_ADD, NOTE_EXIT),
        ),
    );
    t.unit(
        "signal SIGPIPE",
        change(&mut c, kq, kev(SIGPIPE, EVFILT_SIGNAL, EV_ADD, 0)),
    );
    t.unit(
        "signal 1000",
        change(&mut c, kq, kev(1000, EVFILT_SIGNAL, EV_ADD, 0)),
    );
    t.step("nothing yet", events(&mut c, kq, 0, &roles), |s| s);

    // SIGPIPE: a write to a pipe without a reader.
    let (r, w) = c.pipe().expect("pipe");
    t.unit("close reader", c.close(r));
    let b = [1u8; 4];
    for i in 0..2 {
        let res = c.syscall(SYS_WRITE, &[int_arg(w), addr_of(&b), 4], &mut [Buf::In(&b)]);
        t.unit(&format!("write without reader {i}"), res);
    }
    t.step("raised", Ok(c.last_signal()), |s| format!("{s:?}"));
    t.step("events after SIGPIPE", events(&mut c, kq, 0, &roles), |s| s);
    t.unit("close writer", c.close(w));

    // A fork, watched; then an exec of the child, watched.
    let mut child = c
        .prefork()
        .and_then(|k| Client::connect_fork(url, &k))
        .expect("fork");
    t.0.push("fork: ok".into());
    let cpid = getpid(&mut child);
    roles.0.push((cpid, "child"));
    t.step("events after fork", events(&mut c, kq, 0, &roles), |s| s);
    t.unit(
        "proc child",
        change(&mut c, kq, kev(cpid, EVFILT_PROC, EV_ADD, all)),
    );
    t.unit("exec child", child.exec_handshake("procev-exec"));
    t.step("events after exec", events(&mut c, kq, 0, &roles), |s| s);
    drop(child);
    t.step("events after exit", events(&mut c, kq, 2000, &roles), |s| s);

    // NOTE_TRACK: the next child is watched by a knote the kernel adds.
    let track = NOTE_TRACK | all;
    t.unit(
        "proc self, track",
        change(&mut c, kq, kev(me, EVFILT_PROC, EV_ADD, track)),
    );
    let mut child2 = c
        .prefork()
        .and_then(|k| Client::connect_fork(url, &k))
        .expect("fork");
    t.0.push("fork again: ok".into());
    let c2pid = getpid(&mut child2);
    roles.0.push((c2pid, "child2"));
    t.step(
        "events after tracked fork",
        events(&mut c, kq, 0, &roles),
        |s| s,
    );

    // A set-id process that is not root may watch neither root's processes nor itself.
    t.unit(
        "child2 setuid 1000",
        child2.syscall(SYS_SETUID, &[1000], &mut []),
    );
    let kq2 = child2.syscall(SYS_KQUEUE, &[], &mut []).expect("kqueue")[0] as i32;
    t.unit(
        "child2 watches parent",
        change(&mut child2, kq2, kev(me, EVFILT_PROC, EV_ADD, all)),
    );
    t.unit(
        "child2 watches itself",
        change(&mut child2, kq2, kev(c2pid, EVFILT_PROC, EV_ADD, all)),
    );
    t.unit(
        "child2 watches init",
        change(&mut child2, kq2, kev(1, EVFILT_PROC, EV_ADD, all)),
    );
    t.unit(
        "child2 signal",
        change(&mut child2, kq2, kev(SIGPIPE, EVFILT_SIGNAL, EV_ADD, 0)),
    );
    drop(child2);
    t.step(
        "events after tracked exit",
        events(&mut c, kq, 2000, &roles),
        |s| s,
    );
    t.step("nothing left", events(&mut c, kq, 0, &roles), |s| s);
    t
}

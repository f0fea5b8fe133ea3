//! Readiness over the wire (issue 14 item 2): a poll blocked in one process woken by a write
//! from another, many pollers woken at once, exact timeouts of poll/select/kevent, a
//! disconnect ending a blocked poll and a blocked kevent (the process and its slot freed),
//! and a flood of knotes stopped by the `-r` budget with `ENOMEM` before the RSS grows.

mod common;

use std::time::{Duration, Instant};

use client::{addr_of, int_arg, Buf, Client};
use common::Server;

const SYS_POLL: u32 = 209;
const SYS_SELECT: u32 = 417;
const SYS_KQUEUE: u32 = 344;
const SYS_KEVENT: u32 = 435;
const SYS_SETRLIMIT: u32 = 195;
const POLLIN: i16 = 0x1;
const EVFILT_READ: u32 = 0;
const EVFILT_WRITE: u32 = 1;
const EV_ADD: u32 = 1;
const ENOMEM: i32 = 12;

fn pollfd(fd: i32, events: i16) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&fd.to_le_bytes());
    b[4..6].copy_from_slice(&events.to_le_bytes());
    b
}

fn kev(ident: u64, filter: u32, flags: u32) -> [u8; 40] {
    let mut b = [0u8; 40];
    b[..8].copy_from_slice(&ident.to_le_bytes());
    b[8..12].copy_from_slice(&filter.to_le_bytes());
    b[12..16].copy_from_slice(&flags.to_le_bytes());
    b
}

fn fork_retry(url: &str, cookie: &[u8; 16]) -> Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Client::connect_fork(url, cookie) {
            Ok(c) => return c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("fork handshake: {e}"),
        }
    }
}

/// Processes sharing a pipe: the parent polls its read end forever, children fork from
/// it and poll too; a write by the parent wakes every one of them.
#[test]
fn pollers_in_other_processes_are_woken_by_a_write() {
    let srv = Server::unix(&["-c", "2"]);
    let mut a = common::connect_retry(&srv.url, "writer");
    let (rd, wr) = a.pipe().unwrap();
    let mut pollers = Vec::new();
    for _ in 0..8 {
        let cookie = a.prefork().unwrap();
        let mut c = fork_retry(&srv.url, &cookie);
        // On the heap: its address is what the server copies in and out later.
        let pfd = pollfd(rd, POLLIN).to_vec();
        let id = c
            .send_syscall(SYS_POLL, &[addr_of(&pfd), 1, int_arg(-1)])
            .unwrap();
        pollers.push((c, id, pfd));
    }
    std::thread::sleep(Duration::from_millis(100));
    a.write(wr, b"wake").unwrap();
    for (mut c, id, mut pfd) in pollers {
        let (got, res) = c.recv_syscall(&mut [Buf::InOut(&mut pfd)]).unwrap();
        assert_eq!((got, res.unwrap()[0]), (id, 1));
        assert_eq!(i16::from_le_bytes([pfd[6], pfd[7]]), POLLIN);
    }
}

/// Timeouts end the wait at their time, not before and not much after.
#[test]
fn poll_select_and_kevent_time_out_at_their_deadline() {
    let srv = Server::unix(&["-c", "2"]);
    let mut c = common::connect_retry(&srv.url, "timeouts");
    let (rd, _wr) = c.pipe().unwrap();
    let mut pfd = pollfd(rd, POLLIN);
    let t = Instant::now();
    let r = c
        .syscall(
            SYS_POLL,
            &[addr_of(&pfd), 1, 150],
            &mut [Buf::InOut(&mut pfd)],
        )
        .unwrap();
    let took = t.elapsed();
    assert_eq!(r[0], 0);
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_secs(2),
        "{took:?}"
    );

    let mut set = [0u8; 8];
    set[0] = 1 << rd;
    let mut tv = [0u8; 16];
    tv[8..].copy_from_slice(&150_000i64.to_le_bytes());
    let t = Instant::now();
    let args = [8, addr_of(&set), 0, 0, addr_of(&tv)];
    let r = c
        .syscall(SYS_SELECT, &args, &mut [Buf::InOut(&mut set), Buf::In(&tv)])
        .unwrap();
    let took = t.elapsed();
    assert_eq!((r[0], set[0]), (0, 0));
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_secs(2),
        "{took:?}"
    );

    let kq = c.syscall(SYS_KQUEUE, &[], &mut []).unwrap()[0];
    let ch = kev(rd as u64, EVFILT_READ, EV_ADD);
    let mut out = [0u8; 40];
    let mut ts = [0u8; 16];
    ts[8..].copy_from_slice(&150_000_000i64.to_le_bytes());
    let args = [kq as u64, addr_of(&ch), 1, addr_of(&out), 1, addr_of(&ts)];
    let t = Instant::now();
    let r = c
        .syscall(
            SYS_KEVENT,
            &args,
            &mut [Buf::In(&ch), Buf::Out(&mut out), Buf::In(&ts)],
        )
        .unwrap();
    let took = t.elapsed();
    assert_eq!(r[0], 0);
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

/// A client that disconnects while blocked in poll(INFTIM) or kevent(NULL timeout) is torn
/// down: with `RUMP_MAX_CONNS=2`, two new clients are served after every round.
#[test]
fn a_disconnect_ends_a_blocked_poll_and_kevent() {
    let srv = Server::unix_env(&["-c", "2"], &[("RUMP_MAX_CONNS", "2")]);
    for round in 0..6 {
        let mut c = common::connect_retry(&srv.url, "blocked");
        let (rd, _wr) = c.pipe().unwrap();
        let pfd = pollfd(rd, POLLIN);
        let kq = c.syscall(SYS_KQUEUE, &[], &mut []).unwrap()[0];
        let ch = kev(rd as u64, EVFILT_READ, EV_ADD);
        let out = [0u8; 40];
        match round % 2 {
            0 => c.send_syscall(SYS_POLL, &[addr_of(&pfd), 1, int_arg(-1)]),
            _ => c.send_syscall(
                SYS_KEVENT,
                &[kq as u64, addr_of(&ch), 1, addr_of(&out), 1, 0],
            ),
        }
        .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(c);
        let mut a = common::connect_retry(&srv.url, "after-a");
        let mut b = common::connect_retry(&srv.url, "after-b");
        assert!(a.getpid().is_ok() && b.getpid().is_ok());
    }
}

/// Knotes are client-growable memory: a flood of them (a read and a write knote on every
/// descriptor, in kqueue after kqueue) ends with `ENOMEM` at the `-r` budget, and the
/// server's RSS stays within `-r` plus the fixed overhead of tests/attack_mem.rs.
#[test]
fn a_knote_flood_stops_at_the_budget() {
    let srv = Server::unix(&["-c", "2", "-r", "16m"]);
    let mut c = common::connect_retry(&srv.url, "flood");
    let mut rl = [0u8; 16];
    rl[..8].copy_from_slice(&1000u64.to_le_bytes());
    rl[8..].copy_from_slice(&1000u64.to_le_bytes());
    c.syscall(SYS_SETRLIMIT, &[8, addr_of(&rl)], &mut [Buf::In(&rl)])
        .unwrap();
    let (rd, _wr) = c.pipe().unwrap();
    let mut fds = vec![rd];
    while fds.len() < 900 {
        fds.push(c.dup(rd).unwrap());
    }
    let changes: Vec<u8> = fds
        .iter()
        .flat_map(|&fd| {
            let mut v = kev(fd as u64, EVFILT_READ, EV_ADD).to_vec();
            v.extend_from_slice(&kev(fd as u64, EVFILT_WRITE, EV_ADD));
            v
        })
        .collect();
    let n = (changes.len() / 40) as u64;
    let mut knotes = 0u64;
    let mut refused = None;
    for _ in 0..90 {
        let kq = match c.syscall(SYS_KQUEUE, &[], &mut []) {
            Ok(r) => r[0],
            Err(e) => {
                refused = e.errno();
                break;
            }
        };
        let args = [kq as u64, addr_of(&changes), n, 0, 0, 0];
        match c.syscall(SYS_KEVENT, &args, &mut [Buf::In(&changes)]) {
            Ok(_) => knotes += n,
            Err(e) => {
                refused = e.errno();
                break;
            }
        }
    }
    assert_eq!(refused, Some(ENOMEM), "after {knotes} knotes");
    assert!(knotes > 10_000, "only {knotes} knotes in 16 MiB");
    let rss_mib = common::rss_kib(srv.pid()) / 1024;
    assert!(rss_mib < 16 + 24, "RSS {rss_mib} MiB");
    // Still serving, and the memory comes back with the process.
    drop(c);
    let mut d = common::connect_retry(&srv.url, "after");
    let (r2, _) = d.pipe().unwrap();
    assert!(r2 >= 3);
}

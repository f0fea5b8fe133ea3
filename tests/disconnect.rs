//! A client may vanish at any point: while the server waits for its COPYIN answer, while its
//! syscall sleeps (pipe read, flock and F_SETLKW lock waits), while host I/O for it is in
//! flight on an etfs drive, while its output waits for it to read, or in the middle of a
//! frame. Each time its process must be torn down — its connection slot given back
//! (`RUMP_MAX_CONNS=2` would otherwise refuse the next client), its descriptors closed (a
//! pipe's other end sees EOF or EPIPE, its locks pass to the next waiter) — nobody else may
//! notice, and the server's own descriptor count (`/proc/<pid>/fd`) returns to its baseline.

mod common;

use std::io::Write;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use client::fs::{O_CREAT, O_RDWR};
use client::{Buf, Client};
use common::{errno, Raw, Server, TempDir};

const LOCK_EX: i32 = 2;
const LOCK_NB: i32 = 4;
const LOCK_UN: i32 = 8;
const F_SETLK: u32 = 8;
const F_SETLKW: u32 = 9;
const F_WRLCK: i16 = 3;
const EPIPE: i32 = 32;
const EAGAIN: i32 = 35;

/// Descriptors the server process holds.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// A server with at most two connections, warmed up (one client connected and gone), and
/// its descriptor count once that client's teardown is done.
fn server(extra: &[&str]) -> (Server, usize) {
    let srv = Server::unix_env(extra, &[("RUMP_MAX_CONNS", "2")]);
    let mut c = common::connect_retry(&srv.url, "warm-up");
    c.getpid().unwrap();
    drop(c);
    let baseline = settled_fd_count(&srv);
    (srv, baseline)
}

/// The descriptor count once it stopped changing for 200 ms.
fn settled_fd_count(srv: &Server) -> usize {
    let mut last = fd_count(srv.pid());
    let mut since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        let n = fd_count(srv.pid());
        if n != last {
            (last, since) = (n, Instant::now());
        } else if since.elapsed() > Duration::from_millis(200) {
            break;
        }
    }
    last
}

/// Every process is gone: the descriptor count is back at `baseline` and both connection
/// slots are free again (two new clients are served and get fresh pids).
fn assert_torn_down(srv: &Server, baseline: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while fd_count(srv.pid()) != baseline && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fd_count(srv.pid()), baseline, "server descriptors leaked");
    let mut a = common::connect_retry(&srv.url, "after-a");
    let mut b = common::connect_retry(&srv.url, "after-b");
    let (pa, ppa) = a.getpid().unwrap();
    let (pb, _) = b.getpid().unwrap();
    assert!(pa > 1 && pb > 1 && pa != pb && ppa == 1, "pids {pa} {pb}");
    drop((a, b));
}

/// A FORK handshake, retried while the server is at its connection limit (a connection that
/// just went is given back asynchronously).
fn connect_fork_retry(url: &str, cookie: &[u8; 16]) -> Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Client::connect_fork(url, cookie) {
            Ok(c) => return c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("fork handshake: {e}"),
        }
    }
}

/// A raw connection after its GUEST handshake, retried as [`connect_fork_retry`].
fn raw_guest_retry(srv: &Server) -> Raw {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (mut raw, banner) = Raw::connect(srv.sock.as_ref().unwrap());
        if !banner.is_empty() {
            let mut out = Vec::new();
            sp::encode_handshake_req(&mut out, 1, sp::HandshakeType::GUEST, b"raw\0");
            raw.send(&out);
            let (h, _) = raw.read_frame().expect("handshake response");
            assert_eq!((h.class, h.reqno), (sp::Class::RESP, 1));
            return raw;
        }
        assert!(Instant::now() < deadline, "never accepted");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A second handle on a client's socket, for writing frames the client does not track.
fn raw_twin(c: &Client) -> UnixStream {
    // SAFETY: dup(2) of the client's socket gives a descriptor that nothing else owns.
    let fd = unsafe { libc::dup(c.as_raw_fd()) };
    assert!(fd >= 0);
    // SAFETY: `fd` is a fresh descriptor we own.
    unsafe { UnixStream::from_raw_fd(fd) }
}

#[test]
fn disconnect_while_a_copyin_is_pending() {
    let (srv, baseline) = server(&["-c", "2"]);
    for round in 0..30u64 {
        let mut raw = raw_guest_retry(&srv);
        let mut out = Vec::new();
        // write, writev and __setlogin: COPYIN, COPYIN of the iovec, COPYINSTR of the name.
        let (nr, args) = match round % 3 {
            0 => (4, vec![1, 0x1000, 64]),
            1 => (121, vec![1, 0x1000, 2]),
            _ => (50, vec![0x1000]),
        };
        sp::encode_syscall_req(&mut out, 2, nr, &args);
        raw.send(&out);
        let (h, _) = raw.read_frame().unwrap();
        assert!(matches!(
            h.typ,
            sp::MsgType::COPYIN | sp::MsgType::COPYINSTR
        ));
        drop(raw); // gone while the server waits for the answer
    }
    assert_torn_down(&srv, baseline);
}

#[test]
fn disconnect_while_blocked_in_a_pipe_read() {
    let (srv, baseline) = server(&["-c", "2"]);
    for _ in 0..5 {
        // A makes a pipe and forks B (who inherits both ends); B keeps only the write end.
        let mut a = common::connect_retry(&srv.url, "a");
        let (rd, wr) = a.pipe().unwrap();
        let cookie = a.prefork().unwrap();
        let mut b = connect_fork_retry(&srv.url, &cookie);
        b.close(rd).unwrap();
        // A blocks reading the empty pipe, then vanishes: its read ends, its process exits
        // and closes its ends; B, the only one left, gets EPIPE writing.
        let mut buf = [0u8; 16];
        a.send_syscall(3, &[rd as u64, client::addr_of(&buf), 16])
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(a);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match b.write(wr, b"x") {
                Err(e) if e.errno() == Some(EPIPE) => break,
                Ok(1) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                other => panic!("write to a pipe without readers: {other:?}"),
            }
        }
        // The other way round: B blocks reading a pipe whose writer A vanishes → EOF.
        let mut a = common::connect_retry(&srv.url, "a2");
        let _ = b.close(wr);
        let (rd, wr) = a.pipe().unwrap();
        let cookie = a.prefork().unwrap();
        drop(b);
        let mut b = connect_fork_retry(&srv.url, &cookie);
        b.close(wr).unwrap();
        let r = b
            .send_syscall(3, &[rd as u64, client::addr_of(&buf), 16])
            .unwrap();
        // A blocks too (reading the same pipe), then vanishes with its write end.
        a.send_syscall(3, &[rd as u64, client::addr_of(&buf), 16])
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(a);
        let (got, res) = b.recv_syscall(&mut [Buf::Out(&mut buf)]).unwrap();
        assert_eq!(
            (got, res),
            (r, Ok([0, 0])),
            "EOF once the last writer is gone"
        );
        drop(b);
    }
    assert_torn_down(&srv, baseline);
}

#[test]
fn disconnect_while_waiting_for_a_lock() {
    let (srv, baseline) = server(&["-c", "2", "-lrumpvfs"]);
    let open = |name: &str| {
        let mut c = common::connect_retry(&srv.url, name);
        let fd = c.open("/tmp/lock", O_RDWR | O_CREAT, 0o644).unwrap();
        (c, fd)
    };
    let fl = flock_wrlck();
    for _ in 0..5 {
        // flock: the holder vanishes while another waits: the waiter gets the lock.
        let (mut holder, hfd) = open("holder");
        holder.flock(hfd, LOCK_EX).unwrap();
        let (mut waiter, wfd) = open("waiter");
        let r = waiter
            .send_syscall(131, &[wfd as u64, LOCK_EX as u64])
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(holder);
        let (got, res) = waiter.recv_syscall(&mut []).unwrap();
        assert_eq!((got, res), (r, Ok([0, 0])), "the lock passes to the waiter");
        // The waiter, now the holder, vanishes: its lock is released with its file.
        drop(waiter);
        let (mut check, cfd) = open("check");
        eventually(|| check.flock(cfd, LOCK_EX | LOCK_NB));
        // A waiter vanishes while it waits: its request is withdrawn.
        let (mut w, wfd) = open("gone-waiter");
        w.send_syscall(131, &[wfd as u64, LOCK_EX as u64]).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(w);
        check.flock(cfd, LOCK_UN).unwrap();
        let (mut again, afd) = open("again");
        eventually(|| again.flock(afd, LOCK_EX | LOCK_NB));
        drop((check, again));

        // POSIX record locks: a waiter in F_SETLKW vanishes; the holder closes; the lock is
        // free for the next process at once (F_SETLK, non-blocking).
        let (mut holder, hfd) = open("posix-holder");
        let set = |c: &mut Client, fd: i32, cmd: u32| {
            c.syscall(
                92,
                &[fd as u64, cmd as u64, client::addr_of(&fl)],
                &mut [Buf::In(&fl)],
            )
        };
        // `again` (just dropped) may still hold its flock, which conflicts with a record
        // lock on the same file until its disconnect is processed.
        eventually(|| set(&mut holder, hfd, F_SETLK));
        let (mut w, wfd) = open("posix-waiter");
        w.set_timeout(Some(Duration::from_millis(300))).unwrap();
        w.send_syscall(92, &[wfd as u64, F_SETLKW as u64, client::addr_of(&fl)])
            .unwrap();
        // Serves the COPYIN of the struct, then times out while the call sleeps.
        assert!(w.recv_syscall(&mut [Buf::In(&fl)]).is_err());
        drop(w);
        holder.close(hfd).unwrap();
        let (mut next, nfd) = open("posix-next");
        eventually(|| set(&mut next, nfd, F_SETLK));
        assert_eq!(
            set(&mut holder, hfd, F_SETLK).unwrap_err().errno(),
            Some(errno::EBADF)
        );
        let hfd = holder.open("/tmp/lock", O_RDWR, 0).unwrap();
        assert_eq!(
            set(&mut holder, hfd, F_SETLK).unwrap_err().errno(),
            Some(EAGAIN)
        );
        drop((holder, next));
    }
    assert_torn_down(&srv, baseline);
}

/// A vanished client's process is torn down asynchronously: `f` (a non-blocking lock attempt)
/// must succeed within a few seconds.
fn eventually<T: std::fmt::Debug>(mut f: impl FnMut() -> client::Result<T>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match f() {
            Ok(_) => return,
            Err(e) if e.errno() == Some(EAGAIN) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("lock never became free: {e}"),
        }
    }
}

/// NetBSD's `struct flock` for a write lock of the whole file: start, len, pid, type, whence.
fn flock_wrlck() -> [u8; 24] {
    let mut fl = [0u8; 24];
    fl[20..22].copy_from_slice(&F_WRLCK.to_le_bytes());
    fl
}

#[test]
fn disconnect_while_host_io_is_in_flight() {
    // A 16 MiB drive behind an 8 MiB cache (-r 16m): reads spread over it go to the host.
    let img = TempDir::new("dk");
    let path = img.path().join("x.img");
    let spec = format!("key=/dk,hostpath={},size=16m", path.display());
    let (srv, baseline) = server(&["-c", "2", "-lrumpvfs", "-r", "16m", "-d", &spec]);
    let mut bystander = common::connect_retry(&srv.url, "bystander");
    let bfd = bystander.open("/dk", O_RDWR, 0).unwrap();
    for round in 0..20u64 {
        let mut c = common::connect_retry(&srv.url, "reader");
        let fd = c.open("/dk", O_RDWR, 0).unwrap();
        let mut s = raw_twin(&c);
        // 64 reads of 64 KiB at scattered offsets, then gone before any answer is read.
        let mut batch = Vec::new();
        for i in 0..64u64 {
            let off = (((round * 64 + i) * 0x3_1000) % (16 << 20)) & !0xfff;
            let args = [fd as u64, 0x1000, 64 << 10, 0, off];
            sp::encode_syscall_req(&mut batch, 100 + i, 173, &args);
            if i % 8 == 0 {
                // And writes, whose COPYIN the server will wait for in vain.
                sp::encode_syscall_req(
                    &mut batch,
                    1000 + i,
                    174,
                    &[fd as u64, 0x2000, 4096, 0, off],
                );
            }
        }
        s.write_all(&batch).unwrap();
        if round % 2 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
        drop((s, c));
        // Nobody else notices.
        let mut b = [0u8; 512];
        assert_eq!(
            bystander.pread(bfd, &mut b, 512 * round as i64).unwrap(),
            512
        );
    }
    drop(bystander);
    assert_torn_down(&srv, baseline);
}

#[test]
fn disconnect_while_injected_host_faults_are_in_flight() {
    let img = TempDir::new("dkf");
    let path = img.path().join("x.img");
    let spec = format!("key=/dk,hostpath={},size=4m", path.display());
    let srv = Server::unix_env(
        &["-c", "2", "-lrumpvfs", "-r", "4m", "-d", &spec],
        &[("RUMP_BLKFAIL", "3000"), ("RUMP_BLKFAIL_SEED", "7")],
    );
    let baseline = settled_fd_count(&srv);
    for round in 0..10u64 {
        let mut c = common::connect_retry(&srv.url, "reader");
        let fd = c.open("/dk", O_RDWR, 0).unwrap();
        let mut s = raw_twin(&c);
        let mut batch = Vec::new();
        for i in 0..32u64 {
            let off = (((round * 32 + i) * 0x2_3000) % (4 << 20)) & !0xfff;
            sp::encode_syscall_req(
                &mut batch,
                100 + i,
                173,
                &[fd as u64, 0x1000, 32 << 10, 0, off],
            );
        }
        s.write_all(&batch).unwrap();
        drop((s, c));
    }
    // EIO or data, never a stuck or leaked process.
    let mut c = common::connect_retry(&srv.url, "after");
    let fd = c.open("/dk", O_RDWR, 0).unwrap();
    let mut b = [0u8; 4096];
    for i in 0..16 {
        match c.pread(fd, &mut b, i * 4096) {
            Ok(n) => assert_eq!(n, 4096),
            Err(e) => assert_eq!(e.errno(), Some(5), "{e}"),
        }
    }
    c.close(fd).unwrap();
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(10);
    while fd_count(srv.pid()) != baseline && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fd_count(srv.pid()), baseline, "server descriptors leaked");
}

#[test]
fn disconnect_while_output_waits_for_the_client() {
    // COPYOUTs of 64 KiB reads from /dev/zero wait behind a 64 KiB output limit for a client
    // that never reads; then the client goes.
    let srv = Server::unix_env(
        &["-c", "1", "-lrumpvfs"],
        &[("RUMP_MAX_CONNS", "2"), ("RUMP_MAX_OUTBUF", "64k")],
    );
    let mut warm = common::connect_retry(&srv.url, "warm-up");
    warm.getpid().unwrap();
    drop(warm);
    let baseline = settled_fd_count(&srv);
    for _ in 0..5 {
        let mut c = common::connect_retry(&srv.url, "no-reader");
        let fd = c.open("/dev/zero", 0, 0).unwrap();
        let mut s = raw_twin(&c);
        s.set_nonblocking(true).unwrap();
        let mut batch = Vec::new();
        for i in 0..200u64 {
            sp::encode_syscall_req(&mut batch, 100 + i, 3, &[fd as u64, 0x1000, 64 << 10]);
        }
        let _ = s.write(&batch);
        std::thread::sleep(Duration::from_millis(100));
        drop((s, c));
    }
    assert_torn_down(&srv, baseline);
}

#[test]
fn disconnect_in_the_middle_of_a_frame_or_a_handshake() {
    let (srv, baseline) = server(&["-c", "2"]);
    for i in 0..20usize {
        let mut raw = loop {
            let (raw, banner) = Raw::connect(srv.sock.as_ref().unwrap());
            if !banner.is_empty() {
                break raw;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut out = Vec::new();
        if i % 2 == 0 {
            sp::encode_handshake_name_req(&mut out, 1, sp::HandshakeType::GUEST, b"half");
        } else {
            sp::encode_handshake_name_req(&mut out, 1, sp::HandshakeType::GUEST, b"whole");
            raw.send(&out);
            raw.read_frame().unwrap();
            out.clear();
            sp::encode_syscall_req(&mut out, 2, 4, &[1, 0x1000, 8]);
        }
        raw.send(&out[..out.len() - 1 - i % 5]);
        drop(raw);
    }
    let mut c = common::connect_retry(&srv.url, "after");
    assert_eq!(c.write(1, b"fine\n").unwrap(), 5);
    assert_eq!(c.write(-1, b"x").unwrap_err().errno(), Some(errno::EBADF));
    drop(c);
    assert_torn_down(&srv, baseline);
}

/// A panic inside a syscall (injected with `RUMP_FAULT_PANIC`, debug builds) costs only the
/// connection it happened on: the client sees its connection closed, and its process is torn
/// down as for any disconnect — its flock and POSIX locks released, its connection slot given
/// back (`RUMP_MAX_CONNS=2`, five rounds), the server's descriptors back at their baseline —
/// both when the call panics in its first poll (inline, in the connection's reader) and after
/// it waited (in a task of its own).
#[test]
fn a_panicking_syscall_closes_only_its_connection() {
    if !cfg!(debug_assertions) {
        eprintln!("skipped: RUMP_FAULT_PANIC exists in debug builds only");
        return;
    }
    for spec in ["39", "39:late"] {
        let srv = Server::unix_env(
            &["-c", "1", "-lrumpvfs"],
            &[("RUMP_MAX_CONNS", "2"), ("RUMP_FAULT_PANIC", spec)],
        );
        let mut c = common::connect_retry(&srv.url, "warm-up");
        c.getpid().unwrap();
        drop(c);
        let baseline = settled_fd_count(&srv);
        let fl = flock_wrlck();
        for round in 0..5 {
            let mut victim = common::connect_retry(&srv.url, "victim");
            let ffd = victim.open("/tmp/flock", O_RDWR | O_CREAT, 0o644).unwrap();
            victim.flock(ffd, LOCK_EX).unwrap();
            let pfd = victim.open("/tmp/posix", O_RDWR | O_CREAT, 0o644).unwrap();
            victim
                .syscall(
                    92,
                    &[pfd as u64, F_SETLK as u64, client::addr_of(&fl)],
                    &mut [Buf::In(&fl)],
                )
                .unwrap();
            // An innocent client on the same loop, connected throughout.
            let mut other = common::connect_retry(&srv.url, "other");
            other.getpid().unwrap();
            victim.set_timeout(Some(Duration::from_secs(10))).unwrap();
            match victim.getppid() {
                Err(client::Error::Io(e))
                    if !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                other => panic!("{spec} round {round}: connection not closed: {other:?}"),
            }
            drop(victim);
            other.getpid().unwrap();
            let ffd = other.open("/tmp/flock", O_RDWR, 0).unwrap();
            eventually(|| other.flock(ffd, LOCK_EX | LOCK_NB));
            let pfd = other.open("/tmp/posix", O_RDWR, 0).unwrap();
            eventually(|| {
                other.syscall(
                    92,
                    &[pfd as u64, F_SETLK as u64, client::addr_of(&fl)],
                    &mut [Buf::In(&fl)],
                )
            });
            drop(other);
        }
        assert!(
            srv.stderr_text()
                .contains("panicked; the connection is closed"),
            "{spec}: {}",
            srv.stderr_text()
        );
        assert_torn_down(&srv, baseline);
    }
}

//! The server's limits (README "Limits"), each set through its environment variable: frame
//! length, connections, syscalls in flight and queued output per connection. Clients that
//! trickle frames or never read their responses cost bounded memory and never stall the loop
//! that serves everyone else (`-c 1`: one loop for all connections).

mod common;

use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Raw, Server, SERVER};

/// A getpid through a fresh connection must come back quickly: the loop is not stalled.
fn assert_served_promptly(srv: &Server) {
    let t = Instant::now();
    let mut c = common::connect_retry(&srv.url, "other");
    for _ in 0..20 {
        assert_eq!(c.getpid().unwrap().1, 1);
    }
    let took = t.elapsed();
    assert!(took < Duration::from_secs(2), "20 getpids took {took:?}");
}

#[test]
fn malformed_limit_variables_stop_the_start() {
    let dir = common::TempDir::new("badlimit");
    let url = format!("unix://{}", dir.path().join("sock").display());
    for (var, value, why) in [
        ("RUMP_MAX_INFLIGHT", "lots", "not a number"),
        ("RUMP_MAX_CONNS", "0", "out of range"),
        ("RUMP_MAX_FRAME", "12", "out of range"),
        ("RUMP_MAX_OUTBUF", "4q", "not a number"),
    ] {
        // Foreground and daemon mode alike: before anything starts, on the terminal.
        for fg in [true, false] {
            let mut cmd = Command::new(SERVER);
            if fg {
                cmd.arg("-s");
            }
            let out = cmd
                .env(var, value)
                .arg(&url)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{var}={value}: {err}");
            assert!(
                err.starts_with(&format!("rump_server: {var}={value}: {why}: give ")),
                "{var}={value}: {err}"
            );
            assert!(!dir.path().join("sock").exists());
        }
    }
}

#[test]
fn verbose_start_prints_the_limits() {
    let srv = Server::unix_env(
        &["-v"],
        &[("RUMP_MAX_CONNS", "77"), ("RUMP_MAX_OUTBUF", "1m")],
    );
    srv.wait_stdout(
        "limits: frame 1048600 bytes, 77 connections, 256 syscalls in flight and 1048576 \
         bytes queued per connection",
    );
}

#[test]
fn frame_limit_from_the_environment() {
    let srv = Server::unix_env(&["-c", "1"], &[("RUMP_MAX_FRAME", "4096")]);
    let sock = srv.sock.as_ref().unwrap();
    // Exactly the limit: served (slots past the eighth are ignored).
    let mut raw = Raw::guest(sock);
    let mut out = Vec::new();
    sp::encode_syscall_req(&mut out, 2, 20, &[]);
    out[..8].copy_from_slice(&4096u64.to_le_bytes());
    out.resize(4096, 0);
    raw.send(&out);
    let (h, p) = raw.read_frame().expect("answer");
    assert_eq!(h.reqno, 2);
    assert_eq!(sp::parse_syscall_resp(&p).unwrap().retval[1], 1);
    // One byte more: the connection is closed after the header, nothing else is read.
    out[..8].copy_from_slice(&4097u64.to_le_bytes());
    raw.send(&out[..24]);
    assert!(raw.closed());
    // A copy whose answer could not fit fails with EFAULT, no COPYIN is sent; smaller ones
    // work on the same connection.
    let mut c = srv.client();
    assert_eq!(
        c.write(1, &[b'x'; 4096]).unwrap_err().errno(),
        Some(common::errno::EFAULT)
    );
    assert_eq!(c.write(1, &[b'y'; 4000]).unwrap(), 4000);
    assert_served_promptly(&srv);
}

#[test]
fn connection_limit_closes_extra_connections_cleanly() {
    let srv = Server::unix_env(&["-c", "2"], &[("RUMP_MAX_CONNS", "3")]);
    let sock = srv.sock.clone().unwrap();
    // connect_retry: the start-up probe's slot is given back asynchronously.
    let mut held: Vec<client::Client> = (0..3)
        .map(|_| common::connect_retry(&srv.url, "held"))
        .collect();
    for _ in 0..5 {
        // Accepted by the kernel's backlog, then closed before the banner: EOF, no bytes.
        let mut s = UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 96];
        assert_eq!(s.read(&mut b).unwrap(), 0, "banner sent beyond the limit");
        assert!(client::Client::connect_named(&srv.url, "extra").is_err());
    }
    for c in &mut held {
        assert_eq!(c.getpid().unwrap().1, 1);
    }
    // A slot given back is usable again.
    drop(held.pop());
    let mut again = common::connect_retry(&srv.url, "again");
    assert_eq!(again.getpid().unwrap().1, 1);
    assert_eq!(held[0].getppid().unwrap(), 1);
}

#[test]
fn inflight_limit_from_the_environment_gets_tryagain_which_clients_retry() {
    let srv = Server::unix_env(&["-c", "1"], &[("RUMP_MAX_INFLIGHT", "4")]);
    let mut raw = Raw::guest(srv.sock.as_ref().unwrap());
    // Ten writes that each wait for a COPYIN: four run, six are refused with TRYAGAIN.
    let mut out = Vec::new();
    for i in 0..10u64 {
        sp::encode_syscall_req(&mut out, 100 + i, 4, &[1, 0x1000 + i, 3]);
    }
    raw.send(&out);
    let mut copyins = Vec::new();
    let mut tryagain = Vec::new();
    while copyins.len() + tryagain.len() < 10 {
        let (h, p) = raw.read_frame().expect("frame");
        match (h.class, h.typ) {
            (sp::Class::REQ, sp::MsgType::COPYIN) => copyins.push((h.reqno, p)),
            (sp::Class::ERROR, _) => {
                assert_eq!(h.u, sp::ErrorCode::TRYAGAIN.0);
                tryagain.push(h.reqno);
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
    assert_eq!(
        (copyins.len(), tryagain),
        (4, (104..110).collect::<Vec<_>>())
    );
    // Answered, the four complete and the slots are free again.
    out.clear();
    for (reqno, _) in &copyins {
        sp::encode_copyin_resp(&mut out, *reqno, b"ok\n");
    }
    raw.send(&out);
    for round in 0..2 {
        for _ in 0..4 {
            let (h, p) = raw.read_frame().expect("response");
            assert_eq!((h.class, h.typ), (sp::Class::RESP, sp::MsgType::SYSCALL));
            assert_eq!(sp::parse_syscall_resp(&p).unwrap().error, 0);
        }
        if round == 0 {
            // Resent, the refused ones run now.
            out.clear();
            for reqno in 104..108u64 {
                sp::encode_syscall_req(&mut out, reqno, 20, &[]);
            }
            raw.send(&out);
        }
    }
    // A pipelining client sees none of it: 24 writes, each retried until it runs.
    let mut c = srv.client();
    let msgs: Vec<Vec<u8>> = (0..24)
        .map(|i| format!("pipelined {i}\n").into_bytes())
        .collect();
    for m in &msgs {
        let addr = client::addr_of(m);
        c.send_syscall(4, &[1, addr, m.len() as u64]).unwrap();
    }
    let mut bufs: Vec<client::Buf<'_>> = msgs.iter().map(|m| client::Buf::In(m)).collect();
    for _ in 0..24 {
        let (_, r) = c.recv_syscall(&mut bufs).unwrap();
        assert!(r.is_ok(), "{r:?}");
    }
    for i in 0..24 {
        srv.wait_stdout(&format!("pipelined {i}\n"));
    }
}

#[test]
fn trickled_frames_cost_bounded_memory_and_stall_no_one() {
    // 100 connections each announce a frame of the limit (64 KiB) and send it a little at a
    // time, some one byte per round: the server holds at most what they sent, the loop
    // keeps serving everyone else, and the frames complete when they finally arrive.
    let srv = Server::unix_env(&["-c", "1"], &[("RUMP_MAX_FRAME", "64k")]);
    let sock = srv.sock.clone().unwrap();
    let before = common::rss_kib(srv.pid());
    let mut slow: Vec<(Raw, Vec<u8>, usize)> = (0..100u64)
        .map(|i| {
            let raw = Raw::guest(&sock);
            let mut f = Vec::new();
            sp::encode_syscall_req(&mut f, 7 + i, 20, &[]);
            f[..8].copy_from_slice(&(64u64 << 10).to_le_bytes());
            f.resize(64 << 10, 0);
            (raw, f, 0)
        })
        .collect();
    let end = Instant::now() + Duration::from_millis(1500);
    let mut round = 0;
    while Instant::now() < end {
        for (i, (raw, f, sent)) in slow.iter_mut().enumerate() {
            // Half send a byte per round, the others 2 KiB; all stop short of the end.
            let n = if i % 2 == 0 { 1 } else { 2048 };
            let n = n.min(f.len() - 1 - *sent);
            raw.send(&f[*sent..*sent + n]);
            *sent += n;
        }
        round += 1;
        if round % 10 == 0 {
            assert_served_promptly(&srv);
        }
    }
    let grown_kib = common::rss_kib(srv.pid()).saturating_sub(before);
    eprintln!("trickle: RSS +{grown_kib} KiB");
    let sent_kib: usize = slow.iter().map(|(_, _, s)| s).sum::<usize>() >> 10;
    // What was sent (≤ 100 × 64 KiB), buffered at most twice over, plus slack.
    assert!(
        grown_kib < (2 * sent_kib as u64).max(1024) + 8 * 1024,
        "server RSS grew {grown_kib} KiB for {sent_kib} KiB of partial frames"
    );
    assert_served_promptly(&srv);
    // The last byte completes every frame; each is answered.
    for (raw, f, sent) in &mut slow {
        raw.send(&f[*sent..]);
        let (h, p) = raw.read_frame().expect("answer");
        assert_eq!((h.class, h.typ), (sp::Class::RESP, sp::MsgType::SYSCALL));
        assert_eq!(sp::parse_syscall_resp(&p).unwrap().error, 0);
    }
}

#[test]
fn a_client_that_never_reads_its_copyouts_costs_the_output_limit() {
    // Reads of 64 KiB from /dev/zero, pipelined, never read back: each is a 64 KiB COPYOUT.
    // With RUMP_MAX_OUTBUF=256k the server queues about that much for the connection, stops
    // reading from it, and goes on serving others on the same (only) loop.
    let srv = Server::unix_env(&["-c", "1", "-lrumpvfs"], &[("RUMP_MAX_OUTBUF", "256k")]);
    let mut c = srv.client();
    let fd = c.open("/dev/zero", 0, 0).unwrap();
    // The same connection, written to directly and never read.
    // SAFETY: dup(2) of the client's socket gives a descriptor that nothing else owns.
    let mut s = unsafe { UnixStream::from_raw_fd(libc::dup(c.as_raw_fd())) };
    let before = common::rss_kib(srv.pid());
    let mut batch = Vec::new();
    for i in 0..64u64 {
        sp::encode_syscall_req(&mut batch, 1000 + i, 3, &[fd as u64, 0x1000, 64 << 10]);
    }
    s.set_nonblocking(true).unwrap();
    let mut sent = 0usize;
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        let from = sent % batch.len();
        match s.write(&batch[from..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("send: {e}"),
        }
    }
    let asked_mib = sent / 48 / 16; // 48-byte requests of 64 KiB each
    let grown_kib = common::rss_kib(srv.pid()).saturating_sub(before);
    eprintln!("never reads: RSS +{grown_kib} KiB for {asked_mib} MiB asked");
    assert!(asked_mib > 16, "only {asked_mib} MiB asked for");
    assert!(
        grown_kib < 12 * 1024,
        "server RSS grew {grown_kib} KiB for {asked_mib} MiB of unread COPYOUTs"
    );
    assert_served_promptly(&srv);
}

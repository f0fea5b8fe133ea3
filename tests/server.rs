//! End-to-end tests: the real `rump_server` binary driven through the client crate.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{errno, Raw, Server, TempDir, HALT, SERVER};

#[test]
fn banner_format() {
    let srv = Server::unix(&["-c", "1"]);
    let (_raw, banner) = Raw::connect(srv.sock.as_ref().unwrap());
    assert!(banner.len() <= 95, "{banner:?}");
    assert!(banner.starts_with("RUMPSP-0.4-NetBSD-"), "{banner:?}");
    assert!(banner.ends_with("/amd64\n"), "{banner:?}");
    assert_eq!(banner.matches('\n').count(), 1);
    let c = srv.client();
    assert_eq!(c.banner(), banner);
}

#[test]
fn pids_start_at_two_with_parent_init() {
    let srv = Server::unix(&[]);
    // The readiness probe in Server::unix already used pid 2; start a fresh server manually
    // with a raw readiness check instead to see pid 2.
    drop(srv);
    let dir = TempDir::new("pid");
    let sock = dir.path().join("s");
    let url = format!("unix://{}", sock.display());
    let mut child = Command::new(SERVER).args(["-s", &url]).spawn().unwrap();
    let mut a = common::connect_retry(&url, "first");
    assert_eq!(a.getpid().unwrap(), (2, 1));
    let mut b = client::Client::connect_named(&url, "second").unwrap();
    assert_eq!(b.getpid().unwrap(), (3, 1));
    assert_eq!(b.getppid().unwrap(), 1);
    assert_eq!(a.getpid().unwrap(), (2, 1));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn credentials_and_umask() {
    let srv = Server::unix(&[]);
    let mut c = srv.client();
    assert_eq!(c.getuid().unwrap(), (0, 0));
    assert_eq!(c.geteuid().unwrap(), 0);
    assert_eq!(c.getgid().unwrap(), (0, 0));
    assert_eq!(c.getegid().unwrap(), 0);
    assert_eq!(c.issetugid().unwrap(), 0);
    assert_eq!(c.umask(0o077).unwrap(), 0o022);
    assert_eq!(c.umask(0o022).unwrap(), 0o077);
}

#[test]
fn console_write_reaches_server_stdout() {
    let srv = Server::unix(&[]);
    let mut c = srv.client();
    assert_eq!(c.write(1, b"hello\n").unwrap(), 6);
    srv.wait_stdout("hello\n");
    assert_eq!(c.writev(2, &[b"two ", b"parts\n"]).unwrap(), 10);
    srv.wait_stdout("two parts\n");
    // A big write crosses several COPYIN chunks.
    let big: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    assert_eq!(c.write(1, &big).unwrap(), big.len());
    srv.wait_stdout(std::str::from_utf8(&big[big.len() - 100..]).unwrap());
    // The console is write-only.
    let mut buf = [0u8; 4];
    assert_eq!(c.read(0, &mut buf).unwrap_err().errno(), Some(errno::EBADF));
}

#[test]
fn unknown_syscalls_are_enosys() {
    let srv = Server::unix(&[]);
    let mut c = srv.client();
    for nr in [1u32, 2, 37, 59, 211, 511, 512, 4096, u32::MAX] {
        let e = c.syscall(nr, &[], &mut []).unwrap_err();
        assert_eq!(e.errno(), Some(errno::ENOSYS), "syscall {nr}");
    }
    // The connection keeps working.
    assert_eq!(c.getpid().unwrap().1, 1);
}

#[test]
fn descriptors_dup_fcntl_close() {
    let srv = Server::unix(&[]);
    let mut c = srv.client();
    let fd = c.dup(1).unwrap();
    assert_eq!(fd, 3);
    assert_eq!(c.dup2(1, 10).unwrap(), 10);
    assert_eq!(c.write(10, b"via ten\n").unwrap(), 8);
    srv.wait_stdout("via ten\n");
    const F_DUPFD: u32 = 0;
    const F_GETFD: u32 = 1;
    const F_SETFD: u32 = 2;
    assert_eq!(c.fcntl(1, F_DUPFD, 20).unwrap(), 20);
    assert_eq!(c.fcntl(20, F_GETFD, 0).unwrap(), 0);
    c.fcntl(20, F_SETFD, 1).unwrap();
    assert_eq!(c.fcntl(20, F_GETFD, 0).unwrap(), 1);
    c.close(20).unwrap();
    assert_eq!(c.close(20).unwrap_err().errno(), Some(errno::EBADF));
    assert_eq!(c.write(20, b"x").unwrap_err().errno(), Some(errno::EBADF));
    // dup3: the current number refuses from == to, the compat one allows it.
    assert_eq!(c.dup3(10, 10, 0).unwrap_err().errno(), Some(errno::EINVAL));
    assert_eq!(c.dup3_compat(10, 10, 0).unwrap(), 10);
    assert_eq!(c.dup3(1, 11, 0x0040_0000).unwrap(), 11);
    assert_eq!(c.fcntl(11, F_GETFD, 0).unwrap(), 1);
}

#[test]
fn non_handshake_first_frame_gets_error_auth_and_disconnect() {
    let srv = Server::unix(&[]);
    let sock = srv.sock.clone().unwrap();
    let (mut raw, _) = Raw::connect(&sock);
    let mut out = Vec::new();
    sp::encode_syscall_req(&mut out, 5, 20, &[]);
    raw.send(&out);
    let (h, _) = raw.read_frame().expect("an ERROR frame");
    assert_eq!(
        (h.class, h.reqno, h.u),
        (sp::Class::ERROR, 5, sp::ErrorCode::AUTH.0)
    );
    assert!(raw.closed());
    // AUTH and EXEC handshakes on a new connection: ERROR AUTH too.
    for sub in [
        sp::HandshakeType::AUTH,
        sp::HandshakeType::EXEC,
        sp::HandshakeType(9),
    ] {
        let (mut raw, _) = Raw::connect(&sock);
        let mut out = Vec::new();
        sp::encode_handshake_req(&mut out, 1, sub, b"x\0");
        raw.send(&out);
        let (h, _) = raw.read_frame().expect("an ERROR frame");
        assert_eq!((h.class, h.u), (sp::Class::ERROR, sp::ErrorCode::AUTH.0));
        assert!(raw.closed());
    }
    // Everyone else is still served.
    assert_eq!(srv.client().getpid().unwrap().1, 1);
}

#[test]
fn malformed_frames() {
    let srv = Server::unix(&[]);
    let sock = srv.sock.clone().unwrap();
    // A header whose length is below 24: connection dropped.
    let mut raw = Raw::guest(&sock);
    let mut h = sp::Header {
        len: 10,
        reqno: 2,
        class: sp::Class::REQ,
        typ: sp::MsgType::SYSCALL,
        u: 20,
    }
    .to_bytes()
    .to_vec();
    raw.send(&h);
    assert!(raw.closed());
    // A frame longer than the limit: dropped before its payload is read.
    let mut raw = Raw::guest(&sock);
    h = sp::Header {
        len: 1 << 40,
        reqno: 2,
        class: sp::Class::REQ,
        typ: sp::MsgType::SYSCALL,
        u: 4,
    }
    .to_bytes()
    .to_vec();
    raw.send(&h);
    assert!(raw.closed());
    // Unknown class and the ERROR class: ERROR MALFORMED_REQUEST, connection kept.
    let mut raw = Raw::guest(&sock);
    for class in [sp::Class(2), sp::Class(7)] {
        let f = sp::Header {
            len: 24,
            reqno: 9,
            class,
            typ: sp::MsgType(0),
            u: 0,
        }
        .to_bytes();
        raw.send(&f);
        let (h, _) = raw.read_frame().unwrap();
        assert_eq!((h.class, h.reqno, h.u), (sp::Class::ERROR, 9, 7));
    }
    // A request type a client must not send (COPYIN), and an unknown type: MALFORMED, kept.
    for typ in [sp::MsgType::COPYIN, sp::MsgType(77)] {
        let f = sp::Header {
            len: 24,
            reqno: 10,
            class: sp::Class::REQ,
            typ,
            u: 0,
        }
        .to_bytes();
        raw.send(&f);
        let (h, _) = raw.read_frame().unwrap();
        assert_eq!((h.class, h.reqno, h.u), (sp::Class::ERROR, 10, 7));
    }
    // A GUEST handshake in RUNNING: MALFORMED and shut down.
    let mut out = Vec::new();
    sp::encode_handshake_req(&mut out, 11, sp::HandshakeType::GUEST, b"again\0");
    raw.send(&out);
    let (h, _) = raw.read_frame().unwrap();
    assert_eq!((h.class, h.reqno, h.u), (sp::Class::ERROR, 11, 7));
    assert!(raw.closed());
    // The server still serves others.
    assert_eq!(srv.client().getpid().unwrap().1, 1);
}

#[test]
fn short_payload_and_big_sysnum() {
    let srv = Server::unix(&[]);
    let mut raw = Raw::guest(srv.sock.as_ref().unwrap());
    // write with only the fd slot: buf and nbyte read as zero → writes 0 bytes.
    let mut out = Vec::new();
    sp::encode_syscall_req(&mut out, 2, 4, &[1]);
    raw.send(&out);
    let (h, p) = raw.read_frame().unwrap();
    assert_eq!(
        (h.class, h.typ, h.reqno),
        (sp::Class::RESP, sp::MsgType::SYSCALL, 2)
    );
    let r = sp::parse_syscall_resp(&p).unwrap();
    assert_eq!((r.error, r.retval), (0, [0, 0]));
    // dup2 with a 4-byte payload (half a slot): `to` reads as 0.
    let f = sp::Header {
        len: 28,
        reqno: 3,
        class: sp::Class::REQ,
        typ: sp::MsgType::SYSCALL,
        u: 90,
    };
    let mut bytes = f.to_bytes().to_vec();
    bytes.extend_from_slice(&2u32.to_le_bytes());
    raw.send(&bytes);
    let (_, p) = raw.read_frame().unwrap();
    assert_eq!(sp::parse_syscall_resp(&p).unwrap().retval[0], 0);
    // sysnum >= 512 → ENOSYS.
    out.clear();
    sp::encode_syscall_req(&mut out, 4, 512 + 20, &[]);
    raw.send(&out);
    let (_, p) = raw.read_frame().unwrap();
    assert_eq!(sp::parse_syscall_resp(&p).unwrap().error, errno::ENOSYS);
}

#[test]
fn copy_response_of_wrong_length_is_efault() {
    let srv = Server::unix(&[]);
    let mut raw = Raw::guest(srv.sock.as_ref().unwrap());
    let mut out = Vec::new();
    sp::encode_syscall_req(&mut out, 2, 4, &[1, 0x1000, 6]);
    raw.send(&out);
    let (h, p) = raw.read_frame().unwrap();
    assert_eq!((h.class, h.typ), (sp::Class::REQ, sp::MsgType::COPYIN));
    let req = sp::parse_copy_req(&p).unwrap();
    assert_eq!((req.len, req.addr), (6, 0x1000));
    out.clear();
    sp::encode_copyin_resp(&mut out, h.reqno, b"abc"); // 3 bytes for 6 asked
    raw.send(&out);
    let (h, p) = raw.read_frame().unwrap();
    assert_eq!((h.class, h.reqno), (sp::Class::RESP, 2));
    assert_eq!(sp::parse_syscall_resp(&p).unwrap().error, errno::EFAULT);
    // A response with an unknown reqno is dropped; the connection goes on.
    out.clear();
    sp::encode_copyin_resp(&mut out, 999, b"zzz");
    sp::encode_syscall_req(&mut out, 3, 20, &[]);
    raw.send(&out);
    let (h, p) = raw.read_frame().unwrap();
    assert_eq!(h.reqno, 3);
    assert_eq!(sp::parse_syscall_resp(&p).unwrap().retval[1], 1);
}

#[test]
fn unfinished_frame_does_not_block_others() {
    let srv = Server::unix(&["-c", "1"]);
    let mut raw = Raw::guest(srv.sock.as_ref().unwrap());
    let mut out = Vec::new();
    sp::encode_syscall_req(&mut out, 2, 20, &[1, 2, 3]);
    raw.send(&out[..30]); // header and a few payload bytes, never the rest
                          // One byte at a time for another client: still decoded.
    let mut slow = Raw::guest(srv.sock.as_ref().unwrap());
    out.clear();
    sp::encode_syscall_req(&mut out, 2, 20, &[]);
    for b in &out {
        slow.send(std::slice::from_ref(b));
    }
    let (h, p) = slow.read_frame().unwrap();
    assert_eq!(h.reqno, 2);
    assert_eq!(sp::parse_syscall_resp(&p).unwrap().retval[1], 1);
    for _ in 0..10 {
        assert_eq!(srv.client().getpid().unwrap().1, 1);
    }
}

#[test]
fn prefork_and_fork_inherit_descriptors() {
    let srv = Server::unix(&[]);
    let mut parent = srv.client();
    let (ppid_pid, _) = parent.getpid().unwrap();
    assert_eq!(parent.dup2(1, 7).unwrap(), 7);
    let cookie = parent.prefork().unwrap();
    // Changes after PREFORK are not seen by the child.
    assert_eq!(parent.dup2(1, 8).unwrap(), 8);
    let mut child = client::Client::connect_fork(&srv.url, &cookie).unwrap();
    let (cpid, cppid) = child.getpid().unwrap();
    assert_ne!(cpid, ppid_pid);
    assert_eq!(cppid, 1, "the child is re-parented to init, as in NetBSD");
    assert_eq!(child.write(7, b"child via 7\n").unwrap(), 12);
    srv.wait_stdout("child via 7\n");
    assert_eq!(child.close(8).unwrap_err().errno(), Some(errno::EBADF));
    // Closing in the child leaves the parent's descriptor alone.
    child.close(7).unwrap();
    assert_eq!(parent.write(7, b"parent via 7\n").unwrap(), 13);
    srv.wait_stdout("parent via 7\n");
    // A cookie works once.
    let e = client::Client::connect_fork(&srv.url, &cookie).unwrap_err();
    assert!(
        matches!(e, client::Error::Sp(sp::ErrorCode::INVALID_PREFORK)),
        "{e}"
    );
}

/// NetBSD's server keeps a prepared process after the connection that asked for it has gone,
/// and NetBSD's `rumpclient_daemon` needs that (its parent prepares the fork and exits; the
/// child claims it afterwards): the cookie stays claimable (for `server::ORPHAN_TTL`), once.
#[test]
fn fork_cookie_outlives_its_connection_as_netbsds_does() {
    let srv = Server::unix(&[]);
    let mut parent = srv.client();
    let ppid = parent.getpid().unwrap().0;
    let cookie = parent.prefork().unwrap();
    drop(parent);
    std::thread::sleep(Duration::from_millis(200));
    let mut child = client::Client::connect_fork(&srv.url, &cookie).unwrap();
    let (pid, child_ppid) = child.getpid().unwrap();
    // The parent exited: its child was re-parented to init.
    assert!(
        pid != ppid && child_ppid == 1,
        "pid {pid} ppid {child_ppid}"
    );
    let e = client::Client::connect_fork(&srv.url, &cookie).unwrap_err();
    assert!(
        matches!(e, client::Error::Sp(sp::ErrorCode::INVALID_PREFORK)),
        "{e}"
    );
}

/// Orphaned cookies are bounded: many connections that prepare forks and go keep at most
/// `server::ORPHANS_MAX` prepared processes (the oldest end first).
#[test]
fn orphaned_fork_cookies_are_bounded() {
    let srv = Server::unix_env(&[], &[("RUMP_MAX_FORKS", "64")]);
    let mut first = None;
    for i in 0..6 {
        let mut c = srv.client();
        for k in 0..64 {
            let cookie = c.prefork().unwrap();
            if i == 0 && k == 0 {
                first = Some(cookie);
            }
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    // 384 prepared, 256 kept: the very first cookie is gone.
    let e = client::Client::connect_fork(&srv.url, &first.unwrap()).unwrap_err();
    assert!(
        matches!(e, client::Error::Sp(sp::ErrorCode::INVALID_PREFORK)),
        "{e}"
    );
}

#[test]
fn exec_closes_cloexec_descriptors() {
    let srv = Server::unix(&[]);
    let mut c = srv.client();
    let pid = c.getpid().unwrap().0;
    assert_eq!(c.dup3(1, 5, 0x0040_0000).unwrap(), 5); // O_CLOEXEC
    assert_eq!(c.dup2(1, 6).unwrap(), 6);
    c.exec_handshake("newimage").unwrap();
    assert_eq!(c.getpid().unwrap().0, pid, "exec keeps the pid");
    assert_eq!(c.close(5).unwrap_err().errno(), Some(errno::EBADF));
    c.close(6).unwrap();
}

#[test]
fn many_connections_pipelined_getpid() {
    let srv = Server::unix(&["-c", "2"]);
    let url = srv.url.clone();
    let threads: Vec<_> = (0..64)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut c = client::Client::connect_named(&url, "load").unwrap();
                let (pid, _) = c.getpid().unwrap();
                let depth = 4;
                let total = 1000;
                let mut sent = 0;
                let mut done = 0;
                while done < total {
                    while sent < total && sent - done < depth {
                        c.send_syscall(20, &[]).unwrap();
                        sent += 1;
                    }
                    let (_reqno, r) = c.recv_syscall(&mut []).unwrap();
                    assert_eq!(r.unwrap(), [pid as i64, 1]);
                    done += 1;
                }
                pid
            })
        })
        .collect();
    let mut pids: Vec<i32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 64, "every connection is its own process");
}

#[test]
fn halt_exits_zero_and_removes_socket() {
    let mut srv = Server::unix(&[]);
    let sock = srv.sock.clone().unwrap();
    let mut other = srv.client();
    let out = srv.halt_with(std::path::Path::new(HALT), &[]);
    assert!(
        out.status.success(),
        "rump.halt: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = srv.wait_exit(10);
    assert_eq!(st.code(), Some(0));
    assert!(!sock.exists(), "socket file must be removed");
    let text = srv.stdout_text();
    assert!(text.contains("rump kernel halting...\n"), "{text}");
    assert!(text.contains("halted\n"), "{text}");
    assert!(
        other.getpid().is_err(),
        "other clients see the connection end"
    );
}

#[test]
fn halt_through_a_link_named_rump_halt() {
    let mut srv = Server::unix(&[]);
    let link = srv.dir.path().join("rump.halt");
    std::os::unix::fs::symlink(SERVER, &link).unwrap();
    let out = srv.halt_with(&link, &["-n"]);
    assert!(
        out.status.success(),
        "rump.halt: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(srv.wait_exit(10).code(), Some(0));
    // Usage errors.
    let out = Command::new(&link).arg("now").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: rump.halt [-dhn]"));
    // No server: init failed.
    let out = Command::new(&link)
        .env("RUMP_SERVER", "unix:///nonexistent/sock")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("rump.halt: init failed:"));
}

#[test]
fn halt_with_rb_halt_keeps_process_but_stops_serving() {
    let mut srv = Server::unix(&[]);
    let sock = srv.sock.clone().unwrap();
    let out = srv.halt_with(std::path::Path::new(HALT), &["-h"]);
    assert!(out.status.success());
    srv.wait_stdout("rump kernel halted (with RB_HALT, not exiting)");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        srv.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "process stays"
    );
    assert!(!sock.exists());
    assert!(client::Client::connect_named(&srv.url, "late").is_err());
    // SIGTERM still ends the halted server.
    let st = Command::new("kill")
        .args(["-TERM", &srv.pid().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(srv.wait_exit(10).code(), Some(0));
}

#[test]
fn sigterm_halts_cleanly() {
    let mut srv = Server::unix(&[]);
    let sock = srv.sock.clone().unwrap();
    // SAFETY-free: use the kill command.
    let st = Command::new("kill")
        .args(["-TERM", &srv.pid().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(srv.wait_exit(10).code(), Some(0));
    assert!(!sock.exists());
    assert!(srv.stdout_text().contains("halted\n"));
}

#[test]
fn tcp_transport() {
    let mut srv = Server::tcp(&["-c", "2"]);
    let mut c = srv.client();
    assert!(c.banner().starts_with("RUMPSP-0.4-NetBSD-"));
    let (pid, ppid) = c.getpid().unwrap();
    assert!(pid >= 2 && ppid == 1);
    assert_eq!(c.write(1, b"over tcp\n").unwrap(), 9);
    srv.wait_stdout("over tcp\n");
    let out = srv.halt_with(std::path::Path::new(HALT), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(srv.wait_exit(10).code(), Some(0));
}

/// `tcp://[::1]:port/`: an IPv6 loopback URL for the server, a client and rump.halt (NetBSD's
/// parser cannot read a bracketed host; ours can).
#[test]
fn tcp_transport_over_ipv6_loopback() {
    let Some(mut srv) = Server::tcp6(&["-c", "1"]) else {
        eprintln!("skipped: no IPv6 loopback on this host");
        return;
    };
    assert!(srv.url.starts_with("tcp://[::1]:"));
    let mut c = srv.client();
    let (pid, ppid) = c.getpid().unwrap();
    assert!(pid >= 2 && ppid == 1);
    drop(c);
    let out = srv.halt_with(std::path::Path::new(HALT), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(srv.wait_exit(10).code(), Some(0));
}

#[test]
fn daemon_mode_returns_when_accepting() {
    let dir = TempDir::new("daemon");
    let sock = dir.path().join("d.sock");
    let url = format!("unix://{}", sock.display());
    let st = Command::new(SERVER)
        .args(["-c", "1", &url])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(0));
    // Accepting right away, without any retry.
    let mut c = client::Client::connect_named(&url, "d").expect("daemon accepts at once");
    assert_eq!(c.getpid().unwrap().1, 1);
    let out = Command::new(HALT)
        .env("RUMP_SERVER", &url)
        .output()
        .unwrap();
    assert!(out.status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sock.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "daemon never removed its socket"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn bind_failure_reports_netbsd_errno() {
    let srv = Server::unix(&[]);
    // Same socket path again: EADDRINUSE. Foreground: exit 1.
    let out = Command::new(SERVER)
        .args(["-s", &srv.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rump_sp: failed to bind to URL"), "{err}");
    assert!(
        err.contains("rump server init failed: Address already in use"),
        "{err}"
    );
    // Daemon mode: the command exits with NetBSD's EADDRINUSE, 48.
    let out = Command::new(SERVER).arg(&srv.url).output().unwrap();
    assert_eq!(out.status.code(), Some(48));
}

#[test]
fn command_line_errors() {
    let run = |args: &[&str]| Command::new(SERVER).args(args).output().unwrap();
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: rump_server [-s]"));
    let out = run(&["-s", "-lrumpfs_nfs", "unix://x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not supported yet"));
    let out = run(&["-s", "-d", "key=/dk,hostpath=x,size=1m", "unix://x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("add -lrumpvfs"));
    let out = run(&["-s", "-d", "key=/dk,hostpath=x", "unix://x"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("incomplete drivespec"));
    let out = run(&["-s", "-r", "1m", "unix://x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-r 1048576: too small"));
    let out = run(&["-s", "-lnosuchcomponent", "unix://x"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed to load -libraries"));
    let out = run(&["-s", "tcp6://[::1]:3/"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rump_sp"));
}

#[test]
fn verbose_prints_boot_summary() {
    let srv = Server::unix(&["-v", "-c", "2"]);
    srv.wait_stdout("components: rump rumpuser rumpkern_sysproxy");
    let backend = match std::env::var("RUMP_IO_BACKEND").as_deref() {
        Ok("epoll") => "epoll",
        _ => "io_uring",
    };
    srv.wait_stdout(&format!("cpus: 2 {backend} loops"));
}

#[test]
fn rump_allserver_serves() {
    let exe = env!("CARGO_BIN_EXE_rump_allserver");
    let dir = TempDir::new("all");
    let sock = dir.path().join("a.sock");
    let url = format!("unix://{}", sock.display());
    let mut child = Command::new(exe)
        .args(["-s", "-c", "1", &url])
        .spawn()
        .unwrap();
    let mut c = common::connect_retry(&url, "all");
    assert_eq!(c.getpid().unwrap(), (2, 1));
    let out = Command::new(HALT)
        .env("RUMP_SERVER", &url)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn relative_unix_socket_is_made_absolute_and_removed() {
    let dir = TempDir::new("rel");
    let mut child = Command::new(SERVER)
        .current_dir(dir.path())
        .args(["-s", "-c", "1", "unix://rel.sock"])
        .spawn()
        .unwrap();
    let sock = dir.path().join("rel.sock");
    let url = format!("unix://{}", sock.display());
    common::connect_retry(&url, "rel");
    // rump.halt runs elsewhere; the server removes the socket it bound, by absolute path.
    let out = Command::new(HALT)
        .env("RUMP_SERVER", &url)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(!sock.exists());
}

#[test]
fn disconnect_while_a_copyin_is_pending() {
    let srv = Server::unix(&["-c", "1"]);
    for _ in 0..20 {
        let mut raw = Raw::guest(srv.sock.as_ref().unwrap());
        let mut out = Vec::new();
        sp::encode_syscall_req(&mut out, 2, 4, &[1, 0x1000, 64]);
        raw.send(&out);
        let (h, _) = raw.read_frame().unwrap();
        assert_eq!(h.typ, sp::MsgType::COPYIN);
        drop(raw); // gone while the server waits for the copy
    }
    // Pids keep being handed out (the torn-down processes freed theirs, not reused soon).
    let mut c = srv.client();
    let (pid, ppid) = c.getpid().unwrap();
    assert!(pid > 20 && ppid == 1, "pid {pid}");
    assert_eq!(c.write(1, b"still here\n").unwrap(), 11);
    srv.wait_stdout("still here\n");
}

#[test]
fn syscalls_in_flight_beyond_the_limit_get_tryagain() {
    let srv = Server::unix(&["-c", "1"]);
    let mut raw = Raw::guest(srv.sock.as_ref().unwrap());
    // 300 writes that each wait for a COPYIN we never answer: the first 256 are in flight,
    // the rest are refused with ERROR TRYAGAIN (librumpclient would resend them).
    let mut out = Vec::new();
    for i in 0..300u64 {
        sp::encode_syscall_req(&mut out, 100 + i, 4, &[1, 0x1000, 8]);
    }
    raw.send(&out);
    let (mut copyins, mut tryagain) = (0, 0);
    while copyins + tryagain < 300 {
        let (h, _) = raw.read_frame().expect("frame");
        match (h.class, h.typ) {
            (sp::Class::REQ, sp::MsgType::COPYIN) => copyins += 1,
            (sp::Class::ERROR, _) => {
                assert_eq!(h.u, sp::ErrorCode::TRYAGAIN.0);
                tryagain += 1;
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
    assert_eq!((copyins, tryagain), (256, 44));
}

#[test]
fn a_client_that_never_reads_costs_bounded_memory() {
    use std::io::Write;
    let srv = Server::unix(&["-c", "1"]);
    let mut raw = Raw::guest(srv.sock.as_ref().unwrap());
    let before = common::rss_kib(srv.pid());
    // Pipeline getpid requests for 2 s without ever reading a response.
    let mut batch = Vec::new();
    for i in 0..4096u64 {
        sp::encode_syscall_req(&mut batch, 10 + i, 20, &[]);
    }
    raw.s.set_nonblocking(true).unwrap();
    let mut sent_bytes = 0usize;
    let end = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < end {
        // A short write leaves the rest of the batch to send first (frames stay whole).
        let from = sent_bytes % batch.len();
        match raw.s.write(&batch[from..]) {
            Ok(n) => sent_bytes += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("send: {e}"),
        }
    }
    let grown_kib = common::rss_kib(srv.pid()).saturating_sub(before);
    // The outbox stops at its high-water mark (4 MiB) plus one receive batch of responses.
    assert!(
        grown_kib < 16 * 1024,
        "server RSS grew {grown_kib} KiB ({sent_bytes} bytes sent)"
    );
    // Everyone else is still served.
    assert_eq!(srv.client().getpid().unwrap().1, 1);
}

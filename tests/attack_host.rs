//! Issue 19, host attacks: a hostile client must not run code on the host (modctl of bytes it
//! wrote through an etfs key), nor stall the server through the host console, and daemon
//! mode must survive components that start threads. Each test plays the attack over the wire
//! against the real binary. Tests that build C skip (with a note) when `cc` is missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use client::{Buf, Client};
use common::{Server, TempDir, SERVER};

const SYS_MODCTL: u32 = 246;
const MODCTL_LOAD: u64 = 0;
const EPERM: i32 = 1;
const EACCES: i32 = 13;

fn have_cc() -> bool {
    let ok = Command::new("cc")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: no C compiler `cc`");
    }
    ok
}

/// A shared object whose constructor creates the host file `marker` (the attacker's proof
/// of running code on the host).
fn evil_so(dir: &Path, marker: &Path) -> PathBuf {
    let code = format!(
        "#include <fcntl.h>\n#include <unistd.h>\n\
         __attribute__((constructor)) static void pwn(void) {{\n\
         int fd = open(\"{}\", O_CREAT | O_WRONLY, 0644);\n\
         if (fd >= 0) close(fd);\n}}\n",
        marker.display()
    );
    common::build_shared_object(dir, "libevil.so", Some(&code), &[])
}

fn modctl_load(c: &mut Client, path: &str) -> Result<(), i32> {
    let name = format!("{path}\0").into_bytes();
    let mut ml = [0u8; 32];
    ml[..8].copy_from_slice(&client::addr_of(&name).to_le_bytes());
    let args = [MODCTL_LOAD, client::addr_of(&ml)];
    c.syscall(SYS_MODCTL, &args, &mut [Buf::In(&ml), Buf::In(&name)])
        .map(drop)
        .map_err(|e| e.errno().unwrap_or_else(|| panic!("modctl {path}: {e:?}")))
}

fn rot13(c: &mut Client, text: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; text.len()];
    let args = [
        client::addr_of(text),
        text.len() as u64,
        client::addr_of(&out),
        out.len() as u64,
    ];
    c.syscall(210, &args, &mut [Buf::In(text), Buf::Out(&mut out)])
        .unwrap();
    out
}

/// Writes `bytes` at offset 0 of the key through a read-write open.
fn write_key(c: &mut Client, key: &str, bytes: &[u8]) {
    let fd = c.open(key, client::fs::O_RDWR, 0).unwrap();
    assert_eq!(c.pwrite(fd, bytes, 0).unwrap(), bytes.len());
    c.fsync(fd).unwrap();
    c.close(fd).unwrap();
}

/// The attack of issue 19: a writable `type=reg` key (as the README once recommended for
/// loadable components, and any other), overwritten with the client's own ELF object, then
/// loaded with modctl. The load must fail with EPERM and the constructor must never run.
#[test]
fn bytes_a_client_writes_through_an_etfs_key_never_run_on_the_host() {
    if !have_cc() {
        return;
    }
    let dir = TempDir::new("pwn");
    let marker = dir.path().join("PWNED");
    let evil = std::fs::read(evil_so(dir.path(), &marker)).unwrap();
    let lib = common::build_shared_object(dir.path(), "libexample.so", None, &[]);
    let scratch = dir.path().join("scratch.img");
    let srv = Server::unix(&[
        "-lrumpvfs",
        "-d",
        &format!("key=/stand/libx.so,hostpath={},type=reg", lib.display()),
        "-d",
        &format!(
            "key=/scratch,hostpath={},size=1m,type=reg",
            scratch.display()
        ),
    ]);
    let mut c = srv.client();
    // The host library itself, behind a key not marked as a module, does not load either.
    assert_eq!(modctl_load(&mut c, "/stand/libx.so"), Err(EPERM));
    for key in ["/stand/libx.so", "/scratch"] {
        write_key(&mut c, key, &evil);
        let r = modctl_load(&mut c, key);
        assert!(
            !marker.exists(),
            "{key}: the client's code ran on the host ({r:?})"
        );
        assert_eq!(r, Err(EPERM), "{key}");
    }
    // The server is still serving.
    assert!(c.getpid().is_ok());
}

/// A `module` key refuses write opens, leaves its host file alone, still loads, and loads
/// what the server opened at start even when the host path is replaced afterwards.
#[test]
fn a_module_key_is_read_only_and_loads_what_the_server_opened() {
    if !have_cc() {
        return;
    }
    let dir = TempDir::new("modkey");
    let marker = dir.path().join("PWNED");
    let evil = evil_so(dir.path(), &marker);
    let lib = common::build_shared_object(dir.path(), "libexample.so", None, &[]);
    let before = std::fs::read(&lib).unwrap();
    let srv = Server::unix(&[
        "-lrumpvfs",
        "-d",
        &format!("key=/stand/libexample.so,hostpath={},module", lib.display()),
    ]);
    let mut c = srv.client();
    for flags in [client::fs::O_RDWR, client::fs::O_WRONLY] {
        let e = c.open("/stand/libexample.so", flags, 0).unwrap_err();
        assert_eq!(e.errno(), Some(EACCES), "open flags {flags:#x}");
    }
    let fd = c
        .open("/stand/libexample.so", client::fs::O_RDONLY, 0)
        .unwrap();
    assert!(c.pwrite(fd, b"x", 0).is_err());
    c.close(fd).unwrap();
    assert_eq!(std::fs::read(&lib).unwrap(), before, "host file unchanged");
    // The operator's host path is replaced by another library after start: what loads is
    // the file the server opened.
    std::fs::rename(&evil, &lib).unwrap();
    modctl_load(&mut c, "/stand/libexample.so").unwrap();
    assert_eq!(rot13(&mut c, b"abc"), b"nop");
    assert!(!marker.exists(), "the replaced host path was loaded");
}

/// A module's host file cannot also be mapped by another drivespec (which could write it).
#[test]
fn a_module_host_file_is_mapped_once() {
    let dir = TempDir::new("modtwice");
    let lib = dir.path().join("libm.so");
    std::fs::write(&lib, b"\x7fELF").unwrap();
    let url = format!("unix://{}/sock", dir.path().display());
    let module = format!("key=/stand/m.so,hostpath={},module", lib.display());
    let plain = format!("key=/m,hostpath={},type=reg", lib.display());
    for order in [[&module, &plain], [&plain, &module]] {
        let out = Command::new(SERVER)
            .args(["-s", "-lrumpvfs", "-d", order[0], "-d", order[1], &url])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("also mapped by a module drivespec"), "{err}");
    }
    // A missing module file is not created.
    let missing = dir.path().join("missing.so");
    let out = Command::new(SERVER)
        .args(["-s", "-lrumpvfs", "-d"])
        .arg(format!(
            "key=/stand/x.so,hostpath={},module",
            missing.display()
        ))
        .arg(&url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!missing.exists());
}

/// A client writing to its console (fds 1 and 2) while the server's stdout is a pipe nobody
/// reads: the console queue fills and drops, the loop goes on serving. With one loop, a
/// blocking console write would stall every other client (and the accept loop).
#[test]
fn a_console_nobody_reads_does_not_stall_the_server() {
    let dir = TempDir::new("cons");
    let url = format!("unix://{}/sock", dir.path().display());
    let mut child = Command::new(SERVER)
        .args(["-s", "-c", "1", &url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped()) // never read
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _unread = child.stdout.take();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut writer = loop {
        match Client::connect_named(&url, "writer") {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("server never accepted: {e}"),
        }
    };
    // Far more than a pipe holds (64 KiB), in the console's 64 KiB chunks, to both fds.
    let (tx, rx) = std::sync::mpsc::channel();
    let url2 = url.clone();
    std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 << 10];
        let mut ok = 0;
        for i in 0..64 {
            if writer.write(1 + i % 2, &chunk).ok() == Some(chunk.len()) {
                ok += 1;
            }
        }
        let _ = tx.send(("writer", ok));
        // Another client is still answered promptly once the console is flooded.
        let pid = Client::connect_named(&url2, "other").and_then(|mut c| c.getpid());
        let _ = tx.send(("other", i32::from(pid.is_ok())));
    });
    let bound = Duration::from_secs(5);
    let got = rx.recv_timeout(bound + Duration::from_secs(10));
    let got2 = rx.recv_timeout(bound);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(got, Ok(("writer", 64)), "console writes stalled or failed");
    assert_eq!(got2, Ok(("other", 1)), "another client was not served");
}

/// A component whose constructor starts a thread: the thread ticks a counter, and system
/// call 210 answers 1 if the counter moves within 100 ms.
const TICKER: &str = r#"
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include "rump_component.h"

static atomic_long ticks;

static void *tick(void *arg) {
	(void)arg;
	for (;;) {
		atomic_fetch_add(&ticks, 1);
		usleep(1000);
	}
	return NULL;
}

__attribute__((constructor)) static void start(void) {
	pthread_t t;
	if (pthread_create(&t, NULL, tick, NULL) == 0)
		pthread_detach(t);
}

static int alive(void *cookie, const uint64_t args[8], const void *in, size_t in_len,
    void *out, size_t *out_len, int64_t retval[2]) {
	(void)cookie; (void)args; (void)in; (void)in_len; (void)out; (void)out_len;
	long before = atomic_load(&ticks);
	usleep(100000);
	retval[0] = atomic_load(&ticks) != before;
	return 0;
}

static int init(const struct rump_registrar *r) {
	struct rump_syscall_desc d = {
		.number = 210, .in_ptr_arg = -1, .in_len_arg = -1,
		.out_ptr_arg = -1, .out_len_arg = -1, .fn = alive,
	};
	return r->add_syscall(r->ctx, &d);
}

const struct rump_component rump_component_v1 = {
	.abi_version = RUMP_COMPONENT_ABI_VERSION,
	.name = "ticker",
	.init = init,
};
"#;

/// Daemon mode with a `-l` component whose constructor starts a thread: the server forks
/// before loading it, so the thread runs in the serving process; the server then halts
/// cleanly (rump.halt answers, the socket goes).
#[test]
fn daemon_mode_keeps_threads_that_components_start() {
    if !have_cc() {
        return;
    }
    let dir = TempDir::new("daemonthr");
    let so = common::build_shared_object(dir.path(), "libticker.so", Some(TICKER), &[]);
    let sock = dir.path().join("sock");
    let url = format!("unix://{}", sock.display());
    // Without -s: the command returns once the daemon serves.
    let out = Command::new(SERVER)
        .args(["-lrumpvfs", "-l", so.to_str().unwrap(), &url])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "daemon start: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut c = Client::connect_named(&url, "test").unwrap();
    let rv = c.syscall(210, &[], &mut []);
    let halt = Command::new(common::HALT)
        .env("RUMP_SERVER", &url)
        .output()
        .unwrap();
    assert!(halt.status.success(), "rump.halt: {halt:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!sock.exists(), "the daemon did not halt");
    assert_eq!(rv.unwrap()[0], 1, "the component's thread is gone");
}

/// A component failing to load in daemon mode still fails the command with exit status 1
/// and its message on stderr (the child reports it before detaching).
#[test]
fn daemon_mode_reports_a_bad_component() {
    let dir = TempDir::new("daemonbad");
    let lib = dir.path().join("notalib.so");
    std::fs::write(&lib, b"just text").unwrap();
    let url = format!("unix://{}/sock", dir.path().display());
    let out = Command::new(SERVER)
        .args(["-lrumpvfs", "-l", lib.to_str().unwrap(), &url])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("failed to load -libraries, last error from"),
        "{err}"
    );
    assert!(!dir.path().join("sock").exists());
}

//! Several threads calling at once over the C library's one connection
//! (clib/tests/c/threads.c): 8 threads × 150 rounds of calls, every result checked, while a
//! ninth thread stays blocked in the kernel until the end — with the sp fast path granted and
//! refused, and with the library's receive spin on (default) and off (`RUMPCLIENT_SPIN_US=0`).
//! Skips without `cc`.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, TempDir};

/// Compiles threads.c (`common::build_c`); `None` without a C compiler.
fn build(dir: &TempDir) -> Option<PathBuf> {
    common::build_c(
        dir,
        "threads",
        &["-std=gnu11", "-Wall", "-Wextra", "-Werror"],
        &["-lrumpclient", "-lpthread"],
    )
}

fn case(server_fast: &str, spin_us: Option<&str>) {
    let dir = TempDir::new("clibthr");
    let Some(bin) = build(&dir) else { return };
    let srv = Server::unix_env(&["-lrumpvfs"], &[("RUMP_SP_FASTPATH", server_fast)]);
    let mut cmd = Command::new(&bin);
    cmd.args(["8", "150"])
        .env("RUMP_SERVER", &srv.url)
        .env_remove("RUMP__PARSEDSERVER")
        .env_remove("RUMPCLIENT__EXECFD")
        .env_remove("RUMP_SP_FASTPATH")
        .env_remove("RUMPCLIENT_SPIN_US");
    if let Some(us) = spin_us {
        cmd.env("RUMPCLIENT_SPIN_US", us);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run threads");
    // A lost answer or two threads reading the socket at once hang the program: bounded.
    let end = Instant::now() + Duration::from_secs(90);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "threads: no end within 90 s (server fast path {server_fast}, spin {spin_us:?})"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("threads output");
    assert!(
        out.status.success() && out.stdout == b"ok\n",
        "server fast path {server_fast}, spin {spin_us:?}: {:?}\nstdout: {}\nstderr: {}\nserver: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        srv.stderr_text()
    );
}

#[test]
fn threads_fast_path_spin() {
    case("1", None);
}

#[test]
fn threads_fast_path_no_spin() {
    case("1", Some("0"));
}

#[test]
fn threads_plain_spin() {
    case("0", None);
}

#[test]
fn threads_plain_no_spin() {
    case("0", Some("0"));
}

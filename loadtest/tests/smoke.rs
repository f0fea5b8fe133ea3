//! Smoke test: `loadtest` against the real server (getpid, ~0.2 s) and in baseline mode.
//! Nothing here asserts timing; it checks that operations complete and the JSON is sane.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const LOADTEST: &str = env!("CARGO_BIN_EXE_loadtest");

/// `target/<profile>/rump_server`, built by `cargo test --workspace` for the root package.
fn server_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?; // target/<profile>/deps → target/<profile>
    let p = dir.join("rump_server");
    p.exists().then_some(p)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn loadtest(args: &[&str]) -> String {
    let out = Command::new(LOADTEST).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "loadtest {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

fn ops(json: &str) -> u64 {
    let at = json.find("\"ops\":").expect("ops field") + 6;
    let digits: String = json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

#[test]
fn baseline_peer_answers() {
    let sock = std::env::temp_dir().join(format!("loadtest-smoke-b-{}.sock", std::process::id()));
    let url = format!("unix://{}", sock.display());
    let common = [
        "--duration",
        "200ms",
        "--warmup",
        "0s",
        "--json",
        "--baseline",
    ];
    for (conns, inflight) in [("1", "1"), ("8", "4")] {
        let mut args = vec!["--url", &url, "--conns", conns, "--inflight", inflight];
        args.extend(common);
        let out = loadtest(&args);
        assert!(out.contains("\"baseline\":true"), "{out}");
        assert!(ops(&out) > 0, "{out}");
    }
}

#[test]
fn getpid_against_the_server() {
    let Some(bin) = server_bin() else {
        eprintln!("skipping: rump_server not built next to the test binary");
        return;
    };
    let sock = std::env::temp_dir().join(format!("loadtest-smoke-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let url = format!("unix://{}", sock.display());
    let _server = Server(
        Command::new(bin)
            .args(["-s", "-c", "1", &url])
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "server socket never appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = loadtest(&[
        "--url",
        &url,
        "--conns",
        "4",
        "--inflight",
        "2",
        "--duration",
        "200ms",
        "--warmup",
        "0s",
        "--json",
    ]);
    assert!(out.contains("\"workload\":\"getpid\""), "{out}");
    assert!(out.contains("\"errors\":0"), "{out}");
    assert!(ops(&out) > 0, "{out}");
}

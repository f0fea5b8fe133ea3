//! The harness of the virtif tests (tests/virtif.rs, tests/virtif6.rs): a network
//! namespace of the test's own (`ip netns add`, deleted at the end with its tap), and our
//! server started inside it (`ip netns exec`). The host's own namespace is never touched:
//! the Linux side of a test runs in a thread that entered the namespace (`setns`).

use std::process::{Child, Command, Stdio};

use client::Client;

use crate::common::{self, TempDir, HALT, SERVER};

/// Why this host cannot run the tests, if it cannot.
pub fn unsupported() -> Option<&'static str> {
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is absent");
    }
    // SAFETY: plain system call.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (network namespaces and taps need CAP_NET_ADMIN)");
    }
    None
}

/// Runs a host command; panics when it fails.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e} (iproute2 is needed: .ci/run installs it)"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace of the test's own, deleted at the end (with its tap).
pub struct Netns(pub String);

impl Netns {
    /// `rumpvirt-TAG-PID`.
    pub fn new(tag: &str) -> Netns {
        let name = format!("rumpvirt-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run(&["ip", "netns", "add", &name]);
        Netns(name)
    }

    /// Runs `args` inside the namespace; panics when it fails.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut all = vec!["ip", "netns", "exec", &self.0];
        all.extend_from_slice(args);
        run(&all)
    }

    /// Runs `f` on a thread that entered the namespace (sockets it makes live there).
    pub fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).expect("the namespace's file");
            use std::os::fd::AsRawFd;
            // SAFETY: setns on a namespace descriptor we hold; it changes only this thread.
            let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// Our server inside the namespace, halted at the end.
pub struct InNs {
    child: Child,
    /// Its URL (a unix socket in the test's directory).
    pub url: String,
}

impl InNs {
    /// `rump_server -s LIBS unix://DIR/virt.sock` in `ns`, with `RUMP_VIRTIF_ALLOW` set to
    /// `allow` (unset when `None`).
    pub fn start(ns: &Netns, dir: &TempDir, libs: &[&str], allow: Option<&str>) -> InNs {
        let url = format!("unix://{}", dir.path().join("virt.sock").display());
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.0, SERVER, "-s"])
            .args(libs)
            .arg(&url)
            .env_remove("RUMP_VIRTIF_ALLOW")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(a) = allow {
            cmd.env("RUMP_VIRTIF_ALLOW", a);
        }
        let child = cmd.spawn().unwrap();
        let _ = common::connect_retry(&url, "wait");
        InNs { child, url }
    }

    /// A client of it.
    #[allow(dead_code)]
    pub fn client(&self) -> Client {
        common::connect_retry(&self.url, "virtif")
    }
}

impl Drop for InNs {
    fn drop(&mut self) {
        let _ = Command::new(HALT).env("RUMP_SERVER", &self.url).output();
        let _ = self.child.wait();
    }
}

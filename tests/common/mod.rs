//! Test harness: starts the real `rump_server` binary and talks to it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SERVER: &str = env!("CARGO_BIN_EXE_rump_server");
pub const HALT: &str = env!("CARGO_BIN_EXE_rump_halt");
/// The components NetBSD's tests/net start a server with for IPv4 and IPv6 on shmif
/// buses (`rump_server -lrumpnet -lrumpnet_net -lrumpnet_netinet -lrumpnet_netinet6
/// -lrumpnet_shmif`), as the oracles were recorded.
#[allow(dead_code)]
pub const NETINET6: &[&str] = &[
    "-lrumpnet",
    "-lrumpnet_net",
    "-lrumpnet_netinet",
    "-lrumpnet_netinet6",
    "-lrumpnet_shmif",
];

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("rumpt-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free 127.0.0.1 port (bound and released; the kernel will not hand it out again soon).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A foreground (`-s`) server child with its stdout captured.
pub struct Server {
    pub child: Option<Child>,
    pub url: String,
    pub sock: Option<PathBuf>,
    pub stdout: Arc<Mutex<Vec<u8>>>,
    pub stderr: Arc<Mutex<Vec<u8>>>,
    pub dir: TempDir,
    /// The threads reading stdout and stderr (done once the pipes close).
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn capture(
    mut r: impl Read + Send + 'static,
) -> (Arc<Mutex<Vec<u8>>>, std::thread::JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    let reader = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    (buf, reader)
}

impl Server {
    /// Starts `rump_server -s <extra> unix://<tmp>/sock` and waits until it accepts.
    pub fn unix(extra: &[&str]) -> Server {
        let dir = TempDir::new("srv");
        let sock = dir.path().join("sock");
        let url = format!("unix://{}", sock.display());
        Server::spawn(extra, url, Some(sock), dir)
    }

    /// Starts `rump_server -s <extra> tcp://127.0.0.1:<free port>/` and waits until it accepts.
    pub fn tcp(extra: &[&str]) -> Server {
        let dir = TempDir::new("tcp");
        let url = format!("tcp://127.0.0.1:{}/", free_port());
        Server::spawn(extra, url, None, dir)
    }

    /// Starts `rump_server -s <extra> tcp://[::1]:<free port>/`, or `None` when the host has
    /// no IPv6 loopback.
    pub fn tcp6(extra: &[&str]) -> Option<Server> {
        let port = TcpListener::bind("[::1]:0").ok()?.local_addr().ok()?.port();
        let dir = TempDir::new("tcp6");
        let url = format!("tcp://[::1]:{port}/");
        Some(Server::spawn(extra, url, None, dir))
    }

    /// As [`Server::unix`], with extra environment variables for the server.
    pub fn unix_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = TempDir::new("srv");
        let sock = dir.path().join("sock");
        let url = format!("unix://{}", sock.display());
        Server::spawn_env(extra, env, url, Some(sock), dir)
    }

    fn spawn(extra: &[&str], url: String, sock: Option<PathBuf>, dir: TempDir) -> Server {
        Server::spawn_env(extra, &[], url, sock, dir)
    }

    fn spawn_env(
        extra: &[&str],
        env: &[(&str, &str)],
        url: String,
        sock: Option<PathBuf>,
        dir: TempDir,
    ) -> Server {
        let mut child = Command::new(SERVER)
            .envs(env.iter().copied())
            .arg("-s")
            .args(extra)
            .arg(&url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rump_server");
        let (stdout, out_reader) = capture(child.stdout.take().unwrap());
        let (stderr, err_reader) = capture(child.stderr.take().unwrap());
        let s = Server {
            child: Some(child),
            url,
            sock,
            stdout,
            stderr,
            dir,
            readers: vec![out_reader, err_reader],
        };
        s.wait_accepting();
        s
    }

    pub fn wait_accepting(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if client::Client::connect_named(&self.url, "probe").is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "server at {} never accepted; stderr: {}",
            self.url,
            self.stderr_text()
        );
    }

    pub fn client(&self) -> client::Client {
        client::Client::connect_named(&self.url, "test").expect("connect")
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits until stdout contains `needle` (or panics after a while).
    pub fn wait_stdout(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.stdout_text().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "stdout never showed {needle:?}; got {:?}",
            self.stdout_text()
        );
    }

    /// Waits for the server to exit (panics after `secs`), then for its output to be read to
    /// the end (a few seconds at most: a process it left behind may hold the pipes).
    pub fn wait_exit(&mut self, secs: u64) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                let read_by = Instant::now() + Duration::from_secs(5);
                while !self.readers.iter().all(|r| r.is_finished()) && Instant::now() < read_by {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return st;
            }
            if Instant::now() > deadline {
                panic!("server did not exit; stderr: {}", self.stderr_text());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs rump.halt (binary `exe`) with `args` against this server.
    pub fn halt_with(&self, exe: &Path, args: &[&str]) -> std::process::Output {
        Command::new(exe)
            .args(args)
            .env("RUMP_SERVER", &self.url)
            .output()
            .unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A raw protocol connection for malformed-input tests.
pub struct Raw {
    pub s: UnixStream,
}

impl Raw {
    /// Connects and reads the banner.
    pub fn connect(path: &Path) -> (Raw, String) {
        let mut s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 96];
        let n = s.read(&mut b).unwrap();
        (Raw { s }, String::from_utf8_lossy(&b[..n]).into_owned())
    }

    /// Connects, reads the banner and does a GUEST handshake (reqno 1).
    pub fn guest(path: &Path) -> Raw {
        let (mut r, _) = Raw::connect(path);
        let mut out = Vec::new();
        sp::encode_handshake_req(&mut out, 1, sp::HandshakeType::GUEST, b"raw\0");
        r.send(&out);
        let (h, p) = r.read_frame().expect("handshake response");
        assert_eq!(
            (h.class, h.typ, h.reqno),
            (sp::Class::RESP, sp::MsgType::HANDSHAKE, 1)
        );
        assert_eq!(sp::parse_handshake_resp(&p), Some(0));
        r
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// Reads one frame; None on EOF (or a reset).
    pub fn read_frame(&mut self) -> Option<(sp::Header, Vec<u8>)> {
        let mut h = [0u8; 24];
        self.s.read_exact(&mut h).ok()?;
        let h = sp::Header::from_bytes(&h);
        let mut p = vec![0u8; h.len as usize - 24];
        self.s.read_exact(&mut p).ok()?;
        Some((h, p))
    }

    /// True if the server closed the connection (EOF within the timeout).
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.s.read(&mut b), Ok(0) | Err(_))
    }
}

/// NetBSD errno numbers used in assertions.
pub mod errno {
    pub const EPERM: i32 = 1;
    pub const EBADF: i32 = 9;
    pub const EFAULT: i32 = 14;
    pub const EINVAL: i32 = 22;
    pub const ENOSYS: i32 = 78;
}

/// Connects to `url`, retrying until the server accepts (panics after 20 s).
pub fn connect_retry(url: &str, name: &str) -> client::Client {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match client::Client::connect_named(url, name) {
            Ok(c) => return c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("{url} never accepted: {e}"),
        }
    }
}

/// mount("ffs", dir, flags, struct ufs_args { fspec = dev }): the errno on failure.
pub fn mount_ffs(c: &mut client::Client, dev: &str, dir: &str, flags: i32) -> Result<(), i32> {
    c.mount_ffs(dev, dir, flags)
        .map_err(|e| e.errno().unwrap_or(-1))
}

/// Compiles `src` (or the example component, examples/component/example.c) with `cc` into
/// the shared object `dir/name`, with the project's component header and extra `flags`.
pub fn build_shared_object(dir: &Path, name: &str, src: Option<&str>, flags: &[&str]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = dir.join(name);
    let source = match src {
        Some(code) => {
            let p = dir.join(format!("{name}.c"));
            std::fs::write(&p, code).unwrap();
            p
        }
        None => root.join("examples/component/example.c"),
    };
    let st = Command::new("cc")
        .args(["-shared", "-fPIC", "-std=gnu11", "-o"])
        .arg(&out)
        .arg("-I")
        .arg(root.join("include"))
        .args(flags)
        .arg(&source)
        .arg("-lpthread")
        .status()
        .expect("the C compiler `cc` (the Rust toolchain links with it)");
    assert!(st.success(), "cc failed for {name}");
    out
}

/// Resident set size of a process in KiB, from /proc.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A server started with `libs` in `dir`, its working directory (where the relative paths a
/// client names land, such as shmif bus files), halted on drop.
pub struct InDir {
    child: Child,
    /// Its `unix://` URL, a socket `name` in `dir`.
    pub url: String,
}

impl InDir {
    /// The server's host pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts the server in the foreground and waits until it answers.
    pub fn start(dir: &TempDir, name: &str, libs: &[&str]) -> InDir {
        let url = format!("unix://{}", dir.path().join(name).display());
        let child = Command::new(SERVER)
            .current_dir(dir.path())
            .arg("-s")
            .args(libs)
            .arg(&url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let _ = connect_retry(&url, "wait");
        InDir { child, url }
    }

    /// A new client (a new rump process).
    pub fn client(&self) -> client::Client {
        connect_retry(&self.url, "indir")
    }
}

impl Drop for InDir {
    fn drop(&mut self) {
        let _ = Command::new(HALT).env("RUMP_SERVER", &self.url).output();
        let _ = self.child.wait();
    }
}

/// Compiles `clib/tests/c/NAME.c` with `cc` and `flags` against clib/include and the
/// librumpclient.so cargo built beside this test (a dev-dependency), linked with `libs`;
/// `None` (with a message) without a C compiler. The binary and the library go in `dir`.
pub fn build_c(dir: &TempDir, name: &str, flags: &[&str], libs: &[&str]) -> Option<PathBuf> {
    let deps = std::env::current_exe().ok()?.parent()?.to_path_buf();
    std::fs::copy(
        deps.join("librumpclient.so"),
        dir.path().join("librumpclient.so"),
    )
    .expect("copy the library");
    std::os::unix::fs::symlink("librumpclient.so", dir.path().join("librumpclient.so.0")).ok()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = dir.path().join(name);
    let out = match Command::new("cc")
        .args(flags)
        .arg("-o")
        .arg(&bin)
        .arg("-I")
        .arg(root.join("clib/include"))
        .arg(root.join(format!("clib/tests/c/{name}.c")))
        .arg("-L")
        .arg(dir.path())
        .arg(format!("-Wl,-rpath,{}", dir.path().display()))
        .args(libs)
        .output()
    {
        Ok(o) => o,
        Err(_) => {
            eprintln!("skipping: no C compiler `cc`");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(bin)
}

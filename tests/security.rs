//! Security (docs/threat-model.md): a client is root inside the rump kernel and must reach no
//! host file beyond the `-d` mappings. Escape attempts — `..` past etfs keys, mount points and
//! the root, symlinks to host paths, device numbers, chroot, very long paths — all stay in the
//! rump namespace; a vanishing client never kills the server (SIGPIPE); `tcp://0` warns; the
//! unix socket's mode follows the umask.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use client::fs::{O_CREAT, O_RDONLY, O_RDWR, O_WRONLY};
use client::{Buf, Client};
use common::{Server, TempDir, HALT, SERVER};

const ENOENT: i32 = 2;
const EPERM: i32 = 1;
const ENXIO: i32 = 6;
const ENOTDIR: i32 = 20;
const ENAMETOOLONG: i32 = 63;
const SYS_MKNOD: u32 = 450;
const S_IFCHR: u32 = 0o020000;
const S_IFBLK: u32 = 0o060000;

fn errno<T: std::fmt::Debug>(r: client::Result<T>) -> i32 {
    r.expect_err("must fail").errno().expect("an errno")
}

/// A host directory the server must never touch beyond its `-d` image: a secret file and
/// the image.
struct Host {
    dir: TempDir,
}

impl Host {
    fn new() -> Host {
        let dir = TempDir::new("host");
        std::fs::write(dir.path().join("secret"), b"host secret\n").unwrap();
        Host { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn drive(&self) -> String {
        format!("key=/dk,hostpath={},size=64k", self.path("disk.img"))
    }

    /// The directory holds exactly the secret (unchanged) and the image (64 KiB).
    fn untouched(&self) {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["disk.img", "secret"], "host directory changed");
        assert_eq!(
            std::fs::read(self.dir.path().join("secret")).unwrap(),
            b"host secret\n"
        );
        assert_eq!(
            std::fs::metadata(self.dir.path().join("disk.img"))
                .unwrap()
                .len(),
            64 << 10
        );
    }
}

fn server(host: &Host) -> Server {
    Server::unix(&["-lrumpvfs", "-lrumpfs_tmpfs", "-d", &host.drive()])
}

fn mkdir_p(c: &mut Client, path: &str) {
    let mut cur = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        cur.push('/');
        cur.push_str(part);
        match c.mkdir(&cur, 0o755) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(17) => {} // EEXIST
            Err(e) => panic!("mkdir {cur}: {e}"),
        }
    }
}

#[test]
fn dotdot_past_the_root_an_etfs_key_or_a_mount_point_stays_inside() {
    let host = Host::new();
    let srv = server(&host);
    let mut c = srv.client();
    let secret = host.path("secret");
    // The rump root is its own parent, however often it is climbed.
    let root = c.stat("/").unwrap();
    for p in ["/..", "/../..", "/../../../../../../.."] {
        assert_eq!(c.stat(p).unwrap().ino, root.ino, "{p}");
    }
    c.chdir("/../../../..").unwrap();
    assert_eq!(c.getcwd().unwrap(), "/");
    // The host path means nothing here, with or without dot-dots in front.
    for p in [
        secret.clone(),
        format!("/../../../..{secret}"),
        format!("..{secret}"),
    ] {
        assert_eq!(errno(c.open(&p, O_RDONLY, 0)), ENOENT, "{p}");
        assert_eq!(errno(c.open(&p, O_RDWR | O_CREAT, 0o644)), ENOENT, "{p}");
    }
    // An etfs key is a leaf: nothing is below it, and `..` after it goes nowhere.
    for p in [
        "/dk/..",
        "/dk/../dk",
        "/dk/../../secret",
        "/dk/secret",
        "/dk/",
    ] {
        let e = errno(c.open(p, O_RDONLY, 0));
        assert!(e == ENOENT || e == ENOTDIR, "{p}: errno {e}");
    }
    // `..` out of a mounted tmpfs is the directory it covers, then the rump root.
    c.mkdir("/mnt", 0o755).unwrap();
    c.mount_tmpfs("/mnt", 0, &client::fs::tmpfs_args(1 << 20, 0, 0, 0, 0o1777))
        .unwrap();
    c.mkdir("/mnt/d", 0o755).unwrap();
    c.chdir("/mnt/d").unwrap();
    c.chdir("../../../../..").unwrap();
    assert_eq!(c.getcwd().unwrap(), "/");
    assert_eq!(c.stat("/mnt/../..").unwrap().ino, root.ino);
    // Even a rump directory tree spelling the host path leads only to rump files.
    let dir = host.dir.path().display().to_string();
    mkdir_p(&mut c, &dir);
    let fd = c.open(&secret, O_RDWR | O_CREAT, 0o644).unwrap();
    c.pwrite(fd, b"rump data", 0).unwrap();
    c.close(fd).unwrap();
    c.sync().unwrap();
    host.untouched();
}

#[test]
fn symlinks_to_host_paths_resolve_in_the_rump_namespace() {
    let host = Host::new();
    let srv = server(&host);
    let mut c = srv.client();
    let secret = host.path("secret");
    let targets = [
        secret.clone(),
        "/etc/passwd".to_string(),
        "../../../../../../../../etc/passwd".to_string(),
        format!("/dk/../../../..{secret}"),
        "/proc/self/root/etc/passwd".to_string(),
    ];
    for (i, t) in targets.iter().enumerate() {
        let l = format!("/tmp/l{i}");
        c.symlink(t, &l).unwrap();
        assert_eq!(c.readlink(&l).unwrap(), t.as_bytes());
        assert_eq!(errno(c.open(&l, O_RDONLY, 0)), ENOENT, "{t}");
        assert_eq!(errno(c.open(&l, O_WRONLY | O_CREAT, 0o644)), ENOENT, "{t}");
    }
    // With the directories made in the rump namespace, the link reaches a rump file.
    c.mkdir("/etc", 0o755).unwrap();
    let fd = c.open("/tmp/l1", O_RDWR | O_CREAT, 0o644).unwrap();
    assert_eq!(c.pwrite(fd, b"root::0:0::/:/bin/sh\n", 0).unwrap(), 21);
    let mut b = [0u8; 64];
    assert_eq!(c.pread(fd, &mut b, 0).unwrap(), 21);
    c.close(fd).unwrap();
    assert_eq!(c.stat("/etc/passwd").unwrap().size, 21);
    // A symlink loop ends with ELOOP, not a hang.
    c.symlink("/tmp/loop2", "/tmp/loop1").unwrap();
    c.symlink("/tmp/loop1", "/tmp/loop2").unwrap();
    assert_eq!(errno(c.open("/tmp/loop1", O_RDONLY, 0)), 62);
    c.sync().unwrap();
    host.untouched();
}

fn mknod(c: &mut Client, path: &str, mode: u32, dev: u64) -> client::Result<[i64; 2]> {
    let p = format!("{path}\0").into_bytes();
    let args = [client::addr_of(&p), u64::from(mode), dev];
    c.syscall(SYS_MKNOD, &args, &mut [Buf::In(&p)])
}

/// NetBSD's `makedev`.
fn makedev(major: u64, minor: u64) -> u64 {
    ((major << 8) & 0x000f_ff00)
        | ((minor << 12) & 0xfff0_0000)
        | (minor & 0x0000_00ff)
        | ((major << 20) & 0xfff0_0000_0000)
}

#[test]
fn device_nodes_never_reach_host_devices() {
    let host = Host::new();
    let srv = server(&host);
    let mut c = srv.client();
    // Host (Linux) numbers of sda, /dev/mem, /dev/kmem, /dev/port, the console, and rump's
    // own etfs major with minors nobody registered: nodes can be made (root), but opening
    // them finds no driver. Nothing in the kernel opens host device files.
    let devs = [
        (S_IFBLK, 8, 0),
        (S_IFCHR, 1, 1),
        (S_IFCHR, 1, 2),
        (S_IFCHR, 1, 4),
        (S_IFCHR, 5, 1),
        (S_IFBLK, 197, 5),
        (S_IFCHR, 197, 15),
        (S_IFBLK, 0xfff, 0xfffff),
    ];
    for (i, &(ty, maj, min)) in devs.iter().enumerate() {
        let path = format!("/tmp/dev{i}");
        mknod(&mut c, &path, ty | 0o666, makedev(maj, min)).unwrap();
        let e = errno(c.open(&path, O_RDWR, 0));
        assert_eq!(e, ENXIO, "{path} ({maj}, {min})");
    }
    // The device's real node still works, and a node with its numbers reaches the same
    // drive (the operator's mapping), no further.
    let rdev = c.stat("/dk").unwrap().rdev;
    mknod(&mut c, "/tmp/dk2", S_IFBLK | 0o600, rdev).unwrap();
    if let Ok(fd) = c.open("/tmp/dk2", O_RDWR, 0) {
        let mut b = [0u8; 512];
        assert_eq!(c.pread(fd, &mut b, 64 << 10).unwrap(), 0, "window end");
        c.close(fd).unwrap();
    }
    // A client may not make itself a real host-backed node without the operator.
    assert_eq!(errno(c.open("/dev/sda", O_RDONLY, 0)), ENOENT);
    host.untouched();
}

#[test]
fn chroot_cannot_be_escaped() {
    let host = Host::new();
    let srv = server(&host);
    let mut c = srv.client();
    c.mkdir("/jail", 0o755).unwrap();
    c.mkdir("/jail/in", 0o755).unwrap();
    let fd = c.open("/tmp/outside", O_RDWR | O_CREAT, 0o644).unwrap();
    c.close(fd).unwrap();
    let outside = c.open("/tmp", O_RDONLY, 0).unwrap();
    // No chdir: chroot itself moves the current directory (`/`, outside) into the jail.
    c.chroot("/jail").unwrap();
    assert_eq!(c.getcwd().unwrap(), "/");
    c.chdir("../../..").unwrap();
    assert_eq!(c.getcwd().unwrap(), "/");
    assert_eq!(errno(c.open("/../tmp/outside", O_RDONLY, 0)), ENOENT);
    assert_eq!(errno(c.open("../../tmp/outside", O_RDONLY, 0)), ENOENT);
    // Absolute and relative symlinks resolve against the new root.
    c.symlink("/tmp/outside", "/in/abs").unwrap();
    c.symlink("../../../tmp/outside", "/in/rel").unwrap();
    assert_eq!(errno(c.open("/in/abs", O_RDONLY, 0)), ENOENT);
    assert_eq!(errno(c.open("/in/rel", O_RDONLY, 0)), ENOENT);
    // The etfs keys live at the real root: not reachable from inside.
    assert_eq!(errno(c.open("/dk", O_RDONLY, 0)), ENOENT);
    // A directory descriptor opened before the chroot does not lead out (NetBSD's
    // vn_isunder check in fchdir).
    assert_eq!(errno(c.fchdir(outside)), EPERM);
    assert_eq!(c.getcwd().unwrap(), "/");
    let inside = c.open("/in", O_RDONLY, 0).unwrap();
    c.fchdir(inside).unwrap();
    assert_eq!(c.getcwd().unwrap(), "/in");
    host.untouched();
}

#[test]
fn very_long_paths_are_refused_and_the_server_stays_up() {
    let host = Host::new();
    let srv = server(&host);
    let mut c = srv.client();
    let long_name = "n".repeat(256);
    assert_eq!(
        errno(c.open(&format!("/tmp/{long_name}"), O_RDWR | O_CREAT, 0o644)),
        ENAMETOOLONG
    );
    let long_path = "/a".repeat(600);
    assert_eq!(errno(c.open(&long_path, O_RDONLY, 0)), ENAMETOOLONG);
    assert_eq!(errno(c.mkdir(&long_path, 0o755)), ENAMETOOLONG);
    assert_eq!(errno(c.symlink(&long_path, "/tmp/s")), ENAMETOOLONG);
    let huge = "/".repeat(200_000) + "tmp";
    assert_eq!(errno(c.stat(&huge)), ENAMETOOLONG);
    // A deep tree built step by step: the walk from the root is refused once its path
    // passes PATH_MAX, and getcwd answers without crashing.
    for _ in 0..600 {
        c.mkdir("d", 0o755).unwrap();
        c.chdir("d").unwrap();
    }
    let e = c.getcwd().unwrap_err().errno();
    assert!(e == Some(34) || e == Some(ENAMETOOLONG), "getcwd: {e:?}"); // ERANGE
    let fd = c.open("f", O_RDWR | O_CREAT, 0o644).unwrap();
    c.close(fd).unwrap();
    drop(c);
    let mut c = srv.client();
    assert!(c.getpid().is_ok());
    host.untouched();
}

/// Reads one sp frame from a raw connection.
fn read_frame(s: &mut std::os::unix::net::UnixStream) -> Option<(sp::Header, Vec<u8>)> {
    use std::io::Read;
    let mut h = [0u8; 24];
    s.read_exact(&mut h).ok()?;
    let h = sp::Header::from_bytes(&h);
    let mut p = vec![0u8; h.len as usize - 24];
    s.read_exact(&mut p).ok()?;
    Some((h, p))
}

#[test]
fn a_client_vanishing_mid_response_does_not_kill_the_server_sigpipe() {
    let srv = Server::unix(&["-lrumpvfs"]);
    let sock = srv.sock.clone().unwrap();
    for round in 0..20 {
        let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut banner = [0u8; 96];
        let _ = std::io::Read::read(&mut s, &mut banner).unwrap();
        let mut out = Vec::new();
        sp::encode_handshake_req(&mut out, 1, sp::HandshakeType::GUEST, b"pipe\0");
        s.write_all(&out).unwrap();
        read_frame(&mut s).expect("handshake answer");
        // Open /dev/zero: COPYINSTR for the path, answered.
        out.clear();
        sp::encode_syscall_req(&mut out, 2, 5, &[0x1000, 0, 0]);
        s.write_all(&out).unwrap();
        let (h, _) = read_frame(&mut s).expect("copyinstr");
        out.clear();
        sp::encode_copyin_resp(&mut out, h.reqno, b"/dev/zero\0");
        s.write_all(&out).unwrap();
        let (_, p) = read_frame(&mut s).expect("open answer");
        let fd = sp::parse_syscall_resp(&p).expect("resp").retval[0] as u64;
        // Many 1 MiB reads whose COPYOUTs the client never takes, then it is gone: the
        // server's sends meet a closed socket (EPIPE), which must not end it.
        out.clear();
        for i in 0..16 {
            sp::encode_syscall_req(&mut out, 10 + i, 3, &[fd, 0x10_0000, 1 << 20]);
        }
        s.write_all(&out).unwrap();
        if round % 2 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(s);
    }
    // Still serving, and a halt is still a clean exit.
    let mut c = srv.client();
    assert!(c.getpid().is_ok());
    let out = srv.halt_with(Path::new(HALT), &[]);
    assert!(out.status.success());
    let mut srv = srv;
    assert_eq!(srv.wait_exit(10).code(), Some(0));
}

/// Starts `rump_server -s url` through `sh -c` with a umask; returns the child.
fn spawn_sh(cmd: &str) -> std::process::Child {
    Command::new("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_file(p: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !p.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn halt_url(url: &str) {
    let out = Command::new(HALT).env("RUMP_SERVER", url).output().unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn the_unix_socket_mode_follows_the_umask() {
    for (umask, want) in [("077", 0o700), ("022", 0o755), ("002", 0o775)] {
        let dir = TempDir::new("umask");
        let sock = dir.path().join("sock");
        let url = format!("unix://{}", sock.display());
        let mut child = spawn_sh(&format!("umask {umask}; exec {SERVER} -s {url}"));
        wait_for_file(&sock);
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, want, "umask {umask}");
        common::connect_retry(&url, "umask").getpid().unwrap();
        halt_url(&url);
        assert!(child.wait().unwrap().success());
    }
}

/// The tests never listen on every address (they may bind only loopback): a loopback
/// listener holds the port, so the server's bind to every address fails after it has
/// printed the warning, which is what is checked.
fn hold_loopback_port() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

#[test]
fn tcp_on_every_address_warns_on_stderr() {
    for host in ["0", "*", "0.0.0.0"] {
        let (_held, port) = hold_loopback_port();
        let url = format!("tcp://{host}:{port}/");
        let out = Command::new(SERVER)
            .args(["-s", &url])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{host}: the port is held: {err}"
        );
        assert!(err.contains("Address already in use"), "{err}");
        let lines: Vec<&str> = err.lines().filter(|l| l.contains("reachable")).collect();
        assert_eq!(lines.len(), 1, "{host}: {err}");
        assert!(
            lines[0].starts_with("warning: ")
                && lines[0].contains(&url)
                && lines[0].contains("reachable from the network"),
            "{err}"
        );
    }
    // Loopback and unix sockets: no warning.
    let mut srv = Server::tcp(&[]);
    let out = srv.halt_with(Path::new(HALT), &[]);
    assert!(out.status.success());
    srv.wait_exit(10);
    assert!(
        !srv.stderr_text().contains("reachable"),
        "{}",
        srv.stderr_text()
    );
}

#[test]
fn tcp_warning_also_reaches_the_terminal_in_daemon_mode() {
    let (_held, port) = hold_loopback_port();
    let url = format!("tcp://0:{port}/");
    // Without -s the warning comes before daemonizing; the child's bind then fails and the
    // command exits with NetBSD's EADDRINUSE (48).
    let out = Command::new(SERVER)
        .arg(&url)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(48), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("reachable from the network"), "{err}");
}

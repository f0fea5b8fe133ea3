//! Test helpers: a rump_server child with tmpfs or FFS mounted inside, and a foreground
//! `rump_fuse` child mounting it on a host directory.
//!
//! The server and rump_newfs binaries are the workspace's, found beside rump_fuse in the
//! target directory (`cargo test --workspace` builds them; for this crate alone:
//! `cargo build --bin rump_server --bin rump_newfs`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const FUSE: &str = env!("CARGO_BIN_EXE_rump_fuse");

/// A sibling binary of rump_fuse in the target directory.
pub fn sibling(name: &str) -> PathBuf {
    let p = Path::new(FUSE).with_file_name(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build --bin {name}` (cargo test --workspace builds it)",
        p.display()
    );
    p
}

/// Whether FUSE can be used here; prints why not when it cannot.
pub fn have_fuse() -> bool {
    if Path::new("/dev/fuse").exists() {
        return true;
    }
    eprintln!("SKIPPED: /dev/fuse is absent: the rump_fuse mount tests need it");
    false
}

/// A temporary directory (world-searchable: tests switch to other uids), removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "rump-fuse-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the server holds for the mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    Tmpfs,
    Ffs,
}

/// A server with a file system mounted at `/m` inside it.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub dir: TempDir,
}

impl Server {
    pub fn start(backing: Backing) -> Server {
        let dir = TempDir::new("srv");
        let url = format!("unix://{}/sock", dir.0.display());
        let mut cmd = Command::new(sibling("rump_server"));
        cmd.arg("-s")
            .args(["-lrumpvfs", "-lrumpfs_tmpfs", "-r", "256m"]);
        if backing == Backing::Ffs {
            let img = dir.0.join("ffs.img");
            let st = Command::new(sibling("rump_newfs"))
                .args(["-O", "2", "-s", "64m"])
                .arg(&img)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success(), "rump_newfs failed");
            cmd.args(["-lrumpfs_ffs", "-lrumpdev", "-lrumpdev_disk", "-d"]);
            cmd.arg(format!(
                "key=/dk,hostpath={},size=host,type=blk",
                img.display()
            ));
        }
        let child = cmd
            .arg(&url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let s = Server { child, url, dir };
        let mut c = s.wait_client();
        c.mkdir("/m", 0o755).unwrap();
        match backing {
            Backing::Tmpfs => {
                let a = client::fs::tmpfs_args(0, 0, 0, 0, 0o755);
                c.mount_tmpfs("/m", 0, &a).unwrap();
            }
            Backing::Ffs => c.mount_ffs("/dk", "/m", 0).unwrap(),
        }
        s
    }

    pub fn wait_client(&self) -> client::Client {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match client::Client::connect_named(&self.url, "test") {
                Ok(c) => return c,
                Err(e) if Instant::now() > deadline => panic!("server never accepted: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Halts the server as rump.halt does.
    pub fn halt(&mut self) {
        let st = Command::new(sibling("rump_halt"))
            .env("RUMP_SERVER", &self.url)
            .status()
            .unwrap();
        assert!(st.success());
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `p` is a mount point (as /proc/self/mountinfo lists it).
pub fn mounted(p: &Path) -> bool {
    let p = p.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(p.as_str()))
}

/// A foreground rump_fuse child and its mount point.
pub struct Mount {
    pub child: Option<Child>,
    pub dir: TempDir,
    pub mnt: PathBuf,
}

impl Mount {
    /// Mounts `url`'s `/m` with the extra `-o` options (may be empty).
    pub fn new(url: &str, opts: &str) -> Mount {
        let dir = TempDir::new("mnt");
        let mnt = dir.0.join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let mut o = String::from("allow_other");
        if !opts.is_empty() {
            o.push(',');
            o.push_str(opts);
        }
        let child = Command::new(FUSE)
            .arg(url)
            .arg(&mnt)
            .args(["--root", "/m", "-f", "-o", &o])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let m = Mount {
            child: Some(child),
            dir,
            mnt,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !mounted(&m.mnt) {
            assert!(Instant::now() < deadline, "rump_fuse never mounted");
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    /// SIGTERMs rump_fuse and returns its exit code (after it unmounted).
    pub fn stop(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        // SAFETY: kill with a pid of our own child.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        wait_exit(&mut c, 20)
    }
}

/// Waits up to `secs` for `c` to exit; its code (`None` on a signal or a timeout, after
/// which it is killed).
pub fn wait_exit(c: &mut Child, secs: u64) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            return st.code();
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            let _ = c.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        if mounted(&self.mnt) {
            let _ = Command::new("fusermount3")
                .args(["-u", "-z"])
                .arg(&self.mnt)
                .status();
        }
    }
}

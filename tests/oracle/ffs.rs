//! The FFS and block-device probe (issue 13) whose answers NetBSD's rump_server recorded in
//! `tests/oracle/ffs.netbsd`. It makes its images itself (our `newfs`, UFS1 and UFS2, and a
//! makefs image when `makefs` is installed), starts the server binary it is given in the
//! foreground (`-s -lrumpdev -lrumpdev_disk -lrumpvfs -lrumpfs_ffs`, the same command line
//! for NetBSD's and ours) with those images as etfs drives, and runs scripted sequences:
//! the mount/unmount error table, a mounted device's exclusivity, statvfs after every step
//! that frees or takes space, stat fields, getcwd, read-only mounts and `MNT_UPDATE` both
//! ways, a seeded random workload under `umask 0`, halts with open and unlinked-but-open
//! files (then the image's superblock as the host sees it, and a second server on the same
//! image), and the window edges of etfs `blk` and `chr` devices with the host file read
//! back after the last close and after a client
//! disconnects holding the device open.
//!
//! One line per step: `name: ok[ value]` or `name: errno N`; nothing in a line depends on
//! time, inode numbers or the file system's identity. Lines of the makefs sections start
//! with `makefs.`, and are absent when makefs is not installed.
//!
//! Against any server: `cargo run --example oracle_ffs -- /work/ref/rump_server`
//! (`scripts/oracle_ffs.sh` regenerates the expectation file); `tests/oracle_ffs.rs` runs
//! it against ours and compares.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use client::fs::{Statvfs, O_CREAT, O_RDONLY, O_RDWR};
use client::Client;

use crate::transcript::Transcript;

const O_WRONLY: i32 = 1;
const O_TRUNC: i32 = 0x400;
const O_EXCL: i32 = 0x800;
const MNT_RDONLY: i32 = 0x1;
const MNT_UPDATE: i32 = 0x1_0000;
const MNT_FORCE: i32 = 0x8_0000;
/// reboot(2) with no flags: NetBSD's `rump_halt`, the server syncs, unmounts and exits.
const RB_AUTOBOOT: i32 = 0;
const SYS_MOUNT: u32 = 410;
const SYS_FCHMOD: u32 = 124;
const SYS_STATVFS1: u32 = 357;

impl Transcript {
    fn val<T: std::fmt::Display>(&mut self, name: &str, r: client::Result<T>) {
        self.step(name, r, |v| v.to_string());
    }

    /// A descriptor's step; -1 (EBADF later) when it failed.
    fn fd(&mut self, name: &str, r: client::Result<i32>) -> i32 {
        let mut fd = -1;
        self.step(name, r, |v| {
            fd = v;
            String::new()
        });
        fd
    }

    pub fn note(&mut self, name: &str, v: impl std::fmt::Display) {
        self.0.push(format!("{name}: {v}"));
    }

    fn statvfs(&mut self, c: &mut Client, name: &str, path: &str) {
        self.step(name, statvfs1(c, path), |s| show_statvfs(&s));
    }

    fn stat(&mut self, c: &mut Client, name: &str, path: &str) {
        self.step(name, c.lstat(path), |s| show_stat(&s));
    }
}

/// `statvfs1(path, buf, ST_WAIT)` as syscall 357, the number NetBSD's reference kernel
/// has (its `struct statvfs` ends at `f_mntfromname`; the fields read here are at the
/// same offsets in both layouts).
pub fn statvfs1(c: &mut Client, path: &str) -> client::Result<Statvfs> {
    let p = std::ffi::CString::new(path).expect("no NUL in the probe's paths");
    let p = p.as_bytes_with_nul();
    let mut b = vec![0u8; client::fs::STATVFS_LEN];
    let args = [client::addr_of(p), client::addr_of(&b), 1];
    c.syscall(
        SYS_STATVFS1,
        &args,
        &mut [client::Buf::In(p), client::Buf::Out(&mut b)],
    )?;
    let mut s = Statvfs::parse(&b);
    // The old layout's names: f_spare is four 32-bit words, so they start at 172.
    let name = |off: usize, len: usize| {
        let f = &b[off..off + len];
        let end = f.iter().position(|&c| c == 0).unwrap_or(len);
        String::from_utf8_lossy(&f[..end]).into_owned()
    };
    s.fstypename = name(172, 32);
    s.mntonname = name(204, 1024);
    s.mntfromname = name(1228, 1024);
    Ok(s)
}

/// The statvfs fields that do not depend on the file system's identity.
fn show_statvfs(s: &Statvfs) -> String {
    format!(
        "flag={:#x} bsize={} frsize={} iosize={} blocks={} bfree={} bavail={} files={} \
         ffree={} favail={} namemax={} type={} on={} from={}",
        s.flag,
        s.bsize,
        s.frsize,
        s.iosize,
        s.blocks,
        s.bfree,
        s.bavail,
        s.files,
        s.ffree,
        s.favail,
        s.namemax,
        s.fstypename,
        s.mntonname,
        s.mntfromname
    )
}

fn show_stat(s: &client::fs::Stat) -> String {
    format!(
        "mode={:o} nlink={} uid={} gid={} rdev={:#x} size={} blocks={} blksize={} flags={:#x}",
        s.mode, s.nlink, s.uid, s.gid, s.rdev, s.size, s.blocks, s.blksize, s.flags
    )
}

/// A server started by the probe.
pub struct Running {
    child: Child,
    pub url: String,
}

/// Starts servers: the binary, and a directory for sockets and images.
pub struct Launcher {
    pub exe: PathBuf,
    pub dir: PathBuf,
    /// More `-l` components than the FFS ones (another probe's needs).
    pub libs: Vec<String>,
    n: u32,
}

impl Launcher {
    pub fn new(exe: &Path, dir: &Path) -> Launcher {
        Launcher {
            exe: exe.to_path_buf(),
            dir: dir.to_path_buf(),
            libs: Vec::new(),
            n: 0,
        }
    }

    /// Starts `exe -s -lrumpvfs -lrumpfs_ffs -d … unix://dir/sN` and waits until it accepts.
    pub fn start(&mut self, drives: &[String]) -> Running {
        self.n += 1;
        let sock = self.dir.join(format!("s{}", self.n));
        let url = format!("unix://{}", sock.display());
        let mut cmd = Command::new(&self.exe);
        cmd.args([
            "-s",
            "-lrumpdev",
            "-lrumpdev_disk",
            "-lrumpvfs",
            "-lrumpfs_ffs",
        ]);
        cmd.args(&self.libs);
        for d in drives {
            cmd.arg("-d").arg(d);
        }
        let log = std::fs::File::create(self.dir.join(format!("s{}.log", self.n))).ok();
        let err = log.as_ref().and_then(|f| f.try_clone().ok());
        let child = cmd
            .arg(&url)
            .stdin(Stdio::null())
            .stdout(log.map_or(Stdio::null(), Stdio::from))
            .stderr(err.map_or(Stdio::null(), Stdio::from))
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.exe.display()));
        let deadline = Instant::now() + Duration::from_secs(20);
        while Client::connect_named(&url, "probe").is_err() {
            assert!(Instant::now() < deadline, "{url} never accepted");
            std::thread::sleep(Duration::from_millis(20));
        }
        Running { child, url }
    }
}

impl Running {
    pub fn client(&self, name: &str) -> Client {
        Client::connect_named(&self.url, name).unwrap_or_else(|e| {
            let log = self.url.replace("unix://", "") + ".log";
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{}: {e}; server said: {log}", self.url)
        })
    }

    /// reboot(0) and the process's exit (the unmount write-back is done then).
    pub fn halt(mut self, t: &mut Transcript, name: &str) {
        let mut c = self.client("halt");
        t.unit(name, c.reboot(RB_AUTOBOOT, None));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                t.note(name, "server did not exit");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An empty FFS image of `size` bytes made by our newfs (4 KiB blocks, 512-byte fragments).
pub fn newfs_image(path: &Path, ufs2: bool, size: u64) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap();
    file.set_len(size).unwrap();
    let disk = ffs::FileDisk::from_file(file, size, false);
    let o = ffs::NewfsOptions {
        ufs2,
        size: Some(size),
        ..Default::default()
    };
    ffs::block_on(ffs::newfs(&disk, &o)).expect("newfs");
}

/// A makefs image of a small fixed tree, or `None` without makefs.
fn makefs_image(dir: &Path, path: &Path) -> Option<()> {
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("sub/deeper")).ok()?;
    for (i, len) in [0usize, 1, 4095, 4096, 70_000].iter().enumerate() {
        std::fs::write(tree.join(format!("f{i}")), pattern(i as u8, *len)).ok()?;
    }
    std::fs::write(tree.join("sub/deeper/leaf"), b"leaf\n").ok()?;
    std::os::unix::fs::symlink("sub/deeper/leaf", tree.join("link")).ok()?;
    let st = Command::new("makefs")
        .args(["-t", "ffs", "-o", "version=2", "-s", "8m"])
        .arg(path)
        .arg(&tree)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    st.success().then_some(())
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| seed.wrapping_mul(31).wrapping_add((j % 251) as u8))
        .collect()
}

/// `ffs` at `dir` with `struct ufs_args { fspec }`, `fspec` NULL when `dev` is `None`.
fn mount_raw(c: &mut Client, dev: Option<&str>, dir: &str, flags: i32) -> client::Result<()> {
    match dev {
        Some(d) => c.mount_ffs(d, dir, flags),
        None => {
            let mut args = [0u8; 8];
            c.mount("ffs", dir, flags, Some(&mut args)).map(drop)
        }
    }
}

fn create(c: &mut Client, path: &str, mode: u32, len: usize) -> client::Result<usize> {
    let fd = c.open(path, O_CREAT | O_RDWR | O_TRUNC, mode)?;
    let r = write_fd(c, fd, len);
    c.close(fd)?;
    r
}

/// Writes `len` bytes of a pattern at offset 0 in chunks of 64 KiB.
fn write_fd(c: &mut Client, fd: i32, len: usize) -> client::Result<usize> {
    let chunk = pattern(7, 65536);
    let mut done = 0;
    while done < len {
        let n = (len - done).min(chunk.len());
        done += c.pwrite(fd, &chunk[..n], done as i64)?;
    }
    Ok(done)
}

fn fchmod(c: &mut Client, fd: i32, mode: u32) -> client::Result<()> {
    c.syscall(SYS_FCHMOD, &[fd as u64, mode as u64], &mut [])
        .map(drop)
}

/// The names under `path`, sorted, each with its lstat fields; recursive.
fn listing(c: &mut Client, path: &str, out: &mut Vec<String>, depth: u32) -> client::Result<()> {
    let mut names: Vec<(Vec<u8>, u8)> = c
        .list_dir(path)?
        .into_iter()
        .map(|d| (d.name, d.typ))
        .filter(|(n, _)| n != b"." && n != b"..")
        .collect();
    names.sort();
    for (n, typ) in names {
        let name = String::from_utf8_lossy(&n).into_owned();
        let p = format!("{path}/{name}");
        let s = c.lstat(&p)?;
        out.push(format!(
            "{p} type={typ} mode={:o} nlink={} size={}",
            s.mode, s.nlink, s.size
        ));
        if s.mode & 0o170000 == 0o040000 && depth < 8 {
            listing(c, &p, out, depth + 1)?;
        }
    }
    Ok(())
}

/// fs_clean and fs_fsmnt of the image's superblock as the host file holds them.
fn superblock(path: &Path, ufs2: bool) -> String {
    let Ok(b) = std::fs::read(path) else {
        return "unreadable".into();
    };
    let magic = if ufs2 { 0x1954_0119u32 } else { 0x0001_1954 };
    let found = [0usize, 8192, 65536].into_iter().find_map(|off| {
        let sb = b.get(off..off + 1376)?;
        (u32::from_le_bytes(sb[1372..1376].try_into().ok()?) == magic).then_some(sb)
    });
    let Some(sb) = found else {
        return "no superblock".into();
    };
    let mnt = &sb[212..212 + 468];
    let end = mnt.iter().position(|&c| c == 0).unwrap_or(mnt.len());
    format!(
        "clean={} fsmnt={:?}",
        sb[209],
        String::from_utf8_lossy(&mnt[..end])
    )
}

fn host_bytes(path: &Path, off: u64, len: usize) -> String {
    match std::fs::read(path) {
        Ok(b) => {
            let s = b.get(off as usize..off as usize + len).unwrap_or(&[]);
            let distinct: std::collections::BTreeSet<u8> = s.iter().copied().collect();
            format!("len={} bytes={distinct:?}", b.len())
        }
        Err(e) => format!("{e}"),
    }
}

/// Runs the probe with the server binary `exe`, images and sockets in `dir`.
pub fn run(exe: &Path, dir: &Path) -> Transcript {
    let mut t = Transcript::default();
    let mut l = Launcher::new(exe, dir);
    let img2 = dir.join("ufs2.img");
    let img1 = dir.join("ufs1.img");
    newfs_image(&img2, true, 16 << 20);
    newfs_image(&img1, false, 16 << 20);
    let zero = dir.join("zero.img");
    std::fs::write(&zero, vec![0u8; 1 << 20]).unwrap();
    let reg = dir.join("reg.file");
    std::fs::write(&reg, b"a regular host file\n").unwrap();
    let drives = vec![
        format!("key=/dk2,hostpath={},size=host", img2.display()),
        format!("key=/dk1,hostpath={},size=host", img1.display()),
        format!("key=/zero,hostpath={},size=host", zero.display()),
        format!("key=/reg,hostpath={},size=host,type=reg", reg.display()),
    ];
    let srv = l.start(&drives);
    let mut c = srv.client("ffs");
    mount_table(&mut c, &mut t);
    space(&mut c, &mut t);
    stats(&mut c, &mut t);
    modes(&mut c, &mut t, "/mnt", "rw");
    remount(&mut c, &mut t);
    open_at_halt(&mut c, &mut t);
    drop(c);
    srv.halt(&mut t, "halt.1");
    t.note("image.ufs2", superblock(&img2, true));
    t.note("image.ufs1", superblock(&img1, false));
    // The same images in a second server: what the first left behind.
    let srv = l.start(&drives);
    let mut c = srv.client("ffs2");
    after_halt(&mut c, &mut t);
    drop(c);
    srv.halt(&mut t, "halt.2");
    t.note("image2.ufs2", superblock(&img2, true));
    t.note("image2.ufs1", superblock(&img1, false));
    etfs_edges(&mut l, &mut t);
    let mk = dir.join("makefs.img");
    if makefs_image(dir, &mk).is_some() {
        let srv = l.start(&[format!("key=/mk,hostpath={},size=host", mk.display())]);
        let mut c = srv.client("makefs");
        t.unit("makefs.mkdir", c.mkdir("/m", 0o755));
        t.unit("makefs.mount", c.mount_ffs("/mk", "/m", 0));
        let mut out = Vec::new();
        t.unit("makefs.list", listing(&mut c, "/m", &mut out, 0));
        for (i, o) in out.iter().enumerate() {
            t.note(&format!("makefs.list.{i}"), o);
        }
        t.statvfs(&mut c, "makefs.statvfs", "/m");
        modes(&mut c, &mut t, "/m", "makefs.rw");
        t.unit("makefs.unmount", c.unmount("/m", 0));
        drop(c);
        srv.halt(&mut t, "makefs.halt");
        t.note("makefs.image", superblock(&mk, true));
    }
    t
}

fn mount_table(c: &mut Client, t: &mut Transcript) {
    t.unit("mkdir /mnt", c.mkdir("/mnt", 0o755));
    t.unit("mkdir /mnt2", c.mkdir("/mnt2", 0o755));
    t.unit("mkdir /mnt3", c.mkdir("/mnt3", 0o755));
    t.unit("mount.null-fspec", mount_raw(c, None, "/mnt", 0));
    t.unit(
        "mount.null-fspec-ro",
        mount_raw(c, None, "/mnt", MNT_RDONLY),
    );
    t.unit("mount.no-such-dev", mount_raw(c, Some("/nodev"), "/mnt", 0));
    t.unit("mount.reg-dev", mount_raw(c, Some("/reg"), "/mnt", 0));
    t.unit("mount.dir-dev", mount_raw(c, Some("/mnt2"), "/mnt", 0));
    t.unit("mount.zero-dev", mount_raw(c, Some("/zero"), "/mnt", 0));
    t.unit(
        "mount.zero-dev-ro",
        mount_raw(c, Some("/zero"), "/mnt", MNT_RDONLY),
    );
    t.unit("mount.no-such-dir", mount_raw(c, Some("/dk2"), "/nodir", 0));
    t.unit("mount.on-file", mount_raw(c, Some("/dk2"), "/reg", 0));
    t.unit("mount.short-args", {
        let mut a = [0u8; 4];
        c.mount("ffs", "/mnt", 0, Some(&mut a)).map(drop)
    });
    t.unit(
        "mount.no-args",
        c.syscall(SYS_MOUNT, &[0, 0, 0, 0, 0], &mut []).map(drop),
    );
    t.unit(
        "mount.bad-type",
        c.mount("nosuchfs", "/mnt", 0, None).map(drop),
    );
    t.unit("mount.update-not-mounted", {
        mount_raw(c, Some("/dk2"), "/mnt", MNT_UPDATE)
    });
    t.unit("mount dk2 rw", mount_raw(c, Some("/dk2"), "/mnt", 0));
    t.statvfs(c, "statvfs.fresh2", "/mnt");
    t.unit(
        "mount.again-ro",
        mount_raw(c, Some("/dk2"), "/mnt2", MNT_RDONLY),
    );
    t.unit("mount.again-rw", mount_raw(c, Some("/dk2"), "/mnt2", 0));
    t.unit("mount.over-itself", mount_raw(c, Some("/dk2"), "/mnt", 0));
    t.step("open.mounted-rdonly", c.open("/dk2", O_RDONLY, 0), |fd| {
        let _ = c.close(fd);
        String::new()
    });
    t.unit("open.mounted-rdwr", c.open("/dk2", O_RDWR, 0));
    t.unit("open.mounted-wronly", c.open("/dk2", O_WRONLY, 0));
    t.unit("mount dk1 rw", mount_raw(c, Some("/dk1"), "/mnt2", 0));
    t.statvfs(c, "statvfs.fresh1", "/mnt2");
    t.unit("unmount.not-a-mount", c.unmount("/mnt3", 0));
    t.unit("unmount.no-such", c.unmount("/nodir", 0));
    t.unit("unmount.inside", c.unmount("/mnt/.", 0));
    t.unit("mount dk2 again", mount_raw(c, Some("/dk2"), "/mnt", 0));
    t.unit("mkdir /mnt/d", c.mkdir("/mnt/d", 0o755));
    t.unit("chdir /mnt/d", c.chdir("/mnt/d"));
    t.unit("unmount.busy-cwd", c.unmount("/mnt", 0));
    t.val("getcwd.ffs", c.getcwd());
    t.unit("mkdir /mnt/d/e", c.mkdir("e", 0o700));
    t.unit("chdir e", c.chdir("e"));
    t.val("getcwd.ffs-deep", c.getcwd());
    t.unit("chdir ..", c.chdir("../.."));
    t.val("getcwd.ffs-root", c.getcwd());
    t.unit("chdir /", c.chdir("/"));
    t.unit("rmdir /mnt/d/e", c.rmdir("/mnt/d/e"));
    t.unit("rmdir /mnt/d", c.rmdir("/mnt/d"));
}

fn space(c: &mut Client, t: &mut Transcript) {
    for (m, tag) in [("/mnt", "2"), ("/mnt2", "1")] {
        let f = format!("{m}/big");
        t.statvfs(c, &format!("space{tag}.start"), m);
        t.val(
            &format!("space{tag}.write-8m"),
            create(c, &f, 0o644, 8 << 20),
        );
        t.statvfs(c, &format!("space{tag}.after-write"), m);
        t.stat(c, &format!("space{tag}.stat-big"), &f);
        t.unit(&format!("space{tag}.unlink"), c.unlink(&f));
        t.statvfs(c, &format!("space{tag}.after-unlink"), m);
        t.unit(&format!("space{tag}.sync"), c.sync());
        t.statvfs(c, &format!("space{tag}.after-sync"), m);
        // Unlinked while open: freed at the last close.
        let g = format!("{m}/open");
        let fd = t.fd(
            &format!("space{tag}.open"),
            c.open(&g, O_CREAT | O_RDWR, 0o600),
        );
        t.val(&format!("space{tag}.write-1m"), write_fd(c, fd, 1 << 20));
        t.unit(&format!("space{tag}.unlink-open"), c.unlink(&g));
        t.step(&format!("space{tag}.fstat-unlinked"), c.fstat(fd), |s| {
            show_stat(&s)
        });
        t.statvfs(c, &format!("space{tag}.unlinked-open"), m);
        t.unit(&format!("space{tag}.close-unlinked"), c.close(fd));
        t.statvfs(c, &format!("space{tag}.after-last-close"), m);
        // A rename that replaces a file frees the replaced one.
        let (a, b) = (format!("{m}/a"), format!("{m}/b"));
        t.val(
            &format!("space{tag}.create-a"),
            create(c, &a, 0o644, 100_000),
        );
        t.val(
            &format!("space{tag}.create-b"),
            create(c, &b, 0o644, 300_000),
        );
        t.statvfs(c, &format!("space{tag}.two-files"), m);
        t.unit(&format!("space{tag}.rename-replace"), c.rename(&a, &b));
        t.statvfs(c, &format!("space{tag}.after-rename"), m);
        t.stat(c, &format!("space{tag}.stat-b"), &b);
        t.unit(&format!("space{tag}.link"), c.link(&b, &a));
        t.stat(c, &format!("space{tag}.stat-linked"), &b);
        t.unit(&format!("space{tag}.rename-same-inode"), c.rename(&a, &b));
        t.stat(c, &format!("space{tag}.stat-after-same"), &b);
        t.stat(c, &format!("space{tag}.stat-a-left"), &a);
        t.unit(&format!("space{tag}.unlink-a"), c.unlink(&a));
        t.unit(&format!("space{tag}.truncate-b"), c.truncate(&b, 5000));
        t.stat(c, &format!("space{tag}.stat-truncated"), &b);
        t.statvfs(c, &format!("space{tag}.after-truncate"), m);
        t.unit(&format!("space{tag}.unlink-b"), c.unlink(&b));
        t.statvfs(c, &format!("space{tag}.end"), m);
    }
}

fn stats(c: &mut Client, t: &mut Transcript) {
    t.stat(c, "stat.root2", "/mnt");
    t.stat(c, "stat.root1", "/mnt2");
    t.unit("stat.mkdir", c.mkdir("/mnt/sd", 0o751));
    t.stat(c, "stat.dir", "/mnt/sd");
    t.stat(c, "stat.root-after-mkdir", "/mnt");
    t.val("stat.create", create(c, "/mnt/sd/f", 0o640, 12345));
    t.stat(c, "stat.file", "/mnt/sd/f");
    t.unit("stat.symlink", c.symlink("f", "/mnt/sd/l"));
    t.stat(c, "stat.symlink-l", "/mnt/sd/l");
    t.unit(
        "stat.symlink-long",
        c.symlink(&"y".repeat(100), "/mnt/sd/ll"),
    );
    t.stat(c, "stat.symlink-long-l", "/mnt/sd/ll");
    t.val("stat.readlink", c.readlink("/mnt/sd/l").map(|v| v.len()));
    t.unit("stat.hole", create(c, "/mnt/sd/h", 0o600, 0));
    t.step("stat.hole-write", c.open("/mnt/sd/h", O_RDWR, 0), |fd| {
        let n = c.pwrite(fd, b"end", 1 << 20);
        let _ = c.close(fd);
        format!("{:?}", n.ok())
    });
    t.stat(c, "stat.hole-file", "/mnt/sd/h");
    t.unit(
        "stat.unlink-excl",
        c.open("/mnt/sd/f", O_CREAT | O_EXCL, 0o600),
    );
    t.unit("stat.rmdir-nonempty", c.rmdir("/mnt/sd"));
    t.unit("stat.unlink-dir", c.unlink("/mnt/sd"));
    t.unit("stat.rmdir-file", c.rmdir("/mnt/sd/f"));
    t.unit("stat.mkdir-exists", c.mkdir("/mnt/sd/f", 0o755));
    t.unit(
        "stat.rename-dir-into-self",
        c.rename("/mnt/sd", "/mnt/sd/x"),
    );
    t.unit(
        "stat.rename-file-over-dir",
        c.rename("/mnt/sd/f", "/mnt/sd"),
    );
    let mut out = Vec::new();
    t.unit("stat.list", listing(c, "/mnt", &mut out, 0));
    for (i, o) in out.iter().enumerate() {
        t.note(&format!("stat.list.{i}"), o);
    }
}

/// A tiny deterministic generator (a 64-bit LCG).
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// `umask 0`, then a seeded random workload under `root/w`, then its listing with modes.
fn modes(c: &mut Client, t: &mut Transcript, root: &str, tag: &str) {
    t.val(
        &format!("{tag}.umask"),
        c.umask(0).map(|m| format!("{m:o}")),
    );
    let w = format!("{root}/w");
    t.unit(&format!("{tag}.mkdir-w"), c.mkdir(&w, 0o777));
    t.stat(c, &format!("{tag}.stat-w"), &w);
    let names = ["a", "b", "c", "d0", "d1", "d0/x", "d1/y", "d0/z"];
    let modes = [0o777, 0o755, 0o700, 0o644, 0o4755, 0o1777, 0o000, 0o2775];
    let mut r = Rng(13);
    for i in 0..60 {
        let n1 = format!("{w}/{}", names[r.next(names.len() as u64) as usize]);
        let n2 = format!("{w}/{}", names[r.next(names.len() as u64) as usize]);
        let mode = modes[r.next(modes.len() as u64) as usize];
        let len = [0usize, 1, 512, 4096, 70_000][r.next(5) as usize];
        let s1 = &n1[w.len()..];
        let s2 = &n2[w.len()..];
        let name = |op: &str| format!("{tag}.op{i} {op}");
        match r.next(10) {
            0 => t.val(&name(&format!("create {s1} {mode:o} {len}")), {
                create(c, &n1, mode, len)
            }),
            1 => t.unit(
                &name(&format!("truncate {s1} {len}")),
                c.truncate(&n1, len as i64),
            ),
            2 => t.unit(&name(&format!("rename {s1} {s2}")), c.rename(&n1, &n2)),
            3 => t.unit(&name(&format!("link {s1} {s2}")), c.link(&n1, &n2)),
            4 => t.unit(&name(&format!("mkdir {s1} {mode:o}")), c.mkdir(&n1, mode)),
            5 => t.unit(&name(&format!("rmdir {s1}")), c.rmdir(&n1)),
            6 => t.unit(&name(&format!("symlink {s2} {s1}")), c.symlink(s2, &n1)),
            7 => t.unit(&name(&format!("chmod {s1} {mode:o}")), c.chmod(&n1, mode)),
            8 => t.unit(&name(&format!("unlink {s1}")), c.unlink(&n1)),
            _ => t.step(
                &name(&format!("fchmod {s1} {mode:o}")),
                c.open(&n1, O_RDONLY, 0),
                |fd| {
                    let r = fchmod(c, fd, mode);
                    let _ = c.close(fd);
                    format!("{:?}", r.err().and_then(|e| e.errno()))
                },
            ),
        }
        if i % 10 == 9 {
            t.statvfs(c, &format!("{tag}.statvfs{i}"), root);
        }
    }
    let mut out = Vec::new();
    t.unit(&format!("{tag}.list"), listing(c, &w, &mut out, 0));
    for (i, o) in out.iter().enumerate() {
        t.note(&format!("{tag}.list.{i}"), &o[w.len()..]);
    }
    t.val(
        &format!("{tag}.umask-back"),
        c.umask(0o22).map(|m| format!("{m:o}")),
    );
}

fn remount(c: &mut Client, t: &mut Transcript) {
    t.unit("ro.unmount", c.unmount("/mnt", 0));
    t.unit("ro.mount", mount_raw(c, Some("/dk2"), "/mnt", MNT_RDONLY));
    t.statvfs(c, "ro.statvfs", "/mnt");
    t.unit("ro.unlink-missing", c.unlink("/mnt/missing"));
    t.unit("ro.unlink-existing", c.unlink("/mnt/w"));
    t.unit("ro.rmdir-missing", c.rmdir("/mnt/missing"));
    t.unit("ro.mkdir", c.mkdir("/mnt/new", 0o755));
    t.unit("ro.mkdir-existing", c.mkdir("/mnt/w", 0o755));
    t.unit("ro.create", c.open("/mnt/new", O_CREAT | O_RDWR, 0o644));
    t.unit("ro.open-missing", c.open("/mnt/missing", O_RDONLY, 0));
    t.unit("ro.open-dir-rdwr", c.open("/mnt/w", O_RDWR, 0));
    t.unit("ro.rename-missing", c.rename("/mnt/missing", "/mnt/other"));
    t.unit("ro.symlink", c.symlink("x", "/mnt/sl"));
    t.unit("ro.chmod", c.chmod("/mnt/w", 0o700));
    t.unit("ro.truncate-dir", c.truncate("/mnt/w", 0));
    t.unit("ro.open-dev", c.open("/dk2", O_RDONLY, 0));
    t.unit(
        "ro.again-ro",
        mount_raw(c, Some("/dk2"), "/mnt3", MNT_RDONLY),
    );
    t.unit(
        "ro.update-rw",
        mount_raw(c, Some("/dk2"), "/mnt", MNT_UPDATE),
    );
    t.statvfs(c, "ro.statvfs-rw", "/mnt");
    t.val("ro.create-after-rw", create(c, "/mnt/new", 0o644, 1000));
    t.unit("ro.unlink-after-rw", c.unlink("/mnt/new"));
    let fd = t.fd(
        "ro.open-for-write",
        c.open("/mnt/held", O_CREAT | O_RDWR, 0o644),
    );
    t.unit(
        "ro.update-ro-busy",
        mount_raw(c, Some("/dk2"), "/mnt", MNT_UPDATE | MNT_RDONLY),
    );
    t.unit("ro.close-held", c.close(fd));
    t.unit(
        "ro.update-ro",
        mount_raw(c, Some("/dk2"), "/mnt", MNT_UPDATE | MNT_RDONLY),
    );
    t.statvfs(c, "ro.statvfs-ro-again", "/mnt");
    t.unit("ro.unlink-missing-again", c.unlink("/mnt/missing"));
    t.unit("ro.unlink-held", c.unlink("/mnt/held"));
    t.unit(
        "ro.update-null-fspec",
        mount_raw(c, None, "/mnt", MNT_UPDATE),
    );
    t.unit(
        "ro.update-rw-again",
        mount_raw(c, Some("/dk2"), "/mnt", MNT_UPDATE),
    );
    t.unit("ro.unlink-held-rw", c.unlink("/mnt/held"));
    t.statvfs(c, "ro.statvfs-end", "/mnt");
}

fn open_at_halt(c: &mut Client, t: &mut Transcript) {
    // Open files and an unlinked-but-open one at the halt, on both images.
    for (m, tag) in [("/mnt", "2"), ("/mnt2", "1")] {
        let keep = c.open(&format!("{m}/kept"), O_CREAT | O_RDWR, 0o644);
        t.step(&format!("halt{tag}.open-kept"), keep, |fd| {
            format!("{:?}", write_fd(c, fd, 200_000).ok())
        });
        let gone = c.open(&format!("{m}/gone"), O_CREAT | O_RDWR, 0o644);
        t.step(&format!("halt{tag}.open-gone"), gone, |fd| {
            format!("{:?}", write_fd(c, fd, 300_000).ok())
        });
        t.unit(
            &format!("halt{tag}.unlink-gone"),
            c.unlink(&format!("{m}/gone")),
        );
        t.statvfs(c, &format!("halt{tag}.statvfs"), m);
    }
    t.unit("halt.unmount-busy", c.unmount("/mnt", 0));
    t.unit("halt.unmount-force", c.unmount("/mnt2", MNT_FORCE));
}

fn after_halt(c: &mut Client, t: &mut Transcript) {
    t.unit("after.mount2", mount_raw(c, Some("/dk2"), "/mnt", 0));
    t.unit("after.mkdir", c.mkdir("/m1", 0o755));
    t.unit(
        "after.mount1",
        mount_raw(c, Some("/dk1"), "/m1", MNT_RDONLY),
    );
    for m in ["/mnt", "/m1"] {
        t.statvfs(c, &format!("after.statvfs {m}"), m);
        t.stat(c, &format!("after.kept {m}"), &format!("{m}/kept"));
        t.stat(c, &format!("after.gone {m}"), &format!("{m}/gone"));
        let mut out = Vec::new();
        t.unit(&format!("after.list {m}"), listing(c, m, &mut out, 0));
        for (i, o) in out.iter().enumerate() {
            t.note(&format!("after.list {m}.{i}"), o);
        }
    }
    t.unit("after.unmount1", c.unmount("/m1", 0));
    t.unit("after.unmount2", c.unmount("/mnt", 0));
}

/// etfs block and character devices over windows of the host file whose size is a
/// multiple of 512 but not of 4096; writes at, across and beyond the end.
fn etfs_edges(l: &mut Launcher, t: &mut Transcript) {
    const WIN: u64 = 19 * 512;
    let blk = l.dir.join("blk.win");
    let chr = l.dir.join("chr.win");
    let dis = l.dir.join("disc.win");
    for p in [&blk, &chr, &dis] {
        std::fs::write(p, vec![0u8; 65536]).unwrap();
    }
    let srv = l.start(&[
        format!("key=/wblk,hostpath={},size={WIN}", blk.display()),
        format!("key=/wchr,hostpath={},size={WIN},type=chr", chr.display()),
        format!("key=/wdis,hostpath={},size={WIN}", dis.display()),
    ]);
    let mut c = srv.client("etfs");
    for (dev, host, tag) in [("/wblk", &blk, "blk"), ("/wchr", &chr, "chr")] {
        let fd = match c.open(dev, O_RDWR, 0) {
            Ok(fd) => fd,
            Err(e) => {
                t.note(&format!("{tag}.open"), format!("errno {:?}", e.errno()));
                continue;
            }
        };
        t.stat(&mut c, &format!("{tag}.stat"), dev);
        let b = |v: u8, n: usize| vec![v; n];
        let cases: [(&str, u64, usize); 8] = [
            ("last-sector", WIN - 512, 512),
            ("at-end", WIN, 512),
            ("across-end", WIN - 512, 1024),
            ("across-end-big", WIN - 1536, 8192),
            ("beyond-end", WIN + 512, 512),
            ("far-beyond", 1 << 20, 512),
            ("first-block", 0, 4096),
            ("last-partial-block", 8192, 4096),
        ];
        for (i, (name, off, n)) in cases.iter().enumerate() {
            t.val(
                &format!("{tag}.pwrite {name}"),
                c.pwrite(fd, &b(0x10 + i as u8, *n), *off as i64),
            );
        }
        for (name, off, n) in cases {
            let mut buf = vec![0u8; n];
            t.step(
                &format!("{tag}.pread {name}"),
                c.pread(fd, &mut buf, off as i64),
                |k| {
                    let d: std::collections::BTreeSet<u8> = buf[..k].iter().copied().collect();
                    format!("{k} {d:?}")
                },
            );
        }
        t.val(
            &format!("{tag}.pwrite unaligned"),
            c.pwrite(fd, b"xyz", 100),
        );
        t.val(&format!("{tag}.lseek-end"), c.lseek(fd, 0, 2));
        t.unit(&format!("{tag}.close"), c.close(fd));
        // The last close writes the device's dirty blocks back to the host file.
        t.note(&format!("{tag}.host-first"), host_bytes(host, 0, 4096));
        t.note(&format!("{tag}.host-tail"), host_bytes(host, 8192, 1536));
        t.note(&format!("{tag}.host-past"), host_bytes(host, WIN, 4096));
    }
    // A client that disconnects holding the device open: the kernel closes it.
    {
        let mut d = srv.client("disc");
        let fd = d.open("/wdis", O_RDWR, 0);
        t.step("disc.open-write", fd, |fd| {
            format!("{:?}", d.pwrite(fd, &[0x5a; 4096], 4096).ok())
        });
    }
    let mut seen = String::new();
    for _ in 0..100 {
        seen = host_bytes(&dis, 4096, 4096);
        if seen.contains("90") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    t.note("disc.host-after-disconnect", seen);
    drop(c);
    srv.halt(t, "etfs.halt");
}

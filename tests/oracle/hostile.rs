//! The hostile-client probe (issue 19) whose answers NetBSD's rump_server recorded in
//! `tests/oracle/hostile.netbsd`: chroot without chdir, `..` and `fchdir` through a
//! descriptor opened before chroot, privileged calls after a drop to uid 1000, walks of a
//! deep tree on tmpfs, a flood of lock records by a non-root process, a symlink flood into a small
//! tmpfs, and the final halt. One line per step: `name: ok[ value]` or `name: errno N`.
//!
//! Run against any server with `cargo run --example oracle_probe -- URL` (the server started
//! as `rump_server -lrumpvfs -lrumpfs_tmpfs URL`, fresh: the probe halts it at the end);
//! `tests/oracle.rs` runs it against ours and compares.

use std::ffi::CString;

use client::fs::{tmpfs_args, AT_FDCWD, O_CREAT, O_RDONLY, O_RDWR};
use client::Buf;

use crate::transcript::{connect, Transcript};

const SYS_SETUID: u32 = 23;
const SYS_FCNTL: u32 = 92;
const SYS_MKDIRAT: u32 = 461;
const SYS_MKNOD: u32 = 450;
const SYS_MODCTL: u32 = 246;
const F_SETLK: u64 = 8;
const F_WRLCK: i16 = 3;
const RB_HALT: i32 = 0x8;
const RB_NOSYNC: i32 = 0x4;

/// `struct flock` for a write lock of `len` bytes at `start`.
fn flock_wr(start: i64, len: i64) -> [u8; 24] {
    let mut fl = [0u8; 24];
    fl[0..8].copy_from_slice(&start.to_le_bytes());
    fl[8..16].copy_from_slice(&len.to_le_bytes());
    fl[20..22].copy_from_slice(&F_WRLCK.to_le_bytes());
    fl
}

/// Runs the probe against the server at `url` and returns its transcript.
pub fn run(url: &str) -> Transcript {
    let mut t = Transcript::default();
    chroot_steps(url, &mut t);
    privilege_steps(url, &mut t);
    deep_tree_steps(url, &mut t);
    lock_flood_steps(url, &mut t);
    symlink_flood_steps(url, &mut t);
    let mut root = connect(url, "halt");
    t.unit("halt by root", root.reboot(RB_HALT | RB_NOSYNC, None));
    t
}

fn chroot_steps(url: &str, t: &mut Transcript) {
    let mut c = connect(url, "chroot");
    t.unit("mkdir /jail", c.mkdir("/jail", 0o755));
    t.unit("mkdir /jail/in", c.mkdir("/jail/in", 0o755));
    t.unit("mkdir /out", c.mkdir("/out", 0o755));
    t.step(
        "create /out/f",
        c.open("/out/f", O_RDWR | O_CREAT, 0o644),
        |_| String::new(),
    );
    t.unit("chdir /out", c.chdir("/out"));
    let out = c.open("/out", O_RDONLY, 0);
    let outfd = out.as_ref().copied().unwrap_or(-1);
    t.unit("open /out", out);
    t.unit("chroot /jail (no chdir)", c.chroot("/jail"));
    t.step("getcwd after chroot", c.getcwd(), |s| s);
    t.unit("stat f (old cwd)", c.stat("f"));
    t.unit("stat in", c.stat("in"));
    t.unit("stat ../out/f", c.stat("../out/f"));
    t.unit("stat /out/f", c.stat("/out/f"));
    t.unit("openat(out, f)", c.openat(outfd, "f", O_RDONLY, 0));
    t.unit("openat(out, ../in)", c.openat(outfd, "../in", O_RDONLY, 0));
    t.unit(
        "openat(out, ../out/f)",
        c.openat(outfd, "../out/f", O_RDONLY, 0),
    );
    t.unit("fchdir(out)", c.fchdir(outfd));
    let mut d = connect(url, "chroot-inside");
    t.unit("chdir /jail/in", d.chdir("/jail/in"));
    t.unit("chroot /jail (cwd inside)", d.chroot("/jail"));
    t.step("getcwd inside", d.getcwd(), |s| s);
}

fn privilege_steps(url: &str, t: &mut Transcript) {
    let mut u = connect(url, "user");
    t.unit("setuid 1000", u.syscall(SYS_SETUID, &[1000], &mut []));
    t.unit("reboot as user", u.reboot(RB_HALT | RB_NOSYNC, None));
    t.unit("getpid after", u.getpid());
    t.unit("chroot as user", u.chroot("/jail"));
    t.unit("unmount / as user", u.unmount("/", 0));
    let args = tmpfs_args(1 << 20, 0, 0, 0, 0o755);
    t.unit("mount tmpfs as user", u.mount_tmpfs("/jail/in", 0, &args));
    let node = CString::new("/jail/null2").unwrap();
    let node = node.as_bytes_with_nul();
    let mknod = [client::addr_of(node), 0o020_666, 2 << 8];
    t.unit(
        "mknod chr as user",
        u.syscall(SYS_MKNOD, &mknod, &mut [Buf::In(node)]),
    );
    let name = CString::new("tmpfs").unwrap();
    let name = name.as_bytes_with_nul();
    let mut ml = [0u8; 32];
    ml[..8].copy_from_slice(&client::addr_of(name).to_le_bytes());
    let r = u.syscall(
        SYS_MODCTL,
        &[0, client::addr_of(&ml)],
        &mut [Buf::In(&ml), Buf::In(name)],
    );
    t.unit("modctl load as user", r);
}

fn deep_tree_steps(url: &str, t: &mut Transcript) {
    let mut c = connect(url, "deep");
    // On tmpfs: NetBSD's rumpfs has no rename at all (netbsd-abi.md §10; ours has).
    t.unit("mkdir /deep", c.mkdir("/deep", 0o755));
    let args = tmpfs_args(64 << 20, 0, 0, 0, 0o755);
    t.unit("mount tmpfs /deep", c.mount_tmpfs("/deep", 0, &args));
    t.unit("chdir /deep", c.chdir("/deep"));
    let name = CString::new("d").unwrap();
    let p = name.as_bytes_with_nul();
    let mut made = 0;
    for _ in 0..600 {
        let args = [client::int_arg(AT_FDCWD), client::addr_of(p), 0o755];
        if c.syscall(SYS_MKDIRAT, &args, &mut [Buf::In(p)]).is_err() || c.chdir("d").is_err() {
            break;
        }
        made += 1;
    }
    t.0.push(format!("deep chain levels made: {made}"));
    t.step("getcwd at depth 600", c.getcwd(), |s| s.len().to_string());
    t.unit(
        "rename /deep/d into itself",
        c.rename("/deep/d", "/deep/d/d/d/x"),
    );
    t.unit("rmdir /deep/d", c.rmdir("/deep/d"));
    t.unit("chdir back 300", c.chdir(&"../".repeat(300)));
    t.step("getcwd at depth 300", c.getcwd(), |s| s.len().to_string());
}

fn lock_flood_steps(url: &str, t: &mut Transcript) {
    let mut root = connect(url, "lock-root");
    let fd = root.open("/lockfile", O_RDWR | O_CREAT, 0o666);
    t.unit("create /lockfile", fd);
    t.unit("chmod /lockfile 0666", root.chmod("/lockfile", 0o666));
    let mut u = connect(url, "lock-user");
    t.unit(
        "setuid 1000 (locks)",
        u.syscall(SYS_SETUID, &[1000], &mut []),
    );
    let fd = u.open("/lockfile", O_RDWR, 0).unwrap_or(-1);
    let mut n = 0;
    let mut last = Ok([0, 0]);
    for i in 0..3000i64 {
        let fl = flock_wr(2 * i, 1);
        last = u.syscall(
            SYS_FCNTL,
            &[fd as u64, F_SETLK, client::addr_of(&fl)],
            &mut [Buf::In(&fl)],
        );
        if last.is_err() {
            break;
        }
        n += 1;
    }
    t.0.push(format!("user lock records granted: {n}"));
    t.unit("lock record after the flood", last);
    let mut r = connect(url, "lock-root-flood");
    let fd = r.open("/lockfile", O_RDWR, 0).unwrap_or(-1);
    let mut n = 0;
    for i in 0..3000i64 {
        let fl = flock_wr(2 * i + 1, 1);
        let args = [fd as u64, F_SETLK, client::addr_of(&fl)];
        if r.syscall(SYS_FCNTL, &args, &mut [Buf::In(&fl)]).is_err() {
            break;
        }
        n += 1;
    }
    t.0.push(format!("root lock records granted: {n}"));
}

fn symlink_flood_steps(url: &str, t: &mut Transcript) {
    let mut c = connect(url, "symlinks");
    t.unit("mkdir /small", c.mkdir("/small", 0o755));
    let args = tmpfs_args(256 << 10, 0, 0, 0, 0o755);
    t.unit("mount tmpfs 256k /small", c.mount_tmpfs("/small", 0, &args));
    let target = "t".repeat(1000);
    let mut last = Ok(());
    for i in 0..100_000 {
        last = c.symlink(&target, &format!("/small/l{i}"));
        if last.is_err() {
            break;
        }
    }
    t.unit("symlink flood ends with", last.map(|_| "no error"));
    t.unit("getpid after the flood", c.getpid());
}

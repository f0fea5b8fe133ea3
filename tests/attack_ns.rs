//! Hostile clients against the namespace (issue 19): directory trees deep enough to overflow
//! a recursive drop or walk (tmpfs unmounted, forcibly unmounted under a client, left for the
//! halt; rootfs trees walked by rename, getcwd and chroot checks), chroot without chdir and
//! `..` from a directory descriptor outside the root, and reboot(2) by a non-root client.
//! Each attack runs beside a victim whose data, written to a `-d` etfs key, must be on the
//! host after the halt.

mod common;

use std::ffi::CString;
use std::path::{Path, PathBuf};

use client::fs::{tmpfs_args, AT_FDCWD, O_CREAT, O_RDONLY, O_RDWR};
use client::Client;
use common::{Server, TempDir, HALT};

const EPERM: i32 = 1;
const ENOENT: i32 = 2;
const EINVAL: i32 = 22;
const ERANGE: i32 = 34;
const ENOTEMPTY: i32 = 66;
const MNT_FORCE: i32 = 0x0008_0000;
const RB_HALT: i32 = 0x8;
const RB_STRING: i32 = 0x400;
const SYS_SETUID: u32 = 23;
const SYS_MKDIRAT: u32 = 461;
const SYS_MKNOD: u32 = 450;

/// Levels of the deep trees: far beyond what a recursive drop survives on a loop thread's
/// 2 MiB stack (about 12,000 levels crashed it).
const DEPTH: usize = 20_000;

fn errno<T: std::fmt::Debug>(r: client::Result<T>) -> i32 {
    r.expect_err("must fail").errno().expect("an errno")
}

/// A server with tmpfs and one 1 MiB etfs key `/dk` on a host file, and a victim client
/// that wrote to it.
struct World {
    _dir: TempDir,
    img: PathBuf,
    srv: Server,
    victim: Client,
}

const VICTIM_DATA: &[u8] = b"the victim's bytes, never fsync'd";
const VICTIM_SYNCED: &[u8] = b"the victim's fsync'd bytes";

impl World {
    fn new() -> World {
        let dir = TempDir::new("attack-ns");
        let img = dir.path().join("disk.img");
        let drive = format!("key=/dk,hostpath={},size=1m", img.display());
        let srv = Server::unix(&["-lrumpvfs", "-lrumpfs_tmpfs", "-d", &drive]);
        let mut victim = srv.client();
        let fd = victim.open("/dk", O_RDWR, 0).unwrap();
        victim.pwrite(fd, VICTIM_SYNCED, 8192).unwrap();
        victim.fsync(fd).unwrap();
        // Written, not synced: only the halt's sync puts it on the host.
        victim.pwrite(fd, VICTIM_DATA, 0).unwrap();
        World {
            _dir: dir,
            img,
            srv,
            victim,
        }
    }

    /// The server still serves a new client, halts cleanly (exit 0, after its sync), and the
    /// victim's bytes are on the host.
    fn survives(mut self) {
        let mut probe = self.srv.client();
        assert!(
            probe.getpid().is_ok(),
            "server died; stderr: {}",
            self.srv.stderr_text()
        );
        assert_eq!(probe.stat("/dk").unwrap().size, 1 << 20);
        drop(probe);
        let out = self.srv.halt_with(Path::new(HALT), &[]);
        assert!(out.status.success(), "{out:?}");
        let st = self.srv.wait_exit(60);
        assert_eq!(st.code(), Some(0), "stderr: {}", self.srv.stderr_text());
        let disk = std::fs::read(&self.img).unwrap();
        assert_eq!(
            &disk[..VICTIM_DATA.len()],
            VICTIM_DATA,
            "unsynced data lost"
        );
        assert_eq!(&disk[8192..8192 + VICTIM_SYNCED.len()], VICTIM_SYNCED);
        drop(self.victim);
    }
}

/// `mkdirat(AT_FDCWD, "d")` then `chdir("d")`, `n` times: a chain of `n` directories below
/// the current one, entered.
fn descend(c: &mut Client, n: usize) {
    let name = CString::new("d").unwrap();
    let p = name.as_bytes_with_nul();
    for i in 0..n {
        let args = [client::int_arg(AT_FDCWD), client::addr_of(p), 0o755];
        c.syscall(SYS_MKDIRAT, &args, &mut [client::Buf::In(p)])
            .unwrap_or_else(|e| panic!("mkdirat at depth {i}: {e}"));
        c.chdir("d")
            .unwrap_or_else(|e| panic!("chdir at depth {i}: {e}"));
    }
}

fn mount_tmpfs(c: &mut Client, dir: &str) {
    c.mkdir(dir, 0o755).unwrap();
    c.mount_tmpfs(dir, 0, &tmpfs_args(256 << 20, 0, 0, 0, 0o1777))
        .unwrap();
}

#[test]
fn deep_tmpfs_tree_unmounted_does_not_crash_the_server() {
    let w = World::new();
    let mut c = w.srv.client();
    mount_tmpfs(&mut c, "/mnt");
    c.chdir("/mnt").unwrap();
    descend(&mut c, DEPTH);
    c.chdir("/").unwrap();
    // The last reference to the whole tree goes with the mount.
    let r = c.unmount("/mnt", 0);
    assert!(r.is_ok(), "unmount: {r:?}; stderr: {}", w.srv.stderr_text());
    assert_eq!(errno(c.stat("/mnt/d")), ENOENT);
    drop(c);
    w.survives();
}

#[test]
fn deep_tmpfs_tree_forcibly_unmounted_under_a_client_goes_with_that_client() {
    let w = World::new();
    let mut c = w.srv.client();
    mount_tmpfs(&mut c, "/mnt");
    c.chdir("/mnt").unwrap();
    descend(&mut c, DEPTH);
    // Back up half-way: this client's current directory alone keeps the lower half alive
    // once the file system is gone.
    let up = "../".repeat(300);
    for _ in 0..DEPTH / 2 / 300 {
        c.chdir(&up).unwrap();
    }
    let mut admin = w.srv.client();
    assert_eq!(errno(admin.unmount("/mnt", 0)), 16); // EBUSY
    let r = admin.unmount("/mnt", MNT_FORCE);
    assert!(
        r.is_ok(),
        "unmount -f: {r:?}; stderr: {}",
        w.srv.stderr_text()
    );
    assert!(admin.getpid().is_ok(), "server died at the forced unmount");
    // The dead directory is EIO now; the disconnect drops the rest of the tree.
    assert!(c.mkdir("x", 0o755).is_err());
    drop(c);
    drop(admin);
    w.survives();
}

#[test]
fn deep_tmpfs_tree_left_for_the_halt() {
    let w = World::new();
    let mut c = w.srv.client();
    mount_tmpfs(&mut c, "/mnt");
    c.chdir("/mnt").unwrap();
    descend(&mut c, DEPTH);
    drop(c);
    w.survives();
}

#[test]
fn deep_rootfs_tree_walks_up_without_recursion() {
    let w = World::new();
    let mut c = w.srv.client();
    c.mkdir("/tmp/top", 0o755).unwrap();
    c.chdir("/tmp/top").unwrap();
    descend(&mut c, DEPTH);
    // getcwd walks all the way up: too long for any buffer.
    assert_eq!(c.getcwd().unwrap_err().errno(), Some(ERANGE));
    // rename's "not below itself" check walks from the deepest directory to the top.
    assert_eq!(errno(c.rename("/tmp/top", "x")), EINVAL);
    assert_eq!(errno(c.rmdir("/tmp/top")), ENOTEMPTY);
    // A file at the bottom, reachable from there.
    let fd = c.open("f", O_RDWR | O_CREAT, 0o644).unwrap();
    c.pwrite(fd, b"deep", 0).unwrap();
    c.close(fd).unwrap();
    // chroot to the top: the current directory is under it (a walk of DEPTH levels), so
    // it stays where it is.
    c.chroot("/tmp/top").unwrap();
    let mut b = [0u8; 4];
    let fd = c.open("f", O_RDONLY, 0).unwrap();
    c.pread(fd, &mut b, 0).unwrap();
    assert_eq!(&b, b"deep");
    drop(c);
    w.survives();
}

#[test]
fn chroot_without_chdir_moves_the_current_directory_into_the_new_root() {
    let w = World::new();
    let mut c = w.srv.client();
    c.mkdir("/jail", 0o755).unwrap();
    c.mkdir("/jail/in", 0o755).unwrap();
    let fd = c.open("/tmp/outside", O_RDWR | O_CREAT, 0o644).unwrap();
    c.close(fd).unwrap();
    // The current directory is `/`, outside the jail-to-be.
    c.chroot("/jail").unwrap();
    assert_eq!(c.getcwd().unwrap(), "/");
    assert_eq!(errno(c.open("dk", O_RDONLY, 0)), ENOENT);
    assert_eq!(errno(c.stat("tmp")), ENOENT);
    assert_eq!(errno(c.open("tmp/outside", O_RDONLY, 0)), ENOENT);
    assert_eq!(errno(c.open("../../tmp/outside", O_RDONLY, 0)), ENOENT);
    assert!(c.stat("in").is_ok());
    // A current directory inside the new root stays (NetBSD's vn_isunder check).
    let mut d = w.srv.client();
    d.chdir("/jail/in").unwrap();
    d.chroot("/jail").unwrap();
    assert_eq!(d.getcwd().unwrap(), "/in");
    // A second chroot, deeper, from the old root's point of view of nothing: relative
    // to the first.
    d.chroot("/in").unwrap();
    assert_eq!(d.getcwd().unwrap(), "/");
    assert_eq!(errno(d.stat("in")), ENOENT);
    drop((c, d));
    w.survives();
}

#[test]
fn dotdot_from_a_directory_descriptor_outside_the_root_stops_at_the_root() {
    let w = World::new();
    let mut c = w.srv.client();
    c.mkdir("/jail", 0o755).unwrap();
    c.mkdir("/tmp/sub", 0o755).unwrap();
    let fd = c.open("/tmp/sub/outside", O_RDWR | O_CREAT, 0o644).unwrap();
    c.close(fd).unwrap();
    let tmp = c.open("/tmp/sub", O_RDONLY, 0).unwrap();
    c.chroot("/jail").unwrap();
    // NetBSD does not check a descriptor's directory against the root: what is below it
    // stays reachable through it (documented in docs/threat-model.md).
    let fd = c.openat(tmp, "outside", O_RDONLY, 0).unwrap();
    c.close(fd).unwrap();
    // But `..` from a directory outside the root leads to the root (vfs_lookup.c
    // `lookup_once`: "detected outside of its chroot"), never to the etfs keys at the real
    // root or to the directories above.
    assert_eq!(errno(c.openat(tmp, "../dk", O_RDONLY, 0)), ENOENT);
    assert_eq!(errno(c.openat(tmp, "../../dk", O_RDONLY, 0)), ENOENT);
    assert_eq!(errno(c.openat(tmp, "../sub/outside", O_RDONLY, 0)), ENOENT);
    let f = c.open("/f", O_RDWR | O_CREAT, 0o644).unwrap();
    c.close(f).unwrap();
    assert!(
        c.openat(tmp, "../f", O_RDONLY, 0).is_ok(),
        "`..` is the jail root"
    );
    assert_eq!(errno(c.fchdir(tmp)), EPERM);
    drop(c);
    w.survives();
}

#[test]
fn reboot_and_the_other_privileged_calls_need_root() {
    let w = World::new();
    let mut user = w.srv.client();
    user.syscall(SYS_SETUID, &[1000], &mut []).unwrap();
    assert_eq!(errno(user.reboot(RB_HALT, None)), EPERM);
    // The privilege check comes before the boot string is fetched (sys_reboot): a bad
    // address is not even asked for.
    let r = user.syscall(208, &[RB_STRING as u64, 0xdead_0000], &mut []);
    assert_eq!(errno(r), EPERM);
    let bs = CString::new("netbsd").unwrap();
    assert_eq!(errno(user.reboot(RB_STRING, Some(&bs))), EPERM);
    assert!(user.getpid().is_ok(), "still serving");
    // The other privileged calls a user could try refuse too (kauth's system scope).
    assert_eq!(errno(user.chroot("/tmp")), EPERM);
    assert_eq!(errno(user.unmount("/", 0)), EPERM);
    let args = tmpfs_args(1 << 20, 0, 0, 0, 0o755);
    assert_eq!(errno(user.mount_tmpfs("/tmp", 0, &args)), EPERM);
    let node = CString::new("/tmp/null2").unwrap();
    let node = node.as_bytes_with_nul();
    let mknod = [client::addr_of(node), 0o020_666, 2 << 8];
    let r = user.syscall(SYS_MKNOD, &mknod, &mut [client::Buf::In(node)]);
    assert_eq!(errno(r), EPERM);
    drop(user);
    // A root client still halts it, with the sync.
    w.survives();
}

/// A fresh 8 MiB UFS2 image from the engine's newfs.
fn ffs_image(dir: &Path) -> PathBuf {
    let img = dir.join("ffs.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    let disk = ffs::FileDisk::open(&img, false).unwrap();
    ffs::block_on(ffs::newfs(&disk, &ffs::NewfsOptions::default())).unwrap();
    img
}

#[test]
fn chroot_into_ffs_keeps_a_current_directory_below_and_dotdot_climbs_normally() {
    let dir = TempDir::new("attack-ns-ffs");
    let img = ffs_image(dir.path());
    let drive = format!("key=/dev/dk,hostpath={},size=host", img.display());
    let srv = Server::unix(&["-lrumpvfs", "-lrumpfs_ffs", "-d", &drive]);
    let mut c = srv.client();
    c.mkdir("/mnt", 0o755).unwrap();
    common::mount_ffs(&mut c, "/dev/dk", "/mnt", 0).unwrap();
    for d in ["/mnt/jail", "/mnt/jail/a", "/mnt/jail/a/b"] {
        c.mkdir(d, 0o755).unwrap();
    }
    let fd = c.open("/mnt/jail/a/f", O_RDWR | O_CREAT, 0o644).unwrap();
    c.close(fd).unwrap();
    // The current directory is two levels below the new root, on FFS.
    c.chdir("/mnt/jail/a/b").unwrap();
    let outside = c.open("/tmp", O_RDONLY, 0).unwrap();
    let inside = c.open("/mnt/jail/a", O_RDONLY, 0).unwrap();
    c.chroot("/mnt/jail").unwrap();
    // The current directory stayed at b (`jail/f` does not exist, `jail/a/f` does). (getcwd
    // does not walk FFS directories yet: ENOTDIR.)
    let fd = c.open("../f", O_RDONLY, 0).unwrap();
    c.close(fd).unwrap();
    let fd = c.openat(inside, "../a/f", O_RDONLY, 0).unwrap();
    c.close(fd).unwrap();
    c.fchdir(inside).unwrap();
    let fd = c.open("f", O_RDONLY, 0).unwrap();
    c.close(fd).unwrap();
    assert_eq!(errno(c.fchdir(outside)), EPERM);
    c.unmount("/", 0).unwrap_err();
    drop(c);
}

//! The VFS over the wire: rumpfs at boot, file syscalls, the `rumpvfs` component, blocking.
//!
//! The file-system tests run twice: in rumpfs's `/tmp` and in a tmpfs mounted on `/mnt`
//! (mode 01777 like `/tmp`), each through [`Fs`] and the `on_both!` wrapper.

mod common;

use std::time::Duration;

use client::fs::{AT_FDCWD, AT_REMOVEDIR, O_APPEND, O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_WRONLY};
use common::{errno, Server};

/// The file system a test runs in.
#[derive(Clone, Copy, Debug)]
enum Fs {
    /// rumpfs, the root: the test works under `/tmp`.
    Rumpfs,
    /// tmpfs mounted on `/mnt` (`-lrumpfs_tmpfs`, mode 01777, no limits).
    Tmpfs,
}

/// A server (`-lrumpvfs`, plus `extra`) with the test's file system ready; returns it and
/// the directory the test works in.
fn start(fs: Fs, extra: &[&str]) -> (Server, &'static str) {
    let mut args = vec!["-lrumpvfs"];
    if let Fs::Tmpfs = fs {
        args.push("-lrumpfs_tmpfs");
    }
    args.extend_from_slice(extra);
    let srv = Server::unix(&args);
    match fs {
        Fs::Rumpfs => (srv, "/tmp"),
        Fs::Tmpfs => {
            let mut c = srv.client();
            c.mkdir("/mnt", 0o755).unwrap();
            let a = client::fs::tmpfs_args(0, 0, 0, 0, 0o1777);
            c.mount_tmpfs("/mnt", 0, &a).unwrap();
            (srv, "/mnt")
        }
    }
}

/// `#[test]`s `<name>::rumpfs` and `<name>::tmpfs` running `fn name(fs: Fs)`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn rumpfs() {
                super::$name(super::Fs::Rumpfs)
            }
            #[test]
            fn tmpfs() {
                super::$name(super::Fs::Tmpfs)
            }
        }
    )*};
}

on_both!(
    files_read_write_stat,
    directories_links_rename,
    lookup_limits,
    per_process_cwd_and_shared_namespace,
    flock_and_record_locks_between_clients,
    permissions_for_a_non_root_process,
);

const ENOENT: i32 = 2;
const EEXIST: i32 = 17;
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;
const ENOTEMPTY: i32 = 66;
const ENAMETOOLONG: i32 = 63;
const ELOOP: i32 = 62;
const EINTR: i32 = 4;

#[test]
fn without_rumpvfs_file_syscalls_are_enosys() {
    let srv = Server::unix(&[]);
    let mut c = srv.client();
    assert_eq!(c.stat("/").unwrap_err().errno(), Some(errno::ENOSYS));
    assert_eq!(
        c.open("/tmp/x", O_CREAT | O_RDWR, 0o644)
            .unwrap_err()
            .errno(),
        Some(errno::ENOSYS)
    );
    assert_eq!(
        c.mkdir("/tmp/d", 0o755).unwrap_err().errno(),
        Some(errno::ENOSYS)
    );
    // The console still works.
    assert_eq!(c.write(1, b"x\n").unwrap(), 2);
}

#[test]
fn boot_namespace_is_netbsds() {
    let srv = Server::unix(&["-lrumpvfs"]);
    let mut c = srv.client();
    let root = c.stat("/").unwrap();
    assert_eq!(root.mode, 0o040755);
    assert_eq!((root.uid, root.gid), (0, 0));
    assert_eq!(root.dev, root.ino, "rumpfs: st_dev == st_ino");
    let tmp = c.stat("/tmp").unwrap();
    assert_eq!(tmp.mode, 0o041777);
    assert_eq!(c.stat("/dev").unwrap().mode, 0o040755);
    for dev in ["/dev/null", "/dev/zero"] {
        let st = c.stat(dev).unwrap();
        assert_eq!(st.mode & 0o170000, 0o020000, "{dev} is a character device");
        assert_eq!(st.mode & 0o7777, 0o644, "{dev} mode as observed on NetBSD");
    }
    let mut names: Vec<String> = c
        .list_dir("/")
        .unwrap()
        .into_iter()
        .map(|d| String::from_utf8_lossy(&d.name).into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["dev", "tmp"], "rumpfs lists no . and ..");
    assert_eq!(c.getcwd().unwrap(), "/");
}

fn files_read_write_stat(fs: Fs) {
    let (srv, b) = start(fs, &[]);
    let f = format!("{b}/f");
    let mut c = srv.client();
    let fd = c.open(&f, O_CREAT | O_EXCL | O_RDWR, 0o666).unwrap();
    let st = c.fstat(fd).unwrap();
    assert_eq!(st.mode, 0o100644, "umask 022 applied");
    assert_eq!(st.size, 0);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
    assert_eq!(
        c.pwrite(fd, &data, 0).unwrap(),
        data.len(),
        "large write streams in chunks"
    );
    let mut back = vec![0u8; data.len()];
    let mut got = 0;
    while got < back.len() {
        let n = c.pread(fd, &mut back[got..], got as i64).unwrap();
        assert!(n > 0);
        got += n;
    }
    assert_eq!(back, data);
    assert_eq!(c.fstat(fd).unwrap().size, data.len() as i64);
    // Sequential write then read through the offset.
    assert_eq!(c.lseek(fd, 0, 0).unwrap(), 0);
    assert_eq!(c.write(fd, b"HELLO").unwrap(), 5);
    assert_eq!(c.lseek(fd, 0, 1).unwrap(), 5);
    let mut five = [0u8; 5];
    c.pread(fd, &mut five, 0).unwrap();
    assert_eq!(&five, b"HELLO");
    // Read past EOF gives 0 bytes.
    assert_eq!(c.pread(fd, &mut five, 10_000_000).unwrap(), 0);
    c.ftruncate(fd, 3).unwrap();
    assert_eq!(c.fstat(fd).unwrap().size, 3);
    c.close(fd).unwrap();
    assert_eq!(
        c.open(&f, O_CREAT | O_EXCL | O_RDWR, 0o644)
            .unwrap_err()
            .errno(),
        Some(EEXIST)
    );
    // O_APPEND: pwrite appends (NetBSD behaviour).
    let fd = c.open(&f, O_WRONLY | O_APPEND, 0).unwrap();
    c.pwrite(fd, b"xyz", 0).unwrap();
    c.close(fd).unwrap();
    assert_eq!(c.stat(&f).unwrap().size, 6);
}

fn directories_links_rename(fs: Fs) {
    let (srv, b) = start(fs, &[]);
    let p = |s: &str| format!("{b}/{s}");
    let mut c = srv.client();
    c.mkdir(&p("d"), 0o755).unwrap();
    c.mkdir(&p("d/sub"), 0o755).unwrap();
    assert_eq!(c.stat(&p("d")).unwrap().nlink, 3, "2 + one subdirectory");
    assert_eq!(c.mkdir(&p("d"), 0o755).unwrap_err().errno(), Some(EEXIST));
    assert_eq!(c.rmdir(&p("d")).unwrap_err().errno(), Some(ENOTEMPTY));
    let fd = c.open(&p("d/file"), O_CREAT | O_WRONLY, 0o644).unwrap();
    c.write(fd, b"data").unwrap();
    c.close(fd).unwrap();
    assert_eq!(
        c.open(&p("d/file/x"), O_RDONLY, 0).unwrap_err().errno(),
        Some(ENOTDIR)
    );
    assert_eq!(
        c.unlink(&p("d/sub")).unwrap_err().errno(),
        Some(errno::EPERM)
    );
    c.link(&p("d/file"), &p("d/hard")).unwrap();
    assert_eq!(c.stat(&p("d/file")).unwrap().nlink, 2);
    c.symlink("file", &p("d/soft")).unwrap();
    assert_eq!(c.readlink(&p("d/soft")).unwrap(), b"file");
    assert_eq!(c.stat(&p("d/soft")).unwrap().size, 4);
    assert_eq!(c.lstat(&p("d/soft")).unwrap().mode & 0o170000, 0o120000);
    c.rename(&p("d/hard"), &p("d/sub/moved")).unwrap();
    assert_eq!(c.stat(&p("d/sub/moved")).unwrap().nlink, 2);
    assert_eq!(
        c.rename(&p("d"), &p("d/sub/inside")).unwrap_err().errno(),
        Some(errno::EINVAL)
    );
    assert_eq!(
        c.rename(&p("d/file"), &p("d/sub")).unwrap_err().errno(),
        Some(EISDIR)
    );
    c.unlinkat(AT_FDCWD, &p("d/sub/moved"), 0).unwrap();
    c.unlinkat(AT_FDCWD, &p("d/sub"), AT_REMOVEDIR).unwrap();
    assert_eq!(c.stat(&p("d/sub")).unwrap_err().errno(), Some(ENOENT));
    // Relative paths and the current directory.
    c.chdir(&p("d")).unwrap();
    assert_eq!(c.getcwd().unwrap(), p("d"));
    assert_eq!(c.stat("file").unwrap().size, 4);
    assert_eq!(c.stat("../d/./file").unwrap().size, 4);
}

fn lookup_limits(fs: Fs) {
    let (srv, b) = start(fs, &[]);
    let mut c = srv.client();
    assert_eq!(c.stat("").unwrap_err().errno(), Some(ENOENT));
    let long = format!("{b}/{}", "n".repeat(256));
    assert_eq!(c.stat(&long).unwrap_err().errno(), Some(ENAMETOOLONG));
    let too_long = "/a".repeat(600);
    assert_eq!(c.stat(&too_long).unwrap_err().errno(), Some(ENAMETOOLONG));
    // A chain of 32 symlinks resolves, the 33rd link gives ELOOP.
    let fd = c
        .open(&format!("{b}/l0"), O_CREAT | O_WRONLY, 0o644)
        .unwrap();
    c.close(fd).unwrap();
    for i in 1..=33 {
        c.symlink(&format!("{b}/l{}", i - 1), &format!("{b}/l{i}"))
            .unwrap();
    }
    assert!(c.stat(&format!("{b}/l32")).is_ok());
    assert_eq!(
        c.stat(&format!("{b}/l33")).unwrap_err().errno(),
        Some(ELOOP)
    );
}

fn per_process_cwd_and_shared_namespace(fs: Fs) {
    let (srv, b) = start(fs, &["-c", "2"]);
    let shared = format!("{b}/shared");
    let mut a = srv.client();
    let mut bc = srv.client();
    a.mkdir(&shared, 0o755).unwrap();
    a.chdir(&shared).unwrap();
    assert_eq!(bc.getcwd().unwrap(), "/");
    let fd = a.open("f", O_CREAT | O_WRONLY, 0o644).unwrap();
    a.write(fd, b"from a").unwrap();
    a.close(fd).unwrap();
    assert_eq!(bc.stat(&format!("{shared}/f")).unwrap().size, 6);
}

#[test]
fn blocked_pipe_read_parks_only_its_task_and_dies_with_its_client() {
    let srv = Server::unix(&["-lrumpvfs", "-c", "1"]);
    let mut a = srv.client();
    let (r, w) = a.pipe().unwrap();
    // A forked child shares the pipe; it blocks reading the empty pipe.
    let cookie = a.prefork().unwrap();
    let url = srv.url.clone();
    let reader = std::thread::spawn(move || {
        let mut child = client::Client::connect_fork(&url, &cookie).unwrap();
        let mut buf = [0u8; 16];
        let n = child.read(r, &mut buf).unwrap();
        buf[..n].to_vec()
    });
    std::thread::sleep(Duration::from_millis(200));
    // The single loop still serves everyone else while the read is blocked.
    for _ in 0..50 {
        assert_eq!(srv.client().getpid().unwrap().1, 1);
    }
    assert_eq!(a.write(w, b"wake up").unwrap(), 7);
    assert_eq!(reader.join().unwrap(), b"wake up");
    // A blocked client that disconnects frees its syscall (EINTR inside, nobody waits).
    let mut b = srv.client();
    let (r2, _w2) = b.pipe().unwrap();
    b.send_syscall(3, &[r2 as u64, 0x1000, 16]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(b);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(srv.client().getpid().unwrap().1, 1);
    let _ = EINTR;
}

fn flock_and_record_locks_between_clients(fs: Fs) {
    const LOCK_EX: i32 = 2;
    const LOCK_NB: i32 = 4;
    const LOCK_UN: i32 = 8;
    const EWOULDBLOCK: i32 = 35;
    let (srv, base) = start(fs, &["-c", "2"]);
    let f = format!("{base}/lockme");
    let mut a = srv.client();
    let mut b = srv.client();
    let fa = a.open(&f, O_CREAT | O_RDWR, 0o644).unwrap();
    let fb = b.open(&f, O_RDWR, 0).unwrap();
    a.flock(fa, LOCK_EX).unwrap();
    assert_eq!(
        b.flock(fb, LOCK_EX | LOCK_NB).unwrap_err().errno(),
        Some(EWOULDBLOCK)
    );
    // A blocking flock waits for the holder's unlock (on another loop, in another task).
    b.send_syscall(131, &[fb as u64, LOCK_EX as u64]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    a.flock(fa, LOCK_UN).unwrap();
    let (_, r) = b.recv_syscall(&mut []).unwrap();
    assert_eq!(r.unwrap()[0], 0);
    // Closing the holder's descriptor releases it for a.
    b.close(fb).unwrap();
    a.flock(fa, LOCK_EX | LOCK_NB).unwrap();
}

fn permissions_for_a_non_root_process(fs: Fs) {
    const EACCES: i32 = 13;
    let (srv, b) = start(fs, &[]);
    let p = |s: &str| format!("{b}/{s}");
    let mut root = srv.client();
    root.mkdir(&p("private"), 0o700).unwrap();
    let fd = root
        .open(&p("readonly"), O_CREAT | O_WRONLY, 0o644)
        .unwrap();
    root.write(fd, b"root's").unwrap();
    root.close(fd).unwrap();
    let mut user = srv.client();
    user.syscall(23, &[1000], &mut []).unwrap(); // setuid(1000)
    assert_eq!(user.getuid().unwrap(), (1000, 1000));
    assert_eq!(user.issetugid().unwrap(), 1);
    assert_eq!(
        user.stat(&p("private/x")).unwrap_err().errno(),
        Some(EACCES)
    );
    assert_eq!(
        user.open(&p("readonly"), O_WRONLY, 0).unwrap_err().errno(),
        Some(EACCES)
    );
    let fd = user.open(&p("readonly"), O_RDONLY, 0).unwrap();
    user.close(fd).unwrap();
    // The directory is sticky and world-writable: the user may create, but not remove root's file.
    let fd = user.open(&p("mine"), O_CREAT | O_WRONLY, 0o600).unwrap();
    user.close(fd).unwrap();
    assert_eq!(user.stat(&p("mine")).unwrap().uid, 1000);
    assert_eq!(
        user.unlink(&p("readonly")).unwrap_err().errno(),
        Some(errno::EPERM)
    );
    user.unlink(&p("mine")).unwrap();
    // Going back to root is not allowed once the ids are gone.
    assert_eq!(
        user.syscall(23, &[0], &mut []).unwrap_err().errno(),
        Some(errno::EPERM)
    );
    // The root process is unaffected.
    assert_eq!(root.getuid().unwrap(), (0, 0));
}

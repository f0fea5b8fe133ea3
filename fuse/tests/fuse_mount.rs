//! rump_fuse end to end: a real server, a real FUSE mount, Linux tools' system calls on it;
//! what they did is checked on the rump side through a client too.

mod common;

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{have_fuse, mounted, wait_exit, Backing, Mount, Server};

fn pattern(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn namespace_ops(backing: Backing) {
    let srv = Server::start(backing);
    let m = Mount::new(&srv.url, "");
    let p = |s: &str| m.mnt.join(s);
    // Big writes and reads (several 1 MiB FUSE requests), checked through the rump side.
    let big = pattern(7, 3 << 20);
    fs::write(p("big"), &big).unwrap();
    assert!(
        fs::read(p("big")).unwrap() == big,
        "{backing:?}: big file round trip"
    );
    let mut c = srv.wait_client();
    assert_eq!(c.stat("/m/big").unwrap().size, big.len() as i64);
    let fd = c.open("/m/big", 0, 0).unwrap();
    let mut b = vec![0u8; 4096];
    assert_eq!(c.pread(fd, &mut b, 1 << 20).unwrap(), 4096);
    assert!(b[..] == big[1 << 20..(1 << 20) + 4096]);
    c.close(fd).unwrap();
    // Directories, renames (also of a directory with open children), links, symlinks.
    fs::create_dir(p("d")).unwrap();
    fs::create_dir(p("d/e")).unwrap();
    fs::write(p("d/e/f"), b"hello").unwrap();
    let mut held = fs::File::open(p("d/e/f")).unwrap();
    fs::rename(p("d"), p("d2")).unwrap();
    assert_eq!(fs::read(p("d2/e/f")).unwrap(), b"hello");
    let mut s = String::new();
    held.read_to_string(&mut s).unwrap();
    assert_eq!(s, "hello");
    fs::hard_link(p("d2/e/f"), p("hl")).unwrap();
    assert_eq!(fs::metadata(p("hl")).unwrap().nlink(), 2);
    assert_eq!(
        fs::metadata(p("hl")).unwrap().ino(),
        fs::metadata(p("d2/e/f")).unwrap().ino()
    );
    std::os::unix::fs::symlink("d2/e/f", p("sl")).unwrap();
    assert_eq!(fs::read_link(p("sl")).unwrap().to_str(), Some("d2/e/f"));
    assert_eq!(fs::read(p("sl")).unwrap(), b"hello");
    assert_eq!(c.readlink("/m/sl").unwrap(), b"d2/e/f");
    // An unlinked open file stays readable, and its attributes too.
    fs::remove_file(p("d2/e/f")).unwrap();
    fs::remove_file(p("hl")).unwrap();
    held.seek(SeekFrom::Start(1)).unwrap();
    let mut s = String::new();
    held.read_to_string(&mut s).unwrap();
    assert_eq!(s, "ello");
    assert_eq!(held.metadata().unwrap().len(), 5);
    drop(held);
    // setattr: mode, owner, size, times.
    fs::write(p("a"), b"0123456789").unwrap();
    fs::set_permissions(p("a"), fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(p("a"), Some(12), Some(34)).unwrap();
    let f = fs::OpenOptions::new().write(true).open(p("a")).unwrap();
    f.set_len(4).unwrap();
    let t = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    f.set_modified(t).unwrap();
    drop(f);
    let st = c.stat("/m/a").unwrap();
    assert_eq!(
        (st.mode & 0o7777, st.uid, st.gid, st.size),
        (0o640, 12, 34, 4)
    );
    assert_eq!(st.mtime, (1_000_000_000, 0));
    // rename(2) over an existing name; RENAME_NOREPLACE and RENAME_EXCHANGE.
    fs::write(p("b"), b"b").unwrap();
    fs::rename(p("b"), p("a")).unwrap();
    assert_eq!(fs::read(p("a")).unwrap(), b"b");
    fs::write(p("c"), b"c").unwrap();
    let r = renameat2(&p("c"), &p("a"), libc::RENAME_NOREPLACE);
    assert_eq!(r, Err(libc::EEXIST));
    assert_eq!(
        renameat2(&p("c"), &p("new"), libc::RENAME_NOREPLACE),
        Ok(())
    );
    assert_eq!(fs::read(p("new")).unwrap(), b"c");
    assert!(!p("c").exists());
    assert_eq!(
        renameat2(&p("new"), &p("a"), libc::RENAME_EXCHANGE),
        Err(libc::EINVAL)
    );
    // NetBSD errors come back as Linux numbers.
    assert_eq!(
        fs::remove_dir(p("d2")).unwrap_err().raw_os_error(),
        Some(libc::ENOTEMPTY)
    );
    assert_eq!(
        fs::read_dir(p("a")).unwrap_err().raw_os_error(),
        Some(libc::ENOTDIR)
    );
    let long = "x".repeat(256);
    assert_eq!(
        fs::write(p(&long), b"").unwrap_err().raw_os_error(),
        Some(libc::ENAMETOOLONG)
    );
    // mknod of a FIFO; statfs.
    let fifo = std::ffi::CString::new(p("fifo").to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    assert_eq!(c.lstat("/m/fifo").unwrap().mode & 0o170000, 0o010000);
    let out = Command::new("df").arg(&m.mnt).output().unwrap();
    assert!(out.status.success(), "df: {out:?}");
    drop(m);
}

fn renameat2(a: &std::path::Path, b: &std::path::Path, flags: u32) -> Result<(), i32> {
    let a = std::ffi::CString::new(a.to_str().unwrap()).unwrap();
    let b = std::ffi::CString::new(b.to_str().unwrap()).unwrap();
    // SAFETY: NUL-terminated paths; renameat2 by syscall number (glibc may lack a wrapper).
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            flags,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap())
    }
}

#[test]
fn namespace_and_data_operations_on_tmpfs() {
    if have_fuse() {
        namespace_ops(Backing::Tmpfs);
    }
}

#[test]
fn namespace_and_data_operations_on_ffs() {
    if have_fuse() {
        namespace_ops(Backing::Ffs);
    }
}

/// A directory of 3000 names, every seventh removed, lists each remaining name exactly once,
/// also when read in small pieces (the offsets handed back are getdents cookies the next call
/// resumes from).
#[test]
fn readdir_lists_every_name_once_with_stable_offsets() {
    if !have_fuse() {
        return;
    }
    for backing in [Backing::Tmpfs, Backing::Ffs] {
        let srv = Server::start(backing);
        let mut c = srv.wait_client();
        c.mkdir("/m/big", 0o755).unwrap();
        for i in 0..3000 {
            let fd = c
                .open(&format!("/m/big/n{i:05}"), 0x200 | 1, 0o644)
                .unwrap();
            c.close(fd).unwrap();
        }
        // Removed names leave records with inode 0 on FFS (those that start a 512-byte
        // chunk, as NetBSD's ufs_readdir returns them): the mount must not show them.
        for i in (0..3000).step_by(7) {
            c.unlink(&format!("/m/big/n{i:05}")).unwrap();
        }
        let kept = |i: &usize| i % 7 != 0;
        let m = Mount::new(&srv.url, "");
        let mut names: Vec<String> = fs::read_dir(m.mnt.join("big"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let want: Vec<String> = (0..3000).filter(kept).map(|i| format!("n{i:05}")).collect();
        assert_eq!(names, want, "{backing:?}");
        // telldir/seekdir: resume from a saved offset gives the same rest.
        let path = std::ffi::CString::new(m.mnt.join("big").to_str().unwrap()).unwrap();
        // SAFETY: opendir/readdir/telldir/seekdir on a DIR* we own, closed at the end.
        unsafe {
            let d = libc::opendir(path.as_ptr());
            assert!(!d.is_null());
            let mut seen = Vec::new();
            let mut mark = 0;
            let mut after_mark = Vec::new();
            loop {
                if seen.len() == 1234 {
                    mark = libc::telldir(d);
                }
                let e = libc::readdir(d);
                if e.is_null() {
                    break;
                }
                let n = std::ffi::CStr::from_ptr((*e).d_name.as_ptr())
                    .to_string_lossy()
                    .into_owned();
                if seen.len() >= 1234 {
                    after_mark.push(n.clone());
                }
                seen.push(n);
            }
            libc::seekdir(d, mark);
            let mut again = Vec::new();
            loop {
                let e = libc::readdir(d);
                if e.is_null() {
                    break;
                }
                again.push(
                    std::ffi::CStr::from_ptr((*e).d_name.as_ptr())
                        .to_string_lossy()
                        .into_owned(),
                );
            }
            libc::closedir(d);
            assert_eq!(seen.len(), want.len() + 2, "{backing:?}: with . and ..");
            assert_eq!(again, after_mark, "{backing:?}: seekdir resumes exactly");
        }
    }
}

/// POSIX record locks taken through the mount are the rump kernel's: a second host process
/// sees the first one's lock (and its host pid), and a close releases it.
#[test]
fn posix_locks_are_the_rump_kernels() {
    if !have_fuse() {
        return;
    }
    let srv = Server::start(Backing::Tmpfs);
    let m = Mount::new(&srv.url, "");
    let path = m.mnt.join("locked");
    fs::write(&path, vec![0u8; 200]).unwrap();
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    // SAFETY: flock is plain data; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as i16;
    fl.l_start = 0;
    fl.l_len = 100;
    // SAFETY: a valid fd and flock.
    assert_eq!(unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &fl) }, 0);
    // Another process (fork: only async-signal-safe calls in the child).
    let probe = |path: &std::path::Path| -> (i32, i32, i32) {
        let cpath = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        let mut pipe = [0i32; 2];
        // SAFETY: pipe into a 2-array; fork; the child uses open/fcntl/write/_exit only.
        unsafe {
            assert_eq!(libc::pipe(pipe.as_mut_ptr()), 0);
            let pid = libc::fork();
            if pid == 0 {
                let fd = libc::open(cpath.as_ptr(), libc::O_RDWR);
                let mut g: libc::flock = std::mem::zeroed();
                g.l_type = libc::F_WRLCK as i16;
                g.l_start = 50;
                g.l_len = 10;
                let set = libc::fcntl(fd, libc::F_SETLK, &g);
                let e = *libc::__errno_location();
                let mut q: libc::flock = std::mem::zeroed();
                q.l_type = libc::F_WRLCK as i16;
                q.l_start = 0;
                q.l_len = 1;
                libc::fcntl(fd, libc::F_GETLK, &mut q);
                let out = [if set == 0 { 0 } else { e }, i32::from(q.l_type), q.l_pid];
                libc::write(pipe[1], out.as_ptr().cast(), 12);
                libc::_exit(0);
            }
            libc::close(pipe[1]);
            let mut out = [0i32; 3];
            let n = libc::read(pipe[0], out.as_mut_ptr().cast(), 12);
            libc::close(pipe[0]);
            let mut st = 0;
            libc::waitpid(pid, &mut st, 0);
            assert_eq!(n, 12);
            (out[0], out[1], out[2])
        }
    };
    let (set, typ, pid) = probe(&path);
    assert_eq!(
        set,
        libc::EAGAIN,
        "the rump kernel refuses the overlapping lock"
    );
    assert_eq!(typ, libc::F_WRLCK);
    assert_eq!(
        pid,
        std::process::id() as i32,
        "the holder is named by its host pid"
    );
    drop(f);
    let (set, typ, _) = probe(&path);
    assert_eq!((set, typ), (0, libc::F_UNLCK), "close released the lock");
}

/// By default every request runs as the rump kernel's root; with map_creds as the caller.
#[test]
fn credentials_default_to_root_and_map_creds_maps_the_caller() {
    if !have_fuse() {
        return;
    }
    let srv = Server::start(Backing::Tmpfs);
    let mut c = srv.wait_client();
    c.mkdir("/m/pub", 0o777).unwrap();
    c.chmod("/m/pub", 0o777).unwrap();
    let fd = c.open("/m/rootfile", 0x200 | 1, 0o644).unwrap();
    c.close(fd).unwrap();
    let as_nobody = |m: &Mount, script: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(&m.mnt)
            .uid(65534)
            .gid(65534)
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    {
        let m = Mount::new(&srv.url, "");
        assert!(as_nobody(&m, "echo x > rootfile"), "default: root in rump");
        assert!(as_nobody(&m, "echo y > pub/by-default"));
    }
    assert_eq!(c.stat("/m/pub/by-default").unwrap().uid, 0);
    {
        let m = Mount::new(&srv.url, "map_creds");
        assert!(
            !as_nobody(&m, "echo x > rootfile"),
            "map_creds: the rump kernel refuses"
        );
        assert!(as_nobody(&m, "echo y > pub/mapped"));
        assert!(!as_nobody(&m, "chmod 777 rootfile"));
    }
    let st = c.stat("/m/pub/mapped").unwrap();
    assert_eq!(st.uid, 65534, "created by the mapped uid");
    assert_eq!(c.stat("/m/rootfile").unwrap().size, 2);
}

/// SIGTERM unmounts cleanly; a server halt unmounts too, and nothing hangs.
#[test]
fn signals_and_server_halt_unmount() {
    if !have_fuse() {
        return;
    }
    let srv = Server::start(Backing::Tmpfs);
    let mut m = Mount::new(&srv.url, "");
    fs::write(m.mnt.join("f"), b"x").unwrap();
    assert_eq!(m.stop(), Some(0));
    assert!(!mounted(&m.mnt), "SIGTERM unmounted");

    let mut srv = srv;
    let mut m = Mount::new(&srv.url, "");
    let mnt = m.mnt.clone();
    // A reader inside the mount keeps it busy; the halt must still end rump_fuse.
    let held = fs::File::open(mnt.join("f")).unwrap();
    let t0 = Instant::now();
    srv.halt();
    let mut child = m.child.take().unwrap();
    assert_eq!(
        wait_exit(&mut child, 20),
        Some(2),
        "exit 2: the server went away"
    );
    assert!(t0.elapsed() < Duration::from_secs(15));
    let mut b = [0u8; 1];
    let r = (&held).read(&mut b);
    assert!(
        matches!(
            r.as_ref().map_err(|e| e.raw_os_error()),
            Err(Some(libc::ENOTCONN)) | Err(Some(libc::EIO))
        ),
        "a descriptor of the dead mount fails, never hangs: {r:?}"
    );
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while mounted(&mnt) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!mounted(&mnt), "unmounted after the halt");
}

/// Without -f, rump_fuse returns once the mount is up and stays in the background;
/// fusermount3 -u ends it.
#[test]
fn detaches_and_ends_on_unmount() {
    if !have_fuse() {
        return;
    }
    let srv = Server::start(Backing::Tmpfs);
    let dir = common::TempDir::new("bg");
    let mnt = dir.0.join("mnt");
    fs::create_dir(&mnt).unwrap();
    let st = Command::new(common::FUSE)
        .arg(&srv.url)
        .arg(&mnt)
        .args(["--root", "/m"])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(mounted(&mnt), "mounted when the parent returns");
    fs::write(mnt.join("x"), b"1").unwrap();
    let daemon = || {
        let needle = mnt.to_str().unwrap().to_string();
        fs::read_dir("/proc").unwrap().flatten().any(|e| {
            fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false)
        })
    };
    assert!(daemon(), "rump_fuse runs in the background");
    // The release of the file just written may still be on its way: busy for a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = Command::new("fusermount3")
            .arg("-u")
            .arg(&mnt)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        if st.success() {
            break;
        }
        assert!(Instant::now() < deadline, "fusermount3 -u kept failing");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!mounted(&mnt));
    let deadline = Instant::now() + Duration::from_secs(10);
    while daemon() {
        assert!(
            Instant::now() < deadline,
            "rump_fuse did not end after the unmount"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Clear refusals: no fusermount3 for a user, a missing mount point, a dead server.
#[test]
fn refuses_clearly() {
    let dir = common::TempDir::new("ref");
    let mnt = dir.0.join("mnt");
    fs::create_dir(&mnt).unwrap();
    let out = Command::new(common::FUSE)
        .args(["unix:///nonexistent/sock"])
        .arg(&mnt)
        .env("PATH", "/nonexistent")
        .uid(65534)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    if std::path::Path::new("/dev/fuse").exists() {
        assert!(err.contains("fusermount3"), "{err}");
    } else {
        assert!(err.contains("/dev/fuse"), "{err}");
    }
    let out = Command::new(common::FUSE)
        .args(["unix:///nonexistent/sock", "/nonexistent/mnt", "-f"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new(common::FUSE)
        .args(["unix:///nonexistent/sock"])
        .arg(&mnt)
        .arg("-f")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/sock"), "{err}");
    assert!(!mounted(&mnt));
    let out = Command::new(common::FUSE)
        .args(["-o", "bogus", "a", "b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// More files open at once than a rump process's default descriptor limit (128) on each of
/// the bridge's connections: each raised its limit.
#[test]
fn many_open_files() {
    if !have_fuse() {
        return;
    }
    let srv = Server::start(Backing::Tmpfs);
    let m = Mount::new(&srv.url, "conns=2");
    let files: Vec<fs::File> = (0..600)
        .map(|i| {
            let p = m.mnt.join(format!("f{i}"));
            fs::write(&p, i.to_string()).unwrap();
            fs::File::open(&p).unwrap_or_else(|e| panic!("open #{i}: {e}"))
        })
        .collect();
    for (i, mut f) in files.into_iter().enumerate() {
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, i.to_string());
    }
}

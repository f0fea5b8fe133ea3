//! Syscall-level tests of the VFS: namespace at boot, file I/O, lookup rules, permissions,
//! rename edge cases, getdents resumption, structure bytes.

use std::cell::Cell;

use crate::abi::sysnum::*;
use crate::abi::*;
use crate::proc::Cred;
use crate::testutil::{int, Fixture};
use crate::Errno;

struct T {
    f: Fixture,
    next: Cell<u64>,
}

impl T {
    fn new() -> T {
        T {
            f: Fixture::new(),
            next: Cell::new(0x10_0000),
        }
    }

    /// Maps `data` at a fresh address.
    fn buf(&self, data: &[u8]) -> u64 {
        let a = self.next.get();
        self.next
            .set(a + ((data.len() as u64 + 0xfff) & !0xfff) + 0x1000);
        self.f.mem.map(a, data);
        a
    }

    fn s(&self, path: &str) -> u64 {
        let mut v = path.as_bytes().to_vec();
        v.push(0);
        self.buf(&v)
    }

    fn ok(&self, nr: u32, args: &[u64]) -> i64 {
        self.f.ok(nr, args)
    }

    fn err(&self, nr: u32, args: &[u64]) -> Errno {
        self.f.err(nr, args)
    }

    fn open(&self, path: &str, flags: u32, mode: u32) -> Result<i64, Errno> {
        let p = self.s(path);
        self.f
            .call(SYS_open, &[p, u64::from(flags), u64::from(mode)])
            .map(|r| r[0])
    }

    fn stat(&self, path: &str) -> Result<Stat, Errno> {
        let b = self.buf(&[0; 152]);
        let p = self.s(path);
        self.f.call(SYS___stat50, &[p, b])?;
        Ok(decode(&self.f.mem.read(b, 152)))
    }

    fn write(&self, fd: i64, data: &[u8]) -> i64 {
        let b = self.buf(data);
        self.ok(SYS_write, &[fd as u64, b, data.len() as u64])
    }

    fn pread(&self, fd: i64, n: usize, off: i64) -> Vec<u8> {
        let b = self.buf(&vec![0; n]);
        let got = self.ok(SYS_pread, &[fd as u64, b, n as u64, 0, off as u64]);
        self.f.mem.read(b, got as usize)
    }

    fn names(&self, path: &str) -> Vec<String> {
        let fd = self.open(path, O_RDONLY, 0).unwrap();
        let b = self.buf(&[0; 4096]);
        let n = self.ok(SYS___getdents30, &[fd as u64, b, 4096]) as usize;
        self.ok(SYS_close, &[fd as u64]);
        parse_dirents(&self.f.mem.read(b, n))
            .into_iter()
            .map(|(_, n)| n)
            .collect()
    }

    fn as_user(&self, uid: u32, gid: u32) {
        let new = Cred {
            uid,
            euid: uid,
            gid,
            egid: gid,
            ..Cred::default()
        };
        self.f.p.modify_cred(|_| Ok(new)).unwrap();
    }
}

fn decode(b: &[u8]) -> Stat {
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    Stat {
        dev: u64_at(0),
        mode: u32_at(8),
        ino: u64_at(16),
        nlink: u32_at(24),
        uid: u32_at(28),
        gid: u32_at(32),
        rdev: u64_at(40),
        size: u64_at(112) as i64,
        blocks: u64_at(120) as i64,
        blksize: u32_at(128) as i32,
        ..Stat::default()
    }
}

fn parse_dirents(b: &[u8]) -> Vec<(u64, String)> {
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        let ino = u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        let reclen = u16::from_le_bytes([b[i + 8], b[i + 9]]) as usize;
        let namlen = u16::from_le_bytes([b[i + 10], b[i + 11]]) as usize;
        out.push((
            ino,
            String::from_utf8_lossy(&b[i + 13..i + 13 + namlen]).into(),
        ));
        i += reclen;
    }
    out
}

#[test]
fn boot_namespace() {
    let t = T::new();
    let root = t.stat("/").unwrap();
    assert_eq!(
        (root.mode, root.nlink, root.ino, root.dev),
        (0o040755, 4, 3, 3)
    );
    assert_eq!((root.blksize, root.blocks, root.size), (512, 1, 512));
    assert_eq!(t.stat("/tmp").unwrap().mode, 0o041777);
    assert_eq!(t.stat("/dev").unwrap().mode, 0o040755);
    let null = t.stat("/dev/null").unwrap();
    assert_eq!((null.mode, null.rdev), (0o020644, makedev(2, 2)));
    assert_eq!(null.dev, null.ino);
    let mut names = t.names("/");
    names.sort();
    assert_eq!(names, ["dev", "tmp"]);
    assert_eq!(t.names("/dev"), ["zero", "null"], "newest first");
}

#[test]
fn without_rumpvfs_everything_is_enosys() {
    let f = {
        let host = std::sync::Arc::new(crate::testutil::TestHost::default());
        let cfg = crate::BootConfig {
            ncpu: 1,
            verbose: false,
            hostname: String::new(),
            vfs: false,
            mem_limit_bytes: None,
            filesystems: crate::fs::FsKind::ALL.to_vec(),
            dev: false,
        };
        let k = crate::Kernel::boot(cfg, host).unwrap();
        let p = k.spawn_guest(b"t").unwrap();
        (k, p)
    };
    let mem = crate::testutil::TestMem::new();
    for nr in [
        SYS_open,
        SYS___stat50,
        SYS_mkdir,
        SYS_openat,
        SYS___getcwd,
        SYS_sync,
    ] {
        let out =
            crate::testutil::block_on(f.0.syscall(&f.1, &mem, nr, &[0x1000, 0, 0, 0, 0, 0, 0, 0]));
        assert_eq!(out.result, Err(Errno::ENOSYS), "{nr}");
    }
    assert!(mem.requests().is_empty());
}

#[test]
fn create_write_read_stat() {
    let t = T::new();
    let fd = t.open("/tmp/f", O_CREAT | O_EXCL | O_RDWR, 0o666).unwrap();
    assert_eq!(fd, 3);
    let st = t.stat("/tmp/f").unwrap();
    assert_eq!((st.mode, st.nlink, st.size), (0o100644, 1, 0));
    assert_eq!(st.dev, st.ino);
    let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    assert_eq!(t.write(fd, &data), 200_000);
    assert!(t
        .f
        .mem
        .requests()
        .iter()
        .all(|r| !matches!(r, crate::testutil::Req::In(_, n) if *n > 65536)));
    assert_eq!(t.pread(fd, 10, 199_995), &data[199_995..]);
    assert_eq!(t.pread(fd, 10, 1 << 40), b"");
    assert_eq!(t.ok(SYS_lseek, &[fd as u64, 0, 0, int(SEEK_CUR)]), 200_000);
    assert_eq!(t.ok(SYS_lseek, &[fd as u64, 0, 5, int(SEEK_SET)]), 5);
    let b = t.buf(&[0; 4]);
    assert_eq!(t.ok(SYS_read, &[fd as u64, b, 4]), 4);
    assert_eq!(t.f.mem.read(b, 4), &data[5..9]);
    assert_eq!(
        t.err(SYS_lseek, &[fd as u64, 0, (-1i64) as u64, 0]),
        Errno::EINVAL
    );
    assert_eq!(t.err(SYS_lseek, &[1, 0, 0, 0]), Errno::ESPIPE);
    assert_eq!(
        t.err(SYS_pread, &[fd as u64, b, 4, 0, (-1i64) as u64]),
        Errno::EINVAL
    );
    assert_eq!(t.err(SYS_pread, &[1, b, 4, 0, 0]), Errno::EBADF);
    // Shrink, then extend: zeros (POSIX; rumpfs shows the old bytes).
    t.ok(SYS_ftruncate, &[fd as u64, 0, 3]);
    t.ok(SYS_ftruncate, &[fd as u64, 0, 6]);
    assert_eq!(t.pread(fd, 10, 0), [0, 1, 2, 0, 0, 0]);
    assert_eq!(
        t.err(SYS_ftruncate, &[fd as u64, 0, (-1i64) as u64]),
        Errno::EINVAL
    );
    assert_eq!(
        t.open("/tmp/f", O_CREAT | O_EXCL | O_RDWR, 0),
        Err(Errno::EEXIST)
    );
    // O_APPEND: pwrite appends, as NetBSD.
    let fa = t.open("/tmp/f", O_WRONLY | O_APPEND, 0).unwrap();
    let x = t.buf(b"xyz");
    t.ok(SYS_pwrite, &[fa as u64, x, 3, 0, 0]);
    assert_eq!(t.stat("/tmp/f").unwrap().size, 9);
    let ro = t.open("/tmp/f", O_RDONLY, 0).unwrap();
    assert_eq!(t.err(SYS_write, &[ro as u64, x, 3]), Errno::EBADF);
    assert_eq!(t.err(SYS_ftruncate, &[ro as u64, 0, 0]), Errno::EINVAL);
    let tr = t.open("/tmp/f", O_RDWR | O_TRUNC, 0).unwrap();
    assert_eq!(t.stat("/tmp/f").unwrap().size, 0);
    t.ok(SYS_close, &[tr as u64]);
    // F_GETFL / F_SETFL on a vnode.
    let fl = |cmd, arg| {
        t.f.call(SYS_fcntl, &[fa as u64, int(cmd), arg])
            .map(|r| r[0])
    };
    assert_eq!(fl(F_GETFL, 0), Ok(i64::from(O_WRONLY | O_APPEND)));
    assert_eq!(fl(F_SETFL, u64::from(O_NONBLOCK)), Ok(0));
    assert_eq!(fl(F_GETFL, 0), Ok(i64::from(O_WRONLY | O_NONBLOCK)));
    assert_eq!(t.open("/tmp", O_RDWR, 0), Err(Errno::EISDIR));
    assert_eq!(t.open("/tmp/f", O_ACCMODE, 0), Err(Errno::EINVAL));
    assert_eq!(
        t.open("/tmp/f", O_RDONLY | O_DIRECTORY, 0),
        Err(Errno::ENOTDIR)
    );
}

#[test]
fn devices_null_and_zero() {
    let t = T::new();
    let z = t.open("/dev/zero", O_RDWR, 0).unwrap();
    let b = t.buf(&[9; 8]);
    assert_eq!(t.ok(SYS_read, &[z as u64, b, 8]), 8);
    assert_eq!(t.f.mem.read(b, 8), [0; 8]);
    let n = t.open("/dev/null", O_RDWR, 0).unwrap();
    assert_eq!(t.ok(SYS_read, &[n as u64, b, 8]), 0);
    t.f.mem.clear_requests();
    assert_eq!(t.ok(SYS_write, &[n as u64, b, 1 << 40]), 1 << 40);
    assert!(
        t.f.mem.requests().is_empty(),
        "the null device copies nothing in"
    );
}

#[test]
fn lookup_rules() {
    let t = T::new();
    assert_eq!(t.stat("").unwrap_err(), Errno::ENOENT);
    assert_eq!(
        t.stat(&format!("/tmp/{}", "n".repeat(256))).unwrap_err(),
        Errno::ENAMETOOLONG
    );
    assert_eq!(
        t.stat(&format!("/tmp/{}", "n".repeat(255))).unwrap_err(),
        Errno::ENOENT
    );
    assert_eq!(t.stat(&"/a".repeat(600)).unwrap_err(), Errno::ENAMETOOLONG);
    assert_eq!(t.stat("/tmp/../tmp/./").unwrap().mode, 0o041777);
    assert_eq!(t.stat("/..").unwrap().ino, 3);
    assert_eq!(t.stat("//dev//null").unwrap().mode, 0o020644);
    assert_eq!(t.stat("/dev/null/").unwrap_err(), Errno::ENOTDIR);
    assert_eq!(t.stat("/dev/null/x").unwrap_err(), Errno::ENOTDIR);
    assert_eq!(
        t.open("/tmp/new/", O_CREAT | O_RDWR, 0o644),
        Err(Errno::ENOENT)
    );
    let fd = t.open("/tmp/l0", O_CREAT | O_WRONLY, 0o644).unwrap();
    t.ok(SYS_close, &[fd as u64]);
    for i in 1..=33 {
        let (a, b) = (t.s(&format!("/tmp/l{}", i - 1)), t.s(&format!("/tmp/l{i}")));
        t.ok(SYS_symlink, &[a, b]);
    }
    assert!(t.stat("/tmp/l32").is_ok());
    assert_eq!(t.stat("/tmp/l33").unwrap_err(), Errno::ELOOP);
    assert_eq!(
        t.open("/tmp/l1", O_RDONLY | O_NOFOLLOW, 0),
        Err(Errno::EFTYPE)
    );
    // openat with a closed descriptor and an absolute path: EBADF, as observed.
    let p = t.s("/tmp");
    assert_eq!(t.err(SYS_openat, &[40, p, 0, 0]), Errno::EBADF);
    assert_eq!(t.ok(SYS_openat, &[int(AT_FDCWD), p, 0, 0]), 3);
    let rel = t.s("l0");
    assert_eq!(t.ok(SYS_openat, &[3, rel, 0, 0]), 4);
    assert_eq!(t.err(SYS_openat, &[4, rel, 0, 0]), Errno::ENOTDIR);
    assert_eq!(t.err(SYS_openat, &[1, rel, 0, 0]), Errno::EINVAL);
    // A symlink to a directory with a trailing slash is followed by lstat.
    let (a, b) = (t.s("/dev"), t.s("/tmp/d"));
    t.ok(SYS_symlink, &[a, b]);
    let ub = t.buf(&[0; 152]);
    let p = t.s("/tmp/d/");
    t.ok(SYS___lstat50, &[p, ub]);
    assert_eq!(decode(&t.f.mem.read(ub, 152)).mode, 0o040755);
    let p = t.s("/tmp/d");
    t.ok(SYS___lstat50, &[p, ub]);
    let st = decode(&t.f.mem.read(ub, 152));
    assert_eq!((st.mode, st.size), (0o120755, 4));
    let rb = t.buf(&[0; 16]);
    assert_eq!(t.ok(SYS_readlink, &[p, rb, 16]), 4);
    assert_eq!(t.f.mem.read(rb, 4), b"/dev");
    assert_eq!(t.ok(SYS_readlink, &[p, rb, 2]), 2);
    let q = t.s("/tmp");
    assert_eq!(t.err(SYS_readlink, &[q, rb, 16]), Errno::EINVAL);
}

#[test]
fn directories_links_and_nlink() {
    let t = T::new();
    let d = t.s("/tmp/d");
    t.ok(SYS_mkdir, &[d, 0o755]);
    assert_eq!(t.err(SYS_mkdir, &[d, 0o755]), Errno::EEXIST);
    let sub = t.s("/tmp/d/sub/");
    t.ok(SYS_mkdir, &[sub, 0o777]);
    assert_eq!(t.stat("/tmp/d").unwrap().nlink, 3);
    assert_eq!(t.stat("/tmp/d/sub").unwrap().mode, 0o040755);
    assert_eq!(t.err(SYS_rmdir, &[d]), Errno::ENOTEMPTY);
    assert_eq!(t.err(SYS_unlink, &[sub]), Errno::EPERM);
    let fd = t.open("/tmp/d/f", O_CREAT | O_WRONLY, 0o600).unwrap();
    let (f, h) = (t.s("/tmp/d/f"), t.s("/tmp/d/h"));
    t.ok(SYS_link, &[f, h]);
    assert_eq!(t.err(SYS_link, &[f, h]), Errno::EEXIST);
    let h2 = t.s("/tmp/d/h2");
    assert_eq!(t.err(SYS_link, &[d, h2]), Errno::EPERM);
    assert_eq!(t.err(SYS_link, &[d, h]), Errno::EEXIST);
    assert_eq!(t.stat("/tmp/d/f").unwrap().nlink, 2);
    t.ok(SYS_unlink, &[f]);
    t.ok(SYS_unlink, &[h]);
    let sb = t.buf(&[0; 152]);
    t.ok(SYS___fstat50, &[fd as u64, sb]);
    assert_eq!(decode(&t.f.mem.read(sb, 152)).nlink, 0, "unlinked but open");
    assert_eq!(t.err(SYS_rmdir, &[f]), Errno::ENOENT);
    let dot = t.s("/tmp/d/.");
    assert_eq!(t.err(SYS_rmdir, &[dot]), Errno::EINVAL);
    let root = t.s("/");
    assert_eq!(t.err(SYS_rmdir, &[root]), Errno::EBUSY);
    assert_eq!(t.err(SYS_mkdir, &[root, 0o755]), Errno::EEXIST);
    let flag = u64::from(AT_REMOVEDIR as u32);
    t.ok(SYS_unlinkat, &[int(AT_FDCWD), sub, flag]);
    assert_eq!(t.stat("/tmp/d").unwrap().nlink, 2);
    let tmpf = t.s("/tmp/d/x");
    let fd2 = t.open("/tmp/d/x", O_CREAT | O_WRONLY, 0o600).unwrap();
    t.ok(SYS_close, &[fd2 as u64]);
    assert_eq!(
        t.err(SYS_unlinkat, &[int(AT_FDCWD), tmpf, flag]),
        Errno::ENOTDIR
    );
    // Unknown unlinkat flag bits are ignored (vfs_syscalls.c `do_sys_unlinkat`).
    t.ok(SYS_unlinkat, &[int(AT_FDCWD), tmpf, 1]);
    assert_eq!(t.stat("/tmp/d/x"), Err(Errno::ENOENT));
}

#[test]
fn rename_edge_cases() {
    let t = T::new();
    for d in ["/tmp/a", "/tmp/a/b", "/tmp/e"] {
        let p = t.s(d);
        t.ok(SYS_mkdir, &[p, 0o755]);
    }
    let fd = t.open("/tmp/f", O_CREAT | O_WRONLY, 0o644).unwrap();
    t.ok(SYS_close, &[fd as u64]);
    let s = |p: &str| t.s(p);
    assert_eq!(
        t.err(SYS_rename, &[s("/tmp/a"), s("/tmp/a/b/c")]),
        Errno::EINVAL
    );
    assert_eq!(
        t.err(SYS_rename, &[s("/tmp/f"), s("/tmp/a")]),
        Errno::EISDIR
    );
    assert_eq!(
        t.err(SYS_rename, &[s("/tmp/a"), s("/tmp/f")]),
        Errno::ENOTDIR
    );
    assert_eq!(
        t.err(SYS_rename, &[s("/tmp/e"), s("/tmp/a")]),
        Errno::ENOTEMPTY
    );
    assert_eq!(
        t.err(SYS_rename, &[s("/tmp/nope"), s("/tmp/x")]),
        Errno::ENOENT
    );
    assert_eq!(
        t.err(SYS_rename, &[s("/tmp/a/."), s("/tmp/x")]),
        Errno::EINVAL
    );
    // A directory moves: nlinks of both parents follow.
    t.ok(SYS_rename, &[s("/tmp/a/b"), s("/tmp/e/b")]);
    assert_eq!(t.stat("/tmp/a").unwrap().nlink, 2);
    assert_eq!(t.stat("/tmp/e").unwrap().nlink, 3);
    t.ok(SYS_chdir, &[s("/tmp/e/b")]);
    let cb = t.buf(&[0; 64]);
    assert_eq!(t.ok(SYS___getcwd, &[cb, 64]), 9);
    assert_eq!(t.f.mem.read(cb, 9), b"/tmp/e/b\0");
    // Replace an empty directory; replace a file.
    t.ok(SYS_rename, &[s("/tmp/a"), s("/tmp/e/b")]);
    assert_eq!(t.stat("/tmp/a").unwrap_err(), Errno::ENOENT);
    let g = t.open("/tmp/g", O_CREAT | O_WRONLY, 0o644).unwrap();
    t.ok(SYS_close, &[g as u64]);
    let ino_f = t.stat("/tmp/f").unwrap().ino;
    t.ok(SYS___posix_rename, &[s("/tmp/f"), s("/tmp/g")]);
    assert_eq!(t.stat("/tmp/g").unwrap().ino, ino_f);
    // Two links of one file: the source name goes away.
    t.ok(SYS_link, &[s("/tmp/g"), s("/tmp/h")]);
    t.ok(SYS_rename, &[s("/tmp/g"), s("/tmp/h")]);
    assert_eq!(t.stat("/tmp/g").unwrap_err(), Errno::ENOENT);
    assert_eq!(t.stat("/tmp/h").unwrap().nlink, 1);
    t.ok(SYS_rename, &[s("/tmp/h"), s("/tmp/h")]);
}

#[test]
fn getcwd_and_chdir() {
    let t = T::new();
    let cb = t.buf(&[0; 64]);
    assert_eq!(t.ok(SYS___getcwd, &[cb, 64]), 2);
    assert_eq!(t.f.mem.read(cb, 2), b"/\0");
    assert_eq!(t.err(SYS___getcwd, &[cb, 1]), Errno::ERANGE);
    let p = t.s("/tmp");
    t.ok(SYS_chdir, &[p]);
    assert_eq!(t.ok(SYS___getcwd, &[cb, 64]), 5);
    assert_eq!(t.f.mem.read(cb, 5), b"/tmp\0");
    assert_eq!(t.err(SYS___getcwd, &[cb, 4]), Errno::ERANGE);
    let n = t.s("/dev/null");
    assert_eq!(t.err(SYS_chdir, &[n]), Errno::ENOTDIR);
    assert_eq!(t.stat("../dev").unwrap().mode, 0o040755);
}

#[test]
fn getdents_resumes_after_the_last_entry() {
    let t = T::new();
    for i in 0..5 {
        let fd = t
            .open(&format!("/tmp/file{i}"), O_CREAT | O_WRONLY, 0o644)
            .unwrap();
        t.ok(SYS_close, &[fd as u64]);
    }
    let fd = t.open("/tmp", O_RDONLY, 0).unwrap() as u64;
    let b = t.buf(&[0xff; 4096]);
    assert_eq!(t.err(SYS___getdents30, &[fd, b, 16]), Errno::EINVAL);
    // Two 24-byte records fit in 50 bytes.
    assert_eq!(t.ok(SYS___getdents30, &[fd, b, 50]), 48);
    let first = parse_dirents(&t.f.mem.read(b, 48));
    // rumpfs lists the newest entry first, as NetBSD's.
    assert_eq!((&*first[0].1, &*first[1].1), ("file4", "file3"));
    assert_eq!(t.f.mem.read(b, 24)[18..24], [0; 6], "padding is zero");
    // Remove an entry already returned and one not yet, and add one (newer than where the
    // reading is): resumption is exact.
    let (p4, p1) = (t.s("/tmp/file4"), t.s("/tmp/file1"));
    t.ok(SYS_unlink, &[p4]);
    t.ok(SYS_unlink, &[p1]);
    let fd5 = t.open("/tmp/file5", O_CREAT | O_WRONLY, 0o644).unwrap();
    t.ok(SYS_close, &[fd5 as u64]);
    let n = t.ok(SYS___getdents30, &[fd, b, 4096]) as usize;
    let rest: Vec<String> = parse_dirents(&t.f.mem.read(b, n))
        .into_iter()
        .map(|e| e.1)
        .collect();
    assert_eq!(rest, ["file2", "file0"]);
    assert_eq!(t.ok(SYS___getdents30, &[fd, b, 4096]), 0);
    let f = t.open("/tmp/file2", O_RDONLY, 0).unwrap() as u64;
    assert_eq!(t.err(SYS___getdents30, &[f, b, 4096]), Errno::EINVAL);
}

#[test]
fn permissions_for_a_non_root_user() {
    let t = T::new();
    let d = t.s("/tmp/priv");
    t.ok(SYS_mkdir, &[d, 0o700]);
    let fd = t.open("/tmp/mine", O_CREAT | O_WRONLY, 0o600).unwrap();
    t.ok(SYS_close, &[fd as u64]);
    t.as_user(100, 100);
    assert_eq!(t.open("/tmp/mine", O_RDONLY, 0), Err(Errno::EACCES));
    assert_eq!(t.stat("/tmp/priv/x").unwrap_err(), Errno::EACCES);
    let m = t.s("/tmp/mine");
    // Sticky /tmp: root's file cannot be removed by another user.
    assert_eq!(t.err(SYS_unlink, &[m]), Errno::EPERM);
    assert_eq!(t.err(SYS_chmod, &[m, 0o777]), Errno::EPERM);
    assert_eq!(t.err(SYS_chown, &[m, 100, 100]), Errno::EPERM);
    assert_eq!(t.err(SYS_access, &[m, u64::from(R_OK)]), Errno::EACCES);
    assert_eq!(t.ok(SYS_access, &[m, u64::from(F_OK)]), 0);
    let fd = t.open("/tmp/his", O_CREAT | O_RDWR, 0o644).unwrap();
    let st = t.stat("/tmp/his").unwrap();
    assert_eq!((st.uid, st.gid), (100, 0), "group from the directory");
    let h = t.s("/tmp/his");
    assert_eq!(t.ok(SYS_chmod, &[h, 0o600]), 0);
    assert_eq!(t.err(SYS_chmod, &[h, 0o1600]), Errno::EFTYPE);
    assert_eq!(t.err(SYS_chown, &[h, 0, u64::from(u32::MAX)]), Errno::EPERM);
    assert_eq!(t.ok(SYS_chown, &[h, u64::from(u32::MAX), 100]), 0);
    assert_eq!(
        t.err(SYS___mknod50, &[h, u64::from(S_IFCHR), 0]),
        Errno::EPERM
    );
    let root_dir = t.s("/newdir");
    assert_eq!(t.err(SYS_mkdir, &[root_dir, 0o755]), Errno::EACCES);
    assert_eq!(t.err(SYS_chroot, &[root_dir]), Errno::EPERM);
    t.ok(SYS_close, &[fd as u64]);
    t.ok(SYS_unlink, &[h]);
}

#[test]
fn times_modes_and_statvfs() {
    let t = T::new();
    let fd = t.open("/tmp/t", O_CREAT | O_RDWR, 0o644).unwrap();
    let p = t.s("/tmp/t");
    let tv = t.buf(
        &[
            10u64.to_le_bytes(),
            5u64.to_le_bytes(),
            20u64.to_le_bytes(),
            7u64.to_le_bytes(),
        ]
        .concat(),
    );
    t.ok(SYS___utimes50, &[p, tv]);
    let sb = t.buf(&[0; 152]);
    t.ok(SYS___fstat50, &[fd as u64, sb]);
    let raw = t.f.mem.read(sb, 152);
    assert_eq!(
        &raw[48..64],
        &[&10i64.to_le_bytes()[..], &5000i64.to_le_bytes()].concat()[..]
    );
    assert_eq!(
        &raw[64..80],
        &[&20i64.to_le_bytes()[..], &7000i64.to_le_bytes()].concat()[..]
    );
    let ts = t.buf(
        &[
            1u64.to_le_bytes(),
            (UTIME_OMIT as u64).to_le_bytes(),
            2u64.to_le_bytes(),
            3u64.to_le_bytes(),
        ]
        .concat(),
    );
    t.ok(SYS_futimens, &[fd as u64, ts]);
    t.ok(SYS___fstat50, &[fd as u64, sb]);
    let raw = t.f.mem.read(sb, 152);
    assert_eq!(&raw[48..56], &10i64.to_le_bytes());
    assert_eq!(
        &raw[64..80],
        &[&2i64.to_le_bytes()[..], &3i64.to_le_bytes()].concat()[..]
    );
    let bad = t.buf(
        &[
            0u64.to_le_bytes(),
            1_000_000_000u64.to_le_bytes(),
            [0; 8],
            [0; 8],
        ]
        .concat(),
    );
    assert_eq!(t.err(SYS_futimens, &[fd as u64, bad]), Errno::EINVAL);
    t.ok(SYS_fchmod, &[fd as u64, 0o4755]);
    assert_eq!(t.stat("/tmp/t").unwrap().mode, 0o104755);
    let vb = t.buf(&[0; 3296]);
    t.ok(SYS___statvfs190, &[p, vb, 1]);
    let v = t.f.mem.read(vb, 3296);
    assert_eq!(&v[0..8], &(MNT_LOCAL | MNT_ROOTFS).to_le_bytes());
    assert_eq!(&v[8..16], &512u64.to_le_bytes());
    assert_eq!(&v[32..40], &2u64.to_le_bytes());
    assert_eq!(&v[192..199], b"rumpfs\0");
    assert_eq!(&v[224..226], b"/\0");
    let ob = t.buf(&[0; 2256]);
    t.ok(SYS_fstatvfs1, &[fd as u64, ob, 1]);
    assert_eq!(&t.f.mem.read(ob, 2256)[172..178], b"rumpfs");
    assert_eq!(t.ok(SYS___getvfsstat90, &[0, 0, 0]), 1);
    assert_eq!(t.ok(SYS_getvfsstat, &[ob, 2256, 0]), 1);
    assert_eq!(t.ok(SYS_pathconf, &[p, int(PC_NAME_MAX)]), 255);
    assert_eq!(t.ok(SYS_fpathconf, &[fd as u64, int(PC_LINK_MAX)]), 32767);
    assert_eq!(t.err(SYS_fpathconf, &[fd as u64, 99]), Errno::EINVAL);
    // NOERR calls return the error number as the value.
    assert_eq!(t.ok(SYS___posix_fadvise50, &[fd as u64, 0, 0, 0, 9]), 22);
    assert_eq!(t.ok(SYS___posix_fadvise50, &[50, 0, 0, 0, 0]), 9);
    // rumpfs has no VOP_FALLOCATE: EOPNOTSUPP (45) as the value (vfs_syscalls.c
    // `sys_posix_fallocate`, rumpfs.c `rump_vnodeop_entries`).
    assert_eq!(t.ok(SYS_posix_fallocate, &[fd as u64, 0, 0, 100]), 45);
    assert_eq!(t.ok(SYS_fsync, &[fd as u64]), 0);
    assert_eq!(t.ok(SYS_fsync_range, &[fd as u64, int(FDATASYNC), 0, 0]), 0);
    assert_eq!(t.err(SYS_fsync_range, &[fd as u64, 0, 0, 0]), Errno::EINVAL);
    assert_eq!(t.ok(SYS_sync, &[]), 0);
    assert_eq!(t.err(SYS_fsync, &[1]), Errno::EINVAL);
}

#[test]
fn fifo_nodes_open_through_the_pipe_engine() {
    let t = T::new();
    let p = t.s("/tmp/fifo");
    t.ok(SYS_mkfifo, &[p, 0o644]);
    assert_eq!(t.stat("/tmp/fifo").unwrap().mode, 0o010644);
    let fd = t.open("/tmp/fifo", O_RDWR, 0).unwrap();
    assert_eq!(t.write(fd, b"abc"), 3);
    let b = t.buf(&[0; 8]);
    assert_eq!(t.ok(SYS_read, &[fd as u64, b, 8]), 3);
    assert_eq!(t.f.mem.read(b, 3), b"abc");
    assert_eq!(t.err(SYS_lseek, &[fd as u64, 0, 0, 0]), Errno::ESPIPE);
    assert_eq!(
        t.open("/tmp/fifo", O_WRONLY | O_NONBLOCK, 0).map(|_| ()),
        Ok(())
    );
}

#[test]
fn record_locks_between_processes() {
    let t = T::new();
    let fd = t.open("/tmp/lk", O_CREAT | O_RDWR, 0o644).unwrap() as u64;
    // F_WRLCK over the whole file (l_start 0, l_len 0, whence SEEK_SET).
    let mut fl = vec![0u8; 24];
    fl[20..22].copy_from_slice(&3i16.to_le_bytes());
    let a = t.buf(&fl);
    assert_eq!(t.ok(SYS_fcntl, &[fd, int(F_SETLK), a]), 0);
    let q = t.f.k.spawn_guest(b"other").unwrap();
    let mem = crate::testutil::TestMem::new();
    mem.map(0x1000, b"/tmp/lk\0");
    mem.map(0x2000, &fl);
    let call = |nr, args: [u64; 8]| crate::testutil::block_on(t.f.k.syscall(&q, &mem, nr, &args));
    let ofl = u64::from(O_RDWR);
    let qfd = call(SYS_open, [0x1000, ofl, 0, 0, 0, 0, 0, 0])
        .result
        .unwrap()[0] as u64;
    let r = call(SYS_fcntl, [qfd, int(F_SETLK), 0x2000, 0, 0, 0, 0, 0]).result;
    assert_eq!(r, Err(Errno::EAGAIN));
    assert_eq!(
        call(SYS_fcntl, [qfd, int(F_GETLK), 0x2000, 0, 0, 0, 0, 0]).result,
        Ok([0, 0])
    );
    let got = mem.read(0x2000, 24);
    assert_eq!(
        i32::from_le_bytes(got[16..20].try_into().unwrap()),
        t.f.p.pid()
    );
    // Closing any descriptor of the file drops the owner's record locks.
    t.ok(SYS_close, &[fd]);
    mem.map(0x3000, &fl);
    let r = call(SYS_fcntl, [qfd, int(F_SETLK), 0x3000, 0, 0, 0, 0, 0]).result;
    assert_eq!(r, Ok([0, 0]));
}

/// Another guest process of `t`'s kernel with its own memory; `path` mapped at 0x1000.
struct Other {
    p: std::sync::Arc<crate::Proc>,
    mem: crate::testutil::TestMem,
}

impl Other {
    fn new(t: &T, path: &str) -> Other {
        let mem = crate::testutil::TestMem::new();
        mem.map(0x1000, format!("{path}\0").as_bytes());
        Other {
            p: t.f.k.spawn_guest(b"other").unwrap(),
            mem,
        }
    }

    fn call(&self, t: &T, nr: u32, args: &[u64]) -> crate::Result<i64> {
        let mut slots = [0u64; 8];
        slots[..args.len()].copy_from_slice(args);
        let fut = t.f.k.syscall(&self.p, &self.mem, nr, &slots);
        crate::testutil::block_on(fut).result.map(|r| r[0])
    }

    fn open(&self, t: &T, flags: u32) -> crate::Result<i64> {
        self.call(t, SYS_open, &[0x1000, u64::from(flags), 0])
    }
}

/// Runs syscall `nr` as `p` on a new thread (a real waker, so it may sleep).
fn spawn_call(
    t: &T,
    p: &std::sync::Arc<crate::Proc>,
    path: &str,
    nr: u32,
    args: [u64; 8],
) -> std::thread::JoinHandle<crate::Result<i64>> {
    let (k, p) = (t.f.k.clone(), p.clone());
    let path = format!("{path}\0");
    std::thread::spawn(move || {
        let mem = crate::testutil::TestMem::new();
        mem.map(0x1000, path.as_bytes());
        let fut = k.syscall(&p, &mem, nr, &args);
        crate::sync::tests::run(fut).result.map(|r| r[0])
    })
}

fn still_waiting(h: &std::thread::JoinHandle<crate::Result<i64>>) -> bool {
    std::thread::sleep(std::time::Duration::from_millis(30));
    !h.is_finished()
}

const SH: u64 = 1;
const EX: u64 = 2;
const NB: u64 = 4;
const UN: u64 = 8;

#[test]
fn flock_between_processes() {
    let t = T::new();
    let fd = t.open("/tmp/fl", O_CREAT | O_RDWR, 0o644).unwrap() as u64;
    let q = Other::new(&t, "/tmp/fl");
    let qfd = q.open(&t, O_RDONLY).unwrap() as u64;
    assert_eq!(t.ok(SYS_flock, &[fd, SH]), 0);
    // Shared locks coexist; an exclusive one conflicts (EWOULDBLOCK, 35).
    assert_eq!(q.call(&t, SYS_flock, &[qfd, SH | NB]), Ok(0));
    assert_eq!(
        q.call(&t, SYS_flock, &[qfd, EX | NB]),
        Err(Errno::EWOULDBLOCK)
    );
    assert_eq!(Errno::EWOULDBLOCK.raw(), 35);
    assert_eq!(q.call(&t, SYS_flock, &[qfd, UN]), Ok(0));
    // Upgrade in place, then the other side cannot even share.
    assert_eq!(t.ok(SYS_flock, &[fd, EX | NB]), 0);
    assert_eq!(
        q.call(&t, SYS_flock, &[qfd, SH | NB]),
        Err(Errno::EWOULDBLOCK)
    );
    // A blocking request waits until the holder unlocks.
    let h = spawn_call(&t, &q.p, "", SYS_flock, [qfd, EX, 0, 0, 0, 0, 0, 0]);
    assert!(still_waiting(&h));
    assert_eq!(t.ok(SYS_flock, &[fd, UN | NB]), 0);
    assert_eq!(h.join().unwrap(), Ok(0));
    assert_eq!(t.err(SYS_flock, &[fd, SH | NB]), Errno::EWOULDBLOCK);
    // A blocked request ends with EINTR when its client disconnects.
    let h = spawn_call(&t, &t.f.p, "", SYS_flock, [fd, SH, 0, 0, 0, 0, 0, 0]);
    assert!(still_waiting(&h));
    t.f.k.begin_exit(&t.f.p);
    assert_eq!(h.join().unwrap(), Err(Errno::EINTR));
}

#[test]
fn flock_arguments_and_file_kinds() {
    let t = T::new();
    let fd = t.open("/tmp/fl", O_CREAT | O_RDWR, 0o644).unwrap() as u64;
    for how in [0, 3, 7, 16, NB, UN | EX, 0x8000_0001] {
        assert_eq!(t.err(SYS_flock, &[fd, how]), Errno::EINVAL, "how {how}");
    }
    assert_eq!(t.ok(SYS_flock, &[fd, UN]), 0);
    assert_eq!(t.ok(SYS_flock, &[fd, UN | NB]), 0);
    assert_eq!(t.err(SYS_flock, &[99, EX]), Errno::EBADF);
    // The console and pipes are not vnodes; a FIFO's advlock is genfs_einval.
    assert_eq!(t.err(SYS_flock, &[1, EX]), Errno::EOPNOTSUPP);
    let rv = t.f.call(SYS_pipe, &[]).unwrap();
    assert_eq!(t.err(SYS_flock, &[rv[0] as u64, EX]), Errno::EOPNOTSUPP);
    let p = t.s("/tmp/fifo");
    t.ok(SYS_mkfifo, &[p, 0o644]);
    let ffd = t.open("/tmp/fifo", O_RDWR, 0).unwrap() as u64;
    assert_eq!(t.err(SYS_flock, &[ffd, EX]), Errno::EINVAL);
    let a = t.buf(&wrlck());
    assert_eq!(t.err(SYS_fcntl, &[ffd, int(F_SETLK), a]), Errno::EINVAL);
    assert_eq!(
        t.open("/tmp/fifo", O_RDWR | O_EXLOCK, 0),
        Err(Errno::EINVAL)
    );
    // Directories and devices lock (rumpfs and specfs advlock).
    let dfd = t.open("/tmp", O_RDONLY, 0).unwrap() as u64;
    assert_eq!(t.ok(SYS_flock, &[dfd, EX]), 0);
    let nfd = t.open("/dev/null", O_RDWR, 0).unwrap() as u64;
    assert_eq!(t.ok(SYS_flock, &[nfd, SH]), 0);
}

#[test]
fn flock_is_released_on_the_last_close_of_the_open_file() {
    let t = T::new();
    let fd = t.open("/tmp/fl", O_CREAT | O_RDWR, 0o644).unwrap() as u64;
    let dup = t.ok(SYS_dup, &[fd]) as u64;
    let other = t.open("/tmp/fl", O_RDONLY, 0).unwrap() as u64;
    assert_eq!(t.ok(SYS_flock, &[fd, EX]), 0);
    // A second open of the same file is another owner, even in the same process.
    assert_eq!(t.err(SYS_flock, &[other, SH | NB]), Errno::EWOULDBLOCK);
    // The dup shares the lock: unlocking through it is allowed, closing one is not enough.
    assert_eq!(t.ok(SYS_flock, &[dup, EX | NB]), 0);
    t.ok(SYS_close, &[fd]);
    assert_eq!(t.err(SYS_flock, &[other, SH | NB]), Errno::EWOULDBLOCK);
    // dup2 over the last descriptor closes the open file too.
    t.ok(SYS_dup2, &[0, dup]);
    assert_eq!(t.ok(SYS_flock, &[other, EX | NB]), 0);
    assert_eq!(t.f.k.locks().count(t_key(&t, other)), 1);
}

/// The lock key of the vnode open on `fd` in `t`'s process.
fn t_key(t: &T, fd: u64) -> u64 {
    t.f.p.fd.get(fd as i32).unwrap().vnode().unwrap().lock_key()
}

#[test]
fn flock_is_shared_across_fork() {
    let t = T::new();
    let fd = t.open("/tmp/fl", O_CREAT | O_RDWR, 0o644).unwrap() as u64;
    let q = Other::new(&t, "/tmp/fl");
    let qfd = q.open(&t, O_RDONLY).unwrap() as u64;
    assert_eq!(t.ok(SYS_flock, &[fd, EX]), 0);
    let pre = t.f.k.prefork(&t.f.p).unwrap();
    let child = t.f.k.adopt_fork(pre, b"child").unwrap();
    // The parent's close is not the last one: the child still has the open file.
    t.ok(SYS_close, &[fd]);
    assert_eq!(
        q.call(&t, SYS_flock, &[qfd, SH | NB]),
        Err(Errno::EWOULDBLOCK)
    );
    // The child may unlock it (the lock belongs to the open file) and lock it again.
    let c = Other {
        p: child.clone(),
        mem: crate::testutil::TestMem::new(),
    };
    assert_eq!(c.call(&t, SYS_flock, &[fd, UN]), Ok(0));
    assert_eq!(q.call(&t, SYS_flock, &[qfd, SH | NB]), Ok(0));
    assert_eq!(q.call(&t, SYS_flock, &[qfd, UN]), Ok(0));
    assert_eq!(c.call(&t, SYS_flock, &[fd, EX | NB]), Ok(0));
    // The child's exit is the last close.
    t.f.k.exit_process(&child);
    assert_eq!(q.call(&t, SYS_flock, &[qfd, EX | NB]), Ok(0));
}

#[test]
fn open_with_shlock_and_exlock() {
    let t = T::new();
    let ex = t.open("/tmp/ol", O_CREAT | O_RDWR | O_EXLOCK, 0o644);
    let ex = ex.unwrap() as u64;
    let q = Other::new(&t, "/tmp/ol");
    let nb = O_NONBLOCK | O_RDONLY;
    assert_eq!(q.open(&t, nb | O_SHLOCK), Err(Errno::EWOULDBLOCK));
    assert_eq!(q.open(&t, nb | O_EXLOCK), Err(Errno::EWOULDBLOCK));
    // The failed opens left no descriptor behind.
    assert_eq!(q.p.fd_count(), 3);
    // Without O_NONBLOCK the open waits for the lock.
    let flags = u64::from(O_RDONLY | O_SHLOCK);
    let h = spawn_call(
        &t,
        &q.p,
        "/tmp/ol",
        SYS_open,
        [0x1000, flags, 0, 0, 0, 0, 0, 0],
    );
    assert!(still_waiting(&h));
    t.ok(SYS_close, &[ex]);
    let qfd = h.join().unwrap().unwrap() as u64;
    // Shared locks from open coexist; flock on that file sees its lock.
    let sh = t
        .open("/tmp/ol", O_RDONLY | O_SHLOCK | O_NONBLOCK, 0)
        .unwrap();
    assert_eq!(t.err(SYS_flock, &[sh as u64, EX | NB]), Errno::EWOULDBLOCK);
    assert_eq!(q.call(&t, SYS_flock, &[qfd, UN]), Ok(0));
    assert_eq!(t.ok(SYS_flock, &[sh as u64, EX | NB]), 0);
    // O_EXLOCK wins over O_SHLOCK; openat takes the lock too.
    t.ok(SYS_close, &[sh as u64]);
    let both = O_RDONLY | O_SHLOCK | O_EXLOCK;
    let p = t.s("/tmp/ol");
    let at = t.ok(SYS_openat, &[int(AT_FDCWD), p, u64::from(both), 0]) as u64;
    assert_eq!(q.open(&t, nb | O_SHLOCK), Err(Errno::EWOULDBLOCK));
    t.ok(SYS_close, &[at]);
    assert!(q.open(&t, nb | O_SHLOCK).is_ok());
}

/// `struct flock` bytes: a write lock over the whole file.
fn wrlck() -> Vec<u8> {
    let mut fl = vec![0u8; 24];
    fl[20..22].copy_from_slice(&3i16.to_le_bytes());
    fl
}

#[test]
fn record_locks_go_with_any_descriptor_removal() {
    let t = T::new();
    let fd = t.open("/tmp/rl", O_CREAT | O_RDWR, 0o644).unwrap() as u64;
    let key = t_key(&t, fd);
    let a = t.buf(&wrlck());
    let set = |fd: u64| t.f.call(SYS_fcntl, &[fd, int(F_SETLK), a]).map(|_| ());
    let held = || t.f.k.locks().count(key);
    // dup2 of another file over a second descriptor of the file.
    let dup = t.ok(SYS_dup, &[fd]) as u64;
    assert_eq!(set(fd), Ok(()));
    assert_eq!(held(), 1);
    t.ok(SYS_dup2, &[0, dup]);
    assert_eq!(held(), 0);
    // dup3 (and dup2 of the file onto its own other descriptor) too.
    let dup = t.ok(SYS_dup, &[fd]) as u64;
    assert_eq!(set(fd), Ok(()));
    t.ok(SYS_dup2, &[fd, dup]);
    assert_eq!(held(), 0);
    assert_eq!(set(fd), Ok(()));
    t.ok(SYS___dup3100, &[1, dup, 0]);
    assert_eq!(held(), 0);
    // F_CLOSEM above the file's descriptors.
    let high = t.f.call(SYS_fcntl, &[fd, int(F_DUPFD), 20]).unwrap()[0] as u64;
    assert_eq!(set(fd), Ok(()));
    assert_eq!(t.f.call(SYS_fcntl, &[20, int(F_CLOSEM), 0]), Ok([0, 0]));
    assert_eq!(held(), 0);
    assert_eq!(t.err(SYS_close, &[high]), Errno::EBADF);
    // exec closing a close-on-exec descriptor.
    let ce = t.f.call(SYS_fcntl, &[fd, int(F_DUPFD_CLOEXEC), 0]).unwrap()[0] as u64;
    assert_eq!(set(fd), Ok(()));
    t.f.k.exec(&t.f.p, b"next");
    assert_eq!(held(), 0);
    assert_eq!(t.err(SYS_close, &[ce]), Errno::EBADF);
    // Only the closing process's locks go; F_CLOSEM of nothing changes nothing.
    let q = Other::new(&t, "/tmp/rl");
    let qfd = q.open(&t, O_RDWR).unwrap() as u64;
    q.mem.map(0x2000, &wrlck());
    assert_eq!(q.call(&t, SYS_fcntl, &[qfd, int(F_SETLK), 0x2000]), Ok(0));
    let mine = t.open("/tmp/rl", O_RDONLY, 0).unwrap() as u64;
    t.ok(SYS_close, &[mine]);
    assert_eq!(t.f.call(SYS_fcntl, &[60, int(F_CLOSEM), 0]), Ok([0, 0]));
    assert_eq!(held(), 1);
    // Process exit drops them all.
    t.f.k.exit_process(&q.p);
    assert_eq!(held(), 0);
    assert_eq!(set(fd), Ok(()));
}

/// rename's error order as NetBSD decides it: vfs_syscalls.c `do_sys_renameat` (`.`/`..`,
/// a file-system root, `EXDEV`, directory/non-directory mix, `fvp == tdvp`, `retain`),
/// then genfs_rename.c `genfs_sane_rename` (ancestry `EINVAL` before `ENOTEMPTY`, both
/// before permissions); vfs_lookup.c `lookup_once` for trailing slashes.
#[test]
fn rename_error_order_as_netbsd() {
    let t = T::new();
    let s = |p: &str| t.s(p);
    for d in ["/tmp/a", "/tmp/a/b", "/tmp/a/b/c", "/tmp/a/b/c/x", "/tmp/w"] {
        t.ok(SYS_mkdir, &[s(d), 0o777]);
    }
    let fd = t.open("/tmp/f", O_CREAT | O_WRONLY, 0o644).unwrap();
    t.ok(SYS_close, &[fd as u64]);
    let fd = t.open("/tmp/a/b/g", O_CREAT | O_WRONLY, 0o644).unwrap();
    t.ok(SYS_close, &[fd as u64]);
    let err = |a: &str, b: &str| t.err(SYS_rename, &[s(a), s(b)]);
    // Into itself with a non-empty directory as target: EINVAL before ENOTEMPTY.
    assert_eq!(err("/tmp/a/b", "/tmp/a/b/c"), Errno::EINVAL);
    // Into itself with a file as target: the type mix is checked first.
    assert_eq!(err("/tmp/a", "/tmp/a/b/g"), Errno::ENOTDIR);
    // Onto an ancestor: ENOTEMPTY (it holds the source); a file onto it: EISDIR.
    assert_eq!(err("/tmp/a/b/c", "/tmp/a"), Errno::ENOTEMPTY);
    assert_eq!(err("/tmp/a/b/g", "/tmp/a"), Errno::EISDIR);
    // `.` and `..`: source EINVAL, target `.` EISDIR, target `..` EINVAL; `/` is EBUSY.
    assert_eq!(err("/tmp/w/..", "/tmp/z"), Errno::EINVAL);
    assert_eq!(err("/tmp/f", "/tmp/w/."), Errno::EISDIR);
    assert_eq!(err("/tmp/f", "/tmp/w/.."), Errno::EINVAL);
    assert_eq!(err("/", "/tmp/z"), Errno::EBUSY);
    assert_eq!(err("/tmp/w", "/"), Errno::EBUSY);
    // A missing source is ENOENT before the target is even looked up.
    assert_eq!(err("/tmp/nope", "/nodir/x"), Errno::ENOENT);
    // Trailing slash on a missing target: only a directory may be renamed there.
    assert_eq!(err("/tmp/f", "/tmp/f2/"), Errno::ENOENT);
    assert_eq!(err("/tmp/f", "/tmp/w/"), Errno::EISDIR);
    t.ok(SYS_rename, &[s("/tmp/w"), s("/tmp/w2/")]);
    // Structure before permissions: ENOTEMPTY for a user without write permission.
    t.ok(SYS_mkdir, &[s("/tmp/ro"), 0o755]);
    t.ok(SYS_mkdir, &[s("/tmp/ro/d"), 0o755]);
    t.ok(SYS_mkdir, &[s("/tmp/ro/e"), 0o755]);
    t.ok(SYS_mkdir, &[s("/tmp/ro/e/x"), 0o755]);
    t.as_user(1000, 1000);
    assert_eq!(err("/tmp/ro/d", "/tmp/ro/e"), Errno::ENOTEMPTY);
    assert_eq!(err("/tmp/ro/d", "/tmp/ro/z"), Errno::EACCES);
}

/// `__posix_rename` keeps both links of one file (`retain`); rename removes the source
/// name (vfs_syscalls.c `sys___posix_rename`, `do_sys_renameat`).
#[test]
fn posix_rename_retains_two_links() {
    let t = T::new();
    let s = |p: &str| t.s(p);
    let fd = t.open("/tmp/f", O_CREAT | O_WRONLY, 0o644).unwrap();
    t.ok(SYS_close, &[fd as u64]);
    t.ok(SYS_link, &[s("/tmp/f"), s("/tmp/g")]);
    t.ok(SYS___posix_rename, &[s("/tmp/f"), s("/tmp/g")]);
    assert_eq!(t.stat("/tmp/f").unwrap().nlink, 2);
    t.ok(SYS_rename, &[s("/tmp/f"), s("/tmp/g")]);
    assert_eq!(t.stat("/tmp/f"), Err(Errno::ENOENT));
    assert_eq!(t.stat("/tmp/g").unwrap().nlink, 1);
}

/// unlink/rmdir as vfs_syscalls.c `do_sys_unlinkat` orders them: a root `EBUSY` before
/// `.` `EINVAL` before a directory `EPERM`; rmdir `..` `ENOTEMPTY`. linkat ignores flag
/// bits other than AT_SYMLINK_FOLLOW (`sys_linkat`); faccessat ignores unknown flag bits
/// (`do_sys_accessat`).
#[test]
fn unlink_rmdir_link_access_as_netbsd() {
    let t = T::new();
    let s = |p: &str| t.s(p);
    t.ok(SYS_mkdir, &[s("/tmp/d"), 0o755]);
    assert_eq!(t.err(SYS_unlink, &[s("/tmp/d/.")]), Errno::EINVAL);
    assert_eq!(t.err(SYS_unlink, &[s("/tmp/d/..")]), Errno::EPERM);
    assert_eq!(t.err(SYS_unlink, &[s("/tmp/d")]), Errno::EPERM);
    assert_eq!(t.err(SYS_unlink, &[s("/")]), Errno::EBUSY);
    assert_eq!(t.err(SYS_unlink, &[s("/.")]), Errno::EBUSY);
    assert_eq!(t.err(SYS_rmdir, &[s("/.")]), Errno::EBUSY);
    assert_eq!(t.err(SYS_rmdir, &[s("/..")]), Errno::EBUSY);
    assert_eq!(t.err(SYS_rmdir, &[s("/tmp/d/..")]), Errno::ENOTEMPTY);
    t.ok(SYS_chdir, &[s("/tmp/d")]);
    assert_eq!(t.err(SYS_rmdir, &[s(".")]), Errno::EINVAL);
    let fd = t.open("/tmp/f", O_CREAT | O_WRONLY, 0o644).unwrap();
    t.ok(SYS_close, &[fd as u64]);
    let at = int(AT_FDCWD);
    t.ok(SYS_linkat, &[at, s("/tmp/f"), at, s("/tmp/g"), 0x8000]);
    assert_eq!(t.stat("/tmp/f").unwrap().nlink, 2);
    t.ok(SYS_faccessat, &[at, s("/tmp/f"), 4, 0x8000]);
}

/// open as vfs_vnops.c `vn_open` decides: O_CREAT | O_DIRECTORY `EINVAL`; O_CREAT on `/`
/// `EEXIST` (namei CREATE without a parent); O_RDONLY | O_TRUNC truncates; O_CREAT on an
/// existing directory opens it for reading; O_NOFOLLOW on a symbolic link `EFTYPE`.
#[test]
fn open_as_netbsd() {
    let t = T::new();
    let dirflags = O_CREAT | O_DIRECTORY | O_RDONLY;
    assert_eq!(t.open("/tmp/new", dirflags, 0o644), Err(Errno::EINVAL));
    assert_eq!(t.stat("/tmp/new"), Err(Errno::ENOENT));
    assert_eq!(t.open("/", O_CREAT | O_RDONLY, 0), Err(Errno::EEXIST));
    let fd = t.open("/tmp/f", O_CREAT | O_WRONLY, 0o644).unwrap();
    t.write(fd, b"data");
    t.ok(SYS_close, &[fd as u64]);
    let fd = t.open("/tmp/f", O_RDONLY | O_TRUNC, 0).unwrap();
    t.ok(SYS_close, &[fd as u64]);
    assert_eq!(t.stat("/tmp/f").unwrap().size, 0);
    let fd = t.open("/tmp", O_CREAT | O_RDONLY, 0).unwrap();
    t.ok(SYS_close, &[fd as u64]);
    assert_eq!(t.open("/tmp", O_CREAT | O_RDWR, 0), Err(Errno::EISDIR));
    t.ok(SYS_symlink, &[t.s("f"), t.s("/tmp/l")]);
    assert_eq!(
        t.open("/tmp/l", O_RDONLY | O_NOFOLLOW, 0),
        Err(Errno::EFTYPE)
    );
    let excl = O_CREAT | O_EXCL | O_WRONLY;
    assert_eq!(t.open("/tmp/l", excl, 0o644), Err(Errno::EEXIST));
    assert_eq!(t.open("/tmp/f/", O_RDONLY, 0), Err(Errno::ENOTDIR));
}

/// posix_fallocate/fdiscard on rumpfs: the syscall checks (vfs_syscalls.c
/// `sys_posix_fallocate`, `sys_fdiscard`), then `EOPNOTSUPP` (rumpfs.c has no
/// VOP_FALLOCATE/VOP_FDISCARD); posix_fallocate answers in the value. rumpfs's
/// `rump_vop_pathconf`: 43 file-size bits, symlink max 1024.
#[test]
fn fallocate_fdiscard_pathconf_on_rumpfs() {
    let t = T::new();
    let fd = t.open("/tmp/f", O_CREAT | O_RDWR, 0o644).unwrap() as u64;
    assert_eq!(t.ok(SYS_posix_fallocate, &[fd, 0, 0, 0]), 45);
    assert_eq!(t.ok(SYS_posix_fallocate, &[fd, 0, u64::MAX, 1]), 22);
    assert_eq!(t.ok(SYS_posix_fallocate, &[99, 0, 0, 1]), 9);
    assert_eq!(t.err(SYS_fdiscard, &[fd, 0, 0, 10]), Errno::EOPNOTSUPP);
    let ro = t.open("/tmp/f", O_RDONLY, 0).unwrap() as u64;
    assert_eq!(t.ok(SYS_posix_fallocate, &[ro, 0, 0, 1]), 9);
    assert_eq!(t.err(SYS_fdiscard, &[ro, 0, 0, 1]), Errno::EBADF);
    let p = t.s("/tmp/f");
    assert_eq!(t.ok(SYS_pathconf, &[p, int(PC_FILESIZEBITS)]), 43);
    assert_eq!(t.ok(SYS_pathconf, &[p, int(PC_SYMLINK_MAX)]), 1024);
}

/// `__getcwd` as vfs_getcwd.c `sys___getcwd`/`getcwd_common` answer: the length is an
/// `int` (2^32 truncates to 0: `ERANGE`); the value counts the NUL; a current directory
/// outside the process root is `ENOENT`; ancestors below the root need read and search
/// permission (`GETCWD_CHECK_ACCESS`).
#[test]
fn getcwd_as_netbsd() {
    let t = T::new();
    let s = |p: &str| t.s(p);
    let b = t.buf(&[0; 64]);
    assert_eq!(t.err(SYS___getcwd, &[b, 1 << 32]), Errno::ERANGE);
    assert_eq!(t.ok(SYS___getcwd, &[b, (1 << 32) + 2]), 2);
    t.ok(SYS_mkdir, &[s("/tmp/p"), 0o711]);
    t.ok(SYS_mkdir, &[s("/tmp/p/q"), 0o755]);
    t.ok(SYS_mkdir, &[s("/tmp/r"), 0o755]);
    t.ok(SYS_chdir, &[s("/tmp/p/q")]);
    assert_eq!(t.ok(SYS___getcwd, &[b, 9]), 9);
    assert_eq!(t.err(SYS___getcwd, &[b, 8]), Errno::ERANGE);
    t.ok(SYS_chdir, &[s("/")]);
    t.ok(SYS_chroot, &[s("/tmp/r")]);
    // change_root moved the current directory (`/`, outside the new root) to the new root.
    assert_eq!(t.ok(SYS___getcwd, &[b, 64]), 2);
    assert_eq!(t.f.mem.read(b, 2), b"/\0");
    t.ok(SYS_chdir, &[s("/")]);
    assert_eq!(t.ok(SYS___getcwd, &[b, 64]), 2);
    assert_eq!(t.f.mem.read(b, 2), b"/\0");
    // `..` at the process root stays there.
    t.ok(SYS_chdir, &[s("/../..")]);
    assert_eq!(t.ok(SYS___getcwd, &[b, 64]), 2);
    let t = T::new();
    t.ok(SYS_mkdir, &[t.s("/tmp/p"), 0o711]);
    t.ok(SYS_mkdir, &[t.s("/tmp/p/q"), 0o755]);
    t.as_user(1000, 1000);
    t.ok(SYS_chdir, &[t.s("/tmp/p/q")]);
    let b = t.buf(&[0; 64]);
    assert_eq!(t.err(SYS___getcwd, &[b, 64]), Errno::EACCES);
}

/// utimensat by a non-owner with write permission: only "both now" is allowed
/// (vfs_syscalls.c `do_sys_utimensat` sets `VA_UTIMES_NULL` only then;
/// genfs `genfs_can_chtimes`), anything else `EPERM`.
#[test]
fn utimens_now_rules_as_netbsd() {
    let t = T::new();
    let fd = t.open("/tmp/f", O_CREAT | O_WRONLY, 0o666).unwrap();
    t.ok(SYS_close, &[fd as u64]);
    t.ok(SYS_chmod, &[t.s("/tmp/f"), 0o666]);
    t.as_user(1000, 1000);
    let ts = |a: i64, b: i64| {
        let mut v = Vec::new();
        for n in [a, b] {
            v.extend_from_slice(&0i64.to_le_bytes());
            v.extend_from_slice(&n.to_le_bytes());
        }
        t.buf(&v)
    };
    let at = int(AT_FDCWD);
    let p = t.s("/tmp/f");
    t.ok(SYS_utimensat, &[at, p, ts(UTIME_NOW, UTIME_NOW), 0]);
    t.ok(SYS_utimensat, &[at, p, 0, 0]);
    let e = t.err(SYS_utimensat, &[at, p, ts(UTIME_NOW, UTIME_OMIT), 0]);
    assert_eq!(e, Errno::EPERM);
}

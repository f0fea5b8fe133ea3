//! tmpfs and mount(2)/unmount(2) through the syscall layer: arguments and their errors, the
//! unloaded component, tmpfs's visible traits, limits, busy and forced unmounts, remounts.

use std::cell::Cell;
use std::sync::Arc;

use super::*;
use crate::abi::sysnum::*;
use crate::abi::*;
use crate::testutil::{Fixture, TestHost};

struct T {
    f: Fixture,
    next: Cell<u64>,
}

#[derive(Debug, Default)]
struct St {
    dev: u64,
    mode: u32,
    ino: u64,
    nlink: u32,
    uid: u32,
    gid: u32,
    size: u64,
    blocks: u64,
    blksize: u32,
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

fn args(size_max: i64, nodes_max: u64) -> TmpfsArgs {
    TmpfsArgs {
        version: TMPFS_ARGS_VERSION,
        nodes_max,
        size_max,
        root_uid: 7,
        root_gid: 8,
        root_mode: 0o40750,
    }
}

const O_RDONLY_: u64 = O_RDONLY as u64;
const O_RDWR_CREAT: u64 = (O_RDWR | O_CREAT) as u64;

impl T {
    fn new() -> T {
        T::with(Fixture::new())
    }

    fn with(f: Fixture) -> T {
        let t = T {
            f,
            next: Cell::new(0x10_0000),
        };
        t.f.ok(SYS_mkdir, &[t.s("/mnt"), 0o755]);
        t
    }

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

    fn mount(&self, ty: &str, path: &str, flags: u64, a: Option<TmpfsArgs>) -> Result<i64> {
        let data = a.map_or(0, |a| self.buf(&a.encode()));
        let len = if a.is_some() {
            TMPFS_ARGS_SIZE as u64
        } else {
            0
        };
        let args = [self.s(ty), self.s(path), flags, data, len];
        self.f.call(SYS___mount50, &args).map(|r| r[0])
    }

    fn tmpfs(&self, path: &str, flags: u64, a: TmpfsArgs) -> Result<i64> {
        self.mount("tmpfs", path, flags, Some(a))
    }

    fn unmount(&self, path: &str, flags: u64) -> Result<i64> {
        self.f
            .call(SYS_unmount, &[self.s(path), flags])
            .map(|r| r[0])
    }

    fn stat(&self, path: &str) -> Result<St> {
        let b = self.buf(&[0; STAT_SIZE]);
        self.f.call(SYS___stat50, &[self.s(path), b])?;
        let v = self.f.mem.read(b, STAT_SIZE);
        Ok(St {
            dev: u64_at(&v, 0),
            mode: u32_at(&v, 8),
            ino: u64_at(&v, 16),
            nlink: u32_at(&v, 24),
            uid: u32_at(&v, 28),
            gid: u32_at(&v, 32),
            size: u64_at(&v, 112),
            blocks: u64_at(&v, 120),
            blksize: u32_at(&v, 128),
        })
    }

    fn open(&self, path: &str, flags: u64) -> Result<i64> {
        let p = self.s(path);
        self.f.call(SYS_open, &[p, flags, 0o644]).map(|r| r[0])
    }

    fn write(&self, fd: i64, data: &[u8]) -> Result<i64> {
        let b = self.buf(data);
        self.f
            .call(SYS_write, &[fd as u64, b, data.len() as u64])
            .map(|r| r[0])
    }

    fn create(&self, path: &str) -> Result<()> {
        let fd = self.open(path, O_RDWR_CREAT)?;
        self.f.ok(SYS_close, &[fd as u64]);
        Ok(())
    }

    fn statvfs(&self, path: &str) -> Vec<u8> {
        let b = self.buf(&[0; STATVFS_SIZE]);
        self.f.ok(SYS___statvfs190, &[self.s(path), b, 1]);
        self.f.mem.read(b, STATVFS_SIZE)
    }

    fn names(&self, path: &str) -> Vec<(u64, String)> {
        let fd = self.open(path, O_RDONLY_).unwrap();
        let b = self.buf(&[0; 4096]);
        let n = self.f.ok(SYS___getdents30, &[fd as u64, b, 4096]) as usize;
        self.f.ok(SYS_close, &[fd as u64]);
        let v = self.f.mem.read(b, n);
        let mut out = vec![];
        let mut i = 0;
        while i < v.len() {
            let reclen = u16::from_le_bytes([v[i + 8], v[i + 9]]) as usize;
            let namlen = u16::from_le_bytes([v[i + 10], v[i + 11]]) as usize;
            let name = String::from_utf8_lossy(&v[i + 13..i + 13 + namlen]).into_owned();
            out.push((u64_at(&v, i), name));
            i += reclen;
        }
        out
    }
}

fn cstr(b: &[u8]) -> &[u8] {
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
}

#[test]
fn arguments_are_checked_in_netbsds_order() {
    let t = T::new();
    let good = args(0, 0);
    assert_eq!(t.tmpfs("/nowhere", 0, good), Err(Errno::ENOENT));
    // Unknown types, ffs (another component, not loaded here) and its alias ufs: ENODEV.
    t.f.k.modules().unload(&t.f.k, "ffs").unwrap();
    for ty in ["nosuchfs", "ffs", "ufs", "tmpfsx"] {
        assert_eq!(
            t.mount(ty, "/mnt", 0, Some(good)),
            Err(Errno::ENODEV),
            "{ty}"
        );
    }
    // A type that cannot be fetched is a historic number: 1 is ffs (ENODEV), others ENODEV.
    for ty in [0u64, 1, 8, 10, 0xdead_0000] {
        let a = [ty, t.s("/mnt"), 0, t.buf(&good.encode()), 40];
        assert_eq!(t.f.call(SYS___mount50, &a), Err(Errno::ENODEV), "{ty}");
    }
    let long = "t".repeat(40);
    assert_eq!(t.mount(&long, "/mnt", 0, Some(good)), Err(Errno::ENODEV));
    t.create("/mnt/../file").unwrap();
    assert_eq!(t.tmpfs("/file", 0, good), Err(Errno::ENOTDIR));
    // tmpfs's own checks: no data, a short structure, a wrong version, VNOVAL ids.
    assert_eq!(t.mount("tmpfs", "/mnt", 0, None), Err(Errno::EINVAL));
    let a = [t.s("tmpfs"), t.s("/mnt"), 0, t.buf(&good.encode()), 10];
    assert_eq!(t.f.call(SYS___mount50, &a), Err(Errno::EINVAL));
    let a = [t.s("tmpfs"), t.s("/mnt"), 0, t.buf(&[0; 9000]), 9000];
    assert_eq!(
        t.f.call(SYS___mount50, &a),
        Err(Errno::EINVAL),
        "above 8192"
    );
    let bad = TmpfsArgs { version: 2, ..good };
    assert_eq!(t.tmpfs("/mnt", 0, bad), Err(Errno::EINVAL));
    let bad = TmpfsArgs {
        root_uid: u32::MAX,
        ..good
    };
    assert_eq!(t.tmpfs("/mnt", 0, bad), Err(Errno::EINVAL));
    assert_eq!(t.tmpfs("/mnt", MNT_EXPORTED, good), Err(Errno::EINVAL));
    assert_eq!(t.tmpfs("/mnt", MNT_UNION, good), Err(Errno::EOPNOTSUPP));
    // data_len 0 with data: the file system's own size (40 bytes).
    let a = [t.s("tmpfs"), t.s("/mnt"), 0, t.buf(&good.encode()), 0];
    assert_eq!(t.f.call(SYS___mount50, &a), Ok([0, 0]));
    assert_eq!(t.stat("/mnt").unwrap().ino, ROOT_INO);
}

#[test]
fn an_unloaded_file_system_is_enodev() {
    let host = Arc::new(TestHost::default());
    let cfg = crate::BootConfig {
        ncpu: 1,
        verbose: false,
        hostname: String::new(),
        vfs: true,
        mem_limit_bytes: None,
        filesystems: Vec::new(),
        dev: false,
    };
    let k = crate::Kernel::boot(cfg, host.clone()).unwrap();
    let p = k.spawn_guest(b"t").unwrap();
    let t = T::with(Fixture {
        k,
        host,
        p,
        mem: crate::testutil::TestMem::new(),
    });
    // NetBSD: vfs_getopsbyname fails, module_autoload finds no tmpfs module, ENODEV.
    assert_eq!(t.tmpfs("/mnt", 0, args(0, 0)), Err(Errno::ENODEV));
    assert_eq!(t.stat("/mnt").unwrap().dev, t.stat("/mnt").unwrap().ino);
}

#[test]
fn tmpfs_shows_its_own_traits() {
    let t = T::new();
    let covered = t.stat("/mnt").unwrap();
    t.tmpfs("/mnt", MNT_NOSUID | MNT_NOATIME, args(1 << 20, 0))
        .unwrap();
    let root = t.stat("/mnt").unwrap();
    assert_eq!(
        (root.mode, root.uid, root.gid, root.ino, root.nlink),
        (0o40750, 7, 8, ROOT_INO, 2)
    );
    assert_eq!(root.dev, makedev(0xab, 1), "f_fsidx[0] of the first tmpfs");
    assert_eq!(root.blksize, 4096);
    t.create("/mnt/f").unwrap();
    let f = t.stat("/mnt/f").unwrap();
    assert_eq!((f.ino, f.dev, f.blocks, f.size), (3, root.dev, 0, 0));
    t.f.ok(SYS_mkdir, &[t.s("/mnt/d"), 0o755]);
    let d = t.stat("/mnt/d").unwrap();
    assert_eq!(t.stat("/mnt").unwrap().nlink, 3);
    // . and .. lead the listing; .. of the root is the root itself.
    assert_eq!(
        t.names("/mnt"),
        [
            (2, ".".to_string()),
            (2, "..".into()),
            (3, "f".into()),
            (d.ino, "d".into())
        ]
    );
    assert_eq!(
        t.names("/mnt/d"),
        [(d.ino, ".".to_string()), (2, "..".into())]
    );
    // Lookup crosses the mount both ways.
    assert_eq!(t.stat("/mnt/d/..").unwrap().ino, ROOT_INO);
    assert_eq!(t.stat("/mnt/..").unwrap().ino, t.stat("/").unwrap().ino);
    assert_eq!(t.stat("/mnt/d/../../tmp").unwrap().mode, 0o41777);
    // A second tmpfs gets the next fsid; rename and link across file systems: EXDEV.
    t.f.ok(SYS_mkdir, &[t.s("/mnt2"), 0o755]);
    t.tmpfs("/mnt2", 0, args(0, 0)).unwrap();
    assert_eq!(t.stat("/mnt2").unwrap().dev, makedev(0xab, 2));
    let r = [t.s("/mnt/f"), t.s("/mnt2/f")];
    assert_eq!(t.f.call(SYS_rename, &r), Err(Errno::EXDEV));
    assert_eq!(t.f.call(SYS_link, &r), Err(Errno::EXDEV));
    assert_ne!(covered.ino, ROOT_INO);
}

#[test]
fn statvfs_and_getvfsstat_report_every_mount() {
    let t = T::new();
    t.tmpfs("/mnt", MNT_NOSUID | MNT_NODEV, args(1 << 20, 100))
        .unwrap();
    let v = t.statvfs("/mnt");
    let w = |o| u64_at(&v, o);
    assert_eq!(w(0), MNT_NOSUID | MNT_NODEV | MNT_LOCAL, "f_flag");
    assert_eq!((w(8), w(16), w(24)), (4096, 4096, 4096), "sizes");
    assert_eq!(w(32), 256, "f_blocks: 1 MiB of pages");
    assert!(w(40) <= 256 && w(40) > 200, "f_bfree {}", w(40));
    assert_eq!(w(40), w(48), "f_bavail");
    assert_eq!(w(64), 100, "f_files: the node limit");
    assert_eq!(w(72), 99, "f_ffree: the root is in use");
    assert_eq!(w(144), 255, "f_namemax");
    assert_eq!(u32_at(&v, 128), makedev(0xab, 1) as u32);
    assert_eq!(cstr(&v[192..224]), b"tmpfs");
    assert_eq!(cstr(&v[224..1248]), b"/mnt");
    assert_eq!(cstr(&v[1248..2272]), b"tmpfs");
    // Writing a page uses a block.
    let fd = t.open("/mnt/f", O_RDWR_CREAT).unwrap();
    t.write(fd, &[1; 4096]).unwrap();
    let after = u64_at(&t.statvfs("/mnt"), 40);
    assert_eq!(after, w(40) - 1, "a page less free");
    // getvfsstat: the count, then both in mount order.
    assert_eq!(t.f.ok(SYS___getvfsstat90, &[0, 0, 1]), 2);
    let b = t.buf(&[0; 2 * STATVFS_SIZE]);
    assert_eq!(
        t.f.ok(SYS___getvfsstat90, &[b, 2 * STATVFS_SIZE as u64, 1]),
        2
    );
    let all = t.f.mem.read(b, 2 * STATVFS_SIZE);
    assert_eq!(cstr(&all[192..224]), b"rumpfs");
    assert_eq!(cstr(&all[STATVFS_SIZE + 224..STATVFS_SIZE + 1248]), b"/mnt");
    // A relative path and one through `..` are recorded as the covered directory's path.
    t.f.ok(SYS_mkdir, &[t.s("/tmp/sub"), 0o755]);
    t.f.ok(SYS_chdir, &[t.s("/tmp")]);
    t.tmpfs("./sub/../sub", 0, args(0, 0)).unwrap();
    assert_eq!(cstr(&t.statvfs("/tmp/sub")[224..1248]), b"/tmp/sub");
    // Unlimited, in a kernel without `-r`: rump's 512 MiB `physmem` (never the host's
    // memory) plus the page the root holds; the nodes that fit in the free pages.
    let v = t.statvfs("/tmp/sub");
    assert_eq!(u64_at(&v, 32), (512 << 20) / 4096 + 1);
    assert_eq!(u64_at(&v, 40), (512 << 20) / 4096);
    assert_eq!(u64_at(&v, 64), 1 + (512 << 20) / 216);
}

#[test]
fn size_and_node_limits_give_enospc() {
    let t = T::new();
    t.tmpfs("/mnt", 0, args(64 << 10, 5)).unwrap();
    let fd = t.open("/mnt/big", O_RDWR_CREAT).unwrap();
    let mut wrote = 0;
    let err = loop {
        match t.write(fd, &[7; 8192]) {
            Ok(n) => wrote += n,
            Err(e) => break e,
        }
    };
    assert_eq!(err, Errno::ENOSPC);
    assert!((32 << 10..=64 << 10).contains(&wrote), "{wrote}");
    assert!(
        u64_at(&t.statvfs("/mnt"), 40) <= 1,
        "less than two pages free"
    );
    // Freeing data makes room again.
    t.f.ok(SYS_ftruncate, &[fd as u64, 0, 0]);
    t.write(fd, &[7; 8192]).unwrap();
    // Nodes: the root, big, and three more reach the limit of 5.
    for n in ["a", "b", "c"] {
        t.create(&format!("/mnt/{n}")).unwrap();
    }
    assert_eq!(t.create("/mnt/d"), Err(Errno::ENOSPC));
    let mk = [t.s("/mnt/dir"), 0o755];
    assert_eq!(t.f.call(SYS_mkdir, &mk), Err(Errno::ENOSPC));
    t.f.ok(SYS_unlink, &[t.s("/mnt/a")]);
    t.create("/mnt/d").unwrap();
    // The rumpfs root has no such limits.
    t.create("/tmp/x").unwrap();
}

#[test]
fn unmount_busy_forced_and_nested() {
    let t = T::new();
    assert_eq!(
        t.unmount("/", 0),
        Err(Errno::EINVAL),
        "the root file system"
    );
    assert_eq!(t.unmount("/tmp", 0), Err(Errno::EINVAL), "not a mount");
    t.tmpfs("/mnt", 0, args(0, 0)).unwrap();
    t.f.ok(SYS_mkdir, &[t.s("/mnt/d"), 0o755]);
    assert_eq!(t.unmount("/mnt/d", 0), Err(Errno::EINVAL), "not its root");
    // An open file keeps it busy; closing frees it.
    let fd = t.open("/mnt/f", O_RDWR_CREAT).unwrap();
    assert_eq!(t.unmount("/mnt", 0), Err(Errno::EBUSY));
    t.f.ok(SYS_close, &[fd as u64]);
    // So does a current directory inside (the root of it too).
    t.f.ok(SYS_chdir, &[t.s("/mnt/d")]);
    assert_eq!(t.unmount("/mnt", 0), Err(Errno::EBUSY));
    t.f.ok(SYS_chdir, &[t.s("/mnt")]);
    assert_eq!(t.unmount("/mnt", 0), Err(Errno::EBUSY));
    t.f.ok(SYS_chdir, &[t.s("/")]);
    // A file system mounted on a directory inside: EBUSY even forced.
    t.tmpfs("/mnt/d", 0, args(0, 0)).unwrap();
    assert_eq!(t.unmount("/mnt", MNT_FORCE), Err(Errno::EBUSY));
    assert_eq!(t.f.call(SYS_rmdir, &[t.s("/mnt/d")]), Err(Errno::EBUSY));
    t.unmount("/mnt/d", 0).unwrap();
    // Forced with an open file: the file is dead afterwards.
    let fd = t.open("/mnt/f", O_RDWR_CREAT).unwrap();
    t.unmount("/mnt", MNT_FORCE).unwrap();
    assert_eq!(t.write(fd, b"x"), Err(Errno::EIO));
    let b = t.buf(&[0; 8]);
    assert_eq!(t.f.call(SYS_read, &[fd as u64, b, 8]), Err(Errno::EIO));
    t.f.ok(SYS_close, &[fd as u64]);
    // The covered directory is back, empty; its statvfs is rumpfs's again.
    assert_ne!(t.stat("/mnt").unwrap().ino, ROOT_INO);
    assert_eq!(t.stat("/mnt/f").unwrap_err(), Errno::ENOENT);
    assert_eq!(cstr(&t.statvfs("/mnt")[192..224]), b"rumpfs");
    assert_eq!(t.f.ok(SYS___getvfsstat90, &[0, 0, 1]), 1);
}

#[test]
fn stacked_mounts_and_moved_current_directories() {
    let t = T::new();
    t.f.ok(SYS_chdir, &[t.s("/mnt")]);
    t.tmpfs("/mnt", 0, args(0, 0)).unwrap();
    // mount_checkdirs: the process now stands in the new root.
    t.create("here").unwrap();
    assert!(t.stat("/mnt/here").is_ok());
    // A second mount on the same path covers the first one's root (NetBSD stacks them).
    t.tmpfs("/mnt", 0, args(0, 0)).unwrap();
    assert_eq!(t.stat("/mnt/here").unwrap_err(), Errno::ENOENT);
    assert_eq!(t.stat("/mnt/..").unwrap().ino, t.stat("/").unwrap().ino);
    assert_eq!(
        t.unmount("/mnt", 0),
        Err(Errno::EBUSY),
        "cwd moved to the top"
    );
    t.f.ok(SYS_chdir, &[t.s("/")]);
    t.unmount("/mnt", 0).unwrap();
    assert!(t.stat("/mnt/here").is_ok(), "the lower tmpfs again");
    t.unmount("/mnt", 0).unwrap();
    assert_eq!(t.f.ok(SYS___getvfsstat90, &[0, 0, 1]), 1);
}

#[test]
fn a_vnode_already_covered_is_ebusy() {
    // Lookup crosses mounts, so mount(2) on a busy path stacks; a mount that raced another
    // for the same vnode finds it covered under the table lock (mount_domount's EBUSY).
    let t = T::new();
    t.tmpfs("/mnt", 0, args(0, 0)).unwrap();
    let v = t.f.k.vfs().unwrap();
    let covered = v.root().dir().unwrap().get(b"mnt").unwrap().clone();
    assert!(covered.mounted_here().is_some());
    let a = args(0, 0).encode();
    let req = crate::vfs::MountReq {
        typ: crate::fs::FsKind::Tmpfs.fs_type(),
        flags: 0,
        data: Some(&a),
        owner: 0,
        device: None,
    };
    let procs = t.f.k.all_procs();
    let r = crate::testutil::block_on(v.mount_new(&covered, &req, t.f.k.budget(), &procs));
    assert_eq!(r.err(), Some(Errno::EBUSY));
    assert_eq!(
        t.f.ok(SYS___getvfsstat90, &[0, 0, 1]),
        2,
        "nothing was added"
    );
    assert_eq!(v.mounts().len(), 2);
}

#[test]
fn remount_read_only_and_back() {
    let t = T::new();
    let a = args(0, 0);
    t.tmpfs("/mnt", 0, a).unwrap();
    t.create("/mnt/f").unwrap();
    t.f.ok(SYS_mkdir, &[t.s("/mnt/d"), 0o755]);
    // rw -> ro needs no writer, unless forced.
    let w = t.open("/mnt/f", O_RDWR as u64).unwrap();
    assert_eq!(
        t.tmpfs("/mnt", MNT_UPDATE | MNT_RDONLY, a),
        Err(Errno::EBUSY)
    );
    t.tmpfs("/mnt", MNT_UPDATE | MNT_RDONLY | MNT_FORCE, a)
        .unwrap();
    assert_eq!(t.write(w, b"x"), Err(Errno::EROFS), "the forced writer");
    assert_eq!(u64_at(&t.statvfs("/mnt"), 0), MNT_RDONLY | MNT_LOCAL);
    assert_eq!(t.create("/mnt/g"), Err(Errno::EROFS));
    assert_eq!(t.open("/mnt/f", O_RDWR as u64), Err(Errno::EROFS));
    assert_eq!(
        t.open("/mnt/f", (O_RDONLY | O_TRUNC) as u64),
        Err(Errno::EROFS)
    );
    let r = t.open("/mnt/f", O_RDONLY_).unwrap();
    t.f.ok(SYS_close, &[r as u64]);
    let e = |nr, a: &[u64]| t.f.call(nr, a).unwrap_err();
    assert_eq!(e(SYS_unlink, &[t.s("/mnt/f")]), Errno::EROFS);
    assert_eq!(e(SYS_rmdir, &[t.s("/mnt/d")]), Errno::EROFS);
    assert_eq!(e(SYS_mkdir, &[t.s("/mnt/d"), 0o755]), Errno::EEXIST);
    assert_eq!(e(SYS_mkdir, &[t.s("/mnt/e"), 0o755]), Errno::EROFS);
    assert_eq!(e(SYS_chmod, &[t.s("/mnt/f"), 0o600]), Errno::EROFS);
    assert_eq!(e(SYS_chown, &[t.s("/mnt/f"), 1, 1]), Errno::EROFS);
    assert_eq!(e(SYS_truncate, &[t.s("/mnt/f"), 0, 0]), Errno::EROFS);
    assert_eq!(e(SYS___utimes50, &[t.s("/mnt/f"), 0]), Errno::EROFS);
    assert_eq!(e(SYS_rename, &[t.s("/mnt/f"), t.s("/mnt/g")]), Errno::EROFS);
    assert_eq!(e(SYS_symlink, &[t.s("f"), t.s("/mnt/l")]), Errno::EROFS);
    assert_eq!(e(SYS_link, &[t.s("/mnt/f"), t.s("/mnt/h")]), Errno::EROFS);
    assert_eq!(e(SYS_mkfifo, &[t.s("/mnt/p"), 0o644]), Errno::EROFS);
    t.f.ok(SYS_close, &[w as u64]);
    // Back to read-write: MNT_UPDATE without MNT_RDONLY.
    t.tmpfs("/mnt", MNT_UPDATE, a).unwrap();
    t.create("/mnt/g").unwrap();
    assert_eq!(u64_at(&t.statvfs("/mnt"), 0), MNT_LOCAL);
    // An update needs the root of a file system, and tmpfs needs its arguments.
    assert_eq!(t.tmpfs("/mnt/d", MNT_UPDATE, a), Err(Errno::EINVAL));
    assert_eq!(
        t.mount("tmpfs", "/mnt", MNT_UPDATE, None),
        Err(Errno::EINVAL)
    );
    // The node limit cannot go below the nodes in use.
    for n in ["h", "i"] {
        t.create(&format!("/mnt/{n}")).unwrap();
    }
    assert_eq!(t.tmpfs("/mnt", MNT_UPDATE, args(0, 5)), Err(Errno::EBUSY));
    t.tmpfs("/mnt", MNT_UPDATE, args(0, 6)).unwrap();
    assert_eq!(t.create("/mnt/j"), Err(Errno::ENOSPC));
    // The size can change, but not below what is in use (tmpfs_mntmem_set: EBUSY).
    t.tmpfs("/mnt", MNT_UPDATE, args(1 << 20, 100)).unwrap();
    assert_eq!(
        u64_at(&t.statvfs("/mnt"), 8 * 4),
        256,
        "f_blocks: 1 MiB in pages"
    );
    let fd = t.open("/mnt/h", 2).unwrap();
    t.write(fd, &[7u8; 3 * 4096]).unwrap();
    t.f.ok(SYS_close, &[fd as u64]);
    assert_eq!(
        t.tmpfs("/mnt", MNT_UPDATE, args(2 * 4096, 100)),
        Err(Errno::EBUSY)
    );
    t.tmpfs("/mnt", MNT_UPDATE, args(64 << 10, 100)).unwrap();
    let fd = t.open("/mnt/i", 2).unwrap();
    assert_eq!(t.write(fd, &[7u8; 64 << 10]), Err(Errno::ENOSPC));
    t.f.ok(SYS_close, &[fd as u64]);
    // rumpfs cannot go read-only (no IMNT_CAN_RWTORO); other flags are recorded.
    assert_eq!(
        t.mount("", "/", MNT_UPDATE | MNT_RDONLY, None),
        Err(Errno::EOPNOTSUPP)
    );
    t.mount("", "/", MNT_UPDATE | MNT_NOEXEC, None).unwrap();
    assert_eq!(
        u64_at(&t.statvfs("/"), 0),
        MNT_NOEXEC | MNT_LOCAL | MNT_ROOTFS
    );
}

#[test]
fn getargs_reads_the_arguments_back() {
    let t = T::new();
    t.tmpfs("/mnt", 0, args(1 << 20, 50)).unwrap();
    let ask = |a: TmpfsArgs| {
        let b = t.buf(&a.encode());
        let call = [t.s("tmpfs"), t.s("/mnt"), MNT_GETARGS, b, 40];
        t.f.call(SYS___mount50, &call)
            .map(|r| (r[0], t.f.mem.read(b, 40)))
    };
    // The caller's buffer must carry the version (observed on NetBSD).
    assert_eq!(ask(TmpfsArgs::default()).unwrap_err(), Errno::EINVAL);
    let (n, got) = ask(args(0, 0)).unwrap();
    assert_eq!(n, 40);
    let want = TmpfsArgs {
        root_mode: 0o750,
        ..args(1 << 20, 50)
    };
    assert_eq!(
        TmpfsArgs::parse(&got).unwrap(),
        want,
        "the mode's permission bits"
    );
    // Only MNT_GETARGS, only at a root.
    let b = t.buf(&args(0, 0).encode());
    let bad = [t.s("tmpfs"), t.s("/mnt"), MNT_GETARGS | MNT_RDONLY, b, 40];
    assert_eq!(t.f.call(SYS___mount50, &bad), Err(Errno::EINVAL));
    t.f.ok(SYS_mkdir, &[t.s("/mnt/d"), 0o755]);
    let bad = [t.s("tmpfs"), t.s("/mnt/d"), MNT_GETARGS, b, 40];
    assert_eq!(t.f.call(SYS___mount50, &bad), Err(Errno::EINVAL));
    // Unlimited reads back as UINT64_MAX (-1 as off_t), the node limit INT_MAX.
    t.f.ok(SYS_mkdir, &[t.s("/mnt2"), 0o755]);
    t.tmpfs("/mnt2", 0, args(0, 0)).unwrap();
    let b = t.buf(&args(0, 0).encode());
    let call = [t.s("tmpfs"), t.s("/mnt2"), MNT_GETARGS, b, 40];
    t.f.ok(SYS___mount50, &call);
    let got = TmpfsArgs::parse(&t.f.mem.read(b, 40)).unwrap();
    assert_eq!((got.size_max, got.nodes_max), (-1, i32::MAX as u64));
}

#[test]
fn nodev_refuses_device_nodes_and_only_root_mounts() {
    let t = T::new();
    t.tmpfs("/mnt", MNT_NODEV, args(0, 0)).unwrap();
    let null = makedev(2, 2);
    t.f.ok(
        SYS___mknod50,
        &[t.s("/mnt/null"), u64::from(S_IFCHR | 0o666), null],
    );
    assert_eq!(t.open("/mnt/null", O_RDWR as u64), Err(Errno::ENXIO));
    t.f.ok(SYS_mkdir, &[t.s("/mnt2"), 0o755]);
    t.tmpfs("/mnt2", 0, args(0, 0)).unwrap();
    t.f.ok(
        SYS___mknod50,
        &[t.s("/mnt2/null"), u64::from(S_IFCHR | 0o666), null],
    );
    let fd = t.open("/mnt2/null", O_RDWR as u64).unwrap();
    assert_eq!(t.write(fd, b"gone"), Ok(4));
    // A FIFO on tmpfs works (NetBSD's tmpfs of the 2016 tree refuses to open one).
    t.f.ok(SYS_mkfifo, &[t.s("/mnt2/p"), 0o644]);
    let p = t.open("/mnt2/p", (O_RDWR | O_NONBLOCK) as u64).unwrap();
    assert_eq!(t.write(p, b"pipe"), Ok(4));
    // Only the superuser mounts and unmounts.
    t.f.p
        .modify_cred(|c| {
            let mut c = *c;
            (c.uid, c.euid) = (5, 5);
            Ok(c)
        })
        .unwrap();
    t.f.ok(SYS_mkdir, &[t.s("/tmp/u"), 0o755]);
    assert_eq!(t.tmpfs("/tmp/u", 0, args(0, 0)), Err(Errno::EPERM));
    assert_eq!(t.unmount("/mnt2", 0), Err(Errno::EPERM));
}

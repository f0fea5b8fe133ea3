//! tmpfs, mount(2) and unmount(2) over the wire: the `rumpfs_tmpfs` component and its
//! spellings, `ENOSPC` at the size limit, the node limit and the `-r` budget (the server
//! keeps serving), busy and forced unmounts, statvfs/getvfsstat, remounting read-only.
//! The general file-system suite runs inside tmpfs from tests/vfs.rs and tests/vfs_diff.rs.

mod common;

use std::process::{Command, Stdio};

use client::fs::{mnt, tmpfs_args, O_CREAT, O_RDONLY, O_RDWR, O_WRONLY};
use client::Client;
use common::{Server, TempDir};

const EPERM: i32 = 1;
const ENOENT: i32 = 2;
const EIO: i32 = 5;
const ENXIO: i32 = 6;
const EBUSY: i32 = 16;
const ENODEV: i32 = 19;
const ENOTDIR: i32 = 20;
const EINVAL: i32 = 22;
const ENOSPC: i32 = 28;
const EROFS: i32 = 30;

fn errno<T: std::fmt::Debug>(r: client::Result<T>) -> i32 {
    r.unwrap_err().errno().expect("an errno")
}

/// A tmpfs of `size` bytes (0: no limit) and `nodes` nodes (0: derived) on `path`.
fn mount_tmpfs(c: &mut Client, path: &str, flags: i32, size: i64, nodes: u64) {
    c.mkdir(path, 0o755).unwrap();
    c.mount_tmpfs(path, flags, &tmpfs_args(size, nodes, 0, 0, 0o1777))
        .unwrap();
}

/// Writes `chunk`-byte blocks to `path` until the first error; the bytes written and it.
fn fill(c: &mut Client, path: &str, chunk: usize) -> (usize, i32) {
    let fd = c.open(path, O_CREAT | O_WRONLY, 0o644).unwrap();
    let data = vec![0x5a; chunk];
    let mut total = 0;
    let err = loop {
        match c.write(fd, &data) {
            Ok(n) => total += n,
            Err(e) => break e.errno().expect("an errno"),
        }
        assert!(total < 1 << 30, "no limit reached");
    };
    c.close(fd).unwrap();
    (total, err)
}

#[test]
fn without_the_component_mounting_tmpfs_is_enodev() {
    // NetBSD: mount_get_vfsops finds no "tmpfs" with vfs_getopsbyname, module_autoload
    // finds no tmpfs module to load in a rump kernel, so __mount50 returns ENODEV (19).
    let srv = Server::unix(&["-lrumpvfs"]);
    let mut c = srv.client();
    c.mkdir("/mnt", 0o755).unwrap();
    let a = tmpfs_args(0, 0, 0, 0, 0o755);
    assert_eq!(errno(c.mount_tmpfs("/mnt", 0, &a)), ENODEV);
    // Types no component provides: ENODEV as well (ufs is ffs's old name).
    for ty in ["ffs", "ufs", "nfs", "nosuchfs"] {
        let mut d = a;
        assert_eq!(errno(c.mount(ty, "/mnt", 0, Some(&mut d))), ENODEV, "{ty}");
    }
    // Without rumpvfs at all, mount is a file-system call like any other: ENOSYS.
    let bare = Server::unix(&[]);
    let mut d = a;
    let r = bare.client().mount("tmpfs", "/mnt", 0, Some(&mut d));
    assert_eq!(errno(r), 78);
}

#[test]
fn every_spelling_of_the_component_is_the_built_in() {
    let dir = TempDir::new("libs");
    let full = dir.path().join("librumpfs_tmpfs.so");
    for lib in [
        "-lrumpfs_tmpfs".to_string(),
        "-llibrumpfs_tmpfs.so".to_string(),
        format!("-l{}", full.display()),
        "-l/usr/lib/librumpfs_tmpfs.so.0".to_string(),
    ] {
        // rumpvfs comes with it, as the NetBSD library's dependency brings librumpvfs.
        let srv = Server::unix(&[lib.as_str()]);
        let mut c = srv.client();
        mount_tmpfs(&mut c, "/mnt", 0, 0, 0);
        assert_eq!(c.statvfs("/mnt").unwrap().fstypename, "tmpfs", "{lib}");
    }
}

#[test]
fn rump_allserver_has_tmpfs() {
    let dir = TempDir::new("all");
    let url = format!("unix://{}", dir.path().join("sock").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_rump_allserver"))
        .args(["-s", &url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut c = common::connect_retry(&url, "all");
    mount_tmpfs(&mut c, "/mnt", 0, 0, 0);
    let fd = c.open("/mnt/f", O_CREAT | O_RDWR, 0o644).unwrap();
    assert_eq!(c.write(fd, b"all").unwrap(), 3);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_boot_summary_names_components_and_file_systems() {
    let srv = Server::unix(&["-v", "-lrumpvfs", "-lrumpfs_tmpfs"]);
    srv.wait_stdout("file systems: rumpfs tmpfs");
    let out = srv.stdout_text();
    assert!(out.contains("components: rump rumpuser rumpkern_sysproxy rumpvfs rumpfs_tmpfs"));
    let plain = Server::unix(&["-v", "-lrumpvfs"]);
    plain.wait_stdout("file systems: rumpfs\n");
}

#[test]
fn enospc_at_the_size_limit_and_the_server_keeps_serving() {
    let srv = Server::unix(&["-lrumpvfs", "-lrumpfs_tmpfs"]);
    let mut c = srv.client();
    mount_tmpfs(&mut c, "/mnt", 0, 1 << 20, 0);
    let (wrote, err) = fill(&mut c, "/mnt/big", 16 << 10);
    assert_eq!(err, ENOSPC);
    assert!((900 << 10..=1 << 20).contains(&wrote), "{wrote} bytes");
    let st = c.statvfs("/mnt").unwrap();
    assert_eq!((st.bsize, st.blocks), (4096, 256));
    assert!(st.bfree <= 4, "{} pages free", st.bfree);
    // Others are served meanwhile; rumpfs is not limited by the tmpfs.
    assert_eq!(srv.client().getpid().unwrap().1, 1);
    let fd = c.open("/tmp/outside", O_CREAT | O_WRONLY, 0o644).unwrap();
    assert_eq!(c.write(fd, &[1; 64 << 10]).unwrap(), 64 << 10);
    // Removing the file gives the room back.
    c.unlink("/mnt/big").unwrap();
    let (again, err) = fill(&mut c, "/mnt/big2", 16 << 10);
    assert_eq!((err, again), (ENOSPC, wrote));
}

#[test]
fn the_node_limit_is_enospc() {
    let srv = Server::unix(&["-lrumpvfs", "-lrumpfs_tmpfs"]);
    let mut c = srv.client();
    mount_tmpfs(&mut c, "/mnt", 0, 0, 10);
    // The root is one node; nine more fit.
    for i in 0..9 {
        let fd = c
            .open(&format!("/mnt/f{i}"), O_CREAT | O_RDWR, 0o644)
            .unwrap();
        c.close(fd).unwrap();
    }
    assert_eq!(errno(c.open("/mnt/f9", O_CREAT | O_RDWR, 0o644)), ENOSPC);
    assert_eq!(errno(c.mkdir("/mnt/d", 0o755)), ENOSPC);
    assert_eq!(errno(c.symlink("f0", "/mnt/l")), ENOSPC);
    let st = c.statvfs("/mnt").unwrap();
    assert_eq!((st.files, st.ffree), (10, 0));
    c.unlink("/mnt/f0").unwrap();
    c.mkdir("/mnt/d", 0o755).unwrap();
}

#[test]
fn the_memory_budget_bounds_an_unlimited_tmpfs() {
    let srv = Server::unix(&["-r", "8m", "-lrumpvfs", "-lrumpfs_tmpfs"]);
    let mut c = srv.client();
    mount_tmpfs(&mut c, "/mnt", 0, 0, 0);
    let st = c.statvfs("/mnt").unwrap();
    assert!(st.blocks * 4096 <= 8 << 20, "{} blocks", st.blocks);
    let (wrote, err) = fill(&mut c, "/mnt/big", 64 << 10);
    assert_eq!(err, ENOSPC);
    assert!(
        (4 << 20..8 << 20).contains(&wrote),
        "{wrote} bytes under -r 8m"
    );
    // The server keeps serving: new connections, lookups, small metadata.
    let mut other = srv.client();
    assert_eq!(other.getpid().unwrap().1, 1);
    assert_eq!(other.stat("/mnt/big").unwrap().size, wrote as i64);
    // A size limit above the budget: the budget still decides, in every tmpfs.
    mount_tmpfs(&mut other, "/mnt2", 0, 64 << 20, 0);
    let (more, err) = fill(&mut other, "/mnt2/more", 64 << 10);
    assert_eq!(err, ENOSPC);
    assert!(
        more < 1 << 20,
        "{more} bytes after the first filled the budget"
    );
    // Unmounting frees it all: the memory is the kernel's again.
    c.unmount("/mnt", 0).unwrap();
    other.unlink("/mnt2/more").unwrap();
    let (after, _) = fill(&mut other, "/mnt2/again", 64 << 10);
    assert!(after >= wrote, "{after} < {wrote}");
}

#[test]
fn busy_and_forced_unmounts() {
    let srv = Server::unix(&["-lrumpvfs", "-lrumpfs_tmpfs", "-c", "2"]);
    let mut a = srv.client();
    let mut b = srv.client();
    mount_tmpfs(&mut a, "/mnt", 0, 0, 0);
    a.mkdir("/mnt/d", 0o755).unwrap();
    assert_eq!(errno(a.unmount("/", 0)), EINVAL);
    assert_eq!(errno(a.unmount("/mnt/d", 0)), EINVAL);
    assert_eq!(errno(a.unmount("/nowhere", 0)), ENOENT);
    // Another client's open file, then its current directory, keep it busy.
    let fd = b.open("/mnt/d/f", O_CREAT | O_RDWR, 0o644).unwrap();
    assert_eq!(errno(a.unmount("/mnt", 0)), EBUSY);
    b.close(fd).unwrap();
    b.chdir("/mnt/d").unwrap();
    assert_eq!(errno(a.unmount("/mnt", 0)), EBUSY);
    // A client that goes away releases what it held.
    drop(b);
    std::thread::sleep(std::time::Duration::from_millis(100));
    a.unmount("/mnt", 0).unwrap();
    assert_eq!(errno(a.stat("/mnt/d")), ENOENT);
    // Forced: the open file dies (EIO), as NetBSD's deadfs answers.
    let mut b = srv.client();
    b.mount_tmpfs("/mnt", 0, &tmpfs_args(0, 0, 0, 0, 0o755))
        .unwrap();
    let fd = b.open("/mnt/f", O_CREAT | O_RDWR, 0o644).unwrap();
    b.write(fd, b"data").unwrap();
    assert_eq!(errno(a.unmount("/mnt", 0)), EBUSY);
    a.unmount("/mnt", mnt::FORCE).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(errno(b.pread(fd, &mut buf, 0)), EIO);
    assert_eq!(errno(b.write(fd, b"x")), EIO);
    b.close(fd).unwrap();
    assert_eq!(
        errno(a.unmount("/mnt", mnt::FORCE)),
        EINVAL,
        "/mnt is rumpfs again"
    );
    // A file system mounted inside another: the outer one stays, even forced.
    mount_tmpfs(&mut a, "/outer", 0, 0, 0);
    mount_tmpfs(&mut a, "/outer/inner", 0, 0, 0);
    assert_eq!(errno(a.unmount("/outer", mnt::FORCE)), EBUSY);
    a.unmount("/outer/inner", 0).unwrap();
    a.unmount("/outer", 0).unwrap();
    // Only root mounts and unmounts; mounting needs a directory.
    let fd = a.open("/tmp/file", O_CREAT | O_RDWR, 0o644).unwrap();
    a.close(fd).unwrap();
    let args = tmpfs_args(0, 0, 0, 0, 0o755);
    assert_eq!(errno(a.mount_tmpfs("/tmp/file", 0, &args)), ENOTDIR);
    let mut user = srv.client();
    user.syscall(23, &[1000], &mut []).unwrap(); // setuid(1000)
    assert_eq!(errno(user.mount_tmpfs("/mnt", 0, &args)), EPERM);
    a.mount_tmpfs("/mnt", 0, &args).unwrap();
    assert_eq!(errno(user.unmount("/mnt", 0)), EPERM);
}

#[test]
fn statvfs_and_getvfsstat_after_mounts() {
    let srv = Server::unix(&["-lrumpvfs", "-lrumpfs_tmpfs"]);
    let mut c = srv.client();
    let flags = mnt::NOSUID | mnt::NODEV | mnt::NOEXEC | mnt::NOATIME | mnt::SYNCHRONOUS;
    mount_tmpfs(&mut c, "/mnt", flags, 8 << 20, 1000);
    mount_tmpfs(&mut c, "/tmp/t2", 0, 0, 0);
    let st = c.statvfs("/mnt").unwrap();
    assert_eq!(st.flag, (flags | mnt::LOCAL) as u64);
    assert_eq!(
        (st.fstypename.as_str(), st.mntonname.as_str()),
        ("tmpfs", "/mnt")
    );
    assert_eq!(st.mntfromname, "tmpfs");
    assert_eq!((st.bsize, st.frsize, st.iosize), (4096, 4096, 4096));
    assert_eq!((st.blocks, st.files, st.ffree), (2048, 1000, 999));
    assert_eq!((st.namemax, st.owner), (255, 0));
    // st_dev of its files is its f_fsidx[0], inode numbers start at the root's 2.
    let root = c.stat("/mnt").unwrap();
    assert_eq!((root.dev, root.ino), (st.fsidx[0] as u32 as u64, 2));
    assert_eq!(root.blksize, 4096);
    let fd = c.open("/mnt/f", O_CREAT | O_RDWR, 0o644).unwrap();
    assert_eq!(c.fstatvfs(fd).unwrap().mntonname, "/mnt");
    assert_eq!(c.fstat(fd).unwrap().dev, root.dev);
    // tmpfs lists . and .. first; .. of its root is the root itself.
    let names: Vec<(u64, Vec<u8>)> = c
        .list_dir("/mnt")
        .unwrap()
        .into_iter()
        .map(|d| (d.fileno, d.name))
        .collect();
    assert_eq!(&names[..2], &[(2, b".".to_vec()), (2, b"..".to_vec())]);
    // Every mount, in mount order, with its names.
    let all = c.getvfsstat(8).unwrap();
    let seen: Vec<(&str, &str)> = all
        .iter()
        .map(|s| (s.fstypename.as_str(), s.mntonname.as_str()))
        .collect();
    assert_eq!(
        seen,
        [("rumpfs", "/"), ("tmpfs", "/mnt"), ("tmpfs", "/tmp/t2")]
    );
    assert_ne!(all[1].fsidx, all[2].fsidx, "each mount its own fsid");
    assert_eq!(all[0].flag, (mnt::LOCAL | mnt::ROOTFS) as u64);
    // Device nodes on a nodev mount cannot be opened.
    let path = std::ffi::CString::new("/mnt/null").unwrap();
    let p = path.as_bytes_with_nul();
    let args = [client::addr_of(p), 0o20666, 0x202];
    c.syscall(450, &args, &mut [client::Buf::In(p)]).unwrap();
    assert_eq!(errno(c.open("/mnt/null", O_RDWR, 0)), ENXIO);
}

#[test]
fn remount_read_only_then_read_write() {
    let srv = Server::unix(&["-lrumpvfs", "-lrumpfs_tmpfs"]);
    let mut c = srv.client();
    mount_tmpfs(&mut c, "/mnt", 0, 0, 0);
    let fd = c.open("/mnt/f", O_CREAT | O_RDWR, 0o644).unwrap();
    c.write(fd, b"before").unwrap();
    let args = tmpfs_args(0, 0, 0, 0, 0o1777);
    // A file open for writing: EBUSY, unless forced (its writes are EROFS then).
    let ro = mnt::UPDATE | mnt::RDONLY;
    assert_eq!(errno(c.mount_tmpfs("/mnt", ro, &args)), EBUSY);
    c.mount_tmpfs("/mnt", ro | mnt::FORCE, &args).unwrap();
    assert_eq!(errno(c.write(fd, b"x")), EROFS);
    c.close(fd).unwrap();
    assert_eq!(c.statvfs("/mnt").unwrap().flag & mnt::RDONLY as u64, 1);
    assert_eq!(errno(c.open("/mnt/g", O_CREAT | O_RDWR, 0o644)), EROFS);
    assert_eq!(errno(c.open("/mnt/f", O_WRONLY, 0)), EROFS);
    assert_eq!(errno(c.unlink("/mnt/f")), EROFS);
    assert_eq!(errno(c.mkdir("/mnt/d", 0o755)), EROFS);
    assert_eq!(errno(c.rename("/mnt/f", "/mnt/g")), EROFS);
    assert_eq!(errno(c.chmod("/mnt/f", 0o600)), EROFS);
    assert_eq!(errno(c.truncate("/mnt/f", 0)), EROFS);
    let fd = c.open("/mnt/f", O_RDONLY, 0).unwrap();
    let mut buf = [0u8; 6];
    assert_eq!(c.pread(fd, &mut buf, 0).unwrap(), 6);
    assert_eq!(&buf, b"before", "data survives the remount");
    c.close(fd).unwrap();
    // Back to read-write.
    c.mount_tmpfs("/mnt", mnt::UPDATE, &args).unwrap();
    assert_eq!(c.statvfs("/mnt").unwrap().flag & mnt::RDONLY as u64, 0);
    c.unlink("/mnt/f").unwrap();
    // MNT_GETARGS reads the arguments back (the buffer must carry the version).
    let mut back = tmpfs_args(0, 0, 0, 0, 0);
    let n = c
        .mount("tmpfs", "/mnt", mnt::GETARGS, Some(&mut back))
        .unwrap();
    assert_eq!(n, 40);
    assert_eq!(u32::from_le_bytes(back[32..36].try_into().unwrap()), 0o1777);
    assert_eq!(i64::from_le_bytes(back[16..24].try_into().unwrap()), -1);
}

//! FFS over the wire: a makefs image given with `-d`, mounted read-only by a client with
//! mount("ffs", dir, MNT_RDONLY, ufs_args), then read, listed and stat'ed as the host tree.
//! Skipped (with a notice) when `makefs` is not installed; CI installs it.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use client::fs::{O_CREAT, O_RDONLY, O_RDWR};
use client::Client;
use common::{mount_ffs, Server, TempDir};

const MNT_RDONLY: i32 = 0x1;
const EROFS: i32 = 30;
const ENOTBLK: i32 = 15;
const EINVAL: i32 = 22;
const ENODEV: i32 = 19;

fn have_makefs() -> bool {
    let ok = Command::new("makefs").arg("-h").output().is_ok();
    if !ok {
        eprintln!("makefs not installed: skipping the FFS mount tests");
    }
    ok
}

fn content(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| ((i * 31 + j * 7) % 251) as u8).collect()
}

/// A host tree and its makefs image (UFS `version`).
fn image(dir: &Path, version: u32) -> std::path::PathBuf {
    let tree = dir.join(format!("tree{version}"));
    std::fs::create_dir_all(tree.join("sub/deeper")).unwrap();
    for (i, len) in [0usize, 1, 4095, 4096, 70_000, 1 << 20].iter().enumerate() {
        std::fs::write(tree.join(format!("f{i}")), content(i, *len)).unwrap();
    }
    std::fs::write(tree.join("sub/deeper/leaf"), b"leaf\n").unwrap();
    symlink("sub/deeper/leaf", tree.join("link")).unwrap();
    symlink("x".repeat(200), tree.join("longlink")).unwrap();
    for i in 0..150 {
        std::fs::write(tree.join("sub").join(format!("name-{i:03}")), b"").unwrap();
    }
    let img = dir.join(format!("ffs{version}.img"));
    let st = Command::new("makefs")
        .args(["-t", "ffs", "-o", &format!("version={version}"), "-s", "8m"])
        .arg(&img)
        .arg(&tree)
        .status()
        .unwrap();
    assert!(st.success(), "makefs failed");
    img
}

fn read_all(c: &mut Client, path: &str) -> Vec<u8> {
    let fd = c.open(path, O_RDONLY, 0).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = c.pread(fd, &mut buf, out.len() as i64).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    c.close(fd).unwrap();
    out
}

#[test]
fn makefs_images_mount_read_only_and_read_back_exactly() {
    if !have_makefs() {
        return;
    }
    let dir = TempDir::new("ffs");
    for version in [1, 2] {
        let img = image(dir.path(), version);
        let srv = Server::unix(&[
            "-lrumpvfs",
            "-lrumpfs_ffs",
            "-d",
            &format!("key=/dev/dk,hostpath={},size=host", img.display()),
        ]);
        let mut c = srv.client();
        c.mkdir("/mnt", 0o755).unwrap();
        mount_ffs(&mut c, "/dev/dk", "/mnt", MNT_RDONLY).unwrap();
        for (i, len) in [0usize, 1, 4095, 4096, 70_000, 1 << 20].iter().enumerate() {
            let path = format!("/mnt/f{i}");
            assert_eq!(
                c.stat(&path).unwrap().size,
                *len as i64,
                "v{version} {path}"
            );
            assert!(
                read_all(&mut c, &path) == content(i, *len),
                "v{version} {path}"
            );
        }
        assert_eq!(
            read_all(&mut c, "/mnt/link"),
            b"leaf\n",
            "through the symlink"
        );
        assert_eq!(
            c.readlink("/mnt/longlink").unwrap(),
            "x".repeat(200).as_bytes()
        );
        assert_eq!(
            read_all(&mut c, "/mnt/sub/deeper/../deeper/leaf"),
            b"leaf\n"
        );
        let names: Vec<Vec<u8>> = c
            .list_dir("/mnt/sub")
            .unwrap()
            .into_iter()
            .map(|d| d.name)
            .collect();
        assert_eq!(names.len(), 153, "v{version}: ., .., deeper and 150 names");
        assert!(names.contains(&b"name-149".to_vec()) && names.contains(&b"..".to_vec()));
        // `..` out of the mount root crosses back to rumpfs.
        c.chdir("/mnt/sub").unwrap();
        assert_eq!(c.stat("../../dev/dk").unwrap().mode & 0o170000, 0o060000);
        c.chdir("/").unwrap();
        let st = c.statvfs("/mnt").unwrap();
        assert_eq!(st.fstypename, "ffs");
        assert_eq!(st.flag & 1, 1, "MNT_RDONLY");
        assert!(st.blocks > 0 && st.bsize >= 4096, "{st:?}");
        // Nothing changes a read-only file system.
        assert_eq!(
            c.open("/mnt/f1", O_RDWR, 0).unwrap_err().errno(),
            Some(EROFS)
        );
        assert_eq!(c.mkdir("/mnt/new", 0o755).unwrap_err().errno(), Some(EROFS));
        assert_eq!(c.unlink("/mnt/f1").unwrap_err().errno(), Some(EROFS));
        c.unmount("/mnt", 0).unwrap();
        assert_eq!(c.stat("/mnt/f1").unwrap_err().errno(), Some(2));
    }
}

#[test]
fn mounting_ffs_needs_its_component_a_block_device_and_a_file_system() {
    if !have_makefs() {
        return;
    }
    let dir = TempDir::new("ffsbad");
    let junk = dir.path().join("junk.img");
    std::fs::write(&junk, vec![0u8; 1 << 20]).unwrap();
    let img = image(dir.path(), 2);
    let without = Server::unix(&[
        "-lrumpvfs",
        "-d",
        &format!("key=/dev/dk,hostpath={},size=host", img.display()),
    ]);
    let mut c = without.client();
    c.mkdir("/mnt", 0o755).unwrap();
    assert_eq!(
        mount_ffs(&mut c, "/dev/dk", "/mnt", MNT_RDONLY),
        Err(ENODEV)
    );
    let srv = Server::unix(&[
        "-lrumpvfs",
        "-lrumpfs_ffs",
        "-d",
        &format!("key=/dev/junk,hostpath={},size=host", junk.display()),
        "-d",
        &format!("key=/dev/rdk,hostpath={},size=host,type=chr", img.display()),
    ]);
    let mut c = srv.client();
    c.mkdir("/mnt", 0o755).unwrap();
    assert_eq!(
        mount_ffs(&mut c, "/dev/junk", "/mnt", MNT_RDONLY),
        Err(EINVAL),
        "no superblock"
    );
    assert_eq!(
        mount_ffs(&mut c, "/dev/rdk", "/mnt", MNT_RDONLY),
        Err(ENOTBLK)
    );
    assert_eq!(mount_ffs(&mut c, "/tmp", "/mnt", MNT_RDONLY), Err(ENOTBLK));
    assert_eq!(mount_ffs(&mut c, "/dev/none", "/mnt", MNT_RDONLY), Err(2));
    // The server keeps serving.
    c.getpid().unwrap();
}

fn check_clean(img: &Path) {
    let disk = ffs::FileDisk::open(img, true).unwrap();
    let findings = ffs::block_on(ffs::check(&disk)).unwrap();
    assert!(findings.is_empty(), "{}: {findings:?}", img.display());
}

fn write_file(c: &mut Client, path: &str, data: &[u8]) {
    let fd = c.open(path, O_CREAT | O_RDWR, 0o644).unwrap();
    let mut off = 0;
    while off < data.len() {
        let end = (off + 65536).min(data.len());
        off += c.pwrite(fd, &data[off..end], off as i64).unwrap();
    }
    c.close(fd).unwrap();
}

#[test]
fn read_write_mounts_change_the_image_and_leave_it_clean() {
    if !have_makefs() {
        return;
    }
    let dir = TempDir::new("ffsrw");
    for version in [1, 2] {
        let img = image(dir.path(), version);
        let drive = format!("key=/dev/dk,hostpath={},size=host", img.display());
        let mut srv = Server::unix(&["-lrumpvfs", "-lrumpfs_ffs", "-r", "16m", "-d", &drive]);
        let mut c = srv.client();
        c.mkdir("/mnt", 0o755).unwrap();
        mount_ffs(&mut c, "/dev/dk", "/mnt", 0).unwrap();
        let big = content(99, 300_000);
        write_file(&mut c, "/mnt/new", &big);
        assert!(read_all(&mut c, "/mnt/new") == big);
        c.mkdir("/mnt/d", 0o750).unwrap();
        c.rename("/mnt/new", "/mnt/d/moved").unwrap();
        c.link("/mnt/d/moved", "/mnt/hard").unwrap();
        assert_eq!(c.stat("/mnt/hard").unwrap().nlink, 2);
        c.symlink("d/moved", "/mnt/sl").unwrap();
        assert!(read_all(&mut c, "/mnt/sl") == big);
        c.truncate("/mnt/f4", 10).unwrap();
        assert_eq!(read_all(&mut c, "/mnt/f4"), content(4, 10));
        c.chmod("/mnt/f0", 0o600).unwrap();
        assert_eq!(c.stat("/mnt/f0").unwrap().mode & 0o7777, 0o600);
        assert_eq!(
            c.rmdir("/mnt/sub").unwrap_err().errno(),
            Some(66),
            "ENOTEMPTY"
        );
        c.mkdir("/mnt/empty", 0o755).unwrap();
        c.rmdir("/mnt/empty").unwrap();
        // An open file outlives its last name.
        let fd = c.open("/mnt/f2", O_RDONLY, 0).unwrap();
        c.unlink("/mnt/f2").unwrap();
        let mut b = vec![0u8; 4095];
        assert_eq!(c.pread(fd, &mut b, 0).unwrap(), 4095);
        assert!(b == content(2, 4095));
        c.close(fd).unwrap();
        assert_eq!(c.stat("/mnt/f2").unwrap_err().errno(), Some(2));
        c.unmount("/mnt", 0).unwrap();
        check_clean(&img);
        mount_ffs(&mut c, "/dev/dk", "/mnt", 0).unwrap();
        assert!(
            read_all(&mut c, "/mnt/hard") == big,
            "v{version}: after remount"
        );
        assert_eq!(c.readlink("/mnt/sl").unwrap(), b"d/moved");
        // Changes never unmounted: the halt writes them back and marks the image clean.
        write_file(&mut c, "/mnt/at-halt", b"kept by the halt\n");
        let out = srv.halt_with(Path::new(common::HALT), &[]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(srv.wait_exit(20).code(), Some(0));
        check_clean(&img);
        let fs = ffs::block_on(ffs::Fs::mount(
            ffs::FileDisk::open(&img, true).unwrap(),
            ffs::MountOptions {
                read_only: true,
                clock: ffs::system_clock,
            },
        ))
        .unwrap();
        let ino = ffs::block_on(fs.lookup(fs.root(), b"at-halt")).unwrap();
        let mut buf = vec![0u8; 17];
        assert_eq!(ffs::block_on(fs.read(ino, 0, &mut buf)).unwrap(), 17);
        assert_eq!(&buf, b"kept by the halt\n");
    }
}

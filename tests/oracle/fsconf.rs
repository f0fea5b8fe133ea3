//! The probe of per-file-system answers (issue 13) whose NetBSD transcript is
//! `tests/oracle/fsconf.netbsd`: `pathconf`/`lpathconf`/`fpathconf` for every name on every
//! kind of node (directory, regular file, symbolic link, FIFO, character device) of rumpfs,
//! tmpfs and FFS (each file system has its own `VOP_PATHCONF`, and device and FIFO nodes
//! answer through specfs and fifofs), and the namespace calls whose last component is `.` or
//! `..` on read-write and read-only mounts (which check wins: `EROFS`, `EINVAL`, `EEXIST`,
//! `ENOTEMPTY`, `EBUSY`).
//!
//! `cargo run --example oracle_fsconf -- /work/ref/rump_server > tests/oracle/fsconf.netbsd`
//! records NetBSD's answers (the probe starts the given binary itself, as the FFS probe);
//! `tests/oracle_fsconf.rs` replays them against ours.

use std::path::Path;

use client::fs::{tmpfs_args, O_CREAT, O_RDONLY, O_RDWR};
use client::{int_arg, Client};

use crate::ffs::{newfs_image, Launcher};
use crate::transcript::{path_syscall, Transcript};

const SYS_PATHCONF: u32 = 191;
const SYS_FPATHCONF: u32 = 192;
const SYS_LPATHCONF: u32 = 499;
const SYS_MKFIFO: u32 = 132;
const SYS_MKNOD: u32 = 450;
const S_IFCHR: u64 = 0o020000;
const MNT_RDONLY: i32 = 0x1;
const MNT_UPDATE: i32 = 0x1_0000;
/// `_PC_LINK_MAX` … `_PC_2_SYMLINKS`, and one past each end.
const NAMES: std::ops::RangeInclusive<u64> = 0..=14;

fn path_call(c: &mut Client, nr: u32, path: &str, arg: u64) -> client::Result<i64> {
    path_syscall(c, nr, path, &[arg])
}

/// One line for all names: each value, or `eN` for an errno.
fn conf_line(mut one: impl FnMut(u64) -> client::Result<i64>) -> String {
    NAMES
        .map(|n| match one(n) {
            Ok(v) => v.to_string(),
            Err(e) => format!("e{}", e.errno().unwrap_or(-1)),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The nodes of one file system under `dir`, each asked every pathconf name.
fn pathconf(c: &mut Client, t: &mut Transcript, fs: &str, dir: &str, devices: bool) {
    let d = format!("{dir}/pcdir");
    let f = format!("{dir}/pcfile");
    let l = format!("{dir}/pclink");
    let p = format!("{dir}/pcfifo");
    let v = format!("{dir}/pcdev");
    t.unit(&format!("{fs}.mkdir"), c.mkdir(&d, 0o755));
    t.unit(
        &format!("{fs}.create"),
        c.open(&f, O_CREAT | O_RDWR, 0o644)
            .and_then(|fd| c.close(fd)),
    );
    t.unit(&format!("{fs}.symlink"), c.symlink("pcfile", &l));
    t.unit(&format!("{fs}.mkfifo"), path_call(c, SYS_MKFIFO, &p, 0o644));
    if devices {
        let r = path_syscall(c, SYS_MKNOD, &v, &[S_IFCHR | 0o600, 0x0203]);
        t.unit(&format!("{fs}.mknod"), r);
    }
    for (what, path) in [("dir", &d), ("file", &f), ("link", &l), ("fifo", &p)] {
        let line = conf_line(|n| path_call(c, SYS_PATHCONF, path, n));
        t.note(&format!("{fs}.pathconf.{what}"), line);
    }
    if devices {
        let line = conf_line(|n| path_call(c, SYS_PATHCONF, &v, n));
        t.note(&format!("{fs}.pathconf.chr"), line);
    }
    let line = conf_line(|n| path_call(c, SYS_LPATHCONF, &l, n));
    t.note(&format!("{fs}.lpathconf.link"), line);
    for (what, path, flags) in [("dir", &d, O_RDONLY), ("file", &f, O_RDWR)] {
        match c.open(path, flags, 0) {
            Ok(fd) => {
                let line = conf_line(|n| {
                    c.syscall(SYS_FPATHCONF, &[fd as u64, n], &mut [])
                        .map(|r| r[0])
                });
                t.note(&format!("{fs}.fpathconf.{what}"), line);
                t.unit(&format!("{fs}.fpathconf.{what}.close"), c.close(fd));
            }
            Err(e) => t.unit(&format!("{fs}.fpathconf.{what}.open"), Err::<(), _>(e)),
        }
    }
}

/// The namespace calls whose last component is `.` or `..`, under `dir` (which holds an
/// empty directory `dots` with an empty directory `sub` and a file `file`).
fn dots(c: &mut Client, t: &mut Transcript, fs: &str, dir: &str) {
    let s = |rest: &str| format!("{dir}/{rest}");
    let n = |what: &str| format!("{fs}.dots.{what}");
    t.unit(&n("rmdir ."), c.rmdir(&s("dots/.")));
    t.unit(&n("rmdir .."), c.rmdir(&s("dots/..")));
    t.unit(&n("rmdir sub/.."), c.rmdir(&s("dots/sub/..")));
    t.unit(&n("rmdir top ."), c.rmdir(&s(".")));
    t.unit(&n("unlink ."), c.unlink(&s("dots/.")));
    t.unit(&n("unlink .."), c.unlink(&s("dots/..")));
    t.unit(&n("mkdir ."), c.mkdir(&s("dots/."), 0o755));
    t.unit(&n("mkdir .."), c.mkdir(&s("dots/.."), 0o755));
    t.unit(&n("mkdir missing/."), c.mkdir(&s("dots/none/."), 0o755));
    t.unit(
        &n("rename . to x"),
        c.rename(&s("dots/sub/."), &s("dots/x")),
    );
    t.unit(
        &n("rename .. to x"),
        c.rename(&s("dots/sub/.."), &s("dots/x")),
    );
    t.unit(&n("rename x to ."), c.rename(&s("dots/sub"), &s("dots/.")));
    t.unit(
        &n("rename x to .."),
        c.rename(&s("dots/sub"), &s("dots/sub/..")),
    );
    t.unit(
        &n("rename file to ."),
        c.rename(&s("dots/file"), &s("dots/sub/.")),
    );
    t.unit(&n("link to ."), c.link(&s("dots/file"), &s("dots/.")));
    t.unit(&n("link to .."), c.link(&s("dots/file"), &s("dots/sub/..")));
    t.unit(&n("symlink to ."), c.symlink("file", &s("dots/.")));
    t.unit(&n("symlink to .."), c.symlink("file", &s("dots/..")));
    t.unit(
        &n("mkfifo ."),
        path_call(c, SYS_MKFIFO, &s("dots/."), 0o644),
    );
    t.unit(
        &n("mkfifo .."),
        path_call(c, SYS_MKFIFO, &s("dots/.."), 0o644),
    );
    t.unit(
        &n("open . creat"),
        c.open(&s("dots/."), O_CREAT | O_RDWR, 0o644)
            .and_then(|fd| c.close(fd)),
    );
    t.unit(
        &n("open .. creat"),
        c.open(&s("dots/.."), O_CREAT, 0o644)
            .and_then(|fd| c.close(fd)),
    );
    t.unit(
        &n("open . rdonly"),
        c.open(&s("dots/."), O_RDONLY, 0).and_then(|fd| c.close(fd)),
    );
    t.unit(&n("rmdir sub"), c.rmdir(&s("dots/sub")));
    t.unit(&n("unlink file"), c.unlink(&s("dots/file")));
    t.unit(&n("unlink missing"), c.unlink(&s("dots/none")));
}

fn dots_tree(c: &mut Client, t: &mut Transcript, fs: &str, dir: &str) {
    t.unit(&format!("{fs}.dots.setup"), {
        c.mkdir(&format!("{dir}/dots"), 0o755)
            .and_then(|_| c.mkdir(&format!("{dir}/dots/sub"), 0o755))
            .and_then(|_| c.open(&format!("{dir}/dots/file"), O_CREAT | O_RDWR, 0o644))
            .and_then(|fd| c.close(fd))
    });
}

/// Runs the probe on servers started from `exe` (ours or NetBSD's), images in `dir`.
pub fn run(exe: &Path, dir: &Path) -> Transcript {
    let mut t = Transcript::default();
    let mut l = Launcher::new(exe, dir);
    l.libs = vec!["-lrumpfs_tmpfs".into()];
    let img = dir.join("fsconf-ufs2.img");
    newfs_image(&img, true, 8 << 20);
    let srv = l.start(&[format!("key=/dk,hostpath={},size=host", img.display())]);
    let mut c = srv.client("fsconf");
    let targs = tmpfs_args(1 << 20, 0, 0, 0, 0o755);
    t.unit("tmpfs.mountpoint", c.mkdir("/t", 0o755));
    t.unit("tmpfs.mount", c.mount_tmpfs("/t", 0, &targs));
    t.unit("ffs.mountpoint", c.mkdir("/f", 0o755));
    t.unit("ffs.mount", c.mount_ffs("/dk", "/f", 0));
    pathconf(&mut c, &mut t, "rumpfs", "", true);
    pathconf(&mut c, &mut t, "tmpfs", "/t", true);
    pathconf(&mut c, &mut t, "ffs", "/f", true);
    let line = match c.pipe() {
        Ok((r, w)) => {
            let line = conf_line(|n| {
                c.syscall(SYS_FPATHCONF, &[r as u64, n], &mut [])
                    .map(|v| v[0])
            });
            let _ = (c.close(r), c.close(w));
            line
        }
        Err(e) => format!("pipe e{}", e.errno().unwrap_or(-1)),
    };
    t.note("pipe.fpathconf", line);
    t.note(
        "console.fpathconf",
        conf_line(|n| c.syscall(SYS_FPATHCONF, &[1, n], &mut []).map(|v| v[0])),
    );
    t.unit(
        "bad-fd.fpathconf",
        c.syscall(SYS_FPATHCONF, &[77, int_arg(1)], &mut []),
    );
    t.unit(
        "missing.pathconf",
        path_call(&mut c, SYS_PATHCONF, "/none", 1),
    );
    for (fs, dir) in [("rumpfs", ""), ("tmpfs", "/t"), ("ffs", "/f")] {
        dots_tree(&mut c, &mut t, fs, dir);
        dots(&mut c, &mut t, fs, dir);
    }
    // The same on FFS read-only: the tree made again, then the mount downgraded.
    t.unit("ffs-ro.mkdir", c.mkdir("/f/ro", 0o755));
    dots_tree(&mut c, &mut t, "ffs-ro", "/f/ro");
    t.unit("ffs-ro.unmount", c.unmount("/f", 0));
    t.unit("ffs-ro.mount", c.mount_ffs("/dk", "/f", MNT_RDONLY));
    dots(&mut c, &mut t, "ffs-ro", "/f/ro");
    t.unit("ffs-ro.rmdir mountpoint", c.rmdir("/f"));
    t.unit("ffs-ro.update-rw", c.mount_ffs("/dk", "/f", MNT_UPDATE));
    t.unit("ffs-ro.rmdir sub after rw", c.rmdir("/f/ro/dots/sub"));
    // And on tmpfs made read-only by an update.
    t.unit("tmpfs-ro.mkdir", c.mkdir("/t/ro", 0o755));
    dots_tree(&mut c, &mut t, "tmpfs-ro", "/t/ro");
    t.unit(
        "tmpfs-ro.update-ro",
        c.mount_tmpfs("/t", MNT_UPDATE | MNT_RDONLY, &targs),
    );
    dots(&mut c, &mut t, "tmpfs-ro", "/t/ro");
    drop(c);
    srv.halt(&mut t, "halt");
    t
}

//! FFS images across servers (issue 13): a workload writes a tree on a fresh UFS1 or UFS2
//! image in one server (every size class a file can have — empty, fragments, direct,
//! single and double indirect blocks, holes —, fast and slow symbolic links, hard links,
//! FIFOs and devices, set-id and sticky modes, owners, a directory spanning several blocks,
//! 255-byte names, renames, truncations and removals), then lists it: every node's `lstat`
//! fields, its data's hash, link targets, every directory's getdents order, and statvfs. The
//! image read back in another server must list the same.
//!
//! `cargo run --example ffs_cross -- A B` runs it both ways between two server binaries
//! (ours and NetBSD's), `scripts/ffs_cross.sh` records NetBSD's images for CI, and
//! `tests/ffs_cross.rs` reads those back in ours.

use std::path::Path;

use client::fs::{O_CREAT, O_RDONLY, O_RDWR};
use client::Client;

use crate::ffs::{newfs_image, Launcher};

const SYS_MKFIFO: u32 = 132;
const SYS_MKNOD: u32 = 450;
const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u64 = 0o020000;
const S_IFBLK: u64 = 0o060000;
const O_TRUNC: i32 = 0x400;

/// FNV-1a, 64 bits: the data's identity in a listing.
fn fnv(h: &mut u64, data: &[u8]) {
    for &b in data {
        *h ^= u64::from(b);
        *h = h.wrapping_mul(0x100_0000_01b3);
    }
}

/// Data that compresses (the recorded images are checked in gzipped) yet differs in every
/// 4 KiB block and file: a 251-byte cycle (prime to the block size) offset by the seed.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| (seed.wrapping_mul(31) as usize + j % 251 + j / 4093) as u8)
        .collect()
}

fn path_mode(c: &mut Client, nr: u32, path: &str, mode: u64, dev: u64) -> client::Result<()> {
    crate::transcript::path_syscall(c, nr, path, &[mode, dev]).map(drop)
}

/// Writes `data` at `off` in chunks of 64 KiB.
fn put(c: &mut Client, fd: i32, data: &[u8], off: i64) -> client::Result<()> {
    for (i, chunk) in data.chunks(65536).enumerate() {
        c.pwrite(fd, chunk, off + (i * 65536) as i64)?;
    }
    Ok(())
}

fn file(c: &mut Client, path: &str, seed: u64, len: usize) -> client::Result<()> {
    let fd = c.open(path, O_CREAT | O_RDWR | O_TRUNC, 0o644)?;
    let r = put(c, fd, &pattern(seed, len), 0);
    c.close(fd)?;
    r
}

/// The tree every server writes; the steps' errors are part of the transcript.
pub fn workload(c: &mut Client, m: &str, out: &mut Vec<String>) {
    let mut step = |name: &str, r: client::Result<()>| {
        if let Err(e) = r {
            out.push(format!("workload {name}: errno {:?}", e.errno()));
        }
    };
    let p = |rest: &str| format!("{m}/{rest}");
    step("mkdir d", c.mkdir(&p("d"), 0o755));
    step("mkdir d/e", c.mkdir(&p("d/e"), 0o700));
    step("mkdir d/e/f", c.mkdir(&p("d/e/f"), 0o755));
    for (i, len) in [
        0usize, 1, 511, 512, 513, 4095, 4096, 4097, 49_152, 49_153, 200_000,
    ]
    .iter()
    .enumerate()
    {
        step("file", file(c, &p(&format!("d/size{len}")), i as u64, *len));
    }
    // Past the single indirect block of either format (UFS1 4 MiB + 48 KiB, UFS2 2 MiB).
    step("big", file(c, &p("big"), 99, 4_400_000));
    // Holes: data only at 0, 3 MiB, 6 MiB and 9 MiB + 100.
    step("sparse", {
        c.open(&p("sparse"), O_CREAT | O_RDWR, 0o600)
            .and_then(|fd| {
                let r = [0i64, 3 << 20, 6 << 20, (9 << 20) + 100]
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, off)| put(c, fd, &pattern(200 + i as u64, 3000), *off));
                c.close(fd)?;
                r
            })
    });
    step("symlink short", c.symlink("d/size1", &p("short")));
    let long = "x/".repeat(60) + "target";
    step("symlink long", c.symlink(&long, &p("d/long")));
    step("link", c.link(&p("d/size4096"), &p("d/e/hard")));
    step("link 2", c.link(&p("d/size4096"), &p("hard2")));
    step("fifo", path_mode(c, SYS_MKFIFO, &p("fifo"), 0o640, 0));
    step(
        "chr",
        path_mode(c, SYS_MKNOD, &p("d/chr"), S_IFCHR | 0o600, 0x0c03),
    );
    step(
        "blk",
        path_mode(c, SYS_MKNOD, &p("d/blk"), S_IFBLK | 0o640, 0x0402),
    );
    step("chmod suid", c.chmod(&p("d/size1"), 0o4755));
    step("chmod sgid", c.chmod(&p("d/size511"), 0o2750));
    step("chmod sticky", c.chmod(&p("d/e/f"), 0o1777));
    step("chown", c.chown(&p("d/size512"), 1000, 100));
    step("chown dir", c.chown(&p("d/e"), 1001, 0));
    step("mkdir many", c.mkdir(&p("many"), 0o755));
    for i in 0..300 {
        step(
            "many",
            file(c, &p(&format!("many/entry-{i:04}")), 1000 + i, i as usize),
        );
    }
    for i in (0..300).step_by(7) {
        step("many unlink", c.unlink(&p(&format!("many/entry-{i:04}"))));
    }
    step("long name", file(c, &p(&"n".repeat(255)), 7, 100));
    step("rename", c.rename(&p("d/size513"), &p("d/e/moved")));
    step("rename dir", c.rename(&p("d/e/f"), &p("f2")));
    step("rename over", c.rename(&p("d/size4095"), &p("d/size4097")));
    step("truncate down", c.truncate(&p("d/size200000"), 70_000));
    step("truncate up", c.truncate(&p("d/size1"), 100_000));
    step("unlink", c.unlink(&p("d/size0")));
    step("rmdir", {
        c.mkdir(&p("gone"), 0o755).and_then(|_| c.rmdir(&p("gone")))
    });
}

/// Every node under `m` (sorted by path) and every directory's getdents order.
pub fn listing(c: &mut Client, m: &str, out: &mut Vec<String>) {
    let mut stack = vec![String::new()];
    let mut lines = Vec::new();
    while let Some(rel) = stack.pop() {
        let path = format!("{m}{rel}");
        let st = match c.lstat(&path) {
            Ok(st) => st,
            Err(e) => {
                lines.push(format!("{rel}: lstat errno {:?}", e.errno()));
                continue;
            }
        };
        let mut line = format!(
            "{rel}: ino={} mode={:o} nlink={} uid={} gid={} size={} blocks={} flags={:x} \
             gen={} mtime={}.{} ctime={}.{} birth={}.{}",
            st.ino,
            st.mode,
            st.nlink,
            st.uid,
            st.gid,
            st.size,
            st.blocks,
            st.flags,
            st.gen,
            st.mtime.0,
            st.mtime.1,
            st.ctime.0,
            st.ctime.1,
            st.birthtime.0,
            st.birthtime.1,
        );
        match st.mode & S_IFMT {
            S_IFDIR => match raw_dir(c, &path) {
                Ok(ents) => {
                    let names: Vec<String> = ents
                        .iter()
                        .map(|e| {
                            format!(
                                "{}/{}/{}",
                                String::from_utf8_lossy(&e.name),
                                e.fileno,
                                e.typ
                            )
                        })
                        .collect();
                    line += &format!(" entries={}", names.join(","));
                    for e in ents {
                        if e.fileno != 0 && e.name != b"." && e.name != b".." {
                            stack.push(format!("{rel}/{}", String::from_utf8_lossy(&e.name)));
                        }
                    }
                }
                Err(e) => line += &format!(" getdents errno {:?}", e.errno()),
            },
            S_IFREG => match read_hash(c, &path, st.size as u64) {
                Ok(h) => line += &format!(" data={h:016x}"),
                Err(e) => line += &format!(" read errno {:?}", e.errno()),
            },
            S_IFLNK => match c.readlink(&path) {
                Ok(t) => line += &format!(" target={}", String::from_utf8_lossy(&t)),
                Err(e) => line += &format!(" readlink errno {:?}", e.errno()),
            },
            _ => line += &format!(" rdev={:x}", st.rdev),
        }
        lines.push(line);
    }
    lines.sort();
    out.extend(lines);
    match crate::ffs::statvfs1(c, m) {
        Ok(s) => out.push(format!(
            "statvfs: bsize={} frsize={} blocks={} bfree={} bavail={} files={} ffree={}",
            s.bsize, s.frsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree
        )),
        Err(e) => out.push(format!("statvfs: errno {:?}", e.errno())),
    }
}

/// Every record getdents gives, removed ones (inode 0) included.
fn raw_dir(c: &mut Client, path: &str) -> client::Result<Vec<client::fs::Dirent>> {
    let fd = c.open(path, O_RDONLY, 0)?;
    let mut all = Vec::new();
    let r = loop {
        match c.getdents(fd, 4096) {
            Ok(d) if d.is_empty() => break Ok(()),
            Ok(d) => all.extend(d),
            Err(e) => break Err(e),
        }
    };
    c.close(fd)?;
    r.map(|()| all)
}

fn read_hash(c: &mut Client, path: &str, size: u64) -> client::Result<u64> {
    let fd = c.open(path, O_RDONLY, 0)?;
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut buf = vec![0u8; 65536];
    let mut off = 0u64;
    let r = loop {
        match c.pread(fd, &mut buf, off as i64) {
            Ok(0) => break Ok(h),
            Ok(n) => {
                fnv(&mut h, &buf[..n]);
                off += n as u64;
            }
            Err(e) => break Err(e),
        }
        if off > size + (1 << 20) {
            break Ok(h);
        }
    };
    c.close(fd)?;
    r
}

/// Starts `exe` on `img`, mounts it at `/m` (read-write), runs `f`, unmounts, halts.
pub fn with_image(
    l: &mut Launcher,
    img: &Path,
    name: &str,
    f: impl FnOnce(&mut Client, &mut Vec<String>),
) -> Vec<String> {
    let mut out = Vec::new();
    let srv = l.start(&[format!("key=/dk,hostpath={},size=host", img.display())]);
    let mut c = srv.client(name);
    let r = c
        .mkdir("/m", 0o755)
        .and_then(|_| c.mount_ffs("/dk", "/m", 0));
    match r {
        Ok(()) => {
            f(&mut c, &mut out);
            if let Err(e) = c.unmount("/m", 0) {
                out.push(format!("unmount: errno {:?}", e.errno()));
            }
        }
        Err(e) => out.push(format!("mount: errno {:?}", e.errno())),
    }
    drop(c);
    let mut t = crate::transcript::Transcript::default();
    srv.halt(&mut t, "halt");
    out.extend(t.0.into_iter().filter(|l| !l.ends_with(": ok")));
    out
}

/// A fresh image of format `ufs` (1 or 2) at `img`, written by `writer`: returns the
/// writer's own listing (before its halt).
pub fn write_image(writer: &mut Launcher, img: &Path, ufs: u32) -> Vec<String> {
    newfs_image(img, ufs == 2, 16 << 20);
    with_image(writer, img, "writer", |c, out| {
        workload(c, "/m", out);
        listing(c, "/m", out);
    })
}

/// The listing `reader` makes of `img`.
pub fn read_image(reader: &mut Launcher, img: &Path) -> Vec<String> {
    with_image(reader, img, "reader", |c, out| listing(c, "/m", out))
}

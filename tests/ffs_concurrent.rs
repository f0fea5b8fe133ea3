//! Issue 13, item 4: operations on one FFS mount from many clients at once, on a server with
//! two loops (`-c 2`), so that they really run in parallel. Eight clients create, write,
//! rename, link, unlink and list files in one shared directory and in their own, write
//! disjoint blocks of one shared file, append to each other's files while their owners
//! chmod them, and read a common file, all at the same time. Afterwards every file must
//! hold exactly what its client wrote (seen through the server, then on the image after
//! unmount), each mode must be the last one set, the unmounted image must be clean for the
//! checker, and all of it must end within a bound (a deadlock fails the test, it does not
//! hang it).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use client::fs::{O_APPEND, O_CREAT, O_RDONLY, O_RDWR, O_WRONLY};
use client::Client;
use common::{mount_ffs, Server, TempDir};

const CLIENTS: usize = 8;
const ROUNDS: usize = 40;
/// Bytes each append adds to a neighbour's `m`.
const APPEND_LEN: usize = 100;
/// Bytes of the common file every client reads.
const COMMON_LEN: usize = 300_000;
/// 4 KiB blocks of the shared file each client writes per round (its own ones).
const BIG_BLOCKS: usize = 8;
/// How long the whole workload may take (a deadlock is caught, not waited for).
const BOUND: Duration = Duration::from_secs(240);

fn content(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| ((seed * 131 + j * 7 + j / 251) % 253) as u8)
        .collect()
}

/// Lengths that take fragments, whole blocks and indirect blocks.
fn len_of(t: usize, k: usize) -> usize {
    [0, 1, 700, 5000, 40_000, 200_000][(t + k) % 6]
}

fn image(dir: &Path, ufs2: bool) -> std::path::PathBuf {
    let img = dir.join(format!("ffs-{ufs2}.img"));
    std::fs::File::create(&img)
        .unwrap()
        .set_len(96 << 20)
        .unwrap();
    let disk = ffs::FileDisk::open(&img, false).unwrap();
    let opts = ffs::NewfsOptions {
        ufs2,
        ..ffs::NewfsOptions::default()
    };
    ffs::block_on(ffs::newfs(&disk, &opts)).unwrap();
    img
}

fn write_file(c: &mut Client, path: &str, data: &[u8]) {
    let fd = c.open(path, O_CREAT | O_WRONLY, 0o644).unwrap();
    let mut off = 0;
    while off < data.len() {
        let n = (data.len() - off).min(48_000);
        assert_eq!(c.pwrite(fd, &data[off..off + n], off as i64).unwrap(), n);
        off += n;
    }
    c.close(fd).unwrap();
}

fn read_file(c: &mut Client, path: &str) -> Vec<u8> {
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

/// What one client leaves behind: path (under the mount) → contents; the last mode it set
/// on its `m`.
struct Left {
    files: BTreeMap<String, Vec<u8>>,
    mode: u32,
}

/// One client's rounds. Its names are its own; directories, the shared file `big` and the
/// neighbours' `m` files are shared with the others.
fn client_rounds(url: &str, t: usize, shared_ino: u64) -> Left {
    let mut c = Client::connect(url).unwrap();
    let mine = format!("/mnt/t{t}");
    let mut files = BTreeMap::new();
    let mut mode = 0;
    let next_m = format!("/mnt/t{}/m", (t + 1) % CLIENTS);
    let common = content(999, COMMON_LEN);
    let big = c.open("/mnt/shared/big", O_RDWR, 0).unwrap();
    let appender = c.open(&next_m, O_WRONLY | O_APPEND, 0).unwrap();
    for k in 0..ROUNDS {
        let name = format!("/mnt/shared/f-{t}-{k}");
        let data = content(t * 1000 + k, len_of(t, k));
        write_file(&mut c, &name, &data);
        files.insert(name.clone(), data);
        if k % 3 == 0 && k >= 3 {
            let old = format!("/mnt/shared/f-{t}-{}", k - 3);
            if files.remove(&old).is_some() {
                c.unlink(&old).unwrap();
            }
        }
        if k % 4 == 1 {
            let to = format!("{mine}/r-{k}");
            c.rename(&name, &to).unwrap();
            let d = files.remove(&name).unwrap();
            files.insert(to, d);
        }
        if k % 5 == 2 {
            c.mkdir(&format!("{mine}/d{k}"), 0o755).unwrap();
            let x = format!("{mine}/d{k}/x");
            write_file(&mut c, &x, b"x");
            files.insert(x, b"x".to_vec());
            if k >= 5 {
                let old = format!("{mine}/d{}/x", k - 5);
                c.unlink(&old).unwrap();
                files.remove(&old);
                c.rmdir(&format!("{mine}/d{}", k - 5)).unwrap();
            }
        }
        if k % 6 == 3 {
            // A second name in the shared directory for a file of mine, the first one gone.
            let from = format!("{mine}/l-{k}");
            let data = content(t * 7000 + k, 3000);
            write_file(&mut c, &from, &data);
            let to = format!("/mnt/shared/l-{t}-{k}");
            c.link(&from, &to).unwrap();
            c.unlink(&from).unwrap();
            files.insert(to, data);
        }
        // My `m`'s mode while my neighbour appends to it.
        mode = 0o600 | (k as u32 % 64);
        c.chmod(&format!("{mine}/m"), mode).unwrap();
        let piece = vec![t as u8 + 1; APPEND_LEN];
        assert_eq!(c.write(appender, &piece).unwrap(), APPEND_LEN);
        // Blocks of the shared file, my own: the file grows under every client's writes.
        for j in 0..BIG_BLOCKS {
            let b = (k * BIG_BLOCKS + j) * CLIENTS + t;
            let data = content(t * 100_000 + b, 4096);
            assert_eq!(c.pwrite(big, &data, (b * 4096) as i64).unwrap(), 4096);
        }
        // Reads and lookups through `..` while others change the directories.
        let at = (t * 7919 + k * 4099) % (COMMON_LEN - 5000);
        let fd = c.open("/mnt/common", O_RDONLY, 0).unwrap();
        let mut buf = vec![0u8; 5000];
        assert_eq!(c.pread(fd, &mut buf, at as i64).unwrap(), 5000);
        assert!(
            buf == common[at..at + 5000],
            "client {t} round {k}: common read"
        );
        c.close(fd).unwrap();
        let up = c.stat(&format!("{mine}/../shared")).unwrap();
        assert_eq!(up.ino, shared_ino);
        if k % 8 == 7 {
            // A listing that meets another client's create compacting a 512-byte chunk
            // under its cookie gets EINVAL (ufs_readdir's invalid cookie, as NetBSD's):
            // a program lists again, as this one does (a few times at most).
            let mut tries = 0;
            let names = loop {
                match c.list_dir("/mnt/shared") {
                    Err(client::Error::Errno(22)) if tries < 5 => tries += 1,
                    r => break r.unwrap(),
                }
            };
            let prefix = format!("f-{t}-");
            let listed = names
                .iter()
                .filter(|n| n.name.starts_with(prefix.as_bytes()))
                .count();
            let expect = files
                .keys()
                .filter(|p| p.starts_with(&format!("/mnt/shared/{prefix}")))
                .count();
            assert_eq!(listed, expect, "client {t} round {k}: my names in shared");
        }
    }
    c.close(big).unwrap();
    c.close(appender).unwrap();
    Left { files, mode }
}

/// Everything the clients left, checked through `check`.
fn verify(
    left: &[Left],
    mut read: impl FnMut(&str) -> Vec<u8>,
    mut mode_size: impl FnMut(&str) -> (u32, u64),
) {
    for (t, l) in left.iter().enumerate() {
        for (path, data) in &l.files {
            let got = read(path);
            assert!(
                got == *data,
                "{path}: {} bytes, expected {}",
                got.len(),
                data.len()
            );
        }
        let (mode, size) = mode_size(&format!("/mnt/t{t}/m"));
        assert_eq!(mode & 0o7777, l.mode, "t{t}/m: the last chmod holds");
        assert_eq!(size, (ROUNDS * APPEND_LEN) as u64, "t{t}/m: every append");
    }
    let big = read("/mnt/shared/big");
    assert_eq!(big.len(), ROUNDS * BIG_BLOCKS * CLIENTS * 4096);
    for (b, got) in big.chunks(4096).enumerate() {
        let t = b % CLIENTS;
        assert!(
            got == content(t * 100_000 + b, 4096),
            "big: block {b} of client {t}"
        );
    }
}

/// The engine's view of `path` (under the mount) on the unmounted image.
fn engine_ino(fs: &ffs::Fs<ffs::FileDisk>, path: &str) -> u32 {
    let mut ino = fs.root();
    for part in path.trim_start_matches("/mnt/").split('/') {
        ino = ffs::block_on(fs.lookup(ino, part.as_bytes())).unwrap();
    }
    ino
}

fn run(ufs2: bool) {
    let dir = TempDir::new("ffsconc");
    let img = image(dir.path(), ufs2);
    let drive = format!("key=/dev/dk,hostpath={},size=host,type=blk", img.display());
    let srv = Server::unix(&["-lrumpvfs", "-lrumpfs_ffs", "-c", "2", "-d", &drive]);
    let mut c = srv.client();
    c.mkdir("/mnt", 0o755).unwrap();
    mount_ffs(&mut c, "/dev/dk", "/mnt", 0).unwrap();
    c.mkdir("/mnt/shared", 0o777).unwrap();
    write_file(&mut c, "/mnt/common", &content(999, COMMON_LEN));
    write_file(&mut c, "/mnt/shared/big", b"");
    for t in 0..CLIENTS {
        c.mkdir(&format!("/mnt/t{t}"), 0o777).unwrap();
        write_file(&mut c, &format!("/mnt/t{t}/m"), b"");
    }
    let shared_ino = c.stat("/mnt/shared").unwrap().ino;

    let (tx, rx) = mpsc::channel();
    for t in 0..CLIENTS {
        let (url, tx) = (srv.url.clone(), tx.clone());
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(|| client_rounds(&url, t, shared_ino));
            let _ = tx.send((t, r));
        });
    }
    drop(tx);
    let mut left: Vec<Option<Left>> = (0..CLIENTS).map(|_| None).collect();
    let deadline = std::time::Instant::now() + BOUND;
    for _ in 0..CLIENTS {
        let wait = deadline.saturating_duration_since(std::time::Instant::now());
        let (t, r) = rx
            .recv_timeout(wait)
            .unwrap_or_else(|_| panic!("ufs2={ufs2}: clients still running after {BOUND:?}"));
        match r {
            Ok(l) => left[t] = Some(l),
            Err(e) => std::panic::resume_unwind(e),
        }
    }
    let left: Vec<Left> = left.into_iter().map(|l| l.unwrap()).collect();

    // Through the server.
    let c = std::cell::RefCell::new(c);
    verify(
        &left,
        |p| read_file(&mut c.borrow_mut(), p),
        |p| {
            let st = c.borrow_mut().stat(p).unwrap();
            (st.mode, st.size as u64)
        },
    );
    let mut c = c.into_inner();
    c.unmount("/mnt", 0).unwrap();
    drop(srv);

    // On the image: clean, and the same contents.
    let disk = ffs::FileDisk::open(&img, true).unwrap();
    let findings = ffs::block_on(ffs::check(&disk)).unwrap();
    assert!(findings.is_empty(), "ufs2={ufs2}: {findings:?}");
    let opts = ffs::MountOptions {
        read_only: true,
        ..ffs::MountOptions::default()
    };
    let fs = ffs::block_on(ffs::Fs::mount(disk, opts)).unwrap();
    verify(
        &left,
        |p| {
            let ino = engine_ino(&fs, p);
            let a = ffs::block_on(fs.getattr(ino)).unwrap();
            let mut buf = vec![0u8; a.size as usize];
            assert_eq!(ffs::block_on(fs.read(ino, 0, &mut buf)).unwrap(), buf.len());
            buf
        },
        |p| {
            let a = ffs::block_on(fs.getattr(engine_ino(&fs, p))).unwrap();
            (u32::from(a.mode), a.size)
        },
    );
}

#[test]
fn many_clients_on_one_ufs2_mount_lose_nothing_and_leave_it_clean() {
    run(true);
}

#[test]
fn many_clients_on_one_ufs1_mount_lose_nothing_and_leave_it_clean() {
    run(false);
}

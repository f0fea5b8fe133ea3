//! Differential test: one seeded random sequence of file operations run against the server's
//! rumpfs and tmpfs (over the wire, through the client) and against a temp directory on the
//! Linux host;
//! every result (errno mapped to NetBSD's numbers), and the whole tree every so often
//! (types, sizes, link counts, contents, link targets, listings), must agree.
//!
//! Seed and length: `RUMP_DIFF_SEED`, `RUMP_DIFF_OPS` (defaults 1 and 3000).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use client::fs::{O_CREAT, O_WRONLY};
use common::Server;

/// xorshift64*: small, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const NAMES: &[&str] = &[
    "a", "b", "c", "d", "a/x", "a/y", "b/x", "d/e", "d/e/f", "c/z",
];

#[derive(Debug, Clone)]
enum Op {
    Create(&'static str),
    Write(&'static str, u64, usize, u8),
    Truncate(&'static str, u64),
    Rename(&'static str, &'static str),
    Link(&'static str, &'static str),
    Unlink(&'static str),
    Mkdir(&'static str),
    Rmdir(&'static str),
    Symlink(&'static str, &'static str),
    Readdir(&'static str),
    Read(&'static str, u64, usize),
}

fn gen(r: &mut Rng) -> Op {
    let n = |r: &mut Rng| NAMES[r.below(NAMES.len() as u64) as usize];
    match r.below(11) {
        0 => Op::Create(n(r)),
        1 | 2 => Op::Write(
            n(r),
            r.below(20_000),
            1 + r.below(9000) as usize,
            r.below(256) as u8,
        ),
        3 => Op::Truncate(n(r), r.below(30_000)),
        4 => Op::Rename(n(r), n(r)),
        5 => Op::Link(n(r), n(r)),
        6 => Op::Unlink(n(r)),
        7 => Op::Mkdir(n(r)),
        8 => Op::Rmdir(n(r)),
        9 => Op::Symlink(n(r), n(r)),
        _ => match r.below(2) {
            0 => Op::Readdir(["", "a", "b", "c", "d", "d/e"][r.below(6) as usize]),
            _ => Op::Read(n(r), r.below(25_000), 1 + r.below(5000) as usize),
        },
    }
}

/// An operation's outcome, comparable across the two systems.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Data(Vec<u8>),
    Names(Vec<String>),
    Err(i32),
}

fn host_err(e: std::io::Error) -> Outcome {
    Outcome::Err(i32::from(rump_server::hosterr::to_netbsd(
        e.raw_os_error().unwrap_or(0),
    )))
}

fn host_res<T>(r: std::io::Result<T>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(e) => host_err(e),
    }
}

/// Linux and NetBSD disagree on a few errno values for the same condition; map Linux's
/// answer to NetBSD's (documented in each arm).
fn normalize_host(op: &Op, out: Outcome, root: &Path) -> Outcome {
    match (op, out) {
        // unlink(2) of a directory: Linux EISDIR, NetBSD (and POSIX) EPERM.
        (Op::Unlink(_), Outcome::Err(21)) => Outcome::Err(1),
        (_, o) => {
            let _ = root;
            o
        }
    }
}

/// Cases where POSIX lets the two kernels pick different errors for one condition.
fn equivalent(root: &Path, op: &Op, got: &Outcome, want: &Outcome) -> bool {
    let real = |p: &str| host_real(root, p);
    match (op, got, want) {
        // rename(a, a/x): "target inside source" (EINVAL, Linux checks it first) and the
        // checks of the target (a non-directory: ENOTDIR/EISDIR; a non-empty directory:
        // ENOTEMPTY) all apply; which comes first is the kernel's choice.
        (Op::Rename(a, b), Outcome::Err(20 | 21 | 66), Outcome::Err(22)) => {
            real(b).starts_with(&format!("{}/", real(a)))
        }
        // rename(a/x, a): the target is the source's own (non-empty) ancestor. Linux says
        // ENOTEMPTY from its ancestor check; the type check (EISDIR/ENOTDIR) is as valid.
        (Op::Rename(a, b), Outcome::Err(20 | 21), Outcome::Err(66)) => {
            real(a).starts_with(&format!("{}/", real(b)))
        }
        // rename(missing, bad/target): NetBSD looks up the source completely first (ENOENT);
        // Linux resolves both parents first (ENOTDIR/ELOOP from the target's path).
        (Op::Rename(a, _), Outcome::Err(2), Outcome::Err(20 | 62)) => {
            fs::symlink_metadata(root.join(a)).is_err()
        }
        _ => false,
    }
}

/// `p` with the symlinks of its directory part resolved on the host, for ancestor checks.
fn host_real(root: &Path, p: &str) -> String {
    let path = root.join(p);
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return p.to_string();
    };
    match fs::canonicalize(parent) {
        Ok(dir) => dir.join(name).to_string_lossy().into_owned(),
        Err(_) => path.to_string_lossy().into_owned(),
    }
}

fn linkat_follow(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let a = std::ffi::CString::new(a.as_os_str().as_bytes()).unwrap();
    let b = std::ffi::CString::new(b.as_os_str().as_bytes()).unwrap();
    // SAFETY: both paths are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn run_host(root: &Path, op: &Op) -> Outcome {
    let p = |s: &str| root.join(s);
    let out = match op {
        Op::Create(n) => host_res(
            fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(false)
                .open(p(n)),
        ),
        Op::Write(n, off, len, byte) => match fs::OpenOptions::new().write(true).open(p(n)) {
            Ok(f) => host_res(f.write_all_at(&vec![*byte; *len], *off)),
            Err(e) => host_err(e),
        },
        Op::Truncate(n, len) => match fs::OpenOptions::new().write(true).open(p(n)) {
            Ok(f) => host_res(f.set_len(*len)),
            Err(e) => host_err(e),
        },
        Op::Rename(a, b) => {
            // NetBSD: renaming one hard link onto another link of the same file removes the
            // source name (BSD behaviour, netbsd-abi.md §10); Linux leaves both. Model BSD.
            let same = match (fs::symlink_metadata(p(a)), fs::symlink_metadata(p(b))) {
                (Ok(x), Ok(y)) => {
                    x.ino() == y.ino() && !x.is_dir() && host_real(root, a) != host_real(root, b)
                }
                _ => false,
            };
            match fs::rename(p(a), p(b)) {
                Ok(()) if same => host_res(fs::remove_file(p(a))),
                r => host_res(r),
            }
        }
        // NetBSD's link(2) follows a symlink in its first argument (AT_SYMLINK_FOLLOW);
        // Linux's does not, so use linkat with the flag on the host.
        Op::Link(a, b) => host_res(linkat_follow(&p(a), &p(b))),
        Op::Unlink(n) => host_res(fs::remove_file(p(n))),
        Op::Mkdir(n) => {
            use std::os::unix::fs::DirBuilderExt;
            host_res(fs::DirBuilder::new().mode(0o755).create(p(n)))
        }
        Op::Rmdir(n) => host_res(fs::remove_dir(p(n))),
        Op::Symlink(target, n) => host_res(std::os::unix::fs::symlink(target, p(n))),
        Op::Readdir(n) => match fs::read_dir(p(n)) {
            Ok(rd) => {
                let mut v: Vec<String> = rd
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                v.sort();
                Outcome::Names(v)
            }
            Err(e) => host_err(e),
        },
        Op::Read(n, off, len) => match fs::File::open(p(n)) {
            Ok(f) => {
                let mut buf = vec![0u8; *len];
                match f.read_at(&mut buf, *off) {
                    Ok(k) => {
                        buf.truncate(k);
                        Outcome::Data(buf)
                    }
                    Err(e) => host_err(e),
                }
            }
            Err(e) => host_err(e),
        },
    };
    normalize_host(op, out, root)
}

fn rump_res<T>(r: client::Result<T>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(e) => Outcome::Err(e.errno().unwrap_or_else(|| panic!("transport error: {e}"))),
    }
}

fn run_rump(c: &mut client::Client, root: &str, op: &Op) -> Outcome {
    let p = |s: &str| {
        if s.is_empty() {
            root.to_string()
        } else {
            format!("{root}/{s}")
        }
    };
    let with_fd = |c: &mut client::Client,
                   n: &str,
                   flags: i32,
                   f: &mut dyn FnMut(&mut client::Client, i32) -> Outcome| {
        match c.open(&p(n), flags, 0o644) {
            Ok(fd) => {
                let o = f(c, fd);
                c.close(fd).expect("close");
                o
            }
            Err(e) => rump_res::<()>(Err(e)),
        }
    };
    match op {
        Op::Create(n) => with_fd(c, n, O_WRONLY | O_CREAT, &mut |_, _| Outcome::Ok),
        Op::Write(n, off, len, byte) => with_fd(c, n, O_WRONLY, &mut |c, fd| {
            let data = vec![*byte; *len];
            match c.pwrite(fd, &data, *off as i64) {
                Ok(k) if k == *len => Outcome::Ok,
                Ok(k) => panic!("short pwrite {k} of {len}"),
                Err(e) => rump_res::<()>(Err(e)),
            }
        }),
        Op::Truncate(n, len) => with_fd(c, n, O_WRONLY, &mut |c, fd| {
            rump_res(c.ftruncate(fd, *len as i64))
        }),
        Op::Rename(a, b) => rump_res(c.rename(&p(a), &p(b))),
        Op::Link(a, b) => rump_res(c.link(&p(a), &p(b))),
        Op::Unlink(n) => rump_res(c.unlink(&p(n))),
        Op::Mkdir(n) => rump_res(c.mkdir(&p(n), 0o755)),
        Op::Rmdir(n) => rump_res(c.rmdir(&p(n))),
        Op::Symlink(target, n) => rump_res(c.symlink(target, &p(n))),
        Op::Readdir(n) => match c.list_dir(&p(n)) {
            Ok(d) => {
                let mut v: Vec<String> = d
                    .into_iter()
                    .map(|e| String::from_utf8_lossy(&e.name).into_owned())
                    .filter(|n| n != "." && n != "..")
                    .collect();
                v.sort();
                Outcome::Names(v)
            }
            Err(e) => rump_res::<()>(Err(e)),
        },
        Op::Read(n, off, len) => with_fd(c, n, client::fs::O_RDONLY, &mut |c, fd| {
            let mut buf = vec![0u8; *len];
            match c.pread(fd, &mut buf, *off as i64) {
                Ok(k) => {
                    buf.truncate(k);
                    Outcome::Data(buf)
                }
                Err(e) => rump_res::<()>(Err(e)),
            }
        }),
    }
}

/// Type, size, link count, contents or link target of every node under a root.
#[derive(Debug, PartialEq, Eq)]
enum Node {
    Dir { nlink: u32 },
    File { nlink: u32, data: Vec<u8> },
    Link { target: Vec<u8> },
}

impl Node {
    fn kind(&self) -> String {
        match self {
            Node::Dir { nlink } => format!("dir nlink {nlink}"),
            Node::File { nlink, data } => format!("file nlink {nlink} size {}", data.len()),
            Node::Link { target } => format!("symlink -> {}", String::from_utf8_lossy(target)),
        }
    }
}

fn host_tree(root: &Path, rel: &str, out: &mut BTreeMap<String, Node>) {
    let mut names: Vec<_> = fs::read_dir(root.join(rel))
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let path: PathBuf = root.join(&r);
        let md = fs::symlink_metadata(&path).unwrap();
        let node = if md.file_type().is_symlink() {
            use std::os::unix::ffi::OsStrExt;
            Node::Link {
                target: fs::read_link(&path)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            }
        } else if md.is_dir() {
            host_tree(root, &r, out);
            Node::Dir {
                nlink: md.nlink() as u32,
            }
        } else {
            Node::File {
                nlink: md.nlink() as u32,
                data: fs::read(&path).unwrap(),
            }
        };
        out.insert(r, node);
    }
}

fn rump_tree(c: &mut client::Client, root: &str, rel: &str, out: &mut BTreeMap<String, Node>) {
    let dir = if rel.is_empty() {
        root.to_string()
    } else {
        format!("{root}/{rel}")
    };
    let mut names: Vec<String> = c
        .list_dir(&dir)
        .unwrap()
        .into_iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .filter(|n| n != "." && n != "..")
        .collect();
    names.sort();
    for name in names {
        let r = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let path = format!("{root}/{r}");
        let st = c.lstat(&path).unwrap();
        let node = match st.mode & 0o170000 {
            0o120000 => Node::Link {
                target: c.readlink(&path).unwrap(),
            },
            0o040000 => {
                rump_tree(c, root, &r, out);
                Node::Dir { nlink: st.nlink }
            }
            _ => {
                let fd = c.open(&path, 0, 0).unwrap();
                let mut data = vec![0u8; st.size as usize];
                let mut got = 0;
                while got < data.len() {
                    let k = c.pread(fd, &mut data[got..], got as i64).unwrap();
                    assert!(k > 0, "short file {path}");
                    got += k;
                }
                c.close(fd).unwrap();
                Node::File {
                    nlink: st.nlink,
                    data,
                }
            }
        };
        out.insert(r, node);
    }
}

#[test]
fn rumpfs_matches_the_host_file_system() {
    differential(&["-lrumpvfs", "-c", "2"], |_| {}, "/tmp/diff");
}

/// The same sequence inside a tmpfs mounted on `/mnt` (no limits).
#[test]
fn tmpfs_matches_the_host_file_system() {
    differential(
        &["-lrumpvfs", "-lrumpfs_tmpfs", "-c", "2"],
        |c| {
            c.mkdir("/mnt", 0o755).unwrap();
            let a = client::fs::tmpfs_args(0, 0, 0, 0, 0o755);
            c.mount_tmpfs("/mnt", 0, &a).unwrap();
        },
        "/mnt/diff",
    );
}

/// The same sequence on FFS (a fresh UFS2 image from the engine's newfs, on an etfs block
/// device through the buffer cache, with a small `-r`); afterwards the image unmounts
/// clean for rump's checker.
#[test]
fn ffs_matches_the_host_file_system() {
    let dir = common::TempDir::new("diffffs");
    let img = dir.path().join("ffs.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let disk = ffs::FileDisk::open(&img, false).unwrap();
    ffs::block_on(ffs::newfs(&disk, &ffs::NewfsOptions::default())).unwrap();
    drop(disk);
    let drive = format!("key=/dev/dk,hostpath={},size=host", img.display());
    let args = [
        "-lrumpvfs",
        "-lrumpfs_ffs",
        "-c",
        "2",
        "-r",
        "16m",
        "-d",
        &drive,
    ];
    let (_srv, mut c, host) = differential(
        &args,
        |c| {
            c.mkdir("/mnt", 0o755).unwrap();
            common::mount_ffs(c, "/dev/dk", "/mnt", 0).unwrap();
        },
        "/mnt/diff",
    );
    c.unmount("/mnt", 0).unwrap();
    let disk = ffs::FileDisk::open(&img, true).unwrap();
    let findings = ffs::block_on(ffs::check(&disk)).unwrap();
    assert!(findings.is_empty(), "{findings:?}");
    // Mounted again, the image holds exactly what the host tree holds.
    common::mount_ffs(&mut c, "/dev/dk", "/mnt", 0).unwrap();
    let (mut h, mut r) = (BTreeMap::new(), BTreeMap::new());
    host_tree(host.path(), "", &mut h);
    rump_tree(&mut c, "/mnt/diff", "", &mut r);
    assert_eq!(r, h, "after unmount and remount");
}

/// Runs the sequence in `root` on a server started with `args`, after `setup` (which
/// mounts a file system, if any); returns the server and the client.
fn differential(
    args: &[&str],
    setup: impl Fn(&mut client::Client),
    root: &str,
) -> (Server, client::Client, common::TempDir) {
    let seed: u64 = std::env::var("RUMP_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let ops: usize = std::env::var("RUMP_DIFF_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let srv = Server::unix(args);
    let mut c = srv.client();
    let host = common::TempDir::new("diff");
    setup(&mut c);
    c.mkdir(root, 0o755).unwrap();
    c.umask(0).unwrap();
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    for i in 0..ops {
        let op = gen(&mut rng);
        let want = run_host(host.path(), &op);
        let got = run_rump(&mut c, root, &op);
        if got != want && !equivalent(host.path(), &op, &got, &want) {
            let mut h = BTreeMap::new();
            host_tree(host.path(), "", &mut h);
            let tree: Vec<String> = h
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.kind()))
                .collect();
            panic!("op #{i} {op:?} (seed {seed}): server {got:?}, host {want:?}; tree {tree:?}");
        }
        if i % 250 == 249 || i + 1 == ops {
            let (mut h, mut r) = (BTreeMap::new(), BTreeMap::new());
            host_tree(host.path(), "", &mut h);
            rump_tree(&mut c, root, "", &mut r);
            assert_eq!(r, h, "trees differ after op #{i} (seed {seed})");
        }
    }
    (srv, c, host)
}

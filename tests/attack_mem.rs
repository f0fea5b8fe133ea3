//! Memory past `-r`: clients flood what grows with their calls — symbolic links with long
//! targets, hard links with long names, POSIX record locks — and each flood must stop at the
//! budget (`ENOSPC` for names and nodes, `ENOMEM` for lock records, as NetBSD's tmpfs and
//! `lf_advlock` return) before the server's RSS passes `-r` plus a fixed overhead. What the
//! flooding client removes (or drops by disconnecting) is given back, other clients are
//! served meanwhile, and a halt still syncs.

mod common;

use std::path::Path;

use client::{Buf, Client};
use common::{Server, TempDir};

const ENOSPC: i32 = 28;
const ENOMEM: i32 = 12;
const SYS_LINK: u32 = 9;
const SYS_UNLINK: u32 = 10;
const SYS_SYMLINK: u32 = 57;
const SYS_FCNTL: u32 = 92;
const F_SETLK: u64 = 8;
const F_WRLCK: i16 = 3;
const O_RDWR: i32 = 2;
const O_CREAT: i32 = 0x200;

/// The `-r` of every server here.
const R_MIB: u64 = 16;
/// What the server may hold beyond `-r`: the binary, its libraries and the heap of an idle
/// server with `-r 16m` (about 5 MiB, debug build), allocator slack and per-loop buffers
/// (README "Limits": 256 × 16 KiB of receive buffers per loop). Documented in README.
const OVERHEAD_MIB: u64 = 24;

/// A server with `-r 16m` and a 1 MiB etfs drive `/dk` (to check that a halt syncs).
fn server(img: &Path) -> Server {
    let drive = format!("key=/dk,hostpath={},size=1m", img.display());
    Server::unix(&["-c", "2", "-lrumpvfs", "-r", "16m", "-d", &drive])
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// One system call: its number, arguments and the client memory it reads.
struct Call<'a> {
    nr: u32,
    args: Vec<u64>,
    mem: Vec<&'a [u8]>,
}

fn call<'a>(nr: u32, args: &[u64], mem: &[&'a [u8]]) -> Call<'a> {
    Call {
        nr,
        args: args.to_vec(),
        mem: mem.to_vec(),
    }
}

/// Runs `calls` pipelined, 128 at a time, serving their copies; returns each call's errno
/// (0: success) in order, stopping after the first batch with an error. `watch` runs after
/// each batch (the RSS check).
fn run_batched(c: &mut Client, calls: &[Call<'_>], mut watch: impl FnMut()) -> Vec<i32> {
    let mut out = Vec::with_capacity(calls.len());
    for chunk in calls.chunks(128) {
        let mut reqnos = Vec::with_capacity(chunk.len());
        for k in chunk {
            reqnos.push(c.send_syscall(k.nr, &k.args).unwrap());
        }
        let mut bufs: Vec<Buf<'_>> = chunk
            .iter()
            .flat_map(|k| k.mem.iter().map(|m| Buf::In(m)))
            .collect();
        let mut got = std::collections::HashMap::new();
        for _ in 0..chunk.len() {
            let (reqno, r) = c.recv_syscall(&mut bufs).unwrap();
            got.insert(reqno, r.err().unwrap_or(0));
        }
        let errs: Vec<i32> = reqnos.iter().map(|r| got[r]).collect();
        let failed = errs.iter().any(|&e| e != 0);
        out.extend(errs);
        watch();
        if failed {
            break;
        }
    }
    out
}

/// Watches the server's RSS against `-r` plus the overhead; returns the highest seen.
struct Rss {
    pid: u32,
    max_kib: u64,
}

impl Rss {
    fn check(&mut self, what: &str) {
        let now = common::rss_kib(self.pid);
        self.max_kib = self.max_kib.max(now);
        assert!(
            now <= (R_MIB + OVERHEAD_MIB) << 10,
            "{what}: server RSS {now} KiB passed -r {R_MIB} MiB + {OVERHEAD_MIB} MiB"
        );
    }
}

/// Another client is served, and a write to the drive survives a halt (which syncs).
fn others_served_and_halt_syncs(mut srv: Server, img: &Path) {
    let mut other = common::connect_retry(&srv.url, "bystander");
    assert_eq!(other.getpid().unwrap().1, 1);
    let fd = other.open("/dk", O_RDWR, 0).unwrap();
    assert_eq!(other.pwrite(fd, b"synced by the halt", 4096).unwrap(), 18);
    drop(other);
    let out = srv.halt_with(Path::new(common::HALT), &[]);
    assert!(out.status.success(), "{out:?}");
    assert!(srv.wait_exit(30).success());
    let host = std::fs::read(img).unwrap();
    assert_eq!(&host[4096..4096 + 18], b"synced by the halt");
}

#[test]
fn a_symlink_flood_with_long_targets_stops_at_the_budget() {
    let tmp = TempDir::new("symflood");
    let img = tmp.path().join("dk.img");
    let srv = server(&img);
    let mut rss = Rss {
        pid: srv.pid(),
        max_kib: common::rss_kib(srv.pid()),
    };
    let idle_kib = rss.max_kib;
    let mut c = srv.client();
    c.mkdir("/tmp/s", 0o755).unwrap();
    let target = cstr(&"t".repeat(1000));
    let names: Vec<Vec<u8>> = (0..100_000).map(|i| cstr(&format!("/tmp/s/{i}"))).collect();
    let calls: Vec<Call<'_>> = names
        .iter()
        .map(|n| {
            let args = [client::addr_of(&target), client::addr_of(n)];
            call(SYS_SYMLINK, &args, &[&target, n])
        })
        .collect();
    let errs = run_batched(&mut c, &calls, || rss.check("symlink flood"));
    let made = errs.iter().take_while(|&&e| e == 0).count();
    eprintln!(
        "symlink flood: {made} made, idle RSS {idle_kib} KiB, highest {} KiB",
        rss.max_kib
    );
    assert!(
        made < 100_000,
        "100,000 symlinks of 1000 bytes fit in -r 16m"
    );
    assert_eq!(errs[made], ENOSPC, "the symlink past the budget");
    rss.check("symlink flood");
    // Other clients are still served; removing the links gives the budget back.
    let mut other = common::connect_retry(&srv.url, "other");
    assert_eq!(other.getpid().unwrap().1, 1);
    let unlinks: Vec<Call<'_>> = names[..made]
        .iter()
        .map(|n| call(SYS_UNLINK, &[client::addr_of(n)], &[n]))
        .collect();
    let errs = run_batched(&mut c, &unlinks, || {});
    assert!(errs.iter().all(|&e| e == 0));
    c.symlink(&"t".repeat(1000), "/tmp/s/again").unwrap();
    let fd = c.open("/tmp/s/file", O_RDWR | O_CREAT, 0o644).unwrap();
    assert_eq!(c.pwrite(fd, &[7; 65536], 0).unwrap(), 65536);
    drop((c, other));
    others_served_and_halt_syncs(srv, &img);
}

#[test]
fn a_hard_link_flood_with_long_names_stops_at_the_budget() {
    let tmp = TempDir::new("linkflood");
    let img = tmp.path().join("dk.img");
    let srv = server(&img);
    let mut rss = Rss {
        pid: srv.pid(),
        max_kib: common::rss_kib(srv.pid()),
    };
    let idle_kib = rss.max_kib;
    let mut c = srv.client();
    c.mkdir("/tmp/h", 0o755).unwrap();
    // Names of NAME_MAX (255) bytes; a new file every 20,000 links (LINK_MAX is 32767).
    const N: usize = 150_000;
    let files: Vec<Vec<u8>> = (0..N / 20_000 + 1)
        .map(|k| cstr(&format!("/tmp/h/f{k}")))
        .collect();
    for f in &files {
        let path = std::str::from_utf8(&f[..f.len() - 1]).unwrap();
        let fd = c.open(path, O_RDWR | O_CREAT, 0o644).unwrap();
        c.close(fd).unwrap();
    }
    let names: Vec<Vec<u8>> = (0..N).map(|i| cstr(&format!("/tmp/h/{i:0>248}"))).collect();
    let calls: Vec<Call<'_>> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let f = &files[i / 20_000];
            call(SYS_LINK, &[client::addr_of(f), client::addr_of(n)], &[f, n])
        })
        .collect();
    let errs = run_batched(&mut c, &calls, || rss.check("link flood"));
    let made = errs.iter().take_while(|&&e| e == 0).count();
    eprintln!(
        "link flood: {made} links made, idle RSS {idle_kib} KiB, highest {} KiB",
        rss.max_kib
    );
    assert!(made < N, "{N} links of 255-byte names fit in -r 16m");
    assert_eq!(errs[made], ENOSPC, "the link past the budget");
    let mut other = common::connect_retry(&srv.url, "other");
    assert_eq!(other.getpid().unwrap().1, 1);
    let unlinks: Vec<Call<'_>> = names[..made]
        .iter()
        .map(|n| call(SYS_UNLINK, &[client::addr_of(n)], &[n]))
        .collect();
    let errs = run_batched(&mut c, &unlinks, || {});
    assert!(errs.iter().all(|&e| e == 0));
    let f0 = std::str::from_utf8(&files[0][..files[0].len() - 1]).unwrap();
    c.link(f0, &format!("/tmp/h/{}", "n".repeat(255))).unwrap();
    drop((c, other));
    others_served_and_halt_syncs(srv, &img);
}

/// NetBSD's `struct flock` for a write lock of one byte at `start`.
fn flock_byte(start: i64) -> Vec<u8> {
    let mut fl = vec![0u8; 24];
    fl[..8].copy_from_slice(&start.to_le_bytes());
    fl[8..16].copy_from_slice(&1i64.to_le_bytes());
    fl[20..22].copy_from_slice(&F_WRLCK.to_le_bytes());
    fl
}

/// `fcntl(fd, F_SETLK, fl)` for each of `fls`.
fn lock_calls(fd: i32, fls: &[Vec<u8>]) -> Vec<Call<'_>> {
    fls.iter()
        .map(|fl| call(SYS_FCNTL, &[fd as u64, F_SETLK, client::addr_of(fl)], &[fl]))
        .collect()
}

#[test]
fn a_record_lock_flood_stops_at_the_budget_and_a_disconnect_gives_it_back() {
    let tmp = TempDir::new("lockflood");
    let img = tmp.path().join("dk.img");
    let srv = server(&img);
    let mut rss = Rss {
        pid: srv.pid(),
        max_kib: common::rss_kib(srv.pid()),
    };
    let idle_kib = rss.max_kib;
    // Every other byte, so no two locks merge: 1000 locks on each of 120 files (descriptors
    // stay open: a close would drop them) per process, 8 processes: 960,000 records.
    const PER_FILE: usize = 1000;
    const FILES: usize = 120;
    const PROCS: usize = 8;
    let fls: Vec<Vec<u8>> = (0..PER_FILE as i64).map(|i| flock_byte(2 * i)).collect();
    let mut flooders = Vec::new();
    let mut total = 0;
    let mut refused = None;
    'flood: for p in 0..PROCS {
        let mut c = common::connect_retry(&srv.url, "flooder");
        for k in 0..FILES {
            // The budget may run out on a file's node before its locks: also a bound.
            let fd = match c.open(&format!("/tmp/l{p}-{k}"), O_RDWR | O_CREAT, 0o644) {
                Ok(fd) => fd,
                Err(e) if e.errno() == Some(ENOSPC) => {
                    refused = Some(ENOSPC);
                    flooders.push(c);
                    break 'flood;
                }
                Err(e) => panic!("open: {e}"),
            };
            let calls = lock_calls(fd, &fls);
            let errs = run_batched(&mut c, &calls, || rss.check("lock flood"));
            let made = errs.iter().take_while(|&&e| e == 0).count();
            total += made;
            if made < PER_FILE {
                refused = Some(errs[made]);
                flooders.push(c);
                break 'flood;
            }
        }
        flooders.push(c);
    }
    eprintln!(
        "lock flood: {total} locks, idle RSS {idle_kib} KiB, highest {} KiB",
        rss.max_kib
    );
    assert!(
        matches!(refused, Some(ENOMEM) | Some(ENOSPC)),
        "{total} lock records fit in -r 16m: {refused:?}"
    );
    assert!(total > 10_000, "only {total} lock records before the bound");
    let mut other = common::connect_retry(&srv.url, "other");
    assert_eq!(other.getpid().unwrap().1, 1);
    // The flooding clients go away: their locks, and their budget, go with them.
    let last = format!("/tmp/l{}-0", flooders.len() - 1);
    drop(flooders);
    let calls_fd = |other: &mut client::Client| other.open(&last, O_RDWR | O_CREAT, 0o644);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let fd = loop {
        match calls_fd(&mut other) {
            Ok(fd) => break fd,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("waiting for the budget: {e}");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("the budget never came back: {e}"),
        }
    };
    let calls = lock_calls(fd, &fls);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while run_batched(&mut other, &calls, || {})
        .iter()
        .any(|&e| e != 0)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the budget never came back"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let f = other
        .open("/tmp/afterwards", O_RDWR | O_CREAT, 0o644)
        .unwrap();
    assert_eq!(other.pwrite(f, &[1; 65536], 0).unwrap(), 65536);
    drop(other);
    others_served_and_halt_syncs(srv, &img);
}

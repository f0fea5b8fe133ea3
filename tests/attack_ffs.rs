//! Issue 19, item 4: a client crafts an FFS directory through the raw device its file system
//! is mounted from — a directory claiming 5.5e11 bytes whose direct pointers all lead to its
//! one real block and whose single, double and triple indirect blocks all point to one block
//! each — and looks a name up in it. The lookup must end (`EIO`) at once instead of walking
//! 1.7e7 blocks; another client on the same loop (`-c 1`) must keep getting answers while it
//! runs; and once the attacker disconnects the server must stop working for it.

mod common;

use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use client::fs::{O_CREAT, O_RDWR};
use client::Client;
use common::{mount_ffs, Server, TempDir};
use ffs::inode::Dinode;
use ffs::sb::Superblock;

const EIO: i32 = 5;
/// What the crafted directory claims (rounded down to whole blocks).
const CLAIMED_SIZE: u64 = 550_000_000_000;
/// How long another client's getpid may take while the attack runs: a liveness bound.
const GETPID_BOUND: Duration = Duration::from_secs(2);

/// A fresh UFS2 image of 32 MiB from the engine's newfs, and its superblock.
fn image(dir: &Path) -> (std::path::PathBuf, Superblock) {
    let img = dir.join("ffs.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    let disk = ffs::FileDisk::open(&img, false).unwrap();
    ffs::block_on(ffs::newfs(&disk, &ffs::NewfsOptions::default())).unwrap();
    let sb = ffs::block_on(Superblock::find(&disk)).unwrap();
    (img, sb)
}

fn read_inode(c: &mut Client, dev: i32, sb: &Superblock, ino: u64) -> Dinode {
    let mut raw = vec![0u8; sb.inode_size() as usize];
    let off = sb.inode_offset(ino as u32) as i64;
    assert_eq!(c.pread(dev, &mut raw, off).unwrap(), raw.len());
    Dinode::decode(sb.ufs2, &raw)
}

/// One block of pointers, all `to`.
fn pointers(sb: &Superblock, to: u64) -> Vec<u8> {
    let psize = if sb.ufs2 { 8 } else { 4 };
    let mut b = Vec::with_capacity(sb.bsize as usize);
    while b.len() < sb.bsize as usize {
        b.extend_from_slice(&to.to_le_bytes()[..psize]);
    }
    b
}

/// Starts a one-loop server on the image, and as a client: mounts it, makes directories
/// `d` and `e` and a file `f` of four blocks, unmounts, then rewrites `d`'s and `e`'s
/// inodes and `f`'s blocks through the block device `/dev/dk`, and mounts again.
/// `d`: every pointer leads to one block of empty directory chunks (`f`'s last; its
/// indirect blocks are `f`'s first three), 5.5e11 bytes and all the space the file system
/// has. `e`: a plausible size (within its claimed space) but
/// all twelve direct pointers to one block.
fn crafted_server(dir: &Path) -> (Server, Client) {
    let (img, sb) = image(dir);
    let drive = format!("key=/dev/dk,hostpath={},size=host,type=blk", img.display());
    let srv = Server::unix(&["-lrumpvfs", "-lrumpfs_ffs", "-c", "1", "-d", &drive]);
    let mut c = srv.client();
    c.mkdir("/mnt", 0o755).unwrap();
    mount_ffs(&mut c, "/dev/dk", "/mnt", 0).unwrap();
    c.mkdir("/mnt/d", 0o755).unwrap();
    c.mkdir("/mnt/e", 0o755).unwrap();
    let fd = c.open("/mnt/f", O_CREAT | O_RDWR, 0o644).unwrap();
    let bs = sb.bsize as usize;
    assert_eq!(c.pwrite(fd, &vec![1u8; 4 * bs], 0).unwrap(), 4 * bs);
    c.close(fd).unwrap();
    let (d, e, f) = (
        c.stat("/mnt/d").unwrap().ino,
        c.stat("/mnt/e").unwrap().ino,
        c.stat("/mnt/f").unwrap().ino,
    );
    c.unmount("/mnt", 0).unwrap();

    let dev = c.open("/dev/dk", O_RDWR, 0).unwrap();
    let fi = read_inode(&mut c, dev, &sb, f);
    let mut di = read_inode(&mut c, dev, &sb, d);
    let (x, y, z, one) = (fi.db[0], fi.db[1], fi.db[2], fi.db[3]);
    for (blk, to) in [(x, one), (y, x), (z, y)] {
        let off = sb.frag_offset(blk) as i64;
        assert_eq!(c.pwrite(dev, &pointers(&sb, to), off).unwrap(), bs);
    }
    // The one block: a whole block of valid, empty directory chunks.
    let mut chunks = vec![0u8; bs];
    for ch in chunks.chunks_mut(512) {
        ch[4..6].copy_from_slice(&512u16.to_le_bytes());
    }
    let off = sb.frag_offset(one) as i64;
    assert_eq!(c.pwrite(dev, &chunks, off).unwrap(), bs);
    let all_space = sb.bytes() / 512;
    di.db = [one; 12];
    di.ib = [x, y, z];
    di.size = CLAIMED_SIZE / sb.bsize as u64 * sb.bsize as u64;
    di.blocks = all_space;
    let raw = di.encode().to_vec();
    c.pwrite(dev, &raw, sb.inode_offset(d as u32) as i64)
        .unwrap();
    let mut ei = read_inode(&mut c, dev, &sb, e);
    ei.db = [one; 12];
    ei.size = 12 * sb.bsize as u64;
    ei.blocks = all_space;
    let raw = ei.encode().to_vec();
    c.pwrite(dev, &raw, sb.inode_offset(e as u32) as i64)
        .unwrap();
    c.close(dev).unwrap();
    mount_ffs(&mut c, "/dev/dk", "/mnt", 0).unwrap();
    (srv, c)
}

/// A client calling getpid in a loop until told to stop: (slowest call, calls made).
fn getpid_watcher(url: &str) -> (Arc<AtomicBool>, std::thread::JoinHandle<(Duration, u64)>) {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let mut c = common::connect_retry(url, "victim");
    c.getpid().unwrap();
    let h = std::thread::spawn(move || {
        let (mut max, mut n) = (Duration::ZERO, 0u64);
        while !s.load(Ordering::Relaxed) {
            let t = Instant::now();
            c.getpid().unwrap();
            max = max.max(t.elapsed());
            n += 1;
        }
        (max, n)
    });
    (stop, h)
}

/// Runs `f` on a thread; its result, or a panic after `secs` seconds.
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("{what}: still running after {secs} s"))
}

#[test]
fn a_crafted_directory_fails_at_once_and_the_loop_keeps_serving() {
    let dir = TempDir::new("atkffs");
    let (srv, c) = crafted_server(dir.path());

    // Baseline: the victim alone.
    let (stop, h) = getpid_watcher(&srv.url);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (before, _) = h.join().unwrap();

    let (stop, h) = getpid_watcher(&srv.url);
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    let (c, errs) = within(30, "lookups in the crafted directories", move || {
        let mut c = c;
        let errs: Vec<Option<i32>> = ["/mnt/d/nope", "/mnt/e/nope", "/mnt/d/x/y"]
            .iter()
            .map(|p| c.stat(p).unwrap_err().errno())
            .collect();
        (c, errs)
    });
    let took = t.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (during, calls) = h.join().unwrap();
    eprintln!(
        "lookups took {took:?}; getpid max latency: {before:?} alone, {during:?} during the \
         attack ({calls} calls)"
    );
    assert_eq!(
        errs,
        vec![Some(EIO); 3],
        "the crafted directories are corrupt"
    );
    assert!(took < Duration::from_secs(5), "lookups took {took:?}");
    assert!(during < GETPID_BOUND, "getpid waited {during:?}");
    // The file system still works otherwise, and unmounts.
    let mut c = c;
    assert_eq!(
        c.stat("/mnt/f").unwrap().size,
        4 * c.statvfs("/mnt").unwrap().bsize as i64
    );
    c.unmount("/mnt", 0).unwrap();
    drop(srv);
}

/// Utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn the_server_stops_working_for_an_attacker_that_went_away() {
    let dir = TempDir::new("atkffs2");
    let (srv, mut c) = crafted_server(dir.path());
    // SAFETY: dup(2) of the client's socket gives a descriptor that nothing else owns.
    let fd = unsafe { libc::dup(c.as_raw_fd()) };
    assert!(fd >= 0);
    // SAFETY: `fd` is a fresh descriptor we own.
    let twin = unsafe { UnixStream::from_raw_fd(fd) };
    let attack = std::thread::spawn(move || {
        let r = c.stat("/mnt/d/nope");
        drop(c);
        r.map(drop).map_err(|e| e.errno())
    });
    std::thread::sleep(Duration::from_millis(300));
    // The attacker vanishes mid-lookup (if the lookup still runs).
    twin.shutdown(std::net::Shutdown::Both).unwrap();
    let r = within(30, "the attacker's lookup", move || attack.join().unwrap());
    assert!(r.is_err(), "the lookup cannot succeed: {r:?}");
    std::thread::sleep(Duration::from_millis(500));
    let t0 = cpu_ticks(srv.pid());
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_ticks(srv.pid()) - t0;
    eprintln!("server CPU in the second after the disconnect: {spent} ticks");
    assert!(
        spent < 10,
        "the server still works: {spent} ticks in a second"
    );
    let mut v = srv.client();
    within(5, "a new client's getpid", move || v.getpid().unwrap());
}

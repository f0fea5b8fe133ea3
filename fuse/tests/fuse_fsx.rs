//! An fsx-style checker: seeded random writes, reads, truncates, fsyncs, reopens and renames
//! on a file in the mount and on its twin in a host directory; every read and every size
//! must agree. `RUMP_FSX_SEED=s` replays one seed, `RUMP_FSX_OPS=n` sets the length.

mod common;

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::{have_fuse, Backing, Mount, Server, TempDir};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const MAX_LEN: u64 = 1 << 20;

struct Twin {
    dir: PathBuf,
    name: &'static str,
    f: File,
}

impl Twin {
    fn open(dir: &Path, name: &'static str, create: bool) -> Twin {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .open(dir.join(name))
            .unwrap();
        Twin {
            dir: dir.to_path_buf(),
            name,
            f,
        }
    }
}

fn run(backing: Backing, opts: &str, seed: u64, ops: usize) {
    let srv = Server::start(backing);
    let m = Mount::new(&srv.url, opts);
    let host = TempDir::new("fsx-host");
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut a = Twin::open(&m.mnt, "fsx", true);
    let mut b = Twin::open(&host.0, "fsx", true);
    let mut log: Vec<String> = Vec::new();
    let ctx = |log: &Vec<String>, i: usize| {
        let tail: Vec<&String> = log.iter().rev().take(8).collect();
        format!("{backing:?} -o {opts:?} seed {seed} op {i}; last ops (newest first): {tail:?}")
    };
    for i in 0..ops {
        let size = b.f.metadata().unwrap().len();
        match rng.below(100) {
            0..=34 => {
                let off = rng.below(MAX_LEN);
                let len = 1 + rng.below((MAX_LEN - off).min(256 << 10));
                let fill = rng.next();
                let data: Vec<u8> = (0..len)
                    .map(|k| (fill.wrapping_add(k * 31) >> 3) as u8)
                    .collect();
                log.push(format!("write {off}+{len}"));
                a.f.write_all_at(&data, off)
                    .unwrap_or_else(|e| panic!("{e}: {}", ctx(&log, i)));
                b.f.write_all_at(&data, off).unwrap();
            }
            35..=69 => {
                let off = rng.below(size + 4096);
                let len = 1 + rng.below(128 << 10);
                log.push(format!("read {off}+{len} (size {size})"));
                let mut x = vec![0u8; len as usize];
                let mut y = vec![0u8; len as usize];
                let nx = read_full(&a.f, &mut x, off);
                let ny = read_full(&b.f, &mut y, off);
                assert_eq!(nx, ny, "short read: {}", ctx(&log, i));
                if x[..nx] != y[..ny] {
                    let k = (0..nx).find(|&k| x[k] != y[k]).unwrap_or(0);
                    panic!("data differ at {}: {}", off + k as u64, ctx(&log, i));
                }
            }
            70..=79 => {
                let len = rng.below(MAX_LEN);
                log.push(format!("truncate {len}"));
                a.f.set_len(len).unwrap();
                b.f.set_len(len).unwrap();
            }
            80..=84 => {
                log.push("fsync".into());
                a.f.sync_all().unwrap();
            }
            85..=91 => {
                log.push("reopen".into());
                a = Twin::open(&a.dir, a.name, false);
                b = Twin::open(&b.dir, b.name, false);
            }
            92..=95 => {
                // Rename away and back, the descriptor still open.
                log.push("rename".into());
                fs::rename(a.dir.join("fsx"), a.dir.join("fsx.moved")).unwrap();
                fs::rename(a.dir.join("fsx.moved"), a.dir.join("fsx")).unwrap();
            }
            _ => {
                log.push("stat".into());
                let sa = fs::metadata(a.dir.join("fsx")).unwrap().len();
                assert_eq!(sa, size, "size: {}", ctx(&log, i));
            }
        }
    }
    let mnt_dir = a.dir.clone();
    drop(a); // close: with the host's writeback cache, this writes the dirty pages back
    let x = fs::read(mnt_dir.join("fsx")).unwrap();
    let y = fs::read(b.dir.join("fsx")).unwrap();
    assert!(x == y, "final contents differ: {}", ctx(&log, ops));
    // And the rump kernel holds the same bytes.
    let mut c = srv.wait_client();
    assert_eq!(c.stat("/m/fsx").unwrap().size, y.len() as i64);
    let fd = c.open("/m/fsx", 0, 0).unwrap();
    let mut z = vec![0u8; y.len()];
    let mut off = 0;
    while off < z.len() {
        let end = (off + 65536).min(z.len());
        let n = c.pread(fd, &mut z[off..end], off as i64).unwrap();
        assert!(n > 0, "short file in the rump kernel: {}", ctx(&log, ops));
        off += n;
    }
    assert!(z == y, "the rump kernel's bytes differ: {}", ctx(&log, ops));
    eprintln!(
        "fsx {backing:?} seed {seed}: {ops} operations agree ({} bytes)",
        y.len()
    );
}

fn read_full(f: &File, buf: &mut [u8], off: u64) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], off + n as u64).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

fn seeds() -> Vec<u64> {
    match std::env::var("RUMP_FSX_SEED") {
        Ok(s) => vec![s.parse().expect("RUMP_FSX_SEED is a number")],
        Err(_) => vec![1, 2],
    }
}

fn ops() -> usize {
    std::env::var("RUMP_FSX_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1500)
}

#[test]
fn fsx_on_tmpfs() {
    if have_fuse() {
        for s in seeds() {
            run(Backing::Tmpfs, "", s, ops());
        }
    }
}

#[test]
fn fsx_on_ffs() {
    if have_fuse() {
        for s in seeds() {
            run(Backing::Ffs, "", s, ops());
        }
    }
}

/// The host's writeback cache and kept page cache (`-o writeback_cache,kernel_cache`): the
/// same agreement, and the rump kernel has every byte once the files are closed.
#[test]
fn fsx_with_host_caching() {
    if have_fuse() {
        for s in seeds() {
            run(
                Backing::Tmpfs,
                "writeback_cache,kernel_cache",
                s + 100,
                ops(),
            );
        }
    }
}

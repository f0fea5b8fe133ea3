//! Mounts an FFS block device in a running server and creates a file of a given size on it
//! (for benches/run-ffs.sh: the mount stays after this program exits).
//!
//! `cargo run --release --example ffs_setup -- URL DEVICE DIR FILE BYTES`
//! e.g. `ffs_setup unix:///tmp/rump.sock /dev/dk /mnt /mnt/big 268435456`; DEVICE `-` mounts
//! nothing (the file is made in DIR of the root file system: a memory file, for comparison).

use client::Client;

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 5 {
        eprintln!("usage: ffs_setup URL DEVICE DIR FILE BYTES");
        std::process::exit(1);
    }
    let (url, dev, dir, file) = (&a[0], &a[1], &a[2], &a[3]);
    let bytes: u64 = a[4].parse().expect("BYTES: a number");
    let mut c = Client::connect(url).unwrap_or_else(|e| {
        eprintln!("ffs_setup: connect {url}: {e}");
        std::process::exit(1)
    });
    let _ = c.mkdir(dir, 0o755);
    if dev == "-" {
        // No device: a memory file of the root file system.
    } else if let Err(e) = c.mount_ffs(dev, dir, 0) {
        eprintln!("ffs_setup: mount ffs {dev} on {dir}: {e}");
        std::process::exit(1);
    }
    let fd = c
        .open(file, client::fs::O_CREAT | client::fs::O_RDWR, 0o644)
        .expect("create the file");
    let chunk = vec![0x5au8; 1 << 20];
    let mut off = 0u64;
    while off < bytes {
        let n = (bytes - off).min(chunk.len() as u64) as usize;
        off += c.pwrite(fd, &chunk[..n], off as i64).expect("write") as u64;
    }
    c.fsync(fd).expect("fsync");
    c.close(fd).expect("close");
    println!("mounted {dev} on {dir}; {file}: {bytes} bytes");
}

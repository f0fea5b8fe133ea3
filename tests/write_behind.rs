//! Write-behind in the buffer cache (issue 13): with more than a quarter of the cache
//! dirty, blocks go back to the host file in the background, before any fsync, close or
//! sync; fsync still makes everything durable, and a halt loses nothing.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use client::fs::O_RDWR;
use common::{Server, TempDir};

const MIB: usize = 1 << 20;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 253) as u8 ^ 0x5a).collect()
}

/// Bytes of `want` (at offset 0 of the host file) already on the host.
fn on_host(img: &Path, want: &[u8]) -> usize {
    let host = std::fs::read(img).unwrap();
    host.chunks(4096)
        .zip(want.chunks(4096))
        .filter(|(h, w)| h == w)
        .map(|(_, w)| w.len())
        .sum()
}

#[test]
fn dirty_blocks_past_the_threshold_reach_the_host_before_any_sync() {
    let dir = TempDir::new("write_behind");
    let img = dir.path().join("dk.img");
    std::fs::write(&img, vec![0u8; 8 * MIB]).unwrap();
    let d = format!("key=/dk,hostpath={},size=host", img.display());
    // -r 16m: an 8 MiB cache; write-behind past 2 MiB dirty, down to 1 MiB.
    let mut srv = Server::unix(&["-lrumpvfs", "-r", "16m", "-d", &d]);
    let mut c = srv.client();
    let fd = c.open("/dk", O_RDWR, 0).unwrap();
    let data = pattern(4 * MIB);
    for (i, chunk) in data.chunks(65536).enumerate() {
        assert_eq!(
            c.pwrite(fd, chunk, (i * 65536) as i64).unwrap(),
            chunk.len()
        );
    }
    // Without write-behind nothing would be on the host yet: the 4 MiB fit in the cache.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = on_host(&img, &data);
    while seen < 2 * MIB && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        seen = on_host(&img, &data);
    }
    assert!(
        seen >= 2 * MIB,
        "{seen} bytes on the host before fsync: write-behind should leave at most ~2 MiB dirty"
    );
    assert!(
        seen < 4 * MIB,
        "not everything: write-behind stops at its low mark"
    );
    c.fsync(fd).unwrap();
    assert_eq!(on_host(&img, &data), 4 * MIB, "fsync wrote the rest");
    // More, never synced: the halt writes it back.
    let more = pattern(3 * MIB + 4096);
    for (i, chunk) in more.chunks(65536).enumerate() {
        let off = 4 * MIB + i * 65536;
        assert_eq!(c.pwrite(fd, chunk, off as i64).unwrap(), chunk.len());
    }
    // Halted with the device still open (its last close would write it back too).
    let out = srv.halt_with(Path::new(common::HALT), &[]);
    assert!(out.status.success(), "rump_halt: {out:?}");
    srv.wait_exit(30);
    drop(c);
    let host = std::fs::read(&img).unwrap();
    assert!(host[..4 * MIB] == data[..], "the fsynced data");
    assert!(host[4 * MIB..7 * MIB + 4096] == more[..], "the halt's data");
    assert!(host[7 * MIB + 4096..].iter().all(|&b| b == 0));
}

//! Buffer cache tests: hits and misses, single-flight fills across threads, write-back,
//! eviction safety, scan resistance, injected faults.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::bio::park_on;
use crate::hostio::{FaultConfig, FaultyFile, HostFile, MemFile, FAIL_SCALE};
use crate::Errno;

const BS: usize = 4096;

fn pattern(blocks: usize) -> Vec<u8> {
    (0..blocks * BS)
        .map(|i| (i / BS * 7 + i % 251) as u8)
        .collect()
}

fn setup(blocks: usize, cache_blocks: usize) -> (Arc<MemFile>, Arc<BDev>, BufCache) {
    let mem = Arc::new(MemFile::new(pattern(blocks)));
    let dev = BDev::new(mem.clone(), 0, (blocks * BS) as u64);
    let cache = BufCache::new((cache_blocks * BS) as u64, BS, 1);
    (mem, dev, cache)
}

fn read(c: &BufCache, d: &Arc<BDev>, blk: u64) -> Result<Vec<u8>, Errno> {
    let mut out = vec![0; BS];
    park_on(c.read(d, blk, 0, &mut out)).map(|_| out)
}

#[test]
fn hit_and_miss() {
    let (mem, dev, c) = setup(8, 8);
    let want = pattern(8);
    assert_eq!(read(&c, &dev, 3).unwrap(), &want[3 * BS..4 * BS]);
    let mut part = [0; 10];
    park_on(c.read(&dev, 3, 100, &mut part)).unwrap();
    assert_eq!(&part, &want[3 * BS + 100..3 * BS + 110]);
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.host_reads, s.buffers), (1, 1, 1, 1));
    assert_eq!(mem.counts().0, 1);
}

#[test]
fn concurrent_misses_share_one_host_read() {
    let (mem, dev, c) = setup(4, 8);
    let c = Arc::new(c);
    mem.hold_reads(true);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (c, dev) = (c.clone(), dev.clone());
            std::thread::spawn(move || read(&c, &dev, 2))
        })
        .collect();
    // Give every thread time to miss and go to sleep on the filling buffer.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(mem.counts().0, 1);
    mem.hold_reads(false);
    let want = pattern(4);
    for t in threads {
        assert_eq!(t.join().unwrap().unwrap(), &want[2 * BS..3 * BS]);
    }
    assert_eq!(mem.counts().0, 1);
    assert_eq!(c.stats().host_reads, 1);
}

#[test]
fn writes_reach_the_host_on_sync() {
    let (mem, dev, c) = setup(4, 8);
    park_on(c.write(&dev, 1, 10, b"partial")).unwrap();
    park_on(c.write(&dev, 3, 0, &[9; BS])).unwrap();
    // The partial write read its block first; the whole-block write did not.
    assert_eq!(mem.counts(), (1, 0, 0));
    assert_eq!(c.stats().dirty, 2);
    park_on(c.sync_dev(&dev)).unwrap();
    assert_eq!(mem.counts(), (1, 2, 1));
    let mut want = pattern(4);
    want[BS + 10..BS + 17].copy_from_slice(b"partial");
    want[3 * BS..].fill(9);
    assert_eq!(mem.contents(), want);
    assert_eq!(c.stats().dirty, 0);
    // Nothing dirty: sync writes nothing more but still syncs the host.
    park_on(c.sync_all()).unwrap();
    assert_eq!(mem.counts(), (1, 2, 1));
}

#[test]
fn eviction_writes_dirty_data_back_and_spares_buffers_in_use() {
    let (mem, dev, c) = setup(64, 4);
    let c = Arc::new(c);
    mem.hold_reads(true);
    let filler = {
        let (c, dev) = (c.clone(), dev.clone());
        std::thread::spawn(move || read(&c, &dev, 50))
    };
    std::thread::sleep(Duration::from_millis(50));
    // Many whole-block writes through a 4-buffer cache: every eviction writes back first.
    for b in 0..40u64 {
        park_on(c.write(&dev, b, 0, &[b as u8 + 1; BS])).unwrap();
        assert!(c.stats().buffers <= 4);
    }
    assert!(mem.counts().1 >= 36);
    mem.hold_reads(false);
    assert_eq!(
        filler.join().unwrap().unwrap(),
        &pattern(64)[50 * BS..51 * BS]
    );
    assert_eq!(mem.counts().0, 1, "the filling buffer was never evicted");
    park_on(c.sync_all()).unwrap();
    let host = mem.contents();
    for b in 0..40usize {
        assert!(
            host[b * BS..(b + 1) * BS].iter().all(|&x| x == b as u8 + 1),
            "{b}"
        );
    }
}

#[test]
fn a_sequential_scan_does_not_evict_the_hot_set() {
    let (mem, dev, c) = setup(2000, 100);
    for _ in 0..3 {
        for b in 0..20 {
            read(&c, &dev, b).unwrap();
        }
    }
    for b in 100..1100 {
        read(&c, &dev, b).unwrap();
    }
    let before = mem.counts().0;
    for b in 0..20 {
        read(&c, &dev, b).unwrap();
    }
    assert_eq!(
        mem.counts().0,
        before,
        "hot blocks were evicted by the scan"
    );
    assert!(c.stats().buffers <= 100);
}

#[test]
fn ghost_hits_enter_main() {
    let (mem, dev, c) = setup(200, 20);
    // Seen once, evicted by a scan, seen again: goes to main and survives the next scan.
    read(&c, &dev, 0).unwrap();
    for b in 100..125 {
        read(&c, &dev, b).unwrap();
    }
    read(&c, &dev, 0).unwrap();
    for b in 140..180 {
        read(&c, &dev, b).unwrap();
    }
    let before = mem.counts().0;
    read(&c, &dev, 0).unwrap();
    assert_eq!(mem.counts().0, before);
}

#[test]
fn injected_faults_surface_as_netbsd_errno_and_keep_dirty_data() {
    let mem = Arc::new(MemFile::new(pattern(4)));
    let eio: Arc<dyn HostFile> = Arc::new(FaultyFile::new(
        mem.clone(),
        FaultConfig {
            seed: 3,
            eio: FAIL_SCALE,
            ..FaultConfig::default()
        },
    ));
    let dev = BDev::new(eio, 0, (4 * BS) as u64);
    let c = BufCache::new((8 * BS) as u64, BS, 2);
    assert_eq!(read(&c, &dev, 0), Err(Errno::EIO));
    assert_eq!(c.stats().buffers, 0, "a failed fill leaves no buffer");

    let full: Arc<dyn HostFile> = Arc::new(FaultyFile::new(
        mem.clone(),
        FaultConfig {
            seed: 3,
            enospc: FAIL_SCALE,
            ..FaultConfig::default()
        },
    ));
    let dev = BDev::new(full, 0, (4 * BS) as u64);
    park_on(c.write(&dev, 1, 0, &[5; BS])).unwrap();
    assert_eq!(park_on(c.sync_dev(&dev)), Err(Errno::ENOSPC));
    assert_eq!(c.stats().dirty, 1, "the data stays dirty in the cache");
    assert_eq!(read(&c, &dev, 1).unwrap(), vec![5; BS]);
    assert_eq!(mem.contents(), pattern(4));
}

#[test]
fn a_window_ends_mid_block() {
    let mem = Arc::new(MemFile::new(pattern(4)));
    // Window of 1.5 blocks from byte 1000: block 1 has 2048 bytes inside it.
    let dev = BDev::new(mem.clone(), 1000, (BS + BS / 2) as u64);
    let c = BufCache::new((8 * BS) as u64, BS, 1);
    let b1 = read(&c, &dev, 1).unwrap();
    let want = pattern(4);
    assert_eq!(&b1[..BS / 2], &want[1000 + BS..1000 + BS + BS / 2]);
    assert!(b1[BS / 2..].iter().all(|&x| x == 0));
    park_on(c.write(&dev, 1, 0, &[7; BS / 2])).unwrap();
    park_on(c.sync_dev(&dev)).unwrap();
    let host = mem.contents();
    assert_eq!(host.len(), 4 * BS, "nothing written past the window");
    assert!(host[1000 + BS..1000 + BS + BS / 2].iter().all(|&x| x == 7));
    assert_eq!(&host[1000 + BS + BS / 2..], &want[1000 + BS + BS / 2..]);
}

#[test]
fn the_cache_grows_within_the_budget_and_shrinks_for_file_data() {
    use crate::mem::Budget;
    let budget = Budget::new(64 * BS as u64);
    let mem = Arc::new(MemFile::new(pattern(64)));
    let dev = BDev::new(mem.clone(), 0, (64 * BS) as u64);
    let c = BufCache::with_budget((64 * BS) as u64, BS, 2, &budget);
    let reserve = BufCache::reserve_bytes(BS, 2);
    assert_eq!(budget.used(), reserve);
    let other = Budget::child(&budget, u64::MAX);
    other.try_charge(40 * BS as u64).unwrap();
    for blk in 0..64 {
        assert_eq!(
            read(&c, &dev, blk).unwrap(),
            &pattern(64)[blk as usize * BS..][..BS]
        );
        assert!(budget.used() <= budget.limit());
    }
    let held = budget.used() - reserve - 40 * BS as u64;
    assert!(
        held <= (24 * BS) as u64 - reserve,
        "the cache stayed in what was left"
    );
    // File data wants more: the cache gives back clean buffers down to its reserve.
    other.release(40 * BS as u64);
    other.try_charge(64 * BS as u64 - reserve).unwrap();
    assert_eq!(budget.used(), budget.limit());
    // Still serves, recycling its reserve.
    for blk in (0..64).rev() {
        assert_eq!(
            read(&c, &dev, blk).unwrap(),
            &pattern(64)[blk as usize * BS..][..BS]
        );
    }
    assert!(budget.used() <= budget.limit());
    // Dirty buffers are not reclaimed: they are written back, never dropped.
    park_on(c.write(&dev, 5, 0, &[9; BS])).unwrap();
    other.release(64 * BS as u64 - reserve);
    assert_eq!(budget.try_charge(budget.limit()), Err(Errno::ENOSPC));
    park_on(c.sync_all()).unwrap();
    assert_eq!(&mem.contents()[5 * BS..6 * BS], &[9; BS]);
    drop(c);
    assert_eq!(budget.used(), 0);
}

#[test]
fn spans_cut_a_range_at_block_boundaries() {
    let c = BufCache::new((8 * BS) as u64, BS, 1);
    let bs = BS as u64;
    let got: Vec<_> = c.spans(bs - 3, BS + 5).collect();
    assert_eq!(
        got,
        vec![(0, BS - 3, 0..3), (1, 0, 3..3 + BS), (2, 0, 3 + BS..BS + 5)]
    );
    assert_eq!(c.spans(2 * bs, BS).collect::<Vec<_>>(), vec![(2, 0, 0..BS)]);
    assert_eq!(c.spans(7, 0).count(), 0);
}

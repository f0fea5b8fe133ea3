//! Write-behind: dirty blocks past the threshold go back to the host without a sync, in the
//! background where the host runs tasks, and nothing is lost when a write-back fails.

use std::cell::RefCell;
use std::sync::Arc;

use super::*;
use crate::bio::park_on;
use crate::host::{BackgroundTask, Host};
use crate::hostio::{FaultConfig, FaultyFile, HostFile, MemFile, FAIL_SCALE};
use crate::Errno;

const BS: usize = 4096;

fn pattern(blocks: usize) -> Vec<u8> {
    (0..blocks * BS)
        .map(|i| (i / BS * 7 + i % 251) as u8)
        .collect()
}

fn block(host: &[u8], blk: usize) -> &[u8] {
    &host[blk * BS..(blk + 1) * BS]
}

/// Writes block `blk` whole with the byte `blk + 1`.
fn put(c: &BufCache, dev: &Arc<BDev>, blk: u64) {
    park_on(c.write(dev, blk, 0, &[blk as u8 + 1; BS])).unwrap();
}

#[test]
fn past_the_threshold_dirty_blocks_go_back_in_block_order_without_a_sync() {
    let mem = Arc::new(MemFile::new(pattern(64)));
    let dev = BDev::new(mem.clone(), 0, (64 * BS) as u64);
    let c = BufCache::new((64 * BS) as u64, BS, 1);
    c.set_write_behind((16 * BS) as u64, (8 * BS) as u64);
    // Written out of order; the 17th dirty block starts a pass (no host: in this task).
    let order: Vec<u64> = (0..17).rev().collect();
    for &b in &order[..16] {
        put(&c, &dev, b);
    }
    assert_eq!(c.stats().host_writes, 0, "16 dirty is not past 16");
    put(&c, &dev, order[16]);
    let s = c.stats();
    assert_eq!((s.dirty, s.behind_writes, s.host_writes), (8, 9, 9));
    assert_eq!(mem.counts().2, 0, "write-behind never syncs the host");
    let host = mem.contents();
    for b in 0..17 {
        let want: Vec<u8> = match b < 9 {
            true => vec![b as u8 + 1; BS],
            false => block(&pattern(64), b).to_vec(),
        };
        assert_eq!(
            block(&host, b),
            &want[..],
            "block {b}: the lowest nine went back"
        );
    }
    // Sync writes only what is still dirty, then syncs.
    park_on(c.sync_dev(&dev)).unwrap();
    let s = c.stats();
    assert_eq!((s.dirty, s.host_writes), (0, 17));
    assert_eq!(mem.counts().2, 1);
    let host = mem.contents();
    for b in 0..17 {
        assert_eq!(block(&host, b), &[b as u8 + 1; BS][..]);
    }
    assert_eq!(&host[17 * BS..], &pattern(64)[17 * BS..]);
}

thread_local! {
    static QUEUED: RefCell<Vec<BackgroundTask>> = const { RefCell::new(Vec::new()) };
}

/// A host whose loop is this test's thread: spawned tasks wait in `QUEUED` until run.
struct QueueHost;

impl Host for QueueHost {
    fn console_write(&self, _: &[u8]) {}
    fn clock_realtime(&self) -> (i64, i64) {
        (0, 0)
    }
    fn clock_monotonic(&self) -> (i64, i64) {
        (0, 0)
    }
    fn random(&self, buf: &mut [u8]) {
        buf.fill(4)
    }
    fn spawn(&self, task: BackgroundTask) -> Result<(), BackgroundTask> {
        QUEUED.with(|q| q.borrow_mut().push(task));
        Ok(())
    }
}

#[test]
fn with_a_host_loop_the_pass_runs_in_the_background_one_at_a_time() {
    use crate::mem::Budget;
    let mem = Arc::new(MemFile::new(pattern(64)));
    let dev = BDev::new(mem.clone(), 0, (64 * BS) as u64);
    let c = BufCache::with_budget((64 * BS) as u64, BS, 1, &Budget::unlimited());
    c.set_host(Arc::new(QueueHost));
    c.set_write_behind((16 * BS) as u64, (8 * BS) as u64);
    for b in 0..20 {
        put(&c, &dev, b);
    }
    // The write that passed the threshold did not wait: one task queued, none written.
    assert_eq!(QUEUED.with(|q| q.borrow().len()), 1, "one pass at a time");
    assert_eq!(c.stats().host_writes, 0);
    // A block written again while queued stays the newest data.
    park_on(c.write(&dev, 3, 0, &[0xee; BS])).unwrap();
    let task = QUEUED.with(|q| q.borrow_mut().pop()).unwrap();
    park_on(task);
    let s = c.stats();
    assert_eq!((s.dirty, s.behind_writes), (8, 12));
    assert_eq!(block(&mem.contents(), 3), &[0xee; BS][..]);
    // The pass is over: the next write past the threshold queues a new one.
    for b in 20..29 {
        put(&c, &dev, b);
    }
    assert_eq!(QUEUED.with(|q| q.borrow().len()), 1);
    QUEUED.with(|q| q.borrow_mut().clear());
    // A dropped pass (its loop went) leaves its blocks dirty and lets the next one start.
    put(&c, &dev, 40);
    assert_eq!(QUEUED.with(|q| q.borrow().len()), 1);
    park_on(c.sync_all()).unwrap();
    assert_eq!(c.stats().dirty, 0);
    let host = mem.contents();
    for b in (0..29).chain([40]) {
        let want = if b == 3 { 0xee } else { b as u8 + 1 };
        assert_eq!(block(&host, b), &[want; BS][..], "block {b}");
    }
    QUEUED.with(|q| q.borrow_mut().clear());
}

#[test]
fn a_failing_host_loses_nothing_and_is_not_asked_at_every_write() {
    let mem = Arc::new(MemFile::new(pattern(64)));
    let full: Arc<dyn HostFile> = Arc::new(FaultyFile::new(
        mem.clone(),
        FaultConfig {
            seed: 5,
            enospc: FAIL_SCALE,
            ..FaultConfig::default()
        },
    ));
    let dev = BDev::new(full, 0, (64 * BS) as u64);
    let c = BufCache::new((64 * BS) as u64, BS, 1);
    c.set_write_behind((16 * BS) as u64, (8 * BS) as u64);
    for b in 0..17 {
        put(&c, &dev, b);
    }
    let s = c.stats();
    assert_eq!((s.dirty, s.behind_writes, s.host_writes), (17, 0, 1));
    // The next writes do not try again until eight more blocks are dirty.
    for b in 17..24 {
        put(&c, &dev, b);
    }
    assert_eq!(c.stats().host_writes, 1);
    for b in 24..26 {
        put(&c, &dev, b);
    }
    assert_eq!(c.stats().host_writes, 2, "tried again past 17 + 8");
    // Everything is still in the cache, and sync reports the host's error.
    for b in 0..26 {
        let mut out = vec![0; BS];
        park_on(c.read(&dev, b, 0, &mut out)).unwrap();
        assert_eq!(out, vec![b as u8 + 1; BS]);
    }
    assert_eq!(park_on(c.sync_dev(&dev)), Err(Errno::ENOSPC));
    assert_eq!(c.stats().dirty, 26);
    assert_eq!(mem.contents(), pattern(64), "nothing half written");
}

#[test]
fn a_miss_evicts_past_victims_another_device_cannot_write() {
    let bad_mem = Arc::new(MemFile::new(pattern(8)));
    let full: Arc<dyn HostFile> = Arc::new(FaultyFile::new(
        bad_mem.clone(),
        FaultConfig {
            seed: 9,
            enospc: FAIL_SCALE,
            ..FaultConfig::default()
        },
    ));
    let bad = BDev::new(full, 0, (8 * BS) as u64);
    let mem = Arc::new(MemFile::new(pattern(16)));
    let good = BDev::new(mem.clone(), 0, (16 * BS) as u64);
    let c = BufCache::new((8 * BS) as u64, BS, 1);
    // Three dirty blocks of the failing device first in line, then five clean ones.
    for b in 0..3 {
        put(&c, &bad, b);
    }
    let read = |blk: u64| {
        let mut out = vec![0; BS];
        park_on(c.read(&good, blk, 0, &mut out)).map(|()| out)
    };
    for b in 0..5 {
        assert_eq!(read(b).unwrap(), block(&pattern(16), b as usize));
    }
    // The miss tries the three (each fails: the device's host is full), then evicts a
    // clean block of the good device; before, it failed with the first victim's error.
    assert_eq!(read(5).unwrap(), block(&pattern(16), 5));
    let s = c.stats();
    assert_eq!((s.dirty, s.host_writes), (3, 3));
    for b in 0..3 {
        let mut out = vec![0; BS];
        park_on(c.read(&bad, b, 0, &mut out)).unwrap();
        assert_eq!(out, vec![b as u8 + 1; BS], "kept dirty, not dropped");
    }
    assert_eq!(bad_mem.contents(), pattern(8));
}

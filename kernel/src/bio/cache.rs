//! The cache proper: shards, buffer states, S3-FIFO queues, fill and write-back.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use crate::host::{BackgroundTask, Host};
use crate::hostio::{read_full, write_full, HostFile};
use crate::mem::{Budget, Reclaim};
use crate::sync::WaitQueue;
use crate::{Errno, Result};

/// Block size of the cache (`bs`); etfs devices are addressed in 512-byte sectors on top.
pub const DEFAULT_BLOCK_SIZE: usize = 4096;

/// Largest 2-bit frequency of S3-FIFO.
const FREQ_MAX: u8 = 3;

/// A block device the cache serves: a window `[base, base + size)` of a host file.
pub struct BDev {
    id: u64,
    file: Arc<dyn HostFile>,
    base: u64,
    size: u64,
}

static NEXT_DEV: AtomicU64 = AtomicU64::new(1);

impl BDev {
    /// A device over `size` bytes of `file` from `base`.
    pub fn new(file: Arc<dyn HostFile>, base: u64, size: u64) -> Arc<BDev> {
        Arc::new(BDev {
            id: NEXT_DEV.fetch_add(1, Ordering::Relaxed),
            file,
            base,
            size,
        })
    }

    /// The host file.
    pub fn file(&self) -> &Arc<dyn HostFile> {
        &self.file
    }

    /// Window start in the host file.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Window size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
}

type Key = (u64, u64);

/// A write-back started: fill generation, write generation, device, data copy.
type Pending = (u64, u64, Arc<BDev>, Vec<u8>);

/// Counters of one cache (summed over shards).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Accesses served from a valid buffer.
    pub hits: u64,
    /// Accesses that found no buffer.
    pub misses: u64,
    /// Host reads issued (fills).
    pub host_reads: u64,
    /// Host writes issued (write-backs).
    pub host_writes: u64,
    /// Buffers evicted.
    pub evictions: u64,
    /// Buffers held now.
    pub buffers: u64,
    /// Dirty buffers now.
    pub dirty: u64,
    /// Blocks written back by write-behind (not by sync, fsync or eviction).
    pub behind_writes: u64,
}

struct Slot {
    key: Key,
    dev: Arc<BDev>,
    /// The host read is in flight; `data` is lent to it.
    filling: bool,
    /// A write-back (of a copy) is in flight.
    writing: bool,
    dirty: bool,
    /// Bumped by every write, so a write-back knows whether it wrote the latest data.
    wgen: u64,
    /// Identifies this residency of the key (a refill gets a new one).
    gen: u64,
    freq: u8,
    data: Vec<u8>,
}

impl Slot {
    fn in_use(&self) -> bool {
        self.filling || self.writing
    }
}

struct ShardState {
    /// The kernel budget buffers past the shard's reserve are charged to.
    budget: Arc<Budget>,
    /// Bytes per buffer.
    bs: usize,
    map: HashMap<Key, usize>,
    slots: Vec<Option<Slot>>,
    free_slots: Vec<usize>,
    small: VecDeque<usize>,
    main: VecDeque<usize>,
    ghost: VecDeque<Key>,
    ghost_set: HashSet<Key>,
    free_bufs: Vec<Vec<u8>>,
    /// Buffers allocated and not lost (live slots + free list).
    bufs: usize,
    next_gen: u64,
    /// Bumped by every change that may let a waiter proceed.
    epoch: u64,
    stats: CacheStats,
}

impl ShardState {
    fn new(budget: Arc<Budget>, bs: usize) -> ShardState {
        ShardState {
            budget,
            bs,
            map: HashMap::new(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            small: VecDeque::new(),
            main: VecDeque::new(),
            ghost: VecDeque::new(),
            ghost_set: HashSet::new(),
            free_bufs: Vec::new(),
            bufs: 0,
            next_gen: 0,
            epoch: 0,
            stats: CacheStats::default(),
        }
    }

    /// One buffer fewer: its charge goes back unless it was part of the reserve.
    fn lose_buf(&mut self) {
        if self.bufs > MIN_SHARD_BUFS {
            self.budget.release(self.bs as u64);
        }
        self.bufs -= 1;
    }

    /// The most buffers this shard may hold for the next access: `cap`, unless a new
    /// buffer is needed and the budget has no room for it, in which case the shard
    /// recycles one of its own.
    fn allowance(&mut self, cap: usize) -> usize {
        let grow = self.free_bufs.is_empty() && self.map.len() < cap && self.map.len() >= self.bufs;
        if !grow || self.bufs < MIN_SHARD_BUFS {
            return cap;
        }
        if self.budget.try_charge_no_reclaim(self.bs as u64) {
            cap
        } else {
            self.map.len().max(MIN_SHARD_BUFS)
        }
    }

    /// Gives back up to `want` bytes: spare buffers first, then clean, unused blocks in
    /// eviction order; never below the reserve. Returns the bytes released.
    fn shrink(&mut self, want: u64) -> u64 {
        let mut got = 0;
        while got < want && self.bufs > MIN_SHARD_BUFS {
            if self.free_bufs.pop().is_some() {
                self.lose_buf();
                got += self.bs as u64;
                continue;
            }
            let small_first = !self.small.is_empty();
            let v = match self.scan(small_first) {
                Some(v) => Some(v),
                None => self.scan(!small_first),
            };
            match v {
                Some(Victim::Clean(idx)) => {
                    self.remove(idx);
                    self.stats.evictions += 1;
                }
                _ => break,
            }
        }
        got
    }
}

enum Victim {
    Clean(usize),
    Dirty(usize),
}

/// What an access does next.
enum Step<R> {
    Done(R),
    /// Sleep until the shard's epoch moves past this one.
    Wait(u64),
    /// Write this victim back to make room.
    WriteBack(Key),
    /// Read the block from the host into the buffer (fill generation).
    Fill(u64, Vec<u8>),
}

enum Room {
    Ready,
    WriteBack(usize),
    Full,
}

impl ShardState {
    fn slot(&mut self, idx: usize) -> &mut Slot {
        self.slots[idx].as_mut().expect("live slot")
    }

    fn find(&mut self, key: Key) -> Option<(usize, &mut Slot)> {
        let idx = *self.map.get(&key)?;
        Some((idx, self.slot(idx)))
    }

    fn buf(&mut self, bs: usize) -> Vec<u8> {
        match self.free_bufs.pop() {
            Some(b) => b,
            None => {
                // Charged in `allowance` (or part of the reserve).
                self.bufs += 1;
                vec![0; bs]
            }
        }
    }

    fn insert(&mut self, key: Key, dev: Arc<BDev>, data: Vec<u8>, filling: bool) -> usize {
        self.next_gen += 1;
        let slot = Slot {
            key,
            dev,
            filling,
            writing: false,
            dirty: false,
            wgen: 0,
            gen: self.next_gen,
            freq: 0,
            data,
        };
        let idx = match self.free_slots.pop() {
            Some(i) => {
                self.slots[i] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        };
        self.map.insert(key, idx);
        if self.ghost_set.remove(&key) {
            self.main.push_back(idx);
        } else {
            self.small.push_back(idx);
        }
        idx
    }

    /// Drops slot `idx` (already out of both queues); its buffer goes to the free list.
    fn remove(&mut self, idx: usize) {
        let s = self.slots[idx].take().expect("live slot");
        self.map.remove(&s.key);
        self.free_slots.push(idx);
        if s.data.is_empty() {
            self.lose_buf();
        } else {
            self.free_bufs.push(s.data);
        }
        self.epoch += 1;
    }

    /// Drops slot `idx` wherever it is queued (error paths).
    fn remove_queued(&mut self, idx: usize) {
        self.small.retain(|&i| i != idx);
        self.main.retain(|&i| i != idx);
        self.remove(idx);
    }

    fn remember(&mut self, key: Key, cap: usize) {
        if self.ghost_set.insert(key) {
            self.ghost.push_back(key);
        }
        while self.ghost.len() > cap {
            if let Some(k) = self.ghost.pop_front() {
                self.ghost_set.remove(&k);
            }
        }
    }

    /// One S3-FIFO pass over the small (`small`) or main queue for an evictable buffer.
    fn scan(&mut self, small: bool) -> Option<Victim> {
        let len = if small {
            self.small.len()
        } else {
            self.main.len()
        };
        let mut budget = len * (usize::from(FREQ_MAX) + 1) + 1;
        while budget > 0 {
            budget -= 1;
            let q = if small {
                &mut self.small
            } else {
                &mut self.main
            };
            let idx = q.pop_front()?;
            let s = self.slot(idx);
            if s.in_use() {
                let q = if small {
                    &mut self.small
                } else {
                    &mut self.main
                };
                q.push_back(idx);
                continue;
            }
            if s.freq > 0 {
                if small {
                    s.freq = 0;
                    self.main.push_back(idx);
                } else {
                    s.freq -= 1;
                    self.main.push_back(idx);
                }
                continue;
            }
            let dirty = s.dirty;
            let q = if small {
                &mut self.small
            } else {
                &mut self.main
            };
            if dirty {
                q.push_front(idx);
                return Some(Victim::Dirty(idx));
            }
            return Some(Victim::Clean(idx));
        }
        None
    }

    /// Evicts until a new buffer fits in `cap`, or says what must happen first.
    fn make_room(&mut self, cap: usize) -> Room {
        while self.map.len() >= cap {
            let small_first = self.small.len() >= (cap / 10).max(1) || self.main.is_empty();
            let v = match self.scan(small_first) {
                Some(v) => Some(v),
                None => self.scan(!small_first),
            };
            match v {
                Some(Victim::Clean(idx)) => {
                    let key = self.slot(idx).key;
                    self.remember(key, cap);
                    self.remove(idx);
                    self.stats.evictions += 1;
                }
                Some(Victim::Dirty(idx)) => return Room::WriteBack(idx),
                None => return Room::Full,
            }
        }
        Room::Ready
    }
}

struct Shard {
    st: Mutex<ShardState>,
    wq: WaitQueue,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, ShardState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps until the shard's epoch moves past `seen`.
    async fn wait_change(&self, seen: u64) {
        self.wq
            .wait_for(|| (self.lock().epoch != seen).then_some(()))
            .await;
    }

    fn changed(&self, mut st: MutexGuard<'_, ShardState>) {
        st.epoch += 1;
        drop(st);
        self.wq.wake_all();
    }
}

/// Undoes an unfinished fill when its future is dropped: the slot goes, waiters retry.
struct FillGuard<'a> {
    shard: &'a Shard,
    key: Key,
    gen: u64,
    armed: bool,
}

impl Drop for FillGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut st = self.shard.lock();
        if let Some((idx, s)) = st.find(self.key) {
            if s.gen == self.gen {
                st.remove_queued(idx);
            }
        }
        self.shard.changed(st);
    }
}

/// Clears a write-back's `writing` mark if its future is dropped; the buffer stays dirty.
struct WriteGuard<'a> {
    shard: &'a Shard,
    key: Key,
    gen: u64,
    armed: bool,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut st = self.shard.lock();
        if let Some((_, s)) = st.find(self.key) {
            if s.gen == self.gen {
                s.writing = false;
            }
        }
        self.shard.changed(st);
    }
}

/// The buffer cache. See the module documentation for the design.
pub struct BufCache {
    shards: Box<[Shard]>,
    mask: u64,
    bs: usize,
    /// Buffers per shard.
    cap: usize,
    budget: Arc<Budget>,
    /// Dirty buffers (kept at each clean/dirty change, under the shard's lock).
    dirty: AtomicU64,
    /// Write-behind starts when more buffers than this are dirty ...
    behind_high: AtomicU64,
    /// ... and writes back until no more than this many are.
    behind_low: AtomicU64,
    /// A write-behind pass is running (one at a time).
    behind_running: AtomicBool,
    /// After a failed write-behind write: the dirty count above which the next pass may
    /// start (so a host that refuses writes is not asked again at every write).
    behind_retry_at: AtomicU64,
    behind_writes: AtomicU64,
    /// This cache, for a write-behind task that outlives the write that started it.
    me: Weak<BufCache>,
    /// Where write-behind runs in the background (`Host::spawn`); without one it runs in
    /// the task of the write that started it.
    host: OnceLock<Arc<dyn Host>>,
}

/// Clears `behind_running` when a write-behind pass ends or is dropped.
struct BehindGuard<'a>(&'a AtomicBool);

impl Drop for BehindGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The cache a background write-behind task holds; clears `behind_running` when dropped.
struct BehindOwner(Arc<BufCache>);

impl Drop for BehindOwner {
    fn drop(&mut self) {
        self.0.behind_running.store(false, Ordering::Release);
    }
}

impl Drop for BufCache {
    fn drop(&mut self) {
        for sh in self.shards.iter() {
            let st = sh.lock();
            let extra = st.bufs.saturating_sub(MIN_SHARD_BUFS);
            self.budget.release((extra * self.bs) as u64);
        }
        self.budget
            .release((MIN_SHARD_BUFS * self.shards.len() * self.bs) as u64);
    }
}

impl Reclaim for BufCache {
    fn reclaim(&self, want: u64) -> u64 {
        let mut got = 0;
        for sh in self.shards.iter() {
            if got >= want {
                break;
            }
            let mut st = sh.lock();
            got += st.shrink(want - got);
            sh.changed(st);
        }
        got
    }
}

/// Smallest number of buffers a shard keeps (so a shard always has an evictable buffer).
const MIN_SHARD_BUFS: usize = 4;

/// Dirty victims an access tries to write back, each failing, before it fails itself.
const VICTIM_TRIES: u32 = 4;

/// Write-behind starts past this fraction (1/n) of the cache dirty, and writes back to half.
const BEHIND_HIGH_DIV: u64 = 4;
/// ... but never below this many buffers.
const BEHIND_MIN: u64 = 16;

impl BufCache {
    /// A cache of about `capacity_bytes` in blocks of `block_size` bytes (a power of two,
    /// at least 512), over `shards` shards (rounded up to a power of two). The capacity is
    /// split evenly; each shard keeps at least a few buffers.
    pub fn new(capacity_bytes: u64, block_size: usize, shards: usize) -> BufCache {
        BufCache::charged_to(capacity_bytes, block_size, shards, &Budget::unlimited())
    }

    /// A cache as [`BufCache::new`] whose buffers are charged to `budget`, which may ask it
    /// to shrink (it registers as a reclaimer). Each shard's few reserved buffers are
    /// charged up front (forced); the rest only as the cache grows.
    pub fn with_budget(
        capacity_bytes: u64,
        block_size: usize,
        shards: usize,
        budget: &Arc<Budget>,
    ) -> Arc<BufCache> {
        let c = Arc::new_cyclic(|me| {
            let mut c = BufCache::charged_to(capacity_bytes, block_size, shards, budget);
            c.me = me.clone();
            c
        });
        let weak = Arc::downgrade(&c);
        budget.add_reclaimer(weak);
        c
    }

    /// Bytes the reserve of a cache of these dimensions takes from the budget.
    pub fn reserve_bytes(block_size: usize, shards: usize) -> u64 {
        (MIN_SHARD_BUFS * shards.max(1).next_power_of_two() * block_size) as u64
    }

    fn charged_to(
        capacity_bytes: u64,
        block_size: usize,
        shards: usize,
        budget: &Arc<Budget>,
    ) -> BufCache {
        assert!(block_size.is_power_of_two() && block_size >= 512);
        let n = shards.max(1).next_power_of_two();
        let total = (capacity_bytes / block_size as u64) as usize;
        let cap = (total / n).max(MIN_SHARD_BUFS);
        let shards = (0..n)
            .map(|_| Shard {
                st: Mutex::new(ShardState::new(budget.clone(), block_size)),
                wq: WaitQueue::new(),
            })
            .collect();
        budget.charge_forced(BufCache::reserve_bytes(block_size, n));
        let high = ((cap * n) as u64 / BEHIND_HIGH_DIV).max(BEHIND_MIN);
        BufCache {
            shards,
            mask: n as u64 - 1,
            bs: block_size,
            cap,
            budget: budget.clone(),
            dirty: AtomicU64::new(0),
            behind_high: AtomicU64::new(high),
            behind_low: AtomicU64::new(high / 2),
            behind_running: AtomicBool::new(false),
            behind_retry_at: AtomicU64::new(0),
            behind_writes: AtomicU64::new(0),
            me: Weak::new(),
            host: OnceLock::new(),
        }
    }

    /// Runs write-behind on `host`'s loops from now on (`Host::spawn`).
    pub fn set_host(&self, host: Arc<dyn Host>) {
        let _ = self.host.set(host);
    }

    /// Write-behind starts when more than `high_bytes` are dirty and writes back, in block
    /// order, until at most `low_bytes` are (both rounded down to blocks; `low` at most
    /// `high`).
    pub fn set_write_behind(&self, high_bytes: u64, low_bytes: u64) {
        let high = high_bytes / self.bs as u64;
        self.behind_high.store(high, Ordering::Relaxed);
        self.behind_low
            .store((low_bytes / self.bs as u64).min(high), Ordering::Relaxed);
    }

    /// Dirty bytes above which write-behind starts.
    pub fn write_behind_bytes(&self) -> u64 {
        self.behind_high.load(Ordering::Relaxed) * self.bs as u64
    }

    /// Starts a write-behind pass when the dirty buffers passed the threshold and none is
    /// running: in the background where the host can run one, else in this task.
    async fn maybe_write_behind(&self) {
        let dirty = self.dirty.load(Ordering::Relaxed);
        if dirty <= self.behind_high.load(Ordering::Relaxed)
            || dirty <= self.behind_retry_at.load(Ordering::Relaxed)
            || self.behind_running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let Some(me) = self.me.upgrade() else {
            let _g = BehindGuard(&self.behind_running);
            self.write_behind().await;
            return;
        };
        // The flag is cleared when the task ends or is dropped, polled or not.
        let owner = BehindOwner(me);
        let task: BackgroundTask = Box::pin(async move {
            owner.0.write_behind().await;
            drop(owner);
        });
        let task = match self.host.get() {
            Some(h) => match h.spawn(task) {
                Ok(()) => return,
                Err(t) => t,
            },
            None => task,
        };
        task.await
    }

    /// One write-behind pass: dirty blocks written back in block order (no host sync:
    /// durability stays sync's and fsync's) until at most `behind_low` are dirty. A block
    /// that fails stays dirty (sync writes it again and reports the error) and ends the pass.
    async fn write_behind(&self) {
        let low = self.behind_low.load(Ordering::Relaxed);
        for (key, _) in self.dirty_keys(None) {
            if self.dirty.load(Ordering::Relaxed) <= low {
                break;
            }
            if self.write_back(self.shard(key), key).await.is_err() {
                let high = self.behind_high.load(Ordering::Relaxed);
                let retry = self.dirty.load(Ordering::Relaxed) + (high - low).max(1);
                self.behind_retry_at.store(retry, Ordering::Relaxed);
                return;
            }
            self.behind_writes.fetch_add(1, Ordering::Relaxed);
        }
        self.behind_retry_at.store(0, Ordering::Relaxed);
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> usize {
        self.bs
    }

    /// The byte range `[off, off + len)` of a device cut at block boundaries: for each piece,
    /// its block number, its offset in that block and its range in the caller's buffer.
    pub fn spans(&self, off: u64, len: usize) -> impl Iterator<Item = (u64, usize, Range<usize>)> {
        let bs = self.bs;
        let mut done = 0;
        std::iter::from_fn(move || {
            (done < len).then(|| {
                let pos = off + done as u64;
                let (blk, in_blk) = (pos / bs as u64, (pos % bs as u64) as usize);
                let n = (bs - in_blk).min(len - done);
                let piece = done..done + n;
                done += n;
                (blk, in_blk, piece)
            })
        })
    }

    /// Most bytes of buffers the cache holds.
    pub fn capacity_bytes(&self) -> u64 {
        (self.cap * self.shards.len() * self.bs) as u64
    }

    fn shard(&self, key: Key) -> &Shard {
        let h =
            (key.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ key.1).wrapping_mul(0xff51_afd7_ed55_8ccd);
        &self.shards[((h >> 32) & self.mask) as usize]
    }

    /// Bytes of block `blk` inside the device's window.
    fn blk_len(&self, dev: &BDev, blk: u64) -> usize {
        let start = blk * self.bs as u64;
        dev.size.saturating_sub(start).min(self.bs as u64) as usize
    }

    /// Counters summed over all shards.
    pub fn stats(&self) -> CacheStats {
        let mut t = CacheStats::default();
        for sh in self.shards.iter() {
            let st = sh.lock();
            let s = st.stats;
            t.hits += s.hits;
            t.misses += s.misses;
            t.host_reads += s.host_reads;
            t.host_writes += s.host_writes;
            t.evictions += s.evictions;
            t.buffers += st.map.len() as u64;
            t.dirty += st.slots.iter().flatten().filter(|s| s.dirty).count() as u64;
        }
        t.behind_writes = self.behind_writes.load(Ordering::Relaxed);
        t
    }

    /// Copies `out.len()` bytes at `off` within block `blk` of `dev` out of the cache,
    /// reading the block from the host on a miss.
    pub async fn read(&self, dev: &Arc<BDev>, blk: u64, off: usize, out: &mut [u8]) -> Result<()> {
        assert!(off + out.len() <= self.bs);
        self.access(dev, blk, false, |data, _| {
            out.copy_from_slice(&data[off..off + out.len()]);
        })
        .await
        // A miss may first write a dirty victim back to make room; that write's errno
        // (host disk full, quota) is no read(2) error: the read failed, EIO.
        .map_err(|e| match e {
            Errno::ENOSPC | Errno::EDQUOT | Errno::EFBIG => Errno::EIO,
            e => e,
        })
    }

    /// Copies `data` into block `blk` of `dev` at `off` and marks the buffer dirty; a
    /// partial block is read from the host first, a whole one is not.
    pub async fn write(&self, dev: &Arc<BDev>, blk: u64, off: usize, data: &[u8]) -> Result<()> {
        assert!(off + data.len() <= self.bs);
        let whole = off == 0 && data.len() >= self.blk_len(dev, blk);
        self.access(dev, blk, whole, |buf, s| {
            buf[off..off + data.len()].copy_from_slice(data);
            if !s.dirty {
                self.dirty.fetch_add(1, Ordering::Relaxed);
            }
            s.dirty = true;
            s.wgen += 1;
        })
        .await?;
        self.maybe_write_behind().await;
        Ok(())
    }

    async fn access<R>(
        &self,
        dev: &Arc<BDev>,
        blk: u64,
        whole: bool,
        f: impl FnOnce(&mut Vec<u8>, &mut Slot) -> R,
    ) -> Result<R> {
        let key = (dev.id, blk);
        let sh = self.shard(key);
        let mut f = Some(f);
        let mut apply = |s: &mut Slot| {
            let mut data = std::mem::take(&mut s.data);
            let r = (f.take().expect("applied once"))(&mut data, s);
            s.data = data;
            r
        };
        let mut counted = false;
        let mut victim_failures = 0;
        loop {
            let (gen, mut buf) = match self.step(sh, key, dev, whole, &mut counted, &mut apply) {
                Step::Done(r) => return Ok(r),
                Step::Wait(seen) => {
                    sh.wait_change(seen).await;
                    continue;
                }
                Step::WriteBack(victim) => {
                    // A victim whose write-back fails (another device's host error) stays
                    // dirty and goes to the back of its queue; the access tries another,
                    // and fails only when several in a row could not be written.
                    if let Err(e) = self.write_back(sh, victim).await {
                        victim_failures += 1;
                        if victim_failures >= VICTIM_TRIES {
                            return Err(e);
                        }
                        self.requeue_back(sh, victim);
                    }
                    continue;
                }
                Step::Fill(gen, buf) => (gen, buf),
            };
            let mut guard = FillGuard {
                shard: sh,
                key,
                gen,
                armed: true,
            };
            let len = self.blk_len(dev, blk);
            buf.truncate(len);
            let host_off = dev.base + blk * self.bs as u64;
            let (r, mut buf) = read_full(&*dev.file, buf, host_off).await;
            guard.armed = false;
            buf.resize(self.bs, 0);
            let mut st = sh.lock();
            let (idx, s) = st.find(key).expect("a filling buffer stays");
            debug_assert_eq!(s.gen, gen);
            let out = match r {
                Ok(n) => {
                    buf[n..].fill(0);
                    s.data = buf;
                    s.filling = false;
                    Ok(apply(s))
                }
                Err(e) => {
                    s.data = buf;
                    st.remove_queued(idx);
                    Err(e)
                }
            };
            sh.changed(st);
            return out;
        }
    }

    /// The in-memory part of an access, under the shard lock.
    fn step<R>(
        &self,
        sh: &Shard,
        key: Key,
        dev: &Arc<BDev>,
        whole: bool,
        counted: &mut bool,
        apply: &mut impl FnMut(&mut Slot) -> R,
    ) -> Step<R> {
        let mut st = sh.lock();
        if let Some((_, s)) = st.find(key) {
            if s.filling {
                return Step::Wait(st.epoch);
            }
            s.freq = (s.freq + 1).min(FREQ_MAX);
            let r = apply(s);
            if !*counted {
                st.stats.hits += 1;
            }
            return Step::Done(r);
        }
        if !*counted {
            st.stats.misses += 1;
            *counted = true;
        }
        let cap = st.allowance(self.cap);
        match st.make_room(cap) {
            Room::Ready => {}
            Room::WriteBack(idx) => return Step::WriteBack(st.slot(idx).key),
            Room::Full => return Step::Wait(st.epoch),
        }
        let mut buf = st.buf(self.bs);
        if whole {
            buf.fill(0);
            let idx = st.insert(key, dev.clone(), buf, false);
            return Step::Done(apply(st.slot(idx)));
        }
        let idx = st.insert(key, dev.clone(), Vec::new(), true);
        st.stats.host_reads += 1;
        Step::Fill(st.slot(idx).gen, buf)
    }

    /// Moves block `key` from the front of its queue (where a dirty victim waits for its
    /// write-back) to the back, so the next eviction looks at others first.
    fn requeue_back(&self, sh: &Shard, key: Key) {
        let mut st = sh.lock();
        let Some(&idx) = st.map.get(&key) else {
            return;
        };
        let st = &mut *st;
        for q in [&mut st.small, &mut st.main] {
            if q.front() == Some(&idx) {
                q.pop_front();
                q.push_back(idx);
            }
        }
    }

    /// Writes block `key` back if it is dirty (waiting for a write-back in flight first);
    /// the buffer stays readable and writable meanwhile (a copy goes to the host).
    async fn write_back(&self, sh: &Shard, key: Key) -> Result<()> {
        loop {
            let (gen, wgen, dev, copy) = match self.start_write(sh, key) {
                None => return Ok(()),
                Some(Err(seen)) => {
                    sh.wait_change(seen).await;
                    continue;
                }
                Some(Ok(w)) => w,
            };
            let mut guard = WriteGuard {
                shard: sh,
                key,
                gen,
                armed: true,
            };
            let off = dev.base + key.1 * self.bs as u64;
            let (r, _) = write_full(&*dev.file, copy, off).await;
            guard.armed = false;
            let mut st = sh.lock();
            if let Some((_, s)) = st.find(key) {
                if s.gen == gen {
                    s.writing = false;
                    if r.is_ok() && s.wgen == wgen && s.dirty {
                        s.dirty = false;
                        self.dirty.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            }
            sh.changed(st);
            return r.map(|_| ());
        }
    }

    /// Marks dirty block `key` as being written and copies its data: `None` when there is
    /// nothing to write, `Err(epoch)` to wait for a write-back in flight.
    fn start_write(&self, sh: &Shard, key: Key) -> Option<std::result::Result<Pending, u64>> {
        let mut st = sh.lock();
        let (_, s) = st.find(key)?;
        if !s.dirty || s.filling {
            return None;
        }
        if s.writing {
            return Some(Err(st.epoch));
        }
        s.writing = true;
        let (gen, wgen, dev) = (s.gen, s.wgen, s.dev.clone());
        let len = self.blk_len(&dev, key.1);
        let copy = s.data[..len].to_vec();
        st.stats.host_writes += 1;
        Some(Ok((gen, wgen, dev, copy)))
    }

    /// Dirty blocks of `dev` (all devices with `None`), by device and block number.
    fn dirty_keys(&self, dev: Option<u64>) -> Vec<(Key, Arc<BDev>)> {
        let mut keys = Vec::new();
        for sh in self.shards.iter() {
            let st = sh.lock();
            for s in st.slots.iter().flatten() {
                if s.dirty && dev.map_or(true, |d| d == s.key.0) {
                    keys.push((s.key, s.dev.clone()));
                }
            }
        }
        keys.sort_unstable_by_key(|k| k.0);
        keys
    }

    async fn flush(&self, keys: Vec<(Key, Arc<BDev>)>) -> Result<Vec<Arc<BDev>>> {
        let mut first_err = None;
        let mut devs: Vec<Arc<BDev>> = Vec::new();
        for (key, dev) in keys {
            if let Err(e) = self.write_back(self.shard(key), key).await {
                first_err.get_or_insert(e);
            }
            if !devs.iter().any(|d| d.id == dev.id) {
                devs.push(dev);
            }
        }
        first_err.map_or(Ok(devs), Err)
    }

    /// `VOP_FSYNC` of a device: writes back its dirty blocks, then the host's `fdatasync`.
    /// The first error is returned; blocks that failed stay dirty.
    pub async fn sync_dev(&self, dev: &Arc<BDev>) -> Result<()> {
        self.flush(self.dirty_keys(Some(dev.id))).await?;
        dev.file.sync_data().await
    }

    /// `sync`: writes back every dirty block and syncs each device written to.
    pub async fn sync_all(&self) -> Result<()> {
        let devs = self.flush(self.dirty_keys(None)).await?;
        let mut res = Ok(());
        for d in devs {
            if let Err(e) = d.file.sync_data().await {
                res = Err(e);
            }
        }
        res
    }

    /// Writes back and forgets every buffer of `dev` (the device goes away). Buffers still
    /// in use by another task are left to finish; `EBUSY` if any remained.
    pub async fn purge_dev(&self, dev: &Arc<BDev>) -> Result<()> {
        self.sync_dev(dev).await?;
        let mut busy = false;
        for sh in self.shards.iter() {
            let mut st = sh.lock();
            let idxs: Vec<usize> = (st.slots.iter().enumerate())
                .filter_map(|(i, s)| s.as_ref().filter(|s| s.key.0 == dev.id).map(|_| i))
                .collect();
            for idx in idxs {
                let s = st.slot(idx);
                if s.in_use() || s.dirty {
                    busy = true;
                } else {
                    st.remove_queued(idx);
                }
            }
            sh.changed(st);
        }
        if busy {
            Err(Errno::EBUSY)
        } else {
            Ok(())
        }
    }
}

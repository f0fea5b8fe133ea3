//! The buffer cache (NetBSD's `vfs_bio.c`): fixed-size blocks of host-backed devices, shared
//! by every loop, written back on sync and under memory pressure.
//!
//! Design decisions:
//! - **Sharded, no global lock on a hit.** A block `(device, block number)` hashes to one of
//!   a power-of-two number of shards; each shard is a `std::sync::Mutex` over its map, its
//!   queues and its buffers, held only for in-memory work (a lookup and one ≤ block-sized
//!   copy), never across an await. A hit touches one shard lock and nothing else, so loops
//!   hitting different blocks do not contend.
//! - **One host read per missing block.** The first task to miss inserts the buffer in state
//!   `Filling` and reads it; later tasks (from any loop) find it filling and sleep on the
//!   shard's [`WaitQueue`], woken (through thread-safe wakers) when the read completes. A
//!   failed read hands its errno to every waiter. A filler whose future is dropped (client
//!   gone) gives the slot up and wakes the waiters, one of which retries.
//! - **In-use buffers are never evicted**: a buffer being filled or written back has its
//!   memory lent to the host operation (owned buffers, see `crate::hostio`) and is skipped
//!   by eviction; so is a dirty buffer until it has been written back.
//! - **S3-FIFO eviction** (Yang et al., SOSP '23): new blocks enter a small FIFO (10 % of
//!   the shard), blocks touched again while there move to the main FIFO (90 %), the rest
//!   leave after one pass and are remembered in a ghost FIFO of keys; a miss on a ghost key
//!   goes straight to main. Main is a CLOCK with a 2-bit frequency. A sequential scan larger
//!   than the cache therefore only churns the small queue and never displaces the working
//!   set in main, at the cost of a queue push/pop per miss and one byte per hit, with no
//!   list reordering on a hit (unlike LRU, whose hit must move the node under the lock).
//!   CLOCK-Pro gives similar scan resistance with more state per entry; S3-FIFO is simpler
//!   to make correct with pinned and dirty entries, which both FIFOs simply skip.
//! - **Write-back**: writes mark buffers dirty; [`BufCache::sync_dev`] (fsync of a device
//!   node), [`BufCache::sync_all`] (`sync`, unmount, halt) write them back in block order and
//!   end with the host's `fdatasync`. Under memory pressure, eviction writes a dirty victim
//!   back before reusing it; a victim that cannot be written (its host file full or failing)
//!   goes to the back of its queue and another is tried, so one device's host errors do not
//!   fail another device's accesses (after 4 failed victims in a row the access fails). A
//!   failed write-back leaves the buffer dirty and reports the errno; nothing is dropped.
//! - **Write-behind** (NetBSD's syncer and `bawrite` idea): when a write leaves more than a
//!   quarter of the cache dirty, a pass writes dirty blocks back in block order until half
//!   of that is left, so sync and eviction have less to do and a reader's miss rarely waits
//!   for a dirty victim's write. The pass runs in the background on the writing loop
//!   (`Host::spawn`; in the writer's own task where there is no loop), one at a time; it
//!   never syncs the host (durability stays fsync's, sync's and halt's, which still write
//!   whatever is dirty, waiting for a write-behind write in flight), and a block that fails
//!   stays dirty (the pass stops and is not retried until more blocks are dirty).
//! - **Memory**: the cache holds at most `capacity_bytes / block_size` buffers; each buffer
//!   is allocated once and then recycled through a per-shard free list, so steady state
//!   allocates nothing. (An anonymous-mapping arena would need `unsafe`, which this crate
//!   forbids; recycled owned buffers give the same bound and hand ownership to a
//!   completion-based host backend for free.) The budget of `-r` will set `capacity_bytes`.

mod cache;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_behind;

pub use cache::{BDev, BufCache, CacheStats, DEFAULT_BLOCK_SIZE};

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// Cache size until the memory budget (`-r`) sets it.
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;
/// Shards of the kernel's cache.
pub const DEFAULT_SHARDS: usize = 64;

struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `fut` on this thread, parking between polls: for the synchronous callers of
/// write-back (`Kernel::sync_all` at halt) with host backends that complete by themselves
/// (pread/pwrite). A backend whose completions are driven by the calling loop must be
/// flushed with the async calls instead (`Kernel::sync_all_async`).
pub fn park_on<F: Future>(fut: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

//! The kernel's memory budget (`-r total_ram`, NetBSD's `RUMP_MEMLIMIT`).
//!
//! One [`Budget`] for the whole kernel: buffer-cache buffers, file data and names of the
//! memory file systems, vnodes, lock records, pipes and the server's per-connection state
//! are charged to it. A file system
//! with a size limit of its own (tmpfs `size=`) gets a child budget whose charges also go to
//! the kernel's.
//!
//! Design decisions:
//! - **Accounting, not allocation.** The budget counts bytes with one atomic; allocations
//!   stay where they are (the cache's recycled buffers, the memory file systems' pages).
//!   A charge that would pass the limit fails, and the caller turns that into `ENOSPC` (file
//!   data) or makes room itself (the cache evicts and reuses a buffer). Nothing aborts.
//! - **The cache shrinks to make room.** Reclaimers (the buffer cache) register with the
//!   kernel budget; when a file-data charge fails, the budget asks them to give back clean
//!   memory and tries once more. The cache itself charges with
//!   [`Budget::try_charge_no_reclaim`] (it would otherwise be asked to shrink while it holds a
//!   shard lock) and never grows into memory that file data holds.
//! - **Everything a client call makes is charged before it is made, fallibly**, at its heap
//!   size ([`heap_bytes`] of each allocation plus the container's per-entry overhead):
//!   vnodes and symbolic-link targets, directory entries (names), lock records, pipe
//!   buffers. A [`Charge`] holds an object's share and gives it back when the object goes;
//!   the caller turns a refusal into NetBSD's errno for the call (`ENOSPC` for nodes and
//!   names as tmpfs, `ENOMEM` for lock records and pipes).
//! - **Forced charges** always succeed and count; they are only for what no client can
//!   multiply: boot-time nodes, the cache's boot reserve, etfs keys the operator registered
//!   and connections (bounded by `RUMP_MAX_CONNS`). They make the limit smaller for the rest.
//! - Without `-r` the limit is the host's physical memory (what NetBSD's rumpuser reports).

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::{Errno, Result};

/// What one heap allocation of `n` bytes costs the host: the allocator's 8-byte header,
/// rounded up to 16 bytes, at least 32 (glibc malloc's chunk sizes). Charges are computed
/// with it so that the budget counts what the server really holds (README "Limits").
pub const fn heap_bytes(n: usize) -> u64 {
    let chunk = (n + 8).div_ceil(16) * 16;
    if chunk < 32 {
        32
    } else {
        chunk as u64
    }
}

/// Something that can give memory back to the budget on request (the buffer cache).
pub trait Reclaim: Send + Sync {
    /// Frees about `want` bytes of clean, unused memory if it can (charges released with
    /// [`Budget::release`]); returns the bytes released. Must not call back into
    /// [`Budget::try_charge`].
    fn reclaim(&self, want: u64) -> u64;
}

/// A byte budget with an optional parent that every charge also goes to.
pub struct Budget {
    limit_bytes: AtomicU64,
    used_bytes: AtomicU64,
    used_bytes_max: AtomicU64,
    parent: Option<Arc<Budget>>,
    reclaimers: Mutex<Vec<Weak<dyn Reclaim>>>,
    /// The limit is the host's memory, given because no `-r` was: a rump kernel would
    /// count its default `physmem` instead (see [`Budget::host_sized`]).
    host_sized: AtomicBool,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("limit_bytes", &self.limit())
            .field("used_bytes", &self.used())
            .finish()
    }
}

impl Budget {
    /// A top-level budget of `limit_bytes`.
    pub fn new(limit_bytes: u64) -> Arc<Budget> {
        Arc::new(Budget {
            limit_bytes: AtomicU64::new(limit_bytes),
            used_bytes: AtomicU64::new(0),
            used_bytes_max: AtomicU64::new(0),
            parent: None,
            reclaimers: Mutex::new(Vec::new()),
            host_sized: AtomicBool::new(false),
        })
    }

    /// A budget that never refuses (tests, tools).
    pub fn unlimited() -> Arc<Budget> {
        Budget::new(u64::MAX)
    }

    /// A budget of `limit_bytes` inside `parent`: a charge must fit both.
    pub fn child(parent: &Arc<Budget>, limit_bytes: u64) -> Arc<Budget> {
        Arc::new(Budget {
            limit_bytes: AtomicU64::new(limit_bytes),
            used_bytes: AtomicU64::new(0),
            used_bytes_max: AtomicU64::new(0),
            parent: Some(parent.clone()),
            reclaimers: Mutex::new(Vec::new()),
            host_sized: AtomicBool::new(false),
        })
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit_bytes.load(Ordering::Acquire)
    }

    /// Changes the limit (tmpfs `MNT_UPDATE` of its size): `EBUSY` when more than `new` is
    /// charged now (NetBSD's `tmpfs_mntmem_set`). A charge racing the change may leave the
    /// budget briefly over the new limit; later charges then fail until it is back under.
    pub fn set_limit(&self, new: u64) -> Result<()> {
        if self.used() > new {
            return Err(Errno::EBUSY);
        }
        self.limit_bytes.store(new, Ordering::Release);
        Ok(())
    }

    /// Marks the limit as the host's memory, set because the operator gave no `-r`.
    pub fn mark_host_sized(&self) {
        self.host_sized.store(true, Ordering::Relaxed);
    }

    /// Whether the limit is only the host's memory (no `-r`): what a NetBSD rump kernel
    /// reports as its memory is then its default `physmem`, not this limit (tmpfs's df).
    pub fn host_sized(&self) -> bool {
        self.host_sized.load(Ordering::Relaxed)
    }

    /// The budget this one lies inside (a file system's: the kernel's), if any.
    pub fn parent(&self) -> Option<&Arc<Budget>> {
        self.parent.as_ref()
    }

    /// Bytes charged now.
    pub fn used(&self) -> u64 {
        self.used_bytes.load(Ordering::Relaxed)
    }

    /// The most bytes ever charged at once.
    pub fn used_max(&self) -> u64 {
        self.used_bytes_max.load(Ordering::Relaxed)
    }

    /// Bytes left before the limit (0 when forced charges went past it).
    pub fn available(&self) -> u64 {
        let own = self.limit().saturating_sub(self.used());
        match &self.parent {
            Some(p) => own.min(p.available()),
            None => own,
        }
    }

    /// Registers a reclaimer (kept weakly: it goes away with its owner).
    pub fn add_reclaimer(&self, r: Weak<dyn Reclaim>) {
        let mut rs = self.reclaimers.lock().unwrap_or_else(|e| e.into_inner());
        rs.retain(|w| w.strong_count() > 0);
        rs.push(r);
    }

    fn add_own(&self, bytes: u64) -> bool {
        let mut cur = self.used_bytes.load(Ordering::Relaxed);
        loop {
            let limit = self.limit();
            let Some(next) = cur.checked_add(bytes).filter(|&n| n <= limit) else {
                return false;
            };
            match self.used_bytes.compare_exchange_weak(
                cur,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.used_bytes_max.fetch_max(next, Ordering::Relaxed);
                    return true;
                }
                Err(now) => cur = now,
            }
        }
    }

    fn charge_once(&self, bytes: u64) -> bool {
        if !self.add_own(bytes) {
            return false;
        }
        if let Some(p) = &self.parent {
            if !p.charge_once(bytes) {
                self.used_bytes.fetch_sub(bytes, Ordering::AcqRel);
                return false;
            }
        }
        true
    }

    /// Asks the reclaimers of the top budget for what a charge of `bytes` lacks there.
    fn reclaim(&self, bytes: u64) {
        if let Some(p) = &self.parent {
            return p.reclaim(bytes);
        }
        let want = self
            .used()
            .saturating_add(bytes)
            .saturating_sub(self.limit());
        let rs: Vec<_> = {
            let rs = self.reclaimers.lock().unwrap_or_else(|e| e.into_inner());
            rs.iter().filter_map(Weak::upgrade).collect()
        };
        let mut got = 0;
        for r in rs {
            if got >= want {
                break;
            }
            got += r.reclaim(want - got);
        }
    }

    /// Charges `bytes`, asking the reclaimers for room once if they do not fit;
    /// `ENOSPC` when they still do not.
    pub fn try_charge(&self, bytes: u64) -> Result<()> {
        if self.charge_once(bytes) {
            return Ok(());
        }
        self.reclaim(bytes);
        if self.charge_once(bytes) {
            Ok(())
        } else {
            Err(Errno::ENOSPC)
        }
    }

    /// Charges `bytes` if they fit now, without reclaiming (for the reclaimers themselves).
    pub fn try_charge_no_reclaim(&self, bytes: u64) -> bool {
        self.charge_once(bytes)
    }

    /// Charges `bytes` even past the limit.
    pub fn charge_forced(&self, bytes: u64) {
        let now = self.used_bytes.fetch_add(bytes, Ordering::AcqRel) + bytes;
        self.used_bytes_max.fetch_max(now, Ordering::Relaxed);
        if let Some(p) = &self.parent {
            p.charge_forced(bytes);
        }
    }

    /// Gives back `bytes` charged earlier.
    pub fn release(&self, bytes: u64) {
        let before = self.used_bytes.fetch_sub(bytes, Ordering::AcqRel);
        debug_assert!(before >= bytes, "budget released more than charged");
        if let Some(p) = &self.parent {
            p.release(bytes);
        }
    }
}

/// Bytes charged to a budget, given back when dropped: the share of one object (a vnode, a
/// directory's entries, an object's lock records, a pipe's buffer, a connection).
///
/// A charge may grow ([`Charge::try_grow`], fallible) and shrink ([`Charge::shrink`]) with
/// what its object holds, so that the budget always counts what is held now.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<Budget>,
    bytes: u64,
}

impl Charge {
    /// Charges `bytes` to `budget` (forced) until the returned value is dropped. Only for
    /// what a client cannot multiply (boot-time nodes, connections bounded by count).
    pub fn forced(budget: &Arc<Budget>, bytes: u64) -> Charge {
        budget.charge_forced(bytes);
        Charge {
            budget: budget.clone(),
            bytes,
        }
    }

    /// Charges `bytes` to `budget` if they fit (reclaiming from the cache once), until the
    /// returned value is dropped; `ENOSPC` when they do not.
    pub fn try_new(budget: &Arc<Budget>, bytes: u64) -> Result<Charge> {
        budget.try_charge(bytes)?;
        Ok(Charge {
            budget: budget.clone(),
            bytes,
        })
    }

    /// Nothing charged yet to `budget`.
    pub fn empty(budget: &Arc<Budget>) -> Charge {
        Charge {
            budget: budget.clone(),
            bytes: 0,
        }
    }

    /// Charges `bytes` more if they fit; `ENOSPC` (and nothing charged) when they do not.
    pub fn try_grow(&mut self, bytes: u64) -> Result<()> {
        if bytes > 0 {
            self.budget.try_charge(bytes)?;
            self.bytes += bytes;
        }
        Ok(())
    }

    /// Charges `bytes` more even past the limit (only what a client cannot multiply).
    pub fn grow_forced(&mut self, bytes: u64) {
        self.budget.charge_forced(bytes);
        self.bytes += bytes;
    }

    /// Gives back `bytes` of this charge (at most what it holds).
    pub fn shrink(&mut self, bytes: u64) {
        let bytes = bytes.min(self.bytes);
        self.budget.release(bytes);
        self.bytes -= bytes;
    }

    /// Bytes charged now.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The budget charged.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.release(self.bytes);
        }
    }
}

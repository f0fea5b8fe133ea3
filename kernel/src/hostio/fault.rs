//! A seeded fault injector over any host file (NetBSD's `RUMP_BLKFAIL` /
//! `RUMP_BLKFAIL_SEED`): `EIO`, `ENOSPC` and short transfers at a configurable rate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{HostFile, HostIo, IoResult};
use crate::{Errno, Result};

/// Denominator of the rates, as rumpblk's `BLKFAIL_MAX`.
pub const FAIL_SCALE: u32 = 10_000;

/// What to inject, each rate out of [`FAIL_SCALE`] operations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultConfig {
    /// Seed of the deterministic decision sequence (`RUMP_BLKFAIL_SEED`).
    pub seed: u64,
    /// Reads, writes and syncs failing with `EIO` (`RUMP_BLKFAIL`).
    pub eio: u32,
    /// Writes failing with `ENOSPC`.
    pub enospc: u32,
    /// Reads and writes moving only part of their buffer (at least one byte).
    pub short: u32,
}

/// A host file that fails on purpose. The n-th operation's fate depends only on the seed
/// and n, so a single-threaded test replays exactly.
pub struct FaultyFile {
    inner: Arc<dyn HostFile>,
    cfg: FaultConfig,
    ops: AtomicU64,
}

/// What happens to one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Pass,
    Fail(Errno),
    /// Move this many bytes out of 2^16ths of the buffer.
    Short(u64),
}

/// SplitMix64: a good 64-bit mix for counter-based random numbers.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl FaultyFile {
    /// Injects faults into `inner` as `cfg` says.
    pub fn new(inner: Arc<dyn HostFile>, cfg: FaultConfig) -> FaultyFile {
        FaultyFile {
            inner,
            cfg,
            ops: AtomicU64::new(0),
        }
    }

    /// Operations decided so far.
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }

    fn fate(&self, write: bool, transfer: bool) -> Fate {
        let n = self.ops.fetch_add(1, Ordering::Relaxed);
        let r = mix(self.cfg.seed ^ mix(n));
        let roll = (r % u64::from(FAIL_SCALE)) as u32;
        let c = &self.cfg;
        if roll < c.eio {
            return Fate::Fail(Errno::EIO);
        }
        if write && roll < c.eio + c.enospc {
            return Fate::Fail(Errno::ENOSPC);
        }
        if transfer && roll < c.eio + c.enospc + c.short {
            return Fate::Short((r >> 32) & 0xffff);
        }
        Fate::Pass
    }
}

fn short_len(len: usize, frac: u64) -> usize {
    if len <= 1 {
        return len;
    }
    // 1 ..= len - 1 bytes.
    1 + (((len as u64 - 1) * frac) >> 16) as usize
}

impl HostFile for FaultyFile {
    fn read_at(&self, mut buf: Vec<u8>, off: u64) -> HostIo<'_, IoResult> {
        match self.fate(false, true) {
            Fate::Pass => self.inner.read_at(buf, off),
            Fate::Fail(e) => HostIo::ready((Err(e), buf)),
            Fate::Short(frac) => {
                let full = buf.len();
                buf.truncate(short_len(full, frac));
                let inner = self.inner.read_at(buf, off);
                HostIo::boxed(async move {
                    let (r, mut b) = inner.await;
                    b.resize(full, 0);
                    (r, b)
                })
            }
        }
    }

    fn write_at(&self, buf: Vec<u8>, off: u64) -> HostIo<'_, IoResult> {
        match self.fate(true, true) {
            Fate::Pass => self.inner.write_at(buf, off),
            Fate::Fail(e) => HostIo::ready((Err(e), buf)),
            Fate::Short(frac) => {
                let n = short_len(buf.len(), frac);
                let part = buf[..n].to_vec();
                let inner = self.inner.write_at(part, off);
                HostIo::boxed(async move { (inner.await.0, buf) })
            }
        }
    }

    fn sync_data(&self) -> HostIo<'_, Result<()>> {
        match self.fate(false, false) {
            Fate::Fail(e) => HostIo::ready(Err(e)),
            _ => self.inner.sync_data(),
        }
    }

    fn len(&self) -> Result<u64> {
        self.inner.len()
    }

    fn set_len(&self, len: u64) -> Result<()> {
        self.inner.set_len(len)
    }

    fn writable(&self) -> bool {
        self.inner.writable()
    }

    fn host_path(&self) -> Option<std::path::PathBuf> {
        self.inner.host_path()
    }
}

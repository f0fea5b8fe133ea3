//! An in-memory host file that counts its operations and can hold reads at a gate: the test
//! double of the buffer cache and etfs (also usable by an in-memory [`crate::Host`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::{HostFile, HostIo, IoResult};
use crate::sync::WaitQueue;
use crate::Result;

/// A growable byte vector behind the [`HostFile`] trait.
#[derive(Default)]
pub struct MemFile {
    data: Mutex<Vec<u8>>,
    reads: AtomicU64,
    writes: AtomicU64,
    syncs: AtomicU64,
    /// While set, reads wait (to line up concurrent cache misses in tests).
    held: AtomicBool,
    gate: WaitQueue,
}

impl MemFile {
    /// A file holding `data`.
    pub fn new(data: Vec<u8>) -> MemFile {
        MemFile {
            data: Mutex::new(data),
            ..MemFile::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the contents.
    pub fn contents(&self) -> Vec<u8> {
        self.lock().clone()
    }

    /// `(reads, writes, syncs)` so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        let l = |a: &AtomicU64| a.load(Ordering::SeqCst);
        (l(&self.reads), l(&self.writes), l(&self.syncs))
    }

    /// Makes reads wait (`true`) or lets them go (`false`).
    pub fn hold_reads(&self, hold: bool) {
        self.held.store(hold, Ordering::SeqCst);
        if !hold {
            self.gate.wake_all();
        }
    }

    fn do_read(&self, mut buf: Vec<u8>, off: u64) -> IoResult {
        let d = self.lock();
        let start = (off as usize).min(d.len());
        let n = buf.len().min(d.len() - start);
        buf[..n].copy_from_slice(&d[start..start + n]);
        (Ok(n), buf)
    }
}

impl HostFile for MemFile {
    fn read_at(&self, buf: Vec<u8>, off: u64) -> HostIo<'_, IoResult> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if !self.held.load(Ordering::SeqCst) {
            return HostIo::ready(self.do_read(buf, off));
        }
        HostIo::boxed(async move {
            let held = &self.held;
            self.gate
                .wait_for(|| (!held.load(Ordering::SeqCst)).then_some(()))
                .await;
            self.do_read(buf, off)
        })
    }

    fn write_at(&self, buf: Vec<u8>, off: u64) -> HostIo<'_, IoResult> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let mut d = self.lock();
        let end = off as usize + buf.len();
        if d.len() < end {
            d.resize(end, 0);
        }
        d[off as usize..end].copy_from_slice(&buf);
        drop(d);
        let n = buf.len();
        HostIo::ready((Ok(n), buf))
    }

    fn sync_data(&self) -> HostIo<'_, Result<()>> {
        self.syncs.fetch_add(1, Ordering::SeqCst);
        HostIo::ready(Ok(()))
    }

    fn len(&self) -> Result<u64> {
        Ok(self.lock().len() as u64)
    }

    fn set_len(&self, len: u64) -> Result<()> {
        self.lock().resize(len as usize, 0);
        Ok(())
    }
}

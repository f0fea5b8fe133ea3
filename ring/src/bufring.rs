//! The loop's provided buffer ring (`IORING_REGISTER_PBUF_RING`): a fixed pool of receive
//! buffers the kernel picks from for multishot receives, so a connection owns no receive
//! buffer of its own while it waits.
//!
//! Sizing: [`BUF_COUNT`] buffers of [`BUF_SIZE`] bytes per loop (4 MiB, allocated on the first
//! multishot receive of the loop and faulted in only as the kernel writes to it). 16 KiB holds
//! the common sp frames whole (a syscall is ~100 bytes, a 4 KiB COPYIN answer ~4.1 KiB) while
//! a larger frame simply spans several buffers (the frame decoder copies partial frames).
//! 256 buffers cover 64 connections with four receives each waiting to be decoded; when the
//! pool runs dry the kernel ends the receives that found no buffer (`ENOBUFS`) and they are
//! re-armed once buffers come back: the data waits in the socket, nothing is lost.
//!
//! A buffer the kernel filled is handed out as a [`RecvBuf`]; dropping it puts it back at the
//! ring's tail. The memory is freed only when the last `RecvBuf` and the driver are gone, and
//! is leaked if the driver stops with receives still in flight.

use std::alloc::{self, Layout};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::task::Waker;

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

use crate::epoll::pool::Pool;

/// Buffers per loop (a power of two, at most 32768).
pub(crate) const BUF_COUNT: u16 = 256;
/// Bytes per buffer.
pub(crate) const BUF_SIZE: u32 = 16 << 10;
/// The buffer group id of the loop's ring (one group per io_uring).
pub(crate) const BGID: u16 = 0;

/// A registered provided-buffer ring and its buffers.
pub(crate) struct BufRing {
    /// `BUF_COUNT` ring entries, page aligned (the kernel maps them); entry 0's `resv` field is
    /// the ring's tail.
    entries: *mut BufRingEntry,
    /// `BUF_COUNT * BUF_SIZE` bytes of buffer memory.
    mem: *mut u8,
    /// Our copy of the tail (the kernel only reads it).
    tail: Cell<u16>,
    /// Buffers whose CQE was seen and that have not been given back yet.
    out: Cell<usize>,
    /// Receives that ended with `ENOBUFS`, waiting for a buffer to come back.
    waiters: RefCell<Vec<Waker>>,
    /// Receives re-armed after `ENOBUFS` (statistics).
    dry_rearms: Cell<u64>,
}

fn entries_layout() -> Layout {
    let size = usize::from(BUF_COUNT) * std::mem::size_of::<BufRingEntry>();
    Layout::from_size_align(size, 4096).expect("valid ring layout")
}

fn mem_layout() -> Layout {
    Layout::from_size_align(usize::from(BUF_COUNT) * BUF_SIZE as usize, 4096)
        .expect("valid buffer layout")
}

impl BufRing {
    /// Allocates the ring, fills it with every buffer and registers it with `ring`. `None`
    /// when the kernel does not support provided buffer rings (or registration fails).
    pub(crate) fn register(ring: &IoUring) -> Option<Rc<BufRing>> {
        // SAFETY: non-zero size; zeroed entries (the tail starts at 0).
        let entries = unsafe { alloc::alloc_zeroed(entries_layout()) }.cast::<BufRingEntry>();
        if entries.is_null() {
            return None;
        }
        // SAFETY: non-zero size; the kernel writes the bytes before we read any of them.
        let mem = unsafe { alloc::alloc(mem_layout()) };
        if mem.is_null() {
            // SAFETY: allocated above with this layout.
            unsafe { alloc::dealloc(entries.cast(), entries_layout()) };
            return None;
        }
        let br = BufRing {
            entries,
            mem,
            tail: Cell::new(0),
            out: Cell::new(0),
            waiters: RefCell::new(Vec::new()),
            dry_rearms: Cell::new(0),
        };
        for bid in 0..BUF_COUNT {
            br.push(bid);
        }
        br.publish();
        // SAFETY: `entries` stays allocated while the ring is registered: the driver keeps
        // this `BufRing` until the ring is gone (or leaks it when ops were left in flight).
        let r = unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(entries as u64, BUF_COUNT, BGID, 0)
        };
        match r {
            Ok(()) => Some(Rc::new(br)),
            Err(_) => None, // dropping `br` frees the memory: the kernel never saw it
        }
    }

    /// Writes buffer `bid` at our tail (not yet visible to the kernel).
    fn push(&self, bid: u16) {
        let t = self.tail.get();
        let i = usize::from(t & (BUF_COUNT - 1));
        // SAFETY: `i < BUF_COUNT`, inside the entries allocation; the kernel reads only
        // entries between its head and the published tail, and this one is past the tail.
        // The setters leave `resv` (entry 0's tail) alone.
        let e = unsafe { &mut *self.entries.add(i) };
        e.set_addr(self.addr(bid) as u64);
        e.set_len(BUF_SIZE);
        e.set_bid(bid);
        self.tail.set(t.wrapping_add(1));
    }

    /// Makes the entries pushed so far visible to the kernel.
    fn publish(&self) {
        // SAFETY: the tail is the `resv` u16 of entry 0, inside our allocation, 2-aligned,
        // and shared with the kernel only through atomic accesses (it loads with acquire).
        let tail = unsafe { AtomicU16::from_ptr(BufRingEntry::tail(self.entries).cast_mut()) };
        tail.store(self.tail.get(), Ordering::Release);
    }

    fn addr(&self, bid: u16) -> *mut u8 {
        // SAFETY: `bid < BUF_COUNT`: the offset is inside the buffer allocation.
        unsafe { self.mem.add(usize::from(bid) * BUF_SIZE as usize) }
    }

    /// The kernel filled buffer `bid` with `len` bytes: hand it out.
    pub(crate) fn take(self: &Rc<Self>, bid: u16, len: usize) -> RecvBuf {
        assert!(
            bid < BUF_COUNT && len <= BUF_SIZE as usize,
            "bad buffer from kernel"
        );
        RecvBuf(Inner::Ring {
            ring: self.clone(),
            bid,
            len,
        })
    }

    /// A CQE reported a buffer filled (taken off the ring by the kernel).
    pub(crate) fn filled(&self) {
        self.out.set(self.out.get() + 1);
    }

    /// Gives buffer `bid` back to the kernel and wakes receives waiting for buffers.
    pub(crate) fn recycle(&self, bid: u16) {
        self.out.set(self.out.get() - 1);
        self.push(bid);
        self.publish();
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters {
            w.wake();
        }
    }

    /// Whether some buffer is back in the ring (as far as completions seen tell).
    pub(crate) fn has_free(&self) -> bool {
        self.out.get() < usize::from(BUF_COUNT)
    }

    /// Buffers currently handed out (for tests and statistics).
    #[cfg(test)]
    pub(crate) fn handed_out(&self) -> usize {
        self.out.get()
    }

    /// A receive that ended with `ENOBUFS` is re-armed.
    pub(crate) fn note_dry_rearm(&self) {
        self.dry_rearms.set(self.dry_rearms.get() + 1);
    }

    /// Receives re-armed after the ring ran dry.
    #[cfg(test)]
    pub(crate) fn dry_rearms(&self) -> u64 {
        self.dry_rearms.get()
    }

    /// Wakes `w` when a buffer comes back.
    pub(crate) fn wait_free(&self, w: &Waker) {
        let mut ws = self.waiters.borrow_mut();
        if !ws.iter().any(|x| x.will_wake(w)) {
            ws.push(w.clone());
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `register` with these layouts; the last `Rc` is gone, so no
        // `RecvBuf` points into `mem`, and the driver drops (or leaks) its `Rc` only after the
        // ring has no receive in flight that could write into it.
        unsafe {
            alloc::dealloc(self.mem, mem_layout());
            alloc::dealloc(self.entries.cast(), entries_layout());
        }
    }
}

/// A received buffer, lent by the loop's buffer ring (or, on kernels without one, owned);
/// derefs to the bytes received. Dropping it gives the buffer back to the kernel, so hold it
/// only as long as it takes to parse it.
pub struct RecvBuf(Inner);

enum Inner {
    Ring {
        ring: Rc<BufRing>,
        bid: u16,
        len: usize,
    },
    Owned(Vec<u8>),
    /// Lent by the epoll backend's pool (`epoll/pool.rs`).
    Pool {
        pool: Rc<Pool>,
        buf: Box<[u8]>,
        len: usize,
    },
}

impl RecvBuf {
    pub(crate) fn owned(v: Vec<u8>) -> RecvBuf {
        RecvBuf(Inner::Owned(v))
    }

    /// `len` bytes received into `buf`, which goes back to `pool` when dropped.
    pub(crate) fn pooled(pool: Rc<Pool>, buf: Box<[u8]>, len: usize) -> RecvBuf {
        assert!(len <= buf.len());
        RecvBuf(Inner::Pool { pool, buf, len })
    }
}

impl std::ops::Deref for RecvBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            // SAFETY: the kernel wrote `len` bytes at this buffer's address (its CQE said so)
            // and will not touch it again until `drop` puts it back in the ring.
            Inner::Ring { ring, bid, len } => unsafe {
                std::slice::from_raw_parts(ring.addr(*bid), *len)
            },
            Inner::Owned(v) => v,
            Inner::Pool { buf, len, .. } => &buf[..*len],
        }
    }
}

impl Drop for RecvBuf {
    fn drop(&mut self) {
        match &mut self.0 {
            Inner::Ring { ring, bid, .. } => ring.recycle(*bid),
            Inner::Pool { pool, buf, .. } => pool.give_back(std::mem::take(buf)),
            Inner::Owned(_) => {}
        }
    }
}

impl std::fmt::Debug for RecvBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBuf").field("len", &self.len()).finish()
    }
}

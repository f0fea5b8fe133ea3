//! The epoll backend's receive buffer pool: the counterpart of the io_uring provided buffer
//! ring, with the same count and size ([`BUF_COUNT`] × [`BUF_SIZE`], 4 MiB per loop at most).
//!
//! Buffers are allocated on demand up to the bound and recycled through a free list; a
//! `RecvBuf` lent from the pool gives its buffer back when dropped. When every buffer is out,
//! a receive waits for one to come back (the data waits in the socket, as after `ENOBUFS`).

use std::cell::{Cell, RefCell};
use std::task::{Context, Poll, Waker};

use crate::bufring::{BUF_COUNT, BUF_SIZE};

/// A loop's bounded set of receive buffers.
pub(crate) struct Pool {
    free: RefCell<Vec<Box<[u8]>>>,
    /// Buffers allocated so far (never more than `BUF_COUNT`).
    allocated: Cell<usize>,
    /// Receives waiting for a buffer to come back.
    waiters: RefCell<Vec<Waker>>,
    /// Times a receive found the pool dry (statistics).
    dry_waits: Cell<u64>,
}

impl Pool {
    pub(crate) fn new() -> Pool {
        Pool {
            free: RefCell::new(Vec::new()),
            allocated: Cell::new(0),
            waiters: RefCell::new(Vec::new()),
            dry_waits: Cell::new(0),
        }
    }

    /// A buffer of `BUF_SIZE` bytes, or `Pending` (waker kept) while all are lent out.
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Box<[u8]>> {
        if let Some(b) = self.free.borrow_mut().pop() {
            return Poll::Ready(b);
        }
        if self.allocated.get() < usize::from(BUF_COUNT) {
            self.allocated.set(self.allocated.get() + 1);
            return Poll::Ready(vec![0u8; BUF_SIZE as usize].into_boxed_slice());
        }
        self.dry_waits.set(self.dry_waits.get() + 1);
        let mut ws = self.waiters.borrow_mut();
        if !ws.iter().any(|w| w.will_wake(cx.waker())) {
            ws.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Takes a buffer back and wakes the receives waiting for one.
    pub(crate) fn give_back(&self, b: Box<[u8]>) {
        debug_assert_eq!(b.len(), BUF_SIZE as usize);
        self.free.borrow_mut().push(b);
        let ws = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in ws {
            w.wake();
        }
    }

    /// Buffers currently lent out.
    #[cfg(test)]
    pub(crate) fn handed_out(&self) -> usize {
        self.allocated.get() - self.free.borrow().len()
    }

    /// Buffers allocated so far (bounded by `BUF_COUNT`).
    #[cfg(test)]
    pub(crate) fn allocated(&self) -> usize {
        self.allocated.get()
    }

    /// Times a receive waited for the dry pool.
    #[cfg(test)]
    pub(crate) fn dry_waits(&self) -> u64 {
        self.dry_waits.get()
    }
}

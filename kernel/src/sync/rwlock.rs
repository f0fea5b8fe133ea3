//! An async reader-writer lock that may be held across an `.await` (NetBSD's `rwlock` as
//! `vn_lock(LK_SHARED | LK_EXCLUSIVE)` uses it), preferring writers.
//!
//! The lock guards no value: it orders the tasks that share some other state (an FFS
//! mount's engine, one inode). One atomic word holds the state: the readers inside, a bit
//! for the writer inside and the count of writers waiting. A new reader does not enter
//! while a writer waits, so a stream of readers cannot starve a writer; the price is that a
//! task must never take the read side of one lock twice (the second would wait behind the
//! writer that waits for the first).
//!
//! Readers and writers sleep on separate queues, and a release wakes only who can enter:
//! one writer when writers wait, else every reader (waking everyone on each release made a
//! hot directory's lock a convoy of futile wake-ups across the loops).

use std::sync::atomic::{AtomicU64, Ordering};

use super::WaitQueue;

const READERS: u64 = 0xffff_ffff;
const WRITER: u64 = 1 << 63;
const WAITING_ONE: u64 = 1 << 32;
const WAITING: u64 = ((1 << 31) - 1) << 32;

/// An async reader-writer lock without a value (see the module text).
#[derive(Default)]
pub struct RwLock {
    state: AtomicU64,
    readers: WaitQueue,
    writers: WaitQueue,
}

/// The read side of a [`RwLock`], released when dropped.
pub struct ReadGuard<'a>(&'a RwLock);

/// The write side of a [`RwLock`], released when dropped.
pub struct WriteGuard<'a>(&'a RwLock);

/// A writer counted as waiting; dropping it (the future given up) counts it out again.
struct Waiting<'a>(&'a RwLock);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let before = self.0.state.fetch_sub(WAITING_ONE, Ordering::AcqRel);
        self.0.wake(before - WAITING_ONE);
    }
}

impl std::fmt::Debug for RwLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.load(Ordering::Relaxed);
        f.debug_struct("RwLock")
            .field("readers", &(s & READERS))
            .field("writer", &(s & WRITER != 0))
            .field("writers_waiting", &((s & WAITING) >> 32))
            .finish()
    }
}

impl RwLock {
    /// An unlocked lock.
    pub const fn new() -> RwLock {
        RwLock {
            state: AtomicU64::new(0),
            readers: WaitQueue::new(),
            writers: WaitQueue::new(),
        }
    }

    /// After a release that left the state `s`: the next writer if one waits (it enters
    /// once the lock is free; a wake-up it does not use is passed on), else the readers.
    fn wake(&self, s: u64) {
        if s & WAITING != 0 {
            if s & READERS == 0 {
                self.writers.wake_one();
            }
        } else {
            self.readers.wake_all();
        }
    }

    /// The read side, if no writer is inside or waiting.
    pub fn try_read(&self) -> Option<ReadGuard<'_>> {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & (WRITER | WAITING) != 0 || s & READERS == READERS {
                return None;
            }
            match self
                .state
                .compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return Some(ReadGuard(self)),
                Err(now) => s = now,
            }
        }
    }

    /// The write side, if the lock is free.
    pub fn try_write(&self) -> Option<WriteGuard<'_>> {
        self.state
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| WriteGuard(self))
    }

    /// Shared: waits while a writer is inside or waiting.
    pub async fn read(&self) -> ReadGuard<'_> {
        if let Some(g) = self.try_read() {
            return g;
        }
        self.readers.wait_for(|| self.try_read()).await
    }

    /// Exclusive: waits until no reader or writer is inside.
    pub async fn write(&self) -> WriteGuard<'_> {
        if let Some(g) = self.try_write() {
            return g;
        }
        self.state.fetch_add(WAITING_ONE, Ordering::AcqRel);
        let waiting = Waiting(self);
        let g = self
            .writers
            .wait_for(|| {
                let s = self.state.load(Ordering::Relaxed);
                if s & (WRITER | READERS) != 0 {
                    return None;
                }
                // Enter and stop counting as waiting in one step.
                self.state
                    .compare_exchange(
                        s,
                        (s - WAITING_ONE) | WRITER,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .ok()
                    .map(|_| WriteGuard(self))
            })
            .await;
        std::mem::forget(waiting);
        g
    }
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        let before = self.0.state.fetch_sub(1, Ordering::Release);
        if before & READERS == 1 && before & WAITING != 0 {
            self.0.writers.wake_one();
        }
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        let before = self.0.state.fetch_and(!WRITER, Ordering::Release);
        self.0.wake(before & !WRITER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // Parks the thread while pending (woken by the lock), unlike the spinning test one.
    use ffs::block_on;
    use std::future::Future;
    use std::pin::pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};

    #[test]
    fn readers_share_writers_exclude() {
        let l = RwLock::new();
        let r1 = l.try_read().expect("free");
        let r2 = l.try_read().expect("shared");
        assert!(l.try_write().is_none());
        drop((r1, r2));
        let w = l.try_write().expect("free again");
        assert!(l.try_read().is_none());
        assert!(l.try_write().is_none());
        drop(w);
        assert!(l.try_read().is_some());
    }

    /// A waiting writer keeps new readers out (no starvation), gets in when the last reader
    /// leaves, and a writer that gives up lets readers in again.
    #[test]
    fn a_waiting_writer_goes_first_and_a_cancelled_one_leaves_no_trace() {
        let l = RwLock::new();
        let mut cx = Context::from_waker(Waker::noop());
        let r = l.try_read().unwrap();
        {
            let mut w = pin!(l.write());
            assert!(w.as_mut().poll(&mut cx).is_pending());
            assert!(
                l.try_read().is_none(),
                "a writer waits: readers queue behind it"
            );
            drop(r);
            match w.as_mut().poll(&mut cx) {
                Poll::Ready(g) => drop(g),
                Poll::Pending => panic!("the last reader left: the writer is in"),
            }
        }
        let r = l.try_read().unwrap();
        {
            let mut w = pin!(l.write());
            assert!(w.as_mut().poll(&mut cx).is_pending());
        }
        assert!(
            l.try_read().is_some(),
            "the cancelled writer counts no more"
        );
        drop(r);
        assert!(l.try_write().is_some());
    }

    /// Many threads take both sides; a counter changed only under the write side never loses
    /// an update, and readers never see a writer's half-done change.
    #[test]
    fn threads_never_lose_an_update() {
        let l = Arc::new(RwLock::new());
        let cell = Arc::new(std::sync::Mutex::new((0u64, 0u64)));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (l, cell) = (l.clone(), cell.clone());
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        if (i + t) % 3 == 0 {
                            let _g = block_on(l.write());
                            // Read, then write back, then complete: without the lock
                            // another writer's update could be lost in between.
                            let a = cell.lock().unwrap().0;
                            std::thread::yield_now();
                            cell.lock().unwrap().0 = a + 1;
                            std::thread::yield_now();
                            cell.lock().unwrap().1 = a + 1;
                        } else {
                            let _g = block_on(l.read());
                            let c = *cell.lock().unwrap();
                            assert_eq!(c.0, c.1, "a reader saw a write in progress");
                        }
                    }
                })
            })
            .collect();
        let mut writes = 0;
        for (t, h) in threads.into_iter().enumerate() {
            h.join().unwrap();
            writes += (0..2000).filter(|i| (i + t) % 3 == 0).count() as u64;
        }
        assert_eq!(cell.lock().unwrap().0, writes);
    }
}

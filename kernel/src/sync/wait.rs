//! `WaitQueue`, the interruptible sleep of a process (`cv_wait_sig`) and its `Interrupt`.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex as StdMutex, MutexGuard as StdGuard};
use std::task::{Poll, Waker};

use crate::{Errno, Proc, Result};

/// The sleepers of one condition (a condition variable without its mutex).
///
/// Wakers may be called from any thread. A queue holds one entry per sleeping task, so its
/// size is bounded by the number of tasks that can sleep on it.
#[derive(Default)]
pub struct WaitQueue {
    inner: StdMutex<Sleepers>,
}

#[derive(Default)]
struct Sleepers {
    next_id: u64,
    list: Vec<(u64, Waker)>,
}

impl WaitQueue {
    /// An empty queue.
    pub const fn new() -> WaitQueue {
        WaitQueue {
            inner: StdMutex::new(Sleepers {
                next_id: 0,
                list: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> StdGuard<'_, Sleepers> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `cv_broadcast`: wakes every sleeper. Call it after changing the condition.
    pub fn wake_all(&self) {
        let list = std::mem::take(&mut self.lock().list);
        for (_, w) in list {
            w.wake();
        }
    }

    /// `cv_signal`: wakes the longest sleeper. A sleeper woken this way that gives up (its
    /// future dropped, or interrupted) passes the wake-up on, so none is lost.
    pub fn wake_one(&self) {
        let first = {
            let mut s = self.lock();
            (!s.list.is_empty()).then(|| s.list.remove(0))
        };
        if let Some((_, w)) = first {
            w.wake();
        }
    }

    /// `selrecord`: registers `w` to be woken by the next wake-up of this queue, once (a
    /// waker already registered is not added again). For readiness hooks
    /// (`FileOps::poll`), which ask again after the wake-up.
    pub fn register(&self, w: &Waker) {
        let mut s = self.lock();
        if s.list.iter().any(|(_, x)| x.will_wake(w)) {
            return;
        }
        let id = s.next_id;
        s.next_id += 1;
        s.list.push((id, w.clone()));
    }

    /// `selrecord` with a handle: registers `w` for the next wake-up and returns the id that
    /// [`WaitQueue::cancel`] takes to remove it again (`seldeselect`), so a poller that stops
    /// waiting leaves nothing behind in the queue.
    pub fn register_keyed(&self, w: &Waker) -> u64 {
        let mut s = self.lock();
        let id = s.next_id;
        s.next_id += 1;
        s.list.push((id, w.clone()));
        id
    }

    /// Removes the registration `id` if it is still there (not yet woken).
    pub fn cancel(&self, id: u64) {
        let mut s = self.lock();
        if let Some(i) = s.list.iter().position(|e| e.0 == id) {
            s.list.remove(i);
        }
    }

    /// Number of registered sleepers (for tests and assertions).
    pub fn sleepers(&self) -> usize {
        self.lock().list.len()
    }

    /// Waits, not interruptibly (`cv_wait`), until `f` returns `Some`.
    pub async fn wait_for<T>(&self, mut f: impl FnMut() -> Option<T>) -> T {
        if let Some(v) = f() {
            return v;
        }
        let mut reg = Registration::new(self);
        let v = poll_fn(|cx| {
            reg.register(cx.waker());
            match f() {
                Some(v) => Poll::Ready(v),
                None => Poll::Pending,
            }
        })
        .await;
        reg.finish();
        v
    }
}

/// One task's entry in a [`WaitQueue`] while it sleeps; dropping it deregisters.
pub(super) struct Registration<'a> {
    q: &'a WaitQueue,
    id: Option<u64>,
    /// A wake-up of the queue took the entry out at least once: if the sleep now gives up,
    /// that wake-up (maybe a `wake_one` meant for the next sleeper) is passed on.
    woken: bool,
}

impl<'a> Registration<'a> {
    pub(super) fn new(q: &'a WaitQueue) -> Self {
        Registration {
            q,
            id: None,
            woken: false,
        }
    }

    /// Puts (or refreshes) the waker in the queue; it is removed when woken.
    pub(super) fn register(&mut self, w: &Waker) {
        let mut s = self.q.lock();
        if let Some(id) = self.id {
            if let Some(e) = s.list.iter_mut().find(|e| e.0 == id) {
                if !e.1.will_wake(w) {
                    e.1 = w.clone();
                }
                return;
            }
            // Woken since the last poll: back in the queue, and remember it.
            self.woken = true;
            s.list.push((id, w.clone()));
            return;
        }
        let id = s.next_id;
        s.next_id += 1;
        s.list.push((id, w.clone()));
        self.id = Some(id);
    }

    /// Removes the entry; true if it was still there (not woken).
    fn remove(&mut self) -> bool {
        let Some(id) = self.id.take() else {
            return true;
        };
        let mut s = self.q.lock();
        match s.list.iter().position(|e| e.0 == id) {
            Some(i) => {
                s.list.remove(i);
                true
            }
            None => false,
        }
    }

    /// The sleep succeeded: leave without passing a wake-up on.
    pub(super) fn finish(mut self) {
        self.remove();
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        // Woken but giving up: the wake-up may have been a wake_one meant for someone. Also
        // when the entry went back in before giving up (woken by `wake_one`, then
        // interrupted): without this the next sleeper would never be woken (found by the
        // kernel simulation, seed 6273: a vnode lock stayed free with a writer asleep).
        // At worst a sleeper is woken for nothing and sleeps again.
        let was_there = self.remove();
        if !was_there || self.woken {
            self.q.wake_one();
        }
    }
}

/// The "exiting" state of a process and the wake-up of its sleeps (`LW_WEXIT` + `lwp_exit`
/// waking interruptible sleeps).
#[derive(Default)]
pub struct Interrupt {
    set: AtomicBool,
    sleepers: WaitQueue,
}

impl Interrupt {
    /// Not interrupted.
    pub const fn new() -> Interrupt {
        Interrupt {
            set: AtomicBool::new(false),
            sleepers: WaitQueue::new(),
        }
    }

    /// Marks the owner exiting and wakes its sleeps; they and all later ones give `EINTR`.
    pub fn raise(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.sleepers.wake_all();
    }

    /// The queue of the owner's interruptible sleeps.
    pub(super) fn sleepers(&self) -> &WaitQueue {
        &self.sleepers
    }

    /// Whether [`Interrupt::raise`] was called.
    pub fn is_raised(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }
}

/// `cv_wait_sig` for process `p`: sleeps on `q` until `f` returns `Some` (evaluated first
/// without sleeping, then after every wake-up). `EINTR` if `p` is exiting when it would
/// sleep or while it sleeps.
pub async fn wait_for<T>(p: &Proc, q: &WaitQueue, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    if let Some(v) = f() {
        return Ok(v);
    }
    let intr = p.interrupt();
    let mut reg = Registration::new(q);
    let mut ireg = Registration::new(&intr.sleepers);
    let res = poll_fn(|cx| {
        reg.register(cx.waker());
        ireg.register(cx.waker());
        if intr.is_raised() {
            return Poll::Ready(Err(Errno::EINTR));
        }
        match f() {
            Some(v) => Poll::Ready(Ok(v)),
            None => Poll::Pending,
        }
    })
    .await;
    if res.is_ok() {
        reg.finish();
    }
    res
}

/// [`wait_for`] with a plain condition: sleeps on `q` until `cond()` is true.
pub async fn sleep_until(p: &Proc, q: &WaitQueue, mut cond: impl FnMut() -> bool) -> Result<()> {
    wait_for(p, q, || cond().then_some(())).await
}

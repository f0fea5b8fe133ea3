//! Selecting: a poller's registrations on many wait queues (`selrecord`/`seldeselect`) and
//! the interruptible, timed wait of poll(2), select(2) and kevent(2) on them.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use super::timer::{diff_ns, HostSleep};
use super::wait::Registration;
use super::WaitQueue;
use crate::{Errno, Host, Proc, Result};

/// One poller's registrations (NetBSD's `selinfo` records of an LWP): the waker to call and
/// the queues it is on, cancelled before each new scan and on drop, and the earliest time
/// a file asked to be asked again (a timer it depends on). Bounded by the queues of the
/// descriptors one scan looks at.
pub struct Selector {
    waker: Waker,
    regs: Vec<(Arc<WaitQueue>, u64)>,
    wake_at: Option<(i64, i64)>,
}

impl Selector {
    /// A selector that wakes `waker`.
    pub fn new(waker: Waker) -> Selector {
        Selector {
            waker,
            regs: Vec::new(),
            wake_at: None,
        }
    }

    /// `selrecord`: be woken by the next wake-up of `q`.
    pub fn record(&mut self, q: &Arc<WaitQueue>) {
        if self.regs.iter().any(|(x, _)| Arc::ptr_eq(x, q)) {
            return;
        }
        let id = q.register_keyed(&self.waker);
        self.regs.push((q.clone(), id));
    }

    /// Asks to be woken no later than `deadline` of the monotonic clock.
    pub fn wake_at(&mut self, deadline: (i64, i64)) {
        self.wake_at = Some(match self.wake_at {
            Some(d) if d <= deadline => d,
            _ => deadline,
        });
    }

    /// The earliest deadline asked for since the last [`Selector::clear`].
    pub fn deadline(&self) -> Option<(i64, i64)> {
        self.wake_at
    }

    /// Cancels every registration (`seldeselect`) and the deadline, before a new scan.
    pub fn clear(&mut self) {
        for (q, id) in self.regs.drain(..) {
            q.cancel(id);
        }
        self.wake_at = None;
    }

    /// Uses `w` from now on (a task's waker may change between polls); cancels what was
    /// recorded with the old one.
    pub fn set_waker(&mut self, w: &Waker) {
        if !self.waker.will_wake(w) {
            self.clear();
            self.waker = w.clone();
        }
    }

    /// Whether anything is recorded (for tests).
    pub fn is_recorded(&self) -> bool {
        !self.regs.is_empty() || self.wake_at.is_some()
    }
}

impl Drop for Selector {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The wait of poll/select/kevent (`sel_do_scan`): runs `scan` with a fresh [`Selector`]
/// until it gives a result, then returns it; `Ok(None)` once `deadline` (the monotonic
/// clock, `None` = forever) has passed with nothing found (a deadline already past means
/// one scan); `EINTR` once `p` is exiting. A scan that finds nothing records the selector
/// on the queues to watch, and may ask for a timed rescan ([`Selector::wake_at`]).
pub async fn select_wait<T>(
    p: &Proc,
    host: &dyn Host,
    deadline: Option<(i64, i64)>,
    mut scan: impl FnMut(&mut Selector) -> Result<Option<T>>,
) -> Result<Option<T>> {
    let intr = p.interrupt();
    let mut ireg = Registration::new(intr.sleepers());
    let mut sel: Option<Selector> = None;
    let mut timer: Option<(HostSleep, (i64, i64))> = None;
    let res = poll_fn(|cx| loop {
        ireg.register(cx.waker());
        if intr.is_raised() {
            return Poll::Ready(Err(Errno::EINTR));
        }
        let s = sel.get_or_insert_with(|| Selector::new(cx.waker().clone()));
        s.set_waker(cx.waker());
        s.clear();
        match scan(s) {
            Err(e) => return Poll::Ready(Err(e)),
            Ok(Some(v)) => return Poll::Ready(Ok(Some(v))),
            Ok(None) => {}
        }
        let now = host.clock_monotonic();
        if deadline.is_some_and(|d| diff_ns(d, now) <= 0) {
            return Poll::Ready(Ok(None));
        }
        let wake = match (deadline, s.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Some(at) = wake else {
            timer = None;
            return Poll::Pending;
        };
        if timer.as_ref().map(|t| t.1) != Some(at) {
            let left = u64::try_from(diff_ns(at, now).max(0)).unwrap_or(u64::MAX);
            timer = Some((host.sleep(Duration::from_nanos(left)), at));
        }
        let Some((t, _)) = timer.as_mut() else {
            return Poll::Pending;
        };
        match t.as_mut().poll(cx) {
            // The time asked for has come: scan again.
            Poll::Ready(()) => timer = None,
            Poll::Pending => return Poll::Pending,
        }
    })
    .await;
    if res.is_ok() {
        ireg.finish();
    }
    res
}

//! Timed sleeps: the host's timer behind [`crate::Host::sleep`], a portable default timer
//! thread for hosts without a runtime timer, and the interruptible [`sleep_for`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use super::wait::Registration;
use crate::{Errno, Host, Proc, Result};

/// A sleep in progress, as a host hands it out.
pub type HostSleep = Pin<Box<dyn Future<Output = ()>>>;

/// One pending deadline of the default timer.
struct Entry {
    at: Instant,
    seq: u64,
    fired: Arc<AtomicBool>,
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

#[derive(Default)]
struct Wheel {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    started: bool,
}

#[derive(Default)]
struct Timer {
    wheel: Mutex<Wheel>,
    cv: Condvar,
}

fn timer() -> &'static Timer {
    static T: OnceLock<Timer> = OnceLock::new();
    T.get_or_init(Timer::default)
}

impl Timer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Wheel> {
        self.wheel.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Arms a deadline; false if no timer thread could be started.
    fn arm(&'static self, at: Instant, fired: Arc<AtomicBool>, waker: Waker) -> bool {
        let mut w = self.lock();
        if !w.started {
            let spawned = std::thread::Builder::new()
                .name("rump-timer".into())
                .spawn(move || self.run());
            w.started = spawned.is_ok();
            if !w.started {
                return false;
            }
        }
        w.seq += 1;
        let seq = w.seq;
        w.heap.push(Reverse(Entry {
            at,
            seq,
            fired,
            waker,
        }));
        drop(w);
        self.cv.notify_one();
        true
    }

    fn run(&self) {
        let mut w = self.lock();
        loop {
            let now = Instant::now();
            while w.heap.peek().is_some_and(|e| e.0.at <= now) {
                if let Some(Reverse(e)) = w.heap.pop() {
                    e.fired.store(true, Ordering::Release);
                    e.waker.wake();
                }
            }
            w = match w.heap.peek() {
                Some(e) => {
                    let wait = e.0.at.saturating_duration_since(now);
                    self.cv
                        .wait_timeout(w, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.cv.wait(w).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}

/// A sleep of `d` on the default timer: one thread, `rump-timer`, keeps the deadlines of
/// every sleeping task in a heap (one entry per sleeping poll, so bounded by the tasks).
/// For hosts whose runtime has no timer of its own; without a timer thread it completes at
/// once (a sleep is then a yield, never a blocked loop).
pub fn std_sleep(d: Duration) -> HostSleep {
    let at = Instant::now() + d;
    let fired = Arc::new(AtomicBool::new(false));
    let mut armed = false;
    Box::pin(poll_fn(move |cx| {
        if fired.load(Ordering::Acquire) || Instant::now() >= at {
            return Poll::Ready(());
        }
        if !armed {
            armed = true;
            if !timer().arm(at, fired.clone(), cx.waker().clone()) {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }))
}

/// Sleeps `p` until `deadline` of the host's monotonic clock (`(sec, nsec)`), interruptibly
/// (`kpause` with `PCATCH`): `EINTR` once the process is exiting (a disconnect). The host
/// timer may wake early or late; each wake-up rereads the clock, so the sleep never ends
/// before the deadline.
pub async fn sleep_for(p: &Proc, host: &dyn Host, deadline: (i64, i64)) -> Result<()> {
    let intr = p.interrupt();
    loop {
        if intr.is_raised() {
            return Err(Errno::EINTR);
        }
        let now = host.clock_monotonic();
        let left = diff_ns(deadline, now);
        if left <= 0 {
            return Ok(());
        }
        let left = u64::try_from(left).unwrap_or(u64::MAX);
        let mut timer = host.sleep(Duration::from_nanos(left));
        let mut reg = Registration::new(intr.sleepers());
        let woke = poll_fn(|cx| {
            reg.register(cx.waker());
            if intr.is_raised() {
                return Poll::Ready(false);
            }
            timer.as_mut().poll(cx).map(|()| true)
        })
        .await;
        if !woke {
            return Err(Errno::EINTR);
        }
        reg.finish();
    }
}

/// `a − b` in nanoseconds, saturating.
pub(super) fn diff_ns(a: (i64, i64), b: (i64, i64)) -> i128 {
    let ns = |t: (i64, i64)| i128::from(t.0) * 1_000_000_000 + i128::from(t.1);
    ns(a) - ns(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{block_on, Fixture};
    use crate::StdHost;

    #[test]
    fn std_sleep_waits_its_time() {
        let t = Instant::now();
        block_on(std_sleep(Duration::from_millis(30)));
        assert!(t.elapsed() >= Duration::from_millis(30));
        // Several sleeps at once fire in deadline order.
        let t = Instant::now();
        block_on(async {
            let a = std_sleep(Duration::from_millis(20));
            let b = std_sleep(Duration::from_millis(10));
            b.await;
            a.await;
        });
        assert!(t.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn sleep_for_ends_at_the_deadline_or_with_eintr() {
        let f = Fixture::new();
        let host = StdHost;
        let now = host.clock_monotonic();
        let t = Instant::now();
        let deadline = (now.0, now.1 + 40_000_000);
        assert_eq!(block_on(sleep_for(&f.p, &host, deadline)), Ok(()));
        assert!(t.elapsed() >= Duration::from_millis(40));
        // A disconnect during a long sleep ends it at once.
        let p = f.p.clone();
        let raiser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            p.interrupt().raise();
        });
        let t = Instant::now();
        let far = (now.0 + 3600, 0);
        assert_eq!(block_on(sleep_for(&f.p, &host, far)), Err(Errno::EINTR));
        assert!(t.elapsed() < Duration::from_secs(10));
        raiser.join().unwrap();
        assert_eq!(block_on(sleep_for(&f.p, &host, far)), Err(Errno::EINTR));
    }
}

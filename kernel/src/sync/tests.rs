//! Tests of wait queues, interruptible sleeps and the async mutex, across real threads.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use super::*;
use crate::testutil::Fixture;
use crate::Errno;

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `fut` on this thread with a real waker; panics if it stays asleep for 10 s (a lost
/// wake-up).
pub(crate) fn run<F: Future>(fut: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        let t = Instant::now();
        thread::park_timeout(Duration::from_secs(10));
        assert!(t.elapsed() < Duration::from_secs(10), "lost wake-up");
    }
}

#[test]
fn ping_pong_across_threads_loses_no_wake_up() {
    const ROUNDS: usize = 20_000;
    let f = Fixture::new();
    let turn = Arc::new(StdMutex::new(0usize));
    let q = Arc::new(WaitQueue::new());
    let (p, t2, q2) = (f.p.clone(), turn.clone(), q.clone());
    let other = thread::spawn(move || {
        for i in 0..ROUNDS {
            run(sleep_until(&p, &q2, || *t2.lock().unwrap() == 2 * i + 1)).unwrap();
            *t2.lock().unwrap() += 1;
            q2.wake_all();
        }
    });
    for i in 0..ROUNDS {
        run(sleep_until(&f.p, &q, || *turn.lock().unwrap() == 2 * i)).unwrap();
        *turn.lock().unwrap() += 1;
        q.wake_all();
    }
    other.join().unwrap();
    assert_eq!(*turn.lock().unwrap(), 2 * ROUNDS);
    assert_eq!(q.sleepers(), 0);
}

#[test]
fn many_sleepers_one_counter_wake_one_and_all() {
    let f = Fixture::new();
    let count = Arc::new(AtomicUsize::new(0));
    let q = Arc::new(WaitQueue::new());
    let mut threads = Vec::new();
    for _ in 0..8 {
        let (p, c, q) = (f.p.clone(), count.clone(), q.clone());
        threads.push(thread::spawn(move || {
            for _ in 0..2_000 {
                // Take one token when there is one.
                run(wait_for(&p, &q, || {
                    c.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
                        .ok()
                }))
                .unwrap();
            }
        }));
    }
    for i in 0..16_000 {
        count.fetch_add(1, Ordering::SeqCst);
        if i % 2 == 0 {
            q.wake_one();
        } else {
            q.wake_all();
        }
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[test]
fn begin_exit_interrupts_sleeps_now_and_later() {
    let f = Fixture::new();
    let q = Arc::new(WaitQueue::new());
    let (p, q2) = (f.p.clone(), q.clone());
    let sleeper = thread::spawn(move || run(sleep_until(&p, &q2, || false)));
    while q.sleepers() == 0 {
        thread::yield_now();
    }
    f.k.begin_exit(&f.p);
    assert_eq!(sleeper.join().unwrap(), Err(Errno::EINTR));
    assert!(f.p.exiting());
    // A new sleep fails at once; a satisfied condition does not sleep at all.
    assert_eq!(run(sleep_until(&f.p, &q, || false)), Err(Errno::EINTR));
    assert_eq!(run(wait_for(&f.p, &q, || Some(7))), Ok(7));
    // Other processes are not affected.
    let other = f.k.spawn_guest(b"other").unwrap();
    assert!(!other.exiting());
    assert_eq!(q.sleepers(), 0);
}

#[test]
fn a_dropped_sleep_deregisters_and_passes_wake_one_on() {
    let f = Fixture::new();
    let q = WaitQueue::new();
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    {
        let mut a = pin!(sleep_until(&f.p, &q, || false));
        assert!(a.as_mut().poll(&mut cx).is_pending());
        assert_eq!(q.sleepers(), 1);
    }
    assert_eq!(q.sleepers(), 0);
    // Woken by wake_one, then dropped: the next sleeper gets the wake-up.
    let mut a = Box::pin(sleep_until(&f.p, &q, || false));
    let mut b = Box::pin(sleep_until(&f.p, &q, || false));
    assert!(a.as_mut().poll(&mut cx).is_pending());
    assert!(b.as_mut().poll(&mut cx).is_pending());
    q.wake_one();
    assert_eq!(q.sleepers(), 1);
    drop(a);
    assert_eq!(q.sleepers(), 0);
    drop(b);
}

#[test]
fn a_sleep_woken_by_wake_one_then_interrupted_passes_the_wake_up_on() {
    let f = Fixture::new();
    let g = f.k.spawn_guest(b"second").unwrap();
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let m = Mutex::new(());
    let wa = Arc::new(Count(AtomicUsize::new(0)));
    let wb = Arc::new(Count(AtomicUsize::new(0)));
    let (wka, wkb) = (Waker::from(wa.clone()), Waker::from(wb.clone()));
    let (mut ca, mut cb) = (Context::from_waker(&wka), Context::from_waker(&wkb));
    let held = m.try_lock().unwrap();
    let mut a = Box::pin(m.lock_sig(&f.p));
    let mut b = Box::pin(m.lock_sig(&g));
    assert!(a.as_mut().poll(&mut ca).is_pending());
    assert!(b.as_mut().poll(&mut cb).is_pending());
    // The unlock wakes `a` only; `a`'s process is told to exit before `a` runs again.
    drop(held);
    assert_eq!(wb.0.load(Ordering::SeqCst), 0);
    f.k.begin_exit(&f.p);
    let r = a.as_mut().poll(&mut ca);
    assert!(matches!(r, Poll::Ready(Err(Errno::EINTR))));
    drop(a);
    // `b` is woken in `a`'s place (else it sleeps forever by a free lock) and gets it.
    assert!(wb.0.load(Ordering::SeqCst) > 0, "the wake-up was lost");
    assert!(matches!(b.as_mut().poll(&mut cb), Poll::Ready(Ok(_))));
}

#[test]
fn async_mutex_excludes_across_threads() {
    let m = Arc::new(Mutex::new(0u64));
    let mut threads = Vec::new();
    for _ in 0..4 {
        let m = m.clone();
        threads.push(thread::spawn(move || {
            for _ in 0..5_000 {
                run(async {
                    let mut g = m.lock().await;
                    let v = *g;
                    std::hint::black_box(());
                    *g = v + 1;
                });
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*run(m.lock()), 20_000);
    let g = m.try_lock().unwrap();
    assert!(m.try_lock().is_none());
    drop(g);
    let f = Fixture::new();
    let g = m.try_lock().unwrap();
    f.k.begin_exit(&f.p);
    assert_eq!(run(m.lock_sig(&f.p)).err(), Some(Errno::EINTR));
    drop(g);
    assert!(run(m.lock_sig(&f.p)).is_ok());
}

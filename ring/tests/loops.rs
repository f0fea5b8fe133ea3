//! Loop threads, pinning, cross-thread wake-ups, waker/future thread discipline, shutdown,
//! timers and the in-flight bound.

mod common;

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::sync::mpsc;
use std::task::Poll;
use std::time::{Duration, Instant};

use common::{affinity_cpus, oneshot, recv, start, DropRecorder};
use ring::Backend;

both_backends!(
    spawn_runs_on_every_loop_thread_and_pins,
    unpinned_loops_keep_the_process_mask,
    cross_thread_wake_from_another_loop_and_a_plain_thread,
    a_waker_outliving_its_task_never_drops_the_future_off_the_loop,
    pending_future_with_remote_waker_is_dropped_on_its_loop_at_shutdown,
    spawn_after_shutdown_started_does_not_run,
    yield_now_interleaves_tasks,
    sleep_waits_and_a_dropped_sleep_is_cancelled,
    shutdown_cancels_pending_sleeps_quickly,
    more_ops_than_the_in_flight_bound_all_complete,
    loops_spawn_onto_each_other,
    a_panicking_task_does_not_kill_its_loop,
);

fn spawn_runs_on_every_loop_thread_and_pins(b: Backend) {
    let Some(rt) = start(b, 3, true) else { return };
    let cores = core_affinity::get_core_ids().map(|c| c.len()).unwrap_or(0);
    let (tx, rx) = mpsc::channel();
    for h in rt.handles() {
        let tx = tx.clone();
        let want = h.index();
        h.spawn(move || async move {
            let rc = Rc::new(()); // a !Send future is fine
            let me = ring::current().expect("on a loop").index();
            let name = std::thread::current().name().map(str::to_owned);
            tx.send((want, me, name, affinity_cpus(), Rc::strong_count(&rc)))
                .unwrap();
        });
    }
    for _ in 0..3 {
        let (want, me, name, cpus, _) = recv(&rx);
        assert_eq!(want, me);
        assert_eq!(name.as_deref(), Some(format!("ring-{want}").as_str()));
        if cores > 0 {
            assert_eq!(cpus, 1, "loop {want} is pinned to one CPU");
            assert!(rt.handles()[want].core().is_some());
        }
    }
    assert!(ring::current().is_none(), "the test thread is no loop");
    rt.shutdown();
}

fn unpinned_loops_keep_the_process_mask(b: Backend) {
    let Some(rt) = start(b, 2, false) else { return };
    let all = affinity_cpus();
    let (tx, rx) = mpsc::channel();
    rt.handles()[1].spawn(move || async move { tx.send(affinity_cpus()).unwrap() });
    assert_eq!(recv(&rx), all);
    assert!(rt.handles()[1].core().is_none());
}

#[test]
#[should_panic(expected = "off a loop thread")]
fn spawn_local_off_a_loop_panics() {
    ring::spawn_local(async {});
}

fn cross_thread_wake_from_another_loop_and_a_plain_thread(b: Backend) {
    let Some(rt) = start(b, 2, true) else { return };
    let (done_tx, done_rx) = mpsc::channel();
    // From loop 1.
    let (tx, rx) = oneshot::<u32>();
    let d = done_tx.clone();
    rt.handles()[0].spawn(move || async move {
        let v = rx.await;
        d.send((v, ring::current().unwrap().index())).unwrap();
    });
    rt.handles()[1].spawn(move || async move {
        ring::sleep(Duration::from_millis(30)).await; // let loop 0 go to sleep first
        tx.send(7);
    });
    assert_eq!(recv(&done_rx), (Some(7), 0));
    // From a plain thread, several times, while loop 0 sleeps in io_uring_enter.
    for i in 0..20 {
        let (tx, rx) = oneshot::<u32>();
        let d = done_tx.clone();
        rt.handles()[0].spawn(move || async move {
            let v = rx.await;
            d.send((v, ring::current().unwrap().index())).unwrap();
        });
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(if i % 2 == 0 { 20 } else { 0 }));
            tx.send(i);
        });
        assert_eq!(recv(&done_rx), (Some(i), 0));
        t.join().unwrap();
    }
}

fn a_waker_outliving_its_task_never_drops_the_future_off_the_loop(b: Backend) {
    let Some(rt) = start(b, 1, false) else { return };
    let (rec, dropped_on) = DropRecorder::new();
    let (waker_tx, waker_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    rt.handles()[0].spawn(move || async move {
        let rc = Rc::new(rec); // !Send state inside the future
        let mut sent = false;
        std::future::poll_fn(|cx| {
            if !sent {
                sent = true;
                waker_tx.send(cx.waker().clone()).unwrap();
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(())
        })
        .await;
        done_tx.send(std::thread::current().id()).unwrap();
        drop(rc);
    });
    let loop_thread = recv(&done_rx);
    let waker = recv(&waker_rx);
    std::thread::sleep(Duration::from_millis(20));
    // The task is finished: waking and dropping the last outside waker here must not touch it.
    let t = std::thread::spawn(move || {
        waker.wake_by_ref();
        drop(waker);
    });
    t.join().unwrap();
    let (tid, _) = dropped_on
        .lock()
        .unwrap()
        .clone()
        .expect("the future was dropped");
    assert_eq!(tid, loop_thread);
    rt.shutdown();
}

fn pending_future_with_remote_waker_is_dropped_on_its_loop_at_shutdown(b: Backend) {
    let Some(rt) = start(b, 2, true) else { return };
    let mut recorders = Vec::new();
    let (waker_tx, waker_rx) = mpsc::channel();
    for h in rt.handles() {
        let (rec, dropped_on) = DropRecorder::new();
        recorders.push((h.index(), dropped_on));
        let waker_tx = waker_tx.clone();
        h.spawn(move || async move {
            let _rc = Rc::new(rec);
            std::future::poll_fn(|cx| {
                waker_tx.send(cx.waker().clone()).unwrap();
                Poll::<()>::Pending
            })
            .await;
        });
    }
    let wakers: Vec<_> = (0..2).map(|_| recv(&waker_rx)).collect();
    rt.shutdown();
    for (i, d) in recorders {
        let (_, name) = d.lock().unwrap().clone().expect("dropped at shutdown");
        assert_eq!(name.as_deref(), Some(format!("ring-{i}").as_str()));
    }
    // Wakers of dead loops are still safe to use.
    for w in wakers {
        w.wake();
    }
}

fn spawn_after_shutdown_started_does_not_run(b: Backend) {
    let Some(rt) = start(b, 1, false) else { return };
    let h = rt.handles()[0].clone();
    rt.shutdown();
    let (tx, rx) = mpsc::channel::<()>();
    h.spawn(move || async move { tx.send(()).unwrap() });
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
}

fn yield_now_interleaves_tasks(b: Backend) {
    let Some(rt) = start(b, 1, false) else { return };
    let (tx, rx) = mpsc::channel();
    rt.handles()[0].spawn(move || async move {
        let log = Rc::new(std::cell::RefCell::new(Vec::new()));
        for id in 0..2 {
            let log = log.clone();
            ring::spawn_local(async move {
                for step in 0..3 {
                    log.borrow_mut().push((id, step));
                    ring::yield_now().await;
                }
            });
        }
        ring::sleep(Duration::from_millis(20)).await;
        tx.send(log.borrow().clone()).unwrap();
    });
    let log = recv(&rx);
    assert_eq!(log, vec![(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]);
}

fn sleep_waits_and_a_dropped_sleep_is_cancelled(b: Backend) {
    let Some(rt) = start(b, 1, false) else { return };
    let (tx, rx) = mpsc::channel();
    rt.handles()[0].spawn(move || async move {
        let t0 = Instant::now();
        ring::sleep(Duration::from_millis(50)).await;
        let slept = t0.elapsed();
        // Start a long sleep, poll it once, drop it.
        let mut long = Box::pin(ring::sleep(Duration::from_secs(3600)));
        std::future::poll_fn(|cx| {
            assert!(long.as_mut().poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        drop(long);
        ring::yield_now().await;
        tx.send(slept).unwrap();
    });
    let slept = recv(&rx);
    assert!(slept >= Duration::from_millis(50), "slept {slept:?}");
    assert!(slept < Duration::from_secs(5), "slept {slept:?}");
    let t0 = Instant::now();
    rt.shutdown();
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "the hour-long sleep was cancelled"
    );
}

fn shutdown_cancels_pending_sleeps_quickly(b: Backend) {
    let Some(rt) = start(b, 2, true) else { return };
    let (tx, rx) = mpsc::channel();
    for h in rt.handles() {
        let tx = tx.clone();
        h.spawn(move || async move {
            for _ in 0..10 {
                ring::spawn_local(ring::sleep(Duration::from_secs(3600)));
            }
            tx.send(()).unwrap();
            ring::sleep(Duration::from_secs(3600)).await;
        });
    }
    recv(&rx);
    recv(&rx);
    std::thread::sleep(Duration::from_millis(20));
    let t0 = Instant::now();
    rt.shutdown();
    assert!(t0.elapsed() < Duration::from_secs(1));
}

fn more_ops_than_the_in_flight_bound_all_complete(b: Backend) {
    let Some(rt) = start(b, 1, false) else { return };
    // ring_entries 64 gives a 4096-entry CQ, i.e. at most 2047 ops in flight.
    const N: usize = 5000;
    let (tx, rx) = mpsc::channel();
    rt.handles()[0].spawn(move || async move {
        let done = Rc::new(Cell::new(0usize));
        for i in 0..N {
            let done = done.clone();
            ring::spawn_local(async move {
                ring::sleep(Duration::from_millis(20 + (i % 7) as u64)).await;
                done.set(done.get() + 1);
            });
        }
        while done.get() < N {
            ring::sleep(Duration::from_millis(5)).await;
        }
        tx.send(done.get()).unwrap();
    });
    assert_eq!(recv(&rx), N);
}

fn loops_spawn_onto_each_other(b: Backend) {
    let Some(rt) = start(b, 2, true) else { return };
    let (tx, rx) = mpsc::channel();
    let handles = rt.handles().to_vec();
    rt.handles()[0].spawn(move || async move {
        let tx2 = tx.clone();
        handles[1].spawn(move || async move {
            tx2.send(ring::current().unwrap().index()).unwrap();
        });
        tx.send(ring::current().unwrap().index()).unwrap();
    });
    let mut got = vec![recv(&rx), recv(&rx)];
    got.sort();
    assert_eq!(got, vec![0, 1]);
}

fn a_panicking_task_does_not_kill_its_loop(b: Backend) {
    let Some(rt) = start(b, 1, false) else { return };
    rt.handles()[0].spawn(|| async { panic!("test panic in a task (expected)") });
    let (tx, rx) = mpsc::channel();
    rt.handles()[0].spawn(move || async move { tx.send(1).unwrap() });
    assert_eq!(recv(&rx), 1);
}

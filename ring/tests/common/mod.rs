//! Helpers shared by the ring integration tests: start-or-skip on a chosen backend, a macro
//! that runs a test on both backends, a oneshot channel whose sender may live on any thread,
//! and a drop recorder.

#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::ThreadId;

/// Defines, for each function `name(backend)`, the tests `name::io_uring` and `name::epoll`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn io_uring() {
                super::$name(ring::Backend::IoUring)
            }
            #[test]
            fn epoll() {
                super::$name(ring::Backend::Epoll)
            }
        }
    )*};
}

/// Starts a runtime on `backend` (through `Config::backend`), or, for io_uring, prints why it
/// is unusable here and returns `None` (skip).
pub fn start(backend: ring::Backend, loops: usize, pin: bool) -> Option<ring::Runtime> {
    let choice = match backend {
        ring::Backend::IoUring => {
            if let Err(e) = ring::probe_io_uring() {
                eprintln!("skipping: {e}");
                return None;
            }
            ring::BackendChoice::IoUring
        }
        ring::Backend::Epoll => ring::BackendChoice::Epoll,
    };
    let cfg = ring::Config {
        loops,
        pin,
        ring_entries: 64,
        backend: Some(choice),
        ..Default::default()
    };
    let rt = ring::Runtime::start(&cfg).expect("runtime start after a successful probe");
    assert!(rt.handles().iter().all(|h| h.backend() == backend));
    Some(rt)
}

/// The backend `RUMP_IO_BACKEND` asks for (io_uring unless it says epoll), for the ignored
/// measurement tests.
pub fn env_backend() -> ring::Backend {
    match ring::BackendChoice::from_env() {
        Ok(ring::BackendChoice::Epoll) => ring::Backend::Epoll,
        _ => ring::Backend::IoUring,
    }
}

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    closed: bool,
}

/// The sending half; `Send` when `T` is.
pub struct Tx<T>(Arc<Mutex<Slot<T>>>);
/// The receiving half: a future resolving to `Some(value)`, or `None` if the sender is gone.
pub struct Rx<T>(Arc<Mutex<Slot<T>>>);

pub fn oneshot<T>() -> (Tx<T>, Rx<T>) {
    let s = Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
        closed: false,
    }));
    (Tx(s.clone()), Rx(s))
}

impl<T> Tx<T> {
    pub fn send(self, v: T) {
        let w = {
            let mut g = self.0.lock().unwrap();
            g.value = Some(v);
            g.waker.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }
}

impl<T> Drop for Tx<T> {
    fn drop(&mut self) {
        let w = {
            let mut g = self.0.lock().unwrap();
            g.closed = true;
            g.waker.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }
}

impl<T> Future for Rx<T> {
    type Output = Option<T>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut g = self.0.lock().unwrap();
        if let Some(v) = g.value.take() {
            return Poll::Ready(Some(v));
        }
        if g.closed {
            return Poll::Ready(None);
        }
        g.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Where a `DropRecorder` was dropped: thread id and name.
pub type DropSite = Arc<Mutex<Option<(ThreadId, Option<String>)>>>;

/// Records the thread (and its name) on which it is dropped.
pub struct DropRecorder(pub DropSite);

impl DropRecorder {
    pub fn new() -> (DropRecorder, DropSite) {
        let a = Arc::new(Mutex::new(None));
        (DropRecorder(a.clone()), a)
    }
}

impl Drop for DropRecorder {
    fn drop(&mut self) {
        let t = std::thread::current();
        *self.0.lock().unwrap() = Some((t.id(), t.name().map(str::to_owned)));
    }
}

/// Number of CPUs in the calling thread's affinity mask.
pub fn affinity_cpus() -> usize {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it for the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let r = libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
        assert_eq!(r, 0, "sched_getaffinity");
        libc::CPU_COUNT(&set) as usize
    }
}

/// Waits on a std channel with a timeout long enough for a slow CI machine.
pub fn recv<T>(rx: &std::sync::mpsc::Receiver<T>) -> T {
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .expect("timed out waiting for a loop")
}

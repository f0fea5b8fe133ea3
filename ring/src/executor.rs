//! The single-threaded task executor of one loop: task slab, run queue, wakers that work from
//! any thread, the injection queue with its eventfd wake-up, and the run loop.
//!
//! Futures are `!Send` and live in the loop's slab; they are polled and dropped only on the
//! loop thread. A waker holds only `Send` data (the loop's `Shared` and a task key): a wake on
//! the loop thread pushes onto the local run queue, a wake from elsewhere pushes onto the
//! loop's injection queue and writes the loop's eventfd if, and only if, the loop has declared
//! (under the same lock) that it is about to sleep.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use crate::driver::{Driver, RingMode};
use crate::epoll::Reactor;
use crate::runtime::LoopHandle;

/// Tasks polled before the loop looks at completions again, so I/O is not starved.
const POLL_BATCH: usize = 64;
/// Operations a task may complete without waiting in one poll on the epoll backend before it
/// must yield (io_uring ops always wait for a completion, which yields by itself): a client
/// that never lets its socket run dry must not keep the rest of the loop from running.
const COOP_BUDGET: u32 = 128;

thread_local! {
    static LOCAL: RefCell<Option<Rc<Local>>> = const { RefCell::new(None) };
    /// The `Shared` of the loop running on this thread (null elsewhere): the local-wake test.
    static CURRENT_SHARED: Cell<*const Shared> = const { Cell::new(std::ptr::null()) };
    /// The loop running on this thread uses the epoll backend.
    static ON_EPOLL: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread runs an epoll loop (one thread-local read: the backend test of the
/// operations that are not tied to a registered descriptor, `File` and `sleep`).
pub(crate) fn on_epoll() -> bool {
    ON_EPOLL.with(|c| c.get())
}

/// A loop's I/O driver: io_uring, or the epoll fallback. Chosen once per loop; operations
/// branch on it (a well-predicted branch, never a virtual call).
// One per loop, inside its `Rc<Local>`: boxing the larger io_uring driver would add a
// pointer chase to every io_uring operation to save a few hundred bytes per loop.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Io {
    Uring(Driver),
    Epoll(Reactor),
}

impl Io {
    /// The io_uring driver.
    ///
    /// # Panics
    /// On an epoll loop (an io_uring op must not be started there).
    #[inline]
    pub(crate) fn uring(&self) -> &Driver {
        match self {
            Io::Uring(d) => d,
            Io::Epoll(_) => panic!("ring: io_uring operation on an epoll loop"),
        }
    }

    /// The epoll reactor.
    ///
    /// # Panics
    /// On an io_uring loop.
    pub(crate) fn epoll(&self) -> &Reactor {
        match self {
            Io::Epoll(r) => r,
            Io::Uring(_) => panic!("ring: epoll operation on an io_uring loop"),
        }
    }
}

/// The loop state of the current thread, if it is a loop thread.
pub(crate) fn local() -> Option<Rc<Local>> {
    LOCAL.try_with(|l| l.borrow().clone()).ok().flatten()
}

/// A message to a loop from any thread.
pub(crate) enum Msg {
    Wake(TaskKey),
    Spawn(Box<dyn FnOnce() + Send>),
    Stop,
}

struct Inject {
    msgs: VecDeque<Msg>,
    /// The loop found `msgs` empty and is (about to be) blocked in io_uring_enter/epoll_wait.
    sleeping: bool,
}

/// The part of a loop that other threads see.
pub(crate) struct Shared {
    pub(crate) index: usize,
    pub(crate) core: Option<usize>,
    pub(crate) mode: RingMode,
    inject: Mutex<Inject>,
    eventfd: OwnedFd,
    pub(crate) stopping: AtomicBool,
}

impl Shared {
    pub(crate) fn new(index: usize, core: Option<usize>, mode: RingMode, eventfd: OwnedFd) -> Self {
        Shared {
            index,
            core,
            mode,
            inject: Mutex::new(Inject {
                msgs: VecDeque::new(),
                sleeping: false,
            }),
            eventfd,
            stopping: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inject> {
        self.inject.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `msg` for the loop and wakes it if it sleeps.
    pub(crate) fn send(&self, msg: Msg) {
        let notify = {
            let mut g = self.lock();
            g.msgs.push_back(msg);
            std::mem::replace(&mut g.sleeping, false)
        };
        if notify {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to our eventfd. A failure (only EAGAIN on
            // counter overflow) means the loop is already woken.
            unsafe { libc::write(self.eventfd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    pub(crate) fn eventfd(&self) -> std::os::fd::RawFd {
        self.eventfd.as_raw_fd()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskKey {
    idx: u32,
    gen: u32,
}

/// What a `Waker` holds: `Send + Sync` only.
struct TaskWaker {
    shared: Arc<Shared>,
    key: TaskKey,
    /// The task is in a run queue (local or injected); cleared just before it is polled.
    scheduled: AtomicBool,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let here = CURRENT_SHARED.with(|c| c.get()) == Arc::as_ptr(&self.shared);
        if here {
            if let Some(l) = local() {
                l.run_queue.borrow_mut().push_back(self.key);
                return;
            }
        }
        self.shared.send(Msg::Wake(self.key));
    }
}

type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;

struct TaskSlot {
    gen: u32,
    /// `None` while the task is being polled or when the slot is free.
    fut: Option<LocalFuture>,
    waker: Option<(Arc<TaskWaker>, Waker)>,
}

#[derive(Default)]
struct Tasks {
    slots: Vec<TaskSlot>,
    free: Vec<u32>,
    live: usize,
}

impl Tasks {
    fn insert(&mut self, fut: LocalFuture, shared: &Arc<Shared>) -> TaskKey {
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(TaskSlot {
                    gen: 0,
                    fut: None,
                    waker: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[idx as usize];
        let key = TaskKey { idx, gen: slot.gen };
        let tw = Arc::new(TaskWaker {
            shared: shared.clone(),
            key,
            scheduled: AtomicBool::new(true),
        });
        slot.waker = Some((tw.clone(), Waker::from(tw)));
        slot.fut = Some(fut);
        self.live += 1;
        key
    }

    fn get(&mut self, key: TaskKey) -> Option<&mut TaskSlot> {
        self.slots
            .get_mut(key.idx as usize)
            .filter(|s| s.gen == key.gen && s.waker.is_some())
    }

    /// Frees the slot; the caller drops the returned future outside the borrow.
    fn remove(&mut self, key: TaskKey) -> Option<LocalFuture> {
        let slot = self.get(key)?;
        let fut = slot.fut.take();
        slot.waker = None;
        slot.gen = slot.gen.wrapping_add(1);
        self.free.push(key.idx);
        self.live -= 1;
        fut
    }

    fn take_all(&mut self) -> Vec<LocalFuture> {
        let keys: Vec<TaskKey> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.waker.is_some())
            .map(|(i, s)| TaskKey {
                idx: i as u32,
                gen: s.gen,
            })
            .collect();
        keys.into_iter().filter_map(|k| self.remove(k)).collect()
    }
}

/// The loop state, owned by its thread (held in a thread-local while the loop runs).
pub(crate) struct Local {
    pub(crate) handle: LoopHandle,
    // Field order matters: tasks are dropped before the driver, so their ops are abandoned
    // (and their buffers parked in the slab) before the driver quiesces.
    tasks: RefCell<Tasks>,
    run_queue: RefCell<VecDeque<TaskKey>>,
    inbox: RefCell<VecDeque<Msg>>,
    /// Epoll operations the task being polled may still complete without yielding.
    coop: Cell<u32>,
    /// Busy-polling before a blocking wait (io_uring loops; see [`Spin`]).
    spin: Spin,
    pub(crate) io: Io,
}

/// Adaptive busy-polling before the loop sleeps in `io_uring_enter` ([`crate::Config::spin_us`]).
///
/// A loop that goes to sleep and is woken a few microseconds later pays two context switches
/// (and, in a VM, the idle CPU's wake-up) for nothing it could not have seen by looking at its
/// completion queue a little longer. So, when the loop's last wait ended within `max` — work
/// arrives that quickly — the loop first polls its completion queue, task-work flag and
/// injection queue for up to `max`, yielding the CPU (`sched_yield`) between looks so a thread
/// that shares the core (the client, often) runs instead of the spin. A spin that sees nothing
/// falls back to the blocking wait; a blocking wait that lasts longer than `max` turns spinning
/// off until waits are short again. An idle loop therefore spins once, for at most `max`,
/// after its last piece of work, and then sleeps as before: no CPU when idle. Spinning is
/// also capped at [`SPIN_SHARE_MAX`] of each [`SPIN_WINDOW`], so traffic that arrives just
/// slower than `max` cannot keep a core busy with spins.
struct Spin {
    /// Longest spin; zero turns spinning off.
    max: std::time::Duration,
    /// The last wait (spin or sleep) ended within `max`.
    on: Cell<bool>,
    /// The current accounting window's start and the time spun in it.
    window: Cell<(std::time::Instant, std::time::Duration)>,
}

/// The accounting window of the spin cap.
const SPIN_WINDOW: std::time::Duration = std::time::Duration::from_millis(1);
/// Most time spun per window: a quarter of the loop's core.
const SPIN_SHARE_MAX: std::time::Duration = std::time::Duration::from_micros(250);

impl Spin {
    fn new(spin_us: u32) -> Spin {
        Spin {
            max: std::time::Duration::from_micros(u64::from(spin_us)),
            on: Cell::new(false),
            window: Cell::new((std::time::Instant::now(), std::time::Duration::ZERO)),
        }
    }

    /// How long the loop may spin now (zero: not at all), opening a new window if due.
    fn allowance(&self, now: std::time::Instant) -> std::time::Duration {
        let (start, mut spent) = self.window.get();
        if now.duration_since(start) >= SPIN_WINDOW {
            spent = std::time::Duration::ZERO;
            self.window.set((now, spent));
        }
        SPIN_SHARE_MAX.saturating_sub(spent).min(self.max)
    }

    /// Charges a spin to the current window.
    fn charge(&self, d: std::time::Duration) {
        let (start, spent) = self.window.get();
        self.window.set((start, spent + d));
    }
}

impl Local {
    pub(crate) fn new(handle: LoopHandle, io: Io, spin_us: u32) -> Local {
        Local {
            handle,
            tasks: RefCell::new(Tasks::default()),
            run_queue: RefCell::new(VecDeque::new()),
            inbox: RefCell::new(VecDeque::new()),
            coop: Cell::new(COOP_BUDGET),
            spin: Spin::new(spin_us),
            io,
        }
    }

    /// Whether something was injected from another thread (a remote wake, a spawn, a stop).
    fn injected(&self) -> bool {
        !self.shared().lock().msgs.is_empty()
    }

    /// Busy-polls for up to the spin time when recent waits were short (see [`Spin`]); true
    /// when work showed up (the caller collects it without blocking).
    fn spin_for_work(&self, d: &Driver) -> bool {
        if self.spin.max.is_zero() || !self.spin.on.get() {
            return false;
        }
        let start = std::time::Instant::now();
        let allowed = self.spin.allowance(start);
        let found = loop {
            if d.ready() || self.injected() {
                break true;
            }
            if start.elapsed() >= allowed {
                break false;
            }
            std::thread::yield_now();
        };
        self.spin.charge(start.elapsed());
        found
    }

    /// Takes one unit of the polled task's budget; `false` when it is spent (the caller
    /// wakes the task and returns `Pending`, so that the other tasks run first).
    pub(crate) fn coop_take(&self) -> bool {
        match self.coop.get() {
            0 => false,
            n => {
                self.coop.set(n - 1);
                true
            }
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    fn spawn(&self, fut: LocalFuture) {
        let key = self.tasks.borrow_mut().insert(fut, self.shared());
        self.run_queue.borrow_mut().push_back(key);
    }

    /// Moves injected messages into the loop. Returns true when asked to stop.
    fn drain_inject(&self) -> bool {
        {
            let mut g = self.shared().lock();
            if g.msgs.is_empty() {
                return false;
            }
            std::mem::swap(&mut g.msgs, &mut *self.inbox.borrow_mut());
        }
        loop {
            let msg = self.inbox.borrow_mut().pop_front();
            match msg {
                None => return false,
                Some(Msg::Wake(key)) => self.run_queue.borrow_mut().push_back(key),
                Some(Msg::Spawn(f)) => {
                    if catch_unwind(AssertUnwindSafe(f)).is_err() {
                        eprintln!(
                            "ring: a spawn closure panicked on loop {}",
                            self.handle.index()
                        );
                    }
                }
                Some(Msg::Stop) => return true,
            }
        }
    }

    /// Polls up to `budget` runnable tasks.
    fn run_batch(&self, budget: usize) {
        for _ in 0..budget {
            let Some(key) = self.run_queue.borrow_mut().pop_front() else {
                return;
            };
            let (mut fut, tw, waker) = {
                let mut tasks = self.tasks.borrow_mut();
                let Some(slot) = tasks.get(key) else { continue };
                let Some(fut) = slot.fut.take() else { continue };
                let (tw, w) = slot.waker.as_ref().expect("live task has a waker");
                (fut, tw.clone(), w.clone())
            };
            tw.scheduled.store(false, Ordering::Release);
            self.coop.set(COOP_BUDGET);
            let mut cx = Context::from_waker(&waker);
            let r = catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx)));
            match r {
                Ok(Poll::Pending) => {
                    if let Some(slot) = self.tasks.borrow_mut().get(key) {
                        slot.fut = Some(fut);
                    }
                }
                Ok(Poll::Ready(())) => {
                    self.tasks.borrow_mut().remove(key);
                    drop_quietly(fut, self.handle.index());
                }
                Err(_) => {
                    eprintln!(
                        "ring: a task panicked on loop {}; it was dropped",
                        self.handle.index()
                    );
                    self.tasks.borrow_mut().remove(key);
                    drop_quietly(fut, self.handle.index());
                }
            }
        }
    }

    /// Declares the loop asleep if nothing was injected; then remote wakes write the eventfd.
    fn prepare_sleep(&self) -> bool {
        let mut g = self.shared().lock();
        g.sleeping = g.msgs.is_empty();
        g.sleeping
    }

    fn end_sleep(&self) {
        self.shared().lock().sleeping = false;
    }

    /// Drops every task (and queued spawn closure) on this thread, repeatedly, since dropping a
    /// future may spawn more.
    fn drop_all_tasks(&self) {
        loop {
            let futs = self.tasks.borrow_mut().take_all();
            let msgs: Vec<Msg> = {
                let mut g = self.shared().lock();
                let mut v: Vec<Msg> = g.msgs.drain(..).collect();
                v.extend(self.inbox.borrow_mut().drain(..));
                v
            };
            if futs.is_empty() && msgs.is_empty() {
                break;
            }
            for f in futs {
                drop_quietly(f, self.handle.index());
            }
            drop(msgs);
        }
        self.run_queue.borrow_mut().clear();
    }
}

fn drop_quietly(fut: LocalFuture, index: usize) {
    if catch_unwind(AssertUnwindSafe(move || drop(fut))).is_err() {
        eprintln!("ring: dropping a task panicked on loop {index}");
    }
}

/// Runs the loop on the current thread until it is asked to stop, then drops its tasks and
/// quiesces its ring on this thread.
pub(crate) fn run(local: Rc<Local>) {
    LOCAL.with(|l| *l.borrow_mut() = Some(local.clone()));
    CURRENT_SHARED.with(|c| c.set(Arc::as_ptr(local.shared())));
    ON_EPOLL.with(|c| c.set(matches!(local.io, Io::Epoll(_))));
    loop {
        if local.drain_inject() {
            break;
        }
        local.run_batch(POLL_BATCH);
        let idle = local.run_queue.borrow().is_empty();
        match &local.io {
            Io::Uring(d) => {
                d.arm_eventfd();
                if idle && local.spin.on.get() {
                    // Send what is queued first (lazy sends complete in this enter), then
                    // look for the next request without sleeping.
                    d.submit_nowait();
                    if d.dispatch() > 0 || local.spin_for_work(d) {
                        d.submit_nowait();
                        d.dispatch();
                        continue;
                    }
                }
                if idle && local.prepare_sleep() {
                    let slept = std::time::Instant::now();
                    d.wait();
                    local.end_sleep();
                    if !local.spin.max.is_zero() {
                        local.spin.on.set(slept.elapsed() <= local.spin.max);
                    }
                } else {
                    d.submit_nowait();
                }
                d.dispatch();
            }
            Io::Epoll(r) => {
                let block = idle && local.prepare_sleep();
                r.turn(block);
                if block {
                    local.end_sleep();
                }
            }
        }
    }
    local.shared().stopping.store(true, Ordering::SeqCst);
    CURRENT_SHARED.with(|c| c.set(std::ptr::null()));
    local.drop_all_tasks();
    drop(local);
    // Dropping the last Rc quiesces the driver: in-flight ops are cancelled and reaped here.
    let last = LOCAL.with(|l| l.borrow_mut().take());
    drop(last);
    ON_EPOLL.with(|c| c.set(false));
}

/// Spawns a (possibly `!Send`) future on the current loop.
///
/// # Panics
/// When called off a loop thread.
pub fn spawn_local<F: Future<Output = ()> + 'static>(f: F) {
    let local = local().expect("ring::spawn_local called off a loop thread");
    local.spawn(Box::pin(f));
}

/// A task of this loop is (about to start) waiting for a send started with
/// [`crate::Stream::send_all_lazy`] in this turn: the loop's next wait ends at the first
/// completion. No effect off a loop or on the epoll backend.
pub fn urge() {
    if let Some(local) = local() {
        if let Io::Uring(d) = &local.io {
            d.urge();
        }
    }
}

/// The handle of the loop running on this thread, if any.
pub fn current() -> Option<LoopHandle> {
    local().map(|l| l.handle.clone())
}

/// Lets the other runnable tasks of this loop run before continuing.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

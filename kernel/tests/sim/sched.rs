//! The simulation's clock-less world: a seeded RNG, a single-threaded executor that polls
//! woken tasks in a random order, and gates — completions (client copy answers, host I/O)
//! that only the scheduler opens.
//!
//! Determinism: everything runs on the test thread; the ready set and the gates are kept in
//! ordered maps, so the order in which the kernel happens to call wakers (it may iterate hash
//! maps) never matters — only the seeded choices do.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// SplitMix64: small, fast, and every seed gives a good stream.
pub struct Rng(u64);

impl Rng {
    /// A stream from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5151_7e5e_ed00_0000)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }

    /// True `num` times out of `den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

/// How a gate ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// The scheduler let the operation complete.
    Ok,
    /// The owner went away (a disconnected client's pending copy: `EFAULT`).
    Failed,
}

/// One pending completion.
pub struct Gate {
    owner: u64,
    state: Cell<Option<Opened>>,
    waker: RefCell<Option<Waker>>,
}

impl Gate {
    fn open(&self, how: Opened) {
        self.state.set(Some(how));
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

/// Owner of host I/O gates (never failed by a disconnect).
pub const HOST: u64 = u64::MAX;

thread_local! {
    static GATES: RefCell<BTreeMap<u64, Rc<Gate>>> = const { RefCell::new(BTreeMap::new()) };
    static NEXT_GATE: Cell<u64> = const { Cell::new(0) };
}

/// Waits until the scheduler opens a new gate of `owner`.
pub async fn gate(owner: u64) -> Opened {
    let g = Rc::new(Gate {
        owner,
        state: Cell::new(None),
        waker: RefCell::new(None),
    });
    let id = NEXT_GATE.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    });
    GATES.with(|m| m.borrow_mut().insert(id, g.clone()));
    // Removed from the registry when dropped unopened (the waiting future was cancelled).
    struct Unregister(u64);
    impl Drop for Unregister {
        fn drop(&mut self) {
            GATES.with(|m| m.borrow_mut().remove(&self.0));
        }
    }
    let _u = Unregister(id);
    std::future::poll_fn(|cx| match g.state.get() {
        Some(how) => Poll::Ready(how),
        None => {
            *g.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    })
    .await
}

/// Pending gates.
pub fn gates_pending() -> usize {
    GATES.with(|m| m.borrow().len())
}

/// Opens the `i`-th pending gate (in id order).
fn open_nth(i: usize) {
    let g = GATES.with(|m| {
        let mut m = m.borrow_mut();
        let id = *m.keys().nth(i).expect("gate index");
        m.remove(&id).expect("gate")
    });
    g.open(Opened::Ok);
}

/// Fails every pending gate of `owner` (a client that disconnected).
pub fn fail_owner(owner: u64) {
    let gs: Vec<Rc<Gate>> = GATES.with(|m| {
        let mut m = m.borrow_mut();
        let ids: Vec<u64> = m
            .iter()
            .filter(|(_, g)| g.owner == owner)
            .map(|(id, _)| *id)
            .collect();
        ids.iter().filter_map(|id| m.remove(id)).collect()
    });
    for g in gs {
        g.open(Opened::Failed);
    }
}

/// Forgets every gate (between runs).
pub fn reset_gates() {
    GATES.with(|m| m.borrow_mut().clear());
}

struct TaskWake {
    id: usize,
    ready: Arc<Mutex<BTreeSet<usize>>>,
}

impl Wake for TaskWake {
    fn wake(self: Arc<Self>) {
        self.ready.lock().unwrap().insert(self.id);
    }
}

type Task = Pin<Box<dyn Future<Output = ()>>>;

/// The executor. Tasks may spawn tasks.
#[derive(Default)]
pub struct Exec {
    tasks: RefCell<Vec<Option<Task>>>,
    names: RefCell<Vec<String>>,
    ready: Arc<Mutex<BTreeSet<usize>>>,
    live: Cell<usize>,
    /// Scheduling steps taken.
    pub steps: Cell<u64>,
}

impl Exec {
    /// Adds a task, ready to run; returns its id.
    pub fn spawn(&self, name: String, f: impl Future<Output = ()> + 'static) -> usize {
        let mut tasks = self.tasks.borrow_mut();
        let id = tasks.len();
        tasks.push(Some(Box::pin(f)));
        self.names.borrow_mut().push(name);
        self.live.set(self.live.get() + 1);
        self.ready.lock().unwrap().insert(id);
        id
    }

    /// Drops task `id` where it stands (a cancelled future), if it has not finished.
    pub fn cancel(&self, id: usize) {
        let f = self.tasks.borrow_mut()[id].take();
        if let Some(f) = f {
            self.live.set(self.live.get() - 1);
            self.ready.lock().unwrap().remove(&id);
            drop(f);
        }
    }

    fn poll_task(&self, id: usize) {
        let Some(mut f) = self.tasks.borrow_mut()[id].take() else {
            return;
        };
        let waker = Waker::from(Arc::new(TaskWake {
            id,
            ready: self.ready.clone(),
        }));
        let mut cx = Context::from_waker(&waker);
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(()) => self.live.set(self.live.get() - 1),
            Poll::Pending => self.tasks.borrow_mut()[id] = Some(f),
        }
    }

    /// Runs until every task finished: each step polls a random woken task or opens a
    /// random pending gate; `world` runs before each step (disconnects, faults). Panics on
    /// a deadlock (tasks left, nothing woken, no gate pending) or after `max_steps`.
    pub fn run(&self, rng: &RefCell<Rng>, max_steps: u64, mut world: impl FnMut(&mut Rng)) {
        while self.live.get() > 0 {
            let step = self.steps.get() + 1;
            self.steps.set(step);
            assert!(
                step <= max_steps,
                "no end after {max_steps} steps: livelock?"
            );
            world(&mut rng.borrow_mut());
            let ready: Vec<usize> = self.ready.lock().unwrap().iter().copied().collect();
            let gates = gates_pending();
            if ready.is_empty() && gates == 0 {
                if self.live.get() == 0 {
                    break;
                }
                panic!(
                    "deadlock: nothing woken, no completion pending; stuck: {:?}",
                    self.stuck()
                );
            }
            let pick = rng.borrow_mut().below((ready.len() + gates) as u64) as usize;
            if pick < ready.len() {
                let id = ready[pick];
                self.ready.lock().unwrap().remove(&id);
                self.poll_task(id);
            } else {
                open_nth(pick - ready.len());
            }
        }
    }

    /// Names of the tasks not finished.
    pub fn stuck(&self) -> Vec<String> {
        let tasks = self.tasks.borrow();
        let names = self.names.borrow();
        (0..tasks.len())
            .filter(|&i| tasks[i].is_some())
            .map(|i| names[i].clone())
            .collect()
    }
}

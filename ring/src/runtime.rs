//! `Runtime` and `LoopHandle`: starting the pinned loop threads, reaching them from any
//! thread, and stopping them.

use std::future::Future;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};

use crate::backend::{fallback_warning, falls_back, Backend, BackendChoice};
use crate::driver::{build_ring, Driver, RingMode};
use crate::epoll::Reactor;
use crate::error::SetupError;
use crate::executor::{self, Io, Local, Msg, Shared};

/// How many loops to run and how.
#[derive(Clone, Debug)]
pub struct Config {
    /// Loop threads (vCPUs); at least one is started.
    pub loops: usize,
    /// Pin loop `i` to core `i % cores` (cores allowed to this process).
    pub pin: bool,
    /// Submission queue entries per ring. The completion queue gets 64 times as many entries,
    /// within [4096, 65536], and ops in flight per loop are bounded to half of it (8191 with
    /// the default 256) so the completion queue never overflows; an op beyond the bound waits
    /// for a free slot. Unused by the epoll backend.
    pub ring_entries: u32,
    /// The I/O backend; `None`: the `RUMP_IO_BACKEND` environment variable (`io_uring`,
    /// `epoll` or `auto`; unset means `auto`, anything else is a `SetupError::BadBackend`).
    /// With `auto`, a loop whose io_uring cannot be set up makes the whole runtime start on
    /// epoll instead, after a one-line warning on stderr.
    pub backend: Option<BackendChoice>,
    /// For tests of the fallback: pretend that `io_uring_setup` fails with this errno.
    /// `None` in production.
    pub io_uring_setup_errno: Option<i32>,
    /// Busy-poll for up to this many microseconds before sleeping in `io_uring_enter`, while
    /// the loop's recent waits were that short (adaptive: off while idle, so an idle loop uses
    /// no CPU). 0 turns it off. The default is the `RING_SPIN_US` environment variable, else 0.
    /// The epoll backend ignores it.
    pub spin_us: u32,
}

/// `RING_SPIN_US` (read once): the default [`Config::spin_us`].
pub fn spin_us_from_env() -> Option<u32> {
    static V: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *V.get_or_init(|| std::env::var("RING_SPIN_US").ok()?.parse().ok())
}

impl Default for Config {
    fn default() -> Config {
        let loops = thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Config {
            loops,
            pin: true,
            ring_entries: 256,
            backend: None,
            io_uring_setup_errno: None,
            spin_us: spin_us_from_env().unwrap_or(0),
        }
    }
}

/// A handle to one loop: spawn work onto it from any thread.
#[derive(Clone)]
pub struct LoopHandle {
    pub(crate) shared: Arc<Shared>,
}

impl LoopHandle {
    /// The loop's index, `0..Config::loops`.
    pub fn index(&self) -> usize {
        self.shared.index
    }

    /// The core the loop thread is pinned to, if pinning was asked for and succeeded.
    pub fn core(&self) -> Option<usize> {
        self.shared.core
    }

    /// Which io_uring setup flags the kernel accepted for this loop's ring
    /// (`RingMode::Epoll` on the epoll backend).
    pub fn ring_mode(&self) -> RingMode {
        self.shared.mode
    }

    /// The I/O backend this loop runs on (the same for every loop of a runtime).
    pub fn backend(&self) -> Backend {
        match self.shared.mode {
            RingMode::Epoll => Backend::Epoll,
            _ => Backend::IoUring,
        }
    }

    /// Runs `f` on the loop thread and spawns the (possibly `!Send`) future it returns there.
    /// After the loop has stopped, `f` is dropped without running.
    pub fn spawn<F, Fut>(&self, f: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        if self.shared.stopping.load(Ordering::Acquire) {
            return;
        }
        self.shared
            .send(Msg::Spawn(Box::new(move || executor::spawn_local(f()))));
    }
}

impl std::fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopHandle")
            .field("index", &self.index())
            .finish()
    }
}

/// The running loops.
pub struct Runtime {
    handles: Vec<LoopHandle>,
    threads: Vec<JoinHandle<()>>,
}

impl Runtime {
    /// Starts `cfg.loops` loop threads named `ring-<i>`, each creating its own ring (or epoll
    /// instance, see `Config::backend`); returns once every loop has reported that it is up,
    /// or with the first setup error (the loops already started are stopped and joined).
    pub fn start(cfg: &Config) -> Result<Runtime, SetupError> {
        let choice = match cfg.backend {
            Some(c) => c,
            None => BackendChoice::from_env()?,
        };
        match choice {
            BackendChoice::IoUring => Self::start_on(cfg, Backend::IoUring),
            BackendChoice::Epoll => Self::start_on(cfg, Backend::Epoll),
            BackendChoice::Auto => match Self::start_on(cfg, Backend::IoUring) {
                Err(e) if falls_back(&e) => {
                    eprintln!("{}", fallback_warning(&e));
                    Self::start_on(cfg, Backend::Epoll)
                }
                r => r,
            },
        }
    }

    fn start_on(cfg: &Config, backend: Backend) -> Result<Runtime, SetupError> {
        let loops = cfg.loops.max(1);
        let cores = match cfg.pin {
            true => core_affinity::get_core_ids().unwrap_or_default(),
            false => Vec::new(),
        };
        let mut rt = Runtime {
            handles: Vec::with_capacity(loops),
            threads: Vec::new(),
        };
        for i in 0..loops {
            let core = (!cores.is_empty()).then(|| cores[i % cores.len()]);
            let setup = LoopSetup {
                index: i,
                entries: cfg.ring_entries,
                backend,
                fault: cfg.io_uring_setup_errno,
                spin_us: cfg.spin_us,
            };
            let (tx, rx) = mpsc::sync_channel(1);
            let th = thread::Builder::new()
                .name(format!("ring-{i}"))
                .spawn(move || loop_thread(setup, core, tx))
                .map_err(SetupError::Spawn)?;
            rt.threads.push(th);
            match rx.recv() {
                Ok(Ok(shared)) => rt.handles.push(LoopHandle { shared }),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(SetupError::ThreadDied),
            }
        }
        Ok(rt)
    }

    /// One handle per loop, in index order.
    pub fn handles(&self) -> &[LoopHandle] {
        &self.handles
    }

    /// Asks every loop to stop, lets each drop its remaining tasks on its own thread and
    /// cancel its in-flight I/O, and joins the threads.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for h in &self.handles {
            h.shared.stopping.store(true, Ordering::Release);
            h.shared.send(Msg::Stop);
        }
        let me = thread::current().id();
        for th in self.threads.drain(..) {
            if th.thread().id() == me {
                continue; // shut down from one of our own loops: it stops when this task ends
            }
            if th.join().is_err() {
                eprintln!("ring: a loop thread panicked");
            }
        }
    }
}

type Report = mpsc::SyncSender<Result<Arc<Shared>, SetupError>>;

/// What a loop thread sets up.
struct LoopSetup {
    index: usize,
    entries: u32,
    backend: Backend,
    /// `Config::io_uring_setup_errno`.
    fault: Option<i32>,
    /// `Config::spin_us`.
    spin_us: u32,
}

fn loop_thread(setup: LoopSetup, core: Option<core_affinity::CoreId>, tx: Report) {
    let core = core
        .filter(|c| core_affinity::set_for_current(*c))
        .map(|c| c.id);
    let local = match setup_loop(&setup, core) {
        Ok(l) => l,
        Err(e) => {
            let _ = tx.send(Err(e));
            return;
        }
    };
    if tx.send(Ok(local.handle.shared.clone())).is_err() {
        return;
    }
    drop(tx);
    executor::run(local);
}

fn setup_loop(s: &LoopSetup, core: Option<usize>) -> Result<Rc<Local>, SetupError> {
    if s.backend == Backend::Epoll {
        let eventfd = new_eventfd(libc::EFD_NONBLOCK).map_err(SetupError::Eventfd)?;
        let shared = Arc::new(Shared::new(s.index, core, RingMode::Epoll, eventfd));
        let reactor = Reactor::new(shared.eventfd())?;
        return Ok(Rc::new(Local::new(
            LoopHandle { shared },
            Io::Epoll(reactor),
            0,
        )));
    }
    if let Some(errno) = s.fault {
        return Err(SetupError::from_setup(io::Error::from_raw_os_error(errno)));
    }
    let (ring, mode) = build_ring(s.entries)?;
    let eventfd = new_eventfd(0).map_err(SetupError::Eventfd)?;
    let shared = Arc::new(Shared::new(s.index, core, mode, eventfd));
    let driver = Driver::new(ring, shared.eventfd(), mode);
    Ok(Rc::new(Local::new(
        LoopHandle { shared },
        Io::Uring(driver),
        s.spin_us,
    )))
}

/// The loop's wake-up eventfd. Blocking for io_uring (the ring's read on it waits, poll-armed,
/// until a remote wake); `EFD_NONBLOCK` for epoll (read only to reset it after an event).
fn new_eventfd(flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain system call, no pointers.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Checks that io_uring can be set up here (as a loop would), e.g. before daemonizing, so the
/// operator sees the reason on the terminal.
pub fn probe_io_uring() -> Result<(), SetupError> {
    build_ring(8).map(drop)
}

/// The io_uring setup flags accepted, as a short name (for logs).
pub fn ring_mode_name(m: RingMode) -> &'static str {
    match m {
        RingMode::DeferTaskrun => "single-issuer+defer-taskrun",
        RingMode::CoopTaskrun => "coop-taskrun",
        RingMode::Plain => "plain",
        RingMode::Epoll => "epoll (no io_uring)",
    }
}

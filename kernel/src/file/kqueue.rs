//! kqueue(2) (kern_event.c): a kind of open file holding knotes, each watching one event
//! source — `EVFILT_READ`/`EVFILT_WRITE` on any descriptor (through [`FileOps::filter`],
//! so every file kind plugs in), `EVFILT_VNODE` on a vnode's [`KList`], `EVFILT_TIMER`.
//!
//! NetBSD activates a knote from the source (`KNOTE`) and re-evaluates it at the scan. Here
//! a knote keeps a [`Selector`] whose waker ([`KnWake`]) marks the knote and wakes the
//! kqueue's queue, where kevent(2) callers and pollers of the kqueue descriptor wait; the
//! scan evaluates every enabled knote (level-triggered), `EV_CLEAR` knotes only when marked
//! since they were last reported (edge-triggered), as NetBSD. Timers are evaluated from the
//! monotonic clock at each scan and ask the waiting caller for a timed rescan
//! ([`Selector::wake_at`]). Knotes are charged to the `-r` budget (`ENOMEM` beyond it); a
//! knote on a descriptor holds the file weakly and ends when the descriptor is closed
//! (`knote_fdclose`, seen at the next scan).
//!
//! [`FileOps::filter`]: super::FileOps::filter

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Wake, Waker};

use super::ops::{Filt, Filter, PollEvents, Selector, POLLIN, POLLRDNORM};
use super::{File, Iov};
use crate::abi::{Stat, S_IFIFO};
use crate::mem::{heap_bytes, Budget, Charge};
use crate::sync::WaitQueue;
use crate::vfs::Vnode;
use crate::{Errno, Host, Kernel, Proc, Result, UserMem};

/// What `EV_ADD` of a process knote found: a client process, or proc0/init (which never
/// fork, exec or exit).
enum Target {
    Client(Arc<Proc>),
    Kernel,
}

/// `EVFILT_READ`.
pub const EVFILT_READ: u32 = 0;
/// `EVFILT_WRITE`.
pub const EVFILT_WRITE: u32 = 1;
/// `EVFILT_AIO` (no filter in a rump kernel).
pub const EVFILT_AIO: u32 = 2;
/// `EVFILT_VNODE`.
pub const EVFILT_VNODE: u32 = 3;
/// `EVFILT_PROC`.
pub const EVFILT_PROC: u32 = 4;
/// `EVFILT_SIGNAL`.
pub const EVFILT_SIGNAL: u32 = 5;
/// `EVFILT_TIMER`.
pub const EVFILT_TIMER: u32 = 6;

/// Add the knote (enables it when new).
pub const EV_ADD: u32 = 0x0001;
/// Delete the knote.
pub const EV_DELETE: u32 = 0x0002;
/// Enable it.
pub const EV_ENABLE: u32 = 0x0004;
/// Disable it (not reported).
pub const EV_DISABLE: u32 = 0x0008;
/// Report once, then delete.
pub const EV_ONESHOT: u32 = 0x0010;
/// Clear the state after reporting (edge-triggered).
pub const EV_CLEAR: u32 = 0x0020;
/// Report every change as an `EV_ERROR` entry.
pub const EV_RECEIPT: u32 = 0x0040;
/// Disable after reporting.
pub const EV_DISPATCH: u32 = 0x0080;
/// Flags reserved to the kernel, cleared from changes.
pub const EV_SYSFLAGS: u32 = 0xF000;
/// End of file.
pub const EV_EOF: u32 = 0x8000;
/// An error; `data` holds the errno.
pub const EV_ERROR: u32 = 0x4000;

/// The vnode was removed.
pub const NOTE_DELETE: u32 = 0x0001;
/// Its data changed.
pub const NOTE_WRITE: u32 = 0x0002;
/// Its size grew.
pub const NOTE_EXTEND: u32 = 0x0004;
/// Its attributes changed.
pub const NOTE_ATTRIB: u32 = 0x0008;
/// Its link count changed.
pub const NOTE_LINK: u32 = 0x0010;
/// It was renamed.
pub const NOTE_RENAME: u32 = 0x0020;
/// Access to it was revoked (its file system went away).
pub const NOTE_REVOKE: u32 = 0x0040;

/// The process exited (`EVFILT_PROC`; `data` is its wait status).
pub const NOTE_EXIT: u32 = 0x8000_0000;
/// The process forked.
pub const NOTE_FORK: u32 = 0x4000_0000;
/// The process exec'd.
pub const NOTE_EXEC: u32 = 0x2000_0000;
/// Follow the process across forks: a knote is added for each child.
pub const NOTE_TRACK: u32 = 0x0000_0001;
/// A child could not be tracked.
pub const NOTE_TRACKERR: u32 = 0x0000_0002;
/// The knote's process is a tracked child (`data` is the parent's pid).
pub const NOTE_CHILD: u32 = 0x0000_0004;

/// `struct kevent` up to NetBSD 9 (`__kevent50`, syscall 435): 40 bytes.
pub const KEVENT50_BYTES: usize = 40;
/// `struct kevent` of NetBSD 10 (`__kevent100`, syscall 501): 72 bytes, with `ext[4]`.
pub const KEVENT100_BYTES: usize = 72;
/// Most timers at a time in the server (`kq_calloutmax`); `ENOMEM` beyond.
pub const KQ_TIMERS_MAX: usize = 4 * 1024;

/// Timer knotes in use (`kq_ncallouts`).
static TIMERS: AtomicUsize = AtomicUsize::new(0);

/// What every knote is charged to the budget: its allocation and its kqueue's list slot.
pub const KNOTE_CHARGE_BYTES: u64 = heap_bytes(std::mem::size_of::<Knote>() + 16)
    + heap_bytes(std::mem::size_of::<KnWake>() + 16)
    + 64;

/// One `struct kevent`, either layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Kevent {
    /// `ident`.
    pub ident: u64,
    /// `filter`.
    pub filter: u32,
    /// `flags`.
    pub flags: u32,
    /// `fflags`.
    pub fflags: u32,
    /// `data`.
    pub data: i64,
    /// `udata`.
    pub udata: u64,
    /// `ext[4]` (NetBSD 10 layout only).
    pub ext: [u64; 4],
}

fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}

impl Kevent {
    /// Decodes one record of `size` ([`KEVENT50_BYTES`] or [`KEVENT100_BYTES`]).
    pub fn decode(b: &[u8], size: usize) -> Kevent {
        let mut k = Kevent {
            ident: le64(b, 0),
            filter: le32(b, 8),
            flags: le32(b, 12),
            fflags: le32(b, 16),
            data: le64(b, 24) as i64,
            udata: le64(b, 32),
            ext: [0; 4],
        };
        if size == KEVENT100_BYTES {
            for (i, e) in k.ext.iter_mut().enumerate() {
                *e = le64(b, 40 + 8 * i);
            }
        }
        k
    }

    /// Appends the record in the layout of `size`.
    pub fn encode(&self, out: &mut Vec<u8>, size: usize) {
        out.extend_from_slice(&self.ident.to_le_bytes());
        out.extend_from_slice(&self.filter.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.fflags.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.data.to_le_bytes());
        out.extend_from_slice(&self.udata.to_le_bytes());
        if size == KEVENT100_BYTES {
            for e in self.ext {
                out.extend_from_slice(&e.to_le_bytes());
            }
        }
    }
}

/// A vnode's knotes (`v_klist`), made on first use: the queue its read filters record on
/// and the vnode notes watched. `knote` costs one load while nobody watches.
#[derive(Default)]
pub struct KList(OnceLock<Box<KListInner>>);

#[derive(Default)]
struct KListInner {
    q: Arc<WaitQueue>,
    /// `EVFILT_VNODE` knotes (dead ones pruned at each note and each attach).
    watches: Mutex<Vec<Weak<Watch>>>,
}

/// An `EVFILT_VNODE` knote as its vnode sees it.
struct Watch {
    /// The notes asked for (`kn_sfflags`).
    sfflags: AtomicU32,
    /// The notes seen since the knote was last reported.
    fflags: AtomicU32,
    waker: Waker,
}

impl KList {
    fn inner(&self) -> &KListInner {
        self.0.get_or_init(Box::default)
    }

    /// The queue read filters record on; woken by every note.
    pub fn queue(&self) -> &Arc<WaitQueue> {
        &self.inner().q
    }

    /// `VN_KNOTE(vp, hint)`: tells the watchers of this vnode what happened.
    pub fn knote(&self, hint: u32) {
        let Some(k) = self.0.get() else {
            return;
        };
        let mut woken = Vec::new();
        {
            let mut w = k.watches.lock().unwrap_or_else(|e| e.into_inner());
            w.retain(|x| match x.upgrade() {
                Some(x) => {
                    let hit = x.sfflags.load(Ordering::Relaxed) & hint;
                    if hit != 0 {
                        x.fflags.fetch_or(hit, Ordering::AcqRel);
                        woken.push(x.waker.clone());
                    }
                    true
                }
                None => false,
            });
        }
        for w in woken {
            w.wake();
        }
        k.q.wake_all();
    }

    fn attach(&self, w: &Arc<Watch>) {
        let mut l = self
            .inner()
            .watches
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        l.retain(|x| x.strong_count() > 0);
        l.push(Arc::downgrade(w));
    }
}

/// A process's `EVFILT_PROC` and `EVFILT_SIGNAL` knotes (`p_klist`): weak references,
/// pruned as knotes go; an uncontended lock and an empty list while nobody watches.
#[derive(Default)]
pub struct ProcNotes(Mutex<Vec<Weak<PWatch>>>);

/// An `EVFILT_PROC` or `EVFILT_SIGNAL` knote as its process sees it.
struct PWatch {
    /// `EVFILT_SIGNAL`: the signal counted; `None` for `EVFILT_PROC`.
    signo: Option<u64>,
    /// The notes asked for (`kn_sfflags`).
    sfflags: AtomicU32,
    /// The notes seen since the knote was last evaluated.
    fflags: AtomicU32,
    /// Signals counted since the knote was last evaluated.
    count: AtomicU64,
    /// The process exited (`NOTE_EXIT`) with this wait status.
    exit: Mutex<Option<i64>>,
    waker: Waker,
    /// `NOTE_TRACK`: the kqueue a child's knote goes to, with the registration's flags
    /// and `udata`.
    kq: Weak<Shared>,
    flags: u32,
    udata: AtomicU64,
}

impl ProcNotes {
    fn attach(&self, w: &Arc<PWatch>) {
        let mut l = lock(&self.0);
        l.retain(|x| x.strong_count() > 0);
        l.push(Arc::downgrade(w));
    }

    /// The live watches, dead ones pruned.
    fn live(&self) -> Vec<Arc<PWatch>> {
        let mut l = lock(&self.0);
        let mut out = Vec::new();
        l.retain(|x| match x.upgrade() {
            Some(w) => {
                out.push(w);
                true
            }
            None => false,
        });
        out
    }

    /// Notes `note` on the `EVFILT_PROC` watches that asked for it.
    fn proc_note(&self, note: u32) {
        for w in self.live().into_iter().filter(|w| w.signo.is_none()) {
            if w.sfflags.load(Ordering::Relaxed) & note != 0 {
                w.fflags.fetch_or(note, Ordering::AcqRel);
                w.waker.wake_by_ref();
            }
        }
    }

    /// `KNOTE(&p->p_klist, NOTE_SIGNAL | signo)`: the kernel raised `signo` to the process.
    pub fn signal(&self, signo: u32) {
        for w in self.live() {
            if w.signo == Some(u64::from(signo)) {
                w.count.fetch_add(1, Ordering::AcqRel);
                w.waker.wake_by_ref();
            }
        }
    }

    /// `KNOTE(NOTE_EXEC)`.
    pub fn exec(&self) {
        self.proc_note(NOTE_EXEC);
    }

    /// `KNOTE(NOTE_EXIT)`: every `EVFILT_PROC` knote fires once more with the wait
    /// `status` and `EV_EOF`, and goes when reported.
    pub fn exit(&self, status: i64) {
        for w in self.live().into_iter().filter(|w| w.signo.is_none()) {
            *lock(&w.exit) = Some(status);
            w.fflags.fetch_or(
                w.sfflags.load(Ordering::Relaxed) & NOTE_EXIT,
                Ordering::AcqRel,
            );
            w.waker.wake_by_ref();
        }
        lock(&self.0).clear();
    }

    /// `KNOTE(NOTE_FORK | child)` on the parent `ppid`: `NOTE_FORK` where asked; a
    /// `NOTE_TRACK` knote adds one for `child` to its kqueue (`NOTE_CHILD`, `data` the
    /// parent's pid), else notes `NOTE_TRACKERR`.
    pub fn fork(&self, ppid: i32, child: &Arc<Proc>, budget: &Arc<Budget>) {
        for w in self.live().into_iter().filter(|w| w.signo.is_none()) {
            let sf = w.sfflags.load(Ordering::Relaxed);
            let mut note = sf & NOTE_FORK;
            if sf & NOTE_TRACK != 0 {
                let tracked = w.kq.upgrade().is_some_and(|sh| {
                    let kev = Kevent {
                        ident: child.pid() as u64,
                        filter: EVFILT_PROC,
                        flags: w.flags | EV_ADD | EV_ENABLE,
                        fflags: sf,
                        data: i64::from(ppid),
                        udata: w.udata.load(Ordering::Relaxed),
                        ext: [0; 4],
                    };
                    KQueue { sh }.track(&kev, child, budget).is_ok()
                });
                if !tracked {
                    note |= NOTE_TRACKERR;
                }
            }
            if note != 0 {
                w.fflags.fetch_or(note, Ordering::AcqRel);
                w.waker.wake_by_ref();
            }
        }
    }
}

/// The waker of a knote's selector: marks the knote and wakes its kqueue's waiters.
struct KnWake {
    fired: AtomicBool,
    /// When the first mark since the last look came: its place in the queue.
    seq: AtomicU64,
    kq: Weak<Shared>,
}

impl Wake for KnWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.fired.swap(true, Ordering::AcqRel) {
            self.seq.store(next_seq(), Ordering::Release);
        }
        if let Some(kq) = self.kq.upgrade() {
            kq.wq.wake_all();
        }
    }
}

/// What a knote watches.
enum Source {
    /// `EVFILT_READ`/`EVFILT_WRITE` on a descriptor.
    File { file: Weak<File>, filter: Filter },
    /// `EVFILT_VNODE`.
    Vnode { vn: Weak<Vnode>, watch: Arc<Watch> },
    /// `EVFILT_TIMER`: the period and the next expiry (monotonic).
    Timer { period_ns: i128, next: (i64, i64) },
    /// `EVFILT_PROC`/`EVFILT_SIGNAL`.
    Proc { watch: Arc<PWatch> },
}

struct KnState {
    kev: Kevent,
    /// `kn_sdata`/`kn_sfflags`: what EV_ADD asked.
    sdata: i64,
    sfflags: u32,
    disabled: bool,
    /// Added (or added again) and not yet evaluated: counts as a mark (`f_event` at
    /// EV_ADD).
    fresh: bool,
    /// Queued (`KN_ACTIVE`): reported at the next scan if its filter still holds.
    active: bool,
    /// Its place in the queue.
    qseq: u64,
    /// Deleted: a scan holding it skips it.
    dead: bool,
    src: Source,
    /// Timer expirations not yet reported.
    expired: i64,
    sel: Selector,
}

/// One knote (`struct knote`).
struct Knote {
    ident: u64,
    filter: u32,
    /// For descriptor knotes: the descriptor (`knote_fdclose` when it no longer holds the
    /// file).
    fd: Option<i32>,
    wake: Arc<KnWake>,
    st: Mutex<KnState>,
    /// Last answer, for a kqueue evaluated inside another's scan.
    ready: AtomicBool,
    _charge: Charge,
    timer: bool,
}

impl Drop for Knote {
    fn drop(&mut self) {
        if self.timer {
            TIMERS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

struct Shared {
    /// The clock timers run on.
    host: Arc<dyn Host>,
    /// kevent(2) callers and pollers of the kqueue wait here.
    wq: Arc<WaitQueue>,
    knotes: Mutex<Vec<Arc<Knote>>>,
}

/// A kqueue (`DTYPE_KQUEUE`).
pub struct KQueue {
    sh: Arc<Shared>,
}

thread_local! {
    /// Kqueues being evaluated on this thread: a kqueue watching another (or itself) is
    /// answered from the last results instead of a nested evaluation.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a change is looked up: the caller's descriptors.
pub struct Register<'a> {
    /// The caller.
    pub p: &'a Proc,
    /// The kernel (budget, clock).
    pub k: &'a Kernel,
}

impl KQueue {
    /// An empty kqueue whose timers run on `host`'s monotonic clock.
    pub fn new(host: Arc<dyn Host>) -> KQueue {
        KQueue {
            sh: Arc::new(Shared {
                host,
                wq: Arc::new(WaitQueue::new()),
                knotes: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Number of knotes (for tests).
    pub fn len(&self) -> usize {
        lock(&self.sh.knotes).len()
    }

    /// Whether it has no knotes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn find(&self, ident: u64, filter: u32) -> Option<Arc<Knote>> {
        lock(&self.sh.knotes)
            .iter()
            .find(|k| k.ident == ident && k.filter == filter)
            .cloned()
    }

    fn remove(&self, kn: &Arc<Knote>) {
        lock(&kn.st).dead = true;
        lock(&self.sh.knotes).retain(|k| !Arc::ptr_eq(k, kn));
    }

    /// `kqueue_register`: applies one change; the errno it fails with.
    pub fn register(&self, r: &Register<'_>, kev: &Kevent, budget: &Arc<Budget>) -> Result<()> {
        let isfd = match kev.filter {
            EVFILT_READ | EVFILT_WRITE | EVFILT_VNODE => true,
            EVFILT_TIMER | EVFILT_PROC | EVFILT_SIGNAL => false,
            // No AIO in a rump kernel.
            _ => return Err(Errno::EINVAL),
        };
        let mut file = None;
        if isfd {
            let fd = i32::try_from(kev.ident).map_err(|_| Errno::EBADF)?;
            file = Some(r.p.fd.get(fd)?);
        }
        let existing = self.find(kev.ident, kev.filter);
        let kn = match (kev.flags & EV_ADD != 0, existing) {
            (true, None) => {
                let kn = self.attach(r, kev, file, budget)?;
                lock(&self.sh.knotes).push(kn.clone());
                kn
            }
            (true, Some(kn)) => {
                let mut st = lock(&kn.st);
                st.sfflags = kev.fflags;
                st.sdata = kev.data;
                st.kev.udata = kev.udata;
                st.fresh = true;
                match &st.src {
                    Source::Vnode { watch, .. } => {
                        watch.sfflags.store(kev.fflags, Ordering::Relaxed)
                    }
                    Source::Proc { watch } => {
                        watch.sfflags.store(kev.fflags, Ordering::Relaxed);
                        watch.udata.store(kev.udata, Ordering::Relaxed);
                    }
                    _ => {}
                }
                drop(st);
                kn
            }
            (false, None) => return Err(Errno::ENOENT),
            (false, Some(kn)) if kev.flags & EV_DELETE != 0 => {
                self.remove(&kn);
                return Ok(());
            }
            (false, Some(kn)) => kn,
        };
        {
            let mut st = lock(&kn.st);
            if kev.flags & EV_DISABLE != 0 {
                st.disabled = true;
            }
            if kev.flags & EV_ENABLE != 0 {
                st.disabled = false;
            }
        }
        self.sh.wq.wake_all();
        Ok(())
    }

    /// A new knote for `kev` (`f_attach`): refused as the file kind refuses the filter.
    fn attach(
        &self,
        r: &Register<'_>,
        kev: &Kevent,
        file: Option<Arc<File>>,
        budget: &Arc<Budget>,
    ) -> Result<Arc<Knote>> {
        let charge = Charge::try_new(budget, KNOTE_CHARGE_BYTES).map_err(|_| Errno::ENOMEM)?;
        let wake = Arc::new(KnWake {
            fired: AtomicBool::new(false),
            seq: AtomicU64::new(0),
            kq: Arc::downgrade(&self.sh),
        });
        let waker = Waker::from(wake.clone());
        let mut flags = kev.flags & !(EV_SYSFLAGS | EV_DELETE);
        let mut timer = false;
        let src = match kev.filter {
            EVFILT_READ | EVFILT_WRITE => {
                let f = file.as_ref().ok_or(Errno::EBADF)?;
                let filter = match kev.filter {
                    EVFILT_READ => Filter::Read,
                    _ => Filter::Write,
                };
                if let Some(kq) = f.kqueue() {
                    // `kqueue_kqfilter`: only EVFILT_READ on a kqueue.
                    if filter != Filter::Read || Arc::ptr_eq(&kq.sh, &self.sh) {
                        return Err(Errno::EINVAL);
                    }
                }
                f.filter(filter, None)?;
                Source::File {
                    file: Arc::downgrade(f),
                    filter,
                }
            }
            EVFILT_VNODE => {
                let f = file.as_ref().ok_or(Errno::EBADF)?;
                let vn = match (f.vnode(), f.kind()) {
                    (Some(vn), _) => vn.clone(),
                    (None, super::FileKind::Console(_)) => return Err(Errno::EOPNOTSUPP),
                    (None, _) => return Err(Errno::EINVAL),
                };
                let watch = Arc::new(Watch {
                    sfflags: AtomicU32::new(kev.fflags),
                    fflags: AtomicU32::new(0),
                    waker: waker.clone(),
                });
                vn.klist().attach(&watch);
                Source::Vnode {
                    vn: Arc::downgrade(&vn),
                    watch,
                }
            }
            EVFILT_PROC | EVFILT_SIGNAL => {
                flags |= EV_CLEAR;
                let target = match kev.filter {
                    EVFILT_PROC => Some(proc_target(r, kev.ident)?),
                    _ => None,
                };
                let watch = Arc::new(PWatch {
                    signo: (kev.filter == EVFILT_SIGNAL).then_some(kev.ident),
                    sfflags: AtomicU32::new(kev.fflags),
                    fflags: AtomicU32::new(0),
                    count: AtomicU64::new(0),
                    exit: Mutex::new(None),
                    waker: waker.clone(),
                    kq: Arc::downgrade(&self.sh),
                    flags,
                    udata: AtomicU64::new(kev.udata),
                });
                match target {
                    Some(Target::Client(p)) => p.notes.attach(&watch),
                    Some(Target::Kernel) => {}
                    None => r.p.notes.attach(&watch),
                }
                Source::Proc { watch }
            }
            _ => {
                // EVFILT_TIMER: `data` milliseconds, repeating; `EV_CLEAR` implied.
                if kev.data <= 0 {
                    return Err(Errno::EINVAL);
                }
                if TIMERS.fetch_add(1, Ordering::Relaxed) >= KQ_TIMERS_MAX {
                    TIMERS.fetch_sub(1, Ordering::Relaxed);
                    return Err(Errno::ENOMEM);
                }
                timer = true;
                flags |= EV_CLEAR;
                let period_ns = i128::from(kev.data) * 1_000_000;
                Source::Timer {
                    period_ns,
                    next: add_ns(r.k.host().clock_monotonic(), period_ns),
                }
            }
        };
        let fd = file.as_ref().map(|_| kev.ident as i32);
        Ok(Arc::new(Knote {
            ident: kev.ident,
            filter: kev.filter,
            fd,
            wake,
            st: Mutex::new(KnState {
                kev: Kevent {
                    flags,
                    fflags: 0,
                    data: 0,
                    ..*kev
                },
                sdata: kev.data,
                sfflags: kev.fflags,
                disabled: false,
                fresh: true,
                active: false,
                qseq: next_seq(),
                dead: false,
                src,
                expired: 0,
                sel: Selector::new(waker),
            }),
            ready: AtomicBool::new(false),
            _charge: charge,
            timer,
        }))
    }

    /// `kqueue_register` of a `NOTE_TRACK` child (`EV_FLAG1`): a new `EVFILT_PROC` knote on
    /// `child`, reported at once with `NOTE_CHILD` and the parent's pid; an existing one
    /// only takes the new `fflags` and `udata`.
    fn track(&self, kev: &Kevent, child: &Arc<Proc>, budget: &Arc<Budget>) -> Result<()> {
        if let Some(kn) = self.find(kev.ident, kev.filter) {
            if let Source::Proc { watch } = &lock(&kn.st).src {
                watch.sfflags.store(kev.fflags, Ordering::Relaxed);
                watch.udata.store(kev.udata, Ordering::Relaxed);
            }
            return Ok(());
        }
        let charge = Charge::try_new(budget, KNOTE_CHARGE_BYTES).map_err(|_| Errno::ENOMEM)?;
        let wake = Arc::new(KnWake {
            fired: AtomicBool::new(false),
            seq: AtomicU64::new(0),
            kq: Arc::downgrade(&self.sh),
        });
        let waker = Waker::from(wake.clone());
        let watch = Arc::new(PWatch {
            signo: None,
            sfflags: AtomicU32::new(kev.fflags),
            fflags: AtomicU32::new(0),
            count: AtomicU64::new(0),
            exit: Mutex::new(None),
            waker: waker.clone(),
            kq: Arc::downgrade(&self.sh),
            flags: kev.flags,
            udata: AtomicU64::new(kev.udata),
        });
        child.notes.attach(&watch);
        let kn = Arc::new(Knote {
            ident: kev.ident,
            filter: EVFILT_PROC,
            fd: None,
            wake,
            st: Mutex::new(KnState {
                kev: Kevent {
                    fflags: NOTE_CHILD,
                    ..*kev
                },
                sdata: 0,
                sfflags: kev.fflags,
                disabled: false,
                fresh: true,
                active: false,
                qseq: next_seq(),
                dead: false,
                src: Source::Proc { watch },
                expired: 0,
                sel: Selector::new(waker),
            }),
            ready: AtomicBool::new(false),
            _charge: charge,
            timer: false,
        });
        lock(&self.sh.knotes).push(kn);
        self.sh.wq.wake_all();
        Ok(())
    }

    /// Drops knotes whose descriptor no longer holds their file (`knote_fdclose`).
    fn fdclose(&self, p: &Proc, knotes: &mut Vec<Arc<Knote>>) {
        knotes.retain(|kn| {
            let Some(fd) = kn.fd else {
                return true;
            };
            let same = match &lock(&kn.st).src {
                Source::File { file, .. } => {
                    p.fd.get(fd)
                        .is_ok_and(|f| std::ptr::eq(Arc::as_ptr(&f), file.as_ptr()))
                }
                _ => p.fd.get(fd).is_ok(),
            };
            if !same {
                self.remove(kn);
            }
            same
        });
    }

    /// `kqueue_scan` once: up to `max` events from the queued (active) knotes in the order
    /// they were queued, non-`EV_ONESHOT` ones asked again first, with `EV_ONESHOT`,
    /// `EV_CLEAR` and `EV_DISPATCH` applied; `p` (when given) drops knotes whose descriptor
    /// was closed. A waiting caller's `sel` is recorded on the kqueue's queue first and
    /// asked to come back at the next timer expiry.
    pub fn scan(
        &self,
        p: Option<&Proc>,
        now: (i64, i64),
        max: usize,
        sel: Option<&mut Selector>,
    ) -> Vec<Kevent> {
        let mut sel = sel;
        if let Some(s) = sel.as_deref_mut() {
            s.record(&self.sh.wq);
        }
        let mut knotes: Vec<Arc<Knote>> = lock(&self.sh.knotes).clone();
        if let Some(p) = p {
            self.fdclose(p, &mut knotes);
        }
        let _depth = Depth::enter();
        // Activation (`knote_activate`): what happened since the last scan.
        let mut queued: Vec<(u64, Arc<Knote>)> = Vec::new();
        for kn in knotes {
            let mut st = lock(&kn.st);
            if st.dead {
                continue;
            }
            activate(&kn, &mut st, now, sel.as_deref_mut());
            if st.active && !st.disabled {
                queued.push((st.qseq, kn.clone()));
            }
        }
        queued.sort_by_key(|q| q.0);
        let mut out = Vec::new();
        for (_, kn) in queued {
            if out.len() >= max {
                break;
            }
            let (ev, remove) = {
                let mut st = lock(&kn.st);
                if st.dead || st.disabled || !st.active {
                    continue;
                }
                if st.kev.flags & EV_ONESHOT == 0 && !evaluate(&kn, &mut st, now) {
                    st.active = false;
                    continue;
                }
                let ev = st.kev;
                let flags = st.kev.flags;
                if flags & EV_CLEAR != 0 {
                    st.kev.data = 0;
                    st.kev.fflags = 0;
                    st.expired = 0;
                    st.active = false;
                } else if flags & EV_DISPATCH != 0 {
                    st.disabled = true;
                    st.active = false;
                } else {
                    st.qseq = next_seq();
                }
                (ev, flags & EV_ONESHOT != 0)
            };
            if remove {
                self.remove(&kn);
            }
            out.push(ev);
        }
        out
    }

    /// The knotes queued now (`kq_count`: `kqueue_poll`, `filt_kqueue`, `st_size`).
    fn pending(&self, sel: Option<&mut Selector>) -> i64 {
        let mut sel = sel;
        if let Some(s) = sel.as_deref_mut() {
            s.record(&self.sh.wq);
        }
        let knotes: Vec<Arc<Knote>> = lock(&self.sh.knotes).clone();
        if DEPTH.with(Cell::get) > 0 {
            // Inside another kqueue's evaluation: the last answers, no nested locks.
            return knotes
                .iter()
                .filter(|k| k.ready.load(Ordering::Acquire))
                .count() as i64;
        }
        let _depth = Depth::enter();
        let now = self.sh.host.clock_monotonic();
        let mut n = 0;
        for kn in knotes {
            let mut st = lock(&kn.st);
            if st.dead {
                continue;
            }
            activate(&kn, &mut st, now, sel.as_deref_mut());
            n += i64::from(st.active && !st.disabled);
        }
        n
    }
}

/// `filt_procattach`'s look-up and check: the process `ident` (as a `pid_t`), else
/// `ESRCH`; watched only by root or by the same real user when the target is not
/// set-id (`kqueue_listener_cb`), else `EACCES`. proc0 and init belong to root.
fn proc_target(r: &Register<'_>, ident: u64) -> Result<Target> {
    let pid = ident as i32;
    let me = r.p.cred();
    let (target, uid, sugid) = match pid {
        0 | crate::proc::INIT_PID => (Target::Kernel, 0, false),
        _ => {
            let p = r.k.find_proc(pid).ok_or(Errno::ESRCH)?;
            let (uid, sugid) = (p.cred().uid, p.sugid());
            (Target::Client(p), uid, sugid)
        }
    };
    if !me.is_root() && (uid != me.uid || sugid) {
        return Err(Errno::EACCES);
    }
    Ok(target)
}

static SEQ: AtomicU64 = AtomicU64::new(1);

/// The next place at the tail of the queues.
fn next_seq() -> u64 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// Marks this thread as evaluating a kqueue while alive.
struct Depth;

impl Depth {
    fn enter() -> Depth {
        DEPTH.with(|d| d.set(d.get() + 1));
        Depth
    }
}

impl Drop for Depth {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

fn add_ns(t: (i64, i64), ns: i128) -> (i64, i64) {
    let total = i128::from(t.0) * 1_000_000_000 + i128::from(t.1) + ns;
    let sec = (total / 1_000_000_000).clamp(0, i128::from(i64::MAX)) as i64;
    (sec, (total % 1_000_000_000) as i64)
}

fn ns_between(a: (i64, i64), b: (i64, i64)) -> i128 {
    (i128::from(b.0) - i128::from(a.0)) * 1_000_000_000 + i128::from(b.1) - i128::from(a.1)
}

/// Advances a timer to `now`: expirations since the last look.
fn tick(next: &mut (i64, i64), period_ns: i128, now: (i64, i64)) -> i64 {
    let late = ns_between(*next, now);
    if late < 0 {
        return 0;
    }
    let n = late / period_ns + 1;
    *next = add_ns(*next, n * period_ns);
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `knote_activate` for what happened since the last look: a marked (woken) or new knote
/// whose filter holds becomes active, queued at the time of its mark; a timer that expired
/// becomes active. The caller's `sel` is asked back at the next expiry.
fn activate(kn: &Knote, st: &mut KnState, now: (i64, i64), sel: Option<&mut Selector>) {
    let woken = kn.wake.fired.swap(false, Ordering::AcqRel);
    let marked = woken || st.fresh;
    st.fresh = false;
    if let Source::Timer { next, .. } = &st.src {
        if let Some(s) = sel {
            s.wake_at(*next);
        }
        if evaluate(kn, st, now) && !st.active {
            st.active = true;
            st.qseq = next_seq();
        }
        return;
    }
    if marked && !st.active && evaluate(kn, st, now) {
        st.active = true;
        st.qseq = match woken {
            true => kn.wake.seq.load(Ordering::Acquire),
            false => next_seq(),
        };
    } else if marked && st.active {
        // Re-arm the knote's own registrations (its mark consumed them).
        evaluate(kn, st, now);
    }
}

/// The filter's answer now (`f_event`): updates `data`, `fflags` and `EV_EOF`, records the
/// knote's own selector where a change will be announced; whether it fires.
fn evaluate(kn: &Knote, st: &mut KnState, now: (i64, i64)) -> bool {
    st.sel.clear();
    let fires = match &mut st.src {
        Source::File { file, filter } => {
            let Some(f) = file.upgrade() else {
                kn.ready.store(false, Ordering::Release);
                return false;
            };
            let r: Filt = f.filter(*filter, Some(&mut st.sel)).unwrap_or_default();
            st.kev.data = r.data;
            if r.eof {
                st.kev.flags |= EV_EOF;
            }
            r.ready
        }
        Source::Vnode { vn, watch } => {
            st.kev.fflags |= watch.fflags.swap(0, Ordering::AcqRel);
            if vn.upgrade().is_some_and(|v| v.revoked()) {
                st.kev.flags |= EV_EOF;
                st.kev.fflags |= st.sfflags & NOTE_REVOKE;
            }
            st.kev.fflags != 0 || st.kev.flags & EV_EOF != 0
        }
        Source::Timer { period_ns, next } => {
            st.expired = st.expired.saturating_add(tick(next, *period_ns, now));
            st.kev.data = st.expired;
            st.expired > 0
        }
        Source::Proc { watch } if watch.signo.is_some() => {
            // `filt_signal`: the signals since the last report.
            let n = i64::try_from(watch.count.swap(0, Ordering::AcqRel)).unwrap_or(i64::MAX);
            st.kev.data = st.kev.data.saturating_add(n);
            st.kev.data != 0
        }
        Source::Proc { watch } => {
            // `filt_proc`: the notes seen; at exit the status, `EV_EOF` and `EV_ONESHOT`.
            st.kev.fflags |= watch.fflags.swap(0, Ordering::AcqRel);
            if let Some(status) = *lock(&watch.exit) {
                st.kev.data = status;
                st.kev.flags |= EV_EOF | EV_ONESHOT;
                true
            } else {
                st.kev.fflags != 0
            }
        }
    };
    kn.ready.store(fires, Ordering::Release);
    fires
}

impl super::FileOps for KQueue {
    /// `fo_read` is `enxio`.
    async fn read<M: UserMem>(
        &self,
        _fp: &File,
        _k: &Kernel,
        _p: &Proc,
        _mem: &M,
        _iov: &[Iov],
        _at: Option<i64>,
    ) -> (u64, Result<()>) {
        (0, Err(Errno::ENXIO))
    }

    /// `fo_write` is `enxio`.
    async fn write<M: UserMem>(
        &self,
        _fp: &File,
        _k: &Kernel,
        _p: &Proc,
        _mem: &M,
        _iov: &[Iov],
        _at: Option<i64>,
    ) -> (u64, Result<()>) {
        (0, Err(Errno::ENXIO))
    }

    /// `kqueue_ioctl`: the filter-name mappings are not served.
    fn ioctl(&self, _fp: &File, _com: u32, _data: &mut [u8]) -> Result<()> {
        Err(Errno::ENOTTY)
    }

    /// `kqueue_stat`: a FIFO's type, `st_size` the events pending, `st_blksize` the size of
    /// a `struct kevent`.
    fn stat(&self, _k: &Kernel) -> Result<Stat> {
        Ok(Stat {
            mode: S_IFIFO,
            size: self.pending(None),
            blksize: KEVENT50_BYTES as i32,
            ..Stat::default()
        })
    }

    /// `kqueue_poll`: readable while an event is pending.
    fn poll(&self, _fp: &File, events: PollEvents, sel: Option<&mut Selector>) -> PollEvents {
        if events & (POLLIN | POLLRDNORM) == 0 {
            return 0;
        }
        match self.pending(sel) {
            0 => 0,
            _ => events & (POLLIN | POLLRDNORM),
        }
    }

    /// `filt_kqueue`: `EVFILT_READ` fires while events are pending (`data` = how many).
    fn filter(&self, _fp: &File, filter: Filter, sel: Option<&mut Selector>) -> Result<Filt> {
        if filter != Filter::Read {
            return Err(Errno::EINVAL);
        }
        let n = self.pending(sel);
        Ok(Filt {
            ready: n > 0,
            data: n,
            eof: false,
        })
    }
}

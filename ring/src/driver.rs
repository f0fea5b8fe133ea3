//! The io_uring driver of one loop: ring setup, the op slab keyed by `user_data`, submission in
//! batches and completion dispatch.
//!
//! Buffer ownership: an `Op` future owns its buffers while it waits. When it is dropped before
//! its completion arrives, its data moves into the slab as `Life::Ignored` and is released by the
//! completion handler (monoio's `Lifecycle::Ignored`), so the kernel never writes freed memory.
//! The number of ops in flight is bounded so that the completion queue can never overflow.
//!
//! Multishot ops (a receive with a provided buffer) post many CQEs on one slot: they queue in
//! the slot (`Life::Multi`) until the op's future takes them, and the slot stays in use until
//! the final CQE (no `IORING_CQE_F_MORE`), also after the future was dropped. Their data CQEs
//! are bounded by the buffer ring's size, which the in-flight bound reserves room for.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use crate::bufring::{BufRing, BUF_COUNT};
use crate::error::SetupError;

/// `user_data` of the loop's eventfd read.
const EVENTFD_TOKEN: u64 = 1 << 62;
/// `user_data` of the NOP linked behind each lazy send (a completion only when cancelled).
const LAZY_NOP_TOKEN: u64 = (1 << 62) + 1;
/// `user_data` of the start-up probe's send (`probe_lazy`).
const PROBE_TOKEN: u64 = (1 << 62) + 2;
/// Set in the `user_data` of an `AsyncCancel` aimed at the op with the remaining bits.
const CANCEL_BIT: u64 = 1 << 63;
/// Completion queue size: 64 entries per SQ entry, within [4096, 65536]. Every op in flight
/// needs up to two CQEs (its own and its cancel's), so this bounds ops per loop to ~cq/2.
const CQ_PER_SQ: u32 = 64;
const CQ_ENTRIES_MIN: u32 = 4096;
const CQ_ENTRIES_MAX: u32 = 65536;
/// How long a stopping loop waits for cancelled ops before leaking their buffers.
const QUIESCE_TIMEOUT: Duration = Duration::from_secs(2);

/// The data of one io_uring operation: the buffers and descriptors its SQE points at.
pub(crate) trait OpData: 'static {
    /// Builds the SQE. Pointers in it must point into heap memory owned by `self`, which stays
    /// put when `self` moves.
    fn entry(&mut self) -> squeue::Entry;
    /// Runs on the loop thread when the op completes after its future was dropped: release
    /// what the kernel produced (e.g. close an accepted descriptor).
    fn ignored_completion(self: Box<Self>, _res: i32) {}
    /// Whether nobody is in a hurry for this op's completion (see [`Driver::wait`]): a send
    /// whose task has nothing queued behind it.
    fn lazy(&self) -> bool {
        false
    }
}

/// Where an op slot is in its life.
enum Life {
    Free,
    /// Submitted (or queued in the SQ); the waker of the future waiting for it.
    Waiting(Option<Waker>),
    /// The CQE arrived; the future has not picked it up yet.
    Completed {
        res: i32,
        flags: u32,
    },
    /// The future was dropped while the op was in flight; its data waits for the CQE.
    Ignored(Box<dyn OpData>),
    /// The op is finished; the slot waits only for the CQE of its cancel.
    Done,
    /// A multishot op whose future is alive: CQEs not yet taken, in order, and its waker.
    Multi {
        cqes: VecDeque<(i32, u32)>,
        waker: Option<Waker>,
    },
}

struct Slot {
    life: Life,
    /// An `AsyncCancel` aimed at this slot has no CQE yet: the slot may not be reused.
    cancel_pending: bool,
}

struct Ops {
    slots: Vec<Slot>,
    free: Vec<u32>,
    in_use: usize,
    max: usize,
}

/// Which setup flags the kernel accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingMode {
    /// `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN` (Linux 6.1+).
    DeferTaskrun,
    /// `IORING_SETUP_COOP_TASKRUN` (Linux 5.19+).
    CoopTaskrun,
    /// No optional setup flags.
    Plain,
    /// No ring at all: the loop runs the epoll backend.
    Epoll,
}

/// One loop's ring and op bookkeeping. Used only on its loop thread.
pub(crate) struct Driver {
    ring: RefCell<IoUring>,
    ops: RefCell<Ops>,
    /// Futures waiting for a free op slot (the in-flight bound is reached).
    slot_waiters: RefCell<VecDeque<Waker>>,
    /// Completions copied out of the CQ, not yet dispatched.
    cqes: RefCell<Vec<(u64, i32, u32)>>,
    eventfd: RawFd,
    /// 8-byte target of the eventfd read; leaked if the read is still in flight at the end.
    eventfd_buf: *mut u64,
    eventfd_inflight: Cell<bool>,
    /// The loop's provided buffer ring, registered on first use.
    bufs: RefCell<Bufs>,
    /// Multishot receives failed with EINVAL: streams use plain receives.
    multishot_off: Cell<bool>,
    /// Lazy ops (`OpData::lazy`) pushed since the last `io_uring_enter`.
    lazy_queued: Cell<u32>,
    /// A task of this loop waits for a lazy op pushed since the last enter ([`Driver::urge`]).
    urged: Cell<bool>,
    /// Waits may count on lazy ops' inline completions (`RING_LAZY_SEND=0` turns it off).
    lazy_on: bool,
}

/// `RING_LAZY_SEND` (read once): `0` makes waits ignore lazy ops, for measurements.
fn lazy_setting() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| std::env::var_os("RING_LAZY_SEND").is_none_or(|v| v != "0"))
}

/// Whether the loop has a provided buffer ring.
enum Bufs {
    Untried,
    Unsupported,
    Ready(std::rc::Rc<BufRing>),
}

/// Creates a ring, trying the cheapest setup flags first and falling back on EINVAL.
pub(crate) fn build_ring(entries: u32) -> Result<(IoUring, RingMode), SetupError> {
    let entries = entries.clamp(1, 32768);
    let cq = entries
        .saturating_mul(CQ_PER_SQ)
        .clamp(CQ_ENTRIES_MIN, CQ_ENTRIES_MAX);
    let mut last = io::Error::from_raw_os_error(libc::EINVAL);
    for mode in [
        RingMode::DeferTaskrun,
        RingMode::CoopTaskrun,
        RingMode::Plain,
    ] {
        let mut b = IoUring::builder();
        b.setup_cqsize(cq);
        match mode {
            // SUBMIT_ALL (5.18): a failing SQE does not leave the ones after it unsubmitted,
            // which `Driver::wait`'s count of lazy completions relies on.
            RingMode::DeferTaskrun => {
                b.setup_single_issuer()
                    .setup_defer_taskrun()
                    .setup_taskrun_flag()
                    .setup_submit_all();
            }
            RingMode::CoopTaskrun => {
                b.setup_coop_taskrun()
                    .setup_taskrun_flag()
                    .setup_submit_all();
            }
            RingMode::Plain | RingMode::Epoll => {}
        }
        match b.build(entries) {
            Ok(r) => return check_opcodes(&r).map(|()| (r, mode)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = e,
            Err(e) => return Err(SetupError::from_setup(e)),
        }
    }
    Err(SetupError::from_setup(last))
}

/// Checks, on a fresh ring, the kernel behaviour lazy sends rely on (see [`Driver::wait`]):
/// a `MSG_DONTWAIT | MSG_WAITALL` send linked to a `CQE_SKIP_SUCCESS` NOP completes during
/// submission with one completion when it sends everything, and with two (the send's, with
/// the bytes it did send, and the cancelled NOP's) when the socket takes only part or nothing.
fn probe_lazy(ring: &mut IoUring) -> bool {
    probe_lazy_inner(ring).unwrap_or(false)
}

fn probe_lazy_inner(ring: &mut IoUring) -> io::Result<bool> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    let (a, b) = UnixStream::pair()?;
    b.set_nonblocking(true)?;
    // Leaked if the kernel holds on to it (a send that went asynchronous after all).
    let msg = std::mem::ManuallyDrop::new(vec![7u8; 64 << 10]);
    let getevents = io_uring::EnterFlags::GETEVENTS.bits();
    // One case: the completions seen once the submission (and its task work) is done, as
    // (send result, NOP cancelled); None when they were not exactly the expected ones.
    let mut run = |len: usize| -> io::Result<Option<(i32, bool)>> {
        let send = opcode::Send::new(types::Fd(a.as_raw_fd()), msg.as_ptr(), len as u32)
            .flags(libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT | libc::MSG_WAITALL)
            .build()
            .flags(squeue::Flags::IO_LINK)
            .user_data(PROBE_TOKEN);
        let nop = opcode::Nop::new()
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(LAZY_NOP_TOKEN);
        // SAFETY: `msg` is never freed if the send might still be in flight (see below).
        unsafe { ring.submission().push_multiple(&[send, nop]) }
            .map_err(|_| io::Error::other("probe: SQ full"))?;
        // GETEVENTS without waiting: runs the task work (a cancelled link may post there),
        // as the blocking wait does.
        // SAFETY: no argument pointer is passed.
        unsafe {
            ring.submitter()
                .enter::<libc::sigset_t>(2, 0, getevents, None)
        }?;
        let cqes: Vec<(u64, i32)> = ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect();
        let send_res = cqes.iter().find(|c| c.0 == PROBE_TOKEN).map(|c| c.1);
        let nop = cqes
            .iter()
            .any(|c| c.0 == LAZY_NOP_TOKEN && c.1 == -libc::ECANCELED);
        Ok(send_res
            .filter(|_| cqes.len() == 1 + usize::from(nop))
            .map(|r| (r, nop)))
    };

    let read_all = || -> usize {
        let mut n = 0;
        let mut buf = vec![0u8; 64 << 10];
        while let Ok(k @ 1..) = (&b).read(&mut buf) {
            n += k;
        }
        n
    };
    let verdict = (|| {
        // Everything fits: one completion, the NOP's skipped.
        if run(100)? != Some((100, false)) || read_all() != 100 {
            return Ok(false);
        }
        // Fill the socket until a send is short or refused: two completions, and a short
        // send reports exactly the bytes that went out.
        let mut sent = 0usize;
        for _ in 0..4096 {
            match run(msg.len())? {
                Some((r, false)) if r == msg.len() as i32 => sent += msg.len(),
                Some((r, true)) if r == -libc::EAGAIN => return Ok(read_all() == sent),
                Some((r, true)) if r > 0 && (r as usize) < msg.len() => {
                    return Ok(read_all() == sent + r as usize);
                }
                _ => return Ok(false),
            }
        }
        Ok(false)
    })();
    if let Ok(true) = verdict {
        // Every send completed during its submission: the buffer is free.
        drop(std::mem::ManuallyDrop::into_inner(msg));
    }
    verdict
}

/// Fails with `Unsupported` when the kernel lacks an operation the loops use (io_uring before
/// Linux 5.6 has no accept/recv/send, and no probe).
fn check_opcodes(ring: &IoUring) -> Result<(), SetupError> {
    let mut probe = io_uring::Probe::new();
    if let Err(e) = ring.submitter().register_probe(&mut probe) {
        return Err(SetupError::Unsupported(e));
    }
    let needed = [
        (opcode::Accept::CODE, "accept"),
        (opcode::Recv::CODE, "recv"),
        (opcode::Send::CODE, "send"),
        (opcode::Read::CODE, "read"),
        (opcode::Write::CODE, "write"),
        (opcode::Fsync::CODE, "fsync"),
        (opcode::Timeout::CODE, "timeout"),
        (opcode::AsyncCancel::CODE, "async_cancel"),
    ];
    for (code, name) in needed {
        if !probe.is_supported(code) {
            let e = io::Error::other(format!("no IORING_OP_{}", name.to_uppercase()));
            return Err(SetupError::Unsupported(e));
        }
    }
    Ok(())
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY | libc::ETIME)
    )
}

impl Driver {
    pub(crate) fn new(mut ring: IoUring, eventfd: RawFd, mode: RingMode) -> Driver {
        // SUBMIT_ALL is set in the DeferTaskrun and CoopTaskrun modes.
        let lazy_on = mode != RingMode::Plain && lazy_setting() && probe_lazy(&mut ring);
        let cq = ring.params().cq_entries() as usize;
        // Two CQEs per op (op + cancel) plus the eventfd read and its cancel, plus one data CQE
        // per provided buffer (multishot receives post one per buffer they fill). A lazy send
        // posts two (its own and its cancelled NOP's) and a third only if abandoned before it
        // was submitted; for that corner the kernel's IORING_FEAT_NODROP backlog (Linux 5.5)
        // keeps any overflow, which `submit_queued` drains on EBUSY.
        let max = (cq - 2 - usize::from(BUF_COUNT)) / 2;
        Driver {
            ops: RefCell::new(Ops {
                slots: Vec::new(),
                free: Vec::new(),
                in_use: 0,
                max,
            }),
            slot_waiters: RefCell::new(VecDeque::new()),
            cqes: RefCell::new(Vec::with_capacity(cq)),
            eventfd,
            eventfd_buf: Box::into_raw(Box::new(0u64)),
            eventfd_inflight: Cell::new(false),
            bufs: RefCell::new(Bufs::Untried),
            multishot_off: Cell::new(false),
            lazy_queued: Cell::new(0),
            urged: Cell::new(false),
            lazy_on,
            ring: RefCell::new(ring),
        }
    }

    /// A task of this loop will want the completion of a lazy op pushed in this turn: the
    /// loop's next wait ends at the first completion, as for any op.
    pub(crate) fn urge(&self) {
        self.urged.set(true);
    }

    /// The loop's provided buffer ring; registered on the first call (the probe), `None` for
    /// good when the kernel does not support it.
    pub(crate) fn buf_ring(&self) -> Option<std::rc::Rc<BufRing>> {
        let mut b = self.bufs.borrow_mut();
        if let Bufs::Untried = *b {
            *b = match BufRing::register(&self.ring.borrow()) {
                Some(r) => Bufs::Ready(r),
                None => Bufs::Unsupported,
            };
        }
        match &*b {
            Bufs::Ready(r) if !self.multishot_off.get() => Some(r.clone()),
            _ => None,
        }
    }

    /// Multishot receives turned out unsupported (e.g. `EINVAL` before Linux 6.0): stop using
    /// the buffer ring for new streams. The registered ring stays until the driver is gone.
    pub(crate) fn disable_multishot(&self) {
        self.multishot_off.set(true);
    }

    /// Counts a CQE's provided buffer as handed out.
    fn note_cqe_buffer(&self, flags: u32) {
        if cqueue::buffer_select(flags).is_some() {
            if let Bufs::Ready(r) = &*self.bufs.borrow() {
                r.filled();
            }
        }
    }

    /// Gives a CQE's provided buffer back to the ring (nobody will read it).
    fn recycle_cqe_buffer(&self, flags: u32) {
        if let Some(bid) = cqueue::buffer_select(flags) {
            if let Bufs::Ready(r) = &*self.bufs.borrow() {
                r.recycle(bid);
            }
        }
    }

    /// Ops in flight (slots in use).
    pub(crate) fn in_flight(&self) -> usize {
        self.ops.borrow().in_use
    }

    /// Queues one SQE, submitting (and draining the CQ if the kernel asks) when the SQ is full.
    ///
    /// # Safety
    /// Every pointer in `entry` must stay valid until its completion has been dispatched.
    unsafe fn push(&self, entry: &squeue::Entry) {
        let mut ring = self.ring.borrow_mut();
        // SAFETY: the caller guarantees the entry's buffers outlive the operation.
        while unsafe { ring.submission().push(entry) }.is_err() {
            self.submit_queued(&mut ring);
        }
    }

    /// Submits the SQ (to make room, or before a close), draining the CQ when the kernel
    /// pushes back.
    fn submit_queued(&self, ring: &mut IoUring) {
        self.lazy_queued.set(0);
        match ring.submit() {
            Ok(_) => {}
            Err(e) if is_transient(&e) => Self::drain_cq_into(ring, &self.cqes),
            Err(e) => panic!("io_uring_enter failed while submitting: {e}"),
        }
    }

    /// Queues a lazy send linked to a NOP that posts a completion only when the send did not
    /// send everything at once (see [`Driver::wait`]). Both go in one batch: a link cut by a
    /// submission in between would not be a link.
    ///
    /// # Safety
    /// As [`Driver::push`].
    unsafe fn push_lazy(&self, send: &squeue::Entry) {
        let pair = [
            send.clone().flags(squeue::Flags::IO_LINK),
            opcode::Nop::new()
                .build()
                .flags(squeue::Flags::SKIP_SUCCESS)
                .user_data(LAZY_NOP_TOKEN),
        ];
        let mut ring = self.ring.borrow_mut();
        // SAFETY: the caller guarantees the send's buffer outlives the operation.
        while unsafe { ring.submission().push_multiple(&pair) }.is_err() {
            self.submit_queued(&mut ring);
        }
        self.lazy_queued.set(self.lazy_queued.get() + 1);
    }

    /// Whether sends may be lazy on this loop (see [`Driver::wait`]).
    pub(crate) fn lazy_on(&self) -> bool {
        self.lazy_on
    }

    /// Pushes any queued SQEs to the kernel now (before a descriptor they name is closed).
    pub(crate) fn flush(&self) {
        let mut ring = self.ring.borrow_mut();
        while !ring.submission().is_empty() {
            self.submit_queued(&mut ring);
        }
    }

    /// Keeps a read armed on the loop's eventfd so remote wake-ups end a blocking wait.
    pub(crate) fn arm_eventfd(&self) {
        if self.eventfd_inflight.get() {
            return;
        }
        let e = opcode::Read::new(types::Fd(self.eventfd), self.eventfd_buf.cast(), 8)
            .build()
            .user_data(EVENTFD_TOKEN);
        // SAFETY: eventfd_buf is freed only after this read's completion was seen (or leaked).
        unsafe { self.push(&e) };
        self.eventfd_inflight.set(true);
    }

    /// Submits queued SQEs and collects completions without blocking. With DEFER_TASKRUN (or
    /// COOP_TASKRUN) completions are only posted when we enter the kernel with GETEVENTS; the
    /// kernel tells us through IORING_SQ_TASKRUN (we set IORING_SETUP_TASKRUN_FLAG) when that
    /// is needed, so an idle check costs no system call.
    pub(crate) fn submit_nowait(&self) {
        let mut ring = self.ring.borrow_mut();
        let n = ring.submission().len() as u32;
        self.lazy_queued.set(0);
        self.urged.set(false);
        if n > 0 || ring.submission().taskrun() {
            let getevents = io_uring::EnterFlags::GETEVENTS.bits();
            // SAFETY: no argument pointer is passed; the SQEs' buffers are owned per `push`.
            match unsafe {
                ring.submitter()
                    .enter::<libc::sigset_t>(n, 0, getevents, None)
            } {
                Ok(_) => {}
                Err(e) if is_transient(&e) => {}
                Err(e) => panic!("io_uring_enter failed: {e}"),
            }
        }
        Self::drain_cq_into(&mut ring, &self.cqes);
    }

    /// Whether a completion is there to collect without blocking: in the CQ, copied out, or
    /// (DEFER_TASKRUN/COOP_TASKRUN) pending as task work the kernel flagged with
    /// IORING_SQ_TASKRUN. Reads shared memory only, no system call: what a busy-polling loop
    /// checks ([`crate::Config::spin_us`]).
    pub(crate) fn ready(&self) -> bool {
        let mut ring = self.ring.borrow_mut();
        !self.cqes.borrow().is_empty()
            || !ring.completion().is_empty()
            || ring.submission().taskrun()
    }

    /// Submits queued SQEs and blocks until a completion arrives.
    ///
    /// Lazy sends (`OpData::lazy`: a writer with nothing queued behind) are issued with
    /// `MSG_DONTWAIT | MSG_WAITALL`, linked to a NOP that posts a completion only when it is
    /// cancelled. io_uring never arms a poll for a `MSG_DONTWAIT` send, so during submission
    /// each lazy send either sends everything (one completion: the NOP's is skipped) or sends
    /// part or nothing, which fails it and cancels the NOP (two completions). Without this the
    /// send's completion would end the wait at once and the loop would enter the kernel a
    /// second time to wait for the next request: two `io_uring_enter` per ping-pong. So when
    /// `k` lazy sends go out with this wait and no task urged them ([`Driver::urge`]), the
    /// wait asks for `k + 1` completions: the `k` it is sure to get during submission plus
    /// one, which is either another event (as any wait) or the NOP of a send that must be
    /// retried. A start-up probe (`probe_lazy`) checks these kernel semantics and turns lazy
    /// waits off where they differ.
    ///
    /// Measured alternative: bounding the hold-back with the kernel's `min_wait_usec` (Linux
    /// 6.12) instead of the NOP: arming the timer made a pinned ping-pong slower than no
    /// change at all (VM timer exits).
    pub(crate) fn wait(&self) {
        let mut ring = self.ring.borrow_mut();
        let lazy = self.lazy_queued.replace(0);
        let urged = self.urged.replace(false);
        if ring.completion().is_empty() && self.cqes.borrow().is_empty() {
            let want = match lazy > 0 && !urged && self.lazy_on {
                true => 1 + lazy as usize,
                false => 1,
            };
            match ring.submit_and_wait(want) {
                Ok(_) => {}
                Err(e) if is_transient(&e) => {}
                Err(e) => panic!("io_uring_enter failed while waiting: {e}"),
            }
        }
        Self::drain_cq_into(&mut ring, &self.cqes);
    }

    fn drain_cq_into(ring: &mut IoUring, out: &RefCell<Vec<(u64, i32, u32)>>) {
        let mut out = out.borrow_mut();
        out.extend(
            ring.completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
    }

    /// Dispatches collected completions: wakes waiting futures, frees ignored ops' data.
    /// Returns how many completions were handled.
    pub(crate) fn dispatch(&self) -> usize {
        let batch = std::mem::take(&mut *self.cqes.borrow_mut());
        let n = batch.len();
        for &(ud, res, flags) in &batch {
            self.complete(ud, res, flags);
        }
        let mut cqes = self.cqes.borrow_mut();
        if cqes.is_empty() {
            let mut batch = batch;
            batch.clear();
            *cqes = batch; // keep the allocation
        }
        n
    }

    fn complete(&self, ud: u64, res: i32, flags: u32) {
        if ud == EVENTFD_TOKEN {
            self.eventfd_inflight.set(false);
            return;
        }
        if ud == LAZY_NOP_TOKEN || ud == PROBE_TOKEN {
            return; // a lazy send's own completion tells its task what happened
        }
        if ud & CANCEL_BIT != 0 {
            let idx = (ud & !CANCEL_BIT) as usize;
            if let Some(slot) = self.ops.borrow_mut().slots.get_mut(idx) {
                slot.cancel_pending = false;
            }
            self.maybe_free(idx);
            return;
        }
        let idx = ud as usize;
        self.note_cqe_buffer(flags);
        let mut ops = self.ops.borrow_mut();
        let slot = &mut ops.slots[idx];
        if let Life::Multi { cqes, waker } = &mut slot.life {
            cqes.push_back((res, flags));
            let w = waker.take();
            drop(ops);
            if let Some(w) = w {
                w.wake();
            }
            return;
        }
        if cqueue::more(flags) {
            // A multishot op whose future is gone: drop the data, keep the slot.
            let Life::Ignored(_) = slot.life else {
                panic!("multishot completion for op slot {idx} in a wrong state")
            };
            drop(ops);
            self.recycle_cqe_buffer(flags);
            return;
        }
        match std::mem::replace(&mut slot.life, Life::Done) {
            Life::Waiting(w) => {
                slot.life = Life::Completed { res, flags };
                drop(ops);
                if let Some(w) = w {
                    w.wake();
                }
            }
            Life::Ignored(data) => {
                drop(ops);
                self.recycle_cqe_buffer(flags);
                data.ignored_completion(res);
                self.maybe_free(idx);
            }
            Life::Free | Life::Completed { .. } | Life::Done | Life::Multi { .. } => {
                panic!("io_uring completion for op slot {idx} that is not in flight")
            }
        }
    }

    fn maybe_free(&self, idx: usize) {
        let mut ops = self.ops.borrow_mut();
        let Some(slot) = ops.slots.get_mut(idx) else {
            return;
        };
        if matches!(slot.life, Life::Done) && !slot.cancel_pending {
            slot.life = Life::Free;
            ops.free.push(idx as u32);
            ops.in_use -= 1;
            drop(ops);
            self.wake_slot_waiter();
        }
    }

    fn wake_slot_waiter(&self) {
        let w = self.slot_waiters.borrow_mut().pop_front();
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Takes a slot and queues the op's SQE; `None` (waker registered) at the in-flight bound.
    fn start(&self, data: &mut dyn OpData, cx: &mut Context<'_>) -> Option<u32> {
        self.start_as(data, cx, false)
    }

    /// Like `start`, for a multishot op: its CQEs queue in the slot until the final one.
    pub(crate) fn start_multi(&self, data: &mut dyn OpData, cx: &mut Context<'_>) -> Option<u32> {
        self.start_as(data, cx, true)
    }

    fn start_as(&self, data: &mut dyn OpData, cx: &mut Context<'_>, multi: bool) -> Option<u32> {
        let mut ops = self.ops.borrow_mut();
        if ops.in_use >= ops.max {
            drop(ops);
            self.slot_waiters.borrow_mut().push_back(cx.waker().clone());
            return None;
        }
        let idx = match ops.free.pop() {
            Some(i) => i,
            None => {
                ops.slots.push(Slot {
                    life: Life::Free,
                    cancel_pending: false,
                });
                (ops.slots.len() - 1) as u32
            }
        };
        ops.in_use += 1;
        ops.slots[idx as usize].life = match multi {
            false => Life::Waiting(Some(cx.waker().clone())),
            true => Life::Multi {
                cqes: VecDeque::new(),
                waker: Some(cx.waker().clone()),
            },
        };
        drop(ops);
        let entry = data.entry().user_data(u64::from(idx));
        if data.lazy() && self.lazy_on {
            // SAFETY: as below; the NOP points at nothing.
            unsafe { self.push_lazy(&entry) };
            return Some(idx);
        }
        // SAFETY: the entry points into `data`'s heap memory, which the Op future keeps until
        // the completion is picked up, or hands to the slab (Life::Ignored) when dropped.
        unsafe { self.push(&entry) };
        Some(idx)
    }

    fn poll_op(&self, idx: u32, cx: &mut Context<'_>) -> Poll<(i32, u32)> {
        let mut ops = self.ops.borrow_mut();
        let slot = &mut ops.slots[idx as usize];
        match &mut slot.life {
            Life::Completed { res, flags } => {
                let out = (*res, *flags);
                slot.life = Life::Done;
                drop(ops);
                self.maybe_free(idx as usize);
                Poll::Ready(out)
            }
            Life::Waiting(w) => {
                match w {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *w = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            _ => panic!("op slot {idx} polled in a wrong state"),
        }
    }

    /// The next CQE of multishot op `idx`, in order. After the final one (no `F_MORE`) the
    /// slot is released and `idx` must not be used again.
    pub(crate) fn poll_multi(&self, idx: u32, cx: &mut Context<'_>) -> Poll<(i32, u32)> {
        let mut ops = self.ops.borrow_mut();
        let slot = &mut ops.slots[idx as usize];
        let Life::Multi { cqes, waker } = &mut slot.life else {
            panic!("multishot op slot {idx} polled in a wrong state")
        };
        match cqes.pop_front() {
            Some((res, flags)) => {
                if !cqueue::more(flags) {
                    slot.life = Life::Done;
                    drop(ops);
                    self.maybe_free(idx as usize);
                }
                Poll::Ready((res, flags))
            }
            None => {
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }

    /// Asks the kernel to end multishot op `idx` (its final CQE follows the data CQEs already
    /// posted). Idempotent.
    pub(crate) fn cancel_multi(&self, idx: u32) {
        let mut ops = self.ops.borrow_mut();
        let slot = &mut ops.slots[idx as usize];
        if slot.cancel_pending || !matches!(slot.life, Life::Multi { .. }) {
            return;
        }
        slot.cancel_pending = true;
        drop(ops);
        self.push_cancel(u64::from(idx));
    }

    /// The owner of multishot op `idx` is gone: give queued buffers back; unless the final CQE
    /// was seen, keep `data` until it arrives and ask the kernel to cancel.
    pub(crate) fn abandon_multi(&self, idx: u32, data: Box<dyn OpData>) {
        let mut ops = self.ops.borrow_mut();
        let slot = &mut ops.slots[idx as usize];
        let Life::Multi { cqes, .. } = std::mem::replace(&mut slot.life, Life::Done) else {
            panic!("multishot op slot {idx} abandoned in a wrong state")
        };
        let ended = cqes.back().is_some_and(|&(_, f)| !cqueue::more(f));
        if ended {
            drop(ops);
            drop(data);
        } else {
            slot.life = Life::Ignored(data);
            let cancel = !slot.cancel_pending;
            slot.cancel_pending = true;
            drop(ops);
            if cancel {
                self.push_cancel(u64::from(idx));
            }
            self.flush();
        }
        for &(_, flags) in &cqes {
            self.recycle_cqe_buffer(flags);
        }
        if ended {
            self.maybe_free(idx as usize);
        }
    }

    /// The future of op `idx` is gone: keep `data` until the CQE and ask the kernel to cancel.
    fn abandon(&self, idx: u32, data: Box<dyn OpData>) {
        let mut ops = self.ops.borrow_mut();
        let slot = &mut ops.slots[idx as usize];
        match slot.life {
            Life::Waiting(_) => {
                slot.life = Life::Ignored(data);
                slot.cancel_pending = true;
                drop(ops);
                self.push_cancel(u64::from(idx));
                // Hand the op to the kernel now: once its future is gone, the descriptor it
                // names may be closed (by any thread, for a shared `File`) and its number
                // reused; a submitted op holds the open file itself.
                self.flush();
            }
            Life::Completed { .. } => {
                slot.life = Life::Done;
                drop(ops);
                drop(data);
                self.maybe_free(idx as usize);
            }
            _ => panic!("op slot {idx} abandoned in a wrong state"),
        }
    }

    fn push_cancel(&self, target: u64) {
        let e = opcode::AsyncCancel::new(target)
            .build()
            .user_data(target | CANCEL_BIT);
        // SAFETY: a cancel carries no buffer.
        unsafe { self.push(&e) };
    }

    /// Cancels every op still in flight and waits (bounded) for their completions. Data of ops
    /// whose completion never came is leaked rather than freed under the kernel's feet.
    fn quiesce(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let targets: Vec<u64> = {
            let mut ops = self.ops.borrow_mut();
            let mut t = Vec::new();
            for (i, s) in ops.slots.iter_mut().enumerate() {
                let live = matches!(
                    s.life,
                    Life::Waiting(_) | Life::Ignored(_) | Life::Multi { .. }
                );
                if live && !s.cancel_pending {
                    s.cancel_pending = true;
                    t.push(i as u64);
                }
            }
            t
        };
        for t in targets {
            self.push_cancel(t);
        }
        if self.eventfd_inflight.get() {
            self.push_cancel(EVENTFD_TOKEN);
        }
        while self.in_flight() > 0 || self.eventfd_inflight.get() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let ts = types::Timespec::from(deadline - now);
            let args = types::SubmitArgs::new().timespec(&ts);
            let r = self.ring.borrow().submitter().submit_with_args(1, &args);
            match r {
                Ok(_) => {}
                Err(e) if is_transient(&e) => {}
                Err(_) => break, // e.g. no EXT_ARG on an old kernel: leak instead of hanging
            }
            Self::drain_cq_into(&mut self.ring.borrow_mut(), &self.cqes);
            self.dispatch();
        }
        let mut ops = self.ops.borrow_mut();
        for s in &mut ops.slots {
            if let Life::Ignored(data) = std::mem::replace(&mut s.life, Life::Done) {
                std::mem::forget(data); // the kernel may still write into it
            }
        }
        if ops.in_use > 0 {
            // A receive may still pick and fill a provided buffer: keep their memory forever.
            if let Bufs::Ready(r) = &*self.bufs.borrow() {
                std::mem::forget(r.clone());
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.quiesce(QUIESCE_TIMEOUT);
        if !self.eventfd_inflight.get() {
            // SAFETY: allocated by Box::into_raw in `new`; no read is in flight any more.
            drop(unsafe { Box::from_raw(self.eventfd_buf) });
        }
        // Wakers of futures still waiting for a slot are dropped here, on the loop thread.
    }
}

/// An io_uring operation as a future: starts on first poll, resolves to
/// `(result, cqe flags, data)`. Dropping it before completion cancels the op and leaves `data`
/// in the loop's slab until the completion arrives.
///
/// `Op` is `!Send`: its slot index is only meaningful in the ring of the thread that started it.
pub(crate) struct Op<T: OpData + Unpin> {
    data: Option<T>,
    idx: Option<u32>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl<T: OpData + Unpin> Op<T> {
    pub(crate) fn new(data: T) -> Op<T> {
        Op {
            data: Some(data),
            idx: None,
            _not_send: std::marker::PhantomData,
        }
    }
}

impl<T: OpData + Unpin> Future for Op<T> {
    type Output = (i32, u32, T);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let local = crate::executor::local().expect("ring I/O polled off a loop thread");
        let d = local.io.uring();
        let idx = match this.idx {
            Some(i) => i,
            None => {
                let data = this.data.as_mut().expect("ring Op polled after completion");
                match d.start(data, cx) {
                    Some(i) => {
                        this.idx = Some(i);
                        return Poll::Pending;
                    }
                    None => return Poll::Pending,
                }
            }
        };
        match d.poll_op(idx, cx) {
            Poll::Ready((res, flags)) => {
                this.idx = None;
                let data = this.data.take().expect("ring Op completed twice");
                Poll::Ready((res, flags, data))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: OpData + Unpin> Drop for Op<T> {
    fn drop(&mut self) {
        let (Some(idx), Some(data)) = (self.idx.take(), self.data.take()) else {
            return;
        };
        match crate::executor::local() {
            Some(local) => local.io.uring().abandon(idx, Box::new(data)),
            // Off the loop (should not happen): the kernel may still use the buffer.
            None => std::mem::forget(data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::rc::Rc;
    use std::sync::mpsc;

    /// Records the order of completion and drop of an abandoned op's data.
    struct Probe {
        fd: RawFd,
        buf: Vec<u8>,
        log: Rc<RefCell<Vec<&'static str>>>,
    }

    impl OpData for Probe {
        fn entry(&mut self) -> squeue::Entry {
            opcode::Recv::new(types::Fd(self.fd), self.buf.as_mut_ptr(), 16).build()
        }
        fn ignored_completion(self: Box<Self>, _res: i32) {
            self.log.borrow_mut().push("completed");
        }
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            self.log.borrow_mut().push("dropped");
        }
    }

    fn runtime() -> Option<crate::Runtime> {
        if let Err(e) = crate::probe_io_uring() {
            eprintln!("skipping: {e}");
            return None;
        }
        let cfg = crate::Config {
            loops: 1,
            pin: false,
            ring_entries: 8,
            backend: Some(crate::BackendChoice::IoUring),
            ..Default::default()
        };
        Some(crate::Runtime::start(&cfg).unwrap())
    }

    #[test]
    fn abandoned_op_data_lives_until_its_completion() {
        let Some(rt) = runtime() else { return };
        let (tx, rx) = mpsc::channel();
        rt.handles()[0].spawn(move || async move {
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            let log = Rc::new(RefCell::new(Vec::new()));
            let probe = Probe {
                fd: a.as_raw_fd(),
                buf: Vec::with_capacity(16),
                log: log.clone(),
            };
            let mut op = Box::pin(Op::new(probe));
            std::future::poll_fn(|cx| {
                assert!(op.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            crate::yield_now().await; // the recv is in the kernel now
            let d = crate::executor::local().unwrap();
            assert_eq!(d.io.uring().in_flight(), 1);
            drop(op);
            assert!(
                log.borrow().is_empty(),
                "data parked in the slab, not dropped"
            );
            assert_eq!(
                d.io.uring().in_flight(),
                1,
                "slot held until the completion"
            );
            while d.io.uring().in_flight() > 0 {
                crate::sleep(Duration::from_millis(1)).await;
            }
            drop(b);
            tx.send(log.borrow().clone()).unwrap();
        });
        let log = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(log, vec!["completed", "dropped"]);
    }

    #[test]
    fn ring_setup_picks_a_mode() {
        match build_ring(8) {
            Ok((r, mode)) => {
                assert!(r.params().cq_entries() >= CQ_ENTRIES_MIN);
                eprintln!("ring mode: {mode:?}");
            }
            Err(e) => eprintln!("skipping: {e}"),
        }
    }
}

//! One sp connection on its loop: banner, handshake state machine, syscalls, copy requests.
//!
//! A connection is three kinds of task on the loop that accepted it: the reader (receives,
//! decodes and dispatches frames), the writer (`outbox::writer`), and one task per syscall in
//! flight. Nothing here is shared with other threads except the kernel and `server::Shared`.
//! The protocol decisions (NEW → RUNNING → DYING, in-flight counts, when to tear down) are
//! `machine::Machine`'s, which does no I/O; this file carries them out.

pub mod copies;
pub mod machine;
mod outbox;
mod usermem;

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use kernel::Proc;
use sp::{ErrorCode, Frame, HandshakeFork};

use crate::server::Shared;
use copies::Copies;
use machine::{Decision, Machine};
use outbox::Outbox;
pub use usermem::SessionMem;

/// Whether the reader goes on after a frame.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// One client connection.
pub struct Conn {
    id: u64,
    loop_index: usize,
    shared: Arc<Shared>,
    stream: Rc<ring::Stream>,
    outbox: Rc<Outbox>,
    copies: Copies,
    /// Never borrowed across an await or a call back into `Conn`.
    machine: RefCell<Machine>,
    proc: RefCell<Option<Arc<Proc>>>,
    idle_waker: RefCell<Option<Waker>>,
    /// The connection's share of the kernel memory budget, given back when it goes.
    _charge: kernel::mem::Charge,
}

/// What a connection is charged to the memory budget: its state, decoder, copy table and
/// an outbox's worth of queued responses (the receive buffers are the loop's, not its own).
pub const CONN_CHARGE_BYTES: u64 = 16 << 10;

thread_local! {
    /// Live connections of this loop, for shutting them all down (halt with RB_HALT).
    static CONNS: RefCell<HashMap<u64, Weak<Conn>>> = RefCell::new(HashMap::new());
    /// The loop's spare heap slot for a syscall future (see `poll_in_spare_box`).
    static SPARE_CALL: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Makes a future with `make` in a heap slot, polls it once and spawns it if it must wait.
/// Most syscalls finish in that first poll; their slot is then kept as the loop's spare for
/// the next one (all syscall futures are of one type), so a syscall that never waits
/// allocates nothing.
fn poll_in_spare_box<F: Future<Output = ()> + 'static>(
    make: impl FnOnce() -> F,
    cx: &mut Context<'_>,
) {
    let spare = SPARE_CALL.with(|s| s.borrow_mut().take());
    let mut slot: Box<MaybeUninit<F>> = spare
        .and_then(|b| b.downcast().ok())
        .unwrap_or_else(Box::new_uninit);
    // The future is made straight into its slot (the call writes its result there): a syscall
    // future is several KiB, and building it on the stack first cost a memcpy of all of it.
    slot.write(make());
    // SAFETY: just written.
    let mut call: Pin<Box<F>> = Box::into_pin(unsafe { slot.assume_init() });
    if call.as_mut().poll(cx).is_pending() {
        ring::spawn_local(call);
        return;
    }
    // SAFETY: the finished future is dropped where it lies, never moved; the allocation, made
    // for an `F`, then holds nothing and becomes an uninitialised slot of the same layout.
    let slot: Box<MaybeUninit<F>> = unsafe {
        let raw = Box::into_raw(Pin::into_inner_unchecked(call));
        std::ptr::drop_in_place(raw);
        Box::from_raw(raw.cast::<MaybeUninit<F>>())
    };
    SPARE_CALL.with(|s| *s.borrow_mut() = Some(slot));
}

/// Serves one accepted socket on the current loop until it is closed.
pub fn serve(fd: OwnedFd, shared: Arc<Shared>, loop_index: usize) {
    let id = shared.next_conn_id();
    let stream = Rc::new(ring::Stream::from_fd(fd));
    let charge = kernel::mem::Charge::forced(shared.kernel.budget(), CONN_CHARGE_BYTES);
    let machine = match shared.limits.fast_path {
        true => Machine::with_fast_path(shared.limits.max_inflight_per_conn, fast_grant(&shared)),
        false => Machine::new(shared.limits.max_inflight_per_conn),
    };
    let outbox = Rc::new(Outbox::new(shared.limits.max_outbuf_bytes));
    let conn = Rc::new(Conn {
        id,
        loop_index,
        shared,
        stream: stream.clone(),
        outbox,
        copies: Copies::default(),
        machine: RefCell::new(machine),
        proc: RefCell::new(None),
        idle_waker: RefCell::new(None),
        _charge: charge,
    });
    CONNS.with(|c| c.borrow_mut().insert(id, Rc::downgrade(&conn)));
    ring::spawn_local(outbox::writer(conn.outbox.clone(), stream));
    ring::spawn_local(reader(conn));
}

/// What this server grants a fast-path client: every range the protocol allows, and as many
/// data bytes as fit in a frame with 8 argument slots and all those descriptors.
fn fast_grant(shared: &Shared) -> sp::fast::FastGrant {
    use sp::fast::*;
    let overhead = sp::HEADER_LEN
        + FAST_SYSCALL_FIXED_LEN
        + sp::MAX_SYSCALL_ARGS * sp::SYSCALL_ARG_SLOT
        + FAST_MAX_RANGES as usize * FAST_RANGE_DESC_LEN;
    let bytes = shared.limits.max_frame_len.saturating_sub(overhead);
    FastGrant {
        version: FAST_VERSION,
        max_ranges: FAST_MAX_RANGES,
        max_bytes: u32::try_from(bytes).unwrap_or(u32::MAX),
    }
}

/// Shuts down every connection of the current loop (their readers then see EOF).
pub fn shutdown_all_local() {
    let conns: Vec<Rc<Conn>> =
        CONNS.with(|c| c.borrow().values().filter_map(Weak::upgrade).collect());
    for c in conns {
        c.stream.shutdown();
    }
}

/// Which task of a connection a [`PanicGuard`] watches.
#[derive(Clone, Copy)]
enum Role {
    /// The reader, which also runs syscalls' first polls and handshakes inline.
    Reader,
    /// A syscall that became a task of its own.
    Syscall,
    /// An EXEC handshake waiting for the connection to become idle.
    Exec,
}

/// Ends the connection when a task of it unwinds: a panic in the reader or in a syscall task
/// must not leave its process, locks, pid, connection slot and host socket behind. The
/// executor catches the panic and drops the task; this guard's drop runs during the unwind
/// (and does nothing otherwise).
struct PanicGuard<'a> {
    conn: &'a Rc<Conn>,
    role: Role,
}

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        eprintln!(
            "rump_server: a task of connection {} panicked; the connection is closed",
            self.conn.id
        );
        // A live reader sees the shutdown as EOF and disconnects; a panicking one (also
        // when a syscall run inline in its poll unwinds through it) disconnects here.
        self.conn.stream.shutdown();
        match self.role {
            Role::Syscall => self.conn.syscall_done(),
            Role::Exec => self.conn.machine.borrow_mut().exec_done(),
            Role::Reader => {
                if !self.conn.machine.borrow().reader_done() {
                    self.conn.disconnect();
                }
            }
        }
    }
}

async fn reader(conn: Rc<Conn>) {
    let _guard = PanicGuard {
        conn: &conn,
        role: Role::Reader,
    };
    let banner = conn.shared.banner.as_bytes();
    conn.outbox.push(|out| out.extend_from_slice(banner));
    let mut decoder = sp::FrameDecoder::new(conn.shared.limits.max_frame_len);
    // One multishot receive: each chunk arrives in a buffer lent by the loop's buffer ring
    // (the connection owns none), is decoded straight from there (a partial frame is copied
    // into the decoder) and given back at once.
    let mut rx = conn.stream.recv_multi();
    'recv: loop {
        let buf = match rx.next().await {
            Ok(Some(b)) => b,
            Ok(None) | Err(_) => break,
        };
        let flow = feed(&conn, &mut decoder, &buf).await;
        drop(buf);
        if flow == Flow::Stop {
            break;
        }
        // A client that sends without reading its responses must not grow the outbox without
        // bound: stop receiving (TCP/unix back-pressure reaches the client) until it drains.
        // What the kernel had already received is handled first; that is bounded by the
        // loop's buffer ring.
        if !conn.outbox.has_space() {
            for b in rx.pause().await {
                if feed(&conn, &mut decoder, &b).await == Flow::Stop {
                    break 'recv;
                }
            }
            conn.outbox.wait_space().await;
        }
    }
    drop(rx);
    conn.disconnect();
}

/// Decodes and handles every whole frame in `input`, keeping a partial one in the decoder.
async fn feed(conn: &Rc<Conn>, decoder: &mut sp::FrameDecoder, mut input: &[u8]) -> Flow {
    loop {
        match decoder.next(&mut input) {
            Ok(Some(frame)) => {
                // Frames are handled inside the reader's own poll, so that a syscall can run
                // inline on the reader's context (see `start_syscall`).
                let flow = poll_fn(|cx| Poll::Ready(conn.handle_frame(&frame, cx))).await;
                if flow == Flow::Stop {
                    return Flow::Stop;
                }
            }
            Ok(None) => return Flow::Continue,
            Err(_) => return Flow::Stop, // len < 24 or over the limit: drop the connection
        }
    }
}

impl Conn {
    fn handle_frame(self: &Rc<Self>, frame: &Frame<'_>, cx: &mut Context<'_>) -> Flow {
        let h = frame.header;
        let decision = self.machine.borrow_mut().on_frame(&h, frame.payload);
        match decision {
            Decision::Deliver => {
                self.copies.deliver(h.reqno, frame.payload);
                Flow::Continue
            }
            Decision::Error(code) => {
                self.send_error(h.reqno, code);
                Flow::Continue
            }
            Decision::Fail(code) => self.fail(h.reqno, code),
            Decision::Guest(name) => match self.shared.kernel.spawn_guest(name) {
                Ok(p) => {
                    self.start_running(p);
                    self.answer_handshake(h.reqno, self.machine.borrow().fast_answer());
                    Flow::Continue
                }
                Err(_) => self.close(),
            },
            Decision::Fork(hf) => self.handle_fork(h.reqno, hf),
            Decision::Syscall { nr, args, prefetch } => {
                let kept = self.keep_prefetch(prefetch);
                self.start_syscall(cx, h.reqno, nr, args, kept);
                Flow::Continue
            }
            Decision::Prefork => {
                self.handle_prefork(h.reqno);
                Flow::Continue
            }
            Decision::Exec(name) => {
                let fast = self.machine.borrow().fast_answer();
                ring::spawn_local(run_exec(self.clone(), h.reqno, name.to_vec(), fast));
                Flow::Continue
            }
            Decision::Stop => Flow::Stop,
        }
    }

    fn handle_fork(self: &Rc<Self>, reqno: u64, hf: HandshakeFork) -> Flow {
        let Some(prepared) = self.shared.forks.take(&hf.cookie) else {
            return self.fail(reqno, ErrorCode::INVALID_PREFORK);
        };
        if hf.cancel != 0 {
            self.exit_process(&prepared);
            return self.close();
        }
        let comm = prepared.comm();
        match self.shared.kernel.adopt_fork(prepared, &comm) {
            Ok(p) => {
                self.start_running(p);
                self.answer_handshake(reqno, self.machine.borrow().fast_answer());
                Flow::Continue
            }
            Err(_) => self.fail(reqno, ErrorCode::RFORK_FAILED),
        }
    }

    /// A successful handshake's answer: the fast-path grant if it asked for one, else the
    /// plain 4-byte error 0 (byte for byte what NetBSD's server sends).
    fn answer_handshake(&self, reqno: u64, fast: Option<sp::fast::FastGrant>) {
        match fast {
            Some(g) => self
                .outbox
                .push(|o| sp::fast::encode_fast_handshake_resp(o, reqno, &g)),
            None => self.outbox.push(|o| sp::encode_handshake_resp(o, reqno, 0)),
        };
    }

    /// Copies a SYSCALL_FAST's prefetched memory out of the receive buffer for the syscall.
    /// Beyond [`PREFETCH_FREE_BYTES`] it is charged to the kernel's memory budget like any
    /// buffer the kernel keeps; under memory pressure the prefetch is dropped and the kernel
    /// asks the client as in plain sp. Smaller ones are held as a COPYINSTR answer is, bounded
    /// by the in-flight limit, without touching the shared budget's counter.
    fn keep_prefetch(&self, pf: sp::fast::PrefetchRef<'_>) -> Option<Kept> {
        if pf.is_empty() {
            return None;
        }
        let bytes = pf.as_bytes();
        let charge = match bytes.len() > PREFETCH_FREE_BYTES {
            true => Some(
                kernel::mem::Charge::try_new(self.shared.kernel.budget(), bytes.len() as u64)
                    .ok()?,
            ),
            false => None,
        };
        // One range (a path, a write's data: the common case) is kept as its data alone, so
        // that the copy it answers can take the buffer itself (see `SessionMem::prefetched`).
        let mut ranges = pf.ranges();
        let (bytes, single) = match (ranges.next(), ranges.next()) {
            (Some((addr, data)), None) => (data, Some(addr)),
            _ => (bytes, None),
        };
        Some(Kept {
            bytes: self.copies.buffer_with(bytes),
            n: pf.len(),
            single,
            _charge: charge,
        })
    }

    fn start_running(&self, p: Arc<Proc>) {
        *self.proc.borrow_mut() = Some(p);
        self.machine.borrow_mut().running();
    }

    /// Runs a syscall until it first waits, on the reader's context; only a syscall that
    /// waits (for client memory, a pipe, a lock) becomes a task of its own. Most calls
    /// (getpid, descriptor calls) are answered here without a task switch. The spawned task
    /// is polled again by the executor right away, which moves every waker registration to
    /// it; a wake that reaches the reader in between is only a spurious poll.
    fn start_syscall(
        self: &Rc<Self>,
        cx: &mut Context<'_>,
        reqno: u64,
        nr: u32,
        args: [u64; 8],
        kept: Option<Kept>,
    ) {
        let conn = self.clone();
        poll_in_spare_box(move || run_syscall(conn, reqno, nr, args, kept), cx);
    }

    fn handle_prefork(&self, reqno: u64) {
        let Some(parent) = self.proc.borrow().clone() else {
            return;
        };
        if !self.shared.forks.has_room(self.id) {
            self.send_error(reqno, ErrorCode::NOMEM);
            return;
        }
        match self.shared.kernel.prefork(&parent) {
            Ok(child) => {
                let cookie = self.shared.forks.insert(self.id, child);
                self.outbox
                    .push(|o| sp::encode_prefork_resp(o, reqno, &cookie));
            }
            Err(_) => self.send_error(reqno, ErrorCode::RFORK_FAILED),
        }
    }

    fn send_error(&self, reqno: u64, code: ErrorCode) {
        self.outbox.push(|o| sp::encode_error(o, reqno, code));
    }

    /// ERROR frame, then shut the connection down once it is sent.
    fn fail(&self, reqno: u64, code: ErrorCode) -> Flow {
        self.send_error(reqno, code);
        self.close()
    }

    fn close(&self) -> Flow {
        self.outbox.close_after_flush();
        Flow::Stop
    }

    /// The reader is done: fail pending copies, orphan this connection's fork cookies, and
    /// end the process once no syscall of it is running.
    fn disconnect(self: &Rc<Self>) {
        self.machine.borrow_mut().disconnect();
        self.outbox.kill_unless_closing();
        self.copies.fail_all();
        // Syscalls of this process sleeping in the kernel (pipe reads, lock waits) end with
        // EINTR, so the process can be torn down (sp-protocol.md §12 step 3).
        if let Some(p) = self.proc.borrow().as_ref() {
            self.shared.kernel.begin_exit(p);
        }
        for p in self.shared.forks.orphan_owner(self.id) {
            self.exit_process(&p);
        }
        self.maybe_finish();
    }

    /// Ends process `p` and then, on this loop, runs the file systems' last-close work of
    /// the files it held (an etfs block device written back, as NetBSD when a client
    /// disconnects holding it open).
    fn exit_process(&self, p: &Arc<kernel::Proc>) {
        self.shared.kernel.exit_process(p);
        let k = self.shared.kernel.clone();
        ring::spawn_local(async move { k.run_closes().await });
    }

    fn syscall_done(&self) {
        let idle = self.machine.borrow_mut().syscall_done();
        if idle {
            if let Some(w) = self.idle_waker.borrow_mut().take() {
                w.wake();
            }
            self.maybe_finish();
        }
    }

    fn maybe_finish(&self) {
        if !self.machine.borrow_mut().take_finish() {
            return;
        }
        if let Some(p) = self.proc.borrow_mut().take() {
            self.exit_process(&p);
        }
        CONNS.with(|c| c.borrow_mut().remove(&self.id));
        self.shared.connection_closed(self.loop_index);
    }

    async fn wait_idle(&self) {
        std::future::poll_fn(|cx| {
            if self.machine.borrow().idle() {
                std::task::Poll::Ready(())
            } else {
                *self.idle_waker.borrow_mut() = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        })
        .await
    }
}

/// A SYSCALL_FAST's prefetched client memory, kept for the syscall (sp::fast layout:
/// `n` descriptors, then the data; a single range as its data alone).
pub struct Kept {
    bytes: Vec<u8>,
    n: usize,
    /// One range, at this address: `bytes` holds its data only (no descriptor).
    single: Option<u64>,
    _charge: Option<kernel::mem::Charge>,
}

/// Prefetches up to this size (descriptors and data: a path, a small structure) are not
/// charged to the budget; what they cost is bounded like a copy answer's (docs/sp-fastpath.md
/// §2.2).
const PREFETCH_FREE_BYTES: usize = 2048;

async fn run_syscall(conn: Rc<Conn>, reqno: u64, sysnum: u32, args: [u64; 8], kept: Option<Kept>) {
    let guard = PanicGuard {
        conn: &conn,
        role: Role::Syscall,
    };
    crate::fault::maybe_panic(sysnum).await;
    let proc = conn.proc.borrow().clone();
    if let Some(proc) = proc {
        let mem = SessionMem::new(conn.clone(), kept);
        let outcome = conn.shared.kernel.syscall(&proc, &mem, sysnum, &args).await;
        let (error, retval) = match outcome.result {
            Ok(rv) => (0, rv),
            Err(e) => (i32::from(e.raw()), [0, 0]),
        };
        let pos = conn
            .outbox
            .push(|o| sp::encode_syscall_resp(o, reqno, error, retval));
        if let Some(howto) = outcome.halt {
            // The caller hears of its successful reboot before the server goes away.
            conn.outbox.wait_sent(pos).await;
            conn.shared.request_halt(howto);
        }
    }
    drop(guard);
    conn.syscall_done();
}

async fn run_exec(conn: Rc<Conn>, reqno: u64, name: Vec<u8>, fast: Option<sp::fast::FastGrant>) {
    let _guard = PanicGuard {
        conn: &conn,
        role: Role::Exec,
    };
    conn.wait_idle().await;
    let proc = conn.proc.borrow().clone();
    let gone = conn.machine.borrow().reader_done();
    if let (Some(p), false) = (proc, gone) {
        conn.shared.kernel.exec(&p, &name);
        conn.answer_handshake(reqno, fast);
    }
    conn.machine.borrow_mut().exec_done();
}

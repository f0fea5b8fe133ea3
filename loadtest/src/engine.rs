//! The load engine: each thread drives its share of the connections, several operations in
//! flight per connection, with epoll (or plain blocking I/O when it owns one connection).
//!
//! Per request nothing is allocated: requests are encoded into the connection's reused output
//! buffer, responses are decoded in place from the thread's receive buffer, copy requests are
//! answered from shared read-only buffers, and latencies go into a per-thread histogram.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use sp::{Class, ErrorCode, MsgType};

use crate::conn::{syscall_failure, Conn, Fatal};
use crate::workload::{self, BlockCfg, Kind, Mix, Next, OpState, Rng, KINDS};

/// Reqno of slot 0; slot `i` uses `SLOT_REQNO + i` for each of its calls in turn.
const SLOT_REQNO: u64 = 1 << 32;
/// Receive buffer per thread.
const RBUF_LEN: usize = 256 << 10;
/// How long a stopping thread waits for calls still in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Run-wide state shared by the threads and the reporter.
pub struct Shared {
    /// Set when the measured interval is over (or on a fatal error).
    pub stop: AtomicBool,
    /// Ops counted from here on (after the warm-up).
    pub record_start: Instant,
    /// Completed ops per thread, for the live progress line.
    pub progress: Vec<PaddedCounter>,
    /// The first fatal error.
    pub fatal: Mutex<Option<Fatal>>,
}

/// A counter on its own cache line.
#[repr(align(64))]
#[derive(Default)]
pub struct PaddedCounter(pub AtomicU64);

impl Shared {
    /// Records a fatal error and stops everybody.
    pub fn fail(&self, e: Fatal) {
        let mut f = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(e);
        }
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What the workload does.
pub struct Plan {
    pub mix: Mix,
    pub inflight: usize,
    pub block: BlockCfg,
}

/// What one thread measured.
pub struct ThreadResult {
    pub hist: Histogram<u64>,
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub per_kind: [u64; KINDS.len()],
}

#[derive(Clone, Copy)]
struct Slot {
    op: OpState,
    call: workload::Call,
    start: Instant,
    seq: u64,
    rng: Rng,
    active: bool,
}

struct Run {
    conn: Conn,
    slots: Vec<Slot>,
    active: usize,
    /// EPOLLOUT is registered.
    want_out: bool,
}

struct Ctx<'a> {
    plan: &'a Plan,
    shared: &'a Shared,
    res: ThreadResult,
    stopping: bool,
    progress: &'a AtomicU64,
}

fn kind_index(k: Kind) -> usize {
    KINDS.iter().position(|&x| x == k).unwrap_or(0)
}

impl Ctx<'_> {
    fn start_op(&mut self, r: &mut Run, i: usize) {
        let s = &mut r.slots[i];
        let kind = self.plan.mix.pick(s.rng.next());
        let rnd = s.rng.next();
        let write = kind == Kind::Block && (rnd % 100) < u64::from(self.plan.block.write_pct);
        s.op = OpState {
            kind,
            step: 0,
            fd: -1,
            off: workload::offset(kind, s.seq, rnd >> 8, &self.plan.block),
            write,
        };
        s.seq += 1;
        s.call = workload::first(&s.op, &r.conn.st.fds, i, &self.plan.block);
        s.start = Instant::now();
        s.active = true;
        r.active += 1;
        r.conn.st.push_call(SLOT_REQNO + i as u64, &s.call);
    }

    fn op_done(&mut self, r: &mut Run, i: usize, ok: bool) {
        let s = &mut r.slots[i];
        s.active = false;
        r.active -= 1;
        if self.stopping || self.shared.stop.load(Ordering::Relaxed) {
            self.stopping = true;
            return;
        }
        if s.start >= self.shared.record_start {
            if ok {
                let ns = s.start.elapsed().as_nanos() as u64;
                self.res.hist.saturating_record(ns.max(1));
                self.res.ops += 1;
                self.res.per_kind[kind_index(s.op.kind)] += 1;
                self.progress.store(self.res.ops, Ordering::Relaxed);
            } else {
                self.res.errors += 1;
            }
        }
        self.start_op(r, i);
    }

    fn on_response(&mut self, r: &mut Run, i: usize, error: i32, rv: i64) -> Result<(), Fatal> {
        let s = &mut r.slots[i];
        if error != 0 {
            if error == crate::nb::ENOSYS {
                let what = format!("workload {}", s.op.kind.name());
                return Err(syscall_failure(&what, s.call.nr, error));
            }
            if self.res.first_error.is_none() {
                let what = format!("workload {}", s.op.kind.name());
                self.res.first_error = Some(syscall_failure(&what, s.call.nr, error));
            }
            self.op_done(r, i, false);
            return Ok(());
        }
        match workload::next(&mut s.op, rv, i, &r.conn.st.fds) {
            Next::Call(c) => {
                s.call = c;
                r.conn.st.push_call(SLOT_REQNO + i as u64, &c);
            }
            Next::Done => self.op_done(r, i, true),
        }
        Ok(())
    }

    /// Handles every complete frame in `input`.
    fn process(&mut self, r: &mut Run, mut input: &[u8]) -> Result<(), Fatal> {
        loop {
            let f = match r.conn.dec.next(&mut input) {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(e) => return Err(format!("framing lost: {e:?}")),
            };
            let h = f.header;
            match h.class {
                Class::RESP if h.typ == MsgType::SYSCALL => {
                    let i = h.reqno.wrapping_sub(SLOT_REQNO) as usize;
                    if i >= r.slots.len() || !r.slots[i].active {
                        return Err(format!("response for unknown reqno {}", h.reqno));
                    }
                    let rs = sp::parse_syscall_resp(f.payload).ok_or("short syscall response")?;
                    self.on_response(r, i, rs.error, rs.retval[0])?;
                }
                Class::REQ => r.conn.st.serve_request(&f)?,
                Class::ERROR if ErrorCode(h.u) == ErrorCode::TRYAGAIN => {
                    let i = h.reqno.wrapping_sub(SLOT_REQNO) as usize;
                    let c = r.slots.get(i).ok_or("TRYAGAIN for an unknown reqno")?.call;
                    r.conn.st.push_call(h.reqno, &c);
                }
                _ => return Err(format!("unexpected frame from the server: {h:?}")),
            }
        }
    }
}

/// Sends what is queued without blocking; true when everything went out.
fn flush(r: &mut Run) -> Result<bool, Fatal> {
    let st = &mut r.conn.st;
    while st.out_off < st.out.len() {
        match r.conn.sock.write(&st.out[st.out_off..]) {
            Ok(n) => st.out_off += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("send: {e}")),
        }
    }
    st.out.clear();
    st.out_off = 0;
    Ok(true)
}

/// Reads what is available (one read unless the buffer filled) and handles it. `Ok(false)`
/// when nothing was there.
fn pump(ctx: &mut Ctx<'_>, r: &mut Run, rbuf: &mut [u8]) -> Result<bool, Fatal> {
    let mut got = false;
    loop {
        match r.conn.sock.read(rbuf) {
            Ok(0) => return Err("the server closed a connection".into()),
            Ok(n) => {
                got = true;
                ctx.process(r, &rbuf[..n])?;
                if n < rbuf.len() {
                    return Ok(got);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(got),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(got),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("receive: {e}")),
        }
    }
}

/// Drives `conns` until the shared stop flag, then waits (bounded) for calls in flight.
/// Returns the connections open: the caller closes them only once every thread has drained,
/// so no server sees a client go away while other clients' calls are still in flight
/// (NetBSD's rump_server can deadlock then: docs/benchmarks.md).
pub fn run_thread(
    conns: Vec<Conn>,
    plan: &Plan,
    shared: &Shared,
    thread: usize,
    seed: u64,
) -> (ThreadResult, Vec<Conn>) {
    let mut ctx = Ctx {
        plan,
        shared,
        res: ThreadResult {
            hist: Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("histogram bounds"),
            ops: 0,
            errors: 0,
            first_error: None,
            per_kind: [0; KINDS.len()],
        },
        stopping: false,
        progress: &shared.progress[thread].0,
    };
    let mut runs: Vec<Run> = conns
        .into_iter()
        .enumerate()
        .map(|(ci, conn)| Run {
            conn,
            slots: (0..plan.inflight)
                .map(|si| Slot {
                    op: OpState {
                        kind: Kind::Getpid,
                        step: 0,
                        fd: -1,
                        off: 0,
                        write: false,
                    },
                    call: workload::first(
                        &OpState {
                            kind: Kind::Getpid,
                            step: 0,
                            fd: -1,
                            off: 0,
                            write: false,
                        },
                        &workload::Fds::NONE,
                        0,
                        &plan.block,
                    ),
                    start: Instant::now(),
                    seq: 0,
                    rng: Rng::new(seed ^ ((ci as u64) << 20) ^ si as u64),
                    active: false,
                })
                .collect(),
            active: 0,
            want_out: false,
        })
        .collect();
    let mut rbuf = vec![0u8; RBUF_LEN];
    let r = match runs.len() {
        1 => drive_blocking(&mut ctx, &mut runs[0], &mut rbuf),
        _ => drive_epoll(&mut ctx, &mut runs, &mut rbuf),
    };
    if let Err(e) = r {
        shared.fail(e);
    }
    (ctx.res, runs.into_iter().map(|r| r.conn).collect())
}

fn start_all(ctx: &mut Ctx<'_>, r: &mut Run) {
    for i in 0..r.slots.len() {
        ctx.start_op(r, i);
    }
}

/// One connection: blocking sends, receives with a 100 ms timeout to notice the stop flag.
fn drive_blocking(ctx: &mut Ctx<'_>, r: &mut Run, rbuf: &mut [u8]) -> Result<(), Fatal> {
    let sock = &r.conn.sock;
    set_rcvtimeo(sock, Duration::from_millis(100)).map_err(|e| format!("SO_RCVTIMEO: {e}"))?;
    start_all(ctx, r);
    let mut drain_deadline = None;
    loop {
        r.conn.flush_blocking()?;
        pump(ctx, r, rbuf)?;
        if ctx.shared.stop.load(Ordering::Relaxed) {
            ctx.stopping = true;
            let d = *drain_deadline.get_or_insert_with(|| Instant::now() + DRAIN_TIMEOUT);
            if r.active == 0 || Instant::now() >= d {
                return Ok(());
            }
        }
    }
}

fn set_rcvtimeo(sock: &std::fs::File, t: Duration) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let tv = libc::timeval {
        tv_sec: t.as_secs() as libc::time_t,
        tv_usec: t.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: setsockopt reads `tv` (a valid timeval of the size passed) during the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Many connections: non-blocking sockets, level-triggered epoll.
fn drive_epoll(ctx: &mut Ctx<'_>, runs: &mut [Run], rbuf: &mut [u8]) -> Result<(), Fatal> {
    let ep = crate::sys::Epoll::new().map_err(|e| format!("epoll_create1: {e}"))?;
    for (i, r) in runs.iter_mut().enumerate() {
        crate::sys::set_nonblocking(r.conn.fd()).map_err(|e| format!("O_NONBLOCK: {e}"))?;
        ep.add(r.conn.fd(), libc::EPOLLIN as u32, i as u64)
            .map_err(|e| format!("epoll_ctl: {e}"))?;
        start_all(ctx, r);
        service_out(&ep, r, i)?;
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 512];
    let mut drain_deadline = None;
    loop {
        let n = ep
            .wait(&mut events, 100)
            .map_err(|e| format!("epoll_wait: {e}"))?;
        for ev in &events[..n] {
            let i = ev.u64 as usize;
            let r = &mut runs[i];
            if ev.events & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
                pump(ctx, r, rbuf)?;
            }
            service_out(&ep, r, i)?;
        }
        if ctx.shared.stop.load(Ordering::Relaxed) {
            ctx.stopping = true;
            let d = *drain_deadline.get_or_insert_with(|| Instant::now() + DRAIN_TIMEOUT);
            if runs.iter().all(|r| r.active == 0) || Instant::now() >= d {
                return Ok(());
            }
        }
    }
}

/// Flushes a connection's output; (de)registers EPOLLOUT as needed.
fn service_out(ep: &crate::sys::Epoll, r: &mut Run, i: usize) -> Result<(), Fatal> {
    let done = flush(r)?;
    if done == r.want_out {
        r.want_out = !done;
        let ev = match done {
            true => libc::EPOLLIN,
            false => libc::EPOLLIN | libc::EPOLLOUT,
        } as u32;
        ep.modify(r.conn.fd(), ev, i as u64)
            .map_err(|e| format!("epoll_ctl: {e}"))?;
    }
    Ok(())
}

/// Shared stop flag helper for callers.
pub fn new_shared(threads: usize, record_start: Instant) -> Arc<Shared> {
    Arc::new(Shared {
        stop: AtomicBool::new(false),
        record_start,
        progress: (0..threads).map(|_| PaddedCounter::default()).collect(),
        fatal: Mutex::new(None),
    })
}

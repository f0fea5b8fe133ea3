//! The epoll backend of one loop, for hosts where io_uring cannot be set up: a readiness
//! reactor with the same behaviour behind the same public API.
//!
//! - Sockets are registered once, edge-triggered for reading and writing (`EPOLLET`), in a
//!   slab of sources keyed by index and generation (the epoll token). An event sets the
//!   source's ready bits and wakes the tasks waiting on that direction; an operation tries its
//!   non-blocking system call while the bit is set and clears it on `EAGAIN` (or on a short
//!   transfer, which means the socket buffer was drained — as tokio does). Hang-ups
//!   (`EPOLLRDHUP`, `EPOLLHUP`, `EPOLLERR`) are sticky: no further edge would report them.
//! - Cross-thread wakes arrive on the loop's eventfd, registered level-triggered.
//! - Timers live in an ordered map; the nearest deadline is the `epoll_wait` timeout
//!   (milliseconds, rounded up, so a sleep never ends early).
//! - `Stream::recv_multi` reads into a bounded per-loop pool of buffers (`pool.rs`), and only
//!   while the consumer asks for the next chunk: a stream that is not drained stops reading.
//! - `File` operations are plain `pread`/`pwrite`/`fsync` on the loop thread (host files are
//!   always "ready" for epoll): they block the loop for the duration of the call, like the
//!   server's console output. Fine for the fallback; io_uring remains the fast path.
//!
//! The io_uring invariants hold trivially here: the kernel touches a buffer only during the
//! system call that was given it, so nothing outlives a dropped future; there is no
//! completion queue to overflow (a waiting operation is one waker in its source's slot or one
//! timer entry, owned by its task).

pub(crate) mod io;
pub(crate) mod pool;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io as stdio;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::error::SetupError;
use pool::Pool;

/// The token of the loop's eventfd (no source has generation `u32::MAX` and index `u32::MAX`).
const EVENTFD_TOKEN: u64 = u64::MAX;
/// Events taken per `epoll_wait`; more simply wait for the next turn.
const EVENTS_MAX: usize = 1024;

/// Readiness bits of a source.
pub(crate) const READ: u8 = 1;
pub(crate) const WRITE: u8 = 2;
/// Sticky: the peer shut down its sending side (`EPOLLRDHUP`); reads return what is left,
/// then end of file.
const READ_CLOSED: u8 = 4;
/// Sticky: the socket hung up or failed (`EPOLLHUP`, `EPOLLERR`): both directions are final.
const CLOSED: u8 = 8;

/// A registered descriptor: index into the source slab and the slot's generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SourceKey {
    idx: u32,
    gen: u32,
}

impl SourceKey {
    fn token(self) -> u64 {
        (u64::from(self.gen) << 32) | u64::from(self.idx)
    }

    fn from_token(t: u64) -> SourceKey {
        SourceKey {
            idx: t as u32,
            gen: (t >> 32) as u32,
        }
    }
}

struct SourceSlot {
    gen: u32,
    live: bool,
    ready: u8,
    /// Tasks waiting to read (or accept), and to write; all are woken by an event.
    readers: Vec<Waker>,
    writers: Vec<Waker>,
}

#[derive(Default)]
struct Sources {
    slots: Vec<SourceSlot>,
    free: Vec<u32>,
}

impl Sources {
    fn get(&mut self, key: SourceKey) -> Option<&mut SourceSlot> {
        self.slots
            .get_mut(key.idx as usize)
            .filter(|s| s.live && s.gen == key.gen)
    }
}

/// One loop's epoll instance, sources, timers and receive pool. Used only on its loop thread.
pub(crate) struct Reactor {
    epfd: OwnedFd,
    eventfd: RawFd,
    sources: RefCell<Sources>,
    /// Pending sleeps by (deadline, sequence number); an entry gone means its timer fired.
    timers: RefCell<BTreeMap<(Instant, u64), Waker>>,
    timer_seq: Cell<u64>,
    events: RefCell<Vec<libc::epoll_event>>,
    /// Woken wakers, collected while the slab is borrowed and woken after.
    to_wake: RefCell<Vec<Waker>>,
    pool: RefCell<Option<Rc<Pool>>>,
}

fn check(r: i32) -> stdio::Result<i32> {
    match r {
        -1 => Err(stdio::Error::last_os_error()),
        r => Ok(r),
    }
}

impl Reactor {
    /// Creates the epoll instance and registers the loop's (non-blocking) eventfd on it.
    pub(crate) fn new(eventfd: RawFd) -> Result<Reactor, SetupError> {
        // SAFETY: plain system call, no pointers.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
            .map_err(SetupError::Epoll)?;
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let r = Reactor {
            epfd,
            eventfd,
            sources: RefCell::new(Sources::default()),
            timers: RefCell::new(BTreeMap::new()),
            timer_seq: Cell::new(0),
            events: RefCell::new(Vec::with_capacity(EVENTS_MAX)),
            to_wake: RefCell::new(Vec::new()),
            pool: RefCell::new(None),
        };
        r.ctl(
            libc::EPOLL_CTL_ADD,
            eventfd,
            libc::EPOLLIN as u32,
            EVENTFD_TOKEN,
        )
        .map_err(SetupError::Epoll)?;
        Ok(r)
    }

    fn ctl(&self, op: i32, fd: RawFd, events: u32, token: u64) -> stdio::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a live epoll_event for the duration of the call.
        check(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) }).map(drop)
    }

    /// The loop's receive buffer pool, created on first use.
    pub(crate) fn pool(&self) -> Rc<Pool> {
        self.pool
            .borrow_mut()
            .get_or_insert_with(|| Rc::new(Pool::new()))
            .clone()
    }

    /// Registers `fd` for edge-triggered read and write readiness. It starts out assumed ready
    /// both ways (the first operation tries its system call).
    pub(crate) fn register(&self, fd: RawFd) -> stdio::Result<SourceKey> {
        let key = {
            let mut s = self.sources.borrow_mut();
            let idx = match s.free.pop() {
                Some(i) => i,
                None => {
                    s.slots.push(SourceSlot {
                        gen: 0,
                        live: false,
                        ready: 0,
                        readers: Vec::new(),
                        writers: Vec::new(),
                    });
                    (s.slots.len() - 1) as u32
                }
            };
            let slot = &mut s.slots[idx as usize];
            slot.live = true;
            slot.ready = READ | WRITE;
            SourceKey { idx, gen: slot.gen }
        };
        let events = libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET;
        match self.ctl(libc::EPOLL_CTL_ADD, fd, events as u32, key.token()) {
            Ok(()) => Ok(key),
            Err(e) => {
                self.free_slot(key);
                Err(e)
            }
        }
    }

    /// Removes `fd` (registered as `key`) before it is closed; its wakers are dropped.
    pub(crate) fn deregister(&self, key: SourceKey, fd: RawFd) {
        // An error (the descriptor is already gone) does not matter: closing deregisters.
        let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0);
        self.free_slot(key);
    }

    fn free_slot(&self, key: SourceKey) {
        let (r, w) = {
            let mut s = self.sources.borrow_mut();
            let Some(slot) = s.get(key) else { return };
            slot.live = false;
            slot.gen = slot.gen.wrapping_add(1);
            if slot.gen == u32::MAX {
                slot.gen = 0; // keep clear of the eventfd's token
            }
            slot.ready = 0;
            let out = (
                std::mem::take(&mut slot.readers),
                std::mem::take(&mut slot.writers),
            );
            s.free.push(key.idx);
            out
        };
        drop((r, w)); // outside the borrow: dropping a waker may run arbitrary code
    }

    /// Ready when `dir` (`READ` or `WRITE`) is ready or closed; else registers the waker.
    pub(crate) fn poll_ready(&self, key: SourceKey, dir: u8, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.sources.borrow_mut();
        let Some(slot) = s.get(key) else {
            return Poll::Ready(()); // gone: the system call reports the error
        };
        let closed = match dir {
            READ => READ_CLOSED | CLOSED,
            _ => CLOSED,
        };
        if slot.ready & (dir | closed) != 0 {
            return Poll::Ready(());
        }
        let ws = match dir {
            READ => &mut slot.readers,
            _ => &mut slot.writers,
        };
        if !ws.iter().any(|w| w.will_wake(cx.waker())) {
            ws.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// The operation found `dir` not ready (`EAGAIN`, or a short transfer): wait for the next
    /// edge. Returns `false` when the source has hung up for good, so no edge will come and
    /// an operation that got `EAGAIN` must fail instead of waiting.
    pub(crate) fn clear_ready(&self, key: SourceKey, dir: u8) -> bool {
        let mut s = self.sources.borrow_mut();
        let Some(slot) = s.get(key) else { return false };
        slot.ready &= !dir;
        let closed = match dir {
            READ => READ_CLOSED | CLOSED,
            _ => CLOSED,
        };
        slot.ready & closed == 0
    }

    /// Starts a timer; `waker` is woken at `deadline`. Returns the timer's key.
    pub(crate) fn add_timer(&self, deadline: Instant, waker: &Waker) -> (Instant, u64) {
        let seq = self.timer_seq.get();
        self.timer_seq.set(seq.wrapping_add(1));
        self.timers
            .borrow_mut()
            .insert((deadline, seq), waker.clone());
        (deadline, seq)
    }

    /// Whether timer `key` is still pending (then its waker is updated to `waker`).
    pub(crate) fn timer_pending(&self, key: (Instant, u64), waker: &Waker) -> bool {
        match self.timers.borrow_mut().get_mut(&key) {
            Some(w) => {
                if !w.will_wake(waker) {
                    *w = waker.clone();
                }
                true
            }
            None => false,
        }
    }

    /// Cancels timer `key` (a sleep dropped before its deadline).
    pub(crate) fn cancel_timer(&self, key: (Instant, u64)) {
        let w = self.timers.borrow_mut().remove(&key);
        drop(w);
    }

    /// Milliseconds until the nearest timer, rounded up; -1 without timers.
    fn timeout_ms(&self) -> i32 {
        let Some(&(deadline, _)) = self.timers.borrow().keys().next() else {
            return -1;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_nanos().div_ceil(1_000_000);
        ms.min(i32::MAX as u128) as i32
    }

    /// One turn of the loop's I/O: waits for events (blocking up to the nearest timer when
    /// `block`, else not at all), sets ready bits, wakes their tasks and fires due timers.
    pub(crate) fn turn(&self, block: bool) {
        let timeout = if block { self.timeout_ms() } else { 0 };
        let mut events = self.events.borrow_mut();
        // SAFETY: the kernel writes at most `EVENTS_MAX` events into the vector's capacity.
        let n = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                events.as_mut_ptr(),
                EVENTS_MAX as i32,
                timeout,
            )
        };
        let n = match n {
            -1 => {
                let e = stdio::Error::last_os_error();
                assert_eq!(
                    e.raw_os_error(),
                    Some(libc::EINTR),
                    "epoll_wait failed: {e}"
                );
                0
            }
            n => n as usize,
        };
        // SAFETY: epoll_wait initialised the first `n` events (n <= EVENTS_MAX = capacity).
        unsafe { events.set_len(n) };
        let mut to_wake = std::mem::take(&mut *self.to_wake.borrow_mut());
        {
            let mut s = self.sources.borrow_mut();
            for ev in events.iter() {
                let (bits, token) = (ev.events, ev.u64);
                if token == EVENTFD_TOKEN {
                    self.reset_eventfd();
                    continue;
                }
                let Some(slot) = s.get(SourceKey::from_token(token)) else {
                    continue; // deregistered after the event was queued
                };
                let ready = ready_bits(bits);
                slot.ready |= ready;
                if ready & (READ | READ_CLOSED | CLOSED) != 0 {
                    to_wake.append(&mut slot.readers);
                }
                if ready & (WRITE | CLOSED) != 0 {
                    to_wake.append(&mut slot.writers);
                }
            }
        }
        events.clear();
        drop(events);
        self.due_timers(&mut to_wake);
        for w in to_wake.drain(..) {
            w.wake();
        }
        *self.to_wake.borrow_mut() = to_wake; // keep the allocation
    }

    fn due_timers(&self, out: &mut Vec<Waker>) {
        let mut timers = self.timers.borrow_mut();
        let Some(&(first, _)) = timers.keys().next() else {
            return;
        };
        let now = Instant::now();
        if first > now {
            return;
        }
        while let Some(e) = timers.first_entry() {
            if e.key().0 > now {
                break;
            }
            out.push(e.remove());
        }
    }

    fn reset_eventfd(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64; the eventfd is non-blocking, so a read that
        // finds the counter at zero fails with EAGAIN instead of blocking.
        unsafe { libc::read(self.eventfd, (&mut v as *mut u64).cast(), 8) };
    }

    /// Registered sources (for tests).
    #[cfg(test)]
    pub(crate) fn sources_live(&self) -> usize {
        self.sources
            .borrow()
            .slots
            .iter()
            .filter(|s| s.live)
            .count()
    }

    /// Pending timers (for tests).
    #[cfg(test)]
    pub(crate) fn timers_pending(&self) -> usize {
        self.timers.borrow().len()
    }
}

/// Readiness bits for an epoll event mask.
fn ready_bits(ev: u32) -> u8 {
    let has = |b: i32| ev & b as u32 != 0;
    let mut r = 0;
    if has(libc::EPOLLIN | libc::EPOLLPRI) {
        r |= READ;
    }
    if has(libc::EPOLLOUT) {
        r |= WRITE;
    }
    if has(libc::EPOLLRDHUP) {
        r |= READ_CLOSED;
    }
    if has(libc::EPOLLHUP | libc::EPOLLERR) {
        r |= CLOSED;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bufring::{BUF_COUNT, BUF_SIZE};
    use crate::{RecvBuf, Stream};
    use std::future::Future;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Runs `f` as a task on a one-loop epoll runtime and returns its result.
    fn on_epoll<R, F, Fut>(f: F) -> R
    where
        R: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
    {
        let cfg = crate::Config {
            loops: 1,
            pin: false,
            backend: Some(crate::BackendChoice::Epoll),
            ..Default::default()
        };
        let rt = crate::Runtime::start(&cfg).unwrap();
        assert_eq!(rt.handles()[0].backend(), crate::Backend::Epoll);
        let (tx, rx) = mpsc::channel();
        rt.handles()[0].spawn(move || async move {
            tx.send(f().await).unwrap();
        });
        rx.recv_timeout(Duration::from_secs(30)).unwrap()
    }

    fn with_local<R>(f: impl FnOnce(&Reactor) -> R) -> R {
        f(crate::executor::local().unwrap().io.epoll())
    }

    fn pattern(off: usize) -> u8 {
        (off % 251) as u8
    }

    fn writer(mut s: UnixStream, total: usize, chunk: usize) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let data: Vec<u8> = (0..total).map(pattern).collect();
            for c in data.chunks(chunk) {
                s.write_all(c).unwrap();
            }
        })
    }

    #[test]
    fn recv_multi_reads_everything_in_order_from_the_pool() {
        let (got, pool_out, allocated, sources) = on_epoll(|| async {
            let (a, b) = UnixStream::pair().unwrap();
            let w = writer(b, 3 << 20, 1000);
            let s = Stream::from_fd(a.into());
            let mut rs = s.recv_multi();
            let mut got = Vec::new();
            while let Some(b) = rs.next().await.unwrap() {
                assert!(b.len() <= BUF_SIZE as usize);
                got.extend_from_slice(&b);
            }
            assert!(rs.next().await.unwrap().is_none(), "EOF again");
            w.join().unwrap();
            let pool = with_local(|r| r.pool());
            drop(rs);
            drop(s);
            let sources = with_local(|r| r.sources_live());
            (got, pool.handed_out(), pool.allocated(), sources)
        });
        assert_eq!(got.len(), 3 << 20);
        assert!(got.iter().enumerate().all(|(i, &b)| b == pattern(i)));
        assert_eq!(pool_out, 0, "every buffer back in the pool");
        assert!(allocated <= 2, "one buffer in use at a time: {allocated}");
        assert_eq!(sources, 0, "the stream deregistered");
    }

    #[test]
    fn a_dry_pool_waits_for_a_buffer_and_memory_stays_bounded() {
        let (got, held_max, allocated, dry) = on_epoll(|| async {
            let (a, b) = UnixStream::pair().unwrap();
            let total = 8 << 20; // more than the pool holds
            let w = writer(b, total, 16 << 10);
            let s = Stream::from_fd(a.into());
            let mut rs = s.recv_multi();
            let pool = with_local(|r| r.pool());
            let mut held: Vec<RecvBuf> = Vec::new();
            let mut got = Vec::new();
            // Hold every buffer: the pool runs dry.
            while pool.handed_out() < usize::from(BUF_COUNT) {
                let b = rs.next().await.unwrap().expect("data before EOF");
                got.extend_from_slice(&b);
                held.push(b);
            }
            let held_max = held.len();
            // Let the writer refill the socket, so that the next receive is readable and waits
            // for a buffer (not for data: that was this test's flake on a busy machine).
            crate::sleep(Duration::from_millis(100)).await;
            // The next receive waits for a buffer; it gets one when we drop the first.
            {
                let mut f = Box::pin(rs.next());
                std::future::poll_fn(|cx| {
                    assert!(f.as_mut().poll(cx).is_pending(), "no buffer to read into");
                    Poll::Ready(())
                })
                .await;
            }
            crate::sleep(Duration::from_millis(20)).await;
            for b in held.drain(..) {
                drop(b);
            }
            while let Some(b) = rs.next().await.unwrap() {
                got.extend_from_slice(&b);
            }
            w.join().unwrap();
            (got, held_max, pool.allocated(), pool.dry_waits())
        });
        assert_eq!(held_max, usize::from(BUF_COUNT));
        assert_eq!(
            allocated,
            usize::from(BUF_COUNT),
            "never more than the pool's count"
        );
        assert!(dry >= 1);
        assert_eq!(got.len(), 8 << 20);
        assert!(got.iter().enumerate().all(|(i, &b)| b == pattern(i)));
    }

    #[test]
    fn an_undrained_stream_stops_reading() {
        let (in_pool, sent) = on_epoll(|| async {
            let (a, b) = UnixStream::pair().unwrap();
            b.set_nonblocking(true).unwrap();
            let s = Stream::from_fd(a.into());
            let mut rs = s.recv_multi();
            let mut b = b;
            let first = {
                b.write_all(b"hello").unwrap();
                rs.next().await.unwrap().unwrap().to_vec()
            };
            assert_eq!(first, b"hello");
            // The consumer stops calling `next`: the sender fills the socket and blocks.
            let mut sent = 0usize;
            let chunk = [7u8; 4096];
            loop {
                match b.write(&chunk) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
                crate::yield_now().await;
            }
            crate::sleep(Duration::from_millis(20)).await;
            let pool = with_local(|r| r.pool());
            // Nothing was read behind the consumer's back; all of it is still there.
            let mut rest = 0;
            b.set_nonblocking(false).unwrap();
            drop(b);
            while let Some(buf) = rs.next().await.unwrap() {
                rest += buf.len();
            }
            assert_eq!(rest, sent);
            (pool.allocated(), sent)
        });
        assert!(in_pool <= 1, "{in_pool}");
        assert!(sent > 0);
    }

    /// A task whose operations never wait (a socket that never runs dry, a host file) yields
    /// after its budget, so the loop's other tasks run meanwhile.
    #[test]
    fn a_task_that_never_waits_yields_to_the_others() {
        let (sock_order, file_order) = on_epoll(|| async {
            use std::cell::RefCell;
            let mut orders = Vec::new();
            for kind in ["socket", "file"] {
                let log = Rc::new(RefCell::new(Vec::new()));
                let (a, mut b) = UnixStream::pair().unwrap();
                b.write_all(&[1u8; 100_000]).unwrap();
                let path = std::env::temp_dir().join(format!("ring-coop-{}", std::process::id()));
                std::fs::write(&path, [2u8; 64]).unwrap();
                let file = crate::File::from_std(std::fs::File::open(&path).unwrap());
                let _ = std::fs::remove_file(&path);
                let s = Stream::from_fd(a.into());
                let l = log.clone();
                crate::spawn_local(async move {
                    for _ in 0..20_000 {
                        match kind {
                            "socket" => {
                                let (r, _) = s.recv(Vec::with_capacity(1)).await;
                                assert_eq!(r.unwrap(), 1);
                            }
                            _ => {
                                let (r, _) = file.read_at(Vec::with_capacity(1), 0).await;
                                assert_eq!(r.unwrap(), 1);
                            }
                        }
                    }
                    l.borrow_mut().push("busy done");
                });
                let l = log.clone();
                crate::spawn_local(async move { l.borrow_mut().push("other ran") });
                while log.borrow().len() < 2 {
                    crate::sleep(Duration::from_millis(1)).await;
                }
                orders.push(log.borrow().clone());
                drop(b);
            }
            (orders[0].clone(), orders[1].clone())
        });
        assert_eq!(sock_order, vec!["other ran", "busy done"]);
        assert_eq!(file_order, vec!["other ran", "busy done"]);
    }

    #[test]
    fn dropped_sleeps_and_streams_leave_nothing_registered() {
        let (timers, sources) = on_epoll(|| async {
            let (a, mut b) = UnixStream::pair().unwrap();
            let s = Stream::from_fd(a.into());
            for _ in 0..10 {
                let mut f = Box::pin(crate::sleep(Duration::from_secs(3600)));
                std::future::poll_fn(|cx| {
                    assert!(f.as_mut().poll(cx).is_pending());
                    Poll::Ready(())
                })
                .await;
            }
            {
                let mut f = Box::pin(s.recv(Vec::with_capacity(16)));
                std::future::poll_fn(|cx| {
                    assert!(f.as_mut().poll(cx).is_pending());
                    Poll::Ready(())
                })
                .await;
            }
            assert_eq!(with_local(|r| r.sources_live()), 1);
            b.write_all(b"x").unwrap();
            let (r, got) = s.recv(Vec::with_capacity(16)).await;
            assert_eq!((r.unwrap(), &got[..]), (1, &b"x"[..]));
            drop(s);
            let mut buf = [0u8; 1];
            assert_eq!(b.read(&mut buf).unwrap(), 0, "closed");
            with_local(|r| (r.timers_pending(), r.sources_live()))
        });
        assert_eq!((timers, sources), (0, 0));
    }
}

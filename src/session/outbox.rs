//! A connection's outbound byte queue and the writer task that drains it through the ring.
//!
//! Every frame for the client (responses, copy requests, errors) is encoded straight into one
//! buffer; the writer sends whatever has accumulated in one `send`, so responses of several
//! syscalls finished in the same loop tick go out coalesced. The queue is bounded: producers
//! that may queue a lot (COPYOUT) wait for space first.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// A send buffer larger than this is not kept for reuse.
const SPARE_KEEP_BYTES: usize = 256 << 10;

#[derive(Default)]
struct State {
    buf: Vec<u8>,
    spare: Vec<u8>,
    /// Total bytes ever queued / sent: positions in the connection's output stream.
    queued_total: u64,
    sent_total: u64,
    writer: Option<Waker>,
    flush_waiters: Vec<(u64, Waker)>,
    space_waiters: Vec<Waker>,
    /// Shut the socket down once everything queued is sent.
    close_after_flush: bool,
    /// The socket is unusable: drop queued bytes, fail waiters.
    dead: bool,
}

/// The outbound side of one connection.
pub struct Outbox {
    st: RefCell<State>,
    /// Bytes queued beyond which COPYOUT producers wait for the writer and the reader stops
    /// receiving (`Limits::max_outbuf_bytes`).
    high_water_bytes: usize,
}

impl Outbox {
    /// An empty queue with the given high-water mark.
    pub fn new(high_water_bytes: usize) -> Outbox {
        Outbox {
            st: RefCell::default(),
            high_water_bytes,
        }
    }

    /// Appends one or more frames encoded by `encode`; returns the stream position after them.
    pub fn push(&self, encode: impl FnOnce(&mut Vec<u8>)) -> u64 {
        let mut st = self.st.borrow_mut();
        if st.dead {
            return st.queued_total;
        }
        let before = st.buf.len();
        encode(&mut st.buf);
        st.queued_total += (st.buf.len() - before) as u64;
        wake_writer(&mut st);
        st.queued_total
    }

    /// Whether the connection can no longer send.
    pub fn is_dead(&self) -> bool {
        self.st.borrow().dead
    }

    /// Whether the queue is below the high-water mark (or the connection is dead).
    pub fn has_space(&self) -> bool {
        let st = self.st.borrow();
        st.dead || st.buf.len() < self.high_water_bytes
    }

    /// Waits until the queue is below the high-water mark (or the connection is dead).
    pub async fn wait_space(&self) {
        poll_fn(|cx| {
            let mut st = self.st.borrow_mut();
            if st.dead || st.buf.len() < self.high_water_bytes {
                Poll::Ready(())
            } else {
                st.space_waiters.push(cx.waker().clone());
                ring::urge();
                Poll::Pending
            }
        })
        .await
    }

    /// Waits until the stream position `pos` has been handed to the socket. False if the
    /// connection died first.
    pub async fn wait_sent(&self, pos: u64) -> bool {
        poll_fn(|cx| {
            let mut st = self.st.borrow_mut();
            if st.sent_total >= pos {
                Poll::Ready(true)
            } else if st.dead {
                Poll::Ready(false)
            } else {
                st.flush_waiters.push((pos, cx.waker().clone()));
                ring::urge();
                Poll::Pending
            }
        })
        .await
    }

    /// Sends what is queued, then shuts the socket down.
    pub fn close_after_flush(&self) {
        let mut st = self.st.borrow_mut();
        st.close_after_flush = true;
        wake_writer(&mut st);
    }

    /// Marks the connection dead unless a flush-then-close is pending.
    pub fn kill_unless_closing(&self) {
        let closing = self.st.borrow().close_after_flush;
        if !closing {
            self.kill();
        }
    }

    /// Drops everything queued and wakes every waiter.
    pub fn kill(&self) {
        let (writer, flush, space) = {
            let mut st = self.st.borrow_mut();
            st.dead = true;
            st.buf = Vec::new();
            if st.writer.is_none() {
                ring::urge();
            }
            (
                st.writer.take(),
                std::mem::take(&mut st.flush_waiters),
                std::mem::take(&mut st.space_waiters),
            )
        };
        writer.into_iter().for_each(Waker::wake);
        flush.into_iter().for_each(|(_, w)| w.wake());
        space.into_iter().for_each(Waker::wake);
    }

    /// Whether a task waits for the writer's progress (flush or space).
    fn has_waiters(&self) -> bool {
        let st = self.st.borrow();
        !st.flush_waiters.is_empty() || !st.space_waiters.is_empty()
    }

    fn take_batch(&self) -> Poll<Option<Vec<u8>>> {
        let mut st = self.st.borrow_mut();
        if st.dead {
            return Poll::Ready(None);
        }
        if !st.buf.is_empty() {
            let spare = std::mem::take(&mut st.spare);
            return Poll::Ready(Some(std::mem::replace(&mut st.buf, spare)));
        }
        if st.close_after_flush {
            return Poll::Ready(None);
        }
        Poll::Pending
    }

    fn sent(&self, n: usize, mut buf: Vec<u8>) {
        let (flush, space) = {
            let mut st = self.st.borrow_mut();
            st.sent_total += n as u64;
            buf.clear();
            if buf.capacity() <= SPARE_KEEP_BYTES {
                st.spare = buf;
            }
            let sent = st.sent_total;
            let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut st.flush_waiters)
                .into_iter()
                .partition(|(p, _)| *p <= sent);
            st.flush_waiters = waiting;
            let space = if st.buf.len() < self.high_water_bytes {
                std::mem::take(&mut st.space_waiters)
            } else {
                Vec::new()
            };
            (ready, space)
        };
        flush.into_iter().for_each(|(_, w)| w.wake());
        space.into_iter().for_each(Waker::wake);
    }
}

/// Wakes the writer for new work; when it is busy (in a lazy send, usually), tells the loop
/// that its completion is awaited (see `ring::Stream::send_all_lazy`).
fn wake_writer(st: &mut State) {
    match st.writer.take() {
        Some(w) => w.wake(),
        None => ring::urge(),
    }
}

/// The writer task: sends queued bytes until the connection dies or is closed after a flush.
pub async fn writer(outbox: Rc<Outbox>, stream: Rc<ring::Stream>) {
    loop {
        let batch = poll_fn(|cx| {
            let p = outbox.take_batch();
            if p.is_pending() {
                outbox.st.borrow_mut().writer = Some(cx.waker().clone());
            }
            p
        })
        .await;
        let Some(buf) = batch else { break };
        let n = buf.len();
        // Lazy: the loop may hold the completion back until the next request arrives (one
        // io_uring_enter per ping-pong); anyone who then waits behind it calls ring::urge.
        let (res, buf) = if outbox.has_waiters() {
            stream.send_all(buf).await
        } else {
            stream.send_all_lazy(buf).await
        };
        match res {
            Ok(()) => outbox.sent(n, buf),
            Err(_) => {
                outbox.kill();
                break;
            }
        }
    }
    stream.shutdown();
    outbox.kill();
}
